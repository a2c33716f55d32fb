#include "ac_sparse.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ac_big.h"

void ac_sparse_free(ac_sparse_judged *j)
{
    if (j->kv_aliased) j->t.k = j->t.v = NULL; /* the full case's pool */
    ac_tensors_free(&j->t);
    ac_outputs_free(&j->out);
    ac_case_free(&j->c);
    free(j->seq_of);
    free(j->tok_of);
    memset(j, 0, sizeof *j);
}

/* Rows of a sequence with no key: O = +-0 and LSE = -inf, exactly. */
static void check_empty(const ac_case *c, const ac_outputs *out, int32_t b, int64_t tok0, ac_sparse_judged *j)
{
    const int64_t D = ac_case_dv(c); /* out's head dim */
    for (int64_t i = 0; i < c->seqlen_q[b]; i++)
        for (int32_t h = 0; h < c->heads_q; h++) {
            int64_t r = (tok0 + i) * c->heads_q + h;
            int32_t bad_dim = -2;
            float got = 0.0f;
            if (out->lse && !(isinf(out->lse[r]) && out->lse[r] < 0)) bad_dim = -1, got = out->lse[r];
            for (int64_t d = 0; d < D && bad_dim == -2; d++)
                if ((out->o[r * D + d] & 0x7fffu) != 0) bad_dim = (int32_t)d, got = (float)out->o[r * D + d];
            j->empty_rows++;
            if (bad_dim == -2) continue;
            if (j->empty_bad++ == 0) {
                j->empty_where = (ac_coord){.seq = b, .head = h, .row = (int32_t)i, .dim = bad_dim, .flat_row = r};
                j->empty_got = got;
            }
        }
}

