/* The dump reader and writer (docs/DUMP.md). The file: 8-byte little-endian
 * header length N, N bytes of JSON {name: {"dtype", "shape", "data_offsets"},
 * "__metadata__": {"attncheck": "<JSON object as a string>"}}, then the data.
 * Everything read from the file is checked before it sizes anything: each
 * number of the header is an exact integer, every product of dimensions is
 * overflow-checked, and a tensor's bytes must be dtype size x shape and lie
 * inside the file. Data are decoded little-endian byte by byte, so neither
 * alignment nor the host's byte order matters. */
#include "ac_dump.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ac_index.h"
#include "ac_numfmt.h"
#include "ac_validate.h"

/* ---- names ------------------------------------------------------------------ */

static const char *const empty_names[AC_EMPTY_COUNT] = {"zero_neginf", "zero_posinf", "nan", "zero_zero", "mean_v"};
static const char *const combine_empty_names[AC_COMBINE_EMPTY_COUNT] = {"guard", "flash_attn"};

const char *ac_empty_rule_name(ac_empty_rule r)
{
    return ((int)r >= 0 && r < AC_EMPTY_COUNT) ? empty_names[r] : "?";
}

const char *ac_combine_empty_name(ac_combine_empty r)
{
    return ((int)r >= 0 && r < AC_COMBINE_EMPTY_COUNT) ? combine_empty_names[r] : "?";
}

/* Tensor dtypes a dump may hold (safetensors' names). */
typedef enum tdtype { T_F16 = 0, T_BF16, T_F32, T_I32, T_I64, T_BOOL, T_U8, T_F8E4M3, T_F8E5M2, T_COUNT } tdtype;
static const char *const tdtype_names[T_COUNT] = {"F16", "BF16", "F32", "I32", "I64", "BOOL", "U8", "F8_E4M3",
                                                  "F8_E5M2"};
static const int tdtype_bytes[T_COUNT] = {2, 2, 4, 4, 8, 1, 1, 1, 1};
/* An FP8 K/V tensor's format (docs/DUMP.md): one code per byte, read into the
   low byte of the uint16 holders (common/ac_tensors.h). */
#define FP8_TYPES (BIT(T_F8E4M3) | BIT(T_F8E5M2))

/* Tensor names of the format, and which op takes which. */
enum {
    TN_Q = 0, TN_K, TN_V, TN_K_CACHE, TN_V_CACHE, TN_BLOCK_TABLE, TN_SEQLENS_K, TN_CU_Q, TN_CU_K, TN_MASK,
    TN_OUT, TN_LSE, TN_NUM_SPLITS, TN_O_PART, TN_LSE_PART, TN_K_NEW, TN_V_NEW, TN_SLOT_MAPPING,
    TN_K_CACHE_OUT, TN_V_CACHE_OUT, TN_ALIBI, TN_SINKS, TN_K_SCALE, TN_V_SCALE, TN_COUNT
};
static const char *const tn_names[TN_COUNT] = {
    "q", "k", "v", "k_cache", "v_cache", "block_table", "seqlens_k", "cu_seqlens_q", "cu_seqlens_k", "mask",
    "out", "lse", "num_splits", "o_part", "lse_part", "k_new", "v_new", "slot_mapping",
    "k_cache_out", "v_cache_out", "alibi_slopes", "sinks", "k_scale", "v_scale",
};
#define BIT(n) (1u << (n))
static const uint32_t op_tensors_prefill = BIT(TN_Q) | BIT(TN_K) | BIT(TN_V) | BIT(TN_K_CACHE) | BIT(TN_V_CACHE) |
                                          BIT(TN_BLOCK_TABLE) | BIT(TN_SEQLENS_K) | BIT(TN_CU_Q) | BIT(TN_CU_K) |
                                          BIT(TN_MASK) | BIT(TN_OUT) | BIT(TN_LSE) | BIT(TN_ALIBI) | BIT(TN_SINKS) |
                                          BIT(TN_K_SCALE) | BIT(TN_V_SCALE);
static const uint32_t op_tensors_decode = BIT(TN_Q) | BIT(TN_K_CACHE) | BIT(TN_V_CACHE) | BIT(TN_BLOCK_TABLE) |
                                         BIT(TN_SEQLENS_K) | BIT(TN_CU_Q) | BIT(TN_MASK) | BIT(TN_OUT) |
                                         BIT(TN_LSE) | BIT(TN_NUM_SPLITS) | BIT(TN_ALIBI) | BIT(TN_SINKS) |
                                         BIT(TN_K_SCALE) | BIT(TN_V_SCALE);
static const uint32_t op_tensors_combine = BIT(TN_O_PART) | BIT(TN_LSE_PART) | BIT(TN_OUT) | BIT(TN_LSE);
static const uint32_t op_tensors_store = BIT(TN_K_NEW) | BIT(TN_V_NEW) | BIT(TN_SLOT_MAPPING) | BIT(TN_K_CACHE) |
                                        BIT(TN_V_CACHE) | BIT(TN_K_CACHE_OUT) | BIT(TN_V_CACHE_OUT) |
                                        BIT(TN_K_SCALE) | BIT(TN_V_SCALE);

typedef struct tensor {
    int present;
    tdtype dt;
    int ndim;
    int64_t shape[AC_DUMP_MAX_DIMS];
    uint64_t count;           /* product of shape */
    uint64_t begin, end;      /* data_offsets, relative to the data section */
    const uint8_t *data;      /* begin inside the file */
} tensor;

/* ---- little-endian decoding --------------------------------------------------- */

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static uint64_t rd64(const uint8_t *p) { return (uint64_t)rd32(p) | ((uint64_t)rd32(p + 4) << 32); }

static float tensor_f32(const tensor *t, uint64_t i) { return ac_f32_from_bits(rd32(t->data + 4 * i)); }

/* Element i of an integer tensor (I32 or I64), as int64. */
static int64_t tensor_int(const tensor *t, uint64_t i)
{
    return t->dt == T_I64 ? (int64_t)rd64(t->data + 8 * i) : (int64_t)(int32_t)rd32(t->data + 4 * i);
}

/* dst is [outer, nA, nB, inner] (the project's NHD / TH order); the file holds
   the same elements as [outer, nB, nA, inner] when swap (HND / HT). */
static uint64_t file_index(int swap, int64_t o, int64_t a, int64_t b, int64_t x, int64_t nA, int64_t nB,
                           int64_t inner)
{
    return swap ? (uint64_t)(((o * nB + b) * nA + a) * inner + x) : (uint64_t)(((o * nA + a) * nB + b) * inner + x);
}

/* 16-bit elements, or one-byte FP8 codes into the low byte (high byte 0). */
static void load_u16(const tensor *t, int swap, int64_t outer, int64_t nA, int64_t nB, int64_t inner, uint16_t *dst)
{
    const int one = tdtype_bytes[t->dt] == 1;
    uint64_t e = 0;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t a = 0; a < nA; a++)
            for (int64_t b = 0; b < nB; b++)
                for (int64_t x = 0; x < inner; x++, e++) {
                    uint64_t i = file_index(swap, o, a, b, x, nA, nB, inner);
                    dst[e] = one ? t->data[i] : rd16(t->data + 2 * i);
                }
}

static void load_f32(const tensor *t, int swap, int64_t outer, int64_t nA, int64_t nB, int64_t inner, float *dst)
{
    uint64_t e = 0;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t a = 0; a < nA; a++)
            for (int64_t b = 0; b < nB; b++)
                for (int64_t x = 0; x < inner; x++, e++)
                    dst[e] = tensor_f32(t, file_index(swap, o, a, b, x, nA, nB, inner));
}

/* ---- the parse context --------------------------------------------------------- */

typedef struct parse_ctx {
    const uint8_t *file;
    size_t size;
    uint64_t data_size;       /* bytes after the header */
    const uint8_t *data;
    tensor tn[TN_COUNT];
    const char *meta_text;    /* __metadata__["attncheck"], inside the cJSON tree */
    /* The metadata, decoded. */
    ac_op op;
    ac_causal causal;
    int scale_default;
    double scale;
    ac_mask_kind mask;
    int out_f32_declared;
    int have_causal, have_scale;
    int32_t window_left, window_right; /* -1: unbounded (also when the key is absent) */
    double softcap;                    /* 0: none */
} parse_ctx;

static void *xcalloc(size_t n, size_t size) { return calloc(n ? n : 1, size ? size : 1); }

/* An exact non-negative integer of at most `max` (<= 2^53: doubles hold every such integer). */
static int json_uint(const cJSON *x, uint64_t max, uint64_t *out)
{
    if (!cJSON_IsNumber(x)) return -1;
    double v = x->valuedouble;
    if (!(v >= 0.0) || v > (double)max || v != floor(v)) return -1;
    *out = (uint64_t)v;
    return 0;
}

#define MAX_SAFE_INT 9007199254740992.0 /* 2^53 */

static ac_status parse_tensor_entry(parse_ctx *px, const cJSON *e, int which, ac_error *err)
{
    const char *name = tn_names[which];
    tensor *t = &px->tn[which];
    if (!cJSON_IsObject(e)) return ac_fail(err, AC_ERR_PARSE, "tensor '%s': header entry is not an object", name);
    const cJSON *dt = NULL, *shape = NULL, *off = NULL;
    for (const cJSON *k = e->child; k; k = k->next) {
        const cJSON **slot = !strcmp(k->string, "dtype") ? &dt : !strcmp(k->string, "shape") ? &shape
                             : !strcmp(k->string, "data_offsets") ? &off : NULL;
        if (!slot) return ac_fail(err, AC_ERR_PARSE, "tensor '%s': key '%.40s': unknown", name, k->string);
        if (*slot) return ac_fail(err, AC_ERR_PARSE, "tensor '%s': key '%s' given twice", name, k->string);
        *slot = k;
    }
    if (!dt || !shape || !off)
        return ac_fail(err, AC_ERR_PARSE, "tensor '%s': key '%s' missing", name,
                       !dt ? "dtype" : !shape ? "shape" : "data_offsets");
    if (!cJSON_IsString(dt)) return ac_fail(err, AC_ERR_PARSE, "tensor '%s': dtype is not a string", name);
    int d = 0;
    while (d < T_COUNT && strcmp(dt->valuestring, tdtype_names[d])) d++;
    if (d == T_COUNT)
        return ac_fail(err, AC_ERR_UNSUPPORTED,
                       "tensor '%s': dtype '%.20s': a dump holds F16 BF16 F32 I32 I64 BOOL U8 F8_E4M3 F8_E5M2", name,
                       dt->valuestring);
    t->dt = (tdtype)d;
    if (!cJSON_IsArray(shape)) return ac_fail(err, AC_ERR_PARSE, "tensor '%s': shape is not an array", name);
    int nd = 0;
    uint64_t count = 1;
    for (const cJSON *x = shape->child; x; x = x->next, nd++) {
        if (nd >= AC_DUMP_MAX_DIMS)
            return ac_fail(err, AC_ERR_SHAPE, "tensor '%s': more than %d dimensions", name, AC_DUMP_MAX_DIMS);
        uint64_t v;
        if (json_uint(x, INT32_MAX, &v))
            return ac_fail(err, AC_ERR_SHAPE, "tensor '%s' dim %d: not an integer in [0, 2^31)", name, nd);
        t->shape[nd] = (int64_t)v;
        /* count <= 2^62 / 8 keeps count * 8 bytes exact; a larger tensor cannot be in any file */
        if (v && count > ((uint64_t)1 << 59) / v)
            return ac_fail(err, AC_ERR_SHAPE, "tensor '%s': element count overflows at dim %d", name, nd);
        count *= v;
    }
    t->ndim = nd;
    t->count = count;
    if (!cJSON_IsArray(off) || cJSON_GetArraySize(off) != 2)
        return ac_fail(err, AC_ERR_PARSE, "tensor '%s': data_offsets is not [begin, end]", name);
    if (json_uint(off->child, (uint64_t)MAX_SAFE_INT, &t->begin) ||
        json_uint(off->child->next, (uint64_t)MAX_SAFE_INT, &t->end))
        return ac_fail(err, AC_ERR_PARSE, "tensor '%s': data_offsets hold a non-integer or negative value", name);
    if (t->begin > t->end || t->end > px->data_size)
        return ac_fail(err, AC_ERR_PARSE,
                       "tensor '%s': data_offsets [%llu, %llu] outside the data section (%llu bytes)", name,
                       (unsigned long long)t->begin, (unsigned long long)t->end, (unsigned long long)px->data_size);
    uint64_t want = count * (uint64_t)tdtype_bytes[d];
    if (t->end - t->begin != want)
        return ac_fail(err, AC_ERR_SHAPE, "tensor '%s': data_offsets span %llu bytes; %s x shape needs %llu", name,
                       (unsigned long long)(t->end - t->begin), tdtype_names[d], (unsigned long long)want);
    t->data = px->data + t->begin;
    t->present = 1;
    return AC_OK;
}

