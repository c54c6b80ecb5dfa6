/* The memory-bound halves of the fused primitive ConvMaxPool, a convolution and its max
 * pooling as one graph node (the NumPy reference is ops/conv_pool.py: _pool and _unpool).
 *
 * pool_max      out = relu?(max_k z[k] + bias), winner = first k holding the maximum
 *               (a later k takes over only where strictly greater; NaN wins and stays;
 *               zeros keep np.maximum's sign: the second operand of a tie);
 * pool_scatter  out[k] = g * (winner == k), for each place k of the pooling window (g first
 *               masked by a ReLU's output when one is given).
 */
#include "kernels.h"

#include <string.h>

#define CHUNK_ELEMENTS 16384

/* One chunk small enough to stay in cache (POOL_MAX_ROWS, kernels.h). */
#define POOL_MAX_BODY(T)                                                                   \
    Py_ssize_t count = stop - start;                                                       \
    T *restrict o = out + start;                                                           \
    uint8_t *restrict w = winner + start;                                                  \
    POOL_MAX_ROWS(T, o, w, z + start, size, places, count, bias, features, relu)

VECTOR_CLONES static void
pool_max_f32(const float *restrict z, const float *restrict bias, float *restrict out,
             uint8_t *restrict winner, Py_ssize_t places, Py_ssize_t size, Py_ssize_t features,
             int relu, Py_ssize_t start, Py_ssize_t stop)
{
    POOL_MAX_BODY(float)
}

VECTOR_CLONES static void
pool_max_f64(const double *restrict z, const double *restrict bias, double *restrict out,
             uint8_t *restrict winner, Py_ssize_t places, Py_ssize_t size, Py_ssize_t features,
             int relu, Py_ssize_t start, Py_ssize_t stop)
{
    POOL_MAX_BODY(double)
}

/* Chunks hold whole rows, so that the bias lines up with each chunk's features. */
static Py_ssize_t
rows_per_chunk(Py_ssize_t features)
{
    Py_ssize_t rows = CHUNK_ELEMENTS / (features > 0 ? features : 1);
    return rows > 0 ? rows : 1;
}

static void
pool_max_chunk(const void *context, long index)
{
    const PoolMaxJob *j = context;
    Py_ssize_t size = j->rows * j->features, step = rows_per_chunk(j->features) * j->features;
    Py_ssize_t start = (Py_ssize_t)index * step;
    Py_ssize_t stop = start + step < size ? start + step : size;
    if (j->single)
        pool_max_f32((const float *)j->z, (const float *)j->bias, (float *)j->out, j->winner,
                     j->places, size, j->features, j->relu, start, stop);
    else
        pool_max_f64((const double *)j->z, (const double *)j->bias, (double *)j->out,
                     j->winner, j->places, size, j->features, j->relu, start, stop);
}

void
pool_max_run(const PoolMaxJob *job)
{
    Py_ssize_t per_chunk = rows_per_chunk(job->features);
    long chunks = (long)((job->rows + per_chunk - 1) / per_chunk);
    parallel_for(chunks, pool_max_chunk, job, job->rows * job->features >= SPLIT_FROM);
}

/* With `relu_out` (the pooled output of a ReLU), the gradient is first masked where that
 * output is not positive, g * (relu_out > 0), and the masked gradient kept in `masked`. */
#define POOL_SCATTER_BODY(T)                                                               \
    const T *restrict from = g + start;                                                    \
    Py_ssize_t count = stop - start;                                                       \
    if (relu_out) {                                                                        \
        const T *restrict o = relu_out + start;                                            \
        T *restrict kept = masked + start;                                                 \
        for (Py_ssize_t i = 0; i < count; i++)                                             \
            kept[i] = from[i] * (T)(o[i] > 0);                                             \
        from = kept;                                                                       \
    }                                                                                      \
    for (Py_ssize_t k = 0; k < places; k++) {                                              \
        T *restrict dst = out + k * size + start;                                          \
        const uint8_t *restrict won = winner + start;                                      \
        const uint8_t place = (uint8_t)k;                                                  \
        for (Py_ssize_t i = 0; i < count; i++)                                             \
            dst[i] = from[i] * (T)(won[i] == place);                                       \
    }

VECTOR_CLONES static void
pool_scatter_f32(const float *restrict g, const uint8_t *restrict winner, float *restrict out,
                 const float *restrict relu_out, float *restrict masked, Py_ssize_t places,
                 Py_ssize_t size, Py_ssize_t start, Py_ssize_t stop)
{
    POOL_SCATTER_BODY(float)
}

VECTOR_CLONES static void
pool_scatter_f64(const double *restrict g, const uint8_t *restrict winner,
                 double *restrict out, const double *restrict relu_out, double *restrict masked,
                 Py_ssize_t places, Py_ssize_t size, Py_ssize_t start, Py_ssize_t stop)
{
    POOL_SCATTER_BODY(double)
}

static void
pool_scatter_chunk(const void *context, long index)
{
    const PoolScatterJob *j = context;
    Py_ssize_t start = (Py_ssize_t)index * CHUNK_ELEMENTS;
    Py_ssize_t stop = start + CHUNK_ELEMENTS < j->size ? start + CHUNK_ELEMENTS : j->size;
    if (j->single)
        pool_scatter_f32((const float *)j->g, j->winner, (float *)j->out,
                         (const float *)j->relu_out, (float *)j->masked, j->places, j->size,
                         start, stop);
    else
        pool_scatter_f64((const double *)j->g, j->winner, (double *)j->out,
                         (const double *)j->relu_out, (double *)j->masked, j->places, j->size,
                         start, stop);
}

void
pool_scatter_run(const PoolScatterJob *job)
{
    long chunks = (long)((job->size + CHUNK_ELEMENTS - 1) / CHUNK_ELEMENTS);
    parallel_for(chunks, pool_scatter_chunk, job, job->size * job->places >= SPLIT_FROM);
}
