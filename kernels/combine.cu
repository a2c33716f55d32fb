// Split-KV combine (CPU model: combine_model.c). One CTA per (query, head)
// row: block reductions give M = max LSE_s and L = sum exp(LSE_s - M) over the
// non-empty splits; each thread then sums (w_s / L) * O_s over the splits in
// order for its elements of D. An empty split (LSE_s = -inf) is skipped
// before its O_s is read, so garbage or NaN there never reaches the output.
#include <math.h>

#include "ac_backend.h"
#include "attn_decode.h"
#include "decode_cuda.cuh"

namespace {

constexpr int COMBINE_THREADS = 128;

struct combine_args {
    const float *o_part, *lse_part;
    uint16_t *o;
    float *o_f32, *lse;
    int32_t num_splits, d;
    ac_dtype dtype;
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

    float m = -INFINITY;
    for (int s = threadIdx.x; s < S; s += blockDim.x) m = fmaxf(m, lse_s[s]);
    m = block_reduce(m, true, scratch);
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

extern "C" ac_status ac_attn_combine(const ac_combine_params *p, void *stream, ac_error *err)
{
    ac_status st = ac_attn_combine_validate(p, err);
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
    // <= 16 KiB for AC_MAX_SPLITS. 4 floats of padding: compute-sanitizer saw the
    // compiled split loop read up to 3 floats past S in one access (values unused).
    const size_t smem = sizeof(float) * ((size_t)p->num_splits + 4);
    combine_kernel<<<(unsigned)p->rows, COMBINE_THREADS, smem, (cudaStream_t)stream>>>(a);
    AC_CUDA_LAUNCHED("combine_kernel");
    return AC_OK;
}

extern "C" ac_status ac_gpu_combine(const ac_case *c, const ac_tensors *t, const ac_run_opts *o, ac_outputs *out,
                                    ac_error *err)
{
    (void)o;
    const int64_t rows = ac_case_total_q(c) * c->heads_q;
    ac_combine_params p = {c->dtype, rows, c->num_splits, c->head_dim, t->o_part, t->lse_part, out->o,
                           out->o_f32, out->lse};
    ac_status st = ac_attn_combine_validate(&p, err); // host pointers: checks before any upload
    if (st) return st;
    const size_t S = (size_t)c->num_splits, d = (size_t)c->head_dim;
    ac_dev_bufs bufs = {};
    void *dop, *dlp, *doh, *dof, *dl;
#define STEP(x) do { st = (x); if (st) goto done; } while (0)
#define CUDA_STEP(call) do { cudaError_t e_ = (call); if (e_ != cudaSuccess) { \
        st = ac_fail(err, AC_ERR_CUDA, "%s: %s", #call, cudaGetErrorString(e_)); goto done; } } while (0)
    STEP(ac_dev_upload(&bufs, &dop, t->o_part, (size_t)rows * S * d * 4, "o_part", err));
    STEP(ac_dev_upload(&bufs, &dlp, t->lse_part, (size_t)rows * S * 4, "lse_part", err));
    STEP(ac_dev_alloc(&bufs, &doh, (size_t)rows * d * 2, "o", err));
    STEP(ac_dev_alloc(&bufs, &dof, (size_t)rows * d * 4, "o_f32", err));
    STEP(ac_dev_alloc(&bufs, &dl, (size_t)rows * 4, "lse", err));
    CUDA_STEP(cudaMemset(doh, 0xFF, (size_t)rows * d * 2));
    CUDA_STEP(cudaMemset(dof, 0xFF, (size_t)rows * d * 4));
    CUDA_STEP(cudaMemset(dl, 0xFF, (size_t)rows * 4));
    p.o_part = (const float *)dop;
    p.lse_part = (const float *)dlp;
    p.o = doh;
    p.o_f32 = (float *)dof;
    p.lse = (float *)dl;
    STEP(ac_attn_combine(&p, NULL, err));
    CUDA_STEP(cudaDeviceSynchronize());
    CUDA_STEP(cudaMemcpy(out->o, doh, (size_t)rows * d * 2, cudaMemcpyDeviceToHost));
    CUDA_STEP(cudaMemcpy(out->o_f32, dof, (size_t)rows * d * 4, cudaMemcpyDeviceToHost));
    CUDA_STEP(cudaMemcpy(out->lse, dl, (size_t)rows * 4, cudaMemcpyDeviceToHost));
#undef STEP
#undef CUDA_STEP
done:
    ac_dev_free_all(&bufs);
    return st;
}
