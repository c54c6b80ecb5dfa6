/* Depthwise convolution, channels_last (the NumPy reference is ops/conv.py,
 * _depthwise_forward and _depthwise_backward): with xp the input x (N, H, W, C) zero-padded
 * (read in place: the padding is never built, see conv_tap in kernels.h), the kernel K
 * (kh, kw, C, M) and outputs (N, OH, OW, C M),
 *
 *   y[n, p, q, c M + m] = sum over offsets (i, j) in order of
 *                         xp[n, p sh + i dh, q sw + j dw, c] K[i, j, c, m]
 *
 *   dL/dxp[n, p sh + i dh, q sw + j dw, c] += sum_m G[n, p, q, c M + m] K[i, j, c, m],
 *       offset by offset in order, as NumPy's one slab-add per offset;
 *   dL/dK[i, j, c, m] = sum over n, p, q of xp[...] G[n, p, q, c M + m].
 *
 * y gets NumPy's bits (each element receives its terms in the same order, each product
 * rounded before it is added; the padding's zero terms are skipped, which changes only
 * the sign of a zero, or, with an infinite or NaN weight, gives a finite border where
 * NumPy's 0 * inf is NaN), and so does dL/dxp for depth multipliers up to 8 (NumPy
 * sums a longer filter axis pairwise, 8 at a time; here it is summed in order). dL/dK is
 * summed sample by sample within blocks of samples, then block by block (blocks.c), an
 * order NumPy's pairwise reductions do not share: it agrees with the NumPy path to float
 * rounding (the tests bound it). NumPy needs two passes over the whole output per offset;
 * here one sample's windows stay in cache while every offset runs over them, with the
 * channels as the vectorised inner loop (with one filter per channel, a vector of
 * channels keeps its sum in a register across the offsets). Samples, and the blocks of
 * dL/dK, are shared with the helper thread for large jobs; the result does not depend on
 * which thread did which.
 */
#include "kernels.h"

#include <string.h>

#define DW_FORWARD(T, V)                                                                    \
    const T *xp = (const T *)j->xp + (size_t)n * j->h * j->w * j->c;                     \
    const T *k = (const T *)j->k;                                                          \
    const Py_ssize_t f = j->c * j->m;                                                      \
    T *out = (T *)j->out + (size_t)n * j->oh * j->ow * f;                                  \
    const Py_ssize_t lanes = (Py_ssize_t)(sizeof(V) / sizeof(T));                          \
    for (Py_ssize_t p = 0; p < j->oh; p++)                                                 \
        for (Py_ssize_t q = 0; q < j->ow; q++) {                                           \
            T *restrict o = out + (p * j->ow + q) * f;                                     \
            if (j->m == 1) {                                                               \
                /* A vector of channels at a time, its sum kept in a register over the */ \
                /* offsets (each element still gets its terms in offset order). */        \
                Py_ssize_t ch = 0;                                                         \
                for (; ch + lanes <= j->c; ch += lanes) {                                  \
                    V acc = {0};                                                           \
                    int first = 1;                                                         \
                    for (Py_ssize_t i = 0; i < j->kh; i++)                                 \
                        for (Py_ssize_t jj = 0; jj < j->kw; jj++) {                        \
                            Py_ssize_t at = conv_tap(j, p, q, i, jj);                      \
                            if (at < 0)                                                    \
                                continue;                                                  \
                            V term = *(const V *)(xp + at + ch) *                          \
                                     *(const V *)(k + (i * j->kw + jj) * f + ch);          \
                            acc = first ? term : acc + term;                               \
                            first = 0;                                                     \
                        }                                                                  \
                    *(V *)(o + ch) = acc;                                                  \
                }                                                                          \
                if (ch == j->c)                                                            \
                    continue;                                                              \
            }                                                                              \
            int first = 1;                                                                 \
            for (Py_ssize_t i = 0; i < j->kh; i++)                                         \
                for (Py_ssize_t jj = 0; jj < j->kw; jj++) {                                \
                    Py_ssize_t at = conv_tap(j, p, q, i, jj);                              \
                    if (at < 0)                                                            \
                        continue;                                                          \
                    const T *restrict x = xp + at;                                         \
                    const T *restrict kk = k + (i * j->kw + jj) * f;                       \
                    if (first) {                                                           \
                        first = 0;                                                         \
                        if (j->m == 1)                                                     \
                            for (Py_ssize_t ch = 0; ch < j->c; ch++)                       \
                                o[ch] = x[ch] * kk[ch];                                    \
                        else                                                               \
                            for (Py_ssize_t ch = 0; ch < j->c; ch++)                       \
                                for (Py_ssize_t mm = 0; mm < j->m; mm++)                   \
                                    o[ch * j->m + mm] = x[ch] * kk[ch * j->m + mm];        \
                    } else if (j->m == 1) {                                                \
                        for (Py_ssize_t ch = 0; ch < j->c; ch++)                           \
                            o[ch] += x[ch] * kk[ch];                                       \
                    } else {                                                               \
                        for (Py_ssize_t ch = 0; ch < j->c; ch++)                           \
                            for (Py_ssize_t mm = 0; mm < j->m; mm++)                       \
                                o[ch * j->m + mm] += x[ch] * kk[ch * j->m + mm];           \
                    }                                                                      \
                }                                                                          \
            if (first) /* every window place in the padding */                            \
                memset(o, 0, sizeof(T) * (size_t)f);                                       \
        }

