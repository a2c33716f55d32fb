/* Host-side materialised data of a case: what ac_gen fills from (dist, seed),
 * what the oracle reads, what a backend (CPU model or GPU) consumes, and the
 * outputs it returns. Layouts follow docs/CONTRACT.md. */
#ifndef AC_TENSORS_H
#define AC_TENSORS_H

#include <stdint.h>

#include "ac_case.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ac_tensors {
    /* Sequence metadata derived from the case. */
    int32_t *cu_seqlens_q;   /* [B+1] */
    int32_t *cu_seqlens_k;   /* [B+1] (contiguous K/V; also used for masks) */
    int64_t total_q, total_k;

    /* Storage-dtype bit patterns (bf16 or fp16). */
    uint16_t *q;             /* [total_q, Hq, D] */
    uint16_t *k, *v;         /* contiguous: [total_k, Hkv, D] and [total_k, Hkv, D_v];
                                paged: [num_blocks, block_size, Hkv, D] and [.., D_v] (NHD).
                                With an FP8 cache (c->kv_format) each element holds
                                one FP8 code in its low byte, the high byte 0. */
    int64_t kv_elems;        /* elements in k (and in v when D_v == D) */
    int64_t v_elems;         /* elements in v; read only when D_v != D (with D_v == D,
                                v has kv_elems elements, as before v_elems existed) */

    /* Explicit mask, per sequence b at mask_off[b]: [Hm, Lq_b, Lk_b] with
       Hm = Hq if mask_per_head else 1. */
    uint8_t *mask_bool;      /* AC_MASK_BOOL: 1 = takes part */
    float *mask_bias;        /* AC_MASK_ADDITIVE: fp32 bias, -inf == false */
    int64_t *mask_off;       /* [B+1] */

    /* Store: new tokens' K [num_tokens, Hkv, D] and V [num_tokens, Hkv, D_v]
       in the case dtype (never FP8: the store quantises them); the cache
       before the store is k/v above. */
    uint16_t *k_new, *v_new;

    /* Combine: partials of num_splits splits for each (query row, head):
       o_part [total_q, Hq, S, D] fp32, lse_part [total_q, Hq, S] fp32 natural log. */
    float *o_part;
    float *lse_part;
} ac_tensors;

/* Outputs of a kernel run or of the oracle rounded to the target format. */
typedef struct ac_outputs {
    uint16_t *o;             /* [total_q, Hq, D_v] in the case dtype */
    float *o_f32;            /* same, fp32 (diagnosis mode / combine output) */
    float *lse;              /* [total_q, Hq] natural log; -inf for an empty row */
    /* Store: the caches after the store (same layout and format as ac_tensors k/v). */
    uint16_t *k_cache, *v_cache;
    int64_t kv_elems;        /* elements in k_cache (and in v_cache when D_v == D) */
    int64_t v_elems;         /* elements in v_cache; read only when D_v != D */
} ac_outputs;

/* Elements of v (of a store's v_cache): v_elems when D_v != D, else k's
   count (the one rule for callers that predate v_elems). */
static inline int64_t ac_tensors_v_elems(const ac_case *c, const ac_tensors *t)
{
    return ac_case_dv(c) != c->head_dim ? t->v_elems : t->kv_elems;
}
static inline int64_t ac_outputs_v_elems(const ac_case *c, const ac_outputs *o)
{
    return ac_case_dv(c) != c->head_dim ? o->v_elems : o->kv_elems;
}

/* A store's new rows as the cache holds them (docs/CONTRACT.md section 13):
   token tok's K row (Hkv * D_qk elements) into k_row and its V row (Hkv *
   D_v) into v_row, copied in the dtype, or with an FP8 cache quantised with
   their KV head's scale (ac_fp8_quantize: fl32(x / s), RNE, saturating; the
   code in the element's low byte). The oracle and the double reference both
   store through this one rule. */
void ac_store_rows(const ac_case *c, const ac_tensors *t, int32_t tok, uint16_t *k_row, uint16_t *v_row);

void ac_tensors_free(ac_tensors *t);
void ac_outputs_free(ac_outputs *o);
/* Allocate outputs sized for the case, every element poisoned (NaN patterns),
   so an unwritten element is never mistaken for a result. */
ac_status ac_outputs_alloc(const ac_case *c, ac_outputs *o, ac_error *err);

#ifdef __cplusplus
}
#endif
#endif
