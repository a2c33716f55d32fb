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

#include "ac_errpic.h"
#include "ac_fuzz.h"

#define EXIT_SKIP 77

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

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

/* The repository root: the nearest directory, from the working directory
   upwards and then from the executable's, holding corpus/ and fuzz/. */
static int find_root(char *out, size_t n)
{
    char start[2][PATH_MAX];
    int ns = 0;
    if (getcwd(start[ns], sizeof start[ns])) ns++;
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
} replay_opts;

typedef struct replay_count { int files, passed, rejected, failed, skipped, errors; } replay_count;

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
        fprintf(stderr, "replay: %s: not a case file and not in a target's folder: give --target (%s)\n", path,
                "layout, combine, api, casefile");
        cnt->errors++;
        free(data);
        return;
    }
    ac_fuzz_env env;
    ac_fuzz_env_default(&env);
    env.backend = o->backend;
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
    const char *verdict = "PASS";
    char why[700];
    snprintf(why, sizeof why, "%s", out.why);
    if (out.kind == AC_FUZZ_FINDING) {
        verdict = "FAIL";
    } else if (out.kind == AC_FUZZ_SKIPPED) {
        verdict = "SKIP";
    } else if (have_file) {
        /* The file's own expectation, exactly. */
        if (!file.expect_error && out.kind != AC_FUZZ_PASS) {
            verdict = "FAIL";
            snprintf(why, sizeof why, "expected ok, got %s: %s", ac_status_name(out.code), out.why);
        } else if (file.expect_error && (out.kind != AC_FUZZ_REJECTED || out.code != file.expect_code)) {
            verdict = "FAIL";
            snprintf(why, sizeof why, "expected %s, got %s: %s", ac_status_name(file.expect_code),
                     ac_status_name(out.code), out.why);
        } else if (file.expect_error) {
            verdict = "REJECTED";
        }
    } else if (out.kind == AC_FUZZ_REJECTED) {
        verdict = "REJECTED";
    }
    if (!strcmp(verdict, "FAIL")) cnt->failed++;
    else if (!strcmp(verdict, "SKIP")) cnt->skipped++;
    else if (!strcmp(verdict, "REJECTED")) cnt->rejected++;
    else cnt->passed++;
    if (o->quiet)
        printf("%-8s %s  %s%s%s\n", verdict, path, out.line, !strcmp(verdict, "FAIL") ? "\n         " : "",
               !strcmp(verdict, "FAIL") ? why : "");
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
    qsort(names, n, sizeof *names, cmp_str);
    for (size_t i = 0; i < n; i++) {
        if (is_file(names[i])) replay_file(names[i], o, cnt);
        free(names[i]);
    }
    free(names);
}

int ac_replay_main(int argc, char **argv)
{
    replay_opts o;
    memset(&o, 0, sizeof o);
    o.backend_auto = 1;
    const char **paths = calloc((size_t)argc + 1, sizeof *paths);
    int np = 0;
    if (!paths) return 2;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--backend") && i + 1 < argc) {
            const char *b = argv[++i];
            o.backend_auto = !strcmp(b, "auto");
            if (!strcmp(b, "gpu")) o.backend = AC_BACKEND_GPU;
            else if (!strcmp(b, "cpu")) o.backend = AC_BACKEND_MODEL;
            else if (!o.backend_auto) {
                fprintf(stderr, "replay: --backend %s: expected auto, cpu or gpu\n", b);
                free(paths);
                return 2;
            }
        } else if (!strcmp(a, "--target") && i + 1 < argc) {
            o.target = ac_fuzz_target_find(argv[++i]);
            if (!o.target) {
                fprintf(stderr, "replay: unknown target %s\n", argv[i]);
                free(paths);
                return 2;
            }
        } else if (!strcmp(a, "--rows") && i + 1 < argc) {
            o.rows = strtoll(argv[++i], NULL, 10);
        } else if (!strcmp(a, "--quiet")) {
            o.quiet = 1;
        } else if (!strcmp(a, "--png") && i + 1 < argc) {
            o.png_dir = argv[++i];
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "replay: unknown option %s\n", a);
            free(paths);
            return 2;
        } else {
            paths[np++] = a;
        }
    }
    if (!np) {
        fprintf(stderr, "usage: attncheck replay [--backend auto|cpu|gpu] [--target T] [--rows N] [--quiet] [--png DIR] FILE|DIR...\n");
        free(paths);
        return 2;
    }
    if (o.png_dir) {
        ac_error e;
        if (ac_errpic_mkdirs(o.png_dir, &e)) {
            fprintf(stderr, "replay: --png: %s\n", e.msg);
            free(paths);
            return 2;
        }
    }
    char why[160]; /* the backend's own reason: "built without CUDA" is not "no device" */
    if (o.backend_auto) o.backend = ac_gpu_available() ? AC_BACKEND_GPU : AC_BACKEND_MODEL;
    else if (o.backend == AC_BACKEND_GPU && !ac_backend_available(o.backend, why, sizeof why)) {
        printf("replay: skipped: %s\n", why);
        free(paths);
        return EXIT_SKIP;
    }
    replay_count cnt;
    memset(&cnt, 0, sizeof cnt);
    for (int i = 0; i < np; i++) replay_path(paths[i], &o, &cnt);
    printf("replay (%s): %d files: %d passed, %d rejected as expected, %d failed, %d skipped, %d unreadable\n",
           ac_backend_name(o.backend), cnt.files, cnt.passed, cnt.rejected, cnt.failed, cnt.skipped, cnt.errors);
    free(paths);
    if (cnt.errors) return 2;
    return cnt.failed ? 1 : 0;
}

