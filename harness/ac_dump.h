/* A dumped attention call (docs/DUMP.md): one .safetensors file with the
 * inputs and outputs of one kernel call and attncheck's metadata (the JSON
 * object under __metadata__["attncheck"]). The reader turns it into the
 * suite's case model, its tensors in the project's layouts (NHD, LSE [T, H])
 * and the kernel's outputs, plus the call's conventions (LSE base, empty-row
 * rule, output dtype). Nothing in a dump is regenerated from a seed: the
 * oracle and the verdict run on these tensors directly (harness/ac_diagnose.h).
 *
 * Every malformed input is a named error (the key, or the tensor and the
 * dimension index); sizes are overflow-checked and every tensor must lie
 * inside the file, its byte count equal to dtype size x shape. */
#ifndef AC_DUMP_H
#define AC_DUMP_H

#include <stddef.h>
#include <stdint.h>

#include "ac_case.h"
#include "ac_status.h"
#include "ac_tensors.h"

#ifdef __cplusplus
extern "C" {
#endif

/* What an empty row (no allowed key) holds: SEMANTICS.md's table. */
typedef enum ac_empty_rule {
    AC_EMPTY_ZERO_NEGINF = 0, /* "zero_neginf": this contract, O = 0, LSE = -inf */
    AC_EMPTY_ZERO_POSINF,     /* "zero_posinf": flash-attn 2/3, O = 0, LSE = +inf */
    AC_EMPTY_NAN,             /* "nan": SDPA before 2.5, O = NaN (LSE, if any, NaN) */
    AC_EMPTY_ZERO_ZERO,       /* "zero_zero": PyTorch's CPU flash kernel, O = 0, LSE = 0 */
    AC_EMPTY_MEAN_V,          /* "mean_v": finfo(dtype).min masks, O = mean of V, LSE finite */
    AC_EMPTY_COUNT
} ac_empty_rule;

/* A combine's rule for a row whose splits are all empty. */
typedef enum ac_combine_empty {
    AC_COMBINE_EMPTY_GUARD = 0,     /* "guard": O = 0, LSE = -inf (this contract) */
    AC_COMBINE_EMPTY_FLASH_ATTN,    /* "flash_attn": O = 0, LSE = +inf */
    AC_COMBINE_EMPTY_COUNT
} ac_combine_empty;

typedef struct ac_dump_conv {
    int lse_base2;          /* every LSE in and out of the call is base 2 */
    int lse_ht;             /* the file's LSE is [Hq, total_q] (converted to [total_q, Hq]) */
    int layout_hnd;         /* q/k/v/out are [heads, tokens, D] in the file (converted) */
    int kv_layout_hnd;      /* paged caches are [blocks, Hkv, block_size, D] in the file (converted) */
    ac_empty_rule empty_row;
    ac_combine_empty combine_empty;
    int out_f32;            /* `out` is F32 (out_dtype "float32", or a combine's F32 out) */
    int has_lse;            /* the call returned an LSE (tensor `lse`) */
    char library[128];
    char library_version[64];
    char note[512];
} ac_dump_conv;

typedef struct ac_dump {
    ac_case c;              /* scale_given = 0 for "default"; dist and seed mean nothing */
    ac_tensors t;           /* the inputs in the project's layouts (ac_tensors.h) */
    ac_outputs out;         /* the kernel's outputs: o (case dtype) and o_f32 (both filled: the
                               other one rounded or widened), lse [total_q, Hq] in the file's
                               base; store: k_cache / v_cache after */
    ac_dump_conv conv;
    float *lse_file;        /* [total_q * Hq] the LSE in the file's own order (before HT -> TH);
                               NULL without an LSE. The diagnosis reads it in the other layout. */
} ac_dump;

/* Bounds of the reader (not of the format): the JSON header, as the
   safetensors reference reader caps it, and the dimensions of one tensor. */
#define AC_DUMP_MAX_HEADER_BYTES (100u << 20)
#define AC_DUMP_MAX_DIMS 8
/* Default cap of a file's size for ac_dump_load (attncheck verify --max-size). */
#define AC_DUMP_DEFAULT_MAX_BYTES ((uint64_t)8 << 30)

void ac_dump_init(ac_dump *d);
void ac_dump_free(ac_dump *d);

/* Parse the bytes of a dump. AC_OK: *d holds a case that ac_case_validate
   accepts and tensors consistent with it; else a named error, *d empty. */
ac_status ac_dump_parse(const uint8_t *data, size_t size, ac_dump *d, ac_error *err);

/* Read a file (a regular file of at most max_bytes) and parse it. */
ac_status ac_dump_load(const char *path, uint64_t max_bytes, ac_dump *d, ac_error *err);

/* Write a dump of (c, t, out) with the conventions in conv (layouts, LSE
   base and layout, empty rules, fp32 output): the inverse of ac_dump_parse,
   for seeds and tests. scale "default" when !c->scale_given. The caller
   frees *bytes. Paged attention writes block_table and seqlens_k; decode
   writes num_splits when c->num_splits > 0; with conv->has_lse the LSE is
   out->lse (already in conv's base). */
ac_status ac_dump_write(const ac_case *c, const ac_tensors *t, const ac_outputs *out, const ac_dump_conv *conv,
                        uint8_t **bytes, size_t *size, ac_error *err);

/* Names as the metadata spells them. */
const char *ac_empty_rule_name(ac_empty_rule r);        /* "zero_neginf", ... */
const char *ac_combine_empty_name(ac_combine_empty r);  /* "guard", "flash_attn" */

#ifdef __cplusplus
}
#endif
#endif
