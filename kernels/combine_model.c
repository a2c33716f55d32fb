/* CPU model of the split-KV combine (kernels/combine.cu). Per row, in fp32:
 *   M = max over non-empty splits of LSE_s   (an empty split has LSE_s = -inf)
 *   w_s = exp(LSE_s - M), L = sum_s w_s, LSE = M + ln L
 *   O = sum_s (w_s / L) * O_s, summed in split order.
 * Empty splits are skipped entirely: their O_s is never read (it may be NaN).
 * Every split empty: O = 0, LSE = -inf. With a sink (decode's final combine
 * only), M and L also take it in: w_sink = exp(sink - M) joins L, not O; every
 * split empty then gives O = 0, LSE = sink. */
#include <math.h>
#include <stdlib.h>

#include "ac_numfmt.h"
#include "combine.h"

/* One row; the GPU kernel computes the same formula (combine.cu). */
static void combine_row(const ac_combine_params *p, int64_t r, ac_bug bug)
{
    const int32_t S = p->num_splits, d = p->head_dim;
    const float *lse_s = p->lse_part + r * S;
    const float *o_s = p->o_part + r * S * (int64_t)d;
    const int guard = bug != AC_BUG_COMBINE_NO_INF_GUARD;
    const float sink = p->sinks ? p->sinks[r % p->sink_heads] : -INFINITY;
    float m = sink;
    for (int32_t s = 0; s < S; s++) m = fmaxf(m, lse_s[s]);
    if (guard && m == -INFINITY) {
        for (int32_t e = 0; e < d; e++) {
            if (p->o) ((uint16_t *)p->o)[r * d + e] = ac_f32_to_half(p->dtype, 0.0f);
            if (p->o_f32) p->o_f32[r * d + e] = 0.0f;
        }
        if (p->lse) p->lse[r] = -INFINITY;
        return;
    }
    float l = 0.0f;
    for (int32_t s = 0; s < S; s++)
        if (!guard || lse_s[s] != -INFINITY) l += expf(lse_s[s] - m);
    if (sink != -INFINITY) l += expf(sink - m); /* the denominator only: no value row */
    const float lse = m + logf(l);
    for (int32_t e = 0; e < d; e++) {
        float acc = 0.0f;
        for (int32_t s = 0; s < S; s++) {
            if (guard && lse_s[s] == -INFINITY) continue; /* never read an empty split's O_s */
            acc += (expf(lse_s[s] - m) / l) * o_s[(int64_t)s * d + e];
        }
        if (p->o) ((uint16_t *)p->o)[r * d + e] = ac_f32_to_half(p->dtype, acc);
        if (p->o_f32) p->o_f32[r * d + e] = acc;
    }
    if (p->lse) p->lse[r] = lse;
}

ac_status ac_combine_cpu(const ac_combine_params *p, ac_bug bug, ac_error *err)
{
    ac_status st = ac_combine_validate(p, err);
    if (st) return st;
    for (int64_t r = 0; r < p->rows; r++) combine_row(p, r, bug);
    return AC_OK;
}
