/* redis/record.c -- the status record's transitions (see redis/record.h
 * and consumer/README.md). Every script reads and checks first (types,
 * ownership, fence) and writes after, so the only write Redis can refuse
 * (OOM, READONLY) is the first, and a refused script has written nothing. */
#include "record.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/buf.h"
#include "../../common/clock.h"
#include "../../common/log.h"
#include "../store.h"

void rkey(char *out, size_t n, const char *prefix, const char *kind, const char *id) {
    snprintf(out, n, "%s:%s:%s", prefix, kind, id);
}

void rkey_events(char *out, size_t n, const char *prefix) { snprintf(out, n, "%s:events", prefix); }

void rkey_queue(char *out, size_t n, const char *queue, const char *kind, const char *who) {
    if (who)
        snprintf(out, n, "%s:%s:%s", queue, kind, who);
    else
        snprintf(out, n, "%s:%s", queue, kind);
}

/* KEYS: record, cancel mark, the held copy's key (processing list or
 * stream; the record again for kind none), result. ARGV: W, kind, group,
 * entry, lease key prefix (P:lease:), ttl, channel, now (ISO 8601), the
 * event's JSON before and after the fence's value (status_to_json_split),
 * then the "running" record's field/value pairs (no fence; id first:
 * ARGV[12] is the job id). begin()'s answer (RREC_BEGIN_LUA_FN). */
static const char BEGIN_LUA[] =
    "--oneshot:BEGIN\n"
    RREC_LUA_PRELUDE
    RREC_BEGIN_LUA_FN
    "return begin(ARGV[12], KEYS[1], KEYS[2], KEYS[4], ARGV[2], KEYS[3], ARGV[3], ARGV[4], ARGV[1],\n"
    "             ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9], ARGV[10], {unpack(ARGV, 11)})\n";

/* KEYS: record, result. ARGV: fence ('0': none), has result (0/1),
 * result, ttl, final (0/1), channel, the event (status_to_json of the
 * record), the record's heartbeat_at ('' when unset), then field/value
 * pairs (fence included when set). {'ok'} | {'again', state} | {'stale', fence} |
 * {'skipped', why} | {'poison', why}. The result's SET is the first write: refused (OOM),
 * nothing is written; its GET makes it refuse a key of another type too
 * (WRONGTYPE, before it writes: the type check and the write in one
 * call). heartbeat_at never goes back: a later one kept (the wall clock
 * may step back) stays. */
static const char FINAL_LUA[] =
    "--oneshot:FINAL\n"
    RREC_LUA_PRELUDE
    "local r, t = hfields(KEYS[1], 'state', 'fence', 'heartbeat_at')\n"
    "if not r then return {'poison', KEYS[1] .. ' holds a ' .. t .. ', not a hash'} end\n"
    "if ARGV[1] == '0' then\n"
    "  if r[2] or FINAL[r[1] or ''] then return {'skipped', 'the record belongs to another delivery'} end\n"
    "elseif (r[2] or '0') ~= ARGV[1] then\n"
    "  return {'stale', r[2] or '0'}\n"
    "elseif FINAL[r[1] or ''] then\n"
    "  return {'again', r[1]}\n"
    "end\n"
    "if ARGV[2] == '1' then\n"
    "  local w = redis.pcall('SET', KEYS[2], ARGV[3], 'EX', ARGV[4], 'GET')\n"
    "  if type(w) == 'table' and w.err then\n"
    "    if string.sub(w.err, 1, 9) ~= 'WRONGTYPE' then return w end\n"
    "    return {'poison', KEYS[2] .. ' holds a ' .. redis.call('TYPE', KEYS[2]).ok .. ', not a string'}\n"
    "  end\n"
    "end\n"
    "redis.call('DEL', KEYS[1])\n"
    "redis.call('HSET', KEYS[1], unpack(ARGV, 9))\n"
    "local later = r[3] and ARGV[8] ~= '' and r[3] > ARGV[8]\n"
    "if later then redis.call('HSET', KEYS[1], 'heartbeat_at', r[3]) end\n"
    "if ARGV[5] == '1' then redis.call('EXPIRE', KEYS[1], ARGV[4]) end\n"
    "if later then\n"
    "  local rec = fields_of(ARGV, 9)\n"
    "  rec.heartbeat_at = r[3]\n"
    "  publish_fields(rec, ARGV[6])\n"
    "else\n"
    "  redis.call('PUBLISH', ARGV[6], ARGV[7])\n"
    "end\n"
    "return {'ok'}\n";

