// KV store through a slot mapping (CPU model: store_model.c). A thread copies
// 8 elements (16 bytes) of K and of V of one token to its slot; a slot's
// Hkv * D elements are contiguous in the NHD cache, so a token is one
// contiguous row on both sides. Rows whose length is not a multiple of 8
// take the element-wise kernel. Padding (-1) is skipped; collisions and
// out-of-range slots were rejected on the host before the launch.
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
    const size_t slot_bytes = nt * (c->slot_mapping_i64 ? 8 : 4);
    ac_gpu_bufs bufs = {};
    void *dkn, *dvn, *dkc, *dvc, *dsl;
    if (st) goto done;
    AC_GPU_STEP(ac_gpu_upload(&bufs, &dkn, t->k_new, newn * 2, "k_new", err));
    AC_GPU_STEP(ac_gpu_upload(&bufs, &dvn, t->v_new, newn * 2, "v_new", err));
    AC_GPU_STEP(ac_gpu_upload_pool(&bufs, &dkc, c, t->k, "k_cache", err));
    AC_GPU_STEP(ac_gpu_upload_pool(&bufs, &dvc, c, t->v, "v_cache", err));
    AC_GPU_STEP(ac_gpu_upload(&bufs, &dsl, p.slot_mapping_host, slot_bytes, "slot_mapping", err));
    p.k_new = dkn;
    p.v_new = dvn;
    p.k_cache = dkc;
    p.v_cache = dvc;
    p.slot_mapping = dsl;
    AC_GPU_STEP(ac_store_launch(&p, NULL, err));
    AC_GPU_STEP(ac_gpu_sync("store kernel", err));
    AC_GPU_STEP(ac_gpu_download_pool(out->k_cache, dkc, c, "k_cache", err));
    AC_GPU_STEP(ac_gpu_download_pool(out->v_cache, dvc, c, "v_cache", err));
done:
    ac_gpu_free_all(&bufs);
    ac_store_params_free(&p);
    return st;
}
