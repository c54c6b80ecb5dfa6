/* dendrite's optional C kernels (the extension dendrite._kernels, loaded by
 * dendrite/_native.py): shared declarations.
 *
 * Each kernel does, element by element, exactly the operations of a NumPy path in
 * dendrite (the reference, used when this extension is missing), in the same order and
 * precision, with no multiply and add contracted into one FMA instruction
 * (-ffp-contract=off): both give the same bits, and the tests compare them. NumPy needs
 * one pass over memory per operation; a kernel makes one pass for all of them, and shares
 * large jobs with a helper thread (parallel.c).
 */
#ifndef DENDRITE_KERNELS_H
#define DENDRITE_KERNELS_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

/* Several vector widths, chosen at load time by the CPU (GCC function multiversioning). */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define VECTOR_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define VECTOR_CLONES
#endif

/* 64-byte vectors of either type (GCC splits them for narrower instruction sets), read
 * and written unaligned: element-wise arithmetic on them rounds exactly as on scalars. */
typedef float vec_f32 __attribute__((vector_size(64), aligned(4)));
typedef double vec_f64 __attribute__((vector_size(64), aligned(8)));

/* parallel.c: run fn(context, 0 .. count-1), shared with the helper thread when `split`
 * (each index exactly once; returns when all are done). */
/* Jobs of at least this many elements are split. Below it, waking the helper (and sharing
 * the second core with OpenBLAS' spinning thread) costs more than it saves: measured on
 * the MLP's 100,352-weight Adam update, which was 5% slower per training step when split,
 * while the CNN's 0.7-2.8 million-element pooling passes were 5-10% faster. */
#define SPLIT_FROM 262144
typedef void (*chunk_fn)(const void *context, long index);
void parallel_for(long count, chunk_fn fn, const void *context, int split);
/* parallel_for for jobs whose chunks should stay with their threads from one call to the
 * next: the caller claims chunks from the first, the helper from the last, so each takes
 * about its half, the same half each time when the two run at the same pace, and either
 * takes over the other's chunks when that one falls behind (a descheduled helper delays
 * only the chunk it holds). Afterwards the helper watches for the next job for
 * OWNED_WATCH_NS before it sleeps. A dense kernel of OWNED_KERNEL_FROM elements or more is
 * shared so in its forward product (cut at HALF_ROWS), its gradient's product, its input
 * gradient's product and its Adam update (by OWNED_ROW_BLOCK rows), so that each core's
 * cache keeps its half of the kernel, its gradient and its slots from step to step. Halves of
 * rows, not of columns: with each row cut in two, each core's prefetcher pulls lines the
 * other core is writing (the MLP's Adam update took 87 us shared that way, 17 us by
 * halves of rows, 31 us alone). At most OWNED_MAX_CHUNKS chunks. */
void parallel_for_owned(long count, chunk_fn fn, const void *context, int split);
#define OWNED_WATCH_NS 500000L
/* How long a thread waiting for the other spins before it yields (parallel.c). */
#define WAIT_SPIN_NS 1000000L
/* A kernel (or any 2-D variable updated by Adam) of this many elements or more is owned:
 * the MLP's 784 x 128 kernel, its update 31 us on one core, 17 us owned on two. Also
 * dendrite._kernels.owned_kernel_from, for dendrite/ops/_products.py. */
#define OWNED_KERNEL_FROM 65536
#define OWNED_MAX_CHUNKS 0xffffL
/* `rows` rounded up to whole blocks of 24 (small_product.c's tiles are 6 or 8 rows). */
#define WHOLE_TILES(rows) (((rows) + 23) / 24 * 24)
/* Where a dense layer's forward cuts its sums over the kernel's rows: half the rows, in
 * whole tiles. */
#define HALF_ROWS(rows) WHOLE_TILES(((rows) + 1) / 2)
/* The rows of a kernel (its gradient, its Adam update) in each owned chunk: about a
 * sixteenth, whole blocks of 24, the same for the gradient's product and the update so
 * that their chunks cover the same rows. */
#define OWNED_ROW_BLOCK(rows) WHOLE_TILES(((rows) + 15) / 16)
void parallel_init(void);
int parallel_set_threads(int threads);
int parallel_threads(void);

