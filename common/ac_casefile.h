/* Case files: one saved case per file in corpus/, a bug report's attachment,
 * a fuzzer's seed. A small, versioned, line-oriented text format
 * (docs/CASEFILE.md): the case struct field by field plus the explicit
 * metadata that the seed cannot regenerate (lengths, block table, slot
 * mapping), a title, an optional note and the expected result.
 *
 * The parser takes arbitrary bytes (a libFuzzer target runs it): it never
 * reads past `len`, never crashes and never leaks, and reports every defect
 * as AC_ERR_PARSE with "line N: key 'k': ..." in the message. It checks
 * syntax and allocation bounds only: whether the layout is legal is
 * ac_case_validate's business, so a file may hold an invalid layout on
 * purpose together with `expect error AC_ERR_...`. */
#ifndef AC_CASEFILE_H
#define AC_CASEFILE_H

#include <stddef.h>
#include <stdio.h>

#include "ac_case.h"
#include "ac_status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define AC_CASEFILE_VERSION 1
/* Bound on explicit entries (batch * max_blocks_per_seq table entries, and
   num_tokens slots): 2^26, so a hostile file cannot ask for more than
   512 MiB of slot mapping before a single value is read. */
#define AC_CASEFILE_MAX_ENTRIES (1 << 26)
/* ac_casefile_load refuses larger files (the biggest legal file is smaller:
   2^26 entries of a few bytes each fit in well under this). */
#define AC_CASEFILE_MAX_BYTES ((size_t)1 << 30)

typedef struct ac_casefile {
    ac_case c;
    char title[512];      /* one line, no NUL/CR/LF; may be empty */
    char *note;           /* malloc'd, lines joined by '\n', or NULL (no note) */
    int expect_error;     /* 0: `expect ok`; 1: `expect error <expect_code>` */
    ac_status expect_code;/* AC_OK when expect_error == 0 */
} ac_casefile;

/* Empty file: ac_case_init defaults, empty title, no note, expect ok. */
void ac_casefile_init(ac_casefile *f);
/* Free the case arrays and the note; leaves f as after ac_casefile_init. */
void ac_casefile_free(ac_casefile *f);

/* f (owning nothing) becomes a deep copy of c with title = ac_case_line(c),
   no note and expect ok. */
ac_status ac_casefile_from_case(ac_casefile *f, const ac_case *c, ac_error *err);
/* Replace f's note with a copy of `note` (NULL or "" removes it). */
ac_status ac_casefile_set_note(ac_casefile *f, const char *note, ac_error *err);

/* Parse `len` bytes (need not be NUL-terminated; may hold any byte).
   `out` must own nothing: it is overwritten. On success it owns the arrays;
   on error it is left as after ac_casefile_init and the code is AC_ERR_PARSE
   (or AC_ERR_NOMEM). */
ac_status ac_casefile_parse(const char *text, size_t len, ac_casefile *out, ac_error *err);

/* Canonical text of f (malloc'd, NUL-terminated, *len excludes the NUL):
   parse(write(f)) equals f (ac_casefile_equal) and write(parse(t)) == t for
   every canonical t. Refuses what the format cannot say: an enum out of range
   or unknown special bits (AC_ERR_UNSUPPORTED), a flag not 0/1, a size past
   the parser's bounds, a title or note holding NUL/CR (or LF in the title)
   (AC_ERR_SHAPE), a missing array (AC_ERR_NULL). */
ac_status ac_casefile_write(const ac_casefile *f, char **text, size_t *len, ac_error *err);

/* Read and parse a file / write the canonical text to a file. Messages are
   prefixed with the path. */
ac_status ac_casefile_load(const char *path, ac_casefile *out, ac_error *err);
ac_status ac_casefile_save(const char *path, const ac_casefile *f, ac_error *err);

/* 1 if a and b describe the same file: every case field (arrays by content;
   scale only when scale_given), title, note (NULL == ""), expectation. */
int ac_casefile_equal(const ac_casefile *a, const ac_casefile *b);

/* Readable multi-line description for humans: the case line, the fields, a
   per-sequence table (Lq, Lk, blocks used), block-table rows with the unread
   entries marked, a slot-mapping summary and the expectation. Safe on
   invalid layouts (it is what you run on an `expect error` file). */
void ac_casefile_describe(const ac_casefile *f, FILE *out);

#ifdef __cplusplus
}
#endif
#endif
