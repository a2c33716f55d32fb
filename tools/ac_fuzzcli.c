/* `attncheck fuzz` (campaigns) and `attncheck replay` (reproductions). The
 * targets, mutators and the walk driver live in fuzz/ (ac_fuzz.h). */
#include "ac_fuzzcli.h"

/* Paths and messages are cut at their buffers on purpose (never past them). */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wformat-truncation"
#endif
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ac_args.h"
#include "ac_clock.h"
#include "ac_errpic.h"
#include "ac_file.h"
#include "ac_fuzz.h"
#include "ac_plugin_load.h"
#include "ac_status.h"
#include "ac_stop.h"

static int is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static int is_file(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* The repository root: --root DIR when given (it must hold corpus/ and
   fuzz/), else the nearest directory above the executable holding both (a
   build tree inside a checkout). Never guessed from the working folder: any
   folder there holding corpus/ and fuzz/ would be taken for the project. */
static int find_root(char *out, size_t n, const char *given)
{
    if (given) {
        char a[PATH_MAX + 16], b[PATH_MAX + 16];
        snprintf(a, sizeof a, "%s/corpus", given);
        snprintf(b, sizeof b, "%s/fuzz", given);
        if (!is_dir(a) || !is_dir(b)) return -1;
        snprintf(out, n, "%s", given);
        return 0;
    }
    char start[1][PATH_MAX];
    int ns = 0;
    ssize_t k = readlink("/proc/self/exe", start[ns], sizeof start[ns] - 1);
    if (k > 0) {
        start[ns][k] = '\0';
        ns++;
    }
    for (int s = 0; s < ns; s++) {
        char dir[PATH_MAX];
        snprintf(dir, sizeof dir, "%s", start[s]);
        for (;;) {
            char a[PATH_MAX + 16], b[PATH_MAX + 16];
            snprintf(a, sizeof a, "%s/corpus", dir);
            snprintf(b, sizeof b, "%s/fuzz", dir);
            if (is_dir(a) && is_dir(b)) {
                snprintf(out, n, "%s", dir);
                return 0;
            }
            char *slash = strrchr(dir, '/');
            if (!slash || slash == dir) break;
            *slash = '\0';
        }
    }
    return -1;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* ======================================================================== */
/* replay                                                                    */

typedef struct replay_opts {
    ac_backend backend;
    int backend_auto;
    const ac_fuzz_target *target;
    int64_t rows;
    int quiet;
    const char *png_dir;    /* --png DIR: pictures of each case's error map */
    int have_filter;        /* --filter REGEX: only inputs whose line matches */
    regex_t filter;
    ac_bug bug;             /* --bug NAME: the classic bug a saved failure was found with */
    int64_t max_memory, max_work; /* the check's budget (docs/BUDGET.md) */
} replay_opts;

/* files: inputs read; filtered: of those, the ones the filter passed over
   (counted nowhere else). */
typedef struct replay_count { int files, passed, rejected, failed, skipped, errors, filtered, unsupported; } replay_count;

/* Which target a file belongs to: its folder (corpus/<dir>), its name
   ("<target>-..." as findings and artifacts are named), or "case" for a case
   file of any other folder. NULL target with *is_case = 0: unknown. */
static const ac_fuzz_target *target_of(const char *path, const uint8_t *data, size_t size, int *is_case)
{
    *is_case = 0;
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s", path);
    char *base = strrchr(tmp, '/');
    const char *name = base ? base + 1 : tmp;
    const char *parent = "";
    if (base) {
        *base = '\0';
        char *p2 = strrchr(tmp, '/');
        parent = p2 ? p2 + 1 : tmp;
    }
    const ac_fuzz_target *const *all = ac_fuzz_targets();
    for (int i = 0; all[i]; i++)
        if (!strcmp(parent, all[i]->seed_dir)) return all[i];
    for (int i = 0; all[i]; i++) {
        size_t l = strlen(all[i]->name);
        if (!strncmp(name, all[i]->name, l) && name[l] == '-') return all[i];
    }
    ac_casefile f;
    ac_error e;
    if (ac_casefile_parse((const char *)data, size, &f, &e) == AC_OK) {
        ac_casefile_free(&f);
        *is_case = 1;
        return ac_fuzz_target_find("layout");
    }
    return NULL;
}

/* corpus/DISABLED (corpus/README.md): known failures (open findings), one
   "<folder>/<file> <reason>" a line, # comments. The list sits in the corpus
   root, the parent of the file's folder. Returns 1 with the reason when
   `path` is listed. */
static int corpus_disabled(const char *path, char *reason, size_t n)
{
    char dir[PATH_MAX], cwd[PATH_MAX], list[PATH_MAX + 16], line[1024];
    const char *slash = strrchr(path, '/'), *name = slash ? slash + 1 : path;
    snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - path) : 1, slash ? path : ".");
    size_t dl = strlen(dir);
    while (dl > 1 && dir[dl - 1] == '/') dir[--dl] = '\0';
    const char *folder = strrchr(dir, '/') ? strrchr(dir, '/') + 1 : dir;
    if (!strcmp(folder, ".") && getcwd(cwd, sizeof cwd) && strrchr(cwd, '/')) folder = strrchr(cwd, '/') + 1;
    snprintf(list, sizeof list, "%s/../DISABLED", dir);
    FILE *f = fopen(list, "r");
    if (!f) return 0;
    size_t fl = strlen(folder), nl = strlen(name);
    int hit = 0;
    while (!hit && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = '\0';
        hit = !strncmp(line, folder, fl) && line[fl] == '/' && !strncmp(line + fl + 1, name, nl) &&
              (line[fl + 1 + nl] == ' ' || line[fl + 1 + nl] == '\0');
        const char *why = hit ? line + fl + 1 + nl : ""; /* past "<folder>/<name>" */
        if (hit) snprintf(reason, n, "%s", *why ? why + 1 : "(no reason given)");
    }
    fclose(f);
    return hit;
}

