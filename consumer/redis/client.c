/* redis/client.c -- the callers' subcommands against Redis: submit to a
 * list or a stream (the job and its "queued" record in one script),
 * status, wait and cancel on the Redis store, and the Redis store's reset
 * of a Kafka re-drive. consumer/client.c chooses the broker and prints;
 * the drivers' tables (list.c, stream.c) point here. Exit codes: 69 Redis
 * unreachable, 65/66/75 as client.c says. */
#include "client.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../common/buf.h"
#include "../../common/clock.h"
#include "../../common/exitcodes.h"
#include "../../common/ids.h"
#include "../../common/log.h"
#include "../../common/status.h"
#include "../broker.h"
#include "../seam.h"
#include "conn.h"
#include "record.h"

#define WAIT_POLL_MS 1000      /* re-read the record this often even when subscribed */
#define WAIT_POLL_NOSUB_MS 250 /* ...and this often when the subscription is lost */

rconn *rclient_connect(const config *cfg, const char *cmd) {
    char err[512], who[64];
    snprintf(who, sizeof(who), "%s", cmd);
    rconn *c = rconn_open(cfg->redis_url, who, err, sizeof(err));
    if (!c) fprintf(stderr, "oneshot %s: %s\n", cmd, err);
    return c;
}

/* --- submit --- */


/* KEYS: the queue. ARGV: kind (list | stream), the job id ('' for a
 * stream: the entry id), the record key prefix (P:job:), ttl, channel,
 * source, then the envelope (list) or the entry's field/value pairs.
 * {'queued', id} | {'exists', state}. The job and its "queued" record in
 * one step, so `wait` knows the id from the moment it is queued; an id
 * with a record already (queued, running, final) is not queued again: a
 * replica would acknowledge the copy without running it. Not idempotent
 * (a re-send after a lost reply would queue twice): sent once. */
static const char SUBMIT_LUA[] =
    "--oneshot:SUBMIT\n"
    RREC_LUA_PRELUDE
    "local kind, id = ARGV[1], ARGV[2]\n"
    "local ok, t = typeok(KEYS[1], kind)\n"
    "if not ok then return redis.error_reply('WRONGTYPE ' .. KEYS[1] .. ' holds a ' .. t .. ', not a ' .. kind) end\n"
    "local rec = ARGV[3] .. id\n"
    "if id ~= '' then\n"
    "  local rok, rt = typeok(rec, 'hash')\n"
    "  if not rok then return redis.error_reply('WRONGTYPE ' .. rec .. ' holds a ' .. rt .. ', not a hash') end\n"
    "  local s = redis.call('HGET', rec, 'state')\n"
    "  if s then return {'exists', s} end\n"
    "end\n"
    "if kind == 'list' then\n"
    "  redis.call('LPUSH', KEYS[1], ARGV[7])\n"
    "else\n"
    "  local e = redis.call('XADD', KEYS[1], '*', unpack(ARGV, 7))\n"
    "  if id == '' then id = e; rec = ARGV[3] .. id end\n"
    "end\n"
    RREC_QUEUED_LUA("rec", "id", "ARGV[6]", "KEYS[1]", "ARGV[4]", "ARGV[5]")
    "return {'queued', id}\n";

/* Run SUBMIT_LUA with the job's payload (ARGV[7] on: borrowed strings
 * that outlive the call), freed here. */
