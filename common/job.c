/* job.c -- envelope parsing and serialisation. */
#include "job.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"

void job_set_input(job *j, const char *p, size_t n) {
    free(j->input);
    j->input = xmalloc(n + 1);
    if (n) memcpy(j->input, p, n);
    j->input[n] = '\0';
    j->input_len = n;
}

/* A JSON number that is a whole number in [min, max], else -1. */
static int json_int(const cJSON *it, int min, int max, int *out) {
    if (!cJSON_IsNumber(it)) return -1;
    double d = it->valuedouble;
    if (!isfinite(d) || d != floor(d) || d < min || d > max) return -1;
    *out = (int)d;
    return 0;
}

/* Parse s[0..n) as one JSON value followed by nothing but whitespace
 * (cJSON alone ignores trailing bytes: '{"input":1}xyz' is not JSON). */
static cJSON *json_parse_whole(const char *s, size_t n) {
    const char *end = NULL;
    cJSON *v = cJSON_ParseWithLengthOpts(s, n, &end, 0);
    for (; v && end < s + n; end++)
        if (*end != ' ' && *end != '\t' && *end != '\n' && *end != '\r') {
            cJSON_Delete(v);
            v = NULL;
        }
    return v;
}

/* Past the JSON value at p (p < e, well-formed: cJSON parsed it), or NULL. */
static const char *json_skip_value(const char *p, const char *e) {
    int depth = 0;
    if (*p != '{' && *p != '[' && *p != '"') { /* number, true, false, null */
        while (p < e && *p != ',' && *p != '}' && *p != ']' && (unsigned char)*p > ' ') p++;
        return p;
    }
    while (p < e) {
        char c = *p++;
        if (c == '"') {
            while (p < e && *p != '"') p += *p == '\\' ? 2 : 1;
            if (p >= e) return NULL;
            p++;
        } else if (c == '{' || c == '[') {
            depth++;
        } else if (c == '}' || c == ']') {
            depth--;
        }
        if (depth == 0) return p;
    }
    return NULL;
}

/* The producer's bytes of the first top-level "input" member of the JSON
 * object msg[0..n), which cJSON has parsed: re-printing the parsed value
 * would change numbers a double cannot hold (2^53 + 1, 1e400). NULL when
 * a key before it is written with escapes or control bytes (it might decode
 * to "input"): the caller then re-prints. */
static const char *input_bytes(const char *msg, size_t n, size_t *len) {
    const char *p = msg, *e = msg + n;
#define SKIP_WS while (p < e && (unsigned char)*p <= ' ') p++
    SKIP_WS;
    if (p >= e || *p++ != '{') return NULL;
    for (;;) {
        SKIP_WS;
        if (p >= e || *p++ != '"') return NULL;
        const char *k = p;
        while (p < e && *p != '"' && *p != '\\' && (unsigned char)*p >= ' ') p++;
        if (p >= e || *p != '"') return NULL;
        size_t kn = (size_t)(p++ - k);
        SKIP_WS;
        if (p >= e || *p++ != ':') return NULL;
        SKIP_WS;
        const char *v = p;
        if (p >= e || !(p = json_skip_value(p, e))) return NULL;
        if (kn == 5 && memcmp(k, "input", 5) == 0) {
            *len = (size_t)(p - v);
            return v;
        }
        SKIP_WS;
        if (p >= e || *p++ != ',') return NULL;
    }
#undef SKIP_WS
}

int job_parse_envelope(const char *msg, size_t len, job *out, char *err, size_t errlen) {
    cJSON *root = NULL, *check = NULL;
    char *input = NULL;
    int rc = -1;

    if (out->attempt <= 0) out->attempt = 1;
    /* Raw input unless it is an object with an "input" (or "input_base64")
     * member. */
    root = json_parse_whole(msg, len);
    const cJSON *in = cJSON_IsObject(root) ? cJSON_GetObjectItemCaseSensitive(root, "input") : NULL;
    const cJSON *in64 = cJSON_IsObject(root) ? cJSON_GetObjectItemCaseSensitive(root, "input_base64") : NULL;
    if (!in && !in64) {
        job_set_input(out, msg, len);
        rc = 0;
        goto end;
    }
    job_set_input(out, msg, len); /* kept whole until the envelope is valid */

    const cJSON *id = cJSON_GetObjectItemCaseSensitive(root, "id");
    if (id && !cJSON_IsNull(id)) {
        if (!cJSON_IsString(id) || !id_valid(id->valuestring, strlen(id->valuestring))) {
            snprintf(err, errlen, "envelope: \"id\" must be 1..%d characters of [A-Za-z0-9._:-]", ID_MAX);
            goto end;
        }
        snprintf(out->id, sizeof(out->id), "%s", id->valuestring);
    }
    const cJSON *dl = cJSON_GetObjectItemCaseSensitive(root, "deadline_s");
    if (dl && !cJSON_IsNull(dl) && json_int(dl, 1, 100000000, &out->deadline_s) < 0) {
        snprintf(err, errlen, "envelope: \"deadline_s\" must be a positive whole number of seconds");
        goto end;
    }
    const cJSON *at = cJSON_GetObjectItemCaseSensitive(root, "attempt");
    if (at && !cJSON_IsNull(at) && json_int(at, 1, 1000000, &out->attempt) < 0) {
        snprintf(err, errlen, "envelope: \"attempt\" must be a positive whole number");
        goto end;
    }
    if (in64) {
        /* Bytes a JSON string cannot carry (invalid UTF-8, NUL). */
        buf bytes = BUF_INIT;
        if (in || !cJSON_IsString(in64) ||
            buf_unbase64(&bytes, in64->valuestring, strlen(in64->valuestring)) < 0) {
            buf_free(&bytes);
            snprintf(err, errlen, "envelope: \"input_base64\" must be a padded base64 string, without \"input\"");
            goto end;
        }
        job_set_input(out, bytes.data ? bytes.data : "", bytes.len);
        buf_free(&bytes);
        rc = 0;
        goto end;
    }
    /* A string input is passed as its text, anything else as the JSON the
     * producer wrote (compact JSON re-printed by cJSON when it cannot be
     * cut out of the message). */
    size_t vn = 0;
    const char *v = cJSON_IsString(in) ? NULL : input_bytes(msg, len, &vn);
    check = v ? cJSON_ParseWithLength(v, vn) : NULL;
    if (cJSON_IsString(in)) {
        job_set_input(out, in->valuestring, strlen(in->valuestring));
    } else if (check && check->type == in->type) {
        job_set_input(out, v, vn);
    } else {
        input = cJSON_PrintUnformatted(in);
        if (!input) {
            snprintf(err, errlen, "envelope: cannot serialise \"input\"");
            goto end;
        }
        job_set_input(out, input, strlen(input));
    }
    rc = 0;
end:
    free(input);
    cJSON_Delete(check);
    cJSON_Delete(root);
    return rc;
}

