/* Host side of prefill shared by the GPU launch and the CPU model: argument
 * validation (nothing runs on bad input), params from a case, and the CPU
 * backend entry. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "ac_index.h"
#include "ac_numfmt.h"
#include "ac_validate.h"
#include "prefill.h"

float ac_prefill_scale(const ac_prefill_params *p)
{
    return p->scale_given ? p->scale : 1.0f / sqrtf((float)p->head_dim);
}

#define LOG2E_F 1.4426950408889634f

uint32_t ac_prefill_features(const ac_prefill_params *p)
{
    return (p->has_window && (p->window_left != -1 || p->window_right != -1) ? AC_FEAT_WINDOW : 0u) |
           (p->softcap != 0.0f ? AC_FEAT_SOFTCAP : 0u) | (p->h_alibi_slopes ? AC_FEAT_ALIBI : 0u) |
           (p->h_sinks ? AC_FEAT_SINKS : 0u) | (p->kv_format != AC_KV_AS_DTYPE ? AC_FEAT_FP8_KV : 0u) |
           (p->head_dim_v != 0 && p->head_dim_v != p->head_dim ? AC_FEAT_HEAD_DIM_V : 0u);
}

void ac_prefill_softcap_factors(float scale, float softcap, float *cap_in, float *cap_out)
{
    *cap_in = scale / softcap;
    *cap_out = softcap * LOG2E_F;
}

/* The features' arguments: window sides >= -1, softcap finite and >= 0, one
   finite slope and one sink (finite or -inf) per query head; on the device
   path the d_* copies must be there too. */
static ac_status validate_features(const ac_prefill_params *p, int for_device, ac_error *err)
{
    ac_status st = ac_validate_features(p->has_window ? p->window_left : -1, p->has_window ? p->window_right : -1,
                                        p->softcap, p->h_alibi_slopes, p->h_sinks, p->heads_q, err);
    if (st) return st;
    if (!p->h_alibi_slopes && p->d_alibi_slopes)
        return ac_fail(err, AC_ERR_NULL, "h_alibi_slopes is NULL but d_alibi_slopes is set (validation needs the host copy)");
    if (!p->h_sinks && p->d_sinks)
        return ac_fail(err, AC_ERR_NULL, "h_sinks is NULL but d_sinks is set (validation needs the host copy)");
    if (for_device && p->h_alibi_slopes && !p->d_alibi_slopes)
        return ac_fail(err, AC_ERR_NULL, "d_alibi_slopes is NULL (h_alibi_slopes is set)");
    if (for_device && p->h_sinks && !p->d_sinks)
        return ac_fail(err, AC_ERR_NULL, "d_sinks is NULL (h_sinks is set)");
    return AC_OK;
}

/* The KV format and its scales: a known format, scales only with FP8 (1 or
   heads_kv of them, each finite in [2^-64, 2^64], named with its index);
   the device copies of the scales come with the host ones. */
static ac_status validate_kv(const ac_prefill_params *p, int for_device, ac_error *err)
{
    if ((int)p->kv_format < 0 || p->kv_format >= AC_KV_FORMAT_COUNT)
        return ac_fail(err, AC_ERR_SHAPE, "kv_format = %d: unknown format", (int)p->kv_format);
    if (p->n_kv_scales < 0)
        return ac_fail(err, AC_ERR_SHAPE, "n_kv_scales = %d: must be >= 0", p->n_kv_scales);
    ac_status st = ac_validate_kv_scales(p->kv_format != AC_KV_AS_DTYPE, p->n_kv_scales, p->h_k_scales,
                                        p->h_v_scales, p->heads_kv, err);
    if (st) return st;
    if (p->n_kv_scales == 0 && (p->d_k_scales || p->d_v_scales))
        return ac_fail(err, AC_ERR_SHAPE, "d_k_scales / d_v_scales set but n_kv_scales = 0");
    if (for_device && p->n_kv_scales > 0 && (!p->d_k_scales || !p->d_v_scales))
        return ac_fail(err, AC_ERR_NULL, "%s is NULL (n_kv_scales = %d)", p->d_k_scales ? "d_v_scales" : "d_k_scales",
                       p->n_kv_scales);
    return AC_OK;
}

