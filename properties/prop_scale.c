/* 1. Scale: the default is 1/sqrt(D) and nothing else; 0 is a real scale. */
#include <math.h>
#include <string.h>

#include "ac_numfmt.h"
#include "prop_props.h"
#include "prop_util.h"

/* Attention lengths for the ops the scale, GQA, linearity and overflow laws
   run on: prefill with ragged Lq <= Lk, or a decode step. */
ac_status prop_case_attention(const ac_prop_ctx *ctx, ac_rng *r, ac_case *c, ac_error *err)
{
    prop_case_base(ctx, ctx->op, c);
    ac_status st;
    if (ctx->op == AC_OP_DECODE)
        st = prop_case_lengths(c, r, prop_pick(r, 1, 3), 1, 4, 0, 70, err);
    else {
        st = prop_case_lengths(c, r, prop_pick(r, 1, 3), 1, 32, 0, 64, err);
        c->causal = (ac_causal)prop_pick(r, 0, AC_CAUSAL_COUNT - 1);
    }
    if (st) return st;
    st = prop_case_place(ctx, c, r, err);
    return st ? st : prop_case_features(ctx, c, AC_FEAT_ALL, err); /* the law's table entry says which */
}

int prop_scale(const ac_prop_ctx *ctx, char *why, size_t n)
{
    ac_rng r;
    ac_rng_init(&r, ctx->seed, PROP_STREAM);
    ac_error err;
    ac_error_clear(&err);
    prop_inst def, x, y;
    memset(&def, 0, sizeof def);
    memset(&x, 0, sizeof x);
    memset(&y, 0, sizeof y);
    int rc = AC_PROP_PASS;

    PROP_TRY(prop_case_attention(ctx, &r, &def.c, &err));
    PROP_TRY(prop_gen(&def, &err));
    PROP_RUN(prop_exec(ctx, &def, "scale", why, n));
    PROP_TRY(prop_inst_model(&def, &err));

    /* a. The default is 1/sqrt(D) evaluated in fp32: the same number, so the
       same computation and the same bits. */
    PROP_TRY(prop_inst_clone(&x, &def, &err));
    x.c.scale_given = 1;
    x.c.scale = 1.0f / sqrtf((float)x.c.head_dim);
    PROP_RUN(prop_exec(ctx, &x, "scale/explicit-default", why, n));
    /* An outside kernel (a plugin, the Python bridge) may take the default as
       the real 1/sqrt(D) or round it its own way (SEMANTICS.md, "Scale"): the
       same answer within the bound, not the same bits. */
    if (ctx->backend > AC_BACKEND_GPU)
        PROP_CHECK(prop_within(&def.c, &def.m, NULL, &def.o, &x.o, NULL,
                               "scale/omitted-equals-explicit-1/sqrt(D) (outside kernel: within the bound)", why, n));
    else
        PROP_CHECK(prop_same_bits(&def.c, &def.o, 0, &x.o, 0, def.m.rows,
                                  "scale/omitted-equals-explicit-1/sqrt(D)", why, n));

    /* b. An explicit 1.0 must be told apart from the default: the check
       that compares the two (within the bound) must see a difference. */
    x.c.scale = 1.0f;
    PROP_RUN(prop_exec(ctx, &x, "scale/explicit-1.0", why, n));
    PROP_TRY(prop_inst_model(&x, &err));
    {
        char tmp[1024];
        if (!prop_within(&def.c, &def.m, &x.m, &def.o, &x.o, NULL, "", tmp, sizeof tmp)) {
            snprintf(why, n, "scale/explicit-1.0-detectable: the run with scale 1.0 lies within the bound of the "
                             "default's run (the default is not 1/sqrt(D), or 1.0 is ignored)");
            prop_why_case(why, n, &x.c);
            rc = AC_PROP_FAIL;
            goto done;
        }
    }

    /* c. Scale 0 is legal and uniform: O = the mean of the allowed V rows,
       LSE = ln(number of allowed keys). The model's answer is exact here. */
    x.c.scale = 0.0f;
    PROP_RUN(prop_exec(ctx, &x, "scale/zero", why, n));
    PROP_TRY(prop_inst_model(&x, &err));
    PROP_CHECK(prop_vs_model(&x.c, &x.m, &x.o, "scale/zero-gives-mean-of-allowed-V", why, n));

    /* d. (q * c, scale / c) is the same problem when c is a power of two
       (both products are exact: no bf16/fp16/fp32 rounding, no overflow
       with |q| < 2^8 and c <= 8), so the runs agree within the bound.
       fp16 keeps c >= 2 so that no q value drops into the subnormals. */
    {
        static const float cs_bf16[] = {0.125f, 0.25f, 0.5f, 2.0f, 4.0f, 8.0f};
        static const float cs_fp16[] = {2.0f, 4.0f, 8.0f};
        float cf = def.c.dtype == AC_FP16 ? cs_fp16[ac_rng_below(&r, 3)] : cs_bf16[ac_rng_below(&r, 6)];
        PROP_TRY(prop_inst_clone(&y, &def, &err));
        y.c.scale_given = 1;
        y.c.scale = ac_case_scale(&def.c) / cf;
        size_t qn = (size_t)y.t.total_q * (size_t)y.c.heads_q * (size_t)y.c.head_dim;
        for (size_t i = 0; i < qn; i++) {
            float v = ac_half_to_f32(y.c.dtype, y.t.q[i]);
            y.t.q[i] = ac_f32_to_half(y.c.dtype, v * cf);
            if (ac_half_to_f32(y.c.dtype, y.t.q[i]) / cf != v) {
                snprintf(why, n, "scale/q*c: setup: q[%zu] * %g is not exact", i, (double)cf);
                rc = AC_PROP_FAIL;
                goto done;
            }
        }
        PROP_RUN(prop_exec(ctx, &y, "scale/q*c-scale/c", why, n));
        PROP_TRY(prop_inst_model(&y, &err));
        PROP_CHECK(prop_within(&def.c, &def.m, &y.m, &def.o, &y.o, NULL, "scale/(q*c,scale/c)-equals-(q,scale)",
                               why, n));
    }

done:
    prop_inst_free(&def);
    prop_inst_free(&x);
    prop_inst_free(&y);
    return rc;
}