static int rclient_submit(const config *cfg, const char *kind, const char *source, const char *id, rargs *payload,
                          char *out_id, size_t n) {
    char err[512], prefix[300], ttl[24], channel[300];
    rargs a;
    int code = OS_EXIT_UNAVAILABLE;

    memset(&a, 0, sizeof(a));
    rkey(prefix, sizeof(prefix), cfg->prefix, "job", "");
    snprintf(ttl, sizeof(ttl), "%d", cfg->result_ttl);
    rkey_events(channel, sizeof(channel), cfg->prefix);
    rargs_copy(&a, "EVAL");
    rargs_add(&a, SUBMIT_LUA, sizeof(SUBMIT_LUA) - 1, 0);
    rargs_copy(&a, "1");
    rargs_copy(&a, cfg->queue);
    rargs_copy(&a, kind);
    rargs_copy(&a, id ? id : "");
    rargs_copy(&a, prefix);
    rargs_copy(&a, ttl);
    rargs_copy(&a, channel);
    rargs_copy(&a, source);
    for (int i = 0; i < payload->n; i++) rargs_add(&a, payload->v[i], payload->len[i], 0);
    rconn *c = rclient_connect(cfg, "submit");
    redisReply *r = c ? rconn_cmdv(c, 0, err, sizeof(err), a.n, a.v, a.len) : NULL;
    rargs_free(&a);
    rargs_free(payload);
    if (!c) return code;
    if (!r || rreply_check(r, "submit", err, sizeof(err)) < 0) {
        fprintf(stderr, "oneshot submit: %s\n", err);
    } else if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 && r->element[0]->type == REDIS_REPLY_STRING &&
               r->element[1]->type == REDIS_REPLY_STRING) {
        if (strcmp(r->element[0]->str, "queued") == 0) {
            snprintf(out_id, n, "%s", r->element[1]->str);
            code = 0;
        } else {
            fprintf(stderr, "oneshot submit: job %s already %s: not queued again (a replica would acknowledge "
                            "the copy without running it); use another id\n", id ? id : "", r->element[1]->str);
            code = OS_EXIT_FAILED;
        }
    } else {
        fprintf(stderr, "oneshot submit: unexpected reply to the submit script\n");
    }
    if (r) freeReplyObject(r);
    rconn_close(c);
    return code;
}

int rclient_submit_list(const config *cfg, const submission *sub, char *out_id, size_t n) {
    char uuid[40];
    size_t len;
    rargs p;

    memset(&p, 0, sizeof(p));
    if (!sub->id) id_uuid4(uuid);
    const char *id = sub->id ? sub->id : uuid;
    char *env = broker_envelope(id, sub, &len);
    rargs_add(&p, env, len, 0);
    int code = rclient_submit(cfg, "list", broker_redis_list.name, id, &p, out_id, n);
    free(env);
    return code;
}

int rclient_submit_stream(const config *cfg, const submission *sub, char *out_id, size_t n) {
    char dl[24];
    rargs p;

    memset(&p, 0, sizeof(p));
    rargs_copy(&p, "input");
    rargs_add(&p, sub->input, sub->len, 0);
    if (sub->id) {
        rargs_copy(&p, "id");
        rargs_copy(&p, sub->id);
    }
    if (sub->deadline_s > 0) {
        snprintf(dl, sizeof(dl), "%d", sub->deadline_s);
        rargs_copy(&p, "deadline_s");
        rargs_copy(&p, dl);
    }
    /* Without --id the job id is the entry id. */
    return rclient_submit(cfg, "stream", broker_redis_stream.name, sub->id, &p, out_id, n);
}

/* --- status --- */


/* What a missing record means (README "Job states"). */
#define NO_RECORD_WHY                                                                                     \
    "never submitted, expired after --result-ttl, or queued by a producer that writes no queued record " \
    "and not claimed yet"

/* KEYS: the record. ARGV: id, source, queue, ttl, channel. The queued
 * record of a job submitted through another broker, unless the id has
 * one (a replica may have claimed it already). */
static const char RECORD_QUEUED_LUA[] =
    "--oneshot:RECORD_QUEUED\n"
    RREC_LUA_PRELUDE
    "if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end\n"
    RREC_QUEUED_LUA("KEYS[1]", "ARGV[1]", "ARGV[2]", "ARGV[3]", "ARGV[4]", "ARGV[5]")
    "return 1\n";

void rclient_record_queued(const config *cfg, const char *id, const char *src) {
    char err[512] = "", rec[512], ttl[24], channel[300];
    rkey(rec, sizeof(rec), cfg->prefix, "job", id);
    snprintf(ttl, sizeof(ttl), "%d", cfg->result_ttl);
    rkey_events(channel, sizeof(channel), cfg->prefix);
    rconn *c = rconn_open(cfg->redis_url, "submit", err, sizeof(err));
    redisReply *r = c ? rconn_cmd(c, RC_RETRY, err, sizeof(err), "EVAL %s 1 %s %s %s %s %s %s", RECORD_QUEUED_LUA,
                                  rec, id, src, cfg->queue, ttl, channel)
                      : NULL;
    if (!r || rreply_check(r, "submit", err, sizeof(err)) < 0)
        fprintf(stderr, "oneshot submit: job %s is queued, but its queued record is not: %s\n", id, err);
    if (r) freeReplyObject(r);
    rconn_close(c);
}

