/* Judging a dump and diagnosing a failure (harness/ac_diagnose.h,
 * docs/DIAGNOSIS.md). A hypothesis is a variant of the dump's case and
 * tensors (another causal mode, a mask that moves the causal bound, K/V
 * expanded with the wrong head mapping, K/V gathered with a wrong slot
 * function ...) under which the oracle is recomputed; the dump's own outputs
 * are then judged by the unchanged verdict. The outputs "match" a hypothesis
 * when they pass under it while they fail as declared. */
#include "ac_diagnose.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ac_family.h"
#include "ac_index.h"
#include "ac_numfmt.h"

/* ---- a variant: the dump's case and tensors under one hypothesis ------------------- */

#define VARIANT_OWN 8
typedef struct variant {
    ac_case c;               /* owned copy */
    ac_tensors t;            /* shallow: the dump's arrays, or the ones in own[] */
    void *own[VARIANT_OWN];
    int n_own;
    int oracle_lse_base2;    /* combine: the partials' LSEs (and the LSE out) are base 2 */
    int verdict_lse_base2;   /* attention: the dumped LSE is read as base 2 */
    const float *lse;        /* the LSE judged: the dump's, or the other layout's reading */
} variant;

static void *variant_alloc(variant *v, size_t n, size_t size)
{
    if (v->n_own == VARIANT_OWN) return NULL;
    void *p = calloc(n ? n : 1, size);
    if (p) v->own[v->n_own++] = p;
    return p;
}

static void variant_free(variant *v)
{
    for (int i = 0; i < v->n_own; i++) free(v->own[i]);
    ac_case_free(&v->c);
    memset(v, 0, sizeof *v);
}

static ac_status variant_init(variant *v, const ac_dump *d, ac_error *err)
{
    memset(v, 0, sizeof *v);
    v->t = d->t;
    int combine = d->c.op == AC_OP_COMBINE;
    v->oracle_lse_base2 = combine && d->conv.lse_base2;
    v->verdict_lse_base2 = !combine && d->conv.lse_base2;
    v->lse = d->out.lse;
    ac_status st = ac_case_copy(&v->c, &d->c, err);
    /* A store's case has no sequences (B = 0): the copy drops its empty arrays,
       which validation wants present. */
    int32_t **arrays[3] = {&v->c.seqlen_q, &v->c.seqlen_k, &v->c.block_table};
    const int32_t *src[3] = {d->c.seqlen_q, d->c.seqlen_k, d->c.block_table};
    for (int i = 0; i < 3 && !st; i++)
        if (src[i] && !*arrays[i]) {
            *arrays[i] = malloc(sizeof(int32_t));
            if (!*arrays[i]) return ac_fail(err, AC_ERR_NOMEM, "case copy: out of memory");
            **arrays[i] = -1;
        }
    return st;
}

/* ---- rows --------------------------------------------------------------------------- */

/* Sequence of query token tok: the last b with cu[b] <= tok (empty sequences skipped). */
static int32_t seq_of(const int32_t *cu, int32_t batch, int64_t tok)
{
    int32_t lo = 0, hi = batch;
    while (hi - lo > 1) {
        int32_t mid = (lo + hi) / 2;
        if (cu[mid] <= tok) lo = mid;
        else hi = mid;
    }
    return lo;
}

static int mask_allows(const ac_case *c, const ac_tensors *t, int32_t b, int32_t h, int32_t i, int32_t j)
{
    if (c->mask == AC_MASK_NONE) return 1;
    int64_t lq = c->seqlen_q[b], lk = c->seqlen_k[b];
    int64_t e = t->mask_off[b] + ((int64_t)(c->mask_per_head ? h : 0) * lq + i) * lk + j;
    return c->mask == AC_MASK_BOOL ? t->mask_bool[e] != 0 : t->mask_bias[e] != -INFINITY;
}

/* 1 if query head h has a finite sink (its keyless rows are not empty: LSE = sink). */
static int has_sink(const ac_case *c, int32_t h)
{
    return c->n_sinks && h < c->n_sinks && c->sinks[h] != -INFINITY;
}

/* V row of (sequence b, kv head, key j). */
static const uint16_t *v_row(const ac_case *c, const ac_tensors *t, int32_t b, int32_t kvh, int32_t j)
{
    int64_t off = c->paged
        ? ac_cache_offset(ac_pos_slot(c->block_table + (int64_t)b * c->max_blocks_per_seq, j, c->block_size), kvh,
                          c->heads_kv, ac_case_dv(c))
        : ac_thd_offset((int64_t)t->cu_seqlens_k[b] + j, kvh, c->heads_kv, ac_case_dv(c));
    return t->v + off;
}

/* The output element e as the call wrote it. */
static double got_of(const ac_case *c, int out_f32, const ac_outputs *o, int64_t e)
{
    return out_f32 ? (double)o->o_f32[e] : (double)ac_half_to_f32(c->dtype, o->o[e]);
}

/* finfo(dtype).min masks: an empty row becomes uniform attention over the
   keys its causal mode allows (all Lk keys when it allows none). 1 if the
   row's O is that mean of V within the rounding of a correct kernel. */
static int row_is_mean_v(const ac_case *c, const ac_tensors *t, int out_f32, const ac_outputs *o, int64_t r)
{
    if (c->op == AC_OP_COMBINE || c->op == AC_OP_STORE) return 0;
    const int32_t Hq = c->heads_q, D = ac_case_dv(c);
    const int64_t tok = r / Hq;
    const int32_t h = (int32_t)(r % Hq), b = seq_of(t->cu_seqlens_q, c->batch, tok);
    const int32_t i = (int32_t)(tok - t->cu_seqlens_q[b]), lq = c->seqlen_q[b], lk = c->seqlen_k[b];
    int32_t n = ac_causal_end((int)c->causal, i, lq, lk);
    if (n <= 0) n = lk;
    if (n <= 0) return 0;
    const int32_t kvh = ac_kv_head(h, Hq, c->heads_kv);
    const double u_in = ac_unit_roundoff(c->dtype), u_out = out_f32 ? AC_U_FP32 : u_in;
    const double eta = out_f32 ? 0x1p-150 : c->dtype == AC_FP16 ? 0x1p-25 : 0x1p-134;
    for (int32_t d = 0; d < D; d++) {
        double sum = 0.0, sum_abs = 0.0;
        for (int32_t j = 0; j < n; j++) {
            double x = ac_kv_elem_to_double(c->dtype, c->kv_format, v_row(c, t, b, kvh, j)[d]) *
                       (double)ac_case_v_scale(c, kvh);
            if (!isfinite(x)) return 0;
            sum += x;
            sum_abs += fabs(x);
        }
        double m = sum / n, ma = sum_abs / n;
        /* the verdict's terms for uniform weights: P rounding, accumulation, output rounding */
        double tol = AC_VERDICT_C * ((u_in + 6.0 * sqrt((double)n) * AC_U_FP32) * ma + u_out * fabs(m)) + eta;
        if (!(fabs(got_of(c, out_f32, o, r * D + d) - m) <= tol)) return 0;
    }
    return 1;
}

/* What the declared rule allows an empty row to hold. */
static int empty_o_ok(ac_empty_rule rule, const ac_case *c, const ac_tensors *t, int out_f32, const ac_outputs *o,
                      int64_t r)
{
    const int32_t D = ac_case_dv(c);
    if (rule == AC_EMPTY_MEAN_V) return row_is_mean_v(c, t, out_f32, o, r);
    for (int32_t d = 0; d < D; d++) {
        double g = got_of(c, out_f32, o, r * D + d);
        if (rule == AC_EMPTY_NAN ? !isnan(g) : g != 0.0) return 0;
    }
    return 1;
}

static int empty_lse_ok(ac_empty_rule rule, float lse)
{
    switch (rule) {
    case AC_EMPTY_ZERO_NEGINF: return lse == -INFINITY;
    case AC_EMPTY_ZERO_POSINF: return lse == INFINITY;
    case AC_EMPTY_NAN: return isnan(lse) || lse == -INFINITY;
    case AC_EMPTY_ZERO_ZERO: return lse == 0.0f;
    case AC_EMPTY_MEAN_V: return isfinite(lse);
    default: return 0;
    }
}

static ac_empty_rule declared_rule(const ac_dump *d)
{
    if (d->c.op == AC_OP_COMBINE)
        return d->conv.combine_empty == AC_COMBINE_EMPTY_FLASH_ATTN ? AC_EMPTY_ZERO_POSINF : AC_EMPTY_ZERO_NEGINF;
    return d->conv.empty_row;
}

