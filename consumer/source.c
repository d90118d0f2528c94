/* source.c -- the source registry. */
#include "source.h"

#include <string.h>

const source_ops *source_find(const char *name) {
    if (strcmp(name, "http") == 0) return &source_http;
    if (strcmp(name, "redis-list") == 0) return &source_redis_list;
    if (strcmp(name, "redis-stream") == 0) return &source_redis_stream;
    if (strcmp(name, "kafka") == 0) return &source_kafka;
    return NULL;
}
