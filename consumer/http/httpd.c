/* http/httpd.c -- the replica's HTTP server on libmicrohttpd.
 *
 * One event loop (epoll), run by the watchdog's thread (httpd_run),
 * serves every connection, so idle or slow clients cost a socket, not a
 * thread, and /health keeps answering while a job runs. The job request
 * moves through a single slot:
 *
 *   FREE -> RECEIVING (headers accepted, body arriving)
 *        -> WAITING   (handed to the lifecycle, connection suspended)
 *        -> ANSWERED  (response queued) -> SENT / GONE (completion callback)
 *
 * A request that dies while RECEIVING frees the slot again: a stalled or
 * vanished client never holds the replica. */
#include "httpd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <time.h>

#include "../../common/buf.h"
#include "../../common/clock.h"
#include "../../common/ids.h"
#include "../../common/log.h"
#include "../replica.h"
#include "../seam.h"
#include "../source.h"

/* A chunked body over --max-input is read and dropped up to this many
 * bytes more so the client gets a 413; past that the connection is cut. */
#define DISCARD_CAP (64 * 1024 * 1024)

enum slot_state { SLOT_FREE, SLOT_RECEIVING, SLOT_WAITING, SLOT_ANSWERED, SLOT_SENT, SLOT_GONE };

/* Per-request state (MHD's con_cls). */
typedef struct request {
    int is_job;          /* owns the job slot */
    int responded;       /* a response was queued for it */
    int too_large;       /* body exceeded --max-input */
    uint64_t discarded;
    buf body;
} request;

struct httpd {
    struct MHD_Daemon *d;
    const config *cfg;
    int accept_jobs;
    int port;
    void (*wake)(void); /* makes the event loop run (httpd_set_wake) */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    enum slot_state slot;
    struct MHD_Connection *job_conn;
    int job_ready;       /* a job (or a rejection) waits for httpd_job_wait */
    int job_taken;
    job pending;         /* the arrived job, moved out by httpd_job_wait */
    int reject_status;   /* 0, or the HTTP status of an early rejection */
    char reject_err[256];
    /* The answer, set by httpd_job_respond, queued on the MHD thread. */
    int resp_status;
    char resp_id[ID_MAX + 1]; /* the job's id, echoed as X-Inference-Id */
    char *resp_type;
    char *resp_body;
    size_t resp_len;
};

static void (*metrics_render)(char **body, size_t *len);

void httpd_set_metrics(void (*render)(char **body, size_t *len)) { metrics_render = render; }

/* mode MHD_RESPMEM_PERSISTENT: body outlives the daemon, no copy is made.
 * xid: the job's id for the X-Inference-Id header, NULL for none. */
static enum MHD_Result send_body_mem(struct MHD_Connection *c, unsigned status, const char *type,
                                     const char *body, size_t len, const char *allow, const char *xid,
                                     enum MHD_ResponseMemoryMode mode) {
    struct MHD_Response *r = MHD_create_response_from_buffer(len, (void *)body, mode);
    if (!r) return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type ? type : "application/octet-stream");
    if (allow) MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow);
    if (xid && xid[0]) MHD_add_response_header(r, "X-Inference-Id", xid);
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result send_body(struct MHD_Connection *c, unsigned status, const char *type,
                                 const char *body, size_t len, const char *allow) {
    return send_body_mem(c, status, type, body, len, allow, NULL, MHD_RESPMEM_MUST_COPY);
}

static enum MHD_Result send_detail(struct MHD_Connection *c, unsigned status, const char *detail,
                                   const char *allow) {
    buf b = BUF_INIT;
    buf_puts(&b, "{\"detail\":");
    buf_json_str(&b, detail, strlen(detail));
    buf_puts(&b, "}");
    enum MHD_Result ret = send_body(c, status, "application/json", b.data, b.len, allow);
    buf_free(&b);
    return ret;
}

