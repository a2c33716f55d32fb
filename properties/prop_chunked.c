/* 4. Chunked prefill: a sequence prefilled in chunks through the paged cache
 * (store the chunk's K/V, then attend BOTTOM_RIGHT from the chunk's queries
 * to every key so far) equals one full causal prefill. On the way, every
 * store writes exactly its tokens' slots: padding (-1) and every other slot
 * keep their bits. With an FP8 cache the store quantises the new rows (case
 * dtype) into codes; the full prefill reads the codes of the same rows,
 * quantised as the store does (ac_fp8_quantize), so both read one cache. */
#include <stdlib.h>
#include <string.h>

#include "ac_index.h"
#include "ac_numfmt.h"
#include "prop_props.h"
#include "prop_util.h"

#define MAX_CHUNKS 4

/* What the store leaves in the cache for new element x (case dtype) of KV
   head g: x itself, or its FP8 code (ac_fp8_quantize with the head's scale). */
static uint16_t stored_elem(const ac_case *c, uint16_t x, int32_t g, int is_v)
{
    if (c->kv_format == AC_KV_AS_DTYPE) return x;
    float s = is_v ? ac_case_v_scale(c, g) : ac_case_k_scale(c, g);
    return ac_fp8_quantize(c->kv_format, ac_half_to_f32(c->dtype, x), s);
}

/* The rows the stores take: every key's K and V in the case dtype, [total_k,
   Hkv, D_qk] and [total_k, Hkv, D_v]. Without an FP8 cache they are the full
   prefill's own (borrowed); with one they come from the case with a
   case-dtype cache (owned), and the full prefill's K/V become their codes,
   quantised as the store quantises. */
typedef struct src_rows {
    const uint16_t *k, *v;
    ac_tensors own; /* the case-dtype tensors when the cache is FP8 */
} src_rows;

static ac_status source_rows(prop_inst *full, src_rows *src, ac_error *err)
{
    memset(src, 0, sizeof *src);
    const ac_case *c = &full->c;
    if (c->kv_format == AC_KV_AS_DTYPE) {
        src->k = full->t.k;
        src->v = full->t.v;
        return AC_OK;
    }
    ac_case plain;
    ac_status st = ac_case_copy(&plain, c, err);
    if (st) return st;
    plain.kv_format = AC_KV_AS_DTYPE;
    st = ac_case_set_kv_scales(&plain, NULL, NULL, 0, err);
    if (!st) st = ac_gen(&plain, &src->own, err);
    ac_case_free(&plain);
    if (st) return st;
    if (src->own.kv_elems != full->t.kv_elems || src->own.v_elems != full->t.v_elems)
        return ac_fail(err, AC_ERR_SHAPE, "chunked: the case-dtype twin has other K/V sizes");
    const int32_t D = c->head_dim, Dv = ac_case_dv(c);
    for (int64_t i = 0; i < full->t.kv_elems; i++)
        full->t.k[i] = stored_elem(c, src->own.k[i], (int32_t)((i / D) % c->heads_kv), 0);
    for (int64_t i = 0; i < full->t.v_elems; i++)
        full->t.v[i] = stored_elem(c, src->own.v[i], (int32_t)((i / Dv) % c->heads_kv), 1);
    src->k = src->own.k;
    src->v = src->own.v;
    return AC_OK;
}

/* The first element of cache (n elements, rows of Hkv * dim) that differs
   from want, or -1; *bad counts them. */
static int64_t first_diff(const uint16_t *cache, const uint16_t *want, int64_t n, int64_t *bad)
{
    int64_t first = -1;
    *bad = 0;
    for (int64_t i = 0; i < n; i++)
        if (cache[i] != want[i]) {
            if (first < 0) first = i;
            ++*bad;
        }
    return first;
}

/* Store round: tokens of [lo[b], hi[b]) of each sequence (plus pad tokens)
   into pool_k (nk elements) / pool_v (nv); checks the caches bit for bit
   (code for code with an FP8 cache) against the scatter. */