/* The next bf16/fp16 value up or down from h (Inf past the largest). */
static double half_neighbour(ac_dtype dt, uint16_t h, int up)
{
    uint16_t mag = h & 0x7fffu, sign = h & 0x8000u, n;
    if (mag == 0) n = up ? 0x0001u : 0x8001u;
    else if ((sign == 0) == (up != 0)) n = (uint16_t)(sign | (mag + 1)); /* away from zero */
    else n = (uint16_t)(sign | (mag - 1));
    return ac_half_to_f32(dt, n);
}

int ac_map_empty_row(ac_empty_rule rule, const ac_case *c, const ac_tensors *t, int out_f32, ac_outputs *o,
                     int64_t r)
{
    const int32_t D = ac_case_dv(c);
    int mapped = 0;
    if (empty_o_ok(rule, c, t, out_f32, o, r)) {
        for (int32_t dd = 0; dd < D; dd++) {
            o->o[r * D + dd] = 0;
            if (o->o_f32) o->o_f32[r * D + dd] = 0.0f;
        }
        mapped = 1;
    }
    if (o->lse && empty_lse_ok(rule, o->lse[r])) o->lse[r] = -INFINITY;
    else if (o->lse) mapped = 0;
    return mapped;
}

int ac_row_is_empty(const ac_case *c, const ac_tensors *t, int64_t r)
{
    if (c->op == AC_OP_STORE) return 0;
    if (c->op == AC_OP_COMBINE) {
        for (int32_t s = 0; s < c->num_splits; s++)
            if (t->lse_part[r * c->num_splits + s] != -INFINITY) return 0;
        return 1;
    }
    const int64_t tok = r / c->heads_q;
    const int32_t h = (int32_t)(r % c->heads_q), b = seq_of(t->cu_seqlens_q, c->batch, tok);
    const int32_t i = (int32_t)(tok - t->cu_seqlens_q[b]);
    /* A finite sink makes a keyless row the contract's O = 0, LSE = sink: no
       empty-row convention applies to it, the verdict judges it as it is. */
    if (has_sink(c, h)) return 0;
    int32_t begin, end;
    ac_key_range((int)c->causal, c->window_left, c->window_right, i, c->seqlen_q[b], c->seqlen_k[b], &begin, &end);
    for (int32_t j = begin; j < end; j++)
        if (mask_allows(c, t, b, h, i, j)) return 0;
    return 1;
}

/* The declared conventions, applied to a copy of the outputs so that the
   verdict (which knows the contract's rules only) judges them:
   - an empty row holding what the declared rule says becomes O = 0, LSE = -inf;
   - a combine's fp16/bf16 output is judged as the fp32 value nearest the
     oracle among those that round to it (a correct fp32 combine, then one
     rounding: the verdict's fp32 bound plus that rounding). */
static void apply_conventions(const ac_dump *d, const ac_case *c, const ac_tensors *t, const ac_oracle_result *res,
                              ac_outputs *o)
{
    const int combine = c->op == AC_OP_COMBINE, out_f32 = d->conv.out_f32;
    const ac_empty_rule rule = declared_rule(d);
    const int32_t D = ac_case_dv(c);
    for (int64_t r = 0; r < res->rows; r++) {
        if (!res->checked[r]) continue;
        if (res->n_allowed[r] == 0 && !(c->op != AC_OP_COMBINE && has_sink(c, (int32_t)(r % c->heads_q)))) {
            ac_map_empty_row(rule, c, t, out_f32, o, r);
            continue;
        }
        if (!combine || out_f32) continue;
        for (int32_t dd = 0; dd < D; dd++) {
            int64_t e = r * D + dd;
            double x = ac_half_to_f32(c->dtype, o->o[e]), want = res->o[e];
            if (!isfinite(x) || !isfinite(want)) continue;
            double lo = (x + half_neighbour(c->dtype, o->o[e], 0)) / 2;
            double hi = (x + half_neighbour(c->dtype, o->o[e], 1)) / 2;
            o->o_f32[e] = (float)(want < lo ? lo : want > hi ? hi : want); /* the midpoints are fp32 values */
        }
    }
}

static ac_status copy_outputs(const ac_dump *d, const float *lse, ac_outputs *o, ac_error *err)
{
    memset(o, 0, sizeof *o);
    const ac_outputs *s = &d->out;
    if (d->c.op == AC_OP_STORE) {
        size_t n = (size_t)s->kv_elems, nv = (size_t)s->v_elems;
        o->k_cache = malloc(sizeof(uint16_t) * (n ? n : 1));
        o->v_cache = malloc(sizeof(uint16_t) * (nv ? nv : 1));
        if (!o->k_cache || !o->v_cache) return ac_fail(err, AC_ERR_NOMEM, "outputs copy: out of memory");
        memcpy(o->k_cache, s->k_cache, sizeof(uint16_t) * n);
        memcpy(o->v_cache, s->v_cache, sizeof(uint16_t) * nv);
        o->kv_elems = s->kv_elems;
        o->v_elems = s->v_elems;
        return AC_OK;
    }
    size_t rows = (size_t)(d->t.total_q * d->c.heads_q), n = rows * (size_t)ac_case_dv(&d->c);
    o->o = malloc(sizeof(uint16_t) * (n ? n : 1));
    o->o_f32 = malloc(sizeof(float) * (n ? n : 1));
    o->lse = lse ? malloc(sizeof(float) * (rows ? rows : 1)) : NULL;
    if (!o->o || !o->o_f32 || (lse && !o->lse)) return ac_fail(err, AC_ERR_NOMEM, "outputs copy: out of memory");
    memcpy(o->o, s->o, sizeof(uint16_t) * n);
    memcpy(o->o_f32, s->o_f32, sizeof(float) * n);
    if (lse) memcpy(o->lse, lse, sizeof(float) * rows);
    return AC_OK;
}

/* The oracle's fast mode carries a logit as a double-double whose low part
   must stay below 1 in magnitude (|s| < 2^53); a dump may hold values that a
   generated case never does (bf16 up to 3e38, a scale or a bias near
   FLT_MAX). Logits are bounded here by |scale| D max|q| max|k| + max|bias|
   (base-2 partial LSEs times ln 2 for a combine) and a variant past 2^48 is
   refused with a named error instead of being judged wrongly. */
#define AC_DUMP_MAX_LOGIT 0x1p48

static double max_abs_half(ac_dtype dt, const uint16_t *x, int64_t n)
{
    double m = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double a = fabs((double)ac_half_to_f32(dt, x[i]));
        if (isfinite(a) && a > m) m = a; /* non-finite values read are the oracle's to name */
    }
    return m;
}

/* max |value| of K elements: half bits, or FP8 codes times the largest k_scale. */
static double max_abs_k(const ac_case *c, const uint16_t *x, int64_t n)
{
    if (c->kv_format == AC_KV_AS_DTYPE) return max_abs_half(c->dtype, x, n);
    double m = 0.0, s = 0.0;
    for (int32_t g = 0; g < c->heads_kv; g++)
        if (ac_case_k_scale(c, g) > s) s = ac_case_k_scale(c, g);
    for (int64_t i = 0; i < n; i++) {
        double a = fabs(ac_kv_elem_to_double(c->dtype, c->kv_format, x[i]));
        if (isfinite(a) && a > m) m = a;
    }
    return m * s;
}

static double max_abs_f32(const float *x, int64_t n)
{
    double m = 0.0;
    for (int64_t i = 0; x && i < n; i++) {
        double a = fabs((double)x[i]);
        if (isfinite(a) && a > m) m = a;
    }
    return m;
}

static ac_status check_logit_range(const variant *v, ac_error *err)
{
    const ac_case *c = &v->c;
    const ac_tensors *t = &v->t;
    double bound = 0.0;
    if (c->op == AC_OP_COMBINE) {
        if (!v->oracle_lse_base2) return AC_OK; /* natural logits are exact doubles: no low part */
        bound = max_abs_f32(t->lse_part, t->total_q * c->heads_q * c->num_splits) * 0.6931471805599453;
    } else if (c->op != AC_OP_STORE) {
        double scale = c->scale_given ? fabs((double)c->scale) : 1.0 / sqrt((double)c->head_dim);
        double qm = max_abs_half(c->dtype, t->q, t->total_q * c->heads_q * c->head_dim);
        double km = 0.0; /* over the keys that are read: unused cache slots may hold anything */
        const int64_t row = (int64_t)c->heads_kv * c->head_dim;
        if (!c->paged) km = max_abs_k(c, t->k, t->kv_elems);
        for (int32_t b = 0; c->paged && b < c->batch; b++)
            for (int32_t p = 0; p < c->seqlen_k[b]; p++) {
                int64_t slot = ac_pos_slot(c->block_table + (int64_t)b * c->max_blocks_per_seq, p, c->block_size);
                double m = max_abs_k(c, t->k + slot * row, row);
                if (m > km) km = m;
            }
        bound = scale * c->head_dim * qm * km;
        if (c->mask == AC_MASK_ADDITIVE) bound += max_abs_f32(t->mask_bias, t->mask_off[c->batch]);
        int64_t span = 0; /* |j - i - (Lk - Lq)| < max(Lq, Lk) */
        for (int32_t b = 0; b < c->batch; b++) {
            int64_t m = c->seqlen_q[b] > c->seqlen_k[b] ? c->seqlen_q[b] : c->seqlen_k[b];
            if (m > span) span = m;
        }
        bound += max_abs_f32(c->alibi_slopes, c->n_alibi) * (double)span;
    }
    if (bound > AC_DUMP_MAX_LOGIT)
        return ac_fail(err, AC_ERR_NUMERIC, "logits up to %.3g (|scale| D max|q| max|k| + max|bias|): past 2^48, "
                       "beyond what the oracle judges", bound);
    return AC_OK;
}

