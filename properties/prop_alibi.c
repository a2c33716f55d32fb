/* 14. ALiBi: s += slope_h (j - i - off), off = Lk - Lq, after the softcap.
 * So zero slopes are no ALiBi, and on a prefill ALiBi is the per-head
 * additive bias slope_h * (float)(j - i - off) (the sign included: keys a
 * bottom-right causal row sees get a bias <= 0 for slopes >= 0). */
#include <string.h>

#include "ac_index.h"
#include "prop_props.h"
#include "prop_util.h"

int prop_alibi(const ac_prop_ctx *ctx, char *why, size_t n)
{
    ac_rng r;
    ac_rng_init(&r, ctx->seed, PROP_STREAM);
    ac_error err;
    ac_error_clear(&err);
    prop_inst a, zero, al, bias;
    memset(&a, 0, sizeof a);
    memset(&zero, 0, sizeof zero);
    memset(&al, 0, sizeof al);
    memset(&bias, 0, sizeof bias);
    int rc = AC_PROP_PASS;
    float slopes[AC_MAX_HEADS];

    PROP_RUN(prop_feature_base(ctx, &r, AC_FEAT_ALIBI, &a, "alibi/none", why, n));
    const int32_t H = a.c.heads_q;

    /* a. Zero slopes are no ALiBi. */
    memset(slopes, 0, sizeof slopes);
    PROP_TRY(prop_inst_clone(&zero, &a, &err));
    PROP_TRY(ac_case_set_alibi(&zero.c, slopes, H, &err));
    PROP_RUN(prop_run_within(ctx, &a, &zero, "alibi/zero-slopes-equal-none", why, n));

    /* b. The standard slopes, or random ones in [0, 1] (exact in fp32), match the bound model. */
    if (ac_rng_below(&r, 2)) prop_alibi_standard(slopes, H);
    else
        for (int32_t h = 0; h < H; h++) slopes[h] = (float)prop_pick(&r, 0, 256) / 256.0f;
    PROP_TRY(prop_inst_clone(&al, &a, &err));
    PROP_TRY(ac_case_set_alibi(&al.c, slopes, H, &err));
    PROP_RUN(prop_run_vs_model(ctx, &al, "alibi/matches-model", why, n));

    /* c. Prefill: ALiBi is the per-head additive bias of the same numbers. */
    if (ctx->op == AC_OP_PREFILL) {
        PROP_TRY(prop_inst_with_mask(&bias, &a, AC_MASK_ADDITIVE, 1, a.c.causal, &err));
        for (int32_t b = 0; b < bias.c.batch; b++) {
            int32_t lq = bias.c.seqlen_q[b], lk = bias.c.seqlen_k[b];
            for (int32_t h = 0; h < H; h++)
                for (int32_t i = 0; i < lq; i++) {
                    float *row = bias.t.mask_bias + bias.t.mask_off[b] + ((int64_t)h * lq + i) * lk;
                    for (int32_t j = 0; j < lk; j++) row[j] = slopes[h] * ac_alibi_dist(i, j, lq, lk);
                }
        }
        PROP_RUN(prop_run_within(ctx, &al, &bias, "alibi/equals-the-per-head-additive-bias", why, n));
    }

done:
    prop_inst_free(&a);
    prop_inst_free(&zero);
    prop_inst_free(&al);
    prop_inst_free(&bias);
    return rc;
}
