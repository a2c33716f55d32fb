#include "prop_util.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "ac_index.h"
#include "ac_numfmt.h"
#include "ac_verdict.h"

/* ---- instances --------------------------------------------------------------- */

void prop_inst_free(prop_inst *x)
{
    ac_case_free(&x->c);
    ac_tensors_free(&x->t);
    ac_outputs_free(&x->o);
    if (x->have_model) ac_oracle_result_free(&x->m);
    memset(x, 0, sizeof *x);
}

int32_t prop_pick(ac_rng *r, int32_t lo, int32_t hi)
{
    if (hi <= lo) return lo;
    return lo + (int32_t)ac_rng_below(r, (uint64_t)(hi - lo) + 1);
}

void prop_shuffle(ac_rng *r, int32_t *perm, int32_t n)
{
    for (int32_t i = 0; i < n; i++) perm[i] = i;
    for (int32_t i = n - 1; i > 0; i--) {
        int32_t j = (int32_t)ac_rng_below(r, (uint64_t)i + 1);
        int32_t tmp = perm[i];
        perm[i] = perm[j];
        perm[j] = tmp;
    }
}

void prop_case_base(const ac_prop_ctx *ctx, ac_op op, ac_case *c)
{
    ac_case_init(c);
    c->op = op;
    c->dtype = ctx->dtype;
    c->heads_kv = 2; /* two KV heads: h % Hkv differs from h / (Hq/Hkv) as soon as gqa > 1 */
    c->heads_q = 2 * ctx->gqa;
    c->head_dim = ctx->head_dim;
    c->dist = AC_DIST_NORMAL;
    c->seed = ctx->seed;
    if (op == AC_OP_DECODE) {
        c->causal = AC_CAUSAL_BOTTOM_RIGHT;
        c->num_splits = 1;
    }
}

void prop_alibi_standard(float *slopes, int32_t heads)
{
    for (int32_t h = 0; h < heads; h++) slopes[h] = exp2f(-8.0f * (float)(h + 1) / (float)heads);
}

void prop_case_no_logit_features(ac_case *c)
{
    c->window_left = c->window_right = -1;
    c->softcap = 0.0f;
    ac_case_set_alibi(c, NULL, 0, NULL);
    ac_case_set_sinks(c, NULL, 0, NULL);
}

void prop_case_no_features(ac_case *c)
{
    prop_case_no_logit_features(c);
    c->head_dim_v = 0;
    c->kv_format = AC_KV_AS_DTYPE;
    ac_case_set_kv_scales(c, NULL, NULL, 0, NULL);
}

/* A window side: 0, around a 16/32-key block or the 64-key tile, unbounded
   (-1) or anything up to 100. */
static int32_t draw_side(ac_rng *r, int allow_unbounded)
{
    static const int32_t edges[] = {0, 1, 15, 16, 31, 32, 63, 64, 65};
    uint64_t k = ac_rng_below(r, 4);
    if (k == 0 && allow_unbounded) return -1;
    if (k <= 1) return edges[ac_rng_below(r, sizeof edges / sizeof edges[0])];
    return prop_pick(r, 0, 100);
}

/* Scales of an FP8 cache: powers of two (the dequantised value is exact in
   bf16 and fp16) and others (a kernel that multiplies where it should
   divide, or drops a scale, moves the output either way). Never 0. */
static float draw_kv_scale(ac_rng *r)
{
    static const float scales[] = {0.5f, 2.0f, 0.25f, 1.0f, 0.375f, 1.75f, 0.1f, 3.0f};
    return scales[ac_rng_below(r, sizeof scales / sizeof scales[0])];
}

void prop_kv_scales_draw(ac_rng *r, ac_case *c, int per_head, const float *pool, int npool, float *ks, float *vs)
{
    const int32_t n = per_head ? c->heads_kv : 1;
    for (int32_t g = 0; g < n; g++) {
        ks[g] = pool ? pool[ac_rng_below(r, (uint64_t)npool)] : draw_kv_scale(r);
        vs[g] = pool ? pool[ac_rng_below(r, (uint64_t)npool)] : draw_kv_scale(r);
    }
}

/* The K/V features (FP8 cache, D_v != D_qk), drawn after every logit
   feature's values so that those stay what they were before. */
