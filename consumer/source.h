/* source.h -- where the one job comes from.
 *
 * A source is a small table of functions; the lifecycle calls through it
 * and never switches on the broker. At-least-once: nothing is acknowledged
 * before finish() with DISP_ACK/DISP_RETRY/DISP_DEAD, so a crash at any
 * earlier point leaves the message to be redelivered. */
#ifndef ONESHOT_SOURCE_H
#define ONESHOT_SOURCE_H

#include <stddef.h>
#include <stdint.h>

#include "../common/job.h"
#include "../common/status.h"
#include "../config/config.h"

enum claim_rc {
    CLAIM_ERR = -1,   /* broker unreachable: exit 69, nothing acked */
    CLAIM_OK = 0,     /* *j holds the job */
    CLAIM_NONE = 1,   /* nothing within the timeout; call again */
    CLAIM_REJECT = 2, /* a message arrived but is malformed: *j holds it raw
                         (id set when known), err the reason, http_status the
                         HTTP code; the lifecycle rejects it (exit 65) */
};

/* What finish() must do with the message. */
enum disposition {
    DISP_ACK,     /* done (succeeded, failed for good, cancelled, already done) */
    DISP_RETRY,   /* failed with attempts left: re-queue with attempt + 1, ack */
    DISP_DEAD,    /* dead-letter with the error, then ack */
    DISP_RELEASE, /* give it back untouched for another replica (SIGTERM) */
};

/* What proves, inside a Redis script, that this replica still holds its
 * copy of the job (consumer/README.md "Ownership and the fence"): kind
 * "list" (key: the processing list), "stream" (key: the stream, group,
 * entry; the consumer is the replica), or NULL for a source whose copies
 * Redis cannot see (http, kafka). */
typedef struct claim_proof {
    const char *kind;
    const char *key;
    const char *group;
    const char *entry;
    /* begun: the claim's own script began the job already (redis-stream
     * with --store redis, consumer/README.md "Steps"), and the store's
     * begin only hands on its answer: begin_rc (enum begin_rc) with fence
     * or info, and begun_at, the started_at it wrote. */
    int begun;
    int begin_rc;
    int64_t fence;
    int64_t begun_at;
    const char *info;
} claim_proof;

/* The end of a job as the source sees it. */
typedef struct outcome {
    enum disposition disp;
    enum job_state state;     /* final status state (its name: job_state_name) */
    int exit_code;            /* the process's exit code */
    int http_status;          /* for the HTTP source */
    const char *body;         /* HTTP response body / result */
    size_t body_len;
    const char *content_type;
    const char *error;        /* "" when none; for dead letters */
    int64_t fence;            /* >0: the record was written under this fence with
                                 state; settle only while it still says so */
} outcome;

/* Do a and b settle alike (a settle staged for a stands for b)? */
static inline int outcome_same_settle(const outcome *a, const outcome *b) {
    return a->disp == b->disp && a->state == b->state && a->fence == b->fence;
}

typedef struct source_ops {
    const char *name;
    /* Heartbeat period in ms; 0: a third of --lease. */
    int heartbeat_ms;
    /* 1: failed jobs can be re-queued and dead-lettered (brokers); 0: the
     * caller gets the failure (http). */
    int can_retry;
    /* Connect. -1 with a reason: the broker is unreachable (exit 69); -2:
     * the configuration is invalid (exit 78). */
    int (*open)(const config *cfg, void **state, char *err, size_t errlen);
    /* Wait up to timeout_ms for one job (enum claim_rc). *http_status is
     * set for CLAIM_REJECT. */
    int (*claim)(void *state, int timeout_ms, job *j, int *http_status, char *err, size_t errlen);
    /* Renew the claim. 0 ok; -1 the claim is lost (another replica owns
     * the job now); -2 the broker is unreachable right now; -3 it stayed
     * unreachable for the whole retry budget (the claim cannot be kept: the
     * job is stopped as if lost). May be NULL. */
    int (*heartbeat)(void *state, job *j, char *err, size_t errlen);
    /* Is the job still this replica's, right before its final record (the
     * fence of a source whose copies Redis cannot see: kafka)? 1 yes; 0
     * no, err says why: the lifecycle writes nothing final and exits 69.
     * Cheap and local (no round trip). May be NULL: always yes. */
    int (*owns)(void *state, const job *j, char *err, size_t errlen);
    /* Before the final record (o->fence: the fence it is written under):
     * queue the settle o asks for to go out in the same round trip as the
     * record, when the store writes it on the source's connection (Redis).
     * The settle checks that the record holds o's fence and state, so it
     * does nothing when the record was not written. finish() then takes
     * its answer instead of sending it, if o still settles alike. May be
     * NULL. */
    void (*stage)(void *state, job *j, const outcome *o);
    /* Settle the job as o says. -1 with a reason: could not (exit 69, the
     * message stays to be redelivered). */
    int (*finish)(void *state, job *j, const outcome *o, char *err, size_t errlen);
    /* The claim proof of the job held (see claim_proof). May be NULL. */
    void (*proof)(void *state, const job *j, claim_proof *p);
    /* Release everything, including j->src_data of a claimed job. */
    void (*close)(void *state);
} source_ops;

extern const source_ops source_redis_list;
extern const source_ops source_redis_stream;
extern const source_ops source_kafka; /* in oneshot-kafka.so */

#endif
