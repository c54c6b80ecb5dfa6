/* The fused epilogue of the products and its gradient (the NumPy reference is
 * ops/_util.py, bias_relu_ and relu_grad):
 *
 *   bias_relu(out, bias, relu):  out[r, f] <- out[r, f] + bias[f], then max(., 0) (in place)
 *   relu_grad(g, y, out):        out = g * [y > 0]
 *
 * with NumPy's bits: the same operations element by element (max keeps NaN and gives +0.0
 * for -0.0, as np.maximum's vector loops do; the gradient multiplies by 1 or 0 as NumPy's product with the boolean
 * mask does, so -0.0 and NaN come out the same). NumPy makes two to three passes over
 * memory (the sum, the max; the mask, the product); these make one, shared with the helper
 * thread for large arrays.
 */
#include "kernels.h"

#define CHUNK 16384

typedef struct {
    char *out;
    const char *bias, *g, *y;
    Py_ssize_t n, features;
    int single, relu;
} ReluJob;

/* Rows [start, stop) of `features` values each. */
#define BIAS_RELU(T)                                                                       \
    const T *restrict b = (const T *)j->bias;                                              \
    for (Py_ssize_t r = start; r < stop; r++) {                                            \
        T *restrict o = (T *)j->out + (size_t)r * j->features;                             \
        if (b)                                                                             \
            for (Py_ssize_t f = 0; f < j->features; f++)                                   \
                o[f] = o[f] + b[f];                                                        \
        if (j->relu)                                                                       \
            for (Py_ssize_t f = 0; f < j->features; f++)                                   \
                o[f] = (o[f] > (T)0 || o[f] != o[f]) ? o[f] : (T)0;                       \
    }

/* Elements [start, stop). */
#define RELU_GRAD(T)                                                                       \
    T *o = (T *)j->out; /* may be g itself (an in-place product) */                       \
    const T *g = (const T *)j->g, *restrict y = (const T *)j->y;                           \
    for (Py_ssize_t i = start; i < stop; i++)                                              \
        o[i] = g[i] * (y[i] > (T)0 ? (T)1 : (T)0);

VECTOR_CLONES static void bias_relu_f32(const ReluJob *j, Py_ssize_t start, Py_ssize_t stop) { BIAS_RELU(float) }
VECTOR_CLONES static void bias_relu_f64(const ReluJob *j, Py_ssize_t start, Py_ssize_t stop) { BIAS_RELU(double) }
VECTOR_CLONES static void relu_grad_f32(const ReluJob *j, Py_ssize_t start, Py_ssize_t stop) { RELU_GRAD(float) }
VECTOR_CLONES static void relu_grad_f64(const ReluJob *j, Py_ssize_t start, Py_ssize_t stop) { RELU_GRAD(double) }

static void
relu_chunk(const void *context, long index)
{
    const ReluJob *j = context;
    /* A chunk is CHUNK values of the gradient, or whole rows of the epilogue. */
    Py_ssize_t size = j->g != NULL ? CHUNK : (CHUNK + j->features - 1) / j->features;
    Py_ssize_t total = j->g != NULL ? j->n : j->n / j->features;
    Py_ssize_t start = (Py_ssize_t)index * size;
    Py_ssize_t stop = start + size < total ? start + size : total;
    if (j->g != NULL) {
        if (j->single)
            relu_grad_f32(j, start, stop);
        else
            relu_grad_f64(j, start, stop);
    } else if (j->single) {
        bias_relu_f32(j, start, stop);
    } else {
        bias_relu_f64(j, start, stop);
    }
}

static void
run(const ReluJob *job)
{
    Py_ssize_t size = job->g != NULL ? CHUNK : (CHUNK + job->features - 1) / job->features;
    Py_ssize_t total = job->g != NULL ? job->n : job->n / job->features;
    parallel_for((long)((total + size - 1) / size), relu_chunk, job, job->n >= SPLIT_FROM);
}

/* bias_relu(out, bias_or_None, n, features, relu): out holds n values, rows of `features`. */
PyObject *
relu_bias_relu(PyObject *self, PyObject *args)
{
    PyObject *o[2];
    ReluJob j = {0};
    if (!PyArg_ParseTuple(args, "OOnnp:bias_relu", &o[0], &o[1], &j.n, &j.features, &j.relu))
        return NULL;
    if (j.n < 0 || j.features < 1 || j.n % j.features) {
        PyErr_SetString(PyExc_ValueError, "dendrite bias_relu: bad sizes");
        return NULL;
    }
    const KernelArg a[2] = {{o[0], j.n, 'w'}, {o[1], j.features, 'R'}};
    Py_buffer v[2];
    int single = kernel_take(a, v, 2);
    if (single < 0)
        return NULL;
    j.out = v[0].buf, j.bias = v[1].buf, j.single = single;
    Py_BEGIN_ALLOW_THREADS
    run(&j);
    Py_END_ALLOW_THREADS
    kernel_give_back(v, 2);
    Py_RETURN_NONE;
}

/* relu_grad(g, y, out, n): three arrays of n values; out may be g. */
PyObject *
relu_relu_grad(PyObject *self, PyObject *args)
{
    PyObject *o[3];
    ReluJob j = {0};
    if (!PyArg_ParseTuple(args, "OOOn:relu_grad", &o[0], &o[1], &o[2], &j.n))
        return NULL;
    if (j.n < 0) {
        PyErr_SetString(PyExc_ValueError, "dendrite relu_grad: bad sizes");
        return NULL;
    }
    const KernelArg a[3] = {{o[0], j.n, 'r'}, {o[1], j.n, 'r'}, {o[2], j.n, 'w'}};
    Py_buffer v[3];
    int single = kernel_take(a, v, 3);
    if (single < 0)
        return NULL;
    j.g = v[0].buf, j.y = v[1].buf, j.out = v[2].buf, j.single = single, j.features = 1;
    Py_BEGIN_ALLOW_THREADS
    run(&j);
    Py_END_ALLOW_THREADS
    kernel_give_back(v, 3);
    Py_RETURN_NONE;
}
