/* watchdog.c -- deadlines and signals (see watchdog.h for the contract). */
#include "watchdog.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "../common/clock.h"
#include "../common/exitcodes.h"
#include "../common/log.h"
#include "cores/core.h"

/* After a cancel the core gets its cancel grace (core_cancel_grace_ms)
 * plus ABORT_SLACK_MS before it is aborted, and the process EXIT_SLACK_MS
 * more before it exits by itself. */
#define ABORT_SLACK_MS 1000
#define EXIT_SLACK_MS 2000
/* With nothing due the thread still wakes every NAP_MS: then a deadline
 * set later than that (the heartbeat's first beat, a job's deadline) needs
 * no wake-up signal (due_before_sleep), which would cost the job's clock a
 * signal and two context switches; an idle loop costs nothing. */
#define NAP_MS 1000

static struct {
    pthread_mutex_t mu;
    pthread_t thread;
    int running;
    const config *cfg;
    atomic_int *cancel;
    watchdog_hooks hooks;
    int sigfd;            /* the watched signals, read by the thread */
    int64_t soft_at;      /* replica soft deadline, 0 = none */
    int64_t job_at;       /* job deadline, 0 = none */
    int job_active;
    int job_claimed;      /* a job was claimed (running or finishing) */
    int64_t term_at;      /* first SIGTERM, 0 = none */
    int64_t fired_at;     /* when the cancel was set, 0 = not yet */
    int64_t abort_at;     /* abort the core then (if it still runs) */
    int64_t exit_at;      /* _exit then */
    int fired_code;       /* exit code of the hard backstop */
    int aborted;
    int stop_reason;      /* for an idle replica */
    int acting;           /* an abort or a hard exit runs outside wd.mu */
    int64_t defer_at;     /* watchdog_defer: when, and what */
    void (*defer_fn)(void);
    int64_t sleep_until;  /* the thread sleeps until then, -1: awake */
    int quit;
} wd = {.mu = PTHREAD_MUTEX_INITIALIZER, .sleep_until = -1};

/* The signals the thread takes; SIGUSR1 is internal: a state change. */
static void watched_signals(sigset_t *set) {
    sigemptyset(set);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGUSR1);
}

void watchdog_block_signals(void) {
    sigset_t set;
    watched_signals(&set);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
}

static int64_t min_pos(int64_t a, int64_t b) {
    if (a <= 0) return b;
    if (b <= 0) return a;
    return a < b ? a : b;
}

/* Set the cancel flag once; arms the abort and exit backstops. */
static void fire(int reason, int code, int64_t now) {
    if (wd.fired_at) return;
    wd.fired_at = now;
    wd.abort_at = now + core_cancel_grace_ms(wd.cfg, reason) + ABORT_SLACK_MS;
    wd.exit_at = wd.abort_at + EXIT_SLACK_MS;
    wd.fired_code = code;
    atomic_store(wd.cancel, reason);
}

/* A signal came (under wd.mu). SIGINT or a second SIGTERM leave at once. */
static void take_signal(int sig) {
    if (sig == SIGINT || (sig == SIGTERM && wd.term_at)) {
        wd.acting = 1;
        pthread_mutex_unlock(&wd.mu);
        log_warn("%s: exiting at once, nothing acknowledged", sig == SIGINT ? "SIGINT" : "second SIGTERM");
        wd.hooks.abort_core();
        wd.hooks.hard_exit(sig == SIGINT ? OS_EXIT_SIGINT : OS_EXIT_TERM);
        pthread_mutex_lock(&wd.mu); /* not reached */
        return;
    }
    if (sig != SIGTERM) return; /* SIGUSR1: the state changed, look again */
    wd.term_at = clock_mono_ms();
    if (wd.job_active) {
        log_info("SIGTERM: the job may finish within --term-grace %ds", wd.cfg->term_grace);
    } else if (!wd.stop_reason) {
        log_info("SIGTERM: no job running, stopping");
        wd.stop_reason = OS_EXIT_TERM;
    }
}

/* Sleep until a signal, the io source or wait_ms (> 0) and
 * serve the io source if it is due. The signal taken, or 0. The signal is
 * taken before the io run, never after: a wake-up sent during the run
 * (an answer queued by another thread) then stays pending and ends the
 * next poll at once. Taken after the run, it was merged with the one that
 * ended this poll and consumed with it, and the answer waited for the
 * next event (tests/e2e/http.sh, the wake-up during the run). */
