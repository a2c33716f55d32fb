/* Case files (docs/CASEFILE.md). The parser walks `len` bytes line by line
 * with explicit bounds (memchr, lengths), never relies on a NUL terminator,
 * and gathers every value into bounded temporary vectors before building the
 * case, so a failure at any point frees everything and leaves `out` empty. */
#include "ac_casefile.h"

#include "ac_file.h"
#include "ac_numfmt.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ac_index.h"

/* ---------------------------------------------------------------------------
 * Keys, in canonical order.
 * ------------------------------------------------------------------------- */
typedef enum key {
    K_TITLE, K_NOTE, K_EXPECT, K_OP, K_DTYPE, K_BATCH, K_SEQLEN_Q, K_SEQLEN_K, K_HEADS_Q,
    K_HEADS_KV, K_HEAD_DIM, K_SCALE, K_CAUSAL, K_MASK, K_MASK_PER_HEAD, K_MASK_DENSITY,
    K_PAGED, K_BLOCK_SIZE, K_NUM_BLOCKS, K_MAX_BLOCKS, K_BLOCK_TABLE, K_NUM_TOKENS,
    K_SLOT_MAPPING, K_SLOT_I64, K_NUM_SPLITS, K_WINDOW_LEFT, K_WINDOW_RIGHT, K_SOFTCAP, K_ALIBI, K_SINKS,
    K_HEAD_DIM_V, K_KV_FORMAT, K_K_SCALES, K_V_SCALES, K_DIST, K_SPECIAL, K_SEED, K_COUNT
} key;

static const char *const key_names[K_COUNT] = {
    "title", "note", "expect", "op", "dtype", "batch", "seqlen_q", "seqlen_k", "heads_q",
    "heads_kv", "head_dim", "scale", "causal", "mask", "mask_per_head", "mask_density",
    "paged", "block_size", "num_blocks", "max_blocks_per_seq", "block_table", "num_tokens",
    "slot_mapping", "slot_mapping_i64", "num_splits", "window_left", "window_right", "softcap",
    "alibi_slopes", "sinks", "head_dim_v", "kv_format", "k_scales", "v_scales", "dist", "special", "seed",
};

/* note and block_table repeat; block_table rows are required only when
   batch * max_blocks_per_seq > 0. Every other key appears exactly once. */
static int key_repeats(key k) { return k == K_NOTE || k == K_BLOCK_TABLE; }

static const struct { uint32_t bit; const char *name; } special_names[] = {
    {AC_SPECIAL_NAN_SLOTS, "nan_slots"},
    {AC_SPECIAL_INF_SLOTS, "inf_slots"},
    {AC_SPECIAL_GARBAGE_TABLE, "garbage_table"},
    {AC_SPECIAL_NAN_PARTIALS, "nan_partials"},
    {AC_SPECIAL_SPARSE, "sparse"},
};
#define N_SPECIAL ((int)(sizeof special_names / sizeof special_names[0]))
static uint32_t special_known_bits(void)
{
    uint32_t m = 0;
    for (int i = 0; i < N_SPECIAL; i++) m |= special_names[i].bit;
    return m;
}

/* ---------------------------------------------------------------------------
 * Small helpers
 * ------------------------------------------------------------------------- */

/* Printable excerpt of untrusted bytes for a message: at most 24 bytes,
   non-printable bytes as '?', "..." when cut. */
static const char *excerpt(const char *s, size_t n, char buf[32])
{
    size_t m = n < 24 ? n : 24, i;
    for (i = 0; i < m; i++) {
        unsigned char ch = (unsigned char)s[i];
        buf[i] = (ch >= 0x20 && ch < 0x7f) ? (char)ch : '?';
    }
    if (n > m) {
        memcpy(buf + i, "...", 3);
        i += 3;
    }
    buf[i] = '\0';
    return buf;
}


/* Canonical, exact text of a float: C99 hex float with a normalised leading 1
   and no trailing zero digits ("0x1.8p-1"), "0x0p+0" / "-0x0p+0", "inf" /
   "-inf", and "nan:0x7fc00000" (the full bit pattern) for NaN. Written by
   hand rather than with "%a" so the text does not depend on the C library. */
static void format_float(float f, char buf[32])
{
    uint32_t u = ac_f32_bits(f);
    const char *sign = (u >> 31) ? "-" : "";
    uint32_t exp = (u >> 23) & 0xffu, man = u & 0x7fffffu;
    if (exp == 0xffu) {
        if (man == 0) snprintf(buf, 32, "%sinf", sign);
        else snprintf(buf, 32, "nan:0x%08x", (unsigned)u);
        return;
    }
    if (exp == 0 && man == 0) {
        snprintf(buf, 32, "%s0x0p+0", sign);
        return;
    }
    int e;
    if (exp == 0) { /* subnormal: normalise so the text has a leading 1 */
        e = -126;
        while (!(man & 0x800000u)) {
            man <<= 1;
            e--;
        }
        man &= 0x7fffffu;
    } else {
        e = (int)exp - 127;
    }
    char digits[8];
    snprintf(digits, sizeof digits, "%06x", (unsigned)(man << 1)); /* 24 bits, 6 hex digits */
    int nd = 6;
    while (nd > 0 && digits[nd - 1] == '0') nd--;
    digits[nd] = '\0';
    snprintf(buf, 32, "%s0x1%s%s""p%+d", sign, nd ? "." : "", digits, e);
}

/* Growable byte buffer for the writer and for the note. */
typedef struct sbuf { char *p; size_t n, cap; int failed; } sbuf;

static void sb_put(sbuf *b, const char *s, size_t n)
{
    if (b->failed) return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n + 1) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->failed = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}
