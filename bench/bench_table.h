// The benchmark table's shared parts (prefill_bench --table, decode_bench
// --table; docs/PERF.md, "The benchmark table"): the row format, the sampled
// oracle check, the rotation rule and the timing rule. Header-only: each
// bench/*.cu is a program of its own.
//
// One row per configuration, tab separated, read by bench/perf_table.py:
//   ROW op dtype D causal layout shape ms work unit check worst_r reps copies host_ms
// ms: median of `reps` timed calls (CUDA events, the GPU's time: tb_time), "-" when the check failed
// (a failing configuration has no time); work: FLOPs (unit "flop") or bytes
// ("byte"); check: PASS or FAIL (the verdict on the sampled rows); worst_r:
// the verdict's worst r over them (<= 1 passes); host_ms: the median host
// time of our call (validation and launch; -1 when not timed). Floors measured in the same
// run: FLOOR name value unit.
#ifndef AC_BENCH_TABLE_H
#define AC_BENCH_TABLE_H

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <algorithm>
#include <chrono>
#include <thread>
#include <vector>

#include "ac_case.h"
#include "ac_ref.h"
#include "ac_tensors.h"
#include "ac_verdict.h"

// A CUDA call inside a function returning bool: false (and the error printed).
#define TB_CK(call)                                                                                \
    do {                                                                                           \
        cudaError_t e_ = (call);                                                                   \
        if (e_ != cudaSuccess) {                                                                   \
            fprintf(stderr, "%s:%d %s: %s\n", __FILE__, __LINE__, #call, cudaGetErrorString(e_));  \
            return false;                                                                          \
        }                                                                                          \
    } while (0)

// Uniform in [-1, 1) from a stream position z (SplitMix64's finaliser).
__device__ __forceinline__ float tb_unit(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return (float)(z >> 40) * 0x1p-24f * 2.0f - 1.0f;
}
// u rounded to bf16 or fp16 (nearest even), as bits.
__device__ __forceinline__ uint16_t tb_half_bits(float u, int is_bf16)
{
    if (is_bf16) {
        __nv_bfloat16 h = __float2bfloat16_rn(u);
        return *reinterpret_cast<uint16_t *>(&h);
    }
    __half h = __float2half_rn(u);
    return *reinterpret_cast<uint16_t *>(&h);
}

// Element i of stream `seed`: uniform in [-1, 1) (SplitMix64), rounded to the dtype.
__global__ void tb_fill(uint16_t *x, int64_t n, uint64_t seed, int is_bf16)
{
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        x[i] = tb_half_bits(tb_unit(seed * 0xd1b54a32d192ed03ull + (uint64_t)i * 0x9e3779b97f4a7c15ull), is_bf16);
}

static bool tb_fill_random(uint16_t *x, int64_t n, uint64_t seed, ac_dtype dt)
{
    tb_fill<<<2048, 256>>>(x, n, seed, dt == AC_BF16);
    TB_CK(cudaGetLastError());
    return true;
}

// Keys [k0, k1) of one sequence and KV head, as [k1 - k0, D]: contiguous rows
// from row `base` of a [rows, Hkv, D] tensor (table NULL), or through the
// sequence's block table row into a [blocks, bs, Hkv, D] pool. What the
// kernel read, gathered on the device: only the judged keys travel.
__global__ void tb_gather(const uint16_t *src, const int32_t *table, int64_t base, int32_t bs, int32_t hkv,
                          int32_t d, int32_t kvh, int64_t k0, int64_t k1, uint16_t *dst)
{
    const int64_t n = (k1 - k0) * d;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        const int64_t pos = k0 + i / d, e = i % d;
        const int64_t slot = table ? (int64_t)table[pos / bs] * bs + pos % bs : base + pos;
        dst[i] = src[(slot * hkv + kvh) * d + e];
    }
}

