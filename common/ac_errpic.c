/* Error pictures: a tiny RGB canvas, a built-in 5x7 font, and the two
 * renderings of an error map (ac_errpic.h, docs/PICTURES.md). */
#include "ac_errpic.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "ac_case.h"
#include "ac_png.h"

/* ------------------------------------------------------------------------ */
/* canvas                                                                    */

typedef struct rgb { uint8_t r, g, b; } rgb;
typedef struct canvas { int32_t w, h; uint8_t *px; } canvas;

static const rgb WHITE = {255, 255, 255}, BLACK = {0, 0, 0}, GREY = {160, 160, 160}, LIGHT = {225, 225, 225},
                 INK = {40, 40, 40};

static ac_status canvas_new(canvas *c, int32_t w, int32_t h, ac_error *err)
{
    c->w = w;
    c->h = h;
    c->px = malloc((size_t)w * (size_t)h * 3);
    if (!c->px) return ac_fail(err, AC_ERR_NOMEM, "picture %d x %d: out of memory", (int)w, (int)h);
    memset(c->px, 255, (size_t)w * (size_t)h * 3);
    return AC_OK;
}

static void put(canvas *c, int32_t x, int32_t y, rgb v)
{
    if (x < 0 || y < 0 || x >= c->w || y >= c->h) return;
    uint8_t *p = c->px + ((size_t)y * c->w + x) * 3;
    p[0] = v.r;
    p[1] = v.g;
    p[2] = v.b;
}

static void rect(canvas *c, int32_t x, int32_t y, int32_t w, int32_t h, rgb v)
{
    for (int32_t j = y; j < y + h; j++)
        for (int32_t i = x; i < x + w; i++) put(c, i, j, v);
}

static void frame(canvas *c, int32_t x, int32_t y, int32_t w, int32_t h, rgb v)
{
    rect(c, x, y, w, 1, v);
    rect(c, x, y + h - 1, w, 1, v);
    rect(c, x, y, 1, h, v);
    rect(c, x + w - 1, y, 1, h, v);
}

