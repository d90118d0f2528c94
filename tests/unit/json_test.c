/* json_test.c -- JSON helpers, the envelope, the status record and its times. */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "../../common/buf.h"
#include "../../common/clock.h"
#include "../../common/job.h"
#include "../../common/status.h"
#include "test.h"

static void t_json_str_escapes(void) {
    buf b = BUF_INIT;
    buf_json_str(&b, "a\"b\\c\n\t\x01", 8);
    ASSERT_EQ_STR(b.data, "\"a\\\"b\\\\c\\n\\t\\u0001\"");
    buf_reset(&b);
    buf_json_str(&b, "caf\xc3\xa9", 5); /* valid UTF-8 passes */
    ASSERT_EQ_STR(b.data, "\"caf\xc3\xa9\"");
    buf_reset(&b);
    buf_json_str(&b, "x\xff\xc3", 3); /* invalid bytes become U+FFFD */
    ASSERT_EQ_STR(b.data, "\"x\\ufffd\\ufffd\"");
    cJSON *p = cJSON_Parse(b.data);
    ASSERT_TRUE(p != NULL);
    cJSON_Delete(p);
    buf_reset(&b);
    buf_json_str(&b, "a\0b", 3); /* embedded NUL */
    ASSERT_EQ_STR(b.data, "\"a\\u0000b\"");
    buf_free(&b);
}

static void t_envelope_full(void) {
    job j = {0};
    char err[256] = "";
    const char *m = "{\"id\":\"resize-42\",\"input\":{\"duration\":3},\"deadline_s\":600,\"attempt\":2}";
    ASSERT_EQ_INT(job_parse_envelope(m, strlen(m), &j, err, sizeof(err)), 0);
    ASSERT_EQ_STR(j.id, "resize-42");
    ASSERT_EQ_STR(j.input, "{\"duration\":3}");
    ASSERT_EQ_INT(j.deadline_s, 600);
    ASSERT_EQ_INT(j.attempt, 2);
    job_free(&j);
}

static void t_envelope_raw(void) {
    const char *cases[] = {"hello world", "[1,2,3]", "{\"no_input\":1}", "42", "", "{broken"};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        job j = {0};
        char err[256] = "";
        ASSERT_EQ_INT(job_parse_envelope(cases[i], strlen(cases[i]), &j, err, sizeof(err)), 0);
        ASSERT_EQ_STR(j.input, cases[i]);
        ASSERT_EQ_STR(j.id, "");
        ASSERT_EQ_INT(j.attempt, 1);
        job_free(&j);
    }
}

static void t_envelope_string_input(void) {
    job j = {0};
    char err[256];
    const char *m = "{\"input\":\"plain text\"}";
    ASSERT_EQ_INT(job_parse_envelope(m, strlen(m), &j, err, sizeof(err)), 0);
    ASSERT_EQ_STR(j.input, "plain text");
    job_free(&j);
}

static void t_envelope_malformed(void) {
    const char *bad[] = {
        "{\"id\":7,\"input\":1}",
        "{\"id\":\"has space\",\"input\":1}",
        "{\"id\":\"\",\"input\":1}",
        "{\"id\":\"a/b\",\"input\":1}",
        "{\"input\":1,\"deadline_s\":\"10\"}",
        "{\"input\":1,\"deadline_s\":-1}",
        "{\"input\":1,\"deadline_s\":1.5}",
        "{\"input\":1,\"attempt\":0}",
        "{\"input\":1,\"attempt\":\"2\"}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        job j = {0};
        char err[256] = "";
        ASSERT_EQ_INT(job_parse_envelope(bad[i], strlen(bad[i]), &j, err, sizeof(err)), -1);
        ASSERT_CONTAINS(err, "envelope");
        ASSERT_EQ_STR(j.input, bad[i]); /* kept raw for the dead letter */
        job_free(&j);
    }
    /* 201-byte id */
    char id[202];
    memset(id, 'a', 201);
    id[201] = '\0';
    buf b = BUF_INIT;
    buf_printf(&b, "{\"id\":\"%s\",\"input\":1}", id);
    job j = {0};
    char err[256];
    ASSERT_EQ_INT(job_parse_envelope(b.data, b.len, &j, err, sizeof(err)), -1);
    job_free(&j);
    buf_free(&b);
}