/* Oracle of the variant, the conventions, the verdict. With keep, r holds
   the oracle, the judged outputs, the error map and a view of v->t. */
static ac_status judge(const ac_dump *d, const variant *v, int64_t max_rows, uint64_t seed, int threads, int keep,
                       ac_check_result *r)
{
    memset(r, 0, sizeof *r);
    ac_error *err = &r->error;
    ac_oracle_opts oo;
    memset(&oo, 0, sizeof oo);
    oo.mode = AC_ORACLE_FAST;
    oo.exact_default_scale = 1; /* "default" is the real 1/sqrt(D): the verdict counts the fp32 rounding */
    oo.lse_base2 = v->oracle_lse_base2;
    oo.max_rows = max_rows;
    oo.sample_seed = seed;
    oo.threads = threads;
    ac_outputs j;
    memset(&j, 0, sizeof j);
    double *map = NULL;
    r->stage = "oracle";
    ac_status st = check_logit_range(v, err);
    if (!st) st = ac_oracle_run(&v->c, &v->t, &oo, &r->oracle, err);
    const int bitwise = ac_family_judge(v->c.op) == AC_JUDGE_BITWISE;
    if (!st) {
        r->stage = "outputs";
        st = copy_outputs(d, d->conv.has_lse ? v->lse : NULL, &j, err);
    }
    if (!st && !bitwise) {
        apply_conventions(d, &v->c, &v->t, &r->oracle, &j);
        map = malloc(sizeof(double) * (size_t)(r->oracle.rows * ac_case_dv(&v->c) + 1));
        if (!map) st = ac_fail(err, AC_ERR_NOMEM, "error map: out of memory");
    }
    if (!st) {
        r->stage = "verdict";
        ac_verdict_opts vo = {d->conv.out_f32, v->verdict_lse_base2, !d->conv.has_lse};
        st = ac_verdict_judge(&v->c, &v->t, &r->oracle, &j, NULL, &vo, &r->verdict, map, err);
    }
    r->status = st;
    if (keep) {
        r->tensors = v->t;
        r->outputs = j;
        r->err_map = map;
    } else {
        ac_outputs_free(&j);
        ac_oracle_result_free(&r->oracle);
        free(map);
    }
    return st;
}

ac_status ac_dump_check(const ac_dump *d, const ac_dump_check_opts *o, ac_check_result *r)
{
    static const ac_dump_check_opts defaults = {0, 0, 0};
    if (!o) o = &defaults;
    variant v;
    ac_status st = variant_init(&v, d, NULL);
    if (st) {
        memset(r, 0, sizeof *r);
        r->stage = "copy";
        r->status = st;
        return ac_fail(&r->error, st, "dump check: out of memory");
    }
    st = judge(d, &v, o->max_rows, o->sample_seed, o->threads, 1, r);
    r->tensors = d->t; /* the view outlives the variant: it is the dump's own */
    variant_free(&v);
    return st;
}

void ac_dump_check_free(ac_check_result *r)
{
    ac_outputs_free(&r->outputs);
    ac_oracle_result_free(&r->oracle);
    free(r->err_map);
    memset(r, 0, sizeof *r); /* r->tensors is a view: not freed */
}

/* ---- the empty rows ------------------------------------------------------------------- */

static const char *const rule_about[AC_EMPTY_COUNT] = {
    "O = 0, LSE = -inf: this contract's convention (zero_neginf)",
    "O = 0, LSE = +inf: flash-attn 2/3's convention (zero_posinf)",
    "O = NaN: PyTorch SDPA before 2.5 (nan)",
    "O = 0, LSE = 0: PyTorch's CPU flash kernel (zero_zero)",
    "O = mean of V, LSE finite: a finfo(dtype).min mask (mean_v)",
};

void ac_dump_empty_report(const ac_dump *d, const ac_oracle_result *res, ac_empty_report *e)
{
    memset(e, 0, sizeof *e);
    e->convention = -1;
    const ac_case *c = &d->c;
    if (c->op == AC_OP_STORE || !res || !res->n_allowed) {
        snprintf(e->text, sizeof e->text, "empty rows: none to look at");
        return;
    }
    const int combine = c->op == AC_OP_COMBINE, out_f32 = d->conv.out_f32;
    const ac_empty_rule declared = declared_rule(d);
    e->has_lse = d->conv.has_lse;
    int64_t ok = 0; /* rows holding what the declared rule allows */
    for (int64_t r = 0; r < res->rows; r++) {
        if (!res->checked[r]) continue;
        e->rows_checked++;
        if (res->n_allowed[r] != 0 || (!combine && has_sink(c, (int32_t)(r % c->heads_q)))) continue;
        e->rows++;
        ok += empty_o_ok(declared, c, &d->t, out_f32, &d->out, r) &&
              (!e->has_lse || empty_lse_ok(declared, d->out.lse[r]));
        if (empty_o_ok(AC_EMPTY_ZERO_NEGINF, c, &d->t, out_f32, &d->out, r)) e->o_zero++;
        else if (empty_o_ok(AC_EMPTY_NAN, c, &d->t, out_f32, &d->out, r)) e->o_nan++;
        else if (!combine && row_is_mean_v(c, &d->t, out_f32, &d->out, r)) e->o_mean_v++;
        else e->o_other++;
        if (!e->has_lse) continue;
        float l = d->out.lse[r];
        if (l == -INFINITY) e->lse_neginf++;
        else if (l == INFINITY) e->lse_posinf++;
        else if (isnan(l)) e->lse_nan++;
        else if (l == 0.0f) e->lse_zero++;
        else e->lse_finite++;
    }
    const int64_t n = e->rows;
    e->as_declared = ok == n;
    char decl[64];
    if (combine) snprintf(decl, sizeof decl, "combine_empty %s", ac_combine_empty_name(d->conv.combine_empty));
    else snprintf(decl, sizeof decl, "empty_row %s", ac_empty_rule_name(declared));
    if (n == 0) {
        snprintf(e->text, sizeof e->text, "empty rows: none of the %lld checked rows has an empty allowed set",
                 (long long)e->rows_checked);
        return;
    }
    const int lse = e->has_lse;
    if (e->o_zero == n && lse && e->lse_neginf == n) e->convention = AC_EMPTY_ZERO_NEGINF;
    else if (e->o_zero == n && lse && e->lse_posinf == n) e->convention = AC_EMPTY_ZERO_POSINF;
    else if (e->o_zero == n && lse && e->lse_zero == n) e->convention = AC_EMPTY_ZERO_ZERO;
    else if (e->o_nan == n) e->convention = AC_EMPTY_NAN;
    else if (e->o_mean_v == n && (!lse || e->lse_finite + e->lse_zero == n)) e->convention = AC_EMPTY_MEAN_V;
    else if (e->o_zero == n && !lse) e->convention = AC_EMPTY_COUNT;
    const char *what;
    char mixed[200];
    if (e->convention >= 0 && e->convention < AC_EMPTY_COUNT) {
        what = rule_about[e->convention];
        if (combine && e->convention == AC_EMPTY_ZERO_POSINF)
            what = "O = 0, LSE = +inf: flash-attn's combine (flash_attn)";
        if (combine && e->convention == AC_EMPTY_ZERO_NEGINF) what = "O = 0, LSE = -inf: the guarded combine (guard)";
    } else if (e->convention == AC_EMPTY_COUNT) {
        what = "O = 0, no LSE returned: PyTorch SDPA's math path (2.5 and later), or any O = 0 rule";
    } else {
        snprintf(mixed, sizeof mixed, "O: %lld zero, %lld NaN, %lld mean of V, %lld other; LSE: %lld -inf, %lld +inf, "
                 "%lld zero, %lld NaN, %lld finite: none of SEMANTICS.md's conventions", (long long)e->o_zero,
                 (long long)e->o_nan, (long long)e->o_mean_v, (long long)e->o_other, (long long)e->lse_neginf,
                 (long long)e->lse_posinf, (long long)e->lse_zero, (long long)e->lse_nan, (long long)e->lse_finite);
        what = mixed;
    }
    snprintf(e->text, sizeof e->text, "empty rows: %lld of %lld checked rows; they hold %s; declared %s%s",
             (long long)n, (long long)e->rows_checked, what, decl,
             e->as_declared ? " (as declared)" : " (NOT as declared)");
}

