/* fleet.c -- `oneshot fleet`: the batch-jobs platform on one machine (see
 * fleet.h and README "Fleet").
 *
 * One thread, one loop: poll(2) on a signalfd (SIGCHLD, SIGINT, SIGTERM,
 * SIGHUP) and on each replica's output pipe, waking at least every
 * --poll-ms. Each turn: pass the replicas' lines through, reap the ones
 * that ended, send the deadline signals that are due, then decide how
 * many replicas to start.
 *
 * The launch rule never starts more replicas than there are jobs to take:
 *   start = min(--max-concurrent - running, waiting - not_yet_claimed)
 * where waiting comes from the broker (backlog.h) and not_yet_claimed is
 * the running replicas that have not logged "claimed job" yet (each of
 * those is about to take one of the waiting jobs). The replica's lines are
 * read before the backlog is queried, so a claim the fleet has seen is
 * already gone from the queue: an error in the count can only start fewer
 * replicas, never more. For Kafka, whose lag still counts the messages
 * running replicas hold, every running replica is subtracted.
 *
 * Broker trouble: the fleet's own query never waits (it sets its process's
 * Redis retry budget to 0; replicas get the environment it started with):
 * a failed query is logged at warn and retried after a delay doubling from
 * --poll-ms to 10 s. A replica that exits 69 (it could not reach the
 * broker) doubles a launch delay the same way and, while the delay holds,
 * only one replica at a time is started to probe; a replica that claims a
 * job or ends in any way that shows the broker answered resets it. */
#include "fleet.h"

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
#include <sys/signalfd.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../common/buf.h"
#include "../common/clock.h"
#include "../common/exitcodes.h"
#include "../common/log.h"
#include "backlog.h"
#include "broker.h"

extern char **environ;

#define FLEET_BACKOFF_MAX_MS 10000
#define FLEET_LINE_MAX 16384     /* a longer replica line is cut (and marked) */
#define FLEET_IDLE "2"           /* --idle-timeout given to replicas unless set (or their broker's) */
#define FLEET_KILL_AFTER_S 10    /* SIGKILL this long past --term-grace after SIGTERM */
#define FLEET_READS_PER_TURN 16  /* reads of one pipe per turn, so none starves the rest */

typedef struct slot {
    pid_t pid;           /* 0: free */
    int fd;              /* read end of its stdout + stderr; -1 once closed */
    int64_t started_ms;
    int64_t term_at;     /* --deadline SIGTERM due (0: none) */
    int64_t kill_at;     /* SIGKILL due after a SIGTERM (0: none) */
    int claimed;         /* it logged "claimed job" */
    int deadline_hit;    /* the fleet stopped it at --deadline */
    int shutdown_hit;    /* the fleet stopped it on its own way out */
    size_t len;          /* bytes of a partial line in line[] */
    char *line;          /* FLEET_LINE_MAX bytes, kept across launches */
} slot;

typedef struct tally {
    long done, failed, timed_out, rejected, unavailable, idle, interrupted, other;
    long replicas, peak;
    int failures;        /* replicas that took a job and did not exit 0 */
    int config_error;    /* a replica could not run at all (78, exec failure) */
    int64_t replica_cpu_ms;
} tally;

typedef struct fleet {
    const config *cfg;   /* the fleet's own settings */
    config rcfg;         /* the replicas' effective settings */
    int json;
    int n;               /* --max-concurrent */
    slot *slots;
    int running, unclaimed;
    char exe[PATH_MAX];
    char **rargv;        /* the replica command, NULL-terminated */
    size_t rargc;
    char **renv;         /* the environment the fleet started with */
    int devnull;
    int sigfd;
    sigset_t old_mask;
    backlog *bl;
    int64_t grace_ms;    /* SIGTERM -> SIGKILL */
    /* backlog queries */
    int64_t next_query_at;
    int64_t query_delay; /* 0: the last query worked */
    int dirty;           /* a replica ended: look again now */
    long last_waiting, last_held;
    int last_running;
    /* launch backoff (exit 69) */
    int64_t backoff_ms;
    int64_t backoff_since;
    int64_t launch_not_before;
    /* the end */
    int stopping;        /* 1: SIGTERM sent to all; 2: SIGKILL sent */
    int drained;
    int64_t start_ms;
    tally t;
} fleet;

