/* A tiled axis swap, the copy behind the recurrences' change of layout (batch-major to
 * feature-major and back, dendrite/ops/recurrent/_common.py).
 *
 *   dst[q, j, t, i] = src[q, i, m0 + t, j]   src (p, a, M, c), dst (p, c, m, a)
 *
 * NumPy copies such a transpose element by element with one side strided, about 1 ns an
 * element on this kind of machine; square tiles keep both sides in cache lines, several
 * times faster. Only moves values: the result has the same bits as NumPy's copy.
 */
#include "kernels.h"

#define TILE 16

#define SWAP_AXES(NAME, T)                                                                 \
    VECTOR_CLONES static void NAME(const T *restrict src, T *restrict dst, Py_ssize_t p, Py_ssize_t a,   \
                     Py_ssize_t big_m, Py_ssize_t m0, Py_ssize_t m, Py_ssize_t c)          \
    {                                                                                      \
        for (Py_ssize_t q = 0; q < p; q++)                                                 \
            for (Py_ssize_t t = 0; t < m; t++) {                                           \
                const T *s = src + (q * a * big_m + m0 + t) * c; /* row i: + i M c */      \
                T *d = dst + (q * c * m + t) * a;                /* row j: + j m a */      \
                for (Py_ssize_t i0 = 0; i0 < a; i0 += TILE)                                \
                    for (Py_ssize_t j0 = 0; j0 < c; j0 += TILE) {                          \
                        Py_ssize_t i1 = i0 + TILE < a ? i0 + TILE : a;                     \
                        Py_ssize_t j1 = j0 + TILE < c ? j0 + TILE : c;                     \
                        for (Py_ssize_t j = j0; j < j1; j++)                               \
                            for (Py_ssize_t i = i0; i < i1; i++)                           \
                                d[j * m * a + i] = s[i * big_m * c + j];                   \
                    }                                                                      \
            }                                                                              \
    }

SWAP_AXES(swap_axes_f32_tiles, float)
SWAP_AXES(swap_axes_f64, double)

#if defined(__GNUC__) && defined(__x86_64__)
#include <immintrin.h>
#define AVX2_TARGET __attribute__((target("avx2")))

/* d[j ld + i] = s[i ls + j] for i, j < 8: eight rows in, eight columns out, in registers
 * (pairs of rows interleaved, then pairs of pairs, then the 128-bit halves exchanged). */
AVX2_TARGET static inline void
transpose8_f32(const float *s, Py_ssize_t ls, float *d, Py_ssize_t ld)
{
    __m256 r[8], t[8], u[8];
    for (int k = 0; k < 8; k++)
        r[k] = _mm256_loadu_ps(s + k * ls);
    for (int k = 0; k < 8; k += 2) {
        t[k] = _mm256_unpacklo_ps(r[k], r[k + 1]);
        t[k + 1] = _mm256_unpackhi_ps(r[k], r[k + 1]);
    }
    for (int k = 0; k < 8; k += 4) {
        u[k] = _mm256_shuffle_ps(t[k], t[k + 2], 0x44);
        u[k + 1] = _mm256_shuffle_ps(t[k], t[k + 2], 0xEE);
        u[k + 2] = _mm256_shuffle_ps(t[k + 1], t[k + 3], 0x44);
        u[k + 3] = _mm256_shuffle_ps(t[k + 1], t[k + 3], 0xEE);
    }
    for (int k = 0; k < 4; k++) {
        _mm256_storeu_ps(d + k * ld, _mm256_permute2f128_ps(u[k], u[k + 4], 0x20));
        _mm256_storeu_ps(d + (k + 4) * ld, _mm256_permute2f128_ps(u[k], u[k + 4], 0x31));
    }
}

/* SWAP_AXES' copy by blocks of 8 x 8 in registers (AVX2), 16 source rows at a time so that
 * each destination row gets a whole cache line; the edges element by element. Measured
 * on the LSTM's states (128 x 928 float32, min of 50): 25 us against the scalar tiles' 42
 * with the operands in cache; from memory both take about 70 us (in the training loop the
 * swaps went from 100 and 55 us a step to 95 and 47). */
