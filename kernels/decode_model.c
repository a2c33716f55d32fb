/* Paged decode: argument validation (shared with the CUDA host API), the split
 * count, and the CPU model of kernels/decode.cu.
 *
 * The model runs the kernel's algorithm in fp32 (docs/DECODE.md):
 *   - the keys [0, seqlen_k) of a sequence are cut by ac_split_range on block
 *     boundaries into num_splits splits;
 *   - inside a split, key p belongs to key lane (p - begin) % lanes
 *     (lanes = ac_decode_lanes(D)); each lane keeps an online softmax in base 2
 *     (logits pre-multiplied by scale * log2(e)), taking its keys kpt at a time
 *     with one rescale per step, like the kernel's registers;
 *   - the lanes of a warp merge in the kernel's butterfly order, then the warps
 *     in order; one split writes O and LSE directly, more splits write fp32
 *     partials that ac_attn_combine_model merges, as the kernel's combine does.
 * P stays fp32 in P.V (not rounded to the input dtype), in both. Remaining
 * differences to the kernel are the order of the D-term dot product, exp2f's
 * implementation and fma contraction: docs/DECODE.md bounds them. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ac_backend.h"
#include "ac_numfmt.h"
#include "ac_validate.h"
#include "attn_decode.h"

ac_status ac_attn_decode_validate(const ac_decode_params *p, ac_error *err)
{
    if (!p) return ac_fail(err, AC_ERR_NULL, "params is NULL");
    if ((int)p->dtype < 0 || p->dtype >= AC_DTYPE_COUNT)
        return ac_fail(err, AC_ERR_UNSUPPORTED, "dtype = %d: must be bf16 or fp16", (int)p->dtype);
    if (p->batch < 0 || p->batch > AC_MAX_BATCH)
        return ac_fail(err, AC_ERR_SHAPE, "batch = %d: must be in [0, %d]", p->batch, AC_MAX_BATCH);
    ac_status st = ac_validate_heads(p->heads_q, p->heads_kv, p->head_dim, err);
    if (st) return st;
    if (p->head_dim % 8 != 0 || p->head_dim > 256)
        return ac_fail(err, AC_ERR_UNSUPPORTED, "head_dim = %d: decode supports multiples of 8 in [8, 256]",
                       p->head_dim);
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
    int32_t max_lq = 1;
    for (int32_t b = 0; b < p->batch; b++) {
        int32_t lq = p->cu_seqlens_q_host[b + 1] - p->cu_seqlens_q_host[b];
        if (lq > max_lq) max_lq = lq;
    }
    int32_t rows = max_lq * (p->heads_q / p->heads_kv);
    int64_t chunks = (rows + AC_DECODE_MAX_ROWS - 1) / AC_DECODE_MAX_ROWS;
    /* Automatic splits resolve to ~2 waves of CTAs, or to 1 when the batch
       alone fills the device: bound the grid with the count that will run. */
    int64_t splits = p->num_splits ? p->num_splits : ac_attn_decode_splits(p, p->num_sms);
    if ((int64_t)p->batch * p->heads_kv * chunks * splits > INT32_MAX)
        return ac_fail(err, AC_ERR_SHAPE, "batch * heads_kv * row chunks * num_splits = %d * %d * %lld * %lld: "
                       "must be < 2^31 (one CTA each)", p->batch, p->heads_kv, (long long)chunks,
                       (long long)splits);
    return AC_OK;
}

/* Rows a sequence needs (max queries * group) -> CTAs per split. Assumes validated. */
static int64_t base_ctas(const ac_decode_params *p, int32_t *cta_rows)
{
    int32_t max_lq = 1;
    for (int32_t b = 0; b < p->batch; b++) {
        int32_t lq = p->cu_seqlens_q_host[b + 1] - p->cu_seqlens_q_host[b];
        if (lq > max_lq) max_lq = lq;
    }
    int32_t rows = max_lq * (p->heads_q / p->heads_kv);
    *cta_rows = ac_decode_cta_rows(rows);
    return (int64_t)p->batch * p->heads_kv * ac_num_tiles(rows, *cta_rows);
}

