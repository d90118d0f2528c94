/* watchdog.h -- deadlines and signals, the replica's backstops.
 *
 * One thread waits for whichever comes first: the replica's soft deadline
 * (--deadline minus --deadline-margin), the job's own deadline, or the end
 * of --term-grace after SIGTERM. At that point it sets the core's cancel
 * flag; if the core has not stopped within its cancel grace
 * (core_cancel_grace_ms) plus 1 s it aborts it (SIGKILL to an exec core's
 * group), and if the process is still alive 2 s after that it exits by
 * itself (_exit 124, or 143 for SIGTERM) through the hard-exit hook.
 * Signals are taken synchronously by the same thread (it sleeps in poll
 * on a signalfd): the first SIGTERM starts the grace (or stops an idle
 * replica); a second SIGTERM or any SIGINT exits at once. The same thread
 * also runs one event source of the caller's (watchdog_io: the HTTP
 * server's event loop). One thread, not a timer, a signal and a server
 * thread: a replica lives for one job, and each thread costs its start
 * on the job's clock. */
#ifndef ONESHOT_WATCHDOG_H
#define ONESHOT_WATCHDOG_H

#include <stdatomic.h>
#include <stdint.h>

#include "../config/config.h"

/* An event source the watchdog thread serves besides its deadlines: fd is
 * polled with the signals, and run(arg) is called, without the watchdog's
 * lock, whenever fd is readable or timeout_ms(arg) (-1: none) has passed.
 * run must not block and must not call into the watchdog. fd -1: none. */
typedef struct watchdog_io {
    int fd;
    int (*timeout_ms)(void *arg);
    void (*run)(void *arg);
    void *arg;
} watchdog_io;

typedef struct watchdog_hooks {
    /* Kill what the core started, now. */
    void (*abort_core)(void);
    /* Leave the process at once with code (after abort_core). Never returns. */
    void (*hard_exit)(int code);
    watchdog_io io;
} watchdog_hooks;

/* Block SIGTERM/SIGINT/SIGUSR1 in the calling thread; call before starting
 * any thread so that only the watchdog thread receives them. */
void watchdog_block_signals(void);
/* Start the thread (-1 when it cannot be). cancel is the core's cancel
 * flag. Deadlines count from start_mono_ms. */
int watchdog_start(const config *cfg, int64_t start_mono_ms, atomic_int *cancel, const watchdog_hooks *hooks);
/* A job was claimed (deadline_mono_ms: its own limit, 0 = none). */
void watchdog_job_begin(int64_t deadline_mono_ms);
/* The core returned: only the hard backstop remains armed. */
void watchdog_job_end(void);
/* Why an idle replica must stop claiming: 0 = keep going, else the exit
 * code (OS_EXIT_TERM after SIGTERM, OS_EXIT_IDLE at the deadline). */
int watchdog_stop_reason(void);
/* The io source has work the thread cannot see on its fd (the HTTP server
 * resumed a connection from another thread): run it soon. */
void watchdog_wake_io(void);
/* The replica is ending: on return the watchdog acts no more (no cancel,
 * abort, hard exit or deferred call). Only a thread that is aborting the
 * core or exiting right now is joined; a sleeping one is left to end with
 * the process. Call once, just before the process exits. */
void watchdog_stop(void);
/* Call fn from the watchdog thread at at_mono_ms (one pending call; a new
 * one replaces it), under the watchdog's lock: fn must be short and must
 * not call back into the watchdog. -1 when the watchdog is not running. */
int watchdog_defer(int64_t at_mono_ms, void (*fn)(void));
/* Drop the pending call. On return fn is not running and will not run. */
void watchdog_defer_cancel(void);

#endif