/* KEYS: record. ARGV: fence, heartbeat_at (ISO 8601: its order is time's),
 * progress. 1 written, 0 the record is not running under this fence. */
static const char STORE_BEAT_LUA[] =
    "--oneshot:STORE_BEAT\n"
    "if redis.call('TYPE', KEYS[1]).ok ~= 'hash' then return 0 end\n"
    "local r = redis.call('HMGET', KEYS[1], 'state', 'fence', 'heartbeat_at')\n"
    "if r[1] ~= 'running' or r[2] ~= ARGV[1] then return 0 end\n"
    "local at = ARGV[2]\n"
    "if r[3] and r[3] > at then at = r[3] end\n"
    "redis.call('HSET', KEYS[1], 'heartbeat_at', at, 'progress', ARGV[3])\n"
    "return 1\n";

static void collect_field(const char *name, const char *value, void *arg) {
    rargs_copy(arg, name);
    rargs_copy(arg, value);
}

/* Run an EVAL built in a (flags: rconn_run's, RC_RETRY always); the
 * reply, or NULL (err says why). */
static redisReply *run_args(rconn *c, rargs *a, int flags, char *err, size_t errlen) {
    redisReply *r = rconn_cmdv(c, RC_RETRY | flags, err, errlen, a->n, a->v, a->len);
    rargs_free(a);
    if (r && rreply_check(r, "status record", err, errlen) < 0) {
        freeReplyObject(r);
        return NULL;
    }
    return r;
}

/* {word, text} replies: the word's index in words, or -1. */
static int reply_word(const redisReply *r, const char *const *words, char *info, size_t n) {
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 1 || r->element[0]->type != REDIS_REPLY_STRING)
        return -1;
    if (n) snprintf(info, n, "%s", r->elements > 1 && r->element[1]->type == REDIS_REPLY_STRING ? r->element[1]->str : "");
    for (int i = 0; words[i]; i++)
        if (strcmp(r->element[0]->str, words[i]) == 0) return i;
    return -1;
}

/* The lead of every "running" event whose id is "" (status_each_field's
 * order: id, state, then attempt when set). */
#define RUNNING_LEAD "{\"id\":\"\",\"state\":\"running\""

static void collect_field_but_id(const char *name, const char *value, void *arg) {
    if (strcmp(name, "id") != 0) collect_field(name, value, arg);
}

/* begin()'s arguments from ttl on (RREC_BEGIN_LUA_FN: ttl, ch, now, head,
 * tail, fl) for the "running" record run. fused: for a claim script,
 * which learns the id and attempt only when it takes the copy (run has id
 * "" and attempt 0): head starts after "state":"running", and fl leaves
 * out the id; the script puts both in (ids need no JSON escaping). */
