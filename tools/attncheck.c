/* attncheck: the command line.
 *   attncheck run   [options] [FAMILY...]   the oracle's self-check, then the default
 *                                           check sweep (all families)
 *   attncheck sweep FAMILY [options]        one family's matrix (what ctest runs)
 *   attncheck e2e [options]                 store a prompt, then store + decode steps
 *   attncheck selftest [options]            inject classic bugs into the CPU models and
 *                                           show which checks catch them
 *   attncheck describe FILE...              print case files readably
 *   attncheck fuzz / replay                 tools/ac_fuzzcli.c
 * Every subcommand answers --help; attncheck --version prints the version.
 * Exit: 0 all passed, 1 a check failed, 2 usage or input error (a bad flag
 *       is reported before any work), 77 (AC_EXIT_SKIP) when --backend gpu
 *       cannot run (no CUDA device, or built without CUDA). */
#include <math.h>
#include <regex.h>

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ac_args.h"
#include "ac_casefile.h"
#include "ac_check.h"
#include "ac_diagnose.h"
#include "ac_e2e.h"
#include "ac_errpic.h"
#include "ac_file.h"
#include "ac_fuzzcli.h"
#include "ac_selftest.h"
#include "ac_gen.h"
#include "ac_family.h"
#include "ac_plugin_load.h"
#include "ac_report.h"
#include "ac_status.h"
#include "ac_sweep.h"

#ifndef AC_VERSION
#define AC_VERSION "unknown" /* CMake passes project(VERSION) */
#endif

typedef struct cli_opts {
    ac_backend backend;
    int backend_auto;
    int quick, verbose;
    uint64_t seed;
    FILE *tsv;           /* --tsv FILE, opened while parsing */
    ac_bug bug;          /* --bug NAME: inject a classic bug into the CPU models */
    const char *png;     /* --png DIR: pictures of failing cases' error maps */
    int have_filter;     /* --filter REGEX: only cases whose case line matches */
    regex_t filter;
    const char *filter_text;
    const char *save;    /* --save DIR: every failing case as a case file, with its replay command */
    FILE *junit;         /* --junit FILE: one testcase per case line */
    FILE *json;          /* --json FILE: one object per case */
    int64_t max_memory, max_work; /* --max-memory, --max-oracle-work: the check's budget (docs/BUDGET.md) */
    const char *kernel;  /* --kernel LIB.so, for the replay command of a saved case */
    int shard, shards;   /* --shard K/N: the cases whose index is K mod N (docs/SCALING.md) */
    ac_feature_args feat; /* --window, --softcap, --alibi, --sinks: set on every prefill and decode case */
} cli_opts;

static void usage(FILE *f)
{
    fprintf(f,
            "usage: attncheck run [--backend auto|gpu|cpu | --kernel LIB.so|py:MODULE:ADAPTER] [--quick] [--seed N] [--tsv FILE] [--bug NAME] [--png DIR]\n"
            "                     [--filter REGEX] [--verbose] [--window L,R] [--softcap C] [--alibi std|LIST] [--sinks LIST]\n"
            "                     [--head-dim-v N] [--kv-format e4m3|e5m2] [--kv-scales K,V|head] [FAMILY...]\n"
            "       attncheck sweep FAMILY [same options as run]\n"
            "       attncheck e2e [--backend auto|gpu|cpu] [--quick] [--seed N] [--bug NAME]\n"
            "       attncheck selftest [--cases N] [--seed N] [--bug NAME] [--quiet] [--verbose]\n"
            "       attncheck describe FILE...\n"
            "       attncheck fuzz TARGET [options]      (attncheck fuzz --help)\n"
            "       attncheck replay [options] FILE|DIR... (attncheck replay --help)\n"
            "       attncheck verify [options] DUMP|DIR...  (attncheck verify --help)\n"
            "       attncheck families\n"
            "       attncheck --version\n"
            "FAMILY:");
    for (int i = 0; i < AC_OP_COUNT; i++) fprintf(f, " %s", ac_families()[i]->name);
    fprintf(f, "\nEvery subcommand answers --help with its flags.\n");
}

