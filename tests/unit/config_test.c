/* config_test.c -- every setting, the precedence, every invalid form. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "../../config/config.h"
#include "../../config/redis_url.h"
#include "test.h"

/* Load from a flag list and an environment list (both NULL-terminated). */
static int load(config *c, const char *const *flags, const char *const *env, char *err, size_t n) {
    int argc = 0;
    while (flags && flags[argc]) argc++;
    return config_load(c, argc, (char **)flags, (char **)env, 0, err, n);
}

static void t_defaults(void) {
    config c;
    char err[256];
    const char *f[] = {NULL};
    ASSERT_EQ_INT(load(&c, f, NULL, err, sizeof(err)), 0);
    ASSERT_EQ_STR(c.source, "http");
    ASSERT_EQ_INT(c.port, 8000);
    ASSERT_EQ_STR(c.bind, "0.0.0.0");
    ASSERT_EQ_STR(c.queue, "jobs");
    ASSERT_EQ_STR(c.group, "oneshot");
    ASSERT_EQ_STR(c.redis_url, "redis://127.0.0.1:6379/0");
    ASSERT_EQ_STR(c.kafka_brokers, "127.0.0.1:9092");
    ASSERT_EQ_STR(c.store, "none");
    ASSERT_EQ_STR(c.prefix, "oneshot");
    ASSERT_EQ_INT(c.result_ttl, 86400);
    ASSERT_EQ_INT(c.max_attempts, 3);
    ASSERT_EQ_INT(c.lease, 30);
    ASSERT_EQ_STR(c.dead_letter, "jobs.dead");
    ASSERT_EQ_INT(c.deadline, 0);
    ASSERT_EQ_INT(c.deadline_margin, 10);
    ASSERT_EQ_INT(c.idle_timeout, 0);
    ASSERT_EQ_INT(c.term_grace, 20);
    ASSERT_EQ_STR(c.core, "demo");
    ASSERT_EQ_INT(c.max_input, 16777216);
    ASSERT_EQ_INT(c.max_output, 16777216);
    ASSERT_TRUE(c.auth_token == NULL);
    ASSERT_EQ_STR(c.log_level, "info");
    ASSERT_EQ_STR(c.log_format, "json");
    ASSERT_TRUE(c.termination_log == NULL);
    ASSERT_TRUE(c.exec_argv == NULL);
    config_free(&c);
}

