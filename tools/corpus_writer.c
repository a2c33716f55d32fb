/* attncheck-corpus: writes the seed files of every folder of corpus/ and adds
 * findings to it (corpus/README.md: the folders, the numbering rule, the
 * DISABLED list).
 *
 *   attncheck-corpus [--out DIR] [--only FOLDER]...      regenerate the seeds
 *   attncheck-corpus --list [--out DIR]                  folders, owners, next free numbers
 *   attncheck-corpus --save FILE --into FOLDER --topic SLUG [--number N] [--out DIR]
 *
 * One folder per kernel family (the registry, ac_families(): case files, every
 * feature of SEMANTICS.md once plus invalid layouts with `expect error`) and
 * one per fuzz target (ac_fuzz_targets(): the target's input format). The
 * writer owns the numbers 0001-0999 of each folder and writes exactly what is
 * committed (ctest corpus_writer_reproduces diffs a fresh run against
 * corpus/); findings are numbered from 1000 and never written here except by
 * --save, which only adds. */
#include <dirent.h>
#include <errno.h>
#include <float.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ac_casefile.h"
#include "ac_family.h"
#include "ac_file.h"
#include "ac_fuzz.h"
#include "ac_index.h"

/* The numbering rule (corpus/README.md): seeds 0001-0899 (valid) and
   0900-0999 (invalid layouts, `expect error`), findings 1000-9999. */
#define SEED_ERR_FIRST 900
#define FINDING_FIRST 1000
#define FINDING_LAST 9999

/* The folder being written: corpus root, folder name, file extension. */
static const char *g_root = "corpus", *g_dir, *g_ext;
static int g_written, g_failed;
static ac_case g_case; /* the case under construction (mk) */

static void die_on(ac_status st, const ac_error *e, const char *what)
{
    if (st) {
        fprintf(stderr, "attncheck-corpus: %s: %s\n", what, e->msg);
        exit(1);
    }
}

static int write_file(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    int ok = f && fwrite(p, 1, n, f) == n;
    if (f && fclose(f)) ok = 0;
    return ok ? 0 : -1;
}

/* <root>/<dir>/NNNN-<slug><ext>: the one place a seed's name is formed. */
static void put_bytes(int num, const char *slug, const void *p, size_t n)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s/%04d-%s%s", g_root, g_dir, num, slug, g_ext);
    if (num < 1 || num >= FINDING_FIRST) {
        fprintf(stderr, "attncheck-corpus: %s: seeds own 0001-0999 only\n", path);
        g_failed++;
    } else if (write_file(path, p, n)) {
        fprintf(stderr, "attncheck-corpus: cannot write %s: %s\n", path, strerror(errno));
        g_failed++;
    } else {
        g_written++;
    }
}

/* ---- case files ------------------------------------------------------------------- */

/* A fresh case in g_case: op, dtype, heads, head dim, batch with lengths
   (lq NULL: all 0); everything else ac_case_init's defaults. */
static ac_case *mk(ac_op op, ac_dtype dt, int32_t hq, int32_t hkv, int32_t d, int32_t batch, const int32_t *lq,
                   const int32_t *lk, uint64_t seed)
{
    ac_case *c = &g_case;
    ac_error e;
    ac_case_free(c);
    ac_case_init(c);
    c->op = op;
    c->dtype = dt;
    c->heads_q = hq;
    c->heads_kv = hkv;
    c->head_dim = d;
    die_on(ac_case_set_batch(c, batch, &e), &e, "batch");
    for (int32_t b = 0; b < batch; b++) {
        c->seqlen_q[b] = lq ? lq[b] : 0;
        c->seqlen_k[b] = lk[b];
    }
    c->seed = seed;
    return c;
}

/* The fuzz targets' seeds start decode cases bottom-right causal. */
static ac_case *mkl(ac_op op, ac_dtype dt, int32_t hq, int32_t hkv, int32_t d, int32_t batch, const int32_t *lq,
                    const int32_t *lk, uint64_t seed)
{
    ac_case *c = mk(op, dt, hq, hkv, d, batch, lq, lk, seed);
    if (op == AC_OP_DECODE) c->causal = AC_CAUSAL_BOTTOM_RIGHT;
    return c;
}

#define L(...) ((const int32_t[]){__VA_ARGS__})
#define OK AC_OK
/* put_case's expectation: whatever ac_case_validate says (the layout target
   checks that against its own statement of the rules on every replay). */
#define AS_VALIDATED (-1)

/* g_case as a case file. title NULL: the case line. expect: the code the
   validator must give (checked), or AS_VALIDATED. */
static void put_case(int num, const char *slug, const char *title, const char *note, int expect)
{
    ac_casefile f;
    ac_error e, ve;
    die_on(ac_casefile_from_case(&f, &g_case, &e), &e, slug);
    if (title) snprintf(f.title, sizeof f.title, "%s", title);
    die_on(ac_casefile_set_note(&f, note, &e), &e, "note");
    ac_status got = ac_case_validate(&g_case, &ve);
    ac_status want = expect == AS_VALIDATED ? got : (ac_status)expect;
    if (got != want) {
        fprintf(stderr, "attncheck-corpus: %s/%04d-%s: expected %s, validate gives %s (%s)\n", g_dir, num, slug,
                ac_status_name(want), ac_status_name(got), got ? ve.msg : "");
        g_failed++;
    }
    if ((num >= SEED_ERR_FIRST) != (want != AC_OK)) {
        fprintf(stderr, "attncheck-corpus: %s/%04d-%s: %s, but 0%d-0999 are the expect-error seeds\n", g_dir, num,
                slug, ac_status_name(want), SEED_ERR_FIRST);
        g_failed++;
    }
    f.expect_error = want != AC_OK;
    f.expect_code = want;
    char *text;
    size_t n;
    die_on(ac_casefile_write(&f, &text, &n, &e), &e, slug);
    put_bytes(num, slug, text, n);
    free(text);
    ac_casefile_free(&f);
}

/* Table layouts of the family seeds (the fuzz seeds use ac_case_make_layout). */
enum { SEQUENTIAL, PERMUTED, SHARED_PREFIX };

/* Give each sequence its used blocks (+ `extra` unused columns filled with
   `unused`), `spare` physical blocks never referenced. */
static void paged(ac_case *c, int32_t block_size, int layout, int32_t extra, int32_t unused, int32_t spare)
{
    ac_error e;
    c->paged = 1;
    c->block_size = block_size;
    int32_t mbps = 0;
    for (int32_t b = 0; b < c->batch; b++) {
        int32_t u = ac_blocks_used(c->seqlen_k[b], block_size);
        if (u > mbps) mbps = u;
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
        /* A fixed permutation of the physical ids: id -> (id * 7 + 3) mod n
           when 7 does not divide n (a bijection then), else reversed. */
        int32_t n = c->num_blocks;
        for (int64_t i = 0; i < (int64_t)c->batch * mbps; i++) {
            int32_t *p = &c->block_table[i];
            int32_t b = (int32_t)(i / mbps), col = (int32_t)(i % mbps);
            if (col >= ac_blocks_used(c->seqlen_k[b], block_size)) continue;
            *p = (n % 7) ? (int32_t)(((int64_t)*p * 7 + 3) % n) : n - 1 - *p;
        }
    }
}

static void layout(ac_case *c, int32_t bs, ac_layout kind, int32_t extra)
{
    ac_error e;
    c->block_size = bs;
    die_on(ac_case_make_layout(c, kind, extra, &e), &e, "layout");
}

/* The features (docs/CONTRACT.md, "Windows, softcap, ALiBi and sinks") on g_case:
   window (wl, wr) unless both are -1, softcap cap unless 0, ALiBi's standard
   slopes 2^(-8 (h + 1) / Hq) when alibi, and sinks when sinks: head h gets
   (h % 5 - 1) * 0.75 (a quarter of a logit to 2.25), head 0 -inf (none). */
static void feats(ac_case *c, int32_t wl, int32_t wr, float cap, int alibi, int sinks)
{
    ac_error e;
    float v[AC_MAX_HEADS];
    c->window_left = wl;
    c->window_right = wr;
    c->softcap = cap;
    if (alibi) {
        for (int32_t h = 0; h < c->heads_q; h++) v[h] = exp2f(-8.0f * (float)(h + 1) / (float)c->heads_q);
        die_on(ac_case_set_alibi(c, v, c->heads_q, &e), &e, "alibi");
    }
    if (sinks) {
        for (int32_t h = 0; h < c->heads_q; h++) v[h] = h == 0 ? -INFINITY : (float)(h % 5 - 1) * 0.75f;
        die_on(ac_case_set_sinks(c, v, c->heads_q, &e), &e, "sinks");
    }
}

/* ==== the families' folders (case files) =========================================== */

/* The K/V storage (docs/CONTRACT.md section 13) on g_case: D_v (0: D), an FP8
   format (AC_KV_AS_DTYPE: none) and n scales each for K and V (0: none). */
static void kvst(ac_case *c, int32_t dv, ac_kv_format f, int32_t n, const float *ks, const float *vs)
{
    ac_error e;
    c->head_dim_v = dv;
    c->kv_format = f;
    die_on(ac_case_set_kv_scales(c, ks, vs, n, &e), &e, "kv scales");
}
#define F(...) ((const float[]){__VA_ARGS__})

