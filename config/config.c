/* config.c -- configuration loading and validation.
 *
 * One table describes every setting: its flag, its environment variable,
 * its type and bounds. Loading applies, in order, the defaults, the JSON
 * file, the environment and the flags, validating each value as it is
 * applied, then checks the settings that depend on each other. */
#include "config.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/buf.h"
#include "../common/ids.h"
#include "../consumer/broker.h"
#include "../consumer/pushgw.h"
#include "redis_url.h"

enum opt_type { T_STR, T_INT, T_SIZE, T_CHOICE, T_LIST, T_BOOL };

#define OPT_SECRET 1 /* masked in --print-config */
#define OPT_CLIENT 2 /* subcommand-only: not printed by --print-config */
#define OPT_URL 4    /* a URL whose password is masked in --print-config */

typedef struct opt {
    const char *name;    /* flag without "--"; also the JSON key */
    const char *env;     /* NULL: no environment variable */
    enum opt_type type;
    size_t off;          /* offset in struct config */
    int64_t min, max;    /* T_INT, T_SIZE */
    const char *choices; /* T_CHOICE: "a|b|c" */
    const char *def;     /* default, as text (NULL: unset) */
    int flags;
    const char *help;
} opt;

#define O(f) offsetof(config, f)
static const opt opts[] = {
    {"source", "ONESHOT_SOURCE", T_CHOICE, O(source), 0, 0, NULL /* the brokers */, NULL /* the first */, 0,
     "where the job comes from"},
    {"port", "ONESHOT_PORT", T_INT, O(port), 0, 65535, NULL, "8000", 0,
     "health (and job) HTTP port; 0 picks a free port"},
    {"bind", "ONESHOT_BIND", T_STR, O(bind), 0, 0, NULL, "0.0.0.0", 0, "HTTP bind address (IPv4 or IPv6)"},
    {"http-timeout", "ONESHOT_HTTP_TIMEOUT", T_INT, O(http_timeout), 1, 3600, NULL, "15", 0,
     "seconds an idle or stalled HTTP connection is kept"},
    {"queue", "ONESHOT_QUEUE", T_STR, O(queue), 0, 0, NULL, "jobs", 0, "list key, stream key or Kafka topic"},
    {"group", "ONESHOT_GROUP", T_STR, O(group), 0, 0, NULL, "oneshot", 0, "stream / Kafka consumer group"},
    {"redis", "ONESHOT_REDIS_URL", T_STR, O(redis_url), 0, 0, NULL, "redis://127.0.0.1:6379/0", OPT_URL,
     "redis://[user:password@]host:port/db, rediss:// (TLS) or unix:///path?db=N"},
    {"redis-ca", "ONESHOT_REDIS_CA", T_STR, O(redis_ca), 0, 0, NULL, NULL, 0,
     "rediss://: CA certificates (PEM file or directory) instead of the system store"},
    {"redis-cert", "ONESHOT_REDIS_CERT", T_STR, O(redis_cert), 0, 0, NULL, NULL, 0,
     "rediss://: client certificate (PEM file, with its chain)"},
    {"redis-key", "ONESHOT_REDIS_KEY", T_STR, O(redis_key), 0, 0, NULL, NULL, 0,
     "rediss://: the client certificate's private key (PEM file, unencrypted)"},
    {"kafka", "ONESHOT_KAFKA_BROKERS", T_STR, O(kafka_brokers), 0, 0, NULL, "127.0.0.1:9092", 0,
     "Kafka bootstrap servers"},
    {"kafka-prop", "ONESHOT_KAFKA_PROPS", T_LIST, O(kafka_props), 0, 0, NULL, NULL, OPT_SECRET,
     "K=V librdkafka property (repeatable; env: k=v,k=v)"},
    {"kafka-key-is-id", "ONESHOT_KAFKA_KEY_IS_ID", T_BOOL, O(kafka_key_is_id), 0, 1, NULL, "0", 0,
     "a Kafka message's key is its job id (producers whose keys are job ids)"},
    {"store", "ONESHOT_STORE", T_CHOICE, O(store), 0, 0, NULL /* the brokers' stores */, NULL, 0,
     "result/status store (default: the source's broker, none for http)"},
    {"prefix", "ONESHOT_PREFIX", T_STR, O(prefix), 0, 0, NULL, "oneshot", 0, "Redis key prefix"},
    {"result-ttl", "ONESHOT_RESULT_TTL", T_INT, O(result_ttl), 1, INT_MAX, NULL, "86400", 0,
     "seconds results and final status are kept"},
    {"max-attempts", "ONESHOT_MAX_ATTEMPTS", T_INT, O(max_attempts), 1, 1000000, NULL, "3", 0,
     "deliveries before a job is dead-lettered"},
    {"lease", "ONESHOT_LEASE", T_INT, O(lease), 3, 86400, NULL, "30", 0,
     "seconds a claim lives without a heartbeat"},
    {"dead-letter", "ONESHOT_DEAD_LETTER", T_STR, O(dead_letter), 0, 0, NULL, NULL, 0,
     "dead-letter list/stream/topic (default <queue>.dead)"},
    {"deadline", "ONESHOT_DEADLINE", T_INT, O(deadline), 0, INT_MAX / 1000, NULL, "0", 0,
     "seconds from start the replica may live (0: none)"},
    {"deadline-margin", "ONESHOT_DEADLINE_MARGIN", T_INT, O(deadline_margin), 0, INT_MAX / 1000, NULL, "10", 0,
     "the watchdog acts this many seconds before --deadline"},
    {"idle-timeout", "ONESHOT_IDLE_TIMEOUT", T_INT, O(idle_timeout), 0, INT_MAX / 1000, NULL, "0", 0,
     "no job by then: exit 75 (0: wait)"},
    {"term-grace", "ONESHOT_TERM_GRACE", T_INT, O(term_grace), 0, 3600, NULL, "20", 0,
     "after SIGTERM, seconds the core gets to finish"},
    {"core", "ONESHOT_CORE", T_STR, O(core), 0, 0, NULL, "demo", 0, "demo, echo, exec or plugin:/path/core.so"},
    {"exec", "ONESHOT_EXEC", T_STR, 0, 0, 0, NULL, NULL, 0, "command for the exec core (or -- CMD ARGS...)"},
    {"max-input", "ONESHOT_MAX_INPUT", T_SIZE, O(max_input), 1, INT64_C(1) << 40, NULL, "16777216", 0,
     "input size limit in bytes (k/m/g suffixes)"},
    {"max-output", "ONESHOT_MAX_OUTPUT", T_SIZE, O(max_output), 1, INT64_C(1) << 40, NULL, "16777216", 0,
     "result size limit in bytes"},
    {"auth-token", "ONESHOT_AUTH_TOKEN", T_STR, O(auth_token), 0, 0, NULL, NULL, OPT_SECRET,
     "POST /job requires Authorization: Bearer <token>"},
    {"log-level", "ONESHOT_LOG_LEVEL", T_CHOICE, O(log_level), 0, 0, "debug|info|warn|error", "info", 0,
     "log level"},
    {"log-format", "ONESHOT_LOG_FORMAT", T_CHOICE, O(log_format), 0, 0, "json|text", "json", 0, "log format"},
    {"termination-log", "ONESHOT_TERMINATION_LOG", T_STR, O(termination_log), 0, 0, NULL, NULL, 0,
     "file for the final status JSON (default /dev/termination-log if writable)"},
    {"pushgateway", "ONESHOT_PUSHGATEWAY", T_STR, O(pushgateway), 0, 0, NULL, NULL, OPT_URL,
     "Prometheus pushgateway URL for the final metrics"},
    {"id", NULL, T_STR, O(job_id), 0, 0, NULL, NULL, OPT_CLIENT, "submit: the job id"},
    {"timeout", NULL, T_INT, O(timeout), 0, INT_MAX / 1000, NULL, "0", OPT_CLIENT, "wait: seconds (0: forever)"},
    {"max-concurrent", "ONESHOT_MAX_CONCURRENT", T_INT, O(max_concurrent), 1, 4096, NULL, "4", OPT_CLIENT,
     "fleet: replicas at once"},
    {"poll-ms", "ONESHOT_POLL_MS", T_INT, O(poll_ms), 10, 600000, NULL, "200", OPT_CLIENT,
     "fleet: backlog poll interval"},
    {"drain", NULL, T_BOOL, O(drain), 0, 1, NULL, "0", OPT_CLIENT, "fleet: exit once nothing is left"},
    {"all", NULL, T_BOOL, O(all), 0, 1, NULL, "0", OPT_CLIENT, "redrive: every dead letter (instead of one ID)"},
    {"dry-run", NULL, T_BOOL, O(dry_run), 0, 1, NULL, "0", OPT_CLIENT, "redrive: list what would move, move nothing"},
    {"rejected", NULL, T_BOOL, O(rejected), 0, 1, NULL, "0", OPT_CLIENT,
     "redrive: rejected letters too (as the producer's bytes)"},
};
#undef O
#define NOPTS (sizeof(opts) / sizeof(opts[0]))

