/* The default check sweep's plumbing: the case list and the helpers each
   family's matrix builder (harness/family_<name>.c) uses. */
#include "ac_sweep.h"

#include "ac_family.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ac_gen.h"
#include "ac_index.h"

void ac_case_list_free(ac_case_list *l)
{
    for (int32_t i = 0; i < l->n; i++) ac_case_free(&l->cases[i]);
    free(l->cases);
    free(l->group);
    memset(l, 0, sizeof *l);
}

ac_case *ac_sweep_push(ac_case_list *l, const char *group, ac_error *err)
{
    if (l->n == l->cap) {
        int32_t cap = l->cap ? 2 * l->cap : 64;
        ac_case *c = realloc(l->cases, sizeof(ac_case) * (size_t)cap);
        if (!c) return NULL;
        l->cases = c;
        char(*g)[64] = realloc(l->group, sizeof(*g) * (size_t)cap);
        if (!g) return NULL;
        l->group = g;
        l->cap = cap;
    }
    ac_case *c = &l->cases[l->n];
    ac_case_init(c);
    snprintf(l->group[l->n], 64, "%s", group);
    l->n++;
    (void)err;
    return c;
}

ac_status ac_sweep_set_lengths(ac_case *c, int32_t batch, const int32_t *lq, const int32_t *lk, ac_error *err)
{
    ac_status st = ac_case_set_batch(c, batch, err);
    if (st) return st;
    for (int32_t b = 0; b < batch; b++) {
        c->seqlen_q[b] = lq[b];
        c->seqlen_k[b] = lk[b];
    }
    return AC_OK;
}

const ac_dist ac_sweep_dist_cycle[5] = {AC_DIST_NORMAL, AC_DIST_NEEDLE, AC_DIST_UNIFORM, AC_DIST_POSCODE,
                                     AC_DIST_LARGE};

/* AC_FEAT_* bits of each combination. */
static const uint32_t feature_combos[AC_SWEEP_FEATURE_COMBOS] = {
    AC_FEAT_WINDOW,
    AC_FEAT_SOFTCAP,
    AC_FEAT_ALIBI,
    AC_FEAT_SINKS,
    AC_FEAT_WINDOW | AC_FEAT_SOFTCAP,
    AC_FEAT_ALIBI | AC_FEAT_SINKS,
    AC_FEAT_WINDOW | AC_FEAT_SOFTCAP | AC_FEAT_SINKS,
    AC_FEAT_LOGIT,
};

ac_status ac_sweep_features(ac_case *c, int combo, int idx, ac_error *err)
{
    uint32_t on = feature_combos[combo % AC_SWEEP_FEATURE_COMBOS];
    if (on & AC_FEAT_WINDOW) {
        /* Left edges on both sides of a block (16) and a tile (64), and past
           every sequence; right 0 (causal kernels) or a few keys or unbounded. */
        static const int32_t lefts[] = {0, 15, 16, 63, 64, 100, 3, 500};
        static const int32_t rights[] = {0, -1, 5};
        c->window_left = lefts[idx % 8];
        c->window_right = rights[idx % 3];
    }
    if (on & AC_FEAT_SOFTCAP) {
        static const float caps[] = {5.0f, 30.0f, 1.0f};
        c->softcap = caps[idx % 3];
    }
    const int32_t H = c->heads_q;
    if (H <= 0 || H > AC_MAX_HEADS) return ac_fail(err, AC_ERR_SHAPE, "sweep: heads_q = %d", H);
    float v[AC_MAX_HEADS];
    if (on & AC_FEAT_ALIBI) {
        for (int32_t h = 0; h < H; h++) v[h] = exp2f(-8.0f * (float)(h + 1) / (float)H); /* the standard slopes */
        ac_status st = ac_case_set_alibi(c, v, H, err);
        if (st) return st;
    }
    if (on & AC_FEAT_SINKS) {
        /* About as large as the logits of unit data, so they take a visible
           share; one head without (-inf), where an empty row keeps LSE -inf. */
        for (int32_t h = 0; h < H; h++) v[h] = (float)((h + idx) % 7) * 0.75f - 1.5f;
        v[idx % H] = -INFINITY;
        ac_status st = ac_case_set_sinks(c, v, H, err);
        if (st) return st;
    }
    return AC_OK;
}

ac_status ac_sweep_build(const char *family, int quick, uint64_t seed, ac_case_list *list, ac_error *err)
{
    const ac_family *f = ac_family_find(family);
    if (!f) {
        char names[256];
        ac_family_names(names, sizeof names);
        return ac_fail(err, AC_ERR_UNSUPPORTED, "sweep family \"%s\": expected one of %s", family, names);
    }
    return f->sweep(quick, seed, list, err);
}
