/* The api target: argument combinations into the kernels' host API, CPU
 * entry points (ac_prefill_cpu, ac_decode_cpu,
 * ac_combine_cpu, ac_store_cpu) and their validate functions.
 *
 * A small valid call is built from the input bytes, then up to four
 * corruptions are applied (NULL pointers, negative or zero sizes, unknown
 * enums, non-monotone cu_seqlens, totals that disagree, bad table entries,
 * lengths past capacity, slot collisions ...). Each corruption names the
 * codes it may produce (some may be harmless: a smaller pool no entry
 * reaches). Outputs are filled with a sentinel first. Findings:
 *   - an error with no corruption, or OK / a code no corruption allows;
 *   - the validate function disagreeing with the entry point;
 *   - any output byte changed by a call that returned an error;
 *   - a crash or an out-of-bounds access (the sanitizers).
 * Corruptions only ever make sizes smaller than the buffers or values
 * invalid, never claim more elements than were allocated with a value the
 * API could accept: every out-of-bounds access is the API's.
 *
 * Record: [0] op (op % 4; op >= 0xc0: a large shape, validation only, see
 * api_large), [1..16] the base call, then 3-byte corruptions (kind, a, b). */
#include "ac_fuzz.h"

/* Paths and messages are cut at their buffers on purpose (never past them). */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wformat-truncation"
#endif
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "combine.h"
#include "decode.h"
#include "prefill.h"
#include "store.h"

#define BIT(code) (1u << (unsigned)(code))
#define OKBIT BIT(AC_OK)

typedef struct breader { const uint8_t *p; size_t n, i; } breader;
static uint32_t rb(breader *b) { return b->i < b->n ? b->p[b->i++] : 0u; }

/* A small valid case of op from 16 bytes. */
static ac_status base_case(ac_op op, breader *br, ac_case *c, ac_error *err)
{
    static const int32_t dims[] = {8, 16, 24, 32};
    static const int32_t groups[] = {1, 2, 4};
    static const int32_t bsz[] = {1, 2, 3, 4, 8, 16};
    ac_case_init(c);
    c->op = op;
    c->dtype = (ac_dtype)(rb(br) % 2);
    int32_t batch = (int32_t)(rb(br) % 4); /* batch 0 is legal and worth a look */
    if (op == AC_OP_COMBINE && batch == 0) batch = 1;
    c->heads_kv = 1 + (int32_t)(rb(br) % 2);
    c->heads_q = c->heads_kv * groups[rb(br) % 3];
    c->head_dim = dims[rb(br) % 4];
    ac_status st = ac_case_set_batch(c, batch, err);
    if (st) return st;
    for (int32_t b = 0; b < batch; b++) {
        uint32_t x = rb(br);
        c->seqlen_k[b] = (int32_t)(x % 20);
        c->seqlen_q[b] = op == AC_OP_DECODE ? 1 + (int32_t)(x >> 5) % 3 : op == AC_OP_STORE ? 0 : (int32_t)(x >> 4) % 6;
    }
    c->dist = AC_DIST_UNIFORM;
    c->seed = rb(br);
    if (op == AC_OP_COMBINE) {
        c->num_splits = 1 + (int32_t)(rb(br) % 5);
        return AC_OK;
    }
    uint32_t f = rb(br);
    c->causal = op == AC_OP_DECODE ? AC_CAUSAL_BOTTOM_RIGHT : (ac_causal)(f % 3);
    c->num_splits = op == AC_OP_DECODE ? (int32_t)((f >> 2) % 4) : 1;
    c->paged = op != AC_OP_PREFILL || (f >> 4) % 2;
    if (op == AC_OP_PREFILL && (f >> 5) % 2) {
        c->mask = 1 + (ac_mask_kind)((f >> 6) % 2);
        c->mask_per_head = (int)(rb(br) % 2);
    }
    if (c->paged) {
        c->block_size = bsz[rb(br) % 6];
        st = ac_case_make_layout(c, (ac_layout)(rb(br) % AC_LAYOUT_COUNT), (int32_t)(rb(br) % 3), err);
        if (st) return st;
    }
    if (op == AC_OP_STORE) {
        c->slot_mapping_i64 = (int)(rb(br) % 2);
        st = ac_case_make_store_slots(c, 1 + (int32_t)(rb(br) % 4), (int32_t)(rb(br) % 3), err);
    }
    return st;
}

/* ------------------------------------------------------------------------ */
/* The call under test, one struct for the four ops, and its outputs. */

typedef struct call {
    ac_op op;
    ac_prefill_params pp;
    ac_decode_params dp;
    ac_combine_params cp;
    ac_store_params sp;
    /* Owned copies of the metadata, which corruptions edit. */
    int32_t *cu_q, *cu_k, *lens_k, *table;
    int64_t *mask_off;
    int32_t *slots32;
    int64_t *slots64;
    int64_t table_entries;
    /* Outputs and their snapshot. */
    void *out_ptr[4];
    size_t out_bytes[4];
    uint8_t *snap[4];
} call;

static void *dup_or_null(const void *p, size_t n)
{
    if (!p || !n) return NULL;
    void *q = malloc(n);
    if (q) memcpy(q, p, n);
    return q;
}

/* Metadata arrays are always passed, even empty ones (batch 0): a real
   caller has them; NULL metadata is a corruption of its own. */
static void *dup_meta(const void *p, size_t n)
{
    void *q = malloc(n ? n : 16);
    if (q && p && n) memcpy(q, p, n);
    else if (q) memset(q, 0, n ? n : 16);
    return q;
}

