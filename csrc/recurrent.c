/* The element-wise part of one time step of the fused recurrences, forward and backward
 * (the NumPy reference is dendrite/ops/recurrent/: lstm.py, gru.py, simple_rnn.py).
 *
 * The Python loop runs the step's one matrix product (NumPy, BLAS) and then one of these
 * kernels, which makes a single pass over the step's gate block instead of the ~15 NumPy
 * calls of the reference. Arrays are feature-major, as in the reference: a sequence is
 * (T, rows, batch), a state (units, batch), so each gate is a contiguous (units, batch)
 * block and every inner loop runs over the batch.
 *
 * Only the activations the layers use by default have a kernel: tanh, and sigmoid as
 * s(x) = (1 + tanh(x / 2)) / 2 with the halving already folded into the weights by the
 * caller (as the reference does). float64 uses libm's tanh (within an ulp or two of
 * NumPy's, so float64 gradient checks by finite differences still hold); float32 uses the
 * rational approximation below, vectorised, whose error is at most about 3e-7 absolute
 * (the NumPy path is the reference: tests/test_kernels_recurrent.py compares the two
 * within 1e-5 on float32 activations and gradients, 1e-10 on float64).
 *
 * LSTM forward, step k (gates i f c o as rows 0..4u of z):
 *   z = gates[k] + rec;  i, f, o = (1 + tanh(z)) / 2;  cc = tanh(z)
 *   c = f c_{k-1} + i cc;  a = tanh(c);  h = o a;  where keep[k] is 0: h, c = h_{k-1}, c_{k-1}
 * LSTM backward, step k (dh, dc carried from step k+1, rec = U dz_{k+1}):
 *   dh_t = rec + dh + g_h[k] (rec already times the dropout mask);  dc_t = dc + g_c[k]
 *   dc_n = dc_t + dh_t o (1 - a^2)
 *   dz = [dc_n cc i(1-i), dc_n c_{k-1} f(1-f), dc_n i (1-cc^2), dh_t a o(1-o)]
 *   dc = dc_n f, dh = 0;  where keep[k] is 0: dz = 0, dc = dc_t, dh = dh_t (the carry)
 * GRU (reset_after) forward: u = rec + b_rec;  z, r = (1 + tanh(gates + u)) / 2;
 *   inner = u_h;  hh = tanh(gates_h + r inner);  h = (h_{k-1} - hh) z + hh
 * GRU backward: dh_t as above;  dz_z = dh_t (h_{k-1} - hh) z(1-z);
 *   dhh = dh_t (1 - hh^2)(1 - z);  dz_r = dhh r(1-r) inner;  dx = [dz_z, dz_r, dhh],
 *   dhu = [dz_z, dz_r, dhh r];  dh = dh_t z
 * SimpleRNN forward: h = tanh(xs[k] + rec);  backward: dz = dh_t (1 - h^2), dh = 0.
 */
#include "kernels.h"

#include <math.h>

/* tanh for float32: odd rational p(x)/q(x) of degrees 13 and 6 on [-7.9, 7.9] (past it
 * float32's tanh is within 3e-7 of +-1), the form Eigen uses for its vectorised tanh. */
#define TANH_F32(x, out)                                                                   \
    do {                                                                                   \
        float x_ = (x);                                                                    \
        x_ = x_ > 7.90531110763549805f ? 7.90531110763549805f : x_;                        \
        x_ = x_ < -7.90531110763549805f ? -7.90531110763549805f : x_;                      \
        float x2_ = x_ * x_;                                                               \
        float p_ = x2_ * -2.76076847742355e-16f + 2.00018790482477e-13f;                   \
        p_ = p_ * x2_ + -8.60467152213735e-11f;                                            \
        p_ = p_ * x2_ + 5.12229709037114e-08f;                                             \
        p_ = p_ * x2_ + 1.48572235717979e-05f;                                             \
        p_ = p_ * x2_ + 6.37261928875436e-04f;                                             \
        p_ = p_ * x2_ + 4.89352455891786e-03f;                                             \
        p_ = p_ * x_;                                                                      \
        float q_ = x2_ * 1.19825839466702e-06f + 1.18534705686654e-04f;                    \
        q_ = q_ * x2_ + 2.26843463243900e-03f;                                             \
        q_ = q_ * x2_ + 4.89352518554385e-03f;                                             \
        (out) = p_ / q_;                                                                   \
    } while (0)