/* adam.c */
typedef struct {
    char *w, *g, *m, *v;
    Py_ssize_t n;
    Py_ssize_t cols; /* > 0: a kernel of rows of `cols`, updated by OWNED_ROW_BLOCK rows */
    int single;
    double c1, c2, eps, alpha;
} AdamJob;
void adam_run(const AdamJob *job);

/* pooling.c */
typedef struct {
    const char *z;   /* (places, rows, features) convolution outputs */
    const char *bias; /* (features,) or NULL */
    char *out;       /* (rows, features) */
    uint8_t *winner; /* (rows, features) */
    Py_ssize_t places, rows, features;
    int single, relu;
} PoolMaxJob;
void pool_max_run(const PoolMaxJob *job);

typedef struct {
    const char *g;          /* (rows, features) */
    const uint8_t *winner;  /* (rows, features) */
    char *out;              /* (places, rows, features) */
    const char *relu_out;   /* (rows, features) or NULL */
    char *masked;           /* (rows, features), written when relu_out is given */
    Py_ssize_t places, size; /* size = rows * features */
    int single;
} PoolScatterJob;
void pool_scatter_run(const PoolScatterJob *job);

/* col2im.c */
typedef struct {
    const char *cols; /* (ph pw n oh ow, kh kw c) */
    char *out;        /* (n, hp, wp, c) */
    Py_ssize_t kh, kw, ph, pw, n, oh, ow, c, sh, sw, dh, dw, hp, wp;
    int single;
} Col2imJob;
void col2im_run(const Col2imJob *job);

/* The max pooling of `count` values (whole rows of `features`), shared by pooling.c and
 * shallow.c: the candidates of place k start at first + k * stride; o gets
 * relu?(max_k + bias) and w the first k holding the maximum (a later k takes over only
 * where strictly greater, as np.greater; the maximum is np.maximum's: NaN if either is,
 * else the second operand unless the first is greater, +0 over -0; the ReLU is
 * np.maximum(o, 0): NaN stays, -0 becomes +0). Place by place, so each loop vectorises. */
#define POOL_MAX_ROWS(T, o, w, first, stride, places, count, bias, features, relu)         \
    {                                                                                      \
        for (Py_ssize_t i = 0; i < (count); i++) {                                         \
            (o)[i] = (first)[i];                                                           \
            (w)[i] = 0;                                                                    \
        }                                                                                  \
        for (Py_ssize_t k = 1; k < (places); k++) {                                        \
            const T *restrict candidates = (first) + k * (stride);                         \
            const uint8_t place = (uint8_t)k;                                              \
            for (Py_ssize_t i = 0; i < (count); i++) {                                     \
                T candidate = candidates[i], best = (o)[i];                                \
                (w)[i] = candidate > best ? place : (w)[i];                                \
                (o)[i] = (best != best || best > candidate) ? best : candidate;            \
            }                                                                              \
        }                                                                                  \
        if (bias)                                                                          \
            for (Py_ssize_t row = 0; row < (count); row += (features))                     \
                for (Py_ssize_t f = 0; f < (features); f++)                                \
                    (o)[row + f] = (o)[row + f] + (bias)[f];                               \
        if (relu)                                                                          \
            for (Py_ssize_t i = 0; i < (count); i++)                                       \
                (o)[i] = ((o)[i] != (o)[i] || (o)[i] > 0) ? (o)[i] : 0;                    \
    }

/* recurrent.c: one LSTM step's element-wise part (see its header), for `batch` columns;
 * rec (and dh, dc) have row stride rs, sequences sz, state sequences ss. */
void lstm_forward_f32(float *restrict z, const float *restrict rec, const float *h_prev,
                      const float *c_prev, float *h_out, float *c_out, float *restrict act,
                      const float *restrict keep, Py_ssize_t units, Py_ssize_t batch,
                      Py_ssize_t rs, Py_ssize_t sz, Py_ssize_t ss);
