/* Reading a user's file: only a regular file (a FIFO would block, /dev/zero
 * never ends, a folder is no input), only up to a cap known before reading,
 * and never truncated in silence. Used by every reader of user input (case
 * files, fuzz inputs and corpora, dumps). */
#ifndef AC_FILE_H
#define AC_FILE_H

#include <stddef.h>
#include <stdint.h>

#include "ac_status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The whole file into *data (NUL-terminated one byte past *size, for text
   parsers; free() it). AC_ERR_IO: cannot open or read, or not a regular file
   (the message says what it is); AC_ERR_SHAPE: larger than max_bytes (the
   message gives both sizes); AC_ERR_NOMEM. Nothing is allocated on error. */
ac_status ac_read_file(const char *path, size_t max_bytes, uint8_t **data, size_t *size, ac_error *err);

/* mkdir -p: every level of `dir` that is missing. AC_ERR_IO naming the level
   that cannot be made (and why); AC_ERR_NULL for an empty name. */
ac_status ac_mkdirs(const char *dir, ac_error *err);

#ifdef __cplusplus
}
#endif
#endif
