/* Case files: byte-exact round trips, a table of malformed inputs (each named
 * by line and key), truncation at every byte, random mutations and random
 * bytes (never a crash: run under ASan/UBSan too), and every file of corpus/. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ac_casefile.h"
#include "ac_numfmt.h"
#include "ac_rng.h"

#ifndef AC_SOURCE_DIR
#define AC_SOURCE_DIR "."
#endif

/* --- a local stream of ac_rng (common/ac_rng.h), apart from ac_gen's ------ */
static ac_rng rng;
static uint64_t rnd(void) { return ac_rng_next(&rng); }
static int64_t rnd_in(int64_t lo, int64_t hi) { return lo + (int64_t)(rnd() % (uint64_t)(hi - lo + 1)); }


/* A float drawn to hit every form of the writer: zeros of both signs,
   subnormals, infinities, NaN payloads, ordinary values, random patterns. */
static float rnd_float(void)
{
    switch (rnd() % 9) {
    case 0: return 0.0f;
    case 1: return -0.0f;
    case 2: return ac_f32_from_bits((uint32_t)rnd_in(1, 0x7fffff) | (uint32_t)(rnd() & 1) << 31); /* subnormal */
    case 3: return (rnd() & 1) ? INFINITY : -INFINITY;
    case 4: return ac_f32_from_bits(0x7f800000u | (uint32_t)rnd_in(1, 0x7fffff) | (uint32_t)(rnd() & 1) << 31); /* NaN */
    case 5: return 0.125f;
    case 6: return 1.0f / sqrtf((float)rnd_in(1, 1024));
    default: return ac_f32_from_bits((uint32_t)rnd());
    }
}

static int32_t rnd_i32_any(void)
{
    switch (rnd() % 4) {
    case 0: return INT32_MIN;
    case 1: return INT32_MAX;
    case 2: return (int32_t)rnd_in(-3, 40);
    default: return (int32_t)(uint32_t)rnd();
    }
}

/* A feature float the format must keep exactly: any finite pattern
   (subnormals and -0 included), and -inf where `neg_inf`. */
static float rnd_feature_float(int neg_inf)
{
    for (;;) {
        float x = rnd_float();
        if (isfinite(x) || (neg_inf && x == -INFINITY)) return x;
    }
}

/* The features, each on one time in three, over every value a file may hold. */
static void rnd_features(ac_case *c)
{
    if (rnd() % 3 == 0) {
        c->window_left = (int32_t)rnd_in(-1, 40);
        c->window_right = (rnd() % 4 == 0) ? INT32_MAX : (int32_t)rnd_in(-1, 40);
        if (c->window_left == -1 && c->window_right == -1) c->window_right = 0;
    }
    if (rnd() % 3 == 0) {
        float x = fabsf(rnd_feature_float(0));
        c->softcap = x > 0.0f ? x : 30.0f;
    }
    if (c->heads_q > 0 && rnd() % 3 == 0) {
        float *a = malloc(sizeof(float) * (size_t)c->heads_q);
        for (int32_t h = 0; h < c->heads_q; h++) a[h] = rnd_feature_float(0);
        cr_assert_eq(ac_case_set_alibi(c, a, c->heads_q, NULL), AC_OK);
        free(a);
    }
    if (c->heads_q > 0 && rnd() % 3 == 0) {
        float *a = malloc(sizeof(float) * (size_t)c->heads_q);
        for (int32_t h = 0; h < c->heads_q; h++) a[h] = rnd_feature_float(1);
        cr_assert_eq(ac_case_set_sinks(c, a, c->heads_q, NULL), AC_OK);
        free(a);
    }
    /* The K/V storage: D_v, an FP8 format, scales (1 or heads_kv, any finite value). */
    if (rnd() % 3 == 0) c->head_dim_v = (int32_t)rnd_in(0, AC_MAX_HEAD_DIM);
    if (rnd() % 3 == 0) c->kv_format = (ac_kv_format)rnd_in(1, AC_KV_FORMAT_COUNT - 1);
    if (rnd() % 3 == 0) {
        int32_t n = (rnd() % 2 || c->heads_kv <= 0 || c->heads_kv > AC_MAX_HEADS) ? 1 : c->heads_kv;
        float *k = malloc(sizeof(float) * (size_t)n), *v = malloc(sizeof(float) * (size_t)n);
        for (int32_t i = 0; i < n; i++) {
            k[i] = rnd_feature_float(0);
            v[i] = rnd_feature_float(0);
        }
        cr_assert_eq(ac_case_set_kv_scales(c, k, v, n, NULL), AC_OK);
        free(k);
        free(v);
    }
}

/* A case with every field drawn over everything the format can hold, valid
   layout or not (the format does not care). */
static void rnd_casefile(ac_casefile *f)
{
    ac_casefile_init(f);
    ac_case *c = &f->c;
    c->op = (ac_op)rnd_in(0, AC_OP_COUNT - 1);
    c->dtype = (ac_dtype)rnd_in(0, AC_DTYPE_COUNT - 1);
    int32_t batch = (rnd() % 8 == 0) ? 0 : (int32_t)rnd_in(1, 6);
    cr_assert_eq(ac_case_set_batch(c, batch, NULL), AC_OK);
    for (int32_t b = 0; b < batch; b++) {
        c->seqlen_q[b] = (rnd() % 6 == 0) ? rnd_i32_any() : (int32_t)rnd_in(0, 40);
        c->seqlen_k[b] = (rnd() % 6 == 0) ? rnd_i32_any() : (int32_t)rnd_in(0, 300);
    }
    c->heads_q = (int32_t)rnd_in(0, AC_MAX_HEADS);
    c->heads_kv = (int32_t)rnd_in(0, AC_MAX_HEADS);
    c->head_dim = (int32_t)rnd_in(0, AC_MAX_HEAD_DIM);
    c->scale_given = (int)(rnd() & 1);
    c->scale = c->scale_given ? rnd_float() : 0.0f;
    c->causal = (ac_causal)rnd_in(0, AC_CAUSAL_COUNT - 1);
    c->mask = (ac_mask_kind)rnd_in(0, AC_MASK_COUNT - 1);
    c->mask_per_head = (int)(rnd() & 1);
    c->mask_density = rnd_float();
    c->paged = (int)(rnd() & 1);
    c->block_size = rnd_i32_any();
    c->num_blocks = rnd_i32_any();
    int32_t mbps = (int32_t)rnd_in(0, 5);
    if (batch * mbps > 0 || rnd() % 2) {
        cr_assert_eq(ac_case_alloc_table(c, mbps, NULL), AC_OK);
        for (int64_t i = 0; i < (int64_t)batch * mbps; i++) c->block_table[i] = rnd_i32_any();
    } else {
        c->max_blocks_per_seq = mbps; /* with batch 0 no table is needed */
    }
    int32_t tokens = (int32_t)rnd_in(0, 20);
    if (tokens > 0 || rnd() % 2) {
        cr_assert_eq(ac_case_alloc_slots(c, tokens, NULL), AC_OK);
        for (int32_t t = 0; t < tokens; t++) {
            switch (rnd() % 4) {
            case 0: c->slot_mapping[t] = -1; break;
            case 1: c->slot_mapping[t] = (int64_t)rnd(); break;
            case 2: c->slot_mapping[t] = (rnd() & 1) ? INT64_MIN : INT64_MAX; break;
            default: c->slot_mapping[t] = rnd_in(0, 4096);
            }
        }
    }
    c->slot_mapping_i64 = (int)(rnd() & 1);
    c->num_splits = (int32_t)rnd_in(0, AC_MAX_SPLITS);
    c->dist = (ac_dist)rnd_in(0, AC_DIST_COUNT - 1);
    c->special = (uint32_t)(rnd() & 0xf);
    c->seed = (rnd() % 4 == 0) ? UINT64_MAX : rnd();
    /* Title: empty, the case line, or any bytes but NUL/CR/LF (spaces at either end too). */
    switch (rnd() % 3) {
    case 0: f->title[0] = '\0'; break;
    case 1: ac_case_line(c, f->title, sizeof f->title); break;
    default: {
        size_t n = (size_t)rnd_in(1, sizeof f->title - 1);
        for (size_t i = 0; i < n; i++) {
            char ch;
            do ch = (char)(rnd() & 0xff);
            while (ch == '\0' || ch == '\n' || ch == '\r');
            f->title[i] = ch;
        }
        f->title[n] = '\0';
    }
    }
    /* Note: none, or 1..4 lines, some empty, with '#' and key-like text. */
    if (rnd() % 2) {
        static const char *const pieces[] = {"", "seed 7", "# not a comment here", " leading", "trailing ",
                                             "note", "\xc3\xa9t\xc3\xa9", "expect ok"};
        char note[256] = "";
        int lines = (int)rnd_in(1, 4);
        for (int i = 0; i < lines; i++) {
            if (i) strcat(note, "\n");
            strcat(note, pieces[rnd() % 8]);
        }
        cr_assert_eq(ac_casefile_set_note(f, note, NULL), AC_OK);
    }
    f->expect_error = (int)(rnd() & 1);
    f->expect_code = f->expect_error ? (ac_status)rnd_in(1, AC_STATUS_COUNT - 1) : AC_OK;
    rnd_features(c);
}