static void t_envelope_roundtrip(void) {
    job j = {0}, k = {0};
    char err[256];
    snprintf(j.id, sizeof(j.id), "job-1");
    job_set_input(&j, "{\"x\":[1,2]}", 11);
    j.attempt = 3;
    j.deadline_s = 60;
    size_t len;
    char *s = job_envelope_json(&j, &len);
    ASSERT_EQ_INT(job_parse_envelope(s, len, &k, err, sizeof(err)), 0);
    ASSERT_EQ_STR(k.id, "job-1");
    ASSERT_EQ_STR(k.input, "{\"x\":[1,2]}");
    ASSERT_EQ_INT(k.attempt, 3);
    ASSERT_EQ_INT(k.deadline_s, 60);
    free(s);
    job_free(&k);
    /* non-JSON input travels as a string and comes back byte-identical */
    job_set_input(&j, "not \"json\"\n", 11);
    s = job_envelope_json(&j, &len);
    ASSERT_EQ_INT(job_parse_envelope(s, len, &k, err, sizeof(err)), 0);
    ASSERT_EQ_STR(k.input, "not \"json\"\n");
    free(s);
    job_free(&k);
    job_free(&j);
}

/* Bytes a JSON string cannot carry (invalid UTF-8, NUL) travel as
 * "input_base64" and come back byte-identical; base64 is checked. */
static void t_envelope_binary(void) {
    static const char bin[] = "\xff\xfe\x00" "a\xc3(\xed\xa0\x80z";
    job j = {0}, k = {0};
    char err[256];
    size_t len;
    snprintf(j.id, sizeof(j.id), "bin-1");
    job_set_input(&j, bin, sizeof(bin) - 1);
    j.attempt = 2;
    char *s = job_envelope_json(&j, &len);
    ASSERT_CONTAINS(s, "\"input_base64\":\"//4AYcMo7aCAeg==\"");
    ASSERT_EQ_INT(job_parse_envelope(s, len, &k, err, sizeof(err)), 0);
    ASSERT_EQ_INT(k.input_len, sizeof(bin) - 1);
    ASSERT_TRUE(memcmp(k.input, bin, sizeof(bin) - 1) == 0);
    ASSERT_EQ_INT(k.attempt, 2);
    free(s);
    job_free(&k);
    job_free(&j);
    /* every length mod 3, padding included */
    for (size_t n = 0; n < 7; n++) {
        memset(&j, 0, sizeof(j));
        memset(&k, 0, sizeof(k));
        snprintf(j.id, sizeof(j.id), "bin-2");
        job_set_input(&j, "\x80\x81\x82\x83\x84\x85\x86", n);
        s = job_envelope_json(&j, &len);
        ASSERT_EQ_INT(job_parse_envelope(s, len, &k, err, sizeof(err)), 0);
        ASSERT_EQ_INT(k.input_len, n);
        ASSERT_TRUE(n == 0 || memcmp(k.input, j.input, n) == 0);
        free(s);
        job_free(&k);
        job_free(&j);
    }
    /* a submit leaves "attempt" out */
    memset(&j, 0, sizeof(j));
    snprintf(j.id, sizeof(j.id), "sub-1");
    job_set_input(&j, "abc", 3);
    s = job_envelope_json(&j, &len);
    ASSERT_EQ_STR(s, "{\"id\":\"sub-1\",\"input\":\"abc\"}");
    free(s);
    job_free(&j);
    static const char *const bad[] = {
        "{\"input_base64\":\"YWJj\",\"input\":1}", /* both */
        "{\"input_base64\":5}",
        "{\"input_base64\":\"YWJ\"}",   /* not a multiple of 4 */
        "{\"input_base64\":\"YW=j\"}",  /* padding inside */
        "{\"input_base64\":\"YR==\"}",  /* bits under the padding */
        "{\"input_base64\":\"YW Jj\"}", /* not the alphabet */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        memset(&k, 0, sizeof(k));
        if (job_parse_envelope(bad[i], strlen(bad[i]), &k, err, sizeof(err)) != -1) T_FAIL("accepted %s", bad[i]);
        else ASSERT_CONTAINS(err, "input_base64");
        job_free(&k);
    }
    memset(&k, 0, sizeof(k));
    static const char ok[] = "{\"input_base64\":\"YWJj\"}";
    ASSERT_EQ_INT(job_parse_envelope(ok, sizeof(ok) - 1, &k, err, sizeof(err)), 0);
    ASSERT_EQ_STR(k.input, "abc");
    job_free(&k);
}

/* Strings are read with their length (cJSON's valuestring ends at an
 * escaped NUL): an id holding NUL is rejected, an input holding NUL kept
 * whole; escapes cJSON alone takes are refused; keys compare decoded. */
