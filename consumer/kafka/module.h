/* kafka/module.h -- the Kafka code, loaded only when it is used.
 *
 * Everything that links librdkafka (the Kafka source, the Kafka store, the
 * Kafka side of `submit`, `redrive`, `status`, `wait` and of the fleet's
 * backlog: the Kafka broker's operations) is built into oneshot-kafka.so,
 * which exports one table, `oneshot_kafka_module`. The
 * main binary does not link librdkafka: a replica that never touches Kafka
 * does not pay for loading it and OpenSSL (about 5 ms and 2 MB per start,
 * measured with `make bench`). The static build (ONESHOT_KAFKA_BUILTIN)
 * links the same table into the binary instead: there is nothing to load. */
#ifndef ONESHOT_KAFKA_MODULE_H
#define ONESHOT_KAFKA_MODULE_H

#include <stddef.h>

#include "../../common/buf.h"
#include "../../config/config.h"
#include "../broker.h"

#define KAFKA_MODULE_ABI 6 /* 6: the broker table (broker.h); 5: status/wait; 4: redrive, source_ops.owns; 3: source_ops.proof, store_ops.begin takes a claim_proof */
#define KAFKA_MODULE_FILE "oneshot-kafka.so"

typedef struct kafka_module {
    int abi;                      /* KAFKA_MODULE_ABI */
    const char *(*version)(void); /* rd_kafka_version_str */
    /* The Kafka driver's code (module.c): its source and store, submit,
     * backlog, redrive, status and wait. The binary's broker_kafka
     * (driver.c) has the names and flags and calls these. */
    const broker *broker;
} kafka_module;

/* Load the module once (thread-safe) from $ONESHOT_MODULE_DIR, the folder
 * of the running binary, or ../lib/oneshot beside it. NULL with a reason
 * when it cannot be loaded. With ONESHOT_KAFKA_BUILTIN: the linked-in
 * table, never NULL. */
const kafka_module *kafka_module_load(char *err, size_t errlen);

#endif
