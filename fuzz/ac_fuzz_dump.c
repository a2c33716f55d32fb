/* The dump target: the dump reader (harness/ac_dump.h) on any bytes. It must
 * never crash, leak or read past the input (ASan), every refusal must be a
 * named error with a message, and what it accepts must be a case that
 * validates and that `attncheck verify` can judge: the check runs (or stops
 * at the oracle's named AC_ERR_NUMERIC for non-finite inputs), a failing
 * verdict's diagnosis runs, and the writer's bytes of the parsed dump parse
 * back to the same case line. A verdict that fails is no finding: the
 * outputs in a dump are whatever the mutator made of them.
 *
 * Mutations know the file's structure: words and numbers of the JSON header
 * (the metadata object is JSON inside a string: the same scan finds its
 * words), the header length, the data section's bytes; the header length is
 * kept consistent unless that field is the thing mutated. The seeds
 * (corpus/dump, written by attncheck-corpus through ac_fuzz_dump_seed) are
 * small valid dumps whose outputs the CPU models computed; the FP8-cache and
 * D_v != D_qk seeds (kv-spec) take theirs from the oracle rounded once, so
 * they hold a correct call whatever the models implement. */
#include "ac_fuzz.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ac_diagnose.h"
#include "ac_dump.h"
#include "oracle.h"

/* Messages are cut at their buffers on purpose (never past them). */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wformat-truncation"
#endif

void ac_fuzz_dump_run(const uint8_t *data, size_t size, const ac_fuzz_env *env, ac_fuzz_outcome *out)
{
    ac_fuzz_outcome_free(out);
    FILE *log = env->log ? env->log : stderr;
    ac_dump d;
    ac_error e;
    memset(&e, 0, sizeof e);
    snprintf(out->line, sizeof out->line, "dump input of %zu bytes", size);
    ac_status st = ac_dump_parse(data, size, &d, &e);
    if (st) {
        out->kind = AC_FUZZ_REJECTED;
        out->code = st;
        snprintf(out->why, sizeof out->why, "%s", e.msg);
        if (!e.msg[0] || e.code != st) {
            out->kind = AC_FUZZ_FINDING;
            snprintf(out->why, sizeof out->why, "refused with %s but no message naming the key or tensor",
                     ac_status_name(st));
        }
        if (env->verbose) fprintf(log, "rejected (expected for such input): %s: %s\n", ac_status_name(st), e.msg);
        return;
    }
    char line[512];
    ac_case_line(&d.c, line, sizeof line);
    char *cut = strstr(line, " dist=");
    if (cut) *cut = '\0';
    snprintf(out->line, sizeof out->line, "dump: %s", line);
    out->kind = AC_FUZZ_PASS;
    snprintf(out->why, sizeof out->why, "parsed and judged");
    if (ac_case_validate(&d.c, &e)) {
        out->kind = AC_FUZZ_FINDING;
        snprintf(out->why, sizeof out->why, "an accepted dump's case fails validation: %s: %s", ac_status_name(e.code),
                 e.msg);
        ac_dump_free(&d);
        return;
    }
    /* The check on sampled rows, as fuzzing runs the oracle elsewhere. */
    ac_dump_check_opts co = {env->oracle_rows, 1, env->oracle_threads};
    ac_check_result r;
    st = ac_dump_check(&d, &co, &r);
    if (st && st != AC_ERR_NUMERIC) {
        out->kind = AC_FUZZ_FINDING;
        snprintf(out->why, sizeof out->why, "the check of an accepted dump stopped at %s: %s: %s",
                 r.stage ? r.stage : "?", ac_status_name(st), r.error.msg);
    }
    if (!st) {
        ac_empty_report er;
        ac_dump_empty_report(&d, &r.oracle, &er);
        if (env->verbose) {
            ac_fuzz_print_diagnosis(&d.c, &r, 4, log);
            fprintf(log, "%s\n", er.text);
        }
        if (!r.verdict.pass && !(env->limits && d.t.total_q * d.c.heads_q > 256)) {
            ac_diagnosis dg;
            ac_error de;
            if (ac_dump_diagnose(&d, &r.verdict, &co, &dg, &de) == AC_OK && env->verbose)
                fprintf(log, "%s\n", dg.summary);
        }
    }
    ac_dump_check_free(&r);
    /* The writer says what the reader read: the case line survives. */
    uint8_t *bytes = NULL;
    size_t n = 0;
    if (out->kind == AC_FUZZ_PASS) {
        st = ac_dump_write(&d.c, &d.t, &d.out, &d.conv, &bytes, &n, &e);
        ac_dump d2;
        if (st) {
            out->kind = AC_FUZZ_FINDING;
            snprintf(out->why, sizeof out->why, "an accepted dump cannot be written back: %s", e.msg);
        } else if ((st = ac_dump_parse(bytes, n, &d2, &e)) != AC_OK) {
            out->kind = AC_FUZZ_FINDING;
            snprintf(out->why, sizeof out->why, "the writer's bytes do not parse: %s: %s", ac_status_name(st), e.msg);
        } else {
            char line2[512];
            ac_case_line(&d2.c, line2, sizeof line2);
            cut = strstr(line2, " dist=");
            if (cut) *cut = '\0';
            if (strcmp(line, line2)) {
                out->kind = AC_FUZZ_FINDING;
                snprintf(out->why, sizeof out->why, "parse(write(dump)) reads a different case: %s", line2);
            }
            ac_dump_free(&d2);
        }
        free(bytes);
    }
    if (env->verbose) fprintf(log, "%s: %s\n", out->kind == AC_FUZZ_FINDING ? "FINDING" : "pass", out->why);
    ac_dump_free(&d);
}