static void usage_run(FILE *f, const char *cmd)
{
    int sweep = !strcmp(cmd, "sweep");
    fprintf(f,
            "usage: attncheck %s %s[options]%s\n"
            "%s"
            "  --backend auto|gpu|cpu  the CUDA kernels or their CPU models (auto: the GPU when there is one)\n"
            "  --kernel LIB.so         an outside kernel through the plugin ABI (common/ac_plugin.h)\n"
            "  --kernel py:MODULE:ADAPTER\n"
            "                          a Python adapter through the bridge (docs/BRIDGE.md), e.g.\n"
            "                          py:attncheck.adapters:sdpa_flash; $ATTNCHECK_PYTHON, $ATTNCHECK_BRIDGE_TIMEOUT\n"
            "  --save DIR              write each failing case as a case file, with its replay command\n"
            "  --junit FILE            a JUnit report: one testcase per case line\n"
            "  --json FILE             one JSON object per case (JSON Lines): line, pass, r, lse_r, ulp, worst\n"
            "  --max-memory BYTES      host memory one check may take (default 4 GiB; -1: no limit)\n"
            "  --max-oracle-work N     oracle multiply-adds one check may take (default 1e11; -1: no limit)\n"
            "  --quick                 a small representative subset of each matrix\n"
            "  --seed N                varies the data (default 1; decimal or 0x hex, 0 to 2^64-1)\n"
            "  --tsv FILE              one line per case: group, pass, r, lse_r, ulp, ratio, case line\n"
            "  --bug NAME              inject a classic bug into the CPU models (attncheck selftest --help\n"
            "                          lists them; auto then means cpu, gpu is refused)\n"
            "  --png DIR               pictures of each failing case's error map\n"
            "  --filter REGEX          only the cases whose case line matches (POSIX extended regex)\n"
            "  --shard K/N             only the cases whose index is K mod N (split a sweep over N GPUs)\n"
            "  --verbose               a line for every case, not only the failing ones\n"
            "  --window L,R            a sliding window on every prefill and decode case: key j of query i is\n"
            "                          kept when i+Lk-Lq-L <= j <= i+Lk-Lq+R (-1: unbounded on that side)\n"
            "  --softcap C             logit softcap C*tanh(s/C) on scale*q.k (0: none)\n"
            "  --alibi std|x0,x1,...   ALiBi slopes per query head: std = 2^(-8(h+1)/Hq), or a list (the last\n"
            "                          entry repeats for the remaining heads)\n"
            "  --sinks x|x0,x1,...     a sink logit per query head (-inf: none), the last entry repeats\n"
            "  --head-dim-v N          D_v = N on every prefill, decode and store case (V and the output; q and k\n"
            "                          keep D_qk; the default scale stays 1/sqrt(D_qk))\n"
            "  --kv-format e4m3|e5m2   an FP8 K/V cache on every prefill, decode and store case\n"
            "  --kv-scales K,V|head    FP8 dequantisation scales in [2^-64, 2^64]: one K and one V scale per tensor,\n"
            "                          or head: one per KV head (0.5, 1.5, 2, 0.375, ... and 2, 0.75, 0.25, ...);\n"
            "                          needs --kv-format\n"
            "  --help                  this text\n"
            "FAMILY:",
            cmd, sweep ? "FAMILY " : "", sweep ? "" : " [FAMILY...]",
            sweep ? "One family's matrix of the default check sweep.\n"
                  : "The oracle's self-check, then the default check sweep of the families given (default all).\n");
    for (int i = 0; i < AC_OP_COUNT; i++) fprintf(f, " %s", ac_families()[i]->name);
    fprintf(f, "\n");
}

static void usage_e2e(FILE *f)
{
    fprintf(f,
            "usage: attncheck e2e [options]\n"
            "A prompt stored through the slot mapping, then decode steps that store one token each\n"
            "and attend to everything so far; the kernels read the cache their own store wrote.\n"
            "  --backend auto|gpu|cpu  the CUDA kernels or their CPU models (auto: the GPU when there is one)\n"
            "  --quick                 a third of the configurations\n"
            "  --seed N                varies the data (default 1)\n"
            "  --bug NAME              inject a classic bug into the CPU models' store and decode\n"
            "                          (auto then means cpu, gpu is refused)\n"
            "  --help                  this text\n");
}

static void usage_describe(FILE *f)
{
    fprintf(f,
            "usage: attncheck describe FILE...\n"
            "Prints case files readably; a malformed file is a named error (exit 2).\n"
            "  --help  this text\n");
}

enum { OPT_BACKEND = AC_ARGS_LONG, OPT_QUICK, OPT_SEED, OPT_TSV, OPT_BUG, OPT_PNG, OPT_FILTER, OPT_VERBOSE, OPT_KERNEL,
       OPT_SAVE, OPT_JUNIT, OPT_MAX_MEMORY, OPT_MAX_WORK, OPT_JSON, OPT_SHARD, OPT_WINDOW, OPT_SOFTCAP, OPT_ALIBI,
       OPT_SINKS, OPT_HEAD_DIM_V, OPT_KV_FORMAT, OPT_KV_SCALES };

static void free_opts(cli_opts *o)
{
    if (o->json) fclose(o->json);
    o->json = NULL;
    if (o->junit) fclose(o->junit);
    o->junit = NULL;
    if (o->tsv) fclose(o->tsv);
    if (o->have_filter) regfree(&o->filter);
    o->tsv = NULL;
    o->have_filter = 0;
}

/* Options of run, sweep (all of them) and e2e (e2e = 1: backend, quick,
   seed, bug). Every value is checked here, before any work: returns 0, or
   the exit code (0 after --help, else AC_EXIT_USAGE) with *done = 1.
   Positional arguments are argv[optind..argc) afterwards. */
