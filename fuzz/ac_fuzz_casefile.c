/* The casefile target: the corpus file parser on any bytes. It must never
 * crash, leak or read past the input (ASan), and what it accepts must
 * survive the round trip: write(parse(x)) parses back to an equal file and
 * is a fixed point of parse-then-write (canonical form). Describing the
 * parsed file (what `attncheck describe` prints, invalid layouts included)
 * must not crash either. */
#include "ac_fuzz.h"

/* Paths and messages are cut at their buffers on purpose (never past them). */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wformat-truncation"
#endif
#include <stdlib.h>
#include <string.h>

static FILE *null_sink(void)
{
    static FILE *sink;
    if (!sink) sink = fopen("/dev/null", "w");
    return sink;
}

void ac_fuzz_casefile_run(const uint8_t *data, size_t size, const ac_fuzz_env *env, ac_fuzz_outcome *out)
{
    ac_fuzz_outcome_free(out);
    FILE *log = env->log ? env->log : stderr;
    ac_casefile f, g;
    ac_error e;
    snprintf(out->line, sizeof out->line, "casefile input of %zu bytes", size);
    if (ac_casefile_parse((const char *)data, size, &f, &e)) {
        out->kind = AC_FUZZ_REJECTED;
        out->code = e.code;
        snprintf(out->why, sizeof out->why, "%s", e.msg);
        if (e.code != AC_ERR_PARSE && e.code != AC_ERR_NOMEM) {
            out->kind = AC_FUZZ_FINDING;
            snprintf(out->why, sizeof out->why, "parse failed with %s, not AC_ERR_PARSE: %s", ac_status_name(e.code),
                     e.msg);
        }
        if (env->verbose) fprintf(log, "parse error (expected for such input): %s\n", e.msg);
        return;
    }
    snprintf(out->line, sizeof out->line, "casefile: %s", f.title);
    char *t1 = NULL, *t2 = NULL;
    size_t n1 = 0, n2 = 0;
    ac_status st = ac_casefile_write(&f, &t1, &n1, &e);
    out->kind = AC_FUZZ_PASS;
    if (st) {
        /* The writer refuses only what the format cannot say; a parsed file
           can always be said. */
        out->kind = AC_FUZZ_FINDING;
        snprintf(out->why, sizeof out->why, "a parsed file cannot be written back: %s: %s", ac_status_name(st), e.msg);
    } else if ((st = ac_casefile_parse(t1, n1, &g, &e)) != AC_OK) {
        out->kind = AC_FUZZ_FINDING;
        snprintf(out->why, sizeof out->why, "the writer's text does not parse: %s", e.msg);
    } else {
        if (!ac_casefile_equal(&f, &g)) {
            out->kind = AC_FUZZ_FINDING;
            snprintf(out->why, sizeof out->why, "parse(write(f)) differs from f");
        } else if (ac_casefile_write(&g, &t2, &n2, &e) != AC_OK || n1 != n2 || memcmp(t1, t2, n1) != 0) {
            out->kind = AC_FUZZ_FINDING;
            snprintf(out->why, sizeof out->why, "write(parse(write(f))) differs from write(f): not canonical");
        }
        ac_casefile_free(&g);
    }
    FILE *sink = env->verbose ? log : null_sink();
    if (sink) ac_casefile_describe(&f, sink);
    /* The line of a parsed case, invalid layouts included, must be safe too. */
    char line[512];
    ac_case_line(&f.c, line, sizeof line);
    free(t1);
    free(t2);
    if (out->kind == AC_FUZZ_PASS) snprintf(out->why, sizeof out->why, "round trip ok");
    if (env->verbose) fprintf(log, "%s: %s\n", out->kind == AC_FUZZ_FINDING ? "FINDING" : "pass", out->why);
    ac_casefile_free(&f);
}

