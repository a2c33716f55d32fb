/* Command-line helpers on top of getopt_long, for every program of the
 * suite. Each option value is checked where it is read (a number is a whole
 * number in its range, a name is one of the known names, a file to write can
 * be written), and each complaint is an ac_error naming the flag and what is
 * wrong with it, printed as
 *     attncheck run: --seed abc: not a number
 * The programs print it and exit AC_EXIT_USAGE (2) before doing any work.
 *
 *     static const struct option opts[] = {{"seed", required_argument, NULL, OPT_SEED},
 *                                          {"help", no_argument, NULL, 'h'}, {0}};
 *     ac_args a;
 *     ac_args_init(&a, "attncheck run", argc, argv, opts);
 *     for (int c; (c = ac_args_next(&a, &err)) != AC_ARGS_END;)
 *         switch (c) {
 *         case OPT_SEED: if (ac_arg_u64(a.name, optarg, 0, UINT64_MAX, &seed, &err)) return ac_args_fail(&a, &err); break;
 *         case 'h': usage(stdout); return 0;
 *         default: return ac_args_fail(&a, &err); // AC_ARGS_ERROR: err says what
 *         }
 *     positional arguments: argv[optind .. argc)
 *
 * An option whose `val` is a letter or digit also has that one-letter form
 * (-h); others are long only. Values come as "--seed 5" or "--seed=5". */
#ifndef AC_ARGS_H
#define AC_ARGS_H

#include <getopt.h>
#include <regex.h>
#include <stdint.h>
#include <stdio.h>

#include "ac_backend.h"
#include "ac_case.h"
#include "ac_status.h"

