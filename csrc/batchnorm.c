/* Batch normalisation over the rows of a channels-last (rows, C) view, training mode (the
 * NumPy reference is dendrite/ops/normalization.py, Normalize): with m = rows,
 *
 *   mean = sum_rows(x) / m,  var = sum_rows((x - mean)^2) / m,  inv = 1 / sqrt(var + eps),
 *   xhat = (x - mean) inv,   y = xhat gamma + beta;
 *   backward, with g = dL/dy:  sg = sum_rows(g),  sgx = sum_rows(g xhat),
 *   dx = ((g - xhat sgx / m) - sg / m) inv gamma,  dL/dgamma = sgx,  dL/dbeta = sg.
 *
 * NumPy needs about seven passes over the array each way; here three forward (the two
 * sums, then the normalisation) and two backward. Each element gets the reference's
 * operations in the reference's order, but the sums over the rows run by fixed blocks of
 * rows (blocks.c: each block's sum in order, then the blocks in order), where NumPy sums
 * pairwise: the results agree within float rounding (tests/test_kernels_batchnorm.py),
 * and do not depend on which thread summed which block. The same blocks of rows are shared
 * with the helper thread for the element-wise passes; the channels are the vectorised
 * inner loop.
 */
#include "kernels.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *x, *g, *gamma, *beta;
    char *out, *xhat, *dx;
    char *mean, *variance, *inv; /* (C,) each; read by the later passes */
    char *coef;                  /* backward: 3 C values, sgx / m, sg / m, inv gamma */
    Py_ssize_t rows, channels;
    double epsilon;
    int single, pass;
} NormJob;

/* Pass 0: sums of x; pass 1: sums of (x - mean)^2; pass 2: xhat and y; backward pass 3:
 * sums of g and g xhat; pass 4: dx. Rows [first, last), their sums into `part` (2 C). */
#define NORM_PASS(T)                                                                       \
    const Py_ssize_t c = j->channels;                                                      \
    const T *restrict mean = (const T *)j->mean, *restrict inv = (const T *)j->inv;        \
    if (j->pass <= 1 || j->pass == 3)                                                      \
        memset(part, 0, (size_t)(2 * c) * sizeof(T));                                      \
    for (Py_ssize_t r = first; r < last; r++) {                                            \
        /* the row's input (x forward, g backward) and its xhat (written by pass 2) */     \
        const T *restrict in = (const T *)(j->pass < 3 ? j->x : j->g) + r * c;             \
        T *restrict xh = (T *)j->xhat + r * c;                                             \
        switch (j->pass) {                                                                 \
        case 0:                                                                            \
            for (Py_ssize_t k = 0; k < c; k++)                                             \
                part[k] += in[k];                                                          \
            break;                                                                         \
        case 1:                                                                            \
            for (Py_ssize_t k = 0; k < c; k++) {                                           \
                T d = in[k] - mean[k];                                                     \
                part[k] += d * d;                                                          \
            }                                                                              \
            break;                                                                         \
        case 2: {                                                                          \
            T *restrict y = (T *)j->out + r * c;                                           \
            const T *restrict gamma = (const T *)j->gamma, *restrict beta = (const T *)j->beta; \
            for (Py_ssize_t k = 0; k < c; k++)                                             \
                xh[k] = (in[k] - mean[k]) * inv[k];                                        \
            if (gamma)                                                                     \
                for (Py_ssize_t k = 0; k < c; k++)                                         \
                    y[k] = xh[k] * gamma[k];                                               \
            else                                                                           \
                memcpy(y, xh, (size_t)c * sizeof(T));                                      \
            if (beta)                                                                      \
                for (Py_ssize_t k = 0; k < c; k++)                                         \
                    y[k] = y[k] + beta[k];                                                 \
            break;                                                                         \
        }                                                                                  \
        case 3:                                                                            \
            for (Py_ssize_t k = 0; k < c; k++) {                                           \
                part[k] += in[k];                                                          \
                part[c + k] += in[k] * xh[k];                                              \
            }                                                                              \
            break;                                                                         \
        default: {                                                                         \
            const T *restrict a = (const T *)j->coef, *restrict b = a + c, *restrict f = b + c; \
            T *restrict dx = (T *)j->dx + r * c;                                           \
            for (Py_ssize_t k = 0; k < c; k++)                                             \
                dx[k] = ((in[k] - xh[k] * a[k]) - b[k]) * f[k];                            \
        }                                                                                  \
        }                                                                                  \
    }