static void prefill_seeds(void)
{
    ac_case *c;

    /* Windows, softcap, ALiBi and sinks. */
    c = mk(AC_OP_PREFILL, AC_BF16, 4, 2, 64, 2, L(20, 5), L(90, 70), 137);
    c->causal = AC_CAUSAL_BOTTOM_RIGHT;
    feats(c, 64, 0, 0.0f, 0, 0);
    put_case(37, "window-br-tile-edge", "window (64, 0), BR, Lq < Lk: the window starts on the 64-key tile",
             "A top-left window (diagonal i instead of i + Lk - Lq) sees other keys.", OK);

    c = mk(AC_OP_PREFILL, AC_FP16, 8, 2, 64, 2, L(33, 17), L(50, 17), 138);
    feats(c, 15, 16, 0.0f, 0, 0);
    paged(c, 16, PERMUTED, 1, -1, 1);
    put_case(38, "window-both-sides-paged", "window (15, 16) without causal mode, paged block 16: edges beside blocks",
             NULL, OK);

    c = mk(AC_OP_PREFILL, AC_BF16, 4, 4, 64, 2, L(12, 6), L(5, 6), 139);
    c->causal = AC_CAUSAL_BOTTOM_RIGHT;
    feats(c, 0, 0, 0.0f, 0, 0);
    put_case(39, "window-0-0-empty-rows", "window (0, 0): the diagonal key alone; Lq > Lk empties the leading rows",
             "Rows with i + Lk - Lq < 0 have no key: O = 0, LSE = -inf.", OK);

    c = mk(AC_OP_PREFILL, AC_BF16, 4, 2, 64, 2, L(16, 9), L(40, 9), 140);
    c->causal = AC_CAUSAL_BOTTOM_RIGHT;
    c->mask = AC_MASK_BOOL;
    c->mask_per_head = 1;
    feats(c, -1, -1, 5.0f, 0, 0);
    put_case(40, "softcap-bool-mask", "softcap 5 with causal and a bool mask: excluded keys stay out",
             "Capping after masking turns an excluded key into logit -5 instead of dropping it.", OK);

    c = mk(AC_OP_PREFILL, AC_BF16, 8, 2, 128, 2, L(24, 3), L(60, 30), 141);
    c->causal = AC_CAUSAL_BOTTOM_RIGHT;
    feats(c, -1, -1, 0.0f, 1, 0);
    put_case(41, "alibi-std-br", "ALiBi, the standard slopes, BR with Lq < Lk (every distance <= 0)", NULL, OK);

    c = mk(AC_OP_PREFILL, AC_FP16, 4, 4, 64, 1, L(10), L(30), 142);
    feats(c, -1, -1, 0.0f, 1, 0);
    put_case(42, "alibi-no-causal", "ALiBi without causal mode: keys past the diagonal get a positive bias",
             "flash-attn's -slope |j - i - off| differs from the contract's signed distance exactly here.", OK);

    c = mk(AC_OP_PREFILL, AC_BF16, 4, 2, 64, 2, L(10, 4), L(6, 20), 143);
    c->causal = AC_CAUSAL_BOTTOM_RIGHT;
    feats(c, -1, -1, 0.0f, 0, 1);
    put_case(43, "sinks-empty-rows", "sinks, Lq > Lk with BR: an empty row gives O = 0 and LSE = its sink",
             "Head 0 has no sink (-inf): its empty rows keep LSE = -inf.", OK);

    c = mk(AC_OP_PREFILL, AC_BF16, 8, 2, 64, 2, L(30, 12), L(70, 40), 144);
    c->causal = AC_CAUSAL_BOTTOM_RIGHT;
    c->mask = AC_MASK_ADDITIVE;
    feats(c, 31, 0, 30.0f, 1, 1);
    paged(c, 16, SHARED_PREFIX, 0, -1, 2);
    put_case(44, "all-features-paged-shared", "window (31, 0), softcap 30, ALiBi and sinks with a bias, shared prefix",
             NULL, OK);

    /* An FP8 cache and D_v != D_qk. */
    c = mk(AC_OP_PREFILL, AC_BF16, 8, 2, 64, 2, L(30, 12), L(70, 40), 145);
    c->causal = AC_CAUSAL_BOTTOM_RIGHT;
    kvst(c, 0, AC_KV_E4M3, 2, F(0.0731f, 0.5f), F(0.37f, 11.7f));
    paged(c, 16, SHARED_PREFIX, 0, -1, 2);
    put_case(45, "fp8-e4m3-per-head-paged-shared", "E4M3 cache, per-KV-head scales, shared prefix, BR",
             "Dropping v_scale scales O by 1/0.37 or 1/11.7; a head's scale applied to the other head is as wrong.", OK);

    c = mk(AC_OP_PREFILL, AC_FP16, 4, 2, 192, 2, L(20, 5), L(45, 64), 146);
    c->causal = AC_CAUSAL_BOTTOM_RIGHT;
    kvst(c, 128, AC_KV_AS_DTYPE, 0, NULL, NULL);
    put_case(46, "dv128-dqk192-br", "D_qk = 192, D_v = 128 (MLA's prefill shapes), BR, contiguous",
             "The default scale is 1/sqrt(192); V rows are 128 wide: reading them at stride 192 reads other rows.", OK);

    c = mk(AC_OP_PREFILL, AC_BF16, 4, 4, 128, 2, L(33, 17), L(33, 50), 147);
    kvst(c, 64, AC_KV_E5M2, 1, F(3.0f), F(0.1f));
    feats(c, 40, 8, 30.0f, 1, 1);
    paged(c, 16, PERMUTED, 1, -1, 1);
    put_case(47, "fp8-e5m2-dv64-all-features", "E5M2 cache, per-tensor scales, D_v = 64 of D_qk = 128, window, "
             "softcap, ALiBi and sinks, paged", NULL, OK);

    c = mk(AC_OP_PREFILL, AC_BF16, 4, 4, 64, 2, L(17, 33), L(17, 33), 101);
    put_case(1, "contiguous-basic", "contiguous varlen prefill, no causal mask, Lq = Lk, MHA", NULL, OK);

    c = mk(AC_OP_PREFILL, AC_FP16, 4, 2, 64, 3, L(9, 1, 24), L(9, 1, 24), 102);
    c->causal = AC_CAUSAL_TOP_LEFT;
    put_case(2, "contiguous-causal-tl", "top-left causal (SDPA is_causal) with Lq = Lk, fp16", NULL, OK);

    c = mk(AC_OP_PREFILL, AC_BF16, 4, 2, 64, 2, L(5, 12), L(40, 29), 103);
    c->causal = AC_CAUSAL_BOTTOM_RIGHT;
    put_case(3, "br-lq-lt-lk-chunked", "bottom-right causal with Lq < Lk (chunked prefill)",
             "Query i sees keys j <= i + (Lk - Lq): the last query sees every key.", OK);

    c = mk(AC_OP_PREFILL, AC_BF16, 2, 1, 64, 2, L(20, 9), L(6, 9), 104);
    c->causal = AC_CAUSAL_BOTTOM_RIGHT;
    put_case(4, "br-lq-gt-lk", "bottom-right causal with Lq > Lk: leading rows see no key",
             "Sequence 0: rows 0..13 have an empty allowed set: O = 0 and LSE = -inf.\n"
             "A kernel that clamps the diagonal offset at 0 gives them keys.", OK);

    c = mk(AC_OP_PREFILL, AC_FP16, 2, 2, 64, 2, L(20, 3), L(6, 11), 105);
    c->causal = AC_CAUSAL_TOP_LEFT;
    put_case(5, "tl-lq-ne-lk", "top-left causal with Lq > Lk and Lq < Lk", NULL, OK);

    c = mk(AC_OP_PREFILL, AC_BF16, 8, 2, 128, 3, L(1, 1, 1), L(1, 77, 300), 106);
    c->causal = AC_CAUSAL_BOTTOM_RIGHT;
    put_case(6, "lq1", "single-query sequences (Lq = 1) in a prefill batch, BR", NULL, OK);

    c = mk(AC_OP_PREFILL, AC_BF16, 4, 4, 64, 3, L(5, 0, 7), L(0, 0, 7), 107);
    put_case(7, "lk0-and-lq0", "sequences with Lk = 0 (every row empty) and Lq = 0 beside a normal one",
             "Rows of sequence 0 have no key: O = 0, LSE = -inf (no NaN from 0/0).", OK);

    c = mk(AC_OP_PREFILL, AC_BF16, 4, 2, 64, 3, L(16, 7, 33), L(48, 17, 33), 108);
    c->causal = AC_CAUSAL_BOTTOM_RIGHT;
    paged(c, 16, SEQUENTIAL, 1, -1, 2);
    put_case(8, "paged-block16", "paged prefill, block size 16, lengths on and off block edges", NULL, OK);

    c = mk(AC_OP_PREFILL, AC_FP16, 4, 4, 64, 2, L(31, 33), L(64, 33), 109);
    c->causal = AC_CAUSAL_BOTTOM_RIGHT;
    paged(c, 32, SEQUENTIAL, 0, -1, 1);
    put_case(9, "paged-block32", "paged prefill, block size 32", NULL, OK);

    c = mk(AC_OP_PREFILL, AC_BF16, 2, 1, 64, 2, L(8, 3), L(300, 256), 110);
    c->causal = AC_CAUSAL_BOTTOM_RIGHT;
    paged(c, 256, SEQUENTIAL, 1, -1, 1);
    put_case(10, "paged-block256", "paged prefill, block size 256, one sequence crossing a block", NULL, OK);

    c = mk(AC_OP_PREFILL, AC_BF16, 4, 2, 64, 3, L(6, 13, 1), L(20, 13, 8), 111);
    c->causal = AC_CAUSAL_BOTTOM_RIGHT;
    paged(c, 7, SEQUENTIAL, 2, -1, 3);
    put_case(11, "paged-block7-odd", "paged prefill with an odd block size (7)",
             "Catches kernels that assume power-of-two block sizes (p >> log2, p & (bs - 1)).", OK);

    c = mk(AC_OP_PREFILL, AC_BF16, 4, 4, 64, 2, L(13, 9), L(13, 21), 112);
    c->mask = AC_MASK_BOOL;
    c->mask_density = 0.75f;
    put_case(12, "mask-bool-shared", "boolean mask shared by all heads, no causal", NULL, OK);

    c = mk(AC_OP_PREFILL, AC_FP16, 4, 2, 64, 2, L(13, 9), L(13, 21), 113);
    c->mask = AC_MASK_BOOL;
    c->mask_per_head = 1;
    c->mask_density = 0.5f;
    c->causal = AC_CAUSAL_BOTTOM_RIGHT;
    put_case(13, "mask-bool-per-head-br", "boolean mask per head intersected with BR causal", NULL, OK);

    c = mk(AC_OP_PREFILL, AC_BF16, 4, 4, 64, 2, L(11, 4), L(11, 30), 114);
    c->mask = AC_MASK_ADDITIVE;
    c->mask_density = 0.875f;
    put_case(14, "mask-additive-shared", "additive fp32 bias shared by heads, some -inf entries", NULL, OK);

    c = mk(AC_OP_PREFILL, AC_BF16, 8, 2, 64, 2, L(11, 4), L(11, 30), 115);
    c->mask = AC_MASK_ADDITIVE;
    c->mask_per_head = 1;
    c->mask_density = 0.75f;
    c->causal = AC_CAUSAL_TOP_LEFT;
    paged(c, 16, SEQUENTIAL, 0, -1, 0);
    put_case(15, "mask-additive-per-head-tl-paged", "additive bias per head with TL causal, paged", NULL, OK);

    c = mk(AC_OP_PREFILL, AC_BF16, 4, 4, 64, 2, L(9, 6), L(9, 12), 116);
    c->mask = AC_MASK_BOOL;
    c->mask_density = 0.0f;
    put_case(16, "mask-bool-all-false", "boolean mask with density 0: every row is empty",
             "Every row: O = 0 and LSE = -inf; a kernel dividing by the row sum gives NaN.", OK);

    c = mk(AC_OP_PREFILL, AC_BF16, 8, 2, 64, 2, L(12, 20), L(12, 20), 117);
    c->causal = AC_CAUSAL_TOP_LEFT;
    put_case(17, "gqa4", "GQA with group 4 (Hq = 8, Hkv = 2)",
             "Query head h reads KV head h / 4; h % Hkv is the classic bug.", OK);

    c = mk(AC_OP_PREFILL, AC_FP16, 16, 2, 64, 2, L(6, 10), L(24, 10), 118);
    c->causal = AC_CAUSAL_BOTTOM_RIGHT;
    paged(c, 16, PERMUTED, 1, -1, 2);
    put_case(18, "gqa8-paged", "GQA with group 8 (Hq = 16, Hkv = 2), paged", NULL, OK);

    c = mk(AC_OP_PREFILL, AC_BF16, 8, 1, 64, 2, L(10, 7), L(10, 19), 119);
    c->causal = AC_CAUSAL_BOTTOM_RIGHT;
    put_case(19, "mqa-hkv1", "MQA: one KV head for eight query heads", NULL, OK);

    c = mk(AC_OP_PREFILL, AC_BF16, 4, 2, 128, 2, L(16, 25), L(32, 25), 120);
    c->causal = AC_CAUSAL_BOTTOM_RIGHT;
    paged(c, 16, SEQUENTIAL, 0, -1, 1);
    put_case(20, "d128", "head dim 128, paged, BR", NULL, OK);

    c = mk(AC_OP_PREFILL, AC_FP16, 2, 1, 80, 2, L(9, 14), L(9, 14), 121);
    c->causal = AC_CAUSAL_TOP_LEFT;
    put_case(21, "d80", "head dim 80 (not a power of two)", NULL, OK);

    c = mk(AC_OP_PREFILL, AC_BF16, 2, 2, 96, 2, L(9, 14), L(20, 14), 122);
    c->causal = AC_CAUSAL_BOTTOM_RIGHT;
    put_case(22, "d96", "head dim 96 (not a power of two)", NULL, OK);

    c = mk(AC_OP_PREFILL, AC_BF16, 2, 1, 256, 2, L(8, 16), L(8, 40), 123);
    c->causal = AC_CAUSAL_BOTTOM_RIGHT;
    paged(c, 32, SEQUENTIAL, 0, -1, 0);
    put_case(23, "d256", "head dim 256, paged", NULL, OK);

    c = mk(AC_OP_PREFILL, AC_BF16, 4, 4, 64, 2, L(9, 17), L(9, 17), 124);
    c->scale_given = 1;
    c->scale = 1.0f;
    put_case(24, "scale-explicit-1", "explicit scale 1.0 (not the default 1/sqrt(D))",
             "Passing 1.0 where the default was meant is a real bug: the output must differ from the default.", OK);

    c = mk(AC_OP_PREFILL, AC_BF16, 4, 4, 64, 2, L(9, 17), L(9, 17), 125);
    c->scale_given = 1;
    c->scale = 0.0f;
    c->causal = AC_CAUSAL_TOP_LEFT;
    put_case(25, "scale-zero", "explicit scale 0.0: uniform attention over the allowed keys",
             "0.0 is a legal explicit scale and must not mean 'default'.", OK);

    c = mk(AC_OP_PREFILL, AC_FP16, 4, 4, 64, 1, L(12), L(12), 126);
    c->scale_given = 1;
    c->scale = -0.0f;
    put_case(26, "scale-negative-zero", "explicit scale -0.0: uniform attention as for +0.0", NULL, OK);

    c = mk(AC_OP_PREFILL, AC_BF16, 4, 4, 64, 1, L(12), L(30), 127);
    c->scale_given = 1;
    c->scale = 0.0625f;
    c->causal = AC_CAUSAL_BOTTOM_RIGHT;
    put_case(27, "scale-explicit-small", "explicit scale 1/16 (differs from 1/sqrt(64))", NULL, OK);

    static const struct { ac_dist d; const char *slug, *title; } dists[] = {
        {AC_DIST_UNIFORM, "dist-uniform", "uniform U(-1, 1) values"},
        {AC_DIST_LARGE, "dist-large", "large values (N(0,1) * 8): saturated softmax, logits in the hundreds"},
        {AC_DIST_NEEDLE, "dist-needle", "needle: one key per query dominates, at block and diagonal edges"},
        {AC_DIST_POSCODE, "dist-poscode", "position code: V of key j encodes j, so the output names the keys seen"},
    };
    for (int i = 0; i < 4; i++) {
        c = mk(AC_OP_PREFILL, i % 2 ? AC_FP16 : AC_BF16, 4, 2, 64, 2, L(13, 7), L(29, 16), 128 + (uint64_t)i);
        c->causal = AC_CAUSAL_BOTTOM_RIGHT;
        c->dist = dists[i].d;
        paged(c, 16, SEQUENTIAL, 0, -1, 1);
        put_case(28 + i, dists[i].slug, dists[i].title, NULL, OK);
    }

    c = mk(AC_OP_PREFILL, AC_BF16, 4, 2, 64, 2, L(10, 5), L(21, 5), 132);
    c->causal = AC_CAUSAL_BOTTOM_RIGHT;
    c->special = AC_SPECIAL_NAN_SLOTS | AC_SPECIAL_INF_SLOTS;
    paged(c, 16, SEQUENTIAL, 1, -1, 2);
    put_case(32, "paged-nan-inf-unused-slots", "NaN and Inf in every cache slot past the valid positions",
             "Slots 21..31 of sequence 0, 5..15 of sequence 1 and the spare blocks hold NaN/Inf:\n"
             "no output bit may change (masking must happen before the max, never by multiplying by 0).", OK);

    c = mk(AC_OP_PREFILL, AC_BF16, 4, 2, 64, 3, L(8, 3, 11), L(8, 3, 40), 133);
    c->causal = AC_CAUSAL_BOTTOM_RIGHT;
    c->special = AC_SPECIAL_GARBAGE_TABLE;
    paged(c, 16, SEQUENTIAL, 3, 0, 1);
    /* Unused entries hold garbage explicitly, not only by the generator flag. */
    {
        static const int32_t junk[] = {INT32_MIN, -1, 2147483647, 1000000, -7, 5};
        int32_t m = c->max_blocks_per_seq;
        for (int32_t b = 0; b < c->batch; b++)
            for (int32_t i = ac_blocks_used(c->seqlen_k[b], 16); i < m; i++)
                c->block_table[(int64_t)b * m + i] = junk[(b + i) % 6];
    }
    put_case(33, "paged-garbage-unused-table-entries", "garbage (-1, INT32_MIN, huge) in unread block-table entries",
             "Entries past ceil(seqlen_k / block_size) are never read and never validated.", OK);

    c = mk(AC_OP_PREFILL, AC_FP16, 4, 2, 64, 3, L(4, 6, 9), L(40, 38, 33), 134);
    c->causal = AC_CAUSAL_BOTTOM_RIGHT;
    paged(c, 16, SHARED_PREFIX, 0, -1, 1);
    put_case(34, "paged-shared-prefix", "prefix caching: three sequences share their first two blocks",
             "Shared blocks are read-only and read by several sequences.", OK);

    c = mk(AC_OP_PREFILL, AC_BF16, 4, 4, 64, 3, L(7, 12, 1), L(50, 12, 70), 135);
    c->causal = AC_CAUSAL_BOTTOM_RIGHT;
    paged(c, 16, PERMUTED, 1, -1, 3);
    put_case(35, "paged-permuted-table", "permuted block table: logical order differs from physical order", NULL,
             OK);

    c = mk(AC_OP_PREFILL, AC_BF16, 4, 4, 64, 2, L(20, 9), L(6, 9), 136);
    c->causal = AC_CAUSAL_BOTTOM_RIGHT;
    paged(c, 7, PERMUTED, 1, -1, 2);
    put_case(36, "paged-br-lq-gt-lk-block7", "BR with Lq > Lk on a paged cache with odd block size 7", NULL, OK);

    /* Invalid layouts: each must be rejected with the named error before any launch. */
    c = mk(AC_OP_PREFILL, AC_BF16, 4, 2, 64, 2, L(8, 8), L(20, 8), 190);
    paged(c, 16, SEQUENTIAL, 0, -1, 0);
    c->block_table[1] = c->num_blocks;
    put_case(900, "err-table-entry-out-of-range", "used block-table entry equals num_blocks",
             "block_table[0][1] = num_blocks: one past the pool.", AC_ERR_BLOCK_TABLE);

    c = mk(AC_OP_PREFILL, AC_BF16, 4, 2, 64, 2, L(8, 8), L(20, 8), 191);
    paged(c, 16, SEQUENTIAL, 1, -1, 0);
    c->block_table[c->max_blocks_per_seq] = -1;
    put_case(901, "err-table-entry-negative", "used block-table entry is -1", NULL, AC_ERR_BLOCK_TABLE);

    c = mk(AC_OP_PREFILL, AC_BF16, 4, 2, 64, 2, L(8, 8), L(20, 8), 192);
    paged(c, 16, SEQUENTIAL, 0, -1, 2);
    c->seqlen_k[0] = 33;
    put_case(902, "err-seqlen-beyond-capacity", "seqlen_k beyond max_blocks_per_seq * block_size",
             "seqlen_k[0] = 33 with 2 columns of 16 slots.", AC_ERR_CAPACITY);

    c = mk(AC_OP_PREFILL, AC_BF16, 6, 4, 64, 1, L(8), L(8), 193);
    put_case(903, "err-gqa-not-multiple", "heads_q % heads_kv != 0 (6 % 4)", NULL, AC_ERR_GQA);

    c = mk(AC_OP_PREFILL, AC_BF16, 4, 4, 64, 2, L(8, -1), L(8, 8), 194);
    put_case(904, "err-negative-seqlen", "negative query length (cu_seqlens would decrease)",
             "Per-sequence lengths make a decreasing cu_seqlens impossible except through a negative length.",
             AC_ERR_SHAPE);

    c = mk(AC_OP_PREFILL, AC_BF16, 2, 4, 64, 1, L(8), L(8), 195);
    put_case(905, "err-hkv-gt-hq", "more KV heads than query heads", NULL, AC_ERR_SHAPE);

    c = mk(AC_OP_PREFILL, AC_BF16, 4, 4, 64, 1, L(8), L(8), 196);
    paged(c, 16, SEQUENTIAL, 0, -1, 0);
    c->block_size = 0;
    put_case(906, "err-block-size-zero", "block size 0", NULL, AC_ERR_SHAPE);

    c = mk(AC_OP_PREFILL, AC_BF16, 4, 4, 0, 1, L(8), L(8), 197);
    put_case(907, "err-head-dim-zero", "head dim 0", NULL, AC_ERR_SHAPE);

    c = mk(AC_OP_PREFILL, AC_BF16, 4, 2, 64, 1, L(8), L(8), 908);
    kvst(c, 0, AC_KV_AS_DTYPE, 1, F(0.5f), F(0.5f));
    put_case(908, "err-scales-without-fp8", "k/v scales on a bf16 cache (most runtimes ignore them silently)", NULL,
             AC_ERR_UNSUPPORTED);

    c = mk(AC_OP_PREFILL, AC_BF16, 4, 2, 64, 1, L(8), L(8), 909);
    kvst(c, 0, AC_KV_E4M3, 2, F(0.5f, 0.0f), F(0.5f, 0.5f));
    put_case(909, "err-k-scale-zero", "an FP8 cache with k_scales[1] = 0", NULL, AC_ERR_SHAPE);
}

