/* redis/tls.c -- TLS for the Redis connections (see redis/tls.h). */
#include "tls.h"

#include <stdio.h>
#include <string.h>

#include "../../config/redis_url.h"

/* Is url a rediss:// URL? (Its password is wiped from the copy.) A URL
 * that does not parse is not: config validation has refused it. */
static int url_wants_tls(const char *url) {
    redis_url u;
    char why[200];
    int tls = url && redis_url_parse(url, &u, why, sizeof(why)) == 0 && u.tls;
    memset(&u, 0, sizeof(u));
    return tls;
}

#if ONESHOT_HIREDIS_SSL

#include <arpa/inet.h>
#include <errno.h>
#include <hiredis/hiredis_ssl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <sys/stat.h>

static SSL_CTX *tls_ctx; /* set once by redis_tls_init, before any connection */
static int have_client_cert;
static char trust[300]; /* what the server's certificate is checked against, for errors */

/* Where the CA bundle of a common distribution lives, for a root that has
 * one but not OpenSSL's own default paths (the static file copied into any
 * image: its OpenSSL looks in the build's /usr/lib/ssl). */
static const char *const ca_bundles[] = {
    "/etc/ssl/certs/ca-certificates.crt", /* Debian, Ubuntu, Alpine, Arch */
    "/etc/pki/tls/certs/ca-bundle.crt",   /* Fedora, RHEL, CentOS */
    "/etc/ssl/ca-bundle.pem",             /* openSUSE */
    "/etc/ssl/cert.pem",                  /* Alpine, BSDs */
};

/* OpenSSL's reason for the last error of this thread ("" when none); the
 * queue is cleared. */
static const char *ossl_reason(unsigned long *code) {
    unsigned long e = ERR_peek_last_error();
    const char *r = e ? ERR_reason_error_string(e) : NULL;
    if (code) *code = e;
    ERR_clear_error();
    return r ? r : (e ? "unknown OpenSSL error" : "");
}

static int exists(const char *path) {
    struct stat st;
    return path && stat(path, &st) == 0;
}

/* The system store: OpenSSL's default file and directory (SSL_CERT_FILE
 * and SSL_CERT_DIR override them), or, when neither exists and neither
 * variable is set, the first distribution bundle found. */
static int load_system_store(SSL_CTX *ctx, char *err, size_t errlen) {
    if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
        snprintf(err, errlen, "--redis-ca: the system store does not load: %s", ossl_reason(NULL));
        return -1;
    }
    if (getenv(X509_get_default_cert_file_env()) || getenv(X509_get_default_cert_dir_env()) ||
        exists(X509_get_default_cert_file()) || exists(X509_get_default_cert_dir()))
        return 0;
    for (size_t i = 0; i < sizeof(ca_bundles) / sizeof(ca_bundles[0]); i++)
        if (exists(ca_bundles[i])) {
            if (SSL_CTX_load_verify_locations(ctx, ca_bundles[i], NULL) == 1) return 0;
            snprintf(err, errlen, "--redis-ca: the system store %s does not load: %s", ca_bundles[i],
                     ossl_reason(NULL));
            return -1;
        }
    return 0; /* no store at all: every handshake fails, saying the issuer is unknown */
}

static int load_ca(SSL_CTX *ctx, const char *ca, char *err, size_t errlen) {
    struct stat st;
    int dir = stat(ca, &st) == 0 && S_ISDIR(st.st_mode);
    if (SSL_CTX_load_verify_locations(ctx, dir ? NULL : ca, dir ? ca : NULL) == 1) return 0;
    snprintf(err, errlen, "--redis-ca: '%.200s' holds no CA certificate OpenSSL can load: %s", ca, ossl_reason(NULL));
    return -1;
}

/* A key with a passphrase is refused instead of prompting on a terminal. */
static int no_passphrase(char *buf, int size, int rwflag, void *u) {
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return 0;
}