/* Every setting, by flag and by environment variable. */
static void t_every_setting(void) {
    static const struct {
        const char *flag, *env, *value;
    } rows[] = {
        {"--source", "ONESHOT_SOURCE=", "kafka"},
        {"--port", "ONESHOT_PORT=", "9001"},
        {"--bind", "ONESHOT_BIND=", "127.0.0.1"},
        {"--queue", "ONESHOT_QUEUE=", "q1"},
        {"--group", "ONESHOT_GROUP=", "g1"},
        {"--redis", "ONESHOT_REDIS_URL=", "unix:///tmp/r.sock?db=2"},
        {"--kafka", "ONESHOT_KAFKA_BROKERS=", "h1:9092,h2:9092"},
        {"--kafka-prop", "ONESHOT_KAFKA_PROPS=", "client.id=x"},
        {"--store", "ONESHOT_STORE=", "redis"},
        {"--prefix", "ONESHOT_PREFIX=", "pfx"},
        {"--result-ttl", "ONESHOT_RESULT_TTL=", "60"},
        {"--max-attempts", "ONESHOT_MAX_ATTEMPTS=", "5"},
        {"--lease", "ONESHOT_LEASE=", "9"},
        {"--dead-letter", "ONESHOT_DEAD_LETTER=", "dlq"},
        {"--deadline", "ONESHOT_DEADLINE=", "600"},
        {"--deadline-margin", "ONESHOT_DEADLINE_MARGIN=", "5"},
        {"--idle-timeout", "ONESHOT_IDLE_TIMEOUT=", "7"},
        {"--term-grace", "ONESHOT_TERM_GRACE=", "3"},
        {"--core", "ONESHOT_CORE=", "echo"},
        {"--max-input", "ONESHOT_MAX_INPUT=", "1k"},
        {"--max-output", "ONESHOT_MAX_OUTPUT=", "2m"},
        {"--auth-token", "ONESHOT_AUTH_TOKEN=", "tok"},
        {"--log-level", "ONESHOT_LOG_LEVEL=", "debug"},
        {"--log-format", "ONESHOT_LOG_FORMAT=", "text"},
        {"--termination-log", "ONESHOT_TERMINATION_LOG=", "/tmp/tl"},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        for (int by_env = 0; by_env < 2; by_env++) {
            config c;
            char err[256] = "", envv[256];
            snprintf(envv, sizeof(envv), "%s%s", rows[i].env, rows[i].value);
            const char *f[] = {rows[i].flag, rows[i].value, NULL};
            const char *none[] = {NULL};
            const char *e[] = {envv, NULL};
            int rc = by_env ? load(&c, none, e, err, sizeof(err)) : load(&c, f, NULL, err, sizeof(err));
            if (rc != 0) T_FAIL("%s %s (%s): %s", rows[i].flag, rows[i].value, by_env ? "env" : "flag", err);
            char *json = config_to_json(&c);
            char key[64];
            snprintf(key, sizeof(key), "\"%s\":", rows[i].flag + 2);
            ASSERT_CONTAINS(json, key);
            free(json);
            config_free(&c);
        }
    }
    /* spot-check the parsed values */
    config c;
    char err[256];
    const char *f[] = {"--port", "9001", "--max-input", "1k", "--max-output", "2m", "--lease", "9",
                       "--kafka-prop", "a=1", "--kafka-prop", "b=2", "--source", "redis-list", NULL};
    ASSERT_EQ_INT(load(&c, f, NULL, err, sizeof(err)), 0);
    ASSERT_EQ_INT(c.port, 9001);
    ASSERT_EQ_INT(c.max_input, 1024);
    ASSERT_EQ_INT(c.max_output, 2 * 1024 * 1024);
    ASSERT_EQ_INT(c.lease, 9);
    ASSERT_EQ_INT(c.nkafka_props, 2);
    ASSERT_EQ_STR(c.kafka_props[1], "b=2");
    ASSERT_EQ_STR(c.store, "redis"); /* the source's broker */
    config_free(&c);
}

static void t_precedence(void) {
    config c;
    char err[256];
    char path[] = "/tmp/oneshot-cfg-XXXXXX";
    int fd = mkstemp(path);
    FILE *fp = fdopen(fd, "w");
    fprintf(fp, "{\"port\": 7001, \"queue\": \"from-file\", \"group\": \"gf\", \"max_attempts\": 9,"
                " \"kafka-prop\": {\"acks\": \"all\"}, \"exec\": [\"/bin/echo\", \"a b\"]}");
    fclose(fp);
    /* file only */
    const char *f1[] = {"--config", path, NULL};
    ASSERT_EQ_INT(load(&c, f1, NULL, err, sizeof(err)), 0);
    ASSERT_EQ_INT(c.port, 7001);
    ASSERT_EQ_STR(c.queue, "from-file");
    ASSERT_EQ_INT(c.max_attempts, 9);
    ASSERT_EQ_STR(c.kafka_props[0], "acks=all");
    ASSERT_EQ_STR(c.exec_argv[1], "a b");
    ASSERT_EQ_STR(c.core, "exec"); /* a command implies the exec core */
    config_free(&c);
    /* env beats file, flag beats env */
    const char *f2[] = {"--config", path, "--port", "7003", NULL};
    const char *e2[] = {"ONESHOT_PORT=7002", "ONESHOT_QUEUE=from-env", NULL};
    ASSERT_EQ_INT(load(&c, f2, e2, err, sizeof(err)), 0);
    ASSERT_EQ_INT(c.port, 7003);
    ASSERT_EQ_STR(c.queue, "from-env");
    ASSERT_EQ_STR(c.group, "gf");
    config_free(&c);
    /* ONESHOT_CONFIG names the file too; --flag=value form */
    char cfgenv[128];
    snprintf(cfgenv, sizeof(cfgenv), "ONESHOT_CONFIG=%s", path);
    const char *f3[] = {"--queue=q-eq", NULL};
    const char *e3[] = {cfgenv, NULL};
    ASSERT_EQ_INT(load(&c, f3, e3, err, sizeof(err)), 0);
    ASSERT_EQ_INT(c.port, 7001);
    ASSERT_EQ_STR(c.queue, "q-eq");
    config_free(&c);
    unlink(path);
}