#define TANH_F64(x, out) ((out) = tanh(x))

/* --- LSTM --------------------------------------------------------------------------- */

/* The mask goes in a second pass over the (cached) step: with it in the first loop GCC
 * vectorises nothing. */
#define LSTM_FORWARD_BODY(T, TANH)                                                         \
    const Py_ssize_t n = units * batch;                                                    \
    T *restrict zi = z, *restrict zf = z + n, *restrict zc = z + 2 * n, *restrict zo = z + 3 * n; \
    const T *restrict ri = rec, *restrict rf = rec + n, *restrict rc = rec + 2 * n,        \
                      *restrict ro = rec + 3 * n;                                          \
    for (Py_ssize_t e = 0; e < n; e++) {                                                   \
        T ti, tf, tc, to, a;                                                               \
        TANH(zi[e] + ri[e], ti);                                                           \
        TANH(zf[e] + rf[e], tf);                                                           \
        TANH(zc[e] + rc[e], tc);                                                           \
        TANH(zo[e] + ro[e], to);                                                           \
        T i = ti * (T)0.5 + (T)0.5, f = tf * (T)0.5 + (T)0.5;                              \
        T o = to * (T)0.5 + (T)0.5;                                                        \
        zi[e] = i;                                                                         \
        zf[e] = f;                                                                         \
        zc[e] = tc;                                                                        \
        zo[e] = o;                                                                         \
        T c = f * c_prev[e];                                                               \
        c = c + i * tc;                                                                    \
        TANH(c, a);                                                                        \
        act[e] = a;                                                                        \
        c_out[e] = c;                                                                      \
        h_out[e] = o * a;                                                                  \
    }                                                                                      \
    if (keep)                                                                              \
        for (Py_ssize_t j = 0; j < units; j++)                                             \
            for (Py_ssize_t b = 0; b < batch; b++) {                                       \
                Py_ssize_t e = j * batch + b;                                              \
                T h = h_out[e], c = c_out[e], hp = h_prev[e], cp = c_prev[e];              \
                h_out[e] = keep[b] != (T)0 ? h : hp;                                       \
                c_out[e] = keep[b] != (T)0 ? c : cp;                                       \
            }

VECTOR_CLONES static void
lstm_forward_f32(float *restrict z, const float *restrict rec, const float *restrict h_prev,
                 const float *restrict c_prev, float *restrict h_out, float *restrict c_out,
                 float *restrict act, const float *restrict keep, Py_ssize_t units,
                 Py_ssize_t batch)
{
    LSTM_FORWARD_BODY(float, TANH_F32)
}

VECTOR_CLONES static void
lstm_forward_f64(double *restrict z, const double *restrict rec, const double *restrict h_prev,
                 const double *restrict c_prev, double *restrict h_out, double *restrict c_out,
                 double *restrict act, const double *restrict keep, Py_ssize_t units,
                 Py_ssize_t batch)
{
    LSTM_FORWARD_BODY(double, TANH_F64)
}

#define LSTM_BACKWARD_LOOP(T, MASKED)                                                      \
    const T *restrict gi = gates, *restrict gf = gates + n, *restrict gc = gates + 2 * n,  \
                      *restrict go = gates + 3 * n;                                        \
    T *restrict di = dz, *restrict df = dz + n, *restrict dcc = dz + 2 * n,                \
                *restrict dout = dz + 3 * n;                                               \
    for (Py_ssize_t j = 0; j < units; j++) {                                               \
        for (Py_ssize_t b = 0; b < batch; b++) {                                           \
            Py_ssize_t e = j * batch + b;                                                  \
            T dh_t = rec[e] + dh[e];                                                       \
            dh_t = dh_t + g_h[e];                                                          \
            T dc_t = dc[e] + g_c[e];                                                       \
            T i = gi[e], f = gf[e], cc = gc[e], o = go[e], a = act[e];                     \
            T dc_n = dc_t + dh_t * (((T)1 - a * a) * o);                                   \
            T d_i = dc_n * (((T)1 - i) * i * cc);                                          \
            T d_f = dc_n * (((T)1 - f) * f * c_prev[e]);                                   \
            T d_c = dc_n * (((T)1 - cc * cc) * i);                                         \
            T d_o = dh_t * (((T)1 - o) * o * a);                                           \
            int kept = MASKED ? keep[b] != 0 : 1;                                          \
            di[e] = kept ? d_i : (T)0;                                                     \
            df[e] = kept ? d_f : (T)0;                                                     \
            dcc[e] = kept ? d_c : (T)0;                                                    \
            dout[e] = kept ? d_o : (T)0;                                                   \
            dc[e] = kept ? dc_n * f : dc_t;                                                \
            dh[e] = kept ? (T)0 : dh_t;                                                    \
        }                                                                                  \
    }

