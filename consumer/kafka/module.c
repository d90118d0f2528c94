/* module.c -- the table oneshot-kafka.so exports (see kafka/module.h), with
 * the Kafka side of `oneshot submit` and of the fleet's backlog. */
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/buf.h"
#include "../../common/exitcodes.h"
#include "../../common/ids.h"
#include "../../common/status.h"
#include "module.h"
#include "kafka_common.h"

#define BACKLOG_TIMEOUT_MS 5000

/* The job's "queued" record on <queue>.status, after the job itself, so
 * `oneshot status` and `wait` know the id from the moment it is queued
 * (README "Job states"). Fence 0: a replica's records (claim time) always
 * win over it, even one delivered first. Its loss is not the job's: a
 * warning, and the job stays submitted. */
static void submit_queued_record(const config *cfg, const char *id) {
    char topic[300], err[512] = "";
    status_rec st;
    size_t n;
    status_init(&st);
    snprintf(st.id, sizeof(st.id), "%s", id);
    snprintf(st.state, sizeof(st.state), "%s", ST_QUEUED);
    snprintf(st.source, sizeof(st.source), "kafka");
    snprintf(st.queue, sizeof(st.queue), "%s", cfg->queue);
    st.progress = -1;
    snprintf(topic, sizeof(topic), "%s.status", cfg->queue);
    char *json = status_to_json(&st, &n);
    rd_kafka_headers_t *h = rd_kafka_headers_new(1);
    kc_header_add_str(h, "state", ST_QUEUED);
    if (kc_produce(topic, id, strlen(id), json, n, h, 1, NULL, err, sizeof(err)) < 0 ||
        kc_producer_flush(err, sizeof(err)) < 0)
        fprintf(stderr, "oneshot submit: job %s is queued, but its queued record is not: %s (`wait` says it has "
                        "no record until a replica claims it)\n", id, err);
    free(json);
}

/* Produce env (the envelope of the submission) with key = id to --queue
 * and wait for the broker's acknowledgement (message.timeout.ms, 10 s
 * unless set). The caller prints the id. 0, 69 (not delivered) or 78. */
static int kafka_submit_env(const config *cfg, const char *id, const char *env, size_t len) {
    char err[512] = "";
    int rc = -1, code = OS_EXIT_UNAVAILABLE;

    /* A command line waits less than a replica for a lost broker. */
    if (!kc_producer_acquire(cfg, "10000", &rc, err, sizeof(err))) {
        fprintf(stderr, "oneshot submit: %s\n", err);
        return rc == KC_ERR_CONFIG ? OS_EXIT_CONFIG : OS_EXIT_UNAVAILABLE;
    }
    if (kc_produce(cfg->queue, id, strlen(id), env, len, NULL, 1, NULL, err, sizeof(err)) == 0 &&
        kc_producer_flush(err, sizeof(err)) == 0)
        code = 0;
    else
        fprintf(stderr, "oneshot submit: %s\n", err);
    if (code == 0 && (!cfg->store || strcmp(cfg->store, "kafka") == 0)) submit_queued_record(cfg, id);
    kc_producer_release();
    return code;
}

/* Messages waiting for the group: for each partition of --queue, the high
 * watermark minus the group's committed offset (the low watermark when the
 * group has none: auto.offset.reset=earliest). */