static void begin_tail_args(rargs *a, const char *prefix, int ttl, const status_rec *run, int fused) {
    char ttl_s[24], channel[300], now[40], *head, *tail;
    snprintf(ttl_s, sizeof(ttl_s), "%d", ttl);
    rkey_events(channel, sizeof(channel), prefix);
    clock_iso8601(fused ? run->started_at : clock_wall_ms(), now, sizeof(now));
    rargs_copy(a, ttl_s);
    rargs_copy(a, channel);
    rargs_copy(a, now);
    status_rec r = *run;
    r.fence = 0; /* the script sets it */
    status_to_json_split(&r, &head, &tail);
    if (fused) {
        /* status_each_field writes id and state first, attempt (0) not */
        size_t lead = strlen(RUNNING_LEAD);
        rargs_copy(a, strncmp(head, RUNNING_LEAD, lead) == 0 ? head + lead : head);
        free(head);
    } else {
        rargs_take(a, head);
    }
    rargs_take(a, tail);
    status_each_field(&r, fused ? collect_field_but_id : collect_field, a);
}

void rrec_begin_args(rargs *a, const char *prefix, int ttl, const status_rec *run) {
    begin_tail_args(a, prefix, ttl, run, 1);
}

int rrec_begin_answer(const redisReply *r, int64_t *fence, char *info, size_t n) {
    static const char *const words[] = {"run", "done", "cancelled", "duplicate", "lost", "poison", NULL};
    static const int rcs[] = {BEGIN_RUN, BEGIN_DONE, BEGIN_CANCELLED, BEGIN_DUPLICATE, BEGIN_LOST, BEGIN_POISON};
    char word[400] = "";
    int i = reply_word(r, words, word, sizeof(word));
    if (i < 0) return BEGIN_ERR;
    if (rcs[i] == BEGIN_RUN || rcs[i] == BEGIN_CANCELLED)
        *fence = strtoll(word, NULL, 10);
    else if (n)
        snprintf(info, n, "%s", word);
    return rcs[i];
}

int rrec_begin(rconn *c, const char *prefix, int ttl, status_rec *st, const claim_proof *p, char *info, size_t n,
               char *err, size_t errlen) {
    char key[512], mark[512], lease[512], result[512];
    const char *kind = p && p->kind ? p->kind : "none";
    rargs a;

    memset(&a, 0, sizeof(a));
    rkey(key, sizeof(key), prefix, "job", st->id);
    rkey(mark, sizeof(mark), prefix, "cancel", st->id);
    rkey(lease, sizeof(lease), prefix, "lease", "");
    rkey(result, sizeof(result), prefix, "result", st->id);
    rargs_copy(&a, "EVAL");
    rargs_add(&a, BEGIN_LUA, sizeof(BEGIN_LUA) - 1, 0);
    rargs_copy(&a, "4");
    rargs_copy(&a, key);
    rargs_copy(&a, mark);
    rargs_copy(&a, p && p->key ? p->key : key);
    rargs_copy(&a, result);
    rargs_copy(&a, st->worker);
    rargs_copy(&a, kind);
    rargs_copy(&a, p && p->group ? p->group : "");
    rargs_copy(&a, p && p->entry ? p->entry : "");
    rargs_copy(&a, lease);
    begin_tail_args(&a, prefix, ttl, st, 0);
    redisReply *r = run_args(c, &a, 0, err, errlen);
    if (!r) return BEGIN_ERR;
    int rc = rrec_begin_answer(r, &st->fence, info, n);
    freeReplyObject(r);
    if (rc == BEGIN_ERR) snprintf(err, errlen, "status record: unexpected reply to begin");
    return rc;
}