/* ---- the hypotheses ----------------------------------------------------------------------- */

enum { H_OK = 0, H_NA = 1, H_SKIP = 2, H_NOMEM = -1 };

static const char *const causal_long[AC_CAUSAL_COUNT] = {"NONE", "TOP_LEFT", "BOTTOM_RIGHT"};

static int na(ac_hypothesis *h, const char *why)
{
    snprintf(h->why_not, sizeof h->why_not, "%s", why);
    return H_NA;
}

static int hyp_scale(const ac_dump *d, variant *v, ac_hypothesis *h, int arg)
{
    const ac_case *c = &d->c;
    if (c->scale_given) snprintf(h->declared, sizeof h->declared, "scale=%.9g", (double)c->scale);
    else snprintf(h->declared, sizeof h->declared, "scale=default");
    if (arg == 0) {
        snprintf(h->name, sizeof h->name, "scale=1.0");
        snprintf(h->about, sizeof h->about, c->scale_given ? "scale 1.0 used instead of the given scale"
                                                           : "the default scale taken as 1.0 instead of 1/sqrt(D)");
        if (c->scale_given && c->scale == 1.0f) return H_SKIP;
        if (!c->scale_given && c->head_dim == 1) return na(h, "D = 1: 1/sqrt(D) is 1.0");
        v->c.scale_given = 1;
        v->c.scale = 1.0f;
        return H_OK;
    }
    if (!c->scale_given) return H_SKIP;
    snprintf(h->name, sizeof h->name, "scale=default");
    snprintf(h->about, sizeof h->about, "1/sqrt(D) used instead of the given scale");
    double def = 1.0 / sqrt((double)c->head_dim);
    if (fabs((double)c->scale - def) <= 4.0 * AC_U_FP32 * def) return na(h, "the given scale is 1/sqrt(D)");
    v->c.scale_given = 0;
    return H_OK;
}

static int hyp_causal(const ac_dump *d, variant *v, ac_hypothesis *h, int mode)
{
    const ac_case *c = &d->c;
    if (mode == (int)c->causal) return H_SKIP;
    snprintf(h->name, sizeof h->name, "causal=%s", causal_long[mode]);
    snprintf(h->declared, sizeof h->declared, "causal=%s", causal_long[c->causal]);
    static const char *const about[AC_CAUSAL_COUNT] = {
        "no causal mask: every key < Lk",
        "top-left aligned causal mask, j <= i (SDPA's is_causal)",
        "bottom-right aligned causal mask, j <= i + Lk - Lq (flash-attn >= 2.1)",
    };
    snprintf(h->about, sizeof h->about, "%s", about[mode]);
    int differs = 0;
    for (int32_t b = 0; b < c->batch && !differs; b++)
        for (int32_t i = 0; i < c->seqlen_q[b] && !differs; i++)
            differs = ac_causal_end(mode, i, c->seqlen_q[b], c->seqlen_k[b]) !=
                      ac_causal_end((int)c->causal, i, c->seqlen_q[b], c->seqlen_k[b]);
    if (!differs) return na(h, "every query sees the same keys under both (Lq and Lk make them agree)");
    v->c.causal = (ac_causal)mode;
    return H_OK;
}

static int hyp_gqa(const ac_dump *d, variant *v, ac_hypothesis *h, int arg)
{
    (void)arg;
    const ac_case *c = &d->c;
    snprintf(h->name, sizeof h->name, "kv_head=h%%Hkv");
    snprintf(h->declared, sizeof h->declared, "kv_head=h/(Hq/Hkv)");
    snprintf(h->about, sizeof h->about, "query head h reads KV head h %% Hkv instead of h / (Hq/Hkv)");
    const int32_t Hq = c->heads_q, Hkv = c->heads_kv, D = c->head_dim, Dv = ac_case_dv(c);
    if (Hkv == 1 || Hkv == Hq) return na(h, "Hkv = 1 or Hkv = Hq: both mappings agree");
    int64_t slots = c->paged ? (int64_t)c->num_blocks * c->block_size : d->t.total_k;
    if (slots * Hq * (D > Dv ? D : Dv) > ((int64_t)1 << 31))
        return na(h, "the expanded K/V would exceed 2^31 elements");
    /* K/V with one head per query head, holding the head the bug reads. */
    size_t n = (size_t)(slots * Hq * D), nv = (size_t)(slots * Hq * Dv);
    uint16_t *k = variant_alloc(v, n, sizeof(uint16_t)), *vv = variant_alloc(v, nv, sizeof(uint16_t));
    if (!k || !vv) return H_NOMEM;
    for (int64_t s = 0; s < slots; s++)
        for (int32_t q = 0; q < Hq; q++) {
            memcpy(k + (s * Hq + q) * D, d->t.k + (s * Hkv + q % Hkv) * D, sizeof(uint16_t) * (size_t)D);
            memcpy(vv + (s * Hq + q) * Dv, d->t.v + (s * Hkv + q % Hkv) * Dv, sizeof(uint16_t) * (size_t)Dv);
        }
    v->t.k = k;
    v->t.v = vv;
    v->t.kv_elems = (int64_t)n;
    v->t.v_elems = (int64_t)nv;
    v->c.heads_kv = Hq;
    if (c->n_kv_scales > 1) { /* per-head scales follow the heads they belong to */
        float ks[AC_MAX_HEADS], vs[AC_MAX_HEADS];
        for (int32_t q = 0; q < Hq; q++) {
            ks[q] = c->k_scales[q % Hkv];
            vs[q] = c->v_scales[q % Hkv];
        }
        ac_error e;
        if (ac_case_set_kv_scales(&v->c, ks, vs, Hq, &e)) return H_NOMEM;
    }
    return H_OK;
}

/* Masks that move the allowed set: BOUND shifts each row's causal end by
   `delta` (causal NONE + a mask holding the shifted bound and the declared
   mask); DROP_LAST removes each row's last allowed key (declared causal +
   the declared mask minus that key). */
enum { MASK_BOUND = 0, MASK_DROP_LAST };
#define MAX_MASK_ENTRIES ((int64_t)1 << 28)

static int mask_variant(const ac_dump *d, variant *v, ac_hypothesis *h, int kind, int delta)
{
    const ac_case *c = &d->c;
    const ac_tensors *t = &d->t;
    const int64_t Hm = c->mask_per_head ? c->heads_q : 1;
    int64_t total = 0;
    for (int32_t b = 0; b < c->batch; b++) total += Hm * c->seqlen_q[b] * c->seqlen_k[b];
    if (total > MAX_MASK_ENTRIES) return na(h, "the mask would exceed 2^28 entries");
    const int additive = c->mask == AC_MASK_ADDITIVE;
    uint8_t *mb = additive ? NULL : variant_alloc(v, (size_t)total, 1);
    float *mf = additive ? variant_alloc(v, (size_t)total, sizeof(float)) : NULL;
    int64_t *off = variant_alloc(v, (size_t)c->batch + 1, sizeof(int64_t));
    if ((additive ? !mf : !mb) || !off) return H_NOMEM;
    int changed = 0;
    for (int32_t b = 0; b < c->batch; b++) {
        const int32_t lq = c->seqlen_q[b], lk = c->seqlen_k[b];
        off[b + 1] = off[b] + Hm * lq * lk;
        for (int32_t hh = 0; hh < Hm; hh++)
            for (int32_t i = 0; i < lq; i++) {
                const int32_t end = ac_causal_end((int)c->causal, i, lq, lk);
                int64_t raw = c->causal == AC_CAUSAL_TOP_LEFT ? (int64_t)i + 1
                              : c->causal == AC_CAUSAL_BOTTOM_RIGHT ? (int64_t)i + 1 + lk - lq : lk;
                raw += delta;
                const int64_t new_end = raw < 0 ? 0 : raw > lk ? lk : raw;
                int32_t last = -1;
                if (kind == MASK_DROP_LAST)
                    for (int32_t j = end - 1; j >= 0 && last < 0; j--)
                        if (mask_allows(c, t, b, hh, i, j)) last = j;
                for (int32_t j = 0; j < lk; j++) {
                    const int allowed = mask_allows(c, t, b, hh, i, j);
                    const int was = j < end && allowed;
                    const int now = kind == MASK_BOUND ? (j < new_end && allowed) : (was && j != last);
                    changed |= was != now;
                    const int64_t e = off[b] + ((int64_t)hh * lq + i) * lk + j;
                    /* MASK_BOUND carries the bound in the mask; DROP_LAST keeps the causal mode */
                    const int keep = kind == MASK_BOUND ? now : (allowed && j != last);
                    if (additive) mf[e] = keep ? t->mask_bias[e] : -INFINITY;
                    else mb[e] = (uint8_t)keep;
                }
            }
    }
    if (!changed) return na(h, "the same keys as declared for every row");
    v->c.mask = additive ? AC_MASK_ADDITIVE : AC_MASK_BOOL;
    v->c.mask_per_head = c->mask_per_head;
    v->t.mask_off = off;
    v->t.mask_bool = mb;
    v->t.mask_bias = mf;
    if (kind == MASK_BOUND) v->c.causal = AC_CAUSAL_NONE;
    return H_OK;
}