static int wait_event(int64_t wait_ms) {
    const watchdog_io *io = &wd.hooks.io;
    struct pollfd p[2] = {{.fd = wd.sigfd, .events = POLLIN}, {.fd = io->fd, .events = POLLIN}};
    int n = io->fd >= 0 ? 2 : 1;
    int ms = wait_ms > INT_MAX ? INT_MAX : (int)wait_ms;
    int io_ms = n == 2 ? io->timeout_ms(io->arg) : -1;
    if (io_ms >= 0 && io_ms < ms) ms = io_ms;
    int r = poll(p, (nfds_t)n, ms);
    int sig = 0;
    struct signalfd_siginfo si;
    if (r > 0 && (p[0].revents & POLLIN) && read(wd.sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si))
        sig = (int)si.ssi_signo;
    if (n == 2 && r >= 0) io->run(io->arg); /* a spare run finds nothing to do */
    return sig;
}

/* The one watchdog thread: acts on what is due, then sleeps (wait_event)
 * until the next deadline, a signal, SIGUSR1 from a state change (wake) or
 * work for the io source. A signal that comes while it is busy stays
 * pending and ends the next wait at once, so none is lost. */
static void *wd_main(void *arg) {
    (void)arg;
    pthread_mutex_lock(&wd.mu);
    while (!wd.quit) {
        int64_t now = clock_mono_ms();
        int64_t grace_end = wd.term_at ? wd.term_at + (int64_t)wd.cfg->term_grace * 1000 : 0;

        if (wd.soft_at && now >= wd.soft_at && !wd.fired_at && !wd.stop_reason) {
            if (wd.job_claimed) {
                log_warn("deadline: --deadline %ds minus --deadline-margin %ds reached%s",
                         wd.cfg->deadline, wd.cfg->deadline_margin,
                         wd.job_active ? ", cancelling the job" : " while finishing");
                fire(CANCEL_DEADLINE, OS_EXIT_DEADLINE, now);
            } else {
                log_info("deadline reached before any job was claimed");
                wd.stop_reason = OS_EXIT_IDLE;
            }
        }
        if (wd.job_active && wd.job_at && now >= wd.job_at && !wd.fired_at) {
            log_warn("deadline: the job's deadline_s is over, cancelling it");
            fire(CANCEL_DEADLINE, OS_EXIT_DEADLINE, now);
        }
        if (wd.job_active && grace_end && now >= grace_end && !wd.fired_at) {
            log_warn("SIGTERM: --term-grace %ds is over, cancelling the job", wd.cfg->term_grace);
            fire(CANCEL_TERM, OS_EXIT_TERM, now);
        }
        if (wd.fired_at && !wd.aborted && now >= wd.abort_at && wd.job_active) {
            wd.aborted = 1;
            log_warn("the core did not stop within %lld ms of the cancel: aborting it",
                     (long long)(wd.abort_at - wd.fired_at));
            wd.acting = 1;
            pthread_mutex_unlock(&wd.mu);
            wd.hooks.abort_core();
            pthread_mutex_lock(&wd.mu);
            wd.acting = 0;
            continue;
        }
        if (wd.fired_at && now >= wd.exit_at) {
            log_error("shutdown hangs %lld ms after the cancel: exiting now", (long long)(wd.exit_at - wd.fired_at));
            wd.acting = 1;
            pthread_mutex_unlock(&wd.mu);
            wd.hooks.hard_exit(wd.fired_code);
            pthread_mutex_lock(&wd.mu);
        }
        if (wd.defer_fn && now >= wd.defer_at) {
            void (*fn)(void) = wd.defer_fn;
            wd.defer_fn = NULL;
            fn(); /* under wd.mu: watchdog_defer_cancel waits for it */
        }

        /* Sleep until the next thing that can happen. */
        int64_t next = wd.defer_fn ? wd.defer_at : 0;
        if (!wd.fired_at) {
            if (!wd.stop_reason) next = min_pos(next, wd.soft_at);
            if (wd.job_active) {
                next = min_pos(next, wd.job_at);
                next = min_pos(next, grace_end);
            }
        } else {
            if (!wd.aborted && wd.job_active) next = min_pos(next, wd.abort_at);
            next = min_pos(next, wd.exit_at);
        }
        if (!next) next = clock_mono_ms() + NAP_MS; /* nothing due: a nap, not a sleep without end */
        int64_t wait_ms = next - clock_mono_ms();
        if (wait_ms <= 0) continue;
        wd.sleep_until = next;
        pthread_mutex_unlock(&wd.mu);
        int sig = wait_event(wait_ms);
        pthread_mutex_lock(&wd.mu);
        wd.sleep_until = -1;
        if (sig > 0 && !wd.quit) take_signal(sig);
    }
    pthread_mutex_unlock(&wd.mu);
    return NULL;
}

