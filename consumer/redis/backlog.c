/* redis/backlog.c -- the fleet's backlog of the Redis queues (backlog.h
 * says what each counts): one script per query, on a connection made on
 * first use and re-made after a failure. */
#include <stdio.h>
#include <stdlib.h>

#include "../../common/buf.h"
#include "../backlog.h"
#include "conn.h"
#include "janitor.h"
#include "record.h"

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

int rbacklog_open(const config *cfg, void **state, char *err, size_t errlen) {
    (void)cfg;
    (void)err;
    (void)errlen;
    /* The state holds the connection, made on first query, so a fleet can
     * start before Redis. */
    *state = xcalloc(1, sizeof(rconn *));
    return 0;
}

void rbacklog_close(void *state) {
    rconn **c = state;
    if (!c) return;
    rconn_close(*c);
    free(c);
}

/* Run one of the scripts above; its reply is {waiting, held}. */
static int redis_script(rconn **c, const config *cfg, const char *lua, int nkeys, const char **args, int nargs,
                        backlog_count *out, char *err, size_t errlen) {
    const char *argv[8];
    char nk[8];
    redisReply *r = NULL;
    int rc = -1;

    if (!*c && !(*c = rconn_open(cfg->redis_url, "fleet", err, errlen))) return -1;
    snprintf(nk, sizeof(nk), "%d", nkeys);
    argv[0] = "EVAL";
    argv[1] = lua;
    argv[2] = nk;
    for (int i = 0; i < nargs && i < 5; i++) argv[3 + i] = args[i];
    /* Read-only and idempotent: safe to re-send after a reconnect. */
    r = rconn_cmdv(*c, RC_RETRY, err, errlen, 3 + nargs, argv, NULL);
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

int rbacklog_list(void *state, const config *cfg, backlog_count *out, char *err, size_t errlen) {
    char workers[512];
    rkey_queue(workers, sizeof(workers), cfg->queue, "workers", NULL);
    const char *args[] = {cfg->queue, workers, cfg->prefix, cfg->queue};
    return redis_script((rconn **)state, cfg, LIST_LUA, 2, args, 4, out, err, errlen);
}

int rbacklog_stream(void *state, const config *cfg, backlog_count *out, char *err, size_t errlen) {
    char lease_ms[24];
    snprintf(lease_ms, sizeof(lease_ms), "%lld", (long long)cfg->lease * 1000);
    const char *args[] = {cfg->queue, cfg->group, lease_ms};
    return redis_script((rconn **)state, cfg, STREAM_LUA, 1, args, 3, out, err, errlen);
}
