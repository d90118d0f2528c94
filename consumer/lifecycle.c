/* lifecycle.c -- one replica, one job, one exit code.
 *
 *   start: core init, HTTP server, source, store, watchdog
 *   claim exactly one job (or stop: idle timeout, SIGTERM, deadline)
 *   skip it if the store says it already succeeded or was cancelled
 *   status "running" -> heartbeat thread -> core -> result + final status
 *   settle the message (ack / retry / dead-letter / release / respond)
 *   exit with the job's code
 *
 * Ordering is the at-least-once guarantee: the message is settled only
 * after the result and the final status are written, so a crash anywhere
 * before leaves it to be redelivered, and idempotency by job id makes the
 * redelivery harmless. */
#include "lifecycle.h"

#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../common/buf.h"
#include "../common/clock.h"
#include "../common/exitcodes.h"
#include "../common/ids.h"
#include "../common/log.h"
#include "../common/status.h"
#include "broker.h"
#include "cores/core.h"
#include "heartbeat.h"
#include "http/httpd.h"
#include "metrics.h"
#include "outcome.h"
#include "replica.h"
#include "source.h"
#include "store.h"
#include "watchdog.h"
#include "seam.h"

#define CLAIM_SLICE_MS 500 /* claim waits at most this long between checks */

/* Everything one run holds, so the watchdog's hard exit can reach it. */
static struct run {
    const config *cfg;
    const core_ops *core;
    void *core_state;
    const broker *broker;
    const source_ops *src;
    void *src_state;
    const store_ops *store;
    void *store_state;
    httpd *http;
    int core_ready;
    int64_t start_mono_ms;
    int64_t started_mono_ms; /* the job's start, for its duration */
    atomic_int cancel;
    status_rec status;   /* the main thread's; the heartbeat reads it while the core runs */
    /* What the watchdog's hard exit writes: a copy of status the main
     * thread takes (status_share) at each transition, under shared_mu, so
     * the watchdog thread never reads a record half-written. */
    pthread_mutex_t shared_mu;
    status_rec shared;
    char termlog[4096];  /* the termination-log path, "" = off */
} R;

/* --- termination log (Kubernetes reads it after the container ends) --- */

static void termlog_resolve(const config *cfg) {
    R.termlog[0] = '\0';
    if (cfg->termination_log) {
        snprintf(R.termlog, sizeof(R.termlog), "%s", cfg->termination_log);
    } else if (access("/dev/termination-log", W_OK) == 0) {
        /* Only when the platform created it: never create files in /dev. */
        snprintf(R.termlog, sizeof(R.termlog), "/dev/termination-log");
    }
}

/* Write the final status JSON (< 4 KiB) to the termination log, mode 0640:
 * it may name the job and its error, so it is not world-readable or
 * world-writable. Best effort: the exit code stands either way. */
static void termlog_write(const status_rec *st) {
    if (!R.termlog[0]) return;
    status_rec copy = *st;
    size_t len;
    char *json = status_to_json(&copy, &len);
    if (len >= 4096) { /* drop the error text first: it is the long field */
        free(json);
        copy.error[0] = '\0';
        json = status_to_json(&copy, &len);
    }
    int fd = open(R.termlog, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd >= 0) {
        fchmod(fd, 0640);
        if (write(fd, json, len) < 0 || write(fd, "\n", 1) < 0)
            log_warn("termination log %s: %s", R.termlog, strerror(errno));
        close(fd);
    } else {
        log_warn("termination log %s: %s", R.termlog, strerror(errno));
    }
    free(json);
}

/* --- watchdog hooks --- */

static void status_share(void) {
    pthread_mutex_lock(&R.shared_mu);
    R.shared = R.status;
    pthread_mutex_unlock(&R.shared_mu);
}

/* The shared copy; if the main thread holds the lock for long (it never
 * does: a struct copy), the hard exit does not wait on it past 100 ms. */
static void status_shared_copy(status_rec *st) {
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_nsec += 100 * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    int locked = pthread_mutex_timedlock(&R.shared_mu, &until) == 0;
    *st = R.shared;
    if (locked) pthread_mutex_unlock(&R.shared_mu);
}

static void hook_abort_core(void) {
    if (R.core && R.core->abort) R.core->abort(R.core_state);
}

/* The state a job left running by a hard exit (code) ends in: given back
 * to a source that re-delivers it; final when nothing would (HTTP). */
