/* common/ac_devices.c: which GPU a worker or a ctest test uses
 * (docs/SCALING.md). Criterion runs each test in its own process, so the
 * environment set here does not leak. */
#define _POSIX_C_SOURCE 200809L
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "ac_devices.h"

Test(devices, nth_without_a_host_list_is_the_index)
{
    unsetenv("CUDA_VISIBLE_DEVICES");
    char d[32];
    ac_device_nth(3, d, sizeof d);
    cr_assert_str_eq(d, "3");
}

Test(devices, nth_picks_from_the_host_list)
{
    setenv("CUDA_VISIBLE_DEVICES", "4,6,GPU-1a2b", 1);
    char d[32];
    ac_device_nth(1, d, sizeof d);
    cr_assert_str_eq(d, "6");
    ac_device_nth(2, d, sizeof d);
    cr_assert_str_eq(d, "GPU-1a2b");
    ac_device_nth(7, d, sizeof d); /* past the list: the index itself (the runtime then finds no such device) */
    cr_assert_str_eq(d, "7");
}

Test(devices, ctest_allocation_becomes_the_visible_device)
{
    setenv("CUDA_VISIBLE_DEVICES", "2,3", 1);
    setenv("CTEST_RESOURCE_GROUP_0_GPUS", "id:1,slots:1", 1);
    cr_assert_eq(ac_device_from_ctest(), 1);
    cr_assert_str_eq(getenv("CUDA_VISIBLE_DEVICES"), "3");
}

Test(devices, no_or_malformed_allocation_changes_nothing)
{
    setenv("CUDA_VISIBLE_DEVICES", "0,1", 1);
    unsetenv("CTEST_RESOURCE_GROUP_0_GPUS");
    cr_assert_eq(ac_device_from_ctest(), -1);
    setenv("CTEST_RESOURCE_GROUP_0_GPUS", "slots:1", 1);
    cr_assert_eq(ac_device_from_ctest(), -1);
    setenv("CTEST_RESOURCE_GROUP_0_GPUS", "id:x", 1);
    cr_assert_eq(ac_device_from_ctest(), -1);
    cr_assert_str_eq(getenv("CUDA_VISIBLE_DEVICES"), "0,1");
}
