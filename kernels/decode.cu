// Paged decode attention with split-KV (CPU model: decode_model.c; algorithm
// and heuristics: docs/DECODE.md).
//
// One CTA (4 warps) per (sequence, kv head, split, row chunk). Its rows are
// the (query, head) pairs of the KV head's whole query group (up to
// AC_DECODE_MAX_ROWS; larger groups * queries use several row chunks), so a
// K/V row is loaded once for all the heads that read it. TPK lanes share one
// key, each holding 8 elements of D (one 16-byte load; past 256, NCH chunks
// of 8: the wide-dim path for MLA's 576/512); a warp holds 32/TPK keys. Every key lane keeps its own online softmax (base 2, fp32) over keys
// (p - begin) % lanes, kpt keys per step with all their K and V loads issued
// before any math, so many 16-byte loads are in flight; the lanes merge once
// at the end (warp butterfly, then warps through shared memory). Masked keys
// (past the row's causal end, the split or seqlen_k) are never loaded or
// accumulated, so NaN in unused cache slots cannot reach the output.
//
// Features (docs/DECODE.md): the template flag FEAT (a window, softcap or
// ALiBi is on) compiles the per-key work in; FEAT = false is the kernel as it
// was without them. A window narrows the keys the splits cut to the step's
// hull (ac_decode_seq_keys: blocks outside it are never read) and masks each
// row's edges; softcap and ALiBi go through ac_decode_logit2, the model's
// formula. A sink is per row, not per key: it joins in the epilogue of a
// one-split launch or in the final combine, never in a partial.
//
// FP8 KV and D_v (docs/DECODE.md, "FP8 KV and D_v"): the cache's element
// type is a template tag KV (the dtype's, or E4M3 / E5M2 codes: a lane loads
// its 8 codes as 8 bytes and decodes them exactly through fp16); k_scale
// folds into the logit constants of the CTA's KV head, v_scale multiplies
// each split's normalised output (ac_decode_split_out). A cache in the dtype
// compiles as before. D_v (V, accumulators, output) is separate from D_qk
// (q, K): the lanes cover the wider one (ac_decode_tile_dim), each load is
// predicated on its own dim.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "combine.h"
#include "decode.h"
#include "gpu_buffers.cuh"

