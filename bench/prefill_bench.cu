// Prefill kernel: correctness sweep against its CPU model and the double
// reference, and TFLOP/s.
//
//   prefill_bench --check [--quick]  kernel vs CPU model on a sweep of configs
//                                    (dtype x D x GQA x causal x mask x contiguous /
//                                    paged 16/32/256/7 x ragged lengths); prints the
//                                    worst normalised difference per group; and the
//                                    kernel vs ac_ref64 under the verdict (worst r)
//   prefill_bench --bench [--reps N] TFLOP/s on bf16 D=128: causal BR B=2 H=32 S=8192
//                                    and non-causal B=4 H=32 S=4096 (FLOPs 4*B*H*S*S*D,
//                                    halved for causal); CUDA events after warm-up,
//                                    median; fresh random data each shape
//     [--features LIST]              one row per shape and feature set of LIST (comma
//                                    separated: none, window, softcap, alibi, sinks, all,
//                                    fp8 (an E4M3 cache, per-tensor scales), all+fp8;
//                                    default none), same shapes and data: a feature's
//                                    cost is its row against `none`. With a window the
//                                    FLOPs count the allowed (query, key) pairs only.
//     [--window N]                   the window's left size (default 1024; right 0 when
//                                    causal, N otherwise)
//   prefill_bench --table [--reps N] [--only S]
//                                    the benchmark table's prefill rows (bench/bench_table.h,
//                                    docs/PERF.md "The benchmark table"): bf16/fp16 x D 64/128 x
//                                    causal BR/none x 3 shapes x contiguous/paged 16/256, each
//                                    checked on 64 sampled rows against ac_ref64, then timed
//   The check sweep also runs feature cases (each feature alone and all four) and
//   the K/V storage groups (E4M3 / E5M2 caches with scales, D_v != D_qk, both with
//   the four features), calling the family entries directly for those.
// Exit status: 0 ok, 1 a check failed, 2 usage / CUDA error, AC_EXIT_SKIP (77) no device.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>
#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <algorithm>
#include <vector>

#include "ac_args.h"
#include "ac_backend.h"
#include "ac_backends.h"
#include "ac_index.h"
#include "ac_gen.h"
#include "ac_numfmt.h"
#include "ac_ref.h"
#include "ac_verdict.h"
#include "prefill.h"
#include "bench_table.h"

// --- data: ac_rng (common/ac_gen.h), values uniform in [-1, 1) rounded to the dtype ----

struct Cfg {
    ac_dtype dtype;
    int batch, hq, hkv, d;
    std::vector<int> lq, lk;
    ac_causal causal;
    ac_mask_kind mask;
    int mask_per_head;
    int paged, block_size;
    uint64_t seed;
    // Features (off when zero / empty): window (wl, wr) when window is set.
    int window = 0, wl = -1, wr = -1;
    float softcap = 0.0f;
    std::vector<float> alibi, sinks; // [hq] when on
    // K/V storage (off when zero / empty): D_v (0 = d), FP8 format, scales (1 or hkv).
    int dv = 0;
    ac_kv_format kvf = AC_KV_AS_DTYPE;
    std::vector<float> k_scales, v_scales;
};

static const uint16_t kNanHalf = 0x7fc1; // NaN in bf16 and fp16
static const uint16_t kNanFp8 = 0x007f;  // a NaN code in E4M3 and E5M2

// One K/V element of KV head kvh: uniform in [-1, 1) in the dtype, or with an
// FP8 cache the code of that value under the head's scale (low byte).
static uint16_t kv_value(const Cfg &g, ac_rng *s, int kvh, bool is_v)
{
    const double x = 2 * ac_rng_unit(s) - 1;
    if (g.kvf == AC_KV_AS_DTYPE) return ac_f64_to_half(g.dtype, x);
    const std::vector<float> &sc = is_v ? g.v_scales : g.k_scales;
    const float scale = sc.empty() ? 1.0f : sc[sc.size() == 1 ? 0 : kvh];
    return ac_fp8_quantize(g.kvf, (float)x, scale);
}

