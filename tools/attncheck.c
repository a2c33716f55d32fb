/* attncheck: the command line.
 *   attncheck run   [options] [FAMILY...]   the oracle's self-check, then the default
 *                                           check sweep (all families)
 *   attncheck sweep FAMILY [options]        one family's matrix (what ctest runs)
 *   attncheck e2e [options]                 store a prompt, then store + decode steps
 *   attncheck selftest [options]            inject classic bugs into the CPU models and
 *                                           show which checks catch them
 *   attncheck describe FILE...              print case files readably
 * Options: --backend auto|gpu|cpu  --quick  --seed N  --tsv FILE  --verbose  --png DIR
 * Exit: 0 all passed, 1 a check failed, 2 usage or input error,
 *       77 (skipped) when --backend gpu finds no CUDA device. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ac_casefile.h"
#include "ac_check.h"
#include "ac_e2e.h"
#include "ac_errpic.h"
#include "ac_fuzzcli.h"
#include "ac_selftest.h"
#include "ac_gen.h"
#include "ac_family.h"
#include "ac_sweep.h"

#define EXIT_SKIP 77

typedef struct cli_opts {
    ac_backend backend;
    int backend_auto;
    int quick, verbose;
    uint64_t seed;
    const char *tsv;
    ac_bug bug;          /* --bug NAME: inject a classic bug into the CPU models */
    const char *png;     /* --png DIR: pictures of failing cases' error maps */
} cli_opts;

static void usage(FILE *f)
{
    fprintf(f,
            "usage: attncheck run [--backend auto|gpu|cpu] [--quick] [--seed N] [--tsv FILE] [--bug NAME] [--png DIR] [FAMILY...]\n"
            "       attncheck sweep FAMILY [same options]\n"
            "       attncheck e2e [--backend auto|gpu|cpu] [--quick] [--seed N]\n"
            "       attncheck selftest [--cases N] [--seed N] [--bug NAME] [--verbose]\n"
            "       attncheck describe FILE...\n"
            "FAMILY: prefill decode combine store\n");
}

/* Parses options in argv[from..]; leaves positional arguments in pos[]. */
static int parse_opts(int argc, char **argv, int from, cli_opts *o, const char **pos, int *npos)
{
    o->backend = AC_BACKEND_MODEL;
    o->backend_auto = 1;
    o->quick = o->verbose = 0;
    o->seed = 1;
    o->tsv = NULL;
    o->bug = AC_BUG_NONE;
    o->png = NULL;
    *npos = 0;
    for (int i = from; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--backend") && i + 1 < argc) {
            const char *b = argv[++i];
            o->backend_auto = !strcmp(b, "auto");
            if (!strcmp(b, "gpu")) o->backend = AC_BACKEND_GPU;
            else if (!strcmp(b, "cpu")) o->backend = AC_BACKEND_MODEL;
            else if (!o->backend_auto) { fprintf(stderr, "attncheck: --backend %s: expected auto, gpu or cpu\n", b); return -1; }
        } else if (!strcmp(a, "--quick")) o->quick = 1;
        else if (!strcmp(a, "--verbose")) o->verbose = 1;
        else if (!strcmp(a, "--seed") && i + 1 < argc) o->seed = strtoull(argv[++i], NULL, 0);
        else if (!strcmp(a, "--tsv") && i + 1 < argc) o->tsv = argv[++i];
        else if (!strcmp(a, "--png") && i + 1 < argc) o->png = argv[++i];
        else if (!strcmp(a, "--bug") && i + 1 < argc) {
            const char *name = argv[++i];
            int found = 0;
            for (int b = 1; b < AC_BUG_COUNT; b++)
                if (!strcmp(name, ac_bug_name((ac_bug)b))) { o->bug = (ac_bug)b; found = 1; }
            if (!found) {
                fprintf(stderr, "attncheck: --bug %s: unknown; one of:", name);
                for (int b = 1; b < AC_BUG_COUNT; b++) fprintf(stderr, " %s", ac_bug_name((ac_bug)b));
                fprintf(stderr, "\n");
                return -1;
            }
        }
        else if (a[0] == '-') { fprintf(stderr, "attncheck: unknown option %s\n", a); return -1; }
        else pos[(*npos)++] = a;
    }
    if (o->backend_auto) o->backend = ac_gpu_available() ? AC_BACKEND_GPU : AC_BACKEND_MODEL;
    return 0;
}

