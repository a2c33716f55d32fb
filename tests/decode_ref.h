/* Plain double-precision decode reference and the fp32 error bound that
 * judges the decode kernel and its CPU model against it. Header-only, valid C
 * and C++, shared by tests/test_model_decode.c and bench/decode_bench.cu.
 * Keys and values are fetched through callbacks, so the same reference reads
 * a paged cache or a contiguous per-sequence copy (the end-to-end loop). */
#ifndef AC_DECODE_REF_H
#define AC_DECODE_REF_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "ac_case.h"
#include "ac_numfmt.h"
#include "decode.h"

#define DREF_U32 0x1p-24 /* fp32 unit roundoff */

typedef const uint16_t *(*dref_row_fn)(const void *ctx, int32_t b, int32_t pos, int32_t kv_head);

typedef struct dref_input {
    ac_dtype dtype;
    int32_t batch, hq, hkv, d;
    const int32_t *seqlen_q, *seqlen_k;
    int scale_given;
    float scale;
    const uint16_t *q;           /* [total_q, Hq, D] */
    dref_row_fn k_row, v_row;    /* D elements of key / value `pos` of sequence b, head kv_head */
    const void *ctx;
} dref_input;

typedef struct dref {
    int64_t rows;
    int32_t d;
    double *o, *lse, *spv, *spvo, *qk_abs;
    int32_t *n_keys;
} dref;

static double dref_half(ac_dtype t, uint16_t h) { return (double)ac_half_to_f32(t, h); }

/* Bottom-right causal attention in double from the exact input values, with
   sum_j P_j |v_j|, sum_j P_j |v_j - O*| and max_j |scale| sum |q k| per row. */
static void dref_run(const dref_input *in, dref *r)
{
    const int32_t hq = in->hq, hkv = in->hkv, d = in->d;
    int64_t total_q = 0, max_k = 1;
    for (int32_t b = 0; b < in->batch; b++) {
        total_q += in->seqlen_q[b];
        if (in->seqlen_k[b] > max_k) max_k = in->seqlen_k[b];
    }
    const int64_t rows = total_q * hq;
    r->rows = rows;
    r->d = d;
    r->o = (double *)calloc((size_t)(rows * d) + 1, sizeof(double));
    r->spv = (double *)calloc((size_t)(rows * d) + 1, sizeof(double));
    r->spvo = (double *)calloc((size_t)(rows * d) + 1, sizeof(double));
    r->lse = (double *)calloc((size_t)rows + 1, sizeof(double));
    r->qk_abs = (double *)calloc((size_t)rows + 1, sizeof(double));
    r->n_keys = (int32_t *)calloc((size_t)rows + 1, sizeof(int32_t));
    double *s = (double *)malloc(sizeof(double) * (size_t)max_k);
    const double scale = in->scale_given ? (double)in->scale : (double)(1.0f / sqrtf((float)d));
    int64_t tok = 0;
    for (int32_t b = 0; b < in->batch; b++) {
        const int32_t lq = in->seqlen_q[b], lk = in->seqlen_k[b];
        for (int32_t i = 0; i < lq; i++, tok++) {
            int32_t end = i + 1 + (lk - lq); /* bottom-right: j <= i + Lk - Lq */
            if (end > lk) end = lk;
            if (end < 0) end = 0;
            for (int32_t h = 0; h < hq; h++) {
                const int32_t kvh = h / (hq / hkv);
                const int64_t rr = tok * hq + h;
                const uint16_t *qv = in->q + rr * d;
                r->n_keys[rr] = end;
                if (end == 0) {
                    r->lse[rr] = -INFINITY;
                    continue;
                }
                double mx = -INFINITY, qa = 0.0;
                for (int32_t j = 0; j < end; j++) {
                    const uint16_t *kv = in->k_row(in->ctx, b, j, kvh);
                    double dot = 0.0, ab = 0.0;
                    for (int32_t e = 0; e < d; e++) {
                        double x = dref_half(in->dtype, qv[e]) * dref_half(in->dtype, kv[e]);
                        dot += x;
                        ab += fabs(x);
                    }
                    s[j] = scale * dot;
                    if (s[j] > mx) mx = s[j];
                    if (fabs(scale) * ab > qa) qa = fabs(scale) * ab;
                }
                double sum = 0.0;
                for (int32_t j = 0; j < end; j++) sum += exp(s[j] - mx);
                r->lse[rr] = mx + log(sum);
                r->qk_abs[rr] = qa;
                for (int32_t j = 0; j < end; j++) {
                    const uint16_t *vv = in->v_row(in->ctx, b, j, kvh);
                    const double pj = exp(s[j] - mx) / sum;
                    for (int32_t e = 0; e < d; e++) {
                        r->o[rr * d + e] += pj * dref_half(in->dtype, vv[e]);
                        r->spv[rr * d + e] += pj * fabs(dref_half(in->dtype, vv[e]));
                    }
                }
                for (int32_t j = 0; j < end; j++) {
                    const uint16_t *vv = in->v_row(in->ctx, b, j, kvh);
                    const double pj = exp(s[j] - mx) / sum;
                    for (int32_t e = 0; e < d; e++)
                        r->spvo[rr * d + e] += pj * fabs(dref_half(in->dtype, vv[e]) - r->o[rr * d + e]);
                }
            }
        }
    }
    free(s);
}

static void dref_free(dref *r)
{
    free(r->o);
    free(r->lse);
    free(r->spv);
    free(r->spvo);
    free(r->qk_abs);
    free(r->n_keys);
}