// Case + tensors; paged pools are shuffled, unused slots NaN, unused table
// entries garbage (-1 or 2^30).
static int build(const Cfg &g, ac_case *c, ac_tensors *t)
{
    ac_rng s;
    ac_rng_init(&s, g.seed, 0);
    ac_error err;
    ac_case_init(c);
    memset(t, 0, sizeof *t);
    c->dtype = g.dtype;
    if (ac_case_set_batch(c, g.batch, &err)) return -1;
    c->heads_q = g.hq;
    c->heads_kv = g.hkv;
    c->head_dim = g.d;
    c->causal = g.causal;
    c->mask = g.mask;
    c->mask_per_head = g.mask_per_head;
    c->paged = g.paged;
    c->seed = g.seed;
    if (g.window) {
        c->window_left = g.wl;
        c->window_right = g.wr;
    }
    c->softcap = g.softcap;
    c->head_dim_v = g.dv;
    c->kv_format = g.kvf;
    if (ac_case_set_kv_scales(c, g.k_scales.empty() ? NULL : g.k_scales.data(),
                              g.v_scales.empty() ? NULL : g.v_scales.data(), (int32_t)g.k_scales.size(), &err))
        return -1;
    const int dv = g.dv ? g.dv : g.d;
    if (ac_case_set_alibi(c, g.alibi.empty() ? NULL : g.alibi.data(), (int32_t)g.alibi.size(), &err) ||
        ac_case_set_sinks(c, g.sinks.empty() ? NULL : g.sinks.data(), (int32_t)g.sinks.size(), &err))
        return -1;
    for (int b = 0; b < g.batch; b++) {
        c->seqlen_q[b] = g.lq[b];
        c->seqlen_k[b] = g.lk[b];
    }
    t->cu_seqlens_q = (int32_t *)calloc((size_t)g.batch + 1, 4);
    t->cu_seqlens_k = (int32_t *)calloc((size_t)g.batch + 1, 4);
    for (int b = 0; b < g.batch; b++) {
        t->cu_seqlens_q[b + 1] = t->cu_seqlens_q[b] + g.lq[b];
        t->cu_seqlens_k[b + 1] = t->cu_seqlens_k[b] + g.lk[b];
    }
    t->total_q = t->cu_seqlens_q[g.batch];
    t->total_k = t->cu_seqlens_k[g.batch];
    int64_t qn = t->total_q * g.hq * g.d;
    t->q = (uint16_t *)malloc(sizeof(uint16_t) * (size_t)(qn + 1));
    for (int64_t i = 0; i < qn; i++) t->q[i] = ac_f64_to_half(g.dtype, 2 * ac_rng_unit(&s) - 1);
    int64_t row = (int64_t)g.hkv * g.d, vrow = (int64_t)g.hkv * dv;
    if (!g.paged) {
        t->kv_elems = t->total_k * row;
        t->v_elems = t->total_k * vrow;
        t->k = (uint16_t *)malloc(sizeof(uint16_t) * (size_t)(t->kv_elems + 1));
        t->v = (uint16_t *)malloc(sizeof(uint16_t) * (size_t)(t->v_elems + 1));
        for (int64_t i = 0; i < t->kv_elems || i < t->v_elems; i++) { // k and v in turn, as before D_v
            if (i < t->kv_elems) t->k[i] = kv_value(g, &s, (int)(i / g.d % g.hkv), false);
            if (i < t->v_elems) t->v[i] = kv_value(g, &s, (int)(i / dv % g.hkv), true);
        }
    } else {
        int bs = g.block_size, used = 0, maxb = 1;
        for (int b = 0; b < g.batch; b++) {
            int u = ac_blocks_used(g.lk[b], bs);
            used += u;
            maxb = std::max(maxb, u + 1);
        }
        c->block_size = bs;
        c->num_blocks = used + 3;
        if (ac_case_alloc_table(c, maxb, &err)) return -1;
        std::vector<int> perm(c->num_blocks);
        for (int i = 0; i < c->num_blocks; i++) perm[i] = i;
        for (int i = c->num_blocks - 1; i > 0; i--) std::swap(perm[i], perm[(int)ac_rng_below(&s, (uint64_t)(i + 1))]);
        t->kv_elems = (int64_t)c->num_blocks * bs * row;
        t->v_elems = (int64_t)c->num_blocks * bs * vrow;
        t->k = (uint16_t *)malloc(sizeof(uint16_t) * (size_t)t->kv_elems);
        t->v = (uint16_t *)malloc(sizeof(uint16_t) * (size_t)t->v_elems);
        const uint16_t nan_elem = g.kvf == AC_KV_AS_DTYPE ? kNanHalf : kNanFp8;
        std::fill(t->k, t->k + t->kv_elems, nan_elem);
        std::fill(t->v, t->v + t->v_elems, nan_elem);
        int next = 0;
        for (int b = 0; b < g.batch; b++) {
            int32_t *tr = c->block_table + (int64_t)b * maxb;
            int u = ac_blocks_used(g.lk[b], bs);
            for (int i = 0; i < maxb; i++) tr[i] = i < u ? perm[next++] : (i % 2 ? -1 : 1 << 30);
            for (int p = 0; p < g.lk[b]; p++)
                for (int64_t x = 0; x < row || x < vrow; x++) {
                    const int64_t slot = ac_pos_slot(tr, p, bs);
                    if (x < row) t->k[slot * row + x] = kv_value(g, &s, (int)(x / g.d), false);
                    if (x < vrow) t->v[slot * vrow + x] = kv_value(g, &s, (int)(x / dv), true);
                }
        }
    }
    if (g.mask != AC_MASK_NONE) {
        int hm = g.mask_per_head ? g.hq : 1;
        t->mask_off = (int64_t *)calloc((size_t)g.batch + 1, sizeof(int64_t));
        for (int b = 0; b < g.batch; b++) t->mask_off[b + 1] = t->mask_off[b] + (int64_t)hm * g.lq[b] * g.lk[b];
        int64_t n = t->mask_off[g.batch];
        if (g.mask == AC_MASK_BOOL) {
            t->mask_bool = (uint8_t *)malloc((size_t)n + 1);
            for (int64_t i = 0; i < n; i++) t->mask_bool[i] = ac_rng_unit(&s) < 0.75;
        } else {
            t->mask_bias = (float *)malloc(sizeof(float) * (size_t)(n + 1));
            for (int64_t i = 0; i < n; i++)
                t->mask_bias[i] = ac_rng_unit(&s) < 0.25 ? -INFINITY : (float)(4 * ac_rng_unit(&s) - 2);
        }
    }
    return 0;
}

// --- check: kernel vs CPU model -------------------------------------------------------
struct Group {
    char name[64];
    int cases;
    double worst_norm;    // max |O_gpu - O_model| / max |O_model|
    double worst_lse;     // max |LSE_gpu - LSE_model| over non-empty rows
    double exact_frac;    // fraction of O elements bit-identical (min over cases)
    long empty_rows, empty_bad, nan_bad;
    double worst_r;       // the verdict's worst r (output or LSE), kernel vs ac_ref64
};