static void decode_seeds(void)
{
    ac_case *c;
#define DEC(seed, dt, hq, hkv, d, n, lk) mk(AC_OP_DECODE, dt, hq, hkv, d, n, L(1, 1, 1, 1, 1, 1, 1, 1), lk, seed)

    c = DEC(201, AC_BF16, 8, 2, 128, 3, L(37, 64, 5));
    c->causal = AC_CAUSAL_BOTTOM_RIGHT;
    c->num_splits = 1;
    paged(c, 16, SEQUENTIAL, 1, -1, 1);
    put_case(1, "splits1", "decode, one split (no combine)", NULL, OK);

    c = DEC(202, AC_BF16, 8, 2, 128, 3, L(37, 64, 5));
    c->causal = AC_CAUSAL_BOTTOM_RIGHT;
    c->num_splits = 3;
    paged(c, 16, SEQUENTIAL, 1, -1, 1);
    put_case(2, "splits3", "decode, 3 splits (uneven: 3, 4 and 1 blocks)", NULL, OK);

    c = DEC(203, AC_FP16, 4, 1, 64, 2, L(40, 9));
    c->causal = AC_CAUSAL_BOTTOM_RIGHT;
    c->num_splits = 16;
    paged(c, 16, PERMUTED, 0, -1, 2);
    put_case(3, "more-splits-than-blocks", "decode, 16 splits over 3 and 1 blocks: most splits are empty",
             "Empty splits have LSE = -inf and must drop out of the combine.", OK);

    c = DEC(204, AC_BF16, 8, 1, 128, 4, L(1, 17, 250, 64));
    c->causal = AC_CAUSAL_BOTTOM_RIGHT;
    c->num_splits = 0;
    paged(c, 16, PERMUTED, 1, -1, 2);
    put_case(4, "splits-auto", "decode, automatic split count, mixed lengths, MQA", NULL, OK);

    c = mk(AC_OP_DECODE, AC_BF16, 4, 2, 64, 2, L(4, 8), L(30, 8), 205);
    c->causal = AC_CAUSAL_BOTTOM_RIGHT;
    c->num_splits = 2;
    paged(c, 16, SEQUENTIAL, 0, -1, 1);
    put_case(5, "speculative-lq4-lq8", "speculative decode: 4 and 8 queries at the end, BR",
             "Sequence 1 has Lq = Lk = 8: BR equals TL there.", OK);

    /* Windows, softcap, ALiBi and sinks. */
    c = DEC(216, AC_BF16, 8, 2, 64, 2, L(96, 50));
    c->causal = AC_CAUSAL_BOTTOM_RIGHT;
    c->num_splits = 3;
    feats(c, 31, 0, 0.0f, 0, 0);
    paged(c, 16, PERMUTED, 0, -1, 1);
    put_case(16, "window-on-split-edge", "decode, window (31, 0), 3 splits of 2 blocks: sequence 0's window starts "
             "where split 2 does", NULL, OK);

    c = DEC(217, AC_FP16, 16, 4, 128, 3, L(300, 17, 64));
    c->causal = AC_CAUSAL_BOTTOM_RIGHT;
    c->num_splits = 0;
    feats(c, -1, -1, 20.0f, 1, 0);
    paged(c, 32, PERMUTED, 1, -1, 2);
    put_case(17, "softcap-alibi-splits-auto", "decode, softcap 20 and ALiBi, automatic splits", NULL, OK);

    c = DEC(218, AC_BF16, 8, 8, 64, 2, L(100, 40));
    c->causal = AC_CAUSAL_BOTTOM_RIGHT;
    c->num_splits = 3;
    feats(c, -1, -1, 0.0f, 0, 1);
    paged(c, 16, SEQUENTIAL, 0, -1, 0);
    put_case(18, "sinks-splits3", "decode, sinks, 3 splits: the sink joins once, in the final combine",
             "Partials carry no sink; adding it per split counts it three times.", OK);

    c = mk(AC_OP_DECODE, AC_BF16, 4, 2, 64, 2, L(4, 8), L(70, 8), 219);
    c->causal = AC_CAUSAL_BOTTOM_RIGHT;
    c->num_splits = 2;
    feats(c, 16, 0, 5.0f, 1, 1);
    paged(c, 16, SEQUENTIAL, 0, -1, 1);
    put_case(19, "all-features-speculative", "speculative decode (4 and 8 queries) with every feature", NULL, OK);

    /* An FP8 cache and D_v != D_qk. */
    c = DEC(220, AC_BF16, 8, 2, 128, 3, L(300, 17, 64));
    c->causal = AC_CAUSAL_BOTTOM_RIGHT;
    c->num_splits = 3;
    kvst(c, 0, AC_KV_E4M3, 1, F(0.045f), F(1.7f));
    feats(c, -1, -1, 0.0f, 0, 1);
    paged(c, 16, PERMUTED, 1, -1, 2);
    put_case(20, "fp8-e4m3-splits3-sinks", "decode on an E4M3 cache, per-tensor scales, 3 splits, sinks",
             "v_scale applies once to the merged output (the merge is linear); the sink joins once.", OK);

    c = DEC(221, AC_FP16, 16, 4, 192, 3, L(129, 16, 50));
    c->causal = AC_CAUSAL_BOTTOM_RIGHT;
    c->num_splits = 0;
    kvst(c, 128, AC_KV_E5M2, 4, F(0.25f, 0.3f, 2.0f, 7.5f), F(0.125f, 0.9f, 1.5f, 40.0f));
    paged(c, 16, PERMUTED, 0, -1, 1);
    put_case(21, "fp8-e5m2-dv128-dqk192-auto", "decode, D_qk = 192, D_v = 128, E5M2 with per-head scales, automatic "
             "splits", NULL, OK);

    c = DEC(206, AC_BF16, 4, 4, 64, 2, L(30, 1));
    c->causal = AC_CAUSAL_TOP_LEFT;
    c->num_splits = 1;
    paged(c, 16, SEQUENTIAL, 0, -1, 0);
    put_case(6, "tl-lq1-sees-key0", "TL causal with Lq = 1 < Lk: the query sees only key 0",
             "The classic decode bug, stated as a contract: TL means j <= i, so only key 0.", OK);

    c = DEC(207, AC_FP16, 4, 2, 64, 3, L(20, 7, 1));
    c->causal = AC_CAUSAL_BOTTOM_RIGHT;
    c->num_splits = 3;
    paged(c, 7, SEQUENTIAL, 1, -1, 2);
    put_case(7, "block7", "decode on odd block size 7, 3 splits", NULL, OK);

    c = DEC(208, AC_BF16, 4, 1, 64, 2, L(300, 256));
    c->causal = AC_CAUSAL_BOTTOM_RIGHT;
    c->num_splits = 2;
    paged(c, 256, SEQUENTIAL, 0, -1, 0);
    put_case(8, "block256", "decode on block size 256, split on the block edge", NULL, OK);

    c = DEC(209, AC_BF16, 8, 1, 128, 2, L(70, 33));
    c->causal = AC_CAUSAL_BOTTOM_RIGHT;
    c->num_splits = 2;
    c->special = AC_SPECIAL_NAN_SLOTS;
    paged(c, 32, SEQUENTIAL, 1, -1, 2);
    put_case(9, "nan-unused-slots", "NaN in every cache slot past seqlen_k", NULL, OK);

    c = DEC(210, AC_BF16, 8, 2, 64, 3, L(16, 1, 47));
    c->causal = AC_CAUSAL_BOTTOM_RIGHT;
    c->num_splits = 4;
    c->special = AC_SPECIAL_GARBAGE_TABLE | AC_SPECIAL_INF_SLOTS;
    paged(c, 16, SEQUENTIAL, 2, INT32_MIN, 1);
    put_case(10, "garbage-table-inf-slots", "INT32_MIN in unread table entries and Inf in unread slots", NULL, OK);

    c = DEC(211, AC_FP16, 4, 4, 64, 3, L(45, 40, 33));
    c->causal = AC_CAUSAL_BOTTOM_RIGHT;
    c->num_splits = 2;
    paged(c, 16, SHARED_PREFIX, 0, -1, 0);
    put_case(11, "shared-prefix", "decode of three sequences sharing a two-block prefix", NULL, OK);

    c = DEC(212, AC_BF16, 4, 2, 64, 3, L(0, 12, 0));
    c->causal = AC_CAUSAL_BOTTOM_RIGHT;
    c->num_splits = 2;
    paged(c, 16, SEQUENTIAL, 0, -1, 1);
    put_case(12, "lk0", "decode of sequences with no key yet (Lk = 0): O = 0, LSE = -inf", NULL, OK);

    c = DEC(213, AC_BF16, 2, 1, 256, 2, L(90, 31));
    c->causal = AC_CAUSAL_BOTTOM_RIGHT;
    c->num_splits = 3;
    c->scale_given = 1;
    c->scale = 0.125f;
    paged(c, 16, PERMUTED, 0, -1, 1);
    put_case(13, "d256-explicit-scale", "decode, head dim 256, explicit scale 1/8", NULL, OK);

    c = DEC(214, AC_FP16, 4, 4, 96, 2, L(33, 16));
    c->causal = AC_CAUSAL_NONE;
    c->num_splits = 2;
    c->dist = AC_DIST_POSCODE;
    paged(c, 16, SEQUENTIAL, 0, -1, 0);
    put_case(14, "d96-poscode", "decode, head dim 96, position-coded values (which keys were seen)", NULL, OK);

    c = DEC(215, AC_BF16, 8, 8, 64, 2, L(64, 48));
    c->causal = AC_CAUSAL_BOTTOM_RIGHT;
    c->num_splits = 4;
    c->dist = AC_DIST_LARGE;
    paged(c, 16, SEQUENTIAL, 0, -1, 0);
    put_case(15, "large-splits4", "decode with saturated logits over 4 splits (combine rescaling)", NULL, OK);

    c = DEC(290, AC_BF16, 4, 4, 64, 1, L(20));
    c->num_splits = 1;
    put_case(900, "err-contiguous", "decode on a contiguous cache (decode needs paged)", NULL, AC_ERR_UNSUPPORTED);

    c = mk(AC_OP_DECODE, AC_BF16, 4, 4, 64, 1, L(9), L(20), 291);
    c->num_splits = 1;
    paged(c, 16, SEQUENTIAL, 0, -1, 0);
    put_case(901, "err-lq9", "decode step with 9 queries (at most 8)", NULL, AC_ERR_SHAPE);

    c = DEC(292, AC_BF16, 4, 4, 64, 2, L(20, 40));
    c->num_splits = 2;
    paged(c, 16, SEQUENTIAL, 0, -1, 0);
    c->block_table[c->max_blocks_per_seq + 2] = 1000;
    put_case(902, "err-table-entry-out-of-range", "decode with a used table entry past the pool",
             "block_table[1][2] = 1000: the last used entry of sequence 1.", AC_ERR_BLOCK_TABLE);

    c = DEC(293, AC_BF16, 4, 4, 64, 2, L(20, 40));
    c->num_splits = 2;
    paged(c, 16, SEQUENTIAL, 0, -1, 0);
    c->seqlen_k[0] = 49;
    put_case(903, "err-capacity", "decode with seqlen_k past the table's capacity", NULL, AC_ERR_CAPACITY);

    c = DEC(294, AC_BF16, 4, 4, 64, 1, L(0));
    c->seqlen_q[0] = 0;
    c->num_splits = 1;
    paged(c, 16, SEQUENTIAL, 0, -1, 1);
    put_case(904, "err-lq0", "decode step with no query (Lq = 0)", NULL, AC_ERR_SHAPE);
#undef DEC
}

