/* Writes the seed files of corpus/ (prefill/, decode/, combine/, store/):
 * every feature of SEMANTICS.md once, small enough for the CPU oracle in CI,
 * plus invalid layouts with `expect error`. The files are canonical because
 * ac_casefile_save writes them; tests/test_casefile.c checks that, and that
 * each file meets its expectation under ac_case_validate.
 *
 * Regenerate (from the repository root, after building ac_common):
 *   cc -std=c11 -D_POSIX_C_SOURCE=200809L -Icommon corpus/make_corpus.c \
 *      build/libac_common.a -lm -o /tmp/make_corpus && /tmp/make_corpus corpus
 * Files found by fuzzers are added by hand (numbered after these) and never
 * regenerated: this program only writes the numbers it owns. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ac_casefile.h"
#include "ac_index.h"

static const char *root = "corpus";
static int written, failed;

static void die_on(ac_status st, const ac_error *e, const char *what)
{
    if (st) {
        fprintf(stderr, "make_corpus: %s: %s\n", what, e->msg);
        exit(1);
    }
}

/* A fresh file: op, dtype, heads, head dim, batch with lengths. */
static ac_casefile *mk(ac_op op, ac_dtype dt, int32_t hq, int32_t hkv, int32_t d, int32_t batch, const int32_t *lq,
                       const int32_t *lk, uint64_t seed)
{
    static ac_casefile f;
    ac_error e;
    ac_casefile_free(&f);
    ac_casefile_init(&f);
    f.c.op = op;
    f.c.dtype = dt;
    f.c.heads_q = hq;
    f.c.heads_kv = hkv;
    f.c.head_dim = d;
    die_on(ac_case_set_batch(&f.c, batch, &e), &e, "batch");
    for (int32_t b = 0; b < batch; b++) {
        f.c.seqlen_q[b] = lq[b];
        f.c.seqlen_k[b] = lk[b];
    }
    f.c.seed = seed;
    return &f;
}

/* Table layouts for a paged case. */
enum { SEQUENTIAL, PERMUTED, SHARED_PREFIX };

/* Give each sequence its used blocks (+ `extra` unused columns filled with
   `unused`), `spare` physical blocks never referenced. */
static void paged(ac_casefile *f, int32_t block_size, int layout, int32_t extra, int32_t unused, int32_t spare)
{
    ac_case *c = &f->c;
    ac_error e;
    c->paged = 1;
    c->block_size = block_size;
    int32_t mbps = 0, total = 0;
    for (int32_t b = 0; b < c->batch; b++) {
        int32_t u = ac_blocks_used(c->seqlen_k[b], block_size);
        if (u > mbps) mbps = u;
        total += u;
    }
    mbps += extra;
    if (mbps == 0) mbps = 1;
    die_on(ac_case_alloc_table(c, mbps, &e), &e, "table");
    int32_t next = 0;
    for (int32_t b = 0; b < c->batch; b++) {
        int32_t u = ac_blocks_used(c->seqlen_k[b], block_size);
        int32_t *row = c->block_table + (int64_t)b * mbps;
        for (int32_t i = 0; i < mbps; i++) row[i] = unused;
        for (int32_t i = 0; i < u; i++) {
            if (layout == SHARED_PREFIX && b > 0 && i < 2) row[i] = c->block_table[i]; /* row 0's first two */
            else row[i] = next++;
        }
    }
    c->num_blocks = next + spare;
    if (layout == PERMUTED) {
        /* A fixed permutation of the physical ids (multiplicative, n odd-safe):
           id -> (id * 7 + 3) mod num_blocks when gcd(7, n) == 1, else reversed. */
        int32_t n = c->num_blocks;
        for (int64_t i = 0; i < (int64_t)c->batch * mbps; i++) {
            int32_t *p = &c->block_table[i];
            int32_t b = (int32_t)(i / mbps), col = (int32_t)(i % mbps);
            if (col >= ac_blocks_used(c->seqlen_k[b], block_size)) continue;
            *p = (n % 7) ? (int32_t)(((int64_t)*p * 7 + 3) % n) : n - 1 - *p;
        }
    }
    (void)total;
}

static void emit(ac_casefile *f, const char *dir, const char *name, const char *title, const char *note,
                 ac_status expect)
{
    ac_error e;
    char path[512];
    snprintf(path, sizeof path, "%s/%s/%s.case", root, dir, name);
    snprintf(f->title, sizeof f->title, "%s", title);
    die_on(ac_casefile_set_note(f, note, &e), &e, "note");
    f->expect_error = expect != AC_OK;
    f->expect_code = expect;
    ac_status got = ac_case_validate(&f->c, &e);
    if (got != expect) {
        fprintf(stderr, "make_corpus: %s: expected %s, validate gives %s (%s)\n", path, ac_status_name(expect),
                ac_status_name(got), got ? e.msg : "");
        failed++;
    }
    die_on(ac_casefile_save(path, f, &e), &e, path);
    written++;
}

#define L(...) ((const int32_t[]){__VA_ARGS__})
#define OK AC_OK

