#include "ac_status.h"

#include <stdarg.h>
#include <stdio.h>

static const char *const names[AC_STATUS_COUNT] = {
    "AC_OK",           "AC_ERR_NULL",        "AC_ERR_SHAPE",    "AC_ERR_GQA",
    "AC_ERR_SEQLENS",  "AC_ERR_BLOCK_TABLE", "AC_ERR_CAPACITY", "AC_ERR_SLOT",
    "AC_ERR_UNSUPPORTED", "AC_ERR_PARSE",    "AC_ERR_NO_DEVICE", "AC_ERR_CUDA",
    "AC_ERR_NOMEM",    "AC_ERR_IO",          "AC_ERR_NUMERIC",  "AC_ERR_BUDGET",
};

const char *ac_status_name(ac_status s)
{
    return (s >= 0 && s < AC_STATUS_COUNT) ? names[s] : "AC_ERR_UNKNOWN";
}

ac_status ac_fail(ac_error *err, ac_status code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        err->code = code;
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}

void ac_error_clear(ac_error *err)
{
    if (err) {
        err->code = AC_OK;
        err->msg[0] = '\0';
    }
}
