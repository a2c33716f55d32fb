/* 16. D_v != D_qk: the output's columns are the columns of V weighted by
 * softmax weights that do not depend on V. So
 *   a. splitting V's columns in two halves and running each half (D_v / 2)
 *      gives the two halves of the output's columns, and the same LSE;
 *   b. padding to D_v == D_qk changes nothing: V padded with zero columns
 *      (D_v < D_qk) gives O and zero columns, q and k padded with zero
 *      columns (D_v > D_qk, the scale given as 1/sqrt(D_qk)) give O.
 * Each run may be C * bound off its exact answer, so the comparisons take
 * the sum of the two runs' bounds. A kernel addressing V with D_qk as its
 * head dim, or taking 1/sqrt(D_v) as the default scale, breaks b (the
 * padded run has D_v == D_qk, where neither mistake shows). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ac_verdict.h"
#include "prop_props.h"
#include "prop_util.h"

/* D_v for a D_qk of the grid: half, 1.5 times or twice it (MLA's 192/128 is
   1.5 the other way round: the background D_v draws cover it); a multiple
   of 16 so each half is a multiple of 8 as the bundled kernels want. */
static int32_t draw_dv(ac_rng *r, int32_t d)
{
    static const int32_t num[] = {1, 3, 4}, den = 2;
    int32_t dv = d * num[ac_rng_below(r, 3)] / den;
    if (dv > 256 || dv % 16) dv = d / 2;
    return dv;
}

/* y: x's case with D_v = dv_y and V's columns [c0, c0 + w) of x in its first
   w columns, zeros in the rest (w <= dv_y). q, k and masks are x's. */
static ac_status with_v_columns(prop_inst *y, const prop_inst *x, int32_t dv_y, int32_t c0, int32_t w, ac_error *err)
{
    ac_status st = prop_inst_clone(y, x, err);
    if (st) return st;
    y->c.head_dim_v = dv_y == y->c.head_dim ? 0 : dv_y;
    const int32_t dv_x = ac_case_dv(&x->c);
    int64_t v_elems = x->t.v_elems / dv_x * dv_y;
    uint16_t *v = calloc((size_t)(v_elems > 0 ? v_elems : 1), sizeof(uint16_t));
    if (!v) return ac_fail(err, AC_ERR_NOMEM, "dv: out of memory for v");
    free(y->t.v);
    y->t.v = v;
    y->t.v_elems = v_elems;
    for (int32_t b = 0; b < x->c.batch; b++)
        for (int32_t p = 0; p < x->c.seqlen_k[b]; p++)
            for (int32_t h = 0; h < x->c.heads_kv; h++)
                memcpy(y->t.v + prop_v_offset(&y->c, &y->t, b, p, h), x->t.v + prop_v_offset(&x->c, &x->t, b, p, h) + c0,
                       sizeof(uint16_t) * (size_t)w);
    return ac_case_validate(&y->c, err);
}

/* Columns [0, w) of row r of y against columns [c0, c0 + w) of x, within
   C (bound_x + bound_y); with_lse: the LSEs too. Columns [w, D_v of y) of
   y must be exactly 0 (zero V columns). */
static int compare_columns(const prop_inst *x, const prop_inst *y, int32_t c0, int32_t w, int with_lse,
                           const char *what, char *why, size_t n)
{
    const int32_t dx = x->m.head_dim, dy = y->m.head_dim;
    for (int64_t r = 0; r < x->m.rows; r++) {
        char where[96];
        int empty = x->m.n_allowed[r] == 0;
        for (int32_t d = 0; d < dy; d++) {
            double vy = prop_out_val(&y->c, &y->o, r * dy + d);
            double vx = d < w ? prop_out_val(&x->c, &x->o, r * dx + c0 + d) : 0.0;
            double tol = d < w && !empty ? AC_VERDICT_C * (prop_elem_bound(&x->c, &x->m, r, c0 + d) +
                                                           prop_elem_bound(&y->c, &y->m, r, d))
                                         : 0.0;
            double diff = fabs(vx - vy);
            if (diff <= tol) {
                if (tol > 0.0) prop_note_ratio(diff / tol);
                continue;
            }
            prop_row_name(&x->c, r, where, sizeof where);
            if (d < w)
                snprintf(why, n, "%s: %s column %d: %.9g, but column %d of the other run is %.9g: |diff| %.3g > "
                                 "tolerance %.3g",
                         what, where, c0 + d, vx, d, vy, diff, tol);
            else
                snprintf(why, n, "%s: %s column %d of the padded run is %.9g, not 0 (its V column is 0)", what, where,
                         d, vy);
            prop_why_case(why, n, &x->c);
            return 1;
        }
        if (!with_lse || !x->o.lse || !y->o.lse) continue;
        double lx = x->o.lse[r], ly = y->o.lse[r];
        if (empty ? lx == ly : fabs(lx - ly) <= AC_VERDICT_C * (prop_lse_bound(&x->c, &x->m, r) +
                                                                 prop_lse_bound(&y->c, &y->m, r)))
            continue;
        prop_row_name(&x->c, r, where, sizeof where);
        snprintf(why, n, "%s: %s: LSE %.9g vs %.9g in the other run (the LSE does not depend on V)", what, where, lx,
                 ly);
        prop_why_case(why, n, &x->c);
        return 1;
    }
    return 0;
}

