/* The oracle's driver: validation, which keys each (query row, head) sees
 * (causal mode, mask, GQA, paging), row sampling, threads, the store op and
 * the verdict's scales. The arithmetic of a row is in oracle_mpfr.c (every
 * operation in MPFR) or oracle_fast.c (double-double with a proven bound). */
#include "oracle.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ac_big.h"
#include "ac_index.h"
#include "ac_numfmt.h"
#include "ac_rng.h"
#include "oracle_internal.h"

/* --- results --------------------------------------------------------------- */

void ac_oracle_result_free(ac_oracle_result *res)
{
    if (!res) return;
    free(res->checked);
    free(res->o);
    free(res->o_f32);
    free(res->o_half);
    free(res->lse);
    free(res->spv);
    free(res->spvo);
    free(res->sv);
    free(res->sv_tiny);
    free(res->qk_abs);
    free(res->logit_abs);
    free(res->capped_abs);
    free(res->alibi_abs);
    free(res->n_allowed);
    ac_big_free(res->k_cache);
    ac_big_free(res->v_cache);
    memset(res, 0, sizeof *res);
}

static ac_status alloc_rows(ac_oracle_result *res, int64_t rows, int32_t D, ac_dtype dtype, ac_error *err)
{
    size_t n = (size_t)rows * (size_t)D, r = (size_t)rows;
    res->rows = rows;
    res->head_dim = D;
    res->checked = calloc(r ? r : 1, 1);
    res->o = malloc(sizeof(double) * (n ? n : 1));
    res->o_f32 = malloc(sizeof(float) * (n ? n : 1));
    res->o_half = malloc(sizeof(uint16_t) * (n ? n : 1));
    res->spv = malloc(sizeof(double) * (n ? n : 1));
    res->spvo = malloc(sizeof(double) * (n ? n : 1));
    res->sv = malloc(sizeof(double) * (n ? n : 1));
    res->sv_tiny = malloc(sizeof(double) * (n ? n : 1));
    res->lse = malloc(sizeof(double) * (r ? r : 1));
    res->qk_abs = malloc(sizeof(double) * (r ? r : 1));
    res->logit_abs = malloc(sizeof(double) * (r ? r : 1));
    res->capped_abs = malloc(sizeof(double) * (r ? r : 1));
    res->alibi_abs = malloc(sizeof(double) * (r ? r : 1));
    res->n_allowed = malloc(sizeof(int32_t) * (r ? r : 1));
    if (!res->checked || !res->o || !res->o_f32 || !res->o_half || !res->spv || !res->spvo || !res->sv || !res->sv_tiny || !res->lse ||
        !res->qk_abs || !res->logit_abs || !res->capped_abs || !res->alibi_abs || !res->n_allowed)
        return ac_fail(err, AC_ERR_NOMEM, "oracle result: out of memory for %lld rows x %d", (long long)rows, D);
    /* Rows not evaluated (sampling) stay NaN / -1, never mistaken for results. */
    uint16_t half_nan = dtype == AC_FP16 ? 0x7e00u : 0x7fc0u;
    for (size_t i = 0; i < n; i++) {
        res->o[i] = res->spv[i] = res->spvo[i] = res->sv[i] = res->sv_tiny[i] = NAN;
        res->o_f32[i] = NAN;
        res->o_half[i] = half_nan;
    }
    for (size_t i = 0; i < r; i++) {
        res->lse[i] = res->qk_abs[i] = res->logit_abs[i] = res->capped_abs[i] = res->alibi_abs[i] = NAN;
        res->n_allowed[i] = -1;
    }
    return AC_OK;
}

/* Mark max_rows distinct rows of `rows` (all of them if max_rows <= 0 or >= rows).
   Drawing with rejection is fast while at most half are marked; past that, the
   complement is drawn instead. */
static int64_t sample_rows(uint8_t *checked, int64_t rows, int64_t max_rows, uint64_t seed)
{
    if (max_rows <= 0 || max_rows >= rows) {
        memset(checked, 1, (size_t)rows);
        return rows;
    }
    int invert = max_rows > rows / 2;
    int64_t want = invert ? rows - max_rows : max_rows;
    uint8_t mark = invert ? 0 : 1;
    memset(checked, invert ? 1 : 0, (size_t)rows);
    ac_rng s = {seed}; /* the plain SplitMix64 sequence of opts->sample_seed */
    for (int64_t got = 0; got < want;) {
        int64_t r = (int64_t)(ac_rng_next(&s) % (uint64_t)rows); /* bias < rows/2^64: irrelevant */
        if (checked[r] != mark) {
            checked[r] = mark;
            got++;
        }
    }
    return max_rows;
}

