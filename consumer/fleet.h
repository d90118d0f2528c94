/* fleet.h -- `oneshot fleet`: the batch-jobs platform on one machine. */
#ifndef ONESHOT_FLEET_H
#define ONESHOT_FLEET_H

#include "../config/config.h"

int fleet_run(const config *cfg, const char *self);

#endif
