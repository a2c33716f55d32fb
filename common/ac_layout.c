/* Paged layouts and store slot mappings for tests, fuzzers and properties
 * (ac_gen.h, docs/DATA.md). Everything random comes from the case seed. */
#include <stdlib.h>
#include <string.h>

#include "ac_gen.h"
#include "ac_index.h"

static const char *const layout_names[AC_LAYOUT_COUNT] = {"identity", "permuted", "shared"};

const char *ac_layout_name(ac_layout kind)
{
    return ((int)kind >= 0 && kind < AC_LAYOUT_COUNT) ? layout_names[kind] : "?";
}

/* A table entry no valid read may use: -1, very negative, or past the pool. */
static int32_t garbage_entry(ac_rng *r, int32_t num_blocks)
{
    switch (ac_rng_below(r, 5)) {
    case 0: return -1;
    case 1: return INT32_MIN;
    case 2: return -2 - (int32_t)ac_rng_below(r, 1000);
    case 3: return INT32_MAX;
    default: return num_blocks + (int32_t)ac_rng_below(r, 1000);
    }
}

ac_status ac_case_make_layout(ac_case *c, ac_layout kind, int32_t extra_blocks, ac_error *err)
{
    if (!c) return ac_fail(err, AC_ERR_NULL, "case is NULL");
    if ((int)kind < 0 || kind >= AC_LAYOUT_COUNT) return ac_fail(err, AC_ERR_UNSUPPORTED, "layout = %d: unknown", (int)kind);
    if (c->block_size <= 0) return ac_fail(err, AC_ERR_SHAPE, "block_size = %d: must be > 0", c->block_size);
    if (extra_blocks < 0) return ac_fail(err, AC_ERR_SHAPE, "extra_blocks = %d: must be >= 0", extra_blocks);
    if (c->batch > 0 && !c->seqlen_k) return ac_fail(err, AC_ERR_NULL, "seqlen_k is NULL for batch = %d", c->batch);
    int32_t bs = c->block_size, max_used = 0, max_full = 0;
    for (int32_t b = 0; b < c->batch; b++) {
        if (c->seqlen_k[b] < 0) return ac_fail(err, AC_ERR_SHAPE, "seqlen_k[%d] = %d: must be >= 0", b, c->seqlen_k[b]);
        int32_t used = ac_blocks_used(c->seqlen_k[b], bs), full = c->seqlen_k[b] / bs;
        if (used > max_used) max_used = used;
        if (full > max_full) max_full = full;
    }
    int32_t shared = kind == AC_LAYOUT_SHARED_PREFIX ? (max_full + 1) / 2 : 0;
    int64_t in_use = shared;
    for (int32_t b = 0; b < c->batch; b++) {
        int32_t full = c->seqlen_k[b] / bs, sh = full < shared ? full : shared;
        in_use += ac_blocks_used(c->seqlen_k[b], bs) - sh;
    }
    int64_t pool = in_use + extra_blocks;
    if (pool < 1) pool = 1; /* a pool has at least one block */
    if (pool > INT32_MAX - 1000)
        return ac_fail(err, AC_ERR_SHAPE, "num_blocks = %lld: exceeds the int32 block index", (long long)pool);

    int32_t *perm = malloc(sizeof(int32_t) * (size_t)pool);
    if (!perm) return ac_fail(err, AC_ERR_NOMEM, "layout: out of memory for %lld blocks", (long long)pool);
    for (int64_t i = 0; i < pool; i++) perm[i] = (int32_t)i;
    ac_rng r;
    ac_rng_init(&r, c->seed, AC_STREAM_LAYOUT);
    if (kind != AC_LAYOUT_IDENTITY) /* Fisher-Yates: a uniform permutation of the pool */
        for (int64_t i = pool - 1; i > 0; i--) {
            int64_t j = (int64_t)ac_rng_below(&r, (uint64_t)i + 1);
            int32_t tmp = perm[i];
            perm[i] = perm[j];
            perm[j] = tmp;
        }

    ac_status st = ac_case_alloc_table(c, max_used + 1, err);
    if (st) {
        free(perm);
        return st;
    }
    c->paged = 1;
    c->num_blocks = (int32_t)pool;
    int64_t next = shared; /* perm[0, shared) are the shared prefix blocks */
    for (int32_t b = 0; b < c->batch; b++) {
        int32_t *row = c->block_table + (int64_t)b * c->max_blocks_per_seq;
        int32_t used = ac_blocks_used(c->seqlen_k[b], bs), full = c->seqlen_k[b] / bs;
        int32_t sh = full < shared ? full : shared;
        for (int32_t i = 0; i < c->max_blocks_per_seq; i++) {
            if (i < sh) row[i] = perm[i];
            else if (i < used) row[i] = perm[next++];
            else row[i] = (c->special & AC_SPECIAL_GARBAGE_TABLE) ? garbage_entry(&r, c->num_blocks) : -1;
        }
    }
    free(perm);
    return AC_OK;
}

