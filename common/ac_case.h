/* The case model: one struct that describes any problem of the contract
 * (docs/CONTRACT.md). Values (q, k, v, masks, partials) are never stored
 * here: they are regenerated from (dist, seed) by ac_gen. What cannot be
 * regenerated from the seed (block tables, slot mappings, per-sequence lengths)
 * is explicit, so a case file reproduces a bug layout exactly.
 *
 * A case prints itself as one line (ac_case_line); that line is its test name,
 * its corpus file's description and a bug report's title. */
#ifndef AC_CASE_H
#define AC_CASE_H

#include <stddef.h>
#include <stdint.h>

#include "ac_status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One value per kernel family (common/ac_families.def):
 *   PREFILL  varlen queries against contiguous or paged K/V
 *   DECODE   1..8 queries per sequence at its end, paged, split-KV
 *   COMBINE  merge fp32 split partials (O_s, LSE_s)
 *   STORE    write new K/V into the paged cache via slot_mapping */
typedef enum ac_op {
#define AC_FAMILY(name, NAME, ...) AC_OP_##NAME,
#include "ac_families.def"
#undef AC_FAMILY
    AC_OP_COUNT
} ac_op;

typedef enum ac_dtype { AC_BF16 = 0, AC_FP16, AC_DTYPE_COUNT } ac_dtype;

/* How the K/V cache stores its elements (docs/CONTRACT.md, section 13).
   AC_KV_AS_DTYPE: the case dtype, like q. The FP8 formats are those of
   CUDA's __nv_fp8_e4m3 (OCP E4M3FN: no Inf, NaN = S.1111.111, max 448; torch
   float8_e4m3fn) and __nv_fp8_e5m2 (IEEE-like: Inf, NaN, max 57344; torch
   float8_e5m2). An element's value is decode(code) * scale of its KV head. */
typedef enum ac_kv_format { AC_KV_AS_DTYPE = 0, AC_KV_E4M3, AC_KV_E5M2, AC_KV_FORMAT_COUNT } ac_kv_format;

typedef enum ac_causal {
    AC_CAUSAL_NONE = 0,     /* every j < Lk */
    AC_CAUSAL_TOP_LEFT,     /* j <= i               (SDPA is_causal) */
    AC_CAUSAL_BOTTOM_RIGHT, /* j <= i + (Lk - Lq)   (flash-attn >= 2.1, decode) */
    AC_CAUSAL_COUNT
} ac_causal;

typedef enum ac_mask_kind {
    AC_MASK_NONE = 0,
    AC_MASK_BOOL,     /* true = takes part */
    AC_MASK_ADDITIVE, /* fp32 bias added to the logit; -inf == false */
    AC_MASK_COUNT
} ac_mask_kind;

typedef enum ac_dist {
    AC_DIST_UNIFORM = 0, /* U(-1, 1) */
    AC_DIST_NORMAL,      /* N(0, 1), Irwin-Hall(12) so it is bit-exact everywhere */
    AC_DIST_LARGE,       /* N(0, 1) * 8: saturated softmax, logits in the hundreds */
    AC_DIST_NEEDLE,      /* one key per query dominates, at block/split/diagonal edges */
    AC_DIST_POSCODE,     /* V row of key j encodes j: the output says which keys were seen */
    AC_DIST_COUNT
} ac_dist;

/* Special values placed only where the contract says nothing is read. */
enum {
    AC_SPECIAL_NAN_SLOTS = 1u << 0,    /* NaN in every cache slot that is not a valid position */
    AC_SPECIAL_INF_SLOTS = 1u << 1,    /* +-Inf there instead (or as well, alternating) */
    AC_SPECIAL_GARBAGE_TABLE = 1u << 2,/* garbage (-1, huge, negative) in unused table entries */
    AC_SPECIAL_NAN_PARTIALS = 1u << 3, /* NaN in O_s of empty splits (combine) */
    AC_SPECIAL_SPARSE = 1u << 4,       /* data only where the case reads, memory reserved elsewhere
                                          (pools and batches past 2^31 elements: docs/DATA.md) */
};

/* The features' domain (docs/CONTRACT.md): a softcap or an ALiBi slope past these
   leaves fp32 in a kernel's ordinary arithmetic (c * log2 e, slope * distance) for
   no use a model has; they are refused by name, like a non-finite scale. */
