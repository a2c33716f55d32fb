/* Deterministic data generation from (dist, seed): bit-identical on every
 * platform. The PRNG is SplitMix64 (Steele, Lea, Flood 2014) seeding one
 * stream per tensor; floats are made from integers with exact operations only
 * (no libm), then rounded by ac_numfmt. See docs/DATA.md. */
#ifndef AC_GEN_H
#define AC_GEN_H

#include <stdint.h>

#include "ac_case.h"
#include "ac_tensors.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ac_rng { uint64_t state; } ac_rng;

/* Stream `stream` of seed: independent streams per tensor, so adding a
   tensor never changes another's values. */
void ac_rng_init(ac_rng *r, uint64_t seed, uint64_t stream);
uint64_t ac_rng_next(ac_rng *r);
/* Uniform integer in [0, n) (Lemire's unbiased method); n > 0. */
uint64_t ac_rng_below(ac_rng *r, uint64_t n);
/* Uniform double in [0, 1) with 53 random bits (exact). */
double ac_rng_unit(ac_rng *r);
/* Approximately N(0,1): Irwin-Hall sum of 12 uniforms minus 6 (exact in double). */
double ac_rng_normal(ac_rng *r);

/* Materialise every tensor the case needs. Fills values according to
   c->dist, poisons unread cache slots and table entries per c->special. */
ac_status ac_gen(const ac_case *c, ac_tensors *t, ac_error *err);

#ifdef __cplusplus
}
#endif
#endif
