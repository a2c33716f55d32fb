// Decode, combine and store on the GPU: correctness driver and benchmark.
//
//   decode_bench --check [--quick]   kernels vs the double reference ac_ref64
//                                    (the verdict and the decode law, harness/
//                                    ac_ref.h) and vs the CPU models,
//                                    over a sweep; then an end-to-end loop
//                                    (store a prompt, N steps of store + decode)
//                                    against full attention on a contiguous copy.
//   decode_bench --bench [--peers F] KV-read bandwidth (GB/s) of the decode for
//                                    Hq=32 Hkv=8 D=128 bf16, block 16, random
//                                    block permutation; with F (the output of
//                                    bench/sdpa_decode_peers.py), ratios to SDPA.
//                [--features L]      L: comma list of none, window, softcap, fp8,
//                                    alibi, sinks, all (default none): the same
//                                    shapes timed with each feature on (a 4k
//                                    window: GB/s counts the keys it reads).
//   decode_bench --table [--reps N]  the benchmark table's decode, combine and store
//                                    rows and the floors (bench/bench_table.h,
//                                    docs/PERF.md "The benchmark table")
// Exit status 0 only if every check passed; 2 a bad flag (before any work),
// AC_EXIT_SKIP (77) no device.
#include <algorithm>
#include <cuda_runtime.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <vector>

#include "ac_args.h"
#include "ac_backend.h"
#include "ac_gen.h"
#include "ac_numfmt.h"
#include "ac_ref.h"
#include "oracle.h"
#include "ac_verdict.h"
#include "decode.h"
#include "store.h"
#include "combine.h"
#include "bench_table.h"

