/* redis/driver.c -- the two Redis brokers (broker.h): a list (list.c) and
 * a stream with a consumer group (stream.c), both with the Redis store
 * (store.c), the callers' subcommands (client.c), the fleet's backlog
 * (backlog.c), sweep and redrive (janitor.h). */
#include "../broker.h"
#include "client.h"
#include "janitor.h"

const broker broker_redis_list = {
    .name = "redis-list",
    .store_name = "redis",
    .source = &source_redis_list,
    .store = &store_redis,
    .client_default = 1,
    .address_option = "redis",
    .in_redis = 1,
    .submit = rclient_submit_list,
    .record_queued = rclient_record_queued,
    .backlog_open = rbacklog_open,
    .backlog_query = rbacklog_list,
    .backlog_close = rbacklog_close,
    .sweep = src_list_sweep,
    .redrive = src_list_redrive,
    .redrive_reset = rclient_redrive_reset,
    .status = rclient_status,
    .wait = rclient_wait,
    .cancel = rclient_cancel,
};

const broker broker_redis_stream = {
    .name = "redis-stream",
    .store_name = "redis",
    .source = &source_redis_stream,
    .store = &store_redis,
    .address_option = "redis",
    .in_redis = 1,
    .submit = rclient_submit_stream,
    .record_queued = rclient_record_queued,
    .backlog_open = rbacklog_open,
    .backlog_query = rbacklog_stream,
    .backlog_close = rbacklog_close,
    .sweep = src_stream_sweep,
    .redrive = src_stream_redrive,
    .redrive_reset = rclient_redrive_reset,
    .status = rclient_status,
    .wait = rclient_wait,
    .cancel = rclient_cancel,
};