static char *write_ok(const ac_casefile *f, size_t *len)
{
    char *text = NULL;
    ac_error e = {0};
    ac_status st = ac_casefile_write(f, &text, len, &e);
    cr_assert_eq(st, AC_OK, "write: %s", e.msg);
    cr_assert_eq(strlen(text), *len);
    return text;
}

Test(casefile, round_trip_random_cases_byte_exact)
{
    rng.state = 1;
    for (int it = 0; it < 3000; it++) {
        ac_casefile f, g;
        rnd_casefile(&f);
        size_t n1, n2;
        char *t1 = write_ok(&f, &n1);
        ac_error e = {0};
        ac_status st = ac_casefile_parse(t1, n1, &g, &e);
        cr_assert_eq(st, AC_OK, "case %d: %s\n%s", it, e.msg, t1);
        cr_assert(ac_casefile_equal(&f, &g), "case %d: parse(write(c)) != c\n%s", it, t1);
        char *t2 = write_ok(&g, &n2);
        cr_assert(n1 == n2 && memcmp(t1, t2, n1) == 0, "case %d: write(parse(t)) != t", it);
        free(t1);
        free(t2);
        ac_casefile_free(&f);
        ac_casefile_free(&g);
    }
}

/* The K/V storage keys: after sinks, only when set, each scale exactly; a
   lone k_scales or counts that differ are named by line. */
Test(casefile, kv_storage_round_trip_exact)
{
    ac_casefile f, g;
    ac_casefile_init(&f);
    ac_case *c = &f.c;
    c->op = AC_OP_DECODE;
    c->heads_kv = 2;
    c->head_dim = 192;
    c->head_dim_v = 128;
    c->kv_format = AC_KV_E5M2;
    const float ks[2] = {0.0625f, 0x1p-60f}, vs[2] = {3.0f, 0.1f};
    cr_assert_eq(ac_case_set_kv_scales(c, ks, vs, 2, NULL), AC_OK);
    size_t n;
    char *t = write_ok(&f, &n);
    cr_assert(strstr(t, "num_splits 1\nhead_dim_v 128\nkv_format e5m2\nk_scales 0x1p-4,0x1p-60\n"
                        "v_scales 0x1.8p+1,0x1.99999ap-4\ndist "), "%s", t);
    ac_error e = {0};
    cr_assert_eq(ac_casefile_parse(t, n, &g, &e), AC_OK, "%s\n%s", e.msg, t);
    cr_assert(ac_casefile_equal(&f, &g));
    cr_assert_eq(g.c.n_kv_scales, 2);
    cr_assert_eq(ac_f32_bits(g.c.v_scales[1]), ac_f32_bits(0.1f));
    g.c.v_scales[1] = 0.2f;
    cr_assert_not(ac_casefile_equal(&f, &g));
    g.c.v_scales[1] = 0.1f;
    g.c.kv_format = AC_KV_E4M3;
    cr_assert_not(ac_casefile_equal(&f, &g));
    g.c.kv_format = AC_KV_E5M2;
    g.c.head_dim_v = 0;
    cr_assert_not(ac_casefile_equal(&f, &g));
    g.c.head_dim_v = 192; /* explicit D_v = D is D_v = D */
    g.c.head_dim = 192;
    f.c.head_dim_v = 0;
    cr_assert(ac_casefile_equal(&f, &g));
    ac_casefile_free(&g);
    /* A lone k_scales, and counts that differ: named by key. */
    static const struct { const char *from, *to, *want; } defects[] = {
        {"v_scales 0x1.8p+1,0x1.99999ap-4\n", "", "'k_scales' without 'v_scales'"},
        {"v_scales 0x1.8p+1,0x1.99999ap-4\n", "v_scales 0x1.8p+1\n", "'v_scales': 1 entries, k_scales has 2"},
        {"kv_format e5m2", "kv_format e3m4", "kv_format"},
    };
    for (size_t i = 0; i < sizeof defects / sizeof defects[0]; i++) {
        char *at = strstr(t, defects[i].from);
        cr_assert_not_null(at);
        size_t cut = (size_t)(at - t), fl = strlen(defects[i].from), tl = strlen(defects[i].to);
        char *bad = malloc(n + tl + 1);
        memcpy(bad, t, cut);
        memcpy(bad + cut, defects[i].to, tl);
        strcpy(bad + cut + tl, at + fl);
        cr_assert_eq(ac_casefile_parse(bad, strlen(bad), &g, &e), AC_ERR_PARSE, "%s", bad);
        cr_assert(strstr(e.msg, defects[i].want), "%s", e.msg);
        free(bad);
    }
    free(t);
    ac_casefile_free(&f);
}

/* The float text is exact for every bit pattern: drive it through
   mask_density and scale over many random patterns and all the edges. */
/* Every feature on at once: the keys appear after num_splits in the
   canonical order, each float exactly (-inf sinks and subnormal slopes
   included), and a file without features carries none of the keys. */
