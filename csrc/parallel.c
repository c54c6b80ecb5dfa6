/* One helper thread for large, memory-bound jobs.
 *
 * By the time an optimizer or a pooling backward runs, its arrays are no longer in this
 * core's cache (the forward and backward passes came in between), and one core cannot
 * pull them from the shared cache as fast as two. So a large job is cut into chunks that
 * the calling thread and one helper thread claim one at a time. The caller never waits
 * for the helper to start: if the helper wakes late, the caller has taken most chunks
 * itself, and it waits at most for the chunk the helper is doing. Every chunk is computed
 * as it would be in one thread, so the result does not depend on who did which.
 *
 * Owned jobs (parallel_for_owned, kernels.h) are claimed from both ends, the caller's
 * from the first chunk and the helper's from the last, so that each core mostly takes the
 * same chunks from one call to the next and its cache keeps their data (a dense kernel,
 * its gradient and Adam's slots); after one, the helper watches for the next job for up
 * to OWNED_WATCH_NS instead of sleeping, since a sleeping helper would wake after the
 * caller had done all the chunks. It watches only while the thread governor
 * gives jobs to it (dendrite/cpu_threads.py): on a busy machine, where the spinning would
 * cost a neighbour its core, the governor measures one thread faster and the jobs stop.
 *
 * A claim is a compare-and-swap on a ticket holding (job generation, next chunk), or for
 * an owned job (generation, first unclaimed chunk, one past the last), so a helper that
 * wakes after its job ended can never take a chunk of the next job. There is
 * no helper on a one-CPU machine or when DENDRITE_NUM_THREADS, OPENBLAS_NUM_THREADS or
 * OMP_NUM_THREADS is 1. One
 * caller at a time uses the helper (the kernels run without the GIL, so several Python
 * threads may call at once); the others run their job alone. A forked child starts its
 * own helper when it first needs one.
 */
#include "kernels.h"

#include <pthread.h>
#include <sched.h>
#include <time.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define GENERATION_SHIFT 32
#define LOW_BITS 0xffffffffL

typedef struct {
    chunk_fn fn;
    const void *context;
    long count;
    int owned; /* parallel_for_owned's: the helper watches for the next one */
} Job;

static Job job;                  /* written under `lock` */
static unsigned long generation; /* written under `lock` */
static atomic_ulong published;   /* `generation`, for the helper watching without the lock */
static atomic_long ticket;       /* (generation << GENERATION_SHIFT) | next chunk */
static atomic_long chunks_done;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER;
static pthread_mutex_t caller_lock = PTHREAD_MUTEX_INITIALIZER;
static int helper_started; /* written under `caller_lock` */
static int helper_allowed = 1;      /* the machine and the environment allow a helper */
static atomic_int helper_wanted = 1; /* dendrite/cpu_threads.py may turn it off at run time */

#define END_BITS 16
#define END_MASK 0xffffL

/* Claim and run chunks of job `gen` until none is left: the next from the first, or for
 * an owned job and `from_back`, from the last. */
static void
run_chunks(const Job *mine, unsigned long gen, int from_back)
{
    long current = atomic_load(&ticket);
    for (;;) {
        if (((unsigned long)current >> GENERATION_SHIFT) != (gen & LOW_BITS))
            return;
        long low = current & LOW_BITS, high = current & ~LOW_BITS;
        long index, next;
        if (mine->owned) {
            long front = low >> END_BITS, back = low & END_MASK;
            if (front >= back)
                return;
            index = from_back ? back - 1 : front;
            next = from_back ? high | (front << END_BITS) | (back - 1)
                             : high | ((front + 1) << END_BITS) | back;
        } else {
            index = low;
            if (index >= mine->count)
                return;
            next = current + 1;
        }
        if (!atomic_compare_exchange_weak(&ticket, &current, next))
            continue; /* `current` now holds the fresh ticket */
        mine->fn(mine->context, index);
        atomic_fetch_add(&chunks_done, 1);
        current = atomic_load(&ticket);
    }
}

static long
now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000000000L + t.tv_nsec;
}

/* The CPU each thread last ran a job on (-1: unknown, or not Linux): a thread never spins
 * while the one it waits for is on its own CPU, where spinning would only delay it. */
static atomic_int caller_cpu = -1, helper_cpu = -1;

static int
this_cpu(void)
{
#ifdef __linux__
    return sched_getcpu();
#else
    return -1;
#endif
}

/* One look of a thread waiting for the other (the caller for the helper's last chunk, the
 * helper for the next owned job), `waited_ns` into its wait: spinning for the first
 * WAIT_SPIN_NS, then yielding. Yielding at once gave the core to any neighbour waiting for it
 * for a whole time slice (about 1.4 ms here), long after the other thread was done: beside
 * a `nice -n 10` neighbour the LSTM's epoch took 0.72 s so against 0.46 s spinning, the
 * CNN's 0.70 s against 0.59-0.62 (its quiet epochs 0.40-0.50 s either way); beside a
 * same-priority one neither was consistently faster. Yielding after WAIT_SPIN_NS keeps a
 * thread from spinning through a whole time slice when the one it waits for was descheduled;
 * and a thread whose partner last ran on its own CPU yields at once (the CPU-aware rule
 * above: with both threads held on one CPU, `taskset -c 0`, three stacked products took
 * 1.26 times one thread's time spinning, 0.96 times yielding at once). */