/* --- the work -------------------------------------------------------------- */

typedef struct unit { int32_t b, kvh, i0, i1; } unit;

/* Four fp32 pieces carry 1/sqrt(D) to about 2^-96 relative (each piece takes
   the next 24 bits), far below the 2^-53 of a double and of the fast mode's
   other roundings' scale. */
#define AC_SCALE_PARTS 4 /* attention: queries [i0, i1) of (b, kv head) */

typedef struct job {
    const ac_case *c;
    const ac_tensors *t;
    const ac_oracle_opts *opts;
    ac_oracle_result *res;
    const int64_t *q0, *k0; /* [B] first query / key row of each sequence */
    unit *units;
    int64_t num_units;
    atomic_llong next;
    atomic_int failed;
    pthread_mutex_t lock;
    ac_error err;           /* first error met by any thread */
    /* opts.exact_default_scale: 1/sqrt(D) at AC_ORACLE_PREC bits and as fp32
       pieces (read-only, shared by the threads). */
    int exact_scale;
    mpfr_t scale_mp;
    double scale_parts[AC_SCALE_PARTS];
    int32_t n_scale_parts;
} job;

typedef struct scratch {
    double *kr, *kt, *vr, *q, *bias, *p, *s, *capped;
    int32_t *idx;
    uint8_t *bad;
    size_t cap_kv, cap_n, cap_d;
    ac_fast_ws *fast;
    ac_mpfr_ws *mp;
} scratch;

static int grow(void **p, size_t *cap_unused, size_t bytes)
{
    (void)cap_unused;
    void *q = realloc(*p, bytes ? bytes : 1);
    if (!q) return -1;
    *p = q;
    return 0;
}

static int scratch_reserve(scratch *w, size_t kv, size_t n, size_t d)
{
    if (kv > w->cap_kv) {
        if (grow((void **)&w->kr, NULL, kv * sizeof(double)) || grow((void **)&w->kt, NULL, kv * sizeof(double)) ||
            grow((void **)&w->vr, NULL, kv * sizeof(double)))
            return -1;
        w->cap_kv = kv;
    }
    if (n > w->cap_n) {
        if (grow((void **)&w->bias, NULL, n * sizeof(double)) || grow((void **)&w->p, NULL, n * sizeof(double)) ||
            grow((void **)&w->s, NULL, n * sizeof(double)) || grow((void **)&w->capped, NULL, n * sizeof(double)) ||
            grow((void **)&w->idx, NULL, n * sizeof(int32_t)) ||
            grow((void **)&w->bad, NULL, n))
            return -1;
        w->cap_n = n;
    }
    if (d > w->cap_d) {
        if (grow((void **)&w->q, NULL, d * sizeof(double))) return -1;
        w->cap_d = d;
    }
    return 0;
}

static void scratch_free(scratch *w)
{
    free(w->kr);
    free(w->kt);
    free(w->vr);
    free(w->q);
    free(w->bias);
    free(w->p);
    free(w->s);
    free(w->capped);
    free(w->idx);
    free(w->bad);
    ac_fast_ws_free(w->fast);
    ac_mpfr_ws_free(w->mp);
    memset(w, 0, sizeof *w);
}

static void job_fail(job *jb, ac_status code, const char *what)
{
    pthread_mutex_lock(&jb->lock);
    if (!atomic_load(&jb->failed)) {
        ac_fail(&jb->err, code, "%s", what);
        atomic_store(&jb->failed, 1);
    }
    pthread_mutex_unlock(&jb->lock);
}

