/* Judging a sparse case (the `sparse` special, docs/DATA.md): its batch may
 * pack 2^31 and more query elements, far more rows than the oracle could
 * hold. The sequences that have keys are gathered into a small *judged case*:
 * their queries, contiguous K/V and the kernel's outputs copied out, the
 * paged pool shared (it is only read through the table rows). Every row of a
 * sequence without keys is empty by the contract and is checked here
 * exactly: O = 0 (either sign) and LSE = -inf. */
#ifndef AC_SPARSE_H
#define AC_SPARSE_H

#include <stdint.h>

#include "ac_case.h"
#include "ac_status.h"
#include "ac_tensors.h"
#include "ac_verdict.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ac_sparse_judged {
    ac_case c;            /* the sequences with keys, in order */
    ac_tensors t;         /* k/v alias the full case's pool when paged (not owned) */
    ac_outputs out;       /* the kernel's outputs of those rows */
    int32_t *seq_of;      /* [c.batch] the full case's sequence of each judged one */
    int64_t *tok_of;      /* [c.batch] its first token in the full case's packing */
    int kv_aliased;
    /* Rows of sequences without keys that are not empty as they must be. */
    int64_t empty_bad, empty_rows;
    ac_coord empty_where; /* the first of them (seq, row, head, dim; dim -1: the LSE) */
    float empty_got;
} ac_sparse_judged;

/* Gather the judged case of a validated sparse prefill or decode case and
   check the empty rows; `out` holds the kernel's outputs of the full case. */
ac_status ac_sparse_gather(const ac_case *c, const ac_tensors *t, const ac_outputs *out, ac_sparse_judged *j,
                           ac_error *err);
/* Coordinates of the judged case back in the full case's numbering. */
void ac_sparse_unmap(const ac_sparse_judged *j, ac_coord *where, int32_t heads_q);
/* Fold the empty-row check into a verdict of the judged case: a bad empty
   row fails it and the summary says where. */
void ac_sparse_fold(const ac_sparse_judged *j, ac_verdict *v);
void ac_sparse_free(ac_sparse_judged *j);

#ifdef __cplusplus
}
#endif
#endif
