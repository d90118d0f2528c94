/* buf.c -- growable buffer and checked allocation. */
#include "buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void oom_abort(size_t n) {
    char msg[96];
    int len = snprintf(msg, sizeof(msg), "oneshot: out of memory allocating %zu bytes\n", n);
    if (len > 0) (void)!write(2, msg, (size_t)len);
    abort();
}

void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) oom_abort(n);
    return p;
}

void *xcalloc(size_t n, size_t m) {
    void *p = calloc(n ? n : 1, m ? m : 1);
    if (!p) oom_abort(n * m);
    return p;
}

void *xrealloc(void *p, size_t n) {
    void *q = realloc(p, n ? n : 1);
    if (!q) oom_abort(n);
    return q;
}

char *xstrndup(const char *s, size_t n) {
    char *p = xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *xstrdup(const char *s) { return xstrndup(s, strlen(s)); }

void buf_reserve(buf *b, size_t extra) {
    if (b->len + extra + 1 <= b->cap) return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1) cap *= 2;
    b->data = xrealloc(b->data, cap);
    b->cap = cap;
}

void buf_append(buf *b, const void *p, size_t n) {
    buf_reserve(b, n);
    if (n) memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void buf_puts(buf *b, const char *s) { buf_append(b, s, strlen(s)); }

void buf_printf(buf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    buf_reserve(b, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

size_t buf_utf8_seq_len(const char *s, size_t n) {
    const unsigned char *u = (const unsigned char *)s;
    size_t len;
    unsigned min;
    unsigned cp;
    if (u[0] < 0x80) return 1;
    if ((u[0] & 0xe0) == 0xc0) { len = 2; cp = u[0] & 0x1f; min = 0x80; }
    else if ((u[0] & 0xf0) == 0xe0) { len = 3; cp = u[0] & 0x0f; min = 0x800; }
    else if ((u[0] & 0xf8) == 0xf0) { len = 4; cp = u[0] & 0x07; min = 0x10000; }
    else return 0;
    if (n < len) return 0;
    for (size_t i = 1; i < len; i++) {
        if ((u[i] & 0xc0) != 0x80) return 0;
        cp = (cp << 6) | (u[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
    return len;
}

void buf_json_str(buf *b, const char *s, size_t n) {
    static const char hex[] = "0123456789abcdef";
    buf_reserve(b, n + 2);
    buf_append(b, "\"", 1);
    size_t run = 0; /* start of a run of bytes needing no escape */
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x80) {
            /* Valid UTF-8 passes through; anything else becomes U+FFFD so
             * the output is always valid JSON. */
            size_t ok = buf_utf8_seq_len(s + i, n - i);
            if (ok) { i += ok - 1; continue; }
            buf_append(b, s + run, i - run);
            buf_append(b, "\\ufffd", 6);
            run = i + 1;
            continue;
        }
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        buf_append(b, s + run, i - run);
        run = i + 1;
        switch (c) {
        case '"':  buf_append(b, "\\\"", 2); break;
        case '\\': buf_append(b, "\\\\", 2); break;
        case '\n': buf_append(b, "\\n", 2); break;
        case '\r': buf_append(b, "\\r", 2); break;
        case '\t': buf_append(b, "\\t", 2); break;
        default: {
            char u[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            buf_append(b, u, 6);
        }
        }
    }
    buf_append(b, s + run, n - run);
    buf_append(b, "\"", 1);
}

int buf_utf8_clean(const char *s, size_t n) {
    for (size_t i = 0; i < n;) {
        if (s[i] == '\0') return 0;
        size_t k = buf_utf8_seq_len(s + i, n - i);
        if (!k) return 0;
        i += k;
    }
    return 1;
}

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char B64URL[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

void buf_base64(buf *b, const void *p, size_t n, int url_safe) {
    const unsigned char *s = p;
    const char *tab = url_safe ? B64URL : B64;
    buf_reserve(b, (n + 2) / 3 * 4);
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)s[i] << 16 | (i + 1 < n ? (unsigned)s[i + 1] << 8 : 0) | (i + 2 < n ? s[i + 2] : 0);
        char q[4] = {tab[v >> 18 & 63], tab[v >> 12 & 63], i + 1 < n ? tab[v >> 6 & 63] : '=',
                     i + 2 < n ? tab[v & 63] : '='};
        buf_append(b, q, 4);
    }
}

int buf_unbase64(buf *b, const char *s, size_t n) {
    if (n % 4) return -1;
    size_t pad = n && s[n - 1] == '=' ? (n > 1 && s[n - 2] == '=' ? 2 : 1) : 0;
    buf_reserve(b, n / 4 * 3);
    for (size_t i = 0; i < n; i += 4) {
        unsigned v = 0;
        for (size_t k = 0; k < 4; k++) {
            const char *c = s[i + k] ? strchr(B64, s[i + k]) : NULL;
            int is_pad = i + k >= n - pad;
            if (!c && !is_pad) return -1;
            v = v << 6 | (c && !is_pad ? (unsigned)(c - B64) : 0);
        }
        unsigned char o[3] = {(unsigned char)(v >> 16), (unsigned char)(v >> 8), (unsigned char)v};
        size_t keep = i + 4 == n ? 3 - pad : 3;
        /* The bits under the padding must be 0: one encoding per input. */
        if (i + 4 == n && ((pad == 1 && o[2]) || (pad == 2 && (o[1] || o[2])))) return -1;
        buf_append(b, o, keep);
    }
    return 0;
}

size_t buf_i64(char *out, int64_t v) {
    char digits[20];
    size_t k = 0, w = 0;
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v; /* INT64_MIN included */
    do digits[k++] = (char)('0' + u % 10);
    while ((u /= 10) != 0);
    if (v < 0) out[w++] = '-';
    while (k) out[w++] = digits[--k];
    out[w] = '\0';
    return w;
}

char *buf_steal(buf *b, size_t *len) {
    char *p = b->data ? b->data : xstrdup("");
    if (len) *len = b->len;
    b->data = NULL;
    b->len = b->cap = 0;
    return p;
}

void buf_reset(buf *b) {
    b->len = 0;
    if (b->data) b->data[0] = '\0';
}

void buf_free(buf *b) {
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}