static ac_status draw_kv_features(ac_rng *r, ac_case *c, uint32_t on, ac_error *err)
{
    if (on & AC_FEAT_HEAD_DIM_V) {
        /* MLA-like (D_v < D_qk) and the other way round; both multiples of 8. */
        static const int32_t num[] = {1, 3, 1, 3}, den[] = {2, 2, 4, 4};
        int k = (int)ac_rng_below(r, 4);
        int32_t dv = c->head_dim * num[k] / den[k];
        c->head_dim_v = dv >= 8 && dv != c->head_dim ? dv : c->head_dim / 2;
    }
    if (on & AC_FEAT_FP8_KV) {
        c->kv_format = ac_rng_below(r, 2) ? AC_KV_E5M2 : AC_KV_E4M3;
        uint64_t how = ac_rng_below(r, 3); /* 0: no scales, 1: per tensor, 2: per KV head */
        float ks[AC_MAX_HEADS], vs[AC_MAX_HEADS];
        if (how) {
            prop_kv_scales_draw(r, c, how == 2, NULL, 0, ks, vs);
            ac_status st = ac_case_set_kv_scales(c, ks, vs, how == 2 ? c->heads_kv : 1, err);
            if (st) return st;
        }
    }
    return AC_OK;
}

ac_status prop_case_features(const ac_prop_ctx *ctx, ac_case *c, uint32_t allowed, ac_error *err)
{
    uint32_t bits = ctx->features & allowed;
    const ac_op_traits *tr = ac_op_traits_of(c->op);
    if (!tr) return AC_OK;
    bits &= (tr->features ? AC_FEAT_LOGIT : 0u) | tr->kv_features;
    if (!bits) return AC_OK;
    ac_rng r;
    ac_rng_init(&r, ctx->seed, PROP_FEAT_STREAM);
    uint32_t on = 0, kv_bits = bits & AC_FEAT_KV;
    bits &= AC_FEAT_LOGIT;
    /* A nonempty subset of the logit bits (drawn as before the K/V features
       existed), then a subset of the K/V bits: nonempty when there is no
       logit bit. */
    while (bits && !on) on = bits & (uint32_t)ac_rng_below(&r, AC_FEAT_LOGIT + 1);
    if (on & AC_FEAT_WINDOW) {
        c->window_left = draw_side(&r, 1);
        /* Right of the diagonal: mostly 0 or unbounded (what causal kernels use). */
        c->window_right = ac_rng_below(&r, 2) ? draw_side(&r, 1) : (ac_rng_below(&r, 2) ? 0 : -1);
        if (c->window_left == -1 && c->window_right == -1) c->window_left = draw_side(&r, 0);
    }
    if (on & AC_FEAT_SOFTCAP) c->softcap = (float)prop_pick(&r, 1, 50);
    float v[AC_MAX_HEADS];
    const int32_t H = c->heads_q;
    if (on & AC_FEAT_ALIBI) {
        if (ac_rng_below(&r, 2)) prop_alibi_standard(v, H);
        else
            for (int32_t h = 0; h < H; h++) v[h] = (float)prop_pick(&r, 0, 64) / 128.0f; /* [0, 0.5], exact */
        ac_status st = ac_case_set_alibi(c, v, H, err);
        if (st) return st;
    }
    if (on & AC_FEAT_SINKS) {
        for (int32_t h = 0; h < H; h++)
            v[h] = ac_rng_below(&r, 6) == 0 ? -INFINITY : (float)prop_pick(&r, -24, 40) / 8.0f; /* [-3, 5] */
        ac_status st = ac_case_set_sinks(c, v, H, err);
        if (st) return st;
    }
    if (kv_bits) {
        uint32_t kv_on = 0;
        do kv_on = kv_bits & ((uint32_t)ac_rng_below(&r, 4) << 4);
        while (!kv_on && !on);
        return draw_kv_features(&r, c, kv_on, err);
    }
    return AC_OK;
}

double prop_empty_lse(const ac_case *c, int64_t row)
{
    int32_t h = (int32_t)(row % c->heads_q);
    return c->n_sinks > 0 && h < c->n_sinks ? (double)c->sinks[h] : -INFINITY;
}

/* Length scale: ATTNCHECK_PROP_SCALE or ac_prop_set_length_scale; 0 = not read yet. */
static int g_length_scale;

void ac_prop_set_length_scale(int s) { g_length_scale = s < 1 ? 1 : s; }

int ac_prop_length_scale(void)
{
    if (!g_length_scale) {
        const char *e = getenv("ATTNCHECK_PROP_SCALE");
        int s = e ? atoi(e) : 1;
        g_length_scale = s < 1 ? 1 : s;
    }
    return g_length_scale;
}

