/* The plugin ABI: the one header a kernel author includes to put an outside
 * kernel under attncheck (`attncheck run|sweep|replay|fuzz --kernel ./libfoo.so`).
 *
 * A plugin is a shared library exporting
 *
 *     const ac_backend_ops *attncheck_backend(uint32_t host_abi_version);
 *
 * which returns its table (common/ac_backend.h: name, `available`, one entry
 * per family; NULL for a family it does not implement), or NULL when it cannot
 * speak host_abi_version. Each entry receives a validated case (common/ac_case.h),
 * its host tensors (common/ac_tensors.h: the project's layouts, bf16/fp16 bit
 * patterns, natural-log LSEs) and outputs already sized and poisoned; it fills
 * outputs->o (the case dtype) and outputs->lse (fp32, -inf for a row with no
 * key), or the caches for a store, and returns AC_OK, or a named ac_status with
 * a message through ac_fail-like filling of `err` (err->code, err->msg).
 * A GPU plugin copies to and from the device itself. The host never frees
 * what the plugin allocates, and calls the entries from one thread at a time.
 *
 * Version 1 is the layout of ac_backend_ops, ac_case, ac_tensors and ac_outputs
 * of this release; a change to any of them raises AC_BACKEND_ABI_VERSION.
 * tests/plugin/cpu_plugin.c is a complete example built from the CPU models. */
#ifndef AC_PLUGIN_H
#define AC_PLUGIN_H

#include <stdint.h>

#include "ac_backend.h"

#ifdef __cplusplus
extern "C" {
#endif

#define AC_PLUGIN_SYMBOL "attncheck_backend"
typedef const ac_backend_ops *(*ac_plugin_entry_fn)(uint32_t host_abi_version);

#ifdef __cplusplus
}
#endif
#endif