int rclient_status(const config *cfg, const char *id) {
    char err[512];
    status_rec st;

    rconn *c = rclient_connect(cfg, "status");
    if (!c) return OS_EXIT_UNAVAILABLE;
    int found = rrec_get(c, cfg->prefix, id, &st, err, sizeof(err));
    rconn_close(c);
    if (found < 0) {
        fprintf(stderr, "oneshot status: %s\n", err);
        return OS_EXIT_UNAVAILABLE;
    }
    if (!found) {
        fprintf(stderr, "oneshot status: no record of job %s (%s)\n", id, NO_RECORD_WHY);
        return OS_EXIT_NOINPUT;
    }
    char *json = status_to_json(&st, NULL);
    printf("%s\n", json);
    free(json);
    return 0;
}

/* --- wait --- */


/* Does this event concern job id? */
static int event_is_for(const char *payload, size_t len, const char *id) {
    cJSON *o = cJSON_ParseWithLength(payload, len);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, "id");
    int yes = cJSON_IsString(v) && strcmp(v->valuestring, id) == 0;
    cJSON_Delete(o);
    return yes;
}

/* A running HTTP job whose replica died (SIGKILL, OOM) stays running:
 * nothing re-delivers it. Its replica renews heartbeat_at every third of
 * its --lease; three leases (ours: the replica's is not recorded) without
 * one means it is gone. Jobs of a queue are moved on by the next claim or
 * `oneshot sweep`, so wait keeps waiting for them. */
static int replica_gone(const config *cfg, const status_rec *st) {
    const broker *b = broker_named(st->source);
    if (job_state_of(st->state) != JS_RUNNING || !b || !b->serves_http || !st->heartbeat_at) return 0;
    return clock_wall_ms() - st->heartbeat_at > 3 * (int64_t)cfg->lease * 1000;
}

int rclient_wait(const config *cfg, const char *id) {
    char err[512], channel[300], result_key[512];
    status_rec st;
    rconn *c = NULL, *sub = NULL;
    int code = OS_EXIT_UNAVAILABLE;
    int64_t until = cfg->timeout > 0 ? clock_mono_ms() + (int64_t)cfg->timeout * 1000 : 0;

    c = rclient_connect(cfg, "wait");
    if (!c) return OS_EXIT_UNAVAILABLE;
    /* Subscribe before the first read so no transition falls in between. */
    rkey_events(channel, sizeof(channel), cfg->prefix);
    sub = rconn_open(cfg->redis_url, "wait-events", err, sizeof(err));
    if (sub && rconn_subscribe(sub, channel, err, sizeof(err)) < 0) {
        rconn_close(sub);
        sub = NULL;
    }
    if (!sub) log_warn("events channel unavailable (%s): polling the record instead", err);
    for (;;) {
        int found = rrec_get(c, cfg->prefix, id, &st, err, sizeof(err));
        if (found < 0) {
            fprintf(stderr, "oneshot wait: %s\n", err);
            goto end;
        }
        if (found && status_is_final(st.state)) break;
        if (!found) {
            fprintf(stderr, "oneshot wait: no record of job %s (%s)\n", id, NO_RECORD_WHY);
            code = OS_EXIT_NOINPUT;
            goto end;
        }
        if (replica_gone(cfg, &st)) {
            fprintf(stderr, "oneshot wait: job %s is running, but its replica %s stopped renewing the record "
                            "at its heartbeat_at, and an HTTP job is never re-delivered: it will not end\n",
                    id, st.worker);
            code = OS_EXIT_UNAVAILABLE;
            goto end;
        }
        int64_t now = clock_mono_ms();
        if (until && now >= until) {
            fprintf(stderr, "oneshot wait: job %s is %s after %ds: giving up\n", id, found ? st.state : "not started",
                    cfg->timeout);
            code = OS_EXIT_IDLE;
            goto end;
        }
        int64_t slice = sub ? WAIT_POLL_MS : WAIT_POLL_NOSUB_MS;
        if (until && until - now < slice) slice = until - now;
        if (!sub) {
            clock_sleep_ms(slice);
            continue;
        }
        /* Take events until one is about this job, or the slice ends. */
        int64_t slice_end = now + slice;
        for (;;) {
            char *payload = NULL;
            size_t plen = 0;
            int64_t left = slice_end - clock_mono_ms();
            if (left <= 0) break;
            int got = rconn_next_message(sub, (int)left, &payload, &plen, err, sizeof(err));
            if (got < 0) {
                log_warn("events channel lost (%s): polling the record instead", err);
                rconn_close(sub);
                sub = NULL;
                break;
            }
            if (got == 0) break;
            int mine = event_is_for(payload, plen, id);
            free(payload);
            if (mine) break;
        }
    }
    /* Final: the result (when there is one) on stdout, the record on stderr. */
    rkey(result_key, sizeof(result_key), cfg->prefix, "result", id);
    redisReply *r = rconn_cmd(c, RC_RETRY, err, sizeof(err), "GET %s", result_key);
    if (!r) {
        fprintf(stderr, "oneshot wait: %s\n", err);
        goto end;
    }
    if (r->type == REDIS_REPLY_STRING) {
        fwrite(r->str, 1, r->len, stdout);
        if (r->len && r->str[r->len - 1] != '\n' && isatty(1)) fputc('\n', stdout);
    }
    freeReplyObject(r);
    char *json = status_to_json(&st, NULL);
    fprintf(stderr, "%s\n", json);
    free(json);
    code = st.exit_code >= 0 && st.exit_code <= 255 ? st.exit_code : OS_EXIT_FAILED;
end:
    rconn_close(sub);
    rconn_close(c);
    fflush(stdout);
    return code;
}

