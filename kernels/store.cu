// KV store through a slot mapping (CPU model: store_model.c). A thread copies
// 8 elements (16 bytes) of K and of V of one token to its slot; a slot's
// Hkv * D elements are contiguous in the NHD cache, so a token is one
// contiguous row on both sides. Rows whose length is not a multiple of 8
// take the element-wise kernel. Padding (-1) is skipped; collisions and
// out-of-range slots were rejected on the host before the launch.
//
// D_v != D_qk or an FP8 cache (docs/DECODE.md, "FP8 KV and D_v"): K and V
// each get a launch of store_tensor_kernel with their own row; with FP8 each
// element is quantised as the model's ac_fp8_quantize: fl32(x / s) (IEEE
// division: __fdiv_rn, whatever the flags), __nv_cvt_float_to_fp8 with
// __NV_SATFINITE, NaN written as the one code S.1111111 the model writes.
// A cache in the dtype with D_v == D_qk takes store_kernel as before.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>

#include "gpu_buffers.cuh"
#include "store.h"

namespace {

template <typename IDX, int VEC>
__global__ void store_kernel(const uint16_t *__restrict__ k_new, const uint16_t *__restrict__ v_new,
                             uint16_t *__restrict__ k_cache, uint16_t *__restrict__ v_cache,
                             const IDX *__restrict__ slots, int64_t num_tokens, int64_t row)
{
    const int64_t chunks = row / VEC; // per token
    const int64_t n = num_tokens * chunks;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        const int64_t t = i / chunks, ch = i - t * chunks;
        const int64_t slot = (int64_t)slots[t];
        if (slot < 0) continue; // -1: padding
        const int64_t src = t * row + ch * VEC, dst = slot * row + ch * VEC; // ac_cache_offset(slot, 0, ..)
        if (VEC == 8) {
            *reinterpret_cast<uint4 *>(k_cache + dst) = *reinterpret_cast<const uint4 *>(k_new + src);
            *reinterpret_cast<uint4 *>(v_cache + dst) = *reinterpret_cast<const uint4 *>(v_new + src);
        } else {
            k_cache[dst] = k_new[src];
            v_cache[dst] = v_new[src];
        }
    }
}

// One tensor (K or V) of a D_v / FP8 store: element e of token t's row
// (row = Hkv * dim) to slot * row + e. FMT: 0 copy (16-bit), else the FP8
// format; BF16: the new rows' dtype. scales: [n_scales] (n 0: scale 1).
template <typename IDX, int FMT, bool BF16>
__global__ void store_tensor_kernel(const uint16_t *__restrict__ src, void *__restrict__ cache,
                                    const IDX *__restrict__ slots, int64_t num_tokens, int64_t row, int32_t dim,
                                    const float *__restrict__ scales, int32_t n_scales)
{
    const int64_t n = num_tokens * row;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        const int64_t t = i / row, e = i - t * row;
        const int64_t slot = (int64_t)slots[t];
        if (slot < 0) continue; // -1: padding
        const int64_t dst = slot * row + e; // ac_cache_offset(slot, e / dim, Hkv, dim) + e % dim
        if (FMT == 0) {
            static_cast<uint16_t *>(cache)[dst] = src[i];
            continue;
        }
        const uint16_t bits = src[i];
        const float x = BF16 ? __uint_as_float((uint32_t)bits << 16)
                             : __half2float(__ushort_as_half((unsigned short)bits));
        const int32_t g = (int32_t)(e / dim);
        const float s = n_scales <= 0 ? 1.0f : scales[n_scales == 1 ? 0 : g];
        const float y = __fdiv_rn(x, s);
        uint8_t code;
        if (isnan(y)) // one NaN code for every NaN, as ac_f32_to_fp8 (the conversion may pick another)
            code = (uint8_t)((__float_as_uint(y) >> 24 & 0x80u) | 0x7fu);
        else
            code = (uint8_t)__nv_cvt_float_to_fp8(y, __NV_SATFINITE, FMT == 1 ? __NV_E4M3 : __NV_E5M2);
        static_cast<uint8_t *>(cache)[dst] = code;
    }
}

template <typename IDX, int FMT>
void launch_tensor(const ac_store_params *p, const void *src, void *cache, int32_t dim, const float *scales,
                   cudaStream_t stream)
{
    const int64_t row = (int64_t)p->heads_kv * dim;
    const int64_t work = (int64_t)p->num_tokens * row;
    const int threads = 256;
    int64_t blocks = (work + threads - 1) / threads;
    if (blocks > 65535L * 32) blocks = 65535L * 32; // grid-stride beyond this
    if (blocks < 1) blocks = 1;
    const IDX *sl = (const IDX *)p->slot_mapping;
    if (p->dtype == AC_BF16)
        store_tensor_kernel<IDX, FMT, true><<<(unsigned)blocks, threads, 0, stream>>>(
            (const uint16_t *)src, cache, sl, p->num_tokens, row, dim, scales, p->n_kv_scales);
    else
        store_tensor_kernel<IDX, FMT, false><<<(unsigned)blocks, threads, 0, stream>>>(
            (const uint16_t *)src, cache, sl, p->num_tokens, row, dim, scales, p->n_kv_scales);
}

