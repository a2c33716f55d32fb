/* ac_numfmt against MPFR: every 16-bit pattern each way, 10^7 random fp32
 * patterns and 10^6 random doubles rounded to bf16 and fp16.
 *
 * The reference rounds with MPFR in the target's own precision and exponent
 * range: mpfr_set_d at precision p (RNDN), then mpfr_check_range and
 * mpfr_subnormalize with emin/emax of the format, which is MPFR's documented
 * recipe for emulating an IEEE format with subnormals (one rounding, no double
 * rounding: subnormalize uses the ternary value of the first rounding).
 * Overflow under RNDN gives Inf exactly as IEEE round-to-nearest-even does. */
#include <criterion/criterion.h>
#include <float.h>
#include <math.h>
#include <mpfr.h>
#include <stdint.h>
#include <string.h>

#include "ac_numfmt.h"
#include "ac_rng.h"

/* MPFR convention: x = m * 2^e with 0.5 <= m < 1.
   fp16: p = 11, smallest subnormal 2^-24 = 0.5*2^-23 -> emin = -23,
         largest finite < 2^16 = 0.5*2^17 -> emax = 16.
   bf16: p = 8, smallest subnormal 2^-133 -> emin = -132, largest < 2^128 -> emax = 128. */
typedef struct fmt {
    ac_dtype t;
    int prec, emin, emax;
    uint16_t inf, quiet;
} fmt;
static const fmt FP16 = {AC_FP16, 11, -23, 16, 0x7c00, 0x0200};
static const fmt BF16 = {AC_BF16, 8, -132, 128, 0x7f80, 0x0040};

static mpfr_t ref_x;

static void ref_setup(void) { mpfr_init2(ref_x, 64); }
static void ref_teardown(void) { mpfr_clear(ref_x); }

/* x (not NaN) rounded once to the format, as a double (exact: p <= 11). */
static double ref_round(const fmt *f, double x)
{
    mpfr_exp_t old_min = mpfr_get_emin(), old_max = mpfr_get_emax();
    mpfr_set_prec(ref_x, f->prec);
    mpfr_set_emin(f->emin);
    mpfr_set_emax(f->emax);
    int tern = mpfr_set_d(ref_x, x, MPFR_RNDN);
    tern = mpfr_check_range(ref_x, tern, MPFR_RNDN);
    mpfr_subnormalize(ref_x, tern, MPFR_RNDN);
    double r = mpfr_get_d(ref_x, MPFR_RNDN);
    mpfr_set_emin(old_min);
    mpfr_set_emax(old_max);
    return r;
}

