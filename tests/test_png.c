/* ac_png: files written through libpng, read back twice: with libpng's own
 * reader, and with tests/png_decode.py, a decoder on python3's zlib alone
 * that shares no code with libpng (chunk CRCs, row filters, text chunks).
 * Also: the files are compressed, and errors are named values. */
#include <criterion/criterion.h>
#include <png.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "ac_png.h"

static void pattern(uint8_t *rgb, int w, int h, uint32_t seed)
{
    uint32_t s = seed;
    for (size_t i = 0; i < (size_t)w * h * 3; i++) {
        s = s * 1664525u + 1013904223u;
        rgb[i] = (uint8_t)(s >> 24);
    }
}

static void tmp_name(char *buf, size_t n, const char *tag)
{
    snprintf(buf, n, "/tmp/ac_test_png_%d_%s.png", (int)getpid(), tag);
}

static long file_size(const char *path)
{
    struct stat sb;
    return stat(path, &sb) ? -1 : (long)sb.st_size;
}

/* libpng's simplified reader: the file must be 8-bit RGB, and its pixels
   exactly rgb. */
static void check_with_libpng(const char *path, int w, int h, const uint8_t *rgb)
{
    png_image im;
    memset(&im, 0, sizeof im);
    im.version = PNG_IMAGE_VERSION;
    cr_assert(png_image_begin_read_from_file(&im, path), "%s: %s", path, im.message);
    cr_assert_eq(im.width, (png_uint_32)w, "width");
    cr_assert_eq(im.height, (png_uint_32)h, "height");
    cr_assert_eq(im.format, PNG_FORMAT_RGB, "stored as 8-bit RGB, got format %u", im.format);
    uint8_t *got = malloc(PNG_IMAGE_SIZE(im));
    cr_assert(got);
    cr_assert(png_image_finish_read(&im, NULL, got, 0, NULL), "%s: %s", path, im.message);
    for (int y = 0; y < h; y++)
        cr_assert(!memcmp(got + (size_t)y * w * 3, rgb + (size_t)y * w * 3, (size_t)w * 3), "row %d: pixels", y);
    free(got);
}

Test(png, roundtrip_small_and_one_pixel)
{
    uint8_t rgb[7 * 5 * 3];
    pattern(rgb, 7, 5, 1);
    char path[128];
    tmp_name(path, sizeof path, "small");
    ac_error e;
    cr_assert_eq(ac_png_write_rgb(path, 7, 5, rgb, NULL, 0, &e), AC_OK, "%s", e.msg);
    check_with_libpng(path, 7, 5, rgb);
    uint8_t one[3] = {255, 0, 128};
    cr_assert_eq(ac_png_write_rgb(path, 1, 1, one, NULL, 0, &e), AC_OK, "%s", e.msg);
    check_with_libpng(path, 1, 1, one);
    unlink(path);
}

/* Noise defeats every row filter's prediction, smooth gradients invite
   them: together they take libpng through several filter types. */
Test(png, independent_decoder_agrees)
{
    int w = 300, h = 257;
    uint8_t *rgb = malloc((size_t)w * h * 3);
    cr_assert(rgb);
    pattern(rgb, w, h, 7);
    for (int y = 0; y < h / 2; y++)
        for (int x = 0; x < w; x++) {
            uint8_t *p = rgb + ((size_t)y * w + x) * 3;
            p[0] = (uint8_t)x;
            p[1] = (uint8_t)(x + y);
            p[2] = (uint8_t)(3 * y);
        }
    char path[128];
    tmp_name(path, sizeof path, "big");
    ac_png_text t[2] = {{"Title", "prefill bf16 B=1 seed=7"}, {"Description", "worst r = 3.5"}};
    ac_error e;
    cr_assert_eq(ac_png_write_rgb(path, w, h, rgb, t, 2, &e), AC_OK, "%s", e.msg);
    check_with_libpng(path, w, h, rgb);

    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s %s/tests/png_decode.py %s 0 0 299 256 17 200", AC_PYTHON, AC_SOURCE_DIR, path);
    FILE *pp = popen(cmd, "r");
    cr_assert(pp, "cannot run %s", cmd);
    char line[512];
    int seen_size = 0, seen_crc = 0, seen_px = 0, seen_title = 0, seen_desc = 0;
    while (fgets(line, sizeof line, pp)) {
        unsigned long a, b, x, y, r, g, bl;
        if (sscanf(line, "size %lu %lu", &a, &b) == 2) {
            cr_assert(a == (unsigned long)w && b == (unsigned long)h, "%s", line);
            seen_size = 1;
        } else if (sscanf(line, "crc32 %lu", &a) == 1) {
            cr_assert_eq(a, crc32(0, rgb, (uInt)((size_t)w * h * 3)), "pixels differ: %s", line);
            seen_crc = 1;
        } else if (sscanf(line, "pixel %lu %lu %lu %lu %lu", &x, &y, &r, &g, &bl) == 5) {
            const uint8_t *p = rgb + (y * w + x) * 3;
            cr_assert(r == p[0] && g == p[1] && bl == p[2], "%s", line);
            seen_px++;
        } else if (!strcmp(line, "text Title=prefill bf16 B=1 seed=7\n")) {
            seen_title = 1;
        } else if (!strcmp(line, "text Description=worst r = 3.5\n")) {
            seen_desc = 1;
        }
    }
    int rc = pclose(pp);
    cr_assert_eq(rc, 0, "the decoder failed on %s", path);
    cr_assert(seen_size && seen_crc && seen_px == 3 && seen_title && seen_desc, "decoder output incomplete");
    free(rgb);
    unlink(path);
}

