/* AC_ORACLE_FAST: the same function as oracle_mpfr.c in double-double
 * arithmetic with a proven error bound (docs/ORACLE.md, "The fast mode"):
 *  - q.k: products of two bf16/fp16 values are exact in double; summed with
 *    TwoSum into (hi, lo) pairs (Ogita-Rump-Oishi Sum2), vectorised over keys;
 *  - exp: a double-double exp (table of exp(i/128) from MPFR + Taylor),
 *    relative error < 2^-100, checked against MPFR by tests/test_oracle_fast.c;
 *  - P.V: p = p1 + p2 (Veltkamp split, 26 + 27 bits) so p1*v and p2*v are
 *    exact for v with at most 26 significand bits (bf16, fp16, fp32 partials);
 *    summed with TwoSum, vectorised over d;
 *  - division, log and the final rounding: double-double / MPFR, rounding
 *    once from the double-double (ac_round_dd).
 * No FMA is assumed (baseline x86-64): products are split instead. */
#include <math.h>
#include <stdio.h>
#include <pthread.h>
#include <stdlib.h>

#include "oracle.h"
#include "oracle_internal.h"

typedef struct dd { double hi, lo; } dd;

/* Knuth's TwoSum: s + e == a + b exactly. */
static inline dd two_sum(double a, double b)
{
    double s = a + b, bb = s - a;
    return (dd){s, (a - (s - bb)) + (b - bb)};
}

/* Dekker's Fast2Sum: exact when |a| >= |b| (or a == 0). */
static inline dd fast_two_sum(double a, double b)
{
    double s = a + b;
    return (dd){s, b - (s - a)};
}

/* Veltkamp split: a == h + l, h with at most 26 significand bits, l 26 bits + sign. */
static inline void split(double a, double *h, double *l)
{
    double c = 134217729.0 * a; /* 2^27 + 1 */
    *h = c - (c - a);
    *l = a - *h;
}

/* Dekker's TwoProduct: p + e == a * b exactly (no overflow/underflow). */
static inline dd two_prod(double a, double b)
{
    double p = a * b, ah, al, bh, bl;
    split(a, &ah, &al);
    split(b, &bh, &bl);
    return (dd){p, ((ah * bh - p) + ah * bl + al * bh) + al * bl};
}

static inline dd dd_add(dd x, dd y)
{
    dd s = two_sum(x.hi, y.hi), t = two_sum(x.lo, y.lo);
    s.lo += t.hi;
    s = fast_two_sum(s.hi, s.lo);
    s.lo += t.lo;
    return fast_two_sum(s.hi, s.lo);
}

static inline dd dd_mul(dd x, dd y)
{
    dd p = two_prod(x.hi, y.hi);
    p.lo += x.hi * y.lo + x.lo * y.hi;
    return fast_two_sum(p.hi, p.lo);
}

static inline dd dd_mul_d(dd x, double b)
{
    dd p = two_prod(x.hi, b);
    p.lo += x.lo * b;
    return fast_two_sum(p.hi, p.lo);
}

/* x / y by three quotient digits (each step removes ~53 bits of the remainder). */
static inline dd dd_div(dd x, dd y)
{
    double q1 = x.hi / y.hi;
    dd r = dd_add(x, dd_mul_d(y, -q1));
    double q2 = r.hi / y.hi;
    r = dd_add(r, dd_mul_d(y, -q2));
    double q3 = r.hi / y.hi;
    return dd_add(fast_two_sum(q1, q2), (dd){q3, 0.0});
}

/* --- exp ------------------------------------------------------------------ */

#define EXP_TABLE_HALF 46 /* i in [-46, 46]: |r| <= ln2/2 + tiny gives |i| <= 45 */
static dd exp_table[2 * EXP_TABLE_HALF + 1]; /* exp(i / 128) */
static dd inv_fact_dd[6];                  /* 1/n!, n = 0..5 */
static double inv_fact[11];                 /* 1/n!, n = 0..10 */
static double ln2_1, ln2_2, ln2_3, inv_ln2; /* ln 2 = ln2_1 + ln2_2 + ln2_3 (+ < 2^-130) */
static pthread_once_t tables_once = PTHREAD_ONCE_INIT;

