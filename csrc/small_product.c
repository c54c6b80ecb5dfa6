/* Matrix products with fused multiply-adds, for the LSTM's products (its per-step ones
 * in csrc/recurrent_sequence.c, and from Python the input projection and the weight and
 * input gradients, see own_product in dendrite/ops/recurrent/_common.py), dense layers'
 * (tiled_product in dendrite/ops/_products.py) and Winograd's stacks of 16
 * (stacked_product, at the end):
 *
 *   out[m ldo + b] = sum_{k = 0 .. depth-1} a[m sm + k sk] x[k ldx + b],  m < rows, b < cols
 *
 * (a read by any strides: sm = lda, sk = 1 for a C-ordered a, sm = 1, sk = lda for the
 * transpose of one, which saves copying a weight matrix to transpose it).
 *
 * Each sum starts at 0 and adds one fused multiply-add per k, k ascending, whichever tile
 * of the output (two vectors of columns, one, or the last columns as a masked vector) the
 * element falls in, and whichever instruction set runs it. So every column of `out`
 * depends on its own column of `x` alone, bit for bit: a sample's result does not depend
 * on the batch around it, on where the batch was cut into chunks, or on the thread that
 * ran its chunk. The order differs from BLAS' (which has none fixed), so the callers'
 * tests compare with the NumPy path within float rounding.
 *
 * Why not BLAS: a recurrence's step product is small (the LSTM benchmark's is 512 x 128 by
 * 128 x 32, 4 MFLOP) and comes 28 times per sequence in each direction, each after the
 * last. Called from Python each one pays NumPy's call and OpenBLAS' thread hand-over; and
 * OpenBLAS' two threads meet at a barrier after every product, so a descheduled partner
 * (a busy machine) stalls every step. Here a whole sequence runs in one call, and the
 * batch (whose samples are independent) is what is shared between threads: each thread
 * runs its columns through all the steps without meeting the other. The LSTM's other
 * products come here too because OpenBLAS' worker, after any product it shares, spins for
 * 0.1 s on the core the kernels' helper thread needs.
 *
 * The AVX2 tile of 6 rows by 16 float32 columns (8 float64) keeps 12 accumulators, 2 rows
 * of x and a broadcast in 15 of its 16 registers: about OpenBLAS' single-thread speed for
 * these shapes (measured: 72-88 against 62-71 GFLOP/s for 512 x 128 by 128 x 16; 3-15%
 * faster than 4 rows, alternated in one process). AVX-512, where the CPU has it, runs the
 * wide products (see below).
 *
 * Only x86-64 with AVX2 and FMA (checked at run time, small_product_available) has it;
 * elsewhere the callers keep the per-step path (NumPy's product and csrc/recurrent.c).
 */
#include "kernels.h"


#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define HAVE_SMALL_PRODUCT 1
#include <immintrin.h>
#else
#define HAVE_SMALL_PRODUCT 0
#endif


#if HAVE_SMALL_PRODUCT

/* One tile: ROWS rows by VECS vectors of columns at (m, b), the sums over k in [k0, k1)
 * continued from `out` (or from 0 when k0 is 0): a float stored and loaded back is the
 * same value, so cutting k into blocks leaves every sum's operations as they were. LOAD
 * and STORE move x's and out's vectors (whole, or the first columns only, see below),
 * LAST_LOAD and LAST_STORE the last vector's (v is a constant in the unrolled loops, so
 * the choice costs nothing). */
