/* outcome.h -- what a finished job becomes: a pure function.
 *
 * From what the core said (its outcome, exit code and HTTP status), why
 * it was cancelled, whether the source can take the job back (a queue:
 * re-queue and dead-letter) and whether attempts are left, it decides the
 * job's state, the replica's exit code, the disposition of the message
 * and the HTTP status. No I/O and no globals, so its whole table is a
 * unit test (tests/unit/outcome_test.c); the lifecycle adds the body. */
#ifndef ONESHOT_OUTCOME_H
#define ONESHOT_OUTCOME_H

#include "../common/status.h"
#include "source.h"

typedef struct outcome_in {
    int core;          /* enum core_outcome */
    int core_exit;     /* CORE_FAILED: the core's own code (0: none given) */
    int core_http;     /* the core's HTTP status, 0: the default for the case */
    int cancel;        /* enum cancel_reason, for CORE_CANCELLED */
    int can_retry;     /* the source re-queues and dead-letters (not HTTP) */
    int attempts_left; /* this attempt is not the last (--max-attempts) */
} outcome_in;

typedef struct outcome_decision {
    enum job_state state;
    int exit_code;
    int http_status;
    enum disposition disp;
    const char *error;   /* a fixed reason for the record, NULL: the core's */
    int keep_body;       /* the core's output is the answer (else a detail body) */
} outcome_decision;

void outcome_decide(const outcome_in *in, outcome_decision *d);

#endif
