/* Fused optimizer updates: one pass over memory instead of one NumPy pass per operation.
 *
 * The only compiled code in dendrite, and optional: setup.py builds it when a C compiler is
 * there, and the optimizers fall back to their NumPy passes when it is not (or when
 * DENDRITE_NO_KERNELS is set). Each kernel does, element by element, exactly the
 * operations of the NumPy path, in the same order and precision, without fused
 * multiply-adds (-ffp-contract=off), so both give bit-identical results; the tests
 * compare them.
 *
 * Arrays come through the buffer protocol (no NumPy headers needed): C-contiguous,
 * float32 ('f') or float64 ('d'), all of one type and length.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <sched.h>
#include <string.h>

/* Several vector widths, chosen at load time by the CPU (GCC function multiversioning). */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define VECTOR_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define VECTOR_CLONES
#endif

/* Adam, Keras' form (see optimizers/adam.py):
 *   m <- m + (g - m) * (1 - beta_1)
 *   v <- v + (g * g - v) * (1 - beta_2)
 *   w <- w - m / (sqrt(v) + epsilon) * alpha
 */
#define ADAM_BODY(T, SQRT)                                                                 \
    for (Py_ssize_t i = 0; i < n; i++) {                                                   \
        T grad = g[i];                                                                     \
        T mi = m[i] + (grad - m[i]) * c1;                                                  \
        T vi = v[i] + (grad * grad - v[i]) * c2;                                           \
        m[i] = mi;                                                                         \
        v[i] = vi;                                                                         \
        w[i] -= mi / (SQRT(vi) + eps) * alpha;                                             \
    }

VECTOR_CLONES static void
adam_f32(float *restrict w, const float *restrict g, float *restrict m, float *restrict v,
         Py_ssize_t n, float c1, float c2, float eps, float alpha)
{
    ADAM_BODY(float, sqrtf)
}

VECTOR_CLONES static void
adam_f64(double *restrict w, const double *restrict g, double *restrict m, double *restrict v,
         Py_ssize_t n, double c1, double c2, double eps, double alpha)
{
    ADAM_BODY(double, sqrt)
}

/* Fill `views` from `objects`, each a writable (or, for `readonly_index`, readable)
 * C-contiguous buffer of one float format and length; raise ValueError otherwise. */
static int
get_buffers(PyObject **objects, Py_buffer *views, int count, int readonly_index)
{
    for (int k = 0; k < count; k++) {
        int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT;
        if (k != readonly_index)
            flags |= PyBUF_WRITABLE;
        if (PyObject_GetBuffer(objects[k], &views[k], flags) < 0) {
            while (k-- > 0)
                PyBuffer_Release(&views[k]);
            return -1;
        }
    }
    const char *format = views[0].format;
    int ok = (format[0] == 'f' || format[0] == 'd') && format[1] == '\0';
    for (int k = 1; ok && k < count; k++)
        ok = strcmp(views[k].format, format) == 0 && views[k].len == views[0].len;
    if (!ok) {
        for (int k = 0; k < count; k++)
            PyBuffer_Release(&views[k]);
        PyErr_SetString(PyExc_ValueError,
                        "fused kernels need contiguous float32 or float64 arrays of one "
                        "dtype and size");
        return -1;
    }
    return 0;
}

/* --- a helper thread for large updates ---------------------------------------------------
 *
 * A large update is memory-bound: its slots are not in this core's cache by the time the
 * optimizer runs (the forward and backward passes came in between), and one core cannot
 * pull them from the shared cache as fast as two. So an array of at least SPLIT_BELOW
 * elements is cut into CHUNK-element chunks that the calling thread and one helper thread
 * claim one at a time. The caller never waits for the helper to start: if the helper wakes
 * late, the caller has taken most chunks itself, and it waits at most for the chunk the
 * helper is doing. Each element is computed exactly as in one thread, so the result does
 * not depend on who did which chunk.
 *
 * A claim is a compare-and-swap on a ticket holding (job generation, next chunk), so a
 * helper that wakes after its job ended can never take a chunk of the next job.
 */
#include <pthread.h>
#include <stdatomic.h>

#define CHUNK 8192
#define SPLIT_BELOW (4 * CHUNK)
#define GENERATION_SHIFT 32

typedef struct {
    char *w, *g, *m, *v;
    Py_ssize_t n;
    int single;
    double c1, c2, eps, alpha;
} AdamJob;

static AdamJob job;
static long chunk_count;
static atomic_long ticket;       /* (generation << GENERATION_SHIFT) | next chunk */
static atomic_long chunks_done;
static unsigned long generation; /* written under `lock` */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
/* Held by the one caller that uses the helper; other threads (the kernel runs without the
 * GIL) then do their whole update alone. */
static pthread_mutex_t caller_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER;
static int helper_started;

