#include "ac_validate.h"

#include <math.h>
#include <stdlib.h>

#include "ac_case.h"
#include "ac_index.h"

ac_status ac_validate_heads(int32_t heads_q, int32_t heads_kv, int32_t head_dim, ac_error *err)
{
    if (heads_q <= 0 || heads_q > AC_MAX_HEADS)
        return ac_fail(err, AC_ERR_SHAPE, "heads_q = %d: must be in [1, %d]", heads_q, AC_MAX_HEADS);
    if (heads_kv <= 0 || heads_kv > heads_q)
        return ac_fail(err, AC_ERR_SHAPE, "heads_kv = %d: must be in [1, heads_q = %d]", heads_kv, heads_q);
    if (heads_q % heads_kv != 0)
        return ac_fail(err, AC_ERR_GQA, "heads_q %% heads_kv = %d %% %d = %d: must be 0",
                       heads_q, heads_kv, heads_q % heads_kv);
    if (head_dim <= 0 || head_dim > AC_MAX_HEAD_DIM)
        return ac_fail(err, AC_ERR_SHAPE, "head_dim = %d: must be in [1, %d]", head_dim, AC_MAX_HEAD_DIM);
    return AC_OK;
}

ac_status ac_validate_cu_seqlens(const char *name, const int32_t *cu, int32_t batch, int64_t total,
                                 ac_error *err)
{
    if (!cu) return ac_fail(err, AC_ERR_NULL, "%s is NULL", name);
    if (cu[0] != 0) return ac_fail(err, AC_ERR_SEQLENS, "%s[0] = %d: must be 0", name, cu[0]);
    for (int32_t b = 0; b < batch; b++)
        if (cu[b + 1] < cu[b])
            return ac_fail(err, AC_ERR_SEQLENS, "%s[%d] = %d < %s[%d] = %d: must be non-decreasing",
                           name, b + 1, cu[b + 1], name, b, cu[b]);
    if (total >= 0 && cu[batch] != total)
        return ac_fail(err, AC_ERR_SEQLENS, "%s[%d] = %d: must equal the total %lld", name, batch,
                       cu[batch], (long long)total);
    return AC_OK;
}

ac_status ac_validate_paged(const int32_t *block_table, int32_t batch, int32_t max_blocks_per_seq,
                            const int32_t *seqlens_k, int32_t block_size, int32_t num_blocks,
                            ac_error *err)
{
    if (block_size <= 0) return ac_fail(err, AC_ERR_SHAPE, "block_size = %d: must be > 0", block_size);
    if (num_blocks <= 0) return ac_fail(err, AC_ERR_SHAPE, "num_blocks = %d: must be > 0", num_blocks);
    if (max_blocks_per_seq <= 0)
        return ac_fail(err, AC_ERR_SHAPE, "max_blocks_per_seq = %d: must be > 0", max_blocks_per_seq);
    if (!block_table) return ac_fail(err, AC_ERR_NULL, "block_table is NULL");
    if (!seqlens_k) return ac_fail(err, AC_ERR_NULL, "seqlens_k is NULL");
    int64_t capacity = (int64_t)max_blocks_per_seq * block_size;
    for (int32_t b = 0; b < batch; b++) {
        if (seqlens_k[b] < 0 || seqlens_k[b] > capacity)
            return ac_fail(err, seqlens_k[b] < 0 ? AC_ERR_SHAPE : AC_ERR_CAPACITY,
                           "seqlens_k[%d] = %d: must be in [0, max_blocks_per_seq * block_size = %lld]",
                           b, seqlens_k[b], (long long)capacity);
        int32_t used = ac_blocks_used(seqlens_k[b], block_size);
        const int32_t *row = block_table + (int64_t)b * max_blocks_per_seq;
        for (int32_t i = 0; i < used; i++)
            if (row[i] < 0 || row[i] >= num_blocks)
                return ac_fail(err, AC_ERR_BLOCK_TABLE,
                               "block_table[%d][%d] = %d: used entry must be in [0, num_blocks = %d)",
                               b, i, row[i], num_blocks);
    }
    return AC_OK;
}

/* splitmix64's finaliser: slots spread over the table whatever their stride. */
static uint64_t mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