// One sampled (query, head) row to judge: where its query, output and LSE
// are, and where its keys are.
struct tb_row {
    int64_t qo_elem;        // first element of the row in q and in o ([rows, H, D] flattened)
    int64_t lse_index;      // in lse
    const int32_t *d_table; // the sequence's row of the device block table, or NULL (contiguous)
    int64_t base;           // contiguous: the sequence's first key row
    int32_t kvh;            // KV head
    int64_t k0, k1;         // keys the row may see
};

// One (query, head) row judged: its output o [D] and LSE against ac_ref64 of
// a one-row case holding exactly its query q [D] and the n keys k, v [n, D]
// it may see (the verdict's bound is per row, built from that row's own
// magnitudes and key count, so it is the bound of the row inside the full
// case). Host data. *r: the verdict's worst r (output and LSE); false if the
// row fails (why filled) or on an error.
static bool tb_judge_row(ac_dtype dt, int32_t d, const uint16_t *q, const uint16_t *k, const uint16_t *v, int64_t n,
                         const uint16_t *o_row, float lse, double *r, char *why, size_t whyn)
{
    ac_case c;
    ac_tensors t;
    ac_outputs o = {};
    ac_oracle_result ref;
    ac_verdict vd;
    ac_error err = {};
    bool ok = false;
    ac_case_init(&c);
    memset(&t, 0, sizeof t);
    c.dtype = dt;
    c.heads_q = c.heads_kv = 1;
    c.head_dim = d;
    c.causal = AC_CAUSAL_NONE; // the keys given are exactly the allowed ones
    if (ac_case_set_batch(&c, 1, &err)) {
        snprintf(why, whyn, "case: %s", err.msg);
        ac_case_free(&c);
        return false;
    }
    c.seqlen_q[0] = 1;
    c.seqlen_k[0] = (int32_t)n;
    t.cu_seqlens_q = (int32_t *)calloc(2, 4);
    t.cu_seqlens_k = (int32_t *)calloc(2, 4);
    t.cu_seqlens_q[1] = 1;
    t.cu_seqlens_k[1] = (int32_t)n;
    t.total_q = 1;
    t.total_k = n;
    t.kv_elems = t.v_elems = n * d;
    t.q = (uint16_t *)malloc((size_t)d * 2);
    t.k = (uint16_t *)malloc((size_t)(n * d + 1) * 2);
    t.v = (uint16_t *)malloc((size_t)(n * d + 1) * 2);
    memcpy(t.q, q, (size_t)d * 2);
    memcpy(t.k, k, (size_t)(n * d) * 2);
    memcpy(t.v, v, (size_t)(n * d) * 2);
    if (ac_outputs_alloc(&c, &o, &err)) {
        snprintf(why, whyn, "outputs: %s", err.msg);
    } else {
        memcpy(o.o, o_row, (size_t)d * 2);
        o.lse[0] = lse;
        if (ac_ref64(&c, &t, 0, &ref, &err) || ac_verdict_judge(&c, &t, &ref, &o, NULL, NULL, &vd, NULL, &err)) {
            snprintf(why, whyn, "reference: %s", err.msg);
        } else {
            ac_oracle_result_free(&ref);
            *r = std::max(vd.r_max, vd.r_lse_max);
            ok = vd.pass != 0;
            if (!ok) snprintf(why, whyn, "%s", vd.summary);
        }
    }
    ac_outputs_free(&o);
    ac_tensors_free(&t);
    ac_case_free(&c);
    return ok;
}

