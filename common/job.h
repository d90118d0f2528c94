/* job.h -- the job envelope.
 *
 * A job is what a source claims: an id, the input bytes, an optional
 * per-job deadline, the delivery attempt, and for HTTP jobs the query
 * parameters and content type. The source keeps its own handle (the
 * message, the processing list, the stream entry) in src_data. */
#ifndef ONESHOT_JOB_H
#define ONESHOT_JOB_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "ids.h"

typedef struct job_param {
    char *name;
    char *value;
} job_param;

typedef struct job {
    char id[ID_MAX + 1];
    char *input;        /* owned, NUL-terminated for convenience; may hold NULs */
    size_t input_len;
    int deadline_s;     /* per-job limit in seconds, 0 = none */
    int attempt;        /* 1 for the first delivery */
    job_param *params;  /* HTTP query parameters, owned */
    size_t nparams;
    char *content_type; /* HTTP Content-Type, owned, may be NULL */
    int64_t claimed_mono_ms;
    int64_t claimed_wall_ms;
    char *unknown;      /* owned: a warning naming the fields oneshot ignored, NULL = none */
    void *src_data;     /* the source's own handle, freed by the source */
} job;

/* Parse a message from a Redis list or Kafka: a JSON object with an
 * "input" member (or "input_base64": the input's bytes in padded base64,
 * for bytes a JSON string cannot carry) is an envelope; anything else is
 * taken whole as the raw input. On success fills *out (id only when the envelope has one; attempt
 * from the envelope, else 1) and returns 0. A malformed envelope (wrong
 * types, bad id) returns -1 with the reason in err; out then still holds
 * the raw message as input so it can be dead-lettered. */
int job_parse_envelope(const char *msg, size_t len, job *out, char *err, size_t errlen);

/* Serialise an envelope for a re-queue or a submit: id, the input (see
 * job_json_input), deadline_s when set, attempt when > 0 (a submit leaves
 * it out). Returns a malloc'd string. Parsed back, it gives the same id,
 * deadline, attempt and input bytes (JSON input: the same JSON value). */
char *job_envelope_json(const job *j, size_t *len);
/* Append the "input" member: as it is when it is one strict JSON value
 * other than a string, else as a JSON string when the bytes are valid UTF-8
 * without NUL, else as "input_base64". */
void job_json_input(buf *b, const job *j);
/* Append "name":"<p as a JSON string>", or "name_base64":"..." when the
 * bytes are not valid UTF-8 without NUL (a JSON string would change them). */
void job_json_bytes(buf *b, const char *name, const char *p, size_t n);

/* Note a field the envelope or entry had that oneshot does not know
 * (what: "envelope", "stream"; name as the producer wrote it); the
 * lifecycle logs the list once, at warn. */
void job_note_unknown(job *j, const char *what, const char *name, size_t n);

const char *job_param_get(const job *j, const char *name);
void job_param_add(job *j, const char *name, const char *value);
void job_set_input(job *j, const char *p, size_t n);
void job_free(job *j); /* frees owned members, not src_data */

#endif
