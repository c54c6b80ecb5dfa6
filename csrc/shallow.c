/* A convolution with a shallow window and its max pooling, computed directly (the NumPy
 * reference is ops/conv_pool.py: im2col, one BLAS product, pool_max and pool_scatter).
 * With xp the input x (N, H, W, C) zero-padded (read in place: the padding is never built,
 * see conv_tap in kernels.h), K_2 the kernel as (kh kw C, F) (row (i kw + j) C + c), pooling
 * windows of ph x pw places d = di pw + dj tiling the convolution's output, and
 * outputs (N, PH, PW, F):
 *
 *   z_d[f]  = sum_{i, j, c} xp[n, (ph p + di) sh + i dh, (pw q + dj) sw + j dw, c] K_2[(i kw + j) C + c, f]
 *   out[f]  = relu?(max_d z_d[f] + b[f]),  winner[f] = the first d holding the maximum
 *   gm[f]   = g[n, p, q, f] (times [out > 0] with the ReLU)
 *   dL/dK_2[(i kw + j) C + c, f] = sum_{n, p, q, d} xp[...] gm[f] [winner = d];  dL/db[f] = sum gm[f]
 *
 * Such a layer (an image model's first: one to three channels, 3x3 to 5x5) has a window of
 * a few dozen values. BLAS multiplies the (N OH OW, kh kw C) window matrix by K_2 far below
 * its speed at that depth, and the convolution's output, ph pw times the pooled one, goes
 * to memory and back twice (the maximum, then the gradient's scatter). Here each pooled
 * output's ph pw candidates are summed in a few cache lines, in the order of the sum
 * above (taps, then channels), vectorised over the filters. That order differs from BLAS'
 * (which has none fixed): the tests compare with the NumPy path within float rounding.
 * The pooling itself keeps pool_max's rules (pooling.c): a later place takes over only
 * where strictly greater, NaN wins and stays.
 *
 * Samples are shared with the helper thread; dL/dK_2 and dL/db are summed per block of
 * samples, then block by block in order (blocks.c): the result does not depend on the
 * threads.
 */
#include "kernels.h"

#include <string.h>

/* The most values of all a pooling window's windows, and the most candidates of one
 * pooled row's outputs kept at once (all places' of at least one output); the Python side
 * sends at most SHALLOW_VALUES and SHALLOW_CANDIDATES. A pass's scratch arrays, sized by
 * these, live on its stack: 24 KB in float64, well inside even a 128 KB thread stack. */
#define MAX_VALUES 1024
#define MAX_CANDIDATES 2048
/* Places of a pooling window summed together: their candidates share each load of the
 * kernel's row. */
#define PLACE_BLOCK 4

/* The job: a ConvJob whose (oh, ow) are the pooled sizes, first, so that the shared
 * sample passes (kernels.h) can hand it over as their ConvJob. */
typedef struct {
    ConvJob conv;
    Py_ssize_t ph, pw;
    uint8_t *winner;      /* (n, oh, ow, m): written by forward, read by backward */
    const char *relu_out; /* backward: the pooled ReLU output (n, oh, ow, m), or NULL */
    int relu;             /* forward */
    /* Where place d's window value r (K_2's row order: i, j, c) is read, as base[table[d
     * width + r]]: `inner` from the first value of the pooling window's patch of the
     * input, for pooled outputs whose windows lie inside it; `gathered` from xw, where the
     * windows that touch the padding are first copied (zeros for the padding). Both
     * depend only on the geometry: set once a call (shallow_take). */
    Py_ssize_t inner[MAX_VALUES], gathered[MAX_VALUES];
} ShallowJob;

