/* cores/echo.c -- the result is the input, for overhead measurements.
 *
 * The result borrows the job's input buffer: no copy however large. */
#include "core.h"

static int echo_init(const config *cfg, void **state, char *err, size_t errlen) {
    (void)cfg;
    (void)err;
    (void)errlen;
    *state = NULL;
    return 0;
}

static void echo_run(void *state, core_ctx *ctx, core_result *res) {
    (void)state;
    res->outcome = CORE_OK;
    res->out = ctx->job->input ? ctx->job->input : "";
    res->out_len = ctx->job->input_len;
    res->content_type = ctx->job->content_type;
    ctx->progress(100);
}

static void echo_destroy(void *state) { (void)state; }

const core_ops core_echo = {
    .name = "echo",
    .init = echo_init,
    .run = echo_run,
    .destroy = echo_destroy,
};