#define LSTM_BACKWARD_BODY(T)                                                              \
    const Py_ssize_t n = units * batch;                                                    \
    if (keep) {                                                                            \
        LSTM_BACKWARD_LOOP(T, 1)                                                           \
    } else {                                                                               \
        LSTM_BACKWARD_LOOP(T, 0)                                                           \
    }

VECTOR_CLONES static void
lstm_backward_f32(const float *restrict g_h, const float *restrict g_c,
                  const float *restrict gates, const float *restrict act,
                  const float *restrict c_prev, const float *restrict rec,
                  const float *restrict keep,
                  float *restrict dh, float *restrict dc, float *restrict dz, Py_ssize_t units,
                  Py_ssize_t batch)
{
    LSTM_BACKWARD_BODY(float)
}

VECTOR_CLONES static void
lstm_backward_f64(const double *restrict g_h, const double *restrict g_c,
                  const double *restrict gates, const double *restrict act,
                  const double *restrict c_prev, const double *restrict rec,
                  const double *restrict keep,
                  double *restrict dh, double *restrict dc, double *restrict dz,
                  Py_ssize_t units, Py_ssize_t batch)
{
    LSTM_BACKWARD_BODY(double)
}

/* --- GRU, reset_after ------------------------------------------------------------------ */

#define GRU_FORWARD_LOOP(T, TANH, MASKED)                                                  \
    T *restrict zz = z, *restrict zr = z + n, *restrict zh = z + 2 * n;                    \
    const T *restrict rz = rec, *restrict rr = rec + n, *restrict rh = rec + 2 * n;        \
    for (Py_ssize_t j = 0; j < units; j++) {                                               \
        T bz = rbias[j], br = rbias[units + j], bh = rbias[2 * units + j];                 \
        for (Py_ssize_t b = 0; b < batch; b++) {                                           \
            Py_ssize_t e = j * batch + b;                                                  \
            T tz, tr, hh;                                                                  \
            TANH(zz[e] + (rz[e] + bz), tz);                                                \
            TANH(zr[e] + (rr[e] + br), tr);                                                \
            T gz = tz * (T)0.5 + (T)0.5, gr = tr * (T)0.5 + (T)0.5;                        \
            T in = rh[e] + bh;                                                             \
            TANH(zh[e] + gr * in, hh);                                                     \
            zz[e] = gz;                                                                    \
            zr[e] = gr;                                                                    \
            zh[e] = hh;                                                                    \
            inner[e] = in;                                                                 \
            T hp = h_prev[e];                                                              \
            T h = (hp - hh) * gz + hh;                                                     \
            h_out[e] = (MASKED ? keep[b] != 0 : 1) ? h : hp;                               \
        }                                                                                  \
    }

#define GRU_FORWARD_BODY(T, TANH)                                                          \
    const Py_ssize_t n = units * batch;                                                    \
    if (keep) {                                                                            \
        GRU_FORWARD_LOOP(T, TANH, 1)                                                       \
    } else {                                                                               \
        GRU_FORWARD_LOOP(T, TANH, 0)                                                       \
    }

VECTOR_CLONES static void
gru_forward_f32(float *restrict z, const float *restrict rec, const float *restrict rbias,
                const float *restrict h_prev, float *restrict h_out, float *restrict inner,
                const float *restrict keep, Py_ssize_t units, Py_ssize_t batch)
{
    GRU_FORWARD_BODY(float, TANH_F32)
}

VECTOR_CLONES static void
gru_forward_f64(double *restrict z, const double *restrict rec, const double *restrict rbias,
                const double *restrict h_prev, double *restrict h_out, double *restrict inner,
                const double *restrict keep, Py_ssize_t units, Py_ssize_t batch)
{
    GRU_FORWARD_BODY(double, TANH_F64)
}

