/* The prefill family: varlen queries against contiguous or paged K/V (chunked prefill, prefix caching).
 * Its descriptor (harness/ac_family.h) and the matrix of the default check
 * sweep. Lengths are chosen to not be multiples of tiles or blocks. */
#include <stdio.h>

#include "ac_family.h"
#include "ac_gen.h"
#include "ac_index.h"
#include "ac_sweep.h"

/* Ragged length patterns of prefill (B = 3): self-attention, chunked prefill
   (Lk > Lq), Lq > Lk with an empty sequence, and single queries. */
static const int32_t pre_lq[4][3] = {{37, 1, 70}, {16, 1, 33}, {40, 9, 3}, {1, 1, 1}};
static const int32_t pre_lk[4][3] = {{37, 1, 70}, {80, 17, 33}, {7, 0, 3}, {1, 100, 65}};

static ac_status sweep_prefill(int quick, uint64_t seed, ac_case_list *l, ac_error *err)
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
                        ac_case *c = ac_sweep_push(l, group, err);
                        if (!c) return ac_fail(err, AC_ERR_NOMEM, "sweep: out of memory");
                        c->op = AC_OP_PREFILL;
                        c->dtype = dt ? AC_FP16 : AC_BF16;
                        c->head_dim = dims[di];
                        c->heads_q = heads[hi][0];
                        c->heads_kv = heads[hi][1];
                        c->causal = (ac_causal)cm;
                        int pat = idx % 4;
                        ac_status st = ac_sweep_set_lengths(c, 3, pre_lq[pat], pre_lk[pat], err);
                        if (st) return st;
                        c->mask = idx % 5 == 2 ? AC_MASK_BOOL : idx % 7 == 3 ? AC_MASK_ADDITIVE : AC_MASK_NONE;
                        c->mask_per_head = idx % 2;
                        c->dist = ac_sweep_dist_cycle[idx % 5];
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
                ac_case *c = ac_sweep_push(l, "prefill odd D / block", err);
                if (!c) return ac_fail(err, AC_ERR_NOMEM, "sweep: out of memory");
                c->op = AC_OP_PREFILL;
                c->dtype = dt ? AC_FP16 : AC_BF16;
                c->head_dim = odd_dims[di];
                c->heads_q = 6;
                c->heads_kv = 2;
                c->causal = (ac_causal)(idx % 3);
                int pat = idx % 4;
                ac_status st = ac_sweep_set_lengths(c, 3, pre_lq[pat], pre_lk[pat], err);
                if (st) return st;
                c->mask = idx % 3 == 1 ? AC_MASK_BOOL : AC_MASK_NONE;
                c->dist = ac_sweep_dist_cycle[idx % 5];
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
                    ac_case *c = ac_sweep_push(l, "prefill small D, sharp", err);
                    if (!c) return ac_fail(err, AC_ERR_NOMEM, "sweep: out of memory");
                    c->op = AC_OP_PREFILL;
                    c->dtype = dt ? AC_FP16 : AC_BF16;
                    c->head_dim = small_dims[di];
                    c->heads_q = 2;
                    c->heads_kv = 2;
                    c->causal = (ac_causal)(idx % 3);
                    static const int32_t lq[2] = {3, 17}, lk[2] = {12, 40};
                    ac_status st = ac_sweep_set_lengths(c, 2, lq, lk, err);
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
    /* Windows, softcap, ALiBi and sinks, alone and combined, over the length
       patterns (Lq > Lk and an empty sequence too), the causal modes,
       contiguous and paged K/V, with and without a mask. */
    for (int dt = 0; dt < 2; dt++)
        for (int fc = 0; fc < AC_SWEEP_FEATURE_COMBOS; fc++)
            for (int pg = 0; pg < 2; pg++, idx++) {
                if (quick && idx % 4 != 0) continue;
                ac_case *c = ac_sweep_push(l, dt ? "prefill features fp16" : "prefill features bf16", err);
                if (!c) return ac_fail(err, AC_ERR_NOMEM, "sweep: out of memory");
                c->op = AC_OP_PREFILL;
                c->dtype = dt ? AC_FP16 : AC_BF16;
                c->head_dim = idx % 2 ? 128 : 64;
                c->heads_q = 8;
                c->heads_kv = 2;
                c->causal = (ac_causal)(idx % 3);
                int pat = idx % 4;
                ac_status st = ac_sweep_set_lengths(c, 3, pre_lq[pat], pre_lk[pat], err);
                if (st) return st;
                c->mask = idx % 5 == 2 ? AC_MASK_BOOL : idx % 5 == 4 ? AC_MASK_ADDITIVE : AC_MASK_NONE;
                c->mask_per_head = idx % 2;
                c->dist = ac_sweep_dist_cycle[idx % 5];
                c->seed = seed + (uint64_t)idx;
                st = ac_sweep_features(c, fc, idx, err);
                if (st) return st;
                if (pg) {
                    c->block_size = 16;
                    c->special = AC_SPECIAL_NAN_SLOTS | AC_SPECIAL_GARBAGE_TABLE;
                    st = ac_case_make_layout(c, idx % 3 == 0 ? AC_LAYOUT_SHARED_PREFIX : AC_LAYOUT_PERMUTED, 2, err);
                    if (st) return st;
                }
            }
    return AC_OK;
}

const ac_family ac_family_prefill = {
    .op = AC_OP_PREFILL,
    .name = "prefill",
    .about = "varlen queries against contiguous or paged K/V (chunked prefill, prefix caching)",
    .corpus_dir = "prefill",
    .sweep = sweep_prefill,
    .judge = AC_JUDGE_BOUND,
    .oracle_arith = 1,
};
