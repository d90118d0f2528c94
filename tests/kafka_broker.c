/*
 * kafka_broker - Kafka-protocol test broker built on librdkafka's mock cluster.
 *
 * Usage:
 *   kafka_broker [--brokers N] [--port-file FILE] [--control FIFO]
 *                [--group-initial-rebalance-delay-ms MS] TOPIC[:PARTITIONS] ...
 *
 *   --brokers N        number of mock brokers, ids 1..N (default 1)
 *   --port-file FILE   also write the bootstrap address (plus newline) to FILE,
 *                      atomically (written to FILE.tmp.PID, then renamed)
 *   --control FIFO     read commands from FIFO too; it is created (mode 0600)
 *                      if missing and removed on exit if we created it.  It is
 *                      opened O_RDWR, so writers may come and go freely.
 *   --group-initial-rebalance-delay-ms MS
 *                      consumer-group initial rebalance delay (default 0).
 *                      Needs rd_kafka_mock_group_initial_rebalance_delay_ms(),
 *                      looked up at run time; librdkafka 2.0.2 lacks it and
 *                      hard-codes 3000 ms, in which case a warning is logged.
 *
 * Topics are created with PARTITIONS partitions (default 1), replication 1.
 * The first stdout line is the bootstrap address ("127.0.0.1:PORT[,...]").
 *
 * Commands (one per line, from stdin and/or the control FIFO); each gets one
 * reply line on stdout, "ok ..." or "error ...":
 *   down | up              all brokers down / up
 *   down ID | up ID        one broker (ID in 1..N)
 *   create TOPIC[:PARTS]   create a topic
 *   ping                   replies "ok pong"
 * EOF on stdin only stops reading stdin.  SIGTERM/SIGINT shut down cleanly
 * (mock cluster and client destroyed, exit status 0).  Events go to stderr.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#define LINE_MAX_LEN 1024
#define MAX_PARTITIONS 10000
#define MAX_BROKERS 64

typedef void (*rebalance_delay_fn)(rd_kafka_mock_cluster_t *, int32_t);

struct input {
    int fd;
    const char *name;
    int open;      /* still polled */
    int overflow;  /* discarding the rest of an over-long line */
    size_t len;
    char buf[LINE_MAX_LEN];
};

static volatile sig_atomic_t g_stop;
static volatile sig_atomic_t g_signo;

static rd_kafka_mock_cluster_t *g_mcluster;
static int g_brokers = 1;

static void on_signal(int signo)
{
    g_signo = signo;
    g_stop = 1;
}

static void logmsg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void logmsg(const char *fmt, ...)
{
    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fprintf(stderr, "kafka_broker[%ld]: %s\n", (long)getpid(), line);
    fflush(stderr);
}

static void reply(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void reply(const char *fmt, ...)
{
    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    printf("%s\n", line);
    fflush(stdout);
    logmsg("reply: %s", line);
}

static void usage(FILE *out)
{
    fputs("usage: kafka_broker [--brokers N] [--port-file FILE] [--control FIFO]\n"
          "                    [--group-initial-rebalance-delay-ms MS]\n"
          "                    TOPIC[:PARTITIONS] ...\n"
          "commands (stdin or FIFO): down | up | down ID | up ID |"
          " create TOPIC[:PARTITIONS] | ping\n",
          out);
}

/* Parses a decimal int in [lo, hi]; returns 0 on success. */
static int parse_int(const char *s, long lo, long hi, int *out)
{
    char *end;
    long v;
    if (!s || !*s)
        return -1;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || *end || v < lo || v > hi)
        return -1;
    *out = (int)v;
    return 0;
}

/* Splits "TOPIC[:PARTITIONS]" into name (copied into name[]) and count. */
static int parse_topic(const char *spec, char *name, size_t namesz, int *parts,
                       const char **why)
{
    const char *colon = strrchr(spec, ':');
    size_t n = colon ? (size_t)(colon - spec) : strlen(spec);
    size_t i;

    *parts = 1;
    if (colon && parse_int(colon + 1, 1, MAX_PARTITIONS, parts)) {
        *why = "bad partition count";
        return -1;
    }
    if (n == 0 || n >= namesz || n > 249) {
        *why = "bad topic name length";
        return -1;
    }
    for (i = 0; i < n; i++) {
        char c = spec[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-')) {
            *why = "topic name must match [A-Za-z0-9._-]+";
            return -1;
        }
    }
    memcpy(name, spec, n);
    name[n] = '\0';
    return 0;
}