ac_status ac_sparse_gather(const ac_case *c, const ac_tensors *t, const ac_outputs *out, ac_sparse_judged *j,
                           ac_error *err)
{
    memset(j, 0, sizeof *j);
    int32_t nb = 0;
    for (int32_t b = 0; b < c->batch; b++) nb += c->seqlen_k[b] > 0;
    ac_status st = ac_case_copy(&j->c, c, err);
    if (st) return st;
    /* The judged case: the same case with the sequences that have keys; the
       sparse special stays (its pool is the full one, sparse). */
    ac_case *jc = &j->c;
    j->seq_of = malloc(sizeof(int32_t) * (size_t)(nb ? nb : 1));
    j->tok_of = malloc(sizeof(int64_t) * (size_t)(nb ? nb : 1));
    if (!j->seq_of || !j->tok_of) {
        ac_sparse_free(j);
        return ac_fail(err, AC_ERR_NOMEM, "sparse: out of memory for %d sequences", nb);
    }
    const int64_t row_q = (int64_t)c->heads_q * c->head_dim, row_kv = (int64_t)c->heads_kv * c->head_dim;
    const int64_t row_o = (int64_t)c->heads_q * ac_case_dv(c), row_v = (int64_t)c->heads_kv * ac_case_dv(c);
    int64_t tq = 0, tk = 0;
    int32_t k = 0;
    for (int32_t b = 0; b < c->batch; b++) {
        int64_t tok0 = t->cu_seqlens_q[b];
        if (c->seqlen_k[b] == 0) {
            check_empty(c, out, b, tok0, j);
            continue;
        }
        j->seq_of[k] = b;
        j->tok_of[k] = tok0;
        jc->seqlen_q[k] = c->seqlen_q[b];
        jc->seqlen_k[k] = c->seqlen_k[b];
        if (c->paged)
            memcpy(jc->block_table + (int64_t)k * c->max_blocks_per_seq, c->block_table + (int64_t)b * c->max_blocks_per_seq,
                   sizeof(int32_t) * (size_t)c->max_blocks_per_seq);
        tq += c->seqlen_q[b];
        tk += c->seqlen_k[b];
        k++;
    }
    jc->batch = nb;
    ac_tensors *jt = &j->t;
    ac_outputs *jo = &j->out;
    jt->cu_seqlens_q = malloc(sizeof(int32_t) * ((size_t)nb + 1));
    jt->cu_seqlens_k = malloc(sizeof(int32_t) * ((size_t)nb + 1));
    jt->q = malloc(sizeof(uint16_t) * (size_t)(tq * row_q + 1));
    jo->o = malloc(sizeof(uint16_t) * (size_t)(tq * row_o + 1));
    jo->o_f32 = malloc(sizeof(float) * (size_t)(tq * row_o + 1));
    jo->lse = out->lse ? malloc(sizeof(float) * (size_t)(tq * c->heads_q + 1)) : NULL; /* no LSE returned */
    if (!c->paged) {
        jt->k = malloc(sizeof(uint16_t) * (size_t)(tk * row_kv + 1));
        jt->v = malloc(sizeof(uint16_t) * (size_t)(tk * row_v + 1));
        jt->kv_elems = tk * row_kv;
        jt->v_elems = tk * row_v;
    } else {
        jt->k = t->k;
        jt->v = t->v;
        jt->kv_elems = t->kv_elems;
        jt->v_elems = t->v_elems;
        j->kv_aliased = 1;
    }
    if (!jt->cu_seqlens_q || !jt->cu_seqlens_k || !jt->q || !jo->o || !jo->o_f32 || (out->lse && !jo->lse) || !jt->k || !jt->v) {
        ac_sparse_free(j);
        return ac_fail(err, AC_ERR_NOMEM, "sparse: out of memory for the judged case (%lld queries)", (long long)tq);
    }
    jt->cu_seqlens_q[0] = jt->cu_seqlens_k[0] = 0;
    for (int32_t i = 0; i < nb; i++) {
        int32_t b = j->seq_of[i];
        int64_t q0 = jt->cu_seqlens_q[i], n = c->seqlen_q[b];
        jt->cu_seqlens_q[i + 1] = (int32_t)(q0 + n);
        jt->cu_seqlens_k[i + 1] = jt->cu_seqlens_k[i] + c->seqlen_k[b];
        memcpy(jt->q + q0 * row_q, t->q + j->tok_of[i] * row_q, sizeof(uint16_t) * (size_t)(n * row_q));
        memcpy(jo->o + q0 * row_o, out->o + j->tok_of[i] * row_o, sizeof(uint16_t) * (size_t)(n * row_o));
        memcpy(jo->o_f32 + q0 * row_o, out->o_f32 + j->tok_of[i] * row_o, sizeof(float) * (size_t)(n * row_o));
        if (out->lse)
            memcpy(jo->lse + q0 * c->heads_q, out->lse + j->tok_of[i] * c->heads_q, sizeof(float) * (size_t)(n * c->heads_q));
        if (!c->paged)
            memcpy(jt->k + (int64_t)jt->cu_seqlens_k[i] * row_kv, t->k + (int64_t)t->cu_seqlens_k[b] * row_kv,
                   sizeof(uint16_t) * (size_t)((int64_t)c->seqlen_k[b] * row_kv)),
            memcpy(jt->v + (int64_t)jt->cu_seqlens_k[i] * row_v, t->v + (int64_t)t->cu_seqlens_k[b] * row_v,
                   sizeof(uint16_t) * (size_t)((int64_t)c->seqlen_k[b] * row_v));
    }
    jt->total_q = tq;
    jt->total_k = tk;
    return AC_OK;
}

void ac_sparse_unmap(const ac_sparse_judged *j, ac_coord *w, int32_t heads_q)
{
    if (w->seq < 0 || w->seq >= j->c.batch) return;
    int32_t i = w->seq;
    w->seq = j->seq_of[i];
    w->flat_row = (j->tok_of[i] + w->row) * heads_q + w->head;
}

void ac_sparse_fold(const ac_sparse_judged *j, ac_verdict *v)
{
    v->n_bad_empty += j->empty_bad;
    v->rows_checked += j->empty_rows;
    if (!j->empty_bad) {
        ac_verdict_summarize(v); /* coordinates in the full case's numbering */
        return;
    }
    v->pass = 0;
    v->r_max = INFINITY;
    v->r_where = j->empty_where;
    const ac_coord *w = &j->empty_where;
    char what[64];
    if (w->dim < 0) snprintf(what, sizeof what, "LSE %g, want -inf", (double)j->empty_got);
    else snprintf(what, sizeof what, "O[dim %d] bits 0x%04x, want 0", w->dim, (unsigned)j->empty_got);
    snprintf(v->summary, sizeof v->summary,
             "FAIL %lld of %lld rows of sequences without keys are not empty; first: seq %d, row %d, head %d: %s",
             (long long)j->empty_bad, (long long)j->empty_rows, w->seq, w->row, w->head, what);
}
