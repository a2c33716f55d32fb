/* Error pictures (ac_errpic.h, docs/PICTURES.md): an RGB canvas of filled
 * rectangles, the colour of each element's state, and the map as a table.
 * There is no text in the pictures: ticks mark sequences, heads, dims and
 * decades; the case line and the worst element go into PNG text chunks and
 * the table, and scripts/plot_errmap.py draws the labelled figure. */
#include "ac_errpic.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <zlib.h>

#include "ac_case.h"
#include "ac_png.h"

/* ------------------------------------------------------------------------ */
/* canvas                                                                    */

typedef struct rgb { uint8_t r, g, b; } rgb;
typedef struct canvas { int32_t w, h; uint8_t *px; } canvas;

static const rgb WHITE = {255, 255, 255}, INK = {40, 40, 40}, LIGHT = {225, 225, 225}, PANEL = {248, 248, 248},
                 C_UNCHECKED = {AC_ERRPIC_RGB_UNCHECKED}, C_MASKED = {AC_ERRPIC_RGB_MASKED},
                 C_MASKED_BAD = {AC_ERRPIC_RGB_MASKED_BAD}, C_BAD = {AC_ERRPIC_RGB_BAD};

static ac_status canvas_new(canvas *c, int32_t w, int32_t h, ac_error *err)
{
    c->w = w;
    c->h = h;
    c->px = malloc((size_t)w * (size_t)h * 3);
    if (!c->px) return ac_fail(err, AC_ERR_NOMEM, "picture %d x %d: out of memory", (int)w, (int)h);
    memset(c->px, 255, (size_t)w * (size_t)h * 3);
    return AC_OK;
}

static void rect(canvas *c, int32_t x, int32_t y, int32_t w, int32_t h, rgb v)
{
    for (int32_t j = y < 0 ? 0 : y; j < y + h && j < c->h; j++)
        for (int32_t i = x < 0 ? 0 : x; i < x + w && i < c->w; i++) {
            uint8_t *p = c->px + ((size_t)j * c->w + i) * 3;
            p[0] = v.r;
            p[1] = v.g;
            p[2] = v.b;
        }
}

static void frame(canvas *c, int32_t x, int32_t y, int32_t w, int32_t h, rgb v)
{
    rect(c, x, y, w, 1, v);
    rect(c, x, y + h - 1, w, 1, v);
    rect(c, x, y, 1, h, v);
    rect(c, x + w - 1, y, 1, h, v);
}

/* ------------------------------------------------------------------------ */
/* what an element shows                                                     */

/* In order of precedence when one pixel covers several elements: a failure
   beats a value, a value beats a row with nothing to judge. */
typedef enum kind { K_UNCHECKED, K_MASKED, K_R, K_MASKED_BAD, K_BAD } kind;
typedef struct cell { kind k; double r; } cell;

static int row_masked(const ac_errpic_src *s, int64_t row) { return s->n_allowed && s->n_allowed[row] == 0; }

/* A fully masked row must give O = 0 exactly, so its r (|O| / bound) is 0,
   or NaN when the bound is 0 too; anything else there is a wrong output. */
static cell cell_of(double v, int masked)
{
    cell c = {K_R, v};
    if (isinf(v)) c.k = K_BAD;
    else if (masked) c.k = (isnan(v) || v == 0.0) ? K_MASKED : K_MASKED_BAD;
    else if (isnan(v)) c.k = K_UNCHECKED;
    return c;
}

static int beats(cell b, cell a) { return b.k != a.k ? b.k > a.k : (b.k == K_R && b.r > a.r); }
static cell worse(cell a, cell b) { return beats(b, a) ? b : a; }

static const cell NOTHING = {K_UNCHECKED, NAN};

/* log10 r over [-3, 3]: r = 1 sits in the middle. Below 1 the colours run
   from navy to light blue, above 1 from yellow through red to dark red, so
   the pass line is the step from cool to warm. */
#define LOG_LO (-3.0)
#define LOG_HI 3.0

static rgb lerp(rgb a, rgb b, double t)
{
    rgb o = {(uint8_t)lround(a.r + (b.r - a.r) * t), (uint8_t)lround(a.g + (b.g - a.g) * t),
             (uint8_t)lround(a.b + (b.b - a.b) * t)};
    return o;
}