static int create_topic(const char *spec, char *msg, size_t msgsz)
{
    char name[256];
    int parts;
    const char *why = "";
    rd_kafka_resp_err_t err;

    if (parse_topic(spec, name, sizeof name, &parts, &why)) {
        snprintf(msg, msgsz, "create %s: %s", spec, why);
        return -1;
    }
    err = rd_kafka_mock_topic_create(g_mcluster, name, parts, 1);
    if (err) {
        snprintf(msg, msgsz, "create %s: %s", name, rd_kafka_err2str(err));
        return -1;
    }
    snprintf(msg, msgsz, "create %s %d", name, parts);
    return 0;
}

static int set_updown(int up, int id, char *msg, size_t msgsz)
{
    const char *verb = up ? "up" : "down";
    int first = id > 0 ? id : 1;
    int last = id > 0 ? id : g_brokers;
    int b;

    for (b = first; b <= last; b++) {
        rd_kafka_resp_err_t err =
            up ? rd_kafka_mock_broker_set_up(g_mcluster, b)
               : rd_kafka_mock_broker_set_down(g_mcluster, b);
        if (err) {
            snprintf(msg, msgsz, "%s %d: %s", verb, b, rd_kafka_err2str(err));
            return -1;
        }
        logmsg("broker %d %s", b, verb);
    }
    if (id > 0)
        snprintf(msg, msgsz, "%s %d", verb, id);
    else
        snprintf(msg, msgsz, "%s all (%d)", verb, g_brokers);
    return 0;
}

static void handle_command(const char *src, char *line)
{
    char msg[512];
    char *save = NULL;
    char *cmd, *arg, *extra;
    int id = 0;
    size_t n = strlen(line);

    while (n > 0 && (line[n - 1] == '\r' || line[n - 1] == ' ' ||
                     line[n - 1] == '\t'))
        line[--n] = '\0';
    cmd = strtok_r(line, " \t", &save);
    if (!cmd)
        return; /* blank line: ignore silently */
    arg = strtok_r(NULL, " \t", &save);
    extra = strtok_r(NULL, " \t", &save);
    logmsg("command from %s: %s%s%s", src, cmd, arg ? " " : "", arg ? arg : "");

    if (extra) {
        reply("error %s: too many arguments", cmd);
    } else if (!strcmp(cmd, "down") || !strcmp(cmd, "up")) {
        int up = cmd[0] == 'u';
        if (arg && parse_int(arg, 1, g_brokers, &id)) {
            reply("error %s %s: broker id must be 1..%d", cmd, arg, g_brokers);
            return;
        }
        if (set_updown(up, id, msg, sizeof msg))
            reply("error %s", msg);
        else
            reply("ok %s", msg);
    } else if (!strcmp(cmd, "create")) {
        if (!arg)
            reply("error create: missing TOPIC[:PARTITIONS]");
        else if (create_topic(arg, msg, sizeof msg))
            reply("error %s", msg);
        else
            reply("ok %s", msg);
    } else if (!strcmp(cmd, "ping")) {
        reply("ok pong");
    } else {
        reply("error unknown command: %s", cmd);
    }
}

/* Reads what is available on in->fd, dispatching complete lines.
 * Returns 0 normally, -1 on EOF/error (caller stops polling the fd). */
static int drain_input(struct input *in)
{
    char chunk[4096];
    ssize_t r = read(in->fd, chunk, sizeof chunk);
    ssize_t i;

    if (r < 0) {
        if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
            return 0;
        logmsg("%s: read error: %s; no longer reading it", in->name,
               strerror(errno));
        return -1;
    }
    if (r == 0) {
        if (in->len > 0 && !in->overflow) {
            in->buf[in->len] = '\0';
            handle_command(in->name, in->buf);
        }
        in->len = 0;
        in->overflow = 0;
        return -1;
    }
    for (i = 0; i < r; i++) {
        char c = chunk[i];
        if (c == '\n') {
            if (in->overflow) {
                reply("error line too long");
            } else {
                in->buf[in->len] = '\0';
                handle_command(in->name, in->buf);
            }
            in->len = 0;
            in->overflow = 0;
        } else if (!in->overflow) {
            if (in->len + 1 >= sizeof in->buf)
                in->overflow = 1;
            else
                in->buf[in->len++] = c;
        }
    }
    return 0;
}

