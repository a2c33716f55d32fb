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

/* Append the matrix of `family` ("prefill", "decode", "combine", "store").
   quick != 0 gives a small representative subset. seed varies the data. */
ac_status ac_sweep_build(const char *family, int quick, uint64_t seed, ac_case_list *list, ac_error *err);
void ac_case_list_free(ac_case_list *list);

#ifdef __cplusplus
}
#endif
#endif
