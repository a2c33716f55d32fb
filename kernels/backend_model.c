/* The CPU models' backend table: each family's CPU entry (kernels/<family>_api.c,
 * which runs kernels/<family>_model.c) by the names of common/ac_families.def.
 * Always available. */
#include "ac_backend.h"

#include <stdio.h>

static int model_available(char *why, size_t n)
{
    if (why && n) why[0] = '\0';
    return 1;
}

const ac_backend_ops ac_backend_model_ops = {
    .abi_version = AC_BACKEND_ABI_VERSION,
    .name = "cpu-model",
    .about = "the CPU models of the bundled kernels (same tiles and arithmetic order, no GPU used)",
    .available = model_available,
    .run = {
#define AC_FAMILY(name, NAME, ...) [AC_OP_##NAME] = ac_model_##name,
#include "ac_families.def"
#undef AC_FAMILY
    },
    /* window, softcap, ALiBi and sinks in prefill and decode (docs/PREFILL.md, docs/DECODE.md);
       the FP8 KV cache and D_v != D_qk in decode and store (docs/DECODE.md, "FP8 KV and D_v") */
    .features = {[AC_OP_PREFILL] = AC_FEAT_LOGIT | AC_FEAT_KV, [AC_OP_DECODE] = AC_FEAT_LOGIT | AC_FEAT_KV,
                 [AC_OP_STORE] = AC_FEAT_KV},
};
