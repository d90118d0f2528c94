/* cores/plugin.c -- a compute core from a shared object (`--core plugin:PATH`).
 *
 * The plugin exports the versioned table of include/oneshot/plugin.h. It is
 * dlopen()ed at start: a file that does not load, a missing table or `run`,
 * or another ABI version is a configuration error (exit 78), as is an init
 * that fails. init gets the effective configuration as JSON (secrets
 * masked). run executes on the lifecycle's thread; the plugin polls
 * ctx->cancelled() and returns, or is ended with the process by the
 * watchdog. A PATH without a slash is taken relative to the working
 * directory, never searched for along the library path. */
#include <ctype.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/buf.h"
#include "../../common/log.h"
#include "../../include/oneshot/plugin.h"
#include "core.h"

#define PLUGIN_TYPE_MAX 200 /* longest Content-Type a plugin may set */

typedef struct plugin_state {
    void *dl;
    const oneshot_plugin *tbl;
    void *pstate; /* the plugin's own, from its init */
    char *path;
    char *log_fields; /* "\"plugin\":\"NAME\"" */
    char type[PLUGIN_TYPE_MAX + 1]; /* the result's Content-Type; outlives run */
} plugin_state;

/* Everything one run's callbacks reach through ctx->host / out->host. */
typedef struct plugin_host {
    plugin_state *ps;
    core_ctx *ctx;
    const config *cfg;
    buf out;
    int overflow;
    char error[512];
} plugin_host;

static int plugin_init(const config *cfg, void **state, char *err, size_t errlen) {
    plugin_state *ps = xcalloc(1, sizeof(*ps));
    char *json = NULL;
    const char *spec = cfg->core + 7; /* after "plugin:" */
    buf b = BUF_INIT;

    *state = NULL;
    if (!strchr(spec, '/')) buf_puts(&b, "./"); /* a file, not a library-path search */
    buf_puts(&b, spec);
    ps->path = buf_steal(&b, NULL);

#if ONESHOT_STATIC
    /* A plugin links the shared libc; a static binary that dlopen()s it
     * would run two C libraries in one process. Refused, with the way out. */
    snprintf(err, errlen, "--core: plugin %s: the static build cannot load plugins (use the dynamic build, "
             "or exec a program with `-- COMMAND`)", ps->path);
    goto error;
#endif
    ps->dl = dlopen(ps->path, RTLD_NOW | RTLD_LOCAL);
    if (!ps->dl) {
        snprintf(err, errlen, "--core: plugin %s does not load: %s", ps->path, dlerror());
        goto error;
    }
    dlerror();
    ps->tbl = dlsym(ps->dl, ONESHOT_PLUGIN_SYMBOL);
    if (!ps->tbl) {
        snprintf(err, errlen, "--core: plugin %s exports no %s (is it built against oneshot/plugin.h?)",
                 ps->path, ONESHOT_PLUGIN_SYMBOL);
        goto error;
    }
    if (ps->tbl->abi_version != ONESHOT_PLUGIN_ABI) {
        snprintf(err, errlen, "--core: plugin %s has ABI version %u, this oneshot needs %u (rebuild it)",
                 ps->path, (unsigned)ps->tbl->abi_version, (unsigned)ONESHOT_PLUGIN_ABI);
        goto error;
    }
    if (!ps->tbl->name || !ps->tbl->name[0] || !ps->tbl->run) {
        snprintf(err, errlen, "--core: plugin %s: its table lacks %s", ps->path,
                 ps->tbl->run ? "a name" : "run");
        goto error;
    }
    buf_puts(&b, "\"plugin\":");
    buf_json_str(&b, ps->tbl->name, strlen(ps->tbl->name));
    ps->log_fields = buf_steal(&b, NULL);

    if (ps->tbl->init) {
        char perr[400] = "";
        json = config_to_json(cfg);
        if (ps->tbl->init(json, &ps->pstate, perr, sizeof(perr)) != 0) {
            perr[sizeof(perr) - 1] = '\0';
            snprintf(err, errlen, "--core: plugin %s: init failed: %s", ps->path,
                     perr[0] ? perr : "(no reason given)");
            goto error;
        }
    }
    free(json);
    log_debug("plugin %s (%s) loaded", ps->tbl->name, ps->path);
    *state = ps;
    return 0;
error:
    free(json);
    if (ps->dl) dlclose(ps->dl);
    free(ps->log_fields);
    free(ps->path);
    free(ps);
    return -1;
}

/* --- callbacks given to the plugin --- */

static plugin_host *host_of(const oneshot_ctx *c) { return c->host; }

static const char *cb_param(const oneshot_ctx *c, const char *name) {
    return name ? job_param_get(host_of(c)->ctx->job, name) : NULL;
}

static int cb_cancelled(const oneshot_ctx *c) { return atomic_load(host_of(c)->ctx->cancel); }