/* ---- per-group statistics for the summary table ---- */
typedef struct group_stat {
    char name[64];
    int cases, passed, errors;
    double r_max, lse_max, ratio_max, oracle_s, kernel_s;
    int64_t ulp_max;
} group_stat;

static group_stat *stat_for(group_stat *g, int *ng, const char *name)
{
    for (int i = 0; i < *ng; i++)
        if (!strcmp(g[i].name, name)) return &g[i];
    group_stat *s = &g[(*ng)++];
    memset(s, 0, sizeof *s);
    snprintf(s->name, sizeof s->name, "%s", name);
    return s;
}

static void print_table(const group_stat *g, int ng, FILE *f)
{
    fprintf(f, "\n%-34s %6s %6s %9s %9s %6s %8s %8s\n", "group", "cases", "pass", "worst r", "worst lse", "ulp",
            "ratio", "oracle s");
    for (int i = 0; i < ng; i++)
        fprintf(f, "%-34s %6d %6d %9.3g %9.3g %6lld %8.3g %8.1f\n", g[i].name, g[i].cases, g[i].passed, g[i].r_max,
                g[i].lse_max, (long long)g[i].ulp_max, g[i].ratio_max, g[i].oracle_s);
}

/* Runs every case of the listed families; returns the process exit code. */
static int run_families(const char **fam, int nfam, const cli_opts *o)
{
    if (o->backend == AC_BACKEND_GPU && !ac_gpu_available()) {
        printf("attncheck: no CUDA device: GPU checks skipped\n");
        return EXIT_SKIP;
    }
    ac_case_list list;
    memset(&list, 0, sizeof list);
    ac_error err;
    for (int i = 0; i < nfam; i++)
        if (ac_sweep_build(fam[i], o->quick, o->seed, &list, &err)) {
            fprintf(stderr, "attncheck: %s\n", err.msg);
            ac_case_list_free(&list);
            return 2;
        }
    FILE *tsv = o->tsv ? fopen(o->tsv, "w") : NULL;
    if (o->tsv && !tsv) fprintf(stderr, "attncheck: cannot write %s\n", o->tsv);
    if (tsv) fprintf(tsv, "group\tpass\tr\tlse_r\tulp\tratio\tcase\n");
    printf("attncheck: %d cases on the %s%s%s%s\n", list.n, ac_backend_name(o->backend),
           o->backend == AC_BACKEND_MODEL ? " (CPU model of the kernels: no GPU used)" : " (CUDA kernels)",
           o->bug ? ", injected bug: " : "", o->bug ? ac_bug_name(o->bug) : "");
    group_stat *groups = calloc((size_t)list.n + 1, sizeof *groups);
    int ng = 0, failed = 0, tty = isatty(2);
    double t0 = ac_now(), last = t0;
    for (int32_t i = 0; i < list.n; i++) {
        const ac_case *c = &list.cases[i];
        char line[512];
        ac_case_line(c, line, sizeof line);
        ac_check_opts co;
        memset(&co, 0, sizeof co);
        co.backend = o->backend;
        co.bug = o->bug;
        co.with_ref = 1;
        co.keep = o->png != NULL;
        ac_check_result r;
        ac_status st = ac_check_case(c, &co, &r);
        group_stat *g = stat_for(groups, &ng, list.group[i]);
        g->cases++;
        int ok = st == AC_OK && r.verdict.pass;
        if (st) g->errors++;
        if (ok) g->passed++;
        else failed++;
        if (st == AC_OK) {
            const ac_verdict *v = &r.verdict;
            g->r_max = fmax(g->r_max, v->r_max);
            g->lse_max = fmax(g->lse_max, v->r_lse_max);
            g->ratio_max = fmax(g->ratio_max, v->ratio_vs_ref);
            if (v->max_ulp > g->ulp_max) g->ulp_max = v->max_ulp;
        }
        g->oracle_s += r.seconds_oracle;
        g->kernel_s += r.seconds_kernel;
        if (!ok || o->verbose)
            printf("%s %s\n  %s\n", ok ? "ok  " : "FAIL", line,
                   st ? r.error.msg : r.verdict.summary);
        if (o->png && !ok && st == AC_OK) { /* DIR/case0042-prefill-heat.png and -rows.png */
            char stem[4096];
            ac_error pe;
            snprintf(stem, sizeof stem, "%s/case%04d-%s", o->png, (int)i, ac_op_name(c->op));
            if (ac_errpic_mkdirs(o->png, &pe) || ac_errpic_write_case(c, r.tensors.cu_seqlens_q, r.oracle.rows, r.err_map, stem, &pe))
                printf("  pictures: %s\n", pe.msg);
            else
                printf("  pictures: %s-heat.png %s-rows.png\n", stem, stem);
        }
        if (tsv)
            fprintf(tsv, "%s\t%d\t%.6g\t%.6g\t%lld\t%.4g\t%s\n", list.group[i], ok, st ? INFINITY : r.verdict.r_max,
                    st ? INFINITY : r.verdict.r_lse_max, (long long)r.verdict.max_ulp, r.verdict.ratio_vs_ref, line);
        double now = ac_now();
        if (tty) fprintf(stderr, "\r[%4d/%4d] %d failed, %.0f s  ", i + 1, list.n, failed, now - t0);
        else if (now - last > 10.0 || i + 1 == list.n) {
            fprintf(stderr, "[%4d/%4d] %d failed, %.0f s\n", i + 1, list.n, failed, now - t0);
            last = now;
        }
        ac_check_result_free(&r);
    }
    if (tty) fprintf(stderr, "\n");
    print_table(groups, ng, stdout);
    printf("\n%d passed, %d failed\n", list.n - failed, failed);
    if (tsv) fclose(tsv);
    free(groups);
    ac_case_list_free(&list);
    return failed ? 1 : 0;
}