Test(casefile, features_round_trip_exact)
{
    ac_casefile f, g;
    ac_casefile_init(&f);
    ac_case *c = &f.c;
    c->heads_q = 3;
    c->window_left = 7;
    c->window_right = -1;
    c->softcap = 30.0f;
    const float slopes[3] = {0.5f, 0x1p-149f, -0.0625f};
    const float sinks[3] = {-INFINITY, 0.0f, -3.25f};
    cr_assert_eq(ac_case_set_alibi(c, slopes, 3, NULL), AC_OK);
    cr_assert_eq(ac_case_set_sinks(c, sinks, 3, NULL), AC_OK);
    size_t n;
    char *t = write_ok(&f, &n);
    cr_assert(strstr(t, "num_splits 1\nwindow_left 7\nwindow_right -1\nsoftcap 0x1.ep+4\n"
                        "alibi_slopes 0x1p-1,0x1p-149,-0x1p-4\nsinks -inf,0x0p+0,-0x1.ap+1\ndist "),
              "%s", t);
    ac_error e = {0};
    cr_assert_eq(ac_casefile_parse(t, n, &g, &e), AC_OK, "%s\n%s", e.msg, t);
    cr_assert(ac_casefile_equal(&f, &g));
    cr_assert_eq(g.c.n_sinks, 3);
    cr_assert_eq(ac_f32_bits(g.c.sinks[0]), ac_f32_bits(-INFINITY));
    cr_assert_eq(ac_f32_bits(g.c.alibi_slopes[1]), 1u);
    size_t n2;
    char *t2 = write_ok(&g, &n2);
    cr_assert(n == n2 && memcmp(t, t2, n) == 0);
    /* Each feature is a difference equal() sees. */
    g.c.sinks[0] = -1.0f;
    cr_assert_not(ac_casefile_equal(&f, &g));
    g.c.sinks[0] = -INFINITY;
    g.c.window_right = 0;
    cr_assert_not(ac_casefile_equal(&f, &g));
    g.c.window_right = -1;
    g.c.softcap = 0.0f;
    cr_assert_not(ac_casefile_equal(&f, &g));
    free(t);
    free(t2);
    ac_casefile_free(&g);
    /* Off again: none of the keys is written. */
    c->window_left = -1;
    c->softcap = 0.0f;
    cr_assert_eq(ac_case_set_alibi(c, NULL, 0, NULL), AC_OK);
    cr_assert_eq(ac_case_set_sinks(c, NULL, 0, NULL), AC_OK);
    t = write_ok(&f, &n);
    cr_assert_null(strstr(t, "window"));
    cr_assert_null(strstr(t, "softcap"));
    cr_assert_null(strstr(t, "alibi"));
    cr_assert_null(strstr(t, "sinks"));
    free(t);
    /* The writer refuses what the parser would: a count off heads_q, a NaN slope. */
    cr_assert_eq(ac_case_set_alibi(c, slopes, 2, NULL), AC_OK);
    cr_assert_eq(ac_casefile_write(&f, &t, &n, &e), AC_ERR_SHAPE);
    cr_assert(strstr(e.msg, "alibi_slopes"), "%s", e.msg);
    const float bad[3] = {0.5f, NAN, 0.25f};
    cr_assert_eq(ac_case_set_alibi(c, bad, 3, NULL), AC_OK);
    cr_assert_eq(ac_casefile_write(&f, &t, &n, &e), AC_ERR_SHAPE);
    cr_assert(strstr(e.msg, "alibi_slopes[1]"), "%s", e.msg);
    ac_casefile_free(&f);
}

Test(casefile, floats_exact_for_all_patterns)
{
    rng.state = 2;
    ac_casefile f, g;
    ac_casefile_init(&f);
    f.c.scale_given = 1;
    static const uint32_t edges[] = {0x00000000u, 0x80000000u, 0x00000001u, 0x807fffffu, 0x00800000u,
                                     0x7f7fffffu, 0xff7fffffu, 0x7f800000u, 0xff800000u, 0x7fc00000u,
                                     0xffc00000u, 0x7f800001u, 0x3f800000u, 0x3e000000u};
    for (int it = 0; it < 60000; it++) {
        uint32_t a = it < 14 ? edges[it] : (uint32_t)rnd();
        uint32_t b = it < 14 ? edges[13 - it] : (uint32_t)rnd();
        f.c.scale = ac_f32_from_bits(a);
        f.c.mask_density = ac_f32_from_bits(b);
        size_t n;
        char *t = write_ok(&f, &n);
        ac_error e = {0};
        cr_assert_eq(ac_casefile_parse(t, n, &g, &e), AC_OK, "%s\n%s", e.msg, t);
        cr_assert_eq(ac_f32_bits(g.c.scale), a, "scale 0x%08x came back as 0x%08x\n%s", a, ac_f32_bits(g.c.scale), t);
        cr_assert_eq(ac_f32_bits(g.c.mask_density), b);
        free(t);
        ac_casefile_free(&g);
    }
    ac_casefile_free(&f);
}

Test(casefile, scale_default_zero_and_negative_zero_are_distinct)
{
    ac_casefile f, g;
    ac_casefile_init(&f);
    const float scales[] = {0.0f, -0.0f};
    for (int i = 0; i < 3; i++) {
        f.c.scale_given = i < 2;
        f.c.scale = i < 2 ? scales[i] : 0.0f;
        size_t n;
        char *t = write_ok(&f, &n);
        const char *want = i == 0 ? "\nscale 0x0p+0\n" : i == 1 ? "\nscale -0x0p+0\n" : "\nscale default\n";
        cr_assert(strstr(t, want), "want %s in\n%s", want, t);
        cr_assert_eq(ac_casefile_parse(t, n, &g, NULL), AC_OK);
        cr_assert_eq(g.c.scale_given, f.c.scale_given);
        cr_assert_eq(ac_f32_bits(g.c.scale), ac_f32_bits(f.c.scale));
        free(t);
        ac_casefile_free(&g);
    }
}

/* --- malformed inputs ------------------------------------------------------ */
static const char BASE[] =
    "attncheck-case 1\n"                 /* 1 */
    "title base case\n"                  /* 2 */
    "note first line\n"                  /* 3 */
    "expect ok\n"                        /* 4 */
    "op prefill\n"                       /* 5 */
    "dtype bf16\n"                       /* 6 */
    "batch 2\n"                          /* 7 */
    "seqlen_q 3 1\n"                     /* 8 */
    "seqlen_k 5 17\n"                    /* 9 */
    "heads_q 4\n"                        /* 10 */
    "heads_kv 2\n"                       /* 11 */
    "head_dim 64\n"                      /* 12 */
    "scale 0x1p-3\n"                     /* 13 */
    "causal BR\n"                        /* 14 */
    "mask bool\n"                        /* 15 */
    "mask_per_head 1\n"                  /* 16 */
    "mask_density 0x1.8p-1\n"            /* 17 */
    "paged 1\n"                          /* 18 */
    "block_size 16\n"                    /* 19 */
    "num_blocks 4\n"                     /* 20 */
    "max_blocks_per_seq 2\n"             /* 21 */
    "block_table 0: 0 -1\n"              /* 22 */
    "block_table 1: 1 2\n"               /* 23 */
    "num_tokens 3\n"                     /* 24 */
    "slot_mapping 5 -1 7\n"              /* 25 */
    "slot_mapping_i64 1\n"               /* 26 */
    "num_splits 1\n"                     /* 27 */
    "dist normal\n"                      /* 28 */
    "special nan_slots garbage_table\n"  /* 29 */
    "seed 42\n";                         /* 30 */

