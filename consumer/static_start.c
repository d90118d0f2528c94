/* static_start.c -- start-up work of the static file's C library that
 * oneshot never uses, left out (`make static` only: ONESHOT_STATIC).
 *
 * glibc's start-up for a static program (_dl_non_dynamic_init) asks
 * _dl_get_origin for the directory of the running file, kept for $ORIGIN
 * in the paths a later dlopen() searches. It reads the /proc/self/exe
 * link, and looking that up builds the /proc entries of a process that
 * has just started: a sixteenth of a one-job run's CPU samples (perf,
 * 300 runs) and 0.25 ms of its 2 ms (tests/README.md, "Where a Redis
 * cycle's time goes").
 * The static file dlopen()s nothing (plugins are refused, Kafka is linked
 * in, host names come from /etc/hosts and DNS without NSS modules), so
 * the origin is left unknown: (char *) -1, what glibc's own version
 * answers when the link cannot be read.
 *
 * Defined here, it keeps the archive member holding glibc's version out
 * of the link. A glibc that needed that member for another symbol would
 * fail the link on the duplicate, and one that stopped calling this
 * function would read the link again: tests/e2e/static.sh checks that the
 * static file does not. */
#if ONESHOT_STATIC
const char *_dl_get_origin(void);

const char *_dl_get_origin(void) { return (const char *)-1; }
#else
typedef int static_start_unused; /* ISO C: a translation unit is not empty */
#endif
