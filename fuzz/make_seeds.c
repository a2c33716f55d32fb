/* Writes the fuzz targets' seed corpora: corpus/layout/ (case files: every
 * layout feature once, plus invalid layouts with their expected error),
 * corpus/combine-fuzz/ (partials records), corpus/api/ (argument records)
 * and corpus/casefile/ (parser inputs, malformed ones included).
 *
 *   build/fuzz/fuzz-make-seeds corpus        (from the repository root)
 *
 * Seeds own the numbers 0001-0899 of each folder; findings are added by
 * hand from 1000 up and never rewritten here. */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/stat.h>

#include "ac_fuzz.h"
#include "ac_index.h"

static const char *root = "corpus";
static int written, failed;

static void die_on(ac_status st, const ac_error *e, const char *what)
{
    if (st) {
        fprintf(stderr, "make_seeds: %s: %s\n", what, e->msg);
        exit(1);
    }
}

/* ---- layout ---------------------------------------------------------------- */

static ac_case *mk(ac_op op, ac_dtype dt, int32_t hq, int32_t hkv, int32_t d, int32_t batch, const int32_t *lq,
                   const int32_t *lk, uint64_t seed)
{
    static ac_case c;
    ac_error e;
    ac_case_free(&c);
    ac_case_init(&c);
    c.op = op;
    c.dtype = dt;
    c.heads_q = hq;
    c.heads_kv = hkv;
    c.head_dim = d;
    die_on(ac_case_set_batch(&c, batch, &e), &e, "batch");
    for (int32_t b = 0; b < batch; b++) {
        c.seqlen_q[b] = lq ? lq[b] : 0;
        c.seqlen_k[b] = lk[b];
    }
    c.causal = op == AC_OP_DECODE ? AC_CAUSAL_BOTTOM_RIGHT : AC_CAUSAL_NONE;
    c.seed = seed;
    return &c;
}

static void layout(ac_case *c, int32_t bs, ac_layout kind, int32_t extra)
{
    ac_error e;
    c->block_size = bs;
    die_on(ac_case_make_layout(c, kind, extra, &e), &e, "layout");
}

/* Save with the expectation the validation gives (the layout target checks
   that against its own statement of the rules on every replay). */
static void save_case(int num, const char *name, const char *note, ac_case *c)
{
    ac_casefile f;
    ac_error e;
    die_on(ac_casefile_from_case(&f, c, &e), &e, name);
    if (note) ac_casefile_set_note(&f, note, &e);
    ac_error ve;
    ac_status st = ac_case_validate(c, &ve);
    f.expect_error = st != AC_OK;
    f.expect_code = st;
    char path[512];
    snprintf(path, sizeof path, "%s/layout/%04d-%s.case", root, num, name);
    if (ac_casefile_save(path, &f, &e)) {
        fprintf(stderr, "make_seeds: %s\n", e.msg);
        failed++;
    } else {
        written++;
    }
    ac_casefile_free(&f);
}

