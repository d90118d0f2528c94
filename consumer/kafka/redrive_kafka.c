/* redrive_kafka.c -- `oneshot redrive --source kafka --all` (see
 * kafka/module.h; README, Kafka, "Re-drive").
 *
 * A topic cannot give a message back, so re-driving a dead letter is
 * producing it again: its key, its value (the producer's bytes) and the
 * producer's headers, without the ones oneshot added (id, state, error,
 * attempts, origin, worker, attempt), plus `id`, to --queue. How far the
 * re-drive has got is the committed offset of the group `<group>.redrive`
 * on the dead-letter topic, committed only once the copies are delivered:
 * each run moves the letters from there to the end the topic had when it
 * started, in order, so a letter is re-driven once (at least once: a copy
 * delivered before a failed commit is moved again by the next run). A
 * letter that is not moved stops its partition there (nothing after it is
 * moved, the commit stays at it), so nothing is passed over silently: a
 * `rejected` letter without --rejected, or a message without oneshot's
 * headers. --dry-run reads the same letters and commits nothing. */
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/buf.h"
#include "../../common/clock.h"
#include "../../common/log.h"
#include "module.h"
#include "kafka_common.h"

#define RD_TIMEOUT_MS 10000 /* metadata, offsets, and the longest wait for the next letter */

typedef struct rd_part {
    int32_t id;
    int64_t end;  /* the high watermark at the start */
    int64_t next; /* the offset to commit: everything before it is handled */
    int start_set, stopped, done;
} rd_part;

static void rd_report(buf *b, const char *id, const char *state, const char *topic, int32_t p, int64_t off,
                      const char *to, const char *why) {
    char from[400];
    snprintf(from, sizeof(from), "%s:%d:%lld", topic, (int)p, (long long)off);
    broker_redrive_report(b, id, state, from, to, why);
}

/* The producer's headers: the letter's without oneshot's. */
static rd_kafka_headers_t *producer_headers(const rd_kafka_message_t *m) {
    rd_kafka_headers_t *src = NULL, *h;
    static const char *const ours[] = {"attempt", "id", "state", "error", "attempts", "origin", "worker"};
    h = rd_kafka_message_headers(m, &src) == RD_KAFKA_RESP_ERR_NO_ERROR && src ? rd_kafka_headers_copy(src)
                                                                               : rd_kafka_headers_new(2);
    for (size_t i = 0; i < sizeof(ours) / sizeof(ours[0]); i++) rd_kafka_header_remove(h, ours[i]);
    return h;
}

/* One letter. 1 handled (moved, or would be), 0 its partition stops at
 * it (reported), -1 failed (err). */
static int rd_letter(const config *cfg, const rd_kafka_message_t *m, redrive_reset_fn reset, void *ctx, buf *moved,
                     buf *skipped, int *n, char *err, size_t errlen) {
    rd_kafka_headers_t *h = NULL;
    char id[256] = "", state[64] = "";
    const char *topic = cfg->dead_letter;
    if (rd_kafka_message_headers(m, &h) != RD_KAFKA_RESP_ERR_NO_ERROR || kc_header_str(h, "id", id, sizeof(id)) < 0 ||
        kc_header_str(h, "state", state, sizeof(state)) < 0) {
        rd_report(skipped, id, state, topic, m->partition, m->offset, NULL,
                  "not a oneshot dead letter (no id and state headers): this partition's re-drive stops here");
        return 0;
    }
    if (job_state_of(state) == JS_REJECTED && !cfg->rejected) {
        rd_report(skipped, id, state, topic, m->partition, m->offset, NULL,
                  "rejected: re-driven only with --rejected; this partition's re-drive stops here");
        return 0;
    }
    if (!cfg->dry_run) {
        int r = reset ? reset(ctx, id, err, errlen) : 0;
        if (r < 0) return -1;
        if (r > 0) { /* its record says it ran again since */
            rd_report(skipped, id, state, topic, m->partition, m->offset, NULL, err);
            err[0] = '\0';
            return 0;
        }
        rd_kafka_headers_t *ph = producer_headers(m);
        kc_header_add_str(ph, "id", id);
        if (kc_produce(cfg->queue, m->key, m->key_len, m->payload, m->len, ph, 1, NULL, err, errlen) < 0) return -1;
        log_info("redrive: job %s (%s, %s [%d] offset %lld) back in %s", id, state, topic, (int)m->partition,
                 (long long)m->offset, cfg->queue);
    }
    rd_report(moved, id, state, topic, m->partition, m->offset, cfg->queue, NULL);
    (*n)++;
    return 1;
}

/* The partitions of the dead-letter topic with their start (committed
 * offset, else the low watermark) and end. -1 with err. */
static int rd_partitions(rd_kafka_t *rk, const char *topic, rd_part **out, int *np, char *err, size_t errlen) {
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    rd_kafka_topic_partition_list_t *l = NULL;
    int rc = -1;
    rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 0, rkt, &md, RD_TIMEOUT_MS);
    if (e || md->topic_cnt != 1 || md->topics[0].err) {
        snprintf(err, errlen, "metadata of %s: %s", topic,
                 rd_kafka_err2str(e ? e : md->topic_cnt != 1 ? RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC : md->topics[0].err));
        goto end;
    }
    *np = md->topics[0].partition_cnt;
    *out = xcalloc((size_t)*np + 1, sizeof(**out));
    l = rd_kafka_topic_partition_list_new(*np);
    for (int i = 0; i < *np; i++) rd_kafka_topic_partition_list_add(l, topic, md->topics[0].partitions[i].id);
    if ((e = rd_kafka_committed(rk, l, RD_TIMEOUT_MS))) {
        snprintf(err, errlen, "committed offsets of %s: %s", topic, rd_kafka_err2str(e));
        goto end;
    }
    for (int i = 0; i < *np; i++) {
        int64_t lo, hi;
        rd_part *p = &(*out)[i];
        p->id = l->elems[i].partition;
        if ((e = rd_kafka_query_watermark_offsets(rk, topic, p->id, &lo, &hi, RD_TIMEOUT_MS))) {
            snprintf(err, errlen, "offsets of %s [%d]: %s", topic, (int)p->id, rd_kafka_err2str(e));
            goto end;
        }
        p->next = l->elems[i].offset >= lo ? l->elems[i].offset : lo;
        p->end = hi;
        p->done = p->next >= p->end;
    }
    rc = 0;