static int parse_opts(const char *prog, const char *cmd, int e2e, int argc, char **argv, cli_opts *o, int *done)
{
    static const struct option run_opts[] = {
        {"backend", required_argument, NULL, OPT_BACKEND}, {"quick", no_argument, NULL, OPT_QUICK},
        {"seed", required_argument, NULL, OPT_SEED},       {"bug", required_argument, NULL, OPT_BUG},
        {"tsv", required_argument, NULL, OPT_TSV},         {"png", required_argument, NULL, OPT_PNG},
        {"filter", required_argument, NULL, OPT_FILTER},   {"verbose", no_argument, NULL, OPT_VERBOSE},
        {"kernel", required_argument, NULL, OPT_KERNEL},   {"help", no_argument, NULL, 'h'},
        {"save", required_argument, NULL, OPT_SAVE},       {"junit", required_argument, NULL, OPT_JUNIT},
        {"json", required_argument, NULL, OPT_JSON},
        {"max-memory", required_argument, NULL, OPT_MAX_MEMORY},
        {"max-oracle-work", required_argument, NULL, OPT_MAX_WORK},
        {"shard", required_argument, NULL, OPT_SHARD},
        {"window", required_argument, NULL, OPT_WINDOW},   {"softcap", required_argument, NULL, OPT_SOFTCAP},
        {"alibi", required_argument, NULL, OPT_ALIBI},     {"sinks", required_argument, NULL, OPT_SINKS},
        {"head-dim-v", required_argument, NULL, OPT_HEAD_DIM_V}, {"kv-format", required_argument, NULL, OPT_KV_FORMAT},
        {"kv-scales", required_argument, NULL, OPT_KV_SCALES},
        {NULL, 0, NULL, 0}};
    static const struct option e2e_opts[] = {
        {"backend", required_argument, NULL, OPT_BACKEND}, {"quick", no_argument, NULL, OPT_QUICK},
        {"seed", required_argument, NULL, OPT_SEED},       {"bug", required_argument, NULL, OPT_BUG},
        {"help", no_argument, NULL, 'h'},                  {NULL, 0, NULL, 0}};
    memset(o, 0, sizeof *o);
    o->backend = AC_BACKEND_MODEL;
    o->backend_auto = 1;
    o->seed = 1;
    o->bug = AC_BUG_NONE;
    *done = 1;
    ac_args a;
    ac_error err;
    ac_status st = AC_OK;
    ac_args_init(&a, prog, argc, argv, e2e ? e2e_opts : run_opts);
    for (int c; (c = ac_args_next(&a, &err)) != AC_ARGS_END;) {
        switch (c) {
        case OPT_BACKEND: st = ac_arg_backend(a.name, optarg, &o->backend, &o->backend_auto, &err); break;
        case OPT_QUICK: o->quick = 1; break;
        case OPT_VERBOSE: o->verbose = 1; break;
        case OPT_SEED: st = ac_arg_u64(a.name, optarg, 0, UINT64_MAX, &o->seed, &err); break;
        case OPT_BUG: st = ac_arg_bug(a.name, optarg, &o->bug, &err); break;
        case OPT_KERNEL: /* an outside kernel through the plugin ABI (common/ac_plugin.h) */
            st = ac_plugin_load(optarg, &o->backend, &err);
            o->backend_auto = 0;
            o->kernel = optarg;
            break;
        case OPT_MAX_MEMORY: st = ac_arg_i64(a.name, optarg, -1, INT64_MAX, &o->max_memory, &err); break;
        case OPT_MAX_WORK: st = ac_arg_i64(a.name, optarg, -1, INT64_MAX, &o->max_work, &err); break;
        case OPT_SHARD: { /* K/N, 0 <= K < N: one of N processes (one per GPU) */
            char k[32], n[32];
            const char *slash = strchr(optarg, '/');
            if (!slash || slash == optarg || (size_t)(slash - optarg) >= sizeof k || strlen(slash + 1) >= sizeof n) {
                st = ac_fail(&err, AC_ERR_PARSE, "--shard %s: expected K/N (e.g. 0/2)", optarg);
                break;
            }
            snprintf(k, sizeof k, "%.*s", (int)(slash - optarg), optarg);
            snprintf(n, sizeof n, "%s", slash + 1);
            st = ac_arg_int(a.name, n, 1, 4096, &o->shards, &err);
            if (!st) st = ac_arg_int(a.name, k, 0, o->shards - 1, &o->shard, &err);
            break;
        }
        case OPT_WINDOW:
            st = ac_arg_window(a.name, optarg, &o->feat.window_left, &o->feat.window_right, &err);
            o->feat.window = st == AC_OK;
            break;
        case OPT_SOFTCAP: {
            double cap;
            st = ac_arg_double(a.name, optarg, 0.0, 3.4e38, &cap, &err);
            o->feat.softcap = st == AC_OK;
            o->feat.softcap_value = (float)cap;
            break;
        }
        case OPT_ALIBI: st = ac_arg_alibi(a.name, optarg, &o->feat, &err); break;
        case OPT_SINKS: st = ac_arg_floats(a.name, optarg, 1, o->feat.sinks, AC_MAX_HEADS, &o->feat.n_sinks, &err); break;
        case OPT_HEAD_DIM_V: st = ac_arg_int(a.name, optarg, 1, AC_MAX_HEAD_DIM, &o->feat.head_dim_v, &err); break;
        case OPT_KV_FORMAT: st = ac_arg_kv_format(a.name, optarg, &o->feat.kv_format, &err); break;
        case OPT_KV_SCALES: st = ac_arg_kv_scales(a.name, optarg, &o->feat, &err); break;
        case OPT_SAVE:
            st = ac_arg_out_dir(a.name, optarg, &err);
            o->save = optarg;
            break;
        case OPT_JSON:
            if (o->json) fclose(o->json);
            o->json = NULL;
            st = ac_arg_out_file(a.name, optarg, &o->json, &err);
            break;
        case OPT_JUNIT:
            if (o->junit) fclose(o->junit);
            o->junit = NULL;
            st = ac_arg_out_file(a.name, optarg, &o->junit, &err);
            break;
        case OPT_PNG:
            st = ac_arg_out_dir(a.name, optarg, &err);
            o->png = optarg;
            break;
        case OPT_TSV:
            if (o->tsv) fclose(o->tsv);
            o->tsv = NULL;
            st = ac_arg_out_file(a.name, optarg, &o->tsv, &err);
            break;
        case OPT_FILTER:
            if (o->have_filter) regfree(&o->filter);
            o->have_filter = 0;
            st = ac_arg_regex(a.name, optarg, &o->filter, &err);
            o->have_filter = st == AC_OK;
            o->filter_text = optarg;
            break;
        case 'h':
            if (e2e) usage_e2e(stdout);
            else usage_run(stdout, cmd);
            free_opts(o);
            return 0;
        default: st = AC_ERR_PARSE; break; /* AC_ARGS_ERROR: err says what */
        }
        if (st) {
            free_opts(o);
            return ac_args_fail(&a, &err);
        }
    }
    if (ac_feature_args_check(&o->feat, &err)) {
        free_opts(o);
        return ac_args_fail(&a, &err);
    }
    *done = 0;
    return 0;
}