/* base and table (see ShallowJob) for pooled output (p, q). */
#define SHALLOW_WINDOWS(T)                                                                 \
    const T *base;                                                                         \
    const Py_ssize_t *table;                                                               \
    {                                                                                      \
        const Py_ssize_t r0 = p * s->ph * j->sh - j->pt, c0 = q * s->pw * j->sw - j->pl;   \
        if (r0 >= 0 && c0 >= 0 && r0 + (s->ph - 1) * j->sh + (j->kh - 1) * j->dh < j->h && \
            c0 + (s->pw - 1) * j->sw + (j->kw - 1) * j->dw < j->w) {                       \
            base = x + (r0 * j->w + c0) * j->c;                                            \
            table = s->inner;                                                              \
        } else {                                                                           \
            for (Py_ssize_t d = 0; d < places; d++)                                        \
                for (Py_ssize_t i = 0; i < j->kh; i++)                                     \
                    for (Py_ssize_t jj = 0; jj < j->kw; jj++) {                            \
                        Py_ssize_t at = conv_tap(j, p * s->ph + d / s->pw,                 \
                                                 q * s->pw + d % s->pw, i, jj);            \
                        T *row = xw + d * width + (i * j->kw + jj) * j->c;                 \
                        for (Py_ssize_t c = 0; c < j->c; c++)                              \
                            row[c] = at < 0 ? (T)0 : x[at + c];                            \
                    }                                                                      \
            base = xw;                                                                     \
            table = s->gathered;                                                           \
        }                                                                                  \
    }

/* Runs CHUNK(d0, NP) over the places PLACE_BLOCK at a time, the last NP = 1 to 3 as well:
 * NP a constant, so that a chunk's vectors stay in registers. */
#define SHALLOW_PLACE_CHUNKS(CHUNK)                                                        \
    {                                                                                      \
        Py_ssize_t d0 = 0;                                                                 \
        for (; d0 + PLACE_BLOCK <= places; d0 += PLACE_BLOCK)                              \
            CHUNK(d0, PLACE_BLOCK)                                                         \
        switch (places - d0) {                                                             \
        case 3:                                                                            \
            CHUNK(d0, 3)                                                                   \
            break;                                                                         \
        case 2:                                                                            \
            CHUNK(d0, 2)                                                                   \
            break;                                                                         \
        case 1:                                                                            \
            CHUNK(d0, 1)                                                                   \
            break;                                                                         \
        }                                                                                  \
    }

/* Loops over a vector's lanes are kept rolled (`GCC unroll 1`): unrolled first, GCC
 * leaves them scalar. */
#define ROLLED _Pragma("GCC unroll 1")

/* The candidates z_d of places [d0, d0 + NP), one vector of filters from f0 on (they
 * share each load of the kernel's row), into zq: place d's block starts at zq + d block. */
#define SHALLOW_CANDIDATES(d0, NP)                                                         \
    {                                                                                      \
        vector_t acc[NP] = {{0}};                                                          \
        const Py_ssize_t *tab = table + (d0) * width;                                      \
        for (Py_ssize_t r = 0; r < width; r++) {                                           \
            const vector_t kv = *(const vector_t *)(k2 + r * f_all + f0);                  \
            for (int dd = 0; dd < (NP); dd++)                                              \
                acc[dd] += base[tab[dd * width + r]] * kv;                                 \
        }                                                                                  \
        for (int dd = 0; dd < (NP); dd++)                                                  \
            *(vector_t *)(zq + ((d0) + dd) * block + f0) = acc[dd];                        \
    }

/* The candidates of nq pooled outputs in a row, (places, nq F) from zc on, into their
 * outputs o and winners w (nq F each), by pool_max's rules and loops (POOL_MAX_ROWS in
 * kernels.h): a later place takes over only where strictly greater, NaN wins and stays;
 * then bias and ReLU (NaN stays, -0 becomes +0). */
#define SHALLOW_POOL(T)                                                                    \
    POOL_MAX_ROWS(T, o, w, zc, block, places, nq * f_all, bias, f_all, s->relu)

/* One sample: row by row of pooled outputs, qb of them at a time (as many as keep their
 * candidates within MAX_CANDIDATES values), candidates first, then their pooling. */
