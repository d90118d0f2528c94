/* source_redis_list.c -- placeholder until the redis-list source lands. */
#include <stdio.h>

#include "source.h"

static int redis_list_open(const config *cfg, void **state, char *err, size_t errlen) {
    (void)cfg;
    *state = NULL;
    snprintf(err, errlen, "the redis-list source is not built yet");
    return -1;
}

static int redis_list_claim(void *state, int timeout_ms, job *j, int *http_status, char *err, size_t errlen) {
    (void)state;
    (void)timeout_ms;
    (void)j;
    (void)http_status;
    snprintf(err, errlen, "not built");
    return CLAIM_ERR;
}

static int redis_list_finish(void *state, job *j, const outcome *o, char *err, size_t errlen) {
    (void)state;
    (void)j;
    (void)o;
    snprintf(err, errlen, "not built");
    return -1;
}

static void redis_list_close(void *state) { (void)state; }

const source_ops source_redis_list = {"redis-list", 0, 1, redis_list_open, redis_list_claim, NULL, redis_list_finish, redis_list_close};
