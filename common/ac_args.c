#include "ac_args.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "ac_file.h" /* ac_mkdirs */

/* A value as it is quoted back in a message: cut short (the message buffer
   is 256 bytes) and '' when empty, so the user sees what was given. */
static const char *shown(const char *text, char *buf, size_t n)
{
    if (!text[0]) return "''";
    snprintf(buf, n, "%.*s%s", 40, text, strlen(text) > 40 ? "..." : "");
    return buf;
}

void ac_args_init(ac_args *a, const char *prog, int argc, char **argv, const struct option *opts)
{
    memset(a, 0, sizeof *a);
    a->prog = prog;
    a->argc = argc;
    a->argv = argv;
    a->opts = opts;
    /* ':' first: a missing value returns ':' instead of '?'. */
    size_t k = 0;
    a->shortopts[k++] = ':';
    for (const struct option *o = opts; o && o->name && k + 3 < sizeof a->shortopts; o++)
        if (o->val > 0 && o->val < 128 && isalnum(o->val)) {
            a->shortopts[k++] = (char)o->val;
            if (o->has_arg == required_argument) a->shortopts[k++] = ':';
        }
    a->shortopts[k] = '\0';
    optind = 0; /* 0, not 1: glibc then resets its whole scanning state */
    opterr = 0; /* the messages are ours */
}

static const struct option *by_val(const ac_args *a, int val)
{
    for (const struct option *o = a->opts; o && o->name; o++)
        if (o->val == val) return o;
    return NULL;
}

static void set_name(ac_args *a, const struct option *o, int val)
{
    if (o) snprintf(a->name_buf, sizeof a->name_buf, "--%s", o->name);
    else snprintf(a->name_buf, sizeof a->name_buf, "-%c", val > 0 && val < 128 && isprint(val) ? val : '?');
    a->name = a->name_buf;
}

int ac_args_next(ac_args *a, ac_error *err)
{
    int c = getopt_long(a->argc, a->argv, a->shortopts, a->opts, NULL);
    if (c == -1) return AC_ARGS_END;
    const char *arg = optind > 0 && optind <= a->argc ? a->argv[optind - 1] : "?";
    char buf[64];
    if (c == ':') {
        set_name(a, by_val(a, optopt), optopt);
        ac_fail(err, AC_ERR_PARSE, "%s: missing value", a->name);
        return AC_ARGS_ERROR;
    }
    if (c == '?') {
        if (optopt && !strncmp(arg, "--", 2)) { /* a known flag given "=value" */
            set_name(a, by_val(a, optopt), optopt);
            ac_fail(err, AC_ERR_PARSE, "%s: takes no value (%s)", a->name, shown(arg, buf, sizeof buf));
        } else if (optopt) {
            ac_fail(err, AC_ERR_PARSE, "-%c: unknown option", optopt > 0 && optopt < 128 && isprint(optopt) ? optopt : '?');
        } else { /* an unknown long option, or a prefix of several; its text without "=value" */
            size_t l = strcspn(arg, "="), nmatch = 0;
            char names[128] = "";
            for (const struct option *o = a->opts; o && o->name && l > 2; o++)
                if (!strncmp(o->name, arg + 2, l - 2) && strlen(names) + strlen(o->name) + 4 < sizeof names) {
                    snprintf(names + strlen(names), sizeof names - strlen(names), "%s--%s", nmatch ? ", " : "", o->name);
                    nmatch++;
                }
            if (nmatch > 1)
                ac_fail(err, AC_ERR_PARSE, "%.*s: ambiguous (%s)", (int)(l < 60 ? l : 60), arg, names);
            else
                ac_fail(err, AC_ERR_PARSE, "%.*s: unknown option", (int)(l < 60 ? l : 60), arg);
        }
        return AC_ARGS_ERROR;
    }
    const struct option *o = by_val(a, c);
    set_name(a, o, c);
    /* "--tsv --quick": the next flag taken as the value, which is never meant. */
    if (o && o->has_arg == required_argument && optarg && optarg == a->argv[optind - 1] && !strncmp(optarg, "--", 2)) {
        ac_fail(err, AC_ERR_PARSE, "%s: missing value (next came %s; write %s=%s if that is the value)", a->name,
                shown(optarg, buf, sizeof buf), a->name, shown(optarg, buf, sizeof buf));
        return AC_ARGS_ERROR;
    }
    return c;
}