#ifdef __cplusplus
extern "C" {
#endif

enum {
    AC_ARGS_END = -1,   /* no more options; positionals are argv[optind..argc) */
    AC_ARGS_ERROR = -2, /* unknown option, missing value, value given to a flag */
    AC_ARGS_LONG = 256  /* first `val` for long-only options (a program's enum starts here) */
};

typedef struct ac_args {
    const char *prog;           /* "attncheck run": the first word of every message */
    int argc;
    char **argv;
    const struct option *opts;  /* ends with a zeroed entry */
    char shortopts[128];
    const char *name;           /* "--seed": the option ac_args_next returned last */
    char name_buf[64];
} ac_args;

/* Restarts getopt (optind) on argv[1..argc). */
void ac_args_init(ac_args *a, const char *prog, int argc, char **argv, const struct option *opts);
/* The next option's `val` (its value in optarg, its name in a->name), or
   AC_ARGS_END, or AC_ARGS_ERROR with err filled. A required value that
   reads as another long option ("--tsv --quick") counts as missing; give
   such a value as --tsv=--quick. */
int ac_args_next(ac_args *a, ac_error *err);
/* Prints "prog: message" and where to find the flags to stderr; returns
   AC_EXIT_USAGE for main to return. */
int ac_args_fail(const ac_args *a, const ac_error *err);
/* The same for a complaint that is no ac_error (e.g. a wrong count of
   positional arguments): printf-style. */
int ac_args_failf(const ac_args *a, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Checked values. `name` is the flag as the user should read it ("--seed"),
   `text` the value (NULL: missing). Integers are decimal or 0x-hex with an
   optional sign; the whole text must be the number; out-of-range values,
   overflow and (for u64) any minus sign are errors. AC_ERR_PARSE on any of
   them, *out untouched. */
ac_status ac_arg_i64(const char *name, const char *text, int64_t min, int64_t max, int64_t *out, ac_error *err);
ac_status ac_arg_u64(const char *name, const char *text, uint64_t min, uint64_t max, uint64_t *out, ac_error *err);
ac_status ac_arg_int(const char *name, const char *text, int min, int max, int *out, ac_error *err);
/* A finite double in [min, max] (strtod syntax, whole text). */
ac_status ac_arg_double(const char *name, const char *text, double min, double max, double *out, ac_error *err);
/* One of ac_bug_name's names; the error lists them. */
ac_status ac_arg_bug(const char *name, const char *text, ac_bug *out, ac_error *err);
/* auto | cpu | gpu. auto sets *is_auto = 1 and leaves *out: the caller
   probes for a device once the whole command line is known to be good. */
ac_status ac_arg_backend(const char *name, const char *text, ac_backend *out, int *is_auto, ac_error *err);
/* One of the NULL-terminated `choices`; *out is its index. */
ac_status ac_arg_choice(const char *name, const char *text, const char *const *choices, int *out, ac_error *err);
/* A POSIX extended regular expression, compiled without submatches
   (REG_EXTENDED | REG_NOSUB); free it with regfree. */
ac_status ac_arg_regex(const char *name, const char *text, regex_t *out, ac_error *err);
/* A folder the program will write into: made now (with its parents), so
   that one that cannot be made stops the program before any work. AC_ERR_IO. */
ac_status ac_arg_out_dir(const char *name, const char *path, ac_error *err);
/* A file the program will write: opened ("w") now, so that a path that
   cannot be written stops the program before any work. AC_ERR_IO. */
ac_status ac_arg_out_file(const char *name, const char *path, FILE **out, ac_error *err);

/* ---- the features of run and sweep (docs/attncheck.1) ---------------------- */

/* What --window, --softcap, --alibi and --sinks asked for, and the K/V
   flags --head-dim-v, --kv-format and --kv-scales; all off after memset 0.
   The logit features are applied to every case of a family that takes
   features, the K/V ones to every case of a family whose traits'
   kv_features take them (prefill, decode, store). */
typedef struct ac_feature_args {
    int window;                   /* 1: --window given */
    int32_t window_left, window_right;
    int softcap;                  /* 1: --softcap given (0.0 turns it off) */
    float softcap_value;
    int alibi;                    /* 0: not given; 1: "std", 2^(-8 (h + 1) / Hq); 2: the list */
    int32_t n_alibi;
    float alibi_slopes[AC_MAX_HEADS];
    int32_t n_sinks;              /* 0: not given; else the list */
    float sinks[AC_MAX_HEADS];
    int32_t head_dim_v;           /* 0: not given; else D_v */
    ac_kv_format kv_format;       /* AC_KV_AS_DTYPE: not given */
    int kv_scales;                /* 0: not given; 1: per tensor (k_scale, v_scale); 2: "head", one per KV head */
    float k_scale, v_scale;
} ac_feature_args;

/* --window L,R: two integers >= -1 (-1: unbounded on that side), not both -1. */
ac_status ac_arg_window(const char *name, const char *text, int32_t *left, int32_t *right, ac_error *err);
/* A comma-separated list of 1..max finite floats; with allow_neg_inf, "-inf"
   too. */
ac_status ac_arg_floats(const char *name, const char *text, int allow_neg_inf, float *out, int32_t max, int32_t *n,
                        ac_error *err);
/* --alibi std|x0,x1,... into f. */
ac_status ac_arg_alibi(const char *name, const char *text, ac_feature_args *f, ac_error *err);
/* --kv-format e4m3|e5m2. */
ac_status ac_arg_kv_format(const char *name, const char *text, ac_kv_format *out, ac_error *err);
/* --kv-scales K,V (two scales in [2^-64, 2^64], per tensor) or "head" (one
   per KV head, a fixed spread of powers of two and others). */
ac_status ac_arg_kv_scales(const char *name, const char *text, ac_feature_args *f, ac_error *err);
/* The per-head spread of --kv-scales head for KV head g: k and v scales
   (0.5, 1.5, 2, 0.375, ... and 2, 0.75, 0.25, 1.25, ...; never 0, v never
   the k of the same head). */
void ac_kv_scales_spread(int32_t g, float *k_scale, float *v_scale);
/* The flags' combinations that no case can have, by name (--kv-scales
   without --kv-format: scales on a cache of the case dtype). Call once after
   parsing. */
ac_status ac_feature_args_check(const ac_feature_args *f, ac_error *err);
/* 1 if the K/V flags were given and c's family takes all of them. */
int ac_feature_args_kv_taken(const ac_feature_args *f, const ac_case *c);
/* 1 if any K/V flag was given. */
int ac_feature_args_kv_any(const ac_feature_args *f);
/* 1 if any feature flag was given (the K/V ones included). */
int ac_feature_args_any(const ac_feature_args *f);
/* Set f's features on c when c's family takes features (else c is left as
   it is): a list shorter than heads_q repeats its last entry, a longer one
   is cut (ac_case_fit_head_params). */
ac_status ac_feature_args_apply(const ac_feature_args *f, ac_case *c, ac_error *err);

#ifdef __cplusplus
}
#endif
#endif
