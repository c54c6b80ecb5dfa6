/* A 3x3 convolution (stride 1, no dilation), with a 2x2 max pooling after it or alone, by
 * Winograd's minimal filtering F(2x2, 3x3) (Lavin and Gray, 2016): the element-wise
 * transforms around the products, which stay in BLAS (driven by ops/winograd.py).
 *
 * Each 2x2 pooling window (or 2x2 block) of the convolution's output is one output tile
 * (a plain convolution's last row or column of tiles may stand half outside an odd-sized
 * output: its outside half is computed and dropped, and has no gradient). Its 4x4 input
 * tile d (rows 2p - pt .. 2p - pt + 3, columns 2q - pl .. 2q - pl + 3 of the unpadded
 * input x, zero outside it) and the filter g (3x3) give
 *
 *   Y = A^T [(G g G^T) . (B^T d B)] A              (. element-wise, 4x4; Y is 2x2)
 *
 *   B^T = [1  0 -1  0]    G = [1    0    0  ]    A^T = [1  1  1  0]
 *         [0  1  1  0]        [1/2  1/2  1/2]          [0  1 -1 -1]
 *         [0 -1  1  0]        [1/2 -1/2  1/2]
 *         [0  1  0 -1]        [0    0    1  ]
 *
 * and the sum over the input channels runs in the transform domain: for each of its 16
 * places e, M_e = V_e U_e with V_e (tiles, C) = (B^T d B)_e and U_e (C, F) = (G g G^T)_e,
 * 16 products with 2.25 times fewer multiplications than the direct convolution's.
 *
 * - winograd_input:  V[e, t, c] from x (n, h, w, c), tile t = (n PH + p) PW + q;
 * - winograd_pool:   out[t, f] = relu?(max_k Y_k + b[f]) and the first winner k, in the
 *                    pooling window's row-major order (as pool_max: a later k takes over
 *                    only where strictly greater), from M (16, T, F);
 * - winograd_unpool: the VJP of both: with gm = g * (relu_out > 0), dM_e = gm A[a, di]
 *                    A[b, dj] for e = 4 a + b and the winner k = 2 di + dj (A's entries
 *                    are 0 and +-1, so each is gm, -gm or 0 exactly);
 * - winograd_input_grad: dx from dV (16, T, c): each tile's B dV B^T added into x's
 *                    places, the tiles of a sample in order (tiles overlap by two rows
 *                    and columns);
 * - winograd_output, winograd_output_grad: a plain convolution's Y = A^T M A written to
 *                    its output, and its VJP dM = A dY A^T.
 *
 * The sums are not the direct convolution's (the transforms round): the tests compare with
 * the im2col path within float rounding. The results do not depend on the threads: each
 * value is computed by one thread, and the samples (their tiles) or runs of tiles are the
 * parallel chunks.
 */
#include "kernels.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    ConvJob conv;       /* sizes (n, h, w, c, f, 3, 3, PH, PW), steps (1, 1, 1, 1, pt, pl) */
    const char *m, *dv; /* (16, T, F), (16, T, c) */
    char *v, *d;        /* (16, T, c), (16, T, F) */
    const char *relu_out;
    char *masked;
    uint8_t *winner;
    const char *zeros; /* c zeros: the input tile's places in the padding read them */
    char *sinks;       /* c values per sample: where the padding's gradient goes */
    Py_ssize_t tiles, per_chunk;
    Py_ssize_t out_h, out_w; /* a plain convolution's output (its tiles: (out_h + 1) / 2 ...) */
    int relu;
} WinogradJob;

/* The loops below read and write through tables of 16 pointers, which GCC cannot prove
 * apart: IVDEP tells it they are (every array is another plane or place). */
#define IVDEP _Pragma("GCC ivdep")

