/* replica.h -- what the replica is doing, as /health and /metrics show it.
 *
 * Written by the lifecycle and the heartbeat, read by the HTTP thread;
 * every accessor is thread-safe. */
#ifndef ONESHOT_REPLICA_H
#define ONESHOT_REPLICA_H

#include <stddef.h>
#include <stdint.h>

typedef enum { PHASE_IDLE = 0, PHASE_RUNNING, PHASE_FINISHING } replica_phase;

typedef struct replica_view {
    replica_phase phase;
    char id[128];        /* replica (worker) id */
    char source[16];
    char job_id[256];    /* "" before a job is claimed */
    int progress;
    int64_t started_mono_ms;  /* process start */
    int64_t job_started_mono_ms;
    int exit_code;       /* -1 until known */
    char state[16];      /* final job state, "" until known */
} replica_view;

void replica_init(const char *id, const char *source);
void replica_set_phase(replica_phase p);
void replica_set_job(const char *job_id);
void replica_set_progress(int percent);
void replica_set_result(const char *state, int exit_code);
void replica_get(replica_view *out);
const char *replica_phase_name(replica_phase p);
const char *replica_id(void);

#endif
