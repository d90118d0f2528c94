/* cores/exec.c -- run any program on the job.
 *
 * The command (--core exec with `-- CMD ARGS...` or ONESHOT_EXEC, already
 * split into words by config/, never given to a shell) runs in its own
 * process group with:
 *   stdin   the job input, written as the child reads it;
 *   stdout  the result, bounded by --max-output;
 *   stderr  logged line by line with the job id ("stream":"stderr");
 *   fd 3    lines "progress N" (0..100) into the status record;
 *   env     the replica's environment plus ONESHOT_JOB_ID, ONESHOT_ATTEMPT,
 *           ONESHOT_DEADLINE_AT (unix seconds, 0 = none) and, for HTTP jobs,
 *           ONESHOT_PARAM_<NAME> per query parameter.
 * One poll(2) loop on non-blocking pipes does all four streams, so a child
 * that never reads its input, or writes much before reading, cannot
 * deadlock the replica; the loop wakes at least every 100 ms to look at the
 * cancel flag.
 *
 * Exit 0 succeeds; 1..63 fail with that code; any other code, or death by
 * a signal, fails with 1 and the reason in the error. A cancel sends
 * SIGTERM to the whole group and SIGKILL after core_cancel_grace_ms; when
 * the command itself exits, whatever it left running in its group is
 * killed. abort (the watchdog's last resort) SIGKILLs the group at once. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../common/buf.h"
#include "../../common/clock.h"
#include "../../common/log.h"
#include "core.h"

#define EXEC_TICK_MS 100            /* the cancel flag is read at least this often */
#define EXEC_DRAIN_MS 1000          /* after the command exits, wait this long for its pipes */
#define EXEC_WRITE_CHUNK (1 << 20)  /* bytes per write(2) to stdin */
#define EXEC_READ_MIN (64 * 1024)   /* spare room kept in the result buffer */
#define EXEC_PIPE_SIZE (1 << 20)    /* pipe buffer for stdin and stdout (best effort) */
#define EXEC_LINE_MAX 4000          /* a longer stderr line is cut (a log message is < 4 KiB) */
#define EXEC_PROGRESS_MAX 128       /* a longer fd 3 line is ignored */
#define EXEC_LAST_ERR 200           /* the last stderr line, quoted in the error */

/* The default search path of execvp when PATH is unset (glibc's _CS_PATH). */
#define EXEC_DEFAULT_PATH "/bin:/usr/bin"

typedef struct exec_state {
    const config *cfg;
    char *path;       /* argv[0] resolved as execvp would */
    char **sh_argv;   /* {"/bin/sh", path, args..., NULL}: execvp's ENOEXEC fallback */
    int max_fd;       /* closing fallback when close_range is missing */
    atomic_int pgid;  /* the running command's process group; 0 = none */
} exec_state;

/* Lines cut from a byte stream (stderr, fd 3). */
typedef struct lines {
    char data[EXEC_LINE_MAX];
    size_t len, max;
    int skipping; /* the current line was too long: drop up to its newline */
} lines;

/* One run of the command. */
typedef struct exec_run {
    exec_state *st;
    core_ctx *ctx;
    pid_t pid;
    int in_fd, out_fd, err_fd, prog_fd, pid_fd;
    size_t in_off;
    char *out;
    size_t out_len, out_cap, out_limit; /* out_limit = --max-output + 1 */
    int overflow;
    int cancelled;    /* the cancel reason we acted on */
    int term_sent;
    int killed;
    int64_t kill_at;  /* SIGKILL the group then (mono ms), 0 = not armed */
    int exited;
    int64_t exited_at;
    lines err_lines, prog_lines;
    char last_err[EXEC_LAST_ERR + 1];
} exec_run;

/* --- start: resolving the program --- */

static int exec_check_file(const char *path, char *err, size_t errlen) {
    struct stat sb;
    if (stat(path, &sb) < 0) {
        snprintf(err, errlen, "--exec: '%s': %s", path, strerror(errno));
        return -1;
    }
    if (!S_ISREG(sb.st_mode)) {
        snprintf(err, errlen, "--exec: '%s' is not a regular file", path);
        return -1;
    }
    if (access(path, X_OK) < 0) {
        snprintf(err, errlen, "--exec: '%s' is not executable (%s)", path, strerror(errno));
        return -1;
    }
    return 0;
}

/* Find name the way execvp will: as given when it holds a slash, else the
 * first executable regular file along PATH (an empty entry is "."). */