/* The input transform of one sample's tiles, B^T d B, a vector of channels at a time. */
#define INPUT_PASS(T)                                                                      \
    const ConvJob *j = &s->conv;                                                           \
    const Py_ssize_t c = j->c, plane = s->tiles * c;                                       \
    const T *x = (const T *)j->xp + (size_t)n * j->h * j->w * c;                           \
    for (Py_ssize_t p = 0; p < j->oh; p++)                                                 \
        for (Py_ssize_t q = 0; q < j->ow; q++) {                                           \
            const T *d[16];                                                                \
            T *v[16];                                                                      \
            for (int i = 0; i < 4; i++)                                                    \
                for (int jj = 0; jj < 4; jj++) {                                           \
                    Py_ssize_t row = 2 * p - j->pt + i, col = 2 * q - j->pl + jj;          \
                    d[4 * i + jj] = (row < 0 || row >= j->h || col < 0 || col >= j->w)     \
                                        ? (const T *)s->zeros                              \
                                        : x + (row * j->w + col) * c;                      \
                }                                                                          \
            for (int e = 0; e < 16; e++)                                                   \
                v[e] = (T *)s->v + e * plane + ((n * j->oh + p) * j->ow + q) * c;          \
            IVDEP for (Py_ssize_t ch = 0; ch < c; ch++)                                    \
            {                                                                              \
                T u[16];                                                                   \
                for (int jj = 0; jj < 4; jj++) {                                           \
                    T d0 = d[jj][ch], d1 = d[4 + jj][ch];                                  \
                    T d2 = d[8 + jj][ch], d3 = d[12 + jj][ch];                             \
                    u[jj] = d0 - d2, u[4 + jj] = d1 + d2;                                  \
                    u[8 + jj] = d2 - d1, u[12 + jj] = d1 - d3;                             \
                }                                                                          \
                for (int a = 0; a < 4; a++) {                                              \
                    T u0 = u[4 * a], u1 = u[4 * a + 1], u2 = u[4 * a + 2], u3 = u[4 * a + 3]; \
                    v[4 * a][ch] = u0 - u2, v[4 * a + 1][ch] = u1 + u2;                    \
                    v[4 * a + 2][ch] = u2 - u1, v[4 * a + 3][ch] = u1 - u3;                \
                }                                                                          \
            }                                                                              \
        }

/* The output transform and the pooling of tiles [first, last): Y's rows A^T m, then its
 * columns, for a block of filters into `y` (place by place), then pool_max's loops over
 * Y's four values in row-major order. */
#define POOL_BLOCK 64
#define POOL_PASS(T)                                                                       \
    const Py_ssize_t f = s->conv.m, plane = s->tiles * f;                                  \
    T y[4 * POOL_BLOCK];                                                                   \
    for (Py_ssize_t t = first; t < last; t++)                                              \
        for (Py_ssize_t k0 = 0; k0 < f; k0 += POOL_BLOCK) {                                \
            const Py_ssize_t count = f - k0 < POOL_BLOCK ? f - k0 : POOL_BLOCK;            \
            const T *m[16];                                                                \
            for (int e = 0; e < 16; e++)                                                   \
                m[e] = (const T *)s->m + e * plane + t * f + k0;                           \
            IVDEP for (Py_ssize_t k = 0; k < count; k++)                                   \
            {                                                                              \
                T r0[4], r1[4];                                                            \
                for (int b = 0; b < 4; b++) {                                              \
                    T m0 = m[b][k], m1 = m[4 + b][k], m2 = m[8 + b][k], m3 = m[12 + b][k]; \
                    r0[b] = m0 + m1 + m2, r1[b] = m1 - m2 - m3;                            \
                }                                                                          \
                y[k] = r0[0] + r0[1] + r0[2], y[POOL_BLOCK + k] = r0[1] - r0[2] - r0[3];   \
                y[2 * POOL_BLOCK + k] = r1[0] + r1[1] + r1[2];                             \
                y[3 * POOL_BLOCK + k] = r1[1] - r1[2] - r1[3];                             \
            }                                                                              \
            T *restrict out = (T *)s->conv.out + t * f + k0;                               \
            uint8_t *restrict winner = s->winner + t * f + k0;                             \
            const T *restrict bias = s->conv.bias ? (const T *)s->conv.bias + k0 : NULL;   \
            POOL_MAX_ROWS(T, out, winner, y, POOL_BLOCK, 4, count, bias, count, s->relu)   \
        }

