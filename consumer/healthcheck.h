/* healthcheck.h -- `oneshot healthcheck` (the image's HEALTHCHECK). */
#ifndef ONESHOT_HEALTHCHECK_H
#define ONESHOT_HEALTHCHECK_H

#include "../config/config.h"

/* GET /health of the replica on 127.0.0.1:cfg->port: 0 healthy, 1 not. */
int healthcheck_run(const config *cfg);

#endif
