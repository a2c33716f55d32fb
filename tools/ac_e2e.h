/* End to end serving loop: store a prompt through the slot mapping, then N
 * decode steps each storing one token and attending to everything so far.
 * The kernels work on the cache their own store produced; the oracle works on
 * the ground truth, so a store bug shows up as a wrong decode step. */
#ifndef AC_E2E_H
#define AC_E2E_H

#include <stdio.h>

#include "ac_backend.h"
#include "ac_backends.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Runs the loop over a small configuration matrix; prints one line per
   configuration and "N passed, N failed" last. `bug` (AC_BUG_NONE in
   service) is injected into every store and decode call. Returns 0 when
   every step passed, 1 on a failed step, 2 on an error, AC_EXIT_SKIP (77)
   for the GPU without a device. */
int ac_e2e_main(ac_backend backend, int quick, uint64_t seed, ac_bug bug, FILE *out);

#ifdef __cplusplus
}
#endif
#endif
