/* cores/core.h -- the compute-core interface.
 *
 * A core is a small table of functions. The lifecycle calls init once at
 * start (a failure there is a configuration error: exit 78), run once per
 * job, and destroy at exit. run must return promptly (within ~100 ms) once
 * *ctx->cancel becomes non-zero. */
#ifndef ONESHOT_CORE_H
#define ONESHOT_CORE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "../../common/job.h"
#include "../../config/config.h"

/* Why a job is being cancelled: the value of *core_ctx.cancel. */
enum cancel_reason {
    CANCEL_NONE = 0,
    CANCEL_DEADLINE,  /* the watchdog: replica or job deadline */
    CANCEL_TERM,      /* SIGTERM and --term-grace is over */
    CANCEL_USER,      /* `oneshot cancel ID` */
    CANCEL_LOST,      /* the claim was lost (lease taken over) */
};

typedef struct core_ctx {
    const job *job;
    const config *cfg;
    atomic_int *cancel;              /* enum cancel_reason; poll it */
    void (*progress)(int percent);   /* 0..100, into the status record */
    int64_t deadline_wall_ms;        /* the job's deadline, 0 = none */
} core_ctx;

enum core_outcome {
    CORE_OK = 0,     /* succeeded */
    CORE_FAILED,     /* failed: retried while attempts remain */
    CORE_REJECTED,   /* the input is unusable: never retried (exit 65) */
    CORE_CANCELLED,  /* stopped because *cancel was set */
};

typedef struct core_result {
    enum core_outcome outcome;
    int exit_code;          /* for CORE_FAILED: the job's own code (1..63), 0 = 1 */
    int http_status;        /* 0: 200/500/422 by outcome */
    const char *out;        /* the result bytes: out_owned or borrowed (e.g. the input) */
    size_t out_len;
    char *out_owned;        /* freed by the lifecycle */
    const char *content_type; /* of out; NULL = application/octet-stream */
    char error[512];        /* for everything but CORE_OK */
    int64_t cpu_ms;         /* -1 = not measured */
    int64_t max_rss_kb;
} core_result;

typedef struct core_ops {
    const char *name;
    /* Prepare the core; -1 with a reason means the configuration is
     * unusable (missing program, bad plugin). */
    int (*init)(const config *cfg, void **state, char *err, size_t errlen);
    void (*run)(void *state, core_ctx *ctx, core_result *res);
    /* Kill anything the core started, at once (SIGKILL). Called from the
     * watchdog or signal thread right before the process must exit; may be
     * NULL for cores that start nothing. */
    void (*abort)(void *state);
    void (*destroy)(void *state);
} core_ops;

/* The core named by --core ("demo", "echo", "exec", "plugin:PATH"), or
 * NULL when there is none of that name. */
const core_ops *core_find(const char *spec);

/* How long a core may take to stop after a cancel with this reason before
 * it must be killed: an exec core sends SIGTERM to its process group, then
 * SIGKILL after this. The watchdog aborts the core 1 s later still.
 *   deadline: min(--term-grace, --deadline-margin / 2): the other half of
 *             the margin is for publishing the result and settling;
 *   SIGTERM:  min(--term-grace, 5 s): the grace is already spent and the
 *             platform's SIGKILL follows ~30 s after its SIGTERM;
 *   user cancel, lost claim: --term-grace.
 * Never less than 1 s. */
int core_cancel_grace_ms(const config *cfg, int reason);

/* Helpers for cores. */
void core_result_init(core_result *res);
/* Set outcome and a printf-style error at once. */
void core_fail(core_result *res, enum core_outcome outcome, int http_status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

extern const core_ops core_demo;
extern const core_ops core_echo;
extern const core_ops core_exec;
extern const core_ops core_plugin;

#endif