ac_status ac_prefill_kernel_dims(const ac_prefill_params *p, ac_error *err)
{
    if (!AC_PREFILL_HEAD_DIM_OK(p->head_dim))
        return ac_fail(err, AC_ERR_UNSUPPORTED, "head_dim = %d: must be a multiple of 8 in [8, %d]",
                       p->head_dim, AC_PREFILL_MAX_HEAD_DIM);
    if (!AC_PREFILL_HEAD_DIM_OK(AC_PREFILL_DV(p)))
        return ac_fail(err, AC_ERR_UNSUPPORTED, "head_dim_v = %d: must be a multiple of 8 in [8, %d]",
                       p->head_dim_v, AC_PREFILL_MAX_HEAD_DIM);
    return AC_OK;
}

/* A data pointer may be NULL only when its tensor has no elements. */
static ac_status need_ptr(const void *ptr, int64_t elems, const char *name, ac_error *err)
{
    if (!ptr && elems > 0) return ac_fail(err, AC_ERR_NULL, "%s is NULL (%lld elements)", name, (long long)elems);
    return AC_OK;
}

static ac_status need_aligned(const void *ptr, const char *name, ac_error *err)
{
    if (ptr && ((uintptr_t)ptr & 15u))
        return ac_fail(err, AC_ERR_UNSUPPORTED, "%s = %p: must be 16-byte aligned (cp.async chunks)", name, ptr);
    return AC_OK;
}

ac_status ac_prefill_validate(const ac_prefill_params *p, int for_device, ac_error *err)
{
    return ac_prefill_check(p, for_device, 1, err);
}

