/* 7. Batch invariance and determinism: a sequence's output bits depend on
 * nothing but its own data: not on the other sequences of the batch, not on
 * its place in it, not on the run. (Decode uses a fixed split count: an
 * automatic count that follows the batch size would make the bits follow
 * it too, and that is a choice the caller makes, not a kernel bug.) */
#include <string.h>

#include "prop_props.h"
#include "prop_util.h"

/* dst: the sequences order[0..m) of src, in that order, with their data (the
   same pool for a paged case). */
static ac_status subset(prop_inst *dst, const prop_inst *src, const int32_t *order, int32_t m, ac_error *err)
{
    memset(dst, 0, sizeof *dst);
    const ac_case *c = &src->c;
    ac_status st = ac_case_copy(&dst->c, c, err);
    if (st) return st;
    st = ac_case_set_batch(&dst->c, m, err);
    if (st) return st;
    for (int32_t i = 0; i < m; i++) {
        dst->c.seqlen_q[i] = c->seqlen_q[order[i]];
        dst->c.seqlen_k[i] = c->seqlen_k[order[i]];
    }
    if (c->paged) {
        st = ac_case_alloc_table(&dst->c, c->max_blocks_per_seq, err);
        if (st) return st;
        for (int32_t i = 0; i < m; i++)
            memcpy(dst->c.block_table + (int64_t)i * c->max_blocks_per_seq,
                   c->block_table + (int64_t)order[i] * c->max_blocks_per_seq,
                   sizeof(int32_t) * (size_t)c->max_blocks_per_seq);
    }
    st = prop_gen(dst, err);
    if (st) return st;
    const int64_t qrow = (int64_t)c->heads_q * c->head_dim, kvrow = (int64_t)c->heads_kv * c->head_dim;
    const int64_t vrow = (int64_t)c->heads_kv * ac_case_dv(c);
    for (int32_t i = 0; i < m; i++) {
        int32_t b = order[i];
        memcpy(dst->t.q + dst->t.cu_seqlens_q[i] * qrow, src->t.q + src->t.cu_seqlens_q[b] * qrow,
               sizeof(uint16_t) * (size_t)(c->seqlen_q[b] * qrow));
        if (!c->paged) {
            memcpy(dst->t.k + dst->t.cu_seqlens_k[i] * kvrow, src->t.k + src->t.cu_seqlens_k[b] * kvrow,
                   sizeof(uint16_t) * (size_t)(c->seqlen_k[b] * kvrow));
            memcpy(dst->t.v + dst->t.cu_seqlens_k[i] * vrow, src->t.v + src->t.cu_seqlens_k[b] * vrow,
                   sizeof(uint16_t) * (size_t)(c->seqlen_k[b] * vrow));
        }
    }
    if (c->paged) {
        if (dst->t.kv_elems != src->t.kv_elems || dst->t.v_elems != src->t.v_elems)
            return ac_fail(err, AC_ERR_SHAPE, "batch: pool size mismatch");
        memcpy(dst->t.k, src->t.k, sizeof(uint16_t) * (size_t)src->t.kv_elems);
        memcpy(dst->t.v, src->t.v, sizeof(uint16_t) * (size_t)src->t.v_elems);
    }
    return AC_OK;
}

/* Each sequence order[i] of `whole` has the same bits as sequence i of `part`. */
static int same_sequences(const prop_inst *whole, const prop_inst *part, const int32_t *order, int32_t m,
                          const char *what, char *why, size_t n)
{
    const int32_t Hq = whole->c.heads_q;
    for (int32_t i = 0; i < m; i++) {
        int32_t b = order[i];
        if (prop_same_bits(&whole->c, &whole->o, (int64_t)whole->t.cu_seqlens_q[b] * Hq, &part->o,
                           (int64_t)part->t.cu_seqlens_q[i] * Hq, (int64_t)whole->c.seqlen_q[b] * Hq, what, why, n)) {
            size_t len = strlen(why);
            if (len + 64 < n)
                snprintf(why + len, n - len, " (sequence %d of the batch is sequence %d of the other run)", b, i);
            return 1;
        }
    }
    return 0;
}

int prop_batch(const ac_prop_ctx *ctx, char *why, size_t n)
{
    ac_rng r;
    ac_rng_init(&r, ctx->seed, PROP_STREAM);
    ac_error err;
    ac_error_clear(&err);
    prop_inst a, x;
    memset(&a, 0, sizeof a);
    memset(&x, 0, sizeof x);
    int rc = AC_PROP_PASS;

    PROP_TRY(prop_case_attention(ctx, &r, &a.c, &err));
    if (a.c.batch < 3) { /* three sequences: a middle one has neighbours on both sides */
        int32_t b0 = a.c.batch;
        int32_t lq[3], lk[3];
        for (int32_t b = 0; b < 3; b++) {
            lq[b] = b < b0 ? a.c.seqlen_q[b] : a.c.seqlen_q[0];
            lk[b] = b < b0 ? a.c.seqlen_k[b] : a.c.seqlen_k[0] + 5 * b;
        }
        PROP_TRY(ac_case_set_batch(&a.c, 3, &err));
        memcpy(a.c.seqlen_q, lq, sizeof lq);
        memcpy(a.c.seqlen_k, lk, sizeof lk);
        PROP_TRY(prop_case_place(ctx, &a.c, &r, &err));
    }
    if (ctx->op == AC_OP_DECODE) {
        a.c.num_splits = prop_pick(&r, 1, 3);
        /* Mixed query counts (speculative decoding): one sequence with more
           queries than its neighbours, so a tiling chosen from the batch's
           largest query count would differ from the tiling of a sequence
           run alone. */
        a.c.seqlen_q[0] = 1;
        a.c.seqlen_q[1] = prop_pick(&r, 2, 4);
    }
    PROP_TRY(prop_gen(&a, &err));
    PROP_RUN(prop_exec(ctx, &a, "batch", why, n));

    /* Determinism: a second run, the same bits. */
    PROP_TRY(prop_inst_clone(&x, &a, &err));
    PROP_RUN(prop_exec(ctx, &x, "batch/rerun", why, n));
    PROP_CHECK(prop_same_bits(&a.c, &a.o, 0, &x.o, 0, a.t.total_q * a.c.heads_q, "batch/two-runs-are-bitwise-equal",
                              why, n));
    prop_inst_free(&x);

    /* Each sequence alone. */
    for (int32_t b = 0; b < a.c.batch; b++) {
        PROP_TRY(subset(&x, &a, &b, 1, &err));
        PROP_RUN(prop_exec(ctx, &x, "batch/alone", why, n));
        PROP_CHECK(same_sequences(&a, &x, &b, 1, "batch/sequence-alone-gives-the-same-bits", why, n));
        prop_inst_free(&x);
    }

    /* The batch reversed, with the first sequence twice more: other places,
       other neighbours. */
    {
        int32_t order[8], m = 0;
        for (int32_t b = a.c.batch - 1; b >= 0; b--) order[m++] = b;
        order[m++] = 0;
        order[m++] = a.c.batch - 1;
        PROP_TRY(subset(&x, &a, order, m, &err));
        PROP_RUN(prop_exec(ctx, &x, "batch/reordered", why, n));
        PROP_CHECK(same_sequences(&a, &x, order, m, "batch/place-in-the-batch-changes-nothing", why, n));
    }

done:
    prop_inst_free(&a);
    prop_inst_free(&x);
    return rc;
}