/* ------------------------------------------------------------------------ */
/* Mutation: half the time structurally (parse, mutate the case, write), half
   the time on the text's lines and tokens, where the parser's edge cases
   live (duplicate/missing keys, numbers at and past their bounds, odd
   floats, truncation, CR, NUL, comments). */

static const char *const tokens[] = {
    "0", "-1", "1", "2147483647", "2147483648", "-2147483648", "-2147483649", "9223372036854775807",
    "9223372036854775808", "-9223372036854775808", "18446744073709551615", "18446744073709551616", "65536",
    "65537", "67108864", "0x1p+0", "0x1.8p-1", "0x1p+128", "0x1p-149", "0x1p-150", "-0x0p+0", "inf", "-inf",
    "nan:0x7fc00000", "nan:0x7f800001", "nan:0xffffffff", "nan", "1e999", "0x", "0x1.p0", "+1", "01", " ",
    "default", "none", "bf16", "fp16", "TL", "BR", "bool", "add", "prefill", "decode", "combine", "store",
    "error AC_ERR_SHAPE", "error AC_OK", "ok", "nan_slots inf_slots", "garbage_table", "nan_partials", "0:", "1:",
};
#define NTOK ((int)(sizeof tokens / sizeof tokens[0]))

static const char *const keys[] = {
    "title", "note", "expect", "op", "dtype", "batch", "seqlen_q", "seqlen_k", "heads_q", "heads_kv", "head_dim",
    "scale", "causal", "mask", "mask_per_head", "mask_density", "paged", "block_size", "num_blocks",
    "max_blocks_per_seq", "block_table", "num_tokens", "slot_mapping", "slot_mapping_i64", "num_splits", "dist",
    "special", "seed", "attncheck-case", "#",
};
#define NKEY ((int)(sizeof keys / sizeof keys[0]))

typedef struct span { size_t off, len; } span;

/* Line spans of buf (each without its '\n'). */
static int lines_of(const uint8_t *buf, size_t n, span *ls, int max)
{
    int k = 0;
    size_t s = 0;
    for (size_t i = 0; i <= n && k < max; i++)
        if (i == n || buf[i] == '\n') {
            if (i > s || i < n) ls[k++] = (span){s, i - s};
            s = i + 1;
        }
    return k;
}

/* Replace [off, off+len) of buf (size n) by rep (rn bytes); returns the new size or n if it does not fit. */
static size_t splice(uint8_t *buf, size_t n, size_t max, size_t off, size_t len, const void *rep, size_t rn)
{
    if (off > n || len > n - off || n - len + rn > max) return n;
    memmove(buf + off + rn, buf + off + len, n - off - len);
    memcpy(buf + off, rep, rn);
    return n - len + rn;
}

