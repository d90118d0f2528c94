/* redis/janitor.h -- what `oneshot sweep`, `oneshot redrive` and the fleet's
 * backlog ask of the Redis sources.
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

#include "../../common/buf.h"
#include "../../config/config.h"
#include "../backlog.h"
#include "conn.h"

int src_list_sweep(const config *cfg, rconn *c, buf *moved, int *n, int *left, char *err, size_t errlen);
int src_stream_sweep(const config *cfg, rconn *c, buf *moved, int *n, int *left, char *err, size_t errlen);

/* `oneshot redrive` (redis/redrive.c): the dead letters of job `only` (NULL:
 * all) back to the queue as fresh jobs, oldest first. *moved / *skipped
 * get one JSON object per letter (comma-separated); *n counts the moved
 * (with --dry-run: those that would move), *nskipped those left, *matched
 * the letters of `only`. 0 done; -1 Redis unreachable or refused (err). */
int src_list_redrive(const config *cfg, rconn *c, const char *only, buf *moved, buf *skipped, int *n,
                     int *nskipped, int *matched, char *err, size_t errlen);
int src_stream_redrive(const config *cfg, rconn *c, const char *only, buf *moved, buf *skipped, int *n,
                       int *nskipped, int *matched, char *err, size_t errlen);

/* The fleet's backlog of a list or a stream (redis/backlog.c; the broker
 * table's backlog operations). */
int rbacklog_open(const config *cfg, void **state, char *err, size_t errlen);
int rbacklog_list(void *state, const config *cfg, backlog_count *out, char *err, size_t errlen);
int rbacklog_stream(void *state, const config *cfg, backlog_count *out, char *err, size_t errlen);
void rbacklog_close(void *state);

#endif