static void combine_seeds(void)
{
    ac_case *c;
    c = mk(AC_OP_COMBINE, AC_BF16, 4, 4, 64, 2, L(1, 3), L(40, 40), 301);
    c->num_splits = 2;
    put_case(1, "splits2", "combine two split partials per (query, head)", NULL, OK);

    c = mk(AC_OP_COMBINE, AC_FP16, 8, 2, 128, 3, L(1, 1, 4), L(64, 17, 90), 302);
    c->num_splits = 5;
    put_case(2, "splits5", "combine five partials, GQA shape", NULL, OK);

    c = mk(AC_OP_COMBINE, AC_BF16, 4, 4, 64, 2, L(1, 2), L(3, 10), 303);
    c->num_splits = 8;
    put_case(3, "empty-splits", "combine with more splits than keys: empty splits (LSE = -inf)",
             "Empty splits must contribute nothing; their O_s is never read.", OK);

    c = mk(AC_OP_COMBINE, AC_BF16, 4, 4, 64, 2, L(2, 1), L(0, 0), 304);
    c->num_splits = 4;
    put_case(4, "all-empty-rows", "combine where every split of every row is empty",
             "Every row: O = 0 and LSE = -inf (no NaN from exp(-inf - -inf)).", OK);

    c = mk(AC_OP_COMBINE, AC_BF16, 4, 4, 64, 3, L(1, 1, 2), L(5, 0, 33), 305);
    c->num_splits = 6;
    c->special = AC_SPECIAL_NAN_PARTIALS;
    put_case(5, "nan-partials-in-empty-splits", "NaN in O_s of empty splits must not reach the output", NULL, OK);

    c = mk(AC_OP_COMBINE, AC_FP16, 4, 4, 64, 2, L(3, 1), L(50, 70), 306);
    c->num_splits = 3;
    c->dist = AC_DIST_LARGE;
    put_case(6, "large-lse-spread", "combine with LSE values far apart (rescaling by the max LSE)", NULL, OK);

    c = mk(AC_OP_COMBINE, AC_BF16, 2, 1, 256, 2, L(1, 1), L(20, 20), 307);
    c->num_splits = 1;
    put_case(7, "splits1-d256", "combine of a single split (identity), head dim 256", NULL, OK);

    c = mk(AC_OP_COMBINE, AC_BF16, 4, 4, 64, 1, L(1), L(20), 390);
    c->num_splits = 0;
    put_case(900, "err-splits0", "combine of zero splits", NULL, AC_ERR_SHAPE);

    c = mk(AC_OP_COMBINE, AC_BF16, 4, 4, 64, 1, L(2), L(20), 391);
    c->num_splits = 2;
    feats(c, -1, -1, 0.0f, 0, 1);
    put_case(901, "err-sinks", "a combine takes no features (the decode's own combine joins its sinks)", NULL,
             AC_ERR_UNSUPPORTED);

    c = mk(AC_OP_COMBINE, AC_BF16, 4, 4, 64, 1, L(2), L(20), 392);
    c->num_splits = 2;
    kvst(c, 32, AC_KV_AS_DTYPE, 0, NULL, NULL);
    put_case(902, "err-head-dim-v", "a combine's partials have one head dim: head_dim_v set", NULL,
             AC_ERR_UNSUPPORTED);
}

/* Store: sequence b appends seqlen_q[b] tokens at positions
   [seqlen_k[b] - seqlen_q[b], seqlen_k[b]); token slots follow the table. */
static void store_slots(ac_case *c, int pad_every)
{
    ac_error e;
    int32_t n = (int32_t)ac_case_total_q(c);
    die_on(ac_case_alloc_slots(c, n, &e), &e, "slots");
    int32_t t = 0;
    for (int32_t b = 0; b < c->batch; b++) {
        const int32_t *row = c->block_table + (int64_t)b * c->max_blocks_per_seq;
        for (int32_t i = 0; i < c->seqlen_q[b]; i++, t++) {
            int32_t p = c->seqlen_k[b] - c->seqlen_q[b] + i;
            c->slot_mapping[t] =
                (pad_every && t % pad_every == pad_every - 1) ? -1 : ac_pos_slot(row, p, c->block_size);
        }
    }
}

