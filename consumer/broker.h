/* broker.h -- one driver per transport, chosen once by name.
 *
 * A broker is everything oneshot knows about one transport (http,
 * redis-list, redis-stream, kafka): the replica's source, its store (the
 * default --store), and what the callers' subcommands and the fleet ask of
 * it (submit, backlog, sweep, redrive, status, wait, cancel; NULL where it
 * has none). broker.c holds the one registry; nothing else compares broker
 * names: the lifecycle, the fleet, the client and the configuration ask
 * the driver (its flags and operations). Adding a broker is one folder and
 * one registry line.
 *
 * A driver whose code lives in a module (Kafka: oneshot-kafka.so) has
 * the same table in the binary: its operations load the module on first
 * use and call into it, and `load` gives its source and store; nothing is
 * loaded to read its names and flags. */
#ifndef ONESHOT_BROKER_H
#define ONESHOT_BROKER_H

#include <stddef.h>

#include "../common/buf.h"
#include "../config/config.h"
#include "backlog.h"
#include "source.h"
#include "store.h"

struct rconn;
struct httpd;

/* One job to enqueue (`oneshot submit`). */
typedef struct submission {
    const char *input;
    size_t len;
    const char *id; /* NULL: the transport's default */
    int deadline_s; /* 0: none */
} submission;

/* Called by the Kafka re-drive before it produces job id again (the
 * Redis store's dead record, rrec_redrive_reset): 0 go on; 1 leave this
 * letter (err says why: its partition's re-drive stops there); -1 with err
 * (the re-drive stops). */
typedef int (*redrive_reset_fn)(void *ctx, const char *id, char *err, size_t errlen);

typedef struct broker broker;
struct broker {
    const char *name;       /* --source */
    const char *store_name; /* its store's --store name, the default --store */
    const source_ops *source;
    const store_ops *store;
    /* source and store NULL: where they are (a module): 0, or -1 with a
     * reason when they cannot be loaded. */
    int (*load)(const source_ops **src, const store_ops **st, char *err, size_t errlen);

    /* Jobs come as POST /job to the replica's own HTTP server: there is no
     * queue, nothing re-delivers a job whose replica died, and a caller's
     * subcommand without --source means the client default instead. */
    int serves_http;
    /* The broker the callers' subcommands use without --source, and whose
     * store they read without --store (unless the other is the only one
     * given an address): one driver sets it. */
    int client_default;
    /* The option that gives the broker's address ("redis", "kafka"). */
    const char *address_option;
    /* Its queue and its store are in Redis: the callers connect to --redis. */
    int in_redis;
    /* The fleet's --idle-timeout for its replicas (NULL: the fleet's own). */
    const char *fleet_idle_timeout;
    /* Give the HTTP server to the source (http). May be NULL. */
    void (*attach)(struct httpd *h);

    /* Enqueue; the job id into out_id. 0, or an exit code. NULL: none
     * (no_submit says what to do instead). */
    int (*submit)(const config *cfg, const submission *sub, char *out_id, size_t n);
    const char *no_submit;
    /* Write the "queued" record of job id, submitted through another
     * broker (src, its queue), into this broker's store: `oneshot submit
     * --source kafka --store redis`. A failure is a warning: the job is
     * submitted. May be NULL. */
    void (*record_queued)(const config *cfg, const char *id, const char *src);

    /* The fleet's backlog (backlog.h): open (0 or -1 with err), query,
     * close. NULL: no queue to watch. */
    int (*backlog_open)(const config *cfg, void **state, char *err, size_t errlen);
    int (*backlog_query)(void *state, const config *cfg, backlog_count *out, char *err, size_t errlen);
    void (*backlog_close)(void *state);

    /* `oneshot sweep` (redis/janitor.h), on the caller's connection to
     * --redis. NULL: none (no_sweep says why). */
    int (*sweep)(const config *cfg, struct rconn *c, buf *moved, int *n, int *left, char *err, size_t errlen);
    const char *no_sweep;

    /* `oneshot redrive` (redis/janitor.h): c is the caller's connection to
     * --redis (NULL when neither the queue nor the store is in Redis). */
    int (*redrive)(const config *cfg, struct rconn *c, const char *only, buf *moved, buf *skipped, int *n,
                   int *nskipped, int *matched, char *err, size_t errlen);
    /* Non-NULL: redrive takes --all only, and this says why. */
    const char *redrive_all_only;
    /* The store's reset of a re-driven job's record (see redrive_reset_fn),
     * ctx a redrive_reset_ctx. May be NULL. */
    redrive_reset_fn redrive_reset;

    /* `oneshot status ID`, `wait ID`, `cancel ID` against its store.
     * Return the exit code. cancel NULL: no_cancel says why (exit 78). */
    int (*status)(const config *cfg, const char *id);
    int (*wait)(const config *cfg, const char *id);
    int (*cancel)(const config *cfg, const char *id);
    const char *no_cancel;
};

/* What a redrive_reset_fn gets. */
typedef struct redrive_reset_ctx {
    const config *cfg;
    struct rconn *c;
    const char *source; /* the re-driving broker's name, for the record */
} redrive_reset_ctx;

/* The driver named name (--source), or NULL. */
const broker *broker_named(const char *name);
/* The driver whose store is named name (--store), or NULL. */
const broker *broker_with_store(const char *name);
/* b's source, or the store named name: loaded if need be; NULL with a
 * reason. */
const source_ops *broker_source(const broker *b, char *err, size_t errlen);
const store_ops *broker_store(const char *name, char *err, size_t errlen);
/* The broker the callers' subcommands use: --source, or the client
 * default when --source is not given and names an HTTP broker. */
const broker *broker_for_client(const config *cfg);
/* The broker whose store status/wait/cancel read (it has status and
 * wait): --store's (or the source's default store); without --store, the
 * only one given an address (e.g. --kafka alone); else the client
 * default's (also for a store without them: none). */
const broker *broker_store_for_client(const config *cfg);
/* The names of the drivers for which has(b), as "a, b and c" (conj
 * "and") into out. */
void broker_names(int (*has)(const broker *b), const char *conj, char *out, size_t n);

/* The replicas' default --source: the registry's first broker (http). */
const char *broker_default_name(void);
/* The brokers' names ("http|redis-list|..."), or (stores 1) their
 * stores' names, each once, as "a|b|c" for --source and --store. */
const char *broker_choices(int stores);

/* One letter of `oneshot redrive`'s report, appended to b (comma-separated
 * JSON objects): {"id","state","from"[,"to"][,"why"]}; to and why may be
 * NULL. Every driver's re-drive reports with it. */
void broker_redrive_report(buf *b, const char *id, const char *state, const char *from, const char *to,
                           const char *why);

/* The envelope (README "The job envelope") of a submission: no "attempt"
 * (oneshot sets it on a re-queue); JSON input stays JSON. Free it. */
char *broker_envelope(const char *id, const submission *sub, size_t *len);

extern const broker broker_http;
extern const broker broker_redis_list;
extern const broker broker_redis_stream;
extern const broker broker_kafka; /* consumer/kafka/driver.c; its code is in the module */

#endif
