/* fuzz_status.c -- the status record's JSON round trip.
 *
 * status_from_json on any bytes; when it accepts them, status_to_json of
 * the record must be valid JSON that status_from_json accepts and reads
 * back as the same record, and serialising that again gives the same bytes. */
#include <cjson/cJSON.h>
#include <inttypes.h>

#include "../../common/status.h"
#include "fuzz.h"

static void same(const status_rec *a, const status_rec *b, const char *json) {
#define S(f) if (strcmp(a->f, b->f) != 0) fuzz_fail(#f " '%s' became '%s' via %s", a->f, b->f, json)
#define I(f) if ((int64_t)a->f != (int64_t)b->f) \
        fuzz_fail(#f " %" PRId64 " became %" PRId64 " via %s", (int64_t)a->f, (int64_t)b->f, json)
    S(id); S(state); S(worker); S(source); S(queue); S(error);
    I(attempt); I(started_at); I(heartbeat_at); I(finished_at); I(duration_ms);
    I(progress); I(exit_code); I(result_bytes); I(cpu_ms); I(max_rss_kb);
#undef S
#undef I
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    status_rec a, b, c;
    char err[256] = "";
    size_t n1 = 0, n2 = 0;

    if (status_from_json((const char *)data, size, &a, err, sizeof(err)) < 0) {
        if (!err[0]) fuzz_fail("rejected without a reason");
        return 0;
    }
    char *j1 = status_to_json(&a, &n1);
    cJSON *p = cJSON_ParseWithLength(j1, n1);
    if (!cJSON_IsObject(p)) fuzz_fail("status_to_json wrote invalid JSON: %s", j1);
    cJSON_Delete(p);
    if (status_from_json(j1, n1, &b, err, sizeof(err)) < 0) fuzz_fail("own JSON refused (%s): %s", err, j1);
    same(&a, &b, j1);
    char *j2 = status_to_json(&b, &n2);
    if (n1 != n2 || memcmp(j1, j2, n1) != 0) fuzz_fail("not stable: %s then %s", j1, j2);
    if (status_from_json(j2, n2, &c, err, sizeof(err)) < 0) fuzz_fail("second refusal");
    free(j1);
    free(j2);
    return 0;
}