static int run_check(bool quick)
{
    static const int dims[] = {64, 128, 256, 96, 80};
    static const int heads[][2] = {{4, 4}, {8, 2}, {4, 1}, {6, 3}};
    static const int blocks[] = {0, 16, 32, 256, 7};
    static const char *layout_names[] = {"contig", "paged16", "paged32", "paged256", "paged7"};
    struct Lens { std::vector<int> lq, lk; };
    const Lens lens[] = {
        {{1, 300, 129, 64}, {513, 250, 129, 64}}, // Lq=1 decode-like, ragged, tile edges
        {{200, 5}, {50, 0}},                       // Lq > Lk (BR: empty leading rows), Lk = 0
        {{257}, {257}},
        {{64, 128, 1}, {64, 200, 7}},
    };
    std::vector<Group> groups;
    int ncases = 0, fails = 0;
    // fi = 0: no feature (the original sweep); 1..5: window, softcap, ALiBi,
    // sinks, all four, on a thinner sweep (D 64/128/256, both dtypes, contiguous
    // and paged 16/7, every causal mode across the layouts); 6..8: the K/V
    // storage on the same thin sweep: an E4M3 cache with per-head scales, an
    // E5M2 cache with per-tensor scales, D_v != D_qk (64/128, 128/64, 192/128),
    // and 9: E4M3 with D_v != D_qk and the four features.
    static const char *feat_names[] = {"", "window", "softcap", "alibi", "sinks", "all", "e4m3", "e5m2", "dv",
                                       "e4m3+dv+all"};
    for (int fi = 0; fi < 10; fi++)
    for (int dt = 0; dt < 2; dt++)
        for (int di = 0; di < 5; di++)
            for (int li = 0; li < 5; li++)
                for (int ci = 0; ci < 3; ci++) {
                    if (quick && (di > 1 || ci != 2 || li > 2)) continue;
                    if (!quick && di >= 3 && ci != (li % 3)) continue; // fewer odd dims
                    if (fi > 0 && (di >= 3 || (li != 0 && li != 1 && li != 4) || ci != (li + di) % 3)) continue;
                    Cfg g;
                    g.dtype = (ac_dtype)dt;
                    g.d = dims[di];
                    int n = ncases;
                    g.hq = heads[n % 4][0];
                    g.hkv = heads[n % 4][1];
                    g.causal = (ac_causal)ci;
                    g.mask = (ac_mask_kind)((n / 3) % 3);
                    g.mask_per_head = (n / 2) % 2;
                    g.paged = li > 0;
                    g.block_size = blocks[li];
                    const Lens &L = lens[(n + li) % 4];
                    g.lq = L.lq;
                    g.lk = L.lk;
                    g.batch = (int)L.lq.size();
                    g.seed = 4242 + (uint64_t)n;
                    if (fi == 6 || fi == 9) {
                        g.kvf = AC_KV_E4M3;
                        for (int h = 0; h < g.hkv; h++) {
                            g.k_scales.push_back(exp2f((float)(h % 3) - 1.0f) * 0.75f);
                            g.v_scales.push_back(exp2f(1.0f - (float)(h % 4)) * 1.25f);
                        }
                    }
                    if (fi == 7) {
                        g.kvf = AC_KV_E5M2;
                        g.k_scales.push_back(0.375f);
                        g.v_scales.push_back(3.0f);
                    }
                    if (fi >= 8) { // D_qk/D_v: 64/128, 128/64, 192/128
                        static const int dqk[] = {64, 128, 192}, dvs[] = {128, 64, 128};
                        g.d = dqk[di];
                        g.dv = dvs[di];
                    }
                    if (fi == 1 || fi == 5 || fi == 9) { // edges on and off the 64-key tiles, by case
                        g.window = 1;
                        g.wl = n % 2 ? 64 : 37;
                        g.wr = ci == AC_CAUSAL_NONE ? 100 : 0;
                    }
                    if (fi == 2 || fi == 5 || fi == 9) g.softcap = n % 2 ? 2.0f : 0.5f;
                    if (fi == 3 || fi == 5 || fi == 9)
                        for (int h = 0; h < g.hq; h++) g.alibi.push_back(exp2f(-8.0f * (h + 1) / g.hq));
                    if (fi == 4 || fi == 5 || fi == 9)
                        for (int h = 0; h < g.hq; h++) g.sinks.push_back(h % 3 == 1 ? -INFINITY : 0.5f * h);
                    ncases++;

                    ac_case c;
                    ac_tensors t;
                    if (build(g, &c, &t)) { fprintf(stderr, "build failed\n"); return 2; }
                    ac_outputs om = {}, og = {};
                    ac_error err;
                    ac_run_opts opts = {AC_BUG_NONE, 0};
                    char line[256];
                    ac_case_line(&c, line, sizeof line);
                    // The K/V groups call the family's entries themselves: the
                    // backend tables may not declare those features yet.
                    const bool kv = fi >= 6;
                    if (kv && (ac_outputs_alloc(&c, &om, &err) || ac_outputs_alloc(&c, &og, &err))) {
                        fprintf(stderr, "outputs: %s: %s\n", line, err.msg);
                        return 2;
                    }
                    if (kv ? ac_model_prefill(&c, &t, &opts, &om, &err)
                           : ac_backend_run(AC_BACKEND_MODEL, &c, &t, &opts, &om, &err)) {
                        fprintf(stderr, "model: %s: %s\n", line, err.msg);
                        return 2;
                    }
                    if (kv ? ac_gpu_prefill(&c, &t, &opts, &og, &err)
                           : ac_backend_run(AC_BACKEND_GPU, &c, &t, &opts, &og, &err)) {
                        fprintf(stderr, "gpu: %s: %s\n", line, err.msg);
                        return err.code == AC_ERR_NO_DEVICE ? AC_EXIT_SKIP : AC_EXIT_USAGE;
                    }
                    char gname[64];
                    if (g.dv)
                        snprintf(gname, sizeof gname, "%s D=%d/%d %-8s %s", ac_dtype_name(g.dtype), g.d, g.dv,
                                 layout_names[li], feat_names[fi]);
                    else
                        snprintf(gname, sizeof gname, "%s D=%-3d %-8s %s", ac_dtype_name(g.dtype), g.d,
                                 layout_names[li], feat_names[fi]);
                    Group *gr = nullptr;
                    for (auto &x : groups)
                        if (!strcmp(x.name, gname)) gr = &x;
                    if (!gr) {
                        groups.push_back(Group());
                        gr = &groups.back();
                        memset(gr, 0, sizeof *gr);
                        snprintf(gr->name, sizeof gr->name, "%s", gname);
                        gr->exact_frac = 1.0;
                    }
                    gr->cases++;
                    // The one bound (docs/VERDICT.md): the kernel against the
                    // double reference.
                    ac_oracle_result ref;
                    ac_verdict v;
                    if (ac_ref64(&c, &t, 0, &ref, &err) ||
                        ac_verdict_judge(&c, &t, &ref, &og, NULL, NULL, &v, NULL, &err)) {
                        fprintf(stderr, "reference: %s: %s\n", line, err.msg);
                        return 2;
                    }
                    ac_oracle_result_free(&ref);
                    gr->worst_r = std::max(gr->worst_r, std::max(v.r_max, v.r_lse_max));
                    const int64_t rows = t.total_q * g.hq;
                    const int dv = ac_case_dv(&c); // O's columns
                    double maxd = 0, maxr = 0, maxl = 0;
                    int64_t exact = 0, total = 0;
                    long ebad = 0, nbad = 0, erows = 0;
                    for (int64_t r = 0; r < rows; r++) {
                        // Empty: the model wrote O = 0 and LSE = -inf, or the head's sink.
                        const float sink_h = g.sinks.empty() ? -INFINITY : g.sinks[r % g.hq];
                        bool empty = om.lse[r] == -INFINITY;
                        if (!empty && om.lse[r] == sink_h) {
                            empty = true;
                            for (int d = 0; d < dv && empty; d++) empty = om.o[r * dv + d] == 0;
                        }
                        if (isnan(og.lse[r])) nbad++;
                        if (empty) {
                            erows++;
                            if (og.lse[r] != om.lse[r]) ebad++;
                        } else {
                            maxl = std::max(maxl, (double)fabsf(og.lse[r] - om.lse[r]));
                        }
                        for (int d = 0; d < dv; d++) {
                            const uint16_t a = og.o[r * dv + d], b = om.o[r * dv + d];
                            const float fa = ac_half_to_f32(g.dtype, a), fb = ac_half_to_f32(g.dtype, b);
                            if (isnan(fa)) nbad++;
                            if (empty && a != 0) ebad++;
                            maxd = std::max(maxd, (double)fabsf(fa - fb));
                            maxr = std::max(maxr, (double)fabsf(fb));
                            exact += a == b;
                            total++;
                        }
                    }
                    const double norm = maxd / (maxr + 1e-30);
                    // Kernel and model differ only by ex2.approx vs exp2f and the tensor
                    // cores' internal summation order: a P or an output element may land
                    // on the other side of a rounding boundary, i.e. a few u_in (bf16
                    // 2^-8, fp16 2^-11) relative to max|O|. 4 u_in is the pass line.
                    const double limit = 4 * ac_unit_roundoff(g.dtype);
                    const bool bad = !(norm <= limit) || !(maxl <= 1e-4) || ebad || nbad || !v.pass;
                    if (bad) {
                        fails++;
                        printf("FAIL %s: norm %.3g (limit %.3g) lse %.3g empty-bad %ld nan %ld verdict %s\n", line, norm,
                               limit, maxl, ebad, nbad, v.summary);
                    }
                    gr->worst_norm = std::max(gr->worst_norm, norm);
                    gr->worst_lse = std::max(gr->worst_lse, maxl);
                    gr->exact_frac = std::min(gr->exact_frac, total ? (double)exact / total : 1.0);
                    gr->empty_rows += erows;
                    gr->empty_bad += ebad;
                    gr->nan_bad += nbad;
                    ac_outputs_free(&om);
                    ac_outputs_free(&og);
                    ac_tensors_free(&t);
                    ac_case_free(&c);
                }
    printf("\n%-34s %5s %12s %12s %9s %10s %9s %6s %9s\n", "group", "cases", "worst norm", "worst |dLSE|",
           "min exact", "empty rows", "empty bad", "NaN", "verdict r");
    for (auto &x : groups)
        printf("%-34s %5d %12.3e %12.3e %9.4f %10ld %9ld %6ld %9.3g\n", x.name, x.cases, x.worst_norm, x.worst_lse,
               x.exact_frac, x.empty_rows, x.empty_bad, x.nan_bad, x.worst_r);
    printf("check: %d cases, %d failed\n", ncases, fails);
    return fails ? 1 : 0;
}

