/* store_kafka.c -- status records and results on Kafka topics.
 *
 *   <queue>.results  key = job id, value = the result bytes, headers
 *                    `state`, `exit_code` and `fence` (and `error` when
 *                    the result could not be kept)
 *   <queue>.status   key = job id, value = the status record as JSON
 *                    (with its `fence`: the owner's claim time), header
 *                    `state`
 *
 * Several owners may write records for one id (a replica that lost its
 * partition wrote its "running"; a job re-run after a lost commit): the
 * valid record is picked by the reader rule of README "Kafka" → "Fence",
 * which `oneshot status` and `wait` apply (kafka_client.c).
 *
 * Writes go through the process's idempotent producer (kafka_common.h) and
 * are asynchronous; flush() waits for every delivery and fails when a
 * result or a final status was not delivered, so the lifecycle then exits
 * 69 without committing and the job is redelivered.
 *
 * No lookup: finding an id's last state means reading the status topic
 * from its start (or keeping a local table of it), far too slow for a
 * one-shot replica, so there is no begin() (every job is new) and a redelivered job
 * runs again. Operators who need "already succeeded -> skip" use
 * --store redis with the Kafka source; readers of <queue>.results take
 * the record whose `fence` is the valid status record's. `oneshot cancel`
 * works through the Redis store only (it refuses the Kafka store), so
 * cancelled() is always 0 here. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/buf.h"
#include "../../common/clock.h"
#include "../../common/log.h"
#include "../store.h"
#include "kafka_common.h"

typedef struct kstore {
    const config *cfg;
    char results[300]; /* <queue>.results */
    char status[300];  /* <queue>.status */
} kstore;

static int kstore_open(const config *cfg, void **state, char *err, size_t errlen) {
    int rc = -1;
    *state = NULL;
    if (!kc_producer_acquire(cfg, NULL, &rc, err, errlen)) return rc;
    kstore *s = xcalloc(1, sizeof(*s));
    s->cfg = cfg;
    snprintf(s->results, sizeof(s->results), "%s.results", cfg->queue);
    snprintf(s->status, sizeof(s->status), "%s.status", cfg->queue);
    kc_producer_warm(s->status);
    kc_producer_warm(s->results);
    *state = s;
    return 0;
}

static int kstore_put_status(void *state, const status_rec *st, char *err, size_t errlen) {
    kstore *s = state;
    size_t len;
    char *json = status_to_json(st, &len);
    rd_kafka_headers_t *h = rd_kafka_headers_new(1);
    kc_header_add_str(h, "state", st->state);
    /* A heartbeat's record may be lost; the claim's and the final one not. */
    int critical = job_state_of(st->state) != JS_RUNNING;
    int rc = kc_produce(s->status, st->id, strlen(st->id), json, len, h, critical, NULL, err, errlen);
    free(json);
    return rc;
}

static int kstore_put_result(void *state, const status_rec *st, const char *data, size_t len, char *err,
                             size_t errlen) {
    kstore *s = state;
    rd_kafka_resp_err_t e = RD_KAFKA_RESP_ERR_NO_ERROR;
    rd_kafka_headers_t *h = rd_kafka_headers_new(3);
    kc_header_add_str(h, "state", st->state);
    kc_header_add_int(h, "exit_code", st->exit_code);
    kc_header_add_int(h, "fence", st->fence);
    if (kc_produce(s->results, st->id, strlen(st->id), data, len, h, 1, &e, err, errlen) == 0) return 0;
    if (e != RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE) return -1;
    /* Retrying cannot make it fit: record why, so the job settles instead
     * of being redelivered for ever. */
    char why[300];
    snprintf(why, sizeof(why), "result of %zu bytes exceeds the producer's message.max.bytes: raise it "
             "(--kafka-prop) and the topic's max.message.bytes", len);
    log_error("result not kept: %s", why);
    h = rd_kafka_headers_new(3);
    kc_header_add_str(h, "state", st->state);
    kc_header_add_int(h, "exit_code", st->exit_code);
    kc_header_add_int(h, "fence", st->fence);
    kc_header_add_str(h, "error", why);
    return kc_produce(s->results, st->id, strlen(st->id), NULL, 0, h, 1, NULL, err, errlen);
}

static int kstore_cancelled(void *state, const char *id) {
    (void)state;
    (void)id;
    return 0;
}

static int kstore_flush(void *state, char *err, size_t errlen) {
    (void)state;
    int64_t t0 = clock_mono_ms();
    int rc = kc_producer_flush(err, errlen);
    char f[64];
    snprintf(f, sizeof(f), "\"flush_ms\":%lld", (long long)(clock_mono_ms() - t0));
    log_fields(rc == 0 ? LL_INFO : LL_ERROR, f, "result and status %s", rc == 0 ? "delivered" : "not delivered");
    return rc;
}

/* The hard exit's last record (store.h): the producer is thread-safe, so
 * the watchdog produces it itself and waits a second for its delivery. */
static int kstore_last_words(void *state, const status_rec *st, char *err, size_t errlen) {
    if (kstore_put_status(state, st, err, errlen) < 0) return -1;
    return kc_producer_flush_within(1000, err, errlen);
}

static void kstore_close(void *state) {
    if (!state) return;
    free(state);
    kc_producer_release();
}

const store_ops store_kafka = {
    .name = "kafka",
    .open = kstore_open,
    .put_status = kstore_put_status,
    .put_result = kstore_put_result,
    .cancelled = kstore_cancelled,
    .last_words = kstore_last_words,
    .flush = kstore_flush,
    .close = kstore_close,
};
