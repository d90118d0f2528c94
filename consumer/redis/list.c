/* redis/list.c -- the reliable-queue pattern on a Redis list
 *.
 *
 * Keys (Q = --queue, P = --prefix, W = this replica's id):
 *   Q                    the queue; producers LPUSH, replicas take from the right
 *   Q:processing:W       the one item W holds (BLMOVE Q Q:processing:W RIGHT LEFT)
 *   P:lease:W            W's lease, PX --lease, renewed every third of it
 *   Q:workers            set of the W that may hold a processing list
 *   --dead-letter        list of dead jobs (LPUSH, JSON with the error)
 *
 * The claim script (LIST_CLAIM_LUA) sets the lease, registers W and only
 * then moves the next item into Q:processing:W, so a processing list is
 * never without a live lease or unregistered; BLMOVE waits for an item, in
 * a round trip of its own, only when the script found the queue empty
 * (right after it renewed the lease). The same script finds one orphan: the item of
 * a registered W' whose lease is gone, with what the job's record says. The
 * sweep (SWEEP_LUA) then moves it in one compare-and-set script, straight from
 * W''s processing list: back to the head of the queue with attempt + 1, to
 * the dead letters past --max-attempts, or nowhere when its record is
 * final (or another live replica runs the job: a duplicate); it acts only
 * if W' still has no lease, the item is still the bytes seen and the
 * record's fence has not moved, so a re-sent or concurrent sweep does
 * nothing twice.
 * The Q:workers set keeps the sweep O(replicas) where SCAN would be
 * O(keyspace). A raw message (or an envelope without an id) gets its UUID
 * written back into the processing list (LSET), so a re-delivery after a
 * crash keeps the same job id.
 *
 * Settling is one script (SETTLE_LUA), idempotent: with --store redis it first
 * checks that the record says what the final write put there under our
 * fence (a refused final write settles nothing); ack deletes the
 * processing list; retry also LPUSHes the envelope with attempt + 1 (the
 * back of the queue); dead LPUSHes the dead letter; release (SIGTERM)
 * RPUSHes the item back untouched. An empty processing list means the
 * claim was lost, or a re-sent settle already ran: nothing is pushed. A
 * target of the wrong type leaves the item where it is and moves W to
 * Q:quarantine (consumer/README.md "Poison"). */
#include <cjson/cJSON.h>
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

typedef struct lsrc {
    const config *cfg;
    rconn *c;
    char me[128];
    char proc[512];  /* Q:processing:W */
    char lease[512]; /* P:lease:W */
    char reg[512];   /* Q:workers */
    char quar[512];  /* Q:quarantine */
    char lease_ms[24];
    int claimed;      /* an item sits in our processing list */
    int rejected;     /* ...and it was malformed: dead-letter it raw */
    int settled;      /* finish ran: lease and registration are gone */
    int use_status;   /* --store redis: sweeps read and update the records too */
    outcome staged;   /* what the settle riding behind the final record is for */
    buf *report;      /* `oneshot sweep`: what each sweep moved, as JSON; NULL in a replica */
} lsrc;

/* The orphan finder, shared by the claim script and `oneshot sweep`
 * (LIST_FIND_ORPHAN_LUA): the item of the first registered W' other than me
 * whose lease is gone, with what its job's record says, as {W', item,
 * record type, state, worker, fence, worker alive (0/1)}; nil when there
 * is none. A registered W' without lease and without an item is
 * unregistered on the way. */
#define LIST_FIND_ORPHAN_LUA                                                                       \
    "local function find_orphan(reg, me, P, Q, use)\n"                                           \
    "  for _, w in ipairs(redis.call('SMEMBERS', reg)) do\n"                                     \
    "    if w ~= me and redis.call('EXISTS', P .. ':lease:' .. w) == 0 then\n"                   \
    "      local proc = Q .. ':processing:' .. w\n"                                              \
    "      local it = redis.call('TYPE', proc).ok == 'list' and redis.call('LINDEX', proc, -1)\n" \
    "      if it then\n"                                                                         \
    "        local rt, rs, rw, rf, alive = 'none', '', '', '', '0'\n"                             \
    "        local ok, e = pcall(cjson.decode, it)\n"                                            \
    "        if use == '1' and ok and type(e) == 'table' and type(e.id) == 'string' then\n"      \
    "          local rk = P .. ':job:' .. e.id\n"                                                \
    "          rt = redis.call('TYPE', rk).ok\n"                                                 \
    "          if rt == 'hash' then\n"                                                           \
    "            local r = redis.call('HMGET', rk, 'state', 'worker', 'fence')\n"                \
    "            rs, rw, rf = r[1] or '', r[2] or '', r[3] or ''\n"                              \
    "            if rw ~= '' and redis.call('EXISTS', P .. ':lease:' .. rw) == 1 then alive = '1' end\n" \
    "          end\n"                                                                            \
    "        end\n"                                                                              \
    "        return {w, it, rt, rs, rw, rf, alive}\n"                                            \
    "      end\n"                                                                                \
    "      redis.call('SREM', reg, w)\n"                                                         \
    "    end\n"                                                                                  \
    "  end\n"                                                                                    \
    "  return nil\n"                                                                             \
    "end\n"

