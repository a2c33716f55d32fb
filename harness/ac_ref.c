/* The suite's CPU references (ac_ref.h): ac_ref64, the answer and the
 * bound's magnitudes in double; ac_ref32, the same-precision reference; and
 * the decode path's white-box law. */
#include "ac_ref.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ac_index.h"
#include "ac_numfmt.h"
#include "decode.h"

/* ==== ac_ref64: double precision ========================================= */

static ac_status ref64_alloc(ac_oracle_result *m, int64_t rows, int32_t D, ac_error *err)
{
    memset(m, 0, sizeof *m);
    size_t r = (size_t)(rows > 0 ? rows : 1), e = r * (size_t)D;
    m->rows = rows;
    m->head_dim = D;
    m->rows_checked = rows;
    m->checked = malloc(r);
    m->o = malloc(sizeof(double) * e);
    m->o_f32 = malloc(sizeof(float) * e);
    m->o_half = malloc(sizeof(uint16_t) * e);
    m->lse = malloc(sizeof(double) * r);
    m->spv = malloc(sizeof(double) * e);
    m->spvo = malloc(sizeof(double) * e);
    m->sv = malloc(sizeof(double) * e);
    m->sv_tiny = malloc(sizeof(double) * e);
    m->qk_abs = malloc(sizeof(double) * r);
    m->logit_abs = malloc(sizeof(double) * r);
    m->capped_abs = calloc(r, sizeof(double));
    m->alibi_abs = calloc(r, sizeof(double));
    m->n_allowed = malloc(sizeof(int32_t) * r);
    if (!m->checked || !m->o || !m->o_f32 || !m->o_half || !m->lse || !m->spv || !m->spvo || !m->sv || !m->sv_tiny || !m->qk_abs ||
        !m->logit_abs || !m->capped_abs || !m->alibi_abs || !m->n_allowed) {
        ac_oracle_result_free(m);
        return ac_fail(err, AC_ERR_NOMEM, "ref64: out of memory for %lld rows", (long long)rows);
    }
    memset(m->checked, 1, r);
    return AC_OK;
}

/* One row from its n allowed logits s[] and value rows vrow(j): O, LSE,
   SPV, SPVO, SV, SV_tiny, |s| max (the oracle's definitions, oracle.h). */
typedef struct row_work {
    double *s, *p;
    double sink;            /* the row's sink logit, -inf: none (docs/CONTRACT.md) */
    double v_scale;         /* attention: V's scale (FP8 cache; 1 otherwise) */
    const uint16_t **vrow;  /* attention: V rows in the cache's storage (half or FP8 code) */
    const float **vrow32;   /* combine: O_s rows in fp32 */
} row_work;

static void finish_row(const ac_case *c, ac_oracle_result *m, int64_t r, int32_t n, const row_work *w)
{
    const int32_t D = m->head_dim;
    double *o = m->o + r * D, *spv = m->spv + r * D, *spvo = m->spvo + r * D;
    double *sv = m->sv + r * D, *svt = m->sv_tiny + r * D;
    m->n_allowed[r] = n;
    for (int32_t d = 0; d < D; d++) o[d] = spv[d] = spvo[d] = sv[d] = svt[d] = 0.0;
    const int sink = w->sink > -INFINITY;
    double mx = sink ? w->sink : -INFINITY, L = sink ? fabs(w->sink) : 0.0;
    for (int32_t j = 0; j < n; j++) {
        if (w->s[j] > mx) mx = w->s[j];
        if (fabs(w->s[j]) > L) L = fabs(w->s[j]);
    }
    m->logit_abs[r] = L;
    if (n == 0) {
        m->lse[r] = sink ? w->sink : -INFINITY; /* an empty row: O = 0, LSE = the sink */
    } else {
        double l = sink ? exp(w->sink - mx) : 0.0; /* the sink: in the denominator only */
        for (int32_t j = 0; j < n; j++) l += (w->p[j] = exp(w->s[j] - mx));
        for (int32_t j = 0; j < n; j++) w->p[j] /= l;
        m->lse[r] = mx + log(l);
        for (int32_t j = 0; j < n; j++)
            for (int32_t d = 0; d < D; d++) {
                double v = w->vrow ? ac_kv_elem_to_double(c->dtype, c->kv_format, w->vrow[j][d]) * w->v_scale
                                   : (double)w->vrow32[j][d];
                o[d] += w->p[j] * v;
            }
        for (int32_t j = 0; j < n; j++) {
            /* The unnormalised weight exp(s_j - max) = P_j * l: below 2^-14 it
               is subnormal in fp16 (sv_tiny, oracle.h). */
            int tiny = w->p[j] * l < 0x1p-14;
            for (int32_t d = 0; d < D; d++) {
                double v = w->vrow ? ac_kv_elem_to_double(c->dtype, c->kv_format, w->vrow[j][d]) * w->v_scale
                                   : (double)w->vrow32[j][d];
                spv[d] += w->p[j] * fabs(v);
                spvo[d] += w->p[j] * fabs(v - o[d]);
                sv[d] += fabs(v);
                if (tiny) svt[d] += fabs(v) / l;
            }
        }
    }
    for (int32_t d = 0; d < D; d++) {
        m->o_f32[r * D + d] = (float)o[d];
        m->o_half[r * D + d] = ac_f64_to_half(c->dtype, o[d]);
    }
}