/* --- the replica command --- */

static void argv_add(char ***v, size_t *n, const char *s) {
    *v = xrealloc(*v, (*n + 2) * sizeof(char *));
    (*v)[(*n)++] = xstrdup(s);
    (*v)[*n] = NULL;
}

static void argv_free(char **v) {
    for (char **p = v; p && *p; p++) free(*p);
    free(v);
}

/* The fleet's own flags (before `--`), kept from the replicas. */
static int fleet_flag(const char *name, size_t n, int *takes_value) {
    static const struct { const char *name; int value; } own[] = {
        {"max-concurrent", 1}, {"poll-ms", 1}, {"drain", 0}, {"deadline", 1},
    };
    for (size_t i = 0; i < sizeof(own) / sizeof(own[0]); i++)
        if (strlen(own[i].name) == n && strncmp(own[i].name, name, n) == 0) {
            *takes_value = own[i].value;
            return 1;
        }
    return 0;
}

/* Drop --name V and --name=V from v[0..*n), up to a "--" (what follows
 * it is a command, not options). */
static void drop_option(char **v, size_t *n, const char *name) {
    size_t len = strlen(name), k = 0;
    for (size_t i = 0; i < *n; i++) {
        const char *a = v[i];
        if (strcmp(a, "--") == 0) {
            for (; i < *n; i++) v[k++] = v[i];
            break;
        }
        if (strncmp(a, "--", 2) == 0 && strncmp(a + 2, name, len) == 0 && (a[2 + len] == '\0' || a[2 + len] == '=')) {
            int has_value = a[2 + len] == '=';
            free(v[i]);
            if (!has_value && i + 1 < *n) free(v[++i]);
            continue;
        }
        v[k++] = v[i];
    }
    *n = k;
    if (v) v[k] = NULL;
}

/* Build F->rargv = exe run <settings before --, minus the fleet's>
 * <defaults the fleet adds> <replica options after -->, and load the
 * replicas' effective configuration into F->rcfg. -1 with a reason. */
static int build_command(fleet *F, int argc, char **argv, char *err, size_t errlen) {
    char **fwd = NULL, **post = NULL, **args = NULL;
    size_t nfwd = 0, npost = 0, nargs = 0;
    char why[512];
    int i, rc = -1;
    config probe;

    memset(&probe, 0, sizeof(probe));
    for (i = 0; i < argc && strcmp(argv[i], "--") != 0; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) != 0) continue; /* main rejected positional arguments */
        const char *name = a + 2, *eq = strchr(name, '=');
        size_t n = eq ? (size_t)(eq - name) : strlen(name);
        int value = 1;
        if (fleet_flag(name, n, &value)) {
            if (value && !eq) i++;
            continue;
        }
        argv_add(&fwd, &nfwd, a);
        if (!eq && i + 1 < argc && strcmp(name, "drain") != 0) argv_add(&fwd, &nfwd, argv[++i]);
    }
    for (i++; i < argc; i++) argv_add(&post, &npost, argv[i]);

    /* What the replicas would make of these settings alone. */
    for (size_t k = 0; k < nfwd; k++) argv_add(&args, &nargs, fwd[k]);
    for (size_t k = 0; k < npost; k++) argv_add(&args, &nargs, post[k]);
    if (config_load(&probe, (int)nargs, args, environ, 0, why, sizeof(why)) < 0) {
        snprintf(err, errlen, "replica options: %s", why);
        goto end;
    }
    argv_free(args);
    args = NULL;
    nargs = 0;

    argv_add(&F->rargv, &F->rargc, F->exe);
    argv_add(&F->rargv, &F->rargc, "run");
    for (size_t k = 0; k < nfwd; k++) argv_add(&F->rargv, &F->rargc, fwd[k]);
    /* Many replicas on one machine: no fight for port 8000. */
    if (!config_is_set(&probe, "port")) {
        argv_add(&F->rargv, &F->rargc, "--port");
        argv_add(&F->rargv, &F->rargc, "0");
    }
    /* A replica started for a job another one took leaves soon (exit 75). */
    if (!config_is_set(&probe, "idle-timeout")) {
        argv_add(&F->rargv, &F->rargc, "--idle-timeout");
        const broker *b = broker_named(probe.source);
        argv_add(&F->rargv, &F->rargc, b && b->fleet_idle_timeout ? b->fleet_idle_timeout : FLEET_IDLE);
    }
    /* The platform's deadline is the replica's too, so its own watchdog
     * normally ends the job (exit 124, re-queued with the attempt counted)
     * before the fleet must. A replica --deadline of 0 (none) or beyond the
     * fleet's is replaced: the fleet would stop such a replica with
     * SIGTERM, which gives the job back uncounted, so a job that always
     * outlasts the deadline would be retried forever. */
    int own = config_is_set(&probe, "deadline");
    if (F->cfg->deadline > 0 && own && (probe.deadline == 0 || probe.deadline > F->cfg->deadline)) {
        log_warn("replica --deadline %d%s is beyond the fleet's --deadline %d: replicas get %d", probe.deadline,
                 probe.deadline ? "" : " (none)", F->cfg->deadline, F->cfg->deadline);
        drop_option(fwd, &nfwd, "deadline");
        drop_option(post, &npost, "deadline");
        own = 0;
    }
    if (F->cfg->deadline > 0 && !own) {
        char d[24];
        snprintf(d, sizeof(d), "%d", F->cfg->deadline);
        argv_add(&F->rargv, &F->rargc, "--deadline");
        argv_add(&F->rargv, &F->rargc, d);
        if (!config_is_set(&probe, "deadline-margin")) {
            int m = F->cfg->deadline / 2 < 10 ? F->cfg->deadline / 2 : 10;
            snprintf(d, sizeof(d), "%d", m);
            argv_add(&F->rargv, &F->rargc, "--deadline-margin");
            argv_add(&F->rargv, &F->rargc, d);
        }
    }
    for (size_t k = 0; k < npost; k++) argv_add(&F->rargv, &F->rargc, post[k]);
    /* The command as the replicas will parse it. */
    if (config_load(&F->rcfg, (int)F->rargc - 2, F->rargv + 2, environ, 0, why, sizeof(why)) < 0) {
        snprintf(err, errlen, "replica options: %s", why);
        goto end;
    }
    rc = 0;
