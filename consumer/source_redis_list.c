/* source_redis_list.c -- the reliable-queue pattern on a Redis list
 * (DESIGN.md sections 4 and 7).
 *
 * Keys (Q = --queue, P = --prefix, W = this replica's id):
 *   Q                    the queue; producers LPUSH, replicas take from the right
 *   Q:processing:W       the one item W holds (BLMOVE Q Q:processing:W RIGHT LEFT)
 *   P:lease:W            W's lease, PX --lease, renewed every third of it
 *   Q:workers            set of the W that may hold a processing list
 *   --dead-letter        list of dead jobs (LPUSH, JSON with the error)
 *
 * Before every BLMOVE the lease is set and W registered by a script sent in
 * the same round trip, so a processing list is never without a live lease
 * or unregistered. The same script is the orphan sweep: a registered W'
 * with no lease has its item moved into our processing list (protected by
 * our lease), and this replica then puts it back at the head of the queue
 * (RPUSH: it is taken next) as an envelope with attempt + 1, or
 * dead-letters it beyond --max-attempts.
 * The Q:workers set keeps the sweep O(replicas) where SCAN would be
 * O(keyspace). A raw message (or an envelope without an id) gets its UUID
 * written back into the processing list (LSET), so a re-delivery after a
 * crash keeps the same job id.
 *
 * Settling is one script each, idempotent (safe to re-send after a lost
 * reply): ack deletes the processing list (it holds exactly that item: the
 * same as LREM + DEL without sending the item back); retry also LPUSHes the
 * envelope with attempt + 1 (the back of the queue: other jobs go first);
 * dead LPUSHes the dead letter; release (SIGTERM) RPUSHes the item back
 * untouched. If the processing list is already empty the claim was lost
 * (the lease expired and another replica swept it): nothing is pushed. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/buf.h"
#include "../common/clock.h"
#include "../common/log.h"
#include "redis_conn.h"
#include "replica.h"
#include "source.h"

#define SWEEP_MAX 100 /* orphans handled per claim call, to keep it bounded */

typedef struct lsrc {
    const config *cfg;
    rconn *c;
    char me[128];
    char proc[512];  /* Q:processing:W */
    char lease[512]; /* P:lease:W */
    char reg[512];   /* Q:workers */
    char lease_ms[24];
    int claimed;      /* an item sits in our processing list */
    int rejected;     /* ...and it was malformed: dead-letter it raw */
    int settled;      /* finish ran: lease and registration are gone */
    int suspect;      /* a BLMOVE reply was lost: check our processing list */
    int use_status;   /* --store redis: sweeps update the records too */
} lsrc;

/* KEYS: lease, workers set, our processing list. ARGV: W, lease ms, P, Q.
 * Returns {W, item} for an item of ours (left by a lost BLMOVE reply),
 * {W', item} for an orphan now moved into our list, or nil. */
static const char SWEEP_LUA[] =
    "redis.call('SET', KEYS[1], '1', 'PX', ARGV[2])\n"
    "redis.call('SADD', KEYS[2], ARGV[1])\n"
    "local mine = redis.call('LINDEX', KEYS[3], -1)\n"
    "if mine then return {ARGV[1], mine} end\n"
    "for _, w in ipairs(redis.call('SMEMBERS', KEYS[2])) do\n"
    "  if w ~= ARGV[1] and redis.call('EXISTS', ARGV[3] .. ':lease:' .. w) == 0 then\n"
    "    local it = redis.call('LMOVE', ARGV[4] .. ':processing:' .. w, KEYS[3], 'RIGHT', 'LEFT')\n"
    "    if it then return {w, it} end\n"
    "    redis.call('SREM', KEYS[2], w)\n"
    "  end\n"
    "end\n"
    "return false\n";

/* KEYS: our processing list, target list. ARGV: rpush|lpush|drop, message.
 * Moves the swept orphan out of our processing list. */
static const char REQUEUE_LUA[] =
    "if redis.call('LLEN', KEYS[1]) == 0 then return 0 end\n"
    "redis.call('RPOP', KEYS[1])\n"
    "if ARGV[1] == 'rpush' then redis.call('RPUSH', KEYS[2], ARGV[2])\n"
    "elseif ARGV[1] == 'lpush' then redis.call('LPUSH', KEYS[2], ARGV[2]) end\n"
    "return 1\n";