ac_status ac_case_make_store_slots(ac_case *c, int32_t new_per_seq, int32_t pad_tokens, ac_error *err)
{
    if (!c) return ac_fail(err, AC_ERR_NULL, "case is NULL");
    if (!c->paged || !c->block_table || c->block_size <= 0 || c->num_blocks <= 0)
        return ac_fail(err, AC_ERR_NULL, "block_table: a store needs a paged layout first (ac_case_make_layout)");
    if (new_per_seq < 0) return ac_fail(err, AC_ERR_SHAPE, "new_per_seq = %d: must be >= 0", new_per_seq);
    if (pad_tokens < 0) return ac_fail(err, AC_ERR_SHAPE, "pad_tokens = %d: must be >= 0", pad_tokens);
    /* References per physical block over every sequence's used entries: a
       block with more than one is shared and is never written. */
    int32_t *refs = calloc((size_t)c->num_blocks, sizeof(int32_t));
    if (!refs) return ac_fail(err, AC_ERR_NOMEM, "store slots: out of memory");
    for (int32_t b = 0; b < c->batch; b++) {
        const int32_t *row = c->block_table + (int64_t)b * c->max_blocks_per_seq;
        for (int32_t i = 0; i < ac_blocks_used(c->seqlen_k[b], c->block_size); i++) {
            if (row[i] < 0 || row[i] >= c->num_blocks) {
                free(refs);
                return ac_fail(err, AC_ERR_BLOCK_TABLE, "block_table[%d][%d] = %d: must be in [0, %d)", b, i, row[i],
                               c->num_blocks);
            }
            refs[row[i]]++;
        }
    }
    int64_t real = 0;
    int32_t *n_new = calloc((size_t)(c->batch > 0 ? c->batch : 1), sizeof(int32_t));
    if (!n_new) {
        free(refs);
        return ac_fail(err, AC_ERR_NOMEM, "store slots: out of memory");
    }
    for (int32_t b = 0; b < c->batch; b++) {
        const int32_t *row = c->block_table + (int64_t)b * c->max_blocks_per_seq;
        int32_t n = 0;
        for (int32_t p = c->seqlen_k[b] - 1; p >= 0 && n < new_per_seq; p--, n++)
            if (refs[row[p / c->block_size]] != 1) break;
        n_new[b] = n;
        real += n;
    }
    ac_status st = AC_OK;
    if (real + pad_tokens > INT32_MAX) {
        st = ac_fail(err, AC_ERR_SHAPE, "num_tokens = %lld: must fit int32", (long long)(real + pad_tokens));
        goto done;
    }
    st = ac_case_alloc_slots(c, (int32_t)(real + pad_tokens), err);
    if (st) goto done;
    /* Real tokens in sequence order, then each padding token inserted at a
       uniformly drawn index of the list built so far. */
    int64_t len = 0;
    for (int32_t b = 0; b < c->batch; b++) {
        const int32_t *row = c->block_table + (int64_t)b * c->max_blocks_per_seq;
        for (int32_t p = c->seqlen_k[b] - n_new[b]; p < c->seqlen_k[b]; p++)
            c->slot_mapping[len++] = ac_pos_slot(row, p, c->block_size);
    }
    ac_rng r;
    ac_rng_init(&r, c->seed, AC_STREAM_SLOTS);
    for (int32_t k = 0; k < pad_tokens; k++, len++) {
        int64_t at = (int64_t)ac_rng_below(&r, (uint64_t)len + 1);
        memmove(c->slot_mapping + at + 1, c->slot_mapping + at, sizeof(int64_t) * (size_t)(len - at));
        c->slot_mapping[at] = -1;
    }
done:
    free(refs);
    free(n_new);
    return st;
}