namespace {

// Storage formats as template tags, and 8-element (16-byte) conversions.
struct ac_bf16_t {};
struct ac_fp16_t {};
// FP8 cache formats: 8 codes = 8 bytes per lane.
struct ac_e4m3_t {};
struct ac_e5m2_t {};

// A cache format's element and the vector a lane loads (8 elements).
template <typename KV> struct kv_traits {
    typedef uint16_t elem;
    typedef uint4 vec;
    static constexpr bool fp8 = false;
};
template <> struct kv_traits<ac_e4m3_t> {
    typedef uint8_t elem;
    typedef uint2 vec;
    static constexpr bool fp8 = true;
};
template <> struct kv_traits<ac_e5m2_t> {
    typedef uint8_t elem;
    typedef uint2 vec;
    static constexpr bool fp8 = true;
};
template <typename V> __device__ __forceinline__ V vec_zero();
template <> __device__ __forceinline__ uint4 vec_zero<uint4>() { return make_uint4(0, 0, 0, 0); }
template <> __device__ __forceinline__ uint2 vec_zero<uint2>() { return make_uint2(0, 0); }

// 8 storage elements in a uint4 -> 8 floats.
__device__ __forceinline__ void ac_to_f32x8(ac_bf16_t, const uint4 &u, float f[8])
{
    const uint32_t w[4] = {u.x, u.y, u.z, u.w};
#pragma unroll
    for (int i = 0; i < 4; i++) {
        f[2 * i] = __uint_as_float(w[i] << 16);          // bf16 is the top half of an fp32
        f[2 * i + 1] = __uint_as_float(w[i] & 0xffff0000u);
    }
}
__device__ __forceinline__ void ac_to_f32x8(ac_fp16_t, const uint4 &u, float f[8])
{
    const uint32_t w[4] = {u.x, u.y, u.z, u.w};
#pragma unroll
    for (int i = 0; i < 4; i++) {
        __half2 h = *reinterpret_cast<const __half2 *>(&w[i]);
        float2 v = __half22float2(h);
        f[2 * i] = v.x;
        f[2 * i + 1] = v.y;
    }
}
// 8 FP8 codes in a uint2 -> 8 floats, exact: FP8 -> fp16 (both formats are
// exact in fp16, NaN stays NaN), then fp16 -> fp32.
template <__nv_fp8_interpretation_t F>
__device__ __forceinline__ void fp8x8_to_f32(const uint2 &u, float f[8])
{
    const uint32_t w[2] = {u.x, u.y};
#pragma unroll
    for (int i = 0; i < 2; i++) {
#pragma unroll
        for (int j = 0; j < 2; j++) {
            const __half2_raw hr = __nv_cvt_fp8x2_to_halfraw2((__nv_fp8x2_storage_t)(w[i] >> (16 * j)), F);
            const float2 v = __half22float2(*reinterpret_cast<const __half2 *>(&hr));
            f[4 * i + 2 * j] = v.x;
            f[4 * i + 2 * j + 1] = v.y;
        }
    }
}
__device__ __forceinline__ void ac_to_f32x8(ac_e4m3_t, const uint2 &u, float f[8]) { fp8x8_to_f32<__NV_E4M3>(u, f); }
__device__ __forceinline__ void ac_to_f32x8(ac_e5m2_t, const uint2 &u, float f[8]) { fp8x8_to_f32<__NV_E5M2>(u, f); }

// 8 floats -> 8 storage elements, round to nearest even.
__device__ __forceinline__ uint4 ac_from_f32x8(ac_bf16_t, const float f[8])
{
    uint32_t w[4];
#pragma unroll
    for (int i = 0; i < 4; i++) {
        __nv_bfloat162 h = __floats2bfloat162_rn(f[2 * i], f[2 * i + 1]);
        w[i] = *reinterpret_cast<uint32_t *>(&h);
    }
    return make_uint4(w[0], w[1], w[2], w[3]);
}
__device__ __forceinline__ uint4 ac_from_f32x8(ac_fp16_t, const float f[8])
{
    uint32_t w[4];
#pragma unroll
    for (int i = 0; i < 4; i++) {
        __half2 h = __floats2half2_rn(f[2 * i], f[2 * i + 1]);
        w[i] = *reinterpret_cast<uint32_t *>(&h);
    }
    return make_uint4(w[0], w[1], w[2], w[3]);
}

struct decode_args {
    const uint16_t *q;
    const void *k, *v;           // the cache format's elements (kv_traits<KV>::elem)
    const int32_t *cu_q, *seqlens_k, *block_table;
    uint16_t *o;
    float *o_f32, *lse;          // lse may be NULL
    float *o_part, *lse_part;    // splits > 1: [rows, S, D_v], [rows, S]
    int32_t hq, hkv, d, dv, group, causal; // d: D_qk (q, K); dv: D_v (V, o)
    int32_t block_size, block_shift; // block_shift >= 0 when block_size is a power of two
    int32_t max_blocks, num_splits, row_chunks;
    float scale2;                // scale * log2(e)
    // Features (read only when FEAT, except sinks).
    int32_t window, wl, wr;      // window: 0 none; sides -1 = unbounded
    int32_t capped;              // softcap on: logit = tanhf(dot * scale_c) * cap2
    float scale_c, cap2;         // scale / c, c * log2(e)
    const float *alibi;          // [hq] or NULL
    const float *sinks;          // [hq] or NULL: one-split epilogue (more splits: the combine)
    // FP8 cache only (read when kv_traits<KV>::fp8): the logit constants are
    // then the KV head's (ac_decode_logit_scales on scale, softcap and its k_scale).
    float scale, softcap;
    const float *k_scales, *v_scales; // [n_kv_scales] or NULL
    int32_t n_kv_scales;
};

// Keys a step loads per key lane (the model's ac_decode_kpt). The keys a
// step loads change no result (the softmax groups are AC_DECODE_SOFTMAX_KEYS
// keys whatever it is), so the kernel picks them for its registers: a lane
// holding NCH > 1 chunks of D loads 2.
template <int ROWS, int NCH = 1> struct kpt_of {
    static constexpr int v = NCH > 1 ? 2 : ROWS <= 2 ? 8 : ROWS == 4 ? 4 : 2;
};

// Pipeline depth of the cp.async variant: steps in flight while one computes.
constexpr int ASYNC_STAGES = 3;

template <int TPK, int ROWS, int NCH, bool ASYNC>
constexpr size_t decode_smem_bytes()
{
    constexpr int NS = (32 / TPK) * AC_DECODE_WARPS, KPT = kpt_of<ROWS, NCH>::v;
    constexpr size_t merge = sizeof(float) * AC_DECODE_WARPS * ROWS * (TPK * 8 * NCH + 2);
    constexpr size_t pipe = ASYNC ? 2 * sizeof(uint4) * ASYNC_STAGES * KPT * NS * TPK : 0;
    return merge > pipe ? merge : pipe;
}

__device__ __forceinline__ void cp_async16(void *smem, const void *gmem, int src_bytes)
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    const unsigned s = (unsigned)__cvta_generic_to_shared(smem);
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(s), "l"(gmem), "r"(src_bytes));
#else // no cp.async before sm_80: a synchronous copy with the same zero fill
    *reinterpret_cast<uint4 *>(smem) = src_bytes ? *reinterpret_cast<const uint4 *>(gmem) : make_uint4(0, 0, 0, 0);
#endif
}
__device__ __forceinline__ void cp_async_commit()
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    asm volatile("cp.async.commit_group;\n" ::);
#endif
}
template <int N> __device__ __forceinline__ void cp_async_wait()
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
#endif
}

// Built with -fmad=false (kernels/CMakeLists.txt): every fused multiply-add is
// written out, so ROWS changes no rounding.
// One step of a key lane: logits of its KPT keys for all rows, then per group
// of AC_DECODE_SOFTMAX_KEYS keys one rescale per row and P.V for the keys
// each row may see. kr/vr hold the keys'
// 8-element chunks (zero where the key or the chunk is not there).
// With FEAT, a key counts for a row in [row_beg, row_end) and its logit is
// ac_decode_logit2 (softcap, ALiBi at distance p - row_diag).
struct row_feats {
    int32_t beg, diag;
    float slope;
};

// lc: the CTA's logit constants (scale2, scale_c, cap2).
struct logit_consts {
    float scale2, scale_c, cap2;
};

