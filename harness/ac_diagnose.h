/* Judging a dumped call (harness/ac_dump.h) and diagnosing a failure
 * (docs/DIAGNOSIS.md).
 *
 * ac_dump_check: the oracle on the dump's own tensors (a default scale is the
 * exact 1/sqrt(D)), the call's declared conventions applied to its outputs
 * (empty-row rule, LSE base, an fp16/bf16 combine output), then the verdict.
 * ac_dump_empty_report: what the empty rows hold, and which of SEMANTICS.md's
 * conventions that is. ac_dump_diagnose: the same outputs re-judged under each
 * classic wrong semantics (scale, causal alignment, GQA head mapping, causal
 * bound, LSE base and layout, K/V swap, paging); the one they pass under is
 * named. */
#ifndef AC_DIAGNOSE_H
#define AC_DIAGNOSE_H

#include <stdint.h>

#include "ac_check.h"
#include "ac_dump.h"
#include "ac_verdict.h"
#include "oracle.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ac_dump_check_opts {
    int64_t max_rows;       /* oracle row sampling of the check (0 = every row) */
    uint64_t sample_seed;
    int threads;            /* oracle threads (0 = one per core) */
} ac_dump_check_opts;

/* The verdict of the dump's outputs. Fills r like ac_check_case with keep:
   r->tensors is a view of d->t (not owned: never ac_check_result_free it),
   r->outputs the dump's outputs after the conventions were applied, r->oracle
   and r->err_map. Returns r->status. Free with ac_dump_check_free. */
ac_status ac_dump_check(const ac_dump *d, const ac_dump_check_opts *o, ac_check_result *r);
void ac_dump_check_free(ac_check_result *r);

/* What the empty rows (no allowed key) of the checked rows hold, from the
   dump's raw outputs and the oracle's allowed sets. */
typedef struct ac_empty_report {
    int64_t rows, rows_checked;                 /* empty rows / rows looked at */
    int64_t o_zero, o_nan, o_mean_v, o_other;   /* rows whose O is all 0 / all NaN / the mean of V / else */
    int has_lse;
    int64_t lse_neginf, lse_posinf, lse_zero, lse_nan, lse_finite; /* rows whose LSE is ... */
    int convention;         /* the ac_empty_rule all empty rows follow; -1 none or mixed;
                               AC_EMPTY_COUNT: O = 0 and no LSE (any O = 0 rule) */
    int as_declared;        /* they follow the declared rule */
    char text[400];         /* one line for the report */
} ac_empty_report;
void ac_dump_empty_report(const ac_dump *d, const ac_oracle_result *res, ac_empty_report *e);

#define AC_DIAG_MAX 32
/* Rows judged per hypothesis before a match is confirmed on every row. */
#define AC_DIAG_SAMPLE_ROWS 4096

typedef struct ac_hypothesis {
    char name[48];          /* e.g. "causal=TOP_LEFT", "scale=1.0", "kv_head=h%Hkv" */
    char declared[64];      /* the declared counterpart, e.g. "causal=BOTTOM_RIGHT" */
    char about[160];        /* what a kernel with this bug computes */
    int applicable;         /* 0: why_not says why (same keys as declared, no paged cache, ...) */
    char why_not[300];
    double r, lse_r;        /* worst output r and LSE r of the dumped outputs under it */
    int pass;               /* the outputs pass under it, on every row */
} ac_hypothesis;

typedef struct ac_diagnosis {
    int n;
    ac_hypothesis h[AC_DIAG_MAX];
    double declared_r;      /* max(r, LSE r) as declared */
    int declared_pass;
    int match;              /* index of the best hypothesis the outputs pass under; -1: none */
    int n_matches;
    int closest[3];         /* the three lowest max(r, LSE r) among the applicable ones (-1: fewer) */
    char summary[700];      /* "diagnosis: matches causal=TOP_LEFT (r=0.31); as declared,
                               causal=BOTTOM_RIGHT, r=3.2e3" */
} ac_diagnosis;

/* Re-judge the dump under each hypothesis. `declared` is the verdict of
   ac_dump_check. AC_OK with dg filled (a store gets no hypotheses); an error
   only when memory runs out. */
ac_status ac_dump_diagnose(const ac_dump *d, const ac_verdict *declared, const ac_dump_check_opts *o,
                           ac_diagnosis *dg, ac_error *err);

/* ---- kernels run live (the Python bridge, harness/ac_pybridge.h; attncheck run/sweep) ---- */

/* 1 if row r (token * Hq + head; a combine's row) has no allowed key: its
   causal mode and mask leave none, or (combine) every split is -inf. */
int ac_row_is_empty(const ac_case *c, const ac_tensors *t, int64_t r);
/* The declared rule applied to one empty row r of outputs o, as `verify`
   applies a dump's: O (o_f32 when out_f32, else o in c's dtype) holding what
   `rule` says becomes 0, an LSE (unless o->lse is NULL) holding it becomes
   -inf; anything else stays as it is, and fails. 1 if the whole row held
   the rule's values. */
int ac_map_empty_row(ac_empty_rule rule, const ac_case *c, const ac_tensors *t, int out_f32, ac_outputs *o,
                     int64_t r);
/* The diagnosis of a failing generated case: its tensors and a backend's
   outputs (in the contract's conventions already; no LSE when out->lse is
   NULL) judged as a dump of them. With res (the check's oracle) and er,
   also the empty-row report. */
ac_status ac_case_diagnose(const ac_case *c, const ac_tensors *t, const ac_outputs *out, const ac_verdict *declared,
                           const ac_oracle_result *res, ac_diagnosis *dg, ac_empty_report *er, ac_error *err);

/* A failing check r (run with keep = 1 by opts) explained: the diagnosis and
   empty-row report above, then the poisoned-slot test (ac_check_poison_blame:
   its sentence in `poison`, "" when it does not apply; *blamed when the poison
   is the cause). The test runs also when the diagnosis cannot be made, whose
   error is returned. */
ac_status ac_check_explain(const ac_case *c, const ac_check_opts *opts, const ac_check_result *r, ac_diagnosis *dg,
                           ac_empty_report *er, char *poison, size_t n, int *blamed, ac_error *err);

#ifdef __cplusplus
}
#endif
#endif
