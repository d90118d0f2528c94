/* store_redis.c -- status records and results in Redis (DESIGN.md section 5).
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
 * begin is one script: the state and the cancel mark are read and, unless
 * the job already succeeded or is marked cancelled, the "running" record
 * is written, in one round trip and atomically.
 *
 * The result is sent together with the status record that follows it (one
 * round trip, the SET first): the lifecycle writes the final record right
 * after the result, and a result is only useful with its record. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/buf.h"
#include "../common/clock.h"
#include "../common/log.h"
#include "redis_conn.h"
#include "replica.h"
#include "store.h"

typedef struct rstore {
    const config *cfg;
    rconn *main;      /* the thread that opened the store: the shared connection */
    rconn *hb;        /* any other thread (the heartbeat) */
    pthread_t owner;
    char worker[128];
    char *result_cmd; /* SET <prefix>:result:<id>, sent with the next record */
    size_t result_len;
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

static int redis_begin(void *state, const status_rec *st, char *job_state, size_t n, int *cancelled, char *err,
                       size_t errlen) {
    rstore *s = state;
    rbatch b;
    int rc = -1;

    if (n) job_state[0] = '\0';
    *cancelled = 0;
    if (!st->id[0]) return 1; /* nothing to name the record by: nothing to look up or write */
    rconn *c = conn_for_thread(s, err, errlen);
    if (!c) return -1;
    rbatch_init(&b);
    rstatus_add_begin(&b, s->cfg->prefix, s->cfg->result_ttl, st);
    if (rconn_run(c, &b, RC_RETRY, err, errlen) == 0)
        rc = rstatus_begin_reply(b.rep[0], job_state, n, cancelled, err, errlen);
    rbatch_free(&b);
    return rc;
}

/* KEYS[1] the record; ARGV: worker, heartbeat_at, progress. */
static const char HEARTBEAT_LUA[] =
    "local v = redis.call('HMGET', KEYS[1], 'worker', 'state')\n"
    "if v[1] ~= ARGV[1] or v[2] ~= 'running' then return 0 end\n"
    "redis.call('HSET', KEYS[1], 'heartbeat_at', ARGV[2], 'progress', ARGV[3])\n"
    "return 1\n";

static int redis_put_status(void *state, const status_rec *st, char *err, size_t errlen) {
    rstore *s = state;
    if (!st->id[0]) return 0; /* nothing to name the record by */
    rconn *c = conn_for_thread(s, err, errlen);
    if (!c) return -1;
    if (c == s->main) {
        rbatch b;
        int rc = -1;
        rbatch_init(&b);
        if (s->result_cmd) rbatch_add_formatted(&b, s->result_cmd, s->result_len); /* now the batch's */
        s->result_cmd = NULL;
        rstatus_add(&b, s->cfg->prefix, s->cfg->result_ttl, st, 0);
        if (rconn_run(c, &b, RC_RETRY, err, errlen) == 0) {
            rc = 0;
            for (int i = 0; i < b.n && rc == 0; i++)
                rc = rreply_check(b.rep[i], i + 1 < b.n ? "SET result" : "status record", err, errlen);
        }
        rbatch_free(&b);
        return rc;
    }

    char key[512], at[40];
    rkey(key, sizeof(key), s->cfg->prefix, "job", st->id);
    clock_iso8601(st->heartbeat_at, at, sizeof(at));
    redisReply *r = rconn_cmd(c, RC_RETRY, err, errlen, "EVAL %s 1 %s %s %s %d", HEARTBEAT_LUA, key, st->worker,
                              at, st->progress < 0 ? 0 : st->progress);
    if (!r) return -1;
    int rc = rreply_check(r, "heartbeat record", err, errlen);
    if (rc == 0 && rreply_int(r, 0) == 0) log_debug("heartbeat: the status record is no longer this replica's");
    freeReplyObject(r);
    return rc;
}

static int redis_put_result(void *state, const status_rec *st, const char *data, size_t len, char *err,
                            size_t errlen) {
    rstore *s = state;
    char key[512];
    if (!st->id[0]) return 0;
    rkey(key, sizeof(key), s->cfg->prefix, "result", st->id);
    if (pthread_equal(pthread_self(), s->owner)) {
        char *cmd = NULL;
        int n = redisFormatCommand(&cmd, "SET %s %b EX %d", key, data ? data : "", data ? len : 0, s->cfg->result_ttl);
        if (n < 0 || !cmd) {
            snprintf(err, errlen, "out of memory formatting the result");
            return -1;
        }
        redisFreeCommand(s->result_cmd);
        s->result_cmd = cmd;
        s->result_len = (size_t)n;
        return 0;
    }
    rconn *c = conn_for_thread(s, err, errlen);
    if (!c) return -1;
    redisReply *r = rconn_cmd(c, RC_RETRY, err, errlen, "SET %s %b EX %d", key, data ? data : "", data ? len : 0,
                              s->cfg->result_ttl);
    if (!r) return -1;
    int rc = rreply_check(r, "SET result", err, errlen);
    freeReplyObject(r);
    return rc;
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

static void redis_close(void *state) {
    rstore *s = state;
    if (!s) return;
    if (s->result_cmd) log_warn("a result was never followed by its status record: not written");
    redisFreeCommand(s->result_cmd);
    rconn_close(s->main);
    rconn_close(s->hb);
    free(s);
}

const store_ops store_redis = {"redis",          redis_open,      redis_begin,  redis_put_status,
                               redis_put_result, redis_cancelled, NULL,         redis_close};
