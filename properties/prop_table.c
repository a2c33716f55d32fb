/* The table of properties and the grid runner. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ac_rng.h"
#include "prop_props.h"
#include "prop_util.h"

#define PREFILL AC_OPS(AC_OP_PREFILL)
#define DECODE AC_OPS(AC_OP_DECODE)
#define COMBINE AC_OPS(AC_OP_COMBINE)
#define FEATS AC_FEAT_LOGIT
/* The laws that hold with an FP8 cache and D_v != D_qk in the background:
   they move K/V rows and codes as stored (gqa repeats them with their
   per-head scales, paging poisons with FP8 codes, chunked's reference reads
   the codes its stores quantise), or only compare runs; the others rewrite
   V's values in the case dtype, and keep the logit features. */
#define FEATS_KV (AC_FEAT_LOGIT | AC_FEAT_KV)

const ac_prop ac_props[] = {
    {"scale", "omitted scale equals explicit 1/sqrt(D); explicit 1.0 is detectably different; scale 0 gives the "
              "mean of the allowed V rows; (q*c, scale/c) matches within the bound",
     prop_scale, PREFILL | DECODE, AC_LAYOUTS_ALL, 0},
    {"gqa", "GQA equals multi-head attention with K/V heads (and per-head K/V scales) repeated in contiguous groups; "
            "h % Hkv would be caught",
     prop_gqa, PREFILL | DECODE, AC_LAYOUTS_ALL, FEATS_KV},
    {"causal", "TOP_LEFT is the lower triangle, BOTTOM_RIGHT the triangle shifted by Lk - Lq (leading rows 0 / -inf "
               "when Lq > Lk); they coincide when Lq == Lk; a TOP_LEFT decode step is detected",
     prop_causal, PREFILL | DECODE, AC_LAYOUTS_ALL, 0},
    {"chunked", "a prefill in random chunks through the paged cache (store, then BOTTOM_RIGHT against all keys so "
                "far) equals one full causal prefill of the same (FP8: quantised) cache; each store writes exactly "
                "its slots",
     prop_chunked, PREFILL, AC_LAYOUTS(AC_PROP_PAGED_IDENTITY) | AC_LAYOUTS(AC_PROP_PAGED_PERMUTED), FEATS_KV},
    {"masks", "an all-true bool mask is no mask; bool false is additive -inf; a row constant in the bias changes "
              "nothing; a fully masked row is 0 / -inf; mask plus causal is their intersection",
     prop_masks, PREFILL, AC_LAYOUTS_ALL, 0},
    {"paging", "relabelled physical blocks, unshared prefix blocks, NaN/Inf (FP8: its codes) in unread slots and "
               "garbage in unread table entries change no output bit; paged equals contiguous within the bound",
     prop_paging, PREFILL | DECODE, AC_LAYOUTS_PAGED, FEATS_KV},
    {"batch", "a sequence's output bits do not depend on the other sequences, its place in the batch, or the run",
     prop_batch, PREFILL | DECODE, AC_LAYOUTS_ALL, FEATS_KV},
    {"splits", "any split count (more splits than blocks too) equals the unsplit result within the bound; combining "
               "one split is the identity; split order and empty splits do not matter",
     prop_splits, DECODE | COMBINE, AC_LAYOUTS_PAGED, FEATS_KV},
    {"permutation", "without causal mode or mask, permuting keys together with values stays within the bound",
     prop_permutation, PREFILL | DECODE, AC_LAYOUTS_ALL, AC_FEAT_SOFTCAP | AC_FEAT_SINKS | AC_FEAT_KV},
    {"linearity", "O is linear in V within the bound; the LSE does not depend on V and matches the oracle's within "
                  "its tight tolerance",
     prop_linearity, PREFILL | DECODE, AC_LAYOUTS_ALL, FEATS | AC_FEAT_HEAD_DIM_V},
    {"overflow", "logits of magnitude 1e4 after scaling give no Inf/NaN and match the oracle", prop_overflow,
     PREFILL | DECODE, AC_LAYOUTS_ALL, FEATS_KV},
    /* The features' own laws; their second half of the grid adds the other
       features in the background. */
    {"window", "a window as wide as the sequence is no window; a window matches the model; on a prefill it equals "
               "the bool mask of its band",
     prop_window, PREFILL | DECODE, AC_LAYOUTS_ALL, FEATS_KV},
    {"softcap", "a cap of 1e30 is no cap; a cap matches the model; masked keys stay out under a cap; with two keys "
                "the weight of the larger logit never falls as the cap grows",
     prop_softcap, PREFILL | DECODE, AC_LAYOUTS_ALL, FEATS},
    {"alibi", "zero slopes are no ALiBi; ALiBi matches the model; on a prefill it equals the per-head additive bias "
              "slope_h (j - i - (Lk - Lq))",
     prop_alibi, PREFILL | DECODE, AC_LAYOUTS_ALL, FEATS_KV},
    {"sinks", "a sink of -inf is no sink; sinks match the model (empty rows: O = 0, LSE = the sink); on a prefill a "
              "sink equals one more key with K = V = 0 and the sink as its bias",
     prop_sinks, PREFILL | DECODE, AC_LAYOUTS_ALL, FEATS},
    /* The K/V formats' own laws: every point carries its feature; the second
       half of the grid adds the others in the background. */
    {"dv", "D_v != D_qk: V's two column halves give O's two column halves and the same LSE; padded to D_v == D_qk "
           "(zero V columns, or zero q/k columns with the scale kept) gives the same O",
     prop_dv, PREFILL | DECODE, AC_LAYOUTS_ALL, AC_FEAT_LOGIT | AC_FEAT_FP8_KV},
    {"fp8", "an FP8 cache (E4M3/E5M2, power-of-two scales per tensor or per KV head) equals the case-dtype cache of "
            "its dequantised values within the bound; per-head scales all equal are per-tensor; scale 1 is none",
     prop_fp8, PREFILL | DECODE, AC_LAYOUTS_ALL, AC_FEAT_LOGIT | AC_FEAT_HEAD_DIM_V},
};
const int ac_prop_count = (int)(sizeof ac_props / sizeof ac_props[0]);