static enum MHD_Result serve_health(struct MHD_Connection *c) {
    replica_view v;
    buf b = BUF_INIT;
    replica_get(&v);
    buf_printf(&b, "{\"status\":\"ok\",\"state\":\"%s\",\"replica\":", replica_phase_name(v.phase));
    buf_json_str(&b, v.id, strlen(v.id));
    buf_printf(&b, ",\"source\":\"%s\",\"job_id\":", v.source);
    if (v.job_id[0])
        buf_json_str(&b, v.job_id, strlen(v.job_id));
    else
        buf_puts(&b, "null");
    buf_printf(&b, ",\"progress\":%d,\"uptime_ms\":%lld}", v.progress,
               (long long)(clock_mono_ms() - v.started_mono_ms));
    enum MHD_Result ret = send_body(c, MHD_HTTP_OK, "application/json", b.data, b.len, NULL);
    buf_free(&b);
    return ret;
}

static enum MHD_Result serve_metrics(struct MHD_Connection *c) {
    char *body = NULL;
    size_t len = 0;
    if (!metrics_render) return send_detail(c, MHD_HTTP_NOT_FOUND, "Not Found", NULL);
    metrics_render(&body, &len);
    enum MHD_Result ret = send_body(c, MHD_HTTP_OK, "text/plain; version=0.0.4", body, len, NULL);
    free(body);
    return ret;
}

/* Constant-time comparison of the Authorization header with the token. */
static int auth_ok(const httpd *h, struct MHD_Connection *c) {
    const char *tok = h->cfg->auth_token;
    if (!tok) return 1;
    const char *got = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (!got || strncmp(got, "Bearer ", 7) != 0) return 0;
    got += 7;
    size_t gn = strlen(got), tn = strlen(tok);
    unsigned char diff = (unsigned char)(gn != tn);
    for (size_t i = 0; i < tn; i++) diff |= (unsigned char)(tok[i] ^ (i < gn ? got[i] : 0));
    return diff == 0;
}

static enum MHD_Result add_param(void *cls, enum MHD_ValueKind kind, const char *key, const char *value) {
    (void)kind;
    job_param_add(cls, key, value ? value : "");
    return MHD_YES;
}

/* Hand the finished upload to the lifecycle and hold the connection. */
static enum MHD_Result job_arrived(httpd *h, struct MHD_Connection *c, request *rq) {
    job *j = &h->pending;
    const char *xid = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Inference-Id");
    const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);

    memset(j, 0, sizeof(*j));
    j->attempt = 1;
    if (ct) j->content_type = xstrdup(ct);
    MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, add_param, j);
    size_t len = 0;
    j->input = buf_steal(&rq->body, &len);
    j->input_len = len;
    /* Held before the job is handed over, so the answer's resume always
     * comes after the suspend: a suspend after it would cancel it (MHD)
     * and leave the connection waiting for an event that may not come. */
    MHD_suspend_connection(c);
    pthread_mutex_lock(&h->mu);
    if (xid && !id_valid(xid, strlen(xid))) {
        snprintf(h->reject_err, sizeof(h->reject_err),
                 "X-Inference-Id must be 1..%d characters of [A-Za-z0-9._:-]", ID_MAX);
        h->reject_status = MHD_HTTP_BAD_REQUEST;
        id_uuid4(j->id);
    } else if (xid) {
        snprintf(j->id, sizeof(j->id), "%s", xid);
    } else {
        id_uuid4(j->id);
    }
    snprintf(h->resp_id, sizeof(h->resp_id), "%s", j->id);
    h->slot = SLOT_WAITING;
    h->job_ready = 1;
    pthread_cond_broadcast(&h->cv);
    pthread_mutex_unlock(&h->mu);
    SEAM_PAUSE("http-handoff");
    return MHD_YES;
}

/* Tell the lifecycle the job request was rejected: it ends the replica
 * with exit 65. The slot is ANSWERED: the caller answers, or cuts the
 * connection. */
static void job_reject(httpd *h, unsigned status, const char *why) {
    pthread_mutex_lock(&h->mu);
    memset(&h->pending, 0, sizeof(h->pending));
    h->pending.attempt = 1;
    id_uuid4(h->pending.id);
    h->reject_status = (int)status;
    snprintf(h->reject_err, sizeof(h->reject_err), "%s", why);
    h->slot = SLOT_ANSWERED;
    h->job_ready = 1;
    pthread_cond_broadcast(&h->cv);
    pthread_mutex_unlock(&h->mu);
}