/* KEYS: lease, workers set, our processing list, the queue. ARGV: W,
 * lease ms, P, Q, use records (0/1). {'mine', item} for an item of ours
 * (left by a lost reply); else {'new', item or nil, W', record type,
 * state, worker, fence, worker alive (0/1)}: the next item of the queue,
 * moved into our processing list in this same script (after the lease and
 * the registration: so an item is never held unregistered), and the item
 * of a registered W' whose lease is gone (read only: SWEEP moves it; W'
 * '' when there is none). Safe to re-send: a re-run finds the moved item
 * as 'mine'. The registration is the first write: refused (OOM,
 * READONLY, a workers key of another type), the script writes nothing. */
static const char LIST_CLAIM_LUA[] =
    "--oneshot:LIST_CLAIM\n"
    LIST_FIND_ORPHAN_LUA
    "local reg = redis.pcall('SADD', KEYS[2], ARGV[1])\n"
    "if type(reg) == 'table' and reg.err then\n"
    "  if string.sub(reg.err, 1, 9) ~= 'WRONGTYPE' then return reg end\n"
    "  local t = redis.call('TYPE', KEYS[2]).ok\n"
    "  return redis.error_reply('WRONGTYPE ' .. KEYS[2] .. ' holds a ' .. t .. ', not a set')\n"
    "end\n"
    "redis.call('SET', KEYS[1], '1', 'PX', ARGV[2])\n"
    "local mine = redis.call('LINDEX', KEYS[3], -1)\n"
    "if mine then return {'mine', mine} end\n"
    "local new = redis.call('LMOVE', KEYS[4], KEYS[3], 'RIGHT', 'LEFT')\n"
    "local o = find_orphan(KEYS[2], ARGV[1], ARGV[3], ARGV[4], ARGV[5])\n"
    "if o then return {'new', new, o[1], o[2], o[3], o[4], o[5], o[6], o[7]} end\n"
    "return {'new', new, '', '', '', '', '', '', ''}\n";

/* `oneshot sweep` (src_list_sweep): the claim script's orphan finder
 * alone, taking nothing and registering nobody. KEYS: workers set. ARGV:
 * P, Q, use records (0/1). The claim script's reply shape, with no item
 * of ours: {'new', false, W', ...}. */
static const char LIST_ORPHANS_LUA[] =
    "--oneshot:LIST_ORPHANS\n"
    LIST_FIND_ORPHAN_LUA
    "local t = redis.call('TYPE', KEYS[1]).ok\n"
    "if t ~= 'set' and t ~= 'none' then\n"
    "  return redis.error_reply('WRONGTYPE ' .. KEYS[1] .. ' holds a ' .. t .. ', not a set')\n"
    "end\n"
    "local o = find_orphan(KEYS[1], '', ARGV[1], ARGV[2], ARGV[3])\n"
    "if o then return {'new', false, o[1], o[2], o[3], o[4], o[5], o[6], o[7]} end\n"
    "return {'new', false, '', '', '', '', '', '', ''}\n";

/* KEYS: the orphan's processing list, its lease, workers set, target,
 * record, quarantine set. ARGV: W', the item seen, the record's fence seen
 * ('' none), requeue|dead|drop, message, write the record (0/1), ttl,
 * channel, new state, then the record's field/value pairs. Compare and
 * set: 1 moved; 0 nothing done (W' is back, the item is gone or changed,
 * or the record moved on: a re-send or another sweeper; look again); -2
 * the target is not a list: W' moved to the quarantine set. */
static const char SWEEP_LUA[] =
    "--oneshot:SWEEP\n"
    RREC_LUA_PRELUDE
    "if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end\n"
    "if redis.call('LINDEX', KEYS[1], -1) ~= ARGV[2] then return 0 end\n"
    "if ARGV[6] == '1' then\n"
    "  if not typeok(KEYS[5], 'hash') then return 0 end\n"
    "  if (redis.call('HGET', KEYS[5], 'fence') or '') ~= ARGV[3] then return 0 end\n"
    "end\n"
    "local reg = redis.call('TYPE', KEYS[3]).ok == 'set'\n"
    "if ARGV[4] ~= 'drop' and not typeok(KEYS[4], 'list') then\n"
    "  if not typeok(KEYS[6], 'set') then return -3 end\n"
    "  if reg then redis.call('SREM', KEYS[3], ARGV[1]) end\n"
    "  redis.call('SADD', KEYS[6], ARGV[1])\n"
    "  return -2\n"
    "end\n"
    "if ARGV[4] == 'requeue' then redis.call('RPUSH', KEYS[4], ARGV[5])\n"
    "elseif ARGV[4] == 'dead' then redis.call('LPUSH', KEYS[4], ARGV[5]) end\n"
    "redis.call('RPOP', KEYS[1])\n"
    "if reg and redis.call('LLEN', KEYS[1]) == 0 then redis.call('SREM', KEYS[3], ARGV[1]) end\n"
    "if ARGV[6] == '1' then\n"
    "  redis.call('HSET', KEYS[5], 'fence', (tonumber(ARGV[3]) or 0) + 1, unpack(ARGV, 10))\n"
    "  if FINAL[ARGV[9]] then redis.call('EXPIRE', KEYS[5], ARGV[7]) end\n"
    "  publish(KEYS[5], ARGV[8])\n"
    "end\n"
    "return 1\n";