ac_status prop_case_lengths(ac_case *c, ac_rng *r, int32_t batch, int32_t lq_lo, int32_t lq_hi, int32_t dk_lo,
                            int32_t dk_hi, ac_error *err)
{
    /* Longer sequences on request: prefill query ranges and every key
       excess grow; decode keeps its 1..8 queries. */
    int32_t s = ac_prop_length_scale();
    if (c->op == AC_OP_PREFILL && lq_hi > lq_lo) lq_hi *= s;
    if ((c->op == AC_OP_PREFILL || c->op == AC_OP_DECODE) && dk_hi > 0) dk_hi *= s;
    ac_status st = ac_case_set_batch(c, batch, err);
    if (st) return st;
    for (int32_t b = 0; b < batch; b++) {
        c->seqlen_q[b] = prop_pick(r, lq_lo, lq_hi);
        int32_t k = c->seqlen_q[b] + prop_pick(r, dk_lo, dk_hi);
        c->seqlen_k[b] = k < 0 ? 0 : k;
    }
    return AC_OK;
}

ac_status prop_case_kv_law(const ac_prop_ctx *ctx, ac_rng *r, ac_case *c, ac_error *err)
{
    prop_case_base(ctx, ctx->op, c);
    if (ctx->op == AC_OP_DECODE) {
        c->num_splits = prop_pick(r, 1, 3);
        return prop_case_lengths(c, r, prop_pick(r, 1, 3), 1, 4, 0, 70, err);
    }
    c->causal = (ac_causal)prop_pick(r, 0, AC_CAUSAL_COUNT - 1);
    return prop_case_lengths(c, r, prop_pick(r, 1, 3), 1, 32, 0, 64, err);
}

ac_status prop_case_place(const ac_prop_ctx *ctx, ac_case *c, ac_rng *r, ac_error *err)
{
    if (ctx->layout == AC_PROP_CONTIGUOUS && c->op == AC_OP_PREFILL) {
        c->paged = 0;
        return AC_OK;
    }
    static const ac_layout kinds[AC_PROP_LAYOUT_COUNT] = {AC_LAYOUT_IDENTITY, AC_LAYOUT_IDENTITY,
                                                         AC_LAYOUT_PERMUTED, AC_LAYOUT_SHARED_PREFIX};
    /* Block sizes the contract requires (16, 32) and that cut these short
       sequences into several blocks with a ragged tail. */
    c->block_size = ac_rng_below(r, 2) ? 32 : 16;
    return ac_case_make_layout(c, kinds[ctx->layout], prop_pick(r, 0, 2), err);
}

ac_status prop_gen(prop_inst *x, ac_error *err)
{
    ac_tensors_free(&x->t);
    ac_outputs_free(&x->o);
    if (x->have_model) {
        ac_oracle_result_free(&x->m);
        x->have_model = 0;
    }
    ac_status st = ac_case_validate(&x->c, err);
    if (st) return st;
    return ac_gen(&x->c, &x->t, err);
}

static void *dup_n(const void *src, size_t bytes, int *fail)
{
    if (!src) return NULL;
    void *p = malloc(bytes ? bytes : 1);
    if (!p) {
        *fail = 1;
        return NULL;
    }
    memcpy(p, src, bytes);
    return p;
}

ac_status prop_inst_clone(prop_inst *dst, const prop_inst *src, ac_error *err)
{
    memset(dst, 0, sizeof *dst);
    ac_status st = ac_case_copy(&dst->c, &src->c, err);
    if (st) return st;
    const ac_case *c = &src->c;
    const ac_tensors *s = &src->t;
    ac_tensors *d = &dst->t;
    int fail = 0;
    size_t B1 = (size_t)c->batch + 1;
    size_t hd = (size_t)c->heads_q * (size_t)c->head_dim;
    size_t kvd = (size_t)c->heads_kv * (size_t)c->head_dim;
    size_t vd = (size_t)c->heads_kv * (size_t)ac_case_dv(c);
    size_t S = c->num_splits > 0 ? (size_t)c->num_splits : 0;
    d->total_q = s->total_q;
    d->total_k = s->total_k;
    d->kv_elems = s->kv_elems;
    d->v_elems = s->v_elems;
    d->cu_seqlens_q = dup_n(s->cu_seqlens_q, sizeof(int32_t) * B1, &fail);
    d->cu_seqlens_k = dup_n(s->cu_seqlens_k, sizeof(int32_t) * B1, &fail);
    d->q = dup_n(s->q, sizeof(uint16_t) * (size_t)s->total_q * hd, &fail);
    d->k = dup_n(s->k, sizeof(uint16_t) * (size_t)s->kv_elems, &fail);
    d->v = dup_n(s->v, sizeof(uint16_t) * (size_t)s->v_elems, &fail);
    d->mask_off = dup_n(s->mask_off, sizeof(int64_t) * B1, &fail);
    size_t mask_n = s->mask_off ? (size_t)s->mask_off[c->batch] : 0;
    d->mask_bool = dup_n(s->mask_bool, mask_n, &fail);
    d->mask_bias = dup_n(s->mask_bias, sizeof(float) * mask_n, &fail);
    size_t tok = c->num_tokens > 0 ? (size_t)c->num_tokens : 0;
    d->k_new = dup_n(s->k_new, sizeof(uint16_t) * tok * kvd, &fail);
    d->v_new = dup_n(s->v_new, sizeof(uint16_t) * tok * vd, &fail);
    size_t rows = (size_t)s->total_q * (size_t)c->heads_q;
    d->o_part = dup_n(s->o_part, sizeof(float) * rows * S * (size_t)c->head_dim, &fail);
    d->lse_part = dup_n(s->lse_part, sizeof(float) * rows * S, &fail);
    if (fail) {
        prop_inst_free(dst);
        return ac_fail(err, AC_ERR_NOMEM, "property: out of memory copying tensors");
    }
    return AC_OK;
}