ac_status ac_validate_slots(const int32_t *slots32, const int64_t *slots64, int64_t num_tokens,
                            int64_t num_slots, ac_error *err)
{
    if ((slots32 == NULL) == (slots64 == NULL))
        return ac_fail(err, AC_ERR_NULL, "slot_mapping: exactly one of the int32 and int64 forms must be given");
    if (num_tokens < 0) return ac_fail(err, AC_ERR_SHAPE, "num_tokens = %lld: must be >= 0", (long long)num_tokens);
    if (num_tokens == 0) return AC_OK;
    /* Collisions through an open-addressing set of (slot, first token),
       linear in the tokens: this runs before every store launch, and sorting
       8192 slots cost 0.5 ms, 25 times the store itself (docs/PERF.md). The
       first token whose slot is taken names both tokens. */
    size_t cap = 16;
    while (cap < 2 * (size_t)num_tokens) cap *= 2;
    int64_t *set = malloc(sizeof(int64_t) * 2 * cap); /* [slot, token]; slot -1: empty */
    if (!set) return ac_fail(err, AC_ERR_NOMEM, "slot_mapping: out of memory for %lld tokens", (long long)num_tokens);
    for (size_t i = 0; i < cap; i++) set[2 * i] = -1;
    ac_status st = AC_OK;
    for (int64_t t = 0; t < num_tokens; t++) {
        int64_t s = slots32 ? slots32[t] : slots64[t];
        if (s == -1) continue;
        if (s < 0 || s >= num_slots) {
            st = ac_fail(err, AC_ERR_SLOT, "slot_mapping[%lld] = %lld: must be -1 or in [0, num_slots = %lld)",
                         (long long)t, (long long)s, (long long)num_slots);
            break;
        }
        size_t h = (size_t)mix64((uint64_t)s) & (cap - 1);
        while (set[2 * h] != -1 && set[2 * h] != s) h = (h + 1) & (cap - 1);
        if (set[2 * h] == s) {
            st = ac_fail(err, AC_ERR_SLOT, "slot_mapping[%lld] and slot_mapping[%lld] both map to slot %lld",
                         (long long)set[2 * h + 1], (long long)t, (long long)s);
            break;
        }
        set[2 * h] = s;
        set[2 * h + 1] = t;
    }
    free(set);
    return st;
}

ac_status ac_validate_features(int32_t window_left, int32_t window_right, float softcap,
                               const float *alibi_slopes, const float *sinks, int32_t heads_q, ac_error *err)
{
    if (window_left < -1)
        return ac_fail(err, AC_ERR_SHAPE, "window_left = %d: must be >= 0, or -1 for unbounded", window_left);
    if (window_right < -1)
        return ac_fail(err, AC_ERR_SHAPE, "window_right = %d: must be >= 0, or -1 for unbounded", window_right);
    if (!(softcap >= 0.0f && softcap <= AC_MAX_SOFTCAP))
        return ac_fail(err, AC_ERR_SHAPE, "softcap = %g: must be in (0, 2^100], or 0 for none", (double)softcap);
    for (int32_t h = 0; alibi_slopes && h < heads_q; h++)
        if (!(fabsf(alibi_slopes[h]) <= AC_MAX_ALIBI_SLOPE))
            return ac_fail(err, AC_ERR_SHAPE, "alibi_slopes[%d] = %g: must be finite, |slope| <= 2^64", h,
                           (double)alibi_slopes[h]);
    for (int32_t h = 0; sinks && h < heads_q; h++)
        if (!(fabsf(sinks[h]) <= AC_MAX_SINK || sinks[h] == -INFINITY))
            return ac_fail(err, AC_ERR_SHAPE, "sinks[%d] = %g: must be in [-2^64, 2^64], or -inf for none", h,
                           (double)sinks[h]);
    return AC_OK;
}

ac_status ac_validate_kv_scales(int fp8, int32_t n, const float *k_scales, const float *v_scales, int32_t heads_kv,
                                ac_error *err)
{
    if (n == 0) return AC_OK;
    if (!fp8)
        return ac_fail(err, AC_ERR_UNSUPPORTED, "k_scales / v_scales: %d given, but the cache is not FP8 "
                       "(kv_format = dtype takes no scales)", n);
    if (n != 1 && n != heads_kv)
        return ac_fail(err, AC_ERR_SHAPE, "k_scales / v_scales: %d entries, must be 1 (per tensor) or heads_kv = %d "
                       "(per KV head)", n, heads_kv);
    if (!k_scales || !v_scales) return ac_fail(err, AC_ERR_NULL, "k_scales / v_scales: NULL with %d entries", n);
    for (int32_t i = 0; i < n; i++) {
        if (!(k_scales[i] >= AC_MIN_KV_SCALE && k_scales[i] <= AC_MAX_KV_SCALE))
            return ac_fail(err, AC_ERR_SHAPE, "k_scales[%d] = %g: must be finite, in [2^-64, 2^64]", i,
                           (double)k_scales[i]);
        if (!(v_scales[i] >= AC_MIN_KV_SCALE && v_scales[i] <= AC_MAX_KV_SCALE))
            return ac_fail(err, AC_ERR_SHAPE, "v_scales[%d] = %g: must be finite, in [2^-64, 2^64]", i,
                           (double)v_scales[i]);
    }
    return AC_OK;
}
