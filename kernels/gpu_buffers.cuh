// Shared by the kernel families' .cu files: CUDA error checks that turn into
// AC_ERR_CUDA values, and the device copies of one backend call's tensors
// (upload, allocate, poison, download, free together). Host code only.
#ifndef AC_GPU_BUFFERS_CUH
#define AC_GPU_BUFFERS_CUH

#include <cuda_runtime.h>
#include <stddef.h>

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

// In a backend entry: run one step that returns an ac_status into `st`; on
// failure jump to the entry's `done:` label, which frees the buffers.
#define AC_GPU_STEP(x)      \
    do {                    \
        st = (x);           \
        if (st) goto done;  \
    } while (0)

// Device buffers of one backend call, freed together by ac_gpu_free_all.
struct ac_gpu_bufs {
    void *ptr[16];
    int n;
};

// Allocate `bytes` on the device (at least 16: a tensor of zero elements
// still gets a valid, aligned pointer).
ac_status ac_gpu_alloc(ac_gpu_bufs *bufs, void **dev, size_t bytes, const char *name, ac_error *err);
// Allocate and fill with 0xFF bytes (NaN in bf16, fp16 and fp32): an output
// element the kernel does not write cannot pass as a result.
ac_status ac_gpu_alloc_poisoned(ac_gpu_bufs *bufs, void **dev, size_t bytes, const char *name, ac_error *err);
// Allocate and copy `bytes` from the host (src NULL or bytes 0: allocate only).
ac_status ac_gpu_upload(ac_gpu_bufs *bufs, void **dev, const void *src, size_t bytes, const char *name,
                        ac_error *err);
// Copy `bytes` back to the host (nothing for 0 bytes).
ac_status ac_gpu_download(void *dst, const void *dev, size_t bytes, const char *name, ac_error *err);
// A case's paged pool (num_blocks * block_size * Hkv * D 16-bit elements):
// upload allocates and copies all of it, or, in a sparse case (docs/DATA.md),
// zeroes the device copy and uploads the touched blocks only; download
// copies back all of it, or the touched blocks only (the host copy reads as
// zero elsewhere). A pool of 2^31 and more elements thus costs the host only
// what the case touches.
ac_status ac_gpu_upload_pool(ac_gpu_bufs *bufs, void **dev, const ac_case *c, const uint16_t *src, const char *name,
                             ac_error *err);
ac_status ac_gpu_download_pool(uint16_t *dst, const void *dev, const ac_case *c, const char *name, ac_error *err);
// A case's K (is_v = 0, head dim D_qk) or V (is_v = 1, D_v) in the kernel's
// storage format: uint16 elements in the case dtype, or with an FP8 cache
// (c->kv_format) one byte per element, the code the host holder keeps in its
// low byte (docs/DECODE.md, "FP8 KV and D_v"). A paged case moves its pool
// (num_blocks * block_size * Hkv * dim elements; sparse: the touched blocks
// only, as ac_gpu_upload_pool); a contiguous one `elems` elements (the
// tensors' kv_elems / v_elems). Download unpacks into holders (high byte 0).
size_t ac_gpu_kv_elem_bytes(const ac_case *c);
ac_status ac_gpu_upload_kv(ac_gpu_bufs *bufs, void **dev, const ac_case *c, const uint16_t *src, int64_t elems,
                           int is_v, const char *name, ac_error *err);
ac_status ac_gpu_download_kv(uint16_t *dst, const void *dev, const ac_case *c, int64_t elems, int is_v,
                             const char *name, ac_error *err);
// The FP8 cache's scales as device fp32 arrays of c->n_kv_scales entries
// (both NULL without scales).
ac_status ac_gpu_upload_kv_scales(ac_gpu_bufs *bufs, void **k_scales, void **v_scales, const ac_case *c,
                                  ac_error *err);
// Wait for the device: a fault of the kernel `what` surfaces here.
ac_status ac_gpu_sync(const char *what, ac_error *err);
// A CUDA call's result as a status (AC_ERR_CUDA naming `what`).
ac_status ac_gpu_check(cudaError_t e, const char *what, ac_error *err);
void ac_gpu_free_all(ac_gpu_bufs *bufs);

#endif