static ac_status ref64_attention(const ac_case *c, const ac_tensors *t, int kv_mod, ac_oracle_result *m,
                                 ac_error *err)
{
    const int32_t D = c->head_dim, Dv = ac_case_dv(c), Hq = c->heads_q, Hkv = c->heads_kv;
    const double scale = (double)ac_case_scale(c);
    int32_t max_lk = 1;
    for (int32_t b = 0; b < c->batch; b++)
        if (c->seqlen_k[b] > max_lk) max_lk = c->seqlen_k[b];
    row_work w = {malloc(sizeof(double) * (size_t)max_lk), malloc(sizeof(double) * (size_t)max_lk), -INFINITY, 1.0,
                  malloc(sizeof(uint16_t *) * (size_t)max_lk), NULL};
    if (!w.s || !w.p || !w.vrow) {
        free(w.s);
        free(w.p);
        free((void *)w.vrow);
        return ac_fail(err, AC_ERR_NOMEM, "ref64: out of memory for %d keys", max_lk);
    }
    int64_t tok = 0;
    for (int32_t b = 0; b < c->batch; b++) {
        const int32_t Lq = c->seqlen_q[b], Lk = c->seqlen_k[b];
        const int32_t *row_tab = c->paged ? c->block_table + (int64_t)b * c->max_blocks_per_seq : NULL;
        for (int32_t i = 0; i < Lq; i++, tok++) {
            int32_t begin, end; /* causal mode and window; the mask below */
            ac_key_range((int)c->causal, c->window_left, c->window_right, i, Lq, Lk, &begin, &end);
            for (int32_t h = 0; h < Hq; h++) {
                const int64_t r = tok * Hq + h;
                double capped_abs = 0.0, alibi_abs = 0.0;
                w.sink = c->n_sinks > 0 ? (double)c->sinks[h] : -INFINITY;
                const int32_t kvh = kv_mod ? h % Hkv : ac_kv_head(h, Hq, Hkv);
                const double ks = (double)ac_case_k_scale(c, kvh);
                w.v_scale = (double)ac_case_v_scale(c, kvh);
                const uint16_t *q = t->q + ac_thd_offset(tok, h, Hq, D);
                int64_t mrow = 0;
                if (c->mask != AC_MASK_NONE)
                    mrow = t->mask_off[b] + ((int64_t)(c->mask_per_head ? h : 0) * Lq + i) * Lk;
                int32_t n = 0;
                double qk_abs = 0.0;
                for (int32_t j = begin; j < end; j++) {
                    double bias = 0.0;
                    if (c->mask == AC_MASK_BOOL && !t->mask_bool[mrow + j]) continue;
                    if (c->mask == AC_MASK_ADDITIVE) {
                        bias = (double)t->mask_bias[mrow + j];
                        if (bias == -INFINITY) continue;
                    }
                    int64_t slot = c->paged ? ac_pos_slot(row_tab, j, c->block_size) : (int64_t)t->cu_seqlens_k[b] + j;
                    int64_t off = c->paged ? ac_cache_offset(slot, kvh, Hkv, D) : ac_thd_offset(slot, kvh, Hkv, D);
                    int64_t voff = c->paged ? ac_cache_offset(slot, kvh, Hkv, Dv) : ac_thd_offset(slot, kvh, Hkv, Dv);
                    double dot = 0.0, dabs = 0.0;
                    for (int32_t d = 0; d < D; d++) {
                        double x = (double)ac_half_to_f32(c->dtype, q[d]) *
                                   (ac_kv_elem_to_double(c->dtype, c->kv_format, t->k[off + d]) * ks);
                        dot += x;
                        dabs += fabs(x);
                    }
                    if (fabs(scale) * dabs > qk_abs) qk_abs = fabs(scale) * dabs;
                    double sj = scale * dot; /* then softcap, ALiBi, the bias (docs/CONTRACT.md) */
                    if (c->softcap > 0.0f) {
                        sj = (double)c->softcap * tanh(sj / (double)c->softcap);
                        if (fabs(sj) > capped_abs) capped_abs = fabs(sj);
                    }
                    if (c->n_alibi > 0) {
                        double a = (double)c->alibi_slopes[h] * (double)ac_alibi_dist(i, j, Lq, Lk); /* exact */
                        sj += a;
                        if (fabs(a) > alibi_abs) alibi_abs = fabs(a);
                    }
                    w.s[n] = sj + bias;
                    w.vrow[n] = t->v + voff;
                    n++;
                }
                m->qk_abs[r] = qk_abs;
                m->capped_abs[r] = capped_abs;
                m->alibi_abs[r] = alibi_abs;
                finish_row(c, m, r, n, &w);
            }
        }
    }
    free(w.s);
    free(w.p);
    free((void *)w.vrow);
    return AC_OK;
}