/* Colours come in bands of 1/8 decade (a factor 1.33 in r): finer shades
   are not read by eye, and the bands make the PNG files about a quarter
   smaller than a continuous scale. A band takes the colour of its edge away
   from r = 1, so r <= 1e-3 is the navy end, r >= 1e3 the dark red end, and
   r = 1 exactly (which passes) the light blue end. */
#define BANDS_PER_DECADE 8

static rgb colour_of_log(double l)
{
    l = (l <= 0 ? floor(l * BANDS_PER_DECADE) : ceil(l * BANDS_PER_DECADE)) / BANDS_PER_DECADE;
    static const rgb cool[] = {{15, 20, 70}, {30, 70, 160}, {60, 140, 210}, {140, 210, 235}};
    static const rgb warm[] = {{255, 230, 0}, {255, 140, 0}, {225, 30, 0}, {120, 0, 0}};
    const rgb *stop = l <= 0 ? cool : warm;
    double t = l <= 0 ? (l - LOG_LO) / -LOG_LO : l / LOG_HI;
    if (t <= 0) return stop[0];
    if (t >= 1) return stop[3];
    double x = t * 3;
    int i = (int)x;
    return lerp(stop[i], stop[i + 1], x - i);
}

static rgb colour_of(cell c)
{
    switch (c.k) {
    case K_UNCHECKED: return C_UNCHECKED;
    case K_MASKED: return C_MASKED;
    case K_MASKED_BAD: return C_MASKED_BAD;
    case K_BAD: return C_BAD;
    default: return colour_of_log(c.r > 0 ? log10(c.r) : LOG_LO);
    }
}

/* ------------------------------------------------------------------------ */

static ac_status check_src(const ac_errpic_src *s, const char *path, ac_error *err)
{
    if (!s) return ac_fail(err, AC_ERR_NULL, "src = NULL: must describe the error map");
    if (!path) return ac_fail(err, AC_ERR_NULL, "path = NULL: must name the output file");
    if (!s->err_map) return ac_fail(err, AC_ERR_NULL, "src.err_map = NULL: run the check with keep = 1");
    if (!s->cu_seqlens_q) return ac_fail(err, AC_ERR_NULL, "src.cu_seqlens_q = NULL");
    if (s->head_dim < 1) return ac_fail(err, AC_ERR_SHAPE, "src.head_dim = %d: must be >= 1", (int)s->head_dim);
    if (s->heads_q < 1) return ac_fail(err, AC_ERR_SHAPE, "src.heads_q = %d: must be >= 1", (int)s->heads_q);
    if (s->batch < 1) return ac_fail(err, AC_ERR_SHAPE, "src.batch = %d: must be >= 1", (int)s->batch);
    if (s->cu_seqlens_q[0] != 0)
        return ac_fail(err, AC_ERR_SEQLENS, "src.cu_seqlens_q[0] = %d: must be 0", (int)s->cu_seqlens_q[0]);
    for (int32_t b = 0; b < s->batch; b++)
        if (s->cu_seqlens_q[b + 1] < s->cu_seqlens_q[b])
            return ac_fail(err, AC_ERR_SEQLENS, "src.cu_seqlens_q[%d] = %d: must be >= cu_seqlens_q[%d] = %d",
                           (int)b + 1, (int)s->cu_seqlens_q[b + 1], (int)b, (int)s->cu_seqlens_q[b]);
    if ((int64_t)s->cu_seqlens_q[s->batch] * s->heads_q != s->rows)
        return ac_fail(err, AC_ERR_SHAPE, "src.rows = %lld: must be cu_seqlens_q[batch] * heads_q = %lld",
                       (long long)s->rows, (long long)s->cu_seqlens_q[s->batch] * s->heads_q);
    if (s->rows < 1) return ac_fail(err, AC_ERR_SHAPE, "src.rows = 0: no query rows to draw");
    return AC_OK;
}

/* Sequence of query token t: the last b with cu[b] <= t, which skips empty
   sequences sharing that start. */
static int32_t seq_of(const ac_errpic_src *s, int64_t tok)
{
    int32_t lo = 0, hi = s->batch;
    while (hi - lo > 1) {
        int32_t mid = (lo + hi) / 2;
        if (s->cu_seqlens_q[mid] <= tok) lo = mid;
        else hi = mid;
    }
    return lo;
}

/* The heatmap's row order: sequence, then head, then query position; the
   map's is token, then head. Display row i -> map row. */