/* KEYS: processing list, lease, workers set, target, record, quarantine
 * set. ARGV: ack|lpush|release, message, W, fence ('0': no record check),
 * the state the record must hold. The processing list's length (0: the
 * claim was lost, or a re-send finds it settled); -1 the record does not
 * hold what we wrote (nothing done); -2 the target is not a list (the item
 * stays, W moves to the quarantine set). The workers set's SREM is a
 * pcall: a set of another type is left alone (its WRONGTYPE ignored), and
 * SREM is never refused for memory. */
static const char SETTLE_LUA[] =
    "--oneshot:LIST_SETTLE\n"
    "local had = redis.call('LLEN', KEYS[1])\n"
    "if had == 0 then\n"
    "  redis.call('DEL', KEYS[2])\n"
    "  redis.pcall('SREM', KEYS[3], ARGV[3])\n"
    "  return 0\n"
    "end\n"
    "if ARGV[4] ~= '0' then\n"
    "  local r = redis.pcall('HMGET', KEYS[5], 'fence', 'state')\n"
    "  if r.err or r[1] ~= ARGV[4] or r[2] ~= ARGV[5] then return -1 end\n"
    "end\n"
    "if ARGV[1] ~= 'ack' then\n"
    "  local t = redis.call('TYPE', KEYS[4]).ok\n"
    "  if t ~= 'list' and t ~= 'none' then\n"
    "    local q = redis.call('TYPE', KEYS[6]).ok\n"
    "    if q == 'set' or q == 'none' then\n"
    "      redis.call('SADD', KEYS[6], ARGV[3])\n"
    "      redis.pcall('SREM', KEYS[3], ARGV[3])\n"
    "    end\n"
    "    return -2\n"
    "  end\n"
    "end\n"
    "if ARGV[1] == 'release' then redis.call('RPUSH', KEYS[4], redis.call('LINDEX', KEYS[1], -1))\n"
    "elseif ARGV[1] == 'lpush' then redis.call('LPUSH', KEYS[4], ARGV[2]) end\n"
    "redis.call('DEL', KEYS[1], KEYS[2])\n"
    "redis.pcall('SREM', KEYS[3], ARGV[3])\n"
    "return had\n";

/* KEYS: lease, processing list, workers set. ARGV: lease ms, W.
 * 1 renewed; 2 the lease had lapsed but nobody took the item: renewed;
 * 0 the item is gone (swept): the claim is lost. */
static const char HEARTBEAT_LUA[] =
    "--oneshot:LIST_HEARTBEAT\n"
    "if redis.call('PEXPIRE', KEYS[1], ARGV[1]) == 1 then return 1 end\n"
    "if redis.call('LLEN', KEYS[2]) > 0 then\n"
    "  redis.call('SET', KEYS[1], '1', 'PX', ARGV[1])\n"
    "  redis.call('SADD', KEYS[3], ARGV[2])\n"
    "  return 2\n"
    "end\n"
    "return 0\n";

/* KEYS: processing list, lease, workers set. ARGV: W. An idle replica
 * leaving: drop the lease and the registration unless an item is held. */
static const char TIDY_LUA[] =
    "--oneshot:LIST_TIDY\n"
    "if redis.call('LLEN', KEYS[1]) > 0 then return 0 end\n"
    "redis.call('DEL', KEYS[2])\n"
    "redis.call('SREM', KEYS[3], ARGV[1])\n"
    "return 1\n";

/* The dead letter: the job (its input, or the raw message when it could
 * not be parsed) plus why it died. "attempts" (not "attempt") so that an
 * operator who pushes it back onto the queue gives it fresh attempts. */
static char *dead_letter_json(const lsrc *s, const job *j, int raw, const char *state, const char *error,
                              const char *worker, size_t *len) {
    buf b = BUF_INIT;
    char at[40];
    buf_puts(&b, "{\"id\":");
    buf_json_str(&b, j->id, strlen(j->id));
    buf_puts(&b, ",");
    if (raw) {
        job_json_bytes(&b, "raw", j->input, j->input_len);
    } else {
        job_json_input(&b, j);
        if (j->deadline_s > 0) buf_printf(&b, ",\"deadline_s\":%d", j->deadline_s);
    }
    buf_puts(&b, ",\"state\":");
    buf_json_str(&b, state, strlen(state));
    buf_puts(&b, ",\"error\":");
    buf_json_str(&b, error ? error : "", error ? strlen(error) : 0);
    buf_printf(&b, ",\"attempts\":%d,\"queue\":", j->attempt);
    buf_json_str(&b, s->cfg->queue, strlen(s->cfg->queue));
    buf_puts(&b, ",\"worker\":");
    buf_json_str(&b, worker, strlen(worker));
    buf_printf(&b, ",\"failed_at\":\"%s\"}", clock_iso8601(clock_wall_ms(), at, sizeof(at)));
    return buf_steal(&b, len);
}

