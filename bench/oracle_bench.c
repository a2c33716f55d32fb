/* oracle_bench: wall time of the oracle on the suite's two reference sizes
 * (goals on a 2-core host: decode <= 2 s, prefill <= 10 s in the fast mode),
 * and of the MPFR mode on a smaller case for comparison.
 * Usage: oracle_bench [--threads N] (0 = one per core). Not a test: prints times. */
#include <stdio.h>
#include <stdlib.h>

#include "ac_args.h"
#include "ac_clock.h"
#include "oracle.h"
#include "tools/oracle_testgen.h"

static int make(ac_case *c, ac_tensors *t, ac_op op, int32_t B, int32_t Hq, int32_t Hkv, int32_t lq, int32_t lk,
                int paged, ac_causal causal)
{
    ac_case_init(c);
    c->op = op;
    c->dtype = AC_BF16;
    c->heads_q = Hq;
    c->heads_kv = Hkv;
    c->head_dim = 128;
    c->causal = causal;
    if (ac_case_set_batch(c, B, NULL)) return -1;
    for (int32_t b = 0; b < B; b++) {
        c->seqlen_q[b] = lq;
        c->seqlen_k[b] = lk;
    }
    if (paged && tg_page(c, 16, 4, 1, 0)) return -1;
    return tg_fill(c, t, 42, (tg_range){-3, 1}, 0);
}

static void time_case(const char *name, ac_op op, int32_t B, int32_t Hq, int32_t Hkv, int32_t lq, int32_t lk,
                      int paged, ac_causal causal, ac_oracle_mode mode, int threads, double goal)
{
    ac_case c;
    ac_tensors t;
    if (make(&c, &t, op, B, Hq, Hkv, lq, lk, paged, causal)) {
        fprintf(stderr, "oracle_bench: out of memory\n");
        return;
    }
    ac_oracle_opts o = {.mode = mode, .threads = threads};
    ac_oracle_result res;
    ac_error err = {0};
    double t0 = ac_now();
    ac_status st = ac_oracle_run(&c, &t, &o, &res, &err);
    double dt = ac_now() - t0;
    char line[256];
    ac_case_line(&c, line, sizeof line);
    if (st)
        printf("%-8s %-5s FAILED %s (%s)\n", name, mode == AC_ORACLE_MPFR ? "mpfr" : "fast", ac_status_name(st),
               err.msg);
    else
        printf("%-8s %-5s %8.3f s  rows %lld%s  | %s\n", name, mode == AC_ORACLE_MPFR ? "mpfr" : "fast", dt,
               (long long)res.rows_checked, goal > 0 ? (dt <= goal ? "  (goal met)" : "  (over goal)") : "", line);
    ac_oracle_result_free(&res);
    ac_tensors_free(&t);
    ac_case_free(&c);
}

int main(int argc, char **argv)
{
    enum { OPT_THREADS = AC_ARGS_LONG };
    static const struct option opts[] = {
        {"threads", required_argument, NULL, OPT_THREADS}, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    int threads = 0;
    ac_args a;
    ac_error err;
    ac_args_init(&a, "oracle_bench", argc, argv, opts);
    for (int c; (c = ac_args_next(&a, &err)) != AC_ARGS_END;) {
        if (c == OPT_THREADS && !ac_arg_int(a.name, optarg, 0, 4096, &threads, &err)) continue;
        if (c == 'h') {
            printf("usage: oracle_bench [--threads N]\n"
                   "Wall time of the oracle on the suite's reference sizes. Not a test: prints times.\n"
                   "  --threads N  oracle threads (0, the default: one per core)\n"
                   "  --help       this text\n");
            return 0;
        }
        return ac_args_fail(&a, &err); /* AC_ARGS_ERROR or a bad --threads: err says what */
    }
    if (optind < argc) return ac_args_failf(&a, "%s: unexpected argument (--threads N)", argv[optind]);
    printf("oracle_bench: threads = %d (0 = one per core)\n", threads);
    time_case("decode", AC_OP_DECODE, 4, 32, 8, 1, 4096, 1, AC_CAUSAL_BOTTOM_RIGHT, AC_ORACLE_FAST, threads, 2.0);
    time_case("prefill", AC_OP_PREFILL, 2, 8, 8, 1024, 1024, 0, AC_CAUSAL_BOTTOM_RIGHT, AC_ORACLE_FAST, threads, 10.0);
    /* The MPFR mode on 1/16 of the decode case (B=1, Hq=8, Hkv=2), and the fast mode on the same. */
    time_case("decode/16", AC_OP_DECODE, 1, 8, 2, 1, 4096, 1, AC_CAUSAL_BOTTOM_RIGHT, AC_ORACLE_MPFR, threads, 0);
    time_case("decode/16", AC_OP_DECODE, 1, 8, 2, 1, 4096, 1, AC_CAUSAL_BOTTOM_RIGHT, AC_ORACLE_FAST, threads, 0);
    return 0;
}
