/* redis/record.h -- the status record's transitions in Redis, each one
 * script (consumer/README.md "The Redis job protocol").
 *
 * The record is the hash P:job:<id>; every transition checks, in the same
 * script, the key types and the record's fence before it writes, writes
 * whole or not at all, publishes the record on P:events as JSON, and is
 * safe to re-send after a lost reply. Used by the Redis store, the Redis
 * sources' sweeps and the client subcommands. */
#ifndef ONESHOT_REDIS_RECORD_H
#define ONESHOT_REDIS_RECORD_H

#include <stddef.h>
#include <stdint.h>

#include "../../common/status.h"
#include "conn.h"
#include "../source.h"

/* Lua shared by every script that writes a record: FINAL (the final
 * states), NUM (numeric fields), typeok(key, want) -> ok, actual type,
 * hfields(key, field...) -> HMGET's answer, or nil and the key's type
 * when it is not a hash (one call where TYPE + HMGET were two),
 * publish_fields(t, channel) (the record t, field -> value, as a JSON
 * object in status_to_json's order, numbers as numbers), publish(key,
 * channel) (the hash as it is now, read back) and argv_fields(i) (ARGV's
 * field/value pairs from index i as such a table). A script that replaces
 * the whole record publishes what it wrote (publish_fields), without the
 * read back. BEGIN and FINAL, on every job's path, publish JSON the client
 * wrote (status_to_json) and use publish_fields only when the script
 * changes the record it was sent: Lua's JSON encoding was a third of
 * their time in Redis. */
#define RREC_LUA_PRELUDE                                                                           \
    "local FINAL = {succeeded=true, failed=true, rejected=true, timed_out=true, dead=true,\n"       \
    "               cancelled=true}\n"                                                             \
    "local ORDER = {'id', 'state', 'attempt', 'worker', 'source', 'queue', 'started_at',\n"        \
    "               'heartbeat_at', 'finished_at', 'duration_ms', 'progress', 'exit_code',\n"      \
    "               'error', 'result_bytes', 'cpu_ms', 'max_rss_kb', 'fence',\n"                 \
    "               'content_type'}\n"                                                            \
    "local NUM = {attempt=true, duration_ms=true, progress=true, exit_code=true,\n"                \
    "             result_bytes=true, cpu_ms=true, max_rss_kb=true, fence=true}\n"                  \
    "local function typeok(k, want)\n"                                                             \
    "  local t = redis.call('TYPE', k).ok\n"                                                       \
    "  return t == want or t == 'none', t\n"                                                       \
    "end\n"                                                                                        \
    "local function hfields(k, ...)\n"                                                             \
    "  local r = redis.pcall('HMGET', k, ...)\n"                                                   \
    "  if r.err then return nil, redis.call('TYPE', k).ok end\n"                                   \
    "  return r\n"                                                                                 \
    "end\n"                                                                                        \
    "local function publish_fields(o, ch)\n"                                                       \
    "  local out = {}\n"                                                                           \
    "  for _, f in ipairs(ORDER) do\n"                                                             \
    "    local v = o[f]\n"                                                                         \
    "    if v then\n"                                                                              \
    "      if not (NUM[f] and string.match(v, '^%-?%d+$')) then v = cjson.encode(v) end\n"         \
    "      out[#out + 1] = '\"' .. f .. '\":' .. v\n"                                              \
    "    end\n"                                                                                    \
    "  end\n"                                                                                      \
    "  redis.call('PUBLISH', ch, '{' .. table.concat(out, ',') .. '}')\n"                          \
    "end\n"                                                                                        \
    "local function publish(k, ch)\n"                                                              \
    "  local h, o = redis.call('HGETALL', k), {}\n"                                                \
    "  for i = 1, #h, 2 do o[h[i]] = h[i + 1] end\n"                                               \
    "  publish_fields(o, ch)\n"                                                                    \
    "end\n"                                                                                        \
    "local function argv_fields(from)\n"                                                           \
    "  local o = {}\n"                                                                             \
    "  for i = from, #ARGV - 1, 2 do o[ARGV[i]] = ARGV[i + 1] end\n"                               \
    "  return o\n"                                                                                 \
    "end\n"

/* Lua: write the "queued" record REC of job ID (Lua expressions), from
 * SOURCE's QUEUE, expiring after TTL seconds, and publish it on CH: what
 * `oneshot submit` and a re-drive leave, so `wait` knows the job before
 * a replica claims it. Needs RREC_LUA_PRELUDE. */
#define RREC_QUEUED_LUA(REC, ID, SOURCE, QUEUE, TTL, CH)                                          \
    "redis.call('HSET', " REC ", 'id', " ID ", 'state', 'queued', 'source', " SOURCE ",\n"       \
    "           'queue', " QUEUE ")\n"                                                           \
    "redis.call('EXPIRE', " REC ", " TTL ")\n"                                                    \
    "publish(" REC ", " CH ")\n"

/* The store's key names: <prefix>:<kind>:<id>, kind "job" (the status
 * hash), "result", "cancel" or "lease" (README "Keys"). */
void rkey(char *out, size_t n, const char *prefix, const char *kind, const char *id);
/* The channel every transition is published on: <prefix>:events. */
void rkey_events(char *out, size_t n, const char *prefix);
/* A list source's keys beside its queue: <queue>:<kind>, kind "workers"
 * (the replicas' registry) or "quarantine", or <queue>:processing:<who>
 * (who: the replica). The scripts build the same names from the queue. */
void rkey_queue(char *out, size_t n, const char *queue, const char *kind, const char *who);

/* begin: see store.h (enum begin_rc). st is the "running" record; on
 * BEGIN_RUN and BEGIN_CANCELLED st->fence is set to the fence now ours.
 * info gets the known final state (BEGIN_DONE), the replica running the
 * job (BEGIN_DUPLICATE) or the reason (BEGIN_POISON). */
int rrec_begin(rconn *c, const char *prefix, int ttl, status_rec *st, const claim_proof *p, char *info, size_t n,
               char *err, size_t errlen);

/* The final (or "retrying", "interrupted") record, with the result first
 * when data is not NULL, in one script: 0 written (or already written by
 * this fence: a re-send), STORE_STALE another owner's fence is current
 * (nothing written), STORE_SKIPPED st has no fence (no begin: a
 * rejection) and the record belongs to a delivery that has one (nothing
 * written), STORE_POISON the record's or the result's key holds another
 * type (nothing written, err says which), -1 unreachable or refused (OOM,
 * READONLY: nothing written). */
int rrec_final(rconn *c, const char *prefix, int ttl, const status_rec *st, const char *data, size_t len,
               char *err, size_t errlen);

/* The heartbeat: heartbeat_at (never backwards) and progress, only while
 * the record is running under st->fence. 0 written, STORE_STALE not ours,
 * -1 unreachable. */
int rrec_beat(rconn *c, const char *prefix, const status_rec *st, char *err, size_t errlen);

/* Read the whole record. 1 found, 0 none, -1 unreachable or not a hash. */
int rrec_get(rconn *c, const char *prefix, const char *id, status_rec *st, char *err, size_t errlen);

#endif