static int store_round(const ac_prop_ctx *ctx, ac_rng *r, const prop_inst *full, const src_rows *src,
                       const ac_case *paged, const int32_t *lo, const int32_t *hi, uint16_t *pool_k, uint16_t *pool_v,
                       int64_t nk, int64_t nv, char *why, size_t n)
{
    ac_error err;
    ac_error_clear(&err);
    prop_inst s;
    memset(&s, 0, sizeof s);
    uint16_t *want_k = NULL, *want_v = NULL;
    int rc = AC_PROP_PASS;
    const int32_t B = paged->batch, Hkv = paged->heads_kv, D = paged->head_dim, Dv = ac_case_dv(paged);
    const int64_t row = (int64_t)Hkv * D, vrow = (int64_t)Hkv * Dv;

    PROP_TRY(ac_case_copy(&s.c, paged, &err));
    s.c.op = AC_OP_STORE;
    s.c.causal = AC_CAUSAL_NONE;
    prop_case_no_logit_features(&s.c); /* the attention's; the store keeps the cache's D_v, format and scales */
    s.c.slot_mapping_i64 = (int)ac_rng_below(r, 2);
    int32_t real = 0;
    for (int32_t b = 0; b < B; b++) {
        s.c.seqlen_q[b] = hi[b] - lo[b];
        s.c.seqlen_k[b] = hi[b];
        real += hi[b] - lo[b];
    }
    int32_t pads = prop_pick(r, 0, 2);
    PROP_TRY(ac_case_alloc_slots(&s.c, real + pads, &err));
    /* Token order: sequence by sequence; pads (-1) at random places. */
    int32_t *src_row = malloc(sizeof(int32_t) * (size_t)(real + pads + 1)); /* full-case K row, -1 for a pad */
    if (!src_row) PROP_TRY(ac_fail(&err, AC_ERR_NOMEM, "chunked: out of memory"));
    {
        int32_t t = 0, b = 0, p = B > 0 ? lo[0] : 0, left_pads = pads;
        while (t < real + pads) {
            while (b < B && p >= hi[b]) {
                b++;
                if (b < B) p = lo[b];
            }
            int32_t left_real = real + pads - t - left_pads;
            if (left_pads > 0 && (left_real == 0 || ac_rng_below(r, 4) == 0)) {
                s.c.slot_mapping[t] = -1;
                src_row[t++] = -1;
                left_pads--;
                continue;
            }
            const int32_t *tab = paged->block_table + (int64_t)b * paged->max_blocks_per_seq;
            s.c.slot_mapping[t] = ac_pos_slot(tab, p, paged->block_size);
            src_row[t++] = full->t.cu_seqlens_k[b] + p;
            p++;
        }
    }
    ac_status st = prop_gen(&s, &err);
    if (st) {
        free(src_row);
        PROP_TRY(st);
    }
    if (s.t.kv_elems != nk || s.t.v_elems != nv) {
        free(src_row);
        PROP_TRY(ac_fail(&err, AC_ERR_SHAPE, "chunked: store case pool has %lld / %lld elements, want %lld / %lld",
                         (long long)s.t.kv_elems, (long long)s.t.v_elems, (long long)nk, (long long)nv));
    }
    memcpy(s.t.k, pool_k, sizeof(uint16_t) * (size_t)nk);
    memcpy(s.t.v, pool_v, sizeof(uint16_t) * (size_t)nv);
    for (int32_t t = 0; t < s.c.num_tokens; t++)
        if (src_row[t] >= 0) {
            memcpy(s.t.k_new + t * row, src->k + src_row[t] * row, sizeof(uint16_t) * (size_t)row);
            memcpy(s.t.v_new + t * vrow, src->v + src_row[t] * vrow, sizeof(uint16_t) * (size_t)vrow);
        }
    free(src_row);
    PROP_RUN(prop_exec(ctx, &s, "chunked/store", why, n));

    /* The cache after the store: the old one with the tokens' rows in place
       (their codes with an FP8 cache). */
    want_k = malloc(sizeof(uint16_t) * (size_t)(nk ? nk : 1));
    want_v = malloc(sizeof(uint16_t) * (size_t)(nv ? nv : 1));
    if (!want_k || !want_v) PROP_TRY(ac_fail(&err, AC_ERR_NOMEM, "chunked: out of memory"));
    memcpy(want_k, pool_k, sizeof(uint16_t) * (size_t)nk);
    memcpy(want_v, pool_v, sizeof(uint16_t) * (size_t)nv);
    for (int32_t t = 0; t < s.c.num_tokens; t++) {
        int64_t slot = s.c.slot_mapping[t];
        if (slot < 0) continue;
        for (int64_t i = 0; i < row; i++)
            want_k[slot * row + i] = stored_elem(&s.c, s.t.k_new[t * row + i], (int32_t)(i / D), 0);
        for (int64_t i = 0; i < vrow; i++)
            want_v[slot * vrow + i] = stored_elem(&s.c, s.t.v_new[t * vrow + i], (int32_t)(i / Dv), 1);
    }
    int64_t bad_k, bad_v;
    int64_t first_k = first_diff(s.o.k_cache, want_k, nk, &bad_k), first_v = first_diff(s.o.v_cache, want_v, nv, &bad_v);
    if (bad_k || bad_v) {
        const int is_v = !bad_k;
        const int64_t first = is_v ? first_v : first_k, rw = is_v ? vrow : row, dim = is_v ? Dv : D;
        snprintf(why, n,
                 "chunked/store-writes-exactly-the-mapped-slots: %lld k and %lld v cache elements differ from the "
                 "scatter of the tokens; first in %c, slot %lld (kv head %lld, dim %lld): 0x%04x want 0x%04x",
                 (long long)bad_k, (long long)bad_v, is_v ? 'v' : 'k', (long long)(first / rw),
                 (long long)(first % rw / dim), (long long)(first % dim), is_v ? s.o.v_cache[first] : s.o.k_cache[first],
                 is_v ? want_v[first] : want_k[first]);
        prop_why_case(why, n, &s.c);
        rc = AC_PROP_FAIL;
        goto done;
    }
    memcpy(pool_k, s.o.k_cache, sizeof(uint16_t) * (size_t)nk);
    memcpy(pool_v, s.o.v_cache, sizeof(uint16_t) * (size_t)nv);
done:
    free(want_k);
    free(want_v);
    prop_inst_free(&s);
    return rc;
}

