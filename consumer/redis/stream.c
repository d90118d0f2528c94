/* redis/stream.c -- one entry of a Redis stream through a consumer
 * group.
 *
 * Entries carry fields: input (required), id (default: the entry id),
 * deadline_s, and attempt (set by oneshot on a retry). The group is created
 * at the start of the stream (XGROUP CREATE Q G 0 MKSTREAM) so entries
 * added before the first replica ran are served; it is created when a
 * claim finds it missing (the first replica, or after someone deleted it),
 * not at every start. The consumer is this replica's id.
 *
 * Claim, one script (STREAM_CLAIM_LUA): first an entry this consumer
 * already holds (a read whose reply was lost), then an entry idle longer
 * than --lease whose owner's lease key P:lease:W' is gone (its replica died:
 * XCLAIM), then a new entry (XREADGROUP COUNT 1 without BLOCK), so a
 * replica with work waiting claims in one round trip (the first claim's
 * script also deletes the consumers of killed replicas); with --store
 * redis the same script begins the entry it takes (the record's begin,
 * RREC_BEGIN_LUA_FN), so claim and begin are that one round trip. The
 * same script sets our lease key P:lease:W, renewed by the heartbeat only
 * while we still own the entry: so a live owner's entry is never taken
 * over, and, with the entries pending with it, the record's begin can tell
 * a live owner from a dead one (runs(), consumer/README.md).
 * Only when all that finds nothing does it wait with XREADGROUP COUNT 1
 * BLOCK. The attempt is the entry's attempt field plus its delivery count
 * minus one; beyond --max-attempts the entry goes to the dead-letter stream
 * and is acked without running (EXHAUSTED_LUA, with its record, in one
 * script), or only acked when its job is final or run by a live replica.
 *
 * Settling is one script (SETTLE_LUA), checking first that we still own
 * the entry and, with --store redis, that the record holds what our final
 * write put there under our fence: ack = XACK; retry = XADD a copy with
 * attempt + 1 (same id field), then XACK; dead = XADD to the dead-letter
 * stream (the original fields, plus error, state, attempts, entry, worker,
 * failed_at), then XACK; release (SIGTERM) = XCLAIM to ourselves with a
 * huge IDLE and the delivery count lowered by one, and our lease dropped,
 * so the next replica takes it at once and the interrupted delivery is not
 * counted. A dead-letter key of the wrong type leaves the entry pending
 * with the consumer "quarantine" (XPENDING Q G - + 10 quarantine lists
 * them). After an XACK the consumer is deleted when it holds nothing;
 * consumers left by killed replicas are deleted at start once idle for a
 * minute with nothing pending.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/buf.h"
#include "../../common/clock.h"
#include "../../common/log.h"
#include "conn.h"
#include "record.h"
#include "../replica.h"
#include "janitor.h"
#include "../source.h"
#include "../store.h"
#include "../seam.h"

#define DEAD_MAX 100                       /* exhausted entries settled per claim call */
#define CONSUMER_GC_IDLE_MS "60000"        /* idle, nothing pending: a dead replica's consumer */
#define RELEASE_IDLE_MS "100000000000"     /* a released entry looks idle for ~3 years */

typedef struct sjob {
    char entry[64];
    long long deliveries;
    redisReply *fields; /* the entry's field/value array, owned */
    int begun;          /* the claim script began it: begin's answer (claim_proof) */
    int begin_rc;
    int64_t fence;
    int64_t begun_at;
    char info[400];
} sjob;

typedef struct ssrc {
    const config *cfg;
    rconn *c;
    char me[128];
    char lease_ms[24];
    char lease[512]; /* P:lease:W */
    char lease_prefix[512]; /* P:lease: */
    int use_status;
    int read;    /* a read or claim was attempted: the consumer exists */
    int started; /* the first claim ran: the clean-up is done, the group was there */
    sjob *cur;   /* the claimed entry */
    int64_t claim_at; /* the time the last claim script was sent: a begin's started_at */
    outcome staged; /* what the settle riding behind the final record is for */
} ssrc;

#define QUARANTINE "quarantine" /* the consumer that keeps entries nobody could move */

/* KEYS: stream. ARGV: group, consumer, lease ms, our lease key, the lease
 * key prefix, the clean-up's idle ms ('0': none), begin here (0/1), then
 * when 1: --max-attempts, --max-input, P, and begin()'s arguments from ttl
 * on (rrec_begin_args). {gone, entry id, fields, deliveries} of our own
 * pending entry, of one taken over from a dead owner, or of a new one
 * read (XREADGROUP without BLOCK: the common case is one round trip), or
 * {gone} when there is none; gone = the consumers of killed replicas
 * deleted first (the first claim's clean-up: nothing pending, idle longer
 * than that; best effort: its calls are pcalls, so nothing in it fails the
 * claim, and a missing group is the XPENDING's NOGROUP).
 *
 * With begin here, the entry taken is begun in the same script (begin(),
 * RREC_BEGIN_LUA_FN: its record "running" with a new fence, or why not),
 * and the answer has three more elements: begin's word and text and the
 * job id it used. Only an entry the replica will run is begun: its input
 * present and within --max-input, its id field absent or valid
 * (entry_id(), RREC_LUA_PRELUDE), its attempt and
 * deadline_s fields absent or plain decimal numbers in range, the attempt
 * (attempt field + deliveries - 1) within --max-attempts: the same rules
 * as take_entry's, or stricter (a leading zero, a sign), so any entry
 * begun here is one take_entry accepts; one that is not begun here is
 * rejected, dead-lettered, or begun by BEGIN as before.
 *
 * Safe to re-send: an entry read by a run whose reply was lost is our own
 * pending entry for the next, whose begin finds its own running record
 * (the same fence), and a consumer deleted is gone for the re-run too. */
