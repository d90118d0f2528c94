/* resp_test.c -- the Redis commands conn.c formats itself, and the number
 * formatting they and the status record use. */
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/buf.h"
#include "../../consumer/redis/conn.h"
#include "test.h"

/* rbatch_addv writes what hiredis's redisFormatCommandArgv writes, byte
 * for byte: binary strings, empty ones, NUL inside, long ones, C strings. */
static void t_resp_like_hiredis(void) {
    static char big[100003];
    memset(big, 'x', sizeof(big));
    const char *argv[] = {"EVAL", "", "a\0b\r\n", big, "1", "k"};
    const size_t lens[] = {4, 0, 5, sizeof(big), 1, 1};
    for (int argc = 0; argc <= 6; argc++) {
        for (int use_lens = 0; use_lens <= 1; use_lens++) {
            if (!use_lens && argc > 3) continue; /* big and "a\0b" are not C strings */
            char *want = NULL;
            int wlen = redisFormatCommandArgv(&want, argc, argv, use_lens ? lens : NULL);
            rbatch b;
            rbatch_init(&b);
            rbatch_addv(&b, argc, argv, use_lens ? lens : NULL);
            if (wlen < 0 || b.len[0] != (size_t)wlen || memcmp(b.cmd[0], want, (size_t)wlen) != 0)
                T_FAIL("argc %d (lens %d): %zu bytes, hiredis %d", argc, use_lens, b.len[0], wlen);
            rbatch_free(&b);
            redisFreeCommand(want);
        }
    }
}

static void t_i64_like_printf(void) {
    const int64_t vs[] = {0, 1, -1, 9, 10, -10, 99, 100, 1000000007, -2147483648LL, INT64_MAX, INT64_MIN};
    for (size_t i = 0; i < sizeof(vs) / sizeof(vs[0]); i++) {
        char a[32], b[32];
        size_t n = buf_i64(a, vs[i]);
        snprintf(b, sizeof(b), "%" PRId64, vs[i]);
        ASSERT_EQ_STR(a, b);
        ASSERT_EQ_INT(n, strlen(b));
    }
}

const test_case resp_tests[] = {
    {"resp: commands formatted as hiredis formats them", t_resp_like_hiredis},
    {"buf_i64: decimal as printf writes it", t_i64_like_printf},
    {NULL, NULL},
};
