/* startbench -- time one server process from start to its first 200 on
 * GET /health, read its idle resident memory, and optionally time one job
 * cycle through to the process's exit. One run, one JSON line on stdout.
 *
 *   startbench [--label NAME] [--job PATH [--body FILE [--check-echo]]]
 *              [--exit-only] [--health PATH] [--timeout S]
 *              [--pre SH] [--post SH] [--env NAME=VALUE]...
 *              [--log FILE [--span 'A|B']] [--bytes N] -- CMD ARG...
 *
 * "{PORT}" anywhere in an ARG is replaced by a free loopback port (bind
 * 127.0.0.1:0, read it, close: a small race another process could win,
 * which shows up as a failed run, never as a wrong number). "{ID}" in an
 * ARG, --pre or --post becomes a token unique to this run (sb<pid>x<ns>).
 *
 * The clock starts just before fork(). Readiness is polled with raw HTTP/1.1
 * on fresh loopback connections and a 100-200 us back-off, no helper process,
 * so the tool costs microseconds, not the milliseconds a curl spawn would.
 * After the first 200: VmRSS from /proc/PID/status. With --job, one
 * "POST PATH" (Content-Length: 0) whose full response is read, then the
 * process is reaped: cycle_ms is start -> exit. Without --job the process
 * group is SIGKILLed and reaped. Every wait is bounded by --timeout
 * (default 20 s per run); on any error the group is killed, the JSON line
 * carries "ok":false and "error", and the exit code is 1 (2 for bad usage).
 *
 * Additions for the queue and core rows of `make bench`:
 *   --exit-only   no HTTP at all: cycle_ms is fork -> exit (reaped); a
 *                 non-zero exit code makes the run fail.
 *   --pre SH      `/bin/sh -c SH` run to completion before the clock starts
 *                 (e.g. enqueue the run's job); --post SH after the reap,
 *                 off the clock (e.g. check the result exists). Either one
 *                 failing (exit != 0) fails the run.
 *   --env N=V     set in the child only.
 *   --body FILE   the POST carries FILE (mapped before the fork, never
 *                 inherited: MADV_DONTFORK), Content-Type
 *                 application/octet-stream, sent while the response is read;
 *                 post_ms is connect -> last response byte. --check-echo
 *                 compares the response body with FILE byte by byte.
 *   --log FILE    the child's stderr goes to FILE (else /dev/null); --span
 *                 'A|B' gives log_span_ms = ts of the first line containing B
 *                 after the first containing A, minus the ts of that A line
 *                 (the JSON log's "ts", millisecond resolution).
 *   --bytes N     the payload size for *_mbps fields (default: the --body
 *                 size); MB = 10^6 bytes.
 *   Always: maxrss_kb = wait4's ru_maxrss of the child (the largest peak of
 *   it and every descendant it reaped), when the child was reaped.
 *
 * The child runs in its own process group (so helpers it spawns die with it)
 * with stdin, stdout and stderr on /dev/null.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#define RESP_MAX 65536

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void sleep_us(long us)
{
    struct timespec ts = { us / 1000000, (us % 1000000) * 1000 };
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
        ;
}

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* A port the kernel considers free on 127.0.0.1 right now, or -1. */
static int free_port(char *err, size_t errlen)
{
    struct sockaddr_in sa;
    socklen_t len = sizeof sa;
    int port = -1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd == -1) {
        set_err(err, errlen, "socket: %s", strerror(errno));
        goto end;
    }
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = 0;
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) == -1 ||
        getsockname(fd, (struct sockaddr *)&sa, &len) == -1) {
        set_err(err, errlen, "bind/getsockname: %s", strerror(errno));
        goto end;
    }
    port = ntohs(sa.sin_port);
end:
    if (fd != -1)
        close(fd);
    return port;
}

/* A malloc'd copy of s with every key replaced by val, or NULL. */
static char *subst(const char *s, const char *key, const char *val)
{
    size_t n = 0, klen = strlen(key), vlen = strlen(val);
    const char *p;
    char *out, *o;

    for (p = s; (p = strstr(p, key)) != NULL; p += klen)
        n++;
    out = malloc(strlen(s) + n * vlen + 1);
    if (out == NULL)
        return NULL;
    for (o = out, p = s; *p;) {
        if (strncmp(p, key, klen) == 0) {
            memcpy(o, val, vlen);
            o += vlen;
            p += klen;
        } else {
            *o++ = *p++;
        }
    }
    *o = '\0';
    return out;
}