/* 5x7 glyphs, one byte per row, bit 4 = leftmost column. */
typedef struct glyph { char ch; uint8_t row[7]; } glyph;
static const glyph FONT[] = {
    {'0', {0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E}}, {'1', {0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E}},
    {'2', {0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F}}, {'3', {0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E}},
    {'4', {0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02}}, {'5', {0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E}},
    {'6', {0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E}}, {'7', {0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08}},
    {'8', {0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E}}, {'9', {0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C}},
    {'a', {0x00, 0x00, 0x0E, 0x01, 0x0F, 0x11, 0x0F}}, {'b', {0x10, 0x10, 0x16, 0x19, 0x11, 0x11, 0x1E}},
    {'c', {0x00, 0x00, 0x0E, 0x10, 0x10, 0x11, 0x0E}}, {'d', {0x01, 0x01, 0x0D, 0x13, 0x11, 0x11, 0x0F}},
    {'e', {0x00, 0x00, 0x0E, 0x11, 0x1F, 0x10, 0x0E}}, {'f', {0x06, 0x09, 0x08, 0x1C, 0x08, 0x08, 0x08}},
    {'g', {0x00, 0x0F, 0x11, 0x11, 0x0F, 0x01, 0x0E}}, {'h', {0x10, 0x10, 0x16, 0x19, 0x11, 0x11, 0x11}},
    {'i', {0x04, 0x00, 0x0C, 0x04, 0x04, 0x04, 0x0E}}, {'j', {0x02, 0x00, 0x06, 0x02, 0x02, 0x12, 0x0C}},
    {'k', {0x10, 0x10, 0x12, 0x14, 0x18, 0x14, 0x12}}, {'l', {0x0C, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E}},
    {'m', {0x00, 0x00, 0x1A, 0x15, 0x15, 0x11, 0x11}}, {'n', {0x00, 0x00, 0x16, 0x19, 0x11, 0x11, 0x11}},
    {'o', {0x00, 0x00, 0x0E, 0x11, 0x11, 0x11, 0x0E}}, {'p', {0x00, 0x00, 0x1E, 0x11, 0x1E, 0x10, 0x10}},
    {'q', {0x00, 0x00, 0x0F, 0x11, 0x0F, 0x01, 0x01}}, {'r', {0x00, 0x00, 0x16, 0x19, 0x10, 0x10, 0x10}},
    {'s', {0x00, 0x00, 0x0E, 0x10, 0x0E, 0x01, 0x1E}}, {'t', {0x08, 0x08, 0x1C, 0x08, 0x08, 0x09, 0x06}},
    {'u', {0x00, 0x00, 0x11, 0x11, 0x11, 0x13, 0x0D}}, {'v', {0x00, 0x00, 0x11, 0x11, 0x11, 0x0A, 0x04}},
    {'w', {0x00, 0x00, 0x11, 0x11, 0x15, 0x15, 0x0A}}, {'x', {0x00, 0x00, 0x11, 0x0A, 0x04, 0x0A, 0x11}},
    {'y', {0x00, 0x00, 0x11, 0x11, 0x0F, 0x01, 0x0E}}, {'z', {0x00, 0x00, 0x1F, 0x02, 0x04, 0x08, 0x1F}},
    {'A', {0x0E, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11}}, {'B', {0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E}},
    {'C', {0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E}}, {'D', {0x1C, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1C}},
    {'E', {0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F}}, {'F', {0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10}},
    {'G', {0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F}}, {'H', {0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11}},
    {'I', {0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E}}, {'J', {0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C}},
    {'K', {0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11}}, {'L', {0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F}},
    {'M', {0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11}}, {'N', {0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11}},
    {'O', {0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E}}, {'P', {0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10}},
    {'Q', {0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D}}, {'R', {0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11}},
    {'S', {0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E}}, {'T', {0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04}},
    {'U', {0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E}}, {'V', {0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04}},
    {'W', {0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A}}, {'X', {0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11}},
    {'Y', {0x11, 0x11, 0x11, 0x0A, 0x04, 0x04, 0x04}}, {'Z', {0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F}},
    {'.', {0x00, 0x00, 0x00, 0x00, 0x00, 0x0C, 0x0C}}, {'-', {0x00, 0x00, 0x00, 0x1F, 0x00, 0x00, 0x00}},
    {'=', {0x00, 0x00, 0x1F, 0x00, 0x1F, 0x00, 0x00}}, {'<', {0x02, 0x04, 0x08, 0x10, 0x08, 0x04, 0x02}},
    {'>', {0x08, 0x04, 0x02, 0x01, 0x02, 0x04, 0x08}}, {'(', {0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02}},
    {')', {0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08}}, {'/', {0x00, 0x01, 0x02, 0x04, 0x08, 0x10, 0x00}},
    {':', {0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x0C, 0x00}}, {',', {0x00, 0x00, 0x00, 0x00, 0x0C, 0x04, 0x08}},
    {'+', {0x00, 0x04, 0x04, 0x1F, 0x04, 0x04, 0x00}}, {'_', {0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x1F}},
    {'[', {0x0E, 0x08, 0x08, 0x08, 0x08, 0x08, 0x0E}}, {']', {0x0E, 0x02, 0x02, 0x02, 0x02, 0x02, 0x0E}},
    {'*', {0x00, 0x04, 0x15, 0x0E, 0x15, 0x04, 0x00}}, {'|', {0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04}},
    {'%', {0x18, 0x19, 0x02, 0x04, 0x08, 0x13, 0x03}}, {'#', {0x0A, 0x0A, 0x1F, 0x0A, 0x1F, 0x0A, 0x0A}},
    {'\'', {0x0C, 0x04, 0x08, 0x00, 0x00, 0x00, 0x00}}, {'"', {0x0A, 0x0A, 0x00, 0x00, 0x00, 0x00, 0x00}},
    {'!', {0x04, 0x04, 0x04, 0x04, 0x04, 0x00, 0x04}}, {'?', {0x0E, 0x11, 0x01, 0x02, 0x04, 0x00, 0x04}},
    {';', {0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x04, 0x08}}, {' ', {0, 0, 0, 0, 0, 0, 0}},
};

