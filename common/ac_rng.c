/* SplitMix64 and the draws made from it (docs/DATA.md). Integer code and
 * exact conversions only: the same bits on every platform and compiler. */
#include "ac_rng.h"

uint64_t ac_mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void ac_rng_init(ac_rng *r, uint64_t seed, uint64_t stream)
{
    /* For a fixed seed, stream -> state is injective (ac_mix64 is a bijection). */
    r->state = ac_mix64(seed ^ ac_mix64(stream + AC_RNG_GOLDEN));
}

uint64_t ac_rng_next(ac_rng *r)
{
    r->state += AC_RNG_GOLDEN;
    return ac_mix64(r->state);
}

uint64_t ac_rng_hash(uint64_t x) { return ac_mix64(x + AC_RNG_GOLDEN); }

/* High and low words of the 128-bit product a * b, in portable C. */
static void mul128(uint64_t a, uint64_t b, uint64_t *hi, uint64_t *lo)
{
    uint64_t a0 = a & 0xffffffffu, a1 = a >> 32, b0 = b & 0xffffffffu, b1 = b >> 32;
    uint64_t p00 = a0 * b0, p01 = a0 * b1, p10 = a1 * b0, p11 = a1 * b1;
    uint64_t mid = (p00 >> 32) + (p01 & 0xffffffffu) + (p10 & 0xffffffffu);
    *lo = (mid << 32) | (p00 & 0xffffffffu);
    *hi = p11 + (p01 >> 32) + (p10 >> 32) + (mid >> 32);
}

uint64_t ac_rng_below(ac_rng *r, uint64_t n)
{
    /* Lemire (2019): the high word of x * n is uniform in [0, n) once the
       low words below 2^64 mod n are rejected. */
    uint64_t hi, lo;
    mul128(ac_rng_next(r), n, &hi, &lo);
    if (lo < n) {
        uint64_t threshold = (0 - n) % n;
        while (lo < threshold) mul128(ac_rng_next(r), n, &hi, &lo);
    }
    return hi;
}

double ac_rng_unit(ac_rng *r)
{
    return (double)(ac_rng_next(r) >> 11) * 0x1p-53; /* 53-bit integer: exact */
}

double ac_rng_normal(ac_rng *r)
{
    /* Irwin-Hall(12) on 48-bit uniforms, summed as integers: the sum is below
       12 * 2^48 < 2^52, so (sum - 6 * 2^48) * 2^-48 is exact. Mean 0,
       variance 12 * (1/12) = 1, support [-6, 6]. */
    int64_t sum = 0;
    for (int i = 0; i < 12; i++) sum += (int64_t)(ac_rng_next(r) >> 16);
    return (double)(sum - 6 * ((int64_t)1 << 48)) * 0x1p-48;
}