static int load_client_cert(SSL_CTX *ctx, const char *cert, const char *key, char *err, size_t errlen) {
    SSL_CTX_set_default_passwd_cb(ctx, no_passphrase);
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
        snprintf(err, errlen, "--redis-cert: '%.200s' holds no certificate OpenSSL can load: %s", cert,
                 ossl_reason(NULL));
        return -1;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
        unsigned long code;
        const char *why = ossl_reason(&code);
        if (ERR_GET_LIB(code) == ERR_LIB_X509 && ERR_GET_REASON(code) == X509_R_KEY_VALUES_MISMATCH)
            snprintf(err, errlen, "--redis-key: '%.200s' is not the key of --redis-cert '%.200s'", key, cert);
        else
            snprintf(err, errlen,
                     "--redis-key: '%.200s' holds no private key OpenSSL can load (PEM, no passphrase): %s", key, why);
        return -1;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        snprintf(err, errlen, "--redis-key: '%.200s' is not the key of --redis-cert '%.200s'", key, cert);
        ERR_clear_error();
        return -1;
    }
    have_client_cert = 1;
    return 0;
}

/* Called in the handshake when the server asks for a client certificate
 * (whether or not we have one): its verdict on what we send comes after
 * the handshake in TLS 1.3, so the connection then waits for its first
 * reply (redis/conn.c, connect_once). */
static int on_cert_request(SSL *ssl, void *arg) {
    redis_tls_conn *tc = SSL_get_app_data(ssl);
    (void)arg;
    if (tc) tc->cert_asked = 1;
    return 1;
}

int redis_tls_init(const char *url, const char *ca, const char *cert, const char *key, char *err, size_t errlen) {
    SSL_CTX *ctx = NULL;
    int rc = -1;

    if (!url_wants_tls(url) || tls_ctx) return 0;
    ERR_clear_error();
    ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) {
        snprintf(err, errlen, "--redis: cannot make a TLS context: %s", ossl_reason(NULL));
        goto end;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    if (ca ? load_ca(ctx, ca, err, errlen) < 0 : load_system_store(ctx, err, errlen) < 0) goto end;
    if (ca)
        snprintf(trust, sizeof(trust), "--redis-ca %.200s", ca);
    else
        snprintf(trust, sizeof(trust), "the system store");
    if (cert && load_client_cert(ctx, cert, key, err, errlen) < 0) goto end;
    SSL_CTX_set_cert_cb(ctx, on_cert_request, NULL);
    tls_ctx = ctx;
    ctx = NULL; /* now the process's, freed by redis_tls_shutdown */
    rc = 0;
end:
    if (ctx) SSL_CTX_free(ctx);
    return rc;
}

void redis_tls_shutdown(void) {
    if (tls_ctx) SSL_CTX_free(tls_ctx);
    tls_ctx = NULL;
}

static int is_alert(unsigned long e) {
    return e && ERR_GET_LIB(e) == ERR_LIB_SSL && ERR_GET_REASON(e) >= SSL_AD_REASON_OFFSET;
}

/* err <- why the handshake on ssl failed; *permanent as redis/tls.h says. */
static void handshake_error(SSL *ssl, redisContext *ctx, const char *host, const redis_tls_conn *tc,
                            int timed_out, int *permanent, char *err, size_t errlen) {
    long v = SSL_get_verify_result(ssl);
    unsigned long code;
    const char *why = ossl_reason(&code);

    if (v != X509_V_OK) {
        *permanent = 1;
        if (v == X509_V_ERR_HOSTNAME_MISMATCH || v == X509_V_ERR_IP_ADDRESS_MISMATCH)
            snprintf(err, errlen, "TLS: the server's certificate is not for %s (%s)", host,
                     X509_verify_cert_error_string(v));
        else
            snprintf(err, errlen, "TLS: the server's certificate is refused: %s (checked against %s)",
                     X509_verify_cert_error_string(v), trust);
    } else if (is_alert(code)) {
        *permanent = 1;
        snprintf(err, errlen, "TLS: the server refused the handshake: %s%s", why,
                 tc->cert_asked && !have_client_cert ? " (it asks for a client certificate: --redis-cert, --redis-key)"
                                                     : "");
    } else if (*why) {
        *permanent = 1; /* a protocol error: most likely not a TLS port */
        snprintf(err, errlen, "TLS handshake failed: %s (is the server's port a TLS port?)", why);
    } else if (timed_out) {
        /* a frozen server looks the same: retried within the budget */
        snprintf(err, errlen, "TLS handshake failed: no answer within the socket timeout (is the server's port a "
                              "TLS port? a plain Redis waits for the rest of a line)");
    } else {
        /* reset or closed: the server may be restarting */
        snprintf(err, errlen, "TLS handshake failed: %s", ctx->errstr[0] ? ctx->errstr : "connection lost");
    }
}