#define CK(call)                                                                                   \
    do {                                                                                           \
        cudaError_t e_ = (call);                                                                   \
        if (e_ != cudaSuccess) {                                                                   \
            fprintf(stderr, "%s:%d %s: %s\n", __FILE__, __LINE__, #call, cudaGetErrorString(e_));  \
            exit(2);                                                                               \
        }                                                                                          \
    } while (0)
#define OK(expr)                                                                                   \
    do {                                                                                           \
        ac_status s_ = (expr);                                                                     \
        if (s_ != AC_OK) {                                                                         \
            fprintf(stderr, "%s:%d %s: %s\n", __FILE__, __LINE__, #expr, ac_status_name(s_));      \
            exit(2);                                                                               \
        }                                                                                          \
    } while (0)

static int g_fail = 0;
static int g_with_model = 1; // compare with the CPU model too (first load path only: it is the slow part)

// ---- per-group statistics ----------------------------------------------------
struct group_stat {
    const char *name;
    int cases = 0, failed = 0;
    double worst_gpu = 0, worst_model = 0; // error / bound vs the double reference
    double max_o_diff = 0;                 // max |o_f32 gpu - model|
    int64_t max_ulp = 0;                   // max dtype-ulp distance gpu vs model
    double max_lse_diff = 0;
};

static void stat_line(const group_stat &g)
{
    printf("%-28s %6d %6d %12.3g %12.3g %12.3g %8lld %12.3g\n", g.name, g.cases, g.failed, g.worst_gpu,
           g.worst_model, g.max_o_diff, (long long)g.max_ulp, g.max_lse_diff);
}

// ---- the checks against the double reference (docs/VERDICT.md) ---------------
// The verdict, the one bound every correct kernel obeys, on the dtype output
// and on the fp32 one. false (why filled) if it fails.
static bool verdict_ok(const ac_case *c, const ac_tensors *t, const ac_oracle_result *ref, const ac_outputs *o,
                       char *why, size_t n)
{
    for (int f32 = 0; f32 < (c->op == AC_OP_DECODE ? 2 : 1); f32++) {
        ac_verdict_opts vo = {f32, 0, 0};
        ac_verdict v;
        ac_error err = {};
        OK(ac_verdict_judge(c, t, ref, o, NULL, &vo, &v, NULL, &err));
        if (!v.pass) {
            snprintf(why, n, "verdict (%s output): %s", f32 ? "fp32" : "dtype", v.summary);
            return false;
        }
    }
    return true;
}

// A decode run against ref: the decode path's white-box law (tighter where P
// stays fp32) and the verdict, both. The law's worst ratio, or INFINITY (why
// filled) if either fails.
static double decode_vs_ref(const ac_case *c, const ac_tensors *t, const ac_oracle_result *ref, const ac_outputs *o,
                            int32_t splits, char *why, size_t n)
{
    double w = ac_ref_decode_law(c, ref, o, splits, why, n);
    if (!(w <= 1.0)) return w;
    return verdict_ok(c, t, ref, o, why, n) ? w : INFINITY;
}

// ---- decode sweep ------------------------------------------------------------
// How K and V are stored (docs/DECODE.md, "FP8 KV and D_v"); set before ac_gen.
struct kv_opt {
    int32_t dv;             // head_dim_v (0: = D)
    ac_kv_format fmt;
    int scales;             // 0 none, 1 per tensor, 2 per KV head
};

static int make_decode_case(ac_case *c, ac_tensors *t, ac_dtype dt, int32_t hq, int32_t hkv, int32_t d,
                            int32_t bs, int lq_max, int32_t splits, int dist, int layout, uint64_t seed,
                            const kv_opt *kv = nullptr)
{
    ac_error err = {};
    ac_case_init(c);
    c->op = AC_OP_DECODE;
    c->dtype = dt;
    const int32_t lks[] = {1, bs - 1 > 0 ? bs - 1 : 2, bs, bs + 1, 700, 0};
    const int B = 6;
    if (ac_case_set_batch(c, B, &err)) return -1;
    for (int b = 0; b < B; b++) {
        c->seqlen_k[b] = lks[b];
        c->seqlen_q[b] = 1 + (int)((seed + b) % lq_max);
    }
    c->heads_q = hq;
    c->heads_kv = hkv;
    c->head_dim = d;
    c->causal = AC_CAUSAL_BOTTOM_RIGHT;
    c->block_size = bs;
    c->num_splits = splits;
    c->dist = (ac_dist)dist;
    c->special = AC_SPECIAL_GARBAGE_TABLE | (seed % 2 ? AC_SPECIAL_NAN_SLOTS : AC_SPECIAL_INF_SLOTS);
    c->seed = seed;
    if (kv) {
        c->head_dim_v = kv->dv;
        c->kv_format = kv->fmt;
        std::vector<float> ks(hkv), vs(hkv);
        for (int g = 0; g < hkv; g++) { // distinct per head: a head that takes another's scale shows
            ks[g] = ldexpf(1.0f + 0.125f * (float)(g % 5), (g % 3) - 1);
            vs[g] = ldexpf(1.5f - 0.125f * (float)(g % 7), 1 - (g % 3));
        }
        if (kv->scales && ac_case_set_kv_scales(c, ks.data(), vs.data(), kv->scales == 1 ? 1 : hkv, &err)) {
            fprintf(stderr, "kv scales: %s\n", err.msg);
            return -1;
        }
    }
    if (ac_case_make_layout(c, (ac_layout)layout, 3, &err)) {
        fprintf(stderr, "layout: %s\n", err.msg);
        return -1;
    }
    if (ac_gen(c, t, &err)) {
        fprintf(stderr, "gen: %s\n", err.msg);
        return -1;
    }
    return 0;
}

// The GPU's outputs against the model's, into the group's columns.
static void gpu_model_diff(group_stat &g, const ac_case *c, int64_t rows, const ac_outputs &og, const ac_outputs &om)
{
    for (int64_t i = 0; i < rows * ac_case_dv(c); i++) {
        g.max_o_diff = std::max(g.max_o_diff, (double)fabsf(og.o_f32[i] - om.o_f32[i]));
        if (!ac_half_isnan(c->dtype, og.o[i]) && !ac_half_isnan(c->dtype, om.o[i]))
            g.max_ulp = std::max(g.max_ulp, ac_half_ulp_diff(c->dtype, og.o[i], om.o[i]));
    }
    for (int64_t i = 0; i < rows; i++)
        if (isfinite(og.lse[i]) || isfinite(om.lse[i]))
            g.max_lse_diff = std::max(g.max_lse_diff, (double)fabsf(og.lse[i] - om.lse[i]));
}

static void decode_case_check(group_stat &g, ac_case *c, ac_tensors *t, const int32_t *splits, int ns,
                              int with_model)
{
    // A case with features is judged by the oracle and the verdict alone:
    // ac_ref64 and the decode law know none of them.
    const bool feats = ac_case_has_features(c);
    ac_oracle_result r;
    ac_error rerr = {};
    ac_oracle_opts oo = {};
    OK(feats ? ac_oracle_run(c, t, &oo, &r, &rerr) : ac_ref64(c, t, 0, &r, &rerr));
    for (int k = 0; k < ns; k++) {
        c->num_splits = splits[k];
        char line[512], why[512];
        ac_case_line(c, line, sizeof line);
        ac_outputs og = {}, om = {};
        ac_error err = {};
        ac_run_opts opts = {AC_BUG_NONE, 1};
        g.cases++;
        OK(ac_outputs_alloc(c, &og, &err));
        ac_status st = ac_gpu_decode(c, t, &opts, &og, &err);
        if (st) {
            printf("FAIL gpu %s: %s %s\n", line, ac_status_name(st), err.msg);
            g.failed++;
            g_fail = 1;
            ac_outputs_free(&og);
            continue;
        }
        // The split count actually used, for the bound.
        int32_t *cu = (int32_t *)malloc(sizeof(int32_t) * (c->batch + 1));
        cu[0] = 0;
        for (int b = 0; b < c->batch; b++) cu[b + 1] = cu[b] + c->seqlen_q[b];
        ac_decode_params p = {};
        p.batch = c->batch;
        p.heads_q = c->heads_q;
        p.heads_kv = c->heads_kv;
        p.block_size = c->block_size;
        p.num_splits = c->num_splits;
        p.cu_seqlens_q_host = cu;
        p.seqlens_k_host = c->seqlen_k;
        int sms = 0;
        CK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
        int32_t used = ac_decode_splits(&p, sms);
        free(cu);
        auto judge = [&](const ac_outputs *o) {
            if (!feats) return decode_vs_ref(c, t, &r, o, used, why, sizeof why);
            return verdict_ok(c, t, &r, o, why, sizeof why) ? 0.0 : INFINITY;
        };
        double w = judge(&og);
        if (!(w <= 1.0)) {
            printf("FAIL gpu vs reference: %s: %s\n", line, why);
            g.failed++;
            g_fail = 1;
        } else if (w > g.worst_gpu)
            g.worst_gpu = w;
        if (with_model) {
            OK(ac_outputs_alloc(c, &om, &err));
            OK(ac_model_decode(c, t, &opts, &om, &err));
            double wm = judge(&om);
            if (!(wm <= 1.0)) {
                printf("FAIL model vs reference: %s: %s\n", line, why);
                g.failed++;
                g_fail = 1;
            } else if (wm > g.worst_model)
                g.worst_model = wm;
            gpu_model_diff(g, c, r.rows, og, om);
            ac_outputs_free(&om);
        }
        ac_outputs_free(&og);
    }
    ac_oracle_result_free(&r);
}

static void decode_sweep(int quick)
{
    struct { const char *name; int32_t hq, hkv; } gqa[] = {
        {"GQA1 (Hq=Hkv=8)", 8, 8}, {"GQA4 (32/8)", 32, 8}, {"GQA8 (32/4)", 32, 4}, {"MQA (8/1)", 8, 1},
        {"GQA32 (32/1, 4 row chunks)", 32, 1},
    };
    const int32_t dims[] = {64, 128, 256, 96};
    const int32_t bss[] = {16, 32, 256, 7};
    const int32_t splits_all[] = {1, 2, 7, 64, 0};
    const int32_t splits_quick[] = {1, 5};
    printf("\n%-28s %6s %6s %12s %12s %12s %8s %12s\n", "decode group", "runs", "fail", "gpu err/bnd",
           "model err/bnd", "|gpu-model|", "ulp", "lse diff");
    uint64_t seed = 1;
    for (int gi = 0; gi < 5; gi++) {
        group_stat g;
        g.name = gqa[gi].name;
        for (int dt = 0; dt < 2; dt++)
            for (int di = 0; di < 4; di++)
                for (int bi = 0; bi < 4; bi++) {
                    if (quick && (di > 1 || bi > 1 || dt > 0)) continue;
                    ac_case c;
                    ac_tensors t = {};
                    seed++;
                    if (make_decode_case(&c, &t, (ac_dtype)dt, gqa[gi].hq, gqa[gi].hkv, dims[di], bss[bi],
                                         (seed % 3 == 0) ? 8 : (seed % 3 == 1 ? 1 : 3), 1, (int)(seed % AC_DIST_COUNT),
                                         1 + (int)(seed % 2), seed)) {
                        g_fail = 1;
                        continue;
                    }
                    decode_case_check(g, &c, &t, quick ? splits_quick : splits_all, quick ? 2 : 5,
                                      g_with_model && !quick && (bi == 0 || di == 1));
                    ac_case_free(&c);
                    ac_tensors_free(&t);
                }
        stat_line(g);
    }
}

// ---- features: windows, softcap, ALiBi, sinks -----------------------------------
// decode_case_check judges these by the oracle's verdict (ac_ref64 and the
// decode law know no features), GPU and model, and the GPU against the model.
// One group per set; a set with d = 0 runs D = 64, 128, 256, else D = d
// (with its KV storage) three times, the last with 8/1 heads.
struct fset {
    const char *name;
    int32_t wl, wr;
    float cap;
    int alibi, sinks;
    int32_t d;
    kv_opt kv;
};

static void feature_groups(int quick, const char *title, const fset *fs, size_t n, uint64_t seed)
{
    const int32_t splits_all[] = {1, 2, 7, 64, 0};
    const int32_t splits_quick[] = {1, 5};
    const int32_t dims[] = {64, 128, 256};
    // err/bnd columns stay 0: a feature case passes or fails the verdict.
    printf("\n%-28s %6s %6s %12s %12s %12s %8s %12s\n", title, "runs", "fail", "gpu err/bnd",
           "model err/bnd", "|gpu-model|", "ulp", "lse diff");
    for (size_t k = 0; k < n; k++) {
        const fset &f = fs[k];
        group_stat g;
        g.name = f.name;
        for (int dt = 0; dt < 2; dt++)
            for (int di = 0; di < 3; di++) {
                if (quick && (dt > 0 || di > 1)) continue;
                ac_case c;
                ac_tensors t = {};
                ac_error err = {};
                seed++;
                const int32_t hq = di == 2 ? 8 : 32, hkv = di == 2 ? 1 : 8;
                if (make_decode_case(&c, &t, (ac_dtype)dt, hq, hkv, f.d ? f.d : dims[di], 16, seed % 2 ? 8 : 3, 1,
                                     (int)(seed % AC_DIST_COUNT), 1, seed, f.d ? &f.kv : nullptr)) {
                    g_fail = 1;
                    continue;
                }
                c.window_left = f.wl;
                c.window_right = f.wr;
                c.softcap = f.cap;
                std::vector<float> v(hq);
                for (int h = 0; h < hq; h++) v[h] = ldexpf(1.0f, -(8 * (h + 1)) / hq); // the ALiBi paper's slopes
                if (f.alibi) OK(ac_case_set_alibi(&c, v.data(), hq, &err));
                const float sv[] = {0.5f, -INFINITY, 3.0f, -1.5f};
                for (int h = 0; h < hq; h++) v[h] = sv[h % 4];
                if (f.sinks) OK(ac_case_set_sinks(&c, v.data(), hq, &err));
                decode_case_check(g, &c, &t, quick ? splits_quick : splits_all, quick ? 2 : 5, 1);
                ac_case_free(&c);
                ac_tensors_free(&t);
            }
        stat_line(g);
    }
}

static void feature_sweep(int quick)
{
    const fset fs[] = {
        {"window 40", 40, -1, 0, 0, 0, 0, {}},      {"window 5 (in a block)", 5, -1, 0, 0, 0, 0, {}},
        {"window 0,0", 0, 0, 0, 0, 0, 0, {}},       {"softcap 1.5", -1, -1, 1.5f, 0, 0, 0, {}},
        {"softcap 30", -1, -1, 30.0f, 0, 0, 0, {}}, {"alibi", -1, -1, 0, 1, 0, 0, {}},
        {"sinks", -1, -1, 0, 0, 1, 0, {}},          {"all four", 24, -1, 5.0f, 1, 1, 0, {}},
    };
    feature_groups(quick, "decode features", fs, sizeof fs / sizeof fs[0], 5000);
}

// ---- FP8 KV cache and D_v != D_qk --------------------------------------------
// Judged as the features are (the oracle's verdict), GPU and model, and the
// GPU against the model. MLA's 576/512 runs the wide-dim kernel (3 chunks of
// 8 a lane, at most 2 rows a CTA).
static void kv_sweep(int quick)
{
    const fset ks[] = {
        {"Dv 192/128", -1, -1, 0, 0, 0, 192, {128, AC_KV_AS_DTYPE, 0}},
        {"Dv 128/64", -1, -1, 0, 0, 0, 128, {64, AC_KV_AS_DTYPE, 0}},
        {"Dv 64/128 sinks", -1, -1, 0, 0, 1, 64, {128, AC_KV_AS_DTYPE, 0}},
        {"e4m3 no scale", -1, -1, 0, 0, 0, 128, {0, AC_KV_E4M3, 0}},
        {"e4m3 per tensor", -1, -1, 0, 0, 0, 128, {0, AC_KV_E4M3, 1}},
        {"e4m3 per head", -1, -1, 0, 0, 0, 64, {0, AC_KV_E4M3, 2}},
        {"e5m2 per head", -1, -1, 0, 0, 0, 256, {0, AC_KV_E5M2, 2}},
        {"e5m2 per tensor sinks", -1, -1, 0, 0, 1, 128, {0, AC_KV_E5M2, 1}},
        {"e4m3 Dv 192/128 all four", 24, -1, 5.0f, 1, 1, 192, {128, AC_KV_E4M3, 2}},
        {"Dv 576/512 (MLA)", -1, -1, 0, 0, 0, 576, {512, AC_KV_AS_DTYPE, 0}},
        {"Dv 512/512", -1, -1, 0, 0, 0, 512, {512, AC_KV_AS_DTYPE, 0}},
        {"e4m3 Dv 576/512 all four", 24, -1, 5.0f, 1, 1, 576, {512, AC_KV_E4M3, 2}},
        {"e5m2 Dv 264/768 per tensor", -1, -1, 0, 0, 0, 264, {768, AC_KV_E5M2, 1}},
    };
    feature_groups(quick, "decode kv (fp8 / dv)", ks, sizeof ks / sizeof ks[0], 7000);
}

// ---- combine -----------------------------------------------------------------
static void combine_sweep(int quick)
{
    group_stat g;
    g.name = "combine (NaN in empty O_s)";
    const int32_t Ss[] = {1, 2, 5, 64, 1000};
    for (int si = 0; si < (quick ? 2 : 5); si++)
        for (int dt = 0; dt < 2; dt++) {
            ac_case c;
            ac_tensors t = {};
            ac_error err = {};
            ac_case_init(&c);
            c.op = AC_OP_COMBINE;
            c.dtype = (ac_dtype)dt;
            OK(ac_case_set_batch(&c, 37, &err));
            for (int b = 0; b < 37; b++) c.seqlen_q[b] = 1 + b % 2;
            c.heads_q = c.heads_kv = 4;
            c.head_dim = dt ? 128 : 80;
            c.num_splits = Ss[si];
            c.special = AC_SPECIAL_NAN_PARTIALS;
            c.seed = 77 + si;
            OK(ac_gen(&c, &t, &err));
            ac_outputs og = {}, om = {};
            ac_run_opts opts = {AC_BUG_NONE, 1};
            OK(ac_outputs_alloc(&c, &og, &err));
            OK(ac_outputs_alloc(&c, &om, &err));
            ac_status st = ac_gpu_combine(&c, &t, &opts, &og, &err);
            g.cases++;
            if (st) {
                printf("FAIL combine gpu: %s\n", err.msg);
                g.failed++;
                g_fail = 1;
                continue;
            }
            OK(ac_model_combine(&c, &t, &opts, &om, &err));
            ac_oracle_result ref;
            OK(ac_ref64(&c, &t, 0, &ref, &err));
            char why[512];
            if (!verdict_ok(&c, &t, &ref, &og, why, sizeof why)) {
                printf("FAIL combine gpu vs reference S=%d: %s\n", c.num_splits, why);
                g.failed++;
                g_fail = 1;
            }
            // Both within (2S + 8) u sum_s w_s |O_s| (ac_ref64's SPV) of the
            // exact value (the combine law, tests/test_model_decode.c), so of
            // each other within twice that: a law tighter than the verdict's
            // for few splits, checked beside it.
            const int64_t rows = t.total_q * c.heads_q;
            const int32_t S = c.num_splits, d = c.head_dim;
            const double u32 = AC_U_FP32;
            for (int64_t r = 0; r < rows; r++) {
                bool empty = ref.n_allowed[r] == 0;
                double lse = ref.lse[r];
                bool bad = empty ? !(og.lse[r] == -INFINITY) : !(fabs(og.lse[r] - om.lse[r]) <= 2 * ((S + 8) * u32 + u32 * fabs(lse)));
                if (!empty) g.max_lse_diff = std::max(g.max_lse_diff, (double)fabsf(og.lse[r] - om.lse[r]));
                for (int e = 0; e < d && !bad; e++) {
                    double a = ref.spv[r * d + e];
                    double diff = fabs((double)og.o_f32[r * d + e] - om.o_f32[r * d + e]);
                    double tol = 2 * (2.0 * S + 8) * u32 * a;
                    if (empty) bad = og.o_f32[r * d + e] != 0.0f;
                    else bad = !(diff <= tol);
                    if (!bad && tol > 0) g.worst_gpu = std::max(g.worst_gpu, diff / tol);
                    g.max_o_diff = std::max(g.max_o_diff, diff);
                    g.max_ulp = std::max(g.max_ulp, ac_half_ulp_diff(c.dtype, og.o[r * d + e], om.o[r * d + e]));
                }
                if (bad) {
                    printf("FAIL combine S=%d row %lld: gpu lse %g o0 %g / model lse %g o0 %g\n", S, (long long)r,
                           og.lse[r], og.o_f32[r * d], om.lse[r], om.o_f32[r * d]);
                    g.failed++;
                    g_fail = 1;
                    break;
                }
            }
            ac_oracle_result_free(&ref);
            ac_outputs_free(&og);
            ac_outputs_free(&om);
            ac_case_free(&c);
            ac_tensors_free(&t);
        }
    stat_line(g);
}

// ---- store -------------------------------------------------------------------
// A store case of 3 sequences (40, 17, 300 keys), 2 KV heads, 9 new tokens
// (4 of them padding), generated; kv: D_v, format and scales (NULL: none).
static void make_store_case(ac_case *c, ac_tensors *t, ac_dtype dt, int32_t d, int i64, uint64_t seed,
                            const kv_opt *kv)
{
    ac_error err = {};
    ac_case_init(c);
    c->op = AC_OP_STORE;
    c->dtype = dt;
    OK(ac_case_set_batch(c, 3, &err));
    c->seqlen_k[0] = 40;
    c->seqlen_k[1] = 17;
    c->seqlen_k[2] = 300;
    for (int b = 0; b < 3; b++) c->seqlen_q[b] = 1;
    c->heads_q = c->heads_kv = 2;
    c->head_dim = d;
    c->block_size = 16;
    c->slot_mapping_i64 = i64;
    c->seed = seed;
    if (kv) {
        c->head_dim_v = kv->dv;
        c->kv_format = kv->fmt;
        c->dist = (ac_dist)(seed % AC_DIST_COUNT);
        const float ksc[] = {0.375f, 3.0f}, vsc[] = {2.5f, 0.0625f};
        if (kv->scales) OK(ac_case_set_kv_scales(c, ksc, vsc, kv->scales == 1 ? 1 : 2, &err));
    }
    OK(ac_case_make_layout(c, AC_LAYOUT_PERMUTED, 2, &err));
    OK(ac_case_make_store_slots(c, 9, 4, &err));
    OK(ac_gen(c, t, &err));
}

// GPU and model on one store case: bit-exact against each other (both
// rejecting it with AC_ERR_SLOT, nothing written, when bad), and with
// with_oracle the oracle's verdict (its store judgement is bit-exact too).
static void store_check(group_stat &g, ac_case *c, ac_tensors *t, int bad, int with_oracle)
{
    ac_outputs og = {}, om = {};
    ac_error err = {};
    ac_run_opts opts = {AC_BUG_NONE, 1};
    OK(ac_outputs_alloc(c, &og, &err));
    OK(ac_outputs_alloc(c, &om, &err));
    const ac_status sg = ac_gpu_store(c, t, &opts, &og, &err);
    const ac_status sm = ac_model_store(c, t, &opts, &om, &err);
    char line[512], why[512] = "";
    ac_case_line(c, line, sizeof line);
    bool fail;
    if (bad) // rejected by both, nothing written (outputs still poisoned alike)
        fail = sg != AC_ERR_SLOT || sm != AC_ERR_SLOT || memcmp(og.k_cache, om.k_cache, 2 * og.kv_elems) != 0;
    else
        fail = sg || sm || memcmp(og.k_cache, om.k_cache, 2 * og.kv_elems) != 0 ||
               memcmp(og.v_cache, om.v_cache, 2 * og.v_elems) != 0;
    if (!fail && !bad && with_oracle) {
        ac_oracle_result r;
        ac_oracle_opts oo = {};
        OK(ac_oracle_run(c, t, &oo, &r, &err));
        fail = !verdict_ok(c, t, &r, &og, why, sizeof why);
        ac_oracle_result_free(&r);
    }
    g.cases++;
    if (fail) {
        printf("FAIL store %s bad=%d: gpu %s model %s %s\n", line, bad, ac_status_name(sg), ac_status_name(sm), why);
        g.failed++;
        g_fail = 1;
    }
    ac_outputs_free(&og);
    ac_outputs_free(&om);
}

static void store_sweep(void)
{
    group_stat g;
    g.name = "store (bit-exact vs model)";
    const int32_t dims[] = {128, 64, 6}; // 6 * Hkv = 12: not a multiple of 8, element-wise path
    for (int i64 = 0; i64 < 2; i64++)
        for (int di = 0; di < 3; di++)
            for (int bad = 0; bad < 3; bad++) {
                ac_case c;
                ac_tensors t = {};
                make_store_case(&c, &t, AC_BF16, dims[di], i64, 500 + i64 * 10 + di, nullptr);
                // Rejected mappings are made after ac_gen (which validates the case).
                int64_t first = -1;
                for (int i = 0; i < c.num_tokens - 1 && first < 0; i++) first = c.slot_mapping[i];
                if (bad == 1) c.slot_mapping[c.num_tokens - 1] = first; // collision with an earlier token
                if (bad == 2) c.slot_mapping[c.num_tokens - 1] = (int64_t)c.num_blocks * c.block_size;
                store_check(g, &c, &t, bad, 0);
                ac_case_free(&c);
                ac_tensors_free(&t);
            }
    stat_line(g);
}

// The store with D_v and FP8 caches (quantised per element, per-tensor and
// per-head scales), against the model and the oracle.
static void store_kv_sweep(void)
{
    group_stat g;
    g.name = "store fp8 / dv (bit-exact)";
    struct { int32_t d; kv_opt kv; } cs[] = {
        {192, {128, AC_KV_AS_DTYPE, 0}}, {128, {64, AC_KV_AS_DTYPE, 0}}, {128, {0, AC_KV_E4M3, 0}},
        {64, {0, AC_KV_E4M3, 2}},        {128, {0, AC_KV_E5M2, 1}},      {192, {128, AC_KV_E4M3, 2}},
        {576, {512, AC_KV_E5M2, 2}},
    };
    for (int dt = 0; dt < 2; dt++)
        for (size_t k = 0; k < sizeof cs / sizeof cs[0]; k++) {
            ac_case c;
            ac_tensors t = {};
            make_store_case(&c, &t, (ac_dtype)dt, cs[k].d, (int)(k % 2), 900 + 10 * dt + k, &cs[k].kv);
            store_check(g, &c, &t, 0, 1);
            ac_case_free(&c);
            ac_tensors_free(&t);
        }
    stat_line(g);
}

// ---- end to end: store a prompt, then N steps of (store one token, decode) ----
struct e2e_ctx {
    int32_t hkv, d;
    std::vector<std::vector<uint16_t>> k, v; // per sequence, contiguous [pos][Hkv][D]
};

// The decode step as a contiguous case (one query per sequence, the keys
// stored so far copied out of ctx) for the double reference.
static void e2e_case(const e2e_ctx &x, ac_dtype dt, int32_t hq, const std::vector<int32_t> &len,
                     const std::vector<uint16_t> &q, ac_case *c, ac_tensors *t)
{
    const int32_t B = (int32_t)len.size();
    const int64_t row = (int64_t)x.hkv * x.d;
    ac_error err = {};
    ac_case_init(c);
    c->op = AC_OP_DECODE;
    c->dtype = dt;
    OK(ac_case_set_batch(c, B, &err));
    c->heads_q = hq;
    c->heads_kv = x.hkv;
    c->head_dim = x.d;
    c->causal = AC_CAUSAL_BOTTOM_RIGHT;
    *t = ac_tensors();
    t->cu_seqlens_q = (int32_t *)malloc(sizeof(int32_t) * (B + 1));
    t->cu_seqlens_k = (int32_t *)malloc(sizeof(int32_t) * (B + 1));
    t->cu_seqlens_q[0] = t->cu_seqlens_k[0] = 0;
    for (int b = 0; b < B; b++) {
        c->seqlen_q[b] = 1;
        c->seqlen_k[b] = len[b];
        t->cu_seqlens_q[b + 1] = t->cu_seqlens_q[b] + 1;
        t->cu_seqlens_k[b + 1] = t->cu_seqlens_k[b] + len[b];
    }
    t->total_q = B;
    t->total_k = t->cu_seqlens_k[B];
    t->kv_elems = t->total_k * row;
    t->q = (uint16_t *)malloc(sizeof(uint16_t) * q.size());
    t->k = (uint16_t *)malloc(sizeof(uint16_t) * (t->kv_elems + 1));
    t->v = (uint16_t *)malloc(sizeof(uint16_t) * (t->kv_elems + 1));
    memcpy(t->q, q.data(), sizeof(uint16_t) * q.size());
    for (int b = 0; b < B; b++) {
        const size_t n = (size_t)len[b] * row, at = (size_t)t->cu_seqlens_k[b] * row;
        memcpy(t->k + at, x.k[b].data(), sizeof(uint16_t) * n);
        memcpy(t->v + at, x.v[b].data(), sizeof(uint16_t) * n);
    }
}

// big_pool: the pool has more than 2^31 elements and the sequences' blocks sit
// at its top, so every cache offset of the store and the decode needs 64 bits.
static void end_to_end(int steps, int big_pool)
{
    group_stat g;
    g.name = big_pool ? "e2e, pool > 2^31 elements" : "end-to-end store+decode";
    const ac_dtype dt = AC_BF16;
    const int32_t B = 3, hq = 32, hkv = 8, d = 128, bs = 16;
    const int32_t prompt[B] = {37, 100, 1};
    const int32_t cap = 100 + steps + 1, max_blocks = ac_num_tiles(cap, bs), used_blocks = B * max_blocks + 5;
    const int32_t num_blocks = big_pool ? 140000 : used_blocks; // 140000 * 16 * 8 * 128 = 2.29e9 elements
    const int64_t row = (int64_t)hkv * d, pool = (int64_t)num_blocks * bs * row;
    ac_rng rng;
    ac_rng_init(&rng, 4242, 1);
    // Random block permutation; unused table entries hold garbage.
    std::vector<int32_t> perm(used_blocks), table((size_t)B * max_blocks);
    for (int i = 0; i < used_blocks; i++) perm[i] = i;
    for (int i = used_blocks - 1; i > 0; i--) std::swap(perm[i], perm[ac_rng_below(&rng, i + 1)]);
    for (int i = 0; i < B * max_blocks; i++) table[i] = big_pool ? num_blocks - 1 - perm[i] : perm[i];
    e2e_ctx ctx;
    ctx.hkv = hkv;
    ctx.d = d;
    ctx.k.resize(B);
    ctx.v.resize(B);
    std::vector<int32_t> len(prompt, prompt + B);
    auto rnd = [&]() { return ac_f32_to_half(dt, (float)ac_rng_normal(&rng)); };

    uint16_t *dk, *dv, *dnew_k, *dnew_v, *dq, *dout;
    float *dof, *dlse, *dws;
    int32_t *dtbl, *dsk, *dcu;
    void *dslots;
    const int max_tokens = 37 + 100 + 1 + B + 8; // the prompt store, with one padding token per sequence
    const size_t ws_bytes = (size_t)B * hq * 64 * (d + 1) * 4;
    CK(cudaMalloc(&dk, pool * 2));
    CK(cudaMalloc(&dv, pool * 2));
    CK(cudaMemset(dk, 0xFF, pool * 2)); // NaN everywhere nobody stored
    CK(cudaMemset(dv, 0xFF, pool * 2));
    CK(cudaMalloc(&dnew_k, max_tokens * row * 2));
    CK(cudaMalloc(&dnew_v, max_tokens * row * 2));
    CK(cudaMalloc(&dq, (size_t)B * hq * d * 2));
    CK(cudaMalloc(&dout, (size_t)B * hq * d * 2));
    CK(cudaMalloc(&dof, (size_t)B * hq * d * 4));
    CK(cudaMalloc(&dlse, (size_t)B * hq * 4));
    CK(cudaMalloc(&dws, ws_bytes));
    CK(cudaMalloc(&dtbl, table.size() * 4));
    CK(cudaMalloc(&dsk, B * 4));
    CK(cudaMalloc(&dcu, (B + 1) * 4));
    CK(cudaMalloc(&dslots, max_tokens * 8));
    CK(cudaMemcpy(dtbl, table.data(), table.size() * 4, cudaMemcpyHostToDevice));
    std::vector<int32_t> cu(B + 1);
    for (int b = 0; b <= B; b++) cu[b] = b;
    CK(cudaMemcpy(dcu, cu.data(), (B + 1) * 4, cudaMemcpyHostToDevice));

    // One store: tokens of positions [from_b, to_b) of each sequence, a padding token between sequences.
    auto store = [&](const std::vector<int32_t> &from, const std::vector<int32_t> &to, int i64) {
        std::vector<int64_t> s64;
        std::vector<int32_t> s32;
        std::vector<uint16_t> kn, vn;
        for (int b = 0; b < B; b++) {
            for (int p = from[b]; p < to[b]; p++) {
                int64_t slot = (int64_t)table[b * max_blocks + p / bs] * bs + p % bs;
                s64.push_back(slot);
                for (int64_t e = 0; e < row; e++) {
                    uint16_t kk = rnd(), vv = rnd();
                    kn.push_back(kk);
                    vn.push_back(vv);
                    ctx.k[b].push_back(kk);
                    ctx.v[b].push_back(vv);
                }
            }
            s64.push_back(-1); // padding: skipped
            for (int64_t e = 0; e < row; e++) {
                kn.push_back(0x7fc0); // NaN: must never land anywhere
                vn.push_back(0x7fc0);
            }
        }
        for (int64_t s : s64) s32.push_back((int32_t)s);
        const int n = (int)s64.size();
        CK(cudaMemcpy(dnew_k, kn.data(), kn.size() * 2, cudaMemcpyHostToDevice));
        CK(cudaMemcpy(dnew_v, vn.data(), vn.size() * 2, cudaMemcpyHostToDevice));
        CK(cudaMemcpy(dslots, i64 ? (const void *)s64.data() : (const void *)s32.data(), (size_t)n * (i64 ? 8 : 4),
                      cudaMemcpyHostToDevice));
        ac_store_params sp = {};
        sp.dtype = dt;
        sp.num_tokens = n;
        sp.heads_kv = hkv;
        sp.head_dim = d;
        sp.num_blocks = num_blocks;
        sp.block_size = bs;
        sp.k_new = dnew_k;
        sp.v_new = dnew_v;
        sp.k_cache = dk;
        sp.v_cache = dv;
        sp.slot_mapping = dslots;
        sp.slot_mapping_i64 = i64;
        sp.slot_mapping_host = i64 ? (const void *)s64.data() : (const void *)s32.data();
        ac_error err = {};
        if (ac_store_launch(&sp, NULL, &err)) {
            printf("FAIL e2e store: %s\n", err.msg);
            g_fail = 1;
        }
    };
    store(std::vector<int32_t>(B, 0), len, 1);
    const int32_t splits_cycle[] = {0, 1, 3, 64};
    for (int step = 0; step < steps; step++) {
        std::vector<int32_t> to(len);
        for (int b = 0; b < B; b++) to[b]++;
        store(len, to, step % 2);
        len = to;
        std::vector<uint16_t> q((size_t)B * hq * d);
        for (auto &x : q) x = rnd();
        CK(cudaMemcpy(dq, q.data(), q.size() * 2, cudaMemcpyHostToDevice));
        CK(cudaMemcpy(dsk, len.data(), B * 4, cudaMemcpyHostToDevice));
        CK(cudaMemset(dout, 0xFF, (size_t)B * hq * d * 2));
        CK(cudaMemset(dof, 0xFF, (size_t)B * hq * d * 4));
        CK(cudaMemset(dlse, 0xFF, (size_t)B * hq * 4));
        ac_decode_params p = {};
        p.dtype = dt;
        p.batch = B;
        p.heads_q = hq;
        p.heads_kv = hkv;
        p.head_dim = d;
        p.causal = AC_CAUSAL_BOTTOM_RIGHT;
        p.num_splits = splits_cycle[step % 4];
        p.num_blocks = num_blocks;
        p.block_size = bs;
        p.max_blocks_per_seq = max_blocks;
        p.total_q = B;
        p.q = dq;
        p.k_cache = dk;
        p.v_cache = dv;
        p.cu_seqlens_q = dcu;
        p.seqlens_k = dsk;
        p.block_table = dtbl;
        p.o = dout;
        p.o_f32 = dof;
        p.lse = dlse;
        p.cu_seqlens_q_host = cu.data();
        p.seqlens_k_host = len.data();
        p.block_table_host = table.data();
        ac_error err = {};
        int32_t used = 0;
        g.cases++;
        if (ac_decode_launch(&p, dws, ws_bytes, NULL, &used, &err)) {
            printf("FAIL e2e decode step %d: %s\n", step, err.msg);
            g.failed++;
            g_fail = 1;
            continue;
        }
        CK(cudaDeviceSynchronize());
        std::vector<uint16_t> o((size_t)B * hq * d);
        std::vector<float> of((size_t)B * hq * d), lse((size_t)B * hq);
        CK(cudaMemcpy(o.data(), dout, o.size() * 2, cudaMemcpyDeviceToHost));
        CK(cudaMemcpy(of.data(), dof, of.size() * 4, cudaMemcpyDeviceToHost));
        CK(cudaMemcpy(lse.data(), dlse, lse.size() * 4, cudaMemcpyDeviceToHost));
        ac_case ec;
        ac_tensors et;
        e2e_case(ctx, dt, hq, len, q, &ec, &et);
        ac_oracle_result r;
        OK(ac_ref64(&ec, &et, 0, &r, &err));
        ac_outputs eo = {};
        eo.o = o.data();
        eo.o_f32 = of.data();
        eo.lse = lse.data();
        char why[512];
        double w = decode_vs_ref(&ec, &et, &r, &eo, used, why, sizeof why);
        if (!(w <= 1.0)) {
            printf("FAIL e2e step %d (splits %d): %s\n", step, used, why);
            g.failed++;
            g_fail = 1;
        } else
            g.worst_gpu = std::max(g.worst_gpu, w);
        ac_oracle_result_free(&r);
        ac_tensors_free(&et);
        ac_case_free(&ec);
    }
    void *bufs[] = {dk, dv, dnew_k, dnew_v, dq, dout, dof, dlse, dws, dtbl, dsk, dcu, dslots};
    for (void *b : bufs) CK(cudaFree(b));
    stat_line(g);
}

// ---- benchmark ---------------------------------------------------------------
struct peer {
    char name[32];
    int B, S;
    double gbps;
    char mode[32];
};

static std::vector<peer> read_peers(const char *path)
{
    std::vector<peer> v;
    FILE *f = path ? fopen(path, "r") : NULL;
    if (!f) return v;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        peer p = {};
        if (sscanf(line, "PEER %31s B=%d S=%d gbps=%lf mode=%31s", p.name, &p.B, &p.S, &p.gbps, p.mode) == 5)
            v.push_back(p);
    }
    fclose(f);
    return v;
}

// The benchmarks' decode call: one bf16 query per sequence, B sequences of
// seqk keys each in a pool of num_blocks blocks of bs (table perm, B rows).
static ac_decode_params bench_params(int32_t B, int32_t hq, int32_t hkv, int32_t d, int32_t bs, int32_t num_blocks,
                                     const uint16_t *dq, const int32_t *dcu, const int32_t *dsk, const int32_t *dtbl,
                                     uint16_t *dout, float *dlse, const std::vector<int32_t> &cu,
                                     const std::vector<int32_t> &seqk, const std::vector<int32_t> &perm)
{
    ac_decode_params p = {};
    p.dtype = AC_BF16;
    p.batch = B;
    p.heads_q = hq;
    p.heads_kv = hkv;
    p.head_dim = d;
    p.causal = AC_CAUSAL_BOTTOM_RIGHT;
    p.num_blocks = num_blocks;
    p.block_size = bs;
    p.max_blocks_per_seq = num_blocks / B;
    p.total_q = B;
    p.q = dq;
    p.cu_seqlens_q = dcu;
    p.seqlens_k = dsk;
    p.block_table = dtbl;
    p.o = dout;
    p.lse = dlse;
    p.cu_seqlens_q_host = cu.data();
    p.seqlens_k_host = seqk.data();
    p.block_table_host = perm.data();
    return p;
}

// A feature of the benchmark's decode, on or off; timed on the same shapes.
// fp8: an E4M3 cache with per-tensor scales (half the bytes: GB/s counts the bytes read).
enum bench_feature { BF_NONE, BF_WINDOW, BF_SOFTCAP, BF_ALIBI, BF_SINKS, BF_ALL, BF_FP8, BF_COUNT };
static const char *const bench_feature_names[BF_COUNT] = {"none", "window", "softcap", "alibi", "sinks", "all", "fp8"};
static const int32_t BENCH_WINDOW = 4096; // keys a query sees with the window on (left = 4095)

static void bench(const char *peers_path, const std::vector<int> &features)
{
    const int32_t hq = 32, hkv = 8, d = 128, bs = 16;
    const int shapes[][2] = {{1, 32768}, {64, 4096}};
    int dev = 0, l2 = 0, sms = 0;
    CK(cudaGetDevice(&dev));
    CK(cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, dev));
    CK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
    cudaDeviceProp prop;
    CK(cudaGetDeviceProperties(&prop, dev));
    std::vector<peer> peers = read_peers(peers_path);
    printf("\ndevice %s, %d SMs, L2 %d MB\n", prop.name, sms, l2 >> 20);
    printf("%-16s %8s %6s %8s %10s %10s %10s %10s %10s %10s\n", "shape", "feature", "loads", "splits", "us", "GB/s",
           "FLASH", "CUDNN", "x FLASH", "x CUDNN");
    for (auto &sh : shapes) {
        const int B = sh[0], S = sh[1];
        const int32_t blocks_per_seq = S / bs, num_blocks = B * blocks_per_seq;
        const int64_t pool = (int64_t)num_blocks * bs * hkv * d;
        const double all_bytes = 2.0 * B * S * hkv * d * 2; // K and V actually needed
        // Copies rotated so that the data of one call is not in L2 from the previous one.
        const int copies = std::max(1, (int)ceil(3.0 * l2 / all_bytes));
        ac_rng rng;
        ac_rng_init(&rng, 99, 1);
        std::vector<int32_t> perm(num_blocks), seqk(B, S), cu(B + 1);
        for (int i = 0; i < num_blocks; i++) perm[i] = i;
        for (int i = num_blocks - 1; i > 0; i--) std::swap(perm[i], perm[ac_rng_below(&rng, i + 1)]);
        for (int b = 0; b <= B; b++) cu[b] = b;
        std::vector<uint16_t> hostv(1 << 20), hostw(1 << 20);
        for (auto &x : hostv) x = ac_f32_to_half(AC_BF16, (float)ac_rng_normal(&rng));
        for (auto &x : hostw) x = ac_f32_to_half(AC_BF16, (float)ac_rng_normal(&rng));
        // The same buffers hold an E4M3 cache in their first half (codes of N(0,1) values).
        std::vector<uint16_t> host8(1 << 19), host8w(1 << 19);
        for (size_t i = 0; i < host8.size(); i++) {
            host8[i] = (uint16_t)(ac_f32_to_fp8(AC_KV_E4M3, ac_half_to_f32(AC_BF16, hostv[2 * i])) |
                                  ac_f32_to_fp8(AC_KV_E4M3, ac_half_to_f32(AC_BF16, hostv[2 * i + 1])) << 8);
            host8w[i] = (uint16_t)(ac_f32_to_fp8(AC_KV_E4M3, ac_half_to_f32(AC_BF16, hostw[2 * i])) |
                                   ac_f32_to_fp8(AC_KV_E4M3, ac_half_to_f32(AC_BF16, hostw[2 * i + 1])) << 8);
        }
        std::vector<uint16_t *> ks(copies), vs(copies), ks8(copies), vs8(copies);
        for (int c = 0; c < copies; c++) {
            CK(cudaMalloc(&ks[c], pool * 2));
            CK(cudaMalloc(&vs[c], pool * 2));
            for (int64_t off = 0; off < pool; off += (int64_t)hostv.size()) {
                size_t n = (size_t)std::min<int64_t>(hostv.size(), pool - off);
                CK(cudaMemcpy(ks[c] + off, hostv.data(), n * 2, cudaMemcpyHostToDevice));
                CK(cudaMemcpy(vs[c] + off, hostw.data(), n * 2, cudaMemcpyHostToDevice));
            }
            CK(cudaMalloc(&ks8[c], pool));
            CK(cudaMalloc(&vs8[c], pool));
            for (int64_t off = 0; off < pool / 2; off += (int64_t)host8.size()) {
                size_t n = (size_t)std::min<int64_t>(host8.size(), pool / 2 - off);
                CK(cudaMemcpy(ks8[c] + off, host8.data(), n * 2, cudaMemcpyHostToDevice));
                CK(cudaMemcpy(vs8[c] + off, host8w.data(), n * 2, cudaMemcpyHostToDevice));
            }
        }
        uint16_t *dq, *dout;
        int32_t *dtbl, *dsk, *dcu;
        float *dws, *dlse, *dslopes, *dsinks;
        std::vector<float> slopes(hq), sinks(hq);
        for (int h = 0; h < hq; h++) {
            slopes[h] = ldexpf(1.0f, -(8 * (h + 1)) / hq);
            sinks[h] = 0.5f * (float)(h % 5) - 1.0f;
        }
        const float kv_scale[2] = {0.5f, 0.25f};
        float *dkv_scale;
        CK(cudaMalloc(&dkv_scale, 2 * 4));
        CK(cudaMemcpy(dkv_scale, kv_scale, 2 * 4, cudaMemcpyHostToDevice));
        CK(cudaMalloc(&dslopes, hq * 4));
        CK(cudaMalloc(&dsinks, hq * 4));
        CK(cudaMemcpy(dslopes, slopes.data(), hq * 4, cudaMemcpyHostToDevice));
        CK(cudaMemcpy(dsinks, sinks.data(), hq * 4, cudaMemcpyHostToDevice));
        const size_t ws_bytes = (size_t)B * hq * 128 * (d + 1) * 4;
        CK(cudaMalloc(&dq, (size_t)B * hq * d * 2));
        CK(cudaMemcpy(dq, hostv.data(), (size_t)B * hq * d * 2, cudaMemcpyHostToDevice));
        CK(cudaMalloc(&dout, (size_t)B * hq * d * 2));
        CK(cudaMalloc(&dlse, (size_t)B * hq * 4));
        CK(cudaMalloc(&dws, ws_bytes));
        CK(cudaMalloc(&dtbl, (size_t)num_blocks * 4));
        CK(cudaMalloc(&dsk, B * 4));
        CK(cudaMalloc(&dcu, (B + 1) * 4));
        CK(cudaMemcpy(dtbl, perm.data(), (size_t)num_blocks * 4, cudaMemcpyHostToDevice));
        CK(cudaMemcpy(dsk, seqk.data(), B * 4, cudaMemcpyHostToDevice));
        CK(cudaMemcpy(dcu, cu.data(), (B + 1) * 4, cudaMemcpyHostToDevice));
        ac_decode_params p = bench_params(B, hq, hkv, d, bs, num_blocks, dq, dcu, dsk, dtbl, dout, dlse, cu, seqk, perm);
        double fl = 0, cd = 0;
        for (auto &pe : peers)
            if (pe.B == B && pe.S == S) {
                if (!strcmp(pe.name, "FLASH_ATTENTION")) fl = pe.gbps;
                if (!strcmp(pe.name, "CUDNN_ATTENTION")) cd = pe.gbps;
            }
        const int32_t split_opts[] = {0, 1, 2, 4, 8, 16, 32, 64, 128};
        for (int feat : features) {
        // Off: the params as before the features (a zeroed struct has none).
        const bool win = feat == BF_WINDOW || feat == BF_ALL;
        p.window = win;
        p.window_left = win ? BENCH_WINDOW - 1 : -1;
        p.window_right = -1;
        p.softcap = feat == BF_SOFTCAP || feat == BF_ALL ? 30.0f : 0.0f;
        const bool al = feat == BF_ALIBI || feat == BF_ALL, sk = feat == BF_SINKS || feat == BF_ALL;
        p.alibi_slopes = al ? dslopes : NULL;
        p.alibi_slopes_host = al ? slopes.data() : NULL;
        p.sinks = sk ? dsinks : NULL;
        p.sinks_host = sk ? sinks.data() : NULL;
        const bool f8 = feat == BF_FP8;
        p.kv_format = f8 ? AC_KV_E4M3 : AC_KV_AS_DTYPE;
        p.n_kv_scales = f8 ? 1 : 0;
        p.k_scales = f8 ? dkv_scale : NULL;
        p.v_scales = f8 ? dkv_scale + 1 : NULL;
        p.k_scales_host = f8 ? kv_scale : NULL;
        p.v_scales_host = f8 ? kv_scale + 1 : NULL;
        // GB/s over the keys the step needs: with the window, its keys only.
        const double bytes = (win ? 2.0 * B * std::min(S, BENCH_WINDOW) * hkv * d * 2 : all_bytes) / (f8 ? 2 : 1);
        for (int variant = 0; variant < 2; variant++)
        for (int32_t so : split_opts) {
            if (variant) setenv("AC_DECODE_LOADS", "regs", 1);
            else unsetenv("AC_DECODE_LOADS");
            p.num_splits = so;
            int32_t used = 0;
            ac_error err = {};
            cudaEvent_t e0, e1;
            CK(cudaEventCreate(&e0));
            CK(cudaEventCreate(&e1));
            std::vector<float> ms;
            for (int it = 0; it < 5 + 30; it++) {
                p.k_cache = f8 ? ks8[it % copies] : ks[it % copies];
                p.v_cache = f8 ? vs8[it % copies] : vs[it % copies];
                CK(cudaEventRecord(e0));
                if (ac_decode_launch(&p, dws, ws_bytes, NULL, &used, &err)) {
                    printf("bench decode failed: %s\n", err.msg);
                    g_fail = 1;
                    break;
                }
                CK(cudaEventRecord(e1));
                CK(cudaEventSynchronize(e1));
                float t = 0;
                CK(cudaEventElapsedTime(&t, e0, e1));
                if (it >= 5) ms.push_back(t);
            }
            CK(cudaEventDestroy(e0));
            CK(cudaEventDestroy(e1));
            if (ms.empty()) continue;
            std::sort(ms.begin(), ms.end());
            const double med = ms[ms.size() / 2];
            const double gbps = bytes / (med * 1e-3) / 1e9;
            char shape[32], spl[16];
            snprintf(shape, sizeof shape, "B=%d S=%d", B, S);
            snprintf(spl, sizeof spl, so ? "%d" : "auto=%d", used);
            printf("%-16s %8s %6s %8s %10.1f %10.0f %10.0f %10.0f %10.2f %10.2f\n", shape, bench_feature_names[feat],
                   variant ? "regs" : "async", spl, med * 1e3, gbps, fl, cd,
                   fl > 0 ? gbps / fl : 0.0, cd > 0 ? gbps / cd : 0.0);
        }
        }
        for (int c = 0; c < copies; c++) {
            CK(cudaFree(ks[c]));
            CK(cudaFree(vs[c]));
            CK(cudaFree(ks8[c]));
            CK(cudaFree(vs8[c]));
        }
        CK(cudaFree(dkv_scale));
        void *bufs[] = {dq, dout, dlse, dws, dtbl, dsk, dcu, dslopes, dsinks};
        for (void *b : bufs) CK(cudaFree(b));
    }
    for (auto &pe : peers) printf("peer %s B=%d S=%d: %.0f GB/s (%s)\n", pe.name, pe.B, pe.S, pe.gbps, pe.mode);
}

