/* 9. Permutation: without a causal mode or a mask, attention is a function
 * of the set of (key, value) pairs: permuting the keys together with their
 * values moves the result only by summation order (within the bound). */
#include <stdlib.h>
#include <string.h>

#include "ac_index.h"
#include "prop_props.h"
#include "prop_util.h"

int prop_permutation(const ac_prop_ctx *ctx, char *why, size_t n)
{
    ac_rng r;
    ac_rng_init(&r, ctx->seed, PROP_STREAM);
    ac_error err;
    ac_error_clear(&err);
    prop_inst a, x;
    memset(&a, 0, sizeof a);
    memset(&x, 0, sizeof x);
    int32_t *perm = NULL, *uses = NULL;
    int rc = AC_PROP_PASS;

    prop_case_base(ctx, ctx->op, &a.c);
    a.c.causal = AC_CAUSAL_NONE;
    a.c.dist = ac_rng_below(&r, 2) ? AC_DIST_POSCODE : AC_DIST_NORMAL; /* poscode: V says which key it is */
    if (ctx->op == AC_OP_DECODE)
        PROP_TRY(prop_case_lengths(&a.c, &r, prop_pick(&r, 1, 3), 1, 4, 1, 70, &err));
    else
        PROP_TRY(prop_case_lengths(&a.c, &r, prop_pick(&r, 1, 3), 1, 20, 1, 60, &err));
    PROP_TRY(prop_case_place(ctx, &a.c, &r, &err));
    /* Softcap and sinks do not look at positions; windows and ALiBi do. The
       K/V formats move with their rows (codes and scales per KV head). */
    PROP_TRY(prop_case_features(ctx, &a.c, AC_FEAT_SOFTCAP | AC_FEAT_SINKS | AC_FEAT_KV, &err));
    PROP_TRY(prop_gen(&a, &err));
    PROP_RUN(prop_exec(ctx, &a, "permutation", why, n));
    PROP_TRY(prop_inst_model(&a, &err));

    /* Position p of sequence b takes the key and value of position perm[p]. */
    PROP_TRY(prop_inst_clone(&x, &a, &err));
    int32_t max_lk = 1;
    for (int32_t b = 0; b < a.c.batch; b++)
        if (a.c.seqlen_k[b] > max_lk) max_lk = a.c.seqlen_k[b];
    perm = malloc(sizeof(int32_t) * (size_t)max_lk * 3);
    uses = a.c.paged ? calloc((size_t)a.c.num_blocks, sizeof(int32_t)) : NULL;
    if (!perm || (a.c.paged && !uses)) PROP_TRY(ac_fail(&err, AC_ERR_NOMEM, "permutation: out of memory"));
    /* Positions in blocks shared by several sequences stay put (another
       sequence reads them too); the others are shuffled among themselves. */
    if (a.c.paged)
        for (int32_t b = 0; b < a.c.batch; b++)
            for (int32_t i = 0; i < ac_blocks_used(a.c.seqlen_k[b], a.c.block_size); i++)
                uses[a.c.block_table[(int64_t)b * a.c.max_blocks_per_seq + i]]++;
    for (int32_t b = 0; b < a.c.batch; b++) {
        int32_t lk = a.c.seqlen_k[b], movable = 0;
        int32_t *pos = perm + max_lk, *shuf = perm + 2 * max_lk;
        for (int32_t p = 0; p < lk; p++) {
            perm[p] = p;
            int shared = a.c.paged && uses[a.c.block_table[(int64_t)b * a.c.max_blocks_per_seq + p / a.c.block_size]] > 1;
            if (!shared) pos[movable++] = p;
        }
        prop_shuffle(&r, shuf, movable);
        for (int32_t i = 0; i < movable; i++) perm[pos[i]] = pos[shuf[i]];
        for (int32_t p = 0; p < lk; p++)
            for (int32_t h = 0; h < a.c.heads_kv; h++) {
                int64_t to = prop_kv_offset(&x.c, &x.t, b, p, h), from = prop_kv_offset(&a.c, &a.t, b, perm[p], h);
                memcpy(x.t.k + to, a.t.k + from, sizeof(uint16_t) * (size_t)a.c.head_dim);
                to = prop_v_offset(&x.c, &x.t, b, p, h), from = prop_v_offset(&a.c, &a.t, b, perm[p], h);
                memcpy(x.t.v + to, a.t.v + from, sizeof(uint16_t) * (size_t)ac_case_dv(&a.c));
            }
    }
    PROP_RUN(prop_exec(ctx, &x, "permutation/permuted", why, n));
    PROP_TRY(prop_inst_model(&x, &err));
    PROP_CHECK(prop_within(&a.c, &a.m, &x.m, &a.o, &x.o, NULL, "permutation/permuting-keys-with-values-changes-nothing",
                           why, n));

done:
    free(perm);
    free(uses);
    prop_inst_free(&a);
    prop_inst_free(&x);
    return rc;
}
