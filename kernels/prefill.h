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
   head_dim is padded up to AC_PREFILL_DPAD (64, 128 or 256); padded columns
   are zero. */
#define AC_PREFILL_DPAD(d) ((d) <= 64 ? 64 : (d) <= 128 ? 128 : 256)
#define AC_PREFILL_TILE_M(dpad) ((dpad) <= 128 ? 128 : 64) /* query rows per CTA: 8 or 4 warps of 16 rows */
#define AC_PREFILL_TILE_N(dpad) 64                         /* keys per streamed K/V tile */
#define AC_PREFILL_MAX_HEAD_DIM 256
/* Head dims run by the kernel: multiples of 8 (one 16-byte chunk) up to 256. */
#define AC_PREFILL_HEAD_DIM_OK(d) ((d) > 0 && (d) <= AC_PREFILL_MAX_HEAD_DIM && (d) % 8 == 0)
/* The grid's z dimension carries the batch. */
#define AC_PREFILL_MAX_BATCH 65535

typedef struct ac_prefill_params {
    ac_dtype dtype;          /* AC_BF16 or AC_FP16: q, k, v and out */
    int32_t batch;           /* B >= 0 */
    int32_t heads_q, heads_kv, head_dim;
    int64_t total_q;         /* rows of q and out: h_cu_seqlens_q[B] */

    /* Data. Device pointers for ac_prefill_launch, host pointers for
       ac_prefill_cpu. Tensors of zero elements may be NULL. */
    const void *q;           /* [total_q, Hq, D] */
    const void *k, *v;       /* contiguous: [total_k, Hkv, D]; paged: [num_blocks, block_size, Hkv, D] */
    void *out;               /* [total_q, Hq, D], input dtype */
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
} ac_prefill_params;

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

/* Validate every argument (shared by both entries). for_device = 1 also
   requires the d_* metadata pointers and 16-byte aligned data pointers. */
ac_status ac_prefill_validate(const ac_prefill_params *p, int for_device, ac_error *err);

/* Fill params from a case and its host tensors (host pointers everywhere,
   d_* left NULL); out/lse point to o->o / o->lse (o may be NULL). */
ac_status ac_prefill_params_from_case(const ac_case *c, const ac_tensors *t, ac_outputs *o,
                                      ac_prefill_params *p, ac_error *err);

/* Effective softmax scale: the given one, or 1/sqrt(D) in fp32. */
float ac_prefill_scale(const ac_prefill_params *p);

/* The CPU model on host pointers: the kernel's tiles and arithmetic in C.
   bug != AC_BUG_NONE injects one of the prefill bugs of ac_backend.h. */
ac_status ac_prefill_cpu(const ac_prefill_params *p, ac_bug bug, ac_error *err);

/* Launch on `stream` (a cudaStream_t; NULL = default stream). Validates
   first; AC_ERR_CUDA with the CUDA error string if a CUDA call or the
   launch fails. Asynchronous: errors of the running kernel surface later.
   Only in a build with CUDA. */
ac_status ac_prefill_launch(const ac_prefill_params *p, void *stream, ac_error *err);

#ifdef __cplusplus
}
#endif
#endif
