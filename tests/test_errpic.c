/* ac_errpic: the heatmap read back with libpng's reader, pixel by pixel, for
 * an exact row, an over-bound element, a fully masked row (which must not
 * look exact), a masked row with a nonzero output, an unchecked row and a
 * NaN output; the table read back with zlib; named errors on bad input and
 * on paths that cannot be written (nothing left behind). */
#include <criterion/criterion.h>
#include <math.h>
#include <png.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include <zlib.h>

#include "ac_errpic.h"
#include "ac_file.h"

enum { B = 2, HQ = 2, D = 8, TOKENS = 8, ROWS = TOKENS * HQ };

/* Map rows are token * HQ + head. Sequences: tokens [0, 3) and [3, 8). */
enum {
    ROW_EXACT = 0,      /* token 0 head 0: r = 0 everywhere (O equals O*) */
    ROW_UNCHECKED = 2,  /* token 1 head 0: not evaluated, NaN */
    ROW_OVER = 5,       /* token 2 head 1: r = 40 at dim 3 */
    ROW_MASKED = 6,     /* token 3 head 0: no allowed key, O = 0 */
    ROW_NAN_OUT = 9,    /* token 4 head 1: NaN output, r = inf */
    ROW_MASKED_BAD = 12 /* token 6 head 0: no allowed key, O != 0 at dim 2 */
};

typedef struct fixture {
    int32_t cu[B + 1];
    double map[ROWS * D];
    int32_t n_allowed[ROWS];
    ac_errpic_src src;
} fixture;

static void make(fixture *f)
{
    static const int32_t cu[B + 1] = {0, 3, 8};
    memcpy(f->cu, cu, sizeof cu);
    for (int i = 0; i < ROWS * D; i++) f->map[i] = 0.001 + 0.01 * (i % 50);
    for (int r = 0; r < ROWS; r++) f->n_allowed[r] = 5;
    for (int d = 0; d < D; d++) {
        f->map[ROW_EXACT * D + d] = 0.0;
        f->map[ROW_UNCHECKED * D + d] = NAN;
        f->map[ROW_MASKED * D + d] = 0.0;
        f->map[ROW_NAN_OUT * D + d] = INFINITY;
        f->map[ROW_MASKED_BAD * D + d] = 0.0;
    }
    f->map[ROW_OVER * D + 3] = 40.0;
    f->map[ROW_MASKED_BAD * D + 2] = 0.5; /* |O| / bound where O must be 0 */
    f->n_allowed[ROW_UNCHECKED] = -1;
    f->n_allowed[ROW_MASKED] = 0;
    f->n_allowed[ROW_MASKED_BAD] = 0;
    ac_errpic_src s = {f->map, ROWS, D, HQ, B, f->cu, "test map", f->n_allowed};
    f->src = s;
}

/* Heatmap row of a map row: sequence blocks, head blocks, then position. */
static int display_row(const fixture *f, int row)
{
    int tok = row / HQ, head = row % HQ, b = tok >= f->cu[1];
    int lq = f->cu[b + 1] - f->cu[b];
    return f->cu[b] * HQ + head * lq + (tok - f->cu[b]);
}

typedef struct image { png_uint_32 w, h; uint8_t *px; } image;

static image read_png(const char *path)
{
    png_image im;
    memset(&im, 0, sizeof im);
    im.version = PNG_IMAGE_VERSION;
    cr_assert(png_image_begin_read_from_file(&im, path), "%s: %s", path, im.message);
    im.format = PNG_FORMAT_RGB;
    image out = {im.width, im.height, malloc(PNG_IMAGE_SIZE(im))};
    cr_assert(out.px);
    cr_assert(png_image_finish_read(&im, NULL, out.px, 0, NULL), "%s: %s", path, im.message);
    return out;
}

/* The centre pixel of a map element's cell. */
static const uint8_t *cell_px(const image *im, const fixture *f, int row, int dim)
{
    int k = AC_ERRPIC_CELL_MAX_PX; /* 16 rows and 8 dims fit at the largest cell */
    int x = AC_ERRPIC_HEAT_X0 + dim * k + k / 2, y = AC_ERRPIC_HEAT_Y0 + display_row(f, row) * k + k / 2;
    cr_assert((png_uint_32)x < im->w && (png_uint_32)y < im->h);
    return im->px + ((size_t)y * im->w + x) * 3;
}

static int is_rgb(const uint8_t *p, int r, int g, int b) { return p[0] == r && p[1] == g && p[2] == b; }

#define ASSERT_RGB(p, what, ...)                                                                         \
    do {                                                                                                 \
        const uint8_t *p_ = (p);                                                                         \
        cr_assert(is_rgb(p_, __VA_ARGS__), "%s: got (%d, %d, %d)", what, p_[0], p_[1], p_[2]);           \
    } while (0)

