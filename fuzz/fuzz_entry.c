/* libFuzzer entry points of one target (AC_FUZZ_TARGET_NAME, set by the
 * build): the target body, its structure-aware mutator and crossover. A
 * finding is saved as a case file (layout) or raw input with a description
 * into $AC_FUZZ_FINDINGS (when set) and then traps, so libFuzzer writes its
 * crash artifact too. Only here, never in library code.
 *
 * A crash inside the mutator leaves no artifact of libFuzzer's (it saves the
 * unit it was executing, and none is), so the input under mutation is kept
 * in <artifact_prefix>mutating-<pid> while the mutator runs (written before
 * each mutation: a few microseconds against a millisecond execution) and
 * removed at a normal exit; `mutator_extremes --target T --input FILE`
 * replays the mutator on it.
 *
 * Environment: AC_FUZZ_BACKEND=cpu|gpu, AC_FUZZ_ORACLE_ROWS=N (row sampling,
 * default 16; 0 = all), AC_FUZZ_FINDINGS=DIR, AC_FUZZ_VERBOSE=1. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ac_fuzz.h"

#ifndef AC_FUZZ_TARGET_NAME
#error "AC_FUZZ_TARGET_NAME must name the target (layout, combine, api, casefile)"
#endif

size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size);

static const ac_fuzz_target *target;
static ac_fuzz_env env;
static const char *findings_dir;
static ac_fuzz_outcome outcome;
static int mutating_fd = -1;
static char mutating_path[1024];

static void drop_mutating(void)
{
    if (mutating_fd >= 0) close(mutating_fd), unlink(mutating_path);
}

/* The file that holds the input under mutation, beside libFuzzer's artifacts. */
static void open_mutating(int argc, char **argv)
{
    const char *prefix = "";
    for (int i = 1; i < argc; i++)
        if (!strncmp(argv[i], "-artifact_prefix=", 17)) prefix = argv[i] + 17;
    snprintf(mutating_path, sizeof mutating_path, "%smutating-%ld", prefix, (long)getpid());
    mutating_fd = open(mutating_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (mutating_fd >= 0) atexit(drop_mutating);
}

static void keep_mutating(const uint8_t *data, size_t size)
{
    if (mutating_fd < 0) return;
    if (pwrite(mutating_fd, data, size, 0) != (ssize_t)size || ftruncate(mutating_fd, (off_t)size)) {
        close(mutating_fd); /* a full disk: stop trying, fuzzing goes on */
        mutating_fd = -1;
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    open_mutating(*argc, *argv);
    target = ac_fuzz_target_find(AC_FUZZ_TARGET_NAME);
    if (!target) {
        fprintf(stderr, "fuzz: unknown target %s\n", AC_FUZZ_TARGET_NAME);
        return 1;
    }
    ac_fuzz_env_default(&env);
    const char *b = getenv("AC_FUZZ_BACKEND");
    if (b && !strcmp(b, "gpu")) env.backend = AC_BACKEND_GPU;
    const char *rows = getenv("AC_FUZZ_ORACLE_ROWS");
    if (rows) env.oracle_rows = strtoll(rows, NULL, 10);
    const char *v = getenv("AC_FUZZ_VERBOSE");
    env.verbose = v && v[0] == '1';
    env.log = stderr;
    findings_dir = getenv("AC_FUZZ_FINDINGS");
    ac_fuzz_outcome_init(&outcome);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    target->run(data, size, &env, &outcome);
    if (outcome.kind == AC_FUZZ_FINDING) {
        fprintf(stderr, "\nFINDING [%s] %s\n  %s\n", target->name, outcome.line, outcome.why);
        if (findings_dir) {
            char path[1300];
            ac_error err;
            if (ac_fuzz_save_finding(target, data, size, &outcome, findings_dir, path, sizeof path, &err) == AC_OK)
                fprintf(stderr, "  saved: %s\n", path);
            else
                fprintf(stderr, "  not saved: %s\n", err.msg);
        }
        __builtin_trap();
    }
    /* -1: libFuzzer keeps no input that was skipped (over the budget). */
    return outcome.kind == AC_FUZZ_SKIPPED || outcome.kind == AC_FUZZ_BAD_INPUT || outcome.kind == AC_FUZZ_UNSUPPORTED
               ? -1 : 0;
}

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed)
{
    /* One mutation in 8 is libFuzzer's own byte-level one: for the layout
       target that reaches the raw-bytes decoder and the parser's errors, for
       the binary targets odd bit patterns the structured mutator does not draw. */
    keep_mutating(data, size);
    if ((seed & 7u) == 0) return LLVMFuzzerMutate(data, size, max_size);
    return target->mutate(data, size, max_size, (uint64_t)seed * 0x9e3779b97f4a7c15ull ^ size);
}

size_t LLVMFuzzerCustomCrossOver(const uint8_t *a, size_t na, const uint8_t *b, size_t nb, uint8_t *out,
                                 size_t max_out, unsigned int seed)
{
    keep_mutating(a, na);
    if (target->cross) {
        size_t n = target->cross(a, na, b, nb, out, max_out, (uint64_t)seed * 0xbf58476d1ce4e5b9ull);
        if (n) return n;
    }
    /* The head of a and the tail of b. */
    size_t ha = na / 2, tb = nb - nb / 2;
    if (ha + tb > max_out) tb = max_out > ha ? max_out - ha : 0;
    if (ha > max_out) ha = max_out;
    memcpy(out, a, ha);
    memcpy(out + ha, b + (nb - tb), tb);
    return ha + tb;
}