static enum job_state hard_exit_state(int code) {
    if (code == OS_EXIT_DEADLINE) return R.src && R.src->can_retry ? JS_INTERRUPTED : JS_TIMED_OUT;
    return R.src && R.src->can_retry ? JS_INTERRUPTED : JS_FAILED;
}

static void hook_hard_exit(int code) {
    status_rec st;
    status_shared_copy(&st);
    int running = job_state_of(st.state) == JS_RUNNING;
    int was_running = st.id[0] && running;
    if (!st.state[0] || running) {
        snprintf(st.state, sizeof(st.state), "%s", job_state_name(hard_exit_state(code)));
        st.exit_code = code;
        st.finished_at = st.heartbeat_at = clock_wall_ms();
        if (st.started_at) st.duration_ms = clock_mono_ms() - R.started_mono_ms;
        snprintf(st.error, sizeof(st.error), "%s: the core did not stop, hard exit",
                 code == OS_EXIT_DEADLINE ? "deadline exceeded" : "interrupted");
    }
    /* No queue re-delivers this job: its record must not stay running. */
    if (was_running && status_is_final(st.state) && R.store && R.store->last_words && R.store_state) {
        char err[256] = "";
        if (R.store->last_words(R.store_state, &st, err, sizeof(err)) < 0)
            log_error("the final record could not be written: %s", err);
    }
    termlog_write(&st);
    log_fields(LL_ERROR, NULL, "exit %d (%s), immediate", code, exitcode_name(code));
    _exit(code);
}

static void on_progress(int percent) { heartbeat_set_progress(percent); }

/* --- outcome mapping --- */

/* The body answered to an HTTP caller when the core gave none. */
static void detail_body(buf *b, const char *detail) {
    buf_puts(b, "{\"detail\":");
    buf_json_str(b, detail, strlen(detail));
    buf_puts(b, "}");
}

/* The outcome (outcome.h decides it) with its body: the core's output,
 * or a {"detail"} naming the error. */
static void outcome_from_result(const job *j, core_result *res, outcome *o, buf *body) {
    memset(o, 0, sizeof(*o));
    if (res->outcome == CORE_OK && res->out_len > (size_t)R.cfg->max_output)
        core_fail(res, CORE_FAILED, 500, "result of %zu bytes exceeds --max-output %lld", res->out_len,
                  (long long)R.cfg->max_output);
    outcome_in in = {
        .core = res->outcome,
        .core_exit = res->exit_code,
        .core_http = res->http_status,
        .cancel = atomic_load(&R.cancel),
        .can_retry = R.src->can_retry,
        .attempts_left = j->attempt < R.cfg->max_attempts,
    };
    outcome_decision d;
    outcome_decide(&in, &d);
    if (d.error) snprintf(res->error, sizeof(res->error), "%s", d.error);
    if (res->outcome == CORE_REJECTED)
        log_warn("job rejected by the core (%d): %s", d.http_status, res->error[0] ? res->error : "no reason given");
    o->state = d.state;
    o->exit_code = d.exit_code;
    o->http_status = d.http_status;
    o->disp = d.disp;
    o->error = res->error;
    if (d.keep_body && res->out_len <= (size_t)R.cfg->max_output) {
        o->body = res->out;
        o->body_len = res->out_len;
        o->content_type = res->content_type;
    }
    if (d.state != JS_SUCCEEDED && (!o->body || !o->body_len)) { /* a success may be empty */
        detail_body(body, res->error[0] ? res->error : "job failed");
        o->body = body->data;
        o->body_len = body->len;
        o->content_type = "application/json";
    }
}

/* --- the steps --- */

/* Claim one job, or return the exit code that ends the replica first. */
static int claim_one(job *j, int *rc_out, int *http_status, char *err, size_t errlen) {
    int64_t start = clock_mono_ms();
    for (;;) {
        int stop = watchdog_stop_reason();
        if (stop) return stop;
        int slice = CLAIM_SLICE_MS;
        if (R.cfg->idle_timeout > 0) {
            int64_t left = start + (int64_t)R.cfg->idle_timeout * 1000 - clock_mono_ms();
            if (left <= 0) {
                log_info("no job within --idle-timeout %ds: exiting, nothing consumed", R.cfg->idle_timeout);
                return OS_EXIT_IDLE;
            }
            if (left < slice) slice = (int)left;
        }
        int rc = R.src->claim(R.src_state, slice, j, http_status, err, errlen);
        if (rc == CLAIM_NONE) continue;
        if (rc == CLAIM_ERR) {
            log_error("claim failed: %s", err);
            return OS_EXIT_UNAVAILABLE;
        }
        *rc_out = rc;
        return 0;
    }
}