static void
adam_range(const AdamJob *j, Py_ssize_t start, Py_ssize_t stop)
{
    size_t size = j->single ? sizeof(float) : sizeof(double);
    size_t offset = (size_t)start * size;
    if (j->single)
        adam_f32((float *)(j->w + offset), (const float *)(j->g + offset),
                 (float *)(j->m + offset), (float *)(j->v + offset), stop - start,
                 (float)j->c1, (float)j->c2, (float)j->eps, (float)j->alpha);
    else
        adam_f64((double *)(j->w + offset), (const double *)(j->g + offset),
                 (double *)(j->m + offset), (double *)(j->v + offset), stop - start, j->c1,
                 j->c2, j->eps, j->alpha);
}

/* Claim and run chunks of job `gen` until none is left; `j` and `count` describe it. */
static void
run_chunks(const AdamJob *j, long count, unsigned long gen)
{
    long current = atomic_load(&ticket);
    for (;;) {
        if ((unsigned long)current >> GENERATION_SHIFT != (gen & 0xffffffffUL))
            return;
        long index = current & 0xffffffffL;
        if (index >= count)
            return;
        if (!atomic_compare_exchange_weak(&ticket, &current, current + 1))
            continue; /* `current` now holds the fresh ticket */
        Py_ssize_t start = (Py_ssize_t)index * CHUNK;
        Py_ssize_t stop = start + CHUNK < j->n ? start + CHUNK : j->n;
        adam_range(j, start, stop);
        atomic_fetch_add(&chunks_done, 1);
        current = atomic_load(&ticket);
    }
}

static void *
helper_main(void *unused)
{
    (void)unused;
    unsigned long seen = 0;
    pthread_mutex_lock(&lock);
    for (;;) {
        while (generation == seen)
            pthread_cond_wait(&wake, &lock);
        seen = generation;
        AdamJob mine = job;
        long count = chunk_count;
        pthread_mutex_unlock(&lock);
        run_chunks(&mine, count, seen);
        pthread_mutex_lock(&lock);
    }
    return NULL;
}

static void
after_fork_in_child(void)
{
    /* The helper does not exist in a forked child; start a new one when needed. */
    pthread_mutex_t fresh_lock = PTHREAD_MUTEX_INITIALIZER;
    pthread_mutex_t fresh_caller_lock = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t fresh_wake = PTHREAD_COND_INITIALIZER;
    lock = fresh_lock;
    caller_lock = fresh_caller_lock;
    wake = fresh_wake;
    helper_started = 0;
}

static int
ensure_helper(void)
{
    if (helper_started)
        return 1;
    pthread_t thread;
    pthread_attr_t attributes;
    pthread_attr_init(&attributes);
    pthread_attr_setdetachstate(&attributes, PTHREAD_CREATE_DETACHED);
    int ok = pthread_create(&thread, &attributes, helper_main, NULL) == 0;
    pthread_attr_destroy(&attributes);
    helper_started = ok;
    return ok;
}

/* Run `j` split between this thread and the helper (or alone if there is none). */
static void
adam_split(const AdamJob *j)
{
    long count = (long)((j->n + CHUNK - 1) / CHUNK);
    if (j->n < SPLIT_BELOW || pthread_mutex_trylock(&caller_lock) != 0) {
        adam_range(j, 0, j->n);
        return;
    }
    if (!ensure_helper()) {
        pthread_mutex_unlock(&caller_lock);
        adam_range(j, 0, j->n);
        return;
    }
    pthread_mutex_lock(&lock);
    generation++;
    unsigned long gen = generation;
    job = *j;
    chunk_count = count;
    atomic_store(&chunks_done, 0);
    atomic_store(&ticket, (long)((gen & 0xffffffffUL) << GENERATION_SHIFT));
    pthread_cond_signal(&wake);
    pthread_mutex_unlock(&lock);
    run_chunks(j, count, gen);
    while (atomic_load(&chunks_done) < count)
        sched_yield();
    pthread_mutex_unlock(&caller_lock);
}

static PyObject *
adam(PyObject *self, PyObject *args)
{
    PyObject *objects[4];
    double c1, c2, eps, alpha;
    if (!PyArg_ParseTuple(args, "OOOOdddd:adam", &objects[0], &objects[1], &objects[2],
                          &objects[3], &c1, &c2, &eps, &alpha))
        return NULL;
    Py_buffer views[4];
    if (get_buffers(objects, views, 4, 1) < 0)
        return NULL;
    AdamJob j = {views[0].buf, views[1].buf, views[2].buf, views[3].buf,
                 views[0].len / views[0].itemsize, views[0].format[0] == 'f',
                 c1, c2, eps, alpha};
    Py_BEGIN_ALLOW_THREADS
    adam_split(&j);
    Py_END_ALLOW_THREADS
    for (int k = 0; k < 4; k++)
        PyBuffer_Release(&views[k]);
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"adam", adam, METH_VARARGS,
     "adam(w, g, m, v, c1, c2, epsilon, alpha): one fused Adam step, in place on w, m, v."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_kernels", "Fused optimizer updates (optional).", -1, methods,
};

PyMODINIT_FUNC
PyInit__kernels(void)
{
    pthread_atfork(NULL, NULL, after_fork_in_child);
    return PyModule_Create(&module);
}
