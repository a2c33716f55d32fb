/* Deterministic data generation from (dist, seed): bit-identical on every
 * platform. The PRNG is ac_rng (SplitMix64, common/ac_rng.h) with one
 * stream per tensor; floats are made from integers with exact operations only
 * (no libm), then rounded by ac_numfmt. See docs/DATA.md. */
#ifndef AC_GEN_H
#define AC_GEN_H

#include <stdint.h>

#include "ac_case.h"
#include "ac_rng.h"
#include "ac_tensors.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Materialise every tensor the case needs. Fills values according to
   c->dist, poisons unread cache slots and table entries per c->special.
   *t is overwritten (not freed first): pass a zeroed struct or one already
   released with ac_tensors_free. On error *t holds nothing. */
ac_status ac_gen(const ac_case *c, ac_tensors *t, ac_error *err);

/* Stream numbers of ac_gen's tensors (docs/DATA.md). */
enum {
    AC_STREAM_Q = 1, AC_STREAM_K, AC_STREAM_V, AC_STREAM_MASK, AC_STREAM_K_NEW, AC_STREAM_V_NEW,
    AC_STREAM_O_PART, AC_STREAM_LSE_PART, AC_STREAM_NEEDLE, AC_STREAM_POISON,
    AC_STREAM_LAYOUT, AC_STREAM_SLOTS
};

/* Paged layouts for tests, fuzzers and properties. */
typedef enum ac_layout {
    AC_LAYOUT_IDENTITY = 0,  /* sequence b's blocks follow sequence b-1's, in order */
    AC_LAYOUT_PERMUTED,      /* blocks drawn without replacement from a shuffled pool */
    AC_LAYOUT_SHARED_PREFIX, /* leading full blocks shared by the sequences that have them */
    AC_LAYOUT_COUNT
} ac_layout;

/* From c->batch, c->seqlen_k and c->block_size (> 0): set paged = 1,
   max_blocks_per_seq = max used blocks + 1 (one spare column, never read),
   num_blocks = blocks in use + extra_blocks (>= 0, never referenced) and the
   block table (drawn from stream AC_STREAM_LAYOUT of c->seed). Unused entries
   are -1, or garbage (negative or >= num_blocks) with AC_SPECIAL_GARBAGE_TABLE.
   SHARED_PREFIX: with F = max over b of floor(seqlen_k[b] / block_size), the
   first min(ceil(F/2), floor(seqlen_k[b] / block_size)) blocks of every
   sequence are the same physical blocks (full, hence read-only in a store). */
ac_status ac_case_make_layout(ac_case *c, ac_layout kind, int32_t extra_blocks, ac_error *err);

/* For a store case whose table is set (ac_case_make_layout): new tokens are
   the last n_b positions of each sequence, n_b = min(new_per_seq, positions
   of b that lie in blocks no other sequence uses), in sequence order, with
   pad_tokens padding tokens (-1) inserted at positions drawn from stream
   AC_STREAM_SLOTS. Sets num_tokens and slot_mapping (int64 values). */
ac_status ac_case_make_store_slots(ac_case *c, int32_t new_per_seq, int32_t pad_tokens, ac_error *err);

/* Name of a layout ("identity", "permuted", "shared"). */
const char *ac_layout_name(ac_layout kind);

/* Poscode (AC_DIST_POSCODE): in V at key position j (within its sequence)
   and KV head h, element d < AC_POSCODE_DIMS is ac_poscode_value(j, h, d):
   d < 8: digit_d / 16 with digit_d = (j >> 4d) & 15; d in 8..10: the 4-bit
   digits of h the same way; d == 11: 1.0. Elements past the code (and past
   D when D < 12: the code is truncated) are N(0,1). All are exact in bf16 and
   fp16, so sum_d 16^(d+1) * O_d over d < 8 is the attention-weighted mean position. */
#define AC_POSCODE_POS_DIGITS 8
#define AC_POSCODE_DIMS 12
double ac_poscode_value(int64_t pos, int32_t kv_head, int32_t d);

#ifdef __cplusplus
}
#endif
#endif
