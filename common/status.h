/* status.h -- the status record.
 *
 * Written at claim ("running"), renewed by the heartbeat, and written once
 * more when the job ends. The same fields serialise to JSON (Kafka status
 * topic, termination log, `oneshot status`) and to a Redis hash. */
#ifndef ONESHOT_STATUS_H
#define ONESHOT_STATUS_H

#include <stddef.h>
#include <stdint.h>

#include "ids.h"

/* Job states; the strings are part of the contract, and STATES (below)
 * says which are final and who moves each other one on. */
#define ST_QUEUED      "queued"   /* written by `oneshot submit` */
#define ST_RUNNING     "running"
#define ST_SUCCEEDED   "succeeded"
#define ST_FAILED      "failed"
#define ST_REJECTED    "rejected"
#define ST_TIMED_OUT   "timed_out"
#define ST_INTERRUPTED "interrupted"
#define ST_DEAD        "dead"
#define ST_CANCELLED   "cancelled"
#define ST_RETRYING    "retrying" /* failed, re-queued with attempts left */

/* The same states as the code decides them: an index into STATES, whose
 * names (ST_*) are what records, headers and logs carry. */
enum job_state {
    JS_NONE = -1, /* unknown, or no state */
    JS_QUEUED,
    JS_RUNNING,
    JS_RETRYING,
    JS_INTERRUPTED,
    JS_SUCCEEDED,
    JS_FAILED,
    JS_REJECTED,
    JS_TIMED_OUT,
    JS_DEAD,
    JS_CANCELLED,
    JS_COUNT,
    /* Not a record's state: what a replica says of a copy another live
     * replica runs (its last line, termination log and settle). */
    JS_DUPLICATE = JS_COUNT,
};

typedef struct status_rec {
    char id[ID_MAX + 1];
    char state[16];
    int attempt;
    char worker[128];
    char source[16];
    char queue[256];
    int64_t started_at;   /* wall ms, 0 = unset (null) */
    int64_t heartbeat_at;
    int64_t finished_at;
    int64_t duration_ms;  /* -1 = unset */
    int progress;         /* 0..100 */
    int exit_code;        /* -1 = unset */
    char error[512];
    int64_t result_bytes; /* -1 = unset */
    int64_t cpu_ms;       /* -1 = unset */
    int64_t max_rss_kb;   /* -1 = unset */
    int64_t fence;        /* the owner's fence (consumer/README.md), 0 = unset */
    char content_type[128]; /* the result's, "" = unset (no result) */
} status_rec;

/* One job state: its name, whether it is final (never changes again),
 * what it means and who moves it on, and how long its record is kept. */
typedef struct state_info {
    const char *name;
    int final;
    const char *means;
    const char *kept;
} state_info;

extern const state_info STATES[JS_COUNT];
extern const size_t NSTATES;

/* The state named s (JS_DUPLICATE for "duplicate"), or JS_NONE. */
enum job_state job_state_of(const char *s);
/* Its name ("" for JS_NONE). */
const char *job_state_name(enum job_state s);
/* 1 when s is final. */
int job_state_final(enum job_state s);
/* The states as the text `oneshot status --help` prints. */
const char *status_states_help(void);

/* A record with every optional field unset. */
void status_init(status_rec *st);
int status_is_final(const char *state);
/* Compact JSON object, malloc'd; len may be NULL. */
char *status_to_json(const status_rec *st, size_t *len);
/* status_to_json cut where the fence's value goes, for a script that
 * picks the fence (st's own fence is ignored): *head ends in "fence":, so
 * head, the fence's digits and *tail make the record's JSON. Both
 * malloc'd. */
void status_to_json_split(const status_rec *st, char **head, char **tail);
/* Parse what status_to_json wrote (or a Redis hash rendered as JSON).
 * Returns 0, or -1 with the reason in err. */
int status_from_json(const char *s, size_t len, status_rec *st, char *err, size_t errlen);

/* Field-by-field access, for stores that keep the record as a hash: calls
 * fn(name, value, arg) for each set field, value as text. */
void status_each_field(const status_rec *st,
                       void (*fn)(const char *name, const char *value, void *arg), void *arg);
/* Set one field from its text form (a hash field); unknown names ignored. */
void status_set_field(status_rec *st, const char *name, const char *value);

#endif