/* Each invalid form fails with one line that names the setting. */
static void t_invalid(void) {
    static const struct {
        const char *args[4];
        const char *env;
        const char *names;
    } rows[] = {
        {{"--nope", NULL}, NULL, "--nope"},
        {{"--port", "70000", NULL}, NULL, "--port"},
        {{"--port", "-1", NULL}, NULL, "--port"},
        {{"--port", "80x", NULL}, NULL, "--port"},
        {{"--port", "", NULL}, NULL, "--port"},
        {{"--port", NULL}, NULL, "--port"},
        {{"--source", "sqs", NULL}, NULL, "--source"},
        {{"--core", "magic", NULL}, NULL, "--core"},
        {{"--core", "exec", NULL}, NULL, "--core"},
        {{"--core", "plugin:", NULL}, NULL, "--core"},
        {{"--store", "s3", NULL}, NULL, "--store"},
        {{"--bind", "localhost", NULL}, NULL, "--bind"},
        {{"--redis", "http://x", NULL}, NULL, "--redis"},
        {{"--redis", "redis://h:0/0", NULL}, NULL, "--redis"},
        {{"--redis", "redis://h:1/x", NULL}, NULL, "--redis"},
        {{"--redis", "unix://relative", NULL}, NULL, "--redis"},
        {{"--kafka-prop", "novalue", NULL}, NULL, "--kafka-prop"},
        {{"--result-ttl", "0", NULL}, NULL, "--result-ttl"},
        {{"--max-attempts", "0", NULL}, NULL, "--max-attempts"},
        {{"--lease", "2", NULL}, NULL, "--lease"},
        {{"--deadline", "-5", NULL}, NULL, "--deadline"},
        {{"--deadline", "10", "--deadline-margin", "10"}, NULL, "--deadline-margin"},
        {{"--idle-timeout", "1.5", NULL}, NULL, "--idle-timeout"},
        {{"--term-grace", "x", NULL}, NULL, "--term-grace"},
        {{"--max-input", "0", NULL}, NULL, "--max-input"},
        {{"--max-input", "5q", NULL}, NULL, "--max-input"},
        {{"--max-output", "99999999999999g", NULL}, NULL, "--max-output"},
        {{"--log-level", "loud", NULL}, NULL, "--log-level"},
        {{"--pushgateway", "ftp://gw", NULL}, NULL, "--pushgateway"},
        {{"--log-format", "xml", NULL}, NULL, "--log-format"},
        {{"--queue", "a b", NULL}, NULL, "--queue"},
        {{"--config", "/nonexistent/x.json", NULL}, NULL, "--config"},
        {{"stray", NULL}, NULL, "stray"},
        {{"--core", "demo", "--", "/bin/true"}, NULL, "--core"},
        {{NULL}, "ONESHOT_PORT=abc", "ONESHOT_PORT"},
        {{NULL}, "ONESHOT_SOURCE=ftp", "ONESHOT_SOURCE"},
        {{NULL}, "ONESHOT_EXEC=echo 'unterminated", "ONESHOT_EXEC"},
        {{NULL}, "ONESHOT_KAFKA_PROPS=a=1,b", "ONESHOT_KAFKA_PROPS"},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        config c;
        char err[256] = "";
        const char *env[] = {rows[i].env, NULL};
        int rc = load(&c, rows[i].args, rows[i].env ? env : NULL, err, sizeof(err));
        if (rc != -1) T_FAIL("row %zu (%s) was accepted", i, rows[i].names);
        ASSERT_CONTAINS(err, rows[i].names);
        ASSERT_TRUE(strchr(err, '\n') == NULL);
        config_free(&c);
    }
}

static void t_invalid_file(void) {
    static const char *bodies[] = {"[1]", "{\"port\": \"x\"}", "{\"unknown\": 1}", "{\"source\": 3}",
                                   "not json", "{\"exec\": []}", "{\"kafka-prop\": [1]}"};
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        char path[] = "/tmp/oneshot-cfg-XXXXXX";
        int fd = mkstemp(path);
        if (write(fd, bodies[i], strlen(bodies[i])) < 0) T_FAIL("write");
        close(fd);
        config c;
        char err[256] = "";
        const char *f[] = {"--config", path, NULL};
        if (load(&c, f, NULL, err, sizeof(err)) != -1) T_FAIL("file %s was accepted", bodies[i]);
        ASSERT_CONTAINS(err, path);
        config_free(&c);
        unlink(path);
    }
}