/* Reject the job request early (before its body) and answer now. */
static enum MHD_Result job_reject_now(httpd *h, struct MHD_Connection *c, request *rq, unsigned status,
                                      const char *why) {
    job_reject(h, status, why);
    rq->responded = 1;
    return send_detail(c, status, why, NULL);
}

static enum MHD_Result serve_job(httpd *h, struct MHD_Connection *c, request *rq, const char *data,
                                 size_t *size, int first) {
    if (first) {
        if (!auth_ok(h, c)) {
            log_info("POST /job refused: missing or wrong bearer token");
            return send_detail(c, MHD_HTTP_UNAUTHORIZED, "missing or invalid bearer token", NULL);
        }
        pthread_mutex_lock(&h->mu);
        int free_slot = h->slot == SLOT_FREE;
        if (free_slot) {
            h->slot = SLOT_RECEIVING;
            h->job_conn = c;
            rq->is_job = 1;
        }
        pthread_mutex_unlock(&h->mu);
        if (!free_slot) {
            log_info("POST /job refused: this replica already took its job");
            return send_detail(c, MHD_HTTP_SERVICE_UNAVAILABLE,
                               "this replica already took its job; send it to another replica", NULL);
        }
        replica_set_phase(PHASE_RUNNING);
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl && strtoull(cl, NULL, 10) > (unsigned long long)h->cfg->max_input) {
            char why[160];
            snprintf(why, sizeof(why), "request body of %s bytes exceeds --max-input %lld", cl,
                     (long long)h->cfg->max_input);
            return job_reject_now(h, c, rq, 413, why);
        }
        return MHD_YES;
    }
    if (*size) { /* a piece of the body */
        if (!rq->too_large && rq->body.len + *size > (uint64_t)h->cfg->max_input) {
            rq->too_large = 1;
            buf_free(&rq->body);
        }
        if (rq->too_large) {
            rq->discarded += *size;
            if (rq->discarded > DISCARD_CAP) {
                char why[160];
                snprintf(why, sizeof(why), "request body far beyond --max-input %lld: connection cut",
                         (long long)h->cfg->max_input);
                log_warn("POST /job: %s", why);
                job_reject(h, 413, why); /* no answer: the replica ends with 65 */
                return MHD_NO;
            }
        } else {
            buf_append(&rq->body, data, *size);
        }
        *size = 0;
        return MHD_YES;
    }
    if (rq->too_large) {
        char why[160];
        snprintf(why, sizeof(why), "request body exceeds --max-input %lld", (long long)h->cfg->max_input);
        return job_reject_now(h, c, rq, 413, why);
    }
    /* The whole request is here. Either hand it over, or (after a resume)
     * queue the lifecycle's answer. */
    pthread_mutex_lock(&h->mu);
    enum slot_state s = h->slot;
    pthread_mutex_unlock(&h->mu);
    if (s == SLOT_RECEIVING) return job_arrived(h, c, rq);
    if (s == SLOT_ANSWERED && !rq->responded) {
        rq->responded = 1;
        /* resp_body is freed only after the daemon stops: no second copy
         * of a result that may be --max-output large. */
        return send_body_mem(c, (unsigned)h->resp_status, h->resp_type, h->resp_body, h->resp_len, NULL,
                             h->resp_id, MHD_RESPMEM_PERSISTENT);
    }
    return MHD_YES;
}

/* The headers of one request, as framing_check sees them. */
typedef struct framing {
    int lengths;     /* Content-Length headers */
    int encodings;   /* Transfer-Encoding headers */
    const char *bad; /* the first reason to refuse, or NULL */
} framing;

static enum MHD_Result framing_header(void *cls, enum MHD_ValueKind kind, const char *key, size_t key_size,
                                      const char *value, size_t value_size) {
    framing *f = cls;
    (void)kind;
    if (memchr(key, ' ', key_size) || memchr(key, '\t', key_size)) {
        f->bad = "whitespace between a header name and its colon";
    } else if (strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0) {
        f->lengths++;
        if (value_size == 0 || strspn(value, "0123456789") != value_size)
            f->bad = "Content-Length is not a number";
    } else if (strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING) == 0) {
        f->encodings++;
        if (strcasecmp(value, "chunked") != 0) f->bad = "Transfer-Encoding other than chunked";
    }
    return f->bad ? MHD_NO : MHD_YES;
}

