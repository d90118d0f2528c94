/* redis/conn.c -- one Redis connection with bounded reconnects (see redis/conn.h). */
#include "conn.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/buf.h"
#include "../../common/clock.h"
#include "../../common/log.h"
#include "../../config/redis_url.h"
#include "tls.h"

struct rconn {
    pthread_mutex_t mu;
    redisContext *ctx; /* NULL: not connected (lost or never made) */
    redis_url url;     /* holds the password: never printed */
    redis_tls_conn tls; /* rediss://: what the handshake learnt */
    int unread;        /* replies to read and drop first (CLIENT SETNAME) */
    char *rider;       /* rconn_ride: formatted, waiting for a batch with RC_RIDER */
    size_t rider_len;
    redisReply *rider_reply; /* its reply, once sent */
    int timeout_ms;    /* the socket timeout set on ctx */
    char who[160];
    char where[300];
    /* rconn_share: the URL it was opened with (holds the password) and the
     * number of holders; guarded by share_mu. refs 0: not shared. */
    char *share_url;
    int refs;
    struct rconn *share_next;
};

/* The shared connections of this process (rconn_share). */
static pthread_mutex_t share_mu = PTHREAD_MUTEX_INITIALIZER;
static struct rconn *shared;

/* Process-wide: when Redis was first found unreachable (monotonic ms,
 * 0 = reachable). Every connection's retries count against the same
 * budget, so the replica gives up ~budget after the outage began. */
static _Atomic int64_t down_since;
static atomic_int budget_cached = -1;

static int64_t retry_budget_ms(void) {
    int v = atomic_load(&budget_cached);
    if (v >= 0) return v;
    v = RC_RETRY_BUDGET_MS;
    const char *e = getenv("ONESHOT_REDIS_RETRY_MS");
    if (e && *e) {
        char *end;
        long x = strtol(e, &end, 10);
        if (!*end && x >= 0 && x <= 600000) v = (int)x;
    }
    atomic_store(&budget_cached, v);
    return v;
}

void rconn_limit_budget(int ms) {
    if (ms < retry_budget_ms()) atomic_store(&budget_cached, ms);
}

/* A call that began at `began` (monotonic ms) failed: the outage is taken
 * to have begun then, not when the failure was noticed (a frozen server is
 * noticed only when the socket timeout fires). */
static int64_t mark_down(int64_t began) {
    int64_t zero = 0;
    if (atomic_compare_exchange_strong(&down_since, &zero, began)) return began;
    return zero; /* the value already there */
}

/* Only a reply proves Redis is there: a connection alone does not (a
 * frozen server's kernel still accepts connections). */
static void mark_up(void) { atomic_store(&down_since, 0); }

/* Milliseconds of the budget left, after a failure of a call that began
 * at `began`. */
static int64_t budget_left(int64_t began) { return mark_down(began) + retry_budget_ms() - clock_mono_ms(); }

/* The socket timeout for the next command: RC_COMMAND_TIMEOUT_MS, never
 * more than the budget (a blocking read still gets its block time and a
 * margin), and during an outage never more than what is left of it, so
 * that the last try ends when the budget does. */
static int command_timeout_ms(void) {
    int64_t t = RC_COMMAND_TIMEOUT_MS, b = retry_budget_ms();
    int64_t floor_ms = RC_BLOCK_MAX_MS + 500;
    if (b < t) t = b > floor_ms ? b : floor_ms;
    int64_t since = atomic_load(&down_since);
    if (since) {
        int64_t left = since + b - clock_mono_ms();
        if (left < t) t = left;
    }
    return t < 50 ? 50 : (int)t;
}

/* Redis is there but cannot serve yet: worth waiting for. "BUSY " with the
 * space: BUSYGROUP is an ordinary answer. */
static int transient_error(const char *s) {
    return strncmp(s, "LOADING", 7) == 0 || strncmp(s, "BUSY ", 5) == 0 || strncmp(s, "MASTERDOWN", 10) == 0 ||
           strncmp(s, "TRYAGAIN", 8) == 0 || strncmp(s, "CLUSTERDOWN", 11) == 0;
}

static struct timeval ms_tv(int ms) {
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    return tv;
}

/* One connection attempt with the handshake. -1 with *permanent set when
 * retrying cannot help (refused credentials, no such database). */
