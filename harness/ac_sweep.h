/* The case matrices of the default check sweep, one per kernel family. */
#ifndef AC_SWEEP_H
#define AC_SWEEP_H

#include <stdint.h>

#include "ac_case.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ac_case_list {
    ac_case *cases;
    char (*group)[64];  /* configuration group of each case, for the summary table */
    int32_t n, cap;
} ac_case_list;

/* Append the matrix of `family` (a name of common/ac_families.def).
   quick != 0 gives a small representative subset. seed varies the data. */
ac_status ac_sweep_build(const char *family, int quick, uint64_t seed, ac_case_list *list, ac_error *err);
void ac_case_list_free(ac_case_list *list);

/* For the families' matrix builders (harness/family_<name>.c): append a
   default case to `group` (NULL when out of memory), set B sequences'
   lengths, and the value distributions a matrix cycles through. */
ac_case *ac_sweep_push(ac_case_list *list, const char *group, ac_error *err);
ac_status ac_sweep_set_lengths(ac_case *c, int32_t batch, const int32_t *lq, const int32_t *lk, ac_error *err);
extern const ac_dist ac_sweep_dist_cycle[5];
/* The feature groups of the prefill and decode matrices: combination
   `combo` (0..AC_SWEEP_FEATURE_COMBOS-1: window, softcap, ALiBi, sinks, then
   pairs, three and all four) set on c, after heads_q; `idx` varies the
   values (window edges at 0, a 16-key block, the 64-key tile and past it;
   caps that bite or barely; sinks finite and -inf). */
#define AC_SWEEP_FEATURE_COMBOS 8
ac_status ac_sweep_features(ac_case *c, int combo, int idx, ac_error *err);
/* The K/V groups of op's matrix ("<family> fp8 kv", "<family> head_dim_v"),
   appended after the family's own rows: E4M3 and E5M2 with scales per
   tensor and per KV head, contiguous and paged prefill, split decodes, the
   store; D_v 192/128 and 128/64, alone and on an FP8 cache, and one 576/512
   row (past the bundled kernels' 256: unsupported there). Nothing for a
   family that takes neither (combine), nor in the quick sweep. */
ac_status ac_sweep_kv_rows(ac_op op, int quick, uint64_t seed, ac_case_list *list, ac_error *err);

#ifdef __cplusplus
}
#endif
#endif
