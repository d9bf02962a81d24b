/* Clocks, in nanoseconds as int64_t. */
#ifndef SH_CLOCK_H
#define SH_CLOCK_H

#include <stdint.h>

/* CLOCK_MONOTONIC: for deadlines and durations. */
int64_t sh_monotonic_ns(void);
/* CLOCK_REALTIME: for timestamps a person reads or that outlive the process (the run store's). */
int64_t sh_wall_ns(void);

#endif