#define TILE(T, VT, LANES, LOAD, STORE, LAST_LOAD, LAST_STORE, SET1, FMADD, ZERO, ROWS, VECS) \
    {                                                                                      \
        VT acc[ROWS][VECS];                                                                \
        for (int r = 0; r < ROWS; r++)                                                     \
            for (int v = 0; v < VECS; v++)                                                 \
                acc[r][v] = !k0 ? ZERO()                                                   \
                            : v == VECS - 1 ? LAST_LOAD(out + (m + r) * ldo + b + v * LANES) \
                                            : LOAD(out + (m + r) * ldo + b + v * LANES);   \
        const T *am = a + m * sm;                                                          \
        const T *xk = x + k0 * ldx + b;                                                    \
        for (Py_ssize_t k = k0; k < k1; k++, xk += ldx) {                                  \
            VT xv[VECS];                                                                   \
            for (int v = 0; v < VECS; v++)                                                 \
                xv[v] = v == VECS - 1 ? LAST_LOAD(xk + v * LANES) : LOAD(xk + v * LANES);  \
            for (int r = 0; r < ROWS; r++) {                                               \
                VT s = SET1(am[r * sm + k * sk]);                                          \
                for (int v = 0; v < VECS; v++)                                             \
                    acc[r][v] = FMADD(s, xv[v], acc[r][v]);                                \
            }                                                                              \
        }                                                                                  \
        for (int r = 0; r < ROWS; r++)                                                     \
            for (int v = 0; v < VECS; v++) {                                               \
                if (v == VECS - 1)                                                         \
                    LAST_STORE(out + (m + r) * ldo + b + v * LANES, acc[r][v]);            \
                else                                                                       \
                    STORE(out + (m + r) * ldo + b + v * LANES, acc[r][v]);                 \
            }                                                                              \
    }

/* Every row for the columns b .. b + VECS vectors: rows by RT, then one at a time. */
#define ROWS_OF(T, VT, LANES, LOAD, STORE, LAST_LOAD, LAST_STORE, SET1, FMADD, ZERO, RT, VECS) \
    {                                                                                      \
        Py_ssize_t m = 0;                                                                  \
        for (; m + (RT) <= rows; m += (RT))                                                \
            TILE(T, VT, LANES, LOAD, STORE, LAST_LOAD, LAST_STORE, SET1, FMADD, ZERO, RT, VECS) \
        for (; m < rows; m++)                                                              \
            TILE(T, VT, LANES, LOAD, STORE, LAST_LOAD, LAST_STORE, SET1, FMADD, ZERO, 1, VECS) \
    }

/* k in blocks of DEPTH_BLOCK: a tile's rows of x (16 KB) stay in the first-level cache
 * while every row of a passes them (the rows' block of a stays in the second level). */
#define DEPTH_BLOCK 256

/* Columns by two vectors; the last 1 .. 2 LANES - 1 columns as one more tile of two
 * vectors or of one, its last vector masked where the columns do not fill it (its other
 * lanes are neither read nor written). Each lane does the same fused multiply-adds
 * whichever of these tiles it is in, and whichever instruction set (AVX2 or AVX-512, the
 * same operations on wider vectors) runs it. RT rows a tile. Each tile of columns streams
 * all of a once: the rest shares the last whole vector's pass (a pass of its own cost the
 * LSTM's dL/dW, 29 columns, a third of its time). */
#define SMALL_PRODUCT(NAME, TARGET, T, VT, LANES, RT, LOADU, STOREU, MASK_T, MASK, MLOAD,   \
                      MSTORE, SET1, FMADD, ZERO)                                           \
    TARGET static void NAME(const T *restrict a, Py_ssize_t sm, Py_ssize_t sk,             \
                            const T *restrict x, Py_ssize_t ldx, T *restrict out,          \
                            Py_ssize_t ldo, Py_ssize_t rows, Py_ssize_t depth,             \
                            Py_ssize_t cols)                                               \
    {                                                                                      \
        if (depth == 0) {                                                                  \
            for (Py_ssize_t m = 0; m < rows; m++)                                          \
                for (Py_ssize_t b = 0; b < cols; b++)                                      \
                    out[m * ldo + b] = 0;                                                  \
            return;                                                                        \
        }                                                                                  \
        const Py_ssize_t rest = cols % LANES;                                              \
        const MASK_T mask = MASK(rest);                                                    \
        for (Py_ssize_t k0 = 0; k0 < depth; k0 += DEPTH_BLOCK) {                           \
            const Py_ssize_t k1 = depth - k0 < DEPTH_BLOCK ? depth : k0 + DEPTH_BLOCK;     \
            Py_ssize_t b = 0;                                                              \
            for (; b + 2 * LANES <= cols; b += 2 * LANES)                                  \
                ROWS_OF(T, VT, LANES, LOADU, STOREU, LOADU, STOREU, SET1, FMADD, ZERO, RT, 2) \
            if (cols - b > LANES && rest)                                                  \
                ROWS_OF(T, VT, LANES, LOADU, STOREU, MLOAD, MSTORE, SET1, FMADD, ZERO, RT, 2) \
            else if (cols - b == LANES)                                                    \
                ROWS_OF(T, VT, LANES, LOADU, STOREU, LOADU, STOREU, SET1, FMADD, ZERO, RT, 1) \
            else if (rest)                                                                 \
                ROWS_OF(T, VT, LANES, MLOAD, MSTORE, MLOAD, MSTORE, SET1, FMADD, ZERO, RT, 1) \
        }                                                                                  \
    }