/* Run the mode's core on one row and derive the verdict's scales. */
static int eval_row(job *jb, scratch *w, const ac_row_in *in, int64_t r)
{
    const ac_case *c = jb->c;
    ac_oracle_result *res = jb->res;
    int32_t D = ac_case_dv(c);   /* the output's dims (D_v); q.k runs over head_dim */
    int32_t Dqk = c->head_dim;
    int64_t e0 = r * D;
    ac_row_out out = {res->o + e0, res->o_f32 + e0, res->o_half + e0, 0.0, 0.0, w->p, w->s, w->capped};
    int rc = jb->opts->mode == AC_ORACLE_MPFR ? ac_mpfr_row(&w->mp, in, c->dtype, &out)
                                              : ac_fast_row(&w->fast, in, c->dtype, &out);
    if (rc) return -1;
    res->lse[r] = jb->opts->lse_base2 ? out.lse2 : out.lse;
    res->n_allowed[r] = in->n;
    /* Scales for the verdict (double is ample: they size a tolerance). */
    double *spv = res->spv + e0, *spvo = res->spvo + e0, *sv = res->sv + e0, *svt = res->sv_tiny + e0;
    const double *o = res->o + e0;
    for (int32_t d = 0; d < D; d++) spv[d] = spvo[d] = sv[d] = svt[d] = 0.0;
    double logit_abs = in->sink > -INFINITY ? fabs(in->sink) : 0.0, qk_abs = 0.0, capped_abs = 0.0,
           alibi_abs = 0.0;
    /* A kernel's unnormalised weight is p_j = exp(s_j - max s) = P_j * L with
       L = exp(LSE - max s) >= 1; those below 2^-14 are subnormal in fp16. */
    double smax = -INFINITY;
    for (int32_t j = 0; j < in->n; j++) smax = w->s[j] > smax ? w->s[j] : smax;
    double L = in->n ? exp(out.lse - smax) : 1.0; /* with a sink, L = sum_j p_j + exp(sink - max s) */
    /* The scales use V's values: the decoded codes times the V scale (1 but for FP8). */
    double vs = in->v_scale != 0.0 ? in->v_scale : 1.0;
    for (int32_t j = 0; j < in->n; j++) {
        const double *v = in->vr + (int64_t)in->idx[j] * D;
        double pj = w->p[j];
        int tiny = pj * L < 0x1p-14;
        for (int32_t d = 0; d < D; d++) {
            double vd = v[d] * vs;
            spv[d] += pj * fabs(vd);
            spvo[d] += pj * fabs(vd - o[d]);
            sv[d] += fabs(vd);
            if (tiny) svt[d] += fabs(vd) / L;
        }
        if (fabs(w->s[j]) > logit_abs) logit_abs = fabs(w->s[j]);
        if (in->softcap > 0.0 && fabs(w->capped[j]) > capped_abs) capped_abs = fabs(w->capped[j]);
        if (in->alibi) {
            double a = fabs(in->alibi_slope * (double)((int64_t)in->idx[j] - in->alibi_diag));
            if (a > alibi_abs) alibi_abs = a;
        }
        if (!in->logits) {
            const double *k = in->kr + (int64_t)in->idx[j] * Dqk;
            double a = 0.0;
            for (int32_t d = 0; d < Dqk; d++) a += fabs(in->q[d] * k[d]);
            a *= fabs(in->scale);
            if (a > qk_abs) qk_abs = a;
        }
    }
    res->logit_abs[r] = logit_abs;
    res->qk_abs[r] = qk_abs;
    res->capped_abs[r] = capped_abs;
    res->alibi_abs[r] = alibi_abs;
    return 0;
}

static int finite_or_report(job *jb, double x, const char *fmt, long long a, long long b, long long d)
{
    if (isfinite(x)) return 1;
    char msg[200];
    snprintf(msg, sizeof msg, fmt, a, b, d);
    job_fail(jb, AC_ERR_NUMERIC, msg);
    return 0;
}