/* Glyph advance: 5 columns and 1 of space, times the scale. */
static int32_t text_w(const char *s, int scale) { return (int32_t)strlen(s) * 6 * scale; }

static void text(canvas *c, int32_t x, int32_t y, const char *s, int scale, rgb v)
{
    static const uint8_t unknown[7] = {0x1F, 0x11, 0x11, 0x11, 0x11, 0x11, 0x1F};
    for (; *s; s++, x += 6 * scale) {
        const uint8_t *g = unknown;
        for (size_t i = 0; i < sizeof FONT / sizeof FONT[0]; i++)
            if (FONT[i].ch == *s) g = FONT[i].row;
        for (int j = 0; j < 7; j++)
            for (int i = 0; i < 5; i++)
                if (g[j] & (0x10 >> i)) rect(c, x + i * scale, y + j * scale, scale, scale, v);
    }
}

/* ------------------------------------------------------------------------ */
/* colour scale                                                              */

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

static rgb ramp(const rgb *stop, int n, double t)
{
    if (t <= 0) return stop[0];
    if (t >= 1) return stop[n - 1];
    double x = t * (n - 1);
    int i = (int)x;
    return lerp(stop[i], stop[i + 1], x - i);
}

static rgb colour_of_log(double l)
{
    static const rgb cool[] = {{15, 20, 70}, {30, 70, 160}, {60, 140, 210}, {140, 210, 235}};
    static const rgb warm[] = {{255, 230, 0}, {255, 140, 0}, {225, 30, 0}, {120, 0, 0}};
    if (l <= 0) return ramp(cool, 4, (l - LOG_LO) / -LOG_LO);
    return ramp(warm, 4, l / LOG_HI);
}

static rgb colour_of(double r)
{
    if (isnan(r)) return GREY;
    if (isinf(r)) return BLACK;
    return colour_of_log(r > 0 ? log10(r) : LOG_LO);
}

/* Worst of two values of the map: an Inf (bad output) beats any finite r,
   a checked value beats NaN (unchecked). */
static double worse(double a, double b)
{
    if (isnan(a)) return b;
    if (isnan(b)) return a;
    return b > a ? b : a;
}

/* ------------------------------------------------------------------------ */

static ac_status check_src(const ac_errpic_src *s, const char *path, ac_error *err)
{
    if (!s) return ac_fail(err, AC_ERR_NULL, "src = NULL: must describe the error map");
    if (!path) return ac_fail(err, AC_ERR_NULL, "path = NULL: must name the picture file");
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

/* Sequence of query token t (last b with cu[b] <= t). */
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
    return a->k ? (int32_t)(i * a->k) : (int32_t)(i * a->px / a->n);
}

static void fmt_r(char *buf, size_t n, double r)
{
    if (isinf(r)) snprintf(buf, n, "inf (NaN/Inf output)");
    else if (isnan(r)) snprintf(buf, n, "unchecked");
    else snprintf(buf, n, "%.3g", r);
}

/* The legend: the colour bar over [1e-3, 1e3] with a tick per decade, the
   r = 1 line, and swatches for unchecked and NaN/Inf. Returns its height. */
static int32_t legend(canvas *c, int32_t x, int32_t y)
{
    const int32_t per_decade = 56, bar_w = per_decade * 6, bar_h = 16;
    text(c, x, y, "r = |err| / bound (log scale; fail when r > 1)", 1, INK);
    y += 12;
    for (int32_t i = 0; i < bar_w; i++) rect(c, x + i, y, 1, bar_h, colour_of_log(LOG_LO + 6.0 * (i + 0.5) / bar_w));
    frame(c, x - 1, y - 1, bar_w + 2, bar_h + 2, INK);
    static const char *lab[] = {"1e-3", "0.01", "0.1", "1", "10", "100", "1e3"};
    for (int d = 0; d <= 6; d++) {
        int32_t tx = x + d * per_decade - (d == 6);
        rect(c, tx, y + bar_h, 1, 5, INK);
        text(c, tx - text_w(lab[d], 1) / 2, y + bar_h + 7, lab[d], 1, INK);
    }
    /* r = 1: a heavy black line through the bar. */
    rect(c, x + 3 * per_decade - 1, y - 4, 3, bar_h + 8, BLACK);
    int32_t sx = x + bar_w + 24;
    rect(c, sx, y, bar_h, bar_h, GREY);
    text(c, sx + bar_h + 6, y + 4, "unchecked row", 1, INK);
    rect(c, sx + 110, y, bar_h, bar_h, BLACK);
    text(c, sx + 110 + bar_h + 6, y + 4, "NaN/Inf output", 1, INK);
    return 12 + bar_h + 7 + 10;
}