template <typename KV, int TPK, int ROWS, int NCH, int KPT, int NS, bool FEAT>
__device__ __forceinline__ void decode_step(const typename kv_traits<KV>::vec (&kr)[KPT][NCH],
                                            const typename kv_traits<KV>::vec (&vr)[KPT][NCH], int32_t base,
                                            int key_lane, const float (&qf)[ROWS][8 * NCH],
                                            const int32_t (&row_end)[ROWS], const row_feats (&rf)[ROWS],
                                            const decode_args &a, const logit_consts &lc, float (&m)[ROWS],
                                            float (&l)[ROWS], float (&acc)[ROWS][8 * NCH])
{
    const float scale2 = lc.scale2;
    float sc[KPT][ROWS];
#pragma unroll
    for (int kk = 0; kk < KPT; kk++) {
        const int32_t p = base + kk * NS + key_lane;
        float kf[8 * NCH];
#pragma unroll
        for (int j = 0; j < NCH; j++) ac_to_f32x8(KV(), kr[kk][j], kf + 8 * j);
#pragma unroll
        for (int r = 0; r < ROWS; r++) {
            float dot = 0.0f;
#pragma unroll
            for (int e = 0; e < 8 * NCH; e++) dot = __fmaf_rn(qf[r][e], kf[e], dot);
#pragma unroll
            for (int o = TPK / 2; o > 0; o >>= 1) dot += __shfl_xor_sync(0xffffffffu, dot, o);
            if (FEAT) {
                const float s = ac_decode_logit2(dot, scale2, a.capped, lc.scale_c, lc.cap2, rf[r].slope,
                                                 (float)(p - rf[r].diag));
                sc[kk][r] = p >= rf[r].beg && p < row_end[r] ? s : -INFINITY;
            } else {
                sc[kk][r] = p < row_end[r] ? dot * scale2 : -INFINITY; // a select: a masked dot never counts
            }
        }
    }
    // The running max moves AC_DECODE_SOFTMAX_KEYS keys at a time, whatever
    // KPT is, so the result does not depend on ROWS (batch invariance).
    constexpr int G = AC_DECODE_SOFTMAX_KEYS;
    static_assert(KPT % G == 0, "a step holds whole softmax groups");
#pragma unroll
    for (int g = 0; g < KPT; g += G) {
#pragma unroll
        for (int r = 0; r < ROWS; r++) {
            float mt = -INFINITY;
#pragma unroll
            for (int kk = g; kk < g + G; kk++) mt = fmaxf(mt, sc[kk][r]);
            const float mn = fmaxf(m[r], mt);
            if (mn != -INFINITY) {
                const float alpha = exp2f(m[r] - mn);
                l[r] *= alpha;
#pragma unroll
                for (int e = 0; e < 8 * NCH; e++) acc[r][e] *= alpha;
                m[r] = mn;
            }
        }
#pragma unroll
        for (int kk = g; kk < g + G; kk++) {
            float vf[8 * NCH];
#pragma unroll
            for (int j = 0; j < NCH; j++) ac_to_f32x8(KV(), vr[kk][j], vf + 8 * j);
#pragma unroll
            for (int r = 0; r < ROWS; r++) {
                if (sc[kk][r] == -INFINITY) continue; // masked: V never touches the sums
                const float pr = exp2f(sc[kk][r] - m[r]);
                l[r] += pr;
#pragma unroll
                for (int e = 0; e < 8 * NCH; e++) acc[r][e] = __fmaf_rn(pr, vf[e], acc[r][e]);
            }
        }
    }
}

