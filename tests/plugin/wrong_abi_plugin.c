/* A plugin of another ABI version: loading it must be refused by name. */
#include "ac_plugin.h"

static int never(char *why, size_t n)
{
    (void)why, (void)n;
    return 0;
}

static const ac_backend_ops table = {.abi_version = AC_BACKEND_ABI_VERSION + 1, .name = "future", .available = never};

__attribute__((visibility("default"))) const ac_backend_ops *attncheck_backend(uint32_t host_abi_version)
{
    (void)host_abi_version;
    return &table; /* returns its table whatever the host speaks: the host must check */
}
