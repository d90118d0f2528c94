/* clock.c -- time sources and formats. */
#include "clock.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
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

/* Days since 1970-01-01 to a proleptic Gregorian date (H. Hinnant's
 * civil_from_days). Not gmtime_r: glibc's loads the time zone file on its
 * first call, and every log line of a one-shot replica is its first few. */
static void civil_from_days(int64_t z, int64_t *y, int *m, int *d) {
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

/* v's last n decimal digits at p, zero-padded. */
static void put_digits(char *p, int v, int n) {
    while (n-- > 0) {
        p[n] = (char)('0' + v % 10);
        v /= 10;
    }
}

char *clock_iso8601(int64_t wall_ms, char *out, size_t outlen) {
    if (wall_ms < 0) { /* before 1970: as gmtime_r has it, the rare way */
        time_t secs = (time_t)(wall_ms / 1000);
        struct tm tm;
        gmtime_r(&secs, &tm);
        snprintf(out, outlen, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(wall_ms % 1000));
        return out;
    }
    int64_t secs = wall_ms / 1000, y;
    int m, d;
    civil_from_days(secs / 86400, &y, &m, &d);
    int sod = (int)(secs % 86400);
    if (y > 9999 || outlen < 25) {
        snprintf(out, outlen, "%04lld-%02d-%02dT%02d:%02d:%02d.%03dZ", (long long)y, m, d, sod / 3600,
                 sod / 60 % 60, sod % 60, (int)(wall_ms % 1000));
        return out;
    }
    /* The digits by hand: snprintf's were a twelfth of a Redis replica's
     * instructions (16 timestamps a job: log lines and records). */
    memcpy(out, "0000-00-00T00:00:00.000Z", 25);
    put_digits(out, (int)y, 4);
    put_digits(out + 5, m, 2);
    put_digits(out + 8, d, 2);
    put_digits(out + 11, sod / 3600, 2);
    put_digits(out + 14, sod / 60 % 60, 2);
    put_digits(out + 17, sod % 60, 2);
    put_digits(out + 20, (int)(wall_ms % 1000), 3);
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
