// Device discovery for the GPU backend.
#include <cuda_runtime.h>

#include "ac_backend.h"

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
