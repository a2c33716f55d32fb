/* KV store through a slot mapping: token t's K and V rows [Hkv, D] go to slot
 * slot_mapping[t] of the paged (NHD) caches; -1 is padding. Semantics:
 * docs/CONTRACT.md; docs/DECODE.md. The family's files:
 *   store.h        params and prototypes
 *   store_api.c    validation, params from a case, the CPU backend entry
 *   store_model.c  the CPU model
 *   store.cu       the kernel, its launcher and the GPU backend entry
 *
 * One params struct drives both: ac_store_launch reads the data pointers as
 * device pointers, ac_store_cpu takes the SAME struct with host pointers.
 * Both validate first, on the host copy of the slot mapping (range,
 * collisions), through common/ac_validate.h: bad input gets a named error and
 * nothing is launched or written. Includable without cuda_runtime.h. */
#ifndef AC_STORE_H
#define AC_STORE_H

#include <stdint.h>

#include "ac_backend.h"
#include "ac_case.h"
#include "ac_status.h"
#include "ac_tensors.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ac_store_params {
    ac_dtype dtype;              /* of k_new / v_new (and of the caches unless kv_format is FP8) */
    int32_t num_tokens, heads_kv, head_dim; /* head_dim: D_qk, of K */
    int32_t head_dim_v;          /* D_v, of V; 0: = head_dim */
    int32_t num_blocks, block_size;
    const void *k_new, *v_new;   /* [num_tokens, Hkv, D_qk] and [num_tokens, Hkv, D_v] in dtype */
    void *k_cache, *v_cache;     /* [num_blocks, block_size, Hkv, D_qk] and [.., D_v] */
    const void *slot_mapping;    /* [num_tokens] int32 or int64; -1 = padding */
    int slot_mapping_i64;
    const void *slot_mapping_host; /* host copy, same width, for validation */

    /* FP8 cache (docs/DECODE.md, "FP8 KV and D_v"): each new element x of KV
       head g is stored as ac_fp8_quantize(kv_format, x, scale_g) (fl32(x / s),
       round to nearest even, saturating; NaN stays NaN). The caches then hold
       one code per element: uint8 on the device (ac_store_launch), the host
       holders of ac_outputs (uint16, code in the low byte) for ac_store_cpu.
       n_kv_scales: 0 (scale 1), 1 (per tensor) or heads_kv. */
    ac_kv_format kv_format;
    int32_t n_kv_scales;
    const float *k_scales, *v_scales;           /* [n_kv_scales] (device for the launch) */
    const float *k_scales_host, *v_scales_host; /* host copies for validation */

    /* The int32 slot mapping that ac_store_params_from_case derived from the
       case's int64 one (slot_mapping_i64 = 0); freed by ac_store_params_free.
       NULL in a struct the caller filled. */
    int32_t *slot_mapping_owned;
} ac_store_params;

ac_status ac_store_validate(const ac_store_params *p, ac_error *err);
/* D_v of the call (head_dim_v, or head_dim when 0). */
static inline int32_t ac_store_dv(const ac_store_params *p)
{
    return p->head_dim_v ? p->head_dim_v : p->head_dim;
}
/* Fill params from a store case and its host tensors: k_new / v_new from t,
   the caches from `o` (the store writes them in place; the cache before the
   store is t->k / t->v), the slot mapping in the width the case names.
   Refuses missing caches, pools smaller than the case describes and slots
   that do not fit the int32 form. On success release with
   ac_store_params_free. */
ac_status ac_store_params_from_case(const ac_case *c, const ac_tensors *t, ac_outputs *o, ac_store_params *p,
                                    ac_error *err);
void ac_store_params_free(ac_store_params *p);
/* CPU model on host pointers. bug: AC_BUG_STORE_PAD_WRITE, AC_BUG_DV_AS_DQK
   (V rows written at D_qk's stride, past V's end dropped) or none. */
ac_status ac_store_cpu(const ac_store_params *p, ac_bug bug, ac_error *err);
/* GPU, on `stream` (a cudaStream_t; NULL: the default stream). Only in a
   build with CUDA. */
ac_status ac_store_launch(const ac_store_params *p, void *stream, ac_error *err);

#ifdef __cplusplus
}
#endif
#endif