static ac_status build_call(const ac_case *c, const ac_tensors *t, ac_outputs *o, call *k, ac_error *err)
{
    memset(k, 0, sizeof *k);
    k->op = c->op;
    size_t nb = (size_t)c->batch;
    k->cu_q = dup_meta(t->cu_seqlens_q, sizeof(int32_t) * (nb + 1));
    k->cu_k = dup_meta(t->cu_seqlens_k, sizeof(int32_t) * (nb + 1));
    k->lens_k = dup_meta(c->seqlen_k, sizeof(int32_t) * nb);
    k->table_entries = (int64_t)c->batch * c->max_blocks_per_seq;
    k->table = dup_meta(c->block_table, sizeof(int32_t) * (size_t)k->table_entries);
    if (t->mask_off) k->mask_off = dup_meta(t->mask_off, sizeof(int64_t) * (nb + 1));
    if (!k->cu_q || !k->cu_k || !k->lens_k || !k->table) return ac_fail(err, AC_ERR_NOMEM, "out of memory");
    int64_t rows = t->total_q * c->heads_q;
    switch (c->op) {
    case AC_OP_PREFILL: {
        ac_status st = ac_prefill_params_from_case(c, t, o, &k->pp, err);
        if (st) return st;
        k->pp.h_cu_seqlens_q = k->cu_q;
        if (c->paged) {
            k->pp.h_block_table = k->table;
            k->pp.h_seqlens_k = k->lens_k;
        } else {
            k->pp.h_cu_seqlens_k = k->cu_k;
            k->pp.h_seqlens_k = NULL;
        }
        if (c->mask != AC_MASK_NONE) k->pp.h_mask_off = k->mask_off;
        k->out_ptr[0] = o->o, k->out_bytes[0] = (size_t)(rows * c->head_dim) * 2;
        k->out_ptr[1] = o->lse, k->out_bytes[1] = (size_t)rows * 4;
        break;
    }
    case AC_OP_DECODE:
        k->dp = (ac_decode_params){
            .dtype = c->dtype, .batch = c->batch, .heads_q = c->heads_q, .heads_kv = c->heads_kv,
            .head_dim = c->head_dim, .causal = c->causal, .scale_given = c->scale_given, .scale = c->scale,
            .num_splits = c->num_splits, .num_sms = 0, .num_blocks = c->num_blocks, .block_size = c->block_size,
            .max_blocks_per_seq = c->max_blocks_per_seq, .total_q = t->total_q,
            .q = t->q, .k_cache = t->k, .v_cache = t->v, .cu_seqlens_q = k->cu_q, .seqlens_k = k->lens_k,
            .block_table = k->table, .o = o->o, .o_f32 = o->o_f32, .lse = o->lse,
            .cu_seqlens_q_host = k->cu_q, .seqlens_k_host = k->lens_k, .block_table_host = k->table,
        };
        k->out_ptr[0] = o->o, k->out_bytes[0] = (size_t)(rows * c->head_dim) * 2;
        k->out_ptr[1] = o->o_f32, k->out_bytes[1] = (size_t)(rows * c->head_dim) * 4;
        k->out_ptr[2] = o->lse, k->out_bytes[2] = (size_t)rows * 4;
        break;
    case AC_OP_COMBINE:
        k->cp = (ac_combine_params){
            .dtype = c->dtype, .rows = rows, .num_splits = c->num_splits, .head_dim = c->head_dim,
            .o_part = t->o_part, .lse_part = t->lse_part, .o = o->o, .o_f32 = o->o_f32, .lse = o->lse,
        };
        k->out_ptr[0] = o->o, k->out_bytes[0] = (size_t)(rows * c->head_dim) * 2;
        k->out_ptr[1] = o->o_f32, k->out_bytes[1] = (size_t)(rows * c->head_dim) * 4;
        k->out_ptr[2] = o->lse, k->out_bytes[2] = (size_t)rows * 4;
        break;
    case AC_OP_STORE: {
        size_t n = (size_t)c->num_tokens;
        if (c->slot_mapping_i64) {
            k->slots64 = dup_or_null(c->slot_mapping, sizeof(int64_t) * n);
        } else if (n) {
            k->slots32 = malloc(sizeof(int32_t) * n);
            if (!k->slots32) return ac_fail(err, AC_ERR_NOMEM, "out of memory");
            for (size_t i = 0; i < n; i++) k->slots32[i] = (int32_t)c->slot_mapping[i];
        }
        const void *sm = c->slot_mapping_i64 ? (const void *)k->slots64 : (const void *)k->slots32;
        /* The store writes the caches in place: they are the outputs here
           (copies of the generated ones). */
        size_t kvb = (size_t)t->kv_elems * 2;
        k->out_ptr[0] = dup_or_null(t->k, kvb), k->out_bytes[0] = kvb;
        k->out_ptr[1] = dup_or_null(t->v, kvb), k->out_bytes[1] = kvb;
        k->sp = (ac_store_params){
            .dtype = c->dtype, .num_tokens = c->num_tokens, .heads_kv = c->heads_kv, .head_dim = c->head_dim,
            .num_blocks = c->num_blocks, .block_size = c->block_size, .k_new = t->k_new, .v_new = t->v_new,
            .k_cache = k->out_ptr[0], .v_cache = k->out_ptr[1], .slot_mapping = sm,
            .slot_mapping_i64 = c->slot_mapping_i64, .slot_mapping_host = sm,
        };
        break;
    }
    default: break;
    }
    return AC_OK;
}

static void free_call(call *k)
{
    free(k->cu_q), free(k->cu_k), free(k->lens_k), free(k->table), free(k->mask_off);
    free(k->slots32), free(k->slots64);
    if (k->op == AC_OP_STORE) free(k->out_ptr[0]), free(k->out_ptr[1]);
    for (int i = 0; i < 4; i++) free(k->snap[i]);
}

