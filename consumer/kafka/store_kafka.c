/* store_kafka.c -- placeholder until the kafka store lands. */
#include <stdio.h>

#include "../store.h"

static int kafka_open(const config *cfg, void **state, char *err, size_t errlen) {
    (void)cfg;
    *state = NULL;
    snprintf(err, errlen, "the kafka store is not built yet");
    return -1;
}

static void kafka_close(void *state) { (void)state; }

const store_ops store_kafka = {"kafka", kafka_open, NULL, NULL, NULL, NULL, NULL, kafka_close};