AVX2_TARGET static void
swap_axes_f32_avx2(const float *restrict src, float *restrict dst, Py_ssize_t p, Py_ssize_t a,
                   Py_ssize_t big_m, Py_ssize_t m0, Py_ssize_t m, Py_ssize_t c)
{
    const Py_ssize_t ls = big_m * c, ld = m * a;
    const Py_ssize_t a8 = a - a % 8, c8 = c - c % 8;
    for (Py_ssize_t q = 0; q < p; q++)
        for (Py_ssize_t t = 0; t < m; t++) {
            const float *s = src + (q * a * big_m + m0 + t) * c; /* row i: + i ls */
            float *d = dst + (q * c * m + t) * a;                /* row j: + j ld */
            Py_ssize_t i0 = 0;
            for (; i0 + 16 <= a8; i0 += 16)
                for (Py_ssize_t j0 = 0; j0 < c8; j0 += 8) {
                    transpose8_f32(s + i0 * ls + j0, ls, d + j0 * ld + i0, ld);
                    transpose8_f32(s + (i0 + 8) * ls + j0, ls, d + j0 * ld + i0 + 8, ld);
                }
            for (; i0 < a8; i0 += 8)
                for (Py_ssize_t j0 = 0; j0 < c8; j0 += 8)
                    transpose8_f32(s + i0 * ls + j0, ls, d + j0 * ld + i0, ld);
            for (Py_ssize_t j = c8; j < c; j++) /* the last columns, every row */
                for (Py_ssize_t i = 0; i < a; i++)
                    d[j * ld + i] = s[i * ls + j];
            for (Py_ssize_t i = a8; i < a; i++) /* the last rows, the other columns */
                for (Py_ssize_t j = 0; j < c8; j++)
                    d[j * ld + i] = s[i * ls + j];
        }
}

static void
swap_axes_f32(const float *restrict src, float *restrict dst, Py_ssize_t p, Py_ssize_t a,
              Py_ssize_t big_m, Py_ssize_t m0, Py_ssize_t m, Py_ssize_t c)
{
    static int avx2 = -1;
    if (avx2 < 0) {
        __builtin_cpu_init();
        avx2 = __builtin_cpu_supports("avx2");
    }
    if (avx2)
        swap_axes_f32_avx2(src, dst, p, a, big_m, m0, m, c);
    else
        swap_axes_f32_tiles(src, dst, p, a, big_m, m0, m, c);
}
#else
#define swap_axes_f32 swap_axes_f32_tiles
#endif

/* swap_axes(src, dst, p, a, M, m0, m, c): see the header. */
PyObject *
transpose_swap_axes(PyObject *self, PyObject *args)
{
    PyObject *o[2];
    Py_ssize_t p, a, big_m, m0, m, c;
    if (!PyArg_ParseTuple(args, "OOnnnnnn:swap_axes", &o[0], &o[1], &p, &a, &big_m, &m0, &m,
                          &c))
        return NULL;
    if (p < 0 || a < 0 || c < 0 || m < 0 || m0 < 0 || big_m < m0 + m ||
        (a && c && big_m && p > PY_SSIZE_T_MAX / 8 / a / c / big_m)) {
        PyErr_SetString(PyExc_ValueError, "dendrite swap_axes: bad sizes");
        return NULL;
    }
    const KernelArg args_[2] = {{o[0], p * a * big_m * c, 'r'}, {o[1], p * c * m * a, 'w'}};
    Py_buffer v[2];
    int single = kernel_take(args_, v, 2);
    if (single < 0)
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    if (single)
        swap_axes_f32((const float *)v[0].buf, (float *)v[1].buf, p, a, big_m, m0, m, c);
    else
        swap_axes_f64((const double *)v[0].buf, (double *)v[1].buf, p, a, big_m, m0, m, c);
    Py_END_ALLOW_THREADS
    kernel_give_back(v, 2);
    Py_RETURN_NONE;
}
