/* The backend interface: what runs a case. A backend is a table of entry
 * points, one per kernel family (common/ac_families.def), that takes a case
 * and its host tensors and fills the outputs. The CUDA kernels fill one table
 * (kernels/backend_gpu.c), their CPU models another (kernels/backend_model.c);
 * the harness keeps the registry (harness/ac_backends.h) and the one-case
 * check calls through it. The table is plain C data of a versioned layout, so
 * a backend can live in a shared library and be registered at run time.
 *
 * Includes nothing above common/: kernels and plugins fill it, the harness
 * and everything above it call it. */
#ifndef AC_BACKEND_H
#define AC_BACKEND_H

#include <stdint.h>

#include "ac_case.h"
#include "ac_status.h"
#include "ac_tensors.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Layout version of ac_backend_ops; a table of another version is refused.
   2: ac_case gained the features (window, softcap, ALiBi, sinks) and
   ac_backend_ops the `features` a backend implements.
   3: ac_case gained head_dim_v, kv_format and the FP8 KV scales; ac_tensors
   and ac_outputs v_elems (V may have its own head dim). */
#define AC_BACKEND_ABI_VERSION 3

/* A handle into the backend registry: the two built-in backends have fixed
   numbers, registered ones (plugins) get the next free ones. */
typedef int ac_backend;
enum { AC_BACKEND_MODEL = 0, AC_BACKEND_GPU = 1, AC_BACKEND_MAX = 16 };

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
    /* Features (docs/CONTRACT.md, "Windows, softcap, ALiBi and sinks"): */
    AC_BUG_WINDOW_TOP_LEFT,    /* the window aligned top-left (diagonal j = i) instead of bottom-right */
    AC_BUG_SOFTCAP_AFTER_MASK, /* tanh applied after the bias: masked -inf logits come back as -c */
    AC_BUG_ALIBI_SIGN,         /* ALiBi added with the distance's sign flipped */
    AC_BUG_SINK_NUMERATOR,     /* the sink also weights a value row (key 0's), not only the denominator */
    AC_BUG_V_SCALE_DROPPED,    /* FP8 cache: the output never multiplied by v_scale */
    AC_BUG_DV_AS_DQK,          /* V addressed with D_qk as its head dim (row stride) where D_v is due */
    AC_BUG_COUNT
} ac_bug;

const char *ac_bug_name(ac_bug b);
/* 0 and *out set, or -1 for an unknown name ("none" is AC_BUG_NONE). */
int ac_bug_parse(const char *name, ac_bug *out);

typedef struct ac_run_opts {
    ac_bug bug;        /* AC_BUG_NONE outside the selftest */
    int out_f32;       /* also fill outputs.o_f32 (diagnosis mode) */
} ac_run_opts;

/* One family's entry point. Outputs arrive allocated and poisoned (the
   registry's ac_backend_run does that); bad input gets the host API's named
   error and nothing is run. An entry whose kernel returns no LSE frees
   out->lse and sets it NULL (the Python bridge does, for an adapter without
   one): the verdict then judges O alone and says so. */
typedef ac_status (*ac_run_fn)(const ac_case *c, const ac_tensors *t, const ac_run_opts *o, ac_outputs *out,
                               ac_error *err);

typedef struct ac_backend_ops {
    uint32_t abi_version;             /* AC_BACKEND_ABI_VERSION */
    const char *name;                 /* "cpu-model", "gpu", a plugin's own */
    const char *about;                /* one line for `attncheck --help` and reports */
    /* 1 if it can run now; else 0 and `why` (n bytes) says why (may be NULL). */
    int (*available)(char *why, size_t n);
    ac_run_fn run[AC_OP_COUNT];       /* by family; NULL: the backend lacks it */
    uint32_t features[AC_OP_COUNT];   /* by family, the AC_FEAT_* bits it implements; a case using
                                         another one is refused as unsupported before the entry runs */
} ac_backend_ops;

/* The built-in tables (kernels/). */
extern const ac_backend_ops ac_backend_model_ops;
extern const ac_backend_ops ac_backend_gpu_ops;

/* 1 if a CUDA device is usable (always 0 in a build without CUDA). */
int ac_gpu_available(void);

/* Each family's entry on each built-in backend, by the names of
   ac_families.def (implemented next to each kernel family in kernels/). */
#define AC_FAMILY(name, NAME, ...)                                                                        \
    ac_status ac_model_##name(const ac_case *c, const ac_tensors *t, const ac_run_opts *o, ac_outputs *out, \
                              ac_error *err);                                                        \
    ac_status ac_gpu_##name(const ac_case *c, const ac_tensors *t, const ac_run_opts *o, ac_outputs *out,   \
                            ac_error *err);
#include "ac_families.def"
#undef AC_FAMILY

#ifdef __cplusplus
}
#endif
#endif