#define GRU_BACKWARD_LOOP(T, MASKED)                                                       \
    const T *restrict gz = gates, *restrict gr = gates + n, *restrict gh = gates + 2 * n;  \
    for (Py_ssize_t j = 0; j < units; j++) {                                               \
        for (Py_ssize_t b = 0; b < batch; b++) {                                           \
            Py_ssize_t e = j * batch + b;                                                  \
            T dh_t = rec[e] + dh[e];                                                       \
            dh_t = dh_t + g[e];                                                            \
            T zg = gz[e], r = gr[e], hh = gh[e];                                           \
            T d_z = dh_t * ((h_prev[e] - hh) * (((T)1 - zg) * zg));                        \
            T d_hh = dh_t * (((T)1 - hh * hh) * ((T)1 - zg));                              \
            T d_r = d_hh * ((((T)1 - r) * r) * inner[e]);                                  \
            int kept = MASKED ? keep[b] != 0 : 1;                                          \
            d_z = kept ? d_z : (T)0;                                                       \
            d_hh = kept ? d_hh : (T)0;                                                     \
            d_r = kept ? d_r : (T)0;                                                       \
            dx[e] = d_z;                                                                   \
            dx[n + e] = d_r;                                                               \
            dx[2 * n + e] = d_hh;                                                          \
            dhu[e] = d_z;                                                                  \
            dhu[n + e] = d_r;                                                              \
            dhu[2 * n + e] = d_hh * r;                                                     \
            dh[e] = kept ? dh_t * zg : dh_t;                                               \
        }                                                                                  \
    }

#define GRU_BACKWARD_BODY(T)                                                               \
    const Py_ssize_t n = units * batch;                                                    \
    if (keep) {                                                                            \
        GRU_BACKWARD_LOOP(T, 1)                                                            \
    } else {                                                                               \
        GRU_BACKWARD_LOOP(T, 0)                                                            \
    }

VECTOR_CLONES static void
gru_backward_f32(const float *restrict g, const float *restrict gates,
                 const float *restrict h_prev, const float *restrict inner,
                 const float *restrict rec, const float *restrict keep, float *restrict dh, float *restrict dx,
                 float *restrict dhu, Py_ssize_t units, Py_ssize_t batch)
{
    GRU_BACKWARD_BODY(float)
}

VECTOR_CLONES static void
gru_backward_f64(const double *restrict g, const double *restrict gates,
                 const double *restrict h_prev, const double *restrict inner,
                 const double *restrict rec, const double *restrict keep, double *restrict dh, double *restrict dx,
                 double *restrict dhu, Py_ssize_t units, Py_ssize_t batch)
{
    GRU_BACKWARD_BODY(double)
}

/* --- SimpleRNN ------------------------------------------------------------------------ */

#define RNN_FORWARD_BODY(T, TANH)                                                          \
    const Py_ssize_t n = units * batch;                                                    \
    if (keep) {                                                                            \
        for (Py_ssize_t j = 0; j < units; j++) {                                           \
            for (Py_ssize_t b = 0; b < batch; b++) {                                       \
                Py_ssize_t e = j * batch + b;                                              \
                T h, hp = h_prev[e];                                                       \
                TANH(z[e] + rec[e], h);                                                    \
                z[e] = h;                                                                  \
                h_out[e] = keep[b] != 0 ? h : hp;                                          \
            }                                                                              \
        }                                                                                  \
    } else {                                                                               \
        for (Py_ssize_t e = 0; e < n; e++) {                                               \
            T h;                                                                           \
            TANH(z[e] + rec[e], h);                                                        \
            z[e] = h;                                                                      \
        }                                                                                  \
    }

VECTOR_CLONES static void
rnn_forward_f32(float *restrict z, const float *restrict rec, const float *restrict h_prev,
                float *restrict h_out, const float *restrict keep, Py_ssize_t units,
                Py_ssize_t batch)
{
    RNN_FORWARD_BODY(float, TANH_F32)
}

VECTOR_CLONES static void
rnn_forward_f64(double *restrict z, const double *restrict rec, const double *restrict h_prev,
                double *restrict h_out, const double *restrict keep, Py_ssize_t units,
                Py_ssize_t batch)
{
    RNN_FORWARD_BODY(double, TANH_F64)
}

