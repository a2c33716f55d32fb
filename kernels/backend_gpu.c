/* The CUDA kernels' backend table: each family's launcher (kernels/<family>.cu,
 * or kernels/nocuda/ in a build without nvcc) by the names of
 * common/ac_families.def. */
#include "ac_backend.h"

#include <stdio.h>

static int gpu_available(char *why, size_t n)
{
    int ok = ac_gpu_available();
    if (why && n) {
#ifdef AC_HAVE_CUDA
        snprintf(why, n, "%s", ok ? "" : "no CUDA device");
#else
        snprintf(why, n, "built without CUDA (configured with -DAC_ENABLE_CUDA=OFF, or nvcc not found)");
#endif
    }
    return ok;
}

const ac_backend_ops ac_backend_gpu_ops = {
    .abi_version = AC_BACKEND_ABI_VERSION,
    .name = "gpu",
    .about = "the bundled CUDA kernels on the first visible device",
    .available = gpu_available,
    .run = {
#define AC_FAMILY(name, NAME, ...) [AC_OP_##NAME] = ac_gpu_##name,
#include "ac_families.def"
#undef AC_FAMILY
    },
    /* window, softcap, ALiBi and sinks in prefill and decode (docs/PREFILL.md, docs/DECODE.md);
       the FP8 KV cache and D_v != D_qk in decode and store (docs/DECODE.md, "FP8 KV and D_v") */
    .features = {[AC_OP_PREFILL] = AC_FEAT_LOGIT | AC_FEAT_KV, [AC_OP_DECODE] = AC_FEAT_LOGIT | AC_FEAT_KV,
                 [AC_OP_STORE] = AC_FEAT_KV},
};
