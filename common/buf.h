/* buf.h -- a growable byte buffer, always NUL-terminated.
 *
 * Allocation failure aborts the process (oom_abort): a replica that cannot
 * allocate a few bytes cannot do anything useful, and aborting leaves the
 * message unacked, so it is redelivered. */
#ifndef ONESHOT_BUF_H
#define ONESHOT_BUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct buf {
    char *data;  /* NULL until the first append; then NUL-terminated */
    size_t len;
    size_t cap;
} buf;

#define BUF_INIT {NULL, 0, 0}

void buf_reserve(buf *b, size_t extra);
void buf_append(buf *b, const void *p, size_t n);
void buf_puts(buf *b, const char *s);
void buf_printf(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Append s as a JSON string literal, quotes included. */
void buf_json_str(buf *b, const char *s, size_t n);
/* Length of the valid UTF-8 sequence at s[0..n) (1..4), or 0 when invalid. */
size_t buf_utf8_seq_len(const char *s, size_t n);
/* 1 when s[0..n) is valid UTF-8 without NUL: bytes a JSON string carries
 * unchanged. */
int buf_utf8_clean(const char *s, size_t n);
/* Append p[0..n) in base64 (RFC 4648, padded; url_safe: the URL alphabet). */
void buf_base64(buf *b, const void *p, size_t n, int url_safe);
/* Append the bytes of the padded standard base64 s[0..n); -1 (b holds a
 * partial result) when s is not exactly that. */
int buf_unbase64(buf *b, const char *s, size_t n);
/* v in decimal at out (room for 21 bytes), NUL-terminated; returns its
 * length. What snprintf("%" PRId64) writes, at a tenth of its cost. */
size_t buf_i64(char *out, int64_t v);
/* Hand the bytes to the caller (who frees them); b is left empty. */
char *buf_steal(buf *b, size_t *len);
void buf_reset(buf *b);
void buf_free(buf *b);

/* Checked allocation helpers used across the program. */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t m);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);

#endif