/* AVX2: 16 registers, tiles of 6 rows (12 accumulators, 2 rows of x, a broadcast). Lanes
 * below `rest` on. */
#define AVX2 __attribute__((target("avx2,fma")))
#define MASK_F32(rest)                                                                     \
    _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(rest)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7))
#define MASK_F64(rest)                                                                     \
    _mm256_cmpgt_epi64(_mm256_set1_epi64x((long long)(rest)), _mm256_setr_epi64x(0, 1, 2, 3))
#define MLOAD_F32(p) _mm256_maskload_ps((p), mask)
#define MSTORE_F32(p, v) _mm256_maskstore_ps((p), mask, (v))
#define MLOAD_F64(p) _mm256_maskload_pd((p), mask)
#define MSTORE_F64(p, v) _mm256_maskstore_pd((p), mask, (v))

SMALL_PRODUCT(product_f32_avx2, AVX2, float, __m256, 8, 6, _mm256_loadu_ps, _mm256_storeu_ps,
              __m256i, MASK_F32, MLOAD_F32, MSTORE_F32, _mm256_set1_ps, _mm256_fmadd_ps,
              _mm256_setzero_ps)
SMALL_PRODUCT(product_f64_avx2, AVX2, double, __m256d, 4, 6, _mm256_loadu_pd, _mm256_storeu_pd,
              __m256i, MASK_F64, MLOAD_F64, MSTORE_F64, _mm256_set1_pd, _mm256_fmadd_pd,
              _mm256_setzero_pd)

/* AVX-512: 32 registers, tiles of 8 rows by two vectors of 16 float32 columns. It gives
 * the same bits as AVX2 (each lane's operations are the same), so it is taken where it is
 * faster: from more than one of its vectors' columns (measured, alternated in one process:
 * 96-105 against 84-89 GFLOP/s for the LSTM's dL/dU, 512 x 896 by 896 x 128; but 58-79
 * against 70-82 for a step product of 16 columns). Between 17 and 31 columns it runs one
 * pass of a whole and a masked vector where AVX2 runs two (512 x 896 by 896 x 29, the
 * LSTM's dL/dW, min / median of 100 alternated calls: 221 / 261 against 268 / 329 us; 20
 * and 17 columns 8-20% faster, 24 the same). Before the rest shared the last whole
 * vector's pass, 28 columns had been slower on AVX-512. */
#define AVX512 __attribute__((target("avx512f")))
#define ROW_TILE_512 8
#define MASK16(rest) ((__mmask16)((1u << (rest)) - 1u))
#define MASK8(rest) ((__mmask8)((1u << (rest)) - 1u))
#define MLOAD512_F32(p) _mm512_maskz_loadu_ps(mask, (p))
#define MSTORE512_F32(p, v) _mm512_mask_storeu_ps((p), mask, (v))
#define MLOAD512_F64(p) _mm512_maskz_loadu_pd(mask, (p))
#define MSTORE512_F64(p, v) _mm512_mask_storeu_pd((p), mask, (v))