/* The line an input is matched against by --filter: what the target's run
   puts in out->line (the case line, or the target's one-line description),
   found without running where the bytes say it: case files and layout bytes
   (ac_fuzz_case_from_bytes), combine records, the casefile target's input.
   Other targets' lines exist only after the run: theirs runs once quietly. */
static void replay_line(const ac_fuzz_target *t, const uint8_t *data, size_t size, const replay_opts *o, char *line,
                        size_t n)
{
    ac_error e;
    line[0] = '\0';
    if (!strcmp(t->name, "layout")) {
        ac_casefile f;
        if (ac_fuzz_case_from_bytes(data, size, &f, &e) == AC_OK) {
            ac_case_line(&f.c, line, n);
            ac_casefile_free(&f);
        }
    } else if (!strcmp(t->name, "combine")) {
        ac_fuzz_partials *p = malloc(sizeof *p);
        if (p) {
            ac_fuzz_partials_decode(data, size, p);
            ac_fuzz_partials_line(p, line, n);
            free(p);
        }
    } else if (!strcmp(t->name, "casefile")) {
        ac_casefile f;
        if (ac_casefile_parse((const char *)data, size, &f, &e) == AC_OK) {
            snprintf(line, n, "casefile: %s", f.title);
            ac_casefile_free(&f);
        } else {
            snprintf(line, n, "casefile input of %zu bytes", size);
        }
    } else {
        ac_fuzz_env env;
        ac_fuzz_env_default(&env);
        env.backend = o->backend;
        env.limits = 0;
        env.oracle_rows = o->rows;
        env.verbose = 0;
        ac_fuzz_outcome out;
        ac_fuzz_outcome_init(&out);
        t->run(data, size, &env, &out);
        snprintf(line, n, "%s", out.line);
        ac_fuzz_outcome_free(&out);
    }
}

static void replay_file(const char *path, const replay_opts *o, replay_count *cnt)
{
    uint8_t *data;
    size_t size;
    ac_error e;
    cnt->files++;
    char reason[1024];
    if (corpus_disabled(path, reason, sizeof reason)) {
        cnt->skipped++;
        printf("%-8s %s  disabled: %s\n", "SKIP", path, reason);
        return;
    }
    if (ac_fuzz_read_file(path, &data, &size, (size_t)1 << 30, &e)) {
        fprintf(stderr, "replay: %s\n", e.msg);
        cnt->errors++;
        return;
    }
    int is_case = 0;
    const ac_fuzz_target *t = o->target ? o->target : target_of(path, data, size, &is_case);
    ac_casefile file;
    int have_file = 0;
    if (t && !strcmp(t->name, "layout")) have_file = ac_casefile_parse((const char *)data, size, &file, &e) == AC_OK;
    if (!t) {
        char names[256];
        ac_fuzz_target_names(names, sizeof names);
        ac_casefile pf;
        if (ac_fuzz_is_casefile(data, size) && ac_casefile_parse((const char *)data, size, &pf, &e) != AC_OK)
            fprintf(stderr, "replay: %s: not a valid case file: %s: %s\n", path, ac_status_name(e.code), e.msg);
        else
            fprintf(stderr, "replay: %s: not a case file and not in a target's folder: give --target (%s)\n", path,
                    names);
        cnt->errors++;
        free(data);
        return;
    }
    if (o->have_filter) {
        char line[512];
        replay_line(t, data, size, o, line, sizeof line);
        if (regexec(&o->filter, line, 0, NULL, 0) != 0) {
            cnt->filtered++;
            if (have_file) ac_casefile_free(&file);
            free(data);
            return;
        }
    }
    ac_fuzz_env env;
    ac_fuzz_env_default(&env);
    env.backend = o->backend;
    env.bug = o->bug;
    env.budget_bytes = o->max_memory;
    env.budget_macs = o->max_work;
    env.limits = 0;
    env.oracle_rows = o->rows;
    env.oracle_threads = 0;
    env.verbose = !o->quiet;
    env.log = stdout;
    /* Pictures: DIR/<file name without its extension>-heat.png and -rows.png;
       old ones are removed first so that only this run's are reported. */
    char stem[PATH_MAX], pics[2][PATH_MAX + 16];
    if (o->png_dir) {
        const char *slash = strrchr(path, '/');
        char name[PATH_MAX];
        snprintf(name, sizeof name, "%s", slash ? slash + 1 : path);
        char *dot = strrchr(name, '.');
        if (dot && dot != name) *dot = '\0';
        snprintf(stem, sizeof stem, "%s/%s", o->png_dir, name);
        snprintf(pics[0], sizeof pics[0], "%s-heat.png", stem);
        snprintf(pics[1], sizeof pics[1], "%s-rows.png", stem);
        unlink(pics[0]);
        unlink(pics[1]);
        env.png_stem = stem;
    }
    if (!o->quiet) {
        printf("== %s  (target %s)\n", path, t->name);
        if (have_file && file.title[0]) printf("title: %s\n", file.title);
        if (have_file && file.note) printf("note: %s\n", file.note);
        if (have_file)
            printf("expect: %s\n", file.expect_error ? ac_status_name(file.expect_code) : "ok");
        /* A binary finding's description sits beside it. */
        char txt[PATH_MAX + 8];
        snprintf(txt, sizeof txt, "%s.txt", path);
        FILE *d = fopen(txt, "r");
        if (d) {
            char l[600];
            while (fgets(l, sizeof l, d)) printf("description: %s", l);
            fclose(d);
        }
    }
    ac_fuzz_outcome out;
    ac_fuzz_outcome_init(&out);
    t->run(data, size, &env, &out);
    /* The verdict is the target's: it judged the file's expectation against
       the contract's rules with the same function the fuzzers use, so an
       input replays to the outcome the fuzzer gave it. A skip here is a
       budget the case is over (not a pass, not a GPU: that was asked
       before), reported as unrun. */
    const char *verdict = out.kind == AC_FUZZ_FINDING     ? "FAIL"
                          : out.kind == AC_FUZZ_BAD_INPUT ? "BAD"
                          : out.kind == AC_FUZZ_SKIPPED   ? "UNRUN"
                          : out.kind == AC_FUZZ_REJECTED  ? "REJECTED"
                          : out.kind == AC_FUZZ_UNSUPPORTED ? "UNSUP"
                                                          : "PASS";
    char why[700];
    snprintf(why, sizeof why, "%s", out.why);
    if (!strcmp(verdict, "FAIL")) cnt->failed++;
    else if (!strcmp(verdict, "BAD") || !strcmp(verdict, "UNRUN")) cnt->errors++;
    else if (!strcmp(verdict, "REJECTED")) cnt->rejected++;
    else if (!strcmp(verdict, "UNSUP")) cnt->unsupported++;
    else cnt->passed++;
    if (o->quiet)
    {
        int say = strcmp(verdict, "PASS") && strcmp(verdict, "REJECTED"); /* FAIL, BAD, UNRUN, UNSUP: say why */
        printf("%-8s %s  %s%s%s\n", verdict, path, out.line, say ? "\n         " : "", say ? why : "");
    }
    else
        printf("result: %s  %s\n", verdict, why);
    for (int k = 0; o->png_dir && k < 2; k++)
        if (is_file(pics[k])) printf("%spicture: %s\n", o->quiet ? "         " : "", pics[k]);
    if (!o->quiet) printf("\n");
    fflush(stdout);
    ac_fuzz_outcome_free(&out);
    if (have_file) ac_casefile_free(&file);
    free(data);
}