static void layout_seeds(void)
{
    ac_case *c;
    ac_error e;
    /* valid layouts */
    c = mk(AC_OP_PREFILL, AC_BF16, 4, 2, 32, 2, (int32_t[]){5, 3}, (int32_t[]){20, 33}, 1);
    layout(c, 16, AC_LAYOUT_IDENTITY, 0);
    c->causal = AC_CAUSAL_BOTTOM_RIGHT;
    save_case(1, "prefill-identity-block16", "blocks in order, a spare column of -1", c);

    c = mk(AC_OP_PREFILL, AC_FP16, 2, 2, 16, 2, (int32_t[]){4, 4}, (int32_t[]){9, 6}, 2);
    layout(c, 1, AC_LAYOUT_PERMUTED, 3);
    save_case(2, "prefill-permuted-block1", "every key in its own block, drawn without replacement, 3 spare blocks", c);

    c = mk(AC_OP_PREFILL, AC_BF16, 2, 1, 16, 3, (int32_t[]){2, 3, 1}, (int32_t[]){17, 12, 21}, 3);
    layout(c, 4, AC_LAYOUT_SHARED_PREFIX, 1);
    c->causal = AC_CAUSAL_TOP_LEFT;
    save_case(3, "prefill-shared-prefix-block4", "leading full blocks shared by the three sequences", c);

    c = mk(AC_OP_PREFILL, AC_BF16, 2, 2, 24, 2, (int32_t[]){3, 2}, (int32_t[]){10, 7}, 4);
    c->special = AC_SPECIAL_GARBAGE_TABLE | AC_SPECIAL_NAN_SLOTS;
    layout(c, 3, AC_LAYOUT_PERMUTED, 2);
    c->causal = AC_CAUSAL_BOTTOM_RIGHT;
    save_case(4, "prefill-block3-garbage-table-nan-slots", "unused entries hold garbage, unread slots NaN", c);

    c = mk(AC_OP_PREFILL, AC_FP16, 4, 2, 16, 2, (int32_t[]){4, 3}, (int32_t[]){11, 5}, 5);
    layout(c, 5, AC_LAYOUT_IDENTITY, 0);
    c->mask = AC_MASK_BOOL;
    c->mask_per_head = 1;
    c->mask_density = 0.5f;
    c->causal = AC_CAUSAL_TOP_LEFT;
    save_case(5, "prefill-block5-bool-mask-per-head", NULL, c);

    /* Sampling with replacement: one physical block read at several logical
       positions of one sequence and by another one. */
    c = mk(AC_OP_PREFILL, AC_BF16, 2, 2, 16, 2, (int32_t[]){3, 2}, (int32_t[]){12, 8}, 6);
    layout(c, 4, AC_LAYOUT_IDENTITY, 0);
    c->block_table[0] = 2, c->block_table[1] = 2, c->block_table[2] = 2;
    c->block_table[c->max_blocks_per_seq + 0] = 2;
    save_case(6, "prefill-table-with-replacement", "block 2 at positions 0, 1, 2 of sequence 0 and 0 of sequence 1", c);

    c = mk(AC_OP_PREFILL, AC_BF16, 2, 2, 16, 3, (int32_t[]){3, 0, 2}, (int32_t[]){0, 5, 9}, 7);
    layout(c, 8, AC_LAYOUT_PERMUTED, 1);
    c->causal = AC_CAUSAL_BOTTOM_RIGHT;
    save_case(7, "prefill-lk0-lq0", "a sequence with no keys (empty rows: O = 0, LSE = -inf) and one with no queries", c);

    c = mk(AC_OP_DECODE, AC_BF16, 4, 1, 32, 3, (int32_t[]){1, 1, 1}, (int32_t[]){30, 16, 1}, 8);
    layout(c, 16, AC_LAYOUT_IDENTITY, 0);
    c->num_splits = 1;
    save_case(8, "decode-identity-block16-splits1", NULL, c);

    c = mk(AC_OP_DECODE, AC_FP16, 2, 2, 16, 2, (int32_t[]){1, 2}, (int32_t[]){40, 23}, 9);
    layout(c, 7, AC_LAYOUT_PERMUTED, 2);
    c->num_splits = 0;
    save_case(9, "decode-permuted-block7-splits-auto", NULL, c);

    c = mk(AC_OP_DECODE, AC_BF16, 2, 1, 16, 2, (int32_t[]){1, 1}, (int32_t[]){9, 4}, 10);
    layout(c, 2, AC_LAYOUT_IDENTITY, 0);
    c->num_splits = 33;
    save_case(10, "decode-more-splits-than-blocks", "33 splits over at most 5 blocks: empty splits (-inf) in the combine", c);

    c = mk(AC_OP_DECODE, AC_BF16, 4, 2, 16, 2, (int32_t[]){8, 5}, (int32_t[]){24, 30}, 11);
    c->special = AC_SPECIAL_INF_SLOTS;
    layout(c, 4, AC_LAYOUT_SHARED_PREFIX, 1);
    c->num_splits = 3;
    save_case(11, "decode-speculative-lq8-shared-prefix-inf-slots", NULL, c);

    c = mk(AC_OP_DECODE, AC_FP16, 8, 1, 8, 2, (int32_t[]){1, 3}, (int32_t[]){13, 29}, 12);
    c->special = AC_SPECIAL_GARBAGE_TABLE;
    layout(c, 8, AC_LAYOUT_PERMUTED, 0);
    c->num_splits = 2;
    save_case(12, "decode-gqa8-d8-garbage-table", NULL, c);

    c = mk(AC_OP_DECODE, AC_BF16, 2, 2, 16, 2, (int32_t[]){1, 1}, (int32_t[]){20, 11}, 13);
    c->dist = AC_DIST_POSCODE;
    layout(c, 4, AC_LAYOUT_PERMUTED, 0);
    c->num_splits = 4;
    save_case(13, "decode-poscode-block4", "V encodes the position: a wrong table entry shows in the output", c);

    /* seqlen_k exactly at the table's capacity (a valid edge). */
    c = mk(AC_OP_DECODE, AC_BF16, 2, 2, 16, 1, (int32_t[]){1}, (int32_t[]){12}, 14);
    layout(c, 4, AC_LAYOUT_IDENTITY, 0);
    die_on(ac_case_alloc_table(c, 3, &e), &e, "table");
    c->block_table[0] = 2, c->block_table[1] = 0, c->block_table[2] = 1;
    c->num_splits = 2;
    save_case(14, "decode-lk-at-capacity", "seqlen_k = max_blocks_per_seq * block_size = 12", c);

    c = mk(AC_OP_STORE, AC_BF16, 2, 2, 16, 2, NULL, (int32_t[]){9, 14}, 15);
    layout(c, 4, AC_LAYOUT_PERMUTED, 1);
    die_on(ac_case_make_store_slots(c, 3, 2, &e), &e, "slots");
    save_case(15, "store-i32-padding", NULL, c);

    c = mk(AC_OP_STORE, AC_FP16, 2, 1, 24, 3, NULL, (int32_t[]){17, 12, 21}, 16);
    c->special = AC_SPECIAL_NAN_SLOTS;
    layout(c, 4, AC_LAYOUT_SHARED_PREFIX, 0);
    die_on(ac_case_make_store_slots(c, 4, 1, &e), &e, "slots");
    c->slot_mapping_i64 = 1;
    save_case(16, "store-i64-shared-prefix-nan-slots", "the shared blocks are never written", c);

    c = mk(AC_OP_STORE, AC_BF16, 1, 1, 8, 1, NULL, (int32_t[]){3}, 17);
    layout(c, 1, AC_LAYOUT_IDENTITY, 0);
    die_on(ac_case_make_store_slots(c, 0, 4, &e), &e, "slots");
    save_case(17, "store-block1-all-padding", "four -1 tokens: nothing is written", c);

    /* invalid layouts: the named error */
    c = mk(AC_OP_DECODE, AC_BF16, 2, 2, 16, 2, (int32_t[]){1, 1}, (int32_t[]){16, 8}, 900);
    layout(c, 4, AC_LAYOUT_IDENTITY, 0);
    c->seqlen_k[1] = c->max_blocks_per_seq * 4 + 1;
    save_case(900, "err-decode-capacity-plus-one", "seqlen_k[1] one key past the table's capacity", c);

    c = mk(AC_OP_PREFILL, AC_BF16, 2, 2, 16, 2, (int32_t[]){2, 2}, (int32_t[]){9, 13}, 901);
    layout(c, 4, AC_LAYOUT_PERMUTED, 0);
    c->block_table[c->max_blocks_per_seq + 3] = c->num_blocks;
    save_case(901, "err-prefill-last-used-entry-is-pool-size", "block_table[1][3] = num_blocks", c);

    c = mk(AC_OP_PREFILL, AC_FP16, 2, 2, 16, 1, (int32_t[]){2}, (int32_t[]){5}, 902);
    layout(c, 2, AC_LAYOUT_IDENTITY, 0);
    c->block_table[1] = -1;
    save_case(902, "err-prefill-used-entry-minus-one", NULL, c);

    c = mk(AC_OP_DECODE, AC_BF16, 2, 2, 16, 1, (int32_t[]){1}, (int32_t[]){5}, 903);
    layout(c, 2, AC_LAYOUT_IDENTITY, 0);
    c->block_size = 0;
    save_case(903, "err-decode-block-size-0", NULL, c);

    c = mk(AC_OP_STORE, AC_BF16, 2, 2, 16, 2, NULL, (int32_t[]){6, 7}, 904);
    layout(c, 4, AC_LAYOUT_IDENTITY, 0);
    die_on(ac_case_make_store_slots(c, 2, 0, &e), &e, "slots");
    c->slot_mapping[3] = c->slot_mapping[0];
    save_case(904, "err-store-slot-collision", "tokens 0 and 3 both map to one slot", c);

    c = mk(AC_OP_STORE, AC_BF16, 2, 2, 16, 1, NULL, (int32_t[]){6}, 905);
    layout(c, 4, AC_LAYOUT_IDENTITY, 0);
    die_on(ac_case_make_store_slots(c, 2, 1, &e), &e, "slots");
    c->slot_mapping[1] = (int64_t)c->num_blocks * c->block_size;
    save_case(905, "err-store-slot-past-pool", NULL, c);

    c = mk(AC_OP_STORE, AC_BF16, 1, 1, 8, 1, NULL, (int32_t[]){4}, 906);
    layout(c, 4, AC_LAYOUT_IDENTITY, 0);
    die_on(ac_case_make_store_slots(c, 1, 0, &e), &e, "slots");
    c->slot_mapping[0] = (int64_t)INT32_MAX + 1;
    save_case(906, "err-store-i32-slot-overflow", "slot 2^31 in the int32 form", c);

    c = mk(AC_OP_PREFILL, AC_BF16, 3, 2, 16, 1, (int32_t[]){2}, (int32_t[]){5}, 907);
    layout(c, 4, AC_LAYOUT_IDENTITY, 0);
    save_case(907, "err-prefill-gqa-3-2", NULL, c);

    c = mk(AC_OP_DECODE, AC_BF16, 2, 2, 16, 1, (int32_t[]){9}, (int32_t[]){12}, 908);
    layout(c, 4, AC_LAYOUT_IDENTITY, 0);
    save_case(908, "err-decode-lq9", NULL, c);

    c = mk(AC_OP_PREFILL, AC_BF16, 2, 2, 16, 1, (int32_t[]){2}, (int32_t[]){5}, 909);
    layout(c, 4, AC_LAYOUT_IDENTITY, 0);
    c->num_blocks = 0;
    save_case(909, "err-prefill-pool-0", NULL, c);

    c = mk(AC_OP_DECODE, AC_BF16, 2, 2, 16, 2, (int32_t[]){1, 1}, (int32_t[]){5, 9}, 910);
    layout(c, 4, AC_LAYOUT_IDENTITY, 0);
    c->seqlen_k[0] = -1;
    save_case(910, "err-decode-negative-seqlen-k", NULL, c);
    ac_case_free(c);
}