/* Write the final record (result first), make it durable, then settle the
 * message. Returns the exit code: o->exit_code, or 69 when any step fails
 * or the fence is stale (the message is then left to be redelivered). */
static int publish_and_settle(job *j, outcome *o) {
    char err[512] = "";
    status_rec *st = &R.status;

    replica_set_phase(PHASE_FINISHING);
    snprintf(st->state, sizeof(st->state), "%s", job_state_name(o->state));
    st->exit_code = o->exit_code;
    st->finished_at = clock_wall_ms();
    /* From the monotonic clock: the wall clock may be slewed or stepped. */
    st->duration_ms = st->started_at ? clock_mono_ms() - R.started_mono_ms : 0;
    /* The last sign of life: never before what a heartbeat wrote. */
    if (st->started_at) st->heartbeat_at = st->finished_at;
    st->progress = o->state == JS_SUCCEEDED ? 100 : heartbeat_progress();
    snprintf(st->error, sizeof(st->error), "%s", o->error ? o->error : "");
    status_share();
    if (o->disp == DISP_RELEASE && o->state == JS_INTERRUPTED && o->exit_code == OS_EXIT_UNAVAILABLE) {
        /* The claim was lost: another replica owns the job and its record. */
        log_error("not writing the status or settling: the claim was lost");
        return OS_EXIT_UNAVAILABLE;
    }
    if (R.src->owns && !R.src->owns(R.src_state, j, err, sizeof(err))) {
        /* Another replica owns the job now (Kafka: its partition moved):
         * nothing final is written, nothing settled. */
        log_error("stale: %s; writing nothing about the job and leaving the message to its owner", err);
        goto unavailable;
    }
    /* A result is kept for a success, and for any other end with a body
     * but these (their body is a detail, not the core's output). */
    int keeps = o->state == JS_SUCCEEDED ||
                (o->body && o->state != JS_REJECTED && o->state != JS_CANCELLED && o->state != JS_INTERRUPTED);
    if (keeps) {
        st->result_bytes = (int64_t)o->body_len;
        snprintf(st->content_type, sizeof(st->content_type), "%s",
                 o->content_type ? o->content_type : "application/octet-stream");
        if (R.store->put_result(R.store_state, st, o->body, o->body_len, err, sizeof(err)) < 0) goto unavailable;
    }
    /* The settle rides in the final record's round trip (source.h
     * stage) when the record is fenced (begin wrote it), unless a test
     * stops the replica between the two. */
    if (R.src->stage && st->fence > 0 && !SEAM_ARMED("settle")) {
        o->fence = st->fence;
        R.src->stage(R.src_state, j, o);
    }
    SEAM("final");
    int put = R.store->put_status(R.store_state, st, err, sizeof(err));
    if (put == STORE_POISON) {
        /* The job's result or record key is unusable: the job goes to the
         * dead letters with the reason, its record (when it can be
         * written) says so, and nothing is written to the broken key. */
        snprintf(st->error, sizeof(st->error), "the job's outcome (%.16s) could not be stored: %.400s",
                 job_state_name(o->state),
                 err);
        log_error("job %s: %s", j->id, st->error);
        snprintf(st->state, sizeof(st->state), "%s", ST_DEAD);
        st->exit_code = OS_EXIT_UNAVAILABLE;
        st->result_bytes = -1;
        st->content_type[0] = '\0';
        o->disp = DISP_DEAD;
        o->state = JS_DEAD;
        o->exit_code = OS_EXIT_UNAVAILABLE;
        o->error = st->error;
        put = R.store->put_status(R.store_state, st, err, sizeof(err));
        if (put == STORE_POISON) put = STORE_SKIPPED; /* the record itself: dead-letter without it */
        status_share();
    }
    if (put < 0) goto unavailable;
    if (put == STORE_STALE) {
        log_error("stale: %s; writing nothing and leaving the message to its owner", err);
        goto unavailable;
    }
    /* What settle checks the record for: what was just written (nothing
     * when the store skipped it, or keeps no fences). */
    o->fence = put == STORE_SKIPPED ? 0 : st->fence;
    if (R.store->flush && R.store->flush(R.store_state, err, sizeof(err)) < 0) goto unavailable;
    SEAM("settle");
    if (R.src->finish(R.src_state, j, o, err, sizeof(err)) < 0) goto unavailable;
    return o->exit_code;
unavailable:
    log_error("cannot finish the job, leaving it to be redelivered: %s", err);
    /* What the termination log and the last line say: not the outcome we
     * could not publish, but that the job was left for another replica. */
    snprintf(st->state, sizeof(st->state), "%s", ST_INTERRUPTED);
    st->exit_code = OS_EXIT_UNAVAILABLE;
    snprintf(st->error, sizeof(st->error), "%s", err);
    status_share();
    return OS_EXIT_UNAVAILABLE;
}