/* s with {PORT} and {ID} replaced (malloc'd), or NULL. */
static char *subst_all(const char *s, const char *port, const char *id)
{
    char *a = subst(s, "{PORT}", port), *b;
    if (a == NULL)
        return NULL;
    b = subst(a, "{ID}", id);
    free(a);
    return b;
}

static int poll_ms_left(double deadline)
{
    double left = deadline - now_ms();
    if (left <= 0)
        return 0;
    return left > 1e6 ? 1000000 : (int)left + 1;
}

/* Connect to 127.0.0.1:port by deadline. Returns the fd, or -1 with err set
 * (ECONNREFUSED is the normal case while the server is starting). */
static int tcp_connect(int port, double deadline, char *err, size_t errlen)
{
    struct sockaddr_in sa;
    struct pollfd pfd;
    int fd, soerr = 0, one = 1;
    socklen_t len = sizeof soerr;

    fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd == -1) {
        set_err(err, errlen, "socket: %s", strerror(errno));
        return -1;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = htons((unsigned short)port);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0)
        return fd;
    if (errno != EINPROGRESS) {
        soerr = errno;
        goto error;
    }
    pfd.fd = fd;
    pfd.events = POLLOUT;
    pfd.revents = 0;
    if (poll(&pfd, 1, poll_ms_left(deadline)) != 1) {
        soerr = ETIMEDOUT;
        goto error;
    }
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) == -1)
        soerr = errno;
    if (soerr == 0)
        return fd;
error:
    set_err(err, errlen, "connect 127.0.0.1:%d: %s", port, strerror(soerr));
    close(fd);
    return -1;
}

/* True once buf holds a complete response: headers plus Content-Length bytes
 * of body. Without Content-Length (chunked, or close-delimited) only EOF ends it. */
static int response_complete(const char *buf, size_t n)
{
    const char *eoh = memmem(buf, n, "\r\n\r\n", 4);
    const char *p;
    size_t hlen;

    if (eoh == NULL)
        return 0;
    hlen = (size_t)(eoh - buf) + 4;
    for (p = buf; p && p < eoh; p = memchr(p, '\n', (size_t)(eoh - p))) {
        if (*p == '\n')
            p++;
        if (strncasecmp(p, "Content-Length:", 15) == 0)
            return n >= hlen + strtoul(p + 15, NULL, 10);
    }
    return 0;
}

/* One request on a fresh connection; the whole response is read (up to
 * Content-Length, else EOF) so the server never sees a reset. Returns 0 with
 * *status set, or -1 with err set. */
static int http_once(int port, const char *req, double deadline, int *status,
                     char *err, size_t errlen)
{
    char buf[RESP_MAX + 1];
    size_t n = 0, reqlen = strlen(req), sent = 0;
    int fd, rc = -1;
    struct pollfd pfd;
    ssize_t r;

    *status = 0;
    fd = tcp_connect(port, deadline, err, errlen);
    if (fd == -1)
        return -1;
    while (sent < reqlen) {
        r = send(fd, req + sent, reqlen - sent, MSG_NOSIGNAL);
        if (r > 0) {
            sent += (size_t)r;
            continue;
        }
        if (r == -1 && (errno == EAGAIN || errno == EINTR)) {
            pfd.fd = fd;
            pfd.events = POLLOUT;
            if (poll(&pfd, 1, poll_ms_left(deadline)) == 1)
                continue;
        }
        set_err(err, errlen, "send: %s", r == -1 ? strerror(errno) : "timeout");
        goto end;
    }
    for (;;) {
        if (*status == 0 && n >= 12 && memchr(buf, '\n', n) != NULL) {
            buf[n] = '\0';
            if (sscanf(buf, "HTTP/%*d.%*d %d", status) != 1 || *status <= 0) {
                set_err(err, errlen, "bad status line");
                goto end;
            }
        }
        if (*status != 0 && response_complete(buf, n))
            break;
        if (n == RESP_MAX) { /* keep the status, drop the rest */
            n = 12;
        }
        pfd.fd = fd;
        pfd.events = POLLIN;
        pfd.revents = 0;
        if (poll(&pfd, 1, poll_ms_left(deadline)) != 1) {
            set_err(err, errlen, "read: timeout");
            goto end;
        }
        r = recv(fd, buf + n, RESP_MAX - n, 0);
        if (r > 0) {
            n += (size_t)r;
            continue;
        }
        if (r == -1 && (errno == EAGAIN || errno == EINTR))
            continue;
        if (r == 0 && *status != 0)
            break; /* close-delimited end of response */
        set_err(err, errlen, "read: %s", r == -1 ? strerror(errno) : "closed before a status line");
        goto end;
    }
    rc = 0;
end:
    close(fd);
    return rc;
}

