/* config.h -- configuration loading and validation.
 *
 * Precedence: command-line flag > environment variable > --config FILE
 * (JSON with the flag names as keys) > default. Every value is validated
 * at load; the first invalid one yields a single line naming the setting
 * and the caller exits 78 (OS_EXIT_CONFIG). */
#ifndef ONESHOT_CONFIG_H
#define ONESHOT_CONFIG_H

#include <stddef.h>
#include <stdint.h>

typedef struct config {
    char *source;          /* http | redis-list | redis-stream | kafka */
    int port;              /* 0 = pick a free port and log it */
    char *bind;
    int http_timeout;      /* seconds an idle HTTP connection is kept */
    char *queue;
    char *group;
    char *redis_url;       /* secret inside: the password */
    char *redis_ca;        /* rediss://: CA file or directory (NULL: the system store) */
    char *redis_cert;      /* rediss://: client certificate chain file (PEM) */
    char *redis_key;       /* rediss://: its private key file (PEM); the path only, never the key */
    char *kafka_brokers;
    char **kafka_props;    /* "key=value" strings, passed to librdkafka */
    size_t nkafka_props;
    int kafka_key_is_id;   /* the message key, not the envelope or header, is the job id */
    char *store;           /* none | redis | kafka (default: the source's broker) */
    char *prefix;
    int result_ttl;        /* seconds */
    int max_attempts;
    int lease;             /* seconds */
    char *dead_letter;     /* default "<queue>.dead" */
    int deadline;          /* seconds from process start, 0 = none */
    int deadline_margin;
    int idle_timeout;      /* 0 = wait forever */
    int term_grace;
    char *core;            /* demo | echo | exec | plugin:/path.so */
    char **exec_argv;      /* NULL-terminated; the exec core's command */
    size_t exec_argc;
    int64_t max_input;     /* bytes */
    int64_t max_output;
    char *auth_token;      /* secret */
    char *log_level;
    char *log_format;
    char *termination_log; /* NULL = /dev/termination-log when writable; "" = off */
    char *pushgateway;     /* Prometheus pushgateway URL, NULL = off */
    char *config_file;
    /* Subcommand options (submit, status, wait, cancel, fleet). */
    char *job_id;          /* --id */
    int timeout;           /* --timeout seconds, 0 = wait forever */
    int max_concurrent;    /* fleet */
    int poll_ms;           /* fleet */
    int drain;             /* fleet */
    int all;               /* redrive: every dead letter */
    int dry_run;           /* redrive: move nothing */
    int rejected;          /* redrive: rejected letters too */
    /* Set by the parser. */
    int print_config, help, version;
    char **args;           /* positional arguments, NULL-terminated */
    size_t nargs;
    char *explicit_set;    /* internal: which settings were given explicitly */
} config;

/* Parse argv (after the subcommand word) and envp into cfg. allow_args:
 * positional arguments are accepted (subcommands) instead of rejected.
 * Returns 0, or -1 with one line in err naming the setting. cfg must be
 * released with config_free in both cases. */
int config_load(config *cfg, int argc, char **argv, char **envp, int allow_args, char *err,
                size_t errlen);
void config_free(config *cfg);

/* The effective configuration as pretty JSON, secrets masked; malloc'd. */
char *config_to_json(const config *cfg);
/* The --help text. */
const char *config_usage(void);
/* 1 when the setting named by its flag (without dashes) was given by the
 * user (flag, env or file), 0 when it holds its default. */
int config_is_set(const config *cfg, const char *name);

/* Split a command line into words as a POSIX shell would (quotes and
 * backslashes), without any expansion. Returns a NULL-terminated array
 * (free with config_free_argv) or NULL with the reason in err. */
char **config_split_words(const char *s, size_t *argc, char *err, size_t errlen);
void config_free_argv(char **argv);

#endif