void lstm_forward_f64(double *restrict z, const double *restrict rec, const double *h_prev,
                      const double *c_prev, double *h_out, double *c_out,
                      double *restrict act, const double *restrict keep, Py_ssize_t units,
                      Py_ssize_t batch, Py_ssize_t rs, Py_ssize_t sz, Py_ssize_t ss);
void lstm_backward_f32(const float *restrict g_h, const float *restrict g_c,
                       const float *restrict gates, const float *restrict act,
                       const float *restrict c_prev, const float *restrict rec,
                       const float *restrict keep, float *restrict dh, float *restrict dc,
                       float *restrict dz, Py_ssize_t units, Py_ssize_t batch, Py_ssize_t rs,
                       Py_ssize_t sz, Py_ssize_t ss);
void lstm_backward_f64(const double *restrict g_h, const double *restrict g_c,
                       const double *restrict gates, const double *restrict act,
                       const double *restrict c_prev, const double *restrict rec,
                       const double *restrict keep, double *restrict dh, double *restrict dc,
                       double *restrict dz, Py_ssize_t units, Py_ssize_t batch,
                       Py_ssize_t rs, Py_ssize_t sz, Py_ssize_t ss);

/* small_product.c: out (rows, cols) = a (rows, depth) x (depth, cols), a's element (m, k)
 * at a[m sm + k sk], leading dimensions ldx, ldo; each element a fused multiply-add sum in
 * ascending k, whatever its tile.
 * Only where small_product_available() (x86-64 with AVX2 and FMA). */
int small_product_available(void);
void small_product_f32(const float *restrict a, Py_ssize_t sm, Py_ssize_t sk, const float *restrict x,
                       Py_ssize_t ldx, float *restrict out, Py_ssize_t ldo, Py_ssize_t rows,
                       Py_ssize_t depth, Py_ssize_t cols);
void small_product_f64(const double *restrict a, Py_ssize_t sm, Py_ssize_t sk, const double *restrict x,
                       Py_ssize_t ldx, double *restrict out, Py_ssize_t ldo,
                       Py_ssize_t rows, Py_ssize_t depth, Py_ssize_t cols);

/* buffers.c: a method's float arrays, taken and checked before any kernel runs. kind:
 * 'r' read, 'w' written, 'R' / 'W' the same or None (then .buf and .obj stay NULL). */
typedef struct {
    PyObject *object;
    Py_ssize_t elements;
    char kind;
} KernelArg;
/* 1 for float32, 0 for float64, -1 with an exception set (nothing left taken). */
int kernel_take(const KernelArg *args, Py_buffer *views, int count);
/* A C-contiguous array of `elements` integers, uint8 (`kind` 'B', pooling winners) or
 * int64 ('q', NumPy's intp here), writable when `written`, into `view`; 0, or -1 with an
 * exception set (nothing taken). */
int kernel_take_indices(PyObject *object, Py_ssize_t elements, char kind, int written,
                        Py_buffer *view);
/* kernel_take after kernel_take_indices of `indices` into `index_view`; on failure
 * nothing is left taken. */
int kernel_take_with_indices(const KernelArg *args, Py_buffer *views, int count, PyObject *indices,
                             Py_ssize_t elements, char kind, int written, Py_buffer *index_view);
void kernel_give_back(Py_buffer *views, int count);

/* A direct convolution's arrays and geometry (depthwise.c, narrow.c): the input x
 * (n, h, w, c), read as if zero-padded by pt rows on top and pl columns on the left (and
 * as many as the windows need at the bottom and right): the padding is never stored; m
 * filters per input channel (depthwise) or m filters in all (narrow); outputs (n, oh, ow,
 * ...), strides sh, sw and dilations dh, dw. */
typedef struct {
    const char *xp, *k, *g, *bias;
    char *out, *gx, *gk, *gb;
    Py_ssize_t n, h, w, c, m, kh, kw, oh, ow, sh, sw, dh, dw, pt, pl;
    int single;
} ConvJob;
/* Parse sizes (n, h, w, c, m, kh, kw, oh, ow) and steps (sh, sw, dh, dw, pt, pl) into
 * `job`: every size >= 1, the padding >= 0, and no array of c m values per place or per
 * offset overflows; 0, or -1 with an exception set. */