static int write_port_file(const char *path, const char *bootstraps)
{
    char tmp[PATH_MAX];
    FILE *f;
    int n = snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());

    if (n < 0 || (size_t)n >= sizeof tmp) {
        logmsg("port file path too long: %s", path);
        return -1;
    }
    f = fopen(tmp, "w");
    if (!f) {
        logmsg("cannot create %s: %s", tmp, strerror(errno));
        return -1;
    }
    if (fprintf(f, "%s\n", bootstraps) < 0 || fflush(f) != 0 ||
        fsync(fileno(f)) != 0) {
        logmsg("cannot write %s: %s", tmp, strerror(errno));
        fclose(f);
        unlink(tmp);
        return -1;
    }
    if (fclose(f) != 0 || rename(tmp, path) != 0) {
        logmsg("cannot rename %s to %s: %s", tmp, path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    logmsg("wrote bootstrap address to %s", path);
    return 0;
}

/* Opens (creating if needed) the control FIFO.  Returns fd or -1. */
static int open_control(const char *path, int *created)
{
    struct stat st;
    int fd;

    *created = 0;
    if (mkfifo(path, 0600) == 0) {
        *created = 1;
    } else if (errno != EEXIST) {
        logmsg("mkfifo %s: %s", path, strerror(errno));
        return -1;
    }
    /* O_RDWR: we hold a writer ourselves, so the FIFO never reports EOF
     * when external writers close; O_NONBLOCK so open never blocks. */
    fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        logmsg("open %s: %s", path, strerror(errno));
        goto fail;
    }
    if (fstat(fd, &st) != 0 || !S_ISFIFO(st.st_mode)) {
        logmsg("%s is not a FIFO", path);
        close(fd);
        goto fail;
    }
    logmsg("control FIFO %s opened%s", path, *created ? " (created)" : "");
    return fd;
fail:
    if (*created)
        unlink(path);
    *created = 0;
    return -1;
}

static void install_signals(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = on_signal;
    sa.sa_flags = 0; /* no SA_RESTART: let poll() return EINTR */
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    /* Reply readers (pipes) may go away; never die of SIGPIPE. */
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
}

/* If the caller closed fd 0/1/2, park /dev/null there: otherwise sockets
 * opened later by librdkafka could land on fd 0 and we would read from it. */
static void ensure_std_fds(void)
{
    int fd;
    for (fd = 0; fd <= 2; fd++) {
        if (fcntl(fd, F_GETFD) == -1 && errno == EBADF) {
            int nfd = open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY);
            if (nfd >= 0 && nfd != fd) {
                dup2(nfd, fd);
                close(nfd);
            }
        }
    }
}

static void apply_rebalance_delay(int delay_ms, int explicit_opt)
{
    rebalance_delay_fn fn;
    void *sym = dlsym(RTLD_DEFAULT,
                      "rd_kafka_mock_group_initial_rebalance_delay_ms");

    if (!sym) {
        logmsg("%s: rd_kafka_mock_group_initial_rebalance_delay_ms() not in "
               "librdkafka %s; consumer groups use its built-in initial "
               "rebalance delay (3000 ms in 2.0.x)",
               explicit_opt ? "warning" : "note", rd_kafka_version_str());
        return;
    }
    memcpy(&fn, &sym, sizeof fn);
    fn(g_mcluster, (int32_t)delay_ms);
    logmsg("group initial rebalance delay set to %d ms", delay_ms);
}