static void cb_progress(const oneshot_ctx *c, int percent) {
    host_of(c)->ctx->progress(percent < 0 ? 0 : percent > 100 ? 100 : percent);
}

static void cb_log(const oneshot_ctx *c, int level, const char *msg) {
    int ll = level <= ONESHOT_LOG_DEBUG ? LL_DEBUG
             : level == ONESHOT_LOG_INFO ? LL_INFO
             : level == ONESHOT_LOG_WARN ? LL_WARN
                                         : LL_ERROR;
    log_fields(ll, host_of(c)->ps->log_fields, "%s", msg ? msg : "");
}

static void cb_set_error(const oneshot_ctx *c, const char *msg) {
    plugin_host *h = host_of(c);
    snprintf(h->error, sizeof(h->error), "%s", msg ? msg : "");
}

static int cb_write(oneshot_output *o, const void *data, size_t len) {
    plugin_host *h = o->host;
    if (h->overflow) return -1;
    if (len > (size_t)h->cfg->max_output - h->out.len) {
        h->overflow = 1;
        buf_free(&h->out); /* the job fails: do not keep what came before */
        return -1;
    }
    if (len) buf_append(&h->out, data, len);
    return 0;
}

/* Kept only when it is a plausible header value: no control characters
 * (a CR or LF would split the HTTP response). */
static void cb_set_content_type(oneshot_output *o, const char *type) {
    plugin_host *h = o->host;
    size_t n = type ? strlen(type) : 0;
    for (size_t i = 0; i < n; i++)
        if (iscntrl((unsigned char)type[i])) n = PLUGIN_TYPE_MAX + 1;
    if (!n || n > PLUGIN_TYPE_MAX) {
        log_warn("plugin %s: ignoring an invalid content type", h->ps->tbl->name);
        return;
    }
    memcpy(h->ps->type, type, n + 1);
}

static void plugin_run(void *state, core_ctx *ctx, core_result *res) {
    plugin_state *ps = state;
    plugin_host h;
    memset(&h, 0, sizeof(h));
    h.ps = ps;
    h.ctx = ctx;
    h.cfg = ctx->cfg;
    ps->type[0] = '\0';
    oneshot_ctx pc = {ctx->job->id,   ctx->job->attempt, ctx->deadline_wall_ms, ctx->job->content_type,
                      cb_param,       cb_cancelled,      cb_progress,           cb_log,
                      cb_set_error,   &h};
    oneshot_output po = {cb_write, cb_set_content_type, &h};

    const char *input = ctx->job->input ? ctx->job->input : "";
    int rc = ps->tbl->run(ps->pstate, input, ctx->job->input_len, &po, &pc);

    if (h.overflow) {
        core_fail(res, CORE_FAILED, 500, "result exceeds --max-output %lld bytes", (long long)ctx->cfg->max_output);
        res->exit_code = 1;
    } else if (rc == ONESHOT_OK) {
        res->outcome = CORE_OK;
    } else if (rc == ONESHOT_CANCELLED && atomic_load(ctx->cancel)) {
        core_fail(res, CORE_CANCELLED, 0, "%s", h.error[0] ? h.error : "cancelled");
    } else if (rc == ONESHOT_REJECTED) {
        core_fail(res, CORE_REJECTED, 422, "%s", h.error[0] ? h.error : "the plugin rejected the input");
    } else {
        if (rc == ONESHOT_CANCELLED)
            core_fail(res, CORE_FAILED, 0, "plugin %s returned ONESHOT_CANCELLED without a cancel", ps->tbl->name);
        else if (h.error[0])
            core_fail(res, CORE_FAILED, 0, "%s", h.error);
        else
            core_fail(res, CORE_FAILED, 0, "plugin %s failed with %d", ps->tbl->name, rc);
        res->exit_code = rc >= 1 && rc <= 63 ? rc : 1;
    }
    if ((res->outcome == CORE_OK || res->outcome == CORE_FAILED) && h.out.len) {
        res->out_owned = buf_steal(&h.out, &res->out_len); /* now owned, and freed, by the lifecycle */
        res->out = res->out_owned;
        res->content_type = ps->type[0] ? ps->type : NULL;
    } else if (res->outcome == CORE_OK) {
        res->out = "";
        res->out_len = 0;
    }
    buf_free(&h.out);
}

static void plugin_destroy(void *state) {
    plugin_state *ps = state;
    if (!ps) return;
    if (ps->tbl->destroy) ps->tbl->destroy(ps->pstate);
    dlclose(ps->dl);
    free(ps->log_fields);
    free(ps->path);
    free(ps);
}

const core_ops core_plugin = {
    .name = "plugin",
    .init = plugin_init,
    .run = plugin_run,
    .destroy = plugin_destroy,
};
