/* Plumbing shared by the property functions (not a public interface):
 * building cases from a grid point, running them, the double-precision
 * bound model (ac_ref64), and the two kinds of comparison (bitwise, within the bound). */
#ifndef AC_PROP_UTIL_H
#define AC_PROP_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "ac_backend.h"
#include "ac_backends.h"
#include "ac_case.h"
#include "ac_gen.h"
#include "ac_prop.h"
#include "ac_ref.h"
#include "ac_tensors.h"
#include "ac_verdict.h"
#include "oracle.h"

/* Stream of the property's own random choices (lengths, chunks,
   permutations): apart from ac_gen's streams, so the data do not move when a
   property draws one more number. */
#define PROP_STREAM 0x70726f70ULL /* "prop" */
/* The features' own stream: drawing them moves no length, layout or datum
   that a law without features would draw. */
#define PROP_FEAT_STREAM 0x66656174ULL /* "feat" */

/* One instance: a case, its tensors, a run's outputs and, when asked for,
   the bound model of the case. */
typedef struct prop_inst {
    ac_case c;
    ac_tensors t;
    ac_outputs o;
    ac_oracle_result m; /* bound model (ac_ref64), valid when have_model */
    int have_model;
} prop_inst;

void prop_inst_free(prop_inst *x);

/* Uniform integer in [lo, hi]. */
int32_t prop_pick(ac_rng *r, int32_t lo, int32_t hi);
/* Fisher-Yates permutation of [0, n). */
void prop_shuffle(ac_rng *r, int32_t *perm, int32_t n);

/* A case for op at the grid point: dtype, D, Hkv = 2, Hq = 2 * gqa, default
   scale, dist normal, seed from ctx; decode is BOTTOM_RIGHT with one split. */
void prop_case_base(const ac_prop_ctx *ctx, ac_op op, ac_case *c);
/* batch sequences with Lq in [lq_lo, lq_hi] and Lk = Lq + [dk_lo, dk_hi]
   (Lk clamped at 0). */
ac_status prop_case_lengths(ac_case *c, ac_rng *r, int32_t batch, int32_t lq_lo, int32_t lq_hi,
                            int32_t dk_lo, int32_t dk_hi, ac_error *err);
/* The K/V laws' case (dv, fp8): prop_case_base, then a prefill of 1..3
   sequences of 1..32 queries, Lk - Lq in [0, 64], any causal mode, or a
   decode of 1..4 queries, Lk - Lq in [0, 70], 1..3 splits; not placed. */
ac_status prop_case_kv_law(const ac_prop_ctx *ctx, ac_rng *r, ac_case *c, ac_error *err);
/* Place the keys per the grid point's layout: contiguous, or paged with a
   block size of 16 or 32 and 0..2 spare blocks (ac_case_make_layout). */
ac_status prop_case_place(const ac_prop_ctx *ctx, ac_case *c, ac_rng *r, ac_error *err);

/* Draw the features of c (after heads_q is set) from ctx->features & allowed:
   a nonempty random subset of them, each with values aimed at the kernels'
   edges (window sides at 0, a block, a 64-key tile or unbounded; softcap
   1..50; ALiBi's standard slopes or random ones; sinks in [-3, 5] with -inf
   on some heads), then a subset of the K/V bits the family takes
   (traits kv_features): head_dim_v at D/2, 3D/2, D/4 or 3D/4, an E4M3 or
   E5M2 cache without scales, with one scale per tensor or one per KV head.
   Draws from PROP_FEAT_STREAM, the K/V bits after every logit value;
   nothing when the subset is empty. Bits the family does not take are
   dropped. */
ac_status prop_case_features(const ac_prop_ctx *ctx, ac_case *c, uint32_t allowed, ac_error *err);
/* Scales for an FP8 cache of c: one (per tensor) or heads_kv (per_head) k and
   v scales each, drawn from pool[0..npool) or, with pool NULL, from a fixed
   list of powers of two and other values (never 0). */
void prop_kv_scales_draw(ac_rng *r, ac_case *c, int per_head, const float *pool, int npool, float *ks, float *vs);
/* Turn every feature of c off (the K/V ones too: D_v = D_qk, the case dtype's cache). */
void prop_case_no_features(ac_case *c);
/* Turn the logit features of c off (window, softcap, ALiBi, sinks); the K/V
   storage (D_v, the cache format and its scales) stays, as a store of the
   same cache needs it. */