Test(errpic, heatmap_pixels)
{
    fixture f;
    make(&f);
    char path[128];
    snprintf(path, sizeof path, "/tmp/ac_test_errpic_%d-heat.png", (int)getpid());
    ac_error e;
    cr_assert_eq(ac_errpic_heatmap(&f.src, path, &e), AC_OK, "%s", e.msg);
    image im = read_png(path);
    /* r = 0 sits at the bottom of the scale: its navy end (docs/PICTURES.md). */
    ASSERT_RGB(cell_px(&im, &f, ROW_EXACT, 0), "exact row", 15, 20, 70);
    ASSERT_RGB(cell_px(&im, &f, ROW_MASKED, 0), "masked row", AC_ERRPIC_RGB_MASKED);
    cr_assert(memcmp(cell_px(&im, &f, ROW_EXACT, 5), cell_px(&im, &f, ROW_MASKED, 5), 3),
              "a fully masked row must not look like an exact one");
    const uint8_t *over = cell_px(&im, &f, ROW_OVER, 3), *beside = cell_px(&im, &f, ROW_OVER, 2);
    cr_assert(over[0] >= 200 && over[2] == 0, "r = 40: warm, got (%d, %d, %d)", over[0], over[1], over[2]);
    cr_assert(beside[2] > beside[0], "r < 1: cool, got (%d, %d, %d)", beside[0], beside[1], beside[2]);
    ASSERT_RGB(cell_px(&im, &f, ROW_MASKED_BAD, 2), "masked row, O != 0", AC_ERRPIC_RGB_MASKED_BAD);
    ASSERT_RGB(cell_px(&im, &f, ROW_MASKED_BAD, 0), "masked row, O = 0 there", AC_ERRPIC_RGB_MASKED);
    ASSERT_RGB(cell_px(&im, &f, ROW_UNCHECKED, 4), "unchecked row", AC_ERRPIC_RGB_UNCHECKED);
    ASSERT_RGB(cell_px(&im, &f, ROW_NAN_OUT, 7), "NaN output", AC_ERRPIC_RGB_BAD);
    free(im.px);
    unlink(path);
}

/* All lines of a gzip file, for strstr. */
static char *read_gz(const char *path, int *lines)
{
    gzFile g = gzopen(path, "rb");
    cr_assert(g, "cannot open %s", path);
    size_t cap = 1 << 16, n = 0;
    char *all = malloc(cap), line[256];
    cr_assert(all);
    all[0] = '\0';
    *lines = 0;
    while (gzgets(g, line, sizeof line)) {
        size_t k = strlen(line);
        if (n + k + 1 > cap) all = realloc(all, cap *= 2);
        memcpy(all + n, line, k + 1);
        n += k;
        (*lines)++;
    }
    gzclose(g);
    return all;
}

Test(errpic, writes_pictures_and_table)
{
    fixture f;
    make(&f);
    char stem[128], p[160];
    snprintf(stem, sizeof stem, "/tmp/ac_test_errpic_%d", (int)getpid());
    ac_error e;
    cr_assert_eq(ac_errpic_write(&f.src, stem, &e), AC_OK, "%s", e.msg);
    snprintf(p, sizeof p, "%s-rows.png", stem);
    image im = read_png(p);
    cr_assert(im.w > 0 && im.h > 0);
    free(im.px);
    unlink(p);
    snprintf(p, sizeof p, "%s-heat.png", stem);
    unlink(p);

    snprintf(p, sizeof p, "%s-map.tsv.gz", stem);
    int lines;
    char *t = read_gz(p, &lines);
    cr_assert(strstr(t, "# title: test map\n"), "%s", t);
    cr_assert(strstr(t, "# batch=2 heads_q=2 head_dim=8 cu_seqlens_q=0,3,8\n"));
    cr_assert(strstr(t, "\nseq\thead\trow\tdim\tr\tstate\n"));
    /* seq head row dim r state; row = position in the sequence */
    cr_assert(strstr(t, "\n0\t0\t0\t0\t0\tok\n"), "exact row");
    cr_assert(strstr(t, "\n0\t1\t2\t3\t40\tover\n"), "over-bound element");
    cr_assert(strstr(t, "\n1\t0\t0\t0\tnan\tmasked\n"), "masked row");
    cr_assert(strstr(t, "\n1\t0\t3\t2\t0.5\tmasked_bad\n"), "masked row with O != 0");
    cr_assert(strstr(t, "\n1\t1\t1\t0\tinf\tbad\n"), "NaN output");
    cr_assert(!strstr(t, "\n0\t0\t1\t"), "the unchecked row is left out");
    cr_assert_eq(lines, 3 + (ROWS - 1) * D, "3 header lines and one per element of the evaluated rows");
    free(t);

    /* scripts/plot_errmap.py reads the same table (its summary needs no
       matplotlib): the worst element is the NaN output. */
    char cmd[512], line[256];
    snprintf(cmd, sizeof cmd, "%s %s/scripts/plot_errmap.py --summary %s", AC_PYTHON, AC_SOURCE_DIR, p);
    FILE *pp = popen(cmd, "r");
    cr_assert(pp, "cannot run %s", cmd);
    int seen_worst = 0, seen_counts = 0;
    while (fgets(line, sizeof line, pp)) {
        seen_worst |= !strcmp(line, "worst: r = inf (bad) at seq 1 head 1 row 1 dim 0\n");
        seen_counts |= strstr(line, "masked 15, masked_bad 1") != NULL && strstr(line, "15 of 16 rows evaluated");
    }
    cr_assert_eq(pclose(pp), 0, "%s failed", cmd);
    cr_assert(seen_worst && seen_counts, "plot_errmap.py --summary misread the table");
    unlink(p);
}

