/* Built instead of the CUDA sources when nvcc is absent: every GPU entry
   point answers AC_ERR_NO_DEVICE, which tests report as skipped. */
#include "ac_backend.h"

int ac_gpu_available(void) { return 0; }

#define AC_FAMILY(name, NAME, ...)                                                                            \
    ac_status ac_gpu_##name(const ac_case *c, const ac_tensors *t, const ac_run_opts *o, ac_outputs *out, \
                            ac_error *err)                                                              \
    {                                                                                                   \
        (void)c; (void)t; (void)o; (void)out;                                                           \
        return ac_fail(err, AC_ERR_NO_DEVICE, "built without CUDA: no GPU backend");                    \
    }
#include "ac_families.def"
#undef AC_FAMILY