ac_status ac_prefill_check(const ac_prefill_params *p, int for_device, int kernel_dims, ac_error *err)
{
    ac_status st;
    if (!p) return ac_fail(err, AC_ERR_NULL, "params is NULL");
    if (p->dtype != AC_BF16 && p->dtype != AC_FP16)
        return ac_fail(err, AC_ERR_UNSUPPORTED, "dtype = %d: must be bf16 or fp16", (int)p->dtype);
    if ((st = ac_validate_heads(p->heads_q, p->heads_kv, p->head_dim, err))) return st;
    if (p->head_dim_v < 0 || p->head_dim_v > AC_MAX_HEAD_DIM)
        return ac_fail(err, AC_ERR_SHAPE, "head_dim_v = %d: must be 0 (= head_dim) or in [1, %d]", p->head_dim_v,
                       AC_MAX_HEAD_DIM);
    if ((for_device || kernel_dims) && (st = ac_prefill_kernel_dims(p, err))) return st;
    if (p->batch < 0 || p->batch > AC_PREFILL_MAX_BATCH)
        return ac_fail(err, p->batch < 0 ? AC_ERR_SHAPE : AC_ERR_UNSUPPORTED,
                       "batch = %d: must be in [0, %d]", p->batch, AC_PREFILL_MAX_BATCH);
    if ((int)p->causal < 0 || p->causal >= AC_CAUSAL_COUNT)
        return ac_fail(err, AC_ERR_SHAPE, "causal = %d: unknown mode", (int)p->causal);
    if ((int)p->mask_kind < 0 || p->mask_kind >= AC_MASK_COUNT)
        return ac_fail(err, AC_ERR_SHAPE, "mask_kind = %d: unknown kind", (int)p->mask_kind);
    if (p->scale_given && !isfinite(p->scale))
        return ac_fail(err, AC_ERR_SHAPE, "scale = %g: must be finite", (double)p->scale);
    if ((st = validate_features(p, for_device, err))) return st;
    if ((st = validate_kv(p, for_device, err))) return st;

    /* Queries. */
    if (p->total_q < 0 || p->total_q > INT32_MAX)
        return ac_fail(err, AC_ERR_SHAPE, "total_q = %lld: must be in [0, 2^31)", (long long)p->total_q);
    if ((st = ac_validate_cu_seqlens("h_cu_seqlens_q", p->h_cu_seqlens_q, p->batch, p->total_q, err))) return st;

    /* Keys: contiguous or paged. */
    const int32_t dv = AC_PREFILL_DV(p);
    int64_t kv_elems, v_elems;
    if (!p->paged) {
        if (p->total_k < 0 || p->total_k > INT32_MAX)
            return ac_fail(err, AC_ERR_SHAPE, "total_k = %lld: must be in [0, 2^31)", (long long)p->total_k);
        if ((st = ac_validate_cu_seqlens("h_cu_seqlens_k", p->h_cu_seqlens_k, p->batch, p->total_k, err))) return st;
        if (p->h_seqlens_k)
            for (int32_t b = 0; b < p->batch; b++) {
                int32_t lk = p->h_cu_seqlens_k[b + 1] - p->h_cu_seqlens_k[b];
                if (p->h_seqlens_k[b] != lk)
                    return ac_fail(err, AC_ERR_SEQLENS,
                                   "h_seqlens_k[%d] = %d: must equal h_cu_seqlens_k[%d] - h_cu_seqlens_k[%d] = %d",
                                   b, p->h_seqlens_k[b], b + 1, b, lk);
            }
        kv_elems = p->total_k * p->heads_kv * p->head_dim;
        v_elems = p->total_k * p->heads_kv * dv;
    } else {
        if ((st = ac_validate_paged(p->h_block_table, p->batch, p->max_blocks_per_seq, p->h_seqlens_k,
                                    p->block_size, p->num_blocks, err)))
            return st;
        kv_elems = (int64_t)p->num_blocks * p->block_size * p->heads_kv * p->head_dim;
        v_elems = (int64_t)p->num_blocks * p->block_size * p->heads_kv * dv;
    }

    /* Explicit mask: [Hm, Lq_b, Lk_b] of every sequence inside the buffer. */
    if (p->mask_kind != AC_MASK_NONE) {
        const void *m = p->mask_kind == AC_MASK_BOOL ? (const void *)p->mask_bool : (const void *)p->mask_bias;
        const char *mname = p->mask_kind == AC_MASK_BOOL ? "mask_bool" : "mask_bias";
        if (p->mask_elems < 0)
            return ac_fail(err, AC_ERR_SHAPE, "mask_elems = %lld: must be >= 0", (long long)p->mask_elems);
        if ((st = need_ptr(m, p->mask_elems, mname, err))) return st;
        if (p->batch > 0 && !p->h_mask_off) return ac_fail(err, AC_ERR_NULL, "h_mask_off is NULL");
        int64_t hm = p->mask_per_head ? p->heads_q : 1;
        for (int32_t b = 0; b < p->batch; b++) {
            int64_t lq = p->h_cu_seqlens_q[b + 1] - p->h_cu_seqlens_q[b];
            int64_t lk = p->paged ? p->h_seqlens_k[b] : p->h_cu_seqlens_k[b + 1] - p->h_cu_seqlens_k[b];
            int64_t need = hm * lq * lk;
            int64_t off = p->h_mask_off[b];
            if (off < 0 || off > p->mask_elems || need > p->mask_elems - off)
                return ac_fail(err, AC_ERR_SHAPE,
                               "h_mask_off[%d] = %lld: the [%lld, %lld, %lld] mask must lie in [0, mask_elems = %lld)",
                               b, (long long)off, (long long)hm, (long long)lq, (long long)lk,
                               (long long)p->mask_elems);
        }
    }

    /* Data pointers. */
    int64_t q_elems = p->total_q * p->heads_q * p->head_dim, o_elems = p->total_q * p->heads_q * dv;
    if ((st = need_ptr(p->q, q_elems, "q", err))) return st;
    if ((st = need_ptr(p->k, kv_elems, "k", err))) return st;
    if ((st = need_ptr(p->v, v_elems, "v", err))) return st;
    if ((st = need_ptr(p->out, o_elems, "out", err))) return st;

    if (for_device && p->batch > 0) {
        if (!p->d_cu_seqlens_q) return ac_fail(err, AC_ERR_NULL, "d_cu_seqlens_q is NULL");
        if (!p->paged && !p->d_cu_seqlens_k) return ac_fail(err, AC_ERR_NULL, "d_cu_seqlens_k is NULL");
        if (p->paged && !p->d_block_table) return ac_fail(err, AC_ERR_NULL, "d_block_table is NULL");
        if (p->paged && !p->d_seqlens_k) return ac_fail(err, AC_ERR_NULL, "d_seqlens_k is NULL");
        if (p->mask_kind != AC_MASK_NONE && !p->d_mask_off) return ac_fail(err, AC_ERR_NULL, "d_mask_off is NULL");
        if ((st = need_aligned(p->q, "q", err)) || (st = need_aligned(p->k, "k", err)) ||
            (st = need_aligned(p->v, "v", err)) || (st = need_aligned(p->out, "out", err)))
            return st;
    }
    return AC_OK;
}