/* ------------------------------------------------------------------------ */
/* Corruptions. Each returns the codes it may cause (0: not applicable). */

static int32_t batch_of(const call *k)
{
    switch (k->op) {
    case AC_OP_PREFILL: return k->pp.batch;
    case AC_OP_DECODE: return k->dp.batch;
    default: return 0;
    }
}

static uint32_t corrupt(call *k, uint32_t kind, uint32_t a, uint32_t b, char *what, size_t wn)
{
    ac_prefill_params *pp = &k->pp;
    ac_decode_params *dp = &k->dp;
    ac_combine_params *cp = &k->cp;
    ac_store_params *sp = &k->sp;
    int32_t batch = batch_of(k);
    const uint32_t null_ = BIT(AC_ERR_NULL), shape = BIT(AC_ERR_SHAPE), unsup = BIT(AC_ERR_UNSUPPORTED);
    const uint32_t seql = BIT(AC_ERR_SEQLENS), gqa = BIT(AC_ERR_GQA), tbl = BIT(AC_ERR_BLOCK_TABLE);
    const uint32_t cap = BIT(AC_ERR_CAPACITY), slot = BIT(AC_ERR_SLOT);
#define SAY(...) snprintf(what, wn, __VA_ARGS__)
    /* Kinds shared by prefill and decode act on the same fields of both. */
    int32_t *heads_q = k->op == AC_OP_PREFILL ? &pp->heads_q : &dp->heads_q;
    int32_t *heads_kv = k->op == AC_OP_PREFILL ? &pp->heads_kv : &dp->heads_kv;
    int32_t *head_dim = k->op == AC_OP_PREFILL ? &pp->head_dim : &dp->head_dim;
    int64_t *total_q = k->op == AC_OP_PREFILL ? &pp->total_q : &dp->total_q;
    int *scale_given = k->op == AC_OP_PREFILL ? &pp->scale_given : &dp->scale_given;
    float *scale = k->op == AC_OP_PREFILL ? &pp->scale : &dp->scale;
    int paged = k->op == AC_OP_DECODE || (k->op == AC_OP_PREFILL && pp->paged);
    int32_t *bsize = k->op == AC_OP_PREFILL ? &pp->block_size : &dp->block_size;
    int32_t *nblocks = k->op == AC_OP_PREFILL ? &pp->num_blocks : &dp->num_blocks;
    int32_t *mbps = k->op == AC_OP_PREFILL ? &pp->max_blocks_per_seq : &dp->max_blocks_per_seq;

    if (k->op == AC_OP_PREFILL || k->op == AC_OP_DECODE) {
        switch (kind % 22) {
        case 0: SAY("q = NULL");
            if (k->op == AC_OP_PREFILL) { pp->q = NULL; return null_ | (*total_q == 0 ? OKBIT : 0); }
            dp->q = NULL; return null_;
        case 1: SAY("k = NULL");
            if (k->op == AC_OP_PREFILL) {
                pp->k = NULL; /* legal only when there is no key element */
                return null_ | (!pp->paged && pp->total_k == 0 ? OKBIT : 0);
            }
            dp->k_cache = NULL; return null_;
        case 2: SAY("out = NULL");
            if (k->op == AC_OP_PREFILL) { pp->out = NULL; return null_ | (*total_q == 0 ? OKBIT : 0); }
            dp->o = NULL; return null_;
        case 3: SAY("cu_seqlens_q = NULL");
            if (k->op == AC_OP_PREFILL) pp->h_cu_seqlens_q = NULL;
            else dp->cu_seqlens_q_host = dp->cu_seqlens_q = NULL;
            return null_;
        case 4: SAY("cu_seqlens_q[0] = %d", 1 + (int)(a % 3)); k->cu_q[0] = 1 + (int32_t)(a % 3); return seql;
        case 5: {
            if (batch < 1) return 0;
            int32_t i = 1 + (int32_t)(a % (uint32_t)batch);
            SAY("cu_seqlens_q[%d] = cu_seqlens_q[%d] - 1", i, i - 1);
            k->cu_q[i] = k->cu_q[i - 1] - 1;
            /* a later entry is now above: not monotone, or the total disagrees;
               decode also sees a sequence with < 1 query */
            return seql | shape;
        }
        case 6: SAY("total_q = %lld", (long long)(*total_q - 1 - (a % 2)));
            *total_q -= 1 + (a % 2); return seql | shape;
        case 7: SAY("heads_q = 0"); *heads_q = 0; return shape;
        case 8: SAY("heads_kv = heads_q + 1"); *heads_kv = *heads_q + 1; return shape | gqa;
        case 9: SAY("heads_q = %d with heads_kv = %d", *heads_kv * 2 + 1, *heads_kv);
            if (*heads_kv < 2) return 0;
            *heads_q = *heads_kv * 2 + 1; return gqa | shape;
        case 10: {
            /* Past every kernel's dims (prefill stops at 256, decode at 768):
               a dim the call's buffers do not have must never be read. */
            static const int32_t bad[] = {0, -8, 12, 4, 776, 1032, 100000};
            int32_t d = bad[a % 7];
            SAY("head_dim = %d", d);
            *head_dim = d;
            return shape | unsup;
        }
        case 11: SAY("dtype = %d", 2 + (int)(a % 3));
            if (k->op == AC_OP_PREFILL) pp->dtype = (ac_dtype)(2 + a % 3);
            else dp->dtype = (ac_dtype)(2 + a % 3);
            return unsup | shape;
        case 12: SAY("causal = %d", 3 + (int)(a % 3));
            if (k->op == AC_OP_PREFILL) pp->causal = (ac_causal)(3 + a % 3);
            else dp->causal = 3 + (int)(a % 3);
            return unsup | shape;
        case 13: {
            static const float bad[] = {NAN, INFINITY, -INFINITY};
            SAY("scale = %g (given)", (double)bad[a % 3]);
            *scale_given = 1;
            *scale = bad[a % 3];
            return shape;
        }
        case 14: SAY("batch = %d", -1 - (int)(a % 3));
            if (k->op == AC_OP_PREFILL) pp->batch = -1 - (int32_t)(a % 3);
            else dp->batch = -1 - (int32_t)(a % 3);
            return shape;
        case 15: /* block table entry used by sequence b */
            if (!paged || batch < 1) return 0;
            {
                if (*bsize <= 0 || *mbps <= 0) return 0;
                int32_t s = (int32_t)(a % (uint32_t)batch), used = ac_blocks_used(k->lens_k[s], *bsize);
                if (used > *mbps) used = *mbps;
                if (used < 1) return 0;
                int32_t i = (int32_t)(b % (uint32_t)used);
                if ((int64_t)s * *mbps + i >= k->table_entries) return 0; /* a corrupted stride: stay inside */
                static const int32_t bad[] = {-1, -2, INT32_MIN, INT32_MAX};
                int32_t v = (b >> 4) % 5 == 4 ? *nblocks : bad[(b >> 4) % 5 % 4];
                SAY("block_table[%d][%d] = %d", s, i, v);
                k->table[(int64_t)s * *mbps + i] = v;
                return tbl;
            }
        case 16:
            if (!paged || batch < 1) return 0;
            {
                int32_t s = (int32_t)(a % (uint32_t)batch);
                int64_t c = (int64_t)*mbps * *bsize + 1 + (b % 3);
                int32_t v = c > INT32_MAX ? INT32_MAX : (int32_t)c;
                if (b % 5 == 4) v = INT32_MAX;
                SAY("seqlens_k[%d] = %d (capacity %lld)", s, v, (long long)*mbps * *bsize);
                k->lens_k[s] = v;
                return cap;
            }
        case 17:
            if (!paged || batch < 1) return 0;
            SAY("seqlens_k[%d] = -1", (int)(a % (uint32_t)batch));
            k->lens_k[a % (uint32_t)batch] = -1;
            return shape;
        case 18:
            if (!paged) return 0;
            switch (a % 3) {
            case 0: SAY("block_size = %d", -(int)(b % 3)); *bsize = -(int32_t)(b % 3); return shape;
            case 1: SAY("num_blocks = %d", -(int)(b % 3)); *nblocks = -(int32_t)(b % 3); return shape;
            default: SAY("max_blocks_per_seq = 0"); *mbps = 0; return shape;
            }
        case 19:
            if (!paged) return 0;
            switch (a % 2) {
            case 0: SAY("block_table = NULL");
                if (k->op == AC_OP_PREFILL) pp->h_block_table = NULL;
                else dp->block_table_host = dp->block_table = NULL;
                return null_ | (batch == 0 && k->op == AC_OP_PREFILL ? OKBIT : 0);
            default: SAY("seqlens_k = NULL");
                if (k->op == AC_OP_PREFILL) pp->h_seqlens_k = NULL;
                else dp->seqlens_k_host = dp->seqlens_k = NULL;
                return null_ | (batch == 0 && k->op == AC_OP_PREFILL ? OKBIT : 0);
            }
        case 20: /* a smaller pool: harmless unless an entry reaches past it */
            if (!paged || *nblocks < 2) return 0;
            SAY("num_blocks = %d (was %d)", *nblocks - 1, *nblocks);
            *nblocks -= 1;
            return tbl | OKBIT;
        default:
            if (k->op == AC_OP_DECODE) {
                switch (a % 3) {
                case 0: SAY("num_splits = %d", -1 - (int)(b % 2)); dp->num_splits = -1 - (int32_t)(b % 2); return shape;
                case 1: SAY("num_splits = %d", AC_MAX_SPLITS + 1); dp->num_splits = AC_MAX_SPLITS + 1; return shape;
                default:
                    if (batch < 1) return 0;
                    /* a sequence with 9 queries: more than a decode step */
                    SAY("cu_seqlens_q: sequence %d with %d queries", (int)(b % (uint32_t)batch), AC_MAX_QUERIES_DECODE + 1);
                    for (int32_t i = (int32_t)(b % (uint32_t)batch) + 1; i <= batch; i++) k->cu_q[i] += AC_MAX_QUERIES_DECODE;
                    /* total_q left as is: the totals disagree too */
                    return seql | shape;
                }
            }
            if (!pp->paged) {
                switch (a % 3) {
                case 0: SAY("cu_seqlens_k = NULL"); pp->h_cu_seqlens_k = NULL; return null_;
                case 1: SAY("total_k = %lld", (long long)pp->total_k + 1); pp->total_k += 1; return seql;
                default:
                    if (batch < 1) return 0;
                    SAY("cu_seqlens_k[%d] decreasing", batch);
                    k->cu_k[batch] = k->cu_k[batch - 1] - 1;
                    return seql | shape;
                }
            }
            if (pp->mask_kind != AC_MASK_NONE && batch > 0) {
                switch (a % 3) {
                case 0: SAY("mask_off[%d] = -1", (int)(b % (uint32_t)batch)); k->mask_off[b % (uint32_t)batch] = -1; return shape;
                case 1: SAY("mask_elems = %lld", (long long)pp->mask_elems - 1);
                    pp->mask_elems -= 1; return shape | (pp->mask_elems < 0 ? 0 : OKBIT);
                default:
                    SAY("mask = NULL"); /* with no mask element: legal (corpus/api/1000) */
                    pp->mask_bool = NULL, pp->mask_bias = NULL; return null_ | (pp->mask_elems == 0 ? OKBIT : 0);
                }
            }
            SAY("lse = NULL (optional)");
            pp->lse = NULL;
            return OKBIT;
        }
    }
    if (k->op == AC_OP_COMBINE) {
        switch (kind % 8) {
        case 0: SAY("o_part = NULL"); cp->o_part = NULL; return null_;
        case 1: SAY("lse_part = NULL"); cp->lse_part = NULL; return null_;
        case 2: SAY("o = o_f32 = NULL"); cp->o = NULL, cp->o_f32 = NULL; return null_;
        case 3: SAY("rows = %d", -1 - (int)(a % 2)); cp->rows = -1 - (int64_t)(a % 2); return shape;
        case 4: {
            int32_t v = a % 3 == 0 ? 0 : a % 3 == 1 ? -1 : AC_MAX_SPLITS + 1;
            SAY("num_splits = %d", v);
            cp->num_splits = v;
            return shape;
        }
        case 5: SAY("head_dim = %d", -(int)(a % 2)); cp->head_dim = -(int32_t)(a % 2); return shape;
        case 6: SAY("dtype = %d", 2 + (int)(a % 3)); cp->dtype = (ac_dtype)(2 + a % 3); return unsup | shape;
        default: SAY("rows = 0 (nothing to do)"); cp->rows = 0; return OKBIT;
        }
    }
    /* store */
    switch (kind % 11) {
    case 0: SAY("k_new = NULL"); sp->k_new = NULL; return null_ | (sp->num_tokens == 0 ? OKBIT : 0);
    case 1: SAY("v_cache = NULL"); sp->v_cache = NULL; return null_ | (sp->num_tokens == 0 ? OKBIT : 0);
    case 2: SAY("slot_mapping = NULL");
        sp->slot_mapping = NULL, sp->slot_mapping_host = NULL;
        return null_ | (sp->num_tokens == 0 ? OKBIT : 0);
    case 3: SAY("num_tokens = %d", -1 - (int)(a % 2)); sp->num_tokens = -1 - (int32_t)(a % 2); return shape;
    case 4: SAY("block_size = %d", -(int)(a % 2)); sp->block_size = -(int32_t)(a % 2); return shape;
    case 5: SAY("num_blocks = %d", -(int)(a % 2)); sp->num_blocks = -(int32_t)(a % 2); return shape;
    case 6: SAY("heads_kv = 0"); sp->heads_kv = 0; return shape;
    case 7: SAY("dtype = %d", 2 + (int)(a % 3)); sp->dtype = (ac_dtype)(2 + a % 3); return unsup | shape;
    default: {
        if (sp->num_tokens < 1) return 0;
        int32_t t = (int32_t)(a % (uint32_t)sp->num_tokens);
        int64_t nslots = (int64_t)sp->num_blocks * sp->block_size, v;
        switch (kind % 11) {
        case 8: v = nslots + (b % 2); break;
        case 9: v = -2 - (int64_t)(b % 3); break;
        default: {
            /* another token's slot: a collision (if that token is not padding) */
            int32_t u = (int32_t)(b % (uint32_t)sp->num_tokens);
            v = k->slots64 ? k->slots64[u] : k->slots32 ? k->slots32[u] : -1;
            if (u == t || v == -1) return 0;
            break;
        }
        }
        SAY("slot_mapping[%d] = %lld", t, (long long)v);
        if (k->slots64) k->slots64[t] = v;
        else if (k->slots32) k->slots32[t] = (int32_t)v;
        else return 0;
        return slot;
    }
    }
#undef SAY
}