const ac_prop *ac_prop_find(const char *name)
{
    for (int i = 0; i < ac_prop_count; i++)
        if (strcmp(ac_props[i].name, name) == 0) return &ac_props[i];
    return NULL;
}

static const char *const layout_names[AC_PROP_LAYOUT_COUNT] = {"contiguous", "identity", "permuted", "shared"};

const char *ac_prop_layout_name(ac_prop_layout l)
{
    return ((int)l >= 0 && l < AC_PROP_LAYOUT_COUNT) ? layout_names[l] : "?";
}

int ac_prop_ctx_line(const ac_prop_ctx *ctx, char *buf, size_t n)
{
    char feat[64] = "";
    if (ctx->features) {
        char names[48];
        snprintf(feat, sizeof feat, " features=%s", ac_feature_names(ctx->features, names, sizeof names));
    }
    return snprintf(buf, n, "%s %s D=%d gqa=%d layout=%s backend=%s bug=%s%s seed=%" PRIu64, ac_op_name(ctx->op),
                    ac_dtype_name(ctx->dtype), ctx->head_dim, ctx->gqa,
                    ctx->op == AC_OP_COMBINE ? "-" : ac_prop_layout_name(ctx->layout), ac_backend_name(ctx->backend),
                    ac_bug_name(ctx->bug), feat, ctx->seed);
}

/* ---- the grid ---------------------------------------------------------------------- */

const int32_t ac_prop_grid_dims[AC_PROP_GRID_DIMS] = {64, 128};
/* 1: plain multi-head; 4: a typical GQA group (Hq = 8 over Hkv = 2). */
const int32_t ac_prop_grid_gqas[AC_PROP_GRID_GQAS] = {1, 4};

/* Independent-looking seeds from (base, index). */
static uint64_t mix(uint64_t x) { return ac_rng_hash(x); }

static unsigned op_layouts(ac_op op)
{
    if (op == AC_OP_PREFILL) return AC_LAYOUTS_ALL;
    if (op == AC_OP_DECODE) return AC_LAYOUTS_PAGED;
    return AC_LAYOUTS(AC_PROP_CONTIGUOUS); /* the combine has none: one placeholder */
}

