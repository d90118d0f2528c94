/* redis_url.c -- Redis URL parsing. */
#include "redis_url.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/buf.h"

/* Decode %XX escapes from s[0..n) into out (size outlen). -1 on overflow or
 * a bad escape (%00 included). */
static int pct_decode(const char *s, size_t n, char *out, size_t outlen) {
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '%') {
            if (i + 2 >= n || !isxdigit((unsigned char)s[i + 1]) ||
                !isxdigit((unsigned char)s[i + 2]))
                return -1;
            char hex[3] = {s[i + 1], s[i + 2], 0};
            c = (char)strtol(hex, NULL, 16);
            if (c == '\0') return -1; /* %00 would cut the credential short */
            i += 2;
        }
        if (o + 1 >= outlen) return -1;
        out[o++] = c;
    }
    out[o] = '\0';
    return 0;
}

/* A whole decimal number in [min,max] from s[0..n), else -1. */
static int parse_num(const char *s, size_t n, int min, int max, int *out) {
    long v = 0;
    if (n == 0 || n > 9) return -1;
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i])) return -1;
        v = v * 10 + (s[i] - '0');
    }
    if (v < min || v > max) return -1;
    *out = (int)v;
    return 0;
}

static int parse_query(const char *q, redis_url *out, char *err, size_t errlen) {
    while (q && *q) {
        const char *amp = strchr(q, '&');
        size_t n = amp ? (size_t)(amp - q) : strlen(q);
        const char *eq = memchr(q, '=', n);
        if (!eq) {
            snprintf(err, errlen, "query parameter without '=' in the URL");
            return -1;
        }
        size_t kn = (size_t)(eq - q);
        const char *v = eq + 1;
        size_t vn = n - kn - 1;
        if (kn == 2 && memcmp(q, "db", 2) == 0) {
            if (parse_num(v, vn, 0, 100000, &out->db) < 0) {
                snprintf(err, errlen, "db must be a number");
                return -1;
            }
        } else if (kn == 8 && memcmp(q, "password", 8) == 0) {
            if (pct_decode(v, vn, out->password, sizeof(out->password)) < 0) {
                snprintf(err, errlen, "bad or too long password");
                return -1;
            }
        } else if (kn == 4 && memcmp(q, "user", 4) == 0) {
            if (pct_decode(v, vn, out->user, sizeof(out->user)) < 0) {
                snprintf(err, errlen, "bad or too long user");
                return -1;
            }
        } else {
            snprintf(err, errlen, "unknown URL parameter '%.*s'", (int)(kn > 32 ? 32 : kn), q);
            return -1;
        }
        q = amp ? amp + 1 : NULL;
    }
    return 0;
}