static ac_status ref64_combine(const ac_case *c, const ac_tensors *t, ac_oracle_result *m, ac_error *err)
{
    const int32_t D = c->head_dim, S = c->num_splits;
    row_work w = {malloc(sizeof(double) * (size_t)S), malloc(sizeof(double) * (size_t)S), -INFINITY, 1.0, NULL,
                  malloc(sizeof(float *) * (size_t)S)};
    if (!w.s || !w.p || !w.vrow32) {
        free(w.s);
        free(w.p);
        free((void *)w.vrow32);
        return ac_fail(err, AC_ERR_NOMEM, "ref64: out of memory for %d splits", S);
    }
    for (int64_t r = 0; r < m->rows; r++) {
        int32_t n = 0;
        for (int32_t s = 0; s < S; s++) {
            float lse = t->lse_part[r * S + s];
            if (lse == -INFINITY) continue; /* an empty split: its O_s is never read */
            w.s[n] = (double)lse;
            w.vrow32[n] = t->o_part + (r * S + s) * D;
            n++;
        }
        m->qk_abs[r] = 0.0;
        finish_row(c, m, r, n, &w);
    }
    free(w.s);
    free(w.p);
    free((void *)w.vrow32);
    return AC_OK;
}

/* The caches after the store: the old ones with each non-padding token's
   row written at its slot (the oracle's definition, oracle.c). */
static ac_status ref64_store(const ac_case *c, const ac_tensors *t, ac_oracle_result *m, ac_error *err)
{
    memset(m, 0, sizeof *m);
    const int32_t Dv = ac_case_dv(c);
    const int64_t v_elems = ac_tensors_v_elems(c, t);
    m->kv_elems = t->kv_elems;
    m->v_elems = v_elems;
    m->k_cache = malloc(sizeof(uint16_t) * (size_t)(t->kv_elems > 0 ? t->kv_elems : 1));
    m->v_cache = malloc(sizeof(uint16_t) * (size_t)(v_elems > 0 ? v_elems : 1));
    if (!m->k_cache || !m->v_cache) {
        ac_oracle_result_free(m);
        return ac_fail(err, AC_ERR_NOMEM, "ref64: out of memory for %lld cache elements", (long long)t->kv_elems);
    }
    memcpy(m->k_cache, t->k, sizeof(uint16_t) * (size_t)t->kv_elems);
    memcpy(m->v_cache, t->v, sizeof(uint16_t) * (size_t)v_elems);
    for (int32_t tok = 0; tok < c->num_tokens; tok++) {
        const int64_t slot = c->slot_mapping[tok];
        if (slot < 0) continue; /* -1: padding */
        /* quantised per the contract when the cache is FP8 */
        ac_store_rows(c, t, tok, m->k_cache + ac_cache_offset(slot, 0, c->heads_kv, c->head_dim),
                      m->v_cache + ac_cache_offset(slot, 0, c->heads_kv, Dv));
    }
    return AC_OK;
}