int32_t ac_attn_decode_splits(const ac_decode_params *p, int32_t num_sms)
{
    if (p->num_splits > 0) return p->num_splits;
    int32_t cta_rows, max_k = 0;
    int64_t base = base_ctas(p, &cta_rows);
    for (int32_t b = 0; b < p->batch; b++)
        if (p->seqlens_k_host[b] > max_k) max_k = p->seqlens_k_host[b];
    return ac_decode_auto_splits(num_sms > 0 ? num_sms : AC_DECODE_NOMINAL_SMS, base, max_k, p->block_size);
}

size_t ac_attn_decode_workspace_bytes(const ac_decode_params *p, int32_t num_splits)
{
    if (num_splits <= 1) return 0;
    size_t rows = (size_t)p->total_q * (size_t)p->heads_q;
    return rows * (size_t)num_splits * ((size_t)p->head_dim + 1) * sizeof(float);
}

/* State of one key lane (or a merged group of lanes) for one row. */
typedef struct lane_state {
    float m;   /* running max of the base-2 logits, -inf before any key */
    float l;   /* sum of exp2(s - m) */
    float *acc;/* [D] sum of exp2(s - m) * v */
} lane_state;

static float load_elem(ac_dtype dt, const void *base, int64_t i)
{
    return ac_half_to_f32(dt, ((const uint16_t *)base)[i]);
}

/* a := merge of a and b (the kernel's warp butterfly step / warp loop step). */
static void merge_into(lane_state *a, const lane_state *b, int32_t d)
{
    float m = fmaxf(a->m, b->m);
    if (m == -INFINITY) return;
    float sa = exp2f(a->m - m), sb = exp2f(b->m - m);
    a->l = a->l * sa + b->l * sb;
    for (int32_t e = 0; e < d; e++) a->acc[e] = a->acc[e] * sa + b->acc[e] * sb;
    a->m = m;
}

