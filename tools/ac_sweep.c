/* The default check sweep: configuration matrices of each kernel family, as
   issues 3 and 4 list them (dtype x head dim x GQA x causal x layout x block
   size x ragged lengths; decode splits; combine with empty splits; store with
   padding). Lengths are chosen to not be multiples of tiles or blocks. */
#include "ac_sweep.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ac_gen.h"
#include "ac_index.h"

void ac_case_list_free(ac_case_list *l)
{
    for (int32_t i = 0; i < l->n; i++) ac_case_free(&l->cases[i]);
    free(l->cases);
    free(l->group);
    memset(l, 0, sizeof *l);
}

static ac_case *push(ac_case_list *l, const char *group, ac_error *err)
{
    if (l->n == l->cap) {
        int32_t cap = l->cap ? 2 * l->cap : 64;
        ac_case *c = realloc(l->cases, sizeof(ac_case) * (size_t)cap);
        if (!c) return NULL;
        l->cases = c;
        char(*g)[64] = realloc(l->group, sizeof(*g) * (size_t)cap);
        if (!g) return NULL;
        l->group = g;
        l->cap = cap;
    }
    ac_case *c = &l->cases[l->n];
    ac_case_init(c);
    snprintf(l->group[l->n], 64, "%s", group);
    l->n++;
    (void)err;
    return c;
}

static ac_status set_lengths(ac_case *c, int32_t batch, const int32_t *lq, const int32_t *lk, ac_error *err)
{
    ac_status st = ac_case_set_batch(c, batch, err);
    if (st) return st;
    for (int32_t b = 0; b < batch; b++) {
        c->seqlen_q[b] = lq[b];
        c->seqlen_k[b] = lk[b];
    }
    return AC_OK;
}

static const ac_dist dist_cycle[] = {AC_DIST_NORMAL, AC_DIST_NEEDLE, AC_DIST_UNIFORM, AC_DIST_POSCODE,
                                     AC_DIST_LARGE};

/* Ragged length patterns of prefill (B = 3): self-attention, chunked prefill
   (Lk > Lq), Lq > Lk with an empty sequence, and single queries. */
static const int32_t pre_lq[4][3] = {{37, 1, 70}, {16, 1, 33}, {40, 9, 3}, {1, 1, 1}};
static const int32_t pre_lk[4][3] = {{37, 1, 70}, {80, 17, 33}, {7, 0, 3}, {1, 100, 65}};

