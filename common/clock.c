/* clock.c -- time sources and formats. */
#include "clock.h"

#include <errno.h>
#include <stdio.h>
#include <time.h>

int64_t clock_mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t clock_wall_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

char *clock_iso8601(int64_t wall_ms, char *out, size_t outlen) {
    time_t secs = (time_t)(wall_ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    snprintf(out, outlen, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
             (int)(wall_ms % 1000));
    return out;
}

void clock_abs_timespec(clockid_t clk, int64_t wait_ms, struct timespec *ts) {
    if (wait_ms < 0) wait_ms = 0;
    clock_gettime(clk, ts);
    int64_t ns = ts->tv_nsec + (wait_ms % 1000) * 1000000L;
    ts->tv_sec += (time_t)(wait_ms / 1000 + ns / 1000000000L);
    ts->tv_nsec = (long)(ns % 1000000000L);
}

void clock_sleep_ms(int64_t ms) {
    if (ms <= 0) return;
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {}
}
