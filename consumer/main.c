/* main.c -- oneshot: one process, one job, one exit code.
 *
 * Dispatches the subcommand; everything else lives in its own module:
 * lifecycle.c runs a replica, client.c the callers' commands, fleet.c the
 * local scaler. */
#include <cjson/cJSON.h>
#include <hiredis/hiredis.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/exitcodes.h"
#include "../common/status.h"
#include "../config/config.h"
#include "bundled.h"
#include "client.h"
#include "fleet.h"
#include "healthcheck.h"
#include "kafka/module.h"
#include "lifecycle.h"
#include "redis/tls.h"

#ifndef ONESHOT_VERSION
#define ONESHOT_VERSION "0.1.0"
#endif

extern char **environ;

static const char *self_path;
static int fleet_argc; /* fleet: its arguments, `--` and the replica options included */
static char **fleet_argv;

static int cmd_run(const config *cfg) { return lifecycle_run(cfg); }
static int cmd_fleet(const config *cfg) { return fleet_run(cfg, self_path, fleet_argc, fleet_argv); }

static const struct command {
    const char *name;
    int (*fn)(const config *cfg);
    int nargs; /* positional arguments it takes: exact count, -1 for 0..1, -2 for none (a
                  subcommand's options, not a replica's) */
    const char *(*help)(void); /* more for its --help, after the options; may be NULL */
} commands[] = {
    {.name = "run", .fn = cmd_run, .nargs = 0},
    {.name = "submit", .fn = client_submit, .nargs = -1},
    {.name = "status", .fn = client_status, .nargs = 1, .help = status_states_help},
    {.name = "wait", .fn = client_wait, .nargs = 1, .help = status_states_help},
    {.name = "cancel", .fn = client_cancel, .nargs = 1, .help = status_states_help},
    {.name = "sweep", .fn = client_sweep, .nargs = -2},
    {.name = "redrive", .fn = client_redrive, .nargs = -1},
    {.name = "fleet", .fn = cmd_fleet, .nargs = 0},
    {.name = "healthcheck", .fn = healthcheck_run, .nargs = 0},
};

int main(int argc, char **argv) {
    const struct command *cmd = &commands[0];
    config cfg;
    char err[512];
    int code;

    self_path = argv[0];
    argc--;
    argv++;
    if (argc > 0) {
        for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
            if (strcmp(argv[0], commands[i].name) == 0) {
                cmd = &commands[i];
                argc--;
                argv++;
                break;
            }
    }
    /* fleet: what follows `--` is the replicas' options, not a command;
     * its own --deadline is the platform's (no --deadline-margin check). */
    int cfg_argc = argc, subcommand = cmd->nargs != 0;
    if (cmd->fn == cmd_fleet) {
        fleet_argc = argc;
        fleet_argv = argv;
        for (cfg_argc = 0; cfg_argc < argc && strcmp(argv[cfg_argc], "--") != 0; cfg_argc++) {
        }
        subcommand = 1;
    }
    if (config_load(&cfg, cfg_argc, argv, environ, subcommand, err, sizeof(err)) < 0) {
        fprintf(stderr, "oneshot: invalid configuration: %s\n", err);
        config_free(&cfg);
        return OS_EXIT_CONFIG;
    }
    if (cfg.help) {
        fputs(config_usage(), stdout);
        if (cmd->help) printf("\n%s", cmd->help());
        code = OS_EXIT_OK;
    } else if (cfg.version) {
        const kafka_module *km = kafka_module_load(err, sizeof(err));
        printf("oneshot %s (librdkafka %s, hiredis %d.%d.%d, libmicrohttpd %s, cJSON %s)\n", ONESHOT_VERSION,
               km ? km->version() : "module not found", HIREDIS_MAJOR, HIREDIS_MINOR, HIREDIS_PATCH,
               MHD_get_version(), cJSON_Version());
        bundled_print(stdout);
        code = OS_EXIT_OK;
    } else if (cfg.print_config) {
        char *json = config_to_json(&cfg);
        puts(json);
        free(json);
        code = OS_EXIT_OK;
    } else if (cmd->nargs > 0 && cfg.nargs != (size_t)cmd->nargs) {
        fprintf(stderr, "oneshot: invalid configuration: %s needs exactly %d argument (ID)\n", cmd->name, cmd->nargs);
        code = OS_EXIT_CONFIG;
    } else if (cmd->nargs == 0 && cfg.nargs > 0) {
        fprintf(stderr, "oneshot: invalid configuration: %.64s: unexpected argument (replica options go after --)\n",
                cfg.args[0]);
        code = OS_EXIT_CONFIG;
    } else if (cmd->nargs == -2 && cfg.nargs > 0) {
        fprintf(stderr, "oneshot: invalid configuration: %s takes no argument (%.64s)\n", cmd->name, cfg.args[0]);
        code = OS_EXIT_CONFIG;
    } else if (cmd->nargs < 0 && cfg.nargs > 1) {
        fprintf(stderr, "oneshot: invalid configuration: %s takes at most one INPUT argument\n", cmd->name);
        code = OS_EXIT_CONFIG;
    } else if (redis_tls_init(cfg.redis_url, cfg.redis_ca, cfg.redis_cert, cfg.redis_key, err, sizeof(err)) < 0) {
        /* before anything is consumed: the TLS files are configuration */
        fprintf(stderr, "oneshot: invalid configuration: %s\n", err);
        code = OS_EXIT_CONFIG;
    } else {
        code = cmd->fn(&cfg);
    }
    redis_tls_shutdown();
    config_free(&cfg);
    return code;
}