static const char STREAM_CLAIM_LUA[] =
    "--oneshot:STREAM_CLAIM\n"
    RREC_LUA_PRELUDE
    RREC_BEGIN_LUA_FN
    "local function num(v, max)\n"
    "  return v and string.find(v, '^[1-9]%d*$') and #v <= #max and tonumber(v) <= tonumber(max)\n"
    "end\n"
    "local function fuse(eid, fl, dl)\n"
    "  if ARGV[7] ~= '1' then return nil end\n"
    "  local id, ok = entry_id(eid, fl)\n"
    "  if not ok then return nil end\n"
    "  local v = {}\n"
    "  for i = 1, #fl - 1, 2 do\n"
    "    local n = fl[i]\n"
    "    if (n == 'input' or n == 'attempt' or n == 'deadline_s') and not v[n] then v[n] = fl[i + 1] end\n"
    "  end\n"
    "  if not v.input or #v.input > tonumber(ARGV[9]) then return nil end\n"
    "  if (v.attempt and not num(v.attempt, '1000000')) or (v.deadline_s and not num(v.deadline_s, '100000000')) then\n"
    "    return nil\n"
    "  end\n"
    "  local a = tostring((tonumber(v.attempt) or 1) + math.max(dl, 1) - 1)\n"
    "  if tonumber(a) > tonumber(ARGV[8]) then return nil end\n"
    "  local P = ARGV[10]\n"
    "  return begin(id, P .. ':job:' .. id, P .. ':cancel:' .. id, P .. ':result:' .. id, 'taken', KEYS[1], ARGV[1], '',\n"
    "               ARGV[2], ARGV[5], ARGV[11], ARGV[12], ARGV[13],\n"
    "               '{\"id\":\"' .. id .. '\",\"state\":\"running\",\"attempt\":' .. a .. ARGV[14], ARGV[15],\n"
    "               {'id', id, 'attempt', a, unpack(ARGV, 16)}), id\n"
    "end\n"
    "local function taken(gone, eid, fl, dl)\n"
    "  local b, id = fuse(eid, fl, dl)\n"
    "  if b then return {gone, eid, fl, dl, b[1], b[2], id} end\n"
    "  return {gone, eid, fl, dl}\n"
    "end\n"
    "local gone = 0\n"
    "local cs = ARGV[6] ~= '0' and redis.pcall('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])\n"
    "if cs and not cs.err then\n"
    "  for _, c in ipairs(cs) do\n"
    "    local f = {}\n"
    "    for i = 1, #c, 2 do f[c[i]] = c[i + 1] end\n"
    "    if f['pending'] == 0 and (tonumber(f['idle']) or 0) > tonumber(ARGV[6]) and type(f['name']) == 'string' then\n"
    "      if type(redis.pcall('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], f['name'])) == 'number' then gone = gone + 1 end\n"
    "    end\n"
    "  end\n"
    "end\n"
    "local own = redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2])\n"
    "redis.call('SET', ARGV[4], '1', 'PX', ARGV[3])\n"
    "if own[1] then\n"
    "  local id = own[1][1]\n"
    "  local e = redis.call('XRANGE', KEYS[1], id, id)\n"
    "  if e[1] then return taken(gone, id, e[1][2], own[1][4]) end\n"
    "  redis.call('XACK', KEYS[1], ARGV[1], id)\n"
    "  return {gone}\n"
    "end\n"
    "for _, p in ipairs(redis.call('XPENDING', KEYS[1], ARGV[1], 'IDLE', ARGV[3], '-', '+', 50)) do\n"
    "  if p[2] ~= ARGV[2] and p[2] ~= '" QUARANTINE "' and redis.call('EXISTS', ARGV[5] .. p[2]) == 0 then\n"
    "    local e = redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[3], p[1])[1]\n"
    "    if e then return taken(gone, e[1], e[2], p[4] + 1) end\n"
    "    redis.call('XACK', KEYS[1], ARGV[1], p[1])\n"
    "  end\n"
    "end\n"
    "local r = redis.call('XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', 1, 'STREAMS', KEYS[1], '>')\n"
    "local e = r and r[1][2][1]\n"
    "if e then return taken(gone, e[1], e[2], 1) end\n"
    "return {gone}\n";

/* KEYS: stream. ARGV: group, consumer, entry id, lease ms, our lease key.
 * 1 renewed, 0 gone (acked or deleted), -1 another consumer owns it. */
static const char HEARTBEAT_LUA[] =
    "--oneshot:STREAM_HEARTBEAT\n"
    "local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1)\n"
    "if not p[1] then return 0 end\n"
    "if p[1][2] ~= ARGV[2] then return -1 end\n"
    "redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[3], 'JUSTID')\n"
    "redis.call('SET', ARGV[5], '1', 'PX', ARGV[4])\n"
    "return 1\n";

/* KEYS: stream, target stream, record. ARGV: group, consumer, entry id,
 * ack|xadd|release, idle ms, retry count, our lease key, fence ('0': no
 * record check), the state the record must hold, then XADD field/value
 * pairs. 1 settled; 0 the entry is no longer ours (nothing done; a re-sent
 * settle finds this too); -1 the record does not hold what we wrote
 * (nothing done); -2 the target is not a stream (the entry moved to the
 * quarantine consumer). */
static const char SETTLE_LUA[] =
    "--oneshot:STREAM_SETTLE\n"
    "local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1)\n"
    "if not p[1] or p[1][2] ~= ARGV[2] then return 0 end\n"
    "if ARGV[8] ~= '0' then\n"
    "  local r = redis.pcall('HMGET', KEYS[3], 'fence', 'state')\n"
    "  if r.err or r[1] ~= ARGV[8] or r[2] ~= ARGV[9] then return -1 end\n"
    "end\n"
    "if ARGV[4] == 'xadd' then\n"
    "  local t = redis.call('TYPE', KEYS[2]).ok\n"
    "  if t ~= 'stream' and t ~= 'none' then\n"
    "    redis.call('XCLAIM', KEYS[1], ARGV[1], '" QUARANTINE "', 0, ARGV[3], 'JUSTID')\n"
    "    return -2\n"
    "  end\n"
    "  redis.call('XADD', KEYS[2], '*', unpack(ARGV, 10))\n"
    "end\n"
    "if ARGV[4] == 'release' then\n"
    "  redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[3], 'IDLE', ARGV[5], 'RETRYCOUNT', ARGV[6], 'JUSTID')\n"
    "  redis.call('DEL', ARGV[7])\n"
    "  return 1\n"
    "end\n"
    "redis.call('XACK', KEYS[1], ARGV[1], ARGV[3])\n"
    "redis.call('DEL', ARGV[7])\n"
    "if not redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2])[1] then\n"
    "  redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])\n"
    "end\n"
    "return 1\n";

/* An entry delivered more often than --max-attempts. KEYS: stream, dead
 * stream, record. ARGV: group, consumer, entry id, lease key prefix, use
 * the record (0/1), ttl, channel, N, then N record field/value strings
 * (pairs_record's: "id" and the job id first, so ARGV[10] is the job id),
 * then the dead letter's XADD pairs. 1 dead-lettered (the record "dead",
 * a new fence; a record already dead or rejected is left as it is: this
 * copy may be the one whose dead letter was never pushed), 2 only acked
 * (the job is otherwise final, or a live replica runs it), 0 no longer
 * ours, -2 the dead-letter key is not a stream (the entry
 * moved to the quarantine consumer). */
static const char EXHAUSTED_LUA[] =
    "--oneshot:EXHAUSTED\n"
    RREC_LUA_PRELUDE
    "local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1)\n"
    "if not p[1] or p[1][2] ~= ARGV[2] then return 0 end\n"
    "local n, rec, use = tonumber(ARGV[8]), {}, ARGV[5] == '1' and typeok(KEYS[3], 'hash')\n"
    "for i = 9, 8 + n do rec[#rec + 1] = ARGV[i] end\n"
    "if use then\n"
    "  local r = redis.call('HMGET', KEYS[3], 'state', 'worker')\n"
    "  local live = r[1] == 'running' and r[2] and r[2] ~= ARGV[2] and runs(ARGV[4], r[2], KEYS[1], ARGV[1], ARGV[10])\n"
    "  local dead = r[1] == 'dead' or r[1] == 'rejected'\n"
    "  if (FINAL[r[1] or ''] and not dead) or live then\n"
    "    redis.call('XACK', KEYS[1], ARGV[1], ARGV[3])\n"
    "    return 2\n"
    "  end\n"
    "  if dead then use = false end\n"
    "end\n"
    "if not typeok(KEYS[2], 'stream') then\n"
    "  redis.call('XCLAIM', KEYS[1], ARGV[1], '" QUARANTINE "', 0, ARGV[3], 'JUSTID')\n"
    "  return -2\n"
    "end\n"
    "redis.call('XADD', KEYS[2], '*', unpack(ARGV, 9 + n))\n"
    "redis.call('XACK', KEYS[1], ARGV[1], ARGV[3])\n"
    "if use then\n"
    "  local f = (tonumber(redis.call('HGET', KEYS[3], 'fence') or '0') or 0) + 1\n"
    "  redis.call('HSET', KEYS[3], 'fence', f, unpack(rec))\n"
    "  redis.call('EXPIRE', KEYS[3], ARGV[6])\n"
    "  publish(KEYS[3], ARGV[7])\n"
    "end\n"
    "return 1\n";

