/* The Python module dendrite._kernels: argument checks, then the kernels without the GIL.
 *
 * Arrays come through the buffer protocol (no NumPy headers needed) and must be
 * C-contiguous; the float ones all float32 ('f') or all float64 ('d'). The Python side
 * (dendrite/_native.py) checks dtypes and layouts before calling, so the errors here are
 * a last line of defence, never a user's error message.
 */
#include "kernels.h"

#include <string.h>

/* Get `count` buffers; `writable` is a bitmask of the ones written. */
static int
get_buffers(PyObject **objects, Py_buffer *views, int count, unsigned writable)
{
    for (int k = 0; k < count; k++) {
        int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT;
        if (writable & (1u << k))
            flags |= PyBUF_WRITABLE;
        if (PyObject_GetBuffer(objects[k], &views[k], flags) < 0) {
            while (k-- > 0)
                PyBuffer_Release(&views[k]);
            return -1;
        }
    }
    return 0;
}

static void
release(Py_buffer *views, int count)
{
    for (int k = 0; k < count; k++)
        PyBuffer_Release(&views[k]);
}

static int
is_float(const Py_buffer *view)
{
    const char *format = view->format;
    if (format[0] == '<' || format[0] == '=' || format[0] == '@')
        format++;
    return (format[0] == 'f' || format[0] == 'd') && format[1] == '\0';
}

static int
is_single(const Py_buffer *view)
{
    return view->itemsize == 4;
}

/* The float buffers in `indices` share one type, and each holds `elements` items. */
static int
check_floats(Py_buffer *views, const int *indices, int count, const Py_ssize_t *elements)
{
    for (int k = 0; k < count; k++) {
        Py_buffer *view = &views[indices[k]];
        if (!is_float(view) || view->itemsize != views[indices[0]].itemsize ||
            view->len / view->itemsize != elements[k]) {
            PyErr_SetString(PyExc_ValueError,
                            "dendrite kernels need contiguous float32 or float64 arrays of "
                            "one dtype and of the expected sizes");
            return -1;
        }
    }
    return 0;
}

static int
check_bytes(const Py_buffer *view, Py_ssize_t elements)
{
    if (view->itemsize != 1 || view->len != elements) {
        PyErr_SetString(PyExc_ValueError, "dendrite kernels: expected a uint8 index array");
        return -1;
    }
    return 0;
}

/* adam(updates, c1, c2, epsilon, alpha): `updates` a sequence of (w, g, m, v[, cols]),
 * `cols` > 0 for a 2-D variable of rows of `cols` (updated by blocks of rows, kernels.h); one call
 * for all the variables of a step, so the per-variable cost is a tuple, not a Python call.
 * Every buffer is checked before any is written. */
