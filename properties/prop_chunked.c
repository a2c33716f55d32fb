/* 4. Chunked prefill: a sequence prefilled in chunks through the paged cache
 * (store the chunk's K/V, then attend BOTTOM_RIGHT from the chunk's queries
 * to every key so far) equals one full causal prefill. On the way, every
 * store writes exactly its tokens' slots: padding (-1) and every other slot
 * keep their bits. */
#include <stdlib.h>
#include <string.h>

#include "ac_index.h"
#include "prop_props.h"
#include "prop_util.h"

#define MAX_CHUNKS 4

static uint16_t half_qnan(ac_dtype dt) { return dt == AC_FP16 ? 0x7e00u : 0x7fc0u; }

/* Store round: tokens of [lo[b], hi[b]) of each sequence (plus pad tokens)
   into pool_k / pool_v; checks the caches bit for bit against the scatter. */
static int store_round(const ac_prop_ctx *ctx, ac_rng *r, const prop_inst *full, const ac_case *paged,
                       const int32_t *lo, const int32_t *hi, uint16_t *pool_k, uint16_t *pool_v, int64_t pool_n,
                       char *why, size_t n)
{
    ac_error err;
    ac_error_clear(&err);
    prop_inst s;
    memset(&s, 0, sizeof s);
    uint16_t *want_k = NULL, *want_v = NULL;
    int rc = AC_PROP_PASS;
    const int32_t B = paged->batch, Hkv = paged->heads_kv, D = paged->head_dim;
    const int64_t row = (int64_t)Hkv * D;

    PROP_TRY(ac_case_copy(&s.c, paged, &err));
    s.c.op = AC_OP_STORE;
    s.c.causal = AC_CAUSAL_NONE;
    prop_case_no_features(&s.c); /* the attention's features; a store takes none */
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
    if (s.t.kv_elems != pool_n) {
        free(src_row);
        PROP_TRY(ac_fail(&err, AC_ERR_SHAPE, "chunked: store case pool has %lld elements, want %lld",
                         (long long)s.t.kv_elems, (long long)pool_n));
    }
    memcpy(s.t.k, pool_k, sizeof(uint16_t) * (size_t)pool_n);
    memcpy(s.t.v, pool_v, sizeof(uint16_t) * (size_t)pool_n);
    for (int32_t t = 0; t < s.c.num_tokens; t++)
        if (src_row[t] >= 0) {
            memcpy(s.t.k_new + t * row, full->t.k + src_row[t] * row, sizeof(uint16_t) * (size_t)row);
            memcpy(s.t.v_new + t * row, full->t.v + src_row[t] * row, sizeof(uint16_t) * (size_t)row);
        }
    free(src_row);
    PROP_RUN(prop_exec(ctx, &s, "chunked/store", why, n));

    /* The cache after the store: the old one with the tokens' rows in place. */
    want_k = malloc(sizeof(uint16_t) * (size_t)pool_n);
    want_v = malloc(sizeof(uint16_t) * (size_t)pool_n);
    if (!want_k || !want_v) PROP_TRY(ac_fail(&err, AC_ERR_NOMEM, "chunked: out of memory"));
    memcpy(want_k, pool_k, sizeof(uint16_t) * (size_t)pool_n);
    memcpy(want_v, pool_v, sizeof(uint16_t) * (size_t)pool_n);
    for (int32_t t = 0; t < s.c.num_tokens; t++) {
        int64_t slot = s.c.slot_mapping[t];
        if (slot < 0) continue;
        memcpy(want_k + slot * row, s.t.k_new + t * row, sizeof(uint16_t) * (size_t)row);
        memcpy(want_v + slot * row, s.t.v_new + t * row, sizeof(uint16_t) * (size_t)row);
    }
    int64_t bad = 0, first = -1;
    for (int64_t i = 0; i < pool_n; i++)
        if (s.o.k_cache[i] != want_k[i] || s.o.v_cache[i] != want_v[i]) {
            if (first < 0) first = i;
            bad++;
        }
    if (bad) {
        snprintf(why, n,
                 "chunked/store-writes-exactly-the-mapped-slots: %lld cache elements differ from the scatter of "
                 "the tokens; first in slot %lld (kv head %lld, dim %lld): k 0x%04x want 0x%04x, v 0x%04x want "
                 "0x%04x",
                 (long long)bad, (long long)(first / row), (long long)(first % row / D), (long long)(first % D),
                 s.o.k_cache[first], want_k[first], s.o.v_cache[first], want_v[first]);
        prop_why_case(why, n, &s.c);
        rc = AC_PROP_FAIL;
        goto done;
    }
    memcpy(pool_k, s.o.k_cache, sizeof(uint16_t) * (size_t)pool_n);
    memcpy(pool_v, s.o.v_cache, sizeof(uint16_t) * (size_t)pool_n);
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
                        const int32_t *hi, const uint16_t *pool_k, const uint16_t *pool_v, int64_t pool_n,
                        ac_outputs *into, char *why, size_t n)
{
    ac_error err;
    ac_error_clear(&err);
    prop_inst x;
    memset(&x, 0, sizeof x);
    int rc = AC_PROP_PASS;
    const int32_t B = paged->batch, Hq = paged->heads_q, D = paged->head_dim;
    const int64_t qrow = (int64_t)Hq * D;

    PROP_TRY(ac_case_copy(&x.c, paged, &err));
    x.c.causal = AC_CAUSAL_BOTTOM_RIGHT;
    for (int32_t b = 0; b < B; b++) {
        x.c.seqlen_q[b] = hi[b] - lo[b];
        x.c.seqlen_k[b] = hi[b];
    }
    PROP_TRY(prop_gen(&x, &err));
    if (x.t.kv_elems != pool_n) PROP_TRY(ac_fail(&err, AC_ERR_SHAPE, "chunked: pool size mismatch"));
    memcpy(x.t.k, pool_k, sizeof(uint16_t) * (size_t)pool_n);
    memcpy(x.t.v, pool_v, sizeof(uint16_t) * (size_t)pool_n);
    for (int32_t b = 0; b < B; b++)
        for (int32_t i = lo[b]; i < hi[b]; i++)
            memcpy(x.t.q + (x.t.cu_seqlens_q[b] + i - lo[b]) * qrow, full->t.q + (full->t.cu_seqlens_q[b] + i) * qrow,
                   sizeof(uint16_t) * (size_t)qrow);
    PROP_RUN(prop_exec(ctx, &x, "chunked/attend", why, n));
    for (int32_t b = 0; b < B; b++)
        for (int32_t i = lo[b]; i < hi[b]; i++) {
            int64_t from = x.t.cu_seqlens_q[b] + i - lo[b], to = full->t.cu_seqlens_q[b] + i;
            memcpy(into->o + to * qrow, x.o.o + from * qrow, sizeof(uint16_t) * (size_t)qrow);
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
    int rc = AC_PROP_PASS;

    /* The full prefill: contiguous, Lq == Lk, causal. */
    prop_case_base(ctx, AC_OP_PREFILL, &full.c);
    full.c.causal = AC_CAUSAL_BOTTOM_RIGHT;
    PROP_TRY(prop_case_lengths(&full.c, &r, prop_pick(&r, 1, 2), 8, 96, 0, 0, &err));
    /* Windows and ALiBi are bottom-right aligned: a chunk's query i sees the
       keys and distances its full-prefill row sees. */
    PROP_TRY(prop_case_features(ctx, &full.c, AC_FEAT_LOGIT, &err));
    PROP_TRY(prop_gen(&full, &err));
    PROP_RUN(prop_exec(ctx, &full, "chunked/full-prefill", why, n));
    PROP_TRY(prop_inst_model(&full, &err));

    /* The paged cache that the chunks fill, NaN everywhere at first: a read
       of a slot not yet stored (or never) poisons the output. */
    PROP_TRY(ac_case_copy(&paged, &full.c, &err));
    PROP_TRY(prop_case_place(ctx, &paged, &r, &err));
    const int32_t B = paged.batch;
    const int64_t pool_n = (int64_t)paged.num_blocks * paged.block_size * paged.heads_kv * paged.head_dim;
    pool_k = malloc(sizeof(uint16_t) * (size_t)pool_n);
    pool_v = malloc(sizeof(uint16_t) * (size_t)pool_n);
    if (!pool_k || !pool_v) PROP_TRY(ac_fail(&err, AC_ERR_NOMEM, "chunked: out of memory for the pool"));
    for (int64_t i = 0; i < pool_n; i++) pool_k[i] = pool_v[i] = half_qnan(paged.dtype);

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
        PROP_RUN(store_round(ctx, &r, &full, &paged, lo, hi, pool_k, pool_v, pool_n, why, n));
        PROP_RUN(attend_round(ctx, &full, &paged, lo, hi, pool_k, pool_v, pool_n, &chunked, why, n));
    }
    PROP_CHECK(prop_within(&full.c, &full.m, NULL, &full.o, &chunked, NULL,
                           "chunked/chunks-through-the-cache-equal-one-full-prefill", why, n));

done:
    free(pool_k);
    free(pool_v);
    ac_outputs_free(&chunked);
    ac_case_free(&paged);
    prop_inst_free(&full);
    return rc;
}