int prop_exec_bug(const ac_prop_ctx *ctx, ac_bug bug, prop_inst *x, const char *what, char *why, size_t n)
{
    ac_run_opts opts = {bug, x->c.op == AC_OP_COMBINE};
    ac_error err;
    ac_error_clear(&err);
    ac_status st = ac_backend_run(ctx->backend, &x->c, &x->t, &opts, &x->o, &err);
    if (st == AC_OK) return AC_PROP_PASS;
    if (st == AC_ERR_NO_DEVICE || st == AC_ERR_UNSUPPORTED) {
        snprintf(why, n, "%s: skipped: %s: %s", what, ac_status_name(st), err.msg);
        prop_why_case(why, n, &x->c);
        return AC_PROP_SKIP;
    }
    snprintf(why, n, "%s: %s rejected a valid case: %s: %s", what, ac_backend_name(ctx->backend),
             ac_status_name(st), err.msg);
    prop_why_case(why, n, &x->c);
    return AC_PROP_FAIL;
}

int prop_exec(const ac_prop_ctx *ctx, prop_inst *x, const char *what, char *why, size_t n)
{
    return prop_exec_bug(ctx, ctx->bug, x, what, why, n);
}

ac_status prop_inst_model(prop_inst *x, ac_error *err)
{
    if (x->have_model) ac_oracle_result_free(&x->m);
    x->have_model = 0;
    ac_status st = ac_ref64(&x->c, &x->t, 0, &x->m, err);
    if (st == AC_OK) x->have_model = 1;
    return st;
}

int prop_feature_base(const ac_prop_ctx *ctx, ac_rng *r, uint32_t own, prop_inst *x, const char *what, char *why,
                      size_t n)
{
    ac_error err;
    ac_error_clear(&err);
    int rc = AC_PROP_PASS;
    prop_case_base(ctx, ctx->op, &x->c);
    if (ctx->op == AC_OP_DECODE) {
        PROP_TRY(prop_case_lengths(&x->c, r, prop_pick(r, 1, 3), 1, 4, 0, 150, &err));
    } else {
        PROP_TRY(prop_case_lengths(&x->c, r, prop_pick(r, 1, 3), 1, 40, -4, 100, &err));
        x->c.causal = (ac_causal)prop_pick(r, 0, AC_CAUSAL_COUNT - 1);
    }
    PROP_TRY(prop_case_place(ctx, &x->c, r, &err));
    PROP_TRY(prop_case_features(ctx, &x->c, AC_FEAT_ALL & ~own, &err));
    PROP_TRY(prop_gen(x, &err));
    PROP_RUN(prop_exec(ctx, x, what, why, n));
    PROP_TRY(prop_inst_model(x, &err));
done:
    return rc;
}

int prop_run_within(const ac_prop_ctx *ctx, const prop_inst *x, prop_inst *y, const char *what, char *why, size_t n)
{
    ac_error err;
    ac_error_clear(&err);
    int rc = AC_PROP_PASS;
    PROP_RUN(prop_exec(ctx, y, what, why, n));
    PROP_TRY(prop_inst_model(y, &err));
    PROP_CHECK(prop_within(&x->c, &x->m, &y->m, &x->o, &y->o, NULL, what, why, n));
done:
    return rc;
}

