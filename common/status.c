/* status.c -- status record serialisation. */
#include "status.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "clock.h"

void status_init(status_rec *st) {
    memset(st, 0, sizeof(*st));
    st->duration_ms = -1;
    st->exit_code = -1;
    st->result_bytes = -1;
    st->cpu_ms = -1;
    st->max_rss_kb = -1;
}

/* README "Job states" is this table; tests/e2e/records.sh holds them to
 * each other. Records of final states are kept --result-ttl seconds. */
const state_info STATES[JS_COUNT] = {
    [JS_QUEUED] = {ST_QUEUED, 0, "written by `oneshot submit` and a re-drive (Redis); the replica that claims the job moves "
                   "it to running, `oneshot cancel` to cancelled", "--result-ttl"},
    [JS_RUNNING] = {ST_RUNNING, 0, "its replica moves it on; when that replica dies, the next claim or `oneshot sweep` "
                    "(Redis sources), or the partition's next owner (Kafka). An HTTP job is never re-delivered: "
                    "`oneshot wait` reports its replica gone", "until it moves on"},
    [JS_RETRYING] = {ST_RETRYING, 0, "failed with attempts left, back in the queue as attempt + 1: the next claim moves it on",
     "until it moves on"},
    [JS_INTERRUPTED] = {ST_INTERRUPTED, 0, "given back to the queue (SIGTERM past --term-grace, a lost lease or broker): "
                        "the next claim moves it on", "until it moves on"},
    [JS_SUCCEEDED] = {ST_SUCCEEDED, 1, "the core succeeded; the result is kept beside the record", "--result-ttl"},
    [JS_FAILED] = {ST_FAILED, 1, "the core failed and nothing retries it (HTTP), or an HTTP job was ended by SIGTERM "
                   "(exit_code 143)", "--result-ttl"},
    [JS_REJECTED] = {ST_REJECTED, 1, "the input was refused (exit 65): dead-lettered, never retried", "--result-ttl"},
    [JS_TIMED_OUT] = {ST_TIMED_OUT, 1, "the deadline passed and nothing retries it (HTTP)", "--result-ttl"},
    [JS_DEAD] = {ST_DEAD, 1, "failed or timed out with no attempts left, or its keys are unusable: in the dead letters",
     "--result-ttl"},
    [JS_CANCELLED] = {ST_CANCELLED, 1, "`oneshot cancel`: before it ran, or stopped at its replica's next heartbeat",
     "--result-ttl"},
};
const size_t NSTATES = sizeof(STATES) / sizeof(STATES[0]);

#define DUPLICATE_NAME "duplicate"

enum job_state job_state_of(const char *s) {
    for (size_t i = 0; s && i < NSTATES; i++)
        if (strcmp(STATES[i].name, s) == 0) return (enum job_state)i;
    return s && strcmp(s, DUPLICATE_NAME) == 0 ? JS_DUPLICATE : JS_NONE;
}

const char *job_state_name(enum job_state s) {
    if (s == JS_DUPLICATE) return DUPLICATE_NAME;
    return s > JS_NONE && s < JS_COUNT ? STATES[s].name : "";
}

int job_state_final(enum job_state s) { return s > JS_NONE && s < JS_COUNT && STATES[s].final; }

int status_is_final(const char *state) { return job_state_final(job_state_of(state)); }

const char *status_states_help(void) {
    static char text[4096];
    if (text[0]) return text;
    buf b = BUF_INIT;
    buf_puts(&b, "Job states (a final state never changes; kept: how long the record is):\n");
    for (size_t i = 0; i < NSTATES; i++)
        buf_printf(&b, "  %-12s %-10s %s; kept %s\n", STATES[i].name, STATES[i].final ? "final" : "not final",
                   STATES[i].means, STATES[i].kept);
    snprintf(text, sizeof(text), "%s", b.data);
    buf_free(&b);
    return text;
}

/* Parse "2026-11-28T23:40:00.123Z" back into wall ms; 0 when malformed. */
static int64_t iso_parse(const char *s) {
    struct tm tm;
    int ms = 0;
    memset(&tm, 0, sizeof(tm));
    if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
               &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms) != 7)
        return 0;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    time_t t = timegm(&tm);
    if (t == (time_t)-1) return 0;
    int64_t v = (int64_t)t * 1000 + ms;
    return v > 0 ? v : 0; /* before 1970: malformed too (0 is "unset") */
}

void status_each_field(const status_rec *st,
                       void (*fn)(const char *name, const char *value, void *arg), void *arg) {
    char v[48];
#define EMIT_INT(name, x, unset)                                  \
    do {                                                          \
        if ((x) != (unset)) {                                     \
            buf_i64(v, (int64_t)(x));                              \
            fn(name, v, arg);                                     \
        }                                                         \
    } while (0)
#define EMIT_TIME(name, x)                                        \
    do {                                                          \
        if ((x) > 0) fn(name, clock_iso8601((x), v, sizeof(v)), arg); \
    } while (0)
    fn("id", st->id, arg);
    fn("state", st->state, arg);
    EMIT_INT("attempt", st->attempt, 0);
    if (st->worker[0]) fn("worker", st->worker, arg);
    if (st->source[0]) fn("source", st->source, arg);
    if (st->queue[0]) fn("queue", st->queue, arg);
    EMIT_TIME("started_at", st->started_at);
    EMIT_TIME("heartbeat_at", st->heartbeat_at);
    EMIT_TIME("finished_at", st->finished_at);
    EMIT_INT("duration_ms", st->duration_ms, -1);
    EMIT_INT("progress", st->progress, -1);
    EMIT_INT("exit_code", st->exit_code, -1);
    if (st->error[0]) fn("error", st->error, arg);
    EMIT_INT("result_bytes", st->result_bytes, -1);
    EMIT_INT("cpu_ms", st->cpu_ms, -1);
    EMIT_INT("max_rss_kb", st->max_rss_kb, -1);
    EMIT_INT("fence", st->fence, 0);
    if (st->content_type[0]) fn("content_type", st->content_type, arg);
#undef EMIT_INT
#undef EMIT_TIME
}