static uint32_t f2u(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static float u2f(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
static double u2d(uint64_t u) { double d; memcpy(&d, &u, 8); return d; }

/* Check one rounding result h of input x (given as double, exact) against MPFR. */
static int check_one(const fmt *f, double x, uint16_t h, uint64_t input_bits)
{
    if (isnan(x)) {
        int ok = ac_half_isnan(f->t, h) && (h & f->quiet) && ((h >> 15) == (signbit(x) ? 1 : 0));
        if (!ok) cr_log_error("%s NaN input %#llx -> %#06x: want quiet NaN, sign kept",
                              ac_dtype_name(f->t), (unsigned long long)input_bits, h);
        return ok;
    }
    double want = ref_round(f, x);
    double got = ac_half_to_f32(f->t, h);
    int ok = !ac_half_isnan(f->t, h) && got == want && !signbit(got) == !signbit(want);
    if (!ok)
        cr_log_error("%s input %#llx (%a) -> %#06x (%a), MPFR %a", ac_dtype_name(f->t),
                     (unsigned long long)input_bits, x, h, got, want);
    return ok;
}

/* --- exhaustive 16-bit patterns --------------------------------------------- */

/* Exact value of a pattern built from its fields with ldexp (exact in double). */
static double exact_half(const fmt *f, uint16_t h)
{
    int t = f->prec - 1;
    int bias = f->emax - 1;
    int e = (h >> t) & ((1 << (15 - t)) - 1);
    int m = h & ((1 << t) - 1);
    double v = e == 0 ? ldexp(m, 1 - bias - t) : ldexp(m + (1 << t), e - bias - t);
    return (h >> 15) ? -v : v;
}

static void exhaustive(const fmt *f)
{
    int bad = 0;
    int t = f->prec - 1;
    for (uint32_t i = 0; i < 65536; i++) {
        uint16_t h = (uint16_t)i;
        float x = ac_half_to_f32(f->t, h);
        uint32_t xb = f2u(x);
        if ((h & 0x7fff) > f->inf) {
            /* NaN: stays NaN, sign and payload kept (payload sits under the top bits). */
            if (!isnan(x) || (xb >> 31) != (h >> 15u) || ((xb >> (23 - t)) & ((1u << t) - 1)) != (h & ((1u << t) - 1)))
                bad++, cr_log_error("%s %#06x -> %#010x: NaN payload/sign lost", ac_dtype_name(f->t), h, xb);
            uint16_t back = ac_f32_to_half(f->t, x);
            if (back != (h | f->quiet)) bad++, cr_log_error("%s NaN %#06x round trip -> %#06x", ac_dtype_name(f->t), h, back);
            continue;
        }
        double want = (h & 0x7fff) == f->inf ? ((h >> 15) ? -INFINITY : INFINITY) : exact_half(f, h);
        if ((double)x != want || !signbit(x) != !signbit(want))
            bad++, cr_log_error("%s %#06x -> %a, want %a", ac_dtype_name(f->t), h, (double)x, want);
        /* f32(half) -> half and f64(half) -> half are identities, and MPFR agrees. */
        uint16_t back = ac_f32_to_half(f->t, x);
        uint16_t back64 = ac_f64_to_half(f->t, (double)x);
        if (back != h || back64 != h)
            bad++, cr_log_error("%s %#06x round trip -> %#06x / %#06x", ac_dtype_name(f->t), h, back, back64);
        if (!check_one(f, (double)x, back, h)) bad++;
        if (bad > 20) break;
    }
    cr_assert_eq(bad, 0, "%d mismatches over the 65536 %s patterns", bad, ac_dtype_name(f->t));
}

Test(numfmt, fp16_all_patterns, .init = ref_setup, .fini = ref_teardown) { exhaustive(&FP16); }
Test(numfmt, bf16_all_patterns, .init = ref_setup, .fini = ref_teardown) { exhaustive(&BF16); }

/* --- hand-picked edges: they name the rule each one pins -------------------- */

Test(numfmt, edges)
{
    /* fp16 largest finite 65504; 65520 is the tie between 65504 (odd) and 2^16: Inf. */
    cr_assert_eq(ac_f32_to_fp16(65504.0f), 0x7bff);
    cr_assert_eq(ac_f32_to_fp16(65519.99f), 0x7bff);
    cr_assert_eq(ac_f32_to_fp16(65520.0f), 0x7c00);
    cr_assert_eq(ac_f32_to_fp16(-1e30f), 0xfc00);
    /* Half the smallest subnormal ties to 0 (even); a hair above goes to 2^-24. */
    cr_assert_eq(ac_f32_to_fp16(0x1p-25f), 0x0000);
    cr_assert_eq(ac_f32_to_fp16(-0x1p-25f), 0x8000);
    cr_assert_eq(ac_f32_to_fp16(0x1.000002p-25f), 0x0001);
    cr_assert_eq(ac_f32_to_fp16(0x1.8p-24f), 0x0002); /* 1.5 ulp ties to 2 (even) */
    cr_assert_eq(ac_f32_to_fp16(0x1.ffcp-15f), 0x0400); /* rounds up into the smallest normal */
    /* bf16 ties to even, and a NaN stays a quiet NaN with its sign. */
    cr_assert_eq(ac_f32_to_bf16(1.00390625f), 0x3f80);      /* 1 + 2^-8: tie, keep even */
    cr_assert_eq(ac_f32_to_bf16(1.01171875f), 0x3f82);      /* 1 + 3*2^-8: tie, go to even */
    cr_assert_eq(ac_f32_to_bf16(u2f(0xff800001u)), 0xffc0); /* signalling -NaN -> quiet -NaN */
    cr_assert_eq(ac_f32_to_bf16(u2f(0x7f7fffffu)), 0x7f80); /* FLT_MAX rounds to Inf */
    /* Double rounding: 1 + 2^-8 + 2^-30 is above the bf16 tie, but via fp32 it
       would first become the tie 1 + 2^-8 and then round down to 1.0. */
    cr_assert_eq(ac_f64_to_bf16(1.0 + 0x1p-8 + 0x1p-30), 0x3f81);
    cr_assert_eq(ac_f32_to_bf16((float)(1.0 + 0x1p-8 + 0x1p-30)), 0x3f80);
    cr_assert_eq(ac_f64_to_fp16(1.0 + 0x1p-11 + 0x1p-40), 0x3c01);
    /* Ordinal distance counts representable values across zero. */
    cr_assert_eq(ac_half_ulp_diff(AC_BF16, 0x0001, 0x8001), 2);
    cr_assert_eq(ac_half_ulp_diff(AC_FP16, 0x0000, 0x8000), 0);
    cr_assert_eq(ac_half_ulp_diff(AC_FP16, 0x3c00, 0x3c05), 5);
    cr_assert_eq(ac_f32_ulp_diff(1.0f, nextafterf(1.0f, 2.0f)), 1);
    cr_assert_eq(ac_f32_ulp_diff(-0x1p-149f, 0x1p-149f), 2);
    cr_assert_eq(ac_f32_ulp_diff(-FLT_MAX, FLT_MAX), 2 * (int64_t)0x7f7fffff);
}

/* --- random patterns --------------------------------------------------------- */

static ac_rng sm;
static uint64_t sm_next(void) { return ac_rng_next(&sm); }
static uint32_t below(uint32_t n) { return (uint32_t)((sm_next() >> 32) * n >> 32); }

/* A pattern of a binary format with `fb` fraction bits and biased exponent
   field `ew` bits wide, drawn to hit what a rounding routine gets wrong:
   class 0: any bits at all; 1: exponents around the target's range
   (subnormals of the target included); 2: as 1 with the low k bits forced to
   an exact tie (or one off it) for a random k, which covers the tie position
   of every target exponent; 3: at the top of the target range (overflow edge). */
static uint64_t draw_pattern(int fb, int ew, int tgt_t, int tgt_bias)
{
    int src_bias = (1 << (ew - 1)) - 1;
    uint64_t r = sm_next();
    uint64_t sign = (r & 1) << (fb + ew);
    uint64_t frac = sm_next() & (((uint64_t)1 << fb) - 1);
    int cls = (int)((r >> 1) & 3);
    if (cls == 0) return sm_next() & ((((uint64_t)1 << (fb + ew)) << 1) - 1);
    int lo = src_bias - tgt_bias - tgt_t - 3, hi = src_bias + tgt_bias + 2;
    if (lo < 0) lo = 0;
    if (hi > (1 << ew) - 1) hi = (1 << ew) - 1;
    int64_t e = lo + (int64_t)below((uint32_t)(hi - lo + 1));
    if (cls >= 2) {
        int k = 1 + (int)below((uint32_t)fb);
        uint64_t mask = ((uint64_t)1 << k) - 1;
        uint64_t tie = (uint64_t)1 << (k - 1);
        uint32_t off = below(4);
        tie += off == 1 ? 1 : 0;
        if (off == 2) tie -= 1;
        frac = (frac & ~mask) | (tie & mask);
        if (cls == 3) {
            /* top binade of the target, fraction bits above the cut all ones */
            e = src_bias + tgt_bias + (int64_t)below(2);
            frac |= (((uint64_t)1 << fb) - 1) & ~(((uint64_t)1 << (fb - tgt_t)) - 1) & ~mask;
        }
    }
    return sign | ((uint64_t)e << fb) | frac;
}

static void random_f32(uint64_t seed, long n)
{
    sm.state = seed;
    long bad = 0;
    for (long i = 0; i < n && bad < 20; i++) {
        const fmt *f = (i & 1) ? &FP16 : &BF16;
        int t = f->prec - 1, bias = f->emax - 1;
        uint32_t u = (uint32_t)draw_pattern(23, 8, t, bias);
        float x = u2f(u);
        if (!check_one(&BF16, (double)x, ac_f32_to_bf16(x), u)) bad++;
        if (!check_one(&FP16, (double)x, ac_f32_to_fp16(x), u)) bad++;
    }
    cr_assert_eq(bad, 0, "%ld mismatches", bad);
}

static void random_f64(uint64_t seed, long n)
{
    sm.state = seed;
    long bad = 0;
    for (long i = 0; i < n && bad < 20; i++) {
        const fmt *f = (i & 1) ? &FP16 : &BF16;
        int t = f->prec - 1, bias = f->emax - 1;
        uint64_t u = draw_pattern(52, 11, t, bias);
        double x = u2d(u);
        if (!check_one(&BF16, x, ac_f64_to_bf16(x), u)) bad++;
        if (!check_one(&FP16, x, ac_f64_to_fp16(x), u)) bad++;
    }
    cr_assert_eq(bad, 0, "%ld mismatches", bad);
}

/* 4 x 2.5e6 = 10^7 fp32 patterns, each rounded to both formats (2e7 checks). */
#define F32_PER_TEST 2500000L
Test(numfmt, random_f32_a, .init = ref_setup, .fini = ref_teardown) { random_f32(1, F32_PER_TEST); }
Test(numfmt, random_f32_b, .init = ref_setup, .fini = ref_teardown) { random_f32(2, F32_PER_TEST); }
Test(numfmt, random_f32_c, .init = ref_setup, .fini = ref_teardown) { random_f32(3, F32_PER_TEST); }
Test(numfmt, random_f32_d, .init = ref_setup, .fini = ref_teardown) { random_f32(4, F32_PER_TEST); }
/* 10^6 doubles, each rounded once to both formats. */
Test(numfmt, random_f64, .init = ref_setup, .fini = ref_teardown) { random_f64(5, 1000000L); }

/* --- FP8 KV formats (E4M3FN, E5M2), saturating ------------------------------ */

/* MPFR emulation as above; then saturation (CUDA's __NV_SATFINITE): any
   result past the largest finite (including MPFR's Inf) becomes the largest.
   E4M3: p = 4, smallest subnormal 2^-9 -> emin = -8, 480 < 2^9 -> emax = 9
   (480 itself is E4M3FN's NaN pattern: the saturation handles it).
   E5M2: p = 3, smallest subnormal 2^-16 -> emin = -15, emax = 16. */
typedef struct fmt8 {
    ac_kv_format f;
    fmt round;
    double max;
} fmt8;
static const fmt8 E4M3 = {AC_KV_E4M3, {AC_BF16, 4, -8, 9, 0, 0}, 448.0};
static const fmt8 E5M2 = {AC_KV_E5M2, {AC_BF16, 3, -15, 16, 0, 0}, 57344.0};

static int check_fp8(const fmt8 *f, float x)
{
    uint8_t c = ac_f32_to_fp8(f->f, x);
    if (isnan(x)) {
        int ok = ac_fp8_isnan(f->f, c) && (c >> 7) == (signbit(x) ? 1 : 0);
        if (!ok) cr_log_error("%s NaN %#010x -> %#04x", ac_kv_format_name(f->f), f2u(x), c);
        return ok;
    }
    double want = ref_round(&f->round, (double)x);
    if (fabs(want) > f->max) want = copysign(f->max, want);
    double got = ac_fp8_to_double(f->f, c);
    int ok = !ac_fp8_isnan(f->f, c) && got == want && !signbit(got) == !signbit(want);
    if (!ok) cr_log_error("%s %a -> %#04x (%a), MPFR %a", ac_kv_format_name(f->f), (double)x, c, got, want);
    return ok;
}

static void fp8_all_codes(const fmt8 *f)
{
    int bad = 0, nans = 0;
    for (int i = 0; i < 256; i++) {
        uint8_t c = (uint8_t)i;
        double v = ac_fp8_to_double(f->f, c);
        if (ac_fp8_isnan(f->f, c)) {
            nans++;
            if (!isnan(v)) bad++, cr_log_error("%s %#04x: a NaN code decodes to %a", ac_kv_format_name(f->f), c, v);
            continue;
        }
        /* Every finite code is its own rounding; E5M2's Inf saturates. */
        uint8_t back = ac_f32_to_fp8(f->f, (float)v);
        uint8_t want = isinf(v) ? ac_f32_to_fp8(f->f, (float)copysign(f->max, v)) : c;
        if (back != want) bad++, cr_log_error("%s %#04x (%a) round trip -> %#04x", ac_kv_format_name(f->f), c, v, back);
        if (!isinf(v) && !check_fp8(f, (float)v)) bad++;
    }
    /* E4M3FN: 2 NaN codes; E5M2: 6 (S.11111.{01,10,11}). */
    cr_assert_eq(nans, f->f == AC_KV_E4M3 ? 2 : 6, "%s: %d NaN codes", ac_kv_format_name(f->f), nans);
    cr_assert_eq(bad, 0, "%d mismatches over the 256 %s codes", bad, ac_kv_format_name(f->f));
}
Test(numfmt, fp8_e4m3_all_codes, .init = ref_setup, .fini = ref_teardown) { fp8_all_codes(&E4M3); }
Test(numfmt, fp8_e5m2_all_codes, .init = ref_setup, .fini = ref_teardown) { fp8_all_codes(&E5M2); }

Test(numfmt, fp8_edges)
{
    cr_assert_eq(ac_f32_to_fp8(AC_KV_E4M3, 448.0f), 0x7e);
    cr_assert_eq(ac_f32_to_fp8(AC_KV_E4M3, 1e30f), 0x7e);     /* saturates, never the NaN pattern */
    cr_assert_eq(ac_f32_to_fp8(AC_KV_E4M3, -INFINITY), 0xfe);
    cr_assert_eq(ac_f32_to_fp8(AC_KV_E5M2, INFINITY), 0x7b);  /* SATFINITE: Inf -> largest */
    cr_assert_eq(ac_f32_to_fp8(AC_KV_E4M3, 0x1p-10f), 0x00);  /* half the smallest subnormal ties to 0 */
    cr_assert_eq(ac_f32_to_fp8(AC_KV_E4M3, 0x1.8p-9f), 0x02); /* 1.5 quanta ties to 2 (even) */
    cr_assert_eq(ac_f32_to_fp8(AC_KV_E4M3, 1.0625f), 0x38);   /* 1 + half an ulp: even, stays 1 */
    cr_assert_eq(ac_f32_to_fp8(AC_KV_E4M3, 1.1875f), 0x3a);   /* 1 + 1.5 ulp: up to 1.25 */
    cr_assert_eq(ac_f32_to_fp8(AC_KV_E5M2, 1.0f), 0x3c);
    cr_assert(ac_fp8_isnan(AC_KV_E4M3, ac_f32_to_fp8(AC_KV_E4M3, NAN)));
    cr_assert_eq(ac_fp8_quantize(AC_KV_E4M3, 3.0f, 0.5f), ac_f32_to_fp8(AC_KV_E4M3, 6.0f));
}

static void random_fp8(uint64_t seed, long n)
{
    sm.state = seed;
    long bad = 0;
    for (long i = 0; i < n && bad < 20; i++) {
        const fmt8 *f = (i & 1) ? &E5M2 : &E4M3;
        uint32_t u = (uint32_t)draw_pattern(23, 8, f->round.prec - 1, f->round.emax - 1);
        if (!check_fp8(f, u2f(u))) bad++;
    }
    cr_assert_eq(bad, 0, "%ld mismatches", bad);
}
/* 10^6 fp32 patterns near both formats' ties, subnormals and top binade. */
Test(numfmt, random_fp8, .init = ref_setup, .fini = ref_teardown) { random_fp8(6, 1000000L); }

/* The special K/V storage elements poison and generation share
   (ac_kv_elem_nan / _inf / _max), read back through the element decoder:
   NaN, +-Inf (E4M3 has none: NaN), and the format's largest finite value. */
Test(numfmt, kv_special_elements)
{
    const struct { ac_dtype t; ac_kv_format f; double max; int has_inf; } fm[] = {
        {AC_FP16, AC_KV_AS_DTYPE, 65504.0, 1},
        {AC_BF16, AC_KV_AS_DTYPE, 0x1.fep127, 1},
        {AC_BF16, AC_KV_E4M3, AC_FP8_E4M3_MAX, 0},
        {AC_FP16, AC_KV_E5M2, AC_FP8_E5M2_MAX, 1},
    };
    for (size_t i = 0; i < sizeof fm / sizeof fm[0]; i++) {
        for (int neg = 0; neg < 2; neg++) {
            const double sgn = neg ? -1.0 : 1.0;
            const uint16_t n = ac_kv_elem_nan(fm[i].t, fm[i].f, neg), inf = ac_kv_elem_inf(fm[i].t, fm[i].f, neg),
                           mx = ac_kv_elem_max(fm[i].t, fm[i].f, neg);
            cr_assert(ac_kv_elem_isnan(fm[i].t, fm[i].f, n), "format %zu neg %d: NaN 0x%x", i, neg, n);
            const double vi = ac_kv_elem_to_double(fm[i].t, fm[i].f, inf);
            if (fm[i].has_inf)
                cr_assert(vi == sgn * INFINITY, "format %zu neg %d: Inf 0x%x reads %g", i, neg, inf, vi);
            else
                cr_assert(isnan(vi), "format %zu neg %d: E4M3's Inf stand-in 0x%x reads %g", i, neg, inf, vi);
            cr_assert_eq(ac_kv_elem_to_double(fm[i].t, fm[i].f, mx), sgn * fm[i].max, "format %zu neg %d: max 0x%x", i,
                         neg, mx);
            if (fm[i].f != AC_KV_AS_DTYPE) /* a code: the high byte stays clear */
                cr_assert((n | inf | mx) >> 8 == 0, "format %zu: 0x%x 0x%x 0x%x", i, n, inf, mx);
        }
    }
}
