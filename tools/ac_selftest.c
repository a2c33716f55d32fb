/* `attncheck selftest`: each injectable bug against each property and the
 * oracle verdict, on the CPU models. A check "catches" a bug when it fails on
 * one of the first N cases; the table gives, per bug, the checks that caught
 * it and after how many cases. With no bug injected every check must pass. */
#include "ac_selftest.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ac_args.h"
#include "ac_check.h"
#include "ac_gen.h"
#include "ac_prop.h"

#define SELFTEST_STREAM 0x73656c66ULL /* "self" */
#define ORACLE_ROWS 64                /* sampled oracle rows per case: the bugs move every row */
#define ORACLE_TEMPLATES 10
#define SELFTEST_MAX_CASES 100000         /* a sanity bound: a case takes ~0.1 s */

static int g_verbose; /* --verbose: one line per case run */

typedef struct check_result {
    int caught_at; /* 1-based case of the first failure; 0: none */
    int ran;       /* cases run (skips excluded) */
    char why[1024];
} check_result;

/* Independent-looking seeds from (base, index). */
static uint64_t mix(uint64_t x) { return ac_rng_hash(x); }

/* ---- property checks -------------------------------------------------------------- */

/* Up to `cases` points of p's grid: a seeded shuffle, taken round-robin over
   the ops so that every op the law covers is tried early. */
static int pick_points(const ac_prop *p, ac_bug bug, uint64_t seed, int cases, ac_prop_ctx *out)
{
    int total = ac_prop_grid(p, AC_BACKEND_MODEL, bug, seed, NULL, 0);
    ac_prop_ctx *all = calloc((size_t)total + 1, sizeof *all);
    int *taken = calloc((size_t)total + 1, sizeof *taken);
    if (!all || !taken) {
        free(all);
        free(taken);
        return 0;
    }
    ac_prop_grid(p, AC_BACKEND_MODEL, bug, seed, all, total);
    ac_rng r;
    ac_rng_init(&r, seed, SELFTEST_STREAM);
    for (int i = total - 1; i > 0; i--) {
        int j = (int)ac_rng_below(&r, (uint64_t)i + 1);
        ac_prop_ctx t = all[i];
        all[i] = all[j];
        all[j] = t;
    }
    int got = 0;
    while (got < cases && got < total) {
        int progress = 0;
        for (int op = 0; op < AC_OP_COUNT && got < cases; op++)
            for (int i = 0; i < total; i++)
                if (!taken[i] && (int)all[i].op == op) {
                    taken[i] = 1;
                    out[got++] = all[i];
                    progress = 1;
                    break;
                }
        if (!progress) break;
    }
    free(all);
    free(taken);
    return got;
}

static void run_property(const ac_prop *p, ac_bug bug, uint64_t seed, int cases, check_result *res)
{
    memset(res, 0, sizeof *res);
    ac_prop_ctx *pts = calloc((size_t)cases + 1, sizeof *pts);
    if (!pts) {
        snprintf(res->why, sizeof res->why, "out of memory");
        res->caught_at = -1;
        return;
    }
    int np = pick_points(p, bug, seed, cases, pts);
    for (int i = 0; i < np; i++) {
        char why[1024] = "";
        int rc = p->fn(&pts[i], why, sizeof why);
        if (g_verbose) {
            char line[256];
            ac_prop_ctx_line(&pts[i], line, sizeof line);
            printf("    %-11s %s | %s\n", p->name, rc == AC_PROP_PASS ? "pass" : rc == AC_PROP_SKIP ? "skip" : "FAIL",
                   line);
        }
        if (rc == AC_PROP_SKIP) continue;
        res->ran++;
        if (rc != AC_PROP_PASS) {
            char line[256];
            ac_prop_ctx_line(&pts[i], line, sizeof line);
            res->caught_at = res->ran;
            snprintf(res->why, sizeof res->why, "[%s] %s", line, why);
            break;
        }
    }
    free(pts);
}

/* ---- the oracle verdict ------------------------------------------------------------ */

/* Case k of the oracle's list: ten templates, each aimed at a family of
   bugs (needle and poscode data make a dropped or extra key visible). */
