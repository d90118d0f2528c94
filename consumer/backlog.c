/* backlog.c -- jobs waiting per source, for the fleet (see backlog.h). */
#include "backlog.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/buf.h"
#include "kafka/module.h"
#include "redis/conn.h"

typedef struct backlog_ops {
    const char *name;
    int (*open)(backlog *b, char *err, size_t errlen);
    int (*query)(backlog *b, backlog_count *out, char *err, size_t errlen);
} backlog_ops;

struct backlog {
    const config *cfg;
    const backlog_ops *ops;
    rconn *c;                 /* Redis sources; NULL until connected */
    const kafka_module *km;   /* kafka */
};

/* --- Redis --- */

/* KEYS: queue, workers set. ARGV: prefix, queue. {waiting, held}: the
 * queue plus the items of processing lists whose lease is gone (the next
 * replica's sweep puts them back), and the items under a live lease. The
 * same registry the sources' sweep walks, so it is O(replicas). */
static const char LIST_LUA[] =
    "--oneshot:BACKLOG_LIST\n"
    "local waiting = redis.call('LLEN', KEYS[1])\n"
    "local held = 0\n"
    "for _, w in ipairs(redis.call('SMEMBERS', KEYS[2])) do\n"
    "  local n = redis.call('LLEN', ARGV[2] .. ':processing:' .. w)\n"
    "  if n > 0 then\n"
    "    if redis.call('EXISTS', ARGV[1] .. ':lease:' .. w) == 1 then held = held + n\n"
    "    else waiting = waiting + n end\n"
    "  end\n"
    "end\n"
    "return {waiting, held}\n";

/* KEYS: stream. ARGV: group, lease ms. {waiting, held}: entries never
 * delivered to the group (its lag; counted from last-delivered-id when
 * Redis cannot tell the lag, or the whole stream before the first replica
 * created the group) plus pending entries idle longer than the lease (their
 * replica died: the next one takes them over), and the other pending. */
static const char STREAM_LUA[] =
    "--oneshot:BACKLOG_STREAM\n"
    "if redis.call('EXISTS', KEYS[1]) == 0 then return {0, 0} end\n"
    "for _, g in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do\n"
    "  local f = {}\n"
    "  for i = 1, #g, 2 do f[g[i]] = g[i + 1] end\n"
    "  if f['name'] == ARGV[1] then\n"
    "    local lag = f['lag']\n"
    "    if type(lag) ~= 'number' then\n"
    "      lag = #redis.call('XRANGE', KEYS[1], '(' .. f['last-delivered-id'], '+', 'COUNT', 100000)\n"
    "    end\n"
    "    local idle = 0\n"
    "    if f['pending'] > 0 then\n"
    "      idle = #redis.call('XPENDING', KEYS[1], ARGV[1], 'IDLE', ARGV[2], '-', '+', 100000)\n"
    "    end\n"
    "    return {lag + idle, f['pending'] - idle}\n"
    "  end\n"
    "end\n"
    "return {redis.call('XLEN', KEYS[1]), 0}\n";

static int redis_open(backlog *b, char *err, size_t errlen) {
    (void)err;
    (void)errlen;
    b->c = NULL; /* connected on first query, so a fleet can start before Redis */
    return 0;
}

/* Run one of the scripts above; its reply is {waiting, held}. */
static int redis_script(backlog *b, const char *lua, int nkeys, const char **args, int nargs,
                        backlog_count *out, char *err, size_t errlen) {
    const char *argv[8];
    char nk[8];
    redisReply *r = NULL;
    int rc = -1;

    if (!b->c && !(b->c = rconn_open(b->cfg->redis_url, "fleet", err, errlen))) return -1;
    snprintf(nk, sizeof(nk), "%d", nkeys);
    argv[0] = "EVAL";
    argv[1] = lua;
    argv[2] = nk;
    for (int i = 0; i < nargs && i < 5; i++) argv[3 + i] = args[i];
    /* Read-only and idempotent: safe to re-send after a reconnect. */
    r = rconn_cmdv(b->c, RC_RETRY, err, errlen, 3 + nargs, argv, NULL);
    if (!r) goto end;
    if (rreply_check(r, "backlog script", err, errlen) < 0) goto end;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
        snprintf(err, errlen, "backlog script: unexpected reply");
        goto end;
    }
    out->waiting = (long)rreply_int(r->element[0], 0);
    out->held = (long)rreply_int(r->element[1], 0);
    out->includes_held = 0;
    rc = 0;
end:
    if (r) freeReplyObject(r);
    return rc;
}

static int list_query(backlog *b, backlog_count *out, char *err, size_t errlen) {
    buf workers = BUF_INIT;
    buf_printf(&workers, "%s:workers", b->cfg->queue);
    const char *args[] = {b->cfg->queue, workers.data, b->cfg->prefix, b->cfg->queue};
    int rc = redis_script(b, LIST_LUA, 2, args, 4, out, err, errlen);
    buf_free(&workers);
    return rc;
}

static int stream_query(backlog *b, backlog_count *out, char *err, size_t errlen) {
    char lease_ms[24];
    snprintf(lease_ms, sizeof(lease_ms), "%lld", (long long)b->cfg->lease * 1000);
    const char *args[] = {b->cfg->queue, b->cfg->group, lease_ms};
    return redis_script(b, STREAM_LUA, 1, args, 3, out, err, errlen);
}

/* --- Kafka --- */

static int kafka_open(backlog *b, char *err, size_t errlen) {
    b->km = kafka_module_load(err, errlen);
    if (b->km && !b->km->backlog) {
        snprintf(err, errlen, "the Kafka module has no backlog function");
        b->km = NULL;
    }
    return b->km ? 0 : -1;
}

static int kafka_query(backlog *b, backlog_count *out, char *err, size_t errlen) {
    long n = b->km->backlog(b->cfg, err, errlen);
    if (n < 0) return -1;
    out->waiting = n;
    out->held = 0;
    out->includes_held = 1; /* a running replica's message stays in the lag until its commit */
    return 0;
}

static const backlog_ops ops_table[] = {
    {"redis-list", redis_open, list_query},
    {"redis-stream", redis_open, stream_query},
    {"kafka", kafka_open, kafka_query},
};

backlog *backlog_open(const config *cfg, char *err, size_t errlen) {
    const backlog_ops *ops = NULL;
    for (size_t i = 0; i < sizeof(ops_table) / sizeof(ops_table[0]); i++)
        if (strcmp(cfg->source, ops_table[i].name) == 0) ops = &ops_table[i];
    if (!ops) {
        snprintf(err, errlen, "--source %s has no queue to watch: use redis-list, redis-stream or kafka",
                 cfg->source);
        return NULL;
    }
    backlog *b = xcalloc(1, sizeof(*b));
    b->cfg = cfg;
    b->ops = ops;
    if (ops->open(b, err, errlen) < 0) {
        backlog_close(b);
        return NULL;
    }
    return b;
}

int backlog_query(backlog *b, backlog_count *out, char *err, size_t errlen) {
    memset(out, 0, sizeof(*out));
    return b->ops->query(b, out, err, errlen);
}

void backlog_close(backlog *b) {
    if (!b) return;
    rconn_close(b->c);
    free(b);
}
