/* The fuzz targets' bodies, their structure-aware mutators and the drivers
 * that run them without libFuzzer (replay, random walk). docs/FUZZING.md.
 *
 * A target takes bytes and returns an outcome; it never aborts. The libFuzzer
 * entry points (fuzz/fuzz_entry.c) turn a finding into a trap; the replay
 * program and `attncheck replay` print it; the random-walk driver saves it.
 *
 * Inputs:
 *   layout    a case file (common/ac_casefile.h); bytes that do not parse are
 *             decoded by ac_fuzz_case_from_bytes, so every input is a case.
 *   combine   a compact binary record of fp32 partials (ac_fuzz_partials).
 *   api       a compact binary record of argument corruptions (fuzz/ac_fuzz_api.c).
 *   casefile  any bytes (the case-file parser's own input).
 *   dump      a dumped call: a .safetensors file (harness/ac_dump.h). */
#ifndef AC_FUZZ_H
#define AC_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "ac_backend.h"
#include "ac_backends.h"
#include "ac_case.h"
#include "ac_check.h"
#include "ac_casefile.h"
#include "ac_gen.h"
#include "ac_rng.h"
#include "ac_status.h"
#include "ac_tensors.h"
#include "ac_verdict.h"
#include "decode.h"
#include "prefill.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum ac_fuzz_kind {
    AC_FUZZ_PASS = 0,       /* ran and the verdict passed */
    AC_FUZZ_REJECTED,       /* invalid input, rejected with the expected error */
    AC_FUZZ_SKIPPED,        /* outside the fuzzing budget (only when env.limits) */
    AC_FUZZ_FINDING,        /* a bug: wrong verdict, wrong error, a write on bad input ... */
    AC_FUZZ_BAD_INPUT,      /* not an input of this target: a text that claims to be a case file
                               ("attncheck-case" first) and does not parse (why = the parser's
                               error). Fuzzing passes over it; replay reports it as unreadable. */
    AC_FUZZ_UNSUPPORTED,    /* an outside kernel (plugin, Python bridge) refused a valid case by name
                               (AC_ERR_UNSUPPORTED: a mode it lacks): counted apart, never a pass */
} ac_fuzz_kind;

/* How a target runs. */
typedef struct ac_fuzz_env {
    ac_backend backend;     /* MODEL (CPU models) or GPU */
    int limits;             /* 1: skip cases over the speed budget (fuzzing); 0: run all (replay) */
    int64_t oracle_rows;    /* oracle row sampling per exec (0 = every row) */
    int64_t budget_bytes;   /* the check's budget (harness/ac_check.h): 0 default, -1 none */
    int64_t budget_macs;
    int oracle_threads;     /* 1 when fuzzing (processes give the parallelism); 0 = one per core */
    int verbose;            /* 1: print the verdict and diagnostics to `log` */
    FILE *log;              /* NULL: stderr */
    ac_bug bug;             /* a classic bug injected into the CPU models (replay --bug) */
    const char *png_stem;   /* non-NULL: write <png_stem>-heat.png and -rows.png of
                               each check's error map (attncheck replay --png) */
} ac_fuzz_env;

typedef struct ac_fuzz_outcome {
    ac_fuzz_kind kind;
    char line[512];         /* the case line, or the target's one-line description */
    char why[2048];         /* what went wrong (FINDING) or the error met (REJECTED), with the diagnosis */
    char kind_sig[256];     /* a finding's class, for one file per kind (a walk saves one of each); "" when
                               the message without its digits is the class */
    ac_status code;         /* the code the code under test returned */
    int has_case;           /* `file` below holds the case (layout), ready to save */
    ac_casefile file;       /* title = line, note = why, expectation = the correct one */
} ac_fuzz_outcome;

void ac_fuzz_outcome_init(ac_fuzz_outcome *o);
void ac_fuzz_outcome_free(ac_fuzz_outcome *o);

/* A fuzz target: body, structure-aware mutator and crossover. The mutator
   rewrites data[0..size) in place into at most max_size bytes and returns the
   new size; it is deterministic in (data, size, seed). */
