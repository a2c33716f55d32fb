// Device copies of a backend call's tensors (gpu_buffers.cuh).
#include "gpu_buffers.cuh"

#include <stdio.h>
#include <stdlib.h>

#include "ac_big.h"

ac_status ac_gpu_check(cudaError_t e, const char *what, ac_error *err)
{
    if (e == cudaSuccess) return AC_OK;
    return ac_fail(err, AC_ERR_CUDA, "%s: %s", what, cudaGetErrorString(e));
}

// Set when a kernel faulted (ac_gpu_free_all): the text of the fault.
static char g_lost[160];

ac_status ac_gpu_alloc(ac_gpu_bufs *bufs, void **dev, size_t bytes, const char *name, ac_error *err)
{
    *dev = NULL;
    // After a fault every later call fails with it: say so, once per case,
    // as a device that cannot run it (reported unrun, not as this case's bug).
    if (g_lost[0])
        return ac_fail(err, AC_ERR_NO_DEVICE, "the CUDA context was lost to an earlier case's fault (%s): "
                       "this process cannot run more cases; replay this one on its own", g_lost);
    if (bufs->n == (int)(sizeof bufs->ptr / sizeof bufs->ptr[0]))
        return ac_fail(err, AC_ERR_NOMEM, "%s: too many device buffers", name);
    cudaError_t e = cudaMalloc(dev, bytes < 16 ? 16 : bytes);
    if (e != cudaSuccess)
        return ac_fail(err, AC_ERR_CUDA, "cudaMalloc(%s, %zu bytes): %s", name, bytes, cudaGetErrorString(e));
    bufs->ptr[bufs->n++] = *dev;
    return AC_OK;
}

ac_status ac_gpu_alloc_poisoned(ac_gpu_bufs *bufs, void **dev, size_t bytes, const char *name, ac_error *err)
{
    ac_status st = ac_gpu_alloc(bufs, dev, bytes, name, err);
    if (st) return st;
    cudaError_t e = cudaMemset(*dev, 0xFF, bytes < 16 ? 16 : bytes);
    if (e != cudaSuccess) return ac_fail(err, AC_ERR_CUDA, "cudaMemset(%s, poison): %s", name, cudaGetErrorString(e));
    return AC_OK;
}

ac_status ac_gpu_upload(ac_gpu_bufs *bufs, void **dev, const void *src, size_t bytes, const char *name,
                        ac_error *err)
{
    ac_status st = ac_gpu_alloc(bufs, dev, bytes, name, err);
    if (st || !src || !bytes) return st;
    cudaError_t e = cudaMemcpy(*dev, src, bytes, cudaMemcpyHostToDevice);
    if (e != cudaSuccess) return ac_fail(err, AC_ERR_CUDA, "cudaMemcpy(%s, to device): %s", name, cudaGetErrorString(e));
    return AC_OK;
}

ac_status ac_gpu_download(void *dst, const void *dev, size_t bytes, const char *name, ac_error *err)
{
    if (!bytes) return AC_OK;
    cudaError_t e = cudaMemcpy(dst, dev, bytes, cudaMemcpyDeviceToHost);
    if (e != cudaSuccess) return ac_fail(err, AC_ERR_CUDA, "cudaMemcpy(%s, to host): %s", name, cudaGetErrorString(e));
    return AC_OK;
}

ac_status ac_gpu_sync(const char *what, ac_error *err)
{
    return ac_gpu_check(cudaDeviceSynchronize(), what, err);
}

// Errors after which the context is unusable: every later CUDA call of the
// process returns them again.
static bool sticky(cudaError_t e)
{
    switch (e) {
    case cudaErrorIllegalAddress: case cudaErrorLaunchFailure: case cudaErrorMisalignedAddress:
    case cudaErrorHardwareStackError: case cudaErrorIllegalInstruction: case cudaErrorInvalidPc:
    case cudaErrorAssert: case cudaErrorInvalidAddressSpace: case cudaErrorLaunchTimeout:
        return true;
    default:
        return false;
    }
}

// g_lost (above) is set here when a kernel faulted: CUDA cannot recover a
// context from such an error (cudaDeviceReset does not give this process the
// device back: measured on the H200, later calls say "busy or unavailable").

void ac_gpu_free_all(ac_gpu_bufs *bufs)
{
    cudaError_t e = cudaDeviceSynchronize();
    if (sticky(e) && !g_lost[0]) snprintf(g_lost, sizeof g_lost, "%s", cudaGetErrorString(e));
    if (!g_lost[0])
        for (int i = 0; i < bufs->n; i++) cudaFree(bufs->ptr[i]);
    bufs->n = 0;
}