/* The oracle checks itself: its fast path (double-double sums) against its
   MPFR path on a slice of the sweep. Both must round to the same outputs. */
static int oracle_selfcheck(int quick, uint64_t seed)
{
    ac_case_list list;
    memset(&list, 0, sizeof list);
    ac_error err;
    for (int i = 0; i < AC_OP_COUNT; i++)
        if (ac_families()[i]->oracle_arith && ac_families()[i]->sweep(1, seed, &list, &err)) {
            fprintf(stderr, "attncheck: %s\n", err.msg);
            ac_case_list_free(&list);
            return 2;
        }
    int stride = quick ? 6 : 2, n = 0, bad = 0;
    int64_t elems = 0;
    double t0 = ac_now();
    for (int32_t i = 0; i < list.n; i += stride, n++) {
        const ac_case *c = &list.cases[i];
        ac_tensors t;
        ac_oracle_result a, b;
        memset(&a, 0, sizeof a);
        memset(&b, 0, sizeof b);
        ac_oracle_opts oo;
        memset(&oo, 0, sizeof oo);
        int ok = ac_gen(c, &t, &err) == AC_OK;
        ok = ok && ac_oracle_run(c, &t, &oo, &a, &err) == AC_OK;
        oo.mode = AC_ORACLE_MPFR;
        ok = ok && ac_oracle_run(c, &t, &oo, &b, &err) == AC_OK;
        for (int64_t e = 0; ok && e < a.rows * c->head_dim; e++) {
            elems++;
            /* zeros compare by value: the fast path's weights may underflow to +0 */
            if (a.o_f32[e] != b.o_f32[e] && !(isnan(a.o_f32[e]) && isnan(b.o_f32[e]))) ok = 0;
            if (a.o_half[e] != b.o_half[e] && ((a.o_half[e] | b.o_half[e]) & 0x7fff)) ok = 0;
        }
        for (int64_t r = 0; ok && r < a.rows; r++)
            if (!(a.lse[r] == b.lse[r] || fabs(a.lse[r] - b.lse[r]) <= 1e-15 * fabs(b.lse[r]))) ok = 0;
        if (!ok) {
            char line[512];
            ac_case_line(c, line, sizeof line);
            printf("FAIL oracle self-check: %s\n", line);
            bad++;
        }
        if (isatty(2)) /* a log gets the summary line only */
            fprintf(stderr, "\r[oracle self-check %3d] fast == mpfr on %lld elements, %d disagree  ", n + 1,
                    (long long)elems, bad);
        ac_tensors_free(&t);
        ac_oracle_result_free(&a);
        ac_oracle_result_free(&b);
    }
    if (isatty(2)) fprintf(stderr, "\n");
    printf("oracle self-check: %d cases, %lld elements: fast and MPFR paths %s (%.1f s)\n", n, (long long)elems,
           bad ? "DISAGREE" : "agree bit for bit", ac_now() - t0);
    ac_case_list_free(&list);
    return bad ? 1 : 0;
}