/* --- cancel --- */


/* KEYS: cancel mark, record, result. ARGV: ttl, channel, id, now. A final job is
 * left alone (its state is returned). Otherwise the mark is set; without
 * a record ('unclaimed': a job no replica has met, or an id nobody knows)
 * that is all, so no record is invented; a job nobody runs right now
 * (queued, retrying, interrupted) is recorded as
 * cancelled at once, under a new fence (so a replica that wakes with the
 * old one writes nothing), keeping who met it (attempt, worker, source,
 * queue) but nothing of an earlier attempt's run or result (its fields
 * and, a string, the result key), so `wait` returns; a running one is stopped by its replica at the next heartbeat.
 * A record key of the wrong type is reported, never written. Safe to
 * re-send: the second run finds the job cancelled. */
static const char CANCEL_LUA[] =
    "--oneshot:CANCEL\n"
    RREC_LUA_PRELUDE
    "local ok, t = typeok(KEYS[2], 'hash')\n"
    "if not ok then return redis.error_reply('WRONGTYPE ' .. KEYS[2] .. ' holds a ' .. t .. ', not a hash') end\n"
    "local r = redis.call('HMGET', KEYS[2], 'state', 'fence')\n"
    "local s = r[1] or ''\n"
    "if FINAL[s] then return s end\n"
    "local old_result = redis.call('TYPE', KEYS[3]).ok == 'string'\n"
    "redis.call('SET', KEYS[1], '1', 'EX', ARGV[1])\n"
    "if s == 'running' then return s end\n"
    "if s == '' then return 'unclaimed' end\n"
    "redis.call('HDEL', KEYS[2], 'result_bytes', 'content_type', 'duration_ms', 'cpu_ms', 'max_rss_kb',\n"
    "           'started_at', 'heartbeat_at', 'progress')\n"
    "if old_result then redis.call('DEL', KEYS[3]) end\n"
    "redis.call('HSET', KEYS[2], 'id', ARGV[3], 'state', 'cancelled', 'exit_code', 0,\n"
    "           'error', 'cancelled before it ran', 'finished_at', ARGV[4],\n"
    "           'fence', (tonumber(r[2] or '0') or 0) + 1)\n"
    "redis.call('EXPIRE', KEYS[2], ARGV[1])\n"
    "publish(KEYS[2], ARGV[2])\n"
    "return 'cancelled'\n";

