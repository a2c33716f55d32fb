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
