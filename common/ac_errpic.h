/* Pictures of a verdict's error map (docs/PICTURES.md): a heatmap of
 * r = |err| / bound over (query row x head) by dim, and "error over position":
 * per sequence, the worst r of each query position. PNG files through ac_png. */
#ifndef AC_ERRPIC_H
#define AC_ERRPIC_H

#include <stdint.h>

#include "ac_case.h"
#include "ac_status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ac_errpic_src {
    const double *err_map;       /* r per element [rows * head_dim]; NaN = row not
                                    checked, +inf = NaN/Inf/poison output */
    int64_t rows;                /* total_q * heads_q, row = token * heads_q + head */
    int32_t head_dim, heads_q;
    int32_t batch;
    const int32_t *cu_seqlens_q; /* [batch + 1], cu[batch] * heads_q == rows */
    const char *title;           /* one line shown on top (the case line); may be NULL */
} ac_errpic_src;

/* Largest side of the data area of either picture, in pixels; more elements
   than pixels are shown by their maximum r. */
#define AC_ERRPIC_MAX_PX 1024

/* The heatmap: rows of (token, head) downwards, dims across, a colour scale
   of log10 r over [1e-3, 1e3] (cool below 1, yellow to red above), black for
   NaN/Inf outputs, grey for unchecked rows, white lines between sequences. */
ac_status ac_errpic_heatmap(const ac_errpic_src *s, const char *path, ac_error *err);

/* Error over position: one panel per sequence (at most 32: the worst when
   there are more), a bar per query position at the max r over heads and dims
   on a log axis, the r = 1 line drawn across. */
ac_status ac_errpic_rows(const ac_errpic_src *s, const char *path, ac_error *err);

/* Both: <stem>-heat.png and <stem>-rows.png. */
ac_status ac_errpic_write(const ac_errpic_src *s, const char *stem, ac_error *err);

/* Both pictures of a case's check (title = its case line). store cases have
   no map: AC_ERR_UNSUPPORTED. */
ac_status ac_errpic_write_case(const ac_case *c, const int32_t *cu_seqlens_q, int64_t rows, const double *err_map,
                               const char *stem, ac_error *err);

/* mkdir -p. AC_ERR_IO naming the path when a level cannot be made. */
ac_status ac_errpic_mkdirs(const char *dir, ac_error *err);

#ifdef __cplusplus
}
#endif
#endif
