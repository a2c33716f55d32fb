/* The case under mutation: decoding arbitrary bytes into a case, structural
 * mutation and crossover, the fuzzing budget, and an independent statement
 * of the contract's input rules (SEMANTICS.md, "Bad input") to judge the
 * validation against. */
#include "ac_fuzz.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------ */
/* PRNG: ac_rng (common/ac_rng.h), the mutators' own streams.               */
uint64_t ac_fuzz_next(ac_fuzz_rng *r) { return ac_rng_next(r); }

uint32_t ac_fuzz_below(ac_fuzz_rng *r, uint32_t n)
{
    /* The modulo bias of a 64-bit draw over n < 2^32 is below 2^-32: irrelevant to a mutator. */
    return (uint32_t)(ac_fuzz_next(r) % n);
}

#define PICK(r, arr) ((arr)[ac_fuzz_below((r), (uint32_t)(sizeof(arr) / sizeof((arr)[0])))])

/* Values a mutator likes: the edges of blocks, splits and int32. */
static const int32_t block_sizes[] = {1, 2, 3, 4, 5, 7, 8, 15, 16, 17, 32, 64};
static const int32_t head_dims[] = {8, 16, 16, 24, 32, 32, 40, 64, 64, 80, 96, 128};
static const int32_t bad_head_dims[] = {0, 1, 12, 63, 264, 1024, 1025};
static const int32_t bad_entries[] = {-1, -2, INT32_MIN, INT32_MAX, -1000};
static const float special_scales[] = {0.0f, -0.0f, 1.0f, -1.0f, 0.125f, 1e-30f, 1e-45f, 3.0f, 64.0f, -0.5f};
static const float bad_scales[] = {NAN, INFINITY, -INFINITY};

/* ------------------------------------------------------------------------ */
/* Array surgery that keeps batch, table and slot arrays consistent.         */

/* Resize to nb sequences, keeping the first min(old, nb) rows of every array;
   new sequences get lengths (lq, lk) and a table row of -1. */
static int resize_batch(ac_case *c, int32_t nb, int32_t lq, int32_t lk)
{
    if (nb < 0 || nb > 64) return -1;
    int32_t ob = c->batch, keep = ob < nb ? ob : nb, m = c->max_blocks_per_seq;
    int32_t *q = calloc((size_t)nb + 1, sizeof *q), *k = calloc((size_t)nb + 1, sizeof *k);
    int32_t *tab = NULL;
    size_t entries = (size_t)nb * (size_t)(m > 0 ? m : 0);
    if (entries) tab = malloc(entries * sizeof *tab);
    if (!q || !k || (entries && !tab)) {
        free(q), free(k), free(tab);
        return -1;
    }
    for (int32_t b = 0; b < nb; b++) {
        q[b] = b < keep ? c->seqlen_q[b] : lq;
        k[b] = b < keep ? c->seqlen_k[b] : lk;
        for (int32_t i = 0; i < m; i++)
            tab[(size_t)b * m + i] = (b < keep && c->block_table) ? c->block_table[(size_t)b * m + i] : -1;
    }
    free(c->seqlen_q), free(c->seqlen_k), free(c->block_table);
    c->seqlen_q = q, c->seqlen_k = k, c->block_table = tab, c->batch = nb;
    return 0;
}

/* Reshape the table to m columns (m >= 0), keeping the first columns. */
static int resize_columns(ac_case *c, int32_t m, int32_t fill)
{
    if (m < 0 || m > 4096) return -1;
    size_t entries = (size_t)(c->batch > 0 ? c->batch : 0) * (size_t)m;
    int32_t *tab = entries ? malloc(entries * sizeof *tab) : NULL;
    if (entries && !tab) return -1;
    for (int32_t b = 0; b < c->batch; b++)
        for (int32_t i = 0; i < m; i++)
            tab[(size_t)b * m + i] = (i < c->max_blocks_per_seq && c->block_table)
                                         ? c->block_table[(size_t)b * c->max_blocks_per_seq + i] : fill;
    free(c->block_table);
    c->block_table = tab;
    c->max_blocks_per_seq = m;
    return 0;
}

static int resize_slots(ac_case *c, int32_t n)
{
    if (n < 0 || n > 4096) return -1;
    int64_t *s = n ? malloc(sizeof *s * (size_t)n) : NULL;
    if (n && !s) return -1;
    for (int32_t i = 0; i < n; i++) s[i] = i < c->num_tokens && c->slot_mapping ? c->slot_mapping[i] : -1;
    free(c->slot_mapping);
    c->slot_mapping = s;
    c->num_tokens = n;
    return 0;
}

/* A block index at or past the pool (num_blocks + k, k < n), saturated at
   INT32_MAX: a parsed file may hold any num_blocks. */
static int32_t past_pool(const ac_case *c, uint32_t n, ac_fuzz_rng *r)
{
    int64_t v = (int64_t)c->num_blocks + ac_fuzz_below(r, n);
    if (c->num_blocks < 0) v = ac_fuzz_below(r, n); /* any entry is out of a negative pool */
    return v > INT32_MAX ? INT32_MAX : (int32_t)v;
}

static int32_t blocks_for(int32_t lk, int32_t bs) { return bs > 0 && lk > 0 ? (int32_t)(((int64_t)lk + bs - 1) / bs) : 0; }
/* The int32 nearest to v: extremes of a parsed case stay representable. */
static int32_t clamp32(int64_t v) { return v > INT32_MAX ? INT32_MAX : v < INT32_MIN ? INT32_MIN : (int32_t)v; }

/* A fresh, valid table for the current lengths (kind and spare pool blocks
   drawn), and for a store fresh slots. Leaves the case alone on failure. */
static void relayout(ac_case *c, ac_fuzz_rng *r)
{
    ac_error e;
    if (c->block_size <= 0) c->block_size = PICK(r, block_sizes);
    /* A fresh layout is a valid one of fuzzing size: lengths a bad-capacity
       mutation left huge come back to small ones first. */
    for (int32_t b = 0; b < c->batch; b++)
        if (c->seqlen_k[b] < 0 || c->seqlen_k[b] > 256) c->seqlen_k[b] = (int32_t)ac_fuzz_below(r, 64);
    if (c->block_size > 4096) c->block_size = PICK(r, block_sizes);
    ac_case tmp;
    if (ac_case_copy(&tmp, c, &e)) return;
    tmp.seed ^= ac_fuzz_next(r) & 0xffff; /* the table's permutation comes from the seed's stream */
    uint32_t special = tmp.special;
    if (ac_case_make_layout(&tmp, (ac_layout)ac_fuzz_below(r, AC_LAYOUT_COUNT), (int32_t)ac_fuzz_below(r, 4), &e)) {
        ac_case_free(&tmp);
        return;
    }
    /* ac_case_make_layout writes -1 or garbage past the used entries per the
       flag; the seed went back below so the data stays the case's own. */
    tmp.special = special;
    if (ac_op_traits_of(tmp.op)->slots &&
        ac_case_make_store_slots(&tmp, 1 + (int32_t)ac_fuzz_below(r, 5), (int32_t)ac_fuzz_below(r, 4), &e)) {
        ac_case_free(&tmp);
        return;
    }
    tmp.seed = c->seed;
    ac_case_free(c);
    *c = tmp;
}

