#include "ac_check.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ac_big.h"
#include "ac_family.h"
#include "ac_gen.h"
#include "ac_sparse.h"

void ac_check_result_free(ac_check_result *r)
{
    ac_tensors_free(&r->tensors);
    ac_outputs_free(&r->outputs);
    ac_oracle_result_free(&r->oracle);
    free(r->err_map);
    memset(r, 0, sizeof *r);
}

ac_status ac_check_budget(const ac_case *c, const ac_check_opts *opts, ac_error *err)
{
    ac_case_cost cost;
    ac_case_cost_of(c, &cost);
    int64_t max_bytes = opts->budget_bytes ? opts->budget_bytes : AC_BUDGET_BYTES;
    int64_t max_macs = opts->budget_macs ? opts->budget_macs : AC_BUDGET_ORACLE_MACS;
    int64_t macs = cost.oracle_macs;
    /* Row sampling evaluates max_rows of the rows: the work shrinks with it. */
    if (opts->max_rows > 0 && cost.rows > opts->max_rows && !cost.overflow)
        macs = (int64_t)((double)macs * ((double)opts->max_rows / (double)cost.rows));
    if (max_bytes > 0 && (cost.overflow || cost.bytes > max_bytes))
        return ac_fail(err, AC_ERR_BUDGET, "the case needs %s%lld bytes of host memory, over the budget of %lld "
                       "(--max-memory BYTES raises it)", cost.overflow ? "more than " : "",
                       (long long)cost.bytes, (long long)max_bytes);
    if (max_macs > 0 && macs > max_macs)
        return ac_fail(err, AC_ERR_BUDGET, "the oracle would do %lld multiply-adds for %lld rows, over the budget "
                       "of %lld (--max-oracle-work N raises it; --rows N samples N rows)", (long long)macs,
                       (long long)cost.rows, (long long)max_macs);
    /* The CPU models compute every row whatever the oracle samples: the
       same work in fp32, a few times faster per operation than the oracle. */
    if (max_macs > 0 && opts->backend == AC_BACKEND_MODEL && (cost.overflow || cost.oracle_macs / 4 > max_macs))
        return ac_fail(err, AC_ERR_BUDGET, "the CPU model would do %lld multiply-adds for all %lld rows, over four "
                       "times the budget of %lld (--max-oracle-work N raises it; a GPU backend runs it fast)",
                       (long long)cost.oracle_macs, (long long)cost.rows, (long long)max_macs);
    return AC_OK;
}