/* BASE with the first line starting with `prefix` replaced by `repl`
   (NULL deletes it; mode 1 inserts `repl` as a new line after it). */
static char *edit(const char *prefix, const char *repl, int insert_after)
{
    size_t pn = strlen(prefix);
    const char *p = BASE;
    while (strncmp(p, prefix, pn) != 0) {
        p = strchr(p, '\n');
        cr_assert(p, "prefix %s not in BASE", prefix);
        p++;
    }
    const char *eol = strchr(p, '\n') + 1;
    size_t out_cap = sizeof BASE + (repl ? strlen(repl) : 0) + 2;
    char *out = malloc(out_cap);
    size_t n = 0;
    memcpy(out, BASE, (size_t)(insert_after ? eol - BASE : p - BASE));
    n = (size_t)(insert_after ? eol - BASE : p - BASE);
    if (repl) {
        memcpy(out + n, repl, strlen(repl));
        n += strlen(repl);
        out[n++] = '\n';
    }
    const char *rest = insert_after ? eol : eol;
    memcpy(out + n, rest, strlen(rest) + 1);
    return out;
}

typedef struct bad_case {
    const char *prefix; /* line to edit */
    const char *repl;   /* replacement (NULL: delete) */
    int insert;         /* 1: insert repl after the line */
    const char *want1, *want2; /* substrings of the message */
} bad_case;

static const bad_case BAD[] = {
    {"batch", "batch 3", 0, "line 8:", "'seqlen_q'"},
    {"batch", "batch 65537", 0, "line 7:", "'batch'"},
    {"batch", "batch 2x", 0, "line 7:", "not a decimal"},
    {"batch", "batch 99999999999999999999999", 0, "line 7:", "out of range"},
    {"batch", "batch 02", 0, "line 7:", "canonical"},
    {"batch", "batch -0", 0, "line 7:", "canonical"},
    {"batch", "batch +2", 0, "line 7:", "'batch'"},
    {"batch", "batch", 0, "line 7:", "'batch'"},
    {"batch", "batch  2", 0, "line 7:", "'batch'"},
    {"batch", "batch 2 ", 0, "line 7:", "'batch'"},
    {"batch", "batch\t2", 0, "line 7:", "unknown key"},
    {"batch", " batch 2", 0, "line 7:", "leading space"},
    {"batch", "batch -1", 0, "line 7:", "out of range"},
    {"dtype", "bogus 1", 1, "line 7:", "unknown key 'bogus'"},
    {"dtype", "dtype fp16", 1, "line 7:", "duplicate (first given on line 6)"},
    {"seed", NULL, 0, "missing key", "'seed'"},
    {"title", NULL, 0, "missing key", "'title'"},
    {"expect", NULL, 0, "missing key", "'expect'"},
    {"slot_mapping ", NULL, 0, "missing key", "'slot_mapping'"},
    {"op", "op prefil", 0, "line 5:", "'op'"},
    {"dtype", "dtype fp32", 0, "line 6:", "'dtype'"},
    {"causal", "causal br", 0, "line 14:", "'causal'"},
    {"mask ", "mask additive", 0, "line 15:", "'mask'"},
    {"dist", "dist gauss", 0, "line 28:", "'dist'"},
    {"mask_per_head", "mask_per_head 2", 0, "line 16:", "'mask_per_head'"},
    {"paged", "paged yes", 0, "line 18:", "'paged'"},
    {"slot_mapping_i64", "slot_mapping_i64 64", 0, "line 26:", "'slot_mapping_i64'"},
    {"scale", "scale 0x1p-3junk", 0, "line 13:", "'scale'"},
    {"scale", "scale 1e999", 0, "line 13:", "float range"},
    {"scale", "scale nan", 0, "line 13:", "'scale'"},
    {"scale", "scale 0.125 ", 0, "line 13:", "'scale'"},
    {"scale", "scale", 0, "line 13:", "'scale'"},
    {"scale", "scale infinity", 0, "line 13:", "'scale'"},
    {"mask_density", "mask_density nan:0x7f800000", 0, "line 17:", "'mask_density'"},
    {"mask_density", "mask_density nan:0x7FC00000", 0, "line 17:", "'mask_density'"},
    {"seqlen_q", "seqlen_q 3 1 ", 0, "line 8:", "trailing space"},
    {"seqlen_q", "seqlen_q 3  1", 0, "line 8:", "empty value"},
    {"seqlen_q", "seqlen_q 3 a", 0, "line 8:", "'seqlen_q'"},
    {"seqlen_q", "seqlen_q 3 1 4", 0, "line 8:", "batch = 2 needs 2"},
    {"seqlen_q", "seqlen_q ", 0, "line 8:", "trailing space"},
    {"seqlen_k", "seqlen_k 5 2147483648", 0, "line 9:", "out of range"},
    {"seqlen_k", "seqlen_k 5", 0, "line 9:", "'seqlen_k'"},
    {"heads_q", "heads_q 1025", 0, "line 10:", "'heads_q'"},
    {"heads_kv", "heads_kv -1", 0, "line 11:", "'heads_kv'"},
    {"head_dim", "head_dim 1025", 0, "line 12:", "'head_dim'"},
    {"num_splits", "num_splits 4097", 0, "line 27:", "'num_splits'"},
    {"block_size", "block_size 2147483648", 0, "line 19:", "'block_size'"},
    {"block_table 0", NULL, 0, "line 22:", "out of order"},
    {"block_table 0", "block_table 0: 0 -1 3", 0, "line 23:", "row 0 has 3"},
    {"block_table 1", NULL, 0, "line 22:", "1 rows"},
    {"block_table 1", "block_table 2: 3 3", 1, "line 22:", "3 rows"},
    {"block_table 0", "block_table 0 0 -1", 0, "line 22:", "'block_table'"},
    {"block_table 0", "block_table 0:0 -1", 0, "line 22:", "space after"},
    {"block_table 0", "block_table 0: 0 -1 ", 0, "line 22:", "trailing space"},
    {"block_table 0", "block_table 0: 0 2147483648", 0, "line 22:", "out of range"},
    {"block_table 0", "block_table x: 0 -1", 0, "line 22:", "'block_table'"},
    {"block_table 1", "block_table 1: 1 2", 1, "line 24:", "out of order"},
    {"max_blocks_per_seq", "max_blocks_per_seq 67108864", 0, "line 21:", "exceeds"},
    {"max_blocks_per_seq", "max_blocks_per_seq 67108865", 0, "line 21:", "out of range"},
    {"max_blocks_per_seq", "max_blocks_per_seq 0", 0, "line 22:", "rows given"},
    {"max_blocks_per_seq", "max_blocks_per_seq 3", 0, "line 22:", "max_blocks_per_seq = 3"},
    {"num_tokens", "num_tokens 4", 0, "line 25:", "num_tokens = 4"},
    {"num_tokens", "num_tokens 67108865", 0, "line 24:", "out of range"},
    {"slot_mapping ", "slot_mapping 5 -1 9223372036854775808", 0, "line 25:", "out of range"},
    {"expect", "expect fail", 0, "line 4:", "'expect'"},
    {"expect", "expect error AC_ERR_NOPE", 0, "line 4:", "unknown error name"},
    {"expect", "expect error AC_OK", 0, "line 4:", "unknown error name"},
    {"expect", "expect error", 0, "line 4:", "'expect'"},
    {"expect", "expect ok ", 0, "line 4:", "'expect'"},
    {"special", "special nan_slots nan_slots", 0, "line 29:", "twice"},
    {"special", "special", 0, "line 29:", "'special'"},
    {"special", "special bogus", 0, "line 29:", "unknown flag"},
    {"special", "special none nan_slots", 0, "line 29:", "unknown flag 'none'"},
    {"special", "special nan_slots ", 0, "line 29:", "'special'"},
    {"seed", "seed 18446744073709551616", 0, "line 30:", "out of range"},
    {"seed", "seed -1", 0, "line 30:", "'seed'"},
    {"seed", "seed 0042", 0, "line 30:", "canonical"},
    {"attncheck-case", "attncheck-case 2", 0, "line 1:", "newer"},
    {"attncheck-case", "attncheck-case 0", 0, "line 1:", "version"},
    {"attncheck-case", "attncheck-case", 0, "line 1:", "not a case file"},
    {"attncheck-case", "attncheck-case 1 ", 0, "line 1:", "version"},
    {"attncheck-case", "attncheck-case 99999999999999999999", 0, "line 1:", "version"},
    {"attncheck-case", "\xef\xbb\xbf" "attncheck-case 1", 0, "line 1:", "not a case file"},
    {"attncheck-case", "# comment first", 0, "line 1:", "not a case file"},
    {"title", "title base case\r", 0, "line 2:", "carriage return"},
    /* The features (heads_q 4 in BASE; inserted after num_splits, line 28). */
    {"num_splits", "window_left -2", 1, "line 28:", "'window_left'"},
    {"num_splits", "window_right -2", 1, "line 28:", "out of range [-1,"},
    {"num_splits", "window_left 01", 1, "line 28:", "canonical"},
    {"num_splits", "window_left -1\nwindow_right -1", 1, "line 29:", "no window"},
    {"num_splits", "window_left 3\nwindow_left 4", 1, "line 29:", "duplicate"},
    {"num_splits", "softcap -0x1p+4", 1, "line 28:", "'softcap'"},
    {"num_splits", "softcap 0x0p+0", 1, "line 28:", "> 0"},
    {"num_splits", "softcap inf", 1, "line 28:", "> 0"},
    {"num_splits", "softcap nan:0x7fc00000", 1, "line 28:", "'softcap'"},
    {"num_splits", "alibi_slopes 0x1p-1,0x1p-2,0x1p-3", 1, "line 28:", "3 entries, heads_q = 4"},
    {"num_splits", "alibi_slopes 0x1p-1,0x1p-2,0x1p-3,0x1p-4,0x1p-5", 1, "line 28:", "5 entries"},
    {"num_splits", "alibi_slopes 0x1p-1,0x1p-2,nan:0x7fc00000,0x1p-4", 1, "line 28:", "entry 2"},
    {"num_splits", "alibi_slopes 0x1p-1,0x1p-2,-inf,0x1p-4", 1, "line 28:", "entry 2 is -inf"},
    {"num_splits", "alibi_slopes 0x1p-1,,0x1p-3,0x1p-4", 1, "line 28:", "entry 1 is empty"},
    {"num_splits", "alibi_slopes 0x1p-1,0x1p-2,0x1p-3,0x1p-4,", 1, "line 28:", "entry 4 is empty"},
    {"num_splits", "alibi_slopes 0x1p-1, 0x1p-2,0x1p-3,0x1p-4", 1, "line 28:", "entry 1"},
    {"num_splits", "alibi_slopes", 1, "line 28:", "empty list"},
    {"num_splits", "sinks 0,0,0", 1, "line 28:", "'sinks': 3 entries, heads_q = 4"},
    {"num_splits", "sinks 0,inf,0,0", 1, "line 28:", "entry 1 is inf"},
    {"num_splits", "sinks 0,0,0,nan:0x7fc00001", 1, "line 28:", "entry 3"},
    {"num_splits", "sinks 0,0,0,x", 1, "line 28:", "entry 3 'x' is not a float"},
};

