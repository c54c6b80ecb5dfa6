/* Sums over the samples of a batch shared with the helper thread, deterministically: the
 * samples are cut into at most BLOCKS blocks in order, each block's sum goes to its own
 * partial array, and the partials are then added block by block in order. The result does
 * not depend on which thread did which block (a kernel gradient, depthwise.c, narrow.c).
 */
#include "kernels.h"

#include <stdlib.h>
#include <string.h>

#define BLOCKS 32

int
blocks_init(SampleBlocks *blocks, const void *job, Py_ssize_t n, int single, Py_ssize_t part_size)
{
    blocks->job = job;
    blocks->n = n;
    blocks->single = single;
    blocks->part_size = part_size;
    blocks->count = n < BLOCKS ? n : BLOCKS;
    blocks->per_block = (n + blocks->count - 1) / blocks->count;
    blocks->count = (n + blocks->per_block - 1) / blocks->per_block;
    blocks->parts = malloc((size_t)blocks->count * part_size * (single ? 4 : 8));
    return blocks->parts == NULL ? -1 : 0;
}

int
sample_blocks_init(SampleBlocks *blocks, const ConvJob *job, Py_ssize_t part_size)
{
    return blocks_init(blocks, job, job->n, job->single, part_size);
}

char *
sample_block(const SampleBlocks *blocks, long index, Py_ssize_t *first, Py_ssize_t *last)
{
    *first = index * blocks->per_block;
    *last = *first + blocks->per_block < blocks->n ? *first + blocks->per_block
                                                        : blocks->n;
    return blocks->parts + (size_t)index * blocks->part_size * (blocks->single ? 4 : 8);
}

#define SUM_BLOCKS(T)                                                                      \
    {                                                                                      \
        T *parts = (T *)blocks->parts;                                                     \
        for (Py_ssize_t b = 1; b < blocks->count; b++)                                     \
            for (Py_ssize_t e = 0; e < blocks->part_size; e++)                             \
                parts[e] += parts[b * blocks->part_size + e];                              \
    }

const char *
sample_blocks_run(const SampleBlocks *blocks, chunk_fn fn, int split)
{
    parallel_for((long)blocks->count, fn, blocks, split);
    if (blocks->single)
        SUM_BLOCKS(float)
    else
        SUM_BLOCKS(double)
    return blocks->parts;
}

void
sample_blocks_free(SampleBlocks *blocks)
{
    free(blocks->parts);
    blocks->parts = NULL;
}
