/* oneshot/plugin.h -- the ABI of oneshot compute plugins (`--core plugin:PATH`).
 *
 * A plugin is a shared object that exports one table, `oneshot_plugin_table`,
 * whose first member is the ABI version it was built against:
 *
 *     #include <oneshot/plugin.h>
 *
 *     static int run(void *state, const void *input, size_t len,
 *                    oneshot_output *out, const oneshot_ctx *ctx) {
 *         (void)state;
 *         return out->write(out, input, len) == 0 ? ONESHOT_OK : 1;
 *     }
 *
 *     const oneshot_plugin oneshot_plugin_table = {
 *         ONESHOT_PLUGIN_ABI, "copy", NULL, run, NULL,
 *     };
 *
 *     cc -shared -fPIC -o copy.so copy.c
 *     oneshot --core plugin:./copy.so
 *
 * oneshot dlopen()s the file at start; a missing file, a missing table, a
 * table without `run` or with another ABI version is a configuration error
 * (exit 78). init runs once at start, run once for the one job, destroy at
 * exit, all on the same thread. Every callback in oneshot_ctx and
 * oneshot_output may be called only from that thread and only during run.
 *
 * Any change to the layout or meaning of these structures bumps
 * ONESHOT_PLUGIN_ABI; oneshot refuses a plugin whose version differs. */
#ifndef ONESHOT_PLUGIN_H
#define ONESHOT_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ONESHOT_PLUGIN_ABI 1u

/* What run returns. 1..63 mean "failed" and become the replica's exit
 * code (HTTP 500); any other value is a failure with exit code 1. */
#define ONESHOT_OK 0
#define ONESHOT_REJECTED (-1)  /* the input is unusable: exit 65, never retried */
#define ONESHOT_CANCELLED (-2) /* stopped because ctx->cancelled() said so */

/* Levels for ctx->log. */
#define ONESHOT_LOG_DEBUG 0
#define ONESHOT_LOG_INFO 1
#define ONESHOT_LOG_WARN 2
#define ONESHOT_LOG_ERROR 3

typedef struct oneshot_ctx oneshot_ctx;
typedef struct oneshot_output oneshot_output;

/* The job and the host's services, valid during run only. */
struct oneshot_ctx {
    const char *job_id;
    int attempt;                /* 1 for the first delivery */
    int64_t deadline_unix_ms;   /* when the job will be cancelled; 0 = no deadline */
    const char *content_type;   /* of the input (HTTP), or NULL */
    /* An HTTP query parameter of the job, or NULL when absent. */
    const char *(*param)(const oneshot_ctx *ctx, const char *name);
    /* Non-zero once the job must stop (deadline, SIGTERM past the grace,
     * `oneshot cancel`, lost claim). Poll it at least every 100 ms, then
     * return ONESHOT_CANCELLED. A plugin that does not stop is killed with
     * the whole process after the cancel grace. */
    int (*cancelled)(const oneshot_ctx *ctx);
    /* 0..100 into the status record and GET /health. */
    void (*progress)(const oneshot_ctx *ctx, int percent);
    /* One line into oneshot's log (with the job id and the plugin's name). */
    void (*log)(const oneshot_ctx *ctx, int level, const char *msg);
    /* The error text of a failed, rejected or cancelled job (the status
     * record's `error`); the last call wins. */
    void (*set_error)(const oneshot_ctx *ctx, const char *msg);
    void *host; /* oneshot's own; do not touch */
};

/* Where the result goes. Bytes are copied; the total is bounded by
 * --max-output. */
struct oneshot_output {
    /* Append len bytes to the result: 0, or -1 once the result would exceed
     * --max-output (nothing is appended; the job fails whatever run returns,
     * so stop and return). */
    int (*write)(oneshot_output *out, const void *data, size_t len);
    /* The Content-Type of the result (HTTP); default application/octet-stream. */
    void (*set_content_type)(oneshot_output *out, const char *type);
    void *host; /* oneshot's own; do not touch */
};

typedef struct oneshot_plugin {
    uint32_t abi_version; /* ONESHOT_PLUGIN_ABI */
    const char *name;     /* for log lines, non-empty */
    /* Optional (NULL: no state). config_json is oneshot's effective
     * configuration (as --print-config, secrets masked); it is freed after
     * init returns. Return 0, or -1 with a reason in err: the replica then
     * exits 78 without taking a job. */
    int (*init)(const char *config_json, void **state, char *err, size_t errlen);
    /* Required. Run the job; see ONESHOT_OK and friends for the result. */
    int (*run)(void *state, const void *input, size_t len, oneshot_output *out, const oneshot_ctx *ctx);
    /* Optional: release what init made. */
    void (*destroy)(void *state);
} oneshot_plugin;

/* The one symbol a plugin exports. */
extern const oneshot_plugin oneshot_plugin_table;

#define ONESHOT_PLUGIN_SYMBOL "oneshot_plugin_table"

#ifdef __cplusplus
}
#endif

#endif
