/* Small random cases for the oracle's own tests and its mpmath cross-check.
 * Values are drawn as exact bf16 / fp16 / fp32 bit patterns (random sign,
 * exponent in a range, random significand), so no rounding function is
 * involved and the data are the same on every platform. Independent of
 * common/ac_gen.c on purpose (only the integer stream, ac_rng, is shared):
 * the oracle's checks should not depend on the generator they are used to
 * judge. Header-only (static): included by tests. */
#ifndef AC_ORACLE_TESTGEN_H
#define AC_ORACLE_TESTGEN_H

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ac_case.h"
#include "ac_index.h"
#include "ac_numfmt.h"
#include "ac_rng.h"
#include "ac_tensors.h"

/* `tg_rng r = {seed}`: the plain SplitMix64 sequence of seed. */
typedef ac_rng tg_rng;

static inline uint64_t tg_next(tg_rng *r) { return ac_rng_next(r); }
static inline int tg_below(tg_rng *r, int n) { return n <= 1 ? 0 : (int)(tg_next(r) % (uint64_t)n); }

/* A random value of the dtype with unbiased exponent in [emin, emax]
   (1 in 16 is zero). */
static inline uint16_t tg_half(tg_rng *r, ac_dtype t, int emin, int emax)
{
    uint64_t x = tg_next(r);
    if ((x & 15) == 0) return (uint16_t)((x >> 8) & 1) << 15;
    uint16_t sign = (uint16_t)(((x >> 4) & 1) << 15);
    int e = emin + (int)((x >> 5) % (uint64_t)(emax - emin + 1));
    if (t == AC_BF16) return sign | (uint16_t)((e + 127) << 7) | (uint16_t)((x >> 20) & 0x7f);
    return sign | (uint16_t)((e + 15) << 10) | (uint16_t)((x >> 20) & 0x3ff);
}

static inline float tg_f32(tg_rng *r, int emin, int emax)
{
    uint64_t x = tg_next(r);
    if ((x & 15) == 0) return 0.0f;
    uint32_t sign = (uint32_t)((x >> 4) & 1) << 31;
    int e = emin + (int)((x >> 5) % (uint64_t)(emax - emin + 1));
    return ac_f32_from_bits(sign | (uint32_t)(e + 127) << 23 | (uint32_t)((x >> 24) & 0x7fffff));
}

static inline uint16_t tg_half_nan(ac_dtype t) { return t == AC_FP16 ? 0x7e00u : 0x7fc0u; }

/* Value exponent range used by tg_fill (unbiased, inclusive). */
typedef struct tg_range { int emin, emax; } tg_range;

/* One K/V storage element: a half of the range, or with an FP8 cache the
   code of such a value (saturated into the format). NaN where unread. */
static inline uint16_t tg_kv(tg_rng *r, const ac_case *c, tg_range vr)
{
    uint16_t h = tg_half(r, c->dtype, vr.emin, vr.emax);
    if (c->kv_format == AC_KV_AS_DTYPE) return h;
    return ac_f32_to_fp8(c->kv_format, ac_half_to_f32(c->dtype, h));
}
static inline uint16_t tg_kv_nan(const ac_case *c)
{
    return c->kv_format == AC_KV_AS_DTYPE ? tg_half_nan(c->dtype) : 0x7fu;
}

/* K [.., Hkv, D] and V [.., Hkv, D_v] of the case (contiguous or the whole
   pool), in its K/V storage format; unread slots NaN when nan_unread. */
