/* wordcount.c -- the example plugin: counts bytes, words and lines of the
 * input and answers {"bytes":N,"words":N,"lines":N}. Reports progress per
 * MiB, logs a line, and stops when cancelled. */
#include <oneshot/plugin.h>
#include <stdio.h>
#include <string.h>

typedef struct wc_state {
    int calls;
} wc_state;

static wc_state the_state;

static int wc_init(const char *config_json, void **state, char *err, size_t errlen) {
    /* The configuration is JSON as --print-config shows it. */
    if (!config_json || !strstr(config_json, "\"core\"")) {
        snprintf(err, errlen, "no configuration given");
        return -1;
    }
    *state = &the_state;
    return 0;
}

static int wc_run(void *state, const void *input, size_t len, oneshot_output *out, const oneshot_ctx *ctx) {
    wc_state *st = state;
    const unsigned char *p = input;
    unsigned long long words = 0, lines = 0;
    int in_word = 0;
    char msg[128];

    st->calls++;
    for (size_t i = 0; i < len; i++) {
        if ((i & 0xfffff) == 0) {
            if (ctx->cancelled(ctx)) return ONESHOT_CANCELLED;
            ctx->progress(ctx, (int)(i * 100 / len));
        }
        unsigned char c = p[i];
        int space = c == ' ' || c == '\n' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
        if (c == '\n') lines++;
        if (!space && !in_word) words++;
        in_word = !space;
    }
    ctx->progress(ctx, 100);
    snprintf(msg, sizeof(msg), "counted %llu words in %zu bytes (job %s)", words, len, ctx->job_id);
    ctx->log(ctx, ONESHOT_LOG_INFO, msg);
    int n = snprintf(msg, sizeof(msg), "{\"bytes\":%zu,\"words\":%llu,\"lines\":%llu}", len, words, lines);
    out->set_content_type(out, "application/json");
    return out->write(out, msg, (size_t)n) == 0 ? ONESHOT_OK : 1;
}

static void wc_destroy(void *state) { ((wc_state *)state)->calls = 0; }

const oneshot_plugin oneshot_plugin_table = {ONESHOT_PLUGIN_ABI, "wordcount", wc_init, wc_run, wc_destroy};
