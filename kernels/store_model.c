/* CPU model of the KV store (kernels/store.cu). Token t's K and V rows
 * [Hkv, D] go to slot slot_mapping[t] of the paged caches; -1 is padding and
 * is skipped. Collisions and out-of-range slots are rejected before any write. */
#include <string.h>

#include "ac_index.h"
#include "store.h"

ac_status ac_store_cpu(const ac_store_params *p, ac_bug bug, ac_error *err)
{
    ac_status st = ac_store_validate(p, err);
    if (st) return st;
    const int64_t row = (int64_t)p->heads_kv * p->head_dim; /* elements per token and per slot */
    const int64_t num_slots = (int64_t)p->num_blocks * p->block_size;
    for (int32_t t = 0; t < p->num_tokens; t++) {
        int64_t slot = p->slot_mapping_i64 ? ((const int64_t *)p->slot_mapping)[t]
                                           : ((const int32_t *)p->slot_mapping)[t];
        if (slot == -1) {
            if (bug != AC_BUG_STORE_PAD_WRITE) continue;
            slot = num_slots - 1; /* the bug: -1 wrapped around to the pool's last slot */
        }
        /* (slot, head 0, 0) of the NHD cache; a slot's Hkv * D elements are contiguous. */
        int64_t dst = ac_cache_offset(slot, 0, p->heads_kv, p->head_dim);
        memcpy((uint16_t *)p->k_cache + dst, (const uint16_t *)p->k_new + t * row, sizeof(uint16_t) * (size_t)row);
        memcpy((uint16_t *)p->v_cache + dst, (const uint16_t *)p->v_new + t * row, sizeof(uint16_t) * (size_t)row);
    }
    return AC_OK;
}
