/* Paged decode attention with split-KV: a few queries per sequence against a
 * paged (NHD) KV cache, the splits merged by the combine (combine.h).
 * Semantics: docs/CONTRACT.md; algorithm and heuristics: docs/DECODE.md.
 * The family's files:
 *   decode.h        params, tiling shared by kernel and model, prototypes
 *   decode_api.c    validation, split count, params from a case, the CPU backend entry
 *   decode_model.c  the CPU model (the kernel's splits, key lanes and merge order in C)
 *   decode.cu       the kernel, its launcher and the GPU backend entry
 *
 * One params struct drives both: ac_decode_launch reads the data pointers as
 * device pointers, ac_decode_cpu takes the SAME struct with host pointers.
 * Both validate first, on the host copies of the metadata (block table,
 * seqlens_k, cu_seqlens_q), through common/ac_validate.h: bad input gets a
 * named error and nothing is launched or written. Includable without
 * cuda_runtime.h (the stream is a void *). */
#ifndef AC_DECODE_H
#define AC_DECODE_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "ac_backend.h"
#include "ac_case.h"
#include "ac_index.h"
#include "ac_status.h"
#include "ac_tensors.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ac_decode_params {
    ac_dtype dtype;              /* AC_BF16 or AC_FP16 (q, o, and the caches unless kv_format is FP8) */
    int32_t batch;               /* B sequences */
    int32_t heads_q, heads_kv;   /* Hq % Hkv == 0 */
    int32_t head_dim;            /* D_qk (q and k); the kernel: a multiple of 8 in [8, 768] */
    int32_t head_dim_v;          /* D_v (v, o and the partials); 0: = head_dim. Kernel: as head_dim */
    int causal;                  /* ac_causal; decode is AC_CAUSAL_BOTTOM_RIGHT */
    int scale_given;             /* 0: 1/sqrt(D) in fp32; 1: `scale` (0.0 is legal) */
    float scale;
    int32_t num_splits;          /* 0: automatic (ac_decode_auto_splits), else 1..AC_MAX_SPLITS */
    int32_t num_sms;             /* for the automatic split: 0 = the device's (model: 132) */

    int32_t num_blocks, block_size, max_blocks_per_seq;
    int64_t total_q;             /* cu_seqlens_q[B]: each sequence has 1..8 queries */

    /* Data (device pointers for ac_decode_launch, host pointers for ac_decode_cpu). */
    const void *q;               /* [total_q, Hq, D_qk] */
    const void *k_cache;         /* [num_blocks, block_size, Hkv, D_qk] (NHD) */
    const void *v_cache;         /* [num_blocks, block_size, Hkv, D_v] (NHD) */
    const int32_t *cu_seqlens_q; /* [B+1] */
    const int32_t *seqlens_k;    /* [B] */
    const int32_t *block_table;  /* [B, max_blocks_per_seq] */
    void *o;                     /* [total_q, Hq, D_v] in dtype (required) */
    float *o_f32;                /* same, fp32 (optional, NULL: not written) */
    float *lse;                  /* [total_q, Hq] natural log, -inf for an empty row (optional) */

    /* Host copies of the metadata, for validation (the model may pass the
       same pointers as above). */
    const int32_t *cu_seqlens_q_host;
    const int32_t *seqlens_k_host;
    const int32_t *block_table_host;

    /* Features (docs/DECODE.md, "Windows, softcap, ALiBi and sinks"); a
       zeroed struct has none, so callers that predate them are unchanged. */
    int window;                  /* 0: no window (the two sides are ignored); 1: window_left/right */
    int32_t window_left;         /* -1: unbounded; else key j >= i + (Lk - Lq) - window_left */
    int32_t window_right;        /* -1: unbounded; else key j <= i + (Lk - Lq) + window_right */
    float softcap;               /* 0: off; c > 0: s = c * tanhf(s / c) on scale * q.k */
    const float *alibi_slopes;   /* [Hq] or NULL: s += slope_h * (j - i - (Lk - Lq)) */
    const float *sinks;          /* [Hq] or NULL: natural-log logit in the final denominator, -inf = none */
    const float *alibi_slopes_host; /* host copies for validation (required when the above are set) */
    const float *sinks_host;

    /* FP8 KV cache (docs/DECODE.md, "FP8 KV and D_v"): with kv_format an FP8
       format the caches hold one code per element: uint8 on the device
       (ac_decode_launch), the host holders of ac_tensors (uint16, code in the
       low byte) for ac_decode_cpu. An element of KV head g is
       decode(code) * k_scales[g] (v_scales[g]); n_kv_scales: 0 (scale 1),
       1 (per tensor) or heads_kv. The kernel folds k_scale into the fp32
       logit scale (ac_decode_logit_scales) and multiplies each split's fp32
       output by v_scale (ac_decode_v_scale). */
    ac_kv_format kv_format;      /* AC_KV_AS_DTYPE (0): the caches are in dtype */
    int32_t n_kv_scales;
    const float *k_scales, *v_scales;           /* [n_kv_scales] (device for the launch) */
    const float *k_scales_host, *v_scales_host; /* host copies for validation */

    /* The cu_seqlens_q that ac_decode_params_from_case derived from the
       case's seqlen_q (a case carries lengths, the kernel offsets); freed by
       ac_decode_params_free. NULL in a struct the caller filled. */
    int32_t *cu_seqlens_q_owned;
} ac_decode_params;

