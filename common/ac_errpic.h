/* Pictures of a verdict's error map (docs/PICTURES.md): a heatmap of
 * r = |err| / bound over (sequence, head, query position) by dim, and "error
 * over position": per sequence, the worst r of each query position. PNG
 * files through ac_png, with tick marks instead of text; the same map as a
 * gzip-compressed table (<stem>-map.tsv.gz) for scripts/plot_errmap.py, which labels it. */
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
    const char *title;           /* the case line, stored as the PNG's Title and the
                                    table's first comment; may be NULL */
    const int32_t *n_allowed;    /* [rows] keys each row may attend (the oracle's;
                                    -1 = not evaluated); 0 marks a fully masked row,
                                    where r is not defined and O must be exactly 0.
                                    May be NULL: then no row is shown as masked. */
} ac_errpic_src;

/* Largest side of the data area of either picture, in pixels; more elements
   than pixels are shown by their worst value. */
#define AC_ERRPIC_MAX_PX 1024

/* The heatmap's geometry, for readers of its pixels: the data area's top
   left pixel, and the largest cell side. Cells are square, of side
   k = min(AC_ERRPIC_CELL_MAX_PX, AC_ERRPIC_MAX_PX / max(rows, head_dim)),
   while rows and dims both fit; display row i, dim d covers
   [X0 + d k, X0 + (d+1) k) x [Y0 + i k, Y0 + (i+1) k). */
#define AC_ERRPIC_HEAT_X0 18
#define AC_ERRPIC_HEAT_Y0 18
#define AC_ERRPIC_CELL_MAX_PX 12

/* Colours (docs/PICTURES.md). r itself runs over log10 r in [-3, 3]: navy
   to light blue below r = 1, yellow through red to dark red above it. */
#define AC_ERRPIC_RGB_UNCHECKED 160, 160, 160 /* grey: row not evaluated (sampling) */
#define AC_ERRPIC_RGB_MASKED 80, 190, 110     /* green: fully masked row, O = 0 as it must be */
#define AC_ERRPIC_RGB_MASKED_BAD 230, 0, 200  /* magenta: fully masked row with O != 0 (fails) */
#define AC_ERRPIC_RGB_BAD 0, 0, 0             /* black: NaN/Inf/poison output (fails) */

/* The heatmap: one block of rows per sequence and within it one block per
   head, query positions downwards; dims across. Long ticks on both sides at
   sequence boundaries (a white line across when cells are 3 px or taller),
   short ticks on the left at head boundaries, ticks on top every 8 dims
   (long every 64). A legend below: the colour bar with a tick per decade and
   a heavy mark at r = 1, then swatches of the four colours above. */
ac_status ac_errpic_heatmap(const ac_errpic_src *s, const char *path, ac_error *err);

/* Error over position: one panel per sequence (at most 32: the worst when
   there are more), a bar per query position at the worst r over heads and
   dims on a log axis from 1e-3 to 1e3, the r = 1 line across. */
ac_status ac_errpic_rows(const ac_errpic_src *s, const char *path, ac_error *err);

/* The map as text, gzip-compressed (zlib): a tab-separated table with columns
   seq head row dim r state (row = query position in its sequence), one line
   per element of every evaluated row, after "# " comment lines giving the
   title and the shape. state is one of ok, over (r > 1), bad (NaN/Inf
   output, r = inf), masked (fully masked row, O = 0, r written as nan),
   masked_bad (fully masked row with O != 0). */
ac_status ac_errpic_table(const ac_errpic_src *s, const char *path, ac_error *err);

/* All three: <stem>-heat.png, <stem>-rows.png and <stem>-map.tsv.gz. */
ac_status ac_errpic_write(const ac_errpic_src *s, const char *stem, ac_error *err);

/* The files of a case's check (title = its case line). n_allowed is the
   oracle's per-row count of allowed keys (may be NULL). store cases have no
   map: AC_ERR_UNSUPPORTED. */
ac_status ac_errpic_write_case(const ac_case *c, const int32_t *cu_seqlens_q, int64_t rows, const double *err_map,
                               const int32_t *n_allowed, const char *stem, ac_error *err);


#ifdef __cplusplus
}
#endif
#endif
