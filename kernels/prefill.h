/* Prefill attention: varlen queries against contiguous (THD) or paged (NHD)
 * keys/values, FlashAttention-2 style. Semantics: docs/CONTRACT.md; design and
 * measured numbers: docs/PREFILL.md. The family's files:
 *   prefill.h        params, tiling shared by kernel and model, prototypes
 *   prefill_api.c    validation, params from a case, the CPU backend entry
 *   prefill_model.c  the CPU model (the kernel's tiles and arithmetic in C)
 *   prefill.cu       the kernel, its launcher and the GPU backend entry
 *
 * One params struct drives both: ac_prefill_launch (device pointers, launches
 * on a stream) and ac_prefill_cpu (host pointers, runs the CPU model). Both
 * validate everything first with the same code and write nothing on bad
 * input. Includable without cuda_runtime.h (the stream is a void *). */
#ifndef AC_PREFILL_H
#define AC_PREFILL_H

#include <stdint.h>

#include "ac_backend.h"
#include "ac_case.h"
#include "ac_status.h"
#include "ac_tensors.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Tile sizes, shared by the kernel and its CPU model: the key tile decides the
   order of the online softmax, so both must use the same one.
   The head dims (D_qk and D_v) are padded up to one AC_PREFILL_DPAD (64, 128
   or 256) of the larger of the two; padded columns are zero. */
#define AC_PREFILL_DPAD(d) ((d) <= 64 ? 64 : (d) <= 128 ? 128 : 256)
#define AC_PREFILL_TILE_M(dpad) ((dpad) <= 128 ? 128 : 64) /* query rows per CTA: 8 or 4 warps of 16 rows */
#define AC_PREFILL_TILE_N(dpad) 64                         /* keys per streamed K/V tile */
#define AC_PREFILL_MAX_HEAD_DIM 256
/* Head dims run by the kernel (D_qk and D_v each): multiples of 8 (one
   16-byte chunk) up to 256. The CPU model takes any size. */
#define AC_PREFILL_HEAD_DIM_OK(d) ((d) > 0 && (d) <= AC_PREFILL_MAX_HEAD_DIM && (d) % 8 == 0)
/* The grid's z dimension carries the batch. */
#define AC_PREFILL_MAX_BATCH 65535

/* The effective logit scale of KV head g with an FP8 cache: the softmax
   scale times the head's k_scale, one product rounded to fp32. Written once
   here so the kernel (per CTA) and the model (per head) fold the same bits;
   without scales k_scale is 1 and the product is the scale itself. */
#if defined(__CUDACC__)
__host__ __device__ __forceinline__
#else
static inline
#endif
float ac_prefill_kv_scaled(float scale, float kv_scale)
{
#if defined(__CUDA_ARCH__)
    return __fmul_rn(scale, kv_scale);
#else
    return scale * kv_scale;
#endif
}

