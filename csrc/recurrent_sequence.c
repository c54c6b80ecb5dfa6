/* A whole LSTM sequence in one call, forward or backward: each step's product by
 * small_product.c and its element-wise part by recurrent.c's step kernel, for a chunk of
 * the batch at a time. The samples of a batch are independent, so the chunks are shared
 * with the helper thread (parallel.c) and each runs all its steps without waiting for the
 * other thread; if the helper wakes late, the caller runs more chunks itself.
 *
 * The equations and layouts are recurrent.c's (and the NumPy reference's,
 * dendrite/ops/recurrent/lstm.py): per chunk of columns b0 .. b0 + n of the batch,
 *
 *   forward, k = 0 .. T-1:   rec = U'^T (h_{k-1} m)   (U' the recurrent kernel with the
 *                            sigmoid columns halved, m the recurrent dropout mask or 1)
 *                            then recurrent.c's lstm step on rec;
 *   backward, k = T-1 .. 0:  recurrent.c's lstm backward step on rec (0 at first), which
 *                            writes dz_k; then rec = (U dz_k) m;
 *                            at the end dh_0 = rec + dh (the carry of masked steps), dc_0.
 *
 * A column's results depend on that column alone (small_product.c), so they are the same
 * bits for any batch size, chunking and thread count.
 */
#include "kernels.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* Columns per chunk: a tile of small_product.c's (16 float32), or 8 for a small batch, so
 * that a batch of 16 is still shared by two threads. */
static Py_ssize_t
chunk_columns(Py_ssize_t batch)
{
    return batch >= 32 ? 16 : 8;
}

typedef struct {
    int single;
    Py_ssize_t units, batch, steps, chunk;
    /* forward */
    const char *kernel; /* (u, 4u): the recurrent kernel (forward: its sigmoid columns
                         * halved), read transposed forward */
    char *gates;      /* (4u, T, batch): the projected inputs in, the gate values out */
    char *hs, *cs;    /* (u, T + 1, batch), column 0 the initial state */
    char *act;        /* (u, T, batch): tanh(c) */
    char *last;       /* (2, batch, u): the last h and c, batch-major, or NULL */
    const char *keep; /* (T, batch) 0 or 1, or NULL */
    const char *rmask; /* (u, batch), or NULL */
    /* backward */
    const char *g;      /* (2, u, T, batch): the h and c gradients, or NULL */
    char *dh, *dc;      /* (u, batch): the carried gradients in, dL/dh0 and dL/dc0 out */
    char *dz;           /* (4u, T, batch) */
    atomic_int failed;  /* a chunk found no memory */
} LstmSequenceJob;

/* The chunk's columns [*first, *first + *count). */
static void
chunk_range(const LstmSequenceJob *j, long index, Py_ssize_t *first, Py_ssize_t *count)
{
    *first = index * j->chunk;
    *count = j->batch - *first < j->chunk ? j->batch - *first : j->chunk;
}

#define LSTM_FORWARD_CHUNK(T, STEP, PRODUCT)                                               \
    {                                                                                      \
        const Py_ssize_t u = j->units, batch = j->batch, steps = j->steps;                 \
        const Py_ssize_t sz = steps * batch, ss = (steps + 1) * batch;                     \
        T *scratch = malloc(sizeof(T) * (size_t)(5 * u * n));                              \
        if (scratch == NULL) {                                                             \
            atomic_store(&j->failed, 1);                                                   \
            return;                                                                        \
        }                                                                                  \
        T *rec = scratch, *masked = scratch + 4 * u * n;                                   \
        T *hs = (T *)j->hs + b0, *cs = (T *)j->cs + b0;                                    \
        const T *rmask = (const T *)j->rmask, *keep = (const T *)j->keep;                  \
        for (Py_ssize_t k = 0; k < steps; k++) {                                           \
            const T *h = hs + k * batch;                                                   \
            Py_ssize_t ldh = ss;                                                           \
            if (rmask) {                                                                   \
                for (Py_ssize_t r = 0; r < u; r++)                                         \
                    for (Py_ssize_t b = 0; b < n; b++)                                     \
                        masked[r * n + b] = h[r * ss + b] * rmask[r * batch + b0 + b];     \
                h = masked;                                                                \
                ldh = n;                                                                   \
            }                                                                              \
            PRODUCT((const T *)j->kernel, 1, 4 * u, h, ldh, rec, n, 4 * u, u, n);          \
            STEP((T *)j->gates + k * batch + b0, rec, hs + k * batch, cs + k * batch,      \
                 hs + (k + 1) * batch, cs + (k + 1) * batch, (T *)j->act + k * batch + b0, \
                 keep ? keep + k * batch + b0 : NULL, u, n, n, sz, ss);                    \
        }                                                                                  \
        if (j->last) {                                                                     \
            T *last_h = (T *)j->last + b0 * u, *last_c = last_h + batch * u;               \
            for (Py_ssize_t r = 0; r < u; r++)                                             \
                for (Py_ssize_t b = 0; b < n; b++) {                                       \
                    last_h[b * u + r] = hs[r * ss + steps * batch + b];                    \
                    last_c[b * u + r] = cs[r * ss + steps * batch + b];                    \
                }                                                                          \
        }                                                                                  \
        free(scratch);                                                                     \
    }

