/* The element-wise part of one time step of the fused recurrences, forward and backward
 * (the NumPy reference is dendrite/ops/recurrent/: lstm.py, gru.py, simple_rnn.py).
 *
 * The Python loop runs the step's one matrix product (NumPy, BLAS) and then one of these
 * kernels, which makes a single pass over the step's gate block instead of the ~15 NumPy
 * calls of the reference. Arrays are laid out as in the reference (ops/recurrent/_common.py):
 * a sequence is (rows, T, batch), a state sequence (units, T + 1, batch) with the initial
 * state in column 0, the step's product `rec` a contiguous (rows, batch); so step k is
 * column k, a (rows, batch) matrix with contiguous rows a row stride apart, and every inner
 * loop runs over the batch.
 *
 * Only the activations the layers use by default have a kernel: tanh, and sigmoid as
 * s(x) = (1 + tanh(x / 2)) / 2 with the halving already folded into the weights by the
 * caller (as the reference does). float64 uses libm's tanh (within an ulp or two of
 * NumPy's, so float64 gradient checks by finite differences still hold); float32 uses the
 * rational approximation below, vectorised, whose error is at most about 3e-7 absolute
 * (the NumPy path is the reference: tests/test_kernels_recurrent.py compares the two
 * within 2e-5 (float32) and 1e-11 (float64) of the largest magnitude, 1e-4 in float32
 * with saturated gates, whose derivatives 1 - y^2 cancel).
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

/* Row r of a sequence at step k: base + r * stride (the caller points base at column k). */

/* The backward loops in four variants, with or without a step mask and a per-step
 * gradient (g is NULL when only the last state has one: the caller starts dh with it). */
#define BACKWARD_VARIANTS(LOOP, T, g)                                                      \
    if (keep && g) {                                                                       \
        LOOP(T, 1, 1)                                                                      \
    } else if (g) {                                                                        \
        LOOP(T, 0, 1)                                                                      \
    } else if (keep) {                                                                     \
        LOOP(T, 1, 0)                                                                      \
    } else {                                                                               \
        LOOP(T, 0, 0)                                                                      \
    }

/* --- LSTM --------------------------------------------------------------------------- */

/* The mask goes in a second pass over the (cached) step: with it in the first loop GCC
 * vectorises nothing. */
#define LSTM_FORWARD_BODY(T, TANH)                                                         \
    for (Py_ssize_t j = 0; j < units; j++) {                                               \
        T *restrict zi = z + j * sz, *restrict zf = z + (units + j) * sz;                  \
        T *restrict zc = z + (2 * units + j) * sz, *restrict zo = z + (3 * units + j) * sz; \
        const T *restrict ri = rec + j * rs, *restrict rf = rec + (units + j) * rs;        \
        const T *restrict rc = rec + (2 * units + j) * rs;                                 \
        const T *restrict ro = rec + (3 * units + j) * rs;                                 \
        const T *restrict cp = c_prev + j * ss;                                            \
        T *restrict ho = h_out + j * ss, *restrict co = c_out + j * ss;                    \
        T *restrict ac = act + j * sz;                                                     \
        for (Py_ssize_t b = 0; b < batch; b++) {                                           \
            T ti, tf, tc, to, a;                                                           \
            TANH(zi[b] + ri[b], ti);                                                       \
            TANH(zf[b] + rf[b], tf);                                                       \
            TANH(zc[b] + rc[b], tc);                                                       \
            TANH(zo[b] + ro[b], to);                                                       \
            T i = ti * (T)0.5 + (T)0.5, f = tf * (T)0.5 + (T)0.5;                          \
            T o = to * (T)0.5 + (T)0.5;                                                    \
            zi[b] = i;                                                                     \
            zf[b] = f;                                                                     \
            zc[b] = tc;                                                                    \
            zo[b] = o;                                                                     \
            T c = f * cp[b];                                                               \
            c = c + i * tc;                                                                \
            TANH(c, a);                                                                    \
            ac[b] = a;                                                                     \
            co[b] = c;                                                                     \
            ho[b] = o * a;                                                                 \
        }                                                                                  \
        if (keep) {                                                                        \
            const T *restrict hp = h_prev + j * ss;                                        \
            for (Py_ssize_t b = 0; b < batch; b++) {                                       \
                T h = ho[b], c = co[b], hk = hp[b], ck = cp[b];                            \
                ho[b] = keep[b] != (T)0 ? h : hk;                                          \
                co[b] = keep[b] != (T)0 ? c : ck;                                          \
            }                                                                              \
        }                                                                                  \
    }

