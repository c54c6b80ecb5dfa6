/* Fused optimizer updates: one pass over memory instead of one NumPy pass per operation.
 *
 * The only compiled code in dendrite, and optional: setup.py builds it when a C compiler is
 * there, and the optimizers fall back to their NumPy passes when it is not (or when
 * DENDRITE_NO_KERNELS is set). Each kernel does, element by element, exactly the
 * operations of the NumPy path, in the same order and precision, without fused
 * multiply-adds (-ffp-contract=off), so both give bit-identical results; the tests
 * compare them.
 *
 * Arrays come through the buffer protocol (no NumPy headers needed): C-contiguous,
 * float32 ('f') or float64 ('d'), all of one type and length.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>

/* Several vector widths, chosen at load time by the CPU (GCC function multiversioning). */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define VECTOR_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define VECTOR_CLONES
#endif

/* Adam, Keras' form (see optimizers/adam.py):
 *   m <- m + (g - m) * (1 - beta_1)
 *   v <- v + (g * g - v) * (1 - beta_2)
 *   w <- w - m / (sqrt(v) + epsilon) * alpha
 */
#define ADAM_BODY(T, SQRT)                                                                 \
    for (Py_ssize_t i = 0; i < n; i++) {                                                   \
        T grad = g[i];                                                                     \
        T mi = m[i] + (grad - m[i]) * c1;                                                  \
        T vi = v[i] + (grad * grad - v[i]) * c2;                                           \
        m[i] = mi;                                                                         \
        v[i] = vi;                                                                         \
        w[i] -= mi / (SQRT(vi) + eps) * alpha;                                             \
    }

VECTOR_CLONES static void
adam_f32(float *restrict w, const float *restrict g, float *restrict m, float *restrict v,
         Py_ssize_t n, float c1, float c2, float eps, float alpha)
{
    ADAM_BODY(float, sqrtf)
}

VECTOR_CLONES static void
adam_f64(double *restrict w, const double *restrict g, double *restrict m, double *restrict v,
         Py_ssize_t n, double c1, double c2, double eps, double alpha)
{
    ADAM_BODY(double, sqrt)
}

/* Fill `views` from `objects`, each a writable (or, for `readonly_index`, readable)
 * C-contiguous buffer of one float format and length; raise ValueError otherwise. */
static int
get_buffers(PyObject **objects, Py_buffer *views, int count, int readonly_index)
{
    for (int k = 0; k < count; k++) {
        int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT;
        if (k != readonly_index)
            flags |= PyBUF_WRITABLE;
        if (PyObject_GetBuffer(objects[k], &views[k], flags) < 0) {
            while (k-- > 0)
                PyBuffer_Release(&views[k]);
            return -1;
        }
    }
    const char *format = views[0].format;
    int ok = (format[0] == 'f' || format[0] == 'd') && format[1] == '\0';
    for (int k = 1; ok && k < count; k++)
        ok = strcmp(views[k].format, format) == 0 && views[k].len == views[0].len;
    if (!ok) {
        for (int k = 0; k < count; k++)
            PyBuffer_Release(&views[k]);
        PyErr_SetString(PyExc_ValueError,
                        "fused kernels need contiguous float32 or float64 arrays of one "
                        "dtype and size");
        return -1;
    }
    return 0;
}

static PyObject *
adam(PyObject *self, PyObject *args)
{
    PyObject *objects[4];
    double c1, c2, eps, alpha;
    if (!PyArg_ParseTuple(args, "OOOOdddd:adam", &objects[0], &objects[1], &objects[2],
                          &objects[3], &c1, &c2, &eps, &alpha))
        return NULL;
    Py_buffer views[4];
    if (get_buffers(objects, views, 4, 1) < 0)
        return NULL;
    int single = views[0].format[0] == 'f';
    Py_ssize_t n = views[0].len / views[0].itemsize;
    Py_BEGIN_ALLOW_THREADS
    if (single)
        adam_f32(views[0].buf, views[1].buf, views[2].buf, views[3].buf, n, (float)c1,
                 (float)c2, (float)eps, (float)alpha);
    else
        adam_f64(views[0].buf, views[1].buf, views[2].buf, views[3].buf, n, c1, c2, eps, alpha);
    Py_END_ALLOW_THREADS
    for (int k = 0; k < 4; k++)
        PyBuffer_Release(&views[k]);
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"adam", adam, METH_VARARGS,
     "adam(w, g, m, v, c1, c2, epsilon, alpha): one fused Adam step, in place on w, m, v."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_kernels", "Fused optimizer updates (optional).", -1, methods,
};

PyMODINIT_FUNC
PyInit__kernels(void)
{
    return PyModule_Create(&module);
}