static int hyp_bound(const ac_dump *d, variant *v, ac_hypothesis *h, int delta)
{
    snprintf(h->name, sizeof h->name, "causal_bound%+d", delta);
    snprintf(h->declared, sizeof h->declared, "causal=%s bound", causal_long[d->c.causal]);
    snprintf(h->about, sizeof h->about, delta > 0 ? "each query also sees the key just past its causal bound"
                                                  : "each query misses its diagonal key (the causal bound one short)");
    if (d->c.causal == AC_CAUSAL_NONE) return na(h, "no causal mask declared");
    return mask_variant(d, v, h, MASK_BOUND, delta);
}

static int hyp_drop_last(const ac_dump *d, variant *v, ac_hypothesis *h, int arg)
{
    (void)arg;
    snprintf(h->name, sizeof h->name, "last_key_dropped");
    snprintf(h->declared, sizeof h->declared, "every allowed key");
    snprintf(h->about, sizeof h->about, "the last allowed key of each row is never read (a loop end one short)");
    return mask_variant(d, v, h, MASK_DROP_LAST, 0);
}

static int hyp_lse_base(const ac_dump *d, variant *v, ac_hypothesis *h, int arg)
{
    const int b2 = d->conv.lse_base2, combine = d->c.op == AC_OP_COMBINE;
    if (combine && arg == 0) {
        snprintf(h->name, sizeof h->name, "lse_base=%s(in+out)", b2 ? "e" : "2");
        snprintf(h->about, sizeof h->about, "the partials' LSEs and the LSE out are base %s (declared %s)",
                 b2 ? "e" : "2", b2 ? "2" : "e");
    } else {
        snprintf(h->name, sizeof h->name, "lse_base=%s", b2 ? "e" : "2");
        snprintf(h->about, sizeof h->about, "the LSE out is base %s, %s (declared base %s)", b2 ? "e" : "2",
                 b2 ? "the natural log" : "log2 of the sum as FlashInfer", b2 ? "2" : "e");
    }
    snprintf(h->declared, sizeof h->declared, "lse_base=%s", b2 ? "2" : "e");
    if (combine && arg == 0) {
        v->oracle_lse_base2 = !v->oracle_lse_base2;
        return H_OK;
    }
    if (!d->conv.has_lse) return na(h, "the dump holds no LSE");
    if (combine) v->oracle_lse_base2 = b2; /* partials as declared; the LSE out read in the other base */
    v->verdict_lse_base2 = !b2 ? 1 : 0;
    if (combine && b2) return na(h, "a base-2 combine's LSE out read as natural: not modelled");
    return H_OK;
}

static int hyp_lse_layout(const ac_dump *d, variant *v, ac_hypothesis *h, int arg)
{
    (void)arg;
    const int ht = d->conv.lse_ht;
    snprintf(h->name, sizeof h->name, "lse_layout=%s", ht ? "TH" : "HT");
    snprintf(h->declared, sizeof h->declared, "lse_layout=%s", ht ? "HT" : "TH");
    snprintf(h->about, sizeof h->about, "the LSE is %s where %s is declared", ht ? "[total_q, Hq]" : "[Hq, total_q]",
             ht ? "[Hq, total_q]" : "[total_q, Hq]");
    if (!d->conv.has_lse) return na(h, "the dump holds no LSE");
    const int64_t T = d->t.total_q, H = d->c.heads_q;
    if (T <= 1 || H <= 1) return na(h, "total_q or Hq is 1: both layouts agree");
    float *l = variant_alloc(v, (size_t)(T * H), sizeof(float));
    if (!l) return H_NOMEM;
    for (int64_t t = 0; t < T; t++)
        for (int64_t q = 0; q < H; q++) l[t * H + q] = ht ? d->lse_file[t * H + q] : d->lse_file[q * T + t];
    v->lse = l;
    return H_OK;
}

static int hyp_swap(const ac_dump *d, variant *v, ac_hypothesis *h, int arg)
{
    (void)arg;
    snprintf(h->name, sizeof h->name, "k_v_swapped");
    snprintf(h->declared, sizeof h->declared, "k, v as given");
    snprintf(h->about, sizeof h->about, "K and V swapped: logits from q.v, the weights applied to K");
    if (ac_case_dv(&d->c) != d->c.head_dim) return na(h, "D_v != D_qk: q.v has no meaning, the swap cannot happen");
    v->t.k = d->t.v;
    v->t.v = d->t.k;
    return H_OK;
}

/* Paged K/V read with a wrong slot function, gathered into contiguous K/V. */
enum { G_PAST_ONE = 0, G_PAST_BLOCK_END, G_TABLE_PLUS_ONE, G_OFFSET_PLUS_ONE, G_OFFSET_MINUS_ONE };

static int hyp_gather(const ac_dump *d, variant *v, ac_hypothesis *h, int kind)
{
    const ac_case *c = &d->c;
    static const char *const names[] = {"reads_seqlen+1", "reads_to_block_end", "block_table+1", "slot_offset+1",
                                        "slot_offset-1"};
    static const char *const about[] = {
        "one key past seqlens_k is read (a length off by one)",
        "every slot of a sequence's last block is read, past seqlens_k",
        "each block-table entry is read one too high",
        "position p is read from the slot after its own (offset p % block_size + 1)",
        "position p is read from the slot before its own (offset p % block_size - 1)",
    };
    snprintf(h->name, sizeof h->name, "%s", names[kind]);
    snprintf(h->about, sizeof h->about, "%s", about[kind]);
    snprintf(h->declared, sizeof h->declared, "%s",
             kind <= G_PAST_BLOCK_END ? "seqlens_k keys" : "slot = table[p / bs] * bs + p % bs");
    if (!c->paged) return na(h, "contiguous K/V: no paged cache");
    const int past = kind <= G_PAST_BLOCK_END;
    if (past && c->mask != AC_MASK_NONE) return na(h, "the explicit mask covers seqlens_k keys only");
    const int32_t B = c->batch, bs = c->block_size, Hkv = c->heads_kv, D = c->head_dim;
    const int64_t pool = (int64_t)c->num_blocks * bs, cap = (int64_t)c->max_blocks_per_seq * bs;
    int32_t *lk = variant_alloc(v, (size_t)B + 1, sizeof(int32_t));
    int32_t *cu = variant_alloc(v, (size_t)B + 1, sizeof(int32_t));
    if (!lk || !cu) return H_NOMEM;
    int changed = !past;
    int64_t total = 0;
    for (int32_t b = 0; b < B; b++) {
        int64_t n = c->seqlen_k[b];
        if (kind == G_PAST_ONE) n += 1;
        if (kind == G_PAST_BLOCK_END) n = (int64_t)ac_blocks_used(c->seqlen_k[b], bs) * bs;
        if (n > cap) return na(h, "past the block table's capacity");
        changed |= n != c->seqlen_k[b];
        lk[b] = (int32_t)n;
        total += n;
        if (total > INT32_MAX) return na(h, "over 2^31 keys");
    }
    if (!changed) return na(h, "every sequence ends on a block boundary: no extra slot");
    const int32_t Dv = ac_case_dv(c);
    if (total * Hkv * (D > Dv ? D : Dv) > ((int64_t)1 << 31))
        return na(h, "the gathered K/V would exceed 2^31 elements");
    uint16_t *k = variant_alloc(v, (size_t)(total * Hkv * D), sizeof(uint16_t));
    uint16_t *vv = variant_alloc(v, (size_t)(total * Hkv * Dv), sizeof(uint16_t));
    if (!k || !vv) return H_NOMEM;
    const int64_t row = (int64_t)Hkv * D, vrow = (int64_t)Hkv * Dv;
    for (int32_t b = 0; b < B; b++) {
        cu[b + 1] = cu[b] + lk[b];
        const int32_t *tr = c->block_table + (int64_t)b * c->max_blocks_per_seq;
        for (int32_t p = 0; p < lk[b]; p++) {
            int64_t entry = tr[p / bs];
            if (kind == G_TABLE_PLUS_ONE) entry += 1;
            if (entry < 0 || entry >= c->num_blocks) {
                snprintf(h->why_not, sizeof h->why_not, "block_table[%d][%d]%s = %lld: not a block of the pool", b,
                         p / bs, kind == G_TABLE_PLUS_ONE ? " + 1" : "", (long long)entry);
                return H_NA;
            }
            int64_t slot = entry * bs + p % bs + (kind == G_OFFSET_PLUS_ONE) - (kind == G_OFFSET_MINUS_ONE);
            if (slot < 0 || slot >= pool) return na(h, "a slot outside the pool");
            memcpy(k + ((int64_t)cu[b] + p) * row, d->t.k + slot * row, sizeof(uint16_t) * (size_t)row);
            memcpy(vv + ((int64_t)cu[b] + p) * vrow, d->t.v + slot * vrow, sizeof(uint16_t) * (size_t)vrow);
        }
    }
    for (int32_t b = 0; b < B; b++) v->c.seqlen_k[b] = lk[b];
    v->c.paged = 0;
    v->c.op = AC_OP_PREFILL; /* the same function on contiguous K/V (decode is paged by definition) */
    v->t.k = k;
    v->t.v = vv;
    v->t.kv_elems = total * row;
    v->t.v_elems = total * vrow;
    v->t.cu_seqlens_k = cu;
    v->t.total_k = total;
    return H_OK;
}