/* Checks every argument, metadata included (host copies), before any work,
   the kernel's head dims included (ac_decode_validate_kernel). */
ac_status ac_decode_validate(const ac_decode_params *p, ac_error *err);
/* The same without the kernel's head-dim limits: D_qk and D_v in
   [1, AC_MAX_HEAD_DIM], what the CPU model can run (past the kernel's 768). */
ac_status ac_decode_validate_any_dims(const ac_decode_params *p, ac_error *err);
/* The KV-cache arguments decode and store share: head_dim_v 0 or in
   [1, AC_MAX_HEAD_DIM], a known kv_format, the scale arrays present with
   n > 0 and their host copies' values (ac_validate_kv_scales). */
ac_status ac_validate_kv_args(int32_t head_dim_v, ac_kv_format kv_format, int32_t n_kv_scales, const float *k_scales,
                              const float *v_scales, const float *k_scales_host, const float *v_scales_host,
                              int32_t heads_kv, ac_error *err);
/* The kernel's head dims: D_qk and D_v each a multiple of 8 in [8, 768]
   (MLA's 576/512 included; AC_ERR_UNSUPPORTED naming head_dim or head_dim_v). */
ac_status ac_decode_validate_kernel(const ac_decode_params *p, ac_error *err);
/* D_v of the call (head_dim_v, or head_dim when 0). */
static inline int32_t ac_decode_dv(const ac_decode_params *p)
{
    return p->head_dim_v ? p->head_dim_v : p->head_dim;
}

/* The features' part of ac_decode_validate (window sides >= -1, softcap
   finite >= 0, per-head slopes finite and sinks finite or -inf, on the host
   copies); the message names the argument and the head. */
ac_status ac_decode_validate_features(const ac_decode_params *p, ac_error *err);

/* Fill params from a decode case and its host tensors: host pointers in the
   data fields, o / o_f32 / lse from `o` (may be NULL), num_sms = 0. Refuses a
   case decode cannot run (explicit mask, contiguous K/V, missing q / k / v);
   the arguments themselves are left to ac_decode_validate. On success release
   with ac_decode_params_free. */
ac_status ac_decode_params_from_case(const ac_case *c, const ac_tensors *t, ac_outputs *o,
                                     ac_decode_params *p, ac_error *err);
void ac_decode_params_free(ac_decode_params *p);
/* Whether the case's tensors hold the paged pools it describes: K with
   num_blocks * block_size * Hkv * D_qk elements (kv_elems), V with D_v
   (v_elems). Named AC_ERR_SHAPE otherwise. */
ac_status ac_decode_check_pool(const ac_case *c, const ac_tensors *t, ac_error *err);

/* max queries per sequence (at least 1) * group size: the rows one
   (sequence, kv head) needs. Host copies; assumes validated metadata. */
int32_t ac_decode_rows_needed(const ac_decode_params *p);
/* Number of splits the call will use (resolves num_splits = 0). */
int32_t ac_decode_splits(const ac_decode_params *p, int32_t num_sms);
/* Bytes of device workspace ac_decode_launch needs for num_splits splits
   (0 for one split: the kernel then writes the output directly). */
