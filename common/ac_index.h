/* Index math shared by the CUDA kernels, their CPU models and the oracle.
 * Written once here; compiled by nvcc (host and device) and by the C compiler.
 * All offsets into tensors are 64-bit: pools and batches past 2^31 elements
 * are legal (docs/CONTRACT.md, "The paged cache"). */
#ifndef AC_INDEX_H
#define AC_INDEX_H

#include <stdint.h>

#if defined(__CUDACC__)
#define AC_HD __host__ __device__ __forceinline__
#else
#define AC_HD static inline
#endif

/* --- GQA / MQA ---------------------------------------------------------- */
/* Query head h reads KV head h / (Hq/Hkv): contiguous groups (repeat_interleave).
   (h % Hkv is the classic bug.) */
AC_HD int32_t ac_kv_head(int32_t h, int32_t heads_q, int32_t heads_kv)
{
    return h / (heads_q / heads_kv);
}

/* --- causal bounds ------------------------------------------------------- */
/* Keys allowed to query i (0-based in its sequence) by the causal mode are
   exactly j in [0, ac_causal_end(...)), before any explicit mask.
   mode: 0 NONE, 1 TOP_LEFT (j <= i), 2 BOTTOM_RIGHT (j <= i + Lk - Lq).
   The result is clamped to [0, Lk]; 0 means the row is fully masked. */
AC_HD int32_t ac_causal_end(int mode, int32_t i, int32_t seqlen_q, int32_t seqlen_k)
{
    int64_t end;
    if (mode == 1)
        end = (int64_t)i + 1;
    else if (mode == 2)
        end = (int64_t)i + 1 + ((int64_t)seqlen_k - seqlen_q);
    else
        end = seqlen_k;
    if (end < 0) end = 0;
    if (end > seqlen_k) end = seqlen_k;
    return (int32_t)end;
}

/* --- sliding window ------------------------------------------------------ */
/* Keys allowed to query i by the causal mode and a window (left, right), -1
   meaning unbounded on that side, are exactly j in [*begin, *end), before any
   explicit mask. The window is aligned bottom-right like the causal mode
   BOTTOM_RIGHT (flash-attn's window_size): with off = Lk - Lq,
   i + off - left <= j <= i + off + right. Both clamped to [0, Lk];
   *begin >= *end means the row is empty. */
AC_HD void ac_key_range(int causal_mode, int32_t window_left, int32_t window_right, int32_t i,
                        int32_t seqlen_q, int32_t seqlen_k, int32_t *begin, int32_t *end)
{
    int64_t diag = (int64_t)i + ((int64_t)seqlen_k - seqlen_q);
    int64_t b = 0, e = ac_causal_end(causal_mode, i, seqlen_q, seqlen_k);
    if (window_left >= 0 && diag - window_left > b) b = diag - window_left;
    if (window_right >= 0 && diag + window_right + 1 < e) e = diag + window_right + 1;
    if (b > seqlen_k) b = seqlen_k;
    if (e < 0) e = 0;
    if (e < b) e = b;
    *begin = (int32_t)b;
    *end = (int32_t)e;
}

/* ALiBi's distance: j - (i + Lk - Lq), as a float (exact below 2^24). The bias
   is slope_h times it: <= 0 for every key a causal bottom-right row sees. */
AC_HD float ac_alibi_dist(int32_t i, int32_t j, int32_t seqlen_q, int32_t seqlen_k)
{
    return (float)((int64_t)j - (int64_t)i - ((int64_t)seqlen_k - seqlen_q));
}

/* --- paged cache ---------------------------------------------------------- */
/* Slot s is block s / block_size, offset s % block_size. */
AC_HD int64_t ac_slot_block(int64_t slot, int32_t block_size) { return slot / block_size; }
AC_HD int32_t ac_slot_offset(int64_t slot, int32_t block_size) { return (int32_t)(slot % block_size); }

/* Number of table entries a sequence of seqlen_k keys uses. */
AC_HD int32_t ac_blocks_used(int32_t seqlen_k, int32_t block_size)
{
    return (int32_t)(((int64_t)seqlen_k + block_size - 1) / block_size);
}

/* Physical slot of logical position p of a sequence whose table row is `row`
   (row = block_table + b * max_blocks_per_seq). Only valid for p < seqlen_k. */
AC_HD int64_t ac_pos_slot(const int32_t *row, int32_t p, int32_t block_size)
{
    return (int64_t)row[p / block_size] * block_size + (p % block_size);
}

/* Element offset of (slot, kv_head, 0) in an NHD cache [num_blocks, block_size, Hkv, D]:
   a slot's rows are contiguous, so this is slot * Hkv * D + h * D. */
AC_HD int64_t ac_cache_offset(int64_t slot, int32_t kv_head, int32_t heads_kv, int32_t head_dim)
{
    return (slot * heads_kv + kv_head) * (int64_t)head_dim;
}

/* Element offset of (token t, head h, 0) in a packed THD tensor [total, H, D]. */
AC_HD int64_t ac_thd_offset(int64_t t, int32_t h, int32_t heads, int32_t head_dim)
{
    return (t * heads + h) * (int64_t)head_dim;
}

/* --- tiles and splits ----------------------------------------------------- */
/* Number of tiles of size `tile` covering n items. */
AC_HD int32_t ac_num_tiles(int32_t n, int32_t tile) { return (n + tile - 1) / tile; }

/* Split s of num_splits over a key range [0, n): keys [begin, end), cut on
   `granule` boundaries (a block or a tile) so that no granule straddles two
   splits. Splits past the last granule are empty (begin == end == n):
   more splits than granules is legal and gives empty splits. */
AC_HD void ac_split_range(int32_t n, int32_t num_splits, int32_t s, int32_t granule,
                          int32_t *begin, int32_t *end)
{
    int32_t granules = ac_num_tiles(n, granule);
    int32_t per = ac_num_tiles(granules, num_splits);   /* granules per split, >= 1 if n > 0 */
    int64_t b = (int64_t)s * per * granule;
    int64_t e = b + (int64_t)per * granule;
    if (b > n) b = n;
    if (e > n) e = n;
    *begin = (int32_t)b;
    *end = (int32_t)e;
}

#endif