/* KEYS: stream. ARGV: group, consumer. Delete our consumer if it holds nothing. */
static const char TIDY_LUA[] =
    "--oneshot:STREAM_TIDY\n"
    "if redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2])[1] then return 0 end\n"
    "redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])\n"
    "return 1\n";

static void sjob_free(sjob *sj) {
    if (!sj) return;
    if (sj->fields) freeReplyObject(sj->fields);
    free(sj);
}

/* A field name is all its bytes: "id\0x" is not "id". */
static int field_is(const redisReply *k, const char *name) {
    return k->type == REDIS_REPLY_STRING && k->len == strlen(name) && memcmp(k->str, name, k->len) == 0;
}

/* The first field's value of that name, or NULL. */
static const redisReply *field_get(const redisReply *fields, const char *name) {
    if (!fields || fields->type != REDIS_REPLY_ARRAY) return NULL;
    for (size_t i = 0; i + 1 < fields->elements; i += 2)
        if (field_is(fields->element[i], name)) return fields->element[i + 1];
    return NULL;
}

/* A whole number in [min, max] from a field, else -1. */
static int field_int(const redisReply *v, int min, int max, int *out) {
    char *end;
    if (!v || v->type != REDIS_REPLY_STRING || !v->len) return -1;
    long x = strtol(v->str, &end, 10);
    if (*end || x < min || x > max) return -1;
    *out = (int)x;
    return 0;
}

/* No round trip of its own: the group is created when the first claim
 * finds it missing, and the first claim's script deletes the consumers of
 * killed replicas. */
static int stream_open(const config *cfg, void **state, char *err, size_t errlen) {
    ssrc *s = xcalloc(1, sizeof(*s));
    char who[200];

    s->cfg = cfg;
    snprintf(s->me, sizeof(s->me), "%s", replica_id());
    snprintf(s->lease_ms, sizeof(s->lease_ms), "%lld", (long long)cfg->lease * 1000);
    rkey(s->lease, sizeof(s->lease), cfg->prefix, "lease", s->me);
    rkey(s->lease_prefix, sizeof(s->lease_prefix), cfg->prefix, "lease", "");
    s->use_status = strcmp(cfg->store, store_redis.name) == 0;
    snprintf(who, sizeof(who), "src:%s", s->me);
    s->c = rconn_share(cfg->redis_url, who, err, errlen);
    if (!s->c) {
        free(s);
        s = NULL;
    }
    *state = s;
    return s ? 0 : -1;
}

/* XADD field/value pairs (rargs): the entry's fields except id and
 * attempt, then id = the job id, then extra pairs. A rejected entry's
 * dead letter keeps the producer's id field as it was sent (an invalid
 * one is why it was rejected; the job is then recorded under the entry
 * id, the dead letter's `entry`). */
static void pairs_entry_id(rargs *p, const sjob *sj, const char *job_id, int rejected) {
    const redisReply *pid = rejected ? field_get(sj->fields, "id") : NULL;
    rargs_str(p, "id");
    if (pid && pid->type == REDIS_REPLY_STRING)
        rargs_add(p, pid->str, pid->len, 0);
    else
        rargs_str(p, job_id);
    const redisReply *f = sj->fields;
    if (!f || f->type != REDIS_REPLY_ARRAY) return;
    for (size_t i = 0; i + 1 < f->elements; i += 2) {
        const redisReply *k = f->element[i], *v = f->element[i + 1];
        if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING) continue;
        if (field_is(k, "id") || field_is(k, "attempt")) continue;
        rargs_add(p, k->str, k->len, 0);
        rargs_add(p, v->str, v->len, 0);
    }
}

static void pairs_entry(rargs *p, const sjob *sj, const char *job_id) { pairs_entry_id(p, sj, job_id, 0); }

static void pairs_dead(rargs *p, const ssrc *s, const sjob *sj, const char *state, const char *error, int attempts) {
    char at[40], n[24];
    rargs_str(p, "error");
    rargs_copy(p, error ? error : "");
    rargs_str(p, "state");
    rargs_copy(p, state);
    rargs_str(p, "attempts");
    snprintf(n, sizeof(n), "%d", attempts);
    rargs_copy(p, n);
    rargs_str(p, "entry");
    rargs_copy(p, sj->entry);
    rargs_str(p, "stream");
    rargs_str(p, s->cfg->queue);
    rargs_str(p, "worker");
    rargs_str(p, s->me);
    rargs_str(p, "failed_at");
    rargs_copy(p, clock_iso8601(clock_wall_ms(), at, sizeof(at)));
}

/* A settle's reply (freed): its answer, or -3 (unreachable or refused). */
static int settle_result(redisReply *r, char *err, size_t errlen) {
    if (!r) return -3;
    int rc = rreply_check(r, "settle", err, errlen) < 0 ? -3 : (int)r->integer;
    freeReplyObject(r);
    return rc;
}

/* Run SETTLE_LUA. mode ack|xadd|release; fields for xadd; fence > 0:
 * the record must hold state under it. 1 settled, 0 not ours, -1 the
 * record does not say what we wrote, -2 the target is not a stream, -3
 * unreachable. rider: only queue it behind the final record (0). */
static int settle(ssrc *s, const sjob *sj, const char *job_id, const char *mode, const char *target, rargs *fields,
                  int64_t fence, const char *state, int rider, char *err, size_t errlen) {
    rargs a;
    char retry[24], rk[512], fence_s[24];
    memset(&a, 0, sizeof(a));
    snprintf(retry, sizeof(retry), "%lld", sj->deliveries > 0 ? sj->deliveries - 1 : 0);
    snprintf(fence_s, sizeof(fence_s), "%lld", s->use_status ? (long long)fence : 0LL);
    rkey(rk, sizeof(rk), s->cfg->prefix, "job", job_id);
    rargs_str(&a, "EVAL");
    rargs_add(&a, SETTLE_LUA, sizeof(SETTLE_LUA) - 1, 0);
    rargs_str(&a, "3");
    rargs_str(&a, s->cfg->queue);
    rargs_str(&a, target);
    rargs_str(&a, rk);
    rargs_str(&a, s->cfg->group);
    rargs_str(&a, s->me);
    rargs_str(&a, sj->entry);
    rargs_str(&a, mode);
    rargs_str(&a, RELEASE_IDLE_MS);
    rargs_str(&a, retry);
    rargs_str(&a, s->lease);
    rargs_str(&a, fence_s);
    rargs_str(&a, state ? state : "");
    for (int i = 0; fields && i < fields->n; i++) rargs_add(&a, fields->v[i], fields->len[i], 0);
    if (rider) {
        rconn_ride(s->c, a.n, a.v, a.len);
        rargs_free(&a);
        return 0;
    }
    redisReply *r = rconn_cmdv(s->c, RC_RETRY, err, errlen, a.n, a.v, a.len);
    rargs_free(&a);
    return settle_result(r, err, errlen);
}

/* The record a dead-lettered exhausted entry gets (state dead), or a
 * swept one (interrupted, dead). The worker is s->me. */