int ac_args_fail(const ac_args *a, const ac_error *err)
{
    fprintf(stderr, "%s: %s\n", a->prog, err ? err->msg : "bad command line");
    fprintf(stderr, "%s: %s --help lists the flags\n", a->prog, a->prog);
    return AC_EXIT_USAGE;
}

int ac_args_failf(const ac_args *a, const char *fmt, ...)
{
    ac_error e;
    va_list ap;
    va_start(ap, fmt);
    e.code = AC_ERR_PARSE;
    vsnprintf(e.msg, sizeof e.msg, fmt, ap);
    va_end(ap);
    return ac_args_fail(a, &e);
}

/* ---- numbers ---------------------------------------------------------------- */

/* Sign and magnitude of an integer text: [+-](decimal | 0x hex), whole text.
   A magnitude past 2^64 - 1 reads as UINT64_MAX with *over = 1. */
static ac_status parse_integer(const char *name, const char *text, int *neg, uint64_t *mag, int *over, ac_error *err)
{
    char buf[64];
    if (!text) return ac_fail(err, AC_ERR_PARSE, "%s: missing value", name);
    const char *p = text;
    *neg = *p == '-';
    if (*p == '-' || *p == '+') p++;
    int base = 10;
    if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
        base = 16;
        p += 2;
    }
    /* strtoull would skip spaces and take a sign of its own: the first
       character must already be a digit. */
    if (!(base == 16 ? isxdigit((unsigned char)*p) : isdigit((unsigned char)*p)))
        return ac_fail(err, AC_ERR_PARSE, "%s %s: not a number", name, shown(text, buf, sizeof buf));
    char *end;
    errno = 0;
    unsigned long long v = strtoull(p, &end, base);
    if (*end) {
        char junk[48];
        return ac_fail(err, AC_ERR_PARSE, "%s %s: not a number (trailing %s)", name, shown(text, buf, sizeof buf),
                       shown(end, junk, sizeof junk));
    }
    *over = errno == ERANGE;
    *mag = (uint64_t)v;
    return AC_OK;
}

ac_status ac_arg_i64(const char *name, const char *text, int64_t min, int64_t max, int64_t *out, ac_error *err)
{
    int neg, over;
    uint64_t mag;
    char buf[64];
    ac_status st = parse_integer(name, text, &neg, &mag, &over, err);
    if (st) return st;
    int64_t v;
    if (neg ? mag > (uint64_t)INT64_MAX + 1 : mag > (uint64_t)INT64_MAX)
        return ac_fail(err, AC_ERR_PARSE, "%s %s: out of range (%" PRId64 " to %" PRId64 ")", name,
                       shown(text, buf, sizeof buf), min, max);
    if (neg) v = mag == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)mag;
    else v = (int64_t)mag;
    if (v < min || v > max)
        return ac_fail(err, AC_ERR_PARSE, "%s %s: out of range (%" PRId64 " to %" PRId64 ")", name,
                       shown(text, buf, sizeof buf), min, max);
    *out = v;
    return AC_OK;
}

ac_status ac_arg_u64(const char *name, const char *text, uint64_t min, uint64_t max, uint64_t *out, ac_error *err)
{
    int neg, over;
    uint64_t mag;
    char buf[64];
    ac_status st = parse_integer(name, text, &neg, &mag, &over, err);
    if (st) return st;
    /* strtoull would wrap "-1" to 2^64 - 1: a minus sign is never meant here. */
    if (neg)
        return ac_fail(err, AC_ERR_PARSE, "%s %s: must not be negative (%" PRIu64 " to %" PRIu64 ")", name,
                       shown(text, buf, sizeof buf), min, max);
    if (over || mag < min || mag > max)
        return ac_fail(err, AC_ERR_PARSE, "%s %s: out of range (%" PRIu64 " to %" PRIu64 ")", name,
                       shown(text, buf, sizeof buf), min, max);
    *out = mag;
    return AC_OK;
}

ac_status ac_arg_int(const char *name, const char *text, int min, int max, int *out, ac_error *err)
{
    int64_t v;
    ac_status st = ac_arg_i64(name, text, min, max, &v, err);
    if (!st) *out = (int)v;
    return st;
}

