/* source.c -- the source registry. */
#include "source.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "kafka/module.h"

const source_ops *source_find(const char *name, char *err, size_t errlen) {
    if (strcmp(name, "http") == 0) return &source_http;
    if (strcmp(name, "redis-list") == 0) return &source_redis_list;
    if (strcmp(name, "redis-stream") == 0) return &source_redis_stream;
    if (strcmp(name, "kafka") == 0) {
        const kafka_module *m = kafka_module_load(err, errlen);
        return m ? m->source : NULL;
    }
    snprintf(err, errlen, "--source: unknown source '%s'", name);
    return NULL;
}