static PyObject *
adam(PyObject *self, PyObject *args)
{
    PyObject *updates;
    double c1, c2, eps, alpha;
    if (!PyArg_ParseTuple(args, "Odddd:adam", &updates, &c1, &c2, &eps, &alpha))
        return NULL;
    PyObject *sequence = PySequence_Fast(updates, "adam: updates must be a sequence");
    if (sequence == NULL)
        return NULL;
    Py_ssize_t count = PySequence_Fast_GET_SIZE(sequence);
    Py_buffer *views = PyMem_Calloc((size_t)(count > 0 ? count : 1) * 4, sizeof(Py_buffer));
    AdamJob *jobs = PyMem_Calloc((size_t)(count > 0 ? count : 1), sizeof(AdamJob));
    Py_ssize_t held = 0; /* updates whose 4 buffers are held */
    int ok = views != NULL && jobs != NULL;
    if (!ok)
        PyErr_NoMemory();
    for (Py_ssize_t k = 0; ok && k < count; k++) {
        PyObject *item = PySequence_Fast_GET_ITEM(sequence, k);
        PyObject *objects[4];
        Py_ssize_t cols = 0;
        if (!PyArg_ParseTuple(item, "OOOO|n:adam update", &objects[0], &objects[1], &objects[2],
                              &objects[3], &cols) ||
            get_buffers(objects, views + 4 * k, 4, 0xd) < 0) { /* w, m, v written */
            ok = 0;
            break;
        }
        held++;
        Py_buffer *v = views + 4 * k;
        Py_ssize_t n = v[0].len / (v[0].itemsize ? v[0].itemsize : 1);
        const int all[4] = {0, 1, 2, 3};
        const Py_ssize_t sizes[4] = {n, n, n, n};
        if (check_floats(v, all, 4, sizes) < 0) {
            ok = 0;
            break;
        }
        AdamJob job = {v[0].buf, v[1].buf, v[2].buf, v[3].buf, n, cols > 0 ? cols : 0,
                       is_single(&v[0]), c1, c2, eps, alpha};
        jobs[k] = job;
    }
    if (ok) {
        Py_BEGIN_ALLOW_THREADS
        for (Py_ssize_t k = 0; k < count; k++)
            adam_run(&jobs[k]);
        Py_END_ALLOW_THREADS
    }
    for (Py_ssize_t k = 0; k < held; k++)
        release(views + 4 * k, 4);
    PyMem_Free(views);
    PyMem_Free(jobs);
    Py_DECREF(sequence);
    if (!ok)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *
pool_max(PyObject *self, PyObject *args)
{
    PyObject *objects[4];
    Py_ssize_t places, features;
    int relu;
    if (!PyArg_ParseTuple(args, "OOOOnnp:pool_max", &objects[0], &objects[1], &objects[2],
                          &objects[3], &places, &features, &relu))
        return NULL;
    int has_bias = objects[1] != Py_None;
    Py_buffer views[4];
    /* z, bias?, out, winner: without a bias its slot reuses z's buffer, never written */
    if (!has_bias)
        objects[1] = objects[0];
    if (get_buffers(objects, views, 4, 0xc) < 0)
        return NULL;
    Py_ssize_t size = views[2].len / (views[2].itemsize ? views[2].itemsize : 1);
    if (places < 1 || places > 256 || features < 1 || size % features != 0) {
        release(views, 4);
        PyErr_SetString(PyExc_ValueError, "pool_max: bad places or features");
        return NULL;
    }
    const int floats[3] = {0, 1, 2};
    const Py_ssize_t sizes[3] = {places * size, has_bias ? features : places * size, size};
    if (check_floats(views, floats, 3, sizes) < 0 || check_bytes(&views[3], size) < 0) {
        release(views, 4);
        return NULL;
    }
    PoolMaxJob job = {views[0].buf, has_bias ? views[1].buf : NULL, views[2].buf,
                      views[3].buf, places, size / features, features,
                      is_single(&views[0]), relu};
    Py_BEGIN_ALLOW_THREADS
    pool_max_run(&job);
    Py_END_ALLOW_THREADS
    release(views, 4);
    Py_RETURN_NONE;
}

/* pool_scatter(g, winner, out, places, relu_out=None, masked=None) */
static PyObject *
pool_scatter(PyObject *self, PyObject *args)
{
    PyObject *objects[5];
    PyObject *relu_out = Py_None, *masked = Py_None;
    Py_ssize_t places;
    if (!PyArg_ParseTuple(args, "OOOn|OO:pool_scatter", &objects[0], &objects[1], &objects[2],
                          &places, &relu_out, &masked))
        return NULL;
    int relu = relu_out != Py_None;
    if (relu != (masked != Py_None)) {
        PyErr_SetString(PyExc_ValueError, "pool_scatter: relu_out and masked go together");
        return NULL;
    }
    objects[3] = relu_out;
    objects[4] = masked;
    int count = relu ? 5 : 3;
    Py_buffer views[5];
    if (get_buffers(objects, views, count, 0x14)) /* out and masked written */
        return NULL;
    Py_ssize_t size = views[0].len / (views[0].itemsize ? views[0].itemsize : 1);
    const int floats[4] = {0, 2, 3, 4};
    const Py_ssize_t sizes[4] = {size, places * size, size, size};
    if (places < 1 || places > 256 || check_floats(views, floats, relu ? 4 : 2, sizes) < 0 ||
        check_bytes(&views[1], size) < 0) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_ValueError, "pool_scatter: bad places");
        release(views, count);
        return NULL;
    }
    PoolScatterJob job = {views[0].buf, views[1].buf, views[2].buf,
                          relu ? views[3].buf : NULL, relu ? views[4].buf : NULL,
                          places, size, is_single(&views[0])};
    Py_BEGIN_ALLOW_THREADS
    pool_scatter_run(&job);
    Py_END_ALLOW_THREADS
    release(views, count);
    Py_RETURN_NONE;
}