static int reject_job(job *j, int http_status, const char *why, enum job_state state, int code);

/* A job begin did not start (enum begin_rc): settled unrun, or left. */
static int settle_unrun(job *j, int begun, const char *info) {
    outcome o;
    buf body = BUF_INIT;
    char err[512] = "", why[448]; /* a prefix and info[400] */
    int code = OS_EXIT_OK;
    enum job_state state = JS_SUCCEEDED, known = job_state_of(info);

    /* Behind HTTP each of these ends the replica with a 4xx: a warning. */
    int level = R.src->can_retry ? LL_INFO : LL_WARN;
    memset(&o, 0, sizeof(o));
    switch (begun) {
    case BEGIN_LOST:
        log_error("job %s: this replica no longer holds it (its lease lapsed and another replica took it back): "
                  "not running it", j->id);
        snprintf(R.status.state, sizeof(R.status.state), "%s", ST_INTERRUPTED);
        R.status.exit_code = OS_EXIT_UNAVAILABLE;
        return OS_EXIT_UNAVAILABLE;
    case BEGIN_POISON:
        snprintf(why, sizeof(why), "the job's status record is unusable: %s", info);
        R.status.started_at = R.status.heartbeat_at = 0;
        return reject_job(j, 500, why, JS_DEAD, OS_EXIT_UNAVAILABLE);
    case BEGIN_CANCELLED:
        log_fields(level, NULL, "job %s was cancelled before it ran: recorded cancelled, acknowledging it without running",
                   j->id);
        state = JS_CANCELLED;
        o.http_status = 409;
        break;
    case BEGIN_DUPLICATE:
        log_fields(level, NULL, "job %s is being run by replica %s: this delivery is a duplicate, acknowledged without running",
                   j->id, info);
        state = JS_DUPLICATE;
        o.http_status = 409;
        break;
    default: /* BEGIN_DONE */
        state = job_state_final(known) ? known : JS_SUCCEEDED;
        o.http_status = known == JS_SUCCEEDED ? 200 : 409;
        if (state == JS_DEAD || state == JS_REJECTED) {
            /* A copy of a job recorded dead is dead-lettered, never only
             * acked: it may be the one whose dead letter was never pushed. */
            snprintf(why, sizeof(why), "job already %s: this delivery is dead-lettered without running "
                     "(re-drive it, or use a new id, to run it again)", job_state_name(state));
            log_warn("%s", why);
            o.disp = DISP_DEAD;
            o.error = why;
            break;
        }
        if (known == JS_CANCELLED)
            log_fields(level, NULL, "job %s was cancelled before it ran: acknowledging it without running", j->id);
        else
            log_fields(level, NULL, "job %s is already %s: acknowledging this delivery without running it again", j->id,
                       info);
        break;
    }
    if (!o.error) o.disp = DISP_ACK;
    o.state = state;
    o.exit_code = OS_EXIT_OK;
    detail_body(&body, state == JS_CANCELLED    ? "job cancelled"
                       : state == JS_DUPLICATE ? "job already running elsewhere"
                                               : "job already done");
    o.body = body.data;
    o.body_len = body.len;
    o.content_type = "application/json";
    replica_set_phase(PHASE_FINISHING);
    if (R.src->finish(R.src_state, j, &o, err, sizeof(err)) < 0) {
        log_error("cannot acknowledge: %s", err);
        code = OS_EXIT_UNAVAILABLE;
    }
    snprintf(R.status.state, sizeof(R.status.state), "%s", job_state_name(code ? JS_INTERRUPTED : state));
    R.status.exit_code = code;
    status_share();
    buf_free(&body);
    return code;
}

