/* ac_errpic: named errors on bad input (nothing written), and both pictures
 * written as PNG files for a small map with a failing, a NaN-output and an
 * unchecked row. What they look like is checked by eye (docs/PICTURES.md). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "ac_errpic.h"

static int is_png(const char *path)
{
    unsigned char b[8] = {0};
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    size_t n = fread(b, 1, 8, f);
    fclose(f);
    return n == 8 && b[0] == 0x89 && b[1] == 'P' && b[2] == 'N' && b[3] == 'G';
}

Test(errpic, writes_both_pictures)
{
    enum { B = 2, HQ = 2, D = 8 };
    int32_t cu[B + 1] = {0, 3, 8};
    double map[8 * HQ * D];
    for (int i = 0; i < 8 * HQ * D; i++) map[i] = 0.01 * (i % 50);
    map[5 * D + 3] = 40.0;                          /* fails */
    for (int d = 0; d < D; d++) map[9 * D + d] = INFINITY; /* NaN output row */
    for (int d = 0; d < D; d++) map[2 * D + d] = NAN;      /* unchecked row */
    ac_errpic_src s = {map, 8 * HQ, D, HQ, B, cu, "test map"};
    char stem[128], p[160];
    snprintf(stem, sizeof stem, "/tmp/ac_test_errpic_%d", (int)getpid());
    ac_error e;
    cr_assert_eq(ac_errpic_write(&s, stem, &e), AC_OK, "%s", e.msg);
    snprintf(p, sizeof p, "%s-heat.png", stem);
    cr_assert(is_png(p), "%s", p);
    unlink(p);
    snprintf(p, sizeof p, "%s-rows.png", stem);
    cr_assert(is_png(p), "%s", p);
    unlink(p);
}

Test(errpic, bad_input_is_named)
{
    int32_t cu[3] = {0, 3, 8};
    double map[16 * 8] = {0};
    ac_errpic_src s = {map, 16, 8, 2, 2, cu, NULL};
    char path[128];
    snprintf(path, sizeof path, "/tmp/ac_test_errpic_bad_%d.png", (int)getpid());
    unlink(path);
    ac_error e;
    s.rows = 15;
    cr_assert_eq(ac_errpic_heatmap(&s, path, &e), AC_ERR_SHAPE);
    cr_assert(strstr(e.msg, "src.rows = 15"), "%s", e.msg);
    s.rows = 16;
    cu[1] = 9;
    cr_assert_eq(ac_errpic_rows(&s, path, &e), AC_ERR_SEQLENS);
    cr_assert(strstr(e.msg, "cu_seqlens_q[2]"), "%s", e.msg);
    cu[1] = 3;
    s.err_map = NULL;
    cr_assert_eq(ac_errpic_heatmap(&s, path, &e), AC_ERR_NULL);
    cr_assert(strstr(e.msg, "err_map"), "%s", e.msg);
    cr_assert_eq(access(path, F_OK), -1, "nothing written on bad input");
}
