/* redis/redrive.c -- `oneshot redrive`: dead letters back to the queue (see
 * redis/janitor.h and consumer/README.md "Re-drive").
 *
 * A dead letter carries the job as its producer sent it plus why it died:
 * redis-list a JSON line {"id","input"|"input_base64"|"raw"|"raw_base64",
 * "deadline_s","state","error","attempts",...}; redis-stream the entry's
 * own fields (id = the job id) followed by error, state, attempts, entry,
 * stream, worker, failed_at. The re-drive puts back a fresh job: list, an
 * envelope {"id","input","deadline_s"} (no attempt: attempts start again)
 * or, for a message that was rejected unparsed ("raw"), the producer's
 * bytes exactly; stream, the producer's fields without the dead letter's.
 * Never the dead letter itself. One script per letter checks that the
 * letter is still there and that the job's record is dead, rejected or
 * gone (a record in any other state means the job was run again since: the
 * letter is left), and then in one step pushes the job, removes the
 * letter, and deletes the record and the cancel mark (a `dead` record
 * makes a replica dead-letter the job again unrun; a cancel mark cancels
 * it). --dry-run runs the same checks and writes nothing. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/buf.h"
#include "../../common/job.h"
#include "../../common/log.h"
#include "../../common/status.h"
#include "../broker.h"
#include "janitor.h"
#include "record.h"

/* The checks both scripts share. KEYS[2] the queue, KEYS[3] the record;
 * WANT the queue's type. Leaves `s`, the record's state ('' none). */
#define REDRIVE_CHECK_LUA(WANT)                                                                   \
    "local ok, t = typeok(KEYS[2], '" WANT "')\n"                                                \
    "if not ok then return redis.error_reply('WRONGTYPE ' .. KEYS[2] .. ' holds a ' .. t .. ', not a " WANT "') end\n" \
    "ok, t = typeok(KEYS[3], 'hash')\n"                                                          \
    "if not ok then return {'skip', 'its record ' .. KEYS[3] .. ' holds a ' .. t .. ', not a hash'} end\n"

#define REDRIVE_STATE_LUA                                                                         \
    "local s = redis.call('HGET', KEYS[3], 'state') or ''\n"                                     \
    "if s ~= '' and s ~= 'dead' and s ~= 'rejected' then\n"                                      \
    "  return {'skip', 'its record says ' .. s .. ' (it ran again since): the letter is left'}\n" \
    "end\n"

/* After the push: the job starts afresh, known as queued (as `oneshot
 * submit` leaves it, so `wait` knows it), with no cancel mark and no
 * earlier attempt's result (a string: another type is left to FINAL's
 * poison check). KEYS[3] record, [4] mark, [5] result; ARGV ID, TTL and
 * CH (indexes) the job id, --result-ttl and the events channel. */
#define REDRIVE_QUEUED_LUA(SOURCE, ID, TTL, CH)                                                     \
    "local old_result = redis.call('TYPE', KEYS[5]).ok == 'string'\n"                              \
    "redis.call('DEL', KEYS[3], KEYS[4])\n"                                                         \
    "if old_result then redis.call('DEL', KEYS[5]) end\n"                                           \
    RREC_QUEUED_LUA("KEYS[3]", "ARGV[" ID "]", "'" SOURCE "'", "KEYS[2]", "ARGV[" TTL "]", "ARGV[" CH "]")

/* KEYS: dead list, queue, record, cancel mark, result. ARGV: the letter,
 * the job to push, dry (0/1), the job id, ttl, channel.
 * {'moved'|'would', state}, {'gone'} (another re-drive took it),
 * {'skip', why}. */
static const char LIST_REDRIVE_LUA[] =
    "--oneshot:LIST_REDRIVE\n"
    RREC_LUA_PRELUDE
    REDRIVE_CHECK_LUA("list")
    "if not redis.call('LPOS', KEYS[1], ARGV[1]) then return {'gone'} end\n"
    REDRIVE_STATE_LUA
    "if ARGV[3] == '1' then return {'would', s} end\n"
    "redis.call('LPUSH', KEYS[2], ARGV[2])\n"
    "redis.call('LREM', KEYS[1], -1, ARGV[1])\n"
    REDRIVE_QUEUED_LUA("redis-list", "4", "5", "6")
    "return {'moved', s}\n";

/* KEYS: dead stream, queue stream, record, cancel mark, result. ARGV:
 * the dead entry's id, dry (0/1), the job id, ttl, channel, then the XADD
 * field/value pairs. As above; 'moved' also gives the new entry's id. */