static int64_t map_row(const ac_errpic_src *s, int64_t i)
{
    int32_t b = seq_of(s, i / s->heads_q); /* sequence b's block starts at cu[b] * heads_q */
    int64_t lq = s->cu_seqlens_q[b + 1] - s->cu_seqlens_q[b];
    int64_t within = i - (int64_t)s->cu_seqlens_q[b] * s->heads_q;
    return ((int64_t)s->cu_seqlens_q[b] + within % lq) * s->heads_q + within / lq;
}

/* n elements onto an axis: k pixels each when they fit (k in [1, kmax]),
   else `max_px` pixels each covering [i*n/p, (i+1)*n/p). */
typedef struct axis { int64_t n; int32_t k, px; } axis;

static axis make_axis(int64_t n, int32_t kmax, int32_t max_px)
{
    axis a = {n, 1, 0};
    if (n > max_px) {
        a.k = 0;
        a.px = max_px;
    } else {
        a.k = (int32_t)(max_px / n);
        if (a.k > kmax) a.k = kmax;
        a.px = (int32_t)(n * a.k);
    }
    return a;
}

static void axis_range(const axis *a, int32_t p, int64_t *i0, int64_t *i1)
{
    if (a->k) {
        *i0 = p / a->k;
        *i1 = *i0 + 1;
    } else {
        *i0 = (int64_t)p * a->n / a->px;
        *i1 = (int64_t)(p + 1) * a->n / a->px;
        if (*i1 <= *i0) *i1 = *i0 + 1;
    }
}

/* First pixel of element i. */
static int32_t axis_pixel(const axis *a, int64_t i)
{
    if (a->k) return (int32_t)(i * a->k);
    return (int32_t)((i * a->px + a->n - 1) / a->n);
}

static double px_per_elem(const axis *a) { return a->k ? a->k : (double)a->px / (double)a->n; }

/* The legend: the colour bar over [1e-3, 1e3] with a tick per decade and a
   heavy mark at r = 1, then swatches: unchecked, masked, masked with O != 0,
   NaN/Inf. Width LEGEND_W, height LEGEND_H. */
enum { DECADE_PX = 40, BAR_H = 14, LEGEND_W = 6 * DECADE_PX + 16 + 4 * (BAR_H + 8), LEGEND_H = BAR_H + 9 };

static void legend(canvas *c, int32_t x, int32_t y)
{
    const int32_t bar_w = 6 * DECADE_PX;
    for (int32_t i = 0; i < bar_w; i++)
        rect(c, x + i, y, 1, BAR_H, colour_of_log(LOG_LO + 6.0 * (i + 0.5) / bar_w));
    frame(c, x - 1, y - 1, bar_w + 2, BAR_H + 2, INK);
    for (int d = 0; d <= 6; d++) rect(c, x + d * DECADE_PX - (d == 6), y + BAR_H + 1, 1, 4, INK);
    rect(c, x + 3 * DECADE_PX - 1, y - 4, 3, BAR_H + 8, INK);
    static const rgb *sw[] = {&C_UNCHECKED, &C_MASKED, &C_MASKED_BAD, &C_BAD};
    for (int k = 0; k < 4; k++) {
        int32_t sx = x + bar_w + 16 + k * (BAR_H + 8);
        rect(c, sx, y, BAR_H, BAR_H, *sw[k]);
        frame(c, sx - 1, y - 1, BAR_H + 2, BAR_H + 2, INK);
    }
}

static void fmt_r(char *buf, size_t n, double r)
{
    if (isinf(r)) snprintf(buf, n, "inf (NaN/Inf output)");
    else snprintf(buf, n, "%.3g", r);
}

