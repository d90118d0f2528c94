/* pushgw.c -- PUT the final metrics to a Prometheus Pushgateway.
 *
 * Deliberately small: one request per process, at exit, so a
 * non-blocking socket and poll() against one deadline are all it takes.
 * The answer is read only as far as the status line. */
#include "pushgw.h"

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../common/buf.h"
#include "../common/clock.h"

/* The reason, without the URL: it may hold a password. */
static int url_err(char *err, size_t errlen, const char *why) {
    snprintf(err, errlen, "%s", why);
    return -1;
}

static int hexval(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Copy s[0..n) into out, decoding %XX; -1 when it does not fit or an
 * escape is malformed or %00. */
static int pct_decode(const char *s, size_t n, char *out, size_t outlen) {
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)s[i];
        if (c == '%') {
            if (i + 2 >= n) return -1;
            int h = hexval(s[i + 1]), l = hexval(s[i + 2]);
            if (h < 0 || l < 0) return -1;
            c = h * 16 + l;
            if (c == 0) return -1; /* %00 would cut the credential short */
            i += 2;
        }
        if (o + 1 >= outlen) return -1;
        out[o++] = (char)c;
    }
    out[o] = '\0';
    return 0;
}

int pushgw_parse_url(const char *url, pushgw_url *u, char *err, size_t errlen) {
    memset(u, 0, sizeof(*u));
    if (!url || !*url) return url_err(err, errlen, "empty URL");
    if (strncasecmp(url, "https://", 8) == 0) {
        return url_err(err, errlen, "https is not supported, only http:// (use a local relay for TLS)");
    }
    if (strncasecmp(url, "http://", 7) != 0) {
        return url_err(err, errlen, "expected http://host[:port][/path]");
    }
    const char *auth = url + 7;
    const char *slash = strchr(auth, '/');
    size_t alen = slash ? (size_t)(slash - auth) : strlen(auth);
    if (strpbrk(url, "?#")) {
        return url_err(err, errlen, "no query or fragment allowed");
    }
    /* userinfo: up to the last '@' of the authority */
    const char *at = NULL;
    for (const char *p = auth; p < auth + alen; p++)
        if (*p == '@') at = p;
    if (at) {
        if (pct_decode(auth, (size_t)(at - auth), u->auth, sizeof(u->auth)) < 0) {
            return url_err(err, errlen, "bad user:password");
        }
        alen -= (size_t)(at + 1 - auth);
        auth = at + 1;
    }
    const char *hend, *pstart = NULL;
    if (alen && auth[0] == '[') { /* [IPv6]:port */
        const char *rb = memchr(auth, ']', alen);
        if (!rb) {
            return url_err(err, errlen, "unterminated [IPv6 address]");
        }
        if ((size_t)(rb - auth - 1) >= sizeof(u->host)) goto badhost;
        memcpy(u->host, auth + 1, (size_t)(rb - auth - 1));
        hend = rb + 1;
        if (hend < auth + alen) {
            if (*hend != ':') goto badhost;
            pstart = hend + 1;
        }
    } else {
        const char *colon = memchr(auth, ':', alen);
        hend = colon ? colon : auth + alen;
        if ((size_t)(hend - auth) >= sizeof(u->host)) goto badhost;
        memcpy(u->host, auth, (size_t)(hend - auth));
        if (colon) pstart = colon + 1;
    }
    if (!u->host[0]) goto badhost;
    if (pstart) {
        size_t plen = (size_t)(auth + alen - pstart);
        long port = 0;
        if (plen == 0 || plen > 5) goto badport;
        for (size_t i = 0; i < plen; i++) {
            if (pstart[i] < '0' || pstart[i] > '9') goto badport;
            port = port * 10 + (pstart[i] - '0');
        }
        if (port < 1 || port > 65535) goto badport;
        snprintf(u->port, sizeof(u->port), "%ld", port);
    } else {
        snprintf(u->port, sizeof(u->port), "80");
    }
    if (slash) {
        size_t n = strlen(slash);
        while (n > 0 && slash[n - 1] == '/') n--;
        if (n >= sizeof(u->path)) {
            return url_err(err, errlen, "path too long");
        }
        memcpy(u->path, slash, n);
        u->path[n] = '\0';
    }
    u->has_grouping = strstr(u->path, "/metrics/job/") != NULL;
    return 0;
badhost:
    return url_err(err, errlen, "bad host");
badport:
    return url_err(err, errlen, "bad port (1..65535)");
}

/* "/NAME/VALUE" of the grouping key; a value with characters beyond
 * [A-Za-z0-9._~-] (or empty) goes as NAME@base64/<base64url>, the
 * Pushgateway's escape for any label value. */
static void grouping_pair(buf *b, const char *name, const char *value) {
    size_t n = strlen(value);
    int plain = n > 0;
    for (size_t i = 0; i < n && plain; i++) {
        char c = value[i];
        plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                c == '_' || c == '~' || c == '-';
    }
    if (plain) {
        buf_printf(b, "/%s/%s", name, value);
    } else {
        buf_printf(b, "/%s@base64/", name);
        buf_base64(b, value, n, 1);
    }
}

