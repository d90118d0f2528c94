/* fail.c -- test plugin: fails the job. The query parameter `mode` picks
 * how: "code" (default) returns 7 with an error and a JSON body,
 * "reject" rejects the input, "big" writes past --max-output. */
#include <oneshot/plugin.h>
#include <string.h>

static int fail_run(void *state, const void *input, size_t len, oneshot_output *out, const oneshot_ctx *ctx) {
    const char *mode = ctx->param(ctx, "mode");
    (void)state;
    (void)input;
    (void)len;
    if (mode && strcmp(mode, "reject") == 0) {
        ctx->set_error(ctx, "fail plugin: input rejected on purpose");
        return ONESHOT_REJECTED;
    }
    if (mode && strcmp(mode, "big") == 0) {
        static const char block[4096];
        for (;;)
            if (out->write(out, block, sizeof(block)) < 0) return ONESHOT_OK; /* the host fails it anyway */
    }
    static const char body[] = "{\"detail\":\"fail plugin failed on purpose\"}";
    out->set_content_type(out, "application/json");
    out->write(out, body, sizeof(body) - 1);
    ctx->set_error(ctx, "fail plugin: failed on purpose");
    return 7;
}

const oneshot_plugin oneshot_plugin_table = {ONESHOT_PLUGIN_ABI, "fail", NULL, fail_run, NULL};