/* Worst element, counts, and the line saying so (the PNG Description). */
static void describe(const ac_errpic_src *s, const char *what, char *out, size_t n)
{
    int64_t worst_i = -1, n_fail = 0, n_checked = 0, n_masked_rows = 0;
    cell worst = NOTHING;
    for (int64_t row = 0; row < s->rows; row++) {
        int masked = row_masked(s, row);
        n_masked_rows += masked;
        for (int32_t d = 0; d < s->head_dim; d++) {
            int64_t i = row * s->head_dim + d;
            cell c = cell_of(s->err_map[i], masked);
            if (c.k == K_UNCHECKED) continue;
            n_checked++;
            n_fail += c.k >= K_MASKED_BAD || (c.k == K_R && c.r > 1.0);
            if (worst_i < 0 || beats(c, worst)) {
                worst = c;
                worst_i = i;
            }
        }
    }
    int at = snprintf(out, n, "%s %lld rows x %d dims", what, (long long)s->rows, (int)s->head_dim);
    if (worst_i >= 0 && at >= 0 && (size_t)at < n) {
        int64_t row = worst_i / s->head_dim, tok = row / s->heads_q;
        int32_t b = seq_of(s, tok);
        char rv[48];
        fmt_r(rv, sizeof rv, s->err_map[worst_i]);
        snprintf(out + at, n - (size_t)at,
                 "; worst r = %s%s at seq %d head %d row %lld dim %d; %lld of %lld judged elements fail; "
                 "%lld fully masked rows",
                 rv, worst.k == K_MASKED_BAD ? " (fully masked row, O != 0)" : "", (int)b, (int)(row % s->heads_q),
                 (long long)(tok - s->cu_seqlens_q[b]), (int)(worst_i % s->head_dim), (long long)n_fail,
                 (long long)n_checked, (long long)n_masked_rows);
    } else if (at >= 0 && (size_t)at < n) {
        snprintf(out + at, n - (size_t)at, "; no element was judged");
    }
}

static ac_status write_png(const ac_errpic_src *s, const char *path, const canvas *cv, const char *desc,
                           ac_error *err)
{
    ac_png_text t[3] = {{"Title", s->title ? s->title : ""}, {"Description", desc}, {"Software", "attncheck"}};
    return ac_png_write_rgb(path, cv->w, cv->h, cv->px, t, 3, err);
}

/* ------------------------------------------------------------------------ */

ac_status ac_errpic_heatmap(const ac_errpic_src *s, const char *path, ac_error *err)
{
    ac_status st = check_src(s, path, err);
    if (st) return st;
    /* Square cells of k x k (k <= 12) while both axes fit; an axis with more
       elements than AC_ERRPIC_MAX_PX pixels takes the worst over each
       pixel's share, and then the other axis keeps its own k. */
    axis ax = make_axis(s->head_dim, AC_ERRPIC_CELL_MAX_PX, AC_ERRPIC_MAX_PX),
         ay = make_axis(s->rows, AC_ERRPIC_CELL_MAX_PX, AC_ERRPIC_MAX_PX);
    if (ax.k && ay.k) {
        int32_t k = ax.k < ay.k ? ax.k : ay.k;
        ax.k = ay.k = k;
        ax.px = (int32_t)(ax.n * k);
        ay.px = (int32_t)(ay.n * k);
    }
    const int32_t margin = 8, x0 = AC_ERRPIC_HEAT_X0, y0 = AC_ERRPIC_HEAT_Y0, tick_area = x0 - margin;
    int32_t w = x0 + ax.px + tick_area + margin;
    if (w < 2 * margin + LEGEND_W) w = 2 * margin + LEGEND_W;
    int32_t h = y0 + ay.px + 14 + LEGEND_H + margin;
    int64_t *rows_of = malloc(sizeof(int64_t) * (size_t)s->rows);
    if (!rows_of) return ac_fail(err, AC_ERR_NOMEM, "%s: out of memory", path);
    canvas cv;
    if ((st = canvas_new(&cv, w, h, err))) {
        free(rows_of);
        return st;
    }
    for (int64_t i = 0; i < s->rows; i++) rows_of[i] = map_row(s, i);

    for (int32_t py = 0; py < ay.px; py++) {
        int64_t i0, i1;
        axis_range(&ay, py, &i0, &i1);
        for (int32_t px = 0; px < ax.px; px++) {
            int64_t d0, d1;
            axis_range(&ax, px, &d0, &d1);
            cell v = NOTHING;
            for (int64_t i = i0; i < i1; i++) {
                int64_t row = rows_of[i];
                int masked = row_masked(s, row);
                for (int64_t d = d0; d < d1; d++) v = worse(v, cell_of(s->err_map[row * s->head_dim + d], masked));
            }
            rect(&cv, x0 + px, y0 + py, 1, 1, colour_of(v));
        }
    }
    free(rows_of);
    frame(&cv, x0 - 1, y0 - 1, ax.px + 2, ay.px + 2, INK);

    /* Dims: a tick every 8, long every 64, when 8 dims take 3 px or more. */
    for (int32_t d = 0; d < s->head_dim && 8 * px_per_elem(&ax) >= 3; d += 8) {
        int32_t len = d % 64 ? 3 : 7;
        rect(&cv, x0 + axis_pixel(&ax, d), y0 - 1 - len, 1, len, INK);
    }
    /* Sequences: long ticks on both sides; heads: short ticks on the left
       when a head's block is 3 px or taller. */
    double py_row = px_per_elem(&ay);
    for (int32_t b = 0; b < s->batch; b++) {
        int64_t lq = s->cu_seqlens_q[b + 1] - s->cu_seqlens_q[b];
        if (!lq) continue; /* empty: no rows */
        int64_t start = (int64_t)s->cu_seqlens_q[b] * s->heads_q;
        int32_t y = y0 + axis_pixel(&ay, start);
        rect(&cv, x0 - 9, y, 8, 1, INK);
        rect(&cv, x0 + ax.px + 1, y, 8, 1, INK);
        if (start > 0 && ay.k >= 3) rect(&cv, x0, y, ax.px, 1, WHITE);
        for (int32_t hd = 1; hd < s->heads_q && lq * py_row >= 3; hd++)
            rect(&cv, x0 - 5, y0 + axis_pixel(&ay, start + hd * lq), 4, 1, INK);
    }
    legend(&cv, margin + 1, y0 + ay.px + 14);
    char desc[640];
    describe(s, "heatmap: (seq, head, query position) down, dims across;", desc, sizeof desc);
    st = write_png(s, path, &cv, desc, err);
    free(cv.px);
    return st;
}