/* dL/dx of one sample, gathered: each input element sums the terms of the windows that
 * read it, offset by offset in order (the order of NumPy's one slab-add per offset), in a
 * register, and is written once. */
#define DW_INPUT_GRAD(T, V)                                                                \
    const Py_ssize_t lanes = (Py_ssize_t)(sizeof(V) / sizeof(T));                          \
    const T *g = (const T *)j->g + (size_t)n * j->oh * j->ow * j->c * j->m;                \
    const T *k = (const T *)j->k;                                                          \
    const Py_ssize_t f = j->c * j->m;                                                      \
    T *gx = (T *)j->gx + (size_t)n * j->h * j->w * j->c;                                   \
    for (Py_ssize_t r = 0; r < j->h; r++)                                                  \
        for (Py_ssize_t s = 0; s < j->w; s++) {                                            \
            T *restrict dst = gx + (r * j->w + s) * j->c;                                  \
            Py_ssize_t ch = 0;                                                             \
            if (j->m == 1)                                                                 \
                for (; ch + lanes <= j->c; ch += lanes) {                                  \
                    V acc = {0};                                                           \
                    for (Py_ssize_t i = 0; i < j->kh; i++)                                 \
                        for (Py_ssize_t jj = 0; jj < j->kw; jj++) {                        \
                            Py_ssize_t from = conv_source(j, r, s, i, jj);                 \
                            if (from >= 0)                                                 \
                                acc += *(const V *)(g + from * f + ch) *                   \
                                       *(const V *)(k + (i * j->kw + jj) * f + ch);        \
                        }                                                                  \
                    *(V *)(dst + ch) = acc;                                                \
                }                                                                          \
            for (; ch < j->c; ch++) {                                                      \
                T acc = 0;                                                                 \
                for (Py_ssize_t i = 0; i < j->kh; i++)                                     \
                    for (Py_ssize_t jj = 0; jj < j->kw; jj++) {                            \
                        Py_ssize_t from = conv_source(j, r, s, i, jj);                     \
                        if (from < 0)                                                      \
                            continue;                                                      \
                        const T *gr = g + from * f + ch * j->m;                            \
                        const T *kk = k + (i * j->kw + jj) * f + ch * j->m;                \
                        T sum = gr[0] * kk[0];                                             \
                        for (Py_ssize_t mm = 1; mm < j->m; mm++)                           \
                            sum += gr[mm] * kk[mm];                                        \
                        acc += sum;                                                        \
                    }                                                                      \
                dst[ch] = acc;                                                             \
            }                                                                              \
        }

