/* client.c -- the callers' subcommands.
 *
 *   submit [INPUT | -]  enqueue one job, print its id
 *   status ID           print the status record as JSON (exit 0 found, 1 not)
 *   wait ID             block until the job is final, print its result on
 *                       stdout and its record on stderr, exit with its code
 *   cancel ID           set the cancel mark (exit 0; 1 when already final)
 *   sweep               move the orphans of killed replicas back to the queue
 *                       (or the dead letters), print what moved as JSON
 *   redrive [ID|--all]  dead letters back to the queue as fresh jobs
 *
 * submit goes through a table of submitters keyed by --source, so another
 * transport (Kafka) is one more row. status, wait and cancel read the Redis
 * store; with the Kafka store status and wait read its topics and cancel
 * refuses (kafka_store). Exit codes: 69 Redis unreachable, 78 bad
 * arguments, 65 input over --max-input, 75 wait --timeout expired before
 * the job ended. */
#include "client.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/buf.h"
#include "../common/clock.h"
#include "../common/exitcodes.h"
#include "../common/ids.h"
#include "../common/log.h"
#include "../common/status.h"
#include "redis/janitor.h"
#include "kafka/module.h"
#include "redis/conn.h"
#include "redis/record.h"
#include "seam.h"

#define WAIT_POLL_MS 1000      /* re-read the record this often even when subscribed */
#define WAIT_POLL_NOSUB_MS 250 /* ...and this often when the subscription is lost */

static void client_log_init(const config *cfg) {
    int level = log_level_parse(cfg->log_level);
    /* Text on a terminal-facing command unless JSON was asked for. */
    log_init(level < 0 ? LL_INFO : level, config_is_set(cfg, "log-format") && strcmp(cfg->log_format, "json") == 0,
             NULL);
}

static int id_arg(const config *cfg, const char *cmd, const char **id) {
    *id = cfg->nargs ? cfg->args[0] : "";
    if (!id_valid(*id, strlen(*id))) {
        fprintf(stderr, "oneshot %s: invalid configuration: the job id must be 1..%d characters of [A-Za-z0-9._:-]\n",
                cmd, ID_MAX);
        return -1;
    }
    return 0;
}

static rconn *client_connect(const config *cfg, const char *cmd) {
    char err[512], who[64];
    snprintf(who, sizeof(who), "%s", cmd);
    rconn *c = rconn_open(cfg->redis_url, who, err, sizeof(err));
    if (!c) fprintf(stderr, "oneshot %s: %s\n", cmd, err);
    return c;
}

/* --- submit --- */

typedef struct submission {
    const char *input;
    size_t len;
    const char *id; /* NULL: the transport's default */
    int deadline_s; /* 0: none */
} submission;

/* Enqueue; the job id into out_id. 0, or an exit code. */
typedef int (*submit_fn)(const config *cfg, const submission *sub, char *out_id, size_t n);

/* The envelope (README "The job envelope") for a submit: no "attempt" (oneshot
 * sets it on a re-queue); JSON input stays JSON. */
