/* broker_test.c -- the broker registry (consumer/broker.h): lookups,
 * the names it lists, and which broker the callers' subcommands use. */
#include "../../config/config.h"
#include "../../consumer/broker.h"
#include "test.h"

static int has_sweep(const broker *b) { return b->sweep != NULL; }
static int has_redrive(const broker *b) { return b->redrive != NULL; }
static int has_backlog(const broker *b) { return b->backlog_open != NULL; }

/* Every registered broker is found by its name, brings its store, and
 * unknown names are NULL. */
static void t_lookup(void) {
    const broker *const all[] = {&broker_http, &broker_redis_list, &broker_redis_stream, &broker_kafka};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        ASSERT_TRUE(broker_named(all[i]->name) == all[i]);
        ASSERT_TRUE(broker_with_store(all[i]->store_name) != NULL);
        ASSERT_TRUE(all[i]->source || all[i]->load);
    }
    ASSERT_TRUE(broker_named("nope") == NULL);
    ASSERT_TRUE(broker_named(NULL) == NULL);
    ASSERT_TRUE(broker_with_store("nope") == NULL);
    ASSERT_TRUE(broker_with_store("redis") == &broker_redis_list); /* the first that brings it */
}

/* What --source and --store accept, and the lists the errors print. */
static void t_names(void) {
    char out[128];
    ASSERT_TRUE(strcmp(broker_choices(0), "http|redis-list|redis-stream|kafka") == 0);
    ASSERT_TRUE(strcmp(broker_choices(1), "none|redis|kafka") == 0);
    broker_names(has_sweep, "and", out, sizeof(out));
    if (strcmp(out, "redis-list and redis-stream") != 0) T_FAIL("sweep: %s", out);
    broker_names(has_redrive, "and", out, sizeof(out));
    if (strcmp(out, "redis-list, redis-stream and kafka") != 0) T_FAIL("redrive: %s", out);
    broker_names(has_backlog, "or", out, sizeof(out));
    if (strcmp(out, "redis-list, redis-stream or kafka") != 0) T_FAIL("backlog: %s", out);
}

static int load(config *c, const char *const *flags) {
    char err[256];
    int argc = 0;
    const char *env[] = {NULL};
    while (flags[argc]) argc++;
    int rc = config_load(c, argc, (char **)flags, (char **)env, 1, err, sizeof(err));
    if (rc < 0) T_FAIL("config: %s", err);
    return rc;
}

/* Which broker a subcommand uses (--source; the client default for the
 * replicas' default, http) and whose store status/wait/cancel read. */
static void t_client_choice(void) {
    static const struct {
        const char *flags[7];
        const broker *source, *store;
    } rows[] = {
        {{NULL}, &broker_redis_list, &broker_redis_list},
        {{"--source", "http", NULL}, &broker_http, &broker_redis_list},
        {{"--source", "redis-stream", NULL}, &broker_redis_stream, &broker_redis_list},
        {{"--source", "kafka", NULL}, &broker_kafka, &broker_kafka},
        {{"--source", "kafka", "--store", "redis", NULL}, &broker_kafka, &broker_redis_list},
        {{"--kafka", "h:9092", NULL}, &broker_redis_list, &broker_kafka},
        {{"--kafka", "h:9092", "--redis", "redis://h:6379/0", NULL}, &broker_redis_list, &broker_redis_list},
        {{"--kafka", "h:9092", "--store", "none", NULL}, &broker_redis_list, &broker_redis_list},
        {{"--store", "kafka", NULL}, &broker_redis_list, &broker_kafka},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        config c;
        if (load(&c, rows[i].flags) == 0) {
            if (broker_for_client(&c) != rows[i].source)
                T_FAIL("row %zu: source %s", i, broker_for_client(&c)->name);
            if (broker_store_for_client(&c) != rows[i].store)
                T_FAIL("row %zu: store %s", i, broker_store_for_client(&c)->name);
        }
        config_free(&c);
    }
}

const test_case broker_tests[] = {
    {"broker: every broker by its name and its store", t_lookup},
    {"broker: the choices and the lists come from the registry", t_names},
    {"broker: the subcommands' broker and store", t_client_choice},
    {NULL, NULL},
};
