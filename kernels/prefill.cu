// Prefill attention on Hopper with mma.sync (FlashAttention-2 style).
//
// One CTA = one tile of query rows of one (sequence, query head): 128 rows
// in 8 warps (D <= 128, two CTAs per SM) or 64 rows in 4 warps (D = 256),
// 16 rows per warp. K/V tiles of 64 keys stream through shared memory with
// cp.async: V[j] loads while S = Q K[j]^T runs, K[j+1] is issued right after
// S and loads under the softmax and O += P V[j]. Accumulators are fp32; P is
// rounded to the input dtype before the P.V mma; exp2 with scale*log2(e)
// folded into one multiply. Tiles that need no masking (below the causal
// diagonal, inside seqlen_k, no explicit mask) skip the mask code.
// Features (window, softcap, ALiBi, sinks) live in a separate instantiation
// (kFeat), so a case without them runs the same code as before they existed;
// a window also moves the first key tile, so tiles outside it are skipped.
// D_v != D_qk: both dims are padded to one DPAD (that of the larger), V rows
// load D_v columns and O writes D_v columns (runtime dims: no cost when equal).
// FP8 KV cache (kKv8, only with kFeat): K/V tiles load as bytes into
// registers, convert exactly to T and are stored into the same swizzled
// shared-memory tiles (cp.async cannot convert); k_scale is folded into the
// logit scale per CTA, v_scale multiplies O in the epilogue.
// The CPU model (prefill_model.c) repeats this order of arithmetic.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>
#include <cuda_runtime.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ac_index.h"
#include "ac_numfmt.h"
#include "gpu_buffers.cuh"
#include "prefill.h"

namespace {

constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;
// Build-time tuning knobs for D <= 128 (the defaults are the measured best,
// docs/PREFILL.md). Query rows per CTA do not change any result: rows are
// independent, and the CPU model's tile walk gives the same bits for any.
#ifndef PREFILL_WARPS
#define PREFILL_WARPS 8 // warps per CTA
#endif
#ifndef PREFILL_MINB
#define PREFILL_MINB 2 // __launch_bounds__ minimum CTAs per SM (<= 128 registers)
#endif
#ifndef PREFILL_BM
#define PREFILL_BM AC_PREFILL_TILE_M(128) // query rows per CTA
#endif
template <int DPAD> struct Cfg {
    static constexpr int kWarps = DPAD <= 128 ? PREFILL_WARPS : 4;
    static constexpr int kThreads = 32 * kWarps;
    static constexpr int kMinBlocks = DPAD <= 128 ? PREFILL_MINB : 1;
    static constexpr int BM = DPAD <= 128 ? PREFILL_BM : AC_PREFILL_TILE_M(DPAD);
    static constexpr int BN = AC_PREFILL_TILE_N(DPAD);
};

struct KParams {
    const uint16_t *q, *k, *v;
    const uint8_t *k8, *v8;            // FP8 cache (kKv8): one code per element
    uint16_t *out;
    float *lse;
    const uint8_t *mask_bool;
    const float *mask_bias;
    const int64_t *mask_off;
    const int32_t *cu_q, *cu_k, *block_table, *seqlens_k;
    int32_t hq, hkv, d, dv;            // d: D_qk (q, k); dv: D_v (v, out)
    int32_t paged, block_size, max_blocks_per_seq;
    int32_t block_shift;               // log2(block_size) when a power of two, else -1
    int32_t causal, mask_kind, mask_per_head;
    float scale_log2;
    // Features, read only by the kFeat instantiation.
    int32_t window_left, window_right; // -1: unbounded on that side
    float cap_in, cap_out;             // softcap: t = tanhf(s * cap_in) * cap_out; cap_out 0 = off
    const float *alibi;                // [Hq] slopes or NULL
    const float *sinks;                // [Hq] natural-log sink logits or NULL
    // FP8 cache, read only by the kKv8 instantiation.
    int32_t kv_format;                 // AC_KV_E4M3 or AC_KV_E5M2
    int32_t n_scales;                  // 0, 1 or hkv
    const float *k_scales, *v_scales;  // [n_scales] or NULL
    float scale, softcap;              // to refold scale * k_scale per CTA
};

// --- number formats and PTX wrappers ------------------------------------------
template <typename T> struct DType;
template <> struct DType<__nv_bfloat16> {
    static __device__ __forceinline__ uint32_t pack(float lo, float hi)
    {
        __nv_bfloat162 h = __floats2bfloat162_rn(lo, hi);
        return *reinterpret_cast<uint32_t *>(&h);
    }
    static __device__ __forceinline__ void mma(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1)
    {
        asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                     : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                     : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
    }
};
template <> struct DType<__half> {
    static __device__ __forceinline__ uint32_t pack(float lo, float hi)
    {
        __half2 h = __floats2half2_rn(lo, hi);
        return *reinterpret_cast<uint32_t *>(&h);
    }
    static __device__ __forceinline__ void mma(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1)
    {
        asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                     : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                     : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
    }
};

// Eight FP8 codes (one 8-byte chunk) as eight T in one 16-byte chunk: exact
// (fp16 and bf16 hold every E4M3 and E5M2 value, NaN and E5M2's Inf included).
template <typename T> __device__ __forceinline__ uint4 fp8x8_to(uint2 codes, int kv_format);
__device__ __forceinline__ uint32_t fp8x2_to_half2(uint32_t two, __nv_fp8_interpretation_t f)
{
    __half2_raw h = __nv_cvt_fp8x2_to_halfraw2((__nv_fp8x2_storage_t)two, f);
    return (uint32_t)h.x | ((uint32_t)h.y << 16);
}
template <> __device__ __forceinline__ uint4 fp8x8_to<__half>(uint2 c, int kv_format)
{
    const __nv_fp8_interpretation_t f = kv_format == AC_KV_E5M2 ? __NV_E5M2 : __NV_E4M3;
    return make_uint4(fp8x2_to_half2(c.x & 0xffffu, f), fp8x2_to_half2(c.x >> 16, f),
                      fp8x2_to_half2(c.y & 0xffffu, f), fp8x2_to_half2(c.y >> 16, f));
}
__device__ __forceinline__ uint32_t half2_to_bf162(uint32_t hh)
{
    __half2 h = *reinterpret_cast<__half2 *>(&hh);
    __nv_bfloat162 b = __floats2bfloat162_rn(__low2float(h), __high2float(h)); // exact: an FP8 value
    return *reinterpret_cast<uint32_t *>(&b);
}
template <> __device__ __forceinline__ uint4 fp8x8_to<__nv_bfloat16>(uint2 c, int kv_format)
{
    uint4 h = fp8x8_to<__half>(c, kv_format);
    return make_uint4(half2_to_bf162(h.x), half2_to_bf162(h.y), half2_to_bf162(h.z), half2_to_bf162(h.w));
}

__device__ __forceinline__ float fast_exp2(float x)
{
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
    return y;
}

__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], uint32_t addr)
{
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(addr));
}
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], uint32_t addr)
{
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(addr));
}

