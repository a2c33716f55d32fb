/* The combine target: sets of split partials (O_s, LSE_s) chosen value by
 * value, -inf (empty splits) in any pattern including whole rows, spreads
 * from equal to far past fp32 exp's range (up to +-FLT_MAX), denormals, and
 * NaN / Inf in the O of empty splits, which must never be read. The combine
 * kernel (CPU model or GPU) against the oracle; the verdict judges combine
 * on its fp32 output.
 *
 * Record (little endian; missing bytes read as 0):
 *   [0] flags: bit 0 dtype (0 bf16, 1 fp16), bit 1 NaN/Inf in empty splits' O
 *   [1] rows - 1 (mod 8)   [2] splits - 1 (mod 24)   [3] head dim index
 *   [4..11] seed of the O values not set explicitly
 *   then per (row, split): LSE as fp32 bits (4 bytes), O kind (1 byte). */
#include "ac_fuzz.h"
#include "ac_numfmt.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

enum o_kind {
    O_GEN = 0,   /* N(0,1) from the seed (ac_gen) */
    O_ZERO,      /* all zero */
    O_LARGE,     /* 1e4 x N(0,1) (fp16: 1e3 x) */
    O_HUGE,      /* 1e30 x N(0,1) (fp16: 1e4 x) */
    O_TINY,      /* denormal fp32 */
    O_NAN,       /* NaN: only in an empty split (else O_GEN) */
    O_INF,       /* +-Inf: only in an empty split (else O_GEN) */
    O_MAX,       /* +-3e38 alternating (fp16: +-65504): the top of the range */
    O_KINDS
};

static const int32_t dims[] = {1, 2, 3, 4, 7, 8, 16, 32, 64};
#define NDIMS ((int)(sizeof dims / sizeof dims[0]))


/* An LSE the contract allows: finite or -inf. NaN becomes -inf and +inf the
   largest float: the record can say anything, the kernel gets legal input. */
static float legal_lse(float x)
{
    if (isnan(x)) return -INFINITY;
    if (x == INFINITY) return FLT_MAX;
    return x;
}

void ac_fuzz_partials_decode(const uint8_t *data, size_t size, ac_fuzz_partials *p)
{
    memset(p, 0, sizeof *p);
    uint8_t h[12] = {0};
    memcpy(h, data, size < 12 ? size : 12);
    p->dtype = (h[0] & 1) ? AC_FP16 : AC_BF16;
    p->nan_in_empty = (h[0] >> 1) & 1;
    p->rows = 1 + h[1] % AC_FUZZ_COMBINE_MAX_ROWS;
    p->splits = 1 + h[2] % AC_FUZZ_COMBINE_MAX_SPLITS;
    p->head_dim = dims[h[3] % NDIMS];
    for (int i = 0; i < 8; i++) p->seed |= (uint64_t)h[4 + i] << (8 * i);
    size_t pos = 12;
    for (int32_t i = 0; i < p->rows * p->splits; i++, pos += 5) {
        uint8_t e[5] = {0};
        if (pos < size) memcpy(e, data + pos, size - pos < 5 ? size - pos : 5);
        p->lse[i] = legal_lse(ac_f32_from_bits((uint32_t)e[0] | (uint32_t)e[1] << 8 | (uint32_t)e[2] << 16 | (uint32_t)e[3] << 24));
        p->o_kind[i] = (uint8_t)(e[4] % O_KINDS);
    }
}

size_t ac_fuzz_partials_encode(const ac_fuzz_partials *p, uint8_t *out, size_t max_size)
{
    size_t need = 12 + (size_t)p->rows * (size_t)p->splits * 5;
    if (need > max_size) return 0;
    int di = 0;
    for (int i = 0; i < NDIMS; i++)
        if (dims[i] == p->head_dim) di = i;
    out[0] = (uint8_t)((p->dtype == AC_FP16) | (p->nan_in_empty << 1));
    out[1] = (uint8_t)(p->rows - 1);
    out[2] = (uint8_t)(p->splits - 1);
    out[3] = (uint8_t)di;
    for (int i = 0; i < 8; i++) out[4 + i] = (uint8_t)(p->seed >> (8 * i));
    size_t pos = 12;
    for (int32_t i = 0; i < p->rows * p->splits; i++, pos += 5) {
        uint32_t u = ac_f32_bits(p->lse[i]);
        for (int k = 0; k < 4; k++) out[pos + k] = (uint8_t)(u >> (8 * k));
        out[pos + 4] = p->o_kind[i];
    }
    return need;
}

