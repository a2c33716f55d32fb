/* Paged decode attention with split-KV, the split combine, and the KV store
 * through a slot mapping: host API of kernels/decode.cu, combine.cu, store.cu
 * and of their CPU models (decode_model.c, combine_model.c, store_model.c).
 *
 * Each operation has one params struct. The GPU functions read the data
 * pointers as device pointers; the *_model functions take the SAME struct
 * with host pointers in those fields. Both validate first, on the host copies
 * of the metadata (block table, seqlens_k, cu_seqlens_q, slot mapping), through
 * common/ac_validate.h: bad input gets a named error and nothing is launched
 * or written. docs/DECODE.md describes the algorithms and the heuristics. */
#ifndef AC_ATTN_DECODE_H
#define AC_ATTN_DECODE_H

#include <stddef.h>
#include <stdint.h>

#include "ac_case.h"
#include "ac_index.h"
#include "ac_status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- decode ------------------------------------------------------------- */
typedef struct ac_decode_params {
    ac_dtype dtype;              /* AC_BF16 or AC_FP16 (q, caches and o) */
    int32_t batch;               /* B sequences */
    int32_t heads_q, heads_kv;   /* Hq % Hkv == 0 */
    int32_t head_dim;            /* D: a multiple of 8 in [8, 256] */
    int causal;                  /* ac_causal; decode is AC_CAUSAL_BOTTOM_RIGHT */
    int scale_given;             /* 0: 1/sqrt(D) in fp32; 1: `scale` (0.0 is legal) */
    float scale;
    int32_t num_splits;          /* 0: automatic (ac_decode_auto_splits), else 1..AC_MAX_SPLITS */
    int32_t num_sms;             /* for the automatic split: 0 = the device's (model: 132) */

    int32_t num_blocks, block_size, max_blocks_per_seq;
    int64_t total_q;             /* cu_seqlens_q[B]: each sequence has 1..8 queries */

    /* Data (device pointers for ac_attn_decode, host pointers for the model). */
    const void *q;               /* [total_q, Hq, D] */
    const void *k_cache, *v_cache; /* [num_blocks, block_size, Hkv, D] (NHD) */
    const int32_t *cu_seqlens_q; /* [B+1] */
    const int32_t *seqlens_k;    /* [B] */
    const int32_t *block_table;  /* [B, max_blocks_per_seq] */
    void *o;                     /* [total_q, Hq, D] in dtype (required) */
    float *o_f32;                /* same, fp32 (optional, NULL: not written) */
    float *lse;                  /* [total_q, Hq] natural log, -inf for an empty row (optional) */

    /* Host copies of the metadata, for validation (the model may pass the
       same pointers as above). */
    const int32_t *cu_seqlens_q_host;
    const int32_t *seqlens_k_host;
    const int32_t *block_table_host;
} ac_decode_params;

/* Number of splits the call will use (resolves num_splits = 0). */
int32_t ac_attn_decode_splits(const ac_decode_params *p, int32_t num_sms);
/* Bytes of device workspace ac_attn_decode needs for num_splits splits
   (0 for one split: the kernel then writes the output directly). */
size_t ac_attn_decode_workspace_bytes(const ac_decode_params *p, int32_t num_splits);
/* Checks every argument, metadata included (host copies), before any work. */
ac_status ac_attn_decode_validate(const ac_decode_params *p, ac_error *err);

/* GPU: stream is a cudaStream_t (NULL: the default stream). workspace may be
   NULL when one split is used. num_splits_used (optional) receives the count. */
ac_status ac_attn_decode(const ac_decode_params *p, void *workspace, size_t workspace_bytes,
                         void *stream, int32_t *num_splits_used, ac_error *err);
/* CPU model, same algorithm (splits, key-to-lane tiling, fp32 online softmax,
   combine); host pointers. bug: an ac_bug (kernels/ac_backend.h), 0 = none. */
ac_status ac_attn_decode_model(const ac_decode_params *p, int bug, ac_error *err);

/* ---- combine ------------------------------------------------------------ */
typedef struct ac_combine_params {
    ac_dtype dtype;              /* of o */
    int64_t rows;                /* (query, head) rows, e.g. total_q * Hq */
    int32_t num_splits;          /* S in [1, AC_MAX_SPLITS] */
    int32_t head_dim;            /* D in [1, AC_MAX_HEAD_DIM] */
    const float *o_part;         /* [rows, S, D] each normalised by its own sum */
    const float *lse_part;       /* [rows, S] natural log; -inf = empty split (O_s never read) */
    void *o;                     /* [rows, D] in dtype (optional) */
    float *o_f32;                /* [rows, D] (optional; at least one of o, o_f32) */
    float *lse;                  /* [rows] (optional) */
} ac_combine_params;

ac_status ac_attn_combine_validate(const ac_combine_params *p, ac_error *err);
ac_status ac_attn_combine(const ac_combine_params *p, void *stream, ac_error *err);
ac_status ac_attn_combine_model(const ac_combine_params *p, int bug, ac_error *err);