end:
    config_free(&probe);
    argv_free(fwd);
    argv_free(post);
    argv_free(args);
    return rc;
}

/* --- output of the replicas --- */

static void backoff_reset(fleet *F) {
    if (F->backoff_ms) log_info("the broker answers again: launch delay reset");
    F->backoff_ms = 0;
    F->launch_not_before = 0;
}

static void write_all(int fd, const char *p, size_t n) {
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return; /* stderr gone: nothing better to do */
        p += w;
        n -= (size_t)w;
    }
}

/* One line of a replica: its JSON object gets "pid" as the first member;
 * anything else becomes a log line of its own with the pid. */
static void pass_line(fleet *F, slot *s, char *line, size_t len, int cut) {
    buf out = BUF_INIT;
    while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == '\n')) len--;
    if (len == 0) return;
    if (!s->claimed && !cut && memmem(line, len, "claimed job (attempt", 20)) {
        s->claimed = 1;
        F->unclaimed--;
        backoff_reset(F); /* the broker answers */
    }
    if (F->json && !cut && line[0] == '{' && line[len - 1] == '}') {
        buf_printf(&out, "{\"pid\":%ld", (long)s->pid);
        if (len > 2) buf_puts(&out, ",");
        buf_append(&out, line + 1, len - 1);
        buf_puts(&out, "\n");
        write_all(2, out.data, out.len);
    } else if (F->json) {
        char f[96];
        snprintf(f, sizeof(f), "\"pid\":%ld,\"stream\":\"output\"%s", (long)s->pid, cut ? ",\"truncated\":true" : "");
        log_fields(LL_INFO, f, "%.*s", (int)len, line);
    } else {
        buf_printf(&out, "[pid %ld] ", (long)s->pid);
        buf_append(&out, line, len);
        buf_puts(&out, "\n");
        write_all(2, out.data, out.len);
    }
    buf_free(&out);
}

/* Read what the pipe holds (up to a bound per turn) and pass the complete
 * lines through. At EOF the rest is flushed and the pipe closed. Returns 1
 * when the bound was reached with more perhaps left, else 0. */
