/* PNG files through libpng (linked statically: the GPU host has no libpng):
 * 8-bit RGB, deflate at level 9 with libpng's adaptive row filters, and
 * optional tEXt chunks (the case line of an error picture goes there, since
 * the pictures carry no rendered text). */
#ifndef AC_PNG_H
#define AC_PNG_H

#include <stdint.h>

#include "ac_status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Largest width or height accepted: keeps every size computation far from
   overflow (16384^2 * 3 bytes < 2^30). */
#define AC_PNG_MAX_SIDE 16384

/* At most this many text chunks per file. */
#define AC_PNG_MAX_TEXT 8

/* One tEXt chunk. PNG keys are 1-79 Latin-1 characters ("Title",
   "Description", ...); the text may be any length. */
typedef struct ac_png_text {
    const char *key;
    const char *text;
} ac_png_text;

/* Writes rgb (height rows of width pixels, 3 bytes each, top row first) to
   path, with n_text text chunks (text may be NULL when n_text = 0).
   AC_ERR_NULL / AC_ERR_SHAPE on bad arguments (nothing written),
   AC_ERR_NOMEM, AC_ERR_IO naming the path (a partly written file is removed). */
ac_status ac_png_write_rgb(const char *path, int32_t width, int32_t height, const uint8_t *rgb,
                           const ac_png_text *text, int32_t n_text, ac_error *err);

#ifdef __cplusplus
}
#endif
#endif
