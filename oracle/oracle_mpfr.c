/* AC_ORACLE_MPFR: one row of the contract with every sum, exp, log and
 * division in MPFR at AC_ORACLE_PREC bits, from the exact input values.
 * The products q_d * k_jd are exact in double (bf16/fp16 significands have
 * 8/11 bits, so a product has at most 22 and its exponent stays far inside
 * double's range), so each dot-product step is one correctly rounded add. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "oracle.h"
#include "oracle_internal.h"

struct ac_mpfr_ws {
    mpfr_t *s;       /* [cap] logits, then exp(s_j - m) */
    size_t cap;
    mpfr_t acc, tmp, m, sum, log2;
};

static int reserve(ac_mpfr_ws **wsp, size_t n)
{
    ac_mpfr_ws *ws = *wsp;
    if (!ws) {
        ws = calloc(1, sizeof *ws);
        if (!ws) return -1;
        mpfr_inits2(AC_ORACLE_PREC, ws->acc, ws->tmp, ws->m, ws->sum, ws->log2, (mpfr_ptr)0);
        mpfr_const_log2(ws->log2, MPFR_RNDN);
        *wsp = ws;
    }
    if (n > ws->cap) {
        mpfr_t *s = realloc(ws->s, sizeof(mpfr_t) * n);
        if (!s) return -1;
        for (size_t i = ws->cap; i < n; i++) mpfr_init2(s[i], AC_ORACLE_PREC);
        ws->s = s;
        ws->cap = n;
    }
    return 0;
}

void ac_mpfr_ws_free(ac_mpfr_ws *ws)
{
    if (!ws) return;
    for (size_t i = 0; i < ws->cap; i++) mpfr_clear(ws->s[i]);
    free(ws->s);
    mpfr_clears(ws->acc, ws->tmp, ws->m, ws->sum, ws->log2, (mpfr_ptr)0);
    free(ws);
}

