/* redis_url.h -- parse redis://[user:password@]host[:port][/db],
 * rediss://... (the same over TLS) and
 * unix:///path/to.sock[?db=N&password=P&user=U]. */
#ifndef ONESHOT_REDIS_URL_H
#define ONESHOT_REDIS_URL_H

#include <stddef.h>

typedef struct redis_url {
    int is_unix;
    int tls;          /* rediss:// */
    char host[256];
    int port;
    char path[108];   /* unix socket path (sun_path size) */
    int db;
    char user[128];   /* empty: none (AUTH password only) */
    char password[256];
} redis_url;

/* Returns 0, or -1 with the reason in err (never echoing the password).
 * rediss:// parses in every build; a build without TLS refuses it with
 * REDIS_URL_NO_TLS (config validation and the connection both do). */
int redis_url_parse(const char *url, redis_url *out, char *err, size_t errlen);
/* The URL with any password replaced by "***"; malloc'd. */
char *redis_url_masked(const char *url);

#define REDIS_URL_NO_TLS                                                                       \
    "rediss:// is not supported by this build: it has no TLS to Redis (its hiredis has no " \
    "TLS library); use the static build (oneshot-static), which has it"

#endif
