/* redis/client.h -- the Redis drivers' side of the callers' subcommands
 * (redis/client.c): submit, status, wait, cancel and the reset of a Kafka
 * re-drive's record. Each returns the exit code (the reset: see
 * redrive_reset_fn in broker.h). */
#ifndef ONESHOT_REDIS_CLIENT_H
#define ONESHOT_REDIS_CLIENT_H

#include <stddef.h>

#include "../broker.h"

/* A connection to --redis for `oneshot CMD`, or NULL after printing
 * "oneshot CMD: why". */
struct rconn *rclient_connect(const config *cfg, const char *cmd);
int rclient_submit_list(const config *cfg, const submission *sub, char *out_id, size_t n);
int rclient_submit_stream(const config *cfg, const submission *sub, char *out_id, size_t n);
void rclient_record_queued(const config *cfg, const char *id, const char *src);
int rclient_status(const config *cfg, const char *id);
int rclient_wait(const config *cfg, const char *id);
int rclient_cancel(const config *cfg, const char *id);
int rclient_redrive_reset(void *ctx, const char *id, char *err, size_t errlen);

#endif
