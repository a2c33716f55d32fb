/* A program outside the source tree that uses the installed library: builds
 * one small paged prefill case, checks the CPU model of the kernels against
 * the oracle (ac_check_case), prints the verdict. Exit 0 on a pass.
 * The install_consumer ctest compiles it against the installed tree only,
 * through pkg-config and through find_package(attncheck). */
#include <stdio.h>
#include <string.h>

#include <attncheck/ac_check.h>
#include <attncheck/ac_gen.h>

int main(void)
{
    ac_case c;
    ac_error err;
    ac_case_init(&c);
    c.op = AC_OP_PREFILL;
    c.dtype = AC_BF16;
    c.heads_q = 4;
    c.heads_kv = 2; /* GQA: two query heads per KV head */
    c.head_dim = 64;
    c.causal = AC_CAUSAL_BOTTOM_RIGHT;
    c.dist = AC_DIST_NORMAL;
    c.seed = 7;
    c.block_size = 16;
    if (ac_case_set_batch(&c, 2, &err)) goto fail;
    c.seqlen_q[0] = 5, c.seqlen_k[0] = 21;
    c.seqlen_q[1] = 1, c.seqlen_k[1] = 16;
    if (ac_case_make_layout(&c, AC_LAYOUT_PERMUTED, 1, &err)) goto fail;

    char line[512];
    ac_case_line(&c, line, sizeof line);
    printf("case: %s\n", line);

    ac_check_opts opts;
    memset(&opts, 0, sizeof opts);
    opts.backend = AC_BACKEND_MODEL;
    opts.oracle_threads = 1;
    ac_check_result res;
    memset(&res, 0, sizeof res);
    ac_status st = ac_check_case(&c, &opts, &res);
    if (st) {
        fprintf(stderr, "consumer: %s at %s: %s\n", ac_status_name(st), res.stage ? res.stage : "?", res.error.msg);
        ac_check_result_free(&res);
        ac_case_free(&c);
        return 1;
    }
    printf("verdict (%s): %s\n", ac_backend_name(opts.backend), res.verdict.summary);
    int pass = res.verdict.pass;
    ac_check_result_free(&res);
    ac_case_free(&c);
    return pass ? 0 : 1;
fail:
    fprintf(stderr, "consumer: %s: %s\n", ac_status_name(err.code), err.msg);
    ac_case_free(&c);
    return 1;
}