SMALL_PRODUCT(product_f32_avx512, AVX512, float, __m512, 16, ROW_TILE_512, _mm512_loadu_ps,
              _mm512_storeu_ps, __mmask16, MASK16, MLOAD512_F32, MSTORE512_F32,
              _mm512_set1_ps, _mm512_fmadd_ps, _mm512_setzero_ps)
SMALL_PRODUCT(product_f64_avx512, AVX512, double, __m512d, 8, ROW_TILE_512, _mm512_loadu_pd,
              _mm512_storeu_pd, __mmask8, MASK8, MLOAD512_F64, MSTORE512_F64, _mm512_set1_pd,
              _mm512_fmadd_pd, _mm512_setzero_pd)

/* 2 with AVX-512, 1 with AVX2 and FMA, 0 without (set once; every caller sets the same). */
static int
instruction_set(void)
{
    static int found = -1;
    if (found < 0) {
        __builtin_cpu_init();
        found = __builtin_cpu_supports("avx512f")                                  ? 2
                : __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? 1
                                                                                   : 0;
    }
    return found;
}

int
small_product_available(void)
{
    return instruction_set() > 0;
}

#define DISPATCH(T, SUFFIX)                                                                \
    void small_product_##SUFFIX(const T *restrict a, Py_ssize_t sm, Py_ssize_t sk,         \
                                const T *restrict x, Py_ssize_t ldx, T *restrict out,      \
                                Py_ssize_t ldo, Py_ssize_t rows, Py_ssize_t depth,         \
                                Py_ssize_t cols)                                           \
    {                                                                                      \
        if (instruction_set() == 2 && cols > 16)                                          \
            product_##SUFFIX##_avx512(a, sm, sk, x, ldx, out, ldo, rows, depth, cols);     \
        else                                                                               \
            product_##SUFFIX##_avx2(a, sm, sk, x, ldx, out, ldo, rows, depth, cols);       \
    }

DISPATCH(float, f32)
DISPATCH(double, f64)

#else

int
small_product_available(void)
{
    return 0;
}

void
small_product_f32(const float *restrict a, Py_ssize_t sm, Py_ssize_t sk, const float *restrict x,
                  Py_ssize_t ldx, float *restrict out, Py_ssize_t ldo, Py_ssize_t rows,
                  Py_ssize_t depth, Py_ssize_t cols)
{
    (void)a, (void)sm, (void)sk, (void)x, (void)ldx, (void)out, (void)ldo, (void)rows, (void)depth;
    (void)cols;
}

void
small_product_f64(const double *restrict a, Py_ssize_t sm, Py_ssize_t sk, const double *restrict x,
                  Py_ssize_t ldx, double *restrict out, Py_ssize_t ldo, Py_ssize_t rows,
                  Py_ssize_t depth, Py_ssize_t cols)
{
    (void)a, (void)sm, (void)sk, (void)x, (void)ldx, (void)out, (void)ldo, (void)rows, (void)depth;
    (void)cols;
}

#endif

/* --- the Python side: a product shared with the helper thread by blocks of rows ------ */

typedef struct {
    int single, by_columns;
    const char *a, *x;
    char *out;
    Py_ssize_t sm, sk, rows, depth, cols, block;
    /* A stack of products (stacked_product): `blocks` chunks each, the matrices rows x
     * depth, depth x cols and rows x cols elements apart; one product: blocks 0. */
    Py_ssize_t blocks;
} ProductJob;

/* One block of the product: `block` rows of out (all its columns), or, `by_columns`,
 * `block` columns of out (all its rows). Each element's sum is the same either way. */