static int connect_once(rconn *c, int *permanent, char *err, size_t errlen) {
    redisContext *ctx = NULL;
    redisReply *r = NULL;
    int n = 0, rc = -1, named = 0;
    const char *step[3];
    char why[400];

    *permanent = 0;
    int ct = command_timeout_ms(); /* within what is left of the budget */
    if (ct > RC_CONNECT_TIMEOUT_MS) ct = RC_CONNECT_TIMEOUT_MS;
    ctx = c->url.is_unix ? redisConnectUnixWithTimeout(c->url.path, ms_tv(ct))
                         : redisConnectWithTimeout(c->url.host, c->url.port, ms_tv(ct));
    if (!ctx) {
        snprintf(err, errlen, "redis %s: cannot allocate a context", c->where);
        goto end;
    }
    if (ctx->err) {
        snprintf(err, errlen, "redis %s: %s", c->where, ctx->errstr);
        goto end;
    }
    c->timeout_ms = command_timeout_ms();
    redisSetTimeout(ctx, ms_tv(c->timeout_ms));
    if (!c->url.is_unix) redisEnableKeepAlive(ctx);
    if (c->url.tls && redis_tls_handshake(ctx, c->url.host, &c->tls, permanent, why, sizeof(why)) < 0) {
        snprintf(err, errlen, "redis %s: %s", c->where, why);
        goto end;
    }
    if (c->url.password[0]) {
        if (c->url.user[0])
            redisAppendCommand(ctx, "AUTH %s %s", c->url.user, c->url.password);
        else
            redisAppendCommand(ctx, "AUTH %s", c->url.password);
        step[n++] = "AUTH";
    }
    if (c->url.db) {
        redisAppendCommand(ctx, "SELECT %d", c->url.db);
        step[n++] = "SELECT";
    }
    if (c->tls.cert_asked) {
        /* The server asked for a client certificate, and in TLS 1.3 its
         * verdict on ours (or on none) comes after the handshake: take the
         * first reply here, so a refusal is a clear, permanent error and
         * not a lost connection retried for the whole budget. Costs a round
         * trip per connection to such servers only. */
        redisAppendCommand(ctx, "CLIENT SETNAME %s", c->who);
        step[n++] = NULL; /* its answer is dropped (an ACL user may not be allowed CLIENT) */
        named = 1;
    }
    for (int i = 0; i < n; i++) {
        if (redisGetReply(ctx, (void **)&r) != REDIS_OK) {
            snprintf(err, errlen, "redis %s: %s", c->where, ctx->errstr);
            if (c->url.tls && redis_tls_explain(&c->tls, err, errlen))
                *permanent = 1; /* the server refused us, in an alert */
            goto end;
        }
        if (step[i] && r->type == REDIS_REPLY_ERROR) {
            /* Redis error texts never echo the password. */
            snprintf(err, errlen, "redis %s: %s refused: %.200s", c->where, step[i], r->str);
            if (!transient_error(r->str)) *permanent = 1;
            freeReplyObject(r);
            r = NULL;
            for (i++; i < n; i++) /* drain the rest of the handshake */
                if (redisGetReply(ctx, (void **)&r) == REDIS_OK) freeReplyObject(r), r = NULL;
            goto end;
        }
        freeReplyObject(r);
        r = NULL;
    }
    /* The name goes out with the first command: no round trip of its own.
     * Its answer is dropped (an ACL user may not be allowed CLIENT). */
    if (!named) {
        redisAppendCommand(ctx, "CLIENT SETNAME %s", c->who);
        c->unread = 1;
    }
    c->ctx = ctx;
    ctx = NULL;
    rc = 0;
end:
    if (ctx) redisFree(ctx);
    return rc;
}

/* Connected, or reconnect with backoff within the budget. */
static int ensure_connected(rconn *c, char *err, size_t errlen) {
    int64_t backoff = RC_BACKOFF_MIN_MS;
    int logged = 0;
    while (!c->ctx) {
        int permanent;
        int64_t began = clock_mono_ms();
        if (connect_once(c, &permanent, err, errlen) == 0) {
            if (logged) log_info("redis %s: connected again", c->where);
            return 0;
        }
        if (permanent) return -1;
        int64_t left = budget_left(began);
        if (left <= 0) {
            size_t l = strlen(err);
            snprintf(err + l, errlen - l, " (gave up after %lld ms of retries)", (long long)retry_budget_ms());
            return -1;
        }
        if (!logged++) log_warn("%s; retrying for up to %lld ms", err, (long long)left);
        clock_sleep_ms(backoff < left ? backoff : left);
        backoff = backoff * 2 > RC_BACKOFF_MAX_MS ? RC_BACKOFF_MAX_MS : backoff * 2;
    }
    return 0;
}