static const opt *opt_find(const char *name, size_t n) {
    for (size_t i = 0; i < NOPTS; i++)
        if (strlen(opts[i].name) == n && strncmp(opts[i].name, name, n) == 0) return &opts[i];
    return NULL;
}

static void *field(config *cfg, const opt *o) { return (char *)cfg + o->off; }

/* An option's default: its own, or --source's: the registry's first broker. */
static const char *opt_default(const opt *o) {
    if (o->def || strcmp(o->name, "source") != 0) return o->def;
    return broker_default_name();
}

/* A T_CHOICE's choices: its own, or (NULL) the broker registry's names:
 * the brokers for --source, their stores for --store. */
static const char *opt_choices(const opt *o) {
    if (o->choices) return o->choices;
    return broker_choices(strcmp(o->name, "store") == 0);
}

static int choice_ok(const char *choices, const char *v) {
    size_t vn = strlen(v);
    for (const char *c = choices; *c;) {
        size_t n = strcspn(c, "|");
        if (n == vn && strncmp(c, v, n) == 0) return 1;
        c += n;
        if (*c == '|') c++;
    }
    return 0;
}

/* Parse an integer with an optional binary suffix (T_SIZE: k, m, g). */
static int parse_int(const char *v, int sizes, int64_t *out) {
    char *end;
    errno = 0;
    if (!*v || isspace((unsigned char)*v)) return -1;
    long long x = strtoll(v, &end, 10);
    if (errno || end == v) return -1;
    if (sizes && *end) {
        int64_t mul = 0;
        switch (tolower((unsigned char)*end)) {
        case 'k': mul = INT64_C(1) << 10; break;
        case 'm': mul = INT64_C(1) << 20; break;
        case 'g': mul = INT64_C(1) << 30; break;
        default: return -1;
        }
        end++;
        if (tolower((unsigned char)*end) == 'i') end++;
        if (tolower((unsigned char)*end) == 'b') end++;
        if (x > INT64_MAX / mul || x < INT64_MIN / mul) return -1;
        x *= mul;
    }
    if (*end) return -1;
    *out = (int64_t)x;
    return 0;
}