Test(casefile, malformed_inputs_named_by_line_and_key)
{
    ac_casefile f;
    ac_error e;
    /* The unedited base parses. */
    cr_assert_eq(ac_casefile_parse(BASE, strlen(BASE), &f, &e), AC_OK, "%s", e.msg);
    ac_casefile_free(&f);
    for (size_t i = 0; i < sizeof BAD / sizeof BAD[0]; i++) {
        char *text = edit(BAD[i].prefix, BAD[i].repl, BAD[i].insert);
        memset(&e, 0, sizeof e);
        ac_status st = ac_casefile_parse(text, strlen(text), &f, &e);
        cr_assert_eq(st, AC_ERR_PARSE, "bad[%zu] (%s -> %s): got %s: %s", i, BAD[i].prefix,
                     BAD[i].repl ? BAD[i].repl : "(deleted)", ac_status_name(st), e.msg);
        cr_assert_eq(e.code, AC_ERR_PARSE);
        cr_assert(strstr(e.msg, BAD[i].want1) && strstr(e.msg, BAD[i].want2),
                  "bad[%zu] (%s): message '%s' lacks '%s' / '%s'", i, BAD[i].repl ? BAD[i].repl : "(deleted)",
                  e.msg, BAD[i].want1, BAD[i].want2);
        /* out is left empty on error */
        cr_assert_null(f.c.seqlen_q);
        cr_assert_null(f.note);
        free(text);
    }
}

Test(casefile, byte_level_defects)
{
    ac_casefile f;
    ac_error e;
    size_t n = strlen(BASE);
    char *t = malloc(2 * n + 1);

    /* Empty input. */
    cr_assert_eq(ac_casefile_parse("", 0, &f, &e), AC_ERR_PARSE);
    cr_assert(strstr(e.msg, "line 1:") && strstr(e.msg, "empty"), "%s", e.msg);

    /* No newline at the end: the last line is named, with its key. */
    cr_assert_eq(ac_casefile_parse(BASE, n - 1, &f, &e), AC_ERR_PARSE);
    cr_assert(strstr(e.msg, "line 30:") && strstr(e.msg, "'seed'") && strstr(e.msg, "truncated"), "%s", e.msg);

    /* An embedded NUL in the title (the length says where the text ends). */
    memcpy(t, BASE, n);
    t[strlen("attncheck-case 1\ntitle ba")] = '\0';
    cr_assert_eq(ac_casefile_parse(t, n, &f, &e), AC_ERR_PARSE);
    cr_assert(strstr(e.msg, "line 2:") && strstr(e.msg, "NUL"), "%s", e.msg);

    /* CRLF line ends are rejected at line 1. */
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (BASE[i] == '\n') t[m++] = '\r';
        t[m++] = BASE[i];
    }
    cr_assert_eq(ac_casefile_parse(t, m, &f, &e), AC_ERR_PARSE);
    cr_assert(strstr(e.msg, "line 1:") && strstr(e.msg, "CRLF"), "%s", e.msg);

    /* A title of 511 bytes is fine, 512 is not. */
    char *big = malloc(n + 600);
    for (int len = 511; len <= 512; len++) {
        int k = snprintf(big, n + 600, "attncheck-case 1\ntitle %*s\n", len, "x");
        memcpy(big + k, strstr(BASE, "note "), strlen(strstr(BASE, "note ")));
        size_t bn = (size_t)k + strlen(strstr(BASE, "note "));
        ac_status st = ac_casefile_parse(big, bn, &f, &e);
        if (len == 511) {
            cr_assert_eq(st, AC_OK, "%s", e.msg);
            cr_assert_eq(strlen(f.title), 511);
            ac_casefile_free(&f);
        } else {
            cr_assert_eq(st, AC_ERR_PARSE);
            cr_assert(strstr(e.msg, "line 2:") && strstr(e.msg, "'title'"), "%s", e.msg);
        }
    }
    free(big);
    free(t);
}

