/* 17. An FP8 K/V cache is its dequantised values: an element of KV head g
 * stands for decode(code) * scale_g, and nothing else. So
 *   a. an FP8 case (E4M3 or E5M2, one scale per tensor or one per KV head,
 *      powers of two so decode(code) * scale is exact in bf16 and fp16)
 *      equals the same case on a cache of the case dtype holding those
 *      values, within the bound of the dtype run (the kernel may fold the
 *      scales into fp32 factors or dequantise into the compute dtype: both
 *      are the same exact answer);
 *   b. one scale per KV head, all equal, is one scale per tensor;
 *   c. scale 1 is no scale.
 * b and c run the same arithmetic on the same codes: the same bits on the
 * bundled backends, within the bound on an outside kernel. The v scales are
 * never 1 in a, so an output that misses its v scale is off by a factor of
 * 2 or more. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ac_numfmt.h"
#include "prop_props.h"
#include "prop_util.h"

/* y: x's problem on a cache of the case dtype holding decode(code) * scale
   of each element. Fails when a value is not exact in the dtype. */
static ac_status dequantised(prop_inst *y, const prop_inst *x, ac_error *err)
{
    ac_status st = prop_inst_clone(y, x, err);
    if (st) return st;
    const ac_case *c = &x->c;
    y->c.kv_format = AC_KV_AS_DTYPE;
    st = ac_case_set_kv_scales(&y->c, NULL, NULL, 0, err);
    if (st) return st;
    for (int role = 0; role < 2; role++) {
        const int32_t dim = role ? ac_case_dv(c) : c->head_dim;
        const int64_t count = role ? x->t.v_elems : x->t.kv_elems;
        const uint16_t *src = role ? x->t.v : x->t.k;
        uint16_t *dst = role ? y->t.v : y->t.k;
        for (int64_t i = 0; i < count; i++) {
            int32_t g = (int32_t)((i / dim) % c->heads_kv); /* rows are [.., Hkv, dim] in both layouts */
            double s = role ? ac_case_v_scale(c, g) : ac_case_k_scale(c, g);
            double val = ac_kv_elem_to_double(c->dtype, c->kv_format, src[i]) * s;
            dst[i] = ac_f64_to_half(c->dtype, val);
            double back = ac_half_to_f32(c->dtype, dst[i]);
            if (!(back == val) && !(isnan(back) && isnan(val)))
                return ac_fail(err, AC_ERR_SHAPE, "fp8: %s element %lld: %.9g (code 0x%02x x %g) is not exact in %s",
                               role ? "v" : "k", (long long)i, val, src[i], s, ac_dtype_name(c->dtype));
        }
    }
    return ac_case_validate(&y->c, err);
}

/* y: x's codes with per-tensor scales ks, vs (n = 1), the same on every KV
   head (n = heads_kv), or none (n = 0). */
static ac_status with_scales(prop_inst *y, const prop_inst *x, float ks, float vs, int32_t n, ac_error *err)
{
    ac_status st = prop_inst_clone(y, x, err);
    if (st) return st;
    float k[AC_MAX_HEADS], v[AC_MAX_HEADS];
    for (int32_t g = 0; g < n; g++) k[g] = ks, v[g] = vs;
    st = ac_case_set_kv_scales(&y->c, k, v, n, err);
    return st ? st : ac_case_validate(&y->c, err);
}

/* The same bits on the bundled backends; an outside kernel may take
   another code path for per-head scales: within the bound there. */
static int same_run(const ac_prop_ctx *ctx, const prop_inst *a, const prop_inst *b, const char *what, char *why,
                    size_t n)
{
    if (ctx->backend > AC_BACKEND_GPU) return prop_within(&a->c, &a->m, NULL, &a->o, &b->o, NULL, what, why, n);
    return prop_same_bits(&a->c, &a->o, 0, &b->o, 0, a->m.rows, what, why, n);
}