/* A state change (under wd.mu or not): make the thread look again. */
static void wake(void) {
    if (wd.running) pthread_kill(wd.thread, SIGUSR1);
}

void watchdog_wake_io(void) { wake(); }

/* Under wd.mu: something is now due at `at` (0: nothing new). Wake the
 * thread only if it sleeps past it: an awake thread looks at the state
 * before it sleeps again, and one that wakes early finds nothing to do.
 * Each wake is a signal and two context switches on the job's clock. */
static int due_before_sleep(int64_t at) {
    return at && wd.sleep_until >= 0 && at < wd.sleep_until;
}

int watchdog_start(const config *cfg, int64_t start_mono_ms, atomic_int *cancel, const watchdog_hooks *hooks) {
    wd.cfg = cfg;
    wd.cancel = cancel;
    wd.hooks = *hooks;
    if (cfg->deadline > 0)
        wd.soft_at = start_mono_ms + (int64_t)(cfg->deadline - cfg->deadline_margin) * 1000;
    sigset_t set;
    watched_signals(&set);
    wd.sigfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
    if (wd.sigfd < 0) return -1;
    if (pthread_create(&wd.thread, NULL, wd_main, NULL) != 0) {
        close(wd.sigfd);
        return -1;
    }
    wd.running = 1;
    return 0;
}

void watchdog_job_begin(int64_t deadline_mono_ms) {
    pthread_mutex_lock(&wd.mu);
    wd.job_active = 1;
    wd.job_claimed = 1;
    wd.job_at = deadline_mono_ms;
    /* SIGTERM may have come while the job was being claimed. */
    if (wd.term_at) log_info("SIGTERM came during the claim: the job gets --term-grace %ds", wd.cfg->term_grace);
    int64_t grace_end = wd.term_at ? wd.term_at + (int64_t)wd.cfg->term_grace * 1000 : 0;
    int now_due = due_before_sleep(deadline_mono_ms) || due_before_sleep(grace_end);
    pthread_mutex_unlock(&wd.mu);
    if (now_due) wake();
}

void watchdog_job_end(void) {
    pthread_mutex_lock(&wd.mu);
    wd.job_active = 0;
    wd.job_at = 0;
    pthread_mutex_unlock(&wd.mu);
    /* No wake: only deadlines went away (see due_before_sleep). */
}

int watchdog_stop_reason(void) {
    pthread_mutex_lock(&wd.mu);
    int r = wd.stop_reason;
    pthread_mutex_unlock(&wd.mu);
    return r;
}

int watchdog_defer(int64_t at_mono_ms, void (*fn)(void)) {
    if (!wd.running) return -1;
    pthread_mutex_lock(&wd.mu);
    wd.defer_at = at_mono_ms;
    wd.defer_fn = fn;
    int now_due = due_before_sleep(at_mono_ms);
    pthread_mutex_unlock(&wd.mu);
    if (now_due) wake();
    return 0;
}

void watchdog_defer_cancel(void) {
    pthread_mutex_lock(&wd.mu);
    wd.defer_fn = NULL;
    pthread_mutex_unlock(&wd.mu);
}

void watchdog_stop(void) {
    if (!wd.running) return;
    pthread_mutex_lock(&wd.mu);
    wd.quit = 1;
    int acting = wd.acting;
    pthread_mutex_unlock(&wd.mu);
    /* Asleep, or about to sleep: it sees quit whenever it wakes and does
     * nothing more, so it is left to end with the process (a wake and a
     * join are two context switches on the job's clock). An abort or a
     * hard exit under way is waited for: the hard exit never returns. */
    if (acting) pthread_join(wd.thread, NULL);
    wd.running = 0;
}
