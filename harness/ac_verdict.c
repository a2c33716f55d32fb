#include "ac_verdict.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ac_big.h"
#include "ac_family.h"
#include "ac_index.h"
#include "ac_numfmt.h"

/* ---- bound terms (docs/VERDICT.md derives each) -------------------------- */

/* fast exp2 (ex2.approx, __expf): relative error < 2^-21.5 on the GPU; 2^-21 covers it. */
#define AC_EPS_EXP 0x1p-21
/* fast log (__logf, lg2.approx): absolute error < 2^-21.4 for arguments near 1..2^k. */
#define AC_EPS_LOG 0x1p-21
/* Probabilistic accumulation factor lambda (Higham & Mary 2019): the error of an
   n-term fp32 sum exceeds lambda*sqrt(n)*u with probability < 2 exp(-lambda^2/2);
   lambda = 6 makes that < 3e-8 per sum. */
#define AC_LAMBDA_ACC 6.0
/* Logit chain after the dot product: scale multiply, log2(e) constant and
   product, bias add, max subtraction (|s - m| <= 2L): at most 5 roundings of
   size u32 * L. */
#define AC_LOGIT_ROUNDINGS 5.0
/* The default scale's representation error, in fp32 unit roundoffs u32 =
   2^-24 (relative), counted when the oracle used the exact 1/sqrt(D) (a dump:
   res->scale_exact). Kernels round the default once (D ** -0.5 passed as a
   float: <= 1 u32), twice (1.0f / sqrtf(D): <= 2 u32) or take CUDA's rsqrtf
   (<= 2 ulp = 4 u32); 4 u32 covers all three. It moves a logit by at most
   4 u32 * |scale q.k| <= 4 u32 * QK. */
#define AC_SCALE_REPR_U32 4.0
/* Softcap's tanh: a third-party kernel may use tanh.approx.f32, maximum
   relative error about 2^-11 (PTX ISA); doubled for the multiply by c and
   tanhf's own ulps, it moves a capped logit by at most 2^-10 |s_capped|. */
#define AC_TANH_REL 0x1p-10
/* Before the tanh, scale * q.k is divided by c: with the scale product that
   is 2 roundings of the argument, each moving c tanh(x / c) by at most
   u32 |scale q.k| (its slope is <= 1). */
#define AC_SOFTCAP_ARG_ROUNDINGS 2.0
/* ALiBi in fp32: slope * (float)dist is one rounding (the distance is exact
   below 2^24), and adding it to the capped logit one more, of at most
   u32 |bias| each beyond what AC_LOGIT_ROUNDINGS counts on |s|. */
#define AC_ALIBI_ROUNDINGS 2.0
/* Smallest normal fp32: a weight below it may be flushed to zero (ex2.approx.ftz,
   flush-to-zero arithmetic), dropping at most 2^-126 |v_j| per key. */
#define AC_FTZ 0x1p-126

static double eta_of(int judge_f32, ac_dtype dt)
{
    /* Half the smallest subnormal of the output format: the absolute part of
       its rounding error below the normal range. */
    if (judge_f32) return 0x1p-150;
    return dt == AC_FP16 ? 0x1p-25 : 0x1p-134;
}