/* ---- mutation ------------------------------------------------------------------ */

/* Words the format uses: metadata keys and values, tensor names, dtypes. */
static const char *const words[] = {
    "format", "version", "op", "causal", "scale", "layout", "kv_layout", "lse_base", "lse_layout", "empty_row",
    "combine_empty", "mask", "library", "library_version", "note", "out_dtype", "prefill", "decode", "combine",
    "store", "none", "TL", "BR", "default", "NHD", "HND", "e", "2", "TH", "HT", "zero_neginf", "zero_posinf", "nan",
    "zero_zero", "mean_v", "guard", "flash_attn", "bool", "additive", "same", "float32", "q", "k", "v", "k_cache",
    "v_cache", "block_table", "seqlens_k", "cu_seqlens_q", "cu_seqlens_k", "out", "lse", "num_splits", "o_part",
    "lse_part", "k_new", "v_new", "slot_mapping", "k_cache_out", "v_cache_out", "dtype", "shape", "data_offsets",
    "F16", "BF16", "F32", "I32", "I64", "BOOL", "U8", "F64", "__metadata__", "attncheck", "attncheck-dump",
    "window_left", "window_right", "softcap", "alibi_slopes", "sinks", "F8_E4M3", "F8_E5M2", "k_scale",
    "v_scale",
};
static const char *const numbers[] = {"0", "1", "2", "3", "7", "8", "16", "-1", "1.5", "0.0", "-0.0", "1e308",
                                      "2147483647", "2147483648", "4294967296", "9007199254740993", "1e-300",
                                      "-2", "-inf", "30.0"};

