/* The targets' registry, saving findings, and the random-walk driver: the
 * structure-aware mutators in a loop without libFuzzer, for hosts that have
 * no clang (the GPU host) and for `attncheck fuzz --walk`. Several worker
 * processes (fork) share counters through an anonymous shared mapping;
 * each worker picks its GPU before touching CUDA. */
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS */
#include "ac_devices.h"
#include "ac_fuzz.h"
#include "ac_file.h"
#include "ac_stop.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------------------ */
/* Targets without a crossover of their own leave it NULL. */
#define ac_fuzz_api_cross NULL
#define ac_fuzz_casefile_cross NULL
#define AC_FUZZ_TARGET(name, seed_dir, uses_kernels, about)                                              \
    static const ac_fuzz_target t_##name = {#name, about, ac_fuzz_##name##_run, ac_fuzz_##name##_mutate, \
                                            ac_fuzz_##name##_cross, seed_dir, uses_kernels};
#include "ac_fuzz_targets.def"
#undef AC_FUZZ_TARGET
static const ac_fuzz_target *const all_targets[] = {
#define AC_FUZZ_TARGET(name, ...) &t_##name,
#include "ac_fuzz_targets.def"
#undef AC_FUZZ_TARGET
    NULL};

const ac_fuzz_target *const *ac_fuzz_targets(void) { return all_targets; }

void ac_fuzz_target_names(char *buf, size_t n)
{
    if (n) buf[0] = '\0';
    for (int i = 0; all_targets[i]; i++) {
        size_t len = strlen(buf);
        snprintf(buf + len, n - len, "%s%s", i ? ", " : "", all_targets[i]->name);
    }
}

const ac_fuzz_target *ac_fuzz_target_find(const char *name)
{
    for (int i = 0; all_targets[i]; i++)
        if (name && !strcmp(all_targets[i]->name, name)) return all_targets[i];
    return NULL;
}

/* ------------------------------------------------------------------------ */
static uint64_t fnv1a(const void *p, size_t n, uint64_t h)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

/* File-name form of a line: [a-z0-9.-], runs of anything else as one '-', at most 72 bytes. */
static void slug(const char *line, char *out, size_t n)
{
    size_t k = 0;
    int dash = 0;
    for (const char *p = line; *p && k + 1 < n && k < 72; p++) {
        char ch = *p;
        if (ch >= 'A' && ch <= 'Z') ch = (char)(ch - 'A' + 'a');
        /* only [a-z0-9.-]: file transfers (the device tool) refuse '=' and ',' */
        int ok = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '.';
        if (ok) {
            out[k++] = ch;
            dash = 0;
        } else if (!dash && k) {
            out[k++] = '-';
            dash = 1;
        }
    }
    while (k && out[k - 1] == '-') k--;
    out[k] = '\0';
}