static char *exec_resolve(const char *name, char *err, size_t errlen) {
    if (!*name) {
        snprintf(err, errlen, "--exec: the program name is empty");
        return NULL;
    }
    if (strchr(name, '/')) return exec_check_file(name, err, errlen) < 0 ? NULL : xstrdup(name);

    const char *path = getenv("PATH");
    if (!path) path = EXEC_DEFAULT_PATH;
    int seen = 0; /* found, but not as an executable regular file */
    for (const char *p = path;;) {
        size_t n = strcspn(p, ":");
        buf cand = BUF_INIT;
        if (n) buf_append(&cand, p, n);
        else buf_puts(&cand, ".");
        buf_printf(&cand, "/%s", name);
        struct stat sb;
        if (stat(cand.data, &sb) == 0) {
            if (S_ISREG(sb.st_mode) && access(cand.data, X_OK) == 0) return buf_steal(&cand, NULL);
            seen = 1;
        }
        buf_free(&cand);
        if (!p[n]) break;
        p += n + 1;
    }
    if (seen)
        snprintf(err, errlen, "--exec: '%s' is in PATH but not an executable file", name);
    else
        snprintf(err, errlen, "--exec: '%s' not found in PATH (%.300s)", name, path);
    return NULL;
}

static int exec_init(const config *cfg, void **state, char *err, size_t errlen) {
    exec_state *st = NULL;
    *state = NULL;
    if (!cfg->exec_argv || !cfg->exec_argv[0]) {
        snprintf(err, errlen, "--core: exec needs a command (-- CMD ARGS... or ONESHOT_EXEC)");
        goto error;
    }
    st = xcalloc(1, sizeof(*st));
    st->cfg = cfg;
    atomic_init(&st->pgid, 0);
    st->path = exec_resolve(cfg->exec_argv[0], err, errlen);
    if (!st->path) goto error;
    st->sh_argv = xcalloc(cfg->exec_argc + 2, sizeof(char *));
    static char sh[] = "/bin/sh";
    st->sh_argv[0] = sh;
    st->sh_argv[1] = st->path;
    for (size_t i = 1; i < cfg->exec_argc; i++) st->sh_argv[i + 1] = cfg->exec_argv[i];
    struct rlimit rl;
    st->max_fd = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < 65536
                     ? (int)rl.rlim_cur
                     : 65536;
    log_debug("exec: %s resolved to %s", cfg->exec_argv[0], st->path);
    *state = st;
    return 0;
error:
    if (st) {
        free(st->path);
        free(st);
    }
    return -1;
}

/* --- the child's environment --- */

static int env_is_ours(const char *e) {
    return strncmp(e, "ONESHOT_JOB_ID=", 15) == 0 || strncmp(e, "ONESHOT_ATTEMPT=", 16) == 0 ||
           strncmp(e, "ONESHOT_DEADLINE_AT=", 20) == 0 || strncmp(e, "ONESHOT_PARAM_", 14) == 0;
}