size_t ac_decode_workspace_bytes(const ac_decode_params *p, int32_t num_splits);

/* CPU model, same algorithm (splits, key-to-lane tiling, fp32 online softmax,
   combine); host pointers. bug: one of the decode bugs of ac_backend.h. */
ac_status ac_decode_cpu(const ac_decode_params *p, ac_bug bug, ac_error *err);
/* The model past the kernel's head dims (ac_decode_validate_any_dims): the
   cpu-model backend's entry, so head dims beyond the kernel's 768 are checked
   in the model; ac_decode_cpu keeps the kernel's argument contract. */
ac_status ac_decode_cpu_any_dims(const ac_decode_params *p, ac_bug bug, ac_error *err);

/* GPU: stream is a cudaStream_t (NULL: the default stream). workspace may be
   NULL when one split is used. num_splits_used (optional) receives the count.
   Only in a build with CUDA. */
ac_status ac_decode_launch(const ac_decode_params *p, void *workspace, size_t workspace_bytes,
                           void *stream, int32_t *num_splits_used, ac_error *err);

#ifdef __cplusplus
}
#endif

/* Tiling shared by the kernel and its model. A CTA has AC_DECODE_WARPS warps. TPK lanes share one key (8 elements of D
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
/* The dim the tiling follows: a lane's 8 elements cover both q.k's D_qk and
   P.V's D_v, so the wider one picks TPK and the lanes. */
AC_HD int32_t ac_decode_tile_dim(int32_t head_dim, int32_t head_dim_v)
{
    return head_dim_v > head_dim ? head_dim_v : head_dim;
}
AC_HD int32_t ac_decode_lanes(int32_t head_dim)
{
    return (32 / ac_decode_tpk(head_dim)) * AC_DECODE_WARPS;
}
/* Head dims past 256 (MLA's 576/512): a lane holds ac_decode_chunks 8-element
   chunks of D, (c + j * 32) * 8 for j < chunks, and a CTA at most
   AC_DECODE_WIDE_MAX_ROWS rows (its q and accumulators are chunks times
   wider). The kernel's limit: AC_DECODE_MAX_CHUNKS chunks, 768 elements. */
#define AC_DECODE_MAX_CHUNKS 3
#define AC_DECODE_WIDE_MAX_ROWS 2
AC_HD int32_t ac_decode_chunks(int32_t tile_dim)
{
    return tile_dim <= 256 ? 1 : (tile_dim + 255) / 256;
}
/* Rows a CTA owns (a power of two <= AC_DECODE_MAX_ROWS, or
   AC_DECODE_WIDE_MAX_ROWS past 256) for rows_needed = max queries per
   sequence * group size, and tile_dim = ac_decode_tile_dim(D_qk, D_v). */
