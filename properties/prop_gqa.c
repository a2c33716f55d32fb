/* 2. GQA: query head h reads KV head h / (Hq/Hkv), i.e. GQA is multi-head
 * attention with each K/V head repeated over a contiguous group of query
 * heads (repeat_interleave). */
#include <stdlib.h>
#include <string.h>

#include "prop_props.h"
#include "prop_util.h"

/* Repeat each of the Hkv heads of an [N, Hkv, D] tensor g times: [N, Hkv*g, D]. */
static uint16_t *repeat_heads(const uint16_t *src, int64_t rows, int32_t hkv, int32_t g, int32_t D)
{
    uint16_t *dst = malloc(sizeof(uint16_t) * (size_t)(rows * hkv * g * D + 1));
    if (!dst) return NULL;
    for (int64_t s = 0; s < rows; s++)
        for (int32_t h = 0; h < hkv * g; h++)
            memcpy(dst + (s * hkv * g + h) * D, src + (s * hkv + h / g) * D, sizeof(uint16_t) * (size_t)D);
    return dst;
}

int prop_gqa(const ac_prop_ctx *ctx, char *why, size_t n)
{
    ac_rng r;
    ac_rng_init(&r, ctx->seed, PROP_STREAM);
    ac_error err;
    ac_error_clear(&err);
    prop_inst a, mha;
    ac_oracle_result mod;
    memset(&a, 0, sizeof a);
    memset(&mha, 0, sizeof mha);
    memset(&mod, 0, sizeof mod);
    int have_mod = 0, rc = AC_PROP_PASS;

    PROP_TRY(prop_case_attention(ctx, &r, &a.c, &err));
    PROP_TRY(prop_gen(&a, &err));
    PROP_RUN(prop_exec(ctx, &a, "gqa", why, n));
    PROP_TRY(prop_inst_model(&a, &err));

    /* The same problem as multi-head attention: Hkv' = Hq, K/V heads
       repeated (codes as stored: an FP8 cache repeats its codes). V rows
       have D_v elements. */
    const int32_t g = a.c.heads_q / a.c.heads_kv, D = a.c.head_dim, Dv = ac_case_dv(&a.c);
    PROP_TRY(prop_inst_clone(&mha, &a, &err));
    int64_t rows = a.t.kv_elems / ((int64_t)a.c.heads_kv * D);
    uint16_t *k2 = repeat_heads(a.t.k, rows, a.c.heads_kv, g, D);
    uint16_t *v2 = repeat_heads(a.t.v, rows, a.c.heads_kv, g, Dv);
    free(mha.t.k);
    free(mha.t.v);
    mha.t.k = k2;
    mha.t.v = v2;
    if (!k2 || !v2) PROP_TRY(ac_fail(&err, AC_ERR_NOMEM, "gqa: out of memory"));
    mha.c.heads_kv = a.c.heads_q;
    mha.t.kv_elems = rows * a.c.heads_q * D;
    mha.t.v_elems = rows * a.c.heads_q * Dv;
    /* Per-KV-head scales go with their heads: query head h of the twin has
       its own copy of KV head h / g, so it takes that head's scales. One
       per-tensor scale stays one. */
    if (a.c.n_kv_scales == a.c.heads_kv && a.c.n_kv_scales > 1) {
        float ks[AC_MAX_HEADS], vs[AC_MAX_HEADS];
        for (int32_t h = 0; h < a.c.heads_q; h++) {
            ks[h] = ac_case_k_scale(&a.c, h / g);
            vs[h] = ac_case_v_scale(&a.c, h / g);
        }
        PROP_TRY(ac_case_set_kv_scales(&mha.c, ks, vs, a.c.heads_q, &err));
    }
    PROP_RUN(prop_exec(ctx, &mha, "gqa/mha-twin", why, n));
    PROP_TRY(prop_inst_model(&mha, &err));
    PROP_CHECK(prop_within(&a.c, &a.m, &mha.m, &a.o, &mha.o, NULL, "gqa/equals-mha-with-repeated-kv", why, n));

    /* Power: on this very data, a kernel mapping h to h % Hkv lands outside
       what the comparison above allows (vacuous when g == 1: the maps agree).
       Not when every row is empty (a window with a causal mode may leave no
       key to any query): then both maps give the same 0 / sink. An FP8 cache
       and D_v != D_qk keep the check: the heads' codes differ, and the
       h % Hkv model takes the scales of the head it reads. */
    int64_t live_rows = 0;
    for (int64_t row = 0; row < a.m.rows; row++) live_rows += a.m.n_allowed[row] > 0;
    if (g > 1 && live_rows > 0) {
        PROP_TRY(ac_ref64(&a.c, &a.t, AC_REF_KV_MOD, &mod, &err));
        have_mod = 1;
        if (!prop_models_apart(&a.c, &a.m, &mod)) {
            snprintf(why, n, "gqa/h%%Hkv-caught: on this data the h %% Hkv answer lies within the bound of the "
                             "correct one, so the law cannot see the bug");
            prop_why_case(why, n, &a.c);
            rc = AC_PROP_FAIL;
            goto done;
        }
    }

done:
    if (have_mod) ac_oracle_result_free(&mod);
    prop_inst_free(&a);
    prop_inst_free(&mha);
    return rc;
}