typedef struct ac_prefill_params {
    ac_dtype dtype;          /* AC_BF16 or AC_FP16: q and out (and k, v without an FP8 cache) */
    int32_t batch;           /* B >= 0 */
    int32_t heads_q, heads_kv, head_dim; /* head_dim: D_qk, of q and k */
    int32_t head_dim_v;      /* D_v, of v and out; 0: D_v = head_dim */
    int64_t total_q;         /* rows of q and out: h_cu_seqlens_q[B] */

    /* Data. Device pointers for ac_prefill_launch, host pointers for
       ac_prefill_cpu. Tensors of zero elements may be NULL. */
    const void *q;           /* [total_q, Hq, D_qk] */
    const void *k, *v;       /* contiguous: [total_k, Hkv, D_qk] / [.., D_v]; paged: [num_blocks, block_size, Hkv, D_qk]
                                / [.., D_v]. FP8 cache: the device tensors hold one byte (the code) per element,
                                the host tensors one uint16_t per element with the code in its low byte. */
    void *out;               /* [total_q, Hq, D_v], input dtype */
    float *lse;              /* [total_q, Hq], natural log, -inf for an empty row; NULL: not written */
    const uint8_t *mask_bool;/* AC_MASK_BOOL: 1 = takes part */
    const float *mask_bias;  /* AC_MASK_ADDITIVE: fp32 bias, -inf = excluded */

    /* Metadata on the device (read by the kernel; unused by the CPU entry). */
    const int32_t *d_cu_seqlens_q;  /* [B+1] */
    const int32_t *d_cu_seqlens_k;  /* [B+1], contiguous K/V */
    const int32_t *d_block_table;   /* [B, max_blocks_per_seq], paged */
    const int32_t *d_seqlens_k;     /* [B], paged */
    const int64_t *d_mask_off;      /* [B], with a mask */

    /* Host copies of the same metadata: validation and launch geometry
       (and the CPU model's only metadata). */
    const int32_t *h_cu_seqlens_q;
    const int32_t *h_cu_seqlens_k;  /* contiguous: required */
    const int32_t *h_block_table;   /* paged: required */
    const int32_t *h_seqlens_k;     /* paged: required; contiguous: optional, must match cu_seqlens_k */
    const int64_t *h_mask_off;      /* with a mask: required */

    /* Contiguous K/V. */
    int64_t total_k;                /* rows of k and v: h_cu_seqlens_k[B] */
    /* Paged K/V. */
    int paged;
    int32_t block_size;             /* any positive size */
    int32_t num_blocks;
    int32_t max_blocks_per_seq;

    int scale_given;                /* 0: 1/sqrt(D) in fp32; 1: `scale` (0.0 is legal) */
    float scale;
    ac_causal causal;
    ac_mask_kind mask_kind;
    int mask_per_head;              /* mask of sequence b: [Hm, Lq_b, Lk_b] at mask_off[b], Hm = Hq or 1 */
    int64_t mask_elems;             /* elements in the mask buffer (bounds check of mask_off) */

    /* Features (docs/CONTRACT.md, "Windows, softcap, ALiBi and sinks";
       docs/PREFILL.md, "Features"). Zeroed params use none of them. */
    int has_window;                 /* 0: no window (window_left/right ignored) */
    int32_t window_left;            /* -1: unbounded; else key j >= i + (Lk - Lq) - window_left */
    int32_t window_right;           /* -1: unbounded; else key j <= i + (Lk - Lq) + window_right */
    float softcap;                  /* 0: off; c > 0: scale*q.k -> c * tanh(scale*q.k / c) */
    /* Per query head [Hq]; NULL: off. h_* for validation (and the CPU model),
       d_* for the kernel: both must be given to ac_prefill_launch. */
    const float *h_alibi_slopes, *d_alibi_slopes; /* bias slope_h * (j - i - (Lk - Lq)), finite */
    const float *h_sinks, *d_sinks;               /* natural-log logit in the denominator; -inf: none */

    /* FP8 KV cache (docs/PREFILL.md, "FP8 KV and D_v"). kv_format
       AC_KV_AS_DTYPE: k and v in dtype, no scales. E4M3 / E5M2: element value
       decode(code) * scale_g of KV head g; n_kv_scales 0 (scale 1), 1 (per
       tensor) or heads_kv (per head). h_* for validation and the model, d_*
       (both or neither) for the kernel. */
    ac_kv_format kv_format;
    int32_t n_kv_scales;
    const float *h_k_scales, *d_k_scales;         /* [n_kv_scales] */
    const float *h_v_scales, *d_v_scales;         /* [n_kv_scales] */
} ac_prefill_params;