static int list_open(const config *cfg, void **state, char *err, size_t errlen) {
    lsrc *s = xcalloc(1, sizeof(*s));
    char who[200];
    s->cfg = cfg;
    snprintf(s->me, sizeof(s->me), "%s", replica_id());
    rkey_queue(s->proc, sizeof(s->proc), cfg->queue, "processing", s->me);
    rkey(s->lease, sizeof(s->lease), cfg->prefix, "lease", s->me);
    rkey_queue(s->reg, sizeof(s->reg), cfg->queue, "workers", NULL);
    rkey_queue(s->quar, sizeof(s->quar), cfg->queue, "quarantine", NULL);
    snprintf(s->lease_ms, sizeof(s->lease_ms), "%lld", (long long)cfg->lease * 1000);
    s->use_status = strcmp(cfg->store, store_redis.name) == 0;
    snprintf(who, sizeof(who), "src:%s", s->me);
    s->c = rconn_share(cfg->redis_url, who, err, errlen);
    if (!s->c) {
        free(s);
        *state = NULL;
        return -1;
    }
    *state = s;
    return 0;
}

/* What the claim script saw of an orphan and of its job's record. */
typedef struct orphan {
    const redisReply *item;
    const char *owner;    /* W' */
    const char *rec_type; /* "none", "hash", or the wrong type */
    const char *state;    /* "" when no record */
    const char *worker;
    const char *fence;    /* "" when none */
    int worker_alive;     /* the record's worker still has its lease */
} orphan;

/* A record field a sweep sets (HSET over what is there). */
static void rec_add(rargs *r, const char *name, const char *value) {
    rargs_str(r, name);
    rargs_copy(r, value);
}

/* Decide what becomes of an orphan (consumer/README.md, the sweep row):
 * sets *mode, *msg (malloc'd), and the record to write (rec->n 0: none). */
static void sweep_decide(lsrc *s, const orphan *o, job *oj, const char **mode, char **msg, size_t *msg_len,
                         const char **target, rargs *rec, char *why, size_t whylen) {
    char perr[256] = "", num[24], at[40];
    enum job_state state, known = job_state_of(o->state); /* the record's */

    *target = s->cfg->queue;
    if (job_parse_envelope(o->item->str, o->item->len, oj, perr, sizeof(perr)) < 0) {
        /* Malformed: back untouched; whoever claims it rejects it. */
        *mode = "requeue";
        *msg = xstrndup(o->item->str, o->item->len);
        *msg_len = o->item->len;
        snprintf(why, whylen, "a malformed message put back for rejection");
        return;
    }
    if (!oj->id[0]) id_uuid4(oj->id); /* claimed, never named: the claimer died at once */
    int final = job_state_final(known);
    if (s->use_status && strcmp(o->rec_type, "hash") != 0 && strcmp(o->rec_type, "none") != 0) {
        snprintf(why, whylen, "its status key %s:job:%s holds a %s, not a hash: dead-lettered", s->cfg->prefix,
                 oj->id, o->rec_type);
        *mode = "dead";
        *target = s->cfg->dead_letter;
        *msg = dead_letter_json(s, oj, 0, ST_DEAD, why, o->owner, msg_len);
        return;
    }
    if (final) {
        if (known == JS_DEAD || known == JS_REJECTED) {
            /* A replica recorded it dead and stopped before the push; or a
             * duplicate copy: a second dead letter rather than none. */
            snprintf(why, whylen, "recorded %s, and this copy was never dead-lettered (replica %s stopped)",
                     o->state, o->owner);
            *mode = "dead";
            *target = s->cfg->dead_letter;
            *msg = dead_letter_json(s, oj, 0, o->state, why, o->owner, msg_len);
        } else {
            snprintf(why, whylen, "its job is already %s: the leftover copy is dropped", o->state);
            *mode = "drop";
        }
        return;
    }
    if (known == JS_RUNNING && strcmp(o->worker, o->owner) != 0 && o->worker_alive) {
        snprintf(why, whylen, "replica %s runs the job: this copy is a duplicate, dropped", o->worker);
        *mode = "drop";
        return;
    }
    if (oj->attempt + 1 > s->cfg->max_attempts) {
        snprintf(why, whylen, "attempt %d was interrupted (replica %s lost its lease) and --max-attempts %d is reached",
                 oj->attempt, o->owner, s->cfg->max_attempts);
        *mode = "dead";
        *target = s->cfg->dead_letter;
        *msg = dead_letter_json(s, oj, 0, ST_DEAD, why, o->owner, msg_len);
        state = JS_DEAD;
    } else {
        snprintf(why, whylen, "attempt %d was interrupted (replica %s lost its lease); re-queued as attempt %d",
                 oj->attempt, o->owner, oj->attempt + 1);
        *mode = "requeue";
        oj->attempt++;
        *msg = job_envelope_json(oj, msg_len);
        state = JS_INTERRUPTED;
    }
    if (!s->use_status) return;
    rec_add(rec, "id", oj->id);
    rec_add(rec, "state", job_state_name(state));
    snprintf(num, sizeof(num), "%d", state == JS_DEAD ? oj->attempt : oj->attempt - 1);
    rec_add(rec, "attempt", num);
    rec_add(rec, "worker", o->owner);
    rec_add(rec, "source", source_redis_list.name);
    rec_add(rec, "queue", s->cfg->queue);
    rec_add(rec, "error", why);
    if (state == JS_DEAD) rec_add(rec, "finished_at", clock_iso8601(clock_wall_ms(), at, sizeof(at)));
}

