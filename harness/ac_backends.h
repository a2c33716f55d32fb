/* The backend registry: the built-in backends (the CPU models, the CUDA
 * kernels) and any table registered at run time (a plugin), each an
 * ac_backend_ops of common/ac_backend.h, addressed by an ac_backend handle. */
#ifndef AC_BACKENDS_H
#define AC_BACKENDS_H

#include <stddef.h>

#include "ac_backend.h"

#ifdef __cplusplus
extern "C" {
#endif

/* NULL for a handle nobody registered. */
const ac_backend_ops *ac_backend_get(ac_backend be);
/* By name ("cpu" is an alias of "cpu-model"); 0 and *out, or -1. */
int ac_backend_find(const char *name, ac_backend *out);
/* Adds a table (checked: ABI version, name, available); returns its handle
   in *out. AC_ERR_UNSUPPORTED for another ABI version, AC_ERR_SHAPE when the
   registry is full or the name is taken. */
ac_status ac_backend_register(const ac_backend_ops *ops, ac_backend *out, ac_error *err);
/* The number of handles in use (built-ins included). */
int ac_backend_count(void);
const char *ac_backend_name(ac_backend be);
/* 1 if usable now; else 0 and why (the backend's own reason). */
int ac_backend_available(ac_backend be, char *why, size_t n);

/* What a registered backend needs done when a process is through with it
   (the Python bridge ends its worker). At most 8 hooks; a process that
   leaves by _exit (a fuzz walk's worker, which skips atexit) calls
   ac_backends_close first. */
void ac_backend_on_close(void (*fn)(void));
void ac_backends_close(void);

/* Run the case on the backend. Outputs are (re)allocated and poisoned first.
   Bad input gets the host API's named error and nothing is run.
   AC_ERR_NO_DEVICE when the backend is not available (the reason in the
   message), AC_ERR_UNSUPPORTED when it lacks the case's family. */
ac_status ac_backend_run(ac_backend be, const ac_case *c, const ac_tensors *t, const ac_run_opts *opts,
                         ac_outputs *out, ac_error *err);

#ifdef __cplusplus
}
#endif
#endif
