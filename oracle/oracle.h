/* The oracle: the exact answer of the contract (docs/CONTRACT.md), computed with
 * MPFR from the exact input values and rounded once to the target format.
 * Two modes compute the same function:
 *   AC_ORACLE_MPFR: every sum, exp and log in MPFR at AC_ORACLE_PREC bits;
 *   AC_ORACLE_FAST: exact products in double, sums in double-double with a
 *     proven error bound, exp/log in MPFR; verified against MPFR mode in ctest.
 * See docs/ORACLE.md for why the precision suffices. */
#ifndef AC_ORACLE_H
#define AC_ORACLE_H

#include <stdint.h>

#include "ac_case.h"
#include "ac_status.h"
#include "ac_tensors.h"

#ifdef __cplusplus
extern "C" {
#endif

#define AC_ORACLE_PREC 160 /* bits; docs/ORACLE.md derives why this is far below an fp32 ulp */

typedef enum ac_oracle_mode { AC_ORACLE_FAST = 0, AC_ORACLE_MPFR = 1 } ac_oracle_mode;

typedef struct ac_oracle_opts {
    ac_oracle_mode mode;
    int lse_base2;        /* report LSE in base 2 (FlashInfer) instead of natural log */
    int64_t max_rows;     /* 0: every (row, head); else evaluate a seeded random subset
                             of at most this many (query row, head) pairs */
    uint64_t sample_seed; /* seed of that subset (reported with the verdict) */
    int threads;          /* 0: one per core */
    int exact_default_scale; /* 1: a default scale (scale_given == 0) is the exact real
                                1/sqrt(D), not ac_case_scale's fp32 value (SEMANTICS.md,
                                Scale); the result says so in scale_exact. Used by
                                `attncheck verify`; the default sweep leaves it 0. */
} ac_oracle_opts;

/* Per (query row t, head h) arrays are indexed r = t * Hq + h; per element
   arrays are indexed r * D + d, D = the output's head dim (D_v). */
typedef struct ac_oracle_result {
    int64_t rows;          /* total_q * Hq */
    int32_t head_dim;      /* of the output: D_v (ac_case_dv) */
    uint8_t *checked;      /* [rows] 1 if this row was evaluated (row sampling) */
    int64_t rows_checked;

    double *o;             /* [rows*D] O* rounded to double (for error measurement) */
    float *o_f32;          /* [rows*D] O* rounded once to fp32 */
    uint16_t *o_half;      /* [rows*D] O* rounded once to the case dtype */
    double *lse;           /* [rows] LSE* (natural log unless lse_base2), -inf if empty */

    /* What the verdict's error bound needs (docs/VERDICT.md): */
    double *spv;           /* [rows*D] sum_j P_j |v_jd| */
    double *spvo;          /* [rows*D] sum_j P_j |v_jd - O*_d| */
    double *sv;            /* [rows*D] sum_j |v_jd| (unweighted: what underflowed weights may drop) */
    double *sv_tiny;       /* [rows*D] sum over j with p_j = exp(s_j - max s) < 2^-14 of |v_jd| / L,
                              L = sum_j p_j: the keys whose weight is subnormal in fp16 */
    double *qk_abs;        /* [rows] max over allowed j of |scale| * sum_d |q_d k_jd| */
    double *logit_abs;     /* [rows] max over allowed j of |s_j| (bias included), and |sink| for a
                              finite sink (the kernel subtracts a maximum from it too) */
    double *capped_abs;    /* [rows] softcap > 0: max over allowed j of |c tanh(scale q.k_j / c)|
                              (what a tanh approximation errs relative to); else 0 */
    double *alibi_abs;     /* [rows] ALiBi: max over allowed j of |slope_h (j - i - off)| (what
                              the fp32 bias product errs relative to); else 0 */
    int32_t *n_allowed;    /* [rows] size of the allowed set */
    int scale_exact;       /* 1: the logits used the exact 1/sqrt(D) (opts.exact_default_scale
                              with a default scale): the verdict then adds the fp32 scale's
                              representation error to its logit error delta_s */

    /* AC_OP_STORE: the caches after the store. */
    uint16_t *k_cache, *v_cache;   /* an FP8 cache: the code in each element's low byte */
    int64_t kv_elems;              /* elements of k_cache */
    int64_t v_elems;               /* elements of v_cache (D_v per row) */
} ac_oracle_result;

ac_status ac_oracle_run(const ac_case *c, const ac_tensors *t, const ac_oracle_opts *opts,
                        ac_oracle_result *res, ac_error *err);
void ac_oracle_result_free(ac_oracle_result *res);

#ifdef __cplusplus
}
#endif
#endif