static void
product_block(const void *context, long index)
{
    const ProductJob *j = context;
    size_t size = j->single ? 4 : 8;
    Py_ssize_t matrix = j->blocks ? index / j->blocks : 0;
    if (j->blocks)
        index %= j->blocks;
    Py_ssize_t first = index * j->block;
    Py_ssize_t extent = j->by_columns ? j->cols : j->rows;
    Py_ssize_t count = extent - first < j->block ? extent - first : j->block;
    const char *a = j->a + (size_t)(matrix * j->rows * j->depth) * size;
    const char *x = j->x + (size_t)(matrix * j->depth * j->cols) * size;
    char *out = j->out + (size_t)(matrix * j->rows * j->cols) * size;
    Py_ssize_t rows = j->rows, cols = j->cols;
    if (j->by_columns) {
        x += (size_t)first * size;
        out += (size_t)first * size;
        cols = count;
    } else {
        a += (size_t)first * j->sm * size;
        out += (size_t)first * j->cols * size;
        rows = count;
    }
    if (j->single)
        small_product_f32((const float *)a, j->sm, j->sk, (const float *)x, j->cols, (float *)out,
                          j->cols, rows, j->depth, cols);
    else
        small_product_f64((const double *)a, j->sm, j->sk, (const double *)x, j->cols,
                          (double *)out, j->cols, rows, j->depth, cols);
}

/* Products of at least this many multiply-adds (about 75 us on one core) are shared. The
 * helper wakes 30-50 us after it is called on this machine (a virtual one) and the caller
 * then waits for the chunk it took: a dense layer's 3.2M multiply-adds (57 us alone) took
 * as long or longer shared, with Python's 20-200 us between calls; 8.4M took 40% less. */
#define SHARE_FROM (1 << 22)
#define ROW_BLOCKS 16
/* Fewer rows than this are shared by blocks of columns instead (whole 32-column tiles):
 * a batch of 32 times a weight would otherwise split 24 rows against 8. */
#define COLUMN_SPLIT_BELOW 96
#define COLUMN_TILE 32

/* Products of at least this many multiply-adds asked for by owned rows are shared as owned
 * jobs (kernels.h): the MLP's kernel gradient (784 x 32 by 32 x 128, 3.2M multiply-adds)
 * took 59 us on one core and 34 us so with the helper watching. */
#define OWNED_ROWS_FROM (1 << 21)

/* A dense layer's forward product, x W, with W of depth x cols: for kernels of at least
 * OWNED_KERNEL_FROM elements (kernels.h) cut at k = HALF_ROWS(depth) into two sums that are added at
 * the end, out = x[:, :c] W[:c] + x[:, c:] W[c:], in that order on any threads and for
 * any batch (the cut depends on W alone, so a sample's result does not depend on the batch
 * around it). Each part is cut into blocks of columns, the first part's claimed from the
 * front by the caller and the second's from the back by the helper, so that each reads
 * only the half of W whose rows its Adam update writes (kernels.h). */

typedef struct {
    int single;
    const char *a, *x;
    char *out, *part; /* the first part's sums, the second's */
    Py_ssize_t sm, sk, rows, depth, cols, cut, block, blocks; /* `blocks` of `block` columns */
} DepthJob;

static void
depth_part(const void *context, long index)
{
    const DepthJob *j = context;
    size_t size = j->single ? 4 : 8;
    int second = index >= j->blocks;
    Py_ssize_t first = second ? j->cut : 0;
    Py_ssize_t count = second ? j->depth - j->cut : j->cut;
    Py_ssize_t column = (index % j->blocks) * j->block;
    Py_ssize_t width = j->cols - column < j->block ? j->cols - column : j->block;
    const char *a = j->a + (size_t)(first * j->sk) * size;
    const char *x = j->x + (size_t)(first * j->cols + column) * size;
    char *out = (second ? j->part : j->out) + (size_t)column * size;
    if (j->single)
        small_product_f32((const float *)a, j->sm, j->sk, (const float *)x, j->cols, (float *)out,
                          j->cols, j->rows, count, width);
    else
        small_product_f64((const double *)a, j->sm, j->sk, (const double *)x, j->cols,
                          (double *)out, j->cols, j->rows, count, width);
}

/* out = x[:, :c] W[:c] + x[:, c:] W[c:] (see above); 0 when done, -1 when out
 * of memory (nothing written). */