/* ------------------------------------------------------------------------ */
/* Decoding bytes that are not a case file.                                  */

/* The families the layout target draws: those that read keys. */
static uint32_t layout_ops(ac_op *ops)
{
    uint32_t n = 0;
    for (int o = 0; o < AC_OP_COUNT; o++)
        if (ac_op_traits_of((ac_op)o)->kv != AC_KV_NONE) ops[n++] = (ac_op)o;
    return n;
}

/* How many query counts to draw from: a bounded family's whole range, up to
   `bounded` of them; an unbounded one's `unbounded` (small: fuzzing speed). */
static uint32_t q_span(const ac_op_traits *t, uint32_t bounded, uint32_t unbounded)
{
    if (t->max_q == AC_Q_ANY) return unbounded;
    uint32_t span = (uint32_t)(t->max_q - t->min_q + 1);
    return span < bounded ? span : bounded;
}

typedef struct breader { const uint8_t *p; size_t n, i; } breader;
static uint32_t br_byte(breader *b) { return b->i < b->n ? b->p[b->i++] : 0u; }
static uint32_t br_below(breader *b, uint32_t n) { return br_byte(b) % n; }

static ac_status case_from_raw(const uint8_t *data, size_t size, ac_case *c, ac_error *err)
{
    breader br = {data, size, 0};
    static const int32_t groups[] = {1, 2, 4};
    static const int32_t small_dims[] = {8, 16, 32, 64};
    ac_op ops[AC_OP_COUNT];
    uint32_t nops = layout_ops(ops);
    ac_case_init(c);
    c->op = ops[br_below(&br, nops)];
    const ac_op_traits *tr = ac_op_traits_of(c->op);
    c->dtype = (ac_dtype)br_below(&br, AC_DTYPE_COUNT);
    int32_t batch = 1 + (int32_t)br_below(&br, 4);
    c->heads_kv = 1 + (int32_t)br_below(&br, 2);
    c->heads_q = c->heads_kv * groups[br_below(&br, 3)];
    c->head_dim = small_dims[br_below(&br, 4)];
    c->block_size = block_sizes[br_below(&br, 9)];
    ac_status st = ac_case_set_batch(c, batch, err);
    if (st) return st;
    for (int32_t b = 0; b < batch; b++) {
        c->seqlen_k[b] = (int32_t)br_below(&br, 48);
        c->seqlen_q[b] = tr->max_q == 0 ? 0 : tr->min_q + (int32_t)br_below(&br, q_span(tr, 4, 9));
    }
    c->causal = tr->causal >= 0 ? (ac_causal)tr->causal : (ac_causal)br_below(&br, AC_CAUSAL_COUNT);
    if (tr->kernel_masks && br_below(&br, 4) == 0) {
        c->mask = 1 + (ac_mask_kind)br_below(&br, 2);
        c->mask_per_head = (int)br_below(&br, 2);
        c->mask_density = (float)br_below(&br, 5) / 4.0f;
    }
    c->num_splits = tr->splits == AC_SPLITS_AUTO ? (int32_t)br_below(&br, 7) : 1;
    c->dist = (ac_dist)br_below(&br, AC_DIST_COUNT);
    c->special = br_byte(&br) & (AC_SPECIAL_NAN_SLOTS | AC_SPECIAL_INF_SLOTS | AC_SPECIAL_GARBAGE_TABLE);
    if (br_below(&br, 8) == 0) {
        c->scale_given = 1;
        c->scale = special_scales[br_below(&br, sizeof special_scales / sizeof special_scales[0])];
    }
    uint64_t seed = 0;
    for (int i = 0; i < 4; i++) seed = seed << 8 | br_byte(&br);
    c->seed = seed;
    ac_layout kind = (ac_layout)br_below(&br, AC_LAYOUT_COUNT);
    int32_t extra = (int32_t)br_below(&br, 3);
    st = ac_case_make_layout(c, kind, extra, err);
    if (st) return st;
    if (tr->slots) {
        c->slot_mapping_i64 = (int)br_below(&br, 2);
        st = ac_case_make_store_slots(c, 1 + (int32_t)br_below(&br, 4), (int32_t)br_below(&br, 3), err);
        if (st) return st;
        for (int32_t b = 0; b < batch; b++) c->seqlen_q[b] = 0;
    }
    /* Remaining bytes edit table entries and slots (the layout bugs' food). */
    while (br.i + 3 <= br.n) {
        uint32_t what = br_byte(&br), a = br_byte(&br), v = br_byte(&br);
        int64_t entries = (int64_t)c->batch * c->max_blocks_per_seq;
        if ((what & 3) == 0 && entries > 0)
            c->block_table[a % entries] = (int32_t)(v % (uint32_t)(c->num_blocks + 2)) - 1;
        else if ((what & 3) == 1 && c->num_tokens > 0)
            c->slot_mapping[a % (uint32_t)c->num_tokens] = (int64_t)v - 1;
        else if ((what & 3) == 2 && c->batch > 0)
            c->seqlen_k[a % (uint32_t)c->batch] = (int32_t)(v % 64);
    }
    return AC_OK;
}

int ac_fuzz_is_casefile(const uint8_t *data, size_t size)
{
    static const char magic[] = "attncheck-case";
    return size >= sizeof magic - 1 && !memcmp(data, magic, sizeof magic - 1);
}

void ac_fuzz_set_expectation(ac_casefile *f, const ac_case *c, ac_status got)
{
    uint32_t mask = ac_fuzz_expected_errors(c, 0);
    f->expect_error = mask != 0;
    f->expect_code = AC_OK;
    if (!mask) return;
    if ((int)got > 0 && got < AC_STATUS_COUNT && (mask & (1u << got))) {
        f->expect_code = got;
        return;
    }
    for (int s = 1; s < AC_STATUS_COUNT; s++)
        if (mask & (1u << s)) {
            f->expect_code = (ac_status)s;
            return;
        }
}

ac_status ac_fuzz_case_from_bytes(const uint8_t *data, size_t size, ac_casefile *f, ac_error *err)
{
    if (ac_fuzz_is_casefile(data, size)) return ac_casefile_parse((const char *)data, size, f, err);
    ac_casefile_init(f);
    ac_status st = case_from_raw(data, size, &f->c, err);
    if (st) {
        ac_casefile_free(f);
        return st;
    }
    ac_case_line(&f->c, f->title, sizeof f->title);
    ac_fuzz_set_expectation(f, &f->c, AC_OK);
    return AC_OK;
}

