/* Convolution with few filters, channels_last, computed directly (the NumPy reference is
 * ops/conv.py, _narrow_forward and _narrow_backward: window matrices a chunk at a time and
 * BLAS). With xp the input x (N, H, W, C) zero-padded (read in place: the padding is never
 * built, see conv_tap in kernels.h), the kernel given transposed as Kt (F, kh kw C)
 * (row f is filter f's window, offset by offset, channels inside), outputs (N, OH, OW, F):
 *
 *   y[n, p, q, f] = b[f] + sum_{i, j, c} xp[n, p sh + i dh, q sw + j dw, c] Kt[f, (i kw + j) C + c]
 *   dL/dxp[n, p sh + i dh, q sw + j dw, c] += sum_f G[n, p, q, f] Kt[f, (i kw + j) C + c]
 *   dL/dKt[f, (i kw + j) C + c] = sum_{n, p, q} xp[...] G[n, p, q, f];  dL/db[f] = sum G[..., f]
 *
 * Such a layer (an autoencoder's or a segmentation net's last convolution, F = 1 to a few)
 * has a window matrix kh kw C / F times larger than its output: building it (im2col) costs
 * far more than the products. Here each output is a dot product over its window, read in
 * place: the channels are the vectorised inner loop, summed in one vector's lanes (16
 * float32, 8 float64) that are added at the end. That order differs from BLAS' (which has none fixed):
 * the tests compare with the NumPy path within float rounding.
 *
 * Samples are shared with the helper thread; dL/dKt and dL/db are summed per block of
 * samples, then block by block in order (blocks.c).
 */
#include "kernels.h"

#include <string.h>


#define NARROW_FORWARD(T, V)                                                               \
    const Py_ssize_t width = j->kh * j->kw * j->c, f_all = j->m;                           \
    const Py_ssize_t lanes = (Py_ssize_t)(sizeof(V) / sizeof(T));                          \
    const T *xp = (const T *)j->xp + (size_t)n * j->h * j->w * j->c;                     \
    const T *kt = (const T *)j->k, *bias = (const T *)j->bias;                             \
    T *out = (T *)j->out + (size_t)n * j->oh * j->ow * f_all;                              \
    for (Py_ssize_t p = 0; p < j->oh; p++)                                                 \
        for (Py_ssize_t q = 0; q < j->ow; q++)                                             \
            for (Py_ssize_t f = 0; f < f_all; f++) {                                       \
                V acc = {0};                                                               \
                T rest = 0;                                                                \
                for (Py_ssize_t i = 0; i < j->kh; i++)                                     \
                    for (Py_ssize_t jj = 0; jj < j->kw; jj++) {                            \
                        Py_ssize_t at = conv_tap(j, p, q, i, jj);                          \
                        if (at < 0)                                                        \
                            continue;                                                      \
                        const T *x = xp + at;                                              \
                        const T *kk = kt + f * width + (i * j->kw + jj) * j->c;            \
                        Py_ssize_t c = 0;                                                  \
                        for (; c + lanes <= j->c; c += lanes)                              \
                            acc += *(const V *)(x + c) * *(const V *)(kk + c);             \
                        for (; c < j->c; c++)                                              \
                            rest += x[c] * kk[c];                                          \
                    }                                                                      \
                T sum = bias ? bias[f] + rest : rest;                                      \
                for (Py_ssize_t l = 0; l < lanes; l++)                                     \
                    sum += acc[l];                                                         \
                out[(p * j->ow + q) * f_all + f] = sum;                                    \
            }

/* dL/dx of one sample, gathered: each input element sums, offset by offset, the terms of
 * the windows that read it, in a register, and is written once. */