int prop_run_vs_model(const ac_prop_ctx *ctx, prop_inst *y, const char *what, char *why, size_t n)
{
    ac_error err;
    ac_error_clear(&err);
    int rc = AC_PROP_PASS;
    PROP_RUN(prop_exec(ctx, y, what, why, n));
    PROP_TRY(prop_inst_model(y, &err));
    PROP_CHECK(prop_vs_model(&y->c, &y->m, &y->o, what, why, n));
done:
    return rc;
}

/* ---- names ------------------------------------------------------------------------ */

void prop_row_name(const ac_case *c, int64_t r, char *buf, size_t n)
{
    int64_t tok = r / c->heads_q;
    int32_t h = (int32_t)(r % c->heads_q);
    int64_t start = 0;
    int32_t b = 0;
    if (c->op != AC_OP_COMBINE || c->seqlen_q)
        for (b = 0; b < c->batch && start + c->seqlen_q[b] <= tok; b++) start += c->seqlen_q[b];
    snprintf(buf, n, "(seq %d, query %lld, head %d)", b, (long long)(tok - start), h);
}

void prop_why_case(char *why, size_t n, const ac_case *c)
{
    size_t len = strlen(why);
    if (len + 16 >= n) return;
    char line[512];
    ac_case_line(c, line, sizeof line);
    snprintf(why + len, n - len, " | case: %s", line);
}

/* ---- bounds -------------------------------------------------------------------------- */

double prop_out_val(const ac_case *c, const ac_outputs *o, int64_t e)
{
    if (c->op == AC_OP_COMBINE) return (double)o->o_f32[e];
    return (double)ac_half_to_f32(c->dtype, o->o[e]);
}

double prop_elem_bound(const ac_case *c, const ac_oracle_result *m, int64_t r, int32_t d)
{
    /* docs/VERDICT.md, as ac_verdict_judge computes it: u_in SPV + eta_in SVT
       + ftz (SV + n) + (u_out + nu) |O*| + eta_out + delta_s SPVO + gamma_n SPV.
       test_properties checks this copy against the verdict's own. */
    ac_bound_terms tm;
    ac_verdict_terms(c, m, r, c->op == AC_OP_COMBINE, &tm);
    int64_t e = r * m->head_dim + d;
    return tm.u_in * m->spv[e] + tm.eta_in * m->sv_tiny[e] + tm.ftz * (m->sv[e] + m->n_allowed[r]) +
           (tm.u_out + tm.nu) * fabs(m->o[e]) + tm.eta_out + tm.delta_s * m->spvo[e] + tm.gamma_n * m->spv[e];
}

double prop_lse_bound(const ac_case *c, const ac_oracle_result *m, int64_t r)
{
    /* docs/VERDICT.md: delta_s + gamma_n + eps_log + 2 u32 (|LSE*| + L). */
    ac_bound_terms tm;
    ac_verdict_terms(c, m, r, c->op == AC_OP_COMBINE, &tm);
    return tm.delta_s + tm.gamma_n + tm.eps_log + 2.0 * AC_U_FP32 * (fabs(m->lse[r]) + m->logit_abs[r]);
}

/* ---- comparisons ---------------------------------------------------------------------- */

int prop_same_bits(const ac_case *c, const ac_outputs *a, int64_t ra, const ac_outputs *b, int64_t rb,
                   int64_t rows, const char *what, char *why, size_t n)
{
    const int32_t D = c->op == AC_OP_COMBINE ? c->head_dim : ac_case_dv(c); /* out has D_v columns */
    const int f32 = c->op == AC_OP_COMBINE;
    int64_t diff_o = 0, diff_lse = 0, first_e = -1, first_r = -1;
    for (int64_t i = 0; i < rows; i++) {
        for (int32_t d = 0; d < D; d++) {
            int64_t ea = (ra + i) * D + d, eb = (rb + i) * D + d;
            int differs = a->o[ea] != b->o[eb];
            if (f32) differs |= ac_f32_bits(a->o_f32[ea]) != ac_f32_bits(b->o_f32[eb]);
            if (differs) {
                if (first_e < 0) first_e = i * D + d;
                diff_o++;
            }
        }
        if (a->lse && b->lse && ac_f32_bits(a->lse[ra + i]) != ac_f32_bits(b->lse[rb + i])) {
            if (first_r < 0) first_r = i;
            diff_lse++;
        }
    }
    if (!diff_o && !diff_lse) return 0;
    char where[96];
    if (diff_o) {
        int64_t i = first_e / D;
        int32_t d = (int32_t)(first_e % D);
        prop_row_name(c, ra + i, where, sizeof where);
        int64_t ea = (ra + i) * D + d, eb = (rb + i) * D + d;
        snprintf(why, n,
                 "%s: not bitwise equal: %lld output elements and %lld LSEs differ; first at %s dim %d: "
                 "0x%04x (%.9g) vs 0x%04x (%.9g)",
                 what, (long long)diff_o, (long long)diff_lse, where, d, a->o[ea],
                 f32 ? (double)a->o_f32[ea] : (double)ac_half_to_f32(c->dtype, a->o[ea]), b->o[eb],
                 f32 ? (double)b->o_f32[eb] : (double)ac_half_to_f32(c->dtype, b->o[eb]));
    } else {
        prop_row_name(c, ra + first_r, where, sizeof where);
        snprintf(why, n, "%s: not bitwise equal: %lld LSEs differ; first at %s: 0x%08x (%.9g) vs 0x%08x (%.9g)",
                 what, (long long)diff_lse, where, ac_f32_bits(a->lse[ra + first_r]), (double)a->lse[ra + first_r],
                 ac_f32_bits(b->lse[rb + first_r]), (double)b->lse[rb + first_r]);
    }
    prop_why_case(why, n, c);
    return 1;
}