VECTOR_CLONES static void
norm_f32(const NormJob *j, Py_ssize_t first, Py_ssize_t last, float *part) { NORM_PASS(float) }
VECTOR_CLONES static void
norm_f64(const NormJob *j, Py_ssize_t first, Py_ssize_t last, double *part) { NORM_PASS(double) }

static void
norm_chunk(const void *context, long index)
{
    const SampleBlocks *blocks = context;
    const NormJob *j = blocks->job;
    Py_ssize_t first, last;
    char *part = sample_block(blocks, index, &first, &last);
    if (j->single)
        norm_f32(j, first, last, (float *)part);
    else
        norm_f64(j, first, last, (double *)part);
}

/* Run pass `pass` over the blocks of rows: a summing pass returns the sums of its blocks'
 * partials (2 C values, added in block order), an element-wise pass NULL. */
static const char *
norm_run(SampleBlocks *blocks, NormJob *j, int pass)
{
    j->pass = pass;
    int split = j->rows * j->channels >= SPLIT_FROM;
    if (pass == 2 || pass == 4) {
        parallel_for((long)blocks->count, norm_chunk, blocks, split);
        return NULL;
    }
    return sample_blocks_run(blocks, norm_chunk, split);
}

/* The per-channel statistics from the summed partials, in the reference's operations:
 * the mean after pass 0, the variance and inv after pass 1 (a float's square root taken
 * in double and rounded is the float's correctly rounded square root). */
#define FINISH_STATS(T)                                                                    \
    {                                                                                      \
        const T *sum = (const T *)sums;                                                    \
        T *mean = (T *)j->mean, *variance = (T *)j->variance, *inv = (T *)j->inv;          \
        for (Py_ssize_t k = 0; k < j->channels; k++) {                                     \
            if (pass == 0) {                                                               \
                mean[k] = sum[k] / (T)j->rows;                                             \
            } else {                                                                       \
                variance[k] = sum[k] / (T)j->rows;                                         \
                inv[k] = (T)1 / (T)sqrt((double)(variance[k] + (T)j->epsilon));           \
            }                                                                              \
        }                                                                                  \
    }

static void
norm_stats(SampleBlocks *blocks, NormJob *j, int pass)
{
    const char *sums = norm_run(blocks, j, pass);
    if (j->single)
        FINISH_STATS(float)
    else
        FINISH_STATS(double)
}

/* batchnorm_forward(x, gamma_or_None, beta_or_None, out, xhat, mean, variance, inv, rows,
 * channels, epsilon): x, out, xhat (rows, channels); the rest (channels,), written. */
PyObject *
batchnorm_forward(PyObject *self, PyObject *args)
{
    PyObject *o[8];
    NormJob j = {0};
    if (!PyArg_ParseTuple(args, "OOOOOOOOnnd:batchnorm_forward", &o[0], &o[1], &o[2], &o[3],
                          &o[4], &o[5], &o[6], &o[7], &j.rows, &j.channels, &j.epsilon))
        return NULL;
    if (j.rows < 1 || j.channels < 1 || j.rows > PY_SSIZE_T_MAX / 8 / j.channels) {
        PyErr_SetString(PyExc_ValueError, "batchnorm_forward: bad rows or channels");
        return NULL;
    }
    const Py_ssize_t size = j.rows * j.channels;
    const KernelArg a[8] = {{o[0], size, 'r'}, {o[1], j.channels, 'R'}, {o[2], j.channels, 'R'},
                            {o[3], size, 'w'}, {o[4], size, 'w'},       {o[5], j.channels, 'w'},
                            {o[6], j.channels, 'w'}, {o[7], j.channels, 'w'}};
    Py_buffer v[8];
    int single = kernel_take(a, v, 8);
    if (single < 0)
        return NULL;
    j.x = v[0].buf, j.gamma = v[1].buf, j.beta = v[2].buf, j.out = v[3].buf, j.xhat = v[4].buf;
    j.mean = v[5].buf, j.variance = v[6].buf, j.inv = v[7].buf, j.single = single;
    SampleBlocks blocks = {0};
    if (blocks_init(&blocks, &j, j.rows, single, 2 * j.channels) < 0) {
        kernel_give_back(v, 8);
        return PyErr_NoMemory();
    }
    Py_BEGIN_ALLOW_THREADS
    norm_stats(&blocks, &j, 0);
    norm_stats(&blocks, &j, 1);
    norm_run(&blocks, &j, 2);
    Py_END_ALLOW_THREADS
    sample_blocks_free(&blocks);
    kernel_give_back(v, 8);
    Py_RETURN_NONE;
}