static int cmp_u64_pair(const void *a, const void *b)
{
    const uint64_t *x = a, *y = b;
    return (x[0] > y[0]) - (x[0] < y[0]);
}

/* The safetensors layer: header length, JSON, entries, offsets. */
static ac_status parse_header(parse_ctx *px, cJSON **root_out, ac_error *err)
{
    *root_out = NULL;
    if (px->size < 8)
        return ac_fail(err, AC_ERR_PARSE, "file is %zu bytes: shorter than the 8-byte header length", px->size);
    uint64_t n = rd64(px->file);
    if (n == 0) return ac_fail(err, AC_ERR_PARSE, "header length is 0: no JSON header");
    if (n > AC_DUMP_MAX_HEADER_BYTES)
        return ac_fail(err, AC_ERR_PARSE, "header length %llu: over the %u-byte limit", (unsigned long long)n,
                       AC_DUMP_MAX_HEADER_BYTES);
    if (n > px->size - 8)
        return ac_fail(err, AC_ERR_PARSE, "header length %llu: past the end of the file (%zu bytes)",
                       (unsigned long long)n, px->size);
    px->data = px->file + 8 + n;
    px->data_size = px->size - 8 - n;
    const char *json = (const char *)px->file + 8, *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(json, (size_t)n, &end, 0);
    if (!root) {
        long at = end && end >= json && end <= json + n ? (long)(end - json) : -1;
        return ac_fail(err, AC_ERR_PARSE, "header: JSON syntax error near byte %ld", at);
    }
    *root_out = root;
    /* The standard pads the header with spaces; nothing else may follow the JSON. */
    for (const char *p = end; p && p < json + n; p++)
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r')
            return ac_fail(err, AC_ERR_PARSE, "header: bytes after the JSON object at byte %ld", (long)(p - json));
    if (!cJSON_IsObject(root)) return ac_fail(err, AC_ERR_PARSE, "header: not a JSON object");
    int have_meta = 0;
    for (const cJSON *e = root->child; e; e = e->next) {
        if (!strcmp(e->string, "__metadata__")) {
            if (have_meta) return ac_fail(err, AC_ERR_PARSE, "header: key '__metadata__' given twice");
            have_meta = 1;
            if (!cJSON_IsObject(e)) return ac_fail(err, AC_ERR_PARSE, "header: __metadata__ is not an object");
            for (const cJSON *m = e->child; m; m = m->next) {
                if (!cJSON_IsString(m))
                    return ac_fail(err, AC_ERR_PARSE, "__metadata__ key '%.40s': value is not a string", m->string);
                if (!strcmp(m->string, "attncheck")) {
                    if (px->meta_text) return ac_fail(err, AC_ERR_PARSE, "__metadata__ key 'attncheck' given twice");
                    px->meta_text = m->valuestring;
                }
                /* other __metadata__ entries (a writer's own) are not attncheck's: ignored */
            }
            continue;
        }
        int which = 0;
        while (which < TN_COUNT && strcmp(e->string, tn_names[which])) which++;
        if (which == TN_COUNT) return ac_fail(err, AC_ERR_PARSE, "tensor '%.40s': unknown name", e->string);
        if (px->tn[which].present) return ac_fail(err, AC_ERR_PARSE, "tensor '%s': given twice", tn_names[which]);
        ac_status st = parse_tensor_entry(px, e, which, err);
        if (st) return st;
    }
    if (!px->meta_text)
        return ac_fail(err, AC_ERR_PARSE, "__metadata__ key 'attncheck' missing: not an attncheck dump");
    /* Tensors may not overlap (safetensors requires it; two names sharing bytes is a writer bug). */
    uint64_t spans[TN_COUNT][2];
    int ns = 0;
    for (int i = 0; i < TN_COUNT; i++)
        if (px->tn[i].present && px->tn[i].end > px->tn[i].begin) {
            spans[ns][0] = px->tn[i].begin;
            spans[ns][1] = px->tn[i].end;
            ns++;
        }
    qsort(spans, (size_t)ns, sizeof spans[0], cmp_u64_pair);
    for (int i = 1; i < ns; i++)
        if (spans[i][0] < spans[i - 1][1])
            return ac_fail(err, AC_ERR_PARSE, "data_offsets: byte %llu is inside two tensors",
                           (unsigned long long)spans[i][0]);
    return AC_OK;
}

/* ---- the attncheck metadata ------------------------------------------------------ */

enum {
    MK_FORMAT = 0, MK_VERSION, MK_OP, MK_CAUSAL, MK_SCALE, MK_LAYOUT, MK_KV_LAYOUT, MK_LSE_BASE, MK_LSE_LAYOUT,
    MK_EMPTY_ROW, MK_COMBINE_EMPTY, MK_MASK, MK_LIBRARY, MK_LIBRARY_VERSION, MK_NOTE, MK_OUT_DTYPE,
    MK_WINDOW_LEFT, MK_WINDOW_RIGHT, MK_SOFTCAP, MK_COUNT
};
static const char *const mk_names[MK_COUNT] = {
    "format", "version", "op", "causal", "scale", "layout", "kv_layout", "lse_base", "lse_layout",
    "empty_row", "combine_empty", "mask", "library", "library_version", "note", "out_dtype",
    "window_left", "window_right", "softcap",
};

/* A string value that must be one of `choices`; *out = its index. */
static ac_status pick(const cJSON *v, int key, const char *const *choices, int n, int *out, ac_error *err)
{
    char list[160];
    size_t len = 0;
    list[0] = '\0';
    for (int i = 0; i < n && len < sizeof list; i++)
        len += (size_t)snprintf(list + len, sizeof list - len, "%s%s", i ? ", " : "", choices[i]);
    if (!cJSON_IsString(v))
        return ac_fail(err, AC_ERR_PARSE, "metadata key '%s': not a string (one of %s)", mk_names[key], list);
    for (int i = 0; i < n; i++)
        if (!strcmp(v->valuestring, choices[i])) {
            *out = i;
            return AC_OK;
        }
    return ac_fail(err, AC_ERR_PARSE, "metadata key '%s' = \"%.24s\": must be one of %s", mk_names[key],
                   v->valuestring, list);
}

