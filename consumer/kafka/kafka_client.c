/* kafka_client.c -- `oneshot status` and `oneshot wait` with the Kafka
 * store: what the replicas wrote to <queue>.status and <queue>.results.
 *
 * There is no lookup by id on a topic: the reader assigns itself every
 * partition of <queue>.status from its start (no group, nothing
 * committed) and reads the records keyed by the id, up to the end each
 * partition had when the read began (status), or on until the job is
 * final (wait). Among several records for one id it picks the valid one
 * by the reader rule (README "Kafka" → "Fence"), in the order the broker
 * appended them (every record of an id is in one partition: it is keyed
 * by the id):
 *
 *   a record is applied unless a final record was applied before it, or
 *   its fence is lower than the fence of the record applied before it;
 *   the last record applied is the job's state.
 *
 * So a final record is never replaced (not by a non-final one, not by a
 * duplicate run's outcome), and a replica that lost the job (a lower
 * fence: an earlier claim) cannot overwrite its successor. The result is
 * the last <queue>.results record of the id whose `fence` header is the
 * valid record's. Both reads are bounded by --timeout (status: 30 s
 * without it). */
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../common/buf.h"
#include "../../common/clock.h"
#include "../../common/exitcodes.h"
#include "../../common/log.h"
#include "../../common/status.h"
#include "kafka_common.h"

#define META_TIMEOUT_MS 5000
#define STATUS_DEFAULT_S 30 /* status without --timeout */
/* status and wait on an id with no record (exit 66); %s: the command, the id, the topic. */
#define NO_RECORD "oneshot %s: no record of job %s on %s (never submitted, expired, or produced without a " \
                  "queued record and not claimed yet)\n"

/* The valid record so far (the reader rule above). */
typedef struct pick {
    status_rec st;
    int found;
    int final;
    int seen_end; /* the read reached the end the topic had at its start */
} pick;

static void pick_apply(pick *p, const status_rec *r) {
    if (p->found && (p->final || r->fence < p->st.fence)) return;
    p->st = *r;
    p->found = 1;
    p->final = status_is_final(r->state);
}

/* A consumer with no group reading every partition of topic from its
 * start; (*pos)[p] gets partition p's low watermark, (*pos)[n + p] its
 * high watermark now, *n the number of partitions. NULL with a reason. */
static rd_kafka_t *reader_open(const config *cfg, const char *topic, int64_t **pos, int *n, char *err,
                               size_t errlen) {
    /* librdkafka 2.0.2 assigns only with a group.id; this one is never
     * joined (no subscribe) and never committed to (auto commit off). */
    static const char *const defaults[] = {
        "client.id", "oneshot-client", "group.id", "oneshot-client-reader", "enable.auto.commit", "false",
        "enable.auto.offset.store", "false", "fetch.wait.max.ms", "100", NULL,
    };
    rd_kafka_conf_t *conf = kc_conf_new(cfg, defaults, err, errlen);
    rd_kafka_t *rk = NULL;
    rd_kafka_topic_t *rkt = NULL;
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_partition_list_t *parts = NULL;
    char why[256];

    *pos = NULL;
    if (!conf) return NULL;
    rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, why, sizeof(why));
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        snprintf(err, errlen, "Kafka consumer: %s", why);
        return NULL;
    }
    conf = NULL; /* now owned, and freed, by rk */
    rkt = rd_kafka_topic_new(rk, topic, NULL);
    rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 0, rkt, &md, META_TIMEOUT_MS);
    if (e || md->topic_cnt != 1 || md->topics[0].err) {
        snprintf(err, errlen, "topic %s: %s", topic,
                 rd_kafka_err2str(e ? e : md->topic_cnt != 1 ? RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC : md->topics[0].err));
        goto error;
    }
    *n = md->topics[0].partition_cnt;
    *pos = xcalloc(2 * (size_t)*n + 1, sizeof(**pos));
    parts = rd_kafka_topic_partition_list_new(*n);
    for (int i = 0; i < *n; i++) {
        int32_t p = md->topics[0].partitions[i].id;
        int64_t lo, hi;
        if (p < 0 || p >= *n) {
            snprintf(err, errlen, "topic %s: partition %d of %d", topic, (int)p, *n);
            goto error;
        }
        if ((e = rd_kafka_query_watermark_offsets(rk, topic, p, &lo, &hi, META_TIMEOUT_MS))) {
            snprintf(err, errlen, "offsets of %s [%d]: %s", topic, (int)p, rd_kafka_err2str(e));
            goto error;
        }
        rd_kafka_topic_partition_list_add(parts, topic, p)->offset = lo;
        (*pos)[p] = lo;
        (*pos)[*n + p] = hi;
    }
    if ((e = rd_kafka_assign(rk, parts))) {
        snprintf(err, errlen, "reading %s: %s", topic, rd_kafka_err2str(e));
        goto error;
    }
    rd_kafka_topic_partition_list_destroy(parts);
    rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    return rk;
