/* A campaign's stop request: SIGINT (Ctrl-C reaches the whole process
 * group) and SIGTERM only set a flag, so each process of a fuzz campaign
 * finishes its input, keeps what it found and reports, instead of dying
 * where it stands. One handler for the walk's processes and the libFuzzer
 * supervisor. */
#ifndef AC_STOP_H
#define AC_STOP_H

#include <signal.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Set by the handler; cleared by ac_stop_catch. */
extern volatile sig_atomic_t ac_stop_requested;

/* From now on SIGINT and SIGTERM set ac_stop_requested (the previous
   handlers are kept). Forked children inherit the handler; an exec'd
   program gets the default action back. Not nested: one catch, one release. */
void ac_stop_catch(void);
/* The handlers as they were before ac_stop_catch. */
void ac_stop_release(void);

#ifdef __cplusplus
}
#endif
#endif