/* What a sweep moved, for `oneshot sweep`: {"id","from","to","action",
 * "attempts","state"}; "to" null when the copy was dropped; "attempts"
 * the attempts made (the interrupted one included). */
static void sweep_report(lsrc *s, const job *oj, const char *from, const char *mode, const char *target) {
    buf *b = s->report;
    int made = strcmp(mode, "requeue") == 0 && oj->attempt > 0 ? oj->attempt - 1 : oj->attempt;
    if (b->len) buf_puts(b, ",");
    buf_puts(b, "{\"id\":");
    buf_json_str(b, oj->id, strlen(oj->id));
    buf_puts(b, ",\"from\":");
    buf_json_str(b, from, strlen(from));
    buf_puts(b, ",\"to\":");
    if (strcmp(mode, "drop") == 0)
        buf_puts(b, "null");
    else
        buf_json_str(b, target, strlen(target));
    buf_printf(b, ",\"action\":\"%s\",\"attempts\":%d}", mode, made);
}

/* Move an orphan out of its dead replica's processing list (SWEEP_LUA).
 * Best effort: a sweep that cannot run now is tried again by the next
 * claim. 1 when the claim script named an orphan, else 0; *res the
 * script's answer (1 moved, 0 nothing done, -2, -3 as SWEEP_LUA says), -9
 * when it could not be sent. */
static int sweep_orphan(lsrc *s, const redisReply *r, int *res_out) {
    char why[600] = "", err[512] = "", rk[512] = "", ttl[24], channel[300];
    char proc[512], lease[512];
    const char *mode, *target;
    char *msg = NULL;
    size_t msg_len = 0;
    rargs rec = {0}, a = {0};
    job oj;

    *res_out = 0;
    /* {'new', item, W', orphan item, record type, state, worker, fence, alive} */
    if (r->elements != 9) return 0;
    for (size_t i = 2; i < 9; i++)
        if (r->element[i]->type != REDIS_REPLY_STRING) return 0;
    if (!r->element[2]->len) return 0; /* no orphan */
    orphan o = {r->element[3], r->element[2]->str, r->element[4]->str, r->element[5]->str,
                r->element[6]->str, r->element[7]->str, strcmp(r->element[8]->str, "1") == 0};
    memset(&oj, 0, sizeof(oj));
    sweep_decide(s, &o, &oj, &mode, &msg, &msg_len, &target, &rec, why, sizeof(why));
    rkey_queue(proc, sizeof(proc), s->cfg->queue, "processing", o.owner);
    rkey(lease, sizeof(lease), s->cfg->prefix, "lease", o.owner);
    if (oj.id[0]) rkey(rk, sizeof(rk), s->cfg->prefix, "job", oj.id);
    snprintf(ttl, sizeof(ttl), "%d", s->cfg->result_ttl);
    rkey_events(channel, sizeof(channel), s->cfg->prefix);

    const char *keys[] = {proc, lease, s->reg, target, rk[0] ? rk : proc, s->quar};
    rargs_str(&a, "EVAL");
    rargs_add(&a, SWEEP_LUA, sizeof(SWEEP_LUA) - 1, 0);
    rargs_str(&a, "6");
    for (int k = 0; k < 6; k++) rargs_str(&a, keys[k]);
    rargs_str(&a, o.owner);
    rargs_add(&a, o.item->str, o.item->len, 0);
    rargs_str(&a, o.fence);
    rargs_str(&a, mode);
    rargs_add(&a, msg ? msg : "", msg ? msg_len : 0, 0);
    rargs_str(&a, rec.n ? "1" : "0");
    rargs_str(&a, ttl);
    rargs_str(&a, channel);
    rargs_str(&a, rec.n ? rec.v[3] : ""); /* the state: rec_add(rec, "state", ...) comes second */
    for (int k = 0; k < rec.n; k++) rargs_add(&a, rec.v[k], rec.len[k], 0);
    SEAM("sweep");
    redisReply *res = rconn_cmdv(s->c, RC_RETRY, err, sizeof(err), a.n, a.v, a.len);
    *res_out = -9;
    if (res && res->type == REDIS_REPLY_INTEGER) *res_out = (int)res->integer;
    if (!res || rreply_check(res, "sweep", err, sizeof(err)) < 0)
        log_warn("sweep of replica %s's job %s not done now: %s", o.owner, oj.id[0] ? oj.id : "?", err);
    else if (res->integer == 1) {
        log_warn("sweep: job %s: %s", oj.id[0] ? oj.id : "?", why);
        if (s->report) sweep_report(s, &oj, proc, mode, target);
    }
    else if (res->integer == -2)
        log_error("sweep: job %s of replica %s left in %s and the replica moved to %s: %s is not a list "
                  "(fix it, then: redis-cli SMOVE %s %s %s)",
                  oj.id[0] ? oj.id : "?", o.owner, proc, s->quar, target, s->quar, s->reg, o.owner);
    else if (res->integer == -3)
        log_error("sweep: job %s of replica %s left in %s: %s is not a list, and %s is not a set either (fix them)",
                  oj.id[0] ? oj.id : "?", o.owner, proc, target, s->quar);
    if (res) freeReplyObject(res);
    rargs_free(&a);
    rargs_free(&rec);
    free(msg);
    job_free(&oj);
    return 1;
}