static void prefill(void)
{
    const char *P = "prefill";
    ac_casefile *f;

    f = mk(AC_OP_PREFILL, AC_BF16, 4, 4, 64, 2, L(17, 33), L(17, 33), 101);
    emit(f, P, "0001-contiguous-basic", "contiguous varlen prefill, no causal mask, Lq = Lk, MHA", NULL, OK);

    f = mk(AC_OP_PREFILL, AC_FP16, 4, 2, 64, 3, L(9, 1, 24), L(9, 1, 24), 102);
    f->c.causal = AC_CAUSAL_TOP_LEFT;
    emit(f, P, "0002-contiguous-causal-tl", "top-left causal (SDPA is_causal) with Lq = Lk, fp16", NULL, OK);

    f = mk(AC_OP_PREFILL, AC_BF16, 4, 2, 64, 2, L(5, 12), L(40, 29), 103);
    f->c.causal = AC_CAUSAL_BOTTOM_RIGHT;
    emit(f, P, "0003-br-lq-lt-lk-chunked", "bottom-right causal with Lq < Lk (chunked prefill)",
         "Query i sees keys j <= i + (Lk - Lq): the last query sees every key.", OK);

    f = mk(AC_OP_PREFILL, AC_BF16, 2, 1, 64, 2, L(20, 9), L(6, 9), 104);
    f->c.causal = AC_CAUSAL_BOTTOM_RIGHT;
    emit(f, P, "0004-br-lq-gt-lk", "bottom-right causal with Lq > Lk: leading rows see no key",
         "Sequence 0: rows 0..13 have an empty allowed set: O = 0 and LSE = -inf.\n"
         "A kernel that clamps the diagonal offset at 0 gives them keys.", OK);

    f = mk(AC_OP_PREFILL, AC_FP16, 2, 2, 64, 2, L(20, 3), L(6, 11), 105);
    f->c.causal = AC_CAUSAL_TOP_LEFT;
    emit(f, P, "0005-tl-lq-ne-lk", "top-left causal with Lq > Lk and Lq < Lk", NULL, OK);

    f = mk(AC_OP_PREFILL, AC_BF16, 8, 2, 128, 3, L(1, 1, 1), L(1, 77, 300), 106);
    f->c.causal = AC_CAUSAL_BOTTOM_RIGHT;
    emit(f, P, "0006-lq1", "single-query sequences (Lq = 1) in a prefill batch, BR", NULL, OK);

    f = mk(AC_OP_PREFILL, AC_BF16, 4, 4, 64, 3, L(5, 0, 7), L(0, 0, 7), 107);
    emit(f, P, "0007-lk0-and-lq0", "sequences with Lk = 0 (every row empty) and Lq = 0 beside a normal one",
         "Rows of sequence 0 have no key: O = 0, LSE = -inf (no NaN from 0/0).", OK);

    f = mk(AC_OP_PREFILL, AC_BF16, 4, 2, 64, 3, L(16, 7, 33), L(48, 17, 33), 108);
    f->c.causal = AC_CAUSAL_BOTTOM_RIGHT;
    paged(f, 16, SEQUENTIAL, 1, -1, 2);
    emit(f, P, "0008-paged-block16", "paged prefill, block size 16, lengths on and off block edges", NULL, OK);

    f = mk(AC_OP_PREFILL, AC_FP16, 4, 4, 64, 2, L(31, 33), L(64, 33), 109);
    f->c.causal = AC_CAUSAL_BOTTOM_RIGHT;
    paged(f, 32, SEQUENTIAL, 0, -1, 1);
    emit(f, P, "0009-paged-block32", "paged prefill, block size 32", NULL, OK);

    f = mk(AC_OP_PREFILL, AC_BF16, 2, 1, 64, 2, L(8, 3), L(300, 256), 110);
    f->c.causal = AC_CAUSAL_BOTTOM_RIGHT;
    paged(f, 256, SEQUENTIAL, 1, -1, 1);
    emit(f, P, "0010-paged-block256", "paged prefill, block size 256, one sequence crossing a block", NULL, OK);

    f = mk(AC_OP_PREFILL, AC_BF16, 4, 2, 64, 3, L(6, 13, 1), L(20, 13, 8), 111);
    f->c.causal = AC_CAUSAL_BOTTOM_RIGHT;
    paged(f, 7, SEQUENTIAL, 2, -1, 3);
    emit(f, P, "0011-paged-block7-odd", "paged prefill with an odd block size (7)",
         "Catches kernels that assume power-of-two block sizes (p >> log2, p & (bs - 1)).", OK);

    f = mk(AC_OP_PREFILL, AC_BF16, 4, 4, 64, 2, L(13, 9), L(13, 21), 112);
    f->c.mask = AC_MASK_BOOL;
    f->c.mask_density = 0.75f;
    emit(f, P, "0012-mask-bool-shared", "boolean mask shared by all heads, no causal", NULL, OK);

    f = mk(AC_OP_PREFILL, AC_FP16, 4, 2, 64, 2, L(13, 9), L(13, 21), 113);
    f->c.mask = AC_MASK_BOOL;
    f->c.mask_per_head = 1;
    f->c.mask_density = 0.5f;
    f->c.causal = AC_CAUSAL_BOTTOM_RIGHT;
    emit(f, P, "0013-mask-bool-per-head-br", "boolean mask per head intersected with BR causal", NULL, OK);

    f = mk(AC_OP_PREFILL, AC_BF16, 4, 4, 64, 2, L(11, 4), L(11, 30), 114);
    f->c.mask = AC_MASK_ADDITIVE;
    f->c.mask_density = 0.875f;
    emit(f, P, "0014-mask-additive-shared", "additive fp32 bias shared by heads, some -inf entries", NULL, OK);

    f = mk(AC_OP_PREFILL, AC_BF16, 8, 2, 64, 2, L(11, 4), L(11, 30), 115);
    f->c.mask = AC_MASK_ADDITIVE;
    f->c.mask_per_head = 1;
    f->c.mask_density = 0.75f;
    f->c.causal = AC_CAUSAL_TOP_LEFT;
    paged(f, 16, SEQUENTIAL, 0, -1, 0);
    emit(f, P, "0015-mask-additive-per-head-tl-paged", "additive bias per head with TL causal, paged", NULL, OK);

    f = mk(AC_OP_PREFILL, AC_BF16, 4, 4, 64, 2, L(9, 6), L(9, 12), 116);
    f->c.mask = AC_MASK_BOOL;
    f->c.mask_density = 0.0f;
    emit(f, P, "0016-mask-bool-all-false", "boolean mask with density 0: every row is empty",
         "Every row: O = 0 and LSE = -inf; a kernel dividing by the row sum gives NaN.", OK);

    f = mk(AC_OP_PREFILL, AC_BF16, 8, 2, 64, 2, L(12, 20), L(12, 20), 117);
    f->c.causal = AC_CAUSAL_TOP_LEFT;
    emit(f, P, "0017-gqa4", "GQA with group 4 (Hq = 8, Hkv = 2)",
         "Query head h reads KV head h / 4; h % Hkv is the classic bug.", OK);

    f = mk(AC_OP_PREFILL, AC_FP16, 16, 2, 64, 2, L(6, 10), L(24, 10), 118);
    f->c.causal = AC_CAUSAL_BOTTOM_RIGHT;
    paged(f, 16, PERMUTED, 1, -1, 2);
    emit(f, P, "0018-gqa8-paged", "GQA with group 8 (Hq = 16, Hkv = 2), paged", NULL, OK);

    f = mk(AC_OP_PREFILL, AC_BF16, 8, 1, 64, 2, L(10, 7), L(10, 19), 119);
    f->c.causal = AC_CAUSAL_BOTTOM_RIGHT;
    emit(f, P, "0019-mqa-hkv1", "MQA: one KV head for eight query heads", NULL, OK);

    f = mk(AC_OP_PREFILL, AC_BF16, 4, 2, 128, 2, L(16, 25), L(32, 25), 120);
    f->c.causal = AC_CAUSAL_BOTTOM_RIGHT;
    paged(f, 16, SEQUENTIAL, 0, -1, 1);
    emit(f, P, "0020-d128", "head dim 128, paged, BR", NULL, OK);

    f = mk(AC_OP_PREFILL, AC_FP16, 2, 1, 80, 2, L(9, 14), L(9, 14), 121);
    f->c.causal = AC_CAUSAL_TOP_LEFT;
    emit(f, P, "0021-d80", "head dim 80 (not a power of two)", NULL, OK);

    f = mk(AC_OP_PREFILL, AC_BF16, 2, 2, 96, 2, L(9, 14), L(20, 14), 122);
    f->c.causal = AC_CAUSAL_BOTTOM_RIGHT;
    emit(f, P, "0022-d96", "head dim 96 (not a power of two)", NULL, OK);

    f = mk(AC_OP_PREFILL, AC_BF16, 2, 1, 256, 2, L(8, 16), L(8, 40), 123);
    f->c.causal = AC_CAUSAL_BOTTOM_RIGHT;
    paged(f, 32, SEQUENTIAL, 0, -1, 0);
    emit(f, P, "0023-d256", "head dim 256, paged", NULL, OK);

    f = mk(AC_OP_PREFILL, AC_BF16, 4, 4, 64, 2, L(9, 17), L(9, 17), 124);
    f->c.scale_given = 1;
    f->c.scale = 1.0f;
    emit(f, P, "0024-scale-explicit-1", "explicit scale 1.0 (not the default 1/sqrt(D))",
         "Passing 1.0 where the default was meant is a real bug: the output must differ from the default.", OK);

    f = mk(AC_OP_PREFILL, AC_BF16, 4, 4, 64, 2, L(9, 17), L(9, 17), 125);
    f->c.scale_given = 1;
    f->c.scale = 0.0f;
    f->c.causal = AC_CAUSAL_TOP_LEFT;
    emit(f, P, "0025-scale-zero", "explicit scale 0.0: uniform attention over the allowed keys",
         "0.0 is a legal explicit scale and must not mean 'default'.", OK);

    f = mk(AC_OP_PREFILL, AC_FP16, 4, 4, 64, 1, L(12), L(12), 126);
    f->c.scale_given = 1;
    f->c.scale = -0.0f;
    emit(f, P, "0026-scale-negative-zero", "explicit scale -0.0: uniform attention as for +0.0", NULL, OK);

    f = mk(AC_OP_PREFILL, AC_BF16, 4, 4, 64, 1, L(12), L(30), 127);
    f->c.scale_given = 1;
    f->c.scale = 0.0625f;
    f->c.causal = AC_CAUSAL_BOTTOM_RIGHT;
    emit(f, P, "0027-scale-explicit-small", "explicit scale 1/16 (differs from 1/sqrt(64))", NULL, OK);

    static const struct { ac_dist d; const char *name, *title; } dists[] = {
        {AC_DIST_UNIFORM, "0028-dist-uniform", "uniform U(-1, 1) values"},
        {AC_DIST_LARGE, "0029-dist-large", "large values (N(0,1) * 8): saturated softmax, logits in the hundreds"},
        {AC_DIST_NEEDLE, "0030-dist-needle", "needle: one key per query dominates, at block and diagonal edges"},
        {AC_DIST_POSCODE, "0031-dist-poscode", "position code: V of key j encodes j, so the output names the keys seen"},
    };
    for (int i = 0; i < 4; i++) {
        f = mk(AC_OP_PREFILL, i % 2 ? AC_FP16 : AC_BF16, 4, 2, 64, 2, L(13, 7), L(29, 16), 128 + (uint64_t)i);
        f->c.causal = AC_CAUSAL_BOTTOM_RIGHT;
        f->c.dist = dists[i].d;
        paged(f, 16, SEQUENTIAL, 0, -1, 1);
        emit(f, P, dists[i].name, dists[i].title, NULL, OK);
    }

    f = mk(AC_OP_PREFILL, AC_BF16, 4, 2, 64, 2, L(10, 5), L(21, 5), 132);
    f->c.causal = AC_CAUSAL_BOTTOM_RIGHT;
    f->c.special = AC_SPECIAL_NAN_SLOTS | AC_SPECIAL_INF_SLOTS;
    paged(f, 16, SEQUENTIAL, 1, -1, 2);
    emit(f, P, "0032-paged-nan-inf-unused-slots", "NaN and Inf in every cache slot past the valid positions",
         "Slots 21..31 of sequence 0, 5..15 of sequence 1 and the spare blocks hold NaN/Inf:\n"
         "no output bit may change (masking must happen before the max, never by multiplying by 0).", OK);

    f = mk(AC_OP_PREFILL, AC_BF16, 4, 2, 64, 3, L(8, 3, 11), L(8, 3, 40), 133);
    f->c.causal = AC_CAUSAL_BOTTOM_RIGHT;
    f->c.special = AC_SPECIAL_GARBAGE_TABLE;
    paged(f, 16, SEQUENTIAL, 3, 0, 1);
    /* Unused entries hold garbage explicitly, not only by the generator flag. */
    {
        static const int32_t junk[] = {INT32_MIN, -1, 2147483647, 1000000, -7, 5};
        int32_t m = f->c.max_blocks_per_seq;
        for (int32_t b = 0; b < f->c.batch; b++)
            for (int32_t i = ac_blocks_used(f->c.seqlen_k[b], 16); i < m; i++)
                f->c.block_table[(int64_t)b * m + i] = junk[(b + i) % 6];
    }
    emit(f, P, "0033-paged-garbage-unused-table-entries", "garbage (-1, INT32_MIN, huge) in unread block-table entries",
         "Entries past ceil(seqlen_k / block_size) are never read and never validated.", OK);

    f = mk(AC_OP_PREFILL, AC_FP16, 4, 2, 64, 3, L(4, 6, 9), L(40, 38, 33), 134);
    f->c.causal = AC_CAUSAL_BOTTOM_RIGHT;
    paged(f, 16, SHARED_PREFIX, 0, -1, 1);
    emit(f, P, "0034-paged-shared-prefix", "prefix caching: three sequences share their first two blocks",
         "Shared blocks are read-only and read by several sequences.", OK);

    f = mk(AC_OP_PREFILL, AC_BF16, 4, 4, 64, 3, L(7, 12, 1), L(50, 12, 70), 135);
    f->c.causal = AC_CAUSAL_BOTTOM_RIGHT;
    paged(f, 16, PERMUTED, 1, -1, 3);
    emit(f, P, "0035-paged-permuted-table", "permuted block table: logical order differs from physical order", NULL,
         OK);

    f = mk(AC_OP_PREFILL, AC_BF16, 4, 4, 64, 2, L(20, 9), L(6, 9), 136);
    f->c.causal = AC_CAUSAL_BOTTOM_RIGHT;
    paged(f, 7, PERMUTED, 1, -1, 2);
    emit(f, P, "0036-paged-br-lq-gt-lk-block7", "BR with Lq > Lk on a paged cache with odd block size 7", NULL, OK);

    /* Invalid layouts: each must be rejected with the named error before any launch. */
    f = mk(AC_OP_PREFILL, AC_BF16, 4, 2, 64, 2, L(8, 8), L(20, 8), 190);
    paged(f, 16, SEQUENTIAL, 0, -1, 0);
    f->c.block_table[1] = f->c.num_blocks;
    emit(f, P, "0900-err-table-entry-out-of-range", "used block-table entry equals num_blocks",
         "block_table[0][1] = num_blocks: one past the pool.", AC_ERR_BLOCK_TABLE);

    f = mk(AC_OP_PREFILL, AC_BF16, 4, 2, 64, 2, L(8, 8), L(20, 8), 191);
    paged(f, 16, SEQUENTIAL, 1, -1, 0);
    f->c.block_table[f->c.max_blocks_per_seq] = -1;
    emit(f, P, "0901-err-table-entry-negative", "used block-table entry is -1", NULL, AC_ERR_BLOCK_TABLE);

    f = mk(AC_OP_PREFILL, AC_BF16, 4, 2, 64, 2, L(8, 8), L(20, 8), 192);
    paged(f, 16, SEQUENTIAL, 0, -1, 2);
    f->c.seqlen_k[0] = 33;
    emit(f, P, "0902-err-seqlen-beyond-capacity", "seqlen_k beyond max_blocks_per_seq * block_size",
         "seqlen_k[0] = 33 with 2 columns of 16 slots.", AC_ERR_CAPACITY);

    f = mk(AC_OP_PREFILL, AC_BF16, 6, 4, 64, 1, L(8), L(8), 193);
    emit(f, P, "0903-err-gqa-not-multiple", "heads_q % heads_kv != 0 (6 % 4)", NULL, AC_ERR_GQA);

    f = mk(AC_OP_PREFILL, AC_BF16, 4, 4, 64, 2, L(8, -1), L(8, 8), 194);
    emit(f, P, "0904-err-negative-seqlen", "negative query length (cu_seqlens would decrease)",
         "Per-sequence lengths make a decreasing cu_seqlens impossible except through a negative length.",
         AC_ERR_SHAPE);

    f = mk(AC_OP_PREFILL, AC_BF16, 2, 4, 64, 1, L(8), L(8), 195);
    emit(f, P, "0905-err-hkv-gt-hq", "more KV heads than query heads", NULL, AC_ERR_SHAPE);

    f = mk(AC_OP_PREFILL, AC_BF16, 4, 4, 64, 1, L(8), L(8), 196);
    paged(f, 16, SEQUENTIAL, 0, -1, 0);
    f->c.block_size = 0;
    emit(f, P, "0906-err-block-size-zero", "block size 0", NULL, AC_ERR_SHAPE);

    f = mk(AC_OP_PREFILL, AC_BF16, 4, 4, 0, 1, L(8), L(8), 197);
    emit(f, P, "0907-err-head-dim-zero", "head dim 0", NULL, AC_ERR_SHAPE);
}