/* Worst error / bound over every row and element; > 1 fails (NaN counts as
   infinite). Error bound of an fp32 decode (docs/DECODE.md): a logit carries
   at most delta = (D + 8) u A (dot product of D terms, the scale and log2(e)
   products, the exp2 argument), A = |scale| max_j sum |q k|; the sums of a key
   lane, the lane/warp/split merges and the combine add at most
   (n_chain + 2 S + 24) u relative to sum P|v|, n_chain = ceil(keys / lanes).
   So |O - O*| <= 2 (2 delta sum P|v - O*| + (n_chain + 2 S + 24) u sum P|v|)
   (2 delta: the numerator and 1/L both see the logit error; the outer 2 is
   slack), plus half an ulp of the output format for the dtype output, and
   |LSE - LSE*| <= 2 delta + (n_chain + 2 S + 24) u + u |LSE*|.
   An empty row must be exactly O = 0, LSE = -inf. */
static double dref_compare(const dref *r, ac_dtype dtype, const uint16_t *o, const float *o_f32, const float *lse,
                           int32_t splits, char *why, size_t n)
{
    const int32_t d = r->d;
    const double u_out = ac_unit_roundoff(dtype);
    const int32_t lanes = ac_decode_lanes(d);
    double worst = 0.0;
    why[0] = '\0';
    for (int64_t rr = 0; rr < r->rows; rr++) {
        const int32_t nk = r->n_keys[rr];
        const double chain = (double)ac_num_tiles(nk, lanes) + 2.0 * splits + 24.0;
        const double delta = (d + 8) * DREF_U32 * r->qk_abs[rr];
        if (nk == 0) {
            int ok = lse[rr] == -INFINITY;
            for (int32_t e = 0; e < d; e++) ok &= o_f32[rr * d + e] == 0.0f && dref_half(dtype, o[rr * d + e]) == 0.0;
            if (!ok) {
                snprintf(why, n, "row %lld: empty row must give O = 0, LSE = -inf (got LSE %g)", (long long)rr,
                         (double)lse[rr]);
                return INFINITY;
            }
            continue;
        }
        const double tl = 2 * delta + chain * DREF_U32 + DREF_U32 * fabs(r->lse[rr]);
        const double el = fabs((double)lse[rr] - r->lse[rr]);
        if (!(el <= tl)) {
            snprintf(why, n, "row %lld: LSE %.9g vs %.9g (bound %.3g)", (long long)rr, (double)lse[rr], r->lse[rr], tl);
            return INFINITY;
        }
        if (el / tl > worst) worst = el / tl;
        for (int32_t e = 0; e < d; e++) {
            const int64_t i = rr * d + e;
            const double tf = 2.0 * (2.0 * delta * r->spvo[i] + chain * DREF_U32 * r->spv[i]) + 1e-300;
            const double ef = fabs((double)o_f32[i] - r->o[i]);
            const double th = tf + u_out * fabs(r->o[i]) * 1.0000001;
            const double eh = fabs(dref_half(dtype, o[i]) - r->o[i]);
            if (!(ef <= tf) || !(eh <= th)) {
                snprintf(why, n, "row %lld d %d: O %.9g (%s %.9g) vs %.9g (bounds %.3g, %.3g)", (long long)rr, e,
                         (double)o_f32[i], ac_dtype_name(dtype), dref_half(dtype, o[i]), r->o[i], tf, th);
                return INFINITY;
            }
            if (ef / tf > worst) worst = ef / tf;
        }
    }
    return worst;
}

/* Fetch from a paged case (ctx = const ac_case *, tensors via dref_paged_ctx). */
typedef struct dref_paged_ctx {
    const ac_case *c;
    const uint16_t *k, *v;
} dref_paged_ctx;

static const uint16_t *dref_paged_row(const dref_paged_ctx *p, const uint16_t *base, int32_t b, int32_t pos,
                                      int32_t kvh)
{
    const ac_case *c = p->c;
    const int32_t *row = c->block_table + (int64_t)b * c->max_blocks_per_seq;
    const int64_t slot = (int64_t)row[pos / c->block_size] * c->block_size + pos % c->block_size;
    return base + (slot * c->heads_kv + kvh) * c->head_dim;
}
static const uint16_t *dref_paged_k(const void *ctx, int32_t b, int32_t pos, int32_t kvh)
{
    const dref_paged_ctx *p = (const dref_paged_ctx *)ctx;
    return dref_paged_row(p, p->k, b, pos, kvh);
}
static const uint16_t *dref_paged_v(const void *ctx, int32_t b, int32_t pos, int32_t kvh)
{
    const dref_paged_ctx *p = (const dref_paged_ctx *)ctx;
    return dref_paged_row(p, p->v, b, pos, kvh);
}

/* Reference of a paged decode case. */
static void dref_run_case(const ac_case *c, const uint16_t *q, const uint16_t *k, const uint16_t *v, dref *r)
{
    dref_paged_ctx ctx = {c, k, v};
    dref_input in;
    in.dtype = c->dtype;
    in.batch = c->batch;
    in.hq = c->heads_q;
    in.hkv = c->heads_kv;
    in.d = c->head_dim;
    in.seqlen_q = c->seqlen_q;
    in.seqlen_k = c->seqlen_k;
    in.scale_given = c->scale_given;
    in.scale = c->scale;
    in.q = q;
    in.k_row = dref_paged_k;
    in.v_row = dref_paged_v;
    in.ctx = &ctx;
    dref_run(&in, r);
}

#endif
