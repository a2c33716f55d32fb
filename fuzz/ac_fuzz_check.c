/* One case end to end for the fuzzers: ac_check_case (tools/ac_check.c) with
 * the fuzzers' oracle options (one thread: parallelism comes from fuzzing
 * processes; row sampling) and a tensor hook, and a readable diagnosis. */
#include "ac_fuzz.h"
#include "ac_errpic.h"
#include "ac_family.h"
#include "ac_numfmt.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void ac_fuzz_env_default(ac_fuzz_env *env)
{
    memset(env, 0, sizeof *env);
    env->backend = AC_BACKEND_MODEL;
    env->limits = 1;
    /* 16 sampled (query, head) rows per execution: the oracle is the
       expensive stage; a wrong table entry or split boundary spoils whole
       sequences, so a sample finds it within a few executions, and replay
       then judges every row (docs/FUZZING.md). */
    env->oracle_rows = 16;
    env->oracle_threads = 1;
}

void ac_fuzz_outcome_init(ac_fuzz_outcome *o)
{
    memset(o, 0, sizeof *o);
    ac_casefile_init(&o->file);
}

void ac_fuzz_outcome_free(ac_fuzz_outcome *o)
{
    ac_casefile_free(&o->file);
    memset(o, 0, sizeof *o);
    ac_casefile_init(&o->file);
}

void ac_fuzz_check_opts(const ac_fuzz_env *env, ac_check_opts *o)
{
    memset(o, 0, sizeof *o);
    o->backend = env->backend;
    o->bug = env->bug;
    o->max_rows = env->oracle_rows;
    o->budget_bytes = env->budget_bytes;
    o->budget_macs = env->budget_macs;
    o->oracle_threads = env->oracle_threads;
}

ac_status ac_fuzz_check_case(const ac_case *c, const ac_fuzz_env *env, ac_fuzz_tensor_hook hook, void *ctx,
                             int keep, ac_fuzz_check *r)
{
    ac_check_opts o;
    ac_fuzz_check_opts(env, &o);
    o.keep = keep;
    o.hook = hook;
    o.hook_ctx = ctx;
    return ac_check_case(c, &o, r);
}

/* (sequence, row within it) of query token t, from cu_seqlens_q. */
static void locate(const ac_tensors *t, int32_t batch, int64_t tok, int32_t *seq, int32_t *row)
{
    int32_t lo = 0, hi = batch; /* last b with cu[b] <= tok */
    while (hi - lo > 1) {
        int32_t mid = (lo + hi) / 2;
        if (t->cu_seqlens_q[mid] <= tok) lo = mid;
        else hi = mid;
    }
    *seq = lo;
    *row = (int32_t)(tok - t->cu_seqlens_q[lo]);
}

void ac_fuzz_print_diagnosis(const ac_case *c, const ac_fuzz_check *r, int top, FILE *f)
{
    if (r->status) {
        fprintf(f, "  stopped at %s: %s: %s\n", r->stage ? r->stage : "?", ac_status_name(r->status),
                r->error.msg);
        return;
    }
    ac_verdict_print(&r->verdict, f);
    if (ac_family_judge(c->op) == AC_JUDGE_BITWISE) {
        fprintf(f, "  cache elements differing bitwise from the oracle's: %lld\n", (long long)r->verdict.n_cache_bits);
        return;
    }
    if (!r->err_map || !r->tensors.cu_seqlens_q) return;
    int64_t rows = r->oracle.rows, d = ac_case_dv(c), n = rows * d; /* the output has D_v columns */
    if (n <= 0) return;
    /* Worst elements: a partial selection of the `top` largest r (NaN r,
       i.e. unchecked, skipped; an output NaN shows as +inf r). */
    enum { TOPMAX = 16 };
    if (top > TOPMAX) top = TOPMAX;
    int64_t best[TOPMAX];
    int nb = 0;
    for (int64_t i = 0; i < n; i++) {
        double v = r->err_map[i];
        if (isnan(v)) continue;
        int pos = nb;
        while (pos > 0 && r->err_map[best[pos - 1]] < v) pos--;
        if (pos >= top) continue;
        if (nb < top) nb++;
        memmove(best + pos + 1, best + pos, sizeof(int64_t) * (size_t)(nb - 1 - pos));
        best[pos] = i;
    }
    fprintf(f, "  worst elements (r = |err| / bound; fail when r > 1):\n");
    for (int k = 0; k < nb; k++) {
        int64_t i = best[k], flat = i / d;
        int32_t dim = (int32_t)(i % d), head = (int32_t)(flat % c->heads_q), seq, row;
        locate(&r->tensors, c->batch, flat / c->heads_q, &seq, &row);
        double want = r->oracle.o ? r->oracle.o[i] : NAN;
        double got = NAN;
        if (ac_family_judge(c->op) == AC_JUDGE_BOUND_F32 && r->outputs.o_f32) got = r->outputs.o_f32[i];
        else if (r->outputs.o) got = (double)ac_half_to_f32(c->dtype, r->outputs.o[i]);
        fprintf(f, "    seq %d row %d head %d dim %d: got %.6g want %.6g r = %.3g\n", seq, row, head, dim, got, want,
                r->err_map[i]);
    }
    /* The error map: one character per cell of (row, head) x dim, cells
       downsampled to at most 64 x 32 by their maximum r. */
    int64_t mr = rows < 64 ? rows : 64, md = d < 32 ? d : 32;
    fprintf(f, "  error map: %lld (query row, head) rows x %lld dims in %lld x %lld cells; "
               "' ' unchecked, '.' r<0.01, ':' <0.1, '-' <0.5, '=' <=1, '#' >1 (fail), '!' NaN/Inf\n",
            (long long)rows, (long long)d, (long long)mr, (long long)md);
    for (int64_t y = 0; y < mr; y++) {
        int64_t r0 = y * rows / mr, r1 = (y + 1) * rows / mr;
        char line[40];
        for (int64_t x = 0; x < md; x++) {
            int64_t d0 = x * d / md, d1 = (x + 1) * d / md;
            double worst = -1.0;
            int any = 0;
            for (int64_t rr = r0; rr < r1; rr++)
                for (int64_t dd = d0; dd < d1; dd++) {
                    double v = r->err_map[rr * d + dd];
                    if (isnan(v)) continue;
                    any = 1;
                    if (v > worst || isinf(v)) worst = v;
                }
            line[x] = !any ? ' ' : isinf(worst) ? '!' : worst < 0.01 ? '.' : worst < 0.1 ? ':' : worst < 0.5 ? '-'
                      : worst <= 1.0 ? '=' : '#';
        }
        line[md] = '\0';
        fprintf(f, "    |%s|\n", line);
    }
}

void ac_fuzz_write_pictures(const ac_case *c, const ac_fuzz_check *r, const ac_fuzz_env *env, FILE *log)
{
    if (!env->png_stem || r->status || !r->err_map) return;
    ac_error e;
    if (ac_errpic_write_case(c, r->tensors.cu_seqlens_q, r->oracle.rows, r->err_map, r->oracle.n_allowed,
                             env->png_stem, &e))
        fprintf(log, "pictures: %s: %s\n", ac_status_name(e.code), e.msg);
}
