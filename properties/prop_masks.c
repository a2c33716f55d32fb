/* 5. Masks: a bool mask selects keys, an additive -inf is a bool false, a
 * per-row constant in the bias is invisible in O (and moves the LSE by that
 * constant), a row with nothing allowed is 0 / -inf, and mask plus causal
 * is their intersection. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ac_index.h"
#include "prop_props.h"
#include "prop_util.h"

/* Number of mask rows of sequence b (heads that carry a mask times Lq). */
static int64_t mask_rows(const ac_case *c, int32_t b)
{
    return (int64_t)(c->mask_per_head ? c->heads_q : 1) * c->seqlen_q[b];
}

/* Make about one mask row in 8 fully masked (bool false / bias -inf). */
static void mask_some_rows(prop_inst *x, ac_rng *r)
{
    for (int32_t b = 0; b < x->c.batch; b++) {
        int32_t lk = x->c.seqlen_k[b];
        for (int64_t i = 0; i < mask_rows(&x->c, b); i++) {
            if (ac_rng_below(r, 8) != 0) continue;
            int64_t at = x->t.mask_off[b] + i * lk;
            for (int32_t j = 0; j < lk; j++) {
                if (x->c.mask == AC_MASK_BOOL) x->t.mask_bool[at + j] = 0;
                else x->t.mask_bias[at + j] = -INFINITY;
            }
        }
    }
}

