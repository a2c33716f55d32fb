/* Host memory for cases larger than what they touch (the `sparse` special,
 * docs/DATA.md "Sparse cases"): a pool of 2^31 and more elements of which a
 * case reads a few blocks. ac_big_alloc reserves the bytes (an anonymous
 * mapping, MAP_NORESERVE: no commit charge, the pages cost memory only once
 * written) and reads as zeros; ac_big_free releases it, and releases a
 * malloc'd pointer with free(), so one free function serves every tensor.
 *
 * ac_case_touched_blocks lists the blocks of the paged pool a case touches:
 * the used table entries of its sequences and, for a store, the blocks its
 * slots map to. In a sparse case every other block is zero on every side
 * (inputs, outputs, oracle), so copies, transfers and comparisons visit only
 * these blocks. */
#ifndef AC_BIG_H
#define AC_BIG_H

#include <stddef.h>
#include <stdint.h>

#include "ac_case.h"
#include "ac_status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* `bytes` of zero-reading memory, reserved without commit; NULL on failure.
   Small requests (below 1 MiB) come from calloc. */
void *ac_big_alloc(size_t bytes);
/* Release memory from ac_big_alloc, malloc or calloc (NULL is a no-op). */
void ac_big_free(void *p);

/* 1 if the case carries the sparse special. */
int ac_case_is_sparse(const ac_case *c);

/* Sorted, distinct blocks of the pool the case touches (a validated paged
   case): *blocks (free()) holds *n of them. */
ac_status ac_case_touched_blocks(const ac_case *c, int32_t **blocks, int64_t *n, ac_error *err);

/* Runs of consecutive blocks in a sorted list: calls fn(first, count, ctx)
   once per run, in order; stops at and returns the first non-zero return. */
int ac_block_runs(const int32_t *blocks, int64_t n, int (*fn)(int64_t first, int64_t count, void *ctx), void *ctx);

/* Copy a case's paged pool (num_blocks * block_size * Hkv * D elements of
   16 bits): all of it, or in a sparse case the touched blocks only (dst must
   then read as zero elsewhere, as ac_big_alloc's memory does). */
ac_status ac_case_copy_pool(const ac_case *c, uint16_t *dst, const uint16_t *src, ac_error *err);
/* The same for a pool of head dim `dim` (V's D_v when it differs from D). */
ac_status ac_case_copy_pool_dim(const ac_case *c, uint16_t *dst, const uint16_t *src, int32_t dim, ac_error *err);

#ifdef __cplusplus
}
#endif
#endif