#define LSTM_BACKWARD_CHUNK(T, STEP, PRODUCT)                                              \
    {                                                                                      \
        const Py_ssize_t u = j->units, batch = j->batch, steps = j->steps;                 \
        const Py_ssize_t sz = steps * batch, ss = (steps + 1) * batch;                     \
        T *scratch = malloc(sizeof(T) * (size_t)(3 * u * n));                              \
        if (scratch == NULL) {                                                             \
            atomic_store(&j->failed, 1);                                                   \
            return;                                                                        \
        }                                                                                  \
        T *rec = scratch, *dh = scratch + u * n, *dc = scratch + 2 * u * n;                \
        T *dh_io = (T *)j->dh + b0, *dc_io = (T *)j->dc + b0;                              \
        const T *rmask = (const T *)j->rmask, *keep = (const T *)j->keep;                  \
        const T *g = (const T *)j->g;                                                      \
        for (Py_ssize_t r = 0; r < u; r++)                                                 \
            for (Py_ssize_t b = 0; b < n; b++) {                                           \
                rec[r * n + b] = 0;                                                        \
                dh[r * n + b] = dh_io[r * batch + b];                                      \
                dc[r * n + b] = dc_io[r * batch + b];                                      \
            }                                                                              \
        for (Py_ssize_t k = steps - 1; k >= 0; k--) {                                      \
            Py_ssize_t at = k * batch + b0;                                                \
            T *dz = (T *)j->dz + at;                                                       \
            STEP(g ? g + at : NULL, g ? g + u * sz + at : NULL, (const T *)j->gates + at,  \
                 (const T *)j->act + at, (const T *)j->cs + at, rec,                       \
                 keep ? keep + at : NULL, dh, dc, dz, u, n, n, sz, ss);                    \
            PRODUCT((const T *)j->kernel, 4 * u, 1, dz, sz, rec, n, u, 4 * u, n);          \
            if (rmask)                                                                     \
                for (Py_ssize_t r = 0; r < u; r++)                                         \
                    for (Py_ssize_t b = 0; b < n; b++)                                     \
                        rec[r * n + b] = rec[r * n + b] * rmask[r * batch + b0 + b];       \
        }                                                                                  \
        for (Py_ssize_t r = 0; r < u; r++)                                                 \
            for (Py_ssize_t b = 0; b < n; b++) {                                           \
                dh_io[r * batch + b] = rec[r * n + b] + dh[r * n + b];                     \
                dc_io[r * batch + b] = dc[r * n + b];                                      \
            }                                                                              \
        free(scratch);                                                                     \
    }

static void
lstm_forward_chunk(const void *context, long index)
{
    LstmSequenceJob *j = (LstmSequenceJob *)context;
    Py_ssize_t b0, n;
    chunk_range(j, index, &b0, &n);
    if (j->single)
        LSTM_FORWARD_CHUNK(float, lstm_forward_f32, small_product_f32)
    else
        LSTM_FORWARD_CHUNK(double, lstm_forward_f64, small_product_f64)
}

static void
lstm_backward_chunk(const void *context, long index)
{
    LstmSequenceJob *j = (LstmSequenceJob *)context;
    Py_ssize_t b0, n;
    chunk_range(j, index, &b0, &n);
    if (j->single)
        LSTM_BACKWARD_CHUNK(float, lstm_backward_f32, small_product_f32)
    else
        LSTM_BACKWARD_CHUNK(double, lstm_backward_f64, small_product_f64)
}

/* units >= 1, steps >= 0 (none: the states stay the initial ones), batch >= 0, and
 * (steps + 1) * 4 units * batch fits. */
static int
check_sizes(Py_ssize_t units, Py_ssize_t batch, Py_ssize_t steps)
{
    if (!small_product_available()) {
        PyErr_SetString(PyExc_RuntimeError,
                        "dendrite recurrent sequence kernels need AVX2 and FMA "
                        "(see small_products_available)");
        return -1;
    }
    if (units < 1 || batch < 0 || steps < 0 || steps > PY_SSIZE_T_MAX / 8 - 1 ||
        units > PY_SSIZE_T_MAX / 8 / units ||
        (batch > 0 && units > PY_SSIZE_T_MAX / 8 / batch) ||
        4 * units * batch > PY_SSIZE_T_MAX / 8 / (steps + 1)) {
        PyErr_SetString(PyExc_ValueError, "dendrite recurrent sequence kernels: bad sizes");
        return -1;
    }
    return 0;
}