/* Where a value came from, for error messages. */
typedef struct origin {
    const char *kind; /* "flag", "env", "file" */
    const char *file;
} origin;

static void name_setting(char *out, size_t n, const opt *o, const origin *from) {
    if (strcmp(from->kind, "env") == 0 && o->env)
        snprintf(out, n, "%s", o->env);
    else if (strcmp(from->kind, "file") == 0)
        snprintf(out, n, "%s: \"%s\"", from->file, o->name);
    else
        snprintf(out, n, "--%s", o->name);
}

static void list_add(char ***list, size_t *n, const char *v) {
    *list = xrealloc(*list, (*n + 2) * sizeof(char *));
    (*list)[(*n)++] = xstrdup(v);
    (*list)[*n] = NULL;
}

static void list_clear(char ***list, size_t *n) {
    for (size_t i = 0; i < *n; i++) free((*list)[i]);
    free(*list);
    *list = NULL;
    *n = 0;
}

/* Mark a setting as given by the user (the explicit_set string holds
 * " name " entries). */
static void mark_set(config *cfg, const char *name) {
    if (config_is_set(cfg, name)) return;
    buf b = BUF_INIT;
    buf_puts(&b, cfg->explicit_set ? cfg->explicit_set : " ");
    buf_printf(&b, "%s ", name);
    free(cfg->explicit_set);
    cfg->explicit_set = buf_steal(&b, NULL);
}

int config_is_set(const config *cfg, const char *name) {
    char key[64];
    if (!cfg->explicit_set) return 0;
    snprintf(key, sizeof(key), " %s ", name);
    return strstr(cfg->explicit_set, key) != NULL;
}

/* Apply one value to a setting. T_LIST values from the environment are
 * comma-separated; from a flag each occurrence adds one. */
