/* kafka_common.c -- configuration, logging, the shared producer, headers
 * (see kafka_common.h). */
#include "kafka_common.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/clock.h"
#include "../../common/log.h"

/* Properties whose meaning oneshot depends on: settable only through its
 * own flags, or not at all (at-least-once needs manual commits). */
static const char *const owned_props[] = {
    "bootstrap.servers",  "--kafka",
    "metadata.broker.list", "--kafka",
    "group.id",           "--group",
    "enable.auto.commit", NULL,
    "enable.auto.offset.store", NULL,
    NULL,
};

/* Values of these never go to the log. */
static int prop_is_secret(const char *name) {
    return strstr(name, "password") || strstr(name, "secret") || strstr(name, "sasl.jaas") ||
           strstr(name, "ssl.key.pem") || strstr(name, "token");
}

/* librdkafka's log in ours. Its errors are mostly transient (a refused
 * connection is retried), so they are warnings; the warnings it gives for
 * a consumer property on the producer (--kafka-prop goes to both) are
 * noise. */
static void on_log(const rd_kafka_t *rk, int level, const char *fac, const char *msg) {
    (void)rk;
    int ll = level <= 4 ? LL_WARN : LL_DEBUG;
    if (strstr(msg, "will be ignored by this")) ll = LL_DEBUG;
    if (log_enabled(ll)) log_msg(ll, "librdkafka %s: %s", fac, msg);
}

static int conf_set(rd_kafka_conf_t *conf, const char *name, const char *value, char *err, size_t errlen) {
    char why[512];
    rd_kafka_conf_res_t r = rd_kafka_conf_set(conf, name, value, why, sizeof(why));
    if (r == RD_KAFKA_CONF_OK) return 0;
    if (r == RD_KAFKA_CONF_UNKNOWN)
        snprintf(err, errlen, "--kafka-prop %s: no such librdkafka property", name);
    else if (prop_is_secret(name))
        snprintf(err, errlen, "--kafka-prop %s: invalid value", name);
    else
        snprintf(err, errlen, "--kafka-prop %s: %s", name, why);
    return -1;
}

rd_kafka_conf_t *kc_conf_new(const config *cfg, const char *const *defaults, char *err, size_t errlen) {
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char name[256];

    rd_kafka_conf_set_log_cb(conf, on_log);
    if (conf_set(conf, "bootstrap.servers", cfg->kafka_brokers, err, errlen) < 0) {
        snprintf(err, errlen, "--kafka: '%.100s' is not a list of brokers", cfg->kafka_brokers);
        goto error;
    }
    /* KIP-714 client metrics (librdkafka >= 2.5, the static build's 2.8):
     * on by default, and then rd_kafka_destroy waits about 1 s for the last
     * push in most runs (measured: 1 s in 7 of 11 one-shots, `make bench`).
     * A one-shot replica's metrics are its log; --kafka-prop can turn them
     * back on. A librdkafka without the property (2.0.2) refuses it: fine. */
    rd_kafka_conf_set(conf, "enable.metrics.push", "false", name, sizeof(name));
    for (size_t i = 0; defaults && defaults[i]; i += 2)
        if (conf_set(conf, defaults[i], defaults[i + 1], err, errlen) < 0) goto error;
    for (size_t i = 0; i < cfg->nkafka_props; i++) {
        const char *kv = cfg->kafka_props[i];
        size_t n = strcspn(kv, "=");
        if (n == 0 || n >= sizeof(name) || kv[n] != '=') {
            snprintf(err, errlen, "--kafka-prop: '%.64s' is not KEY=VALUE", kv);
            goto error;
        }
        memcpy(name, kv, n);
        name[n] = '\0';
        for (size_t k = 0; owned_props[k]; k += 2) {
            if (strcmp(name, owned_props[k]) != 0) continue;
            if (owned_props[k + 1])
                snprintf(err, errlen, "--kafka-prop %s: set it with %s", name, owned_props[k + 1]);
            else
                snprintf(err, errlen, "--kafka-prop %s: oneshot commits by hand after the result is written "
                         "(at-least-once); this property cannot be changed", name);
            goto error;
        }
        if (conf_set(conf, name, kv + n + 1, err, errlen) < 0) goto error;
    }
    return conf;
error:
    rd_kafka_conf_destroy(conf);
    return NULL;
}