static ac_status parse_meta(parse_ctx *px, ac_dump_conv *cv, ac_error *err)
{
    cJSON *m = cJSON_ParseWithLength(px->meta_text, strlen(px->meta_text));
    if (!m) return ac_fail(err, AC_ERR_PARSE, "metadata 'attncheck': not valid JSON");
    ac_status st = AC_OK;
    const cJSON *val[MK_COUNT] = {0};
    if (!cJSON_IsObject(m)) {
        st = ac_fail(err, AC_ERR_PARSE, "metadata 'attncheck': not a JSON object");
        goto out;
    }
    for (const cJSON *k = m->child; k; k = k->next) {
        int i = 0;
        while (i < MK_COUNT && strcmp(k->string, mk_names[i])) i++;
        if (i == MK_COUNT) {
            st = ac_fail(err, AC_ERR_PARSE, "metadata key '%.40s': unknown", k->string);
            goto out;
        }
        if (val[i]) {
            st = ac_fail(err, AC_ERR_PARSE, "metadata key '%s': given twice", mk_names[i]);
            goto out;
        }
        val[i] = k;
    }
    for (int req = MK_FORMAT; req <= MK_OP; req++)
        if (!val[req]) {
            st = ac_fail(err, AC_ERR_PARSE, "metadata key '%s': missing", mk_names[req]);
            goto out;
        }
    static const char *const formats[] = {"attncheck-dump"};
    int idx;
    if ((st = pick(val[MK_FORMAT], MK_FORMAT, formats, 1, &idx, err))) goto out;
    uint64_t version;
    if (json_uint(val[MK_VERSION], 1000000, &version)) {
        st = ac_fail(err, AC_ERR_PARSE, "metadata key 'version': not a non-negative integer");
        goto out;
    }
    if (version != 1) {
        st = ac_fail(err, AC_ERR_UNSUPPORTED, "metadata key 'version' = %llu: this reader knows version 1",
                     (unsigned long long)version);
        goto out;
    }
    static const char *const ops[] = {"prefill", "decode", "combine", "store"};
    static const ac_op op_of[] = {AC_OP_PREFILL, AC_OP_DECODE, AC_OP_COMBINE, AC_OP_STORE};
    if ((st = pick(val[MK_OP], MK_OP, ops, 4, &idx, err))) goto out;
    px->op = op_of[idx];
    int attention = px->op == AC_OP_PREFILL || px->op == AC_OP_DECODE;
    /* What the attention call computes is never defaulted: a missing causal
       mode or scale would be a guess. */
    if (attention && (!val[MK_CAUSAL] || !val[MK_SCALE])) {
        st = ac_fail(err, AC_ERR_PARSE, "metadata key '%s': missing (required for %s)",
                     !val[MK_CAUSAL] ? "causal" : "scale", ops[idx]);
        goto out;
    }
    static const char *const causals[] = {"none", "TL", "BR"};
    static const ac_causal causal_of[] = {AC_CAUSAL_NONE, AC_CAUSAL_TOP_LEFT, AC_CAUSAL_BOTTOM_RIGHT};
    px->causal = AC_CAUSAL_NONE;
    if (val[MK_CAUSAL]) {
        if ((st = pick(val[MK_CAUSAL], MK_CAUSAL, causals, 3, &idx, err))) goto out;
        px->causal = causal_of[idx];
    }
    px->scale_default = 1;
    if (val[MK_SCALE]) {
        const cJSON *s = val[MK_SCALE];
        if (cJSON_IsString(s) && !strcmp(s->valuestring, "default")) {
            px->scale_default = 1;
        } else if (cJSON_IsNumber(s) && isfinite(s->valuedouble) && fabs(s->valuedouble) <= (double)FLT_MAX) {
            px->scale_default = 0;
            px->scale = s->valuedouble;
        } else {
            st = ac_fail(err, AC_ERR_PARSE,
                         "metadata key 'scale': must be \"default\" or a finite number (fp32 range)");
            goto out;
        }
    }
    static const char *const layouts[] = {"NHD", "HND"};
    if (val[MK_LAYOUT] && (st = pick(val[MK_LAYOUT], MK_LAYOUT, layouts, 2, &cv->layout_hnd, err))) goto out;
    if (val[MK_KV_LAYOUT] && (st = pick(val[MK_KV_LAYOUT], MK_KV_LAYOUT, layouts, 2, &cv->kv_layout_hnd, err)))
        goto out;
    static const char *const bases[] = {"e", "2"};
    if (val[MK_LSE_BASE] && (st = pick(val[MK_LSE_BASE], MK_LSE_BASE, bases, 2, &cv->lse_base2, err))) goto out;
    static const char *const lse_layouts[] = {"TH", "HT"};
    if (val[MK_LSE_LAYOUT] && (st = pick(val[MK_LSE_LAYOUT], MK_LSE_LAYOUT, lse_layouts, 2, &cv->lse_ht, err)))
        goto out;
    if (val[MK_EMPTY_ROW]) {
        if ((st = pick(val[MK_EMPTY_ROW], MK_EMPTY_ROW, empty_names, AC_EMPTY_COUNT, &idx, err))) goto out;
        cv->empty_row = (ac_empty_rule)idx;
    }
    if (val[MK_COMBINE_EMPTY]) {
        st = pick(val[MK_COMBINE_EMPTY], MK_COMBINE_EMPTY, combine_empty_names, AC_COMBINE_EMPTY_COUNT, &idx, err);
        if (st) goto out;
        cv->combine_empty = (ac_combine_empty)idx;
    }
    static const char *const masks[] = {"none", "bool", "additive"};
    static const ac_mask_kind mask_of[] = {AC_MASK_NONE, AC_MASK_BOOL, AC_MASK_ADDITIVE};
    px->mask = AC_MASK_NONE;
    if (val[MK_MASK]) {
        if ((st = pick(val[MK_MASK], MK_MASK, masks, 3, &idx, err))) goto out;
        px->mask = mask_of[idx];
    }
    /* The features (docs/CONTRACT.md): a window side is an integer >= -1 (-1
       unbounded, the default), softcap a finite number >= 0 (0 none). A
       combine or a store takes none: a key for them is refused, not ignored,
       since the call it describes would not be the one judged. */
    px->window_left = px->window_right = -1;
    for (int key = MK_WINDOW_LEFT; key <= MK_SOFTCAP; key++) {
        const cJSON *v = val[key];
        if (!v) continue;
        if (!attention) {
            st = ac_fail(err, AC_ERR_PARSE, "metadata key '%s': %s takes no window, softcap, ALiBi or sinks",
                         mk_names[key], ac_op_name(px->op));
            goto out;
        }
        if (key == MK_SOFTCAP) {
            if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble < 0.0 ||
                v->valuedouble > (double)FLT_MAX) {
                st = ac_fail(err, AC_ERR_PARSE, "metadata key 'softcap': must be a finite number >= 0 (0 = none)");
                goto out;
            }
            px->softcap = v->valuedouble;
            continue;
        }
        double w = cJSON_IsNumber(v) ? v->valuedouble : NAN;
        if (!(w >= -1.0 && w <= (double)INT32_MAX) || w != floor(w)) {
            st = ac_fail(err, AC_ERR_PARSE, "metadata key '%s': must be an integer >= -1 (-1 = unbounded)",
                         mk_names[key]);
            goto out;
        }
        if (key == MK_WINDOW_LEFT) px->window_left = (int32_t)w;
        else px->window_right = (int32_t)w;
    }
    static const char *const out_dtypes[] = {"same", "float32"};
    if (val[MK_OUT_DTYPE] && (st = pick(val[MK_OUT_DTYPE], MK_OUT_DTYPE, out_dtypes, 2, &px->out_f32_declared, err)))
        goto out;
    struct { int key; char *dst; size_t n; } texts[] = {
        {MK_LIBRARY, cv->library, sizeof cv->library},
        {MK_LIBRARY_VERSION, cv->library_version, sizeof cv->library_version},
        {MK_NOTE, cv->note, sizeof cv->note},
    };
    for (size_t i = 0; i < sizeof texts / sizeof *texts; i++) {
        const cJSON *v = val[texts[i].key];
        if (!v) continue;
        if (!cJSON_IsString(v)) {
            st = ac_fail(err, AC_ERR_PARSE, "metadata key '%s': not a string", mk_names[texts[i].key]);
            goto out;
        }
        snprintf(texts[i].dst, texts[i].n, "%s", v->valuestring);
    }
out:
    cJSON_Delete(m);
    return st;
}

/* ---- shape checks ------------------------------------------------------------------ */

static ac_status need(const parse_ctx *px, int which, ac_error *err)
{
    if (!px->tn[which].present)
        return ac_fail(err, AC_ERR_PARSE, "tensor '%s': missing (required for %s)", tn_names[which],
                       ac_op_name(px->op));
    return AC_OK;
}

/* Shape must be exactly `want` (ndim entries); `what` names each dim's meaning. */
static ac_status check_shape(const tensor *t, int which, int ndim, const int64_t *want, const char *const *what,
                             ac_error *err)
{
    if (t->ndim != ndim)
        return ac_fail(err, AC_ERR_SHAPE, "tensor '%s': %d dimensions, expected %d", tn_names[which], t->ndim, ndim);
    for (int i = 0; i < ndim; i++)
        if (want[i] >= 0 && t->shape[i] != want[i])
            return ac_fail(err, AC_ERR_SHAPE, "tensor '%s' dim %d = %lld: expected %lld (%s)", tn_names[which], i,
                           (long long)t->shape[i], (long long)want[i], what[i]);
    return AC_OK;
}

static ac_status check_dtype(const tensor *t, int which, uint32_t allowed, ac_error *err)
{
    if (allowed & BIT(t->dt)) return AC_OK;
    char list[64];
    size_t len = 0;
    list[0] = '\0';
    for (int d = 0; d < T_COUNT; d++)
        if (allowed & BIT(d))
            len += (size_t)snprintf(list + len, sizeof list - len, "%s%s", len ? " or " : "", tdtype_names[d]);
    return ac_fail(err, AC_ERR_UNSUPPORTED, "tensor '%s': dtype %s: must be %s", tn_names[which], tdtype_names[t->dt],
                   list);
}

#define HALF_TYPES (BIT(T_F16) | BIT(T_BF16))
#define INT_TYPES (BIT(T_I32) | BIT(T_I64))

/* An integer tensor read into int32 (every element must fit). */
static ac_status read_i32(const tensor *t, int which, int32_t *dst, ac_error *err)
{
    for (uint64_t i = 0; i < t->count; i++) {
        int64_t v = tensor_int(t, i);
        if (v < INT32_MIN || v > INT32_MAX)
            return ac_fail(err, AC_ERR_SHAPE, "tensor '%s' element %llu = %lld: outside int32", tn_names[which],
                           (unsigned long long)i, (long long)v);
        dst[i] = (int32_t)v;
    }
    return AC_OK;
}

static ac_dtype case_dtype(tdtype t) { return t == T_F16 ? AC_FP16 : AC_BF16; }

/* The kernel's `out` [rows * D] into both output arrays. */
static ac_status load_out(const tensor *t, int swap, int64_t nA, int64_t nB, int64_t inner, ac_dtype dtype,
                          ac_outputs *o, ac_error *err)
{
    size_t n = (size_t)(nA * nB * inner);
    o->o = xcalloc(n, sizeof(uint16_t));
    o->o_f32 = xcalloc(n, sizeof(float));
    if (!o->o || !o->o_f32) return ac_fail(err, AC_ERR_NOMEM, "out: out of memory for %zu elements", n);
    if (t->dt == T_F32) {
        load_f32(t, swap, 1, nA, nB, inner, o->o_f32);
        for (size_t i = 0; i < n; i++) o->o[i] = ac_f32_to_half(dtype, o->o_f32[i]);
    } else {
        load_u16(t, swap, 1, nA, nB, inner, o->o);
        for (size_t i = 0; i < n; i++) o->o_f32[i] = ac_half_to_f32(dtype, o->o[i]);
    }
    return AC_OK;
}

static ac_status load_lse(parse_ctx *px, ac_dump *d, int64_t rows_t, int64_t heads, ac_error *err)
{
    const tensor *t = &px->tn[TN_LSE];
    if (!t->present) return AC_OK;
    ac_status st = check_dtype(t, TN_LSE, BIT(T_F32), err);
    if (st) return st;
    d->conv.has_lse = 1;
    d->out.lse = xcalloc((size_t)(rows_t * heads), sizeof(float));
    d->lse_file = xcalloc((size_t)(rows_t * heads), sizeof(float));
    if (!d->out.lse || !d->lse_file) return ac_fail(err, AC_ERR_NOMEM, "lse: out of memory");
    load_f32(t, d->conv.lse_ht, 1, rows_t, heads, 1, d->out.lse);
    load_f32(t, 0, 1, 1, 1, rows_t * heads, d->lse_file);
    return AC_OK;
}

/* ---- the ops ------------------------------------------------------------------------- */

/* The window and softcap from the metadata, the per-head ALiBi slopes and
   sinks from their F32 [Hq] tensors (validation then names a non-finite
   slope, a NaN or +inf sink). */
static ac_status load_features(const parse_ctx *px, ac_case *c, ac_error *err)
{
    c->window_left = px->window_left;
    c->window_right = px->window_right;
    c->softcap = (float)px->softcap;
    const int which[2] = {TN_ALIBI, TN_SINKS};
    for (int k = 0; k < 2; k++) {
        const tensor *t = &px->tn[which[k]];
        if (!t->present) continue;
        ac_status st = check_dtype(t, which[k], BIT(T_F32), err);
        if (st) return st;
        const int64_t want[1] = {c->heads_q};
        const char *const what[1] = {"Hq"};
        if ((st = check_shape(t, which[k], 1, want, what, err))) return st;
        float *v = xcalloc((size_t)c->heads_q, sizeof(float));
        if (!v) return ac_fail(err, AC_ERR_NOMEM, "%s: out of memory", tn_names[which[k]]);
        for (int32_t h = 0; h < c->heads_q; h++) v[h] = tensor_f32(t, (uint64_t)h);
        st = k == 0 ? ac_case_set_alibi(c, v, c->heads_q, err) : ac_case_set_sinks(c, v, c->heads_q, err);
        free(v);
        if (st) return st;
    }
    return AC_OK;
}

