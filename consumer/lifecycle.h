/* lifecycle.h -- one replica, one job, one exit code. */
#ifndef ONESHOT_LIFECYCLE_H
#define ONESHOT_LIFECYCLE_H

#include "../config/config.h"

/* Run the replica: claim exactly one job, run the core, publish, settle,
 * and return the process exit code (common/exitcodes.h). */
int lifecycle_run(const config *cfg);

#endif