/* VmRSS of pid in kB, or -1. */
static long read_rss_kb(pid_t pid)
{
    char path[64], line[256];
    long kb = -1;
    FILE *f;

    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    f = fopen(path, "re");
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof line, f) != NULL) {
        if (strncmp(line, "VmRSS:", 6) == 0) {
            kb = strtol(line + 6, NULL, 10);
            break;
        }
    }
    fclose(f);
    return kb;
}

/* Exit code in the shell's convention: 128+N for a signal. */
static int exit_code_of(int st)
{
    if (WIFEXITED(st))
        return WEXITSTATUS(st);
    if (WIFSIGNALED(st))
        return 128 + WTERMSIG(st);
    return -1;
}

/* Reap pid by deadline (SIGCHLD is blocked, so sigtimedwait wakes on exit).
 * Returns 0 with *st set, or -1 on timeout. */
static int reap_by(pid_t pid, double deadline, int *st, struct rusage *ru)
{
    sigset_t set;
    struct timespec ts;
    double left;
    pid_t r;

    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    for (;;) {
        r = wait4(pid, st, WNOHANG, ru);
        if (r == pid)
            return 0;
        if (r == -1 && errno != EINTR)
            return -1;
        left = deadline - now_ms();
        if (left <= 0)
            return -1;
        if (left > 50)
            left = 50; /* re-check now and then: SIGCHLD can be merged */
        ts.tv_sec = 0;
        ts.tv_nsec = (long)(left * 1e6);
        sigtimedwait(&set, NULL, &ts);
    }
}

static void kill_and_reap(pid_t pid)
{
    int st;
    kill(-pid, SIGKILL);
    kill(pid, SIGKILL);
    while (waitpid(pid, &st, 0) == -1 && errno == EINTR)
        ;
}

/* `/bin/sh -c cmd`, stdin and stdout on devnull, stderr inherited, waited
 * for (SIGCHLD stays blocked in the caller; waitpid does not need it).
 * Returns its exit code in the shell's convention, or -1. */