/* KEYS: processing list, lease, workers set, target. ARGV: ack|lpush|release, message, W.
 * Returns how many items the processing list held (0: the claim was lost). */
static const char FINISH_LUA[] =
    "local had = redis.call('LLEN', KEYS[1])\n"
    "if had > 0 then\n"
    "  if ARGV[1] == 'release' then redis.call('RPUSH', KEYS[4], redis.call('RPOP', KEYS[1]))\n"
    "  elseif ARGV[1] == 'lpush' then redis.call('LPUSH', KEYS[4], ARGV[2]) end\n"
    "  redis.call('DEL', KEYS[1])\n"
    "end\n"
    "redis.call('DEL', KEYS[2])\n"
    "redis.call('SREM', KEYS[3], ARGV[3])\n"
    "return had\n";

/* KEYS: lease, processing list, workers set. ARGV: lease ms, W.
 * 1 renewed; 2 the lease had lapsed but nobody took the item: renewed;
 * 0 the item is gone (swept): the claim is lost. */
static const char HEARTBEAT_LUA[] =
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
    snprintf(s->proc, sizeof(s->proc), "%s:processing:%s", cfg->queue, s->me);
    snprintf(s->lease, sizeof(s->lease), "%s:lease:%s", cfg->prefix, s->me);
    snprintf(s->reg, sizeof(s->reg), "%s:workers", cfg->queue);
    snprintf(s->lease_ms, sizeof(s->lease_ms), "%lld", (long long)cfg->lease * 1000);
    s->use_status = strcmp(cfg->store, "redis") == 0;
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

/* Record what the sweep did to an orphan, unless its record is already
 * final. Best effort: the queue is what matters. */
static void sweep_status(lsrc *s, const job *o, const char *worker, const char *state, const char *error) {
    status_rec st;
    char err[256];
    if (!s->use_status) return;
    status_init(&st);
    snprintf(st.id, sizeof(st.id), "%s", o->id);
    snprintf(st.state, sizeof(st.state), "%s", state);
    st.attempt = o->attempt;
    snprintf(st.worker, sizeof(st.worker), "%s", worker);
    snprintf(st.source, sizeof(st.source), "redis-list");
    snprintf(st.queue, sizeof(st.queue), "%s", s->cfg->queue);
    snprintf(st.error, sizeof(st.error), "%s", error);
    if (status_is_final(state)) st.finished_at = clock_wall_ms();
    if (rstatus_put(s->c, s->cfg->prefix, s->cfg->result_ttl, &st, 1, err, sizeof(err)) < 0)
        log_warn("sweep: status of job %s not written: %s", o->id, err);
}

/* An orphan of replica w now sits in our processing list: put it back
 * with the attempt counted, or dead-letter it. */