// ---- the table (docs/PERF.md, "The benchmark table") -------------------------
// The floors, measured in the same run: the read bandwidth of a read-only
// reduction over 2 GiB with 16-byte loads, and the device-to-device copy
// bandwidth (read + write bytes), each the best of 5.
__global__ void read_floor_kernel(const uint4 *x, int64_t n, unsigned *sink)
{
    unsigned acc = 0;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        const uint4 v = x[i];
        acc ^= v.x ^ v.y ^ v.z ^ v.w;
    }
    if (acc == 0x9e3779b9u) sink[0] = acc; // never in practice; keeps the loads
}

static void floors(double *read_gbps, double *copy_gbps)
{
    const size_t bytes = (size_t)2 << 30;
    void *a, *b;
    unsigned *sink;
    CK(cudaMalloc(&a, bytes));
    CK(cudaMalloc(&b, bytes / 2));
    CK(cudaMalloc(&sink, 4));
    CK(cudaMemset(a, 1, bytes));
    int dev = 0, sms = 0;
    CK(cudaGetDevice(&dev));
    CK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
    cudaEvent_t e0, e1;
    CK(cudaEventCreate(&e0));
    CK(cudaEventCreate(&e1));
    float best_read = 1e30f, best_copy = 1e30f;
    for (int it = 0; it < 7; it++) { // 2 warm-ups
        CK(cudaEventRecord(e0));
        read_floor_kernel<<<sms * 8, 512>>>((const uint4 *)a, (int64_t)(bytes / 16), sink);
        CK(cudaEventRecord(e1));
        CK(cudaEventSynchronize(e1));
        float t;
        CK(cudaEventElapsedTime(&t, e0, e1));
        if (it >= 2) best_read = std::min(best_read, t);
        CK(cudaEventRecord(e0));
        CK(cudaMemcpy(b, a, bytes / 2, cudaMemcpyDeviceToDevice));
        CK(cudaEventRecord(e1));
        CK(cudaEventSynchronize(e1));
        CK(cudaEventElapsedTime(&t, e0, e1));
        if (it >= 2) best_copy = std::min(best_copy, t);
    }
    CK(cudaGetLastError());
    *read_gbps = bytes / (best_read * 1e-3) / 1e9;
    *copy_gbps = bytes / (best_copy * 1e-3) / 1e9; // bytes/2 read + bytes/2 written
    CK(cudaEventDestroy(e0));
    CK(cudaEventDestroy(e1));
    CK(cudaFree(a));
    CK(cudaFree(b));
    CK(cudaFree(sink));
}