static void replay_path(const char *path, const replay_opts *o, replay_count *cnt)
{
    if (!is_dir(path)) {
        replay_file(path, o, cnt);
        return;
    }
    DIR *d = opendir(path);
    if (!d) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        cnt->errors++;
        return;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *nm = e->d_name;
        size_t l = strlen(nm);
        if (nm[0] == '.' || (l > 4 && !strcmp(nm + l - 4, ".txt")) || (l > 3 && !strcmp(nm + l - 3, ".md")) ||
            (l > 2 && !strcmp(nm + l - 2, ".c")) || !strcmp(nm, "DISABLED"))
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            char **nn = realloc(names, cap * sizeof *names);
            if (!nn) break;
            names = nn;
        }
        size_t pl = strlen(path) + l + 2;
        names[n] = malloc(pl);
        if (!names[n]) break;
        snprintf(names[n], pl, "%s/%s", path, nm);
        n++;
    }
    closedir(d);
    if (n == 0) { /* an empty corpus folder replays nothing: that is no pass */
        fprintf(stderr, "replay: %s: no inputs in this folder\n", path);
        cnt->errors++;
    }
    qsort(names, n, sizeof *names, cmp_str);
    for (size_t i = 0; i < n; i++) {
        if (is_file(names[i])) replay_file(names[i], o, cnt);
        free(names[i]);
    }
    free(names);
}

static void replay_usage(FILE *f)
{
    fprintf(f,
            "usage: attncheck replay [options] FILE|DIR...\n"
            "Reproduces case files and fuzz inputs: the case line, the kernel against the oracle, the\n"
            "verdict, the worst elements and an error map; a case file's `expect` line is checked.\n"
            "  --backend auto|gpu|cpu  the CUDA kernels or their CPU models (auto: the GPU when there is one)\n"
            "  --kernel LIB.so         an outside kernel through the plugin ABI (common/ac_plugin.h)\n"
            "  --kernel py:MODULE:ADAPTER  a Python adapter through the bridge (docs/BRIDGE.md)\n"
            "  --bug NAME              inject the classic bug a saved failure was found with (CPU models)\n"
            "  --max-memory BYTES      host memory one check may take (default 4 GiB; -1: no limit)\n"
            "  --max-oracle-work N     oracle multiply-adds one check may take (default 1e11; -1: no limit;\n"
            "                          with --rows N the work of N sampled rows counts)\n"
            "  --target NAME           the fuzz target of files outside corpus/<target>/ (");
    const ac_fuzz_target *const *all = ac_fuzz_targets();
    for (int i = 0; all[i]; i++) fprintf(f, "%s%s", i ? ", " : "", all[i]->name);
    fprintf(f,
            ")\n"
            "  --rows N                oracle rows sampled per check (0, the default: every row)\n"
            "  --filter REGEX          only inputs whose line (case line, or the target's one-line\n"
            "                          description) matches (POSIX extended regex)\n"
            "  --png DIR               pictures of each case's error map\n"
            "  --quiet                 one line per input\n"
            "  --help                  this text\n");
}

static void replay_opts_free(replay_opts *o)
{
    if (o->have_filter) regfree(&o->filter);
    o->have_filter = 0;
}

