// Helpers of the decode, combine and store kernels (decode.cu, combine.cu,
// store.cu): CUDA error checks that turn into AC_ERR_CUDA values, 8-element
// (16-byte) bf16/fp16 <-> fp32 conversions, and device buffers of a runner.
#ifndef AC_DECODE_CUDA_CUH
#define AC_DECODE_CUDA_CUH

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stdint.h>

#include "ac_case.h"
#include "ac_status.h"

// Evaluate a CUDA call; on failure fill err with the call's text and return.
#define AC_CUDA_TRY(call)                                                                       \
    do {                                                                                        \
        cudaError_t e_ = (call);                                                                \
        if (e_ != cudaSuccess)                                                                  \
            return ac_fail(err, AC_ERR_CUDA, "%s: %s (%s:%d)", #call, cudaGetErrorString(e_),   \
                           __FILE__, __LINE__);                                                 \
    } while (0)
// After a launch: configuration errors now, asynchronous faults at the next sync.
#define AC_CUDA_LAUNCHED(what) AC_CUDA_TRY(cudaGetLastError())

struct ac_bf16_t {};
struct ac_fp16_t {};

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
__device__ __forceinline__ uint16_t ac_from_f32(ac_dtype t, float f)
{
    if (t == AC_BF16) {
        __nv_bfloat16 h = __float2bfloat16_rn(f);
        return *reinterpret_cast<uint16_t *>(&h);
    }
    __half h = __float2half_rn(f);
    return *reinterpret_cast<uint16_t *>(&h);
}

// Device buffers of one runner call, freed together.
struct ac_dev_bufs {
    void *ptr[24];
    int n;
};
static inline ac_status ac_dev_alloc(ac_dev_bufs *bufs, void **out, size_t bytes, const char *name,
                                     ac_error *err)
{
    *out = NULL;
    if (bufs->n == (int)(sizeof bufs->ptr / sizeof bufs->ptr[0]))
        return ac_fail(err, AC_ERR_NOMEM, "%s: too many device buffers", name);
    cudaError_t e = cudaMalloc(out, bytes ? bytes : 16);
    if (e != cudaSuccess)
        return ac_fail(err, AC_ERR_CUDA, "cudaMalloc(%s, %zu bytes): %s", name, bytes, cudaGetErrorString(e));
    bufs->ptr[bufs->n++] = *out;
    return AC_OK;
}
// Allocate and upload (src may be NULL: allocate only).
static inline ac_status ac_dev_upload(ac_dev_bufs *bufs, void **out, const void *src, size_t bytes,
                                      const char *name, ac_error *err)
{
    ac_status st = ac_dev_alloc(bufs, out, bytes, name, err);
    if (st || !src || !bytes) return st;
    AC_CUDA_TRY(cudaMemcpy(*out, src, bytes, cudaMemcpyHostToDevice));
    return AC_OK;
}
static inline void ac_dev_free_all(ac_dev_bufs *bufs)
{
    for (int i = 0; i < bufs->n; i++) cudaFree(bufs->ptr[i]);
    bufs->n = 0;
}

#endif
