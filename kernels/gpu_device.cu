// Device discovery for the GPU backend.
#include <cuda_runtime.h>

#include "ac_backend.h"
#include "ac_devices.h"

// ctest's resource allocation (scripts/ctest-gpus.sh): a test given GPU `id`
// sees that device only. Before main, so before any CUDA call.
__attribute__((constructor)) static void ac_gpu_from_ctest(void) { ac_device_from_ctest(); }

extern "C" int ac_gpu_available(void)
{
    static int cached = -1;
    if (cached < 0) {
        int n = 0;
        cached = (cudaGetDeviceCount(&n) == cudaSuccess && n > 0) ? 1 : 0;
        if (!cached) cudaGetLastError(); /* clear the sticky "no device" error */
    }
    return cached;
}
