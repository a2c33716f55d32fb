/* The oracle's final rounding and exact conversions, shared by both modes
 * (oracle_fast.c, oracle_mpfr.c) and the driver (oracle.c); declared in
 * oracle_internal.h. Kept out of the driver so that the modes depend on it
 * and the driver depends on the modes, never back. */
#include <math.h>
#include <string.h>

#include "oracle_internal.h"

const ac_fmt ac_fmt_f32 = {24, -126, 0x1.fffffep127};
const ac_fmt ac_fmt_bf16 = {8, -126, 0x1.fep127};
const ac_fmt ac_fmt_fp16 = {11, -14, 65504.0};

const ac_fmt *ac_fmt_of(ac_dtype t) { return t == AC_FP16 ? &ac_fmt_fp16 : &ac_fmt_bf16; }

double ac_half_bits_to_double(ac_dtype t, uint16_t h)
{
    double sign = (h & 0x8000u) ? -1.0 : 1.0;
    if (t == AC_BF16) {
        int e = (h >> 7) & 0xff, m = h & 0x7f;
        if (e == 0xff) return m ? NAN : sign * INFINITY;
        if (e == 0) return sign * ldexp(m, -133);            /* subnormal: m * 2^-126 * 2^-7 */
        return sign * ldexp(128 + m, e - 127 - 7);
    }
    int e = (h >> 10) & 0x1f, m = h & 0x3ff;
    if (e == 0x1f) return m ? NAN : sign * INFINITY;
    if (e == 0) return sign * ldexp(m, -24);                  /* m * 2^-14 * 2^-10 */
    return sign * ldexp(1024 + m, e - 15 - 10);
}

uint16_t ac_exact_to_half_bits(ac_dtype t, double x)
{
    uint16_t sign = signbit(x) ? 0x8000u : 0;
    double a = fabs(x);
    if (t == AC_BF16) {
        if (isnan(x)) return 0x7fc0u;
        float f = (float)x; /* exact: x is a bf16 value */
        uint32_t b;
        memcpy(&b, &f, sizeof b);
        return (uint16_t)(b >> 16);
    }
    if (isnan(x)) return 0x7e00u;
    if (isinf(x)) return sign | 0x7c00u;
    if (a == 0.0) return sign;
    int e;
    frexp(a, &e); /* a in [2^(e-1), 2^e) */
    if (e - 1 < -14) return sign | (uint16_t)ldexp(a, 24); /* subnormal: a / 2^-24 */
    return sign | (uint16_t)((e - 1 + 15) << 10) | (uint16_t)(ldexp(a, 11 - e) - 1024.0);
}

/* Quantum exponent of format f for a value whose binade is [2^(e-1), 2^e). */
static int quantum_exp(int e, const ac_fmt *f)
{
    int qe = e - f->p;
    if (qe < f->emin - f->p + 1) qe = f->emin - f->p + 1; /* subnormal range: fixed quantum */
    return qe;
}

double ac_round_dd(double hi, double lo, const ac_fmt *f)
{
    if (hi == 0.0 || !isfinite(hi)) return hi;
    int e;
    frexp(hi, &e);
    int qe = quantum_exp(e, f);
    double y = ldexp(hi, -qe);   /* exact: |y| < 2^p, scaling by a power of two */
    double n = nearbyint(y);     /* round-to-nearest-even (the default mode) */
    if (fabs(y - n) == 0.5 && lo != 0.0) {
        /* hi is a midpoint of the format: the tail decides. Otherwise, because
           hi == RN53(hi + lo) and midpoints are doubles, hi + lo lies strictly
           on hi's side of every midpoint and RN(hi) is RN(hi + lo). */
        n = lo > 0.0 ? floor(y) + 1.0 : floor(y);
    }
    double r = ldexp(n, qe);
    if (fabs(r) > f->max_finite) r = copysign(INFINITY, r);
    if (r == 0.0) r = copysign(0.0, hi);
    return r;
}

double ac_round_mpfr(mpfr_srcptr x, const ac_fmt *f)
{
    if (mpfr_zero_p(x)) return mpfr_signbit(x) ? -0.0 : 0.0;
    if (mpfr_nan_p(x)) return NAN;
    if (mpfr_inf_p(x)) return mpfr_signbit(x) ? -INFINITY : INFINITY;
    int qe = quantum_exp((int)mpfr_get_exp(x), f); /* x = m * 2^E, m in [1/2, 1) */
    mpfr_t y;
    mpfr_init2(y, mpfr_get_prec(x) > 64 ? mpfr_get_prec(x) : 64);
    mpfr_mul_2si(y, x, -qe, MPFR_RNDN);  /* exact */
    mpfr_roundeven(y, y);                /* nearest integer, ties to even: |y| <= 2^p */
    double r = ldexp(mpfr_get_d(y, MPFR_RNDN), qe);
    mpfr_clear(y);
    if (fabs(r) > f->max_finite) r = copysign(INFINITY, r);
    if (r == 0.0) r = mpfr_signbit(x) ? -0.0 : 0.0;
    return r;
}
