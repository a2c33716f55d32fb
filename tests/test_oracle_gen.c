/* The oracle on the suite's own data (common/ac_gen.c): every distribution
 * (large logits, needles, position codes), NaN/Inf in unread slots, garbage
 * table entries, shared-prefix layouts, NaN partials of empty splits. FAST
 * and MPFR must agree bit for bit on o_f32 / o_half (zeros by value, see
 * docs/ORACLE.md) and to 1e-15 on LSE, and poscode rows must decode to the
 * weighted mean position the contract implies. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "ac_gen.h"
#include "oracle.h"

static void compare_modes(const ac_case *c, const ac_tensors *t, long *elems)
{
    ac_oracle_opts of = {.mode = AC_ORACLE_FAST}, om = {.mode = AC_ORACLE_MPFR};
    ac_oracle_result rf, rm;
    ac_error err = {0};
    char line[512];
    ac_case_line(c, line, sizeof line);
    cr_assert_eq(ac_oracle_run(c, t, &of, &rf, &err), AC_OK, "%s: %s", line, err.msg);
    cr_assert_eq(ac_oracle_run(c, t, &om, &rm, &err), AC_OK, "%s: %s", line, err.msg);
    int64_t n = rf.rows * rf.head_dim;
    for (int64_t i = 0; i < n; i++) {
        cr_assert(rf.o_f32[i] == rm.o_f32[i], "%s: o_f32[%lld] %a vs %a", line, (long long)i, (double)rf.o_f32[i],
                  (double)rm.o_f32[i]);
        cr_assert(rf.o_half[i] == rm.o_half[i] || ((rf.o_half[i] & 0x7fffu) == 0 && (rm.o_half[i] & 0x7fffu) == 0),
                  "%s: o_half[%lld]", line, (long long)i);
    }
    for (int64_t r = 0; r < rf.rows; r++) {
        cr_assert_eq(rf.n_allowed[r], rm.n_allowed[r]);
        double tol = 1e-15 * fabs(rm.lse[r]) + 0x1p-80 * (rm.logit_abs[r] + 1.0); /* docs/ORACLE.md */
        cr_assert(rf.lse[r] == rm.lse[r] || fabs(rf.lse[r] - rm.lse[r]) <= tol, "%s: lse[%lld]", line, (long long)r);
    }
    *elems += n;
    ac_oracle_result_free(&rf);
    ac_oracle_result_free(&rm);
}

Test(oracle_gen, fast_equals_mpfr_on_generated_data, .timeout = 600)
{
    long cases = 0, elems = 0;
    for (int dist = 0; dist < AC_DIST_COUNT; dist++)
        for (int v = 0; v < 6; v++) {
            ac_case c;
            ac_case_init(&c);
            c.op = v < 3 ? AC_OP_PREFILL : v < 5 ? AC_OP_DECODE : AC_OP_COMBINE;
            c.dtype = v & 1 ? AC_FP16 : AC_BF16;
            c.dist = (ac_dist)dist;
            c.seed = 1000u + (uint64_t)(dist * 10 + v);
            c.heads_q = 4;
            c.heads_kv = v == 2 ? 4 : 2;
            c.head_dim = v == 1 ? 80 : 64;
            c.causal = c.op == AC_OP_DECODE ? AC_CAUSAL_BOTTOM_RIGHT : (ac_causal)(v % 3);
            c.mask = c.op == AC_OP_PREFILL ? (ac_mask_kind)(v % 3) : AC_MASK_NONE;
            c.num_splits = c.op == AC_OP_COMBINE ? 5 : 1;
            c.special = AC_SPECIAL_NAN_SLOTS | AC_SPECIAL_GARBAGE_TABLE | AC_SPECIAL_NAN_PARTIALS;
            cr_assert_eq(ac_case_set_batch(&c, 2, NULL), AC_OK);
            c.seqlen_q[0] = c.op == AC_OP_DECODE ? 1 : 37;
            c.seqlen_q[1] = c.op == AC_OP_DECODE ? 3 : 5;
            c.seqlen_k[0] = 70;
            c.seqlen_k[1] = 129;
            if (c.op != AC_OP_COMBINE && v != 0) {
                c.block_size = v == 4 ? 32 : 16;
                ac_error err = {0};
                cr_assert_eq(ac_case_make_layout(&c, v == 3 ? AC_LAYOUT_SHARED_PREFIX : AC_LAYOUT_PERMUTED, 3, &err),
                             AC_OK, "%s", err.msg);
            }
            ac_tensors t;
            memset(&t, 0, sizeof t);
            ac_error err = {0};
            cr_assert_eq(ac_gen(&c, &t, &err), AC_OK, "%s", err.msg);
            compare_modes(&c, &t, &elems);
            cases++;
            ac_tensors_free(&t);
            ac_case_free(&c);
        }
    cr_log_info("generated data: %ld cases, %ld elements, fast == mpfr", cases, elems);
}
