/* module.c -- the table oneshot-kafka.so exports (see kafka_module.h). */
#include <librdkafka/rdkafka.h>
#include <stdio.h>

#include "../../common/exitcodes.h"
#include "../kafka_module.h"

static int kafka_submit(const config *cfg, const char *id, const char *input, size_t len) {
    (void)cfg;
    (void)id;
    (void)input;
    (void)len;
    fprintf(stderr, "oneshot submit: Kafka is not built yet\n");
    return OS_EXIT_CONFIG;
}

static long kafka_backlog(const config *cfg, char *err, size_t errlen) {
    (void)cfg;
    snprintf(err, errlen, "not built yet");
    return -1;
}

/* Exported: the one symbol the main binary looks up. */
extern const kafka_module oneshot_kafka_module;
const kafka_module oneshot_kafka_module = {
    KAFKA_MODULE_ABI, rd_kafka_version_str, &source_kafka, &store_kafka, kafka_submit, kafka_backlog,
};