static int opt_apply(config *cfg, const opt *o, const char *v, const origin *from, char *err,
                     size_t errlen) {
    char setting[300];
    int64_t x;
    int user = strcmp(from->kind, "default") != 0;
/* The setting's name as the user gave it, for an error (named only then:
 * every default goes through here at every start). */
#define SETTING (name_setting(setting, sizeof(setting), o, from), setting)
    if (strcmp(o->name, "exec") == 0) {
        size_t argc = 0;
        char why[200];
        char **argv = config_split_words(v, &argc, why, sizeof(why));
        if (!argv) {
            snprintf(err, errlen, "%s: %s", SETTING, why);
            return -1;
        }
        if (argc == 0) {
            config_free_argv(argv);
            snprintf(err, errlen, "%s: empty command", SETTING);
            return -1;
        }
        config_free_argv(cfg->exec_argv);
        cfg->exec_argv = argv;
        cfg->exec_argc = argc;
        if (user) mark_set(cfg, o->name);
        return 0;
    }
    switch (o->type) {
    case T_STR:
        if (!*v && strcmp(o->name, "termination-log") != 0) {
            snprintf(err, errlen, "%s: must not be empty", SETTING);
            return -1;
        }
        if (strlen(v) > 4096) {
            snprintf(err, errlen, "%s: longer than 4096 bytes", SETTING);
            return -1;
        }
        free(*(char **)field(cfg, o));
        *(char **)field(cfg, o) = xstrdup(v);
        break;
    case T_CHOICE:
        if (!choice_ok(opt_choices(o), v)) {
            snprintf(err, errlen, "%s: '%.64s' is not one of %s", SETTING, v, opt_choices(o));
            return -1;
        }
        free(*(char **)field(cfg, o));
        *(char **)field(cfg, o) = xstrdup(v);
        break;
    case T_INT:
    case T_SIZE:
        if (parse_int(v, o->type == T_SIZE, &x) < 0 || x < o->min || x > o->max) {
            snprintf(err, errlen, "%s: '%.64s' is not a whole number in %lld..%lld", SETTING, v,
                     (long long)o->min, (long long)o->max);
            return -1;
        }
        if (o->type == T_INT)
            *(int *)field(cfg, o) = (int)x;
        else
            *(int64_t *)field(cfg, o) = x;
        break;
    case T_BOOL:
        if (strcmp(v, "1") == 0 || strcmp(v, "true") == 0) *(int *)field(cfg, o) = 1;
        else if (strcmp(v, "0") == 0 || strcmp(v, "false") == 0) *(int *)field(cfg, o) = 0;
        else {
            snprintf(err, errlen, "%s: '%.64s' is not true or false", SETTING, v);
            return -1;
        }
        break;
    case T_LIST: {
        char ***list = (char ***)field(cfg, o);
        size_t *n = &cfg->nkafka_props;
        int from_env = strcmp(from->kind, "env") == 0;
        if (from_env) list_clear(list, n);
        const char *p = v;
        int nitem = 0;
        do {
            size_t len = from_env ? strcspn(p, ",") : strlen(p);
            const char *eq = memchr(p, '=', len);
            nitem++;
            if (!eq || eq == p) {
                /* Not quoted: it may be the tail of a password holding a ','. */
                snprintf(err, errlen, "%s: item %d is not KEY=VALUE", SETTING, nitem);
                return -1;
            }
            char *item = xstrndup(p, len);
            list_add(list, n, item);
            free(item);
            p += len;
            if (*p == ',') p++;
        } while (*p);
        break;
    }
    }
    if (user) mark_set(cfg, o->name); /* defaults are not "explicitly set" */
    return 0;
#undef SETTING
}

static int apply_defaults(config *cfg) {
    static const origin def = {"default", NULL};
    char err[256];
    for (size_t i = 0; i < NOPTS; i++)
        if (opt_default(&opts[i]) && opt_apply(cfg, &opts[i], opt_default(&opts[i]), &def, err, sizeof(err)) < 0)
            return -1;
    return 0;
}

