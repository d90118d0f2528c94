/* source_redis_stream.c -- placeholder until the redis-stream source lands. */
#include <stdio.h>

#include "source.h"

static int redis_stream_open(const config *cfg, void **state, char *err, size_t errlen) {
    (void)cfg;
    *state = NULL;
    snprintf(err, errlen, "the redis-stream source is not built yet");
    return -1;
}

static int redis_stream_claim(void *state, int timeout_ms, job *j, int *http_status, char *err, size_t errlen) {
    (void)state;
    (void)timeout_ms;
    (void)j;
    (void)http_status;
    snprintf(err, errlen, "not built");
    return CLAIM_ERR;
}

static int redis_stream_finish(void *state, job *j, const outcome *o, char *err, size_t errlen) {
    (void)state;
    (void)j;
    (void)o;
    snprintf(err, errlen, "not built");
    return -1;
}

static void redis_stream_close(void *state) { (void)state; }

const source_ops source_redis_stream = {"redis-stream", 0, 1, redis_stream_open, redis_stream_claim, NULL, redis_stream_finish, redis_stream_close};