/* 1 when s[0..n) is JSON that can be embedded as it is: one whole value
 * (cJSON alone ignores trailing bytes), not a string (job_parse_envelope
 * takes a string input as its text, so '"abc"' would come back as 'abc'),
 * without raw control bytes (cJSON takes them, strict parsers do not: in a
 * string none, elsewhere only the four JSON whitespace bytes). */
static int json_embeddable(const char *s, size_t n) {
    if (!n) return 0;
    cJSON *v = json_parse_whole(s, n);
    int ok = v && !cJSON_IsString(v);
    cJSON_Delete(v);
    int in_str = 0;
    for (size_t i = 0; ok && i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        int ws = c == ' ' || c == '\t' || c == '\n' || c == '\r';
        if (in_str) {
            if (c < 0x20) ok = 0;
            else if (c == '"') in_str = 0;
            else if (c == '\\') { /* cJSON takes "\uq\<NUL>x" as U+0000: only JSON's escapes */
                char e = i + 1 < n ? s[i + 1] : '\0';
                if (e == 'u') {
                    for (size_t k = i + 2; k < i + 6; k++)
                        if (k >= n || !isxdigit((unsigned char)s[k])) ok = 0;
                    i += 5;
                } else if (e && strchr("\"\\/bfnrt", e)) {
                    i++;
                } else {
                    ok = 0;
                }
            }
        } else if (c == '"') {
            in_str = 1;
        } else if (c < 0x20 && !ws) {
            ok = 0;
        }
    }
    return ok;
}

void job_json_bytes(buf *b, const char *name, const char *p, size_t n) {
    if (buf_utf8_clean(p, n)) {
        buf_printf(b, "\"%s\":", name);
        buf_json_str(b, p ? p : "", n);
    } else {
        buf_printf(b, "\"%s_base64\":\"", name);
        buf_base64(b, p, n, 0);
        buf_puts(b, "\"");
    }
}

void job_json_input(buf *b, const job *j) {
    /* Input that is itself JSON stays JSON, so a re-queued envelope reads
     * as the producer wrote it. */
    if (json_embeddable(j->input, j->input_len)) {
        buf_puts(b, "\"input\":");
        buf_append(b, j->input, j->input_len);
    } else {
        job_json_bytes(b, "input", j->input, j->input_len);
    }
}

char *job_envelope_json(const job *j, size_t *len) {
    buf b = BUF_INIT;

    buf_puts(&b, "{\"id\":");
    buf_json_str(&b, j->id, strlen(j->id));
    buf_puts(&b, ",");
    job_json_input(&b, j);
    if (j->deadline_s > 0) buf_printf(&b, ",\"deadline_s\":%d", j->deadline_s);
    if (j->attempt > 0) buf_printf(&b, ",\"attempt\":%d", j->attempt);
    buf_puts(&b, "}");
    return buf_steal(&b, len);
}

const char *job_param_get(const job *j, const char *name) {
    for (size_t i = 0; i < j->nparams; i++)
        if (strcmp(j->params[i].name, name) == 0) return j->params[i].value;
    return NULL;
}

void job_param_add(job *j, const char *name, const char *value) {
    j->params = xrealloc(j->params, (j->nparams + 1) * sizeof(*j->params));
    j->params[j->nparams].name = xstrdup(name);
    j->params[j->nparams].value = xstrdup(value ? value : "");
    j->nparams++;
}

void job_free(job *j) {
    free(j->input);
    for (size_t i = 0; i < j->nparams; i++) {
        free(j->params[i].name);
        free(j->params[i].value);
    }
    free(j->params);
    free(j->content_type);
    j->input = NULL;
    j->params = NULL;
    j->content_type = NULL;
    j->nparams = 0;
    j->input_len = 0;
}
