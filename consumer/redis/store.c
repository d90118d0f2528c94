/* redis/store.c -- status records and results in Redis.
 *
 *   <prefix>:job:<id>     hash, the status record (status_each_field names),
 *                         replaced whole at each transition, expiring after
 *                         --result-ttl once final
 *   <prefix>:result:<id>  string, the result bytes, expiring after --result-ttl
 *   <prefix>:cancel:<id>  the cancel mark `oneshot cancel` sets
 *   <prefix>:events       channel: every transition's record as JSON
 *
 * Usable with every source. The thread that opens the store (the
 * lifecycle's) uses the process's shared connection to --redis
 * (rconn_share): behind a Redis source that is the source's own
 * connection, so a replica connects once. The main thread never uses it
 * while a source call blocks on it (claims come before the job, the store
 * calls after), and the heartbeat thread's source calls on it are short and
 * serialised by its lock. Any other thread (the heartbeat) gets a
 * connection of its own, opened on its first beat, so a store write from
 * the heartbeat never waits behind the main thread. A heartbeat only
 * touches heartbeat_at and progress, and only while the record is still
 * this replica's "running" one, so a replica that lost its claim can never
 * overwrite the record of the replica that took the job over. Heartbeats
 * are not published: they are not transitions.
 *
 * Every write is one script of redis/record.c, fenced (consumer/README.md):
 * begin checks that the copy is still held and takes a new fence; the
 * heartbeat and the final write (the result first, in the same script)
 * apply only under that fence.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/buf.h"
#include "../../common/clock.h"
#include "../../common/log.h"
#include "conn.h"
#include "record.h"
#include "../replica.h"
#include "../store.h"

typedef struct rstore {
    const config *cfg;
    rconn *main;      /* the thread that opened the store: the shared connection */
    rconn *hb;        /* any other thread (the heartbeat) */
    pthread_t owner;
    char worker[128];
    const char *result; /* the result, borrowed until the next record writes it */
    size_t result_len;
    int has_result;
} rstore;

/* The connection for the calling thread, or NULL when Redis is unreachable. */
static rconn *conn_for_thread(rstore *s, char *err, size_t errlen) {
    if (pthread_equal(pthread_self(), s->owner)) return s->main;
    if (!s->hb) {
        char who[200];
        snprintf(who, sizeof(who), "store-hb:%s", s->worker);
        s->hb = rconn_open(s->cfg->redis_url, who, err, errlen);
    }
    return s->hb;
}

static int redis_open(const config *cfg, void **state, char *err, size_t errlen) {
    rstore *s = xcalloc(1, sizeof(*s));
    char who[200];
    s->cfg = cfg;
    s->owner = pthread_self();
    snprintf(s->worker, sizeof(s->worker), "%s", replica_id() ? replica_id() : "client");
    snprintf(who, sizeof(who), "store:%s", s->worker);
    s->main = rconn_share(cfg->redis_url, who, err, errlen);
    if (!s->main) {
        free(s);
        *state = NULL;
        return -1;
    }
    *state = s;
    return 0;
}

static int redis_begin(void *state, status_rec *st, const claim_proof *p, char *info, size_t n, char *err,
                       size_t errlen) {
    rstore *s = state;
    if (n) info[0] = '\0';
    if (!st->id[0]) return BEGIN_RUN; /* nothing to name the record by: nothing to look up or write */
    if (p && p->begun) {
        st->started_at = st->heartbeat_at = p->begun_at;
        if (p->begin_rc == BEGIN_RUN || p->begin_rc == BEGIN_CANCELLED)
            st->fence = p->fence;
        else if (n)
            snprintf(info, n, "%s", p->info ? p->info : "");
        return p->begin_rc;
    }
    rconn *c = conn_for_thread(s, err, errlen);
    if (!c) return BEGIN_ERR;
    return rrec_begin(c, s->cfg->prefix, s->cfg->result_ttl, st, p, info, n, err, errlen);
}

/* The main thread writes the record (with the result before it, in the
 * same script); any other thread is the heartbeat. */
static int redis_put_status(void *state, const status_rec *st, char *err, size_t errlen) {
    rstore *s = state;
    if (!st->id[0]) return 0; /* nothing to name the record by */
    rconn *c = conn_for_thread(s, err, errlen);
    if (!c) return -1;
    if (c != s->main) return rrec_beat(c, s->cfg->prefix, st, err, errlen);
    int rc = rrec_final(c, s->cfg->prefix, s->cfg->result_ttl, st, s->has_result ? s->result : NULL,
                        s->result_len, err, errlen);
    s->result = NULL;
    s->has_result = 0;
    return rc;
}

/* Kept (borrowed, see store.h) for the record that follows: one script
 * writes both, and a result can be --max-output bytes. */
static int redis_put_result(void *state, const status_rec *st, const char *data, size_t len, char *err,
                            size_t errlen) {
    rstore *s = state;
    (void)err;
    (void)errlen;
    if (!st->id[0]) return 0;
    s->result = data ? data : "";
    s->result_len = data ? len : 0;
    s->has_result = 1;
    return 0;
}

static int redis_cancelled(void *state, const char *id) {
    rstore *s = state;
    char key[512], err[256];
    rconn *c = conn_for_thread(s, err, sizeof(err));
    if (!c) return -1;
    rkey(key, sizeof(key), s->cfg->prefix, "cancel", id);
    redisReply *r = rconn_cmd(c, RC_RETRY, err, sizeof(err), "EXISTS %s", key);
    if (!r) {
        log_warn("cancel check: %s", err);
        return -1;
    }
    int rc = rreply_is_err(r) ? -1 : rreply_int(r, 0) > 0;
    freeReplyObject(r);
    return rc;
}

#define LAST_WORDS_MS 1000

static int redis_last_words(void *state, const status_rec *st, char *err, size_t errlen) {
    rstore *s = state;
    char who[200];
    rconn_limit_budget(LAST_WORDS_MS);
    snprintf(who, sizeof(who), "store-last:%s", s->worker);
    rconn *c = rconn_open(s->cfg->redis_url, who, err, errlen);
    if (!c) return -1;
    int rc = rrec_final(c, s->cfg->prefix, s->cfg->result_ttl, st, NULL, 0, err, errlen);
    rconn_close(c);
    return rc == 0 ? 0 : -1;
}

static void redis_close(void *state) {
    rstore *s = state;
    if (!s) return;
    if (s->has_result) log_warn("a result was never followed by its status record: not written");
    rconn_close(s->main);
    rconn_close(s->hb);
    free(s);
}

const store_ops store_redis = {
    .name = "redis",
    .open = redis_open,
    .begin = redis_begin,
    .put_status = redis_put_status,
    .put_result = redis_put_result,
    .cancelled = redis_cancelled,
    .last_words = redis_last_words,
    .close = redis_close,
};