static void run_attention_unit(job *jb, scratch *w, const unit *u)
{
    const ac_case *c = jb->c;
    const ac_tensors *t = jb->t;
    int32_t D = c->head_dim, Dv = ac_case_dv(c), Hq = c->heads_q, Hkv = c->heads_kv, b = u->b, kvh = u->kvh;
    int32_t lq = c->seqlen_q[b], lk = c->seqlen_k[b];
    /* K's values exactly: the element (a half, or an FP8 code) times the K
       scale, at most 4 + 24 bits, so q.k's products stay exact in double. V is
       gathered without its scale (the row core applies it once, at the end). */
    double ks = (double)ac_case_k_scale(c, kvh);
    int32_t group = Hq / Hkv;
    /* Gather positions [0, g): g is the largest key-range end of these queries. */
    int32_t g = 0;
    for (int32_t i = u->i0; i < u->i1; i++) {
        int32_t kb, e;
        ac_key_range((int)c->causal, c->window_left, c->window_right, i, lq, lk, &kb, &e);
        if (e > g) g = e;
    }
    if (scratch_reserve(w, (size_t)g * (D > Dv ? D : Dv), (size_t)(g > 0 ? g : 1), (size_t)D)) {
        job_fail(jb, AC_ERR_NOMEM, "oracle: out of memory for a row's scratch");
        return;
    }
    const int32_t *table_row = c->paged ? c->block_table + (int64_t)b * c->max_blocks_per_seq : NULL;
    for (int32_t p = 0; p < g; p++) {
        int64_t slot = c->paged ? ac_pos_slot(table_row, p, c->block_size) : jb->k0[b] + p;
        int64_t off = c->paged ? ac_cache_offset(slot, kvh, Hkv, D) : ac_thd_offset(slot, kvh, Hkv, D);
        int64_t voff = c->paged ? ac_cache_offset(slot, kvh, Hkv, Dv) : ac_thd_offset(slot, kvh, Hkv, Dv);
        uint8_t bad = 0;
        for (int32_t d = 0; d < D; d++) {
            double kv = ac_kv_elem_to_double(c->dtype, c->kv_format, t->k[off + d]) * ks;
            w->kr[(int64_t)p * D + d] = kv;
            if (!isfinite(kv)) bad = 1;
        }
        for (int32_t d = 0; d < Dv; d++) {
            double vv = ac_kv_elem_to_double(c->dtype, c->kv_format, t->v[voff + d]);
            w->vr[(int64_t)p * Dv + d] = vv;
            if (!isfinite(vv)) bad = 1;
        }
        w->bad[p] = bad;
    }
    if (jb->opts->mode == AC_ORACLE_FAST)
        for (int32_t d = 0; d < D; d++)
            for (int32_t p = 0; p < g; p++) w->kt[(int64_t)d * g + p] = w->kr[(int64_t)p * D + d];

    int64_t hm_count = c->mask_per_head ? Hq : 1;
    (void)hm_count;
    for (int32_t i = u->i0; i < u->i1 && !atomic_load(&jb->failed); i++) {
        int64_t tq = jb->q0[b] + i;
        /* The allowed set: causal mode and window here, the explicit mask below. */
        int32_t begin, end;
        ac_key_range((int)c->causal, c->window_left, c->window_right, i, lq, lk, &begin, &end);
        for (int32_t h = kvh * group; h < (kvh + 1) * group; h++) {
            int64_t r = tq * Hq + h;
            if (!jb->res->checked[r]) continue;
            int64_t qoff = ac_thd_offset(tq, h, Hq, D);
            for (int32_t d = 0; d < D; d++) {
                w->q[d] = ac_half_bits_to_double(c->dtype, t->q[qoff + d]);
                if (!finite_or_report(jb, w->q[d], "q[token %lld, head %lld, dim %lld] is not finite: the oracle "
                                      "cannot judge it", tq, h, d))
                    return;
            }
            int32_t n = 0;
            int64_t moff = 0;
            if (c->mask != AC_MASK_NONE)
                moff = t->mask_off[b] + ((int64_t)(c->mask_per_head ? h : 0) * lq + i) * lk;
            for (int32_t j = begin; j < end; j++) {
                double bias = 0.0;
                if (c->mask == AC_MASK_BOOL) {
                    if (!t->mask_bool[moff + j]) continue;
                } else if (c->mask == AC_MASK_ADDITIVE) {
                    bias = (double)t->mask_bias[moff + j];
                    if (bias == -INFINITY) continue;
                    if (!finite_or_report(jb, bias, "mask_bias[sequence %lld, query %lld, key %lld] is NaN or +Inf: "
                                          "the oracle cannot judge it", b, i, j))
                        return;
                }
                if (w->bad[j]) {
                    char msg[200];
                    snprintf(msg, sizeof msg, "k/v[sequence %d, position %d, kv head %d] is not finite but is read "
                             "(query %d, head %d): the oracle cannot judge it", b, j, kvh, i, h);
                    job_fail(jb, AC_ERR_NUMERIC, msg);
                    return;
                }
                w->idx[n] = j;
                w->bias[n] = bias;
                n++;
            }
            ac_row_in in = {
                .head_dim = D, .n = n, .idx = w->idx, .q = w->q, .kr = w->kr, .kt = w->kt, .g = g, .end = end,
                .bias = c->mask == AC_MASK_ADDITIVE ? w->bias : NULL, .scale = (double)ac_case_scale(c),
                .softcap = (double)c->softcap, .alibi = c->n_alibi > 0,
                .alibi_slope = c->n_alibi > 0 ? (double)c->alibi_slopes[h] : 0.0,
                .alibi_diag = (int64_t)i + lk - lq,
                .sink = c->n_sinks > 0 ? (double)c->sinks[h] : -INFINITY,
                .logits = NULL, .vr = w->vr, .head_dim_v = Dv,
                .v_scale = (double)ac_case_v_scale(c, kvh),
            };
            if (jb->exact_scale) {
                in.scale = jb->scale_parts[0] + jb->scale_parts[1]; /* for qk_abs only */
                in.scale_parts = jb->scale_parts;
                in.n_scale_parts = jb->n_scale_parts;
                in.scale_mp = jb->scale_mp;
            }
            if (eval_row(jb, w, &in, r)) {
                job_fail(jb, AC_ERR_NOMEM, "oracle: out of memory in a row");
                return;
            }
        }
    }
}