void ac_verdict_terms(const ac_case *c, const ac_oracle_result *res, int64_t row, int judge_f32,
                      ac_bound_terms *tm)
{
    const double u32 = AC_U_FP32;
    double n = res->n_allowed[row] > 0 ? (double)res->n_allowed[row] : 1.0;
    int combine = ac_family_judge(c->op) == AC_JUDGE_BOUND_F32;
    /* A finite sink is one more term of the denominator's sum. */
    int32_t head = c->heads_q > 0 ? (int32_t)(row % c->heads_q) : 0;
    if (!combine && c->n_sinks > head && c->sinks[head] > -INFINITY) n += 1.0;
    /* P is rounded to the input dtype before P.V (not in the combine, where
       the weights stay fp32). */
    tm->u_out = (judge_f32 || combine) ? u32 : ac_unit_roundoff(c->dtype);
    tm->eta_out = eta_of(judge_f32 || combine, c->dtype);
    /* Dot product of D terms accumulated in fp32: worst case (D-1) u32 sum|q k|
       (recursive summation, Higham Thm 3.1), times |scale| (in qk_abs). */
    double dot = combine ? 0.0 : (double)(c->head_dim - 1) * u32 * res->qk_abs[row];
    tm->delta_s = dot + AC_LOGIT_ROUNDINGS * u32 * res->logit_abs[row] + AC_EPS_EXP;
    if (res->scale_exact && !combine) tm->delta_s += AC_SCALE_REPR_U32 * u32 * res->qk_abs[row];
    /* The features' logit errors (docs/VERDICT.md, "Features"); the sink's
       own |logit| is in logit_abs already (the max subtraction sees it). */
    if (!combine && c->softcap > 0.0f)
        tm->delta_s += AC_TANH_REL * (res->capped_abs ? res->capped_abs[row] : res->logit_abs[row]) +
                       AC_SOFTCAP_ARG_ROUNDINGS * u32 * res->qk_abs[row];
    if (!combine && c->n_alibi > 0)
        tm->delta_s += AC_ALIBI_ROUNDINGS * u32 * (res->alibi_abs ? res->alibi_abs[row] : res->logit_abs[row]);
    /* An FP8 cache (docs/VERDICT.md, "FP8 KV"): a kernel may dequantise each
       element into the dtype (one rounding, u_dtype relative, of every k_d and
       v_d) or fold the scales into fp32 (one rounding of scale * k_scale, one
       of O * v_scale). K's rounding moves the logit by at most
       u_dtype * sum_d |scale q_d k_d| <= u_dtype * QK, the fp32 fold by u32 * QK;
       V's moves O by at most u_dtype * sum_j P_j |v_j| (the u_in * spv term
       counts it a second time) and the fp32 multiply by u32 |O|. */
    tm->u_in = combine ? u32 : ac_unit_roundoff(c->dtype);
    if (!combine && c->kv_format != AC_KV_AS_DTYPE) {
        double ud = ac_unit_roundoff(c->dtype);
        tm->delta_s += (ud + u32) * res->qk_abs[row];
        tm->u_in += ud;
    }
    tm->gamma_n = AC_LAMBDA_ACC * sqrt(n) * u32;
    tm->eps_log = AC_EPS_LOG;
    /* P rounded to fp16 below its normal range (2^-14) has an absolute error of
       half its smallest subnormal, 2^-25 (bf16 shares fp32's range: 2^-134). */
    tm->eta_in = combine ? 0.0 : (c->dtype == AC_FP16 ? 0x1p-25 : 0x1p-134);
    tm->ftz = AC_FTZ;
    /* Normalising by exp(s - LSE) with a rounded LSE (the split-KV combine)
       scales the whole output by the LSE's rounding: eps_log + 2 u32 (|LSE*| + L). */
    tm->nu = (isfinite(res->lse[row]) ? 2.0 * u32 * (fabs(res->lse[row]) + res->logit_abs[row]) : 0.0) + AC_EPS_LOG;
    if (!combine && c->kv_format != AC_KV_AS_DTYPE) tm->nu += u32; /* O * v_scale in fp32 */
}

/* ---- coordinates ----------------------------------------------------------- */

static ac_coord coord_of(const ac_case *c, const ac_tensors *t, int64_t flat_row, int32_t dim)
{
    ac_coord k;
    int64_t tok = flat_row / c->heads_q;
    k.flat_row = flat_row;
    k.head = (int32_t)(flat_row % c->heads_q);
    k.dim = dim;
    int32_t lo = 0, hi = c->batch - 1;
    while (lo < hi) { /* last b with cu_seqlens_q[b] <= tok and a non-empty sequence */
        int32_t mid = (lo + hi + 1) / 2;
        if (t->cu_seqlens_q[mid] <= tok) lo = mid; else hi = mid - 1;
    }
    while (lo > 0 && t->cu_seqlens_q[lo] > tok) lo--;
    k.seq = lo;
    k.row = (int32_t)(tok - t->cu_seqlens_q[lo]);
    return k;
}

