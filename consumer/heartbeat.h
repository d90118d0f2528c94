/* heartbeat.h -- keeps a running job's claim alive.
 *
 * While the core runs, a thread renews the source's claim (lease key,
 * XCLAIM, Kafka poll) at the source's period and, every third of --lease,
 * writes heartbeat_at and progress to the store and checks the store's
 * cancel mark. A lost claim cancels the core with CANCEL_LOST, a cancel
 * mark with CANCEL_USER. The thread is started by the watchdog thread when
 * the first beat is due (watchdog_defer), so a job that ends before costs
 * no thread. */
#ifndef ONESHOT_HEARTBEAT_H
#define ONESHOT_HEARTBEAT_H

#include <stdatomic.h>

#include "../common/job.h"
#include "../common/status.h"
#include "source.h"
#include "store.h"

typedef struct heartbeat_args {
    const config *cfg;
    const source_ops *src;
    void *src_state;
    const store_ops *store;
    void *store_state;
    job *job;
    const status_rec *status; /* the "running" record; unchanged while the thread runs */
    atomic_int *cancel;
} heartbeat_args;

int heartbeat_start(const heartbeat_args *args);
/* Stop the thread and wait for it. Returns the number of consecutive
 * store failures at the end (0: healthy). */
int heartbeat_stop(void);
/* After heartbeat_stop(), before the result and the final record are
 * written: renew the claim once more unless the last renewal that held is
 * less than a source heartbeat period old. A replica that was stopped
 * (SIGSTOP, a frozen container) past its lease may resume with its job
 * already ended and the thread not yet awake: without this it would write
 * over the record of the replica that took the job over. A lost claim sets
 * CANCEL_LOST, as the thread does. */
void heartbeat_check_claim(void);
/* The progress the core reported, for the status record. */
void heartbeat_set_progress(int percent);
int heartbeat_progress(void);

#endif