/* The format of a K/V pair (k, v; the caches; a store's caches before and
   after): both in the case dtype `half`, or both one FP8 dtype. A pair that
   mixes them is refused by name: one format holds a whole cache. */
static ac_status kv_pair_format(const tensor *k, int wk, const tensor *v, int wv, tdtype half, ac_kv_format *f,
                                ac_error *err)
{
    if (v->dt != k->dt && ((BIT(k->dt) | BIT(v->dt)) & FP8_TYPES))
        return ac_fail(err, AC_ERR_UNSUPPORTED, "tensor '%s': dtype %s while '%s' is %s: K and V share one format",
                       tn_names[wv], tdtype_names[v->dt], tn_names[wk], tdtype_names[k->dt]);
    ac_status st;
    if ((st = check_dtype(k, wk, BIT(half) | FP8_TYPES, err)) || (st = check_dtype(v, wv, BIT(half) | FP8_TYPES, err)))
        return st;
    *f = k->dt == T_F8E4M3 ? AC_KV_E4M3 : k->dt == T_F8E5M2 ? AC_KV_E5M2 : AC_KV_AS_DTYPE;
    return AC_OK;
}

/* The dequantisation scales: F32 tensors k_scale and v_scale, both or
   neither, each [] or [1] (per tensor) or [Hkv] (per KV head), only with an
   FP8 cache. Their values are checked by validation (finite, [2^-64, 2^64]). */
static ac_status load_kv_scales(const parse_ctx *px, ac_case *c, ac_error *err)
{
    const tensor *ks = &px->tn[TN_K_SCALE], *vs = &px->tn[TN_V_SCALE];
    if (!ks->present && !vs->present) return AC_OK;
    if (!ks->present || !vs->present)
        return ac_fail(err, AC_ERR_PARSE, "tensor '%s': missing ('%s' is given: both scales or neither)",
                       ks->present ? "v_scale" : "k_scale", ks->present ? "k_scale" : "v_scale");
    if (c->kv_format == AC_KV_AS_DTYPE)
        return ac_fail(err, AC_ERR_PARSE, "tensor 'k_scale': given with K/V in the case dtype (scales go with "
                       "F8_E4M3 / F8_E5M2 K/V only)");
    int64_t n[2];
    const tensor *ts[2] = {ks, vs};
    const int which[2] = {TN_K_SCALE, TN_V_SCALE};
    for (int i = 0; i < 2; i++) {
        ac_status st = check_dtype(ts[i], which[i], BIT(T_F32), err);
        if (st) return st;
        n[i] = ts[i]->ndim == 0 ? 1 : ts[i]->ndim == 1 ? ts[i]->shape[0] : -1;
        if (n[i] != 1 && n[i] != c->heads_kv)
            return ac_fail(err, AC_ERR_SHAPE, "tensor '%s': shape must be [] or [1] (per tensor) or [Hkv = %d] "
                           "(per KV head)", tn_names[which[i]], c->heads_kv);
    }
    if (n[0] != n[1])
        return ac_fail(err, AC_ERR_SHAPE, "tensor 'v_scale': %lld entries while 'k_scale' has %lld: both per tensor "
                       "or both per KV head", (long long)n[1], (long long)n[0]);
    float k[AC_MAX_HEADS], v[AC_MAX_HEADS];
    for (int64_t g = 0; g < n[0]; g++) {
        k[g] = tensor_f32(ks, (uint64_t)g);
        v[g] = tensor_f32(vs, (uint64_t)g);
    }
    return ac_case_set_kv_scales(c, k, v, (int32_t)n[0], err);
}