/* A picture-like image, 1024 x 768 of flat rectangles: 2.36 MB of pixels,
   which the stored blocks of the old writer kept at that size. Deflate
   takes flat runs to a few bytes a row; 20 KB is generous. */
Test(png, flat_picture_is_compressed)
{
    int w = 1024, h = 768;
    uint8_t *rgb = malloc((size_t)w * h * 3);
    cr_assert(rgb);
    memset(rgb, 255, (size_t)w * h * 3);
    for (int y = 100; y < 600; y++)
        for (int x = 40; x < 1000; x++) {
            uint8_t *p = rgb + ((size_t)y * w + x) * 3;
            p[0] = (uint8_t)(15 + (x / 64) * 10);
            p[1] = (uint8_t)(20 + (y / 50) * 20);
            p[2] = 70;
        }
    char path[128];
    tmp_name(path, sizeof path, "flat");
    ac_error e;
    cr_assert_eq(ac_png_write_rgb(path, w, h, rgb, NULL, 0, &e), AC_OK, "%s", e.msg);
    long n = file_size(path);
    cr_assert(n > 0 && n < 20000, "%ld bytes for %d raw", n, w * h * 3);
    check_with_libpng(path, w, h, rgb);
    free(rgb);
    unlink(path);
}

Test(png, bad_arguments_write_nothing)
{
    uint8_t rgb[12] = {0};
    char path[128];
    tmp_name(path, sizeof path, "bad");
    unlink(path);
    ac_error e;
    cr_assert_eq(ac_png_write_rgb(path, 0, 2, rgb, NULL, 0, &e), AC_ERR_SHAPE);
    cr_assert(strstr(e.msg, "width = 0"), "%s", e.msg);
    cr_assert_eq(ac_png_write_rgb(path, 2, AC_PNG_MAX_SIDE + 1, rgb, NULL, 0, &e), AC_ERR_SHAPE);
    cr_assert(strstr(e.msg, "height"), "%s", e.msg);
    cr_assert_eq(ac_png_write_rgb(path, 2, 2, NULL, NULL, 0, &e), AC_ERR_NULL);
    cr_assert(strstr(e.msg, "rgb"), "%s", e.msg);
    cr_assert_eq(ac_png_write_rgb(NULL, 2, 2, rgb, NULL, 0, &e), AC_ERR_NULL);
    cr_assert(strstr(e.msg, "path"), "%s", e.msg);
    ac_png_text t[1] = {{"", "x"}};
    cr_assert_eq(ac_png_write_rgb(path, 2, 2, rgb, t, 1, &e), AC_ERR_SHAPE);
    cr_assert(strstr(e.msg, "text[0].key"), "%s", e.msg);
    cr_assert_eq(ac_png_write_rgb(path, 2, 2, rgb, t, AC_PNG_MAX_TEXT + 1, &e), AC_ERR_SHAPE);
    cr_assert(strstr(e.msg, "n_text"), "%s", e.msg);
    cr_assert_eq(access(path, F_OK), -1, "nothing written on bad input");
}

Test(png, unwritable_path_is_named)
{
    uint8_t rgb[12] = {0};
    ac_error e;
    const char *nodir = "/nonexistent-ac-dir/x.png";
    cr_assert_eq(ac_png_write_rgb(nodir, 2, 2, rgb, NULL, 0, &e), AC_ERR_IO);
    cr_assert(strstr(e.msg, nodir), "the message names the path: %s", e.msg);
    cr_assert_eq(ac_png_write_rgb("/tmp", 2, 2, rgb, NULL, 0, &e), AC_ERR_IO, "a folder is not a file");
    cr_assert(strstr(e.msg, "/tmp"), "%s", e.msg);
}

/* A write that fails half way (here: a file size limit of 4 KB on a 230 KB
   image of noise) is an AC_ERR_IO naming the path, and the partial file
   is removed. The limit holds in this test's own process only. */
Test(png, failed_write_removes_the_partial_file)
{
    int w = 300, h = 257;
    uint8_t *rgb = malloc((size_t)w * h * 3);
    cr_assert(rgb);
    pattern(rgb, w, h, 3);
    char path[128];
    tmp_name(path, sizeof path, "fsize");
    unlink(path);
    signal(SIGXFSZ, SIG_IGN); /* a write past the limit then fails with EFBIG */
    struct rlimit lim = {4096, 4096};
    cr_assert_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
    ac_error e;
    cr_assert_eq(ac_png_write_rgb(path, w, h, rgb, NULL, 0, &e), AC_ERR_IO);
    cr_assert(strstr(e.msg, path), "the message names the path: %s", e.msg);
    cr_assert_eq(access(path, F_OK), -1, "the partial file is removed");
    free(rgb);
}