// One run of touched blocks, to or from the device.
struct pool_run_ctx {
    uint16_t *host;
    uint16_t *dev;
    int64_t per;
    cudaMemcpyKind kind;
    cudaError_t e;
};
static int pool_run(int64_t first, int64_t count, void *ctx)
{
    pool_run_ctx *x = (pool_run_ctx *)ctx;
    size_t off = (size_t)(first * x->per), n = sizeof(uint16_t) * (size_t)(count * x->per);
    x->e = x->kind == cudaMemcpyHostToDevice ? cudaMemcpy(x->dev + off, x->host + off, n, x->kind)
                                             : cudaMemcpy(x->host + off, x->dev + off, n, x->kind);
    return x->e != cudaSuccess;
}

static ac_status pool_runs(const ac_case *c, uint16_t *host, uint16_t *dev, cudaMemcpyKind kind, const char *name,
                           ac_error *err)
{
    int32_t *blocks;
    int64_t n;
    ac_status st = ac_case_touched_blocks(c, &blocks, &n, err);
    if (st) return st;
    pool_run_ctx x = {host, dev, (int64_t)c->block_size * c->heads_kv * c->head_dim, kind, cudaSuccess};
    ac_block_runs(blocks, n, pool_run, &x);
    free(blocks);
    if (x.e != cudaSuccess)
        return ac_fail(err, AC_ERR_CUDA, "cudaMemcpy(%s, touched blocks %s): %s", name,
                       kind == cudaMemcpyHostToDevice ? "to device" : "to host", cudaGetErrorString(x.e));
    return AC_OK;
}

static size_t pool_bytes(const ac_case *c)
{
    return sizeof(uint16_t) * (size_t)c->num_blocks * (size_t)c->block_size * (size_t)c->heads_kv * (size_t)c->head_dim;
}

ac_status ac_gpu_upload_pool(ac_gpu_bufs *bufs, void **dev, const ac_case *c, const uint16_t *src, const char *name,
                             ac_error *err)
{
    if (!ac_case_is_sparse(c)) return ac_gpu_upload(bufs, dev, src, pool_bytes(c), name, err);
    ac_status st = ac_gpu_alloc(bufs, dev, pool_bytes(c), name, err);
    if (st) return st;
    cudaError_t e = cudaMemset(*dev, 0, pool_bytes(c) < 16 ? 16 : pool_bytes(c));
    if (e != cudaSuccess) return ac_fail(err, AC_ERR_CUDA, "cudaMemset(%s, zero): %s", name, cudaGetErrorString(e));
    return pool_runs(c, (uint16_t *)src, (uint16_t *)*dev, cudaMemcpyHostToDevice, name, err);
}

ac_status ac_gpu_download_pool(uint16_t *dst, const void *dev, const ac_case *c, const char *name, ac_error *err)
{
    if (!ac_case_is_sparse(c)) return ac_gpu_download(dst, dev, pool_bytes(c), name, err);
    return pool_runs(c, dst, (uint16_t *)dev, cudaMemcpyDeviceToHost, name, err);
}

// ---- K and V in the kernel's storage format -------------------------------

size_t ac_gpu_kv_elem_bytes(const ac_case *c)
{
    return c->kv_format == AC_KV_AS_DTYPE ? sizeof(uint16_t) : sizeof(uint8_t);
}

// Elements of K or V: the paged pool, or `elems` for contiguous K/V.
static int64_t kv_count(const ac_case *c, int64_t elems, int is_v)
{
    if (!c->paged) return elems;
    return (int64_t)c->num_blocks * c->block_size * c->heads_kv * (is_v ? ac_case_dv(c) : c->head_dim);
}