/* NULL when the request's headers say where its body ends in one way
 * only: at most one Content-Length (digits), or else one
 * "Transfer-Encoding: chunked". Else the reason. libmicrohttpd 0.9.75
 * takes the first of two Content-Lengths, prefers chunked to a
 * Content-Length, and reads a header "Content-Length " (a space before the
 * colon) as another header: a job would run on a prefix of its body, or
 * the rest of it be read as the next request, where a proxy in front may
 * have framed it the other way (request smuggling). */
static const char *framing_check(struct MHD_Connection *c) {
    framing f = {0, 0, NULL};
    MHD_get_connection_values_n(c, MHD_HEADER_KIND, framing_header, &f);
    if (f.bad) return f.bad;
    if (f.lengths > 1) return "more than one Content-Length";
    if (f.encodings > 1) return "more than one Transfer-Encoding";
    if (f.lengths && f.encodings) return "both Content-Length and Transfer-Encoding";
    return NULL;
}

/* 400 for a request whose framing_check failed: the connection is closed
 * after it (what follows cannot be told from the body), nothing is taken. */
static enum MHD_Result refuse_framing(struct MHD_Connection *c, const char *method, const char *url,
                                     const char *why) {
    buf b = BUF_INIT;
    log_warn("%.16s %.200s refused (400): invalid framing: %s", method, url, why);
    buf_puts(&b, "{\"detail\":");
    buf_printf(&b, "\"invalid framing: %s\"}", why); /* why is one of framing_check's literals */
    struct MHD_Response *r = MHD_create_response_from_buffer(b.len, b.data, MHD_RESPMEM_MUST_COPY);
    buf_free(&b);
    if (!r) return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
    enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_BAD_REQUEST, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *data, size_t *size, void **con_cls) {
    httpd *h = cls;
    request *rq = *con_cls;
    int first = rq == NULL;
    (void)version;

    if (first) {
        rq = xcalloc(1, sizeof(*rq));
        *con_cls = rq;
        const char *why = framing_check(c);
        if (why) return refuse_framing(c, method, url, why); /* before the job slot: nothing was taken */
    }
    if (strcmp(url, "/job") == 0 && h->accept_jobs) {
        if (strcmp(method, MHD_HTTP_METHOD_POST) != 0)
            return first ? send_detail(c, MHD_HTTP_METHOD_NOT_ALLOWED, "Method Not Allowed", "POST") : MHD_YES;
        return serve_job(h, c, rq, data, size, first);
    }
    /* Every other request is answered on its first call; a body it may carry is
     * drained by libmicrohttpd. */
    if (!first) {
        *size = 0;
        return MHD_YES;
    }
    int get = strcmp(method, MHD_HTTP_METHOD_GET) == 0 || strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
    if (strcmp(url, "/health") == 0)
        return get ? serve_health(c) : send_detail(c, MHD_HTTP_METHOD_NOT_ALLOWED, "Method Not Allowed", "GET, HEAD");
    if (strcmp(url, "/metrics") == 0 && metrics_render)
        return get ? serve_metrics(c) : send_detail(c, MHD_HTTP_METHOD_NOT_ALLOWED, "Method Not Allowed", "GET, HEAD");
    return send_detail(c, MHD_HTTP_NOT_FOUND, "Not Found", NULL);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
    httpd *h = cls;
    request *rq = *con_cls;
    (void)c;
    if (!rq) return;
    if (rq->is_job) {
        pthread_mutex_lock(&h->mu);
        if (h->slot == SLOT_RECEIVING) {
            /* The client went away before its body arrived: no job was
             * taken, the replica waits for another request. */
            log_warn("POST /job abandoned by the client before its body arrived (code %d)", (int)toe);
            h->slot = SLOT_FREE;
            h->job_conn = NULL;
            replica_set_phase(PHASE_IDLE);
        } else if (h->slot == SLOT_ANSWERED) {
            h->slot = toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? SLOT_SENT : SLOT_GONE;
        } else if (h->slot == SLOT_WAITING) {
            h->slot = SLOT_GONE; /* closed while the job runs: the answer has nowhere to go */
        }
        pthread_cond_broadcast(&h->cv);
        pthread_mutex_unlock(&h->mu);
    }
    buf_free(&rq->body);
    free(rq);
    *con_cls = NULL;
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap) {
    char msg[512];
    (void)cls;
    vsnprintf(msg, sizeof(msg), fmt, ap);
    size_t n = strlen(msg);
    while (n && msg[n - 1] == '\n') msg[--n] = '\0';
    log_debug("libmicrohttpd: %s", msg);
}

