/* Split-KV combine: merges the fp32 partials (O_s, LSE_s) of a row's splits
 * into O and LSE; decode runs it after a split launch, and it is checked as a
 * family of its own. Semantics: docs/CONTRACT.md; docs/DECODE.md. The family's files:
 *   combine.h        params and prototypes
 *   combine_api.c    validation, params from a case, the CPU backend entry
 *   combine_model.c  the CPU model (the kernel's formula and split order in C)
 *   combine.cu       the kernel, its launcher and the GPU backend entry
 *
 * One params struct drives both: ac_combine_launch reads the data pointers as
 * device pointers, ac_combine_cpu takes the SAME struct with host pointers.
 * Both validate first: bad input gets a named error and nothing is launched
 * or written. Includable without cuda_runtime.h (the stream is a void *). */
#ifndef AC_COMBINE_H
#define AC_COMBINE_H

#include <stdint.h>

#include "ac_backend.h"
#include "ac_case.h"
#include "ac_status.h"
#include "ac_tensors.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ac_combine_params {
    ac_dtype dtype;              /* of o */
    int64_t rows;                /* (query, head) rows, e.g. total_q * Hq */
    int32_t num_splits;          /* S in [1, AC_MAX_SPLITS] */
    int32_t head_dim;            /* D in [1, AC_MAX_HEAD_DIM] */
    const float *o_part;         /* [rows, S, D] each normalised by its own sum */
    const float *lse_part;       /* [rows, S] natural log; -inf = empty split (O_s never read) */
    void *o;                     /* [rows, D] in dtype (optional) */
    float *o_f32;                /* [rows, D] (optional; at least one of o, o_f32) */
    float *lse;                  /* [rows] (optional) */
    /* Decode's final combine only (the COMBINE family takes no features and
       leaves these zero): the sink of row r is sinks[r % sink_heads], a
       natural-log logit that joins the denominator once, here:
       LSE = ln(exp(sink) + sum_s exp(LSE_s)). NULL: no sinks. Same kind of
       pointer as the data (device for the launch, host for the model). */
    const float *sinks;          /* [sink_heads] or NULL; -inf entries = no sink */
    int32_t sink_heads;          /* >= 1 when sinks is set (rows are (token, head), head fastest) */
} ac_combine_params;

ac_status ac_combine_validate(const ac_combine_params *p, ac_error *err);
/* Fill params from a combine case and its host tensors (rows = total_q * Hq);
   o / o_f32 / lse from `o` (may be NULL). */
ac_status ac_combine_params_from_case(const ac_case *c, const ac_tensors *t, ac_outputs *o,
                                      ac_combine_params *p, ac_error *err);
/* CPU model on host pointers. bug: AC_BUG_COMBINE_NO_INF_GUARD or none. */
ac_status ac_combine_cpu(const ac_combine_params *p, ac_bug bug, ac_error *err);
/* GPU, on `stream` (a cudaStream_t; NULL: the default stream). Only in a
   build with CUDA. */
ac_status ac_combine_launch(const ac_combine_params *p, void *stream, ac_error *err);

#ifdef __cplusplus
}
#endif
#endif