ac_status ac_arg_double(const char *name, const char *text, double min, double max, double *out, ac_error *err)
{
    char buf[64];
    if (!text) return ac_fail(err, AC_ERR_PARSE, "%s: missing value", name);
    const char *p = text + (*text == '-' || *text == '+');
    if (!isdigit((unsigned char)*p) && *p != '.')
        return ac_fail(err, AC_ERR_PARSE, "%s %s: not a number", name, shown(text, buf, sizeof buf));
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (end == text) return ac_fail(err, AC_ERR_PARSE, "%s %s: not a number", name, shown(text, buf, sizeof buf));
    if (*end) {
        char junk[48];
        return ac_fail(err, AC_ERR_PARSE, "%s %s: not a number (trailing %s)", name, shown(text, buf, sizeof buf),
                       shown(end, junk, sizeof junk));
    }
    if (!isfinite(v) || !(v >= min && v <= max))
        return ac_fail(err, AC_ERR_PARSE, "%s %s: out of range (%g to %g)", name, shown(text, buf, sizeof buf), min, max);
    *out = v;
    return AC_OK;
}

/* ---- names, patterns, files ------------------------------------------------- */

ac_status ac_arg_bug(const char *name, const char *text, ac_bug *out, ac_error *err)
{
    char buf[64];
    if (!text) return ac_fail(err, AC_ERR_PARSE, "%s: missing value", name);
    if (ac_bug_parse(text, out) == 0) return AC_OK;
    char list[200];
    size_t len = 0;
    list[0] = '\0';
    for (int b = 0; b < AC_BUG_COUNT && len < sizeof list; b++)
        len += (size_t)snprintf(list + len, sizeof list - len, "%s%s", b ? " " : "", ac_bug_name((ac_bug)b));
    return ac_fail(err, AC_ERR_PARSE, "%s %s: unknown bug; one of: %s", name, shown(text, buf, sizeof buf), list);
}

ac_status ac_arg_choice(const char *name, const char *text, const char *const *choices, int *out, ac_error *err)
{
    char buf[64];
    if (!text) return ac_fail(err, AC_ERR_PARSE, "%s: missing value", name);
    char list[160];
    size_t len = 0;
    list[0] = '\0';
    for (int i = 0; choices[i]; i++) {
        if (!strcmp(text, choices[i])) {
            *out = i;
            return AC_OK;
        }
        if (len < sizeof list)
            len += (size_t)snprintf(list + len, sizeof list - len, "%s%s", i ? (choices[i + 1] ? ", " : " or ") : "",
                                    choices[i]);
    }
    return ac_fail(err, AC_ERR_PARSE, "%s %s: expected %s", name, shown(text, buf, sizeof buf), list);
}

ac_status ac_arg_backend(const char *name, const char *text, ac_backend *out, int *is_auto, ac_error *err)
{
    static const char *const names[] = {"auto", "cpu", "gpu", NULL};
    int k;
    ac_status st = ac_arg_choice(name, text, names, &k, err);
    if (st) return st;
    *is_auto = k == 0;
    if (k == 1) *out = AC_BACKEND_MODEL;
    if (k == 2) *out = AC_BACKEND_GPU;
    return AC_OK;
}

ac_status ac_arg_regex(const char *name, const char *text, regex_t *out, ac_error *err)
{
    char buf[64];
    if (!text) return ac_fail(err, AC_ERR_PARSE, "%s: missing value", name);
    int rc = regcomp(out, text, REG_EXTENDED | REG_NOSUB);
    if (rc) {
        char why[128];
        regerror(rc, out, why, sizeof why);
        return ac_fail(err, AC_ERR_PARSE, "%s '%s': bad regular expression: %s", name, shown(text, buf, sizeof buf), why);
    }
    return AC_OK;
}

ac_status ac_arg_out_dir(const char *name, const char *path, ac_error *err)
{
    char buf[64];
    ac_error e;
    if (!path) return ac_fail(err, AC_ERR_PARSE, "%s: missing value", name);
    if (!path[0]) return ac_fail(err, AC_ERR_IO, "%s '': cannot make: empty path", name);
    if (ac_mkdirs(path, &e)) return ac_fail(err, AC_ERR_IO, "%s %s: %s", name, shown(path, buf, sizeof buf), e.msg);
    return AC_OK;
}