#define AC_MAX_SOFTCAP 0x1p100f     /* 1.27e30: c -> inf is reached long before */
#define AC_MAX_ALIBI_SLOPE 0x1p64f  /* 1.8e19: times a distance < 2^31 stays below 2^95 */
#define AC_MAX_SINK 0x1p64f         /* |sink| (or -inf): sink * log2 e and exp(s - sink) stay in fp32 */
/* FP8 KV scales: finite, in [2^-64, 2^64] (a zero or negative scale is no
   dequantisation any runtime does; the bounds keep scale * 57344 * |q|
   sums inside fp32). */
#define AC_MIN_KV_SCALE 0x1p-64f
#define AC_MAX_KV_SCALE 0x1p64f

/* Sizes the suite refuses to describe (a parser bound, not a kernel limit). */
#define AC_MAX_BATCH 65536
#define AC_MAX_HEADS 1024
#define AC_MAX_HEAD_DIM 1024
#define AC_MAX_SPLITS 4096
#define AC_MAX_QUERIES_DECODE 8

typedef struct ac_case {
    ac_op op;
    ac_dtype dtype;
    int32_t batch;       /* B: number of sequences */
    int32_t *seqlen_q;   /* [batch] queries of each sequence (decode: 1..8) */
    int32_t *seqlen_k;   /* [batch] keys of each sequence (for store: cache length after) */
    int32_t heads_q;     /* Hq */
    int32_t heads_kv;    /* Hkv; Hq % Hkv == 0 */
    int32_t head_dim;    /* D: of q and k (D_qk); also of v and out unless head_dim_v says otherwise */
    int32_t head_dim_v;  /* 0: D_v = D; else D_v, the head dim of v and out (MLA: 192/128, 576/512).
                            The default scale stays 1/sqrt(D_qk). */

    int scale_given;     /* 0: default 1/sqrt(D) in fp32; 1: `scale` below (0.0 is legal) */
    float scale;

    ac_causal causal;
    ac_mask_kind mask;
    int mask_per_head;   /* 1: one mask per query head; 0: shared by all heads */
    float mask_density;  /* probability that a mask entry takes part (bool) / is finite (bias) */

    /* Paged KV (prefill may be contiguous: paged == 0; decode and store are paged). */
    int paged;
    int32_t block_size;
    int32_t num_blocks;          /* pool size */
    int32_t max_blocks_per_seq;  /* columns of block_table */
    int32_t *block_table;        /* [batch * max_blocks_per_seq]; entries past a sequence's
                                    used blocks are unspecified and may hold anything */

    /* Store: num_tokens new tokens written through slot_mapping (-1 = padding). */
    int32_t num_tokens;
    int64_t *slot_mapping;       /* [num_tokens] */
    int slot_mapping_i64;        /* width the kernel is called with: 0 int32, 1 int64 */

    /* Split-KV: 0 = automatic heuristic, else the explicit number of splits.
       For AC_OP_COMBINE, num_splits partials per (query, head). */
    int32_t num_splits;

    /* Features (docs/CONTRACT.md, "Windows, softcap, ALiBi and sinks"); all
       off after ac_case_init. They apply to prefill and decode; a combine and a
       store take none. */
    int32_t window_left;         /* -1: unbounded; else key j >= i + (Lk - Lq) - window_left */
    int32_t window_right;        /* -1: unbounded; else key j <= i + (Lk - Lq) + window_right */
    float softcap;               /* 0: off; c > 0: s = c * tanh(s / c) on scale * q.k */
    int32_t n_alibi;             /* 0: no ALiBi; else heads_q entries in alibi_slopes */
    float *alibi_slopes;         /* [n_alibi]: bias slope_h * (j - i - (Lk - Lq)) */
    int32_t n_sinks;             /* 0: no sinks; else heads_q entries in sinks */
    float *sinks;                /* [n_sinks]: a logit in each row's denominator, -inf = none */

    /* The K/V cache's element format (docs/CONTRACT.md, section 13): prefill,
       decode and store. With an FP8 format the tensors' k and v (and a store's
       caches) hold one FP8 code per element in the low byte of each uint16_t;
       the value is decode(code) * k_scales[g] (v_scales[g]), g = the KV head
       (n_kv_scales == heads_kv) or 0 (n_kv_scales == 1, one scale per tensor);
       n_kv_scales == 0 means scale 1. Scales are only allowed with FP8. */
    ac_kv_format kv_format;
    int32_t n_kv_scales;         /* 0, 1 or heads_kv */
    float *k_scales, *v_scales;  /* [n_kv_scales] each */

    ac_dist dist;
    uint32_t special;            /* AC_SPECIAL_* flags */
    uint64_t seed;
} ac_case;