size_t ac_fuzz_case_to_bytes(const ac_case *c, uint8_t *out, size_t max_size)
{
    ac_casefile f;
    ac_error e;
    ac_casefile_init(&f);
    f.c = *c; /* borrowed: never freed through f */
    ac_case_line(c, f.title, sizeof f.title);
    ac_fuzz_set_expectation(&f, c, AC_OK);
    char *text = NULL;
    size_t len = 0;
    size_t n = 0;
    if (ac_casefile_write(&f, &text, &len, &e) == AC_OK && len <= max_size) {
        memcpy(out, text, len);
        n = len;
    }
    free(text);
    return n;
}

/* ------------------------------------------------------------------------ */
/* Structural mutation.                                                      */

typedef enum mut {
    M_SEED, M_DIST, M_DTYPE, M_SPECIAL, M_SCALE, M_CAUSAL, M_MASK, M_HEADS, M_HEAD_DIM, M_OP,
    M_BATCH, M_SEQLEN_K, M_SEQLEN_Q, M_BLOCK_SIZE, M_RELAYOUT, M_TABLE_REUSE, M_TABLE_SWAP,
    M_TABLE_UNUSED, M_POOL, M_COLUMNS, M_SPLITS, M_SLOTS_REMAKE, M_SLOT_PAD, M_SLOT_WIDTH, M_FEATURE,
    /* Mutations that break the contract on purpose (the validation's food). */
    M_BAD_ENTRY, M_BAD_CAPACITY, M_BAD_SEQLEN, M_BAD_SIZES, M_BAD_HEADS, M_BAD_SPLITS, M_BAD_SLOT,
    M_BAD_SCALE, M_BAD_QUERIES, M_BAD_FEATURE,
    M_COUNT
} mut;

/* The traits of the case's current family (the op may change mid-mutation). */
#define TR_OF(c) ac_op_traits_of((c)->op)
#define TR TR_OF(c)

/* ---- the features (window, softcap, ALiBi, sinks) ------------------------ */

/* Where a window edge is interesting: key positions on a block boundary, on
   the 64-key tile of the kernels, on a split boundary of the decode (splits
   take whole blocks: ceil(blocks / S) blocks each), or one key either side. */
static int32_t edge_position(const ac_case *c, int32_t lk, ac_fuzz_rng *r)
{
    int32_t bs = c->block_size > 0 && c->block_size <= 4096 ? c->block_size : 16, at;
    switch (ac_fuzz_below(r, 3)) {
    case 0: at = bs * (int32_t)ac_fuzz_below(r, (uint32_t)(lk / bs + 1)); break;
    case 1: at = 64 * (int32_t)ac_fuzz_below(r, (uint32_t)(lk / 64 + 1)); break;
    default: {
        int32_t s = c->num_splits > 0 && c->num_splits <= AC_MAX_SPLITS ? c->num_splits : 2;
        int32_t blocks = (lk + bs - 1) / bs, per = (blocks + s - 1) / s;
        at = per * bs * (int32_t)ac_fuzz_below(r, (uint32_t)s + 1);
        break;
    }
    }
    return at + (int32_t)ac_fuzz_below(r, 3) - 1;
}

/* A window whose left edge, seen from the first query of a random
   sequence, falls on an edge_position (else a small random width); the
   right side 0, unbounded or a few keys. */
static void draw_window(ac_case *c, ac_fuzz_rng *r)
{
    int32_t left = (int32_t)ac_fuzz_below(r, 80);
    if (c->batch > 0 && c->seqlen_k && c->seqlen_q && ac_fuzz_below(r, 2)) {
        int32_t b = (int32_t)ac_fuzz_below(r, (uint32_t)c->batch);
        int32_t lk = c->seqlen_k[b] > 0 && c->seqlen_k[b] <= 4096 ? c->seqlen_k[b] : 0;
        int32_t diag = lk - (c->seqlen_q[b] > 0 && c->seqlen_q[b] <= 4096 ? c->seqlen_q[b] : 0);
        int32_t w = diag - edge_position(c, lk, r);
        left = w >= 0 ? w : 0;
    }
    static const int32_t rights[] = {0, 0, -1, 1, 7, 64};
    c->window_left = ac_fuzz_below(r, 6) == 0 ? -1 : left;
    c->window_right = PICK(r, rights);
    if (c->window_left == -1 && c->window_right == -1) c->window_right = 0;
}

/* Turn one feature on with new values, or off; the per-head arrays always
   get heads_q entries. Only for families that take features. */
static void mutate_feature(ac_case *c, ac_fuzz_rng *r)
{
    static const float caps[] = {1.0f, 2.5f, 5.0f, 20.0f, 30.0f, 50.0f, 1e-3f, 1e30f};
    float v[AC_MAX_HEADS];
    int32_t H = c->heads_q;
    int off = ac_fuzz_below(r, 4) == 0;
    switch (ac_fuzz_below(r, 4)) {
    case 0:
        if (off) c->window_left = c->window_right = -1;
        else draw_window(c, r);
        break;
    case 1: c->softcap = off ? 0.0f : PICK(r, caps); break;
    case 2:
        if (off || H < 1 || H > AC_MAX_HEADS) {
            ac_case_set_alibi(c, NULL, 0, NULL);
            break;
        }
        for (int32_t h = 0; h < H; h++) /* the standard slopes, or any in [0, 1], or negative ones */
            v[h] = ac_fuzz_below(r, 2) ? exp2f(-8.0f * (float)(h + 1) / (float)H)
                                       : (float)((int32_t)ac_fuzz_below(r, 80) - 16) / 64.0f;
        ac_case_set_alibi(c, v, H, NULL);
        break;
    default:
        if (off || H < 1 || H > AC_MAX_HEADS) {
            ac_case_set_sinks(c, NULL, 0, NULL);
            break;
        }
        for (int32_t h = 0; h < H; h++) /* -inf, ordinary logits, and ones that swamp the row */
            v[h] = ac_fuzz_below(r, 5) == 0 ? -INFINITY : (float)((int32_t)ac_fuzz_below(r, 64) - 16) / 4.0f;
        if (ac_fuzz_below(r, 8) == 0) v[ac_fuzz_below(r, (uint32_t)H)] = 80.0f;
        ac_case_set_sinks(c, v, H, NULL);
        break;
    }
}

/* The K/V features (FP8 cache, D_v): one on with new values, or off.
   Scales: powers of two, others and the domain's edges 2^-64 and 2^64;
   per tensor or per KV head. Only for families that take them. */