/* The socket timeout follows command_timeout_ms (it shrinks during an
 * outage); set only when it changes. */
static void set_timeout(rconn *c) {
    int t = command_timeout_ms();
    if (t == c->timeout_ms) return;
    c->timeout_ms = t;
    redisSetTimeout(c->ctx, ms_tv(t));
}

/* The rider and its reply (under c->mu, or closing). */
static void drop_rider(rconn *c) {
    free(c->rider);
    if (c->rider_reply) freeReplyObject(c->rider_reply);
    c->rider = NULL;
    c->rider_len = 0;
    c->rider_reply = NULL;
}

static void drop_connection(rconn *c) {
    if (c->ctx) redisFree(c->ctx);
    c->ctx = NULL;
    c->unread = 0;
}

rconn *rconn_open(const char *url, const char *who, char *err, size_t errlen) {
    rconn *c = xcalloc(1, sizeof(*c));
    char why[200];
    pthread_mutex_init(&c->mu, NULL);
    if (redis_url_parse(url, &c->url, why, sizeof(why)) < 0) {
        snprintf(err, errlen, "--redis: %s", why);
        goto fail;
    }
    snprintf(c->who, sizeof(c->who), "oneshot:%s", who);
    for (char *p = c->who; *p; p++)
        if (*p == ' ' || *p == '\n') *p = '_'; /* CLIENT SETNAME takes no spaces */
    if (c->url.is_unix)
        snprintf(c->where, sizeof(c->where), "unix:%s", c->url.path);
    else
        snprintf(c->where, sizeof(c->where), "%s:%d", c->url.host, c->url.port);
    if (ensure_connected(c, err, errlen) < 0) goto fail;
    return c;
fail:
    rconn_close(c);
    return NULL;
}

rconn *rconn_share(const char *url, const char *who, char *err, size_t errlen) {
    rconn *c;
    pthread_mutex_lock(&share_mu);
    for (c = shared; c; c = c->share_next)
        if (strcmp(c->share_url, url) == 0) break;
    if (c) {
        c->refs++;
    } else if ((c = rconn_open(url, who, err, errlen))) {
        c->share_url = xstrdup(url);
        c->refs = 1;
        c->share_next = shared;
        shared = c;
    }
    pthread_mutex_unlock(&share_mu);
    return c;
}

/* Drop one holder of a shared connection: 1 when others still hold it. */
static int share_release(rconn *c) {
    int held = 0;
    pthread_mutex_lock(&share_mu);
    if (--c->refs > 0) {
        held = 1;
    } else {
        for (rconn **p = &shared; *p; p = &(*p)->share_next)
            if (*p == c) {
                *p = c->share_next;
                break;
            }
    }
    pthread_mutex_unlock(&share_mu);
    return held;
}

void rconn_close(rconn *c) {
    if (!c) return;
    if (c->share_url) {
        if (share_release(c)) return;
        memset(c->share_url, 0, strlen(c->share_url)); /* it may hold the password */
        free(c->share_url);
    }
    drop_connection(c);
    drop_rider(c);
    pthread_mutex_destroy(&c->mu);
    memset(&c->url, 0, sizeof(c->url)); /* no password left in freed memory */
    free(c);
}

/* --- batches --- */

void rbatch_init(rbatch *b) { memset(b, 0, sizeof(*b)); }

static void rbatch_push(rbatch *b, char *cmd, size_t len) {
    if (b->n >= RBATCH_MAX) {
        fprintf(stderr, "oneshot: internal error: Redis batch over %d commands\n", RBATCH_MAX);
        abort();
    }
    b->cmd[b->n] = cmd;
    b->len[b->n] = len;
    b->rep[b->n] = NULL;
    b->n++;
}

/* "*<n>\r\n" or "$<n>\r\n" at p; returns the bytes written (at most 24). */
static size_t resp_header(char *p, char tag, size_t n) {
    p[0] = tag;
    size_t w = 1 + buf_i64(p + 1, (int64_t)n);
    p[w++] = '\r';
    p[w++] = '\n';
    return w;
}