static ac_status build_prefill(int quick, uint64_t seed, ac_case_list *l, ac_error *err)
{
    static const int32_t dims[] = {64, 128};
    static const int32_t heads[][2] = {{4, 4}, {8, 2}, {16, 2}, {4, 1}};
    static const int32_t blocks[] = {0, 16, 32, 256}; /* 0 = contiguous */
    int idx = 0;
    for (int dt = 0; dt < 2; dt++)
        for (int di = 0; di < 2; di++)
            for (int hi = 0; hi < 4; hi++)
                for (int cm = 0; cm < 3; cm++)
                    for (int bi = 0; bi < 4; bi++, idx++) {
                        if (quick && idx % 8 != 0) continue;
                        char group[64];
                        snprintf(group, sizeof group, "prefill %s D=%d %s", dt ? "fp16" : "bf16", dims[di],
                                 blocks[bi] ? "paged" : "contiguous");
                        ac_case *c = push(l, group, err);
                        if (!c) return ac_fail(err, AC_ERR_NOMEM, "sweep: out of memory");
                        c->op = AC_OP_PREFILL;
                        c->dtype = dt ? AC_FP16 : AC_BF16;
                        c->head_dim = dims[di];
                        c->heads_q = heads[hi][0];
                        c->heads_kv = heads[hi][1];
                        c->causal = (ac_causal)cm;
                        int pat = idx % 4;
                        ac_status st = set_lengths(c, 3, pre_lq[pat], pre_lk[pat], err);
                        if (st) return st;
                        c->mask = idx % 5 == 2 ? AC_MASK_BOOL : idx % 7 == 3 ? AC_MASK_ADDITIVE : AC_MASK_NONE;
                        c->mask_per_head = idx % 2;
                        c->dist = dist_cycle[idx % 5];
                        if (idx % 11 == 4) { c->scale_given = 1; c->scale = idx % 2 ? 0.0f : 0.3f; }
                        c->seed = seed + (uint64_t)idx;
                        if (blocks[bi]) {
                            c->block_size = blocks[bi];
                            c->special = AC_SPECIAL_NAN_SLOTS | AC_SPECIAL_GARBAGE_TABLE;
                            st = ac_case_make_layout(c, idx % 3 == 0 ? AC_LAYOUT_SHARED_PREFIX : AC_LAYOUT_PERMUTED,
                                                     2, err);
                            if (st) return st;
                        }
                    }
    /* Head dims beyond 64/128 and a block size that divides nothing. */
    static const int32_t odd_dims[] = {80, 96, 256};
    static const int32_t odd_blocks[] = {0, 7, 16};
    for (int dt = 0; dt < 2; dt++)
        for (int di = 0; di < 3; di++)
            for (int bi = 0; bi < 3; bi++, idx++) {
                if (quick && idx % 4 != 0) continue;
                ac_case *c = push(l, "prefill odd D / block", err);
                if (!c) return ac_fail(err, AC_ERR_NOMEM, "sweep: out of memory");
                c->op = AC_OP_PREFILL;
                c->dtype = dt ? AC_FP16 : AC_BF16;
                c->head_dim = odd_dims[di];
                c->heads_q = 6;
                c->heads_kv = 2;
                c->causal = (ac_causal)(idx % 3);
                int pat = idx % 4;
                ac_status st = set_lengths(c, 3, pre_lq[pat], pre_lk[pat], err);
                if (st) return st;
                c->mask = idx % 3 == 1 ? AC_MASK_BOOL : AC_MASK_NONE;
                c->dist = dist_cycle[idx % 5];
                c->seed = seed + (uint64_t)idx;
                if (odd_blocks[bi]) {
                    c->block_size = odd_blocks[bi];
                    c->special = AC_SPECIAL_NAN_SLOTS | AC_SPECIAL_GARBAGE_TABLE;
                    st = ac_case_make_layout(c, AC_LAYOUT_PERMUTED, 1, err);
                    if (st) return st;
                }
            }
    /* Small head dims (one or two mma k-steps) with sharp softmaxes (scale up
       to 64) and block size 1: where the layout fuzzer's open finding lives. */
    static const int32_t small_dims[] = {8, 16, 32};
    static const float sharp_scales[] = {64.0f, 8.0f};
    for (int dt = 0; dt < 2; dt++)
        for (int di = 0; di < 3; di++)
            for (int sc = 0; sc < 2; sc++)
                for (int pg = 0; pg < 2; pg++, idx++) {
                    if (quick && idx % 4 != 0) continue;
                    ac_case *c = push(l, "prefill small D, sharp", err);
                    if (!c) return ac_fail(err, AC_ERR_NOMEM, "sweep: out of memory");
                    c->op = AC_OP_PREFILL;
                    c->dtype = dt ? AC_FP16 : AC_BF16;
                    c->head_dim = small_dims[di];
                    c->heads_q = 2;
                    c->heads_kv = 2;
                    c->causal = (ac_causal)(idx % 3);
                    static const int32_t lq[2] = {3, 17}, lk[2] = {12, 40};
                    ac_status st = set_lengths(c, 2, lq, lk, err);
                    if (st) return st;
                    c->scale_given = 1;
                    c->scale = sharp_scales[sc];
                    c->dist = idx % 2 ? AC_DIST_POSCODE : AC_DIST_NORMAL;
                    c->seed = seed + (uint64_t)idx;
                    if (pg) {
                        c->block_size = 1;
                        c->special = AC_SPECIAL_NAN_SLOTS | AC_SPECIAL_GARBAGE_TABLE;
                        st = ac_case_make_layout(c, AC_LAYOUT_PERMUTED, 3, err);
                        if (st) return st;
                    }
                }
    return AC_OK;
}