static ac_status build_attention(parse_ctx *px, ac_dump *d, ac_error *err)
{
    ac_case *c = &d->c;
    ac_tensors *t = &d->t;
    ac_dump_conv *cv = &d->conv;
    ac_status st;
    if ((st = need(px, TN_Q, err)) || (st = need(px, TN_OUT, err))) return st;
    const tensor *q = &px->tn[TN_Q];
    if ((st = check_dtype(q, TN_Q, HALF_TYPES, err))) return st;
    if (q->ndim != 3)
        return ac_fail(err, AC_ERR_SHAPE, "tensor 'q': %d dimensions, expected 3 (%s)", q->ndim,
                       cv->layout_hnd ? "[Hq, total_q, D]" : "[total_q, Hq, D]");
    const int hnd = cv->layout_hnd, tok = hnd ? 1 : 0, hd = hnd ? 0 : 1;
    const int64_t Tq = q->shape[tok], Hq = q->shape[hd], D = q->shape[2];
    if (Hq < 1 || Hq > AC_MAX_HEADS)
        return ac_fail(err, AC_ERR_SHAPE, "tensor 'q' dim %d = %lld (Hq): must be in [1, %d]", hd, (long long)Hq,
                       AC_MAX_HEADS);
    if (D < 1 || D > AC_MAX_HEAD_DIM)
        return ac_fail(err, AC_ERR_SHAPE, "tensor 'q' dim 2 = %lld (D): must be in [1, %d]", (long long)D,
                       AC_MAX_HEAD_DIM);
    int paged = px->tn[TN_K_CACHE].present || px->tn[TN_V_CACHE].present || px->tn[TN_BLOCK_TABLE].present ||
                px->tn[TN_SEQLENS_K].present;
    int contiguous = px->tn[TN_K].present || px->tn[TN_V].present || px->tn[TN_CU_K].present;
    if (paged && contiguous)
        return ac_fail(err, AC_ERR_PARSE, "tensor '%s' with '%s': a dump is contiguous (k, v, cu_seqlens_k) or paged "
                       "(k_cache, v_cache, block_table, seqlens_k), not both",
                       px->tn[TN_K].present ? "k" : px->tn[TN_V].present ? "v" : "cu_seqlens_k",
                       px->tn[TN_K_CACHE].present ? "k_cache" : px->tn[TN_V_CACHE].present ? "v_cache"
                       : px->tn[TN_BLOCK_TABLE].present ? "block_table" : "seqlens_k");
    if (px->op == AC_OP_DECODE) paged = 1; /* decode reads a paged cache: its tensors are required below */
    if (paged) {
        if ((st = need(px, TN_K_CACHE, err)) || (st = need(px, TN_V_CACHE, err)) ||
            (st = need(px, TN_BLOCK_TABLE, err)) || (st = need(px, TN_SEQLENS_K, err)))
            return st;
    } else if ((st = need(px, TN_K, err)) || (st = need(px, TN_V, err))) {
        return st;
    }

    /* B: from cu_seqlens_q, else from the other per-sequence tensors, else 1. */
    const tensor *cuq = &px->tn[TN_CU_Q];
    int64_t B = 1;
    if (cuq->present) {
        if ((st = check_dtype(cuq, TN_CU_Q, INT_TYPES, err))) return st;
        if (cuq->ndim != 1 || cuq->shape[0] < 1)
            return ac_fail(err, AC_ERR_SHAPE, "tensor 'cu_seqlens_q': shape must be [B + 1] with B >= 0");
        B = cuq->shape[0] - 1;
    }
    if (B > AC_MAX_BATCH)
        return ac_fail(err, AC_ERR_SHAPE, "tensor 'cu_seqlens_q' dim 0 = %lld: B over %d", (long long)B + 1,
                       AC_MAX_BATCH);
    if ((st = ac_case_set_batch(c, (int32_t)B, err))) return st;
    t->cu_seqlens_q = xcalloc((size_t)B + 1, sizeof(int32_t));
    t->cu_seqlens_k = xcalloc((size_t)B + 1, sizeof(int32_t));
    if (!t->cu_seqlens_q || !t->cu_seqlens_k) return ac_fail(err, AC_ERR_NOMEM, "cu_seqlens: out of memory");
    if (cuq->present) {
        if ((st = read_i32(cuq, TN_CU_Q, t->cu_seqlens_q, err))) return st;
    } else {
        t->cu_seqlens_q[1] = Tq > INT32_MAX ? INT32_MAX : (int32_t)Tq;
    }
    if ((st = ac_validate_cu_seqlens("cu_seqlens_q", t->cu_seqlens_q, (int32_t)B, Tq, err))) return st;
    for (int64_t b = 0; b < B; b++) c->seqlen_q[b] = t->cu_seqlens_q[b + 1] - t->cu_seqlens_q[b];

    const char *const nhd_what[3] = {"total tokens", "heads", "D"};
    const char *const hnd_what[3] = {"heads", "total tokens", "D"};
    int64_t Hkv, Dv;
    const int kv_swap = cv->kv_layout_hnd;
    if (!paged) {
        const tensor *k = &px->tn[TN_K], *v = &px->tn[TN_V];
        if ((st = kv_pair_format(k, TN_K, v, TN_V, q->dt, &c->kv_format, err))) return st;
        if (k->ndim != 3) return ac_fail(err, AC_ERR_SHAPE, "tensor 'k': %d dimensions, expected 3", k->ndim);
        int64_t want[3];
        want[tok] = -1;
        want[hd] = -1;
        want[2] = D;
        if ((st = check_shape(k, TN_K, 3, want, hnd ? hnd_what : nhd_what, err))) return st;
        const int64_t Tk = k->shape[tok];
        Hkv = k->shape[hd];
        /* v: k's tokens and heads, its own last dim D_v */
        const int64_t wv[3] = {k->shape[0], k->shape[1], -1};
        if ((st = check_shape(v, TN_V, 3, wv, hnd ? hnd_what : nhd_what, err))) return st;
        Dv = v->shape[2];
        if (Dv < 1 || Dv > AC_MAX_HEAD_DIM)
            return ac_fail(err, AC_ERR_SHAPE, "tensor 'v' dim 2 = %lld (D_v): must be in [1, %d]", (long long)Dv,
                           AC_MAX_HEAD_DIM);
        const tensor *cuk = &px->tn[TN_CU_K];
        if (cuk->present) {
            const int64_t w[1] = {B + 1};
            const char *const what[1] = {cuq->present ? "B + 1, from cu_seqlens_q" : "2: B = 1 without cu_seqlens_q"};
            if ((st = check_dtype(cuk, TN_CU_K, INT_TYPES, err)) || (st = check_shape(cuk, TN_CU_K, 1, w, what, err)) ||
                (st = read_i32(cuk, TN_CU_K, t->cu_seqlens_k, err)))
                return st;
        } else if (B != 1) {
            return ac_fail(err, AC_ERR_PARSE, "tensor 'cu_seqlens_k': missing (required with B = %lld sequences)",
                           (long long)B);
        } else {
            t->cu_seqlens_k[1] = Tk > INT32_MAX ? INT32_MAX : (int32_t)Tk;
        }
        if ((st = ac_validate_cu_seqlens("cu_seqlens_k", t->cu_seqlens_k, (int32_t)B, Tk, err))) return st;
        for (int64_t b = 0; b < B; b++) c->seqlen_k[b] = t->cu_seqlens_k[b + 1] - t->cu_seqlens_k[b];
        if (Hkv < 1 || Hkv > AC_MAX_HEADS)
            return ac_fail(err, AC_ERR_SHAPE, "tensor 'k' dim %d = %lld (Hkv): must be in [1, %d]", hd,
                           (long long)Hkv, AC_MAX_HEADS);
        t->kv_elems = Tk * Hkv * D;
        t->v_elems = Tk * Hkv * Dv;
        t->k = xcalloc((size_t)t->kv_elems, sizeof(uint16_t));
        t->v = xcalloc((size_t)t->v_elems, sizeof(uint16_t));
        if (!t->k || !t->v) return ac_fail(err, AC_ERR_NOMEM, "k/v: out of memory");
        load_u16(k, hnd, 1, Tk, Hkv, D, t->k);
        load_u16(v, hnd, 1, Tk, Hkv, Dv, t->v);
    } else {
        const tensor *kc = &px->tn[TN_K_CACHE], *vc = &px->tn[TN_V_CACHE];
        const tensor *bt = &px->tn[TN_BLOCK_TABLE], *sk = &px->tn[TN_SEQLENS_K];
        if ((st = kv_pair_format(kc, TN_K_CACHE, vc, TN_V_CACHE, q->dt, &c->kv_format, err))) return st;
        const char *const nhd4[4] = {"blocks", "block_size", "Hkv", "D"};
        const char *const hnd4[4] = {"blocks", "Hkv", "block_size", "D"};
        const int64_t w4[4] = {-1, -1, -1, D};
        const int64_t wv4[4] = {kc->shape[0], kc->shape[1], kc->shape[2], -1};
        if ((st = check_shape(kc, TN_K_CACHE, 4, w4, kv_swap ? hnd4 : nhd4, err)) ||
            (st = check_shape(vc, TN_V_CACHE, 4, wv4, kv_swap ? hnd4 : nhd4, err)))
            return st;
        Dv = vc->shape[3];
        if (Dv < 1 || Dv > AC_MAX_HEAD_DIM)
            return ac_fail(err, AC_ERR_SHAPE, "tensor 'v_cache' dim 3 = %lld (D_v): must be in [1, %d]", (long long)Dv,
                           AC_MAX_HEAD_DIM);
        const int64_t NB = kc->shape[0], BS = kc->shape[kv_swap ? 2 : 1];
        Hkv = kc->shape[kv_swap ? 1 : 2];
        if (Hkv < 1 || Hkv > AC_MAX_HEADS)
            return ac_fail(err, AC_ERR_SHAPE, "tensor 'k_cache' dim %d = %lld (Hkv): must be in [1, %d]",
                           kv_swap ? 1 : 2, (long long)Hkv, AC_MAX_HEADS);
        if (NB < 1 || BS < 1)
            return ac_fail(err, AC_ERR_SHAPE, "tensor 'k_cache' dim %d = 0: an empty pool",
                           NB < 1 ? 0 : kv_swap ? 2 : 1);
        if ((st = check_dtype(bt, TN_BLOCK_TABLE, INT_TYPES, err)) ||
            (st = check_dtype(sk, TN_SEQLENS_K, INT_TYPES, err)))
            return st;
        const int64_t wb[2] = {B, -1};
        const char *const bwhat[2] = {cuq->present ? "B, from cu_seqlens_q" : "B = 1 without cu_seqlens_q",
                                      "max blocks per sequence"};
        if ((st = check_shape(bt, TN_BLOCK_TABLE, 2, wb, bwhat, err))) return st;
        const int64_t ws[1] = {B};
        const char *const swhat[1] = {bwhat[0]};
        if ((st = check_shape(sk, TN_SEQLENS_K, 1, ws, swhat, err))) return st;
        if ((st = read_i32(sk, TN_SEQLENS_K, c->seqlen_k, err))) return st;
        const int64_t MB = bt->shape[1];
        if (MB < 1) return ac_fail(err, AC_ERR_SHAPE, "tensor 'block_table' dim 1 = 0: no block per sequence");
        c->paged = 1;
        c->block_size = (int32_t)BS;
        c->num_blocks = (int32_t)NB;
        if ((st = ac_case_alloc_table(c, (int32_t)MB, err))) return st;
        /* Used entries must fit int32 (validation then checks their range);
           unused ones may hold anything and are kept as -1 when they do not fit. */
        for (int64_t b = 0; b < B; b++) {
            int64_t used = c->seqlen_k[b] < 0 ? 0 : ac_blocks_used(c->seqlen_k[b], (int32_t)BS);
            for (int64_t i = 0; i < MB; i++) {
                int64_t v = tensor_int(bt, (uint64_t)(b * MB + i));
                int fits = v >= INT32_MIN && v <= INT32_MAX;
                if (!fits && i < used)
                    return ac_fail(err, AC_ERR_BLOCK_TABLE, "tensor 'block_table' [%lld][%lld] = %lld: outside int32",
                                   (long long)b, (long long)i, (long long)v);
                c->block_table[b * MB + i] = fits ? (int32_t)v : -1;
            }
        }
        t->kv_elems = NB * BS * Hkv * D;
        t->v_elems = NB * BS * Hkv * Dv;
        t->k = xcalloc((size_t)t->kv_elems, sizeof(uint16_t));
        t->v = xcalloc((size_t)t->v_elems, sizeof(uint16_t));
        if (!t->k || !t->v) return ac_fail(err, AC_ERR_NOMEM, "k_cache/v_cache: out of memory");
        load_u16(kc, kv_swap, NB, BS, Hkv, D, t->k);
        load_u16(vc, kv_swap, NB, BS, Hkv, Dv, t->v);
    }

    c->op = px->op;
    c->dtype = case_dtype(q->dt);
    c->heads_q = (int32_t)Hq;
    c->heads_kv = (int32_t)Hkv;
    c->head_dim = (int32_t)D;
    c->head_dim_v = Dv == D ? 0 : (int32_t)Dv;
    c->causal = px->causal;
    c->scale_given = !px->scale_default;
    c->scale = c->scale_given ? (float)px->scale : 0.0f;
    c->num_splits = px->op == AC_OP_DECODE ? 0 : 1;
    const tensor *ns = &px->tn[TN_NUM_SPLITS];
    if (ns->present) {
        if ((st = check_dtype(ns, TN_NUM_SPLITS, INT_TYPES, err))) return st;
        if (ns->count != 1 || ns->ndim > 1)
            return ac_fail(err, AC_ERR_SHAPE, "tensor 'num_splits': must be a scalar ([] or [1])");
        int64_t v = tensor_int(ns, 0);
        if (v < 0 || v > AC_MAX_SPLITS)
            return ac_fail(err, AC_ERR_SHAPE, "tensor 'num_splits' = %lld: must be in [0, %d] (0 = automatic)",
                           (long long)v, AC_MAX_SPLITS);
        c->num_splits = (int32_t)v;
    }
    if ((st = load_features(px, c, err)) || (st = load_kv_scales(px, c, err))) return st;
    if ((st = ac_case_validate(c, err))) return st; /* lengths, GQA, table range, capacity: before sizing by them */
    if (paged) /* validation bounds the total by 2^31 - 1 */
        for (int64_t b = 0; b < B; b++) t->cu_seqlens_k[b + 1] = t->cu_seqlens_k[b] + c->seqlen_k[b];
    t->total_q = Tq;
    t->total_k = ac_case_total_k(c);

    /* q and out */
    t->q = xcalloc((size_t)(Tq * Hq * D), sizeof(uint16_t));
    if (!t->q) return ac_fail(err, AC_ERR_NOMEM, "q: out of memory");
    load_u16(q, hnd, 1, Tq, Hq, D, t->q);
    const tensor *o = &px->tn[TN_OUT];
    if ((st = check_dtype(o, TN_OUT, px->out_f32_declared ? BIT(T_F32) : BIT(q->dt), err))) return st;
    /* out: q's tokens and heads, v's last dim */
    const int64_t wo[3] = {q->shape[0], q->shape[1], Dv};
    const char *const nhd_out[3] = {"total tokens", "heads", "D_v, v's last dim"};
    const char *const hnd_out[3] = {"heads", "total tokens", "D_v, v's last dim"};
    if ((st = check_shape(o, TN_OUT, 3, wo, hnd ? hnd_out : nhd_out, err))) return st;
    cv->out_f32 = px->out_f32_declared;
    if ((st = load_out(o, hnd, Tq, Hq, Dv, c->dtype, &d->out, err))) return st;
    const tensor *l = &px->tn[TN_LSE];
    if (l->present) {
        const int64_t wl[2] = {cv->lse_ht ? Hq : Tq, cv->lse_ht ? Tq : Hq};
        const char *const th[2] = {"total_q", "Hq"}, *const ht[2] = {"Hq", "total_q"};
        if ((st = check_shape(l, TN_LSE, 2, wl, cv->lse_ht ? ht : th, err))) return st;
    }
    if ((st = load_lse(px, d, Tq, Hq, err))) return st;

    /* The mask: [Hm, sum_b Lq_b * Lk_b] packed per sequence -> [Hm, Lq_b, Lk_b] at mask_off[b]. */
    const tensor *mk = &px->tn[TN_MASK];
    c->mask = px->mask;
    if (px->mask == AC_MASK_NONE && mk->present)
        return ac_fail(err, AC_ERR_PARSE, "tensor 'mask': given while metadata key 'mask' is \"none\"");
    if (px->mask != AC_MASK_NONE) {
        if ((st = need(px, TN_MASK, err))) return st;
        if ((st = check_dtype(mk, TN_MASK, px->mask == AC_MASK_BOOL ? (BIT(T_BOOL) | BIT(T_U8)) : BIT(T_F32), err)))
            return st;
        int64_t P = 0;
        for (int64_t b = 0; b < B; b++) P += (int64_t)c->seqlen_q[b] * c->seqlen_k[b]; /* each <= 2^62 / 2^16 here */
        if (mk->ndim != 2 || (mk->shape[0] != 1 && mk->shape[0] != Hq) || mk->shape[1] != P)
            return ac_fail(err, AC_ERR_SHAPE, "tensor 'mask': shape must be [1 or Hq = %lld, sum_b Lq_b*Lk_b = %lld]%s",
                           (long long)Hq, (long long)P,
                           mk->ndim != 2 ? ": wrong number of dimensions"
                           : mk->shape[1] != P ? ": dim 1 differs" : ": dim 0 differs");
        const int64_t Hm = mk->shape[0];
        c->mask_per_head = Hm > 1;
        t->mask_off = xcalloc((size_t)B + 1, sizeof(int64_t));
        if (!t->mask_off) return ac_fail(err, AC_ERR_NOMEM, "mask: out of memory");
        for (int64_t b = 0; b < B; b++) t->mask_off[b + 1] = t->mask_off[b] + Hm * c->seqlen_q[b] * c->seqlen_k[b];
        size_t n = (size_t)(Hm * P);
        if (px->mask == AC_MASK_BOOL) t->mask_bool = xcalloc(n, 1);
        else t->mask_bias = xcalloc(n, sizeof(float));
        if (px->mask == AC_MASK_BOOL ? !t->mask_bool : !t->mask_bias)
            return ac_fail(err, AC_ERR_NOMEM, "mask: out of memory");
        int64_t pb = 0;
        for (int64_t b = 0; b < B; b++) {
            const int64_t lq = c->seqlen_q[b], lk = c->seqlen_k[b];
            for (int64_t h = 0; h < Hm; h++)
                for (int64_t i = 0; i < lq; i++)
                    for (int64_t j = 0; j < lk; j++) {
                        uint64_t src = (uint64_t)(h * P + pb + i * lk + j);
                        int64_t dst = t->mask_off[b] + (h * lq + i) * lk + j;
                        if (px->mask == AC_MASK_BOOL) t->mask_bool[dst] = mk->data[src] != 0;
                        else t->mask_bias[dst] = tensor_f32(mk, src);
                    }
            pb += lq * lk;
        }
    }
    return AC_OK;
}

