/* The softmax over the last axis and the sparse cross-entropy's label lookups, for the
 * small arrays of a classifier's head (the NumPy references: Softmax.forward in
 * dendrite/ops/softmax.py, SparseSoftmaxCrossEntropy in dendrite/ops/nn.py), with NumPy's
 * bits. For rows r of `width` (or `classes`) values:
 *
 *   softmax_shift(x, e, shift[, floored]): shift[r] = max(lowest, max_j x[r, j]) (without
 *                                     `floored`, max_j x[r, j]),
 *                                     e[r, j] = x[r, j] - shift[r]
 *   (the caller then takes e = exp(e) with NumPy's exp, whose vectorised rounding no C
 *   code here reproduces)
 *   softmax_normalize(e, total[, divide]): total[r] = sum_j e[r, j] in NumPy's pairwise
 *                                     order, then (unless `divide` is 0)
 *                                     e[r, j] = e[r, j] / total[r]
 *   sparse_pick(labels, z, picked, at): at[r] = r classes + labels[r], picked[r] = z[at[r]]
 *                                     (the first row whose label is outside [0, classes)
 *                                     is returned, and nothing is written past it)
 *   sparse_grad(p, g, at, out):       out[r, j] = p[r, j] g[r], then out[at[r]] -= g[r]
 *
 * The maximum is np.maximum's reduction: a NaN anywhere in a row is its maximum, and of
 * equal values the later one is kept (so +0 or -0 as NumPy's); a NaN's sign and payload
 * may differ from NumPy's, which every comparison treats alike. The sum is NumPy's pairwise summation of a
 * contiguous row (loops_utils.h.src: fewer than 8 values added in turn to 0; up to 128 in
 * 8 running sums combined as ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7)), the rest
 * added in turn; longer rows halved at a multiple of 8), added to the reduction's
 * initial 0; the tests compare the bits with NumPy's.
 *
 * Why: a batch of 32 rows of 10 classes is 320 values, and each NumPy call on it costs
 * 1.5-3 us of dispatch, where its arithmetic takes tens of nanoseconds. The softmax took
 * five calls and the cross-entropy's label check and lookup six (docs/performance.md).
 */
#include "kernels.h"

#include <float.h>

#define PAIRWISE_BLOCK 128

#define PAIRWISE_SUM(NAME, T)                                                              \
    static T NAME(const T *a, Py_ssize_t n)                                                \
    {                                                                                      \
        if (n < 8) {                                                                       \
            T sum = 0;                                                                     \
            for (Py_ssize_t i = 0; i < n; i++)                                             \
                sum += a[i];                                                               \
            return sum;                                                                    \
        }                                                                                  \
        if (n <= PAIRWISE_BLOCK) {                                                         \
            T s[8];                                                                        \
            for (int j = 0; j < 8; j++)                                                    \
                s[j] = a[j];                                                               \
            Py_ssize_t i = 8;                                                              \
            for (; i < n - n % 8; i += 8)                                                  \
                for (int j = 0; j < 8; j++)                                                \
                    s[j] += a[i + j];                                                      \
            T sum = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));     \
            for (; i < n; i++)                                                             \
                sum += a[i];                                                               \
            return sum;                                                                    \
        }                                                                                  \
        Py_ssize_t half = n / 2;                                                           \
        half -= half % 8;                                                                  \
        return NAME(a, half) + NAME(a + half, n - half);                                   \
    }

PAIRWISE_SUM(pairwise_f32, float)
PAIRWISE_SUM(pairwise_f64, double)

#define SHIFT_ROWS(T, LOWEST)                                                              \
    {                                                                                      \
        const T *x = (const T *)v[0].buf;                                                  \
        T *e = (T *)v[1].buf, *shift = (T *)v[2].buf;                                      \
        for (Py_ssize_t r = 0; r < rows; r++) {                                            \
            const T *row = x + r * width;                                                  \
            T top = floored ? LOWEST : row[0];                                             \
            for (Py_ssize_t j = !floored; j < width; j++)                                  \
                top = (top > row[j] || top != top) ? top : row[j];                         \
            shift[r] = top;                                                                \
            for (Py_ssize_t j = 0; j < width; j++)                                         \
                e[r * width + j] = row[j] - top;                                           \
        }                                                                                  \
    }

#define NORMALIZE_ROWS(T, SUM)                                                             \
    {                                                                                      \
        T *e = (T *)v[0].buf, *total = (T *)v[1].buf;                                      \
        for (Py_ssize_t r = 0; r < rows; r++) {                                            \
            T *row = e + r * width;                                                        \
            T sum = (T)0 + SUM(row, width);                                                \
            total[r] = sum;                                                                \
            if (divide)                                                                    \
                for (Py_ssize_t j = 0; j < width; j++)                                     \
                    row[j] = row[j] / sum;                                                 \
        }                                                                                  \
    }

/* rows and width from the arguments: both >= 0, and rows * width elements. */
static int
row_sizes(Py_ssize_t rows, Py_ssize_t width, const char *name)
{
    if (rows < 0 || width < 1 || (rows && width > PY_SSIZE_T_MAX / 8 / rows)) {
        PyErr_Format(PyExc_ValueError, "dendrite %s: bad sizes", name);
        return -1;
    }
    return 0;
}

