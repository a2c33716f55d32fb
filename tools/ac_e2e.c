#include "ac_e2e.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ac_gen.h"
#include "ac_index.h"
#include "ac_status.h"
#include "ac_verdict.h"
#include "oracle.h"

typedef struct e2e_cfg {
    ac_dtype dtype;
    int32_t head_dim, heads_q, heads_kv, block_size;
} e2e_cfg;

enum { E2E_BATCH = 3, E2E_STEPS = 12 };

/* Writes, through the backend's store, the rows of `truth` at positions
   [from_b, to_b) of each sequence into cache (k, v), which it replaces. */
static ac_status store_positions(ac_backend be, const ac_run_opts *ro, const ac_case *layout, const ac_tensors *truth, const int32_t *from,
                                 const int32_t *to, uint16_t **k, uint16_t **v, ac_error *err)
{
    ac_case c;
    ac_status st = ac_case_copy(&c, layout, err);
    if (st) return st;
    c.op = AC_OP_STORE;
    int32_t n = 0;
    for (int32_t b = 0; b < c.batch; b++) n += to[b] - from[b] + 1; /* + one -1 padding token each */
    st = ac_case_alloc_slots(&c, n, err);
    const int64_t row = (int64_t)c.heads_kv * c.head_dim;
    ac_tensors t;
    memset(&t, 0, sizeof t);
    t.kv_elems = truth->kv_elems;
    t.k = *k;
    t.v = *v;
    t.k_new = malloc(sizeof(uint16_t) * (size_t)(n * row + 1));
    t.v_new = malloc(sizeof(uint16_t) * (size_t)(n * row + 1));
    if (!st && (!t.k_new || !t.v_new)) st = ac_fail(err, AC_ERR_NOMEM, "e2e: out of memory");
    int32_t tok = 0;
    for (int32_t b = 0; !st && b < c.batch; b++) {
        const int32_t *tab = c.block_table + (int64_t)b * c.max_blocks_per_seq;
        for (int32_t p = from[b]; p < to[b]; p++, tok++) {
            int64_t slot = ac_pos_slot(tab, p, c.block_size);
            c.slot_mapping[tok] = slot;
            memcpy(t.k_new + tok * row, truth->k + ac_cache_offset(slot, 0, c.heads_kv, c.head_dim), 2 * (size_t)row);
            memcpy(t.v_new + tok * row, truth->v + ac_cache_offset(slot, 0, c.heads_kv, c.head_dim), 2 * (size_t)row);
        }
        c.slot_mapping[tok] = -1; /* padding: must be skipped */
        for (int64_t e = 0; e < row; e++) t.k_new[tok * row + e] = t.v_new[tok * row + e] = 0x7e00; /* NaN */
        tok++;
    }
    ac_outputs out;
    memset(&out, 0, sizeof out);
    if (!st) st = ac_backend_run(be, &c, &t, ro, &out, err);
    if (!st) {
        free(*k);
        free(*v);
        *k = out.k_cache;
        *v = out.v_cache;
        out.k_cache = out.v_cache = NULL;
    }
    ac_outputs_free(&out);
    free(t.k_new);
    free(t.v_new);
    ac_case_free(&c);
    return st;
}

/* One configuration: prompt, then E2E_STEPS decode steps. Returns the number
   of failed steps, or -1 on an error (message in err). */