static int is_word(uint8_t ch) { return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_'; }
static int is_digit(uint8_t ch) { return ch >= '0' && ch <= '9'; }

/* Replace header[a, b) by s in the buffer hdr (length *n, capacity cap). */
static int splice(uint8_t *hdr, size_t *n, size_t cap, size_t a, size_t b, const char *s, size_t sl)
{
    if (*n - (b - a) + sl > cap) return -1;
    memmove(hdr + a + sl, hdr + b, *n - b);
    memcpy(hdr + a, s, sl);
    *n = *n - (b - a) + sl;
    return 0;
}

static uint64_t rd64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

static void wr64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

size_t ac_fuzz_dump_mutate(uint8_t *data, size_t size, size_t max_size, uint64_t seed)
{
    ac_fuzz_rng r = {seed};
    uint64_t hn = size >= 8 ? rd64(data) : 0;
    if (size < 8 || hn == 0 || hn > size - 8 || max_size < 16) { /* not a dump: bytes */
        for (int k = 0, m = 1 + (int)ac_fuzz_below(&r, 8); size && k < m; k++)
            data[ac_fuzz_below(&r, (uint32_t)size)] = (uint8_t)ac_fuzz_next(&r);
        return size;
    }
    size_t n = (size_t)hn, dsize = size - 8 - n;
    size_t cap = max_size - 8 - dsize < 2 * n + 256 ? max_size - 8 - dsize : 2 * n + 256;
    if (max_size < 8 + dsize + n) return size;
    uint8_t *hdr = malloc(cap + 1);
    if (!hdr) return size;
    memcpy(hdr, data + 8, n);
    int kind = (int)ac_fuzz_below(&r, 10), header_len_kept = 1;
    size_t at = n ? ac_fuzz_below(&r, (uint32_t)n) : 0;
    switch (kind) {
    case 0: case 1: { /* a word -> another word of the format */
        size_t a = at;
        while (a < n && !is_word(hdr[a])) a++;
        size_t b = a;
        while (b < n && (is_word(hdr[b]) || is_digit(hdr[b]) || hdr[b] == '-')) b++;
        const char *w = words[ac_fuzz_below(&r, sizeof words / sizeof *words)];
        if (a < n) splice(hdr, &n, cap, a, b, w, strlen(w));
        break;
    }
    case 2: case 3: { /* a number -> an edge number */
        size_t a = at;
        while (a < n && !is_digit(hdr[a])) a++;
        size_t b = a;
        while (b < n && (is_digit(hdr[b]) || hdr[b] == '.' || hdr[b] == 'e' || hdr[b] == '-')) b++;
        char buf[32];
        if (ac_fuzz_below(&r, 2)) {
            snprintf(buf, sizeof buf, "%s", numbers[ac_fuzz_below(&r, sizeof numbers / sizeof *numbers)]);
        } else { /* off by one from the original */
            long long v = a < n ? strtoll((const char *)hdr + a, NULL, 10) : 0;
            snprintf(buf, sizeof buf, "%lld", v + (ac_fuzz_below(&r, 2) ? 1 : -1));
        }
        if (a < n) splice(hdr, &n, cap, a, b, buf, strlen(buf));
        break;
    }
    case 4: { /* delete a short span */
        size_t len = 1 + ac_fuzz_below(&r, 24);
        if (at + len > n) len = n - at;
        splice(hdr, &n, cap, at, at + len, "", 0);
        break;
    }
    case 5: { /* duplicate a short span (duplicate keys, repeated dims) */
        size_t len = 1 + ac_fuzz_below(&r, 48);
        if (at + len > n) len = n - at;
        char tmp[64];
        memcpy(tmp, hdr + at, len);
        splice(hdr, &n, cap, at, at, tmp, len);
        break;
    }
    case 6: { /* the header length field itself */
        static const uint64_t edge[] = {0, 1, 7, 8, (uint64_t)1 << 31, (uint64_t)1 << 40, ~(uint64_t)0};
        uint64_t v = ac_fuzz_below(&r, 2) ? edge[ac_fuzz_below(&r, 7)] : (uint64_t)n + ac_fuzz_below(&r, 17) - 8;
        wr64(data, v);
        header_len_kept = 0;
        break;
    }
    case 7: { /* data bytes: NaN / Inf / huge patterns or noise */
        static const uint8_t pats[][4] = {{0x00, 0x7e, 0, 0}, {0x80, 0x7f, 0, 0}, {0x00, 0x00, 0xc0, 0x7f},
                                          {0x00, 0x00, 0x80, 0xff}, {0xff, 0xff, 0xff, 0x7f}, {0x01, 0, 0, 0}};
        if (dsize) {
            size_t p = 8 + n + ac_fuzz_below(&r, (uint32_t)dsize) / 2 * 2;
            const uint8_t *pat = pats[ac_fuzz_below(&r, 6)];
            for (int i = 0; i < 4 && p + i < size; i++) data[p + i] = pat[i];
        }
        break;
    }
    case 8: { /* an unknown or misplaced key after a '{' */
        size_t a = at;
        while (a < n && hdr[a] != '{') a++;
        static const char *const keys[] = {"\"foo\":1,", "\\\"foo\\\":1,", "\"q\":{},", "\\\"op\\\":\\\"store\\\","};
        const char *k = keys[ac_fuzz_below(&r, 4)];
        if (a < n) splice(hdr, &n, cap, a + 1, a + 1, k, strlen(k));
        break;
    }
    default: { /* truncate the file */
        free(hdr);
        return size > 9 ? 8 + ac_fuzz_below(&r, (uint32_t)(size - 8)) : size;
    }
    }
    if (kind != 6 && kind != 7) {
        /* Reassemble: 8-byte length, the new header, the data section. */
        if (8 + n + dsize > max_size) {
            free(hdr);
            return size;
        }
        memmove(data + 8 + n, data + 8 + (size_t)hn, dsize);
        memcpy(data + 8, hdr, n);
        if (header_len_kept) wr64(data, (uint64_t)n);
        size = 8 + n + dsize;
    }
    free(hdr);
    return size;
}

/* Crossover: a's tensors with b's attncheck metadata (both must be dumps). */
size_t ac_fuzz_dump_cross(const uint8_t *a, size_t na, const uint8_t *b, size_t nb, uint8_t *out, size_t max_out,
                          uint64_t seed)
{
    (void)seed;
    if (na < 8 || nb < 8) return 0;
    uint64_t ha = rd64(a), hb = rd64(b);
    if (!ha || !hb || ha > na - 8 || hb > nb - 8) return 0;
    cJSON *ja = cJSON_ParseWithLength((const char *)a + 8, (size_t)ha);
    cJSON *jb = cJSON_ParseWithLength((const char *)b + 8, (size_t)hb);
    size_t n = 0;
    cJSON *mb = jb ? cJSON_DetachItemFromObjectCaseSensitive(jb, "__metadata__") : NULL;
    if (ja && mb && cJSON_IsObject(ja)) {
        cJSON_DeleteItemFromObjectCaseSensitive(ja, "__metadata__");
        cJSON_AddItemToObject(ja, "__metadata__", mb);
        mb = NULL;
        char *text = cJSON_PrintUnformatted(ja);
        size_t tl = text ? strlen(text) : 0, dsize = na - 8 - (size_t)ha;
        if (text && 8 + tl + dsize <= max_out) {
            wr64(out, (uint64_t)tl);
            memcpy(out + 8, text, tl);
            memcpy(out + 8 + tl, a + 8 + ha, dsize);
            n = 8 + tl + dsize;
        }
        free(text);
    }
    cJSON_Delete(mb);
    cJSON_Delete(ja);
    cJSON_Delete(jb);
    return n;
}

/* ---- seeds ------------------------------------------------------------------------ */

#define NUM_SEEDS 10
static const char *const seed_slugs[NUM_SEEDS] = {
    "prefill-fp16-contiguous-br",
    "prefill-bf16-paged-tl-bool-mask-hnd-lse-ht-scale",
    "decode-bf16-paged-splits2-lse-base2",
    "combine-fp32-out",
    "store-bf16-i64-slots",
    "prefill-fp16-additive-mask-fp32-out-empty-rows",
    "prefill-bf16-window-softcap-alibi-sinks",
    "prefill-bf16-fp8-e4m3-head-scales-dv",
    "decode-fp16-paged-fp8-e5m2-tensor-scale-dv",
    "store-bf16-fp8-e4m3-head-scales-dv",
};

int ac_fuzz_dump_seed_count(void) { return NUM_SEEDS; }

static ac_status set_lengths(ac_case *c, int32_t b, const int32_t *lq, const int32_t *lk, ac_error *err)
{
    ac_status st = ac_case_set_batch(c, b, err);
    for (int32_t i = 0; i < b && !st; i++) {
        c->seqlen_q[i] = lq ? lq[i] : 0;
        c->seqlen_k[i] = lk[i];
    }
    return st;
}

/* The exact call, rounded once: what a correct kernel returns (the oracle's
   output in the case dtype and in fp32, its LSE; for a store its caches). */
static ac_status oracle_outputs(const ac_case *c, const ac_tensors *t, ac_outputs *o, ac_error *err)
{
    ac_oracle_opts oo = {AC_ORACLE_FAST, 0, 0, 0, 1, 0};
    ac_oracle_result r;
    memset(&r, 0, sizeof r);
    ac_status st = ac_outputs_alloc(c, o, err);
    if (!st) st = ac_oracle_run(c, t, &oo, &r, err);
    if (!st && ac_op_traits_of(c->op)->slots) {
        memcpy(o->k_cache, r.k_cache, sizeof(uint16_t) * (size_t)r.kv_elems);
        memcpy(o->v_cache, r.v_cache, sizeof(uint16_t) * (size_t)r.v_elems);
    } else if (!st) {
        size_t n = (size_t)r.rows * (size_t)r.head_dim;
        memcpy(o->o, r.o_half, sizeof(uint16_t) * n);
        memcpy(o->o_f32, r.o_f32, sizeof(float) * n);
        for (int64_t i = 0; i < r.rows; i++) o->lse[i] = (float)r.lse[i];
    }
    ac_oracle_result_free(&r);
    return st;
}

ac_status ac_fuzz_dump_seed(int i, const char **slug, uint8_t **bytes, size_t *size, ac_error *err)
{
    *bytes = NULL;
    *size = 0;
    if (i < 0 || i >= NUM_SEEDS) return ac_fail(err, AC_ERR_SHAPE, "dump seed %d: there are %d", i, NUM_SEEDS);
    *slug = seed_slugs[i];
    ac_case c;
    ac_case_init(&c);
    ac_dump_conv cv;
    memset(&cv, 0, sizeof cv);
    cv.has_lse = 1;
    snprintf(cv.library, sizeof cv.library, "attncheck CPU model");
    snprintf(cv.library_version, sizeof cv.library_version, "seed");
    snprintf(cv.note, sizeof cv.note, "corpus/dump seed %d: %s", i + 1, seed_slugs[i]);
    c.seed = 100 + (uint64_t)i;
    ac_status st = AC_OK;
    switch (i) {
    case 0:
        c.dtype = AC_FP16, c.heads_q = 2, c.heads_kv = 1, c.head_dim = 16, c.causal = AC_CAUSAL_BOTTOM_RIGHT;
        st = set_lengths(&c, 2, (const int32_t[]){3, 2}, (const int32_t[]){5, 2}, err);
        break;
    case 1:
        c.heads_q = 2, c.heads_kv = 2, c.head_dim = 8, c.causal = AC_CAUSAL_TOP_LEFT;
        c.scale_given = 1, c.scale = 0.5f, c.mask = AC_MASK_BOOL, c.mask_per_head = 1;
        c.paged = 1, c.block_size = 4, c.special = AC_SPECIAL_NAN_SLOTS;
        cv.layout_hnd = cv.kv_layout_hnd = cv.lse_ht = 1;
        st = set_lengths(&c, 2, (const int32_t[]){2, 3}, (const int32_t[]){6, 3}, err);
        if (!st) st = ac_case_make_layout(&c, AC_LAYOUT_PERMUTED, 1, err);
        break;
    case 2:
        c.op = AC_OP_DECODE, c.heads_q = 4, c.heads_kv = 2, c.head_dim = 16, c.causal = AC_CAUSAL_BOTTOM_RIGHT;
        c.paged = 1, c.block_size = 8, c.num_splits = 2, c.special = AC_SPECIAL_NAN_SLOTS;
        cv.lse_base2 = 1;
        st = set_lengths(&c, 2, (const int32_t[]){1, 2}, (const int32_t[]){9, 3}, err);
        if (!st) st = ac_case_make_layout(&c, AC_LAYOUT_PERMUTED, 1, err);
        break;
    case 3:
        c.op = AC_OP_COMBINE, c.heads_q = c.heads_kv = 2, c.head_dim = 8, c.num_splits = 3;
        cv.out_f32 = 1;
        st = set_lengths(&c, 1, (const int32_t[]){3}, (const int32_t[]){0}, err);
        break;
    case 4:
        c.op = AC_OP_STORE, c.heads_q = c.heads_kv = 1, c.head_dim = 8, c.paged = 1, c.block_size = 4;
        c.slot_mapping_i64 = 1;
        cv.has_lse = 0;
        st = set_lengths(&c, 2, (const int32_t[]){1, 1}, (const int32_t[]){5, 3}, err);
        if (!st) st = ac_case_make_layout(&c, AC_LAYOUT_PERMUTED, 1, err);
        if (!st) st = ac_case_make_store_slots(&c, 2, 1, err);
        break;
    case 6: {
        /* every feature key and tensor, a -inf sink among them, and keyless rows with a sink */
        static const float slopes[4] = {0.5f, 0.25f, 0.125f, 0.0625f}, sinks[4] = {-INFINITY, 0.0f, -1.5f, 2.0f};
        c.heads_q = 4, c.heads_kv = 2, c.head_dim = 16, c.causal = AC_CAUSAL_BOTTOM_RIGHT;
        c.window_left = 3, c.window_right = 0, c.softcap = 20.0f;
        st = set_lengths(&c, 2, (const int32_t[]){3, 4}, (const int32_t[]){7, 2}, err);
        if (!st) st = ac_case_set_alibi(&c, slopes, 4, err);
        if (!st) st = ac_case_set_sinks(&c, sinks, 4, err);
        break;
    }
    case 7: { /* FP8 E4M3 codes with per-head scales (v_scale != 1) and D_v < D_qk */
        static const float ks[2] = {0.5f, 2.0f}, vs[2] = {0.25f, 4.0f};
        c.heads_q = 4, c.heads_kv = 2, c.head_dim = 16, c.head_dim_v = 8, c.causal = AC_CAUSAL_BOTTOM_RIGHT;
        c.kv_format = AC_KV_E4M3;
        st = set_lengths(&c, 2, (const int32_t[]){3, 2}, (const int32_t[]){5, 4}, err);
        if (!st) st = ac_case_set_kv_scales(&c, ks, vs, 2, err);
        break;
    }
    case 8: { /* E5M2 in a paged cache (NaN codes in the unused slots), one scale per tensor */
        static const float ks[1] = {0.125f}, vs[1] = {3.0f};
        c.dtype = AC_FP16, c.op = AC_OP_DECODE, c.heads_q = 2, c.heads_kv = 1, c.head_dim = 16, c.head_dim_v = 24;
        c.causal = AC_CAUSAL_BOTTOM_RIGHT, c.kv_format = AC_KV_E5M2;
        c.paged = 1, c.block_size = 4, c.num_splits = 2, c.special = AC_SPECIAL_NAN_SLOTS;
        st = set_lengths(&c, 2, (const int32_t[]){1, 1}, (const int32_t[]){6, 3}, err);
        if (!st) st = ac_case_make_layout(&c, AC_LAYOUT_PERMUTED, 1, err);
        if (!st) st = ac_case_set_kv_scales(&c, ks, vs, 1, err);
        break;
    }
    case 9: { /* a store quantising into an E4M3 cache with per-head scales, D_v > D_qk */
        static const float ks[2] = {0.5f, 0.0625f}, vs[2] = {8.0f, 0.25f};
        c.op = AC_OP_STORE, c.heads_q = c.heads_kv = 2, c.head_dim = 8, c.head_dim_v = 16;
        c.kv_format = AC_KV_E4M3, c.paged = 1, c.block_size = 4;
        cv.has_lse = 0;
        st = set_lengths(&c, 2, (const int32_t[]){1, 1}, (const int32_t[]){5, 3}, err);
        if (!st) st = ac_case_make_layout(&c, AC_LAYOUT_PERMUTED, 1, err);
        if (!st) st = ac_case_make_store_slots(&c, 2, 1, err);
        if (!st) st = ac_case_set_kv_scales(&c, ks, vs, 2, err);
        break;
    }
    default:
        c.dtype = AC_FP16, c.heads_q = 2, c.heads_kv = 2, c.head_dim = 8, c.causal = AC_CAUSAL_BOTTOM_RIGHT;
        c.mask = AC_MASK_ADDITIVE, c.mask_density = 0.9f;
        cv.out_f32 = 1;
        /* Lq > Lk: bottom-right leaves the first rows of sequence 0 without a key */
        st = set_lengths(&c, 2, (const int32_t[]){4, 2}, (const int32_t[]){2, 3}, err);
        break;
    }
    ac_tensors t;
    ac_outputs o;
    memset(&t, 0, sizeof t);
    memset(&o, 0, sizeof o);
    if (!st) st = ac_case_validate(&c, err);
    if (!st) st = ac_gen(&c, &t, err);
    if (!st && !(ac_case_features(&c) & AC_FEAT_KV)) {
        ac_run_opts ro = {AC_BUG_NONE, 1};
        st = ac_backend_run(AC_BACKEND_MODEL, &c, &t, &ro, &o, err);
    } else if (!st) {
        st = oracle_outputs(&c, &t, &o, err);
    }
    if (!st && cv.lse_base2) /* the same call reporting log2 of its sum (FlashInfer) */
        for (int64_t r = 0; r < ac_case_total_q(&c) * c.heads_q; r++)
            o.lse[r] = (float)(o.lse[r] / 0.69314718055994530942); /* / ln 2 */
    if (!st) st = ac_dump_write(&c, &t, &o, &cv, bytes, size, err);
    ac_tensors_free(&t);
    ac_outputs_free(&o);
    ac_case_free(&c);
    return st;
}