/* Attention round: queries [lo[b], hi[b]) against keys [0, hi[b]) from the
   pool, BOTTOM_RIGHT; rows land at their places in `into` (the full case's
   order). */
static int attend_round(const ac_prop_ctx *ctx, const prop_inst *full, const ac_case *paged, const int32_t *lo,
                        const int32_t *hi, const uint16_t *pool_k, const uint16_t *pool_v, int64_t nk, int64_t nv,
                        ac_outputs *into, char *why, size_t n)
{
    ac_error err;
    ac_error_clear(&err);
    prop_inst x;
    memset(&x, 0, sizeof x);
    int rc = AC_PROP_PASS;
    const int32_t B = paged->batch, Hq = paged->heads_q, D = paged->head_dim;
    const int64_t qrow = (int64_t)Hq * D, orow = (int64_t)Hq * ac_case_dv(paged); /* out has D_v columns */

    PROP_TRY(ac_case_copy(&x.c, paged, &err));
    x.c.causal = AC_CAUSAL_BOTTOM_RIGHT;
    for (int32_t b = 0; b < B; b++) {
        x.c.seqlen_q[b] = hi[b] - lo[b];
        x.c.seqlen_k[b] = hi[b];
    }
    PROP_TRY(prop_gen(&x, &err));
    if (x.t.kv_elems != nk || x.t.v_elems != nv) PROP_TRY(ac_fail(&err, AC_ERR_SHAPE, "chunked: pool size mismatch"));
    memcpy(x.t.k, pool_k, sizeof(uint16_t) * (size_t)nk);
    memcpy(x.t.v, pool_v, sizeof(uint16_t) * (size_t)nv);
    for (int32_t b = 0; b < B; b++)
        for (int32_t i = lo[b]; i < hi[b]; i++)
            memcpy(x.t.q + (x.t.cu_seqlens_q[b] + i - lo[b]) * qrow, full->t.q + (full->t.cu_seqlens_q[b] + i) * qrow,
                   sizeof(uint16_t) * (size_t)qrow);
    PROP_RUN(prop_exec(ctx, &x, "chunked/attend", why, n));
    for (int32_t b = 0; b < B; b++)
        for (int32_t i = lo[b]; i < hi[b]; i++) {
            int64_t from = x.t.cu_seqlens_q[b] + i - lo[b], to = full->t.cu_seqlens_q[b] + i;
            memcpy(into->o + to * orow, x.o.o + from * orow, sizeof(uint16_t) * (size_t)orow);
            if (x.o.lse && into->lse) memcpy(into->lse + to * Hq, x.o.lse + from * Hq, sizeof(float) * (size_t)Hq);
        }
    if (!x.o.lse) { /* a kernel without an LSE: the assembled run has none either */
        free(into->lse);
        into->lse = NULL;
    }
done:
    prop_inst_free(&x);
    return rc;
}