static dd mpfr_to_dd(mpfr_t x, mpfr_t tmp)
{
    double hi = mpfr_get_d(x, MPFR_RNDN);
    mpfr_sub_d(tmp, x, hi, MPFR_RNDN);
    return (dd){hi, mpfr_get_d(tmp, MPFR_RNDN)};
}

static void init_tables(void)
{
    mpfr_t x, t, l;
    mpfr_inits2(256, x, t, (mpfr_ptr)0);
    mpfr_init2(l, 40); /* 40-bit pieces of ln 2: k * piece is exact for |k| < 2^13 */
    for (int i = -EXP_TABLE_HALF; i <= EXP_TABLE_HALF; i++) {
        mpfr_set_si(x, i, MPFR_RNDN);
        mpfr_div_ui(x, x, 128, MPFR_RNDN);
        mpfr_exp(x, x, MPFR_RNDN);
        exp_table[i + EXP_TABLE_HALF] = mpfr_to_dd(x, t);
    }
    mpfr_set_ui(x, 1, MPFR_RNDN);
    for (int n = 0; n <= 10; n++) {
        if (n > 0) mpfr_div_ui(x, x, (unsigned long)n, MPFR_RNDN);
        inv_fact[n] = mpfr_get_d(x, MPFR_RNDN);
        if (n <= 5) inv_fact_dd[n] = mpfr_to_dd(x, t);
    }
    mpfr_const_log2(x, MPFR_RNDN);
    mpfr_set(l, x, MPFR_RNDN);
    ln2_1 = mpfr_get_d(l, MPFR_RNDN);
    mpfr_sub_d(x, x, ln2_1, MPFR_RNDN);
    mpfr_set(l, x, MPFR_RNDN);
    ln2_2 = mpfr_get_d(l, MPFR_RNDN);
    mpfr_sub_d(x, x, ln2_2, MPFR_RNDN);
    ln2_3 = mpfr_get_d(x, MPFR_RNDN);
    mpfr_const_log2(x, MPFR_RNDN);
    mpfr_ui_div(x, 1, x, MPFR_RNDN);
    inv_ln2 = mpfr_get_d(x, MPFR_RNDN);
    mpfr_clears(x, t, l, (mpfr_ptr)0);
    mpfr_free_cache2(MPFR_FREE_LOCAL_CACHE);
}

static dd exp_dd(dd x)
{
    if (x.hi < -760.0) return (dd){0.0, 0.0}; /* below 2^-1096: under double's smallest value */
    /* x = k ln2 + r, |r| <= ln2/2 + tiny; k ln2_1, k ln2_2 exact (|k| < 2^11). */
    double k = nearbyint(x.hi * inv_ln2);
    dd r = two_sum(x.hi, -k * ln2_1);
    r = dd_add(r, two_sum(x.lo, -k * ln2_2));
    r = dd_add(r, (dd){-k * ln2_3, 0.0}); /* error <= 2^-53 |k ln2_3| < 2^-120 */
    /* r = i/128 + f, |f| <= 2^-8 (+ tiny). */
    double i = nearbyint(r.hi * 128.0);
    dd f = dd_add(r, (dd){-i / 128.0, 0.0});
    /* exp(f) = sum_{n<=10} f^n/n! + R, |R| < 2^-88/11! < 2^-113. Terms n >= 6
       (< 2^-57.4) in double from f.hi: their error < 2^-108; n <= 5 in
       double-double (about 2^-105 per step). */
    double fh = f.hi;
    double tail = inv_fact[6] + fh * (inv_fact[7] + fh * (inv_fact[8] + fh * (inv_fact[9] + fh * inv_fact[10])));
    dd p = dd_add(inv_fact_dd[5], (dd){fh * tail, 0.0});
    for (int n = 4; n >= 0; n--) p = dd_add(inv_fact_dd[n], dd_mul(f, p));
    p = dd_mul(p, exp_table[(int)i + EXP_TABLE_HALF]);
    /* Scaling by 2^k is exact unless the result is subnormal (then the absolute
       error is below 2^-1074: negligible against sum_j exp(s_j - m) >= 1). */
    int ki = (int)k;
    return (dd){ldexp(p.hi, ki), ldexp(p.lo, ki)};
}

