/* Host side of the KV store shared by the GPU launch and the CPU model:
 * argument validation (nothing runs on bad input), params from a case, and
 * the CPU backend entry. */
#include <stdlib.h>
#include <string.h>

#include "ac_big.h"
#include "ac_validate.h"
#include "decode.h" /* ac_validate_kv_args */
#include "store.h"

ac_status ac_store_validate(const ac_store_params *p, ac_error *err)
{
    if (!p) return ac_fail(err, AC_ERR_NULL, "params is NULL");
    if ((int)p->dtype < 0 || p->dtype >= AC_DTYPE_COUNT)
        return ac_fail(err, AC_ERR_UNSUPPORTED, "dtype = %d: must be bf16 or fp16", (int)p->dtype);
    if (p->num_tokens < 0) return ac_fail(err, AC_ERR_SHAPE, "num_tokens = %d: must be >= 0", p->num_tokens);
    if (p->heads_kv <= 0 || p->heads_kv > AC_MAX_HEADS)
        return ac_fail(err, AC_ERR_SHAPE, "heads_kv = %d: must be in [1, %d]", p->heads_kv, AC_MAX_HEADS);
    if (p->head_dim <= 0 || p->head_dim > AC_MAX_HEAD_DIM)
        return ac_fail(err, AC_ERR_SHAPE, "head_dim = %d: must be in [1, %d]", p->head_dim, AC_MAX_HEAD_DIM);
    ac_status st = ac_validate_kv_args(p->head_dim_v, p->kv_format, p->n_kv_scales, p->k_scales, p->v_scales,
                                       p->k_scales_host, p->v_scales_host, p->heads_kv, err);
    if (st) return st;
    if (p->block_size <= 0) return ac_fail(err, AC_ERR_SHAPE, "block_size = %d: must be > 0", p->block_size);
    if (p->num_blocks <= 0) return ac_fail(err, AC_ERR_SHAPE, "num_blocks = %d: must be > 0", p->num_blocks);
    if (p->num_tokens == 0) return AC_OK;
    if (!p->slot_mapping_host) return ac_fail(err, AC_ERR_NULL, "slot_mapping_host is NULL");
    struct { const void *ptr; const char *name; } need[] = {
        {p->k_new, "k_new"}, {p->v_new, "v_new"}, {p->k_cache, "k_cache"}, {p->v_cache, "v_cache"},
        {p->slot_mapping, "slot_mapping"},
    };
    for (size_t i = 0; i < sizeof need / sizeof need[0]; i++)
        if (!need[i].ptr) return ac_fail(err, AC_ERR_NULL, "%s is NULL", need[i].name);
    int64_t num_slots = (int64_t)p->num_blocks * p->block_size;
    return ac_validate_slots(p->slot_mapping_i64 ? NULL : (const int32_t *)p->slot_mapping_host,
                             p->slot_mapping_i64 ? (const int64_t *)p->slot_mapping_host : NULL,
                             p->num_tokens, num_slots, err);
}

ac_status ac_store_params_from_case(const ac_case *c, const ac_tensors *t, ac_outputs *o, ac_store_params *p,
                                    ac_error *err)
{
    if (!c || !t || !o || !p) return ac_fail(err, AC_ERR_NULL, "case, tensors, outputs or params is NULL");
    if (c->op != AC_OP_STORE) return ac_fail(err, AC_ERR_UNSUPPORTED, "op = %s: not a store case", ac_op_name(c->op));
    memset(p, 0, sizeof *p);
    if (!t->k || !t->v) return ac_fail(err, AC_ERR_NULL, "tensors k / v (the cache before the store) missing");
    const int64_t pool_rows = (int64_t)c->num_blocks * c->block_size * c->heads_kv;
    const int64_t need = pool_rows * c->head_dim, need_v = pool_rows * ac_case_dv(c);
    const int64_t tv = ac_tensors_v_elems(c, t), ov = ac_outputs_v_elems(c, o);
    if (t->kv_elems < need || o->kv_elems < need)
        return ac_fail(err, AC_ERR_SHAPE, "kv_elems = %lld / %lld: the paged pool needs %lld",
                       (long long)t->kv_elems, (long long)o->kv_elems, (long long)need);
    if (tv < need_v || ov < need_v)
        return ac_fail(err, AC_ERR_SHAPE, "v_elems = %lld / %lld: the paged V pool needs %lld (D_v = %d)",
                       (long long)tv, (long long)ov, (long long)need_v, ac_case_dv(c));
    /* The case carries int64 slots; the int32 form is what the kernel gets when
       slot_mapping_i64 == 0. */
    const void *slots = c->slot_mapping;
    int32_t *s32 = NULL;
    if (!c->slot_mapping_i64 && c->num_tokens > 0) {
        s32 = malloc(sizeof(int32_t) * (size_t)c->num_tokens);
        if (!s32) return ac_fail(err, AC_ERR_NOMEM, "slot_mapping: out of memory");
        for (int32_t i = 0; i < c->num_tokens; i++) {
            if (c->slot_mapping[i] < INT32_MIN || c->slot_mapping[i] > INT32_MAX) {
                free(s32);
                return ac_fail(err, AC_ERR_SLOT, "slot_mapping[%d] = %lld: does not fit the int32 form", i,
                               (long long)c->slot_mapping[i]);
            }
            s32[i] = (int32_t)c->slot_mapping[i];
        }
        slots = s32;
    }
    *p = (ac_store_params){
        .dtype = c->dtype, .num_tokens = c->num_tokens, .heads_kv = c->heads_kv, .head_dim = c->head_dim,
        .num_blocks = c->num_blocks, .block_size = c->block_size, .k_new = t->k_new, .v_new = t->v_new,
        .k_cache = o->k_cache, .v_cache = o->v_cache, .slot_mapping = slots,
        .slot_mapping_i64 = c->slot_mapping_i64, .slot_mapping_host = slots, .slot_mapping_owned = s32,
        .head_dim_v = c->head_dim_v, .kv_format = c->kv_format, .n_kv_scales = c->n_kv_scales,
        .k_scales = c->n_kv_scales ? c->k_scales : NULL, .v_scales = c->n_kv_scales ? c->v_scales : NULL,
        .k_scales_host = c->n_kv_scales ? c->k_scales : NULL, .v_scales_host = c->n_kv_scales ? c->v_scales : NULL,
    };
    return AC_OK;
}

void ac_store_params_free(ac_store_params *p)
{
    if (!p) return;
    free(p->slot_mapping_owned);
    p->slot_mapping_owned = NULL;
}

ac_status ac_model_store(const ac_case *c, const ac_tensors *t, const ac_run_opts *o, ac_outputs *out,
                         ac_error *err)
{
    ac_store_params p;
    ac_status st = ac_store_params_from_case(c, t, out, &p, err);
    if (st) return st;
    /* Validate before copying the old cache in: a rejected store leaves out untouched. */
    st = ac_store_validate(&p, err);
    if (!st) {
        st = ac_case_copy_pool(c, out->k_cache, t->k, err);
        if (!st) st = ac_case_copy_pool_dim(c, out->v_cache, t->v, ac_case_dv(c), err);
        if (!st) st = ac_store_cpu(&p, o ? o->bug : AC_BUG_NONE, err);
    }
    ac_store_params_free(&p);
    return st;
}