/* a * b (both >= 0) into *out; 0 when it would overflow. */
static int
multiply(Py_ssize_t a, Py_ssize_t b, Py_ssize_t *out)
{
    if (a < 0 || b < 0 || (a != 0 && b > PY_SSIZE_T_MAX / a))
        return 0;
    *out = a * b;
    return 1;
}

/* The product of `count` factors (each >= 0) into *out; 0 when it would overflow. */
static int
product(const Py_ssize_t *factors, int count, Py_ssize_t *out)
{
    Py_ssize_t total = 1;
    for (int k = 0; k < count; k++)
        if (!multiply(total, factors[k], &total))
            return 0;
    *out = total;
    return 1;
}

/* The last index a window touches along one axis, (pool - 1) step + (kernel - 1) dilation +
 * (outputs - 1) pool step, is below `size` (without overflow). */
static int
window_fits(Py_ssize_t kernel, Py_ssize_t pool, Py_ssize_t outputs, Py_ssize_t step,
            Py_ssize_t dilation, Py_ssize_t size)
{
    Py_ssize_t a, b, c;
    const Py_ssize_t last_window[3] = {outputs - 1, pool, step};
    if (kernel < 1 || pool < 1 || outputs < 1 || step < 1 || dilation < 1 ||
        !multiply(pool - 1, step, &a) || !multiply(kernel - 1, dilation, &b) ||
        !product(last_window, 3, &c) || a > PY_SSIZE_T_MAX - b || a + b > PY_SSIZE_T_MAX - c)
        return 0;
    return a + b + c < size;
}

static PyObject *
col2im(PyObject *self, PyObject *args)
{
    PyObject *objects[2];
    Col2imJob job;
    if (!PyArg_ParseTuple(args, "OO(nnnnnnnn)(nnnn)(nn):col2im", &objects[0], &objects[1],
                          &job.kh, &job.kw, &job.ph, &job.pw, &job.n, &job.oh, &job.ow, &job.c,
                          &job.sh, &job.sw, &job.dh, &job.dw, &job.hp, &job.wp))
        return NULL;
    const Py_ssize_t cols_factors[8] = {job.kh, job.kw, job.ph, job.pw,
                                        job.n, job.oh, job.ow, job.c};
    const Py_ssize_t out_factors[4] = {job.n, job.hp, job.wp, job.c};
    Py_ssize_t sizes[2];
    /* every slab must lie inside the output, and no size may overflow */
    int fits = job.n >= 0 && job.c >= 1 && product(cols_factors, 8, &sizes[0]) &&
               product(out_factors, 4, &sizes[1]) &&
               window_fits(job.kh, job.ph, job.oh, job.sh, job.dh, job.hp) &&
               window_fits(job.kw, job.pw, job.ow, job.sw, job.dw, job.wp);
    if (!fits) {
        PyErr_SetString(PyExc_ValueError, "col2im: the windows do not fit the output");
        return NULL;
    }
    Py_buffer views[2];
    if (get_buffers(objects, views, 2, 0x2) < 0)
        return NULL;
    const int floats[2] = {0, 1};
    if (check_floats(views, floats, 2, sizes) < 0) {
        release(views, 2);
        return NULL;
    }
    job.cols = views[0].buf;
    job.out = views[1].buf;
    job.single = is_single(&views[0]);
    Py_BEGIN_ALLOW_THREADS
    col2im_run(&job);
    Py_END_ALLOW_THREADS
    release(views, 2);
    Py_RETURN_NONE;
}

static PyObject *
set_threads(PyObject *self, PyObject *args)
{
    int threads;
    if (!PyArg_ParseTuple(args, "i", &threads))
        return NULL;
    return PyLong_FromLong(parallel_set_threads(threads));
}

static PyObject *
threads(PyObject *self, PyObject *args)
{
    return PyLong_FromLong(parallel_threads());
}