/* Wait for ev on fd until the deadline: 1 ready, 0 timed out, -1 error. */
static int wait_fd(int fd, short ev, int64_t deadline) {
    for (;;) {
        int64_t left = deadline - clock_mono_ms();
        if (left <= 0) return 0;
        struct pollfd p = {fd, ev, 0};
        int r = poll(&p, 1, (int)left);
        if (r > 0) return 1;
        if (r == 0) return 0;
        if (errno != EINTR) return -1;
    }
}

/* A connected non-blocking socket, or -1 with err. */
static int dial(const pushgw_url *u, int64_t deadline, char *err, size_t errlen) {
    struct addrinfo hints, *res = NULL, *ai;
    int fd = -1, rc;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    if ((rc = getaddrinfo(u->host, u->port, &hints, &res)) != 0) {
        snprintf(err, errlen, "resolve %s: %s", u->host, gai_strerror(rc));
        return -1;
    }
    snprintf(err, errlen, "connect %s:%s: no address", u->host, u->port);
    for (ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) continue;
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) break;
        if (errno == EINPROGRESS) {
            int w = wait_fd(fd, POLLOUT, deadline), soerr = 0;
            socklen_t sl = sizeof(soerr);
            if (w == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 && soerr == 0) break;
            snprintf(err, errlen, "connect %s:%s: %s", u->host, u->port,
                     w == 0 ? "timed out" : strerror(soerr ? soerr : errno));
        } else {
            snprintf(err, errlen, "connect %s:%s: %s", u->host, u->port, strerror(errno));
        }
        close(fd);
        fd = -1;
        if (clock_mono_ms() >= deadline) break;
    }
    freeaddrinfo(res);
    return fd;
}

int pushgw_put(const pushgw_url *u, const char *job, const char *instance, const char *body,
               size_t len, int timeout_ms, char *err, size_t errlen) {
    int64_t deadline = clock_mono_ms() + timeout_ms;
    buf req = BUF_INIT;
    char resp[256];
    size_t got = 0, off = 0;
    int fd = -1, ret = -1;

    /* The request first, so nothing is left to do once connected. */
    buf_printf(&req, "PUT %s", u->path);
    if (!u->has_grouping) {
        buf_puts(&req, "/metrics");
        grouping_pair(&req, "job", job);
        grouping_pair(&req, "instance", instance);
    }
    int ipv6 = strchr(u->host, ':') != NULL;
    buf_printf(&req, " HTTP/1.1\r\nHost: %s%s%s:%s\r\nUser-Agent: oneshot\r\n", ipv6 ? "[" : "", u->host,
               ipv6 ? "]" : "", u->port);
    if (u->auth[0]) {
        buf_puts(&req, "Authorization: Basic ");
        buf_base64(&req, u->auth, strlen(u->auth), 0);
        buf_puts(&req, "\r\n");
    }
    buf_printf(&req, "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n", len);
    buf_append(&req, body, len);

    if ((fd = dial(u, deadline, err, errlen)) < 0) goto out;
    while (off < req.len) {
        ssize_t n = send(fd, req.data + off, req.len - off, MSG_NOSIGNAL);
        if (n > 0) {
            off += (size_t)n;
        } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            if (wait_fd(fd, POLLOUT, deadline) != 1) {
                snprintf(err, errlen, "send: timed out");
                goto out;
            }
        } else {
            snprintf(err, errlen, "send: %s", strerror(errno));
            goto out;
        }
    }
    /* The status line is enough: "HTTP/1.1 200 OK\r\n". */
    while (got < sizeof(resp) - 1 && !memchr(resp, '\n', got)) {
        ssize_t n = recv(fd, resp + got, sizeof(resp) - 1 - got, 0);
        if (n > 0) {
            got += (size_t)n;
        } else if (n == 0) {
            break;
        } else if (errno == EAGAIN || errno == EINTR) {
            if (wait_fd(fd, POLLIN, deadline) != 1) {
                snprintf(err, errlen, "no answer within %d ms", timeout_ms);
                goto out;
            }
        } else {
            snprintf(err, errlen, "recv: %s", strerror(errno));
            goto out;
        }
    }
    resp[got] = '\0';
    resp[strcspn(resp, "\r\n")] = '\0';
    int code = 0;
    if (sscanf(resp, "HTTP/%*d.%*d %d", &code) != 1) {
        snprintf(err, errlen, "not an HTTP answer: '%.80s'", resp);
        goto out;
    }
    if (code < 200 || code > 299) {
        snprintf(err, errlen, "gateway answered '%.120s'", resp);
        goto out;
    }
    ret = 0;
out:
    if (fd >= 0) close(fd);
    buf_free(&req);
    return ret;
}