static int run_hook(const char *cmd, int devnull)
{
    int st;
    pid_t pid = fork();

    if (pid == -1)
        return -1;
    if (pid == 0) {
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        dup2(devnull, 0);
        dup2(devnull, 1);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    while (waitpid(pid, &st, 0) == -1) {
        if (errno != EINTR)
            return -1;
    }
    return exit_code_of(st);
}

/* One "POST path" carrying body (len bytes) on a fresh connection; the
 * request is written while the response is read, so neither side can stall
 * the other. The response body is counted and, with check, compared with
 * body. Returns 0 with *status, *resp_len, *same set, or -1 with err set. */
static int http_post_body(int port, const char *path, const unsigned char *body, size_t len,
                          int check, double deadline, int *status, size_t *resp_len,
                          int *same, char *err, size_t errlen)
{
    char head[RESP_MAX + 1], req[1024];
    size_t hn = 0, reqlen, sent = 0, total, clen = 0, got = 0;
    int fd, rc = -1, have_clen = 0, in_body = 0;
    struct pollfd pfd;
    ssize_t r;

    *status = 0;
    *resp_len = 0;
    *same = check ? 1 : -1;
    reqlen = (size_t)snprintf(req, sizeof req,
                              "POST %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                              "Content-Type: application/octet-stream\r\n"
                              "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                              path, port, len);
    total = reqlen + len;
    fd = tcp_connect(port, deadline, err, errlen);
    if (fd == -1)
        return -1;
    for (;;) {
        pfd.fd = fd;
        pfd.events = POLLIN | (sent < total ? POLLOUT : 0);
        pfd.revents = 0;
        if (poll(&pfd, 1, poll_ms_left(deadline)) != 1) {
            set_err(err, errlen, "POST: timeout (%zu of %zu bytes sent, %zu received)", sent, total,
                    got);
            goto end;
        }
        if ((pfd.revents & POLLOUT) && sent < total) {
            if (sent < reqlen)
                r = send(fd, req + sent, reqlen - sent, MSG_NOSIGNAL);
            else
                r = send(fd, body + (sent - reqlen), total - sent, MSG_NOSIGNAL);
            if (r > 0)
                sent += (size_t)r;
            else if (r == -1 && errno != EAGAIN && errno != EINTR && errno != EPIPE &&
                     errno != ECONNRESET) {
                set_err(err, errlen, "send: %s", strerror(errno));
                goto end;
            } else if (r == -1 && (errno == EPIPE || errno == ECONNRESET)) {
                sent = total; /* the server answered early and closed: read what it said */
            }
        }
        if (!(pfd.revents & (POLLIN | POLLHUP | POLLERR)))
            continue;
        if (!in_body) {
            const char *eoh, *p;
            r = recv(fd, head + hn, RESP_MAX - hn, 0);
            if (r == -1 && (errno == EAGAIN || errno == EINTR))
                continue;
            if (r <= 0) {
                set_err(err, errlen, "read: %s", r == -1 ? strerror(errno) : "closed in the headers");
                goto end;
            }
            hn += (size_t)r;
            head[hn] = '\0';
            eoh = memmem(head, hn, "\r\n\r\n", 4);
            if (eoh == NULL) {
                if (hn == RESP_MAX) {
                    set_err(err, errlen, "response headers too long");
                    goto end;
                }
                continue;
            }
            if (sscanf(head, "HTTP/%*d.%*d %d", status) != 1 || *status <= 0) {
                set_err(err, errlen, "bad status line");
                goto end;
            }
            for (p = head; p && p < eoh; p = memchr(p, '\n', (size_t)(eoh - p))) {
                if (*p == '\n')
                    p++;
                if (strncasecmp(p, "Content-Length:", 15) == 0) {
                    clen = strtoull(p + 15, NULL, 10);
                    have_clen = 1;
                } else if (strncasecmp(p, "Transfer-Encoding:", 18) == 0) {
                    set_err(err, errlen, "chunked responses are not supported here");
                    goto end;
                }
            }
            in_body = 1;
            { /* body bytes that came with the headers */
                size_t hlen = (size_t)(eoh - head) + 4, extra = hn - hlen;
                if (check && *same && (got + extra > len || memcmp(body + got, eoh + 4, extra) != 0))
                    *same = 0;
                got += extra;
            }
        } else {
            char buf[1 << 16];
            r = recv(fd, buf, sizeof buf, 0);
            if (r == -1 && (errno == EAGAIN || errno == EINTR))
                continue;
            if (r == -1) {
                set_err(err, errlen, "read: %s", strerror(errno));
                goto end;
            }
            if (r == 0) {
                if (have_clen) {
                    set_err(err, errlen, "closed after %zu of %zu body bytes", got, clen);
                    goto end;
                }
                break; /* close-delimited */
            }
            if (check && *same &&
                (got + (size_t)r > len || memcmp(body + got, buf, (size_t)r) != 0))
                *same = 0;
            got += (size_t)r;
        }
        if (in_body && have_clen && got >= clen)
            break;
    }
    *resp_len = got;
    if (check && got != len)
        *same = 0;
    rc = 0;
end:
    close(fd);
    return rc;
}

/* Milliseconds of the day of a JSON log line's "ts":"YYYY-MM-DDTHH:MM:SS.mmmZ",
 * or -1. */
static double line_ts_ms(const char *line)
{
    const char *p = strstr(line, "\"ts\":\"");
    int h, m, sec, ms;

    if (p == NULL || strlen(p) < 6 + 24)
        return -1;
    if (sscanf(p + 6 + 11, "%2d:%2d:%2d.%3d", &h, &m, &sec, &ms) != 4)
        return -1;
    return ((h * 60.0 + m) * 60.0 + sec) * 1000.0 + ms;
}

/* log_span_ms for --span "A|B" over the log file, or -1. */
static double log_span(const char *path, const char *span)
{
    const char *bar = strchr(span, '|');
    char line[8192], a[256];
    const char *b;
    double ta = -1, d = -1;
    FILE *f;

    if (bar == NULL || (size_t)(bar - span) >= sizeof a)
        return -1;
    memcpy(a, span, (size_t)(bar - span));
    a[bar - span] = '\0';
    b = bar + 1;
    f = fopen(path, "re");
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof line, f) != NULL) {
        if (ta < 0) {
            if (strstr(line, a) != NULL)
                ta = line_ts_ms(line);
        } else if (strstr(line, b) != NULL) {
            double tb = line_ts_ms(line);
            if (tb >= 0) {
                d = tb - ta;
                if (d < 0)
                    d += 86400000.0; /* across midnight */
            }
            break;
        }
    }
    fclose(f);
    return d;
}

