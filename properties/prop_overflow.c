/* 11. Overflow safety: logits of magnitude 1e4 after scaling (exp would
 * overflow fp32 a hundred times over without the running max) give finite
 * outputs that match the oracle. */
#include <math.h>
#include <string.h>

#include "ac_verdict.h"
#include "prop_props.h"
#include "prop_util.h"

#define OVERFLOW_LOGIT 1e4
#define OVERFLOW_ORACLE_ROWS 48

int prop_overflow(const ac_prop_ctx *ctx, char *why, size_t n)
{
    ac_rng r;
    ac_rng_init(&r, ctx->seed, PROP_STREAM);
    ac_error err;
    ac_error_clear(&err);
    prop_inst x;
    memset(&x, 0, sizeof x);
    int rc = AC_PROP_PASS;

    PROP_TRY(prop_case_attention(ctx, &r, &x.c, &err));
    PROP_TRY(prop_gen(&x, &err));
    /* The scale: the power of two that puts the largest |q.k| * scale in
       (OVERFLOW_LOGIT / 2, OVERFLOW_LOGIT]; a power of two keeps the logits
       exactly scaled copies of q.k. */
    x.c.scale_given = 1;
    x.c.scale = 1.0f;
    PROP_TRY(prop_inst_model(&x, &err));
    double qk_max = 0.0;
    for (int64_t row = 0; row < x.m.rows; row++)
        if (x.m.logit_abs[row] > qk_max) qk_max = x.m.logit_abs[row];
    if (qk_max <= 0.0) {
        snprintf(why, n, "overflow: skipped: no allowed key with q.k != 0");
        rc = AC_PROP_SKIP;
        goto done;
    }
    x.c.scale = (float)ldexp(1.0, (int)floor(log2(OVERFLOW_LOGIT / qk_max)));
    if (ac_rng_below(&r, 2)) x.c.scale = -x.c.scale; /* both signs of huge logits */
    PROP_RUN(prop_exec(ctx, &x, "overflow", why, n));
    PROP_TRY(prop_inst_model(&x, &err));

    /* No Inf or NaN anywhere (an empty row's LSE is -inf by contract). */
    const int32_t D = ac_case_dv(&x.c); /* out has D_v columns */
    for (int64_t row = 0; row < x.m.rows; row++) {
        int empty = x.m.n_allowed[row] == 0;
        int bad = !empty && x.o.lse && !isfinite(x.o.lse[row]);
        for (int32_t d = 0; d < D && !bad; d++) bad = !isfinite(prop_out_val(&x.c, &x.o, row * D + d));
        if (bad) {
            char where[96];
            prop_row_name(&x.c, row, where, sizeof where);
            /* A kernel may return no LSE (ac_backend.h): then there is none to show. */
            snprintf(why, n, "overflow/no-inf-or-nan: %s: LSE %.9g, O[0] %.9g with logits up to %.3g", where,
                     x.o.lse ? (double)x.o.lse[row] : NAN, prop_out_val(&x.c, &x.o, row * D), x.m.logit_abs[row]);
            prop_why_case(why, n, &x.c);
            rc = AC_PROP_FAIL;
            goto done;
        }
    }
    /* Every row against the model (exact at these magnitudes too), sampled
       rows against the oracle. */
    PROP_CHECK(prop_vs_model(&x.c, &x.m, &x.o, "overflow/huge-logits-match-the-exact-answer", why, n));
    {
        ac_verdict v;
        PROP_TRY(prop_oracle_verdict(&x.c, &x.t, &x.o, OVERFLOW_ORACLE_ROWS, &v, &err));
        if (!v.pass) {
            snprintf(why, n, "overflow/huge-logits-match-the-oracle: %s", v.summary);
            prop_why_case(why, n, &x.c);
            rc = AC_PROP_FAIL;
            goto done;
        }
    }

done:
    prop_inst_free(&x);
    return rc;
}
