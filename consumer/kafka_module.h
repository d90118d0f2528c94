/* kafka_module.h -- the Kafka code, loaded only when it is used.
 *
 * Everything that links librdkafka (the Kafka source, the Kafka store, the
 * Kafka side of `submit` and of the fleet's backlog) is built into
 * oneshot-kafka.so, which exports one table, `oneshot_kafka_module`. The
 * main binary does not link librdkafka: a replica that never touches Kafka
 * does not pay for loading it and OpenSSL (about 5 ms and 2 MB per start,
 * measured with `make bench`). */
#ifndef ONESHOT_KAFKA_MODULE_H
#define ONESHOT_KAFKA_MODULE_H

#include <stddef.h>

#include "../config/config.h"
#include "source.h"
#include "store.h"

#define KAFKA_MODULE_ABI 4 /* 4: source_ops.owns, status/wait; 3: source_ops.proof, store_ops.begin takes a claim_proof */
#define KAFKA_MODULE_FILE "oneshot-kafka.so"

typedef struct kafka_module {
    int abi;                  /* KAFKA_MODULE_ABI */
    const char *(*version)(void); /* rd_kafka_version_str */
    const source_ops *source;
    const store_ops *store;
    /* `oneshot submit --source kafka`: produce env (the envelope, built
     * by the caller) with key id. Returns the exit code. */
    int (*submit)(const config *cfg, const char *id, const char *env, size_t len);
    /* For the fleet: messages waiting in the group (high watermark minus
     * committed offset, summed over partitions), or -1 with err. */
    long (*backlog)(const config *cfg, char *err, size_t errlen);
    /* `oneshot status ID` / `oneshot wait ID` with the Kafka store: read
     * the status (and results) topic with the reader rule (README "Kafka"
     * → "Fence"). Return the exit code. */
    int (*status)(const config *cfg, const char *id);
    int (*wait)(const config *cfg, const char *id);
} kafka_module;

/* Load the module once (thread-safe) from $ONESHOT_MODULE_DIR, the folder
 * of the running binary, or ../lib/oneshot beside it. NULL with a reason
 * when it cannot be loaded. */
const kafka_module *kafka_module_load(char *err, size_t errlen);

#endif