static ac_status build_decode(int quick, uint64_t seed, ac_case_list *l, ac_error *err)
{
    static const int32_t dims[] = {64, 128};
    static const int32_t heads[][2] = {{8, 8}, {32, 8}, {8, 1}, {16, 4}};
    static const int32_t blocks[] = {16, 32, 256};
    static const int32_t splits[] = {1, 3, 64, 0}; /* 0 = automatic */
    int idx = 0;
    for (int dt = 0; dt < 2; dt++)
        for (int di = 0; di < 2; di++)
            for (int hi = 0; hi < 4; hi++)
                for (int bi = 0; bi < 3; bi++)
                    for (int si = 0; si < 4; si++, idx++) {
                        if (quick && idx % 8 != 0) continue;
                        char group[64];
                        snprintf(group, sizeof group, "decode %s D=%d block=%d", dt ? "fp16" : "bf16", dims[di],
                                 blocks[bi]);
                        ac_case *c = push(l, group, err);
                        if (!c) return ac_fail(err, AC_ERR_NOMEM, "sweep: out of memory");
                        c->op = AC_OP_DECODE;
                        c->dtype = dt ? AC_FP16 : AC_BF16;
                        c->head_dim = dims[di];
                        c->heads_q = heads[hi][0];
                        c->heads_kv = heads[hi][1];
                        c->causal = AC_CAUSAL_BOTTOM_RIGHT;
                        int32_t bs = blocks[bi];
                        int32_t q = idx % 6 == 5 ? 4 : 1; /* speculative decoding: a few queries */
                        int32_t lq[5] = {1, q, q, q, q};
                        int32_t lk[5] = {1, bs - 1 > q ? bs - 1 : q, bs, bs + 1, 300 + idx % 37};
                        ac_status st = set_lengths(c, 5, lq, lk, err);
                        if (st) return st;
                        c->num_splits = splits[si];
                        c->dist = dist_cycle[idx % 5];
                        if (idx % 11 == 4) { c->scale_given = 1; c->scale = 0.0f; }
                        c->seed = seed + (uint64_t)idx;
                        c->block_size = bs;
                        c->special = AC_SPECIAL_NAN_SLOTS | AC_SPECIAL_GARBAGE_TABLE;
                        st = ac_case_make_layout(c, idx % 2 ? AC_LAYOUT_SHARED_PREFIX : AC_LAYOUT_PERMUTED, 3, err);
                        if (st) return st;
                    }
    /* Head dims beyond 64/128, a block size of 7, 8 speculative queries. */
    static const int32_t odd_dims[] = {96, 256};
    for (int dt = 0; dt < 2; dt++)
        for (int di = 0; di < 2; di++)
            for (int si = 0; si < 4; si++, idx++) {
                if (quick && idx % 4 != 0) continue;
                ac_case *c = push(l, "decode odd D / block=7", err);
                if (!c) return ac_fail(err, AC_ERR_NOMEM, "sweep: out of memory");
                c->op = AC_OP_DECODE;
                c->dtype = dt ? AC_FP16 : AC_BF16;
                c->head_dim = odd_dims[di];
                c->heads_q = 12;
                c->heads_kv = 4;
                c->causal = AC_CAUSAL_BOTTOM_RIGHT;
                int32_t q = si == 3 ? 8 : 1;
                int32_t lq[4] = {q, q, q, 1}, lk[4] = {q > 6 ? q : 6, 7, 8, 150};
                ac_status st = set_lengths(c, 4, lq, lk, err);
                if (st) return st;
                c->num_splits = splits[si];
                c->dist = dist_cycle[idx % 5];
                c->seed = seed + (uint64_t)idx;
                c->block_size = 7;
                c->special = AC_SPECIAL_NAN_SLOTS | AC_SPECIAL_GARBAGE_TABLE;
                st = ac_case_make_layout(c, AC_LAYOUT_PERMUTED, 2, err);
                if (st) return st;
            }
    return AC_OK;
}

