/* core_exec.c -- placeholder until the exec core lands (issue 3). */
#include <stdio.h>

#include "core.h"

static int exec_init(const config *cfg, void **state, char *err, size_t errlen) {
    (void)cfg;
    *state = NULL;
    snprintf(err, errlen, "--core: the exec core is not built yet");
    return -1;
}

static void exec_run(void *state, core_ctx *ctx, core_result *res) {
    (void)state;
    (void)ctx;
    core_fail(res, CORE_FAILED, 0, "the exec core is not built yet");
}

static void exec_destroy(void *state) { (void)state; }

const core_ops core_exec = {"exec", exec_init, exec_run, NULL, exec_destroy};
