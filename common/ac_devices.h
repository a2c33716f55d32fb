/* Which GPU a process of a campaign uses (docs/SCALING.md). A worker picks
 * its device by setting CUDA_VISIBLE_DEVICES before its first CUDA call:
 * the i-th entry of the list the host already set, else index i. ctest's
 * resource allocation (`ctest --resource-spec-file`, scripts/ctest-gpus.sh)
 * hands a test GPU `id` in CTEST_RESOURCE_GROUP_0_GPUS; every binary that
 * links the kernels applies it before main. */
#ifndef AC_DEVICES_H
#define AC_DEVICES_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The name of visible device i in the host's numbering: the i-th entry of
   CUDA_VISIBLE_DEVICES when it is set (an index or a UUID), else "i". */
void ac_device_nth(int i, char *dev, size_t n);
/* Restrict this process to device i (CUDA_VISIBLE_DEVICES = ac_device_nth(i)).
   Only before the first CUDA call. */
void ac_device_use(int i);
/* If ctest allocated a GPU to this test (CTEST_RESOURCE_GROUP_0_GPUS =
   "id:N,slots:M"), use device N and return N; else -1. */
int ac_device_from_ctest(void);

#ifdef __cplusplus
}
#endif
#endif