static void json_str(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c < 0x20)
            printf("\\u%04x", c);
        else
            putchar(c);
    }
    putchar('"');
}

static void usage(void)
{
    fputs("usage: startbench [--label NAME] [--job PATH [--body FILE [--check-echo]]]\n"
          "                  [--exit-only] [--health PATH] [--timeout S] [--pre SH] [--post SH]\n"
          "                  [--env NAME=VALUE]... [--log FILE [--span 'A|B']] [--bytes N]\n"
          "                  -- CMD ARG...\n"
          "  {PORT} in ARGs becomes a free 127.0.0.1 port, {ID} a per-run token;\n"
          "  prints one JSON line.\n",
          stderr);
}

static double mbps(double bytes, double ms)
{
    return bytes > 0 && ms > 0 ? bytes / 1e6 / (ms / 1e3) : -1;
}

int main(int argc, char **argv)
{
    const char *label = "run", *job = NULL, *health = "/health", *body_path = NULL;
    const char *log_path = NULL, *span = NULL, *pre = NULL, *post = NULL;
    const char *envs[16];
    double timeout_s = 20, t0, deadline, ready_ms = -1, resp_ms = -1, cycle_ms = -1;
    double post_ms = -1, span_ms = -1, bytes = 0, tp;
    char err[256] = "", req[1024], portstr[16], id[64];
    char **cargv = NULL, *pre_cmd = NULL, *post_cmd = NULL;
    int i, cargc, port, devnull = -1, logfd = -1, status = 0, job_status = 0, st;
    int exit_code = -1, attempts = 0, ok = 0, exit_only = 0, check_echo = 0, same = -1;
    int nenv = 0, rc;
    long rss_kb = -1, maxrss_kb = -1, backoff_us = 100;
    size_t body_len = 0, resp_len = 0;
    unsigned char *body = MAP_FAILED;
    pid_t pid = -1;
    sigset_t chld, oldmask;
    struct rusage ru;
    struct timespec ts;

    memset(&ru, 0, sizeof ru);
    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0) {
            i++;
            break;
        } else if (i + 1 < argc && strcmp(argv[i], "--label") == 0) {
            label = argv[++i];
        } else if (i + 1 < argc && strcmp(argv[i], "--job") == 0) {
            job = argv[++i];
        } else if (i + 1 < argc && strcmp(argv[i], "--health") == 0) {
            health = argv[++i];
        } else if (i + 1 < argc && strcmp(argv[i], "--timeout") == 0) {
            timeout_s = strtod(argv[++i], NULL);
        } else if (i + 1 < argc && strcmp(argv[i], "--body") == 0) {
            body_path = argv[++i];
        } else if (strcmp(argv[i], "--check-echo") == 0) {
            check_echo = 1;
        } else if (strcmp(argv[i], "--exit-only") == 0) {
            exit_only = 1;
        } else if (i + 1 < argc && strcmp(argv[i], "--pre") == 0) {
            pre = argv[++i];
        } else if (i + 1 < argc && strcmp(argv[i], "--post") == 0) {
            post = argv[++i];
        } else if (i + 1 < argc && strcmp(argv[i], "--env") == 0 &&
                   nenv < (int)(sizeof envs / sizeof *envs) && strchr(argv[i + 1], '=')) {
            envs[nenv++] = argv[++i];
        } else if (i + 1 < argc && strcmp(argv[i], "--log") == 0) {
            log_path = argv[++i];
        } else if (i + 1 < argc && strcmp(argv[i], "--span") == 0) {
            span = argv[++i];
        } else if (i + 1 < argc && strcmp(argv[i], "--bytes") == 0) {
            bytes = strtod(argv[++i], NULL);
        } else {
            usage();
            return 2;
        }
    }
    if (i >= argc || timeout_s <= 0 || (exit_only && job != NULL) ||
        (body_path != NULL && job == NULL) || (span != NULL && log_path == NULL)) {
        usage();
        return 2;
    }
    cargc = argc - i;
    cargv = calloc((size_t)cargc + 1, sizeof *cargv);
    if (cargv == NULL) {
        set_err(err, sizeof err, "out of memory");
        goto end;
    }
    port = free_port(err, sizeof err);
    if (port < 0)
        goto end;
    snprintf(portstr, sizeof portstr, "%d", port);
    clock_gettime(CLOCK_REALTIME, &ts);
    snprintf(id, sizeof id, "sb%dx%lld%09ld", (int)getpid(), (long long)ts.tv_sec, ts.tv_nsec);
    for (int k = 0; k < cargc; k++) {
        cargv[k] = subst_all(argv[i + k], portstr, id);
        if (cargv[k] == NULL) {
            set_err(err, sizeof err, "out of memory");
            goto end;
        }
    }
    if ((pre != NULL && (pre_cmd = subst_all(pre, portstr, id)) == NULL) ||
        (post != NULL && (post_cmd = subst_all(post, portstr, id)) == NULL)) {
        set_err(err, sizeof err, "out of memory");
        goto end;
    }
    devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (devnull == -1) {
        set_err(err, sizeof err, "/dev/null: %s", strerror(errno));
        goto end;
    }
    if (log_path != NULL) {
        logfd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (logfd == -1) {
            set_err(err, sizeof err, "%s: %s", log_path, strerror(errno));
            goto end;
        }
    }
    if (body_path != NULL) {
        /* Mapped and faulted in before the clock, and never inherited: the
         * child's peak RSS must not count our copy of the payload. */
        struct stat sb;
        int bfd = open(body_path, O_RDONLY | O_CLOEXEC);
        if (bfd == -1 || fstat(bfd, &sb) == -1 || sb.st_size <= 0) {
            set_err(err, sizeof err, "%s: %s", body_path, bfd == -1 ? strerror(errno) : "empty");
            if (bfd != -1)
                close(bfd);
            goto end;
        }
        body_len = (size_t)sb.st_size;
        body = mmap(NULL, body_len, PROT_READ, MAP_PRIVATE | MAP_POPULATE, bfd, 0);
        close(bfd);
        if (body == MAP_FAILED || madvise(body, body_len, MADV_DONTFORK) == -1) {
            set_err(err, sizeof err, "mmap %s: %s", body_path, strerror(errno));
            goto end;
        }
        if (bytes <= 0)
            bytes = (double)body_len;
    }
    /* Blocked from here so the child's exit is never missed by sigtimedwait;
     * the child gets the old mask back before exec. */
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_BLOCK, &chld, &oldmask);
    fflush(stdout);

    if (pre_cmd != NULL && (rc = run_hook(pre_cmd, devnull)) != 0) {
        set_err(err, sizeof err, "--pre exited with %d", rc);
        goto end;
    }

    t0 = now_ms();
    deadline = t0 + timeout_s * 1e3;
    pid = fork();
    if (pid == -1) {
        set_err(err, sizeof err, "fork: %s", strerror(errno));
        goto end;
    }
    if (pid == 0) {
        setpgid(0, 0);
        sigprocmask(SIG_SETMASK, &oldmask, NULL);
        for (int k = 0; k < nenv; k++)
            putenv((char *)envs[k]);
        dup2(devnull, 0);
        dup2(devnull, 1);
        dup2(logfd != -1 ? logfd : devnull, 2);
        execvp(cargv[0], cargv);
        _exit(127);
    }
    setpgid(pid, pid); /* also here: no window where kill(-pid) misses */

    if (exit_only) {
        if (reap_by(pid, deadline, &st, &ru) == -1) {
            set_err(err, sizeof err, "timeout waiting for exit");
            goto end;
        }
        cycle_ms = now_ms() - t0;
        goto reaped;
    }

    snprintf(req, sizeof req,
             "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n\r\n",
             health, port);
    for (;;) {
        if (wait4(pid, &st, WNOHANG, &ru) == pid) {
            char last[sizeof err];
            memcpy(last, err, sizeof last);
            exit_code = exit_code_of(st);
            pid = -1;
            set_err(err, sizeof err, "exited with %d before a 200 on %s (%s)",
                    exit_code, health, last[0] ? last : "no attempt");
            goto end;
        }
        attempts++;
        if (http_once(port, req, deadline, &status, err, sizeof err) == 0 &&
            status == 200) {
            ready_ms = now_ms() - t0;
            break;
        }
        if (status != 0)
            set_err(err, sizeof err, "last health status %d", status);
        if (now_ms() >= deadline) {
            set_err(err + strlen(err), sizeof err - strlen(err), "%stimeout waiting for 200",
                    err[0] ? "; " : "");
            goto end;
        }
        sleep_us(backoff_us);
        if (attempts >= 20)
            backoff_us = 200;
    }
    err[0] = '\0';
    rss_kb = read_rss_kb(pid);

    if (job == NULL) {
        kill_and_reap(pid);
        pid = -1;
        ok = 1;
        goto end;
    }
    if (body_path != NULL) {
        double p0 = now_ms();
        if (http_post_body(port, job, body, body_len, check_echo, deadline, &job_status,
                           &resp_len, &same, err, sizeof err) == -1)
            goto end;
        resp_ms = now_ms() - t0;
        post_ms = resp_ms - (p0 - t0);
    } else {
        snprintf(req, sizeof req,
                 "POST %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Length: 0\r\n"
                 "Connection: close\r\n\r\n",
                 job, port);
        if (http_once(port, req, deadline, &job_status, err, sizeof err) == -1)
            goto end;
        resp_ms = now_ms() - t0;
    }
    if (reap_by(pid, deadline, &st, &ru) == -1) {
        set_err(err, sizeof err, "timeout waiting for exit after the job response");
        goto end;
    }
    cycle_ms = now_ms() - t0;