/* ---- combine partials --------------------------------------------------------- */

static void save_bytes(const char *dir, int num, const char *name, const uint8_t *p, size_t n)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s/%04d-%s", root, dir, num, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, n, f) != n) {
        fprintf(stderr, "make_seeds: cannot write %s\n", path);
        failed++;
    } else {
        written++;
    }
    if (f) fclose(f);
}

static void save_partials(int num, const char *name, ac_fuzz_partials *p)
{
    static uint8_t buf[8192];
    size_t n = ac_fuzz_partials_encode(p, buf, sizeof buf);
    char nm[128];
    snprintf(nm, sizeof nm, "%s.bin", name);
    save_bytes("combine-fuzz", num, nm, buf, n);
}

static void partials(ac_fuzz_partials *p, ac_dtype dt, int32_t rows, int32_t splits, int32_t d, uint64_t seed)
{
    memset(p, 0, sizeof *p);
    p->dtype = dt;
    p->rows = rows;
    p->splits = splits;
    p->head_dim = d;
    p->seed = seed;
}

static void combine_seeds(void)
{
    ac_fuzz_partials p;
    partials(&p, AC_BF16, 2, 3, 8, 1);
    float a[] = {0.5f, -1.0f, 2.0f, 3.0f, 3.0f, -7.0f};
    memcpy(p.lse, a, sizeof a);
    save_partials(1, "finite-small", &p);

    partials(&p, AC_FP16, 3, 4, 16, 2);
    for (int i = 0; i < 12; i++) p.lse[i] = (i / 4 == 1) ? -INFINITY : (float)i;
    save_partials(2, "row-all-empty", &p);

    partials(&p, AC_BF16, 2, 4, 8, 3);
    float b[] = {1e30f, -1e30f, -INFINITY, -1e30f, -1e4f, 1e4f, 0.0f, -INFINITY};
    memcpy(p.lse, b, sizeof b);
    save_partials(3, "spread-1e30", &p);

    partials(&p, AC_BF16, 1, 3, 16, 4);
    float c[] = {FLT_MAX, -FLT_MAX, FLT_MAX};
    memcpy(p.lse, c, sizeof c);
    save_partials(4, "flt-max-ties", &p);

    partials(&p, AC_FP16, 2, 5, 8, 5);
    p.nan_in_empty = 1;
    float d[] = {-INFINITY, 1.0f, -INFINITY, 2.0f, -INFINITY, -INFINITY, -INFINITY, 0.0f, -INFINITY, -INFINITY};
    memcpy(p.lse, d, sizeof d);
    p.o_kind[0] = 6; /* Inf in an empty split */
    save_partials(5, "nan-inf-in-empty-splits", &p);

    partials(&p, AC_BF16, 1, 24, 1, 6);
    for (int i = 0; i < 24; i++) p.lse[i] = 88.72f;
    save_partials(6, "ties-24-splits-d1", &p);

    partials(&p, AC_FP16, 2, 3, 32, 7);
    float f[] = {103.98f, 0.0f, -103.98f, 87.33f, -87.33f, 1e-45f};
    memcpy(p.lse, f, sizeof f);
    p.o_kind[1] = 2, p.o_kind[4] = 4;
    save_partials(7, "exp-range-edges-large-and-denormal-o", &p);

    partials(&p, AC_BF16, 8, 1, 64, 8);
    for (int i = 0; i < 8; i++) p.lse[i] = i % 3 == 0 ? -INFINITY : (float)(i * 10);
    save_partials(8, "one-split-rows-d64", &p);
}

