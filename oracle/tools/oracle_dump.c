/* oracle_dump: writes random small cases (every op, causal mode, mask kind,
 * GQA ratio, paging, dtype, scale kind and the features: window, softcap, ALiBi,
 * sinks) with their exact inputs as bit
 * patterns and the oracle's answers, one block per case, for the independent
 * recomputation by tests/mpmath_check.py.
 *   oracle_dump [--cases N] [--mode fast|mpfr] [--seed S]
 * The format is line-oriented, "key value..." per line. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ac_args.h"
#include "ac_numfmt.h"
#include "ac_status.h"
#include "oracle.h"
#include "tools/oracle_testgen.h"

static void put_u16(FILE *f, const char *key, const uint16_t *x, int64_t n)
{
    fprintf(f, "%s", key);
    for (int64_t i = 0; i < n; i++) fprintf(f, " %04x", x[i]);
    fputc('\n', f);
}

static void put_f32(FILE *f, const char *key, const float *x, int64_t n)
{
    fprintf(f, "%s", key);
    for (int64_t i = 0; i < n; i++) fprintf(f, " %08" PRIx32, ac_f32_bits(x[i]));
    fputc('\n', f);
}

static void put_i32(FILE *f, const char *key, const int32_t *x, int64_t n)
{
    fprintf(f, "%s", key);
    for (int64_t i = 0; i < n; i++) fprintf(f, " %" PRId32, x[i]);
    fputc('\n', f);
}

static int dump_case(FILE *f, const ac_case *c, const ac_tensors *t, ac_oracle_mode mode, int base2)
{
    ac_oracle_opts o = {.mode = mode, .lse_base2 = base2, .threads = 1};
    ac_oracle_result res;
    ac_error err = {0};
    char line[512];
    ac_case_line(c, line, sizeof line);
    if (ac_oracle_run(c, t, &o, &res, &err) != AC_OK) {
        fprintf(stderr, "oracle_dump: %s: %s\n", line, err.msg);
        return -1;
    }
    int64_t tq = ac_case_total_q(c), D = ac_case_dv(c); /* the output's dims */
    fprintf(f, "case %s\n", line);
    fprintf(f, "op %s\ndtype %s\ndims %d %d %d %d\n", ac_op_name(c->op), ac_dtype_name(c->dtype), c->batch,
            c->heads_q, c->heads_kv, c->head_dim);
    put_f32(f, "scale", &c->scale, 1);
    fprintf(f, "scale_given %d\ncausal %d\nmask %d %d\nbase2 %d\n", c->scale_given, (int)c->causal, (int)c->mask,
            c->mask_per_head, base2);
    put_i32(f, "lq", c->seqlen_q, c->batch);
    put_i32(f, "lk", c->seqlen_k, c->batch);
    if (c->op == AC_OP_COMBINE) {
        fprintf(f, "splits %d\n", c->num_splits);
        put_f32(f, "lse_part", t->lse_part, tq * c->heads_q * c->num_splits);
        put_f32(f, "o_part", t->o_part, tq * c->heads_q * c->num_splits * D);
    } else {
        fprintf(f, "paged %d %d %d %d\n", c->paged, c->block_size, c->num_blocks, c->max_blocks_per_seq);
        /* The features (docs/CONTRACT.md): only when on; absent means off. */
        if (c->window_left != -1 || c->window_right != -1) fprintf(f, "window %d %d\n", c->window_left, c->window_right);
        if (c->softcap != 0.0f) put_f32(f, "softcap", &c->softcap, 1);
        if (c->n_alibi) put_f32(f, "alibi", c->alibi_slopes, c->n_alibi);
        if (c->n_sinks) put_f32(f, "sinks", c->sinks, c->n_sinks);
        /* The K/V storage (section 13): only when it differs from the default. */
        if (c->head_dim_v && c->head_dim_v != c->head_dim) fprintf(f, "dv %d\n", c->head_dim_v);
        if (c->kv_format != AC_KV_AS_DTYPE) fprintf(f, "kv_format %s\n", ac_kv_format_name(c->kv_format));
        if (c->n_kv_scales) {
            put_f32(f, "k_scales", c->k_scales, c->n_kv_scales);
            put_f32(f, "v_scales", c->v_scales, c->n_kv_scales);
        }
        if (c->paged) put_i32(f, "table", c->block_table, (int64_t)c->batch * c->max_blocks_per_seq);
        put_u16(f, "q", t->q, tq * c->heads_q * c->head_dim);
        put_u16(f, "k", t->k, t->kv_elems);
        put_u16(f, "v", t->v, t->v_elems);
        int64_t hm = c->mask_per_head ? c->heads_q : 1, nm = 0;
        for (int32_t b = 0; b < c->batch; b++) nm += hm * c->seqlen_q[b] * c->seqlen_k[b];
        if (c->mask == AC_MASK_BOOL) {
            fprintf(f, "mask_bool");
            for (int64_t i = 0; i < nm; i++) fprintf(f, " %d", t->mask_bool[i]);
            fputc('\n', f);
        } else if (c->mask == AC_MASK_ADDITIVE) {
            put_f32(f, "mask_bias", t->mask_bias, nm);
        }
    }
    for (int64_t r = 0; r < res.rows; r++) {
        fprintf(f, "row %" PRId64 " %" PRId32 " %a\n", r, res.n_allowed[r], res.lse[r]);
        put_f32(f, "of", res.o_f32 + r * D, D);
        put_u16(f, "oh", res.o_half + r * D, D);
        fprintf(f, "spv");
        for (int64_t d = 0; d < D; d++) fprintf(f, " %a", res.spv[r * D + d]);
        fputc('\n', f);
    }
    fprintf(f, "end\n");
    ac_oracle_result_free(&res);
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: oracle_dump [options]\n"
            "Random small cases with their exact inputs and the oracle's answers, for tests/mpmath_check.py.\n"
            "  --cases N         how many (default 240, 0 to 1000000)\n"
            "  --mode fast|mpfr  the oracle's mode (default fast)\n"
            "  --seed N          default 20240601\n"
            "  --help            this text\n");
}