int prop_fp8(const ac_prop_ctx *ctx, char *why, size_t n)
{
    ac_rng r;
    ac_rng_init(&r, ctx->seed, PROP_STREAM);
    ac_error err;
    ac_error_clear(&err);
    prop_inst x, y, w1, w2;
    memset(&x, 0, sizeof x);
    memset(&y, 0, sizeof y);
    memset(&w1, 0, sizeof w1);
    memset(&w2, 0, sizeof w2);
    int rc = AC_PROP_PASS;

    PROP_TRY(prop_case_kv_law(ctx, &r, &x.c, &err));
    static const ac_dist dists[] = {AC_DIST_NORMAL, AC_DIST_POSCODE, AC_DIST_NEEDLE, AC_DIST_UNIFORM};
    x.c.dist = dists[ac_rng_below(&r, 4)];
    if (ac_rng_below(&r, 4) == 0) x.c.special = AC_SPECIAL_NAN_SLOTS | AC_SPECIAL_INF_SLOTS; /* FP8 poison */
    PROP_TRY(prop_case_place(ctx, &x.c, &r, &err));
    if (!x.c.paged) x.c.special = 0;
    PROP_TRY(prop_case_features(ctx, &x.c, AC_FEAT_ALL & ~AC_FEAT_FP8_KV, &err));
    x.c.kv_format = ac_rng_below(&r, 2) ? AC_KV_E5M2 : AC_KV_E4M3;
    /* Powers of two: decode(code) * scale is exact in bf16 and fp16 (E5M2's
       largest finite value times 2 stays below fp16's 65504 only for the
       values drawn; the setup checks every element). v scales are never 1. */
    static const float k_pool[] = {0.5f, 1.0f, 2.0f, 0.25f}, v_pool[] = {0.5f, 2.0f, 0.25f, 4.0f};
    const int per_head = (int)ac_rng_below(&r, 2);
    float ks[AC_MAX_HEADS], vs[AC_MAX_HEADS];
    for (int32_t g = 0; g < (per_head ? x.c.heads_kv : 1); g++) {
        ks[g] = k_pool[ac_rng_below(&r, 4)];
        vs[g] = v_pool[ac_rng_below(&r, 4)];
    }
    PROP_TRY(ac_case_set_kv_scales(&x.c, ks, vs, per_head ? x.c.heads_kv : 1, &err));
    PROP_TRY(prop_gen(&x, &err));
    PROP_RUN(prop_exec(ctx, &x, "fp8", why, n));
    PROP_TRY(prop_inst_model(&x, &err));

    /* a. The dequantised cache in the case dtype. */
    PROP_TRY(dequantised(&y, &x, &err));
    PROP_RUN(prop_exec(ctx, &y, "fp8/dequantised", why, n));
    PROP_TRY(prop_inst_model(&y, &err));
    PROP_CHECK(prop_within(&y.c, &y.m, NULL, &y.o, &x.o, NULL,
                           "fp8/an-FP8-cache-equals-its-dequantised-values-in-the-case-dtype", why, n));

    /* b. Per head, all equal, against per tensor: on x's codes with the first head's scales. */
    PROP_TRY(with_scales(&w1, &x, ks[0], vs[0], 1, &err));
    PROP_TRY(with_scales(&w2, &x, ks[0], vs[0], x.c.heads_kv, &err));
    PROP_RUN(prop_exec(ctx, &w1, "fp8/per-tensor", why, n));
    PROP_RUN(prop_exec(ctx, &w2, "fp8/per-head-equal", why, n));
    PROP_TRY(prop_inst_model(&w1, &err));
    PROP_CHECK(same_run(ctx, &w1, &w2, "fp8/per-head-scales-all-equal-are-one-per-tensor", why, n));
    prop_inst_free(&w1);
    prop_inst_free(&w2);

    /* c. Scale 1 on x's codes is no scale. */
    PROP_TRY(with_scales(&w1, &x, 1.0f, 1.0f, 1, &err));
    PROP_TRY(with_scales(&w2, &x, 1.0f, 1.0f, 0, &err));
    PROP_RUN(prop_exec(ctx, &w1, "fp8/scale-1", why, n));
    PROP_RUN(prop_exec(ctx, &w2, "fp8/no-scale", why, n));
    PROP_TRY(prop_inst_model(&w1, &err));
    PROP_CHECK(same_run(ctx, &w1, &w2, "fp8/scale-1-is-no-scale", why, n));

done:
    prop_inst_free(&x);
    prop_inst_free(&y);
    prop_inst_free(&w1);
    prop_inst_free(&w2);
    return rc;
}