reaped:
    exit_code = exit_code_of(st);
    maxrss_kb = ru.ru_maxrss;
    pid = -1;
    if (exit_only && exit_code != 0) {
        set_err(err, sizeof err, "exited with %d", exit_code);
        goto end;
    }
    if (check_echo && same != 1) {
        set_err(err, sizeof err, "response body (%zu bytes) differs from --body (%zu bytes)",
                resp_len, body_len);
        goto end;
    }
    if (span != NULL && (span_ms = log_span(log_path, span)) < 0) {
        set_err(err, sizeof err, "--span '%s' not found in %s", span, log_path);
        goto end;
    }
    if (post_cmd != NULL && (rc = run_hook(post_cmd, devnull)) != 0) {
        set_err(err, sizeof err, "--post exited with %d", rc);
        goto end;
    }
    ok = 1;
end:
    if (pid > 0)
        kill_and_reap(pid);
    printf("{\"label\":");
    json_str(label);
    printf(",\"ok\":%s", ok ? "true" : "false");
    if (!exit_only)
        printf(",\"ready_ms\":%.3f,\"rss_kb\":%ld,\"health_attempts\":%d", ready_ms, rss_kb,
               attempts);
    if (job != NULL)
        printf(",\"job_status\":%d,\"resp_ms\":%.3f", job_status, resp_ms);
    if (job != NULL || exit_only)
        printf(",\"cycle_ms\":%.3f,\"maxrss_kb\":%ld", cycle_ms, maxrss_kb);
    if (body_path != NULL)
        printf(",\"body_bytes\":%zu,\"resp_bytes\":%zu,\"post_ms\":%.3f", body_len, resp_len,
               post_ms);
    if (check_echo)
        printf(",\"echo_same\":%s", same == 1 ? "true" : "false");
    if (span != NULL)
        printf(",\"span_ms\":%.3f", span_ms);
    if (bytes > 0) {
        if ((tp = mbps(bytes, cycle_ms)) > 0)
            printf(",\"cycle_mbps\":%.1f", tp);
        if ((tp = mbps(bytes, post_ms)) > 0)
            printf(",\"post_mbps\":%.1f", tp);
        if ((tp = mbps(bytes, span_ms)) > 0)
            printf(",\"span_mbps\":%.1f", tp);
    }
    printf(",\"exit_code\":%d", exit_code);
    if (pre != NULL || post != NULL)
        printf(",\"id\":\"%s\"", id);
    if (!ok) {
        printf(",\"error\":");
        json_str(err[0] ? err : "unknown");
    }
    printf("}\n");
    if (devnull != -1)
        close(devnull);
    if (logfd != -1)
        close(logfd);
    if (body != MAP_FAILED)
        munmap(body, body_len);
    free(pre_cmd);
    free(post_cmd);
    if (cargv != NULL) {
        for (int k = 0; k < cargc; k++)
            free(cargv[k]);
        free(cargv);
    }
    return ok ? 0 : 1;
}
