/* 8. Split invariance: cutting the keys into any number of splits and
 * combining the partials gives the unsplit answer; the combine of one split
 * is the identity, ignores the order of the splits and every empty split. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ac_numfmt.h"
#include "prop_props.h"
#include "prop_util.h"

static int decode_splits(const ac_prop_ctx *ctx, ac_rng *r, char *why, size_t n)
{
    ac_error err;
    ac_error_clear(&err);
    prop_inst a, x;
    memset(&a, 0, sizeof a);
    memset(&x, 0, sizeof x);
    int rc = AC_PROP_PASS;

    /* Long enough for several blocks per sequence. */
    prop_case_base(ctx, AC_OP_DECODE, &a.c);
    PROP_TRY(prop_case_lengths(&a.c, r, prop_pick(r, 1, 3), 1, 4, 20, 180, &err));
    PROP_TRY(prop_case_place(ctx, &a.c, r, &err));
    /* Sinks join once, in the final combine: every split count must agree. */
    PROP_TRY(prop_case_features(ctx, &a.c, AC_FEAT_ALL, &err));
    a.c.num_splits = 1;
    PROP_TRY(prop_gen(&a, &err));
    PROP_RUN(prop_exec(ctx, &a, "splits/unsplit", why, n));
    PROP_TRY(prop_inst_model(&a, &err));

    int32_t max_blocks = 0;
    for (int32_t b = 0; b < a.c.batch; b++) {
        int32_t used = (a.c.seqlen_k[b] + a.c.block_size - 1) / a.c.block_size;
        if (used > max_blocks) max_blocks = used;
    }
    /* 2, 3, one split per block, more splits than blocks, a random count,
       and the automatic choice (0). */
    int32_t counts[] = {2, 3, max_blocks, max_blocks + 3, prop_pick(r, 4, 2 * max_blocks + 4), 0};
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++) {
        char what[96];
        snprintf(what, sizeof what, "splits/%d-splits-equal-unsplit", counts[i]);
        PROP_TRY(prop_inst_clone(&x, &a, &err));
        x.c.num_splits = counts[i];
        PROP_RUN(prop_exec(ctx, &x, what, why, n));
        PROP_CHECK(prop_within(&a.c, &a.m, NULL, &a.o, &x.o, NULL, what, why, n));
        prop_inst_free(&x);
    }
done:
    prop_inst_free(&a);
    prop_inst_free(&x);
    return rc;
}

/* A combine case with S splits from ac_gen (some splits and some whole rows empty). */
static ac_status combine_case(const ac_prop_ctx *ctx, ac_rng *r, int32_t S, prop_inst *x, ac_error *err)
{
    prop_case_base(ctx, AC_OP_COMBINE, &x->c);
    x->c.num_splits = S;
    x->c.special = AC_SPECIAL_NAN_PARTIALS; /* an empty split's O_s is NaN: it must never be read */
    ac_status st = prop_case_lengths(&x->c, r, prop_pick(r, 1, 3), 1, 12, 0, 0, err);
    if (st) return st;
    return prop_gen(x, err);
}

/* Rebuild x's partials with S2 splits: split s2 of a row takes split
   from[s2] of src (-1: a new empty split, LSE -inf and O_s NaN). */
static ac_status remap_splits(prop_inst *x, const prop_inst *src, int32_t S2, const int32_t *from, ac_error *err)
{
    const int32_t S = src->c.num_splits, D = src->c.head_dim;
    const int64_t rows = src->t.total_q * src->c.heads_q;
    float *o = malloc(sizeof(float) * (size_t)(rows * S2 * D + 1));
    float *l = malloc(sizeof(float) * (size_t)(rows * S2 + 1));
    if (!o || !l) {
        free(o);
        free(l);
        return ac_fail(err, AC_ERR_NOMEM, "splits: out of memory");
    }
    for (int64_t r = 0; r < rows; r++)
        for (int32_t s2 = 0; s2 < S2; s2++) {
            int32_t s = from[r * S2 + s2];
            float *dst = o + (r * S2 + s2) * D;
            if (s < 0) {
                l[r * S2 + s2] = -INFINITY;
                for (int32_t d = 0; d < D; d++) dst[d] = NAN;
            } else {
                l[r * S2 + s2] = src->t.lse_part[r * S + s];
                memcpy(dst, src->t.o_part + (r * S + s) * D, sizeof(float) * (size_t)D);
            }
        }
    free(x->t.o_part);
    free(x->t.lse_part);
    x->t.o_part = o;
    x->t.lse_part = l;
    x->c.num_splits = S2;
    return AC_OK;
}