/* ONESHOT_PARAM_ + the name upper-cased, anything but [A-Za-z0-9] as '_'. */
static char *env_param_name(const char *name) {
    buf b = BUF_INIT;
    buf_puts(&b, "ONESHOT_PARAM_");
    for (const char *p = name; *p; p++) {
        unsigned char c = (unsigned char)*p;
        char o = c >= 'a' && c <= 'z' ? (char)(c - 'a' + 'A')
                 : (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ? (char)c
                                                                     : '_';
        buf_append(&b, &o, 1);
    }
    return buf_steal(&b, NULL);
}

/* The environment for the command: ours minus any stale job variables,
 * then the job's. Entries from *owned_from on are malloc'd. */
static char **env_build(const core_ctx *ctx, size_t *owned_from) {
    const job *j = ctx->job;
    size_t n = 0, k = 0;
    for (char **e = environ; e && *e; e++) n++;
    char **env = xcalloc(n + 4 + j->nparams, sizeof(char *));
    for (char **e = environ; e && *e; e++)
        if (!env_is_ours(*e)) env[k++] = *e;
    *owned_from = k;

    buf b = BUF_INIT;
    buf_printf(&b, "ONESHOT_JOB_ID=%s", j->id);
    env[k++] = buf_steal(&b, NULL);
    buf_printf(&b, "ONESHOT_ATTEMPT=%d", j->attempt);
    env[k++] = buf_steal(&b, NULL);
    buf_printf(&b, "ONESHOT_DEADLINE_AT=%lld", (long long)(ctx->deadline_wall_ms / 1000));
    env[k++] = buf_steal(&b, NULL);
    size_t first_param = k;
    for (size_t i = 0; i < j->nparams; i++) {
        if (!j->params[i].name || !j->params[i].name[0]) continue;
        char *name = env_param_name(j->params[i].name);
        size_t nlen = strlen(name);
        int dup = 0; /* the first of several parameters with one name wins */
        for (size_t q = first_param; q < k && !dup; q++)
            dup = strncmp(env[q], name, nlen) == 0 && env[q][nlen] == '=';
        if (!dup) {
            buf_printf(&b, "%s=%s", name, j->params[i].value ? j->params[i].value : "");
            env[k++] = buf_steal(&b, NULL);
        }
        free(name);
    }
    env[k] = NULL;
    return env;
}

static void env_free(char **env, size_t owned_from) {
    if (!env) return;
    for (size_t i = owned_from; env[i]; i++) free(env[i]);
    free(env);
}

/* --- the child, between vfork and exec --- */

/* Only async-signal-safe system calls here, on locals: the child shares
 * the replica's memory until execve (vfork), and another thread may have
 * held the malloc lock. fds are the
 * child's ends for 0..3, errfd a close-on-exec pipe that receives errno
 * if the exec fails. Never returns. */
static void exec_child(const exec_state *st, char **env, const int fds[4], int errfd, pid_t parent) {
    int hi[5], e, efd = errfd;
    struct sigaction sa;
    sigset_t none;

    setpgid(0, 0);
    /* Die with the replica even if it is SIGKILLed (the direct child only;
     * a container's end takes the rest). */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    /* The replica blocks SIGTERM/SIGINT/SIGUSR1 in every thread and ignores
     * SIGPIPE; the command starts with a clean slate. */
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; sig++)
        if (sig != SIGKILL && sig != SIGSTOP) sigaction(sig, &sa, NULL);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);

    /* Move every end above 4 first so no dup2 below overwrites another. */
    for (int i = 0; i < 4; i++)
        if ((hi[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, 10)) < 0) goto fail;
    if ((hi[4] = fcntl(errfd, F_DUPFD_CLOEXEC, 10)) < 0) goto fail;
    efd = hi[4];
    for (int i = 0; i < 4; i++)
        if (dup2(hi[i], i) < 0) goto fail;
    if (dup3(hi[4], 4, O_CLOEXEC) < 0) goto fail;
    efd = 4;
    /* Nothing else of the replica's (sockets, files) reaches the command. */
    if (syscall(SYS_close_range, 5u, ~0u, 0u) < 0)
        for (int fd = 5; fd < st->max_fd; fd++) close(fd);

    execve(st->path, st->cfg->exec_argv, env);
    if (errno == ENOEXEC) execve("/bin/sh", st->sh_argv, env); /* as execvp: a script without #! */
fail:
    e = errno;
    (void)!write(efd, &e, sizeof(e));
    _exit(127);
}

/* vfork: the replica may hold a large input; fork would copy its page
 * tables (~7 ms for 64 MiB) and charge its pages to the command's
 * ru_maxrss. The child only makes system calls on its own locals and
 * never returns from exec_child, so sharing the memory is safe. A function
 * of its own, so no variable of the caller can be clobbered. Returns the
 * pid, or -1 with errno. */
static __attribute__((noinline)) pid_t spawn_child(const exec_state *st, char **env, const int fds[4],
                                                   int errfd) {
    pid_t parent = getpid();
    pid_t pid = vfork();
    if (pid == 0) exec_child(st, env, fds, errfd, parent);
    return pid;
}

/* --- the parent's loop --- */

static void close_fd(int *fd) {
    if (*fd >= 0) close(*fd);
    *fd = -1;
}

static void group_signal(exec_run *r, int sig) {
    if (r->pid > 0) kill(-r->pid, sig);
}

/* Ask the group to stop: SIGTERM now, SIGKILL after grace_ms (an earlier
 * SIGKILL already armed stays). */
static void group_stop(exec_run *r, int grace_ms) {
    int64_t at = clock_mono_ms() + grace_ms;
    if (!r->term_sent) {
        group_signal(r, SIGTERM);
        group_signal(r, SIGCONT); /* a stopped process would not see the SIGTERM */
        r->term_sent = 1;
    }
    if (!r->kill_at || at < r->kill_at) r->kill_at = at;
    close_fd(&r->in_fd);
}