int ac_mpfr_row(ac_mpfr_ws **wsp, const ac_row_in *in, ac_dtype dtype, ac_row_out *out)
{
    int32_t D = in->head_dim, Dv = in->head_dim_v ? in->head_dim_v : in->head_dim, n = in->n;
    const ac_fmt *half = ac_fmt_of(dtype);
    if (reserve(wsp, (size_t)(n > 0 ? n : 1))) return -1;
    ac_mpfr_ws *ws = *wsp;
    int sink = in->sink > -INFINITY;
    if (n == 0) { /* empty allowed set: O = 0, LSE = the sink (-inf without one) */
        for (int32_t d = 0; d < Dv; d++) {
            out->o[d] = 0.0;
            out->o_f32[d] = 0.0f;
            out->o_half[d] = 0;
        }
        out->lse = out->lse2 = -INFINITY;
        if (sink) {
            out->lse = in->sink;
            mpfr_set_d(ws->tmp, in->sink, MPFR_RNDN);
            mpfr_div(ws->tmp, ws->tmp, ws->log2, MPFR_RNDN);
            out->lse2 = mpfr_get_d(ws->tmp, MPFR_RNDN);
        }
        return 0;
    }
    mpfr_t *s = ws->s;
    for (int32_t j = 0; j < n; j++) {
        if (in->logits) {
            mpfr_set_d(s[j], in->logits[j], MPFR_RNDN); /* exact */
            if (in->logits_base2) { /* 2^l = e^(l ln 2): one rounding at the working precision */
                mpfr_const_log2(ws->acc, MPFR_RNDN);
                mpfr_mul(s[j], s[j], ws->acc, MPFR_RNDN);
            }
        } else {
            const double *k = in->kr + (int64_t)in->idx[j] * D;
            mpfr_set_zero(ws->acc, 1);
            for (int32_t d = 0; d < D; d++) mpfr_add_d(ws->acc, ws->acc, in->q[d] * k[d], MPFR_RNDN);
            if (in->scale_mp)
                mpfr_mul(s[j], ws->acc, in->scale_mp, MPFR_RNDN);
            else
                mpfr_mul_d(s[j], ws->acc, in->scale, MPFR_RNDN);
            if (in->softcap > 0.0) { /* three roundings at AC_ORACLE_PREC bits; tanh's slope is <= 1 */
                mpfr_div_d(s[j], s[j], in->softcap, MPFR_RNDN);
                mpfr_tanh(s[j], s[j], MPFR_RNDN);
                mpfr_mul_d(s[j], s[j], in->softcap, MPFR_RNDN);
                out->capped[j] = mpfr_get_d(s[j], MPFR_RNDN);
            }
            if (in->alibi) { /* slope (24 bits) times an integer (< 2^33): exact at this precision */
                mpfr_set_d(ws->tmp, in->alibi_slope, MPFR_RNDN);
                mpfr_mul_si(ws->tmp, ws->tmp, (long)((int64_t)in->idx[j] - in->alibi_diag), MPFR_RNDN);
                mpfr_add(s[j], s[j], ws->tmp, MPFR_RNDN);
            }
            if (in->bias) mpfr_add_d(s[j], s[j], in->bias[j], MPFR_RNDN);
        }
        out->s[j] = mpfr_get_d(s[j], MPFR_RNDN);
        if (j == 0 || mpfr_greater_p(s[j], ws->m)) mpfr_set(ws->m, s[j], MPFR_RNDN);
    }
    if (sink && mpfr_cmp_d(ws->m, in->sink) < 0) mpfr_set_d(ws->m, in->sink, MPFR_RNDN);
    /* Subtracting the maximum changes nothing mathematically; it keeps the
       exponentials in [0, 1] (MPFR's exponent range would cope anyway). */
    mpfr_set_zero(ws->sum, 1);
    if (sink) { /* the sink's term: in the denominator, weighting no value row */
        mpfr_set_d(ws->tmp, in->sink, MPFR_RNDN);
        mpfr_sub(ws->tmp, ws->tmp, ws->m, MPFR_RNDN);
        mpfr_exp(ws->tmp, ws->tmp, MPFR_RNDN);
        mpfr_add(ws->sum, ws->sum, ws->tmp, MPFR_RNDN);
    }
    for (int32_t j = 0; j < n; j++) {
        mpfr_sub(s[j], s[j], ws->m, MPFR_RNDN);
        mpfr_exp(s[j], s[j], MPFR_RNDN);
        mpfr_add(ws->sum, ws->sum, s[j], MPFR_RNDN);
    }
    for (int32_t d = 0; d < Dv; d++) {
        mpfr_set_zero(ws->acc, 1);
        for (int32_t j = 0; j < n; j++) {
            mpfr_mul_d(ws->tmp, s[j], in->vr[(int64_t)in->idx[j] * Dv + d], MPFR_RNDN);
            mpfr_add(ws->acc, ws->acc, ws->tmp, MPFR_RNDN);
        }
        mpfr_div(ws->acc, ws->acc, ws->sum, MPFR_RNDN);
        if (in->v_scale != 0.0 && in->v_scale != 1.0) mpfr_mul_d(ws->acc, ws->acc, in->v_scale, MPFR_RNDN);
        out->o[d] = mpfr_get_d(ws->acc, MPFR_RNDN);
        out->o_f32[d] = (float)ac_round_mpfr(ws->acc, &ac_fmt_f32);
        out->o_half[d] = ac_exact_to_half_bits(dtype, ac_round_mpfr(ws->acc, half));
    }
    for (int32_t j = 0; j < n; j++) {
        mpfr_div(ws->tmp, s[j], ws->sum, MPFR_RNDN);
        out->p[j] = mpfr_get_d(ws->tmp, MPFR_RNDN);
    }
    mpfr_log(ws->tmp, ws->sum, MPFR_RNDN);
    mpfr_add(ws->tmp, ws->tmp, ws->m, MPFR_RNDN);
    out->lse = mpfr_get_d(ws->tmp, MPFR_RNDN);
    mpfr_div(ws->tmp, ws->tmp, ws->log2, MPFR_RNDN);
    out->lse2 = mpfr_get_d(ws->tmp, MPFR_RNDN);
    return 0;
}