static void pairs_record(rargs *p, const ssrc *s, const char *job_id, const char *state, const char *why,
                         int attempts) {
    char at[40], n[24];
    snprintf(n, sizeof(n), "%d", attempts);
    rargs_str(p, "id");
    rargs_copy(p, job_id);
    rargs_str(p, "state");
    rargs_str(p, state);
    rargs_str(p, "attempt");
    rargs_copy(p, n);
    rargs_str(p, "worker");
    rargs_str(p, s->me);
    rargs_str(p, "source");
    rargs_str(p, source_redis_stream.name);
    rargs_str(p, "queue");
    rargs_str(p, s->cfg->queue);
    rargs_str(p, "error");
    rargs_copy(p, why);
    if (!status_is_final(state)) return;
    rargs_str(p, "finished_at");
    rargs_copy(p, clock_iso8601(clock_wall_ms(), at, sizeof(at)));
}

/* An entry delivered more often than --max-attempts: dead-letter it with
 * its record (or just ack it when its job is final or run by a live
 * replica) without running it, in one script (EXHAUSTED_LUA). */
static int settle_exhausted(ssrc *s, sjob *sj, const char *job_id, int attempt, char *err, size_t errlen) {
    char why[400], rk[512], ttl[24], channel[300], n[24];
    rargs a, rec, dl;
    memset(&a, 0, sizeof(a));
    memset(&rec, 0, sizeof(rec));
    memset(&dl, 0, sizeof(dl));
    snprintf(why, sizeof(why),
             "attempt %d was interrupted (its replica stopped renewing the claim) and --max-attempts %d is reached",
             attempt - 1, s->cfg->max_attempts);
    rkey(rk, sizeof(rk), s->cfg->prefix, "job", job_id);
    snprintf(ttl, sizeof(ttl), "%d", s->cfg->result_ttl);
    rkey_events(channel, sizeof(channel), s->cfg->prefix);
    pairs_record(&rec, s, job_id, ST_DEAD, why, attempt - 1);
    pairs_entry(&dl, sj, job_id);
    pairs_dead(&dl, s, sj, ST_DEAD, why, attempt - 1);
    snprintf(n, sizeof(n), "%d", rec.n);
    rargs_str(&a, "EVAL");
    rargs_add(&a, EXHAUSTED_LUA, sizeof(EXHAUSTED_LUA) - 1, 0);
    rargs_str(&a, "3");
    rargs_str(&a, s->cfg->queue);
    rargs_str(&a, s->cfg->dead_letter);
    rargs_str(&a, rk);
    rargs_str(&a, s->cfg->group);
    rargs_str(&a, s->me);
    rargs_str(&a, sj->entry);
    rargs_str(&a, s->lease_prefix);
    rargs_str(&a, s->use_status ? "1" : "0");
    rargs_str(&a, ttl);
    rargs_str(&a, channel);
    rargs_str(&a, n);
    for (int i = 0; i < rec.n; i++) rargs_add(&a, rec.v[i], rec.len[i], 0);
    for (int i = 0; i < dl.n; i++) rargs_add(&a, dl.v[i], dl.len[i], 0);
    redisReply *r = rconn_cmdv(s->c, RC_RETRY, err, errlen, a.n, a.v, a.len);
    rargs_free(&a);
    rargs_free(&rec);
    rargs_free(&dl);
    if (!r) return -1;
    int rc = -1;
    if (rreply_check(r, "dead letter", err, errlen) == 0) {
        rc = 0;
        if (r->integer == 1)
            log_warn("entry %s (job %s) dead-lettered to %s: %s", sj->entry, job_id, s->cfg->dead_letter, why);
        else if (r->integer == 2)
            log_info("entry %s: job %s is final or run by a live replica: acknowledging the re-delivery", sj->entry,
                     job_id);
        else if (r->integer == -2)
            log_error("entry %s (job %s) left pending with consumer " QUARANTINE ": %s is not a stream (fix it, "
                      "then XCLAIM it back or XACK it by hand)", sj->entry, job_id, s->cfg->dead_letter);
    }
    freeReplyObject(r);
    return rc;
}

/* The fields an entry may carry: the producer's, then what oneshot adds
 * on a re-queue or a dead letter (which a re-drive brings back). */
static const char *const ENTRY_FIELDS[] = {"input", "id", "deadline_s", "attempt", "error", "state",
                                           "attempts", "entry", "stream", "worker", "failed_at", NULL};

static void note_unknown_fields(const redisReply *fields, job *j) {
    if (!fields || fields->type != REDIS_REPLY_ARRAY) return;
    for (size_t i = 0; i + 1 < fields->elements; i += 2) {
        const redisReply *k = fields->element[i];
        if (k->type != REDIS_REPLY_STRING) continue;
        int known = 0;
        for (int f = 0; ENTRY_FIELDS[f] && !known; f++) known = field_is(k, ENTRY_FIELDS[f]);
        if (!known) job_note_unknown(j, "stream", k->str, k->len);
    }
}

/* What the claim script's begin answered (r: its reply with the 7
 * elements of a begun entry; else nothing is kept), for the job j made of
 * the entry: kept only when the script began the same job id as
 * take_entry's, which its rules make certain (STREAM_CLAIM_LUA). */
static void keep_begun(ssrc *s, sjob *sj, const job *j, const redisReply *r) {
    if (!r || r->elements != 7) return;
    redisReply pair = {.type = REDIS_REPLY_ARRAY, .elements = 2, .element = r->element + 4};
    const redisReply *id = r->element[6];
    int rc = rrec_begin_answer(&pair, &sj->fence, sj->info, sizeof(sj->info));
    if (rc == BEGIN_ERR || id->type != REDIS_REPLY_STRING || strcmp(id->str, j->id) != 0 || strlen(id->str) != id->len) {
        log_error("entry %s: the claim script began job %s, this replica reads job %s: beginning it again (a bug: "
                  "please report it)", sj->entry, id->type == REDIS_REPLY_STRING ? id->str : "?", j->id);
        return;
    }
    sj->begun = 1;
    sj->begin_rc = rc;
    sj->begun_at = s->claim_at;
}

/* Make the job from an entry now pending with us. Takes the fields reply;
 * r: the claim script's reply, for what its begin answered (or NULL). */
static int take_entry(ssrc *s, const char *entry, redisReply *fields, long long deliveries, const redisReply *r,
                      job *j, int *http_status, char *err, size_t errlen) {
    sjob *sj = xcalloc(1, sizeof(*sj));
    int field_attempt = 1;
    snprintf(sj->entry, sizeof(sj->entry), "%s", entry);
    sj->fields = fields;
    sj->deliveries = deliveries > 0 ? deliveries : 1;

    const redisReply *id = field_get(fields, "id");
    const redisReply *in = field_get(fields, "input");
    const redisReply *dl = field_get(fields, "deadline_s");
    const redisReply *at = field_get(fields, "attempt");
    int id_ok = id && id->type == REDIS_REPLY_STRING && id_valid(id->str, id->len);
    snprintf(j->id, sizeof(j->id), "%s", id_ok ? id->str : entry);
    if (at) field_int(at, 1, 1000000, &field_attempt);
    j->attempt = field_attempt + (int)(sj->deliveries - 1);
    if (in && in->type == REDIS_REPLY_STRING) job_set_input(j, in->str, in->len);
    note_unknown_fields(fields, j);

    if (j->attempt > s->cfg->max_attempts) {
        int rc = settle_exhausted(s, sj, j->id, j->attempt, err, errlen);
        sjob_free(sj);
        job_free(j);
        memset(j, 0, sizeof(*j));
        return rc < 0 ? CLAIM_ERR : CLAIM_NONE;
    }
    s->cur = sj;
    j->src_data = sj;
    keep_begun(s, sj, j, r);
    *http_status = 422;
    if (!in || in->type != REDIS_REPLY_STRING) {
        snprintf(err, errlen, "stream entry %s has no \"input\" field", entry);
        return CLAIM_REJECT;
    }
    if (id && !id_ok) {
        snprintf(err, errlen, "stream entry: \"id\" must be 1..%d characters of [A-Za-z0-9._:-]", ID_MAX);
        return CLAIM_REJECT;
    }
    if (dl && field_int(dl, 1, 100000000, &j->deadline_s) < 0) {
        snprintf(err, errlen, "stream entry: \"deadline_s\" must be a positive whole number of seconds");
        return CLAIM_REJECT;
    }
    if (at && field_int(at, 1, 1000000, &field_attempt) < 0) {
        snprintf(err, errlen, "stream entry: \"attempt\" must be a positive whole number");
        return CLAIM_REJECT;
    }
    if ((int64_t)in->len > s->cfg->max_input) {
        *http_status = 413;
        snprintf(err, errlen, "input of %zu bytes exceeds --max-input %lld", in->len, (long long)s->cfg->max_input);
        return CLAIM_REJECT;
    }
    return CLAIM_OK;
}