ac_status ac_fuzz_save_finding(const ac_fuzz_target *t, const uint8_t *data, size_t size, const ac_fuzz_outcome *o,
                               const char *dir, char *path_out, size_t path_n, ac_error *err)
{
    char s[96], path[1200];
    slug(o->line, s, sizeof s);
    uint64_t h = fnv1a(data, size, 0xcbf29ce484222325ull);
    ac_status st = ac_mkdirs(dir, err);
    if (st) return st;
    if (o->has_case) {
        snprintf(path, sizeof path, "%s/%s-%s-%08llx.case", dir, t->name, s, (unsigned long long)(h & 0xffffffffu));
        ac_status st = ac_casefile_save(path, &o->file, err);
        if (st) return st;
    } else {
        snprintf(path, sizeof path, "%s/%s-%s-%08llx.bin", dir, t->name, s, (unsigned long long)(h & 0xffffffffu));
        FILE *f = fopen(path, "wb");
        if (!f || fwrite(data, 1, size, f) != size) {
            if (f) fclose(f);
            return ac_fail(err, AC_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
        }
        fclose(f);
        char txt[1210];
        snprintf(txt, sizeof txt, "%.1195s.txt", path);
        FILE *d = fopen(txt, "w");
        if (d) {
            fprintf(d, "%s\n%s\n", o->line, o->why);
            fclose(d);
        }
    }
    if (path_out) snprintf(path_out, path_n, "%s", path);
    return AC_OK;
}

ac_status ac_fuzz_read_file(const char *path, uint8_t **data, size_t *size, size_t max, ac_error *err)
{
    /* Never truncated: an input cut at the cap would replay as another one. */
    return ac_read_file(path, max, data, size, err);
}

/* ------------------------------------------------------------------------ */
/* The walk. */

#define WALK_MAX_INPUT 65536
#define POOL_CAP 2048

typedef struct input { uint8_t *p; size_t n; } input;
typedef struct pool { input *v; int n; } pool;

static void pool_add(pool *pl, const uint8_t *p, size_t n, ac_fuzz_rng *r)
{
    int at = pl->n < POOL_CAP ? pl->n++ : (int)ac_fuzz_below(r, POOL_CAP);
    uint8_t *c = malloc(n ? n : 1);
    if (!c) return;
    memcpy(c, p, n);
    if (at < pl->n - 1 || pl->n == POOL_CAP) free(pl->v[at].p);
    pl->v[at].p = c;
    pl->v[at].n = n;
}

static int cmp_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Seeds in name order: the walk is then a function of (seed, files), the
   same on every machine (readdir order is not). */
static void pool_load_dir(pool *pl, const char *dir, ac_fuzz_rng *r)
{
    DIR *d = opendir(dir);
    if (!d) return;
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        size_t l = strlen(e->d_name);
        if (l > 4 && !strcmp(e->d_name + l - 4, ".txt")) continue; /* descriptions of .bin findings */
        if (!strcmp(e->d_name, "INDEX.md") || !strcmp(e->d_name, "README.md")) continue;
        if (n == cap) {
            char **nn = realloc(names, (cap = cap ? 2 * cap : 64) * sizeof *names);
            if (!nn) break;
            names = nn;
        }
        if (!(names[n] = strdup(e->d_name))) break;
        n++;
    }
    closedir(d);
    qsort(names, n, sizeof *names, cmp_name);
    for (size_t i = 0; i < n; i++) {
        char path[1200];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        free(names[i]);
        struct stat st;
        if (stat(path, &st) || !S_ISREG(st.st_mode)) continue;
        uint8_t *data;
        size_t len;
        ac_error err;
        if (ac_fuzz_read_file(path, &data, &len, WALK_MAX_INPUT, &err) == AC_OK) {
            pool_add(pl, data, len, r);
            free(data);
        }
    }
    free(names);
}

typedef struct shared_stats {
    volatile int64_t execs, passes, rejected, skipped, findings, unique, pool, unsupported;
    volatile int64_t featured; /* executions whose case carried a window, softcap, ALiBi or sinks */
    volatile int64_t execs_gpu[AC_FUZZ_MAX_GPUS];
    volatile int stop;        /* set by the parent on SIGINT/SIGTERM: workers finish their input and leave */
} shared_stats;

/* SIGINT/SIGTERM (common/ac_stop.h): every process of the walk only notes
   it; the workers leave after their current input (its finding, if any, is
   saved already), the parent then prints the summary. */
#define walk_interrupted ac_stop_requested

static void progress(const ac_fuzz_walk_opts *o, const shared_stats *st, double t0, FILE *log);

/* One worker: returns when the deadline or the exec budget is reached. With
   t0 > 0 it prints the progress line itself (single-process walk). */