/* argv as one RESP array of bulk strings, byte for byte what hiredis's
 * redisFormatCommandArgv writes (argvlen NULL: each a C string), but
 * without its two sprintf calls per argument: they were an eighth of a
 * Redis replica's instructions (callgrind). malloc'd, freed with free();
 * *len its size. Out of memory aborts, as every allocation here does. */
static char *resp_format(int argc, const char **argv, const size_t *argvlen, size_t *len) {
    size_t total = 24, n;
    for (int i = 0; i < argc; i++) total += 24 + 2 + (argvlen ? argvlen[i] : strlen(argv[i]));
    char *cmd = xmalloc(total), *p = cmd;
    p += resp_header(p, '*', (size_t)argc);
    for (int i = 0; i < argc; i++) {
        n = argvlen ? argvlen[i] : strlen(argv[i]);
        p += resp_header(p, '$', n);
        memcpy(p, argv[i], n);
        p += n;
        *p++ = '\r';
        *p++ = '\n';
    }
    *len = (size_t)(p - cmd);
    return cmd;
}

void rbatch_addv(rbatch *b, int argc, const char **argv, const size_t *argvlen) {
    size_t len;
    char *cmd = resp_format(argc, argv, argvlen, &len);
    rbatch_push(b, cmd, len);
}

void rargs_add(rargs *a, const char *s, size_t n, int copy) {
    if (a->n == a->cap) {
        a->cap = a->cap ? a->cap * 2 : 48;
        a->v = xrealloc(a->v, (size_t)a->cap * sizeof(*a->v));
        a->len = xrealloc(a->len, (size_t)a->cap * sizeof(*a->len));
        a->owned = xrealloc(a->owned, (size_t)a->cap * sizeof(*a->owned));
    }
    a->owned[a->n] = copy ? xstrndup(s, n) : NULL;
    a->v[a->n] = copy ? a->owned[a->n] : s;
    a->len[a->n] = n;
    a->n++;
}

void rargs_take(rargs *a, char *s) {
    rargs_add(a, s, strlen(s), 0);
    a->owned[a->n - 1] = s;
}

void rargs_free(rargs *a) {
    for (int i = 0; i < a->n; i++) free(a->owned[i]);
    free(a->v);
    free(a->len);
    free(a->owned);
    memset(a, 0, sizeof(*a));
}

static void rbatch_free_replies(rbatch *b) {
    for (int i = 0; i < b->n; i++) {
        if (b->rep[i]) freeReplyObject(b->rep[i]);
        b->rep[i] = NULL;
    }
}

void rbatch_free(rbatch *b) {
    rbatch_free_replies(b);
    for (int i = 0; i < b->n; i++) free(b->cmd[i]);
    b->n = 0;
}

/* Read and drop the replies of commands sent on the side. -1: lost. */
static int drain_unread(rconn *c, char *err, size_t errlen) {
    while (c->unread > 0) {
        void *r = NULL;
        if (redisGetReply(c->ctx, &r) != REDIS_OK) {
            snprintf(err, errlen, "redis %s: %s", c->where, c->ctx->errstr[0] ? c->ctx->errstr : "connection lost");
            if (c->url.tls) redis_tls_explain(&c->tls, err, errlen);
            return -1;
        }
        freeReplyObject(r);
        c->unread--;
    }
    return 0;
}

/* Send and read once. 0 ok; 1 connection lost; 2 Redis not ready (LOADING...). */
static int run_once(rconn *c, rbatch *b, char *err, size_t errlen) {
    for (int i = 0; i < b->n; i++)
        if (redisAppendFormattedCommand(c->ctx, b->cmd[i], b->len[i]) != REDIS_OK) {
            snprintf(err, errlen, "redis %s: %s", c->where, c->ctx->errstr);
            return 1;
        }
    if (drain_unread(c, err, errlen) < 0) return 1;
    for (int i = 0; i < b->n; i++) {
        void *r = NULL;
        if (redisGetReply(c->ctx, &r) != REDIS_OK) {
            snprintf(err, errlen, "redis %s: %s", c->where,
                     c->ctx->errstr[0] ? c->ctx->errstr : "connection lost");
            if (c->url.tls) redis_tls_explain(&c->tls, err, errlen); /* hiredis gives no TLS reason */
            return 1;
        }
        b->rep[i] = r;
    }
    for (int i = 0; i < b->n; i++)
        if (b->rep[i]->type == REDIS_REPLY_ERROR && transient_error(b->rep[i]->str)) {
            snprintf(err, errlen, "redis %s: %.200s", c->where, b->rep[i]->str);
            return 2;
        }
    return 0;
}