AC_HD int32_t ac_decode_cta_rows(int32_t rows_needed, int32_t tile_dim)
{
    const int32_t max_rows = tile_dim <= 256 ? AC_DECODE_MAX_ROWS : AC_DECODE_WIDE_MAX_ROWS;
    int32_t r = 1;
    while (r < rows_needed && r < max_rows) r *= 2;
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

/* The keys query i (0-based of lq) may see, [*b, *e): the causal bound and
   the window (ac_key_range). top_left_window = 1 is the CPU model's injected
   AC_BUG_WINDOW_TOP_LEFT (the window's diagonal at i, the causal bound
   untouched); the kernel passes 0. */
AC_HD void ac_decode_row_keys(int causal, int window, int32_t wl, int32_t wr, int32_t i, int32_t lq,
                              int32_t lk, int top_left_window, int32_t *b, int32_t *e)
{
    if (!window) wl = wr = -1;
    if (!top_left_window) {
        ac_key_range(causal, wl, wr, i, lq, lk, b, e);
        return;
    }
    int32_t cb, ce, wb, we;
    ac_key_range(causal, -1, -1, i, lq, lk, &cb, &ce);
    ac_key_range(0, wl, wr, i, lk, lk, &wb, &we); /* seqlen_q = lk: the diagonal is i */
    *b = cb > wb ? cb : wb;
    *e = ce < we ? ce : we;
    if (*e < *b) *e = *b;
}

/* The keys a decode step of a sequence reads, [*r0, *r1): without a window
   all of [0, lk) (the causal bound is masked per row, as before windows);
   with one, the hull of its queries' key ranges, r0 rounded down to a block
   boundary so the splits still cut on blocks. The splits cut only this range:
   blocks wholly outside every query's window are never read (a 32k sequence
   with a 4k window reads 4k keys), and the automatic split count sees only
   its length. No query sees a key: r0 = r1 = 0. */
AC_HD void ac_decode_seq_keys(int causal, int window, int32_t wl, int32_t wr, int32_t lq, int32_t lk,
                              int32_t block_size, int top_left_window, int32_t *r0, int32_t *r1)
{
    *r0 = 0;
    *r1 = lk;
    if (!window) return;
    int32_t lo = lk, hi = 0;
    for (int32_t i = 0; i < lq; i++) {
        int32_t b, e;
        ac_decode_row_keys(causal, window, wl, wr, i, lq, lk, top_left_window, &b, &e);
        if (b >= e) continue;
        lo = b < lo ? b : lo;
        hi = e > hi ? e : hi;
    }
    if (lo >= hi) {
        *r1 = 0;
        return;
    }
    *r0 = lo - lo % block_size;
    *r1 = hi;
}

/* Softcap and ALiBi on a logit, the one formula of kernel and model. dot is
   q.k in fp32; the result is the base-2 logit:
     no softcap: dot * scale2                      (scale2 = scale * log2 e)
     softcap c:  tanhf(dot * scale_c) * cap2       (scale_c = scale / c, cap2 = c * log2 e)
   then + (slope * (float)dist) * log2 e with ALiBi (slope 0: none). */
#define AC_DECODE_LOG2E 1.44269504088896340736f

/* The fp32 logit constants of a KV head, the one computation of kernel and
   model: the FP8 cache's k_scale (1 without one) folds into the softmax
   scale as one fp32 product sk = scale * k_scale, then scale2 = sk * log2 e,
   and with softcap c: scale_c = sk / c, cap2 = c * log2 e. With k_scale = 1,
   sk == scale exactly: the values are those of a cache without scales. */
AC_HD void ac_decode_logit_scales(float scale, float k_scale, float softcap, float *scale2, float *scale_c,
                                  float *cap2)
{
    const float sk = scale * k_scale;
    *scale2 = sk * AC_DECODE_LOG2E;
    *scale_c = softcap > 0.0f ? sk / softcap : 0.0f;
    *cap2 = softcap > 0.0f ? softcap * AC_DECODE_LOG2E : 0.0f;
}
/* The scale of KV head g from an array of n (0: 1, 1: per tensor, else per head). */
AC_HD float ac_decode_kv_scale(const float *scales, int32_t n, int32_t g)
{
    return n <= 0 ? 1.0f : scales[n == 1 ? 0 : g];
}
AC_HD float ac_decode_logit2(float dot, float scale2, int capped, float scale_c, float cap2, float slope,
                             float dist)
{
    float s = capped ? tanhf(dot * scale_c) * cap2 : dot * scale2;
    return slope != 0.0f ? s + (slope * dist) * AC_DECODE_LOG2E : s;
}

/* A split's normalised fp32 output element, the FP8 cache's v_scale applied
   (v_scale = 1: acc / l exactly, the value without an FP8 cache). The merge
   of splits is linear in O, so scaling each split is scaling the result. */
AC_HD float ac_decode_split_out(float acc, float l, float v_scale)
{
    const float o = acc / l;
    return v_scale != 1.0f ? o * v_scale : o;
}

/* The sink joining a row's merged (O, LSE) once, in natural log: with
   M = max(lse, sink), L = exp(lse - M) + exp(sink - M), the new LSE is
   M + ln L and O is scaled by *w = exp(lse - M) / L. An empty row
   (lse = -inf) gets LSE = sink exactly and w = 0; sink = -inf changes
   nothing (w = 1). The final combine of more splits has its own sum
   (combine.h); this one is for a decode of one split. */
AC_HD float ac_decode_sink_join(float lse, float sink, float *w)
{
    if (sink == -INFINITY) {
        *w = 1.0f;
        return lse;
    }
    if (lse == -INFINITY) {
        *w = 0.0f;
        return sink;
    }
    const float m = lse > sink ? lse : sink;
    const float a = expf(lse - m), l = a + expf(sink - m);
    *w = a / l;
    return m + logf(l);
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