static ac_status oracle_case(int k, uint64_t seed, ac_case *c, ac_error *err)
{
    ac_rng r;
    ac_rng_init(&r, seed, SELFTEST_STREAM);
    ac_case_init(c);
    c->seed = seed;
    c->dtype = (k / ORACLE_TEMPLATES) % 2 ? AC_FP16 : AC_BF16;
    c->head_dim = (k / (2 * ORACLE_TEMPLATES)) % 2 ? 128 : 64;
    c->heads_kv = 2;
    c->heads_q = 8;
    ac_status st = ac_case_set_batch(c, 2, err);
    if (st) return st;
#define PICK(lo, hi) ((int32_t)(lo) + (int32_t)ac_rng_below(&r, (uint64_t)((hi) - (lo) + 1)))
    switch (k % ORACLE_TEMPLATES) {
    case 9: { /* case 1 with MLA's shape (D_qk = 1.5 D_v: V read with D_qk as
                 its head dim moves every row but the first) on an E5M2 cache
                 with one scale per tensor; k - 8 keeps dtype and head dim */
        static const float ks[1] = {0.25f}, vs[1] = {0.5f};
        ac_case_free(c);
        st = oracle_case(k - 8, seed, c, err);
        if (st) return st;
        c->head_dim_v = c->head_dim;
        c->head_dim = c->head_dim * 3 / 2;
        c->kv_format = AC_KV_E5M2;
        return ac_case_set_kv_scales(c, ks, vs, 1, err);
    }
    case 0: /* contiguous prefill, BOTTOM_RIGHT, Lq < Lk, needles */
        c->op = AC_OP_PREFILL;
        c->causal = AC_CAUSAL_BOTTOM_RIGHT;
        c->dist = AC_DIST_NEEDLE;
        for (int b = 0; b < 2; b++) {
            c->seqlen_q[b] = PICK(4, 20);
            c->seqlen_k[b] = c->seqlen_q[b] + PICK(1, 30);
        }
        return AC_OK;
    case 7: { /* case 1 with ALiBi's standard slopes (a flipped sign moves
                 every weight) and sinks that take a visible share of each row */
        float slopes[8], sinks[8];
        for (int h = 0; h < 8; h++) {
            slopes[h] = exp2f(-(float)(h + 1)); /* 2^(-8 (h + 1) / Hq), Hq = 8 */
            sinks[h] = (float)PICK(0, 24) / 8.0f;
        }
        st = ac_case_set_alibi(c, slopes, 8, err);
        if (!st) st = ac_case_set_sinks(c, sinks, 8, err);
        if (st) return st;
    }
        /* fall through */
    case 1: /* decode, permuted pool, 3 splits, poscode; the unread tail of
               the last block holds ordinary data, so reading it shows as
               extra keys (NaN there can vanish in a lane that has no finite
               logit: fmax ignores NaN) */
        c->op = AC_OP_DECODE;
        c->causal = AC_CAUSAL_BOTTOM_RIGHT;
        c->dist = AC_DIST_POSCODE;
        c->num_splits = 3;
        for (int b = 0; b < 2; b++) {
            c->seqlen_q[b] = PICK(1, 2);
            c->seqlen_k[b] = PICK(20, 100);
        }
        c->block_size = 16;
        return ac_case_make_layout(c, AC_LAYOUT_PERMUTED, 1, err);
    case 2: /* combine of 4 splits, NaN in the empty splits' partials */
        c->op = AC_OP_COMBINE;
        c->num_splits = 4;
        c->special = AC_SPECIAL_NAN_PARTIALS;
        for (int b = 0; b < 2; b++) c->seqlen_q[b] = PICK(2, 6);
        return AC_OK;
    case 3: /* store with padding tokens */
        c->op = AC_OP_STORE;
        for (int b = 0; b < 2; b++) c->seqlen_k[b] = PICK(10, 60);
        c->block_size = 16;
        st = ac_case_make_layout(c, AC_LAYOUT_PERMUTED, 1, err);
        if (st) return st;
        return ac_case_make_store_slots(c, 5, 2, err);
    case 8: { /* case 4 on an E4M3 cache with one scale per KV head, none
                 of the v scales 1: an output that misses its v scale is off
                 by 2x or 4x */
        static const float ks[2] = {0.5f, 2.0f}, vs[2] = {2.0f, 0.25f};
        c->kv_format = AC_KV_E4M3;
        st = ac_case_set_kv_scales(c, ks, vs, 2, err);
        if (st) return st;
    }
        /* fall through */
    case 4: /* paged prefill, shared prefix, TOP_LEFT plus a bool mask, poscode */
        c->op = AC_OP_PREFILL;
        c->causal = AC_CAUSAL_TOP_LEFT;
        c->mask = AC_MASK_BOOL;
        c->dist = AC_DIST_POSCODE;
        for (int b = 0; b < 2; b++) {
            c->seqlen_q[b] = PICK(4, 16);
            c->seqlen_k[b] = c->seqlen_q[b] + PICK(16, 40);
        }
        c->block_size = 16;
        return ac_case_make_layout(c, AC_LAYOUT_SHARED_PREFIX, 0, err);
    case 6: /* contiguous prefill, BOTTOM_RIGHT with Lq < Lk, a window, a
               softcap and a bool mask: a top-left window moves by Lk - Lq,
               capping after the mask turns masked keys into logit -c */
        c->op = AC_OP_PREFILL;
        c->causal = AC_CAUSAL_BOTTOM_RIGHT;
        c->mask = AC_MASK_BOOL;
        for (int b = 0; b < 2; b++) {
            c->seqlen_q[b] = PICK(4, 20);
            c->seqlen_k[b] = c->seqlen_q[b] + PICK(8, 40);
        }
        c->window_left = PICK(2, 24);
        c->window_right = 0;
        c->softcap = (float)PICK(2, 8);
        return AC_OK;
    default: /* paged prefill, no causal mode (every key up to Lk, so the
                unread tail is next to read keys), needles, NaN slots and
                garbage table entries */
        c->op = AC_OP_PREFILL;
        c->causal = AC_CAUSAL_NONE;
        c->dist = AC_DIST_NEEDLE;
        c->special = AC_SPECIAL_NAN_SLOTS | AC_SPECIAL_GARBAGE_TABLE;
        for (int b = 0; b < 2; b++) {
            c->seqlen_q[b] = PICK(4, 20);
            c->seqlen_k[b] = c->seqlen_q[b] + PICK(5, 40);
        }
        c->block_size = 32;
        return ac_case_make_layout(c, AC_LAYOUT_IDENTITY, 2, err);
    }
#undef PICK
}