int conv_parse_geometry(PyObject *sizes, PyObject *steps, ConvJob *job);
/* The offset in a sample's input of the channels that output (p, q) reads at kernel
 * offset (i, jj), or -1 where that falls in the padding. */
static inline Py_ssize_t
conv_tap(const ConvJob *j, Py_ssize_t p, Py_ssize_t q, Py_ssize_t i, Py_ssize_t jj)
{
    Py_ssize_t row = p * j->sh + i * j->dh - j->pt, col = q * j->sw + jj * j->dw - j->pl;
    return (row < 0 || row >= j->h || col < 0 || col >= j->w) ? -1 : (row * j->w + col) * j->c;
}
/* The inverse: the output place p ow + q whose window reads input (row, col) at kernel
 * offset (i, jj), or -1 where none does (the gathers of the input gradients). */
static inline Py_ssize_t
conv_source(const ConvJob *j, Py_ssize_t row, Py_ssize_t col, Py_ssize_t i, Py_ssize_t jj)
{
    Py_ssize_t p = row + j->pt - i * j->dh, q = col + j->pl - jj * j->dw;
    if (p < 0 || q < 0)
        return -1;
    if (j->sh != 1) { /* no division in the common case */
        if (p % j->sh)
            return -1;
        p /= j->sh;
    }
    if (j->sw != 1) {
        if (q % j->sw)
            return -1;
        q /= j->sw;
    }
    return (p >= j->oh || q >= j->ow) ? -1 : p * j->ow + q;
}

/* blocks.c: a sum over the samples (or any rows), by blocks shared with the helper thread,
 * added in block order. init allocates count partials of part_size values (-1: no
 * memory); sample_block gives block `index`'s partial and its samples [first, last); run
 * calls fn(blocks, index) for every block (each fills its whole partial) and returns the
 * sum, which stays valid until free. `job` is the caller's, for its chunk function: a
 * ConvJob (sample_blocks_init: its n samples), or any other over `n` rows (blocks_init). */
typedef struct {
    const void *job;
    Py_ssize_t n, count, per_block, part_size;
    char *parts;
    int single;
} SampleBlocks;
int blocks_init(SampleBlocks *blocks, const void *job, Py_ssize_t n, int single,
                Py_ssize_t part_size);
int sample_blocks_init(SampleBlocks *blocks, const ConvJob *job, Py_ssize_t part_size);
char *sample_block(const SampleBlocks *blocks, long index, Py_ssize_t *first, Py_ssize_t *last);
const char *sample_blocks_run(const SampleBlocks *blocks, chunk_fn fn, int split);
void sample_blocks_free(SampleBlocks *blocks);

/* A direct convolution's per-sample pass BODY(T, V) (with `j` and sample `n` in scope),
 * compiled for float32 and float64 (vector clones), and NAME(context, n), the
 * parallel_for chunk over samples that picks the ConvJob's type. */
#define CONV_SAMPLE_PASS(NAME, BODY)                                                       \
    VECTOR_CLONES static void NAME##_f32(const ConvJob *j, Py_ssize_t n) { BODY(float, vec_f32) } \
    VECTOR_CLONES static void NAME##_f64(const ConvJob *j, Py_ssize_t n) { BODY(double, vec_f64) } \
    static void NAME(const void *context, long n)                                          \
    {                                                                                      \
        const ConvJob *j = context;                                                        \
        if (j->single)                                                                     \
            NAME##_f32(j, n);                                                              \
        else                                                                               \
            NAME##_f64(j, n);                                                              \
    }

/* The same for a sum over the samples [first, last) into a partial (blocks.c): BODY(T, V)
 * with `j`, `first`, `last` and `part` (T *) in scope; NAME(blocks, index) is the chunk. */
