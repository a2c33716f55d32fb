/* bf16 / fp16 <-> fp32 / fp64 in integer code.
 *
 * Every conversion goes through one routine, round_bits(): a nonzero finite
 * value m * 2^E (m an integer) is rounded once, to nearest with ties to even,
 * onto the grid of a binary format with t stored significand bits and the
 * given exponent bias; the result is that format's bit pattern. Subnormals,
 * overflow to Inf and the carry into the next binade all fall out of the
 * integer arithmetic. No FPU rounding mode and no libm is involved, so the
 * result is the same on every host and in device code. */
#include "ac_numfmt.h"

#include <math.h>
#include <string.h>



/* Index of the most significant set bit of m (m != 0). */
static int msb64(uint64_t m)
{
    int r = 0;
    if (m >> 32) { m >>= 32; r += 32; }
    if (m >> 16) { m >>= 16; r += 16; }
    if (m >> 8) { m >>= 8; r += 8; }
    if (m >> 4) { m >>= 4; r += 4; }
    if (m >> 2) { m >>= 2; r += 2; }
    if (m >> 1) r += 1;
    return r;
}

/* Round m * 2^E (m > 0) to the format with t fraction bits and exponent bias
   `bias` (max biased exponent 2*bias+1 is Inf/NaN). Returns the magnitude bits. */
static uint32_t round_bits(uint64_t m, int E, int t, int bias)
{
    int e = msb64(m) + E;                 /* value in [2^e, 2^(e+1)) */
    int emin = 1 - bias, emax = bias;
    uint32_t inf = (uint32_t)(2 * bias + 1) << t;
    if (e > emax) return inf;
    int q = (e >= emin ? e : emin) - t;   /* exponent of the target's ulp at this value */
    int shift = q - E;
    uint64_t r;
    if (shift <= 0) {
        r = m << -shift;                  /* exact: fewer bits than the target holds */
    } else if (shift > 64) {
        r = 0;                            /* m < 2^64 <= 2^(shift-1): below half an ulp */
    } else {
        uint64_t rem, half;
        if (shift == 64) {
            r = 0;
            rem = m;
            half = (uint64_t)1 << 63;
        } else {
            r = m >> shift;
            rem = m & (((uint64_t)1 << shift) - 1);
            half = (uint64_t)1 << (shift - 1);
        }
        if (rem > half || (rem == half && (r & 1))) r++;
    }
    /* r counts ulps of 2^q. For a normal value r includes the hidden bit 2^t,
       which adds one to the exponent field: hence the (bias - 1). A carry to
       r == 2^(t+1) moves to the next binade, and past the largest finite
       value that is exactly the Inf pattern. Subnormals: the field is 0 and r
       is the pattern itself (r == 2^t is the smallest normal). */
    uint64_t bits = (e >= emin ? ((uint64_t)(e + bias - 1) << t) : 0) + r;
    return bits >= inf ? inf : (uint32_t)bits;
}

/* Format parameters: stored fraction bits, bias. */
#define T_BF16 7
#define B_BF16 127
#define T_FP16 10
#define B_FP16 15
#define T_F32 23
#define B_F32 127

/* fp32 -> half format (t, bias); NaN keeps its sign and top payload, made quiet. */
static uint16_t f32_to_fmt(float f, int t, int bias)
{
    uint32_t u = ac_f32_bits(f);
    uint16_t sign = (uint16_t)((u >> 31) << 15);
    uint32_t ef = (u >> 23) & 0xff, mf = u & 0x7fffff;
    uint16_t inf = (uint16_t)((2 * bias + 1) << t);
    if (ef == 0xff) {
        if (mf == 0) return sign | inf;
        return (uint16_t)(sign | inf | (1u << (t - 1)) | (mf >> (23 - t)));
    }
    if (ef == 0 && mf == 0) return sign;
    uint64_t m = ef ? (mf | (1u << 23)) : mf;
    int E = ef ? (int)ef - 150 : -149;
    return (uint16_t)(sign | round_bits(m, E, t, bias));
}

static uint16_t f64_to_fmt(double x, int t, int bias)
{
    uint64_t u;
    memcpy(&u, &x, sizeof u);
    uint16_t sign = (uint16_t)((u >> 63) << 15);
    uint64_t ef = (u >> 52) & 0x7ff, mf = u & 0xfffffffffffffull;
    uint16_t inf = (uint16_t)((2 * bias + 1) << t);
    if (ef == 0x7ff) {
        if (mf == 0) return sign | inf;
        return (uint16_t)(sign | inf | (1u << (t - 1)) | (uint16_t)(mf >> (52 - t)));
    }
    if (ef == 0 && mf == 0) return sign;
    uint64_t m = ef ? (mf | ((uint64_t)1 << 52)) : mf;
    int E = ef ? (int)ef - 1075 : -1074;
    return (uint16_t)(sign | round_bits(m, E, t, bias));
}

