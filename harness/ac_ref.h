/* The CPU references of the suite, one per precision (docs/VERDICT.md, "One
 * reference, one bound"):
 *
 *  ac_ref64: the answer in double precision, with the magnitudes the verdict's
 *    bound is built from, in an ac_oracle_result, so ac_verdict_judge and
 *    ac_verdict_terms take it as they take the oracle's. Inputs are bf16/fp16
 *    (exact in double) and products of two of them are exact; a D-term sum in
 *    double errs by at most D 2^-53 sum|q k|, far below the fp32 effects the
 *    bound sizes, so this answer stands in for the exact one wherever a check
 *    compares a run with an answer: properties, unit tests of the CPU models,
 *    GPU benches. No MPFR, so it runs on shapes too large for the oracle.
 *  ac_ref32: the same-precision reference of flash-attn's tests, which the
 *    verdict's ratio is measured against.
 *
 * Plus the decode path's white-box law (ac_ref_decode_law), a tighter bound
 * than the verdict's that only the decode kernel and its CPU model promise. */
#ifndef AC_REF_H
#define AC_REF_H

#include <stddef.h>
#include <stdint.h>

#include "ac_case.h"
#include "ac_status.h"
#include "ac_tensors.h"
#include "oracle.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Flags of ac_ref64. */
#define AC_REF_KV_MOD 1u /* map query head h to KV head h % Hkv (what the GQA bug computes), not h / (Hq/Hkv) */

/* Prefill, decode (causal mode, masks, paged or contiguous K/V, GQA, and the
   features: window, softcap, ALiBi and sinks, docs/CONTRACT.md section 12), combine
   (softmax over the splits' LSEs, empty splits skipped) or store (the caches
   after the store) of case c on tensors t, in double. Fills every row
   (checked = 1): o, o_f32 and o_half (O rounded once to fp32 and to the
   dtype), lse (natural log, -inf for an empty row without a sink, the sink
   with one), spv, spvo, sv, sv_tiny, qk_abs, logit_abs, capped_abs,
   alibi_abs and n_allowed as oracle.h defines them; for the store
   k_cache, v_cache and kv_elems. t needs cu_seqlens_k for contiguous K/V and
   mask_off for a mask; not cu_seqlens_q (rows follow the case's seqlen_q).
   Free with ac_oracle_result_free. */
ac_status ac_ref64(const ac_case *c, const ac_tensors *t, unsigned flags, ac_oracle_result *res, ac_error *err);

/* Same-precision CPU reference (flash-attn's "reference in the same
   precision"): fp32 logits (tanhf softcap, fp32 ALiBi product), plain
   softmax in fp32 with the sink in the maximum and the sum, P rounded to the input
   dtype, fp32 accumulation, output rounded to the dtype. Prefill/decode/
   combine; allocates out (ac_outputs_alloc). The verdict's ratio_vs_ref. */
ac_status ac_ref32(const ac_case *c, const ac_tensors *t, ac_outputs *out, ac_error *err);

/* The decode kernel's (and its CPU model's) white-box law, docs/DECODE.md:
   worst |err| / bound over every row of a decode run `out` (o, o_f32, lse)
   against ref (ac_ref64 of the same case), > 1 fails, INFINITY with `why`
   filled at the first failure. `splits` is the split count the run used.
   It is not the verdict's bound but a tighter one that holds only for the
   decode kernel's arithmetic (P kept in fp32, chains of known length);
   callers assert it beside the verdict, never instead of it. */
double ac_ref_decode_law(const ac_case *c, const ac_oracle_result *ref, const ac_outputs *out, int32_t splits,
                         char *why, size_t n);

#ifdef __cplusplus
}
#endif
#endif