static void lines_emit_stderr(exec_run *r, const char *s, size_t n, int truncated) {
    while (n && (s[n - 1] == '\r')) n--;
    log_fields(LL_INFO, truncated ? "\"stream\":\"stderr\",\"truncated\":true" : "\"stream\":\"stderr\"", "%.*s",
               (int)n, s);
    if (n) {
        size_t keep = n < EXEC_LAST_ERR ? n : EXEC_LAST_ERR;
        memcpy(r->last_err, s, keep);
        r->last_err[keep] = '\0';
    }
}

/* "progress N" with N in 0..100 (a fraction and a '%' are allowed). */
static void lines_emit_progress(exec_run *r, const char *s, size_t n, int truncated) {
    char line[EXEC_PROGRESS_MAX + 1];
    char *p, *end;
    if (truncated) return;
    memcpy(line, s, n);
    line[n] = '\0';
    p = line + strspn(line, " \t");
    if (strncmp(p, "progress", 8) != 0 || (p[8] != ' ' && p[8] != '\t')) goto ignored;
    p += 8;
    errno = 0;
    long v = strtol(p, &end, 10);
    if (end == p || errno) goto ignored;
    if (*end == '.') end += 1 + strspn(end + 1, "0123456789");
    if (*end == '%') end++;
    end += strspn(end, " \t\r");
    if (*end || v < 0 || v > 100) goto ignored;
    r->ctx->progress((int)v);
    log_debug("progress %ld (fd 3)", v);
    return;
ignored:
    log_debug("fd 3: ignored line '%.100s' (want 'progress N', N in 0..100)", line);
}

typedef void (*line_fn)(exec_run *r, const char *s, size_t n, int truncated);

/* Cut p[0..n) into lines; eof flushes a last line without newline. */
static void lines_feed(exec_run *r, lines *lb, const char *p, size_t n, int eof, line_fn emit) {
    while (n) {
        const char *nl = memchr(p, '\n', n);
        size_t seg = nl ? (size_t)(nl - p) : n;
        if (!lb->skipping) {
            size_t take = seg < lb->max - lb->len ? seg : lb->max - lb->len;
            memcpy(lb->data + lb->len, p, take);
            lb->len += take;
            if (take < seg) { /* too long: emit what fits, drop the rest */
                emit(r, lb->data, lb->len, 1);
                lb->len = 0;
                lb->skipping = 1;
            }
        }
        if (!nl) break;
        if (!lb->skipping) emit(r, lb->data, lb->len, 0);
        lb->len = 0;
        lb->skipping = 0;
        p = nl + 1;
        n -= seg + 1;
    }
    if (eof && lb->len && !lb->skipping) emit(r, lb->data, lb->len, 0);
    if (eof) lb->len = 0;
}

/* Read what a line stream (stderr, fd 3) has; close it at EOF. */
static void read_lines(exec_run *r, int *fd, lines *lb, line_fn emit) {
    char chunk[16384];
    for (int i = 0; i < 16; i++) { /* bounded, so one chatty stream cannot starve the others */
        ssize_t n = read(*fd, chunk, sizeof(chunk));
        if (n > 0) {
            lines_feed(r, lb, chunk, (size_t)n, 0, emit);
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) return;
        lines_feed(r, lb, "", 0, 1, emit); /* EOF or error */
        close_fd(fd);
        return;
    }
}

/* Read stdout into the result, growing it geometrically up to
 * --max-output + 1 bytes; one byte more than allowed is the overflow. */
static void read_out(exec_run *r) {
    for (int i = 0; i < 64; i++) {
        if (r->out_cap - r->out_len < EXEC_READ_MIN && r->out_cap < r->out_limit) {
            size_t cap = r->out_cap * 2;
            if (cap < r->out_len + EXEC_READ_MIN) cap = r->out_len + EXEC_READ_MIN;
            if (cap > r->out_limit) cap = r->out_limit;
            r->out = xrealloc(r->out, cap);
            r->out_cap = cap;
        }
        ssize_t n = read(r->out_fd, r->out + r->out_len, r->out_cap - r->out_len);
        if (n > 0) {
            r->out_len += (size_t)n;
            if (r->out_len > (size_t)r->st->cfg->max_output) {
                /* Stop reading (the writer gets SIGPIPE) and stop the group;
                 * the bytes so far are dropped so memory stays flat. */
                r->overflow = 1;
                close_fd(&r->out_fd);
                free(r->out);
                r->out = NULL;
                r->out_len = r->out_cap = 0;
                log_warn("the command's output exceeds --max-output %lld bytes: stopping it",
                         (long long)r->st->cfg->max_output);
                group_stop(r, core_cancel_grace_ms(r->st->cfg, CANCEL_USER));
                return;
            }
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) return;
        if (n < 0) log_warn("reading the command's stdout: %s", strerror(errno));
        close_fd(&r->out_fd);
        return;
    }
}