int ac_replay_main(int argc, char **argv)
{
    enum { OPT_BACKEND = AC_ARGS_LONG, OPT_TARGET, OPT_ROWS, OPT_QUIET, OPT_PNG, OPT_FILTER, OPT_KERNEL, OPT_BUG,
           OPT_MAX_MEMORY, OPT_MAX_WORK };
    static const struct option opts[] = {
        {"backend", required_argument, NULL, OPT_BACKEND}, {"target", required_argument, NULL, OPT_TARGET},
        {"rows", required_argument, NULL, OPT_ROWS},       {"quiet", no_argument, NULL, OPT_QUIET},
        {"png", required_argument, NULL, OPT_PNG},         {"filter", required_argument, NULL, OPT_FILTER},
        {"kernel", required_argument, NULL, OPT_KERNEL},   {"bug", required_argument, NULL, OPT_BUG},
        {"max-memory", required_argument, NULL, OPT_MAX_MEMORY},
        {"max-oracle-work", required_argument, NULL, OPT_MAX_WORK},
        {"help", no_argument, NULL, 'h'},                  {NULL, 0, NULL, 0}};
    replay_opts o;
    memset(&o, 0, sizeof o);
    o.backend_auto = 1;
    const char *filter_text = NULL;
    ac_args a;
    ac_error err;
    ac_args_init(&a, "attncheck replay", argc, argv, opts);
    for (int c; (c = ac_args_next(&a, &err)) != AC_ARGS_END;) {
        ac_status st = AC_OK;
        switch (c) {
        case OPT_BACKEND: st = ac_arg_backend(a.name, optarg, &o.backend, &o.backend_auto, &err); break;
        case OPT_KERNEL: /* an outside kernel through the plugin ABI (common/ac_plugin.h) */
            st = ac_plugin_load(optarg, &o.backend, &err);
            o.backend_auto = 0;
            break;
        case OPT_BUG: st = ac_arg_bug(a.name, optarg, &o.bug, &err); break;
        case OPT_MAX_MEMORY: st = ac_arg_i64(a.name, optarg, -1, INT64_MAX, &o.max_memory, &err); break;
        case OPT_MAX_WORK: st = ac_arg_i64(a.name, optarg, -1, INT64_MAX, &o.max_work, &err); break;
        case OPT_TARGET:
            o.target = ac_fuzz_target_find(optarg);
            if (!o.target) {
                char names[128];
                ac_fuzz_target_names(names, sizeof names);
                st = ac_fail(&err, AC_ERR_PARSE, "%s %.40s: unknown target; one of %s", a.name, optarg, names);
            }
            break;
        case OPT_ROWS: st = ac_arg_i64(a.name, optarg, 0, INT64_MAX, &o.rows, &err); break;
        case OPT_QUIET: o.quiet = 1; break;
        case OPT_PNG:
            st = ac_arg_out_dir(a.name, optarg, &err);
            o.png_dir = optarg;
            break;
        case OPT_FILTER:
            replay_opts_free(&o);
            st = ac_arg_regex(a.name, optarg, &o.filter, &err);
            o.have_filter = st == AC_OK;
            filter_text = optarg;
            break;
        case 'h':
            replay_usage(stdout);
            replay_opts_free(&o);
            return 0;
        default: st = AC_ERR_PARSE; break; /* AC_ARGS_ERROR: err says what */
        }
        if (st) {
            replay_opts_free(&o);
            return ac_args_fail(&a, &err);
        }
    }
    if (optind >= argc) {
        replay_opts_free(&o);
        return ac_args_failf(&a, "no FILE or DIR given");
    }
    char why[160]; /* the backend's own reason: "built without CUDA" is not "no device" */
    if (o.backend_auto) o.backend = ac_gpu_available() ? AC_BACKEND_GPU : AC_BACKEND_MODEL;
    else if (o.backend == AC_BACKEND_GPU && !ac_backend_available(o.backend, why, sizeof why)) {
        printf("replay: skipped: %s\n", why);
        replay_opts_free(&o);
        return AC_EXIT_SKIP;
    }
    replay_count cnt;
    memset(&cnt, 0, sizeof cnt);
    for (int i = optind; i < argc; i++) replay_path(argv[i], &o, &cnt);
    if (o.have_filter)
        printf("replay: --filter '%s' kept %d of %d files\n", filter_text, cnt.files - cnt.filtered, cnt.files);
    printf("replay (%s): %d files: %d passed, %d rejected as expected, %d failed, %d disabled, %d unreadable or unrun",
           ac_backend_name(o.backend), cnt.files - cnt.filtered, cnt.passed, cnt.rejected, cnt.failed, cnt.skipped,
           cnt.errors);
    if (cnt.unsupported) printf(", %d unsupported by the kernel (not passed)", cnt.unsupported);
    printf("\n");
    replay_opts_free(&o);
    if (cnt.errors) return AC_EXIT_USAGE;
    if (cnt.failed) return 1;
    return cnt.unsupported && !cnt.passed && !cnt.rejected ? AC_EXIT_SKIP : 0; /* nothing checked is no pass */
}

/* ======================================================================== */
/* fuzz                                                                      */

/* The supervisor's stop request (common/ac_stop.h). */
#define lf_signalled ac_stop_requested

typedef struct fuzz_opts {
    const ac_fuzz_target *target;
    double seconds;
    int jobs, walk, gpus, backend_set;
    ac_backend backend;
    int backend_auto;
    const char *out;
    const char *seeds;      /* seed folder (default corpus/<target's folder>) */
    uint64_t seed;
    int64_t rows;
    int max_len;
    char **extra;
    int nextra;
    const char *kernel;     /* --kernel PATH: the plugin the walk runs */
    const char *root;       /* --root DIR: the checkout (else found above the program) */
    const char *trace;      /* --trace PREFIX: the walk's inputs, worker by worker */
} fuzz_opts;

static void fuzz_usage(FILE *f)
{
    fprintf(f,
            "usage: attncheck fuzz TARGET [options] [-- LIBFUZZER-FLAGS...]\n"
            "A campaign: libFuzzer fork mode when the target's libFuzzer binary is built (fuzz/build.sh),\n"
            "else the random walk; findings are saved as case files under DIR/findings.\n"
            "  --seconds N             wall-clock budget (default 600)\n"
            "  --jobs N                processes (default one per core)\n"
            "  --walk                  the random walk even when libFuzzer is there\n"
            "  --backend auto|gpu|cpu  auto: the GPU when the target runs kernels and a GPU is there\n"
            "  --kernel LIB.so         walk an outside kernel through the plugin ABI (common/ac_plugin.h)\n"
            "  --kernel py:MODULE:ADAPTER  walk a Python adapter through the bridge (docs/BRIDGE.md); each\n"
            "                          worker process starts its own Python worker\n"
            "  --root DIR              the attncheck checkout (seeds, build-fuzz/); default: found above this program\n"
            "  --gpus N                GPUs to spread the workers over (0, the default: all); worker i\n"
            "                          uses GPU i %% N and its inputs do not depend on N (docs/SCALING.md)\n"
            "  --trace PREFIX          walk: worker i lists its inputs (count, hash, outcome) in PREFIX.wi\n"
            "  --out DIR               default fuzz-out/TARGET\n"
            "  --seeds DIR             seed inputs (default corpus/<target's folder>)\n"
            "  --seed N                the walk's seed (0, the default: from the clock)\n"
            "  --rows N                oracle rows sampled per execution (0: every row)\n"
            "  --max-len N             largest input in bytes (default 65536)\n"
            "  --list, --help          this text\n"
            "targets:\n");
    const ac_fuzz_target *const *all = ac_fuzz_targets();
    for (int i = 0; all[i]; i++) fprintf(f, "  %-9s %s\n", all[i]->name, all[i]->about);
}