static int slot_read(fleet *F, slot *s) {
    for (int turn = 0; turn < FLEET_READS_PER_TURN; turn++) {
        ssize_t n = read(s->fd, s->line + s->len, FLEET_LINE_MAX - s->len);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return 0; /* EAGAIN: nothing more for now */
        if (n == 0) {
            if (s->len) pass_line(F, s, s->line, s->len, 0);
            s->len = 0;
            close(s->fd);
            s->fd = -1;
            return 0;
        }
        s->len += (size_t)n;
        size_t start = 0;
        for (size_t i = s->len - (size_t)n; i < s->len; i++)
            if (s->line[i] == '\n') {
                pass_line(F, s, s->line + start, i - start, 0);
                start = i + 1;
            }
        if (start == 0 && s->len == FLEET_LINE_MAX) { /* a line longer than the buffer */
            pass_line(F, s, s->line, s->len, 1);
            start = s->len;
        }
        memmove(s->line, s->line + start, s->len - start);
        s->len -= start;
    }
    return 1;
}

/* --- starting, signalling and reaping replicas --- */

static int replica_start(fleet *F, int64_t now) {
    slot *s = NULL;
    int p[2] = {-1, -1};
    pid_t parent = getpid();

    for (int i = 0; i < F->n; i++)
        if (!F->slots[i].pid) {
            s = &F->slots[i];
            break;
        }
    if (!s) return -1;
    if (pipe2(p, O_CLOEXEC) < 0) {
        log_error("pipe: %s", strerror(errno));
        return -1;
    }
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close(p[0]);
        close(p[1]);
        log_error("fork: %s", strerror(e));
        return -1;
    }
    if (pid == 0) {
        /* The child: only async-signal-safe calls until execve. Its own
         * process group, so a terminal's ^C reaches the fleet alone and
         * the fleet decides; SIGTERM when the fleet dies. */
        struct sigaction dfl;
        memset(&dfl, 0, sizeof(dfl));
        dfl.sa_handler = SIG_DFL;
        setpgid(0, 0);
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent) _exit(OS_EXIT_TERM);
        if (dup2(F->devnull, 0) < 0 || dup2(p[1], 1) < 0 || dup2(p[1], 2) < 0) _exit(127);
        if (close_range(3, ~0U, 0) < 0)
            for (int fd = 3; fd < 1024; fd++) close(fd);
        sigaction(SIGPIPE, &dfl, NULL);
        sigprocmask(SIG_SETMASK, &F->old_mask, NULL);
        execve(F->exe, F->rargv, F->renv);
        static const char msg[] = "{\"level\":\"error\",\"msg\":\"oneshot fleet: cannot execute the replica\"}\n";
        (void)!write(2, msg, sizeof(msg) - 1);
        _exit(127);
    }
    setpgid(pid, pid); /* also here: no window where -pid names nothing */
    close(p[1]);
    fcntl(p[0], F_SETFL, fcntl(p[0], F_GETFL) | O_NONBLOCK);
    if (!s->line) s->line = xmalloc(FLEET_LINE_MAX);
    s->pid = pid;
    s->fd = p[0];
    s->started_ms = now;
    s->term_at = F->cfg->deadline > 0 ? now + (int64_t)F->cfg->deadline * 1000 : 0;
    s->kill_at = 0;
    s->claimed = s->deadline_hit = s->shutdown_hit = 0;
    s->len = 0;
    F->running++;
    F->unclaimed++;
    F->t.replicas++;
    if (F->running > F->t.peak) F->t.peak = F->running;
    log_debug("started replica %ld (%d running)", (long)pid, F->running);
    return 0;
}

static void slot_term(fleet *F, slot *s, int64_t now) {
    kill(s->pid, SIGTERM);
    if (!s->kill_at) s->kill_at = now + F->grace_ms;
}

static void slot_kill(slot *s) {
    kill(-s->pid, SIGKILL); /* its process group: anything it left behind */
    kill(s->pid, SIGKILL);
    s->kill_at = 0;
}