int ac_fuzz_partials_line(const ac_fuzz_partials *p, char *buf, size_t n)
{
    int len = snprintf(buf, n, "combine-partials %s rows=%d splits=%d D=%d nan_empty=%d seed=%llu lse=",
                       ac_dtype_name(p->dtype), p->rows, p->splits, p->head_dim, p->nan_in_empty,
                       (unsigned long long)p->seed);
    for (int32_t r = 0; r < p->rows && len > 0 && (size_t)len < n; r++) {
        len += snprintf(buf + len, n - (size_t)len, "%s[", r ? "," : "");
        for (int32_t s = 0; s < p->splits && (size_t)len < n; s++) {
            int i = r * p->splits + s;
            len += snprintf(buf + len, n - (size_t)len, "%s%.3g%s", s ? " " : "", (double)p->lse[i],
                            p->o_kind[i] ? "*" : "");
        }
        if ((size_t)len < n) len += snprintf(buf + len, n - (size_t)len, "]");
    }
    return len;
}

/* The combine case the partials stand in: one sequence of `rows` queries,
   one head, so partial row r is query r. */
static ac_status partials_case(const ac_fuzz_partials *p, ac_case *c, ac_error *err)
{
    ac_case_init(c);
    c->op = AC_OP_COMBINE;
    c->dtype = p->dtype;
    ac_status st = ac_case_set_batch(c, 1, err);
    if (st) return st;
    c->seqlen_q[0] = p->rows;
    c->seqlen_k[0] = p->splits;
    c->heads_q = c->heads_kv = 1;
    c->head_dim = p->head_dim;
    c->num_splits = p->splits;
    c->dist = AC_DIST_NORMAL;
    c->special = p->nan_in_empty ? AC_SPECIAL_NAN_PARTIALS : 0;
    c->seed = p->seed;
    return AC_OK;
}

static ac_status overwrite_partials(const ac_case *c, ac_tensors *t, void *ctx, ac_error *err)
{
    const ac_fuzz_partials *p = ctx;
    (void)err;
    int fp16 = c->dtype == AC_FP16;
    int32_t d_n = p->head_dim;
    for (int32_t i = 0; i < p->rows * p->splits; i++) {
        float lse = p->lse[i];
        int empty = lse == -INFINITY;
        int kind = p->o_kind[i];
        if ((kind == O_NAN || kind == O_INF) && !empty) kind = O_GEN;
        if (empty && p->nan_in_empty && kind == O_GEN) kind = O_NAN;
        t->lse_part[i] = lse;
        float *o = t->o_part + (int64_t)i * d_n;
        for (int32_t d = 0; d < d_n; d++) {
            float g = o[d] == o[d] ? o[d] : 0.5f; /* the generated N(0,1) value (NaN if ac_gen poisoned it) */
            float sgn = (d & 1) ? -1.0f : 1.0f;
            switch (kind) {
            case O_ZERO: o[d] = 0.0f; break;
            case O_LARGE: o[d] = g * (fp16 ? 1e3f : 1e4f); break;
            case O_HUGE: o[d] = g * (fp16 ? 1e4f : 1e30f); break;
            case O_TINY: o[d] = g * 1e-40f; break;
            case O_NAN: o[d] = NAN; break;
            case O_INF: o[d] = sgn * INFINITY; break;
            case O_MAX: o[d] = sgn * (fp16 ? 65504.0f : 3e38f); break;
            default: o[d] = g; break;
            }
        }
    }
    return AC_OK;
}