// 16-byte async copy; src_bytes = 0 fills the destination with zeros
// (rows past seqlen, padded head-dim columns): nothing is read then.
__device__ __forceinline__ void cp_async16(uint32_t dst, const void *src, int src_bytes)
{
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(src_bytes));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
__device__ __forceinline__ void cp_async_wait_all() { asm volatile("cp.async.wait_group 0;\n" ::); }

// Shared-memory tiles are [rows, DPAD] with the 16-byte chunk index XORed by
// row % 8: the 8 rows an ldmatrix reads hit 8 different bank groups.
template <int DPAD>
__device__ __forceinline__ uint32_t swz(uint32_t base, int row, int chunk)
{
    return base + (uint32_t)((row * DPAD + ((chunk ^ (row & 7)) << 3)) * 2);
}
// The same address split into a per-lane part, computed once, and a
// compile-time part: a row offset that is a multiple of 8 rows keeps row % 8,
// and an even chunk offset c XORs into the swizzled chunk as c ^ (lane bits),
// so the loop needs one XOR with an immediate per ldmatrix (few registers).
template <int DPAD>
__device__ __forceinline__ uint32_t swz_at(uint32_t lane_addr, int row_const, int chunk_const)
{
    return (lane_addr ^ (uint32_t)(chunk_const << 4)) + (uint32_t)(row_const * DPAD * 2);
}

// This thread's 8-element chunks of a `ROWS`-row tile of d columns:
// put(r, chunk, at) with `at` the element offset of the chunk in the source,
// or -1 for a zero chunk (row_off(r, it) < 0: a zero row; or a padded
// column). `it` is the thread's pass over the tile (its it-th row).
template <int DPAD, int ROWS, typename RowOff, typename Put>
__device__ __forceinline__ void for_tile_chunks(int d, RowOff row_off, Put put)
{
    constexpr int kChunks = DPAD / 8;
    constexpr int kRowsPerPass = Cfg<DPAD>::kThreads / kChunks;
    const int chunk = threadIdx.x % kChunks;
    static_assert(ROWS % kRowsPerPass == 0, "whole passes");
#pragma unroll
    for (int it = 0; it < ROWS / kRowsPerPass; it++) {
        const int r = threadIdx.x / kChunks + it * kRowsPerPass;
        int64_t off = row_off(r, it);
        put(r, chunk, off >= 0 && chunk * 8 < d ? off + chunk * 8 : (int64_t)-1);
    }
}

// Copy `ROWS` rows of d elements into a swizzled tile. row_off(r, it) gives the
// element offset of row r in `src`, or -1 for a zero row.
template <int DPAD, int ROWS, typename RowOff>
__device__ __forceinline__ void load_tile(uint32_t smem, const uint16_t *src, int d, RowOff row_off)
{
    for_tile_chunks<DPAD, ROWS>(d, row_off, [&](int r, int chunk, int64_t at) {
        cp_async16(swz<DPAD>(smem, r, chunk), at >= 0 ? src + at : src, at >= 0 ? 16 : 0);
    });
}

// The same tile from FP8 codes: each thread reads its 8-byte chunks (rows of
// d codes; d % 8 == 0 keeps them 8-byte aligned), converts them to T and
// stores them swizzled. Synchronous: the tile is complete in shared memory
// for every thread after the next __syncthreads, as a cp.async tile is
// after wait + __syncthreads, so the pipeline's barriers serve both.
template <typename T, int DPAD, int ROWS, typename RowOff>
__device__ __forceinline__ void load_tile8(uint32_t smem, const uint8_t *src, int d, int kv_format, RowOff row_off)
{
    for_tile_chunks<DPAD, ROWS>(d, row_off, [&](int r, int chunk, int64_t at) {
        uint4 x = make_uint4(0u, 0u, 0u, 0u);
        if (at >= 0) x = fp8x8_to<T>(__ldg(reinterpret_cast<const uint2 *>(src + at)), kv_format);
        asm volatile("st.shared.v4.u32 [%0], {%1,%2,%3,%4};\n" ::"r"(swz<DPAD>(smem, r, chunk)), "r"(x.x), "r"(x.y),
                     "r"(x.z), "r"(x.w));
    });
}