/* softmax_shift(x, e, shift, rows, width[, floored]) */
PyObject *
softmax_shift(PyObject *self, PyObject *args)
{
    PyObject *o[3];
    Py_ssize_t rows, width;
    int floored = 1;
    if (!PyArg_ParseTuple(args, "OOOnn|p:softmax_shift", &o[0], &o[1], &o[2], &rows, &width,
                          &floored) ||
        row_sizes(rows, width, "softmax_shift") < 0)
        return NULL;
    const KernelArg k[3] = {{o[0], rows * width, 'r'}, {o[1], rows * width, 'w'}, {o[2], rows, 'w'}};
    Py_buffer v[3];
    int single = kernel_take(k, v, 3);
    if (single < 0)
        return NULL;
    if (single)
        SHIFT_ROWS(float, -FLT_MAX)
    else
        SHIFT_ROWS(double, -DBL_MAX)
    kernel_give_back(v, 3);
    Py_RETURN_NONE;
}

/* softmax_normalize(e, total, rows, width[, divide]) */
PyObject *
softmax_normalize(PyObject *self, PyObject *args)
{
    PyObject *o[2];
    Py_ssize_t rows, width;
    int divide = 1;
    if (!PyArg_ParseTuple(args, "OOnn|p:softmax_normalize", &o[0], &o[1], &rows, &width,
                          &divide) ||
        row_sizes(rows, width, "softmax_normalize") < 0)
        return NULL;
    const KernelArg k[2] = {{o[0], rows * width, 'w'}, {o[1], rows, 'w'}};
    Py_buffer v[2];
    int single = kernel_take(k, v, 2);
    if (single < 0)
        return NULL;
    if (single)
        NORMALIZE_ROWS(float, pairwise_f32)
    else
        NORMALIZE_ROWS(double, pairwise_f64)
    kernel_give_back(v, 2);
    Py_RETURN_NONE;
}

/* sparse_pick(labels, z, picked, at, rows, classes) -> -1, or the first row whose label is
 * out of range */
PyObject *
sparse_pick(PyObject *self, PyObject *args)
{
    PyObject *o[4];
    Py_ssize_t rows, classes;
    if (!PyArg_ParseTuple(args, "OOOOnn:sparse_pick", &o[0], &o[1], &o[2], &o[3], &rows,
                          &classes) ||
        row_sizes(rows, classes, "sparse_pick") < 0)
        return NULL;
    Py_buffer labels, at;
    if (kernel_take_indices(o[0], rows, 'q', 0, &labels) < 0)
        return NULL;
    const KernelArg k[2] = {{o[1], rows * classes, 'r'}, {o[2], rows, 'w'}};
    Py_buffer v[2];
    int single = kernel_take_with_indices(k, v, 2, o[3], rows, 'q', 1, &at);
    if (single < 0) {
        PyBuffer_Release(&labels);
        return NULL;
    }
    const int64_t *label = labels.buf;
    int64_t *index = at.buf;
    Py_ssize_t bad = -1;
    for (Py_ssize_t r = 0; r < rows; r++) {
        if (label[r] < 0 || label[r] >= classes) {
            bad = r;
            break;
        }
        index[r] = (int64_t)(r * classes) + label[r];
        if (single)
            ((float *)v[1].buf)[r] = ((const float *)v[0].buf)[index[r]];
        else
            ((double *)v[1].buf)[r] = ((const double *)v[0].buf)[index[r]];
    }
    kernel_give_back(v, 2);
    PyBuffer_Release(&labels);
    PyBuffer_Release(&at);
    return PyLong_FromSsize_t(bad);
}

#define SPARSE_GRAD(T)                                                                     \
    {                                                                                      \
        const T *p = (const T *)v[0].buf, *g = (const T *)v[1].buf;                        \
        T *out = (T *)v[2].buf;                                                            \
        for (Py_ssize_t r = 0; r < rows; r++)                                              \
            for (Py_ssize_t j = 0; j < classes; j++)                                       \
                out[r * classes + j] = p[r * classes + j] * g[r];                          \
        for (Py_ssize_t r = 0; r < rows; r++)                                              \
            out[index[r]] = out[index[r]] - g[r];                                          \
    }

/* sparse_grad(p, g, at, out, rows, classes); every index in `at` is checked */
PyObject *
sparse_grad(PyObject *self, PyObject *args)
{
    PyObject *o[4];
    Py_ssize_t rows, classes;
    if (!PyArg_ParseTuple(args, "OOOOnn:sparse_grad", &o[0], &o[1], &o[2], &o[3], &rows,
                          &classes) ||
        row_sizes(rows, classes, "sparse_grad") < 0)
        return NULL;
    const KernelArg k[3] = {{o[0], rows * classes, 'r'}, {o[1], rows, 'r'}, {o[3], rows * classes, 'w'}};
    Py_buffer v[3], at;
    int single = kernel_take_with_indices(k, v, 3, o[2], rows, 'q', 0, &at);
    if (single < 0)
        return NULL;
    const int64_t *index = at.buf;
    for (Py_ssize_t r = 0; r < rows; r++)
        if (index[r] < 0 || index[r] >= rows * classes) {
            kernel_give_back(v, 3);
            PyBuffer_Release(&at);
            PyErr_SetString(PyExc_ValueError, "dendrite sparse_grad: an index is out of range");
            return NULL;
        }
    if (single)
        SPARSE_GRAD(float)
    else
        SPARSE_GRAD(double)
    kernel_give_back(v, 3);
    PyBuffer_Release(&at);
    Py_RETURN_NONE;
}