static int is_numeric_field(const char *name) {
    static const char *const nums[] = {"attempt", "duration_ms", "progress", "exit_code",
                                       "result_bytes", "cpu_ms", "max_rss_kb", "fence", NULL};
    for (int i = 0; nums[i]; i++)
        if (strcmp(nums[i], name) == 0) return 1;
    return 0;
}

static void json_field(const char *name, const char *value, void *arg) {
    buf *b = arg;
    if (b->len > 1) buf_puts(b, ",");
    buf_json_str(b, name, strlen(name));
    buf_puts(b, ":");
    if (is_numeric_field(name))
        buf_puts(b, value);
    else
        buf_json_str(b, value, strlen(value));
}

char *status_to_json(const status_rec *st, size_t *len) {
    buf b = BUF_INIT;
    buf_puts(&b, "{");
    status_each_field(st, json_field, &b);
    buf_puts(&b, "}");
    return buf_steal(&b, len);
}

void status_to_json_split(const status_rec *st, char **head, char **tail) {
    status_rec r = *st; /* the fields before the fence: all but content_type */
    r.fence = 0;
    r.content_type[0] = '\0';
    buf h = BUF_INIT, t = BUF_INIT;
    buf_puts(&h, "{");
    status_each_field(&r, json_field, &h);
    buf_puts(&h, ",\"fence\":");
    if (st->content_type[0]) {
        buf_puts(&t, ",\"content_type\":");
        buf_json_str(&t, st->content_type, strlen(st->content_type));
    }
    buf_puts(&t, "}");
    *head = buf_steal(&h, NULL);
    *tail = buf_steal(&t, NULL);
}

/* Copy src into dst[cap] as valid UTF-8: an invalid byte becomes U+FFFD and
 * a character that does not fit whole is left out. The record then holds
 * exactly what status_to_json writes (which repairs invalid UTF-8), so a
 * JSON round trip gives it back unchanged. */
static void set_text(char *dst, size_t cap, const char *src) {
    size_t o = 0, left = strlen(src);
    while (left) {
        size_t n = buf_utf8_seq_len(src, left);
        const char *c = n ? src : "\xef\xbf\xbd";
        size_t cn = n ? n : 3;
        if (o + cn >= cap) break;
        memcpy(dst + o, c, cn);
        o += cn;
        src += n ? n : 1;
        left -= n ? n : 1;
    }
    dst[o] = '\0';
}

void status_set_field(status_rec *st, const char *name, const char *value) {
#define SET_STR(f) set_text(st->f, sizeof(st->f), value)
    if (strcmp(name, "id") == 0) SET_STR(id);
    else if (strcmp(name, "state") == 0) SET_STR(state);
    else if (strcmp(name, "worker") == 0) SET_STR(worker);
    else if (strcmp(name, "source") == 0) SET_STR(source);
    else if (strcmp(name, "queue") == 0) SET_STR(queue);
    else if (strcmp(name, "error") == 0) SET_STR(error);
    else if (strcmp(name, "content_type") == 0) SET_STR(content_type);
    else if (strcmp(name, "started_at") == 0) st->started_at = iso_parse(value);
    else if (strcmp(name, "heartbeat_at") == 0) st->heartbeat_at = iso_parse(value);
    else if (strcmp(name, "finished_at") == 0) st->finished_at = iso_parse(value);
    else if (strcmp(name, "attempt") == 0) st->attempt = atoi(value);
    else if (strcmp(name, "progress") == 0) { /* 0..100, as status_to_json writes it */
        int p = atoi(value);
        st->progress = p < 0 ? 0 : p > 100 ? 100 : p;
    }
    else if (strcmp(name, "exit_code") == 0) st->exit_code = atoi(value);
    else if (strcmp(name, "duration_ms") == 0) st->duration_ms = strtoll(value, NULL, 10);
    else if (strcmp(name, "result_bytes") == 0) st->result_bytes = strtoll(value, NULL, 10);
    else if (strcmp(name, "cpu_ms") == 0) st->cpu_ms = strtoll(value, NULL, 10);
    else if (strcmp(name, "max_rss_kb") == 0) st->max_rss_kb = strtoll(value, NULL, 10);
    else if (strcmp(name, "fence") == 0) st->fence = strtoll(value, NULL, 10);
#undef SET_STR
}

int status_from_json(const char *s, size_t len, status_rec *st, char *err, size_t errlen) {
    cJSON *root = cJSON_ParseWithLength(s, len);
    int rc = -1;
    char num[32];

    status_init(st);
    if (!cJSON_IsObject(root)) {
        snprintf(err, errlen, "status record is not a JSON object");
        goto end;
    }
    const cJSON *it;
    cJSON_ArrayForEach(it, root) {
        if (!it->string) continue;
        if (cJSON_IsString(it)) {
            status_set_field(st, it->string, it->valuestring);
        } else if (cJSON_IsNumber(it)) {
            snprintf(num, sizeof(num), "%.0f", it->valuedouble);
            status_set_field(st, it->string, num);
        }
    }
    if (!st->id[0] || !st->state[0]) {
        snprintf(err, errlen, "status record lacks \"id\" or \"state\"");
        goto end;
    }
    rc = 0;
end:
    cJSON_Delete(root);
    return rc;
}