ac_status ac_arg_out_file(const char *name, const char *path, FILE **out, ac_error *err)
{
    char buf[64];
    if (!path) return ac_fail(err, AC_ERR_PARSE, "%s: missing value", name);
    if (!path[0]) return ac_fail(err, AC_ERR_IO, "%s '': cannot write: empty path", name);
    FILE *f = fopen(path, "w");
    if (!f) return ac_fail(err, AC_ERR_IO, "%s %s: cannot write: %s", name, shown(path, buf, sizeof buf), strerror(errno));
    *out = f;
    return AC_OK;
}

/* ---- the features of run and sweep --------------------------------------------- */

ac_status ac_arg_window(const char *name, const char *text, int32_t *left, int32_t *right, ac_error *err)
{
    char buf[64], part[32];
    if (!text) return ac_fail(err, AC_ERR_PARSE, "%s: missing value", name);
    const char *comma = strchr(text, ',');
    if (!comma || (size_t)(comma - text) >= sizeof part)
        return ac_fail(err, AC_ERR_PARSE, "%s %s: expected LEFT,RIGHT (e.g. 128,0; -1 = unbounded)", name,
                       shown(text, buf, sizeof buf));
    snprintf(part, sizeof part, "%.*s", (int)(comma - text), text);
    int l, r;
    ac_status st = ac_arg_int(name, part, -1, INT32_MAX, &l, err);
    if (!st) st = ac_arg_int(name, comma + 1, -1, INT32_MAX, &r, err);
    if (st) return st;
    if (l == -1 && r == -1)
        return ac_fail(err, AC_ERR_PARSE, "%s -1,-1: no window (give at least one side >= 0)", name);
    *left = l;
    *right = r;
    return AC_OK;
}

ac_status ac_arg_floats(const char *name, const char *text, int allow_neg_inf, float *out, int32_t max, int32_t *n,
                        ac_error *err)
{
    char buf[64], part[64];
    if (!text || !*text) return ac_fail(err, AC_ERR_PARSE, "%s: missing value", name);
    int32_t k = 0;
    for (const char *p = text;;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (k == max) return ac_fail(err, AC_ERR_PARSE, "%s %s: more than %d values", name, shown(text, buf, sizeof buf), max);
        if (len >= sizeof part)
            return ac_fail(err, AC_ERR_PARSE, "%s %s: value %d too long", name, shown(text, buf, sizeof buf), k);
        snprintf(part, sizeof part, "%.*s", (int)len, p);
        if (allow_neg_inf && !strcmp(part, "-inf")) {
            out[k++] = -INFINITY;
        } else {
            double v;
            ac_status st = ac_arg_double(name, part, -3.4e38, 3.4e38, &v, err);
            if (st) return st;
            out[k++] = (float)v;
        }
        if (!end) break;
        p = end + 1;
    }
    *n = k;
    return AC_OK;
}

ac_status ac_arg_alibi(const char *name, const char *text, ac_feature_args *f, ac_error *err)
{
    if (text && !strcmp(text, "std")) {
        f->alibi = 1;
        f->n_alibi = 0;
        return AC_OK;
    }
    ac_status st = ac_arg_floats(name, text, 0, f->alibi_slopes, AC_MAX_HEADS, &f->n_alibi, err);
    if (!st) f->alibi = 2;
    return st;
}

ac_status ac_arg_kv_format(const char *name, const char *text, ac_kv_format *out, ac_error *err)
{
    static const char *const names[] = {"e4m3", "e5m2", NULL};
    int k;
    ac_status st = ac_arg_choice(name, text, names, &k, err);
    if (!st) *out = k ? AC_KV_E5M2 : AC_KV_E4M3;
    return st;
}

ac_status ac_arg_kv_scales(const char *name, const char *text, ac_feature_args *f, ac_error *err)
{
    char buf[64], part[64];
    if (text && !strcmp(text, "head")) {
        f->kv_scales = 2;
        return AC_OK;
    }
    const char *comma = text ? strchr(text, ',') : NULL;
    if (!comma || (size_t)(comma - text) >= sizeof part)
        return ac_fail(err, AC_ERR_PARSE, "%s %s: expected K,V (two scales, e.g. 0.5,2) or head", name,
                       text ? shown(text, buf, sizeof buf) : "''");
    snprintf(part, sizeof part, "%.*s", (int)(comma - text), text);
    double k, v;
    /* The case's domain (ac_case.h): finite, in [2^-64, 2^64]. */
    ac_status st = ac_arg_double(name, part, (double)AC_MIN_KV_SCALE, (double)AC_MAX_KV_SCALE, &k, err);
    if (!st) st = ac_arg_double(name, comma + 1, (double)AC_MIN_KV_SCALE, (double)AC_MAX_KV_SCALE, &v, err);
    if (st) return st;
    f->kv_scales = 1;
    f->k_scale = (float)k;
    f->v_scale = (float)v;
    return AC_OK;
}