/* dM for tiles [first, last): the winner's 2x2 gradient through A (see the header). */
#define UNPOOL_PASS(T)                                                                     \
    const Py_ssize_t f = s->conv.m, plane = s->tiles * f;                                  \
    const T *g = (const T *)s->conv.g, *relu_out = (const T *)s->relu_out;                 \
    T *masked = (T *)s->masked, *d[16];                                                    \
    const uint8_t *winner = s->winner;                                                     \
    for (int e = 0; e < 16; e++)                                                           \
        d[e] = (T *)s->d + e * plane;                                                      \
    IVDEP for (Py_ssize_t i = first * f; i < last * f; i++)                                \
    {                                                                                      \
        T gm = relu_out ? g[i] * (T)(relu_out[i] > 0) : g[i];                              \
        if (masked)                                                                        \
            masked[i] = gm;                                                                \
        const int won = winner[i];                                                         \
        const T di = (T)(won >> 1), dj = (T)(won & 1);                                     \
        const T ca[4] = {1 - di, 1, 1 - 2 * di, -di};                                      \
        const T cb[4] = {1 - dj, 1, 1 - 2 * dj, -dj};                                      \
        for (int a = 0; a < 4; a++)                                                        \
            for (int b = 0; b < 4; b++)                                                    \
                d[4 * a + b][i] = gm * ca[a] * cb[b];                                      \
    }

/* One sample's input gradient: each tile's B dV B^T (columns, then rows: the transpose of
 * the input transform), added into the sample's zeroed gradient in tile order; the places
 * in the padding add into `sink`, which is thrown away. */
#define INPUT_GRAD_PASS(T)                                                                 \
    const ConvJob *j = &s->conv;                                                           \
    const Py_ssize_t c = j->c, plane = s->tiles * c;                                       \
    T *gx = (T *)j->gx + (size_t)n * j->h * j->w * c;                                      \
    memset(gx, 0, (size_t)(j->h * j->w * c) * sizeof(T));                                 \
    for (Py_ssize_t p = 0; p < j->oh; p++)                                                 \
        for (Py_ssize_t q = 0; q < j->ow; q++) {                                           \
            const T *v[16];                                                                \
            T *to[16];                                                                     \
            for (int e = 0; e < 16; e++)                                                   \
                v[e] = (const T *)s->dv + e * plane + ((n * j->oh + p) * j->ow + q) * c;   \
            for (int i = 0; i < 4; i++)                                                    \
                for (int jj = 0; jj < 4; jj++) {                                           \
                    Py_ssize_t row = 2 * p - j->pt + i, col = 2 * q - j->pl + jj;          \
                    to[4 * i + jj] = (row < 0 || row >= j->h || col < 0 || col >= j->w)    \
                                         ? sink                                            \
                                         : gx + (row * j->w + col) * c;                    \
                }                                                                          \
            IVDEP for (Py_ssize_t ch = 0; ch < c; ch++)                                    \
            {                                                                              \
                T w[16];                                                                   \
                for (int a = 0; a < 4; a++) {                                              \
                    T v0 = v[4 * a][ch], v1 = v[4 * a + 1][ch];                            \
                    T v2 = v[4 * a + 2][ch], v3 = v[4 * a + 3][ch];                        \
                    w[4 * a] = v0, w[4 * a + 1] = v1 - v2 + v3;                            \
                    w[4 * a + 2] = v1 + v2 - v0, w[4 * a + 3] = -v3;                       \
                }                                                                          \
                for (int jj = 0; jj < 4; jj++) {                                           \
                    T w0 = w[jj], w1 = w[4 + jj], w2 = w[8 + jj], w3 = w[12 + jj];         \
                    to[jj][ch] += w0;                                                      \
                    to[4 + jj][ch] += w1 - w2 + w3;                                        \
                    to[8 + jj][ch] += w1 + w2 - w0;                                        \
                    to[12 + jj][ch] += -w3;                                                \
                }                                                                          \
            }                                                                              \
        }

VECTOR_CLONES static void input_f32(const WinogradJob *s, Py_ssize_t n) { INPUT_PASS(float) }
VECTOR_CLONES static void input_f64(const WinogradJob *s, Py_ssize_t n) { INPUT_PASS(double) }
VECTOR_CLONES static void
input_grad_f32(const WinogradJob *s, Py_ssize_t n, float *sink) { INPUT_GRAD_PASS(float) }
VECTOR_CLONES static void
input_grad_f64(const WinogradJob *s, Py_ssize_t n, double *sink) { INPUT_GRAD_PASS(double) }

static void
input_chunk(const void *context, long n)
{
    const WinogradJob *s = context;
    if (s->conv.single)
        input_f32(s, n);
    else
        input_f64(s, n);
}

static void
tiles_of(const WinogradJob *s, long index, Py_ssize_t *first, Py_ssize_t *last)
{
    *first = index * s->per_chunk;
    *last = *first + s->per_chunk < s->tiles ? *first + s->per_chunk : s->tiles;
}