static void run_oracle(ac_bug bug, uint64_t seed, int cases, check_result *res)
{
    memset(res, 0, sizeof *res);
    for (int k = 0; k < cases; k++) {
        ac_case c;
        ac_error err;
        ac_error_clear(&err);
        ac_status st = oracle_case(k, mix(seed ^ mix((uint64_t)k + 1)), &c, &err);
        char line[512];
        ac_case_line(&c, line, sizeof line);
        if (st) {
            snprintf(res->why, sizeof res->why, "[%s] case setup failed: %s: %s", line, ac_status_name(st), err.msg);
            res->caught_at = -1; /* a broken harness is never a catch */
            ac_case_free(&c);
            return;
        }
        ac_check_opts opts;
        memset(&opts, 0, sizeof opts);
        opts.backend = AC_BACKEND_MODEL;
        opts.bug = bug;
        opts.max_rows = ORACLE_ROWS;
        ac_check_result cr;
        memset(&cr, 0, sizeof cr);
        st = ac_check_case(&c, &opts, &cr);
        if (st == AC_ERR_UNSUPPORTED && cr.stage && !strcmp(cr.stage, "kernel")) {
            /* a feature the models do not implement (yet): not run, never a catch */
            if (g_verbose) printf("    oracle %-20s unsupported | %s\n", ac_bug_name(bug), line);
            ac_check_result_free(&cr);
            ac_case_free(&c);
            continue;
        }
        res->ran++;
        if (g_verbose)
            printf("    oracle %-20s %s | %s\n", ac_bug_name(bug), st ? ac_status_name(st) : cr.verdict.summary, line);
        if (st || !cr.verdict.pass) {
            res->caught_at = res->ran;
            if (st)
                snprintf(res->why, sizeof res->why, "[%s] %s: %s", line, ac_status_name(st), cr.error.msg);
            else
                snprintf(res->why, sizeof res->why, "[%s] %s", line, cr.verdict.summary);
            ac_check_result_free(&cr);
            ac_case_free(&c);
            return;
        }
        ac_check_result_free(&cr);
        ac_case_free(&c);
    }
}

/* ---- the table ------------------------------------------------------------------------ */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: attncheck selftest [options]\n"
            "Injects each classic bug into the CPU models and shows which checks (the properties and\n"
            "the oracle verdict) catch it, and after how many cases; without a bug every check must pass.\n"
            "  --cases N     grid points per check and bug (default %d, 1 to %d)\n"
            "  --seed N      default $ATTNCHECK_SEED, else a fresh one (printed)\n"
            "  --bug NAME    this bug only:",
            ORACLE_TEMPLATES, SELFTEST_MAX_CASES);
    for (int b = 1; b < AC_BUG_COUNT; b++) fprintf(f, " %s", ac_bug_name((ac_bug)b));
    fprintf(f,
            "\n"
            "  --quiet       no example line under each bug\n"
            "  --verbose     a line for every case run\n"
            "  --help        this text\n");
}