void rconn_ride(rconn *c, int argc, const char **argv, const size_t *argvlen) {
    size_t len;
    char *cmd = resp_format(argc, argv, argvlen, &len);
    pthread_mutex_lock(&c->mu);
    drop_rider(c);
    c->rider = cmd;
    c->rider_len = len;
    pthread_mutex_unlock(&c->mu);
}

redisReply *rconn_rider_reply(rconn *c, int wanted) {
    pthread_mutex_lock(&c->mu);
    redisReply *r = wanted ? c->rider_reply : NULL;
    if (wanted) c->rider_reply = NULL;
    drop_rider(c);
    pthread_mutex_unlock(&c->mu);
    return r;
}

static int run_locked(rconn *c, rbatch *b, int flags, char *err, size_t errlen);

int rconn_run(rconn *c, rbatch *b, int flags, char *err, size_t errlen) {
    pthread_mutex_lock(&c->mu);
    /* The rider is the batch's last command while it runs (it stays c's). */
    int ride = (flags & RC_RIDER) && c->rider && !c->rider_reply && b->n < RBATCH_MAX;
    if (ride) {
        b->cmd[b->n] = c->rider;
        b->len[b->n] = c->rider_len;
        b->rep[b->n] = NULL;
        b->n++;
    }
    int rc = run_locked(c, b, flags, err, errlen);
    if (ride) {
        b->n--;
        c->rider_reply = b->rep[b->n];
        b->rep[b->n] = NULL;
        b->cmd[b->n] = NULL;
    }
    pthread_mutex_unlock(&c->mu);
    return rc;
}

static int run_locked(rconn *c, rbatch *b, int flags, char *err, size_t errlen) {
    int64_t backoff = RC_BACKOFF_MIN_MS;
    int rc = -1, logged = 0;

    for (;;) {
        rbatch_free_replies(b);
        if (!c->ctx && (flags & RC_IFCONNECTED)) {
            snprintf(err, errlen, "redis %s: not connected", c->where);
            break;
        }
        int64_t began = clock_mono_ms();
        if (ensure_connected(c, err, errlen) < 0) break;
        set_timeout(c);
        int got = run_once(c, b, err, errlen);
        if (got == 0) {
            mark_up();
            rc = 0;
            break;
        }
        if (got == 1) drop_connection(c); /* a dead context is never reused */
        int64_t left = budget_left(began);
        if (!(flags & RC_RETRY)) break;
        if (left <= 0) {
            size_t l = strlen(err);
            snprintf(err + l, errlen - l, " (gave up after %lld ms of retries)", (long long)retry_budget_ms());
            break;
        }
        if (!logged++) log_warn("%s; retrying for up to %lld ms", err, (long long)left);
        clock_sleep_ms(backoff < left ? backoff : left);
        backoff = backoff * 2 > RC_BACKOFF_MAX_MS ? RC_BACKOFF_MAX_MS : backoff * 2;
    }
    if (rc < 0) rbatch_free_replies(b);
    return rc;
}

static redisReply *run_single(rconn *c, rbatch *b, int flags, char *err, size_t errlen) {
    redisReply *r = NULL;
    if (rconn_run(c, b, flags, err, errlen) == 0) {
        r = b->rep[0];
        b->rep[0] = NULL;
    }
    rbatch_free(b);
    return r;
}

redisReply *rconn_cmd(rconn *c, int flags, char *err, size_t errlen, const char *fmt, ...) {
    rbatch b;
    char *hi = NULL;
    va_list ap;
    rbatch_init(&b);
    va_start(ap, fmt);
    int len = redisvFormatCommand(&hi, fmt, ap);
    va_end(ap);
    if (len < 0 || !hi) {
        fprintf(stderr, "oneshot: out of memory formatting a Redis command\n");
        abort();
    }
    /* A batch's commands are all conn.c's own (free()); hiredis's buffer
     * is its allocator's, so it is copied. */
    char *cmd = xmalloc((size_t)len);
    memcpy(cmd, hi, (size_t)len);
    redisFreeCommand(hi);
    rbatch_push(&b, cmd, (size_t)len);
    return run_single(c, &b, flags, err, errlen);
}

