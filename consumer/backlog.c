/* backlog.c -- jobs waiting per source, for the fleet (see backlog.h):
 * through the --source driver's backlog operations (broker.h). */
#include "backlog.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/buf.h"
#include "broker.h"

struct backlog {
    const config *cfg;
    const broker *b;
    void *state; /* the driver's */
};

static int has_backlog(const broker *b) { return b->backlog_open != NULL; }

backlog *backlog_open(const config *cfg, char *err, size_t errlen) {
    const broker *br = broker_named(cfg->source);
    char names[128];
    if (!br || !br->backlog_open) {
        broker_names(has_backlog, "or", names, sizeof(names));
        snprintf(err, errlen, "--source %s has no queue to watch: use %s", cfg->source, names);
        return NULL;
    }
    backlog *b = xcalloc(1, sizeof(*b));
    b->cfg = cfg;
    b->b = br;
    if (br->backlog_open(cfg, &b->state, err, errlen) < 0) {
        free(b);
        return NULL;
    }
    return b;
}

int backlog_query(backlog *b, backlog_count *out, char *err, size_t errlen) {
    memset(out, 0, sizeof(*out));
    return b->b->backlog_query(b->state, b->cfg, out, err, errlen);
}

void backlog_close(backlog *b) {
    if (!b) return;
    if (b->b->backlog_close) b->b->backlog_close(b->state);
    free(b);
}
