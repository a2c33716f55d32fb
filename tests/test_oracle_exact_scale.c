/* The oracle's exact default scale (opts.exact_default_scale, used by
 * `attncheck verify` for dumps) and the verdict's scale-representation term
 * (SEMANTICS.md, "Scale"): the default 1/sqrt(D) is the real number, in both
 * modes alike; nothing changes where 1/sqrt(D) is an fp32 value (D = 64) or a
 * scale is given; the verdict adds 4 u32 * QK to delta_s exactly when the
 * oracle says it used the exact value. */
#include <criterion/criterion.h>
#include <math.h>
#include <mpfr.h>
#include <string.h>

#include "ac_gen.h"
#include "ac_numfmt.h"
#include "ac_verdict.h"
#include "oracle.h"

static void make_case(ac_case *c, int32_t D, int given)
{
    ac_case_init(c);
    c->op = AC_OP_PREFILL;
    c->dtype = AC_BF16;
    c->heads_q = 2;
    c->heads_kv = 1;
    c->head_dim = D;
    c->causal = AC_CAUSAL_BOTTOM_RIGHT;
    c->scale_given = given;
    c->scale = 0.3f;
    c->seed = 17 + (uint64_t)D;
    cr_assert_eq(ac_case_set_batch(c, 1, NULL), AC_OK);
    c->seqlen_q[0] = 4;
    c->seqlen_k[0] = 7;
}

static void run(const ac_case *c, const ac_tensors *t, ac_oracle_mode mode, int exact, ac_oracle_result *res)
{
    ac_oracle_opts o = {.mode = mode, .exact_default_scale = exact, .threads = 1};
    ac_error err = {0};
    cr_assert_eq(ac_oracle_run(c, t, &o, res, &err), AC_OK, "oracle: %s", err.msg);
}

Test(oracle_exact_scale, fast_equals_mpfr_and_the_flag)
{
    static const int32_t dims[] = {64, 80, 96, 128, 200};
    for (size_t k = 0; k < sizeof dims / sizeof *dims; k++) {
        ac_case c;
        ac_tensors t;
        make_case(&c, dims[k], 0);
        cr_assert_eq(ac_gen(&c, &t, NULL), AC_OK);
        ac_oracle_result f, m, plain;
        run(&c, &t, AC_ORACLE_FAST, 1, &f);
        run(&c, &t, AC_ORACLE_MPFR, 1, &m);
        run(&c, &t, AC_ORACLE_FAST, 0, &plain);
        cr_assert(f.scale_exact && m.scale_exact && !plain.scale_exact, "D=%d: scale_exact flags", dims[k]);
        for (int64_t i = 0; i < f.rows * dims[k]; i++)
            cr_assert(f.o_f32[i] == m.o_f32[i] && f.o_half[i] == m.o_half[i], "D=%d: element %lld differs", dims[k],
                      (long long)i);
        int lse_differs = 0;
        for (int64_t r = 0; r < f.rows; r++) {
            cr_assert(fabs(f.lse[r] - m.lse[r]) <= 1e-15 * fabs(m.lse[r]) + 1e-24, "D=%d: lse[%lld]", dims[k],
                      (long long)r);
            lse_differs |= plain.lse[r] != f.lse[r];
        }
        /* 1/8 is an fp32 value; 1/sqrtf(96) etc. are not. */
        if (dims[k] == 64) cr_assert(!lse_differs, "D=64: the exact scale is the fp32 one, results must agree");
        else cr_assert(lse_differs, "D=%d: the exact scale must differ from the fp32 default somewhere", dims[k]);
        ac_oracle_result_free(&f);
        ac_oracle_result_free(&m);
        ac_oracle_result_free(&plain);
        ac_tensors_free(&t);
        ac_case_free(&c);
    }
}

Test(oracle_exact_scale, a_given_scale_is_untouched)
{
    ac_case c;
    ac_tensors t;
    make_case(&c, 96, 1);
    cr_assert_eq(ac_gen(&c, &t, NULL), AC_OK);
    ac_oracle_result a, b;
    run(&c, &t, AC_ORACLE_FAST, 1, &a);
    run(&c, &t, AC_ORACLE_FAST, 0, &b);
    cr_assert(!a.scale_exact);
    for (int64_t r = 0; r < a.rows; r++) cr_assert(a.lse[r] == b.lse[r]);
    ac_oracle_result_free(&a);
    ac_oracle_result_free(&b);
    ac_tensors_free(&t);
    ac_case_free(&c);
}

/* One key: LSE = s = (q . k) / sqrt(D) exactly; the oracle's double is that
   real number correctly rounded (its error is far below half an ulp). */
Test(oracle_exact_scale, one_key_lse_is_dot_over_sqrt_d)
{
    for (int mode = 0; mode < 2; mode++) {
        ac_case c;
        ac_tensors t;
        make_case(&c, 96, 0);
        c.heads_q = 1;
        c.causal = AC_CAUSAL_NONE;
        c.seqlen_q[0] = 1;
        c.seqlen_k[0] = 1;
        cr_assert_eq(ac_gen(&c, &t, NULL), AC_OK);
        ac_oracle_result res;
        run(&c, &t, (ac_oracle_mode)mode, 1, &res);
        mpfr_t dot, s;
        mpfr_inits2(300, dot, s, (mpfr_ptr)0);
        mpfr_set_zero(dot, 1);
        for (int d = 0; d < 96; d++)
            mpfr_add_d(dot, dot, (double)ac_half_to_f32(c.dtype, t.q[d]) * (double)ac_half_to_f32(c.dtype, t.k[d]),
                       MPFR_RNDN);
        mpfr_set_ui(s, 96, MPFR_RNDN);
        mpfr_sqrt(s, s, MPFR_RNDN);
        mpfr_div(s, dot, s, MPFR_RNDN);
        double want = mpfr_get_d(s, MPFR_RNDN);
        cr_assert(res.lse[0] == want, "mode %d: lse %a, exact %a", mode, res.lse[0], want);
        mpfr_clears(dot, s, (mpfr_ptr)0);
        ac_oracle_result_free(&res);
        ac_tensors_free(&t);
        ac_case_free(&c);
    }
}

Test(oracle_exact_scale, verdict_counts_the_representation_error)
{
    ac_case c;
    ac_tensors t;
    make_case(&c, 96, 0);
    cr_assert_eq(ac_gen(&c, &t, NULL), AC_OK);
    ac_oracle_result e, p;
    run(&c, &t, AC_ORACLE_FAST, 1, &e);
    run(&c, &t, AC_ORACLE_FAST, 0, &p);
    for (int64_t r = 0; r < e.rows; r++) {
        ac_bound_terms on, off, plain;
        ac_verdict_terms(&c, &e, r, 0, &on);
        e.scale_exact = 0;
        ac_verdict_terms(&c, &e, r, 0, &off);
        e.scale_exact = 1;
        ac_verdict_terms(&c, &p, r, 0, &plain);
        double extra = on.delta_s - off.delta_s, want = 4.0 * AC_U_FP32 * e.qk_abs[r];
        cr_assert(fabs(extra - want) <= 1e-9 * want, "row %lld: extra %g, want %g", (long long)r, extra, want);
        cr_assert(want > 0.0 && plain.delta_s < on.delta_s, "row %lld: the fp32 default gets no term", (long long)r);
    }
    ac_oracle_result_free(&e);
    ac_oracle_result_free(&p);
    ac_tensors_free(&t);
    ac_case_free(&c);
}