/* Detach element i of an array reply so it outlives the reply. */
static redisReply *steal(redisReply *arr, size_t i) {
    redisReply *e = arr->element[i];
    arr->element[i] = NULL;
    return e;
}

/* The group is missing: create it at the start of the stream (entries
 * added before the first replica ran are served). */
static int ensure_group(ssrc *s, char *err, size_t errlen) {
    redisReply *r = rconn_cmd(s->c, RC_RETRY, err, errlen, "XGROUP CREATE %s %s 0 MKSTREAM", s->cfg->queue,
                              s->cfg->group);
    if (!r) return -1;
    int rc = 0;
    if (rreply_is_err(r) && strncmp(r->str, "BUSYGROUP", 9) != 0)
        rc = rreply_check(r, "XGROUP CREATE", err, errlen);
    else if (!s->started)
        log_info("created consumer group %s on %s", s->cfg->group, s->cfg->queue);
    else
        log_warn("consumer group %s on %s was missing: created it again", s->cfg->group, s->cfg->queue);
    freeReplyObject(r);
    return rc;
}

/* The claim script's arguments (STREAM_CLAIM_LUA), into a. The first
 * claim also deletes the consumers of killed replicas; with --store redis
 * the script begins the entry it takes, its record the "running" one the
 * lifecycle would write (s->claim_at: its started_at). */
static void claim_args(ssrc *s, rargs *a) {
    const char *argv[] = {"EVAL",   STREAM_CLAIM_LUA, "1",      s->cfg->queue,   s->cfg->group,
                          s->me,    s->lease_ms,      s->lease, s->lease_prefix, s->started ? "0" : CONSUMER_GC_IDLE_MS,
                          s->use_status ? "1" : "0"};
    memset(a, 0, sizeof(*a));
    for (size_t k = 0; k < sizeof(argv) / sizeof(argv[0]); k++) rargs_str(a, argv[k]);
    if (!s->use_status) return;
    char n[24];
    snprintf(n, sizeof(n), "%d", s->cfg->max_attempts);
    rargs_copy(a, n);
    snprintf(n, sizeof(n), "%lld", (long long)s->cfg->max_input);
    rargs_copy(a, n);
    rargs_str(a, s->cfg->prefix);
    status_rec run;
    status_init(&run);
    snprintf(run.state, sizeof(run.state), "%s", ST_RUNNING);
    snprintf(run.worker, sizeof(run.worker), "%s", s->me);
    snprintf(run.source, sizeof(run.source), "%s", source_redis_stream.name);
    snprintf(run.queue, sizeof(run.queue), "%s", s->cfg->queue);
    run.started_at = run.heartbeat_at = s->claim_at = clock_wall_ms();
    rrec_begin_args(a, s->cfg->prefix, s->cfg->result_ttl, &run);
}

static int stream_claim(void *state, int timeout_ms, job *j, int *http_status, char *err, size_t errlen) {
    ssrc *s = state;
    redisReply *r = NULL;
    int rc = CLAIM_ERR;

    s->read = 1;
    for (int i = 0; i < DEAD_MAX; i++) {
        rargs a;
        claim_args(s, &a);
        SEAM("claim");
        r = rconn_cmdv(s->c, RC_RETRY, err, errlen, a.n, a.v, a.len);
        rargs_free(&a);
        if (!r) return CLAIM_ERR;
        if (rreply_is_err(r) && strstr(r->str, "NOGROUP")) {
            freeReplyObject(r);
            r = NULL;
            if (ensure_group(s, err, errlen) < 0) return CLAIM_ERR;
            s->started = 1;
            continue;
        }
        s->started = 1;
        if (rreply_check(r, "claim", err, errlen) < 0) goto end;
        if (r->type != REDIS_REPLY_ARRAY || r->elements < 1) break;
        long long gone = rreply_int(r->element[0], 0);
        if (gone > 0)
            log_info("deleted %lld idle consumer(s) of killed replicas from group %s", gone, s->cfg->group);
        if (r->elements != 4 && r->elements != 7) break;
        long long deliveries = rreply_int(r->element[3], 1);
        char entry[64];
        snprintf(entry, sizeof(entry), "%s", r->element[1]->str);
        if (deliveries > 1) log_info("took over entry %s (delivery %lld: its claim had lapsed)", entry, deliveries);
        rc = take_entry(s, entry, steal(r, 2), deliveries, r, j, http_status, err, errlen);
        if (rc != CLAIM_NONE) goto end;
        freeReplyObject(r);
        r = NULL;
    }
    if (r) freeReplyObject(r);
    int ms = timeout_ms < 1 ? 1 : timeout_ms > RC_BLOCK_MAX_MS ? RC_BLOCK_MAX_MS : timeout_ms;
    /* Not re-sent on a lost connection: an entry delivered to us anyway
     * is found by the next call as our own pending entry. */
    r = rconn_cmd(s->c, 0, err, errlen, "XREADGROUP GROUP %s %s COUNT 1 BLOCK %d STREAMS %s >", s->cfg->group, s->me,
                  ms, s->cfg->queue);
    if (!r) {
        log_warn("claim: %s", err);
        return CLAIM_NONE;
    }
    if (rreply_is_err(r) && strstr(r->str, "NOGROUP")) {
        rc = ensure_group(s, err, errlen) < 0 ? CLAIM_ERR : CLAIM_NONE;
        goto end;
    }
    if (rreply_check(r, "XREADGROUP", err, errlen) < 0) goto end;
    rc = CLAIM_NONE;
    /* [[stream, [[id, fields]]]] */
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 1) goto end;
    redisReply *st = r->element[0];
    if (st->type != REDIS_REPLY_ARRAY || st->elements < 2 || st->element[1]->type != REDIS_REPLY_ARRAY ||
        st->element[1]->elements < 1)
        goto end;
    redisReply *e = st->element[1]->element[0];
    if (e->type != REDIS_REPLY_ARRAY || e->elements < 2 || e->element[0]->type != REDIS_REPLY_STRING) goto end;
    rc = take_entry(s, e->element[0]->str, steal(e, 1), 1, NULL, j, http_status, err, errlen);
