/* broker.c -- the broker registry: the one place that lists the brokers
 * (broker.h). Each driver lives in its folder and carries its own name. */
#include "broker.h"

#include <stdio.h>
#include <string.h>

#include "../common/job.h"

/* The first is the replicas' default --source. */
static const broker *const registry[] = {
    &broker_http,
    &broker_redis_list,
    &broker_redis_stream,
    &broker_kafka,
};

#define NBROKERS (sizeof(registry) / sizeof(registry[0]))

const broker *broker_named(const char *name) {
    for (size_t i = 0; name && i < NBROKERS; i++)
        if (strcmp(registry[i]->name, name) == 0) return registry[i];
    return NULL;
}

const broker *broker_with_store(const char *name) {
    for (size_t i = 0; name && i < NBROKERS; i++)
        if (strcmp(registry[i]->store_name, name) == 0) return registry[i];
    return NULL;
}

static int broker_load(const broker *b, const source_ops **src, const store_ops **st, char *err, size_t errlen) {
    *src = b->source;
    *st = b->store;
    return b->load && (!*src || !*st) ? b->load(src, st, err, errlen) : 0;
}

const source_ops *broker_source(const broker *b, char *err, size_t errlen) {
    const source_ops *src;
    const store_ops *st;
    return broker_load(b, &src, &st, err, errlen) < 0 ? NULL : src;
}

const store_ops *broker_store(const char *name, char *err, size_t errlen) {
    const broker *b = broker_with_store(name);
    const source_ops *src;
    const store_ops *st;
    if (!b) {
        snprintf(err, errlen, "--store: unknown store '%s'", name);
        return NULL;
    }
    return broker_load(b, &src, &st, err, errlen) < 0 ? NULL : st;
}

static const broker *client_default(void) {
    for (size_t i = 0; i < NBROKERS; i++)
        if (registry[i]->client_default) return registry[i];
    return registry[0];
}

const broker *broker_for_client(const config *cfg) {
    const broker *b = broker_named(cfg->source);
    /* --source defaults to the HTTP broker for replicas; a caller means a queue. */
    if (!b || (b->serves_http && !config_is_set(cfg, "source"))) return client_default();
    return b;
}

const broker *broker_store_for_client(const config *cfg) {
    const broker *dflt = client_default();
    const broker *sb = broker_with_store(cfg->store);
    if (sb && sb->status && strcmp(sb->store_name, dflt->store_name) != 0) return sb;
    if (config_is_set(cfg, "store")) return dflt;
    /* No --store: the one store given an address (--kafka alone), if any. */
    const broker *given = NULL;
    for (size_t i = 0; i < NBROKERS; i++) {
        const broker *b = registry[i];
        if (!b->address_option || !config_is_set(cfg, b->address_option)) continue;
        if (given && strcmp(given->store_name, b->store_name) != 0) return dflt;
        if (!given) given = b;
    }
    return given && given->status ? given : dflt;
}

void broker_names(int (*has)(const broker *b), const char *conj, char *out, size_t n) {
    const broker *pick[NBROKERS];
    size_t k = 0, at = 0;
    for (size_t i = 0; i < NBROKERS; i++)
        if (has(registry[i])) pick[k++] = registry[i];
    out[0] = '\0';
    for (size_t i = 0; i < k && at < n; i++) {
        const char *sep = i == 0 ? "" : i + 1 == k ? " " : ", ";
        int w = snprintf(out + at, n - at, "%s%s%s%s", sep, i && i + 1 == k ? conj : "", i && i + 1 == k ? " " : "",
                         pick[i]->name);
        if (w < 0) break;
        at += (size_t)w;
    }
}

const char *broker_default_name(void) { return registry[0]->name; }

const char *broker_choices(int stores) {
    static char text[2][256];
    char *out = text[stores ? 1 : 0];
    if (out[0]) return out;
    size_t at = 0;
    for (size_t i = 0; i < NBROKERS; i++) {
        const char *name = stores ? registry[i]->store_name : registry[i]->name;
        if (stores && broker_with_store(name) != registry[i]) continue; /* named already */
        int w = snprintf(out + at, sizeof(text[0]) - at, "%s%s", at ? "|" : "", name);
        if (w < 0 || (size_t)w >= sizeof(text[0]) - at) break;
        at += (size_t)w;
    }
    return out;
}

void broker_redrive_report(buf *b, const char *id, const char *state, const char *from, const char *to,
                           const char *why) {
    if (b->len) buf_puts(b, ",");
    buf_puts(b, "{\"id\":");
    buf_json_str(b, id, strlen(id));
    buf_puts(b, ",\"state\":");
    buf_json_str(b, state, strlen(state));
    buf_puts(b, ",\"from\":");
    buf_json_str(b, from, strlen(from));
    if (to) {
        buf_puts(b, ",\"to\":");
        buf_json_str(b, to, strlen(to));
    }
    if (why) {
        buf_puts(b, ",\"why\":");
        buf_json_str(b, why, strlen(why));
    }
    buf_puts(b, "}");
}

char *broker_envelope(const char *id, const submission *sub, size_t *len) {
    job j;
    memset(&j, 0, sizeof(j));
    snprintf(j.id, sizeof(j.id), "%s", id);
    j.input = (char *)sub->input;
    j.input_len = sub->len;
    j.deadline_s = sub->deadline_s;
    return job_envelope_json(&j, len);
}