#define SHALLOW_FORWARD(T, V)                                                              \
    typedef V vector_t; /* for the chunk macros, which T and V do not reach */             \
    const ShallowJob *s = (const ShallowJob *)j;                                           \
    const Py_ssize_t width = j->kh * j->kw * j->c, f_all = j->m, places = s->ph * s->pw;   \
    const Py_ssize_t lanes = (Py_ssize_t)(sizeof(V) / sizeof(T));                          \
    const Py_ssize_t full = f_all - f_all % lanes;                                         \
    const Py_ssize_t most = MAX_CANDIDATES / (places * f_all);                             \
    const Py_ssize_t qb = most < j->ow ? most : j->ow;                                     \
    const Py_ssize_t block = qb * f_all; /* a place's candidates of qb outputs */          \
    const T *x = (const T *)j->xp + (size_t)n * j->h * j->w * j->c;                        \
    const T *k2 = (const T *)j->k, *bias = (const T *)j->bias;                             \
    T xw[MAX_VALUES], zc[MAX_CANDIDATES];                                                  \
    for (Py_ssize_t p = 0; p < j->oh; p++)                                                 \
        for (Py_ssize_t q0 = 0; q0 < j->ow; q0 += qb) {                                    \
            const Py_ssize_t nq = j->ow - q0 < qb ? j->ow - q0 : qb;                       \
            for (Py_ssize_t q = q0; q < q0 + nq; q++) {                                    \
                T *zq = zc + (q - q0) * f_all;                                             \
                SHALLOW_WINDOWS(T)                                                         \
                for (Py_ssize_t f0 = 0; f0 < full; f0 += lanes)                            \
                    SHALLOW_PLACE_CHUNKS(SHALLOW_CANDIDATES)                               \
                for (Py_ssize_t f = full; f < f_all; f++) /* the last, scalar */           \
                    for (Py_ssize_t d = 0; d < places; d++) {                              \
                        T sum = 0;                                                         \
                        for (Py_ssize_t r = 0; r < width; r++)                             \
                            sum += base[table[d * width + r]] * k2[r * f_all + f];         \
                        zq[d * block + f] = sum;                                           \
                    }                                                                      \
            }                                                                              \
            const size_t at = ((size_t)n * j->oh * j->ow + p * j->ow + q0) * f_all;        \
            T *restrict o = (T *)j->out + at;                                              \
            uint8_t *restrict w = s->winner + at;                                          \
            SHALLOW_POOL(T)                                                                \
        }

/* Places [d0, d0 + NP)'s terms of dL/dK_2 for one vector of filters from f0 on: each
 * kernel row gets the places' terms summed first. */
#define SHALLOW_KERNEL_TERMS(d0, NP)                                                       \
    {                                                                                      \
        vector_t zs[NP];                                                                   \
        for (int dd = 0; dd < (NP); dd++) {                                                \
            const int32_t place = (int32_t)((d0) + dd);                                    \
            scalar_t lane[sizeof(vector_t) / sizeof(scalar_t)];                            \
            ROLLED                                                                         \
            for (Py_ssize_t t = 0; t < lanes; t++)                                         \
                lane[t] = gm[t] * (scalar_t)(wins[t] == place);                            \
            zs[dd] = *(const vector_t *)lane;                                              \
        }                                                                                  \
        const Py_ssize_t *tab = table + (d0) * width;                                      \
        for (Py_ssize_t r = 0; r < width; r++) {                                           \
            vector_t sum = base[tab[r]] * zs[0];                                           \
            for (int dd = 1; dd < (NP); dd++)                                              \
                sum += base[tab[dd * width + r]] * zs[dd];                                 \
            *(vector_t *)(gk + r * f_all + f0) += sum;                                     \
        }                                                                                  \
    }

/* The partial dL/dK_2 (kh kw C, F) and dL/db (F) of samples [first, last). With gm the
 * gradient masked by the ReLU's output (when there is one), place d's gradient is
 * gm [winner == d], products as in pool_scatter (so a NaN or an infinity spreads as it
 * does there). */