int kc_conf_int(rd_kafka_t *rk, const char *name, int def) {
    char v[64];
    size_t n = sizeof(v);
    if (rd_kafka_conf_get(rd_kafka_conf(rk), name, v, &n) != RD_KAFKA_CONF_OK) return def;
    char *end;
    long x = strtol(v, &end, 10);
    return end == v || x < 0 || x > 2000000000L ? def : (int)x;
}

/* --- the producer --- */

#define WARM_MAX 8         /* topics whose metadata was asked for */
#define WARM_TIMEOUT_MS 1000

static struct {
    pthread_mutex_t mu;
    rd_kafka_t *rk;
    int refs;
    rd_kafka_topic_t *warm[WARM_MAX]; /* handles kept so the metadata stays */
    int nwarm;
    atomic_int failed;   /* critical deliveries that failed */
    char first_err[256]; /* the first of them (under mu) */
} P = {.mu = PTHREAD_MUTEX_INITIALIZER};

static int critical_tag; /* its address marks a critical message */

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    (void)rk;
    (void)opaque;
    if (!m->err) return;
    if (m->_private != &critical_tag) {
        log_debug("status update to %s not delivered: %s", rd_kafka_topic_name(m->rkt), rd_kafka_err2str(m->err));
        return;
    }
    pthread_mutex_lock(&P.mu);
    if (atomic_fetch_add(&P.failed, 1) == 0)
        snprintf(P.first_err, sizeof(P.first_err), "delivery to %s failed: %s", rd_kafka_topic_name(m->rkt),
                 rd_kafka_err2str(m->err));
    pthread_mutex_unlock(&P.mu);
}

static void on_producer_error(rd_kafka_t *rk, int code, const char *reason, void *opaque) {
    (void)opaque;
    if (code == RD_KAFKA_RESP_ERR__FATAL) {
        char why[256];
        rd_kafka_resp_err_t e = rd_kafka_fatal_error(rk, why, sizeof(why));
        log_error("Kafka producer: fatal error %s: %s", rd_kafka_err2name(e), why);
    } else if (code == RD_KAFKA_RESP_ERR__SSL || code == RD_KAFKA_RESP_ERR__AUTHENTICATION) {
        /* why the flush that follows will time out; once is enough */
        static atomic_int said;
        if (atomic_fetch_add(&said, 1) == 0) log_error("Kafka producer: %s", reason);
    } else {
        log_debug("Kafka producer: %s: %s", rd_kafka_err2name(code), reason);
    }
}

rd_kafka_t *kc_producer_acquire(const config *cfg, const char *msg_timeout_ms, int *rc, char *err, size_t errlen) {
    /* Delivery is confirmed by flush() before anything is committed, so the
     * message timeout bounds how long a replica waits for a lost broker. */
    const char *const defaults[] = {
        "client.id", "oneshot",
        "enable.idempotence", "true",
        "message.timeout.ms", msg_timeout_ms ? msg_timeout_ms : "30000",
        NULL,
    };
    rd_kafka_t *rk = NULL;
    char why[512];

    pthread_mutex_lock(&P.mu);
    if (P.rk) {
        P.refs++;
        rk = P.rk;
        goto end;
    }
    rd_kafka_conf_t *conf = kc_conf_new(cfg, defaults, err, errlen);
    if (!conf) {
        *rc = KC_ERR_CONFIG;
        goto end;
    }
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_conf_set_error_cb(conf, on_producer_error);
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof(why));
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        snprintf(err, errlen, "Kafka producer: %s", why);
        *rc = KC_ERR_CONFIG;
        goto end;
    }
    conf = NULL; /* now owned, and freed, by rk */
    P.rk = rk;
    P.refs = 1;
    atomic_store(&P.failed, 0);
    P.first_err[0] = '\0';
end:
    pthread_mutex_unlock(&P.mu);
    return rk;
}