/* Accepted but not canonical: comments, blank lines, keys in another order,
   a decimal scale. write() gives the canonical text, which is a fixed point. */
Test(casefile, noncanonical_accepted_and_normalised)
{
    const char *text =
        "attncheck-case 1\n"
        "# a comment\n"
        "\n"
        "seed 42\n"
        "op prefill\n"
        "title  two spaces keep a leading space\n"
        "expect error AC_ERR_GQA\n"
        "dtype fp16\n"
        "batch 1\n"
        "seqlen_q 4\n"
        "seqlen_k 4\n"
        "heads_q 3\n"
        "heads_kv 2\n"
        "head_dim 64\n"
        "scale 0.125\n"
        "causal TL\n"
        "mask none\n"
        "mask_per_head 0\n"
        "mask_density 0.75\n"
        "paged 0\n"
        "block_size 0\n"
        "num_blocks 0\n"
        "max_blocks_per_seq 0\n"
        "num_tokens 0\n"
        "slot_mapping\n"
        "slot_mapping_i64 0\n"
        "num_splits 1\n"
        "dist uniform\n"
        "special inf_slots nan_slots\n";
    ac_casefile f, g;
    ac_error e;
    cr_assert_eq(ac_casefile_parse(text, strlen(text), &f, &e), AC_OK, "%s", e.msg);
    cr_assert_str_eq(f.title, " two spaces keep a leading space");
    cr_assert_eq(f.c.scale_given, 1);
    cr_assert_eq(ac_f32_bits(f.c.scale), ac_f32_bits(0.125f));
    cr_assert_eq(f.c.special, AC_SPECIAL_NAN_SLOTS | AC_SPECIAL_INF_SLOTS);
    cr_assert_eq(f.expect_error, 1);
    cr_assert_eq(f.expect_code, AC_ERR_GQA);
    cr_assert_null(f.c.block_table);
    cr_assert_null(f.c.slot_mapping);
    size_t n, n2;
    char *canon = write_ok(&f, &n);
    cr_assert(strstr(canon, "\nscale 0x1p-3\n"), "%s", canon);
    cr_assert(strstr(canon, "\nspecial nan_slots inf_slots\n"), "%s", canon);
    cr_assert(strncmp(canon, "attncheck-case 1\ntitle  two", 27) == 0, "%s", canon);
    cr_assert_eq(ac_casefile_parse(canon, n, &g, &e), AC_OK, "%s", e.msg);
    cr_assert(ac_casefile_equal(&f, &g));
    char *again = write_ok(&g, &n2);
    cr_assert(n == n2 && memcmp(canon, again, n) == 0);
    /* The validator, not the parser, finds the GQA defect this file expects. */
    cr_assert_eq(ac_case_validate(&f.c, &e), AC_ERR_GQA);
    free(canon);
    free(again);
    ac_casefile_free(&f);
    ac_casefile_free(&g);
}

Test(casefile, note_lines_round_trip)
{
    static const char *const notes[] = {"one", "one\ntwo", "\n", "a\n\nb", "x\n", "\ny", " sp ", "# hash"};
    for (size_t i = 0; i < sizeof notes / sizeof notes[0]; i++) {
        ac_casefile f, g;
        ac_casefile_init(&f);
        cr_assert_eq(ac_casefile_set_note(&f, notes[i], NULL), AC_OK);
        size_t n;
        char *t = write_ok(&f, &n);
        cr_assert_eq(ac_casefile_parse(t, n, &g, NULL), AC_OK);
        cr_assert_str_eq(g.note, notes[i], "note %zu:\n%s", i, t);
        free(t);
        ac_casefile_free(&f);
        ac_casefile_free(&g);
    }
}