ac_status ac_ref64(const ac_case *c, const ac_tensors *t, unsigned flags, ac_oracle_result *m, ac_error *err)
{
    if (c->op == AC_OP_STORE) return ref64_store(c, t, m, err);
    if (c->op != AC_OP_PREFILL && c->op != AC_OP_DECODE && c->op != AC_OP_COMBINE)
        return ac_fail(err, AC_ERR_UNSUPPORTED, "ref64: no reference for op %s", ac_op_name(c->op));
    ac_status st = ref64_alloc(m, ac_case_total_q(c) * c->heads_q, ac_case_dv(c), err);
    if (st) return st;
    st = c->op == AC_OP_COMBINE ? ref64_combine(c, t, m, err)
                                : ref64_attention(c, t, (flags & AC_REF_KV_MOD) != 0, m, err);
    if (st) ac_oracle_result_free(m);
    return st;
}

/* ==== ac_ref32: the kernel's precision ================================== */

static ac_status ref32_attention(const ac_case *c, const ac_tensors *t, ac_outputs *out, ac_error *err)
{
    const int32_t D = c->head_dim, Dv = ac_case_dv(c), Hq = c->heads_q, Hkv = c->heads_kv;
    const float scale = ac_case_scale(c);
    int32_t max_lk = 0;
    for (int32_t b = 0; b < c->batch; b++) max_lk = c->seqlen_k[b] > max_lk ? c->seqlen_k[b] : max_lk;
    float *s = malloc(sizeof(float) * (size_t)(max_lk ? max_lk : 1));
    float *acc = malloc(sizeof(float) * (size_t)Dv);
    if (!s || !acc) {
        free(s);
        free(acc);
        return ac_fail(err, AC_ERR_NOMEM, "ref32: out of memory");
    }
    for (int32_t b = 0; b < c->batch; b++) {
        const int32_t Lq = c->seqlen_q[b], Lk = c->seqlen_k[b];
        const int32_t *row_tab = c->paged ? c->block_table + (int64_t)b * c->max_blocks_per_seq : NULL;
        for (int32_t i = 0; i < Lq; i++) {
            int64_t tok = t->cu_seqlens_q[b] + i;
            int32_t begin, end; /* causal mode and window; the mask below */
            ac_key_range((int)c->causal, c->window_left, c->window_right, i, Lq, Lk, &begin, &end);
            for (int32_t h = 0; h < Hq; h++) {
                int32_t kvh = ac_kv_head(h, Hq, Hkv);
                const float sink = c->n_sinks > 0 ? c->sinks[h] : -INFINITY;
                /* K and V in fp32: the element (half or FP8 code) times its scale, rounded once. */
                const double ks = (double)ac_case_k_scale(c, kvh), vs = (double)ac_case_v_scale(c, kvh);
                const uint16_t *q = t->q + ac_thd_offset(tok, h, Hq, D);
                int64_t mrow = 0;
                if (c->mask != AC_MASK_NONE)
                    mrow = t->mask_off[b] + ((int64_t)(c->mask_per_head ? h : 0) * Lq + i) * Lk;
                float m = sink; /* the sink takes part in the maximum and the denominator */
                for (int32_t j = begin; j < end; j++) {
                    s[j] = -INFINITY;
                    if (c->mask == AC_MASK_BOOL && !t->mask_bool[mrow + j]) continue;
                    float bias = c->mask == AC_MASK_ADDITIVE ? t->mask_bias[mrow + j] : 0.0f;
                    if (bias == -INFINITY) continue;
                    int64_t ko = c->paged ? ac_cache_offset(ac_pos_slot(row_tab, j, c->block_size), kvh, Hkv, D)
                                          : ac_thd_offset(t->cu_seqlens_k[b] + j, kvh, Hkv, D);
                    float dot = 0.0f;
                    for (int32_t d = 0; d < D; d++)
                        dot += ac_half_to_f32(c->dtype, q[d]) *
                               (float)(ac_kv_elem_to_double(c->dtype, c->kv_format, t->k[ko + d]) * ks);
                    float sj = dot * scale;
                    if (c->softcap > 0.0f) sj = c->softcap * tanhf(sj / c->softcap);
                    if (c->n_alibi > 0) sj += c->alibi_slopes[h] * ac_alibi_dist(i, j, Lq, Lk);
                    s[j] = sj + bias;
                    if (s[j] > m) m = s[j];
                }
                float l = sink > -INFINITY ? expf(sink - m) : 0.0f;
                for (int32_t d = 0; d < Dv; d++) acc[d] = 0.0f;
                if (m != -INFINITY)
                    for (int32_t j = begin; j < end; j++) {
                        if (s[j] == -INFINITY) continue;
                        float p = expf(s[j] - m);
                        l += p;
                        float pr = ac_half_to_f32(c->dtype, ac_f32_to_half(c->dtype, p)); /* P in the dtype */
                        int64_t vo = c->paged ? ac_cache_offset(ac_pos_slot(row_tab, j, c->block_size), kvh, Hkv, Dv)
                                              : ac_thd_offset(t->cu_seqlens_k[b] + j, kvh, Hkv, Dv);
                        for (int32_t d = 0; d < Dv; d++)
                            acc[d] += pr * (float)(ac_kv_elem_to_double(c->dtype, c->kv_format, t->v[vo + d]) * vs);
                    }
                int64_t o = ac_thd_offset(tok, h, Hq, Dv);
                for (int32_t d = 0; d < Dv; d++) {
                    float val = l > 0.0f ? acc[d] / l : 0.0f;
                    out->o_f32[o + d] = val;
                    out->o[o + d] = ac_f32_to_half(c->dtype, val);
                }
                out->lse[tok * Hq + h] = l > 0.0f ? m + logf(l) : -INFINITY;
            }
        }
    }
    free(s);
    free(acc);
    return AC_OK;
}