/* The bugs live in the CPU models (the kernels ignore or refuse them):
   with --bug, auto means the CPU models and an explicit GPU is refused.
   Returns 0, or the exit code after the message. */
static int bug_backend(const char *prog, cli_opts *o)
{
    if (!o->bug) return 0;
    if (o->backend_auto) {
        o->backend_auto = 0;
        o->backend = AC_BACKEND_MODEL;
    }
    if (o->backend == AC_BACKEND_MODEL) return 0;
    ac_args a = {.prog = prog};
    return ac_args_failf(&a, "--bug %s: bugs are injected into the CPU models only; give --backend cpu (or auto)",
                         ac_bug_name(o->bug));
}

/* 1 if the case runs under o's filter (always without one). */
static int filter_keeps(const cli_opts *o, const ac_case *c)
{
    if (!o->have_filter) return 1;
    char line[512];
    ac_case_line(c, line, sizeof line);
    return regexec(&o->filter, line, 0, NULL, 0) == 0;
}

/* ---- per-group statistics for the summary table ---- */
typedef struct group_stat {
    char name[64];
    int cases, passed, errors, unsupported;
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
    int unsup = 0;
    for (int i = 0; i < ng; i++) unsup += g[i].unsupported;
    fprintf(f, "\n%-34s %6s %6s%s %9s %9s %6s %8s %8s\n", "group", "cases", "pass", unsup ? "  unsup" : "", "worst r",
            "worst lse", "ulp", "ratio", "oracle s");
    for (int i = 0; i < ng; i++) {
        char u[16] = "";
        if (unsup) snprintf(u, sizeof u, " %6d", g[i].unsupported);
        fprintf(f, "%-34s %6d %6d%s %9.3g %9.3g %6lld %8.3g %8.1f\n", g[i].name, g[i].cases, g[i].passed, u,
                g[i].r_max, g[i].lse_max, (long long)g[i].ulp_max, g[i].ratio_max, g[i].oracle_s);
    }
}

/* Runs every case of the listed families (those o's filter keeps); returns
   the process exit code. */
/* --json: one object a line per case (JSON Lines), written by cJSON. */
static void json_case(FILE *f, const char *group, const char *line, int ok, ac_status st, const ac_check_result *r,
                      int unsupported, const char *diagnosis)
{
    cJSON *obj = cJSON_CreateObject();
    if (!obj) return;
    cJSON_AddStringToObject(obj, "case", line);
    cJSON_AddStringToObject(obj, "group", group);
    cJSON_AddBoolToObject(obj, "pass", ok);
    if (unsupported) cJSON_AddBoolToObject(obj, "unsupported", 1);
    if (diagnosis) cJSON_AddStringToObject(obj, "diagnosis", diagnosis);
    if (st) {
        cJSON_AddStringToObject(obj, "error", ac_status_name(st));
        cJSON_AddStringToObject(obj, "message", r->error.msg);
        cJSON_AddStringToObject(obj, "stage", r->stage ? r->stage : "");
    } else {
        const ac_verdict *v = &r->verdict;
        ac_report_json_num(obj, "r", v->r_max);
        ac_report_json_num(obj, "lse_r", v->r_lse_max);
        ac_report_json_num(obj, "ulp", (double)v->max_ulp);
        ac_report_json_num(obj, "ratio", v->ratio_vs_ref);
        cJSON *w = ac_report_json_coord(&v->r_where);
        if (w) cJSON_AddItemToObject(obj, "worst", w);
        cJSON_AddStringToObject(obj, "summary", v->summary);
    }
    char *text = cJSON_PrintUnformatted(obj);
    if (text) fprintf(f, "%s\n", text);
    cJSON_free(text);
    cJSON_Delete(obj);
}