// ASYNC = false: each step's 2 * KPT 16-byte loads go to registers, all
// issued before the step's math; latency is hidden by the other resident CTAs.
// ASYNC = true: cp.async copies each thread's chunks into its own slots of
// shared memory, ASYNC_STAGES - 1 steps ahead of the math (no barrier: a
// thread only reads what it copied), so loads stay in flight during the math.
template <typename T, typename KV, int TPK, int ROWS, int NCH, bool ASYNC, bool FEAT>
__global__ void __launch_bounds__(AC_DECODE_WARPS * 32, ROWS <= 4 && NCH == 1 ? AC_DECODE_CTAS_PER_SM : 2)
    decode_kernel(const decode_args a)
{
    static_assert(NCH == 1 || (TPK == 32 && !ASYNC && FEAT), "wide dims: 32 lanes a key, register loads, FEAT dims");
    typedef typename kv_traits<KV>::vec kvec;
    typedef typename kv_traits<KV>::elem kelem;
    static_assert(!(ASYNC && kv_traits<KV>::fp8), "FP8 caches take the register load path");
    const kelem *kc = static_cast<const kelem *>(a.k), *vc = static_cast<const kelem *>(a.v);
    constexpr int KSW = 32 / TPK;                 // keys a warp holds at once
    constexpr int NS = KSW * AC_DECODE_WARPS;     // key lanes of the CTA
    constexpr int KPT = kpt_of<ROWS, NCH>::v;
    constexpr int DP = TPK * 8 * NCH;             // the elements a key's lanes hold
    extern __shared__ uint4 smem[];
    // Merge buffers (reuse the pipeline's space once the loop is done).
    float(*sm_acc)[ROWS][DP] = reinterpret_cast<float(*)[ROWS][DP]>(smem);
    float(*sm_m)[ROWS] = reinterpret_cast<float(*)[ROWS]>(reinterpret_cast<float *>(smem) + AC_DECODE_WARPS * ROWS * DP);
    float(*sm_l)[ROWS] = sm_m + AC_DECODE_WARPS;

    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int c = lane % TPK;                     // which 8 elements of D: chunks c + j * TPK, j < NCH
    const int key_lane = warp * KSW + lane / TPK;
    // D_v != D_qk runs the FEAT instantiation (launch_feat); without it D_v is
    // D_qk at compile time, so the V loads and the epilogue are the code they
    // were before D_v existed (same predicates, same offsets).
    const int32_t dv = FEAT ? a.dv : a.d;
    bool dim_on[NCH], dim_on_v[NCH], any_on = false;
#pragma unroll
    for (int j = 0; j < NCH; j++) {
        dim_on[j] = (c + j * TPK) * 8 < a.d;                      // q and K: D_qk
        dim_on_v[j] = FEAT ? (c + j * TPK) * 8 < dv : dim_on[j];  // V and the output: D_v
        any_on |= dim_on[j] || dim_on_v[j];
    }

    int64_t x = blockIdx.x;
    const int rc = (int)(x % a.row_chunks); x /= a.row_chunks;
    const int s = (int)(x % a.num_splits); x /= a.num_splits;
    const int kvh = (int)(x % a.hkv);
    const int b = (int)(x / a.hkv);
    // The KV head's logit constants: k_scale folded in with an FP8 cache, else the host's.
    logit_consts lc = {a.scale2, a.scale_c, a.cap2};
    float v_scale = 1.0f;
    if (kv_traits<KV>::fp8) {
        ac_decode_logit_scales(a.scale, ac_decode_kv_scale(a.k_scales, a.n_kv_scales, kvh), a.softcap, &lc.scale2,
                               &lc.scale_c, &lc.cap2);
        v_scale = ac_decode_kv_scale(a.v_scales, a.n_kv_scales, kvh);
    }

    const int32_t q0 = a.cu_q[b], lq = a.cu_q[b + 1] - q0, lk = a.seqlens_k[b];
    // The splits cut [r0, r1): all keys, or with a window the step's hull.
    int32_t r0 = 0, r1 = lk, kb, ke;
    if (FEAT) ac_decode_seq_keys(a.causal, a.window, a.wl, a.wr, lq, lk, a.block_size, 0, &r0, &r1);
    ac_split_range(r1 - r0, a.num_splits, s, a.block_size, &kb, &ke);
    kb += r0;
    ke += r0;

    float qf[ROWS][8 * NCH];
    int32_t row_end[ROWS];
    row_feats rf[ROWS];
    int32_t hi = kb;
#pragma unroll
    for (int r = 0; r < ROWS; r++) {
        const int rg = rc * ROWS + r, i = rg / a.group, g = rg % a.group;
        row_end[r] = kb; // inactive row: no key
        rf[r] = row_feats{kb, 0, 0.0f};
#pragma unroll
        for (int e = 0; e < 8 * NCH; e++) qf[r][e] = 0.0f;
        if (i < lq) {
            int32_t beg = 0, end;
            if (FEAT) {
                ac_decode_row_keys(a.causal, a.window, a.wl, a.wr, i, lq, lk, 0, &beg, &end);
                rf[r].beg = beg > kb ? beg : kb;
                rf[r].diag = i + (lk - lq);
                rf[r].slope = a.alibi ? __ldg(a.alibi + kvh * a.group + g) : 0.0f;
            } else {
                end = ac_causal_end(a.causal, i, lq, lk);
            }
            row_end[r] = end < ke ? end : ke;
            if (FEAT && rf[r].beg >= row_end[r]) row_end[r] = kb; // nothing here: loads no key for it
            hi = row_end[r] > hi ? row_end[r] : hi;
            const int64_t off = ac_thd_offset(q0 + i, kvh * a.group + g, a.hq, a.d) + c * 8;
#pragma unroll
            for (int j = 0; j < NCH; j++)
                if (dim_on[j])
                    ac_to_f32x8(T(), __ldg(reinterpret_cast<const uint4 *>(a.q + off + j * TPK * 8)), qf[r] + 8 * j);
        }
    }

    float m[ROWS], l[ROWS], acc[ROWS][8 * NCH];
#pragma unroll
    for (int r = 0; r < ROWS; r++) {
        m[r] = -INFINITY;
        l[r] = 0.0f;
#pragma unroll
        for (int e = 0; e < 8 * NCH; e++) acc[r][e] = 0.0f;
    }
    const int32_t *tbl = a.block_table + (int64_t)b * a.max_blocks;
    const int64_t head_off = (int64_t)kvh * a.d + c * 8, head_off_v = (int64_t)kvh * dv + c * 8;
    // Slot of key p; element offsets of this thread's chunk of its K and V
    // rows (ac_cache_offset + c * 8, with D_qk and D_v); p < hi.
    auto slot_of_key = [&](int32_t p) -> int64_t {
        const int32_t blk = a.block_shift >= 0 ? p >> a.block_shift : p / a.block_size;
        return (int64_t)tbl[blk] * a.block_size + (p - blk * a.block_size);
    };
    auto chunk_off = [&](int64_t slot) -> int64_t { return slot * a.hkv * a.d + head_off; };
    auto chunk_off_v = [&](int64_t slot) -> int64_t { return FEAT ? slot * a.hkv * dv + head_off_v : chunk_off(slot); };

    if (!ASYNC) {
        for (int32_t base = kb; base < hi; base += NS * KPT) {
            kvec kr[KPT][NCH], vr[KPT][NCH];
            // All loads of the step first: 2 * KPT * NCH vector loads in flight per thread.
#pragma unroll
            for (int kk = 0; kk < KPT; kk++) {
                const int32_t p = base + kk * NS + key_lane;
#pragma unroll
                for (int j = 0; j < NCH; j++) kr[kk][j] = vr[kk][j] = vec_zero<kvec>();
                if (p < hi && any_on) {
                    const int64_t slot = slot_of_key(p);
#pragma unroll
                    for (int j = 0; j < NCH; j++) {
                        if (dim_on[j])
                            kr[kk][j] = __ldg(reinterpret_cast<const kvec *>(kc + chunk_off(slot) + j * TPK * 8));
                        if (dim_on_v[j])
                            vr[kk][j] = __ldg(reinterpret_cast<const kvec *>(vc + chunk_off_v(slot) + j * TPK * 8));
                    }
                }
            }
            decode_step<KV, TPK, ROWS, NCH, KPT, NS, FEAT>(kr, vr, base, key_lane, qf, row_end, rf, a, lc, m, l,
                                                           acc);
        }
    } else {
        // Slot of (stage, kk) for this thread: [stage][kk][key_lane][c] uint4s, K then V.
        uint4 *sk = smem, *sv = smem + ASYNC_STAGES * KPT * NS * TPK;
        auto slot_of = [&](int st, int kk) { return ((st * KPT + kk) * NS + key_lane) * TPK + c; };
        const int32_t step = NS * KPT, steps = hi > kb ? (hi - kb + step - 1) / step : 0;
        // Chunks not there (key past hi, or past D) are zero-filled (src size 0): never stale.
        auto issue = [&](int it) {
            if (it < steps) {
                const int st = it % ASYNC_STAGES;
#pragma unroll
                for (int kk = 0; kk < KPT; kk++) {
                    const int32_t p = kb + it * step + kk * NS + key_lane;
                    const bool ok = p < hi && dim_on[0], ok_v = p < hi && dim_on_v[0];
                    const int64_t slot = p < hi ? slot_of_key(p) : 0;
                    const int64_t off = ok ? chunk_off(slot) : 0, off_v = ok_v ? chunk_off_v(slot) : 0;
                    cp_async16(sk + slot_of(st, kk), kc + off, ok ? 16 : 0);
                    cp_async16(sv + slot_of(st, kk), vc + off_v, ok_v ? 16 : 0);
                }
            }
            cp_async_commit(); // possibly empty: keeps one group per step for the wait count
        };
#pragma unroll
        for (int it = 0; it < ASYNC_STAGES - 1; it++) issue(it);
        for (int it = 0; it < steps; it++) {
            issue(it + ASYNC_STAGES - 1);
            cp_async_wait<ASYNC_STAGES - 1>(); // this thread's copies of step `it` have landed
            kvec kr[KPT][NCH], vr[KPT][NCH]; // ASYNC: NCH = 1
            const int st = it % ASYNC_STAGES;
#pragma unroll
            for (int kk = 0; kk < KPT; kk++) {
                kr[kk][0] = *reinterpret_cast<const kvec *>(&sk[slot_of(st, kk)]); // ASYNC: a 16-bit cache, kvec = uint4
                vr[kk][0] = *reinterpret_cast<const kvec *>(&sv[slot_of(st, kk)]);
            }
            decode_step<KV, TPK, ROWS, NCH, KPT, NS, FEAT>(kr, vr, kb + it * step, key_lane, qf, row_end, rf, a,
                                                           lc, m, l, acc);
        }
        cp_async_wait<0>();
        __syncthreads(); // every thread is done with the pipeline before the merge reuses it
    }

    // Merge the key lanes of the warp: butterfly over lane groups TPK apart.
#pragma unroll
    for (int o = TPK; o < 32; o <<= 1) {
#pragma unroll
        for (int r = 0; r < ROWS; r++) {
            const float mo = __shfl_xor_sync(0xffffffffu, m[r], o);
            const float lo = __shfl_xor_sync(0xffffffffu, l[r], o);
            float ao[8 * NCH];
#pragma unroll
            for (int e = 0; e < 8 * NCH; e++) ao[e] = __shfl_xor_sync(0xffffffffu, acc[r][e], o);
            const float mn = fmaxf(m[r], mo);
            if (mn != -INFINITY) {
                const float sa = exp2f(m[r] - mn), sb = exp2f(mo - mn);
                l[r] = l[r] * sa + lo * sb;
#pragma unroll
                for (int e = 0; e < 8 * NCH; e++) acc[r][e] = acc[r][e] * sa + ao[e] * sb;
                m[r] = mn;
            }
        }
    }
    if (lane < TPK) {
#pragma unroll
        for (int r = 0; r < ROWS; r++) {
#pragma unroll
            for (int j = 0; j < NCH; j++)
#pragma unroll
                for (int e = 0; e < 8; e++) sm_acc[warp][r][(c + j * TPK) * 8 + e] = acc[r][8 * j + e];
            if (c == 0) {
                sm_m[warp][r] = m[r];
                sm_l[warp][r] = l[r];
            }
        }
    }
    __syncthreads();

    // Warps merged in order; one thread per (row, 8 elements of D).
    for (int idx = threadIdx.x; idx < ROWS * TPK * NCH; idx += blockDim.x) {
        const int r = idx / (TPK * NCH), cc = idx % (TPK * NCH);
        const int rg = rc * ROWS + r, i = rg / a.group, g = rg % a.group;
        if (i >= lq || cc * 8 >= dv) continue;
        float tm = sm_m[0][r], tl = sm_l[0][r], ta[8];
#pragma unroll
        for (int e = 0; e < 8; e++) ta[e] = sm_acc[0][r][cc * 8 + e];
#pragma unroll
        for (int w = 1; w < AC_DECODE_WARPS; w++) {
            const float mo = sm_m[w][r];
            const float mn = fmaxf(tm, mo);
            if (mn == -INFINITY) continue;
            const float sa = exp2f(tm - mn), sb = exp2f(mo - mn);
            tl = tl * sa + sm_l[w][r] * sb;
#pragma unroll
            for (int e = 0; e < 8; e++) ta[e] = ta[e] * sa + sm_acc[w][r][cc * 8 + e] * sb;
            tm = mn;
        }
        const bool empty = tm == -INFINITY;
        float lse = empty ? -INFINITY : (tm + log2f(tl)) * 0.69314718055994530942f;
        const int64_t row = (int64_t)(q0 + i) * a.hq + kvh * a.group + g;
        float ov[8];
#pragma unroll
        for (int e = 0; e < 8; e++) ov[e] = empty ? 0.0f : ac_decode_split_out(ta[e], tl, v_scale);
        if (a.num_splits == 1) {
            if (a.sinks) { // the one split is the final combine: the sink joins here, once
                float w;
                lse = ac_decode_sink_join(lse, __ldg(a.sinks + kvh * a.group + g), &w);
#pragma unroll
                for (int e = 0; e < 8; e++) ov[e] = ov[e] * w;
            }
            const int64_t off = row * dv + cc * 8;
            *reinterpret_cast<uint4 *>(a.o + off) = ac_from_f32x8(T(), ov);
            if (a.o_f32) {
                *reinterpret_cast<float4 *>(a.o_f32 + off) = make_float4(ov[0], ov[1], ov[2], ov[3]);
                *reinterpret_cast<float4 *>(a.o_f32 + off + 4) = make_float4(ov[4], ov[5], ov[6], ov[7]);
            }
            if (cc == 0 && a.lse) a.lse[row] = lse;
        } else {
            const int64_t ps = row * a.num_splits + s;
            if (cc == 0) a.lse_part[ps] = lse;
            if (!empty) { // an empty split's O_s stays as it was: the combine never reads it
                float *dst = a.o_part + ps * dv + cc * 8;
                *reinterpret_cast<float4 *>(dst) = make_float4(ov[0], ov[1], ov[2], ov[3]);
                *reinterpret_cast<float4 *>(dst + 4) = make_float4(ov[4], ov[5], ov[6], ov[7]);
            }
        }
    }
}