// kMask: an explicit (bool or additive) mask is present. kFeat: a window,
// softcap, ALiBi or sinks are on (which ones: uniform flags in KParams).
// kKv8 (only with kFeat): K and V are FP8 codes with scales.
// Separate instantiations keep their register cost out of the common kernel.
template <typename T, int DPAD, bool kMask, bool kFeat, bool kKv8>
__global__ void __launch_bounds__(Cfg<DPAD>::kThreads, Cfg<DPAD>::kMinBlocks) prefill_kernel(KParams p)
{
    static_assert(kFeat || !kKv8, "the FP8 cache runs in the feature instantiation");
    constexpr int kWarps = Cfg<DPAD>::kWarps;
    constexpr int BM = Cfg<DPAD>::BM;
    constexpr int BN = Cfg<DPAD>::BN;
    constexpr int MB = BM / (16 * kWarps); // 16-row m-blocks per warp
    constexpr int KS = DPAD / 16;          // k-steps of S = Q K^T
    constexpr int NB = BN / 8;             // 8-key blocks of a tile
    constexpr int DB = DPAD / 8;           // 8-column blocks of O
    static_assert(BM == 16 * MB * kWarps && MB >= 1, "whole 16-row m-blocks per warp");

    const int b = blockIdx.z, h = blockIdx.y;
    const int q0 = p.cu_q[b];
    const int lq = p.cu_q[b + 1] - q0;
    const int m_tile = gridDim.x - 1 - blockIdx.x; // heavy (late) causal tiles first
    const int m0 = m_tile * BM;
    if (m0 >= lq) return;
    const int lk = p.paged ? p.seqlens_k[b] : p.cu_k[b + 1] - p.cu_k[b];
    const int k0 = p.paged ? 0 : p.cu_k[b];
    const int kvh = ac_kv_head(h, p.hq, p.hkv);
    const int32_t *table = p.paged ? p.block_table + (int64_t)b * p.max_blocks_per_seq : nullptr;

    extern __shared__ __align__(1024) uint8_t smem_raw[]; // swz_at needs 512-byte alignment
    const uint32_t sQ = (uint32_t)__cvta_generic_to_shared(smem_raw);
    const uint32_t sK = sQ + BM * DPAD * 2;
    const uint32_t sV = sK + BN * DPAD * 2;

    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int g = lane / 4, tig = lane % 4;

    // Key tiles [tile_begin, tile_end): from the window's begin of the CTA's
    // first row to the end of its last row (both bounds grow with i); whole
    // tiles outside them are never loaded.
    const int last = min(m0 + BM, lq) - 1;
    int tile_begin = 0, first_full = 0, kv_end, first_masked;
    if (kFeat) {
        // Tiles in [first_full, first_masked) lie inside every row's
        // [begin, end): at or after the last row's begin, before the first
        // row's end (which is also within seqlen_k). The rest need masking.
        int b_first, e_first, b_last, e_last;
        ac_key_range(p.causal, p.window_left, p.window_right, m0, lq, lk, &b_first, &e_first);
        ac_key_range(p.causal, p.window_left, p.window_right, last, lq, lk, &b_last, &e_last);
        tile_begin = b_first / BN;
        kv_end = e_last;
        first_full = ac_num_tiles(b_last, BN);
        first_masked = kMask ? 0 : e_first / BN;
    } else {
        kv_end = ac_causal_end(p.causal, last, lq, lk);
    }
    const int tile_end = kFeat ? max(ac_num_tiles(kv_end, BN), tile_begin) : ac_num_tiles(kv_end, BN);
    if (!kFeat) {
        // Tiles from `first_masked` on need masking: the causal bound of the first
        // row, the seqlen_k tail, or an explicit mask everywhere.
        first_masked = kMask ? 0 : lk / BN;
        if (p.causal != AC_CAUSAL_NONE) first_masked = min(first_masked, ac_causal_end(p.causal, m0, lq, lk) / BN);
    }
    const float slope = kFeat && p.alibi ? p.alibi[h] : 0.0f;
    const float sink = kFeat && p.sinks ? p.sinks[h] : -INFINITY;
    // The logit scale (and softcap's input factor): with an FP8 cache the KV
    // head's k_scale folds in once (ac_prefill_kv_scaled, as in the model).
    float scale_log2 = p.scale_log2, cap_in = p.cap_in, v_scale = 1.0f;
    if (kKv8) {
        const int gi = p.n_scales == 1 ? 0 : kvh;
        const float se = ac_prefill_kv_scaled(p.scale, p.n_scales ? p.k_scales[gi] : 1.0f);
        scale_log2 = __fmul_rn(se, kLog2e);
        if (p.cap_out != 0.0f) cap_in = __fdiv_rn(se, p.softcap);
        v_scale = p.n_scales ? p.v_scales[gi] : 1.0f;
    }

    auto q_row = [&](int r, int) -> int64_t {
        return m0 + r < lq ? ac_thd_offset((int64_t)q0 + m0 + r, h, p.hq, p.d) : -1;
    };
    // D_v != D_qk runs the kFeat instantiation (ac_prefill_launch); without it
    // D_v is D_qk at compile time: V's loads and the epilogue are the code they
    // were before D_v existed.
    const int dv = kFeat ? p.dv : p.d;
    // Paged K/V: the block-table entries of this thread's rows of a tile
    // (pass it: row threadIdx.x / kChunks + it * kRowsPerPass), read one tile
    // ahead: the entries of tile j + 1 are loaded right after V[j] is issued
    // and used by K[j + 1]'s copy after Q K^T and by V[j + 1]'s in the next
    // iteration, so the table's latency hides under the products instead of
    // sitting before each cp.async (ac_pos_slot's division too: a shift and a
    // mask for a power-of-two block size). Only without a mask and features
    // (kAhead): their instantiations are at the 128-register bound already,
    // and the entries' registers spilled there; they read the entry per row.
    constexpr bool kAhead = !kMask && !kFeat;
    constexpr int kChunks = DPAD / 8, kRowsPerPass = Cfg<DPAD>::kThreads / kChunks, kPasses = BN / kRowsPerPass;
    int32_t blk[kPasses];
    auto fetch_blocks = [&](int n0) {
        if (!kAhead || !p.paged) return;
#pragma unroll
        for (int it = 0; it < kPasses; it++) {
            const int pos = n0 + threadIdx.x / kChunks + it * kRowsPerPass;
            blk[it] = pos < lk ? table[p.block_shift >= 0 ? pos >> p.block_shift : pos / p.block_size] : 0;
        }
    };
    // Rows of K (dim = d) or V (dim = dv) of the tile at n0 (blk: its entries).
    auto kv_row = [&](int n0, int dim) {
        return [=, &blk](int r, int it) -> int64_t {
            int pos = n0 + r;
            if (pos >= lk) return -1; // never read past seqlen_k: zero rows instead
            if (p.paged) { // ac_pos_slot, with the entry read ahead (kAhead)
                const int in_blk = p.block_shift >= 0 ? pos & (p.block_size - 1) : pos % p.block_size;
                const int32_t e =
                    kAhead ? blk[it] : table[p.block_shift >= 0 ? pos >> p.block_shift : pos / p.block_size];
                return ac_cache_offset((int64_t)e * p.block_size + in_blk, kvh, p.hkv, dim);
            }
            return ac_thd_offset((int64_t)k0 + pos, kvh, p.hkv, dim);
        };
    };
    auto load_k = [&](int n0) {
        if (kKv8) load_tile8<T, DPAD, BN>(sK, p.k8, p.d, p.kv_format, kv_row(n0, p.d));
        else load_tile<DPAD, BN>(sK, p.k, p.d, kv_row(n0, p.d));
    };
    auto load_v = [&](int n0) {
        if (kKv8) load_tile8<T, DPAD, BN>(sV, p.v8, dv, p.kv_format, kv_row(n0, dv));
        else load_tile<DPAD, BN>(sV, p.v, dv, kv_row(n0, dv));
    };

    load_tile<DPAD, BM>(sQ, p.q, p.d, q_row);
    cp_async_commit();
    if (tile_end > tile_begin) {
        fetch_blocks(tile_begin * BN);
        load_k(tile_begin * BN);
    }
    cp_async_commit();

    // Per lane: rows g and g+8 of each of its MB m-blocks (index r = 2*mb + hr).
    float o[MB][DB][4];
#pragma unroll
    for (int mb = 0; mb < MB; mb++)
#pragma unroll
        for (int i = 0; i < DB; i++) o[mb][i][0] = o[mb][i][1] = o[mb][i][2] = o[mb][i][3] = 0.0f;
    float row_m[2 * MB], row_l[2 * MB]; // running max (log2 units); this lane's share of the row sum
#pragma unroll
    for (int r = 0; r < 2 * MB; r++) { row_m[r] = -INFINITY; row_l[r] = 0.0f; }

    const int wrow = warp * 16 * MB;
    // Per-lane ldmatrix bases (see swz_at): Q as the A operand, K as B,
    // V as B through the transposing load.
    const uint32_t aQ = swz<DPAD>(sQ, wrow + (lane % 16), lane / 16);
    const uint32_t aK = swz<DPAD>(sK, (lane % 8) + (lane / 16) * 8, (lane / 8) % 2);
    const uint32_t aV = swz<DPAD>(sV, (lane % 8) + ((lane / 8) % 2) * 8, lane / 16);
    for (int j = tile_begin; j < tile_end; j++) {
        const int n0 = j * BN;
        cp_async_wait_all();
        __syncthreads(); // K[j] (and Q) in shared memory; V[j-1] no longer read
        load_v(n0);
        cp_async_commit();
        if (j + 1 < tile_end) fetch_blocks(n0 + BN); // blk: tile j + 1's from here on

        // S = Q K^T for this warp's rows.
        float s[MB][NB][4];
#pragma unroll
        for (int mb = 0; mb < MB; mb++)
#pragma unroll
            for (int i = 0; i < NB; i++) s[mb][i][0] = s[mb][i][1] = s[mb][i][2] = s[mb][i][3] = 0.0f;
#pragma unroll
        for (int ks = 0; ks < KS; ks++) {
            uint32_t a[MB][4];
#pragma unroll
            for (int mb = 0; mb < MB; mb++) ldmatrix_x4(a[mb], swz_at<DPAD>(aQ, mb * 16, ks * 2));
#pragma unroll
            for (int np = 0; np < NB / 2; np++) {
                uint32_t kb[4];
                ldmatrix_x4(kb, swz_at<DPAD>(aK, np * 16, ks * 2));
#pragma unroll
                for (int mb = 0; mb < MB; mb++) {
                    DType<T>::mma(s[mb][2 * np], a[mb], kb[0], kb[1]);
                    DType<T>::mma(s[mb][2 * np + 1], a[mb], kb[2], kb[3]);
                }
            }
        }
        // Issue K[j+1] as soon as every warp is done with K[j]: it then loads
        // under the softmax and P.V. V[j] must be in by now as well.
        cp_async_wait_all();
        __syncthreads();
        if (j + 1 < tile_end) load_k(n0 + BN);
        cp_async_commit();

        // Logits in log2 units: scale (or softcap), ALiBi, then masking with
        // -inf (and the bias), in the contract's order.
        if (kFeat && p.cap_out != 0.0f) { // uniform: softcap on for the whole launch
#pragma unroll
            for (int mb = 0; mb < MB; mb++)
#pragma unroll
                for (int nb = 0; nb < NB; nb++)
#pragma unroll
                    for (int e = 0; e < 4; e++)
                        s[mb][nb][e] = __fmul_rn(tanhf(__fmul_rn(s[mb][nb][e], cap_in)), p.cap_out);
        } else {
#pragma unroll
            for (int mb = 0; mb < MB; mb++)
#pragma unroll
                for (int nb = 0; nb < NB; nb++)
#pragma unroll
                    for (int e = 0; e < 4; e++) s[mb][nb][e] = __fmul_rn(s[mb][nb][e], scale_log2);
        }
        if (kFeat && p.alibi) { // uniform: ALiBi on for the whole launch
#pragma unroll
            for (int mb = 0; mb < MB; mb++)
#pragma unroll
                for (int hr = 0; hr < 2; hr++) {
                    // dist = j - (i + Lk - Lq) in int32: |dist| < max(Lq, Lk) for
                    // rows i < Lq (padding rows are clamped; they write nothing).
                    const int i = min(m0 + wrow + mb * 16 + g + hr * 8, lq - 1);
                    const int base = n0 + 2 * tig - (i + (lk - lq));
#pragma unroll
                    for (int nb = 0; nb < NB; nb++)
#pragma unroll
                        for (int c = 0; c < 2; c++) {
                            const float bias = __fmul_rn(slope, (float)(base + nb * 8 + c));
                            float &x = s[mb][nb][hr * 2 + c];
                            x = __fmaf_rn(bias, kLog2e, x);
                        }
                }
        }
        if ((kFeat && j < first_full) || j >= first_masked) {
            int64_t moff = 0;
            if (kMask)
                moff = p.mask_off[b] + (p.mask_per_head ? (int64_t)h * lq * lk : 0);
#pragma unroll
            for (int mb = 0; mb < MB; mb++)
#pragma unroll
                for (int hr = 0; hr < 2; hr++) {
                    const int i = m0 + wrow + mb * 16 + g + hr * 8;
                    int begin = 0, end;
                    if (kFeat) ac_key_range(p.causal, p.window_left, p.window_right, i, lq, lk, &begin, &end);
                    else end = ac_causal_end(p.causal, i, lq, lk);
#pragma unroll
                    for (int nb = 0; nb < NB; nb++)
#pragma unroll
                        for (int c = 0; c < 2; c++) {
                            const int col = n0 + nb * 8 + 2 * tig + c;
                            float &x = s[mb][nb][hr * 2 + c];
                            if (col >= end || (kFeat && col < begin) || i >= lq) {
                                x = -INFINITY;
                            } else if (kMask && p.mask_kind == AC_MASK_BOOL) {
                                if (!p.mask_bool[moff + (int64_t)i * lk + col]) x = -INFINITY;
                            } else if (kMask) {
                                x = __fmaf_rn(p.mask_bias[moff + (int64_t)i * lk + col], kLog2e, x);
                            }
                        }
                }
        }

        // Online softmax on rows g and g+8 (the 4 lanes of a quad share a row).
        uint32_t pf[MB][NB][2];
        bool rescale = false;
        float alpha[2 * MB];
#pragma unroll
        for (int mb = 0; mb < MB; mb++)
#pragma unroll
            for (int hr = 0; hr < 2; hr++) {
                const int r = 2 * mb + hr;
                float mx = -INFINITY;
#pragma unroll
                for (int nb = 0; nb < NB; nb++) mx = fmaxf(mx, fmaxf(s[mb][nb][hr * 2], s[mb][nb][hr * 2 + 1]));
                mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
                mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
                const float m_new = fmaxf(row_m[r], mx);
                const float m_use = m_new == -INFINITY ? 0.0f : m_new; // empty so far: no NaN from -inf - -inf
                alpha[r] = fast_exp2(__fsub_rn(row_m[r], m_use));
                rescale |= alpha[r] != 1.0f;
                float rs = 0.0f;
#pragma unroll
                for (int nb = 0; nb < NB; nb++) {
                    const float p0 = fast_exp2(__fsub_rn(s[mb][nb][hr * 2], m_use));
                    const float p1 = fast_exp2(__fsub_rn(s[mb][nb][hr * 2 + 1], m_use));
                    rs = __fadd_rn(rs, p0);
                    rs = __fadd_rn(rs, p1);
                    pf[mb][nb][hr] = DType<T>::pack(p0, p1); // P in the input dtype for P.V
                }
                row_l[r] = __fmaf_rn(row_l[r], alpha[r], rs);
                row_m[r] = m_new;
            }
        // Rescale O only when some row's max moved (alpha == 1 is exact identity),
        // decided per warp so the branch stays uniform.
        if (__any_sync(0xffffffffu, rescale)) {
#pragma unroll
            for (int mb = 0; mb < MB; mb++)
#pragma unroll
                for (int db = 0; db < DB; db++)
#pragma unroll
                    for (int e = 0; e < 4; e++) o[mb][db][e] = __fmul_rn(o[mb][db][e], alpha[2 * mb + e / 2]);
        }


        // O += P V: the S accumulator layout is the A-fragment layout of P.
#pragma unroll
        for (int kk = 0; kk < BN / 16; kk++) {
#pragma unroll
            for (int dp = 0; dp < DPAD / 16; dp++) {
                uint32_t vb[4];
                ldmatrix_x4_trans(vb, swz_at<DPAD>(aV, kk * 16, dp * 2));
#pragma unroll
                for (int mb = 0; mb < MB; mb++) {
                    const uint32_t a[4] = {pf[mb][2 * kk][0], pf[mb][2 * kk][1], pf[mb][2 * kk + 1][0],
                                           pf[mb][2 * kk + 1][1]};
                    DType<T>::mma(o[mb][2 * dp], a, vb[0], vb[1]);
                    DType<T>::mma(o[mb][2 * dp + 1], a, vb[2], vb[3]);
                }
            }
        }
    }
    cp_async_wait_all();

    // Epilogue: O / l in the input dtype, LSE in natural log; empty rows 0 / -inf.
    // A sink (finite) joins the denominator only: l' = l 2^(m - m') + 2^(sink log2 e - m')
    // with m' the larger of the two; an empty row then gives 0 / sink.
#pragma unroll
    for (int mb = 0; mb < MB; mb++)
#pragma unroll
        for (int hr = 0; hr < 2; hr++) {
            const int r = 2 * mb + hr;
            float l = row_l[r];
            l = __fadd_rn(l, __shfl_xor_sync(0xffffffffu, l, 1));
            l = __fadd_rn(l, __shfl_xor_sync(0xffffffffu, l, 2));
            const int i = m0 + wrow + mb * 16 + g + hr * 8;
            if (i >= lq) continue;
            const bool empty = row_m[r] == -INFINITY;
            float inv = empty ? 0.0f : 1.0f / l, lse_sink = sink;
            if (kFeat && sink != -INFINITY) { // uniform: one head per CTA
                if (!empty) {
                    const float ms = __fmul_rn(sink, kLog2e);
                    const float mn = fmaxf(row_m[r], ms);
                    const float a = fast_exp2(__fsub_rn(row_m[r], mn));
                    const float l2 = __fmaf_rn(l, a, fast_exp2(__fsub_rn(ms, mn)));
                    inv = __fmul_rn(a, 1.0f / l2);
                    lse_sink = __fmaf_rn(mn, kLn2, logf(l2));
                }
            }
            uint16_t *orow = p.out + ac_thd_offset((int64_t)q0 + i, h, p.hq, dv);
#pragma unroll
            for (int db = 0; db < DB; db++) {
                const int col = db * 8 + 2 * tig;
                if (col < dv) {
                    float x0 = empty ? 0.0f : __fmul_rn(o[mb][db][hr * 2], inv);
                    float x1 = empty ? 0.0f : __fmul_rn(o[mb][db][hr * 2 + 1], inv);
                    if (kKv8) { // v_scale on the fp32 output, before rounding
                        x0 = __fmul_rn(x0, v_scale);
                        x1 = __fmul_rn(x1, v_scale);
                    }
                    *reinterpret_cast<uint32_t *>(orow + col) = DType<T>::pack(x0, x1);
                }
            }
            if (p.lse && tig == 0)
                p.lse[((int64_t)q0 + i) * p.hq + h] = kFeat && sink != -INFINITY ? lse_sink
                                                      : empty ? -INFINITY : __fmaf_rn(row_m[r], kLn2, logf(l));
        }
}