static void store_seeds(void)
{
    const char *note = "Sequence b appends seqlen_q[b] tokens ending at position seqlen_k[b]; slot_mapping follows\n"
                       "the block table; -1 tokens are padding and write nothing.";
    ac_case *c;

    c = mk(AC_OP_STORE, AC_BF16, 4, 2, 64, 2, L(5, 1), L(20, 33), 401);
    paged(c, 16, SEQUENTIAL, 0, -1, 1);
    store_slots(c, 0);
    put_case(1, "i32", "store through an int32 slot mapping", note, OK);

    c = mk(AC_OP_STORE, AC_FP16, 4, 4, 128, 2, L(5, 1), L(20, 33), 402);
    paged(c, 16, PERMUTED, 1, -1, 2);
    store_slots(c, 0);
    c->slot_mapping_i64 = 1;
    put_case(2, "i64-permuted", "store through an int64 slot mapping on a permuted table", note, OK);

    c = mk(AC_OP_STORE, AC_BF16, 2, 2, 64, 3, L(8, 3, 6), L(8, 19, 6), 403);
    paged(c, 16, SEQUENTIAL, 0, -1, 1);
    store_slots(c, 3);
    put_case(3, "padding-i32", "store with -1 padding tokens (int32)", note, OK);

    c = mk(AC_OP_STORE, AC_BF16, 2, 2, 64, 2, L(8, 3), L(40, 3), 404);
    paged(c, 16, SEQUENTIAL, 0, -1, 1);
    store_slots(c, 3);
    c->slot_mapping_i64 = 1;
    put_case(4, "padding-i64", "store with -1 padding tokens (int64)", note, OK);

    c = mk(AC_OP_STORE, AC_BF16, 4, 2, 64, 2, L(5, 3), L(20, 33), 406);
    paged(c, 16, PERMUTED, 0, -1, 1);
    store_slots(c, 2);
    kvst(c, 32, AC_KV_E4M3, 2, F(0.01f, 0.3f), F(0.07f, 2.0f));
    put_case(9, "fp8-e4m3-dv32-saturating", "store into an E4M3 cache with D_v = 32, per-head scales; KV head 0's "
             "K scale 0.01 saturates values past 4.48", "code = RNE-saturating(fl32(x / scale)): x * (1 / scale) "
             "differs in the last bit for some x.", OK);

    c = mk(AC_OP_STORE, AC_FP16, 2, 2, 128, 2, L(4, 2), L(9, 30), 407);
    paged(c, 8, SEQUENTIAL, 0, -1, 1);
    store_slots(c, 0);
    c->slot_mapping_i64 = 1;
    kvst(c, 0, AC_KV_E5M2, 1, F(0.3f), F(1.0f));
    put_case(10, "fp8-e5m2-i64", "store into an E5M2 cache, per-tensor scales, int64 slots", NULL, OK);

    c = mk(AC_OP_STORE, AC_BF16, 2, 1, 64, 2, L(4, 2), L(10, 2), 405);
    paged(c, 16, SEQUENTIAL, 0, -1, 1);
    store_slots(c, 1);
    put_case(5, "all-padding", "store where every token is padding: nothing is written", note, OK);

    c = mk(AC_OP_STORE, AC_FP16, 4, 2, 80, 2, L(9, 13), L(16, 13), 406);
    paged(c, 7, PERMUTED, 1, -1, 2);
    store_slots(c, 0);
    put_case(6, "block7", "store across odd block size 7 (tokens straddle blocks)", note, OK);

    c = mk(AC_OP_STORE, AC_BF16, 2, 1, 64, 2, L(3, 4), L(300, 4), 407);
    paged(c, 256, SEQUENTIAL, 0, -1, 0);
    store_slots(c, 0);
    c->slot_mapping_i64 = 1;
    put_case(7, "block256", "store into block size 256 across the block edge", note, OK);

    c = mk(AC_OP_STORE, AC_BF16, 2, 2, 64, 2, L(4, 4), L(4, 4), 408);
    paged(c, 16, SEQUENTIAL, 0, -1, 0);
    store_slots(c, 0);
    c->special = AC_SPECIAL_NAN_SLOTS;
    put_case(8, "nan-cache-untouched", "store into a cache whose other slots hold NaN: they stay as they were",
             note, OK);

    c = mk(AC_OP_STORE, AC_BF16, 2, 2, 64, 2, L(3, 3), L(10, 10), 490);
    paged(c, 16, SEQUENTIAL, 0, -1, 0);
    store_slots(c, 0);
    c->slot_mapping[4] = c->slot_mapping[1];
    put_case(900, "err-slot-collision", "two tokens mapped to one slot", "slot_mapping[1] == slot_mapping[4].",
             AC_ERR_SLOT);

    c = mk(AC_OP_STORE, AC_BF16, 2, 2, 64, 2, L(3, 3), L(10, 10), 491);
    paged(c, 16, SEQUENTIAL, 0, -1, 0);
    store_slots(c, 0);
    c->slot_mapping[2] = (int64_t)c->num_blocks * c->block_size;
    c->slot_mapping_i64 = 1;
    put_case(901, "err-slot-out-of-range", "slot equal to num_blocks * block_size (one past the pool)", NULL,
             AC_ERR_SLOT);

    c = mk(AC_OP_STORE, AC_BF16, 2, 2, 64, 2, L(3, 3), L(10, 10), 492);
    paged(c, 16, SEQUENTIAL, 0, -1, 0);
    store_slots(c, 0);
    c->slot_mapping[0] = -2;
    put_case(902, "err-slot-negative", "slot -2 (only -1 means padding)", NULL, AC_ERR_SLOT);

    c = mk(AC_OP_STORE, AC_BF16, 2, 2, 64, 1, L(3), L(10), 493);
    {
        ac_error e;
        die_on(ac_case_alloc_slots(c, 3, &e), &e, "slots");
        for (int t = 0; t < 3; t++) c->slot_mapping[t] = 7 + t;
    }
    put_case(903, "err-contiguous", "store without a paged cache", NULL, AC_ERR_UNSUPPORTED);

    c = mk(AC_OP_STORE, AC_BF16, 2, 2, 64, 1, L(3), L(10), 494);
    paged(c, 4, SEQUENTIAL, 0, -1, 1);
    store_slots(c, 0);
    feats(c, 8, 0, 0.0f, 0, 0);
    put_case(904, "err-window", "a store takes no features: a window set on one", NULL, AC_ERR_UNSUPPORTED);

    c = mk(AC_OP_STORE, AC_BF16, 4, 4, 64, 1, L(3), L(10), 495);
    paged(c, 4, SEQUENTIAL, 0, -1, 1);
    store_slots(c, 0);
    kvst(c, 0, AC_KV_E4M3, 2, F(0.5f, 0.5f), F(0.5f, 0.5f));
    put_case(905, "err-kv-scales-count", "two scales for four KV heads (1 or heads_kv)", NULL, AC_ERR_SHAPE);
}

/* ==== the fuzz targets' folders ==================================================== */

/* ---- layout: case files ----------------------------------------------------------- */