/* dL/dK, every offset at once: one pass over each sample's windows and gradients (which
 * stay in cache), each dL/dK element receiving its terms in the order (n, p, q). */
#define DW_KERNEL_GRAD(T, V)                                                               \
    const Py_ssize_t lanes = (Py_ssize_t)(sizeof(V) / sizeof(T));                          \
    const Py_ssize_t f = j->c * j->m;                                                      \
    T *gk = part;                                                                          \
    memset(gk, 0, sizeof(T) * (size_t)(j->kh * j->kw * f));                                \
    for (Py_ssize_t n = first; n < last; n++) {                                            \
        const T *xp = (const T *)j->xp + (size_t)n * j->h * j->w * j->c;                 \
        const T *g = (const T *)j->g + (size_t)n * j->oh * j->ow * f;                      \
        for (Py_ssize_t p = 0; p < j->oh; p++)                                             \
            for (Py_ssize_t q = 0; q < j->ow; q++) {                                       \
                const T *restrict gr = g + (p * j->ow + q) * f;                            \
                for (Py_ssize_t i = 0; i < j->kh; i++)                                     \
                    for (Py_ssize_t jj = 0; jj < j->kw; jj++) {                            \
                        Py_ssize_t at = conv_tap(j, p, q, i, jj);                          \
                        if (at < 0)                                                        \
                            continue;                                                      \
                        const T *restrict x = xp + at;                                     \
                        T *restrict acc = gk + (i * j->kw + jj) * f;                       \
                        if (j->m == 1) {                                                   \
                            Py_ssize_t ch = 0;                                             \
                            for (; ch + lanes <= j->c; ch += lanes)                        \
                                *(V *)(acc + ch) += *(const V *)(x + ch) * *(const V *)(gr + ch); \
                            for (; ch < j->c; ch++)                                        \
                                acc[ch] += x[ch] * gr[ch];                                 \
                        } else                                                             \
                            for (Py_ssize_t ch = 0; ch < j->c; ch++)                       \
                                for (Py_ssize_t mm = 0; mm < j->m; mm++)                   \
                                    acc[ch * j->m + mm] += x[ch] * gr[ch * j->m + mm];     \
                    }                                                                      \
            }                                                                              \
    }

CONV_SAMPLE_PASS(forward_chunk, DW_FORWARD)
CONV_SAMPLE_PASS(input_chunk, DW_INPUT_GRAD)
CONV_BLOCK_PASS(kernel_chunk, DW_KERNEL_GRAD)

int
conv_parse_geometry(PyObject *sizes, PyObject *steps, ConvJob *j)
{
    if (!PyArg_ParseTuple(sizes, "nnnnnnnnn", &j->n, &j->h, &j->w, &j->c, &j->m, &j->kh,
                          &j->kw, &j->oh, &j->ow) ||
        !PyArg_ParseTuple(steps, "nnnnnn", &j->sh, &j->sw, &j->dh, &j->dw, &j->pt, &j->pl))
        return -1;
    const Py_ssize_t all[] = {j->n,  j->h,  j->w,  j->c,  j->m,  j->kh, j->kw,
                              j->oh, j->ow, j->sh, j->sw, j->dh, j->dw};
    for (size_t k = 0; k < sizeof(all) / sizeof(all[0]); k++)
        if (all[k] < 1 || all[k] > (1 << 24))
            goto bad;
    if (j->pt < 0 || j->pl < 0 || j->pt > (1 << 24) || j->pl > (1 << 24))
        goto bad;
    if (j->c * j->m > PY_SSIZE_T_MAX / 8 / j->n / j->oh / j->ow ||
        j->c * j->m > PY_SSIZE_T_MAX / 8 / j->kh / j->kw ||
        j->c > PY_SSIZE_T_MAX / 8 / j->n / j->h / j->w)
        goto bad;
    return 0;
bad:
    PyErr_SetString(PyExc_ValueError, "dendrite convolution kernels: bad sizes or steps");
    return -1;
}

