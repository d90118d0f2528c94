/* core_plugin.c -- placeholder until the plugin core lands (issue 3). */
#include <stdio.h>

#include "core.h"

static int plugin_init(const config *cfg, void **state, char *err, size_t errlen) {
    (void)cfg;
    *state = NULL;
    snprintf(err, errlen, "--core: the plugin core is not built yet");
    return -1;
}

static void plugin_run(void *state, core_ctx *ctx, core_result *res) {
    (void)state;
    (void)ctx;
    core_fail(res, CORE_FAILED, 0, "the plugin core is not built yet");
}

static void plugin_destroy(void *state) { (void)state; }

const core_ops core_plugin = {"plugin", plugin_init, plugin_run, NULL, plugin_destroy};
