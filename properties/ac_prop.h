/* Properties: laws a correct attention kernel obeys, checked by running the
 * kernel (or its CPU model) on related inputs and comparing the runs with
 * each other. An oracle comparison says "wrong"; a property says which law
 * broke, and most properties need no oracle, so they keep working on shapes
 * too large for it. docs/PROPERTIES.md states each law, what it compares and
 * with which tolerance.
 *
 * Two kinds of comparison:
 *   bitwise: the same computation on the same numbers (relabelled blocks,
 *     another batch, a second run) must give the same bits, NaN included;
 *   within the bound: two runs whose exact answers are equal may each be
 *     off by the verdict's per-element bound (docs/VERDICT.md), so they may
 *     differ by the sum of the two bounds, never by a tuned tolerance. */
#ifndef AC_PROP_H
#define AC_PROP_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "ac_backend.h"
#include "ac_backends.h"
#include "ac_case.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Where the keys and values of an attention case live. */
typedef enum ac_prop_layout {
    AC_PROP_CONTIGUOUS = 0, /* packed THD rows (prefill only) */
    AC_PROP_PAGED_IDENTITY, /* paged, blocks in pool order */
    AC_PROP_PAGED_PERMUTED, /* paged, blocks drawn from a shuffled pool */
    AC_PROP_PAGED_SHARED,   /* paged, leading blocks shared between sequences */
    AC_PROP_LAYOUT_COUNT
} ac_prop_layout;

/* One point of the parameter grid, plus what runs it. */
typedef struct ac_prop_ctx {
    ac_backend backend;
    ac_bug bug;              /* injected bug (selftest); AC_BUG_NONE otherwise */
    ac_op op;                /* the operation the property exercises */
    ac_dtype dtype;
    int32_t head_dim;
    int32_t gqa;             /* Hq / Hkv */
    ac_prop_layout layout;
    uint64_t seed;           /* every random choice of the property comes from it */
    uint32_t features;       /* AC_FEAT_* bits the law's cases may carry (a nonempty subset is
                                drawn per point, prop_case_features); 0: none, the old grid */
} ac_prop_ctx;

/* Result codes of a property function. */
#define AC_PROP_PASS 0
#define AC_PROP_FAIL 1
#define AC_PROP_SKIP 77

/* Returns AC_PROP_PASS, AC_PROP_FAIL (why says which law broke, on which case)
   or AC_PROP_SKIP (why says why: no device, unsupported shape). */
typedef int (*ac_prop_fn)(const ac_prop_ctx *ctx, char *why, size_t n);

#define AC_OPS(op) (1u << (op))
#define AC_LAYOUTS(l) (1u << (l))
#define AC_LAYOUTS_PAGED (AC_LAYOUTS(AC_PROP_PAGED_IDENTITY) | AC_LAYOUTS(AC_PROP_PAGED_PERMUTED) | \
                          AC_LAYOUTS(AC_PROP_PAGED_SHARED))
#define AC_LAYOUTS_ALL (AC_LAYOUTS(AC_PROP_CONTIGUOUS) | AC_LAYOUTS_PAGED)

typedef struct ac_prop {
    const char *name;        /* short, stable: the Criterion test name */
    const char *statement;   /* the law, in one line */
    ac_prop_fn fn;
    unsigned ops;            /* AC_OPS(...) the law is checked on */
    unsigned layouts;        /* AC_LAYOUTS(...) where it means something */
    uint32_t features;       /* AC_FEAT_* bits the law also holds with: the grid runs every point
                                once without features and once with them (0: once) */
} ac_prop;

extern const ac_prop ac_props[];
extern const int ac_prop_count;
/* NULL if unknown. */
const ac_prop *ac_prop_find(const char *name);

const char *ac_prop_layout_name(ac_prop_layout l);
/* "prefill bf16 D=64 gqa=4 layout=permuted backend=cpu-model bug=none seed=123"
   (" features=window+sinks" before " seed=" when the point carries features) */
int ac_prop_ctx_line(const ac_prop_ctx *ctx, char *buf, size_t n);

/* ---- the parameter grid ---------------------------------------------------- */

/* Grid axes: dtype x head dim x GQA ratio x layout, times the property's ops,
   times (no features, the law's features) when the law has features: the
   points without features come first, in the order and with the seeds they
   had before features existed. */
#define AC_PROP_GRID_DTYPES 2
#define AC_PROP_GRID_DIMS 2
#define AC_PROP_GRID_GQAS 2
extern const int32_t ac_prop_grid_dims[AC_PROP_GRID_DIMS];
extern const int32_t ac_prop_grid_gqas[AC_PROP_GRID_GQAS];

/* The points of p's grid for a backend, in a fixed order; fills up to max
   contexts (seed of point i = a hash of (base_seed, i)) and returns the full
   count. Layouts the op cannot use are left out (decode is paged only; the
   combine has no layout and runs once per (dtype, dim, gqa)). */
int ac_prop_grid(const ac_prop *p, ac_backend be, ac_bug bug, uint64_t base_seed, ac_prop_ctx *out, int max);

/* Seed for a run: ATTNCHECK_SEED when set (decimal or 0x hex), else drawn
   from the clock and the process id. */
uint64_t ac_prop_seed_from_env(void);

typedef struct ac_prop_report {
    int cases;        /* grid points run (skips included) */
    int passed, failed, skipped;
    int first_fail;   /* 1-based index of the first failing point, 0 if none */
    char first_why[1024];
    ac_prop_ctx first_ctx;
} ac_prop_report;

/* Run p over its grid (at most max_cases points, 0 = all). With log != NULL,
   each failure prints the seed, the grid point and the message there;
   stop_at_first ends the loop at the first failure. */
void ac_prop_run_grid(const ac_prop *p, ac_backend be, ac_bug bug, uint64_t base_seed, int max_cases,
                      int stop_at_first, FILE *log, ac_prop_report *rep);

/* Sequence lengths of the laws' cases are multiplied by this (prefill query
   counts and every key excess; decode keeps 1..8 queries): 1 by default (CI
   sizes: short sequences, a few tiles), ATTNCHECK_PROP_SCALE or the setter
   for longer ones (more key tiles, splits and blocks per sequence). */
void ac_prop_set_length_scale(int scale);
int ac_prop_length_scale(void);

/* The largest |difference| / tolerance among the within-the-bound
   comparisons that held in this process since the last reset: how much of
   the bound correct runs use. reset != 0 zeroes it after reading. */
double ac_prop_worst_ratio(int reset);

#ifdef __cplusplus
}
#endif
#endif