static const char STREAM_REDRIVE_LUA[] =
    "--oneshot:STREAM_REDRIVE\n"
    RREC_LUA_PRELUDE
    REDRIVE_CHECK_LUA("stream")
    "if not redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1])[1] then return {'gone'} end\n"
    REDRIVE_STATE_LUA
    "if ARGV[2] == '1' then return {'would', s} end\n"
    "local e = redis.call('XADD', KEYS[2], '*', unpack(ARGV, 6))\n"
    "redis.call('XDEL', KEYS[1], ARGV[1])\n"
    REDRIVE_QUEUED_LUA("redis-stream", "3", "4", "5")
    "return {'moved', s, e}\n";

/* One letter's fate, for the report. */
typedef struct rd_ctx {
    const config *cfg;
    rconn *c;
    const char *only; /* one job id, or NULL for all */
    buf *moved, *skipped;
    int n, nskipped, matched;
} rd_ctx;

static void skip(rd_ctx *x, const char *id, const char *state, const char *from, const char *why) {
    broker_redrive_report(x->skipped, id, state, from, NULL, why);
    x->nskipped++;
}

/* Run a redrive script; its reply handled. 1 the letter left the dead
 * letters (moved, or gone: someone else moved it), 0 it stays, -1 Redis
 * failed (err). */
static int run_script(rd_ctx *x, rargs *a, const char *id, const char *state, const char *from, char *err,
                      size_t errlen) {
    redisReply *r = rconn_cmdv(x->c, RC_RETRY, err, errlen, a->n, a->v, a->len);
    int rc = -1;
    if (!r || rreply_check(r, "redrive", err, errlen) < 0) goto end;
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 1 || r->element[0]->type != REDIS_REPLY_STRING) {
        snprintf(err, errlen, "redrive: unexpected reply");
        goto end;
    }
    const char *what = r->element[0]->str;
    const char *arg = r->elements > 1 && r->element[1]->type == REDIS_REPLY_STRING ? r->element[1]->str : "";
    rc = 0;
    if (strcmp(what, "moved") == 0 || strcmp(what, "would") == 0) {
        broker_redrive_report(x->moved, id, state, from, x->cfg->queue, NULL);
        x->n++;
        if (strcmp(what, "moved") == 0) {
            log_info("redrive: job %s (%s) back in %s", id, state, x->cfg->queue);
            rc = 1;
        }
    } else if (strcmp(what, "gone") == 0) {
        rc = 1; /* not ours to report: a concurrent re-drive moved it */
    } else {
        skip(x, id, state, from, arg);
    }
end:
    if (r) freeReplyObject(r);
    return rc;
}

/* --- redis-list --- */

/* The job a list letter holds: *msg the bytes to push (malloc'd). -1 with
 * why when the letter is not one of ours. */
static int list_letter_job(const char *letter, size_t len, char *id, size_t idlen, char *state, size_t stlen,
                           char **msg, size_t *msg_len, char *why, size_t whylen) {
    cJSON *o = cJSON_ParseWithLength(letter, len);
    const cJSON *jid = cJSON_GetObjectItemCaseSensitive(o, "id");
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(o, "state");
    const cJSON *rs = cJSON_GetObjectItemCaseSensitive(o, "raw");
    const cJSON *rb = cJSON_GetObjectItemCaseSensitive(o, "raw_base64");
    int rc = -1;
    *msg = NULL;
    if (!cJSON_IsObject(o) || !cJSON_IsString(jid) || !cJSON_IsString(st)) {
        snprintf(why, whylen, "not a oneshot dead letter (no \"id\" and \"state\")");
        goto end;
    }
    snprintf(id, idlen, "%s", jid->valuestring);
    snprintf(state, stlen, "%s", st->valuestring);
    if (cJSON_IsString(rs) || cJSON_IsString(rb)) {
        /* Rejected unparsed: the producer's bytes, exactly. */
        buf b = BUF_INIT;
        if (cJSON_IsString(rs))
            buf_append(&b, rs->valuestring, strlen(rs->valuestring));
        else if (buf_unbase64(&b, rb->valuestring, strlen(rb->valuestring)) < 0) {
            buf_free(&b);
            snprintf(why, whylen, "\"raw_base64\" is not base64");
            goto end;
        }
        *msg = buf_steal(&b, msg_len);
        if (!*msg) *msg = xstrdup("");
        rc = 0;
        goto end;
    }
    /* The job as an envelope: the letter's id, input and deadline_s read as
     * a replica reads an envelope (attempts is not attempt: they start
     * again), written back fresh. */
    job j;
    char perr[256];
    memset(&j, 0, sizeof(j));
    if (job_parse_envelope(letter, len, &j, perr, sizeof(perr)) < 0 || !j.id[0]) {
        snprintf(why, whylen, "its job cannot be read back: %s", perr);
        job_free(&j);
        goto end;
    }
    j.attempt = 0;
    *msg = job_envelope_json(&j, msg_len);
    job_free(&j);
    rc = 0;
end:
    cJSON_Delete(o);
    return rc;
}

