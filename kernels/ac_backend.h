/* Running a case on a backend: the CUDA kernels (GPU) or their CPU models,
 * which use the same index math (common/ac_index.h) and stand in for the
 * kernels where there is no GPU (CI). */
#ifndef AC_BACKEND_H
#define AC_BACKEND_H

#include "ac_case.h"
#include "ac_status.h"
#include "ac_tensors.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum ac_backend { AC_BACKEND_MODEL = 0, AC_BACKEND_GPU = 1 } ac_backend;

/* Test-only switch: classic bugs that can be injected into the CPU models
   (and where cheap into the kernels), to prove the checks catch them. */
typedef enum ac_bug {
    AC_BUG_NONE = 0,
    AC_BUG_SCALE_ONE,          /* scale 1.0 where the default 1/sqrt(D) was meant */
    AC_BUG_GQA_MOD,            /* KV head h % Hkv instead of h / (Hq/Hkv) */
    AC_BUG_TOP_LEFT,           /* TOP_LEFT where BOTTOM_RIGHT is due */
    AC_BUG_CAUSAL_OFF_BY_ONE,  /* causal bound one key too far */
    AC_BUG_DROP_LAST_KEY,      /* the last allowed key of each row is skipped */
    AC_BUG_STORE_PAD_WRITE,    /* slot -1 written (to slot 0's neighbour / last slot) */
    AC_BUG_TAIL_UNMASKED,      /* the tail of the last block read without masking */
    AC_BUG_COMBINE_NO_INF_GUARD, /* combine without the -inf guard on empty splits */
    AC_BUG_LSE_BASE2,          /* LSE returned in base 2 */
    AC_BUG_SKIP_BLOCK_FIRST,   /* the first key of every cache block skipped */
    AC_BUG_COUNT
} ac_bug;

const char *ac_bug_name(ac_bug b);

typedef struct ac_run_opts {
    ac_bug bug;        /* AC_BUG_NONE outside the selftest */
    int out_f32;       /* also fill outputs.o_f32 (diagnosis mode) */
} ac_run_opts;

/* 1 if a CUDA device is usable (always 0 in a build without CUDA). */
int ac_gpu_available(void);
const char *ac_backend_name(ac_backend b);

/* Run the case on the backend. Outputs are (re)allocated and poisoned first.
   Bad input gets the host API's named error and nothing is run.
   AC_ERR_NO_DEVICE for the GPU backend without a device. */
ac_status ac_backend_run(ac_backend be, const ac_case *c, const ac_tensors *t,
                         const ac_run_opts *opts, ac_outputs *out, ac_error *err);

/* Per-operation entry points behind ac_backend_run (implemented next to each
   kernel family: kernels/prefill*.{c,cu}, kernels/decode*.{c,cu} ...). */
ac_status ac_model_prefill(const ac_case *c, const ac_tensors *t, const ac_run_opts *o, ac_outputs *out, ac_error *err);
ac_status ac_model_decode(const ac_case *c, const ac_tensors *t, const ac_run_opts *o, ac_outputs *out, ac_error *err);
ac_status ac_model_combine(const ac_case *c, const ac_tensors *t, const ac_run_opts *o, ac_outputs *out, ac_error *err);
ac_status ac_model_store(const ac_case *c, const ac_tensors *t, const ac_run_opts *o, ac_outputs *out, ac_error *err);
ac_status ac_gpu_prefill(const ac_case *c, const ac_tensors *t, const ac_run_opts *o, ac_outputs *out, ac_error *err);
ac_status ac_gpu_decode(const ac_case *c, const ac_tensors *t, const ac_run_opts *o, ac_outputs *out, ac_error *err);
ac_status ac_gpu_combine(const ac_case *c, const ac_tensors *t, const ac_run_opts *o, ac_outputs *out, ac_error *err);
ac_status ac_gpu_store(const ac_case *c, const ac_tensors *t, const ac_run_opts *o, ac_outputs *out, ac_error *err);

#ifdef __cplusplus
}
#endif
#endif
