/* The property functions (one file each) and the case shapes they share.
   Each returns AC_PROP_PASS / AC_PROP_FAIL / AC_PROP_SKIP (ac_prop.h). */
#ifndef AC_PROP_PROPS_H
#define AC_PROP_PROPS_H

#include "ac_gen.h"
#include "ac_prop.h"

int prop_scale(const ac_prop_ctx *ctx, char *why, size_t n);
int prop_gqa(const ac_prop_ctx *ctx, char *why, size_t n);
int prop_causal(const ac_prop_ctx *ctx, char *why, size_t n);
int prop_chunked(const ac_prop_ctx *ctx, char *why, size_t n);
int prop_masks(const ac_prop_ctx *ctx, char *why, size_t n);
int prop_paging(const ac_prop_ctx *ctx, char *why, size_t n);
int prop_batch(const ac_prop_ctx *ctx, char *why, size_t n);
int prop_splits(const ac_prop_ctx *ctx, char *why, size_t n);
int prop_permutation(const ac_prop_ctx *ctx, char *why, size_t n);
int prop_linearity(const ac_prop_ctx *ctx, char *why, size_t n);
int prop_overflow(const ac_prop_ctx *ctx, char *why, size_t n);
int prop_window(const ac_prop_ctx *ctx, char *why, size_t n);
int prop_softcap(const ac_prop_ctx *ctx, char *why, size_t n);
int prop_alibi(const ac_prop_ctx *ctx, char *why, size_t n);
int prop_sinks(const ac_prop_ctx *ctx, char *why, size_t n);
int prop_dv(const ac_prop_ctx *ctx, char *why, size_t n);
int prop_fp8(const ac_prop_ctx *ctx, char *why, size_t n);

/* A prefill (ragged Lq <= Lk, random causal mode) or decode case at the
   grid point, placed per its layout, with the grid point's features
   (prop_scale.c). */
ac_status prop_case_attention(const ac_prop_ctx *ctx, ac_rng *r, ac_case *c, ac_error *err);

#endif