/* NAME_f32 and NAME_f64 running BODY(T) over tiles [first, last), and NAME_chunk(context,
 * index), the parallel_for chunk of whole tiles that picks the job's type. */
#define TILE_PASS(NAME, BODY)                                                              \
    VECTOR_CLONES static void NAME##_f32(const WinogradJob *s, Py_ssize_t first,           \
                                         Py_ssize_t last) { BODY(float) }                  \
    VECTOR_CLONES static void NAME##_f64(const WinogradJob *s, Py_ssize_t first,           \
                                         Py_ssize_t last) { BODY(double) }                 \
    static void NAME##_chunk(const void *context, long index)                              \
    {                                                                                      \
        const WinogradJob *s = context;                                                    \
        Py_ssize_t first, last;                                                            \
        tiles_of(s, index, &first, &last);                                                 \
        if (s->conv.single)                                                                \
            NAME##_f32(s, first, last);                                                    \
        else                                                                               \
            NAME##_f64(s, first, last);                                                    \
    }

TILE_PASS(pool, POOL_PASS)
TILE_PASS(unpool, UNPOOL_PASS)

static void
input_grad_chunk(const void *context, long n)
{
    const WinogradJob *s = context;
    /* Each sample its own sink: the threads never write to one sink at once. */
    if (s->conv.single)
        input_grad_f32(s, n, (float *)s->sinks + (size_t)n * s->conv.c);
    else
        input_grad_f64(s, n, (double *)s->sinks + (size_t)n * s->conv.c);
}

/* A plain convolution's output for tiles [first, last): Y = A^T m A, each of its four
 * values written where the output has that place (a last row or column of tiles may
 * stand half outside an odd-sized output). */
#define OUTPUT_PASS(T)                                                                     \
    const Py_ssize_t f = s->conv.m, plane = s->tiles * f;                                  \
    const Py_ssize_t per_sample = s->conv.oh * s->conv.ow;                                 \
    T sink[4 * POOL_BLOCK];                                                                \
    for (Py_ssize_t t = first; t < last; t++) {                                            \
        const Py_ssize_t n = t / per_sample, p = t % per_sample / s->conv.ow;              \
        const Py_ssize_t q = t % s->conv.ow;                                               \
        for (Py_ssize_t k0 = 0; k0 < f; k0 += POOL_BLOCK) {                                \
            const Py_ssize_t count = f - k0 < POOL_BLOCK ? f - k0 : POOL_BLOCK;            \
            const T *m[16];                                                                \
            T *y[4];                                                                       \
            for (int e = 0; e < 16; e++)                                                   \
                m[e] = (const T *)s->m + e * plane + t * f + k0;                           \
            for (int r = 0; r < 2; r++)                                                    \
                for (int cc = 0; cc < 2; cc++) {                                           \
                    Py_ssize_t row = 2 * p + r, col = 2 * q + cc;                          \
                    y[2 * r + cc] = (row < s->out_h && col < s->out_w)                     \
                                        ? (T *)s->conv.out +                               \
                                              ((n * s->out_h + row) * s->out_w + col) * f + k0 \
                                        : sink + (2 * r + cc) * POOL_BLOCK;                \
                }                                                                          \
            IVDEP for (Py_ssize_t k = 0; k < count; k++)                                   \
            {                                                                              \
                T r0[4], r1[4];                                                            \
                for (int b = 0; b < 4; b++) {                                              \
                    T m0 = m[b][k], m1 = m[4 + b][k], m2 = m[8 + b][k], m3 = m[12 + b][k]; \
                    r0[b] = m0 + m1 + m2, r1[b] = m1 - m2 - m3;                            \
                }                                                                          \
                y[0][k] = r0[0] + r0[1] + r0[2], y[1][k] = r0[1] - r0[2] - r0[3];          \
                y[2][k] = r1[0] + r1[1] + r1[2], y[3][k] = r1[1] - r1[2] - r1[3];          \
            }                                                                              \
        }                                                                                  \
    }

/* dM for a plain convolution's tiles [first, last): A dY A^T, with dY 0 at the places
 * outside an odd-sized output. */
