/* col2im, the adjoint of im2col (the NumPy reference is ops/windows.py, col2im):
 *
 *   out = 0; then for each pool place (di, dj) and each offset (i, j) in the convolution's
 *   window, in that order,
 *   out[n, di sh + i dh + p ph sh, dj sw + j dw + q pw sw, :] +=
 *       cols[(di, dj, n, p, q), (i, j, :)]
 *
 * with the rows of cols ordered (di, dj, n, p, q) as im2col(..., pool=) orders them and its
 * columns (i, j, channel). One batch sample at a time, so its slab of `out` stays in cache;
 * its rows of cols are read whole, one after the other (a stream, where reading one
 * offset's columns at a time strides through memory), each scattered to its kh kw places.
 * Each element still receives its terms in the order above: for a fixed place (di, dj),
 * a later row (p, q) reaches an element through an earlier offset (i, j), so the rows go
 * backwards.
 */
#include "kernels.h"

#include <string.h>


#define COL2IM_BODY(T)                                                                     \
    const Py_ssize_t row_length = j->kh * j->kw * j->c;                                    \
    const T *cols = (const T *)j->cols;                                                    \
    T *out = (T *)j->out + (size_t)n * j->hp * j->wp * j->c;                               \
    memset(out, 0, sizeof(T) * (size_t)(j->hp * j->wp * j->c));                           \
    for (Py_ssize_t di = 0; di < j->ph; di++)                                              \
        for (Py_ssize_t dj = 0; dj < j->pw; dj++) {                                        \
            Py_ssize_t first_row = ((di * j->pw + dj) * j->n + n) * j->oh * j->ow;         \
            for (Py_ssize_t p = j->oh - 1; p >= 0; p--)                                    \
                for (Py_ssize_t q = j->ow - 1; q >= 0; q--) {                              \
                    const T *src = cols + (size_t)(first_row + p * j->ow + q) * row_length; \
                    for (Py_ssize_t i = 0; i < j->kh; i++) {                               \
                        Py_ssize_t row = di * j->sh + i * j->dh + p * j->ph * j->sh;       \
                        for (Py_ssize_t jj = 0; jj < j->kw; jj++) {                        \
                            Py_ssize_t col = dj * j->sw + jj * j->dw + q * j->pw * j->sw;  \
                            T *restrict dst = out + (row * j->wp + col) * j->c;            \
                            const T *restrict from = src + (i * j->kw + jj) * j->c;        \
                            for (Py_ssize_t ch = 0; ch < j->c; ch++)                       \
                                dst[ch] += from[ch];                                       \
                        }                                                                  \
                    }                                                                      \
                }                                                                          \
        }

VECTOR_CLONES static void
col2im_f32(const Col2imJob *j, Py_ssize_t n)
{
    COL2IM_BODY(float)
}

VECTOR_CLONES static void
col2im_f64(const Col2imJob *j, Py_ssize_t n)
{
    COL2IM_BODY(double)
}

static void
col2im_chunk(const void *context, long index)
{
    const Col2imJob *j = context;
    if (j->single)
        col2im_f32(j, index);
    else
        col2im_f64(j, index);
}

void
col2im_run(const Col2imJob *job)
{
    Py_ssize_t size = job->n * job->hp * job->wp * job->c;
    parallel_for((long)job->n, col2im_chunk, job, size >= SPLIT_FROM);
}
