/* seam.c -- see seam.h. Compiled into test builds only. */
#include "seam.h"

#ifdef ONESHOT_SEAMS
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ONESHOT_SEAM is a comma-separated list of steps; each stops once. */
int seam_armed(const char *step) {
    const char *want = getenv("ONESHOT_SEAM");
    size_t n = strlen(step);
    for (const char *p = want; p && (p = strstr(p, step)); p += n)
        if ((p == want || p[-1] == ',') && (p[n] == '\0' || p[n] == ',')) return 1;
    return 0;
}

/* "seam: WHAT STEP" on stderr, in one write (no stdio buffer to lose). */
static void say(const char *what, const char *step) {
    char line[128];
    int len = snprintf(line, sizeof(line), "seam: %s %s\n", what, step);
    if (write(2, line, (size_t)len) < 0) { /* nothing to do: a test that needs the line fails without it */
    }
}

void seam_point(const char *step) {
    static char done[256];
    char mark[64];
    if (!seam_armed(step)) return;
    snprintf(mark, sizeof(mark), ",%s,", step);
    if (strstr(done, mark)) return;
    if (strlen(done) + strlen(mark) < sizeof(done)) strcat(done, mark);
    say("stopped before", step);
    raise(SIGSTOP);
}

void seam_pause(const char *step) {
    static atomic_int done; /* any thread may get here: a flag, not seam_point's list */
    if (!seam_armed(step) || atomic_exchange(&done, 1)) return;
    say("paused at", step);
    struct timespec ts = {0, 300 * 1000 * 1000};
    while (nanosleep(&ts, &ts) < 0) {
    }
}
#else
typedef int seam_unused; /* ISO C: a translation unit is not empty */
#endif