/* Combine: unit = queries [i0, i1) of the packed rows (b unused). */
static void run_combine_unit(job *jb, scratch *w, const unit *u)
{
    const ac_case *c = jb->c;
    const ac_tensors *t = jb->t;
    int32_t D = c->head_dim, Hq = c->heads_q, S = c->num_splits;
    if (scratch_reserve(w, (size_t)S * D, (size_t)S, (size_t)D)) {
        job_fail(jb, AC_ERR_NOMEM, "oracle: out of memory for a row's scratch");
        return;
    }
    for (int64_t tq = u->i0; tq < u->i1 && !atomic_load(&jb->failed); tq++) {
        for (int32_t h = 0; h < Hq; h++) {
            int64_t r = tq * Hq + h;
            if (!jb->res->checked[r]) continue;
            int32_t n = 0;
            for (int32_t s = 0; s < S; s++) {
                double lse_s = (double)t->lse_part[r * S + s];
                if (lse_s == -INFINITY) continue; /* empty split: its O_s is never read */
                if (!finite_or_report(jb, lse_s, "lse_part[row %lld, head %lld, split %lld] is NaN or +Inf: the "
                                      "oracle cannot judge it", tq, h, s))
                    return;
                const float *os = t->o_part + (r * S + s) * D;
                for (int32_t d = 0; d < D; d++) {
                    w->vr[(int64_t)s * D + d] = (double)os[d];
                    if (!finite_or_report(jb, (double)os[d], "o_part[row %lld, head %lld, split %lld] of a "
                                          "non-empty split is not finite: the oracle cannot judge it", tq, h, s))
                        return;
                }
                w->idx[n] = s;
                w->s[n] = lse_s;
                w->bias[n] = lse_s; /* the logits, kept apart from s (the core overwrites s) */
                n++;
            }
            /* Base-2 convention: split LSEs in and the LSE out are both base 2. */
            ac_row_in in = {.head_dim = D, .n = n, .idx = w->idx, .logits = w->bias,
                            .logits_base2 = jb->opts->lse_base2, .sink = -INFINITY, .vr = w->vr};
            if (eval_row(jb, w, &in, r)) {
                job_fail(jb, AC_ERR_NOMEM, "oracle: out of memory in a row");
                return;
            }
        }
    }
}

static void *worker(void *arg)
{
    job *jb = arg;
    scratch w;
    memset(&w, 0, sizeof w);
    for (;;) {
        if (atomic_load(&jb->failed)) break;
        long long k = atomic_fetch_add(&jb->next, 1);
        if (k >= jb->num_units) break;
        if (ac_op_traits_of(jb->c->op)->kv == AC_KV_NONE) /* merges partials */
            run_combine_unit(jb, &w, &jb->units[k]);
        else
            run_attention_unit(jb, &w, &jb->units[k]);
    }
    scratch_free(&w);
    mpfr_free_cache2(MPFR_FREE_LOCAL_CACHE); /* MPFR's caches are per thread */
    return NULL;
}

/* --- inputs the case does not validate ------------------------------------ */

