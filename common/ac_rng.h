/* The suite's one PRNG: SplitMix64 (Steele, Lea, Flood 2014). Data
 * generation (ac_gen), the oracle's row sampling, the fuzz mutators, the
 * properties, the selftest and the tests all draw from it, so a stream is
 * defined once (docs/DATA.md) and is the same on every platform. */
#ifndef AC_RNG_H
#define AC_RNG_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The state is the whole generator: `ac_rng r = {s}` starts the plain
   SplitMix64 sequence of state s (what ac_rng_hash(s) is the first output of). */
typedef struct ac_rng { uint64_t state; } ac_rng;

/* SplitMix64's state increment (2^64 / golden ratio, odd). */
#define AC_RNG_GOLDEN 0x9e3779b97f4a7c15ull

/* SplitMix64's output function: a bijection of 64-bit words. */
uint64_t ac_mix64(uint64_t z);

/* Stream `stream` of seed: independent streams per tensor, so adding a
   tensor never changes another's values. */
void ac_rng_init(ac_rng *r, uint64_t seed, uint64_t stream);
/* Next 64 bits: state += AC_RNG_GOLDEN, then ac_mix64(state). */
uint64_t ac_rng_next(ac_rng *r);
/* First output of the generator whose state is x: ac_mix64(x + AC_RNG_GOLDEN).
   Derives independent-looking seeds from (base, index) without a generator. */
uint64_t ac_rng_hash(uint64_t x);
/* Uniform integer in [0, n) (Lemire's unbiased method); n > 0. */
uint64_t ac_rng_below(ac_rng *r, uint64_t n);
/* Uniform double in [0, 1) with 53 random bits (exact). */
double ac_rng_unit(ac_rng *r);
/* Approximately N(0,1): Irwin-Hall sum of 12 uniforms minus 6 (exact in double). */
double ac_rng_normal(ac_rng *r);

#ifdef __cplusplus
}
#endif
#endif