end:
    if (r) freeReplyObject(r);
    return rc;
}

static int stream_heartbeat(void *state, job *j, char *err, size_t errlen) {
    ssrc *s = state;
    sjob *sj = j->src_data;
    if (!sj) return 0;
    redisReply *r = rconn_cmd(s->c, RC_RETRY, err, errlen, "EVAL %s 1 %s %s %s %s %s %s", HEARTBEAT_LUA,
                              s->cfg->queue, s->cfg->group, s->me, sj->entry, s->lease_ms, s->lease);
    if (!r) return -3; /* unreachable for the whole budget */
    int rc = 0;
    if (rreply_check(r, "XCLAIM", err, errlen) < 0) {
        rc = -2;
    } else if (r->integer != 1) {
        snprintf(err, errlen, "entry %s %s", sj->entry,
                 r->integer == 0 ? "is no longer pending (acked or deleted by someone else)"
                                 : "was taken over by another consumer");
        rc = -1;
    }
    freeReplyObject(r);
    return rc;
}

/* Where the settle for o puts a new entry (and what a -2 names). */
static const char *settle_target(const ssrc *s, const outcome *o) {
    return o->disp == DISP_DEAD ? s->cfg->dead_letter : s->cfg->queue;
}

/* The settle o asks for: its mode and XADD pairs (into f), sent now, or
 * (rider) only queued behind the final record. */
static int settle_for(ssrc *s, sjob *sj, const job *j, const outcome *o, int rider, char *err, size_t errlen) {
    rargs f;
    const char *mode = "ack";
    char n[24];
    memset(&f, 0, sizeof(f));
    switch (o->disp) {
    case DISP_ACK:
        break;
    case DISP_RETRY:
        mode = "xadd";
        pairs_entry(&f, sj, j->id);
        rargs_str(&f, "attempt");
        snprintf(n, sizeof(n), "%d", j->attempt + 1);
        rargs_copy(&f, n);
        break;
    case DISP_DEAD:
        mode = "xadd";
        pairs_entry_id(&f, sj, j->id, o->state == JS_REJECTED);
        pairs_dead(&f, s, sj, job_state_name(o->state), o->error, j->attempt);
        break;
    case DISP_RELEASE:
        mode = "release";
        break;
    }
    int rc = settle(s, sj, j->id, mode, settle_target(s, o), &f, o->fence, job_state_name(o->state), rider, err,
                    errlen);
    rargs_free(&f);
    return rc;
}

/* The settle rides behind the store's final record when both use this
 * connection (--store redis): one round trip for both. It checks that the
 * record holds o's fence and state, so it does nothing when the final
 * write did not happen (stale, refused, poison). */
static void stream_stage(void *state, job *j, const outcome *o) {
    ssrc *s = state;
    if (!j->src_data) return;
    settle_for(s, j->src_data, j, o, 1, NULL, 0);
    s->staged = *o;
}

static int stream_finish(void *state, job *j, const outcome *o, char *err, size_t errlen) {
    ssrc *s = state;
    sjob *sj = j->src_data;
    const char *target = settle_target(s, o);
    int rc;

    if (!sj) return 0;
    /* Staged for an outcome changed since, the rider did nothing: dropped. */
    redisReply *r = rconn_rider_reply(s->c, outcome_same_settle(&s->staged, o));
    rc = r ? settle_result(r, err, errlen) : settle_for(s, sj, j, o, 0, err, errlen);
    if (rc == -3) return -1;
    if (rc == -1) {
        snprintf(err, errlen, "the record of job %s does not hold what was written under fence %lld: not settling",
                 j->id, (long long)o->fence);
        return -1;
    }
    if (rc == -2) {
        snprintf(err, errlen, "%s is not a stream: entry %s left pending with consumer " QUARANTINE
                 " (fix it, then XCLAIM it back)", target, sj->entry);
        return -1;
    }
    if (rc == 0)
        log_warn("entry %s is no longer ours (the claim lapsed): not settling it twice", sj->entry);
    else if (o->disp == DISP_RETRY)
        log_info("re-queued to %s as attempt %d", s->cfg->queue, j->attempt + 1);
    else if (o->disp == DISP_DEAD)
        log_warn("dead-lettered to %s", s->cfg->dead_letter);
    else if (o->disp == DISP_RELEASE)
        log_info("entry %s given back: the next replica takes it over at once", sj->entry);
    if (o->disp != DISP_RELEASE) s->read = 0; /* the consumer is gone */
    return 0;
}

static void stream_close(void *state) {
    ssrc *s = state;
    if (!s) return;
    if (s->read && !s->cur) {
        char err[256];
        redisReply *r = rconn_cmd(s->c, RC_IFCONNECTED, err, sizeof(err), "EVAL %s 1 %s %s %s", TIDY_LUA,
                                  s->cfg->queue, s->cfg->group, s->me);
        if (r) freeReplyObject(r);
        r = rconn_cmd(s->c, RC_IFCONNECTED, err, sizeof(err), "DEL %s", s->lease);
        if (r) freeReplyObject(r);
    }
    sjob_free(s->cur);
    rconn_close(s->c);
    free(s);
}

static void stream_proof(void *state, const job *j, claim_proof *p) {
    ssrc *s = state;
    const sjob *sj = j->src_data;
    p->kind = "stream";
    p->key = s->cfg->queue;
    p->group = s->cfg->group;
    p->entry = sj ? sj->entry : "";
    if (sj && sj->begun) {
        p->begun = 1;
        p->begin_rc = sj->begin_rc;
        p->fence = sj->fence;
        p->begun_at = sj->begun_at;
        p->info = sj->info;
    }
}

const source_ops source_redis_stream = {
    .name = "redis-stream",
    .can_retry = 1,
    .open = stream_open,
    .claim = stream_claim,
    .heartbeat = stream_heartbeat,
    .stage = stream_stage,
    .finish = stream_finish,
    .proof = stream_proof,
    .close = stream_close,
};

/* --- `oneshot sweep` (redis/janitor.h) ---
 *
 * A replica takes an orphan over with XCLAIM when it claims; but a
 * replica is started only for an entry in the group's lag (KEDA's
 * lagCount), and an orphan is pending, not lag. The sweep makes it lag
 * again: a fresh copy of the entry (same job id, attempt + 1) is XADDed
 * and the orphan XACKed in one script, the record `interrupted` under a
 * new fence (so its old owner, should it wake, writes nothing: its
 * heartbeat finds the entry gone), or, past --max-attempts, dead-lettered
 * with the record `dead`. Copies of final jobs, or of one a live replica
 * runs, are only acked; of a `dead`/`rejected` one, dead-lettered again. */

/* KEYS: stream. ARGV: group, idle ms, lease key prefix, P. The first
 * pending entry idle past the lease whose owner's lease key is gone (not
 * the quarantine consumer's), with what its job's record says: {entry,
 * fields, deliveries, owner, record type, state, worker, fence, worker
 * alive (0/1): runs(), RREC_LUA_PRELUDE)}; the record is P:job:<the
 * entry's job id, entry_id()> (the C side re-checks the id as a replica
 * would). false: none (also
 * without stream or group). An entry deleted from the stream is acked on
 * the way, as the claim script does. */