#define NARROW_INPUT_GRAD(T, V)                                                            \
    const Py_ssize_t width = j->kh * j->kw * j->c, f_all = j->m;                           \
    const Py_ssize_t lanes = (Py_ssize_t)(sizeof(V) / sizeof(T));                          \
    const T *g = (const T *)j->g + (size_t)n * j->oh * j->ow * f_all;                      \
    const T *kt = (const T *)j->k;                                                         \
    T *gx = (T *)j->gx + (size_t)n * j->h * j->w * j->c;                                   \
    for (Py_ssize_t r = 0; r < j->h; r++)                                                  \
        for (Py_ssize_t s = 0; s < j->w; s++) {                                            \
            T *restrict dst = gx + (r * j->w + s) * j->c;                                  \
            Py_ssize_t c = 0;                                                              \
            for (; c + lanes <= j->c; c += lanes) {                                        \
                V acc = {0};                                                               \
                for (Py_ssize_t i = 0; i < j->kh; i++)                                     \
                    for (Py_ssize_t jj = 0; jj < j->kw; jj++) {                            \
                        Py_ssize_t from = conv_source(j, r, s, i, jj);                     \
                        if (from < 0)                                                      \
                            continue;                                                      \
                        const T *kk = kt + (i * j->kw + jj) * j->c + c;                    \
                        for (Py_ssize_t f = 0; f < f_all; f++)                             \
                            acc += g[from * f_all + f] * *(const V *)(kk + f * width);     \
                    }                                                                      \
                *(V *)(dst + c) = acc;                                                     \
            }                                                                              \
            for (; c < j->c; c++) {                                                        \
                T acc = 0;                                                                 \
                for (Py_ssize_t i = 0; i < j->kh; i++)                                     \
                    for (Py_ssize_t jj = 0; jj < j->kw; jj++) {                            \
                        Py_ssize_t from = conv_source(j, r, s, i, jj);                     \
                        if (from < 0)                                                      \
                            continue;                                                      \
                        const T *kk = kt + (i * j->kw + jj) * j->c + c;                    \
                        for (Py_ssize_t f = 0; f < f_all; f++)                             \
                            acc += g[from * f_all + f] * kk[f * width];                    \
                    }                                                                      \
                dst[c] = acc;                                                              \
            }                                                                              \
        }

/* The partial dL/dKt (F, width) and dL/db (F) of samples [first, last). */
#define NARROW_KERNEL_GRAD(T, V)                                                           \
    const Py_ssize_t width = j->kh * j->kw * j->c, f_all = j->m;                           \
    const Py_ssize_t lanes = (Py_ssize_t)(sizeof(V) / sizeof(T));                          \
    memset(part, 0, sizeof(T) * (size_t)(f_all * (width + 1)));                            \
    T *restrict gk = part, *restrict gb = part + f_all * width;                            \
    for (Py_ssize_t n = first; n < last; n++) {                                            \
        const T *xp = (const T *)j->xp + (size_t)n * j->h * j->w * j->c;                 \
        const T *g = (const T *)j->g + (size_t)n * j->oh * j->ow * f_all;                  \
        for (Py_ssize_t p = 0; p < j->oh; p++)                                             \
            for (Py_ssize_t q = 0; q < j->ow; q++) {                                       \
                const T *gr = g + (p * j->ow + q) * f_all;                                 \
                for (Py_ssize_t f = 0; f < f_all; f++)                                     \
                    gb[f] += gr[f];                                                        \
                for (Py_ssize_t i = 0; i < j->kh; i++)                                     \
                    for (Py_ssize_t jj = 0; jj < j->kw; jj++) {                            \
                        Py_ssize_t place = conv_tap(j, p, q, i, jj);                       \
                        if (place < 0)                                                     \
                            continue;                                                      \
                        const T *restrict x = xp + place;                                  \
                        const Py_ssize_t at = (i * j->kw + jj) * j->c;                     \
                        for (Py_ssize_t f = 0; f < f_all; f++) {                           \
                            const T gv = gr[f];                                            \
                            T *restrict acc = gk + f * width + at;                         \
                            Py_ssize_t c = 0;                                              \
                            for (; c + lanes <= j->c; c += lanes)                          \
                                *(V *)(acc + c) += gv * *(const V *)(x + c);               \
                            for (; c < j->c; c++)                                          \
                                acc[c] += gv * x[c];                                       \
                        }                                                                  \
                    }                                                                      \
            }                                                                              \
    }

CONV_SAMPLE_PASS(forward_chunk, NARROW_FORWARD)
CONV_SAMPLE_PASS(input_chunk, NARROW_INPUT_GRAD)
CONV_BLOCK_PASS(kernel_chunk, NARROW_KERNEL_GRAD)

/* narrow_forward(x, kt, bias_or_None, out, sizes, steps): sizes (n, h, w, c, f, kh, kw,
 * oh, ow), steps (sh, sw, dh, dw, pt, pl); kt (f, kh kw c), out (n, oh, ow, f). */
