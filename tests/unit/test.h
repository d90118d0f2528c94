/* test.h -- a tiny test harness, in the manner of hiredis's test_cond.
 *
 * Assertions print both values and never vanish under NDEBUG. Each test
 * function prints "PASS name" or "FAIL name: why"; tests/harness/run.sh counts
 * those lines and prints the suite's "N passed, N failed". */
#ifndef ONESHOT_TEST_H
#define ONESHOT_TEST_H

#include <stdio.h>
#include <string.h>

extern int t_failed_now; /* the current test has failed */
extern const char *t_name;

#define T_FAIL(...)                                                   \
    do {                                                              \
        if (!t_failed_now) printf("FAIL %s: ", t_name);               \
        else printf("     %s: ", t_name);                             \
        printf(__VA_ARGS__);                                          \
        printf(" (%s:%d)\n", __FILE__, __LINE__);                     \
        t_failed_now = 1;                                             \
    } while (0)

#define ASSERT_TRUE(c) \
    do { if (!(c)) T_FAIL("expected %s", #c); } while (0)
#define ASSERT_EQ_INT(a, b)                                                          \
    do {                                                                             \
        long long a_ = (long long)(a), b_ = (long long)(b);                          \
        if (a_ != b_) T_FAIL("%s == %lld, expected %s == %lld", #a, a_, #b, b_);      \
    } while (0)
#define ASSERT_EQ_STR(a, b)                                                              \
    do {                                                                                 \
        const char *a_ = (a), *b_ = (b);                                                 \
        if (!a_ || !b_ || strcmp(a_, b_) != 0)                                           \
            T_FAIL("%s == \"%s\", expected \"%s\"", #a, a_ ? a_ : "(null)", b_ ? b_ : "(null)"); \
    } while (0)
#define ASSERT_CONTAINS(hay, needle)                                                   \
    do {                                                                               \
        const char *h_ = (hay);                                                        \
        if (!h_ || !strstr(h_, (needle)))                                              \
            T_FAIL("\"%s\" does not contain \"%s\"", h_ ? h_ : "(null)", (needle));    \
    } while (0)

typedef void (*test_fn)(void);
typedef struct test_case {
    const char *name;
    test_fn fn;
} test_case;

/* Each suite file exports a NULL-terminated table. */
extern const test_case config_tests[];
extern const test_case json_tests[];
extern const test_case exitcode_tests[];
extern const test_case outcome_tests[];
extern const test_case broker_tests[];
extern const test_case resp_tests[];

#endif