static void walk_worker(const ac_fuzz_walk_opts *o, int id, double deadline, shared_stats *st, FILE *log, double t0)
{
    double every = o->progress_every > 0 ? o->progress_every : 5.0, next = t0 + every;
    ac_fuzz_rng r = {o->seed * 0x9e3779b97f4a7c15ull + (uint64_t)id + 1};
    pool pl = {calloc(POOL_CAP, sizeof(input)), 0};
    if (!pl.v) return;
    for (int i = 0; i < 8 && o->seed_dirs[i]; i++) pool_load_dir(&pl, o->seed_dirs[i], &r);
    if (pl.n == 0)
        for (int i = 0; i < 16; i++) {
            uint8_t raw[48];
            for (size_t k = 0; k < sizeof raw; k++) raw[k] = (uint8_t)ac_fuzz_next(&r);
            pool_add(&pl, raw, sizeof raw, &r);
        }
    uint8_t *buf = malloc(WALK_MAX_INPUT);
    uint64_t *seen = calloc(4096, sizeof(uint64_t)); /* hashes of saved findings' lines */
    ac_fuzz_outcome out;
    ac_fuzz_outcome_init(&out);
    int64_t execs = 0;
    int gpu = o->gpus > 1 ? id % o->gpus : 0;
    FILE *trace = NULL;
    if (o->trace) {
        char path[1200];
        snprintf(path, sizeof path, "%s.w%d", o->trace, id);
        if (!(trace = fopen(path, "w"))) fprintf(log, "walk: worker %d: cannot write %s: %s\n", id, path, strerror(errno));
    }
    while (buf && seen) {
        if (walk_interrupted || st->stop) break;
        if ((execs & 7) == 0) {
            double t = ac_now();
            if (t >= deadline) break;
            if (t0 > 0 && t >= next) {
                progress(o, st, t0, log);
                next += every;
            }
        }
        if (o->max_execs && st->execs >= o->max_execs) break;
        const input *a = &pl.v[ac_fuzz_below(&r, (uint32_t)pl.n)];
        size_t n;
        if (o->target->cross && pl.n > 1 && ac_fuzz_below(&r, 10) == 0) {
            const input *b = &pl.v[ac_fuzz_below(&r, (uint32_t)pl.n)];
            n = o->target->cross(a->p, a->n, b->p, b->n, buf, WALK_MAX_INPUT, ac_fuzz_next(&r));
            if (!n) continue;
        } else {
            n = a->n < WALK_MAX_INPUT ? a->n : WALK_MAX_INPUT;
            memcpy(buf, a->p, n);
            n = o->target->mutate(buf, n, WALK_MAX_INPUT, ac_fuzz_next(&r));
        }
        o->target->run(buf, n, &o->env, &out);
        execs++;
        /* The case line names the features only when on (ac_case_line). */
        if (strstr(out.line, " window=") || strstr(out.line, " softcap=") || strstr(out.line, " alibi=") ||
            strstr(out.line, " sinks="))
            __sync_fetch_and_add(&st->featured, 1);
        __sync_fetch_and_add(&st->execs, 1);
        __sync_fetch_and_add(&st->execs_gpu[gpu], 1);
        if (trace) {
            uint64_t h = 0xcbf29ce484222325ull;
            for (size_t k = 0; k < n; k++) h = (h ^ buf[k]) * 0x100000001b3ull;
            fprintf(trace, "%lld %016llx %d\n", (long long)execs, (unsigned long long)h, (int)out.kind);
        }
        switch (out.kind) {
        case AC_FUZZ_PASS: __sync_fetch_and_add(&st->passes, 1); break;
        case AC_FUZZ_REJECTED: __sync_fetch_and_add(&st->rejected, 1); break;
        case AC_FUZZ_SKIPPED:
        case AC_FUZZ_BAD_INPUT: __sync_fetch_and_add(&st->skipped, 1); break;
        case AC_FUZZ_UNSUPPORTED: __sync_fetch_and_add(&st->unsupported, 1); break;
        case AC_FUZZ_FINDING: {
            /* One file per kind of finding: the class the check gave it
               (out.kind_sig), else the message with its numbers taken out. */
            uint64_t h = 0xcbf29ce484222325ull;
            for (const char *p = out.kind_sig[0] ? out.kind_sig : out.why; *p; p++)
                if (!(*p >= '0' && *p <= '9')) h = (h ^ (uint8_t)*p) * 0x100000001b3ull;
            uint64_t *slot = &seen[h % 4096];
            __sync_fetch_and_add(&st->findings, 1);
            if (*slot == h) break; /* this worker saved one of this kind already */
            *slot = h;
            __sync_fetch_and_add(&st->unique, 1);
            char path[1300] = "(not saved)";
            ac_error err;
            if (o->findings_dir && ac_fuzz_save_finding(o->target, buf, n, &out, o->findings_dir, path, sizeof path, &err))
                snprintf(path, sizeof path, "(not saved: %s)", err.msg);
            fprintf(log, "FINDING [%s] %s\n  %s\n  saved: %s\n", o->target->name, out.line, out.why, path);
            /* The case file itself too: a log travels where files may not. */
            if (out.has_case) {
                char *text = NULL;
                size_t tl = 0;
                if (ac_casefile_write(&out.file, &text, &tl, &err) == AC_OK) fprintf(log, "%s", text);
                free(text);
            }
            fflush(log);
            break;
        }
        }
        /* The walk keeps what ran; rejected inputs stay in the pool a quarter
           of the time (the validation's neighbourhood is worth exploring,
           but not at the price of the kernels'). */
        if (out.kind == AC_FUZZ_PASS || out.kind == AC_FUZZ_FINDING ||
            (out.kind == AC_FUZZ_REJECTED && ac_fuzz_below(&r, 4) == 0))
            pool_add(&pl, buf, n, &r);
    }
    if (id == 0) st->pool = pl.n;
    if (trace) fclose(trace);
    ac_fuzz_outcome_free(&out);
    for (int i = 0; i < pl.n; i++) free(pl.v[i].p);
    free(pl.v);
    free(buf);
    free(seen);
}