error:
    if (parts) rd_kafka_topic_partition_list_destroy(parts);
    if (md) rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    rd_kafka_destroy(rk);
    free(*pos);
    *pos = NULL;
    return NULL;
}

/* Called with each message keyed by id; returns 1 to stop the read. */
typedef int (*scan_fn)(const rd_kafka_message_t *m, void *arg);

/* Read topic's messages keyed by id from the start, in each partition's
 * order, until fn says stop, or the end the topic had at the start is
 * reached (follow 0) or, past it, until the time runs out (follow 1; at
 * that end fn gets NULL once). 0 done (stopped, or the end reached); 1
 * out of time; -1 with a reason. */
static int scan(const config *cfg, const char *topic, const char *id, int follow, int64_t until, scan_fn fn,
                void *arg, char *err, size_t errlen) {
    int64_t *at = NULL; /* the next offset to read, then the end, by partition number */
    int n = 0, rc = 1;
    size_t idn = strlen(id);
    rd_kafka_t *rk = reader_open(cfg, topic, &at, &n, err, errlen);
    if (!rk) return -1;
    const int64_t *ends = at + n;
    int at_end = 0;
    for (;;) {
        if (!at_end) {
            int left = 0;
            for (int i = 0; i < n; i++) left += at[i] < ends[i];
            if (!left) {
                at_end = 1;
                if (!follow) {
                    rc = 0;
                    break;
                }
                if (fn(NULL, arg)) {
                    rc = 0;
                    break;
                }
            }
        }
        int64_t now = clock_mono_ms();
        if (now >= until) break;
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, (int)(until - now < 200 ? until - now : 200));
        if (!m) continue;
        if (m->err) {
            if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                log_debug("reading %s: %s", topic, rd_kafka_message_errstr(m));
            rd_kafka_message_destroy(m);
            continue;
        }
        if (m->partition >= 0 && m->partition < n) at[m->partition] = m->offset + 1;
        int stop = m->key_len == idn && m->key && memcmp(m->key, id, idn) == 0 && fn(m, arg);
        rd_kafka_message_destroy(m);
        if (stop) {
            rc = 0;
            break;
        }
    }
    free(at);
    rd_kafka_destroy(rk);
    return rc;
}

typedef struct status_scan {
    pick p;
    int follow;
    const char *id;
    const char *topic;
} status_scan;

static int on_status(const rd_kafka_message_t *m, void *arg) {
    status_scan *s = arg;
    status_rec r;
    char why[128];
    if (!m) {
        s->p.seen_end = 1;
        /* No record at all: `oneshot submit` writes a queued one, so this
         * id is unknown (as with Redis: exit 66 at once). */
        return s->p.final || !s->p.found;
    }
    if (status_from_json(m->payload, m->len, &r, why, sizeof(why)) < 0) {
        log_warn("%s [%d] offset %lld: not a status record (%s): skipped", s->topic, (int)m->partition,
                 (long long)m->offset, why);
        return 0;
    }
    pick_apply(&s->p, &r);
    /* A final record is never replaced: wait needs no more. */
    return s->follow && s->p.final;
}

typedef struct result_scan {
    int64_t fence;
    buf value;
    int found;
    char error[300];
} result_scan;