float ac_bf16_to_f32(uint16_t h)
{
    /* bf16 is the top half of an fp32 pattern: exact, NaN payload kept. */
    return ac_f32_from_bits((uint32_t)h << 16);
}

float ac_fp16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h >> 15) << 31;
    uint32_t e = (h >> 10) & 0x1f, mant = h & 0x3ff;
    if (e == 0x1f) return ac_f32_from_bits(sign | 0x7f800000u | (mant << 13));
    if (e == 0 && mant == 0) return ac_f32_from_bits(sign);
    /* Every fp16 value is exact in fp32, so round_bits only re-encodes. */
    uint64_t m = e ? (mant | 0x400u) : mant;
    int E = e ? (int)e - 25 : -24;
    return ac_f32_from_bits(sign | round_bits(m, E, T_F32, B_F32));
}

uint16_t ac_f32_to_bf16(float f) { return f32_to_fmt(f, T_BF16, B_BF16); }
uint16_t ac_f32_to_fp16(float f) { return f32_to_fmt(f, T_FP16, B_FP16); }
uint16_t ac_f64_to_bf16(double x) { return f64_to_fmt(x, T_BF16, B_BF16); }
uint16_t ac_f64_to_fp16(double x) { return f64_to_fmt(x, T_FP16, B_FP16); }

float ac_half_to_f32(ac_dtype t, uint16_t h) { return t == AC_FP16 ? ac_fp16_to_f32(h) : ac_bf16_to_f32(h); }
uint16_t ac_f32_to_half(ac_dtype t, float f) { return t == AC_FP16 ? ac_f32_to_fp16(f) : ac_f32_to_bf16(f); }
uint16_t ac_f64_to_half(ac_dtype t, double x) { return t == AC_FP16 ? ac_f64_to_fp16(x) : ac_f64_to_bf16(x); }
double ac_unit_roundoff(ac_dtype t) { return t == AC_FP16 ? AC_U_FP16 : AC_U_BF16; }

int ac_half_isnan(ac_dtype t, uint16_t h)
{
    return (h & 0x7fffu) > (t == AC_FP16 ? 0x7c00u : 0x7f80u);
}

/* Ordinal: consecutive finite values of a format have consecutive ordinals,
   with +0 and -0 both at 0 (sign-magnitude to two's-complement order). */
static int64_t ordinal(uint64_t magnitude, int negative)
{
    return negative ? -(int64_t)magnitude : (int64_t)magnitude;
}

int64_t ac_half_ulp_diff(ac_dtype t, uint16_t a, uint16_t b)
{
    (void)t; /* both formats are sign-magnitude with the sign in bit 15 */
    int64_t d = ordinal(a & 0x7fffu, a >> 15) - ordinal(b & 0x7fffu, b >> 15);
    return d < 0 ? -d : d;
}

int64_t ac_f32_ulp_diff(float a, float b)
{
    uint32_t ua = ac_f32_bits(a), ub = ac_f32_bits(b);
    int64_t d = ordinal(ua & 0x7fffffffu, ua >> 31) - ordinal(ub & 0x7fffffffu, ub >> 31);
    return d < 0 ? -d : d;
}

/* FP8: mantissa bits and exponent bias of each format. */
static void fp8_params(ac_kv_format f, int *mbits, int *bias)
{
    *mbits = f == AC_KV_E5M2 ? 2 : 3;
    *bias = f == AC_KV_E5M2 ? 15 : 7;
}

int ac_fp8_isnan(ac_kv_format f, uint8_t code)
{
    if (f == AC_KV_E5M2) return (code & 0x7cu) == 0x7cu && (code & 0x03u) != 0;
    return (code & 0x7fu) == 0x7fu;
}

double ac_fp8_to_double(ac_kv_format f, uint8_t code)
{
    int mb, bias;
    fp8_params(f, &mb, &bias);
    int neg = code >> 7, e = (code & 0x7f) >> mb, m = code & ((1 << mb) - 1);
    double v;
    if (ac_fp8_isnan(f, code)) return NAN;
    if (f == AC_KV_E5M2 && e == 31) v = INFINITY;
    else if (e == 0) v = ldexp((double)m, 1 - bias - mb);                /* subnormal */
    else v = ldexp((double)((1 << mb) | m), e - bias - mb);
    return neg ? -v : v;
}

