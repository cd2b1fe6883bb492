/* Monotonic time. */
#ifndef BR_BASE_TIMER_H
#define BR_BASE_TIMER_H
/* Seconds since an arbitrary fixed point (CLOCK_MONOTONIC). */
double br_now(void);
/* Wall-clock seconds since the Unix epoch (for logs only). */
double br_wall_time(void);
#endif
