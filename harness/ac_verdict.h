/* The verdict: judges a kernel's outputs against the oracle with an error
 * bound derived from what a correct kernel legitimately does (docs/VERDICT.md).
 *
 * Per output element (row r = query t * Hq + h, dim d), with n = |A_r|:
 *   bound = u_in * SPV + eta_in * SVT + ftz * (SV + n) + u_out * |O*| + eta_out
 *           + delta_s * SPVO + gamma_n * SPV + nu * |O*|
 *   r_elem = |O - O*| / (AC_VERDICT_C * bound)          pass iff r_elem <= 1
 * and per row, separately and tightly, for the LSE:
 *   bound_lse = delta_s + gamma_n + eps_log + 2 u32 (|LSE*| + L)
 *   r_lse = |LSE - LSE*| / (AC_VERDICT_C * bound_lse)   pass iff r_lse <= 1
 * When the oracle used the exact default scale 1/sqrt(D) (res->scale_exact,
 * `attncheck verify`), delta_s also holds the fp32 default's representation
 * error, 4 u32 * QK (zero otherwise: the sweep's oracle uses the fp32 value).
 * NaN or Inf where the oracle has a finite value always fails, and so does an
 * element still holding the poison pattern (never written). */
#ifndef AC_VERDICT_H
#define AC_VERDICT_H

#include <stdint.h>
#include <stdio.h>

#include "ac_case.h"
#include "ac_ref.h" /* ac_ref32, the reference of the ratio (and ac_ref64, the oracle's stand-in) */
#include "ac_tensors.h"
#include "oracle.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Safety factor over the derived bound; docs/VERDICT.md gives the
   calibration (correct kernels' worst r vs injected bugs' r). */
#define AC_VERDICT_C 2.0

typedef struct ac_verdict_opts {
    int judge_f32;      /* judge outputs.o_f32 (fp32 output mode) instead of outputs.o */
    int lse_base2;      /* the kernel's LSE is base 2 (FlashInfer convention) */
    int skip_lse;       /* the kernel returns no LSE */
} ac_verdict_opts;

typedef struct ac_coord {
    int32_t seq, head, row, dim; /* row within the sequence; dim -1 for an LSE */
    int64_t flat_row;            /* t * Hq + h */
} ac_coord;

typedef struct ac_verdict {
    int pass;
    int64_t elems_checked, rows_checked;
    double r_max;          /* worst normalised output error */
    ac_coord r_where;
    double err_at_worst, bound_at_worst, o_at_worst, ref_at_worst;
    double r_lse_max;      /* worst normalised LSE error */
    ac_coord lse_where;
    double lse_err_max;    /* worst |LSE - LSE*| (finite rows) */
    int64_t max_ulp;       /* worst ulp distance to O* rounded once to the output format */
    double abs_err_max;    /* max |O - O*| */
    double ratio_vs_ref;   /* abs_err_max / the same-precision reference's; <0 if not computed */
    int64_t n_bad_nan;     /* NaN/Inf where O* is finite, or poison left (never written) */
    int64_t n_bad_empty;   /* empty rows not giving O = 0, LSE = -inf */
    int64_t n_over;        /* elements or rows with r > 1 */
    int64_t n_cache_bits;  /* store: cache elements differing bitwise */
    int lse_not_returned;  /* the kernel returned no LSE: O alone was judged */
    char summary[256];     /* one line: PASS/FAIL r=.. lse=.. ulp=.. at (seq, head, row, dim) */
} ac_verdict;

/* Judge kernel outputs `out` against oracle result `res`. `ref` (may be NULL)
   is a same-precision reference run (ac_ref32) for the flash-attn style ratio.
   err_map (may be NULL) receives r per element for the checked rows ([rows*D],
   NaN where unchecked), for error pictures. */
ac_status ac_verdict_judge(const ac_case *c, const ac_tensors *t, const ac_oracle_result *res,
                           const ac_outputs *out, const ac_outputs *ref, const ac_verdict_opts *opts,
                           ac_verdict *v, double *err_map, ac_error *err);

/* The per-element bound's terms, exposed for the docs' calibration tables. */
typedef struct ac_bound_terms {
    double u_in, eta_in, ftz, u_out, eta_out, delta_s, gamma_n, eps_log, nu;
} ac_bound_terms;
void ac_verdict_terms(const ac_case *c, const ac_oracle_result *res, int64_t row, int judge_f32,
                      ac_bound_terms *terms);

/* (Re)write v->summary from its fields (for prefill, decode and combine):
   after coordinates are renumbered (harness/ac_sparse.h). */
void ac_verdict_summarize(ac_verdict *v);
void ac_verdict_print(const ac_verdict *v, FILE *f);

#ifdef __cplusplus
}
#endif
#endif