void prop_case_no_logit_features(ac_case *c);
/* ALiBi's standard slopes for H heads: 2^(-8 (h + 1) / H). */
void prop_alibi_standard(float *slopes, int32_t heads);

/* The LSE that an empty row (no allowed key) of head h has: the head's sink
   when it has one, else -inf (docs/CONTRACT.md). O is 0 either way. */
double prop_empty_lse(const ac_case *c, int64_t row);

/* The first half of the feature laws (window, softcap, alibi, sinks): x
   gets an attention case for ctx->op (prefill: 1..3 sequences of 1..40
   queries, Lk - Lq in [-4, 100], any causal mode; decode: 1..4 queries,
   Lk - Lq in [0, 150], so windows cut), placed per the layout, with
   ctx->features minus `own` as background features; generated, run
   (`what`) and modelled. Returns AC_PROP_PASS / SKIP / FAIL. */
int prop_feature_base(const ac_prop_ctx *ctx, ac_rng *r, uint32_t own, prop_inst *x, const char *what, char *why,
                      size_t n);
/* Run y (a variant of x's problem whose exact answer is x's), model it and
   compare the two runs within the bound. */
int prop_run_within(const ac_prop_ctx *ctx, const prop_inst *x, prop_inst *y, const char *what, char *why, size_t n);
/* Run y, model it and compare the run with its own model's answer. */
int prop_run_vs_model(const ac_prop_ctx *ctx, prop_inst *y, const char *what, char *why, size_t n);

/* Materialise x->t from x->c (ac_gen). */
ac_status prop_gen(prop_inst *x, ac_error *err);
/* A copy of src's case and tensors into dst (no outputs, no model). */
ac_status prop_inst_clone(prop_inst *dst, const prop_inst *src, ac_error *err);

/* Run x on ctx's backend with ctx's bug. Returns AC_PROP_PASS when it ran,
   AC_PROP_SKIP (no device, unsupported by this backend) or AC_PROP_FAIL (a
   valid case was rejected); why names the sub-check `what`. */
int prop_exec(const ac_prop_ctx *ctx, prop_inst *x, const char *what, char *why, size_t n);
/* The same with another bug (power checks inject one on the CPU models). */
int prop_exec_bug(const ac_prop_ctx *ctx, ac_bug bug, prop_inst *x, const char *what, char *why, size_t n);

/* dst: src's case with an explicit mask of `kind` (shared by all heads
   unless per_head) and causal mode `causal`, tensors regenerated for it and
   q, k, v copied from src, so only the mask is new (ac_gen's random mask). */
ac_status prop_inst_with_mask(prop_inst *dst, const prop_inst *src, ac_mask_kind kind, int per_head,
                              ac_causal causal, ac_error *err);

/* Element offset of (position p, KV head h) of sequence b in x's k / v:
   contiguous rows or the paged cache through the block table. */
int64_t prop_kv_offset(const ac_case *c, const ac_tensors *t, int32_t b, int32_t p, int32_t h);
/* The same in v (rows of D_v elements). */
int64_t prop_v_offset(const ac_case *c, const ac_tensors *t, int32_t b, int32_t p, int32_t h);

/* Rows that the model says are empty are exactly O = 0 and LSE = -inf (the
   sink, when the head has one) in the run (0 holds, 1 broken). */
int prop_empty_rows_exact(const ac_case *c, const ac_oracle_result *m, const ac_outputs *a, const char *what,
                          char *why, size_t n);

/* The oracle's verdict on a run (FAST mode, at most max_rows sampled rows):
   fills v; returns the oracle's status. */
ac_status prop_oracle_verdict(const ac_case *c, const ac_tensors *t, const ac_outputs *o, int64_t max_rows,
                              ac_verdict *v, ac_error *err);

/* Error plumbing of the property functions: a setup step that fails (out of
   memory, a generator error) fails the property with the status; a run that
   skips or fails ends it with its code. All jump to `done`. */