static PyMethodDef methods[] = {
    {"depthwise_forward", depthwise_forward, METH_VARARGS,
     "depthwise_forward(x, kernel, out, (n, h, w, c, m, kh, kw, oh, ow), (sh, sw, dh, dw, pt, pl))."},
    {"depthwise_backward", depthwise_backward, METH_VARARGS,
     "depthwise_backward(g, x, kernel, gx_or_None, gk_or_None, sizes, steps)."},
    {"set_threads", set_threads, METH_VARARGS,
     "set_threads(n): share large jobs with the helper thread (n > 1) or not; returns the threads used."},
    {"threads", threads, METH_NOARGS, "threads(): 2 when large jobs are shared with the helper, else 1."},
    {"adam", adam, METH_VARARGS,
     "adam(updates, c1, c2, epsilon, alpha): one Adam step for each (w, g, m, v) in updates, in place on w, m, v."},
    {"pool_max", pool_max, METH_VARARGS,
     "pool_max(z, bias_or_None, out, winner, places, features, relu): max over places."},
    {"pool_scatter", pool_scatter, METH_VARARGS,
     "pool_scatter(g, winner, out, places[, relu_out, masked]): out[k] = g * (winner == k)."},
    {"col2im", col2im, METH_VARARGS,
     "col2im(cols, out, (kh, kw, ph, pw, n, oh, ow, c), (sh, sw, dh, dw), (hp, wp))."},
    {"lstm_forward", recurrent_lstm_forward, METH_VARARGS,
     "lstm_forward(gates, rec, hs, cs, act, keep, units, batch, steps, k): LSTM step k."},
    {"lstm_backward", recurrent_lstm_backward, METH_VARARGS,
     "lstm_backward(g, gates, cs, act, rec, keep, dh, dc, dz, units, batch, steps, k)."},
    {"gru_forward", recurrent_gru_forward, METH_VARARGS,
     "gru_forward(gates, rec, rbias, hs, inner, keep, units, batch, steps, k): GRU step k."},
    {"gru_backward", recurrent_gru_backward, METH_VARARGS,
     "gru_backward(g, gates, hs, inner, rec, keep, dh, dx, dhu, units, batch, steps, k)."},
    {"rnn_forward", recurrent_rnn_forward, METH_VARARGS,
     "rnn_forward(xs, rec, hs, keep, units, batch, steps, k): SimpleRNN (tanh) step k."},
    {"rnn_backward", recurrent_rnn_backward, METH_VARARGS,
     "rnn_backward(g, ys, rec, keep, dh, dz, units, batch, steps, k)."},
    {"lstm_sequence_forward", recurrent_lstm_sequence_forward, METH_VARARGS,
     "lstm_sequence_forward(gates, kernel, hs, cs, act, keep, rmask, units, batch, steps)."},
    {"lstm_sequence_backward", recurrent_lstm_sequence_backward, METH_VARARGS,
     "lstm_sequence_backward(g, gates, cs, act, kernel, keep, rmask, dh, dc, dz, units, batch, steps)."},
    {"small_product", small_product_method, METH_VARARGS,
     "small_product(a, x, out, rows, depth, cols[, transposed]): out = a @ x, or a.T @ x (C-contiguous, AVX2 and FMA)."},
    {"stacked_product", stacked_product_method, METH_VARARGS,
     "stacked_product(a, x, out, count, rows, depth, cols[, transposed]): out[i] = a[i] @ x[i], or a[i].T @ x[i]."},
    {"small_products_available", recurrent_small_products_available, METH_NOARGS,
     "small_products_available(): whether this CPU runs the sequence kernels (AVX2 and FMA)."},
    {"narrow_forward", narrow_forward, METH_VARARGS,
     "narrow_forward(x, kt, bias_or_None, out, (n, h, w, c, f, kh, kw, oh, ow), (sh, sw, dh, dw, pt, pl))."},
    {"narrow_backward", narrow_backward, METH_VARARGS,
     "narrow_backward(g, x_or_None, kt_or_None, gx_or_None, gkt_or_None, gb_or_None, sizes, steps)."},
    {"shallow_pool_forward", shallow_pool_forward, METH_VARARGS,
     "shallow_pool_forward(x, k2, bias_or_None, out, winner, relu, sizes, steps, (ph, pw))."},
    {"shallow_pool_backward", shallow_pool_backward, METH_VARARGS,
     "shallow_pool_backward(g, x, winner, relu_out_or_None, gk, gb_or_None, sizes, steps, (ph, pw))."},
    {"batchnorm_forward", batchnorm_forward, METH_VARARGS,
     "batchnorm_forward(x, gamma, beta, out, xhat, mean, variance, inv, rows, channels, epsilon)."},
    {"batchnorm_backward", batchnorm_backward, METH_VARARGS,
     "batchnorm_backward(g, xhat, inv, gamma, dx_or_None, sum_g, sum_gx, rows, channels)."},
    {"winograd_input", winograd_input, METH_VARARGS,
     "winograd_input(x, v, sizes, steps): v[e, t, c] = (B^T d_t B)_e, the 4x4 input tiles."},
    {"winograd_pool", winograd_pool, METH_VARARGS,
     "winograd_pool(m, bias_or_None, out, winner, relu, sizes, steps): A^T m A, pooled 2x2."},
    {"winograd_unpool", winograd_unpool, METH_VARARGS,
     "winograd_unpool(g, winner, relu_out_or_None, masked_or_None, d, sizes, steps)."},
    {"winograd_input_grad", winograd_input_grad, METH_VARARGS,
     "winograd_input_grad(dv, gx, sizes, steps): gx = sum over tiles of B dv_t B^T."},
    {"winograd_output", winograd_output, METH_VARARGS,
     "winograd_output(m, out, sizes, steps, (out_h, out_w)): out = A^T m A, tile by tile."},
    {"winograd_output_grad", winograd_output_grad, METH_VARARGS,
     "winograd_output_grad(g, d, sizes, steps, (out_h, out_w)): d = A g_t A^T, tile by tile."},
    {"bias_relu", relu_bias_relu, METH_VARARGS,
     "bias_relu(out, bias_or_None, n, features, relu): out += bias, then max(out, 0) when relu."},
    {"relu_grad", relu_relu_grad, METH_VARARGS, "relu_grad(g, y, out, n): out = g * (y > 0)."},
    {"softmax_shift", softmax_shift, METH_VARARGS,
     "softmax_shift(x, e, shift, rows, width, floored=True): shift = the row max (at least the"
     " lowest value when `floored`), e = x - shift."},
    {"softmax_normalize", softmax_normalize, METH_VARARGS,
     "softmax_normalize(e, total, rows, width, divide=True): total = row sums (NumPy's order),"
     " then e /= total when `divide`."},
    {"sparse_pick", sparse_pick, METH_VARARGS,
     "sparse_pick(labels, z, picked, at, rows, classes): at = r classes + label, picked = z[at];"
     " returns -1, or the first row whose label is out of range."},
    {"sparse_grad", sparse_grad, METH_VARARGS,
     "sparse_grad(p, g, at, out, rows, classes): out = p g[row], then out[at] -= g."},
    {"swap_axes", transpose_swap_axes, METH_VARARGS,
     "swap_axes(src, dst, p, a, M, m0, m, c): dst[q, j, t, i] = src[q, i, m0 + t, j]."},
    {"reuse_begin", reuse_begin, METH_NOARGS,
     "reuse_begin(): this context's arrays use the reusing allocator; returns the previous handler."},
    {"reuse_end", reuse_end, METH_O,
     "reuse_end(previous): back to `previous`; the last loop's end frees the kept blocks."},
    {"reuse_stats", reuse_stats, METH_NOARGS,
     "reuse_stats(): (bytes kept, allocations reused, reusable allocations not reused)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_kernels",
    "dendrite's optional C kernels (loaded by dendrite/_native.py).", -1, methods,
};

PyMODINIT_FUNC
PyInit__kernels(void)
{
    parallel_init();
    PyObject *created = PyModule_Create(&module);
    if (created != NULL && PyModule_AddIntConstant(created, "owned_kernel_from", OWNED_KERNEL_FROM) < 0)
        Py_CLEAR(created);
    return created;
}