// The sampled check: each row's keys gathered on the device, then the rows
// judged on the host (tb_judge_row), a batch of them at a time on as many
// threads (a 32k-key row takes about 0.1 s of double arithmetic). *worst_r:
// the worst r over the rows; false if a row fails (why: the first in order)
// or on an error.
static bool tb_check_rows(ac_dtype dt, int32_t d, int32_t hkv, int32_t bs, const uint16_t *dq, const uint16_t *dk,
                          const uint16_t *dv, const uint16_t *dout, const float *dlse, const std::vector<tb_row> &rows,
                          double *worst_r, char *why, size_t whyn)
{
    *worst_r = 0;
    int64_t maxn = 1;
    for (const tb_row &r : rows) maxn = std::max(maxn, r.k1 - r.k0);
    uint16_t *scratch = nullptr;
    TB_CK(cudaMalloc(&scratch, (size_t)maxn * d * 2 * 2));
    const size_t batch = std::max(1u, std::min(16u, std::thread::hardware_concurrency()));
    struct held {
        std::vector<uint16_t> k, v, q, o;
        float lse = 0;
        bool pass = false;
        double r = 0;
        char why[400] = "";
    };
    std::vector<held> h(batch);
    bool ok = true;
    for (size_t first = 0; first < rows.size() && ok; first += batch) {
        const size_t n_here = std::min(batch, rows.size() - first);
        for (size_t j = 0; j < n_here && ok; j++) {
            const tb_row &r = rows[first + j];
            const int64_t n = r.k1 - r.k0;
            held &x = h[j];
            x.k.resize((size_t)n * d);
            x.v.resize((size_t)n * d);
            x.q.resize(d);
            x.o.resize(d);
            tb_gather<<<512, 256>>>(dk, r.d_table, r.base, bs, hkv, d, r.kvh, r.k0, r.k1, scratch);
            tb_gather<<<512, 256>>>(dv, r.d_table, r.base, bs, hkv, d, r.kvh, r.k0, r.k1, scratch + n * d);
            ok = cudaGetLastError() == cudaSuccess &&
                 cudaMemcpy(x.k.data(), scratch, (size_t)n * d * 2, cudaMemcpyDeviceToHost) == cudaSuccess &&
                 cudaMemcpy(x.v.data(), scratch + n * d, (size_t)n * d * 2, cudaMemcpyDeviceToHost) == cudaSuccess &&
                 cudaMemcpy(x.q.data(), dq + r.qo_elem, (size_t)d * 2, cudaMemcpyDeviceToHost) == cudaSuccess &&
                 cudaMemcpy(x.o.data(), dout + r.qo_elem, (size_t)d * 2, cudaMemcpyDeviceToHost) == cudaSuccess &&
                 cudaMemcpy(&x.lse, dlse + r.lse_index, 4, cudaMemcpyDeviceToHost) == cudaSuccess;
            if (!ok) snprintf(why, whyn, "copying row %zu back: %s", first + j, cudaGetErrorString(cudaGetLastError()));
        }
        if (!ok) break;
        std::vector<std::thread> workers;
        for (size_t j = 0; j < n_here; j++)
            workers.emplace_back([&, j]() {
                held &x = h[j];
                const tb_row &r = rows[first + j];
                x.r = 0;
                x.pass = tb_judge_row(dt, d, x.q.data(), x.k.data(), x.v.data(), r.k1 - r.k0, x.o.data(), x.lse,
                                      &x.r, x.why, sizeof x.why);
            });
        for (auto &w : workers) w.join();
        for (size_t j = 0; j < n_here && ok; j++) {
            const tb_row &r = rows[first + j];
            *worst_r = std::max(*worst_r, h[j].r);
            if (!h[j].pass) {
                snprintf(why, whyn, "row %zu (kv head %d, keys %lld..%lld): %s", first + j, r.kvh, (long long)r.k0,
                         (long long)r.k1, h[j].why);
                ok = false;
            }
        }
    }
    cudaFree(scratch);
    return ok;
}

// Rotation: copies of a configuration's inputs cycled per call, so that one
// call's data is not in L2 from the previous one. Data of 4x L2 and more is
// its own rotation (one copy); below, copies until they pass 4x L2 (at
// least 2, at most max_copies).
static int tb_copies(double bytes_per_copy, int l2_bytes, int max_copies)
{
    const double floor_bytes = 4.0 * l2_bytes;
    if (bytes_per_copy >= floor_bytes) return 1;
    int n = (int)ceil(floor_bytes / std::max(bytes_per_copy, 1.0));
    return std::min(max_copies, std::max(2, n));
}

