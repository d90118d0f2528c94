/* heartbeat.c -- the claim-renewal thread (see heartbeat.h). */
#include "heartbeat.h"

#include <pthread.h>
#include <string.h>
#include <time.h>

#include "../common/clock.h"
#include "../common/log.h"
#include "cores/core.h"
#include "replica.h"
#include "watchdog.h"
#include "seam.h"

static struct {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int active;          /* between heartbeat_start and heartbeat_stop */
    int running;         /* the thread was started */
    int quit;
    int64_t t0;          /* monotonic: heartbeat_start */
    int store_failures;
    int64_t renewed_ms;  /* monotonic: the start of the last renewal that held */
    int64_t src_every;   /* the source's heartbeat period, ms */
    int64_t store_every; /* the store's: a third of --lease, ms */
    atomic_int progress;
    heartbeat_args a;
} hb = {.mu = PTHREAD_MUTEX_INITIALIZER};

void heartbeat_set_progress(int percent) {
    atomic_store(&hb.progress, percent);
    replica_set_progress(percent);
}

int heartbeat_progress(void) { return atomic_load(&hb.progress); }

/* The claim is lost (or cannot be kept): the job stops, nothing is written
 * or settled. Only the first cancel reason counts. */
static void claim_lost(void) {
    int none = CANCEL_NONE;
    atomic_compare_exchange_strong(hb.a.cancel, &none, CANCEL_LOST);
}

static void beat_source(void) {
    char err[256] = "";
    if (!hb.a.src->heartbeat) return;
    SEAM("heartbeat");
    int64_t at = clock_mono_ms();
    int rc = hb.a.src->heartbeat(hb.a.src_state, hb.a.job, err, sizeof(err));
    if (rc == 0) hb.renewed_ms = at;
    if (rc == -1) {
        log_error("claim lost: %s; stopping the job without acknowledging it", err);
        claim_lost();
    } else if (rc == -2) {
        log_warn("heartbeat: broker unreachable: %s", err);
    } else if (rc == -3) {
        log_error("claim cannot be kept: %s; stopping the job without acknowledging it", err);
        claim_lost();
    }
}

static void beat_store(void) {
    char err[256] = "";
    /* A replica that lost its claim writes nothing more about the job. */
    if (atomic_load(hb.a.cancel) == CANCEL_LOST) return;
    status_rec st = *hb.a.status;
    st.heartbeat_at = clock_wall_ms();
    st.progress = heartbeat_progress();
    int rc = hb.a.store->put_status(hb.a.store_state, &st, err, sizeof(err));
    if (rc < 0) {
        hb.store_failures++;
        log_warn("heartbeat: status not written: %s", err);
    } else {
        hb.store_failures = 0;
    }
    if (rc == STORE_STALE) { /* another replica owns the job now: stop, write nothing */
        log_error("stale: %s; stopping the job without acknowledging it", err);
        claim_lost();
        return;
    }
    int c = hb.a.store->cancelled(hb.a.store_state, hb.a.job->id);
    if (c == 1) {
        log_info("cancel mark found: cancelling the job");
        int none = CANCEL_NONE;
        atomic_compare_exchange_strong(hb.a.cancel, &none, CANCEL_USER);
    }
}

static void *hb_main(void *arg) {
    (void)arg;
    int64_t src_every = hb.src_every, store_every = hb.store_every;
    int64_t next_src = hb.t0 + src_every;
    int64_t next_store = hb.t0 + store_every;

    pthread_mutex_lock(&hb.mu);
    while (!hb.quit) {
        int64_t now = clock_mono_ms();
        if (now >= next_src || now >= next_store) {
            pthread_mutex_unlock(&hb.mu);
            if (now >= next_src) {
                beat_source();
                next_src = now + src_every;
            }
            if (now >= next_store) {
                beat_store();
                next_store = now + store_every;
            }
            pthread_mutex_lock(&hb.mu);
            continue;
        }
        int64_t next = next_src < next_store ? next_src : next_store;
        int64_t wait_ms = next - now;
        struct timespec ts;
        clock_abs_timespec(CLOCK_MONOTONIC, wait_ms, &ts);
        pthread_cond_timedwait(&hb.cv, &hb.mu, &ts);
    }
    pthread_mutex_unlock(&hb.mu);
    return NULL;
}

/* Start the thread (from the watchdog thread at the first beat, or at
 * once), unless heartbeat_stop came first. */
static void spawn(void) {
    pthread_mutex_lock(&hb.mu);
    if (!hb.quit && !hb.running) {
        if (pthread_create(&hb.thread, NULL, hb_main, NULL) == 0) {
            hb.running = 1;
        } else {
            /* Unrenewed, the claim would lapse under the running job: stop
             * it and leave the job to be redelivered (exit 69). */
            log_error("heartbeat: cannot start its thread: stopping the job without acknowledging it");
            claim_lost();
        }
    }
    pthread_mutex_unlock(&hb.mu);
}

/* The thread is started only when the first beat is due (a third of
 * --lease, or the source's period): most jobs of a one-shot replica end
 * before, and a thread costs its start and its join. */
int heartbeat_start(const heartbeat_args *args) {
    pthread_condattr_t ca;
    hb.a = *args;
    hb.quit = 0;
    hb.running = 0;
    hb.store_failures = 0;
    hb.t0 = clock_mono_ms();
    hb.renewed_ms = hb.t0; /* the claim was just taken */
    hb.store_every = (int64_t)args->cfg->lease * 1000 / 3;
    hb.src_every = args->src->heartbeat_ms > 0 ? args->src->heartbeat_ms : hb.store_every;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&hb.cv, &ca);
    pthread_condattr_destroy(&ca);
    int64_t first = hb.src_every < hb.store_every ? hb.src_every : hb.store_every;
    if (watchdog_defer(hb.t0 + first, spawn) < 0) {
        spawn();
        if (!hb.running) {
            pthread_cond_destroy(&hb.cv);
            return -1;
        }
    }
    hb.active = 1;
    return 0;
}

int heartbeat_stop(void) {
    if (!hb.active) return 0;
    hb.active = 0;
    watchdog_defer_cancel(); /* after it, spawn() is over or never runs */
    pthread_mutex_lock(&hb.mu);
    hb.quit = 1;
    int started = hb.running;
    pthread_cond_broadcast(&hb.cv);
    pthread_mutex_unlock(&hb.mu);
    if (started) pthread_join(hb.thread, NULL);
    pthread_cond_destroy(&hb.cv);
    hb.running = 0;
    return hb.store_failures;
}

void heartbeat_check_claim(void) {
    if (hb.active || !hb.a.src || !hb.a.src->heartbeat) return;
    if (atomic_load(hb.a.cancel) != CANCEL_NONE) return;
    if (clock_mono_ms() - hb.renewed_ms < hb.src_every) return;
    beat_source();
}
