/* The Python bridge: a kernel written in Python (PyTorch SDPA, FlexAttention,
 * anything) under the same sweeps, laws and fuzz walk as a C plugin:
 *
 *     attncheck sweep prefill --kernel py:attncheck.adapters:numpy_ref
 *
 * `py:MODULE:ADAPTER` starts one long-lived worker, `python3 -m
 * attncheck.bridge MODULE:ADAPTER` (python/attncheck/bridge.py; the
 * interpreter is $ATTNCHECK_PYTHON, else python3), and registers a backend
 * whose entries send each case to it: the tensors through a shared mapped file
 * (unlinked as soon as it is made, grown as needed), a JSON line each way on
 * pipes. The worker announces the adapter's families and conventions (LSE or
 * none, its base, the empty-row rules); the entries apply them honestly: a
 * base-2 LSE is converted, a row with no allowed key that holds the declared
 * convention's values becomes the contract's O = 0, LSE = -inf, nothing else
 * is changed, and without an LSE outputs->lse is left NULL (not judged).
 *
 * Errors are values: a case the adapter refuses (attncheck.bridge.Unsupported)
 * is AC_ERR_UNSUPPORTED with its reason; an exception in the adapter, a worker
 * that dies, breaks the protocol or answers nothing within the timeout
 * ($ATTNCHECK_BRIDGE_TIMEOUT seconds, default 120; a hung worker is killed)
 * is AC_ERR_IO with the worker's stderr tail, and the next case starts a new
 * worker. A forked process (the fuzz walk's workers) starts its own. The
 * worker is reaped at exit, and dies with this process (docs/BRIDGE.md). */
#ifndef AC_PYBRIDGE_H
#define AC_PYBRIDGE_H

#include "ac_backends.h"

#ifdef __cplusplus
extern "C" {
#endif

#define AC_PYBRIDGE_PREFIX "py:"
/* Seconds a case (and the worker's start) may take before the worker is killed. */
#define AC_PYBRIDGE_TIMEOUT_S 120.0
/* The protocol both sides speak (bridge.py's PROTOCOL). */
#define AC_PYBRIDGE_PROTOCOL 1

/* spec: "MODULE:ADAPTER" (after the py: prefix). Starts the worker, reads
   the adapter's hello and registers the backend "py:<adapter name>" with an
   entry for each family it has. One bridge per process: a second load is
   AC_ERR_UNSUPPORTED. Errors: AC_ERR_PARSE (spec), AC_ERR_IO (the worker
   could not start, import or answer: its stderr tail in the message). */
ac_status ac_pybridge_load(const char *spec, ac_backend *out, ac_error *err);

#ifdef __cplusplus
}
#endif
#endif