static int g_idx = 0;
static const int kTableRows = 24 + 2 + 2; // decode, combine, store

// The decode rows: Hq=32 Hkv=8 D=128 bf16, block 16 and 256 (random block
// permutation), B in {1, 8, 64, 128}, S in {2048, 4096, 32768}, automatic
// splits, async loads. Checked on 64 sampled (sequence, head) rows, then timed.
static int table_decode(int max_reps, const char *only)
{
    const int32_t hq = 32, hkv = 8, d = 128;
    const int l2 = tb_l2_bytes();
    int dev = 0, sms = 0, fails = 0;
    CK(cudaGetDevice(&dev));
    CK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
    const int32_t bss[] = {16, 256}, Bs[] = {1, 8, 64, 128}, Ss[] = {2048, 4096, 32768};
    for (int32_t bs : bss)
        for (int32_t B : Bs)
            for (int32_t S : Ss) {
                g_idx++;
                char shape[48], lname[16];
                snprintf(shape, sizeof shape, "B=%d S=%d", B, S);
                snprintf(lname, sizeof lname, "paged%d", bs);
                char full[96];
                snprintf(full, sizeof full, "decode bf16 D=128 %s %s", lname, shape);
                if (only && !strstr(full, only)) continue;
                fprintf(stderr, "[%d/%d] %s\n", g_idx, kTableRows, full);
                const int32_t per = S / bs, num_blocks = B * per;
                const int64_t pool = (int64_t)num_blocks * bs * hkv * d;
                const double kv_bytes = 2.0 * B * S * hkv * d * 2;
                const int copies = tb_copies(kv_bytes, l2, 64);
                ac_rng rng;
                ac_rng_init(&rng, 99 + (uint64_t)g_idx, 1);
                std::vector<int32_t> perm(num_blocks), seqk(B, S), cu(B + 1);
                for (int i = 0; i < num_blocks; i++) perm[i] = i;
                for (int i = num_blocks - 1; i > 0; i--) std::swap(perm[i], perm[ac_rng_below(&rng, i + 1)]);
                for (int b = 0; b <= B; b++) cu[b] = b;
                std::vector<uint16_t *> ks(copies), vs(copies);
                uint16_t *dq, *dout;
                float *dlse;
                int32_t *dtbl, *dsk, *dcu;
                for (int c = 0; c < copies; c++) {
                    CK(cudaMalloc(&ks[c], pool * 2));
                    CK(cudaMalloc(&vs[c], pool * 2));
                    if (!tb_fill_random(ks[c], pool, 500 + 2 * c, AC_BF16) || !tb_fill_random(vs[c], pool, 501 + 2 * c, AC_BF16))
                        return 2;
                }
                CK(cudaMalloc(&dq, (size_t)B * hq * d * 2));
                if (!tb_fill_random(dq, (int64_t)B * hq * d, 499, AC_BF16)) return 2;
                CK(cudaMalloc(&dout, (size_t)B * hq * d * 2));
                CK(cudaMalloc(&dlse, (size_t)B * hq * 4));
                CK(cudaMalloc(&dtbl, (size_t)num_blocks * 4));
                CK(cudaMalloc(&dsk, B * 4));
                CK(cudaMalloc(&dcu, (B + 1) * 4));
                CK(cudaMemcpy(dtbl, perm.data(), (size_t)num_blocks * 4, cudaMemcpyHostToDevice));
                CK(cudaMemcpy(dsk, seqk.data(), B * 4, cudaMemcpyHostToDevice));
                CK(cudaMemcpy(dcu, cu.data(), (B + 1) * 4, cudaMemcpyHostToDevice));
                ac_decode_params p = bench_params(B, hq, hkv, d, bs, num_blocks, dq, dcu, dsk, dtbl, dout, dlse, cu, seqk, perm);
                const int32_t splits = ac_decode_splits(&p, sms);
                const size_t ws_bytes = std::max<size_t>(16, ac_decode_workspace_bytes(&p, splits));
                float *dws;
                CK(cudaMalloc(&dws, ws_bytes));
                ac_error err = {};
                auto launch = [&](int i) {
                    p.k_cache = ks[i % copies];
                    p.v_cache = vs[i % copies];
                    if (ac_decode_launch(&p, dws, ws_bytes, NULL, NULL, &err)) {
                        fprintf(stderr, "ac_decode_launch: %s\n", err.msg);
                        return false;
                    }
                    return true;
                };
                double worst = 0;
                char why[512] = "";
                bool pass = cudaMemset(dout, 0xff, (size_t)B * hq * d * 2) == cudaSuccess && launch(0) &&
                            cudaDeviceSynchronize() == cudaSuccess;
                if (pass) {
                    std::vector<tb_row> rows;
                    for (int k = 0; k < 64; k++) { // the first and the last row, then at random
                        const int b = k == 0 ? 0 : k == 1 ? B - 1 : (int)ac_rng_below(&rng, B);
                        const int h = k == 0 ? 0 : k == 1 ? hq - 1 : (int)ac_rng_below(&rng, hq);
                        tb_row r;
                        r.qo_elem = ((int64_t)b * hq + h) * d;
                        r.lse_index = (int64_t)b * hq + h;
                        r.d_table = dtbl + (size_t)b * per;
                        r.base = 0;
                        r.kvh = h / (hq / hkv);
                        r.k0 = 0;
                        r.k1 = S;
                        rows.push_back(r);
                    }
                    pass = tb_check_rows(AC_BF16, d, hkv, bs, dq, ks[0], vs[0], dout, dlse, rows, &worst, why,
                                         sizeof why);
                } else
                    snprintf(why, sizeof why, "launch: %s", err.msg);
                double ms = -1, host_ms = -1;
                int reps = 0;
                if (pass) {
                    ms = tb_time(launch, 3, 5, max_reps, 100.0, &reps, &host_ms);
                    if (ms < 0) {
                        pass = false;
                        snprintf(why, sizeof why, "timing failed");
                    }
                }
                if (!pass) {
                    fails++;
                    fprintf(stderr, "FAIL %s: %s\n", full, why);
                }
                tb_row_line("decode", "bf16", d, "br", lname, shape, pass, ms, kv_bytes, "byte", worst, reps, copies,
                            host_ms);
                cudaGetLastError();
                for (int c = 0; c < copies; c++) {
                    CK(cudaFree(ks[c]));
                    CK(cudaFree(vs[c]));
                }
                void *bufs[] = {dq, dout, dlse, dws, dtbl, dsk, dcu};
                for (void *b : bufs) CK(cudaFree(b));
            }
    return fails;
}

