/* The suite's one clock: monotonic seconds for timings and deadlines (never
 * the wall clock, which jumps). */
#ifndef AC_CLOCK_H
#define AC_CLOCK_H

#ifdef __cplusplus
extern "C" {
#endif

/* Seconds since an arbitrary fixed point (CLOCK_MONOTONIC). */
double ac_now(void);

#ifdef __cplusplus
}
#endif
#endif