/* --deadline and the SIGKILL after the grace. */
static void enforce_timers(fleet *F, int64_t now) {
    for (int i = 0; i < F->n; i++) {
        slot *s = &F->slots[i];
        if (!s->pid) continue;
        if (s->term_at && now >= s->term_at) {
            s->term_at = 0;
            s->deadline_hit = 1;
            char f[64];
            snprintf(f, sizeof(f), "\"replica_pid\":%ld", (long)s->pid);
            log_fields(LL_WARN, f, "replica %ld reached --deadline %ds: SIGTERM, SIGKILL in %lld s", (long)s->pid,
                       F->cfg->deadline, (long long)(F->grace_ms / 1000));
            slot_term(F, s, now);
        }
        if (s->kill_at && now >= s->kill_at) {
            log_warn("replica %ld still running %lld s after SIGTERM: SIGKILL", (long)s->pid,
                     (long long)(F->grace_ms / 1000));
            slot_kill(s);
        }
    }
}

static void backoff_grow(fleet *F, const slot *s, int64_t now) {
    if (F->backoff_ms && s->started_ms < F->backoff_since) return; /* started before: already counted */
    int64_t d = F->backoff_ms ? F->backoff_ms * 2 : F->cfg->poll_ms;
    F->backoff_ms = d > FLEET_BACKOFF_MAX_MS ? FLEET_BACKOFF_MAX_MS : d;
    F->backoff_since = now;
    F->launch_not_before = now + F->backoff_ms;
    log_warn("replica %ld could not reach the broker (exit 69): next replica in %lld ms, one at a time",
             (long)s->pid, (long long)F->backoff_ms);
}

/* Count an ended replica. */
static void tally_exit(fleet *F, slot *s, int status, int64_t now) {
    tally *t = &F->t;
    int code = -1, sig = 0, failure = 0;
    const char *kind;

    if (WIFEXITED(status))
        code = WEXITSTATUS(status);
    else if (WIFSIGNALED(status))
        sig = WTERMSIG(status);
    if (sig) {
        if (s->deadline_hit) t->timed_out++, kind = "timed_out", failure = 1;
        else if (s->shutdown_hit) t->interrupted++, kind = "interrupted";
        else t->other++, kind = "killed", failure = 1;
    } else if (code == OS_EXIT_OK) {
        t->done++, kind = "done";
        backoff_reset(F);
    } else if (code >= 1 && code <= OS_EXIT_FAILED_MAX) {
        t->failed++, kind = "failed", failure = 1;
        backoff_reset(F);
    } else if (code == OS_EXIT_REJECTED) {
        t->rejected++, kind = "rejected", failure = 1;
        backoff_reset(F);
    } else if (code == OS_EXIT_DEADLINE) {
        t->timed_out++, kind = "timed_out", failure = 1;
        backoff_reset(F);
    } else if (code == OS_EXIT_UNAVAILABLE) {
        t->unavailable++, kind = "unavailable", failure = s->claimed;
        backoff_grow(F, s, now);
    } else if (code == OS_EXIT_IDLE) {
        t->idle++, kind = "idle";
        backoff_reset(F);
    } else if ((code == OS_EXIT_TERM || code == OS_EXIT_SIGINT) && s->deadline_hit) {
        t->timed_out++, kind = "timed_out", failure = 1; /* given back to the queue */
    } else if (code == OS_EXIT_TERM || code == OS_EXIT_SIGINT) {
        t->interrupted++, kind = "interrupted"; /* given back to the queue */
    } else {
        t->other++, kind = "other", failure = 1;
        if (!s->claimed && (code == OS_EXIT_CONFIG || code == 126 || code == 127)) t->config_error = 1;
    }
    t->failures += failure;
    char f[160];
    snprintf(f, sizeof(f), "\"replica_pid\":%ld,\"exit_code\":%d,\"signal\":%d,\"outcome\":\"%s\",\"ms\":%lld",
             (long)s->pid, code, sig, kind, (long long)(now - s->started_ms));
    if (failure || sig)
        log_fields(LL_WARN, f, "replica %ld ended: %s", (long)s->pid, kind);
    else
        log_fields(LL_DEBUG, f, "replica %ld ended: %s", (long)s->pid, kind);
}

