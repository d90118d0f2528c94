/* redis/conn.h -- one Redis connection, shared by the redis-list and
 * redis-stream sources, the Redis store and the client subcommands
 *.
 *
 * rconn_open connects from a --redis URL (redis://[user:password@]host:port/db
 * or unix:///path?db=N), authenticates (AUTH pass, or AUTH user pass for an
 * ACL user), selects the database and names the client (CLIENT SETNAME
 * oneshot:<who>, visible in CLIENT LIST). Connect timeout 2 s, command
 * (socket) timeout 5 s. The password is never logged or returned in err.
 * A rediss:// URL adds the TLS handshake (redis/tls.h) after the connect,
 * within the socket timeout; a certificate refused either way fails at
 * once, without retries, like refused credentials.
 *
 * Commands go out in batches (one round trip for several commands). When
 * the connection is lost, or Redis answers LOADING/BUSY/MASTERDOWN (it is
 * restarting), the connection is re-made with backoff (50 ms doubling to
 * 1 s) for at most the retry budget: 10 s by default, counted process-wide
 * from the start of the first call that failed, so that several
 * connections failing together still give up within it; the socket and
 * connect timeouts shrink to what is left of it, so a frozen server (whose
 * failures show only as timeouts) is given up on when the budget ends too.
 * Only a reply ends an outage: a connection alone does not. ONESHOT_REDIS_RETRY_MS overrides the budget (0..600000;
 * tests and operators who prefer a faster exit 69). A batch is re-sent after
 * a reconnect only when the caller says it is idempotent (RC_RETRY);
 * otherwise the call fails and the next one reconnects.
 *
 * A context is used by one thread at a time: each rconn has its own lock,
 * held for a whole call (a batch, with its retries), so calls from several
 * threads are serialised rather than interleaved. A shared connection
 * (rconn_share) relies on it: a blocking read holds the lock while it
 * waits. */
#ifndef ONESHOT_REDIS_CONN_H
#define ONESHOT_REDIS_CONN_H

#include <hiredis/hiredis.h>
#include <stddef.h>
#include <string.h>


#define RC_CONNECT_TIMEOUT_MS 2000
#define RC_COMMAND_TIMEOUT_MS 5000
#define RC_RETRY_BUDGET_MS 10000
#define RC_BACKOFF_MIN_MS 50
#define RC_BACKOFF_MAX_MS 1000
/* Blocking commands (BLMOVE, XREADGROUP BLOCK) wait at most this long, so
 * the socket timeout above never fires on a healthy connection. */
#define RC_BLOCK_MAX_MS 2000

#define RC_RETRY 1       /* the batch is idempotent: re-send it after a reconnect */
#define RC_IFCONNECTED 2 /* do not (re)connect: fail unless connected (tidying at exit) */
#define RC_RIDER 4       /* the rider (rconn_ride), if one waits, goes out behind the batch */

typedef struct rconn rconn;

/* Connect (retrying within the budget). who names the connection in logs
 * and CLIENT SETNAME ("src", "store", "client"...). NULL with a reason
 * when Redis stays unreachable or refuses the credentials. */
rconn *rconn_open(const char *url, const char *who, char *err, size_t errlen);
/* The process's shared connection to url: opened (named after who) by the
 * first caller, then the same one for every caller with the same url,
 * until each has closed it. The sources and the store share one this way
 * in the main thread (one connect and one handshake per replica); the
 * lock serialises the heartbeat thread's source calls with it. Callers
 * must not leave it inside a blocking command while another thread may
 * need it for longer than RC_BLOCK_MAX_MS. */
rconn *rconn_share(const char *url, const char *who, char *err, size_t errlen);
/* Close the connection (a shared one: once its last holder closes it). */
void rconn_close(rconn *c);
/* Shorten the process's retry budget to ms (never lengthen it): for the
 * last write before a hard exit, which must not outlive its moment. */
void rconn_limit_budget(int ms);

#define RBATCH_MAX 12

/* Up to RBATCH_MAX commands sent together; replies land in rep[]. */
typedef struct rbatch {
    int n;
    char *cmd[RBATCH_MAX];
    size_t len[RBATCH_MAX];
    redisReply *rep[RBATCH_MAX];
} rbatch;

void rbatch_init(rbatch *b);
/* Append one command: argc strings, argvlen[i] bytes each (argvlen NULL:
 * C strings), formatted at once (the strings need not outlive the call). */
void rbatch_addv(rbatch *b, int argc, const char **argv, const size_t *argvlen);
/* Drop the commands and the replies (the batch can be reused). */
void rbatch_free(rbatch *b);

/* A growing argv for one command (an EVAL with many arguments): each
 * string borrowed (it must outlive the call), copied, or taken (a
 * malloc'd string, freed with the argv). */
typedef struct rargs {
    int n, cap;
    const char **v;
    size_t *len;
    char **owned;
} rargs;

void rargs_add(rargs *a, const char *s, size_t n, int copy);
static inline void rargs_str(rargs *a, const char *s) { rargs_add(a, s, strlen(s), 0); }
static inline void rargs_copy(rargs *a, const char *s) { rargs_add(a, s, strlen(s), 1); }
void rargs_take(rargs *a, char *s);
void rargs_free(rargs *a);

/* Send the batch and read every reply. 0: rep[] holds one reply per
 * command (error replies included: check them); -1: Redis unreachable
 * within the budget (or not retried), with the reason in err. */
int rconn_run(rconn *c, rbatch *b, int flags, char *err, size_t errlen);
/* One command; the reply is the caller's (freeReplyObject), NULL when
 * Redis is unreachable. */
redisReply *rconn_cmd(rconn *c, int flags, char *err, size_t errlen, const char *fmt, ...);
redisReply *rconn_cmdv(rconn *c, int flags, char *err, size_t errlen, int argc, const char **argv,
                       const size_t *argvlen);

/* A rider: one command that goes out behind the next batch run with
 * RC_RIDER on this connection, in the same round trip (and is re-sent with
 * it: it must be idempotent too), its reply kept for rconn_rider_reply.
 * A Redis source's settle rides with the store's final record so
 * (consumer/README.md "Steps"). A new rider replaces the one waiting. */
void rconn_ride(rconn *c, int argc, const char **argv, const size_t *argvlen);
/* The rider's reply (the caller's), NULL when it was not sent (no batch
 * with RC_RIDER ran, or it failed) or is not wanted (freed); the rider is
 * dropped either way. */
redisReply *rconn_rider_reply(rconn *c, int wanted);

/* Pub/sub (the `wait` subcommand): subscribe, then take messages. */
int rconn_subscribe(rconn *c, const char *channel, char *err, size_t errlen);
/* 1: *payload (malloc'd, NUL-terminated) holds a message; 0: none within
 * timeout_ms; -1: the connection is lost. */
int rconn_next_message(rconn *c, int timeout_ms, char **payload, size_t *len, char *err, size_t errlen);

/* Reply helpers. */
int rreply_is_err(const redisReply *r);
/* err <- "what: <error text>" when r is an error reply; returns -1 then, else 0. */
int rreply_check(const redisReply *r, const char *what, char *err, size_t errlen);
/* Integer value of an integer (or numeric string) reply, else dflt. */
long long rreply_int(const redisReply *r, long long dflt);

#endif