static void layout_seeds(void)
{
    ac_case *c;
    ac_error e;
    /* valid layouts */
    c = mkl(AC_OP_PREFILL, AC_BF16, 4, 2, 32, 2, L(5, 3), L(20, 33), 1);
    layout(c, 16, AC_LAYOUT_IDENTITY, 0);
    c->causal = AC_CAUSAL_BOTTOM_RIGHT;
    put_case(1, "prefill-identity-block16", NULL, "blocks in order, a spare column of -1", AS_VALIDATED);

    c = mkl(AC_OP_PREFILL, AC_FP16, 2, 2, 16, 2, L(4, 4), L(9, 6), 2);
    layout(c, 1, AC_LAYOUT_PERMUTED, 3);
    put_case(2, "prefill-permuted-block1", NULL,
             "every key in its own block, drawn without replacement, 3 spare blocks", AS_VALIDATED);

    c = mkl(AC_OP_PREFILL, AC_BF16, 2, 1, 16, 3, L(2, 3, 1), L(17, 12, 21), 3);
    layout(c, 4, AC_LAYOUT_SHARED_PREFIX, 1);
    c->causal = AC_CAUSAL_TOP_LEFT;
    put_case(3, "prefill-shared-prefix-block4", NULL,
             "leading full blocks shared by the three sequences", AS_VALIDATED);

    c = mkl(AC_OP_PREFILL, AC_BF16, 2, 2, 24, 2, L(3, 2), L(10, 7), 4);
    c->special = AC_SPECIAL_GARBAGE_TABLE | AC_SPECIAL_NAN_SLOTS;
    layout(c, 3, AC_LAYOUT_PERMUTED, 2);
    c->causal = AC_CAUSAL_BOTTOM_RIGHT;
    put_case(4, "prefill-block3-garbage-table-nan-slots", NULL,
             "unused entries hold garbage, unread slots NaN", AS_VALIDATED);

    c = mkl(AC_OP_PREFILL, AC_FP16, 4, 2, 16, 2, L(4, 3), L(11, 5), 5);
    layout(c, 5, AC_LAYOUT_IDENTITY, 0);
    c->mask = AC_MASK_BOOL;
    c->mask_per_head = 1;
    c->mask_density = 0.5f;
    c->causal = AC_CAUSAL_TOP_LEFT;
    put_case(5, "prefill-block5-bool-mask-per-head", NULL, NULL, AS_VALIDATED);

    /* Sampling with replacement: one physical block read at several logical
       positions of one sequence and by another one. */
    c = mkl(AC_OP_PREFILL, AC_BF16, 2, 2, 16, 2, L(3, 2), L(12, 8), 6);
    layout(c, 4, AC_LAYOUT_IDENTITY, 0);
    c->block_table[0] = 2, c->block_table[1] = 2, c->block_table[2] = 2;
    c->block_table[c->max_blocks_per_seq + 0] = 2;
    put_case(6, "prefill-table-with-replacement", NULL,
             "block 2 at positions 0, 1, 2 of sequence 0 and 0 of sequence 1", AS_VALIDATED);

    c = mkl(AC_OP_PREFILL, AC_BF16, 2, 2, 16, 3, L(3, 0, 2), L(0, 5, 9), 7);
    layout(c, 8, AC_LAYOUT_PERMUTED, 1);
    c->causal = AC_CAUSAL_BOTTOM_RIGHT;
    put_case(7, "prefill-lk0-lq0", NULL,
             "a sequence with no keys (empty rows: O = 0, LSE = -inf) and one with no queries", AS_VALIDATED);

    c = mkl(AC_OP_DECODE, AC_BF16, 4, 1, 32, 3, L(1, 1, 1), L(30, 16, 1), 8);
    layout(c, 16, AC_LAYOUT_IDENTITY, 0);
    c->num_splits = 1;
    put_case(8, "decode-identity-block16-splits1", NULL, NULL, AS_VALIDATED);

    c = mkl(AC_OP_DECODE, AC_FP16, 2, 2, 16, 2, L(1, 2), L(40, 23), 9);
    layout(c, 7, AC_LAYOUT_PERMUTED, 2);
    c->num_splits = 0;
    put_case(9, "decode-permuted-block7-splits-auto", NULL, NULL, AS_VALIDATED);

    c = mkl(AC_OP_DECODE, AC_BF16, 2, 1, 16, 2, L(1, 1), L(9, 4), 10);
    layout(c, 2, AC_LAYOUT_IDENTITY, 0);
    c->num_splits = 33;
    put_case(10, "decode-more-splits-than-blocks", NULL,
             "33 splits over at most 5 blocks: empty splits (-inf) in the combine", AS_VALIDATED);

    c = mkl(AC_OP_DECODE, AC_BF16, 4, 2, 16, 2, L(8, 5), L(24, 30), 11);
    c->special = AC_SPECIAL_INF_SLOTS;
    layout(c, 4, AC_LAYOUT_SHARED_PREFIX, 1);
    c->num_splits = 3;
    put_case(11, "decode-speculative-lq8-shared-prefix-inf-slots", NULL, NULL, AS_VALIDATED);

    c = mkl(AC_OP_DECODE, AC_FP16, 8, 1, 8, 2, L(1, 3), L(13, 29), 12);
    c->special = AC_SPECIAL_GARBAGE_TABLE;
    layout(c, 8, AC_LAYOUT_PERMUTED, 0);
    c->num_splits = 2;
    put_case(12, "decode-gqa8-d8-garbage-table", NULL, NULL, AS_VALIDATED);

    c = mkl(AC_OP_DECODE, AC_BF16, 2, 2, 16, 2, L(1, 1), L(20, 11), 13);
    c->dist = AC_DIST_POSCODE;
    layout(c, 4, AC_LAYOUT_PERMUTED, 0);
    c->num_splits = 4;
    put_case(13, "decode-poscode-block4", NULL,
             "V encodes the position: a wrong table entry shows in the output", AS_VALIDATED);

    /* seqlen_k exactly at the table's capacity (a valid edge). */
    c = mkl(AC_OP_DECODE, AC_BF16, 2, 2, 16, 1, L(1), L(12), 14);
    layout(c, 4, AC_LAYOUT_IDENTITY, 0);
    die_on(ac_case_alloc_table(c, 3, &e), &e, "table");
    c->block_table[0] = 2, c->block_table[1] = 0, c->block_table[2] = 1;
    c->num_splits = 2;
    put_case(14, "decode-lk-at-capacity", NULL, "seqlen_k = max_blocks_per_seq * block_size = 12", AS_VALIDATED);

    c = mkl(AC_OP_STORE, AC_BF16, 2, 2, 16, 2, NULL, L(9, 14), 15);
    layout(c, 4, AC_LAYOUT_PERMUTED, 1);
    die_on(ac_case_make_store_slots(c, 3, 2, &e), &e, "slots");
    put_case(15, "store-i32-padding", NULL, NULL, AS_VALIDATED);

    c = mkl(AC_OP_STORE, AC_FP16, 2, 1, 24, 3, NULL, L(17, 12, 21), 16);
    c->special = AC_SPECIAL_NAN_SLOTS;
    layout(c, 4, AC_LAYOUT_SHARED_PREFIX, 0);
    die_on(ac_case_make_store_slots(c, 4, 1, &e), &e, "slots");
    c->slot_mapping_i64 = 1;
    put_case(16, "store-i64-shared-prefix-nan-slots", NULL, "the shared blocks are never written", AS_VALIDATED);

    c = mkl(AC_OP_STORE, AC_BF16, 1, 1, 8, 1, NULL, L(3), 17);
    layout(c, 1, AC_LAYOUT_IDENTITY, 0);
    die_on(ac_case_make_store_slots(c, 0, 4, &e), &e, "slots");
    put_case(17, "store-block1-all-padding", NULL, "four -1 tokens: nothing is written", AS_VALIDATED);

    /* the features with the layouts: window edges on a block of 7 and on the tile */
    c = mkl(AC_OP_DECODE, AC_BF16, 4, 2, 16, 2, L(1, 3), L(50, 29), 18);
    layout(c, 7, AC_LAYOUT_PERMUTED, 1);
    c->num_splits = 3;
    feats(c, 49 - 35, 0, 0.0f, 1, 1);
    put_case(18, "decode-window-block7-edge", NULL, "sequence 0's window starts at key 35, a block-of-7 edge",
             AS_VALIDATED);

    c = mkl(AC_OP_PREFILL, AC_FP16, 4, 4, 16, 2, L(9, 30), L(80, 30), 19);
    c->causal = AC_CAUSAL_BOTTOM_RIGHT;
    layout(c, 16, AC_LAYOUT_PERMUTED, 2);
    feats(c, 71 - 64, 0, 2.5f, 0, 0);
    put_case(19, "prefill-window-tile-edge-softcap", NULL, "query 0 of sequence 0 starts its window at key 64",
             AS_VALIDATED);

    c = mkl(AC_OP_PREFILL, AC_BF16, 4, 2, 16, 3, L(4, 6, 2), L(40, 33, 1), 20);
    c->causal = AC_CAUSAL_BOTTOM_RIGHT;
    layout(c, 4, AC_LAYOUT_SHARED_PREFIX, 0);
    feats(c, -1, -1, 0.0f, 1, 1);
    put_case(20, "prefill-alibi-sinks-shared-prefix", NULL, NULL, AS_VALIDATED);

    /* invalid layouts: the named error */
    c = mkl(AC_OP_DECODE, AC_BF16, 2, 2, 16, 2, L(1, 1), L(16, 8), 900);
    layout(c, 4, AC_LAYOUT_IDENTITY, 0);
    c->seqlen_k[1] = c->max_blocks_per_seq * 4 + 1;
    put_case(900, "err-decode-capacity-plus-one", NULL, "seqlen_k[1] one key past the table's capacity", AS_VALIDATED);

    c = mkl(AC_OP_PREFILL, AC_BF16, 2, 2, 16, 2, L(2, 2), L(9, 13), 901);
    layout(c, 4, AC_LAYOUT_PERMUTED, 0);
    c->block_table[c->max_blocks_per_seq + 3] = c->num_blocks;
    put_case(901, "err-prefill-last-used-entry-is-pool-size", NULL, "block_table[1][3] = num_blocks", AS_VALIDATED);

    c = mkl(AC_OP_PREFILL, AC_FP16, 2, 2, 16, 1, L(2), L(5), 902);
    layout(c, 2, AC_LAYOUT_IDENTITY, 0);
    c->block_table[1] = -1;
    put_case(902, "err-prefill-used-entry-minus-one", NULL, NULL, AS_VALIDATED);

    c = mkl(AC_OP_DECODE, AC_BF16, 2, 2, 16, 1, L(1), L(5), 903);
    layout(c, 2, AC_LAYOUT_IDENTITY, 0);
    c->block_size = 0;
    put_case(903, "err-decode-block-size-0", NULL, NULL, AS_VALIDATED);

    c = mkl(AC_OP_STORE, AC_BF16, 2, 2, 16, 2, NULL, L(6, 7), 904);
    layout(c, 4, AC_LAYOUT_IDENTITY, 0);
    die_on(ac_case_make_store_slots(c, 2, 0, &e), &e, "slots");
    c->slot_mapping[3] = c->slot_mapping[0];
    put_case(904, "err-store-slot-collision", NULL, "tokens 0 and 3 both map to one slot", AS_VALIDATED);

    c = mkl(AC_OP_STORE, AC_BF16, 2, 2, 16, 1, NULL, L(6), 905);
    layout(c, 4, AC_LAYOUT_IDENTITY, 0);
    die_on(ac_case_make_store_slots(c, 2, 1, &e), &e, "slots");
    c->slot_mapping[1] = (int64_t)c->num_blocks * c->block_size;
    put_case(905, "err-store-slot-past-pool", NULL, NULL, AS_VALIDATED);

    c = mkl(AC_OP_STORE, AC_BF16, 1, 1, 8, 1, NULL, L(4), 906);
    layout(c, 4, AC_LAYOUT_IDENTITY, 0);
    die_on(ac_case_make_store_slots(c, 1, 0, &e), &e, "slots");
    c->slot_mapping[0] = (int64_t)INT32_MAX + 1;
    put_case(906, "err-store-i32-slot-overflow", NULL, "slot 2^31 in the int32 form", AS_VALIDATED);

    c = mkl(AC_OP_PREFILL, AC_BF16, 3, 2, 16, 1, L(2), L(5), 907);
    layout(c, 4, AC_LAYOUT_IDENTITY, 0);
    put_case(907, "err-prefill-gqa-3-2", NULL, NULL, AS_VALIDATED);

    c = mkl(AC_OP_DECODE, AC_BF16, 2, 2, 16, 1, L(9), L(12), 908);
    layout(c, 4, AC_LAYOUT_IDENTITY, 0);
    put_case(908, "err-decode-lq9", NULL, NULL, AS_VALIDATED);

    c = mkl(AC_OP_PREFILL, AC_BF16, 2, 2, 16, 1, L(2), L(5), 909);
    layout(c, 4, AC_LAYOUT_IDENTITY, 0);
    c->num_blocks = 0;
    put_case(909, "err-prefill-pool-0", NULL, NULL, AS_VALIDATED);

    c = mkl(AC_OP_DECODE, AC_BF16, 2, 2, 16, 2, L(1, 1), L(5, 9), 910);
    layout(c, 4, AC_LAYOUT_IDENTITY, 0);
    c->seqlen_k[0] = -1;
    put_case(910, "err-decode-negative-seqlen-k", NULL, NULL, AS_VALIDATED);

    c = mkl(AC_OP_STORE, AC_BF16, 2, 2, 16, 1, NULL, L(6), 911);
    layout(c, 4, AC_LAYOUT_IDENTITY, 0);
    die_on(ac_case_make_store_slots(c, 2, 0, &e), &e, "slots");
    feats(c, -1, -1, 0.0f, 0, 1);
    put_case(911, "err-store-sinks", NULL, "a store takes no features", AS_VALIDATED);
}

/* ---- combine: ac_fuzz_partials records -------------------------------------------- */

static void put_partials(int num, const char *slug, const ac_fuzz_partials *p)
{
    static uint8_t buf[8192];
    size_t n = ac_fuzz_partials_encode(p, buf, sizeof buf);
    put_bytes(num, slug, buf, n);
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

static void partials_seeds(void)
{
    ac_fuzz_partials p;
    partials(&p, AC_BF16, 2, 3, 8, 1);
    float a[] = {0.5f, -1.0f, 2.0f, 3.0f, 3.0f, -7.0f};
    memcpy(p.lse, a, sizeof a);
    put_partials(1, "finite-small", &p);

    partials(&p, AC_FP16, 3, 4, 16, 2);
    for (int i = 0; i < 12; i++) p.lse[i] = (i / 4 == 1) ? -INFINITY : (float)i;
    put_partials(2, "row-all-empty", &p);

    partials(&p, AC_BF16, 2, 4, 8, 3);
    float b[] = {1e30f, -1e30f, -INFINITY, -1e30f, -1e4f, 1e4f, 0.0f, -INFINITY};
    memcpy(p.lse, b, sizeof b);
    put_partials(3, "spread-1e30", &p);

    partials(&p, AC_BF16, 1, 3, 16, 4);
    float c[] = {FLT_MAX, -FLT_MAX, FLT_MAX};
    memcpy(p.lse, c, sizeof c);
    put_partials(4, "flt-max-ties", &p);

    partials(&p, AC_FP16, 2, 5, 8, 5);
    p.nan_in_empty = 1;
    float d[] = {-INFINITY, 1.0f, -INFINITY, 2.0f, -INFINITY, -INFINITY, -INFINITY, 0.0f, -INFINITY, -INFINITY};
    memcpy(p.lse, d, sizeof d);
    p.o_kind[0] = 6; /* Inf in an empty split */
    put_partials(5, "nan-inf-in-empty-splits", &p);

    partials(&p, AC_BF16, 1, 24, 1, 6);
    for (int i = 0; i < 24; i++) p.lse[i] = 88.72f;
    put_partials(6, "ties-24-splits-d1", &p);

    partials(&p, AC_FP16, 2, 3, 32, 7);
    float f[] = {103.98f, 0.0f, -103.98f, 87.33f, -87.33f, 1e-45f};
    memcpy(p.lse, f, sizeof f);
    p.o_kind[1] = 2, p.o_kind[4] = 4;
    put_partials(7, "exp-range-edges-large-and-denormal-o", &p);

    partials(&p, AC_BF16, 8, 1, 64, 8);
    for (int i = 0; i < 8; i++) p.lse[i] = i % 3 == 0 ? -INFINITY : (float)(i * 10);
    put_partials(8, "one-split-rows-d64", &p);
}

/* ---- api: argument records -------------------------------------------------------- */

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
        snprintf(nm, sizeof nm, "%s-plain", opn[op]);
        put_bytes(num++, nm, rec, 17);
        /* Large shapes, validation only (op byte >= 0xc0): index bytes into
           api_large's tables. Decode uses one explicit split here; the
           automatic count is finding api/1001's. */
        static const uint8_t large[4][10] = {
            {0xc0, 4, 1, 2, 2, 3, 1, 1, 0, 0},  /* prefill B=65535 Hkv=8 Hq=32 D=128 Lq=128 Lk=4096, contiguous */
            {0xc1, 2, 3, 0, 0, 7, 1, 2, 2, 0},  /* decode B=513 Hq=Hkv=1024 D=8 Lq=8 Lk=4096 block=256 splits=1 */
            {0xc2, 0, 0, 0, 0, 2, 1, 1, 0, 0},  /* combine rows=2^31-1 splits=4096 D=1024 */
            {0xc3, 0, 3, 0, 1, 2, 1, 2, 0, 0},  /* store tokens=65536 Hkv=1024 D=64 pool=2^31-1 */
        };
        snprintf(nm, sizeof nm, "%s-large-shape", opn[op]);
        put_bytes(800 + op, nm, large[op], sizeof large[op]);
        for (int k = 0; k < nkinds[op]; k++) {
            rec[17] = (uint8_t)k, rec[18] = (uint8_t)(k * 5 + 1), rec[19] = (uint8_t)(k * 3 + 2);
            snprintf(nm, sizeof nm, "%s-corruption%02d", opn[op], k);
            put_bytes(num++, nm, rec, 20);
        }
    }
}