static ac_status build_combine(parse_ctx *px, ac_dump *d, ac_error *err)
{
    ac_case *c = &d->c;
    ac_tensors *t = &d->t;
    ac_status st;
    if ((st = need(px, TN_O_PART, err)) || (st = need(px, TN_LSE_PART, err)) || (st = need(px, TN_OUT, err))) return st;
    const tensor *op = &px->tn[TN_O_PART], *lp = &px->tn[TN_LSE_PART], *o = &px->tn[TN_OUT];
    if ((st = check_dtype(op, TN_O_PART, BIT(T_F32), err)) || (st = check_dtype(lp, TN_LSE_PART, BIT(T_F32), err)))
        return st;
    if (op->ndim != 3)
        return ac_fail(err, AC_ERR_SHAPE, "tensor 'o_part': %d dimensions, expected 3 [rows, S, D]", op->ndim);
    const int64_t R = op->shape[0], S = op->shape[1], D = op->shape[2];
    if (S < 1 || S > AC_MAX_SPLITS)
        return ac_fail(err, AC_ERR_SHAPE, "tensor 'o_part' dim 1 = %lld (S): must be in [1, %d]", (long long)S,
                       AC_MAX_SPLITS);
    if (D < 1 || D > AC_MAX_HEAD_DIM)
        return ac_fail(err, AC_ERR_SHAPE, "tensor 'o_part' dim 2 = %lld (D): must be in [1, %d]", (long long)D,
                       AC_MAX_HEAD_DIM);
    const int64_t wl[2] = {R, S};
    const char *const lwhat[2] = {"rows, from o_part", "S, from o_part"};
    if ((st = check_shape(lp, TN_LSE_PART, 2, wl, lwhat, err))) return st;
    if ((st = check_dtype(o, TN_OUT, px->out_f32_declared ? BIT(T_F32) : (BIT(T_F32) | HALF_TYPES), err))) return st;
    const int64_t wo[2] = {R, D};
    const char *const owhat[2] = {"rows, from o_part", "D, from o_part"};
    if ((st = check_shape(o, TN_OUT, 2, wo, owhat, err))) return st;
    if ((st = ac_case_set_batch(c, 1, err))) return st;
    c->op = AC_OP_COMBINE;
    c->dtype = o->dt == T_F32 ? AC_BF16 : case_dtype(o->dt);
    c->seqlen_q[0] = (int32_t)R;
    c->heads_q = c->heads_kv = 1;
    c->head_dim = (int32_t)D;
    c->num_splits = (int32_t)S;
    if ((st = ac_case_validate(c, err))) return st;
    d->conv.out_f32 = o->dt == T_F32;
    t->cu_seqlens_q = xcalloc(2, sizeof(int32_t));
    t->cu_seqlens_k = xcalloc(2, sizeof(int32_t));
    t->o_part = xcalloc((size_t)op->count, sizeof(float));
    t->lse_part = xcalloc((size_t)lp->count, sizeof(float));
    if (!t->cu_seqlens_q || !t->cu_seqlens_k || !t->o_part || !t->lse_part)
        return ac_fail(err, AC_ERR_NOMEM, "combine: out of memory");
    t->cu_seqlens_q[1] = (int32_t)R;
    t->total_q = R;
    load_f32(op, 0, 1, 1, 1, (int64_t)op->count, t->o_part);
    load_f32(lp, 0, 1, 1, 1, (int64_t)lp->count, t->lse_part);
    if ((st = load_out(o, 0, R, 1, D, c->dtype, &d->out, err))) return st;
    const tensor *l = &px->tn[TN_LSE];
    if (l->present) {
        const int64_t w[1] = {R};
        const char *const what[1] = {"rows, from o_part"};
        if ((st = check_shape(l, TN_LSE, 1, w, what, err))) return st;
    }
    d->conv.lse_ht = 0; /* one head: the layouts coincide */
    return load_lse(px, d, R, 1, err);
}

static ac_status build_store(parse_ctx *px, ac_dump *d, ac_error *err)
{
    ac_case *c = &d->c;
    ac_tensors *t = &d->t;
    ac_status st;
    static const int order[] = {TN_K_NEW, TN_V_NEW, TN_SLOT_MAPPING, TN_K_CACHE, TN_V_CACHE, TN_K_CACHE_OUT,
                                TN_V_CACHE_OUT};
    for (size_t i = 0; i < sizeof order / sizeof *order; i++)
        if ((st = need(px, order[i], err))) return st;
    const tensor *kn = &px->tn[TN_K_NEW], *vn = &px->tn[TN_V_NEW], *sm = &px->tn[TN_SLOT_MAPPING];
    const tensor *kc = &px->tn[TN_K_CACHE];
    if ((st = check_dtype(kn, TN_K_NEW, HALF_TYPES, err))) return st;
    const int kv_swap = d->conv.kv_layout_hnd;
    const char *const nhd4[4] = {"blocks", "block_size", "Hkv", "D"};
    const char *const hnd4[4] = {"blocks", "Hkv", "block_size", "D"};
    if (kc->ndim != 4) return ac_fail(err, AC_ERR_SHAPE, "tensor 'k_cache': %d dimensions, expected 4", kc->ndim);
    const int64_t NB = kc->shape[0], BS = kc->shape[kv_swap ? 2 : 1], Hkv = kc->shape[kv_swap ? 1 : 2];
    const int64_t D = kc->shape[3];
    const tensor *vc = &px->tn[TN_V_CACHE];
    /* The caches: k_cache's format (the case dtype or FP8) for all four; v_cache
       k_cache's blocks, slots and heads with its own last dim D_v; each output
       cache the shape of its input. */
    if ((st = kv_pair_format(kc, TN_K_CACHE, vc, TN_V_CACHE, kn->dt, &c->kv_format, err))) return st;
    const int64_t wv4[4] = {kc->shape[0], kc->shape[1], kc->shape[2], -1};
    if ((st = check_shape(vc, TN_V_CACHE, 4, wv4, kv_swap ? hnd4 : nhd4, err))) return st;
    const int64_t Dv = vc->shape[3];
    static const int outs[2] = {TN_K_CACHE_OUT, TN_V_CACHE_OUT};
    for (int k = 0; k < 2; k++) {
        const tensor *in = k ? vc : kc;
        if ((st = check_dtype(&px->tn[outs[k]], outs[k], BIT(kc->dt), err)) ||
            (st = check_shape(&px->tn[outs[k]], outs[k], 4, in->shape, kv_swap ? hnd4 : nhd4, err)))
            return st;
    }
    if (Dv < 1 || Dv > AC_MAX_HEAD_DIM)
        return ac_fail(err, AC_ERR_SHAPE, "tensor 'v_cache' dim 3 = %lld (D_v): must be in [1, %d]", (long long)Dv,
                       AC_MAX_HEAD_DIM);
    if (Hkv < 1 || Hkv > AC_MAX_HEADS || D < 1 || D > AC_MAX_HEAD_DIM || NB < 1 || BS < 1)
        return ac_fail(err, AC_ERR_SHAPE, "tensor 'k_cache': shape [%lld, %lld, %lld, %lld]: blocks, block_size >= 1, "
                       "Hkv in [1, %d], D in [1, %d]", (long long)kc->shape[0], (long long)kc->shape[1],
                       (long long)kc->shape[2], (long long)kc->shape[3], AC_MAX_HEADS, AC_MAX_HEAD_DIM);
    const int64_t wn[3] = {-1, Hkv, D};
    const char *const nwhat[3] = {"tokens", "Hkv, from k_cache", "D, from k_cache"};
    const char *const vwhat[3] = {"tokens, from k_new", "Hkv, from k_cache", "D_v, from v_cache"};
    if ((st = check_shape(kn, TN_K_NEW, 3, wn, nwhat, err)) || (st = check_dtype(vn, TN_V_NEW, BIT(kn->dt), err)))
        return st;
    const int64_t wvn[3] = {kn->shape[0], Hkv, Dv};
    if ((st = check_shape(vn, TN_V_NEW, 3, wvn, vwhat, err))) return st;
    const int64_t T = kn->shape[0];
    const int64_t wsm[1] = {T};
    const char *const swhat[1] = {"tokens, from k_new"};
    if ((st = check_dtype(sm, TN_SLOT_MAPPING, INT_TYPES, err)) ||
        (st = check_shape(sm, TN_SLOT_MAPPING, 1, wsm, swhat, err)))
        return st;
    c->op = AC_OP_STORE;
    c->dtype = case_dtype(kn->dt);
    if ((st = ac_case_set_batch(c, 0, err))) return st;
    c->heads_q = c->heads_kv = (int32_t)Hkv;
    c->head_dim = (int32_t)D;
    c->head_dim_v = Dv == D ? 0 : (int32_t)Dv;
    c->paged = 1;
    c->block_size = (int32_t)BS;
    c->num_blocks = (int32_t)NB;
    if ((st = ac_case_alloc_table(c, 1, err)) || (st = ac_case_alloc_slots(c, (int32_t)T, err))) return st;
    if ((st = load_kv_scales(px, c, err))) return st;
    for (int64_t i = 0; i < T; i++) c->slot_mapping[i] = tensor_int(sm, (uint64_t)i);
    c->slot_mapping_i64 = sm->dt == T_I64;
    if ((st = ac_case_validate(c, err))) return st; /* slot range and collisions, named */
    t->cu_seqlens_q = xcalloc(1, sizeof(int32_t));
    t->cu_seqlens_k = xcalloc(1, sizeof(int32_t));
    t->kv_elems = NB * BS * Hkv * D;
    t->v_elems = NB * BS * Hkv * Dv;
    size_t n = (size_t)t->kv_elems, nv = (size_t)t->v_elems, nn = (size_t)(T * Hkv * D), nnv = (size_t)(T * Hkv * Dv);
    t->k = xcalloc(n, sizeof(uint16_t));
    t->v = xcalloc(nv, sizeof(uint16_t));
    t->k_new = xcalloc(nn, sizeof(uint16_t));
    t->v_new = xcalloc(nnv, sizeof(uint16_t));
    d->out.k_cache = xcalloc(n, sizeof(uint16_t));
    d->out.v_cache = xcalloc(nv, sizeof(uint16_t));
    d->out.kv_elems = t->kv_elems;
    d->out.v_elems = t->v_elems;
    if (!t->cu_seqlens_q || !t->cu_seqlens_k || !t->k || !t->v || !t->k_new || !t->v_new || !d->out.k_cache ||
        !d->out.v_cache)
        return ac_fail(err, AC_ERR_NOMEM, "store: out of memory");
    load_u16(kc, kv_swap, NB, BS, Hkv, D, t->k);
    load_u16(vc, kv_swap, NB, BS, Hkv, Dv, t->v);
    load_u16(&px->tn[TN_K_CACHE_OUT], kv_swap, NB, BS, Hkv, D, d->out.k_cache);
    load_u16(&px->tn[TN_V_CACHE_OUT], kv_swap, NB, BS, Hkv, Dv, d->out.v_cache);
    load_u16(kn, 0, 1, 1, 1, (int64_t)nn, t->k_new);
    load_u16(vn, 0, 1, 1, 1, (int64_t)nnv, t->v_new);
    return AC_OK;
}

