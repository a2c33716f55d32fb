/* Plain driver: every property over its grid on one backend, a table of the
 * results. For the GPU host (no Criterion there): exits AC_EXIT_SKIP (77)
 * without a CUDA device, so ctest reports the `gpu` test skipped.
 *   property_gpu [--backend gpu|cpu|auto | --kernel LIB.so|py:MODULE:ADAPTER] [--prop NAME] [--max N]
 *                  [--seed S] [--scale K] [--bug NAME]
 * --scale K multiplies the sequence lengths (ac_prop_set_length_scale);
 * --bug injects one of ac_backend.h's bugs into the CPU models (then
 * failures are the point); with the GPU backend it is refused. --kernel
 * holds an outside kernel to the laws: a C plugin or a Python adapter
 * (harness/ac_plugin_load.h); points it refuses by name are skipped, and a
 * run where every point was skipped exits 77 (nothing was checked).
 * A bad flag is exit 2 before any work. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ac_args.h"
#include "ac_clock.h"
#include "ac_plugin_load.h"
#include "ac_prop.h"
#include "ac_status.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: property_gpu [options]\n"
            "Every property over its grid on one backend, a table of the results.\n"
            "  --backend gpu|cpu|auto  the CUDA kernels (default) or their CPU models\n"
            "  --kernel LIB.so|py:MODULE:ADAPTER\n"
            "                          an outside kernel: a plugin (common/ac_plugin.h) or a Python adapter\n"
            "                          through the bridge (docs/BRIDGE.md)\n"
            "  --prop NAME             this property only:");
    for (int i = 0; i < ac_prop_count; i++) fprintf(f, " %s", ac_props[i].name);
    fprintf(f,
            "\n"
            "  --max N                 grid points per property (0, the default: all)\n"
            "  --seed N                default $ATTNCHECK_SEED, else a fresh one (printed)\n"
            "  --scale K               multiply the sequence lengths by K (1 to 64)\n"
            "  --bug NAME              inject a classic bug into the CPU models (then failures are the\n"
            "                          point); needs --backend cpu or auto\n"
            "  --help                  this text\n");
}

int main(int argc, char **argv)
{
    enum { OPT_BACKEND = AC_ARGS_LONG, OPT_PROP, OPT_MAX, OPT_BUG, OPT_SCALE, OPT_SEED, OPT_KERNEL };
    static const struct option opts[] = {
        {"backend", required_argument, NULL, OPT_BACKEND}, {"prop", required_argument, NULL, OPT_PROP},
        {"max", required_argument, NULL, OPT_MAX},         {"bug", required_argument, NULL, OPT_BUG},
        {"scale", required_argument, NULL, OPT_SCALE},     {"seed", required_argument, NULL, OPT_SEED},
        {"kernel", required_argument, NULL, OPT_KERNEL},   {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    ac_backend be = AC_BACKEND_GPU;
    int be_auto = 0, max_cases = 0, scale = 0, have_seed = 0; /* scale 0: $ATTNCHECK_PROP_SCALE or 1 */
    const char *only = NULL;
    ac_bug bug = AC_BUG_NONE;
    uint64_t seed = 0;
    ac_args a;
    ac_error err;
    /* Line-buffered even into a file or a pipe: a law takes minutes on the GPU
       host, and a log that stays empty that long looks like a hang. */
    setvbuf(stdout, NULL, _IOLBF, 0);
    ac_args_init(&a, "property_gpu", argc, argv, opts);
    for (int c; (c = ac_args_next(&a, &err)) != AC_ARGS_END;) {
        ac_status st = AC_OK;
        switch (c) {
        case OPT_BACKEND: st = ac_arg_backend(a.name, optarg, &be, &be_auto, &err); break;
        case OPT_KERNEL:
            st = ac_plugin_load(optarg, &be, &err);
            be_auto = 0;
            break;
        case OPT_PROP: {
            int found = 0;
            for (int i = 0; i < ac_prop_count; i++) found |= !strcmp(optarg, ac_props[i].name);
            if (!found) {
                char names[256] = "";
                for (int i = 0; i < ac_prop_count; i++)
                    snprintf(names + strlen(names), sizeof names - strlen(names), " %s", ac_props[i].name);
                st = ac_fail(&err, AC_ERR_PARSE, "%s %.40s: unknown property; one of:%s", a.name, optarg, names);
            }
            only = optarg;
            break;
        }
        case OPT_MAX: st = ac_arg_int(a.name, optarg, 0, 1 << 30, &max_cases, &err); break;
        case OPT_BUG: st = ac_arg_bug(a.name, optarg, &bug, &err); break;
        /* 64: lengths past 64x the grid's would take hours per property. */
        case OPT_SCALE: st = ac_arg_int(a.name, optarg, 1, 64, &scale, &err); break;
        case OPT_SEED: st = ac_arg_u64(a.name, optarg, 0, UINT64_MAX, &seed, &err), have_seed = st == AC_OK; break;
        case 'h': usage(stdout); return 0;
        default: st = AC_ERR_PARSE; break; /* AC_ARGS_ERROR: err says what */
        }
        if (st) return ac_args_fail(&a, &err);
    }
    if (optind < argc) return ac_args_failf(&a, "%s: unexpected argument (options only)", argv[optind]);
    /* The bugs live in the CPU models: the kernels ignore or refuse them. */
    if (bug && be_auto) be_auto = 0, be = AC_BACKEND_MODEL;
    if (bug && be != AC_BACKEND_MODEL)
        return ac_args_failf(&a, "--bug %s: bugs are injected into the CPU models only; give --backend cpu (or auto)",
                             ac_bug_name(bug));
    if (be_auto) be = ac_gpu_available() ? AC_BACKEND_GPU : AC_BACKEND_MODEL;
    char why[160]; /* the backend's own reason: "built without CUDA" is not "no device" */
    if (be != AC_BACKEND_MODEL && !ac_backend_available(be, why, sizeof why)) {
        printf("property_gpu: skipped: %s\n", why);
        return AC_EXIT_SKIP;
    }
    if (!have_seed) seed = ac_prop_seed_from_env();
    if (scale) ac_prop_set_length_scale(scale);
    printf("properties on %s, bug %s, ATTNCHECK_SEED=%" PRIu64 ", length scale %d\n", ac_backend_name(be),
           ac_bug_name(bug), seed, ac_prop_length_scale());
    int failed = 0, ran = 0, points_passed = 0, points_skipped = 0;
    printf("%-12s %6s %6s %6s %6s %8s %9s  %s\n", "property", "points", "pass", "fail", "skip", "seconds", "worst r",
           "first failure");
    for (int i = 0; i < ac_prop_count; i++) {
        const ac_prop *p = &ac_props[i];
        if (only && strcmp(only, p->name)) continue;
        ran++;
        ac_prop_report rep;
        double t0 = ac_now();
        ac_prop_worst_ratio(1);
        ac_prop_run_grid(p, be, bug, seed, max_cases, 0, stderr, &rep);
        /* worst r: the largest |diff| / tolerance among the within-the-bound
           comparisons that held (bitwise laws have none) */
        printf("%-12s %6d %6d %6d %6d %8.2f %9.3g  %.160s\n", p->name, rep.cases, rep.passed, rep.failed,
               rep.skipped, ac_now() - t0, ac_prop_worst_ratio(1), rep.failed ? rep.first_why : "");
        fflush(stdout);
        failed += rep.failed > 0;
        points_passed += rep.passed;
        points_skipped += rep.skipped;
    }
    if (!ran) { /* not reached: --prop is checked against the list */
        fprintf(stderr, "property_gpu: no property named %s\n", only ? only : "?");
        return AC_EXIT_USAGE;
    }
    if (!failed && !points_passed && points_skipped) { /* every point skipped: nothing was checked */
        printf("SKIP: every point was skipped on %s: nothing was checked\n", ac_backend_name(be));
        return AC_EXIT_SKIP;
    }
    printf("%s: %d of %d properties failed\n", failed ? "FAIL" : "PASS", failed, ran);
    return failed ? 1 : 0;
}
