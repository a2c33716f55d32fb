/* 6. Paging invariance: where a block lives in the pool, whether it is
 * shared, and what the pool holds outside the valid positions cannot change
 * a single output bit; the paged cache gives the contiguous answer. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ac_index.h"
#include "ac_numfmt.h"
#include "prop_props.h"
#include "prop_util.h"

/* Elements of one block of k (rows of D_qk) and of v (rows of D_v). */
static int64_t block_elems_k(const ac_case *c) { return (int64_t)c->block_size * c->heads_kv * c->head_dim; }
static int64_t block_elems_v(const ac_case *c) { return (int64_t)c->block_size * c->heads_kv * ac_case_dv(c); }

/* A fresh KV pool of num_blocks blocks for x (k and v replaced). */
static ac_status new_pool(prop_inst *x, int32_t num_blocks, ac_error *err)
{
    int64_t elems = (int64_t)num_blocks * block_elems_k(&x->c), v_elems = (int64_t)num_blocks * block_elems_v(&x->c);
    uint16_t *k = malloc(sizeof(uint16_t) * (size_t)(elems ? elems : 1));
    uint16_t *v = malloc(sizeof(uint16_t) * (size_t)(v_elems ? v_elems : 1));
    if (!k || !v) {
        free(k);
        free(v);
        return ac_fail(err, AC_ERR_NOMEM, "paging: out of memory for %d blocks", num_blocks);
    }
    free(x->t.k);
    free(x->t.v);
    x->t.k = k;
    x->t.v = v;
    x->t.kv_elems = elems;
    x->t.v_elems = v_elems;
    x->c.num_blocks = num_blocks;
    return AC_OK;
}

/* a. Relabel the physical blocks by a random permutation. */
static ac_status relabel(prop_inst *dst, const prop_inst *src, ac_rng *r, ac_error *err)
{
    ac_status st = prop_inst_clone(dst, src, err);
    if (st) return st;
    int32_t nb = src->c.num_blocks;
    int32_t *perm = malloc(sizeof(int32_t) * (size_t)nb);
    if (!perm) return ac_fail(err, AC_ERR_NOMEM, "paging: out of memory");
    prop_shuffle(r, perm, nb);
    int64_t bk = block_elems_k(&src->c), bv = block_elems_v(&src->c);
    for (int32_t p = 0; p < nb; p++) {
        memcpy(dst->t.k + perm[p] * bk, src->t.k + p * bk, sizeof(uint16_t) * (size_t)bk);
        memcpy(dst->t.v + perm[p] * bv, src->t.v + p * bv, sizeof(uint16_t) * (size_t)bv);
    }
    for (int32_t b = 0; b < src->c.batch; b++) {
        int32_t used = ac_blocks_used(src->c.seqlen_k[b], src->c.block_size);
        int32_t *row = dst->c.block_table + (int64_t)b * dst->c.max_blocks_per_seq;
        for (int32_t i = 0; i < used; i++) row[i] = perm[row[i]];
    }
    free(perm);
    return AC_OK;
}

