/* The bound model: the attention (or combine) answer in double precision,
 * with the magnitudes the verdict's bound is built from (docs/VERDICT.md).
 * Inputs are bf16/fp16 (exact in double) and products of two of them are
 * exact; a D-term sum in double errs by at most D 2^-53 sum|q k|, far below
 * the fp32 effects the bound sizes, so this answer stands in for the exact
 * one wherever a property compares a run with an answer, and its
 * magnitudes size every "within the bound" tolerance. The oracle is not
 * needed, so properties run on shapes too large for it. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ac_index.h"
#include "ac_numfmt.h"
#include "prop_util.h"

void prop_model_free(ac_oracle_result *m)
{
    free(m->checked);
    free(m->o);
    free(m->o_f32);
    free(m->o_half);
    free(m->lse);
    free(m->spv);
    free(m->spvo);
    free(m->sv);
    free(m->sv_tiny);
    free(m->qk_abs);
    free(m->logit_abs);
    free(m->n_allowed);
    memset(m, 0, sizeof *m);
}

static ac_status model_alloc(ac_oracle_result *m, int64_t rows, int32_t D, ac_error *err)
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
    m->n_allowed = malloc(sizeof(int32_t) * r);
    if (!m->checked || !m->o || !m->o_f32 || !m->o_half || !m->lse || !m->spv || !m->spvo || !m->sv || !m->sv_tiny || !m->qk_abs ||
        !m->logit_abs || !m->n_allowed) {
        prop_model_free(m);
        return ac_fail(err, AC_ERR_NOMEM, "bound model: out of memory for %lld rows", (long long)rows);
    }
    memset(m->checked, 1, r);
    return AC_OK;
}

/* One row from its n allowed logits s[] and value rows vrow(j): O, LSE,
   SPV, SPVO, SV, SV_tiny, |s| max (the oracle's definitions, oracle.h). */
typedef struct row_work {
    double *s, *p;
    const uint16_t **vrow;  /* attention: V rows in the dtype */
    const float **vrow32;   /* combine: O_s rows in fp32 */
} row_work;

