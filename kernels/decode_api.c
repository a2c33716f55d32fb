/* Host side of paged decode shared by the GPU launch and the CPU model:
 * argument validation (nothing runs on bad input), the split count and
 * workspace size, params from a case, and the CPU backend entry. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ac_big.h"
#include "ac_validate.h"
#include "decode.h"

/* kernel_dims: the kernel's head dims are checked where the head dim is
   (the order of the checks decides which error a bad call gets first). */
static ac_status validate(const ac_decode_params *p, int kernel_dims, ac_error *err)
{
    if (!p) return ac_fail(err, AC_ERR_NULL, "params is NULL");
    if ((int)p->dtype < 0 || p->dtype >= AC_DTYPE_COUNT)
        return ac_fail(err, AC_ERR_UNSUPPORTED, "dtype = %d: must be bf16 or fp16", (int)p->dtype);
    if (p->batch < 0 || p->batch > AC_MAX_BATCH)
        return ac_fail(err, AC_ERR_SHAPE, "batch = %d: must be in [0, %d]", p->batch, AC_MAX_BATCH);
    ac_status st = ac_validate_heads(p->heads_q, p->heads_kv, p->head_dim, err);
    if (!st && kernel_dims) st = ac_decode_validate_kernel(p, err);
    if (st) return st;
    st = ac_validate_kv_args(p->head_dim_v, p->kv_format, p->n_kv_scales, p->k_scales, p->v_scales,
                             p->k_scales_host, p->v_scales_host, p->heads_kv, err);
    if (st) return st;
    if (p->causal < 0 || p->causal >= AC_CAUSAL_COUNT)
        return ac_fail(err, AC_ERR_UNSUPPORTED, "causal = %d: unknown", p->causal);
    if (p->scale_given && !isfinite(p->scale))
        return ac_fail(err, AC_ERR_SHAPE, "scale = %g: must be finite", (double)p->scale);
    if (p->num_splits < 0 || p->num_splits > AC_MAX_SPLITS)
        return ac_fail(err, AC_ERR_SHAPE, "num_splits = %d: must be 0 (auto) or in [1, %d]", p->num_splits,
                       AC_MAX_SPLITS);
    if (p->num_sms < 0) return ac_fail(err, AC_ERR_SHAPE, "num_sms = %d: must be >= 0", p->num_sms);
    if (!p->cu_seqlens_q_host) return ac_fail(err, AC_ERR_NULL, "cu_seqlens_q_host is NULL");
    if (!p->seqlens_k_host) return ac_fail(err, AC_ERR_NULL, "seqlens_k_host is NULL");
    if (!p->block_table_host) return ac_fail(err, AC_ERR_NULL, "block_table_host is NULL");
    if (p->total_q < 0 || p->total_q > INT32_MAX)
        return ac_fail(err, AC_ERR_SHAPE, "total_q = %lld: must be in [0, 2^31)", (long long)p->total_q);
    st = ac_validate_cu_seqlens("cu_seqlens_q", p->cu_seqlens_q_host, p->batch, p->total_q, err);
    if (st) return st;
    for (int32_t b = 0; b < p->batch; b++) {
        int32_t lq = p->cu_seqlens_q_host[b + 1] - p->cu_seqlens_q_host[b];
        if (lq < 1 || lq > AC_MAX_QUERIES_DECODE)
            return ac_fail(err, AC_ERR_SEQLENS, "cu_seqlens_q[%d..%d]: sequence %d has %d queries, decode takes 1..%d",
                           b, b + 1, b, lq, AC_MAX_QUERIES_DECODE);
    }
    st = ac_validate_paged(p->block_table_host, p->batch, p->max_blocks_per_seq, p->seqlens_k_host,
                           p->block_size, p->num_blocks, err);
    if (st) return st;
    st = ac_decode_validate_features(p, err);
    if (st) return st;
    struct { const void *ptr; const char *name; } need[] = {
        {p->q, "q"}, {p->k_cache, "k_cache"}, {p->v_cache, "v_cache"}, {p->cu_seqlens_q, "cu_seqlens_q"},
        {p->seqlens_k, "seqlens_k"}, {p->block_table, "block_table"}, {p->o, "o"},
    };
    for (size_t i = 0; i < sizeof need / sizeof need[0]; i++)
        if (!need[i].ptr) return ac_fail(err, AC_ERR_NULL, "%s is NULL", need[i].name);
    /* 16-byte vector loads and stores of 8 elements. */
    struct { const void *ptr; const char *name; } vec[] = {
        {p->q, "q"}, {p->k_cache, "k_cache"}, {p->v_cache, "v_cache"}, {p->o, "o"}, {p->o_f32, "o_f32"},
    };
    for (size_t i = 0; i < sizeof vec / sizeof vec[0]; i++)
        if ((uintptr_t)vec[i].ptr % 16 != 0)
            return ac_fail(err, AC_ERR_UNSUPPORTED, "%s = %p: must be 16-byte aligned", vec[i].name, vec[i].ptr);
    /* One CTA per (sequence, kv head, split, row chunk): the grid is 1-D. */
    int32_t rows = ac_decode_rows_needed(p);
    int64_t chunks = ac_num_tiles(rows, ac_decode_cta_rows(rows, ac_decode_tile_dim(p->head_dim, ac_decode_dv(p))));
    /* Automatic splits resolve to ~2 waves of CTAs, or to 1 when the batch
       alone fills the device: bound the grid with the count that will run. */
    int64_t splits = p->num_splits ? p->num_splits : ac_decode_splits(p, p->num_sms);
    if ((int64_t)p->batch * p->heads_kv * chunks * splits > INT32_MAX)
        return ac_fail(err, AC_ERR_SHAPE, "batch * heads_kv * row chunks * num_splits = %d * %d * %lld * %lld: "
                       "must be < 2^31 (one CTA each)", p->batch, p->heads_kv, (long long)chunks,
                       (long long)splits);
    return AC_OK;
}

