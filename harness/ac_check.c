#include "ac_check.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ac_gen.h"

void ac_check_result_free(ac_check_result *r)
{
    ac_tensors_free(&r->tensors);
    ac_outputs_free(&r->outputs);
    ac_oracle_result_free(&r->oracle);
    free(r->err_map);
    memset(r, 0, sizeof *r);
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
        r->stage = "gen";
        st = ac_gen(c, &t, err);
    }
    if (!st && opts->hook) {
        r->stage = "hook";
        st = opts->hook(c, &t, opts->hook_ctx, err);
    }
    if (!st) {
        r->stage = "kernel";
        ac_run_opts ro = {opts->bug, c->op == AC_OP_COMBINE};
        double t0 = ac_now();
        st = ac_backend_run(opts->backend, c, &t, &ro, &out, err);
        r->seconds_kernel = ac_now() - t0;
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
        st = ac_oracle_run(c, &t, &oo, &res, err);
        r->seconds_oracle = ac_now() - t0;
    }
    int have_ref = 0;
    if (!st && opts->with_ref && c->op != AC_OP_STORE) {
        ac_error e2;
        have_ref = ac_ref32(c, &t, &ref, &e2) == AC_OK;
    }
    if (!st && c->op != AC_OP_STORE) {
        map = malloc(sizeof(double) * (size_t)(res.rows * c->head_dim + 1));
        if (!map) st = ac_fail(err, AC_ERR_NOMEM, "error map: out of memory");
    }
    if (!st) {
        r->stage = "verdict";
        st = ac_verdict_judge(c, &t, &res, &out, have_ref ? &ref : NULL, NULL, &r->verdict, map, err);
    }
    r->status = st;
    ac_outputs_free(&ref);
    if (opts->keep) {
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