/* ---- api ------------------------------------------------------------------------ */

static void api_seeds(void)
{
    /* [op][16 base bytes][corruptions]: for each op a plain call and calls
       with one corruption of each kind. */
    static const char *const opn[] = {"prefill", "decode", "combine", "store"};
    static const int nkinds[] = {22, 22, 8, 11};
    int num = 1;
    for (int op = 0; op < 4; op++) {
        uint8_t rec[20];
        for (int i = 0; i < 17; i++) rec[i] = (uint8_t)(op + 7 * i + 3);
        rec[0] = (uint8_t)op;
        rec[2] = 2; /* batch 2 */
        char nm[64];
        snprintf(nm, sizeof nm, "%s-plain.bin", opn[op]);
        save_bytes("api", num++, nm, rec, 17);
        /* Large shapes, validation only (op byte >= 0xc0): index bytes into
           api_large's tables. Decode uses one explicit split here: the
           automatic count is the open finding corpus/open/api/1000. */
        static const uint8_t large[4][10] = {
            {0xc0, 4, 1, 2, 2, 3, 1, 1, 0, 0},  /* prefill B=65535 Hkv=8 Hq=32 D=128 Lq=128 Lk=4096, contiguous */
            {0xc1, 2, 3, 0, 0, 7, 1, 2, 2, 0},  /* decode B=513 Hq=Hkv=1024 D=8 Lq=8 Lk=4096 block=256 splits=1 */
            {0xc2, 0, 0, 0, 0, 2, 1, 1, 0, 0},  /* combine rows=2^31-1 splits=4096 D=1024 */
            {0xc3, 0, 3, 0, 1, 2, 1, 2, 0, 0},  /* store tokens=65536 Hkv=1024 D=64 pool=2^31-1 */
        };
        snprintf(nm, sizeof nm, "%s-large-shape.bin", opn[op]);
        save_bytes("api", 800 + op, nm, large[op], sizeof large[op]);
        for (int k = 0; k < nkinds[op]; k++) {
            rec[17] = (uint8_t)k, rec[18] = (uint8_t)(k * 5 + 1), rec[19] = (uint8_t)(k * 3 + 2);
            snprintf(nm, sizeof nm, "%s-corruption%02d.bin", opn[op], k);
            save_bytes("api", num++, nm, rec, 20);
        }
    }
}