static ac_status ref32_combine(const ac_case *c, const ac_tensors *t, ac_outputs *out)
{
    const int32_t D = c->head_dim, S = c->num_splits;
    int64_t rows = ac_case_total_q(c) * c->heads_q;
    for (int64_t r = 0; r < rows; r++) {
        const float *lse = t->lse_part + r * S;
        float m = -INFINITY;
        for (int32_t s = 0; s < S; s++) m = lse[s] > m ? lse[s] : m;
        float l = 0.0f;
        for (int32_t s = 0; s < S; s++)
            if (lse[s] != -INFINITY) l += expf(lse[s] - m);
        for (int32_t d = 0; d < D; d++) {
            float acc = 0.0f;
            if (m != -INFINITY)
                for (int32_t s = 0; s < S; s++)
                    if (lse[s] != -INFINITY) acc += expf(lse[s] - m) / l * t->o_part[(r * S + s) * D + d];
            out->o_f32[r * D + d] = acc;
            out->o[r * D + d] = ac_f32_to_half(c->dtype, acc);
        }
        out->lse[r] = m == -INFINITY ? -INFINITY : m + logf(l);
    }
    return AC_OK;
}

ac_status ac_ref32(const ac_case *c, const ac_tensors *t, ac_outputs *out, ac_error *err)
{
    ac_status st = ac_outputs_alloc(c, out, err);
    if (st) return st;
    if (c->op == AC_OP_PREFILL || c->op == AC_OP_DECODE) return ref32_attention(c, t, out, err);
    if (c->op == AC_OP_COMBINE) return ref32_combine(c, t, out);
    return ac_fail(err, AC_ERR_UNSUPPORTED, "ref32: no same-precision reference for %s", ac_op_name(c->op));
}

/* ==== the decode path's white-box law ===================================== */

