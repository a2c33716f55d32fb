#define _DEFAULT_SOURCE /* MAP_ANONYMOUS, MAP_NORESERVE */
#include "ac_big.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "ac_index.h"

#define BIG_MIN_BYTES ((size_t)1 << 20)
#define BIG_SLOTS 256

/* The mappings alive, so that ac_big_free tells them from malloc'd memory
   without reading outside either. A case holds at most a dozen. */
static struct { void *p; size_t bytes; } big[BIG_SLOTS];
static pthread_mutex_t big_lock = PTHREAD_MUTEX_INITIALIZER;

void *ac_big_alloc(size_t bytes)
{
    if (bytes < BIG_MIN_BYTES) return calloc(bytes ? bytes : 1, 1);
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) return NULL;
    pthread_mutex_lock(&big_lock);
    int i = 0;
    while (i < BIG_SLOTS && big[i].p) i++;
    if (i < BIG_SLOTS) big[i].p = p, big[i].bytes = bytes;
    pthread_mutex_unlock(&big_lock);
    if (i == BIG_SLOTS) { /* more live mappings than any case needs: refuse rather than leak */
        munmap(p, bytes);
        return NULL;
    }
    return p;
}

void ac_big_free(void *p)
{
    if (!p) return;
    size_t bytes = 0;
    pthread_mutex_lock(&big_lock);
    for (int i = 0; i < BIG_SLOTS; i++)
        if (big[i].p == p) {
            bytes = big[i].bytes;
            big[i].p = NULL;
            break;
        }
    pthread_mutex_unlock(&big_lock);
    if (bytes) munmap(p, bytes);
    else free(p);
}

int ac_case_is_sparse(const ac_case *c) { return (c->special & AC_SPECIAL_SPARSE) != 0; }

static int cmp_i32(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

ac_status ac_case_touched_blocks(const ac_case *c, int32_t **blocks, int64_t *n, ac_error *err)
{
    *blocks = NULL;
    *n = 0;
    int64_t cap = c->num_tokens > 0 ? c->num_tokens : 0;
    if (c->paged && c->block_table)
        for (int32_t b = 0; b < c->batch; b++) cap += ac_blocks_used(c->seqlen_k[b], c->block_size);
    int32_t *list = malloc(sizeof(int32_t) * (size_t)(cap > 0 ? cap : 1));
    if (!list) return ac_fail(err, AC_ERR_NOMEM, "touched blocks: out of memory for %lld", (long long)cap);
    int64_t k = 0;
    if (c->paged && c->block_table)
        for (int32_t b = 0; b < c->batch; b++) {
            const int32_t *row = c->block_table + (int64_t)b * c->max_blocks_per_seq;
            for (int32_t i = 0; i < ac_blocks_used(c->seqlen_k[b], c->block_size); i++) list[k++] = row[i];
        }
    for (int32_t t = 0; t < c->num_tokens; t++)
        if (c->slot_mapping[t] >= 0) list[k++] = (int32_t)ac_slot_block(c->slot_mapping[t], c->block_size);
    qsort(list, (size_t)k, sizeof(int32_t), cmp_i32);
    int64_t m = 0;
    for (int64_t i = 0; i < k; i++)
        if (m == 0 || list[i] != list[m - 1]) list[m++] = list[i];
    *blocks = list;
    *n = m;
    return AC_OK;
}

int ac_block_runs(const int32_t *blocks, int64_t n, int (*fn)(int64_t first, int64_t count, void *ctx), void *ctx)
{
    for (int64_t i = 0; i < n;) {
        int64_t j = i + 1;
        while (j < n && blocks[j] == blocks[j - 1] + 1) j++;
        int rc = fn(blocks[i], j - i, ctx);
        if (rc) return rc;
        i = j;
    }
    return 0;
}

typedef struct copy_ctx { uint16_t *dst; const uint16_t *src; int64_t per; } copy_ctx;
static int copy_run(int64_t first, int64_t count, void *ctx)
{
    copy_ctx *x = ctx;
    memcpy(x->dst + first * x->per, x->src + first * x->per, sizeof(uint16_t) * (size_t)(count * x->per));
    return 0;
}

ac_status ac_case_copy_pool(const ac_case *c, uint16_t *dst, const uint16_t *src, ac_error *err)
{
    return ac_case_copy_pool_dim(c, dst, src, c->head_dim, err);
}

ac_status ac_case_copy_pool_dim(const ac_case *c, uint16_t *dst, const uint16_t *src, int32_t dim, ac_error *err)
{
    int64_t per = (int64_t)c->block_size * c->heads_kv * dim;
    if (!ac_case_is_sparse(c)) {
        memcpy(dst, src, sizeof(uint16_t) * (size_t)((int64_t)c->num_blocks * per));
        return AC_OK;
    }
    int32_t *blocks;
    int64_t n;
    ac_status st = ac_case_touched_blocks(c, &blocks, &n, err);
    if (st) return st;
    copy_ctx x = {dst, src, per};
    ac_block_runs(blocks, n, copy_run, &x);
    free(blocks);
    return AC_OK;
}