/* File descriptors kept for the rest of the replica (Redis, Kafka, an exec
 * core's pipes, the termination log, the pushgateway) beside the HTTP ones. */
#define FD_RESERVE 64

/* How many connections the process's descriptors allow. The soft
 * RLIMIT_NOFILE is raised (up to the hard limit) to HTTPD_CONN_LIMIT plus
 * FD_RESERVE: a common soft default of 1024 is below that. When even the
 * hard limit is too low, fewer connections are served: else a flood of
 * clients would take every descriptor, and the job could not write its
 * termination log, reconnect to Redis or start an exec core. Past the
 * limit, new connections wait in the listen backlog until a slot frees;
 * idle ones are cut after --http-timeout. */
static unsigned conn_limit(void) {
    struct rlimit rl;
    rlim_t want = HTTPD_CONN_LIMIT + FD_RESERVE;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0) return HTTPD_CONN_LIMIT;
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want) {
        rlim_t old = rl.rlim_cur;
        rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > want ? want : rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0) rl.rlim_cur = old;
        else log_debug("RLIMIT_NOFILE raised from %llu to %llu", (unsigned long long)old,
                       (unsigned long long)rl.rlim_cur);
    }
    if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= want) return HTTPD_CONN_LIMIT;
    unsigned n = rl.rlim_cur > 2 * FD_RESERVE ? (unsigned)(rl.rlim_cur - FD_RESERVE)
                                              : (unsigned)rl.rlim_cur / 2;
    log_warn("serving at most %u HTTP connections: RLIMIT_NOFILE is %llu (hard limit)", n,
             (unsigned long long)rl.rlim_cur);
    return n ? n : 1;
}

httpd *httpd_start(const config *cfg, int accept_jobs, char *err, size_t errlen) {
    httpd *h = xcalloc(1, sizeof(*h));
    struct sockaddr_in sin;
    struct sockaddr_in6 sin6;
    struct sockaddr *sa;
    /* No thread of its own (see httpd.h). A resume from the lifecycle's
     * thread is seen at the loop's next run, which httpd_job_respond asks
     * for (httpd_set_wake): the inter-thread channel that
     * MHD_ALLOW_SUSPEND_RESUME brings does not wake an external loop. */
    unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;

    h->cfg = cfg;
    h->accept_jobs = accept_jobs;
    pthread_mutex_init(&h->mu, NULL);
    pthread_cond_init(&h->cv, NULL);
    memset(&sin, 0, sizeof(sin));
    memset(&sin6, 0, sizeof(sin6));
    if (inet_pton(AF_INET, cfg->bind, &sin.sin_addr) == 1) {
        sin.sin_family = AF_INET;
        sin.sin_port = htons((uint16_t)cfg->port);
        sa = (struct sockaddr *)&sin;
    } else {
        inet_pton(AF_INET6, cfg->bind, &sin6.sin6_addr);
        sin6.sin6_family = AF_INET6;
        sin6.sin6_port = htons((uint16_t)cfg->port);
        sa = (struct sockaddr *)&sin6;
        flags |= MHD_USE_IPv6;
    }
    h->d = MHD_start_daemon(flags, (uint16_t)cfg->port, NULL, NULL, on_request, h,
                            MHD_OPTION_SOCK_ADDR, sa,
                            MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)cfg->http_timeout,
                            MHD_OPTION_CONNECTION_LIMIT, conn_limit(),
                            MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(64 * 1024),
                            MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL,
                            MHD_OPTION_END);
    if (!h->d) {
        snprintf(err, errlen, "--port: cannot listen on %s:%d (in use, or not allowed)", cfg->bind, cfg->port);
        pthread_mutex_destroy(&h->mu);
        pthread_cond_destroy(&h->cv);
        free(h);
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    h->port = info ? info->port : cfg->port;
    return h;
}

