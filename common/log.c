/* log.c -- JSON or text log lines on stderr. */
#include "log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "clock.h"

static const char *level_names[] = {"debug", "info", "warn", "error"};

static struct {
    pthread_mutex_t mu;
    int level;
    int json;
    char replica[128];
    char job[256];
} lg = {PTHREAD_MUTEX_INITIALIZER, LL_INFO, 1, "", ""};

void log_init(int level, int json, const char *replica) {
    pthread_mutex_lock(&lg.mu);
    lg.level = level;
    lg.json = json;
    snprintf(lg.replica, sizeof(lg.replica), "%s", replica ? replica : "");
    pthread_mutex_unlock(&lg.mu);
}

void log_set_job(const char *id) {
    pthread_mutex_lock(&lg.mu);
    snprintf(lg.job, sizeof(lg.job), "%s", id ? id : "");
    pthread_mutex_unlock(&lg.mu);
}

int log_enabled(int level) { return level >= lg.level; }

int log_level_parse(const char *s) {
    for (int i = 0; i < 4; i++)
        if (strcmp(s, level_names[i]) == 0) return i;
    if (strcmp(s, "warning") == 0) return LL_WARN;
    return -1;
}

static void log_vwrite(int level, const char *fields, const char *fmt, va_list ap) {
    char msg[4096];
    char ts[32];
    buf line = BUF_INIT;

    if (!log_enabled(level)) return;
    int n = vsnprintf(msg, sizeof(msg), fmt, ap);
    size_t mlen = n < 0 ? 0 : (size_t)n >= sizeof(msg) ? sizeof(msg) - 1 : (size_t)n;
    clock_iso8601(clock_wall_ms(), ts, sizeof(ts));

    pthread_mutex_lock(&lg.mu);
    if (lg.json) {
        buf_printf(&line, "{\"ts\":\"%s\",\"level\":\"%s\"", ts, level_names[level]);
        if (lg.replica[0]) {
            buf_puts(&line, ",\"replica\":");
            buf_json_str(&line, lg.replica, strlen(lg.replica));
        }
        if (lg.job[0]) {
            buf_puts(&line, ",\"job_id\":");
            buf_json_str(&line, lg.job, strlen(lg.job));
        }
        buf_puts(&line, ",\"msg\":");
        buf_json_str(&line, msg, mlen);
        if (fields && *fields) {
            buf_puts(&line, ",");
            buf_puts(&line, fields);
        }
        buf_puts(&line, "}\n");
    } else {
        buf_printf(&line, "%s %-5s", ts, level_names[level]);
        if (lg.job[0]) buf_printf(&line, " [%s]", lg.job);
        buf_puts(&line, " ");
        buf_append(&line, msg, mlen);
        if (fields && *fields) buf_printf(&line, " {%s}", fields);
        buf_puts(&line, "\n");
    }
    /* One write per line so lines from threads and child processes never
     * interleave mid-line (stderr is unbuffered; a pipe write <= PIPE_BUF is
     * atomic). */
    size_t off = 0;
    while (off < line.len) {
        ssize_t w = write(2, line.data + off, line.len - off);
        if (w <= 0) break;
        off += (size_t)w;
    }
    pthread_mutex_unlock(&lg.mu);
    buf_free(&line);
}

void log_msg(int level, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    log_vwrite(level, NULL, fmt, ap);
    va_end(ap);
}

void log_fields(int level, const char *fields, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    log_vwrite(level, fields, fmt, ap);
    va_end(ap);
}