static const char STREAM_ORPHANS_LUA[] =
    "--oneshot:STREAM_ORPHANS\n"
    RREC_LUA_PRELUDE
    "if redis.call('TYPE', KEYS[1]).ok ~= 'stream' then return false end\n"
    "local ps = redis.pcall('XPENDING', KEYS[1], ARGV[1], 'IDLE', ARGV[2], '-', '+', 100)\n"
    "if ps.err then\n"
    "  if string.find(ps.err, 'NOGROUP') then return false end\n"
    "  return ps\n"
    "end\n"
    "for _, p in ipairs(ps) do\n"
    "  if p[2] ~= '" QUARANTINE "' and redis.call('EXISTS', ARGV[3] .. p[2]) == 0 then\n"
    "    local e = redis.call('XRANGE', KEYS[1], p[1], p[1])[1]\n"
    "    if e then\n"
    "      local id = entry_id(p[1], e[2])\n"
    "      local rk = ARGV[4] .. ':job:' .. id\n"
    "      local rt, rs, rw, rf, alive = redis.call('TYPE', rk).ok, '', '', '', '0'\n"
    "      if rt == 'hash' then\n"
    "        local r = redis.call('HMGET', rk, 'state', 'worker', 'fence')\n"
    "        rs, rw, rf = r[1] or '', r[2] or '', r[3] or ''\n"
    "        if runs(ARGV[3], rw, KEYS[1], ARGV[1], id) then alive = '1' end\n"
    "      end\n"
    "      return {p[1], e[2], p[4], p[2], rt, rs, rw, rf, alive}\n"
    "    end\n"
    "    redis.call('XACK', KEYS[1], ARGV[1], p[1])\n"
    "  end\n"
    "end\n"
    "return false\n";

/* KEYS: stream, target (the stream or the dead-letter stream), record.
 * ARGV: group, entry, owner, idle ms, the owner's lease key, check the
 * record (0/1), its fence seen, requeue|dead|drop, ttl, channel, the new
 * state, N, then N record field/value strings, then the XADD pairs.
 * Compare and set: 1 moved; 0 nothing done (the entry is no longer the
 * owner's, or not idle, the owner is back, or the record moved on: a
 * re-send or another sweeper); -2 the target is not a stream (the entry
 * moved to the quarantine consumer). */
static const char STREAM_SWEEP_LUA[] =
    "--oneshot:STREAM_SWEEP\n"
    RREC_LUA_PRELUDE
    "local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[2], ARGV[2], 1)[1]\n"
    "if not p or p[2] ~= ARGV[3] or p[3] < tonumber(ARGV[4]) then return 0 end\n"
    "if redis.call('EXISTS', ARGV[5]) == 1 then return 0 end\n"
    "if ARGV[6] == '1' then\n"
    "  if not typeok(KEYS[3], 'hash') then return 0 end\n"
    "  if (redis.call('HGET', KEYS[3], 'fence') or '') ~= ARGV[7] then return 0 end\n"
    "end\n"
    "local n = tonumber(ARGV[12])\n"
    "if ARGV[8] ~= 'drop' then\n"
    "  if not typeok(KEYS[2], 'stream') then\n"
    "    redis.call('XCLAIM', KEYS[1], ARGV[1], '" QUARANTINE "', 0, ARGV[2], 'JUSTID')\n"
    "    return -2\n"
    "  end\n"
    "  redis.call('XADD', KEYS[2], '*', unpack(ARGV, 13 + n))\n"
    "end\n"
    "redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])\n"
    "if not redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[3])[1] then\n"
    "  redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[3])\n"
    "end\n"
    "if n > 0 then\n"
    "  local rec = {}\n"
    "  for i = 13, 12 + n do rec[#rec + 1] = ARGV[i] end\n"
    "  redis.call('HSET', KEYS[3], 'fence', (tonumber(ARGV[7]) or 0) + 1, unpack(rec))\n"
    "  if FINAL[ARGV[11]] then redis.call('EXPIRE', KEYS[3], ARGV[9]) end\n"
    "  publish(KEYS[3], ARGV[10])\n"
    "end\n"
    "return 1\n";

/* What STREAM_ORPHANS found. */
typedef struct sorphan {
    const char *entry, *owner, *rec_type, *state, *worker, *fence;
    long long deliveries;
    int worker_alive;
} sorphan;

/* Decide and build one orphan's sweep (the list's sweep_decide, for an
 * entry): *mode, *target, the record pairs (rec->n 0: none written) and
 * the XADD pairs; *attempts the attempts made. s->me is the owner, so the
 * record and the dead letter name the replica that was running it. */
static void stream_sweep_decide(ssrc *s, sjob *sj, const sorphan *o, char *job_id, size_t idlen,
                                const char **mode, const char **target, rargs *rec, rargs *xadd, int *attempts,
                                char *why, size_t whylen) {
    const redisReply *id = field_get(sj->fields, "id"), *in = field_get(sj->fields, "input");
    const redisReply *at = field_get(sj->fields, "attempt"), *dl = field_get(sj->fields, "deadline_s");
    int fa = 1, dls;
    int id_ok = id && id->type == REDIS_REPLY_STRING && id_valid(id->str, id->len);
    snprintf(job_id, idlen, "%s", id_ok ? id->str : sj->entry);
    int malformed = !in || in->type != REDIS_REPLY_STRING || (id && !id_ok) ||
                    (at && field_int(at, 1, 1000000, &fa) < 0) || (dl && field_int(dl, 1, 100000000, &dls) < 0);
    *attempts = fa + (int)(sj->deliveries - 1);
    *target = s->cfg->queue;
    if (malformed) {
        /* Back as the producer wrote it; whoever claims it rejects it. */
        *mode = "requeue";
        const redisReply *f = sj->fields;
        for (size_t i = 0; f && f->type == REDIS_REPLY_ARRAY && i + 1 < f->elements; i += 2) {
            rargs_add(xadd, f->element[i]->str, f->element[i]->len, 0);
            rargs_add(xadd, f->element[i + 1]->str, f->element[i + 1]->len, 0);
        }
        snprintf(why, whylen, "a malformed entry put back for rejection");
        return;
    }
    if (s->use_status && strcmp(o->rec_type, "hash") != 0 && strcmp(o->rec_type, "none") != 0) {
        snprintf(why, whylen, "its status key %s:job:%s holds a %s, not a hash: dead-lettered", s->cfg->prefix,
                 job_id, o->rec_type);
        *mode = "dead";
        *target = s->cfg->dead_letter;
        pairs_entry(xadd, sj, job_id);
        pairs_dead(xadd, s, sj, ST_DEAD, why, *attempts);
        return;
    }
    enum job_state known = job_state_of(o->state); /* the record's */
    if (job_state_final(known)) {
        if (known == JS_DEAD || known == JS_REJECTED) {
            snprintf(why, whylen, "recorded %s, and this copy was never dead-lettered (replica %s stopped)",
                     o->state, o->owner);
            *mode = "dead";
            *target = s->cfg->dead_letter;
            pairs_entry(xadd, sj, job_id);
            pairs_dead(xadd, s, sj, o->state, why, *attempts);
        } else {
            snprintf(why, whylen, "its job is already %s: the leftover entry is acked", o->state);
            *mode = "drop";
        }
        return;
    }
    if (known == JS_RUNNING && strcmp(o->worker, o->owner) != 0 && o->worker_alive) {
        snprintf(why, whylen, "replica %s runs the job: this entry is a duplicate, acked", o->worker);
        *mode = "drop";
        return;
    }
    enum job_state state;
    char n[24];
    if (*attempts + 1 > s->cfg->max_attempts) {
        snprintf(why, whylen, "attempt %d was interrupted (replica %s lost its lease) and --max-attempts %d is reached",
                 *attempts, o->owner, s->cfg->max_attempts);
        *mode = "dead";
        *target = s->cfg->dead_letter;
        state = JS_DEAD;
        pairs_entry(xadd, sj, job_id);
        pairs_dead(xadd, s, sj, ST_DEAD, why, *attempts);
    } else {
        snprintf(why, whylen, "attempt %d was interrupted (replica %s lost its lease); re-queued as attempt %d",
                 *attempts, o->owner, *attempts + 1);
        *mode = "requeue";
        state = JS_INTERRUPTED;
        pairs_entry(xadd, sj, job_id);
        rargs_str(xadd, "attempt");
        snprintf(n, sizeof(n), "%d", *attempts + 1);
        rargs_copy(xadd, n);
    }
    if (s->use_status) pairs_record(rec, s, job_id, job_state_name(state), why, *attempts);
}