static void sb_str(sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }
static void sb_fmt(sbuf *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static void sb_fmt(sbuf *b, const char *fmt, ...)
{
    char tmp[128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof tmp) { /* never for the short items written here */
        b->failed = 1;
        return;
    }
    sb_put(b, tmp, (size_t)n);
}

/* Bounded vector of int64 values gathered while parsing. */
typedef struct ivec { int64_t *v; size_t n, cap; } ivec;

/* 0 ok, -1 out of memory. The caller checks the bound before pushing. */
static int iv_push(ivec *a, int64_t x)
{
    if (a->n == a->cap) {
        size_t cap = a->cap ? 2 * a->cap : 16;
        int64_t *p = realloc(a->v, cap * sizeof *p);
        if (!p) return -1;
        a->v = p;
        a->cap = cap;
    }
    a->v[a->n++] = x;
    return 0;
}

/* ---------------------------------------------------------------------------
 * Number parsing: strict canonical decimals, bounded, no libc locale games.
 * ------------------------------------------------------------------------- */
typedef enum num_res { NUM_OK = 0, NUM_SYNTAX, NUM_NONCANON, NUM_RANGE } num_res;

/* Signed decimal: "0" or "-"? [1-9][0-9]*; "-0", "+1", "007" are refused. */
static num_res parse_i64(const char *s, size_t n, int64_t lo, int64_t hi, int64_t *out)
{
    size_t i = 0;
    int neg = 0;
    if (n > 0 && s[0] == '-') {
        neg = 1;
        i = 1;
    }
    if (i == n) return NUM_SYNTAX;
    for (size_t j = i; j < n; j++)
        if (s[j] < '0' || s[j] > '9') return NUM_SYNTAX;
    if (s[i] == '0' && (n - i > 1 || neg)) return NUM_NONCANON;
    /* Accumulate the magnitude in uint64 with an overflow check. */
    uint64_t mag = 0, limit = neg ? (uint64_t)INT64_MAX + 1u : (uint64_t)INT64_MAX;
    for (size_t j = i; j < n; j++) {
        unsigned d = (unsigned)(s[j] - '0');
        if (mag > (limit - d) / 10u) return NUM_RANGE;
        mag = mag * 10u + d;
    }
    int64_t v = neg ? (mag == (uint64_t)INT64_MAX + 1u ? INT64_MIN : -(int64_t)mag) : (int64_t)mag;
    if (v < lo || v > hi) return NUM_RANGE;
    *out = v;
    return NUM_OK;
}

static num_res parse_u64(const char *s, size_t n, uint64_t *out)
{
    if (n == 0) return NUM_SYNTAX;
    for (size_t j = 0; j < n; j++)
        if (s[j] < '0' || s[j] > '9') return NUM_SYNTAX;
    if (s[0] == '0' && n > 1) return NUM_NONCANON;
    uint64_t v = 0;
    for (size_t j = 0; j < n; j++) {
        unsigned d = (unsigned)(s[j] - '0');
        if (v > (UINT64_MAX - d) / 10u) return NUM_RANGE;
        v = v * 10u + d;
    }
    *out = v;
    return NUM_OK;
}

static int is_digit(char ch) { return ch >= '0' && ch <= '9'; }
static int is_hex(char ch)
{
    return is_digit(ch) || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F');
}

/* A float: the canonical forms of format_float, or (for hand-written files)
   a decimal [-]d+[.d*][e[+-]d+] or any C99 hex float [-]0xh+[.h*]p[+-]d+,
   rounded to nearest by strtof (C locale). Overflow to infinity is refused. */
static num_res parse_float(const char *s, size_t n, float *out)
{
    char buf[72];
    if (n == 0) return NUM_SYNTAX;
    if (n >= sizeof buf) return NUM_SYNTAX; /* no float needs 71 characters */
    if (n == 3 && memcmp(s, "inf", 3) == 0) {
        *out = ac_f32_from_bits(0x7f800000u);
        return NUM_OK;
    }
    if (n == 4 && memcmp(s, "-inf", 4) == 0) {
        *out = ac_f32_from_bits(0xff800000u);
        return NUM_OK;
    }
    if (n == 14 && memcmp(s, "nan:0x", 6) == 0) {
        uint32_t u = 0;
        for (size_t i = 6; i < 14; i++) {
            char ch = s[i];
            unsigned d;
            if (ch >= '0' && ch <= '9') d = (unsigned)(ch - '0');
            else if (ch >= 'a' && ch <= 'f') d = (unsigned)(ch - 'a' + 10);
            else return NUM_SYNTAX;
            u = (u << 4) | d;
        }
        if ((u & 0x7f800000u) != 0x7f800000u || (u & 0x7fffffu) == 0) return NUM_RANGE; /* not a NaN */
        *out = ac_f32_from_bits(u);
        return NUM_OK;
    }
    /* Check the grammar ourselves: strtof alone would accept spaces,
       "infinity", "nan(...)", a leading '+' and stop at junk. */
    size_t i = 0;
    if (s[i] == '-') i++;
    if (i + 1 < n && s[i] == '0' && (s[i + 1] == 'x' || s[i + 1] == 'X')) {
        i += 2;
        size_t d0 = i;
        while (i < n && is_hex(s[i])) i++;
        if (i == d0) return NUM_SYNTAX;
        if (i < n && s[i] == '.') {
            i++;
            while (i < n && is_hex(s[i])) i++;
        }
        if (i == n || (s[i] != 'p' && s[i] != 'P')) return NUM_SYNTAX;
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-')) i++;
        size_t e0 = i;
        while (i < n && is_digit(s[i])) i++;
        if (i == e0 || i != n) return NUM_SYNTAX;
    } else {
        size_t d0 = i;
        while (i < n && is_digit(s[i])) i++;
        if (i == d0) return NUM_SYNTAX;
        if (i < n && s[i] == '.') {
            i++;
            while (i < n && is_digit(s[i])) i++;
        }
        if (i < n && (s[i] == 'e' || s[i] == 'E')) {
            i++;
            if (i < n && (s[i] == '+' || s[i] == '-')) i++;
            size_t e0 = i;
            while (i < n && is_digit(s[i])) i++;
            if (i == e0) return NUM_SYNTAX;
        }
        if (i != n) return NUM_SYNTAX;
    }
    memcpy(buf, s, n);
    buf[n] = '\0';
    errno = 0;
    char *end = NULL;
    float v = strtof(buf, &end);
    if (end != buf + n) return NUM_SYNTAX;
    if (errno == ERANGE && (v > 1.0f || v < -1.0f)) return NUM_RANGE; /* overflow; underflow rounds */
    *out = v;
    return NUM_OK;
}

/* ---------------------------------------------------------------------------
 * Parser
 * ------------------------------------------------------------------------- */
typedef struct pstate {
    ac_error *err;
    int lineno;
    int line_of[K_COUNT];       /* first line of each key, 0 = not seen */
    int64_t scalar[K_COUNT];    /* integer-valued keys */
    uint64_t seed;
    float scale, mask_density;
    int scale_given;
    ivec seqlen_q, seqlen_k, table, slots;
    float softcap;
    float *alibi, *sinks;        /* [n_alibi], [n_sinks]: the per-head feature lists */
    int32_t n_alibi, n_sinks;
    float *k_scales, *v_scales;  /* FP8 KV scales: [n_k_scales], [n_v_scales] */
    int32_t n_k_scales, n_v_scales;
    int32_t table_rows, row_len; /* rows seen; entries per row (all rows alike) */
    sbuf note;
    int notes;
} pstate;

#define PFAIL(ps, ...) ac_fail((ps)->err, AC_ERR_PARSE, __VA_ARGS__)

static ac_status num_fail(pstate *ps, key k, const char *s, size_t n, num_res r, int64_t lo, int64_t hi)
{
    char ex[32];
    excerpt(s, n, ex);
    switch (r) {
    case NUM_NONCANON:
        return PFAIL(ps, "line %d: key '%s': '%s' is not a canonical decimal (no sign on 0, no leading zeros)",
                     ps->lineno, key_names[k], ex);
    case NUM_RANGE:
        return PFAIL(ps, "line %d: key '%s': '%s' is out of range [%lld, %lld]", ps->lineno, key_names[k], ex,
                     (long long)lo, (long long)hi);
    default:
        return PFAIL(ps, "line %d: key '%s': '%s' is not a decimal integer", ps->lineno, key_names[k], ex);
    }
}

/* Parse the whole value as one integer in [lo, hi]. */
static ac_status get_int(pstate *ps, key k, const char *v, size_t n, int64_t lo, int64_t hi)
{
    int64_t x;
    num_res r = parse_i64(v, n, lo, hi, &x);
    if (r) return num_fail(ps, k, v, n, r, lo, hi);
    ps->scalar[k] = x;
    return AC_OK;
}

/* Value token by token (split on single spaces), each an integer in [lo, hi],
   appended to `dst` while it holds fewer than `max` values. */
static ac_status get_list(pstate *ps, key k, const char *v, size_t n, int has_space, int64_t lo, int64_t hi,
                          ivec *dst, size_t max)
{
    if (has_space && n == 0)
        return PFAIL(ps, "line %d: key '%s': trailing space after the key", ps->lineno, key_names[k]);
    size_t i = 0;
    while (i < n) {
        const char *sp = memchr(v + i, ' ', n - i);
        size_t tn = sp ? (size_t)(sp - (v + i)) : n - i;
        if (tn == 0)
            return PFAIL(ps, "line %d: key '%s': empty value at byte %zu (two spaces, or a trailing space)",
                         ps->lineno, key_names[k], i);
        if (sp && (size_t)(sp - v) + 1 == n)
            return PFAIL(ps, "line %d: key '%s': trailing space", ps->lineno, key_names[k]);
        int64_t x;
        num_res r = parse_i64(v + i, tn, lo, hi, &x);
        if (r) return num_fail(ps, k, v + i, tn, r, lo, hi);
        if (dst->n >= max)
            return PFAIL(ps, "line %d: key '%s': more than %zu values", ps->lineno, key_names[k], max);
        if (iv_push(dst, x)) return ac_fail(ps->err, AC_ERR_NOMEM, "line %d: key '%s': out of memory", ps->lineno,
                                            key_names[k]);
        i += tn + (sp ? 1 : 0);
    }
    return AC_OK;
}

/* An enum named by a short word: copy to a terminated buffer, then look up. */
static ac_status get_enum(pstate *ps, key k, const char *v, size_t n, int (*lookup)(const char *, int *),
                          const char *choices)
{
    char word[24], ex[32];
    int x = -1;
    if (n > 0 && n < sizeof word) {
        memcpy(word, v, n);
        word[n] = '\0';
        if (lookup(word, &x) != 0) x = -1;
    }
    if (x < 0)
        return PFAIL(ps, "line %d: key '%s': unknown value '%s' (one of: %s)", ps->lineno, key_names[k],
                     excerpt(v, n, ex), choices);
    ps->scalar[k] = x;
    return AC_OK;
}
/* Adapters from the typed ac_*_parse to one signature. */
static int lk_op(const char *s, int *o) { ac_op x; int r = ac_op_parse(s, &x); *o = (int)x; return r; }
static int lk_dtype(const char *s, int *o) { ac_dtype x; int r = ac_dtype_parse(s, &x); *o = (int)x; return r; }
static int lk_causal(const char *s, int *o) { ac_causal x; int r = ac_causal_parse(s, &x); *o = (int)x; return r; }
static int lk_mask(const char *s, int *o) { ac_mask_kind x; int r = ac_mask_parse(s, &x); *o = (int)x; return r; }
static int lk_dist(const char *s, int *o) { ac_dist x; int r = ac_dist_parse(s, &x); *o = (int)x; return r; }
static int lk_kv_format(const char *s, int *o)
{
    ac_kv_format x;
    int r = ac_kv_format_parse(s, &x);
    *o = (int)x;
    return r;
}

static ac_status get_float(pstate *ps, key k, const char *v, size_t n, float *out)
{
    char ex[32];
    num_res r = parse_float(v, n, out);
    if (r == NUM_RANGE)
        return PFAIL(ps, "line %d: key '%s': '%s' is out of the float range (or not a NaN pattern)", ps->lineno,
                     key_names[k], excerpt(v, n, ex));
    if (r)
        return PFAIL(ps, "line %d: key '%s': '%s' is not a float (hex float like 0x1.8p-1, decimal, inf, "
                         "nan:0x7fc00000)", ps->lineno, key_names[k], excerpt(v, n, ex));
    return AC_OK;
}

static ac_status parse_expect(pstate *ps, const char *v, size_t n)
{
    char ex[32];
    if (n == 2 && memcmp(v, "ok", 2) == 0) {
        ps->scalar[K_EXPECT] = AC_OK;
        return AC_OK;
    }
    if (n > 6 && memcmp(v, "error ", 6) == 0) {
        const char *name = v + 6;
        size_t nn = n - 6;
        for (int s = 1; s < AC_STATUS_COUNT; s++) {
            const char *sn = ac_status_name((ac_status)s);
            if (strlen(sn) == nn && memcmp(sn, name, nn) == 0) {
                ps->scalar[K_EXPECT] = s;
                return AC_OK;
            }
        }
        return PFAIL(ps, "line %d: key 'expect': unknown error name '%s' (e.g. AC_ERR_BLOCK_TABLE)", ps->lineno,
                     excerpt(name, nn, ex));
    }
    return PFAIL(ps, "line %d: key 'expect': '%s' must be 'ok' or 'error AC_ERR_<NAME>'", ps->lineno,
                 excerpt(v, n, ex));
}

static ac_status parse_special(pstate *ps, const char *v, size_t n)
{
    char ex[32];
    if (n == 4 && memcmp(v, "none", 4) == 0) {
        ps->scalar[K_SPECIAL] = 0;
        return AC_OK;
    }
    uint32_t bits = 0;
    size_t i = 0;
    if (n == 0) return PFAIL(ps, "line %d: key 'special': empty value (write 'none')", ps->lineno);
    while (i < n) {
        const char *sp = memchr(v + i, ' ', n - i);
        size_t tn = sp ? (size_t)(sp - (v + i)) : n - i;
        if (tn == 0 || (sp && (size_t)(sp - v) + 1 == n))
            return PFAIL(ps, "line %d: key 'special': empty flag (two spaces, or a trailing space)", ps->lineno);
        int found = -1;
        for (int f = 0; f < N_SPECIAL; f++)
            if (strlen(special_names[f].name) == tn && memcmp(special_names[f].name, v + i, tn) == 0) found = f;
        if (found < 0)
            return PFAIL(ps, "line %d: key 'special': unknown flag '%s' (nan_slots, inf_slots, garbage_table, "
                             "nan_partials, sparse, or none)", ps->lineno, excerpt(v + i, tn, ex));
        if (bits & special_names[found].bit)
            return PFAIL(ps, "line %d: key 'special': flag '%s' given twice", ps->lineno, special_names[found].name);
        bits |= special_names[found].bit;
        i += tn + (sp ? 1 : 0);
    }
    ps->scalar[K_SPECIAL] = bits;
    return AC_OK;
}

/* "block_table <row>: e e e": rows in order 0, 1, ..., all of one length. */
static ac_status parse_table_row(pstate *ps, const char *v, size_t n)
{
    char ex[32];
    const char *colon = memchr(v, ':', n);
    if (!colon)
        return PFAIL(ps, "line %d: key 'block_table': expected '<row>: <entries>' but got '%s'", ps->lineno,
                     excerpt(v, n, ex));
    int64_t row;
    size_t rn = (size_t)(colon - v);
    num_res r = parse_i64(v, rn, 0, AC_MAX_BATCH - 1, &row);
    if (r) return num_fail(ps, K_BLOCK_TABLE, v, rn, r, 0, AC_MAX_BATCH - 1);
    if (row != ps->table_rows)
        return PFAIL(ps, "line %d: key 'block_table': row %lld out of order (expected row %d)", ps->lineno,
                     (long long)row, ps->table_rows);
    const char *rest = colon + 1;
    size_t restn = n - rn - 1;
    size_t before = ps->table.n;
    if (restn > 0) {
        if (rest[0] != ' ')
            return PFAIL(ps, "line %d: key 'block_table': expected a space after '%lld:'", ps->lineno,
                         (long long)row);
        rest++;
        restn--;
        ac_status st = get_list(ps, K_BLOCK_TABLE, rest, restn, 0, INT32_MIN, INT32_MAX, &ps->table,
                                AC_CASEFILE_MAX_ENTRIES);
        if (st) return st;
        if (restn == 0) return PFAIL(ps, "line %d: key 'block_table': trailing space", ps->lineno);
    }
    int64_t len = (int64_t)(ps->table.n - before);
    if (ps->table_rows > 0 && len != ps->row_len)
        return PFAIL(ps, "line %d: key 'block_table': row %lld has %lld entries, row 0 has %d", ps->lineno,
                     (long long)row, (long long)len, ps->row_len);
    ps->row_len = (int32_t)len;
    ps->table_rows++;
    return AC_OK;
}

static ac_status parse_note(pstate *ps, const char *v, size_t n)
{
    if (ps->notes > 0) sb_put(&ps->note, "\n", 1);
    sb_put(&ps->note, v, n);
    ps->notes++;
    if (ps->note.failed) return ac_fail(ps->err, AC_ERR_NOMEM, "line %d: key 'note': out of memory", ps->lineno);
    return AC_OK;
}


/* "x0,x1,...": one float per query head, comma separated (no spaces), read
   into a fresh array of at most AC_MAX_HEADS entries. `allow_neg_inf`: -inf
   is a value (a sink that is off for its head); NaN and +inf never are. */
static ac_status get_head_floats(pstate *ps, key k, const char *v, size_t n, int allow_neg_inf, float **dst,
                                 int32_t *count)
{
    char ex[32];
    if (n == 0) return PFAIL(ps, "line %d: key '%s': empty list (leave the key out for none)", ps->lineno, key_names[k]);
    float *a = malloc(sizeof(float) * AC_MAX_HEADS);
    if (!a) return ac_fail(ps->err, AC_ERR_NOMEM, "line %d: key '%s': out of memory", ps->lineno, key_names[k]);
    int32_t m = 0;
    size_t i = 0;
    for (;;) {
        const char *comma = memchr(v + i, ',', n - i);
        size_t tn = comma ? (size_t)(comma - (v + i)) : n - i;
        ac_status st = AC_OK;
        if (m == AC_MAX_HEADS)
            st = PFAIL(ps, "line %d: key '%s': more than %d entries", ps->lineno, key_names[k], AC_MAX_HEADS);
        else if (tn == 0)
            st = PFAIL(ps, "line %d: key '%s': entry %d is empty (two commas, or one at an end)", ps->lineno,
                       key_names[k], m);
        else if (parse_float(v + i, tn, &a[m]) != NUM_OK)
            st = PFAIL(ps, "line %d: key '%s': entry %d '%s' is not a float (hex float like 0x1p-3, decimal%s)",
                       ps->lineno, key_names[k], m, excerpt(v + i, tn, ex), allow_neg_inf ? ", -inf" : "");
        else if (isnan(a[m]) || a[m] == INFINITY || (a[m] == -INFINITY && !allow_neg_inf))
            st = PFAIL(ps, "line %d: key '%s': entry %d is %s: must be finite%s", ps->lineno, key_names[k], m,
                       excerpt(v + i, tn, ex), allow_neg_inf ? ", or -inf for none" : "");
        if (st) {
            free(a);
            return st;
        }
        m++;
        if (!comma) break;
        i += tn + 1;
    }
    *dst = a;
    *count = m;
    return AC_OK;
}

static ac_status parse_line(pstate *ps, ac_casefile *out, const char *s, size_t n)
{
    char ex[32];
    const char *sp = memchr(s, ' ', n);
    size_t kn = sp ? (size_t)(sp - s) : n;
    const char *v = sp ? sp + 1 : s + n;
    size_t vn = sp ? n - kn - 1 : 0;
    int k = -1;
    for (int i = 0; i < K_COUNT; i++)
        if (strlen(key_names[i]) == kn && memcmp(key_names[i], s, kn) == 0) k = i;
    if (k < 0) {
        if (kn == 0) return PFAIL(ps, "line %d: leading space", ps->lineno);
        return PFAIL(ps, "line %d: unknown key '%s'", ps->lineno, excerpt(s, kn, ex));
    }
    if (ps->line_of[k] && !key_repeats((key)k))
        return PFAIL(ps, "line %d: key '%s': duplicate (first given on line %d)", ps->lineno, key_names[k],
                     ps->line_of[k]);
    if (!ps->line_of[k]) ps->line_of[k] = ps->lineno;

    switch ((key)k) {
    case K_TITLE:
        if (vn >= sizeof out->title)
            return PFAIL(ps, "line %d: key 'title': %zu bytes, at most %zu", ps->lineno, vn, sizeof out->title - 1);
        memcpy(out->title, v, vn);
        out->title[vn] = '\0';
        return AC_OK;
    case K_NOTE: return parse_note(ps, v, vn);
    case K_EXPECT: return parse_expect(ps, v, vn);
    case K_OP: return get_enum(ps, K_OP, v, vn, lk_op, "prefill, decode, combine, store");
    case K_DTYPE: return get_enum(ps, K_DTYPE, v, vn, lk_dtype, "bf16, fp16");
    case K_CAUSAL: return get_enum(ps, K_CAUSAL, v, vn, lk_causal, "none, TL, BR");
    case K_MASK: return get_enum(ps, K_MASK, v, vn, lk_mask, "none, bool, add");
    case K_DIST: return get_enum(ps, K_DIST, v, vn, lk_dist, "uniform, normal, large, needle, poscode");
    case K_BATCH: return get_int(ps, K_BATCH, v, vn, 0, AC_MAX_BATCH);
    case K_HEADS_Q: return get_int(ps, K_HEADS_Q, v, vn, 0, AC_MAX_HEADS);
    case K_HEADS_KV: return get_int(ps, K_HEADS_KV, v, vn, 0, AC_MAX_HEADS);
    case K_HEAD_DIM: return get_int(ps, K_HEAD_DIM, v, vn, 0, AC_MAX_HEAD_DIM);
    case K_NUM_SPLITS: return get_int(ps, K_NUM_SPLITS, v, vn, 0, AC_MAX_SPLITS);
    case K_MAX_BLOCKS: return get_int(ps, K_MAX_BLOCKS, v, vn, 0, AC_CASEFILE_MAX_ENTRIES);
    case K_NUM_TOKENS: return get_int(ps, K_NUM_TOKENS, v, vn, 0, AC_CASEFILE_MAX_ENTRIES);
    /* Not sizes of anything the parser allocates: any int32, so a file can
       hold e.g. block_size 0 together with `expect error AC_ERR_SHAPE`. */
    case K_BLOCK_SIZE: return get_int(ps, K_BLOCK_SIZE, v, vn, INT32_MIN, INT32_MAX);
    case K_NUM_BLOCKS: return get_int(ps, K_NUM_BLOCKS, v, vn, INT32_MIN, INT32_MAX);
    case K_MASK_PER_HEAD:
    case K_PAGED:
    case K_SLOT_I64:
        if (vn == 1 && (v[0] == '0' || v[0] == '1')) {
            ps->scalar[k] = v[0] - '0';
            return AC_OK;
        }
        return PFAIL(ps, "line %d: key '%s': '%s' must be 0 or 1", ps->lineno, key_names[k], excerpt(v, vn, ex));
    case K_SEQLEN_Q: return get_list(ps, K_SEQLEN_Q, v, vn, sp != NULL, INT32_MIN, INT32_MAX, &ps->seqlen_q, AC_MAX_BATCH);
    case K_SEQLEN_K: return get_list(ps, K_SEQLEN_K, v, vn, sp != NULL, INT32_MIN, INT32_MAX, &ps->seqlen_k, AC_MAX_BATCH);
    case K_SLOT_MAPPING:
        return get_list(ps, K_SLOT_MAPPING, v, vn, sp != NULL, INT64_MIN, INT64_MAX, &ps->slots,
                        AC_CASEFILE_MAX_ENTRIES);
    case K_BLOCK_TABLE: return parse_table_row(ps, v, vn);
    case K_SCALE:
        if (vn == 7 && memcmp(v, "default", 7) == 0) {
            ps->scale_given = 0;
            ps->scale = 0.0f;
            return AC_OK;
        }
        ps->scale_given = 1;
        return get_float(ps, K_SCALE, v, vn, &ps->scale);
    case K_MASK_DENSITY: return get_float(ps, K_MASK_DENSITY, v, vn, &ps->mask_density);
    /* The features (docs/CONTRACT.md): each key only when on, so its value
       must say "on": -1 (unbounded) is a legal window side, -2 is not. */
    case K_WINDOW_LEFT: return get_int(ps, K_WINDOW_LEFT, v, vn, -1, INT32_MAX);
    case K_WINDOW_RIGHT: return get_int(ps, K_WINDOW_RIGHT, v, vn, -1, INT32_MAX);
    case K_SOFTCAP: {
        ac_status st = get_float(ps, K_SOFTCAP, v, vn, &ps->softcap);
        if (!st && !(isfinite(ps->softcap) && ps->softcap > 0.0f))
            return PFAIL(ps, "line %d: key 'softcap': '%s' must be finite and > 0 (leave the key out for none)",
                         ps->lineno, excerpt(v, vn, ex));
        return st;
    }
    case K_ALIBI: return get_head_floats(ps, K_ALIBI, v, vn, 0, &ps->alibi, &ps->n_alibi);
    case K_SINKS: return get_head_floats(ps, K_SINKS, v, vn, 1, &ps->sinks, &ps->n_sinks);
    case K_HEAD_DIM_V: return get_int(ps, K_HEAD_DIM_V, v, vn, 0, AC_MAX_HEAD_DIM);
    case K_KV_FORMAT: return get_enum(ps, K_KV_FORMAT, v, vn, lk_kv_format, "dtype, e4m3, e5m2");
    case K_K_SCALES: return get_head_floats(ps, K_K_SCALES, v, vn, 0, &ps->k_scales, &ps->n_k_scales);
    case K_V_SCALES: return get_head_floats(ps, K_V_SCALES, v, vn, 0, &ps->v_scales, &ps->n_v_scales);
    case K_SPECIAL: return parse_special(ps, v, vn);
    case K_SEED: {
        uint64_t x;
        num_res r = parse_u64(v, vn, &x);
        if (r == NUM_RANGE)
            return PFAIL(ps, "line %d: key 'seed': '%s' is out of range [0, 2^64 - 1]", ps->lineno, excerpt(v, vn, ex));
        if (r) return num_fail(ps, K_SEED, v, vn, r, 0, 0);
        ps->seed = x;
        return AC_OK;
    }
    case K_COUNT: break;
    }
    return PFAIL(ps, "line %d: internal error", ps->lineno);
}

static ac_status parse_version(pstate *ps, const char *s, size_t n)
{
    static const char magic[] = "attncheck-case ";
    const size_t mn = sizeof magic - 1;
    char ex[32];
    if (n < mn || memcmp(s, magic, mn) != 0)
        return PFAIL(ps, "line 1: not a case file: '%s' where 'attncheck-case %d' was expected", excerpt(s, n, ex),
                     AC_CASEFILE_VERSION);
    int64_t version;
    num_res r = parse_i64(s + mn, n - mn, 1, INT32_MAX, &version);
    if (r)
        return PFAIL(ps, "line 1: version '%s' is not a positive decimal integer", excerpt(s + mn, n - mn, ex));
    if (version > AC_CASEFILE_VERSION)
        return PFAIL(ps, "line 1: version %lld is newer than this parser reads (%d); update attncheck",
                     (long long)version, AC_CASEFILE_VERSION);
    return AC_OK;
}

/* Cross-key checks once every line is read; messages name the key's line. */
static ac_status finish(pstate *ps, ac_casefile *out)
{
    static const key required[] = {K_TITLE, K_EXPECT, K_OP, K_DTYPE, K_BATCH, K_SEQLEN_Q, K_SEQLEN_K,
                                   K_HEADS_Q, K_HEADS_KV, K_HEAD_DIM, K_SCALE, K_CAUSAL, K_MASK,
                                   K_MASK_PER_HEAD, K_MASK_DENSITY, K_PAGED, K_BLOCK_SIZE, K_NUM_BLOCKS,
                                   K_MAX_BLOCKS, K_NUM_TOKENS, K_SLOT_MAPPING, K_SLOT_I64, K_NUM_SPLITS,
                                   K_DIST, K_SPECIAL, K_SEED};
    for (size_t i = 0; i < sizeof required / sizeof required[0]; i++)
        if (!ps->line_of[required[i]])
            return PFAIL(ps, "line %d (end of file): missing key '%s'", ps->lineno, key_names[required[i]]);
    int64_t batch = ps->scalar[K_BATCH];
    if ((int64_t)ps->seqlen_q.n != batch)
        return PFAIL(ps, "line %d: key 'seqlen_q': %zu values, batch = %lld needs %lld", ps->line_of[K_SEQLEN_Q],
                     ps->seqlen_q.n, (long long)batch, (long long)batch);
    if ((int64_t)ps->seqlen_k.n != batch)
        return PFAIL(ps, "line %d: key 'seqlen_k': %zu values, batch = %lld needs %lld", ps->line_of[K_SEQLEN_K],
                     ps->seqlen_k.n, (long long)batch, (long long)batch);
    int64_t mbps = ps->scalar[K_MAX_BLOCKS];
    int64_t entries = batch * mbps; /* both bounded: no overflow */
    if (entries > AC_CASEFILE_MAX_ENTRIES)
        return PFAIL(ps, "line %d: key 'max_blocks_per_seq': batch * max_blocks_per_seq = %lld exceeds %d entries",
                     ps->line_of[K_MAX_BLOCKS], (long long)entries, AC_CASEFILE_MAX_ENTRIES);
    if (entries == 0 && ps->table_rows > 0)
        return PFAIL(ps, "line %d: key 'block_table': rows given but batch * max_blocks_per_seq = 0",
                     ps->line_of[K_BLOCK_TABLE]);
    if (entries > 0) {
        if (ps->table_rows != batch)
            return PFAIL(ps, "line %d: key 'block_table': %d rows, batch = %lld needs %lld",
                         ps->line_of[K_BLOCK_TABLE] ? ps->line_of[K_BLOCK_TABLE] : ps->lineno, ps->table_rows,
                         (long long)batch, (long long)batch);
        if (ps->row_len != mbps)
            return PFAIL(ps, "line %d: key 'block_table': rows of %d entries, max_blocks_per_seq = %lld",
                         ps->line_of[K_BLOCK_TABLE], ps->row_len, (long long)mbps);
    }
    if ((int64_t)ps->slots.n != ps->scalar[K_NUM_TOKENS])
        return PFAIL(ps, "line %d: key 'slot_mapping': %zu values, num_tokens = %lld", ps->line_of[K_SLOT_MAPPING],
                     ps->slots.n, (long long)ps->scalar[K_NUM_TOKENS]);
    if (ps->line_of[K_ALIBI] && ps->n_alibi != ps->scalar[K_HEADS_Q])
        return PFAIL(ps, "line %d: key 'alibi_slopes': %d entries, heads_q = %lld needs one per query head",
                     ps->line_of[K_ALIBI], ps->n_alibi, (long long)ps->scalar[K_HEADS_Q]);
    if (ps->line_of[K_SINKS] && ps->n_sinks != ps->scalar[K_HEADS_Q])
        return PFAIL(ps, "line %d: key 'sinks': %d entries, heads_q = %lld needs one per query head",
                     ps->line_of[K_SINKS], ps->n_sinks, (long long)ps->scalar[K_HEADS_Q]);
    if (!ps->line_of[K_K_SCALES] != !ps->line_of[K_V_SCALES])
        return PFAIL(ps, "line %d: key '%s' without '%s': an FP8 cache's scales come in pairs",
                     ps->line_of[K_K_SCALES] ? ps->line_of[K_K_SCALES] : ps->line_of[K_V_SCALES],
                     ps->line_of[K_K_SCALES] ? "k_scales" : "v_scales", ps->line_of[K_K_SCALES] ? "v_scales" : "k_scales");
    if (ps->line_of[K_K_SCALES] && ps->n_k_scales != ps->n_v_scales)
        return PFAIL(ps, "line %d: key 'v_scales': %d entries, k_scales has %d", ps->line_of[K_V_SCALES],
                     ps->n_v_scales, ps->n_k_scales);
    if (ps->line_of[K_WINDOW_LEFT] && ps->line_of[K_WINDOW_RIGHT] && ps->scalar[K_WINDOW_LEFT] == -1 &&
        ps->scalar[K_WINDOW_RIGHT] == -1)
        return PFAIL(ps, "line %d: key 'window_right': window -1,-1 is no window (leave both keys out)",
                     ps->line_of[K_WINDOW_RIGHT]);

    /* Build the case. */
    ac_case *c = &out->c;
    ac_error e;
    c->op = (ac_op)ps->scalar[K_OP];
    c->dtype = (ac_dtype)ps->scalar[K_DTYPE];
    if (ac_case_set_batch(c, (int32_t)batch, &e)) return ac_fail(ps->err, e.code, "%s", e.msg);
    for (int64_t b = 0; b < batch; b++) {
        c->seqlen_q[b] = (int32_t)ps->seqlen_q.v[b];
        c->seqlen_k[b] = (int32_t)ps->seqlen_k.v[b];
    }
    c->heads_q = (int32_t)ps->scalar[K_HEADS_Q];
    c->heads_kv = (int32_t)ps->scalar[K_HEADS_KV];
    c->head_dim = (int32_t)ps->scalar[K_HEAD_DIM];
    c->scale_given = ps->scale_given;
    c->scale = ps->scale;
    c->causal = (ac_causal)ps->scalar[K_CAUSAL];
    c->mask = (ac_mask_kind)ps->scalar[K_MASK];
    c->mask_per_head = (int)ps->scalar[K_MASK_PER_HEAD];
    c->mask_density = ps->mask_density;
    c->paged = (int)ps->scalar[K_PAGED];
    c->block_size = (int32_t)ps->scalar[K_BLOCK_SIZE];
    c->num_blocks = (int32_t)ps->scalar[K_NUM_BLOCKS];
    c->max_blocks_per_seq = (int32_t)mbps;
    if (entries > 0) {
        c->block_table = malloc(sizeof(int32_t) * (size_t)entries);
        if (!c->block_table) return ac_fail(ps->err, AC_ERR_NOMEM, "block_table: out of memory");
        for (int64_t i = 0; i < entries; i++) c->block_table[i] = (int32_t)ps->table.v[i];
    }
    c->num_tokens = (int32_t)ps->scalar[K_NUM_TOKENS];
    if (c->num_tokens > 0) {
        c->slot_mapping = malloc(sizeof(int64_t) * (size_t)c->num_tokens);
        if (!c->slot_mapping) return ac_fail(ps->err, AC_ERR_NOMEM, "slot_mapping: out of memory");
        memcpy(c->slot_mapping, ps->slots.v, sizeof(int64_t) * (size_t)c->num_tokens);
    }
    c->slot_mapping_i64 = (int)ps->scalar[K_SLOT_I64];
    c->num_splits = (int32_t)ps->scalar[K_NUM_SPLITS];
    c->window_left = ps->line_of[K_WINDOW_LEFT] ? (int32_t)ps->scalar[K_WINDOW_LEFT] : -1;
    c->window_right = ps->line_of[K_WINDOW_RIGHT] ? (int32_t)ps->scalar[K_WINDOW_RIGHT] : -1;
    c->softcap = ps->line_of[K_SOFTCAP] ? ps->softcap : 0.0f;
    c->alibi_slopes = ps->alibi; /* ownership moves to the case */
    c->n_alibi = ps->n_alibi;
    ps->alibi = NULL;
    c->sinks = ps->sinks;
    c->n_sinks = ps->n_sinks;
    ps->sinks = NULL;
    c->head_dim_v = ps->line_of[K_HEAD_DIM_V] ? (int32_t)ps->scalar[K_HEAD_DIM_V] : 0;
    c->kv_format = ps->line_of[K_KV_FORMAT] ? (ac_kv_format)ps->scalar[K_KV_FORMAT] : AC_KV_AS_DTYPE;
    c->k_scales = ps->k_scales;
    c->v_scales = ps->v_scales;
    c->n_kv_scales = ps->n_k_scales;
    ps->k_scales = ps->v_scales = NULL;
    c->dist = (ac_dist)ps->scalar[K_DIST];
    c->special = (uint32_t)ps->scalar[K_SPECIAL];
    c->seed = ps->seed;

    out->expect_code = (ac_status)ps->scalar[K_EXPECT];
    out->expect_error = out->expect_code != AC_OK;
    if (ps->notes > 0) {
        out->note = ps->note.p; /* ownership moves to out */
        ps->note.p = NULL;
    }
    return AC_OK;
}

ac_status ac_casefile_parse(const char *text, size_t len, ac_casefile *out, ac_error *err)
{
    if (!out) return ac_fail(err, AC_ERR_NULL, "ac_casefile_parse: out is NULL");
    ac_casefile_init(out);
    if (!text && len > 0) return ac_fail(err, AC_ERR_NULL, "ac_casefile_parse: text is NULL");
    pstate ps;
    memset(&ps, 0, sizeof ps);
    ps.err = err;
    ac_status st = AC_OK;
    size_t pos = 0;
    if (len == 0) {
        st = ac_fail(err, AC_ERR_PARSE, "line 1: empty file: 'attncheck-case %d' expected", AC_CASEFILE_VERSION);
        goto done;
    }
    while (pos < len) {
        ps.lineno++;
        const char *s = text + pos;
        const char *nl = memchr(s, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - s) : len - pos;
        if (memchr(s, '\0', n)) {
            st = PFAIL(&ps, "line %d: NUL byte at column %zu", ps.lineno,
                       (size_t)((const char *)memchr(s, '\0', n) - s) + 1);
            goto done;
        }
        if (memchr(s, '\r', n)) {
            st = PFAIL(&ps, "line %d: carriage return: CRLF line ends are not accepted (convert with dos2unix)",
                       ps.lineno);
            goto done;
        }
        if (!nl) {
            char ex[32];
            const char *sp = memchr(s, ' ', n);
            st = PFAIL(&ps, "line %d: key '%s': file truncated (no newline at the end of the last line)", ps.lineno,
                       excerpt(s, sp ? (size_t)(sp - s) : n, ex));
            goto done;
        }
        if (ps.lineno == 1) st = parse_version(&ps, s, n);
        else if (n == 0 || s[0] == '#') st = AC_OK; /* blank and comment lines are ignored */
        else st = parse_line(&ps, out, s, n);
        if (st) goto done;
        pos += n + 1;
    }
    st = finish(&ps, out);
done:
    free(ps.seqlen_q.v);
    free(ps.seqlen_k.v);
    free(ps.table.v);
    free(ps.slots.v);
    free(ps.alibi);
    free(ps.sinks);
    free(ps.k_scales);
    free(ps.v_scales);
    free(ps.note.p);
    if (st) ac_casefile_free(out);
    return st;
}

/* ---------------------------------------------------------------------------
 * Writer
 * ------------------------------------------------------------------------- */
static ac_status check_flag(const char *name, int v, ac_error *err)
{
    if (v != 0 && v != 1) return ac_fail(err, AC_ERR_SHAPE, "%s = %d: must be 0 or 1 in a case file", name, v);
    return AC_OK;
}

static ac_status check_writable(const ac_casefile *f, ac_error *err)
{
    const ac_case *c = &f->c;
    ac_status st = ac_case_check_enums(c, err);
    if (st) return st;
    if (c->special & ~special_known_bits())
        return ac_fail(err, AC_ERR_UNSUPPORTED, "special = 0x%x: unknown flag bits 0x%x", c->special,
                       c->special & ~special_known_bits());
    if (f->expect_error ? (f->expect_code <= AC_OK || f->expect_code >= AC_STATUS_COUNT) : f->expect_code != AC_OK)
        return ac_fail(err, AC_ERR_SHAPE, "expect_error = %d with expect_code = %d: inconsistent", f->expect_error,
                       (int)f->expect_code);
    if ((st = check_flag("expect_error", f->expect_error, err)) || (st = check_flag("scale_given", c->scale_given, err)) ||
        (st = check_flag("mask_per_head", c->mask_per_head, err)) || (st = check_flag("paged", c->paged, err)) ||
        (st = check_flag("slot_mapping_i64", c->slot_mapping_i64, err)))
        return st;
    struct { const char *name; int32_t v, lo, hi; } sizes[] = {
        {"batch", c->batch, 0, AC_MAX_BATCH},
        {"heads_q", c->heads_q, 0, AC_MAX_HEADS},
        {"heads_kv", c->heads_kv, 0, AC_MAX_HEADS},
        {"head_dim", c->head_dim, 0, AC_MAX_HEAD_DIM},
        {"num_splits", c->num_splits, 0, AC_MAX_SPLITS},
        {"max_blocks_per_seq", c->max_blocks_per_seq, 0, AC_CASEFILE_MAX_ENTRIES},
        {"num_tokens", c->num_tokens, 0, AC_CASEFILE_MAX_ENTRIES},
    };
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        if (sizes[i].v < sizes[i].lo || sizes[i].v > sizes[i].hi)
            return ac_fail(err, AC_ERR_SHAPE, "%s = %d: a case file holds [%d, %d]", sizes[i].name, sizes[i].v,
                           sizes[i].lo, sizes[i].hi);
    int64_t entries = (int64_t)c->batch * c->max_blocks_per_seq;
    if (entries > AC_CASEFILE_MAX_ENTRIES)
        return ac_fail(err, AC_ERR_SHAPE, "batch * max_blocks_per_seq = %lld: a case file holds at most %d entries",
                       (long long)entries, AC_CASEFILE_MAX_ENTRIES);
    if (c->batch > 0 && (!c->seqlen_q || !c->seqlen_k))
        return ac_fail(err, AC_ERR_NULL, "seqlen_q / seqlen_k is NULL with batch = %d", c->batch);
    if (entries > 0 && !c->block_table)
        return ac_fail(err, AC_ERR_NULL, "block_table is NULL with batch * max_blocks_per_seq = %lld",
                       (long long)entries);
    if (c->num_tokens > 0 && !c->slot_mapping)
        return ac_fail(err, AC_ERR_NULL, "slot_mapping is NULL with num_tokens = %d", c->num_tokens);
    /* The features, as the parser reads them back (its messages, without a line). */
    if (c->window_left < -1 || c->window_right < -1)
        return ac_fail(err, AC_ERR_SHAPE, "window = %d,%d: each side must be >= -1", c->window_left, c->window_right);
    if (c->softcap != 0.0f && !(isfinite(c->softcap) && c->softcap > 0.0f))
        return ac_fail(err, AC_ERR_SHAPE, "softcap = %g: must be finite and > 0, or 0 for none", (double)c->softcap);
    const struct { const char *name; const float *v; int32_t n; int neg_inf; } lists[] = {
        {"alibi_slopes", c->alibi_slopes, c->n_alibi, 0},
        {"sinks", c->sinks, c->n_sinks, 1},
    };
    for (int l = 0; l < 2; l++) {
        if (lists[l].n == 0) continue;
        if (lists[l].n != c->heads_q || !lists[l].v)
            return ac_fail(err, AC_ERR_SHAPE, "%s: %d entries, heads_q = %d needs one per query head", lists[l].name,
                           lists[l].n, c->heads_q);
        for (int32_t h = 0; h < lists[l].n; h++) {
            float x = lists[l].v[h];
            if (isnan(x) || x == INFINITY || (x == -INFINITY && !lists[l].neg_inf))
                return ac_fail(err, AC_ERR_SHAPE, "%s[%d] = %g: must be finite%s", lists[l].name, h, (double)x,
                               lists[l].neg_inf ? ", or -inf for none" : "");
        }
    }
    if (c->head_dim_v < 0 || c->head_dim_v > AC_MAX_HEAD_DIM)
        return ac_fail(err, AC_ERR_SHAPE, "head_dim_v = %d: a case file holds [0, %d]", c->head_dim_v, AC_MAX_HEAD_DIM);
    if ((int)c->kv_format < 0 || c->kv_format >= AC_KV_FORMAT_COUNT)
        return ac_fail(err, AC_ERR_UNSUPPORTED, "kv_format = %d: unknown", (int)c->kv_format);
    if (c->n_kv_scales < 0 || c->n_kv_scales > AC_MAX_HEADS)
        return ac_fail(err, AC_ERR_SHAPE, "n_kv_scales = %d: a case file holds [0, %d]", c->n_kv_scales, AC_MAX_HEADS);
    if (c->n_kv_scales > 0 && (!c->k_scales || !c->v_scales))
        return ac_fail(err, AC_ERR_NULL, "k_scales / v_scales is NULL with n_kv_scales = %d", c->n_kv_scales);
    for (int32_t i = 0; i < c->n_kv_scales; i++)
        if (!isfinite(c->k_scales[i]) || !isfinite(c->v_scales[i]))
            return ac_fail(err, AC_ERR_SHAPE, "%s[%d] = %g: must be finite", isfinite(c->k_scales[i]) ? "v_scales" : "k_scales",
                           i, (double)(isfinite(c->k_scales[i]) ? c->v_scales[i] : c->k_scales[i]));
    size_t tn = strnlen(f->title, sizeof f->title);
    if (tn == sizeof f->title) return ac_fail(err, AC_ERR_SHAPE, "title: not NUL-terminated within 512 bytes");
    if (memchr(f->title, '\n', tn) || memchr(f->title, '\r', tn))
        return ac_fail(err, AC_ERR_SHAPE, "title: holds a line break (use the note for more lines)");
    if (f->note && strchr(f->note, '\r')) return ac_fail(err, AC_ERR_SHAPE, "note: holds a carriage return");
    return AC_OK;
}

static void put_key(sbuf *b, const char *k, const char *v)
{
    sb_str(b, k);
    if (v[0]) {
        sb_put(b, " ", 1);
        sb_str(b, v);
    }
    sb_put(b, "\n", 1);
}

static void put_i32_list(sbuf *b, const char *k, const int32_t *v, int64_t n)
{
    sb_str(b, k);
    for (int64_t i = 0; i < n; i++) sb_fmt(b, " %d", v[i]);
    sb_put(b, "\n", 1);
}

static void put_head_floats(sbuf *b, const char *k, const float *v, int32_t n)
{
    char num[32];
    if (n <= 0) return;
    sb_str(b, k);
    for (int32_t h = 0; h < n; h++) {
        format_float(v[h], num);
        sb_put(b, h ? "," : " ", 1);
        sb_str(b, num);
    }
    sb_put(b, "\n", 1);
}

ac_status ac_casefile_write(const ac_casefile *f, char **text, size_t *len, ac_error *err)
{
    if (!f || !text) return ac_fail(err, AC_ERR_NULL, "ac_casefile_write: f or text is NULL");
    *text = NULL;
    if (len) *len = 0;
    ac_status st = check_writable(f, err);
    if (st) return st;
    const ac_case *c = &f->c;
    sbuf b = {0};
    char num[32];
    sb_fmt(&b, "attncheck-case %d\n", AC_CASEFILE_VERSION);
    put_key(&b, "title", f->title);
    if (f->note && f->note[0]) {
        const char *p = f->note;
        for (;;) {
            const char *nl = strchr(p, '\n');
            size_t n = nl ? (size_t)(nl - p) : strlen(p);
            sb_str(&b, "note");
            if (n) {
                sb_put(&b, " ", 1);
                sb_put(&b, p, n);
            }
            sb_put(&b, "\n", 1);
            if (!nl) break;
            p = nl + 1;
        }
    }
    if (f->expect_error) sb_fmt(&b, "expect error %s\n", ac_status_name(f->expect_code));
    else sb_str(&b, "expect ok\n");
    put_key(&b, "op", ac_op_name(c->op));
    put_key(&b, "dtype", ac_dtype_name(c->dtype));
    sb_fmt(&b, "batch %d\n", c->batch);
    put_i32_list(&b, "seqlen_q", c->seqlen_q, c->batch);
    put_i32_list(&b, "seqlen_k", c->seqlen_k, c->batch);
    sb_fmt(&b, "heads_q %d\n", c->heads_q);
    sb_fmt(&b, "heads_kv %d\n", c->heads_kv);
    sb_fmt(&b, "head_dim %d\n", c->head_dim);
    if (c->scale_given) {
        format_float(c->scale, num);
        put_key(&b, "scale", num);
    } else {
        sb_str(&b, "scale default\n");
    }
    put_key(&b, "causal", ac_causal_name(c->causal));
    put_key(&b, "mask", ac_mask_name(c->mask));
    sb_fmt(&b, "mask_per_head %d\n", c->mask_per_head);
    format_float(c->mask_density, num);
    put_key(&b, "mask_density", num);
    sb_fmt(&b, "paged %d\n", c->paged);
    sb_fmt(&b, "block_size %d\n", c->block_size);
    sb_fmt(&b, "num_blocks %d\n", c->num_blocks);
    sb_fmt(&b, "max_blocks_per_seq %d\n", c->max_blocks_per_seq);
    if ((int64_t)c->batch * c->max_blocks_per_seq > 0)
        for (int32_t r = 0; r < c->batch; r++) {
            sb_fmt(&b, "block_table %d:", r);
            const int32_t *row = c->block_table + (int64_t)r * c->max_blocks_per_seq;
            for (int32_t i = 0; i < c->max_blocks_per_seq; i++) sb_fmt(&b, " %d", row[i]);
            sb_put(&b, "\n", 1);
        }
    sb_fmt(&b, "num_tokens %d\n", c->num_tokens);
    sb_str(&b, "slot_mapping");
    for (int32_t t = 0; t < c->num_tokens; t++) sb_fmt(&b, " %lld", (long long)c->slot_mapping[t]);
    sb_put(&b, "\n", 1);
    sb_fmt(&b, "slot_mapping_i64 %d\n", c->slot_mapping_i64);
    sb_fmt(&b, "num_splits %d\n", c->num_splits);
    /* The features: nothing when off, so a file without them is the same
       bytes it always was. A window writes both sides (-1: unbounded). */
    if (c->window_left != -1 || c->window_right != -1)
        sb_fmt(&b, "window_left %d\nwindow_right %d\n", c->window_left, c->window_right);
    if (c->softcap != 0.0f) {
        format_float(c->softcap, num);
        put_key(&b, "softcap", num);
    }
    put_head_floats(&b, "alibi_slopes", c->alibi_slopes, c->n_alibi);
    put_head_floats(&b, "sinks", c->sinks, c->n_sinks);
    /* The K/V storage (section 13): nothing when D_v = D and the cache is in the dtype. */
    if (c->head_dim_v != 0 && c->head_dim_v != c->head_dim) sb_fmt(&b, "head_dim_v %d\n", c->head_dim_v);
    if (c->kv_format != AC_KV_AS_DTYPE) put_key(&b, "kv_format", ac_kv_format_name(c->kv_format));
    put_head_floats(&b, "k_scales", c->k_scales, c->n_kv_scales);
    put_head_floats(&b, "v_scales", c->v_scales, c->n_kv_scales);
    put_key(&b, "dist", ac_dist_name(c->dist));
    if (c->special == 0) {
        sb_str(&b, "special none\n");
    } else {
        sb_str(&b, "special");
        for (int i = 0; i < N_SPECIAL; i++)
            if (c->special & special_names[i].bit) {
                sb_put(&b, " ", 1);
                sb_str(&b, special_names[i].name);
            }
        sb_put(&b, "\n", 1);
    }
    sb_fmt(&b, "seed %llu\n", (unsigned long long)c->seed);
    if (b.failed) {
        free(b.p);
        return ac_fail(err, AC_ERR_NOMEM, "ac_casefile_write: out of memory");
    }
    *text = b.p;
    if (len) *len = b.n;
    return AC_OK;
}

/* ---------------------------------------------------------------------------
 * Files
 * ------------------------------------------------------------------------- */
static void prefix_path(ac_error *err, const char *path)
{
    if (!err) return;
    char msg[sizeof err->msg];
    snprintf(msg, sizeof msg, "%.96s: %.150s", path, err->msg); /* both cut to fit 256 */
    memcpy(err->msg, msg, sizeof msg);
}

ac_status ac_casefile_load(const char *path, ac_casefile *out, ac_error *err)
{
    if (!path || !out) return ac_fail(err, AC_ERR_NULL, "ac_casefile_load: path or out is NULL");
    ac_casefile_init(out);
    uint8_t *text;
    size_t n;
    ac_status st = ac_read_file(path, AC_CASEFILE_MAX_BYTES, &text, &n, err);
    if (st) return st; /* the message names the path already */
    st = ac_casefile_parse((const char *)text, n, out, err);
    free(text);
    if (st) prefix_path(err, path);
    return st;
}

ac_status ac_casefile_save(const char *path, const ac_casefile *f, ac_error *err)
{
    if (!path || !f) return ac_fail(err, AC_ERR_NULL, "ac_casefile_save: path or f is NULL");
    char *text;
    size_t len;
    ac_status st = ac_casefile_write(f, &text, &len, err);
    if (st) {
        prefix_path(err, path);
        return st;
    }
    FILE *fp = fopen(path, "wb");
    if (!fp) {
        free(text);
        return ac_fail(err, AC_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
    }
    size_t w = fwrite(text, 1, len, fp);
    int cerr = fclose(fp);
    free(text);
    if (w != len || cerr != 0) return ac_fail(err, AC_ERR_IO, "%s: write failed", path);
    return AC_OK;
}

/* ---------------------------------------------------------------------------
 * Life cycle, equality
 * ------------------------------------------------------------------------- */
void ac_casefile_init(ac_casefile *f)
{
    memset(f, 0, sizeof *f);
    ac_case_init(&f->c);
    f->expect_code = AC_OK;
}

void ac_casefile_free(ac_casefile *f)
{
    ac_case_free(&f->c);
    free(f->note);
    ac_casefile_init(f);
}

ac_status ac_casefile_from_case(ac_casefile *f, const ac_case *c, ac_error *err)
{
    ac_casefile_init(f);
    ac_case_free(&f->c);
    ac_status st = ac_case_copy(&f->c, c, err);
    if (st) {
        ac_casefile_init(f);
        return st;
    }
    ac_case_line(c, f->title, sizeof f->title);
    return AC_OK;
}

ac_status ac_casefile_set_note(ac_casefile *f, const char *note, ac_error *err)
{
    free(f->note);
    f->note = NULL;
    if (!note || !note[0]) return AC_OK;
    size_t n = strlen(note);
    f->note = malloc(n + 1);
    if (!f->note) return ac_fail(err, AC_ERR_NOMEM, "note: out of memory");
    memcpy(f->note, note, n + 1);
    return AC_OK;
}

static int same_i32(const int32_t *a, const int32_t *b, int64_t n)
{
    if (n <= 0) return 1;
    if (!a || !b) return a == b;
    return memcmp(a, b, sizeof(int32_t) * (size_t)n) == 0;
}

/* Bit patterns compared, so -0 != +0 and NaN payloads count. */
static int same_f32(const float *a, int32_t na, const float *b, int32_t nb)
{
    if (na != nb) return 0;
    for (int32_t i = 0; i < na; i++)
        if (ac_f32_bits(a[i]) != ac_f32_bits(b[i])) return 0;
    return 1;
}

int ac_casefile_equal(const ac_casefile *fa, const ac_casefile *fb)
{
    const ac_case *a = &fa->c, *b = &fb->c;
    if (a->op != b->op || a->dtype != b->dtype || a->batch != b->batch || a->heads_q != b->heads_q ||
        a->heads_kv != b->heads_kv || a->head_dim != b->head_dim || a->scale_given != b->scale_given ||
        a->causal != b->causal || a->mask != b->mask || a->mask_per_head != b->mask_per_head ||
        ac_f32_bits(a->mask_density) != ac_f32_bits(b->mask_density) || a->paged != b->paged ||
        a->block_size != b->block_size || a->num_blocks != b->num_blocks ||
        a->max_blocks_per_seq != b->max_blocks_per_seq || a->num_tokens != b->num_tokens ||
        a->slot_mapping_i64 != b->slot_mapping_i64 || a->num_splits != b->num_splits || a->dist != b->dist ||
        a->special != b->special || a->seed != b->seed)
        return 0;
    if (a->scale_given && ac_f32_bits(a->scale) != ac_f32_bits(b->scale)) return 0;
    if (a->window_left != b->window_left || a->window_right != b->window_right ||
        ac_f32_bits(a->softcap) != ac_f32_bits(b->softcap) || !same_f32(a->alibi_slopes, a->n_alibi, b->alibi_slopes,
                                                                        b->n_alibi) ||
        !same_f32(a->sinks, a->n_sinks, b->sinks, b->n_sinks))
        return 0;
    /* head_dim_v: 0 and an explicit D are the same case (the writer writes neither). */
    int32_t adv = a->head_dim_v ? a->head_dim_v : a->head_dim, bdv = b->head_dim_v ? b->head_dim_v : b->head_dim;
    if (adv != bdv || a->kv_format != b->kv_format ||
        !same_f32(a->k_scales, a->n_kv_scales, b->k_scales, b->n_kv_scales) ||
        !same_f32(a->v_scales, a->n_kv_scales, b->v_scales, b->n_kv_scales))
        return 0;
    if (!same_i32(a->seqlen_q, b->seqlen_q, a->batch) || !same_i32(a->seqlen_k, b->seqlen_k, a->batch)) return 0;
    if (!same_i32(a->block_table, b->block_table, (int64_t)a->batch * a->max_blocks_per_seq)) return 0;
    if (a->num_tokens > 0) {
        if (!a->slot_mapping || !b->slot_mapping) return a->slot_mapping == b->slot_mapping;
        if (memcmp(a->slot_mapping, b->slot_mapping, sizeof(int64_t) * (size_t)a->num_tokens) != 0) return 0;
    }
    if (strncmp(fa->title, fb->title, sizeof fa->title) != 0) return 0;
    const char *na = fa->note ? fa->note : "", *nb = fb->note ? fb->note : "";
    if (strcmp(na, nb) != 0) return 0;
    return fa->expect_error == fb->expect_error && fa->expect_code == fb->expect_code;
}

/* ---------------------------------------------------------------------------
 * Describe
 * ------------------------------------------------------------------------- */
/* Blocks a sequence reads, or -1 when that is not defined (bad block_size). */
static int64_t blocks_read(const ac_case *c, int32_t b)
{
    if (c->block_size <= 0 || c->seqlen_k[b] < 0) return -1;
    return ac_blocks_used(c->seqlen_k[b], c->block_size);
}

static int cmp_i64(const void *x, const void *y)
{
    int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;
    return (a > b) - (a < b);
}

void ac_casefile_describe(const ac_casefile *f, FILE *out)
{
    enum { MAX_ROWS = 64, MAX_COLS = 48, MAX_SLOTS = 32 };
    const ac_case *c = &f->c;
    char line[1024], num[32];
    ac_case_line(c, line, sizeof line);
    fprintf(out, "case:    %s\n", line);
    fprintf(out, "title:   %.*s\n", (int)strnlen(f->title, sizeof f->title), f->title);
    if (f->note && f->note[0]) {
        const char *p = f->note;
        for (;;) {
            const char *nl = strchr(p, '\n');
            int n = nl ? (int)(nl - p) : (int)strlen(p);
            fprintf(out, "note:    %.*s\n", n, p);
            if (!nl) break;
            p = nl + 1;
        }
    }
    if (f->expect_error) fprintf(out, "expect:  rejected with %s\n", ac_status_name(f->expect_code));
    else fprintf(out, "expect:  ok (the kernel must pass the verdict)\n");
    ac_error e;
    ac_status vst = ac_case_validate(c, &e);
    fprintf(out, "layout:  %s%s%s\n", vst ? ac_status_name(vst) : "valid", vst ? ": " : "", vst ? e.msg : "");

    fprintf(out, "op %s, dtype %s, batch %d, heads_q %d, heads_kv %d", ac_op_name(c->op), ac_dtype_name(c->dtype),
            c->batch, c->heads_q, c->heads_kv);
    if (c->heads_kv > 0 && c->heads_q % c->heads_kv == 0) fprintf(out, " (group %d)", c->heads_q / c->heads_kv);
    else fprintf(out, " (heads_q %% heads_kv != 0)");
    fprintf(out, ", head_dim %d\n", c->head_dim);
    if (c->scale_given) {
        format_float(c->scale, num);
        fprintf(out, "scale %s = %.9g (explicit)\n", num, (double)c->scale);
    } else {
        fprintf(out, "scale default = 1/sqrt(%d) = %.9g\n", c->head_dim,
                c->head_dim > 0 ? (double)ac_case_scale(c) : 0.0);
    }
    fprintf(out, "causal %s, mask %s%s, mask_density %.9g\n", ac_causal_name(c->causal), ac_mask_name(c->mask),
            c->mask == AC_MASK_NONE ? "" : c->mask_per_head ? " per head" : " shared by heads",
            (double)c->mask_density);
    if (ac_op_traits_of(c->op) && ac_op_traits_of(c->op)->splits != AC_SPLITS_NONE) {
        if (c->num_splits == 0) fprintf(out, "splits auto\n");
        else fprintf(out, "splits %d\n", c->num_splits);
    }
    if (ac_case_has_features(c)) {
        fprintf(out, "features:");
        if (c->window_left != -1 || c->window_right != -1)
            fprintf(out, " window left %d right %d (-1: unbounded; bottom-right aligned)", c->window_left,
                    c->window_right);
        if (c->softcap != 0.0f) fprintf(out, " softcap %.9g", (double)c->softcap);
        fprintf(out, "\n");
        const struct { const char *name; const float *v; int32_t n; } lists[] = {
            {"alibi slopes", c->alibi_slopes, c->n_alibi}, {"sinks", c->sinks, c->n_sinks}};
        for (int l = 0; l < 2; l++) {
            if (lists[l].n <= 0 || !lists[l].v) continue;
            fprintf(out, "%s (%d):", lists[l].name, lists[l].n);
            for (int32_t h = 0; h < lists[l].n && h < MAX_COLS; h++) fprintf(out, " %.9g", (double)lists[l].v[h]);
            fprintf(out, "%s\n", lists[l].n > MAX_COLS ? " ..." : "");
        }
    }
    fprintf(out, "dist %s, special", ac_dist_name(c->dist));
    if (!c->special) fprintf(out, " none");
    for (int i = 0; i < N_SPECIAL; i++)
        if (c->special & special_names[i].bit) fprintf(out, " %s", special_names[i].name);
    if (c->special & ~special_known_bits()) fprintf(out, " 0x%x(unknown)", c->special & ~special_known_bits());
    fprintf(out, ", seed %llu\n", (unsigned long long)c->seed);

    if (c->batch > 0 && c->seqlen_q && c->seqlen_k) {
        int64_t capacity = (int64_t)c->max_blocks_per_seq * c->block_size;
        fprintf(out, "  seq        Lq        Lk%s\n", c->paged ? "  blocks read" : "");
        for (int32_t b = 0; b < c->batch && b < MAX_ROWS; b++) {
            fprintf(out, "%5d %9d %9d", b, c->seqlen_q[b], c->seqlen_k[b]);
            if (c->paged) {
                int64_t used = blocks_read(c, b);
                if (used < 0) fprintf(out, "            ?");
                else fprintf(out, " %12lld", (long long)used);
                if (c->seqlen_k[b] > capacity)
                    fprintf(out, "  beyond capacity %lld", (long long)capacity);
            }
            fprintf(out, "\n");
        }
        if (c->batch > MAX_ROWS) fprintf(out, "  ... %d more sequences\n", c->batch - MAX_ROWS);
        fprintf(out, "total queries %lld, total keys %lld\n", (long long)ac_case_total_q(c),
                (long long)ac_case_total_k(c));
    }

    if (c->paged || c->block_table) {
        fprintf(out, "paged: block_size %d, num_blocks %d, max_blocks_per_seq %d\n", c->block_size, c->num_blocks,
                c->max_blocks_per_seq);
        if (c->block_table && c->seqlen_k && c->batch > 0 && c->max_blocks_per_seq > 0) {
            fprintf(out, "block table (entries in [] are never read; '!' marks a read entry out of range):\n");
            for (int32_t b = 0; b < c->batch && b < MAX_ROWS; b++) {
                int64_t used = blocks_read(c, b);
                if (used > c->max_blocks_per_seq) used = c->max_blocks_per_seq;
                const int32_t *row = c->block_table + (int64_t)b * c->max_blocks_per_seq;
                fprintf(out, "  %5d:", b);
                for (int32_t i = 0; i < c->max_blocks_per_seq && i < MAX_COLS; i++) {
                    int read = used < 0 || i < used;
                    int bad = read && (row[i] < 0 || row[i] >= c->num_blocks);
                    fprintf(out, read ? " %d%s" : " [%d]%s", row[i], bad ? "!" : "");
                }
                if (c->max_blocks_per_seq > MAX_COLS) fprintf(out, " ... (%d entries)", c->max_blocks_per_seq);
                fprintf(out, "\n");
            }
            if (c->batch > MAX_ROWS) fprintf(out, "  ... %d more rows\n", c->batch - MAX_ROWS);
        }
    }

    if (c->num_tokens > 0 && c->slot_mapping) {
        int64_t pad = 0, lo = INT64_MAX, hi = INT64_MIN, dup = 0, n = 0;
        int64_t *sorted = malloc(sizeof(int64_t) * (size_t)c->num_tokens);
        int counted = sorted != NULL;
        for (int32_t t = 0; t < c->num_tokens; t++) {
            int64_t s = c->slot_mapping[t];
            if (s == -1) {
                pad++;
                continue;
            }
            if (s < lo) lo = s;
            if (s > hi) hi = s;
            if (sorted) sorted[n++] = s;
        }
        if (sorted) {
            qsort(sorted, (size_t)n, sizeof *sorted, cmp_i64);
            for (int64_t i = 1; i < n; i++) dup += sorted[i] == sorted[i - 1];
            free(sorted);
        }
        fprintf(out, "slot mapping: %d tokens (%s), %lld padding (-1)", c->num_tokens,
                c->slot_mapping_i64 ? "int64" : "int32", (long long)pad);
        if (pad < c->num_tokens) fprintf(out, ", slots %lld..%lld", (long long)lo, (long long)hi);
        fprintf(out, ", pool slots %lld", (long long)c->num_blocks * c->block_size);
        if (counted) fprintf(out, ", %lld collisions", (long long)dup);
        fprintf(out, "\n ");
        for (int32_t t = 0; t < c->num_tokens && t < MAX_SLOTS; t++)
            fprintf(out, " %lld", (long long)c->slot_mapping[t]);
        if (c->num_tokens > MAX_SLOTS) fprintf(out, " ...");
        fprintf(out, "\n");
    } else if (ac_op_traits_of(c->op) && ac_op_traits_of(c->op)->slots) {
        fprintf(out, "slot mapping: %d tokens\n", c->num_tokens);
    }
}