int main(int argc, char **argv)
{
    const char *port_file = NULL;
    const char *control_path = NULL;
    int rebalance_delay_ms = 0;
    int rebalance_explicit = 0;
    int control_created = 0;
    int ntopics = 0;
    int i, rc = 0;
    char errstr[512];
    char msg[512];
    rd_kafka_conf_t *conf;
    rd_kafka_t *rk;
    const char *bootstraps;
    struct input inputs[2];
    int ninputs = 0;

    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;

        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--brokers")) {
            if (parse_int(val, 1, MAX_BROKERS, &g_brokers)) {
                fprintf(stderr, "kafka_broker: --brokers needs 1..%d\n",
                        MAX_BROKERS);
                return 2;
            }
            i++;
        } else if (!strcmp(a, "--port-file")) {
            if (!val) {
                usage(stderr);
                return 2;
            }
            port_file = val;
            i++;
        } else if (!strcmp(a, "--control")) {
            if (!val) {
                usage(stderr);
                return 2;
            }
            control_path = val;
            i++;
        } else if (!strcmp(a, "--group-initial-rebalance-delay-ms")) {
            if (parse_int(val, 0, 600000, &rebalance_delay_ms)) {
                fprintf(stderr, "kafka_broker: --group-initial-rebalance-"
                                "delay-ms needs 0..600000\n");
                return 2;
            }
            rebalance_explicit = 1;
            i++;
        } else if (!strcmp(a, "--")) {
            ntopics += argc - i - 1;
            break;
        } else if (a[0] == '-') {
            fprintf(stderr, "kafka_broker: unknown option %s\n", a);
            usage(stderr);
            return 2;
        } else {
            char name[256];
            int parts;
            const char *why = "";
            if (parse_topic(a, name, sizeof name, &parts, &why)) {
                fprintf(stderr, "kafka_broker: %s: %s\n", a, why);
                return 2;
            }
            ntopics++;
        }
    }
    (void)ntopics; /* zero topics is allowed: create them later */

    ensure_std_fds();
    install_signals();

    conf = rd_kafka_conf_new();
    /* log_level 4: hide the harmless "No bootstrap.servers" notice of the
     * cluster-owning client (it never connects anywhere itself). */
    if (rd_kafka_conf_set(conf, "client.id", "kafka_broker", errstr,
                          sizeof errstr) != RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(conf, "log_level", "4", errstr, sizeof errstr) !=
            RD_KAFKA_CONF_OK) {
        logmsg("conf: %s", errstr);
        rd_kafka_conf_destroy(conf);
        return 1;
    }
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (!rk) {
        logmsg("rd_kafka_new: %s", errstr);
        rd_kafka_conf_destroy(conf);
        return 1;
    }
    g_mcluster = rd_kafka_mock_cluster_new(rk, g_brokers);
    if (!g_mcluster) {
        logmsg("rd_kafka_mock_cluster_new(%d) failed", g_brokers);
        rd_kafka_destroy(rk);
        return 1;
    }
    bootstraps = rd_kafka_mock_cluster_bootstraps(g_mcluster);
    logmsg("librdkafka %s mock cluster with %d broker(s) at %s",
           rd_kafka_version_str(), g_brokers, bootstraps);

    apply_rebalance_delay(rebalance_delay_ms, rebalance_explicit);

    /* Create the topics named on the command line (options skipped). */
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--")) {
            for (i++; i < argc; i++) {
                if (create_topic(argv[i], msg, sizeof msg)) {
                    logmsg("error: %s", msg);
                    rc = 1;
                    goto out;
                }
                logmsg("%s", msg);
            }
            break;
        }
        if (a[0] == '-') {
            i++; /* every option takes a value */
            continue;
        }
        if (create_topic(a, msg, sizeof msg)) {
            logmsg("error: %s", msg);
            rc = 1;
            goto out;
        }
        logmsg("%s", msg);
    }

    if (control_path) {
        int fd = open_control(control_path, &control_created);
        if (fd < 0) {
            rc = 1;
            goto out;
        }
        inputs[ninputs].fd = fd;
        inputs[ninputs].name = control_path;
        inputs[ninputs].open = 1;
        inputs[ninputs].overflow = 0;
        inputs[ninputs].len = 0;
        ninputs++;
    }
    inputs[ninputs].fd = STDIN_FILENO;
    inputs[ninputs].name = "stdin";
    inputs[ninputs].open = 1;
    inputs[ninputs].overflow = 0;
    inputs[ninputs].len = 0;
    ninputs++;

    printf("%s\n", bootstraps);
    fflush(stdout);
    if (port_file && write_port_file(port_file, bootstraps)) {
        rc = 1;
        goto out;
    }
    logmsg("serving; SIGTERM/SIGINT to stop");

    while (!g_stop) {
        struct pollfd pfds[2];
        int map[2];
        int n = 0, j, pr;

        for (j = 0; j < ninputs; j++) {
            if (!inputs[j].open)
                continue;
            pfds[n].fd = inputs[j].fd;
            pfds[n].events = POLLIN;
            pfds[n].revents = 0;
            map[n++] = j;
        }
        pr = poll(pfds, (nfds_t)n, 100);
        if (pr < 0) {
            if (errno == EINTR)
                continue;
            logmsg("poll: %s", strerror(errno));
            rc = 1;
            break;
        }
        for (j = 0; j < n && !g_stop; j++) {
            struct input *in = &inputs[map[j]];
            if (pfds[j].revents & POLLNVAL) {
                logmsg("%s is not open; no longer reading it", in->name);
                in->open = 0;
            } else if (pfds[j].revents & (POLLIN | POLLHUP | POLLERR)) {
                if (drain_input(in)) {
                    if (in->fd == STDIN_FILENO)
                        logmsg("EOF on stdin; still serving");
                    in->open = 0;
                }
            }
        }
    }
    if (g_stop)
        logmsg("caught signal %d, shutting down", (int)g_signo);

out:
    for (i = 0; i < ninputs; i++)
        if (inputs[i].fd != STDIN_FILENO)
            close(inputs[i].fd);
    if (control_created && unlink(control_path) == 0)
        logmsg("removed control FIFO %s", control_path);
    rd_kafka_mock_cluster_destroy(g_mcluster);
    rd_kafka_destroy(rk);
    logmsg("stopped");
    return rc;
}