/* ---- the features' classic bugs (docs/DIAGNOSIS.md, "Windows, softcap, ALiBi, sinks") ---- */

static void label(ac_hypothesis *h, const char *name, const char *declared, const char *about)
{
    snprintf(h->name, sizeof h->name, "%s", name);
    snprintf(h->declared, sizeof h->declared, "%s", declared);
    snprintf(h->about, sizeof h->about, "%s", about);
}

/* 1 if some row's causal-and-window key range differs between cases a and b. */
static int ranges_differ(const ac_case *a, const ac_case *b)
{
    for (int32_t s = 0; s < a->batch; s++)
        for (int32_t i = 0; i < a->seqlen_q[s]; i++) {
            int32_t b0, e0, b1, e1;
            ac_key_range((int)a->causal, a->window_left, a->window_right, i, a->seqlen_q[s], a->seqlen_k[s], &b0, &e0);
            ac_key_range((int)b->causal, b->window_left, b->window_right, i, b->seqlen_q[s], b->seqlen_k[s], &b1, &e1);
            if ((e0 > b0 || e1 > b1) && (b0 != b1 || e0 != e1)) return 1;
        }
    return 0;
}

static int hyp_window_side(const ac_dump *d, variant *v, ac_hypothesis *h, int arg)
{
    const ac_case *c = &d->c;
    const int right = arg >= 2, delta = (arg & 1) ? -1 : 1;
    const int32_t w = right ? c->window_right : c->window_left;
    snprintf(h->name, sizeof h->name, "window_%s%+d", right ? "right" : "left", delta);
    snprintf(h->declared, sizeof h->declared, "window=%d,%d", c->window_left, c->window_right);
    snprintf(h->about, sizeof h->about, "the window one key %s on the %s side (a bound off by one)",
             delta > 0 ? "wider" : "narrower", right ? "right" : "left");
    if (c->window_left < 0 && c->window_right < 0) return H_SKIP; /* no window: nothing to say */
    if (w < 0) return na(h, right ? "no right window bound declared" : "no left window bound declared");
    if ((int64_t)w + delta < 0) return na(h, "the side is 0 keys wide: one less is no window");
    if ((int64_t)w + delta > INT32_MAX) return na(h, "the side is already as wide as a window can be");
    if (right) v->c.window_right = w + delta;
    else v->c.window_left = w + delta;
    if (!ranges_differ(c, &v->c)) return na(h, "the same keys as declared for every row");
    return H_OK;
}

static int hyp_alibi_sign(const ac_dump *d, variant *v, ac_hypothesis *h, int arg)
{
    (void)arg;
    label(h, "alibi_sign_flipped", "alibi=+slope*(j-i-(Lk-Lq))",
          "ALiBi added as -slope * (j - i - (Lk - Lq)): the distance's sign flipped");
    if (!d->c.n_alibi) return H_SKIP;
    int any = 0;
    for (int32_t k = 0; k < v->c.n_alibi; k++) {
        any |= v->c.alibi_slopes[k] != 0.0f;
        v->c.alibi_slopes[k] = -v->c.alibi_slopes[k];
    }
    if (!any) return na(h, "every slope is 0");
    return H_OK;
}

static int hyp_softcap_ignored(const ac_dump *d, variant *v, ac_hypothesis *h, int arg)
{
    (void)arg;
    char decl[40];
    snprintf(decl, sizeof decl, "softcap=%.9g", (double)d->c.softcap);
    label(h, "softcap_ignored", decl, "the logits not capped: softcap ignored");
    if (d->c.softcap == 0.0f) return H_SKIP;
    v->c.softcap = 0.0f;
    return H_OK;
}

static int hyp_sinks_ignored(const ac_dump *d, variant *v, ac_hypothesis *h, int arg)
{
    (void)arg;
    label(h, "sinks_ignored", "sinks in the denominator", "the sinks left out of the softmax's denominator");
    if (!d->c.n_sinks) return H_SKIP;
    int any = 0;
    for (int32_t k = 0; k < d->c.n_sinks; k++) any |= d->c.sinks[k] != -INFINITY;
    if (!any) return na(h, "every sink is -inf");
    free(v->c.sinks);
    v->c.sinks = NULL;
    v->c.n_sinks = 0;
    return H_OK;
}

/* Hypotheses no case field expresses, as an explicit per-head additive mask
   over every (query, key) of each sequence that carries the whole allowed set
   and the logit's extra terms (the variant's causal mode, window and ALiBi
   are then off):
   - F_WINDOW_TOP_LEFT: the window's diagonal at j = i (the causal bound kept);
   - F_ALIBI_ABS: ALiBi as -slope * |j - i - off| (flash-attn's convention);
   - F_SOFTCAP_AFTER_MASK(_RANGE): tanh after masking, so that an excluded key
     the kernel visits weighs in with logit -c: every key of the row, or only
     the keys of the causal-and-window range (the explicit mask's exclusions). */
enum { F_WINDOW_TOP_LEFT = 0, F_ALIBI_ABS, F_SOFTCAP_AFTER_MASK, F_SOFTCAP_AFTER_MASK_RANGE };

static const uint16_t *kv_at(const ac_case *c, const ac_tensors *t, const uint16_t *base, int32_t b, int32_t kvh,
                             int32_t j)
{
    int64_t off = c->paged
        ? ac_cache_offset(ac_pos_slot(c->block_table + (int64_t)b * c->max_blocks_per_seq, j, c->block_size), kvh,
                          c->heads_kv, c->head_dim)
        : ac_thd_offset((int64_t)t->cu_seqlens_k[b] + j, kvh, c->heads_kv, c->head_dim);
    return base + off;
}

