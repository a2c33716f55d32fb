/* The mutators on the extremes of every field the case-file parser accepts:
 * each numeric field of a few base cases (prefill paged, decode, store) is set
 * to INT32_MAX, INT32_MIN, -1, 0, 1 and other edges (int64 and uint64 ones for
 * slots and the seed), and whatever parses is mutated a few hundred times
 * through the layout target's mutator and crossover, then run through the
 * target body (validation only for what does not fit the budget). Built in
 * the sanitizer build (fuzz/build.sh) this is the check that the mutators are
 * free of undefined behaviour (a 440 s campaign once died in one on
 * block_size = INT32_MAX, leaving an empty artifact); built plainly it runs
 * in ctest (label fuzz). Exit 0 when every mutation returned, 1 otherwise.
 *
 *   mutator_extremes [ROUNDS]
 *   mutator_extremes --target T --input FILE [ROUNDS]
 *       the mutator and crossover of target T on FILE (a libFuzzer
 *       "mutating-<pid>" artifact), ROUNDS seeds each from the pristine input */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ac_fuzz.h"

static const char *const bases[] = {
    "attncheck-case 1\ntitle extremes\nexpect ok\nop prefill\ndtype bf16\nbatch 2\nseqlen_q 5 3\nseqlen_k 20 33\nheads_q 4\nheads_kv 2\n"
    "head_dim 32\nscale default\ncausal BR\nmask none\nmask_per_head 0\nmask_density 0x1.8p-1\npaged 1\n"
    "block_size 16\nnum_blocks 5\nmax_blocks_per_seq 4\nblock_table 0: 0 1 -1 -1\nblock_table 1: 2 3 4 -1\n"
    "num_tokens 0\nslot_mapping\nslot_mapping_i64 0\nnum_splits 1\ndist normal\nspecial none\nseed 1\n",
    "attncheck-case 1\ntitle extremes\nexpect ok\nop decode\ndtype fp16\nbatch 2\nseqlen_q 1 2\nseqlen_k 20 3\nheads_q 4\nheads_kv 1\n"
    "head_dim 16\nscale default\ncausal BR\nmask none\nmask_per_head 0\nmask_density 0x1p+0\npaged 1\n"
    "block_size 16\nnum_blocks 4\nmax_blocks_per_seq 2\nblock_table 0: 3 1\nblock_table 1: 0 -1\n"
    "num_tokens 0\nslot_mapping\nslot_mapping_i64 0\nnum_splits 0\ndist needle\nspecial none\nseed 7\n",
    "attncheck-case 1\ntitle extremes\nexpect ok\nop store\ndtype bf16\nbatch 1\nseqlen_q 0\nseqlen_k 5\nheads_q 2\nheads_kv 2\n"
    "head_dim 8\nscale default\ncausal none\nmask none\nmask_per_head 0\nmask_density 0x1p+0\npaged 1\n"
    "block_size 4\nnum_blocks 3\nmax_blocks_per_seq 2\nblock_table 0: 2 0\nnum_tokens 3\n"
    "slot_mapping 8 -1 4\nslot_mapping_i64 1\nnum_splits 1\ndist uniform\nspecial none\nseed 3\n",
    /* Every feature on (docs/CASEFILE.md, "The features"). */
    "attncheck-case 1\ntitle extremes\nexpect ok\nop decode\ndtype bf16\nbatch 2\nseqlen_q 2 1\nseqlen_k 40 70\nheads_q 4\nheads_kv 2\n"
    "head_dim 16\nscale default\ncausal BR\nmask none\nmask_per_head 0\nmask_density 0x1p+0\npaged 1\n"
    "block_size 16\nnum_blocks 8\nmax_blocks_per_seq 5\nblock_table 0: 0 1 2 -1 -1\nblock_table 1: 3 4 5 6 7\n"
    "num_tokens 0\nslot_mapping\nslot_mapping_i64 0\nnum_splits 3\nwindow_left 16\nwindow_right 0\nsoftcap 0x1.ep+4\n"
    "alibi_slopes 0x1p-2,0x1p-4,0x1p-6,0x1p-8\nsinks -inf,0x0p+0,-0x1.ap+1,0x1p+1\ndist normal\nspecial none\nseed 5\n",
    /* An FP8 cache with per-head scales and D_v != D_qk (docs/CASEFILE.md), a
       prefill and a store. */
    "attncheck-case 1\ntitle extremes\nexpect ok\nop prefill\ndtype fp16\nbatch 2\nseqlen_q 5 3\nseqlen_k 20 33\nheads_q 4\nheads_kv 2\n"
    "head_dim 32\nscale default\ncausal BR\nmask none\nmask_per_head 0\nmask_density 0x1p+0\npaged 1\n"
    "block_size 16\nnum_blocks 5\nmax_blocks_per_seq 4\nblock_table 0: 0 1 -1 -1\nblock_table 1: 2 3 4 -1\n"
    "num_tokens 0\nslot_mapping\nslot_mapping_i64 0\nnum_splits 1\nhead_dim_v 16\nkv_format e4m3\n"
    "k_scales 0x1p-1,0x1.8p+0\nv_scales 0x1p+1,0x1p-64\ndist normal\nspecial none\nseed 11\n",
    "attncheck-case 1\ntitle extremes\nexpect ok\nop store\ndtype bf16\nbatch 1\nseqlen_q 0\nseqlen_k 5\nheads_q 2\nheads_kv 2\n"
    "head_dim 16\nscale default\ncausal none\nmask none\nmask_per_head 0\nmask_density 0x1p+0\npaged 1\n"
    "block_size 4\nnum_blocks 3\nmax_blocks_per_seq 2\nblock_table 0: 2 0\nnum_tokens 3\n"
    "slot_mapping 8 -1 4\nslot_mapping_i64 1\nnum_splits 1\nhead_dim_v 8\nkv_format e5m2\n"
    "k_scales 0x1p+64,0x1p+64\nv_scales 0x1p-3,0x1.4p+1\ndist uniform\nspecial none\nseed 13\n",
};
#define NBASES (sizeof bases / sizeof bases[0])