#define LSTM_FORWARD(NAME, T, TANH)                                                        \
    VECTOR_CLONES void NAME(T *restrict z, const T *restrict rec, const T *h_prev,         \
                            const T *c_prev, T *h_out, T *c_out, T *restrict act,          \
                            const T *restrict keep, Py_ssize_t units, Py_ssize_t batch,    \
                            Py_ssize_t rs, Py_ssize_t sz, Py_ssize_t ss)                   \
    {                                                                                      \
        LSTM_FORWARD_BODY(T, TANH)                                                         \
    }

LSTM_FORWARD(lstm_forward_f32, float, TANH_F32)
LSTM_FORWARD(lstm_forward_f64, double, TANH_F64)

#define LSTM_BACKWARD_LOOP(T, MASKED, GRADIENT)                                            \
    for (Py_ssize_t j = 0; j < units; j++) {                                               \
        const T *restrict gi = gates + j * sz, *restrict gf = gates + (units + j) * sz;    \
        const T *restrict gc = gates + (2 * units + j) * sz;                               \
        const T *restrict go = gates + (3 * units + j) * sz;                               \
        T *restrict di = dz + j * sz, *restrict df = dz + (units + j) * sz;                \
        T *restrict dcc = dz + (2 * units + j) * sz, *restrict dout = dz + (3 * units + j) * sz; \
        const T *restrict gh = GRADIENT ? g_h + j * sz : NULL;                             \
        const T *restrict gcell = GRADIENT ? g_c + j * sz : NULL;                          \
        const T *restrict ac = act + j * sz, *restrict cp = c_prev + j * ss;               \
        const T *restrict rr = rec + j * rs;                                               \
        T *restrict dhr = dh + j * rs, *restrict dcr = dc + j * rs;                        \
        for (Py_ssize_t b = 0; b < batch; b++) {                                           \
            T dh_t = rr[b] + dhr[b];                                                       \
            if (GRADIENT)                                                                  \
                dh_t = dh_t + gh[b];                                                       \
            T dc_t = GRADIENT ? dcr[b] + gcell[b] : dcr[b];                                \
            T i = gi[b], f = gf[b], cc = gc[b], o = go[b], a = ac[b];                      \
            T dc_n = dc_t + dh_t * (((T)1 - a * a) * o);                                   \
            T d_i = dc_n * (((T)1 - i) * i * cc);                                          \
            T d_f = dc_n * (((T)1 - f) * f * cp[b]);                                       \
            T d_c = dc_n * (((T)1 - cc * cc) * i);                                         \
            T d_o = dh_t * (((T)1 - o) * o * a);                                           \
            int kept = MASKED ? keep[b] != (T)0 : 1;                                       \
            di[b] = kept ? d_i : (T)0;                                                     \
            df[b] = kept ? d_f : (T)0;                                                     \
            dcc[b] = kept ? d_c : (T)0;                                                    \
            dout[b] = kept ? d_o : (T)0;                                                   \
            dcr[b] = kept ? dc_n * f : dc_t;                                               \
            dhr[b] = kept ? (T)0 : dh_t;                                                   \
        }                                                                                  \
    }

#define LSTM_BACKWARD(NAME, T)                                                             \
    VECTOR_CLONES void NAME(const T *restrict g_h, const T *restrict g_c,                  \
                            const T *restrict gates, const T *restrict act,                \
                            const T *restrict c_prev, const T *restrict rec,               \
                            const T *restrict keep, T *restrict dh, T *restrict dc,        \
                            T *restrict dz, Py_ssize_t units, Py_ssize_t batch,            \
                            Py_ssize_t rs, Py_ssize_t sz, Py_ssize_t ss)                   \
    {                                                                                      \
        BACKWARD_VARIANTS(LSTM_BACKWARD_LOOP, T, g_h)                                      \
    }

LSTM_BACKWARD(lstm_backward_f32, float)
LSTM_BACKWARD(lstm_backward_f64, double)

/* --- GRU, reset_after ------------------------------------------------------------------ */