/* Turn the item now in our processing list into the job. */
static int take_item(lsrc *s, const char *item, size_t len, job *j, int *http_status, char *err, size_t errlen) {
    char perr[256] = "";
    s->claimed = 1;
    j->attempt = 0;
    if (job_parse_envelope(item, len, j, perr, sizeof(perr)) < 0) {
        if (!j->id[0]) id_uuid4(j->id);
        snprintf(err, errlen, "%s", perr);
        *http_status = 422;
        s->rejected = 1;
        return CLAIM_REJECT;
    }
    if ((int64_t)j->input_len > s->cfg->max_input) {
        if (!j->id[0]) id_uuid4(j->id);
        snprintf(err, errlen, "input of %zu bytes exceeds --max-input %lld", j->input_len,
                 (long long)s->cfg->max_input);
        *http_status = 413;
        /* dead-letter the message as it came: the input alone is what was too big */
        job_set_input(j, item, len);
        s->rejected = 1;
        return CLAIM_REJECT;
    }
    if (!j->id[0]) {
        /* Write the id into the held item so a re-delivery keeps it. */
        char werr[256];
        size_t elen;
        id_uuid4(j->id);
        char *env = job_envelope_json(j, &elen);
        redisReply *r = rconn_cmd(s->c, RC_RETRY, werr, sizeof(werr), "LSET %s 0 %b", s->proc, env, elen);
        if (!r || rreply_is_err(r))
            log_warn("could not record the job id in %s (%s): a re-delivery would get a new id", s->proc,
                     r ? r->str : werr);
        if (r) freeReplyObject(r);
        free(env);
    }
    return CLAIM_OK;
}

/* The claim script's arguments. */
static void add_claim(lsrc *s, rbatch *b) {
    const char *argv[] = {"EVAL",        LIST_CLAIM_LUA, "4",         s->lease,       s->reg,
                          s->proc,       s->cfg->queue,  s->me,       s->lease_ms,    s->cfg->prefix,
                          s->cfg->queue, s->use_status ? "1" : "0"};
    size_t lens[12];
    for (int k = 0; k < 12; k++) lens[k] = strlen(argv[k]);
    rbatch_addv(b, 12, argv, lens);
}

/* The claim script (LIST_CLAIM_LUA): registers us, sweeps the orphan it
 * names, and takes the item it moved or found in our list. CLAIM_NONE
 * with *empty set: the queue had nothing and no orphan was swept (one
 * swept may be back in the queue, and another may wait: look again at
 * once rather than block). */
static int claim_script(lsrc *s, job *j, int *http_status, int *empty, char *err, size_t errlen) {
    rbatch b;
    int rc = CLAIM_ERR;
    *empty = 0;
    rbatch_init(&b);
    add_claim(s, &b);
    SEAM("claim");
    if (rconn_run(s->c, &b, RC_RETRY, err, errlen) < 0) {
        rbatch_free(&b);
        return CLAIM_ERR;
    }
    redisReply *r = b.rep[0];
    if (rreply_check(r, "claim", err, errlen) < 0) goto end;
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 2 || r->element[0]->type != REDIS_REPLY_STRING) {
        snprintf(err, errlen, "claim: unexpected reply");
        goto end;
    }
    int mine = strcmp(r->element[0]->str, "mine") == 0, res;
    int swept = !mine && sweep_orphan(s, r, &res);
    const redisReply *item = r->element[1];
    if (item->type != REDIS_REPLY_STRING) {
        *empty = !swept;
        rc = CLAIM_NONE;
        goto end;
    }
    if (mine) log_info("found a job already in %s (a reply was lost): taking it", s->proc);
    rc = take_item(s, item->str, item->len, j, http_status, err, errlen);
end:
    rbatch_free(&b);
    return rc;
}

/* The claim script first: it takes a waiting item in the same step that
 * renews the lease and the registration, so an item is never held
 * unregistered even when the script fails. Only when the queue was empty
 * does BLMOVE wait for one (at most RC_BLOCK_MAX_MS, right after the
 * script renewed the lease, so the precondition holds). BLMOVE is not
 * re-sent on a lost connection (it is not idempotent): the next claim
 * script finds what it moved as 'mine'. */
