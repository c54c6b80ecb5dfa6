/* Reused memory for NumPy's arrays while dendrite runs a loop (fit, evaluate, predict).
 *
 * A training step allocates the same large temporaries every time: a recurrence's gate
 * and state sequences, a layer's kernel gradient, the windows of a convolution. glibc
 * gives each large block fresh pages from the kernel (mmap, or a heap it trimmed at the
 * last free), and the first write to every 4 KiB page is a page fault: measured on the
 * benchmark's LSTM(128), the step's element-wise kernels ran 2-3 times slower in the
 * training loop than on reused arrays, and a 400 KB kernel gradient took 260 us instead
 * of 50 us with two BLAS threads (both fault on the same process' page tables).
 *
 * So while a loop runs, dendrite gives NumPy this allocator (NumPy's NEP 49 handler, set
 * only in the loop's own context, so other threads and the program's code outside the
 * loop keep NumPy's): a block of at least REUSE_FROM bytes is rounded up to a size class
 * (four per doubling, at most 25% more address space, whose untouched pages cost
 * nothing) and, when freed, kept on its class' list for the next allocation of that
 * class, up to CACHE_LIMIT bytes in all. When the last loop ends, the kept blocks go back
 * to the system. Smaller blocks, and all blocks outside loops, are plain malloc and free.
 *
 * Every block carries a header just before its data with its capacity and the offset of
 * the malloc'd base, so that freeing never depends on the size NumPy passes. Data is
 * 64-byte aligned (NumPy's own allocator guarantees 16). Blocks of at least 4 MiB are
 * marked for transparent huge pages, as NumPy marks its own.
 */
#define NPY_NO_DEPRECATED_API NPY_1_22_API_VERSION
#define NPY_TARGET_VERSION NPY_1_22_API_VERSION
#include "kernels.h"

#include <numpy/arrayobject.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#ifdef __linux__
#include <sys/mman.h>
#endif

#define ALIGNMENT 64
#define HEADER (2 * sizeof(size_t))
#define EXTRA (HEADER + ALIGNMENT - 1)
#define REUSE_FROM ((size_t)1 << 17)
#define REUSE_UP_TO ((size_t)1 << 32)
#define FIRST_EXPONENT 16 /* of REUSE_FROM - 1 */
#define CLASSES 64        /* four per doubling, from REUSE_FROM to REUSE_UP_TO */
#define CACHE_LIMIT ((size_t)1 << 30)
#define HUGE_FROM ((size_t)1 << 22)

static void *lists[CLASSES]; /* kept blocks, linked through their first bytes */
static size_t kept_bytes;
static long loops;        /* loops running, in all threads */
static __thread long loops_here; /* of them, this thread's (all that a forked child has) */
static unsigned long long reused, fresh;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

/* The class of a block of `size` bytes (REUSE_FROM <= size <= REUSE_UP_TO): its capacity
 * (the smallest of 5, 6, 7 or 8 times 2^(e-2) not below size, 2^e <= size - 1 < 2^(e+1))
 * and its list. A capacity is its own class. */
static size_t
size_class(size_t size, int *index)
{
    size_t q = size - 1;
    int e = 63 - __builtin_clzll((unsigned long long)q);
    size_t n = q >> (e - 2); /* 4 .. 7 */
    *index = (e - FIRST_EXPONENT) * 4 + (int)(n - 4);
    return (n + 1) << (e - 2);
}

static size_t *
header(void *data)
{
    return (size_t *)data - 2; /* capacity, offset of the base */
}

static int
reusable(size_t size)
{
    return size >= REUSE_FROM && size <= REUSE_UP_TO;
}

static void *
take(size_t size, int zero)
{
    if (size == 0)
        size = 1;
    size_t capacity = size;
    if (reusable(size)) {
        int index;
        capacity = size_class(size, &index);
        pthread_mutex_lock(&lock);
        void *data = lists[index];
        if (data != NULL) {
            lists[index] = *(void **)data;
            kept_bytes -= capacity;
            reused++;
        } else {
            fresh++;
        }
        pthread_mutex_unlock(&lock);
        if (data != NULL) {
            if (zero)
                memset(data, 0, size);
            return data;
        }
    }
    if (capacity > SIZE_MAX - EXTRA)
        return NULL;
    char *base = zero ? calloc(1, capacity + EXTRA) : malloc(capacity + EXTRA);
    if (base == NULL)
        return NULL;
    char *data = (char *)(((uintptr_t)base + HEADER + ALIGNMENT - 1) & ~(uintptr_t)(ALIGNMENT - 1));
    header(data)[0] = capacity;
    header(data)[1] = (size_t)(data - base);
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    if (capacity >= HUGE_FROM) {
        uintptr_t start = ((uintptr_t)data + 4095) & ~(uintptr_t)4095;
        madvise((void *)start, capacity - (start - (uintptr_t)data), MADV_HUGEPAGE);
    }
#endif
    return data;
}