ac_status ac_decode_validate(const ac_decode_params *p, ac_error *err)
{
    return validate(p, 1, err);
}

ac_status ac_decode_validate_any_dims(const ac_decode_params *p, ac_error *err)
{
    return validate(p, 0, err);
}

ac_status ac_validate_kv_args(int32_t head_dim_v, ac_kv_format kv_format, int32_t n_kv_scales, const float *k_scales,
                              const float *v_scales, const float *k_scales_host, const float *v_scales_host,
                              int32_t heads_kv, ac_error *err)
{
    if (head_dim_v < 0 || head_dim_v > AC_MAX_HEAD_DIM)
        return ac_fail(err, AC_ERR_SHAPE, "head_dim_v = %d: must be 0 (= head_dim) or in [1, %d]", head_dim_v,
                       AC_MAX_HEAD_DIM);
    if ((int)kv_format < 0 || kv_format >= AC_KV_FORMAT_COUNT)
        return ac_fail(err, AC_ERR_UNSUPPORTED, "kv_format = %d: unknown", (int)kv_format);
    /* A scale array and its host copy come together; the values are checked on the host copy. */
    if (n_kv_scales > 0 && (!k_scales || !v_scales))
        return ac_fail(err, AC_ERR_NULL, "k_scales / v_scales is NULL but n_kv_scales = %d", n_kv_scales);
    return ac_validate_kv_scales(kv_format != AC_KV_AS_DTYPE, n_kv_scales, k_scales_host, v_scales_host, heads_kv,
                                 err);
}

ac_status ac_decode_validate_kernel(const ac_decode_params *p, ac_error *err)
{
    /* A lane holds up to AC_DECODE_MAX_CHUNKS chunks of 8 elements (one
       vector load each); 32 lanes of 3 chunks cover 768. */
    const int32_t max_d = 32 * 8 * AC_DECODE_MAX_CHUNKS;
    if (p->head_dim % 8 != 0 || p->head_dim > max_d)
        return ac_fail(err, AC_ERR_UNSUPPORTED, "head_dim = %d: decode supports multiples of 8 in [8, %d]",
                       p->head_dim, max_d);
    const int32_t dv = ac_decode_dv(p);
    if (dv % 8 != 0 || dv > max_d)
        return ac_fail(err, AC_ERR_UNSUPPORTED, "head_dim_v = %d: decode supports multiples of 8 in [8, %d]", dv,
                       max_d);
    return AC_OK;
}