static int64_t rusage_cpu_ms(const struct rusage *ru) {
    return (int64_t)(ru->ru_utime.tv_sec + ru->ru_stime.tv_sec) * 1000 +
           (ru->ru_utime.tv_usec + ru->ru_stime.tv_usec) / 1000;
}

/* Write the job's "running" record (enum begin_rc). With a store that has
 * begin, the same step checks that the copy is still held, reads the
 * record and the cancel mark and takes the job's new fence (info: see
 * store.h); otherwise the record is written with put_status. */
static int begin_job(const job *j, char *info, size_t n, char *err, size_t errlen) {
    claim_proof p = {0};
    R.status.started_at = clock_wall_ms();
    R.started_mono_ms = clock_mono_ms();
    R.status.heartbeat_at = R.status.started_at;
    if (R.src->proof) R.src->proof(R.src_state, j, &p);
    SEAM("begin");
    if (R.store->begin) return R.store->begin(R.store_state, &R.status, &p, info, n, err, errlen);
    return R.store->put_status(R.store_state, &R.status, err, errlen) < 0 ? BEGIN_ERR : BEGIN_RUN;
}

/* Run the core on the claimed job (its "running" record written) and
 * settle it. */
static int run_job(job *j) {
    core_result res;
    outcome o;
    buf body = BUF_INIT;
    struct rusage ru0, ru1;
    int code;

    core_result_init(&res);
    heartbeat_args ha = {R.cfg, R.src, R.src_state, R.store, R.store_state, j, &R.status, &R.cancel};
    if (heartbeat_start(&ha) < 0) {
        log_error("cannot start the heartbeat thread");
        return OS_EXIT_UNAVAILABLE;
    }
    core_ctx ctx = {j, R.cfg, &R.cancel, on_progress, 0};
    if (j->deadline_s > 0) ctx.deadline_wall_ms = j->claimed_wall_ms + (int64_t)j->deadline_s * 1000;
    if (R.cfg->deadline > 0) {
        int64_t soft_mono = R.start_mono_ms + (int64_t)(R.cfg->deadline - R.cfg->deadline_margin) * 1000;
        int64_t replica_at = clock_wall_ms() + (soft_mono - clock_mono_ms());
        if (!ctx.deadline_wall_ms || replica_at < ctx.deadline_wall_ms) ctx.deadline_wall_ms = replica_at;
    }
    log_info("running job (core %s, attempt %d, %zu input bytes)", R.core->name, j->attempt, j->input_len);
    getrusage(RUSAGE_SELF, &ru0);
    R.core->run(R.core_state, &ctx, &res);
    getrusage(RUSAGE_SELF, &ru1);
    watchdog_job_end();
    heartbeat_stop();
    heartbeat_check_claim();
    if (res.cpu_ms < 0) { /* an in-process core: account the process */
        res.cpu_ms = rusage_cpu_ms(&ru1) - rusage_cpu_ms(&ru0);
        res.max_rss_kb = ru1.ru_maxrss;
    }
    R.status.cpu_ms = res.cpu_ms;
    R.status.max_rss_kb = res.max_rss_kb;
    if (res.outcome != CORE_CANCELLED && atomic_load(&R.cancel) == CANCEL_LOST) res.outcome = CORE_CANCELLED;
    outcome_from_result(j, &res, &o, &body);
    code = publish_and_settle(j, &o);
    buf_free(&body);
    free(res.out_owned);
    return code;
}

/* A message the source could not parse: dead-letter it, exit 65 (or, for
 * a job whose own keys are unusable, the given state and code). */
static int reject_job(job *j, int http_status, const char *why, enum job_state state, int code) {
    outcome o;
    buf body = BUF_INIT;
    log_warn("job %s: %s", state == JS_REJECTED ? "rejected" : "dead-lettered", why);
    memset(&o, 0, sizeof(o));
    o.disp = DISP_DEAD;
    o.state = state;
    o.exit_code = code;
    o.http_status = http_status ? http_status : 400;
    o.error = why;
    detail_body(&body, why);
    o.body = body.data;
    o.body_len = body.len;
    o.content_type = "application/json";
    R.status.started_at = clock_wall_ms();
    R.started_mono_ms = clock_mono_ms();
    int rc = publish_and_settle(j, &o);
    buf_free(&body);
    return rc;
}

