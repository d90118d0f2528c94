/* fuzz_envelope.c -- job_parse_envelope on any message.
 *
 * Invariants: the parse never fails to leave the raw message as input; an
 * id it accepts is valid; an accepted envelope, serialised again by
 * job_envelope_json (as a re-queue does) and parsed back, keeps its id,
 * deadline, attempt and input (the same JSON value when the input is JSON,
 * else the same bytes: bytes a JSON string cannot carry travel as
 * "input_base64"). */
#include <cjson/cJSON.h>

#include "../../common/ids.h"
#include "../../common/job.h"
#include "fuzz.h"

/* s[0..*n) without the JSON whitespace around it. */
static const char *trim(const char *s, size_t *n) {
    while (*n && strchr(" \t\n\r", s[0])) s++, (*n)--;
    while (*n && strchr(" \t\n\r", s[*n - 1])) (*n)--;
    return s;
}

/* The same bytes, else (for JSON) the same bytes but for the whitespace
 * around them, else the same JSON value. */
static int same_input(const job *a, const job *b) {
    size_t an = a->input_len, bn = b->input_len;
    if (an == bn && memcmp(a->input, b->input, an) == 0) return 1;
    cJSON *ja = cJSON_ParseWithLength(a->input, a->input_len);
    const char *as = trim(a->input, &an), *bs = trim(b->input, &bn);
    if (ja && an == bn && memcmp(as, bs, an) == 0) {
        cJSON_Delete(ja);
        return 1;
    }
    int same;
    if (ja) {
        cJSON *jb = cJSON_ParseWithLength(b->input, b->input_len);
        same = jb && cJSON_Compare(ja, jb, 1);
        cJSON_Delete(jb);
    } else {
        same = a->input_len == b->input_len && memcmp(a->input, b->input, a->input_len) == 0;
    }
    cJSON_Delete(ja);
    return same;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    job j, k;
    char err[256] = "";

    memset(&j, 0, sizeof(j));
    memset(&k, 0, sizeof(k));
    int rc = job_parse_envelope((const char *)data, size, &j, err, sizeof(err));
    if (!j.input || j.input[j.input_len] != '\0') fuzz_fail("no NUL-terminated input (rc %d)", rc);
    if (j.attempt < 1) fuzz_fail("attempt %d", j.attempt);
    if (j.id[0] && !id_valid(j.id, strlen(j.id))) fuzz_fail("invalid id accepted: %s", j.id);
    if (rc < 0) {
        if (!err[0]) fuzz_fail("rejected without a reason");
        if (j.input_len != size || (size && memcmp(j.input, data, size) != 0))
            fuzz_fail("a rejected message must keep its raw bytes as input");
        goto end;
    }
    if (j.deadline_s < 0) fuzz_fail("deadline_s %d", j.deadline_s);
    /* A re-queue: the replica gives every job an id before it serialises. */
    if (!j.id[0]) snprintf(j.id, sizeof(j.id), "fuzz-1");
    size_t n = 0;
    char *env = job_envelope_json(&j, &n);
    if (!env || strlen(env) != n) fuzz_fail("envelope JSON with a NUL or no length");
    char err2[256] = "";
    if (job_parse_envelope(env, n, &k, err2, sizeof(err2)) < 0)
        fuzz_fail("our own envelope is rejected: %s: %s", err2, env);
    if (strcmp(k.id, j.id) != 0) fuzz_fail("id %s became %s", j.id, k.id);
    if (k.attempt != j.attempt || k.deadline_s != j.deadline_s)
        fuzz_fail("attempt/deadline %d/%d became %d/%d", j.attempt, j.deadline_s, k.attempt, k.deadline_s);
    if (!same_input(&j, &k))
        fuzz_fail("input changed in a re-queue: [%s] became [%s]", j.input, k.input);
    free(env);
end:
    job_free(&j);
    job_free(&k);
    return 0;
}