int prop_masks(const ac_prop_ctx *ctx, char *why, size_t n)
{
    ac_rng r;
    ac_rng_init(&r, ctx->seed, PROP_STREAM);
    ac_error err;
    ac_error_clear(&err);
    prop_inst a, mb, ma, mc, causal, inter;
    memset(&a, 0, sizeof a);
    memset(&mb, 0, sizeof mb);
    memset(&ma, 0, sizeof ma);
    memset(&mc, 0, sizeof mc);
    memset(&causal, 0, sizeof causal);
    memset(&inter, 0, sizeof inter);
    double *shift = NULL;
    int rc = AC_PROP_PASS;
    const int per_head = (int)ac_rng_below(&r, 2);

    prop_case_base(ctx, AC_OP_PREFILL, &a.c);
    PROP_TRY(prop_case_lengths(&a.c, &r, prop_pick(&r, 1, 3), 1, 24, 0, 48, &err));
    PROP_TRY(prop_case_place(ctx, &a.c, &r, &err));
    PROP_TRY(prop_gen(&a, &err));
    PROP_RUN(prop_exec(ctx, &a, "masks/no-mask", why, n));
    PROP_TRY(prop_inst_model(&a, &err));

    /* a. An all-true bool mask is no mask. */
    PROP_TRY(prop_inst_with_mask(&mb, &a, AC_MASK_BOOL, per_head, AC_CAUSAL_NONE, &err));
    memset(mb.t.mask_bool, 1, (size_t)mb.t.mask_off[mb.c.batch]);
    PROP_RUN(prop_exec(ctx, &mb, "masks/all-true", why, n));
    PROP_TRY(prop_inst_model(&mb, &err));
    PROP_CHECK(prop_within(&a.c, &a.m, &mb.m, &a.o, &mb.o, NULL, "masks/all-true-bool-equals-no-mask", why, n));
    prop_inst_free(&mb);

    /* b. Bool false is additive -inf (with some rows fully masked, which
       d. wants exactly 0 / -inf). */
    PROP_TRY(prop_inst_with_mask(&mb, &a, AC_MASK_BOOL, per_head, AC_CAUSAL_NONE, &err));
    mask_some_rows(&mb, &r);
    PROP_TRY(prop_inst_with_mask(&ma, &a, AC_MASK_ADDITIVE, per_head, AC_CAUSAL_NONE, &err));
    for (int64_t i = 0; i < mb.t.mask_off[mb.c.batch]; i++) ma.t.mask_bias[i] = mb.t.mask_bool[i] ? 0.0f : -INFINITY;
    PROP_RUN(prop_exec(ctx, &mb, "masks/bool", why, n));
    PROP_RUN(prop_exec(ctx, &ma, "masks/additive", why, n));
    PROP_TRY(prop_inst_model(&mb, &err));
    PROP_TRY(prop_inst_model(&ma, &err));
    PROP_CHECK(prop_empty_rows_exact(&mb.c, &mb.m, &mb.o, "masks/fully-masked-row-bool", why, n));
    PROP_CHECK(prop_within(&mb.c, &mb.m, &ma.m, &mb.o, &ma.o, NULL, "masks/bool-false-equals-additive-minus-inf",
                           why, n));

    /* c. A constant added to a row's bias changes no output, and the LSE by
       exactly that constant. Biases are k/64 in [-4, 4] and the constants
       integers in [-8, 8]: every sum is exact in fp32, so both problems
       have the same exact O. */
    for (int64_t i = 0; i < ma.t.mask_off[ma.c.batch]; i++)
        ma.t.mask_bias[i] = ac_rng_below(&r, 4) == 0 ? -INFINITY : (float)prop_pick(&r, -256, 256) / 64.0f;
    mask_some_rows(&ma, &r);
    PROP_TRY(prop_inst_clone(&mc, &ma, &err));
    {
        int64_t rows = ma.t.total_q * ma.c.heads_q;
        shift = calloc((size_t)(rows ? rows : 1), sizeof(double));
        if (!shift) PROP_TRY(ac_fail(&err, AC_ERR_NOMEM, "masks: out of memory"));
        for (int32_t b = 0; b < mc.c.batch; b++) {
            int32_t lq = mc.c.seqlen_q[b], lk = mc.c.seqlen_k[b];
            for (int64_t mr = 0; mr < mask_rows(&mc.c, b); mr++) {
                float k = (float)prop_pick(&r, -8, 8);
                float *row = mc.t.mask_bias + mc.t.mask_off[b] + mr * lk;
                for (int32_t j = 0; j < lk; j++) row[j] += k; /* -inf stays -inf */
                /* Mask row mr is (head hm, query i); shared masks apply to every head. */
                int32_t hm = (int32_t)(mr / lq), i = (int32_t)(mr % lq);
                int64_t tok = mc.t.cu_seqlens_q[b] + i;
                for (int32_t h = 0; h < mc.c.heads_q; h++)
                    if (!mc.c.mask_per_head || h == hm) shift[tok * mc.c.heads_q + h] = k;
            }
        }
    }
    PROP_RUN(prop_exec(ctx, &ma, "masks/bias", why, n));
    PROP_RUN(prop_exec(ctx, &mc, "masks/bias+constant", why, n));
    PROP_TRY(prop_inst_model(&ma, &err));
    PROP_TRY(prop_inst_model(&mc, &err));
    PROP_CHECK(prop_empty_rows_exact(&ma.c, &ma.m, &ma.o, "masks/fully-masked-row-additive", why, n));
    PROP_CHECK(prop_within(&ma.c, &ma.m, &mc.m, &ma.o, &mc.o, shift, "masks/row-constant-in-bias-changes-nothing",
                           why, n));

    /* e. Mask plus causal is the intersection of the two. */
    {
        ac_causal mode = ac_rng_below(&r, 2) ? AC_CAUSAL_TOP_LEFT : AC_CAUSAL_BOTTOM_RIGHT;
        PROP_TRY(prop_inst_with_mask(&causal, &a, AC_MASK_BOOL, per_head, mode, &err));
        PROP_TRY(prop_inst_clone(&inter, &causal, &err));
        inter.c.causal = AC_CAUSAL_NONE;
        for (int32_t b = 0; b < inter.c.batch; b++) {
            int32_t lq = inter.c.seqlen_q[b], lk = inter.c.seqlen_k[b];
            for (int64_t mr = 0; mr < mask_rows(&inter.c, b); mr++) {
                int32_t end = ac_causal_end((int)mode, (int32_t)(mr % lq), lq, lk);
                uint8_t *row = inter.t.mask_bool + inter.t.mask_off[b] + mr * lk;
                for (int32_t j = end; j < lk; j++) row[j] = 0;
            }
        }
        PROP_RUN(prop_exec(ctx, &causal, "masks/mask+causal", why, n));
        PROP_RUN(prop_exec(ctx, &inter, "masks/intersection", why, n));
        PROP_TRY(prop_inst_model(&causal, &err));
        PROP_TRY(prop_inst_model(&inter, &err));
        PROP_CHECK(prop_within(&causal.c, &causal.m, &inter.m, &causal.o, &inter.o, NULL,
                               "masks/mask-plus-causal-equals-intersection", why, n));
    }

done:
    free(shift);
    prop_inst_free(&a);
    prop_inst_free(&mb);
    prop_inst_free(&ma);
    prop_inst_free(&mc);
    prop_inst_free(&causal);
    prop_inst_free(&inter);
    return rc;
}