static void write_in(exec_run *r) {
    const job *j = r->ctx->job;
    while (r->in_fd >= 0 && r->in_off < j->input_len) {
        size_t n = j->input_len - r->in_off;
        if (n > EXEC_WRITE_CHUNK) n = EXEC_WRITE_CHUNK;
        ssize_t w = write(r->in_fd, j->input + r->in_off, n);
        if (w > 0) {
            r->in_off += (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR) continue;
        if (w < 0 && errno == EAGAIN) return;
        /* EPIPE: the command does not want (the rest of) its input. */
        if (w < 0 && errno != EPIPE) log_warn("writing the command's stdin: %s", strerror(errno));
        log_debug("the command closed its stdin after %zu of %zu input bytes", r->in_off, j->input_len);
        close_fd(&r->in_fd);
    }
    if (r->in_off >= j->input_len) close_fd(&r->in_fd);
}

/* Has the command exited? Leaves it a zombie, so its pid (and so its
 * process group id) cannot be reused until it is reaped. */
static int child_exited(pid_t pid) {
    siginfo_t si;
    memset(&si, 0, sizeof(si));
    if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) < 0) return errno == ECHILD;
    return si.si_pid == pid;
}

static void set_nonblock(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }

/* The loop: feed stdin, drain stdout/stderr/fd 3, watch the cancel flag and
 * the child, until it has exited and its pipes are drained. */
static void exec_loop(exec_run *r) {
    for (;;) {
        int64_t now = clock_mono_ms();
        int reason = atomic_load(r->ctx->cancel);
        if (reason && !r->cancelled && !r->exited) {
            int grace = core_cancel_grace_ms(r->st->cfg, reason);
            r->cancelled = reason;
            log_info("cancel: SIGTERM to the command's process group, SIGKILL in %d ms", grace);
            group_stop(r, grace);
        }
        if (r->kill_at && !r->killed && now >= r->kill_at && !r->exited) {
            log_warn("the command did not stop after SIGTERM: SIGKILL to its process group");
            group_signal(r, SIGKILL);
            r->killed = 1;
        }
        if (!r->exited && child_exited(r->pid)) {
            r->exited = 1;
            r->exited_at = now;
            /* What it left running in its group must not outlive the job. */
            group_signal(r, SIGKILL);
            close_fd(&r->in_fd);
            close_fd(&r->pid_fd);
        }
        int open_readers = (r->out_fd >= 0) + (r->err_fd >= 0) + (r->prog_fd >= 0);
        if (r->exited && !open_readers) break;
        if (r->exited && now - r->exited_at >= EXEC_DRAIN_MS) {
            log_warn("a process that left the command's process group still holds its output: not waiting");
            break;
        }

        struct pollfd pf[5];
        int n = 0, i_in = -1, i_out = -1, i_err = -1, i_prog = -1;
        if (r->in_fd >= 0) { i_in = n; pf[n++] = (struct pollfd){r->in_fd, POLLOUT, 0}; }
        if (r->out_fd >= 0) { i_out = n; pf[n++] = (struct pollfd){r->out_fd, POLLIN, 0}; }
        if (r->err_fd >= 0) { i_err = n; pf[n++] = (struct pollfd){r->err_fd, POLLIN, 0}; }
        if (r->prog_fd >= 0) { i_prog = n; pf[n++] = (struct pollfd){r->prog_fd, POLLIN, 0}; }
        if (r->pid_fd >= 0) pf[n++] = (struct pollfd){r->pid_fd, POLLIN, 0};
        int64_t timeout = EXEC_TICK_MS;
        if (r->kill_at && !r->killed && r->kill_at - now < timeout) timeout = r->kill_at - now;
        if (r->exited && r->exited_at + EXEC_DRAIN_MS - now < timeout) timeout = r->exited_at + EXEC_DRAIN_MS - now;
        if (!r->exited && r->pid_fd < 0 && !open_readers) timeout = 5; /* no pidfd: poll for the exit */
        if (timeout < 0) timeout = 0;
        int rc = poll(pf, (nfds_t)n, (int)timeout);
        if (rc < 0) {
            if (errno == EINTR) continue;
            log_error("poll: %s", strerror(errno));
            group_stop(r, 0);
            continue;
        }
        if (i_in >= 0 && pf[i_in].revents) write_in(r);
        if (i_out >= 0 && pf[i_out].revents) read_out(r);
        if (i_err >= 0 && pf[i_err].revents) read_lines(r, &r->err_fd, &r->err_lines, lines_emit_stderr);
        if (i_prog >= 0 && pf[i_prog].revents) read_lines(r, &r->prog_fd, &r->prog_lines, lines_emit_progress);
    }
}

