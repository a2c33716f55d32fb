/* 10. Linearity in V and the LSE: O is linear in V (within the bound), the
 * LSE does not depend on V at all (bit for bit), and the LSE matches the
 * oracle's within its tight tolerance. */
#include <math.h>
#include <string.h>

#include "ac_numfmt.h"
#include "ac_verdict.h"
#include "prop_props.h"
#include "prop_util.h"

/* Sampled oracle rows per case: the LSE check needs no more to see a
   wrong key set (every row has one), and it keeps the MPFR cost small. */
#define LSE_ORACLE_ROWS 48

int prop_linearity(const ac_prop_ctx *ctx, char *why, size_t n)
{
    ac_rng r;
    ac_rng_init(&r, ctx->seed, PROP_STREAM);
    ac_error err;
    ac_error_clear(&err);
    prop_inst x1, x2, x3;
    memset(&x1, 0, sizeof x1);
    memset(&x2, 0, sizeof x2);
    memset(&x3, 0, sizeof x3);
    int rc = AC_PROP_PASS;

    PROP_TRY(prop_case_attention(ctx, &r, &x1.c, &err));
    PROP_TRY(prop_gen(&x1, &err));
    PROP_TRY(prop_inst_clone(&x2, &x1, &err));
    PROP_TRY(prop_inst_clone(&x3, &x1, &err));

    /* V1, V2 take values k/16 with |k| <= 63; V3 = a V1 + b V2 with a in
       {1, 2}, b in {1, -1, 2}: |a k1 + b k2| <= 252 < 2^8, so every element
       of V3 is exact in bf16 (8 significant bits) and fp16: the three
       problems are exactly linear. (Not in FP8, whose 4 significant bits
       hold few of them: the law draws D_v as background, not the FP8 cache.) */
    const double a = ac_rng_below(&r, 2) ? 2.0 : 1.0;
    static const double bs[] = {1.0, -1.0, 2.0};
    const double b = bs[ac_rng_below(&r, 3)];
    for (int64_t i = 0; i < x1.t.v_elems; i++) {
        double v1 = prop_pick(&r, -63, 63) / 16.0, v2 = prop_pick(&r, -63, 63) / 16.0, v3 = a * v1 + b * v2;
        x1.t.v[i] = ac_f64_to_half(x1.c.dtype, v1);
        x2.t.v[i] = ac_f64_to_half(x1.c.dtype, v2);
        x3.t.v[i] = ac_f64_to_half(x1.c.dtype, v3);
        if ((double)ac_half_to_f32(x1.c.dtype, x3.t.v[i]) != v3) {
            snprintf(why, n, "linearity: setup: %g is not exact in %s", v3, ac_dtype_name(x1.c.dtype));
            rc = AC_PROP_FAIL;
            goto done;
        }
    }
    PROP_RUN(prop_exec(ctx, &x1, "linearity/V1", why, n));
    PROP_RUN(prop_exec(ctx, &x2, "linearity/V2", why, n));
    PROP_RUN(prop_exec(ctx, &x3, "linearity/V3", why, n));
    PROP_TRY(prop_inst_model(&x1, &err));
    PROP_TRY(prop_inst_model(&x2, &err));
    PROP_TRY(prop_inst_model(&x3, &err));

    const int64_t rows = x1.t.total_q * x1.c.heads_q;
    const int32_t D = ac_case_dv(&x1.c); /* out has D_v columns */
    /* The LSE is a function of q, k, scale and the mask only. */
    for (int64_t row = 0; x1.o.lse && x2.o.lse && x3.o.lse && row < rows; row++) /* no LSE: nothing to compare */
        if (memcmp(&x1.o.lse[row], &x2.o.lse[row], sizeof(float)) != 0 ||
            memcmp(&x1.o.lse[row], &x3.o.lse[row], sizeof(float)) != 0) {
            char where[96];
            prop_row_name(&x1.c, row, where, sizeof where);
            snprintf(why, n, "linearity/lse-does-not-depend-on-V: %s: LSE %.9g / %.9g / %.9g for V1 / V2 / V3", where,
                     (double)x1.o.lse[row], (double)x2.o.lse[row], (double)x3.o.lse[row]);
            prop_why_case(why, n, &x1.c);
            rc = AC_PROP_FAIL;
            goto done;
        }

    /* O(a V1 + b V2) = a O(V1) + b O(V2): each run may be C * bound off its
       exact answer, so the tolerance is C (bound_3 + |a| bound_1 + |b| bound_2). */
    for (int64_t row = 0; row < rows; row++) {
        if (x1.m.n_allowed[row] == 0) continue; /* empty rows: the causal and paging laws check them */
        for (int32_t d = 0; d < D; d++) {
            int64_t e = row * D + d;
            double o1 = prop_out_val(&x1.c, &x1.o, e), o2 = prop_out_val(&x1.c, &x2.o, e);
            double o3 = prop_out_val(&x1.c, &x3.o, e);
            double tol = AC_VERDICT_C * (prop_elem_bound(&x3.c, &x3.m, row, d) +
                                         fabs(a) * prop_elem_bound(&x1.c, &x1.m, row, d) +
                                         fabs(b) * prop_elem_bound(&x2.c, &x2.m, row, d));
            double diff = fabs(o3 - (a * o1 + b * o2));
            if (diff <= tol) prop_note_ratio(diff / tol);
            if (!(diff <= tol)) {
                char where[96];
                prop_row_name(&x1.c, row, where, sizeof where);
                snprintf(why, n, "linearity/O-is-linear-in-V: %s dim %d: O(%g V1 %+g V2) = %.9g but %g O(V1) %+g "
                                 "O(V2) = %.9g: |diff| %.3g > tolerance %.3g",
                         where, d, a, b, o3, a, b, a * o1 + b * o2, diff, tol);
                prop_why_case(why, n, &x1.c);
                rc = AC_PROP_FAIL;
                goto done;
            }
        }
    }

    /* The LSE against the oracle (sampled rows), within its tight bound. */
    {
        ac_verdict v;
        PROP_TRY(prop_oracle_verdict(&x1.c, &x1.t, &x1.o, LSE_ORACLE_ROWS, &v, &err));
        if (!(v.r_lse_max <= 1.0)) {
            snprintf(why, n, "linearity/lse-matches-the-oracle: r_lse = %.3g (> 1) at (seq %d, query %d, head %d): "
                             "%s",
                     v.r_lse_max, v.lse_where.seq, v.lse_where.row, v.lse_where.head, v.summary);
            prop_why_case(why, n, &x1.c);
            rc = AC_PROP_FAIL;
            goto done;
        }
    }

done:
    prop_inst_free(&x1);
    prop_inst_free(&x2);
    prop_inst_free(&x3);
    return rc;
}
