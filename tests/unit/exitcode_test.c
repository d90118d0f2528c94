/* exitcode_test.c -- the exit-code mapping. */
#include "../../common/exitcodes.h"
#include "test.h"

static void t_core_codes(void) {
    ASSERT_EQ_INT(exitcode_from_core(0), 0);
    ASSERT_EQ_INT(exitcode_from_core(1), 1);
    ASSERT_EQ_INT(exitcode_from_core(7), 7);
    ASSERT_EQ_INT(exitcode_from_core(63), 63);
    ASSERT_EQ_INT(exitcode_from_core(64), 1);
    ASSERT_EQ_INT(exitcode_from_core(65), 1); /* never mistaken for "rejected" */
    ASSERT_EQ_INT(exitcode_from_core(124), 1);
    ASSERT_EQ_INT(exitcode_from_core(255), 1);
    ASSERT_EQ_INT(exitcode_from_core(-9), 1);
}

static void t_contract_values(void) {
    ASSERT_EQ_INT(OS_EXIT_REJECTED, 65);
    ASSERT_EQ_INT(OS_EXIT_UNAVAILABLE, 69);
    ASSERT_EQ_INT(OS_EXIT_IDLE, 75);
    ASSERT_EQ_INT(OS_EXIT_CONFIG, 78);
    ASSERT_EQ_INT(OS_EXIT_DEADLINE, 124);
    ASSERT_EQ_INT(OS_EXIT_TERM, 143);
}

static void t_names(void) {
    ASSERT_EQ_STR(exitcode_name(0), "ok");
    ASSERT_EQ_STR(exitcode_name(9), "failed");
    ASSERT_EQ_STR(exitcode_name(65), "rejected");
    ASSERT_EQ_STR(exitcode_name(124), "deadline");
    ASSERT_EQ_STR(exitcode_name(200), "unknown");
}

const test_case exitcode_tests[] = {
    {"exitcode: core codes map to 0, 1..63 or 1", t_core_codes},
    {"exitcode: contract values", t_contract_values},
    {"exitcode: names", t_names},
    {NULL, NULL},
};