static void t_print_config_masks(void) {
    config c;
    char err[256];
    const char *f[] = {"--redis", "redis://alice:s3cr3t@h:6379/1", "--auth-token", "tok3n",
                       "--kafka-prop", "sasl.password=pw9", "--kafka-prop", "acks=all",
                       "--pushgateway", "http://pg:pgpw7@gw:9091", NULL};
    ASSERT_EQ_INT(load(&c, f, NULL, err, sizeof(err)), 0);
    char *json = config_to_json(&c);
    ASSERT_TRUE(strstr(json, "s3cr3t") == NULL);
    ASSERT_TRUE(strstr(json, "tok3n") == NULL);
    ASSERT_TRUE(strstr(json, "pw9") == NULL);
    ASSERT_TRUE(strstr(json, "pgpw7") == NULL);
    ASSERT_CONTAINS(json, "http://pg:***@gw:9091");
    ASSERT_CONTAINS(json, "alice:***@h:6379/1");
    ASSERT_CONTAINS(json, "acks=all");
    free(json);
    config_free(&c);
}

static void t_exec_and_words(void) {
    config c;
    char err[256];
    const char *f[] = {"--", "/bin/sh", "-c", "echo $X; rm -rf /", NULL};
    ASSERT_EQ_INT(load(&c, f, NULL, err, sizeof(err)), 0);
    ASSERT_EQ_STR(c.core, "exec");
    ASSERT_EQ_INT(c.exec_argc, 3);
    ASSERT_EQ_STR(c.exec_argv[2], "echo $X; rm -rf /");
    config_free(&c);
    size_t n;
    char **w = config_split_words("a 'b c' \"d \\\"e\\\"\" f\\ g $HOME ''", &n, err, sizeof(err));
    ASSERT_TRUE(w != NULL);
    ASSERT_EQ_INT(n, 6);
    if (w && n == 6) {
        ASSERT_EQ_STR(w[0], "a");
        ASSERT_EQ_STR(w[1], "b c");
        ASSERT_EQ_STR(w[2], "d \"e\"");
        ASSERT_EQ_STR(w[3], "f g");
        ASSERT_EQ_STR(w[4], "$HOME"); /* no expansion */
        ASSERT_EQ_STR(w[5], "");
    }
    config_free_argv(w);
    ASSERT_TRUE(config_split_words("a \"b", &n, err, sizeof(err)) == NULL);
}