static char *submit_envelope(const char *id, const submission *sub, size_t *len) {
    job j;
    memset(&j, 0, sizeof(j));
    snprintf(j.id, sizeof(j.id), "%s", id);
    j.input = (char *)sub->input;
    j.input_len = sub->len;
    j.deadline_s = sub->deadline_s;
    return job_envelope_json(&j, len);
}

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
static int submit_redis(const config *cfg, const char *kind, const char *id, rargs *payload, char *out_id, size_t n) {
    char err[512], prefix[300], ttl[24], channel[300];
    rargs a;
    int code = OS_EXIT_UNAVAILABLE;

    memset(&a, 0, sizeof(a));
    rkey(prefix, sizeof(prefix), cfg->prefix, "job", "");
    snprintf(ttl, sizeof(ttl), "%d", cfg->result_ttl);
    snprintf(channel, sizeof(channel), "%s:events", cfg->prefix);
    rargs_copy(&a, "EVAL");
    rargs_add(&a, SUBMIT_LUA, sizeof(SUBMIT_LUA) - 1, 0);
    rargs_copy(&a, "1");
    rargs_copy(&a, cfg->queue);
    rargs_copy(&a, kind);
    rargs_copy(&a, id ? id : "");
    rargs_copy(&a, prefix);
    rargs_copy(&a, ttl);
    rargs_copy(&a, channel);
    rargs_copy(&a, strcmp(kind, "list") == 0 ? "redis-list" : "redis-stream");
    for (int i = 0; i < payload->n; i++) rargs_add(&a, payload->v[i], payload->len[i], 0);
    rconn *c = client_connect(cfg, "submit");
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

static int submit_redis_list(const config *cfg, const submission *sub, char *out_id, size_t n) {
    char uuid[40];
    size_t len;
    rargs p;

    memset(&p, 0, sizeof(p));
    if (!sub->id) id_uuid4(uuid);
    const char *id = sub->id ? sub->id : uuid;
    char *env = submit_envelope(id, sub, &len);
    rargs_add(&p, env, len, 0);
    int code = submit_redis(cfg, "list", id, &p, out_id, n);
    free(env);
    return code;
}

static int submit_redis_stream(const config *cfg, const submission *sub, char *out_id, size_t n) {
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
    return submit_redis(cfg, "stream", sub->id, &p, out_id, n);
}

/* Kafka: the producer lives in oneshot-kafka.so (kafka/module.h). */
static int submit_kafka(const config *cfg, const submission *sub, char *out_id, size_t n) {
    char err[512], uuid[40];
    const kafka_module *m = kafka_module_load(err, sizeof(err));
    if (!m) {
        fprintf(stderr, "oneshot submit: %s\n", err);
        return OS_EXIT_UNAVAILABLE;
    }
    if (!sub->id) id_uuid4(uuid);
    snprintf(out_id, n, "%s", sub->id ? sub->id : uuid);
    size_t len;
    char *env = submit_envelope(out_id, sub, &len);
    int code = m->submit(cfg, out_id, env, len);
    free(env);
    return code;
}

static const struct submitter {
    const char *source;
    submit_fn fn;
} submitters[] = {
    {"redis-list", submit_redis_list},
    {"redis-stream", submit_redis_stream},
    {"kafka", submit_kafka},
};

/* The INPUT argument, or standard input for "-" or none. */
static int read_input(const config *cfg, buf *in) {
    if (cfg->nargs && strcmp(cfg->args[0], "-") != 0) {
        buf_puts(in, cfg->args[0]);
        return 0;
    }
    char chunk[65536];
    size_t got;
    while ((got = fread(chunk, 1, sizeof(chunk), stdin)) > 0) {
        buf_append(in, chunk, got);
        if ((int64_t)in->len > cfg->max_input) break;
    }
    if (ferror(stdin)) {
        fprintf(stderr, "oneshot submit: cannot read standard input\n");
        return -1;
    }
    return 0;
}

int client_submit(const config *cfg) {
    const char *source = cfg->source;
    const struct submitter *sm = NULL;
    buf in = BUF_INIT;
    char id[ID_MAX + 1] = "";
    int code;

    client_log_init(cfg);
    /* --source defaults to http for replicas; submitting means a queue. */
    if (strcmp(source, "http") == 0 && !config_is_set(cfg, "source")) source = "redis-list";
    for (size_t i = 0; i < sizeof(submitters) / sizeof(submitters[0]); i++)
        if (strcmp(submitters[i].source, source) == 0) sm = &submitters[i];
    if (!sm) {
        fprintf(stderr, "oneshot submit: invalid configuration: --source %s: submit supports redis-list, "
                        "redis-stream and kafka%s\n",
                source, strcmp(source, "http") == 0 ? " (over HTTP, POST /job to the replica)" : "");
        return OS_EXIT_CONFIG;
    }
    if (cfg->job_id && !id_valid(cfg->job_id, strlen(cfg->job_id))) {
        fprintf(stderr, "oneshot submit: invalid configuration: --id must be 1..%d characters of [A-Za-z0-9._:-]\n",
                ID_MAX);
        return OS_EXIT_CONFIG;
    }
    if (read_input(cfg, &in) < 0) {
        code = OS_EXIT_FAILED;
        goto end;
    }
    if ((int64_t)in.len > cfg->max_input) {
        fprintf(stderr, "oneshot submit: input of %s%zu bytes exceeds --max-input %lld\n",
                cfg->nargs && strcmp(cfg->args[0], "-") != 0 ? "" : "at least ", in.len,
                (long long)cfg->max_input);
        code = OS_EXIT_REJECTED;
        goto end;
    }
    submission sub = {in.data ? in.data : "", in.len, cfg->job_id, cfg->deadline};
    code = sm->fn(cfg, &sub, id, sizeof(id));
    if (code == 0) printf("%s\n", id);
end:
    buf_free(&in);
    return code;
}

/* --- the Kafka store --- */

/* A Kafka-only deployment: --store kafka (also the default with --source
 * kafka), or --kafka given without --redis or --store. status and wait
 * then read the Kafka store's topics (kafka_client.c), cancel refuses. */
static int kafka_store(const config *cfg) {
    if (strcmp(cfg->store, "kafka") == 0) return 1;
    return !config_is_set(cfg, "store") && config_is_set(cfg, "kafka") && !config_is_set(cfg, "redis");
}

/* status (wait 0) or wait (wait 1) through oneshot-kafka.so. */
static int client_kafka(const config *cfg, const char *cmd, const char *id, int wait) {
    char err[512];
    const kafka_module *m = kafka_module_load(err, sizeof(err));
    if (!m) {
        fprintf(stderr, "oneshot %s: %s\n", cmd, err);
        return OS_EXIT_UNAVAILABLE;
    }
    return wait ? m->wait(cfg, id) : m->status(cfg, id);
}

/* --- status --- */

/* What a missing record means (README "Job states"). */
#define NO_RECORD_WHY                                                                                     \
    "never submitted, expired after --result-ttl, or queued by a producer that writes no queued record " \
    "and not claimed yet"

int client_status(const config *cfg) {
    const char *id;
    char err[512];
    status_rec st;

    client_log_init(cfg);
    if (id_arg(cfg, "status", &id) < 0) return OS_EXIT_CONFIG;
    if (kafka_store(cfg)) return client_kafka(cfg, "status", id, 0);
    rconn *c = client_connect(cfg, "status");
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
    if (strcmp(st->state, ST_RUNNING) != 0 || strcmp(st->source, "http") != 0 || !st->heartbeat_at) return 0;
    return clock_wall_ms() - st->heartbeat_at > 3 * (int64_t)cfg->lease * 1000;
}

int client_wait(const config *cfg) {
    const char *id;
    char err[512], channel[300], result_key[512];
    status_rec st;
    rconn *c = NULL, *sub = NULL;
    int code = OS_EXIT_UNAVAILABLE;
    int64_t until = cfg->timeout > 0 ? clock_mono_ms() + (int64_t)cfg->timeout * 1000 : 0;

    client_log_init(cfg);
    if (id_arg(cfg, "wait", &id) < 0) return OS_EXIT_CONFIG;
    if (kafka_store(cfg)) return client_kafka(cfg, "wait", id, 1);
    c = client_connect(cfg, "wait");
    if (!c) return OS_EXIT_UNAVAILABLE;
    /* Subscribe before the first read so no transition falls in between. */
    snprintf(channel, sizeof(channel), "%s:events", cfg->prefix);
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

int client_cancel(const config *cfg) {
    const char *id;
    char err[512], mark[512], rec[512], result[512], channel[300], ttl[24], now[40];

    client_log_init(cfg);
    if (id_arg(cfg, "cancel", &id) < 0) return OS_EXIT_CONFIG;
    if (kafka_store(cfg)) {
        /* A cancel mark needs a store a replica can look up at its
         * heartbeat: the Kafka store has none (README "Kafka"). */
        fprintf(stderr, "oneshot cancel: the Kafka store keeps no cancel marks: run the replicas with --store redis "
                        "(and cancel with --redis), or stop the job's replica\n");
        return OS_EXIT_CONFIG;
    }
    rkey(mark, sizeof(mark), cfg->prefix, "cancel", id);
    rkey(rec, sizeof(rec), cfg->prefix, "job", id);
    rkey(result, sizeof(result), cfg->prefix, "result", id);
    snprintf(channel, sizeof(channel), "%s:events", cfg->prefix);
    snprintf(ttl, sizeof(ttl), "%d", cfg->result_ttl);
    clock_iso8601(clock_wall_ms(), now, sizeof(now));
    rconn *c = client_connect(cfg, "cancel");
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
    int is_final = status_is_final(state) && strcmp(state, ST_CANCELLED) != 0;
    int code = 0;
    if (strcmp(state, "unclaimed") == 0) {
        printf("{\"id\":\"%s\",\"cancel\":true,\"state\":\"unclaimed\"}\n", id);
        fprintf(stderr, "oneshot cancel: no record of job %s: set a cancel mark for --result-ttl %ds; a replica "
                        "that claims the job before then acknowledges it without running it and records it "
                        "cancelled (an id nobody submits is never recorded)\n", id, cfg->result_ttl);
    } else if (strcmp(state, ST_CANCELLED) == 0 || strcmp(state, ST_RUNNING) == 0) {
        printf("{\"id\":\"%s\",\"cancel\":true,\"state\":\"%s\"}\n", id, state);
        if (strcmp(state, ST_RUNNING) == 0)
            fprintf(stderr, "oneshot cancel: job %s is running: its replica stops it at its next heartbeat\n", id);
    } else if (is_final) {
        printf("{\"id\":\"%s\",\"cancel\":false,\"state\":\"%s\"}\n", id, state);
        fprintf(stderr, "oneshot cancel: job %s already ended (%s): nothing to cancel\n", id, state);
        code = 1;
    }
    freeReplyObject(r);
    return code;
}

/* --- sweep --- */

typedef int (*sweep_fn)(const config *cfg, rconn *c, buf *moved, int *n, int *left, char *err, size_t errlen);

static const struct sweeper {
    const char *source;
    sweep_fn fn;
} sweepers[] = {
    {"redis-list", src_list_sweep},
    {"redis-stream", src_stream_sweep},
};

/* One JSON object on stdout: {"source","queue","moved":[{"id","from",
 * "to","action","attempts"}...],"count","left"}. Exit 0 every orphan found
 * was moved (none is fine); 1 some were left where they are (quarantined
 * or a broken key: logged, and counted in "left"); 69 Redis unreachable or
 * a script refused; 78 a source without orphans to sweep. Safe beside
 * replicas and other sweeps: every move is the replicas' compare-and-set
 * script. */
int client_sweep(const config *cfg) {
    const char *source = cfg->source;
    const struct sweeper *sw = NULL;
    char err[512] = "";
    buf moved = BUF_INIT;
    int n = 0, left = 0, code = OS_EXIT_UNAVAILABLE;

    client_log_init(cfg);
    if (strcmp(source, "http") == 0 && !config_is_set(cfg, "source")) source = "redis-list";
    for (size_t i = 0; i < sizeof(sweepers) / sizeof(sweepers[0]); i++)
        if (strcmp(sweepers[i].source, source) == 0) sw = &sweepers[i];
    if (!sw) {
        fprintf(stderr, "oneshot sweep: invalid configuration: --source %s: sweep supports redis-list and "
                        "redis-stream%s\n",
                source, strcmp(source, "kafka") == 0 ? " (Kafka re-delivers an uncommitted offset by itself)" : "");
        return OS_EXIT_CONFIG;
    }
    /* The records are the replicas' store: Redis unless --store says otherwise
     * (the default store of the http source, none, is not theirs). */
    config eff = *cfg;
    eff.source = (char *)sw->source;
    if (!config_is_set(cfg, "store")) eff.store = (char *)"redis";
    rconn *c = client_connect(cfg, "sweep");
    if (!c) return OS_EXIT_UNAVAILABLE;
    int rc = sw->fn(&eff, c, &moved, &n, &left, err, sizeof(err));
    rconn_close(c);
    printf("{\"source\":\"%s\",\"queue\":", sw->source);
    buf q = BUF_INIT;
    buf_json_str(&q, cfg->queue, strlen(cfg->queue));
    printf("%s,\"moved\":[%s],\"count\":%d,\"left\":%d}\n", q.data, moved.data ? moved.data : "", n, left);
    buf_free(&q);
    if (rc < 0)
        fprintf(stderr, "oneshot sweep: %s\n", err);
    else
        code = left ? 1 : 0;
    if (left) fprintf(stderr, "oneshot sweep: %d orphan(s) could not be moved (see the log lines above)\n", left);
    buf_free(&moved);
    fflush(stdout);
    return code;
}

/* --- redrive --- */

typedef int (*redrive_fn)(const config *cfg, rconn *c, const char *only, buf *moved, buf *skipped, int *n,
                          int *nskipped, int *matched, char *err, size_t errlen);

/* KEYS: record, cancel mark, result. ARGV: id, ttl, channel, topic. The
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
    RREC_QUEUED_LUA("KEYS[1]", "ARGV[1]", "'kafka'", "ARGV[4]", "ARGV[2]", "ARGV[3]")
    "return ''\n";

typedef struct kreset {
    const config *cfg;
    rconn *c;
} kreset;

static int kafka_reset(void *ctx, const char *id, char *err, size_t errlen) {
    kreset *k = ctx;
    char rk[512], mark[512], res[512], ttl[24], ch[300];
    rkey(rk, sizeof(rk), k->cfg->prefix, "job", id);
    rkey(mark, sizeof(mark), k->cfg->prefix, "cancel", id);
    rkey(res, sizeof(res), k->cfg->prefix, "result", id);
    snprintf(ttl, sizeof(ttl), "%d", k->cfg->result_ttl);
    snprintf(ch, sizeof(ch), "%s:events", k->cfg->prefix);
    redisReply *r = rconn_cmd(k->c, RC_RETRY, err, errlen, "EVAL %s 3 %s %s %s %s %s %s %s", KAFKA_RESET_LUA, rk,
                              mark, res, id, ttl, ch, k->cfg->queue);
    int rc = -1;
    if (r && rreply_check(r, "redrive record", err, errlen) == 0 && r->type == REDIS_REPLY_STRING) {
        rc = r->len ? 1 : 0;
        if (rc) snprintf(err, errlen, "%s: the letter is left; this partition's re-drive stops here", r->str);
    }
    if (r) freeReplyObject(r);
    return rc;
}

/* Kafka: the module's re-drive, with the Redis store's records reset
 * first when --store redis. --all only: the letters are re-driven in
 * their order (kafka/module.h). */
static int redrive_kafka(const config *cfg, rconn *c, const char *only, buf *moved, buf *skipped, int *n,
                         int *nskipped, int *matched, char *err, size_t errlen) {
    const kafka_module *m = kafka_module_load(err, errlen);
    kreset k = {cfg, c};
    (void)only;
    *nskipped = *matched = 0;
    if (!m) return -1;
    int rc = m->redrive(cfg, c ? kafka_reset : NULL, &k, moved, skipped, n, err, errlen);
    if (skipped->len) *nskipped = 1;
    return rc;
}

static const struct redriver {
    const char *source;
    redrive_fn fn;
} redrivers[] = {
    {"redis-list", src_list_redrive},
    {"redis-stream", src_stream_redrive},
    {"kafka", redrive_kafka},
};

/* One JSON object on stdout (Kafka: "from" is topic:partition:offset): {"source","queue","dead_letter","dry_run",
 * "moved":[{"id","state","from","to"}...],"skipped":[{"id","state","from",
 * "why"}...],"count"}. Exit 0 done (an ID: at least one of its letters
 * moved, or would); 1 an ID with no letter, or whose letters were all
 * skipped; 69 Redis unreachable or a script refused; 78 bad arguments. */
int client_redrive(const config *cfg) {
    const char *source = cfg->source, *only = NULL;
    const struct redriver *rd = NULL;
    char err[512] = "";
    buf moved = BUF_INIT, skipped = BUF_INIT, q = BUF_INIT;
    int n = 0, nskipped = 0, matched = 0, code = OS_EXIT_UNAVAILABLE;

    client_log_init(cfg);
    if (strcmp(source, "http") == 0 && !config_is_set(cfg, "source")) source = "redis-list";
    for (size_t i = 0; i < sizeof(redrivers) / sizeof(redrivers[0]); i++)
        if (strcmp(redrivers[i].source, source) == 0) rd = &redrivers[i];
    if (!rd) {
        fprintf(stderr, "oneshot redrive: invalid configuration: --source %s: redrive supports redis-list, "
                        "redis-stream and kafka\n", source);
        return OS_EXIT_CONFIG;
    }
    int kafka = strcmp(rd->source, "kafka") == 0;
    if (kafka && cfg->nargs) {
        fprintf(stderr, "oneshot redrive: invalid configuration: Kafka dead letters are re-driven in their order "
                        "(--all); one letter by hand: README, Kafka, \"Re-drive\"\n");
        return OS_EXIT_CONFIG;
    }
    if ((int)cfg->nargs == cfg->all) {
        fprintf(stderr, "oneshot redrive: invalid configuration: give one job ID or --all\n");
        return OS_EXIT_CONFIG;
    }
    if (cfg->nargs && id_arg(cfg, "redrive", &only) < 0) return OS_EXIT_CONFIG;
    config eff = *cfg;
    eff.source = (char *)rd->source;
    rconn *c = NULL;
    /* Redis: the queue; Kafka: the records, with --store redis only. */
    if (!kafka || strcmp(cfg->store, "redis") == 0) {
        c = client_connect(cfg, "redrive");
        if (!c) return OS_EXIT_UNAVAILABLE;
    }
    int rc = rd->fn(&eff, c, only, &moved, &skipped, &n, &nskipped, &matched, err, sizeof(err));
    rconn_close(c);
    buf_printf(&q, "{\"source\":\"%s\",\"queue\":", rd->source);
    buf_json_str(&q, cfg->queue, strlen(cfg->queue));
    buf_puts(&q, ",\"dead_letter\":");
    buf_json_str(&q, cfg->dead_letter, strlen(cfg->dead_letter));
    printf("%s,\"dry_run\":%s,\"moved\":[%s],\"skipped\":[%s],\"count\":%d}\n", q.data,
           cfg->dry_run ? "true" : "false", moved.data ? moved.data : "", skipped.data ? skipped.data : "", n);
    if (rc == -2) {
        fprintf(stderr, "oneshot redrive: invalid configuration: %s\n", err);
        code = OS_EXIT_CONFIG;
    } else if (rc < 0) {
        fprintf(stderr, "oneshot redrive: %s\n", err);
    } else if (only && !matched) {
        fprintf(stderr, "oneshot redrive: no dead letter of job %s in %s\n", only, cfg->dead_letter);
        code = 1;
    } else if (only && !n) {
        fprintf(stderr, "oneshot redrive: the dead letters of job %s were left (see \"skipped\")\n", only);
        code = 1;
    } else {
        code = 0;
    }
    buf_free(&q);
    buf_free(&moved);
    buf_free(&skipped);
    fflush(stdout);
    return code;
}
