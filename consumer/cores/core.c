/* cores/core.c -- the core registry and helpers for cores. */
#include "core.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const core_ops *core_find(const char *spec) {
    if (strcmp(spec, "demo") == 0) return &core_demo;
    if (strcmp(spec, "echo") == 0) return &core_echo;
    if (strcmp(spec, "exec") == 0) return &core_exec;
    if (strncmp(spec, "plugin:", 7) == 0) return &core_plugin;
    return NULL;
}

int core_cancel_grace_ms(const config *cfg, int reason) {
    int s = cfg->term_grace;
    if (reason == CANCEL_DEADLINE && cfg->deadline_margin / 2 < s) s = cfg->deadline_margin / 2;
    if (reason == CANCEL_TERM && s > 5) s = 5;
    if (s < 1) s = 1;
    return s * 1000;
}

void core_result_init(core_result *res) {
    memset(res, 0, sizeof(*res));
    res->cpu_ms = -1;
    res->max_rss_kb = -1;
}

void core_fail(core_result *res, enum core_outcome outcome, int http_status, const char *fmt, ...) {
    va_list ap;
    res->outcome = outcome;
    res->http_status = http_status;
    va_start(ap, fmt);
    vsnprintf(res->error, sizeof(res->error), fmt, ap);
    va_end(ap);
}
