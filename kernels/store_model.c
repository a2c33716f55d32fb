/* CPU model of the KV store (kernels/store.cu). Token t's K row [Hkv, D_qk]
 * and V row [Hkv, D_v] go to slot slot_mapping[t] of the paged caches; -1 is
 * padding and is skipped. Collisions and out-of-range slots are rejected
 * before any write. With an FP8 cache each element is quantised
 * (ac_fp8_quantize: fl32(x / scale), RNE, saturating) into the holder's low
 * byte, as the kernel's __nv_cvt_float_to_fp8(x / s, __NV_SATFINITE). */
#include <string.h>

#include "ac_index.h"
#include "ac_numfmt.h"
#include "store.h"

/* One token's row of one tensor (dim = its head dim) to `slot`. stride is
   the cache's head dim (dim; D_qk under AC_BUG_DV_AS_DQK for V, past the
   pool's end dropped). */
static void store_row(const ac_store_params *p, const uint16_t *src, uint16_t *cache, const float *scales,
                      int64_t slot, int32_t dim, int32_t stride, int64_t cache_elems)
{
    const int fp8 = p->kv_format != AC_KV_AS_DTYPE;
    for (int32_t g = 0; g < p->heads_kv; g++) {
        const float s = fp8 && p->n_kv_scales > 0 ? scales[p->n_kv_scales == 1 ? 0 : g] : 1.0f;
        const uint16_t *x = src + (int64_t)g * dim;
        const int64_t dst = ac_cache_offset(slot, g, p->heads_kv, stride);
        for (int32_t e = 0; e < dim; e++) {
            if (dst + e >= cache_elems) return;
            cache[dst + e] = fp8 ? ac_fp8_quantize(p->kv_format, ac_half_to_f32(p->dtype, x[e]), s) : x[e];
        }
    }
}

ac_status ac_store_cpu(const ac_store_params *p, ac_bug bug, ac_error *err)
{
    ac_status st = ac_store_validate(p, err);
    if (st) return st;
    const int32_t dk = p->head_dim, dv = ac_store_dv(p);
    const int64_t num_slots = (int64_t)p->num_blocks * p->block_size;
    const int32_t v_stride = bug == AC_BUG_DV_AS_DQK ? dk : dv;
    for (int32_t t = 0; t < p->num_tokens; t++) {
        int64_t slot = p->slot_mapping_i64 ? ((const int64_t *)p->slot_mapping)[t]
                                           : ((const int32_t *)p->slot_mapping)[t];
        if (slot == -1) {
            if (bug != AC_BUG_STORE_PAD_WRITE) continue;
            slot = num_slots - 1; /* the bug: -1 wrapped around to the pool's last slot */
        }
        if (p->kv_format == AC_KV_AS_DTYPE && v_stride == dv) {
            /* A slot's Hkv * D elements are contiguous in the NHD cache: one copy each. */
            const int64_t rk = (int64_t)p->heads_kv * dk, rv = (int64_t)p->heads_kv * dv;
            memcpy((uint16_t *)p->k_cache + slot * rk, (const uint16_t *)p->k_new + t * rk, sizeof(uint16_t) * (size_t)rk);
            memcpy((uint16_t *)p->v_cache + slot * rv, (const uint16_t *)p->v_new + t * rv, sizeof(uint16_t) * (size_t)rv);
            continue;
        }
        store_row(p, (const uint16_t *)p->k_new + (int64_t)t * p->heads_kv * dk, p->k_cache, p->k_scales_host, slot,
                  dk, dk, num_slots * p->heads_kv * dk);
        store_row(p, (const uint16_t *)p->v_new + (int64_t)t * p->heads_kv * dv, p->v_cache, p->v_scales_host, slot,
                  dv, v_stride, num_slots * p->heads_kv * dv);
    }
    return AC_OK;
}