/* The keys a re-drive script takes (KEYS[1..5]: the dead letters, the
 * queue, job id's record, cancel mark and result) and what its queued
 * record needs (ttl, channel). */
typedef struct rd_keys {
    char rec[512], mark[512], res[512], ttl[24], ch[300];
} rd_keys;

/* "EVAL lua 5 KEYS..." for job id into a (k holds the strings a borrows). */
static void redrive_eval(const rd_ctx *x, rargs *a, const char *lua, size_t n, const char *id, rd_keys *k) {
    rkey(k->rec, sizeof(k->rec), x->cfg->prefix, "job", id);
    rkey(k->mark, sizeof(k->mark), x->cfg->prefix, "cancel", id);
    rkey(k->res, sizeof(k->res), x->cfg->prefix, "result", id);
    snprintf(k->ttl, sizeof(k->ttl), "%d", x->cfg->result_ttl);
    rkey_events(k->ch, sizeof(k->ch), x->cfg->prefix);
    rargs_str(a, "EVAL");
    rargs_add(a, lua, n, 0);
    rargs_str(a, "5");
    rargs_str(a, x->cfg->dead_letter);
    rargs_str(a, x->cfg->queue);
    rargs_str(a, k->rec);
    rargs_str(a, k->mark);
    rargs_str(a, k->res);
}

static int list_one(rd_ctx *x, const redisReply *letter, int *left, char *err, size_t errlen) {
    char id[ID_MAX + 1] = "?", state[32] = "?", why[300];
    rd_keys k;
    char *msg = NULL;
    size_t msg_len = 0;
    int rc = 0;
    rargs a = {0};

    *left = 1;
    if (list_letter_job(letter->str, letter->len, id, sizeof(id), state, sizeof(state), &msg, &msg_len, why,
                        sizeof(why)) < 0) {
        if (!x->only) skip(x, id, state, x->cfg->dead_letter, why);
        return 0;
    }
    if (x->only && strcmp(x->only, id) != 0) goto end;
    x->matched++;
    if (job_state_of(state) == JS_REJECTED && !x->cfg->rejected) {
        skip(x, id, state, x->cfg->dead_letter, "rejected: re-driven only with --rejected");
        goto end;
    }
    redrive_eval(x, &a, LIST_REDRIVE_LUA, sizeof(LIST_REDRIVE_LUA) - 1, id, &k);
    rargs_add(&a, letter->str, letter->len, 0);
    rargs_add(&a, msg, msg_len, 0);
    rargs_str(&a, x->cfg->dry_run ? "1" : "0");
    rargs_str(&a, id);
    rargs_str(&a, k.ttl);
    rargs_str(&a, k.ch);
    rc = run_script(x, &a, id, state, x->cfg->dead_letter, err, errlen);
    if (rc == 1) *left = 0;
    if (rc > 0) rc = 0;
end:
    rargs_free(&a);
    free(msg);
    return rc;
}

/* Oldest first (the tail of the list), one letter at a time: a letter
 * moved leaves the list, so the next is at the same place from the tail;
 * one left is stepped over. */
static int list_redrive(rd_ctx *x, char *err, size_t errlen) {
    long kept = 0;
    for (;;) {
        redisReply *r = rconn_cmd(x->c, RC_RETRY, err, errlen, "LINDEX %s %ld", x->cfg->dead_letter, -1 - kept);
        if (!r) return -1;
        if (rreply_check(r, "LINDEX", err, errlen) < 0) {
            freeReplyObject(r);
            return -1;
        }
        if (r->type != REDIS_REPLY_STRING) {
            freeReplyObject(r);
            return 0;
        }
        int left;
        int rc = list_one(x, r, &left, err, errlen);
        freeReplyObject(r);
        if (rc < 0) return -1;
        kept += left;
    }
}

/* --- redis-stream --- */

/* The fields pairs_dead() appends, in its order. */
static const char *const DEAD_FIELDS[] = {"error", "state", "attempts", "entry", "stream", "worker", "failed_at"};
#define NDEAD (sizeof(DEAD_FIELDS) / sizeof(DEAD_FIELDS[0]))