void ac_kv_scales_spread(int32_t g, float *k_scale, float *v_scale)
{
    static const float ks[8] = {0.5f, 1.5f, 2.0f, 0.375f, 1.0f, 3.0f, 0.25f, 0.75f};
    static const float vs[8] = {2.0f, 0.75f, 0.25f, 1.25f, 4.0f, 0.5f, 3.0f, 0.125f};
    *k_scale = ks[g % 8];
    *v_scale = vs[g % 8];
}

ac_status ac_feature_args_check(const ac_feature_args *f, ac_error *err)
{
    if (f->kv_scales && f->kv_format == AC_KV_AS_DTYPE)
        return ac_fail(err, AC_ERR_PARSE, "--kv-scales: scales need an FP8 cache (give --kv-format e4m3 or e5m2)");
    return AC_OK;
}

int ac_feature_args_kv_any(const ac_feature_args *f)
{
    return f->head_dim_v || f->kv_format != AC_KV_AS_DTYPE || f->kv_scales;
}

int ac_feature_args_kv_taken(const ac_feature_args *f, const ac_case *c)
{
    const ac_op_traits *tr = ac_op_traits_of(c->op);
    if (!tr || !ac_feature_args_kv_any(f)) return 0;
    if (f->head_dim_v && !(tr->kv_features & AC_FEAT_HEAD_DIM_V)) return 0;
    if ((f->kv_format != AC_KV_AS_DTYPE || f->kv_scales) && !(tr->kv_features & AC_FEAT_FP8_KV)) return 0;
    return 1;
}

int ac_feature_args_any(const ac_feature_args *f)
{
    return f->window || f->softcap || f->alibi || f->n_sinks || ac_feature_args_kv_any(f);
}

/* The K/V flags on c (its family takes them: ac_feature_args_kv_taken). */
static ac_status apply_kv(const ac_feature_args *f, ac_case *c, ac_error *err)
{
    if (f->head_dim_v) c->head_dim_v = f->head_dim_v == c->head_dim ? 0 : f->head_dim_v;
    if (f->kv_format != AC_KV_AS_DTYPE) c->kv_format = f->kv_format;
    if (!f->kv_scales) return AC_OK;
    float ks[AC_MAX_HEADS], vs[AC_MAX_HEADS];
    int32_t n = 1;
    if (f->kv_scales == 1) {
        ks[0] = f->k_scale;
        vs[0] = f->v_scale;
    } else {
        n = c->heads_kv > 0 && c->heads_kv <= AC_MAX_HEADS ? c->heads_kv : 1;
        for (int32_t g = 0; g < n; g++) ac_kv_scales_spread(g, &ks[g], &vs[g]);
    }
    return ac_case_set_kv_scales(c, ks, vs, n, err);
}

ac_status ac_feature_args_apply(const ac_feature_args *f, ac_case *c, ac_error *err)
{
    const ac_op_traits *tr = ac_op_traits_of(c->op);
    if (!tr) return AC_OK;
    if (ac_feature_args_kv_taken(f, c)) {
        ac_status st = apply_kv(f, c, err);
        if (st) return st;
    }
    if (!tr->features) return AC_OK;
    if (f->window) c->window_left = f->window_left, c->window_right = f->window_right;
    if (f->softcap) c->softcap = f->softcap_value;
    ac_status st = AC_OK;
    if (f->alibi == 1) {
        float s[AC_MAX_HEADS];
        int32_t H = c->heads_q > 0 && c->heads_q <= AC_MAX_HEADS ? c->heads_q : 1;
        for (int32_t h = 0; h < H; h++) s[h] = exp2f(-8.0f * (float)(h + 1) / (float)H);
        st = ac_case_set_alibi(c, s, H, err);
    } else if (f->alibi == 2) {
        st = ac_case_set_alibi(c, f->alibi_slopes, f->n_alibi, err);
    }
    if (!st && f->n_sinks) st = ac_case_set_sinks(c, f->sinks, f->n_sinks, err);
    return st ? st : ac_case_fit_head_params(c, err);
}