static void t_envelope_string_bytes(void) {
    static const char *const bad[] = {
        "{\"id\":\"batch\\u0000A\",\"input\":1}",
        "{\"id\":\"batch\\u0000\",\"input\":1}",
        "{\"id\":\"\\u0000\",\"input\":1}",
        "{\"id\":\"ok\",\"input\":\"a\\uzzzzb\"}",     /* cJSON: U+0000 */
        "{\"input_base64\":\"eA==\\u0000garbage\"}",   /* "x", then more */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        job j = {0};
        char err[256] = "";
        if (job_parse_envelope(bad[i], strlen(bad[i]), &j, err, sizeof(err)) != -1) T_FAIL("accepted %s", bad[i]);
        ASSERT_EQ_STR(j.input, bad[i]);
        job_free(&j);
    }
    job j = {0};
    char err[256] = "";
    const char *m = "{\"\\u0069d\":\"b\\u0041\",\"input\":\"x\\u0000y\\ud83d\\ude00\\n\",\"input\\u0000\":2}";
    ASSERT_EQ_INT(job_parse_envelope(m, strlen(m), &j, err, sizeof(err)), 0);
    ASSERT_EQ_STR(j.id, "bA");
    ASSERT_EQ_INT(j.input_len, 8);
    ASSERT_TRUE(memcmp(j.input, "x\0y\xf0\x9f\x98\x80\n", 8) == 0);
    job_free(&j);
    /* "input\u0000" is not "input": raw input */
    memset(&j, 0, sizeof(j));
    m = "{\"input\\u0000\":1}";
    ASSERT_EQ_INT(job_parse_envelope(m, strlen(m), &j, err, sizeof(err)), 0);
    ASSERT_EQ_STR(j.input, m);
    job_free(&j);
}

/* A re-queued envelope embeds the input as JSON only when reading it back
 * gives the same bytes; else it is a string (or input_base64). */
static void t_envelope_requeue_exact(void) {
    static const char *const cases[] = {
        "  {\"duration\":0}\n", "\t[1, 2]\r\n", " 42 ", "\"quoted\"", "{\"a\" : [1 ,2]}",
        "\xef\xbb\xbf{\"a\":1}", "{\"a\":\"x\\u0000y\"}", "9007199254740993",
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        job j = {0}, k = {0};
        char err[256];
        size_t len, n = strlen(cases[i]);
        snprintf(j.id, sizeof(j.id), "r-%zu", i);
        job_set_input(&j, cases[i], n);
        j.attempt = 2;
        char *s = job_envelope_json(&j, &len);
        ASSERT_EQ_INT(job_parse_envelope(s, len, &k, err, sizeof(err)), 0);
        ASSERT_EQ_STR(k.id, j.id);
        if (k.input_len != n || memcmp(k.input, cases[i], n) != 0) T_FAIL("case %zu came back as '%s' (%s)", i, k.input, s);
        free(s);
        job_free(&k);
        job_free(&j);
    }
    /* byte-exact JSON stays readable JSON */
    job j = {0};
    size_t len;
    snprintf(j.id, sizeof(j.id), "r");
    job_set_input(&j, "{\"a\" : [1 ,2]}", 14);
    char *s = job_envelope_json(&j, &len);
    ASSERT_EQ_STR(s, "{\"id\":\"r\",\"input\":{\"a\" : [1 ,2]}}");
    free(s);
    job_set_input(&j, " 42 ", 4);
    s = job_envelope_json(&j, &len);
    ASSERT_EQ_STR(s, "{\"id\":\"r\",\"input\":\" 42 \"}");
    free(s);
    job_free(&j);
}

static void t_status_roundtrip(void) {
    status_rec a, b;
    char err[256];
    status_init(&a);
    snprintf(a.id, sizeof(a.id), "id-9");
    snprintf(a.state, sizeof(a.state), "%s", ST_FAILED);
    snprintf(a.error, sizeof(a.error), "exit 7: \"boom\"\n");
    snprintf(a.worker, sizeof(a.worker), "w1");
    a.attempt = 2;
    a.started_at = 1764372000123;
    a.finished_at = 1764372001456;
    a.duration_ms = 1333;
    a.exit_code = 7;
    a.progress = 40;
    a.cpu_ms = 12;
    size_t len;
    char *s = status_to_json(&a, &len);
    cJSON *p = cJSON_Parse(s);
    ASSERT_TRUE(p != NULL);
    ASSERT_TRUE(cJSON_IsNumber(cJSON_GetObjectItem(p, "exit_code")));
    ASSERT_TRUE(cJSON_IsString(cJSON_GetObjectItem(p, "started_at")));
    ASSERT_TRUE(cJSON_GetObjectItem(p, "max_rss_kb") == NULL); /* unset: omitted */
    cJSON_Delete(p);
    ASSERT_EQ_INT(status_from_json(s, len, &b, err, sizeof(err)), 0);
    ASSERT_EQ_STR(b.id, "id-9");
    ASSERT_EQ_STR(b.state, "failed");
    ASSERT_EQ_STR(b.error, a.error);
    ASSERT_EQ_INT(b.attempt, 2);
    ASSERT_EQ_INT(b.started_at, a.started_at);
    ASSERT_EQ_INT(b.finished_at, a.finished_at);
    ASSERT_EQ_INT(b.exit_code, 7);
    ASSERT_EQ_INT(b.progress, 40);
    ASSERT_EQ_INT(b.cpu_ms, 12);
    ASSERT_EQ_INT(b.max_rss_kb, -1);
    free(s);
    ASSERT_EQ_INT(status_from_json("[]", 2, &b, err, sizeof(err)), -1);
    ASSERT_EQ_INT(status_from_json("{\"id\":\"x\"}", 10, &b, err, sizeof(err)), -1);
}