#define RNN_BACKWARD_LOOP(T, MASKED)                                                       \
    for (Py_ssize_t j = 0; j < units; j++) {                                               \
        for (Py_ssize_t b = 0; b < batch; b++) {                                           \
            Py_ssize_t e = j * batch + b;                                                  \
            T dh_t = rec[e] + dh[e];                                                       \
            dh_t = dh_t + g[e];                                                            \
            T y = ys[e];                                                                   \
            int kept = MASKED ? keep[b] != 0 : 1;                                          \
            dz[e] = kept ? ((T)1 - y * y) * dh_t : (T)0;                                   \
            dh[e] = kept ? (T)0 : dh_t;                                                    \
        }                                                                                  \
    }

#define RNN_BACKWARD_BODY(T)                                                               \
    if (keep) {                                                                            \
        RNN_BACKWARD_LOOP(T, 1)                                                            \
    } else {                                                                               \
        RNN_BACKWARD_LOOP(T, 0)                                                            \
    }

VECTOR_CLONES static void
rnn_backward_f32(const float *restrict g, const float *restrict ys, const float *restrict rec,
                 const float *restrict keep, float *restrict dh,
                 float *restrict dz, Py_ssize_t units, Py_ssize_t batch)
{
    RNN_BACKWARD_BODY(float)
}

VECTOR_CLONES static void
rnn_backward_f64(const double *restrict g, const double *restrict ys,
                 const double *restrict rec, const double *restrict keep, double *restrict dh, double *restrict dz,
                 Py_ssize_t units, Py_ssize_t batch)
{
    RNN_BACKWARD_BODY(double)
}

/* --- the Python side ------------------------------------------------------------------- */

/* How each argument is taken: a float array read ('r') or written ('w'), or either one or
 * None ('R', 'W'). The step masks `keep` are float arrays of 0 and 1 (T, batch), so that
 * the selects vectorise with the rest. */
typedef struct {
    PyObject *object;
    Py_ssize_t elements;
    char kind;
} Arg;

/* Get every buffer of `args` (None leaves .buf and .obj NULL), check sizes and one float
 * type; returns 1 for float32, 0 for float64, -1 with an exception set. */
static int
take(const Arg *args, Py_buffer *views, int count)
{
    int single = -1, k;
    for (k = 0; k < count; k++) {
        const Arg *arg = &args[k];
        views[k].buf = NULL;
        views[k].obj = NULL;
        if (arg->object == Py_None) {
            if (arg->kind == 'R' || arg->kind == 'W')
                continue;
            PyErr_SetString(PyExc_ValueError, "dendrite recurrent kernels: missing array");
            goto fail;
        }
        int written = arg->kind == 'w' || arg->kind == 'W';
        int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (written ? PyBUF_WRITABLE : 0);
        if (PyObject_GetBuffer(arg->object, &views[k], flags) < 0) {
            views[k].obj = NULL;
            goto fail;
        }
        const char *format = views[k].format;
        if (format[0] == '<' || format[0] == '=' || format[0] == '@')
            format++;
        int this_single = views[k].itemsize == 4;
        if (!((format[0] == 'f' || format[0] == 'd') && format[1] == '\0' &&
              views[k].len == arg->elements * views[k].itemsize &&
              (single < 0 || single == this_single))) {
            PyBuffer_Release(&views[k]);
            views[k].obj = NULL;
            PyErr_SetString(PyExc_ValueError,
                            "dendrite recurrent kernels need contiguous float32 or float64 "
                            "arrays of one dtype and of the expected sizes");
            goto fail;
        }
        single = this_single;
    }
    return single;
fail:
    while (k-- > 0)
        if (views[k].obj != NULL)
            PyBuffer_Release(&views[k]);
    return -1;
}

static void
give_back(Py_buffer *views, int count)
{
    for (int k = 0; k < count; k++)
        if (views[k].obj != NULL)
            PyBuffer_Release(&views[k]);
}

/* units, batch, steps >= 1, 0 <= step < steps, and steps * 4 units * batch fits. */
static int
check_shape(Py_ssize_t units, Py_ssize_t batch, Py_ssize_t steps, Py_ssize_t step)
{
    if (units < 1 || batch < 1 || steps < 1 || step < 0 || step >= steps ||
        units > PY_SSIZE_T_MAX / 8 / batch || 4 * units * batch > PY_SSIZE_T_MAX / 8 / steps) {
        PyErr_SetString(PyExc_ValueError, "dendrite recurrent kernels: bad sizes or step");
        return -1;
    }
    return 0;
}