static void decode(void)
{
    const char *D = "decode";
    ac_casefile *f;
#define DEC(seed, dt, hq, hkv, d, n, lk) mk(AC_OP_DECODE, dt, hq, hkv, d, n, L(1, 1, 1, 1, 1, 1, 1, 1), lk, seed)

    f = DEC(201, AC_BF16, 8, 2, 128, 3, L(37, 64, 5));
    f->c.causal = AC_CAUSAL_BOTTOM_RIGHT;
    f->c.num_splits = 1;
    paged(f, 16, SEQUENTIAL, 1, -1, 1);
    emit(f, D, "0001-splits1", "decode, one split (no combine)", NULL, OK);

    f = DEC(202, AC_BF16, 8, 2, 128, 3, L(37, 64, 5));
    f->c.causal = AC_CAUSAL_BOTTOM_RIGHT;
    f->c.num_splits = 3;
    paged(f, 16, SEQUENTIAL, 1, -1, 1);
    emit(f, D, "0002-splits3", "decode, 3 splits (uneven: 3, 4 and 1 blocks)", NULL, OK);

    f = DEC(203, AC_FP16, 4, 1, 64, 2, L(40, 9));
    f->c.causal = AC_CAUSAL_BOTTOM_RIGHT;
    f->c.num_splits = 16;
    paged(f, 16, PERMUTED, 0, -1, 2);
    emit(f, D, "0003-more-splits-than-blocks", "decode, 16 splits over 3 and 1 blocks: most splits are empty",
         "Empty splits have LSE = -inf and must drop out of the combine.", OK);

    f = DEC(204, AC_BF16, 8, 1, 128, 4, L(1, 17, 250, 64));
    f->c.causal = AC_CAUSAL_BOTTOM_RIGHT;
    f->c.num_splits = 0;
    paged(f, 16, PERMUTED, 1, -1, 2);
    emit(f, D, "0004-splits-auto", "decode, automatic split count, mixed lengths, MQA", NULL, OK);

    f = mk(AC_OP_DECODE, AC_BF16, 4, 2, 64, 2, L(4, 8), L(30, 8), 205);
    f->c.causal = AC_CAUSAL_BOTTOM_RIGHT;
    f->c.num_splits = 2;
    paged(f, 16, SEQUENTIAL, 0, -1, 1);
    emit(f, D, "0005-speculative-lq4-lq8", "speculative decode: 4 and 8 queries at the end, BR",
         "Sequence 1 has Lq = Lk = 8: BR equals TL there.", OK);

    f = DEC(206, AC_BF16, 4, 4, 64, 2, L(30, 1));
    f->c.causal = AC_CAUSAL_TOP_LEFT;
    f->c.num_splits = 1;
    paged(f, 16, SEQUENTIAL, 0, -1, 0);
    emit(f, D, "0006-tl-lq1-sees-key0", "TL causal with Lq = 1 < Lk: the query sees only key 0",
         "The classic decode bug, stated as a contract: TL means j <= i, so only key 0.", OK);

    f = DEC(207, AC_FP16, 4, 2, 64, 3, L(20, 7, 1));
    f->c.causal = AC_CAUSAL_BOTTOM_RIGHT;
    f->c.num_splits = 3;
    paged(f, 7, SEQUENTIAL, 1, -1, 2);
    emit(f, D, "0007-block7", "decode on odd block size 7, 3 splits", NULL, OK);

    f = DEC(208, AC_BF16, 4, 1, 64, 2, L(300, 256));
    f->c.causal = AC_CAUSAL_BOTTOM_RIGHT;
    f->c.num_splits = 2;
    paged(f, 256, SEQUENTIAL, 0, -1, 0);
    emit(f, D, "0008-block256", "decode on block size 256, split on the block edge", NULL, OK);

    f = DEC(209, AC_BF16, 8, 1, 128, 2, L(70, 33));
    f->c.causal = AC_CAUSAL_BOTTOM_RIGHT;
    f->c.num_splits = 2;
    f->c.special = AC_SPECIAL_NAN_SLOTS;
    paged(f, 32, SEQUENTIAL, 1, -1, 2);
    emit(f, D, "0009-nan-unused-slots", "NaN in every cache slot past seqlen_k", NULL, OK);

    f = DEC(210, AC_BF16, 8, 2, 64, 3, L(16, 1, 47));
    f->c.causal = AC_CAUSAL_BOTTOM_RIGHT;
    f->c.num_splits = 4;
    f->c.special = AC_SPECIAL_GARBAGE_TABLE | AC_SPECIAL_INF_SLOTS;
    paged(f, 16, SEQUENTIAL, 2, INT32_MIN, 1);
    emit(f, D, "0010-garbage-table-inf-slots", "INT32_MIN in unread table entries and Inf in unread slots", NULL, OK);

    f = DEC(211, AC_FP16, 4, 4, 64, 3, L(45, 40, 33));
    f->c.causal = AC_CAUSAL_BOTTOM_RIGHT;
    f->c.num_splits = 2;
    paged(f, 16, SHARED_PREFIX, 0, -1, 0);
    emit(f, D, "0011-shared-prefix", "decode of three sequences sharing a two-block prefix", NULL, OK);

    f = DEC(212, AC_BF16, 4, 2, 64, 3, L(0, 12, 0));
    f->c.causal = AC_CAUSAL_BOTTOM_RIGHT;
    f->c.num_splits = 2;
    paged(f, 16, SEQUENTIAL, 0, -1, 1);
    emit(f, D, "0012-lk0", "decode of sequences with no key yet (Lk = 0): O = 0, LSE = -inf", NULL, OK);

    f = DEC(213, AC_BF16, 2, 1, 256, 2, L(90, 31));
    f->c.causal = AC_CAUSAL_BOTTOM_RIGHT;
    f->c.num_splits = 3;
    f->c.scale_given = 1;
    f->c.scale = 0.125f;
    paged(f, 16, PERMUTED, 0, -1, 1);
    emit(f, D, "0013-d256-explicit-scale", "decode, head dim 256, explicit scale 1/8", NULL, OK);

    f = DEC(214, AC_FP16, 4, 4, 96, 2, L(33, 16));
    f->c.causal = AC_CAUSAL_NONE;
    f->c.num_splits = 2;
    f->c.dist = AC_DIST_POSCODE;
    paged(f, 16, SEQUENTIAL, 0, -1, 0);
    emit(f, D, "0014-d96-poscode", "decode, head dim 96, position-coded values (which keys were seen)", NULL, OK);

    f = DEC(215, AC_BF16, 8, 8, 64, 2, L(64, 48));
    f->c.causal = AC_CAUSAL_BOTTOM_RIGHT;
    f->c.num_splits = 4;
    f->c.dist = AC_DIST_LARGE;
    paged(f, 16, SEQUENTIAL, 0, -1, 0);
    emit(f, D, "0015-large-splits4", "decode with saturated logits over 4 splits (combine rescaling)", NULL, OK);

    f = DEC(290, AC_BF16, 4, 4, 64, 1, L(20));
    f->c.num_splits = 1;
    emit(f, D, "0900-err-contiguous", "decode on a contiguous cache (decode needs paged)", NULL, AC_ERR_UNSUPPORTED);

    f = mk(AC_OP_DECODE, AC_BF16, 4, 4, 64, 1, L(9), L(20), 291);
    f->c.num_splits = 1;
    paged(f, 16, SEQUENTIAL, 0, -1, 0);
    emit(f, D, "0901-err-lq9", "decode step with 9 queries (at most 8)", NULL, AC_ERR_SHAPE);

    f = DEC(292, AC_BF16, 4, 4, 64, 2, L(20, 40));
    f->c.num_splits = 2;
    paged(f, 16, SEQUENTIAL, 0, -1, 0);
    f->c.block_table[f->c.max_blocks_per_seq + 2] = 1000;
    emit(f, D, "0902-err-table-entry-out-of-range", "decode with a used table entry past the pool",
         "block_table[1][2] = 1000: the last used entry of sequence 1.", AC_ERR_BLOCK_TABLE);

    f = DEC(293, AC_BF16, 4, 4, 64, 2, L(20, 40));
    f->c.num_splits = 2;
    paged(f, 16, SEQUENTIAL, 0, -1, 0);
    f->c.seqlen_k[0] = 49;
    emit(f, D, "0903-err-capacity", "decode with seqlen_k past the table's capacity", NULL, AC_ERR_CAPACITY);

    f = DEC(294, AC_BF16, 4, 4, 64, 1, L(0));
    f->c.seqlen_q[0] = 0;
    f->c.num_splits = 1;
    paged(f, 16, SEQUENTIAL, 0, -1, 1);
    emit(f, D, "0904-err-lq0", "decode step with no query (Lq = 0)", NULL, AC_ERR_SHAPE);
#undef DEC
}

