#include "ac_tensors.h"

#include <stdlib.h>
#include <string.h>

#include "ac_big.h"
#include "ac_numfmt.h"

void ac_store_rows(const ac_case *c, const ac_tensors *t, int32_t tok, uint16_t *k_row, uint16_t *v_row)
{
    const int32_t dv = ac_case_dv(c);
    const int64_t row = (int64_t)c->heads_kv * c->head_dim, row_v = (int64_t)c->heads_kv * dv;
    const uint16_t *k = t->k_new + tok * row, *v = t->v_new + tok * row_v;
    if (c->kv_format == AC_KV_AS_DTYPE) {
        memcpy(k_row, k, sizeof(uint16_t) * (size_t)row);
        memcpy(v_row, v, sizeof(uint16_t) * (size_t)row_v);
        return;
    }
    for (int64_t i = 0; i < row; i++)
        k_row[i] = ac_fp8_quantize(c->kv_format, ac_half_to_f32(c->dtype, k[i]), ac_case_k_scale(c, (int32_t)(i / c->head_dim)));
    for (int64_t i = 0; i < row_v; i++)
        v_row[i] = ac_fp8_quantize(c->kv_format, ac_half_to_f32(c->dtype, v[i]), ac_case_v_scale(c, (int32_t)(i / dv)));
}

void ac_tensors_free(ac_tensors *t)
{
    free(t->cu_seqlens_q);
    free(t->cu_seqlens_k);
    ac_big_free(t->q);
    ac_big_free(t->k);
    ac_big_free(t->v);
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
    ac_big_free(o->o);
    ac_big_free(o->o_f32);
    free(o->lse);
    ac_big_free(o->k_cache);
    ac_big_free(o->v_cache);
    memset(o, 0, sizeof *o);
}

/* Poison patterns: a quiet NaN with a recognisable payload, so an element no
   kernel wrote can never pass as a result. */
#define POISON_HALF 0x7fa5u
#define POISON_F32_BITS 0x7fc0dead

/* Poison the elements of one run of blocks of both caches. */
typedef struct poison_ctx { ac_outputs *o; int64_t per_k, per_v; } poison_ctx;
static int poison_run(int64_t first, int64_t count, void *ctx)
{
    poison_ctx *p = ctx;
    for (int64_t i = first * p->per_k; i < (first + count) * p->per_k; i++) p->o->k_cache[i] = POISON_HALF;
    for (int64_t i = first * p->per_v; i < (first + count) * p->per_v; i++) p->o->v_cache[i] = POISON_HALF;
    return 0;
}

ac_status ac_outputs_alloc(const ac_case *c, ac_outputs *o, ac_error *err)
{
    ac_outputs_free(o);
    /* A sparse case (docs/DATA.md) reserves what it does not touch: o_f32
       stays zero (no family judges a sparse case's fp32 output), and of the
       caches only the blocks the case touches are poisoned (the others read
       as zero before and after, on every side). */
    int sparse = ac_case_is_sparse(c);
    int64_t rows = ac_case_total_q(c) * c->heads_q;
    size_t n = (size_t)rows * (size_t)ac_case_dv(c);
    o->o = sparse ? ac_big_alloc(sizeof(uint16_t) * (n ? n : 1)) : malloc(sizeof(uint16_t) * (n ? n : 1));
    o->o_f32 = sparse ? ac_big_alloc(sizeof(float) * (n ? n : 1)) : malloc(sizeof(float) * (n ? n : 1));
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
        if (!sparse) o->o_f32[i] = fp;
    }
    for (int64_t r = 0; r < rows; r++) o->lse[r] = fp;
    if (ac_op_traits_of(c->op)->slots) { /* the caches after the store */
        int64_t slots = (int64_t)c->num_blocks * c->block_size;
        o->kv_elems = slots * c->heads_kv * c->head_dim;
        o->v_elems = slots * c->heads_kv * ac_case_dv(c);
        size_t bytes = sizeof(uint16_t) * (size_t)(o->kv_elems ? o->kv_elems : 1);
        size_t v_bytes = sizeof(uint16_t) * (size_t)(o->v_elems ? o->v_elems : 1);
        o->k_cache = sparse ? ac_big_alloc(bytes) : malloc(bytes);
        o->v_cache = sparse ? ac_big_alloc(v_bytes) : malloc(v_bytes);
        if (!o->k_cache || !o->v_cache) {
            ac_outputs_free(o);
            return ac_fail(err, AC_ERR_NOMEM, "outputs: out of memory for caches");
        }
        if (sparse) {
            int32_t *blocks;
            int64_t nb;
            ac_status st = ac_case_touched_blocks(c, &blocks, &nb, err);
            if (st) {
                ac_outputs_free(o);
                return st;
            }
            poison_ctx pc = {o, (int64_t)c->block_size * c->heads_kv * c->head_dim,
                             (int64_t)c->block_size * c->heads_kv * ac_case_dv(c)};
            ac_block_runs(blocks, nb, poison_run, &pc);
            free(blocks);
        } else {
            for (int64_t i = 0; i < o->kv_elems; i++) o->k_cache[i] = POISON_HALF;
            for (int64_t i = 0; i < o->v_elems; i++) o->v_cache[i] = POISON_HALF;
        }
    }
    return AC_OK;
}
