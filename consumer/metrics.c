/* metrics.c -- render the replica's state as Prometheus text; push at exit.
 *
 * Every metric is a gauge of this one process: Prometheus (or the
 * Pushgateway) adds the job and instance labels. Series that have no
 * value yet (the exit code before the end, a duration before a job) are
 * left out rather than given a sentinel. */
#include "metrics.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "../common/buf.h"
#include "../common/clock.h"
#include "../common/log.h"
#include "pushgw.h"
#include "replica.h"

#ifndef ONESHOT_VERSION
#define ONESHOT_VERSION "0.1.0"
#endif

/* The final figures, set once by metrics_final (lifecycle thread), read by
 * the HTTP thread. */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
    int set;
    int attempt;
    int64_t duration_ms, cpu_ms, max_rss_kb, result_bytes; /* -1 = unknown */
} fin;

/* A label value, escaped as the text format wants (\\, \", \n). */
static void label_value(buf *b, const char *s) {
    buf_puts(b, "\"");
    for (; *s; s++) {
        if (*s == '\\') buf_puts(b, "\\\\");
        else if (*s == '"') buf_puts(b, "\\\"");
        else if (*s == '\n') buf_puts(b, "\\n");
        else buf_append(b, s, 1);
    }
    buf_puts(b, "\"");
}

static void head(buf *b, const char *name, const char *help) {
    buf_printf(b, "# HELP %s %s\n# TYPE %s gauge\n", name, help, name);
}

/* Whole numbers print as such, seconds to the millisecond. */
static void gauge(buf *b, const char *name, const char *help, double v) {
    head(b, name, help);
    if (v == (double)(long long)v)
        buf_printf(b, "%s %lld\n", name, (long long)v);
    else
        buf_printf(b, "%s %.3f\n", name, v);
}

/* final: the body pushed at exit (oneshot_up 0). */
static void render(buf *b, int final) {
    replica_view v;
    int64_t now_mono = clock_mono_ms(), now_wall = clock_wall_ms();
    static const char *const phases[] = {"idle", "running", "finishing", "exiting"};
    const char *phase;

    replica_get(&v);
    pthread_mutex_lock(&mu);
    int have_fin = fin.set, attempt = fin.attempt;
    int64_t dur_ms = fin.duration_ms, cpu_ms = fin.cpu_ms, rss_kb = fin.max_rss_kb, res_b = fin.result_bytes;
    pthread_mutex_unlock(&mu);
    phase = v.exit_code >= 0 ? "exiting" : replica_phase_name(v.phase);

    head(b, "oneshot_build_info", "The version of oneshot; always 1.");
    buf_puts(b, "oneshot_build_info{version=");
    label_value(b, ONESHOT_VERSION);
    buf_puts(b, "} 1\n");
    gauge(b, "oneshot_up", "1 while the replica serves; 0 in the metrics pushed at exit.", final ? 0 : 1);
    head(b, "oneshot_replica_info", "The replica, its source and its job (empty before a claim); always 1.");
    buf_puts(b, "oneshot_replica_info{replica=");
    label_value(b, v.id);
    buf_puts(b, ",source=");
    label_value(b, v.source);
    buf_puts(b, ",job_id=");
    label_value(b, v.job_id);
    buf_puts(b, "} 1\n");
    gauge(b, "oneshot_start_time_seconds", "Start of the process, Unix time in seconds.",
          (double)(now_wall - (now_mono - v.started_mono_ms)) / 1000.0);
    gauge(b, "oneshot_uptime_seconds", "Seconds since the process started.",
          (double)(now_mono - v.started_mono_ms) / 1000.0);
    head(b, "oneshot_state", "The replica's phase: 1 for the current one (exiting: the exit code is known).");
    for (size_t i = 0; i < sizeof(phases) / sizeof(phases[0]); i++)
        buf_printf(b, "oneshot_state{state=\"%s\"} %d\n", phases[i], strcmp(phases[i], phase) == 0);
    gauge(b, "oneshot_job_progress", "The job's progress in percent, 0..100.", v.progress);
    if (v.job_started_mono_ms > 0 || (have_fin && dur_ms >= 0)) {
        double d = have_fin && dur_ms >= 0 ? (double)dur_ms / 1000.0
                                           : (double)(now_mono - v.job_started_mono_ms) / 1000.0;
        gauge(b, "oneshot_job_duration_seconds", "Seconds the job has run; at the end, its duration.", d);
    }
    if (v.state[0]) {
        head(b, "oneshot_job_state", "The final state (a job's, or how a replica without one ended); always 1.");
        buf_puts(b, "oneshot_job_state{state=");
        label_value(b, v.state);
        buf_puts(b, "} 1\n");
    }
    if (v.exit_code >= 0) gauge(b, "oneshot_exit_code", "The process's exit code, once known.", v.exit_code);
    if (have_fin && attempt > 0) gauge(b, "oneshot_job_attempt", "The delivery attempt of the job (1 = first).", attempt);
    if (have_fin && cpu_ms >= 0)
        gauge(b, "oneshot_job_cpu_seconds", "CPU time the job used (user + system).", (double)cpu_ms / 1000.0);
    if (have_fin && rss_kb >= 0)
        gauge(b, "oneshot_job_max_rss_bytes", "Peak resident memory while the job ran.", (double)rss_kb * 1024.0);
    if (have_fin && res_b >= 0) gauge(b, "oneshot_job_result_bytes", "Size of the job's result.", (double)res_b);
}

void metrics_render(char **body, size_t *len) {
    buf b = BUF_INIT;
    render(&b, 0);
    *body = buf_steal(&b, len);
}

void metrics_final(const config *cfg, const status_rec *st) {
    pushgw_url u;
    buf b = BUF_INIT;
    char err[512] = "";

    pthread_mutex_lock(&mu);
    fin.set = 1;
    fin.attempt = st->attempt;
    fin.duration_ms = st->duration_ms;
    fin.cpu_ms = st->cpu_ms;
    fin.max_rss_kb = st->max_rss_kb;
    fin.result_bytes = st->result_bytes;
    pthread_mutex_unlock(&mu);
    if (!cfg->pushgateway || !cfg->pushgateway[0]) return;

    /* The URL may carry a password: log only host, port and path. */
    if (pushgw_parse_url(cfg->pushgateway, &u, err, sizeof(err)) < 0) {
        log_warn("--pushgateway: %s; final metrics not pushed", err);
        return;
    }
    render(&b, 1);
    int64_t t0 = clock_mono_ms();
    if (pushgw_put(&u, METRICS_PUSH_JOB, replica_id(), b.data, b.len, METRICS_PUSH_TIMEOUT_MS, err,
                   sizeof(err)) < 0)
        log_warn("pushgateway %s:%s%s: %s; final metrics not pushed", u.host, u.port, u.path, err);
    else
        log_debug("pushed the final metrics to %s:%s%s in %lld ms", u.host, u.port, u.path,
                  (long long)(clock_mono_ms() - t0));
    buf_free(&b);
}