/* Core, HTTP server, watchdog (which runs the server's event loop), source
 * and store, in that order: /health is served and signals are taken while
 * the source connects (which may take its whole retry budget). */
static int open_everything(char *err, size_t errlen, int *code) {
    if (R.core->init(R.cfg, &R.core_state, err, errlen) < 0) {
        *code = OS_EXIT_CONFIG;
        return -1;
    }
    R.core_ready = 1;
    httpd_set_metrics(metrics_render);
    R.http = httpd_start(R.cfg, R.broker->serves_http, err, errlen);
    if (!R.http) {
        *code = OS_EXIT_CONFIG;
        return -1;
    }
    char port[32];
    snprintf(port, sizeof(port), "\"port\":%d", httpd_port(R.http));
    log_fields(LL_INFO, port, "listening on %s:%d (source %s, core %s, store %s)", R.cfg->bind,
               httpd_port(R.http), R.cfg->source, R.cfg->core, R.cfg->store);
    if (R.broker->attach) R.broker->attach(R.http);
    watchdog_hooks hooks = {
        .abort_core = hook_abort_core,
        .hard_exit = hook_hard_exit,
        .io = {.fd = httpd_poll_fd(R.http), .timeout_ms = httpd_timeout_ms, .run = httpd_run, .arg = R.http},
    };
    if (watchdog_start(R.cfg, R.start_mono_ms, &R.cancel, &hooks) < 0) {
        snprintf(err, errlen, "cannot start the watchdog");
        *code = OS_EXIT_UNAVAILABLE;
        return -1;
    }
    httpd_set_wake(R.http, watchdog_wake_io);
    int rc = R.src->open(R.cfg, &R.src_state, err, errlen);
    if (rc < 0) {
        R.src_state = NULL;
        *code = rc == -2 ? OS_EXIT_CONFIG : OS_EXIT_UNAVAILABLE;
        return -1;
    }
    rc = R.store->open(R.cfg, &R.store_state, err, errlen);
    if (rc < 0) {
        R.store_state = NULL;
        *code = rc == -2 ? OS_EXIT_CONFIG : OS_EXIT_UNAVAILABLE;
        return -1;
    }
    return 0;
}