template <typename T, typename KV, int TPK, int ROWS, bool ASYNC, bool FEAT, int NCH = 1>
ac_status launch_feat(int64_t grid, const decode_args &a, cudaStream_t stream, ac_error *err)
{
    constexpr size_t smem = decode_smem_bytes<TPK, ROWS, NCH, ASYNC>();
    if (smem > 48 * 1024)
        AC_CUDA_TRY(cudaFuncSetAttribute(decode_kernel<T, KV, TPK, ROWS, NCH, ASYNC, FEAT>,
                                         cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));
    decode_kernel<T, KV, TPK, ROWS, NCH, ASYNC, FEAT><<<(unsigned)grid, AC_DECODE_WARPS * 32, smem, stream>>>(a);
    AC_CUDA_LAUNCHED("decode_kernel");
    return AC_OK;
}

// The per-key features as a template flag: without them the kernel is the
// one that predates them (no extra compare, select or load per key).
template <typename T, typename KV, int TPK, int ROWS, bool ASYNC>
ac_status launch_one(int64_t grid, const decode_args &a, cudaStream_t stream, ac_error *err)
{
    const bool feat = a.window || a.capped || a.alibi || a.dv != a.d; // D_v != D_qk: the FEAT kernel's dims
    return feat ? launch_feat<T, KV, TPK, ROWS, ASYNC, true>(grid, a, stream, err)
                : launch_feat<T, KV, TPK, ROWS, ASYNC, false>(grid, a, stream, err);
}

