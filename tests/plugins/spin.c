/* spin.c -- test plugin: works until cancelled, reporting progress, then
 * logs how it stopped and returns ONESHOT_CANCELLED. */
#include <oneshot/plugin.h>
#include <stdio.h>
#include <time.h>

static int spin_run(void *state, const void *input, size_t len, oneshot_output *out, const oneshot_ctx *ctx) {
    struct timespec ms = {0, 1000000};
    long loops = 0;
    char msg[96];
    (void)state;
    (void)input;
    (void)len;
    (void)out;
    ctx->log(ctx, ONESHOT_LOG_INFO, "spinning until cancelled");
    while (!ctx->cancelled(ctx)) {
        nanosleep(&ms, NULL);
        if (++loops % 100 == 0) ctx->progress(ctx, (int)(loops / 100 % 100));
    }
    snprintf(msg, sizeof(msg), "spin: saw the cancel flag (%d) after %ld loops", ctx->cancelled(ctx), loops);
    ctx->log(ctx, ONESHOT_LOG_WARN, msg);
    ctx->set_error(ctx, "spin plugin stopped by the cancel flag");
    return ONESHOT_CANCELLED;
}

const oneshot_plugin oneshot_plugin_table = {ONESHOT_PLUGIN_ABI, "spin", NULL, spin_run, NULL};