static int combine_laws(const ac_prop_ctx *ctx, ac_rng *r, char *why, size_t n)
{
    ac_error err;
    ac_error_clear(&err);
    prop_inst one, a, x;
    memset(&one, 0, sizeof one);
    memset(&a, 0, sizeof a);
    memset(&x, 0, sizeof x);
    int32_t *from = NULL;
    int rc = AC_PROP_PASS;

    /* b. One split: the identity. exp(LSE_0 - LSE_0) = 1 exactly, so a
       correct combine returns O_0 and LSE_0 bit for bit, the output in the
       dtype being O_0 rounded once; an empty row gives 0 / -inf. */
    PROP_TRY(combine_case(ctx, r, 1, &one, &err));
    PROP_RUN(prop_exec(ctx, &one, "splits/combine-one", why, n));
    {
        const int32_t D = one.c.head_dim;
        const int64_t rows = one.t.total_q * one.c.heads_q;
        for (int64_t row = 0; row < rows; row++) {
            float lse0 = one.t.lse_part[row];
            int bad = -2;
            if (lse0 == -INFINITY) {
                if (one.o.lse && one.o.lse[row] != -INFINITY) bad = -1;
                for (int32_t d = 0; d < D && bad == -2; d++)
                    if (one.o.o_f32[row * D + d] != 0.0f) bad = d;
            } else {
                if (one.o.lse && memcmp(&one.o.lse[row], &lse0, sizeof lse0) != 0) bad = -1;
                for (int32_t d = 0; d < D && bad == -2; d++) {
                    float want = one.t.o_part[row * D + d];
                    if (memcmp(&one.o.o_f32[row * D + d], &want, sizeof want) != 0 ||
                        one.o.o[row * D + d] != ac_f32_to_half(one.c.dtype, want))
                        bad = d;
                }
            }
            if (bad != -2) {
                char where[96];
                prop_row_name(&one.c, row, where, sizeof where);
                if (bad == -1)
                    snprintf(why, n, "splits/combine-of-one-split-is-the-identity: %s: LSE %.9g, want %.9g", where,
                             (double)one.o.lse[row], (double)lse0);
                else
                    snprintf(why, n, "splits/combine-of-one-split-is-the-identity: %s dim %d: O %.9g (0x%04x), "
                                     "want %.9g",
                             where, bad, (double)one.o.o_f32[row * D + bad], one.o.o[row * D + bad],
                             lse0 == -INFINITY ? 0.0 : (double)one.t.o_part[row * D + bad]);
                prop_why_case(why, n, &one.c);
                rc = AC_PROP_FAIL;
                goto done;
            }
        }
    }

    /* c. The order of the splits does not matter (within the bound). */
    PROP_TRY(combine_case(ctx, r, prop_pick(r, 2, 6), &a, &err));
    PROP_RUN(prop_exec(ctx, &a, "splits/combine", why, n));
    PROP_TRY(prop_inst_model(&a, &err));
    const int32_t S = a.c.num_splits;
    const int64_t rows = a.t.total_q * a.c.heads_q;
    from = malloc(sizeof(int32_t) * (size_t)(rows * (S + 4) + 1));
    if (!from) PROP_TRY(ac_fail(&err, AC_ERR_NOMEM, "splits: out of memory"));
    for (int64_t row = 0; row < rows; row++) prop_shuffle(r, from + row * S, S);
    PROP_TRY(prop_inst_clone(&x, &a, &err));
    PROP_TRY(remap_splits(&x, &a, S, from, &err));
    PROP_RUN(prop_exec(ctx, &x, "splits/combine-permuted", why, n));
    PROP_CHECK(prop_within(&a.c, &a.m, NULL, &a.o, &x.o, NULL, "splits/combine-order-does-not-matter", why, n));
    prop_inst_free(&x);

    /* d. Empty splits (LSE -inf, O_s NaN) anywhere are ignored. */
    {
        const int32_t S2 = S + prop_pick(r, 1, 4);
        for (int64_t row = 0; row < rows; row++) {
            int32_t *f = from + row * S2;
            int32_t s = 0;
            for (int32_t s2 = 0; s2 < S2; s2++) {
                int32_t left_real = S - s, left_slots = S2 - s2;
                f[s2] = (left_real > 0 && (int32_t)ac_rng_below(r, (uint64_t)left_slots) < left_real) ? s++ : -1;
            }
        }
        PROP_TRY(prop_inst_clone(&x, &a, &err));
        PROP_TRY(remap_splits(&x, &a, S2, from, &err));
        PROP_RUN(prop_exec(ctx, &x, "splits/combine-with-empty", why, n));
        PROP_CHECK(prop_within(&a.c, &a.m, NULL, &a.o, &x.o, NULL, "splits/empty-splits-are-ignored", why, n));
    }

done:
    free(from);
    prop_inst_free(&one);
    prop_inst_free(&a);
    prop_inst_free(&x);
    return rc;
}

int prop_splits(const ac_prop_ctx *ctx, char *why, size_t n)
{
    ac_rng r;
    ac_rng_init(&r, ctx->seed, PROP_STREAM);
    if (ctx->op == AC_OP_COMBINE) return combine_laws(ctx, &r, why, n);
    return decode_splits(ctx, &r, why, n);
}
