/* The properties on the CPU models, one Criterion test per law, each looping
 * its parameter grid (dtype x head dim x GQA ratio x layout x op). Seeds are
 * fresh on every run unless ATTNCHECK_SEED is set; a failure prints the seed,
 * the grid point and the broken law, so `ATTNCHECK_SEED=<seed>` replays it. */
#include <criterion/criterion.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ac_backends.h"
#include "ac_gen.h"
#include "ac_prop.h"
#include "ac_verdict.h"
#include "prop_util.h"

static void check_property(const char *name)
{
    const ac_prop *p = ac_prop_find(name);
    cr_assert_not_null(p, "no property named %s", name);
    uint64_t seed = ac_prop_seed_from_env();
    ac_prop_report rep;
    ac_prop_run_grid(p, AC_BACKEND_MODEL, AC_BUG_NONE, seed, 0, 0, stderr, &rep);
    char line[256] = "";
    if (rep.failed) ac_prop_ctx_line(&rep.first_ctx, line, sizeof line);
    cr_expect(rep.failed == 0,
              "property %s (%s): %d of %d grid points failed (ATTNCHECK_SEED=%" PRIu64 "); first at %s:\n%s", name,
              p->statement, rep.failed, rep.cases, seed, line, rep.first_why);
    cr_expect(rep.passed > 0, "property %s: no grid point ran (%d skipped): %s", name, rep.skipped, rep.first_why);
}

Test(property, scale) { check_property("scale"); }
Test(property, gqa) { check_property("gqa"); }
Test(property, causal) { check_property("causal"); }
Test(property, chunked) { check_property("chunked"); }
Test(property, masks) { check_property("masks"); }
Test(property, paging) { check_property("paging"); }
Test(property, batch) { check_property("batch"); }
Test(property, splits) { check_property("splits"); }
Test(property, permutation) { check_property("permutation"); }
Test(property, linearity) { check_property("linearity"); }
Test(property, overflow) { check_property("overflow"); }
Test(property, window) { check_property("window"); }
Test(property, softcap) { check_property("softcap"); }
Test(property, alibi) { check_property("alibi"); }
Test(property, sinks) { check_property("sinks"); }
/* The K/V laws' every point carries its feature: on CPU models that do
   not implement it yet (they declare it in ac_backend_model_ops.features)
   every point is refused as unsupported, which says nothing either way. */
static void check_kv_property(const char *name, uint32_t feature)
{
    const ac_backend_ops *ops = ac_backend_get(AC_BACKEND_MODEL);
    if (ops && !(ops->features[AC_OP_PREFILL] & feature) && !(ops->features[AC_OP_DECODE] & feature))
        cr_skip_test("the CPU models do not implement %s yet", name);
    check_property(name);
}

Test(property, dv) { check_kv_property("dv", AC_FEAT_HEAD_DIM_V); }
Test(property, fp8) { check_kv_property("fp8", AC_FEAT_FP8_KV); }

/* The laws' copy of the verdict's per-element bound (prop_elem_bound) is the
   verdict's: for every element of a run, the verdict's r times C times our
   bound gives back |O - O*| (to rounding). Guards the copy against drift
   when docs/VERDICT.md gains a term. */
static void bound_matches(ac_op op, ac_dtype dt, ac_dist dist)
{
    ac_prop_ctx ctx = {AC_BACKEND_MODEL, AC_BUG_NONE, op, dt, 64, 4, AC_PROP_PAGED_PERMUTED, 12345, 0};
    prop_inst x;
    memset(&x, 0, sizeof x);
    ac_error err;
    ac_rng r;
    ac_rng_init(&r, ctx.seed, PROP_STREAM);
    prop_case_base(&ctx, op, &x.c);
    x.c.dist = dist;
    if (op == AC_OP_COMBINE) x.c.num_splits = 3;
    cr_assert_eq(prop_case_lengths(&x.c, &r, 2, 1, op == AC_OP_DECODE ? 2 : 16, 0, op == AC_OP_COMBINE ? 0 : 40, &err),
                 AC_OK, "%s", err.msg);
    if (op != AC_OP_COMBINE) cr_assert_eq(prop_case_place(&ctx, &x.c, &r, &err), AC_OK, "%s", err.msg);
    cr_assert_eq(prop_gen(&x, &err), AC_OK, "%s", err.msg);
    char why[1024];
    cr_assert_eq(prop_exec(&ctx, &x, "bound", why, sizeof why), AC_PROP_PASS, "%s", why);
    cr_assert_eq(prop_inst_model(&x, &err), AC_OK, "%s", err.msg);
    int64_t n = x.m.rows * x.m.head_dim, compared = 0;
    double *map = malloc(sizeof(double) * (size_t)n);
    ac_verdict v;
    cr_assert_eq(ac_verdict_judge(&x.c, &x.t, &x.m, &x.o, NULL, NULL, &v, map, &err), AC_OK, "%s", err.msg);
    for (int64_t e = 0; e < n; e++) {
        double diff = fabs(prop_out_val(&x.c, &x.o, e) - x.m.o[e]);
        if (!(diff > 0.0) || !(map[e] > 0.0) || !isfinite(map[e])) continue;
        double theirs = diff / (AC_VERDICT_C * map[e]);
        double ours = prop_elem_bound(&x.c, &x.m, e / x.m.head_dim, (int32_t)(e % x.m.head_dim));
        cr_assert(fabs(theirs - ours) <= 1e-9 * ours, "%s %s: element %lld: verdict bound %.17g, ours %.17g",
                  ac_op_name(op), ac_dtype_name(dt), (long long)e, theirs, ours);
        compared++;
    }
    cr_expect(compared > 0, "%s: no element to compare", ac_op_name(op));
    free(map);
    prop_inst_free(&x);
}

Test(property, bound_matches_verdict)
{
    bound_matches(AC_OP_PREFILL, AC_BF16, AC_DIST_NORMAL);
    bound_matches(AC_OP_PREFILL, AC_FP16, AC_DIST_LARGE); /* tiny fp16 weights: the eta_in term */
    bound_matches(AC_OP_DECODE, AC_FP16, AC_DIST_NEEDLE);
    bound_matches(AC_OP_COMBINE, AC_BF16, AC_DIST_NORMAL);
}

/* Every property of the table has its test above. */
Test(property, table_is_covered) { cr_expect_eq(ac_prop_count, 17); }
