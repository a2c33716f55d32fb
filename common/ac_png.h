/* A small PNG writer with no dependencies: 8-bit RGB, no interlace, every
 * scanline with filter 0 (none), the zlib stream made of stored (uncompressed)
 * deflate blocks, CRC-32 and Adler-32 computed here. The pictures are a few MB
 * at most, so compression is not worth a zlib dependency the GPU host lacks. */
#ifndef AC_PNG_H
#define AC_PNG_H

#include <stddef.h>
#include <stdint.h>

#include "ac_status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Largest width or height accepted: keeps every size computation far from
   overflow (16384^2 * 3 bytes < 2^30). */
#define AC_PNG_MAX_SIDE 16384

/* Writes rgb (height rows of width pixels, 3 bytes each, top row first) to
   path. AC_ERR_NULL / AC_ERR_SHAPE on bad arguments (nothing written),
   AC_ERR_NOMEM, AC_ERR_IO naming the path. */
ac_status ac_png_write_rgb(const char *path, int32_t width, int32_t height, const uint8_t *rgb, ac_error *err);

/* The checksums, exposed for the tests. ac_png_crc32 continues a CRC: pass
   0 to start (the usual pre- and post-inversion are done inside). */
uint32_t ac_png_crc32(uint32_t crc, const uint8_t *data, size_t n);
uint32_t ac_png_adler32(uint32_t adler, const uint8_t *data, size_t n); /* start with 1 */

#ifdef __cplusplus
}
#endif
#endif