int rclient_cancel(const config *cfg, const char *id) {
    char err[512], mark[512], rec[512], result[512], channel[300], ttl[24], now[40];

    rkey(mark, sizeof(mark), cfg->prefix, "cancel", id);
    rkey(rec, sizeof(rec), cfg->prefix, "job", id);
    rkey(result, sizeof(result), cfg->prefix, "result", id);
    rkey_events(channel, sizeof(channel), cfg->prefix);
    snprintf(ttl, sizeof(ttl), "%d", cfg->result_ttl);
    clock_iso8601(clock_wall_ms(), now, sizeof(now));
    rconn *c = rclient_connect(cfg, "cancel");
    if (!c) return OS_EXIT_UNAVAILABLE;
    SEAM("cancel");
    redisReply *r = rconn_cmd(c, RC_RETRY, err, sizeof(err), "EVAL %s 3 %s %s %s %s %s %s %s", CANCEL_LUA, mark, rec,
                              result, ttl, channel, id, now);
    rconn_close(c);
    if (!r || rreply_check(r, "cancel", err, sizeof(err)) < 0) {
        fprintf(stderr, "oneshot cancel: %s\n", err);
        if (r) freeReplyObject(r);
        return OS_EXIT_UNAVAILABLE;
    }
    const char *state = r->type == REDIS_REPLY_STRING ? r->str : "";
    enum job_state js = job_state_of(state);
    int is_final = job_state_final(js) && js != JS_CANCELLED;
    int code = 0;
    if (strcmp(state, "unclaimed") == 0) {
        printf("{\"id\":\"%s\",\"cancel\":true,\"state\":\"unclaimed\"}\n", id);
        fprintf(stderr, "oneshot cancel: no record of job %s: set a cancel mark for --result-ttl %ds; a replica "
                        "that claims the job before then acknowledges it without running it and records it "
                        "cancelled (an id nobody submits is never recorded)\n", id, cfg->result_ttl);
    } else if (js == JS_CANCELLED || js == JS_RUNNING) {
        printf("{\"id\":\"%s\",\"cancel\":true,\"state\":\"%s\"}\n", id, state);
        if (js == JS_RUNNING)
            fprintf(stderr, "oneshot cancel: job %s is running: its replica stops it at its next heartbeat\n", id);
    } else if (is_final) {
        printf("{\"id\":\"%s\",\"cancel\":false,\"state\":\"%s\"}\n", id, state);
        fprintf(stderr, "oneshot cancel: job %s already ended (%s): nothing to cancel\n", id, state);
        code = 1;
    }
    freeReplyObject(r);
    return code;
}

/* --- the Kafka re-drive --- */

/* KEYS: record, cancel mark, result. ARGV: id, ttl, channel, topic, source. The
 * Kafka re-drive's reset: a record that is dead, rejected (or gone)
 * becomes queued, without the mark or an earlier result (as a Redis
 * re-drive leaves it); otherwise its state (the job ran again since: the
 * letter is left). */
static const char KAFKA_RESET_LUA[] =
    "--oneshot:KAFKA_REDRIVE_RESET\n"
    RREC_LUA_PRELUDE
    "local ok, t = typeok(KEYS[1], 'hash')\n"
    "if not ok then return 'its record ' .. KEYS[1] .. ' holds a ' .. t end\n"
    "local s = redis.call('HGET', KEYS[1], 'state') or ''\n"
    "if s ~= '' and s ~= 'dead' and s ~= 'rejected' then return 'its record says ' .. s .. ' (it ran again since)' end\n"
    "local old_result = redis.call('TYPE', KEYS[3]).ok == 'string'\n"
    "redis.call('DEL', KEYS[1], KEYS[2])\n"
    "if old_result then redis.call('DEL', KEYS[3]) end\n"
    RREC_QUEUED_LUA("KEYS[1]", "ARGV[1]", "ARGV[5]", "ARGV[4]", "ARGV[2]", "ARGV[3]")
    "return ''\n";

int rclient_redrive_reset(void *ctx, const char *id, char *err, size_t errlen) {
    const redrive_reset_ctx *k = ctx;
    char rk[512], mark[512], res[512], ttl[24], ch[300];
    rkey(rk, sizeof(rk), k->cfg->prefix, "job", id);
    rkey(mark, sizeof(mark), k->cfg->prefix, "cancel", id);
    rkey(res, sizeof(res), k->cfg->prefix, "result", id);
    snprintf(ttl, sizeof(ttl), "%d", k->cfg->result_ttl);
    rkey_events(ch, sizeof(ch), k->cfg->prefix);
    redisReply *r = rconn_cmd(k->c, RC_RETRY, err, errlen, "EVAL %s 3 %s %s %s %s %s %s %s %s", KAFKA_RESET_LUA,
                              rk, mark, res, id, ttl, ch, k->cfg->queue, k->source);
    int rc = -1;
    if (r && rreply_check(r, "redrive record", err, errlen) == 0 && r->type == REDIS_REPLY_STRING) {
        rc = r->len ? 1 : 0;
        if (rc) snprintf(err, errlen, "%s: the letter is left; this partition's re-drive stops here", r->str);
    }
    if (r) freeReplyObject(r);
    return rc;
}
