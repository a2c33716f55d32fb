/* The fast mode against the MPFR mode and its pieces against MPFR:
 *  - the double-double exp: relative error below 2^-100 over [-760, 1];
 *  - the final rounding from a double-double (ac_round_dd) and from MPFR
 *    (ac_round_mpfr) against MPFR's own rounding with the format's exponent
 *    range (mpfr_subnormalize), near midpoints and in the subnormal ranges;
 *  - whole cases (half of the attention ones with windows, softcap, ALiBi
 *    and sinks): FAST and MPFR give bit-identical o_f32 and o_half, LSE
 *    within 1e-15 relative, and O* rounded to double identical but for rare
 *    neighbours (a fast-mode error above ~2^-60 would make them common). */
#include <criterion/criterion.h>
#include <math.h>
#include <mpfr.h>
#include <string.h>

#include "../oracle/tools/oracle_testgen.h"
#include "oracle.h"
#include "oracle_internal.h"

static double unit_rand(tg_rng *r) { return (double)(tg_next(r) >> 11) * 0x1p-53; }

Test(oracle_fast, dd_exp_is_within_2m100_of_mpfr)
{
    tg_rng r = {12345};
    mpfr_t x, e, got;
    mpfr_inits2(400, x, e, got, (mpfr_ptr)0);
    double worst = 0.0, worst_x = 0.0;
    for (int i = 0; i < 200000; i++) {
        double hi;
        int kind = i % 4;
        if (kind == 0) hi = -760.0 * unit_rand(&r) + 1.0;     /* whole range */
        else if (kind == 1) hi = -unit_rand(&r);              /* [-1, 0]: most logits after the max */
        else if (kind == 2) hi = -ldexp(unit_rand(&r), -tg_below(&r, 60)); /* tiny arguments */
        else hi = -(double)tg_below(&r, 1100) * 0.693147180559945309 + (unit_rand(&r) - 0.5) * 1e-6; /* near k ln2 */
        if (hi > 1.0) hi = 1.0;
        double lo = hi == 0.0 ? 0.0 : (unit_rand(&r) - 0.5) * ldexp(1.0, ilogb(hi) - 52);
        mpfr_set_d(x, hi, MPFR_RNDN);
        mpfr_add_d(x, x, lo, MPFR_RNDN);
        mpfr_exp(e, x, MPFR_RNDN);
        double rh, rl;
        ac_dd_exp(hi, lo, &rh, &rl);
        mpfr_set_d(got, rh, MPFR_RNDN);
        mpfr_add_d(got, got, rl, MPFR_RNDN);
        mpfr_sub(got, got, e, MPFR_RNDN);
        mpfr_abs(got, got, MPFR_RNDN);
        /* Below 2^-960 the low part (2^-53 smaller) meets double's subnormals:
           there the bound is 2^-100 relative plus 2^-1073 absolute. */
        if (mpfr_cmp_d(e, 0x1p-960) < 0) {
            mpfr_t lim;
            mpfr_init2(lim, 400);
            mpfr_mul_2si(lim, e, -100, MPFR_RNDN);
            mpfr_add_d(lim, lim, 0x1p-1073, MPFR_RNDN);
            cr_assert(mpfr_lessequal_p(got, lim), "exp(%a + %a): error too large", hi, lo);
            mpfr_clear(lim);
            continue;
        }
        mpfr_div(got, got, e, MPFR_RNDN);
        double rel = mpfr_get_d(got, MPFR_RNDU);
        if (rel > worst) {
            worst = rel;
            worst_x = hi;
        }
    }
    cr_log_info("dd exp: worst relative error %.3g = 2^%.1f at x = %a", worst, log2(worst), worst_x);
    cr_assert(worst <= 0x1p-100, "dd exp relative error 2^%.1f exceeds 2^-100 (x = %a)", log2(worst), worst_x);
    mpfr_clears(x, e, got, (mpfr_ptr)0);
}

/* MPFR's own rounding of x to a binary format: precision p, exponent range of
   the format, then subnormalised (the reference for ac_round_*). */