// An FP8 cache takes the register path (its 8-byte loads; cp.async.cg copies
// 16 bytes); a cache in the dtype either.
template <typename T, typename KV, int TPK, int ROWS>
ac_status launch_path(bool async, int64_t grid, const decode_args &a, cudaStream_t stream, ac_error *err)
{
    if (kv_traits<KV>::fp8 || !async) return launch_one<T, KV, TPK, ROWS, false>(grid, a, stream, err);
    return launch_one<T, KV, TPK, ROWS, kv_traits<KV>::fp8 ? false : true>(grid, a, stream, err);
}

template <typename T, typename KV, int TPK>
ac_status launch_rows(int32_t cta_rows, bool async, int64_t grid, const decode_args &a, cudaStream_t stream,
                      ac_error *err)
{
    switch (cta_rows) {
    case 1: return launch_path<T, KV, TPK, 1>(async, grid, a, stream, err);
    case 2: return launch_path<T, KV, TPK, 2>(async, grid, a, stream, err);
    case 4: return launch_path<T, KV, TPK, 4>(async, grid, a, stream, err);
    default: return launch_path<T, KV, TPK, 8>(async, grid, a, stream, err);
    }
}

// Dims past 256 (MLA's 576/512): 32 lanes a key, NCH chunks a lane, at most
// AC_DECODE_WIDE_MAX_ROWS rows, register loads, and the FEAT kernel (its
// runtime D_v); a rarer shape, so one instantiation per chunk count.
template <typename T, typename KV, int NCH>
ac_status launch_wide(int32_t cta_rows, int64_t grid, const decode_args &a, cudaStream_t stream, ac_error *err)
{
    static_assert(AC_DECODE_WIDE_MAX_ROWS == 2, "the row counts instantiated below");
    return cta_rows == 1 ? launch_feat<T, KV, 32, 1, false, true, NCH>(grid, a, stream, err)
                         : launch_feat<T, KV, 32, 2, false, true, NCH>(grid, a, stream, err);
}