/* ------------------------------------------------------------------------ */

ac_status ac_errpic_rows(const ac_errpic_src *s, const char *path, ac_error *err)
{
    ac_status st = check_src(s, path, err);
    if (st) return st;
    int32_t B = s->batch, max_lq = 1;
    for (int32_t b = 0; b < B; b++) {
        int32_t lq = s->cu_seqlens_q[b + 1] - s->cu_seqlens_q[b];
        if (lq > max_lq) max_lq = lq;
    }
    /* Per query token: the worst over heads and dims. */
    int64_t total_q = s->cu_seqlens_q[B];
    cell *tok = malloc(sizeof(cell) * (size_t)total_q);
    cell *seq_worst = malloc(sizeof(cell) * (size_t)B);
    int32_t *shown = malloc(sizeof(int32_t) * (size_t)B);
    char *take = calloc((size_t)B, 1);
    canvas cv = {0, 0, NULL};
    char *desc = malloc(640 + 12 * 32);
    if (!tok || !seq_worst || !shown || !take || !desc) {
        st = ac_fail(err, AC_ERR_NOMEM, "%s: out of memory", path);
        goto done;
    }
    for (int64_t t = 0; t < total_q; t++) {
        cell v = NOTHING;
        for (int32_t hd = 0; hd < s->heads_q; hd++) {
            int64_t row = t * s->heads_q + hd;
            for (int32_t d = 0; d < s->head_dim; d++)
                v = worse(v, cell_of(s->err_map[row * s->head_dim + d], row_masked(s, row)));
        }
        tok[t] = v;
    }
    for (int32_t b = 0; b < B; b++) {
        cell v = NOTHING;
        for (int64_t t = s->cu_seqlens_q[b]; t < s->cu_seqlens_q[b + 1]; t++) v = worse(v, tok[t]);
        seq_worst[b] = v;
    }
    /* At most 32 panels: the worst sequences, in their order. */
    enum { MAX_PANELS = 32 };
    int32_t np = 0;
    for (int k = 0; k < MAX_PANELS && k < B; k++) {
        int32_t best = -1;
        for (int32_t b = 0; b < B; b++) {
            if (take[b]) continue;
            if (best < 0 || beats(seq_worst[b], seq_worst[best])) best = b;
        }
        take[best] = 1;
    }
    for (int32_t b = 0; b < B; b++)
        if (take[b]) shown[np++] = b;

    axis ax = make_axis(max_lq, 16, AC_ERRPIC_MAX_PX);
    int32_t panel_h = (AC_ERRPIC_MAX_PX - 12 * np) / np;
    if (panel_h > 110) panel_h = 110;
    if (panel_h < 36) panel_h = 36;
    const int32_t margin = 8, x0 = margin + 9, gap = 12, y_top = margin + 4;
    int32_t w = x0 + ax.px + margin;
    if (w < 2 * margin + LEGEND_W) w = 2 * margin + LEGEND_W;
    int32_t h = y_top + np * (panel_h + gap) + 8 + LEGEND_H + margin;
    if ((st = canvas_new(&cv, w, h, err))) goto done;

    /* Position ticks every 10^k positions, long every 10^(k+1), with k the
       smallest that keeps short ticks 4 px apart. */
    int64_t step = 1;
    while (step * px_per_elem(&ax) < 4) step *= 10;
    for (int32_t k = 0; k < np; k++) {
        int32_t b = shown[k], y0 = y_top + k * (panel_h + gap);
        int32_t lq = s->cu_seqlens_q[b + 1] - s->cu_seqlens_q[b];
        const cell *v = tok + s->cu_seqlens_q[b];
        /* Plot box: the whole axis width; positions past lq stay blank. */
        rect(&cv, x0, y0, ax.px, panel_h, PANEL);
        for (int d = -3; d <= 3; d++) {
            int32_t y = y0 + (int32_t)lround((LOG_HI - d) / (LOG_HI - LOG_LO) * (panel_h - 1));
            if (d != -3 && d != 3) rect(&cv, x0, y, ax.px, 1, LIGHT);
            rect(&cv, x0 - (d ? 4 : 8), y, d ? 3 : 7, 1, INK); /* decades; long at r = 1 */
        }
        for (int32_t px = 0; px < ax.px; px++) {
            int64_t q0, q1;
            axis_range(&ax, px, &q0, &q1);
            if (q0 >= lq) break;
            if (q1 > lq) q1 = lq;
            /* A 1-pixel gap between bars when bars are 4 pixels or wider. */
            if (ax.k >= 4 && px % ax.k == ax.k - 1) continue;
            cell r = NOTHING;
            for (int64_t q = q0; q < q1; q++) r = worse(r, v[q]);
            if (r.k == K_UNCHECKED || r.k == K_MASKED) { /* nothing judged: a stub */
                rect(&cv, x0 + px, y0 + panel_h - 3, 1, 3, colour_of(r));
                continue;
            }
            double l = r.k != K_R ? LOG_HI : r.r > 0 ? log10(r.r) : LOG_LO;
            if (l < LOG_LO) l = LOG_LO;
            if (l > LOG_HI) l = LOG_HI;
            int32_t top_y = y0 + (int32_t)lround((LOG_HI - l) / (LOG_HI - LOG_LO) * (panel_h - 1));
            if (top_y > y0 + panel_h - 2) top_y = y0 + panel_h - 2; /* r <= 1e-3 still shows */
            rect(&cv, x0 + px, top_y, 1, y0 + panel_h - top_y, colour_of(r));
        }
        /* r = 1 across, on top of the bars. */
        int32_t y1 = y0 + (int32_t)lround(LOG_HI / (LOG_HI - LOG_LO) * (panel_h - 1));
        rect(&cv, x0, y1, ax.px, 1, INK);
        frame(&cv, x0 - 1, y0 - 1, ax.px + 2, panel_h + 2, INK);
        for (int64_t q = 0; q < max_lq; q += step)
            rect(&cv, x0 + axis_pixel(&ax, q), y0 + panel_h + 1, 1, q % (10 * step) ? 2 : 5, INK);
    }
    legend(&cv, margin + 1, y_top + np * (panel_h + gap) + 8);
    describe(s, "error over position: worst r of each query position;", desc, 640);
    size_t at = strlen(desc);
    at += (size_t)snprintf(desc + at, 640 + 12 * 32 - at, "; panels top to bottom: seq");
    for (int32_t k = 0; k < np; k++) at += (size_t)snprintf(desc + at, 640 + 12 * 32 - at, " %d", (int)shown[k]);
    st = write_png(s, path, &cv, desc, err);
done:
    free(cv.px);
    free(desc);
    free(take);
    free(tok);
    free(seq_worst);
    free(shown);
    return st;
}

