/* clock.h -- time sources and formats.
 *
 * Monotonic milliseconds for every timeout and deadline (immune to wall
 * clock steps); wall-clock milliseconds only for records and log lines. */
#ifndef ONESHOT_CLOCK_H
#define ONESHOT_CLOCK_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

int64_t clock_mono_ms(void);
int64_t clock_wall_ms(void);
/* "2026-11-28T23:40:00.123Z" into out (>= 25 bytes); returns out. */
char *clock_iso8601(int64_t wall_ms, char *out, size_t outlen);
/* The absolute time wait_ms from now on clock clk, for
 * pthread_cond_timedwait (CLOCK_MONOTONIC with a condvar set to it,
 * CLOCK_REALTIME otherwise). */
void clock_abs_timespec(clockid_t clk, int64_t wait_ms, struct timespec *ts);
/* Sleep for ms milliseconds, resuming after signals. */
void clock_sleep_ms(int64_t ms);

#endif