static void
relax(long waited_ns, const atomic_int *other)
{
    int cpu = atomic_load_explicit(other, memory_order_relaxed);
    if (waited_ns >= WAIT_SPIN_NS || (cpu >= 0 && cpu == this_cpu()))
        sched_yield();
#if defined(__x86_64__) || defined(__i386__)
    else
        __builtin_ia32_pause();
#elif defined(__aarch64__)
    else
        __asm__ __volatile__("yield");
#endif
}

/* Watch until a job newer than `seen` is published or OWNED_WATCH_NS have passed: a
 * sleeping helper wakes 30-50 us after it is signalled here, longer than its share of a
 * dense layer's product takes, and a training step's next owned job comes a few hundred
 * microseconds later. Spinning (relax): in the eleventh session yielding measured better
 * beside a same-priority neighbour (the MLP's epoch 0.36 s against 0.40 s spinning for
 * 0.3 ms), but alternated in one process in the twelfth, spinning was as fast or faster
 * there (0.47 s against 0.56 s) and far faster beside a niced one (see relax). */
static void
watch_for_job(unsigned long seen)
{
    long began = now_ns();
    while (atomic_load_explicit(&published, memory_order_acquire) == seen) {
        long waited = now_ns() - began;
        if (waited > OWNED_WATCH_NS)
            return;
        relax(waited, &caller_cpu);
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
        Job mine = job;
        pthread_mutex_unlock(&lock);
        atomic_store_explicit(&helper_cpu, this_cpu(), memory_order_relaxed);
        run_chunks(&mine, seen, 1);
        if (mine.owned)
            watch_for_job(seen);
        pthread_mutex_lock(&lock);
    }
    return NULL;
}

/* The child of a fork has no helper, and no job: a parent's thread may have been inside
 * parallel_for, leaving a ticket and a context (on its stack) that a new helper must never
 * see. */
static void
after_fork_in_child(void)
{
    pthread_mutex_t fresh_lock = PTHREAD_MUTEX_INITIALIZER;
    pthread_mutex_t fresh_caller_lock = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t fresh_wake = PTHREAD_COND_INITIALIZER;
    Job no_job = {NULL, NULL, 0, 0};
    lock = fresh_lock;
    caller_lock = fresh_caller_lock;
    wake = fresh_wake;
    job = no_job;
    generation = 0;
    atomic_store(&published, 0);
    atomic_store(&ticket, 0);
    atomic_store(&chunks_done, 0);
    atomic_store(&caller_cpu, -1);
    atomic_store(&helper_cpu, -1);
    helper_started = 0;
}

/* No helper on one CPU, nor when the user asked for one thread (as for BLAS and OpenMP). */
void
parallel_init(void)
{
    static const char *const limits[] = {"DENDRITE_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                         "OMP_NUM_THREADS"};
    for (size_t k = 0; k < sizeof(limits) / sizeof(limits[0]); k++) {
        const char *value = getenv(limits[k]);
        if (value != NULL && strcmp(value, "1") == 0)
            helper_allowed = 0;
    }
    if (sysconf(_SC_NPROCESSORS_ONLN) < 2)
        helper_allowed = 0;
    pthread_atfork(NULL, NULL, after_fork_in_child);
}

/* Whether jobs are shared with the helper from now on (dendrite/cpu_threads.py turns it off
 * when other programs keep the second core busy). Returns the threads jobs now use. */
int
parallel_set_threads(int threads)
{
    atomic_store(&helper_wanted, threads > 1);
    return parallel_threads();
}

int
parallel_threads(void)
{
    return helper_allowed && atomic_load(&helper_wanted) ? 2 : 1;
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
    helper_started = pthread_create(&thread, &attributes, helper_main, NULL) == 0;
    pthread_attr_destroy(&attributes);
    return helper_started;
}

static void
run_alone(long count, chunk_fn fn, const void *context)
{
    for (long index = 0; index < count; index++)
        fn(context, index);
}

static void
share(long count, chunk_fn fn, const void *context, int split, int owned)
{
    if (!split || !helper_allowed || !atomic_load(&helper_wanted) || count < 2 || count > LOW_BITS ||
        pthread_mutex_trylock(&caller_lock) != 0) {
        run_alone(count, fn, context);
        return;
    }
    if (!ensure_helper()) {
        pthread_mutex_unlock(&caller_lock);
        run_alone(count, fn, context);
        return;
    }
    owned = owned && count <= OWNED_MAX_CHUNKS;
    Job mine = {fn, context, count, owned};
    atomic_store_explicit(&caller_cpu, this_cpu(), memory_order_relaxed);
    pthread_mutex_lock(&lock);
    generation++;
    unsigned long gen = generation;
    job = mine;
    atomic_store(&chunks_done, 0);
    atomic_store(&ticket, (long)((gen & LOW_BITS) << GENERATION_SHIFT) | (owned ? count : 0));
    atomic_store_explicit(&published, gen, memory_order_release);
    pthread_cond_signal(&wake);
    pthread_mutex_unlock(&lock);
    run_chunks(&mine, gen, 0);
    long began = now_ns();
    while (atomic_load(&chunks_done) < count)
        relax(now_ns() - began, &helper_cpu);
    pthread_mutex_unlock(&caller_lock);
}

void
parallel_for(long count, chunk_fn fn, const void *context, int split)
{
    share(count, fn, context, split, 0);
}

void
parallel_for_owned(long count, chunk_fn fn, const void *context, int split)
{
    share(count, fn, context, split, 1);
}