int prop_chunked(const ac_prop_ctx *ctx, char *why, size_t n)
{
    ac_rng r;
    ac_rng_init(&r, ctx->seed, PROP_STREAM);
    ac_error err;
    ac_error_clear(&err);
    prop_inst full;
    ac_case paged;
    ac_outputs chunked;
    memset(&full, 0, sizeof full);
    memset(&chunked, 0, sizeof chunked);
    ac_case_init(&paged);
    uint16_t *pool_k = NULL, *pool_v = NULL;
    src_rows src;
    memset(&src, 0, sizeof src);
    int rc = AC_PROP_PASS;

    /* The full prefill: contiguous, Lq == Lk, causal. */
    prop_case_base(ctx, AC_OP_PREFILL, &full.c);
    full.c.causal = AC_CAUSAL_BOTTOM_RIGHT;
    PROP_TRY(prop_case_lengths(&full.c, &r, prop_pick(&r, 1, 2), 8, 96, 0, 0, &err));
    /* Windows and ALiBi are bottom-right aligned: a chunk's query i sees the
       keys and distances its full-prefill row sees. An FP8 cache and D_v
       belong to the cache the stores fill (the store takes both). */
    PROP_TRY(prop_case_features(ctx, &full.c, AC_FEAT_ALL, &err));
    PROP_TRY(prop_gen(&full, &err));
    PROP_TRY(source_rows(&full, &src, &err));
    PROP_RUN(prop_exec(ctx, &full, "chunked/full-prefill", why, n));
    PROP_TRY(prop_inst_model(&full, &err));

    /* The paged cache that the chunks fill, NaN everywhere at first: a read
       of a slot not yet stored (or never) poisons the output. */
    PROP_TRY(ac_case_copy(&paged, &full.c, &err));
    PROP_TRY(prop_case_place(ctx, &paged, &r, &err));
    const int32_t B = paged.batch;
    const int64_t slots = (int64_t)paged.num_blocks * paged.block_size;
    const int64_t nk = slots * paged.heads_kv * paged.head_dim, nv = slots * paged.heads_kv * ac_case_dv(&paged);
    pool_k = malloc(sizeof(uint16_t) * (size_t)(nk ? nk : 1));
    pool_v = malloc(sizeof(uint16_t) * (size_t)(nv ? nv : 1));
    if (!pool_k || !pool_v) PROP_TRY(ac_fail(&err, AC_ERR_NOMEM, "chunked: out of memory for the pool"));
    for (int64_t i = 0; i < nk; i++) pool_k[i] = ac_kv_elem_nan(paged.dtype, paged.kv_format, 0);
    for (int64_t i = 0; i < nv; i++) pool_v[i] = ac_kv_elem_nan(paged.dtype, paged.kv_format, 0);

    /* Random chunk boundaries: 1..MAX_CHUNKS chunks per sequence. */
    int32_t cuts[2][MAX_CHUNKS + 1], nchunks[2], rounds = 0;
    for (int32_t b = 0; b < B; b++) {
        int32_t L = full.c.seqlen_q[b];
        nchunks[b] = prop_pick(&r, 1, MAX_CHUNKS);
        cuts[b][0] = 0;
        cuts[b][nchunks[b]] = L;
        for (int32_t k = 1; k < nchunks[b]; k++) /* increasing, possibly equal: empty chunks too */
            cuts[b][k] = prop_pick(&r, cuts[b][k - 1], L);
        if (nchunks[b] > rounds) rounds = nchunks[b];
    }
    PROP_TRY(ac_outputs_alloc(&full.c, &chunked, &err));
    for (int32_t k = 0; k < rounds; k++) {
        int32_t lo[2], hi[2];
        for (int32_t b = 0; b < B; b++) {
            lo[b] = k < nchunks[b] ? cuts[b][k] : cuts[b][nchunks[b]];
            hi[b] = k < nchunks[b] ? cuts[b][k + 1] : cuts[b][nchunks[b]];
        }
        PROP_RUN(store_round(ctx, &r, &full, &src, &paged, lo, hi, pool_k, pool_v, nk, nv, why, n));
        PROP_RUN(attend_round(ctx, &full, &paged, lo, hi, pool_k, pool_v, nk, nv, &chunked, why, n));
    }
    PROP_CHECK(prop_within(&full.c, &full.m, NULL, &full.o, &chunked, NULL,
                           "chunked/chunks-through-the-cache-equal-one-full-prefill", why, n));

done:
    free(pool_k);
    free(pool_v);
    ac_tensors_free(&src.own);
    ac_outputs_free(&chunked);
    ac_case_free(&paged);
    prop_inst_free(&full);
    return rc;
}