static void mutate_kv_feature(ac_case *c, ac_fuzz_rng *r)
{
    static const int32_t dvs[] = {8, 16, 32, 64, 96, 128, 192, 256, 40, 512};
    static const float scales[] = {1.0f, 0.5f, 2.0f, 0.375f, 3.0f, 0.1f, 0x1p-64f, 0x1p64f, 0x1p-20f, 448.0f};
    int off = ac_fuzz_below(r, 4) == 0;
    if (ac_fuzz_below(r, 2)) {
        if (TR_OF(c)->kv_features & AC_FEAT_HEAD_DIM_V) c->head_dim_v = off ? 0 : PICK(r, dvs);
        return;
    }
    if (!(TR_OF(c)->kv_features & AC_FEAT_FP8_KV)) return;
    if (off) {
        c->kv_format = AC_KV_AS_DTYPE;
        ac_case_set_kv_scales(c, NULL, NULL, 0, NULL);
        return;
    }
    c->kv_format = ac_fuzz_below(r, 2) ? AC_KV_E4M3 : AC_KV_E5M2;
    int32_t n = ac_fuzz_below(r, 3) == 0 ? 0 : ac_fuzz_below(r, 2) ? 1 : c->heads_kv;
    if (n < 0 || n > AC_MAX_HEADS) n = 1;
    float ks[AC_MAX_HEADS], vs[AC_MAX_HEADS];
    for (int32_t g = 0; g < n; g++) ks[g] = PICK(r, scales), vs[g] = PICK(r, scales);
    ac_case_set_kv_scales(c, ks, vs, n, NULL);
}

/* K/V features that break the contract, each with its named error: scales
   on a cache of the case dtype, a scale outside [2^-64, 2^64] (0, 2^65,
   a negative one), head_dim_v or an FP8 cache on a family that takes
   neither (combine). */
static void break_kv_feature(ac_case *c, ac_fuzz_rng *r)
{
    static const float bad[] = {0.0f, 0x1p65f, -1.0f, 0x1p-66f};
    float ks[1] = {0.5f}, vs[1] = {2.0f};
    switch (ac_fuzz_below(r, 4)) {
    case 0: /* scales without FP8 */
        c->kv_format = AC_KV_AS_DTYPE;
        ac_case_set_kv_scales(c, ks, vs, 1, NULL);
        break;
    case 1: /* out of the domain */
        if (!(TR_OF(c)->kv_features & AC_FEAT_FP8_KV)) break;
        c->kv_format = AC_KV_E4M3;
        (ac_fuzz_below(r, 2) ? ks : vs)[0] = PICK(r, bad);
        ac_case_set_kv_scales(c, ks, vs, 1, NULL);
        break;
    case 2:
        if (!TR_OF(c)->kv_features) c->head_dim_v = c->head_dim > 8 ? c->head_dim / 2 : 16;
        break;
    default:
        if (!TR_OF(c)->kv_features) c->kv_format = AC_KV_E5M2;
        break;
    }
}

/* A feature that breaks the contract and that a case file can hold: any
   feature on a family that takes none (AC_ERR_UNSUPPORTED). Out-of-range
   values (a window side below -1, a softcap not finite and > 0, a NaN slope,
   a sink of +inf, a list of the wrong length) cannot be written in a case
   file (docs/CASEFILE.md), so they would only be thrown away here; the
   parser's own tests and the casefile target hold them. */
static void break_feature(ac_case *c, ac_fuzz_rng *r)
{
    if (TR_OF(c)->features) return;
    int32_t H = c->heads_q >= 1 && c->heads_q <= AC_MAX_HEADS ? c->heads_q : 0;
    float v[AC_MAX_HEADS];
    for (int32_t h = 0; h < H; h++) v[h] = 0.5f;
    switch (ac_fuzz_below(r, 4)) {
    case 0: draw_window(c, r); break;
    case 1: c->softcap = 30.0f; break;
    case 2: ac_case_set_alibi(c, v, H, NULL); break;
    default: ac_case_set_sinks(c, v, H, NULL); break;
    }
}

/* Valid-preserving mutations are drawn 4 times as often as breaking ones:
   about a fifth of the executions then probe the validation. */
static mut draw_mut(ac_fuzz_rng *r)
{
    if (ac_fuzz_below(r, 5) == 0) return (mut)(M_BAD_ENTRY + ac_fuzz_below(r, M_COUNT - M_BAD_ENTRY));
    return (mut)ac_fuzz_below(r, M_BAD_ENTRY);
}


