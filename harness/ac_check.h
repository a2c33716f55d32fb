/* One check of one case: generate the data, run the backend, compute the
 * oracle, judge. Shared by `attncheck run/sweep/replay/selftest`, the
 * properties and the fuzzers. */
#ifndef AC_CHECK_H
#define AC_CHECK_H

#include <stdint.h>

#include "ac_backend.h"
#include "ac_backends.h"
#include "ac_case.h"
#include "ac_clock.h" /* ac_now, used with the check's timings */
#include "ac_tensors.h"
#include "ac_verdict.h"
#include "oracle.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Optional step between data generation and the kernel: edits the tensors
   (the combine fuzzer writes its partials there). */
typedef ac_status (*ac_check_hook)(const ac_case *c, ac_tensors *t, void *ctx, ac_error *err);

/* The default budget of one check (docs/BUDGET.md): what a laptop holds and
   computes in minutes. 4 GiB of host memory; 1e11 oracle multiply-adds are
   about five minutes of the fast oracle on two cores (3e8/s measured on the
   development machine, bench/oracle_bench). */
#define AC_BUDGET_BYTES ((int64_t)4 << 30)
#define AC_BUDGET_ORACLE_MACS ((int64_t)100000000000)

typedef struct ac_check_opts {
    ac_backend backend;
    ac_bug bug;               /* injected bug (selftest) */
    int64_t max_rows;         /* oracle row sampling (0 = all rows) */
    int with_ref;             /* also run the same-precision reference for the ratio */
    int keep;                 /* keep tensors/outputs/oracle in the result for inspection */
    int oracle_threads;       /* 0: one per core (fuzzers pass 1: they run in parallel) */
    int64_t budget_bytes;     /* 0: AC_BUDGET_BYTES; -1: no limit */
    int64_t budget_macs;      /* 0: AC_BUDGET_ORACLE_MACS (after row sampling); -1: no limit */
    ac_check_hook hook;       /* may be NULL */
    void *hook_ctx;
} ac_check_opts;

typedef struct ac_check_result {
    ac_status status;         /* AC_OK: the verdict below is valid; else the run's error */
    const char *stage;        /* where it stopped: "validate", "budget", "gen", "hook", "kernel", "oracle", "verdict" */
    ac_error error;
    ac_verdict verdict;
    double seconds_kernel, seconds_oracle;
    /* Only when opts.keep: */
    ac_tensors tensors;
    ac_outputs outputs;
    ac_oracle_result oracle;
    double *err_map;          /* r per element [rows * D] */
} ac_check_result;

/* AC_OK if the case fits the budget of `opts`; else AC_ERR_BUDGET naming
   what is over, by how much, and the flag that raises it. Called by
   ac_check_case before any data is generated; a valid case only. */
ac_status ac_check_budget(const ac_case *c, const ac_check_opts *opts, ac_error *err);

/* Runs one case. Returns AC_OK when the check ran (see result->verdict.pass);
   an error status when the case could not be run (invalid input is reported
   here with its named error: callers that expect an error compare codes). */
ac_status ac_check_case(const ac_case *c, const ac_check_opts *opts, ac_check_result *result);
void ac_check_result_free(ac_check_result *result);

/* The poisoned-slot test (docs/DIAGNOSIS.md, "NaN from unused slots"): when c
   fills its unused cache slots with NaN or Inf (special nan_slots / inf_slots)
   and its verdict v found non-finite output, the same case is run again with
   those slots left finite (their random values; every used slot is the same).
   Returns 1 and says so in `why` when that twin passes: the poison reached the
   output, the bug class of a kernel that multiplies a zero weight by what an
   excluded slot holds, or masks after reading. Returns 0 when the test does not
   apply (why empty) or the twin fails too (why says the poison is not the
   cause). A sparse case is not run again. */
int ac_check_poison_blame(const ac_case *c, const ac_check_opts *opts, const ac_verdict *v, char *why, size_t n);

#ifdef __cplusplus
}
#endif
#endif
