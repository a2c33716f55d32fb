#include "ac_tensors.h"

#include <stdlib.h>
#include <string.h>

void ac_tensors_free(ac_tensors *t)
{
    free(t->cu_seqlens_q);
    free(t->cu_seqlens_k);
    free(t->q);
    free(t->k);
    free(t->v);
    free(t->mask_bool);
    free(t->mask_bias);
    free(t->mask_off);
    free(t->k_new);
    free(t->v_new);
    free(t->o_part);
    free(t->lse_part);
    memset(t, 0, sizeof *t);
}

void ac_outputs_free(ac_outputs *o)
{
    free(o->o);
    free(o->o_f32);
    free(o->lse);
    free(o->k_cache);
    free(o->v_cache);
    memset(o, 0, sizeof *o);
}

/* Poison patterns: a quiet NaN with a recognisable payload, so an element no
   kernel wrote can never pass as a result. */
#define POISON_HALF 0x7fa5u
#define POISON_F32_BITS 0x7fc0dead

ac_status ac_outputs_alloc(const ac_case *c, ac_outputs *o, ac_error *err)
{
    ac_outputs_free(o);
    int64_t rows = ac_case_total_q(c) * c->heads_q;
    size_t n = (size_t)rows * (size_t)c->head_dim;
    o->o = malloc(sizeof(uint16_t) * (n ? n : 1));
    o->o_f32 = malloc(sizeof(float) * (n ? n : 1));
    o->lse = malloc(sizeof(float) * (size_t)(rows ? rows : 1));
    if (!o->o || !o->o_f32 || !o->lse) {
        ac_outputs_free(o);
        return ac_fail(err, AC_ERR_NOMEM, "outputs: out of memory for %zu elements", n);
    }
    uint32_t pf = POISON_F32_BITS;
    float fp;
    memcpy(&fp, &pf, sizeof fp);
    for (size_t i = 0; i < n; i++) {
        o->o[i] = POISON_HALF;
        o->o_f32[i] = fp;
    }
    for (int64_t r = 0; r < rows; r++) o->lse[r] = fp;
    if (ac_op_traits_of(c->op)->slots) { /* the caches after the store */
        o->kv_elems = (int64_t)c->num_blocks * c->block_size * c->heads_kv * c->head_dim;
        o->k_cache = malloc(sizeof(uint16_t) * (size_t)(o->kv_elems ? o->kv_elems : 1));
        o->v_cache = malloc(sizeof(uint16_t) * (size_t)(o->kv_elems ? o->kv_elems : 1));
        if (!o->k_cache || !o->v_cache) {
            ac_outputs_free(o);
            return ac_fail(err, AC_ERR_NOMEM, "outputs: out of memory for caches");
        }
        for (int64_t i = 0; i < o->kv_elems; i++) o->k_cache[i] = o->v_cache[i] = POISON_HALF;
    }
    return AC_OK;
}