void ac_dd_exp(double hi, double lo, double *rhi, double *rlo)
{
    pthread_once(&tables_once, init_tables);
    dd r = exp_dd((dd){hi, lo});
    *rhi = r.hi;
    *rlo = r.lo;
}

/* --- one row --------------------------------------------------------------- */

struct ac_fast_ws {
    double *dot_hi, *dot_lo; /* [cap_g] per gathered key */
    dd *e;                   /* [cap_n] logits, then exp(s_j - m) */
    double *acc_hi, *acc_lo; /* [cap_d] */
    size_t cap_g, cap_n, cap_d;
    mpfr_t t, t2, log2;
};

static int grow(void **p, size_t bytes)
{
    void *q = realloc(*p, bytes ? bytes : 1);
    if (!q) return -1;
    *p = q;
    return 0;
}

static int reserve(ac_fast_ws **wsp, size_t g, size_t n, size_t d)
{
    ac_fast_ws *ws = *wsp;
    if (!ws) {
        ws = calloc(1, sizeof *ws);
        if (!ws) return -1;
        mpfr_init2(ws->t, AC_ORACLE_PREC);
        mpfr_init2(ws->t2, AC_ORACLE_PREC);
        mpfr_init2(ws->log2, AC_ORACLE_PREC);
        mpfr_const_log2(ws->log2, MPFR_RNDN);
        *wsp = ws;
    }
    if (g > ws->cap_g) {
        if (grow((void **)&ws->dot_hi, g * sizeof(double)) || grow((void **)&ws->dot_lo, g * sizeof(double))) return -1;
        ws->cap_g = g;
    }
    if (n > ws->cap_n) {
        if (grow((void **)&ws->e, n * sizeof(dd))) return -1;
        ws->cap_n = n;
    }
    if (d > ws->cap_d) {
        if (grow((void **)&ws->acc_hi, d * sizeof(double)) || grow((void **)&ws->acc_lo, d * sizeof(double)))
            return -1;
        ws->cap_d = d;
    }
    return 0;
}

void ac_fast_ws_free(ac_fast_ws *ws)
{
    if (!ws) return;
    free(ws->dot_hi);
    free(ws->dot_lo);
    free(ws->e);
    free(ws->acc_hi);
    free(ws->acc_lo);
    mpfr_clear(ws->t);
    mpfr_clear(ws->t2);
    mpfr_clear(ws->log2);
    free(ws);
}

/* dot_hi[j] + dot_lo[j] = q . k_j for j < end (Sum2 over d; vectorised over j). */
static void dots(const double *restrict q, const double *restrict kt, int32_t g, int32_t end, int32_t D,
                 double *restrict hi, double *restrict lo)
{
    for (int32_t j = 0; j < end; j++) hi[j] = lo[j] = 0.0;
    for (int32_t d = 0; d < D; d++) {
        const double qd = q[d];
        const double *restrict krow = kt + (int64_t)d * g;
        for (int32_t j = 0; j < end; j++) {
            double p = qd * krow[j]; /* exact */
            double s = hi[j] + p, bb = s - hi[j];
            lo[j] += (hi[j] - (s - bb)) + (p - bb);
            hi[j] = s;
        }
    }
}