/* ---- entry points -------------------------------------------------------------------------- */

void ac_dump_init(ac_dump *d)
{
    memset(d, 0, sizeof *d);
    ac_case_init(&d->c);
}

void ac_dump_free(ac_dump *d)
{
    ac_case_free(&d->c);
    ac_tensors_free(&d->t);
    ac_outputs_free(&d->out);
    free(d->lse_file);
    ac_dump_init(d);
}

ac_status ac_dump_parse(const uint8_t *data, size_t size, ac_dump *d, ac_error *err)
{
    ac_dump_init(d);
    if (!data && size) return ac_fail(err, AC_ERR_NULL, "dump bytes are NULL");
    parse_ctx px;
    memset(&px, 0, sizeof px);
    px.file = data;
    px.size = size;
    cJSON *root = NULL;
    ac_status st = parse_header(&px, &root, err);
    if (!st) st = parse_meta(&px, &d->conv, err);
    if (!st) {
        uint32_t allowed = px.op == AC_OP_PREFILL ? op_tensors_prefill : px.op == AC_OP_DECODE ? op_tensors_decode
                           : px.op == AC_OP_COMBINE ? op_tensors_combine : op_tensors_store;
        for (int i = 0; i < TN_COUNT && !st; i++)
            if (px.tn[i].present && !(allowed & BIT(i)))
                st = ac_fail(err, AC_ERR_PARSE, "tensor '%s': not part of a %s dump", tn_names[i], ac_op_name(px.op));
    }
    if (!st) {
        if (px.op == AC_OP_COMBINE) st = build_combine(&px, d, err);
        else if (px.op == AC_OP_STORE) st = build_store(&px, d, err);
        else st = build_attention(&px, d, err);
    }
    cJSON_Delete(root);
    if (st) ac_dump_free(d);
    return st;
}

ac_status ac_dump_load(const char *path, uint64_t max_bytes, ac_dump *d, ac_error *err)
{
    ac_dump_init(d);
    /* O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused below. */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return ac_fail(err, AC_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb)) {
        int e = errno;
        close(fd);
        return ac_fail(err, AC_ERR_IO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(sb.st_mode)) {
        close(fd);
        return ac_fail(err, AC_ERR_IO, "%s: not a regular file", path);
    }
    if (sb.st_size < 0 || (uint64_t)sb.st_size > max_bytes || (uint64_t)sb.st_size > (uint64_t)SIZE_MAX / 2) {
        close(fd);
        return ac_fail(err, AC_ERR_IO, "%s: %lld bytes: over the %llu-byte limit", path, (long long)sb.st_size,
                       (unsigned long long)max_bytes);
    }
    size_t size = (size_t)sb.st_size, got = 0;
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf) {
        close(fd);
        return ac_fail(err, AC_ERR_NOMEM, "%s: out of memory for %zu bytes", path, size);
    }
    while (got < size) {
        ssize_t r = read(fd, buf + got, size - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        got += (size_t)r;
    }
    close(fd);
    if (got != size) {
        free(buf);
        return ac_fail(err, AC_ERR_IO, "%s: read %zu of %zu bytes (file changed or unreadable)", path, got, size);
    }
    ac_status st = ac_dump_parse(buf, size, d, err);
    free(buf);
    return st;
}

/* ---- the writer --------------------------------------------------------------------------- */

typedef struct wbuf { uint8_t *p; size_t n, cap; int fail; } wbuf;

static void put(wbuf *w, const void *src, size_t n)
{
    if (w->fail) return;
    if (w->n + n > w->cap) {
        size_t cap = w->cap ? w->cap : 256;
        while (cap < w->n + n) cap *= 2;
        uint8_t *p = realloc(w->p, cap);
        if (!p) {
            w->fail = 1;
            return;
        }
        w->p = p;
        w->cap = cap;
    }
    memcpy(w->p + w->n, src, n);
    w->n += n;
}

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static void putf(wbuf *w, const char *fmt, ...)
{
    char tmp[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof tmp) {
        w->fail = 1;
        return;
    }
    put(w, tmp, (size_t)n);
}

/* A JSON string literal of s (quotes included). */
static void put_json_str(wbuf *w, const char *s)
{
    put(w, "\"", 1);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') {
            char e[2] = {'\\', (char)ch};
            put(w, e, 2);
        } else if (ch < 0x20) {
            putf(w, "\\u%04x", ch);
        } else {
            put(w, &ch, 1);
        }
    }
    put(w, "\"", 1);
}

static void w16(wbuf *w, uint16_t v)
{
    uint8_t b[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
    put(w, b, 2);
}
static void w32(wbuf *w, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    put(w, b, 4);
}
static void w64(wbuf *w, uint64_t v)
{
    w32(w, (uint32_t)v);
    w32(w, (uint32_t)(v >> 32));
}

typedef struct wtensor {
    const char *name;
    tdtype dt;
    int ndim;
    int64_t shape[4];
    size_t begin, end;
} wtensor;

typedef struct writer {
    wbuf data;
    wtensor tn[TN_COUNT];
    int n;
} writer;

static void begin_tensor(writer *wr, const char *name, tdtype dt, int ndim, const int64_t *shape)
{
    wtensor *t = &wr->tn[wr->n++];
    t->name = name;
    t->dt = dt;
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) t->shape[i] = shape[i];
    t->begin = wr->data.n;
}
static void end_tensor(writer *wr) { wr->tn[wr->n - 1].end = wr->data.n; }

/* Inverse of load_u16 / load_f32: src in the project's order, the file's order when swap.
   The tensor being written decides the element size: an FP8 one takes each holder's low byte. */
static void write_u16(writer *wr, const uint16_t *src, int swap, int64_t outer, int64_t nA, int64_t nB, int64_t inner)
{
    const int one = tdtype_bytes[wr->tn[wr->n - 1].dt] == 1;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t b = 0; b < (swap ? nB : nA); b++)
            for (int64_t a = 0; a < (swap ? nA : nB); a++)
                for (int64_t x = 0; x < inner; x++) {
                    int64_t i = swap ? a : b, j = swap ? b : a; /* i over nA, j over nB */
                    uint16_t e = src[((o * nA + i) * nB + j) * inner + x];
                    if (one) {
                        uint8_t byte = (uint8_t)e;
                        put(&wr->data, &byte, 1);
                    } else {
                        w16(&wr->data, e);
                    }
                }
}

/* k_scale and v_scale: [1] per tensor, [Hkv] per KV head; none without scales. */
static void write_kv_scales(writer *wr, const ac_case *c)
{
    if (c->n_kv_scales == 0) return;
    const int64_t ns[1] = {c->n_kv_scales};
    begin_tensor(wr, "k_scale", T_F32, 1, ns);
    for (int32_t g = 0; g < c->n_kv_scales; g++) w32(&wr->data, ac_f32_bits(c->k_scales[g]));
    end_tensor(wr);
    begin_tensor(wr, "v_scale", T_F32, 1, ns);
    for (int32_t g = 0; g < c->n_kv_scales; g++) w32(&wr->data, ac_f32_bits(c->v_scales[g]));
    end_tensor(wr);
}
static void write_f32(writer *wr, const float *src, int swap, int64_t nA, int64_t nB, int64_t inner)
{
    for (int64_t b = 0; b < (swap ? nB : nA); b++)
        for (int64_t a = 0; a < (swap ? nA : nB); a++)
            for (int64_t x = 0; x < inner; x++) {
                int64_t i = swap ? a : b, j = swap ? b : a;
                w32(&wr->data, ac_f32_bits(src[(i * nB + j) * inner + x]));
            }
}

static void write_ints(writer *wr, const char *name, int i64, const int32_t *v32, const int64_t *v64, int ndim,
                       const int64_t *shape)
{
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) n *= shape[i];
    begin_tensor(wr, name, i64 ? T_I64 : T_I32, ndim, shape);
    for (int64_t i = 0; i < n; i++) {
        int64_t v = v64 ? v64[i] : v32[i];
        if (i64) w64(&wr->data, (uint64_t)v);
        else w32(&wr->data, (uint32_t)(int32_t)v);
    }
    end_tensor(wr);
}