/* D_v of params: head_dim_v, or head_dim when it is 0. */
#define AC_PREFILL_DV(p) ((p)->head_dim_v ? (p)->head_dim_v : (p)->head_dim)
/* The padded head dim of params: one pad for both D_qk and D_v. */
#define AC_PREFILL_DPAD_OF(p) AC_PREFILL_DPAD((p)->head_dim > AC_PREFILL_DV(p) ? (p)->head_dim : AC_PREFILL_DV(p))
/* The k_scale / v_scale of KV head g (1 without scales). */
#define AC_PREFILL_K_SCALE(p, g) ((p)->n_kv_scales > 0 ? (p)->h_k_scales[(p)->n_kv_scales == 1 ? 0 : (g)] : 1.0f)
#define AC_PREFILL_V_SCALE(p, g) ((p)->n_kv_scales > 0 ? (p)->h_v_scales[(p)->n_kv_scales == 1 ? 0 : (g)] : 1.0f)

/* The window of params as passed to ac_key_range: (-1, -1) without one. */
#define AC_PREFILL_WINDOW_LEFT(p) ((p)->has_window ? (p)->window_left : -1)
#define AC_PREFILL_WINDOW_RIGHT(p) ((p)->has_window ? (p)->window_right : -1)

/* The AC_FEAT_* bits params use (0: none; the kernel then runs its
   feature-free instantiation). */
uint32_t ac_prefill_features(const ac_prefill_params *p);

/* Softcap in the log2 units of the kernel and the model: with `scale` the
   effective scale and c > 0, t = tanhf(s * cap_in) * cap_out for the raw
   dot product s, cap_in = scale / c and cap_out = c * log2(e), both
   rounded to fp32 once here so the kernel and the model use the same two. */
void ac_prefill_softcap_factors(float scale, float softcap, float *cap_in, float *cap_out);

/* Validate every argument (shared by both entries), the kernel's head dims
   included (AC_PREFILL_HEAD_DIM_OK for D_qk and D_v; else AC_ERR_UNSUPPORTED
   naming head_dim or head_dim_v). for_device = 1 also requires the d_*
   metadata pointers and 16-byte aligned data pointers. */
ac_status ac_prefill_validate(const ac_prefill_params *p, int for_device, ac_error *err);
/* The same with kernel_dims = 0: any D_qk and D_v in the suite's range
   [1, AC_MAX_HEAD_DIM] (the CPU model's own limits; for_device forces 1). */
ac_status ac_prefill_check(const ac_prefill_params *p, int for_device, int kernel_dims, ac_error *err);

/* Fill params from a case and its host tensors (host pointers everywhere,
   d_* left NULL); out/lse point to o->o / o->lse (o may be NULL). */
ac_status ac_prefill_params_from_case(const ac_case *c, const ac_tensors *t, ac_outputs *o,
                                      ac_prefill_params *p, ac_error *err);

/* AC_OK if the kernel runs these head dims; AC_ERR_UNSUPPORTED naming
   head_dim or head_dim_v otherwise (also part of validation for_device). */
ac_status ac_prefill_kernel_dims(const ac_prefill_params *p, ac_error *err);

/* Effective softmax scale: the given one, or 1/sqrt(D_qk) in fp32 (never D_v). */
float ac_prefill_scale(const ac_prefill_params *p);

/* The CPU model on host pointers: the kernel's tiles and arithmetic in C.
   bug != AC_BUG_NONE injects one of the prefill bugs of ac_backend.h. */
ac_status ac_prefill_cpu(const ac_prefill_params *p, ac_bug bug, ac_error *err);
/* The model past the kernel's head dims (576/512: the oracle's sizes); for
   callers whose tensors are sized by those dims, such as the case entry
   ac_model_prefill. ac_prefill_cpu keeps the kernel's limits. */
ac_status ac_prefill_cpu_any_dims(const ac_prefill_params *p, ac_bug bug, ac_error *err);

/* Launch on `stream` (a cudaStream_t; NULL = default stream). Validates
   first; AC_ERR_CUDA with the CUDA error string if a CUDA call or the
   launch fails. Asynchronous: errors of the running kernel surface later.
   Only in a build with CUDA. */
ac_status ac_prefill_launch(const ac_prefill_params *p, void *stream, ac_error *err);

#ifdef __cplusplus
}
#endif
#endif