int rrec_final(rconn *c, const char *prefix, int ttl, const status_rec *st, const char *data, size_t len,
               char *err, size_t errlen) {
    static const char *const words[] = {"ok", "again", "stale", "skipped", "poison", NULL};
    char key[512], result[512], ttl_s[24], channel[300], fence[24], hb[40], why[300] = "";
    rargs a;

    memset(&a, 0, sizeof(a));
    rkey(key, sizeof(key), prefix, "job", st->id);
    rkey(result, sizeof(result), prefix, "result", st->id);
    snprintf(ttl_s, sizeof(ttl_s), "%d", ttl);
    rkey_events(channel, sizeof(channel), prefix);
    snprintf(fence, sizeof(fence), "%lld", (long long)st->fence);
    rargs_copy(&a, "EVAL");
    rargs_add(&a, FINAL_LUA, sizeof(FINAL_LUA) - 1, 0);
    rargs_copy(&a, "2");
    rargs_copy(&a, key);
    rargs_copy(&a, result);
    rargs_copy(&a, fence);
    rargs_copy(&a, data ? "1" : "0");
    rargs_add(&a, data ? data : "", data ? len : 0, 0);
    rargs_copy(&a, ttl_s);
    rargs_copy(&a, status_is_final(st->state) ? "1" : "0");
    rargs_copy(&a, channel);
    rargs_take(&a, status_to_json(st, NULL));
    if (st->heartbeat_at > 0)
        rargs_copy(&a, clock_iso8601(st->heartbeat_at, hb, sizeof(hb)));
    else
        rargs_copy(&a, "");
    status_each_field(st, collect_field, &a);
    /* A source's settle may ride behind it (rconn_ride): it checks that
     * the record holds what this script writes, so it does nothing when
     * this one wrote nothing. */
    redisReply *r = run_args(c, &a, RC_RIDER, err, errlen);
    if (!r) return -1;
    int i = reply_word(r, words, why, sizeof(why));
    freeReplyObject(r);
    switch (i) {
    case 0:
        return 0;
    case 1:
        log_info("the %s record was already written (a re-sent step)", why);
        return 0;
    case 2:
        snprintf(err, errlen, "job %s: fence %lld is stale (the record's is %s): another replica owns the job now",
                 st->id, (long long)st->fence, why);
        return STORE_STALE;
    case 3:
        log_warn("job %s: status record not written: %s", st->id, why);
        return STORE_SKIPPED;
    case 4:
        snprintf(err, errlen, "%s", why);
        return STORE_POISON;
    default:
        snprintf(err, errlen, "status record: unexpected reply to the final write");
        return -1;
    }
}

int rrec_beat(rconn *c, const char *prefix, const status_rec *st, char *err, size_t errlen) {
    char key[512], at[40], fence[24];
    rkey(key, sizeof(key), prefix, "job", st->id);
    clock_iso8601(st->heartbeat_at, at, sizeof(at));
    snprintf(fence, sizeof(fence), "%lld", (long long)st->fence);
    redisReply *r = rconn_cmd(c, RC_RETRY, err, errlen, "EVAL %s 1 %s %s %s %d", STORE_BEAT_LUA, key, fence, at,
                              st->progress < 0 ? 0 : st->progress);
    if (!r) return -1;
    int rc = rreply_check(r, "heartbeat record", err, errlen);
    if (rc == 0 && rreply_int(r, 0) == 0) {
        snprintf(err, errlen, "the status record of job %s is no longer running under fence %lld", st->id,
                 (long long)st->fence);
        rc = STORE_STALE;
    }
    freeReplyObject(r);
    return rc;
}

int rrec_get(rconn *c, const char *prefix, const char *id, status_rec *st, char *err, size_t errlen) {
    char key[512];
    rkey(key, sizeof(key), prefix, "job", id);
    redisReply *r = rconn_cmd(c, RC_RETRY, err, errlen, "HGETALL %s", key);
    if (!r) return -1;
    int rc = -1;
    if (rreply_check(r, "HGETALL", err, errlen) == 0) {
        status_init(st);
        if (r->type == REDIS_REPLY_ARRAY)
            for (size_t i = 0; i + 1 < r->elements; i += 2)
                if (r->element[i]->type == REDIS_REPLY_STRING && r->element[i + 1]->type == REDIS_REPLY_STRING)
                    status_set_field(st, r->element[i]->str, r->element[i + 1]->str);
        rc = r->type == REDIS_REPLY_ARRAY && r->elements > 0 && st->state[0] ? 1 : 0;
    }
    freeReplyObject(r);
    return rc;
}