static int feature_mask_variant(const ac_dump *d, variant *v, ac_hypothesis *h, int kind)
{
    const ac_case *c = &d->c;
    const ac_tensors *t = &d->t;
    const int32_t Hq = c->heads_q, D = c->head_dim;
    int64_t total = 0;
    for (int32_t b = 0; b < c->batch; b++) total += (int64_t)Hq * c->seqlen_q[b] * c->seqlen_k[b];
    if (total > MAX_MASK_ENTRIES) return na(h, "the mask would exceed 2^28 entries");
    float *mf = variant_alloc(v, (size_t)total, sizeof(float));
    int64_t *off = variant_alloc(v, (size_t)c->batch + 1, sizeof(int64_t));
    if (!mf || !off) return H_NOMEM;
    const double scale = c->scale_given ? (double)c->scale : 1.0 / sqrt((double)D), cap = (double)c->softcap;
    int changed = 0;
    for (int32_t b = 0; b < c->batch; b++) {
        const int32_t lq = c->seqlen_q[b], lk = c->seqlen_k[b];
        off[b + 1] = off[b] + (int64_t)Hq * lq * lk;
        for (int32_t hh = 0; hh < Hq; hh++)
            for (int32_t i = 0; i < lq; i++) {
                int32_t kb, ke;
                ac_key_range((int)c->causal, c->window_left, c->window_right, i, lq, lk, &kb, &ke);
                const int32_t cend = ac_causal_end((int)c->causal, i, lq, lk);
                for (int32_t j = 0; j < lk; j++) {
                    const int mask_ok = mask_allows(c, t, b, hh, i, j);
                    const int was = j >= kb && j < ke && mask_ok;
                    const float dist = ac_alibi_dist(i, j, lq, lk);
                    const float slope = c->n_alibi ? c->alibi_slopes[hh] : 0.0f;
                    float extra = slope * dist; /* the declared ALiBi, as the kernels compute it in fp32 */
                    int now = was;
                    double logit = NAN; /* a fixed logit (softcap after the mask), else NAN */
                    if (kind == F_WINDOW_TOP_LEFT) {
                        now = j < cend && mask_ok && (c->window_left < 0 || j >= (int64_t)i - c->window_left) &&
                              (c->window_right < 0 || j <= (int64_t)i + c->window_right);
                    } else if (kind == F_ALIBI_ABS) {
                        extra = -slope * fabsf(dist);
                        changed |= was && dist > 0.0f && slope != 0.0f;
                    } else if (kind >= F_SOFTCAP_AFTER_MASK) {
                        /* tanh last: an allowed key's capped logit takes ALiBi and the bias
                           inside; an excluded key the kernel visits comes back as -c */
                        const int visited = kind == F_SOFTCAP_AFTER_MASK || (j >= kb && j < ke);
                        double bias = 0.0;
                        if (was && c->mask == AC_MASK_ADDITIVE)
                            bias = t->mask_bias[t->mask_off[b] +
                                                ((int64_t)(c->mask_per_head ? hh : 0) * lq + i) * lk + j];
                        if (was) logit = INFINITY; /* computed below from q.k */
                        else if (visited) logit = -cap;
                        now = was || visited;
                        extra = (float)bias + extra; /* s + alibi + bias, inside the tanh */
                        changed |= was && extra != 0.0f; /* an allowed logit moves too */
                    }
                    changed |= was != now;
                    const int64_t e = off[b + 1] - (int64_t)Hq * lq * lk + ((int64_t)hh * lq + i) * lk + j;
                    if (!now) {
                        mf[e] = -INFINITY;
                        continue;
                    }
                    if (isnan(logit)) {
                        double bias = c->mask == AC_MASK_ADDITIVE
                            ? t->mask_bias[t->mask_off[b] + ((int64_t)(c->mask_per_head ? hh : 0) * lq + i) * lk + j]
                            : 0.0;
                        mf[e] = (float)(bias + (double)extra);
                        continue;
                    }
                    /* the bias that brings the oracle's c tanh(scale q.k / c) to the logit:
                       -c, or c tanh((scale q.k + alibi + bias) / c) for an allowed key */
                    const int32_t kvh = ac_kv_head(hh, Hq, c->heads_kv);
                    const uint16_t *qr = t->q + ac_thd_offset((int64_t)t->cu_seqlens_q[b] + i, hh, Hq, D);
                    const uint16_t *kr = kv_at(c, t, t->k, b, kvh, j);
                    double dot = 0.0;
                    for (int32_t dd = 0; dd < D; dd++) /* K's values: FP8 codes decoded, times k_scale below */
                        dot += (double)ac_half_to_f32(c->dtype, qr[dd]) *
                               ac_kv_elem_to_double(c->dtype, c->kv_format, kr[dd]);
                    dot *= (double)ac_case_k_scale(c, kvh);
                    if (!isfinite(dot)) return na(h, "a key outside the allowed set holds a non-finite value");
                    const double capped = cap * tanh(scale * dot / cap);
                    if (logit == INFINITY) logit = cap * tanh((scale * dot + (double)extra) / cap);
                    mf[e] = (float)(logit - capped);
                }
            }
    }
    if (!changed) return na(h, "the same logits and keys as declared for every row");
    v->c.mask = AC_MASK_ADDITIVE;
    v->c.mask_per_head = 1;
    v->c.causal = AC_CAUSAL_NONE;
    v->c.window_left = v->c.window_right = -1;
    v->c.n_alibi = 0; /* carried in the mask */
    v->t.mask_off = off;
    v->t.mask_bool = NULL;
    v->t.mask_bias = mf;
    return H_OK;
}

static int hyp_feature_mask(const ac_dump *d, variant *v, ac_hypothesis *h, int kind)
{
    const ac_case *c = &d->c;
    static const char *const names[] = {"window_top_left", "alibi_abs", "softcap_after_mask",
                                        "softcap_after_mask(in_range)"};
    static const char *const about[] = {
        "the window aligned top-left (i - left <= j <= i + right) instead of bottom-right (+ Lk - Lq)",
        "ALiBi as -slope * |j - i - (Lk - Lq)| (flash-attn's convention) instead of the signed distance",
        "tanh applied after masking: every excluded key weighs in with logit -softcap",
        "tanh applied after masking: the keys of the causal-and-window range that the explicit mask excludes "
        "weigh in with logit -softcap",
    };
    snprintf(h->name, sizeof h->name, "%s", names[kind]);
    snprintf(h->about, sizeof h->about, "%s", about[kind]);
    if (kind == F_WINDOW_TOP_LEFT) {
        snprintf(h->declared, sizeof h->declared, "window=%d,%d bottom-right", c->window_left, c->window_right);
        if (c->window_left < 0 && c->window_right < 0) return H_SKIP;
        int differs = 0;
        for (int32_t b = 0; b < c->batch; b++) differs |= c->seqlen_q[b] != c->seqlen_k[b] && c->seqlen_q[b] > 0;
        if (!differs) return na(h, "Lq = Lk in every sequence: both alignments agree");
    } else if (kind == F_ALIBI_ABS) {
        snprintf(h->declared, sizeof h->declared, "alibi=+slope*(j-i-(Lk-Lq))");
        if (!c->n_alibi) return H_SKIP;
    } else {
        snprintf(h->declared, sizeof h->declared, "softcap=%.9g before the mask", (double)c->softcap);
        if (c->softcap == 0.0f) return H_SKIP;
    }
    return feature_mask_variant(d, v, h, kind);
}

/* ---- the K/V features' classic bugs (kv-spec) ---- */

/* An FP8 cache whose output never gets v_scale: the oracle with every v_scale 1. */
static int hyp_v_scale_dropped(const ac_dump *d, variant *v, ac_hypothesis *h, int arg)
{
    (void)arg;
    const ac_case *c = &d->c;
    label(h, "v_scale_dropped", "O = v_scale * sum_j P_j decode(v_j)",
          "the FP8 cache's v_scale never applied: O = sum_j P_j decode(v_j) = O_exact / v_scale");
    if (c->kv_format == AC_KV_AS_DTYPE || c->n_kv_scales == 0) return H_SKIP;
    int differs = 0;
    for (int32_t g = 0; g < c->n_kv_scales; g++) differs |= c->v_scales[g] != 1.0f;
    if (!differs) return na(h, "every v_scale is 1");
    float ones[AC_MAX_HEADS];
    for (int32_t g = 0; g < c->n_kv_scales; g++) ones[g] = 1.0f;
    ac_error e;
    return ac_case_set_kv_scales(&v->c, c->k_scales, ones, c->n_kv_scales, &e) ? H_NOMEM : H_OK;
}

/* V addressed with D_qk as its head dim: element (row r, KV head g, d < D_v) read at
   (r * Hkv + g) * D_qk + d of v (a row is a token, or a cache slot), 0 past its end. */
static int hyp_dv_as_dqk(const ac_dump *d, variant *v, ac_hypothesis *h, int arg)
{
    (void)arg;
    const ac_case *c = &d->c;
    label(h, "dv_read_as_dqk", "v rows of D_v", "V addressed with stride D_qk: (r * Hkv + g) * D_qk + d");
    const int64_t Dv = ac_case_dv(c), Dqk = c->head_dim, Hkv = c->heads_kv, n = d->t.v_elems;
    if (Dv == Dqk) return H_SKIP;
    uint16_t *vv = variant_alloc(v, (size_t)n, sizeof(uint16_t));
    if (!vv) return H_NOMEM;
    const int64_t rows = n / (Hkv * Dv);
    for (int64_t r = 0; r < rows; r++)
        for (int64_t g = 0; g < Hkv; g++)
            for (int64_t x = 0; x < Dv; x++) {
                int64_t src = (r * Hkv + g) * Dqk + x;
                vv[(r * Hkv + g) * Dv + x] = src < n ? d->t.v[src] : 0; /* 0: +0 in every format */
            }
    v->t.v = vv;
    return H_OK;
}

typedef int (*hyp_fn)(const ac_dump *d, variant *v, ac_hypothesis *h, int arg);
typedef struct hyp_entry { hyp_fn fn; int arg; } hyp_entry;