static int apply_file(config *cfg, const char *path, char *err, size_t errlen) {
    origin from = {"file", path};
    FILE *f = NULL;
    buf text = BUF_INIT;
    cJSON *root = NULL;
    int rc = -1;
    char chunk[4096];
    size_t n;

    if (!(f = fopen(path, "r"))) {
        snprintf(err, errlen, "--config: cannot read '%s': %s", path, strerror(errno));
        goto end;
    }
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        buf_append(&text, chunk, n);
        if (text.len > (1 << 20)) {
            snprintf(err, errlen, "--config: '%s' is larger than 1 MiB", path);
            goto end;
        }
    }
    root = cJSON_ParseWithLength(text.data ? text.data : "", text.len);
    if (!cJSON_IsObject(root)) {
        snprintf(err, errlen, "--config: '%s' is not a JSON object", path);
        goto end;
    }
    const cJSON *it;
    cJSON_ArrayForEach(it, root) {
        char key[64];
        snprintf(key, sizeof(key), "%s", it->string ? it->string : "");
        for (char *c = key; *c; c++)
            if (*c == '_') *c = '-';
        const opt *o = opt_find(key, strlen(key));
        if (!o || (o->flags & OPT_CLIENT)) {
            snprintf(err, errlen, "--config: '%s': unknown setting \"%.64s\"", path, key);
            goto end;
        }
        char num[64];
        const char *v = NULL;
        if (cJSON_IsString(it)) {
            v = it->valuestring;
        } else if (cJSON_IsNumber(it) && o->type != T_STR && o->type != T_CHOICE) {
            snprintf(num, sizeof(num), "%.17g", it->valuedouble);
            v = num;
        } else if (cJSON_IsBool(it) && o->type == T_BOOL) {
            v = cJSON_IsTrue(it) ? "1" : "0";
        } else if (cJSON_IsArray(it) && (o->type == T_LIST || strcmp(o->name, "exec") == 0)) {
            /* kafka-prop: ["k=v", ...]; exec: ["cmd", "arg", ...] */
            const cJSON *el;
            if (strcmp(o->name, "exec") == 0) {
                config_free_argv(cfg->exec_argv);
                cfg->exec_argv = NULL;
                cfg->exec_argc = 0;
            }
            cJSON_ArrayForEach(el, it) {
                if (!cJSON_IsString(el)) {
                    snprintf(err, errlen, "%s: \"%s\": array items must be strings", path, o->name);
                    goto end;
                }
                if (strcmp(o->name, "exec") == 0)
                    list_add(&cfg->exec_argv, &cfg->exec_argc, el->valuestring);
                else if (opt_apply(cfg, o, el->valuestring, &from, err, errlen) < 0)
                    goto end;
            }
            if (strcmp(o->name, "exec") == 0) {
                if (cfg->exec_argc == 0) {
                    snprintf(err, errlen, "%s: \"exec\": empty command", path);
                    goto end;
                }
                mark_set(cfg, "exec");
            }
            continue;
        } else if (cJSON_IsObject(it) && o->type == T_LIST) {
            const cJSON *el;
            cJSON_ArrayForEach(el, it) {
                if (!cJSON_IsString(el)) {
                    snprintf(err, errlen, "%s: \"%s\": values must be strings", path, o->name);
                    goto end;
                }
                buf kv = BUF_INIT;
                buf_printf(&kv, "%s=%s", el->string, el->valuestring);
                int r = opt_apply(cfg, o, kv.data, &from, err, errlen);
                buf_free(&kv);
                if (r < 0) goto end;
            }
            continue;
        } else {
            snprintf(err, errlen, "%s: \"%s\": wrong type", path, o->name);
            goto end;
        }
        if (opt_apply(cfg, o, v, &from, err, errlen) < 0) goto end;
    }
    rc = 0;
end:
    if (f) fclose(f);
    cJSON_Delete(root);
    buf_free(&text);
    return rc;
}

/* Each option scans the whole environment: the first byte is compared
 * before strncmp is called (every name starts ONESHOT_, few variables
 * do), which took the scans from 6% of a replica's instructions to 1%. */
static const char *env_get(char **envp, const char *name) {
    size_t n = strlen(name);
    for (char **e = envp; e && *e; e++)
        if ((*e)[0] == name[0] && strncmp(*e, name, n) == 0 && (*e)[n] == '=') return *e + n + 1;
    return NULL;
}

/* rediss:// and its files. The files are only checked for being readable
 * here; their contents are loaded (and refused with 78) when the TLS
 * context is made at start, before anything is consumed (redis/tls.h). */
static int validate_redis_tls(const config *cfg, const redis_url *u, char *err, size_t errlen) {
    const char *files[] = {"redis-ca", cfg->redis_ca, "redis-cert", cfg->redis_cert, "redis-key", cfg->redis_key};
#if !ONESHOT_HIREDIS_SSL
    if (u->tls) {
        snprintf(err, errlen, "--redis: %s", REDIS_URL_NO_TLS);
        return -1;
    }
#endif
    for (size_t k = 0; k < sizeof(files) / sizeof(files[0]); k += 2) {
        if (!files[k + 1]) continue;
        if (!u->tls) {
            snprintf(err, errlen, "--%s: set, but --redis is not a rediss:// URL (this connection has no TLS)",
                     files[k]);
            return -1;
        }
        if (access(files[k + 1], R_OK) != 0) {
            snprintf(err, errlen, "--%s: '%.200s': %s", files[k], files[k + 1], strerror(errno));
            return -1;
        }
    }
    if (!cfg->redis_cert != !cfg->redis_key) {
        snprintf(err, errlen, "--%s: needs --%s too (a client certificate and its key go together)",
                 cfg->redis_cert ? "redis-cert" : "redis-key", cfg->redis_cert ? "redis-key" : "redis-cert");
        return -1;
    }
    return 0;
}

