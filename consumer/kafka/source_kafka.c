/* source_kafka.c -- one message per replica from a consumer group
 *.
 *
 * The replica subscribes to --queue in group --group with the
 * cooperative-sticky assignor, auto commit and the automatic offset store
 * off. claim() polls until one message arrives, copies it, and pauses the
 * whole assignment (and every partition assigned later), so nothing else
 * is fetched. While the core runs the heartbeat thread calls heartbeat()
 * every 500 ms, which polls the consumer: that keeps the member in the
 * group past max.poll.interval.ms and serves rebalances. Messages a poll
 * still returns (fetched before the pause) are dropped: only the held
 * offset is ever committed, so they stay for another replica.
 *
 * finish() settles: ack commits offset + 1; retry first produces a copy of
 * the message (same key, value and headers) with header `attempt` + 1 and
 * `id` to --queue; dead first produces it to --dead-letter with headers
 * `id`, `state`, `error`, `attempts`, `origin`; the produce is flushed
 * before the synchronous commit, so a crash in between re-delivers rather
 * than loses. Release (SIGTERM) commits nothing: leaving the group hands
 * the partition, at the uncommitted offset, to another member.
 *
 * The job id is the envelope's "id", else header `id` (set on re-queued
 * copies), else topic:partition:offset: a key is a partition key, reused
 * by unrelated messages (a customer, a device), never an id, unless
 * --kafka-key-is-id says the producers' keys are job ids (then: the
 * envelope's "id", else header `id`, else the key). An id that is there
 * but invalid (envelope, header, opted-in key) rejects the message: exit
 * 65, dead-lettered with the producer's key, value and headers; it is
 * never replaced. The attempt is header `attempt`, else the envelope's,
 * else 1. Kafka keeps no delivery count, so a replica killed mid-job
 * (SIGKILL, OOM) does not count an attempt.
 *
 * A joiner makes the cooperative-sticky assignor move partitions off busy
 * members, and it may pick the held one: the revocation is then answered
 * only once the job is settled (committed, re-queued or given back), so a
 * neighbour joining never takes a running job's message. Meanwhile the
 * group cannot rebalance again (the broker waits for this member's
 * re-join, up to its max.poll.interval.ms): joiners wait for the job.
 *
 * If the held partition is lost mid-job (the member's session expired, or
 * it was kicked out), the new owner re-delivers the message and owns the
 * job: this replica stops the job at its next heartbeat, and owns() tells
 * the lifecycle, right before the final record, that it must write
 * nothing final (exit 69, README "Kafka" → "Fence"). owns() decides from
 * local state only: the rebalance callbacks served so far, and how long
 * the consumer went unserved (a process stopped past session.timeout.ms
 * has lost its partition even when the callback saying so has not come
 * yet).
 *
 * No broker reachable for session.timeout.ms (by then the group has
 * dropped us anyway) while waiting: claim() fails, exit 69. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/buf.h"
#include "../../common/clock.h"
#include "../../common/log.h"
#include "../../common/status.h"
#include "../replica.h"
#include "../source.h"
#include "kafka_common.h"

#define HEARTBEAT_MS 500   /* how often the running job polls the consumer */
#define CLOSE_MAX_MS 5000  /* leaving the group; beyond it the handle is dropped */
#define COMMIT_MAX_MS 30000 /* committing, retries included */
#define POLL_DRAIN_MAX 1000
#define START_MAX_MS 2000  /* each of the two lookups of start_offsets */

typedef struct ksrc {
    const config *cfg;
    rd_kafka_t *rk;
    rd_kafka_topic_t *rkt;  /* --queue's handle, see ksrc_open */
    int session_ms;         /* session.timeout.ms as configured */
    int64_t reset_to;       /* auto.offset.reset as a ListOffsets timestamp
                             * (-2 earliest, -1 latest); 0: "error", left
                             * to librdkafka */
    int coop;               /* the group's rebalance protocol is COOPERATIVE */
    int64_t subscribed_at;  /* monotonic ms */
    int64_t assigned_at;    /* last assignment */
    int64_t join_ms;        /* subscribe -> first assignment, -1 before */
    unsigned assigns;       /* assign callbacks so far (each ends a rebalance) */
    int64_t down_since;     /* all brokers down since (monotonic ms), 0 = not */
    int down_reported;
    char refused[400];      /* the last TLS or SASL refusal, for the exit's reason */
    int topic_missing_logged;
    int fatal;
    int closing;
    int has_producer;
    /* The held message, copied so the consumer can close without it. */
    int holding;
    int held_assigned;      /* its partition is still ours */
    int held_lost;          /* it was taken away once (sticky: another
                             * member may have run the job meanwhile) */
    int64_t served_at;      /* monotonic ms: the consumer was last served */
    int64_t max_gap_ms;     /* the longest it went unserved while held */
    rd_kafka_topic_partition_list_t *deferred; /* a revocation of the held
                                                * partition, answered once
                                                * the job is settled */
    char *topic;
    int32_t partition;
    int64_t offset;
    char *key;              /* NULL: no key */
    size_t klen;
    char *value;
    size_t vlen;
    rd_kafka_headers_t *hdrs; /* may be NULL */
} ksrc;