#define SHALLOW_KERNEL_GRAD(T, V)                                                          \
    typedef T scalar_t; /* for the chunk macros, which T and V do not reach */             \
    typedef V vector_t;                                                                    \
    const ShallowJob *s = (const ShallowJob *)j;                                           \
    const Py_ssize_t width = j->kh * j->kw * j->c, f_all = j->m, places = s->ph * s->pw;   \
    const Py_ssize_t lanes = (Py_ssize_t)(sizeof(V) / sizeof(T));                          \
    const Py_ssize_t full = f_all - f_all % lanes;                                         \
    memset(part, 0, sizeof(T) * (size_t)(f_all * (width + 1)));                            \
    T *restrict gk = part, *restrict gb = part + f_all * width;                            \
    T xw[MAX_VALUES];                                                                      \
    for (Py_ssize_t n = first; n < last; n++) {                                            \
        const T *x = (const T *)j->xp + (size_t)n * j->h * j->w * j->c;                    \
        for (Py_ssize_t p = 0; p < j->oh; p++)                                             \
            for (Py_ssize_t q = 0; q < j->ow; q++) {                                       \
                const size_t at = ((size_t)n * j->oh * j->ow + p * j->ow + q) * f_all;     \
                const T *restrict g = (const T *)j->g + at;                                \
                const T *restrict ro = s->relu_out ? (const T *)s->relu_out + at : NULL;   \
                const uint8_t *restrict w = s->winner + at;                                \
                SHALLOW_WINDOWS(T)                                                         \
                for (Py_ssize_t f0 = 0; f0 < full; f0 += lanes) {                          \
                    T gm[sizeof(V) / sizeof(T)];                                           \
                    /* int32, not the uint8 winners: GCC then vectorises the masks at the  \
                     * floats' width, and their loads need no narrower stores forwarded */ \
                    int32_t wins[sizeof(V) / sizeof(T)];                                   \
                    ROLLED                                                                 \
                    for (Py_ssize_t t = 0; t < lanes; t++) {                               \
                        gm[t] = ro ? g[f0 + t] * (T)(ro[f0 + t] > 0) : g[f0 + t];          \
                        gb[f0 + t] += gm[t];                                               \
                        wins[t] = w[f0 + t];                                               \
                    }                                                                      \
                    SHALLOW_PLACE_CHUNKS(SHALLOW_KERNEL_TERMS)                             \
                }                                                                          \
                for (Py_ssize_t f = full; f < f_all; f++) { /* the last, scalar */         \
                    const T gm = ro ? g[f] * (T)(ro[f] > 0) : g[f];                        \
                    gb[f] += gm;                                                           \
                    for (Py_ssize_t d = 0; d < places; d++) {                              \
                        const T z = gm * (T)(w[f] == d);                                   \
                        for (Py_ssize_t r = 0; r < width; r++)                             \
                            gk[r * f_all + f] += base[table[d * width + r]] * z;           \
                    }                                                                      \
                }                                                                          \
            }                                                                              \
    }

CONV_SAMPLE_PASS(shallow_forward_pass, SHALLOW_FORWARD)
CONV_BLOCK_PASS(shallow_kernel_pass, SHALLOW_KERNEL_GRAD)

/* Parse (ph, pw), check the scratch limits, set the job's tables, then take the uint8
 * winners (n, oh, ow, m), written or read, and the float arrays `args`: 1 for float32, 0
 * for float64, or -1 with an exception set and nothing held. */
static int
shallow_take(ShallowJob *s, PyObject *pool, PyObject *winner, int written,
             const KernelArg *args, Py_buffer *views, int count, Py_buffer *winner_view)
{
    if (!PyArg_ParseTuple(pool, "nn:pool", &s->ph, &s->pw))
        return -1;
    const ConvJob *j = &s->conv;
    const Py_ssize_t width = j->kh * j->kw * j->c, places = s->ph * s->pw;
    if (s->ph < 1 || s->pw < 1 || places > 256 || width * places > MAX_VALUES ||
        j->m * places > MAX_CANDIDATES) {
        PyErr_SetString(PyExc_ValueError,
                        "dendrite shallow convolution: bad pool window or window too deep");
        return -1;
    }
    for (Py_ssize_t d = 0; d < places; d++)
        for (Py_ssize_t i = 0; i < j->kh; i++)
            for (Py_ssize_t jj = 0; jj < j->kw; jj++)
                for (Py_ssize_t c = 0; c < j->c; c++) {
                    const Py_ssize_t r = d * width + (i * j->kw + jj) * j->c + c;
                    const Py_ssize_t row = (d / s->pw) * j->sh + i * j->dh;
                    const Py_ssize_t col = (d % s->pw) * j->sw + jj * j->dw;
                    s->inner[r] = (row * j->w + col) * j->c + c;
                    s->gathered[r] = r;
                }
    const Py_ssize_t elements = j->n * j->oh * j->ow * j->m;
    int single = kernel_take_with_indices(args, views, count, winner, elements, 'B', written,
                                          winner_view);
    if (single >= 0)
        s->winner = winner_view->buf;
    return single;
}

/* shallow_pool_forward(x, k2, bias_or_None, out, winner, relu, sizes, steps, pool): sizes
 * (n, h, w, c, f, kh, kw, PH, PW) with the pooled output's PH, PW; steps (sh, sw, dh, dw,
 * pt, pl); pool (ph, pw); k2 (kh kw c, f); out (n, PH, PW, f); winner the same, uint8. */