/* c. Give every sequence its own copy of each block it shares. */
static ac_status unshare(prop_inst *dst, const prop_inst *src, int *shared_count, ac_error *err)
{
    ac_status st = prop_inst_clone(dst, src, err);
    if (st) return st;
    const ac_case *c = &src->c;
    int32_t nb = c->num_blocks;
    uint8_t *seen = calloc((size_t)nb, 1);
    if (!seen) return ac_fail(err, AC_ERR_NOMEM, "paging: out of memory");
    int32_t extra = 0;
    for (int32_t b = 0; b < c->batch; b++) {
        const int32_t *row = c->block_table + (int64_t)b * c->max_blocks_per_seq;
        for (int32_t i = 0; i < ac_blocks_used(c->seqlen_k[b], c->block_size); i++) {
            if (seen[row[i]]) extra++;
            seen[row[i]] = 1;
        }
    }
    *shared_count = extra;
    st = new_pool(dst, nb + extra, err);
    if (st) {
        free(seen);
        return st;
    }
    int64_t bk = block_elems_k(c), bv = block_elems_v(c);
    memcpy(dst->t.k, src->t.k, sizeof(uint16_t) * (size_t)(nb * bk));
    memcpy(dst->t.v, src->t.v, sizeof(uint16_t) * (size_t)(nb * bv));
    memset(seen, 0, (size_t)nb);
    int32_t next = nb;
    for (int32_t b = 0; b < c->batch; b++) {
        int32_t *row = dst->c.block_table + (int64_t)b * c->max_blocks_per_seq;
        for (int32_t i = 0; i < ac_blocks_used(c->seqlen_k[b], c->block_size); i++) {
            int32_t blk = row[i];
            if (!seen[blk]) {
                seen[blk] = 1;
                continue;
            }
            memcpy(dst->t.k + next * bk, src->t.k + blk * bk, sizeof(uint16_t) * (size_t)bk);
            memcpy(dst->t.v + next * bv, src->t.v + blk * bv, sizeof(uint16_t) * (size_t)bv);
            row[i] = next++;
        }
    }
    free(seen);
    return AC_OK;
}

/* The poison of element e in variant 0 (NaN) or 1 (+-Inf and the largest
   finite value, in turn), in x's K/V storage: half bit patterns, or FP8
   codes in the low byte (E4M3 has no Inf: its "Inf" is a NaN code; a half
   NaN pattern's low byte would be a finite FP8 value, read as data). */
static uint16_t poison_elem(const ac_case *c, int variant, int64_t e)
{
    const ac_dtype t = c->dtype;
    const ac_kv_format f = c->kv_format;
    if (variant == 0) return ac_kv_elem_nan(t, f, 0);
    return e % 3 == 0 ? ac_kv_elem_inf(t, f, 0) : e % 3 == 1 ? ac_kv_elem_inf(t, f, 1) : ac_kv_elem_max(t, f, 0);
}

/* d. Poison every slot no sequence reads (variant 0: NaN; 1: +-Inf and
   huge finite values) and every table entry past a sequence's used blocks. */
static void poison(prop_inst *x, int variant, ac_rng *r)
{
    const ac_case *c = &x->c;
    int64_t slots = (int64_t)c->num_blocks * c->block_size;
    int64_t k_row = (int64_t)c->heads_kv * c->head_dim, v_row = (int64_t)c->heads_kv * ac_case_dv(c);
    uint8_t *read = calloc((size_t)(slots ? slots : 1), 1);
    if (!read) return;
    for (int32_t b = 0; b < c->batch; b++)
        for (int32_t p = 0; p < c->seqlen_k[b]; p++)
            read[ac_pos_slot(c->block_table + (int64_t)b * c->max_blocks_per_seq, p, c->block_size)] = 1;
    /* V gets the opposite sign in variant 1. */
    const uint16_t v_flip = variant == 0 ? 0u : c->kv_format == AC_KV_AS_DTYPE ? 0x8000u : 0x80u;
    for (int64_t s = 0; s < slots; s++) {
        if (read[s]) continue;
        for (int64_t e = s * k_row; e < (s + 1) * k_row; e++) x->t.k[e] = poison_elem(c, variant, e);
        for (int64_t e = s * v_row; e < (s + 1) * v_row; e++)
            x->t.v[e] = (uint16_t)(poison_elem(c, variant, e) ^ v_flip);
    }
    free(read);
    static const int32_t garbage[] = {-1, INT32_MIN, INT32_MAX, -7};
    for (int32_t b = 0; b < c->batch; b++) {
        int32_t *tab = x->c.block_table + (int64_t)b * c->max_blocks_per_seq;
        for (int32_t i = ac_blocks_used(c->seqlen_k[b], c->block_size); i < c->max_blocks_per_seq; i++)
            tab[i] = ac_rng_below(r, 5) == 0 ? c->num_blocks + 3 : garbage[ac_rng_below(r, 4)];
    }
}

/* b. The same problem with contiguous K/V (a prefill; a decode case becomes
   the prefill of the same queries). */