/* batchnorm_backward(g, xhat, inv, gamma_or_None, dx_or_None, sum_g, sum_gx, rows,
 * channels): sum_g = sum_rows(g), sum_gx = sum_rows(g xhat) written; dx (rows, channels)
 * written when given. */
PyObject *
batchnorm_backward(PyObject *self, PyObject *args)
{
    PyObject *o[7];
    NormJob j = {0};
    if (!PyArg_ParseTuple(args, "OOOOOOOnn:batchnorm_backward", &o[0], &o[1], &o[2], &o[3],
                          &o[4], &o[5], &o[6], &j.rows, &j.channels))
        return NULL;
    if (j.rows < 1 || j.channels < 1 || j.rows > PY_SSIZE_T_MAX / 8 / j.channels) {
        PyErr_SetString(PyExc_ValueError, "batchnorm_backward: bad rows or channels");
        return NULL;
    }
    const Py_ssize_t size = j.rows * j.channels;
    const KernelArg a[7] = {{o[0], size, 'r'},       {o[1], size, 'r'},
                            {o[2], j.channels, 'r'}, {o[3], j.channels, 'R'},
                            {o[4], size, 'W'},       {o[5], j.channels, 'w'},
                            {o[6], j.channels, 'w'}};
    Py_buffer v[7];
    int single = kernel_take(a, v, 7);
    if (single < 0)
        return NULL;
    j.g = v[0].buf, j.xhat = v[1].buf, j.inv = v[2].buf, j.gamma = v[3].buf, j.dx = v[4].buf;
    j.single = single;
    char *coef = malloc((size_t)(3 * j.channels) * (single ? 4 : 8));
    SampleBlocks blocks = {0};
    if (coef == NULL || blocks_init(&blocks, &j, j.rows, single, 2 * j.channels) < 0) {
        free(coef);
        kernel_give_back(v, 7);
        return PyErr_NoMemory();
    }
    j.coef = coef;
    Py_BEGIN_ALLOW_THREADS
    const char *sums = norm_run(&blocks, &j, 3);
    const size_t item = single ? 4 : 8;
    memcpy(v[5].buf, sums, (size_t)j.channels * item);
    memcpy(v[6].buf, sums + (size_t)j.channels * item, (size_t)j.channels * item);
    if (j.dx != NULL) {
#define BACKWARD_COEF(T)                                                                   \
    {                                                                                      \
        const T *sg = (const T *)sums, *sgx = sg + j.channels;                             \
        const T *inv = (const T *)j.inv, *gamma = (const T *)j.gamma;                      \
        T *a = (T *)coef, *b = a + j.channels, *f = b + j.channels;                        \
        for (Py_ssize_t k = 0; k < j.channels; k++) {                                      \
            a[k] = sgx[k] / (T)j.rows;                                                     \
            b[k] = sg[k] / (T)j.rows;                                                      \
            f[k] = gamma ? inv[k] * gamma[k] : inv[k];                                     \
        }                                                                                  \
    }
        if (single)
            BACKWARD_COEF(float)
        else
            BACKWARD_COEF(double)
#undef BACKWARD_COEF
        norm_run(&blocks, &j, 4);
    }
    Py_END_ALLOW_THREADS
    sample_blocks_free(&blocks);
    free(coef);
    kernel_give_back(v, 7);
    Py_RETURN_NONE;
}