static int tp_in(const rd_kafka_topic_partition_list_t *l, const char *topic, int32_t partition) {
    for (int i = 0; l && i < l->cnt; i++)
        if (l->elems[i].partition == partition && strcmp(l->elems[i].topic, topic) == 0) return 1;
    return 0;
}

/* Explicit start offsets for newly assigned partitions, or NULL to let
 * librdkafka find them. librdkafka 2.0.2 resets a partition the group has
 * never committed only after a fixed 100 ms back-off ("backoff: (re)starting
 * offset query timer"): every replica of a new group, or of a new
 * partition, paid it on its claim. Here one OffsetFetch (what librdkafka
 * sends anyway) finds the committed offsets and one ListOffsets per leader
 * (auto.offset.reset's earliest or latest) the start of the others; the
 * partitions are then assigned at those offsets and fetching starts at
 * once. On any error the caller assigns the list as it came and librdkafka
 * resolves it as before: this only ever saves time. An offset that is out
 * of range by the time it is fetched is reset by librdkafka as usual. */
static rd_kafka_topic_partition_list_t *start_offsets(ksrc *s, const rd_kafka_topic_partition_list_t *parts) {
    rd_kafka_topic_partition_list_t *l = NULL, *q = NULL;
    rd_kafka_resp_err_t e;
    if (!s->reset_to || !parts->cnt) return NULL;
    l = rd_kafka_topic_partition_list_copy(parts);
    if ((e = rd_kafka_committed(s->rk, l, START_MAX_MS)) != RD_KAFKA_RESP_ERR_NO_ERROR) goto fallback;
    for (int i = 0; i < l->cnt; i++) {
        if ((e = l->elems[i].err) != RD_KAFKA_RESP_ERR_NO_ERROR) goto fallback;
        if (l->elems[i].offset >= 0) continue;
        if (!q) q = rd_kafka_topic_partition_list_new(l->cnt);
        rd_kafka_topic_partition_list_add(q, l->elems[i].topic, l->elems[i].partition)->offset = s->reset_to;
    }
    if (q) {
        /* A ListOffsets timestamp of -2 / -1 asks for the earliest / latest
         * offset: the request librdkafka's own reset sends. */
        if ((e = rd_kafka_offsets_for_times(s->rk, q, START_MAX_MS)) != RD_KAFKA_RESP_ERR_NO_ERROR) goto fallback;
        for (int i = 0; i < q->cnt; i++) {
            rd_kafka_topic_partition_t *r = &q->elems[i];
            if ((e = r->err) != RD_KAFKA_RESP_ERR_NO_ERROR) goto fallback;
            if (r->offset < 0) {
                e = RD_KAFKA_RESP_ERR__NO_OFFSET;
                goto fallback;
            }
            rd_kafka_topic_partition_list_find(l, r->topic, r->partition)->offset = r->offset;
        }
        rd_kafka_topic_partition_list_destroy(q);
    }
    if (log_enabled(LL_DEBUG)) {
        buf b = BUF_INIT;
        for (int i = 0; i < l->cnt; i++)
            buf_printf(&b, "%s%s [%d] %lld", i ? ", " : "", l->elems[i].topic, (int)l->elems[i].partition,
                       (long long)l->elems[i].offset);
        log_debug("start offsets: %s", b.data);
        buf_free(&b);
    }
    return l;
fallback:
    log_debug("start offsets left to librdkafka: %s", rd_kafka_err2str(e));
    if (q) rd_kafka_topic_partition_list_destroy(q);
    rd_kafka_topic_partition_list_destroy(l);
    return NULL;
}