int httpd_port(const httpd *h) { return h->port; }

int httpd_poll_fd(const httpd *h) {
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_EPOLL_FD);
    return info ? info->epoll_fd : -1;
}

int httpd_timeout_ms(void *arg) {
    httpd *h = arg;
    MHD_UNSIGNED_LONG_LONG ms;
    if (MHD_get_timeout(h->d, &ms) != MHD_YES) return -1;
    return ms > INT_MAX ? INT_MAX : (int)ms;
}

static unsigned open_connections(const httpd *h) {
    const union MHD_DaemonInfo *i = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
    return i ? i->num_connections : 0;
}

void httpd_run(void *arg) {
    httpd *h = arg;
    unsigned before = open_connections(h);
    MHD_run(h->d);
    /* At the connection limit libmicrohttpd stops watching the listen
     * socket, and watches it again only at the start of its next run:
     * when connections went away, run once more, or a connection waiting
     * in the backlog would wait with the loop asleep (no fd ready, no
     * timeout left). */
    if (open_connections(h) < before) MHD_run(h->d);
}

int httpd_job_wait(httpd *h, int timeout_ms, job *j, int *http_status, char *err, size_t errlen) {
    int rc = CLAIM_NONE;
    struct timespec ts;
    clock_abs_timespec(CLOCK_REALTIME, timeout_ms, &ts);
    pthread_mutex_lock(&h->mu);
    while (!h->job_ready || h->job_taken) {
        if (pthread_cond_timedwait(&h->cv, &h->mu, &ts) == ETIMEDOUT) break;
    }
    if (h->job_ready && !h->job_taken) {
        h->job_taken = 1;
        *j = h->pending; /* ownership of the members moves to the caller */
        memset(&h->pending, 0, sizeof(h->pending));
        if (h->reject_status) {
            *http_status = h->reject_status;
            snprintf(err, errlen, "%s", h->reject_err);
            rc = CLAIM_REJECT;
        } else {
            rc = CLAIM_OK;
        }
    }
    pthread_mutex_unlock(&h->mu);
    return rc;
}

void httpd_job_respond(httpd *h, int status, const char *content_type, const char *body, size_t len) {
    pthread_mutex_lock(&h->mu);
    if (h->slot != SLOT_WAITING) { /* answered already, or the client is gone */
        pthread_mutex_unlock(&h->mu);
        return;
    }
    h->resp_status = status;
    h->resp_type = xstrdup(content_type ? content_type : "application/octet-stream");
    h->resp_body = xmalloc(len ? len : 1);
    if (len) memcpy(h->resp_body, body, len);
    h->resp_len = len;
    h->slot = SLOT_ANSWERED;
    struct MHD_Connection *c = h->job_conn;
    pthread_mutex_unlock(&h->mu);
    MHD_resume_connection(c);
    /* Outside its own thread a resume is seen at the loop's next run. */
    if (h->wake) h->wake();
}

void httpd_set_wake(httpd *h, void (*wake)(void)) { h->wake = wake; }

int httpd_job_wait_sent(httpd *h, int timeout_ms) {
    int64_t until = clock_mono_ms() + timeout_ms;
    int rc;
    pthread_mutex_lock(&h->mu);
    while (h->slot == SLOT_ANSWERED || h->slot == SLOT_WAITING) {
        int64_t left = until - clock_mono_ms();
        if (left <= 0) break;
        struct timespec ts;
        clock_abs_timespec(CLOCK_REALTIME, left, &ts);
        pthread_cond_timedwait(&h->cv, &h->mu, &ts);
    }
    rc = h->slot == SLOT_SENT ? 0 : -1;
    pthread_mutex_unlock(&h->mu);
    return rc;
}