end:
    if (l) rd_kafka_topic_partition_list_destroy(l);
    if (md) rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    return rc;
}

static rd_part *rd_find(rd_part *ps, int np, int32_t id) {
    for (int i = 0; i < np; i++)
        if (ps[i].id == id) return &ps[i];
    return NULL;
}

int kafka_redrive(const config *cfg, redrive_reset_fn reset, void *ctx, buf *moved, buf *skipped, int *n, char *err,
                  size_t errlen) {
    static const char *const defaults[] = {"client.id", "oneshot-redrive", "auto.offset.reset", "earliest",
                                           "enable.auto.commit", "false", "enable.auto.offset.store", "false",
                                           "enable.partition.eof", "true", NULL};
    rd_kafka_conf_t *conf = kc_conf_new(cfg, defaults, err, errlen);
    rd_kafka_t *rk = NULL;
    rd_part *ps = NULL;
    rd_kafka_topic_partition_list_t *l = NULL;
    char why[512], group[400];
    int np = 0, rc = -1, producing = 0, left = 0, prc;

    *n = 0;
    if (!conf) return KC_ERR_CONFIG;
    snprintf(group, sizeof(group), "%s.redrive", cfg->group);
    if (rd_kafka_conf_set(conf, "group.id", group, why, sizeof(why)) != RD_KAFKA_CONF_OK) {
        snprintf(err, errlen, "--group: %s", why);
        rd_kafka_conf_destroy(conf);
        return KC_ERR_CONFIG;
    }
    rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, why, sizeof(why));
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        snprintf(err, errlen, "Kafka consumer: %s", why);
        return -1;
    }
    conf = NULL; /* now owned, and freed, by rk */
    if (rd_partitions(rk, cfg->dead_letter, &ps, &np, err, errlen) < 0) goto end;
    l = rd_kafka_topic_partition_list_new(np + 1);
    for (int i = 0; i < np; i++)
        if (!ps[i].done) {
            rd_kafka_topic_partition_list_add(l, cfg->dead_letter, ps[i].id)->offset = ps[i].next;
            left++;
        }
    if (left && !cfg->dry_run) {
        if (!kc_producer_acquire(cfg, "10000", &prc, err, errlen)) goto end;
        producing = 1;
    }
    rd_kafka_resp_err_t e;
    if (left && (e = rd_kafka_assign(rk, l))) {
        snprintf(err, errlen, "assign %s: %s", cfg->dead_letter, rd_kafka_err2str(e));
        goto end;
    }
    int64_t quiet_until = clock_mono_ms() + RD_TIMEOUT_MS;
    while (left > 0) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
        if (!m) {
            if (clock_mono_ms() >= quiet_until) {
                snprintf(err, errlen, "%s: no letter came within %d ms (%d partition(s) not read to their end)",
                         cfg->dead_letter, RD_TIMEOUT_MS, left);
                goto end;
            }
            continue;
        }
        quiet_until = clock_mono_ms() + RD_TIMEOUT_MS;
        rd_part *p = rd_find(ps, np, m->partition);
        if (m->err) {
            int fatal = m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF;
            if (fatal) snprintf(err, errlen, "%s: %s", cfg->dead_letter, rd_kafka_message_errstr(m));
            else if (p && !p->done && m->offset >= p->end) {
                /* at the end (offsets a compaction or a marker took leave gaps) */
                p->done = 1;
                left--;
            }
            rd_kafka_message_destroy(m);
            if (fatal) goto end;
            continue;
        }
        if (p && !p->done && !p->stopped && m->offset >= p->next && m->offset < p->end) {
            int h = rd_letter(cfg, m, reset, ctx, moved, skipped, n, err, errlen);
            if (h < 0) {
                rd_kafka_message_destroy(m);
                goto end;
            }
            if (h == 0) p->stopped = 1;
            else p->next = m->offset + 1;
            if (p->stopped || p->next >= p->end) {
                p->done = 1;
                left--;
            }
        }
        rd_kafka_message_destroy(m);
    }
    if (!cfg->dry_run && *n) {
        /* Delivered first: the letters count as re-driven only then. */
        if (kc_producer_flush(err, errlen) < 0) goto end;
        rd_kafka_topic_partition_list_t *c = rd_kafka_topic_partition_list_new(np + 1);
        for (int i = 0; i < np; i++) rd_kafka_topic_partition_list_add(c, cfg->dead_letter, ps[i].id)->offset = ps[i].next;
        e = rd_kafka_commit(rk, c, 0);
        rd_kafka_topic_partition_list_destroy(c);
        if (e) {
            snprintf(err, errlen, "commit of group %s on %s: %s (the next re-drive moves these letters again)", group,
                     cfg->dead_letter, rd_kafka_err2str(e));
            goto end;
        }
    }
    rc = 0;
end:
    if (l) rd_kafka_topic_partition_list_destroy(l);
    if (producing) kc_producer_release();
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    free(ps);
    return rc;
}
