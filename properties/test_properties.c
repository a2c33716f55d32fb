/* The properties on the CPU models, one Criterion test per law, each looping
 * its parameter grid (dtype x head dim x GQA ratio x layout x op). Seeds are
 * fresh on every run unless ATTNCHECK_SEED is set; a failure prints the seed,
 * the grid point and the broken law, so `ATTNCHECK_SEED=<seed>` replays it. */
#include <criterion/criterion.h>
#include <inttypes.h>
#include <stdio.h>

#include "ac_prop.h"

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

/* Every property of the table has its test above. */
Test(property, table_is_covered) { cr_expect_eq(ac_prop_count, 11); }
