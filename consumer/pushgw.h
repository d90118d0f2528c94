/* pushgw.h -- a minimal client for the Prometheus Pushgateway.
 *
 * A replica lives for one job and is gone before Prometheus scrapes it, so
 * its final metrics are pushed once at exit. One HTTP/1.1 PUT over a
 * plain TCP socket: http:// only (no TLS; put a local relay or sidecar in
 * front of an https gateway), optional user:password@ for Basic auth,
 * bounded by a total timeout that covers connect, send and the answer
 * (name resolution uses the system resolver). */
#ifndef ONESHOT_PUSHGW_H
#define ONESHOT_PUSHGW_H

#include <stddef.h>

typedef struct pushgw_url {
    char host[256];      /* without IPv6 brackets */
    char port[8];
    char path[1024];     /* "" or "/prefix", no trailing slash */
    char auth[512];      /* "user:password", "" = none */
    int has_grouping;    /* the path already names /metrics/job/... */
} pushgw_url;

/* Parse http://[user:password@]host[:port][/path]. The path may already
 * carry a grouping key (/metrics/job/NAME[/LABEL/VALUE...]); otherwise
 * pushgw_put adds /metrics/job/<job>/instance/<instance>. Returns 0, or
 * -1 with the reason in err. */
int pushgw_parse_url(const char *url, pushgw_url *u, char *err, size_t errlen);

/* PUT body (text format 0.0.4) to the gateway, replacing every metric of
 * the grouping key. Returns 0 on a 2xx answer, else -1 with the reason
 * (connection error, timeout, the gateway's status line) in err. */
int pushgw_put(const pushgw_url *u, const char *job, const char *instance, const char *body,
               size_t len, int timeout_ms, char *err, size_t errlen);

#endif