ac_status ac_attn_decode_model(const ac_decode_params *p, int bug, ac_error *err)
{
    ac_status st = ac_attn_decode_validate(p, err);
    if (st) return st;
    if (p->batch == 0) return AC_OK;
    const int32_t hq = p->heads_q, hkv = p->heads_kv, d = p->head_dim, bs = p->block_size;
    const int32_t splits = ac_attn_decode_splits(p, p->num_sms);
    int32_t cta_rows;
    base_ctas(p, &cta_rows);
    const int32_t lanes = ac_decode_lanes(d), kpt = ac_decode_kpt(cta_rows);
    const int32_t lanes_per_warp = lanes / AC_DECODE_WARPS;
    float scale = p->scale_given ? p->scale : 1.0f / sqrtf((float)d);
    if (bug == AC_BUG_SCALE_ONE && !p->scale_given) scale = 1.0f;
    const float scale2 = scale * 1.44269504088896340736f; /* log2(e) folded in, as the kernel */
    const int causal = bug == AC_BUG_TOP_LEFT ? AC_CAUSAL_TOP_LEFT : p->causal;

    int64_t rows = p->total_q * hq;
    float *o_part = NULL, *lse_part = NULL;
    if (splits > 1) {
        o_part = malloc(sizeof(float) * (size_t)rows * (size_t)splits * (size_t)d);
        lse_part = malloc(sizeof(float) * (size_t)rows * (size_t)splits);
        if (!o_part || !lse_part) {
            free(o_part);
            free(lse_part);
            return ac_fail(err, AC_ERR_NOMEM, "decode model: out of memory for %d splits", splits);
        }
        /* Empty splits leave their O_s untouched: NaN there proves nobody reads it. */
        for (size_t i = 0; i < (size_t)rows * (size_t)splits * (size_t)d; i++) o_part[i] = NAN;
    }
    lane_state *st_l = calloc((size_t)lanes, sizeof *st_l);
    float *acc_mem = calloc((size_t)lanes * (size_t)d, sizeof(float));
    float *qf = malloc(sizeof(float) * (size_t)d);
    float *sv = malloc(sizeof(float) * (size_t)kpt);
    if (!st_l || !acc_mem || !qf || !sv) {
        free(o_part); free(lse_part); free(st_l); free(acc_mem); free(qf); free(sv);
        return ac_fail(err, AC_ERR_NOMEM, "decode model: out of memory");
    }
    for (int32_t l = 0; l < lanes; l++) st_l[l].acc = acc_mem + (size_t)l * d;

    for (int32_t b = 0; b < p->batch; b++) {
        const int32_t lq = p->cu_seqlens_q[b + 1] - p->cu_seqlens_q[b];
        const int32_t lk = p->seqlens_k[b];
        const int32_t *row_tbl = p->block_table + (int64_t)b * p->max_blocks_per_seq;
        const int32_t cap = ac_blocks_used(lk, bs) * bs; /* keys the used blocks hold */
        /* Bugs that read past seqlen_k extend the key range to the block end. */
        const int32_t n_range = (bug == AC_BUG_TAIL_UNMASKED || bug == AC_BUG_CAUSAL_OFF_BY_ONE) ? cap : lk;
        for (int32_t i = 0; i < lq; i++) {
            const int64_t tok = p->cu_seqlens_q[b] + i;
            int32_t end = ac_causal_end(causal, i, lq, lk);
            if (bug == AC_BUG_TAIL_UNMASKED && end == lk) end = cap;
            if (bug == AC_BUG_CAUSAL_OFF_BY_ONE && end < cap) end += 1;
            if (bug == AC_BUG_DROP_LAST_KEY && end > 0) end -= 1;
            for (int32_t h = 0; h < hq; h++) {
                const int32_t kvh = bug == AC_BUG_GQA_MOD ? h % hkv : ac_kv_head(h, hq, hkv);
                const int64_t row = tok * hq + h;
                const int64_t qoff = ac_thd_offset(tok, h, hq, d);
                for (int32_t e = 0; e < d; e++) qf[e] = load_elem(p->dtype, p->q, qoff + e);
                for (int32_t s = 0; s < splits; s++) {
                    int32_t kb, ke;
                    ac_split_range(n_range, splits, s, bs, &kb, &ke);
                    const int32_t hi = end < ke ? end : ke;
                    for (int32_t l = 0; l < lanes; l++) {
                        st_l[l].m = -INFINITY;
                        st_l[l].l = 0.0f;
                        memset(st_l[l].acc, 0, sizeof(float) * (size_t)d);
                    }
                    /* Steps of lanes * kpt keys; lane l takes keys base + kk * lanes + l. */
                    for (int64_t base = kb; base < hi; base += (int64_t)lanes * kpt) {
                        for (int32_t l = 0; l < lanes; l++) {
                            lane_state *ls = &st_l[l];
                            for (int32_t kk = 0; kk < kpt; kk++) {
                                int64_t pos = base + (int64_t)kk * lanes + l;
                                sv[kk] = -INFINITY;
                                if (pos >= hi) continue;
                                if (bug == AC_BUG_SKIP_BLOCK_FIRST && pos % bs == 0) continue;
                                int64_t koff = ac_cache_offset(ac_pos_slot(row_tbl, (int32_t)pos, bs), kvh, hkv, d);
                                float dot = 0.0f;
                                for (int32_t e = 0; e < d; e++) dot += qf[e] * load_elem(p->dtype, p->k_cache, koff + e);
                                sv[kk] = dot * scale2;
                            }
                            /* The running max moves AC_DECODE_SOFTMAX_KEYS keys at a time, as in the kernel. */
                            for (int32_t g = 0; g < kpt; g += AC_DECODE_SOFTMAX_KEYS) {
                                float mt = -INFINITY;
                                for (int32_t kk = g; kk < g + AC_DECODE_SOFTMAX_KEYS; kk++) mt = fmaxf(mt, sv[kk]);
                                float mn = fmaxf(ls->m, mt);
                                if (mn == -INFINITY) continue;
                                float alpha = exp2f(ls->m - mn);
                                ls->l *= alpha;
                                for (int32_t e = 0; e < d; e++) ls->acc[e] *= alpha;
                                ls->m = mn;
                                for (int32_t kk = g; kk < g + AC_DECODE_SOFTMAX_KEYS; kk++) {
                                    if (sv[kk] == -INFINITY) continue; /* masked: V never touched */
                                    int64_t pos = base + (int64_t)kk * lanes + l;
                                    int64_t voff = ac_cache_offset(ac_pos_slot(row_tbl, (int32_t)pos, bs), kvh, hkv, d);
                                    float pr = exp2f(sv[kk] - mn);
                                    ls->l += pr;
                                    for (int32_t e = 0; e < d; e++)
                                        ls->acc[e] += pr * load_elem(p->dtype, p->v_cache, voff + e);
                                }
                            }
                        }
                    }
                    /* Warp butterfly over the lanes of each warp (xor 1, 2, ...), then warps in order. */
                    for (int32_t w = 0; w < AC_DECODE_WARPS; w++) {
                        lane_state *wl = &st_l[w * lanes_per_warp];
                        for (int32_t stride = 1; stride < lanes_per_warp; stride *= 2)
                            for (int32_t j = 0; j < lanes_per_warp; j += 2 * stride)
                                merge_into(&wl[j], &wl[j + stride], d);
                    }
                    lane_state *tot = &st_l[0];
                    for (int32_t w = 1; w < AC_DECODE_WARPS; w++) merge_into(tot, &st_l[w * lanes_per_warp], d);
                    const int empty = tot->m == -INFINITY;
                    float lse2 = empty ? -INFINITY : tot->m + log2f(tot->l);
                    float lse = bug == AC_BUG_LSE_BASE2 && splits == 1 ? lse2 : lse2 * 0.69314718055994530942f;
                    if (splits == 1) {
                        for (int32_t e = 0; e < d; e++) {
                            float v = empty ? 0.0f : tot->acc[e] / tot->l;
                            ((uint16_t *)p->o)[row * d + e] = ac_f32_to_half(p->dtype, v);
                            if (p->o_f32) p->o_f32[row * d + e] = v;
                        }
                        if (p->lse) p->lse[row] = lse;
                    } else {
                        lse_part[row * splits + s] = lse;
                        if (!empty)
                            for (int32_t e = 0; e < d; e++)
                                o_part[(row * splits + s) * d + e] = tot->acc[e] / tot->l;
                    }
                }
            }
        }
    }
    if (splits > 1) {
        ac_combine_params cp = {p->dtype, rows, splits, d, o_part, lse_part, p->o, p->o_f32, p->lse};
        st = ac_attn_combine_model(&cp, bug, err);
        if (!st && bug == AC_BUG_LSE_BASE2 && p->lse)
            for (int64_t r = 0; r < rows; r++) p->lse[r] *= 1.44269504088896340736f;
    }
    free(o_part); free(lse_part); free(st_l); free(acc_mem); free(qf); free(sv);
    return st;
}

