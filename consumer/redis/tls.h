/* redis/tls.h -- TLS for the Redis connections (rediss:// URLs).
 *
 * One OpenSSL client context per process, made at start by main from
 * --redis-ca, --redis-cert and --redis-key when --redis is a rediss:// URL
 * (a file that does not load is a configuration error: exit 78, nothing
 * consumed), then used by every connection redis/conn.c opens, in any
 * thread. Each connection verifies the server's certificate chain against
 * the CA setting, else the system store, and the URL's host name (or IP
 * address) against the certificate; SNI is the URL's host name (never an
 * IP literal, per RFC 6066). TLS 1.2 at least.
 *
 * Only in a build whose hiredis has TLS (ONESHOT_HIREDIS_SSL: hiredis 1.x
 * with libhiredis_ssl, as the static build and `make tls` are); elsewhere
 * redis_tls_init refuses a rediss:// URL with REDIS_URL_NO_TLS (config
 * validation has refused it already) and redis_tls_handshake fails.
 *
 * Nothing here logs or returns key material: errors name the setting and
 * the file, and OpenSSL's reason. */
#ifndef ONESHOT_REDIS_TLS_H
#define ONESHOT_REDIS_TLS_H

#include <hiredis/hiredis.h>
#include <stddef.h>

/* Make the process's TLS context for url (nothing when it is not
 * rediss://). ca: a PEM file or a hashed directory, NULL for the system
 * store; cert and key: both or neither. 0, or -1 with one line in err
 * naming the setting. Call once, before any connection. */
int redis_tls_init(const char *url, const char *ca, const char *cert, const char *key, char *err, size_t errlen);
/* Free the context (at exit; connections still open keep their own
 * reference). */
void redis_tls_shutdown(void);

/* What the handshake learnt that the first reply will settle. */
typedef struct redis_tls_conn {
    void *ssl;        /* the connection's SSL (owned by the redisContext) */
    int cert_asked;   /* the server asked for a client certificate */
} redis_tls_conn;

/* TLS over the connected ctx (blocking, bounded by its socket timeout)
 * to host. 0: ctx speaks TLS now. -1 with the reason in err: *permanent
 * set when trying again cannot help (the certificate is refused, the
 * server does not speak TLS), clear when it may (a reset, a timeout). */
int redis_tls_handshake(redisContext *ctx, const char *host, redis_tls_conn *tc, int *permanent, char *err,
                        size_t errlen);
/* Append OpenSSL's reason for the last failure on this thread to err
 * (hiredis reports a TLS read or write error without one); a no-op when
 * there is none. 1 when the reason is an alert from the server, which
 * refused the connection: with tc's server having asked for a client
 * certificate, err then says so (ours refused, or none given). */
int redis_tls_explain(const redis_tls_conn *tc, char *err, size_t errlen);

#endif
