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
    ac_dtype dtype;
    int32_t num_tokens, heads_kv, head_dim;
    int32_t num_blocks, block_size;
    const void *k_new, *v_new;   /* [num_tokens, Hkv, D] */
    void *k_cache, *v_cache;     /* [num_blocks, block_size, Hkv, D] */
    const void *slot_mapping;    /* [num_tokens] int32 or int64; -1 = padding */
    int slot_mapping_i64;
    const void *slot_mapping_host; /* host copy, same width, for validation */

    /* The int32 slot mapping that ac_store_params_from_case derived from the
       case's int64 one (slot_mapping_i64 = 0); freed by ac_store_params_free.
       NULL in a struct the caller filled. */
    int32_t *slot_mapping_owned;
} ac_store_params;

ac_status ac_store_validate(const ac_store_params *p, ac_error *err);
/* Fill params from a store case and its host tensors: k_new / v_new from t,
   the caches from `o` (the store writes them in place; the cache before the
   store is t->k / t->v), the slot mapping in the width the case names.
   Refuses missing caches, pools smaller than the case describes and slots
   that do not fit the int32 form. On success release with
   ac_store_params_free. */
ac_status ac_store_params_from_case(const ac_case *c, const ac_tensors *t, ac_outputs *o, ac_store_params *p,
                                    ac_error *err);
void ac_store_params_free(ac_store_params *p);
/* CPU model on host pointers. bug: AC_BUG_STORE_PAD_WRITE or none. */
ac_status ac_store_cpu(const ac_store_params *p, ac_bug bug, ac_error *err);
/* GPU, on `stream` (a cudaStream_t; NULL: the default stream). Only in a
   build with CUDA. */
ac_status ac_store_launch(const ac_store_params *p, void *stream, ac_error *err);

#ifdef __cplusplus
}
#endif
#endif
