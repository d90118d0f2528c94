/* client.c -- placeholder until the Redis and Kafka stores land. */
#include "client.h"

#include <stdio.h>

#include "../common/exitcodes.h"

static int not_yet(const char *what) {
    fprintf(stderr, "oneshot %s: not built yet\n", what);
    return OS_EXIT_CONFIG;
}

int client_submit(const config *cfg) { (void)cfg; return not_yet("submit"); }
int client_status(const config *cfg) { (void)cfg; return not_yet("status"); }
int client_wait(const config *cfg) { (void)cfg; return not_yet("wait"); }
int client_cancel(const config *cfg) { (void)cfg; return not_yet("cancel"); }
