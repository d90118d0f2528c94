/* backlog.h -- how many jobs wait for a replica, per source, for `oneshot fleet`.
 *
 * Per broker, its driver's backlog operations (broker.h):
 *   redis-list    waiting = LLEN <queue> + items in processing lists whose
 *                 lease is gone (a replica that starts sweeps them back);
 *                 held = items in processing lists under a live lease.
 *   redis-stream  waiting = the group's lag (entries never delivered; the
 *                 whole stream when the group does not exist yet) + pending
 *                 entries idle longer than --lease (a replica that starts
 *                 takes them with XCLAIM; `oneshot sweep` turns them into
 *                 lag, counted once either way); held = the other pending.
 *   kafka         waiting = high watermark minus committed offset, summed
 *                 over the partitions (the Kafka driver's backlog_query);
 *                 it includes the messages running replicas hold, which
 *                 stay uncommitted until they finish (includes_held).
 * A query is one round trip (one script for Redis). The Redis connection
 * is made on first use and re-made after a failure; a query never sleeps
 * to retry (the caller decides when to ask again). */
#ifndef ONESHOT_BACKLOG_H
#define ONESHOT_BACKLOG_H

#include <stddef.h>

#include "../config/config.h"

typedef struct backlog_count {
    long waiting;      /* jobs that a newly started replica could take */
    long held;         /* jobs claimed and not yet settled (0 when unknown) */
    int includes_held; /* 1: waiting also counts the jobs running replicas hold */
} backlog_count;

typedef struct backlog backlog;

/* The backlog of cfg's source (cfg must outlive it). NULL with a reason
 * when the source has no queue to watch (http) or its module is missing. */
backlog *backlog_open(const config *cfg, char *err, size_t errlen);
/* 0 with *out filled; -1 with a reason when the broker cannot be read. */
int backlog_query(backlog *b, backlog_count *out, char *err, size_t errlen);
void backlog_close(backlog *b);

#endif