/* acc += (a1 + a2 + el) * v over d: a1*v, a2*v exact, summed by TwoSum. */
static void axpy_dd(double a1, double a2, double el, const double *restrict v, int32_t D, double *restrict acc_hi,
                    double *restrict acc_lo)
{
    for (int32_t d = 0; d < D; d++) {
        double p1 = a1 * v[d], p2 = a2 * v[d];
        double s1 = acc_hi[d] + p1, b1 = s1 - acc_hi[d];
        double e1 = (acc_hi[d] - (s1 - b1)) + (p1 - b1);
        double s2 = s1 + p2, b2 = s2 - s1;
        double e2 = (s1 - (s2 - b2)) + (p2 - b2);
        acc_hi[d] = s2;
        acc_lo[d] += (e1 + e2) + el * v[d];
    }
}

int ac_fast_row(ac_fast_ws **wsp, const ac_row_in *in, ac_dtype dtype, ac_row_out *out)
{
    pthread_once(&tables_once, init_tables);
    int32_t D = in->head_dim, Dv = in->head_dim_v ? in->head_dim_v : in->head_dim, n = in->n;
    const ac_fmt *half = ac_fmt_of(dtype);
    if (reserve(wsp, (size_t)(in->logits ? 1 : (in->end > 0 ? in->end : 1)), (size_t)(n > 0 ? n : 1),
                (size_t)(D > Dv ? D : Dv)))
        return -1;
    ac_fast_ws *ws = *wsp;
    int sink = in->sink > -INFINITY;
    if (n == 0) { /* empty allowed set: O = 0, LSE = the sink (-inf without one) */
        for (int32_t d = 0; d < Dv; d++) {
            out->o[d] = 0.0;
            out->o_f32[d] = 0.0f;
            out->o_half[d] = 0;
        }
        out->lse = out->lse2 = -INFINITY;
        if (sink) {
            out->lse = in->sink;
            mpfr_set_d(ws->t, in->sink, MPFR_RNDN);
            mpfr_div(ws->t, ws->t, ws->log2, MPFR_RNDN);
            out->lse2 = mpfr_get_d(ws->t, MPFR_RNDN);
        }
        return 0;
    }
    dd *e = ws->e;
    if (in->logits) {
        for (int32_t j = 0; j < n; j++) {
            if (!in->logits_base2) {
                e[j] = (dd){in->logits[j], 0.0};
                continue;
            }
            /* l * ln 2 in double-double: l is an fp32 value (24 bits) and
               ln2_1 splits into two 26-bit halves, so l*h1 and l*h2 are exact;
               l * ln2_2 adds a relative error below 2^-105 (docs/ORACLE.md). */
            double l = in->logits[j], h1, h2;
            split(ln2_1, &h1, &h2);
            dd s = two_sum(l * h1, l * h2);
            s.lo += l * ln2_2; /* ln2_3 (< 2^-106 ln 2) is below the bound too */
            e[j] = two_sum(s.hi, s.lo);
        }
    } else {
        dots(in->q, in->kt, in->g, in->end, D, ws->dot_hi, ws->dot_lo);
        double scale = in->scale;
        for (int32_t j = 0; j < n; j++) {
            int32_t p = in->idx[j];
            dd dot = two_sum(ws->dot_hi[p], ws->dot_lo[p]);
            double h1, h2;
            split(dot.hi, &h1, &h2);
            /* scale has 24 bits, h1 and h2 at most 26: both products exact. */
            dd s = two_sum(scale * h1, scale * h2);
            s.lo += scale * dot.lo;
            if (in->n_scale_parts > 0) {
                /* The exact 1/sqrt(D) as fp32 pieces: each piece's products
                   are exact as above; the partial sums stay in double-double. */
                s = (dd){0.0, 0.0};
                for (int32_t k = 0; k < in->n_scale_parts; k++) {
                    double pk = in->scale_parts[k];
                    dd t = two_sum(pk * h1, pk * h2);
                    dd u = two_sum(s.hi, t.hi);
                    u.lo += s.lo + t.lo + pk * dot.lo;
                    s = u;
                }
            }
            if (in->softcap > 0.0) {
                /* tanh in MPFR, as exp and log are elsewhere: from the exact
                   double-double at AC_ORACLE_PREC bits, back to a double-double
                   (relative error about 2^-105, docs/ORACLE.md). */
                mpfr_set_d(ws->t, s.hi, MPFR_RNDN);
                mpfr_add_d(ws->t, ws->t, s.lo, MPFR_RNDN);
                mpfr_div_d(ws->t, ws->t, in->softcap, MPFR_RNDN);
                mpfr_tanh(ws->t, ws->t, MPFR_RNDN);
                mpfr_mul_d(ws->t, ws->t, in->softcap, MPFR_RNDN);
                s = mpfr_to_dd(ws->t, ws->t2);
                out->capped[j] = s.hi;
            }
            if (in->alibi) { /* 24-bit slope times an integer below 2^33: TwoProduct is exact */
                dd a = two_prod(in->alibi_slope, (double)((int64_t)in->idx[j] - in->alibi_diag));
                s = dd_add(s, a);
            }
            if (in->bias) {
                dd b = two_sum(s.hi, in->bias[j]);
                b.lo += s.lo;
                s = b;
            }
            e[j] = two_sum(s.hi, s.lo);
        }
    }
    double m = e[0].hi;
    for (int32_t j = 1; j < n; j++)
        if (e[j].hi > m) m = e[j].hi;
    if (sink && in->sink > m) m = in->sink;
    dd sum = {0.0, 0.0};
    if (sink) /* the sink's term: in the denominator, weighting no value row */
        sum = exp_dd(two_sum(in->sink, -m));
    for (int32_t j = 0; j < n; j++) {
        out->s[j] = e[j].hi;
        dd x = two_sum(e[j].hi, -m);
        x = two_sum(x.hi, x.lo + e[j].lo); /* error <= 2^-53 |x.lo + e.lo| <= 2^-105 |s_j| */
        e[j] = exp_dd(x);
        dd t = two_sum(sum.hi, e[j].hi);
        sum.hi = t.hi;
        sum.lo += t.lo + e[j].lo;
    }
    sum = two_sum(sum.hi, sum.lo);
    double *acc_hi = ws->acc_hi, *acc_lo = ws->acc_lo;
    for (int32_t d = 0; d < Dv; d++) acc_hi[d] = acc_lo[d] = 0.0;
    for (int32_t j = 0; j < n; j++) {
        double a1, a2;
        split(e[j].hi, &a1, &a2);
        axpy_dd(a1, a2, e[j].lo, in->vr + (int64_t)in->idx[j] * Dv, Dv, acc_hi, acc_lo);
        out->p[j] = e[j].hi / sum.hi;
    }
    double vs = in->v_scale != 0.0 ? in->v_scale : 1.0;
    for (int32_t d = 0; d < Dv; d++) {
        dd o = dd_div(two_sum(acc_hi[d], acc_lo[d]), sum);
        if (vs != 1.0) { /* times the V scale (exact fp32): TwoProd, then the low part */
            double ph = o.hi * vs, pe = fma(o.hi, vs, -ph);
            o = two_sum(ph, pe + o.lo * vs);
        }
        out->o[d] = o.hi;
        out->o_f32[d] = (float)ac_round_dd(o.hi, o.lo, &ac_fmt_f32);
        out->o_half[d] = ac_exact_to_half_bits(dtype, ac_round_dd(o.hi, o.lo, half));
    }
    /* LSE = m + ln(sum): one log per row, in MPFR. */
    mpfr_set_d(ws->t, sum.hi, MPFR_RNDN);
    mpfr_add_d(ws->t, ws->t, sum.lo, MPFR_RNDN);
    mpfr_log(ws->t, ws->t, MPFR_RNDN);
    mpfr_add_d(ws->t, ws->t, m, MPFR_RNDN);
    out->lse = mpfr_get_d(ws->t, MPFR_RNDN);
    mpfr_div(ws->t, ws->t, ws->log2, MPFR_RNDN);
    out->lse2 = mpfr_get_d(ws->t, MPFR_RNDN);
    return 0;
}