ac_status ac_decode_validate_features(const ac_decode_params *p, ac_error *err)
{
    if (p->window != 0 && p->window != 1)
        return ac_fail(err, AC_ERR_SHAPE, "window = %d: must be 0 (none) or 1", p->window);
    /* The per-head arrays: the data pointer and its host copy come together. */
    struct { const float *ptr, *host; const char *name; } arr[] = {
        {p->alibi_slopes, p->alibi_slopes_host, "alibi_slopes"},
        {p->sinks, p->sinks_host, "sinks"},
    };
    for (size_t k = 0; k < sizeof arr / sizeof arr[0]; k++) {
        if (!arr[k].ptr && !arr[k].host) continue;
        if (!arr[k].ptr) return ac_fail(err, AC_ERR_NULL, "%s is NULL but %s_host is set", arr[k].name, arr[k].name);
        if (!arr[k].host) return ac_fail(err, AC_ERR_NULL, "%s_host is NULL: %s needs its host copy", arr[k].name,
                                         arr[k].name);
    }
    return ac_validate_features(p->window ? p->window_left : -1, p->window ? p->window_right : -1, p->softcap,
                                p->alibi_slopes_host, p->sinks_host, p->heads_q, err);
}

int32_t ac_decode_rows_needed(const ac_decode_params *p)
{
    int32_t max_lq = 1;
    for (int32_t b = 0; b < p->batch; b++) {
        int32_t lq = p->cu_seqlens_q_host[b + 1] - p->cu_seqlens_q_host[b];
        if (lq > max_lq) max_lq = lq;
    }
    return max_lq * (p->heads_q / p->heads_kv);
}

int32_t ac_decode_splits(const ac_decode_params *p, int32_t num_sms)
{
    if (p->num_splits > 0) return p->num_splits;
    /* CTAs of one split: (sequence, kv head, row chunk). */
    int32_t rows = ac_decode_rows_needed(p), max_k = 0;
    const int32_t tile = ac_decode_tile_dim(p->head_dim, ac_decode_dv(p));
    int64_t base = (int64_t)p->batch * p->heads_kv * ac_num_tiles(rows, ac_decode_cta_rows(rows, tile));
    /* With a window only the keys its splits cut count (ac_decode_seq_keys). */
    for (int32_t b = 0; b < p->batch; b++) {
        int32_t r0, r1;
        ac_decode_seq_keys(p->causal, p->window, p->window_left, p->window_right,
                           p->cu_seqlens_q_host[b + 1] - p->cu_seqlens_q_host[b], p->seqlens_k_host[b],
                           p->block_size, 0, &r0, &r1);
        if (r1 - r0 > max_k) max_k = r1 - r0;
    }
    return ac_decode_auto_splits(num_sms > 0 ? num_sms : AC_DECODE_NOMINAL_SMS, base, max_k, p->block_size);
}

size_t ac_decode_workspace_bytes(const ac_decode_params *p, int32_t num_splits)
{
    if (num_splits <= 1) return 0;
    size_t rows = (size_t)p->total_q * (size_t)p->heads_q;
    return rows * (size_t)num_splits * ((size_t)ac_decode_dv(p) + 1) * sizeof(float);
}