Test(errpic, bad_input_is_named)
{
    fixture f;
    make(&f);
    char path[128];
    snprintf(path, sizeof path, "/tmp/ac_test_errpic_bad_%d.png", (int)getpid());
    unlink(path);
    ac_error e;
    f.src.rows = 15;
    cr_assert_eq(ac_errpic_heatmap(&f.src, path, &e), AC_ERR_SHAPE);
    cr_assert(strstr(e.msg, "src.rows = 15"), "%s", e.msg);
    f.src.rows = ROWS;
    f.cu[1] = 9;
    cr_assert_eq(ac_errpic_rows(&f.src, path, &e), AC_ERR_SEQLENS);
    cr_assert(strstr(e.msg, "cu_seqlens_q[2]"), "%s", e.msg);
    f.cu[1] = 3;
    f.src.err_map = NULL;
    cr_assert_eq(ac_errpic_table(&f.src, path, &e), AC_ERR_NULL);
    cr_assert(strstr(e.msg, "err_map"), "%s", e.msg);
    cr_assert_eq(access(path, F_OK), -1, "nothing written on bad input");
    ac_case store;
    memset(&store, 0, sizeof store);
    store.op = AC_OP_STORE;
    cr_assert_eq(ac_errpic_write_case(&store, f.cu, ROWS, f.map, NULL, "/tmp/x", &e), AC_ERR_UNSUPPORTED);
}

Test(errpic, unwritable_paths_are_named)
{
    fixture f;
    make(&f);
    ac_error e;
    cr_assert_eq(ac_errpic_write(&f.src, "/nonexistent-ac-dir/case", &e), AC_ERR_IO);
    cr_assert(strstr(e.msg, "/nonexistent-ac-dir/case-heat.png"), "%s", e.msg);
    cr_assert_eq(ac_errpic_table(&f.src, "/nonexistent-ac-dir/m.tsv.gz", &e), AC_ERR_IO);
    cr_assert(strstr(e.msg, "/nonexistent-ac-dir/m.tsv.gz"), "%s", e.msg);
    char file[128], under[160];
    snprintf(file, sizeof file, "/tmp/ac_test_errpic_file_%d", (int)getpid());
    FILE *fp = fopen(file, "w");
    cr_assert(fp);
    fclose(fp);
    snprintf(under, sizeof under, "%s/sub/dir", file); /* below a plain file: ENOTDIR */
    cr_assert_eq(ac_mkdirs(under, &e), AC_ERR_IO);
    cr_assert(strstr(e.msg, file), "%s", e.msg);
    unlink(file);
}

/* The table fails half way under a 2 KB file size limit (this test's
   process only): AC_ERR_IO naming it, and nothing is left. */
Test(errpic, failed_table_write_removes_the_file)
{
    fixture f;
    make(&f);
    enum { BIG_ROWS = 4000 * HQ };
    static double map[BIG_ROWS * D];
    static int32_t cu[2] = {0, 4000};
    uint32_t s = 1;
    for (int i = 0; i < BIG_ROWS * D; i++) {
        s = s * 1664525u + 1013904223u;
        map[i] = (s >> 8) * 0x1p-20; /* distinct values: the gzip stream stays large */
    }
    ac_errpic_src src = {map, BIG_ROWS, D, HQ, 1, cu, "big", NULL};
    char path[128];
    snprintf(path, sizeof path, "/tmp/ac_test_errpic_fsize_%d.tsv.gz", (int)getpid());
    unlink(path);
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit lim = {2048, 2048};
    cr_assert_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
    ac_error e;
    cr_assert_eq(ac_errpic_table(&src, path, &e), AC_ERR_IO);
    cr_assert(strstr(e.msg, path), "%s", e.msg);
    cr_assert_eq(access(path, F_OK), -1, "the partial file is removed");
}
