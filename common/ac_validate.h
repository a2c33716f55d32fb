/* Argument validation shared by the kernels' host API, the CPU models and
 * ac_case_validate: each check names the argument and the index at fault and
 * runs on host copies of the metadata before anything is launched or written. */
#ifndef AC_VALIDATE_H
#define AC_VALIDATE_H

#include <stdint.h>

#include "ac_status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Hq, Hkv > 0, Hq % Hkv == 0, D in the suite's range. */
ac_status ac_validate_heads(int32_t heads_q, int32_t heads_kv, int32_t head_dim, ac_error *err);

/* cu[0] == 0, non-decreasing, cu[batch] == total (total < 0: not checked). */
ac_status ac_validate_cu_seqlens(const char *name, const int32_t *cu, int32_t batch,
                                 int64_t total, ac_error *err);

/* Paged K/V: block_size > 0, num_blocks > 0, every seqlens_k[b] in
   [0, max_blocks_per_seq * block_size], and every *used* entry
   block_table[b][0 .. ceil(seqlens_k[b]/block_size)) in [0, num_blocks).
   Entries past the used ones are never read and never checked. */
ac_status ac_validate_paged(const int32_t *block_table, int32_t batch, int32_t max_blocks_per_seq,
                            const int32_t *seqlens_k, int32_t block_size, int32_t num_blocks,
                            ac_error *err);

/* Slot mapping: each slot is -1 (padding) or in [0, num_slots), and no two
   tokens share a slot. Exactly one of slots32 / slots64 is non-NULL. */
ac_status ac_validate_slots(const int32_t *slots32, const int64_t *slots64, int64_t num_tokens,
                            int64_t num_slots, ac_error *err);

/* The features' values (docs/CONTRACT.md, section 12): window sides >= -1
   (-1 = unbounded; pass -1, -1 when there is no window), softcap 0 (none) or in
   (0, 2^100], and for each of heads_q query heads a slope with |slope| <= 2^64
   and a sink with |sink| <= 2^64 or -inf. alibi_slopes / sinks: NULL when off.
   One check for ac_case_validate and the kernels' host APIs. */
ac_status ac_validate_features(int32_t window_left, int32_t window_right, float softcap,
                               const float *alibi_slopes, const float *sinks, int32_t heads_q, ac_error *err);

/* FP8 KV scales (docs/CONTRACT.md, section 13): n == 0 (scale 1), 1 (per
   tensor) or heads_kv (per KV head), only with an FP8 cache (fp8 != 0), each
   k_scales[i] and v_scales[i] finite in [2^-64, 2^64]. The message names the
   array and the index. */
ac_status ac_validate_kv_scales(int fp8, int32_t n, const float *k_scales, const float *v_scales, int32_t heads_kv,
                                ac_error *err);

#ifdef __cplusplus
}
#endif
#endif
