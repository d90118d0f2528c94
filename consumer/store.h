/* store.h -- where status records and results go (DESIGN.md section 5).
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

typedef struct store_ops {
    const char *name;
    int (*open)(const config *cfg, void **state, char *err, size_t errlen);
    /* Before running, in one step: the job's current state ("" when
     * unknown) and whether a cancel mark is set, and, unless the job
     * already succeeded or is marked cancelled, st (the "running" record)
     * written. 1: written, run the job; 0: not written, job_state and
     * *cancelled say why; -1 unreachable. NULL for stores that keep
     * nothing to look up (none; kafka, see README): every job is then new
     * and not cancelled, and the lifecycle writes st with put_status. */
    int (*begin)(void *state, const status_rec *st, char *job_state, size_t n, int *cancelled, char *err,
                 size_t errlen);
    /* Write the status record (claim, heartbeat and final). */
    int (*put_status)(void *state, const status_rec *st, char *err, size_t errlen);
    /* Write the result (before the final status). */
    int (*put_result)(void *state, const status_rec *st, const char *data, size_t len, char *err,
                      size_t errlen);
    /* Has a cancel mark been set for id? 1 yes, 0 no, -1 unreachable. */
    int (*cancelled)(void *state, const char *id);
    /* Make everything written durable (Kafka: flush). May be NULL. */
    int (*flush)(void *state, char *err, size_t errlen);
    void (*close)(void *state);
} store_ops;

/* The store named by --store, or NULL with a reason. */
const store_ops *store_find(const char *name, char *err, size_t errlen);

extern const store_ops store_none;
extern const store_ops store_redis;
extern const store_ops store_kafka; /* in oneshot-kafka.so */

#endif