ac_status ac_errpic_heatmap(const ac_errpic_src *s, const char *path, ac_error *err)
{
    ac_status st = check_src(s, path, err);
    if (st) return st;
    /* Square cells of k x k (k <= 12) while both axes fit; an axis with more
       elements than AC_ERRPIC_MAX_PX pixels takes the max over each pixel's
       share, and then the other axis keeps its own k. */
    axis ax = make_axis(s->head_dim, 12, AC_ERRPIC_MAX_PX), ay = make_axis(s->rows, 12, AC_ERRPIC_MAX_PX);
    if (ax.k && ay.k) {
        int32_t k = ax.k < ay.k ? ax.k : ay.k;
        ax.k = ay.k = k;
        ax.px = (int32_t)(ax.n * k);
        ay.px = (int32_t)(ay.n * k);
    }
    const int32_t margin = 10, left = 84, top = margin + 3 * 12 + 14;
    int32_t w = left + ax.px + margin, min_w = 720;
    if (s->title && text_w(s->title, 1) + 2 * margin > min_w) min_w = text_w(s->title, 1) + 2 * margin;
    if (min_w > 1400) min_w = 1400;
    if (w < min_w) w = min_w;
    int32_t h = top + ay.px + 12 + 48 + margin; /* legend: 45 px */
    canvas cv;
    if ((st = canvas_new(&cv, w, h, err))) return st;

    /* Worst element and counts, for the caption. */
    int64_t n = s->rows * s->head_dim, worst_i = -1, n_fail = 0, n_checked = 0, n_bad = 0;
    for (int64_t i = 0; i < n; i++) {
        double v = s->err_map[i];
        if (isnan(v)) continue;
        n_checked++;
        if (v > 1.0) n_fail++;
        if (isinf(v)) n_bad++;
        if (worst_i < 0 || v > s->err_map[worst_i]) worst_i = i;
    }
    char line[512];
    text(&cv, margin, margin, s->title ? s->title : "", 1, INK);
    snprintf(line, sizeof line, "error map: %lld rows (query token x %d heads) down, %d dims across; cell = %s",
             (long long)s->rows, (int)s->heads_q, (int)s->head_dim,
             (ax.k && ay.k) ? "one element" : "max r of the elements it covers");
    text(&cv, margin, margin + 12, line, 1, INK);
    if (worst_i >= 0) {
        int64_t row = worst_i / s->head_dim, tok = row / s->heads_q;
        int32_t b = seq_of(s, tok);
        char rv[48];
        fmt_r(rv, sizeof rv, s->err_map[worst_i]);
        snprintf(line, sizeof line,
                 "worst r = %s at seq %d row %lld head %d dim %d; %lld of %lld checked elements fail (r > 1)", rv,
                 (int)b, (long long)(tok - s->cu_seqlens_q[b]), (int)(row % s->heads_q),
                 (int)(worst_i % s->head_dim), (long long)n_fail, (long long)n_checked);
    } else {
        snprintf(line, sizeof line, "no element was checked");
    }
    text(&cv, margin, margin + 24, line, 1, n_fail ? (rgb){200, 0, 0} : INK);
    (void)n_bad;

    /* Dim axis labels above the map. */
    int32_t x0 = left, y0 = top;
    char lab[32];
    text(&cv, x0, y0 - 11, "dim 0", 1, INK);
    snprintf(lab, sizeof lab, "%d", (int)s->head_dim - 1);
    if (ax.px > 60) text(&cv, x0 + ax.px - text_w(lab, 1), y0 - 11, lab, 1, INK);

    for (int32_t py = 0; py < ay.px; py++) {
        int64_t r0, r1;
        axis_range(&ay, py, &r0, &r1);
        for (int32_t px = 0; px < ax.px; px++) {
            int64_t d0, d1;
            axis_range(&ax, px, &d0, &d1);
            double v = NAN;
            for (int64_t r = r0; r < r1; r++)
                for (int64_t d = d0; d < d1; d++) v = worse(v, s->err_map[r * s->head_dim + d]);
            put(&cv, x0 + px, y0 + py, colour_of(v));
        }
    }
    frame(&cv, x0 - 1, y0 - 1, ax.px + 2, ay.px + 2, INK);

    /* Sequences: a tick and label on the left; a white line across when
       cells are tall enough to keep two pixels of their own. */
    int32_t last_label = -100;
    for (int32_t b = 0; b < s->batch; b++) {
        int64_t r = (int64_t)s->cu_seqlens_q[b] * s->heads_q;
        if (s->cu_seqlens_q[b + 1] == s->cu_seqlens_q[b]) continue; /* empty: no rows */
        int32_t y = y0 + axis_pixel(&ay, r);
        rect(&cv, x0 - 8, y, 7, 1, INK);
        if (b > 0 && (ay.k == 0 || ay.k >= 3)) rect(&cv, x0, y, ax.px, 1, WHITE);
        if (y - last_label >= 9) {
            snprintf(lab, sizeof lab, "seq %d", (int)b);
            text(&cv, x0 - 10 - text_w(lab, 1), y, lab, 1, INK);
            last_label = y;
        }
    }
    legend(&cv, margin + 14, y0 + ay.px + 12);
    st = ac_png_write_rgb(path, cv.w, cv.h, cv.px, err);
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
    /* Per query token: max r over heads and dims. */
    int64_t total_q = s->cu_seqlens_q[B];
    double *tok = malloc(sizeof(double) * (size_t)(total_q ? total_q : 1));
    double *seq_worst = malloc(sizeof(double) * (size_t)B);
    int32_t *shown = malloc(sizeof(int32_t) * (size_t)B);
    if (!tok || !seq_worst || !shown) {
        free(tok);
        free(seq_worst);
        free(shown);
        return ac_fail(err, AC_ERR_NOMEM, "%s: out of memory", path);
    }
    for (int64_t t = 0; t < total_q; t++) {
        double v = NAN;
        const double *p = s->err_map + t * s->heads_q * s->head_dim;
        for (int64_t i = 0; i < (int64_t)s->heads_q * s->head_dim; i++) v = worse(v, p[i]);
        tok[t] = v;
    }
    for (int32_t b = 0; b < B; b++) {
        double v = NAN;
        for (int64_t t = s->cu_seqlens_q[b]; t < s->cu_seqlens_q[b + 1]; t++) v = worse(v, tok[t]);
        seq_worst[b] = v;
    }
    /* At most 32 panels: the worst sequences, in their order. */
    enum { MAX_PANELS = 32 };
    int32_t np = 0;
    if (B <= MAX_PANELS) {
        for (int32_t b = 0; b < B; b++) shown[np++] = b;
    } else {
        /* Threshold = the 32nd worst value; take sequences at or above it
           (by index) until 32 are taken. */
        char *take = calloc((size_t)B, 1);
        for (int k = 0; take && k < MAX_PANELS; k++) {
            int32_t best = -1;
            for (int32_t b = 0; b < B; b++)
                if (!take[b] && (best < 0 || worse(seq_worst[best], seq_worst[b]) != seq_worst[best]))
                    best = b;
            take[best] = 1;
        }
        for (int32_t b = 0; take && b < B; b++)
            if (take[b]) shown[np++] = b;
        if (!take) np = 0;
        free(take);
        if (!np) {
            free(tok);
            free(seq_worst);
            free(shown);
            return ac_fail(err, AC_ERR_NOMEM, "%s: out of memory", path);
        }
    }

    axis ax = make_axis(max_lq, 16, AC_ERRPIC_MAX_PX);
    int32_t panel_h = (AC_ERRPIC_MAX_PX - 24 * np) / np;
    if (panel_h > 110) panel_h = 110;
    if (panel_h < 36) panel_h = 36;
    const int32_t margin = 10, left = 92, gap = 18, top = margin + 3 * 12 + 6;
    int32_t w = left + (ax.px > 200 ? ax.px : 200) + margin + 40;
    if (s->title && w < text_w(s->title, 1) + 2 * margin) w = text_w(s->title, 1) + 2 * margin;
    if (w < 720) w = 720;
    if (w > 1400 && w > left + ax.px + margin + 40) w = left + ax.px + margin + 40 > 1400 ? left + ax.px + margin + 40 : 1400;
    int32_t h = top + np * (panel_h + gap) + 20 + 60 + margin;
    canvas cv;
    if ((st = canvas_new(&cv, w, h, err))) {
        free(tok);
        free(seq_worst);
        free(shown);
        return st;
    }
    char line[512];
    text(&cv, margin, margin, s->title ? s->title : "", 1, INK);
    snprintf(line, sizeof line, "error over position: max r over %d heads and %d dims of each query position%s",
             (int)s->heads_q, (int)s->head_dim, ax.k ? "" : " (a column = max over the positions it covers)");
    text(&cv, margin, margin + 12, line, 1, INK);
    if (np < B) {
        snprintf(line, sizeof line, "showing the %d worst of %d sequences", (int)np, (int)B);
        text(&cv, margin, margin + 24, line, 1, INK);
    } else {
        text(&cv, margin, margin + 24, "bars above the black r = 1 line fail; black bar = NaN/Inf output; grey = unchecked",
             1, INK);
    }

    /* Tick step on the position axis: 1, 2, 5 x 10^k with ticks >= 40 px apart. */
    double px_per_pos = ax.k ? ax.k : (double)ax.px / ax.n;
    int64_t step = 1;
    for (int64_t m = 1;; m *= 10) {
        if (m * px_per_pos >= 40) { step = m; break; }
        if (2 * m * px_per_pos >= 40) { step = 2 * m; break; }
        if (5 * m * px_per_pos >= 40) { step = 5 * m; break; }
    }
    int32_t x0 = left;
    for (int32_t k = 0; k < np; k++) {
        int32_t b = shown[k], y0 = top + k * (panel_h + gap);
        int32_t lq = s->cu_seqlens_q[b + 1] - s->cu_seqlens_q[b];
        const double *v = tok + s->cu_seqlens_q[b];
        char lab[64];
        snprintf(lab, sizeof lab, "seq %d", (int)b);
        text(&cv, margin, y0, lab, 1, INK);
        snprintf(lab, sizeof lab, "lq %d", (int)lq);
        text(&cv, margin, y0 + 10, lab, 1, INK);
        char rv[48];
        fmt_r(rv, sizeof rv, seq_worst[b]);
        snprintf(lab, sizeof lab, "max %s", isinf(seq_worst[b]) ? "inf" : rv);
        if (panel_h >= 40) text(&cv, margin, y0 + 20, lab, 1, seq_worst[b] > 1.0 ? (rgb){200, 0, 0} : INK);
        /* Plot box: the whole axis width; positions past lq stay blank. */
        rect(&cv, x0, y0, ax.px, panel_h, (rgb){248, 248, 248});
        for (int d = -2; d <= 2; d++) {
            int32_t y = y0 + (int32_t)lround((LOG_HI - d) / (LOG_HI - LOG_LO) * (panel_h - 1));
            rect(&cv, x0, y, ax.px, 1, LIGHT);
        }
        for (int32_t px = 0; px < ax.px; px++) {
            int64_t q0, q1;
            axis_range(&ax, px, &q0, &q1);
            if (q0 >= lq) break;
            if (q1 > lq) q1 = lq;
            /* A 1-pixel gap between bars when bars are 4 pixels or wider. */
            if (ax.k >= 4 && px % ax.k == ax.k - 1) continue;
            double r = NAN;
            for (int64_t q = q0; q < q1; q++) r = worse(r, v[q]);
            if (isnan(r)) {
                rect(&cv, x0 + px, y0 + panel_h - 3, 1, 3, GREY);
                continue;
            }
            double l = isinf(r) ? LOG_HI : r > 0 ? log10(r) : LOG_LO;
            if (l < LOG_LO) l = LOG_LO;
            if (l > LOG_HI) l = LOG_HI;
            int32_t top_y = y0 + (int32_t)lround((LOG_HI - l) / (LOG_HI - LOG_LO) * (panel_h - 1));
            if (top_y > y0 + panel_h - 2) top_y = y0 + panel_h - 2; /* r <= 1e-3 still shows */
            rect(&cv, x0 + px, top_y, 1, y0 + panel_h - top_y, colour_of(r));
        }
        /* r = 1 across, on top of the bars. */
        int32_t y1 = y0 + (int32_t)lround(LOG_HI / (LOG_HI - LOG_LO) * (panel_h - 1));
        rect(&cv, x0 - 4, y1, ax.px + 8, 1, BLACK);
        frame(&cv, x0 - 1, y0 - 1, ax.px + 2, panel_h + 2, INK);
        text(&cv, x0 + ax.px + 6, y1 - 3, "1", 1, INK);
        if (panel_h >= 60) {
            text(&cv, x0 + ax.px + 6, y0, "1e3", 1, INK);
            text(&cv, x0 + ax.px + 6, y0 + panel_h - 7, "1e-3", 1, INK);
        }
        /* Position ticks under every panel, numbers under the last. */
        for (int64_t q = 0; q < max_lq; q += step) {
            int32_t x = x0 + axis_pixel(&ax, q);
            rect(&cv, x, y0 + panel_h + 1, 1, 3, INK);
            if (k == np - 1) {
                snprintf(lab, sizeof lab, "%lld", (long long)q);
                text(&cv, x, y0 + panel_h + 6, lab, 1, INK);
            }
        }
    }
    int32_t ly = top + np * (panel_h + gap) + 14;
    text(&cv, x0, ly - 2, "query position in the sequence", 1, INK);
    legend(&cv, margin + 14, ly + 14);
    st = ac_png_write_rgb(path, cv.w, cv.h, cv.px, err);
    free(cv.px);
    free(tok);
    free(seq_worst);
    free(shown);
    return st;
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
    free(p);
    return st;
}

