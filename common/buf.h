/* buf.h -- a growable byte buffer, always NUL-terminated.
 *
 * Allocation failure aborts the process (oom_abort): a replica that cannot
 * allocate a few bytes cannot do anything useful, and aborting leaves the
 * message unacked, so it is redelivered. */
#ifndef ONESHOT_BUF_H
#define ONESHOT_BUF_H

#include <stddef.h>

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
