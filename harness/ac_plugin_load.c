#include "ac_plugin_load.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#include "ac_pybridge.h"

ac_status ac_plugin_load(const char *path, ac_backend *out, ac_error *err)
{
    if (!path || !out) return ac_fail(err, AC_ERR_NULL, "ac_plugin_load: path or out is NULL");
    /* py:MODULE:ADAPTER: a Python adapter through the bridge (harness/ac_pybridge.h). */
    if (!strncmp(path, AC_PYBRIDGE_PREFIX, strlen(AC_PYBRIDGE_PREFIX)))
        return ac_pybridge_load(path + strlen(AC_PYBRIDGE_PREFIX), out, err);
    void *lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!lib) return ac_fail(err, AC_ERR_IO, "--kernel %s: cannot load: %s", path, dlerror());
    /* The cast through a union keeps ISO C's object/function pointer rule. */
    union { void *obj; ac_plugin_entry_fn fn; } entry;
    entry.obj = dlsym(lib, AC_PLUGIN_SYMBOL);
    if (!entry.obj) {
        dlclose(lib);
        return ac_fail(err, AC_ERR_UNSUPPORTED, "--kernel %s: no %s symbol: not an attncheck plugin "
                       "(common/ac_plugin.h)", path, AC_PLUGIN_SYMBOL);
    }
    const ac_backend_ops *ops = entry.fn(AC_BACKEND_ABI_VERSION);
    if (!ops) {
        dlclose(lib);
        return ac_fail(err, AC_ERR_UNSUPPORTED, "--kernel %s: the plugin does not speak ABI version %u",
                       path, (unsigned)AC_BACKEND_ABI_VERSION);
    }
    int entries = 0;
    for (int f = 0; f < AC_OP_COUNT; f++) entries += ops->run[f] != NULL;
    if (ops->abi_version == AC_BACKEND_ABI_VERSION && entries == 0) {
        dlclose(lib);
        return ac_fail(err, AC_ERR_UNSUPPORTED, "--kernel %s: the table has no entry for any family", path);
    }
    ac_status st = ac_backend_register(ops, out, err);
    if (st) {
        char msg[sizeof err->msg];
        snprintf(msg, sizeof msg, "%s", err->msg);
        ac_fail(err, st, "--kernel %s: %s", path, msg);
        dlclose(lib);
    }
    return st;
}