static int run_cfg(ac_backend be, const ac_run_opts *ro, const e2e_cfg *g, uint64_t seed, int steps, double *r_worst, double *lse_worst,
                   ac_error *err)
{
    /* The final state: each sequence's prompt plus `steps` generated tokens. */
    static const int32_t prompt[E2E_BATCH] = {1, 37, 200};
    ac_case full;
    ac_case_init(&full);
    full.op = AC_OP_DECODE;
    full.dtype = g->dtype;
    full.head_dim = g->head_dim;
    full.heads_q = g->heads_q;
    full.heads_kv = g->heads_kv;
    full.causal = AC_CAUSAL_BOTTOM_RIGHT;
    full.block_size = g->block_size;
    full.special = AC_SPECIAL_NAN_SLOTS;
    full.num_splits = 0;
    full.seed = seed;
    ac_status st = ac_case_set_batch(&full, E2E_BATCH, err);
    for (int32_t b = 0; !st && b < E2E_BATCH; b++) {
        full.seqlen_q[b] = 1;
        full.seqlen_k[b] = prompt[b] + steps;
    }
    if (!st) st = ac_case_make_layout(&full, AC_LAYOUT_PERMUTED, 1, err);
    ac_tensors truth;
    memset(&truth, 0, sizeof truth);
    if (!st) st = ac_gen(&full, &truth, err);
    if (st) {
        ac_case_free(&full);
        return -1;
    }
    /* The kernels' cache starts as NaN everywhere: nothing stored yet. */
    uint16_t *ck = malloc(sizeof(uint16_t) * (size_t)truth.kv_elems), *cv = malloc(sizeof(uint16_t) * (size_t)truth.kv_elems);
    int failed = 0;
    if (!ck || !cv) { st = ac_fail(err, AC_ERR_NOMEM, "e2e: out of memory"); goto out; }
    for (int64_t i = 0; i < truth.kv_elems; i++) ck[i] = cv[i] = 0x7e00;
    int32_t from[E2E_BATCH] = {0, 0, 0}, to[E2E_BATCH];
    for (int b = 0; b < E2E_BATCH; b++) to[b] = prompt[b];
    st = store_positions(be, ro, &full, &truth, from, to, &ck, &cv, err);
    for (int s = 0; !st && s < steps; s++) {
        for (int b = 0; b < E2E_BATCH; b++) {
            from[b] = prompt[b] + s;
            to[b] = from[b] + 1;
        }
        st = store_positions(be, ro, &full, &truth, from, to, &ck, &cv, err);
        if (st) break;
        ac_case step;
        st = ac_case_copy(&step, &full, err);
        if (st) break;
        for (int b = 0; b < E2E_BATCH; b++) step.seqlen_k[b] = to[b];
        step.seed = seed * 1000 + (uint64_t)s; /* fresh queries each step */
        ac_tensors t;
        ac_outputs o;
        ac_oracle_result res;
        memset(&o, 0, sizeof o);
        memset(&res, 0, sizeof res);
        st = ac_gen(&step, &t, err);
        if (!st) {
            /* oracle on the ground truth, kernel on its own stored cache */
            uint16_t *gk = t.k, *gv = t.v;
            t.k = truth.k;
            t.v = truth.v;
            ac_oracle_opts oo;
            memset(&oo, 0, sizeof oo);
            st = ac_oracle_run(&step, &t, &oo, &res, err);
            t.k = ck;
            t.v = cv;
            if (!st) st = ac_backend_run(be, &step, &t, ro, &o, err);
            ac_verdict v;
            if (!st) st = ac_verdict_judge(&step, &t, &res, &o, NULL, NULL, &v, NULL, err);
            if (!st) {
                failed += !v.pass;
                *r_worst = fmax(*r_worst, v.r_max);
                *lse_worst = fmax(*lse_worst, v.r_lse_max);
            }
            t.k = gk;
            t.v = gv;
        }
        ac_tensors_free(&t);
        ac_outputs_free(&o);
        ac_oracle_result_free(&res);
        ac_case_free(&step);
    }
out:
    free(ck);
    free(cv);
    ac_tensors_free(&truth);
    ac_case_free(&full);
    return st ? -1 : failed;
}

int ac_e2e_main(ac_backend be, int quick, uint64_t seed, ac_bug bug, FILE *out)
{
    char why[160]; /* the backend's own reason: "built without CUDA" is not "no device" */
    if (be == AC_BACKEND_GPU && !ac_backend_available(be, why, sizeof why)) {
        fprintf(out, "e2e: skipped: %s\n", why);
        return AC_EXIT_SKIP;
    }
    /* No options at all without a bug: the call the kernels get in service. */
    ac_run_opts run_opts = {bug, 0};
    const ac_run_opts *ro = bug ? &run_opts : NULL;
    static const int32_t dims[] = {64, 128};
    static const int32_t blocks[] = {16, 32, 256};
    static const int32_t heads[][2] = {{8, 2}, {8, 8}, {16, 1}};
    int passed = 0, failed = 0, idx = 0;
    fprintf(out, "e2e on the %s: prompt stored through the slot mapping, then %d steps of store + decode%s%s\n",
            ac_backend_name(be), E2E_STEPS, bug ? ", injected bug: " : "", bug ? ac_bug_name(bug) : "");
    for (int dt = 0; dt < 2; dt++)
        for (int di = 0; di < 2; di++)
            for (int bi = 0; bi < 3; bi++, idx++) {
                if (quick && idx % 3) continue;
                e2e_cfg g = {dt ? AC_FP16 : AC_BF16, dims[di], heads[idx % 3][0], heads[idx % 3][1], blocks[bi]};
                ac_error err;
                double r = 0, rl = 0;
                int bad = run_cfg(be, ro, &g, seed + (uint64_t)idx, E2E_STEPS, &r, &rl, &err);
                fprintf(out, "%s e2e %s D=%d Hq=%d Hkv=%d block=%d steps=%d: %s worst r=%.3g lse_r=%.3g\n",
                        bad == 0 ? "ok  " : "FAIL", ac_dtype_name(g.dtype), g.head_dim, g.heads_q, g.heads_kv,
                        g.block_size, E2E_STEPS, bad < 0 ? err.msg : bad ? "steps failed" : "every step passed", r, rl);
                if (bad < 0) return AC_EXIT_USAGE;
                passed += E2E_STEPS - bad;
                failed += bad;
            }
    fprintf(out, "%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