// Copy a host case tensor to `copies` device buffers.
template <class T>
static std::vector<T *> upload_copies(const T *h, size_t n, int copies)
{
    std::vector<T *> v(copies);
    for (int c = 0; c < copies; c++) {
        CK(cudaMalloc(&v[c], std::max<size_t>(n, 1) * sizeof(T)));
        CK(cudaMemcpy(v[c], h, n * sizeof(T), cudaMemcpyHostToDevice));
    }
    return v;
}

// A small case run once by the kernel (ran: its outputs copied into o), judged
// whole by ac_ref64 and the verdict, then timed when it passed; one table row
// (bf16, D = 128). false if it failed.
template <class F>
static bool judge_time_row(const ac_case *c, const ac_tensors *t, const ac_outputs *o, bool ran, F launch,
                           int max_reps, const char *op, const char *layout, const char *shape, const char *full,
                           double bytes, int copies)
{
    double worst = 0, ms = -1, host_ms = -1;
    int reps = 0;
    char why[512] = "the kernel did not run";
    bool pass = ran;
    if (pass) {
        ac_oracle_result ref;
        ac_verdict v;
        ac_error err = {};
        OK(ac_ref64(c, t, 0, &ref, &err));
        OK(ac_verdict_judge(c, t, &ref, o, NULL, NULL, &v, NULL, &err));
        ac_oracle_result_free(&ref);
        worst = std::max(v.r_max, v.r_lse_max);
        pass = v.pass;
        snprintf(why, sizeof why, "%s", v.summary);
    }
    if (pass) {
        ms = tb_time(launch, 3, 5, max_reps, 50.0, &reps, &host_ms);
        pass = ms > 0;
    }
    if (!pass) fprintf(stderr, "FAIL %s: %s\n", full, why);
    tb_row_line(op, "bf16", 128, "-", layout, shape, pass, ms, bytes, "byte", worst, reps, copies, host_ms);
    cudaGetLastError();
    return pass;
}