int lifecycle_run(const config *cfg) {
    char err[512] = "";
    char worker[128];
    job j;
    int code = OS_EXIT_OK;
    int http_status = 0;
    int claim_rc = CLAIM_NONE;
    int64_t start = clock_mono_ms();
    int opened_src = 0, opened_store = 0;

    /* One malloc arena for the process: the watchdog thread's own arena
     * would be mapped and trimmed (and the other cores' TLBs shot down)
     * on the job's clock, for two threads that hardly contend. */
    mallopt(M_ARENA_MAX, 1);
    memset(&R, 0, sizeof(R));
    pthread_mutex_init(&R.shared_mu, NULL);
    memset(&j, 0, sizeof(j));
    R.cfg = cfg;
    R.start_mono_ms = start;
    atomic_init(&R.cancel, CANCEL_NONE);
    id_replica(worker, sizeof(worker));
    log_init(log_level_parse(cfg->log_level), strcmp(cfg->log_format, "json") == 0, worker);
    replica_init(worker, cfg->source);
    termlog_resolve(cfg);
    status_init(&R.status);
    snprintf(R.status.worker, sizeof(R.status.worker), "%s", worker);
    snprintf(R.status.source, sizeof(R.status.source), "%s", cfg->source);
    

    R.core = core_find(cfg->core);
    R.broker = broker_named(cfg->source);
    if (!R.broker) snprintf(err, sizeof(err), "--source: unknown source '%s'", cfg->source);
    else snprintf(R.status.queue, sizeof(R.status.queue), "%s", R.broker->serves_http ? "" : cfg->queue);
    R.src = R.broker ? broker_source(R.broker, err, sizeof(err)) : NULL;
    if (R.src) R.store = broker_store(cfg->store, err, sizeof(err));
    if (!R.src || !R.store) {
        log_error("%s", err);
        code = OS_EXIT_CONFIG;
        goto out;
    }
    watchdog_block_signals();
    if (open_everything(err, sizeof(err), &code) < 0) {
        log_error("%s", err);
        goto out;
    }
    opened_src = opened_store = 1;
    log_debug("waiting for a job (idle timeout %ds, deadline %ds)", cfg->idle_timeout, cfg->deadline);

    code = claim_one(&j, &claim_rc, &http_status, err, sizeof(err));
    if (code) goto out;

    j.claimed_mono_ms = clock_mono_ms();
    j.claimed_wall_ms = clock_wall_ms();
    if (j.attempt <= 0) j.attempt = 1;
    log_set_job(j.id);
    replica_set_job(j.id);
    replica_set_phase(PHASE_RUNNING);
    snprintf(R.status.id, sizeof(R.status.id), "%s", j.id);
    snprintf(R.status.state, sizeof(R.status.state), "%s", ST_RUNNING);
    R.status.attempt = j.attempt;
    /* A store without begin keeps no fence of its own: the claim time is
     * the record's fence (README "Kafka" → "Fence"). */
    if (!R.store->begin) R.status.fence = j.claimed_wall_ms;
    status_share();
    watchdog_job_begin(j.deadline_s > 0 ? j.claimed_mono_ms + (int64_t)j.deadline_s * 1000 : 0);
    log_info("claimed job (attempt %d)", j.attempt);
    if (j.unknown) log_warn("%s", j.unknown);

    if (claim_rc == CLAIM_REJECT) {
        /* A claim script that began the job (claim_proof): the rejection
         * replaces its running record under its fence. Its rules begin only
         * what take_entry accepts, so this is the belt, not the path. */
        claim_proof p = {0};
        if (R.src->proof) R.src->proof(R.src_state, &j, &p);
        if (p.begun && p.begin_rc == BEGIN_RUN) R.status.fence = p.fence;
        watchdog_job_end();
        code = reject_job(&j, http_status, err, JS_REJECTED, OS_EXIT_REJECTED);
        goto out;
    }
    char info[400] = "";
    int begun = begin_job(&j, info, sizeof(info), err, sizeof(err));
    status_share(); /* the fence */
    if (begun == BEGIN_ERR) {
        log_error("cannot write the running status, leaving the job to be redelivered: %s", err);
        code = OS_EXIT_UNAVAILABLE;
        goto out;
    }
    if (begun != BEGIN_RUN) {
        watchdog_job_end();
        code = settle_unrun(&j, begun, info);
        goto out;
    }
    code = run_job(&j);
out:
    if (R.status.id[0] && job_state_of(R.status.state) == JS_RUNNING) {
        /* Left before the job ended (store or broker lost). */
        snprintf(R.status.state, sizeof(R.status.state), "%s", ST_INTERRUPTED);
        R.status.exit_code = code;
    }
    if (!R.status.id[0]) { /* no job: still say how the replica ended */
        snprintf(R.status.state, sizeof(R.status.state), "%s", code == OS_EXIT_IDLE ? "idle" : exitcode_name(code));
        R.status.exit_code = code;
    }
    status_share();
    replica_set_result(R.status.state, code);
    termlog_write(&R.status);
    metrics_final(cfg, &R.status); /* before the server stops; pushes with --pushgateway */
    {
        /* cpu_ms and max_rss_kb only when known (no job: none). */
        char f[200];
        int n = snprintf(f, sizeof(f), "\"exit_code\":%d,\"state\":\"%s\"", code, R.status.state);
        if (R.status.cpu_ms >= 0)
            snprintf(f + n, sizeof(f) - (size_t)n, ",\"cpu_ms\":%lld,\"max_rss_kb\":%lld", (long long)R.status.cpu_ms,
                     (long long)R.status.max_rss_kb);
        log_fields(LL_INFO, f, "exit %d (%s)", code, exitcode_name(code));
    }
    /* The process ends here. The watchdog's thread, which also runs the
     * HTTP server's event loop, is told to do nothing more but is not
     * joined, and the server is not stopped: exit ends both, and a stop
     * would put a wake-up and a join on the job's clock. Neither touches
     * the source, the store or the core (the server answers from its own
     * state, the replica's phase and the metrics), which are closed here. */
    watchdog_stop();
    if (opened_src && R.src_state) R.src->close(R.src_state);
    if (opened_store && R.store_state) R.store->close(R.store_state);
    if (R.core_ready) R.core->destroy(R.core_state);
    job_free(&j);
    return code;
}