/* ------------------------------------------------------------------------ */

static ac_status call_validate(const call *k, ac_error *e)
{
    switch (k->op) {
    case AC_OP_PREFILL: return ac_prefill_validate(&k->pp, 0, e);
    case AC_OP_DECODE: return ac_decode_validate(&k->dp, e);
    case AC_OP_COMBINE: return ac_combine_validate(&k->cp, e);
    default: return ac_store_validate(&k->sp, e);
    }
}

static ac_status call_run(const call *k, ac_error *e)
{
    switch (k->op) {
    case AC_OP_PREFILL: return ac_prefill_cpu(&k->pp, AC_BUG_NONE, e);
    case AC_OP_DECODE: return ac_decode_cpu(&k->dp, 0, e);
    case AC_OP_COMBINE: return ac_combine_cpu(&k->cp, 0, e);
    default: return ac_store_cpu(&k->sp, 0, e);
    }
}

/* ------------------------------------------------------------------------ */
/* Large shapes, validation only: sizes up to the contract's limits (batch
   65536, 1024 heads, 2^31 - 1 tokens, 4096 splits) with real metadata and
   a dummy data pointer (validate never reads data). The shape is judged by
   the independent rules; limits a kernel documents (prefill's batch <=
   AC_PREFILL_MAX_BATCH, a 1-D grid below 2^31 CTAs with the resolved split
   count) are allowed named refusals. Finds valid shapes refused and
   overflows in the validation's own arithmetic (UBSan). */