static void mutate_once(ac_case *c, ac_fuzz_rng *r)
{
    if (!TR) return; /* parsed cases have a known op; nothing to mutate otherwise */
    int64_t entries = (int64_t)c->batch * c->max_blocks_per_seq;
    switch (draw_mut(r)) {
    case M_SEED:
        c->seed = ac_fuzz_below(r, 4) == 0 ? ac_fuzz_below(r, 16) : ac_fuzz_next(r);
        break;
    case M_DIST: c->dist = (ac_dist)ac_fuzz_below(r, AC_DIST_COUNT); break;
    case M_DTYPE: c->dtype = (ac_dtype)ac_fuzz_below(r, AC_DTYPE_COUNT); break;
    case M_SPECIAL: c->special ^= 1u << ac_fuzz_below(r, 3); break; /* NaN slots, Inf slots, garbage table */
    case M_SCALE:
        if (ac_fuzz_below(r, 3) == 0) {
            c->scale_given = 0;
            c->scale = 0.0f;
        } else {
            c->scale_given = 1;
            c->scale = PICK(r, special_scales);
        }
        break;
    case M_CAUSAL:
        c->causal = (ac_causal)ac_fuzz_below(r, AC_CAUSAL_COUNT);
        break;
    case M_MASK:
        if (!TR->kernel_masks) break;
        c->mask = (ac_mask_kind)ac_fuzz_below(r, AC_MASK_COUNT);
        c->mask_per_head = (int)ac_fuzz_below(r, 2);
        c->mask_density = (float)ac_fuzz_below(r, 5) / 4.0f;
        break;
    case M_HEADS: {
        static const int32_t groups[] = {1, 1, 2, 3, 4, 8};
        c->heads_kv = 1 + (int32_t)ac_fuzz_below(r, 3);
        c->heads_q = c->heads_kv * PICK(r, groups);
        ac_case_fit_head_params(c, NULL); /* one slope and one sink per query head again */
        break;
    }
    case M_HEAD_DIM: c->head_dim = PICK(r, head_dims); break;
    case M_OP: {
        /* Families that read keys take part, the ones with queries twice as
           often (the store's layout bugs need fewer draws). */
        ac_op ops[2 * AC_OP_COUNT];
        uint32_t nops = 0;
        for (int o = 0; o < AC_OP_COUNT; o++) {
            const ac_op_traits *t = ac_op_traits_of((ac_op)o);
            if (t->kv == AC_KV_NONE) continue;
            ops[nops++] = (ac_op)o;
            if (t->max_q > 0) ops[nops++] = (ac_op)o;
        }
        ac_op op = ops[ac_fuzz_below(r, nops)];
        if (op == c->op) break;
        const ac_op_traits *t = ac_op_traits_of(op);
        c->op = op;
        c->paged = 1;
        if (!t->kernel_masks) c->mask = AC_MASK_NONE;
        if (!t->features) { /* a family without features: they go (M_BAD_FEATURE puts them back on purpose) */
            c->window_left = c->window_right = -1;
            c->softcap = 0.0f;
            ac_case_set_alibi(c, NULL, 0, NULL);
            ac_case_set_sinks(c, NULL, 0, NULL);
        }
        if (!(t->kv_features & AC_FEAT_HEAD_DIM_V)) c->head_dim_v = 0;
        if (!(t->kv_features & AC_FEAT_FP8_KV)) {
            c->kv_format = AC_KV_AS_DTYPE;
            ac_case_set_kv_scales(c, NULL, NULL, 0, NULL);
        }
        for (int32_t b = 0; b < c->batch; b++) {
            if (t->max_q == 0) c->seqlen_q[b] = 0;
            else if (t->max_q != AC_Q_ANY) c->seqlen_q[b] = t->min_q + (int32_t)ac_fuzz_below(r, q_span(t, 4, 4));
        }
        if (t->causal >= 0 && t->max_q > 0) c->causal = (ac_causal)t->causal;
        if (t->splits == AC_SPLITS_AUTO && c->num_splits == 0 && ac_fuzz_below(r, 2)) c->num_splits = 1;
        relayout(c, r);
        if (!t->slots) resize_slots(c, 0);
        break;
    }
    case M_BATCH: {
        int32_t nb = c->batch + (ac_fuzz_below(r, 2) ? 1 : -1);
        if (nb < 1) nb = 1;
        if (nb > 6) nb = 6;
        if (resize_batch(c, nb, TR->max_q == 0 ? 0 : TR->max_q == AC_Q_ANY ? (int32_t)ac_fuzz_below(r, 5) : TR->min_q,
                         (int32_t)ac_fuzz_below(r, 40)))
            break;
        relayout(c, r);
        break;
    }
    case M_SEQLEN_K: {
        if (c->batch <= 0) break;
        int32_t b = (int32_t)ac_fuzz_below(r, (uint32_t)c->batch), bs = c->block_size > 0 ? c->block_size : 16;
        /* Block edges in 64 bits, clamped: a parsed block_size may be
           INT32_MAX (UBSan caught bs + 1 overflowing in a 440 s campaign). */
        int32_t choices[] = {0, 1, bs - 1, bs, clamp32((int64_t)bs + 1), clamp32(2 * (int64_t)bs),
                             clamp32(2 * (int64_t)bs + 1), (int32_t)ac_fuzz_below(r, 64)};
        c->seqlen_k[b] = PICK(r, choices);
        relayout(c, r);
        break;
    }
    case M_SEQLEN_Q: {
        if (c->batch <= 0 || TR->max_q == 0) break;
        int32_t b = (int32_t)ac_fuzz_below(r, (uint32_t)c->batch);
        c->seqlen_q[b] = TR->min_q + (int32_t)ac_fuzz_below(r, q_span(TR, 8, 12));
        break;
    }
    case M_BLOCK_SIZE:
        c->block_size = PICK(r, block_sizes);
        relayout(c, r);
        break;
    case M_RELAYOUT: relayout(c, r); break;
    case M_TABLE_REUSE: {
        /* Sampling with replacement: a used entry points at a block some
           other entry uses already (legal for reads; a store then writes
           one slot twice only if its tokens collide, which the slots say). */
        if (entries < 2 || TR->slots) break;
        int64_t a = ac_fuzz_below(r, (uint32_t)entries), b = ac_fuzz_below(r, (uint32_t)entries);
        if (c->block_table[b] >= 0 && c->block_table[b] < c->num_blocks) c->block_table[a] = c->block_table[b];
        break;
    }
    case M_TABLE_SWAP: {
        if (entries < 2) break;
        int64_t a = ac_fuzz_below(r, (uint32_t)entries), b = ac_fuzz_below(r, (uint32_t)entries);
        int32_t t = c->block_table[a];
        c->block_table[a] = c->block_table[b];
        c->block_table[b] = t;
        if (TR->slots) relayout(c, r); /* slots follow the table */
        break;
    }
    case M_TABLE_UNUSED: {
        /* Garbage past a row's used entries: never read, never checked. */
        if (c->batch <= 0 || c->block_size <= 0) break;
        int32_t b = (int32_t)ac_fuzz_below(r, (uint32_t)c->batch);
        int32_t used = blocks_for(c->seqlen_k[b], c->block_size);
        if (used >= c->max_blocks_per_seq) {
            if (used > 4096 || resize_columns(c, used + 1 + (int32_t)ac_fuzz_below(r, 2), -1)) break;
        }
        int32_t i = used + (int32_t)ac_fuzz_below(r, (uint32_t)(c->max_blocks_per_seq - used));
        c->block_table[(int64_t)b * c->max_blocks_per_seq + i] =
            ac_fuzz_below(r, 2) ? PICK(r, bad_entries) : past_pool(c, 100, r);
        break;
    }
    case M_POOL:
        /* Spare blocks never referenced (with NaN/Inf slots they are poison). */
        if (c->num_blocks > 0 && c->num_blocks < 512) c->num_blocks += 1 + (int32_t)ac_fuzz_below(r, 8);
        break;
    case M_COLUMNS:
        resize_columns(c, c->max_blocks_per_seq + 1 + (int32_t)ac_fuzz_below(r, 3), ac_fuzz_below(r, 2) ? -1 : INT32_MAX);
        break;
    case M_SPLITS:
        if (TR->splits != AC_SPLITS_AUTO) break;
        {
            int32_t choices[] = {0, 1, 2, 3, 4, 5, 7, 8, 16, 33, 64};
            c->num_splits = PICK(r, choices);
        }
        break;
    case M_SLOTS_REMAKE:
        if (TR->slots) relayout(c, r);
        break;
    case M_SLOT_PAD:
        if (TR->slots && c->num_tokens > 0) {
            if (ac_fuzz_below(r, 2)) c->slot_mapping[ac_fuzz_below(r, (uint32_t)c->num_tokens)] = -1;
            else if (resize_slots(c, c->num_tokens + 1) == 0) {
                /* a padding token at a random place */
                uint32_t at = ac_fuzz_below(r, (uint32_t)c->num_tokens);
                memmove(c->slot_mapping + at + 1, c->slot_mapping + at,
                        sizeof(int64_t) * (size_t)(c->num_tokens - 1 - (int32_t)at));
                c->slot_mapping[at] = -1;
            }
        }
        break;
    case M_SLOT_WIDTH:
        if (TR->slots) c->slot_mapping_i64 ^= 1;
        break;
    case M_FEATURE:
        if (TR->kv_features && (!TR->features || ac_fuzz_below(r, 3) == 0)) mutate_kv_feature(c, r);
        else if (TR->features) mutate_feature(c, r);
        break;

    case M_BAD_ENTRY: {
        /* A used entry out of [0, num_blocks). */
        if (c->batch <= 0 || c->block_size <= 0) break;
        int32_t b = (int32_t)ac_fuzz_below(r, (uint32_t)c->batch);
        int32_t used = blocks_for(c->seqlen_k[b], c->block_size);
        if (used > c->max_blocks_per_seq) used = c->max_blocks_per_seq;
        if (used <= 0) break;
        int32_t i = ac_fuzz_below(r, 2) ? used - 1 : (int32_t)ac_fuzz_below(r, (uint32_t)used);
        c->block_table[(int64_t)b * c->max_blocks_per_seq + i] =
            ac_fuzz_below(r, 2) ? PICK(r, bad_entries) : past_pool(c, 3, r);
        break;
    }
    case M_BAD_CAPACITY: {
        /* seqlen_k one key (or more) beyond the table's capacity. */
        if (c->batch <= 0 || c->block_size <= 0 || c->max_blocks_per_seq <= 0) break;
        int32_t b = (int32_t)ac_fuzz_below(r, (uint32_t)c->batch);
        int64_t cap = (int64_t)c->max_blocks_per_seq * c->block_size;
        int64_t v = cap + 1 + (ac_fuzz_below(r, 2) ? 0 : ac_fuzz_below(r, (uint32_t)c->block_size * 2));
        if (ac_fuzz_below(r, 8) == 0) v = INT32_MAX;
        c->seqlen_k[b] = v > INT32_MAX ? INT32_MAX : (int32_t)v;
        break;
    }
    case M_BAD_SEQLEN: {
        if (c->batch <= 0) break;
        int32_t b = (int32_t)ac_fuzz_below(r, (uint32_t)c->batch);
        int32_t v = ac_fuzz_below(r, 2) ? -1 : INT32_MIN;
        if (ac_fuzz_below(r, 2) && TR->max_q > 0) c->seqlen_q[b] = v;
        else c->seqlen_k[b] = v;
        break;
    }
    case M_BAD_SIZES:
        switch (ac_fuzz_below(r, 4)) {
        case 0: c->block_size = ac_fuzz_below(r, 2) ? 0 : -(int32_t)ac_fuzz_below(r, 17) - 1; break;
        case 1: c->num_blocks = ac_fuzz_below(r, 2) ? 0 : -1; break;
        case 2: resize_columns(c, 0, -1); break;
        default: c->num_blocks = ac_fuzz_below(r, 2) ? INT32_MIN : -(int32_t)ac_fuzz_below(r, 1000); break;
        }
        break;
    case M_BAD_HEADS:
        switch (ac_fuzz_below(r, 4)) {
        case 0: c->heads_kv = c->heads_q + 1; break;
        case 1: c->heads_q = c->heads_kv > 1 ? c->heads_kv * 2 + 1 : 3, c->heads_kv = c->heads_kv > 1 ? c->heads_kv : 2; break;
        case 2: c->heads_q = 0; break;
        default: c->head_dim = PICK(r, bad_head_dims); break;
        }
        ac_case_fit_head_params(c, NULL); /* the heads are what is wrong, not the features */
        break;
    case M_BAD_SPLITS:
        /* A split count out of range cannot be written in a case file (it
           holds [0, AC_MAX_SPLITS]); the api target covers it. Here: the
           largest legal count, far more splits than keys. */
        if (TR->splits == AC_SPLITS_AUTO) {
            int32_t blocks = 0;
            for (int32_t b = 0; b < c->batch; b++)
                if (blocks_for(c->seqlen_k[b], c->block_size) > blocks) blocks = blocks_for(c->seqlen_k[b], c->block_size);
            /* int64: a length past capacity may leave INT32_MAX blocks here
               (UBSan caught 2 * blocks overflowing int in a campaign) */
            int64_t many = 2 * (int64_t)blocks + 1 + ac_fuzz_below(r, 8);
            c->num_splits = ac_fuzz_below(r, 16) == 0 || many > AC_MAX_SPLITS ? AC_MAX_SPLITS : (int32_t)many;
        }
        break;
    case M_BAD_SLOT: {
        if (!TR->slots || c->num_tokens <= 0) break;
        uint32_t t = ac_fuzz_below(r, (uint32_t)c->num_tokens);
        int64_t nslots = (int64_t)c->num_blocks * c->block_size;
        switch (ac_fuzz_below(r, 4)) {
        case 0: { /* two tokens, one slot */
            uint32_t u = ac_fuzz_below(r, (uint32_t)c->num_tokens);
            if (u != t && c->slot_mapping[u] >= 0) c->slot_mapping[t] = c->slot_mapping[u];
            else c->slot_mapping[t] = nslots;
            break;
        }
        case 1: c->slot_mapping[t] = nslots; break;
        case 2: c->slot_mapping[t] = -2 - (int64_t)ac_fuzz_below(r, 3); break;
        default: c->slot_mapping[t] = (int64_t)INT32_MAX + 1 + ac_fuzz_below(r, 4); break;
        }
        break;
    }
    case M_BAD_SCALE:
        c->scale_given = 1;
        c->scale = PICK(r, bad_scales);
        break;
    case M_BAD_QUERIES:
        /* One query too few or too many for a family with a bounded count. */
        if (TR->max_q > 0 && TR->max_q != AC_Q_ANY && c->batch > 0)
            c->seqlen_q[ac_fuzz_below(r, (uint32_t)c->batch)] = ac_fuzz_below(r, 2) ? TR->min_q - 1 : TR->max_q + 1;
        break;
    case M_BAD_FEATURE:
        if (ac_fuzz_below(r, 2)) break_kv_feature(c, r);
        else break_feature(c, r);
        break;
    case M_COUNT: break;
    }
}

