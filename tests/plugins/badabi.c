/* badabi.c -- test plugin built for an ABI this oneshot does not speak. */
#include <oneshot/plugin.h>

static int bad_run(void *state, const void *input, size_t len, oneshot_output *out, const oneshot_ctx *ctx) {
    (void)state;
    (void)input;
    (void)len;
    (void)out;
    (void)ctx;
    return ONESHOT_OK;
}

const oneshot_plugin oneshot_plugin_table = {ONESHOT_PLUGIN_ABI + 41, "badabi", NULL, bad_run, NULL};