/* Sweep the orphan o (its fields in sj) with STREAM_SWEEP_LUA. The
 * script's answer, or -9 when Redis could not be asked. */
static int stream_sweep_one(ssrc *s, sjob *sj, const sorphan *o, buf *moved, char *err, size_t errlen) {
    char job_id[ID_MAX + 1], why[600], rk[512], ttl[24], channel[300], nrec[24], lease[512], idle[24];
    const char *mode, *target;
    rargs a, rec, xadd;
    int attempts;

    memset(&a, 0, sizeof(a));
    memset(&rec, 0, sizeof(rec));
    memset(&xadd, 0, sizeof(xadd));
    stream_sweep_decide(s, sj, o, job_id, sizeof(job_id), &mode, &target, &rec, &xadd, &attempts, why, sizeof(why));
    rkey(rk, sizeof(rk), s->cfg->prefix, "job", job_id);
    rkey(lease, sizeof(lease), s->cfg->prefix, "lease", o->owner);
    snprintf(ttl, sizeof(ttl), "%d", s->cfg->result_ttl);
    rkey_events(channel, sizeof(channel), s->cfg->prefix);
    snprintf(nrec, sizeof(nrec), "%d", rec.n);
    snprintf(idle, sizeof(idle), "%s", s->lease_ms);
    rargs_str(&a, "EVAL");
    rargs_add(&a, STREAM_SWEEP_LUA, sizeof(STREAM_SWEEP_LUA) - 1, 0);
    rargs_str(&a, "3");
    rargs_str(&a, s->cfg->queue);
    rargs_str(&a, target);
    rargs_str(&a, rk);
    rargs_str(&a, s->cfg->group);
    rargs_str(&a, sj->entry);
    rargs_str(&a, o->owner);
    rargs_str(&a, idle);
    rargs_str(&a, lease);
    rargs_str(&a, s->use_status ? "1" : "0");
    rargs_str(&a, o->fence);
    rargs_str(&a, mode);
    rargs_str(&a, ttl);
    rargs_str(&a, channel);
    rargs_str(&a, rec.n ? rec.v[3] : ""); /* the state: pairs_record's second pair */
    rargs_str(&a, nrec);
    for (int i = 0; i < rec.n; i++) rargs_add(&a, rec.v[i], rec.len[i], 0);
    for (int i = 0; i < xadd.n; i++) rargs_add(&a, xadd.v[i], xadd.len[i], 0);
    SEAM("stream-sweep");
    redisReply *r = rconn_cmdv(s->c, RC_RETRY, err, errlen, a.n, a.v, a.len);
    int res = -9;
    if (r && rreply_check(r, "sweep", err, errlen) == 0 && r->type == REDIS_REPLY_INTEGER) res = (int)r->integer;
    if (res == 1) {
        log_warn("sweep: job %s (entry %s): %s", job_id, sj->entry, why);
        if (moved->len) buf_puts(moved, ",");
        buf_puts(moved, "{\"id\":");
        buf_json_str(moved, job_id, strlen(job_id));
        buf_puts(moved, ",\"from\":");
        buf_json_str(moved, sj->entry, strlen(sj->entry));
        buf_puts(moved, ",\"owner\":");
        buf_json_str(moved, o->owner, strlen(o->owner));
        buf_puts(moved, ",\"to\":");
        if (strcmp(mode, "drop") == 0)
            buf_puts(moved, "null");
        else
            buf_json_str(moved, target, strlen(target));
        buf_printf(moved, ",\"action\":\"%s\",\"attempts\":%d}", mode, attempts);
    } else if (res == -2) {
        log_error("sweep: entry %s (job %s) left pending with consumer " QUARANTINE ": %s is not a stream (fix it, "
                  "then XCLAIM it back)", sj->entry, job_id, target);
    }
    if (r) freeReplyObject(r);
    rargs_free(&a);
    rargs_free(&rec);
    rargs_free(&xadd);
    return res;
}

int src_stream_sweep(const config *cfg, rconn *c, buf *moved, int *n, int *left, char *err, size_t errlen) {
    ssrc s;
    char last[64] = "";
    int last_res = 0;

    memset(&s, 0, sizeof(s));
    s.cfg = cfg;
    s.c = c;
    s.use_status = !cfg->store || strcmp(cfg->store, store_redis.name) == 0;
    snprintf(s.lease_ms, sizeof(s.lease_ms), "%lld", (long long)cfg->lease * 1000);
    rkey(s.lease_prefix, sizeof(s.lease_prefix), cfg->prefix, "lease", "");
    *n = *left = 0;
    for (;;) {
        redisReply *r = rconn_cmd(c, RC_RETRY, err, errlen, "EVAL %s 1 %s %s %s %s %s", STREAM_ORPHANS_LUA,
                                  cfg->queue, cfg->group, s.lease_ms, s.lease_prefix, cfg->prefix);
        if (!r) return -1;
        if (rreply_check(r, "sweep", err, errlen) < 0) {
            freeReplyObject(r);
            return -1;
        }
        if (r->type != REDIS_REPLY_ARRAY || r->elements != 9) { /* none left */
            freeReplyObject(r);
            return 0;
        }
        for (size_t i = 3; i < 9; i++)
            if (r->element[i]->type != REDIS_REPLY_STRING) {
                snprintf(err, errlen, "sweep: unexpected reply");
                freeReplyObject(r);
                return -1;
            }
        if (strcmp(last, r->element[0]->str) == 0) { /* the one the last round could not move */
            if (last_res == 0) (*left)++;
            freeReplyObject(r);
            return 0;
        }
        snprintf(last, sizeof(last), "%s", r->element[0]->str);
        sjob sj;
        memset(&sj, 0, sizeof(sj));
        snprintf(sj.entry, sizeof(sj.entry), "%s", r->element[0]->str);
        sj.fields = r->element[1];
        sj.deliveries = rreply_int(r->element[2], 1);
        if (sj.deliveries < 1) sj.deliveries = 1;
        sorphan o = {sj.entry, r->element[3]->str, r->element[4]->str, r->element[5]->str, r->element[6]->str,
                     r->element[7]->str, sj.deliveries, strcmp(r->element[8]->str, "1") == 0};
        snprintf(s.me, sizeof(s.me), "%s", o.owner);
        last_res = stream_sweep_one(&s, &sj, &o, moved, err, errlen);
        freeReplyObject(r); /* sj.fields was borrowed from it */
        if (last_res == 1) {
            (*n)++;
            last[0] = '\0';
        } else if (last_res == -2) {
            (*left)++;
        } else if (last_res == -9) {
            return -1;
        }
    }
}