PyObject *
narrow_forward(PyObject *self, PyObject *args)
{
    PyObject *o[4], *sizes, *steps;
    ConvJob j = {0};
    if (!PyArg_ParseTuple(args, "OOOOO!O!:narrow_forward", &o[0], &o[1], &o[2], &o[3],
                          &PyTuple_Type, &sizes, &PyTuple_Type, &steps) ||
        conv_parse_geometry(sizes, steps, &j) < 0)
        return NULL;
    const KernelArg a[4] = {{o[0], j.n * j.h * j.w * j.c, 'r'},
                            {o[1], j.m * j.kh * j.kw * j.c, 'r'},
                            {o[2], j.m, 'R'},
                            {o[3], j.n * j.oh * j.ow * j.m, 'w'}};
    Py_buffer v[4];
    int single = kernel_take(a, v, 4);
    if (single < 0)
        return NULL;
    j.xp = v[0].buf, j.k = v[1].buf, j.bias = v[2].buf, j.out = v[3].buf, j.single = single;
    Py_BEGIN_ALLOW_THREADS
    parallel_for((long)j.n, forward_chunk, &j, j.n * j.oh * j.ow * j.kh * j.kw * j.c >= SPLIT_FROM);
    Py_END_ALLOW_THREADS
    kernel_give_back(v, 4);
    Py_RETURN_NONE;
}

/* narrow_backward(g, x_or_None, kt_or_None, gx_or_None, gkt_or_None, gb_or_None, sizes,
 * steps): gx (unpadded, like x) needs the kernel kt; gkt and gb (one pass) need x. */
PyObject *
narrow_backward(PyObject *self, PyObject *args)
{
    PyObject *o[6], *sizes, *steps;
    ConvJob j = {0};
    if (!PyArg_ParseTuple(args, "OOOOOOO!O!:narrow_backward", &o[0], &o[1], &o[2], &o[3],
                          &o[4], &o[5], &PyTuple_Type, &sizes, &PyTuple_Type, &steps) ||
        conv_parse_geometry(sizes, steps, &j) < 0)
        return NULL;
    const Py_ssize_t width = j.kh * j.kw * j.c;
    const KernelArg a[6] = {{o[0], j.n * j.oh * j.ow * j.m, 'r'},
                            {o[1], j.n * j.h * j.w * j.c, 'R'},
                            {o[2], j.m * width, 'R'},
                            {o[3], j.n * j.h * j.w * j.c, 'W'},
                            {o[4], j.m * width, 'W'},
                            {o[5], j.m, 'W'}};
    Py_buffer v[6];
    int single = kernel_take(a, v, 6);
    if (single < 0)
        return NULL;
    j.g = v[0].buf, j.xp = v[1].buf, j.k = v[2].buf, j.gx = v[3].buf, j.gk = v[4].buf;
    j.gb = v[5].buf, j.single = single;
    if ((j.gx != NULL && j.k == NULL) || ((j.gk != NULL || j.gb != NULL) && j.xp == NULL)) {
        kernel_give_back(v, 6);
        PyErr_SetString(PyExc_ValueError,
                        "dendrite narrow convolution: dL/dxp needs the kernel, dL/dK xp");
        return NULL;
    }
    int split = j.n * j.oh * j.ow * width >= SPLIT_FROM;
    SampleBlocks blocks = {0};
    int sums = j.gk != NULL || j.gb != NULL;
    if (sums && sample_blocks_init(&blocks, &j, j.m * (width + 1)) < 0) {
        kernel_give_back(v, 6);
        return PyErr_NoMemory();
    }
    size_t item = single ? 4 : 8;
    Py_BEGIN_ALLOW_THREADS
    if (j.gx != NULL)
        parallel_for((long)j.n, input_chunk, &j, split);
    if (sums) {
        const char *sum = sample_blocks_run(&blocks, kernel_chunk, split);
        if (j.gk != NULL)
            memcpy(j.gk, sum, (size_t)(j.m * width) * item);
        if (j.gb != NULL)
            memcpy(j.gb, sum + (size_t)(j.m * width) * item, (size_t)j.m * item);
    }
    Py_END_ALLOW_THREADS
    sample_blocks_free(&blocks);
    kernel_give_back(v, 6);
    Py_RETURN_NONE;
}