// TPK follows the wider of D_qk and D_v (ac_decode_tile_dim), as the model's lanes.
template <typename T, typename KV>
ac_status launch_dim(int32_t cta_rows, bool async, int64_t grid, const decode_args &a, cudaStream_t stream,
                     ac_error *err)
{
    static_assert(AC_DECODE_MAX_CHUNKS == 3, "the chunk counts instantiated below");
    switch (ac_decode_chunks(ac_decode_tile_dim(a.d, a.dv))) {
    case 1: break;
    case 2: return launch_wide<T, KV, 2>(cta_rows, grid, a, stream, err);
    default: return launch_wide<T, KV, 3>(cta_rows, grid, a, stream, err);
    }
    switch (ac_decode_tpk(ac_decode_tile_dim(a.d, a.dv))) {
    case 8: return launch_rows<T, KV, 8>(cta_rows, async, grid, a, stream, err);
    case 16: return launch_rows<T, KV, 16>(cta_rows, async, grid, a, stream, err);
    default: return launch_rows<T, KV, 32>(cta_rows, async, grid, a, stream, err);
    }
}

template <typename T>
ac_status launch_kv(ac_kv_format f, int32_t cta_rows, bool async, int64_t grid, const decode_args &a,
                    cudaStream_t stream, ac_error *err)
{
    switch (f) {
    case AC_KV_E4M3: return launch_dim<T, ac_e4m3_t>(cta_rows, async, grid, a, stream, err);
    case AC_KV_E5M2: return launch_dim<T, ac_e5m2_t>(cta_rows, async, grid, a, stream, err);
    default: return launch_dim<T, T>(cta_rows, async, grid, a, stream, err);
    }
}

// Load path: cp.async pipeline (default) or plain register loads; the
// environment variable AC_DECODE_LOADS=regs selects the latter (the GPU check
// runs both, the benchmark times both).
static bool use_async_loads(void)
{
    const char *v = getenv("AC_DECODE_LOADS");
    return !(v && strcmp(v, "regs") == 0);
}

} // namespace