/* The command that replays a saved case on the same backend with the same bug. */
static void replay_command(const cli_opts *o, const char *path, char *buf, size_t n)
{
    char be[600];
    if (o->kernel) snprintf(be, sizeof be, "--kernel %s", o->kernel);
    else snprintf(be, sizeof be, "--backend %s", o->backend == AC_BACKEND_GPU ? "gpu" : "cpu");
    snprintf(buf, n, "attncheck replay %s%s%s %s", be, o->bug ? " --bug " : "", o->bug ? ac_bug_name(o->bug) : "",
             path);
}

/* --save DIR: the failing case as a case file (its block table, slot
   mapping and lengths included; expect ok: a correct kernel passes it), the
   note saying what happened. Prints where it went and the replay command. */
static void save_failure(const cli_opts *o, const ac_case *c, int32_t index, const char *why)
{
    ac_casefile f;
    ac_error e;
    char path[4200], cmd[5000];
    snprintf(path, sizeof path, "%s/failure-%04d-%s-seed%llu.case", o->save, (int)index, ac_op_name(c->op),
             (unsigned long long)c->seed);
    if (ac_casefile_from_case(&f, c, &e) || ac_casefile_set_note(&f, why, &e) || ac_casefile_save(path, &f, &e)) {
        printf("  not saved: %s\n", e.msg);
    } else {
        replay_command(o, path, cmd, sizeof cmd);
        printf("  saved: %s\n  replay: %s\n", path, cmd);
    }
    ac_casefile_free(&f);
}

/* A failing case judged again under the classic wrong semantics
   (docs/DIAGNOSIS.md): prints the diagnosis line, and the empty-row report
   when the rows with no allowed key do not hold the contract's O = 0, LSE =
   -inf (what they hold, which convention that is); the line goes to diag
   for --json. */
static void diagnose_failure(const ac_case *c, const ac_check_opts *co, const ac_check_result *r, char *diag,
                             size_t n)
{
    if (ac_family_judge(c->op) == AC_JUDGE_BITWISE) return; /* the store's verdict names the first wrong slot */
    if (!r->tensors.q) { /* a sparse case keeps no tensors (harness/ac_sparse.h) */
        printf("  diagnosis: not made: a sparse case keeps no tensors\n");
        return;
    }
    ac_diagnosis dg;
    ac_empty_report er;
    ac_error e;
    char poison[sizeof dg.summary];
    int blamed;
    if (ac_check_explain(c, co, r, &dg, &er, poison, sizeof poison, &blamed, &e)) {
        printf("  diagnosis: not made: %s\n", e.msg);
        if (poison[0]) printf("  %s\n", poison);
        snprintf(diag, n, "%s", poison);
        return;
    }
    printf("  %s\n", dg.summary);
    if (er.rows && !er.as_declared) printf("  %s\n", er.text); /* what the empty rows hold instead */
    if (poison[0]) printf("  %s\n", poison);
    snprintf(diag, n, "%s%s%s", dg.summary, poison[0] ? "; " : "", poison);
}