static ac_status check_tensors(const ac_case *c, const ac_tensors *t, const int64_t *q0, const int64_t *k0,
                               ac_error *err)
{
    int64_t tq = ac_case_total_q(c), tk = ac_case_total_k(c);
    int64_t D = c->head_dim;
    if (t->cu_seqlens_q)
        for (int32_t b = 0; b <= c->batch; b++)
            if (t->cu_seqlens_q[b] != (b < c->batch ? q0[b] : tq))
                return ac_fail(err, AC_ERR_SEQLENS, "cu_seqlens_q[%d] = %d: the case's seqlen_q give %lld", b,
                               t->cu_seqlens_q[b], (long long)(b < c->batch ? q0[b] : tq));
    int64_t Dv = ac_case_dv(c);
    int64_t v_elems = ac_tensors_v_elems(c, t);
    if (ac_op_traits_of(c->op)->slots) {
        int64_t need = (int64_t)c->num_blocks * c->block_size * c->heads_kv * D;
        int64_t need_v = (int64_t)c->num_blocks * c->block_size * c->heads_kv * Dv;
        if (!t->k || !t->v) return ac_fail(err, AC_ERR_NULL, "k_cache / v_cache is NULL");
        if (t->kv_elems < need)
            return ac_fail(err, AC_ERR_SHAPE, "kv_elems = %lld: the pool needs %lld", (long long)t->kv_elems,
                           (long long)need);
        if (v_elems < need_v)
            return ac_fail(err, AC_ERR_SHAPE, "v_elems = %lld: the pool needs %lld (D_v = %lld)", (long long)v_elems,
                           (long long)need_v, (long long)Dv);
        if (c->num_tokens > 0 && (!t->k_new || !t->v_new)) return ac_fail(err, AC_ERR_NULL, "k_new / v_new is NULL");
        return AC_OK;
    }
    if (ac_op_traits_of(c->op)->kv == AC_KV_NONE) {
        if (tq > 0 && (!t->o_part || !t->lse_part)) return ac_fail(err, AC_ERR_NULL, "o_part / lse_part is NULL");
        return AC_OK;
    }
    if (tq > 0 && !t->q) return ac_fail(err, AC_ERR_NULL, "q is NULL");
    if (!t->k || !t->v) return ac_fail(err, AC_ERR_NULL, "k / v is NULL");
    int64_t need = c->paged ? (int64_t)c->num_blocks * c->block_size * c->heads_kv * D : tk * c->heads_kv * D;
    if (t->kv_elems < need)
        return ac_fail(err, AC_ERR_SHAPE, "kv_elems = %lld: %s needs %lld", (long long)t->kv_elems,
                       c->paged ? "the pool" : "total_k * Hkv * D", (long long)need);
    int64_t need_v = need / (D > 0 ? D : 1) * Dv;
    if (v_elems < need_v)
        return ac_fail(err, AC_ERR_SHAPE, "v_elems = %lld: %s needs %lld", (long long)v_elems,
                       c->paged ? "the pool" : "total_k * Hkv * D_v", (long long)need_v);
    if (!c->paged && t->cu_seqlens_k)
        for (int32_t b = 0; b <= c->batch; b++)
            if (t->cu_seqlens_k[b] != (b < c->batch ? k0[b] : tk))
                return ac_fail(err, AC_ERR_SEQLENS, "cu_seqlens_k[%d] = %d: the case's seqlen_k give %lld", b,
                               t->cu_seqlens_k[b], (long long)(b < c->batch ? k0[b] : tk));
    if (c->mask != AC_MASK_NONE) {
        if (!t->mask_off) return ac_fail(err, AC_ERR_NULL, "mask_off is NULL with mask = %s", ac_mask_name(c->mask));
        if (c->mask == AC_MASK_BOOL ? !t->mask_bool : !t->mask_bias)
            return ac_fail(err, AC_ERR_NULL, "mask_%s is NULL", c->mask == AC_MASK_BOOL ? "bool" : "bias");
        int64_t hm = c->mask_per_head ? c->heads_q : 1;
        for (int32_t b = 0; b < c->batch; b++) {
            int64_t want = hm * c->seqlen_q[b] * c->seqlen_k[b];
            if (t->mask_off[b] < 0 || t->mask_off[b + 1] - t->mask_off[b] != want)
                return ac_fail(err, AC_ERR_SHAPE, "mask_off[%d..%d] = %lld..%lld: sequence %d needs %lld entries", b,
                               b + 1, (long long)t->mask_off[b], (long long)t->mask_off[b + 1], b, (long long)want);
        }
    }
    return AC_OK;
}

