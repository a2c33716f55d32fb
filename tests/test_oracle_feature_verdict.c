/* The verdict's feature terms, calibrated both ways against the same-precision
 * reference (ac_ref32) extended to the features (docs/VERDICT.md, "Features";
 * numbers in docs/CALIBRATION.md): on prefill and decode cases with windows,
 * softcap, ALiBi and sinks, the correct reference stays well below r = 1, and
 * the reference run on the case with one feature perturbed the way a real bug
 * would (one key too many in the window, softcap off, ALiBi's sign flipped,
 * the sink ignored) is far above it. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ac_gen.h"
#include "ac_numfmt.h"
#include "ac_ref.h"
#include "ac_verdict.h"
#include "oracle.h"

typedef enum perturb { P_NONE, P_WINDOW_PLUS_ONE, P_SOFTCAP_OFF, P_ALIBI_SIGN, P_SINK_IGNORED, P_COUNT } perturb;
static const char *const perturb_names[P_COUNT] = {"correct", "window+1", "softcap-off", "alibi-sign", "sink-ignored"};

/* A case of the sweep's size with every feature on: prefill (Lq = Lk) or
   decode (paged, Lq = 1..4), window left `wl`, softcap 30 (Gemma 2's) or 5
   (biting), the geometric ALiBi slopes 2^(-8(h+1)/H), sinks near the logits. */
static void feature_case(ac_case *c, ac_op op, uint64_t seed, int32_t wl, float cap, ac_dist dist)
{
    ac_case_init(c);
    c->dist = dist;
    c->op = op;
    c->dtype = seed & 1 ? AC_FP16 : AC_BF16;
    c->heads_q = 4;
    c->heads_kv = 2;
    c->head_dim = 64;
    c->seed = seed;
    cr_assert_eq(ac_case_set_batch(c, 2, NULL), AC_OK);
    for (int b = 0; b < 2; b++) {
        c->seqlen_k[b] = 97 + 40 * b;
        c->seqlen_q[b] = op == AC_OP_DECODE ? 1 + b : c->seqlen_k[b];
    }
    c->causal = AC_CAUSAL_BOTTOM_RIGHT;
    if (op == AC_OP_DECODE) {
        c->block_size = 16;
        cr_assert_eq(ac_case_make_layout(c, AC_LAYOUT_PERMUTED, 1, NULL), AC_OK);
    }
    c->window_left = wl;
    c->window_right = -1;
    c->softcap = cap;
    float slopes[4], sinks[4];
    for (int h = 0; h < 4; h++) {
        slopes[h] = ldexpf(1.0f, -2 * (h + 1));
        sinks[h] = h == 3 ? -INFINITY : (float)h - 0.5f;
    }
    cr_assert_eq(ac_case_set_alibi(c, slopes, 4, NULL), AC_OK);
    cr_assert_eq(ac_case_set_sinks(c, sinks, 4, NULL), AC_OK);
}

static void apply(ac_case *c, perturb p)
{
    switch (p) {
    case P_WINDOW_PLUS_ONE: c->window_left += 1; break;
    case P_SOFTCAP_OFF: c->softcap = 0.0f; break;
    case P_ALIBI_SIGN:
        for (int h = 0; h < c->n_alibi; h++) c->alibi_slopes[h] = -c->alibi_slopes[h];
        break;
    case P_SINK_IGNORED: cr_assert_eq(ac_case_set_sinks(c, NULL, 0, NULL), AC_OK); break;
    default: break;
    }
}

