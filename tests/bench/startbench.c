/* startbench -- time one server process from start to its first 200 on
 * GET /health, read its idle resident memory, and optionally time one job
 * cycle through to the process's exit. One run, one JSON line on stdout.
 *
 *   startbench [--label NAME] [--job PATH] [--health PATH] [--timeout S]
 *              -- CMD ARG...
 *
 * "{PORT}" anywhere in an ARG is replaced by a free loopback port (bind
 * 127.0.0.1:0, read it, close: a small race another process could win,
 * which shows up as a failed run, never as a wrong number).
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
#include <sys/socket.h>
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

/* A malloc'd copy of s with every "{PORT}" replaced by port, or NULL. */
static char *subst_port(const char *s, int port)
{
    static const char key[] = "{PORT}";
    char num[16];
    size_t n = 0, klen = sizeof key - 1, nlen;
    const char *p;
    char *out, *o;

    nlen = (size_t)snprintf(num, sizeof num, "%d", port);
    for (p = s; (p = strstr(p, key)) != NULL; p += klen)
        n++;
    out = malloc(strlen(s) + n * nlen + 1);
    if (out == NULL)
        return NULL;
    for (o = out, p = s; *p;) {
        if (strncmp(p, key, klen) == 0) {
            memcpy(o, num, nlen);
            o += nlen;
            p += klen;
        } else {
            *o++ = *p++;
        }
    }
    *o = '\0';
    return out;
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
static int reap_by(pid_t pid, double deadline, int *st)
{
    sigset_t set;
    struct timespec ts;
    double left;
    pid_t r;

    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    for (;;) {
        r = waitpid(pid, st, WNOHANG);
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
    fputs("usage: startbench [--label NAME] [--job PATH] [--health PATH] [--timeout S]"
          " -- CMD ARG...\n"
          "  {PORT} in ARGs becomes a free 127.0.0.1 port; prints one JSON line.\n",
          stderr);
}

int main(int argc, char **argv)
{
    const char *label = "run", *job = NULL, *health = "/health";
    double timeout_s = 20, t0, deadline, ready_ms = -1, resp_ms = -1, cycle_ms = -1;
    char err[256] = "", req[1024];
    char **cargv = NULL;
    int i, cargc, port, devnull = -1, status = 0, job_status = 0, st;
    int exit_code = -1, attempts = 0, ok = 0;
    long rss_kb = -1, backoff_us = 100;
    pid_t pid = -1;
    sigset_t chld, oldmask;

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
        } else {
            usage();
            return 2;
        }
    }
    if (i >= argc || timeout_s <= 0) {
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
    for (int k = 0; k < cargc; k++) {
        cargv[k] = subst_port(argv[i + k], port);
        if (cargv[k] == NULL) {
            set_err(err, sizeof err, "out of memory");
            goto end;
        }
    }
    devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (devnull == -1) {
        set_err(err, sizeof err, "/dev/null: %s", strerror(errno));
        goto end;
    }
    /* Blocked from here so the child's exit is never missed by sigtimedwait;
     * the child gets the old mask back before exec. */
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_BLOCK, &chld, &oldmask);
    fflush(stdout);

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
        dup2(devnull, 0);
        dup2(devnull, 1);
        dup2(devnull, 2);
        execvp(cargv[0], cargv);
        _exit(127);
    }
    setpgid(pid, pid); /* also here: no window where kill(-pid) misses */

    snprintf(req, sizeof req,
             "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n\r\n",
             health, port);
    for (;;) {
        if (waitpid(pid, &st, WNOHANG) == pid) {
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
    snprintf(req, sizeof req,
             "POST %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Length: 0\r\n"
             "Connection: close\r\n\r\n",
             job, port);
    if (http_once(port, req, deadline, &job_status, err, sizeof err) == -1)
        goto end;
    resp_ms = now_ms() - t0;
    if (reap_by(pid, deadline, &st) == -1) {
        set_err(err, sizeof err, "timeout waiting for exit after the job response");
        goto end;
    }
    cycle_ms = now_ms() - t0;
    exit_code = exit_code_of(st);
    pid = -1;
    ok = 1;
end:
    if (pid > 0)
        kill_and_reap(pid);
    printf("{\"label\":");
    json_str(label);
    printf(",\"ok\":%s,\"ready_ms\":%.3f,\"rss_kb\":%ld,\"health_attempts\":%d",
           ok ? "true" : "false", ready_ms, rss_kb, attempts);
    if (job != NULL)
        printf(",\"job_status\":%d,\"resp_ms\":%.3f,\"cycle_ms\":%.3f", job_status, resp_ms,
               cycle_ms);
    printf(",\"exit_code\":%d", exit_code);
    if (!ok) {
        printf(",\"error\":");
        json_str(err[0] ? err : "unknown");
    }
    printf("}\n");
    if (devnull != -1)
        close(devnull);
    if (cargv != NULL) {
        for (int k = 0; k < cargc; k++)
            free(cargv[k]);
        free(cargv);
    }
    return ok ? 0 : 1;
}
