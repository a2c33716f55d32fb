/* Plain driver: every property over its grid on one backend, a table of the
 * results. For the GPU host (no Criterion there): exits 77 without a CUDA
 * device, so ctest reports the `gpu` test skipped.
 *   property_gpu [--backend gpu|cpu] [--prop NAME] [--max N] [--seed S] [--scale K]
 *                  [--bug NAME]
 * --scale K multiplies the sequence lengths (ac_prop_set_length_scale);
 * --bug injects one of ac_backend.h's bugs (then failures are the point). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ac_prop.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv)
{
    ac_backend be = AC_BACKEND_GPU;
    const char *only = NULL;
    int max_cases = 0;
    ac_bug bug = AC_BUG_NONE;
    uint64_t seed = ac_prop_seed_from_env();
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--backend") && i + 1 < argc) {
            i++;
            be = !strcmp(argv[i], "gpu") ? AC_BACKEND_GPU : AC_BACKEND_MODEL;
        } else if (!strcmp(argv[i], "--prop") && i + 1 < argc) {
            only = argv[++i];
        } else if (!strcmp(argv[i], "--max") && i + 1 < argc) {
            max_cases = atoi(argv[++i]);
        } else if (!strcmp(argv[i], "--bug") && i + 1 < argc) {
            i++;
            int found = 0;
            for (int b = 0; b < AC_BUG_COUNT; b++)
                if (!strcmp(argv[i], ac_bug_name((ac_bug)b))) {
                    bug = (ac_bug)b;
                    found = 1;
                }
            if (!found) {
                fprintf(stderr, "property_gpu: unknown bug %s\n", argv[i]);
                return 2;
            }
        } else if (!strcmp(argv[i], "--scale") && i + 1 < argc) {
            ac_prop_set_length_scale(atoi(argv[++i]));
        } else if (!strcmp(argv[i], "--seed") && i + 1 < argc) {
            seed = strtoull(argv[++i], NULL, 0);
        } else {
            fprintf(stderr, "usage: %s [--backend gpu|cpu] [--prop NAME] [--max N] [--seed S] [--scale K] [--bug NAME]\n",
                    argv[0]);
            return 2;
        }
    }
    char why[160]; /* the backend's own reason: "built without CUDA" is not "no device" */
    if (be == AC_BACKEND_GPU && !ac_backend_available(be, why, sizeof why)) {
        printf("property_gpu: skipped: %s\n", why);
        return 77;
    }
    printf("properties on %s, bug %s, ATTNCHECK_SEED=%" PRIu64 ", length scale %d\n", ac_backend_name(be),
           ac_bug_name(bug), seed, ac_prop_length_scale());
    int failed = 0, ran = 0;
    printf("%-12s %6s %6s %6s %6s %8s %9s  %s\n", "property", "points", "pass", "fail", "skip", "seconds", "worst r",
           "first failure");
    for (int i = 0; i < ac_prop_count; i++) {
        const ac_prop *p = &ac_props[i];
        if (only && strcmp(only, p->name)) continue;
        ran++;
        ac_prop_report rep;
        double t0 = now_s();
        ac_prop_worst_ratio(1);
        ac_prop_run_grid(p, be, bug, seed, max_cases, 0, stderr, &rep);
        /* worst r: the largest |diff| / tolerance among the within-the-bound
           comparisons that held (bitwise laws have none) */
        printf("%-12s %6d %6d %6d %6d %8.2f %9.3g  %.160s\n", p->name, rep.cases, rep.passed, rep.failed,
               rep.skipped, now_s() - t0, ac_prop_worst_ratio(1), rep.failed ? rep.first_why : "");
        fflush(stdout);
        failed += rep.failed > 0;
    }
    if (!ran) {
        fprintf(stderr, "property_gpu: no property named %s\n", only ? only : "?");
        return 2;
    }
    printf("%s: %d of %d properties failed\n", failed ? "FAIL" : "PASS", failed, ran);
    return failed ? 1 : 0;
}
