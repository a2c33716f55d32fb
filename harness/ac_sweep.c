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

/* One row of the K/V groups: (D_qk, D_v), the cache format and its scales
   (0: none, 1: one per tensor, 2: one per KV head), the layout (prefill:
   contiguous or paged; decode: the split count) and the dtype. */
typedef struct kv_row {
    int32_t d, dv;
    ac_kv_format fmt;
    int scales;
    int paged_or_splits;
    ac_dtype dtype;
} kv_row;

/* Every FP8 format with scales per tensor and per head, contiguous and
   paged prefill, split decodes and the store; D_v 192/128 and 128/64 (MLA
   and the other way round), alone and on an FP8 cache; and one 576/512 row
   per family, past the bundled kernels' 256 (they report it unsupported). */
static const kv_row kv_rows[] = {
    {128, 0, AC_KV_E4M3, 1, 0, AC_BF16},   {64, 0, AC_KV_E4M3, 2, 1, AC_FP16},
    {128, 0, AC_KV_E5M2, 1, 1, AC_FP16},   {64, 0, AC_KV_E5M2, 2, 0, AC_BF16},
    {128, 0, AC_KV_E4M3, 0, 3, AC_BF16},   {192, 128, AC_KV_AS_DTYPE, 0, 0, AC_BF16},
    {128, 64, AC_KV_AS_DTYPE, 0, 1, AC_FP16}, {192, 128, AC_KV_E4M3, 2, 1, AC_BF16},
    {128, 64, AC_KV_E5M2, 1, 0, AC_FP16}, {576, 512, AC_KV_AS_DTYPE, 0, 1, AC_BF16},
};
#define KV_ROWS ((int)(sizeof kv_rows / sizeof kv_rows[0]))

/* Scales of row k for KV head g: powers of two and others, never a v
   scale of 1 (an output that misses it must move). */
static void kv_row_scales(int k, int32_t g, float *ks, float *vs)
{
    static const float kp[] = {0.5f, 2.0f, 0.375f, 1.0f, 0.25f, 1.5f}, vp[] = {2.0f, 0.25f, 0.75f, 4.0f, 0.5f, 1.25f};
    *ks = kp[(k + g) % 6];
    *vs = vp[(k + 2 * g) % 6];
}

static ac_status kv_row_case(ac_op op, int k, uint64_t seed, ac_case_list *l, ac_error *err)
{
    const kv_row *w = &kv_rows[k];
    char group[64];
    snprintf(group, sizeof group, "%s %s", ac_op_name(op), w->fmt != AC_KV_AS_DTYPE ? "fp8 kv" : "head_dim_v");
    ac_case *c = ac_sweep_push(l, group, err);
    if (!c) return ac_fail(err, AC_ERR_NOMEM, "sweep: out of memory");
    c->op = op;
    c->dtype = w->dtype;
    c->head_dim = w->d;
    c->head_dim_v = w->dv;
    c->heads_q = 8;
    c->heads_kv = 2;
    c->kv_format = w->fmt;
    c->dist = ac_sweep_dist_cycle[k % 5];
    c->seed = seed + 7000u + (uint64_t)k;
    if (w->scales) {
        float ks[2], vs[2];
        int32_t n = w->scales == 2 ? c->heads_kv : 1;
        for (int32_t g = 0; g < n; g++) kv_row_scales(k, g, &ks[g], &vs[g]);
        ac_status st = ac_case_set_kv_scales(c, ks, vs, n, err);
        if (st) return st;
    }
    ac_status st;
    if (op == AC_OP_STORE) {
        int32_t lq[2] = {1, 1}, lk[2] = {21, 40};
        st = ac_sweep_set_lengths(c, 2, lq, lk, err);
        c->block_size = 16;
        c->special = AC_SPECIAL_NAN_SLOTS;
        if (!st) st = ac_case_make_layout(c, AC_LAYOUT_PERMUTED, 1, err);
        return st ? st : ac_case_make_store_slots(c, 6, 1, err);
    }
    if (op == AC_OP_DECODE) {
        static const int32_t splits[4] = {1, 3, 0, 5};
        int32_t lq[3] = {1, 4, 1}, lk[3] = {17, 70, 150 + k};
        st = ac_sweep_set_lengths(c, 3, lq, lk, err);
        c->causal = AC_CAUSAL_BOTTOM_RIGHT;
        c->num_splits = splits[w->paged_or_splits % 4];
        c->block_size = k % 2 ? 32 : 16;
        c->special = AC_SPECIAL_NAN_SLOTS | AC_SPECIAL_GARBAGE_TABLE;
        return st ? st : ac_case_make_layout(c, k % 2 ? AC_LAYOUT_SHARED_PREFIX : AC_LAYOUT_PERMUTED, 2, err);
    }
    int32_t lq[3] = {5, 33, 1}, lk[3] = {5, 70, 19};
    st = ac_sweep_set_lengths(c, 3, lq, lk, err);
    c->causal = (ac_causal)(k % 3);
    if (st || !(w->paged_or_splits & 1)) return st;
    c->block_size = 16;
    c->special = AC_SPECIAL_NAN_SLOTS | AC_SPECIAL_GARBAGE_TABLE;
    return ac_case_make_layout(c, k % 3 == 0 ? AC_LAYOUT_SHARED_PREFIX : AC_LAYOUT_PERMUTED, 2, err);
}

ac_status ac_sweep_kv_rows(ac_op op, int quick, uint64_t seed, ac_case_list *l, ac_error *err)
{
    const ac_op_traits *tr = ac_op_traits_of(op);
    /* Not in the quick sweep: until every backend implements them they are
       unsupported rows there, and the quick sweep's callers count on
       "N passed, M failed" (tests/test_save_replay.py). */
    if (!tr || !tr->kv_features || quick) return AC_OK;
    for (int k = 0; k < KV_ROWS; k++) {
        ac_status st = kv_row_case(op, k, seed, l, err);
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
    ac_status st = f->sweep(quick, seed, list, err);
    /* After the family's own matrix, so every row before them stays as it was. */
    return st ? st : ac_sweep_kv_rows(f->op, quick, seed, list, err);
}
