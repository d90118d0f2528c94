/* outcome.c -- the outcome decision (outcome.h). */
#include "outcome.h"

#include <string.h>

#include "../common/exitcodes.h"
#include "../common/status.h"
#include "cores/core.h"

/* A failure or a deadline: re-queued while attempts remain, then dead;
 * without a queue (HTTP) it is final as it is (failed_state). */
static void retry_or_end(const outcome_in *in, outcome_decision *d, enum job_state failed_state) {
    if (in->can_retry && in->attempts_left) {
        d->state = JS_RETRYING;
        d->disp = DISP_RETRY;
    } else {
        d->state = in->can_retry ? JS_DEAD : failed_state;
        d->disp = in->can_retry ? DISP_DEAD : DISP_ACK;
    }
}

static void decide_cancelled(const outcome_in *in, outcome_decision *d) {
    switch (in->cancel) {
    case CANCEL_TERM:
        d->exit_code = OS_EXIT_TERM;
        d->http_status = 503;
        if (in->can_retry) { /* given back: the queue re-delivers it */
            d->state = JS_INTERRUPTED;
            d->disp = DISP_RELEASE;
            d->error = "interrupted: SIGTERM and --term-grace is over";
        } else { /* nothing re-delivers it: the record ends final */
            d->state = JS_FAILED;
            d->disp = DISP_ACK;
            d->error = "interrupted: SIGTERM and --term-grace is over (an HTTP job is not re-delivered)";
        }
        return;
    case CANCEL_USER:
        d->state = JS_CANCELLED;
        d->exit_code = OS_EXIT_OK;
        d->http_status = 409;
        d->disp = DISP_ACK;
        d->error = "cancelled";
        return;
    case CANCEL_LOST: /* another replica owns the job: write nothing, settle nothing */
        d->state = JS_INTERRUPTED;
        d->exit_code = OS_EXIT_UNAVAILABLE;
        d->http_status = 503;
        d->disp = DISP_RELEASE;
        return;
    default: /* CANCEL_DEADLINE */
        d->exit_code = OS_EXIT_DEADLINE;
        d->http_status = 504;
        d->error = "deadline exceeded";
        retry_or_end(in, d, JS_TIMED_OUT);
    }
}

void outcome_decide(const outcome_in *in, outcome_decision *d) {
    memset(d, 0, sizeof(*d));
    switch (in->core) {
    case CORE_OK:
        d->state = JS_SUCCEEDED;
        d->exit_code = OS_EXIT_OK;
        d->http_status = in->core_http ? in->core_http : 200;
        d->disp = DISP_ACK;
        d->keep_body = 1;
        return;
    case CORE_FAILED:
        d->exit_code = exitcode_from_core(in->core_exit ? in->core_exit : 1);
        if (d->exit_code == 0) d->exit_code = OS_EXIT_FAILED;
        d->http_status = in->core_http ? in->core_http : 500;
        d->keep_body = 1;
        retry_or_end(in, d, JS_FAILED);
        return;
    case CORE_REJECTED:
        d->state = JS_REJECTED;
        d->exit_code = OS_EXIT_REJECTED;
        d->http_status = in->core_http ? in->core_http : 422;
        d->disp = DISP_DEAD;
        return;
    default: /* CORE_CANCELLED */
        decide_cancelled(in, d);
    }
}