#define PROP_TRY(expr)                                                                           \
    do {                                                                                         \
        ac_status st_ = (expr);                                                                  \
        if (st_) {                                                                               \
            snprintf(why, n, "setup failed at %s:%d: %s: %s", __FILE__, __LINE__, ac_status_name(st_), \
                     err.msg);                                                                   \
            rc = AC_PROP_FAIL;                                                                   \
            goto done;                                                                           \
        }                                                                                        \
    } while (0)
#define PROP_RUN(expr)                      \
    do {                                    \
        rc = (expr);                        \
        if (rc != AC_PROP_PASS) goto done;  \
    } while (0)
/* A comparison returning 1 (broken, why filled) fails the property. */
#define PROP_CHECK(expr)          \
    do {                          \
        if (expr) {               \
            rc = AC_PROP_FAIL;    \
            goto done;            \
        }                         \
    } while (0)

/* ---- the bound model --------------------------------------------------------
   The answer and the bound's magnitudes (SPV, SPVO, |scale| q.k, |s|, n;
   docs/VERDICT.md) are ac_ref64's (harness/ac_ref.h): double precision, every
   row checked, so ac_verdict_terms applies unchanged. Free with
   ac_oracle_result_free. */
/* (Re)compute x->m from x's current case and tensors (ac_ref64, features
   included). */
ac_status prop_inst_model(prop_inst *x, ac_error *err);

/* The verdict's per-element bound (docs/VERDICT.md, without the factor C)
   and the per-row LSE bound, for row r, dim d of model m of case c. */
double prop_elem_bound(const ac_case *c, const ac_oracle_result *m, int64_t r, int32_t d);
double prop_lse_bound(const ac_case *c, const ac_oracle_result *m, int64_t r);

/* Output element e (row * D + d) of a run as a double: o_f32 for the
   combine, the dtype value otherwise. */
double prop_out_val(const ac_case *c, const ac_outputs *o, int64_t e);

/* "(seq 1, query 3, head 2)" for flat row r = token * Hq + h of case c. */
void prop_row_name(const ac_case *c, int64_t r, char *buf, size_t n);

/* Append " | case: <ac_case_line>" to why. */
void prop_why_case(char *why, size_t n, const ac_case *c);

/* ---- comparisons (0: holds, 1: broken, why filled) ----------------------------- */

/* Rows [ra, ra + rows) of a and [rb, rb + rows) of b have the same bits:
   o (and o_f32 for the combine) and lse, NaN patterns included. */
int prop_same_bits(const ac_case *c, const ac_outputs *a, int64_t ra, const ac_outputs *b, int64_t rb,
                   int64_t rows, const char *what, char *why, size_t n);

/* Two runs whose exact answers are equal: |a - b| <= C (bound_a + bound_b)
   per element, |lse_a - (lse_b - lse_shift[r])| <= C (lbound_a + lbound_b)
   per row (lse_shift may be NULL); ma / mb are the bound models of a's and
   b's problems (mb NULL: the same as ma). A row empty in the model must be
   exactly 0 / -inf in both. Rows are aligned (row r of a is row r of b). */
int prop_within(const ac_case *c, const ac_oracle_result *ma, const ac_oracle_result *mb, const ac_outputs *a,
                const ac_outputs *b, const double *lse_shift, const char *what, char *why, size_t n);

/* A run against the bound model's own answer (which is exact to ~1e-16):
   |a - O_m| <= C bound_m, |lse_a - LSE_m| <= C lbound_m. */
int prop_vs_model(const ac_case *c, const ac_oracle_result *m, const ac_outputs *a, const char *what, char *why,
                  size_t n);

/* Record |diff| / tolerance of a custom comparison that held (for
   ac_prop_worst_ratio). */
void prop_note_ratio(double r);

/* 1 if the exact answers of two models lie so far apart that the
   within-the-bound comparison of two correct runs of them must flag it:
   |O_a - O_b| > 2 C (bound_a + bound_b) for some element, or the LSE
   likewise (each run may sit C * bound away from its answer, and the check
   allows C (bound_a + bound_b) between the runs). A power check: it proves
   a law's comparison can see a bug on this very data. */
int prop_models_apart(const ac_case *c, const ac_oracle_result *ma, const ac_oracle_result *mb);

#endif