/* What b is: another run (outputs) or a model's answer. */
typedef struct side {
    const ac_outputs *out;         /* a run, or NULL */
    const ac_oracle_result *model; /* its bound model (and its answer when out == NULL) */
    double bound_weight;           /* 1: a run (it may be C * bound off); 0: an exact answer */
} side;

static double side_val(const ac_case *c, const side *s, int64_t e)
{
    return s->out ? prop_out_val(c, s->out, e) : s->model->o[e];
}
static double side_lse(const side *s, int64_t r)
{
    return s->out ? (double)s->out->lse[r] : s->model->lse[r];
}
/* 1 if both sides have an LSE (a kernel may return none: then O alone is compared). */
static int both_lse(const ac_outputs *a, const side *s)
{
    return a->lse && (!s->out || s->out->lse);
}

typedef struct tally {
    int64_t over_o, over_lse, bad_empty, nonfinite;
    int have;            /* worst_e is set */
    double worst;        /* worst |diff| / tol */
    int64_t worst_e;     /* element (row * D + d) or, for an LSE, -(row + 1) */
    double wa, wb, wtol;
} tally;

static void note(tally *t, double ratio, int64_t at, double a, double b, double tol)
{
    if (isnan(ratio)) ratio = INFINITY;
    if (t->have && !(ratio > t->worst)) return;
    t->have = 1;
    t->worst = ratio;
    t->worst_e = at;
    t->wa = a;
    t->wb = b;
    t->wtol = tol;
}

/* The core of every within-the-bound comparison: a (a run, weight 1)
   against b; tolerance C (bound_a + w_b bound_b). */
static void compare(const ac_case *c, const ac_oracle_result *ma, const ac_outputs *a, const side *b,
                    const double *lse_shift, tally *t)
{
    memset(t, 0, sizeof *t);
    const int32_t D = ma->head_dim;
    for (int64_t r = 0; r < ma->rows; r++) {
        if (ma->n_allowed[r] == 0) { /* empty row: exactly O = 0 and LSE = -inf */
            for (int32_t d = 0; d < D; d++) {
                double va = prop_out_val(c, a, r * D + d), vb = side_val(c, b, r * D + d);
                if (va != 0.0 || vb != 0.0) {
                    t->bad_empty++;
                    note(t, INFINITY, r * D + d, va, vb, 0.0);
                }
            }
            double want = prop_empty_lse(c, r);
            double la = both_lse(a, b) ? a->lse[r] : want, lb = both_lse(a, b) ? side_lse(b, r) : want;
            if (la != want || lb != want) {
                t->bad_empty++;
                note(t, INFINITY, -(r + 1), la, lb, 0.0);
            }
            continue;
        }
        for (int32_t d = 0; d < D; d++) {
            int64_t e = r * D + d;
            double va = prop_out_val(c, a, e), vb = side_val(c, b, e);
            double tol = AC_VERDICT_C * (prop_elem_bound(c, ma, r, d) + b->bound_weight * prop_elem_bound(c, b->model, r, d));
            if (!isfinite(va) || !isfinite(vb)) {
                t->nonfinite++;
                note(t, INFINITY, e, va, vb, tol);
                continue;
            }
            double diff = fabs(va - vb);
            if (!(diff <= tol)) t->over_o++;
            note(t, diff / tol, e, va, vb, tol);
        }
        if (!both_lse(a, b)) continue;
        double la = a->lse[r], lb = side_lse(b, r) - (lse_shift ? lse_shift[r] : 0.0);
        double tol = AC_VERDICT_C * (prop_lse_bound(c, ma, r) + b->bound_weight * prop_lse_bound(c, b->model, r));
        if (!isfinite(la) || !isfinite(lb)) {
            t->nonfinite++;
            note(t, INFINITY, -(r + 1), la, lb, tol);
            continue;
        }
        double diff = fabs(la - lb);
        if (!(diff <= tol)) t->over_lse++;
        note(t, diff / tol, -(r + 1), la, lb, tol);
    }
}

