/* client.c -- the callers' subcommands (DESIGN.md section 3).
 *
 *   submit [INPUT | -]  enqueue one job, print its id
 *   status ID           print the status record as JSON (exit 0 found, 1 not)
 *   wait ID             block until the job is final, print its result on
 *                       stdout and its record on stderr, exit with its code
 *   cancel ID           set the cancel mark (exit 0; 1 when already final)
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
#include "kafka_module.h"
#include "redis_conn.h"
#include "redis_record.h"
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

/* The envelope of DESIGN.md section 4 for a submit: no "attempt" (oneshot
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

static int submit_redis_list(const config *cfg, const submission *sub, char *out_id, size_t n) {
    char err[512], uuid[40];
    size_t len;
    int code = OS_EXIT_UNAVAILABLE;

    if (!sub->id) id_uuid4(uuid);
    snprintf(out_id, n, "%s", sub->id ? sub->id : uuid);
    char *env = submit_envelope(out_id, sub, &len);
    rconn *c = client_connect(cfg, "submit");
    if (!c) goto end;
    redisReply *r = rconn_cmd(c, 0, err, sizeof(err), "LPUSH %s %b", cfg->queue, env, len);
    if (!r || rreply_check(r, "LPUSH", err, sizeof(err)) < 0)
        fprintf(stderr, "oneshot submit: %s\n", err);
    else
        code = 0;
    if (r) freeReplyObject(r);
end:
    rconn_close(c);
    free(env);
    return code;
}

static int submit_redis_stream(const config *cfg, const submission *sub, char *out_id, size_t n) {
    char err[512], dl[24];
    const char *argv[9];
    size_t lens[9];
    int argc = 0, code = OS_EXIT_UNAVAILABLE;

#define ARG(s, l) (argv[argc] = (s), lens[argc] = (l), argc++)
    ARG("XADD", 4);
    ARG(cfg->queue, strlen(cfg->queue));
    ARG("*", 1);
    ARG("input", 5);
    ARG(sub->input, sub->len);
    if (sub->id) {
        ARG("id", 2);
        ARG(sub->id, strlen(sub->id));
    }
    if (sub->deadline_s > 0) {
        snprintf(dl, sizeof(dl), "%d", sub->deadline_s);
        ARG("deadline_s", 10);
        ARG(dl, strlen(dl));
    }
#undef ARG
    rconn *c = client_connect(cfg, "submit");
    if (!c) return code;
    redisReply *r = rconn_cmdv(c, 0, err, sizeof(err), argc, argv, lens);
    if (!r || rreply_check(r, "XADD", err, sizeof(err)) < 0) {
        fprintf(stderr, "oneshot submit: %s\n", err);
    } else {
        /* Without --id the job id is the entry id. */
        snprintf(out_id, n, "%s", sub->id ? sub->id : r->str);
        code = 0;
    }
    if (r) freeReplyObject(r);
    rconn_close(c);
    return code;
}

/* Kafka: the producer lives in oneshot-kafka.so (kafka_module.h). */
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
        fprintf(stderr, "oneshot status: no record of job %s (not claimed yet, unknown, or expired)\n", id);
        return 1;
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

/* KEYS: cancel mark, record. ARGV: ttl, channel, id, now. A final job is
 * left alone (its state is returned). Otherwise the mark is set; a job
 * nobody runs right now (queued, retrying, interrupted) is recorded as
 * cancelled at once, under a new fence (so a replica that wakes with the
 * old one writes nothing), keeping what the record said of it, so `wait`
 * returns; a running one is stopped by its replica at the next heartbeat.
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
    "redis.call('SET', KEYS[1], '1', 'EX', ARGV[1])\n"
    "if s == 'running' then return s end\n"
    "redis.call('HSET', KEYS[2], 'id', ARGV[3], 'state', 'cancelled', 'exit_code', 0,\n"
    "           'error', 'cancelled before it ran', 'finished_at', ARGV[4],\n"
    "           'fence', (tonumber(r[2] or '0') or 0) + 1)\n"
    "redis.call('EXPIRE', KEYS[2], ARGV[1])\n"
    "publish(KEYS[2], ARGV[2])\n"
    "return 'cancelled'\n";

int client_cancel(const config *cfg) {
    const char *id;
    char err[512], mark[512], rec[512], channel[300], ttl[24], now[40];

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
    snprintf(channel, sizeof(channel), "%s:events", cfg->prefix);
    snprintf(ttl, sizeof(ttl), "%d", cfg->result_ttl);
    clock_iso8601(clock_wall_ms(), now, sizeof(now));
    rconn *c = client_connect(cfg, "cancel");
    if (!c) return OS_EXIT_UNAVAILABLE;
    SEAM("cancel");
    redisReply *r = rconn_cmd(c, RC_RETRY, err, sizeof(err), "EVAL %s 2 %s %s %s %s %s %s", CANCEL_LUA, mark, rec,
                              ttl, channel, id, now);
    rconn_close(c);
    if (!r || rreply_check(r, "cancel", err, sizeof(err)) < 0) {
        fprintf(stderr, "oneshot cancel: %s\n", err);
        if (r) freeReplyObject(r);
        return OS_EXIT_UNAVAILABLE;
    }
    const char *state = r->type == REDIS_REPLY_STRING ? r->str : "";
    int is_final = status_is_final(state) && strcmp(state, ST_CANCELLED) != 0;
    int code = 0;
    if (strcmp(state, ST_CANCELLED) == 0 || strcmp(state, ST_RUNNING) == 0) {
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
