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

SWAP_AXES(swap_axes_f32, float)
SWAP_AXES(swap_axes_f64, double)

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