static double mpfr_format_round(mpfr_t x, int p, mpfr_exp_t emin, mpfr_exp_t emax)
{
    mpfr_exp_t old_min = mpfr_get_emin(), old_max = mpfr_get_emax();
    mpfr_t y;
    mpfr_init2(y, p);
    mpfr_set_emin(emin);
    mpfr_set_emax(emax);
    int inex = mpfr_set(y, x, MPFR_RNDN);
    inex = mpfr_check_range(y, inex, MPFR_RNDN);
    mpfr_subnormalize(y, inex, MPFR_RNDN);
    mpfr_set_emin(old_min);
    mpfr_set_emax(old_max);
    double d = mpfr_get_d(y, MPFR_RNDN);
    mpfr_clear(y);
    return d;
}

Test(oracle_fast, final_rounding_matches_mpfr_subnormalize)
{
    /* MPFR exponents (x = m 2^E, m in [1/2, 1)): smallest subnormal 2^(emin-1),
       largest finite below 2^emax. */
    const struct { const ac_fmt *f; int p; mpfr_exp_t emin, emax; const char *name; } fmts[3] = {
        {&ac_fmt_f32, 24, -148, 128, "fp32"}, {&ac_fmt_bf16, 8, -132, 128, "bf16"}, {&ac_fmt_fp16, 11, -23, 16, "fp16"}};
    tg_rng r = {777};
    mpfr_t x;
    mpfr_init2(x, 2200); /* holds any hi + lo exactly */
    long checked = 0, ties = 0;
    for (int k = 0; k < 3; k++) {
        for (int i = 0; i < 100000; i++) {
            int e = (int)fmts[k].emin - 4 + tg_below(&r, (int)(fmts[k].emax - fmts[k].emin) + 6);
            double hi = ldexp(1.0 + unit_rand(&r), e - 1);
            if (tg_below(&r, 2)) hi = -hi;
            if (tg_below(&r, 3) == 0) {
                /* Force hi onto a midpoint of the format (or an exact value). */
                int q = ilogb(hi) - fmts[k].p + 1;
                if (q < fmts[k].f->emin - fmts[k].p + 1) q = fmts[k].f->emin - fmts[k].p + 1;
                hi = ldexp(floor(ldexp(hi, -q)) + (tg_below(&r, 2) ? 0.5 : 0.0), q);
                ties++;
            }
            double lo = 0.0;
            int lk = tg_below(&r, 3);
            if (lk == 1) lo = ldexp(unit_rand(&r) - 0.5, ilogb(hi) - 53);
            if (lk == 2) lo = ldexp(unit_rand(&r) - 0.5, ilogb(hi) - 53 - tg_below(&r, 900));
            if (hi + lo != hi) lo = 0.0; /* keep hi == RN(hi + lo) */
            mpfr_set_d(x, hi, MPFR_RNDN);
            mpfr_add_d(x, x, lo, MPFR_RNDN);
            double want = mpfr_format_round(x, fmts[k].p, fmts[k].emin, fmts[k].emax);
            double a = ac_round_dd(hi, lo, fmts[k].f), b = ac_round_mpfr(x, fmts[k].f);
            cr_assert(a == want && signbit(a) == signbit(want), "%s: round_dd(%a, %a) = %a, MPFR %a", fmts[k].name,
                      hi, lo, a, want);
            cr_assert(b == want && signbit(b) == signbit(want), "%s: round_mpfr(%a + %a) = %a, MPFR %a",
                      fmts[k].name, hi, lo, b, want);
            if (k == 0) cr_assert((float)a == mpfr_get_flt(x, MPFR_RNDN));
            checked++;
        }
    }
    cr_log_info("final rounding: %ld values (%ld on midpoints or exact) agree with MPFR", checked, ties);
    mpfr_clear(x);
}

Test(oracle_fast, half_bit_patterns_round_trip)
{
    for (int dt = 0; dt < 2; dt++)
        for (uint32_t h = 0; h < 0x10000u; h++) {
            double x = ac_half_bits_to_double((ac_dtype)dt, (uint16_t)h);
            if (isnan(x)) continue;
            uint16_t back = ac_exact_to_half_bits((ac_dtype)dt, x);
            cr_assert_eq(back, h, "dtype %d: %04x -> %a -> %04x", dt, h, x, back);
        }
}

static double ulp_diff_d(double a, double b)
{
    if (a == b) return 0.0;
    return fabs(a - b) / (nextafter(fabs(a), INFINITY) - fabs(a));
}