static int cmd_describe(int argc, char **argv)
{
    if (argc < 3) { usage(stderr); return 2; }
    int bad = 0;
    for (int i = 2; i < argc; i++) {
        ac_casefile f;
        ac_error err;
        if (ac_casefile_load(argv[i], &f, &err)) {
            fprintf(stderr, "%s: %s: %s\n", argv[i], ac_status_name(err.code), err.msg);
            bad = 1;
            continue;
        }
        printf("== %s\n", argv[i]);
        ac_casefile_describe(&f, stdout);
        ac_casefile_free(&f);
    }
    return bad ? 2 : 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) { usage(stderr); return 2; }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "describe")) return cmd_describe(argc, argv);
    if (!strcmp(cmd, "families")) { /* one line each: name, corpus folder, about (scripts read column 1) */
        for (const ac_family *const *f = ac_families(); *f; f++)
            printf("%s\tcorpus/%s\t%s\n", (*f)->name, (*f)->corpus_dir, (*f)->about);
        return 0;
    }
    if (!strcmp(cmd, "fuzz")) return ac_fuzz_main(argc - 1, argv + 1);     /* tools/ac_fuzzcli.h */
    if (!strcmp(cmd, "replay")) return ac_replay_main(argc - 1, argv + 1);
    if (!strcmp(cmd, "verify")) { int ac_verify_main(int, char **); return ac_verify_main(argc - 1, argv + 1); }
    if (!strcmp(cmd, "run") || !strcmp(cmd, "sweep")) {
        cli_opts o;
        const char *pos[64];
        int npos;
        if (argc > 66 || parse_opts(argc, argv, 2, &o, pos, &npos)) { usage(stderr); return 2; }
        const char *all[AC_OP_COUNT];
        for (int f = 0; f < AC_OP_COUNT; f++) all[f] = ac_families()[f]->name;
        if (!strcmp(cmd, "sweep") && npos != 1) { usage(stderr); return 2; }
        int rc_self = 0;
        if (!strcmp(cmd, "run")) rc_self = oracle_selfcheck(o.quick, o.seed);
        int rc = npos == 0 ? run_families(all, AC_OP_COUNT, &o) : run_families(pos, npos, &o);
        return rc ? rc : rc_self;
    }
    if (!strcmp(cmd, "selftest")) return ac_selftest_main(argc - 1, argv + 1);
    if (!strcmp(cmd, "e2e")) {
        cli_opts o;
        const char *pos[64];
        int npos;
        if (argc > 66 || parse_opts(argc, argv, 2, &o, pos, &npos) || npos) { usage(stderr); return 2; }
        return ac_e2e_main(o.backend, o.quick, o.seed, stdout);
    }
    if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) { usage(stdout); return 0; }
    fprintf(stderr, "attncheck: unknown command \"%s\"\n", cmd);
    usage(stderr);
    return 2;
}