typedef struct ac_fuzz_target {
    const char *name;
    const char *about;
    void (*run)(const uint8_t *data, size_t size, const ac_fuzz_env *env, ac_fuzz_outcome *out);
    size_t (*mutate)(uint8_t *data, size_t size, size_t max_size, uint64_t seed);
    size_t (*cross)(const uint8_t *a, size_t na, const uint8_t *b, size_t nb, uint8_t *out, size_t max_out,
                    uint64_t seed);
    const char *seed_dir;   /* corpus/<seed_dir> relative to the repository */
    int uses_kernels;       /* 1: a GPU backend makes sense */
} ac_fuzz_target;

/* NULL if unknown. */
const ac_fuzz_target *ac_fuzz_target_find(const char *name);
/* NULL-terminated list of every target. */
const ac_fuzz_target *const *ac_fuzz_targets(void);
/* "layout, combine, api, casefile, dump" for messages. */
void ac_fuzz_target_names(char *buf, size_t n);

/* The default env for fuzzing (model backend, limits on, row sampling). */
void ac_fuzz_env_default(ac_fuzz_env *env);

/* --- the case model under mutation (fuzz/ac_fuzz_case.c) ------------------ */

/* Which ops a target mutates into. */
enum { AC_FUZZ_OPS_LAYOUT = 1 };

/* Deterministic PRNG for mutators: ac_rng (common/ac_rng.h), own streams;
   `ac_fuzz_rng r = {seed}` starts the plain SplitMix64 sequence of seed. */
typedef ac_rng ac_fuzz_rng;
uint64_t ac_fuzz_next(ac_fuzz_rng *r);
uint32_t ac_fuzz_below(ac_fuzz_rng *r, uint32_t n); /* [0, n), n > 0 */

/* A case from arbitrary bytes: bytes that begin "attncheck-case" are a case
   file and nothing else (AC_ERR_PARSE with the parser's message when they do
   not parse: never decoded as another format); other bytes build a small
   paged case (each byte drives one choice; missing bytes read as 0) whose
   file carries the expectation the contract's rules give it
   (ac_fuzz_set_expectation). May hold an invalid layout on purpose. */
ac_status ac_fuzz_case_from_bytes(const uint8_t *data, size_t size, ac_casefile *f, ac_error *err);
/* 1 if the bytes claim to be a case file (they begin with its magic line). */
int ac_fuzz_is_casefile(const uint8_t *data, size_t size);

/* The one rule for what a case should do, used by the layout target, the
   mutators (the files they write) and so by replay: ok when the contract's
   rules (ac_fuzz_expected_errors) find nothing; else rejected with `got` when
   it is one of the codes the rules call for, else the lowest such code. */
void ac_fuzz_set_expectation(ac_casefile *f, const ac_case *c, ac_status got);

/* Mutate the case structurally (shapes, layout, table entries, slots,
   splits, seeds, dist, special values), `steps` mutations in a row. Keeps
   the arrays consistent with batch/max_blocks/num_tokens; may make the
   layout invalid on purpose. */
void ac_fuzz_mutate_case(ac_case *c, ac_fuzz_rng *r, int steps);
/* Child of two cases: shapes from a, layout rows / seed / flags from b where
   they fit. dst owns nothing on entry. */
ac_status ac_fuzz_cross_case(ac_case *dst, const ac_case *a, const ac_case *b, ac_fuzz_rng *r, ac_error *err);

/* Serialise a case into `out` as a canonical case file (title = case line,
   expectation by ac_fuzz_set_expectation).
   Returns the size, or 0 if it does not fit max_size / cannot be written. */
size_t ac_fuzz_case_to_bytes(const ac_case *c, uint8_t *out, size_t max_size);

/* The fuzzing budget: 1 if the case is small enough to run at fuzzing speed
   (docs/FUZZING.md gives the cost model). */
int ac_fuzz_case_small(const ac_case *c);

/* Independent statement of the contract's input rules (SEMANTICS.md, "Bad
   input"), written apart from common/ac_validate.c: the set of codes the
   violated rules call for, as a bit mask (1u << code); 0 = valid.
   kernel = 1 adds what the kernels do not support (head dim, mask in decode). */
uint32_t ac_fuzz_expected_errors(const ac_case *c, int kernel);
/* "AC_ERR_SHAPE|AC_ERR_CAPACITY" style text of a mask. */
void ac_fuzz_mask_str(uint32_t mask, char *buf, size_t n);