extern "C" ac_status ac_decode_launch(const ac_decode_params *p, void *workspace, size_t workspace_bytes,
                                      void *stream_ptr, int32_t *num_splits_used, ac_error *err)
{
    ac_status st = ac_decode_validate(p, err); // the kernel's head dims included
    if (st) return st;
    cudaStream_t stream = (cudaStream_t)stream_ptr;
    int32_t sms = p->num_sms;
    if (sms == 0) {
        int dev = 0;
        AC_CUDA_TRY(cudaGetDevice(&dev));
        AC_CUDA_TRY(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
    }
    const int32_t splits = ac_decode_splits(p, sms);
    if (num_splits_used) *num_splits_used = splits;
    const size_t need = ac_decode_workspace_bytes(p, splits);
    if (need && !workspace)
        return ac_fail(err, AC_ERR_NULL, "workspace is NULL: %d splits need %zu bytes", splits, need);
    if (need > workspace_bytes)
        return ac_fail(err, AC_ERR_SHAPE, "workspace_bytes = %zu: %d splits need %zu", workspace_bytes, splits, need);
    if (need && (uintptr_t)workspace % 16 != 0)
        return ac_fail(err, AC_ERR_UNSUPPORTED, "workspace = %p: must be 16-byte aligned", workspace);
    if (p->batch == 0) return AC_OK;

    const int32_t group = p->heads_q / p->heads_kv;
    const int32_t rows_needed = ac_decode_rows_needed(p);
    const int32_t cta_rows = ac_decode_cta_rows(rows_needed, ac_decode_tile_dim(p->head_dim, ac_decode_dv(p)));
    const int32_t row_chunks = ac_num_tiles(rows_needed, cta_rows);
    const int64_t rows = p->total_q * p->heads_q;

    decode_args a;
    a.q = (const uint16_t *)p->q;
    a.k = (const uint16_t *)p->k_cache;
    a.v = (const uint16_t *)p->v_cache;
    a.cu_q = p->cu_seqlens_q;
    a.seqlens_k = p->seqlens_k;
    a.block_table = p->block_table;
    a.o = (uint16_t *)p->o;
    a.o_f32 = p->o_f32;
    a.lse = p->lse;
    const int32_t dv = ac_decode_dv(p);
    a.o_part = splits > 1 ? (float *)workspace : NULL;
    a.lse_part = splits > 1 ? (float *)workspace + (size_t)rows * splits * dv : NULL;
    a.hq = p->heads_q;
    a.hkv = p->heads_kv;
    a.d = p->head_dim;
    a.dv = dv;
    a.group = group;
    a.causal = p->causal;
    a.block_size = p->block_size;
    a.block_shift = -1;
    for (int sh = 0; sh < 31; sh++)
        if ((1 << sh) == p->block_size) a.block_shift = sh;
    a.max_blocks = p->max_blocks_per_seq;
    a.num_splits = splits;
    a.row_chunks = row_chunks;
    const float scale = p->scale_given ? p->scale : 1.0f / sqrtf((float)p->head_dim); // 1/sqrt(D_qk)
    // As the model: the same fp32 values (an FP8 cache's kernel recomputes
    // them per KV head with its k_scale).
    ac_decode_logit_scales(scale, 1.0f, p->softcap, &a.scale2, &a.scale_c, &a.cap2);
    a.window = p->window;
    a.wl = p->window_left;
    a.wr = p->window_right;
    a.capped = p->softcap > 0.0f;
    a.alibi = p->alibi_slopes;
    a.sinks = p->sinks;
    a.scale = scale;
    a.softcap = p->softcap;
    a.k_scales = p->k_scales;
    a.v_scales = p->v_scales;
    a.n_kv_scales = p->n_kv_scales;

    const int64_t grid = (int64_t)p->batch * p->heads_kv * splits * row_chunks;
    const bool async = use_async_loads();
    st = p->dtype == AC_BF16 ? launch_kv<ac_bf16_t>(p->kv_format, cta_rows, async, grid, a, stream, err)
                             : launch_kv<ac_fp16_t>(p->kv_format, cta_rows, async, grid, a, stream, err);
    if (st || splits == 1) return st;
    // Partials carry no sink (it joins once, in this combine) and carry v_scale already.
    ac_combine_params cp = {p->dtype, rows,    splits,     dv,         a.o_part, a.lse_part,
                            p->o,     p->o_f32, p->lse,    p->sinks,    p->heads_q};
    return ac_combine_launch(&cp, stream_ptr, err);
}

// The GPU backend entry: params from the case, validation before any device
// work, device copies of the inputs and poisoned outputs, launch, download.
extern "C" ac_status ac_gpu_decode(const ac_case *c, const ac_tensors *t, const ac_run_opts *o, ac_outputs *out,
                                   ac_error *err)
{
    (void)o;
    ac_decode_params p;
    ac_status st = ac_decode_params_from_case(c, t, out, &p, err);
    if (st) return st;
    // The arguments first (the kernel's head dims included), then whether the
    // tensors hold the pools they describe.
    st = ac_decode_validate(&p, err);
    if (!st) st = ac_decode_check_pool(c, t, err);
    const int64_t rows = p.total_q * c->heads_q;
    const size_t qn = (size_t)rows * c->head_dim, on = (size_t)rows * ac_case_dv(c);
    ac_gpu_bufs bufs = {};
    void *dq, *dk, *dv, *dcu, *dsk, *dtbl, *dout, *dof = NULL, *dlse, *dws = NULL, *dal = NULL, *dsink = NULL;
    void *dks = NULL, *dvs = NULL;
    int32_t splits = 0;
    size_t ws_bytes = 0;
    int dev = 0, sms = 0;
    if (st) goto done;
    AC_GPU_STEP(ac_gpu_upload(&bufs, &dq, t->q, qn * 2, "q", err));
    // K and V in the kernel's storage (FP8: packed codes), with their own dims.
    AC_GPU_STEP(ac_gpu_upload_kv(&bufs, &dk, c, t->k, t->kv_elems, 0, "k_cache", err));
    AC_GPU_STEP(ac_gpu_upload_kv(&bufs, &dv, c, t->v, t->v_elems, 1, "v_cache", err));
    AC_GPU_STEP(ac_gpu_upload_kv_scales(&bufs, &dks, &dvs, c, err));
    AC_GPU_STEP(ac_gpu_upload(&bufs, &dcu, p.cu_seqlens_q_host, sizeof(int32_t) * ((size_t)c->batch + 1),
                              "cu_seqlens_q", err));
    AC_GPU_STEP(ac_gpu_upload(&bufs, &dsk, c->seqlen_k, sizeof(int32_t) * (size_t)c->batch, "seqlens_k", err));
    AC_GPU_STEP(ac_gpu_upload(&bufs, &dtbl, c->block_table,
                              sizeof(int32_t) * (size_t)c->batch * (size_t)c->max_blocks_per_seq, "block_table", err));
    // The per-head feature arrays (host copies stay in p for validation).
    if (p.alibi_slopes)
        AC_GPU_STEP(ac_gpu_upload(&bufs, &dal, p.alibi_slopes_host, sizeof(float) * (size_t)c->heads_q,
                                  "alibi_slopes", err));
    if (p.sinks)
        AC_GPU_STEP(ac_gpu_upload(&bufs, &dsink, p.sinks_host, sizeof(float) * (size_t)c->heads_q, "sinks", err));
    AC_GPU_STEP(ac_gpu_alloc_poisoned(&bufs, &dout, on * 2, "o", err));
    // A sparse case leaves o_f32 out (docs/DATA.md): its batch may be 2^31 rows.
    if (p.o_f32) AC_GPU_STEP(ac_gpu_alloc_poisoned(&bufs, &dof, on * 4, "o_f32", err));
    AC_GPU_STEP(ac_gpu_alloc_poisoned(&bufs, &dlse, (size_t)rows * 4, "lse", err));
    AC_GPU_STEP(ac_gpu_check(cudaGetDevice(&dev), "cudaGetDevice", err));
    AC_GPU_STEP(ac_gpu_check(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev),
                             "cudaDeviceGetAttribute(SM count)", err));
    splits = ac_decode_splits(&p, sms);
    ws_bytes = ac_decode_workspace_bytes(&p, splits);
    if (ws_bytes) AC_GPU_STEP(ac_gpu_alloc_poisoned(&bufs, &dws, ws_bytes, "workspace", err));
    p.q = dq;
    p.k_cache = dk;
    p.v_cache = dv;
    p.cu_seqlens_q = (const int32_t *)dcu;
    p.seqlens_k = (const int32_t *)dsk;
    p.block_table = (const int32_t *)dtbl;
    p.o = dout;
    p.o_f32 = p.o_f32 ? (float *)dof : NULL;
    p.lse = (float *)dlse;
    p.alibi_slopes = (const float *)dal;
    p.sinks = (const float *)dsink;
    p.k_scales = (const float *)dks;
    p.v_scales = (const float *)dvs;
    p.num_sms = sms;
    AC_GPU_STEP(ac_decode_launch(&p, dws, ws_bytes, NULL, NULL, err));
    AC_GPU_STEP(ac_gpu_sync("decode kernel", err));
    AC_GPU_STEP(ac_gpu_download(out->o, dout, on * 2, "o", err));
    if (p.o_f32) AC_GPU_STEP(ac_gpu_download(out->o_f32, dof, on * 4, "o_f32", err));
    AC_GPU_STEP(ac_gpu_download(out->lse, dlse, (size_t)rows * 4, "lse", err));
done:
    ac_gpu_free_all(&bufs);
    ac_decode_params_free(&p);
    return st;
}