template <typename T, int DPAD, bool kMask, bool kFeat, bool kKv8 = false>
cudaError_t launch_one(const KParams &kp, int m_tiles, int batch, cudaStream_t stream)
{
    constexpr int BM = Cfg<DPAD>::BM, BN = Cfg<DPAD>::BN;
    constexpr int smem = (BM + 2 * BN) * DPAD * 2;
    cudaError_t e = cudaFuncSetAttribute(prefill_kernel<T, DPAD, kMask, kFeat, kKv8>,
                                         cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
    if (e != cudaSuccess) return e;
    dim3 grid(m_tiles, kp.hq, batch);
    prefill_kernel<T, DPAD, kMask, kFeat, kKv8><<<grid, Cfg<DPAD>::kThreads, smem, stream>>>(kp);
    return cudaGetLastError();
}

template <typename T, int DPAD>
cudaError_t launch(const KParams &kp, bool feat, bool kv8, int m_tiles, int batch, cudaStream_t stream)
{
    if (kv8)
        return kp.mask_kind != AC_MASK_NONE ? launch_one<T, DPAD, true, true, true>(kp, m_tiles, batch, stream)
                                            : launch_one<T, DPAD, false, true, true>(kp, m_tiles, batch, stream);
    if (feat)
        return kp.mask_kind != AC_MASK_NONE ? launch_one<T, DPAD, true, true>(kp, m_tiles, batch, stream)
                                            : launch_one<T, DPAD, false, true>(kp, m_tiles, batch, stream);
    return kp.mask_kind != AC_MASK_NONE ? launch_one<T, DPAD, true, false>(kp, m_tiles, batch, stream)
                                        : launch_one<T, DPAD, false, false>(kp, m_tiles, batch, stream);
}

// The host tensors' FP8 holders (one uint16_t per element, the code in the
// low byte) packed into the kernel's byte tensors, on the device.
__global__ void pack_fp8_codes(const uint16_t *src, uint8_t *dst, int64_t n)
{
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        dst[i] = (uint8_t)(src[i] & 0xffu);
}

ac_status pack_codes(const void *src, uint8_t *dst, int64_t n, const char *name, ac_error *err)
{
    if (n <= 0) return AC_OK;
    const int64_t blocks = (n + 255) / 256;
    pack_fp8_codes<<<(unsigned)(blocks < 4096 ? blocks : 4096), 256>>>(static_cast<const uint16_t *>(src), dst, n);
    return ac_gpu_check(cudaGetLastError(), name, err);
}

} // namespace