ac_status ac_model_decode(const ac_case *c, const ac_tensors *t, const ac_run_opts *o, ac_outputs *out,
                          ac_error *err)
{
    if (c->mask != AC_MASK_NONE)
        return ac_fail(err, AC_ERR_UNSUPPORTED, "mask = %s: decode takes no explicit mask", ac_mask_name(c->mask));
    if (!c->paged) return ac_fail(err, AC_ERR_UNSUPPORTED, "paged = 0: decode needs a paged cache");
    if (!t->q || !t->k || !t->v) return ac_fail(err, AC_ERR_NULL, "tensors q / k / v missing");
    int32_t *cu = malloc(sizeof(int32_t) * ((size_t)c->batch + 1));
    if (!cu) return ac_fail(err, AC_ERR_NOMEM, "cu_seqlens_q: out of memory");
    cu[0] = 0;
    for (int32_t b = 0; b < c->batch; b++) cu[b + 1] = cu[b] + c->seqlen_q[b];
    ac_decode_params p = {
        .dtype = c->dtype, .batch = c->batch, .heads_q = c->heads_q, .heads_kv = c->heads_kv,
        .head_dim = c->head_dim, .causal = c->causal, .scale_given = c->scale_given, .scale = c->scale,
        .num_splits = c->num_splits, .num_sms = 0, .num_blocks = c->num_blocks, .block_size = c->block_size,
        .max_blocks_per_seq = c->max_blocks_per_seq, .total_q = cu[c->batch],
        .q = t->q, .k_cache = t->k, .v_cache = t->v, .cu_seqlens_q = cu, .seqlens_k = c->seqlen_k,
        .block_table = c->block_table, .o = out->o, .o_f32 = out->o_f32, .lse = out->lse,
        .cu_seqlens_q_host = cu, .seqlens_k_host = c->seqlen_k, .block_table_host = c->block_table,
    };
    /* The arguments first, then whether the tensors hold the pool they describe. */
    ac_status st = ac_attn_decode_validate(&p, err);
    int64_t need = (int64_t)c->num_blocks * c->block_size * c->heads_kv * c->head_dim;
    if (!st && t->kv_elems < need)
        st = ac_fail(err, AC_ERR_SHAPE, "kv_elems = %lld: the paged pool needs %lld", (long long)t->kv_elems,
                     (long long)need);
    if (!st) st = ac_attn_decode_model(&p, o ? (int)o->bug : 0, err);
    free(cu);
    return st;
}
