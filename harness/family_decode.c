/* The decode family: 1..8 queries per sequence at its end against a paged cache, split-KV.
 * Its descriptor (harness/ac_family.h) and the matrix of the default check
 * sweep. Lengths are chosen to not be multiples of tiles or blocks. */
#include <stdio.h>

#include "ac_family.h"
#include "ac_gen.h"
#include "ac_index.h"
#include "ac_sweep.h"

static ac_status sweep_decode(int quick, uint64_t seed, ac_case_list *l, ac_error *err)
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
                        ac_case *c = ac_sweep_push(l, group, err);
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
                        ac_status st = ac_sweep_set_lengths(c, 5, lq, lk, err);
                        if (st) return st;
                        c->num_splits = splits[si];
                        c->dist = ac_sweep_dist_cycle[idx % 5];
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
                ac_case *c = ac_sweep_push(l, "decode odd D / block=7", err);
                if (!c) return ac_fail(err, AC_ERR_NOMEM, "sweep: out of memory");
                c->op = AC_OP_DECODE;
                c->dtype = dt ? AC_FP16 : AC_BF16;
                c->head_dim = odd_dims[di];
                c->heads_q = 12;
                c->heads_kv = 4;
                c->causal = AC_CAUSAL_BOTTOM_RIGHT;
                int32_t q = si == 3 ? 8 : 1;
                int32_t lq[4] = {q, q, q, 1}, lk[4] = {q > 6 ? q : 6, 7, 8, 150};
                ac_status st = ac_sweep_set_lengths(c, 4, lq, lk, err);
                if (st) return st;
                c->num_splits = splits[si];
                c->dist = ac_sweep_dist_cycle[idx % 5];
                c->seed = seed + (uint64_t)idx;
                c->block_size = 7;
                c->special = AC_SPECIAL_NAN_SLOTS | AC_SPECIAL_GARBAGE_TABLE;
                st = ac_case_make_layout(c, AC_LAYOUT_PERMUTED, 2, err);
                if (st) return st;
            }
    /* Windows, softcap, ALiBi and sinks, alone and combined, unsplit, split
       in 3 (a sink must join once, in the final combine) and automatic;
       windows whose edge falls on a block, a tile or a split boundary. */
    static const int32_t feat_splits[] = {1, 3, 0};
    for (int dt = 0; dt < 2; dt++)
        for (int fc = 0; fc < AC_SWEEP_FEATURE_COMBOS; fc++)
            for (int si = 0; si < 3; si++, idx++) {
                if (quick && idx % 4 != 0) continue;
                ac_case *c = ac_sweep_push(l, dt ? "decode features fp16" : "decode features bf16", err);
                if (!c) return ac_fail(err, AC_ERR_NOMEM, "sweep: out of memory");
                c->op = AC_OP_DECODE;
                c->dtype = dt ? AC_FP16 : AC_BF16;
                c->head_dim = idx % 2 ? 128 : 64;
                c->heads_q = 16;
                c->heads_kv = 4;
                c->causal = AC_CAUSAL_BOTTOM_RIGHT;
                int32_t q = idx % 3 == 1 ? 4 : 1;
                int32_t lq[4] = {1, q, q, q}, lk[4] = {1, 17, 64 + q, 300 + idx % 37};
                ac_status st = ac_sweep_set_lengths(c, 4, lq, lk, err);
                if (st) return st;
                c->num_splits = feat_splits[si];
                c->dist = ac_sweep_dist_cycle[idx % 5];
                c->seed = seed + (uint64_t)idx;
                st = ac_sweep_features(c, fc, idx, err);
                if (st) return st;
                c->block_size = idx % 2 ? 32 : 16;
                c->special = AC_SPECIAL_NAN_SLOTS | AC_SPECIAL_GARBAGE_TABLE;
                st = ac_case_make_layout(c, idx % 2 ? AC_LAYOUT_SHARED_PREFIX : AC_LAYOUT_PERMUTED, 3, err);
                if (st) return st;
            }
    return AC_OK;
}

const ac_family ac_family_decode = {
    .op = AC_OP_DECODE,
    .name = "decode",
    .about = "1..8 queries per sequence at its end against a paged cache, split-KV",
    .corpus_dir = "decode",
    .sweep = sweep_decode,
    .judge = AC_JUDGE_BOUND,
    .oracle_arith = 1,
};