static size_t text_mutate(uint8_t *buf, size_t n, size_t max, ac_fuzz_rng *r)
{
    enum { MAXL = 4096 };
    static span ls[MAXL];
    int nl = lines_of(buf, n, ls, MAXL);
    uint32_t op = ac_fuzz_below(r, 10);
    if (nl == 0) op = 9;
    span a = nl ? ls[ac_fuzz_below(r, (uint32_t)nl)] : (span){0, 0};
    switch (op) {
    case 0: /* delete a line */
        return splice(buf, n, max, a.off, a.len + (a.off + a.len < n), "", 0);
    case 1: { /* duplicate a line */
        if (a.len + 1 > 512) return n;
        uint8_t tmp[513];
        memcpy(tmp, buf + a.off, a.len);
        tmp[a.len] = '\n';
        return splice(buf, n, max, a.off, 0, tmp, a.len + 1);
    }
    case 2: { /* move a line to the end: key order and the first line */
        if (a.len + 1 > 512) return n;
        uint8_t tmp[513];
        memcpy(tmp, buf + a.off, a.len);
        tmp[a.len] = '\n';
        size_t m = splice(buf, n, max, a.off, a.len + (a.off + a.len < n), "", 0);
        return splice(buf, m, max, m, 0, tmp, a.len + 1);
    }
    case 3:
    case 4:
    case 5: { /* replace the value of a line by a token */
        const uint8_t *sp = memchr(buf + a.off, ' ', a.len);
        size_t vo = sp ? (size_t)(sp - buf) + 1 : a.off + a.len;
        const char *t = tokens[ac_fuzz_below(r, NTOK)];
        size_t vl = a.off + a.len - vo;
        /* sometimes only one space-separated token of the value */
        if (vl && ac_fuzz_below(r, 2)) {
            size_t start = vo + ac_fuzz_below(r, (uint32_t)vl);
            while (start > vo && buf[start - 1] != ' ') start--;
            size_t end = start;
            while (end < a.off + a.len && buf[end] != ' ') end++;
            return splice(buf, n, max, start, end - start, t, strlen(t));
        }
        if (!sp) return splice(buf, n, max, vo, 0, " ", 1);
        return splice(buf, n, max, vo, vl, t, strlen(t));
    }
    case 6: { /* replace the key */
        const uint8_t *sp = memchr(buf + a.off, ' ', a.len);
        size_t kl = sp ? (size_t)(sp - (buf + a.off)) : a.len;
        const char *k = keys[ac_fuzz_below(r, NKEY)];
        return splice(buf, n, max, a.off, kl, k, strlen(k));
    }
    case 7: { /* a hostile byte: CR, NUL, tab, 0xff, or a cut */
        static const uint8_t bad[] = {'\r', 0, '\t', 0xff, ' ', '#'};
        size_t at = ac_fuzz_below(r, (uint32_t)n + 1);
        return splice(buf, n, max, at, ac_fuzz_below(r, 2) && at < n ? 1 : 0, &bad[ac_fuzz_below(r, sizeof bad)], 1);
    }
    case 8: /* truncate */
        return ac_fuzz_below(r, (uint32_t)n + 1);
    default: { /* append a line "key token" */
        char line[128];
        int k = snprintf(line, sizeof line, "%s %s\n", keys[ac_fuzz_below(r, NKEY)], tokens[ac_fuzz_below(r, NTOK)]);
        return splice(buf, n, max, n, 0, line, (size_t)k);
    }
    }
}

size_t ac_fuzz_casefile_mutate(uint8_t *data, size_t size, size_t max_size, uint64_t seed)
{
    ac_fuzz_rng r = {seed};
    if (ac_fuzz_below(&r, 2)) {
        ac_casefile f;
        ac_error e;
        if (ac_fuzz_case_from_bytes(data, size, &f, &e) == AC_OK) {
            ac_fuzz_mutate_case(&f.c, &r, 1 + (int)ac_fuzz_below(&r, 2));
            if (ac_fuzz_below(&r, 4) == 0) f.c.op = (ac_op)ac_fuzz_below(&r, AC_OP_COUNT); /* combine too */
            if (ac_fuzz_below(&r, 4) == 0)
                ac_casefile_set_note(&f, ac_fuzz_below(&r, 2) ? "a note\nof two lines" : "", &e);
            ac_case_line(&f.c, f.title, sizeof f.title);
            f.expect_error = (int)ac_fuzz_below(&r, 2);
            f.expect_code = f.expect_error ? (ac_status)(1 + ac_fuzz_below(&r, AC_STATUS_COUNT - 1)) : AC_OK;
            char *text = NULL;
            size_t len = 0;
            size_t n = 0;
            if (ac_casefile_write(&f, &text, &len, &e) == AC_OK && len <= max_size) {
                memcpy(data, text, len);
                n = len;
            }
            free(text);
            ac_casefile_free(&f);
            if (n) return n;
        }
    }
    size_t n = size;
    int steps = 1 + (int)ac_fuzz_below(&r, 3);
    for (int k = 0; k < steps; k++) n = text_mutate(data, n, max_size, &r);
    return n;
}