ac_status ac_prefill_params_from_case(const ac_case *c, const ac_tensors *t, ac_outputs *o,
                                      ac_prefill_params *p, ac_error *err)
{
    if (!c || !t || !p) return ac_fail(err, AC_ERR_NULL, "case, tensors or params is NULL");
    if (c->op != AC_OP_PREFILL) return ac_fail(err, AC_ERR_UNSUPPORTED, "op = %s: not a prefill case", ac_op_name(c->op));
    memset(p, 0, sizeof *p);
    p->dtype = c->dtype;
    p->batch = c->batch;
    p->heads_q = c->heads_q;
    p->heads_kv = c->heads_kv;
    p->head_dim = c->head_dim;
    p->head_dim_v = c->head_dim_v;
    p->total_q = t->total_q;
    p->q = t->q;
    p->k = t->k;
    p->v = t->v;
    p->out = o ? o->o : NULL;
    p->lse = o ? o->lse : NULL;
    p->h_cu_seqlens_q = t->cu_seqlens_q;
    p->paged = c->paged;
    if (c->paged) {
        p->h_block_table = c->block_table;
        p->h_seqlens_k = c->seqlen_k;
        p->block_size = c->block_size;
        p->num_blocks = c->num_blocks;
        p->max_blocks_per_seq = c->max_blocks_per_seq;
    } else {
        p->h_cu_seqlens_k = t->cu_seqlens_k;
        p->total_k = t->total_k;
        p->h_seqlens_k = c->seqlen_k;
    }
    p->scale_given = c->scale_given;
    p->scale = c->scale;
    p->causal = c->causal;
    p->mask_kind = c->mask;
    p->mask_per_head = c->mask_per_head;
    if (c->mask != AC_MASK_NONE) {
        p->mask_bool = t->mask_bool;
        p->mask_bias = t->mask_bias;
        p->h_mask_off = t->mask_off;
        p->mask_elems = t->mask_off ? t->mask_off[c->batch > 0 ? c->batch : 0] : 0;
    }
    /* The params read heads_q entries of each per-head array. */
    if (c->n_alibi != 0 && (c->n_alibi != c->heads_q || !c->alibi_slopes))
        return ac_fail(err, AC_ERR_SHAPE, "alibi_slopes: %d entries, heads_q = %d needs one per query head",
                       c->n_alibi, c->heads_q);
    if (c->n_sinks != 0 && (c->n_sinks != c->heads_q || !c->sinks))
        return ac_fail(err, AC_ERR_SHAPE, "sinks: %d entries, heads_q = %d needs one per query head", c->n_sinks,
                       c->heads_q);
    p->has_window = c->window_left != -1 || c->window_right != -1;
    p->window_left = c->window_left;
    p->window_right = c->window_right;
    p->softcap = c->softcap;
    p->h_alibi_slopes = c->n_alibi ? c->alibi_slopes : NULL;
    p->h_sinks = c->n_sinks ? c->sinks : NULL;
    p->kv_format = c->kv_format;
    p->n_kv_scales = c->n_kv_scales;
    p->h_k_scales = c->n_kv_scales ? c->k_scales : NULL;
    p->h_v_scales = c->n_kv_scales ? c->v_scales : NULL;
    return AC_OK;
}

ac_status ac_model_prefill(const ac_case *c, const ac_tensors *t, const ac_run_opts *o, ac_outputs *out,
                           ac_error *err)
{
    ac_prefill_params p;
    if (!out) return ac_fail(err, AC_ERR_NULL, "outputs is NULL");
    ac_status st = ac_prefill_params_from_case(c, t, out, &p, err);
    if (st) return st;
    /* The tensors are the case's own, sized by its head dims: the model takes
       any (576/512 included) where the kernel stops at 256. */
    st = ac_prefill_cpu_any_dims(&p, o ? o->bug : AC_BUG_NONE, err);
    if (st) return st;
    if (o && o->out_f32 && out->o_f32) {
        int64_t n = t->total_q * c->heads_q * ac_case_dv(c);
        for (int64_t i = 0; i < n; i++) out->o_f32[i] = ac_half_to_f32(c->dtype, out->o[i]);
    }
    return AC_OK;
}