/* ---- the judgement ----------------------------------------------------------- */

static int is_poison_half(uint16_t h) { return h == 0x7fa5u; }

ac_status ac_verdict_judge(const ac_case *c, const ac_tensors *t, const ac_oracle_result *res,
                           const ac_outputs *out, const ac_outputs *ref, const ac_verdict_opts *opts,
                           ac_verdict *v, double *err_map, ac_error *err)
{
    static const ac_verdict_opts defaults = {0, 0, 0};
    if (!opts) opts = &defaults;
    memset(v, 0, sizeof *v);
    v->ratio_vs_ref = -1.0;
    v->r_where.dim = v->lse_where.dim = -1;

    if (ac_family_judge(c->op) == AC_JUDGE_BITWISE) { /* the store is exact: caches must match bit for bit */
        if (!out->k_cache || !out->v_cache || !res->k_cache)
            return ac_fail(err, AC_ERR_NULL, "verdict: store outputs missing");
        int64_t first = -1; /* the first differing element: where a report starts */
        int first_v = 0;
        /* Every element; in a sparse case those of the touched blocks (every
           other block reads as zero on both sides, docs/DATA.md). */
        int32_t *blocks = NULL;
        const int32_t Dv = ac_case_dv(c);
        int64_t nb = 1, per = res->kv_elems, per_v = Dv != c->head_dim ? res->v_elems : res->kv_elems;
        if (ac_case_is_sparse(c)) {
            ac_status st = ac_case_touched_blocks(c, &blocks, &nb, err);
            if (st) return st;
            per = (int64_t)c->block_size * c->heads_kv * c->head_dim;
            per_v = (int64_t)c->block_size * c->heads_kv * Dv;
        }
        int64_t first_k = -1, first_vv = -1;
        for (int64_t bi = 0; bi < nb; bi++) {
            int64_t base = blocks ? blocks[bi] * per : 0, base_v = blocks ? blocks[bi] * per_v : 0;
            for (int64_t i = base; i < base + per; i++)
                if (out->k_cache[i] != res->k_cache[i]) {
                    if (first_k < 0) first_k = i;
                    v->n_cache_bits++;
                }
            for (int64_t i = base_v; i < base_v + per_v; i++)
                if (out->v_cache[i] != res->v_cache[i]) {
                    if (first_vv < 0) first_vv = i;
                    v->n_cache_bits++;
                }
        }
        free(blocks);
        /* Report K's first difference, else V's. */
        first = first_k >= 0 ? first_k : first_vv;
        first_v = first_k < 0;
        v->elems_checked = nb * (per + per_v);
        v->pass = v->n_cache_bits == 0;
        v->r_max = v->pass ? 0.0 : INFINITY; /* an exact check: any difference is infinitely over */
        if (v->pass) {
            snprintf(v->summary, sizeof v->summary, "PASS store: %lld cache elements equal bitwise",
                     (long long)v->elems_checked);
            return AC_OK;
        }
        /* Cache element i is slot i / (Hkv D), KV head (i / D) % Hkv, dim i % D;
           the token is the one mapped to that slot, if any. */
        int32_t dd = first_v ? Dv : c->head_dim;
        int64_t hd = (int64_t)c->heads_kv * dd, slot = first / hd;
        int32_t head = (int32_t)((first / dd) % c->heads_kv), dim = (int32_t)(first % dd);
        int32_t token = -1;
        for (int32_t tk = 0; tk < c->num_tokens && token < 0; tk++)
            if (c->slot_mapping[tk] == slot) token = tk;
        v->r_where = (ac_coord){.seq = -1, .head = head, .row = token, .dim = dim, .flat_row = slot};
        char tok[48];
        if (token >= 0) snprintf(tok, sizeof tok, "token %d", token);
        else snprintf(tok, sizeof tok, "no token (nothing maps there)");
        snprintf(v->summary, sizeof v->summary,
                 "FAIL store: %lld of %lld cache elements differ bitwise; first in %s_cache at slot %lld "
                 "(block %lld, offset %lld), head %d, dim %d, %s: got 0x%04x, want 0x%04x",
                 (long long)v->n_cache_bits, (long long)v->elems_checked, first_v ? "v" : "k", (long long)slot,
                 (long long)(slot / c->block_size), (long long)(slot % c->block_size), head, dim, tok,
                 first_v ? out->v_cache[first] : out->k_cache[first], first_v ? res->v_cache[first] : res->k_cache[first]);
        return AC_OK;
    }

    int judge_f32 = opts->judge_f32 || ac_family_judge(c->op) == AC_JUDGE_BOUND_F32;
    const int32_t D = ac_case_dv(c); /* the output's head dim */
    double ref_err_max = 0.0;
    if (err_map)
        for (int64_t i = 0; i < res->rows * D; i++) err_map[i] = NAN;

    for (int64_t r = 0; r < res->rows; r++) {
        if (!res->checked[r]) continue;
        v->rows_checked++;
        ac_bound_terms tm;
        ac_verdict_terms(c, res, r, judge_f32, &tm);
        int empty = res->n_allowed[r] == 0;
        for (int32_t d = 0; d < D; d++) {
            int64_t e = r * D + d;
            double want = res->o[e];
            double got;
            int poison;
            if (judge_f32) {
                got = out->o_f32[e];
                uint32_t bits;
                memcpy(&bits, &out->o_f32[e], 4);
                poison = bits == 0x7fc0deadu;
            } else {
                got = ac_half_to_f32(c->dtype, out->o[e]);
                poison = is_poison_half(out->o[e]);
            }
            v->elems_checked++;
            if (poison || !isfinite(got)) {
                v->n_bad_nan++;
                if (v->r_max != INFINITY) {
                    v->r_max = INFINITY;
                    v->r_where = coord_of(c, t, r, d);
                    v->err_at_worst = INFINITY;
                    v->o_at_worst = got;
                    v->ref_at_worst = want;
                }
                if (err_map) err_map[e] = INFINITY;
                continue;
            }
            if (empty && got != 0.0) v->n_bad_empty++;
            double abs_err = fabs(got - want);
            double spv = res->spv[e], spvo = res->spvo[e];
            double bound = tm.u_in * spv + tm.eta_in * res->sv_tiny[e] +
                           tm.ftz * (res->sv[e] + res->n_allowed[r]) + (tm.u_out + tm.nu) * fabs(want) +
                           tm.eta_out + tm.delta_s * spvo + tm.gamma_n * spv;
            double rr = abs_err / (AC_VERDICT_C * bound);
            if (err_map) err_map[e] = rr;
            if (rr > 1.0) v->n_over++;
            if (rr > v->r_max) {
                v->r_max = rr;
                v->r_where = coord_of(c, t, r, d);
                v->err_at_worst = abs_err;
                v->bound_at_worst = AC_VERDICT_C * bound;
                v->o_at_worst = got;
                v->ref_at_worst = want;
            }
            if (abs_err > v->abs_err_max) v->abs_err_max = abs_err;
            int64_t ulp = judge_f32 ? ac_f32_ulp_diff(out->o_f32[e], res->o_f32[e])
                                    : ac_half_ulp_diff(c->dtype, out->o[e], res->o_half[e]);
            if (ulp > v->max_ulp) v->max_ulp = ulp;
            if (ref) {
                double rv = judge_f32 ? (double)ref->o_f32[e] : (double)ac_half_to_f32(c->dtype, ref->o[e]);
                double re = fabs(rv - want);
                if (re > ref_err_max) ref_err_max = re;
            }
        }
        if (opts->skip_lse) continue;
        /* LSE: -inf exactly for an empty row without a sink, else the tight
           bound (an empty row with a sink: LSE* = the sink). */
        double want = res->lse[r];
        double got = out->lse[r];
        if (opts->lse_base2 && isfinite(got)) got *= 0.69314718055994530942; /* ln 2 */
        double rl;
        if (empty && want == -INFINITY) {
            rl = (got == -INFINITY) ? 0.0 : INFINITY;
            if (got != -INFINITY) v->n_bad_empty++;
        } else if (!isfinite(got)) {
            rl = INFINITY;
            v->n_bad_nan++;
        } else {
            double L = res->logit_abs[r];
            double bl = tm.delta_s + tm.gamma_n + tm.eps_log + 2.0 * AC_U_FP32 * (fabs(want) + L);
            double le = fabs(got - want);
            if (le > v->lse_err_max) v->lse_err_max = le;
            rl = le / (AC_VERDICT_C * bl);
        }
        if (rl > 1.0) v->n_over++;
        if (rl > v->r_lse_max || (rl == INFINITY && v->r_lse_max != INFINITY)) {
            v->r_lse_max = rl;
            v->lse_where = coord_of(c, t, r, -1);
        }
    }
    if (ref) v->ratio_vs_ref = v->abs_err_max / (ref_err_max > 0 ? ref_err_max : 0x1p-149);
    v->pass = v->n_bad_nan == 0 && v->n_bad_empty == 0 && v->r_max <= 1.0 && v->r_lse_max <= 1.0;
    v->lse_not_returned = opts->skip_lse;
    ac_verdict_summarize(v);
    return AC_OK;
}