void ac_fuzz_combine_run(const uint8_t *data, size_t size, const ac_fuzz_env *env, ac_fuzz_outcome *out)
{
    ac_fuzz_outcome_free(out);
    FILE *log = env->log ? env->log : stderr;
    ac_fuzz_partials *p = malloc(sizeof *p);
    ac_case c;
    ac_error e;
    if (!p) {
        out->kind = AC_FUZZ_SKIPPED;
        snprintf(out->why, sizeof out->why, "out of memory");
        return;
    }
    ac_fuzz_partials_decode(data, size, p);
    ac_fuzz_partials_line(p, out->line, sizeof out->line);
    if (env->verbose) fprintf(log, "partials: %s\n", out->line);
    if (partials_case(p, &c, &e)) {
        out->kind = AC_FUZZ_SKIPPED;
        snprintf(out->why, sizeof out->why, "%s", e.msg);
        free(p);
        return;
    }
    ac_fuzz_env local = *env;
    local.oracle_rows = 0; /* at most 8 rows: judge them all */
    ac_fuzz_check r;
    ac_status st = ac_fuzz_check_case(&c, &local, overwrite_partials, p, env->verbose || env->png_stem, &r);
    out->code = st;
    if (st == AC_ERR_NO_DEVICE) {
        out->kind = AC_FUZZ_SKIPPED;
        snprintf(out->why, sizeof out->why, "%s", r.error.msg); /* the backend's reason */
    } else if (st) {
        out->kind = AC_FUZZ_FINDING;
        snprintf(out->why, sizeof out->why, "%s failed on legal partials: %s (%s)", r.stage, ac_status_name(st),
                 r.error.msg);
    } else if (!r.verdict.pass) {
        out->kind = AC_FUZZ_FINDING;
        snprintf(out->why, sizeof out->why, "verdict (%s, fp32 output): %s", ac_backend_name(env->backend),
                 r.verdict.summary);
    } else {
        out->kind = AC_FUZZ_PASS;
        snprintf(out->why, sizeof out->why, "%s", r.verdict.summary);
    }
    if (env->verbose) {
        ac_fuzz_print_diagnosis(&c, &r, 8, log);
        fprintf(log, "%s: %s\n", out->kind == AC_FUZZ_FINDING ? "FINDING" : out->kind == AC_FUZZ_PASS ? "pass" : "skipped",
                out->why);
    }
    ac_fuzz_write_pictures(&c, &r, env, log);
    ac_check_result_free(&r);
    ac_case_free(&c);
    free(p);
}

/* ------------------------------------------------------------------------ */

static const float special_lse[] = {
    -INFINITY, 0.0f, -0.0f, 1.0f, -1.0f, 88.72f, -88.72f, 103.98f, -103.98f, 1e4f, -1e4f,
    1e30f, -1e30f, FLT_MAX, -FLT_MAX, 1e-45f, 16777216.0f, -87.33f,
};
#define NSPECIAL ((int)(sizeof special_lse / sizeof special_lse[0]))