int redis_url_parse(const char *url, redis_url *out, char *err, size_t errlen) {
    memset(out, 0, sizeof(*out));
    out->port = 6379;

    if (strncmp(url, "unix://", 7) == 0) {
        const char *p = url + 7;
        const char *q = strchr(p, '?');
        size_t n = q ? (size_t)(q - p) : strlen(p);
        out->is_unix = 1;
        if (n == 0 || p[0] != '/') {
            snprintf(err, errlen, "unix URL needs an absolute path (unix:///path/redis.sock)");
            return -1;
        }
        if (n >= sizeof(out->path)) {
            snprintf(err, errlen, "unix socket path longer than %zu bytes", sizeof(out->path) - 1);
            return -1;
        }
        memcpy(out->path, p, n);
        out->path[n] = '\0';
        return parse_query(q ? q + 1 : NULL, out, err, errlen);
    }
    const char *p;
    if (strncmp(url, "redis://", 8) == 0) {
        p = url + 8;
    } else if (strncmp(url, "rediss://", 9) == 0) {
        out->tls = 1; /* whether this build can speak it is the caller's question */
        p = url + 9;
    } else {
        snprintf(err, errlen, "must start with redis://, rediss:// or unix://");
        return -1;
    }
    const char *slash = strchr(p, '/');
    const char *qm = strchr(p, '?');
    const char *end = slash ? slash : qm ? qm : p + strlen(p);
    if (qm && qm < end) end = qm;
    /* userinfo: the last '@' before the path, so passwords may hold '@'
     * only when percent-encoded, as in every URL. */
    const char *at = NULL;
    for (const char *c = p; c < end; c++)
        if (*c == '@') at = c;
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        if (colon) {
            if (pct_decode(p, (size_t)(colon - p), out->user, sizeof(out->user)) < 0 ||
                pct_decode(colon + 1, (size_t)(at - colon - 1), out->password,
                           sizeof(out->password)) < 0) {
                snprintf(err, errlen, "bad or too long user or password in the URL");
                return -1;
            }
        } else if (pct_decode(p, (size_t)(at - p), out->password, sizeof(out->password)) < 0) {
            /* redis://secret@host: a bare password, as redis-cli -u takes it */
            snprintf(err, errlen, "bad or too long password in the URL");
            return -1;
        }
        p = at + 1;
    }
    const char *hend = end;
    const char *colon = NULL;
    if (*p == '[') { /* IPv6 literal */
        const char *rb = memchr(p, ']', (size_t)(end - p));
        if (!rb) {
            snprintf(err, errlen, "unterminated IPv6 address");
            return -1;
        }
        if (rb + 1 < end && rb[1] == ':') colon = rb + 1;
        else if (rb + 1 != end) {
            snprintf(err, errlen, "garbage after the IPv6 address");
            return -1;
        }
        hend = rb;
        p++;
    } else {
        colon = memchr(p, ':', (size_t)(end - p));
        if (colon) hend = colon;
    }
    size_t hn = (size_t)(hend - p);
    if (hn == 0 || hn >= sizeof(out->host)) {
        snprintf(err, errlen, "missing or too long host");
        return -1;
    }
    for (size_t i = 0; i < hn; i++) {
        unsigned char c = (unsigned char)p[i];
        if (!(isalnum(c) || c == '.' || c == '-' || c == ':' || c == '_')) {
            snprintf(err, errlen, "invalid character in host");
            return -1;
        }
    }
    memcpy(out->host, p, hn);
    out->host[hn] = '\0';
    if (colon && parse_num(colon + 1, (size_t)(end - colon - 1), 1, 65535, &out->port) < 0) {
        snprintf(err, errlen, "port must be 1..65535");
        return -1;
    }
    if (slash && (!qm || slash < qm)) {
        const char *d = slash + 1;
        size_t dn = qm ? (size_t)(qm - d) : strlen(d);
        if (dn && parse_num(d, dn, 0, 100000, &out->db) < 0) {
            snprintf(err, errlen, "database must be a number (redis://host:port/0)");
            return -1;
        }
    }
    return parse_query(qm ? qm + 1 : NULL, out, err, errlen);
}

char *redis_url_masked(const char *url) {
    buf b = BUF_INIT;
    const char *scheme_end = strstr(url, "://");
    if (!scheme_end) return xstrdup(url);
    const char *p = scheme_end + 3;
    const char *end = p + strcspn(p, "/?");
    const char *at = NULL;
    for (const char *c = p; c < end; c++)
        if (*c == '@') at = c;
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        buf_append(&b, url, (size_t)(p - url));
        if (colon) buf_append(&b, p, (size_t)(colon - p + 1));
        buf_puts(&b, "***");
        p = at;
    } else {
        buf_append(&b, url, (size_t)(p - url));
    }
    /* Every password=... parameter of the query: redis_url_parse takes the
     * last one, and "password=" may also appear inside another value. */
    const char *q = strchr(p, '?');
    if (!q) {
        buf_puts(&b, p);
        return buf_steal(&b, NULL);
    }
    buf_append(&b, p, (size_t)(q - p));
    for (p = q; *p;) { /* p at the '?' or '&' that starts a parameter */
        size_t n = 1 + strcspn(p + 1, "&");
        if (strncmp(p + 1, "password=", 9) == 0) {
            buf_append(&b, p, 10);
            buf_puts(&b, "***");
        } else {
            buf_append(&b, p, n);
        }
        p += n;
    }
    return buf_steal(&b, NULL);
}