static void finish_row(const ac_case *c, ac_oracle_result *m, int64_t r, int32_t n, const row_work *w)
{
    const int32_t D = m->head_dim;
    double *o = m->o + r * D, *spv = m->spv + r * D, *spvo = m->spvo + r * D;
    double *sv = m->sv + r * D, *svt = m->sv_tiny + r * D;
    m->n_allowed[r] = n;
    for (int32_t d = 0; d < D; d++) o[d] = spv[d] = spvo[d] = sv[d] = svt[d] = 0.0;
    double mx = -INFINITY, L = 0.0;
    for (int32_t j = 0; j < n; j++) {
        if (w->s[j] > mx) mx = w->s[j];
        if (fabs(w->s[j]) > L) L = fabs(w->s[j]);
    }
    m->logit_abs[r] = L;
    if (n == 0) {
        m->lse[r] = -INFINITY;
    } else {
        double l = 0.0;
        for (int32_t j = 0; j < n; j++) l += (w->p[j] = exp(w->s[j] - mx));
        for (int32_t j = 0; j < n; j++) w->p[j] /= l;
        m->lse[r] = mx + log(l);
        for (int32_t j = 0; j < n; j++)
            for (int32_t d = 0; d < D; d++) {
                double v = w->vrow ? (double)ac_half_to_f32(c->dtype, w->vrow[j][d]) : (double)w->vrow32[j][d];
                o[d] += w->p[j] * v;
            }
        for (int32_t j = 0; j < n; j++) {
            /* The unnormalised weight exp(s_j - max) = P_j * l: below 2^-14 it
               is subnormal in fp16 (sv_tiny, oracle.h). */
            int tiny = w->p[j] * l < 0x1p-14;
            for (int32_t d = 0; d < D; d++) {
                double v = w->vrow ? (double)ac_half_to_f32(c->dtype, w->vrow[j][d]) : (double)w->vrow32[j][d];
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

static ac_status model_attention(const ac_case *c, const ac_tensors *t, int kv_mod, ac_oracle_result *m,
                                 ac_error *err)
{
    const int32_t D = c->head_dim, Hq = c->heads_q, Hkv = c->heads_kv;
    const double scale = (double)ac_case_scale(c);
    int32_t max_lk = 1;
    for (int32_t b = 0; b < c->batch; b++)
        if (c->seqlen_k[b] > max_lk) max_lk = c->seqlen_k[b];
    row_work w = {malloc(sizeof(double) * (size_t)max_lk), malloc(sizeof(double) * (size_t)max_lk),
                  malloc(sizeof(uint16_t *) * (size_t)max_lk), NULL};
    if (!w.s || !w.p || !w.vrow) {
        free(w.s);
        free(w.p);
        free((void *)w.vrow);
        return ac_fail(err, AC_ERR_NOMEM, "bound model: out of memory for %d keys", max_lk);
    }
    int64_t tok = 0;
    for (int32_t b = 0; b < c->batch; b++) {
        const int32_t Lq = c->seqlen_q[b], Lk = c->seqlen_k[b];
        const int32_t *row_tab = c->paged ? c->block_table + (int64_t)b * c->max_blocks_per_seq : NULL;
        for (int32_t i = 0; i < Lq; i++, tok++) {
            const int32_t end = ac_causal_end((int)c->causal, i, Lq, Lk);
            for (int32_t h = 0; h < Hq; h++) {
                const int64_t r = tok * Hq + h;
                const int32_t kvh = kv_mod ? h % Hkv : ac_kv_head(h, Hq, Hkv);
                const uint16_t *q = t->q + ac_thd_offset(tok, h, Hq, D);
                int64_t mrow = 0;
                if (c->mask != AC_MASK_NONE)
                    mrow = t->mask_off[b] + ((int64_t)(c->mask_per_head ? h : 0) * Lq + i) * Lk;
                int32_t n = 0;
                double qk_abs = 0.0;
                for (int32_t j = 0; j < end; j++) {
                    double bias = 0.0;
                    if (c->mask == AC_MASK_BOOL && !t->mask_bool[mrow + j]) continue;
                    if (c->mask == AC_MASK_ADDITIVE) {
                        bias = (double)t->mask_bias[mrow + j];
                        if (bias == -INFINITY) continue;
                    }
                    int64_t off = c->paged ? ac_cache_offset(ac_pos_slot(row_tab, j, c->block_size), kvh, Hkv, D)
                                           : ac_thd_offset((int64_t)t->cu_seqlens_k[b] + j, kvh, Hkv, D);
                    double dot = 0.0, dabs = 0.0;
                    for (int32_t d = 0; d < D; d++) {
                        double x = (double)ac_half_to_f32(c->dtype, q[d]) * (double)ac_half_to_f32(c->dtype, t->k[off + d]);
                        dot += x;
                        dabs += fabs(x);
                    }
                    if (fabs(scale) * dabs > qk_abs) qk_abs = fabs(scale) * dabs;
                    w.s[n] = scale * dot + bias;
                    w.vrow[n] = t->v + off;
                    n++;
                }
                m->qk_abs[r] = qk_abs;
                finish_row(c, m, r, n, &w);
            }
        }
    }
    free(w.s);
    free(w.p);
    free((void *)w.vrow);
    return AC_OK;
}

static ac_status model_combine(const ac_case *c, const ac_tensors *t, ac_oracle_result *m, ac_error *err)
{
    const int32_t D = c->head_dim, S = c->num_splits;
    row_work w = {malloc(sizeof(double) * (size_t)S), malloc(sizeof(double) * (size_t)S), NULL,
                  malloc(sizeof(float *) * (size_t)S)};
    if (!w.s || !w.p || !w.vrow32) {
        free(w.s);
        free(w.p);
        free((void *)w.vrow32);
        return ac_fail(err, AC_ERR_NOMEM, "bound model: out of memory for %d splits", S);
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

ac_status prop_model(const ac_case *c, const ac_tensors *t, int kv_mod, ac_oracle_result *m, ac_error *err)
{
    if (c->op != AC_OP_PREFILL && c->op != AC_OP_DECODE && c->op != AC_OP_COMBINE)
        return ac_fail(err, AC_ERR_UNSUPPORTED, "bound model: no model for op %s", ac_op_name(c->op));
    ac_status st = model_alloc(m, ac_case_total_q(c) * c->heads_q, c->head_dim, err);
    if (st) return st;
    st = c->op == AC_OP_COMBINE ? model_combine(c, t, m, err) : model_attention(c, t, kv_mod, m, err);
    if (st) prop_model_free(m);
    return st;
}
