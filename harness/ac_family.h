/* The family registry: one descriptor per kernel family (common/ac_families.def),
 * defined in harness/family_<name>.c beside the family's sweep matrix. The CLI,
 * the sweeps, the selftest, the fuzzers and the corpus replay enumerate the
 * families from here instead of listing them; CMake reads the same .def file
 * to register each family's ctests. docs/EXTENDING.md. */
#ifndef AC_FAMILY_H
#define AC_FAMILY_H

#include <stddef.h>
#include <stdint.h>

#include "ac_backend.h"
#include "ac_case.h"
#include "ac_status.h"
#include "ac_sweep.h"

#ifdef __cplusplus
extern "C" {
#endif

/* How the verdict judges a family's outputs (docs/VERDICT.md). */
typedef enum ac_judge {
    AC_JUDGE_BOUND = 0, /* attention: O in the input dtype (P rounded to it) and LSE, under the bound */
    AC_JUDGE_BOUND_F32, /* O in fp32 with fp32 weights (the combine's partials) and LSE, under the bound */
    AC_JUDGE_BITWISE,   /* the caches after a store: bit for bit, no error map */
} ac_judge;

typedef struct ac_family {
    ac_op op;
    const char *name;         /* ac_op_name(op): the CLI's FAMILY, the case line's first word */
    const char *about;        /* one line */
    const char *corpus_dir;   /* corpus/<corpus_dir>: this family's saved cases */
    /* The default check sweep's matrix: append this family's cases; quick != 0
       gives a representative subset; seed varies the data. */
    ac_status (*sweep)(int quick, uint64_t seed, ac_case_list *list, ac_error *err);
    /* 1 if the oracle computes this family in arithmetic (softmax, sums): its
       fast and MPFR modes are compared by `attncheck run`'s self-check. 0 for
       a family the oracle answers by copying (store). */
    int oracle_arith;
    ac_judge judge;
} ac_family;

/* The judging rule of the case's family (AC_JUDGE_BOUND for an unknown op). */
ac_judge ac_family_judge(ac_op op);

#define AC_FAMILY(name, NAME, ...) extern const ac_family ac_family_##name;
#include "ac_families.def"
#undef AC_FAMILY

/* Every family, in op order (AC_OP_COUNT of them). */
const ac_family *const *ac_families(void);
const ac_family *ac_family_of(ac_op op);            /* NULL if op is unknown */
const ac_family *ac_family_find(const char *name);  /* NULL if unknown */
/* "prefill, decode, combine or store" for messages and --help. */
void ac_family_names(char *buf, size_t n);

/* The family's entry on a backend (NULL if that backend lacks it). */
ac_run_fn ac_family_entry(const ac_family *f, ac_backend be);

#ifdef __cplusplus
}
#endif
#endif