PyObject *
shallow_pool_forward(PyObject *self, PyObject *args)
{
    PyObject *o[5], *sizes, *steps, *pool;
    int relu;
    ShallowJob s = {0};
    ConvJob *j = &s.conv;
    if (!PyArg_ParseTuple(args, "OOOOOpO!O!O!:shallow_pool_forward", &o[0], &o[1], &o[2],
                          &o[3], &o[4], &relu, &PyTuple_Type, &sizes, &PyTuple_Type, &steps,
                          &PyTuple_Type, &pool) ||
        conv_parse_geometry(sizes, steps, j) < 0)
        return NULL;
    const KernelArg a[4] = {{o[0], j->n * j->h * j->w * j->c, 'r'},
                            {o[1], j->m * j->kh * j->kw * j->c, 'r'},
                            {o[2], j->m, 'R'},
                            {o[3], j->n * j->oh * j->ow * j->m, 'w'}};
    Py_buffer v[4], wv;
    int single = shallow_take(&s, pool, o[4], 1, a, v, 4, &wv);
    if (single < 0)
        return NULL;
    j->xp = v[0].buf, j->k = v[1].buf, j->bias = v[2].buf, j->out = v[3].buf;
    j->single = single, s.relu = relu;
    Py_ssize_t work = j->n * j->oh * j->ow * s.ph * s.pw * j->kh * j->kw * j->c;
    Py_BEGIN_ALLOW_THREADS
    parallel_for((long)j->n, shallow_forward_pass, j, work >= SPLIT_FROM);
    Py_END_ALLOW_THREADS
    kernel_give_back(v, 4);
    PyBuffer_Release(&wv);
    Py_RETURN_NONE;
}

/* shallow_pool_backward(g, x, winner, relu_out_or_None, gk, gb_or_None, sizes, steps,
 * pool): g the pooled gradient (n, PH, PW, f); gk (kh kw c, f) and gb (f) written. */
PyObject *
shallow_pool_backward(PyObject *self, PyObject *args)
{
    PyObject *o[6], *sizes, *steps, *pool;
    ShallowJob s = {0};
    ConvJob *j = &s.conv;
    if (!PyArg_ParseTuple(args, "OOOOOOO!O!O!:shallow_pool_backward", &o[0], &o[1], &o[2],
                          &o[3], &o[4], &o[5], &PyTuple_Type, &sizes, &PyTuple_Type, &steps,
                          &PyTuple_Type, &pool) ||
        conv_parse_geometry(sizes, steps, j) < 0)
        return NULL;
    const Py_ssize_t width = j->kh * j->kw * j->c, outputs = j->n * j->oh * j->ow * j->m;
    const KernelArg a[5] = {{o[0], outputs, 'r'},
                            {o[1], j->n * j->h * j->w * j->c, 'r'},
                            {o[3], outputs, 'R'},
                            {o[4], width * j->m, 'w'},
                            {o[5], j->m, 'W'}};
    Py_buffer v[5], wv;
    int single = shallow_take(&s, pool, o[2], 0, a, v, 5, &wv);
    if (single < 0)
        return NULL;
    j->g = v[0].buf, j->xp = v[1].buf, s.relu_out = v[2].buf, j->gk = v[3].buf;
    j->gb = v[4].buf, j->single = single;
    SampleBlocks blocks = {0};
    if (sample_blocks_init(&blocks, j, j->m * (width + 1)) < 0) {
        kernel_give_back(v, 5);
        PyBuffer_Release(&wv);
        return PyErr_NoMemory();
    }
    size_t item = single ? 4 : 8;
    Py_ssize_t work = j->n * j->oh * j->ow * s.ph * s.pw * width;
    Py_BEGIN_ALLOW_THREADS
    const char *sum = sample_blocks_run(&blocks, shallow_kernel_pass, work >= SPLIT_FROM);
    memcpy(j->gk, sum, (size_t)(j->m * width) * item);
    if (j->gb != NULL)
        memcpy(j->gb, sum + (size_t)(j->m * width) * item, (size_t)j->m * item);
    Py_END_ALLOW_THREADS
    sample_blocks_free(&blocks);
    kernel_give_back(v, 5);
    PyBuffer_Release(&wv);
    Py_RETURN_NONE;
}