/* The address of element `offset` of a float buffer (NULL for None). */
#define AT(view, offset, single)                                                           \
    ((view).buf == NULL ? NULL : (char *)(view).buf + (size_t)(offset) * ((single) ? 4 : 8))

#define F32(p) ((float *)(p))
#define F64(p) ((double *)(p))

/* lstm_forward(gates, rec, hs, cs, act, h0, c0, keep, units, batch, steps, k) */
PyObject *
recurrent_lstm_forward(PyObject *self, PyObject *args)
{
    PyObject *o[8];
    Py_ssize_t u, batch, steps, k;
    if (!PyArg_ParseTuple(args, "OOOOOOOOnnnn:lstm_forward", &o[0], &o[1], &o[2], &o[3], &o[4],
                          &o[5], &o[6], &o[7], &u, &batch, &steps, &k) ||
        check_shape(u, batch, steps, k) < 0)
        return NULL;
    Py_ssize_t n = u * batch;
    const Arg a[8] = {{o[0], steps * 4 * n, 'w'}, {o[1], 4 * n, 'r'}, {o[2], steps * n, 'w'},
                      {o[3], steps * n, 'w'},     {o[4], steps * n, 'w'}, {o[5], n, 'r'},
                      {o[6], n, 'r'},             {o[7], steps * batch, 'R'}};
    Py_buffer v[8];
    int single = take(a, v, 8);
    if (single < 0)
        return NULL;
    char *h_prev = k ? AT(v[2], (k - 1) * n, single) : v[5].buf;
    char *c_prev = k ? AT(v[3], (k - 1) * n, single) : v[6].buf;
    char *z = AT(v[0], k * 4 * n, single), *h = AT(v[2], k * n, single);
    char *c = AT(v[3], k * n, single), *act = AT(v[4], k * n, single);
    char *keep = AT(v[7], k * batch, single);
    Py_BEGIN_ALLOW_THREADS
    if (single)
        lstm_forward_f32(F32(z), F32(v[1].buf), F32(h_prev), F32(c_prev), F32(h), F32(c),
                         F32(act), F32(keep), u, batch);
    else
        lstm_forward_f64(F64(z), F64(v[1].buf), F64(h_prev), F64(c_prev), F64(h), F64(c),
                         F64(act), F64(keep), u, batch);
    Py_END_ALLOW_THREADS
    give_back(v, 8);
    Py_RETURN_NONE;
}

/* lstm_backward(g, gates, cs, act, c0, rec, keep, dh, dc, dz, units, batch, steps, k) with
 * g (2, T, u, batch), the h then the c gradients; rec already times the dropout mask. */
PyObject *
recurrent_lstm_backward(PyObject *self, PyObject *args)
{
    PyObject *o[10];
    Py_ssize_t u, batch, steps, k;
    if (!PyArg_ParseTuple(args, "OOOOOOOOOOnnnn:lstm_backward", &o[0], &o[1], &o[2], &o[3],
                          &o[4], &o[5], &o[6], &o[7], &o[8], &o[9], &u, &batch, &steps, &k) ||
        check_shape(u, batch, steps, k) < 0)
        return NULL;
    Py_ssize_t n = u * batch;
    const Arg a[10] = {{o[0], 2 * steps * n, 'r'}, {o[1], steps * 4 * n, 'r'},
                       {o[2], steps * n, 'r'},     {o[3], steps * n, 'r'},
                       {o[4], n, 'r'},             {o[5], n, 'r'},
                       {o[6], steps * batch, 'R'}, {o[7], n, 'w'},
                       {o[8], n, 'w'},             {o[9], steps * 4 * n, 'w'}};
    Py_buffer v[10];
    int single = take(a, v, 10);
    if (single < 0)
        return NULL;
    char *g_h = AT(v[0], k * n, single), *g_c = AT(v[0], (steps + k) * n, single);
    char *gates = AT(v[1], k * 4 * n, single), *act = AT(v[3], k * n, single);
    char *c_prev = k ? AT(v[2], (k - 1) * n, single) : v[4].buf;
    char *keep = AT(v[6], k * batch, single), *dz = AT(v[9], k * 4 * n, single);
    Py_BEGIN_ALLOW_THREADS
    if (single)
        lstm_backward_f32(F32(g_h), F32(g_c), F32(gates), F32(act), F32(c_prev),
                          F32(v[5].buf), F32(keep), F32(v[7].buf), F32(v[8].buf), F32(dz), u,
                          batch);
    else
        lstm_backward_f64(F64(g_h), F64(g_c), F64(gates), F64(act), F64(c_prev),
                          F64(v[5].buf), F64(keep), F64(v[7].buf), F64(v[8].buf), F64(dz), u,
                          batch);
    Py_END_ALLOW_THREADS
    give_back(v, 10);
    Py_RETURN_NONE;
}