/* z: x with q and k padded by zero columns to D_qk = D_v (D_v > D_qk), the
   scale given as x's (1/sqrt(D_qk) by default): every logit is x's. */
static ac_status with_qk_padded(prop_inst *z, const prop_inst *x, ac_error *err)
{
    ac_status st = prop_inst_clone(z, x, err);
    if (st) return st;
    const int32_t d = x->c.head_dim, dv = ac_case_dv(&x->c);
    z->c.head_dim = dv;
    z->c.head_dim_v = 0;
    z->c.scale_given = 1;
    z->c.scale = ac_case_scale(&x->c);
    const int64_t qrows = x->t.total_q * x->c.heads_q, krows = x->t.kv_elems / d;
    uint16_t *q = calloc((size_t)(qrows * dv + 1), sizeof(uint16_t)), *k = calloc((size_t)(krows * dv + 1), sizeof(uint16_t));
    if (!q || !k) {
        free(q);
        free(k);
        return ac_fail(err, AC_ERR_NOMEM, "dv: out of memory for padded q, k");
    }
    /* Both are [rows, heads, dim] with rows of d elements in x: row i moves to i * dv. */
    for (int64_t i = 0; i < qrows; i++) memcpy(q + i * dv, x->t.q + i * d, sizeof(uint16_t) * (size_t)d);
    for (int64_t i = 0; i < krows; i++) memcpy(k + i * dv, x->t.k + i * d, sizeof(uint16_t) * (size_t)d);
    free(z->t.q);
    free(z->t.k);
    z->t.q = q;
    z->t.k = k;
    z->t.kv_elems = krows * dv;
    return ac_case_validate(&z->c, err);
}

int prop_dv(const ac_prop_ctx *ctx, char *why, size_t n)
{
    ac_rng r;
    ac_rng_init(&r, ctx->seed, PROP_STREAM);
    ac_error err;
    ac_error_clear(&err);
    prop_inst x, y1, y2, z;
    memset(&x, 0, sizeof x);
    memset(&y1, 0, sizeof y1);
    memset(&y2, 0, sizeof y2);
    memset(&z, 0, sizeof z);
    int rc = AC_PROP_PASS;

    PROP_TRY(prop_case_kv_law(ctx, &r, &x.c, &err));
    x.c.dist = ac_rng_below(&r, 2) ? AC_DIST_POSCODE : AC_DIST_NORMAL; /* poscode: V's columns say which key */
    PROP_TRY(prop_case_place(ctx, &x.c, &r, &err));
    PROP_TRY(prop_case_features(ctx, &x.c, AC_FEAT_ALL & ~AC_FEAT_HEAD_DIM_V, &err));
    const int32_t D = x.c.head_dim, dv = draw_dv(&r, D), half = dv / 2;
    x.c.head_dim_v = dv;
    PROP_TRY(prop_gen(&x, &err));
    PROP_RUN(prop_exec(ctx, &x, "dv", why, n));
    PROP_TRY(prop_inst_model(&x, &err));

    /* a. The two halves of V's columns. */
    PROP_TRY(with_v_columns(&y1, &x, half, 0, half, &err));
    PROP_TRY(with_v_columns(&y2, &x, dv - half, half, dv - half, &err));
    PROP_RUN(prop_exec(ctx, &y1, "dv/first-half", why, n));
    PROP_RUN(prop_exec(ctx, &y2, "dv/second-half", why, n));
    PROP_TRY(prop_inst_model(&y1, &err));
    PROP_TRY(prop_inst_model(&y2, &err));
    PROP_CHECK(compare_columns(&x, &y1, 0, half, 1, "dv/first-half-of-V-gives-the-first-half-of-O", why, n));
    PROP_CHECK(compare_columns(&x, &y2, half, dv - half, 1, "dv/second-half-of-V-gives-the-second-half-of-O", why, n));

    /* b. Padded to D_v == D_qk. */
    if (dv < D) PROP_TRY(with_v_columns(&z, &x, D, 0, dv, &err));
    else PROP_TRY(with_qk_padded(&z, &x, &err));
    PROP_RUN(prop_exec(ctx, &z, "dv/padded", why, n));
    PROP_TRY(prop_inst_model(&z, &err));
    PROP_CHECK(compare_columns(&x, &z, 0, dv, 1,
                               dv < D ? "dv/V-padded-with-zero-columns-to-D_qk-gives-O-and-zero-columns"
                                      : "dv/q-and-k-padded-with-zero-columns-to-D_v-give-O",
                               why, n));

done:
    prop_inst_free(&x);
    prop_inst_free(&y1);
    prop_inst_free(&y2);
    prop_inst_free(&z);
    return rc;
}
