/* store.h -- where status records and results go.
 *
 * A store is a small table of functions. "none" keeps nothing (the HTTP
 * caller gets the result in the response). Every call returns 0, or -1
 * with a reason when the store is unreachable (the lifecycle then exits 69
 * without acknowledging); open may also return -2: the configuration is
 * invalid (exit 78). */
#ifndef ONESHOT_STORE_H
#define ONESHOT_STORE_H

#include <stddef.h>

#include "../common/status.h"
#include "../config/config.h"
#include "source.h"

/* What begin found (consumer/README.md "Steps"). */
enum begin_rc {
    BEGIN_ERR = -1,      /* unreachable or refused: exit 69, nothing settled */
    BEGIN_RUN = 0,       /* the "running" record is written: run the job */
    BEGIN_DONE = 1,      /* the record is final already: ack without running */
    BEGIN_CANCELLED = 2, /* a cancel mark: recorded "cancelled", ack without running */
    BEGIN_DUPLICATE = 3, /* another live replica runs it: ack this copy without running */
    BEGIN_LOST = 4,      /* this replica no longer holds its copy: exit 69, nothing settled */
    BEGIN_POISON = 5,    /* the job's record key is unusable: dead-letter it with the reason */
};

/* put_status's answers besides 0 (written) and -1 (unreachable). */
#define STORE_STALE 1   /* another owner's fence is current: nothing written */
#define STORE_SKIPPED 2 /* not written, and rightly so (see rrec_final) */
#define STORE_POISON 3  /* not written: a key of the job's holds another type */

typedef struct store_ops {
    const char *name;
    int (*open)(const config *cfg, void **state, char *err, size_t errlen);
    /* Before running, in one step (enum begin_rc): check that the copy is
     * still held (p), the record and the cancel mark, and write st (the
     * "running" record) with a new fence, set in st->fence. info gets the
     * known state, the replica that runs the job, or the reason. NULL for
     * stores that keep nothing to look up (none; kafka, see README): every
     * job is then new, and the lifecycle writes st with put_status. */
    int (*begin)(void *state, status_rec *st, const claim_proof *p, char *info, size_t n, char *err,
                 size_t errlen);
    /* Write the status record: 0, STORE_STALE, STORE_SKIPPED, STORE_POISON
     * or -1. From
     * the heartbeat thread: heartbeat_at and progress only, and only while
     * the record is running under st->fence. */
    int (*put_status)(void *state, const status_rec *st, char *err, size_t errlen);
    /* Write the result (before the final status). A store may keep data
     * (not a copy) until the put_status that follows writes both: the
     * caller keeps it alive until then. */
    int (*put_result)(void *state, const status_rec *st, const char *data, size_t len, char *err,
                      size_t errlen);
    /* Has a cancel mark been set for id? 1 yes, 0 no, -1 unreachable. */
    int (*cancelled)(void *state, const char *id);
    /* The watchdog's hard exit, for a job nothing re-delivers (HTTP):
     * write the final record st, fenced like put_status, on a connection
     * of its own (the main thread may hold its own mid-call), within
     * about a second. 0 or -1. May be NULL. */
    int (*last_words)(void *state, const status_rec *st, char *err, size_t errlen);
    /* Make everything written durable (Kafka: flush). May be NULL. */
    int (*flush)(void *state, char *err, size_t errlen);
    void (*close)(void *state);
} store_ops;

extern const store_ops store_none;
extern const store_ops store_redis;
extern const store_ops store_kafka; /* in oneshot-kafka.so */

#endif