/* The features as bits (a backend's ac_backend_ops.features says which it implements). */
enum {
    AC_FEAT_WINDOW = 1u << 0,
    AC_FEAT_SOFTCAP = 1u << 1,
    AC_FEAT_ALIBI = 1u << 2,
    AC_FEAT_SINKS = 1u << 3,
    AC_FEAT_LOGIT = (1u << 4) - 1, /* the four above: they change the logits and the softmax */
    AC_FEAT_FP8_KV = 1u << 4,      /* kv_format is an FP8 format (with or without scales) */
    AC_FEAT_HEAD_DIM_V = 1u << 5,  /* D_v != D_qk */
    AC_FEAT_KV = AC_FEAT_FP8_KV | AC_FEAT_HEAD_DIM_V, /* they change how K and V are stored */
    AC_FEAT_ALL = (1u << 6) - 1,
};
/* The AC_FEAT_* bits a case uses; 0 when none. */
uint32_t ac_case_features(const ac_case *c);
/* Their names joined by '+' ("window+softcap"), "none" for 0. */
const char *ac_feature_names(uint32_t bits, char *buf, size_t n);
/* 1 if any feature above is on. */
int ac_case_has_features(const ac_case *c);
/* Set the per-head feature arrays (NULL or n = 0: off); copies. */
ac_status ac_case_set_alibi(ac_case *c, const float *slopes, int32_t n, ac_error *err);
ac_status ac_case_set_sinks(ac_case *c, const float *sinks, int32_t n, ac_error *err);
/* FP8 KV scales: n = 0 (or NULL): none (scale 1); else n entries each (1 or
   heads_kv); copies. The format is set directly (c->kv_format). */
ac_status ac_case_set_kv_scales(ac_case *c, const float *k_scales, const float *v_scales, int32_t n, ac_error *err);
/* D_v of the case: head_dim_v, or head_dim when it is 0. */
static inline int32_t ac_case_dv(const ac_case *c) { return c->head_dim_v ? c->head_dim_v : c->head_dim; }
/* The dequantisation scale of KV head g (1 without scales). */
static inline float ac_case_k_scale(const ac_case *c, int32_t g)
{
    return c->n_kv_scales > 0 ? c->k_scales[c->n_kv_scales == 1 ? 0 : g] : 1.0f;
}
static inline float ac_case_v_scale(const ac_case *c, int32_t g)
{
    return c->n_kv_scales > 0 ? c->v_scales[c->n_kv_scales == 1 ? 0 : g] : 1.0f;
}
/* After heads_q changed: resize alibi_slopes and sinks (when on) to heads_q,
   keeping the first entries and repeating the last one; after heads_kv
   changed, per-head KV scales (n_kv_scales > 1) to heads_kv the same way. */
ac_status ac_case_fit_head_params(ac_case *c, ac_error *err);

/* What a family's case holds and which rules it obeys (the columns of
   common/ac_families.def). ac_case_validate, the data generator and the fuzz
   mutators read these instead of testing the op. */
#define AC_Q_ANY INT32_MAX
typedef enum ac_kv_kind { AC_KV_NONE = 0, AC_KV_ANY, AC_KV_PAGED } ac_kv_kind;
typedef enum ac_splits_kind { AC_SPLITS_NONE = 0, AC_SPLITS_AUTO, AC_SPLITS_GIVEN } ac_splits_kind;
typedef struct ac_op_traits {
    int32_t min_q, max_q;   /* queries per sequence */
    ac_kv_kind kv;
    ac_splits_kind splits;
    int causal;             /* -1: any ac_causal; else the family's one mode */
    int slots;              /* 1: a slot mapping (store) */
    int kernel_masks;       /* 1: the bundled kernel takes explicit masks */
    int features;           /* 1: windows, softcap, ALiBi and sinks apply */
    uint32_t kv_features;   /* the AC_FEAT_KV bits that apply (FP8 cache, D_v != D_qk) */
} ac_op_traits;
/* NULL for an unknown op. */
const ac_op_traits *ac_op_traits_of(ac_op op);

