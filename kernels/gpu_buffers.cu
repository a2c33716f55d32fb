// Device copies of a backend call's tensors (gpu_buffers.cuh).
#include "gpu_buffers.cuh"

ac_status ac_gpu_check(cudaError_t e, const char *what, ac_error *err)
{
    if (e == cudaSuccess) return AC_OK;
    return ac_fail(err, AC_ERR_CUDA, "%s: %s", what, cudaGetErrorString(e));
}

ac_status ac_gpu_alloc(ac_gpu_bufs *bufs, void **dev, size_t bytes, const char *name, ac_error *err)
{
    *dev = NULL;
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

void ac_gpu_free_all(ac_gpu_bufs *bufs)
{
    for (int i = 0; i < bufs->n; i++) cudaFree(bufs->ptr[i]);
    bufs->n = 0;
}