#define OUTPUT_GRAD_PASS(T)                                                                \
    const Py_ssize_t f = s->conv.m, plane = s->tiles * f;                                  \
    const Py_ssize_t per_sample = s->conv.oh * s->conv.ow;                                 \
    const T *zeros = (const T *)s->zeros;                                                  \
    for (Py_ssize_t t = first; t < last; t++) {                                            \
        const Py_ssize_t n = t / per_sample, p = t % per_sample / s->conv.ow;              \
        const Py_ssize_t q = t % s->conv.ow;                                               \
        const T *y[4];                                                                     \
        T *d[16];                                                                          \
        for (int r = 0; r < 2; r++)                                                        \
            for (int cc = 0; cc < 2; cc++) {                                               \
                Py_ssize_t row = 2 * p + r, col = 2 * q + cc;                              \
                y[2 * r + cc] = (row < s->out_h && col < s->out_w)                         \
                                    ? (const T *)s->conv.g +                               \
                                          ((n * s->out_h + row) * s->out_w + col) * f      \
                                    : zeros;                                               \
            }                                                                              \
        for (int e = 0; e < 16; e++)                                                       \
            d[e] = (T *)s->d + e * plane + t * f;                                          \
        IVDEP for (Py_ssize_t k = 0; k < f; k++)                                           \
        {                                                                                  \
            T y00 = y[0][k], y01 = y[1][k], y10 = y[2][k], y11 = y[3][k];                  \
            /* rows: A dY, (4, 2); then columns: (A dY) A^T, (4, 4) */                     \
            T c0[4] = {y00, y00 + y10, y00 - y10, -y10};                                   \
            T c1[4] = {y01, y01 + y11, y01 - y11, -y11};                                   \
            for (int a = 0; a < 4; a++) {                                                  \
                d[4 * a][k] = c0[a], d[4 * a + 1][k] = c0[a] + c1[a];                      \
                d[4 * a + 2][k] = c0[a] - c1[a], d[4 * a + 3][k] = -c1[a];                 \
            }                                                                              \
        }                                                                                  \
    }

TILE_PASS(output, OUTPUT_PASS)
TILE_PASS(output_grad, OUTPUT_GRAD_PASS)

/* Parse the geometry (3x3 windows, stride and dilation 1 only) and count the tiles. */
static int
winograd_parse(PyObject *sizes, PyObject *steps, WinogradJob *s)
{
    ConvJob *j = &s->conv;
    if (conv_parse_geometry(sizes, steps, j) < 0)
        return -1;
    if (j->kh != 3 || j->kw != 3 || j->sh != 1 || j->sw != 1 || j->dh != 1 || j->dw != 1) {
        PyErr_SetString(PyExc_ValueError,
                        "winograd: expected a 3x3 window, strides and dilations of 1");
        return -1;
    }
    s->tiles = j->n * j->oh * j->ow;
    /* 16 planes of tiles x (c or f) values of 8 bytes: their byte counts must not wrap
     * (conv_parse_geometry bounds one plane's values, not 128 times as many bytes). */
    Py_ssize_t widest = j->c > j->m ? j->c : j->m;
    if (widest > PY_SSIZE_T_MAX / 128 / s->tiles) {
        PyErr_SetString(PyExc_ValueError, "winograd: the transformed arrays would be too large");
        return -1;
    }
    /* Runs of whole tiles of about 16K values for the element-wise passes. */
    s->per_chunk = j->m >= 16384 ? 1 : 16384 / j->m;
    return 0;
}

static long
tile_chunks(const WinogradJob *s)
{
    return (long)((s->tiles + s->per_chunk - 1) / s->per_chunk);
}

/* winograd_input(x, v, sizes, steps): x (n, h, w, c); v (16, n PH PW, c) written. */
PyObject *
winograd_input(PyObject *self, PyObject *args)
{
    PyObject *o[2], *sizes, *steps;
    WinogradJob s = {0};
    ConvJob *j = &s.conv;
    if (!PyArg_ParseTuple(args, "OOO!O!:winograd_input", &o[0], &o[1], &PyTuple_Type, &sizes,
                          &PyTuple_Type, &steps) ||
        winograd_parse(sizes, steps, &s) < 0)
        return NULL;
    const KernelArg a[2] = {{o[0], j->n * j->h * j->w * j->c, 'r'},
                            {o[1], 16 * s.tiles * j->c, 'w'}};
    Py_buffer v[2];
    int single = kernel_take(a, v, 2);
    if (single < 0)
        return NULL;
    j->xp = v[0].buf, s.v = v[1].buf, j->single = single;
    void *zeros = calloc((size_t)j->c, single ? 4 : 8);
    if (zeros == NULL) {
        kernel_give_back(v, 2);
        return PyErr_NoMemory();
    }
    s.zeros = zeros;
    Py_BEGIN_ALLOW_THREADS
    parallel_for((long)j->n, input_chunk, &s, 16 * s.tiles * j->c >= SPLIT_FROM);
    Py_END_ALLOW_THREADS
    free(zeros);
    kernel_give_back(v, 2);
    Py_RETURN_NONE;
}