static int run_families(char **fam, int nfam, const cli_opts *o)
{
    ac_case_list list;
    memset(&list, 0, sizeof list);
    ac_error err;
    for (int i = 0; i < nfam; i++)
        if (ac_sweep_build(fam[i], o->quick, o->seed, &list, &err)) {
            fprintf(stderr, "attncheck: %s\n", err.msg);
            ac_case_list_free(&list);
            return AC_EXIT_USAGE;
        }
    /* The feature flags turn the built-in matrices into feature sweeps; the
       families that take none (combine, store) run as they are. */
    int32_t kv_taken = 0;
    for (int32_t i = 0; i < list.n && ac_feature_args_any(&o->feat); i++) {
        kv_taken += ac_feature_args_kv_taken(&o->feat, &list.cases[i]);
        if (ac_feature_args_apply(&o->feat, &list.cases[i], &err)) {
            fprintf(stderr, "attncheck: %s\n", err.msg);
            ac_case_list_free(&list);
            return AC_EXIT_USAGE;
        }
    }
    if (ac_feature_args_kv_any(&o->feat) && !kv_taken && list.n) {
        fprintf(stderr, "attncheck: --head-dim-v, --kv-format, --kv-scales: no case of the chosen families takes them "
                        "(prefill, decode and store do; combine does not)\n");
        ac_case_list_free(&list);
        return AC_EXIT_USAGE;
    }
    FILE *tsv = o->tsv;
    if (tsv) fprintf(tsv, "group\tpass\tr\tlse_r\tulp\tratio\tcase\n");
    /* Indexes of the cases to run; a case keeps its index (picture names). */
    int32_t *run = malloc(sizeof *run * ((size_t)list.n + 1)), nrun = 0;
    if (!run) {
        fprintf(stderr, "attncheck: out of memory\n");
        ac_case_list_free(&list);
        return AC_EXIT_USAGE;
    }
    for (int32_t i = 0; i < list.n; i++)
        if (filter_keeps(o, &list.cases[i]) && (o->shards <= 1 || i % o->shards == o->shard)) run[nrun++] = i;
    if (o->have_filter) printf("attncheck: --filter '%s' kept %d of %d cases\n", o->filter_text, nrun, list.n);
    if (o->shards > 1) printf("attncheck: --shard %d/%d: %d of %d cases\n", o->shard, o->shards, nrun, list.n);
    printf("attncheck: %d cases on the %s%s%s%s\n", nrun, ac_backend_name(o->backend),
           o->backend == AC_BACKEND_MODEL ? " (CPU model of the kernels: no GPU used)"
           : o->backend == AC_BACKEND_GPU  ? " (CUDA kernels)"
                                           : " (a plugin kernel)",
           o->bug ? ", injected bug: " : "", o->bug ? ac_bug_name(o->bug) : "");
    group_stat *groups = calloc((size_t)list.n + 1, sizeof *groups);
    int ng = 0, failed = 0, unsupported = 0, tty = isatty(2);
    /* JUnit: one testcase per case line, written once the counts are known. */
    char *junit_body = NULL;
    size_t junit_len = 0;
    FILE *junit = o->junit ? open_memstream(&junit_body, &junit_len) : NULL;
    double t0 = ac_now(), last = t0;
    for (int32_t k = 0; k < nrun; k++) {
        const int32_t i = run[k];
        const ac_case *c = &list.cases[i];
        char line[512];
        ac_case_line(c, line, sizeof line);
        ac_check_opts co;
        memset(&co, 0, sizeof co);
        co.backend = o->backend;
        co.bug = o->bug;
        co.with_ref = 1;
        co.budget_bytes = o->max_memory;
        co.budget_macs = o->max_work;
        co.keep = 1; /* a failure's diagnosis and pictures read the tensors and outputs */
        ac_check_result r;
        ac_status st = ac_check_case(c, &co, &r);
        group_stat *g = stat_for(groups, &ng, list.group[i]);
        g->cases++;
        int ok = st == AC_OK && r.verdict.pass;
        /* A case the backend refuses by name (a mode its kernel lacks) is
           counted apart: not a failure, never a pass. */
        int unsup = st == AC_ERR_UNSUPPORTED && r.stage && !strcmp(r.stage, "kernel");
        if (unsup) g->unsupported++, unsupported++;
        else if (st) g->errors++;
        if (ok) g->passed++;
        else if (!unsup) failed++;
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
            printf("%s %s\n  %s\n", ok ? "ok  " : unsup ? "UNSUP" : "FAIL", line,
                   st ? r.error.msg : r.verdict.summary);
        if (!ok && !unsup && o->save) save_failure(o, c, i, st ? r.error.msg : r.verdict.summary);
        char diag[2 * sizeof(((ac_diagnosis *)0)->summary) + 8] = "";
        if (st == AC_OK && !ok) diagnose_failure(c, &co, &r, diag, sizeof diag);
        if (o->json) json_case(o->json, list.group[i], line, ok, st, &r, unsup, diag[0] ? diag : NULL);
        if (junit) {
            fprintf(junit, "  <testcase classname=\"attncheck.%s\" name=\"", ac_op_name(c->op));
            ac_report_xml_text(junit, line);
            fprintf(junit, "\" time=\"%.3f\"", r.seconds_kernel + r.seconds_oracle);
            if (ok) {
                fprintf(junit, "/>\n");
            } else if (unsup) {
                fprintf(junit, ">\n    <skipped message=\"");
                ac_report_xml_text(junit, r.error.msg);
                fprintf(junit, "\"/>\n  </testcase>\n");
            } else {
                fprintf(junit, ">\n    <failure message=\"");
                ac_report_xml_text(junit, st ? r.error.msg : r.verdict.summary);
                fprintf(junit, "\"/>\n  </testcase>\n");
            }
        }
        if (o->png && !ok && st == AC_OK) { /* DIR/case0042-prefill-heat.png and -rows.png */
            char stem[4096];
            ac_error pe;
            snprintf(stem, sizeof stem, "%s/case%04d-%s", o->png, (int)i, ac_op_name(c->op));
            if (ac_mkdirs(o->png, &pe) || ac_errpic_write_case(c, r.tensors.cu_seqlens_q, r.oracle.rows, r.err_map, r.oracle.n_allowed, stem, &pe))
                printf("  pictures: %s\n", pe.msg);
            else
                printf("  pictures: %s-heat.png %s-rows.png %s-map.tsv.gz\n", stem, stem, stem);
        }
        if (tsv)
            fprintf(tsv, "%s\t%d\t%.6g\t%.6g\t%lld\t%.4g\t%s\n", list.group[i], ok, st ? INFINITY : r.verdict.r_max,
                    st ? INFINITY : r.verdict.r_lse_max, (long long)r.verdict.max_ulp, r.verdict.ratio_vs_ref, line);
        double now = ac_now();
        if (tty) fprintf(stderr, "\r[%4d/%4d] %d failed, %.0f s  ", k + 1, nrun, failed, now - t0);
        else if (now - last > 10.0 || k + 1 == nrun) {
            fprintf(stderr, "[%4d/%4d] %d failed, %.0f s\n", k + 1, nrun, failed, now - t0);
            last = now;
        }
        ac_check_result_free(&r);
    }
    if (tty) fprintf(stderr, "\n");
    if (junit) {
        fclose(junit);
        fprintf(o->junit, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n<testsuite name=\"attncheck %s\" "
                "tests=\"%d\" failures=\"%d\" skipped=\"%d\">\n%s</testsuite>\n</testsuites>\n",
                ac_backend_name(o->backend), nrun, failed, unsupported, junit_body ? junit_body : "");
        free(junit_body);
        fflush(o->junit);
    }
    print_table(groups, ng, stdout);
    int passed = nrun - failed - unsupported;
    if (unsupported) printf("\n%d passed, %d failed, %d unsupported\n", passed, failed, unsupported);
    else printf("\n%d passed, %d failed\n", passed, failed);
    if (o->have_filter) printf("(--filter '%s': %d of %d cases run)\n", o->filter_text, nrun, list.n);
    free(run);
    free(groups);
    ac_case_list_free(&list);
    if (failed) return 1;
    if (unsupported && !passed) { /* nothing was checked: that is no pass */
        printf("attncheck: every case was unsupported by %s: nothing was checked (exit %d)\n",
               ac_backend_name(o->backend), AC_EXIT_SKIP);
        return AC_EXIT_SKIP;
    }
    return 0;
}