Test(oracle_fast, fast_and_mpfr_modes_agree_on_random_cases, .timeout = 600)
{
    static const ac_op ops[3] = {AC_OP_PREFILL, AC_OP_DECODE, AC_OP_COMBINE};
    long cases = 0, elems = 0, dbl_diff = 0, rows = 0, zero_sign = 0;
    for (uint64_t seed = 1; seed <= 360; seed++) {
        ac_case c;
        ac_tensors t;
        cr_assert_eq(tg_random_case(ops[seed % 3], seed * 7919, &c, &t), 0);
        /* Every other attention case carries features (window, softcap, ALiBi, sinks). */
        if (ops[seed % 3] != AC_OP_COMBINE && seed % 2 == 0) cr_assert_eq(tg_random_features(&c, seed * 31), 0);
        ac_oracle_opts of = {.mode = AC_ORACLE_FAST, .threads = 2}, om = {.mode = AC_ORACLE_MPFR, .threads = 2};
        ac_oracle_result rf, rm;
        ac_error err = {0};
        char line[512];
        ac_case_line(&c, line, sizeof line);
        cr_assert_eq(ac_oracle_run(&c, &t, &of, &rf, &err), AC_OK, "%s: %s", line, err.msg);
        cr_assert_eq(ac_oracle_run(&c, &t, &om, &rm, &err), AC_OK, "%s: %s", line, err.msg);
        int64_t n = rf.rows * rf.head_dim;
        for (int64_t i = 0; i < n; i++) {
            /* Zeros compare by value: an exact O* below 2^-1000 in magnitude
               (a dominant key with v = 0, the rest under e^-760) is +0 in the
               fast mode, which cannot see the sign of what underflows double. */
            cr_assert(rf.o_f32[i] == rm.o_f32[i], "%s: o_f32[%lld] %a vs %a", line, (long long)i,
                      (double)rf.o_f32[i], (double)rm.o_f32[i]);
            cr_assert(rf.o_half[i] == rm.o_half[i] || ((rf.o_half[i] & 0x7fffu) == 0 && (rm.o_half[i] & 0x7fffu) == 0),
                      "%s: o_half[%lld] %04x vs %04x", line, (long long)i, rf.o_half[i], rm.o_half[i]);
            zero_sign += signbit(rf.o_f32[i]) != signbit(rm.o_f32[i]);
            double u = ulp_diff_d(rf.o[i], rm.o[i]);
            cr_assert(u <= 1.0, "%s: o[%lld] %a vs %a", line, (long long)i, rf.o[i], rm.o[i]);
            dbl_diff += u != 0.0;
        }
        for (int64_t r = 0; r < rf.rows; r++) {
            cr_assert_eq(rf.n_allowed[r], rm.n_allowed[r]);
            if (isinf(rm.lse[r])) {
                cr_assert(rf.lse[r] == rm.lse[r], "%s: lse[%lld]", line, (long long)r);
                continue;
            }
            /* 1e-15 relative, with a floor for an LSE that cancels to near 0:
               the fast mode's logit error is below 2^-90 |s| (docs/ORACLE.md). */
            double tol = 1e-15 * fabs(rm.lse[r]) + 0x1p-80 * (rm.logit_abs[r] + 1.0);
            cr_assert(fabs(rf.lse[r] - rm.lse[r]) <= tol, "%s: lse[%lld] %a vs %a", line, (long long)r, rf.lse[r],
                      rm.lse[r]);
        }
        cases++;
        elems += n;
        rows += rf.rows;
        ac_oracle_result_free(&rf);
        ac_oracle_result_free(&rm);
        ac_tensors_free(&t);
        ac_case_free(&c);
    }
    cr_log_info("fast vs mpfr: %ld cases, %ld rows, %ld elements bit-identical in fp32 and the dtype; "
                "%ld doubles one ulp apart, %ld zeros of opposite sign", cases, rows, elems, dbl_diff, zero_sign);
    /* A correct fast mode (error < 2^-90 relative to sum P|v|) puts O* within
       2^-37 double ulps of a double midpoint only by chance: expect none. */
    cr_assert(dbl_diff * 1000 <= elems, "%ld of %ld doubles differ: the fast mode is not accurate to ~2^-60",
              dbl_diff, elems);
}