int redis_tls_handshake(redisContext *ctx, const char *host, redis_tls_conn *tc, int *permanent, char *err,
                        size_t errlen) {
    unsigned char addr[16];
    int ip = inet_pton(AF_INET, host, addr) == 1 || inet_pton(AF_INET6, host, addr) == 1;
    SSL *ssl = NULL;
    int rc = -1;

    memset(tc, 0, sizeof(*tc));
    *permanent = 1;
    if (!tls_ctx) {
        snprintf(err, errlen, "TLS: not set up (internal error: redis_tls_init was not called)");
        goto end;
    }
    ERR_clear_error();
    if (!(ssl = SSL_new(tls_ctx))) {
        snprintf(err, errlen, "TLS: %s", ossl_reason(NULL));
        goto end;
    }
    SSL_set_app_data(ssl, tc); /* for on_cert_request, during the handshake */
    SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    int named = ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host) == 1
                   : SSL_set_tlsext_host_name(ssl, host) == 1 && SSL_set1_host(ssl, host) == 1;
    if (!named) {
        snprintf(err, errlen, "TLS: cannot check the server's certificate for '%.100s': %s", host, ossl_reason(NULL));
        goto end;
    }
    *permanent = 0;
    errno = 0;
    if (redisInitiateSSL(ctx, ssl) != REDIS_OK) {
        int timed_out = errno == EAGAIN || errno == EWOULDBLOCK; /* SO_RCVTIMEO */
        handshake_error(ssl, ctx, host, tc, timed_out, permanent, err, errlen);
        goto end; /* hiredis owns the SSL only once the handshake succeeded */
    }
    SSL_set_app_data(ssl, NULL);
    tc->ssl = ssl;
    ssl = NULL; /* now owned, and freed, by ctx */
    rc = 0;
end:
    if (ssl) SSL_free(ssl);
    return rc;
}

int redis_tls_explain(const redis_tls_conn *tc, char *err, size_t errlen) {
    unsigned long code;
    const char *why = ossl_reason(&code);
    size_t l = strlen(err);
    if (*why && l < errlen) snprintf(err + l, errlen - l, " (TLS: %s)", why);
    if (!is_alert(code)) return 0;
    l = strlen(err);
    if (tc && tc->cert_asked && l < errlen)
        snprintf(err + l, errlen - l, "%s",
                 have_client_cert ? "; the server refused the client certificate (--redis-cert)"
                                  : "; the server requires a client certificate: --redis-cert, --redis-key");
    return 1;
}

#else /* no TLS in this build's hiredis */

int redis_tls_init(const char *url, const char *ca, const char *cert, const char *key, char *err, size_t errlen) {
    (void)ca;
    (void)cert;
    (void)key;
    if (!url_wants_tls(url)) return 0;
    snprintf(err, errlen, "--redis: %s", REDIS_URL_NO_TLS);
    return -1;
}

void redis_tls_shutdown(void) {}

int redis_tls_handshake(redisContext *ctx, const char *host, redis_tls_conn *tc, int *permanent, char *err,
                        size_t errlen) {
    (void)ctx;
    (void)host;
    memset(tc, 0, sizeof(*tc));
    *permanent = 1;
    snprintf(err, errlen, "%s", REDIS_URL_NO_TLS);
    return -1;
}

int redis_tls_explain(const redis_tls_conn *tc, char *err, size_t errlen) {
    (void)tc;
    (void)err;
    (void)errlen;
    return 0;
}

#endif