static inline int tg_fill_kv(const ac_case *c, ac_tensors *t, tg_rng *r, tg_range vr, int nan_unread)
{
    int32_t Hkv = c->heads_kv, D = c->head_dim, Dv = ac_case_dv(c);
    int64_t row = (int64_t)Hkv * D, row_v = (int64_t)Hkv * Dv;
    int64_t slots = c->paged ? (int64_t)c->num_blocks * c->block_size : t->total_k;
    t->kv_elems = slots * row;
    t->v_elems = slots * row_v;
    t->k = malloc(sizeof(uint16_t) * (size_t)(t->kv_elems ? t->kv_elems : 1));
    t->v = malloc(sizeof(uint16_t) * (size_t)(t->v_elems ? t->v_elems : 1));
    if (!t->k || !t->v) return -1;
    int64_t wide = row > row_v ? row : row_v;
    /* k and v drawn interleaved, element by element of the wider row. */
    if (c->paged) {
        for (int64_t i = 0; i < slots * wide; i++) {
            uint16_t a = nan_unread ? tg_kv_nan(c) : tg_kv(r, c, vr); /* one draw for both */
            if (i < t->kv_elems) t->k[i] = a;
            if (i < t->v_elems) t->v[i] = a;
        }
        for (int32_t b = 0; b < c->batch; b++)
            for (int32_t p = 0; p < c->seqlen_k[b]; p++) {
                int64_t slot = ac_pos_slot(c->block_table + (int64_t)b * c->max_blocks_per_seq, p, c->block_size);
                for (int64_t x = 0; x < wide; x++) {
                    uint16_t kx = tg_kv(r, c, vr), vx = tg_kv(r, c, vr);
                    if (x < row) t->k[slot * row + x] = kx;
                    if (x < row_v) t->v[slot * row_v + x] = vx;
                }
            }
    } else {
        for (int64_t i = 0; i < slots * wide; i++) {
            uint16_t kx = tg_kv(r, c, vr), vx = tg_kv(r, c, vr);
            if (i < t->kv_elems) t->k[i] = kx;
            if (i < t->v_elems) t->v[i] = vx;
        }
    }
    return 0;
}

/* Materialise the tensors of a case whose shape fields (op, dtype, lengths,
   heads, paging with its block table, mask kind, splits, slots) are set.
   Unread cache slots and table entries get NaN / garbage when nan_unread. */
static inline int tg_fill(const ac_case *c, ac_tensors *t, uint64_t seed, tg_range vr, int nan_unread)
{
    tg_rng r = {seed};
    memset(t, 0, sizeof *t);
    int32_t B = c->batch, Hq = c->heads_q, Hkv = c->heads_kv, D = c->head_dim;
    t->cu_seqlens_q = calloc((size_t)B + 1, sizeof(int32_t));
    t->cu_seqlens_k = calloc((size_t)B + 1, sizeof(int32_t));
    if (!t->cu_seqlens_q || !t->cu_seqlens_k) return -1;
    for (int32_t b = 0; b < B; b++) {
        t->cu_seqlens_q[b + 1] = t->cu_seqlens_q[b] + c->seqlen_q[b];
        t->cu_seqlens_k[b + 1] = t->cu_seqlens_k[b] + c->seqlen_k[b];
    }
    t->total_q = t->cu_seqlens_q[B];
    t->total_k = t->cu_seqlens_k[B];
    int64_t nq = t->total_q * Hq * D;
    t->q = malloc(sizeof(uint16_t) * (size_t)(nq ? nq : 1));
    if (!t->q) return -1;
    for (int64_t i = 0; i < nq; i++) t->q[i] = tg_half(&r, c->dtype, vr.emin, vr.emax);
    if (c->op == AC_OP_COMBINE) {
        int64_t S = c->num_splits, rows = t->total_q * Hq;
        t->o_part = malloc(sizeof(float) * (size_t)(rows * S * D + 1));
        t->lse_part = malloc(sizeof(float) * (size_t)(rows * S + 1));
        if (!t->o_part || !t->lse_part) return -1;
        for (int64_t i = 0; i < rows * S; i++) {
            int empty = tg_below(&r, 4) == 0;
            t->lse_part[i] = empty ? -INFINITY : tg_f32(&r, -3, 6);
            for (int32_t d = 0; d < D; d++)
                t->o_part[i * D + d] = empty && nan_unread ? NAN : tg_f32(&r, vr.emin, vr.emax);
        }
        return 0;
    }
    if (tg_fill_kv(c, t, &r, vr, nan_unread)) return -1;
    if (c->op == AC_OP_STORE) {
        int64_t nn = (int64_t)c->num_tokens * Hkv * D, nv = (int64_t)c->num_tokens * Hkv * ac_case_dv(c);
        t->k_new = malloc(sizeof(uint16_t) * (size_t)(nn ? nn : 1));
        t->v_new = malloc(sizeof(uint16_t) * (size_t)(nv ? nv : 1));
        if (!t->k_new || !t->v_new) return -1;
        for (int64_t i = 0; i < (nn > nv ? nn : nv); i++) {
            if (i < nn) t->k_new[i] = tg_half(&r, c->dtype, vr.emin, vr.emax);
            if (i < nv) t->v_new[i] = tg_half(&r, c->dtype, vr.emin, vr.emax);
        }
    }
    if (c->mask != AC_MASK_NONE) {
        int64_t hm = c->mask_per_head ? Hq : 1;
        t->mask_off = calloc((size_t)B + 1, sizeof(int64_t));
        if (!t->mask_off) return -1;
        for (int32_t b = 0; b < B; b++)
            t->mask_off[b + 1] = t->mask_off[b] + hm * c->seqlen_q[b] * c->seqlen_k[b];
        int64_t nm = t->mask_off[B];
        uint32_t thresh = (uint32_t)(c->mask_density * 1000.0f);
        if (c->mask == AC_MASK_BOOL) {
            t->mask_bool = malloc((size_t)(nm ? nm : 1));
            if (!t->mask_bool) return -1;
            for (int64_t i = 0; i < nm; i++) t->mask_bool[i] = (uint32_t)tg_below(&r, 1000) < thresh;
        } else {
            t->mask_bias = malloc(sizeof(float) * (size_t)(nm ? nm : 1));
            if (!t->mask_bias) return -1;
            for (int64_t i = 0; i < nm; i++)
                t->mask_bias[i] = (uint32_t)tg_below(&r, 1000) < thresh ? (float)(tg_below(&r, 129) - 64) / 16.0f
                                                                       : -INFINITY;
        }
    }
    return 0;
}

