/* cores/demo.c -- the batch-jobs example's contract.
 *
 * Reproduces the public FastAPI example: `duration` seconds of work (default
 * 5) logging "Progress: i/N seconds elapsed" each second, failure when
 * `failed` is "true" or "1", and the example's response bodies. Parameters
 * come from the query string (HTTP) or from the input object (brokers).
 * Unlike the example, bad input is rejected (exit 65) instead of leaving
 * the replica up. */
#include <cjson/cJSON.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../common/buf.h"
#include "../../common/clock.h"
#include "../../common/log.h"
#include "core.h"

#define DEMO_DEFAULT_DURATION 5
#define DEMO_MAX_DURATION 100000000L

static int demo_init(const config *cfg, void **state, char *err, size_t errlen) {
    (void)cfg;
    (void)err;
    (void)errlen;
    *state = NULL;
    return 0;
}

/* A JSON body is acceptable with no content type or a JSON one. */
static int content_type_is_json(const char *ct) {
    if (!ct || !*ct) return 1;
    size_t n = strcspn(ct, ";");
    while (n && isspace((unsigned char)ct[n - 1])) n--;
    if (n == 16 && strncasecmp(ct, "application/json", 16) == 0) return 1;
    return n > 5 && strncasecmp(ct + n - 5, "+json", 5) == 0;
}

/* Decimal whole number >= 0, as FastAPI's int parameter takes it. */
static int parse_duration(const char *s, long *out) {
    char *end;
    if (!*s || isspace((unsigned char)*s)) return -1;
    long v = strtol(s, &end, 10);
    if (*end || v < 0 || v > DEMO_MAX_DURATION) return -1;
    *out = v;
    return 0;
}

static void demo_run(void *state, core_ctx *ctx, core_result *res) {
    const job *j = ctx->job;
    cJSON *body = NULL;
    long duration = DEMO_DEFAULT_DURATION;
    int failed = 0;
    char *body_text = NULL;
    (void)state;

    if (j->input_len > 0) {
        if (!content_type_is_json(j->content_type)) {
            core_fail(res, CORE_REJECTED, 415, "unsupported content type '%.64s': send application/json",
                      j->content_type);
            goto end;
        }
        body = cJSON_ParseWithLength(j->input, j->input_len);
        if (!body) {
            core_fail(res, CORE_REJECTED, 400, "request body is not valid JSON");
            goto end;
        }
        if (!cJSON_IsObject(body)) {
            core_fail(res, CORE_REJECTED, 422, "request body must be a JSON object");
            goto end;
        }
    }
    /* The query string wins; broker jobs carry the same names in the input. */
    const char *qd = job_param_get(j, "duration");
    const char *qf = job_param_get(j, "failed");
    const cJSON *bd = body ? cJSON_GetObjectItemCaseSensitive(body, "duration") : NULL;
    const cJSON *bf = body ? cJSON_GetObjectItemCaseSensitive(body, "failed") : NULL;
    if (qd) {
        if (parse_duration(qd, &duration) < 0) {
            core_fail(res, CORE_REJECTED, 422, "duration must be a whole number of seconds >= 0");
            goto end;
        }
    } else if (bd && !j->nparams) {
        if (!cJSON_IsNumber(bd) || bd->valuedouble < 0 || bd->valuedouble > DEMO_MAX_DURATION ||
            bd->valuedouble != (double)(long)bd->valuedouble) {
            core_fail(res, CORE_REJECTED, 422, "duration must be a whole number of seconds >= 0");
            goto end;
        }
        duration = (long)bd->valuedouble;
    }
    if (qf)
        failed = strcmp(qf, "true") == 0 || strcmp(qf, "1") == 0;
    else if (bf && !j->nparams)
        failed = cJSON_IsTrue(bf) || (cJSON_IsNumber(bf) && bf->valuedouble == 1) ||
                 (cJSON_IsString(bf) && (strcmp(bf->valuestring, "true") == 0 ||
                                         strcmp(bf->valuestring, "1") == 0));

    body_text = body ? cJSON_PrintUnformatted(body) : NULL;
    log_info("Running job with duration of %ld seconds, will fail: %s", duration, failed ? "true" : "false");
    log_info("Request payload: %s", body_text ? body_text : "None");

    /* Sleep in 100 ms steps so a cancel is seen within 100 ms. */
    int64_t start = clock_mono_ms();
    for (long second = 1; second <= duration; second++) {
        int64_t until = start + second * 1000;
        for (;;) {
            if (atomic_load(ctx->cancel)) {
                core_fail(res, CORE_CANCELLED, 0, "cancelled after %ld of %ld seconds", second - 1, duration);
                goto end;
            }
            int64_t left = until - clock_mono_ms();
            if (left <= 0) break;
            clock_sleep_ms(left < 100 ? left : 100);
        }
        log_info("Progress: %ld/%ld seconds elapsed", second, duration);
        ctx->progress((int)(second * 100 / duration));
    }

    buf out = BUF_INIT;
    if (failed) {
        static const char msg[] = "Job failed as requested via failed parameter";
        log_error("%s", msg);
        core_fail(res, CORE_FAILED, 500, "%s", msg);
        res->exit_code = 1;
        buf_puts(&out, "{\"detail\":\"Job failed as requested via failed parameter\"}");
    } else {
        char ts[32];
        time_t now = time(NULL);
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(ts, sizeof(ts), "%Y-%m-%d %H:%M:%S", &tm);
        log_info("Job completed successfully");
        res->outcome = CORE_OK;
        buf_printf(&out,
                   "{\"success\":true,\"message\":\"Job completed successfully\","
                   "\"executionTime\":%ld,\"timestamp\":\"%s\"}",
                   duration, ts);
    }
    res->out_owned = buf_steal(&out, &res->out_len);
    res->out = res->out_owned;
    res->content_type = "application/json";
end:
    free(body_text);
    cJSON_Delete(body);
}

static void demo_destroy(void *state) { (void)state; }

const core_ops core_demo = {
    .name = "demo",
    .init = demo_init,
    .run = demo_run,
    .destroy = demo_destroy,
};
