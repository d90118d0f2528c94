/* janitor.h -- what `oneshot sweep` asks of the Redis sources.
 *
 * A replica sweeps one orphan before each claim; a sweep run from outside
 * (a CronJob) walks them all with the same scripts, so that a job whose
 * replica was killed while nothing else was queued becomes waiting work a
 * queue-length or lag trigger can see (consumer/README.md "Sweep from
 * outside"). Each function appends one JSON object per job it moved to
 * *moved (comma-separated, no brackets) and counts them in *n; *left
 * counts the orphans it found and could not move (quarantined, a broken
 * key). 0 done; -1 Redis unreachable or refused a script (err says why). */
#ifndef ONESHOT_JANITOR_H
#define ONESHOT_JANITOR_H

#include <stddef.h>

#include "../common/buf.h"
#include "../config/config.h"
#include "redis_conn.h"

int src_list_sweep(const config *cfg, rconn *c, buf *moved, int *n, int *left, char *err, size_t errlen);
int src_stream_sweep(const config *cfg, rconn *c, buf *moved, int *n, int *left, char *err, size_t errlen);

#endif