static long kafka_backlog(const config *cfg, char *err, size_t errlen) {
    static const char *const defaults[] = {"client.id", "oneshot-backlog", NULL};
    rd_kafka_conf_t *conf = kc_conf_new(cfg, defaults, err, errlen);
    rd_kafka_t *rk = NULL;
    rd_kafka_topic_t *rkt = NULL;
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_partition_list_t *parts = NULL;
    char why[512];
    long total = -1;

    if (!conf) return -1;
    if (rd_kafka_conf_set(conf, "group.id", cfg->group, why, sizeof(why)) != RD_KAFKA_CONF_OK) {
        snprintf(err, errlen, "--group: %s", why);
        rd_kafka_conf_destroy(conf);
        return -1;
    }
    rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, why, sizeof(why));
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        snprintf(err, errlen, "Kafka consumer: %s", why);
        return -1;
    }
    conf = NULL; /* now owned, and freed, by rk */
    rkt = rd_kafka_topic_new(rk, cfg->queue, NULL);
    rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 0, rkt, &md, BACKLOG_TIMEOUT_MS);
    if (e || md->topic_cnt != 1 || md->topics[0].err) {
        snprintf(err, errlen, "metadata of %s: %s", cfg->queue,
                 rd_kafka_err2str(e ? e : md->topic_cnt != 1 ? RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC : md->topics[0].err));
        goto end;
    }
    parts = rd_kafka_topic_partition_list_new(md->topics[0].partition_cnt);
    for (int i = 0; i < md->topics[0].partition_cnt; i++)
        rd_kafka_topic_partition_list_add(parts, cfg->queue, md->topics[0].partitions[i].id);
    if ((e = rd_kafka_committed(rk, parts, BACKLOG_TIMEOUT_MS)) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        snprintf(err, errlen, "committed offsets of group %s: %s", cfg->group, rd_kafka_err2str(e));
        goto end;
    }
    long sum = 0;
    for (int i = 0; i < parts->cnt; i++) {
        int64_t lo, hi;
        e = rd_kafka_query_watermark_offsets(rk, cfg->queue, parts->elems[i].partition, &lo, &hi,
                                             BACKLOG_TIMEOUT_MS);
        if (e) {
            snprintf(err, errlen, "offsets of %s [%d]: %s", cfg->queue, (int)parts->elems[i].partition,
                     rd_kafka_err2str(e));
            goto end;
        }
        int64_t at = parts->elems[i].offset >= 0 ? parts->elems[i].offset : lo;
        if (at < lo) at = lo; /* committed offset already deleted by retention */
        if (hi > at) sum += (long)(hi - at);
    }
    total = sum;
end:
    if (parts) rd_kafka_topic_partition_list_destroy(parts);
    if (md) rd_kafka_metadata_destroy(md);
    if (rkt) rd_kafka_topic_destroy(rkt);
    rd_kafka_destroy(rk);
    return total;
}

/* `oneshot submit --source kafka`: the id is --id or a new UUID. */
static int kafka_submit(const config *cfg, const submission *sub, char *out_id, size_t n) {
    char uuid[40];
    size_t len;
    if (!sub->id) id_uuid4(uuid);
    snprintf(out_id, n, "%s", sub->id ? sub->id : uuid);
    char *env = broker_envelope(out_id, sub, &len);
    int code = kafka_submit_env(cfg, out_id, env, len);
    free(env);
    return code;
}

static int kafka_backlog_open(const config *cfg, void **state, char *err, size_t errlen) {
    (void)cfg;
    (void)err;
    (void)errlen;
    *state = NULL;
    return 0;
}

static int kafka_backlog_query(void *state, const config *cfg, backlog_count *out, char *err, size_t errlen) {
    (void)state;
    long n = kafka_backlog(cfg, err, errlen);
    if (n < 0) return -1;
    out->waiting = n;
    out->held = 0;
    out->includes_held = 1; /* a running replica's message stays in the lag until its commit */
    return 0;
}

static const broker kafka_driver;

/* `oneshot redrive --source kafka --all`: with c (--store redis) each
 * job's record is reset first by the Redis store (its redrive_reset). */
static int kafka_broker_redrive(const config *cfg, struct rconn *c, const char *only, buf *moved, buf *skipped,
                                int *n, int *nskipped, int *matched, char *err, size_t errlen) {
    const broker *sb = broker_with_store(cfg->store);
    redrive_reset_ctx k = {cfg, c, kafka_driver.name};
    (void)only;
    *nskipped = *matched = 0;
    int rc = kafka_redrive(cfg, c && sb ? sb->redrive_reset : NULL, &k, moved, skipped, n, err, errlen);
    if (skipped->len) *nskipped = 1;
    return rc;
}

/* The Kafka driver's operations (broker_kafka, driver.c, has its names and
 * flags and calls these once the module is loaded). */
static const broker kafka_driver = {
    .name = "kafka",
    .store_name = "kafka",
    .source = &source_kafka,
    .store = &store_kafka,
    .submit = kafka_submit,
    .backlog_open = kafka_backlog_open,
    .backlog_query = kafka_backlog_query,
    .redrive = kafka_broker_redrive,
    .status = kafka_client_status,
    .wait = kafka_client_wait,
};

/* Exported: the one symbol the main binary looks up. */
extern const kafka_module oneshot_kafka_module;
const kafka_module oneshot_kafka_module = {
    .abi = KAFKA_MODULE_ABI,
    .version = rd_kafka_version_str,
    .broker = &kafka_driver,
};