/* gru_forward(gates, rec, rbias, hs, inner, h0, keep, units, batch, steps, k) */
PyObject *
recurrent_gru_forward(PyObject *self, PyObject *args)
{
    PyObject *o[7];
    Py_ssize_t u, batch, steps, k;
    if (!PyArg_ParseTuple(args, "OOOOOOOnnnn:gru_forward", &o[0], &o[1], &o[2], &o[3], &o[4],
                          &o[5], &o[6], &u, &batch, &steps, &k) ||
        check_shape(u, batch, steps, k) < 0)
        return NULL;
    Py_ssize_t n = u * batch;
    const Arg a[7] = {{o[0], steps * 3 * n, 'w'}, {o[1], 3 * n, 'r'}, {o[2], 3 * u, 'r'},
                      {o[3], steps * n, 'w'},     {o[4], steps * n, 'w'}, {o[5], n, 'r'},
                      {o[6], steps * batch, 'R'}};
    Py_buffer v[7];
    int single = take(a, v, 7);
    if (single < 0)
        return NULL;
    char *h_prev = k ? AT(v[3], (k - 1) * n, single) : v[5].buf;
    char *z = AT(v[0], k * 3 * n, single), *h = AT(v[3], k * n, single);
    char *inner = AT(v[4], k * n, single), *keep = AT(v[6], k * batch, single);
    Py_BEGIN_ALLOW_THREADS
    if (single)
        gru_forward_f32(F32(z), F32(v[1].buf), F32(v[2].buf), F32(h_prev), F32(h), F32(inner),
                        F32(keep), u, batch);
    else
        gru_forward_f64(F64(z), F64(v[1].buf), F64(v[2].buf), F64(h_prev), F64(h), F64(inner),
                        F64(keep), u, batch);
    Py_END_ALLOW_THREADS
    give_back(v, 7);
    Py_RETURN_NONE;
}

/* gru_backward(g, gates, hs, inner, h0, rec, keep, dh, dx, dhu, units, batch, steps, k) with
 * g (T, u, batch); rec already times the dropout mask. */
PyObject *
recurrent_gru_backward(PyObject *self, PyObject *args)
{
    PyObject *o[10];
    Py_ssize_t u, batch, steps, k;
    if (!PyArg_ParseTuple(args, "OOOOOOOOOOnnnn:gru_backward", &o[0], &o[1], &o[2], &o[3],
                          &o[4], &o[5], &o[6], &o[7], &o[8], &o[9], &u, &batch, &steps, &k) ||
        check_shape(u, batch, steps, k) < 0)
        return NULL;
    Py_ssize_t n = u * batch;
    const Arg a[10] = {{o[0], steps * n, 'r'},      {o[1], steps * 3 * n, 'r'},
                       {o[2], steps * n, 'r'},      {o[3], steps * n, 'r'},
                       {o[4], n, 'r'},              {o[5], n, 'r'},
                       {o[6], steps * batch, 'R'},  {o[7], n, 'w'},
                       {o[8], steps * 3 * n, 'w'},  {o[9], steps * 3 * n, 'w'}};
    Py_buffer v[10];
    int single = take(a, v, 10);
    if (single < 0)
        return NULL;
    char *g = AT(v[0], k * n, single), *gates = AT(v[1], k * 3 * n, single);
    char *h_prev = k ? AT(v[2], (k - 1) * n, single) : v[4].buf;
    char *inner = AT(v[3], k * n, single), *keep = AT(v[6], k * batch, single);
    char *dx = AT(v[8], k * 3 * n, single), *dhu = AT(v[9], k * 3 * n, single);
    Py_BEGIN_ALLOW_THREADS
    if (single)
        gru_backward_f32(F32(g), F32(gates), F32(h_prev), F32(inner), F32(v[5].buf),
                         F32(keep), F32(v[7].buf), F32(dx), F32(dhu), u, batch);
    else
        gru_backward_f64(F64(g), F64(gates), F64(h_prev), F64(inner), F64(v[5].buf),
                         F64(keep), F64(v[7].buf), F64(dx), F64(dhu), u, batch);
    Py_END_ALLOW_THREADS
    give_back(v, 10);
    Py_RETURN_NONE;
}