/* ---- store -------------------------------------------------------------- */
typedef struct ac_kv_store_params {
    ac_dtype dtype;
    int32_t num_tokens, heads_kv, head_dim;
    int32_t num_blocks, block_size;
    const void *k_new, *v_new;   /* [num_tokens, Hkv, D] */
    void *k_cache, *v_cache;     /* [num_blocks, block_size, Hkv, D] */
    const void *slot_mapping;    /* [num_tokens] int32 or int64; -1 = padding */
    int slot_mapping_i64;
    const void *slot_mapping_host; /* host copy, same width, for validation */
} ac_kv_store_params;

ac_status ac_kv_store_validate(const ac_kv_store_params *p, ac_error *err);
ac_status ac_kv_store(const ac_kv_store_params *p, void *stream, ac_error *err);
ac_status ac_kv_store_model(const ac_kv_store_params *p, int bug, ac_error *err);

#ifdef __cplusplus
}
#endif

/* ---- tiling shared by the decode kernel and its model -------------------- */
/* A CTA has AC_DECODE_WARPS warps. TPK lanes share one key (8 elements of D
   each, one 16-byte load); a warp holds 32/TPK keys at once, so the CTA has
   ac_decode_lanes(D) "key lanes". Key p of a split starting at kb belongs to
   key lane (p - kb) % lanes; each key lane keeps its own online softmax over
   its keys, taken kpt at a time, and the lanes are merged at the end. */
#define AC_DECODE_WARPS 4
#define AC_DECODE_MAX_ROWS 8      /* (query, head) rows a CTA owns; more rows -> row chunks */
#define AC_DECODE_NOMINAL_SMS 132 /* H100 SXM: the model's SM count for num_splits = 0 */
#define AC_DECODE_CTAS_PER_SM 4   /* resident CTAs per SM the split heuristic aims at */
#define AC_DECODE_MIN_SPLIT_KEYS 256

AC_HD int32_t ac_decode_tpk(int32_t head_dim)
{
    return head_dim <= 64 ? 8 : head_dim <= 128 ? 16 : 32;
}
AC_HD int32_t ac_decode_lanes(int32_t head_dim)
{
    return (32 / ac_decode_tpk(head_dim)) * AC_DECODE_WARPS;
}
/* Rows a CTA owns (a power of two <= AC_DECODE_MAX_ROWS) for rows_needed =
   max queries per sequence * group size. */
AC_HD int32_t ac_decode_cta_rows(int32_t rows_needed)
{
    int32_t r = 1;
    while (r < rows_needed && r < AC_DECODE_MAX_ROWS) r *= 2;
    return r;
}
/* The online softmax of a key lane takes its running max over this many keys
   at a time, however many keys a step loads (kpt): the summation order then
   depends neither on the rows per CTA nor, through them, on the other
   sequences of the batch (batch invariance; the property suite checks it). */
#define AC_DECODE_SOFTMAX_KEYS 2
/* Keys per lane per step (a multiple of AC_DECODE_SOFTMAX_KEYS): fewer when
   more rows need registers. */
AC_HD int32_t ac_decode_kpt(int32_t cta_rows)
{
    return cta_rows <= 2 ? 8 : cta_rows == 4 ? 4 : 2;
}

/* Automatic split count: with base_ctas = B * Hkv * row_chunks CTAs for one
   split, add splits until about AC_DECODE_CTAS_PER_SM CTAs per SM are there
   (enough loads in flight to saturate HBM), but keep every split at least
   AC_DECODE_MIN_SPLIT_KEYS keys (whole blocks) so the partials' traffic and
   the combine stay small against the KV read. The count is then trimmed so
   that no split is empty for the longest sequence. */
AC_HD int32_t ac_decode_auto_splits(int32_t num_sms, int64_t base_ctas, int32_t max_seqlen_k,
                                    int32_t block_size)
{
    int64_t target = (int64_t)num_sms * AC_DECODE_CTAS_PER_SM;
    if (base_ctas <= 0 || max_seqlen_k <= 0 || base_ctas * 4 >= target * 3) return 1;
    int64_t splits = (target + base_ctas - 1) / base_ctas;
    int64_t blocks = ((int64_t)max_seqlen_k + block_size - 1) / block_size;
    int64_t min_blocks = (AC_DECODE_MIN_SPLIT_KEYS + block_size - 1) / block_size;
    int64_t cap = blocks / min_blocks;
    if (splits > cap) splits = cap;
    if (splits > AC_MAX_SPLITS) splits = AC_MAX_SPLITS;
    if (splits < 1) splits = 1;
    int64_t per = (blocks + splits - 1) / splits; /* blocks per split, as ac_split_range */
    splits = (blocks + per - 1) / per;
    return (int32_t)splits;
}

#endif
