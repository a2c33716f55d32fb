/* Internals of the oracle shared by its two modes (oracle_mpfr.c, oracle_fast.c)
 * and the driver (oracle.c). Not a public interface: tests may include it to
 * check the pieces (double-double exp, final rounding) against MPFR. */
#ifndef AC_ORACLE_INTERNAL_H
#define AC_ORACLE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <mpfr.h>

#include "ac_case.h"

/* One (query row, head) reduced to what both modes compute: an allowed set of
   n keys with their logits' ingredients and their V rows, all exact doubles. */
typedef struct ac_row_in {
    int32_t head_dim;        /* of q and the K rows (D_qk) */
    int32_t head_dim_v;      /* of the V rows and the output (D_v); 0: head_dim */
    /* The output is v_scale * sum_j P_j v_j (an FP8 cache's V scale: vr holds
       the decoded codes, few bits each, so the products stay exact); 0: 1. */
    double v_scale;
    int32_t n;               /* allowed keys (or non-empty splits) */
    const int32_t *idx;      /* [n] positions into the gathered rows */
    /* Attention: s_j = scale * (q . k_idx[j]) + bias[j]. */
    const double *q;         /* [D] */
    const double *kr;        /* gathered K, row-major [G, D] */
    const double *kt;        /* gathered K, transposed [D, G] (fast mode only) */
    int32_t g;               /* gathered positions G (leading dim of kt) */
    int32_t end;             /* every allowed position is < end <= G */
    const double *bias;      /* [n] additive bias (exact fp32), NULL: none */
    /* The features (docs/CONTRACT.md), applied in this order after the scale:
       s = softcap * tanh(s / softcap) (when softcap > 0), then
       s += alibi_slope * (idx[j] - alibi_diag) (when alibi; the product is
       formed exactly: a 24-bit slope times an integer below 2^32), then the
       bias. The sink (a natural-log logit, -inf: none) joins the denominator
       only: LSE = ln(exp(sink) + sum_j exp(s_j)), O = sum_j exp(s_j - LSE) v_j;
       with n == 0 and a finite sink, O = 0 and LSE = sink. */
    double softcap;          /* 0: off */
    int alibi;
    double alibi_slope;      /* exact fp32 */
    int64_t alibi_diag;      /* i + Lk - Lq */
    double sink;             /* -inf: none */
    double scale;            /* exact fp32 value (the scale used unless the two below are set) */
    /* The exact default 1/sqrt(D) (opts.exact_default_scale): fast mode sums the
       products with each fp32 piece (their sum is 1/sqrt(D) within 2^-96
       relative); MPFR mode multiplies by scale_mp, the value at AC_ORACLE_PREC bits. */
    const double *scale_parts;
    int32_t n_scale_parts;
    mpfr_srcptr scale_mp;
    /* Combine: the logits are given (LSE_s), q/kr/kt unused. */
    const double *logits;    /* [n] or NULL */
    int logits_base2;        /* the logits are base-2 (FlashInfer's merge_state convention):
                                the row's logit j is logits[j] * ln 2, evaluated exactly enough */
    const double *vr;        /* gathered V (or O_s), row-major [G, D_v] */
} ac_row_in;

/* What a mode's row core writes. p and s are for the verdict's scales only. */
typedef struct ac_row_out {
    double *o;               /* [D_v] O* rounded to double */
    float *o_f32;            /* [D_v] O* rounded once to fp32 */
    uint16_t *o_half;        /* [D_v] O* rounded once to the dtype */
    double lse;              /* natural log (converted by the driver if base 2) */
    double lse2;             /* the same in base 2, rounded once */
    double *p;               /* [n] P_j = exp(s_j - LSE) rounded to double */
    double *s;               /* [n] s_j rounded to double */
    double *capped;          /* [n] the softcapped part c tanh(scale q.k / c) rounded to double
                                (only written when softcap > 0) */
} ac_row_out;

/* Per-thread scratch of each mode, grown on demand; freed by *_ws_free. */
typedef struct ac_fast_ws ac_fast_ws;
typedef struct ac_mpfr_ws ac_mpfr_ws;

int ac_fast_row(ac_fast_ws **ws, const ac_row_in *in, ac_dtype dtype, ac_row_out *out);
void ac_fast_ws_free(ac_fast_ws *ws);
int ac_mpfr_row(ac_mpfr_ws **ws, const ac_row_in *in, ac_dtype dtype, ac_row_out *out);
void ac_mpfr_ws_free(ac_mpfr_ws *ws);
/* Both return 0, or -1 when out of memory. */

/* --- the final rounding, shared by both modes --------------------------- */
/* A binary format: p significand bits (hidden one included), smallest normal
   exponent emin (2^emin is the smallest normal), largest finite value. */
typedef struct ac_fmt { int p; int emin; double max_finite; } ac_fmt;
extern const ac_fmt ac_fmt_f32, ac_fmt_bf16, ac_fmt_fp16;
const ac_fmt *ac_fmt_of(ac_dtype t);

/* Round the exact value hi + lo (a normalised double-double: hi == RN(hi+lo))
   once to the format, round-to-nearest-even with subnormals and overflow to
   Inf; the result is returned as the (exact) double. */
double ac_round_dd(double hi, double lo, const ac_fmt *f);
/* The same from an MPFR value (any precision, no intermediate rounding). */
double ac_round_mpfr(mpfr_srcptr x, const ac_fmt *f);
/* Bit patterns of a double that is exactly representable in the format. */
uint16_t ac_exact_to_half_bits(ac_dtype t, double x);
/* Exact value of a bf16 / fp16 bit pattern (NaN and Inf kept). */
double ac_half_bits_to_double(ac_dtype t, uint16_t h);

/* The double-double exp of the fast mode: exp(hi + lo) for hi + lo <= 1,
   as a normalised double-double, relative error below 2^-100 (docs/ORACLE.md;
   tests/test_oracle_fast.c measures it against MPFR). Returns 0 for
   hi + lo < -760 (exp underflows double there). */
void ac_dd_exp(double hi, double lo, double *rhi, double *rlo);

#endif