void ac_fuzz_mutate_case(ac_case *c, ac_fuzz_rng *r, int steps)
{
    for (int i = 0; i < steps; i++) mutate_once(c, r);
}

ac_status ac_fuzz_cross_case(ac_case *dst, const ac_case *a, const ac_case *b, ac_fuzz_rng *r, ac_error *err)
{
    ac_status st = ac_case_copy(dst, a, err);
    if (st) return st;
    /* Scalars from b, one field at a time. */
    if (ac_fuzz_below(r, 2)) dst->seed = b->seed;
    if (ac_fuzz_below(r, 2)) dst->dist = b->dist;
    if (ac_fuzz_below(r, 2)) dst->special = b->special;
    if (ac_fuzz_below(r, 2)) dst->dtype = b->dtype;
    if (ac_fuzz_below(r, 2)) {
        dst->scale_given = b->scale_given;
        dst->scale = b->scale;
    }
    if (ac_fuzz_below(r, 2)) {
        dst->heads_q = b->heads_q;
        dst->heads_kv = b->heads_kv;
        st = ac_case_fit_head_params(dst, err);
        if (st) return st;
    }
    /* The features from b, one at a time, where both families take them. */
    if (TR_OF(dst)->features && TR_OF(b)->features) {
        if (ac_fuzz_below(r, 2)) dst->window_left = b->window_left, dst->window_right = b->window_right;
        if (ac_fuzz_below(r, 2)) dst->softcap = b->softcap;
        if (ac_fuzz_below(r, 2)) st = ac_case_set_alibi(dst, b->alibi_slopes, b->n_alibi, err);
        if (!st && ac_fuzz_below(r, 2)) st = ac_case_set_sinks(dst, b->sinks, b->n_sinks, err);
        if (!st) st = ac_case_fit_head_params(dst, err);
        if (st) return st;
    }
    /* Sequence lengths from b where both have the sequence; then a fresh
       layout for them (half the time: else keep a's table as it is, which
       may now be too short: a capacity or table error on purpose). */
    if (ac_fuzz_below(r, 2) && b->batch > 0) {
        for (int32_t i = 0; i < dst->batch && i < b->batch; i++) {
            dst->seqlen_k[i] = b->seqlen_k[i];
            if (dst->op == b->op) dst->seqlen_q[i] = b->seqlen_q[i];
        }
        if (ac_fuzz_below(r, 4)) relayout(dst, r);
    }
    return AC_OK;
}

