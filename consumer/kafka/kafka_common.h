/* kafka_common.h -- what the Kafka source, store and client share inside
 * oneshot-kafka.so: building a librdkafka configuration from --kafka and
 * --kafka-prop, routing librdkafka's log to ours, the one idempotent
 * producer of the process, and message headers.
 *
 * The producer is shared so that a replica with --source kafka --store
 * kafka initialises one producer id, not two; the store creates it at open
 * (its InitProducerId then overlaps the consumer's group join) and the
 * source takes a reference only when it has to produce (re-queue, dead
 * letter). */
#ifndef ONESHOT_KAFKA_COMMON_H
#define ONESHOT_KAFKA_COMMON_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>
#include <stdint.h>

#include "../../common/buf.h"
#include "../../config/config.h"

/* What open() returns for an invalid configuration (exit 78), as opposed
 * to -1, an unreachable broker (exit 69). See source.h. */
#define KC_ERR_CONFIG (-2)

/* Build a configuration: bootstrap.servers from --kafka, then the given
 * defaults (NULL-terminated name, value pairs), then every --kafka-prop
 * (the operator's word wins). Properties oneshot must own (group.id,
 * bootstrap.servers, auto commit, offset store) are refused. Routes
 * librdkafka's log to ours. NULL with a reason when a property is unknown
 * or its value invalid. */
rd_kafka_conf_t *kc_conf_new(const config *cfg, const char *const *defaults, char *err, size_t errlen);

/* A numeric property of a live handle (e.g. session.timeout.ms), or def. */
int kc_conf_int(rd_kafka_t *rk, const char *name, int def);

/* The process's producer, created on the first call (idempotent, acks=all,
 * message.timeout.ms msg_timeout_ms unless --kafka-prop sets it; NULL:
 * 30000). Every successful call takes a reference that
 * kc_producer_release drops. NULL with a reason; *rc then holds -1 or
 * KC_ERR_CONFIG. */
rd_kafka_t *kc_producer_acquire(const config *cfg, const char *msg_timeout_ms, int *rc, char *err, size_t errlen);
void kc_producer_release(void);

/* Fetch topic's metadata now (once per topic, bounded by a second) so the
 * first message to it is not held until librdkafka's next topic scan.
 * kc_produce does it; the store calls it at open to overlap it with the
 * group join. */
void kc_producer_warm(const char *topic);

/* Produce one message (payload copied). hdrs, when not NULL, is consumed
 * in every case. critical: a failed delivery makes kc_producer_flush fail
 * (results, final status, re-queued copies, dead letters); a heartbeat's
 * status is not critical. 0, or -1 with a reason (the local queue refused
 * it: unknown topic, message too large; *perr gets the librdkafka code). */
int kc_produce(const char *topic, const char *key, size_t klen, const void *val, size_t vlen,
               rd_kafka_headers_t *hdrs, int critical, rd_kafka_resp_err_t *perr, char *err, size_t errlen);

/* Wait until every produced message is delivered or failed, for at most
 * message.timeout.ms plus a second. 0 when nothing critical failed since
 * the producer was created, else -1 with the first failure. */
int kc_producer_flush(char *err, size_t errlen);
/* The same, waiting at most ms (0: message.timeout.ms + 1 s). */
int kc_producer_flush_within(int ms, char *err, size_t errlen);

/* Header helpers: the last header called name as a NUL-terminated copy
 * into out (0), or -1 when absent or too long. */
int kc_header_str(const rd_kafka_headers_t *h, const char *name, char *out, size_t n);
void kc_header_add_str(rd_kafka_headers_t *h, const char *name, const char *value);
void kc_header_add_int(rd_kafka_headers_t *h, const char *name, long long v);

/* The module's `redrive` (redrive_kafka.c; kafka/module.h says what it
 * does). */
int kafka_redrive(const config *cfg, int (*reset)(void *ctx, const char *id, char *err, size_t errlen), void *ctx,
                  buf *moved, buf *skipped, int *n, char *err, size_t errlen);

/* `oneshot status` and `oneshot wait` with the Kafka store
 * (kafka_client.c): the exit code. */
int kafka_client_status(const config *cfg, const char *id);
int kafka_client_wait(const config *cfg, const char *id);

#endif