static _Alignas(64) unsigned char dummy_data[64];

static int32_t pick32(breader *br, const int32_t *v, int n) { return v[rb(br) % (uint32_t)n]; }
#define PICKB(br, arr) pick32((br), (arr), (int)(sizeof(arr) / sizeof((arr)[0])))

static void api_large(ac_op op, breader *br, const ac_fuzz_env *env, ac_fuzz_outcome *out)
{
    FILE *log = env->log ? env->log : stderr;
    static const int32_t batches[] = {1, 2, 513, 4096, 65535, 65536, 65537, 300000};
    static const int32_t hkvs[] = {1, 8, 128, 1024};
    static const int32_t groups[] = {1, 2, 4, 8, 3};
    static const int32_t dims[] = {8, 64, 128, 256, 264, 12, 1024};
    static const int32_t bss[] = {1, 16, 256, 4096};
    static const int32_t lks[] = {1, 4096, 1 << 20, 1 << 24};
    ac_error e;
    ac_error_clear(&e);
    uint32_t want = 0;
    ac_status got = AC_OK;
    int32_t batch = PICKB(br, batches), hkv = PICKB(br, hkvs), hq = hkv * PICKB(br, groups), d = PICKB(br, dims);
    int32_t *cu = NULL, *lens = NULL, *table = NULL;
    int64_t total_q = 0;
    if (op == AC_OP_DECODE || op == AC_OP_PREFILL) {
        int32_t lq = op == AC_OP_DECODE ? 1 + (int32_t)(rb(br) % 8) : PICKB(br, ((const int32_t[]){0, 1, 128, 4096, 1 << 16}));
        int32_t lk = PICKB(br, lks), bs = PICKB(br, bss);
        int paged = op == AC_OP_DECODE || rb(br) % 2;
        int64_t mbps = paged ? ((int64_t)lk + bs - 1) / bs : 0;
        if ((int64_t)batch * (mbps > 0 ? mbps : 1) > (1 << 22)) {
            out->kind = AC_FUZZ_SKIPPED; /* table too large to build here */
            snprintf(out->why, sizeof out->why, "large table");
            return;
        }
        cu = malloc(sizeof(int32_t) * ((size_t)batch + 1));
        lens = malloc(sizeof(int32_t) * (size_t)batch);
        table = paged ? malloc(sizeof(int32_t) * (size_t)(batch * mbps)) : NULL;
        int32_t *cuk = paged ? NULL : malloc(sizeof(int32_t) * ((size_t)batch + 1));
        if (!cu || !lens || (paged && !table) || (!paged && !cuk)) {
            free(cu), free(lens), free(table), free(cuk);
            out->kind = AC_FUZZ_SKIPPED;
            snprintf(out->why, sizeof out->why, "out of memory");
            return;
        }
        /* cu_seqlens in int64 first: a total past 2^31 - 1 is a SHAPE
           refusal, and the int32 array then holds a wrapped, non-monotone
           value (the API reads the total from total_q). */
        int64_t tk = 0;
        cu[0] = 0;
        if (cuk) cuk[0] = 0;
        for (int32_t b = 0; b < batch; b++) {
            total_q += lq;
            tk += lk;
            cu[b + 1] = (int32_t)(uint32_t)total_q;
            if (cuk) cuk[b + 1] = (int32_t)(uint32_t)tk;
            lens[b] = lk;
            for (int64_t i = 0; i < mbps; i++) table[b * mbps + i] = (int32_t)(b * mbps + i);
        }
        int64_t num_blocks = (int64_t)batch * mbps;
        /* the independent rules */
        if (hq > AC_MAX_HEADS) want |= BIT(AC_ERR_SHAPE);
        if (d > AC_MAX_HEAD_DIM) want |= BIT(AC_ERR_SHAPE);
        if (hq % hkv) want |= BIT(AC_ERR_GQA) | BIT(AC_ERR_SHAPE);
        if (d % 8 || d > ac_fuzz_kernel_max_dim(op)) want |= BIT(AC_ERR_UNSUPPORTED);
        if (batch > AC_MAX_BATCH) want |= BIT(AC_ERR_SHAPE);
        if (total_q > INT32_MAX) want |= BIT(AC_ERR_SHAPE) | BIT(AC_ERR_SEQLENS);
        if (!paged && tk > INT32_MAX) want |= BIT(AC_ERR_SHAPE) | BIT(AC_ERR_SEQLENS);
        if (paged && num_blocks > INT32_MAX) want |= BIT(AC_ERR_SHAPE);
        if (op == AC_OP_PREFILL) {
            if (batch > AC_PREFILL_MAX_BATCH) want |= BIT(AC_ERR_UNSUPPORTED) | (batch > AC_MAX_BATCH ? BIT(AC_ERR_SHAPE) : 0);
            ac_prefill_params p;
            memset(&p, 0, sizeof p);
            p.dtype = AC_BF16, p.batch = batch, p.heads_q = hq, p.heads_kv = hkv, p.head_dim = d;
            p.total_q = total_q, p.q = p.k = p.v = dummy_data, p.out = dummy_data;
            p.h_cu_seqlens_q = cu, p.paged = paged, p.causal = AC_CAUSAL_BOTTOM_RIGHT;
            if (paged) {
                p.h_block_table = table, p.h_seqlens_k = lens, p.block_size = bs;
                p.num_blocks = (int32_t)(num_blocks > INT32_MAX ? INT32_MAX : num_blocks);
                p.max_blocks_per_seq = (int32_t)mbps;
            } else {
                p.h_cu_seqlens_k = cuk, p.total_k = tk;
            }
            got = ac_prefill_validate(&p, 0, &e);
            snprintf(out->line, sizeof out->line, "api-large prefill B=%d Hq=%d Hkv=%d D=%d Lq=%d Lk=%d %s block=%d",
                     batch, hq, hkv, d, lq, lk, paged ? "paged" : "contiguous", bs);
        } else {
            ac_decode_params p;
            memset(&p, 0, sizeof p);
            p.dtype = AC_BF16, p.batch = batch, p.heads_q = hq, p.heads_kv = hkv, p.head_dim = d;
            p.causal = AC_CAUSAL_BOTTOM_RIGHT, p.num_splits = PICKB(br, ((const int32_t[]){0, 0, 1, 7, 4096}));
            p.num_blocks = (int32_t)(num_blocks > INT32_MAX ? INT32_MAX : num_blocks), p.block_size = bs;
            p.max_blocks_per_seq = (int32_t)mbps, p.total_q = total_q;
            p.q = p.k_cache = p.v_cache = dummy_data, p.o = dummy_data;
            p.cu_seqlens_q = p.cu_seqlens_q_host = cu, p.seqlens_k = p.seqlens_k_host = lens;
            p.block_table = p.block_table_host = table;
            if (!want) {
                /* One CTA per (sequence, KV head, row chunk, split) in a 1-D
                   grid: a documented limit, with the split count the call
                   resolves (automatic splits included). */
                int64_t rows = (int64_t)lq * (hq / hkv);
                const int64_t cta = ac_decode_cta_rows(rows > AC_DECODE_MAX_ROWS ? AC_DECODE_MAX_ROWS : (int32_t)rows, d);
                int64_t chunks = (rows + cta - 1) / cta;
                int64_t splits = ac_decode_splits(&p, 0);
                if ((int64_t)batch * hkv * chunks * splits > INT32_MAX) want |= BIT(AC_ERR_SHAPE) | BIT(AC_ERR_UNSUPPORTED);
            }
            got = ac_decode_validate(&p, &e);
            snprintf(out->line, sizeof out->line, "api-large decode B=%d Hq=%d Hkv=%d D=%d Lq=%d Lk=%d block=%d splits=%d",
                     batch, hq, hkv, d, lq, lk, bs, p.num_splits);
        }
        free(cuk);
    } else if (op == AC_OP_COMBINE) {
        static const int64_t rowss[] = {1, 1 << 20, INT32_MAX, (int64_t)INT32_MAX + 1};
        int64_t rows = rowss[rb(br) % 4];
        int32_t splits = PICKB(br, ((const int32_t[]){1, 4096, 4097}));
        int32_t dd = PICKB(br, ((const int32_t[]){1, 1024, 1025}));
        ac_combine_params p = {.dtype = AC_FP16, .rows = rows, .num_splits = splits, .head_dim = dd,
                               .o_part = (const float *)dummy_data, .lse_part = (const float *)dummy_data,
                               .o_f32 = (float *)dummy_data};
        if (rows > INT32_MAX || splits > AC_MAX_SPLITS || dd > AC_MAX_HEAD_DIM) want |= BIT(AC_ERR_SHAPE);
        got = ac_combine_validate(&p, &e);
        snprintf(out->line, sizeof out->line, "api-large combine rows=%lld splits=%d D=%d", (long long)rows, splits, dd);
    } else {
        int32_t ntok = PICKB(br, ((const int32_t[]){0, 1, 1 << 16})), bs = PICKB(br, bss);
        int32_t nb = PICKB(br, ((const int32_t[]){1, 1 << 16, INT32_MAX}));
        int64_t *slots = malloc(sizeof(int64_t) * (size_t)(ntok ? ntok : 1));
        if (!slots) {
            out->kind = AC_FUZZ_SKIPPED;
            return;
        }
        int64_t nslots = (int64_t)nb * bs;
        for (int32_t t = 0; t < ntok; t++) slots[t] = t < nslots ? t : -1;
        ac_store_params p = {.dtype = AC_BF16, .num_tokens = ntok, .heads_kv = hkv, .head_dim = d,
                                .num_blocks = nb, .block_size = bs, .k_new = dummy_data, .v_new = dummy_data,
                                .k_cache = dummy_data, .v_cache = dummy_data, .slot_mapping = slots,
                                .slot_mapping_i64 = 1, .slot_mapping_host = slots};
        if (d > AC_MAX_HEAD_DIM) want |= BIT(AC_ERR_SHAPE);
        got = ac_store_validate(&p, &e);
        free(slots);
        snprintf(out->line, sizeof out->line, "api-large store tokens=%d Hkv=%d D=%d pool=%d block=%d", ntok, hkv, d, nb, bs);
    }
    free(cu), free(lens), free(table);
    out->code = got;
    char ws[160];
    ac_fuzz_mask_str(want, ws, sizeof ws);
    if (want ? !(want & BIT(got)) : got != AC_OK) {
        out->kind = AC_FUZZ_FINDING;
        snprintf(out->why, sizeof out->why, "validate (large shape): expected %s, got %s (%s)", ws, ac_status_name(got), e.msg);
    } else {
        out->kind = got ? AC_FUZZ_REJECTED : AC_FUZZ_PASS;
        snprintf(out->why, sizeof out->why, "%s%s%s", ac_status_name(got), got ? ": " : "", got ? e.msg : "");
    }
    if (env->verbose) fprintf(log, "%s\n%s: %s\n", out->line, out->kind == AC_FUZZ_FINDING ? "FINDING" : "ok", out->why);
}