static int
split_depth_product(DepthJob *job, double work)
{
    size_t size = job->single ? 4 : 8;
    size_t count = (size_t)(job->rows * job->cols);
    job->part = PyMem_RawMalloc(count ? count * size : 1);
    if (job->part == NULL)
        return -1;
    job->block = job->cols >= 2 * COLUMN_TILE ? COLUMN_TILE : job->cols;
    job->blocks = job->cols ? (job->cols + job->block - 1) / job->block : 0;
    parallel_for_owned(2 * job->blocks, depth_part, job, work >= OWNED_ROWS_FROM);
    if (job->single) {
        float *out = (float *)job->out;
        const float *part = (const float *)job->part;
        for (size_t i = 0; i < count; i++)
            out[i] += part[i];
    } else {
        double *out = (double *)job->out;
        const double *part = (const double *)job->part;
        for (size_t i = 0; i < count; i++)
            out[i] += part[i];
    }
    PyMem_RawFree(job->part);
    return 0;
}

/* The operands of `count` products a (rows, depth) x (depth, cols) = out, taken into `v`
 * after the checks both methods share; 1 for float32, 0 for float64, -1 with an exception
 * set (nothing left taken). */
static int
take_operands(PyObject *o[3], Py_ssize_t count, Py_ssize_t rows, Py_ssize_t depth,
              Py_ssize_t cols, Py_buffer v[3], const char *name)
{
    if (!small_product_available()) {
        PyErr_Format(PyExc_RuntimeError, "dendrite %s needs AVX2 and FMA", name);
        return -1;
    }
    const double limit = (double)(PY_SSIZE_T_MAX / 8);
    if (count < 0 || rows < 0 || depth < 0 || cols < 0 ||
        (double)count * (double)rows * (double)depth > limit ||
        (double)count * (double)depth * (double)cols > limit ||
        (double)count * (double)rows * (double)cols > limit) {
        PyErr_Format(PyExc_ValueError, "dendrite %s: bad sizes", name);
        return -1;
    }
    const KernelArg k[3] = {{o[0], count * rows * depth, 'r'}, {o[1], count * depth * cols, 'r'},
                            {o[2], count * rows * cols, 'w'}};
    return kernel_take(k, v, 3);
}

/* small_product(a, x, out, rows, depth, cols[, transposed[, owned_rows[, split_depth]]]):
 * out (rows, cols) = a (rows, depth) x (depth, cols), or a^T x for a given as (depth, rows)
 * when `transposed`; C-contiguous arrays of one float dtype; out must not overlap a or x.
 * `owned_rows`: a dense kernel's gradient (or its input gradient's (W g^T)), shared by the
 * blocks of rows its Adam update uses (kernels.h). `split_depth`: a dense layer's forward
 * product (see above). */
PyObject *
small_product_method(PyObject *self, PyObject *args)
{
    PyObject *o[3];
    Py_ssize_t rows, depth, cols;
    int transposed = 0, owned_rows = 0, split_depth = 0;
    if (!PyArg_ParseTuple(args, "OOOnnn|ppp:small_product", &o[0], &o[1], &o[2], &rows, &depth,
                          &cols, &transposed, &owned_rows, &split_depth))
        return NULL;
    Py_buffer v[3];
    int single = take_operands(o, 1, rows, depth, cols, v, "small_product");
    if (single < 0)
        return NULL;
    double work = (double)rows * (double)depth * (double)cols;
    if (split_depth && depth * cols >= OWNED_KERNEL_FROM && HALF_ROWS(depth) < depth) {
        DepthJob job = {single, v[0].buf, v[1].buf, v[2].buf, NULL, transposed ? 1 : depth,
                        transposed ? rows : 1, rows, depth, cols, HALF_ROWS(depth), 0, 0};
        int status;
        Py_BEGIN_ALLOW_THREADS
        status = split_depth_product(&job, work);
        Py_END_ALLOW_THREADS
        kernel_give_back(v, 3);
        if (status < 0)
            return PyErr_NoMemory();
        Py_RETURN_NONE;
    }
    owned_rows = owned_rows && work >= OWNED_ROWS_FROM;
    int by_columns = !owned_rows && rows < COLUMN_SPLIT_BELOW && cols >= 2 * COLUMN_TILE;
    Py_ssize_t extent = by_columns ? cols : rows;
    Py_ssize_t block = (extent + ROW_BLOCKS - 1) / ROW_BLOCKS;
    if (owned_rows)
        block = OWNED_ROW_BLOCK(rows);
    else if (by_columns) /* small blocks: the helper wakes late and takes what is left */
        block = (block + COLUMN_TILE - 1) / COLUMN_TILE * COLUMN_TILE;
    else
        block = WHOLE_TILES(block);
    ProductJob job = {single,
                      by_columns,
                      v[0].buf,
                      v[1].buf,
                      v[2].buf,
                      transposed ? 1 : depth,
                      transposed ? rows : 1,
                      rows,
                      depth,
                      cols,
                      block,
                      0};
    long chunks = extent == 0 ? 0 : (long)((extent + block - 1) / block);
    Py_BEGIN_ALLOW_THREADS
    if (owned_rows)
        parallel_for_owned(chunks, product_block, &job, 1);
    else
        parallel_for(chunks, product_block, &job, work >= SHARE_FROM);
    Py_END_ALLOW_THREADS
    kernel_give_back(v, 3);
    Py_RETURN_NONE;
}