#define GRU_FORWARD_LOOP(T, TANH, MASKED)                                                  \
    for (Py_ssize_t j = 0; j < units; j++) {                                               \
        T *restrict zz = z + j * sz, *restrict zr = z + (units + j) * sz;                  \
        T *restrict zh = z + (2 * units + j) * sz;                                         \
        const T *restrict rz = rec + j * batch, *restrict rr = rec + (units + j) * batch;  \
        const T *restrict rh = rec + (2 * units + j) * batch;                              \
        const T *restrict hp = h_prev + j * ss;                                            \
        T *restrict ho = h_out + j * ss, *restrict in = inner + j * sz;                    \
        T bz = rbias[j], br = rbias[units + j], bh = rbias[2 * units + j];                 \
        for (Py_ssize_t b = 0; b < batch; b++) {                                           \
            T tz, tr, hh;                                                                  \
            TANH(zz[b] + (rz[b] + bz), tz);                                                \
            TANH(zr[b] + (rr[b] + br), tr);                                                \
            T gz = tz * (T)0.5 + (T)0.5, gr = tr * (T)0.5 + (T)0.5;                        \
            T inn = rh[b] + bh;                                                            \
            TANH(zh[b] + gr * inn, hh);                                                    \
            zz[b] = gz;                                                                    \
            zr[b] = gr;                                                                    \
            zh[b] = hh;                                                                    \
            in[b] = inn;                                                                   \
            T hk = hp[b];                                                                  \
            T h = (hk - hh) * gz + hh;                                                     \
            ho[b] = (MASKED ? keep[b] != (T)0 : 1) ? h : hk;                               \
        }                                                                                  \
    }

#define GRU_FORWARD(NAME, T, TANH)                                                         \
    VECTOR_CLONES static void NAME(                                                        \
        T *restrict z, const T *restrict rec, const T *restrict rbias, const T *h_prev,    \
        T *h_out, T *restrict inner, const T *restrict keep, Py_ssize_t units,             \
        Py_ssize_t batch, Py_ssize_t sz, Py_ssize_t ss)                                    \
    {                                                                                      \
        if (keep) {                                                                        \
            GRU_FORWARD_LOOP(T, TANH, 1)                                                   \
        } else {                                                                           \
            GRU_FORWARD_LOOP(T, TANH, 0)                                                   \
        }                                                                                  \
    }

GRU_FORWARD(gru_forward_f32, float, TANH_F32)
GRU_FORWARD(gru_forward_f64, double, TANH_F64)

#define GRU_BACKWARD_LOOP(T, MASKED, GRADIENT)                                                       \
    for (Py_ssize_t j = 0; j < units; j++) {                                               \
        const T *restrict gz = gates + j * sz, *restrict gr = gates + (units + j) * sz;    \
        const T *restrict gh = gates + (2 * units + j) * sz;                               \
        T *restrict xz = dx + j * sz, *restrict xr = dx + (units + j) * sz;                \
        T *restrict xh = dx + (2 * units + j) * sz;                                        \
        T *restrict uz = dhu + j * sz, *restrict ur = dhu + (units + j) * sz;              \
        T *restrict uh = dhu + (2 * units + j) * sz;                                       \
        const T *restrict gg = GRADIENT ? g + j * sz : NULL;                               \
        const T *restrict in = inner + j * sz;                                             \
        const T *restrict hp = h_prev + j * ss, *restrict rr = rec + j * batch;            \
        T *restrict dhr = dh + j * batch;                                                  \
        for (Py_ssize_t b = 0; b < batch; b++) {                                           \
            T dh_t = rr[b] + dhr[b];                                                       \
            if (GRADIENT)                                                                  \
                dh_t = dh_t + gg[b];                                                       \
            T zg = gz[b], r = gr[b], hh = gh[b];                                           \
            T d_z = dh_t * ((hp[b] - hh) * (((T)1 - zg) * zg));                            \
            T d_hh = dh_t * (((T)1 - hh * hh) * ((T)1 - zg));                              \
            T d_r = d_hh * ((((T)1 - r) * r) * in[b]);                                     \
            int kept = MASKED ? keep[b] != (T)0 : 1;                                       \
            d_z = kept ? d_z : (T)0;                                                       \
            d_hh = kept ? d_hh : (T)0;                                                     \
            d_r = kept ? d_r : (T)0;                                                       \
            xz[b] = d_z;                                                                   \
            xr[b] = d_r;                                                                   \
            xh[b] = d_hh;                                                                  \
            uz[b] = d_z;                                                                   \
            ur[b] = d_r;                                                                   \
            uh[b] = d_hh * r;                                                              \
            dhr[b] = kept ? dh_t * zg : dh_t;                                              \
        }                                                                                  \
    }