/* --- checking one case (fuzz/ac_fuzz_check.c) ----------------------------- */

/* One case through tools/ac_check.c's ac_check_case with the fuzzers'
   options: env's backend, one oracle thread (parallelism comes from fuzzing
   processes), env->oracle_rows sampled rows, no same-precision reference, and
   an optional hook between generation and the kernel (the combine target
   overwrites the partials there). Free the result with ac_check_result_free. */
typedef ac_check_hook ac_fuzz_tensor_hook;
typedef ac_check_result ac_fuzz_check;
ac_status ac_fuzz_check_case(const ac_case *c, const ac_fuzz_env *env, ac_fuzz_tensor_hook hook, void *ctx,
                             int keep, ac_fuzz_check *r);
/* The ac_check_opts behind ac_fuzz_check_case (keep 0, no hook). */
void ac_fuzz_check_opts(const ac_fuzz_env *env, ac_check_opts *o);

/* Print the worst elements (up to `top`) with their coordinates and an error
   map of r (rows x dims, downsampled to at most 64 x 32 characters). */
void ac_fuzz_print_diagnosis(const ac_case *c, const ac_fuzz_check *r, int top, FILE *f);

/* The pictures of a kept check (keep = 1) when env->png_stem is set; an
   error is reported to the log, never turned into a finding. */
void ac_fuzz_write_pictures(const ac_case *c, const ac_fuzz_check *r, const ac_fuzz_env *env, FILE *log);

/* --- the combine target's record (fuzz/ac_fuzz_combine.c) ----------------- */
/* The largest head dim (D_qk or D_v, a multiple of 8) a bundled kernel takes:
   prefill AC_PREFILL_MAX_HEAD_DIM; decode 32 lanes of AC_DECODE_MAX_CHUNKS
   8-element chunks (ac_decode_validate_kernel). The expectations of the case
   and API fuzzers follow these, not copies of the numbers. */
static inline int32_t ac_fuzz_kernel_max_dim(ac_op op)
{
    return op == AC_OP_DECODE ? 32 * 8 * AC_DECODE_MAX_CHUNKS : AC_PREFILL_MAX_HEAD_DIM;
}

#define AC_FUZZ_COMBINE_MAX_ROWS 8
#define AC_FUZZ_COMBINE_MAX_SPLITS 24
#define AC_FUZZ_COMBINE_MAX_DIM 64
typedef struct ac_fuzz_partials {
    ac_dtype dtype;
    int32_t rows, splits, head_dim;
    uint8_t nan_in_empty;                  /* NaN (and Inf) in O of -inf splits */
    uint64_t seed;                         /* values of O not given explicitly */
    float lse[AC_FUZZ_COMBINE_MAX_ROWS * AC_FUZZ_COMBINE_MAX_SPLITS];
    uint8_t o_kind[AC_FUZZ_COMBINE_MAX_ROWS * AC_FUZZ_COMBINE_MAX_SPLITS]; /* ac_fuzz_o_kind */
} ac_fuzz_partials;
void ac_fuzz_partials_decode(const uint8_t *data, size_t size, ac_fuzz_partials *p);
size_t ac_fuzz_partials_encode(const ac_fuzz_partials *p, uint8_t *out, size_t max_size);
int ac_fuzz_partials_line(const ac_fuzz_partials *p, char *buf, size_t n);

/* --- the targets ----------------------------------------------------------- */
void ac_fuzz_layout_run(const uint8_t *data, size_t size, const ac_fuzz_env *env, ac_fuzz_outcome *out);
size_t ac_fuzz_layout_mutate(uint8_t *data, size_t size, size_t max_size, uint64_t seed);
size_t ac_fuzz_layout_cross(const uint8_t *a, size_t na, const uint8_t *b, size_t nb, uint8_t *out,
                            size_t max_out, uint64_t seed);
void ac_fuzz_combine_run(const uint8_t *data, size_t size, const ac_fuzz_env *env, ac_fuzz_outcome *out);
size_t ac_fuzz_combine_mutate(uint8_t *data, size_t size, size_t max_size, uint64_t seed);
size_t ac_fuzz_combine_cross(const uint8_t *a, size_t na, const uint8_t *b, size_t nb, uint8_t *out,
                             size_t max_out, uint64_t seed);
