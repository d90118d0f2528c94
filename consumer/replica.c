/* replica.c -- the replica's observable state. */
#include "replica.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "../common/clock.h"

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static replica_view cur = {PHASE_IDLE, "", "", "", 0, 0, 0, -1, ""};

void replica_init(const char *id, const char *source) {
    pthread_mutex_lock(&mu);
    snprintf(cur.id, sizeof(cur.id), "%s", id);
    snprintf(cur.source, sizeof(cur.source), "%s", source);
    cur.started_mono_ms = clock_mono_ms();
    pthread_mutex_unlock(&mu);
}

void replica_set_phase(replica_phase p) {
    pthread_mutex_lock(&mu);
    cur.phase = p;
    if (p == PHASE_RUNNING) cur.job_started_mono_ms = clock_mono_ms();
    pthread_mutex_unlock(&mu);
}

void replica_set_job(const char *job_id) {
    pthread_mutex_lock(&mu);
    snprintf(cur.job_id, sizeof(cur.job_id), "%s", job_id ? job_id : "");
    pthread_mutex_unlock(&mu);
}

void replica_set_progress(int percent) {
    if (percent < 0) percent = 0;
    if (percent > 100) percent = 100;
    pthread_mutex_lock(&mu);
    cur.progress = percent;
    pthread_mutex_unlock(&mu);
}

void replica_set_result(const char *state, int exit_code) {
    pthread_mutex_lock(&mu);
    snprintf(cur.state, sizeof(cur.state), "%s", state);
    cur.exit_code = exit_code;
    pthread_mutex_unlock(&mu);
}

void replica_get(replica_view *out) {
    pthread_mutex_lock(&mu);
    *out = cur;
    pthread_mutex_unlock(&mu);
}

const char *replica_phase_name(replica_phase p) {
    switch (p) {
    case PHASE_RUNNING: return "running";
    case PHASE_FINISHING: return "finishing";
    default: return "idle";
    }
}

const char *replica_id(void) { return cur.id; }
