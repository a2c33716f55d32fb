/* Number formats: bf16 and fp16 to and from fp32, round-to-nearest-even,
 * subnormals, Inf and NaN, in integer code (no FPU mode dependence).
 * Usable from CUDA device code too (AC_HD). */
#ifndef AC_NUMFMT_H
#define AC_NUMFMT_H

#include <stdint.h>
#include <string.h>

#include "ac_case.h"
#include "ac_index.h" /* AC_HD */

#ifdef __cplusplus
extern "C" {
#endif

/* An fp32 value's bit pattern and back, without aliasing games. */
static inline uint32_t ac_f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}
static inline float ac_f32_from_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* Unit roundoff u = 2^-p of each format (p = significand bits incl. hidden). */
#define AC_U_BF16 0x1p-8
#define AC_U_FP16 0x1p-11
#define AC_U_FP32 0x1p-24

float ac_bf16_to_f32(uint16_t h);
uint16_t ac_f32_to_bf16(float f);   /* RNE; NaN stays NaN (quiet), sign kept */
float ac_fp16_to_f32(uint16_t h);
uint16_t ac_f32_to_fp16(float f);   /* RNE incl. subnormals; overflow -> Inf */
/* Round a double once to bf16 / fp16 (no double rounding through fp32). */
uint16_t ac_f64_to_bf16(double x);
uint16_t ac_f64_to_fp16(double x);

/* Dispatch on dtype. */
float ac_half_to_f32(ac_dtype t, uint16_t h);
uint16_t ac_f32_to_half(ac_dtype t, float f);
uint16_t ac_f64_to_half(ac_dtype t, double x);
double ac_unit_roundoff(ac_dtype t);
/* Distance in units in the last place of the format between two values of it
   (both finite): |ordinal(a) - ordinal(b)|. */
int64_t ac_half_ulp_diff(ac_dtype t, uint16_t a, uint16_t b);
int64_t ac_f32_ulp_diff(float a, float b);
int ac_half_isnan(ac_dtype t, uint16_t h);

/* FP8 KV-cache formats (ac_kv_format, docs/CONTRACT.md section 13): E4M3 as
   OCP E4M3FN (bias 7, no Inf, NaN = S.1111.111, largest 448), E5M2 IEEE-like
   (bias 15, Inf, NaN, largest 57344). Exact, integer code. */
#define AC_FP8_E4M3_MAX 448.0f
#define AC_FP8_E5M2_MAX 57344.0f
/* The value of a code: exact in double; NaN for NaN codes, +-Inf for E5M2's. */
double ac_fp8_to_double(ac_kv_format f, uint8_t code);
float ac_fp8_to_f32(ac_kv_format f, uint8_t code);
int ac_fp8_isnan(ac_kv_format f, uint8_t code);
/* fp32 -> FP8, round to nearest even, saturating: a finite value past the
   largest and +-Inf become +-largest (CUDA's __NV_SATFINITE); NaN -> S.1111111. */
uint8_t ac_f32_to_fp8(ac_kv_format f, float x);
/* The store's quantisation of a new K/V element: ac_f32_to_fp8(f, x / scale)
   with x / scale rounded to fp32 once (IEEE division). */
uint8_t ac_fp8_quantize(ac_kv_format f, float x, float scale);
/* A K/V storage element's value without its scale: the half format t for
   AC_KV_AS_DTYPE, else the FP8 code in the element's low byte. */
double ac_kv_elem_to_double(ac_dtype t, ac_kv_format f, uint16_t bits);
/* The same as fp32 (exact: every half and FP8 value is an fp32 value). */
float ac_kv_elem_to_f32(ac_dtype t, ac_kv_format f, uint16_t bits);
/* 1 if the element is NaN (in its format). */
int ac_kv_elem_isnan(ac_dtype t, ac_kv_format f, uint16_t bits);
/* Special K/V storage elements, negative when neg: the half bit pattern
   for AC_KV_AS_DTYPE, else the FP8 code in the low byte (a half pattern's
   low byte would be a finite code). A quiet NaN; Inf (E4M3 has none: its
   NaN); the largest finite value (fp16 65504, bf16 ~3.4e38, 448, 57344). */
uint16_t ac_kv_elem_nan(ac_dtype t, ac_kv_format f, int neg);
uint16_t ac_kv_elem_inf(ac_dtype t, ac_kv_format f, int neg);
uint16_t ac_kv_elem_max(ac_dtype t, ac_kv_format f, int neg);

#ifdef __cplusplus
}
#endif
#endif