/* ------------------------------------------------------------------------ */

ac_status ac_errpic_table(const ac_errpic_src *s, const char *path, ac_error *err)
{
    ac_status st = check_src(s, path, err);
    if (st) return st;
    /* gzip: about 20 bytes a line as text, 4 to 5 times less compressed. */
    errno = 0;
    gzFile f = gzopen(path, "wb");
    if (!f) return ac_fail(err, AC_ERR_IO, "%s: cannot create: %s", path, errno ? strerror(errno) : "zlib");
    int ok = gzprintf(f, "# title: %s\n# batch=%d heads_q=%d head_dim=%d cu_seqlens_q=", s->title ? s->title : "",
                      (int)s->batch, (int)s->heads_q, (int)s->head_dim) > 0;
    for (int32_t b = 0; b <= s->batch && ok; b++) ok = gzprintf(f, "%s%d", b ? "," : "", (int)s->cu_seqlens_q[b]) > 0;
    ok = ok && gzputs(f, "\nseq\thead\trow\tdim\tr\tstate\n") > 0;
    for (int32_t b = 0; b < s->batch && ok; b++) {
        int32_t lq = s->cu_seqlens_q[b + 1] - s->cu_seqlens_q[b];
        for (int32_t hd = 0; hd < s->heads_q && ok; hd++)
            for (int32_t q = 0; q < lq && ok; q++) {
                int64_t row = ((int64_t)s->cu_seqlens_q[b] + q) * s->heads_q + hd;
                const double *v = s->err_map + row * s->head_dim;
                int masked = row_masked(s, row), judged = masked || (s->n_allowed && s->n_allowed[row] > 0);
                for (int32_t d = 0; d < s->head_dim && !judged; d++) judged = !isnan(v[d]);
                if (!judged) continue; /* rows the oracle did not evaluate are left out */
                for (int32_t d = 0; d < s->head_dim && ok; d++) {
                    static const char *name[] = {"unchecked", "masked", "ok", "masked_bad", "bad"};
                    cell c = cell_of(v[d], masked);
                    char r[32];
                    if (c.k == K_MASKED) snprintf(r, sizeof r, "nan"); /* r is not defined there */
                    else snprintf(r, sizeof r, "%.3g", v[d]);
                    ok = gzprintf(f, "%d\t%d\t%d\t%d\t%s\t%s\n", (int)b, (int)hd, (int)q, (int)d, r,
                                  c.k == K_R && c.r > 1.0 ? "over" : name[c.k]) > 0;
                }
            }
    }
    /* Write errors show on a call or, for the buffered tail, on close. */
    char why[128] = "";
    int zerr = Z_OK;
    if (!ok) {
        const char *m = gzerror(f, &zerr);
        snprintf(why, sizeof why, "%s", zerr == Z_ERRNO ? strerror(errno) : m);
    }
    int closed = gzclose(f);
    if (ok && closed != Z_OK) snprintf(why, sizeof why, "%s", closed == Z_ERRNO ? strerror(errno) : "zlib error");
    if (!ok || closed != Z_OK) {
        struct stat sb; /* only a regular file is removed: /dev/full stays */
        if (!stat(path, &sb) && S_ISREG(sb.st_mode)) remove(path);
        return ac_fail(err, AC_ERR_IO, "%s: cannot write: %s", path, why);
    }
    return AC_OK;
}

