/* 13. Softcap: s = c tanh(s / c) on scale * q.k, before ALiBi, the bias and
 * every mask. So a cap far beyond the logits is no cap, masked keys stay out
 * (a fully masked row is still 0 / LSE -inf or its sink), and a larger cap
 * never pulls two logits closer: with two keys the weight of the larger
 * logit, d/dc of c tanh(a/c) - c tanh(b/c) = integral of d/dc sech^2(t/c)
 * over [b, a] >= 0, is non-decreasing in c. */
#include <math.h>
#include <string.h>

#include "ac_index.h"
#include "ac_numfmt.h"
#include "prop_props.h"
#include "prop_util.h"

/* Caps of the monotonicity check, increasing; the last is "none". */
static const float caps[] = {0.25f, 1.0f, 3.0f, 10.0f, 1e30f};
#define NCAPS ((int)(sizeof caps / sizeof caps[0]))

/* Two keys per sequence, V of key 0 all 0 and of key 1 all 1, so O = the
   weight of key 1 in every dimension; for each cap, that weight must move
   toward the larger logit's side as the cap grows. */
static int monotone(const ac_prop_ctx *ctx, ac_rng *r, char *why, size_t n)
{
    ac_error err;
    ac_error_clear(&err);
    prop_inst x[NCAPS];
    memset(x, 0, sizeof x);
    int rc = AC_PROP_PASS;

    prop_case_base(ctx, ctx->op, &x[0].c);
    PROP_TRY(ac_case_set_batch(&x[0].c, prop_pick(r, 1, 3), &err));
    for (int32_t b = 0; b < x[0].c.batch; b++) x[0].c.seqlen_q[b] = 1, x[0].c.seqlen_k[b] = 2;
    x[0].c.dist = AC_DIST_LARGE; /* logits of a few units and more: the caps bite */
    PROP_TRY(prop_case_place(ctx, &x[0].c, r, &err));
    x[0].c.softcap = caps[0];
    PROP_TRY(prop_gen(&x[0], &err));
    const int32_t Hq = x[0].c.heads_q, Hkv = x[0].c.heads_kv, D = x[0].c.head_dim;
    const ac_dtype dt = x[0].c.dtype;
    for (int32_t b = 0; b < x[0].c.batch; b++)
        for (int32_t h = 0; h < Hkv; h++)
            for (int32_t p = 0; p < 2; p++) {
                uint16_t *v = x[0].t.v + prop_kv_offset(&x[0].c, &x[0].t, b, p, h);
                for (int32_t d = 0; d < D; d++) v[d] = ac_f32_to_half(dt, (float)p);
            }
    for (int k = 0; k < NCAPS; k++) {
        if (k) {
            PROP_TRY(prop_inst_clone(&x[k], &x[0], &err));
            x[k].c.softcap = caps[k];
        }
        PROP_RUN(prop_exec(ctx, &x[k], "softcap/monotone", why, n));
    }
    /* Two roundings of a weight in [0, 1] to the output dtype. */
    const double tol = 2.0 * (dt == AC_FP16 ? 0x1p-11 : 0x1p-8);
    for (int32_t b = 0; b < x[0].c.batch; b++)
        for (int32_t h = 0; h < Hq; h++) {
            const uint16_t *q = x[0].t.q + ((int64_t)x[0].t.cu_seqlens_q[b] * Hq + h) * D;
            const int32_t kh = ac_kv_head(h, Hq, Hkv);
            const uint16_t *k0 = x[0].t.k + prop_kv_offset(&x[0].c, &x[0].t, b, 0, kh);
            const uint16_t *k1 = x[0].t.k + prop_kv_offset(&x[0].c, &x[0].t, b, 1, kh);
            double gap = 0.0; /* q.k1 - q.k0: which logit is larger */
            for (int32_t d = 0; d < D; d++)
                gap += (double)ac_half_to_f32(dt, q[d]) *
                       ((double)ac_half_to_f32(dt, k1[d]) - (double)ac_half_to_f32(dt, k0[d]));
            if (fabs(gap) < 1e-6) continue;
            const int64_t e = ((int64_t)x[0].t.cu_seqlens_q[b] * Hq + h) * D; /* dim 0 of the row */
            for (int k = 1; k < NCAPS; k++) {
                double before = prop_out_val(&x[k - 1].c, &x[k - 1].o, e), after = prop_out_val(&x[k].c, &x[k].o, e);
                double toward = gap > 0 ? after - before : before - after; /* >= 0 when the law holds */
                if (!(toward >= -tol)) {
                    char where[96];
                    prop_row_name(&x[0].c, e / D, where, sizeof where);
                    snprintf(why, n,
                             "softcap/larger-cap-never-shrinks-the-gap: at %s the weight of the key with the %s logit "
                             "falls from %.6g (cap %g) to %.6g (cap %g), more than %.3g",
                             where, gap > 0 ? "second" : "first", gap > 0 ? before : 1.0 - before, (double)caps[k - 1],
                             gap > 0 ? after : 1.0 - after, (double)caps[k], tol);
                    prop_why_case(why, n, &x[k].c);
                    rc = AC_PROP_FAIL;
                    goto done;
                }
            }
        }
done:
    for (int k = 0; k < NCAPS; k++) prop_inst_free(&x[k]);
    return rc;
}

