/* http/source.c -- the job arrives as POST /job.
 *
 * A thin adapter over httpd: claim waits for the request, finish answers
 * it and waits until the answer has been sent. There is no broker, so
 * every disposition is "answer"; a retry is the caller's business. */
#include <stdio.h>

#include "../../common/log.h"
#include "httpd.h"
#include "../broker.h"
#include "../source.h"

static httpd *attached;
static int send_wait_ms;

static void http_attach(httpd *h) { attached = h; }

static int http_open(const config *cfg, void **state, char *err, size_t errlen) {
    /* Bound on waiting for a sent response: a client that stops reading is
     * cut by the connection timeout before this. */
    send_wait_ms = (cfg->http_timeout + 5) * 1000;
    if (!attached) {
        snprintf(err, errlen, "http source: no HTTP server");
        return -1;
    }
    *state = attached;
    return 0;
}

static int http_claim(void *state, int timeout_ms, job *j, int *http_status, char *err, size_t errlen) {
    return httpd_job_wait(state, timeout_ms, j, http_status, err, errlen);
}

static int http_finish(void *state, job *j, const outcome *o, char *err, size_t errlen) {
    (void)j;
    (void)err;
    (void)errlen;
    httpd_job_respond(state, o->http_status, o->content_type, o->body, o->body_len);
    if (httpd_job_wait_sent(state, send_wait_ms) < 0)
        log_warn("the response to POST /job could not be delivered (client gone)");
    else
        log_debug("response %d sent (%zu bytes)", o->http_status, o->body_len);
    return 0;
}

static void http_close(void *state) { (void)state; }

static const source_ops source_http = {
    .name = "http",
    .open = http_open,
    .claim = http_claim,
    .finish = http_finish,
    .close = http_close,
};

/* The http broker: POST /job to the replica; no queue, so no submit,
 * backlog, sweep or redrive; its store keeps nothing (the caller gets the
 * result in the response), unless --store says otherwise. */
const broker broker_http = {
    .name = "http",
    .store_name = "none",
    .source = &source_http,
    .store = &store_none,
    .serves_http = 1,
    .attach = http_attach,
    .no_submit = " (over HTTP, POST /job to the replica)",
};
