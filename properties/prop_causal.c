/* 3. Causal alignment: TOP_LEFT is j <= i, BOTTOM_RIGHT is j <= i + Lk - Lq;
 * both are nothing but a triangular mask, they coincide when Lq == Lk, and
 * a decode step needs BOTTOM_RIGHT. */
#include <math.h>
#include <string.h>

#include "ac_index.h"
#include "prop_props.h"
#include "prop_util.h"

/* Overwrite x's bool mask (shared by all heads) with the causal triangle of `mode`. */
static void set_triangle(prop_inst *x, ac_causal mode)
{
    for (int32_t b = 0; b < x->c.batch; b++) {
        int32_t lq = x->c.seqlen_q[b], lk = x->c.seqlen_k[b];
        uint8_t *m = x->t.mask_bool + x->t.mask_off[b];
        for (int32_t i = 0; i < lq; i++) {
            int32_t end = ac_causal_end((int)mode, i, lq, lk);
            for (int32_t j = 0; j < lk; j++) m[(int64_t)i * lk + j] = j < end;
        }
    }
}

/* Run x with causal mode `mode` and the same data as an explicit-mask twin
   with causal NONE; the two must agree within the bound. */
static int causal_vs_mask(const ac_prop_ctx *ctx, prop_inst *x, ac_causal mode, const char *what, char *why,
                          size_t n)
{
    ac_error err;
    ac_error_clear(&err);
    prop_inst mk;
    memset(&mk, 0, sizeof mk);
    int rc = AC_PROP_PASS;
    x->c.causal = mode;
    PROP_RUN(prop_exec(ctx, x, what, why, n));
    PROP_TRY(prop_inst_model(x, &err));
    PROP_TRY(prop_inst_with_mask(&mk, x, AC_MASK_BOOL, 0, AC_CAUSAL_NONE, &err));
    set_triangle(&mk, mode);
    PROP_RUN(prop_exec(ctx, &mk, what, why, n));
    PROP_TRY(prop_inst_model(&mk, &err));
    PROP_CHECK(prop_within(&x->c, &x->m, &mk.m, &x->o, &mk.o, NULL, what, why, n));
done:
    prop_inst_free(&mk);
    return rc;
}

int prop_causal(const ac_prop_ctx *ctx, char *why, size_t n)
{
    ac_rng r;
    ac_rng_init(&r, ctx->seed, PROP_STREAM);
    ac_error err;
    ac_error_clear(&err);
    prop_inst a, eq, dec_br, dec_tl;
    memset(&a, 0, sizeof a);
    memset(&eq, 0, sizeof eq);
    memset(&dec_br, 0, sizeof dec_br);
    memset(&dec_tl, 0, sizeof dec_tl);
    int rc = AC_PROP_PASS;
    const int prefill = ctx->op == AC_OP_PREFILL;

    if (prefill) {
        /* Lk - Lq from -12 to +24: both Lq > Lk (leading rows see nothing
           under BOTTOM_RIGHT) and Lq < Lk. */
        prop_case_base(ctx, AC_OP_PREFILL, &a.c);
        PROP_TRY(prop_case_lengths(&a.c, &r, prop_pick(&r, 1, 3), 1, 24, -12, 48, &err));
        if (a.c.seqlen_q[0] < 2) a.c.seqlen_q[0] = 2; /* sequence 0 always has Lq > Lk */
        if (a.c.seqlen_k[0] >= a.c.seqlen_q[0]) a.c.seqlen_k[0] = prop_pick(&r, 0, a.c.seqlen_q[0] - 1);
        PROP_TRY(prop_case_place(ctx, &a.c, &r, &err));
        PROP_TRY(prop_gen(&a, &err));

        /* a. TOP_LEFT equals the explicit lower-triangular mask. */
        PROP_RUN(causal_vs_mask(ctx, &a, AC_CAUSAL_TOP_LEFT, "causal/top-left-equals-lower-triangle", why, n));
        /* b. BOTTOM_RIGHT equals the triangle shifted by Lk - Lq, and rows
           with i + Lk - Lq < 0 are exactly 0 / -inf. */
        PROP_RUN(causal_vs_mask(ctx, &a, AC_CAUSAL_BOTTOM_RIGHT, "causal/bottom-right-equals-shifted-triangle",
                                why, n));
        PROP_CHECK(prop_empty_rows_exact(&a.c, &a.m, &a.o, "causal/bottom-right-Lq>Lk-leading-rows-empty", why, n));
    }

    /* c. With Lq == Lk the two modes are the same mask: the same bits. */
    prop_case_base(ctx, ctx->op, &eq.c);
    PROP_TRY(prop_case_lengths(&eq.c, &r, prop_pick(&r, 1, 3), 1, prefill ? 24 : 4, 0, 0, &err));
    PROP_TRY(prop_case_place(ctx, &eq.c, &r, &err));
    PROP_TRY(prop_gen(&eq, &err));
    eq.c.causal = AC_CAUSAL_TOP_LEFT;
    PROP_RUN(prop_exec(ctx, &eq, "causal/Lq==Lk", why, n));
    PROP_TRY(prop_inst_clone(&dec_br, &eq, &err));
    dec_br.c.causal = AC_CAUSAL_BOTTOM_RIGHT;
    PROP_RUN(prop_exec(ctx, &dec_br, "causal/Lq==Lk", why, n));
    PROP_CHECK(prop_same_bits(&eq.c, &eq.o, 0, &dec_br.o, 0, ac_case_total_q(&eq.c) * eq.c.heads_q,
                              "causal/top-left-equals-bottom-right-when-Lq==Lk", why, n));
    prop_inst_free(&dec_br);

    /* d. A decode step (one query, Lk >= 2): TOP_LEFT sees key 0 only,
       which the within-the-bound comparison with BOTTOM_RIGHT flags. */
    prop_case_base(ctx, ctx->op, &dec_br.c);
    PROP_TRY(prop_case_lengths(&dec_br.c, &r, prop_pick(&r, 1, 3), 1, 1, 2, 70, &err));
    PROP_TRY(prop_case_place(ctx, &dec_br.c, &r, &err));
    dec_br.c.causal = AC_CAUSAL_BOTTOM_RIGHT;
    PROP_TRY(prop_gen(&dec_br, &err));
    PROP_RUN(prop_exec(ctx, &dec_br, "causal/decode-step", why, n));
    PROP_TRY(prop_inst_model(&dec_br, &err));
    PROP_TRY(prop_inst_clone(&dec_tl, &dec_br, &err));
    dec_tl.c.causal = AC_CAUSAL_TOP_LEFT;
    PROP_RUN(prop_exec(ctx, &dec_tl, "causal/decode-step", why, n));
    PROP_TRY(prop_inst_model(&dec_tl, &err));
    PROP_CHECK(prop_vs_model(&dec_tl.c, &dec_tl.m, &dec_tl.o, "causal/decode-step-top-left-sees-key-0-only", why, n));
    {
        char tmp[1024];
        if (!prop_within(&dec_br.c, &dec_br.m, &dec_tl.m, &dec_br.o, &dec_tl.o, NULL, "", tmp, sizeof tmp)) {
            snprintf(why, n, "causal/decode-step-top-left-detected: TOP_LEFT and BOTTOM_RIGHT decode runs agree "
                             "within the bound (the causal mode is ignored)");
            prop_why_case(why, n, &dec_br.c);
            rc = AC_PROP_FAIL;
            goto done;
        }
    }

done:
    prop_inst_free(&a);
    prop_inst_free(&eq);
    prop_inst_free(&dec_br);
    prop_inst_free(&dec_tl);
    return rc;
}