// --- bench -----------------------------------------------------------------------------
// Element i of a random stream: uniform in [-1, 1) (SplitMix64 of seed + i).
__device__ __forceinline__ float unit_random(uint64_t seed, int64_t i)
{
    return tb_unit(seed + (uint64_t)i * 0x9e3779b97f4a7c15ull);
}

// FP8 E4M3 codes of uniform [-1, 1) values (finite: no NaN code).
__global__ void fill_random_e4m3(uint8_t *x, int64_t n, uint64_t seed)
{
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        x[i] = (uint8_t)__nv_cvt_float_to_fp8(unit_random(seed, i), __NV_SATFINITE, __NV_E4M3);
}

__global__ void fill_random(uint16_t *x, int64_t n, uint64_t seed, int is_bf16)
{
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        x[i] = tb_half_bits(unit_random(seed, i), is_bf16);
}

#define CK(call)                                                                               \
    do {                                                                                       \
        cudaError_t e_ = (call);                                                               \
        if (e_ != cudaSuccess) {                                                               \
            fprintf(stderr, "%s:%d %s: %s\n", __FILE__, __LINE__, #call, cudaGetErrorString(e_)); \
            return -1.0;                                                                       \
        }                                                                                      \
    } while (0)

// The launch parameters --bench and --table share: B sequences, T query
// tokens in all (cumulative lengths h_cu / d_cu), Hq = Hkv = H heads of D,
// Lk = Lq: contiguous K/V (bs 0), or a pool of num_blocks blocks of bs keys
// through the block table (host and device copies of the table and of
// seqlens_k). The data pointers are the caller's.
static ac_prefill_params bench_params(ac_dtype dt, int B, int H, int D, int64_t T, ac_causal causal,
                                      const int32_t *h_cu, const int32_t *d_cu, int bs, int num_blocks,
                                      int max_blocks, const int32_t *h_tab, const int32_t *d_tab,
                                      const int32_t *h_sk, const int32_t *d_sk)
{
    ac_prefill_params p;
    memset(&p, 0, sizeof p);
    p.dtype = dt;
    p.batch = B;
    p.heads_q = p.heads_kv = H;
    p.head_dim = D;
    p.total_q = T;
    p.d_cu_seqlens_q = d_cu;
    p.h_cu_seqlens_q = h_cu;
    p.causal = causal;
    if (!bs) {
        p.d_cu_seqlens_k = d_cu;
        p.h_cu_seqlens_k = h_cu;
        p.total_k = T;
    } else {
        p.paged = 1;
        p.block_size = bs;
        p.num_blocks = num_blocks;
        p.max_blocks_per_seq = max_blocks;
        p.h_block_table = h_tab;
        p.h_seqlens_k = h_sk;
        p.d_block_table = d_tab;
        p.d_seqlens_k = d_sk;
    }
    return p;
}

// Median time (ms) of `reps` runs of one shape; bf16, D=128, Hq=Hkv=H.
static double bench_shape(int B, int H, int S, int D, ac_causal causal, int paged, int block_size, uint32_t feat,
                          int window, int reps, uint64_t seed)
{
    const int64_t rows = (int64_t)B * S, elems = rows * H * D;
    uint16_t *q, *k, *v, *o;
    float *lse;
    int32_t *cu, *tab = nullptr, *sk = nullptr;
    CK(cudaMalloc(&q, elems * 2));
    CK(cudaMalloc(&k, elems * 2));
    CK(cudaMalloc(&v, elems * 2));
    CK(cudaMalloc(&o, elems * 2));
    CK(cudaMalloc(&lse, rows * H * 4));
    fill_random<<<1024, 256>>>(q, elems, seed * 3 + 1, 1);
    if (feat & AC_FEAT_FP8_KV) { // E4M3 codes in the first `elems` bytes of k and v
        fill_random_e4m3<<<1024, 256>>>((uint8_t *)k, elems, seed * 3 + 2);
        fill_random_e4m3<<<1024, 256>>>((uint8_t *)v, elems, seed * 3 + 3);
    } else {
        fill_random<<<1024, 256>>>(k, elems, seed * 3 + 2, 1);
        fill_random<<<1024, 256>>>(v, elems, seed * 3 + 3, 1);
    }
    CK(cudaGetLastError());
    std::vector<int32_t> h_cu(B + 1), h_sk(B), h_tab;
    for (int b = 0; b <= B; b++) h_cu[b] = b * S;
    for (int b = 0; b < B; b++) h_sk[b] = S;
    CK(cudaMalloc(&cu, (B + 1) * 4));
    CK(cudaMemcpy(cu, h_cu.data(), (B + 1) * 4, cudaMemcpyHostToDevice));
    const int per = paged ? S / block_size : 0;
    if (paged) { // the same K/V viewed as a pool of blocks, table in order (block b*S/bs + i)
        h_tab.resize((size_t)B * per);
        for (int b = 0; b < B; b++)
            for (int i = 0; i < per; i++) h_tab[(size_t)b * per + i] = b * per + i;
        CK(cudaMalloc(&tab, h_tab.size() * 4));
        CK(cudaMalloc(&sk, B * 4));
        CK(cudaMemcpy(tab, h_tab.data(), h_tab.size() * 4, cudaMemcpyHostToDevice));
        CK(cudaMemcpy(sk, h_sk.data(), B * 4, cudaMemcpyHostToDevice));
    }
    ac_prefill_params p = bench_params(AC_BF16, B, H, D, rows, causal, h_cu.data(), cu, paged ? block_size : 0,
                                       B * per, per, h_tab.data(), tab, h_sk.data(), sk);
    p.q = q;
    p.k = k;
    p.v = v;
    p.out = o;
    p.lse = lse;
    // Features: a window of `window` keys to the left (right 0 when causal),
    // softcap 30, ALiBi's geometric slopes 2^(-8(h+1)/H), sinks 0.5.
    std::vector<float> h_slopes(H), h_sinks(H, 0.5f);
    float *d_slopes = nullptr, *d_sinks = nullptr;
    for (int h = 0; h < H; h++) h_slopes[h] = exp2f(-8.0f * (h + 1) / H);
    if (feat & AC_FEAT_WINDOW) {
        p.has_window = 1;
        p.window_left = window;
        p.window_right = causal != AC_CAUSAL_NONE ? 0 : window;
    }
    if (feat & AC_FEAT_SOFTCAP) p.softcap = 30.0f;
    if (feat & AC_FEAT_ALIBI) {
        CK(cudaMalloc(&d_slopes, H * 4));
        CK(cudaMemcpy(d_slopes, h_slopes.data(), H * 4, cudaMemcpyHostToDevice));
        p.h_alibi_slopes = h_slopes.data();
        p.d_alibi_slopes = d_slopes;
    }
    if (feat & AC_FEAT_SINKS) {
        CK(cudaMalloc(&d_sinks, H * 4));
        CK(cudaMemcpy(d_sinks, h_sinks.data(), H * 4, cudaMemcpyHostToDevice));
        p.h_sinks = h_sinks.data();
        p.d_sinks = d_sinks;
    }
    // FP8: an E4M3 cache with per-tensor scales k 0.5, v 2 (k_scales then v_scales).
    static const float h_kv_scales[2] = {0.5f, 2.0f};
    float *d_kv_scales = nullptr;
    if (feat & AC_FEAT_FP8_KV) {
        CK(cudaMalloc(&d_kv_scales, sizeof h_kv_scales));
        CK(cudaMemcpy(d_kv_scales, h_kv_scales, sizeof h_kv_scales, cudaMemcpyHostToDevice));
        p.kv_format = AC_KV_E4M3;
        p.n_kv_scales = 1;
        p.h_k_scales = h_kv_scales;
        p.h_v_scales = h_kv_scales + 1;
        p.d_k_scales = d_kv_scales;
        p.d_v_scales = d_kv_scales + 1;
    }
    ac_error err;
    cudaEvent_t e0, e1;
    CK(cudaEventCreate(&e0));
    CK(cudaEventCreate(&e1));
    std::vector<float> ms;
    for (int i = 0; i < reps + 3; i++) { // 3 warm-up runs
        CK(cudaEventRecord(e0));
        if (ac_prefill_launch(&p, nullptr, &err)) {
            fprintf(stderr, "ac_prefill_launch: %s\n", err.msg);
            return -1.0;
        }
        CK(cudaEventRecord(e1));
        CK(cudaEventSynchronize(e1));
        float t;
        CK(cudaEventElapsedTime(&t, e0, e1));
        if (i >= 3) ms.push_back(t);
    }
    CK(cudaGetLastError());
    // Sanity: the output is finite (no silent NaN from a broken kernel).
    std::vector<uint16_t> h_o(std::min<int64_t>(elems, 1 << 20));
    CK(cudaMemcpy(h_o.data(), o, h_o.size() * 2, cudaMemcpyDeviceToHost));
    for (auto x : h_o)
        if (ac_half_isnan(AC_BF16, x)) {
            fprintf(stderr, "NaN in the benchmark output\n");
            return -1.0;
        }
    std::sort(ms.begin(), ms.end());
    cudaFree(q); cudaFree(k); cudaFree(v); cudaFree(o); cudaFree(lse); cudaFree(cu);
    if (tab) cudaFree(tab);
    if (sk) cudaFree(sk);
    if (d_slopes) cudaFree(d_slopes);
    if (d_sinks) cudaFree(d_sinks);
    if (d_kv_scales) cudaFree(d_kv_scales);
    cudaEventDestroy(e0);
    cudaEventDestroy(e1);
    return ms[ms.size() / 2];
}

// Allowed (query, key) pairs of one sequence of S queries and S keys: the
// work a kernel that skips what the causal mode and the window exclude does.
static double allowed_pairs(int S, ac_causal causal, int wl, int wr)
{
    double n = 0;
    for (int i = 0; i < S; i++) {
        int32_t b, e;
        ac_key_range(causal, wl, wr, i, S, S, &b, &e);
        n += e - b;
    }
    return n;
}

static int run_bench(int reps, uint32_t const *feats, int nfeats, int window)
{
    struct Shape { const char *name; int B, H, S; ac_causal causal; int paged, bs; };
    const Shape shapes[] = {
        {"causal BR B=2 H=32 S=8192", 2, 32, 8192, AC_CAUSAL_BOTTOM_RIGHT, 0, 0},
        {"non-causal B=4 H=32 S=4096", 4, 32, 4096, AC_CAUSAL_NONE, 0, 0},
        {"causal BR paged bs=256 B=2 H=32 S=8192", 2, 32, 8192, AC_CAUSAL_BOTTOM_RIGHT, 1, 256},
        {"causal BR paged bs=16 B=2 H=32 S=8192", 2, 32, 8192, AC_CAUSAL_BOTTOM_RIGHT, 1, 16},
    };
    const int D = 128;
    printf("%-40s %-22s %10s %10s\n", "shape (bf16, D=128)", "features", "median ms", "TFLOP/s");
    int i = 0;
    for (const Shape &s : shapes) {
        for (int f = 0; f < nfeats; f++) {
            double ms = bench_shape(s.B, s.H, s.S, D, s.causal, s.paged, s.bs, feats[f], window, reps, 1234 + i);
            if (ms < 0) return 2;
            double flops = 4.0 * s.B * s.H * (double)s.S * s.S * D * (s.causal != AC_CAUSAL_NONE ? 0.5 : 1.0);
            if (feats[f] & AC_FEAT_WINDOW)
                flops = 4.0 * s.B * s.H * D *
                        allowed_pairs(s.S, s.causal, window, s.causal != AC_CAUSAL_NONE ? 0 : window);
            char names[64];
            printf("%-40s %-22s %10.3f %10.1f\n", s.name, ac_feature_names(feats[f], names, sizeof names), ms,
                   flops / (ms * 1e-3) / 1e12);
        }
        i++;
    }
    return 0;
}

// --- the table (docs/PERF.md, "The benchmark table") ------------------------------------
// Scatter contiguous K or V rows [total_k, Hkv, D] into a paged pool through the table.
__global__ void scatter_to_pool(const uint16_t *src, uint16_t *pool, const int32_t *tok_block, int64_t total_k,
                                int32_t bs, int64_t row)
{
    // tok_block[t]: the pool slot of token t (block * bs + offset).
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total_k * row;
         i += (int64_t)gridDim.x * blockDim.x)
        pool[(int64_t)tok_block[i / row] * row + i % row] = src[i];
}