void ac_verdict_summarize(ac_verdict *v)
{
    const ac_coord *w = v->r_max >= v->r_lse_max ? &v->r_where : &v->lse_where;
    /* A kernel that returns no LSE is judged on O alone, and the line says so. */
    char lse[48];
    if (v->lse_not_returned) snprintf(lse, sizeof lse, "lse=not-returned");
    else snprintf(lse, sizeof lse, "lse_r=%.3g", v->r_lse_max);
    snprintf(v->summary, sizeof v->summary,
             "%s r=%.3g %s ulp=%lld nan=%lld empty_bad=%lld worst at seq=%d head=%d row=%d dim=%d",
             v->pass ? "PASS" : "FAIL", v->r_max, lse, (long long)v->max_ulp, (long long)v->n_bad_nan,
             (long long)v->n_bad_empty, w->seq, w->head, w->row, w->dim);
}

void ac_verdict_print(const ac_verdict *v, FILE *f)
{
    fprintf(f, "verdict: %s\n", v->summary);
    fprintf(f, "  checked %lld elements in %lld rows; %lld over the bound\n", (long long)v->elems_checked,
            (long long)v->rows_checked, (long long)v->n_over);
    if (v->elems_checked && v->r_where.dim >= 0)
        fprintf(f, "  worst output: seq %d head %d row %d dim %d: got %.9g want %.9g |err| %.3g bound %.3g (r = %.3g)\n",
                v->r_where.seq, v->r_where.head, v->r_where.row, v->r_where.dim, v->o_at_worst, v->ref_at_worst,
                v->err_at_worst, v->bound_at_worst, v->r_max);
    fprintf(f, "  worst LSE: seq %d head %d row %d: |err| max %.3g (r = %.3g)\n", v->lse_where.seq,
            v->lse_where.head, v->lse_where.row, v->lse_err_max, v->r_lse_max);
    if (v->ratio_vs_ref >= 0)
        fprintf(f, "  max |err| %.3g = %.3gx the same-precision reference's; max ulp %lld\n", v->abs_err_max,
                v->ratio_vs_ref, (long long)v->max_ulp);
}
