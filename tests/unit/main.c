/* main.c -- runs every unit-test table. */
#include <stdio.h>

#include "../../common/log.h"
#include "test.h"

int t_failed_now;
const char *t_name;

int main(void) {
    const test_case *suites[] = {config_tests, json_tests, exitcode_tests, outcome_tests, broker_tests, resp_tests};
    int passed = 0, failed = 0;
    log_init(LL_ERROR, 1, "unit");
    for (size_t s = 0; s < sizeof(suites) / sizeof(suites[0]); s++) {
        for (const test_case *t = suites[s]; t->name; t++) {
            t_name = t->name;
            t_failed_now = 0;
            t->fn();
            if (t_failed_now) {
                failed++;
            } else {
                printf("PASS %s\n", t->name);
                passed++;
            }
        }
    }
    printf("unit: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