static ac_status build_combine(int quick, uint64_t seed, ac_case_list *l, ac_error *err)
{
    static const int32_t dims[] = {64, 128};
    static const int32_t splits[] = {1, 2, 5, 17};
    int idx = 0;
    for (int dt = 0; dt < 2; dt++)
        for (int di = 0; di < 2; di++)
            for (int si = 0; si < 4; si++, idx++) {
                if (quick && idx % 3 != 0) continue; /* every split count appears */
                ac_case *c = push(l, "combine", err);
                if (!c) return ac_fail(err, AC_ERR_NOMEM, "sweep: out of memory");
                c->op = AC_OP_COMBINE;
                c->dtype = dt ? AC_FP16 : AC_BF16;
                c->head_dim = dims[di];
                c->heads_q = 4;
                c->heads_kv = 1;
                static const int32_t lq[3] = {1, 2, 3}, lk[3] = {64, 64, 64};
                ac_status st = set_lengths(c, 3, lq, lk, err);
                if (st) return st;
                c->num_splits = splits[si];
                c->special = AC_SPECIAL_NAN_PARTIALS;
                c->seed = seed + (uint64_t)idx;
            }
    return AC_OK;
}

static ac_status build_store(int quick, uint64_t seed, ac_case_list *l, ac_error *err)
{
    static const int32_t dims[] = {64, 128};
    static const int32_t blocks[] = {16, 32, 256};
    int idx = 0;
    for (int dt = 0; dt < 2; dt++)
        for (int di = 0; di < 2; di++)
            for (int bi = 0; bi < 3; bi++)
                for (int wide = 0; wide < 2; wide++, idx++) {
                    if (quick && idx % 4 != 0) continue;
                    ac_case *c = push(l, "store", err);
                    if (!c) return ac_fail(err, AC_ERR_NOMEM, "sweep: out of memory");
                    c->op = AC_OP_STORE;
                    c->dtype = dt ? AC_FP16 : AC_BF16;
                    c->head_dim = dims[di];
                    c->heads_q = 8;
                    c->heads_kv = 2;
                    int32_t bs = blocks[bi];
                    /* Cache lengths after the store; the last `fresh` positions are new. */
                    int32_t lk[3] = {bs + 3, 1, 2 * bs + 5}, lq[3] = {1, 1, 1};
                    int32_t fresh[3] = {5, 1, bs + 2};
                    ac_status st = set_lengths(c, 3, lq, lk, err);
                    if (st) return st;
                    c->block_size = bs;
                    c->special = AC_SPECIAL_NAN_SLOTS;
                    c->seed = seed + (uint64_t)idx;
                    st = ac_case_make_layout(c, AC_LAYOUT_PERMUTED, 2, err);
                    if (st) return st;
                    /* Tokens: each sequence's new positions, with -1 padding between. */
                    int32_t n = 0;
                    for (int b = 0; b < 3; b++) n += fresh[b] + 1;
                    st = ac_case_alloc_slots(c, n, err);
                    if (st) return st;
                    int32_t tok = 0;
                    for (int b = 0; b < 3; b++) {
                        const int32_t *row = c->block_table + (int64_t)b * c->max_blocks_per_seq;
                        for (int32_t p = lk[b] - fresh[b]; p < lk[b]; p++)
                            c->slot_mapping[tok++] = ac_pos_slot(row, p, bs);
                        c->slot_mapping[tok++] = -1;
                    }
                    c->slot_mapping_i64 = wide;
                }
    return AC_OK;
}

ac_status ac_sweep_build(const char *family, int quick, uint64_t seed, ac_case_list *list, ac_error *err)
{
    if (strcmp(family, "prefill") == 0) return build_prefill(quick, seed, list, err);
    if (strcmp(family, "decode") == 0) return build_decode(quick, seed, list, err);
    if (strcmp(family, "combine") == 0) return build_combine(quick, seed, list, err);
    if (strcmp(family, "store") == 0) return build_store(quick, seed, list, err);
    return ac_fail(err, AC_ERR_UNSUPPORTED, "sweep family \"%s\": expected prefill, decode, combine or store",
                   family);
}