/* A stack's products are cut into chunks of about this many multiply-adds (whole tiles of
 * rows), so that a helper descheduled by a busy machine delays only a short chunk. */
#define STACK_CHUNK_WORK (1 << 21)

/* stacked_product(a, x, out, count, rows, depth, cols[, transposed]): out[i] = a[i] x[i]
 * for i < count, or a[i]^T x[i] for a[i] given as (depth, rows) when `transposed`;
 * C-contiguous stacks of one float dtype, out not overlapping a or x. The products' chunks
 * (whole matrices, or blocks of rows of a tall one) are one owned job (kernels.h), the
 * caller's from the first matrix and the helper's from the last, so no BLAS thread waits
 * at a barrier after each matrix, and each element's sum is one chain in ascending k
 * whoever computes it. Why: Winograd's 16 products (dendrite/ops/winograd.py) ran 5.4,
 * 6.1 and 4.9 ms on one BLAS thread and 3.9, 3.8 and 4.2 ms on these tiles (the CNN's
 * second convolution, batch 128); on two threads BLAS' collapse beside a busy neighbour
 * (docs/performance.md) is what this avoids. */
PyObject *
stacked_product_method(PyObject *self, PyObject *args)
{
    PyObject *o[3];
    Py_ssize_t count, rows, depth, cols;
    int transposed = 0;
    if (!PyArg_ParseTuple(args, "OOOnnnn|p:stacked_product", &o[0], &o[1], &o[2], &count, &rows,
                          &depth, &cols, &transposed))
        return NULL;
    Py_buffer v[3];
    int single = take_operands(o, count, rows, depth, cols, v, "stacked_product");
    if (single < 0)
        return NULL;
    double work = (double)count * (double)rows * (double)depth * (double)cols;
    double per_matrix = (double)rows * (double)depth * (double)cols;
    Py_ssize_t pieces = (Py_ssize_t)(per_matrix / STACK_CHUNK_WORK);
    pieces = pieces < 1 ? 1 : pieces;
    Py_ssize_t block = (rows + pieces - 1) / pieces;
    block = block < 1 ? 1 : WHOLE_TILES(block);
    Py_ssize_t blocks = rows ? (rows + block - 1) / block : 0;
    ProductJob job = {single, 0, v[0].buf, v[1].buf, v[2].buf, transposed ? 1 : depth,
                      transposed ? rows : 1, rows, depth, cols, block, blocks};
    Py_BEGIN_ALLOW_THREADS /* more than OWNED_MAX_CHUNKS are claimed in order (parallel.c) */
    parallel_for_owned((long)(count * blocks), product_block, &job, work >= SHARE_FROM);
    Py_END_ALLOW_THREADS
    kernel_give_back(v, 3);
    Py_RETURN_NONE;
}