static int requeue_orphan(lsrc *s, const char *w, const char *item, size_t len, char *err, size_t errlen) {
    job o;
    char perr[256] = "", why[600], state[32] = "";
    char *msg = NULL;
    size_t msg_len = 0;
    const char *mode = "rpush", *target = s->cfg->queue;
    int rc = -1;

    memset(&o, 0, sizeof(o));
    if (job_parse_envelope(item, len, &o, perr, sizeof(perr)) < 0) {
        /* Malformed: back untouched; whoever claims it rejects it. */
        msg = xstrndup(item, len);
        msg_len = len;
        log_warn("sweep: malformed message of replica %s (lease expired) put back for rejection", w);
    } else {
        if (!o.id[0]) id_uuid4(o.id);
        if (s->use_status && rstatus_state(s->c, s->cfg->prefix, o.id, state, sizeof(state), err, errlen) < 0)
            goto end;
        if (strcmp(state, ST_SUCCEEDED) == 0 || strcmp(state, ST_CANCELLED) == 0) {
            mode = "drop";
            log_info("sweep: job %s of replica %s is already %s: dropping the leftover message", o.id, w, state);
        } else if (o.attempt + 1 > s->cfg->max_attempts) {
            snprintf(why, sizeof(why),
                     "attempt %d was interrupted (replica %s lost its lease) and --max-attempts %d is reached",
                     o.attempt, w, s->cfg->max_attempts);
            mode = "lpush";
            target = s->cfg->dead_letter;
            msg = dead_letter_json(s, &o, 0, ST_DEAD, why, w, &msg_len);
            log_warn("sweep: job %s dead-lettered to %s: %s", o.id, target, why);
            sweep_status(s, &o, w, ST_DEAD, why);
        } else {
            snprintf(why, sizeof(why), "attempt %d was interrupted (replica %s lost its lease); re-queued as attempt %d",
                     o.attempt, w, o.attempt + 1);
            sweep_status(s, &o, w, ST_INTERRUPTED, why);
            o.attempt++;
            msg = job_envelope_json(&o, &msg_len);
            log_warn("sweep: job %s: %s", o.id, why);
        }
    }
    const char *argv[] = {"EVAL", REQUEUE_LUA, "2", s->proc, target, mode, msg ? msg : ""};
    size_t lens[] = {4, sizeof(REQUEUE_LUA) - 1, 1, strlen(s->proc), strlen(target), strlen(mode), msg ? msg_len : 0};
    redisReply *r = rconn_cmdv(s->c, RC_RETRY, err, errlen, 7, argv, lens);
    if (!r) goto end;
    if (rreply_check(r, "sweep re-queue", err, errlen) == 0) rc = 0;
    freeReplyObject(r);
end:
    free(msg);
    job_free(&o);
    return rc;
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

/* The sweep script's arguments. */
static void add_sweep(lsrc *s, rbatch *b) {
    const char *argv[] = {"EVAL", SWEEP_LUA, "3", s->lease, s->reg, s->proc,
                          s->me, s->lease_ms, s->cfg->prefix, s->cfg->queue};
    size_t lens[10];
    for (int k = 0; k < 10; k++) lens[k] = strlen(argv[k]);
    rbatch_addv(b, 10, argv, lens);
}

/* After a lost connection: sweep alone (our own processing list may hold
 * the item of a BLMOVE whose reply never came) until nothing is left. */
static int claim_recover(lsrc *s, job *j, int *http_status, char *err, size_t errlen) {
    rbatch b;
    int rc = CLAIM_NONE;
    rbatch_init(&b);
    for (int i = 0; i < SWEEP_MAX; i++) {
        rbatch_free(&b);
        add_sweep(s, &b);
        if (rconn_run(s->c, &b, RC_RETRY, err, errlen) < 0) {
            rc = CLAIM_ERR;
            break;
        }
        redisReply *r = b.rep[0];
        if (rreply_check(r, "sweep", err, errlen) < 0) {
            rc = CLAIM_ERR;
            break;
        }
        if (r->type != REDIS_REPLY_ARRAY || r->elements != 2) { /* nothing held, nothing orphaned */
            s->suspect = 0;
            break;
        }
        if (strcmp(r->element[0]->str, s->me) == 0) {
            log_info("found a job already in %s: taking it", s->proc);
            s->suspect = 0;
            rc = take_item(s, r->element[1]->str, r->element[1]->len, j, http_status, err, errlen);
            break;
        }
        if (requeue_orphan(s, r->element[0]->str, r->element[1]->str, r->element[1]->len, err, errlen) < 0) {
            rc = CLAIM_ERR;
            break;
        }
    }
    rbatch_free(&b);
    return rc;
}

/* One round trip: the sweep (which also renews the lease and the
 * registration) and BLMOVE together. An orphan the sweep moved into our
 * processing list sits to the right of what BLMOVE adds, so putting it back
 * (RPOP) never touches the claimed item. */
static int list_claim(void *state, int timeout_ms, job *j, int *http_status, char *err, size_t errlen) {
    lsrc *s = state;
    rbatch b;
    int rc = CLAIM_ERR;

    if (s->suspect) {
        rc = claim_recover(s, j, http_status, err, errlen);
        if (rc != CLAIM_NONE || s->suspect) return rc;
    }
    int ms = timeout_ms < 1 ? 1 : timeout_ms > RC_BLOCK_MAX_MS ? RC_BLOCK_MAX_MS : timeout_ms;
    char secs[32];
    snprintf(secs, sizeof(secs), "%d.%03d", ms / 1000, ms % 1000);
    rbatch_init(&b);
    add_sweep(s, &b);
    rbatch_add(&b, "BLMOVE %s %s RIGHT LEFT %s", s->cfg->queue, s->proc, secs);
    /* Not re-sent on a lost connection (BLMOVE is not idempotent): the next
     * call recovers whatever reached our processing list. */
    if (rconn_run(s->c, &b, 0, err, errlen) < 0) {
        log_warn("claim: %s", err);
        s->suspect = 1;
        rbatch_free(&b);
        return CLAIM_NONE;
    }
    redisReply *sw = b.rep[0], *mv = b.rep[1];
    if (rreply_check(sw, "sweep", err, errlen) < 0 || rreply_check(mv, "BLMOVE", err, errlen) < 0) goto end;
    if (sw->type == REDIS_REPLY_ARRAY && sw->elements == 2) {
        if (strcmp(sw->element[0]->str, s->me) == 0) {
            /* Ours already (cannot happen unless a recovery was missed):
             * sweep alone next time to sort it out. */
            s->suspect = 1;
        } else if (requeue_orphan(s, sw->element[0]->str, sw->element[1]->str, sw->element[1]->len, err, errlen) < 0) {
            goto end;
        }
    }
    if (mv->type != REDIS_REPLY_STRING) {
        rc = CLAIM_NONE;
        goto end;
    }
    if (s->suspect) {
        /* Two items held: give the new one back and recover the old. */
        char e2[256];
        redisReply *r = rconn_cmd(s->c, RC_RETRY, e2, sizeof(e2), "LMOVE %s %s LEFT RIGHT", s->proc, s->cfg->queue);
        if (r) freeReplyObject(r);
        rc = CLAIM_NONE;
        goto end;
    }
    rc = take_item(s, mv->str, mv->len, j, http_status, err, errlen);
end:
    rbatch_free(&b);
    return rc;
}

static int list_heartbeat(void *state, job *j, char *err, size_t errlen) {
    lsrc *s = state;
    (void)j;
    const char *argv[] = {"EVAL", HEARTBEAT_LUA, "3", s->lease, s->proc, s->reg, s->lease_ms, s->me};
    size_t lens[8];
    for (int k = 0; k < 8; k++) lens[k] = strlen(argv[k]);
    redisReply *r = rconn_cmdv(s->c, RC_RETRY, err, errlen, 8, argv, lens);
    if (!r) return -2;
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

static int list_finish(void *state, job *j, const outcome *o, char *err, size_t errlen) {
    lsrc *s = state;
    char *msg = NULL;
    size_t msg_len = 0;
    const char *mode = "ack", *target = s->cfg->queue;
    int rc = -1;

    switch (o->disp) {
    case DISP_ACK:
        break;
    case DISP_RETRY: {
        job next = *j;
        next.attempt = j->attempt + 1;
        msg = job_envelope_json(&next, &msg_len);
        mode = "lpush";
        break;
    }
    case DISP_DEAD:
        msg = dead_letter_json(s, j, s->rejected, o->state, o->error, s->me, &msg_len);
        mode = "lpush";
        target = s->cfg->dead_letter;
        break;
    case DISP_RELEASE:
        mode = "release";
        break;
    }
    const char *argv[] = {"EVAL", FINISH_LUA, "4", s->proc, s->lease, s->reg, target, mode, msg ? msg : "", s->me};
    size_t lens[10];
    for (int k = 0; k < 10; k++) lens[k] = strlen(argv[k]);
    lens[8] = msg ? msg_len : 0;
    redisReply *r = rconn_cmdv(s->c, RC_RETRY, err, errlen, 10, argv, lens);
    if (!r) goto end;
    if (rreply_check(r, "settle", err, errlen) < 0) goto end;
    s->settled = 1;
    if (r->integer == 0)
        log_warn("the job had already been taken back from %s (lease lost): not settling it twice", s->proc);
    else if (o->disp == DISP_RETRY)
        log_info("re-queued to %s as attempt %d", s->cfg->queue, j->attempt + 1);
    else if (o->disp == DISP_DEAD)
        log_warn("dead-lettered to %s", s->cfg->dead_letter);
    else if (o->disp == DISP_RELEASE)
        log_info("given back to the head of %s", s->cfg->queue);
    rc = 0;
end:
    if (r) freeReplyObject(r);
    free(msg);
    return rc;
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

const source_ops source_redis_list = {"redis-list", 0, 1, list_open, list_claim, list_heartbeat, list_finish,
                                      list_close};
