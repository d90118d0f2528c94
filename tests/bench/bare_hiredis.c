/* bare_hiredis -- the floor for a one-shot Redis worker in `make bench`:
 * connect, take one job, write its result and a status hash, ack, exit.
 * Nothing else: no lease, no sweep, no lookup, no JSON library, no HTTP,
 * no logging. The echo "core": the result is the message (list) or its
 * input field (stream).
 *
 *   bare_hiredis list   SOCKET QUEUE          BLMOVE + SET + HSET + LREM
 *   bare_hiredis stream SOCKET QUEUE GROUP    XREADGROUP + SET + HSET + XACK
 *
 * SOCKET is a unix socket path, with or without "unix://". The job id is the
 * list item's "id":"..." (found with strstr) or the stream entry's id field
 * (else the entry id). Keys: QUEUE:bare:processing (list), bare:result:ID,
 * bare:job:ID; the stream consumer is "bare" (the group must exist).
 * Exit 0 after the ack, 75 when no job came within 1 s, 69 on a Redis error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

static int fail(redisContext *c, redisReply *r, const char *what)
{
    fprintf(stderr, "bare_hiredis: %s: %s\n", what,
            r != NULL && r->type == REDIS_REPLY_ERROR ? r->str : c->errstr);
    if (r != NULL)
        freeReplyObject(r);
    redisFree(c);
    return 69;
}

/* The value of "id":"..." in a JSON message, into id (at most idlen - 1
 * bytes), or "noid". No unescaping: a bench message has plain ids. */
static void json_id(const char *msg, size_t len, char *id, size_t idlen)
{
    const char *p = memmem(msg, len, "\"id\":\"", 6), *e;
    size_t n;

    snprintf(id, idlen, "noid");
    if (p == NULL)
        return;
    p += 6;
    e = memchr(p, '"', len - (size_t)(p - msg));
    if (e == NULL)
        return;
    n = (size_t)(e - p) < idlen - 1 ? (size_t)(e - p) : idlen - 1;
    memcpy(id, p, n);
    id[n] = '\0';
}

/* SET bare:result:ID result, HSET bare:job:ID state succeeded exit_code 0. */
static int store(redisContext *c, const char *id, const char *res, size_t reslen)
{
    redisReply *r = redisCommand(c, "SET bare:result:%s %b", id, res, reslen);
    if (r == NULL || r->type == REDIS_REPLY_ERROR)
        return fail(c, r, "SET");
    freeReplyObject(r);
    r = redisCommand(c, "HSET bare:job:%s state succeeded exit_code 0", id);
    if (r == NULL || r->type == REDIS_REPLY_ERROR)
        return fail(c, r, "HSET");
    freeReplyObject(r);
    return 0;
}

static int run_list(redisContext *c, const char *queue)
{
    char id[256];
    int rc;
    redisReply *item, *r;

    item = redisCommand(c, "BLMOVE %s %s:bare:processing RIGHT LEFT 1", queue, queue);
    if (item == NULL || item->type == REDIS_REPLY_ERROR)
        return fail(c, item, "BLMOVE");
    if (item->type != REDIS_REPLY_STRING) {
        freeReplyObject(item);
        redisFree(c);
        return 75;
    }
    json_id(item->str, item->len, id, sizeof id);
    if ((rc = store(c, id, item->str, item->len)) != 0) {
        freeReplyObject(item);
        return rc;
    }
    r = redisCommand(c, "LREM %s:bare:processing 1 %b", queue, item->str, item->len);
    freeReplyObject(item);
    if (r == NULL || r->type == REDIS_REPLY_ERROR)
        return fail(c, r, "LREM");
    freeReplyObject(r);
    redisFree(c);
    return 0;
}

static int run_stream(redisContext *c, const char *queue, const char *group)
{
    const char *input = "";
    size_t inlen = 0;
    char id[256];
    int rc;
    redisReply *rep, *entry, *fields, *r;

    rep = redisCommand(c, "XREADGROUP GROUP %s bare COUNT 1 BLOCK 1000 STREAMS %s >", group,
                       queue);
    if (rep == NULL || rep->type == REDIS_REPLY_ERROR)
        return fail(c, rep, "XREADGROUP");
    /* [[queue, [[entry-id, [field, value, ...]]]]] */
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements < 1 || rep->element[0]->elements < 2 ||
        rep->element[0]->element[1]->elements < 1) {
        freeReplyObject(rep);
        redisFree(c);
        return 75;
    }
    entry = rep->element[0]->element[1]->element[0];
    fields = entry->element[1];
    snprintf(id, sizeof id, "%s", entry->element[0]->str);
    for (size_t k = 0; k + 1 < fields->elements; k += 2) {
        if (strcmp(fields->element[k]->str, "input") == 0) {
            input = fields->element[k + 1]->str;
            inlen = fields->element[k + 1]->len;
        } else if (strcmp(fields->element[k]->str, "id") == 0) {
            snprintf(id, sizeof id, "%s", fields->element[k + 1]->str);
        }
    }
    if ((rc = store(c, id, input, inlen)) != 0) {
        freeReplyObject(rep);
        return rc;
    }
    r = redisCommand(c, "XACK %s %s %s", queue, group, entry->element[0]->str);
    freeReplyObject(rep);
    if (r == NULL || r->type == REDIS_REPLY_ERROR)
        return fail(c, r, "XACK");
    freeReplyObject(r);
    redisFree(c);
    return 0;
}

int main(int argc, char **argv)
{
    const char *sock;
    redisContext *c;
    int stream;

    if (argc < 4 || (strcmp(argv[1], "list") != 0 && strcmp(argv[1], "stream") != 0) ||
        (strcmp(argv[1], "stream") == 0 && argc < 5)) {
        fputs("usage: bare_hiredis list SOCKET QUEUE | stream SOCKET QUEUE GROUP\n", stderr);
        return 2;
    }
    stream = strcmp(argv[1], "stream") == 0;
    sock = strncmp(argv[2], "unix://", 7) == 0 ? argv[2] + 7 : argv[2];
    c = redisConnectUnix(sock);
    if (c == NULL) {
        fputs("bare_hiredis: out of memory\n", stderr);
        return 69;
    }
    if (c->err)
        return fail(c, NULL, "connect");
    return stream ? run_stream(c, argv[3], argv[4]) : run_list(c, argv[3]);
}