static int on_result(const rd_kafka_message_t *m, void *arg) {
    result_scan *s = arg;
    rd_kafka_headers_t *h = NULL;
    char f[32];
    if (rd_kafka_message_headers(m, &h) != RD_KAFKA_RESP_ERR_NO_ERROR) h = NULL;
    if (kc_header_str(h, "fence", f, sizeof(f)) < 0 || strtoll(f, NULL, 10) != s->fence) return 0;
    buf_reset(&s->value);
    buf_append(&s->value, m->payload ? m->payload : "", m->payload ? m->len : 0);
    s->found = 1;
    if (kc_header_str(h, "error", s->error, sizeof(s->error)) < 0) s->error[0] = '\0';
    return 0;
}

/* `oneshot status ID` (wait 0) or `oneshot wait ID` (wait 1) against the
 * Kafka store. Returns the exit code: status 0 found, 66 not found, 69;
 * wait the job's exit code, 75 out of time, 69. */
static int kafka_client(const config *cfg, const char *id, int wait) {
    const char *cmd = wait ? "wait" : "status";
    char status_topic[300], results_topic[300], err[512] = "";
    int secs = cfg->timeout > 0 ? cfg->timeout : wait ? 0 : STATUS_DEFAULT_S;
    int64_t until = secs ? clock_mono_ms() + (int64_t)secs * 1000 : INT64_MAX;
    status_scan ss = {.follow = wait, .id = id, .topic = status_topic};
    int code = OS_EXIT_UNAVAILABLE;

    snprintf(status_topic, sizeof(status_topic), "%s.status", cfg->queue);
    snprintf(results_topic, sizeof(results_topic), "%s.results", cfg->queue);
    int rc = scan(cfg, status_topic, id, wait, until, on_status, &ss, err, sizeof(err));
    if (rc < 0) {
        fprintf(stderr, "oneshot %s: %s\n", cmd, err);
        return OS_EXIT_UNAVAILABLE;
    }
    if (rc > 0 && !wait) {
        fprintf(stderr, "oneshot status: reading %s took longer than %d s (--timeout)\n", status_topic, secs);
        return OS_EXIT_UNAVAILABLE;
    }
    if (!wait) {
        if (!ss.p.found) {
            fprintf(stderr, NO_RECORD, "status", id, status_topic);
            return OS_EXIT_NOINPUT;
        }
        char *json = status_to_json(&ss.p.st, NULL);
        printf("%s\n", json);
        free(json);
        return 0;
    }
    if (!ss.p.found) {
        fprintf(stderr, NO_RECORD, "wait", id, status_topic);
        return OS_EXIT_NOINPUT;
    }
    if (!ss.p.final) {
        fprintf(stderr, "oneshot wait: job %s is %s after %ds: giving up\n", id, ss.p.st.state, secs);
        return OS_EXIT_IDLE;
    }
    result_scan rs = {.fence = ss.p.st.fence, .value = BUF_INIT};
    rc = scan(cfg, results_topic, id, 0, until == INT64_MAX ? clock_mono_ms() + 30000 : until, on_result, &rs, err,
              sizeof(err));
    if (rc != 0) {
        fprintf(stderr, "oneshot wait: %s\n", rc < 0 ? err : "reading the results took longer than --timeout");
        goto end;
    }
    if (rs.found && rs.value.len) {
        fwrite(rs.value.data, 1, rs.value.len, stdout);
        if (rs.value.data[rs.value.len - 1] != '\n' && isatty(1)) fputc('\n', stdout);
    }
    if (rs.error[0]) log_warn("the result was not kept: %s", rs.error);
    char *json = status_to_json(&ss.p.st, NULL);
    fprintf(stderr, "%s\n", json);
    free(json);
    code = ss.p.st.exit_code >= 0 && ss.p.st.exit_code <= 255 ? ss.p.st.exit_code : OS_EXIT_FAILED;
end:
    buf_free(&rs.value);
    fflush(stdout);
    return code;
}

int kafka_client_status(const config *cfg, const char *id) { return kafka_client(cfg, id, 0); }
int kafka_client_wait(const config *cfg, const char *id) { return kafka_client(cfg, id, 1); }