/* winograd_pool(m, bias_or_None, out, winner, relu, sizes, steps): m (16, T, f); out
 * (T, f) and winner (T, f, uint8) written. */
PyObject *
winograd_pool(PyObject *self, PyObject *args)
{
    PyObject *o[4], *sizes, *steps;
    int relu;
    WinogradJob s = {0};
    ConvJob *j = &s.conv;
    if (!PyArg_ParseTuple(args, "OOOOpO!O!:winograd_pool", &o[0], &o[1], &o[2], &o[3], &relu,
                          &PyTuple_Type, &sizes, &PyTuple_Type, &steps) ||
        winograd_parse(sizes, steps, &s) < 0)
        return NULL;
    const KernelArg a[3] = {{o[0], 16 * s.tiles * j->m, 'r'},
                            {o[1], j->m, 'R'},
                            {o[2], s.tiles * j->m, 'w'}};
    Py_buffer v[3], wv;
    int single = kernel_take_with_indices(a, v, 3, o[3], s.tiles * j->m, 'B', 1, &wv);
    if (single < 0)
        return NULL;
    s.winner = wv.buf, s.m = v[0].buf, j->bias = v[1].buf, j->out = v[2].buf;
    j->single = single, s.relu = relu;
    Py_BEGIN_ALLOW_THREADS
    parallel_for(tile_chunks(&s), pool_chunk, &s, 16 * s.tiles * j->m >= SPLIT_FROM);
    Py_END_ALLOW_THREADS
    kernel_give_back(v, 3);
    PyBuffer_Release(&wv);
    Py_RETURN_NONE;
}

/* winograd_unpool(g, winner, relu_out_or_None, masked_or_None, d, sizes, steps): g and
 * relu_out (T, f); masked (T, f) gets g * (relu_out > 0); d (16, T, f) written. */
PyObject *
winograd_unpool(PyObject *self, PyObject *args)
{
    PyObject *o[5], *sizes, *steps;
    WinogradJob s = {0};
    ConvJob *j = &s.conv;
    if (!PyArg_ParseTuple(args, "OOOOOO!O!:winograd_unpool", &o[0], &o[1], &o[2], &o[3], &o[4],
                          &PyTuple_Type, &sizes, &PyTuple_Type, &steps) ||
        winograd_parse(sizes, steps, &s) < 0)
        return NULL;
    if ((o[2] == Py_None) != (o[3] == Py_None)) {
        PyErr_SetString(PyExc_ValueError, "winograd_unpool: relu_out and masked go together");
        return NULL;
    }
    const Py_ssize_t size = s.tiles * j->m;
    const KernelArg a[4] = {
        {o[0], size, 'r'}, {o[2], size, 'R'}, {o[3], size, 'W'}, {o[4], 16 * size, 'w'}};
    Py_buffer v[4], wv;
    int single = kernel_take_with_indices(a, v, 4, o[1], size, 'B', 0, &wv);
    if (single < 0)
        return NULL;
    s.winner = wv.buf, j->g = v[0].buf, s.relu_out = v[1].buf, s.masked = v[2].buf;
    s.d = v[3].buf;
    j->single = single;
    Py_BEGIN_ALLOW_THREADS
    parallel_for(tile_chunks(&s), unpool_chunk, &s, 16 * size >= SPLIT_FROM);
    Py_END_ALLOW_THREADS
    kernel_give_back(v, 4);
    PyBuffer_Release(&wv);
    Py_RETURN_NONE;
}