/* ---- casefile --------------------------------------------------------------------- */

static void casefile_seeds(void)
{
    ac_case *c = mk(AC_OP_DECODE, AC_BF16, 4, 2, 16, 2, (int32_t[]){1, 2}, (int32_t[]){9, 20}, 1);
    layout(c, 4, AC_LAYOUT_PERMUTED, 1);
    c->scale_given = 1;
    c->scale = 0.125f;
    c->special = AC_SPECIAL_GARBAGE_TABLE;
    ac_casefile f;
    ac_error e;
    die_on(ac_casefile_from_case(&f, c, &e), &e, "casefile");
    ac_casefile_set_note(&f, "a note\nof two lines", &e);
    char *text;
    size_t n;
    die_on(ac_casefile_write(&f, &text, &n, &e), &e, "write");
    save_bytes("casefile", 1, "decode-valid.in", (const uint8_t *)text, n);
    /* malformed variants of the same text */
    save_bytes("casefile", 2, "truncated-no-newline.in", (const uint8_t *)text, n - 1);
    char *crlf = malloc(n * 2);
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (text[i] == '\n') crlf[m++] = '\r';
        crlf[m++] = text[i];
    }
    save_bytes("casefile", 3, "crlf.in", (const uint8_t *)crlf, m);
    free(crlf);
    const char *dup = "attncheck-case 1\ntitle t\ntitle u\n";
    save_bytes("casefile", 4, "duplicate-key.in", (const uint8_t *)dup, strlen(dup));
    const char *big = "attncheck-case 1\nbatch 99999999999999999999\n";
    save_bytes("casefile", 5, "number-out-of-range.in", (const uint8_t *)big, strlen(big));
    const char *newer = "attncheck-case 2\n";
    save_bytes("casefile", 6, "newer-version.in", (const uint8_t *)newer, strlen(newer));
    const uint8_t nul[] = {'a', 't', 't', 0, '\n'};
    save_bytes("casefile", 7, "nul-byte.in", nul, sizeof nul);
    free(text);
    ac_casefile_free(&f);

    c = mk(AC_OP_COMBINE, AC_FP16, 2, 2, 8, 1, (int32_t[]){3}, (int32_t[]){5}, 8);
    c->num_splits = 4;
    c->special = AC_SPECIAL_NAN_PARTIALS;
    c->scale_given = 1;
    c->scale = -0.0f;
    die_on(ac_casefile_from_case(&f, c, &e), &e, "casefile");
    f.expect_error = 1;
    f.expect_code = AC_ERR_SHAPE;
    die_on(ac_casefile_write(&f, &text, &n, &e), &e, "write");
    save_bytes("casefile", 8, "combine-negative-zero-scale-expect-error.in", (const uint8_t *)text, n);
    free(text);
    ac_casefile_free(&f);
    ac_case_free(c);
}

int main(int argc, char **argv)
{
    if (argc > 1) root = argv[1];
    static const char *const dirs[] = {"layout", "combine-fuzz", "api", "casefile"};
    for (int i = 0; i < 4; i++) {
        char d[512];
        snprintf(d, sizeof d, "%s/%s", root, dirs[i]);
        mkdir(d, 0777); /* may exist */
    }
    layout_seeds();
    combine_seeds();
    api_seeds();
    casefile_seeds();
    printf("make_seeds: %d files written under %s/, %d failed\n", written, root, failed);
    return failed ? 1 : 0;
}
