// KV store through a slot mapping (CPU model: store_model.c). A thread copies
// 8 elements (16 bytes) of K and of V of one token to its slot; a slot's
// Hkv * D elements are contiguous in the NHD cache, so a token is one
// contiguous row on both sides. Rows whose length is not a multiple of 8
// take the element-wise kernel. Padding (-1) is skipped; collisions and
// out-of-range slots were rejected on the host before the launch.
#include "ac_backend.h"
#include "attn_decode.h"
#include "decode_cuda.cuh"

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
void launch(const ac_kv_store_params *p, int vec, cudaStream_t stream)
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

extern "C" ac_status ac_kv_store(const ac_kv_store_params *p, void *stream, ac_error *err)
{
    ac_status st = ac_kv_store_validate(p, err);
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

extern "C" ac_status ac_gpu_store(const ac_case *c, const ac_tensors *t, const ac_run_opts *o, ac_outputs *out,
                                  ac_error *err)
{
    (void)o;
    if (!t->k || !t->v) return ac_fail(err, AC_ERR_NULL, "tensors k / v (the cache before the store) missing");
    const int64_t kv = (int64_t)c->num_blocks * c->block_size * c->heads_kv * c->head_dim;
    if (t->kv_elems < kv || out->kv_elems < kv)
        return ac_fail(err, AC_ERR_SHAPE, "kv_elems = %lld / %lld: the paged pool needs %lld",
                       (long long)t->kv_elems, (long long)out->kv_elems, (long long)kv);
    const size_t nt = (size_t)(c->num_tokens > 0 ? c->num_tokens : 0);
    const size_t newn = nt * (size_t)c->heads_kv * (size_t)c->head_dim;
    int32_t *s32 = NULL;
    const void *slots = c->slot_mapping;
    if (!c->slot_mapping_i64 && nt) {
        s32 = (int32_t *)malloc(sizeof(int32_t) * nt);
        if (!s32) return ac_fail(err, AC_ERR_NOMEM, "slot_mapping: out of memory");
        for (size_t i = 0; i < nt; i++) {
            if (c->slot_mapping[i] < INT32_MIN || c->slot_mapping[i] > INT32_MAX) {
                free(s32);
                return ac_fail(err, AC_ERR_SLOT, "slot_mapping[%zu] = %lld: does not fit the int32 form", i,
                               (long long)c->slot_mapping[i]);
            }
            s32[i] = (int32_t)c->slot_mapping[i];
        }
        slots = s32;
    }
    ac_kv_store_params p = {};
    p.dtype = c->dtype;
    p.num_tokens = c->num_tokens;
    p.heads_kv = c->heads_kv;
    p.head_dim = c->head_dim;
    p.num_blocks = c->num_blocks;
    p.block_size = c->block_size;
    p.slot_mapping_i64 = c->slot_mapping_i64;
    p.slot_mapping_host = slots;
    // Host pointers for the validation before any upload.
    p.k_new = t->k_new;
    p.v_new = t->v_new;
    p.k_cache = out->k_cache;
    p.v_cache = out->v_cache;
    p.slot_mapping = slots;
    ac_status st = ac_kv_store_validate(&p, err);
    const size_t slot_bytes = nt * (c->slot_mapping_i64 ? 8 : 4);
    ac_dev_bufs bufs = {};
    void *dkn, *dvn, *dkc, *dvc, *dsl;
    if (st) goto done;
#define STEP(x) do { st = (x); if (st) goto done; } while (0)
#define CUDA_STEP(call) do { cudaError_t e_ = (call); if (e_ != cudaSuccess) { \
        st = ac_fail(err, AC_ERR_CUDA, "%s: %s", #call, cudaGetErrorString(e_)); goto done; } } while (0)
    STEP(ac_dev_upload(&bufs, &dkn, t->k_new, newn * 2, "k_new", err));
    STEP(ac_dev_upload(&bufs, &dvn, t->v_new, newn * 2, "v_new", err));
    STEP(ac_dev_upload(&bufs, &dkc, t->k, (size_t)kv * 2, "k_cache", err));
    STEP(ac_dev_upload(&bufs, &dvc, t->v, (size_t)kv * 2, "v_cache", err));
    STEP(ac_dev_upload(&bufs, &dsl, slots, slot_bytes, "slot_mapping", err));
    p.k_new = dkn;
    p.v_new = dvn;
    p.k_cache = dkc;
    p.v_cache = dvc;
    p.slot_mapping = dsl;
    STEP(ac_kv_store(&p, NULL, err));
    CUDA_STEP(cudaDeviceSynchronize());
    CUDA_STEP(cudaMemcpy(out->k_cache, dkc, (size_t)kv * 2, cudaMemcpyDeviceToHost));
    CUDA_STEP(cudaMemcpy(out->v_cache, dvc, (size_t)kv * 2, cudaMemcpyDeviceToHost));
#undef STEP
#undef CUDA_STEP
done:
    ac_dev_free_all(&bufs);
    free(s32);
    return st;
}