static ac_status run_store(const ac_case *c, const ac_tensors *t, ac_oracle_result *res, ac_error *err)
{
    int32_t Dv = ac_case_dv(c);
    int64_t v_elems = ac_tensors_v_elems(c, t);
    res->kv_elems = t->kv_elems;
    res->v_elems = v_elems;
    /* A sparse case's caches are reserved and hold only the touched blocks. */
    size_t bytes = sizeof(uint16_t) * (size_t)(t->kv_elems ? t->kv_elems : 1);
    size_t v_bytes = sizeof(uint16_t) * (size_t)(v_elems ? v_elems : 1);
    res->k_cache = ac_case_is_sparse(c) ? ac_big_alloc(bytes) : malloc(bytes);
    res->v_cache = ac_case_is_sparse(c) ? ac_big_alloc(v_bytes) : malloc(v_bytes);
    if (!res->k_cache || !res->v_cache) return ac_fail(err, AC_ERR_NOMEM, "oracle store: out of memory for caches");
    if (ac_case_is_sparse(c)) {
        ac_status st = ac_case_copy_pool_dim(c, res->k_cache, t->k, c->head_dim, err);
        if (!st) st = ac_case_copy_pool_dim(c, res->v_cache, t->v, Dv, err);
        if (st) return st;
    } else {
        memcpy(res->k_cache, t->k, sizeof(uint16_t) * (size_t)t->kv_elems);
        memcpy(res->v_cache, t->v, sizeof(uint16_t) * (size_t)v_elems);
    }
    /* The new rows as the cache stores them (copied, or quantised to FP8). */
    for (int32_t tok = 0; tok < c->num_tokens; tok++) {
        int64_t slot = c->slot_mapping[tok];
        if (slot < 0) continue; /* -1: padding */
        ac_store_rows(c, t, tok, res->k_cache + ac_cache_offset(slot, 0, c->heads_kv, c->head_dim),
                      res->v_cache + ac_cache_offset(slot, 0, c->heads_kv, Dv));
    }
    return AC_OK;
}

#define QUERIES_PER_UNIT 32 /* a unit regathers K/V once per this many queries: < 1/30 of its work */