int prop_softcap(const ac_prop_ctx *ctx, char *why, size_t n)
{
    ac_rng r;
    ac_rng_init(&r, ctx->seed, PROP_STREAM);
    ac_error err;
    ac_error_clear(&err);
    prop_inst a, huge, s, m;
    memset(&a, 0, sizeof a);
    memset(&huge, 0, sizeof huge);
    memset(&s, 0, sizeof s);
    memset(&m, 0, sizeof m);
    int rc = AC_PROP_PASS;

    PROP_RUN(prop_feature_base(ctx, &r, AC_FEAT_SOFTCAP, &a, "softcap/none", why, n));

    /* a. A cap of 1e30 is no cap: tanh(x) = x to fp32 for |x| < 1e-25. */
    PROP_TRY(prop_inst_clone(&huge, &a, &err));
    huge.c.softcap = 1e30f;
    PROP_RUN(prop_run_within(ctx, &a, &huge, "softcap/1e30-equals-none", why, n));

    /* b. A cap that bites (the logits of normal data are a few units) matches the bound model. */
    PROP_TRY(prop_inst_clone(&s, &a, &err));
    s.c.softcap = (float)prop_pick(&r, 1, 16) / 4.0f;
    PROP_RUN(prop_run_vs_model(ctx, &s, "softcap/matches-model", why, n));

    /* c. Prefill: keys a bool mask excludes stay out under a cap (a kernel
       that caps after masking gives them the logit -c), and a row with no
       key left is exactly 0 / -inf (or its sink). */
    if (ctx->op == AC_OP_PREFILL) {
        PROP_TRY(prop_inst_with_mask(&m, &s, AC_MASK_BOOL, (int)ac_rng_below(&r, 2), s.c.causal, &err));
        for (int64_t i = 0; i < m.t.mask_off[m.c.batch]; i++) m.t.mask_bool[i] = ac_rng_below(&r, 3) != 0;
        for (int32_t b = 0; b < m.c.batch; b++) { /* the first mask row of each sequence: all false */
            int64_t at = m.t.mask_off[b], lk = m.c.seqlen_k[b];
            if (m.t.mask_off[b + 1] > at) memset(m.t.mask_bool + at, 0, (size_t)lk);
        }
        PROP_RUN(prop_run_vs_model(ctx, &m, "softcap/masked-keys-stay-out", why, n));
        PROP_CHECK(prop_empty_rows_exact(&m.c, &m.m, &m.o, "softcap/fully-masked-row", why, n));
    }

    /* d. Monotone in the cap. */
    PROP_RUN(monotone(ctx, &r, why, n));

done:
    prop_inst_free(&a);
    prop_inst_free(&huge);
    prop_inst_free(&s);
    prop_inst_free(&m);
    return rc;
}