/* Serves assignment changes (from whichever thread polls). */
static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t why, rd_kafka_topic_partition_list_t *parts,
                         void *opaque) {
    ksrc *s = opaque;
    int64_t now = clock_mono_ms(); /* what follows is this replica's time, not the join's */
    const char *proto = rd_kafka_rebalance_protocol(rk);
    if (proto) s->coop = strcmp(proto, "COOPERATIVE") == 0; /* NULL: keep what it was */
    int coop = s->coop;
    int held = s->holding && tp_in(parts, s->topic, s->partition);
    rd_kafka_error_t *e = NULL;
    rd_kafka_resp_err_t ae = RD_KAFKA_RESP_ERR_NO_ERROR;

    if (why == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        /* Holding a job (or leaving), nothing will be fetched: no start. */
        rd_kafka_topic_partition_list_t *at = s->holding || s->closing ? NULL : start_offsets(s, parts);
        if (coop)
            e = rd_kafka_incremental_assign(rk, at ? at : parts);
        else
            ae = rd_kafka_assign(rk, at ? at : parts);
        if (at) rd_kafka_topic_partition_list_destroy(at);
        if (s->holding) {
            /* One job per replica: what is assigned now waits for the next. */
            if (parts->cnt) rd_kafka_pause_partitions(rk, parts);
            if (held) {
                s->held_assigned = 1;
                log_info("partition %s [%d] is assigned to this replica again", s->topic, (int)s->partition);
            }
        }
        s->assigned_at = now;
        s->assigns++;
        if (s->join_ms < 0) {
            char f[64];
            s->join_ms = now - s->subscribed_at;
            snprintf(f, sizeof(f), "\"join_ms\":%lld,\"partitions\":%d", (long long)s->join_ms, parts->cnt);
            log_fields(LL_INFO, f, "joined group %s on %s: %d partition(s)%s", s->cfg->group, s->cfg->queue,
                       parts->cnt, parts->cnt ? "" : " (none free: more replicas than partitions, or no topic yet)");
        } else {
            log_debug("rebalance: %d partition(s) assigned", parts->cnt);
        }
    } else {
        if (held && !s->closing && coop && !rd_kafka_assignment_lost(rk)) {
            /* Not answered now: librdkafka waits for the unassign call
             * (heartbeats go on), and the partition stays ours, fetching
             * paused, until release_deferred. A second revocation while
             * one waits joins it. */
            if (s->deferred) {
                for (int i = 0; i < parts->cnt; i++)
                    if (!tp_in(s->deferred, parts->elems[i].topic, parts->elems[i].partition))
                        rd_kafka_topic_partition_list_add(s->deferred, parts->elems[i].topic,
                                                          parts->elems[i].partition);
                return;
            }
            s->deferred = rd_kafka_topic_partition_list_copy(parts);
            log_info("partition %s [%d] is to move to another member: handing it over once this job is settled",
                     s->topic, (int)s->partition);
            return;
        }
        if (held && !s->closing) {
            s->held_assigned = 0;
            s->held_lost = 1;
            log_warn("partition %s [%d] %s mid-job: its new owner takes offset %lld again; this replica stops "
                     "the job and writes nothing final about it",
                     s->topic, (int)s->partition, rd_kafka_assignment_lost(rk) ? "lost" : "revoked",
                     (long long)s->offset);
        }
        if (coop)
            e = rd_kafka_incremental_unassign(rk, parts);
        else
            ae = rd_kafka_assign(rk, NULL);
        log_debug("rebalance: %d partition(s) revoked", parts->cnt);
    }
    if (e) {
        log_warn("rebalance: %s", rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
    }
    if (ae) log_warn("rebalance: %s", rd_kafka_err2str(ae));
}

static void on_error(rd_kafka_t *rk, int code, const char *reason, void *opaque) {
    ksrc *s = opaque;
    if (code == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) {
        if (!s->down_since) {
            s->down_since = clock_mono_ms();
            log_warn("no Kafka broker reachable: %s", reason);
        }
    } else if (code == RD_KAFKA_RESP_ERR__FATAL) {
        char why[256];
        rd_kafka_resp_err_t e = rd_kafka_fatal_error(rk, why, sizeof(why));
        s->fatal = 1;
        log_error("Kafka consumer: fatal error %s: %s", rd_kafka_err2name(e), why);
    } else if (code == RD_KAFKA_RESP_ERR__SSL || code == RD_KAFKA_RESP_ERR__AUTHENTICATION) {
        /* A certificate or a password refused: logged once, and kept as the
         * reason of the 69 the replica gives once no broker was reachable
         * for session.timeout.ms. Not an exit of its own: librdkafka
         * retries, and the same codes cover a broker restarting
         * mid-handshake. */
        if (!s->refused[0]) log_error("Kafka consumer: %s", reason);
        snprintf(s->refused, sizeof(s->refused), "%s", reason);
    } else {
        log_debug("Kafka consumer: %s: %s", rd_kafka_err2name(code), reason);
    }
}

/* auto.offset.reset as a ListOffsets timestamp, 0 for "error" (or a value
 * this code does not know: left to librdkafka). */
static int64_t reset_timestamp(rd_kafka_t *rk) {
    char v[32];
    size_t n = sizeof(v);
    if (rd_kafka_conf_get(rd_kafka_conf(rk), "auto.offset.reset", v, &n) != RD_KAFKA_CONF_OK) return 0;
    if (!strcmp(v, "smallest") || !strcmp(v, "earliest") || !strcmp(v, "beginning")) return RD_KAFKA_OFFSET_BEGINNING;
    if (!strcmp(v, "largest") || !strcmp(v, "latest") || !strcmp(v, "end")) return RD_KAFKA_OFFSET_END;
    return 0;
}

static int ksrc_open(const config *cfg, void **state, char *err, size_t errlen) {
    static const char *const defaults[] = {
        "client.id", "oneshot",
        "enable.auto.commit", "false",
        "enable.auto.offset.store", "false",
        "partition.assignment.strategy", "cooperative-sticky",
        /* Jobs queued before the group's first member are jobs too. */
        "auto.offset.reset", "earliest",
        /* A killed replica holds its partitions this long (brokers accept
         * 6000..300000 by default). */
        "session.timeout.ms", "10000",
        /* A busy member hears of a new member's join at its next heartbeat;
         * the joiner waits for it. */
        "heartbeat.interval.ms", "1000",
        /* Not queued.min.messages=1: librdkafka compares it with the length
         * of the consumer queue, which also holds events (rebalance, errors,
         * stats); with 1, one pending event kept the first fetch back until
         * the broker thread's next idle wake-up, up to a second later (one
         * claim in five). The pause after the first message bounds what is
         * prefetched. */
        /* The first fetch may leave out partitions that became fetchable a
         * moment later (librdkafka starts them one by one); a broker holds
         * a fetch on empty partitions this long, and the others wait for
         * it. 100 ms rather than 500: a waiting replica fetches 10 times a
         * second instead of twice. */
        "fetch.wait.max.ms", "100",
        NULL,
    };
    ksrc *s = xcalloc(1, sizeof(*s));
    rd_kafka_conf_t *conf = NULL;
    rd_kafka_topic_partition_list_t *topics = NULL;
    char why[512];
    int rc = KC_ERR_CONFIG;

    s->cfg = cfg;
    s->join_ms = -1;
    s->coop = 1;
    conf = kc_conf_new(cfg, defaults, err, errlen);
    if (!conf) goto error;
    if (rd_kafka_conf_set(conf, "group.id", cfg->group, why, sizeof(why)) != RD_KAFKA_CONF_OK) {
        snprintf(err, errlen, "--group: %s", why);
        goto error;
    }
    rd_kafka_conf_set_opaque(conf, s);
    rd_kafka_conf_set_rebalance_cb(conf, on_rebalance);
    rd_kafka_conf_set_error_cb(conf, on_error);
    s->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, why, sizeof(why));
    if (!s->rk) {
        snprintf(err, errlen, "Kafka consumer: %s", why);
        goto error;
    }
    conf = NULL; /* now owned, and freed, by s->rk */
    s->session_ms = kc_conf_int(s->rk, "session.timeout.ms", 10000);
    s->reset_to = reset_timestamp(s->rk);
    rd_kafka_poll_set_consumer(s->rk); /* callbacks are served by consumer_poll */
    topics = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(topics, cfg->queue, RD_KAFKA_PARTITION_UA);
    s->subscribed_at = clock_mono_ms();
    rd_kafka_resp_err_t e = rd_kafka_subscribe(s->rk, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    if (e) {
        snprintf(err, errlen, "cannot subscribe to %s: %s", cfg->queue, rd_kafka_err2str(e));
        rc = -1;
        goto error;
    }
    /* A handle on the topic makes librdkafka learn its partitions and hand
     * each to its leader's broker thread while the group join runs (its
     * debug log shows them "joining broker" at start), rather than when the
     * assignment arrives: start_offsets and the first fetch then find them
     * in place. */
    s->rkt = rd_kafka_topic_new(s->rk, cfg->queue, NULL);
    log_debug("subscribed to %s as group %s (librdkafka %s)", cfg->queue, cfg->group, rd_kafka_version_str());
    *state = s;
    return 0;
error:
    if (conf) rd_kafka_conf_destroy(conf);
    if (s->rk) rd_kafka_destroy(s->rk);
    free(s);
    *state = NULL;
    return rc;
}

/* An error a poll returned. 0 keep waiting; -1 this consumer cannot get a
 * job (err says why). */
static int consumer_error(ksrc *s, const rd_kafka_message_t *m, char *err, size_t errlen) {
    switch (m->err) {
    case RD_KAFKA_RESP_ERR__PARTITION_EOF:
        return 0;
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
        if (!s->topic_missing_logged) {
            s->topic_missing_logged = 1;
            log_warn("topic %s does not exist (yet): waiting for it", s->cfg->queue);
        }
        return 0;
    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR__AUTHENTICATION:
        snprintf(err, errlen, "the broker refuses this consumer: %s", rd_kafka_message_errstr(m));
        return -1;
    case RD_KAFKA_RESP_ERR__FATAL:
        s->fatal = 1;
        snprintf(err, errlen, "fatal consumer error: %s", rd_kafka_message_errstr(m));
        return -1;
    default:
        log_debug("Kafka consumer: %s", rd_kafka_message_errstr(m));
        return 0;
    }
}

/* Are the brokers back? A metadata round trip says so. */
static int brokers_reachable(ksrc *s) {
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t e = rd_kafka_metadata(s->rk, 0, NULL, &md, 1000);
    if (md) rd_kafka_metadata_destroy(md);
    return e == RD_KAFKA_RESP_ERR_NO_ERROR;
}

/* The message's own id: topic:partition:offset. A topic name (up to 249
 * characters) may be longer than an id: its end, which differs, is kept. */
static void offset_id(const ksrc *s, job *j) {
    char tail[48];
    int n = snprintf(tail, sizeof(tail), ":%d:%lld", (int)s->partition, (long long)s->offset);
    int room = ID_MAX - n;
    /* A topic name may be longer than an id: keep its end, which differs. */
    size_t tl = strlen(s->topic);
    const char *t = tl > (size_t)room ? s->topic + (tl - (size_t)room) : s->topic;
    snprintf(j->id, sizeof(j->id), "%s%s", t, tail);
}

/* The id when the envelope has none (see the top of the file): header
 * `id`, else (--kafka-key-is-id) the key, else topic:partition:offset. 0,
 * or -1 with the reason when the header or the opted-in key is not a
 * valid id (j->id is then topic:partition:offset, for the reject). */
static int default_id(const ksrc *s, job *j, char *err, size_t errlen) {
    const void *hv = NULL;
    size_t hn = 0;
    if (s->hdrs && rd_kafka_header_get_last(s->hdrs, "id", &hv, &hn) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        if (!hv || !id_valid(hv, hn)) {
            offset_id(s, j);
            snprintf(err, errlen, "header \"id\" must be 1..%d characters of [A-Za-z0-9._:-]", ID_MAX);
            return -1;
        }
        snprintf(j->id, sizeof(j->id), "%.*s", (int)hn, (const char *)hv);
        return 0;
    }
    if (s->cfg->kafka_key_is_id && s->key) {
        if (!id_valid(s->key, s->klen)) {
            offset_id(s, j);
            snprintf(err, errlen, "the key must be a job id (--kafka-key-is-id): 1..%d characters of "
                     "[A-Za-z0-9._:-]", ID_MAX);
            return -1;
        }
        snprintf(j->id, sizeof(j->id), "%.*s", (int)s->klen, s->key);
        return 0;
    }
    offset_id(s, j);
    return 0;
}

/* n bytes (which may hold NULs) into a new NUL-terminated buffer. */
static char *copy_bytes(const void *p, size_t n, size_t *len) {
    char *c = xmalloc(n + 1);
    if (n) memcpy(c, p, n);
    c[n] = '\0';
    *len = n;
    return c;
}

/* Hold message m (copied) and turn it into the job. */
static int take(ksrc *s, const rd_kafka_message_t *m, job *j, int *http_status, char *err, size_t errlen) {
    rd_kafka_headers_t *h = NULL;
    rd_kafka_topic_partition_list_t *a = NULL;
    char perr[256] = "", at[16];

    s->holding = 1;
    s->held_assigned = 1;
    s->served_at = clock_mono_ms();
    s->topic = xstrdup(rd_kafka_topic_name(m->rkt));
    s->partition = m->partition;
    s->offset = m->offset;
    if (m->key) s->key = copy_bytes(m->key, m->key_len, &s->klen);
    s->value = copy_bytes(m->payload, m->payload ? m->len : 0, &s->vlen);
    if (rd_kafka_message_headers(m, &h) == RD_KAFKA_RESP_ERR_NO_ERROR) s->hdrs = rd_kafka_headers_copy(h);
    /* Stop fetching: this replica takes nothing else. */
    if (rd_kafka_assignment(s->rk, &a) == RD_KAFKA_RESP_ERR_NO_ERROR && a) {
        if (a->cnt) rd_kafka_pause_partitions(s->rk, a);
        rd_kafka_topic_partition_list_destroy(a);
    }
    {
        char f[512]; /* a topic name is at most 249 characters, none of them escaped in JSON */
        /* assigned_ms: subscribe -> the assignment the message came after;
         * in a busy group the first assignment (join_ms) may be empty and
         * the partition come a rebalance later (cooperative protocol). */
        snprintf(f, sizeof(f),
                 "\"join_ms\":%lld,\"assigned_ms\":%lld,\"claim_ms\":%lld,\"topic\":\"%s\",\"partition\":%d,"
                 "\"offset\":%lld",
                 (long long)s->join_ms, (long long)(s->assigned_at - s->subscribed_at),
                 (long long)(clock_mono_ms() - s->assigned_at), s->topic, (int)s->partition, (long long)s->offset);
        log_fields(LL_INFO, f, "took the message at %s [%d] offset %lld", s->topic, (int)s->partition,
                   (long long)s->offset);
    }

    j->attempt = 0;
    int bad = job_parse_envelope(s->value, s->vlen, j, perr, sizeof(perr)) < 0;
    if (bad && !j->id[0])
        offset_id(s, j); /* a malformed envelope: the reject is recorded under the message's own id */
    else if (!j->id[0] && default_id(s, j, perr, sizeof(perr)) < 0)
        bad = 1;
    if (kc_header_str(s->hdrs, "attempt", at, sizeof(at)) == 0) {
        char *end;
        long v = strtol(at, &end, 10);
        if (*end == '\0' && end != at && v >= 1 && v <= 1000000)
            j->attempt = (int)v;
        else
            log_warn("ignoring header attempt '%s': not a whole number in 1..1000000", at);
    }
    if (bad) {
        snprintf(err, errlen, "%s", perr);
        *http_status = 422;
        return CLAIM_REJECT;
    }
    if ((int64_t)j->input_len > s->cfg->max_input) {
        snprintf(err, errlen, "input of %zu bytes exceeds --max-input %lld", j->input_len,
                 (long long)s->cfg->max_input);
        *http_status = 413;
        return CLAIM_REJECT;
    }
    return CLAIM_OK;
}

static int ksrc_claim(void *state, int timeout_ms, job *j, int *http_status, char *err, size_t errlen) {
    ksrc *s = state;
    int64_t until = clock_mono_ms() + timeout_ms;

    for (;;) {
        if (s->fatal) {
            snprintf(err, errlen, "the Kafka consumer hit a fatal error");
            return CLAIM_ERR;
        }
        int64_t now = clock_mono_ms();
        if (s->down_since && now - s->down_since >= s->session_ms) {
            if (!brokers_reachable(s)) {
                snprintf(err, errlen, "no Kafka broker reachable at %s for %d ms (session.timeout.ms)%s%s",
                         s->cfg->kafka_brokers, s->session_ms, s->refused[0] ? ": " : "", s->refused);
                return CLAIM_ERR;
            }
            s->down_since = 0;
            log_info("Kafka broker reachable again");
            now = clock_mono_ms();
        }
        if (now >= until) return CLAIM_NONE;
        rd_kafka_message_t *m = rd_kafka_consumer_poll(s->rk, (int)(until - now));
        if (!m) continue;
        if (m->err) {
            int rc = consumer_error(s, m, err, errlen);
            rd_kafka_message_destroy(m);
            if (rc < 0) return CLAIM_ERR;
            continue;
        }
        s->down_since = 0;
        int rc = take(s, m, j, http_status, err, errlen);
        rd_kafka_message_destroy(m);
        return rc;
    }
}

/* Poll the consumer while a job is held: serves callbacks (rebalance,
 * errors, commit results) and drops any message (fetched before the pause
 * or from a partition just assigned): it is not committed, so it stays for
 * another replica. Waits up to ms for the first event. */
static void serve(ksrc *s, int ms) {
    rd_kafka_message_t *m;
    char cerr[256];
    for (int n = 0; n < POLL_DRAIN_MAX && (m = rd_kafka_consumer_poll(s->rk, n ? 0 : ms)) != NULL; n++) {
        if (m->err)
            consumer_error(s, m, cerr, sizeof(cerr));
        else
            log_debug("not taking the message at %s [%d] offset %lld: this replica has its job",
                      rd_kafka_topic_name(m->rkt), (int)m->partition, (long long)m->offset);
        rd_kafka_message_destroy(m);
    }
}

/* Note how long the consumer went unserved (see owns). */
static void served(ksrc *s) {
    int64_t now = clock_mono_ms();
    if (now - s->served_at > s->max_gap_ms) s->max_gap_ms = now - s->served_at;
    s->served_at = now;
}

/* Has the held partition been taken away, or may it have been? Local
 * only: the rebalance callbacks served so far say whether it was; and a
 * consumer that went unserved for session.timeout.ms (the process was
 * stopped or starved: librdkafka's own heartbeats stopped with it) may
 * have lost it without having heard so yet: that counts as lost. A false
 * alarm costs a re-run; a missed loss, a stale record. 1 with the reason. */
static int held_gone(ksrc *s, char *err, size_t errlen) {
    served(s);
    serve(s, 0);
    if (s->held_lost) {
        snprintf(err, errlen, "partition %s [%d] was taken away mid-job: its new owner runs the job", s->topic,
                 (int)s->partition);
        return 1;
    }
    if (s->max_gap_ms >= s->session_ms) {
        s->held_lost = 1;
        snprintf(err, errlen, "the consumer went unserved for %lld ms (the process was stopped or starved), "
                 "longer than session.timeout.ms %d: partition %s [%d] may have a new owner",
                 (long long)s->max_gap_ms, s->session_ms, s->topic, (int)s->partition);
        return 1;
    }
    return 0;
}

static int ksrc_heartbeat(void *state, job *j, char *err, size_t errlen) {
    ksrc *s = state;
    (void)j;

    if (held_gone(s, err, errlen)) return -1;
    if (s->fatal) {
        snprintf(err, errlen, "the Kafka consumer hit a fatal error");
        return -1;
    }
    if (s->down_since && !s->down_reported) {
        s->down_reported = 1;
        snprintf(err, errlen, "no Kafka broker reachable at %s", s->cfg->kafka_brokers);
        return -2;
    }
    return 0;
}

typedef struct commit_result {
    int done;
    rd_kafka_resp_err_t err;
} commit_result;

static void on_commit(rd_kafka_t *rk, rd_kafka_resp_err_t e, rd_kafka_topic_partition_list_t *offsets,
                      void *opaque) {
    commit_result *r = opaque;
    (void)rk;
    for (int i = 0; !e && offsets && i < offsets->cnt; i++) e = offsets->elems[i].err;
    r->err = e;
    r->done = 1;
}

/* Errors that mean the group is between generations. */
static int group_moving(rd_kafka_resp_err_t e) {
    return e == RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS || e == RD_KAFKA_RESP_ERR_ILLEGAL_GENERATION ||
           e == RD_KAFKA_RESP_ERR_UNKNOWN_MEMBER_ID;
}

static int retriable(rd_kafka_resp_err_t e) {
    switch (e) {
    case RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS:
    case RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS:
    case RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_NOT_COORDINATOR:
    case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
    case RD_KAFKA_RESP_ERR__WAIT_COORD:
    case RD_KAFKA_RESP_ERR__TRANSPORT:
    case RD_KAFKA_RESP_ERR__TIMED_OUT:
    /* A rebalance moved the generation on: the member re-joins (with
     * cooperative-sticky it keeps its partitions) and the commit is sent
     * again, unless the partition went elsewhere. */
    case RD_KAFKA_RESP_ERR_ILLEGAL_GENERATION:
    case RD_KAFKA_RESP_ERR_UNKNOWN_MEMBER_ID:
        return 1;
    default:
        return 0;
    }
}

/* Commit offset + 1 of the held message and wait for the broker's answer,
 * retrying transient errors (a rebalance in progress, a coordinator move)
 * for at most COMMIT_MAX_MS: when replicas leave one after another every
 * departure starts a rebalance, and a commit may need a few of them. 0
 * committed; 1 not, the partition is no longer ours; -1 failed. */
static int commit_held(ksrc *s, char *err, size_t errlen) {
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    /* The answer comes on q (only it: served by callback); meanwhile the
     * consumer is polled, as a commit may wait for a rebalance that needs
     * this member's callback. */
    rd_kafka_queue_t *q = rd_kafka_queue_new(s->rk);
    int64_t until = clock_mono_ms() + COMMIT_MAX_MS;
    rd_kafka_resp_err_t e;
    int rc = -1;

    rd_kafka_topic_partition_list_add(l, s->topic, s->partition)->offset = s->offset + 1;
    for (;;) {
        commit_result r = {0, RD_KAFKA_RESP_ERR_NO_ERROR};
        unsigned seen = s->assigns;
        e = rd_kafka_commit_queue(s->rk, l, q, on_commit, &r);
        while (!e && !r.done && clock_mono_ms() < until) {
            rd_kafka_queue_poll_callback(q, 10);
            serve(s, 0);
        }
        if (!e) e = r.done ? r.err : RD_KAFKA_RESP_ERR__TIMED_OUT;
        if (!e) {
            rc = 0;
            break;
        }
        if (!retriable(e) || clock_mono_ms() >= until) break;
        if (group_moving(e) && !s->deferred) {
            /* Send it again only once this member has its new generation
             * (the rebalance ends with an assign callback, possibly
             * empty): a commit sent while it re-joins carries the old
             * generation, and librdkafka then takes the assignment as
             * lost. A revocation of the held partition deferred meanwhile
             * also means the new generation is here, and no assign
             * callback can come before it is answered (the group waits
             * for this member's unassign, which waits for this commit):
             * send it again then. */
            log_debug("commit: %s: waiting for the rebalance to end", rd_kafka_err2str(e));
            while (s->assigns == seen && s->held_assigned && !s->deferred && clock_mono_ms() < until)
                serve(s, 50);
        } else {
            log_debug("commit: %s: retrying", rd_kafka_err2str(e));
            serve(s, 200);
        }
        if (!s->held_assigned) {
            rc = 1;
            break;
        }
        if (clock_mono_ms() >= until) break;
    }
    if (rc < 0)
        snprintf(err, errlen, "commit of %s [%d] offset %lld failed: %s", s->topic, (int)s->partition,
                 (long long)s->offset + 1, rd_kafka_err2str(e));
    rd_kafka_queue_destroy(q);
    rd_kafka_topic_partition_list_destroy(l);
    return rc;
}

/* Headers for a copy: the original ones without ours; a rejected
 * message's dead letter keeps every header the producer sent (an invalid
 * `id` included), ours following them (a reader takes the last header of
 * a name). */
static rd_kafka_headers_t *copy_headers(const ksrc *s, int all) {
    rd_kafka_headers_t *h = s->hdrs ? rd_kafka_headers_copy(s->hdrs) : rd_kafka_headers_new(6);
    static const char *const ours[] = {"attempt", "id", "state", "error", "attempts", "origin", "worker"};
    for (size_t i = 0; !all && i < sizeof(ours) / sizeof(ours[0]); i++) rd_kafka_header_remove(h, ours[i]);
    return h;
}

static int produce_copy(ksrc *s, const job *j, const outcome *o, char *err, size_t errlen) {
    int rc = -1;
    const char *topic;
    rd_kafka_headers_t *h = copy_headers(s, o->disp == DISP_DEAD && o->state == JS_REJECTED);

    if (!s->has_producer) {
        if (!kc_producer_acquire(s->cfg, NULL, &rc, err, errlen)) {
            rd_kafka_headers_destroy(h);
            return -1;
        }
        s->has_producer = 1;
    }
    kc_header_add_str(h, "id", j->id);
    if (o->disp == DISP_RETRY) {
        topic = s->cfg->queue;
        kc_header_add_int(h, "attempt", j->attempt + 1);
    } else {
        char origin[400];
        topic = s->cfg->dead_letter;
        snprintf(origin, sizeof(origin), "%s:%d:%lld", s->topic, (int)s->partition, (long long)s->offset);
        kc_header_add_str(h, "state", job_state_name(o->state));
        kc_header_add_str(h, "error", o->error ? o->error : "");
        kc_header_add_int(h, "attempts", j->attempt);
        kc_header_add_str(h, "origin", origin);
        kc_header_add_str(h, "worker", replica_id());
    }
    if (kc_produce(topic, s->key, s->klen, s->value, s->vlen, h, 1, NULL, err, errlen) < 0) return -1;
    if (kc_producer_flush(err, errlen) < 0) return -1;
    if (o->disp == DISP_RETRY)
        log_info("re-queued to %s as attempt %d", topic, j->attempt + 1);
    else
        log_warn("dead-lettered to %s", topic);
    return 0;
}

/* Answer a revocation kept back while the job ran (see on_rebalance):
 * librdkafka then re-joins and the partition moves on, at the offset this
 * replica committed, or at the message when it did not. */
static void release_deferred(ksrc *s) {
    if (!s->deferred) return;
    rd_kafka_error_t *e = rd_kafka_incremental_unassign(s->rk, s->deferred);
    if (e) {
        log_warn("rebalance: %s", rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
    }
    log_debug("rebalance: %d partition(s) revoked (handed over after the job)", s->deferred->cnt);
    rd_kafka_topic_partition_list_destroy(s->deferred);
    s->deferred = NULL;
}

/* The fence check before the final record (source.h): see held_gone. */
static int ksrc_owns(void *state, const job *j, char *err, size_t errlen) {
    ksrc *s = state;
    (void)j;
    return !s->holding || !held_gone(s, err, errlen);
}

static int finish_held(ksrc *s, job *j, const outcome *o, char *err, size_t errlen);

static int ksrc_finish(void *state, job *j, const outcome *o, char *err, size_t errlen) {
    ksrc *s = state;
    int rc = finish_held(s, j, o, err, errlen);
    release_deferred(s);
    return rc;
}

static int finish_held(ksrc *s, job *j, const outcome *o, char *err, size_t errlen) {
    int64_t t0 = clock_mono_ms();

    if (!s->holding) return 0;
    if (o->disp == DISP_RELEASE) {
        log_info("not committing %s [%d] offset %lld: leaving the group hands it to another member", s->topic,
                 (int)s->partition, (long long)s->offset);
        return 0;
    }
    if (!s->held_assigned || s->held_lost) {
        log_warn("not settling %s [%d] offset %lld: the partition was revoked, its new owner settles it",
                 s->topic, (int)s->partition, (long long)s->offset);
        return 0;
    }
    if ((o->disp == DISP_RETRY || o->disp == DISP_DEAD) && produce_copy(s, j, o, err, errlen) < 0) return -1;
    int rc = commit_held(s, err, errlen);
    if (rc < 0) return -1;
    if (rc > 0) {
        log_warn("not committing %s [%d] offset %lld: the partition was revoked during the commit", s->topic,
                 (int)s->partition, (long long)s->offset);
        return 0;
    }
    char f[96];
    snprintf(f, sizeof(f), "\"commit_ms\":%lld", (long long)(clock_mono_ms() - t0));
    log_fields(LL_INFO, f, "committed %s [%d] offset %lld", s->topic, (int)s->partition, (long long)s->offset + 1);
    return 0;
}

/* See ksrc_close; kept here (volatile: the store must not be optimised
 * away) so that leak checkers see it as reachable. */
static rd_kafka_t *volatile leaked_consumer;

static void ksrc_close(void *state) {
    ksrc *s = state;
    if (!s) return;
    int64_t t0 = clock_mono_ms();
    int closed = 0;
    release_deferred(s); /* before closing: the close answers it otherwise */
    s->closing = 1;
    /* Asked before closing: afterwards the group handler no longer answers. */
    const char *proto = rd_kafka_rebalance_protocol(s->rk);
    int no_assignor = proto && strcmp(proto, "NONE") == 0;
    /* Leave the group now (LeaveGroup), so the partitions move at once
     * rather than after session.timeout.ms; bounded, as the broker may be
     * gone. */
    rd_kafka_queue_t *q = rd_kafka_queue_new(s->rk);
    rd_kafka_error_t *e = rd_kafka_consumer_close_queue(s->rk, q);
    if (e) {
        log_warn("closing the consumer: %s", rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
    } else {
        /* The group's queue now comes here: rebalance events (served as the
         * callback would) and stray fetched messages (dropped). */
        while (!(closed = rd_kafka_consumer_closed(s->rk)) && clock_mono_ms() - t0 < CLOSE_MAX_MS) {
            rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 50);
            if (!ev) continue;
            if (rd_kafka_event_type(ev) == RD_KAFKA_EVENT_REBALANCE)
                on_rebalance(s->rk, rd_kafka_event_error(ev), rd_kafka_event_topic_partition_list(ev), s);
            rd_kafka_event_destroy(ev);
        }
    }
    rd_kafka_queue_destroy(q);
    if (s->rkt) rd_kafka_topic_destroy(s->rkt);
    if (s->join_ms < 0 && !no_assignor) {
        /* librdkafka < 2.3.0 with cooperative-sticky asserts in destroy
         * when the member joined but never got an assignment:
         * the process is about to exit, so the handle is left to it. */
        log_debug("not destroying the consumer (librdkafka < 2.3.0 asserts in destroy)");
        leaked_consumer = s->rk;
    } else {
        rd_kafka_destroy_flags(s->rk, closed ? 0 : RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
    }
    char f[64];
    snprintf(f, sizeof(f), "\"close_ms\":%lld", (long long)(clock_mono_ms() - t0));
    log_fields(closed ? LL_INFO : LL_WARN, f, "%s the consumer group", closed ? "left" : "could not leave");
    if (s->has_producer) kc_producer_release();
    free(s->topic);
    free(s->key);
    free(s->value);
    if (s->hdrs) rd_kafka_headers_destroy(s->hdrs);
    free(s);
}

const source_ops source_kafka = {
    .name = "kafka",
    .heartbeat_ms = HEARTBEAT_MS,
    .can_retry = 1,
    .open = ksrc_open,
    .claim = ksrc_claim,
    .heartbeat = ksrc_heartbeat,
    .owns = ksrc_owns,
    .finish = ksrc_finish,
    .close = ksrc_close,
};