/* ------------------------------------------------------------------------ */
/* The fuzzing budget.                                                       */

/* Cost model, in "element operations" (docs/FUZZING.md): data generation
   draws every pool element of K and V (12 draws each for the normal-based
   dists), the model and the oracle each visit every (row, allowed key, dim).
   A budget of 2^18 keeps an execution near or below a millisecond on one
   core of the development machine. */
#define AC_FUZZ_BUDGET (1 << 18)

int ac_fuzz_case_small(const ac_case *c)
{
    if (c->batch > 8 || c->heads_q > 16 || c->head_dim > 256) return 0;
    int64_t gen_per = c->dist == AC_DIST_UNIFORM ? 1 : 12;
    int64_t pool = c->paged ? (int64_t)c->num_blocks * (c->block_size > 0 ? c->block_size : 0)
                            : ac_case_total_k(c);
    if (c->paged && (c->num_blocks > 4096 || c->block_size > 4096)) return 0;
    int64_t cost = 2 * pool * c->heads_kv * c->head_dim * gen_per;
    int64_t work = 0;
    for (int32_t b = 0; b < c->batch; b++) {
        int64_t lq = c->seqlen_q[b] > 0 ? c->seqlen_q[b] : 0, lk = c->seqlen_k[b] > 0 ? c->seqlen_k[b] : 0;
        if (lq > 4096 || lk > 4096) return 0;
        work += lq * lk;
    }
    cost += 2 * work * c->heads_q * c->head_dim;
    if (c->mask != AC_MASK_NONE) cost += work * (c->mask_per_head ? c->heads_q : 1) * 2;
    if (ac_op_traits_of(c->op)->slots) cost += (int64_t)c->num_tokens * c->heads_kv * c->head_dim * 2 * gen_per;
    if (ac_op_traits_of(c->op)->splits == AC_SPLITS_AUTO) {
        /* The split-KV model keeps 16..32 key lanes per split and merges
           them per split: rows * splits * lanes * D, and the partials. */
        int64_t splits = c->num_splits > 0 ? c->num_splits : 1;
        cost += ac_case_total_q(c) * c->heads_q * splits * 24 * c->head_dim;
    }
    if (c->num_tokens > 4096) return 0;
    return cost <= AC_FUZZ_BUDGET;
}

/* ------------------------------------------------------------------------ */
/* The contract's input rules, stated again (not calling ac_validate).       */

#define BIT(code) (1u << (unsigned)(code))

/* The features' rules (ac_case.h): window sides >= -1; a softcap in [0, 2^100];
   one slope with |slope| <= 2^64 and one sink (|sink| <= 2^64, or -inf) per query head;
   none on a family that takes none. */
static uint32_t feature_rules(const ac_case *c)
{
    uint32_t m = 0;
    if (c->window_left < -1 || c->window_right < -1) m |= BIT(AC_ERR_SHAPE);
    if (!(c->softcap >= 0.0f && c->softcap <= 0x1p100f)) m |= BIT(AC_ERR_SHAPE);
    if (c->n_alibi != 0 && (c->n_alibi != c->heads_q || !c->alibi_slopes)) m |= BIT(AC_ERR_SHAPE);
    for (int32_t h = 0; c->alibi_slopes && h < c->n_alibi; h++)
        if (!(fabsf(c->alibi_slopes[h]) <= 0x1p64f)) m |= BIT(AC_ERR_SHAPE);
    if (c->n_sinks != 0 && (c->n_sinks != c->heads_q || !c->sinks)) m |= BIT(AC_ERR_SHAPE);
    for (int32_t h = 0; c->sinks && h < c->n_sinks; h++)
        if (!(fabsf(c->sinks[h]) <= 0x1p64f || c->sinks[h] == -INFINITY)) m |= BIT(AC_ERR_SHAPE);
    int on = c->window_left != -1 || c->window_right != -1 || c->softcap != 0.0f || c->n_alibi || c->n_sinks;
    if (on && !ac_op_traits_of(c->op)->features) m |= BIT(AC_ERR_UNSUPPORTED);
    /* The K/V features (docs/CONTRACT.md, section 13): head_dim_v in [0, max];
       scales (1 or heads_kv of them, each in [2^-64, 2^64]) only with an FP8
       format; neither on a family whose traits take none. */
    if ((int)c->kv_format < 0 || c->kv_format >= AC_KV_FORMAT_COUNT) m |= BIT(AC_ERR_UNSUPPORTED);
    if (c->head_dim_v < 0 || c->head_dim_v > AC_MAX_HEAD_DIM) m |= BIT(AC_ERR_SHAPE);
    if (c->n_kv_scales != 0) {
        if (c->kv_format == AC_KV_AS_DTYPE) m |= BIT(AC_ERR_UNSUPPORTED);
        else if (c->n_kv_scales != 1 && c->n_kv_scales != c->heads_kv) m |= BIT(AC_ERR_SHAPE);
        for (int32_t g = 0; c->k_scales && c->v_scales && g < c->n_kv_scales; g++)
            if (!(c->k_scales[g] >= 0x1p-64f && c->k_scales[g] <= 0x1p64f) ||
                !(c->v_scales[g] >= 0x1p-64f && c->v_scales[g] <= 0x1p64f))
                m |= BIT(AC_ERR_SHAPE);
    }
    uint32_t kv_take = ac_op_traits_of(c->op)->kv_features;
    if (c->kv_format != AC_KV_AS_DTYPE && !(kv_take & AC_FEAT_FP8_KV)) m |= BIT(AC_ERR_UNSUPPORTED);
    if (c->head_dim_v != 0 && c->head_dim_v != c->head_dim && !(kv_take & AC_FEAT_HEAD_DIM_V))
        m |= BIT(AC_ERR_UNSUPPORTED);
    return m;
}

static uint32_t heads_rules(int32_t hq, int32_t hkv, int32_t d)
{
    uint32_t m = 0;
    if (hq < 1 || hq > AC_MAX_HEADS) m |= BIT(AC_ERR_SHAPE);
    if (hkv < 1 || hkv > hq) m |= BIT(AC_ERR_SHAPE);
    if (hq >= 1 && hkv >= 1 && hq % hkv != 0) m |= BIT(AC_ERR_GQA);
    if (d < 1 || d > AC_MAX_HEAD_DIM) m |= BIT(AC_ERR_SHAPE);
    return m;
}