// Combine: the fp32 partials of B x Hq rows and S splits merged into O (bf16
// and fp32, as the family is judged) and LSE. The whole case is judged (it is
// small). Bytes: partials read, outputs written.
static int table_combine(int max_reps, const char *only)
{
    const int l2 = tb_l2_bytes();
    const int32_t shapes[][3] = {{64, 32, 16}, {1, 32, 64}}; // B, Hq, splits
    int fails = 0;
    for (auto &sh : shapes) {
        g_idx++;
        const int32_t B = sh[0], hq = sh[1], S = sh[2], d = 128;
        char shape[64], full[96];
        snprintf(shape, sizeof shape, "B=%d Hq=%d splits=%d", B, hq, S);
        snprintf(full, sizeof full, "combine bf16 D=128 %s", shape);
        if (only && !strstr(full, only)) continue;
        fprintf(stderr, "[%d/%d] %s\n", g_idx, kTableRows, full);
        ac_case c;
        ac_tensors t = {};
        ac_outputs o = {};
        ac_error err = {};
        ac_case_init(&c);
        c.op = AC_OP_COMBINE;
        c.dtype = AC_BF16;
        OK(ac_case_set_batch(&c, B, &err));
        for (int b = 0; b < B; b++) c.seqlen_q[b] = 1;
        c.heads_q = c.heads_kv = hq;
        c.head_dim = d;
        c.num_splits = S;
        c.seed = 31 + (uint64_t)g_idx;
        OK(ac_gen(&c, &t, &err));
        OK(ac_outputs_alloc(&c, &o, &err));
        ac_combine_params p;
        OK(ac_combine_params_from_case(&c, &t, &o, &p, &err));
        const int64_t rows = p.rows;
        const double in_bytes = (double)rows * S * d * 4 + (double)rows * S * 4;
        const double bytes = in_bytes + (double)rows * d * (2 + 4) + (double)rows * 4;
        const int copies = tb_copies(in_bytes, l2, 64);
        std::vector<float *> op = upload_copies(t.o_part, (size_t)rows * S * d, copies);
        std::vector<float *> lp = upload_copies(t.lse_part, (size_t)rows * S, copies);
        uint16_t *dout;
        float *dof, *dlse;
        CK(cudaMalloc(&dout, rows * d * 2));
        CK(cudaMalloc(&dof, rows * d * 4));
        CK(cudaMalloc(&dlse, rows * 4));
        p.o = dout;
        p.o_f32 = dof;
        p.lse = dlse;
        auto launch = [&](int i) {
            p.o_part = op[i % copies];
            p.lse_part = lp[i % copies];
            if (ac_combine_launch(&p, NULL, &err)) {
                fprintf(stderr, "ac_combine_launch: %s\n", err.msg);
                return false;
            }
            return true;
        };
        const bool ran = launch(0) && cudaDeviceSynchronize() == cudaSuccess &&
                         cudaMemcpy(o.o, dout, rows * d * 2, cudaMemcpyDeviceToHost) == cudaSuccess &&
                         cudaMemcpy(o.o_f32, dof, rows * d * 4, cudaMemcpyDeviceToHost) == cudaSuccess &&
                         cudaMemcpy(o.lse, dlse, rows * 4, cudaMemcpyDeviceToHost) == cudaSuccess;
        fails += !judge_time_row(&c, &t, &o, ran, launch, max_reps, "combine", "-", shape, full, bytes, copies);
        for (int k = 0; k < copies; k++) {
            CK(cudaFree(op[k]));
            CK(cudaFree(lp[k]));
        }
        CK(cudaFree(dout));
        CK(cudaFree(dof));
        CK(cudaFree(dlse));
        ac_outputs_free(&o);
        ac_tensors_free(&t);
        ac_case_free(&c);
    }
    return fails;
}