void ac_fuzz_api_run(const uint8_t *data, size_t size, const ac_fuzz_env *env, ac_fuzz_outcome *out)
{
    ac_fuzz_outcome_free(out);
    FILE *log = env->log ? env->log : stderr;
    static const ac_op ops[] = {AC_OP_PREFILL, AC_OP_DECODE, AC_OP_COMBINE, AC_OP_STORE};
    breader br = {data, size, 0};
    uint32_t op_byte = rb(&br);
    ac_op op = ops[op_byte % 4];
    if (op_byte & 0x80) { /* a quarter of the op byte's values: large shapes, validation only */
        if (op_byte & 0x40) {
            api_large(op, &br, env, out);
            return;
        }
    }
    uint8_t base[16] = {0};
    for (int i = 0; i < 16; i++) base[i] = (uint8_t)rb(&br);
    breader bb = {base, sizeof base, 0};
    ac_case c;
    ac_error e;
    ac_tensors t;
    ac_outputs o;
    call k;
    memset(&t, 0, sizeof t);
    memset(&o, 0, sizeof o);
    memset(&k, 0, sizeof k);
    char line[512];
    if (base_case(op, &bb, &c, &e) || ac_gen(&c, &t, &e) || ac_outputs_alloc(&c, &o, &e) || build_call(&c, &t, &o, &k, &e)) {
        out->kind = AC_FUZZ_SKIPPED;
        snprintf(out->line, sizeof out->line, "api %s (no base call)", ac_op_name(op));
        snprintf(out->why, sizeof out->why, "base call: %s", e.msg);
        goto done;
    }
    ac_case_line(&c, line, sizeof line);
    int len = snprintf(out->line, sizeof out->line, "api %s [%s]", ac_op_name(op), line);
    uint32_t allowed = 0;
    int n_applied = 0;
    for (int i = 0; i < 4 && br.i + 3 <= br.n; i++) {
        uint32_t kind = rb(&br), a = rb(&br), b = rb(&br);
        char what[96] = "";
        uint32_t m = corrupt(&k, kind, a, b, what, sizeof what);
        if (!m) continue;
        allowed |= m;
        n_applied++;
        if (len > 0 && (size_t)len < sizeof out->line)
            len += snprintf(out->line + len, sizeof out->line - (size_t)len, " %s", what);
    }
    if (!n_applied) allowed = OKBIT;
    else if (allowed == OKBIT) allowed = OKBIT; /* only harmless ones */
    /* Snapshot the outputs (sentinel patterns from ac_outputs_alloc, or the
       cache contents for a store). */
    for (int i = 0; i < 4; i++)
        if (k.out_ptr[i] && k.out_bytes[i]) k.snap[i] = dup_or_null(k.out_ptr[i], k.out_bytes[i]);
    ac_error ev, er;
    ac_error_clear(&ev);
    ac_error_clear(&er);
    ac_status sv = call_validate(&k, &ev);
    ac_status sr = call_run(&k, &er);
    out->code = sr;
    char want[160];
    ac_fuzz_mask_str(allowed & ~OKBIT, want, sizeof want);
    out->kind = AC_FUZZ_PASS;
    if (sv != sr) {
        out->kind = AC_FUZZ_FINDING;
        snprintf(out->why, sizeof out->why, "validate says %s (%s) but the entry point returns %s (%s)",
                 ac_status_name(sv), ev.msg, ac_status_name(sr), er.msg);
    } else if (!(allowed & BIT(sr))) {
        out->kind = AC_FUZZ_FINDING;
        snprintf(out->why, sizeof out->why, "%s: expected %s%s, got %s (%s)",
                 n_applied ? "bad arguments" : "a valid call", (allowed & OKBIT) ? "AC_OK or " : "",
                 n_applied ? want : "AC_OK", ac_status_name(sr), er.msg);
    } else if (sr) {
        out->kind = AC_FUZZ_REJECTED;
        snprintf(out->why, sizeof out->why, "%s: %s", ac_status_name(sr), er.msg);
        for (int i = 0; i < 4; i++)
            if (k.snap[i] && memcmp(k.snap[i], k.out_ptr[i], k.out_bytes[i])) {
                out->kind = AC_FUZZ_FINDING;
                snprintf(out->why, sizeof out->why, "returned %s (%s) but output %d was written", ac_status_name(sr),
                         er.msg, i);
                break;
            }
    } else {
        snprintf(out->why, sizeof out->why, "ok");
    }
    if (env->verbose)
        fprintf(log, "%s\n%s: %s\n", out->line, out->kind == AC_FUZZ_FINDING ? "FINDING" : "ok", out->why);
done:
    free_call(&k);
    ac_outputs_free(&o);
    ac_tensors_free(&t);
    ac_case_free(&c);
}