static void combine(void)
{
    const char *C = "combine";
    ac_casefile *f;
    f = mk(AC_OP_COMBINE, AC_BF16, 4, 4, 64, 2, L(1, 3), L(40, 40), 301);
    f->c.num_splits = 2;
    emit(f, C, "0001-splits2", "combine two split partials per (query, head)", NULL, OK);

    f = mk(AC_OP_COMBINE, AC_FP16, 8, 2, 128, 3, L(1, 1, 4), L(64, 17, 90), 302);
    f->c.num_splits = 5;
    emit(f, C, "0002-splits5", "combine five partials, GQA shape", NULL, OK);

    f = mk(AC_OP_COMBINE, AC_BF16, 4, 4, 64, 2, L(1, 2), L(3, 10), 303);
    f->c.num_splits = 8;
    emit(f, C, "0003-empty-splits", "combine with more splits than keys: empty splits (LSE = -inf)",
         "Empty splits must contribute nothing; their O_s is never read.", OK);

    f = mk(AC_OP_COMBINE, AC_BF16, 4, 4, 64, 2, L(2, 1), L(0, 0), 304);
    f->c.num_splits = 4;
    emit(f, C, "0004-all-empty-rows", "combine where every split of every row is empty",
         "Every row: O = 0 and LSE = -inf (no NaN from exp(-inf - -inf)).", OK);

    f = mk(AC_OP_COMBINE, AC_BF16, 4, 4, 64, 3, L(1, 1, 2), L(5, 0, 33), 305);
    f->c.num_splits = 6;
    f->c.special = AC_SPECIAL_NAN_PARTIALS;
    emit(f, C, "0005-nan-partials-in-empty-splits", "NaN in O_s of empty splits must not reach the output", NULL, OK);

    f = mk(AC_OP_COMBINE, AC_FP16, 4, 4, 64, 2, L(3, 1), L(50, 70), 306);
    f->c.num_splits = 3;
    f->c.dist = AC_DIST_LARGE;
    emit(f, C, "0006-large-lse-spread", "combine with LSE values far apart (rescaling by the max LSE)", NULL, OK);

    f = mk(AC_OP_COMBINE, AC_BF16, 2, 1, 256, 2, L(1, 1), L(20, 20), 307);
    f->c.num_splits = 1;
    emit(f, C, "0007-splits1-d256", "combine of a single split (identity), head dim 256", NULL, OK);

    f = mk(AC_OP_COMBINE, AC_BF16, 4, 4, 64, 1, L(1), L(20), 390);
    f->c.num_splits = 0;
    emit(f, C, "0900-err-splits0", "combine of zero splits", NULL, AC_ERR_SHAPE);
}

