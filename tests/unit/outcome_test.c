/* outcome_test.c -- the whole outcome table (consumer/outcome.h). */
#include "../../common/exitcodes.h"
#include "../../common/status.h"
#include "../../consumer/cores/core.h"
#include "../../consumer/outcome.h"
#include "test.h"

enum { Q = 1, HTTP = 0 }; /* can_retry: a queue, or HTTP */

static const struct row {
    outcome_in in;
    const char *state;
    int exit_code, http_status;
    enum disposition disp;
} rows[] = {
    /* core, exit, http, cancel, can_retry, attempts_left */
    {{CORE_OK, 0, 0, 0, Q, 1}, ST_SUCCEEDED, 0, 200, DISP_ACK},
    {{CORE_OK, 0, 201, 0, HTTP, 0}, ST_SUCCEEDED, 0, 201, DISP_ACK},
    {{CORE_FAILED, 7, 0, 0, Q, 1}, ST_RETRYING, 7, 500, DISP_RETRY},
    {{CORE_FAILED, 7, 0, 0, Q, 0}, ST_DEAD, 7, 500, DISP_DEAD},
    {{CORE_FAILED, 7, 0, 0, HTTP, 1}, ST_FAILED, 7, 500, DISP_ACK},
    {{CORE_FAILED, 0, 0, 0, HTTP, 0}, ST_FAILED, 1, 500, DISP_ACK},
    {{CORE_FAILED, 99, 503, 0, HTTP, 0}, ST_FAILED, 1, 503, DISP_ACK},
    {{CORE_FAILED, -3, 0, 0, Q, 0}, ST_DEAD, 1, 500, DISP_DEAD},
    {{CORE_REJECTED, 0, 0, 0, Q, 1}, ST_REJECTED, 65, 422, DISP_DEAD},
    {{CORE_REJECTED, 0, 415, 0, HTTP, 1}, ST_REJECTED, 65, 415, DISP_DEAD},
    {{CORE_CANCELLED, 0, 0, CANCEL_TERM, Q, 1}, ST_INTERRUPTED, 143, 503, DISP_RELEASE},
    {{CORE_CANCELLED, 0, 0, CANCEL_TERM, HTTP, 1}, ST_FAILED, 143, 503, DISP_ACK},
    {{CORE_CANCELLED, 0, 0, CANCEL_USER, Q, 1}, ST_CANCELLED, 0, 409, DISP_ACK},
    {{CORE_CANCELLED, 0, 0, CANCEL_USER, HTTP, 0}, ST_CANCELLED, 0, 409, DISP_ACK},
    {{CORE_CANCELLED, 0, 0, CANCEL_LOST, Q, 1}, ST_INTERRUPTED, 69, 503, DISP_RELEASE},
    {{CORE_CANCELLED, 0, 0, CANCEL_DEADLINE, Q, 1}, ST_RETRYING, 124, 504, DISP_RETRY},
    {{CORE_CANCELLED, 0, 0, CANCEL_DEADLINE, Q, 0}, ST_DEAD, 124, 504, DISP_DEAD},
    {{CORE_CANCELLED, 0, 0, CANCEL_DEADLINE, HTTP, 1}, ST_TIMED_OUT, 124, 504, DISP_ACK},
};

static void t_table(void) {
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        outcome_decision d;
        outcome_decide(&rows[i].in, &d);
        if (strcmp(job_state_name(d.state), rows[i].state) != 0 || d.exit_code != rows[i].exit_code ||
            d.http_status != rows[i].http_status || d.disp != rows[i].disp)
            T_FAIL("row %zu: %s/%d/%d/%d, expected %s/%d/%d/%d", i, job_state_name(d.state), d.exit_code,
                   d.http_status, (int)d.disp, rows[i].state, rows[i].exit_code, rows[i].http_status,
                   (int)rows[i].disp);
    }
}

/* Every input: a known state; without a queue (HTTP) nothing would move
 * the job on, so the state is final (a lost claim aside: it writes
 * nothing); a state that is not final goes back to the queue. */
static void t_every_input(void) {
    static const int cores[] = {CORE_OK, CORE_FAILED, CORE_REJECTED, CORE_CANCELLED};
    static const int cancels[] = {CANCEL_NONE, CANCEL_DEADLINE, CANCEL_TERM, CANCEL_USER, CANCEL_LOST};
    for (size_t c = 0; c < 4; c++)
        for (size_t k = 0; k < 5; k++)
            for (int q = 0; q <= 1; q++)
                for (int left = 0; left <= 1; left++) {
                    outcome_in in = {cores[c], 3, 0, cancels[k], q, left};
                    outcome_decision d;
                    outcome_decide(&in, &d);
                    if (d.state <= JS_NONE || d.state >= JS_COUNT) {
                        T_FAIL("core %d cancel %d queue %d left %d: unknown state", cores[c], cancels[k], q, left);
                        continue;
                    }
                    int lost = cores[c] == CORE_CANCELLED && cancels[k] == CANCEL_LOST;
                    const char *name = job_state_name(d.state);
                    if (!q && !lost && !job_state_final(d.state))
                        T_FAIL("HTTP, core %d cancel %d: %s is not final", cores[c], cancels[k], name);
                    if (!job_state_final(d.state) && d.disp != DISP_RETRY && d.disp != DISP_RELEASE)
                        T_FAIL("core %d cancel %d: %s but disposition %d", cores[c], cancels[k], name, (int)d.disp);
                    if (d.exit_code < 0 || d.exit_code > 255) T_FAIL("exit code %d", d.exit_code);
                }
}

/* The enum indexes the one name table: every state round-trips through
 * its name, the names are the contract's (ST_*), and unknown names are
 * JS_NONE. */
static void t_state_table(void) {
    static const struct {
        enum job_state s;
        const char *name;
        int final;
    } want[] = {
        {JS_QUEUED, ST_QUEUED, 0},       {JS_RUNNING, ST_RUNNING, 0},   {JS_RETRYING, ST_RETRYING, 0},
        {JS_INTERRUPTED, ST_INTERRUPTED, 0}, {JS_SUCCEEDED, ST_SUCCEEDED, 1}, {JS_FAILED, ST_FAILED, 1},
        {JS_REJECTED, ST_REJECTED, 1},   {JS_TIMED_OUT, ST_TIMED_OUT, 1}, {JS_DEAD, ST_DEAD, 1},
        {JS_CANCELLED, ST_CANCELLED, 1},
    };
    if (NSTATES != JS_COUNT || sizeof(want) / sizeof(want[0]) != JS_COUNT) T_FAIL("%zu states", NSTATES);
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        if (strcmp(job_state_name(want[i].s), want[i].name) != 0 || job_state_of(want[i].name) != want[i].s ||
            job_state_final(want[i].s) != want[i].final || STATES[want[i].s].name != job_state_name(want[i].s))
            T_FAIL("state %d: %s", (int)want[i].s, job_state_name(want[i].s));
    }
    if (job_state_of("nope") != JS_NONE || job_state_of("") != JS_NONE || job_state_of(NULL) != JS_NONE)
        T_FAIL("an unknown name has a state");
    if (job_state_of("duplicate") != JS_DUPLICATE || job_state_final(JS_DUPLICATE) || job_state_name(JS_NONE)[0])
        T_FAIL("duplicate or none");
}

const test_case outcome_tests[] = {
    {"outcome: job states are an enum indexing one name table", t_state_table},
    {"outcome: the decision table", t_table},
    {"outcome: every input ends final or goes back to a queue", t_every_input},
    {NULL, NULL},
};
