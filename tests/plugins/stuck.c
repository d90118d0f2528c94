/* stuck.c -- test plugin: never returns and never looks at the cancel
 * flag (a core wedged in a library call), so only the watchdog's hard
 * exit ends the replica. */
#include <oneshot/plugin.h>
#include <time.h>

static int stuck_run(void *state, const void *input, size_t len, oneshot_output *out, const oneshot_ctx *ctx) {
    struct timespec s = {1, 0};
    (void)state;
    (void)input;
    (void)len;
    (void)out;
    ctx->log(ctx, ONESHOT_LOG_INFO, "stuck: ignoring the cancel flag");
    for (;;) nanosleep(&s, NULL);
    return ONESHOT_OK;
}

const oneshot_plugin oneshot_plugin_table = {ONESHOT_PLUGIN_ABI, "stuck", NULL, stuck_run, NULL};