#define GRU_BACKWARD(NAME, T)                                                              \
    VECTOR_CLONES static void NAME(                                                        \
        const T *restrict g, const T *restrict gates, const T *restrict h_prev,            \
        const T *restrict inner, const T *restrict rec, const T *restrict keep,            \
        T *restrict dh, T *restrict dx, T *restrict dhu, Py_ssize_t units,                 \
        Py_ssize_t batch, Py_ssize_t sz, Py_ssize_t ss)                                    \
    {                                                                                      \
        BACKWARD_VARIANTS(GRU_BACKWARD_LOOP, T, g)                                       \
    }

GRU_BACKWARD(gru_backward_f32, float)
GRU_BACKWARD(gru_backward_f64, double)

/* --- SimpleRNN ------------------------------------------------------------------------ */

#define RNN_FORWARD_LOOP(T, TANH, MASKED)                                                  \
    for (Py_ssize_t j = 0; j < units; j++) {                                               \
        T *restrict zr = z + j * sz, *restrict ho = h_out + j * ss;                        \
        const T *restrict rr = rec + j * batch, *restrict hp = h_prev + j * ss;            \
        for (Py_ssize_t b = 0; b < batch; b++) {                                           \
            T h, hk = MASKED ? hp[b] : (T)0;                                               \
            TANH(zr[b] + rr[b], h);                                                        \
            zr[b] = h;                                                                     \
            ho[b] = (MASKED ? keep[b] != (T)0 : 1) ? h : hk;                               \
        }                                                                                  \
    }

#define RNN_FORWARD(NAME, T, TANH)                                                         \
    VECTOR_CLONES static void NAME(T *restrict z, const T *restrict rec, const T *h_prev,  \
                                   T *h_out, const T *restrict keep, Py_ssize_t units,     \
                                   Py_ssize_t batch, Py_ssize_t sz, Py_ssize_t ss)         \
    {                                                                                      \
        if (keep) {                                                                        \
            RNN_FORWARD_LOOP(T, TANH, 1)                                                   \
        } else {                                                                           \
            RNN_FORWARD_LOOP(T, TANH, 0)                                                   \
        }                                                                                  \
    }

RNN_FORWARD(rnn_forward_f32, float, TANH_F32)
RNN_FORWARD(rnn_forward_f64, double, TANH_F64)

#define RNN_BACKWARD_LOOP(T, MASKED, GRADIENT)                                                       \
    for (Py_ssize_t j = 0; j < units; j++) {                                               \
        const T *restrict gg = GRADIENT ? g + j * sz : NULL;                               \
        const T *restrict y = ys + j * sz;                                                 \
        const T *restrict rr = rec + j * batch;                                            \
        T *restrict dzr = dz + j * sz, *restrict dhr = dh + j * batch;                     \
        for (Py_ssize_t b = 0; b < batch; b++) {                                           \
            T dh_t = rr[b] + dhr[b];                                                       \
            if (GRADIENT)                                                                  \
                dh_t = dh_t + gg[b];                                                       \
            int kept = MASKED ? keep[b] != (T)0 : 1;                                       \
            dzr[b] = kept ? ((T)1 - y[b] * y[b]) * dh_t : (T)0;                            \
            dhr[b] = kept ? (T)0 : dh_t;                                                   \
        }                                                                                  \
    }

#define RNN_BACKWARD(NAME, T)                                                              \
    VECTOR_CLONES static void NAME(const T *restrict g, const T *restrict ys,              \
                                   const T *restrict rec, const T *restrict keep,          \
                                   T *restrict dh, T *restrict dz, Py_ssize_t units,       \
                                   Py_ssize_t batch, Py_ssize_t sz)                        \
    {                                                                                      \
        BACKWARD_VARIANTS(RNN_BACKWARD_LOOP, T, g)                                       \
    }

RNN_BACKWARD(rnn_backward_f32, float)
RNN_BACKWARD(rnn_backward_f64, double)

/* --- the Python side ------------------------------------------------------------------- */

/* Arguments are taken by buffers.c's kernel_take: a float array read ('r') or written
 * ('w'), or either one or None ('R', 'W'). The step masks `keep` are float arrays of 0 and
 * 1 (T, batch), so that the selects vectorise with the rest. */