extern "C" ac_status ac_prefill_launch(const ac_prefill_params *p, void *stream, ac_error *err)
{
    ac_status st = ac_prefill_validate(p, 1, err);
    if (st) return st;
    const int dpad = AC_PREFILL_DPAD_OF(p);
    const int bm = dpad == 64 ? Cfg<64>::BM : dpad == 128 ? Cfg<128>::BM : Cfg<256>::BM;
    int32_t max_lq = 0;
    for (int32_t b = 0; b < p->batch; b++) {
        const int32_t lq = p->h_cu_seqlens_q[b + 1] - p->h_cu_seqlens_q[b];
        if (lq > max_lq) max_lq = lq;
    }
    if (p->batch == 0 || max_lq == 0) return AC_OK; // nothing to compute, nothing launched
    const int m_tiles = ac_num_tiles(max_lq, bm);

    KParams kp;
    memset(&kp, 0, sizeof kp);
    kp.q = static_cast<const uint16_t *>(p->q);
    const bool kv8 = p->kv_format != AC_KV_AS_DTYPE;
    kp.k = kv8 ? nullptr : static_cast<const uint16_t *>(p->k);
    kp.v = kv8 ? nullptr : static_cast<const uint16_t *>(p->v);
    kp.k8 = kv8 ? static_cast<const uint8_t *>(p->k) : nullptr;
    kp.v8 = kv8 ? static_cast<const uint8_t *>(p->v) : nullptr;
    kp.out = static_cast<uint16_t *>(p->out);
    kp.lse = p->lse;
    kp.mask_bool = p->mask_bool;
    kp.mask_bias = p->mask_bias;
    kp.mask_off = p->d_mask_off;
    kp.cu_q = p->d_cu_seqlens_q;
    kp.cu_k = p->d_cu_seqlens_k;
    kp.block_table = p->d_block_table;
    kp.seqlens_k = p->d_seqlens_k;
    kp.hq = p->heads_q;
    kp.hkv = p->heads_kv;
    kp.d = p->head_dim;
    kp.dv = AC_PREFILL_DV(p);
    kp.paged = p->paged;
    kp.block_size = p->block_size;
    kp.block_shift = -1;
    for (int sh = 0; sh < 31; sh++)
        if (p->paged && (1 << sh) == p->block_size) kp.block_shift = sh;
    kp.max_blocks_per_seq = p->max_blocks_per_seq;
    kp.causal = p->causal;
    kp.mask_kind = p->mask_kind;
    kp.mask_per_head = p->mask_per_head;
    kp.scale_log2 = ac_prefill_scale(p) * kLog2e;
    kp.window_left = AC_PREFILL_WINDOW_LEFT(p);
    kp.window_right = AC_PREFILL_WINDOW_RIGHT(p);
    if (p->softcap > 0.0f) ac_prefill_softcap_factors(ac_prefill_scale(p), p->softcap, &kp.cap_in, &kp.cap_out);
    kp.alibi = p->h_alibi_slopes ? p->d_alibi_slopes : nullptr;
    kp.sinks = p->h_sinks ? p->d_sinks : nullptr;
    kp.kv_format = p->kv_format;
    kp.n_scales = p->n_kv_scales;
    kp.k_scales = p->n_kv_scales ? p->d_k_scales : nullptr;
    kp.v_scales = p->n_kv_scales ? p->d_v_scales : nullptr;
    kp.scale = ac_prefill_scale(p);
    kp.softcap = p->softcap;
    // Any feature, D_v != D_qk included, runs the kFeat instantiation: the
    // feature-free one keeps D_v = D_qk at compile time (costs nothing when off).
    const bool feat = ac_prefill_features(p) != 0;

    cudaStream_t s = static_cast<cudaStream_t>(stream);
    cudaError_t e;
    const bool bf = p->dtype == AC_BF16;
    if (dpad == 64) e = bf ? launch<__nv_bfloat16, 64>(kp, feat, kv8, m_tiles, p->batch, s) : launch<__half, 64>(kp, feat, kv8, m_tiles, p->batch, s);
    else if (dpad == 128) e = bf ? launch<__nv_bfloat16, 128>(kp, feat, kv8, m_tiles, p->batch, s) : launch<__half, 128>(kp, feat, kv8, m_tiles, p->batch, s);
    else e = bf ? launch<__nv_bfloat16, 256>(kp, feat, kv8, m_tiles, p->batch, s) : launch<__half, 256>(kp, feat, kv8, m_tiles, p->batch, s);
    if (e != cudaSuccess) return ac_fail(err, AC_ERR_CUDA, "prefill launch (D=%d, D_v=%d): %s", p->head_dim, AC_PREFILL_DV(p),
                                           cudaGetErrorString(e));
    return AC_OK;
}