template <typename IDX>
void launch_kv(const ac_store_params *p, cudaStream_t stream)
{
    const int32_t dk = p->head_dim, dv = ac_store_dv(p);
    switch (p->kv_format) {
    case AC_KV_E4M3:
        launch_tensor<IDX, 1>(p, p->k_new, p->k_cache, dk, p->k_scales, stream);
        launch_tensor<IDX, 1>(p, p->v_new, p->v_cache, dv, p->v_scales, stream);
        break;
    case AC_KV_E5M2:
        launch_tensor<IDX, 2>(p, p->k_new, p->k_cache, dk, p->k_scales, stream);
        launch_tensor<IDX, 2>(p, p->v_new, p->v_cache, dv, p->v_scales, stream);
        break;
    default:
        launch_tensor<IDX, 0>(p, p->k_new, p->k_cache, dk, NULL, stream);
        launch_tensor<IDX, 0>(p, p->v_new, p->v_cache, dv, NULL, stream);
        break;
    }
}

template <typename IDX>
void launch(const ac_store_params *p, int vec, cudaStream_t stream)
{
    const int64_t row = (int64_t)p->heads_kv * p->head_dim;
    const int64_t work = (int64_t)p->num_tokens * (vec ? row / 8 : row);
    const int threads = 256;
    int64_t blocks = (work + threads - 1) / threads;
    if (blocks > 65535L * 32) blocks = 65535L * 32; // grid-stride beyond this
    const uint16_t *kn = (const uint16_t *)p->k_new, *vn = (const uint16_t *)p->v_new;
    uint16_t *kc = (uint16_t *)p->k_cache, *vc = (uint16_t *)p->v_cache;
    const IDX *sl = (const IDX *)p->slot_mapping;
    if (vec)
        store_kernel<IDX, 8><<<(unsigned)blocks, threads, 0, stream>>>(kn, vn, kc, vc, sl, p->num_tokens, row);
    else
        store_kernel<IDX, 1><<<(unsigned)blocks, threads, 0, stream>>>(kn, vn, kc, vc, sl, p->num_tokens, row);
}

} // namespace

extern "C" ac_status ac_store_launch(const ac_store_params *p, void *stream, ac_error *err)
{
    ac_status st = ac_store_validate(p, err);
    if (st) return st;
    if (p->num_tokens == 0) return AC_OK;
    if (p->kv_format != AC_KV_AS_DTYPE || ac_store_dv(p) != p->head_dim) {
        if (p->slot_mapping_i64)
            launch_kv<int64_t>(p, (cudaStream_t)stream);
        else
            launch_kv<int32_t>(p, (cudaStream_t)stream);
        AC_CUDA_LAUNCHED("store_tensor_kernel");
        return AC_OK;
    }
    const int64_t row = (int64_t)p->heads_kv * p->head_dim;
    const int vec = row % 8 == 0 && (uintptr_t)p->k_new % 16 == 0 && (uintptr_t)p->v_new % 16 == 0 &&
                    (uintptr_t)p->k_cache % 16 == 0 && (uintptr_t)p->v_cache % 16 == 0;
    if (p->slot_mapping_i64)
        launch<int64_t>(p, vec, (cudaStream_t)stream);
    else
        launch<int32_t>(p, vec, (cudaStream_t)stream);
    AC_CUDA_LAUNCHED("store_kernel");
    return AC_OK;
}

// The GPU backend entry: params from the case, validation before any device
// work, device copies of the inputs and of the cache before the store,
// launch, download of the caches.
extern "C" ac_status ac_gpu_store(const ac_case *c, const ac_tensors *t, const ac_run_opts *o, ac_outputs *out,
                                  ac_error *err)
{
    (void)o;
    ac_store_params p;
    ac_status st = ac_store_params_from_case(c, t, out, &p, err);
    if (st) return st;
    st = ac_store_validate(&p, err); // host pointers: checks before any upload
    const size_t nt = (size_t)(c->num_tokens > 0 ? c->num_tokens : 0);
    const size_t newn = nt * (size_t)c->heads_kv * (size_t)c->head_dim;
    const size_t newn_v = nt * (size_t)c->heads_kv * (size_t)ac_case_dv(c);
    const size_t slot_bytes = nt * (c->slot_mapping_i64 ? 8 : 4);
    ac_gpu_bufs bufs = {};
    void *dkn, *dvn, *dkc, *dvc, *dsl, *dks = NULL, *dvs = NULL;
    if (st) goto done;
    AC_GPU_STEP(ac_gpu_upload(&bufs, &dkn, t->k_new, newn * 2, "k_new", err));
    AC_GPU_STEP(ac_gpu_upload(&bufs, &dvn, t->v_new, newn_v * 2, "v_new", err));
    // The caches before the store in the kernel's storage (FP8: packed codes).
    AC_GPU_STEP(ac_gpu_upload_kv(&bufs, &dkc, c, t->k, t->kv_elems, 0, "k_cache", err));
    AC_GPU_STEP(ac_gpu_upload_kv(&bufs, &dvc, c, t->v, t->v_elems, 1, "v_cache", err));
    AC_GPU_STEP(ac_gpu_upload_kv_scales(&bufs, &dks, &dvs, c, err));
    AC_GPU_STEP(ac_gpu_upload(&bufs, &dsl, p.slot_mapping_host, slot_bytes, "slot_mapping", err));
    p.k_new = dkn;
    p.v_new = dvn;
    p.k_cache = dkc;
    p.v_cache = dvc;
    p.slot_mapping = dsl;
    p.k_scales = (const float *)dks;
    p.v_scales = (const float *)dvs;
    AC_GPU_STEP(ac_store_launch(&p, NULL, err));
    AC_GPU_STEP(ac_gpu_sync("store kernel", err));
    AC_GPU_STEP(ac_gpu_download_kv(out->k_cache, dkc, c, out->kv_elems, 0, "k_cache", err));
    AC_GPU_STEP(ac_gpu_download_kv(out->v_cache, dvc, c, out->v_elems, 1, "v_cache", err));
done:
    ac_gpu_free_all(&bufs);
    ac_store_params_free(&p);
    return st;
}