/* rnn_forward(xs, rec, hs, h0, keep, units, batch, steps, k): xs[k] becomes
 * tanh(xs[k] + rec); hs (None without a mask, when xs are the states) gets the kept state. */
PyObject *
recurrent_rnn_forward(PyObject *self, PyObject *args)
{
    PyObject *o[5];
    Py_ssize_t u, batch, steps, k;
    if (!PyArg_ParseTuple(args, "OOOOOnnnn:rnn_forward", &o[0], &o[1], &o[2], &o[3], &o[4], &u,
                          &batch, &steps, &k) ||
        check_shape(u, batch, steps, k) < 0)
        return NULL;
    if ((o[2] == Py_None) != (o[4] == Py_None) || o[2] == o[0]) {
        PyErr_SetString(PyExc_ValueError, "rnn_forward: hs (not xs) goes with keep");
        return NULL;
    }
    Py_ssize_t n = u * batch;
    const Arg a[5] = {{o[0], steps * n, 'w'}, {o[1], n, 'r'}, {o[2], steps * n, 'W'},
                      {o[3], n, 'r'},         {o[4], steps * batch, 'R'}};
    Py_buffer v[5];
    int single = take(a, v, 5);
    if (single < 0)
        return NULL;
    char *h_prev = k ? AT(v[2], (k - 1) * n, single) : v[3].buf;
    char *z = AT(v[0], k * n, single), *h = AT(v[2], k * n, single);
    char *keep = AT(v[4], k * batch, single);
    Py_BEGIN_ALLOW_THREADS
    if (single)
        rnn_forward_f32(F32(z), F32(v[1].buf), F32(h_prev), F32(h), F32(keep), u, batch);
    else
        rnn_forward_f64(F64(z), F64(v[1].buf), F64(h_prev), F64(h), F64(keep), u, batch);
    Py_END_ALLOW_THREADS
    give_back(v, 5);
    Py_RETURN_NONE;
}

/* rnn_backward(g, ys, rec, keep, dh, dz, units, batch, steps, k); rec already times the
 * dropout mask. */
PyObject *
recurrent_rnn_backward(PyObject *self, PyObject *args)
{
    PyObject *o[6];
    Py_ssize_t u, batch, steps, k;
    if (!PyArg_ParseTuple(args, "OOOOOOnnnn:rnn_backward", &o[0], &o[1], &o[2], &o[3], &o[4],
                          &o[5], &u, &batch, &steps, &k) ||
        check_shape(u, batch, steps, k) < 0)
        return NULL;
    Py_ssize_t n = u * batch;
    const Arg a[6] = {{o[0], steps * n, 'r'}, {o[1], steps * n, 'r'}, {o[2], n, 'r'},
                      {o[3], steps * batch, 'R'}, {o[4], n, 'w'}, {o[5], steps * n, 'w'}};
    Py_buffer v[6];
    int single = take(a, v, 6);
    if (single < 0)
        return NULL;
    char *g = AT(v[0], k * n, single), *ys = AT(v[1], k * n, single);
    char *keep = AT(v[3], k * batch, single), *dz = AT(v[5], k * n, single);
    Py_BEGIN_ALLOW_THREADS
    if (single)
        rnn_backward_f32(F32(g), F32(ys), F32(v[2].buf), F32(keep), F32(v[4].buf), F32(dz), u,
                         batch);
    else
        rnn_backward_f64(F64(g), F64(ys), F64(v[2].buf), F64(keep), F64(v[4].buf), F64(dz), u,
                         batch);
    Py_END_ALLOW_THREADS
    give_back(v, 6);
    Py_RETURN_NONE;
}