/* Cross-setting checks, after every source has been applied. */
static int validate(config *cfg, int allow_args, char *err, size_t errlen) {
    char why[200];
    redis_url u;
    unsigned char addr[16];

    if (inet_pton(AF_INET, cfg->bind, addr) != 1 && inet_pton(AF_INET6, cfg->bind, addr) != 1) {
        snprintf(err, errlen, "--bind: '%.64s' is not an IPv4 or IPv6 address", cfg->bind);
        return -1;
    }
    if (redis_url_parse(cfg->redis_url, &u, why, sizeof(why)) < 0) {
        snprintf(err, errlen, "--redis: %s", why);
        return -1;
    }
    if (validate_redis_tls(cfg, &u, err, errlen) < 0) return -1;
    /* Subcommands (allow_args) take --deadline as a job's deadline_s: no margin. */
    if (cfg->pushgateway) {
        pushgw_url pu;
        if (pushgw_parse_url(cfg->pushgateway, &pu, why, sizeof(why)) < 0) {
            snprintf(err, errlen, "--pushgateway: %s", why);
            return -1;
        }
    }
    if (!allow_args && cfg->deadline > 0 && cfg->deadline_margin >= cfg->deadline) {
        snprintf(err, errlen, "--deadline-margin: %d must be less than --deadline %d",
                 cfg->deadline_margin, cfg->deadline);
        return -1;
    }
    if (cfg->exec_argv && !config_is_set(cfg, "core")) {
        /* `oneshot -- ./script` means the exec core. */
        free(cfg->core);
        cfg->core = xstrdup("exec");
    }
    if (strcmp(cfg->core, "exec") == 0) {
        if (!cfg->exec_argv) {
            snprintf(err, errlen, "--core: exec needs a command (-- CMD ARGS... or ONESHOT_EXEC)");
            return -1;
        }
    } else if (cfg->exec_argv) {
        snprintf(err, errlen, "--core: a command was given but the core is '%.64s', not exec", cfg->core);
        return -1;
    } else if (strcmp(cfg->core, "demo") != 0 && strcmp(cfg->core, "echo") != 0 &&
               !(strncmp(cfg->core, "plugin:", 7) == 0 && cfg->core[7])) {
        snprintf(err, errlen, "--core: '%.64s' is not demo, echo, exec or plugin:/path/core.so", cfg->core);
        return -1;
    }
    const char *names[] = {"queue", cfg->queue, "group", cfg->group, "prefix", cfg->prefix,
                           "dead-letter", cfg->dead_letter};
    for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k += 2) {
        const char *v = names[k + 1];
        if (v && !id_valid(v, strlen(v))) {
            snprintf(err, errlen, "--%s: '%.64s' must be 1..%d characters of [A-Za-z0-9._:-]",
                     names[k], v, ID_MAX);
            return -1;
        }
    }
    if (!cfg->store) {
        /* The source's broker brings its store. */
        const broker *b = broker_named(cfg->source);
        cfg->store = xstrdup(b ? b->store_name : "none");
    }
    if (!cfg->dead_letter) {
        buf b = BUF_INIT;
        buf_printf(&b, "%s.dead", cfg->queue);
        cfg->dead_letter = buf_steal(&b, NULL);
    }
    return 0;
}