static void progress(const ac_fuzz_walk_opts *o, const shared_stats *st, double t0, FILE *log)
{
    double el = ac_now() - t0;
    fprintf(log,
            "[fuzz %s walk] %6.0f s  execs %lld (%.0f/s)  pass %lld  rejected %lld  skipped %lld%s%.0lld  findings %lld"
            " (%lld kinds)%s%.0lld\n",
            o->target->name, el, (long long)st->execs, el > 0 ? (double)st->execs / el : 0.0, (long long)st->passes,
            (long long)st->rejected, (long long)st->skipped, st->unsupported ? "  unsupported " : "",
            (long long)st->unsupported, (long long)st->findings, (long long)st->unique,
            st->featured ? "  with features " : "", (long long)st->featured);
    fflush(log);
}

ac_status ac_fuzz_walk(const ac_fuzz_walk_opts *o, ac_fuzz_walk_stats *out, ac_error *err)
{
    FILE *log = o->log ? o->log : stderr;
    shared_stats *st = mmap(NULL, sizeof *st, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (st == MAP_FAILED) return ac_fail(err, AC_ERR_NOMEM, "walk: cannot map shared counters");
    memset((void *)st, 0, sizeof *st);
    double t0 = ac_now(), deadline = t0 + o->seconds, every = o->progress_every > 0 ? o->progress_every : 5.0;
    int workers = o->workers > 0 ? o->workers : 1;
    ac_stop_catch();
    if (workers == 1 && o->gpus <= 0) {
        walk_worker(o, 0, deadline, st, log, t0);
        progress(o, st, t0, log);
    } else {
        pid_t *kids = calloc((size_t)workers, sizeof(pid_t));
        if (!kids) return ac_fail(err, AC_ERR_NOMEM, "walk: out of memory");
        fflush(log);
        int started = 0;
        for (int i = 0; i < workers; i++) {
            pid_t p = fork();
            if (p < 0) { /* no more processes: go on with the workers there are */
                fprintf(log, "walk: fork of worker %d failed (%s): %d worker%s\n", i, strerror(errno), started,
                        started == 1 ? "" : "s");
                break;
            }
            if (p == 0) {
                /* Worker i on GPU i % gpus (common/ac_devices.h). */
                if (o->gpus > 1) ac_device_use(i % o->gpus);
                walk_worker(o, i, deadline, st, log, 0.0);
                fflush(log);
                ac_backends_close(); /* _exit skips atexit: a bridge's worker is ended here */
                _exit(0);
            }
            kids[started++] = p;
        }
        if (started == 0) walk_worker(o, 0, deadline, st, log, t0); /* not even one: walk here */
        int alive = started;
        while (alive > 0) {
            double wake = ac_now() + every;
            while (alive > 0 && ac_now() < wake) {
                if (walk_interrupted && !st->stop) {
                    st->stop = 1;
                    fprintf(log, "walk: interrupted: stopping the workers (findings so far are saved)\n");
                }
                int status;
                pid_t p = waitpid(-1, &status, WNOHANG);
                if (p > 0) {
                    alive--;
                    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                        /* A worker crashed: that is a finding of its own
                           (the input is lost; rerun under the sanitizers). */
                        fprintf(log, "FINDING [%s] worker %d died (status 0x%x)\n", o->target->name, (int)p, status);
                        __sync_fetch_and_add(&st->findings, 1);
                    }
                    continue;
                }
                struct timespec nap = {0, 100000000};
                nanosleep(&nap, NULL);
            }
            progress(o, st, t0, log);
        }
        free(kids);
    }
    ac_stop_release();
    if (walk_interrupted) fprintf(log, "walk: stopped by a signal after %.1f s\n", ac_now() - t0);
    if (out) {
        out->execs = st->execs;
        out->passes = st->passes;
        out->rejected = st->rejected;
        out->skipped = st->skipped;
        out->findings = st->findings;
        out->unique = st->unique;
        out->pool = st->pool;
        out->unsupported = st->unsupported;
        out->seconds = ac_now() - t0;
        out->gpus = o->gpus;
        for (int g = 0; g < AC_FUZZ_MAX_GPUS; g++) out->execs_gpu[g] = st->execs_gpu[g];
    }
    munmap((void *)st, sizeof *st);
    return AC_OK;
}
