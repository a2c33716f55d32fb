/* The combine family: merge of fp32 split partials (O_s, LSE_s) into one output and LSE.
 * Its descriptor (harness/ac_family.h) and the matrix of the default check
 * sweep. Lengths are chosen to not be multiples of tiles or blocks. */
#include <stdio.h>

#include "ac_family.h"
#include "ac_gen.h"
#include "ac_index.h"
#include "ac_sweep.h"

static ac_status sweep_combine(int quick, uint64_t seed, ac_case_list *l, ac_error *err)
{
    static const int32_t dims[] = {64, 128};
    static const int32_t splits[] = {1, 2, 5, 17};
    int idx = 0;
    for (int dt = 0; dt < 2; dt++)
        for (int di = 0; di < 2; di++)
            for (int si = 0; si < 4; si++, idx++) {
                if (quick && idx % 3 != 0) continue; /* every split count appears */
                ac_case *c = ac_sweep_push(l, "combine", err);
                if (!c) return ac_fail(err, AC_ERR_NOMEM, "sweep: out of memory");
                c->op = AC_OP_COMBINE;
                c->dtype = dt ? AC_FP16 : AC_BF16;
                c->head_dim = dims[di];
                c->heads_q = 4;
                c->heads_kv = 1;
                static const int32_t lq[3] = {1, 2, 3}, lk[3] = {64, 64, 64};
                ac_status st = ac_sweep_set_lengths(c, 3, lq, lk, err);
                if (st) return st;
                c->num_splits = splits[si];
                c->special = AC_SPECIAL_NAN_PARTIALS;
                c->seed = seed + (uint64_t)idx;
            }
    return AC_OK;
}

const ac_family ac_family_combine = {
    .op = AC_OP_COMBINE,
    .name = "combine",
    .about = "merge of fp32 split partials (O_s, LSE_s) into one output and LSE",
    .corpus_dir = "combine",
    .sweep = sweep_combine,
    .judge = AC_JUDGE_BOUND_F32,
    .oracle_arith = 1,
};