int main(int argc, char **argv)
{
    enum { OPT_CASES = AC_ARGS_LONG, OPT_MODE, OPT_SEED };
    static const struct option opts[] = {{"cases", required_argument, NULL, OPT_CASES},
                                         {"mode", required_argument, NULL, OPT_MODE},
                                         {"seed", required_argument, NULL, OPT_SEED},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    static const char *const modes[] = {"fast", "mpfr", NULL};
    int cases = 240, mode_k = 0;
    uint64_t seed = 20240601;
    ac_args a;
    ac_error err;
    ac_args_init(&a, "oracle_dump", argc, argv, opts);
    for (int c; (c = ac_args_next(&a, &err)) != AC_ARGS_END;) {
        ac_status st = AC_OK;
        switch (c) {
        case OPT_CASES: st = ac_arg_int(a.name, optarg, 0, 1000000, &cases, &err); break;
        case OPT_MODE: st = ac_arg_choice(a.name, optarg, modes, &mode_k, &err); break;
        case OPT_SEED: st = ac_arg_u64(a.name, optarg, 0, UINT64_MAX, &seed, &err); break;
        case 'h': usage(stdout); return 0;
        default: st = AC_ERR_PARSE; break; /* AC_ARGS_ERROR: err says what */
        }
        if (st) return ac_args_fail(&a, &err);
    }
    if (optind < argc)
        return ac_args_failf(&a, "%s: unexpected argument (--cases N --mode M --seed S)", argv[optind]);
    ac_oracle_mode mode = mode_k ? AC_ORACLE_MPFR : AC_ORACLE_FAST;
    static const ac_op ops[4] = {AC_OP_PREFILL, AC_OP_PREFILL, AC_OP_DECODE, AC_OP_COMBINE};
    for (int i = 0; i < cases; i++) {
        ac_case c;
        ac_tensors t;
        uint64_t s = seed + (uint64_t)i * 104729u;
        /* Every other group of four: the attention cases carry features;
           every third group, the K/V storage features (D_v, FP8) too. */
        if (tg_random_case(ops[i % 4], s, &c, &t) ||
            (ops[i % 4] != AC_OP_COMBINE && (i / 4) % 2 == 1 && tg_random_features(&c, s ^ 0x5eed)) ||
            (ops[i % 4] != AC_OP_COMBINE && (i / 4) % 3 == 2 && tg_random_kv(&c, &t, s ^ 0xf8f8))) {
            fprintf(stderr, "oracle_dump: out of memory\n");
            return 1;
        }
        int rc = dump_case(stdout, &c, &t, mode, (int)(s % 5 == 0));
        ac_tensors_free(&t);
        ac_case_free(&c);
        if (rc) return 1;
    }
    return 0;
}