// Every configuration of the issue's prefill list: bf16/fp16 x D 64/128 x causal
// bottom-right/none x (B=2 H=32 S=8192, B=16 H=32 S=1024, a varlen batch of 16) x
// contiguous / paged 16 / paged 256 K/V (random block permutation). Each is first
// checked on 64 sampled rows (tb_check_rows), then timed (tb_time) on rotated copies.
static int run_table(int max_reps, const char *only)
{
    struct TShape { const char *name; int H; std::vector<int> lens; };
    // The varlen batch: 16 sequences, 64..4096 keys, odd lengths on and off the tiles (16201 tokens).
    const std::vector<int> mixed = {64, 4096, 256, 1024, 128, 2048, 512, 3000, 96, 1536, 768, 200, 1100, 640, 333, 400};
    const TShape shapes[] = {
        {"B=2 H=32 S=8192", 32, std::vector<int>(2, 8192)},
        {"B=16 H=32 S=1024", 32, std::vector<int>(16, 1024)},
        {"varlen16 H=32 T=16201", 32, mixed},
    };
    const ac_dtype dts[] = {AC_BF16, AC_FP16};
    const int dims[] = {64, 128};
    const ac_causal causals[] = {AC_CAUSAL_BOTTOM_RIGHT, AC_CAUSAL_NONE};
    const int layouts[] = {0, 16, 256};
    const int l2 = tb_l2_bytes();
    const int total = 3 * 2 * 2 * 2 * 3;
    int idx = 0, fails = 0;
    for (const TShape &sh : shapes)
        for (ac_dtype dt : dts)
            for (int D : dims) {
                const int B = (int)sh.lens.size(), H = sh.H;
                std::vector<int32_t> cu(B + 1, 0), sk(B);
                for (int b = 0; b < B; b++) {
                    cu[b + 1] = cu[b] + sh.lens[b];
                    sk[b] = sh.lens[b];
                }
                const int64_t T = cu[B], elems = T * H * D;
                const double copy_bytes = 3.0 * elems * 2;
                const int copies = tb_copies(copy_bytes, l2, 8);
                // Skip the whole group when a filter excludes all its rows.
                char gname[96];
                snprintf(gname, sizeof gname, "prefill %s D=%d %s", ac_dtype_name(dt), D, sh.name);
                if (only && !strstr(gname, only)) {
                    idx += 6;
                    continue;
                }
                std::vector<uint16_t *> qs(copies), ks(copies), vs(copies);
                uint16_t *o = nullptr;
                float *lse = nullptr;
                int32_t *dcu = nullptr, *dsk = nullptr;
                bool okc = true;
                for (int c = 0; c < copies && okc; c++) {
                    okc = cudaMalloc(&qs[c], elems * 2) == cudaSuccess && cudaMalloc(&ks[c], elems * 2) == cudaSuccess &&
                          cudaMalloc(&vs[c], elems * 2) == cudaSuccess &&
                          tb_fill_random(qs[c], elems, 100 + 3 * c, dt) && tb_fill_random(ks[c], elems, 101 + 3 * c, dt) &&
                          tb_fill_random(vs[c], elems, 102 + 3 * c, dt);
                }
                okc = okc && cudaMalloc(&o, elems * 2) == cudaSuccess && cudaMalloc(&lse, T * H * 4) == cudaSuccess &&
                      cudaMalloc(&dcu, (B + 1) * 4) == cudaSuccess && cudaMalloc(&dsk, B * 4) == cudaSuccess &&
                      cudaMemcpy(dcu, cu.data(), (B + 1) * 4, cudaMemcpyHostToDevice) == cudaSuccess &&
                      cudaMemcpy(dsk, sk.data(), B * 4, cudaMemcpyHostToDevice) == cudaSuccess;
                if (!okc) {
                    fprintf(stderr, "table: allocating %s: %s\n", gname, cudaGetErrorString(cudaGetLastError()));
                    return 2;
                }
                for (ac_causal causal : causals)
                    for (int bs : layouts) {
                        idx++;
                        const char *cname = causal == AC_CAUSAL_NONE ? "none" : "br";
                        char lname[16];
                        snprintf(lname, sizeof lname, bs ? "paged%d" : "contig", bs);
                        fprintf(stderr, "[%d/%d] prefill %s D=%d causal=%s %s %s\n", idx, total, ac_dtype_name(dt), D,
                                cname, lname, sh.name);
                        // Paged: a random permutation of the used blocks (plus 3 spare), the
                        // pool NaN where no key is (a read past a sequence's keys shows).
                        std::vector<int32_t> tab, tok_slot;
                        std::vector<uint16_t *> kp(copies, nullptr), vp(copies, nullptr);
                        int32_t *dtab = nullptr, *dtok = nullptr;
                        int maxb = 0, nblocks = 0;
                        if (bs) {
                            for (int b = 0; b < B; b++) {
                                const int u = (sh.lens[b] + bs - 1) / bs;
                                maxb = std::max(maxb, u);
                                nblocks += u;
                            }
                            nblocks += 3;
                            std::vector<int32_t> perm(nblocks);
                            ac_rng rng;
                            ac_rng_init(&rng, 77 + (uint64_t)idx, 0);
                            for (int i = 0; i < nblocks; i++) perm[i] = i;
                            for (int i = nblocks - 1; i > 0; i--)
                                std::swap(perm[i], perm[(int)ac_rng_below(&rng, (uint64_t)(i + 1))]);
                            tab.assign((size_t)B * maxb, -1);
                            tok_slot.resize(T);
                            int next = 0;
                            for (int b = 0; b < B; b++) {
                                const int u = (sh.lens[b] + bs - 1) / bs;
                                for (int i = 0; i < u; i++) tab[(size_t)b * maxb + i] = perm[next++];
                                for (int pos = 0; pos < sh.lens[b]; pos++)
                                    tok_slot[cu[b] + pos] = tab[(size_t)b * maxb + pos / bs] * bs + pos % bs;
                            }
                            const int64_t pool = (int64_t)nblocks * bs * H * D;
                            okc = cudaMalloc(&dtab, tab.size() * 4) == cudaSuccess &&
                                  cudaMalloc(&dtok, T * 4) == cudaSuccess &&
                                  cudaMemcpy(dtab, tab.data(), tab.size() * 4, cudaMemcpyHostToDevice) == cudaSuccess &&
                                  cudaMemcpy(dtok, tok_slot.data(), T * 4, cudaMemcpyHostToDevice) == cudaSuccess;
                            for (int c = 0; c < copies && okc; c++) {
                                okc = cudaMalloc(&kp[c], pool * 2) == cudaSuccess && cudaMalloc(&vp[c], pool * 2) == cudaSuccess &&
                                      cudaMemset(kp[c], 0xff, pool * 2) == cudaSuccess &&
                                      cudaMemset(vp[c], 0xff, pool * 2) == cudaSuccess;
                                if (okc) {
                                    scatter_to_pool<<<2048, 256>>>(ks[c], kp[c], dtok, T, bs, (int64_t)H * D);
                                    scatter_to_pool<<<2048, 256>>>(vs[c], vp[c], dtok, T, bs, (int64_t)H * D);
                                    okc = cudaGetLastError() == cudaSuccess;
                                }
                            }
                            if (!okc) {
                                fprintf(stderr, "table: paged pools: %s\n", cudaGetErrorString(cudaGetLastError()));
                                return 2;
                            }
                        }
                        ac_prefill_params p = bench_params(dt, B, H, D, T, causal, cu.data(), dcu, bs, nblocks, maxb,
                                                           tab.data(), dtab, sk.data(), dsk);
                        p.out = o;
                        p.lse = lse;
                        ac_error err = {};
                        auto launch = [&](int i) {
                            const int c = i % copies;
                            p.q = qs[c];
                            p.k = bs ? kp[c] : ks[c];
                            p.v = bs ? vp[c] : vs[c];
                            if (ac_prefill_launch(&p, nullptr, &err)) {
                                fprintf(stderr, "ac_prefill_launch: %s\n", err.msg);
                                return false;
                            }
                            return true;
                        };
                        double pairs = 0;
                        for (int b = 0; b < B; b++) pairs += allowed_pairs(sh.lens[b], causal, -1, -1);
                        const double flops = 4.0 * H * D * pairs;
                        // The check: 64 rows, the last and first row of each sequence, then rows at random.
                        double worst = 0;
                        char why[512] = "";
                        bool pass = cudaMemset(o, 0xff, elems * 2) == cudaSuccess && launch(0) &&
                                    cudaDeviceSynchronize() == cudaSuccess;
                        if (pass) {
                            std::vector<tb_row> rows;
                            ac_rng rng;
                            ac_rng_init(&rng, 4040 + (uint64_t)idx, 0);
                            for (int k = 0; k < 64; k++) {
                                const int b = k % B, h = (k * 13 + 5) % H, sel = k / B, L = sh.lens[b];
                                const int i = sel == 0 ? L - 1 : sel == 1 ? 0 : (int)ac_rng_below(&rng, (uint64_t)L);
                                int32_t k0, k1;
                                ac_key_range(causal, -1, -1, i, L, L, &k0, &k1);
                                tb_row r;
                                r.qo_elem = ((int64_t)(cu[b] + i) * H + h) * D;
                                r.lse_index = (int64_t)(cu[b] + i) * H + h;
                                r.d_table = bs ? dtab + (size_t)b * maxb : nullptr;
                                r.base = cu[b];
                                r.kvh = h;
                                r.k0 = k0;
                                r.k1 = k1;
                                rows.push_back(r);
                            }
                            pass = tb_check_rows(dt, D, H, bs, qs[0], bs ? kp[0] : ks[0], bs ? vp[0] : vs[0],
                                                 (const uint16_t *)o, lse, rows, &worst, why, sizeof why);
                        } else
                            snprintf(why, sizeof why, "launch: %s", cudaGetErrorString(cudaGetLastError()));
                        double ms = -1, host_ms = -1;
                        int reps = 0;
                        if (pass) {
                            ms = tb_time(launch, 3, 5, max_reps, 150.0, &reps, &host_ms);
                            if (ms < 0) {
                                pass = false;
                                snprintf(why, sizeof why, "timing: %s", cudaGetErrorString(cudaGetLastError()));
                            }
                        }
                        if (!pass) {
                            fails++;
                            fprintf(stderr, "FAIL prefill %s D=%d causal=%s %s %s: %s\n", ac_dtype_name(dt), D, cname,
                                    lname, sh.name, why);
                        }
                        tb_row_line("prefill", ac_dtype_name(dt), D, cname, lname, sh.name, pass, ms, flops, "flop",
                                    worst, reps, copies, host_ms);
                        for (int c = 0; c < copies; c++) {
                            if (kp[c]) cudaFree(kp[c]);
                            if (vp[c]) cudaFree(vp[c]);
                        }
                        if (dtab) cudaFree(dtab);
                        if (dtok) cudaFree(dtok);
                        cudaGetLastError(); // a failed row must not fail the next
                    }
                for (int c = 0; c < copies; c++) {
                    cudaFree(qs[c]);
                    cudaFree(ks[c]);
                    cudaFree(vs[c]);
                }
                cudaFree(o);
                cudaFree(lse);
                cudaFree(dcu);
                cudaFree(dsk);
            }
    return fails ? 1 : 0;
}