static const hyp_entry attention_hyps[] = {
    {hyp_scale, 0}, {hyp_scale, 1},
    {hyp_causal, AC_CAUSAL_NONE}, {hyp_causal, AC_CAUSAL_TOP_LEFT}, {hyp_causal, AC_CAUSAL_BOTTOM_RIGHT},
    {hyp_gqa, 0}, {hyp_bound, 1}, {hyp_bound, -1}, {hyp_drop_last, 0},
    {hyp_lse_base, 1}, {hyp_lse_layout, 0}, {hyp_swap, 0},
    {hyp_gather, G_PAST_ONE}, {hyp_gather, G_PAST_BLOCK_END}, {hyp_gather, G_TABLE_PLUS_ONE},
    {hyp_gather, G_OFFSET_PLUS_ONE}, {hyp_gather, G_OFFSET_MINUS_ONE},
    {hyp_feature_mask, F_WINDOW_TOP_LEFT}, {hyp_window_side, 0}, {hyp_window_side, 1}, {hyp_window_side, 2},
    {hyp_window_side, 3}, {hyp_alibi_sign, 0}, {hyp_feature_mask, F_ALIBI_ABS}, {hyp_softcap_ignored, 0},
    {hyp_feature_mask, F_SOFTCAP_AFTER_MASK}, {hyp_feature_mask, F_SOFTCAP_AFTER_MASK_RANGE},
    {hyp_sinks_ignored, 0}, {hyp_v_scale_dropped, 0}, {hyp_dv_as_dqk, 0},
};
static const hyp_entry combine_hyps[] = {{hyp_lse_base, 0}, {hyp_lse_base, 1}};

static double score(double r, double lse_r)
{
    double s = r > lse_r ? r : lse_r;
    return isnan(s) ? INFINITY : s;
}

static void fmt_r(double x, char *buf, size_t n)
{
    if (isinf(x)) snprintf(buf, n, "inf");
    else snprintf(buf, n, "%.2g", x);
}

ac_status ac_dump_diagnose(const ac_dump *d, const ac_verdict *declared, const ac_dump_check_opts *o,
                           ac_diagnosis *dg, ac_error *err)
{
    static const ac_dump_check_opts defaults = {0, 0, 0};
    if (!o) o = &defaults;
    memset(dg, 0, sizeof *dg);
    dg->match = -1;
    dg->closest[0] = dg->closest[1] = dg->closest[2] = -1;
    dg->declared_r = score(declared->r_max, declared->r_lse_max);
    dg->declared_pass = declared->pass;
    const hyp_entry *list = NULL;
    size_t nl = 0;
    if (d->c.op == AC_OP_PREFILL || d->c.op == AC_OP_DECODE) {
        list = attention_hyps;
        nl = sizeof attention_hyps / sizeof *attention_hyps;
    } else if (d->c.op == AC_OP_COMBINE) {
        list = combine_hyps;
        nl = sizeof combine_hyps / sizeof *combine_hyps;
    }
    const int64_t rows = d->t.total_q * d->c.heads_q;
    const int64_t sample = rows > AC_DIAG_SAMPLE_ROWS ? AC_DIAG_SAMPLE_ROWS : 0;
    for (size_t k = 0; k < nl && dg->n < AC_DIAG_MAX; k++) {
        ac_hypothesis *h = &dg->h[dg->n];
        memset(h, 0, sizeof *h);
        variant v;
        if (variant_init(&v, d, err)) return AC_ERR_NOMEM;
        int rc = list[k].fn(d, &v, h, list[k].arg);
        if (rc == H_NOMEM) {
            variant_free(&v);
            return ac_fail(err, AC_ERR_NOMEM, "diagnosis %s: out of memory", h->name);
        }
        if (rc == H_SKIP) {
            variant_free(&v);
            continue;
        }
        dg->n++;
        h->r = h->lse_r = INFINITY;
        if (rc == H_NA) {
            variant_free(&v);
            continue;
        }
        h->applicable = 1;
        ac_check_result r;
        ac_status st = judge(d, &v, sample, 0x5eedull + k, o->threads, 0, &r);
        if (!st && r.verdict.pass && sample) { /* confirm on every row */
            st = judge(d, &v, 0, 0, o->threads, 0, &r);
        }
        if (st == AC_ERR_NOMEM) {
            variant_free(&v);
            *err = r.error;
            return AC_ERR_NOMEM;
        }
        if (st) {
            h->applicable = 0;
            snprintf(h->why_not, sizeof h->why_not, "cannot be judged: %s", r.error.msg);
        } else {
            h->r = r.verdict.r_max;
            h->lse_r = r.verdict.r_lse_max;
            h->pass = r.verdict.pass;
        }
        variant_free(&v);
    }
    /* The best match and the three closest. */
    for (int i = 0; i < dg->n; i++) {
        const ac_hypothesis *h = &dg->h[i];
        if (!h->applicable) continue;
        double s = score(h->r, h->lse_r);
        if (h->pass) {
            dg->n_matches++;
            if (dg->match < 0 || s < score(dg->h[dg->match].r, dg->h[dg->match].lse_r)) dg->match = i;
        }
        for (int k = 0; k < 3; k++) {
            int c = dg->closest[k];
            if (c < 0 || s < score(dg->h[c].r, dg->h[c].lse_r)) {
                for (int m = 2; m > k; m--) dg->closest[m] = dg->closest[m - 1];
                dg->closest[k] = i;
                break;
            }
        }
    }
    char a[16], b[16];
    size_t len = 0;
    const size_t cap = sizeof dg->summary;
#define SUM(...) do { if (len < cap) len += (size_t)snprintf(dg->summary + len, cap - len, __VA_ARGS__); } while (0)
    fmt_r(dg->declared_r, b, sizeof b);
    if (nl == 0) {
        SUM("diagnosis: none for %s (%s)", ac_op_name(d->c.op),
            d->c.op == AC_OP_STORE ? "the caches are compared bit for bit" : "no hypotheses");
    } else if (dg->declared_pass) {
        SUM("diagnosis: passes as declared (r=%s)", b);
        if (dg->n_matches) {
            SUM("; these hypotheses pass too (the data cannot tell them apart):");
            for (int i = 0, first = 1; i < dg->n; i++)
                if (dg->h[i].applicable && dg->h[i].pass) {
                    SUM("%s %s", first ? "" : ",", dg->h[i].name);
                    first = 0;
                }
        }
    } else if (dg->match >= 0) {
        const ac_hypothesis *h = &dg->h[dg->match];
        fmt_r(score(h->r, h->lse_r), a, sizeof a);
        SUM("diagnosis: matches %s (r=%s); as declared, %s, r=%s", h->name, a, h->declared, b);
        if (dg->n_matches > 1) {
            SUM("; also matches:");
            for (int i = 0, first = 1; i < dg->n; i++)
                if (i != dg->match && dg->h[i].applicable && dg->h[i].pass) {
                    fmt_r(score(dg->h[i].r, dg->h[i].lse_r), a, sizeof a);
                    SUM("%s %s (r=%s)", first ? "" : ",", dg->h[i].name, a);
                    first = 0;
                }
        }
    } else {
        SUM("diagnosis: no hypothesis matches (as declared r=%s)", b);
        if (dg->closest[0] >= 0) {
            SUM("; closest:");
            for (int k = 0; k < 3 && dg->closest[k] >= 0; k++) {
                const ac_hypothesis *h = &dg->h[dg->closest[k]];
                fmt_r(score(h->r, h->lse_r), a, sizeof a);
                SUM("%s %s (r=%s)", k ? "," : "", h->name, a);
            }
        }
    }
#undef SUM
    return AC_OK;
}

/* ---- a generated case, diagnosed like a dump ------------------------------------------------ */

ac_status ac_case_diagnose(const ac_case *c, const ac_tensors *t, const ac_outputs *out, const ac_verdict *declared,
                           const ac_oracle_result *res, ac_diagnosis *dg, ac_empty_report *er, ac_error *err)
{
    /* A view, not a copy: the diagnosis copies the case and the outputs it judges. */
    ac_dump d;
    memset(&d, 0, sizeof d);
    d.c = *c;
    d.t = *t;
    d.out = *out;
    d.conv.has_lse = out->lse != NULL;
    d.conv.out_f32 = c->op == AC_OP_COMBINE;
    d.lse_file = out->lse;
    if (er) ac_dump_empty_report(&d, res, er);
    return ac_dump_diagnose(&d, declared, NULL, dg, err);
}

ac_status ac_check_explain(const ac_case *c, const ac_check_opts *opts, const ac_check_result *r, ac_diagnosis *dg,
                           ac_empty_report *er, char *poison, size_t n, int *blamed, ac_error *err)
{
    if (n) poison[0] = 0;
    *blamed = 0;
    ac_status st = ac_case_diagnose(c, &r->tensors, &r->outputs, &r->verdict, &r->oracle, dg, er, err);
    /* NaN or Inf out of a case that poisons its unused slots: the same case without the poison decides. */
    *blamed = ac_check_poison_blame(c, opts, &r->verdict, poison, n);
    return st;
}