/* winograd_input_grad(dv, gx, sizes, steps): dv (16, T, c); gx (n, h, w, c) written. */
PyObject *
winograd_input_grad(PyObject *self, PyObject *args)
{
    PyObject *o[2], *sizes, *steps;
    WinogradJob s = {0};
    ConvJob *j = &s.conv;
    if (!PyArg_ParseTuple(args, "OOO!O!:winograd_input_grad", &o[0], &o[1], &PyTuple_Type,
                          &sizes, &PyTuple_Type, &steps) ||
        winograd_parse(sizes, steps, &s) < 0)
        return NULL;
    const KernelArg a[2] = {{o[0], 16 * s.tiles * j->c, 'r'},
                            {o[1], j->n * j->h * j->w * j->c, 'w'}};
    Py_buffer v[2];
    int single = kernel_take(a, v, 2);
    if (single < 0)
        return NULL;
    s.dv = v[0].buf, j->gx = v[1].buf, j->single = single;
    s.sinks = malloc((size_t)(j->n * j->c) * (single ? 4 : 8));
    if (s.sinks == NULL) {
        kernel_give_back(v, 2);
        return PyErr_NoMemory();
    }
    Py_BEGIN_ALLOW_THREADS
    parallel_for((long)j->n, input_grad_chunk, &s, 16 * s.tiles * j->c >= SPLIT_FROM);
    Py_END_ALLOW_THREADS
    free(s.sinks);
    kernel_give_back(v, 2);
    Py_RETURN_NONE;
}

/* The output size (out_h, out_w) of a plain convolution: its tiles cover it, and a last
 * row or column of tiles stands half outside it when it is odd. */
static int
parse_output(PyObject *output, WinogradJob *s)
{
    if (!PyArg_ParseTuple(output, "nn", &s->out_h, &s->out_w))
        return -1;
    if (s->out_h < 1 || s->out_w < 1 || (s->out_h + 1) / 2 != s->conv.oh ||
        (s->out_w + 1) / 2 != s->conv.ow) {
        PyErr_SetString(PyExc_ValueError, "winograd: the output size does not match the tiles");
        return -1;
    }
    return 0;
}

/* A plain convolution's output transform (grad 0: M (16, T, f) -> out (n, out_h, out_w,
 * f)) or its VJP (grad 1: g, the same shape as out -> dM): args (m or g, out or d, sizes,
 * steps, (out_h, out_w)), sizes' tiles (TH, TW) = ((out_h + 1) / 2, (out_w + 1) / 2). */
static PyObject *
output_method(PyObject *args, int grad)
{
    PyObject *o[2], *sizes, *steps, *output;
    WinogradJob s = {0};
    ConvJob *j = &s.conv;
    if (!PyArg_ParseTuple(args, "OOO!O!O!", &o[0], &o[1], &PyTuple_Type, &sizes, &PyTuple_Type,
                          &steps, &PyTuple_Type, &output) ||
        winograd_parse(sizes, steps, &s) < 0 || parse_output(output, &s) < 0)
        return NULL;
    const Py_ssize_t planes = 16 * s.tiles * j->m, image = j->n * s.out_h * s.out_w * j->m;
    const KernelArg a[2] = {{o[0], grad ? image : planes, 'r'}, {o[1], grad ? planes : image, 'w'}};
    Py_buffer v[2];
    int single = kernel_take(a, v, 2);
    if (single < 0)
        return NULL;
    j->single = single;
    void *zeros = NULL; /* the VJP reads them at the places outside an odd-sized output */
    if (grad) {
        j->g = v[0].buf, s.d = v[1].buf;
        zeros = calloc((size_t)j->m, single ? 4 : 8);
        if (zeros == NULL) {
            kernel_give_back(v, 2);
            return PyErr_NoMemory();
        }
        s.zeros = zeros;
    } else {
        s.m = v[0].buf, j->out = v[1].buf;
    }
    Py_BEGIN_ALLOW_THREADS
    chunk_fn pass = grad ? output_grad_chunk : output_chunk;
    parallel_for(tile_chunks(&s), pass, &s, planes >= SPLIT_FROM);
    Py_END_ALLOW_THREADS
    free(zeros);
    kernel_give_back(v, 2);
    Py_RETURN_NONE;
}

/* winograd_output(m, out, sizes, steps, (out_h, out_w)): out = A^T m A, tile by tile. */
PyObject *
winograd_output(PyObject *self, PyObject *args)
{
    return output_method(args, 0);
}

/* winograd_output_grad(g, d, sizes, steps, (out_h, out_w)): d = A g_t A^T, tile by tile. */
PyObject *
winograd_output_grad(PyObject *self, PyObject *args)
{
    return output_method(args, 1);
}
