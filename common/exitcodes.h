/* exitcodes.h -- every exit code the process can return.
 *
 * This is the single source of truth: the lifecycle, the subcommands, the
 * tests and the deploy manifests (podFailurePolicy) all take their numbers
 * from here. The values follow sysexits(3) where one exists. */
#ifndef ONESHOT_EXITCODES_H
#define ONESHOT_EXITCODES_H

#define OS_EXIT_OK          0   /* succeeded, already done, or cancelled */
#define OS_EXIT_FAILED      1   /* job failed (generic) */
#define OS_EXIT_FAILED_MAX  63  /* an exec core's 1..63 passes through */
#define OS_EXIT_REJECTED    65  /* EX_DATAERR: input rejected, never retried */
#define OS_EXIT_NOINPUT     66  /* EX_NOINPUT: status/wait: no record of the job */
#define OS_EXIT_UNAVAILABLE 69  /* EX_UNAVAILABLE: broker/store unreachable */
#define OS_EXIT_IDLE        75  /* EX_TEMPFAIL: no job before --idle-timeout */
#define OS_EXIT_CONFIG      78  /* EX_CONFIG: invalid configuration */
#define OS_EXIT_DEADLINE    124 /* deadline reached, core cancelled */
#define OS_EXIT_SIGINT      130 /* SIGINT: exit at once, nothing acked */
#define OS_EXIT_TERM        143 /* SIGTERM past --term-grace: given back */

/* Map a core's own exit code to the replica's: 0 stays 0, 1..63 pass
 * through, anything else (negative, >63) becomes 1. */
int exitcode_from_core(int code);

/* A short stable name for a code ("ok", "failed", "rejected", ...). */
const char *exitcode_name(int code);

#endif