/* ---- casefile: parser inputs ------------------------------------------------------ */

static void casefile_seeds(void)
{
    ac_case *c = mkl(AC_OP_DECODE, AC_BF16, 4, 2, 16, 2, L(1, 2), L(9, 20), 1);
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
    put_bytes(1, "decode-valid", (const uint8_t *)text, n);
    /* malformed variants of the same text */
    put_bytes(2, "truncated-no-newline", (const uint8_t *)text, n - 1);
    char *crlf = malloc(n * 2);
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (text[i] == '\n') crlf[m++] = '\r';
        crlf[m++] = text[i];
    }
    put_bytes(3, "crlf", (const uint8_t *)crlf, m);
    free(crlf);
    const char *dup = "attncheck-case 1\ntitle t\ntitle u\n";
    put_bytes(4, "duplicate-key", (const uint8_t *)dup, strlen(dup));
    const char *big = "attncheck-case 1\nbatch 99999999999999999999\n";
    put_bytes(5, "number-out-of-range", (const uint8_t *)big, strlen(big));
    const char *newer = "attncheck-case 2\n";
    put_bytes(6, "newer-version", (const uint8_t *)newer, strlen(newer));
    const uint8_t nul[] = {'a', 't', 't', 0, '\n'};
    put_bytes(7, "nul-byte", nul, sizeof nul);
    free(text);
    ac_casefile_free(&f);

    c = mkl(AC_OP_COMBINE, AC_FP16, 2, 2, 8, 1, L(3), L(5), 8);
    c->num_splits = 4;
    c->special = AC_SPECIAL_NAN_PARTIALS;
    c->scale_given = 1;
    c->scale = -0.0f;
    die_on(ac_casefile_from_case(&f, c, &e), &e, "casefile");
    f.expect_error = 1;
    f.expect_code = AC_ERR_SHAPE;
    die_on(ac_casefile_write(&f, &text, &n, &e), &e, "write");
    put_bytes(8, "combine-negative-zero-scale-expect-error", (const uint8_t *)text, n);
    free(text);
    ac_casefile_free(&f);
}

/* ---- dump: dumped calls (fuzz/ac_fuzz_dump.c makes them) ---------------------------- */

static void dump_seeds(void)
{
    for (int i = 0; i < ac_fuzz_dump_seed_count(); i++) {
        const char *slug;
        uint8_t *bytes;
        size_t n;
        ac_error e;
        die_on(ac_fuzz_dump_seed(i, &slug, &bytes, &n, &e), &e, "dump seed");
        put_bytes(i + 1, slug, bytes, n);
        free(bytes);
    }
}

/* ==== folders, the registries, the command line ==================================== */

/* Seeds of each family (keyed by op) and of each fuzz target (keyed by name).
   A family or target the registries list without an entry here is an error:
   a new one gets its seeds (or an empty writer) on purpose. */
/* ---- cases past 2^31 elements (corpus/index64, docs/DATA.md "Sparse cases") ----- */

#define MARK ((int64_t)1 << 31)

/* Row b of g_case's table: `n` blocks from `first` stepping by `step`, the
   rest of the row -1. */
static void table_run(ac_case *c, int32_t b, int32_t first, int32_t step, int32_t n)
{
    int32_t *row = c->block_table + (int64_t)b * c->max_blocks_per_seq;
    for (int32_t i = 0; i < c->max_blocks_per_seq; i++) row[i] = i < n ? first + i * step : -1;
}

static void sparse_pool(ac_case *c, int32_t bs, int32_t num_blocks, int32_t mbps)
{
    ac_error e;
    c->paged = 1;
    c->block_size = bs;
    c->num_blocks = num_blocks;
    die_on(ac_case_alloc_table(c, mbps, &e), &e, "table");
    c->special |= AC_SPECIAL_SPARSE;
}

static void sparse_store(ac_case *c, int32_t bs, int32_t num_blocks, const int64_t *slots, int32_t n, int i64)
{
    ac_error e;
    sparse_pool(c, bs, num_blocks, 1);
    die_on(ac_case_alloc_slots(c, n, &e), &e, "slots");
    for (int32_t t = 0; t < n; t++) c->slot_mapping[t] = slots[t];
    c->slot_mapping_i64 = i64;
}

/* Each case marks the 2^31 line with blocks, rows or slots on both sides of
   it, so an offset kept in 32 bits lands elsewhere; `sparse` keeps the CPU
   models' memory to what the case reads. */
static void index64_seeds(void)
{
    char note[512];
    ac_case *c;

    /* Decode: Hkv * D = 1024 elements per slot, block 16: the line is block 131072. */
    int32_t mark = (int32_t)(MARK / (16 * 8 * 128)), nb = mark + 4096;
    c = mk(AC_OP_DECODE, AC_BF16, 32, 8, 128, 3, L(1, 4, 2), L(700, 1000, 33), 6401);
    c->causal = AC_CAUSAL_BOTTOM_RIGHT;
    c->num_splits = 3;
    c->special = AC_SPECIAL_NAN_SLOTS;
    sparse_pool(c, 16, nb, 64);
    table_run(c, 0, mark - 22, 1, 44);        /* 700 keys straddling the line */
    table_run(c, 1, nb - 1, -1, 63);          /* 1000 keys in the last blocks, backwards */
    table_run(c, 2, 5, 1, 3);                 /* 33 keys: low, just under and at the line */
    c->block_table[2 * 64 + 1] = mark - 1;
    c->block_table[2 * 64 + 2] = mark;
    snprintf(note, sizeof note, "Pool %d blocks x 16 slots x 8 heads x 128 = %lld elements (2^31 = %lld). A block offset\n"
             "computed in 32 bits reads the wrong keys for every block from %d on.", nb,
             (long long)nb * 16 * 8 * 128, (long long)MARK, mark);
    put_case(1, "decode-pool-past-2g", "decode, paged pool of 2^31+ elements, blocks on both sides of the line", note, OK);

    /* Paged prefill: Hkv * D = 256, block 256: 65536 elements per block, the line at block 32768. */
    mark = (int32_t)(MARK / (256 * 2 * 128));
    nb = mark + 232;
    c = mk(AC_OP_PREFILL, AC_FP16, 16, 2, 128, 2, L(300, 129), L(1000, 700), 6402);
    c->causal = AC_CAUSAL_BOTTOM_RIGHT;
    sparse_pool(c, 256, nb, 5);
    table_run(c, 0, mark - 2, 1, 3);
    c->block_table[3] = nb - 1;
    table_run(c, 1, mark + 32, 100, 3);
    c->block_table[5 + 1] = 10;
    c->block_table[5 + 2] = mark + 132;
    snprintf(note, sizeof note, "Pool %d blocks x 256 x 2 x 128 = %lld elements; blocks %d and up lie past 2^31.", nb,
             (long long)nb * 256 * 2 * 128, mark);
    put_case(2, "prefill-paged-pool-past-2g", "prefill, paged pool of 2^31+ elements, chunked (Lq < Lk) bottom-right",
             note, OK);

    /* Contiguous prefill whose packed q/out pass 2^31 elements: Hq * D = 2048 per token. */
    int32_t filler = (int32_t)(MARK / (16 * 128)) + 24;
    c = mk(AC_OP_PREFILL, AC_BF16, 16, 4, 128, 3, L(77, filler, 130), L(200, 0, 257), 6403);
    c->causal = AC_CAUSAL_BOTTOM_RIGHT;
    c->special = AC_SPECIAL_SPARSE;
    snprintf(note, sizeof note, "Sequence 1 has %d queries and no key: its rows are empty and are checked exactly\n"
             "(O = 0, LSE = -inf). Sequence 2's rows start past element 2^31 of q and out.", filler);
    put_case(3, "prefill-q-past-2g", "prefill, packed q and out of 2^31+ elements (a sequence without keys between)",
             note, OK);

    /* Store through int64 slots past 2^31: Hkv * D = 8 per slot, a pool of 2^31 + 1024 slots. */
    nb = (int32_t)(MARK / 16) + 64;
    c = mk(AC_OP_STORE, AC_BF16, 1, 1, 8, 1, L(0), L(0), 6404);
    sparse_store(c, 16, nb, (const int64_t[]){MARK - 1, MARK, 5, -1, MARK + 1000, (int64_t)nb * 16 - 1, MARK - 17}, 7, 1);
    put_case(4, "store-slots-past-2g", "store, int64 slots past 2^31 (a pool of 2^31 + 1024 slots)",
             "A store that keeps the low 32 bits of a slot, or reads it as int32, misses slot 2^31 and up.", OK);

    /* Store through int32 slots whose element offsets pass 2^31: Hkv * D = 1024 per slot. */
    nb = (int32_t)(MARK / (16 * 8 * 128)) + 64;
    int64_t line = MARK / (8 * 128);
    c = mk(AC_OP_STORE, AC_FP16, 8, 8, 128, 1, L(0), L(0), 6405);
    sparse_store(c, 16, nb, (const int64_t[]){line - 1, line, 3, line + 500, -1, (int64_t)nb * 16 - 1}, 6, 0);
    snprintf(note, sizeof note, "Slot %lld starts at element 2^31: slot * Hkv * D in 32 bits wraps there.", (long long)line);
    put_case(5, "store-offsets-past-2g", "store, int32 slots whose element offsets pass 2^31", note, OK);

    /* Decode whose packed q/out pass 2^31 elements: Hq * D = 65536 per token,
       4100 steps of 8 queries; four sequences have keys (the first, the two
       on either side of the line, the last), the others none. */
    int32_t steps = 4100, at = (int32_t)(MARK / (256 * 256) / 8);
    c = mk(AC_OP_DECODE, AC_BF16, 256, 8, 256, 1, NULL, L(0), 6406);
    ac_error e;
    die_on(ac_case_set_batch(c, steps, &e), &e, "batch");
    for (int32_t b = 0; b < steps; b++) c->seqlen_q[b] = 8;
    c->seqlen_k[0] = 40;
    c->seqlen_k[at - 1] = 100;
    c->seqlen_k[at] = 64;
    c->seqlen_k[steps - 1] = 33;
    c->causal = AC_CAUSAL_BOTTOM_RIGHT;
    sparse_pool(c, 16, 20, 7);
    for (int32_t b = 0; b < steps; b++) table_run(c, b, 0, 1, 0);
    table_run(c, 0, 0, 1, 3);
    table_run(c, at - 1, 3, 1, 7);
    table_run(c, at, 10, 1, 4);
    table_run(c, steps - 1, 19, -1, 3);
    snprintf(note, sizeof note, "Sequence %d's queries start at element 2^31 of q and out (8 x 256 heads x 256 per step);\n"
             "steps without keys are empty rows, checked exactly.", at);
    put_case(6, "decode-q-past-2g", "decode, packed q and out of 2^31+ elements (4100 steps of 8 queries)", note, OK);
}
#undef MARK