/* A paged layout for the case's seqlen_k: each sequence gets its own blocks in
   a shuffled pool with `spare` unused blocks; unused table entries hold
   garbage when garbage != 0. */
static inline int tg_page(ac_case *c, int32_t block_size, int32_t spare, uint64_t seed, int garbage)
{
    tg_rng r = {seed ^ 0x5eedull};
    c->paged = 1;
    c->block_size = block_size;
    int32_t need = 0, maxb = 1;
    for (int32_t b = 0; b < c->batch; b++) {
        int32_t u = ac_blocks_used(c->seqlen_k[b], block_size);
        need += u;
        if (u + 1 > maxb) maxb = u + 1;
    }
    c->num_blocks = need + spare > 0 ? need + spare : 1;
    if (ac_case_alloc_table(c, maxb, NULL)) return -1;
    int32_t *perm = malloc(sizeof(int32_t) * (size_t)c->num_blocks);
    if (!perm) return -1;
    for (int32_t i = 0; i < c->num_blocks; i++) perm[i] = i;
    for (int32_t i = c->num_blocks - 1; i > 0; i--) {
        int32_t j = tg_below(&r, i + 1), x = perm[i];
        perm[i] = perm[j];
        perm[j] = x;
    }
    int32_t next = 0;
    for (int32_t b = 0; b < c->batch; b++) {
        int32_t u = ac_blocks_used(c->seqlen_k[b], block_size);
        for (int32_t i = 0; i < maxb; i++)
            c->block_table[(int64_t)b * maxb + i] = i < u ? perm[next++] : (garbage ? (i & 1 ? -7 : 1 << 30) : -1);
    }
    free(perm);
    return 0;
}

/* A random small case of `op` with every feature drawn from the seed. */
static inline int tg_random_case(ac_op op, uint64_t seed, ac_case *c, ac_tensors *t)
{
    tg_rng r = {seed};
    ac_case_init(c);
    c->op = op;
    c->seed = seed;
    c->dtype = tg_below(&r, 2) ? AC_FP16 : AC_BF16;
    int32_t B = 1 + tg_below(&r, 3);
    if (ac_case_set_batch(c, B, NULL)) return -1;
    static const int32_t groups[] = {1, 2, 4};
    c->heads_kv = 1 + tg_below(&r, 2);
    c->heads_q = c->heads_kv * groups[tg_below(&r, 3)];
    static const int32_t dims[] = {1, 3, 8, 16, 20};
    c->head_dim = dims[tg_below(&r, 5)];
    int sc = tg_below(&r, 4);
    if (sc == 1) {
        c->scale_given = 1;
        c->scale = 0.0f;
    } else if (sc == 2) {
        c->scale_given = 1;
        c->scale = tg_f32(&r, -4, 1);
    }
    for (int32_t b = 0; b < B; b++) {
        c->seqlen_k[b] = tg_below(&r, 40);
        c->seqlen_q[b] = op == AC_OP_DECODE ? 1 + tg_below(&r, 4) : tg_below(&r, 12);
    }
    if (op == AC_OP_COMBINE) {
        c->num_splits = 1 + tg_below(&r, 5);
        return tg_fill(c, t, tg_next(&r), (tg_range){-6, 2}, 1);
    }
    c->causal = op == AC_OP_DECODE ? (tg_below(&r, 3) ? AC_CAUSAL_BOTTOM_RIGHT : (ac_causal)tg_below(&r, 3))
                                   : (ac_causal)tg_below(&r, 3);
    c->mask = (ac_mask_kind)tg_below(&r, 3);
    c->mask_per_head = tg_below(&r, 2);
    c->mask_density = (float)(1 + tg_below(&r, 10)) / 10.0f;
    int paged = op == AC_OP_DECODE || tg_below(&r, 2);
    if (paged) {
        static const int32_t bss[] = {1, 3, 4, 16};
        if (tg_page(c, bss[tg_below(&r, 4)], tg_below(&r, 3), tg_next(&r), 1)) return -1;
    }
    /* Magnitudes: ordinary, or large (saturated softmax, logits in the hundreds). */
    tg_range vr = tg_below(&r, 4) == 0 ? (tg_range){-2, 4} : (tg_range){-6, 1};
    return tg_fill(c, t, tg_next(&r), vr, 1);
}