static void t_redis_url(void) {
    redis_url u;
    char err[256];
    ASSERT_EQ_INT(redis_url_parse("redis://127.0.0.1:6380/3", &u, err, sizeof(err)), 0);
    ASSERT_EQ_STR(u.host, "127.0.0.1");
    ASSERT_EQ_INT(u.port, 6380);
    ASSERT_EQ_INT(u.db, 3);
    ASSERT_EQ_INT(redis_url_parse("redis://bob:p%40ss@h", &u, err, sizeof(err)), 0);
    ASSERT_EQ_STR(u.user, "bob");
    ASSERT_EQ_STR(u.password, "p@ss");
    ASSERT_EQ_INT(u.port, 6379);
    ASSERT_EQ_INT(redis_url_parse("redis://:onlypw@h:1/0", &u, err, sizeof(err)), 0);
    ASSERT_EQ_STR(u.user, "");
    ASSERT_EQ_STR(u.password, "onlypw");
    ASSERT_EQ_INT(redis_url_parse("unix:///tmp/x.sock?db=4&password=pw", &u, err, sizeof(err)), 0);
    ASSERT_TRUE(u.is_unix);
    ASSERT_EQ_STR(u.path, "/tmp/x.sock");
    ASSERT_EQ_INT(u.db, 4);
    ASSERT_EQ_STR(u.password, "pw");
    ASSERT_EQ_INT(redis_url_parse("redis://[::1]:7000", &u, err, sizeof(err)), 0);
    ASSERT_EQ_STR(u.host, "::1");
    ASSERT_EQ_INT(u.port, 7000);
    const char *bad[] = {"redis://", "redis://h:99999", "redis://h:1/db", "redis://h?x=1", "unix://",
                         "redis://h%zz", "redis://u:%4@h", "redis://[::1", "rediss:/h", "redis+tls://h"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (redis_url_parse(bad[i], &u, err, sizeof(err)) != -1) T_FAIL("accepted %s", bad[i]);
    ASSERT_EQ_INT(redis_url_parse("rediss://u:pw@cache.example:6380/2", &u, err, sizeof(err)), 0);
    ASSERT_TRUE(u.tls);
    ASSERT_EQ_STR(u.host, "cache.example");
    ASSERT_EQ_INT(u.port, 6380);
    ASSERT_EQ_INT(u.db, 2);
    ASSERT_EQ_INT(redis_url_parse("redis://h", &u, err, sizeof(err)), 0);
    ASSERT_TRUE(!u.tls);
    char *m = redis_url_masked("rediss://bob:secret@h:1/0");
    ASSERT_EQ_STR(m, "rediss://bob:***@h:1/0");
    free(m);
    m = redis_url_masked("redis://bob:secret@h:1/0");
    ASSERT_EQ_STR(m, "redis://bob:***@h:1/0");
    free(m);
    m = redis_url_masked("unix:///s?password=secret&db=1");
    ASSERT_EQ_STR(m, "unix:///s?password=***&db=1");
    free(m);
}

/* rediss:// and its files: refused in a build without TLS (one line, the
 * way to a build with it), and the files only with rediss://, both halves
 * of a client certificate, readable. */
static void t_redis_tls_settings(void) {
    config c;
    char err[512];
    char ca[] = "/tmp/oneshot-unit-ca.XXXXXX";
    int fd = mkstemp(ca);
    ASSERT_TRUE(fd >= 0);
    close(fd);
    const char *tls[] = {"--redis", "rediss://h:6380/0", "--redis-ca", ca, NULL};
    int rc = load(&c, tls, NULL, err, sizeof(err));
#if ONESHOT_HIREDIS_SSL
    ASSERT_EQ_INT(rc, 0);
    ASSERT_EQ_STR(c.redis_ca, ca);
#else
    ASSERT_EQ_INT(rc, -1);
    ASSERT_CONTAINS(err, "--redis: rediss:// is not supported by this build");
    ASSERT_CONTAINS(err, "static build");
#endif
    config_free(&c);
    const char *plain[] = {"--redis", "redis://h:6379/0", "--redis-ca", ca, NULL};
    ASSERT_EQ_INT(load(&c, plain, NULL, err, sizeof(err)), -1);
    ASSERT_CONTAINS(err, "--redis-ca: set, but --redis is not a rediss:// URL");
    config_free(&c);
#if ONESHOT_HIREDIS_SSL
    const char *half[] = {"--redis", "rediss://h", "--redis-cert", ca, NULL};
    ASSERT_EQ_INT(load(&c, half, NULL, err, sizeof(err)), -1);
    ASSERT_CONTAINS(err, "--redis-cert: needs --redis-key too");
    config_free(&c);
    const char *missing[] = {"ONESHOT_REDIS_URL=rediss://h", "ONESHOT_REDIS_KEY=/nonexistent/k.pem",
                             "ONESHOT_REDIS_CERT=/nonexistent/c.pem", NULL};
    const char *none[] = {NULL};
    ASSERT_EQ_INT(load(&c, none, missing, err, sizeof(err)), -1);
    ASSERT_CONTAINS(err, "/nonexistent/");
    ASSERT_CONTAINS(err, "No such file");
    config_free(&c);
#endif
    unlink(ca);
}

const test_case config_tests[] = {
    {"config: defaults", t_defaults},
    {"config: every setting by flag and env", t_every_setting},
    {"config: flag > env > file > default", t_precedence},
    {"config: invalid values name the setting", t_invalid},
    {"config: invalid files name the file", t_invalid_file},
    {"config: --print-config masks secrets", t_print_config_masks},
    {"config: exec command and word splitting", t_exec_and_words},
    {"config: redis URLs", t_redis_url},
    {"config: rediss:// and its TLS files", t_redis_tls_settings},
    {NULL, NULL},
};
