/* libpng's write path with its errors turned into values: libpng reports an
 * error by longjmp, so the one setjmp below catches every failure after the
 * file is open, closes and removes the file, and returns AC_ERR_IO. */
#include "ac_png.h"

#include <errno.h>
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

typedef struct png_errbuf {
    char msg[160];
} png_errbuf;

/* Removes what a failed write left, but only a regular file: a path like
   /dev/full must survive a failed write to it. */
static void discard(FILE *f, const char *path)
{
    struct stat sb;
    int regular = !fstat(fileno(f), &sb) && S_ISREG(sb.st_mode);
    fclose(f);
    if (regular) remove(path);
}

static void on_error(png_structp png, png_const_charp msg)
{
    png_errbuf *e = png_get_error_ptr(png);
    snprintf(e->msg, sizeof e->msg, "%s", msg ? msg : "libpng error");
    png_longjmp(png, 1);
}

/* Warnings (e.g. about ignored ancillary data) change nothing written that
   we asked for: not printed, since library code does not write to stderr. */
static void on_warning(png_structp png, png_const_charp msg)
{
    (void)png;
    (void)msg;
}

ac_status ac_png_write_rgb(const char *path, int32_t width, int32_t height, const uint8_t *rgb,
                           const ac_png_text *text, int32_t n_text, ac_error *err)
{
    if (!path) return ac_fail(err, AC_ERR_NULL, "path = NULL: must name the PNG file");
    if (!rgb) return ac_fail(err, AC_ERR_NULL, "rgb = NULL: must point to width * height * 3 bytes");
    if (width < 1 || width > AC_PNG_MAX_SIDE)
        return ac_fail(err, AC_ERR_SHAPE, "width = %d: must be in [1, %d]", (int)width, AC_PNG_MAX_SIDE);
    if (height < 1 || height > AC_PNG_MAX_SIDE)
        return ac_fail(err, AC_ERR_SHAPE, "height = %d: must be in [1, %d]", (int)height, AC_PNG_MAX_SIDE);
    if (n_text < 0 || n_text > AC_PNG_MAX_TEXT || (n_text && !text))
        return ac_fail(err, AC_ERR_SHAPE, "n_text = %d: must be in [0, %d] with text != NULL", (int)n_text,
                       AC_PNG_MAX_TEXT);
    png_text chunks[AC_PNG_MAX_TEXT];
    memset(chunks, 0, sizeof chunks);
    for (int32_t i = 0; i < n_text; i++) {
        /* libpng would drop a bad key with only a warning: refuse it here. */
        size_t key_n = text[i].key ? strlen(text[i].key) : 0;
        if (key_n < 1 || key_n > 79)
            return ac_fail(err, AC_ERR_SHAPE, "text[%d].key: must be 1 to 79 characters", (int)i);
        chunks[i].compression = PNG_TEXT_COMPRESSION_NONE;
        chunks[i].key = (png_charp)text[i].key;
        chunks[i].text = (png_charp)(text[i].text ? text[i].text : "");
    }

    FILE *f = fopen(path, "wb");
    if (!f) return ac_fail(err, AC_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
    png_errbuf pe = {"libpng error"};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &pe, on_error, on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info) {
        png_destroy_write_struct(&png, NULL);
        discard(f, path);
        return ac_fail(err, AC_ERR_NOMEM, "%s: libpng: out of memory", path);
    }
    /* Nothing that the error branch reads is changed after setjmp, so no
       local needs to be volatile. */
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        discard(f, path);
        return ac_fail(err, AC_ERR_IO, "%s: cannot write: %s", path, pe.msg);
    }
    png_init_io(png, f);
    /* Level 9: the pictures are flat colour areas, the size is what matters. */
    png_set_compression_level(png, 9);
    png_set_IHDR(png, info, (png_uint_32)width, (png_uint_32)height, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (n_text) png_set_text(png, info, chunks, n_text);
    png_write_info(png, info);
    for (int32_t y = 0; y < height; y++) png_write_row(png, rgb + (size_t)y * (size_t)width * 3);
    png_write_end(png, info);
    png_destroy_write_struct(&png, &info);
    /* A full disk may show only when the buffered tail is flushed. */
    if (fflush(f)) {
        int e = errno;
        discard(f, path);
        return ac_fail(err, AC_ERR_IO, "%s: cannot write: %s", path, strerror(e));
    }
    if (fclose(f)) return ac_fail(err, AC_ERR_IO, "%s: cannot close: %s", path, strerror(errno));
    return AC_OK;
}