int ac_selftest_main(int argc, char **argv)
{
    enum { OPT_CASES = AC_ARGS_LONG, OPT_SEED, OPT_BUG, OPT_QUIET, OPT_VERBOSE };
    static const struct option opts[] = {
        {"cases", required_argument, NULL, OPT_CASES}, {"seed", required_argument, NULL, OPT_SEED},
        {"bug", required_argument, NULL, OPT_BUG},     {"quiet", no_argument, NULL, OPT_QUIET},
        {"verbose", no_argument, NULL, OPT_VERBOSE},   {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    int cases = ORACLE_TEMPLATES, quiet = 0, have_seed = 0; /* every oracle template once */
    ac_bug only = AC_BUG_NONE;
    int only_set = 0;
    uint64_t seed = 0;
    ac_args a;
    ac_error err;
    ac_args_init(&a, "attncheck selftest", argc, argv, opts);
    for (int c; (c = ac_args_next(&a, &err)) != AC_ARGS_END;) {
        ac_status st = AC_OK;
        switch (c) {
        case OPT_CASES: st = ac_arg_int(a.name, optarg, 1, SELFTEST_MAX_CASES, &cases, &err); break;
        case OPT_SEED: st = ac_arg_u64(a.name, optarg, 0, UINT64_MAX, &seed, &err), have_seed = st == AC_OK; break;
        case OPT_BUG: st = ac_arg_bug(a.name, optarg, &only, &err), only_set = st == AC_OK; break;
        case OPT_QUIET: quiet = 1; break;
        case OPT_VERBOSE: g_verbose = 1; break;
        case 'h': usage(stdout); return 0;
        default: st = AC_ERR_PARSE; break; /* AC_ARGS_ERROR: err says what */
        }
        if (st) return ac_args_fail(&a, &err);
    }
    if (optind < argc) return ac_args_failf(&a, "%s: unexpected argument (selftest takes options only)", argv[optind]);
    /* After the flags: a fresh seed is drawn (and printed) only for a good command line. */
    if (!have_seed) seed = ac_prop_seed_from_env();
    const int nchecks = ac_prop_count + 1; /* the properties, then the oracle */
    double t0 = ac_now();
    printf("selftest: %d injected bugs x %d checks (%d properties + the oracle verdict) on the CPU models, up to %d "
           "cases each, ATTNCHECK_SEED=%" PRIu64 "\n",
           AC_BUG_COUNT - 1, nchecks, ac_prop_count, cases, seed);
    int bad = 0;
    check_result res;

    /* No bug: every check passes. */
    int clean_fail = 0;
    for (int k = 0; k < nchecks; k++) {
        if (k < ac_prop_count) run_property(&ac_props[k], AC_BUG_NONE, seed, cases, &res);
        else run_oracle(AC_BUG_NONE, seed, cases, &res);
        if (res.caught_at) {
            clean_fail++;
            printf("  FAIL without a bug: %s: %s\n", k < ac_prop_count ? ac_props[k].name : "oracle", res.why);
        }
    }
    bad |= clean_fail > 0;

    printf("\n%-22s | %-100s | %s\n", "bug", "caught by (case on which the check first failed)", "first");
    printf("%.22s-+-%.100s-+-%s\n", "----------------------------------------------------------------------",
           "--------------------------------------------------------------------------------------------------------"
           "----------------------------------------------------------------------",
           "-----");
    for (int b = 1; b < AC_BUG_COUNT; b++) {
        if (only_set && (ac_bug)b != only) continue;
        char caught[1024] = "";
        size_t len = 0;
        int first = 0;
        char first_why[1024 + 64] = ""; /* a property name, ": ", and its message */
        uint64_t bseed = mix(seed ^ mix(0x1000 + (uint64_t)b));
        for (int k = 0; k < nchecks; k++) {
            const char *name = k < ac_prop_count ? ac_props[k].name : "oracle";
            if (k < ac_prop_count) run_property(&ac_props[k], (ac_bug)b, bseed, cases, &res);
            else run_oracle((ac_bug)b, bseed, cases, &res);
            if (res.caught_at < 0) {
                printf("  harness error in %s: %s\n", name, res.why);
                bad = 1;
                continue;
            }
            if (!res.caught_at) continue;
            len += (size_t)snprintf(caught + len, len < sizeof caught ? sizeof caught - len : 0, "%s%s(%d)",
                                    len ? " " : "", name, res.caught_at);
            if (!first || res.caught_at < first) {
                first = res.caught_at;
                snprintf(first_why, sizeof first_why, "%s: %s", name, res.why);
            }
        }
        char first_s[16] = "-";
        if (first) snprintf(first_s, sizeof first_s, "%d", first);
        printf("%-22s | %-100s | %s\n", ac_bug_name((ac_bug)b), first ? caught : "NOT CAUGHT", first_s);
        if (first && !quiet) printf("%-22s   e.g. %.300s\n", "", first_why);
        fflush(stdout);
        if (!first) bad = 1;
    }
    printf("\nno bug: %s (%d checks x up to %d cases)\n", clean_fail ? "FAIL" : "every check passes", nchecks, cases);
    printf("selftest %s in %.1f s\n", bad ? "FAILED" : "passed", ac_now() - t0);
    return bad ? 1 : 0;
}