/* Structure: [op][16 base bytes][corruptions of 3 bytes]. Mutations edit a
   base byte, add, change or drop a corruption. */
size_t ac_fuzz_api_mutate(uint8_t *data, size_t size, size_t max_size, uint64_t seed)
{
    ac_fuzz_rng r = {seed};
    if (max_size < 17) return size;
    if (size < 17) {
        for (size_t i = size; i < 17; i++) data[i] = (uint8_t)ac_fuzz_next(&r);
        size = 17;
    }
    size_t ncor = (size - 17) / 3;
    size = 17 + 3 * ncor;
    int steps = 1 + (int)ac_fuzz_below(&r, 2);
    for (int s = 0; s < steps; s++) {
        switch (ac_fuzz_below(&r, 6)) {
        case 0: data[0] = (uint8_t)ac_fuzz_next(&r); break;
        case 1: data[1 + ac_fuzz_below(&r, 16)] = (uint8_t)ac_fuzz_next(&r); break;
        case 2:
        case 3:
            if (ncor < 4 && size + 3 <= max_size) {
                for (int i = 0; i < 3; i++) data[size + (size_t)i] = (uint8_t)ac_fuzz_next(&r);
                size += 3;
                ncor++;
            }
            break;
        case 4:
            if (ncor) data[17 + 3 * ac_fuzz_below(&r, (uint32_t)ncor) + ac_fuzz_below(&r, 3)] = (uint8_t)ac_fuzz_next(&r);
            break;
        default:
            if (ncor) {
                size_t i = ac_fuzz_below(&r, (uint32_t)ncor);
                memmove(data + 17 + 3 * i, data + 17 + 3 * (i + 1), 3 * (ncor - i - 1));
                size -= 3;
                ncor--;
            }
            break;
        }
    }
    return size;
}
