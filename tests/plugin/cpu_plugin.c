/* An attncheck plugin (common/ac_plugin.h) built from the CPU models: the
 * example a kernel author starts from, and what CI loads to test the plugin
 * ABI (`attncheck sweep FAMILY --kernel ./libattncheck_cpu_plugin.so`).
 *
 * ATTNCHECK_TEST_PLUGIN_BUG=NAME makes every entry run the model with that
 * injected bug (the names of `attncheck selftest`), so a test can show that
 * a wrong kernel behind the ABI is caught. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ac_plugin.h"

static ac_bug plugin_bug(void)
{
    const char *name = getenv("ATTNCHECK_TEST_PLUGIN_BUG");
    ac_bug b = AC_BUG_NONE;
    if (name && ac_bug_parse(name, &b)) b = AC_BUG_NONE;
    return b;
}

/* Each entry forwards to the model with the plugin's bug, if any. */
#define AC_FAMILY(name, NAME, ...)                                                                          \
    static ac_status plugin_##name(const ac_case *c, const ac_tensors *t, const ac_run_opts *o,             \
                                   ac_outputs *out, ac_error *err)                                           \
    {                                                                                                       \
        ac_run_opts mine = *o;                                                                              \
        if (plugin_bug() != AC_BUG_NONE) mine.bug = plugin_bug();                                           \
        return ac_model_##name(c, t, &mine, out, err);                                                      \
    }
#include "ac_families.def"
#undef AC_FAMILY

static int plugin_available(char *why, size_t n)
{
    if (why && n) why[0] = '\0';
    return 1;
}

/* Not const: the features table is the CPU model's, copied when the host asks. */
static ac_backend_ops table = {
    .abi_version = AC_BACKEND_ABI_VERSION,
    .name = "cpu-plugin",
    .about = "the CPU models, loaded as a plugin (tests/plugin/cpu_plugin.c)",
    .available = plugin_available,
    .run = {
#define AC_FAMILY(name, NAME, ...) [AC_OP_##NAME] = plugin_##name,
#include "ac_families.def"
#undef AC_FAMILY
    },
};

__attribute__((visibility("default"))) const ac_backend_ops *attncheck_backend(uint32_t host_abi_version)
{
    if (host_abi_version != AC_BACKEND_ABI_VERSION) return NULL;
    /* The features it implements per family are the models' own (ABI v2): a
       kernel author's plugin declares its own here instead. */
    memcpy(table.features, ac_backend_model_ops.features, sizeof table.features);
    return &table;
}