// Elements [first, first + n) between host holders and device storage; FP8
// goes through a packed staging copy.
static cudaError_t kv_copy(uint16_t *host, void *dev, int64_t first, int64_t n, int fp8, cudaMemcpyKind kind)
{
    if (n <= 0) return cudaSuccess;
    if (!fp8) {
        uint16_t *d = (uint16_t *)dev + first;
        return kind == cudaMemcpyHostToDevice ? cudaMemcpy(d, host + first, sizeof(uint16_t) * (size_t)n, kind)
                                              : cudaMemcpy(host + first, d, sizeof(uint16_t) * (size_t)n, kind);
    }
    uint8_t *stage = (uint8_t *)malloc((size_t)n);
    if (!stage) return cudaErrorMemoryAllocation;
    uint8_t *d = (uint8_t *)dev + first;
    cudaError_t e;
    if (kind == cudaMemcpyHostToDevice) {
        for (int64_t i = 0; i < n; i++) stage[i] = (uint8_t)(host[first + i] & 0xffu);
        e = cudaMemcpy(d, stage, (size_t)n, kind);
    } else {
        e = cudaMemcpy(stage, d, (size_t)n, kind);
        if (e == cudaSuccess)
            for (int64_t i = 0; i < n; i++) host[first + i] = stage[i];
    }
    free(stage);
    return e;
}

struct kv_run_ctx {
    uint16_t *host;
    void *dev;
    int64_t per;
    int fp8;
    cudaMemcpyKind kind;
    cudaError_t e;
};
static int kv_run(int64_t first, int64_t count, void *ctx)
{
    kv_run_ctx *x = (kv_run_ctx *)ctx;
    x->e = kv_copy(x->host, x->dev, first * x->per, count * x->per, x->fp8, x->kind);
    return x->e != cudaSuccess;
}

static ac_status kv_move(const ac_case *c, uint16_t *host, void *dev, int64_t elems, int is_v, cudaMemcpyKind kind,
                         const char *name, ac_error *err)
{
    const int fp8 = c->kv_format != AC_KV_AS_DTYPE;
    const char *dir = kind == cudaMemcpyHostToDevice ? "to device" : "to host";
    if (!(c->paged && ac_case_is_sparse(c))) {
        cudaError_t e = kv_copy(host, dev, 0, kv_count(c, elems, is_v), fp8, kind);
        if (e != cudaSuccess) return ac_fail(err, AC_ERR_CUDA, "cudaMemcpy(%s, %s): %s", name, dir, cudaGetErrorString(e));
        return AC_OK;
    }
    int32_t *blocks;
    int64_t n;
    ac_status st = ac_case_touched_blocks(c, &blocks, &n, err);
    if (st) return st;
    kv_run_ctx x = {host, dev, (int64_t)c->block_size * c->heads_kv * (is_v ? ac_case_dv(c) : c->head_dim), fp8,
                    kind, cudaSuccess};
    ac_block_runs(blocks, n, kv_run, &x);
    free(blocks);
    if (x.e != cudaSuccess)
        return ac_fail(err, AC_ERR_CUDA, "cudaMemcpy(%s, touched blocks %s): %s", name, dir, cudaGetErrorString(x.e));
    return AC_OK;
}

ac_status ac_gpu_upload_kv(ac_gpu_bufs *bufs, void **dev, const ac_case *c, const uint16_t *src, int64_t elems,
                           int is_v, const char *name, ac_error *err)
{
    const size_t bytes = ac_gpu_kv_elem_bytes(c) * (size_t)kv_count(c, elems, is_v);
    ac_status st = ac_gpu_alloc(bufs, dev, bytes, name, err);
    if (st || !src) return st;
    if (c->paged && ac_case_is_sparse(c)) { // the blocks nobody touches read as zero
        cudaError_t e = cudaMemset(*dev, 0, bytes < 16 ? 16 : bytes);
        if (e != cudaSuccess) return ac_fail(err, AC_ERR_CUDA, "cudaMemset(%s, zero): %s", name, cudaGetErrorString(e));
    }
    return kv_move(c, (uint16_t *)src, *dev, elems, is_v, cudaMemcpyHostToDevice, name, err);
}

ac_status ac_gpu_download_kv(uint16_t *dst, const void *dev, const ac_case *c, int64_t elems, int is_v,
                             const char *name, ac_error *err)
{
    return kv_move(c, dst, (void *)dev, elems, is_v, cudaMemcpyDeviceToHost, name, err);
}

ac_status ac_gpu_upload_kv_scales(ac_gpu_bufs *bufs, void **k_scales, void **v_scales, const ac_case *c,
                                  ac_error *err)
{
    *k_scales = *v_scales = NULL;
    if (c->n_kv_scales <= 0) return AC_OK;
    const size_t bytes = sizeof(float) * (size_t)c->n_kv_scales;
    ac_status st = ac_gpu_upload(bufs, k_scales, c->k_scales, bytes, "k_scales", err);
    return st ? st : ac_gpu_upload(bufs, v_scales, c->v_scales, bytes, "v_scales", err);
}