/* GPUs without touching CUDA (forked workers pick theirs later): the
   /dev/nvidiaN device files. */
static int count_gpus(void)
{
    int n = 0;
    for (int i = 0; i < 64; i++) {
        char p[32];
        snprintf(p, sizeof p, "/dev/nvidia%d", i);
        if (access(p, F_OK) == 0) n++;
    }
    return n;
}

static int count_files(const char *dir, const char *prefix)
{
    DIR *d = opendir(dir);
    if (!d) return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.' && (!prefix || !strncmp(e->d_name, prefix, strlen(prefix))) &&
            !strstr(e->d_name, ".txt") && !strstr(e->d_name, "mutating-")) /* a running job's input, no finding */
            n++;
    closedir(d);
    return n;
}

static void list_findings(const char *dir, FILE *f)
{
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.' || strstr(e->d_name, ".txt")) continue;
        if (strstr(e->d_name, "mutating-")) { /* left by a crash inside the mutator (fuzz/fuzz_entry.c) */
            fprintf(f, "  %s/%s  (the input under mutation when a job died: mutator_extremes --input replays it)\n",
                    dir, e->d_name);
            continue;
        }
        char p[PATH_MAX + 300];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        fprintf(f, "  %s\n", p);
        ac_casefile cf;
        ac_error err;
        if (ac_casefile_load(p, &cf, &err) == AC_OK) {
            if (cf.note) fprintf(f, "    %s\n", cf.note);
            ac_casefile_free(&cf);
        }
    }
    closedir(d);
}

/* Numbers of a libFuzzer status line ("#N ... cov: C ft: F corp: K ... exec/s: E"). */
typedef struct lf_stats { long long execs, cov, ft, corp, execs_s, crashes; } lf_stats;

static long long field(const char *line, const char *key)
{
    const char *p = strstr(line, key);
    return p ? strtoll(p + strlen(key), NULL, 10) : -1;
}

static void parse_status(const char *line, lf_stats *s)
{
    if (line[0] != '#') return;
    long long v = strtoll(line + 1, NULL, 10);
    if (v > 0) s->execs = v;
    long long x;
    if ((x = field(line, "cov: ")) >= 0) s->cov = x;
    if ((x = field(line, "ft: ")) >= 0) s->ft = x;
    if ((x = field(line, "corp: ")) >= 0) s->corp = x;
    if ((x = field(line, "exec/s: ")) >= 0 || (x = field(line, "exec/s ")) >= 0) s->execs_s = x; /* fork mode: no colon */
    const char *c = strstr(line, "oom/timeout/crash: ");
    if (c) {
        long long a, b, d;
        if (sscanf(c, "oom/timeout/crash: %lld/%lld/%lld", &a, &b, &d) == 3) s->crashes = a + b + d;
    }
}

/* Executions of the fork-mode job now running: the last "#N" of the newest
   job log in libFuzzer's work folder (/tmp/libFuzzerTemp.FuzzWithFork<pid>.dir). */
static long long running_job_execs(pid_t lf)
{
    char dir[128];
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/libFuzzerTemp.FuzzWithFork%d.dir", tmp ? tmp : "/tmp", (int)lf);
    DIR *d = opendir(dir);
    if (!d) return 0;
    char best[PATH_MAX] = "";
    time_t best_t = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l < 5 || strcmp(e->d_name + l - 4, ".log")) continue;
        char p[PATH_MAX];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        struct stat st;
        if (!stat(p, &st) && st.st_mtime >= best_t) {
            best_t = st.st_mtime;
            snprintf(best, sizeof best, "%s", p);
        }
    }
    closedir(d);
    FILE *f = best[0] ? fopen(best, "r") : NULL;
    if (!f) return 0;
    char buf[4097];
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, size > 4096 ? size - 4096 : 0, SEEK_SET);
    size_t n = fread(buf, 1, 4096, f);
    fclose(f);
    buf[n] = '\0';
    long long last = 0;
    for (char *p = buf; (p = strchr(p, '#')); p++)
        if (p == buf || p[-1] == '\n') last = strtoll(p + 1, NULL, 10);
    return last;
}