static int list_claim(void *state, int timeout_ms, job *j, int *http_status, char *err, size_t errlen) {
    lsrc *s = state;
    int empty;
    int rc = claim_script(s, j, http_status, &empty, err, errlen);
    if (rc != CLAIM_NONE || !empty) return rc;
    int ms = timeout_ms < 1 ? 1 : timeout_ms > RC_BLOCK_MAX_MS ? RC_BLOCK_MAX_MS : timeout_ms;
    redisReply *mv = rconn_cmd(s->c, 0, err, errlen, "BLMOVE %s %s RIGHT LEFT %d.%03d", s->cfg->queue, s->proc,
                               ms / 1000, ms % 1000);
    if (!mv) {
        log_warn("claim: %s", err);
        return CLAIM_NONE;
    }
    rc = CLAIM_NONE;
    if (rreply_check(mv, "BLMOVE", err, errlen) < 0)
        rc = CLAIM_ERR;
    else if (mv->type == REDIS_REPLY_STRING)
        rc = take_item(s, mv->str, mv->len, j, http_status, err, errlen);
    freeReplyObject(mv);
    return rc;
}

static int list_heartbeat(void *state, job *j, char *err, size_t errlen) {
    lsrc *s = state;
    (void)j;
    const char *argv[] = {"EVAL", HEARTBEAT_LUA, "3", s->lease, s->proc, s->reg, s->lease_ms, s->me};
    size_t lens[8];
    for (int k = 0; k < 8; k++) lens[k] = strlen(argv[k]);
    redisReply *r = rconn_cmdv(s->c, RC_RETRY, err, errlen, 8, argv, lens);
    if (!r) return -3; /* unreachable for the whole budget */
    int rc = 0;
    if (rreply_check(r, "lease renewal", err, errlen) < 0) {
        rc = -2;
    } else if (r->integer == 0) {
        snprintf(err, errlen, "the lease %s expired and another replica took the job back", s->lease);
        rc = -1;
    } else if (r->integer == 2) {
        log_warn("the lease %s had expired but the job was still ours: renewed", s->lease);
    }
    freeReplyObject(r);
    return rc;
}

/* The settle script for o, its target and its message (malloc'd, or NULL). */
typedef struct settle_cmd {
    const char *mode, *target;
    char *msg;
    size_t msg_len;
    char rk[512], fence[24];
} settle_cmd;

static void settle_build(lsrc *s, const job *j, const outcome *o, settle_cmd *sc) {
    memset(sc, 0, sizeof(*sc));
    sc->mode = "ack";
    sc->target = s->cfg->queue;
    switch (o->disp) {
    case DISP_ACK:
        break;
    case DISP_RETRY: {
        job next = *j;
        next.attempt = j->attempt + 1;
        sc->msg = job_envelope_json(&next, &sc->msg_len);
        sc->mode = "lpush";
        break;
    }
    case DISP_DEAD:
        sc->msg = dead_letter_json(s, j, s->rejected, job_state_name(o->state), o->error, s->me, &sc->msg_len);
        sc->mode = "lpush";
        sc->target = s->cfg->dead_letter;
        break;
    case DISP_RELEASE:
        sc->mode = "release";
        break;
    }
    rkey(sc->rk, sizeof(sc->rk), s->cfg->prefix, "job", j->id);
    snprintf(sc->fence, sizeof(sc->fence), "%lld", s->use_status ? (long long)o->fence : 0LL);
}

/* Send the settle sc (rider: only queue it behind the final record). */
static redisReply *settle_send(lsrc *s, const outcome *o, const settle_cmd *sc, int rider, char *err,
                               size_t errlen) {
    const char *argv[] = {"EVAL",  SETTLE_LUA, "6",       s->proc,          s->lease, s->reg,   sc->target,
                          sc->rk,  s->quar,    sc->mode,  sc->msg ? sc->msg : "", s->me, sc->fence,
                          job_state_name(o->state)};
    size_t lens[14];
    for (int k = 0; k < 14; k++) lens[k] = strlen(argv[k]);
    lens[1] = sizeof(SETTLE_LUA) - 1;
    lens[10] = sc->msg ? sc->msg_len : 0;
    if (!rider) return rconn_cmdv(s->c, RC_RETRY, err, errlen, 14, argv, lens);
    rconn_ride(s->c, 14, argv, lens);
    return NULL;
}

/* The settle rides behind the store's final record when both use this
 * connection (--store redis): one round trip for both. It checks that the
 * record holds o's fence and state, so it does nothing when the final
 * write did not happen (stale, refused, poison). */
static void list_stage(void *state, job *j, const outcome *o) {
    lsrc *s = state;
    settle_cmd sc;
    settle_build(s, j, o, &sc);
    settle_send(s, o, &sc, 1, NULL, 0);
    free(sc.msg);
    s->staged = *o;
}