// Store: 64 tokens (one per sequence, a decode step) and 8192 (128 per
// sequence, a prefill chunk) of Hkv=8 D=128 bf16 into a paged cache, block 16,
// int64 slot mapping; 64 sequences of 256 keys in a permuted pool. Checked bit
// for bit against ac_ref64 (the whole cache). Bytes: new K/V and slots read,
// K/V written.
static int table_store(int max_reps, const char *only)
{
    const int l2 = tb_l2_bytes();
    const int32_t per_seq[] = {1, 128};
    int fails = 0;
    for (int32_t n_new : per_seq) {
        g_idx++;
        const int32_t B = 64, hkv = 8, d = 128, bs = 16;
        char shape[64], full[96];
        snprintf(shape, sizeof shape, "tokens=%d Hkv=%d", B * n_new, hkv);
        snprintf(full, sizeof full, "store bf16 D=128 paged16 %s", shape);
        if (only && !strstr(full, only)) continue;
        fprintf(stderr, "[%d/%d] %s\n", g_idx, kTableRows, full);
        ac_case c;
        ac_tensors t = {};
        ac_outputs o = {};
        ac_error err = {};
        ac_case_init(&c);
        c.op = AC_OP_STORE;
        c.dtype = AC_BF16;
        OK(ac_case_set_batch(&c, B, &err));
        for (int b = 0; b < B; b++) {
            c.seqlen_q[b] = 1;
            c.seqlen_k[b] = 256;
        }
        c.heads_q = c.heads_kv = hkv;
        c.head_dim = d;
        c.block_size = bs;
        c.slot_mapping_i64 = 1;
        c.seed = 57 + (uint64_t)g_idx;
        OK(ac_case_make_layout(&c, AC_LAYOUT_PERMUTED, 2, &err));
        OK(ac_case_make_store_slots(&c, n_new, 0, &err));
        OK(ac_gen(&c, &t, &err));
        OK(ac_outputs_alloc(&c, &o, &err));
        ac_store_params p;
        OK(ac_store_params_from_case(&c, &t, &o, &p, &err));
        const int64_t ntok = p.num_tokens, row = (int64_t)hkv * d;
        const double in_bytes = (double)ntok * row * 2 * 2 + (double)ntok * 8;
        const double bytes = in_bytes + (double)ntok * row * 2 * 2;
        const int copies = tb_copies(in_bytes, l2, 1024);
        std::vector<uint16_t *> kn = upload_copies(t.k_new, (size_t)(ntok * row), copies);
        std::vector<uint16_t *> vn = upload_copies(t.v_new, (size_t)(ntok * row), copies);
        std::vector<int64_t *> sl = upload_copies(c.slot_mapping, (size_t)ntok, copies);
        uint16_t *dk, *dv;
        CK(cudaMalloc(&dk, t.kv_elems * 2));
        CK(cudaMalloc(&dv, t.kv_elems * 2));
        CK(cudaMemcpy(dk, t.k, t.kv_elems * 2, cudaMemcpyHostToDevice));
        CK(cudaMemcpy(dv, t.v, t.kv_elems * 2, cudaMemcpyHostToDevice));
        p.k_cache = dk;
        p.v_cache = dv;
        p.slot_mapping_host = c.slot_mapping;
        auto launch = [&](int i) {
            p.k_new = kn[i % copies];
            p.v_new = vn[i % copies];
            p.slot_mapping = sl[i % copies];
            if (ac_store_launch(&p, NULL, &err)) {
                fprintf(stderr, "ac_store_launch: %s\n", err.msg);
                return false;
            }
            return true;
        };
        const bool ran = launch(0) && cudaDeviceSynchronize() == cudaSuccess &&
                         cudaMemcpy(o.k_cache, dk, t.kv_elems * 2, cudaMemcpyDeviceToHost) == cudaSuccess &&
                         cudaMemcpy(o.v_cache, dv, t.kv_elems * 2, cudaMemcpyDeviceToHost) == cudaSuccess;
        fails += !judge_time_row(&c, &t, &o, ran, launch, max_reps, "store", "paged16", shape, full, bytes, copies);
        for (int k = 0; k < copies; k++) {
            CK(cudaFree(kn[k]));
            CK(cudaFree(vn[k]));
            CK(cudaFree(sl[k]));
        }
        CK(cudaFree(dk));
        CK(cudaFree(dv));
        ac_store_params_free(&p);
        ac_outputs_free(&o);
        ac_tensors_free(&t);
        ac_case_free(&c);
    }
    return fails;
}

