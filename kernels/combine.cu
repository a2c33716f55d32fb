// Split-KV combine (CPU model: combine_model.c). One warp per (query, head)
// row, COMBINE_WARPS rows a CTA: warp reductions give M = max LSE_s and
// L = sum exp(LSE_s - M) over the non-empty splits; each lane then sums
// (w_s / L) * O_s over the splits in order for its 4 elements of D (one
// 16-byte load a split; 1 element when D is not a multiple of 4 or o_part
// is not 16-byte aligned). An empty split (LSE_s = -inf) is skipped before
// its O_s is read, so garbage or NaN there never reaches the output.
//
// Loads in flight: the weights of 32 splits are computed once (a lane each)
// and passed by shuffle, and a lane issues the O_s loads of COMBINE_UNROLL
// splits before adding them in split order. (One CTA of 128 threads a row,
// one load in flight a thread and two block reductions left the combine at
// 32% of the copy bandwidth: docs/PERF.md.)
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <math.h>

#include "combine.h"
#include "gpu_buffers.cuh"

namespace {

// One fp32 -> storage element, round to nearest even.
__device__ __forceinline__ uint16_t ac_from_f32(ac_dtype t, float f)
{
    if (t == AC_BF16) {
        __nv_bfloat16 h = __float2bfloat16_rn(f);
        return *reinterpret_cast<uint16_t *>(&h);
    }
    __half h = __float2half_rn(f);
    return *reinterpret_cast<uint16_t *>(&h);
}

constexpr int COMBINE_WARPS = 4;  // rows a CTA, one warp each
constexpr int COMBINE_UNROLL = 8; // splits whose O_s loads a lane issues at once (16: 168 registers, 3 CTAs an SM, slower at 16 splits)

struct combine_args {
    const float *o_part, *lse_part;
    uint16_t *o;
    float *o_f32, *lse;
    int64_t rows;
    int32_t num_splits, d;
    ac_dtype dtype;
    const float *sinks;  // decode's final combine: [sink_heads] or NULL
    int32_t sink_heads;
};

__device__ __forceinline__ float warp_max(float v)
{
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}
__device__ __forceinline__ float warp_sum(float v)
{
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

// VEC elements of D a lane (4: one float4 a split, or 1).
template <int VEC>
__global__ void __launch_bounds__(COMBINE_WARPS * 32) combine_kernel(const combine_args a)
{
    const int lane = threadIdx.x & 31;
    const int64_t row = (int64_t)blockIdx.x * COMBINE_WARPS + (threadIdx.x >> 5);
    if (row >= a.rows) return; // a whole warp: the shuffles below stay warp-uniform
    const int32_t S = a.num_splits, d = a.d;
    const float *lse_s = a.lse_part + row * S;
    const float *o_s = a.o_part + row * S * (int64_t)d;

    const float sink = a.sinks ? a.sinks[row % a.sink_heads] : -INFINITY; // uniform: one load per row
    float m = -INFINITY;
    for (int s = lane; s < S; s += 32) m = fmaxf(m, lse_s[s]);
    m = warp_max(m);
    if (sink != -INFINITY) m = fmaxf(m, sink); // guarded: without a sink, m is exactly what it was
    if (m == -INFINITY) { // every split empty
        for (int e = lane; e < d; e += 32) {
            if (a.o) a.o[row * d + e] = ac_from_f32(a.dtype, 0.0f);
            if (a.o_f32) a.o_f32[row * d + e] = 0.0f;
        }
        if (lane == 0 && a.lse) a.lse[row] = -INFINITY;
        return;
    }
    float l = 0.0f;
    for (int s = lane; s < S; s += 32)
        if (lse_s[s] != -INFINITY) l += expf(lse_s[s] - m);
    l = warp_sum(l);
    if (sink != -INFINITY) l += expf(sink - m); // the denominator only, after the splits' sum (as the model)

    // Slices of 32 * VEC elements; every lane runs every slice (shuffles), a
    // lane past D loads and stores nothing.
    for (int base = 0; base < d; base += 32 * VEC) {
        const int e0 = base + lane * VEC;
        const bool on = e0 < d;
        float acc[VEC];
#pragma unroll
        for (int k = 0; k < VEC; k++) acc[k] = 0.0f;
        for (int s0 = 0; s0 < S; s0 += 32) {
            // Split s0 + lane's weight, or -1: empty (or past S), skip.
            const float ls = s0 + lane < S ? lse_s[s0 + lane] : -INFINITY;
            const float wl = ls == -INFINITY ? -1.0f : __fdiv_rn(expf(ls - m), l);
            const int n = S - s0 < 32 ? S - s0 : 32;
            for (int j0 = 0; j0 < n; j0 += COMBINE_UNROLL) {
                float w[COMBINE_UNROLL], v[COMBINE_UNROLL][VEC];
#pragma unroll
                for (int j = 0; j < COMBINE_UNROLL; j++) {
                    w[j] = __shfl_sync(0xffffffffu, wl, (j0 + j) & 31);
                    if (j0 + j >= n) w[j] = -1.0f;
                    const float *src = o_s + (int64_t)(s0 + j0 + j) * d + e0;
                    if (w[j] < 0.0f || !on) { // empty split: its O_s is never read
#pragma unroll
                        for (int k = 0; k < VEC; k++) v[j][k] = 0.0f;
                    } else if (VEC == 4) {
                        const float4 f = *reinterpret_cast<const float4 *>(src);
                        v[j][0] = f.x, v[j][1] = f.y, v[j][2] = f.z, v[j][3] = f.w;
                    } else {
                        v[j][0] = *src;
                    }
                }
#pragma unroll
                for (int j = 0; j < COMBINE_UNROLL; j++) {
                    if (w[j] < 0.0f) continue;
#pragma unroll
                    for (int k = 0; k < VEC; k++) acc[k] = __fadd_rn(acc[k], __fmul_rn(w[j], v[j][k])); // no fma: as the model
                }
            }
        }
        if (!on) continue;
#pragma unroll
        for (int k = 0; k < VEC; k++) {
            if (a.o) a.o[row * d + e0 + k] = ac_from_f32(a.dtype, acc[k]);
            if (a.o_f32) a.o_f32[row * d + e0 + k] = acc[k];
        }
    }
    if (lane == 0 && a.lse) a.lse[row] = m + logf(l);
}

} // namespace

extern "C" ac_status ac_combine_launch(const ac_combine_params *p, void *stream, ac_error *err)
{
    ac_status st = ac_combine_validate(p, err);
    if (st) return st;
    if (p->rows == 0) return AC_OK;
    combine_args a;
    a.o_part = p->o_part;
    a.lse_part = p->lse_part;
    a.o = (uint16_t *)p->o;
    a.o_f32 = p->o_f32;
    a.lse = p->lse;
    a.rows = p->rows;
    a.num_splits = p->num_splits;
    a.d = p->head_dim;
    a.dtype = p->dtype;
    a.sinks = p->sinks;
    a.sink_heads = p->sink_heads;
    const int64_t grid = (p->rows + COMBINE_WARPS - 1) / COMBINE_WARPS;
    // A lane's 4 elements are one 16-byte load when every O_s row starts 16-byte aligned.
    if (p->head_dim % 4 == 0 && (uintptr_t)p->o_part % 16 == 0)
        combine_kernel<4><<<(unsigned)grid, COMBINE_WARPS * 32, 0, (cudaStream_t)stream>>>(a);
    else
        combine_kernel<1><<<(unsigned)grid, COMBINE_WARPS * 32, 0, (cudaStream_t)stream>>>(a);
    AC_CUDA_LAUNCHED("combine_kernel");
    return AC_OK;
}

// The GPU backend entry: params from the case, validation before any device
// work, device copies of the inputs and poisoned outputs, launch, download.
extern "C" ac_status ac_gpu_combine(const ac_case *c, const ac_tensors *t, const ac_run_opts *o, ac_outputs *out,
                                    ac_error *err)
{
    (void)o;
    ac_combine_params p;
    ac_status st = ac_combine_params_from_case(c, t, out, &p, err);
    if (st) return st;
    if ((st = ac_combine_validate(&p, err))) return st; // host pointers: checks before any upload
    const int64_t rows = p.rows;
    const size_t S = (size_t)c->num_splits, d = (size_t)c->head_dim;
    ac_gpu_bufs bufs = {};
    void *dop, *dlp, *doh, *dof, *dl;
    AC_GPU_STEP(ac_gpu_upload(&bufs, &dop, t->o_part, (size_t)rows * S * d * 4, "o_part", err));
    AC_GPU_STEP(ac_gpu_upload(&bufs, &dlp, t->lse_part, (size_t)rows * S * 4, "lse_part", err));
    AC_GPU_STEP(ac_gpu_alloc_poisoned(&bufs, &doh, (size_t)rows * d * 2, "o", err));
    AC_GPU_STEP(ac_gpu_alloc_poisoned(&bufs, &dof, (size_t)rows * d * 4, "o_f32", err));
    AC_GPU_STEP(ac_gpu_alloc_poisoned(&bufs, &dl, (size_t)rows * 4, "lse", err));
    p.o_part = (const float *)dop;
    p.lse_part = (const float *)dlp;
    p.o = doh;
    p.o_f32 = (float *)dof;
    p.lse = (float *)dl;
    AC_GPU_STEP(ac_combine_launch(&p, NULL, err));
    AC_GPU_STEP(ac_gpu_sync("combine kernel", err));
    AC_GPU_STEP(ac_gpu_download(out->o, doh, (size_t)rows * d * 2, "o", err));
    AC_GPU_STEP(ac_gpu_download(out->o_f32, dof, (size_t)rows * d * 4, "o_f32", err));
    AC_GPU_STEP(ac_gpu_download(out->lse, dl, (size_t)rows * 4, "lse", err));
done:
    ac_gpu_free_all(&bufs);
    return st;
}