int ac_prop_grid(const ac_prop *p, ac_backend be, ac_bug bug, uint64_t base_seed, ac_prop_ctx *out, int max)
{
    int count = 0;
    /* Pass 0: no features (the grid as it was before features existed, same
       seeds); pass 1: the same points with the law's features, on the ops
       that take them. */
    for (int pass = 0; pass < (p->features ? 2 : 1); pass++)
        for (int op = 0; op < AC_OP_COUNT; op++) {
            if (!(p->ops & AC_OPS(op))) continue;
            const ac_op_traits *tr = ac_op_traits_of((ac_op)op);
            if (pass == 1 && !(tr && (tr->features || (tr->kv_features & p->features)))) continue;
            unsigned lays = op == AC_OP_COMBINE ? op_layouts((ac_op)op) : (p->layouts & op_layouts((ac_op)op));
            for (int dt = 0; dt < AC_PROP_GRID_DTYPES; dt++)
                for (int di = 0; di < AC_PROP_GRID_DIMS; di++)
                    for (int gi = 0; gi < AC_PROP_GRID_GQAS; gi++)
                        for (int l = 0; l < AC_PROP_LAYOUT_COUNT; l++) {
                            if (!(lays & AC_LAYOUTS(l))) continue;
                            if (out && count < max) {
                                ac_prop_ctx *c = &out[count];
                                c->backend = be;
                                c->bug = bug;
                                c->op = (ac_op)op;
                                c->dtype = (ac_dtype)dt;
                                c->head_dim = ac_prop_grid_dims[di];
                                c->gqa = ac_prop_grid_gqas[gi];
                                c->layout = (ac_prop_layout)l;
                                c->seed = mix(base_seed ^ mix((uint64_t)count + 1));
                                c->features = pass ? p->features : 0u;
                            }
                            count++;
                        }
        }
    return count;
}

uint64_t ac_prop_seed_from_env(void)
{
    const char *s = getenv("ATTNCHECK_SEED");
    if (s && *s) return strtoull(s, NULL, 0);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return mix((uint64_t)ts.tv_sec * 1000000007ULL ^ (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 32));
}

void ac_prop_run_grid(const ac_prop *p, ac_backend be, ac_bug bug, uint64_t base_seed, int max_cases,
                      int stop_at_first, FILE *log, ac_prop_report *rep)
{
    memset(rep, 0, sizeof *rep);
    int total = ac_prop_grid(p, be, bug, base_seed, NULL, 0);
    ac_prop_ctx *grid = calloc((size_t)(total ? total : 1), sizeof *grid);
    if (!grid) {
        rep->failed = 1;
        snprintf(rep->first_why, sizeof rep->first_why, "out of memory for the grid");
        return;
    }
    ac_prop_grid(p, be, bug, base_seed, grid, total);
    if (max_cases > 0 && max_cases < total) total = max_cases;
    for (int i = 0; i < total; i++) {
        char why[1024] = "";
        int rc = p->fn(&grid[i], why, sizeof why);
        rep->cases++;
        if (rc == AC_PROP_PASS) {
            rep->passed++;
        } else if (rc == AC_PROP_SKIP) {
            rep->skipped++;
        } else {
            rep->failed++;
            if (!rep->first_fail) {
                rep->first_fail = i + 1;
                rep->first_ctx = grid[i];
                snprintf(rep->first_why, sizeof rep->first_why, "%s", why);
            }
            if (log && rep->failed <= 3) { /* the first three in full; the count says the rest */
                char line[256];
                ac_prop_ctx_line(&grid[i], line, sizeof line);
                fprintf(log, "property %s FAILED (ATTNCHECK_SEED=%" PRIu64 ", grid point %d of %d): %s\n  %s\n",
                        p->name, base_seed, i + 1, total, line, why);
            }
            if (stop_at_first) break;
        }
    }
    if (log && rep->failed > 3)
        fprintf(log, "property %s: %d more grid points failed (ATTNCHECK_SEED=%" PRIu64 ")\n", p->name,
                rep->failed - 3, base_seed);
    free(grid);
}