static void mutate_partials(ac_fuzz_partials *p, ac_fuzz_rng *r)
{
    int32_t n = p->rows * p->splits;
    int32_t i = (int32_t)ac_fuzz_below(r, (uint32_t)n);
    int32_t row = i / p->splits;
    float *lr = p->lse + row * p->splits;
    switch (ac_fuzz_below(r, 14)) {
    case 0: /* shape: rows; entries stay at their (row, split) */
    case 1: {
        int32_t nr = 1 + (int32_t)ac_fuzz_below(r, AC_FUZZ_COMBINE_MAX_ROWS);
        int32_t ns = ac_fuzz_below(r, 2) ? p->splits : 1 + (int32_t)ac_fuzz_below(r, AC_FUZZ_COMBINE_MAX_SPLITS);
        ac_fuzz_partials q = *p;
        for (int32_t a = 0; a < nr; a++)
            for (int32_t s = 0; s < ns; s++) {
                int in = a < p->rows && s < p->splits;
                q.lse[a * ns + s] = in ? p->lse[a * p->splits + s] : (ac_fuzz_below(r, 3) ? -INFINITY : 0.0f);
                q.o_kind[a * ns + s] = in ? p->o_kind[a * p->splits + s] : 0;
            }
        q.rows = nr;
        q.splits = ns;
        *p = q;
        break;
    }
    case 2: p->head_dim = dims[ac_fuzz_below(r, NDIMS)]; break;
    case 3: p->dtype = p->dtype == AC_BF16 ? AC_FP16 : AC_BF16; break;
    case 4: p->nan_in_empty ^= 1; break;
    case 5: p->seed = ac_fuzz_next(r); break;
    case 6:
    case 7: p->lse[i] = special_lse[ac_fuzz_below(r, NSPECIAL)]; break;
    case 8: /* a row with every split empty: O = 0, LSE = -inf */
        for (int32_t s = 0; s < p->splits; s++) lr[s] = -INFINITY;
        break;
    case 9: { /* equal LSEs: the weights tie */
        float v = special_lse[ac_fuzz_below(r, NSPECIAL)];
        for (int32_t s = 0; s < p->splits; s++) lr[s] = v;
        break;
    }
    case 10: { /* one dominant split, the rest far below (or -inf) */
        float big = ac_fuzz_below(r, 2) ? FLT_MAX : 1e30f;
        for (int32_t s = 0; s < p->splits; s++) lr[s] = ac_fuzz_below(r, 3) ? -big : -INFINITY;
        lr[ac_fuzz_below(r, (uint32_t)p->splits)] = ac_fuzz_below(r, 2) ? big : 0.0f;
        break;
    }
    case 11: /* the next float: near-ties */
        if (isfinite(p->lse[i])) p->lse[i] = nextafterf(p->lse[i], ac_fuzz_below(r, 2) ? INFINITY : -INFINITY);
        break;
    case 12: p->o_kind[i] = (uint8_t)ac_fuzz_below(r, O_KINDS); break;
    default: { /* a random finite LSE of any magnitude */
        float v = (float)ldexp((double)(int32_t)ac_fuzz_next(r) / 2147483648.0, (int)ac_fuzz_below(r, 260) - 130);
        p->lse[i] = legal_lse(v);
        break;
    }
    }
}

size_t ac_fuzz_combine_mutate(uint8_t *data, size_t size, size_t max_size, uint64_t seed)
{
    ac_fuzz_rng r = {seed};
    ac_fuzz_partials *p = malloc(sizeof *p);
    if (!p) return size;
    ac_fuzz_partials_decode(data, size, p);
    int steps = 1 + (int)ac_fuzz_below(&r, 3);
    for (int k = 0; k < steps; k++) mutate_partials(p, &r);
    size_t n = ac_fuzz_partials_encode(p, data, max_size);
    free(p);
    return n ? n : size;
}

size_t ac_fuzz_combine_cross(const uint8_t *a, size_t na, const uint8_t *b, size_t nb, uint8_t *out, size_t max_out,
                             uint64_t seed)
{
    ac_fuzz_rng r = {seed};
    ac_fuzz_partials *p = malloc(sizeof *p), *q = malloc(sizeof *q);
    size_t n = 0;
    if (p && q) {
        ac_fuzz_partials_decode(a, na, p);
        ac_fuzz_partials_decode(b, nb, q);
        /* rows of b replace rows of a where the split counts agree, else the
           flags and seed come from b */
        if (p->splits == q->splits) {
            for (int32_t row = 0; row < p->rows && row < q->rows; row++)
                if (ac_fuzz_below(&r, 2)) {
                    memcpy(p->lse + row * p->splits, q->lse + row * q->splits, sizeof(float) * (size_t)p->splits);
                    memcpy(p->o_kind + row * p->splits, q->o_kind + row * q->splits, (size_t)p->splits);
                }
        } else {
            p->seed = q->seed;
            p->nan_in_empty = q->nan_in_empty;
            p->dtype = q->dtype;
        }
        n = ac_fuzz_partials_encode(p, out, max_out);
    }
    free(p);
    free(q);
    return n;
}