redisReply *rconn_cmdv(rconn *c, int flags, char *err, size_t errlen, int argc, const char **argv,
                       const size_t *argvlen) {
    rbatch b;
    rbatch_init(&b);
    rbatch_addv(&b, argc, argv, argvlen);
    return run_single(c, &b, flags, err, errlen);
}

/* --- pub/sub --- */

int rconn_subscribe(rconn *c, const char *channel, char *err, size_t errlen) {
    int rc = -1;
    pthread_mutex_lock(&c->mu);
    if (ensure_connected(c, err, errlen) < 0) goto end;
    redisReply *r = NULL;
    redisAppendCommand(c->ctx, "SUBSCRIBE %s", channel);
    if (drain_unread(c, err, errlen) < 0 || redisGetReply(c->ctx, (void **)&r) != REDIS_OK) r = NULL;
    if (!r) {
        snprintf(err, errlen, "redis %s: %s", c->where, c->ctx->errstr);
        drop_connection(c);
        goto end;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        snprintf(err, errlen, "redis %s: SUBSCRIBE: %.200s", c->where, r->str);
    } else {
        rc = 0;
    }
    freeReplyObject(r);
end:
    pthread_mutex_unlock(&c->mu);
    return rc;
}

int rconn_next_message(rconn *c, int timeout_ms, char **payload, size_t *len, char *err, size_t errlen) {
    int64_t until = clock_mono_ms() + timeout_ms;
    int rc = -1;
    pthread_mutex_lock(&c->mu);
    if (!c->ctx) {
        snprintf(err, errlen, "redis %s: not connected", c->where);
        goto end;
    }
    for (;;) {
        redisReply *r = NULL;
        if (redisGetReplyFromReader(c->ctx, (void **)&r) != REDIS_OK) {
            snprintf(err, errlen, "redis %s: %s", c->where, c->ctx->errstr);
            drop_connection(c);
            goto end;
        }
        if (r) {
            int is_msg = r->type == REDIS_REPLY_ARRAY && r->elements == 3 &&
                         r->element[0]->type == REDIS_REPLY_STRING && strcmp(r->element[0]->str, "message") == 0 &&
                         r->element[2]->type == REDIS_REPLY_STRING;
            if (is_msg) {
                *payload = xstrndup(r->element[2]->str, r->element[2]->len);
                if (len) *len = r->element[2]->len;
                freeReplyObject(r);
                rc = 1;
                goto end;
            }
            freeReplyObject(r); /* (un)subscribe confirmations */
            continue;
        }
        int64_t left = until - clock_mono_ms();
        if (left <= 0) {
            rc = 0;
            goto end;
        }
        struct pollfd p = {c->ctx->fd, POLLIN, 0};
        int n = poll(&p, 1, (int)left);
        if (n < 0 && errno == EINTR) continue;
        if (n == 0) {
            rc = 0;
            goto end;
        }
        if (n < 0 || redisBufferRead(c->ctx) != REDIS_OK) {
            snprintf(err, errlen, "redis %s: %s", c->where, n < 0 ? strerror(errno) : c->ctx->errstr);
            drop_connection(c);
            goto end;
        }
    }
end:
    pthread_mutex_unlock(&c->mu);
    return rc;
}

/* --- reply helpers --- */

int rreply_is_err(const redisReply *r) { return !r || r->type == REDIS_REPLY_ERROR; }

int rreply_check(const redisReply *r, const char *what, char *err, size_t errlen) {
    if (!r) {
        snprintf(err, errlen, "%s: no reply", what);
        return -1;
    }
    if (r->type != REDIS_REPLY_ERROR) return 0;
    snprintf(err, errlen, "%s: %.300s", what, r->str);
    return -1;
}

long long rreply_int(const redisReply *r, long long dflt) {
    if (!r) return dflt;
    if (r->type == REDIS_REPLY_INTEGER) return r->integer;
    if (r->type == REDIS_REPLY_STRING) {
        char *end;
        long long v = strtoll(r->str, &end, 10);
        if (end != r->str && !*end) return v;
    }
    return dflt;
}