static int tally_report(const ac_case *c, const tally *t, int32_t D, const char *what, const char *bname, char *why,
                        size_t n)
{
    if (!t->over_o && !t->over_lse && !t->bad_empty && !t->nonfinite) return 0;
    char where[96];
    if (t->worst_e >= 0) {
        prop_row_name(c, t->worst_e / D, where, sizeof where);
        snprintf(why, n,
                 "%s: outside the bound: %lld elements, %lld LSEs, %lld non-finite, %lld bad empty-row values; "
                 "worst at %s dim %d: got %.9g, %s %.9g, |diff| %.3g vs tolerance %.3g (x%.3g)",
                 what, (long long)t->over_o, (long long)t->over_lse, (long long)t->nonfinite,
                 (long long)t->bad_empty, where, (int)(t->worst_e % D), t->wa, bname, t->wb, fabs(t->wa - t->wb),
                 t->wtol, t->worst);
    } else {
        prop_row_name(c, -t->worst_e - 1, where, sizeof where);
        snprintf(why, n,
                 "%s: outside the bound: %lld elements, %lld LSEs, %lld non-finite, %lld bad empty-row values; "
                 "worst LSE at %s: got %.9g, %s %.9g, |diff| %.3g vs tolerance %.3g (x%.3g)",
                 what, (long long)t->over_o, (long long)t->over_lse, (long long)t->nonfinite,
                 (long long)t->bad_empty, where, t->wa, bname, t->wb, fabs(t->wa - t->wb), t->wtol, t->worst);
    }
    prop_why_case(why, n, c);
    return 1;
}

/* Worst |diff| / tolerance over the comparisons that held: how close
   correct runs come to the bound (reported by property_gpu). */
static double g_worst_held;

double ac_prop_worst_ratio(int reset)
{
    double w = g_worst_held;
    if (reset) g_worst_held = 0.0;
    return w;
}

void prop_note_ratio(double r)
{
    if (r > g_worst_held) g_worst_held = r;
}

static int held(const tally *t, int broken)
{
    if (!broken && t->have && t->worst > g_worst_held) g_worst_held = t->worst;
    return broken;
}

int prop_within(const ac_case *c, const ac_oracle_result *ma, const ac_oracle_result *mb, const ac_outputs *a,
                const ac_outputs *b, const double *lse_shift, const char *what, char *why, size_t n)
{
    side sb = {b, mb ? mb : ma, 1.0};
    tally t;
    compare(c, ma, a, &sb, lse_shift, &t);
    return held(&t, tally_report(c, &t, ma->head_dim, what, "other run", why, n));
}

int prop_vs_model(const ac_case *c, const ac_oracle_result *m, const ac_outputs *a, const char *what, char *why,
                  size_t n)
{
    side sb = {NULL, m, 0.0};
    tally t;
    compare(c, m, a, &sb, NULL, &t);
    return held(&t, tally_report(c, &t, m->head_dim, what, "exact", why, n));
}

int prop_models_apart(const ac_case *c, const ac_oracle_result *ma, const ac_oracle_result *mb)
{
    const int32_t D = ma->head_dim;
    for (int64_t r = 0; r < ma->rows; r++) {
        if ((ma->n_allowed[r] == 0) != (mb->n_allowed[r] == 0)) return 1;
        if (ma->n_allowed[r] == 0) continue;
        for (int32_t d = 0; d < D; d++) {
            int64_t e = r * D + d;
            double tol = 2.0 * AC_VERDICT_C * (prop_elem_bound(c, ma, r, d) + prop_elem_bound(c, mb, r, d));
            if (fabs(ma->o[e] - mb->o[e]) > tol) return 1;
        }
        double tol = 2.0 * AC_VERDICT_C * (prop_lse_bound(c, ma, r) + prop_lse_bound(c, mb, r));
        if (fabs(ma->lse[r] - mb->lse[r]) > tol) return 1;
    }
    return 0;
}