/* The event BEGIN publishes: the client's JSON around the fence the
 * script picks must be status_to_json of the record with that fence,
 * with and without a content type (the one field after the fence). */
static void t_status_split(void) {
    status_rec a;
    status_init(&a);
    snprintf(a.id, sizeof(a.id), "id-\"7\"");
    snprintf(a.state, sizeof(a.state), "%s", ST_RUNNING);
    snprintf(a.worker, sizeof(a.worker), "w/1");
    a.attempt = 3;
    a.started_at = 1764372000123;
    a.fence = 99; /* ignored: the script's fence goes in */
    for (int ct = 0; ct < 2; ct++) {
        if (ct) snprintf(a.content_type, sizeof(a.content_type), "text/plain");
        char *head, *tail;
        status_to_json_split(&a, &head, &tail);
        status_rec b = a;
        b.fence = 12;
        char *whole = status_to_json(&b, NULL);
        buf joined = BUF_INIT;
        buf_puts(&joined, head);
        buf_puts(&joined, "12");
        buf_puts(&joined, tail);
        char *j = buf_steal(&joined, NULL);
        ASSERT_EQ_STR(j, whole);
        free(j);
        free(whole);
        free(head);
        free(tail);
    }
}

static void t_status_final(void) {
    ASSERT_TRUE(status_is_final(ST_SUCCEEDED));
    ASSERT_TRUE(status_is_final(ST_DEAD));
    ASSERT_TRUE(status_is_final(ST_CANCELLED));
    ASSERT_TRUE(!status_is_final(ST_RUNNING));
    ASSERT_TRUE(!status_is_final(ST_RETRYING));
    ASSERT_TRUE(!status_is_final(ST_INTERRUPTED));
}

/* clock_iso8601 computes the date itself (not gmtime_r): it must agree
 * with gmtime_r everywhere, leap days and centuries included. */
static void t_iso8601(void) {
    char a[64], b[64];
    clock_iso8601(0, a, sizeof(a));
    ASSERT_EQ_STR(a, "1970-01-01T00:00:00.000Z");
    clock_iso8601(951782400123LL, a, sizeof(a)); /* 2000-02-29 */
    ASSERT_EQ_STR(a, "2000-02-29T00:00:00.123Z");
    clock_iso8601(4107542399999LL, a, sizeof(a));
    ASSERT_EQ_STR(a, "2100-02-28T23:59:59.999Z");
    clock_iso8601(253402300800000LL, a, sizeof(a)); /* past 9999: the year grows, snprintf's way */
    ASSERT_EQ_STR(a, "10000-01-01T00:00:00.000Z");
    clock_iso8601(951782400123LL, a, 11); /* a short buffer: cut, still terminated */
    ASSERT_EQ_STR(a, "2000-02-29");
    clock_iso8601(-1500, a, sizeof(a)); /* before 1970: gmtime_r's way */
    ASSERT_CONTAINS(a, "1969-12-31T23:59:59");
    uint64_t x = 88172645463325252ULL; /* xorshift: reproducible values */
    for (int i = 0; i < 200000 && !t_failed_now; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        int64_t ms = (int64_t)(x % 253402300800000ULL); /* to 9999-12-31 */
        time_t secs = (time_t)(ms / 1000);
        struct tm tm;
        gmtime_r(&secs, &tm);
        snprintf(b, sizeof(b), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                 tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
        clock_iso8601(ms, a, sizeof(a));
        ASSERT_EQ_STR(a, b);
    }
}

const test_case json_tests[] = {
    {"json: string escapes and UTF-8", t_json_str_escapes},
    {"envelope: full", t_envelope_full},
    {"envelope: anything else is raw input", t_envelope_raw},
    {"envelope: string input", t_envelope_string_input},
    {"envelope: malformed forms are rejected", t_envelope_malformed},
    {"envelope: serialise and parse back", t_envelope_roundtrip},
    {"envelope: binary input as input_base64", t_envelope_binary},
    {"envelope: strings read with their length (NUL in id and input)", t_envelope_string_bytes},
    {"envelope: a re-queue gives back the producer's bytes", t_envelope_requeue_exact},
    {"status: JSON round trip", t_status_roundtrip},
    {"status: JSON cut around the fence a script picks", t_status_split},
    {"status: final states", t_status_final},
    {"clock: ISO 8601 UTC agrees with gmtime_r", t_iso8601},
    {NULL, NULL},
};