static ac_status contiguous_twin(prop_inst *dst, const prop_inst *src, ac_error *err)
{
    memset(dst, 0, sizeof *dst);
    ac_status st = ac_case_copy(&dst->c, &src->c, err);
    if (st) return st;
    dst->c.op = AC_OP_PREFILL;
    dst->c.paged = 0;
    dst->c.num_splits = 1;
    st = prop_gen(dst, err);
    if (st) return st;
    const ac_case *c = &src->c;
    memcpy(dst->t.q, src->t.q, sizeof(uint16_t) * (size_t)(src->t.total_q * c->heads_q * c->head_dim));
    for (int32_t b = 0; b < c->batch; b++)
        for (int32_t p = 0; p < c->seqlen_k[b]; p++)
            for (int32_t h = 0; h < c->heads_kv; h++) {
                int64_t from = prop_kv_offset(c, &src->t, b, p, h), to = prop_kv_offset(&dst->c, &dst->t, b, p, h);
                memcpy(dst->t.k + to, src->t.k + from, sizeof(uint16_t) * (size_t)c->head_dim);
                from = prop_v_offset(c, &src->t, b, p, h);
                to = prop_v_offset(&dst->c, &dst->t, b, p, h);
                memcpy(dst->t.v + to, src->t.v + from, sizeof(uint16_t) * (size_t)ac_case_dv(c));
            }
    return AC_OK;
}

int prop_paging(const ac_prop_ctx *ctx, char *why, size_t n)
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
    if (!a.c.paged) {
        snprintf(why, n, "paging: skipped: the contiguous layout has no pages");
        return AC_PROP_SKIP;
    }
    if (ctx->op == AC_OP_DECODE) a.c.num_splits = prop_pick(&r, 1, 3);
    PROP_TRY(prop_gen(&a, &err));
    PROP_RUN(prop_exec(ctx, &a, "paging", why, n));
    const int64_t rows = a.t.total_q * a.c.heads_q;

    /* a. Relabelled physical blocks: the same bits. */
    PROP_TRY(relabel(&x, &a, &r, &err));
    PROP_RUN(prop_exec(ctx, &x, "paging/relabel", why, n));
    PROP_CHECK(prop_same_bits(&a.c, &a.o, 0, &x.o, 0, rows, "paging/relabelled-blocks-give-the-same-bits", why, n));
    prop_inst_free(&x);

    /* c. Shared prefix blocks, each copied per sequence: the same bits. */
    if (ctx->layout == AC_PROP_PAGED_SHARED) {
        int shared = 0;
        PROP_TRY(unshare(&x, &a, &shared, &err));
        PROP_RUN(prop_exec(ctx, &x, "paging/unshared", why, n));
        PROP_CHECK(prop_same_bits(&a.c, &a.o, 0, &x.o, 0, rows, "paging/sharing-prefix-blocks-changes-nothing", why,
                                  n));
        prop_inst_free(&x);
    }

    /* d. NaN, Inf or huge values in every unread slot, garbage in every
       unread table entry: not one output bit moves. */
    for (int variant = 0; variant < 2; variant++) {
        PROP_TRY(prop_inst_clone(&x, &a, &err));
        poison(&x, variant, &r);
        PROP_RUN(prop_exec(ctx, &x, "paging/poisoned", why, n));
        PROP_CHECK(prop_same_bits(&a.c, &a.o, 0, &x.o, 0, rows,
                                  variant ? "paging/inf-in-unread-slots-and-garbage-table-changes-nothing"
                                          : "paging/nan-in-unread-slots-and-garbage-table-changes-nothing",
                                  why, n));
        prop_inst_free(&x);
    }

    /* b. Paged equals contiguous within the bound. */
    PROP_TRY(prop_inst_model(&a, &err));
    PROP_TRY(contiguous_twin(&x, &a, &err));
    PROP_RUN(prop_exec(ctx, &x, "paging/contiguous", why, n));
    PROP_CHECK(prop_within(&a.c, &a.m, NULL, &a.o, &x.o, NULL, "paging/paged-equals-contiguous", why, n));

done:
    prop_inst_free(&a);
    prop_inst_free(&x);
    return rc;
}