/* The edges written into each field (as text, so the parser decides). */
static const char *const edges32[] = {"2147483647", "-2147483648", "2147483646", "-1", "0", "1", "65536", "4097"};
static const char *const edges64[] = {"9223372036854775807", "-9223372036854775808", "2147483648", "4294967296", "-2"};
static const char *const fields[] = {"batch", "heads_q", "heads_kv", "head_dim", "block_size", "num_blocks",
                                     "max_blocks_per_seq", "num_tokens", "num_splits", "seqlen_q", "seqlen_k",
                                     "slot_mapping", "seed", "block_table 0:", "window_left", "window_right",
                                     "softcap", "alibi_slopes", "sinks", "head_dim_v", "k_scales", "v_scales"};
/* The features' float edges (FLT_MAX, the contract's bounds 2^100 and 2^64 and
   just past them, the smallest fp32, zero, negative, inf, NaN; lists of one value
   per head, too short and too long). FLT_MAX once gave NaN (c * log2 e overflowed):
   corpus/decode/1000 and 1001 keep it refused by name. */
static const char *const edges_float[] = {"0x1.fffffep+127", "0x1p+100", "0x1.000002p+100", "0x1p-149",
                                          "0x0p+0", "-0x1p+0", "inf", "-inf", "nan"};
static const char *const edges_list[] = {
    "0x1.fffffep+127,0x1.fffffep+127,0x1.fffffep+127,0x1.fffffep+127",
    "-0x1.fffffep+127,-0x1.fffffep+127,-0x1.fffffep+127,-0x1.fffffep+127",
    "0x1p+64,0x1p+64,0x1p+64,0x1p+64",
    "-0x1p+64,-0x1.000002p+64,-0x1p+64,-0x1p+64",
    "0x1p-149,-0x1p-149,0x0p+0,-0x0p+0", "-inf,-inf,-inf,-inf", "0x1p+0,0x1p+0,0x1p+0", "0x1p+0,0x1p+0,0x1p+0,0x1p+0,0x1p+0",
    "nan,0x0p+0,0x0p+0,0x0p+0", "inf,0x0p+0,0x0p+0,0x0p+0"};

/* FP8 scales (2 KV heads): the domain's edges 2^-64 and 2^64 and just past
   them, zero, negative, inf, NaN, one (per tensor) and three (a wrong count). */