// The GPU backend entry: params from the case, validation before any device
// work, device copies of the inputs and poisoned outputs, launch, download.
extern "C" ac_status ac_gpu_prefill(const ac_case *c, const ac_tensors *t, const ac_run_opts *o, ac_outputs *out,
                                    ac_error *err)
{
    if (!out) return ac_fail(err, AC_ERR_NULL, "outputs is NULL");
    if (o && o->bug != AC_BUG_NONE)
        return ac_fail(err, AC_ERR_UNSUPPORTED, "bug = %s: not injectable into the prefill kernel (CPU model only)",
                       ac_bug_name(o->bug));
    ac_prefill_params hp;
    ac_status st = ac_prefill_params_from_case(c, t, out, &hp, err);
    if (st) return st;
    if ((st = ac_prefill_validate(&hp, 0, err))) return st; // bad input: no device work at all
    if ((st = ac_prefill_kernel_dims(&hp, err))) return st;  // e.g. 576/512: the model only

    const int32_t dv = AC_PREFILL_DV(&hp);
    const size_t q_bytes = (size_t)hp.total_q * hp.heads_q * hp.head_dim * 2;
    const size_t o_bytes = (size_t)hp.total_q * hp.heads_q * dv * 2;
    const size_t lse_bytes = (size_t)hp.total_q * hp.heads_q * sizeof(float);
    const int64_t kv_rows = (hp.paged ? (int64_t)hp.num_blocks * hp.block_size : hp.total_k) * hp.heads_kv;
    const int64_t k_elems = kv_rows * hp.head_dim, v_elems = kv_rows * dv;
    const size_t b1 = (size_t)hp.batch + 1;
    const bool kv8 = hp.kv_format != AC_KV_AS_DTYPE;
    ac_gpu_bufs bufs = {};
    ac_prefill_params dp = hp; // same sizes and host metadata, device data
    void *d_q = 0, *d_k = 0, *d_v = 0, *d_o = 0, *d_lse = 0, *d_cuq = 0, *d_cuk = 0, *d_tab = 0, *d_sk = 0,
         *d_mask = 0, *d_moff = 0, *d_alibi = 0, *d_sinks = 0, *d_kv8 = 0, *d_scales = 0;
    AC_GPU_STEP(ac_gpu_upload(&bufs, &d_q, hp.q, q_bytes, "q", err));
    if (hp.paged) { // a sparse pool costs the host and the copy only its touched blocks
        // The pool helper sizes a pool by the case's head_dim: V's pool is
        // that of a case whose head_dim is D_v (same blocks, same table).
        ac_case cv = *c;
        cv.head_dim = dv;
        AC_GPU_STEP(ac_gpu_upload_pool(&bufs, &d_k, c, (const uint16_t *)hp.k, "k", err));
        AC_GPU_STEP(ac_gpu_upload_pool(&bufs, &d_v, &cv, (const uint16_t *)hp.v, "v", err));
    } else {
        AC_GPU_STEP(ac_gpu_upload(&bufs, &d_k, hp.k, (size_t)k_elems * 2, "k", err));
        AC_GPU_STEP(ac_gpu_upload(&bufs, &d_v, hp.v, (size_t)v_elems * 2, "v", err));
    }
    if (kv8) {
        // One byte tensor for both: k's codes, then v's at a 16-byte boundary.
        const size_t v_at = ((size_t)k_elems + 15) & ~(size_t)15;
        AC_GPU_STEP(ac_gpu_alloc(&bufs, &d_kv8, v_at + (size_t)v_elems, "k/v fp8 codes", err));
        AC_GPU_STEP(pack_codes(d_k, (uint8_t *)d_kv8, k_elems, "pack k codes", err));
        AC_GPU_STEP(pack_codes(d_v, (uint8_t *)d_kv8 + v_at, v_elems, "pack v codes", err));
        d_k = d_kv8;
        d_v = (uint8_t *)d_kv8 + v_at;
        if (hp.n_kv_scales > 0) { // k_scales then v_scales in one buffer
            const size_t n = (size_t)hp.n_kv_scales;
            AC_GPU_STEP(ac_gpu_alloc(&bufs, &d_scales, 2 * n * sizeof(float), "kv scales", err));
            AC_GPU_STEP(ac_gpu_check(cudaMemcpy(d_scales, hp.h_k_scales, n * sizeof(float), cudaMemcpyHostToDevice),
                                     "k_scales", err));
            AC_GPU_STEP(ac_gpu_check(cudaMemcpy((float *)d_scales + n, hp.h_v_scales, n * sizeof(float),
                                                cudaMemcpyHostToDevice), "v_scales", err));
            dp.d_k_scales = (const float *)d_scales;
            dp.d_v_scales = (const float *)d_scales + n;
        }
    }
    AC_GPU_STEP(ac_gpu_alloc_poisoned(&bufs, &d_o, o_bytes, "out", err));
    AC_GPU_STEP(ac_gpu_alloc_poisoned(&bufs, &d_lse, lse_bytes, "lse", err));
    AC_GPU_STEP(ac_gpu_upload(&bufs, &d_cuq, hp.h_cu_seqlens_q, b1 * 4, "cu_seqlens_q", err));
    if (hp.paged) {
        AC_GPU_STEP(ac_gpu_upload(&bufs, &d_tab, hp.h_block_table, (size_t)hp.batch * hp.max_blocks_per_seq * 4,
                                  "block_table", err));
        AC_GPU_STEP(ac_gpu_upload(&bufs, &d_sk, hp.h_seqlens_k, (size_t)hp.batch * 4, "seqlens_k", err));
    } else {
        AC_GPU_STEP(ac_gpu_upload(&bufs, &d_cuk, hp.h_cu_seqlens_k, b1 * 4, "cu_seqlens_k", err));
    }
    if (hp.mask_kind != AC_MASK_NONE) {
        const bool is_bool = hp.mask_kind == AC_MASK_BOOL;
        const size_t mbytes = (size_t)hp.mask_elems * (is_bool ? 1 : sizeof(float));
        AC_GPU_STEP(ac_gpu_upload(&bufs, &d_mask, is_bool ? (const void *)hp.mask_bool : (const void *)hp.mask_bias,
                                  mbytes, "mask", err));
        AC_GPU_STEP(ac_gpu_upload(&bufs, &d_moff, hp.h_mask_off, (size_t)hp.batch * 8, "mask_off", err));
        dp.mask_bool = is_bool ? (const uint8_t *)d_mask : NULL;
        dp.mask_bias = is_bool ? NULL : (const float *)d_mask;
    }
    if (hp.h_alibi_slopes)
        AC_GPU_STEP(ac_gpu_upload(&bufs, &d_alibi, hp.h_alibi_slopes, (size_t)hp.heads_q * sizeof(float),
                                  "alibi_slopes", err));
    if (hp.h_sinks)
        AC_GPU_STEP(ac_gpu_upload(&bufs, &d_sinks, hp.h_sinks, (size_t)hp.heads_q * sizeof(float), "sinks", err));
    dp.d_alibi_slopes = (const float *)d_alibi;
    dp.d_sinks = (const float *)d_sinks;
    dp.q = d_q;
    dp.k = d_k;
    dp.v = d_v;
    dp.out = d_o;
    dp.lse = (float *)d_lse;
    dp.d_cu_seqlens_q = (const int32_t *)d_cuq;
    dp.d_cu_seqlens_k = (const int32_t *)d_cuk;
    dp.d_block_table = (const int32_t *)d_tab;
    dp.d_seqlens_k = (const int32_t *)d_sk;
    dp.d_mask_off = (const int64_t *)d_moff;
    AC_GPU_STEP(ac_prefill_launch(&dp, NULL, err));
    AC_GPU_STEP(ac_gpu_sync("prefill kernel", err));
    AC_GPU_STEP(ac_gpu_download(out->o, d_o, o_bytes, "out", err));
    AC_GPU_STEP(ac_gpu_download(out->lse, d_lse, lse_bytes, "lse", err));
    if (o && o->out_f32 && out->o_f32) {
        const int64_t n = hp.total_q * hp.heads_q * dv;
        for (int64_t i = 0; i < n; i++) out->o_f32[i] = ac_half_to_f32(c->dtype, out->o[i]);
    }
done:
    ac_gpu_free_all(&bufs);
    return st;
}