/* r of the reference run on the perturbed case, judged against the oracle of c. */
static double judge(const ac_case *c, const ac_tensors *t, const ac_oracle_result *res, perturb p)
{
    ac_case pc;
    ac_error e = {0};
    cr_assert_eq(ac_case_copy(&pc, c, &e), AC_OK);
    apply(&pc, p);
    ac_outputs out;
    memset(&out, 0, sizeof out);
    cr_assert_eq(ac_ref32(&pc, t, &out, &e), AC_OK, "%s", e.msg);
    ac_verdict v;
    cr_assert_eq(ac_verdict_judge(c, t, res, &out, NULL, NULL, &v, NULL, &e), AC_OK, "%s", e.msg);
    ac_outputs_free(&out);
    ac_case_free(&pc);
    return v.r_max > v.r_lse_max ? v.r_max : v.r_lse_max;
}

Test(oracle_feature_verdict, correct_below_one_and_each_bug_far_above, .timeout = 600)
{
    static const ac_op ops[2] = {AC_OP_PREFILL, AC_OP_DECODE};
    static const int32_t windows[3] = {0, 7, 64};
    static const float caps[2] = {30.0f, 5.0f};
    static const ac_dist dists[2] = {AC_DIST_NORMAL, AC_DIST_LARGE};
    double worst[P_COUNT], least[P_COUNT];
    int cases = 0, caught[P_COUNT] = {0};
    for (int p = 0; p < P_COUNT; p++) worst[p] = 0.0, least[p] = INFINITY;
    for (int di = 0; di < 2; di++)
    for (int oi = 0; oi < 2; oi++)
        for (int wi = 0; wi < 3; wi++)
            for (int ci = 0; ci < 2; ci++) {
                ac_case c;
                ac_tensors t;
                ac_error e = {0};
                feature_case(&c, ops[oi], 100 + 7 * (uint64_t)cases, windows[wi], caps[ci], dists[di]);
                cr_assert_eq(ac_case_validate(&c, &e), AC_OK, "%s", e.msg);
                cr_assert_eq(ac_gen(&c, &t, &e), AC_OK, "%s", e.msg);
                ac_oracle_opts o = {.mode = AC_ORACLE_FAST};
                ac_oracle_result res;
                cr_assert_eq(ac_oracle_run(&c, &t, &o, &res, &e), AC_OK, "%s", e.msg);
                char line[512];
                ac_case_line(&c, line, sizeof line);
                for (int p = 0; p < P_COUNT; p++) {
                    double r = judge(&c, &t, &res, (perturb)p);
                    cr_log_info("%s %s: r = %.3g", perturb_names[p], line, r);
                    if (r > worst[p]) worst[p] = r;
                    /* As docs/CALIBRATION.md counts: a perturbation the data cannot
                       see (ALiBi's sign with a window of one key, softcap 30 on
                       logits far below it) passes and is not a miss. */
                    if (r > 1.0) {
                        caught[p]++;
                        if (r < least[p]) least[p] = r;
                    }
                }
                ac_oracle_result_free(&res);
                ac_tensors_free(&t);
                ac_case_free(&c);
                cases++;
            }
    cr_log_info("feature calibration over %d cases: correct worst r = %.3g", cases, worst[P_NONE]);
    for (int p = 1; p < P_COUNT; p++)
        cr_log_info("  %s: caught %d/%d, smallest r of a caught case %.3g, largest %.3g", perturb_names[p], caught[p],
                    cases, least[p], worst[p]);
    cr_assert(worst[P_NONE] < 0.5, "the correct reference reaches r = %g", worst[P_NONE]);
    /* Each bug is caught on most cases, and far above the line on some. */
    for (int p = 1; p < P_COUNT; p++) {
        cr_assert(caught[p] * 3 >= cases * 2, "%s: caught on %d of %d cases only", perturb_names[p], caught[p], cases);
        cr_assert(worst[p] > 1e3, "%s: never above r = %g", perturb_names[p], worst[p]);
    }
}

/* ---- the K/V storage (docs/VERDICT.md, "FP8 KV"; docs/CONTRACT.md section 13) ---- */

