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

#include "../../common/ids.h"
#include "../../common/status.h"
#include "conn.h"
#include "../source.h"

#define RREC_LUA_NUM_(x) #x
#define RREC_LUA_NUM(x) RREC_LUA_NUM_(x) /* a C constant in Lua's text */

/* Lua shared by every script that writes a record: FINAL (the final
 * states), NUM (numeric fields), typeok(key, want) -> ok, actual type,
 * hfields(key, field...) -> HMGET's answer, or nil and the key's type
 * when it is not a hash (one call where TYPE + HMGET were two),
 * publish_fields(t, channel) (the record t, field -> value, as a JSON
 * object in status_to_json's order, numbers as numbers), publish(key,
 * channel) (the hash as it is now, read back), fields_of(a, i) (the
 * field/value pairs of array a from index i, ARGV's say, as such a table)
 * entry_id(eid, fl) (the job id of the stream entry eid with fields fl,
 * take_entry's rule: its first id field when that is 1..ID_MAX bytes of
 * the id alphabet, else eid; and false as a second value when that field
 * is there but not valid: the replica rejects such an entry), and runs(LP,
 * wk, Q, G, id): does replica wk run job id, for the checks that leave a
 * copy to "another live replica" (a duplicate): wk's lease key LP..wk
 * exists and, on a stream Q (group G; Q nil for a list), an entry of the
 * job (entry_id) is pending with wk. A stream replica's lease alone does not say it: its
 * claim script, re-sent after a lost reply, sets its lease again after
 * the entry it began may have been taken over (tests/model, the
 * mutant BUG_RUNS_LEASE). A list replica never claims again after its
 * begin, so its lease is enough there. A script that replaces
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
    "local function entry_id(eid, fl)\n"                                                          \
    "  for i = 1, #fl - 1, 2 do\n"                                                                \
    "    if fl[i] == 'id' then\n"                                                                 \
    "      local v = fl[i + 1]\n"                                                                 \
    "      if #v <= " RREC_LUA_NUM(ID_MAX) " and string.find(v, '^[A-Za-z0-9._:%-]+$') then return v, true end\n" \
    "      return eid, false\n"                                                                   \
    "    end\n"                                                                                   \
    "  end\n"                                                                                     \
    "  return eid, true\n"                                                                        \
    "end\n"                                                                                       \
    "local function runs(LP, wk, Q, G, id)\n"                                                      \
    "  if wk == '' or redis.call('EXISTS', LP .. wk) == 0 then return false end\n"                \
    "  if not Q then return true end\n"                                                           \
    "  local ps = redis.pcall('XPENDING', Q, G, '-', '+', 10, wk)\n"                               \
    "  if type(ps) ~= 'table' or ps.err then return false end\n"                                  \
    "  for _, p in ipairs(ps) do\n"                                                               \
    "    local e = redis.call('XRANGE', Q, p[1], p[1])[1]\n"                                       \
    "    if e and entry_id(p[1], e[2]) == id then return true end\n"                              \
    "  end\n"                                                                                     \
    "  return false\n"                                                                            \
    "end\n"                                                                                       \
    "local function fields_of(a, from)\n"                                                          \
    "  local o = {}\n"                                                                             \
    "  for i = from, #a - 1, 2 do o[a[i]] = a[i + 1] end\n"                                        \
    "  return o\n"                                                                                 \
    "end\n"

/* Lua: the begin step as a function, shared by BEGIN (record.c) and the
 * stream's claim script, which begins the entry it takes in the same
 * script (consumer/README.md "Steps"). Needs RREC_LUA_PRELUDE.
 *
 *   begin(id, k, mark, result, kind, held, group, entry, W, LP, ttl, ch,
 *         now, head, tail, fl)
 *
 * id the job; k, mark, result: its record, cancel mark and result keys;
 * kind "list" (held: our processing list), "stream" (held: the stream;
 * group, entry: our pending entry), "taken" (held, group: the stream; the
 * caller took the entry in this script: nothing to check) or "none" (no
 * copy Redis can see); W us, LP the lease keys' prefix (P:lease:);
 * ttl, ch, now (ISO 8601); head and tail the "running" event's JSON before
 * and after the fence's value (the client writes it: Lua's JSON cost a
 * third of the script); fl the "running" record's field/value pairs (no
 * fence). {'run', fence} | {'done', state} | {'cancelled', fence} |
 * {'duplicate', worker} | {'lost', ''} | {'poison', why}. A re-send finds
 * its own running record and answers 'run' with the same fence. A job
 * cancelled before any replica met it gets this one's attempt, worker,
 * source and queue (the fields it lacks) with its 'done'. A new attempt
 * drops an earlier attempt's result (a string: another type is left to
 * FINAL's poison check), so a result key always belongs to the record
 * that names it (result_bytes). A first delivery (no record, no cancel
 * mark, no result: one EXISTS) skips those three looks. */
