/* Loading a plugin (common/ac_plugin.h) and registering its backend. */
#ifndef AC_PLUGIN_LOAD_H
#define AC_PLUGIN_LOAD_H

#include "ac_backends.h"
#include "ac_plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

/* `py:MODULE:ADAPTER`: a Python adapter through the bridge instead
   (ac_pybridge_load, harness/ac_pybridge.h). Otherwise: dlopen the library at `path` (a path with a '/' is taken as it is; a bare
   name is searched the dynamic loader's way), call its attncheck_backend with
   this build's ABI version, check the table and register it. *out receives
   the handle. Named errors: AC_ERR_IO (cannot load: dlerror's text),
   AC_ERR_UNSUPPORTED (no attncheck_backend symbol, another ABI version, or a
   table with no entry at all), AC_ERR_NULL (a required field missing). The
   library stays loaded for the life of the process. */
ac_status ac_plugin_load(const char *path, ac_backend *out, ac_error *err);

#ifdef __cplusplus
}
#endif
#endif