/* The paged rules: positive sizes; every seqlen_k within the row's capacity;
   every entry a sequence reads (its first ceil(Lk / bs)) names a block of
   the pool. Entries past those are free to hold anything. */
static uint32_t paged_rules(const ac_case *c)
{
    uint32_t m = 0;
    if (c->block_size < 1) m |= BIT(AC_ERR_SHAPE);
    if (c->num_blocks < 1) m |= BIT(AC_ERR_SHAPE);
    if (c->max_blocks_per_seq < 1) m |= BIT(AC_ERR_SHAPE);
    if (m) return m;
    if (!c->block_table && c->batch > 0) return BIT(AC_ERR_NULL);
    for (int32_t b = 0; b < c->batch; b++) {
        int64_t lk = c->seqlen_k[b];
        if (lk < 0) {
            m |= BIT(AC_ERR_SHAPE);
            continue;
        }
        int64_t reads = lk / c->block_size + (lk % c->block_size != 0);
        if (reads > c->max_blocks_per_seq) {
            m |= BIT(AC_ERR_CAPACITY);
            reads = c->max_blocks_per_seq; /* the row holds no more entries to look at */
        }
        for (int64_t i = 0; i < reads; i++) {
            int32_t e = c->block_table[(int64_t)b * c->max_blocks_per_seq + i];
            if (e < 0 || e >= c->num_blocks) m |= BIT(AC_ERR_BLOCK_TABLE);
        }
    }
    return m;
}

/* Slots: -1 is padding; others in [0, num_blocks * block_size), pairwise
   distinct; the int32 form must hold the value. */
static uint32_t slot_rules(const ac_case *c)
{
    if (c->num_tokens > 0 && !c->slot_mapping) return BIT(AC_ERR_NULL);
    uint32_t m = 0;
    int64_t nslots = (int64_t)c->num_blocks * c->block_size;
    for (int32_t t = 0; t < c->num_tokens; t++) {
        int64_t s = c->slot_mapping[t];
        if (s == -1) continue;
        if (s < 0 || s >= nslots) m |= BIT(AC_ERR_SLOT);
        if (!c->slot_mapping_i64 && s > INT32_MAX) m |= BIT(AC_ERR_SLOT);
        for (int32_t u = 0; u < t; u++) /* quadratic on purpose: a different method from the library's sort */
            if (c->slot_mapping[u] == s) m |= BIT(AC_ERR_SLOT);
    }
    return m;
}

uint32_t ac_fuzz_expected_errors(const ac_case *c, int kernel)
{
    uint32_t m = 0;
    if ((int)c->op < 0 || c->op >= AC_OP_COUNT || (int)c->dtype < 0 || c->dtype >= AC_DTYPE_COUNT ||
        (int)c->causal < 0 || c->causal >= AC_CAUSAL_COUNT || (int)c->mask < 0 || c->mask >= AC_MASK_COUNT ||
        (int)c->dist < 0 || c->dist >= AC_DIST_COUNT)
        return BIT(AC_ERR_UNSUPPORTED);
    if (c->batch < 0 || c->batch > AC_MAX_BATCH) return BIT(AC_ERR_SHAPE);
    if (c->batch > 0 && (!c->seqlen_q || !c->seqlen_k)) return BIT(AC_ERR_NULL);
    m |= heads_rules(c->heads_q, c->heads_kv, c->head_dim);
    m |= feature_rules(c);
    if (c->scale_given && !isfinite(c->scale)) m |= BIT(AC_ERR_SHAPE);
    if (!(c->mask_density >= 0.0f && c->mask_density <= 1.0f)) m |= BIT(AC_ERR_SHAPE);
    int64_t tq = 0, tk = 0;
    for (int32_t b = 0; b < c->batch; b++) {
        if (c->seqlen_q[b] < 0 || c->seqlen_k[b] < 0) m |= BIT(AC_ERR_SHAPE);
        if (c->op == AC_OP_DECODE && (c->seqlen_q[b] < 1 || c->seqlen_q[b] > AC_MAX_QUERIES_DECODE))
            m |= BIT(AC_ERR_SHAPE);
        tq += c->seqlen_q[b];
        tk += c->seqlen_k[b];
    }
    if (tq > INT32_MAX || tk > INT32_MAX) m |= BIT(AC_ERR_SHAPE);
    if (c->op == AC_OP_DECODE && (c->num_splits < 0 || c->num_splits > AC_MAX_SPLITS)) m |= BIT(AC_ERR_SHAPE);
    if (c->op == AC_OP_COMBINE && (c->num_splits < 1 || c->num_splits > AC_MAX_SPLITS)) m |= BIT(AC_ERR_SHAPE);
    if ((c->op == AC_OP_DECODE || c->op == AC_OP_STORE) && !c->paged) m |= BIT(AC_ERR_UNSUPPORTED);
    /* docs/DATA.md, "Sparse cases": not for a combine, no explicit mask. */
    if ((c->special & AC_SPECIAL_SPARSE) && (c->op == AC_OP_COMBINE || c->mask != AC_MASK_NONE))
        m |= BIT(AC_ERR_UNSUPPORTED);
    if (c->paged && c->op != AC_OP_COMBINE) m |= paged_rules(c);
    if (c->op == AC_OP_STORE) m |= slot_rules(c);
    if (kernel) {
        /* What the kernels leave out (kernels/prefill.h, decode.h):
           head dims that are not a multiple of 8 or beyond 256 (decode: 768,
           MLA's 576/512 included), an explicit mask in decode. D_v likewise. */
        const int32_t max_d = ac_fuzz_kernel_max_dim(c->op);
        if ((c->op == AC_OP_PREFILL || c->op == AC_OP_DECODE) && c->head_dim >= 1 &&
            (c->head_dim % 8 != 0 || c->head_dim > max_d))
            m |= BIT(AC_ERR_UNSUPPORTED);
        if ((c->op == AC_OP_PREFILL || c->op == AC_OP_DECODE) && c->head_dim_v >= 1 &&
            (c->head_dim_v % 8 != 0 || c->head_dim_v > max_d))
            m |= BIT(AC_ERR_UNSUPPORTED);
        if (c->op == AC_OP_DECODE && c->mask != AC_MASK_NONE) m |= BIT(AC_ERR_UNSUPPORTED);
    }
    return m;
}

void ac_fuzz_mask_str(uint32_t mask, char *buf, size_t n)
{
    size_t len = 0;
    buf[0] = '\0';
    if (!mask) {
        snprintf(buf, n, "%s", ac_status_name(AC_OK));
        return;
    }
    for (int s = 1; s < AC_STATUS_COUNT; s++)
        if (mask & BIT(s)) {
            int k = snprintf(buf + len, len < n ? n - len : 0, "%s%s", len ? "|" : "", ac_status_name((ac_status)s));
            if (k > 0) len += (size_t)k;
            if (len >= n) break;
        }
}