ac_status ac_errpic_mkdirs(const char *dir, ac_error *err)
{
    if (!dir || !dir[0]) return ac_fail(err, AC_ERR_NULL, "dir = NULL or empty: must name a folder");
    size_t n = strlen(dir);
    char *tmp = malloc(n + 1);
    if (!tmp) return ac_fail(err, AC_ERR_NOMEM, "%s: out of memory", dir);
    memcpy(tmp, dir, n + 1);
    for (char *p = tmp + 1;; p++) {
        int end = *p == '\0';
        if (*p == '/' || end) {
            *p = '\0';
            if (mkdir(tmp, 0777) && errno != EEXIST) {
                int e = errno;
                ac_fail(err, AC_ERR_IO, "%s: cannot create: %s", tmp, strerror(e));
                free(tmp);
                return AC_ERR_IO;
            }
            if (end) break;
            *p = '/';
        }
    }
    free(tmp);
    return AC_OK;
}

ac_status ac_errpic_write_case(const ac_case *c, const int32_t *cu_seqlens_q, int64_t rows, const double *err_map,
                               const char *stem, ac_error *err)
{
    if (!c) return ac_fail(err, AC_ERR_NULL, "c = NULL: must be the case the map belongs to");
    if (c->op == AC_OP_STORE)
        return ac_fail(err, AC_ERR_UNSUPPORTED, "op = store: judged bit for bit, it has no error map to draw");
    char line[512];
    ac_case_line(c, line, sizeof line);
    ac_errpic_src s = {err_map, rows, c->head_dim, c->heads_q, c->batch, cu_seqlens_q, line};
    return ac_errpic_write(&s, stem, err);
}
