/* source_kafka.c -- placeholder until the kafka source lands. */
#include <stdio.h>

#include "../source.h"

static int kafka_open(const config *cfg, void **state, char *err, size_t errlen) {
    (void)cfg;
    *state = NULL;
    snprintf(err, errlen, "the kafka source is not built yet");
    return -1;
}

static int kafka_claim(void *state, int timeout_ms, job *j, int *http_status, char *err, size_t errlen) {
    (void)state;
    (void)timeout_ms;
    (void)j;
    (void)http_status;
    snprintf(err, errlen, "not built");
    return CLAIM_ERR;
}

static int kafka_finish(void *state, job *j, const outcome *o, char *err, size_t errlen) {
    (void)state;
    (void)j;
    (void)o;
    snprintf(err, errlen, "not built");
    return -1;
}

static void kafka_close(void *state) { (void)state; }

const source_ops source_kafka = {"kafka", 0, 1, kafka_open, kafka_claim, NULL, kafka_finish, kafka_close};