ac_status ac_check_case(const ac_case *c, const ac_check_opts *opts, ac_check_result *r)
{
    memset(r, 0, sizeof *r);
    ac_error *err = &r->error;
    ac_tensors t;
    ac_outputs out, ref;
    ac_oracle_result res;
    memset(&t, 0, sizeof t);
    memset(&out, 0, sizeof out);
    memset(&ref, 0, sizeof ref);
    memset(&res, 0, sizeof res);
    double *map = NULL;
    r->stage = "validate";
    ac_status st = ac_case_validate(c, err);
    if (!st) {
        r->stage = "budget";
        st = ac_check_budget(c, opts, err);
    }
    if (!st) {
        r->stage = "gen";
        st = ac_gen(c, &t, err);
    }
    if (!st && opts->hook) {
        r->stage = "hook";
        st = opts->hook(c, &t, opts->hook_ctx, err);
    }
    if (!st) {
        r->stage = "kernel";
        ac_run_opts ro = {opts->bug, ac_family_judge(c->op) == AC_JUDGE_BOUND_F32};
        double t0 = ac_now();
        st = ac_backend_run(opts->backend, c, &t, &ro, &out, err);
        r->seconds_kernel = ac_now() - t0;
    }
    /* A sparse case is judged on its sequences with keys (harness/ac_sparse.h). */
    ac_sparse_judged sj;
    memset(&sj, 0, sizeof sj);
    const ac_case *jc = c;
    const ac_tensors *jt = &t;
    const ac_outputs *jo = &out;
    int sparse = !st && ac_case_is_sparse(c) && ac_family_judge(c->op) != AC_JUDGE_BITWISE;
    if (sparse) {
        r->stage = "gather";
        st = ac_sparse_gather(c, &t, &out, &sj, err);
        if (!st) jc = &sj.c, jt = &sj.t, jo = &sj.out;
    }
    if (!st) {
        r->stage = "oracle";
        ac_oracle_opts oo;
        memset(&oo, 0, sizeof oo);
        oo.mode = AC_ORACLE_FAST;
        oo.max_rows = opts->max_rows;
        oo.sample_seed = c->seed ^ 0x9e3779b97f4a7c15ull;
        oo.threads = opts->oracle_threads;
        double t0 = ac_now();
        st = ac_oracle_run(jc, jt, &oo, &res, err);
        r->seconds_oracle = ac_now() - t0;
    }
    int have_ref = 0;
    int bitwise = ac_family_judge(c->op) == AC_JUDGE_BITWISE; /* no reference, no error map */
    if (!st && opts->with_ref && !bitwise) {
        ac_error e2;
        have_ref = ac_ref32(jc, jt, &ref, &e2) == AC_OK;
    }
    if (!st && !bitwise) {
        map = malloc(sizeof(double) * (size_t)(res.rows * ac_case_dv(c) + 1)); /* out has D_v columns */
        if (!map) st = ac_fail(err, AC_ERR_NOMEM, "error map: out of memory");
    }
    if (!st) {
        r->stage = "verdict";
        /* A backend whose kernel returns no LSE leaves outputs.lse NULL (ac_backend.h): O alone is judged. */
        ac_verdict_opts vo = {0, 0, jo->lse == NULL};
        st = ac_verdict_judge(jc, jt, &res, jo, have_ref ? &ref : NULL, &vo, &r->verdict, map, err);
        if (!st && sparse) {
            ac_sparse_unmap(&sj, &r->verdict.r_where, c->heads_q);
            ac_sparse_unmap(&sj, &r->verdict.lse_where, c->heads_q);
            ac_sparse_fold(&sj, &r->verdict);
        }
    }
    ac_sparse_free(&sj);
    r->status = st;
    ac_outputs_free(&ref);
    if (opts->keep && !sparse) { /* a sparse case's maps belong to its judged case: not kept */
        r->tensors = t;
        r->outputs = out;
        r->oracle = res;
        r->err_map = map;
    } else {
        ac_tensors_free(&t);
        ac_outputs_free(&out);
        ac_oracle_result_free(&res);
        free(map);
    }
    return st;
}

int ac_check_poison_blame(const ac_case *c, const ac_check_opts *opts, const ac_verdict *v, char *why, size_t n)
{
    const uint32_t poison = AC_SPECIAL_NAN_SLOTS | AC_SPECIAL_INF_SLOTS;
    if (n) why[0] = 0;
    if (!c->paged || !(c->special & poison) || !v || v->n_bad_nan == 0 || ac_case_is_sparse(c)) return 0;
    ac_case twin;
    ac_error err;
    if (ac_case_copy(&twin, c, &err) != AC_OK) return 0;
    twin.special &= ~poison;
    ac_check_opts o = *opts;
    o.keep = 0;
    o.with_ref = 0;
    o.hook = NULL; /* a hook's edits belong to the first run's data */
    o.hook_ctx = NULL;
    ac_check_result r;
    ac_status st = ac_check_case(&twin, &o, &r);
    int blamed = st == AC_OK && r.verdict.pass;
    if (st != AC_OK)
        snprintf(why, n, "poisoned slots: the same case with its unused slots finite did not run (%s)", r.error.msg);
    else if (blamed)
        snprintf(why, n, "poisoned slots: matches unused_slots_read: with its unused slots finite the same case passes "
                 "(%s); the %s they hold reached the output (a zero weight times an excluded slot, or a mask "
                 "applied after the read)", r.verdict.summary,
                 (c->special & poison) == poison ? "NaN and Inf" : c->special & AC_SPECIAL_NAN_SLOTS ? "NaN" : "Inf");
    else
        snprintf(why, n, "poisoned slots: not the cause: with its unused slots finite the same case fails too (%s)",
                 r.verdict.summary);
    ac_check_result_free(&r);
    ac_case_free(&twin);
    return blamed;
}