void ac_fuzz_api_run(const uint8_t *data, size_t size, const ac_fuzz_env *env, ac_fuzz_outcome *out);
size_t ac_fuzz_api_mutate(uint8_t *data, size_t size, size_t max_size, uint64_t seed);
void ac_fuzz_casefile_run(const uint8_t *data, size_t size, const ac_fuzz_env *env, ac_fuzz_outcome *out);
size_t ac_fuzz_casefile_mutate(uint8_t *data, size_t size, size_t max_size, uint64_t seed);
/* dump: a dumped call (.safetensors, harness/ac_dump.h), fuzz/ac_fuzz_dump.c. */
void ac_fuzz_dump_run(const uint8_t *data, size_t size, const ac_fuzz_env *env, ac_fuzz_outcome *out);
size_t ac_fuzz_dump_mutate(uint8_t *data, size_t size, size_t max_size, uint64_t seed);
size_t ac_fuzz_dump_cross(const uint8_t *a, size_t na, const uint8_t *b, size_t nb, uint8_t *out, size_t max_out,
                          uint64_t seed);
/* The dump target's seeds (corpus/dump, written by attncheck-corpus): seed i
   of ac_fuzz_dump_seed_count(), a small valid dump whose outputs the CPU
   models computed; *slug names its file. The caller frees *bytes. */
int ac_fuzz_dump_seed_count(void);
ac_status ac_fuzz_dump_seed(int i, const char **slug, uint8_t **bytes, size_t *size, ac_error *err);

/* --- drivers (fuzz/ac_fuzz_walk.c) ----------------------------------------- */

/* Save a finding: the case file (layout) or the raw input plus a .txt with
   its description, named "<target>-<slug of the line>-<hash>". Writes the
   path into path_out (may be NULL). */
ac_status ac_fuzz_save_finding(const ac_fuzz_target *t, const uint8_t *data, size_t size,
                               const ac_fuzz_outcome *o, const char *dir, char *path_out, size_t path_n,
                               ac_error *err);

#define AC_FUZZ_MAX_GPUS 64
typedef struct ac_fuzz_walk_opts {
    const ac_fuzz_target *target;
    ac_fuzz_env env;
    double seconds;         /* wall-clock budget */
    int64_t max_execs;      /* 0: no limit */
    int workers;            /* processes (fork); 1 = in this process */
    int gpus;               /* > 0: worker i uses GPU i % gpus (CUDA_VISIBLE_DEVICES) */
    uint64_t seed;
    const char *seed_dirs[8];/* NULL-terminated: initial pool */
    const char *findings_dir;
    double progress_every;  /* seconds between progress lines (0: 5) */
    FILE *log;
    const char *trace;      /* non-NULL: worker i writes "<k> <fnv64 of input k> <outcome>" lines to
                               <trace>.w<i>: two campaigns compare input by input (docs/SCALING.md) */
} ac_fuzz_walk_opts;

typedef struct ac_fuzz_walk_stats {
    int64_t execs, passes, rejected, skipped, findings, pool;
    int64_t unsupported;    /* valid cases an outside kernel refused by name (AC_FUZZ_UNSUPPORTED) */
    int64_t unique;         /* findings of distinct kinds (kind_sig, else the message without numbers), one file each */
    double seconds;
    int gpus;               /* GPUs the workers used (0: CPU backend) */
    int64_t execs_gpu[AC_FUZZ_MAX_GPUS]; /* executions per GPU */
} ac_fuzz_walk_stats;

/* The random walk: a pool of inputs (seed corpus), each step picks one,
   mutates it with the target's structure-aware mutator (crossover now and
   then), runs it, keeps it in the pool when it ran (not skipped), saves
   findings. The driver for hosts without libFuzzer (the GPU host). */
ac_status ac_fuzz_walk(const ac_fuzz_walk_opts *o, ac_fuzz_walk_stats *st, ac_error *err);

/* Read a file whole (at most max bytes). */
ac_status ac_fuzz_read_file(const char *path, uint8_t **data, size_t *size, size_t max, ac_error *err);

#ifdef __cplusplus
}
#endif
#endif