ac_status ac_errpic_write(const ac_errpic_src *s, const char *stem, ac_error *err)
{
    if (!stem) return ac_fail(err, AC_ERR_NULL, "stem = NULL: must name the pictures' path prefix");
    size_t n = strlen(stem) + 16;
    char *p = malloc(n);
    if (!p) return ac_fail(err, AC_ERR_NOMEM, "%s: out of memory", stem);
    snprintf(p, n, "%s-heat.png", stem);
    ac_status st = ac_errpic_heatmap(s, p, err);
    if (!st) {
        snprintf(p, n, "%s-rows.png", stem);
        st = ac_errpic_rows(s, p, err);
    }
    if (!st) {
        snprintf(p, n, "%s-map.tsv.gz", stem);
        st = ac_errpic_table(s, p, err);
    }
    free(p);
    return st;
}

ac_status ac_errpic_write_case(const ac_case *c, const int32_t *cu_seqlens_q, int64_t rows, const double *err_map,
                               const int32_t *n_allowed, const char *stem, ac_error *err)
{
    if (!c) return ac_fail(err, AC_ERR_NULL, "c = NULL: must be the case the map belongs to");
    if (c->op == AC_OP_STORE)
        return ac_fail(err, AC_ERR_UNSUPPORTED, "op = store: judged bit for bit, it has no error map to draw");
    char line[512];
    ac_case_line(c, line, sizeof line);
    ac_errpic_src s = {err_map, rows, ac_case_dv(c), c->heads_q, c->batch, cu_seqlens_q, line, n_allowed};
    return ac_errpic_write(&s, stem, err);
}