static int run_table(int max_reps, const char *only)
{
    int dev = 0;
    cudaDeviceProp prop;
    CK(cudaGetDevice(&dev));
    CK(cudaGetDeviceProperties(&prop, dev));
    printf("DEVICE\t%s\t%d SMs\tL2 %d MB\n", prop.name, prop.multiProcessorCount, tb_l2_bytes() >> 20);
    double rd, cp;
    fprintf(stderr, "floors: read and copy bandwidth\n");
    floors(&rd, &cp);
    printf("FLOOR\tread_gbps\t%.1f\tGB/s\n", rd);
    printf("FLOOR\tcopy_gbps\t%.1f\tGB/s\n", cp);
    fflush(stdout);
    int fails = table_decode(max_reps, only);
    fails += table_combine(max_reps, only);
    fails += table_store(max_reps, only);
    return fails ? 1 : 0;
}

int main(int argc, char **argv)
{
    enum { OPT_CHECK = AC_ARGS_LONG, OPT_BENCH, OPT_QUICK, OPT_PEERS, OPT_FEATURE, OPT_TABLE, OPT_ONLY, OPT_REPS };
    static const struct option opts[] = {
        {"check", no_argument, NULL, OPT_CHECK}, {"bench", no_argument, NULL, OPT_BENCH},
        {"quick", no_argument, NULL, OPT_QUICK}, {"peers", required_argument, NULL, OPT_PEERS},
        {"features", required_argument, NULL, OPT_FEATURE},
        {"table", no_argument, NULL, OPT_TABLE}, {"only", required_argument, NULL, OPT_ONLY},
        {"reps", required_argument, NULL, OPT_REPS},
        {"help", no_argument, NULL, 'h'},        {NULL, 0, NULL, 0}};
    int check = 0, do_bench = 0, quick = 0, table = 0, reps = 30;
    const char *only = NULL;
    std::vector<int> features;
    const char *peers = NULL;
    ac_args a;
    ac_error err;
    ac_args_init(&a, "decode_bench", argc, argv, opts);
    for (int c; (c = ac_args_next(&a, &err)) != AC_ARGS_END;) {
        switch (c) {
        case OPT_CHECK: check = 1; break;
        case OPT_BENCH: do_bench = 1; break;
        case OPT_QUICK: quick = 1; break;
        case OPT_TABLE: table = 1; break;
        case OPT_ONLY: only = optarg; break;
        case OPT_REPS:
            if (ac_arg_int(a.name, optarg, 5, 100000, &reps, &err)) return ac_args_fail(&a, &err);
            break;
        case OPT_PEERS: { /* read only after the checks: a bad path is found now */
            FILE *pf = fopen(optarg, "r");
            if (!pf) return ac_args_failf(&a, "--peers %s: cannot read", optarg);
            fclose(pf);
            peers = optarg;
            break;
        }
        case OPT_FEATURE: { /* a comma list of bench_feature_names */
            for (const char *q = optarg; *q;) {
                size_t n = strcspn(q, ",");
                int f = 0;
                while (f < BF_COUNT && !(strlen(bench_feature_names[f]) == n && !strncmp(q, bench_feature_names[f], n)))
                    f++;
                if (f == BF_COUNT)
                    return ac_args_failf(&a, "--features %s: each must be one of none, window, softcap, alibi, sinks, all, fp8",
                                         optarg);
                features.push_back(f);
                q += n + (q[n] == ',');
            }
            break;
        }
        case 'h':
            printf("usage: decode_bench [--check [--quick]] [--bench [--peers FILE] [--features LIST]] [--table [--reps N] [--only S]]  (none: --check)\n"
                   "  --check         kernels vs the double reference and the CPU models, then end to end\n"
                   "  --quick         a smaller sweep\n"
                   "  --bench         KV-read bandwidth of the decode\n"
                   "  --peers FILE    bench/sdpa_decode_peers.py's output: ratios to SDPA\n"
                   "  --features LIST comma list of none, window, softcap, alibi, sinks, all, fp8: the bench\n"
                   "                  with each in turn (default none; e.g. none,window to compare)\n"
                   "  --table         the benchmark table's decode, combine and store rows and the\n"
                   "                  floors (docs/PERF.md): TSV ROW / FLOOR lines on stdout\n"
                   "  --reps N        with --table: at most N timed calls per row (default 30)\n"
                   "  --only S        with --table: only the rows whose name contains S\n"
                   "  --help          this text\n");
            return 0;
        default: return ac_args_fail(&a, &err); /* AC_ARGS_ERROR: err says what */
        }
    }
    if (optind < argc) return ac_args_failf(&a, "%s: unexpected argument (options only)", argv[optind]);
    if (!check && !do_bench && !table) check = 1;
    if (features.empty()) features.push_back(BF_NONE);
    if (!ac_gpu_available()) {
        printf("no CUDA device: skipped\n");
        return AC_EXIT_SKIP;
    }
    if (check) {
        // Both load paths of the decode kernel (kernels/decode.cu): cp.async (default) and registers.
        for (int v = 0; v < 2; v++) {
            if (v) setenv("AC_DECODE_LOADS", "regs", 1);
            else unsetenv("AC_DECODE_LOADS");
            printf("\n== decode load path: %s\n", v ? "registers" : "cp.async");
            g_with_model = v == 0;
            decode_sweep(quick);
            end_to_end(quick ? 6 : 40, 0);
            if (!quick) end_to_end(8, 1);
            feature_sweep(quick);
            kv_sweep(quick);
        }
        unsetenv("AC_DECODE_LOADS");
        combine_sweep(quick);
        if (!quick) store_sweep();
        store_kv_sweep();
        printf("check: %s\n", g_fail ? "FAILED" : "all passed");
    }
    if (do_bench) bench(peers, features);
    if (table && run_table(reps, only)) g_fail = 1;
    return g_fail ? 1 : 0;
}