/* Reap every replica that ended: its last lines first, then the tally. */
static void reap(fleet *F) {
    for (;;) {
        int status;
        struct rusage ru;
        pid_t pid = wait4(-1, &status, WNOHANG, &ru);
        if (pid < 0 && errno == EINTR) continue;
        if (pid <= 0) return;
        slot *s = NULL;
        for (int i = 0; i < F->n; i++)
            if (F->slots[i].pid == pid) s = &F->slots[i];
        if (!s) continue;
        F->t.replica_cpu_ms += (int64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000 +
                               (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1000;
        /* Everything it wrote is in the pipe now; a process it left behind
         * may hold the pipe open, so read what is there and stop. */
        while (s->fd >= 0 && slot_read(F, s)) {
        }
        if (s->fd >= 0) {
            if (s->len) pass_line(F, s, s->line, s->len, 0);
            close(s->fd);
            s->fd = -1;
        }
        s->len = 0;
        tally_exit(F, s, status, clock_mono_ms());
        F->running--;
        if (!s->claimed) F->unclaimed--;
        s->pid = 0;
        F->dirty = 1;
    }
}

/* --- deciding --- */

static void query_failed(fleet *F, int64_t now, const char *err) {
    int64_t d = F->query_delay ? F->query_delay * 2 : F->cfg->poll_ms;
    F->query_delay = d > FLEET_BACKOFF_MAX_MS ? FLEET_BACKOFF_MAX_MS : d;
    F->next_query_at = now + F->query_delay;
    log_warn("cannot read the backlog: %s; next try in %lld ms", err, (long long)F->query_delay);
}

/* Query the backlog when it matters and start what it asks for. */
static void decide(fleet *F, int64_t now) {
    backlog_count b;
    char err[512] = "";
    int free_slots = F->n - F->running;
    int drain_check = F->cfg->drain && F->running == 0;

    if (F->stopping || F->t.config_error) return;
    if (free_slots <= 0 && !drain_check) return;
    if (!drain_check && now < F->launch_not_before) return;
    if (now < F->next_query_at && !(F->dirty && !F->query_delay)) return;
    F->dirty = 0;
    if (backlog_query(F->bl, &b, err, sizeof(err)) < 0) {
        query_failed(F, now, err);
        return;
    }
    if (F->query_delay) log_info("the backlog can be read again");
    F->query_delay = 0;
    F->next_query_at = now + F->cfg->poll_ms;
    if (b.waiting != F->last_waiting || b.held != F->last_held || F->running != F->last_running) {
        char f[160];
        snprintf(f, sizeof(f), "\"waiting\":%ld,\"held\":%ld,\"running\":%d,\"unclaimed\":%d", b.waiting, b.held,
                 F->running, F->unclaimed);
        log_fields(LL_DEBUG, f, "backlog");
        F->last_waiting = b.waiting;
        F->last_held = b.held;
        F->last_running = F->running;
    }
    if (drain_check && b.waiting == 0 && b.held == 0) {
        F->drained = 1;
        return;
    }
    long want = b.waiting - (b.includes_held ? F->running : F->unclaimed);
    long start = want < free_slots ? want : free_slots;
    if (start <= 0 || now < F->launch_not_before) return;
    if (F->backoff_ms) start = 1; /* probing the broker */
    for (long i = 0; i < start; i++)
        if (replica_start(F, now) < 0) {
            F->launch_not_before = now + F->cfg->poll_ms;
            break;
        }
    if (F->backoff_ms) F->launch_not_before = now + F->backoff_ms;
}

/* The way out: SIGTERM to every replica (each finishes its job within
 * --term-grace or gives it back), SIGKILL after the grace; the second
 * time, SIGKILL at once. */
static void stop_all(fleet *F, int64_t now, const char *why) {
    if (!F->stopping) {
        F->stopping = 1;
        log_info("%s: stopping, SIGTERM to %d replica(s), SIGKILL after %lld s", why, F->running,
                 (long long)(F->grace_ms / 1000));
        for (int i = 0; i < F->n; i++)
            if (F->slots[i].pid) {
                F->slots[i].shutdown_hit = 1;
                slot_term(F, &F->slots[i], now);
            }
    } else if (F->stopping == 1) {
        F->stopping = 2;
        log_warn("%s again: SIGKILL to %d replica(s)", why, F->running);
        for (int i = 0; i < F->n; i++)
            if (F->slots[i].pid) slot_kill(&F->slots[i]);
    }
}

static void handle_signals(fleet *F, int64_t now) {
    struct signalfd_siginfo si;
    while (read(F->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si))
        if (si.ssi_signo != SIGCHLD) stop_all(F, now, strsignal((int)si.ssi_signo));
}

/* Milliseconds until the next thing the loop must do by itself. */
static int next_timeout(const fleet *F, int64_t now) {
    int64_t at = now + F->cfg->poll_ms;
    if (F->next_query_at > now && F->next_query_at < at) at = F->next_query_at;
    if (F->launch_not_before > now && F->launch_not_before < at) at = F->launch_not_before;
    for (int i = 0; i < F->n; i++) {
        const slot *s = &F->slots[i];
        if (!s->pid) continue;
        if (s->term_at && s->term_at < at) at = s->term_at;
        if (s->kill_at && s->kill_at < at) at = s->kill_at;
    }
    return at <= now ? 0 : (int)(at - now);
}

/* --- the summary --- */

static int exit_code_of(const fleet *F) {
    if (F->t.config_error) return OS_EXIT_CONFIG;
    return F->t.failures ? 1 : 0;
}

static void summary(const fleet *F, int code) {
    const tally *t = &F->t;
    struct rusage self;
    char ts[32];
    buf b = BUF_INIT;
    double wall = (double)(clock_mono_ms() - F->start_ms) / 1000.0;
    long jobs = t->done + t->failed + t->rejected + t->timed_out;
    getrusage(RUSAGE_SELF, &self);
    int64_t own = (int64_t)(self.ru_utime.tv_sec + self.ru_stime.tv_sec) * 1000 +
                  (self.ru_utime.tv_usec + self.ru_stime.tv_usec) / 1000;
    clock_iso8601(clock_wall_ms(), ts, sizeof(ts));
    buf_printf(&b,
               "{\"ts\":\"%s\",\"level\":\"info\",\"msg\":\"fleet summary\",\"done\":%ld,\"failed\":%ld,"
               "\"timed_out\":%ld,\"rejected\":%ld,\"unavailable\":%ld,\"idle\":%ld,\"interrupted\":%ld,"
               "\"other\":%ld,\"replicas\":%ld,\"peak\":%ld,\"wall_s\":%.3f,\"jobs_per_s\":%.1f,"
               "\"cpu_ms\":%lld,\"fleet_cpu_ms\":%lld,\"source\":",
               ts, t->done, t->failed, t->timed_out, t->rejected, t->unavailable, t->idle, t->interrupted,
               t->other, t->replicas, t->peak, wall, wall > 0 ? (double)jobs / wall : 0.0,
               (long long)(own + t->replica_cpu_ms), (long long)own);
    buf_json_str(&b, F->rcfg.source, strlen(F->rcfg.source));
    buf_puts(&b, ",\"queue\":");
    buf_json_str(&b, F->rcfg.queue, strlen(F->rcfg.queue));
    buf_printf(&b, ",\"max_concurrent\":%d,\"exit_code\":%d}\n", F->n, code);
    fflush(stdout);
    write_all(1, b.data, b.len);
    buf_free(&b);
}

/* --- set-up and the loop --- */

static char **env_copy(void) {
    char **v = xcalloc(1, sizeof(char *));
    size_t n = 0;
    for (char **e = environ; e && *e; e++) argv_add(&v, &n, *e);
    return v;
}

static int setup_signals(fleet *F, char *err, size_t errlen) {
    sigset_t set;
    struct sigaction ign;
    memset(&ign, 0, sizeof(ign));
    ign.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &ign, NULL);
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    if (sigprocmask(SIG_BLOCK, &set, &F->old_mask) < 0 ||
        (F->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC)) < 0) {
        snprintf(err, errlen, "signalfd: %s", strerror(errno));
        return -1;
    }
    return 0;
}