/* A zeroed case with defaults: bf16, B=1, Hq=Hkv=1, D=64, default scale. */
void ac_case_init(ac_case *c);
/* Free the arrays and zero the struct. */
void ac_case_free(ac_case *c);
/* Deep copy; dst must not own arrays (it is overwritten). */
ac_status ac_case_copy(ac_case *dst, const ac_case *src, ac_error *err);
/* (Re)allocate the per-sequence arrays for `batch` sequences, zero-filled. */
ac_status ac_case_set_batch(ac_case *c, int32_t batch, ac_error *err);
/* (Re)allocate block_table to batch * max_blocks_per_seq entries filled with -1. */
ac_status ac_case_alloc_table(ac_case *c, int32_t max_blocks_per_seq, ac_error *err);
/* (Re)allocate slot_mapping for n tokens filled with -1. */
ac_status ac_case_alloc_slots(ac_case *c, int32_t num_tokens, ac_error *err);

/* Totals over the batch. */
int64_t ac_case_total_q(const ac_case *c);
int64_t ac_case_total_k(const ac_case *c);
/* Effective scale: the given one, or 1/sqrt(D) evaluated in fp32. */
float ac_case_scale(const ac_case *c);

/* What checking a case costs, computed before any data exists, in 64 bits
   with every product checked: host bytes of the inputs, the outputs, the
   oracle's result and the error map (an upper bound, docs/BUDGET.md), and the oracle's multiply-adds (logits and P.V of every
   allowed pair, counted as if every key were allowed). Call on a validated
   case. A product past int64 saturates at INT64_MAX and sets `overflow`. */
typedef struct ac_case_cost {
    int64_t bytes;
    int64_t oracle_macs;
    int64_t rows;          /* (query, head) rows the oracle would evaluate */
    int overflow;
} ac_case_cost;
void ac_case_cost_of(const ac_case *c, ac_case_cost *out);

/* Every enum field (op, dtype, causal, mask, dist) is a known value; the
   message names the field. Part of ac_case_validate; the case-file writer
   runs it alone. */
ac_status ac_case_check_enums(const ac_case *c, ac_error *err);

/* Check the case against the contract (sizes, Hq % Hkv, table entries in
   range for used blocks, seqlen_k within table capacity, slot collisions ...).
   The message names the field and the index. */
ac_status ac_case_validate(const ac_case *c, ac_error *err);
/* The features' part of ac_case_validate: window sides >= -1, softcap finite
   and >= 0, one ALiBi slope (finite) and one sink (finite or -inf) per query
   head, the KV format and its scales, head_dim_v, and none of them on a
   family that takes none. */
ac_status ac_case_validate_features(const ac_case *c, ac_error *err);

/* One-line description, e.g.
   "prefill bf16 B=3 Hq=8 Hkv=2 D=128 causal=BR mask=none paged block=16 dist=normal seed=42".
   Writes at most n bytes (always NUL-terminated); returns the full length. */
int ac_case_line(const ac_case *c, char *buf, size_t n);

/* Short names used by the line and by case files. */
const char *ac_op_name(ac_op op);
const char *ac_dtype_name(ac_dtype t);
const char *ac_causal_name(ac_causal m);   /* "none", "TL", "BR" */
const char *ac_mask_name(ac_mask_kind m);  /* "none", "bool", "add" */
const char *ac_dist_name(ac_dist d);
const char *ac_kv_format_name(ac_kv_format f); /* "dtype", "e4m3", "e5m2" */
/* Reverse lookups: return 0 and set *out, or -1 if unknown. */
int ac_op_parse(const char *s, ac_op *out);
int ac_dtype_parse(const char *s, ac_dtype *out);
int ac_causal_parse(const char *s, ac_causal *out);
int ac_mask_parse(const char *s, ac_mask_kind *out);
int ac_dist_parse(const char *s, ac_dist *out);
int ac_kv_format_parse(const char *s, ac_kv_format *out);

#ifdef __cplusplus
}
#endif
#endif
