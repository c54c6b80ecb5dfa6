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
 * rows (each block's sum in order, then the blocks in order), where NumPy sums pairwise:
 * the results agree within float rounding (tests/test_kernels_batchnorm.py), and do not
 * depend on which thread summed which block. Blocks and runs of rows are shared with the
 * helper thread for large arrays; the channels are the vectorised inner loop.
 */
#include "kernels.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define NORM_BLOCKS 32

typedef struct {
    const char *x, *g, *gamma, *beta;
    char *out, *xhat, *dx;
    char *mean, *variance, *inv; /* (C,) each; read by the later passes */
    char *parts;                 /* NORM_BLOCKS partial sums of 2 C values */
    char *coef;                  /* backward: 3 C values, sgx / m, sg / m, inv gamma */
    Py_ssize_t rows, channels, per_block, blocks;
    double epsilon;
    int single, pass;
} NormJob;

/* Rows [first, last) of block `index`. */
static void
rows_of(const NormJob *j, long index, Py_ssize_t *first, Py_ssize_t *last)
{
    *first = index * j->per_block;
    *last = *first + j->per_block < j->rows ? *first + j->per_block : j->rows;
}

/* Pass 0: sums of x; pass 1: sums of (x - mean)^2; pass 2: xhat and y; backward pass 3:
 * sums of g and g xhat; pass 4: dx. Block `index` of rows. */
#define NORM_PASS(T)                                                                       \
    Py_ssize_t first, last;                                                                \
    rows_of(j, index, &first, &last);                                                      \
    const Py_ssize_t c = j->channels;                                                      \
    const T *restrict mean = (const T *)j->mean, *restrict inv = (const T *)j->inv;        \
    T *restrict part = (T *)j->parts + index * 2 * c;                                      \
    if (j->pass <= 1 || j->pass == 3)                                                      \
        memset(part, 0, (size_t)(2 * c) * sizeof(T));                                      \
    for (Py_ssize_t r = first; r < last; r++) {                                            \
        const T *restrict x = (const T *)j->x + r * c;                                     \
        switch (j->pass) {                                                                 \
        case 0:                                                                            \
            for (Py_ssize_t k = 0; k < c; k++)                                             \
                part[k] += x[k];                                                           \
            break;                                                                         \
        case 1:                                                                            \
            for (Py_ssize_t k = 0; k < c; k++) {                                           \
                T d = x[k] - mean[k];                                                      \
                part[k] += d * d;                                                          \
            }                                                                              \
            break;                                                                         \
        case 2: {                                                                          \
            T *restrict xh = (T *)j->xhat + r * c, *restrict y = (T *)j->out + r * c;      \
            const T *restrict gamma = (const T *)j->gamma, *restrict beta = (const T *)j->beta; \
            for (Py_ssize_t k = 0; k < c; k++)                                             \
                xh[k] = (x[k] - mean[k]) * inv[k];                                         \
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
        case 3: {                                                                          \
            const T *restrict g = (const T *)j->g + r * c, *restrict xh = (const T *)j->xhat + r * c; \
            for (Py_ssize_t k = 0; k < c; k++) {                                           \
                part[k] += g[k];                                                           \
                part[c + k] += g[k] * xh[k];                                               \
            }                                                                              \
            break;                                                                         \
        }                                                                                  \
        default: {                                                                         \
            const T *restrict g = (const T *)j->g + r * c, *restrict xh = (const T *)j->xhat + r * c; \
            const T *restrict a = (const T *)j->coef, *restrict b = a + c, *restrict f = b + c; \
            T *restrict dx = (T *)j->dx + r * c;                                           \
            for (Py_ssize_t k = 0; k < c; k++)                                             \
                dx[k] = ((g[k] - xh[k] * a[k]) - b[k]) * f[k];                                \
        }                                                                                  \
        }                                                                                  \
    }

VECTOR_CLONES static void norm_f32(const NormJob *j, long index) { NORM_PASS(float) }
VECTOR_CLONES static void norm_f64(const NormJob *j, long index) { NORM_PASS(double) }

static void
norm_chunk(const void *context, long index)
{
    const NormJob *j = context;
    if (j->single)
        norm_f32(j, index);
    else
        norm_f64(j, index);
}

/* Run pass `pass` over every block; for the summing passes, add the blocks' partial sums
 * in block order into the first `width` values of the first partial. */
#define SUM_PARTS(T, width)                                                                \
    {                                                                                      \
        T *parts = (T *)j->parts;                                                          \
        for (Py_ssize_t b = 1; b < j->blocks; b++)                                         \
            for (Py_ssize_t k = 0; k < (width); k++)                                       \
                parts[k] += parts[b * 2 * j->channels + k];                                \
    }

static void
norm_run(NormJob *j, int pass, Py_ssize_t width)
{
    j->pass = pass;
    parallel_for((long)j->blocks, norm_chunk, j, j->rows * j->channels >= SPLIT_FROM);
    if (width) {
        if (j->single)
            SUM_PARTS(float, width)
        else
            SUM_PARTS(double, width)
    }
}

/* The per-channel statistics from the summed partials, in the reference's operations:
 * the mean after pass 0, the variance and inv after pass 1 (a float's square root taken
 * in double and rounded is the float's correctly rounded square root). */
#define FINISH_STATS(T)                                                                    \
    {                                                                                      \
        const T *sum = (const T *)j->parts;                                                \
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
norm_stats(NormJob *j, int pass)
{
    norm_run(j, pass, j->channels);
    if (j->single)
        FINISH_STATS(float)
    else
        FINISH_STATS(double)
}

static int
norm_blocks(NormJob *j)
{
    j->blocks = j->rows < NORM_BLOCKS ? j->rows : NORM_BLOCKS;
    j->per_block = (j->rows + j->blocks - 1) / j->blocks;
    j->blocks = (j->rows + j->per_block - 1) / j->per_block;
    j->parts = malloc((size_t)(j->blocks * 2 * j->channels) * (j->single ? 4 : 8));
    return j->parts == NULL ? -1 : 0;
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
    if (norm_blocks(&j) < 0) {
        kernel_give_back(v, 8);
        return PyErr_NoMemory();
    }
    Py_BEGIN_ALLOW_THREADS
    norm_stats(&j, 0);
    norm_stats(&j, 1);
    norm_run(&j, 2, 0);
    Py_END_ALLOW_THREADS
    free(j.parts);
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
    if (coef == NULL || norm_blocks(&j) < 0) {
        free(coef);
        kernel_give_back(v, 7);
        return PyErr_NoMemory();
    }
    j.coef = coef;
    Py_BEGIN_ALLOW_THREADS
    norm_run(&j, 3, 2 * j.channels);
    const size_t item = single ? 4 : 8;
    memcpy(v[5].buf, j.parts, (size_t)j.channels * item);
    memcpy(v[6].buf, j.parts + (size_t)j.channels * item, (size_t)j.channels * item);
    if (j.dx != NULL) {
#define BACKWARD_COEF(T)                                                                   \
    {                                                                                      \
        const T *sg = (const T *)j.parts, *sgx = sg + j.channels;                          \
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
        norm_run(&j, 4, 0);
    }
    Py_END_ALLOW_THREADS
    free(j.parts);
    free(coef);
    kernel_give_back(v, 7);
    Py_RETURN_NONE;
}