/* units, steps >= 1, batch >= 0 (an empty batch: nothing to do), 0 <= step < steps, and
 * (steps + 1) * 4 units * batch fits. */
static int
check_shape(Py_ssize_t units, Py_ssize_t batch, Py_ssize_t steps, Py_ssize_t step)
{
    if (units < 1 || batch < 0 || steps < 1 || step < 0 || step >= steps ||
        (batch > 0 && units > PY_SSIZE_T_MAX / 8 / batch) ||
        4 * units * batch > PY_SSIZE_T_MAX / 8 / (steps + 1)) {
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

/* lstm_forward(gates, rec, hs, cs, act, keep, units, batch, steps, k): gates (4u, T, b),
 * rec (4u, b), hs and cs (u, T + 1, b), act (u, T, b), keep (T, b) or None. */
PyObject *
recurrent_lstm_forward(PyObject *self, PyObject *args)
{
    PyObject *o[6];
    Py_ssize_t u, batch, steps, k;
    if (!PyArg_ParseTuple(args, "OOOOOOnnnn:lstm_forward", &o[0], &o[1], &o[2], &o[3], &o[4],
                          &o[5], &u, &batch, &steps, &k) ||
        check_shape(u, batch, steps, k) < 0)
        return NULL;
    Py_ssize_t sz = steps * batch, ss = (steps + 1) * batch;
    const KernelArg a[6] = {{o[0], 4 * u * sz, 'w'}, {o[1], 4 * u * batch, 'r'}, {o[2], u * ss, 'w'},
                      {o[3], u * ss, 'w'},     {o[4], u * sz, 'w'},        {o[5], sz, 'R'}};
    Py_buffer v[6];
    int single = kernel_take(a, v, 6);
    if (single < 0)
        return NULL;
    Py_ssize_t at = k * batch, next = (k + 1) * batch;
    char *z = AT(v[0], at, single), *hp = AT(v[2], at, single), *h = AT(v[2], next, single);
    char *cp = AT(v[3], at, single), *c = AT(v[3], next, single);
    char *act = AT(v[4], at, single), *keep = AT(v[5], at, single);
    Py_BEGIN_ALLOW_THREADS
    if (single)
        lstm_forward_f32(F32(z), F32(v[1].buf), F32(hp), F32(cp), F32(h), F32(c), F32(act),
                         F32(keep), u, batch, batch, sz, ss);
    else
        lstm_forward_f64(F64(z), F64(v[1].buf), F64(hp), F64(cp), F64(h), F64(c), F64(act),
                         F64(keep), u, batch, batch, sz, ss);
    Py_END_ALLOW_THREADS
    kernel_give_back(v, 6);
    Py_RETURN_NONE;
}

/* lstm_backward(g, gates, cs, act, rec, keep, dh, dc, dz, units, batch, steps, k): g
 * (2, u, T, b), the h then the c gradients, or None when only the last states have one
 * (the caller starts dh and dc with it); rec (u, b) already times the dropout mask;
 * dh, dc (u, b); dz like gates. */
PyObject *
recurrent_lstm_backward(PyObject *self, PyObject *args)
{
    PyObject *o[9];
    Py_ssize_t u, batch, steps, k;
    if (!PyArg_ParseTuple(args, "OOOOOOOOOnnnn:lstm_backward", &o[0], &o[1], &o[2], &o[3],
                          &o[4], &o[5], &o[6], &o[7], &o[8], &u, &batch, &steps, &k) ||
        check_shape(u, batch, steps, k) < 0)
        return NULL;
    Py_ssize_t sz = steps * batch, ss = (steps + 1) * batch, n = u * batch;
    const KernelArg a[9] = {{o[0], 2 * u * sz, 'R'}, {o[1], 4 * u * sz, 'r'}, {o[2], u * ss, 'r'},
                      {o[3], u * sz, 'r'},     {o[4], n, 'r'},          {o[5], sz, 'R'},
                      {o[6], n, 'w'},          {o[7], n, 'w'},          {o[8], 4 * u * sz, 'w'}};
    Py_buffer v[9];
    int single = kernel_take(a, v, 9);
    if (single < 0)
        return NULL;
    Py_ssize_t at = k * batch;
    char *g_h = AT(v[0], at, single), *g_c = AT(v[0], u * sz + at, single);
    char *gates = AT(v[1], at, single), *cp = AT(v[2], at, single);
    char *act = AT(v[3], at, single), *keep = AT(v[5], at, single), *dz = AT(v[8], at, single);
    Py_BEGIN_ALLOW_THREADS
    if (single)
        lstm_backward_f32(F32(g_h), F32(g_c), F32(gates), F32(act), F32(cp), F32(v[4].buf),
                          F32(keep), F32(v[6].buf), F32(v[7].buf), F32(dz), u, batch, batch, sz,
                          ss);
    else
        lstm_backward_f64(F64(g_h), F64(g_c), F64(gates), F64(act), F64(cp), F64(v[4].buf),
                          F64(keep), F64(v[6].buf), F64(v[7].buf), F64(dz), u, batch, batch, sz,
                          ss);
    Py_END_ALLOW_THREADS
    kernel_give_back(v, 9);
    Py_RETURN_NONE;
}

/* gru_forward(gates, rec, rbias, hs, inner, keep, units, batch, steps, k): gates (3u, T, b),
 * rec (3u, b), rbias (3u,), hs (u, T + 1, b), inner (u, T, b), keep (T, b) or None. */
PyObject *
recurrent_gru_forward(PyObject *self, PyObject *args)
{
    PyObject *o[6];
    Py_ssize_t u, batch, steps, k;
    if (!PyArg_ParseTuple(args, "OOOOOOnnnn:gru_forward", &o[0], &o[1], &o[2], &o[3], &o[4],
                          &o[5], &u, &batch, &steps, &k) ||
        check_shape(u, batch, steps, k) < 0)
        return NULL;
    Py_ssize_t sz = steps * batch, ss = (steps + 1) * batch;
    const KernelArg a[6] = {{o[0], 3 * u * sz, 'w'}, {o[1], 3 * u * batch, 'r'}, {o[2], 3 * u, 'r'},
                      {o[3], u * ss, 'w'},     {o[4], u * sz, 'w'},        {o[5], sz, 'R'}};
    Py_buffer v[6];
    int single = kernel_take(a, v, 6);
    if (single < 0)
        return NULL;
    Py_ssize_t at = k * batch;
    char *z = AT(v[0], at, single), *hp = AT(v[3], at, single);
    char *h = AT(v[3], at + batch, single), *inner = AT(v[4], at, single);
    char *keep = AT(v[5], at, single);
    Py_BEGIN_ALLOW_THREADS
    if (single)
        gru_forward_f32(F32(z), F32(v[1].buf), F32(v[2].buf), F32(hp), F32(h), F32(inner),
                        F32(keep), u, batch, sz, ss);
    else
        gru_forward_f64(F64(z), F64(v[1].buf), F64(v[2].buf), F64(hp), F64(h), F64(inner),
                        F64(keep), u, batch, sz, ss);
    Py_END_ALLOW_THREADS
    kernel_give_back(v, 6);
    Py_RETURN_NONE;
}

/* gru_backward(g, gates, hs, inner, rec, keep, dh, dx, dhu, units, batch, steps, k): g
 * (u, T, b), or None when only the last state has a gradient; rec (u, b) already times the dropout mask; dh (u, b); dx, dhu like gates. */
PyObject *
recurrent_gru_backward(PyObject *self, PyObject *args)
{
    PyObject *o[9];
    Py_ssize_t u, batch, steps, k;
    if (!PyArg_ParseTuple(args, "OOOOOOOOOnnnn:gru_backward", &o[0], &o[1], &o[2], &o[3],
                          &o[4], &o[5], &o[6], &o[7], &o[8], &u, &batch, &steps, &k) ||
        check_shape(u, batch, steps, k) < 0)
        return NULL;
    Py_ssize_t sz = steps * batch, ss = (steps + 1) * batch, n = u * batch;
    const KernelArg a[9] = {{o[0], u * sz, 'R'}, {o[1], 3 * u * sz, 'r'}, {o[2], u * ss, 'r'},
                      {o[3], u * sz, 'r'}, {o[4], n, 'r'},          {o[5], sz, 'R'},
                      {o[6], n, 'w'},      {o[7], 3 * u * sz, 'w'}, {o[8], 3 * u * sz, 'w'}};
    Py_buffer v[9];
    int single = kernel_take(a, v, 9);
    if (single < 0)
        return NULL;
    Py_ssize_t at = k * batch;
    char *g = AT(v[0], at, single), *gates = AT(v[1], at, single), *hp = AT(v[2], at, single);
    char *inner = AT(v[3], at, single), *keep = AT(v[5], at, single);
    char *dx = AT(v[7], at, single), *dhu = AT(v[8], at, single);
    Py_BEGIN_ALLOW_THREADS
    if (single)
        gru_backward_f32(F32(g), F32(gates), F32(hp), F32(inner), F32(v[4].buf), F32(keep),
                         F32(v[6].buf), F32(dx), F32(dhu), u, batch, sz, ss);
    else
        gru_backward_f64(F64(g), F64(gates), F64(hp), F64(inner), F64(v[4].buf), F64(keep),
                         F64(v[6].buf), F64(dx), F64(dhu), u, batch, sz, ss);
    Py_END_ALLOW_THREADS
    kernel_give_back(v, 9);
    Py_RETURN_NONE;
}

/* rnn_forward(xs, rec, hs, keep, units, batch, steps, k): xs (u, T, b) becomes
 * tanh(xs + rec) at step k, hs (u, T + 1, b) gets the (kept) state. */
PyObject *
recurrent_rnn_forward(PyObject *self, PyObject *args)
{
    PyObject *o[4];
    Py_ssize_t u, batch, steps, k;
    if (!PyArg_ParseTuple(args, "OOOOnnnn:rnn_forward", &o[0], &o[1], &o[2], &o[3], &u, &batch,
                          &steps, &k) ||
        check_shape(u, batch, steps, k) < 0)
        return NULL;
    Py_ssize_t sz = steps * batch, ss = (steps + 1) * batch;
    const KernelArg a[4] = {{o[0], u * sz, 'w'}, {o[1], u * batch, 'r'}, {o[2], u * ss, 'w'},
                      {o[3], sz, 'R'}};
    Py_buffer v[4];
    int single = kernel_take(a, v, 4);
    if (single < 0)
        return NULL;
    Py_ssize_t at = k * batch;
    char *z = AT(v[0], at, single), *hp = AT(v[2], at, single);
    char *h = AT(v[2], at + batch, single), *keep = AT(v[3], at, single);
    Py_BEGIN_ALLOW_THREADS
    if (single)
        rnn_forward_f32(F32(z), F32(v[1].buf), F32(hp), F32(h), F32(keep), u, batch, sz, ss);
    else
        rnn_forward_f64(F64(z), F64(v[1].buf), F64(hp), F64(h), F64(keep), u, batch, sz, ss);
    Py_END_ALLOW_THREADS
    kernel_give_back(v, 4);
    Py_RETURN_NONE;
}

/* rnn_backward(g, ys, rec, keep, dh, dz, units, batch, steps, k): g (or None, as for
 * the GRU), ys (the activated steps), dz (u, T, b); rec (u, b) already times the dropout mask; dh (u, b). */
PyObject *
recurrent_rnn_backward(PyObject *self, PyObject *args)
{
    PyObject *o[6];
    Py_ssize_t u, batch, steps, k;
    if (!PyArg_ParseTuple(args, "OOOOOOnnnn:rnn_backward", &o[0], &o[1], &o[2], &o[3], &o[4],
                          &o[5], &u, &batch, &steps, &k) ||
        check_shape(u, batch, steps, k) < 0)
        return NULL;
    Py_ssize_t sz = steps * batch, n = u * batch;
    const KernelArg a[6] = {{o[0], u * sz, 'R'}, {o[1], u * sz, 'r'}, {o[2], n, 'r'},
                      {o[3], sz, 'R'},     {o[4], n, 'w'},      {o[5], u * sz, 'w'}};
    Py_buffer v[6];
    int single = kernel_take(a, v, 6);
    if (single < 0)
        return NULL;
    Py_ssize_t at = k * batch;
    char *g = AT(v[0], at, single), *ys = AT(v[1], at, single);
    char *keep = AT(v[3], at, single), *dz = AT(v[5], at, single);
    Py_BEGIN_ALLOW_THREADS
    if (single)
        rnn_backward_f32(F32(g), F32(ys), F32(v[2].buf), F32(keep), F32(v[4].buf), F32(dz), u,
                         batch, sz);
    else
        rnn_backward_f64(F64(g), F64(ys), F64(v[2].buf), F64(keep), F64(v[4].buf), F64(dz), u,
                         batch, sz);
    Py_END_ALLOW_THREADS
    kernel_give_back(v, 6);
    Py_RETURN_NONE;
}