ac_status ac_oracle_run(const ac_case *c, const ac_tensors *t, const ac_oracle_opts *opts, ac_oracle_result *res,
                        ac_error *err)
{
    if (!c || !t || !opts || !res) return ac_fail(err, AC_ERR_NULL, "ac_oracle_run: case, tensors, opts or result is NULL");
    memset(res, 0, sizeof *res);
    ac_status st = ac_case_validate(c, err);
    if (st) return st;
    if (opts->mode != AC_ORACLE_FAST && opts->mode != AC_ORACLE_MPFR)
        return ac_fail(err, AC_ERR_UNSUPPORTED, "opts.mode = %d: unknown", (int)opts->mode);
    if (opts->threads < 0) return ac_fail(err, AC_ERR_SHAPE, "opts.threads = %d: must be >= 0", opts->threads);

    int32_t B = c->batch;
    int64_t *q0 = malloc(sizeof(int64_t) * (size_t)(B + 1)), *k0 = malloc(sizeof(int64_t) * (size_t)(B + 1));
    if (!q0 || !k0) {
        free(q0);
        free(k0);
        return ac_fail(err, AC_ERR_NOMEM, "oracle: out of memory");
    }
    q0[0] = k0[0] = 0;
    for (int32_t b = 0; b < B; b++) {
        q0[b + 1] = q0[b] + c->seqlen_q[b];
        k0[b + 1] = k0[b] + c->seqlen_k[b];
    }
    /* Three kinds of family, told apart by their rules (ac_families.def): a
       store copies (slots), a combine merges partials (no keys), the rest is
       attention over the keys each row sees. */
    const ac_op_traits *tr = ac_op_traits_of(c->op);
    st = check_tensors(c, t, q0, k0, err);
    if (st == AC_OK && tr->slots) st = run_store(c, t, res, err);
    if (st || tr->slots) {
        free(q0);
        free(k0);
        if (st) ac_oracle_result_free(res);
        return st;
    }

    int64_t rows = q0[B] * c->heads_q;
    st = alloc_rows(res, rows, ac_case_dv(c), c->dtype, err); /* one output row has D_v values */
    if (st) goto done;
    res->rows_checked = sample_rows(res->checked, rows, opts->max_rows, opts->sample_seed);

    /* Units of work. */
    job jb;
    memset(&jb, 0, sizeof jb);
    jb.c = c;
    jb.t = t;
    jb.opts = opts;
    jb.res = res;
    jb.q0 = q0;
    jb.k0 = k0;
    int64_t cap = 0;
    if (tr->kv == AC_KV_NONE) {
        cap = (q0[B] + QUERIES_PER_UNIT - 1) / QUERIES_PER_UNIT;
    } else {
        for (int32_t b = 0; b < B; b++)
            cap += (int64_t)c->heads_kv * ((c->seqlen_q[b] + QUERIES_PER_UNIT - 1) / QUERIES_PER_UNIT);
    }
    jb.units = malloc(sizeof(unit) * (size_t)(cap ? cap : 1));
    if (!jb.units) {
        st = ac_fail(err, AC_ERR_NOMEM, "oracle: out of memory for %lld work units", (long long)cap);
        goto done;
    }
    int32_t group = c->heads_q / c->heads_kv;
    if (tr->kv == AC_KV_NONE) {
        for (int64_t i0 = 0; i0 < q0[B]; i0 += QUERIES_PER_UNIT) {
            int64_t i1 = i0 + QUERIES_PER_UNIT < q0[B] ? i0 + QUERIES_PER_UNIT : q0[B];
            int any = 0;
            for (int64_t r = i0 * c->heads_q; r < i1 * c->heads_q && !any; r++) any = res->checked[r];
            if (any) jb.units[jb.num_units++] = (unit){0, 0, (int32_t)i0, (int32_t)i1};
        }
    } else {
        for (int32_t b = 0; b < B; b++)
            for (int32_t kvh = 0; kvh < c->heads_kv; kvh++)
                for (int32_t i0 = 0; i0 < c->seqlen_q[b]; i0 += QUERIES_PER_UNIT) {
                    int32_t i1 = i0 + QUERIES_PER_UNIT < c->seqlen_q[b] ? i0 + QUERIES_PER_UNIT : c->seqlen_q[b];
                    int any = 0; /* skip units with no sampled row: their gather would be wasted */
                    for (int32_t i = i0; i < i1 && !any; i++)
                        for (int32_t h = kvh * group; h < (kvh + 1) * group && !any; h++)
                            any = res->checked[(q0[b] + i) * c->heads_q + h];
                    if (any) jb.units[jb.num_units++] = (unit){b, kvh, i0, i1};
                }
    }

    if (opts->exact_default_scale && !c->scale_given && c->op != AC_OP_COMBINE) {
        /* The real 1/sqrt(D), then peeled into fp32 pieces: x - piece is exact
           at this precision (the piece is x's leading bits, rounded). */
        jb.exact_scale = 1;
        mpfr_init2(jb.scale_mp, AC_ORACLE_PREC);
        mpfr_t rest;
        mpfr_init2(rest, AC_ORACLE_PREC);
        mpfr_set_si(jb.scale_mp, c->head_dim, MPFR_RNDN);
        mpfr_rec_sqrt(jb.scale_mp, jb.scale_mp, MPFR_RNDN);
        mpfr_set(rest, jb.scale_mp, MPFR_RNDN);
        for (int k = 0; k < AC_SCALE_PARTS && !mpfr_zero_p(rest); k++) {
            float piece = mpfr_get_flt(rest, MPFR_RNDN);
            jb.scale_parts[jb.n_scale_parts++] = (double)piece;
            mpfr_sub_d(rest, rest, (double)piece, MPFR_RNDN);
        }
        for (int k = jb.n_scale_parts; k < AC_SCALE_PARTS; k++) jb.scale_parts[k] = 0.0;
        mpfr_clear(rest);
        res->scale_exact = 1;
    }

    int nthreads = opts->threads;
    if (nthreads == 0) {
        long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
        nthreads = ncpu > 0 ? (int)ncpu : 1;
    }
    if (nthreads > jb.num_units) nthreads = jb.num_units > 0 ? (int)jb.num_units : 1;
    pthread_mutex_init(&jb.lock, NULL);
    atomic_init(&jb.next, 0);
    atomic_init(&jb.failed, 0);
    if (nthreads <= 1) {
        worker(&jb);
    } else {
        pthread_t *tids = malloc(sizeof(pthread_t) * (size_t)nthreads);
        int started = 0;
        if (tids)
            for (; started < nthreads; started++)
                if (pthread_create(&tids[started], NULL, worker, &jb)) break;
        if (started == 0) worker(&jb); /* no thread could start: do the work here */
        for (int i = 0; i < started; i++) pthread_join(tids[i], NULL);
        free(tids);
    }
    pthread_mutex_destroy(&jb.lock);
    if (jb.exact_scale) mpfr_clear(jb.scale_mp);
    free(jb.units);
    if (atomic_load(&jb.failed)) {
        st = jb.err.code;
        if (err) *err = jb.err;
    }
done:
    free(q0);
    free(k0);
    if (st) ac_oracle_result_free(res);
    return st;
}
