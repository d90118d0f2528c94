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
#define SEAM(step) seam_point(step)
#else
#define SEAM(step) ((void)0)
#endif

#endif
