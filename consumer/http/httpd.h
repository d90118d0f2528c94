/* http/httpd.h -- the replica's HTTP server (libmicrohttpd), in every mode.
 *
 * Serves GET /health (and GET /metrics) always, and POST /job when the
 * source is http: exactly one job per process, 503 for any later one. The
 * job request is held (suspended) while the core runs and answered with
 * httpd_job_respond; httpd_job_wait_sent then returns once the response
 * has been fully sent (libmicrohttpd's completion notification), so the
 * process never exits before the caller has its answer.
 *
 * The server has no thread of its own: its event loop is polled and run
 * by the watchdog's thread (httpd_poll_fd, httpd_timeout_ms, httpd_run as
 * a watchdog_io), one thread less to start on the job's clock. It listens
 * from httpd_start (connections wait in the backlog until the loop runs)
 * until the process exits: there is no stop, exit closes its sockets. */
#ifndef ONESHOT_HTTPD_H
#define ONESHOT_HTTPD_H

#include <stddef.h>

#include "../../common/job.h"
#include "../../config/config.h"

#define HTTPD_CONN_LIMIT 1000     /* concurrent connections */

typedef struct httpd httpd;

/* Start listening. accept_jobs: POST /job is served (http source); else it
 * answers 404. NULL with a reason when the address cannot be bound. */
httpd *httpd_start(const config *cfg, int accept_jobs, char *err, size_t errlen);
int httpd_port(const httpd *h);
/* The event loop, for the thread that runs it: poll httpd_poll_fd for
 * reading, and call httpd_run(h) when it is readable or httpd_timeout_ms(h)
 * (-1: none) has passed. Only that one thread calls httpd_run. */
int httpd_poll_fd(const httpd *h);
int httpd_timeout_ms(void *h);
void httpd_run(void *h);
/* How httpd_job_respond makes the loop's thread run it (set before a job
 * is answered). */
void httpd_set_wake(httpd *h, void (*wake)(void));

/* Wait up to timeout_ms for a job request (enum claim_rc from source.h):
 * CLAIM_OK fills *j; CLAIM_REJECT: the request was bad (*http_status, err),
 * *j has what is known; CLAIM_NONE: nothing yet. */
int httpd_job_wait(httpd *h, int timeout_ms, job *j, int *http_status, char *err, size_t errlen);
/* Answer the job request (a no-op if it was already answered). */
void httpd_job_respond(httpd *h, int status, const char *content_type, const char *body, size_t len);
/* Wait up to timeout_ms for the response to be sent or the client to go
 * away. 0: sent; -1: not sent (client gone, or timeout). */
int httpd_job_wait_sent(httpd *h, int timeout_ms);

/* Optional renderer for GET /metrics (set once before httpd_start). */
void httpd_set_metrics(void (*render)(char **body, size_t *len));

#endif