static int load(config *cfg, int argc, char **argv, char **envp, int allow_args, char *err,
                size_t errlen) {
    static const origin flag = {"flag", NULL};
    static const origin env = {"env", NULL};
    int rc = -1;

    memset(cfg, 0, sizeof(*cfg));
    if (apply_defaults(cfg) < 0) {
        snprintf(err, errlen, "internal error: bad default");
        return -1;
    }
    /* First pass: --config, --help, --version, and the shape of argv. */
    const char *file = env_get(envp, "ONESHOT_CONFIG");
    int i;
    for (i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0) break;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) cfg->help = 1;
        else if (strcmp(a, "--version") == 0) cfg->version = 1;
        else if (strcmp(a, "--print-config") == 0) cfg->print_config = 1;
        else if (strncmp(a, "--config=", 9) == 0) file = a + 9;
        else if (strcmp(a, "--config") == 0) {
            if (i + 1 >= argc) {
                snprintf(err, errlen, "--config: needs a FILE");
                return -1;
            }
            file = argv[++i];
        }
    }
    if (cfg->help || cfg->version) return 0;
    if (file) {
        cfg->config_file = xstrdup(file);
        if (apply_file(cfg, file, err, errlen) < 0) return -1;
    }
    for (size_t k = 0; k < NOPTS; k++) {
        const char *v = opts[k].env ? env_get(envp, opts[k].env) : NULL;
        if (v && opt_apply(cfg, &opts[k], v, &env, err, errlen) < 0) return -1;
    }
    for (i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0) {
            i++;
            break;
        }
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0 || strcmp(a, "--version") == 0 ||
            strcmp(a, "--print-config") == 0 || strncmp(a, "--config=", 9) == 0)
            continue;
        if (strcmp(a, "--config") == 0) {
            i++;
            continue;
        }
        if (strncmp(a, "--", 2) != 0 || a[2] == '\0') {
            if (allow_args && (a[0] != '-' || a[1] == '\0')) {
                list_add(&cfg->args, &cfg->nargs, a);
                continue;
            }
            snprintf(err, errlen, "%.64s: unexpected argument (see --help)", a);
            return -1;
        }
        const char *name = a + 2;
        const char *eq = strchr(name, '=');
        size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
        const opt *o = opt_find(name, nlen);
        if (!o) {
            snprintf(err, errlen, "--%.*s: unknown flag (see --help)", (int)(nlen > 64 ? 64 : nlen), name);
            return -1;
        }
        const char *v;
        if (eq)
            v = eq + 1;
        else if (o->type == T_BOOL)
            v = "1";
        else if (i + 1 < argc)
            v = argv[++i];
        else {
            snprintf(err, errlen, "--%s: needs a value", o->name);
            return -1;
        }
        if (opt_apply(cfg, o, v, &flag, err, errlen) < 0) return -1;
    }
    if (i < argc) { /* -- CMD ARGS...: the exec core's command */
        config_free_argv(cfg->exec_argv);
        cfg->exec_argv = NULL;
        cfg->exec_argc = 0;
        for (; i < argc; i++) list_add(&cfg->exec_argv, &cfg->exec_argc, argv[i]);
        mark_set(cfg, "exec");
    }
    rc = validate(cfg, allow_args, err, errlen);
    return rc;
}

/* The error stays one line even when it quotes a
 * value or flag holding a newline: control characters become '?'. */
int config_load(config *cfg, int argc, char **argv, char **envp, int allow_args, char *err,
                size_t errlen) {
    int rc = load(cfg, argc, argv, envp, allow_args, err, errlen);
    if (rc < 0)
        for (char *c = err; *c; c++)
            if ((unsigned char)*c < 0x20 || *c == 0x7f) *c = '?';
    return rc;
}

void config_free_argv(char **argv) {
    for (char **a = argv; a && *a; a++) free(*a);
    free(argv);
}

void config_free(config *cfg) {
    for (size_t i = 0; i < NOPTS; i++) {
        const opt *o = &opts[i];
        if ((o->type == T_STR || o->type == T_CHOICE) && strcmp(o->name, "exec") != 0) {
            free(*(char **)field(cfg, o));
            *(char **)field(cfg, o) = NULL;
        }
    }
    list_clear(&cfg->kafka_props, &cfg->nkafka_props);
    list_clear(&cfg->args, &cfg->nargs);
    config_free_argv(cfg->exec_argv);
    cfg->exec_argv = NULL;
    free(cfg->config_file);
    free(cfg->explicit_set);
    cfg->config_file = cfg->explicit_set = NULL;
}

/* Kafka properties whose values are secrets. */
static int prop_is_secret(const char *kv) {
    char *key = xstrndup(kv, strcspn(kv, "=")); /* whole: a long key hides nothing */
    int secret = strstr(key, "password") || strstr(key, "secret") || strstr(key, "sasl.jaas") ||
                 strstr(key, "ssl.key.pem") || strstr(key, "token") ||
                 strstr(key, "oauthbearer.config");
    free(key);
    return secret;
}

char *config_to_json(const config *cfg) {
    cJSON *root = cJSON_CreateObject();
    for (size_t i = 0; i < NOPTS; i++) {
        const opt *o = &opts[i];
        if (o->flags & OPT_CLIENT) continue;
        const void *f = (const char *)cfg + o->off;
        if (strcmp(o->name, "exec") == 0) {
            cJSON *arr = cJSON_AddArrayToObject(root, "exec");
            for (size_t k = 0; k < cfg->exec_argc; k++)
                cJSON_AddItemToArray(arr, cJSON_CreateString(cfg->exec_argv[k]));
            continue;
        }
        switch (o->type) {
        case T_STR:
        case T_CHOICE: {
            const char *v = *(char *const *)f;
            if (!v) {
                cJSON_AddNullToObject(root, o->name);
            } else if (o->flags & OPT_URL) {
                char *m = redis_url_masked(v);
                cJSON_AddStringToObject(root, o->name, m);
                free(m);
            } else {
                cJSON_AddStringToObject(root, o->name, (o->flags & OPT_SECRET) ? "***" : v);
            }
            break;
        }
        case T_INT:
        case T_BOOL:
            cJSON_AddNumberToObject(root, o->name, *(const int *)f);
            break;
        case T_SIZE:
            cJSON_AddNumberToObject(root, o->name, (double)*(const int64_t *)f);
            break;
        case T_LIST: {
            cJSON *arr = cJSON_AddArrayToObject(root, o->name);
            for (size_t k = 0; k < cfg->nkafka_props; k++) {
                const char *kv = cfg->kafka_props[k];
                if (prop_is_secret(kv)) {
                    buf b = BUF_INIT;
                    buf_printf(&b, "%.*s=***", (int)strcspn(kv, "="), kv);
                    cJSON_AddItemToArray(arr, cJSON_CreateString(b.data));
                    buf_free(&b);
                } else {
                    cJSON_AddItemToArray(arr, cJSON_CreateString(kv));
                }
            }
            break;
        }
        }
    }
    char *out = cJSON_Print(root);
    cJSON_Delete(root);
    return out;
}

