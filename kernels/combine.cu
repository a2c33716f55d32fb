// Split-KV combine (CPU model: combine_model.c). One CTA per (query, head)
// row: block reductions give M = max LSE_s and L = sum exp(LSE_s - M) over the
// non-empty splits; each thread then sums (w_s / L) * O_s over the splits in
// order for its elements of D. An empty split (LSE_s = -inf) is skipped
// before its O_s is read, so garbage or NaN there never reaches the output.
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

constexpr int COMBINE_THREADS = 128;

struct combine_args {
    const float *o_part, *lse_part;
    uint16_t *o;
    float *o_f32, *lse;
    int32_t num_splits, d;
    ac_dtype dtype;
    const float *sinks;  // decode's final combine: [sink_heads] or NULL
    int32_t sink_heads;
};

__device__ float block_reduce(float v, bool is_max, float *scratch)
{
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
        float w = __shfl_xor_sync(0xffffffffu, v, o);
        v = is_max ? fmaxf(v, w) : v + w;
    }
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    __syncthreads(); // scratch may still be read by a previous reduction
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    v = scratch[0];
    for (int w = 1; w < COMBINE_THREADS / 32; w++) v = is_max ? fmaxf(v, scratch[w]) : v + scratch[w];
    return v;
}

__global__ void __launch_bounds__(COMBINE_THREADS) combine_kernel(const combine_args a)
{
    extern __shared__ float sm_w[]; // [S] weight w_s / L, or -1: empty split, skip
    __shared__ float scratch[COMBINE_THREADS / 32];
    const int64_t row = blockIdx.x;
    const int32_t S = a.num_splits, d = a.d;
    const float *lse_s = a.lse_part + row * S;
    const float *o_s = a.o_part + row * S * (int64_t)d;

    const float sink = a.sinks ? a.sinks[row % a.sink_heads] : -INFINITY; // uniform: one load per row
    float m = -INFINITY;
    for (int s = threadIdx.x; s < S; s += blockDim.x) m = fmaxf(m, lse_s[s]);
    m = block_reduce(m, true, scratch);
    if (sink != -INFINITY) m = fmaxf(m, sink); // guarded: without a sink, m is exactly what it was
    if (m == -INFINITY) { // every split empty
        for (int e = threadIdx.x; e < d; e += blockDim.x) {
            if (a.o) a.o[row * d + e] = ac_from_f32(a.dtype, 0.0f);
            if (a.o_f32) a.o_f32[row * d + e] = 0.0f;
        }
        if (threadIdx.x == 0 && a.lse) a.lse[row] = -INFINITY;
        return;
    }
    float l = 0.0f;
    for (int s = threadIdx.x; s < S; s += blockDim.x)
        if (lse_s[s] != -INFINITY) l += expf(lse_s[s] - m);
    l = block_reduce(l, false, scratch);
    if (sink != -INFINITY) l += expf(sink - m); // the denominator only, after the splits' sum (as the model)
    for (int s = threadIdx.x; s < S; s += blockDim.x)
        sm_w[s] = lse_s[s] == -INFINITY ? -1.0f : __fdiv_rn(expf(lse_s[s] - m), l);
    if (threadIdx.x < 4) sm_w[S + threadIdx.x] = -1.0f; // the padding: defined, and "skip"
    __syncthreads();
    for (int e = threadIdx.x; e < d; e += blockDim.x) {
        float acc = 0.0f;
        for (int s = 0; s < S; s++) {
            const float w = sm_w[s];
            if (w < 0.0f) continue; // empty split: its O_s is never read
            acc = __fadd_rn(acc, __fmul_rn(w, o_s[(int64_t)s * d + e])); // no fma: as the model
        }
        if (a.o) a.o[row * d + e] = ac_from_f32(a.dtype, acc);
        if (a.o_f32) a.o_f32[row * d + e] = acc;
    }
    if (threadIdx.x == 0 && a.lse) a.lse[row] = m + logf(l);
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
    a.num_splits = p->num_splits;
    a.d = p->head_dim;
    a.dtype = p->dtype;
    a.sinks = p->sinks;
    a.sink_heads = p->sink_heads;
    // <= 16 KiB for AC_MAX_SPLITS. 4 floats of padding: compute-sanitizer saw the
    // compiled split loop read up to 3 floats past S in one access (values unused).
    const size_t smem = sizeof(float) * ((size_t)p->num_splits + 4);
    combine_kernel<<<(unsigned)p->rows, COMBINE_THREADS, smem, (cudaStream_t)stream>>>(a);
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
