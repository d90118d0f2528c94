/* log.h -- one logging function for the whole program.
 *
 * Lines go to stderr, one write(2) each, as JSON objects by default:
 *   {"ts":"...","level":"info","replica":"...","job_id":"...","msg":"...",...}
 * or as text with --log-format text. Thread-safe. */
#ifndef ONESHOT_LOG_H
#define ONESHOT_LOG_H

enum log_level { LL_DEBUG = 0, LL_INFO, LL_WARN, LL_ERROR };

/* level: LL_*; json: 1 for JSON lines, 0 for text; replica may be NULL. */
void log_init(int level, int json, const char *replica);
/* The job id put on every later line (NULL clears it). */
void log_set_job(const char *id);
int log_enabled(int level);
int log_level_parse(const char *s); /* -1 when unknown */

void log_msg(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Like log_msg with extra JSON members: fields is a fragment such as
 * "\"cpu_ms\":12,\"state\":\"failed\"" (no braces), or NULL. */
void log_fields(int level, const char *fields, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define log_debug(...) log_msg(LL_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LL_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LL_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LL_ERROR, __VA_ARGS__)

#endif