typedef enum kvp { K_CORRECT, K_DEQUANT_DTYPE, K_V_SCALE_DROPPED, K_K_SCALE_DROPPED, K_DV_AS_DQK, K_COUNT } kvp;
static const char *const kvp_names[K_COUNT] = {"correct", "dequantised-to-dtype", "v-scale-dropped",
                                               "k-scale-dropped", "dv-as-dqk"};

/* The reference on a variant: the case with its K/V dequantised into the
   dtype (each value rounded once: what a kernel converting FP8 to bf16 with
   the scale does), or with a scale set to 1, or V read at stride D_qk. */
static double judge_kv(const ac_case *c, const ac_tensors *t, const ac_oracle_result *res, kvp p)
{
    ac_case pc;
    ac_error e = {0};
    cr_assert_eq(ac_case_copy(&pc, c, &e), AC_OK);
    ac_tensors pt = *t;
    uint16_t *k2 = NULL, *v2 = NULL;
    const int32_t D = c->head_dim, Dv = ac_case_dv(c), Hkv = c->heads_kv;
    if (p == K_DEQUANT_DTYPE && c->kv_format != AC_KV_AS_DTYPE) {
        k2 = malloc(sizeof(uint16_t) * (size_t)t->kv_elems);
        v2 = malloc(sizeof(uint16_t) * (size_t)t->v_elems);
        for (int64_t i = 0; i < t->kv_elems; i++)
            k2[i] = ac_f64_to_half(c->dtype, ac_kv_elem_to_double(c->dtype, c->kv_format, t->k[i]) *
                                                 (double)ac_case_k_scale(c, (int32_t)((i / D) % Hkv)));
        for (int64_t i = 0; i < t->v_elems; i++)
            v2[i] = ac_f64_to_half(c->dtype, ac_kv_elem_to_double(c->dtype, c->kv_format, t->v[i]) *
                                                 (double)ac_case_v_scale(c, (int32_t)((i / Dv) % Hkv)));
        pc.kv_format = AC_KV_AS_DTYPE;
        cr_assert_eq(ac_case_set_kv_scales(&pc, NULL, NULL, 0, NULL), AC_OK);
    }
    for (int32_t i = 0; i < pc.n_kv_scales; i++) {
        if (p == K_V_SCALE_DROPPED) pc.v_scales[i] = 1.0f;
        if (p == K_K_SCALE_DROPPED) pc.k_scales[i] = 1.0f;
    }
    if (p == K_DV_AS_DQK && Dv != D) { /* element (row, g, d) read at (row * Hkv + g) * D + d, 0 past the end */
        v2 = malloc(sizeof(uint16_t) * (size_t)t->v_elems);
        int64_t rows = t->v_elems / ((int64_t)Hkv * Dv);
        for (int64_t r = 0; r < rows; r++)
            for (int32_t g = 0; g < Hkv; g++)
                for (int32_t d = 0; d < Dv; d++) {
                    int64_t src = (r * Hkv + g) * D + d;
                    v2[(r * Hkv + g) * Dv + d] = src < t->v_elems ? t->v[src] : 0;
                }
    }
    if (k2) pt.k = k2;
    if (v2) pt.v = v2;
    ac_outputs out;
    memset(&out, 0, sizeof out);
    cr_assert_eq(ac_ref32(&pc, &pt, &out, &e), AC_OK, "%s", e.msg);
    ac_verdict v;
    cr_assert_eq(ac_verdict_judge(c, t, res, &out, NULL, NULL, &v, NULL, &e), AC_OK, "%s", e.msg);
    ac_outputs_free(&out);
    ac_case_free(&pc);
    free(k2);
    free(v2);
    return v.r_max > v.r_lse_max ? v.r_max : v.r_lse_max;
}