const char *config_usage(void) {
    static char text[8192];
    if (text[0]) return text;
    buf b = BUF_INIT;
    buf_puts(&b,
             "usage: oneshot [run] [options] [-- CMD ARGS...]\n"
             "       oneshot submit [options] [INPUT | -]\n"
             "       oneshot status ID [options]\n"
             "       oneshot wait ID [--timeout S] [options]\n"
             "       oneshot cancel ID [options]\n"
             "       oneshot sweep [--source redis-list|redis-stream] [--lease S] [options]\n"
             "       oneshot redrive [ID | --all] [--dry-run] [--rejected] [options]\n"
             "       oneshot fleet [--max-concurrent N] [--deadline S] [--drain] [--poll-ms M] [-- REPLICA OPTIONS]\n"
             "       oneshot healthcheck [--port P]   (GET /health on 127.0.0.1: 0 healthy, 1 not)\n"
             "\n"
             "One process, one job, one exit code. Options (flag > env > --config FILE > default):\n");
    for (size_t i = 0; i < NOPTS; i++) {
        const opt *o = &opts[i];
        char left[64];
        snprintf(left, sizeof(left), "--%s%s", o->name, o->type == T_BOOL ? "" : " V");
        buf_printf(&b, "  %-22s %s", left, o->help);
        if (opt_default(o)) buf_printf(&b, " [%s]", opt_default(o));
        if (o->env) buf_printf(&b, " (%s)", o->env);
        buf_puts(&b, "\n");
    }
    buf_puts(&b,
             "  --config FILE          JSON file with the settings above (ONESHOT_CONFIG)\n"
             "  --print-config         print the effective configuration (secrets masked)\n"
             "  --help, --version\n"
             "\nExit codes: 0 ok, 1..63 failed, 65 rejected, 66 no record of the job (status, wait),\n"
             "69 broker unreachable, 75 idle, 78 bad configuration, 124 deadline, 143 terminated.\n");
    snprintf(text, sizeof(text), "%s", b.data);
    buf_free(&b);
    return text;
}

char **config_split_words(const char *s, size_t *argc, char *err, size_t errlen) {
    char **argv = NULL;
    size_t n = 0;
    buf word = BUF_INIT;
    int in_word = 0;

    for (const char *p = s;; p++) {
        char c = *p;
        if (c == '\0' || c == ' ' || c == '\t' || c == '\n') {
            if (in_word) {
                list_add(&argv, &n, word.data ? word.data : "");
                buf_reset(&word);
                in_word = 0;
            }
            if (c == '\0') break;
            continue;
        }
        in_word = 1;
        if (c == '\'') {
            const char *q = strchr(p + 1, '\'');
            if (!q) goto unterminated;
            buf_append(&word, p + 1, (size_t)(q - p - 1));
            if (!word.data) buf_puts(&word, "");
            p = q;
        } else if (c == '"') {
            buf_puts(&word, "");
            for (p++; *p != '"'; p++) {
                if (*p == '\0') goto unterminated;
                if (*p == '\\' && (p[1] == '"' || p[1] == '\\' || p[1] == '$' || p[1] == '`'))
                    p++;
                buf_append(&word, p, 1);
            }
        } else if (c == '\\') {
            if (p[1] == '\0') goto unterminated;
            p++;
            buf_append(&word, p, 1);
        } else {
            buf_append(&word, p, 1);
        }
    }
    buf_free(&word);
    if (!argv) {
        argv = xcalloc(1, sizeof(char *));
    }
    *argc = n;
    return argv;
unterminated:
    snprintf(err, errlen, "unterminated quote or escape");
    buf_free(&word);
    config_free_argv(argv);
    return NULL;
}