/* Store: sequence b appends seqlen_q[b] tokens at positions
   [seqlen_k[b] - seqlen_q[b], seqlen_k[b]); token slots follow the table. */
static void store_slots(ac_casefile *f, int pad_every)
{
    ac_case *c = &f->c;
    ac_error e;
    int32_t n = (int32_t)ac_case_total_q(c);
    die_on(ac_case_alloc_slots(c, n, &e), &e, "slots");
    int32_t t = 0;
    for (int32_t b = 0; b < c->batch; b++) {
        const int32_t *row = c->block_table + (int64_t)b * c->max_blocks_per_seq;
        for (int32_t i = 0; i < c->seqlen_q[b]; i++, t++) {
            int32_t p = c->seqlen_k[b] - c->seqlen_q[b] + i;
            c->slot_mapping[t] = (pad_every && t % pad_every == pad_every - 1) ? -1 : ac_pos_slot(row, p, c->block_size);
        }
    }
}

static void store(void)
{
    const char *S = "store";
    const char *note = "Sequence b appends seqlen_q[b] tokens ending at position seqlen_k[b]; slot_mapping follows\n"
                       "the block table; -1 tokens are padding and write nothing.";
    ac_casefile *f;

    f = mk(AC_OP_STORE, AC_BF16, 4, 2, 64, 2, L(5, 1), L(20, 33), 401);
    paged(f, 16, SEQUENTIAL, 0, -1, 1);
    store_slots(f, 0);
    emit(f, S, "0001-i32", "store through an int32 slot mapping", note, OK);

    f = mk(AC_OP_STORE, AC_FP16, 4, 4, 128, 2, L(5, 1), L(20, 33), 402);
    paged(f, 16, PERMUTED, 1, -1, 2);
    store_slots(f, 0);
    f->c.slot_mapping_i64 = 1;
    emit(f, S, "0002-i64-permuted", "store through an int64 slot mapping on a permuted table", note, OK);

    f = mk(AC_OP_STORE, AC_BF16, 2, 2, 64, 3, L(8, 3, 6), L(8, 19, 6), 403);
    paged(f, 16, SEQUENTIAL, 0, -1, 1);
    store_slots(f, 3);
    emit(f, S, "0003-padding-i32", "store with -1 padding tokens (int32)", note, OK);

    f = mk(AC_OP_STORE, AC_BF16, 2, 2, 64, 2, L(8, 3), L(40, 3), 404);
    paged(f, 16, SEQUENTIAL, 0, -1, 1);
    store_slots(f, 3);
    f->c.slot_mapping_i64 = 1;
    emit(f, S, "0004-padding-i64", "store with -1 padding tokens (int64)", note, OK);

    f = mk(AC_OP_STORE, AC_BF16, 2, 1, 64, 2, L(4, 2), L(10, 2), 405);
    paged(f, 16, SEQUENTIAL, 0, -1, 1);
    store_slots(f, 1);
    emit(f, S, "0005-all-padding", "store where every token is padding: nothing is written", note, OK);

    f = mk(AC_OP_STORE, AC_FP16, 4, 2, 80, 2, L(9, 13), L(16, 13), 406);
    paged(f, 7, PERMUTED, 1, -1, 2);
    store_slots(f, 0);
    emit(f, S, "0006-block7", "store across odd block size 7 (tokens straddle blocks)", note, OK);

    f = mk(AC_OP_STORE, AC_BF16, 2, 1, 64, 2, L(3, 4), L(300, 4), 407);
    paged(f, 256, SEQUENTIAL, 0, -1, 0);
    store_slots(f, 0);
    f->c.slot_mapping_i64 = 1;
    emit(f, S, "0007-block256", "store into block size 256 across the block edge", note, OK);

    f = mk(AC_OP_STORE, AC_BF16, 2, 2, 64, 2, L(4, 4), L(4, 4), 408);
    paged(f, 16, SEQUENTIAL, 0, -1, 0);
    store_slots(f, 0);
    f->c.special = AC_SPECIAL_NAN_SLOTS;
    emit(f, S, "0008-nan-cache-untouched", "store into a cache whose other slots hold NaN: they stay as they were",
         note, OK);

    f = mk(AC_OP_STORE, AC_BF16, 2, 2, 64, 2, L(3, 3), L(10, 10), 490);
    paged(f, 16, SEQUENTIAL, 0, -1, 0);
    store_slots(f, 0);
    f->c.slot_mapping[4] = f->c.slot_mapping[1];
    emit(f, S, "0900-err-slot-collision", "two tokens mapped to one slot", "slot_mapping[1] == slot_mapping[4].",
         AC_ERR_SLOT);

    f = mk(AC_OP_STORE, AC_BF16, 2, 2, 64, 2, L(3, 3), L(10, 10), 491);
    paged(f, 16, SEQUENTIAL, 0, -1, 0);
    store_slots(f, 0);
    f->c.slot_mapping[2] = (int64_t)f->c.num_blocks * f->c.block_size;
    f->c.slot_mapping_i64 = 1;
    emit(f, S, "0901-err-slot-out-of-range", "slot equal to num_blocks * block_size (one past the pool)", NULL,
         AC_ERR_SLOT);

    f = mk(AC_OP_STORE, AC_BF16, 2, 2, 64, 2, L(3, 3), L(10, 10), 492);
    paged(f, 16, SEQUENTIAL, 0, -1, 0);
    store_slots(f, 0);
    f->c.slot_mapping[0] = -2;
    emit(f, S, "0902-err-slot-negative", "slot -2 (only -1 means padding)", NULL, AC_ERR_SLOT);

    f = mk(AC_OP_STORE, AC_BF16, 2, 2, 64, 1, L(3), L(10), 493);
    {
        ac_error e;
        die_on(ac_case_alloc_slots(&f->c, 3, &e), &e, "slots");
        for (int t = 0; t < 3; t++) f->c.slot_mapping[t] = 7 + t;
    }
    emit(f, S, "0903-err-contiguous", "store without a paged cache", NULL, AC_ERR_UNSUPPORTED);
}

int main(int argc, char **argv)
{
    if (argc > 1) root = argv[1];
    prefill();
    decode();
    combine();
    store();
    printf("make_corpus: %d files written under %s/, %d expectation mismatches\n", written, root, failed);
    return failed ? 1 : 0;
}