static const char *const edges_scales[] = {"0x1p-64,0x1p-64", "0x1p+64,0x1p+64", "0x1p+65,0x1p+0", "0x1p-65,0x1p+0",
                                           "0x0p+0,0x1p+0",   "-0x1p+0,0x1p+0",  "inf,0x1p+0",      "nan,0x1p+0",
                                           "0x1p+0",          "0x1p+0,0x1p+0,0x1p+0"};

/* The edges tried on field f: n of them at *out. */
static const char *const *edges_of(const char *f, size_t *n)
{
    if (!strcmp(f, "softcap")) return *n = sizeof edges_float / sizeof edges_float[0], edges_float;
    if (!strcmp(f, "alibi_slopes") || !strcmp(f, "sinks")) return *n = sizeof edges_list / sizeof edges_list[0], edges_list;
    if (!strcmp(f, "k_scales") || !strcmp(f, "v_scales"))
        return *n = sizeof edges_scales / sizeof edges_scales[0], edges_scales;
    return NULL;
}

/* Replace the value of `field` in text (the rest of its line) with `value`. */
static int with_field(const char *text, const char *field, const char *value, char *out, size_t n)
{
    char key[64];
    snprintf(key, sizeof key, "\n%s ", field);
    const char *at = strstr(text, key);
    if (!at) return -1;
    const char *val = at + strlen(key), *eol = strchr(val, '\n');
    if (!eol) return -1;
    int k = snprintf(out, n, "%.*s%s%s", (int)(val - text), text, value, eol);
    return k > 0 && (size_t)k < n ? 0 : -1;
}

static int parse_rounds(const char *s, int *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v < 1 || v > 100000) {
        fprintf(stderr, "mutator_extremes: ROUNDS = \"%s\": expected a number in [1, 100000]\n", s);
        return -1;
    }
    *out = (int)v;
    return 0;
}

/* Replays a target's mutator on one input with ROUNDS seeds. */
static int mutate_file(const char *name, const char *path, int rounds)
{
    const ac_fuzz_target *t = ac_fuzz_target_find(name);
    if (!t) {
        fprintf(stderr, "mutator_extremes: --target %s: unknown\n", name);
        return 2;
    }
    uint8_t *in;
    size_t n;
    ac_error err;
    if (ac_fuzz_read_file(path, &in, &n, 1 << 20, &err)) {
        fprintf(stderr, "mutator_extremes: %s: %s\n", path, err.msg);
        return 2;
    }
    enum { MAX = 1 << 20 };
    uint8_t *buf = malloc(MAX), *child = malloc(MAX);
    if (!buf || !child) return 1;
    for (int r = 0; r < rounds; r++) {
        memcpy(buf, in, n);
        size_t m = t->mutate(buf, n, MAX, (uint64_t)r);
        if (t->cross) t->cross(in, n, buf, m, child, MAX, (uint64_t)r);
    }
    printf("mutator of %s on %s: %d seeds, no crash\n", name, path, rounds);
    free(in), free(buf), free(child);
    return 0;
}