static int64_t tv_ms(struct timeval tv) { return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000; }

/* Set outcome, exit code and error from how the command ended. */
static void exec_outcome(exec_run *r, int status, core_result *res) {
    char why[128];
    if (WIFEXITED(status)) {
        snprintf(why, sizeof(why), "exited with %d", WEXITSTATUS(status));
    } else if (WIFSIGNALED(status)) {
        const char *abbrev = sigabbrev_np(WTERMSIG(status));
        snprintf(why, sizeof(why), "killed by signal %d (SIG%s)", WTERMSIG(status), abbrev ? abbrev : "?");
    } else {
        snprintf(why, sizeof(why), "ended with status 0x%x", (unsigned)status);
    }
    if (r->cancelled) {
        core_fail(res, CORE_CANCELLED, 0, "cancelled: the command was stopped (%s)", why);
    } else if (r->overflow) {
        core_fail(res, CORE_FAILED, 500, "result exceeds --max-output %lld bytes",
                  (long long)r->st->cfg->max_output);
        res->exit_code = 1;
    } else if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        res->outcome = CORE_OK;
    } else {
        int code = WIFEXITED(status) ? WEXITSTATUS(status) : 0;
        if (r->last_err[0])
            core_fail(res, CORE_FAILED, 0, "%s: %s", why, r->last_err);
        else
            core_fail(res, CORE_FAILED, 0, "%s", why);
        res->exit_code = code >= 1 && code <= 63 ? code : 1;
    }
}