Test(casefile, writer_refuses_what_the_format_cannot_say)
{
    ac_casefile f;
    char *t;
    size_t n;
    ac_error e;
#define REFUSE(setup, code, word)                                                  \
    do {                                                                           \
        ac_casefile_init(&f);                                                      \
        cr_assert_eq(ac_case_set_batch(&f.c, 1, NULL), AC_OK);                      \
        setup;                                                                     \
        cr_assert_eq(ac_casefile_write(&f, &t, &n, &e), code, "%s", #setup);       \
        cr_assert_null(t);                                                         \
        cr_assert(strstr(e.msg, word), "%s: %s", #setup, e.msg);                   \
        ac_casefile_free(&f);                                                      \
    } while (0)
    REFUSE(f.c.op = AC_OP_COUNT, AC_ERR_UNSUPPORTED, "op");
    REFUSE(f.c.dtype = (ac_dtype)-1, AC_ERR_UNSUPPORTED, "dtype");
    REFUSE(f.c.causal = AC_CAUSAL_COUNT, AC_ERR_UNSUPPORTED, "causal");
    REFUSE(f.c.mask = AC_MASK_COUNT, AC_ERR_UNSUPPORTED, "mask");
    REFUSE(f.c.dist = AC_DIST_COUNT, AC_ERR_UNSUPPORTED, "dist");
    REFUSE(f.c.special = 1u << 7, AC_ERR_UNSUPPORTED, "special");
    REFUSE(f.c.paged = 2, AC_ERR_SHAPE, "paged");
    REFUSE(f.c.scale_given = -1, AC_ERR_SHAPE, "scale_given");
    REFUSE(f.c.heads_q = AC_MAX_HEADS + 1, AC_ERR_SHAPE, "heads_q");
    REFUSE(f.c.num_tokens = 3, AC_ERR_NULL, "slot_mapping");
    REFUSE(f.c.max_blocks_per_seq = 2, AC_ERR_NULL, "block_table");
    REFUSE(strcpy(f.title, "two\nlines"), AC_ERR_SHAPE, "title");
    REFUSE(strcpy(f.title, "cr\r"), AC_ERR_SHAPE, "title");
    REFUSE(memset(f.title, 'x', sizeof f.title), AC_ERR_SHAPE, "title");
    REFUSE(ac_casefile_set_note(&f, "a\r\nb", NULL), AC_ERR_SHAPE, "note");
    REFUSE((f.expect_error = 1, f.expect_code = AC_OK), AC_ERR_SHAPE, "expect");
    REFUSE(f.expect_code = AC_ERR_GQA, AC_ERR_SHAPE, "expect");
#undef REFUSE
}

/* Every proper prefix of a valid file is rejected as AC_ERR_PARSE (a cut
   line has no newline; a cut at a line end loses a required key) and never
   crashes. The text is copied to an exact-size buffer so ASan sees any
   read past `len`. */
Test(casefile, truncation_at_every_byte)
{
    size_t n = strlen(BASE);
    for (size_t cut = 0; cut < n; cut++) {
        char *t = malloc(cut ? cut : 1);
        memcpy(t, BASE, cut);
        ac_casefile f;
        ac_error e;
        ac_status st = ac_casefile_parse(t, cut, &f, &e);
        cr_assert_eq(st, AC_ERR_PARSE, "cut at %zu: %s", cut, ac_status_name(st));
        cr_assert(strstr(e.msg, "line "), "cut at %zu: %s", cut, e.msg);
        free(t);
    }
}

/* Parse result of untrusted bytes: only OK or PARSE; an accepted text
   normalises to a fixed point of write(parse(.)). */
static void check_any(const char *bytes, size_t n)
{
    char *t = malloc(n ? n : 1); /* exact size: ASan catches overreads */
    memcpy(t, bytes, n);
    ac_casefile f, g;
    ac_error e;
    ac_status st = ac_casefile_parse(t, n, &f, &e);
    cr_assert(st == AC_OK || st == AC_ERR_PARSE, "status %s: %s", ac_status_name(st), e.msg);
    if (st == AC_OK) {
        size_t n1, n2;
        char *w1 = write_ok(&f, &n1);
        cr_assert_eq(ac_casefile_parse(w1, n1, &g, &e), AC_OK, "%s", e.msg);
        cr_assert(ac_casefile_equal(&f, &g));
        char *w2 = write_ok(&g, &n2);
        cr_assert(n1 == n2 && memcmp(w1, w2, n1) == 0);
        free(w1);
        free(w2);
        ac_casefile_free(&g);
        ac_casefile_free(&f);
    } else {
        cr_assert(strncmp(e.msg, "line ", 5) == 0, "%s", e.msg);
    }
    free(t);
}

static const char *const TOKENS[] = {" ", "\n", "0", "-1", "9", ":", "#", "\r", "block_table 1: 3\n",
                                     "seed 1\n", "note x\n", "2147483648", "0x1p+0", "nan:0x", "\n\n",
                                     "title\n", "batch 0\n", "max_blocks_per_seq 9\n", "-", "99999"};

Test(casefile, random_mutations_never_crash)
{
    rng.state = 3;
    ac_casefile seedf;
    size_t base_n;
    char *seeds[4];
    size_t seed_n[4];
    seeds[0] = malloc(sizeof BASE);
    memcpy(seeds[0], BASE, sizeof BASE);
    seed_n[0] = strlen(BASE);
    for (int s = 1; s < 4; s++) {
        rnd_casefile(&seedf);
        seeds[s] = write_ok(&seedf, &seed_n[s]);
        ac_casefile_free(&seedf);
    }
    (void)base_n;
    int accepted = 0;
    for (int it = 0; it < 20000; it++) {
        int s = (int)(rnd() % 4);
        size_t n = seed_n[s];
        char *buf = malloc(n + 256);
        memcpy(buf, seeds[s], n);
        int edits = (int)rnd_in(1, 4);
        for (int k = 0; k < edits; k++) {
            size_t at = n ? (size_t)(rnd() % (n + 1)) : 0;
            switch (rnd() % 5) {
            case 0: /* flip a byte */
                if (at < n) buf[at] = (char)(rnd() & 0xff);
                break;
            case 1: /* delete a run */
                if (at < n) {
                    size_t len = (size_t)rnd_in(1, 16);
                    if (len > n - at) len = n - at;
                    memmove(buf + at, buf + at + len, n - at - len);
                    n -= len;
                }
                break;
            case 2: { /* insert a token */
                const char *tok = TOKENS[rnd() % (sizeof TOKENS / sizeof TOKENS[0])];
                size_t len = strlen(tok);
                if (n + len <= seed_n[s] + 200) {
                    memmove(buf + at + len, buf + at, n - at);
                    memcpy(buf + at, tok, len);
                    n += len;
                }
                break;
            }
            case 3: /* a digit changes (sizes, counts, rows) */
                for (size_t i = at; i < n; i++)
                    if (buf[i] >= '0' && buf[i] <= '9') {
                        buf[i] = (char)('0' + rnd() % 10);
                        break;
                    }
                break;
            default: /* cut */
                n = at;
            }
        }
        ac_casefile f;
        if (ac_casefile_parse(buf, n, &f, NULL) == AC_OK) {
            accepted++;
            ac_casefile_free(&f);
        }
        check_any(buf, n);
        free(buf);
    }
    /* Some mutations (a digit in a seed, a note byte) stay valid: the loop
       exercises the accept path as well as the reject paths. */
    cr_assert(accepted > 100, "only %d mutated files accepted", accepted);
    for (int s = 0; s < 4; s++) free(seeds[s]);
}

Test(casefile, random_bytes_never_crash)
{
    rng.state = 4;
    char buf[512];
    for (int it = 0; it < 5000; it++) {
        size_t n = (size_t)rnd_in(0, sizeof buf);
        int start = (int)(rnd() % 2);
        size_t i = 0;
        if (start) { /* a valid first line so the rest is exercised */
            memcpy(buf, "attncheck-case 1\n", 17);
            i = 17;
            if (n < i) n = i;
        }
        for (; i < n; i++) buf[i] = (rnd() % 3) ? (char)(rnd() & 0xff) : "abcdeklnopqrst_ 0123456789:-\n"[rnd() % 29];
        check_any(buf, n);
    }
}

Test(casefile, save_load_and_describe)
{
    char dir[] = "/tmp/ac_casefile_XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof path, "%s/a.case", dir);
    ac_casefile f, g;
    ac_error e;
    cr_assert_eq(ac_casefile_parse(BASE, strlen(BASE), &f, &e), AC_OK);
    cr_assert_eq(ac_casefile_save(path, &f, &e), AC_OK, "%s", e.msg);
    cr_assert_eq(ac_casefile_load(path, &g, &e), AC_OK, "%s", e.msg);
    cr_assert(ac_casefile_equal(&f, &g));
    /* The canonical text is what BASE already is. */
    FILE *fp = fopen(path, "rb");
    char back[sizeof BASE + 16];
    size_t got = fread(back, 1, sizeof back, fp);
    fclose(fp);
    cr_assert(got == strlen(BASE) && memcmp(back, BASE, got) == 0);

    char *buf = NULL;
    size_t blen = 0;
    FILE *mem = open_memstream(&buf, &blen);
    ac_casefile_describe(&g, mem);
    fclose(mem);
    cr_assert(strstr(buf, "case:    prefill bf16 B=2"), "%s", buf);
    cr_assert(strstr(buf, "title:   base case"), "%s", buf);
    cr_assert(strstr(buf, "note:    first line"), "%s", buf);
    cr_assert(strstr(buf, "0: 0 [-1]"), "unread entry must be marked:\n%s", buf);
    cr_assert(strstr(buf, "1: 1 2"), "%s", buf);
    cr_assert(strstr(buf, "3 tokens (int64), 1 padding"), "%s", buf);
    free(buf);

    /* A broken layout is described without complaint and marked. */
    g.c.block_table[2] = 99;
    g.c.seqlen_k[0] = 40;
    buf = NULL;
    mem = open_memstream(&buf, &blen);
    ac_casefile_describe(&g, mem);
    fclose(mem);
    cr_assert(strstr(buf, "99!"), "%s", buf);
    cr_assert(strstr(buf, "beyond capacity 32"), "%s", buf);
    cr_assert(strstr(buf, "layout:  AC_ERR_CAPACITY"), "%s", buf);
    free(buf);

    /* Errors name the path (g owns nothing before each load). */
    ac_casefile_free(&g);
    char missing[300];
    snprintf(missing, sizeof missing, "%s/none.case", dir);
    cr_assert_eq(ac_casefile_load(missing, &g, &e), AC_ERR_IO);
    cr_assert(strstr(e.msg, "none.case"), "%s", e.msg);
    fp = fopen(path, "wb");
    fputs("attncheck-case 1\nbogus\n", fp);
    fclose(fp);
    cr_assert_eq(ac_casefile_load(path, &g, &e), AC_ERR_PARSE);
    cr_assert(strstr(e.msg, "a.case: line 2: unknown key 'bogus'"), "%s", e.msg);

    ac_casefile_free(&f);
    ac_casefile_free(&g);
    unlink(path);
    rmdir(dir);
}

Test(casefile, from_case_titles_with_the_case_line)
{
    ac_case c;
    ac_case_init(&c);
    cr_assert_eq(ac_case_set_batch(&c, 2, NULL), AC_OK);
    c.seqlen_q[0] = 3;
    c.seqlen_k[0] = 5;
    c.seed = 9;
    ac_casefile f;
    cr_assert_eq(ac_casefile_from_case(&f, &c, NULL), AC_OK);
    char line[512];
    ac_case_line(&c, line, sizeof line);
    cr_assert_str_eq(f.title, line);
    cr_assert_eq(f.c.seqlen_k[0], 5);
    cr_assert_neq(f.c.seqlen_q, c.seqlen_q);
    ac_casefile_free(&f);
    ac_case_free(&c);
}

/* --- corpus ---------------------------------------------------------------- */
/* Multiply-adds the CPU oracle spends on a case (Q.K and P.V). */
static double oracle_work(const ac_case *c)
{
    double w = 0;
    for (int32_t b = 0; b < c->batch; b++) {
        double lq = c->seqlen_q[b] > 0 ? c->seqlen_q[b] : 0, lk = c->seqlen_k[b] > 0 ? c->seqlen_k[b] : 0;
        if (c->op == AC_OP_COMBINE) w += lq * c->heads_q * (double)(c->num_splits + 1) * c->head_dim;
        else if (c->op != AC_OP_STORE) w += 2.0 * lq * lk * c->heads_q * c->head_dim;
    }
    return w;
}

static const char *source_dir(void)
{
    const char *env = getenv("AC_SOURCE_DIR");
    return env && env[0] ? env : AC_SOURCE_DIR;
}

Test(casefile, every_corpus_file_is_canonical_and_meets_its_expectation)
{
    static const char *const subdirs[] = {"prefill", "decode", "combine", "store"};
    int total = 0, errors_expected = 0;
    for (size_t s = 0; s < 4; s++) {
        char dpath[1024];
        snprintf(dpath, sizeof dpath, "%s/corpus/%s", source_dir(), subdirs[s]);
        DIR *d = opendir(dpath);
        cr_assert_not_null(d, "cannot open %s (set AC_SOURCE_DIR)", dpath);
        int in_dir = 0;
        struct dirent *de;
        while ((de = readdir(d)) != NULL) {
            size_t nl = strlen(de->d_name);
            if (nl < 6 || strcmp(de->d_name + nl - 5, ".case") != 0) continue;
            char path[2048];
            snprintf(path, sizeof path, "%s/%s", dpath, de->d_name);
            ac_casefile f;
            ac_error e;
            cr_assert_eq(ac_casefile_load(path, &f, &e), AC_OK, "%s", e.msg);
            cr_assert(f.title[0], "%s: empty title", path);
            /* Canonical: the file's bytes are exactly what the writer gives. */
            FILE *fp = fopen(path, "rb");
            fseek(fp, 0, SEEK_END);
            long size = ftell(fp);
            rewind(fp);
            char *bytes = malloc((size_t)size + 1);
            cr_assert_eq(fread(bytes, 1, (size_t)size, fp), (size_t)size);
            fclose(fp);
            char *canon;
            size_t cn;
            cr_assert_eq(ac_casefile_write(&f, &canon, &cn, &e), AC_OK);
            cr_assert(cn == (size_t)size && memcmp(canon, bytes, cn) == 0, "%s is not canonical; canonical is:\n%s",
                      path, canon);
            /* The op matches the folder. */
            cr_assert_str_eq(ac_op_name(f.c.op), subdirs[s], "%s", path);
            /* The expectation holds for the layout validator. */
            ac_status st = ac_case_validate(&f.c, &e);
            if (f.expect_error) {
                errors_expected++;
                cr_assert_eq(st, f.expect_code, "%s: expects %s, validate gives %s (%s)", path,
                             ac_status_name(f.expect_code), ac_status_name(st), st ? e.msg : "");
            } else {
                cr_assert_eq(st, AC_OK, "%s: expects ok, validate gives %s: %s", path, ac_status_name(st), e.msg);
            }
            /* Small enough for the CPU oracle in CI. */
            double w = oracle_work(&f.c);
            cr_assert(w <= 2e7, "%s: %.3g multiply-adds, CI budget is 2e7", path, w);
            if (f.c.paged)
                cr_assert((double)f.c.num_blocks * f.c.block_size * f.c.heads_kv * f.c.head_dim <= (1 << 22),
                          "%s: cache pool too large for CI", path);
            free(canon);
            free(bytes);
            ac_casefile_free(&f);
            in_dir++;
        }
        closedir(d);
        cr_assert(in_dir >= 3, "%s holds %d case files", dpath, in_dir);
        total += in_dir;
    }
    cr_assert(errors_expected >= 5, "only %d expect-error files", errors_expected);
    cr_log_info("corpus: %d files, %d expect an error", total, errors_expected);
}

/* Allocation bounds hold before any value is stored: a list longer than its
   bound is refused at its own line, whatever batch says. */
Test(casefile, list_bounds_refused_at_the_line)
{
    size_t cap = 16 + 2 * (AC_MAX_BATCH + 1) + 1;
    char *t = malloc(strlen(BASE) + cap);
    char *p = t;
    p += sprintf(p, "attncheck-case 1\nseqlen_q");
    for (int i = 0; i <= AC_MAX_BATCH; i++) p += sprintf(p, " 1");
    p += sprintf(p, "\n");
    ac_casefile f;
    ac_error e;
    cr_assert_eq(ac_casefile_parse(t, (size_t)(p - t), &f, &e), AC_ERR_PARSE);
    cr_assert(strstr(e.msg, "line 2:") && strstr(e.msg, "more than 65536 values"), "%s", e.msg);
    /* 65536 values are accepted by the list itself (batch decides later). */
    p = t + sprintf(t, "attncheck-case 1\nseqlen_q");
    for (int i = 0; i < AC_MAX_BATCH; i++) p += sprintf(p, " 1");
    p += sprintf(p, "\n");
    cr_assert_eq(ac_casefile_parse(t, (size_t)(p - t), &f, &e), AC_ERR_PARSE);
    cr_assert(strstr(e.msg, "missing key 'title'"), "%s", e.msg);
    free(t);
}