/* ======================================================================== */
/* fuzz                                                                      */

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
} fuzz_opts;

static void fuzz_usage(FILE *f)
{
    fprintf(f,
            "usage: attncheck fuzz TARGET [--seconds N] [--jobs N] [--walk] [--backend auto|cpu|gpu] [--gpus N]\n"
            "                      [--out DIR] [--seeds DIR] [--seed N] [--rows N] [--max-len N] [-- LIBFUZZER-FLAGS...]\n"
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
            !strstr(e->d_name, ".txt"))
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

static int mkdir_p(const char *path)
{
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            if (mkdir(tmp, 0777) && errno != EEXIST) return -1;
            *p = '/';
        }
    return (mkdir(tmp, 0777) && errno != EEXIST) ? -1 : 0;
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
    if (mkdir_p(corpus) || mkdir_p(findings) || mkdir_p(artifacts)) {
        fprintf(stderr, "fuzz: cannot create %s: %s\n", out, strerror(errno));
        return 2;
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
    double t0 = now_s();
    pid_t pid = fork();
    if (pid == 0) {
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
    int fd = pipefd[0], open_ = 1;
    while (open_) {
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
        double t = now_s();
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
    waitpid(pid, &status, 0);
    if (in) fclose(in);
    double el = now_s() - t0;

    /* Merge: the working corpus minimised into merged/. */
    mkdir_p(merged);
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
    if (mp > 0) waitpid(mp, &mstatus, 0);
    if (log) fclose(log);

    int nf = count_files(findings, NULL) - findings0, na_ = count_files(artifacts, NULL);
    printf("\nfuzz %s: summary\n", o->target->name);
    printf("  duration      %.0f s (libFuzzer exit status %d)\n", el, WIFEXITED(status) ? WEXITSTATUS(status) : -1);
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
    printf("  executions    %lld (%.0f/s): %lld passed, %lld rejected as expected, %lld skipped (budget)\n",
           (long long)st.execs, st.seconds > 0 ? st.execs / st.seconds : 0.0, (long long)st.passes,
           (long long)st.rejected, (long long)st.skipped);
    printf("  coverage      not measured (walk driver)\n");
    printf("  findings      %lld, of %lld kinds (%d new files in %s)\n", (long long)st.findings, (long long)st.unique,
           nf, findings);
    list_findings(findings, stdout);
    return st.findings ? 1 : 0;
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
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--")) {
            o.extra = argv + i + 1;
            o.nextra = argc - i - 1;
            break;
        } else if (!strcmp(a, "--list") || !strcmp(a, "--help") || !strcmp(a, "-h")) {
            fuzz_usage(stdout);
            return 0;
        } else if (!strcmp(a, "--seconds") && i + 1 < argc) o.seconds = strtod(argv[++i], NULL);
        else if (!strcmp(a, "--jobs") && i + 1 < argc) o.jobs = atoi(argv[++i]);
        else if (!strcmp(a, "--walk")) o.walk = 1;
        else if (!strcmp(a, "--gpus") && i + 1 < argc) o.gpus = atoi(argv[++i]);
        else if (!strcmp(a, "--out") && i + 1 < argc) o.out = argv[++i];
        else if (!strcmp(a, "--seeds") && i + 1 < argc) o.seeds = argv[++i];
        else if (!strcmp(a, "--seed") && i + 1 < argc) o.seed = strtoull(argv[++i], NULL, 0);
        else if (!strcmp(a, "--rows") && i + 1 < argc) o.rows = strtoll(argv[++i], NULL, 10);
        else if (!strcmp(a, "--max-len") && i + 1 < argc) o.max_len = atoi(argv[++i]);
        else if (!strcmp(a, "--backend") && i + 1 < argc) {
            const char *b = argv[++i];
            o.backend_auto = !strcmp(b, "auto");
            if (!strcmp(b, "gpu")) o.backend = AC_BACKEND_GPU;
            else if (!strcmp(b, "cpu")) o.backend = AC_BACKEND_MODEL;
            else if (!o.backend_auto) {
                fprintf(stderr, "fuzz: --backend %s: expected auto, cpu or gpu\n", b);
                return 2;
            }
        } else if (a[0] == '-') {
            fprintf(stderr, "fuzz: unknown option %s\n", a);
            fuzz_usage(stderr);
            return 2;
        } else if (!o.target) {
            o.target = ac_fuzz_target_find(a);
            if (!o.target) {
                fprintf(stderr, "fuzz: unknown target %s\n", a);
                fuzz_usage(stderr);
                return 2;
            }
        }
    }
    if (!o.target) {
        fuzz_usage(stderr);
        return 2;
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
        return EXIT_SKIP;
    }
    char root[PATH_MAX];
    if (find_root(root, sizeof root)) {
        /* No checkout around (a shipped binary): seeds only with --seeds. */
        snprintf(root, sizeof root, ".");
        if (!o.seeds) printf("fuzz: no repository (corpus/ and fuzz/) found from here: no seeds; give --seeds DIR\n");
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