static void
give_back(void *data)
{
    if (data == NULL)
        return;
    size_t capacity = header(data)[0];
    if (reusable(capacity)) {
        int index;
        size_class(capacity, &index);
        pthread_mutex_lock(&lock);
        if (loops > 0 && kept_bytes + capacity <= CACHE_LIMIT) {
            *(void **)data = lists[index];
            lists[index] = data;
            kept_bytes += capacity;
            data = NULL;
        }
        pthread_mutex_unlock(&lock);
        if (data == NULL)
            return;
    }
    free((char *)data - header(data)[1]);
}

static void *
handler_malloc(void *context, size_t size)
{
    (void)context;
    return take(size, 0);
}

static void *
handler_calloc(void *context, size_t count, size_t item)
{
    (void)context;
    if (item != 0 && count > SIZE_MAX / item)
        return NULL;
    return take(count * item, 1);
}

static void *
handler_realloc(void *context, void *data, size_t size)
{
    (void)context;
    if (data == NULL)
        return take(size, 0);
    size_t capacity = header(data)[0];
    int index;
    if (size != 0 && size <= capacity &&
        (reusable(capacity) ? reusable(size) && size_class(size, &index) == capacity
                            : size >= capacity / 2))
        return data; /* the same class, or a plain block that shrinks by at most half */
    void *moved = take(size, 0);
    if (moved == NULL)
        return NULL;
    memcpy(moved, data, size < capacity ? size : capacity);
    give_back(data);
    return moved;
}

static void
handler_free(void *context, void *data, size_t size)
{
    (void)context;
    (void)size; /* the header knows */
    give_back(data);
}

static PyDataMem_Handler handler = {
    "dendrite_reuse",
    1,
    {NULL, handler_malloc, handler_calloc, handler_realloc, handler_free},
};

static PyObject *capsule; /* the handler as NumPy takes it; lives as long as the module */

static void
drain(void)
{
    for (int index = 0; index < CLASSES; index++) {
        while (lists[index] != NULL) {
            void *data = lists[index];
            lists[index] = *(void **)data;
            free((char *)data - header(data)[1]);
        }
    }
    kept_bytes = 0;
}

/* fork: the lists are never copied half-changed (the lock is held across it), and the
 * child, where only the forking thread lives on, counts that thread's loops only: a loop
 * that another thread ran never ends there, and the child would keep its freed blocks (up
 * to CACHE_LIMIT) until it exits. */
static void
before_fork(void)
{
    pthread_mutex_lock(&lock);
}

static void
after_fork_in_parent(void)
{
    pthread_mutex_unlock(&lock);
}

static void
after_fork_in_child(void)
{
    pthread_mutex_t fresh_lock = PTHREAD_MUTEX_INITIALIZER;
    lock = fresh_lock;
    loops = loops_here;
}

/* reuse_begin(): from now on, arrays allocated in this context use the reusing allocator;
 * returns NumPy's previous handler, for reuse_end. */
PyObject *
reuse_begin(PyObject *self, PyObject *unused)
{
    (void)self;
    (void)unused;
    if (capsule == NULL) {
        if (_import_array() < 0)
            return NULL;
        capsule = PyCapsule_New(&handler, "mem_handler", NULL);
        if (capsule == NULL)
            return NULL;
        pthread_atfork(before_fork, after_fork_in_parent, after_fork_in_child);
    }
    PyObject *previous = PyDataMem_SetHandler(capsule);
    if (previous == NULL)
        return NULL;
    pthread_mutex_lock(&lock);
    loops++;
    pthread_mutex_unlock(&lock);
    loops_here++;
    return previous;
}

/* reuse_end(previous): this context's arrays use `previous` again; when no loop is left,
 * the kept blocks go back to the system. */
PyObject *
reuse_end(PyObject *self, PyObject *previous)
{
    (void)self;
    if (capsule == NULL || !PyCapsule_IsValid(previous, "mem_handler")) {
        PyErr_SetString(PyExc_ValueError, "reuse_end takes what reuse_begin returned");
        return NULL;
    }
    PyObject *replaced = PyDataMem_SetHandler(previous);
    if (replaced == NULL)
        return NULL;
    Py_DECREF(replaced);
    if (loops_here > 0)
        loops_here--;
    pthread_mutex_lock(&lock);
    if (loops > 0 && --loops == 0)
        drain();
    pthread_mutex_unlock(&lock);
    Py_RETURN_NONE;
}

/* reuse_stats(): (bytes kept now, allocations served from kept blocks, reusable-size
 * allocations that were not). */
PyObject *
reuse_stats(PyObject *self, PyObject *unused)
{
    (void)self;
    (void)unused;
    pthread_mutex_lock(&lock);
    size_t bytes = kept_bytes;
    unsigned long long hits = reused, misses = fresh;
    pthread_mutex_unlock(&lock);
    return Py_BuildValue("(nKK)", (Py_ssize_t)bytes, hits, misses);
}