int main(int argc, char **argv)
{
    int rounds = 200;
    if (argc >= 5 && !strcmp(argv[1], "--target") && !strcmp(argv[3], "--input")) {
        if (argc == 6 && parse_rounds(argv[5], &rounds)) return 2;
        return argc > 6 ? 2 : mutate_file(argv[2], argv[4], argc == 6 ? rounds : 10000);
    }
    if (argc > 2 || (argc == 2 && parse_rounds(argv[1], &rounds))) {
        fprintf(stderr, "usage: mutator_extremes [ROUNDS]\n"
                        "       mutator_extremes --target T --input FILE [ROUNDS]\n");
        return 2;
    }
    const ac_fuzz_target *layout = ac_fuzz_target_find("layout");
    ac_fuzz_env env;
    ac_fuzz_env_default(&env);
    ac_fuzz_outcome out;
    ac_fuzz_outcome_init(&out);
    enum { MAX = 1 << 16 };
    uint8_t *buf = malloc(MAX), *other = malloc(MAX), *child = malloc(MAX);
    char *text = malloc(MAX);
    if (!buf || !other || !child || !text) return 1;
    long parsed = 0, refused = 0, mutations = 0, runs = 0;
    for (size_t b = 0; b < NBASES; b++)
        for (size_t f = 0; f < sizeof fields / sizeof fields[0]; f++) {
            int wide = !strcmp(fields[f], "slot_mapping") || !strcmp(fields[f], "seed");
            size_t ne = wide ? sizeof edges64 / sizeof edges64[0] : sizeof edges32 / sizeof edges32[0], nf = 0;
            const char *const *fe = edges_of(fields[f], &nf);
            if (fe) ne = nf, wide = 0;
            for (size_t e = 0; e < ne + (wide ? sizeof edges32 / sizeof edges32[0] : 0); e++) {
                const char *v = fe ? fe[e] : e < ne && wide ? edges64[e] : edges32[wide ? e - ne : e];
                if (with_field(bases[b], fields[f], v, text, MAX)) continue;
                ac_casefile cf;
                ac_error err;
                if (ac_casefile_parse(text, strlen(text), &cf, &err)) {
                    refused++;
                    continue;
                }
                ac_casefile_free(&cf);
                parsed++;
                size_t n = strlen(text);
                memcpy(buf, text, n);
                for (int r = 0; r < rounds; r++) {
                    if (r % 4 == 0) { /* mostly from the edge itself: one step away is where it bites */
                        n = strlen(text);
                        memcpy(buf, text, n);
                    }
                    uint64_t seed = ((uint64_t)b << 48) ^ ((uint64_t)f << 32) ^ ((uint64_t)e << 16) ^ (uint64_t)r;
                    size_t m = layout->mutate(buf, n, MAX, seed);
                    mutations++;
                    if (r % 16 == 0) { /* crossover with the untouched base */
                        size_t nb = strlen(bases[(b + 1) % NBASES]);
                        memcpy(other, bases[(b + 1) % NBASES], nb);
                        size_t k = layout->cross(buf, m, other, nb, child, MAX, seed);
                        if (k) memcpy(buf, child, k), m = k;
                    }
                    if (r % 8 == 0) { /* the body too: budget-limited, so extremes only validate */
                        layout->run(buf, m, &env, &out);
                        runs++;
                        if (out.kind == AC_FUZZ_FINDING) {
                            fprintf(stderr, "FINDING on %s = %s, round %d: %s\n  %s\n", fields[f], v, r, out.line, out.why);
                            goto found;
                        }
                    }
                    n = m ? m : n;
                }
            }
        }
    /* Every target's mutator, crossover and body on byte patterns of the
       extremes (all 0x00, 0xff, 0x7f, 0x80, alternating) at many lengths:
       the binary records (combine partials, api corruptions) decode any bytes. */
    static const uint8_t fills[] = {0x00, 0xff, 0x7f, 0x80, 0x55};
    for (const ac_fuzz_target *const *t = ac_fuzz_targets(); *t; t++)
        for (size_t fi = 0; fi < sizeof fills; fi++)
            for (size_t len = 0; len <= 600; len += len < 64 ? 1 : 37) {
                memset(buf, fills[fi], len);
                size_t m = len;
                for (int r = 0; r < rounds / 50 + 2; r++) {
                    uint64_t seed = ((uint64_t)fi << 40) ^ ((uint64_t)len << 20) ^ (uint64_t)r;
                    m = (*t)->mutate(buf, m, MAX, seed);
                    mutations++;
                    if ((*t)->cross) {
                        memset(other, fills[(fi + 1) % sizeof fills], len);
                        size_t k = (*t)->cross(buf, m, other, len, child, MAX, seed);
                        if (k) memcpy(buf, child, k), m = k;
                    }
                }
                if (!(*t)->uses_kernels || len % 8 == 0) {
                    (*t)->run(buf, m, &env, &out);
                    runs++;
                    if (out.kind == AC_FUZZ_FINDING) {
                        fprintf(stderr, "FINDING in %s on a 0x%02x pattern of %zu bytes: %s\n  %s\n", (*t)->name,
                                fills[fi], len, out.line, out.why);
                        goto found;
                    }
                }
            }
    printf("mutator extremes: %ld edge cases parsed (%ld refused by the parser), %ld mutations, %ld runs, no crash\n",
           parsed, refused, mutations, runs);
    ac_fuzz_outcome_free(&out);
    free(buf), free(other), free(child), free(text);
    return 0;
found: /* the finding is the report; the sanitizers must not bury it under leaks */
    ac_fuzz_outcome_free(&out);
    free(buf), free(other), free(child), free(text);
    return 1;
}