float ac_fp8_to_f32(ac_kv_format f, uint8_t code) { return (float)ac_fp8_to_double(f, code); }

uint8_t ac_f32_to_fp8(ac_kv_format f, float x)
{
    int mb, bias;
    fp8_params(f, &mb, &bias);
    uint32_t u = ac_f32_bits(x);
    uint8_t sign = (uint8_t)((u >> 31) << 7);
    uint32_t ex = (u >> 23) & 0xffu, man = u & 0x7fffffu;
    /* The largest finite code: E4M3 S.1111.110, E5M2 S.11110.11. */
    uint8_t maxc = f == AC_KV_E5M2 ? 0x7bu : 0x7eu;
    if (ex == 0xffu) return man ? (uint8_t)(sign | 0x7fu) : (uint8_t)(sign | maxc); /* NaN; Inf saturates */
    if (ex == 0) return sign; /* zero and fp32 subnormals (< 2^-126) round to 0 */
    int e = (int)ex - 127;                       /* x = sig * 2^(e - 23) */
    if (e > 20) return (uint8_t)(sign | maxc);  /* far past both formats' largest */
    uint64_t sig = (1u << 23) | man;
    int emin = 1 - bias;
    int shift = 23 - mb + (e < emin ? emin - e : 0); /* quanta of 2^(max(e, emin) - mb) */
    if (shift > 40) return sign;
    uint64_t r = sig >> shift, rem = sig & ((1ull << shift) - 1), half = 1ull << (shift - 1);
    if (rem > half || (rem == half && (r & 1u))) r++;
    int qexp = (e < emin ? emin : e) - mb;       /* value = r * 2^qexp */
    if (r >= (2ull << mb)) { r >>= 1; qexp++; }  /* the carry renormalises (r was even) */
    if (r == 0) return sign;
    int field = r < (1ull << mb) ? 0 : qexp + mb + bias;
    uint32_t mant = (uint32_t)(field ? r - (1ull << mb) : r);
    uint32_t code = ((uint32_t)field << mb) | mant;
    if (code > maxc) code = maxc;
    return (uint8_t)(sign | code);
}

uint8_t ac_fp8_quantize(ac_kv_format f, float x, float scale) { return ac_f32_to_fp8(f, x / scale); }

double ac_kv_elem_to_double(ac_dtype t, ac_kv_format f, uint16_t bits)
{
    if (f == AC_KV_AS_DTYPE) return (double)ac_half_to_f32(t, bits);
    return ac_fp8_to_double(f, (uint8_t)(bits & 0xffu));
}

float ac_kv_elem_to_f32(ac_dtype t, ac_kv_format f, uint16_t bits)
{
    return f == AC_KV_AS_DTYPE ? ac_half_to_f32(t, bits) : ac_fp8_to_f32(f, (uint8_t)(bits & 0xffu));
}

int ac_kv_elem_isnan(ac_dtype t, ac_kv_format f, uint16_t bits)
{
    return f == AC_KV_AS_DTYPE ? ac_half_isnan(t, bits) : ac_fp8_isnan(f, (uint8_t)(bits & 0xffu));
}

/* The sign bit of a K/V storage element. */
static uint16_t kv_sign(ac_kv_format f, int neg)
{
    return neg ? (f == AC_KV_AS_DTYPE ? 0x8000u : 0x80u) : 0u;
}

uint16_t ac_kv_elem_nan(ac_dtype t, ac_kv_format f, int neg)
{
    const uint16_t m = f != AC_KV_AS_DTYPE ? 0x7fu : t == AC_FP16 ? 0x7e00u : 0x7fc0u;
    return (uint16_t)(kv_sign(f, neg) | m);
}

uint16_t ac_kv_elem_inf(ac_dtype t, ac_kv_format f, int neg)
{
    if (f == AC_KV_E4M3) return ac_kv_elem_nan(t, f, neg);
    const uint16_t m = f == AC_KV_E5M2 ? 0x7cu : t == AC_FP16 ? 0x7c00u : 0x7f80u;
    return (uint16_t)(kv_sign(f, neg) | m);
}

uint16_t ac_kv_elem_max(ac_dtype t, ac_kv_format f, int neg)
{
    const uint16_t m = f == AC_KV_E5M2 ? 0x7bu : f == AC_KV_E4M3 ? 0x7eu : t == AC_FP16 ? 0x7bffu : 0x7f7fu;
    return (uint16_t)(kv_sign(f, neg) | m);
}
