/* Split-KV combine: argument validation (shared with the CUDA host API) and
 * the CPU model of kernels/combine.cu. Per row, in fp32:
 *   M = max over non-empty splits of LSE_s   (an empty split has LSE_s = -inf)
 *   w_s = exp(LSE_s - M), L = sum_s w_s, LSE = M + ln L
 *   O = sum_s (w_s / L) * O_s, summed in split order.
 * Empty splits are skipped entirely: their O_s is never read (it may be NaN).
 * Every split empty: O = 0, LSE = -inf. */
#include <math.h>
#include <stdlib.h>

#include "ac_backend.h"
#include "ac_numfmt.h"
#include "attn_decode.h"

ac_status ac_attn_combine_validate(const ac_combine_params *p, ac_error *err)
{
    if (!p) return ac_fail(err, AC_ERR_NULL, "params is NULL");
    if ((int)p->dtype < 0 || p->dtype >= AC_DTYPE_COUNT)
        return ac_fail(err, AC_ERR_UNSUPPORTED, "dtype = %d: must be bf16 or fp16", (int)p->dtype);
    if (p->rows < 0 || p->rows > INT32_MAX)
        return ac_fail(err, AC_ERR_SHAPE, "rows = %lld: must be in [0, 2^31)", (long long)p->rows);
    if (p->num_splits < 1 || p->num_splits > AC_MAX_SPLITS)
        return ac_fail(err, AC_ERR_SHAPE, "num_splits = %d: must be in [1, %d]", p->num_splits, AC_MAX_SPLITS);
    if (p->head_dim < 1 || p->head_dim > AC_MAX_HEAD_DIM)
        return ac_fail(err, AC_ERR_SHAPE, "head_dim = %d: must be in [1, %d]", p->head_dim, AC_MAX_HEAD_DIM);
    if (!p->o_part) return ac_fail(err, AC_ERR_NULL, "o_part is NULL");
    if (!p->lse_part) return ac_fail(err, AC_ERR_NULL, "lse_part is NULL");
    if (!p->o && !p->o_f32) return ac_fail(err, AC_ERR_NULL, "o and o_f32 are both NULL: nothing to write");
    return AC_OK;
}

/* One row; the GPU kernel computes the same formula (combine.cu). */
static void combine_row(const ac_combine_params *p, int64_t r, int bug)
{
    const int32_t S = p->num_splits, d = p->head_dim;
    const float *lse_s = p->lse_part + r * S;
    const float *o_s = p->o_part + r * S * (int64_t)d;
    const int guard = bug != AC_BUG_COMBINE_NO_INF_GUARD;
    float m = -INFINITY;
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

ac_status ac_attn_combine_model(const ac_combine_params *p, int bug, ac_error *err)
{
    ac_status st = ac_attn_combine_validate(p, err);
    if (st) return st;
    for (int64_t r = 0; r < p->rows; r++) combine_row(p, r, bug);
    return AC_OK;
}

ac_status ac_model_combine(const ac_case *c, const ac_tensors *t, const ac_run_opts *o, ac_outputs *out,
                           ac_error *err)
{
    ac_combine_params p = {
        .dtype = c->dtype, .rows = ac_case_total_q(c) * c->heads_q, .num_splits = c->num_splits,
        .head_dim = c->head_dim, .o_part = t->o_part, .lse_part = t->lse_part,
        .o = out->o, .o_f32 = out->o_f32, .lse = out->lse,
    };
    ac_status st = ac_attn_combine_model(&p, o ? (int)o->bug : 0, err);
    if (!st && o && o->bug == AC_BUG_LSE_BASE2)
        for (int64_t r = 0; r < p.rows; r++) out->lse[r] *= 1.44269504088896340736f;
    return st;
}