int main(int argc, char **argv)
{
    enum { OPT_CHECK = AC_ARGS_LONG, OPT_BENCH, OPT_QUICK, OPT_REPS, OPT_FEATURES, OPT_WINDOW, OPT_TABLE, OPT_ONLY };
    static const struct option opts[] = {
        {"check", no_argument, NULL, OPT_CHECK}, {"bench", no_argument, NULL, OPT_BENCH},
        {"quick", no_argument, NULL, OPT_QUICK}, {"reps", required_argument, NULL, OPT_REPS},
        {"features", required_argument, NULL, OPT_FEATURES}, {"window", required_argument, NULL, OPT_WINDOW},
        {"table", no_argument, NULL, OPT_TABLE}, {"only", required_argument, NULL, OPT_ONLY},
        {"help", no_argument, NULL, 'h'},        {NULL, 0, NULL, 0}};
    bool check = false, bench = false, quick = false, table = false;
    const char *only = NULL;
    int reps = 20, window = 1024, nfeats = 1;
    uint32_t feats[16] = {0};
    ac_args a;
    ac_error err;
    ac_args_init(&a, "prefill_bench", argc, argv, opts);
    for (int c; (c = ac_args_next(&a, &err)) != AC_ARGS_END;) {
        ac_status st = AC_OK;
        switch (c) {
        case OPT_CHECK: check = true; break;
        case OPT_BENCH: bench = true; break;
        case OPT_QUICK: quick = true; break;
        case OPT_TABLE: table = true; break;
        case OPT_ONLY: only = optarg; break;
        case OPT_REPS: st = ac_arg_int(a.name, optarg, 10, 100000, &reps, &err); break; /* the median needs >= 10 */
        case OPT_WINDOW: st = ac_arg_int(a.name, optarg, 0, 1 << 30, &window, &err); break;
        case OPT_FEATURES: { // comma-separated names, one bench row each
            static const struct { const char *name; uint32_t bits; } known[] = {
                {"none", 0}, {"window", AC_FEAT_WINDOW}, {"softcap", AC_FEAT_SOFTCAP},
                {"alibi", AC_FEAT_ALIBI}, {"sinks", AC_FEAT_SINKS}, {"all", AC_FEAT_LOGIT},
                {"fp8", AC_FEAT_FP8_KV}, {"all+fp8", AC_FEAT_LOGIT | AC_FEAT_FP8_KV}};
            nfeats = 0;
            char buf[256];
            snprintf(buf, sizeof buf, "%s", optarg);
            for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
                size_t k = 0;
                while (k < sizeof known / sizeof known[0] && strcmp(known[k].name, tok)) k++;
                if (k == sizeof known / sizeof known[0])
                    return ac_args_failf(&a, "--features: %s: unknown (none, window, softcap, alibi, sinks, all, fp8, all+fp8)", tok);
                if (nfeats == 16) return ac_args_failf(&a, "--features: at most 16 entries");
                feats[nfeats++] = known[k].bits;
            }
            if (!nfeats) return ac_args_failf(&a, "--features: empty list");
            break;
        }
        case 'h':
            printf("usage: prefill_bench [--check [--quick]] [--bench [--reps N] [--features LIST] [--window N]] [--table [--only S]]  (none: check and bench)\n"
                   "  --check     kernel vs CPU model on a sweep of configurations\n"
                   "  --quick     a smaller sweep\n"
                   "  --bench     TFLOP/s on bf16 D=128\n"
                   "  --reps N    timed repetitions per shape (default 20, 10 to 100000)\n"
                   "  --features LIST  bench rows per shape: comma-separated none, window, softcap,\n"
                   "              alibi, sinks, all, fp8 (E4M3 cache), all+fp8 (default none)\n"
                   "  --window N  the benched window's left size (default 1024)\n"
                   "  --table     the benchmark table's prefill rows (docs/PERF.md): each configuration\n"
                   "              checked on 64 sampled rows, then timed; TSV ROW lines on stdout\n"
                   "              (--reps N caps the timed calls per row, default 20)\n"
                   "  --only S    with --table: only the groups whose name contains S\n"
                   "              (e.g. \"bf16 D=128 B=2\")\n"
                   "  --help      this text\n");
            return 0;
        default: st = AC_ERR_PARSE; break; /* AC_ARGS_ERROR: err says what */
        }
        if (st) return ac_args_fail(&a, &err);
    }
    if (optind < argc) return ac_args_failf(&a, "%s: unexpected argument (options only)", argv[optind]);
    if (!check && !bench && !table) check = bench = true;
    if (!ac_gpu_available()) {
        fprintf(stderr, "no CUDA device: skipped\n");
        return AC_EXIT_SKIP;
    }
    int rc = 0;
    if (table) rc = run_table(reps, only);
    if (check && rc != 2) {
        int rk = run_check(quick);
        if (rk) rc = rk;
    }
    if (bench && rc != 2) {
        int rb = run_bench(reps, feats, nfeats, window);
        if (rb) rc = rb;
    }
    return rc;
}
