#define _POSIX_C_SOURCE 200809L /* setenv */
#include "ac_devices.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void ac_device_nth(int i, char *dev, size_t n)
{
    snprintf(dev, n, "%d", i);
    const char *p = getenv("CUDA_VISIBLE_DEVICES");
    if (!p || !*p) return;
    int k = 0;
    while (k < i && (p = strchr(p, ',')) != NULL) p++, k++;
    if (p && k == i) {
        size_t len = strcspn(p, ",");
        snprintf(dev, n, "%.*s", (int)(len < n - 1 ? len : n - 1), p);
    }
}

void ac_device_use(int i)
{
    char dev[128];
    ac_device_nth(i, dev, sizeof dev);
    setenv("CUDA_VISIBLE_DEVICES", dev, 1);
}

int ac_device_from_ctest(void)
{
    const char *g = getenv("CTEST_RESOURCE_GROUP_0_GPUS");
    if (!g || strncmp(g, "id:", 3) != 0) return -1;
    char *end;
    long id = strtol(g + 3, &end, 10);
    if (end == g + 3 || id < 0 || id > 1023) return -1;
    ac_device_use((int)id);
    return (int)id;
}