ac_status ac_decode_params_from_case(const ac_case *c, const ac_tensors *t, ac_outputs *o,
                                     ac_decode_params *p, ac_error *err)
{
    if (!c || !t || !p) return ac_fail(err, AC_ERR_NULL, "case, tensors or params is NULL");
    if (c->op != AC_OP_DECODE) return ac_fail(err, AC_ERR_UNSUPPORTED, "op = %s: not a decode case", ac_op_name(c->op));
    memset(p, 0, sizeof *p);
    if (c->mask != AC_MASK_NONE)
        return ac_fail(err, AC_ERR_UNSUPPORTED, "mask = %s: decode takes no explicit mask", ac_mask_name(c->mask));
    if (!c->paged) return ac_fail(err, AC_ERR_UNSUPPORTED, "paged = 0: decode needs a paged cache");
    if (!t->q || !t->k || !t->v) return ac_fail(err, AC_ERR_NULL, "tensors q / k / v missing");
    int32_t *cu = malloc(sizeof(int32_t) * ((size_t)c->batch + 1));
    if (!cu) return ac_fail(err, AC_ERR_NOMEM, "cu_seqlens_q: out of memory");
    cu[0] = 0;
    for (int32_t b = 0; b < c->batch; b++) cu[b + 1] = cu[b] + c->seqlen_q[b];
    *p = (ac_decode_params){
        .dtype = c->dtype, .batch = c->batch, .heads_q = c->heads_q, .heads_kv = c->heads_kv,
        .head_dim = c->head_dim, .causal = c->causal, .scale_given = c->scale_given, .scale = c->scale,
        .num_splits = c->num_splits, .num_sms = 0, .num_blocks = c->num_blocks, .block_size = c->block_size,
        .max_blocks_per_seq = c->max_blocks_per_seq, .total_q = cu[c->batch],
        .q = t->q, .k_cache = t->k, .v_cache = t->v, .cu_seqlens_q = cu, .seqlens_k = c->seqlen_k,
        .block_table = c->block_table, .o = o ? o->o : NULL,
        /* a sparse case has no fp32 output (docs/DATA.md, "Sparse cases") */
        .o_f32 = o && !ac_case_is_sparse(c) ? o->o_f32 : NULL,
        .lse = o ? o->lse : NULL,
        .cu_seqlens_q_host = cu, .seqlens_k_host = c->seqlen_k, .block_table_host = c->block_table,
        .cu_seqlens_q_owned = cu,
        .window = c->window_left != -1 || c->window_right != -1,
        .window_left = c->window_left, .window_right = c->window_right, .softcap = c->softcap,
        .alibi_slopes = c->n_alibi ? c->alibi_slopes : NULL, .sinks = c->n_sinks ? c->sinks : NULL,
        .alibi_slopes_host = c->n_alibi ? c->alibi_slopes : NULL, .sinks_host = c->n_sinks ? c->sinks : NULL,
        .head_dim_v = c->head_dim_v, .kv_format = c->kv_format, .n_kv_scales = c->n_kv_scales,
        .k_scales = c->n_kv_scales ? c->k_scales : NULL, .v_scales = c->n_kv_scales ? c->v_scales : NULL,
        .k_scales_host = c->n_kv_scales ? c->k_scales : NULL, .v_scales_host = c->n_kv_scales ? c->v_scales : NULL,
    };
    /* One entry per query head (ac_case_validate_features); a mismatch here
       would read past the arrays. */
    if ((c->n_alibi && c->n_alibi != c->heads_q) || (c->n_sinks && c->n_sinks != c->heads_q)) {
        free(cu);
        memset(p, 0, sizeof *p);
        return ac_fail(err, AC_ERR_SHAPE, "n_alibi = %d, n_sinks = %d: each must be 0 or heads_q = %d", c->n_alibi,
                       c->n_sinks, c->heads_q);
    }
    return AC_OK;
}

ac_status ac_decode_check_pool(const ac_case *c, const ac_tensors *t, ac_error *err)
{
    const int64_t slots = (int64_t)c->num_blocks * c->block_size * c->heads_kv;
    const int64_t need_k = slots * c->head_dim, need_v = slots * ac_case_dv(c);
    const int64_t v_elems = ac_tensors_v_elems(c, t);
    if (t->kv_elems < need_k)
        return ac_fail(err, AC_ERR_SHAPE, "kv_elems = %lld: the paged K pool needs %lld", (long long)t->kv_elems,
                       (long long)need_k);
    if (v_elems < need_v)
        return ac_fail(err, AC_ERR_SHAPE, "v_elems = %lld: the paged V pool needs %lld (D_v = %d)",
                       (long long)v_elems, (long long)need_v, ac_case_dv(c));
    return AC_OK;
}

void ac_decode_params_free(ac_decode_params *p)
{
    if (!p) return;
    free(p->cu_seqlens_q_owned);
    p->cu_seqlens_q_owned = NULL;
}

ac_status ac_model_decode(const ac_case *c, const ac_tensors *t, const ac_run_opts *o, ac_outputs *out,
                          ac_error *err)
{
    ac_decode_params p;
    ac_status st = ac_decode_params_from_case(c, t, out, &p, err);
    if (st) return st;
    /* The arguments first, then whether the tensors hold the pool they
       describe. The model takes head dims past the kernel's 768 (up to AC_MAX_HEAD_DIM). */
    st = ac_decode_validate_any_dims(&p, err);
    if (!st) st = ac_decode_check_pool(c, t, err);
    if (!st) st = ac_decode_cpu_any_dims(&p, o ? o->bug : AC_BUG_NONE, err);
    ac_decode_params_free(&p);
    return st;
}