// A one-thread spin of about `ns` nanoseconds queued before a timed call:
// the host's part of the call (our API's validation of block tables and
// slot mappings, a peer's Python dispatch) then runs while the GPU is busy,
// and the events time the GPU's work alone, as in an engine whose host
// stays ahead of the GPU. The host part is timed on its own (tb_time's
// host_ms).
__global__ void tb_spin(long long ns)
{
    const long long t0 = clock64();
    const long long cycles = ns * 2; // >= 1 ns per cycle up to 2 GHz: at least `ns`
    while (clock64() - t0 < cycles) {
    }
}
static const long long kSpinNs = 1000000; // 1 ms: past any host part measured (0.6 ms at most)

// Timing: `warmup` calls, then reps calls, each between two CUDA events with
// a spin queued before the first (tb_spin), median in ms of the GPU's time;
// *host_ms (may be NULL): the median host time of the call itself (our
// validation and the launch). reps adapts to the call's cost: budget_ms over
// the last warm-up's time, within [min_reps, max_reps]. launch(i) runs call
// i (the rotation picks copy i % copies) and returns false on an error. -1 on
// error.
template <class F>
static double tb_time(F launch, int warmup, int min_reps, int max_reps, double budget_ms, int *reps_used,
                      double *host_ms = nullptr)
{
    cudaEvent_t e0, e1;
    if (cudaEventCreate(&e0) != cudaSuccess || cudaEventCreate(&e1) != cudaSuccess) return -1;
    std::vector<float> ms;
    std::vector<double> host;
    float last = 0;
    int reps = max_reps;
    for (int i = 0; i < warmup + reps; i++) {
        tb_spin<<<1, 1>>>(kSpinNs);
        cudaEventRecord(e0);
        const auto h0 = std::chrono::steady_clock::now();
        if (!launch(i)) return -1;
        if (i >= warmup) host.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - h0).count());
        cudaEventRecord(e1);
        if (cudaEventSynchronize(e1) != cudaSuccess) return -1;
        float t = 0;
        cudaEventElapsedTime(&t, e0, e1);
        if (i < warmup) {
            last = t;
            if (i == warmup - 1 && last > 0) reps = std::min(max_reps, std::max(min_reps, (int)(budget_ms / last)));
        } else
            ms.push_back(t);
    }
    cudaEventDestroy(e0);
    cudaEventDestroy(e1);
    if (cudaGetLastError() != cudaSuccess || ms.empty()) return -1;
    std::sort(ms.begin(), ms.end());
    std::sort(host.begin(), host.end());
    if (host_ms) *host_ms = host[host.size() / 2];
    *reps_used = (int)ms.size();
    return ms.size() % 2 ? ms[ms.size() / 2] : 0.5 * (ms[ms.size() / 2 - 1] + ms[ms.size() / 2]);
}

// One row of the table on stdout; progress on stderr.
static void tb_row_line(const char *op, const char *dtype, int d, const char *causal, const char *layout,
                        const char *shape, bool pass, double ms, double work, const char *unit, double worst_r,
                        int reps, int copies, double host_ms)
{
    char mss[32];
    if (pass && ms > 0) snprintf(mss, sizeof mss, "%.5f", ms);
    else snprintf(mss, sizeof mss, "-");
    printf("ROW\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t%.6e\t%s\t%s\t%.4g\t%d\t%d\t%.5f\n", op, dtype, d, causal, layout,
           shape, mss, work, unit, pass ? "PASS" : "FAIL", worst_r, reps, copies, host_ms);
    fflush(stdout);
}

static int tb_l2_bytes(void)
{
    int dev = 0, l2 = 0;
    cudaGetDevice(&dev);
    cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, dev);
    return l2 > 0 ? l2 : 50 << 20;
}

#endif