int fleet_run(const config *cfg, const char *self, int argc, char **argv) {
    fleet F;
    char err[768] = "";
    struct pollfd *pfd = NULL;
    slot **pslot = NULL;
    int code = OS_EXIT_CONFIG;

    memset(&F, 0, sizeof(F));
    F.cfg = cfg;
    F.n = cfg->max_concurrent;
    F.devnull = F.sigfd = -1;
    F.start_ms = clock_mono_ms();
    F.json = strcmp(cfg->log_format, "json") == 0;
    F.last_waiting = F.last_held = -1;
    log_init(log_level_parse(cfg->log_level), F.json, NULL);

    ssize_t n = readlink("/proc/self/exe", F.exe, sizeof(F.exe) - 1);
    if (n > 0)
        F.exe[n] = '\0';
    else
        snprintf(F.exe, sizeof(F.exe), "%s", self);
    if (build_command(&F, argc, argv, err, sizeof(err)) < 0) {
        fprintf(stderr, "oneshot: invalid configuration: %s\n", err);
        goto end;
    }
    if (!(F.bl = backlog_open(&F.rcfg, err, sizeof(err)))) {
        fprintf(stderr, "oneshot: invalid configuration: %s\n", err);
        goto end;
    }
    F.grace_ms = ((int64_t)F.rcfg.term_grace + FLEET_KILL_AFTER_S) * 1000;
    /* The replicas get the environment as it was; the fleet itself never
     * waits inside a Redis call (see the top of this file). */
    F.renv = env_copy();
    setenv("ONESHOT_REDIS_RETRY_MS", "0", 1);
    if ((F.devnull = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0) {
        log_error("/dev/null: %s", strerror(errno));
        code = 1;
        goto end;
    }
    if (setup_signals(&F, err, sizeof(err)) < 0) {
        log_error("%s", err);
        code = 1;
        goto end;
    }
    F.slots = xcalloc((size_t)F.n, sizeof(slot));
    for (int i = 0; i < F.n; i++) F.slots[i].fd = -1;
    pfd = xcalloc((size_t)F.n + 1, sizeof(*pfd));
    pslot = xcalloc((size_t)F.n + 1, sizeof(*pslot));
    {
        char f[512];
        snprintf(f, sizeof(f), "\"max_concurrent\":%d,\"poll_ms\":%d,\"drain\":%s,\"deadline\":%d,\"source\":\"%s\"",
                 F.n, cfg->poll_ms, cfg->drain ? "true" : "false", cfg->deadline, F.rcfg.source);
        log_fields(LL_INFO, f, "fleet started: up to %d replica(s) of %s for %s %s", F.n, F.exe, F.rcfg.source,
                   F.rcfg.queue);
    }

    for (;;) {
        int64_t now = clock_mono_ms();
        enforce_timers(&F, now);
        decide(&F, now);
        if (F.drained) {
            log_info("drained: nothing queued or pending, no replica running");
            break;
        }
        if ((F.stopping || F.t.config_error) && F.running == 0) break;
        if (F.t.config_error && !F.stopping) {
            stop_all(&F, now, "a replica could not run with these options");
            continue;
        }
        int np = 0;
        pfd[np].fd = F.sigfd;
        pfd[np].events = POLLIN;
        pslot[np++] = NULL;
        for (int i = 0; i < F.n; i++)
            if (F.slots[i].pid && F.slots[i].fd >= 0) {
                pfd[np].fd = F.slots[i].fd;
                pfd[np].events = POLLIN;
                pslot[np++] = &F.slots[i];
            }
        int ready = poll(pfd, (nfds_t)np, next_timeout(&F, now));
        if (ready < 0 && errno != EINTR) {
            log_error("poll: %s", strerror(errno));
            break;
        }
        /* Lines first, then exits: a claim seen is a claim done. */
        for (int i = 1; ready > 0 && i < np; i++)
            if (pfd[i].revents) (void)slot_read(&F, pslot[i]);
        if (ready > 0 && pfd[0].revents) handle_signals(&F, clock_mono_ms());
        reap(&F);
    }
    /* Only an unexpected poll failure gets here with replicas left. */
    for (int i = 0; i < F.n; i++)
        if (F.slots[i].pid) slot_kill(&F.slots[i]);
    while (F.running > 0) {
        int status;
        pid_t pid = waitpid(-1, &status, 0);
        if (pid < 0 && errno != EINTR) break;
        for (int i = 0; pid > 0 && i < F.n; i++)
            if (F.slots[i].pid == pid) {
                F.slots[i].pid = 0;
                F.running--;
            }
    }
    code = exit_code_of(&F);
    summary(&F, code);
end:
    if (F.slots)
        for (int i = 0; i < F.n; i++) {
            if (F.slots[i].fd >= 0) close(F.slots[i].fd);
            free(F.slots[i].line);
        }
    free(F.slots);
    free(pfd);
    free(pslot);
    backlog_close(F.bl);
    if (F.sigfd >= 0) close(F.sigfd);
    if (F.devnull >= 0) close(F.devnull);
    argv_free(F.rargv);
    argv_free(F.renv);
    config_free(&F.rcfg);
    return code;
}