void kc_producer_release(void) {
    rd_kafka_t *rk = NULL;
    pthread_mutex_lock(&P.mu);
    if (P.rk && --P.refs == 0) {
        rk = P.rk;
        P.rk = NULL;
    }
    pthread_mutex_unlock(&P.mu);
    if (!rk) return;
    for (int i = 0; i < P.nwarm; i++) rd_kafka_topic_destroy(P.warm[i]);
    P.nwarm = 0;
    /* Whatever is left was not needed (flush already decided the exit):
     * drop it rather than wait for a broker that may be gone. */
    if (rd_kafka_outq_len(rk) > 0) {
        log_debug("Kafka producer: dropping %d undelivered message(s)", rd_kafka_outq_len(rk));
        rd_kafka_purge(rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        rd_kafka_poll(rk, 0);
    }
    rd_kafka_destroy(rk);
}

/* Ask for topic's metadata now, once: librdkafka otherwise learns of a
 * topic first produced to at its next topic scan, up to a second later,
 * and a one-shot replica would wait for that in its final flush. Best
 * effort: when it fails the message waits as it would have. */
void kc_producer_warm(const char *topic) {
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_t *rkt = NULL;
    pthread_mutex_lock(&P.mu);
    rd_kafka_t *rk = P.rk;
    for (int i = 0; rk && i < P.nwarm; i++)
        if (strcmp(rd_kafka_topic_name(P.warm[i]), topic) == 0) rk = NULL;
    if (rk && P.nwarm < WARM_MAX) {
        rkt = rd_kafka_topic_new(rk, topic, NULL);
        if (rkt) P.warm[P.nwarm++] = rkt;
    }
    pthread_mutex_unlock(&P.mu);
    if (!rkt) return;
    rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 0, rkt, &md, WARM_TIMEOUT_MS);
    if (md) rd_kafka_metadata_destroy(md);
    if (e) log_debug("metadata of %s: %s", topic, rd_kafka_err2str(e));
}

int kc_produce(const char *topic, const char *key, size_t klen, const void *val, size_t vlen,
               rd_kafka_headers_t *hdrs, int critical, rd_kafka_resp_err_t *perr, char *err, size_t errlen) {
    rd_kafka_resp_err_t e = RD_KAFKA_RESP_ERR__STATE;
    pthread_mutex_lock(&P.mu);
    rd_kafka_t *rk = P.rk;
    pthread_mutex_unlock(&P.mu);
    if (!rk) goto error;
    kc_producer_warm(topic);
    for (int tries = 0;; tries++) {
        e = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, klen),
                              RD_KAFKA_V_VALUE((void *)val, vlen), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                              RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_OPAQUE(critical ? &critical_tag : NULL),
                              RD_KAFKA_V_END);
        if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL || tries >= 50) break;
        rd_kafka_poll(rk, 100); /* the local queue is full: let deliveries drain it */
    }
    if (!e) {
        hdrs = NULL; /* now owned by the message */
        rd_kafka_poll(rk, 0); /* serve earlier delivery reports */
        return 0;
    }
error:
    if (hdrs) rd_kafka_headers_destroy(hdrs);
    if (perr) *perr = e;
    snprintf(err, errlen, "cannot produce to %s: %s", topic, rd_kafka_err2str(e));
    return -1;
}

int kc_producer_flush(char *err, size_t errlen) { return kc_producer_flush_within(0, err, errlen); }

int kc_producer_flush_within(int ms, char *err, size_t errlen) {
    pthread_mutex_lock(&P.mu);
    rd_kafka_t *rk = P.rk;
    pthread_mutex_unlock(&P.mu);
    if (!rk) return 0;
    int bound = ms > 0 ? ms : kc_conf_int(rk, "message.timeout.ms", 30000) + 1000;
    rd_kafka_resp_err_t e = rd_kafka_flush(rk, bound);
    if (e) {
        snprintf(err, errlen, "%d message(s) not delivered within %d ms: %s", rd_kafka_outq_len(rk), bound,
                 rd_kafka_err2str(e));
        return -1;
    }
    if (atomic_load(&P.failed) > 0) {
        pthread_mutex_lock(&P.mu);
        snprintf(err, errlen, "%s", P.first_err);
        pthread_mutex_unlock(&P.mu);
        return -1;
    }
    return 0;
}

/* --- headers --- */

int kc_header_str(const rd_kafka_headers_t *h, const char *name, char *out, size_t n) {
    const void *v;
    size_t len;
    if (!h || rd_kafka_header_get_last(h, name, &v, &len) != RD_KAFKA_RESP_ERR_NO_ERROR || !v || len >= n) return -1;
    memcpy(out, v, len);
    out[len] = '\0';
    return 0;
}

void kc_header_add_str(rd_kafka_headers_t *h, const char *name, const char *value) {
    rd_kafka_header_add(h, name, -1, value, -1);
}

void kc_header_add_int(rd_kafka_headers_t *h, const char *name, long long v) {
    char s[32];
    snprintf(s, sizeof(s), "%lld", v);
    rd_kafka_header_add(h, name, -1, s, -1);
}
