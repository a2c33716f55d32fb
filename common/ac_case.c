#include "ac_case.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ac_index.h"
#include "ac_validate.h"

static const char *const op_names[AC_OP_COUNT] = {
#define AC_FAMILY(name, NAME, ...) #name,
#include "ac_families.def"
#undef AC_FAMILY
};
static const char *const dtype_names[AC_DTYPE_COUNT] = {"bf16", "fp16"};
static const char *const causal_names[AC_CAUSAL_COUNT] = {"none", "TL", "BR"};
static const char *const mask_names[AC_MASK_COUNT] = {"none", "bool", "add"};
static const char *const dist_names[AC_DIST_COUNT] = {"uniform", "normal", "large", "needle", "poscode"};
static const char *const kv_format_names[AC_KV_FORMAT_COUNT] = {"dtype", "e4m3", "e5m2"};

#define NAME_OF(table, v, n) (((int)(v) >= 0 && (int)(v) < (n)) ? table[v] : "?")
static const ac_op_traits op_traits[AC_OP_COUNT] = {
#define AC_FAMILY(name, NAME, min_q, max_q, kv, splits, causal, slots, kmasks, features, kv_features) \
    [AC_OP_##NAME] = {min_q, max_q, kv, splits, causal, slots, kmasks, features, kv_features},
#include "ac_families.def"
#undef AC_FAMILY
};

const ac_op_traits *ac_op_traits_of(ac_op op) { return ((int)op >= 0 && op < AC_OP_COUNT) ? &op_traits[op] : NULL; }

const char *ac_op_name(ac_op v) { return NAME_OF(op_names, v, AC_OP_COUNT); }
const char *ac_dtype_name(ac_dtype v) { return NAME_OF(dtype_names, v, AC_DTYPE_COUNT); }
const char *ac_causal_name(ac_causal v) { return NAME_OF(causal_names, v, AC_CAUSAL_COUNT); }
const char *ac_mask_name(ac_mask_kind v) { return NAME_OF(mask_names, v, AC_MASK_COUNT); }
const char *ac_dist_name(ac_dist v) { return NAME_OF(dist_names, v, AC_DIST_COUNT); }
const char *ac_kv_format_name(ac_kv_format v) { return NAME_OF(kv_format_names, v, AC_KV_FORMAT_COUNT); }

static int lookup(const char *const *table, int n, const char *s)
{
    for (int i = 0; i < n; i++)
        if (strcmp(table[i], s) == 0) return i;
    return -1;
}
#define PARSER(fn, type, table, n)                 \
    int fn(const char *s, type *out)               \
    {                                              \
        int i = s ? lookup(table, n, s) : -1;      \
        if (i < 0) return -1;                      \
        *out = (type)i;                            \
        return 0;                                  \
    }
PARSER(ac_op_parse, ac_op, op_names, AC_OP_COUNT)
PARSER(ac_dtype_parse, ac_dtype, dtype_names, AC_DTYPE_COUNT)
PARSER(ac_causal_parse, ac_causal, causal_names, AC_CAUSAL_COUNT)
PARSER(ac_mask_parse, ac_mask_kind, mask_names, AC_MASK_COUNT)
PARSER(ac_dist_parse, ac_dist, dist_names, AC_DIST_COUNT)
PARSER(ac_kv_format_parse, ac_kv_format, kv_format_names, AC_KV_FORMAT_COUNT)

void ac_case_init(ac_case *c)
{
    memset(c, 0, sizeof *c);
    c->op = AC_OP_PREFILL;
    c->dtype = AC_BF16;
    c->heads_q = c->heads_kv = 1;
    c->head_dim = 64;
    c->mask_density = 0.75f;
    c->num_splits = 1;
    c->window_left = c->window_right = -1;
    c->dist = AC_DIST_NORMAL;
}

void ac_case_free(ac_case *c)
{
    free(c->seqlen_q);
    free(c->seqlen_k);
    free(c->block_table);
    free(c->slot_mapping);
    free(c->alibi_slopes);
    free(c->sinks);
    free(c->k_scales);
    free(c->v_scales);
    memset(c, 0, sizeof *c);
}

static void *dup_array(const void *src, size_t bytes, int *fail)
{
    if (!src || bytes == 0) return NULL;
    void *p = malloc(bytes);
    if (!p) { *fail = 1; return NULL; }
    memcpy(p, src, bytes);
    return p;
}

ac_status ac_case_copy(ac_case *dst, const ac_case *src, ac_error *err)
{
    int fail = 0;
    *dst = *src;
    dst->seqlen_q = dup_array(src->seqlen_q, sizeof(int32_t) * (size_t)(src->batch > 0 ? src->batch : 0), &fail);
    dst->seqlen_k = dup_array(src->seqlen_k, sizeof(int32_t) * (size_t)(src->batch > 0 ? src->batch : 0), &fail);
    size_t nt = (src->block_table && src->batch > 0 && src->max_blocks_per_seq > 0)
                    ? (size_t)src->batch * (size_t)src->max_blocks_per_seq : 0;
    dst->block_table = dup_array(src->block_table, sizeof(int32_t) * nt, &fail);
    dst->slot_mapping = dup_array(src->slot_mapping,
                                  sizeof(int64_t) * (size_t)(src->num_tokens > 0 ? src->num_tokens : 0), &fail);
    dst->alibi_slopes = dup_array(src->alibi_slopes, sizeof(float) * (size_t)(src->n_alibi > 0 ? src->n_alibi : 0), &fail);
    dst->sinks = dup_array(src->sinks, sizeof(float) * (size_t)(src->n_sinks > 0 ? src->n_sinks : 0), &fail);
    if (!dst->alibi_slopes) dst->n_alibi = 0;
    if (!dst->sinks) dst->n_sinks = 0;
    size_t kvs = sizeof(float) * (size_t)(src->n_kv_scales > 0 ? src->n_kv_scales : 0);
    dst->k_scales = dup_array(src->k_scales, kvs, &fail);
    dst->v_scales = dup_array(src->v_scales, kvs, &fail);
    if (!dst->k_scales || !dst->v_scales) dst->n_kv_scales = 0;
    if (fail) {
        ac_case_free(dst);
        return ac_fail(err, AC_ERR_NOMEM, "case copy: out of memory");
    }
    return AC_OK;
}

ac_status ac_case_set_batch(ac_case *c, int32_t batch, ac_error *err)
{
    if (batch < 0 || batch > AC_MAX_BATCH)
        return ac_fail(err, AC_ERR_SHAPE, "batch = %d: must be in [0, %d]", batch, AC_MAX_BATCH);
    free(c->seqlen_q);
    free(c->seqlen_k);
    c->seqlen_q = calloc((size_t)batch + 1, sizeof(int32_t));
    c->seqlen_k = calloc((size_t)batch + 1, sizeof(int32_t));
    c->batch = batch;
    if (!c->seqlen_q || !c->seqlen_k) return ac_fail(err, AC_ERR_NOMEM, "batch = %d: out of memory", batch);
    return AC_OK;
}

ac_status ac_case_alloc_table(ac_case *c, int32_t max_blocks_per_seq, ac_error *err)
{
    if (max_blocks_per_seq < 0)
        return ac_fail(err, AC_ERR_SHAPE, "max_blocks_per_seq = %d: must be >= 0", max_blocks_per_seq);
    size_t n = (size_t)(c->batch > 0 ? c->batch : 0) * (size_t)max_blocks_per_seq;
    free(c->block_table);
    c->block_table = malloc(sizeof(int32_t) * (n ? n : 1));
    c->max_blocks_per_seq = max_blocks_per_seq;
    if (!c->block_table) return ac_fail(err, AC_ERR_NOMEM, "block_table: out of memory for %zu entries", n);
    for (size_t i = 0; i < n; i++) c->block_table[i] = -1;
    return AC_OK;
}

ac_status ac_case_alloc_slots(ac_case *c, int32_t num_tokens, ac_error *err)
{
    if (num_tokens < 0) return ac_fail(err, AC_ERR_SHAPE, "num_tokens = %d: must be >= 0", num_tokens);
    free(c->slot_mapping);
    c->slot_mapping = malloc(sizeof(int64_t) * (size_t)(num_tokens ? num_tokens : 1));
    c->num_tokens = num_tokens;
    if (!c->slot_mapping) return ac_fail(err, AC_ERR_NOMEM, "slot_mapping: out of memory for %d tokens", num_tokens);
    for (int32_t i = 0; i < num_tokens; i++) c->slot_mapping[i] = -1;
    return AC_OK;
}

uint32_t ac_case_features(const ac_case *c)
{
    return (c->window_left != -1 || c->window_right != -1 ? AC_FEAT_WINDOW : 0u) |
           (c->softcap != 0.0f ? AC_FEAT_SOFTCAP : 0u) | (c->n_alibi != 0 ? AC_FEAT_ALIBI : 0u) |
           (c->n_sinks != 0 ? AC_FEAT_SINKS : 0u) | (c->kv_format != AC_KV_AS_DTYPE ? AC_FEAT_FP8_KV : 0u) |
           (c->head_dim_v != 0 && c->head_dim_v != c->head_dim ? AC_FEAT_HEAD_DIM_V : 0u);
}

const char *ac_feature_names(uint32_t bits, char *buf, size_t n)
{
    static const char *const names[] = {"window", "softcap", "alibi", "sinks", "fp8kv", "dv"};
    size_t len = 0;
    if (n) buf[0] = '\0';
    for (int i = 0; i < 6; i++)
        if (bits & (1u << i)) {
            int k = snprintf(buf + len, len < n ? n - len : 0, "%s%s", len ? "+" : "", names[i]);
            if (k > 0) len += (size_t)k;
            if (len >= n) break;
        }
    if (!len && n) snprintf(buf, n, "none");
    return buf;
}

int ac_case_has_features(const ac_case *c) { return ac_case_features(c) != 0; }

static ac_status set_head_array(float **dst, int32_t *dst_n, const float *v, int32_t n, const char *name,
                                ac_error *err)
{
    if (!v || n <= 0) {
        free(*dst);
        *dst = NULL;
        *dst_n = 0;
        return AC_OK;
    }
    if (n > AC_MAX_HEADS) return ac_fail(err, AC_ERR_SHAPE, "%s: %d entries, at most %d", name, n, AC_MAX_HEADS);
    float *p = malloc(sizeof(float) * (size_t)n);
    if (!p) return ac_fail(err, AC_ERR_NOMEM, "%s: out of memory", name);
    memcpy(p, v, sizeof(float) * (size_t)n);
    free(*dst);
    *dst = p;
    *dst_n = n;
    return AC_OK;
}
ac_status ac_case_set_alibi(ac_case *c, const float *slopes, int32_t n, ac_error *err)
{
    return set_head_array(&c->alibi_slopes, &c->n_alibi, slopes, n, "alibi_slopes", err);
}
ac_status ac_case_set_sinks(ac_case *c, const float *sinks, int32_t n, ac_error *err)
{
    return set_head_array(&c->sinks, &c->n_sinks, sinks, n, "sinks", err);
}

ac_status ac_case_set_kv_scales(ac_case *c, const float *k_scales, const float *v_scales, int32_t n, ac_error *err)
{
    if (n > 0 && (!k_scales || !v_scales)) return ac_fail(err, AC_ERR_NULL, "k_scales / v_scales: NULL with n = %d", n);
    int32_t nk = c->n_kv_scales, nv = c->n_kv_scales;
    ac_status st = set_head_array(&c->k_scales, &nk, k_scales, n, "k_scales", err);
    if (!st) st = set_head_array(&c->v_scales, &nv, v_scales, n, "v_scales", err);
    c->n_kv_scales = st ? 0 : nk;
    if (st) {
        free(c->k_scales);
        free(c->v_scales);
        c->k_scales = c->v_scales = NULL;
    }
    return st;
}

static ac_status fit_array(float **a, int32_t *n, int32_t heads, const char *name, ac_error *err)
{
    if (*n == 0 || *n == heads || heads <= 0 || heads > AC_MAX_HEADS) return AC_OK;
    float *p = malloc(sizeof(float) * (size_t)heads);
    if (!p) return ac_fail(err, AC_ERR_NOMEM, "%s: out of memory", name);
    for (int32_t h = 0; h < heads; h++) p[h] = (*a)[h < *n ? h : *n - 1];
    free(*a);
    *a = p;
    *n = heads;
    return AC_OK;
}
ac_status ac_case_fit_head_params(ac_case *c, ac_error *err)
{
    ac_status st = fit_array(&c->alibi_slopes, &c->n_alibi, c->heads_q, "alibi_slopes", err);
    if (!st) st = fit_array(&c->sinks, &c->n_sinks, c->heads_q, "sinks", err);
    if (!st && c->n_kv_scales > 1) {
        int32_t nk = c->n_kv_scales, nv = c->n_kv_scales;
        st = fit_array(&c->k_scales, &nk, c->heads_kv, "k_scales", err);
        if (!st) st = fit_array(&c->v_scales, &nv, c->heads_kv, "v_scales", err);
        if (!st) c->n_kv_scales = nk;
    }
    return st;
}

int64_t ac_case_total_q(const ac_case *c)
{
    int64_t s = 0;
    for (int32_t b = 0; b < c->batch; b++) s += c->seqlen_q[b];
    return s;
}

int64_t ac_case_total_k(const ac_case *c)
{
    int64_t s = 0;
    for (int32_t b = 0; b < c->batch; b++) s += c->seqlen_k[b];
    return s;
}

float ac_case_scale(const ac_case *c)
{
    /* "Not given" means 1/sqrt(D) evaluated in fp32 (SEMANTICS.md, Scale). */
    return c->scale_given ? c->scale : 1.0f / sqrtf((float)c->head_dim);
}

/* Saturating int64 arithmetic for the cost model. */
static int64_t sat_mul(int64_t a, int64_t b, int *ovf)
{
    int64_t r;
    if (a < 0 || b < 0) return 0; /* invalid sizes count nothing; validation names them */
    if (__builtin_mul_overflow(a, b, &r)) {
        *ovf = 1;
        return INT64_MAX;
    }
    return r;
}
static int64_t sat_add(int64_t a, int64_t b, int *ovf)
{
    int64_t r;
    if (__builtin_add_overflow(a, b, &r)) {
        *ovf = 1;
        return INT64_MAX;
    }
    return r;
}
#define MUL(a, b) sat_mul((a), (b), &o->overflow)
#define ADD(a, b) sat_add((a), (b), &o->overflow)

/* A sparse case touches: q of its judged sequences (those with keys), all of
   `out` and `lse` (poisoned, then written), the gathered judged case (q, out,
   o_f32, lse) and the oracle's and error map's share of it, and K/V of the
   blocks it touches (counted once per table entry and slot: an upper bound),
   twice more for a store (its output caches and the oracle's). o_f32 of the
   full case and every other block are reserved, never touched. */
static void sparse_cost(const ac_case *c, const ac_op_traits *tr, ac_case_cost *o)
{
    /* D: the larger of D_qk and D_v, so every count stays an upper bound. */
    int64_t D = c->head_dim > ac_case_dv(c) ? c->head_dim : ac_case_dv(c), tq_judged = 0, blocks = 0;
    for (int32_t b = 0; b < c->batch; b++) {
        if (c->seqlen_k[b] > 0) tq_judged = ADD(tq_judged, c->seqlen_q[b] > 0 ? c->seqlen_q[b] : 0);
        if (c->paged) blocks = ADD(blocks, ac_blocks_used(c->seqlen_k[b] > 0 ? c->seqlen_k[b] : 0, c->block_size));
    }
    if (tr->slots) blocks = ADD(blocks, c->num_tokens > 0 ? c->num_tokens : 0);
    int64_t judged = MUL(MUL(tq_judged, c->heads_q), D);
    int64_t bytes = ADD(MUL(judged, 2 + 8 + 46 + 8), MUL(MUL(tq_judged, c->heads_q), 33));
    bytes = ADD(bytes, ADD(MUL(MUL(o->rows, D), 2), MUL(o->rows, 4)));
    int64_t kv = c->paged ? MUL(MUL(MUL(blocks, c->block_size), c->heads_kv), D)
                          : MUL(MUL(ac_case_total_k(c), c->heads_kv), D);
    bytes = ADD(bytes, ADD(MUL(kv, tr->slots ? 12 : 4), c->paged ? MUL(blocks, c->block_size) : 0));
    if (tr->slots) bytes = ADD(bytes, MUL(MUL(MUL(c->num_tokens, c->heads_kv), D), 4));
    o->bytes = bytes;
}

void ac_case_cost_of(const ac_case *c, ac_case_cost *o)
{
    memset(o, 0, sizeof *o);
    const ac_op_traits *tr = ac_op_traits_of(c->op);
    if (!tr || c->batch < 0) return;
    int64_t D = c->head_dim > ac_case_dv(c) ? c->head_dim : ac_case_dv(c), tq = 0, pairs = 0, mask_elems = 0;
    for (int32_t b = 0; b < c->batch; b++) {
        int64_t lq = c->seqlen_q[b] > 0 ? c->seqlen_q[b] : 0, lk = c->seqlen_k[b] > 0 ? c->seqlen_k[b] : 0;
        tq = ADD(tq, lq);
        pairs = ADD(pairs, MUL(lq, lk));
    }
    if (c->mask != AC_MASK_NONE) mask_elems = MUL(pairs, c->mask_per_head ? c->heads_q : 1);
    o->rows = MUL(tq, c->heads_q);
    int64_t elems = MUL(o->rows, D);
    if (c->special & AC_SPECIAL_SPARSE) { /* docs/DATA.md, "Sparse cases" */
        sparse_cost(c, tr, o);
        o->oracle_macs = MUL(MUL(MUL(pairs, c->heads_q), D), 2);
        return;
    }
    /* q (2 bytes), out in the dtype and in fp32 (6), the oracle's o, o_f32,
       o_half and four scales (46), the error map (8); per row the lse out and
       in the oracle, its scales and counts (4 + 8 * 3 + 4 + 1). */
    int64_t bytes = ADD(MUL(elems, 2 + 6 + 46 + 8), MUL(o->rows, 33));
    bytes = ADD(bytes, MUL(mask_elems, c->mask == AC_MASK_BOOL ? 1 : 4));
    if (tr->kv == AC_KV_NONE) { /* combine: partials O_s (fp32) and LSE_s */
        int64_t s = c->num_splits > 0 ? c->num_splits : 1;
        bytes = ADD(bytes, MUL(MUL(o->rows, s), ADD(MUL(D, 4), 4)));
        o->oracle_macs = MUL(MUL(o->rows, s), D);
    } else {
        int64_t slots = c->paged ? MUL(c->num_blocks, c->block_size) : ac_case_total_k(c);
        int64_t kv = MUL(MUL(slots, c->heads_kv), D);
        /* K and V (2 bytes each) and a byte per slot; a store also holds the
           caches it writes and the oracle's copy of them, and the new rows. */
        bytes = ADD(bytes, ADD(MUL(kv, tr->slots ? 12 : 4), slots));
        if (tr->slots) bytes = ADD(bytes, MUL(MUL(MUL(c->num_tokens, c->heads_kv), D), 4));
        o->oracle_macs = MUL(MUL(MUL(pairs, c->heads_q), D), 2);
    }
    o->bytes = bytes;
}
#undef MUL
#undef ADD

ac_status ac_case_check_enums(const ac_case *c, ac_error *err)
{
    if ((int)c->op < 0 || c->op >= AC_OP_COUNT) return ac_fail(err, AC_ERR_UNSUPPORTED, "op = %d: unknown", (int)c->op);
    if ((int)c->dtype < 0 || c->dtype >= AC_DTYPE_COUNT)
        return ac_fail(err, AC_ERR_UNSUPPORTED, "dtype = %d: unknown", (int)c->dtype);
    if ((int)c->causal < 0 || c->causal >= AC_CAUSAL_COUNT)
        return ac_fail(err, AC_ERR_UNSUPPORTED, "causal = %d: unknown", (int)c->causal);
    if ((int)c->mask < 0 || c->mask >= AC_MASK_COUNT)
        return ac_fail(err, AC_ERR_UNSUPPORTED, "mask = %d: unknown", (int)c->mask);
    if ((int)c->dist < 0 || c->dist >= AC_DIST_COUNT)
        return ac_fail(err, AC_ERR_UNSUPPORTED, "dist = %d: unknown", (int)c->dist);
    return AC_OK;
}

ac_status ac_case_validate_features(const ac_case *c, ac_error *err)
{
    const ac_op_traits *tr = ac_op_traits_of(c->op);
    if (!tr) return ac_fail(err, AC_ERR_UNSUPPORTED, "op = %d: unknown", (int)c->op);
    if (c->n_alibi != 0 && (c->n_alibi != c->heads_q || !c->alibi_slopes))
        return ac_fail(err, AC_ERR_SHAPE, "alibi_slopes: %d entries, heads_q = %d needs one per query head",
                       c->n_alibi, c->heads_q);
    if (c->n_sinks != 0 && (c->n_sinks != c->heads_q || !c->sinks))
        return ac_fail(err, AC_ERR_SHAPE, "sinks: %d entries, heads_q = %d needs one per query head", c->n_sinks,
                       c->heads_q);
    ac_status st = ac_validate_features(c->window_left, c->window_right, c->softcap,
                                        c->n_alibi ? c->alibi_slopes : NULL, c->n_sinks ? c->sinks : NULL,
                                        c->heads_q, err);
    if (st) return st;
    if ((int)c->kv_format < 0 || c->kv_format >= AC_KV_FORMAT_COUNT)
        return ac_fail(err, AC_ERR_UNSUPPORTED, "kv_format = %d: unknown", (int)c->kv_format);
    if (c->head_dim_v < 0 || c->head_dim_v > AC_MAX_HEAD_DIM)
        return ac_fail(err, AC_ERR_SHAPE, "head_dim_v = %d: must be in [1, %d], or 0 for D_v = D", c->head_dim_v,
                       AC_MAX_HEAD_DIM);
    if (c->n_kv_scales != 0 && (!c->k_scales || !c->v_scales))
        return ac_fail(err, AC_ERR_NULL, "k_scales / v_scales: NULL with n_kv_scales = %d", c->n_kv_scales);
    st = ac_validate_kv_scales(c->kv_format != AC_KV_AS_DTYPE, c->n_kv_scales, c->k_scales, c->v_scales,
                               c->heads_kv, err);
    if (st) return st;
    uint32_t kv_bits = ac_case_features(c) & AC_FEAT_KV;
    if (kv_bits & ~tr->kv_features)
        return ac_fail(err, AC_ERR_UNSUPPORTED, "%s takes no %s (%s)", ac_op_name(c->op),
                       (kv_bits & ~tr->kv_features & AC_FEAT_FP8_KV) ? "FP8 KV cache" : "separate D_v",
                       (kv_bits & ~tr->kv_features & AC_FEAT_FP8_KV) ? "kv_format set" : "head_dim_v set");
    if (!tr->features && (ac_case_features(c) & AC_FEAT_LOGIT))
        return ac_fail(err, AC_ERR_UNSUPPORTED, "%s takes no window, softcap, ALiBi or sinks (%s)", ac_op_name(c->op),
                       c->window_left != -1 || c->window_right != -1 ? "window set"
                       : c->softcap != 0.0f                          ? "softcap set"
                       : c->n_alibi                                  ? "alibi_slopes set"
                                                                     : "sinks set");
    return AC_OK;
}

ac_status ac_case_validate(const ac_case *c, ac_error *err)
{
    ac_status st = ac_case_check_enums(c, err);
    if (st) return st;
    const ac_op_traits *tr = ac_op_traits_of(c->op);
    if (c->batch < 0 || c->batch > AC_MAX_BATCH)
        return ac_fail(err, AC_ERR_SHAPE, "batch = %d: must be in [0, %d]", c->batch, AC_MAX_BATCH);
    if (c->batch > 0 && (!c->seqlen_q || !c->seqlen_k))
        return ac_fail(err, AC_ERR_NULL, "seqlen_q / seqlen_k arrays missing for batch = %d", c->batch);
    st = ac_validate_heads(c->heads_q, c->heads_kv, c->head_dim, err);
    if (st) return st;
    if (!isfinite(c->scale) && c->scale_given)
        return ac_fail(err, AC_ERR_SHAPE, "scale = %g: must be finite", (double)c->scale);
    if (c->mask_density < 0.0f || c->mask_density > 1.0f)
        return ac_fail(err, AC_ERR_SHAPE, "mask_density = %g: must be in [0, 1]", (double)c->mask_density);
    st = ac_case_validate_features(c, err);
    if (st) return st;
    for (int32_t b = 0; b < c->batch; b++) {
        if (c->seqlen_q[b] < 0) return ac_fail(err, AC_ERR_SHAPE, "seqlen_q[%d] = %d: must be >= 0", b, c->seqlen_q[b]);
        if (c->seqlen_k[b] < 0) return ac_fail(err, AC_ERR_SHAPE, "seqlen_k[%d] = %d: must be >= 0", b, c->seqlen_k[b]);
        /* Decode steps have 1..8 queries; a store has none to check. */
        if (tr->max_q > 0 && (c->seqlen_q[b] < tr->min_q || c->seqlen_q[b] > tr->max_q))
            return ac_fail(err, AC_ERR_SHAPE, "seqlen_q[%d] = %d: a %s step has %d..%d queries", b,
                           c->seqlen_q[b], ac_op_name(c->op), tr->min_q, tr->max_q);
    }
    if (ac_case_total_q(c) > INT32_MAX || ac_case_total_k(c) > INT32_MAX)
        return ac_fail(err, AC_ERR_SHAPE, "total queries or keys exceed 2^31 - 1 (cu_seqlens are int32)");
    if (tr->splits != AC_SPLITS_NONE) {
        int32_t lo = tr->splits == AC_SPLITS_GIVEN ? 1 : 0; /* 0 = automatic */
        if (c->num_splits < lo || c->num_splits > AC_MAX_SPLITS)
            return ac_fail(err, AC_ERR_SHAPE, "num_splits = %d: must be in [%d, %d]", c->num_splits, lo, AC_MAX_SPLITS);
    }
    if (c->special & AC_SPECIAL_SPARSE) {
        /* Sparse cases gather the judged sequences into a small case (docs/DATA.md):
           K/V are what is sparse, and a mask would have to be gathered as well. */
        if (tr->kv == AC_KV_NONE)
            return ac_fail(err, AC_ERR_UNSUPPORTED, "special = sparse: %s has no K/V to leave sparse",
                           ac_op_name(c->op));
        if (c->mask != AC_MASK_NONE)
            return ac_fail(err, AC_ERR_UNSUPPORTED, "special = sparse: takes no explicit mask (mask = %s)",
                           ac_mask_name(c->mask));
    }
    if (tr->kv == AC_KV_PAGED && !c->paged)
        return ac_fail(err, AC_ERR_UNSUPPORTED, "paged = 0: %s needs a paged cache", ac_op_name(c->op));
    if (c->paged && tr->kv != AC_KV_NONE) {
        st = ac_validate_paged(c->block_table, c->batch, c->max_blocks_per_seq, c->seqlen_k, c->block_size,
                               c->num_blocks, err);
        if (st) return st;
    }
    if (tr->slots) {
        if (!c->slot_mapping && c->num_tokens > 0) return ac_fail(err, AC_ERR_NULL, "slot_mapping is NULL");
        st = ac_validate_slots(NULL, c->slot_mapping ? c->slot_mapping : (const int64_t *)"", c->num_tokens,
                               (int64_t)c->num_blocks * c->block_size, err);
        if (st) return st;
        if (!c->slot_mapping_i64)
            for (int32_t i = 0; i < c->num_tokens; i++)
                if (c->slot_mapping[i] > INT32_MAX)
                    return ac_fail(err, AC_ERR_SLOT, "slot_mapping[%d] = %lld: does not fit the int32 form", i,
                                   (long long)c->slot_mapping[i]);
    }
    return AC_OK;
}

/* Compact list of lengths: "5,7,1"; long lists end with ",...(B=n)". */
static int lens_str(char *buf, size_t n, const int32_t *v, int32_t count)
{
    size_t len = 0;
    buf[0] = '\0';
    for (int32_t i = 0; i < count; i++) {
        if (i == 8 && count > 9) {
            len += (size_t)snprintf(buf + len, len < n ? n - len : 0, ",...");
            break;
        }
        len += (size_t)snprintf(buf + len, len < n ? n - len : 0, "%s%d", i ? "," : "", v[i]);
        if (len >= n) break;
    }
    return (int)len;
}

int ac_case_line(const ac_case *c, char *buf, size_t n)
{
    char lq[96], lk[96], scale[48];
    lens_str(lq, sizeof lq, c->seqlen_q, c->batch);
    lens_str(lk, sizeof lk, c->seqlen_k, c->batch);
    if (c->scale_given)
        snprintf(scale, sizeof scale, "scale=%.9g", (double)c->scale);
    else
        snprintf(scale, sizeof scale, "scale=default");
    char dv[24] = "";
    if (c->head_dim_v != 0 && c->head_dim_v != c->head_dim) snprintf(dv, sizeof dv, " Dv=%d", c->head_dim_v);
    int len = snprintf(buf, n, "%s %s B=%d Hq=%d Hkv=%d D=%d%s Lq=%s Lk=%s causal=%s mask=%s%s %s",
                       ac_op_name(c->op), ac_dtype_name(c->dtype), c->batch, c->heads_q, c->heads_kv,
                       c->head_dim, dv, lq, lk, ac_causal_name(c->causal), ac_mask_name(c->mask),
                       c->mask != AC_MASK_NONE && c->mask_per_head ? "/head" : "", scale);
    if (len < 0) return len;
#define APPEND(...) do { int k_ = snprintf(buf + (size_t)len < buf + n ? buf + len : NULL, \
                                         (size_t)len < n ? n - (size_t)len : 0, __VA_ARGS__); \
                         if (k_ > 0) len += k_; } while (0)
    static const ac_op_traits unknown_op = {0, 0, AC_KV_ANY, AC_SPLITS_NONE, -1, 0, 0, 0, 0};
    const ac_op_traits *tr = ac_op_traits_of(c->op);
    if (!tr) tr = &unknown_op;
    if (c->paged) APPEND(" paged block=%d pool=%d", c->block_size, c->num_blocks);
    else if (tr->kv != AC_KV_NONE) APPEND(" contiguous");
    if (tr->splits != AC_SPLITS_NONE) {
        if (c->num_splits == 0) APPEND(" splits=auto");
        else APPEND(" splits=%d", c->num_splits);
    }
    if (tr->slots) APPEND(" tokens=%d slots=%s", c->num_tokens, c->slot_mapping_i64 ? "i64" : "i32");
    if (c->window_left != -1 || c->window_right != -1) APPEND(" window=%d,%d", c->window_left, c->window_right);
    if (c->softcap != 0.0f) APPEND(" softcap=%.9g", (double)c->softcap);
    if (c->n_alibi > 0 && c->alibi_slopes) APPEND(" alibi=%.3g..%.3g", (double)c->alibi_slopes[0],
                                                  (double)c->alibi_slopes[c->n_alibi - 1]);
    if (c->n_sinks > 0 && c->sinks) APPEND(" sinks=%.3g..%.3g", (double)c->sinks[0], (double)c->sinks[c->n_sinks - 1]);
    if (c->kv_format != AC_KV_AS_DTYPE) {
        APPEND(" kv=%s", ac_kv_format_name(c->kv_format));
        if (c->n_kv_scales == 1 && c->k_scales && c->v_scales)
            APPEND(" kv_scale=%.3g,%.3g", (double)c->k_scales[0], (double)c->v_scales[0]);
        else if (c->n_kv_scales > 1 && c->k_scales && c->v_scales)
            APPEND(" kv_scale=head:%.3g..%.3g,%.3g..%.3g", (double)c->k_scales[0],
                   (double)c->k_scales[c->n_kv_scales - 1], (double)c->v_scales[0],
                   (double)c->v_scales[c->n_kv_scales - 1]);
    }
    APPEND(" dist=%s", ac_dist_name(c->dist));
    if (c->special) APPEND(" special=0x%x", c->special);
    APPEND(" seed=%llu", (unsigned long long)c->seed);
#undef APPEND
    return len;
}