static const struct { ac_op op; void (*write)(void); } family_seeds[] = {
    {AC_OP_PREFILL, prefill_seeds},
    {AC_OP_DECODE, decode_seeds},
    {AC_OP_COMBINE, combine_seeds},
    {AC_OP_STORE, store_seeds},
};
static const struct { const char *target, *ext; void (*write)(void); } target_seeds[] = {
    {"layout", ".case", layout_seeds},
    {"combine", ".bin", partials_seeds},
    {"api", ".bin", api_seeds},
    {"casefile", ".in", casefile_seeds},
    {"dump", ".safetensors", dump_seeds},
};

typedef struct folder {
    const char *dir;    /* corpus/<dir> */
    const char *owner;  /* family or target name */
    const char *kind;   /* "family" or "fuzz target" */
    const char *ext;
    ac_op op;           /* the family's op; AC_OP_COUNT for a target */
    void (*write)(void);
} folder;

#define MAX_FOLDERS 32

/* Every folder of corpus/, from the two registries. Returns the count, or -1
   (message printed) when a registry entry has no seeds here. */
static int folders(folder *out)
{
    int n = 0;
    const ac_family *const *fam = ac_families();
    for (int i = 0; i < AC_OP_COUNT && n < MAX_FOLDERS; i++) {
        void (*w)(void) = NULL;
        for (size_t k = 0; k < sizeof family_seeds / sizeof *family_seeds; k++)
            if (family_seeds[k].op == fam[i]->op) w = family_seeds[k].write;
        if (!w) {
            fprintf(stderr, "attncheck-corpus: family %s has no seeds in tools/corpus_writer.c\n", fam[i]->name);
            return -1;
        }
        out[n++] = (folder){fam[i]->corpus_dir, fam[i]->name, "family", ".case", fam[i]->op, w};
    }
    const ac_fuzz_target *const *t = ac_fuzz_targets();
    for (int i = 0; t[i] && n < MAX_FOLDERS; i++) {
        int k = 0, nk = (int)(sizeof target_seeds / sizeof *target_seeds);
        while (k < nk && strcmp(target_seeds[k].target, t[i]->name)) k++;
        if (k == nk) {
            fprintf(stderr, "attncheck-corpus: fuzz target %s has no seeds in tools/corpus_writer.c\n", t[i]->name);
            return -1;
        }
        out[n++] = (folder){t[i]->seed_dir, t[i]->name, "fuzz target", target_seeds[k].ext, AC_OP_COUNT,
                            target_seeds[k].write};
    }
    /* Folders of neither registry: cases past 2^31 elements of any family. */
    if (n < MAX_FOLDERS) out[n++] = (folder){"index64", "index64", "cases", ".case", AC_OP_COUNT, index64_seeds};
    return n;
}

/* NNNN of a file name "NNNN-...", or -1. */
static int file_number(const char *name)
{
    for (int i = 0; i < 4; i++)
        if (name[i] < '0' || name[i] > '9') return -1;
    return name[4] == '-' ? atoi(name) : -1;
}

/* The next free finding number of a folder: one past the highest number from
   1000 up (numbers are not reused while the file with the highest one stays);
   `want` > 0 asks for that number, which must be free. -1 if none. */
static int finding_number(const char *dirpath, int want)
{
    int top = FINDING_FIRST - 1, taken = 0;
    DIR *d = opendir(dirpath);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            int k = file_number(e->d_name);
            if (k > top) top = k;
            if (k == want) taken = 1;
        }
        closedir(d);
    }
    if (want > 0) return taken ? -1 : want;
    return top < FINDING_LAST ? top + 1 : -1;
}

/* A number option: decimal, all of it, within [lo, hi]. */
static int parse_int(const char *opt, const char *s, long lo, long hi, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (!*s || *end || errno || v < lo || v > hi) {
        fprintf(stderr, "attncheck-corpus: %s %s: expected an integer in [%ld, %ld]\n", opt, s, lo, hi);
        return -1;
    }
    *out = (int)v;
    return 0;
}

/* A topic: [a-z0-9-], starting and ending with a letter or digit. */
static int good_slug(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 80 || s[0] == '-' || s[n - 1] == '-') return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-')) return 0;
    return 1;
}

/* --save: FILE becomes <root>/<dir>/NNNN-<topic><ext> with the folder's next
   finding number. A case file is stored canonical and must carry a note (what
   was found, and how it stands: corpus/README.md); a binary input brings its
   description FILE.txt along. */
static int save_finding(const folder *fo, const char *file, const char *topic, int number)
{
    char dirpath[1024], path[1200], txt[1300];
    snprintf(dirpath, sizeof dirpath, "%s/%s", g_root, fo->dir);
    int num = finding_number(dirpath, number);
    if (num < 0) {
        fprintf(stderr, "attncheck-corpus: --save: %s: %s\n", dirpath,
                number ? "that number is taken" : "no finding number left");
        return 2;
    }
    ac_error me;
    if (ac_mkdirs(dirpath, &me)) {
        fprintf(stderr, "attncheck-corpus: %s\n", me.msg);
        return 2;
    }
    snprintf(path, sizeof path, "%s/%04d-%s%s", dirpath, num, topic, fo->ext);
    ac_error e;
    if (!strcmp(fo->ext, ".case")) {
        ac_casefile f;
        if (ac_casefile_load(file, &f, &e)) {
            fprintf(stderr, "attncheck-corpus: --save: %s\n", e.msg);
            return 2;
        }
        ac_status got = ac_case_validate(&f.c, &e);
        const char *why = NULL;
        if (!f.note || !f.note[0]) why = "has no note: say what was found and how it stands";
        else if (fo->op != AC_OP_COUNT && f.c.op != fo->op) why = "op differs from the folder's family";
        else if (fo->op != AC_OP_COUNT && got != (f.expect_error ? f.expect_code : AC_OK))
            why = "expectation differs from what ac_case_validate gives";
        ac_status st = why ? AC_OK : ac_casefile_save(path, &f, &e);
        ac_casefile_free(&f);
        if (why || st) {
            fprintf(stderr, "attncheck-corpus: --save %s: %s\n", file, why ? why : e.msg);
            return 2;
        }
    } else {
        uint8_t *data, *desc;
        size_t n, nd;
        snprintf(txt, sizeof txt, "%s.txt", file);
        if (ac_fuzz_read_file(file, &data, &n, (size_t)1 << 30, &e)) {
            fprintf(stderr, "attncheck-corpus: --save: %s\n", e.msg);
            return 2;
        }
        if (ac_fuzz_read_file(txt, &desc, &nd, (size_t)1 << 20, &e) || nd == 0) {
            fprintf(stderr, "attncheck-corpus: --save: %s needs its description %s\n", file, txt);
            free(data);
            return 2;
        }
        int bad = write_file(path, data, n);
        snprintf(txt, sizeof txt, "%s.txt", path);
        bad = bad || write_file(txt, desc, nd);
        free(data);
        free(desc);
        if (bad) {
            fprintf(stderr, "attncheck-corpus: cannot write %s: %s\n", path, strerror(errno));
            return 2;
        }
    }
    printf("%s\n", path);
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: attncheck-corpus [--out DIR] [--only FOLDER]...\n"
            "       attncheck-corpus --list [--out DIR]\n"
            "       attncheck-corpus --save FILE --into FOLDER --topic SLUG [--number N] [--out DIR]\n"
            "  -o, --out DIR      the corpus root (default corpus)\n"
            "      --only FOLDER  write only this folder (a name --list shows); repeatable\n"
            "      --list         each folder, its owner and its next free finding number\n"
            "      --save FILE    add a finding as <out>/FOLDER/NNNN-SLUG (NNNN: next free from 1000)\n"
            "      --into FOLDER  the folder --save adds to\n"
            "      --topic SLUG   what broke, [a-z0-9-]\n"
            "      --number N     this number instead of the next free one (%d..%d, unused)\n"
            "corpus/README.md: the folders, the numbering rule, DISABLED.\n",
            FINDING_FIRST, FINDING_LAST);
}

int main(int argc, char **argv)
{
    enum { OPT_ONLY = 256, OPT_LIST, OPT_SAVE, OPT_INTO, OPT_TOPIC, OPT_NUMBER };
    static const struct option longopts[] = {
        {"out", required_argument, NULL, 'o'},      {"only", required_argument, NULL, OPT_ONLY},
        {"list", no_argument, NULL, OPT_LIST},      {"save", required_argument, NULL, OPT_SAVE},
        {"into", required_argument, NULL, OPT_INTO}, {"topic", required_argument, NULL, OPT_TOPIC},
        {"number", required_argument, NULL, OPT_NUMBER}, {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *only[MAX_FOLDERS], *save = NULL, *into = NULL, *topic = NULL;
    int nonly = 0, list = 0, number = 0, ch;
    while ((ch = getopt_long(argc, argv, "o:h", longopts, NULL)) != -1) {
        switch (ch) {
        case 'o': g_root = optarg; break;
        case OPT_ONLY:
            if (nonly == MAX_FOLDERS) {
                fprintf(stderr, "attncheck-corpus: too many --only\n");
                return 2;
            }
            only[nonly++] = optarg;
            break;
        case OPT_LIST: list = 1; break;
        case OPT_SAVE: save = optarg; break;
        case OPT_INTO: into = optarg; break;
        case OPT_TOPIC: topic = optarg; break;
        case OPT_NUMBER:
            if (parse_int("--number", optarg, FINDING_FIRST, FINDING_LAST, &number)) return 2;
            break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "attncheck-corpus: unexpected argument %s\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    if (!save && (into || topic || number)) {
        fprintf(stderr, "attncheck-corpus: --into, --topic and --number go with --save\n");
        return 2;
    }
    if ((save && (list || nonly)) || (list && nonly)) {
        fprintf(stderr, "attncheck-corpus: --save, --list and --only are separate uses\n");
        return 2;
    }
    folder fo[MAX_FOLDERS];
    int nf = folders(fo);
    if (nf < 0) return 1;

    if (list) {
        for (int i = 0; i < nf; i++) {
            char dirpath[1024];
            snprintf(dirpath, sizeof dirpath, "%s/%s", g_root, fo[i].dir);
            printf("%-14s %-11s %-9s *%-6s next finding %04d\n", fo[i].dir, fo[i].kind, fo[i].owner, fo[i].ext,
                   finding_number(dirpath, 0));
        }
        return 0;
    }
    if (save) {
        if (!into || !topic) {
            fprintf(stderr, "attncheck-corpus: --save needs --into FOLDER and --topic SLUG\n");
            return 2;
        }
        if (!good_slug(topic)) {
            fprintf(stderr, "attncheck-corpus: --topic %s: expected 1-80 of [a-z0-9-], no leading or trailing -\n",
                    topic);
            return 2;
        }
        for (int i = 0; i < nf; i++)
            if (!strcmp(into, fo[i].dir)) return save_finding(&fo[i], save, topic, number);
        fprintf(stderr, "attncheck-corpus: --into %s: not a corpus folder (--list)\n", into);
        return 2;
    }

    int want[MAX_FOLDERS];
    for (int i = 0; i < nf; i++) want[i] = nonly == 0;
    for (int k = 0; k < nonly; k++) {
        int i = 0;
        while (i < nf && strcmp(only[k], fo[i].dir)) i++;
        if (i == nf) {
            fprintf(stderr, "attncheck-corpus: --only %s: not a corpus folder (--list)\n", only[k]);
            return 2;
        }
        want[i] = 1;
    }
    for (int i = 0; i < nf; i++) {
        if (!want[i]) continue;
        char dirpath[1024];
        snprintf(dirpath, sizeof dirpath, "%s/%s", g_root, fo[i].dir);
        ac_error me;
        if (ac_mkdirs(dirpath, &me)) {
            fprintf(stderr, "attncheck-corpus: %s\n", me.msg);
            return 1;
        }
        g_dir = fo[i].dir;
        g_ext = fo[i].ext;
        fo[i].write();
    }
    ac_case_free(&g_case);
    printf("attncheck-corpus: %d files written under %s/, %d failed\n", g_written, g_root, g_failed);
    return g_failed ? 1 : 0;
}