static int run_libfuzzer(const fuzz_opts *o, const char *bin, const char *root, const char *out)
{
    char corpus[PATH_MAX], findings[PATH_MAX], artifacts[PATH_MAX], merged[PATH_MAX], seeds[PATH_MAX],
        dict[PATH_MAX], prefix[PATH_MAX + 32], logpath[PATH_MAX];
    snprintf(corpus, sizeof corpus, "%s/corpus", out);
    snprintf(findings, sizeof findings, "%s/findings", out);
    snprintf(artifacts, sizeof artifacts, "%s/artifacts", out);
    snprintf(merged, sizeof merged, "%s/merged", out);
    if (o->seeds) snprintf(seeds, sizeof seeds, "%s", o->seeds);
    else snprintf(seeds, sizeof seeds, "%s/corpus/%s", root, o->target->seed_dir);
    snprintf(dict, sizeof dict, "%s/fuzz/dicts/%s.dict", root, o->target->name);
    snprintf(prefix, sizeof prefix, "-artifact_prefix=%s/%s-", artifacts, o->target->name);
    snprintf(logpath, sizeof logpath, "%s/libfuzzer.log", out);
    const char *made[] = {corpus, findings, artifacts};
    for (size_t i = 0; i < sizeof made / sizeof made[0]; i++) {
        ac_error me;
        if (ac_mkdirs(made[i], &me)) {
            fprintf(stderr, "fuzz: %s\n", me.msg);
            return 2;
        }
    }
    char a_fork[32], a_time[48], a_len[48], a_dict[PATH_MAX + 8], a_seed[48];
    snprintf(a_fork, sizeof a_fork, "-fork=%d", o->jobs);
    snprintf(a_time, sizeof a_time, "-max_total_time=%.0f", o->seconds);
    snprintf(a_len, sizeof a_len, "-max_len=%d", o->max_len);
    snprintf(a_dict, sizeof a_dict, "-dict=%s", dict);
    snprintf(a_seed, sizeof a_seed, "-seed=%llu", (unsigned long long)(o->seed & 0x7fffffff));
    const char *args[64];
    int na = 0;
    args[na++] = bin;
    args[na++] = a_fork;
    args[na++] = "-ignore_crashes=1";
    args[na++] = "-ignore_timeouts=1";
    args[na++] = "-ignore_ooms=1";
    args[na++] = a_time;
    args[na++] = a_len;
    args[na++] = prefix;
    args[na++] = "-print_final_stats=1";
    if (o->seed) args[na++] = a_seed;
    if (is_file(dict)) args[na++] = a_dict;
    for (int i = 0; i < o->nextra && na < 56; i++) args[na++] = o->extra[i];
    args[na++] = corpus;
    if (is_dir(seeds)) args[na++] = seeds;
    args[na] = NULL;

    int pipefd[2];
    if (pipe(pipefd)) return 2;
    setenv("AC_FUZZ_FINDINGS", findings, 1);
    if (o->backend == AC_BACKEND_GPU) setenv("AC_FUZZ_BACKEND", "gpu", 1);
    if (o->rows >= 0) {
        char r[32];
        snprintf(r, sizeof r, "%lld", (long long)o->rows);
        setenv("AC_FUZZ_ORACLE_ROWS", r, 1);
    }
    printf("fuzz %s: libFuzzer %s, %d jobs, %.0f s; corpus %s, seeds %s, findings %s, log %s\n", o->target->name,
           bin, o->jobs, o->seconds, corpus, seeds, findings, logpath);
    fflush(stdout);
    double t0 = ac_now();
    /* Ctrl-C reaches libFuzzer too (one process group): it stops and prints
       its stats; this supervisor only notes the signal, forwards a SIGTERM
       sent to it alone, then merges the corpus and prints the summary. */
    ac_stop_catch();
    pid_t pid = fork();
    if (pid < 0) {
        ac_stop_release();
        fprintf(stderr, "fuzz: cannot start %s: fork: %s\n", bin, strerror(errno));
        close(pipefd[0]);
        close(pipefd[1]);
        return AC_EXIT_USAGE;
    }
    if (pid == 0) {
        setpgid(0, 0); /* its own group: a stop reaches libFuzzer's fork-mode jobs too */
        dup2(pipefd[1], 2);
        dup2(pipefd[1], 1);
        close(pipefd[0]);
        close(pipefd[1]);
        execv(bin, (char *const *)args);
        fprintf(stderr, "fuzz: exec %s: %s\n", bin, strerror(errno));
        _exit(127);
    }
    close(pipefd[1]);
    FILE *in = fdopen(pipefd[0], "r");
    FILE *log = fopen(logpath, "w");
    lf_stats s;
    memset(&s, 0, sizeof s);
    char line[8192];
    double next = t0 + 5.0;
    int findings0 = count_files(findings, NULL);
    int fd = pipefd[0], open_ = 1, forwarded = 0;
    double stop_at = 0;
    while (open_) {
        /* A stop: libFuzzer's fork-mode parent does not act on SIGINT, so the
           whole group gets it, then SIGKILL after a grace period. The corpus
           folder and the findings are on disk already (the fork parent
           merges each job's units as the job ends; findings are written when
           found); the merge below runs over what is there. */
        if (lf_signalled && !forwarded) {
            kill(-pid, SIGINT);
            forwarded = 1;
            stop_at = ac_now();
            printf("fuzz %s: interrupted: stopping libFuzzer, then merging the corpus\n", o->target->name);
            fflush(stdout);
        } else if (forwarded == 1 && ac_now() - stop_at > 3.0) {
            kill(-pid, SIGKILL);
            forwarded = 2;
        }
        /* Wait for output at most a second, so the progress line keeps its
           pace even while libFuzzer's fork-mode parent is quiet (it reports
           when a job ends; jobs grow to minutes). */
        struct pollfd pfd = {fd, POLLIN, 0};
        int ready = poll(&pfd, 1, 1000);
        if (ready > 0) {
            if (!fgets(line, sizeof line, in)) {
                open_ = 0;
            } else {
                if (log) fputs(line, log);
                parse_status(line, &s);
                if (!strncmp(line, "FINDING", 7)) fputs(line, stdout);
            }
        }
        double t = ac_now();
        if (t >= next) {
            int nf = count_files(findings, NULL) - findings0 + count_files(artifacts, NULL);
            long long live = s.execs + running_job_execs(pid);
            printf("[fuzz %s] %5.0f s  execs %lld (%.0f/s)  cov %lld  ft %lld  corpus %lld  findings %d\n",
                   o->target->name, t - t0, live, t > t0 ? live / (t - t0) : 0.0, s.cov, s.ft, s.corp, nf);
            fflush(stdout);
            next = t + 5.0;
        }
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
    if (forwarded) kill(-pid, SIGKILL); /* jobs the fork parent left behind */
    if (in) fclose(in);
    if (forwarded) { /* the jobs we stopped left their inputs under mutation: no mutator crash */
        DIR *ad = opendir(artifacts);
        struct dirent *ae;
        while (ad && (ae = readdir(ad)))
            if (strstr(ae->d_name, "mutating-")) {
                char mp_[PATH_MAX + 300];
                snprintf(mp_, sizeof mp_, "%s/%s", artifacts, ae->d_name);
                unlink(mp_);
            }
        if (ad) closedir(ad);
    }
    double el = ac_now() - t0;

    /* Merge: the working corpus minimised into merged/. */
    ac_error merr;
    ac_mkdirs(merged, &merr); /* a failure shows as the merge's own error below */
    pid_t mp = fork();
    if (mp == 0) {
        int fd = log ? fileno(log) : 2;
        dup2(fd, 1);
        dup2(fd, 2);
        char a_merge[] = "-merge=1";
        const char *margs[] = {bin, a_merge, a_len, merged, corpus, NULL};
        execv(bin, (char *const *)margs);
        _exit(127);
    }
    int mstatus = 0;
    if (mp > 0)
        while (waitpid(mp, &mstatus, 0) < 0 && errno == EINTR) {}
    ac_stop_release();
    if (log) fclose(log);

    int nf = count_files(findings, NULL) - findings0, na_ = count_files(artifacts, NULL);
    printf("\nfuzz %s: summary\n", o->target->name);
    printf("  duration      %.0f s (libFuzzer exit status %d%s)\n", el, WIFEXITED(status) ? WEXITSTATUS(status) : -1,
           lf_signalled ? ", stopped by a signal" : "");
    printf("  executions    %lld (%.0f/s over the run; last reported %lld/s)\n", s.execs, el > 0 ? s.execs / el : 0.0,
           s.execs_s);
    printf("  coverage      %lld edges, %lld features\n", s.cov, s.ft);
    printf("  corpus        %lld inputs; merged into %s (%d files)\n", s.corp, merged, count_files(merged, NULL));
    printf("  findings      %d case files in %s, %d libFuzzer artifacts in %s\n", nf, findings, na_, artifacts);
    list_findings(findings, stdout);
    list_findings(artifacts, stdout);
    printf("  next: attncheck replay FILE; save each fixed finding in corpus/%s/\n", o->target->seed_dir);
    return (nf || na_) ? 1 : 0;
}

static int run_walk(const fuzz_opts *o, const char *root, const char *out)
{
    char findings[PATH_MAX], seeds[PATH_MAX];
    snprintf(findings, sizeof findings, "%s/findings", out);
    if (o->seeds) snprintf(seeds, sizeof seeds, "%s", o->seeds);
    else snprintf(seeds, sizeof seeds, "%s/corpus/%s", root, o->target->seed_dir);
    ac_fuzz_walk_opts w;
    memset(&w, 0, sizeof w);
    w.target = o->target;
    ac_fuzz_env_default(&w.env);
    w.env.backend = o->backend;
    if (o->rows >= 0) w.env.oracle_rows = o->rows;
    w.seconds = o->seconds;
    w.workers = o->jobs;
    w.gpus = o->backend == AC_BACKEND_GPU ? (o->gpus > 0 ? o->gpus : count_gpus()) : 0;
    if (o->backend == AC_BACKEND_GPU && w.gpus == 0) w.gpus = 1;
    w.seed = o->seed ? o->seed : (uint64_t)time(NULL);
    w.seed_dirs[0] = seeds;
    w.findings_dir = findings;
    w.log = stdout;
    w.trace = o->trace;
    int findings0 = count_files(findings, NULL);
    printf("fuzz %s: random walk (structure-aware mutator, no coverage feedback), %d workers, %s%s, %.0f s, "
           "seeds %s, findings %s, seed %llu\n",
           o->target->name, w.workers, ac_backend_name(o->backend),
           w.gpus ? (w.gpus > 1 ? " (workers spread over the GPUs)" : " (one GPU)") : "", o->seconds, seeds, findings,
           (unsigned long long)w.seed);
    fflush(stdout);
    ac_fuzz_walk_stats st;
    ac_error err;
    if (ac_fuzz_walk(&w, &st, &err)) {
        fprintf(stderr, "fuzz: %s\n", err.msg);
        return 2;
    }
    int nf = count_files(findings, NULL) - findings0;
    printf("\nfuzz %s: summary\n", o->target->name);
    printf("  duration      %.0f s, %d workers, backend %s\n", st.seconds, w.workers, ac_backend_name(o->backend));
    printf("  executions    %lld (%.0f/s): %lld passed, %lld rejected as expected, %lld skipped (budget)%s",
           (long long)st.execs, st.seconds > 0 ? st.execs / st.seconds : 0.0, (long long)st.passes,
           (long long)st.rejected, (long long)st.skipped, st.unsupported ? ", " : "\n");
    if (st.unsupported) printf("%lld unsupported by the kernel (not passed)\n", (long long)st.unsupported);
    if (st.gpus > 1) { /* what each GPU did: the campaign's scaling (docs/SCALING.md) */
        printf("  per GPU      ");
        for (int g = 0; g < st.gpus && g < AC_FUZZ_MAX_GPUS; g++)
            printf(" GPU%d %lld (%.0f/s)%s", g, (long long)st.execs_gpu[g],
                   st.seconds > 0 ? st.execs_gpu[g] / st.seconds : 0.0, g + 1 < st.gpus ? "," : "\n");
    }
    printf("  coverage      not measured (walk driver)\n");
    printf("  findings      %lld, of %lld kinds (%d new files in %s)\n", (long long)st.findings, (long long)st.unique,
           nf, findings);
    list_findings(findings, stdout);
    if (st.findings) return 1;
    if (st.unsupported && !st.passes) { /* the kernel ran nothing: no pass */
        printf("fuzz %s: every case the kernel was given was unsupported: nothing was checked (exit %d)\n",
               o->target->name, AC_EXIT_SKIP);
        return AC_EXIT_SKIP;
    }
    return 0;
}

int ac_fuzz_main(int argc, char **argv)
{
    fuzz_opts o;
    memset(&o, 0, sizeof o);
    o.seconds = 600;
    o.backend_auto = 1;
    o.rows = -1;
    o.max_len = 65536;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    o.jobs = cores > 0 ? (int)cores : 1;
    /* "--" ends our flags: what follows goes to libFuzzer untouched. */
    int nflags = argc;
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--")) {
            nflags = i;
            o.extra = argv + i + 1;
            o.nextra = argc - i - 1;
            break;
        }
    enum { OPT_SECONDS = AC_ARGS_LONG, OPT_JOBS, OPT_WALK, OPT_GPUS, OPT_OUT, OPT_SEEDS, OPT_SEED, OPT_ROWS,
           OPT_MAX_LEN, OPT_BACKEND, OPT_LIST, OPT_KERNEL, OPT_ROOT, OPT_TRACE };
    static const struct option opts[] = {
        {"seconds", required_argument, NULL, OPT_SECONDS}, {"jobs", required_argument, NULL, OPT_JOBS},
        {"walk", no_argument, NULL, OPT_WALK},             {"gpus", required_argument, NULL, OPT_GPUS},
        {"out", required_argument, NULL, OPT_OUT},         {"seeds", required_argument, NULL, OPT_SEEDS},
        {"seed", required_argument, NULL, OPT_SEED},       {"rows", required_argument, NULL, OPT_ROWS},
        {"max-len", required_argument, NULL, OPT_MAX_LEN}, {"backend", required_argument, NULL, OPT_BACKEND},
        {"list", no_argument, NULL, OPT_LIST},             {"help", no_argument, NULL, 'h'},
        {"kernel", required_argument, NULL, OPT_KERNEL},   {"root", required_argument, NULL, OPT_ROOT},
        {"trace", required_argument, NULL, OPT_TRACE},     {NULL, 0, NULL, 0}};
    ac_args a;
    ac_error err;
    ac_args_init(&a, "attncheck fuzz", nflags, argv, opts);
    for (int c; (c = ac_args_next(&a, &err)) != AC_ARGS_END;) {
        ac_status st = AC_OK;
        switch (c) {
        /* A year at most; libFuzzer reads 0 as "no limit", which a campaign never means. */
        case OPT_SECONDS: st = ac_arg_double(a.name, optarg, 0.001, 365 * 86400.0, &o.seconds, &err); break;
        case OPT_JOBS: st = ac_arg_int(a.name, optarg, 1, 4096, &o.jobs, &err); break;
        case OPT_WALK: o.walk = 1; break;
        case OPT_GPUS: st = ac_arg_int(a.name, optarg, 0, 64, &o.gpus, &err); break; /* 0: count them */
        case OPT_OUT: o.out = optarg; break;
        case OPT_SEEDS: o.seeds = optarg; break;
        case OPT_SEED: st = ac_arg_u64(a.name, optarg, 0, UINT64_MAX, &o.seed, &err); break;
        case OPT_ROWS: st = ac_arg_i64(a.name, optarg, 0, INT64_MAX, &o.rows, &err); break;
        case OPT_MAX_LEN: st = ac_arg_int(a.name, optarg, 1, 1 << 30, &o.max_len, &err); break;
        case OPT_BACKEND: st = ac_arg_backend(a.name, optarg, &o.backend, &o.backend_auto, &err); break;
        case OPT_KERNEL: /* the walk runs in this process and its forks: they inherit the plugin */
            st = ac_plugin_load(optarg, &o.backend, &err);
            o.backend_auto = 0;
            o.kernel = optarg;
            break;
        case OPT_ROOT: o.root = optarg; break;
        case OPT_TRACE: o.trace = optarg; break;
        case OPT_LIST:
        case 'h': fuzz_usage(stdout); return 0;
        default: st = AC_ERR_PARSE; break; /* AC_ARGS_ERROR: err says what */
        }
        if (st) return ac_args_fail(&a, &err);
    }
    if (optind >= nflags) return ac_args_failf(&a, "no TARGET given");
    if (nflags - optind > 1) return ac_args_failf(&a, "%s: unexpected argument (one TARGET; libFuzzer flags go after --)", argv[optind + 1]);
    o.target = ac_fuzz_target_find(argv[optind]);
    if (!o.target) {
        char names[128];
        ac_fuzz_target_names(names, sizeof names);
        return ac_args_failf(&a, "%.40s: unknown target; one of %s", argv[optind], names);
    }
    if (o.jobs < 1) o.jobs = 1;
    /* auto: the GPU when the target runs kernels and a device file exists.
       (No CUDA call here: the workers fork afterwards.) */
    /* A build without CUDA has no GPU backend whatever devices exist: auto takes
       the CPU model and --backend gpu says why it is skipped (its own reason;
       the nocuda stub touches no CUDA, so asking is safe before the fork). */
#ifdef AC_HAVE_CUDA
    int gpu_built = 1;
#else
    int gpu_built = 0;
#endif
    if (o.backend_auto)
        o.backend = (o.target->uses_kernels && gpu_built && count_gpus() > 0) ? AC_BACKEND_GPU : AC_BACKEND_MODEL;
    char why[160];
    if (o.backend == AC_BACKEND_GPU && !gpu_built && !ac_backend_available(o.backend, why, sizeof why)) {
        printf("fuzz: skipped: %s\n", why);
        return AC_EXIT_SKIP;
    }
    char root[PATH_MAX];
    if (find_root(root, sizeof root, o.root)) {
        if (o.root) {
            ac_args a = {.prog = "attncheck fuzz"};
            return ac_args_failf(&a, "--root %s: not a checkout of attncheck (no corpus/ and fuzz/ there)", o.root);
        }
        /* No checkout above the program (an installed binary): seeds only with --seeds. */
        snprintf(root, sizeof root, ".");
        if (!o.seeds)
            printf("fuzz: no repository (corpus/ and fuzz/) above this program: no seeds; give --seeds DIR or --root DIR\n");
    }
    char out[PATH_MAX];
    if (o.out) snprintf(out, sizeof out, "%s", o.out);
    else snprintf(out, sizeof out, "fuzz-out/%s", o.target->name);
    /* The libFuzzer binary: $AC_FUZZ_BIN_DIR, else build-fuzz/fuzz of the repository. */
    char bin[PATH_MAX + 64] = "";
    const char *bd = getenv("AC_FUZZ_BIN_DIR");
    if (bd) snprintf(bin, sizeof bin, "%s/fuzz_%s", bd, o.target->name);
    else snprintf(bin, sizeof bin, "%s/build-fuzz/fuzz/fuzz_%s", root, o.target->name);
    int have_lf = access(bin, X_OK) == 0;
    if (!o.walk && o.backend == AC_BACKEND_MODEL && have_lf) return run_libfuzzer(&o, bin, root, out);
    if (!o.walk && o.backend == AC_BACKEND_MODEL)
        printf("fuzz: no libFuzzer binary at %s (build it with fuzz/build.sh): using the random walk\n", bin);
    return run_walk(&o, root, out);
}