static int list_finish(void *state, job *j, const outcome *o, char *err, size_t errlen) {
    lsrc *s = state;
    settle_cmd sc;
    int rc = -1;

    settle_build(s, j, o, &sc);
    /* Staged for an outcome changed since, the rider did nothing: dropped. */
    redisReply *r = rconn_rider_reply(s->c, outcome_same_settle(&s->staged, o));
    if (!r) r = settle_send(s, o, &sc, 0, err, errlen);
    if (!r) goto end;
    if (rreply_check(r, "settle", err, errlen) < 0) goto end;
    if (r->integer == -1) {
        snprintf(err, errlen, "the record of job %s does not hold what was written under fence %s: not settling",
                 j->id, sc.fence);
        goto end;
    }
    if (r->integer == -2) {
        snprintf(err, errlen, "%s is not a list: job %s left in %s, replica %s moved to %s (fix it, then: redis-cli "
                 "SMOVE %s %s %s)", sc.target, j->id, s->proc, s->me, s->quar, s->quar, s->reg, s->me);
        goto end;
    }
    s->settled = 1;
    if (r->integer == 0)
        log_warn("nothing left in %s to settle (the claim was lost, or a re-sent settle already ran)", s->proc);
    else if (o->disp == DISP_RETRY)
        log_info("re-queued to %s as attempt %d", s->cfg->queue, j->attempt + 1);
    else if (o->disp == DISP_DEAD)
        log_warn("dead-lettered to %s", s->cfg->dead_letter);
    else if (o->disp == DISP_RELEASE)
        log_info("given back to the head of %s", s->cfg->queue);
    rc = 0;
end:
    if (r) freeReplyObject(r);
    free(sc.msg);
    return rc;
}

static void list_proof(void *state, const job *j, claim_proof *p) {
    lsrc *s = state;
    (void)j;
    p->kind = "list";
    p->key = s->proc;
    p->group = p->entry = NULL;
}

static void list_close(void *state) {
    lsrc *s = state;
    if (!s) return;
    if (!s->claimed && !s->settled) {
        char err[256];
        const char *argv[] = {"EVAL", TIDY_LUA, "3", s->proc, s->lease, s->reg, s->me};
        size_t lens[7];
        for (int k = 0; k < 7; k++) lens[k] = strlen(argv[k]);
        redisReply *r = rconn_cmdv(s->c, RC_IFCONNECTED, err, sizeof(err), 7, argv, lens);
        if (r) freeReplyObject(r);
    }
    rconn_close(s->c);
    free(s);
}

const source_ops source_redis_list = {
    .name = "redis-list",
    .can_retry = 1,
    .open = list_open,
    .claim = list_claim,
    .heartbeat = list_heartbeat,
    .stage = list_stage,
    .finish = list_finish,
    .proof = list_proof,
    .close = list_close,
};

/* `oneshot sweep` (redis/janitor.h): the replicas' sweep, run until the orphan
 * finder finds none. The finder names the first orphan of Q:workers; one
 * the sweep could not move (quarantined: out of Q:workers; a broken key;
 * a copy that changed under us) is not named twice in a row, and a round
 * that names the orphan it just failed on ends the walk (counted in
 * *left), so the walk ends: every round moves a copy, unregisters a
 * replica, or stops. */
int src_list_sweep(const config *cfg, rconn *c, buf *moved, int *n, int *left, char *err, size_t errlen) {
    lsrc s;
    char last[128] = "";
    int rc = -1, last_res = 0;

    memset(&s, 0, sizeof(s));
    s.cfg = cfg;
    s.c = c;
    s.report = moved;
    s.use_status = !cfg->store || strcmp(cfg->store, store_redis.name) == 0;
    rkey_queue(s.reg, sizeof(s.reg), cfg->queue, "workers", NULL);
    rkey_queue(s.quar, sizeof(s.quar), cfg->queue, "quarantine", NULL);
    *n = *left = 0;
    for (;;) {
        redisReply *r = rconn_cmd(c, RC_RETRY, err, errlen, "EVAL %s 1 %s %s %s %s", LIST_ORPHANS_LUA, s.reg,
                                  cfg->prefix, cfg->queue, s.use_status ? "1" : "0");
        if (!r) return -1;
        if (rreply_check(r, "sweep", err, errlen) < 0 || r->type != REDIS_REPLY_ARRAY || r->elements != 9 ||
            r->element[2]->type != REDIS_REPLY_STRING) {
            if (!err[0]) snprintf(err, errlen, "sweep: unexpected reply");
            freeReplyObject(r);
            return -1;
        }
        if (!r->element[2]->len) { /* no orphan left */
            freeReplyObject(r);
            rc = 0;
            break;
        }
        if (strcmp(last, r->element[2]->str) == 0) {
            /* the one the last round could not move: leave it */
            if (last_res == 0) (*left)++;
            freeReplyObject(r);
            rc = 0;
            break;
        }
        int res;
        snprintf(last, sizeof(last), "%s", r->element[2]->str);
        sweep_orphan(&s, r, &res);
        freeReplyObject(r);
        last_res = res;
        if (res == 1) {
            (*n)++;
            last[0] = '\0';
        } else if (res == -2 || res == -3) {
            (*left)++;
        } else if (res == -9) {
            snprintf(err, errlen, "sweep of replica %s's copy not done: Redis did not answer", last);
            return -1;
        }
    }
    return rc;
}