/* The features of docs/CONTRACT.md drawn from `seed` onto an attention case
   (prefill or decode; its shapes and tensors stay as they are): each of
   window, softcap, ALiBi and sinks on with probability 1/2, with values that
   reach empty windows, caps below and above the logits, slopes of both signs
   and -inf or dominant sinks. */
static inline int tg_random_features(ac_case *c, uint64_t seed)
{
    tg_rng r = {seed};
    if (tg_below(&r, 2)) {
        c->window_left = tg_below(&r, 4) ? tg_below(&r, 9) : -1;
        c->window_right = tg_below(&r, 3) ? tg_below(&r, 5) : -1;
        if (c->window_left == -1 && c->window_right == -1) c->window_right = 0;
    }
    if (tg_below(&r, 2)) c->softcap = fabsf(tg_f32(&r, -2, 5)) + 0.25f; /* 0.25 .. 64 */
    float v[64];
    int32_t hq = c->heads_q < 64 ? c->heads_q : 64;
    if (hq > 0 && tg_below(&r, 2)) {
        for (int32_t h = 0; h < hq; h++) { /* the ALiBi geometric slopes 2^-(8(h+1)/H), either sign, or others */
            float x = tg_below(&r, 2) ? ldexpf(1.0f, -(int)(1 + tg_below(&r, 8))) : tg_f32(&r, -6, 1);
            v[h] = tg_below(&r, 4) ? x : -x;
        }
        if (ac_case_set_alibi(c, v, hq, NULL)) return -1;
    }
    if (hq > 0 && tg_below(&r, 2)) {
        for (int32_t h = 0; h < hq; h++) {
            int k = tg_below(&r, 4);
            v[h] = k == 0 ? -INFINITY : k == 1 ? 0.0f : (tg_next(&r) & 1 ? 1.0f : -1.0f) * tg_f32(&r, -3, 4);
        }
        if (ac_case_set_sinks(c, v, hq, NULL)) return -1;
    }
    return 0;
}

/* The K/V storage of docs/CONTRACT.md section 13 drawn from `seed` onto an
   attention case whose tensors exist: D_v != D (half the time), an FP8
   format (half the time; E4M3 or E5M2) with no, per-tensor or per-head
   scales of any fp32 value in [2^-8, 2^8]; K and V are then drawn again. */
static inline int tg_random_kv(ac_case *c, ac_tensors *t, uint64_t seed)
{
    tg_rng r = {seed};
    static const int32_t dvs[] = {1, 3, 8, 16, 24};
    if (tg_below(&r, 2)) c->head_dim_v = dvs[tg_below(&r, 5)];
    if (tg_below(&r, 2)) {
        c->kv_format = tg_below(&r, 2) ? AC_KV_E4M3 : AC_KV_E5M2;
        int k = tg_below(&r, 3);
        int32_t n = k == 0 ? 0 : k == 1 ? 1 : c->heads_kv;
        float ks[64], vs[64];
        if (n > 64) n = 1;
        for (int32_t i = 0; i < n; i++) {
            ks[i] = fabsf(tg_f32(&r, -8, 7));
            vs[i] = fabsf(tg_f32(&r, -8, 7));
            if (!(ks[i] >= 0x1p-9f)) ks[i] = 0.75f; /* tg_f32 may give 0 or a tiny value */
            if (!(vs[i] >= 0x1p-9f)) vs[i] = 1.25f;
        }
        if (ac_case_set_kv_scales(c, ks, vs, n, NULL)) return -1;
    }
    free(t->k);
    free(t->v);
    t->k = t->v = NULL;
    return tg_fill_kv(c, t, &r, (tg_range){-6, 2}, c->paged);
}

#endif