#define CONV_BLOCK_PASS(NAME, BODY)                                                        \
    VECTOR_CLONES static void NAME##_f32(const ConvJob *j, Py_ssize_t first, Py_ssize_t last, \
                                         float *part) { BODY(float, vec_f32) }             \
    VECTOR_CLONES static void NAME##_f64(const ConvJob *j, Py_ssize_t first, Py_ssize_t last, \
                                         double *part) { BODY(double, vec_f64) }           \
    static void NAME(const void *context, long block)                                      \
    {                                                                                      \
        const SampleBlocks *blocks = context;                                              \
        const ConvJob *j = blocks->job;                                                    \
        Py_ssize_t first, last;                                                            \
        char *part = sample_block(blocks, block, &first, &last);                           \
        if (j->single)                                                                     \
            NAME##_f32(j, first, last, (float *)part);                                     \
        else                                                                               \
            NAME##_f64(j, first, last, (double *)part);                                    \
    }

/* depthwise.c: depthwise convolution, the methods themselves */
PyObject *depthwise_forward(PyObject *self, PyObject *args);
PyObject *depthwise_backward(PyObject *self, PyObject *args);

/* recurrent.c: one time step of the fused recurrences, the methods themselves (argument
 * checks included) */
PyObject *recurrent_lstm_forward(PyObject *self, PyObject *args);
PyObject *recurrent_lstm_backward(PyObject *self, PyObject *args);
PyObject *recurrent_gru_forward(PyObject *self, PyObject *args);
PyObject *recurrent_gru_backward(PyObject *self, PyObject *args);
PyObject *recurrent_rnn_forward(PyObject *self, PyObject *args);
PyObject *recurrent_rnn_backward(PyObject *self, PyObject *args);

/* recurrent_sequence.c: whole LSTM sequences (small_product.c's products), the methods */
PyObject *recurrent_lstm_sequence_forward(PyObject *self, PyObject *args);
PyObject *recurrent_lstm_sequence_backward(PyObject *self, PyObject *args);
PyObject *recurrent_small_products_available(PyObject *self, PyObject *unused);
PyObject *small_product_method(PyObject *self, PyObject *args);
PyObject *stacked_product_method(PyObject *self, PyObject *args);

/* narrow.c: convolution with few filters, the methods themselves */
PyObject *narrow_forward(PyObject *self, PyObject *args);
PyObject *narrow_backward(PyObject *self, PyObject *args);

/* shallow.c: a convolution with a shallow window and its max pooling, the methods */
PyObject *shallow_pool_forward(PyObject *self, PyObject *args);
PyObject *shallow_pool_backward(PyObject *self, PyObject *args);

/* batchnorm.c: batch normalisation over a channels-last view's rows, the methods */
PyObject *batchnorm_forward(PyObject *self, PyObject *args);
PyObject *batchnorm_backward(PyObject *self, PyObject *args);

/* winograd.c: the transforms of a 3x3 convolution's F(2x2, 3x3), with 2x2 max pooling or not */
PyObject *winograd_input(PyObject *self, PyObject *args);
PyObject *winograd_pool(PyObject *self, PyObject *args);
PyObject *winograd_unpool(PyObject *self, PyObject *args);
PyObject *winograd_input_grad(PyObject *self, PyObject *args);
PyObject *winograd_output(PyObject *self, PyObject *args);
PyObject *winograd_output_grad(PyObject *self, PyObject *args);

/* relu.c: the fused bias + ReLU epilogue and the ReLU gradient, the methods themselves */
PyObject *relu_bias_relu(PyObject *self, PyObject *args);
PyObject *relu_relu_grad(PyObject *self, PyObject *args);

/* softmax.c: the softmax over the last axis and the sparse cross-entropy's label lookups */
PyObject *softmax_shift(PyObject *self, PyObject *args);
PyObject *softmax_normalize(PyObject *self, PyObject *args);
PyObject *sparse_pick(PyObject *self, PyObject *args);
PyObject *sparse_grad(PyObject *self, PyObject *args);

/* reuse.c: NumPy's allocator for dendrite's loops, keeping large blocks for reuse */
PyObject *reuse_begin(PyObject *self, PyObject *unused);
PyObject *reuse_end(PyObject *self, PyObject *previous);
PyObject *reuse_stats(PyObject *self, PyObject *unused);

/* transpose.c: the tiled axis swap of the recurrences' layout changes */
PyObject *transpose_swap_axes(PyObject *self, PyObject *args);

#endif
