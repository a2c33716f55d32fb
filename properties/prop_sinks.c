/* 15. Sinks: sink_h is a logit in the denominator only,
 * LSE = ln(exp(sink_h) + sum exp(s_j)), O = sum exp(s_j - LSE) v_j. So a
 * sink of -inf is no sink, and on a prefill a sink is one more key in front
 * whose K and V rows are zero and whose additive bias is the sink (its logit
 * is then exactly sink_h; its zero value row adds nothing to O). */
#include <math.h>
#include <string.h>

#include "ac_index.h"
#include "prop_props.h"
#include "prop_util.h"

/* Prefill: x (sinks on, causal NONE or BOTTOM_RIGHT, Lk >= Lq, no window or
   ALiBi, which would move with the extra key) against the same problem with
   key 0 inserted: K = V = 0, bias sink_h on it and 0 elsewhere. */
static int extra_key(const ac_prop_ctx *ctx, ac_rng *r, const float *sinks, char *why, size_t n)
{
    ac_error err;
    ac_error_clear(&err);
    prop_inst x, e;
    memset(&x, 0, sizeof x);
    memset(&e, 0, sizeof e);
    int rc = AC_PROP_PASS;

    prop_case_base(ctx, AC_OP_PREFILL, &x.c);
    PROP_TRY(prop_case_lengths(&x.c, r, prop_pick(r, 1, 3), 1, 40, 0, 80, &err));
    x.c.causal = ac_rng_below(r, 2) ? AC_CAUSAL_BOTTOM_RIGHT : AC_CAUSAL_NONE;
    PROP_TRY(prop_case_place(ctx, &x.c, r, &err));
    PROP_TRY(prop_case_features(ctx, &x.c, AC_FEAT_SOFTCAP, &err)); /* q.0 = 0 is capped to 0 */
    PROP_TRY(ac_case_set_sinks(&x.c, sinks, x.c.heads_q, &err));
    PROP_TRY(prop_gen(&x, &err));
    PROP_RUN(prop_exec(ctx, &x, "sinks/with-sinks", why, n));
    PROP_TRY(prop_inst_model(&x, &err));

    /* The twin: contiguous, one more key in front, a per-head bias. */
    prop_case_base(ctx, AC_OP_PREFILL, &e.c);
    PROP_TRY(ac_case_set_batch(&e.c, x.c.batch, &err));
    for (int32_t b = 0; b < x.c.batch; b++) e.c.seqlen_q[b] = x.c.seqlen_q[b], e.c.seqlen_k[b] = x.c.seqlen_k[b] + 1;
    e.c.causal = x.c.causal;
    e.c.softcap = x.c.softcap;
    e.c.mask = AC_MASK_ADDITIVE;
    e.c.mask_per_head = 1;
    PROP_TRY(prop_gen(&e, &err));
    const int32_t Hq = x.c.heads_q, Hkv = x.c.heads_kv, D = x.c.head_dim;
    memcpy(e.t.q, x.t.q, sizeof(uint16_t) * (size_t)(x.t.total_q * Hq * D));
    for (int32_t b = 0; b < x.c.batch; b++) {
        int32_t lq = e.c.seqlen_q[b], lk = e.c.seqlen_k[b];
        for (int32_t h = 0; h < Hkv; h++) {
            int64_t at = prop_kv_offset(&e.c, &e.t, b, 0, h);
            memset(e.t.k + at, 0, sizeof(uint16_t) * (size_t)D); /* +0 in both dtypes */
            memset(e.t.v + at, 0, sizeof(uint16_t) * (size_t)D);
            for (int32_t p = 0; p + 1 < lk; p++) {
                int64_t to = prop_kv_offset(&e.c, &e.t, b, p + 1, h), from = prop_kv_offset(&x.c, &x.t, b, p, h);
                memcpy(e.t.k + to, x.t.k + from, sizeof(uint16_t) * (size_t)D);
                memcpy(e.t.v + to, x.t.v + from, sizeof(uint16_t) * (size_t)D);
            }
        }
        for (int32_t h = 0; h < Hq; h++)
            for (int32_t i = 0; i < lq; i++) {
                float *row = e.t.mask_bias + e.t.mask_off[b] + ((int64_t)h * lq + i) * lk;
                row[0] = sinks[h];
                for (int32_t j = 1; j < lk; j++) row[j] = 0.0f;
            }
    }
    PROP_RUN(prop_run_within(ctx, &x, &e, "sinks/equal-an-extra-key-with-a-zero-value-row", why, n));

done:
    prop_inst_free(&x);
    prop_inst_free(&e);
    return rc;
}

int prop_sinks(const ac_prop_ctx *ctx, char *why, size_t n)
{
    ac_rng r;
    ac_rng_init(&r, ctx->seed, PROP_STREAM);
    ac_error err;
    ac_error_clear(&err);
    prop_inst a, none, s;
    memset(&a, 0, sizeof a);
    memset(&none, 0, sizeof none);
    memset(&s, 0, sizeof s);
    int rc = AC_PROP_PASS;
    float sinks[AC_MAX_HEADS];

    PROP_RUN(prop_feature_base(ctx, &r, AC_FEAT_SINKS, &a, "sinks/none", why, n));
    const int32_t H = a.c.heads_q;

    /* a. A sink of -inf on every head is no sink. */
    for (int32_t h = 0; h < H; h++) sinks[h] = -INFINITY;
    PROP_TRY(prop_inst_clone(&none, &a, &err));
    PROP_TRY(ac_case_set_sinks(&none.c, sinks, H, &err));
    PROP_RUN(prop_run_within(ctx, &a, &none, "sinks/minus-inf-equals-none", why, n));

    /* b. Sinks in [-4, 6] (about as large as the logits of normal data: they
       take a visible share), one head -inf, match the bound model; empty
       rows give O = 0 and LSE = the sink. */
    for (int32_t h = 0; h < H; h++) sinks[h] = (float)prop_pick(&r, -32, 48) / 8.0f;
    sinks[prop_pick(&r, 0, H - 1)] = -INFINITY;
    PROP_TRY(prop_inst_clone(&s, &a, &err));
    PROP_TRY(ac_case_set_sinks(&s.c, sinks, H, &err));
    PROP_RUN(prop_run_vs_model(ctx, &s, "sinks/matches-model", why, n));
    PROP_CHECK(prop_empty_rows_exact(&s.c, &s.m, &s.o, "sinks/empty-rows", why, n));

    /* c. Prefill: a sink is an extra key with a zero value row. */
    if (ctx->op == AC_OP_PREFILL) PROP_RUN(extra_key(ctx, &r, sinks, why, n));

done:
    prop_inst_free(&a);
    prop_inst_free(&none);
    prop_inst_free(&s);
    return rc;
}
