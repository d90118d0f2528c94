/* kafka/module.h -- the Kafka code, loaded only when it is used.
 *
 * Everything that links librdkafka (the Kafka source, the Kafka store, the
 * Kafka side of `submit` and of the fleet's backlog) is built into
 * oneshot-kafka.so, which exports one table, `oneshot_kafka_module`. The
 * main binary does not link librdkafka: a replica that never touches Kafka
 * does not pay for loading it and OpenSSL (about 5 ms and 2 MB per start,
 * measured with `make bench`). The static build (ONESHOT_KAFKA_BUILTIN)
 * links the same table into the binary instead: there is nothing to load. */
#ifndef ONESHOT_KAFKA_MODULE_H
#define ONESHOT_KAFKA_MODULE_H

#include <stddef.h>

#include "../../common/buf.h"
#include "../../config/config.h"
#include "../source.h"
#include "../store.h"

#define KAFKA_MODULE_ABI 5 /* 5: status/wait; 4: redrive, source_ops.owns; 3: source_ops.proof, store_ops.begin takes a claim_proof */
#define KAFKA_MODULE_FILE "oneshot-kafka.so"

/* Called by the Kafka re-drive before it produces job id again (the
 * Redis store's dead record): 0 go on; 1 leave this letter (err says why:
 * its partition's re-drive stops there); -1 with err (the re-drive stops). */
typedef int (*kafka_reset_fn)(void *ctx, const char *id, char *err, size_t errlen);

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
    /* `oneshot redrive --source kafka --all` (consumer/kafka/redrive_kafka.c):
     * the dead letters past the group `<group>.redrive`'s committed offset
     * produced again to --queue; reset (may be NULL) is called with each
     * job id first. *moved / *skipped get one JSON object per letter. 0,
     * -1 with err (broker), KC_ERR_CONFIG (-2) with err. */
    int (*redrive)(const config *cfg, kafka_reset_fn reset, void *ctx, buf *moved, buf *skipped, int *n,
                   char *err, size_t errlen);
    /* `oneshot status ID` / `oneshot wait ID` with the Kafka store: read
     * the status (and results) topic with the reader rule (README "Kafka"
     * → "Fence"). Return the exit code. */
    int (*status)(const config *cfg, const char *id);
    int (*wait)(const config *cfg, const char *id);
} kafka_module;

/* Load the module once (thread-safe) from $ONESHOT_MODULE_DIR, the folder
 * of the running binary, or ../lib/oneshot beside it. NULL with a reason
 * when it cannot be loaded. With ONESHOT_KAFKA_BUILTIN: the linked-in
 * table, never NULL. */
const kafka_module *kafka_module_load(char *err, size_t errlen);

#endif
