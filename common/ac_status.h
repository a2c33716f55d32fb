/* Errors are values: a code plus a message that names the argument and index.
 * Library code never exits or aborts; it fills an ac_error and returns its code. */
#ifndef AC_STATUS_H
#define AC_STATUS_H

#ifdef __cplusplus
extern "C" {
#endif

typedef enum ac_status {
    AC_OK = 0,
    AC_ERR_NULL,          /* a required pointer is NULL */
    AC_ERR_SHAPE,         /* a size or count is out of its legal range */
    AC_ERR_GQA,           /* heads_q % heads_kv != 0 */
    AC_ERR_SEQLENS,       /* cu_seqlens not starting at 0 / decreasing / total mismatch */
    AC_ERR_BLOCK_TABLE,   /* a used block-table entry out of [0, num_blocks) */
    AC_ERR_CAPACITY,      /* seqlens_k beyond max_blocks_per_seq * block_size */
    AC_ERR_SLOT,          /* slot out of range, or two tokens mapped to one slot */
    AC_ERR_UNSUPPORTED,   /* dtype / head dim / block size / mode this kernel lacks */
    AC_ERR_PARSE,         /* malformed case file or command-line value */
    AC_ERR_NO_DEVICE,     /* no CUDA device: the caller reports "skipped" */
    AC_ERR_CUDA,          /* a CUDA call failed */
    AC_ERR_NOMEM,         /* host allocation failed */
    AC_ERR_IO,            /* file could not be read or written */
    AC_ERR_NUMERIC,       /* the oracle met a value it cannot judge (e.g. NaN input) */
    AC_ERR_BUDGET,        /* a valid case larger than the memory or oracle-work budget */
    AC_STATUS_COUNT
} ac_status;

/* Process exit codes shared by every program of the suite. CMake reads
   AC_EXIT_SKIP from this line (AC_SKIP_CODE, ctest's SKIP_RETURN_CODE). */
#define AC_EXIT_FAIL 1   /* a check failed */
#define AC_EXIT_USAGE 2  /* usage or input error (a bad flag: before any work) */
#define AC_EXIT_SKIP 77  /* the GPU was asked for and there is none: ctest "skipped" */

typedef struct ac_error {
    ac_status code;
    char msg[256];
} ac_error;

/* Short stable name of a code, e.g. "AC_ERR_BLOCK_TABLE". */
const char *ac_status_name(ac_status s);

/* Fill err (may be NULL) with code and a printf-style message; returns code. */
ac_status ac_fail(ac_error *err, ac_status code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Reset err to AC_OK with an empty message. */
void ac_error_clear(ac_error *err);

#ifdef __cplusplus
}
#endif
#endif