/* The oracle checks itself: its fast path (double-double sums) against its
   MPFR path on a slice of the sweep. Both must round to the same outputs. */
static int oracle_selfcheck(const cli_opts *o)
{
    const int quick = o->quick;
    const uint64_t seed = o->seed;
    ac_case_list list;
    memset(&list, 0, sizeof list);
    ac_error err;
    for (int i = 0; i < AC_OP_COUNT; i++)
        if (ac_families()[i]->oracle_arith && ac_families()[i]->sweep(1, seed, &list, &err)) {
            fprintf(stderr, "attncheck: %s\n", err.msg);
            ac_case_list_free(&list);
            return AC_EXIT_USAGE;
        }
    /* The filter picks the cases first, then the stride thins them. */
    int32_t *sel = malloc(sizeof *sel * ((size_t)list.n + 1)), nsel = 0;
    if (!sel) {
        fprintf(stderr, "attncheck: out of memory\n");
        ac_case_list_free(&list);
        return AC_EXIT_USAGE;
    }
    for (int32_t i = 0; i < list.n; i++)
        if (filter_keeps(o, &list.cases[i])) sel[nsel++] = i;
    if (o->have_filter)
        printf("oracle self-check: --filter '%s' kept %d of %d cases\n", o->filter_text, nsel, list.n);
    int stride = quick ? 6 : 2, n = 0, bad = 0;
    int64_t elems = 0;
    double t0 = ac_now();
    for (int32_t k = 0; k < nsel; k += stride, n++) {
        const ac_case *c = &list.cases[sel[k]];
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
        for (int64_t e = 0; ok && e < a.rows * a.head_dim; e++) {
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
    free(sel);
    ac_case_list_free(&list);
    return bad ? 1 : 0;
}

static int cmd_describe(int argc, char **argv)
{
    static const struct option opts[] = {{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    ac_args a;
    ac_error err;
    ac_args_init(&a, "attncheck describe", argc, argv, opts);
    for (int c; (c = ac_args_next(&a, &err)) != AC_ARGS_END;) {
        if (c != 'h') return ac_args_fail(&a, &err);
        usage_describe(stdout);
        return 0;
    }
    if (optind >= argc) return ac_args_failf(&a, "no case file given");
    int bad = 0;
    for (int i = optind; i < argc; i++) {
        ac_casefile f;
        if (ac_casefile_load(argv[i], &f, &err)) {
            fprintf(stderr, "%s: %s: %s\n", argv[i], ac_status_name(err.code), err.msg);
            bad = 1;
            continue;
        }
        printf("== %s\n", argv[i]);
        ac_casefile_describe(&f, stdout);
        ac_casefile_free(&f);
    }
    return bad ? AC_EXIT_USAGE : 0;
}

/* run and sweep: argv[0] is the subcommand. */
static int cmd_run(const char *cmd, int argc, char **argv)
{
    int sweep = !strcmp(cmd, "sweep"), done;
    char prog[32];
    snprintf(prog, sizeof prog, "attncheck %s", cmd);
    cli_opts o;
    int rc = parse_opts(prog, cmd, 0, argc, argv, &o, &done);
    if (done) return rc;
    ac_args a = {.prog = prog}; /* for the messages about positionals */
    char **fam = argv + optind;
    int nfam = argc - optind;
    if (sweep && nfam != 1) rc = ac_args_failf(&a, "expected one FAMILY, got %d", nfam);
    for (int i = 0; !rc && i < nfam; i++)
        if (!ac_family_find(fam[i])) {
            char names[128];
            ac_family_names(names, sizeof names);
            rc = ac_args_failf(&a, "%s: unknown family; one of %s", fam[i], names);
        }
    /* The K/V flags on families none of which takes them: said before any work. */
    int kv_fams = 0;
    for (int i = 0; !rc && nfam && i < nfam; i++) {
        const ac_op_traits *tr = ac_op_traits_of(ac_family_find(fam[i])->op);
        kv_fams += tr && tr->kv_features;
    }
    if (!rc && nfam && !kv_fams && ac_feature_args_kv_any(&o.feat))
        rc = ac_args_failf(&a, "--head-dim-v, --kv-format, --kv-scales: no family given takes them (prefill, decode "
                               "and store do; combine does not)");
    if (!rc) rc = bug_backend(prog, &o);
    if (rc) {
        free_opts(&o);
        return rc;
    }
    if (o.backend_auto) o.backend = ac_gpu_available() ? AC_BACKEND_GPU : AC_BACKEND_MODEL;
    char why[160]; /* the backend's own reason: "built without CUDA" is not "no device" */
    if (!ac_backend_available(o.backend, why, sizeof why)) {
        printf("attncheck: %s checks skipped: %s\n", ac_backend_name(o.backend), why);
        free_opts(&o);
        return AC_EXIT_SKIP;
    }
    char *all[AC_OP_COUNT];
    for (int f = 0; f < AC_OP_COUNT; f++) all[f] = (char *)ac_families()[f]->name;
    int rc_self = sweep ? 0 : oracle_selfcheck(&o);
    rc = nfam == 0 ? run_families(all, AC_OP_COUNT, &o) : run_families(fam, nfam, &o);
    free_opts(&o);
    return rc ? rc : rc_self;
}

static int cmd_e2e(int argc, char **argv)
{
    cli_opts o;
    int done, rc = parse_opts("attncheck e2e", "e2e", 1, argc, argv, &o, &done);
    if (done) return rc;
    if (optind < argc) {
        ac_args a = {.prog = "attncheck e2e"};
        free_opts(&o);
        return ac_args_failf(&a, "%s: unexpected argument (e2e takes options only)", argv[optind]);
    }
    if ((rc = bug_backend("attncheck e2e", &o))) {
        free_opts(&o);
        return rc;
    }
    if (o.backend_auto) o.backend = ac_gpu_available() ? AC_BACKEND_GPU : AC_BACKEND_MODEL;
    rc = ac_e2e_main(o.backend, o.quick, o.seed, o.bug, stdout);
    free_opts(&o);
    return rc;
}

int main(int argc, char **argv)
{
    /* A run killed half way keeps every line it printed (a log is no terminal). */
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc < 2) {
        usage(stderr);
        return AC_EXIT_USAGE;
    }
    const char *cmd = argv[1];
    /* Each subcommand sees argv[0] = its name, the rest its arguments. */
    if (!strcmp(cmd, "run") || !strcmp(cmd, "sweep")) return cmd_run(cmd, argc - 1, argv + 1);
    if (!strcmp(cmd, "e2e")) return cmd_e2e(argc - 1, argv + 1);
    if (!strcmp(cmd, "describe")) return cmd_describe(argc - 1, argv + 1);
    if (!strcmp(cmd, "families")) { /* one line each: name, corpus folder, about (scripts read column 1) */
        for (const ac_family *const *f = ac_families(); *f; f++)
            printf("%s\tcorpus/%s\t%s\n", (*f)->name, (*f)->corpus_dir, (*f)->about);
        return 0;
    }
    if (!strcmp(cmd, "selftest")) return ac_selftest_main(argc - 1, argv + 1); /* tools/ac_selftest.h */
    if (!strcmp(cmd, "fuzz")) return ac_fuzz_main(argc - 1, argv + 1);         /* tools/ac_fuzzcli.h */
    if (!strcmp(cmd, "replay")) return ac_replay_main(argc - 1, argv + 1);
    if (!strcmp(cmd, "verify")) { int ac_verify_main(int, char **); return ac_verify_main(argc - 1, argv + 1); }
    if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(cmd, "--version") || !strcmp(cmd, "version")) {
        printf("attncheck %s\n", AC_VERSION);
        return 0;
    }
    fprintf(stderr, "attncheck: %s: unknown command\n", cmd);
    usage(stderr);
    return AC_EXIT_USAGE;
}
