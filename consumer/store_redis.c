/* store_redis.c -- placeholder until the redis store lands. */
#include <stdio.h>

#include "store.h"

static int redis_open(const config *cfg, void **state, char *err, size_t errlen) {
    (void)cfg;
    *state = NULL;
    snprintf(err, errlen, "the redis store is not built yet");
    return -1;
}

static void redis_close(void *state) { (void)state; }

const store_ops store_redis = {"redis", redis_open, NULL, NULL, NULL, NULL, NULL, redis_close};
