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

typedef struct ac_check_opts {
    ac_backend backend;
    ac_bug bug;               /* injected bug (selftest) */
    int64_t max_rows;         /* oracle row sampling (0 = all rows) */
    int with_ref;             /* also run the same-precision reference for the ratio */
    int keep;                 /* keep tensors/outputs/oracle in the result for inspection */
    int oracle_threads;       /* 0: one per core (fuzzers pass 1: they run in parallel) */
    ac_check_hook hook;       /* may be NULL */
    void *hook_ctx;
} ac_check_opts;

typedef struct ac_check_result {
    ac_status status;         /* AC_OK: the verdict below is valid; else the run's error */
    const char *stage;        /* where it stopped: "validate", "gen", "hook", "kernel", "oracle", "verdict" */
    ac_error error;
    ac_verdict verdict;
    double seconds_kernel, seconds_oracle;
    /* Only when opts.keep: */
    ac_tensors tensors;
    ac_outputs outputs;
    ac_oracle_result oracle;
    double *err_map;          /* r per element [rows * D] */
} ac_check_result;

/* Runs one case. Returns AC_OK when the check ran (see result->verdict.pass);
   an error status when the case could not be run (invalid input is reported
   here with its named error: callers that expect an error compare codes). */
ac_status ac_check_case(const ac_case *c, const ac_check_opts *opts, ac_check_result *result);
void ac_check_result_free(ac_check_result *result);

#ifdef __cplusplus
}
#endif
#endif