static int stream_one(rd_ctx *x, const redisReply *e, char *err, size_t errlen) {
    char id[ID_MAX + 1] = "?", state[32] = "?", from[300];
    rd_keys keys;
    const redisReply *eid = e->element[0], *f = e->element[1];
    rargs a = {0};
    int rc = 0;

    snprintf(from, sizeof(from), "%s %s", x->cfg->dead_letter, eid->str);
    if (f->type != REDIS_REPLY_ARRAY || f->elements % 2 || f->elements < 2 * NDEAD + 2) goto foreign;
    size_t keep = f->elements - 2 * NDEAD;
    for (size_t k = 0; k < NDEAD; k++)
        if (f->element[keep + 2 * k]->type != REDIS_REPLY_STRING ||
            strcmp(f->element[keep + 2 * k]->str, DEAD_FIELDS[k]) != 0)
            goto foreign;
    for (size_t i = 0; i < keep; i += 2)
        if (f->element[i]->type == REDIS_REPLY_STRING && strcmp(f->element[i]->str, "id") == 0 &&
            f->element[i + 1]->type == REDIS_REPLY_STRING) {
            snprintf(id, sizeof(id), "%s", f->element[i + 1]->str);
            break;
        }
    snprintf(state, sizeof(state), "%s", f->element[keep + 3]->str);
    if (x->only && strcmp(x->only, id) != 0) return 0;
    x->matched++;
    if (job_state_of(state) == JS_REJECTED && !x->cfg->rejected) {
        skip(x, id, state, from, "rejected: re-driven only with --rejected");
        return 0;
    }
    redrive_eval(x, &a, STREAM_REDRIVE_LUA, sizeof(STREAM_REDRIVE_LUA) - 1, id, &keys);
    rargs_str(&a, eid->str);
    rargs_str(&a, x->cfg->dry_run ? "1" : "0");
    rargs_str(&a, id);
    rargs_str(&a, keys.ttl);
    rargs_str(&a, keys.ch);
    /* The producer's fields as they are (the id field is the job id). */
    for (size_t i = 0; i < keep; i++) rargs_add(&a, f->element[i]->str, f->element[i]->len, 0);
    rc = run_script(x, &a, id, state, from, err, errlen) < 0 ? -1 : 0;
    rargs_free(&a);
    return rc;
foreign:
    if (!x->only) skip(x, id, state, from, "not a oneshot dead letter (its last fields are not error, state, ...)");
    return 0;
}

/* Oldest first, 100 entries a page, from after the last one seen. */
static int stream_redrive(rd_ctx *x, char *err, size_t errlen) {
    char start[80] = "-";
    for (;;) {
        redisReply *r = rconn_cmd(x->c, RC_RETRY, err, errlen, "XRANGE %s %s + COUNT 100", x->cfg->dead_letter, start);
        if (!r) return -1;
        if (rreply_check(r, "XRANGE", err, errlen) < 0) {
            freeReplyObject(r);
            return -1;
        }
        if (r->type != REDIS_REPLY_ARRAY || r->elements == 0) {
            freeReplyObject(r);
            return 0;
        }
        for (size_t i = 0; i < r->elements; i++) {
            const redisReply *e = r->element[i];
            if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 || e->element[0]->type != REDIS_REPLY_STRING)
                continue;
            snprintf(start, sizeof(start), "(%s", e->element[0]->str);
            if (stream_one(x, e, err, errlen) < 0) {
                freeReplyObject(r);
                return -1;
            }
        }
        freeReplyObject(r);
    }
}

static int redrive(const config *cfg, rconn *c, const char *only, buf *moved, buf *skipped, int *n, int *nskipped,
                   int *matched, int (*walk)(rd_ctx *, char *, size_t), char *err, size_t errlen) {
    rd_ctx x = {cfg, c, only, moved, skipped, 0, 0, 0};
    int rc = walk(&x, err, errlen);
    *n = x.n;
    *nskipped = x.nskipped;
    *matched = x.matched;
    return rc;
}

int src_list_redrive(const config *cfg, rconn *c, const char *only, buf *moved, buf *skipped, int *n,
                     int *nskipped, int *matched, char *err, size_t errlen) {
    return redrive(cfg, c, only, moved, skipped, n, nskipped, matched, list_redrive, err, errlen);
}

int src_stream_redrive(const config *cfg, rconn *c, const char *only, buf *moved, buf *skipped, int *n,
                       int *nskipped, int *matched, char *err, size_t errlen) {
    return redrive(cfg, c, only, moved, skipped, n, nskipped, matched, stream_redrive, err, errlen);
}