static PyObject *
run_job(LstmSequenceJob *job, chunk_fn fn, Py_buffer *views, int count)
{
    long chunks = job->batch == 0 ? 0 : (long)((job->batch + job->chunk - 1) / job->chunk);
    Py_BEGIN_ALLOW_THREADS
    parallel_for(chunks, fn, job, chunks > 1);
    Py_END_ALLOW_THREADS
    kernel_give_back(views, count);
    if (atomic_load(&job->failed))
        return PyErr_NoMemory();
    Py_RETURN_NONE;
}

/* lstm_sequence_forward(gates, kernel, hs, cs, act, keep, rmask, units, batch, steps[,
 * last]): every step of recurrent.c's lstm_forward, with kernel (u, 4u) the recurrent
 * kernel (sigmoid columns halved), keep (T, batch) or None, rmask (u, batch) or None;
 * `last` (2, batch, u), when given, gets the last step's h and c batch-major (what a layer
 * without return_sequences returns: written by each chunk while its states are in its
 * cache, where a copy afterwards from the strided last column took 80-90 us of a 4.5 ms
 * training step). */
PyObject *
recurrent_lstm_sequence_forward(PyObject *self, PyObject *args)
{
    PyObject *o[8];
    o[7] = Py_None;
    Py_ssize_t u, batch, steps;
    if (!PyArg_ParseTuple(args, "OOOOOOOnnn|O:lstm_sequence_forward", &o[0], &o[1], &o[2],
                          &o[3], &o[4], &o[5], &o[6], &u, &batch, &steps, &o[7]) ||
        check_sizes(u, batch, steps) < 0)
        return NULL;
    Py_ssize_t sz = steps * batch, ss = (steps + 1) * batch;
    const KernelArg a[8] = {{o[0], 4 * u * sz, 'w'}, {o[1], 4 * u * u, 'r'},
                            {o[2], u * ss, 'w'},     {o[3], u * ss, 'w'},
                            {o[4], u * sz, 'w'},     {o[5], sz, 'R'},
                            {o[6], u * batch, 'R'},  {o[7], 2 * u * batch, 'W'}};
    Py_buffer v[8];
    int single = kernel_take(a, v, 8);
    if (single < 0)
        return NULL;
    LstmSequenceJob job = {.single = single, .units = u, .batch = batch, .steps = steps,
                           .chunk = chunk_columns(batch), .gates = v[0].buf, .kernel = v[1].buf,
                           .hs = v[2].buf, .cs = v[3].buf, .act = v[4].buf,
                           .keep = v[5].buf, .rmask = v[6].buf, .last = v[7].buf};
    return run_job(&job, lstm_forward_chunk, v, 8);
}

/* lstm_sequence_backward(g, gates, cs, act, kernel, keep, rmask, dh, dc, dz, units,
 * batch, steps): every step of recurrent.c's lstm_backward and the product U dz_k, with g
 * (2, u, T, batch) or None, kernel (u, 4u) the recurrent kernel, dh and dc (u, batch) the
 * last states' gradients in and dL/dh0, dL/dc0 out. */
PyObject *
recurrent_lstm_sequence_backward(PyObject *self, PyObject *args)
{
    PyObject *o[10];
    Py_ssize_t u, batch, steps;
    if (!PyArg_ParseTuple(args, "OOOOOOOOOOnnn:lstm_sequence_backward", &o[0], &o[1], &o[2],
                          &o[3], &o[4], &o[5], &o[6], &o[7], &o[8], &o[9], &u, &batch,
                          &steps) ||
        check_sizes(u, batch, steps) < 0)
        return NULL;
    Py_ssize_t sz = steps * batch, ss = (steps + 1) * batch, n = u * batch;
    const KernelArg a[10] = {{o[0], 2 * u * sz, 'R'}, {o[1], 4 * u * sz, 'r'},
                             {o[2], u * ss, 'r'},     {o[3], u * sz, 'r'},
                             {o[4], 4 * u * u, 'r'},  {o[5], sz, 'R'},
                             {o[6], n, 'R'},          {o[7], n, 'w'},
                             {o[8], n, 'w'},          {o[9], 4 * u * sz, 'w'}};
    Py_buffer v[10];
    int single = kernel_take(a, v, 10);
    if (single < 0)
        return NULL;
    LstmSequenceJob job = {.single = single, .units = u, .batch = batch, .steps = steps,
                           .chunk = chunk_columns(batch), .g = v[0].buf, .gates = v[1].buf,
                           .cs = v[2].buf, .act = v[3].buf, .kernel = v[4].buf,
                           .keep = v[5].buf, .rmask = v[6].buf, .dh = v[7].buf,
                           .dc = v[8].buf, .dz = v[9].buf};
    return run_job(&job, lstm_backward_chunk, v, 10);
}

PyObject *
recurrent_small_products_available(PyObject *self, PyObject *unused)
{
    return PyBool_FromLong(small_product_available());
}
