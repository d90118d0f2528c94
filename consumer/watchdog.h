/* watchdog.h -- deadlines and signals, the replica's backstops.
 *
 * One thread waits for whichever comes first: the replica's soft deadline
 * (--deadline minus --deadline-margin), the job's own deadline, or the end
 * of --term-grace after SIGTERM. At that point it sets the core's cancel
 * flag; if the core has not stopped within its cancel grace
 * (core_cancel_grace_ms) plus 1 s it aborts it (SIGKILL to an exec core's
 * group), and if the process is still alive 2 s after that it exits by
 * itself (_exit 124, or 143 for SIGTERM) through the hard-exit hook.
 * Signals are taken synchronously by the same thread (it sleeps in
 * sigtimedwait): the first SIGTERM starts the grace (or stops an idle
 * replica); a second SIGTERM or any SIGINT exits at once. One thread, not
 * a timer and a signal thread: a replica lives for one job, and each thread
 * costs its start and its join. */
#ifndef ONESHOT_WATCHDOG_H
#define ONESHOT_WATCHDOG_H

#include <stdatomic.h>
#include <stdint.h>

#include "../config/config.h"

typedef struct watchdog_hooks {
    /* Kill what the core started, now. */
    void (*abort_core)(void);
    /* Leave the process at once with code (after abort_core). Never returns. */
    void (*hard_exit)(int code);
} watchdog_hooks;

/* Block SIGTERM/SIGINT/SIGUSR1 in the calling thread; call before starting
 * any thread so that only the watchdog thread receives them. */
void watchdog_block_signals(void);
/* Start the thread. cancel is the core's cancel flag. */
int watchdog_start(const config *cfg, int64_t start_mono_ms, atomic_int *cancel, const watchdog_hooks *hooks);
/* A job was claimed (deadline_mono_ms: its own limit, 0 = none). */
void watchdog_job_begin(int64_t deadline_mono_ms);
/* The core returned: only the hard backstop remains armed. */
void watchdog_job_end(void);
/* Why an idle replica must stop claiming: 0 = keep going, else the exit
 * code (OS_EXIT_TERM after SIGTERM, OS_EXIT_IDLE at the deadline). */
int watchdog_stop_reason(void);
void watchdog_stop(void);
/* Call fn from the watchdog thread at at_mono_ms (one pending call; a new
 * one replaces it), under the watchdog's lock: fn must be short and must
 * not call back into the watchdog. -1 when the watchdog is not running. */
int watchdog_defer(int64_t at_mono_ms, void (*fn)(void));
/* Drop the pending call. On return fn is not running and will not run. */
void watchdog_defer_cancel(void);

#endif
