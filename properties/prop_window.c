/* 12. Windows: a window (left, right) keeps key j of query i exactly when
 * i + off - left <= j <= i + off + right, off = Lk - Lq (bottom-right, like
 * the causal mode BOTTOM_RIGHT). So a window as wide as the sequence is no
 * window, and on a prefill a window is the bool mask of that band. */
#include <string.h>

#include "ac_index.h"
#include "prop_props.h"
#include "prop_util.h"

/* A window whose left edge, seen from query 0 of sequence 0, falls on a
   16-key block or 64-key tile boundary half of the time (where a kernel's
   tile skipping starts), else anywhere; the right side mostly 0 (what causal
   kernels use) or unbounded. */
static void draw_window(ac_rng *r, const ac_case *c, int32_t *left, int32_t *right)
{
    int32_t off = c->batch > 0 ? c->seqlen_k[0] - c->seqlen_q[0] : 0;
    int32_t unit = ac_rng_below(r, 2) ? 64 : 16;
    if (ac_rng_below(r, 2) && off >= 0) {
        int32_t start = unit * prop_pick(r, 0, off / unit); /* a boundary at or below the diagonal */
        *left = off - start + (int32_t)ac_rng_below(r, 2) * (ac_rng_below(r, 2) ? 1 : -1);
        if (*left < 0) *left = 0;
    } else {
        *left = ac_rng_below(r, 5) == 0 ? -1 : prop_pick(r, 0, 90);
    }
    uint64_t k = ac_rng_below(r, 4);
    *right = k == 0 ? -1 : k == 1 ? prop_pick(r, 0, 70) : 0;
    if (*left == -1 && *right == -1) *right = 0;
}

int prop_window(const ac_prop_ctx *ctx, char *why, size_t n)
{
    ac_rng r;
    ac_rng_init(&r, ctx->seed, PROP_STREAM);
    ac_error err;
    ac_error_clear(&err);
    prop_inst a, wide, w, band;
    memset(&a, 0, sizeof a);
    memset(&wide, 0, sizeof wide);
    memset(&w, 0, sizeof w);
    memset(&band, 0, sizeof band);
    int rc = AC_PROP_PASS;

    PROP_RUN(prop_feature_base(ctx, &r, AC_FEAT_WINDOW, &a, "window/none", why, n));

    /* a. A window at least as wide as every sequence on both sides (or one
       side, the other unbounded) cuts nothing. */
    {
        int32_t max_lk = 0;
        for (int32_t b = 0; b < a.c.batch; b++)
            if (a.c.seqlen_k[b] + a.c.seqlen_q[b] > max_lk) max_lk = a.c.seqlen_k[b] + a.c.seqlen_q[b];
        PROP_TRY(prop_inst_clone(&wide, &a, &err));
        uint64_t sides = ac_rng_below(&r, 3);
        wide.c.window_left = sides == 1 ? -1 : max_lk;
        wide.c.window_right = sides == 2 ? -1 : max_lk;
        PROP_RUN(prop_run_within(ctx, &a, &wide, "window/as-wide-as-the-sequence-equals-none", why, n));
    }

    /* b. A window matches the bound model. */
    PROP_TRY(prop_inst_clone(&w, &a, &err));
    draw_window(&r, &a.c, &w.c.window_left, &w.c.window_right);
    PROP_RUN(prop_run_vs_model(ctx, &w, "window/matches-model", why, n));
    PROP_CHECK(prop_empty_rows_exact(&w.c, &w.m, &w.o, "window/empty-rows", why, n));

    /* c. Prefill: the window is the bool mask of its band (same causal mode,
       the band from ac_key_range without it). */
    if (ctx->op == AC_OP_PREFILL) {
        PROP_TRY(prop_inst_with_mask(&band, &a, AC_MASK_BOOL, 0, a.c.causal, &err));
        for (int32_t b = 0; b < band.c.batch; b++) {
            int32_t lq = band.c.seqlen_q[b], lk = band.c.seqlen_k[b];
            for (int32_t i = 0; i < lq; i++) {
                int32_t jb, je;
                ac_key_range(AC_CAUSAL_NONE, w.c.window_left, w.c.window_right, i, lq, lk, &jb, &je);
                uint8_t *row = band.t.mask_bool + band.t.mask_off[b] + (int64_t)i * lk;
                for (int32_t j = 0; j < lk; j++) row[j] = j >= jb && j < je;
            }
        }
        PROP_RUN(prop_run_within(ctx, &w, &band, "window/equals-the-band-as-a-bool-mask", why, n));
    }

done:
    prop_inst_free(&a);
    prop_inst_free(&wide);
    prop_inst_free(&w);
    prop_inst_free(&band);
    return rc;
}
