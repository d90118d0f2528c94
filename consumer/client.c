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
 * Each goes through the broker's driver (broker.h): submit, sweep and
 * redrive through --source's, status, wait and cancel through the one
 * whose store the replicas write (broker_store_for_client: the Redis
 * store unless --store or the addresses given say otherwise; the Kafka
 * store reads its topics and refuses cancel). Exit codes: 69 Redis unreachable, 78 bad
 * arguments, 65 input over --max-input, 75 wait --timeout expired before
 * the job ended. */
#include "client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/buf.h"
#include "../common/exitcodes.h"
#include "../common/ids.h"
#include "../common/log.h"
#include "broker.h"
#include "redis/client.h"
#include "redis/conn.h"

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

/* --- submit --- */

static int has_submit(const broker *b) { return b->submit != NULL; }

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
    const broker *b = broker_for_client(cfg);
    char names[128];
    buf in = BUF_INIT;
    char id[ID_MAX + 1] = "";
    int code;

    client_log_init(cfg);
    if (!b->submit) {
        broker_names(has_submit, "and", names, sizeof(names));
        fprintf(stderr, "oneshot submit: invalid configuration: --source %s: submit supports %s%s\n", b->name, names,
                b->no_submit ? b->no_submit : "");
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
    code = b->submit(cfg, &sub, id, sizeof(id));
    /* Another broker's store (--store): its queued record there too, so
     * status and wait read the job from the moment it is queued. */
    const broker *st = config_is_set(cfg, "store") ? broker_store_for_client(cfg) : b;
    if (code == 0 && strcmp(st->store_name, b->store_name) != 0 && st->record_queued)
        st->record_queued(cfg, id, b->name);
    if (code == 0) printf("%s\n", id);
end:
    buf_free(&in);
    return code;
}

/* --- status, wait, cancel: the store's --- */

int client_status(const config *cfg) {
    const char *id;

    client_log_init(cfg);
    if (id_arg(cfg, "status", &id) < 0) return OS_EXIT_CONFIG;
    return broker_store_for_client(cfg)->status(cfg, id);
}

int client_wait(const config *cfg) {
    const char *id;

    client_log_init(cfg);
    if (id_arg(cfg, "wait", &id) < 0) return OS_EXIT_CONFIG;
    return broker_store_for_client(cfg)->wait(cfg, id);
}

int client_cancel(const config *cfg) {
    const char *id;

    client_log_init(cfg);
    if (id_arg(cfg, "cancel", &id) < 0) return OS_EXIT_CONFIG;
    const broker *sb = broker_store_for_client(cfg);
    if (!sb->cancel) {
        fprintf(stderr, "oneshot cancel: %s\n", sb->no_cancel);
        return OS_EXIT_CONFIG;
    }
    return sb->cancel(cfg, id);
}

/* --- sweep --- */

static int has_sweep(const broker *b) { return b->sweep != NULL; }


/* One JSON object on stdout: {"source","queue","moved":[{"id","from",
 * "to","action","attempts"}...],"count","left"}. Exit 0 every orphan found
 * was moved (none is fine); 1 some were left where they are (quarantined
 * or a broken key: logged, and counted in "left"); 69 Redis unreachable or
 * a script refused; 78 a source without orphans to sweep. Safe beside
 * replicas and other sweeps: every move is the replicas' compare-and-set
 * script. */
int client_sweep(const config *cfg) {
    const broker *b = broker_for_client(cfg);
    char err[512] = "", names[128];
    buf moved = BUF_INIT;
    int n = 0, left = 0, code = OS_EXIT_UNAVAILABLE;

    client_log_init(cfg);
    if (!b->sweep) {
        broker_names(has_sweep, "and", names, sizeof(names));
        fprintf(stderr, "oneshot sweep: invalid configuration: --source %s: sweep supports %s%s\n", b->name, names,
                b->no_sweep ? b->no_sweep : "");
        return OS_EXIT_CONFIG;
    }
    /* The records are the replicas' store: the broker's unless --store says
     * otherwise (the default store of the http source, none, is not theirs). */
    config eff = *cfg;
    eff.source = (char *)b->name;
    if (!config_is_set(cfg, "store")) eff.store = (char *)b->store_name;
    rconn *c = rclient_connect(cfg, "sweep");
    if (!c) return OS_EXIT_UNAVAILABLE;
    int rc = b->sweep(&eff, c, &moved, &n, &left, err, sizeof(err));
    rconn_close(c);
    printf("{\"source\":\"%s\",\"queue\":", b->name);
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

static int has_redrive(const broker *b) { return b->redrive != NULL; }

/* One JSON object on stdout (Kafka: "from" is topic:partition:offset): {"source","queue","dead_letter","dry_run",
 * "moved":[{"id","state","from","to"}...],"skipped":[{"id","state","from",
 * "why"}...],"count"}. Exit 0 done (an ID: at least one of its letters
 * moved, or would); 1 an ID with no letter, or whose letters were all
 * skipped; 69 Redis unreachable or a script refused; 78 bad arguments. */
int client_redrive(const config *cfg) {
    const broker *b = broker_for_client(cfg);
    const char *only = NULL;
    char err[512] = "", names[128];
    buf moved = BUF_INIT, skipped = BUF_INIT, q = BUF_INIT;
    int n = 0, nskipped = 0, matched = 0, code = OS_EXIT_UNAVAILABLE;

    client_log_init(cfg);
    if (!b->redrive) {
        broker_names(has_redrive, "and", names, sizeof(names));
        fprintf(stderr, "oneshot redrive: invalid configuration: --source %s: redrive supports %s\n", b->name, names);
        return OS_EXIT_CONFIG;
    }
    if (b->redrive_all_only && cfg->nargs) {
        fprintf(stderr, "oneshot redrive: invalid configuration: %s\n", b->redrive_all_only);
        return OS_EXIT_CONFIG;
    }
    if ((int)cfg->nargs == cfg->all) {
        fprintf(stderr, "oneshot redrive: invalid configuration: give one job ID or --all\n");
        return OS_EXIT_CONFIG;
    }
    if (cfg->nargs && id_arg(cfg, "redrive", &only) < 0) return OS_EXIT_CONFIG;
    config eff = *cfg;
    eff.source = (char *)b->name;
    rconn *c = NULL;
    /* Redis: the queue, or the records (a Kafka re-drive with --store redis). */
    const broker *sb = broker_with_store(cfg->store);
    if (b->in_redis || (sb && sb->in_redis)) {
        c = rclient_connect(cfg, "redrive");
        if (!c) return OS_EXIT_UNAVAILABLE;
    }
    int rc = b->redrive(&eff, c, only, &moved, &skipped, &n, &nskipped, &matched, err, sizeof(err));
    rconn_close(c);
    buf_printf(&q, "{\"source\":\"%s\",\"queue\":", b->name);
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