Test(oracle_feature_verdict, kv_storage_correct_below_one_and_each_bug_far_above, .timeout = 600)
{
    static const ac_kv_format fmts[3] = {AC_KV_E4M3, AC_KV_E5M2, AC_KV_AS_DTYPE};
    static const int32_t dvs[2] = {0, 32}; /* D_v = D = 64, or 32 */
    static const ac_dist dists[2] = {AC_DIST_NORMAL, AC_DIST_LARGE};
    double worst[K_COUNT];
    int cases = 0, applicable[K_COUNT] = {0}, caught[K_COUNT] = {0};
    for (int p = 0; p < K_COUNT; p++) worst[p] = 0.0;
    for (int di = 0; di < 2; di++)
        for (int oi = 0; oi < 2; oi++)
            for (int fi = 0; fi < 3; fi++)
                for (int vi = 0; vi < 2; vi++)
                    for (int si = 0; si < 2; si++) {
                        ac_case c;
                        ac_tensors t;
                        ac_error e = {0};
                        feature_case(&c, oi ? AC_OP_DECODE : AC_OP_PREFILL, 900 + 11 * (uint64_t)cases, 64, 30.0f,
                                     dists[di]);
                        c.head_dim_v = dvs[vi];
                        c.kv_format = fmts[fi];
                        if (fmts[fi] != AC_KV_AS_DTYPE) { /* per tensor or per head; not powers of two */
                            const float ks[2] = {0.0731f, 3.3f}, vs[2] = {0.37f, 11.7f};
                            cr_assert_eq(ac_case_set_kv_scales(&c, si ? ks : ks + 1, si ? vs : vs + 1, si ? 2 : 1, NULL),
                                         AC_OK);
                        } else if (si) {
                            ac_case_free(&c);
                            continue;
                        }
                        cr_assert_eq(ac_gen(&c, &t, &e), AC_OK, "%s", e.msg);
                        ac_oracle_opts o = {.mode = AC_ORACLE_FAST};
                        ac_oracle_result res;
                        cr_assert_eq(ac_oracle_run(&c, &t, &o, &res, &e), AC_OK, "%s", e.msg);
                        char line[512];
                        ac_case_line(&c, line, sizeof line);
                        for (int p = 0; p < K_COUNT; p++) {
                            int fp8 = c.kv_format != AC_KV_AS_DTYPE;
                            if ((p == K_DEQUANT_DTYPE || p == K_V_SCALE_DROPPED || p == K_K_SCALE_DROPPED) && !fp8)
                                continue;
                            if (p == K_DV_AS_DQK && ac_case_dv(&c) == c.head_dim) continue;
                            double r = judge_kv(&c, &t, &res, (kvp)p);
                            cr_log_info("%s %s: r = %.3g", kvp_names[p], line, r);
                            applicable[p]++;
                            if (r > worst[p]) worst[p] = r;
                            if (r > 1.0) caught[p]++;
                        }
                        ac_oracle_result_free(&res);
                        ac_tensors_free(&t);
                        ac_case_free(&c);
                        cases++;
                    }
    cr_log_info("K/V storage calibration over %d cases", cases);
    for (int p = 0; p < K_COUNT; p++)
        cr_log_info("  %s: %d cases, over the bound %d, largest r %.3g", kvp_names[p], applicable[p], caught[p],
                    worst[p]);
    /* The correct reference and the dequantise-into-the-dtype one stay below
       the line; each bug is over it on every case it applies to. */
    cr_assert(worst[K_CORRECT] < 0.5, "the correct reference reaches r = %g", worst[K_CORRECT]);
    cr_assert(worst[K_DEQUANT_DTYPE] < 0.5, "dequantising into the dtype reaches r = %g", worst[K_DEQUANT_DTYPE]);
    for (int p = K_V_SCALE_DROPPED; p < K_COUNT; p++) {
        cr_assert(applicable[p] > 0 && caught[p] == applicable[p], "%s: caught on %d of %d cases", kvp_names[p],
                  caught[p], applicable[p]);
        cr_assert(worst[p] > 100.0, "%s: never above r = %g", kvp_names[p], worst[p]);
    }
}
