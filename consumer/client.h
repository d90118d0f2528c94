/* client.h -- the callers' subcommands: submit, status, wait, cancel. */
#ifndef ONESHOT_CLIENT_H
#define ONESHOT_CLIENT_H

#include "../config/config.h"

int client_submit(const config *cfg);
int client_status(const config *cfg);
int client_wait(const config *cfg);
int client_cancel(const config *cfg);
int client_sweep(const config *cfg);
int client_redrive(const config *cfg);

#endif
