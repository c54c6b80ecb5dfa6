/* Adam, Keras' form (the NumPy reference is optimizers/adam.py, Adam.update_step):
 *
 *   m <- m + (g - m) * (1 - beta_1)
 *   v <- v + (g * g - v) * (1 - beta_2)
 *   w <- w - m / (sqrt(v) + epsilon) * alpha
 *
 * c1 = 1 - beta_1 and c2 = 1 - beta_2 arrive as doubles and are rounded to the arrays'
 * type, as NumPy does with a Python float meeting a float32 array.
 */
#include "kernels.h"

#include <math.h>

#define CHUNK 8192

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

/* The update of elements [start, stop) of the job's arrays. */
static void
adam_range(const AdamJob *j, Py_ssize_t start, Py_ssize_t stop)
{
    if (j->single) {
        size_t at = (size_t)start * sizeof(float);
        adam_f32((float *)(j->w + at), (const float *)(j->g + at), (float *)(j->m + at),
                 (float *)(j->v + at), stop - start, (float)j->c1, (float)j->c2, (float)j->eps,
                 (float)j->alpha);
    } else {
        size_t at = (size_t)start * sizeof(double);
        adam_f64((double *)(j->w + at), (const double *)(j->g + at), (double *)(j->m + at),
                 (double *)(j->v + at), stop - start, j->c1, j->c2, j->eps, j->alpha);
    }
}

static void
adam_chunk(const void *context, long index)
{
    const AdamJob *j = context;
    Py_ssize_t start = (Py_ssize_t)index * CHUNK;
    adam_range(j, start, start + CHUNK < j->n ? start + CHUNK : j->n);
}

/* Chunk `index` of a kernel's update by blocks of OWNED_ROW_BLOCK rows. */
static void
adam_rows(const void *context, long index)
{
    const AdamJob *j = context;
    Py_ssize_t rows = j->n / j->cols, block = OWNED_ROW_BLOCK(rows);
    Py_ssize_t start = index * block * j->cols;
    adam_range(j, start, (index + 1) * block < rows ? (index + 1) * block * j->cols : j->n);
}

void
adam_run(const AdamJob *job)
{
    if (job->cols > 0 && job->n >= OWNED_KERNEL_FROM && job->n % job->cols == 0 &&
        job->n / job->cols > OWNED_ROW_BLOCK(job->n / job->cols)) {
        Py_ssize_t rows = job->n / job->cols, block = OWNED_ROW_BLOCK(rows);
        parallel_for_owned((long)((rows + block - 1) / block), adam_rows, job, 1);
        return;
    }
    long chunks = (long)((job->n + CHUNK - 1) / CHUNK);
    parallel_for(chunks, adam_chunk, job, job->n >= SPLIT_FROM);
}
