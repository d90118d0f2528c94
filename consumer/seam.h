/* seam.h -- stop points for the fault tests (tests/harness/fault_matrix.py).
 *
 * SEAM("final") marks the point just before a step of the Redis job
 * protocol sends its script (consumer/README.md "Steps"). In a build with
 * -DONESHOT_SEAMS (`make seams`: build/seams/oneshot, for the tests only) a
 * process whose ONESHOT_SEAM names that step stops itself there, the first
 * time it reaches it: it writes "seam: stopped before STEP" to stderr and
 * raises SIGSTOP (every thread stops), so a test can inject a fault, or let
 * the lease lapse and a successor take over, before it sends SIGCONT. In
 * every other build SEAM compiles to nothing. */
#ifndef ONESHOT_SEAM_H
#define ONESHOT_SEAM_H

#ifdef ONESHOT_SEAMS
void seam_point(const char *step);
/* SEAM_PAUSE(step): when ONESHOT_SEAM names step, the calling thread
 * alone sleeps 300 ms there, the first time: the other threads run ahead
 * of it, the interleaving a loaded machine makes once in a while, made
 * every time (it writes "seam: paused at STEP" to stderr). */
void seam_pause(const char *step);
#define SEAM_PAUSE(step) seam_pause(step)
/* Does ONESHOT_SEAM name step? A step that rides in the round trip of the
 * one before it (settle behind final, source.h stage) is sent on its own
 * when its seam is armed, so that the stop between the two can be tested. */
int seam_armed(const char *step);
#define SEAM(step) seam_point(step)
#define SEAM_ARMED(step) seam_armed(step)
#else
#define SEAM(step) ((void)0)
#define SEAM_PAUSE(step) ((void)0)
#define SEAM_ARMED(step) 0
#endif

#endif