/* ---- more instance helpers ------------------------------------------------------------ */

int64_t prop_kv_offset(const ac_case *c, const ac_tensors *t, int32_t b, int32_t p, int32_t h)
{
    if (c->paged)
        return ac_cache_offset(ac_pos_slot(c->block_table + (int64_t)b * c->max_blocks_per_seq, p, c->block_size),
                               h, c->heads_kv, c->head_dim);
    return ac_thd_offset((int64_t)t->cu_seqlens_k[b] + p, h, c->heads_kv, c->head_dim);
}

int64_t prop_v_offset(const ac_case *c, const ac_tensors *t, int32_t b, int32_t p, int32_t h)
{
    const int32_t dv = ac_case_dv(c);
    if (c->paged)
        return ac_cache_offset(ac_pos_slot(c->block_table + (int64_t)b * c->max_blocks_per_seq, p, c->block_size),
                               h, c->heads_kv, dv);
    return ac_thd_offset((int64_t)t->cu_seqlens_k[b] + p, h, c->heads_kv, dv);
}

ac_status prop_inst_with_mask(prop_inst *dst, const prop_inst *src, ac_mask_kind kind, int per_head,
                              ac_causal causal, ac_error *err)
{
    memset(dst, 0, sizeof *dst);
    ac_status st = ac_case_copy(&dst->c, &src->c, err);
    if (st) return st;
    dst->c.mask = kind;
    dst->c.mask_per_head = per_head;
    dst->c.causal = causal;
    st = prop_gen(dst, err);
    if (st) return st;
    if (dst->t.kv_elems != src->t.kv_elems || dst->t.v_elems != src->t.v_elems || dst->t.total_q != src->t.total_q)
        return ac_fail(err, AC_ERR_SHAPE, "property: masked twin has other tensor sizes");
    size_t qn = (size_t)src->t.total_q * (size_t)src->c.heads_q * (size_t)src->c.head_dim;
    memcpy(dst->t.q, src->t.q, sizeof(uint16_t) * qn);
    memcpy(dst->t.k, src->t.k, sizeof(uint16_t) * (size_t)src->t.kv_elems);
    memcpy(dst->t.v, src->t.v, sizeof(uint16_t) * (size_t)src->t.v_elems);
    return AC_OK;
}

int prop_empty_rows_exact(const ac_case *c, const ac_oracle_result *m, const ac_outputs *a, const char *what,
                          char *why, size_t n)
{
    const int32_t D = m->head_dim;
    for (int64_t r = 0; r < m->rows; r++) {
        if (m->n_allowed[r] != 0) continue;
        int bad = a->lse && !(a->lse[r] == prop_empty_lse(c, r));
        int32_t bad_d = -1;
        for (int32_t d = 0; d < D && bad_d < 0; d++)
            if (!(prop_out_val(c, a, r * D + d) == 0.0)) bad_d = d;
        if (bad || bad_d >= 0) {
            char where[96];
            prop_row_name(c, r, where, sizeof where);
            snprintf(why, n, "%s: the row %s has no allowed key but gives O[%d] = %.9g, LSE = %.9g (want 0, %.9g)",
                     what, where, bad_d < 0 ? 0 : bad_d, prop_out_val(c, a, r * D + (bad_d < 0 ? 0 : bad_d)),
                     a->lse ? (double)a->lse[r] : -INFINITY, prop_empty_lse(c, r));
            prop_why_case(why, n, c);
            return 1;
        }
    }
    return 0;
}

ac_status prop_oracle_verdict(const ac_case *c, const ac_tensors *t, const ac_outputs *o, int64_t max_rows,
                              ac_verdict *v, ac_error *err)
{
    ac_oracle_opts oo;
    memset(&oo, 0, sizeof oo);
    oo.mode = AC_ORACLE_FAST;
    oo.max_rows = max_rows;
    oo.sample_seed = c->seed;
    oo.threads = 1; /* properties already run in parallel processes */
    ac_oracle_result res;
    memset(&res, 0, sizeof res);
    ac_status st = ac_oracle_run(c, t, &oo, &res, err);
    ac_verdict_opts vo = {0, 0, o->lse == NULL}; /* a kernel without an LSE is judged on O */
    if (!st) st = ac_verdict_judge(c, t, &res, o, NULL, &vo, v, NULL, err);
    ac_oracle_result_free(&res);
    return st;
}