/* depthwise_forward(x, kernel, out, sizes, steps): sizes (n, h, w, c, m, kh, kw, oh, ow),
 * steps (sh, sw, dh, dw, pt, pl). */
PyObject *
depthwise_forward(PyObject *self, PyObject *args)
{
    PyObject *o[3], *sizes, *steps;
    ConvJob j = {0};
    if (!PyArg_ParseTuple(args, "OOOO!O!:depthwise_forward", &o[0], &o[1], &o[2], &PyTuple_Type,
                          &sizes, &PyTuple_Type, &steps) ||
        conv_parse_geometry(sizes, steps, &j) < 0)
        return NULL;
    const KernelArg a[3] = {{o[0], j.n * j.h * j.w * j.c, 'r'},
                            {o[1], j.kh * j.kw * j.c * j.m, 'r'},
                            {o[2], j.n * j.oh * j.ow * j.c * j.m, 'w'}};
    Py_buffer v[3];
    int single = kernel_take(a, v, 3);
    if (single < 0)
        return NULL;
    j.xp = v[0].buf, j.k = v[1].buf, j.out = v[2].buf, j.single = single;
    Py_BEGIN_ALLOW_THREADS
    parallel_for((long)j.n, forward_chunk, &j, j.n * j.oh * j.ow * j.c * j.m >= SPLIT_FROM);
    Py_END_ALLOW_THREADS
    kernel_give_back(v, 3);
    Py_RETURN_NONE;
}

/* depthwise_backward(g, x_or_None, kernel_or_None, gx_or_None, gk_or_None, sizes, steps):
 * x is needed for gk, the kernel for gx (unpadded, like x). */
PyObject *
depthwise_backward(PyObject *self, PyObject *args)
{
    PyObject *o[5], *sizes, *steps;
    ConvJob j = {0};
    if (!PyArg_ParseTuple(args, "OOOOOO!O!:depthwise_backward", &o[0], &o[1], &o[2], &o[3],
                          &o[4], &PyTuple_Type, &sizes, &PyTuple_Type, &steps) ||
        conv_parse_geometry(sizes, steps, &j) < 0)
        return NULL;
    const KernelArg a[5] = {{o[0], j.n * j.oh * j.ow * j.c * j.m, 'r'},
                            {o[1], j.n * j.h * j.w * j.c, 'R'},
                            {o[2], j.kh * j.kw * j.c * j.m, 'R'},
                            {o[3], j.n * j.h * j.w * j.c, 'W'},
                            {o[4], j.kh * j.kw * j.c * j.m, 'W'}};
    Py_buffer v[5];
    int single = kernel_take(a, v, 5);
    if (single < 0)
        return NULL;
    j.g = v[0].buf, j.xp = v[1].buf, j.k = v[2].buf, j.gx = v[3].buf, j.gk = v[4].buf;
    j.single = single;
    if ((j.gx != NULL && j.k == NULL) || (j.gk != NULL && j.xp == NULL)) {
        kernel_give_back(v, 5);
        PyErr_SetString(PyExc_ValueError,
                        "dendrite depthwise kernels: dL/dxp needs the kernel, dL/dK needs xp");
        return NULL;
    }
    int split = j.n * j.oh * j.ow * j.c * j.m >= SPLIT_FROM;
    SampleBlocks blocks = {0};
    if (j.gk != NULL && sample_blocks_init(&blocks, &j, j.kh * j.kw * j.c * j.m) < 0) {
        kernel_give_back(v, 5);
        return PyErr_NoMemory();
    }
    Py_BEGIN_ALLOW_THREADS
    if (j.gx != NULL)
        parallel_for((long)j.n, input_chunk, &j, split);
    if (j.gk != NULL)
        memcpy(j.gk, sample_blocks_run(&blocks, kernel_chunk, split),
               (size_t)blocks.part_size * (single ? 4 : 8));
    Py_END_ALLOW_THREADS
    sample_blocks_free(&blocks);
    kernel_give_back(v, 5);
    Py_RETURN_NONE;
}