#define RREC_BEGIN_LUA_FN                                                                          \
    "local function begin(id, k, mark, result, kind, held, group, entry, W, LP, ttl, ch, now, head, tail, fl)\n" \
    "  local r, t = hfields(k, 'state', 'worker', 'fence')\n"                                        \
    "  if not r then return {'poison', k .. ' holds a ' .. t .. ', not a hash'} end\n"              \
    "  if kind == 'list' then\n"                                                                   \
    "    if redis.call('LLEN', held) == 0 then return {'lost', ''} end\n"                          \
    "  elseif kind == 'stream' then\n"                                                             \
    "    local p = redis.call('XPENDING', held, group, entry, entry, 1)\n"                         \
    "    if not p[1] or p[1][2] ~= W then return {'lost', ''} end\n"                               \
    "  end\n"                                                                                      \
    "  local st, wk, f = r[1] or '', r[2] or '', tonumber(r[3] or '0') or 0\n"                     \
    "  if FINAL[st] then\n"                                                                        \
    "    if st == 'cancelled' and wk == '' then\n"                                                 \
    "      local keep = {attempt = true, worker = true, source = true, queue = true}\n"            \
    "      for i = 1, #fl - 1, 2 do\n"                                                             \
    "        if keep[fl[i]] then redis.call('HSETNX', k, fl[i], fl[i + 1]) end\n"                  \
    "      end\n"                                                                                  \
    "    end\n"                                                                                    \
    "    return {'done', st}\n"                                                                    \
    "  end\n"                                                                                      \
    "  if st == 'running' and wk == W then return {'run', tostring(f)} end\n"                      \
    "  local sq = (kind == 'stream' or kind == 'taken') and held or nil\n"                         \
    "  if st == 'running' and runs(LP, wk, sq, group, id) then return {'duplicate', wk} end\n"     \
    "  f = f + 1\n"                                                                                \
    "  local cancelled = false\n"                                                                  \
    "  if r[1] or r[2] or r[3] or redis.call('EXISTS', k, mark, result) > 0 then\n"                \
    "    cancelled = redis.call('EXISTS', mark) == 1\n"                                            \
    "    local old_result = redis.call('TYPE', result).ok == 'string'\n"                           \
    "    redis.call('DEL', k)\n"                                                                   \
    "    if old_result then redis.call('DEL', result) end\n"                                       \
    "  end\n"                                                                                      \
    "  redis.call('HSET', k, 'fence', f, unpack(fl))\n"                                            \
    "  if cancelled then\n"                                                                        \
    "    redis.call('HSET', k, 'state', 'cancelled', 'exit_code', 0,\n"                            \
    "               'error', 'cancelled before it ran', 'finished_at', now)\n"                     \
    "    redis.call('HDEL', k, 'started_at', 'heartbeat_at')\n"                                    \
    "    redis.call('EXPIRE', k, ttl)\n"                                                           \
    "    local rec = fields_of(fl, 1)\n"                                                           \
    "    rec.fence, rec.state, rec.exit_code, rec.error = tostring(f), 'cancelled', '0', 'cancelled before it ran'\n" \
    "    rec.finished_at, rec.started_at, rec.heartbeat_at = now, nil, nil\n"                      \
    "    publish_fields(rec, ch)\n"                                                                \
    "  else\n"                                                                                     \
    "    redis.call('PUBLISH', ch, head .. tostring(f) .. tail)\n"                                 \
    "  end\n"                                                                                      \
    "  return {cancelled and 'cancelled' or 'run', tostring(f)}\n"                                 \
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

/* For a claim script that begins the copy it takes (RREC_BEGIN_LUA_FN,
 * the redis-stream claim): begin()'s arguments from ttl on, for the
 * "running" record run, whose id is "" and attempt 0 (the script knows
 * them, and writes them in); its started_at is the script's now. */
void rrec_begin_args(rargs *a, const char *prefix, int ttl, const status_rec *run);

/* begin()'s {word, text} answer: enum begin_rc, with *fence (BEGIN_RUN,
 * BEGIN_CANCELLED) or info set; BEGIN_ERR for anything else. */
int rrec_begin_answer(const redisReply *r, int64_t *fence, char *info, size_t n);

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