static void exec_run_job(void *state, core_ctx *ctx, core_result *res) {
    exec_state *st = state;
    exec_run r;
    int in_p[2] = {-1, -1}, out_p[2] = {-1, -1}, err_p[2] = {-1, -1}, prog_p[2] = {-1, -1};
    int exec_p[2] = {-1, -1};
    size_t owned_from = 0;
    char **env = NULL;
    struct rusage ru;
    int status = 0;

    memset(&r, 0, sizeof(r));
    r.st = st;
    r.ctx = ctx;
    r.in_fd = r.out_fd = r.err_fd = r.prog_fd = r.pid_fd = -1;
    r.err_lines.max = EXEC_LINE_MAX;
    r.prog_lines.max = EXEC_PROGRESS_MAX;
    r.out_limit = (size_t)st->cfg->max_output + 1;

    if (pipe2(in_p, O_CLOEXEC) < 0 || pipe2(out_p, O_CLOEXEC) < 0 || pipe2(err_p, O_CLOEXEC) < 0 ||
        pipe2(prog_p, O_CLOEXEC) < 0 || pipe2(exec_p, O_CLOEXEC) < 0) {
        core_fail(res, CORE_FAILED, 0, "cannot start %s: pipe: %s", st->path, strerror(errno));
        goto end;
    }
    /* Bigger pipes mean fewer wake-ups for large inputs and results. */
    fcntl(in_p[1], F_SETPIPE_SZ, EXEC_PIPE_SIZE);
    fcntl(out_p[0], F_SETPIPE_SZ, EXEC_PIPE_SIZE);
    env = env_build(ctx, &owned_from);

    int fds[4] = {in_p[0], out_p[1], err_p[1], prog_p[1]};
    r.pid = spawn_child(st, env, fds, exec_p[1]);
    if (r.pid < 0) {
        core_fail(res, CORE_FAILED, 0, "cannot start %s: vfork: %s", st->path, strerror(errno));
        goto end;
    }
    /* Both sides set the group, so kill(-pid) reaches the child from now on. */
    setpgid(r.pid, r.pid);
    atomic_store(&st->pgid, r.pid);
    close_fd(&in_p[0]);
    close_fd(&out_p[1]);
    close_fd(&err_p[1]);
    close_fd(&prog_p[1]);
    close_fd(&exec_p[1]);

    int child_errno = 0;
    ssize_t n;
    do n = read(exec_p[0], &child_errno, sizeof(child_errno));
    while (n < 0 && errno == EINTR);
    if (n == (ssize_t)sizeof(child_errno)) { /* the exec failed: nothing ran */
        while (waitpid(r.pid, &status, 0) < 0 && errno == EINTR) {}
        atomic_store(&st->pgid, 0);
        core_fail(res, CORE_FAILED, 0, "cannot run %s: %s", st->path, strerror(child_errno));
        res->exit_code = 1;
        goto end;
    }
    log_info("started %s (pid %d, %zu input bytes)", st->path, (int)r.pid, ctx->job->input_len);

    r.in_fd = in_p[1];
    r.out_fd = out_p[0];
    r.err_fd = err_p[0];
    r.prog_fd = prog_p[0];
    in_p[1] = out_p[0] = err_p[0] = prog_p[0] = -1;
    set_nonblock(r.in_fd);
    set_nonblock(r.out_fd);
    set_nonblock(r.err_fd);
    set_nonblock(r.prog_fd);
    r.pid_fd = (int)syscall(SYS_pidfd_open, r.pid, 0);
    /* For a filter (cat, convert, compress) the result is about the size of
     * the input: reserve that much address space, plus room to read the
     * EOF, so a large result never moves (untouched pages cost no memory). */
    r.out_cap = ctx->job->input_len + EXEC_READ_MIN;
    if (r.out_cap > r.out_limit) r.out_cap = r.out_limit;
    r.out = xmalloc(r.out_cap);
    if (!ctx->job->input_len) close_fd(&r.in_fd);

    exec_loop(&r);

    memset(&ru, 0, sizeof(ru));
    while (wait4(r.pid, &status, 0, &ru) < 0 && errno == EINTR) {}
    atomic_store(&st->pgid, 0);
    res->cpu_ms = tv_ms(ru.ru_utime) + tv_ms(ru.ru_stime);
    res->max_rss_kb = ru.ru_maxrss;
    exec_outcome(&r, status, res);
    {
        char f[160];
        snprintf(f, sizeof(f), "\"status\":%d,\"cpu_ms\":%lld,\"max_rss_kb\":%lld,\"result_bytes\":%zu",
                 WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), (long long)res->cpu_ms,
                 (long long)res->max_rss_kb, r.out_len);
        log_fields(res->outcome == CORE_OK ? LL_INFO : LL_WARN, f, "%s %s",
                   st->path, res->outcome == CORE_OK ? "succeeded" : res->error);
    }
    if (res->outcome == CORE_OK || res->outcome == CORE_FAILED) {
        /* The result (on failure: what the command printed, if anything). */
        if (r.out_len) {
            res->out_owned = r.out; /* now owned, and freed, by the lifecycle */
            res->out = r.out;
            res->out_len = r.out_len;
            r.out = NULL;
        } else {
            res->out = "";
            res->out_len = 0;
        }
    }
    res->content_type = NULL; /* application/octet-stream: the bytes are the program's */
end:
    close_fd(&r.in_fd);
    close_fd(&r.out_fd);
    close_fd(&r.err_fd);
    close_fd(&r.prog_fd);
    close_fd(&r.pid_fd);
    for (int i = 0; i < 2; i++) {
        close_fd(&in_p[i]);
        close_fd(&out_p[i]);
        close_fd(&err_p[i]);
        close_fd(&prog_p[i]);
        close_fd(&exec_p[i]);
    }
    free(r.out);
    env_free(env, owned_from);
}

/* From the watchdog or signal thread, right before the process exits. */
static void exec_abort(void *state) {
    exec_state *st = state;
    int pg = st ? atomic_load(&st->pgid) : 0;
    if (pg > 0) kill(-pg, SIGKILL);
}

static void exec_destroy(void *state) {
    exec_state *st = state;
    if (!st) return;
    free(st->sh_argv);
    free(st->path);
    free(st);
}

const core_ops core_exec = {
    .name = "exec",
    .init = exec_init,
    .run = exec_run_job,
    .abort = exec_abort,
    .destroy = exec_destroy,
};