ac_status ac_dump_write(const ac_case *c, const ac_tensors *t, const ac_outputs *out, const ac_dump_conv *cv,
                        uint8_t **bytes, size_t *size, ac_error *err)
{
    *bytes = NULL;
    *size = 0;
    ac_status st = ac_case_validate(c, err);
    if (st) return st;
    writer wr;
    memset(&wr, 0, sizeof wr);
    const tdtype half = c->dtype == AC_FP16 ? T_F16 : T_BF16;
    const tdtype kvt = c->kv_format == AC_KV_E4M3 ? T_F8E4M3 : c->kv_format == AC_KV_E5M2 ? T_F8E5M2 : half;
    const int64_t D = c->head_dim, Dv = ac_case_dv(c), Hq = c->heads_q, Hkv = c->heads_kv, B = c->batch;
    const int64_t Tq = ac_case_total_q(c);
    const int hnd = cv->layout_hnd, kvs = cv->kv_layout_hnd;
    const int64_t NB = c->num_blocks, BS = c->block_size;
    const int64_t cache_shape[4] = {NB, kvs ? Hkv : BS, kvs ? BS : Hkv, D};
    const int64_t vcache_shape[4] = {NB, kvs ? Hkv : BS, kvs ? BS : Hkv, Dv};
    if (c->op == AC_OP_PREFILL || c->op == AC_OP_DECODE) {
        const int64_t qs[3] = {hnd ? Hq : Tq, hnd ? Tq : Hq, D};
        begin_tensor(&wr, "q", half, 3, qs);
        write_u16(&wr, t->q, hnd, 1, Tq, Hq, D);
        end_tensor(&wr);
        int32_t *cu = calloc((size_t)B + 1, sizeof(int32_t));
        if (!cu) return ac_fail(err, AC_ERR_NOMEM, "dump write: out of memory");
        for (int64_t b = 0; b < B; b++) cu[b + 1] = cu[b] + c->seqlen_q[b];
        const int64_t cs[1] = {B + 1};
        write_ints(&wr, "cu_seqlens_q", 0, cu, NULL, 1, cs);
        if (c->paged) {
            begin_tensor(&wr, "k_cache", kvt, 4, cache_shape);
            write_u16(&wr, t->k, kvs, NB, BS, Hkv, D);
            end_tensor(&wr);
            begin_tensor(&wr, "v_cache", kvt, 4, vcache_shape);
            write_u16(&wr, t->v, kvs, NB, BS, Hkv, Dv);
            end_tensor(&wr);
            const int64_t bs[2] = {B, c->max_blocks_per_seq}, ss[1] = {B};
            write_ints(&wr, "block_table", 0, c->block_table, NULL, 2, bs);
            write_ints(&wr, "seqlens_k", 0, c->seqlen_k, NULL, 1, ss);
        } else {
            const int64_t Tk = ac_case_total_k(c);
            const int64_t ks[3] = {hnd ? Hkv : Tk, hnd ? Tk : Hkv, D}, vs[3] = {ks[0], ks[1], Dv};
            begin_tensor(&wr, "k", kvt, 3, ks);
            write_u16(&wr, t->k, hnd, 1, Tk, Hkv, D);
            end_tensor(&wr);
            begin_tensor(&wr, "v", kvt, 3, vs);
            write_u16(&wr, t->v, hnd, 1, Tk, Hkv, Dv);
            end_tensor(&wr);
            for (int64_t b = 0; b < B; b++) cu[b + 1] = cu[b] + c->seqlen_k[b];
            write_ints(&wr, "cu_seqlens_k", 0, cu, NULL, 1, cs);
        }
        free(cu);
        if (c->mask != AC_MASK_NONE) {
            const int64_t Hm = c->mask_per_head ? Hq : 1;
            int64_t P = 0;
            for (int64_t b = 0; b < B; b++) P += (int64_t)c->seqlen_q[b] * c->seqlen_k[b];
            const int64_t ms[2] = {Hm, P};
            begin_tensor(&wr, "mask", c->mask == AC_MASK_BOOL ? T_BOOL : T_F32, 2, ms);
            for (int64_t h = 0; h < Hm; h++)
                for (int64_t b = 0; b < B; b++) {
                    const int64_t lq = c->seqlen_q[b], lk = c->seqlen_k[b];
                    for (int64_t i = 0; i < lq * lk; i++) {
                        int64_t e = t->mask_off[b] + h * lq * lk + i;
                        if (c->mask == AC_MASK_BOOL) {
                            uint8_t v = t->mask_bool[e] != 0;
                            put(&wr.data, &v, 1);
                        } else {
                            w32(&wr.data, ac_f32_bits(t->mask_bias[e]));
                        }
                    }
                }
            end_tensor(&wr);
        }
        const int64_t os[3] = {qs[0], qs[1], Dv};
        begin_tensor(&wr, "out", cv->out_f32 ? T_F32 : half, 3, os);
        if (cv->out_f32) write_f32(&wr, out->o_f32, hnd, Tq, Hq, Dv);
        else write_u16(&wr, out->o, hnd, 1, Tq, Hq, Dv);
        end_tensor(&wr);
        if (cv->has_lse) {
            const int64_t ls[2] = {cv->lse_ht ? Hq : Tq, cv->lse_ht ? Tq : Hq};
            begin_tensor(&wr, "lse", T_F32, 2, ls);
            write_f32(&wr, out->lse, cv->lse_ht, Tq, Hq, 1);
            end_tensor(&wr);
        }
        if (c->op == AC_OP_DECODE && c->num_splits > 0) {
            const int64_t one[1] = {1};
            write_ints(&wr, "num_splits", 0, &c->num_splits, NULL, 1, one);
        }
        const int64_t hs[1] = {Hq};
        if (c->n_alibi) {
            begin_tensor(&wr, "alibi_slopes", T_F32, 1, hs);
            write_f32(&wr, c->alibi_slopes, 0, 1, 1, Hq);
            end_tensor(&wr);
        }
        if (c->n_sinks) {
            begin_tensor(&wr, "sinks", T_F32, 1, hs);
            write_f32(&wr, c->sinks, 0, 1, 1, Hq);
            end_tensor(&wr);
        }
        write_kv_scales(&wr, c);
    } else if (c->op == AC_OP_COMBINE) {
        const int64_t R = Tq * Hq, S = c->num_splits;
        const int64_t os[3] = {R, S, D}, ls[2] = {R, S}, outs[2] = {R, D}, l1[1] = {R};
        begin_tensor(&wr, "o_part", T_F32, 3, os);
        write_f32(&wr, t->o_part, 0, 1, 1, R * S * D);
        end_tensor(&wr);
        begin_tensor(&wr, "lse_part", T_F32, 2, ls);
        write_f32(&wr, t->lse_part, 0, 1, 1, R * S);
        end_tensor(&wr);
        begin_tensor(&wr, "out", cv->out_f32 ? T_F32 : half, 2, outs);
        if (cv->out_f32) write_f32(&wr, out->o_f32, 0, 1, 1, R * D);
        else write_u16(&wr, out->o, 0, 1, 1, 1, R * D);
        end_tensor(&wr);
        if (cv->has_lse) {
            begin_tensor(&wr, "lse", T_F32, 1, l1);
            write_f32(&wr, out->lse, 0, 1, 1, R);
            end_tensor(&wr);
        }
    } else if (c->op == AC_OP_STORE) {
        const int64_t T = c->num_tokens;
        const int64_t ns[3] = {T, Hkv, D}, nvs[3] = {T, Hkv, Dv}, ss[1] = {T};
        begin_tensor(&wr, "k_new", half, 3, ns);
        write_u16(&wr, t->k_new, 0, 1, 1, 1, T * Hkv * D);
        end_tensor(&wr);
        begin_tensor(&wr, "v_new", half, 3, nvs);
        write_u16(&wr, t->v_new, 0, 1, 1, 1, T * Hkv * Dv);
        end_tensor(&wr);
        write_ints(&wr, "slot_mapping", c->slot_mapping_i64, NULL, c->slot_mapping, 1, ss);
        const uint16_t *caches[4] = {t->k, t->v, out->k_cache, out->v_cache};
        static const char *const names[4] = {"k_cache", "v_cache", "k_cache_out", "v_cache_out"};
        for (int i = 0; i < 4; i++) {
            begin_tensor(&wr, names[i], kvt, 4, i % 2 ? vcache_shape : cache_shape);
            write_u16(&wr, caches[i], kvs, NB, BS, Hkv, i % 2 ? Dv : D);
            end_tensor(&wr);
        }
        write_kv_scales(&wr, c);
    } else {
        return ac_fail(err, AC_ERR_UNSUPPORTED, "dump write: op %s has no dump format", ac_op_name(c->op));
    }

    /* The metadata object, then the header that carries it as a string. */
    wbuf meta = {0};
    static const char *const causal_names[] = {"none", "TL", "BR"};
    static const char *const mask_names[] = {"none", "bool", "additive"};
    putf(&meta, "{\"format\":\"attncheck-dump\",\"version\":1,\"op\":\"%s\",\"causal\":\"%s\",\"scale\":",
         ac_op_name(c->op), causal_names[c->causal]);
    if (c->scale_given) putf(&meta, "%.9g", (double)c->scale);
    else putf(&meta, "\"default\"");
    putf(&meta, ",\"layout\":\"%s\",\"kv_layout\":\"%s\",\"lse_base\":\"%s\",\"lse_layout\":\"%s\","
         "\"empty_row\":\"%s\",\"combine_empty\":\"%s\",\"mask\":\"%s\",\"out_dtype\":\"%s\",",
         hnd ? "HND" : "NHD", kvs ? "HND" : "NHD", cv->lse_base2 ? "2" : "e", cv->lse_ht ? "HT" : "TH",
         ac_empty_rule_name(cv->empty_row), ac_combine_empty_name(cv->combine_empty), mask_names[c->mask],
         cv->out_f32 && c->op != AC_OP_COMBINE ? "float32" : "same");
    /* The features only when on: a dump without them reads as before. */
    if (c->window_left != -1) putf(&meta, "\"window_left\":%d,", c->window_left);
    if (c->window_right != -1) putf(&meta, "\"window_right\":%d,", c->window_right);
    if (c->softcap != 0.0f) putf(&meta, "\"softcap\":%.9g,", (double)c->softcap);
    put(&meta, "\"library\":", 10);
    put_json_str(&meta, cv->library);
    put(&meta, ",\"library_version\":", 19);
    put_json_str(&meta, cv->library_version);
    put(&meta, ",\"note\":", 8);
    put_json_str(&meta, cv->note);
    put(&meta, "}", 2); /* with its NUL */
    wbuf hdr = {0};
    put(&hdr, "{\"__metadata__\":{\"attncheck\":", 29);
    if (!meta.fail) put_json_str(&hdr, (const char *)meta.p);
    put(&hdr, "}", 1);
    for (int i = 0; i < wr.n; i++) {
        const wtensor *x = &wr.tn[i];
        putf(&hdr, ",\"%s\":{\"dtype\":\"%s\",\"shape\":[", x->name, tdtype_names[x->dt]);
        for (int k = 0; k < x->ndim; k++) putf(&hdr, "%s%lld", k ? "," : "", (long long)x->shape[k]);
        putf(&hdr, "],\"data_offsets\":[%zu,%zu]}", x->begin, x->end);
    }
    put(&hdr, "}", 1);
    while (hdr.n % 8) put(&hdr, " ", 1); /* the data section starts 8-byte aligned */
    wbuf file = {0};
    w64(&file, (uint64_t)hdr.n);
    put(&file, hdr.p, hdr.n);
    put(&file, wr.data.p, wr.data.n);
    int fail = meta.fail || hdr.fail || wr.data.fail || file.fail;
    free(meta.p);
    free(hdr.p);
    free(wr.data.p);
    if (fail) {
        free(file.p);
        return ac_fail(err, AC_ERR_NOMEM, "dump write: out of memory (or a name too long)");
    }
    *bytes = file.p;
    *size = file.n;
    return AC_OK;
}