/* Error bound of the fp32 decode (docs/DECODE.md): a logit carries at most
   delta = (D + 8) u A (dot product of D terms, the scale and log2(e)
   products, the exp2 argument), A = |scale| max_j sum |q k| (qk_abs); the
   sums of a key lane, the lane/warp/split merges and the combine add at most
   (n_chain + 2 S + 24) u relative to sum P|v|, n_chain = ceil(keys / lanes).
   So |O - O*| <= 2 (2 delta SPVO + (n_chain + 2 S + 24) u SPV)
   (2 delta: the numerator and 1/L both see the logit error; the outer 2 is
   slack), plus half an ulp of the output format for the dtype output, and
   |LSE - LSE*| <= 2 delta + (n_chain + 2 S + 24) u + u |LSE*|.
   An empty row must be exactly O = 0, LSE = -inf. */
double ac_ref_decode_law(const ac_case *c, const ac_oracle_result *ref, const ac_outputs *out, int32_t splits,
                         char *why, size_t n)
{
    const double u32 = AC_U_FP32;
    const ac_dtype dtype = c->dtype;
    const int32_t dqk = c->head_dim, d = ac_case_dv(c); /* q.k over D_qk; the output has D_v */
    const double u_out = ac_unit_roundoff(dtype);
    /* Key lanes: the fewer of the two dims' (the longer chain), whichever the kernel sizes them by. */
    const int32_t lanes_qk = ac_decode_lanes(dqk), lanes_v = ac_decode_lanes(d);
    const int32_t lanes = lanes_qk < lanes_v ? lanes_qk : lanes_v;
    /* An FP8 cache: k_scale folded into the fp32 logit scale (one more rounding
       of the logit) and v_scale multiplied into the fp32 output (one of O). */
    const int fp8 = c->kv_format != AC_KV_AS_DTYPE;
    const uint16_t *o = out->o;
    const float *o_f32 = out->o_f32, *lse = out->lse;
    double worst = 0.0;
    why[0] = '\0';
    for (int64_t rr = 0; rr < ref->rows; rr++) {
        const int32_t nk = ref->n_allowed[rr];
        const double chain = (double)ac_num_tiles(nk, lanes) + 2.0 * splits + 24.0;
        const double delta = (dqk + 8 + fp8) * u32 * ref->qk_abs[rr];
        if (nk == 0) {
            int ok = lse[rr] == -INFINITY;
            for (int32_t e = 0; e < d; e++)
                ok &= o_f32[rr * d + e] == 0.0f && (double)ac_half_to_f32(dtype, o[rr * d + e]) == 0.0;
            if (!ok) {
                snprintf(why, n, "row %lld: empty row must give O = 0, LSE = -inf (got LSE %g)", (long long)rr,
                         (double)lse[rr]);
                return INFINITY;
            }
            continue;
        }
        const double tl = 2 * delta + chain * u32 + u32 * fabs(ref->lse[rr]);
        const double el = fabs((double)lse[rr] - ref->lse[rr]);
        if (!(el <= tl)) {
            snprintf(why, n, "row %lld: LSE %.9g vs %.9g (bound %.3g)", (long long)rr, (double)lse[rr], ref->lse[rr],
                     tl);
            return INFINITY;
        }
        if (el / tl > worst) worst = el / tl;
        for (int32_t e = 0; e < d; e++) {
            const int64_t i = rr * d + e;
            /* 1e-300: a row whose V are all zero has SPV = 0 and must be exact. */
            const double tf = 2.0 * (2.0 * delta * ref->spvo[i] + chain * u32 * ref->spv[i]) +
                              fp8 * u32 * fabs(ref->o[i]) + 1e-300;
            const double ef = fabs((double)o_f32[i] - ref->o[i]);
            /* 1.0000001: a tie rounded away from O* sits exactly at u_out |O*|. */
            const double th = tf + u_out * fabs(ref->o[i]) * 1.0000001;
            const double oh = (double)ac_half_to_f32(dtype, o[i]);
            const double eh = fabs(oh - ref->o[i]);
            if (!(ef <= tf) || !(eh <= th)) {
                snprintf(why, n, "row %lld d %d: O %.9g (%s %.9g) vs %.9g (bounds %.3g, %.3g)", (long long)rr, e,
                         (double)o_f32[i], ac_dtype_name(dtype), oh, ref->o[i], tf, th);
                return INFINITY;
            }
            if (ef / tf > worst) worst = ef / tf;
        }
    }
    return worst;
}
