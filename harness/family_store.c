/* The store family: new K/V written into the paged cache through a slot mapping (-1 = padding).
 * Its descriptor (harness/ac_family.h) and the matrix of the default check
 * sweep. Lengths are chosen to not be multiples of tiles or blocks. */
#include <stdio.h>

#include "ac_family.h"
#include "ac_gen.h"
#include "ac_index.h"
#include "ac_sweep.h"

static ac_status sweep_store(int quick, uint64_t seed, ac_case_list *l, ac_error *err)
{
    static const int32_t dims[] = {64, 128};
    static const int32_t blocks[] = {16, 32, 256};
    int idx = 0;
    for (int dt = 0; dt < 2; dt++)
        for (int di = 0; di < 2; di++)
            for (int bi = 0; bi < 3; bi++)
                for (int wide = 0; wide < 2; wide++, idx++) {
                    if (quick && idx % 4 != 0) continue;
                    ac_case *c = ac_sweep_push(l, "store", err);
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
                    ac_status st = ac_sweep_set_lengths(c, 3, lq, lk, err);
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

const ac_family ac_family_store = {
    .op = AC_OP_STORE,
    .name = "store",
    .about = "new K/V written into the paged cache through a slot mapping (-1 = padding)",
    .corpus_dir = "store",
    .sweep = sweep_store,
    .judge = AC_JUDGE_BITWISE,
    .oracle_arith = 0,
};
