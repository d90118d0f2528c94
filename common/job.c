/* job.c -- envelope parsing and serialisation. */
#include "job.h"

#include <cjson/cJSON.h>
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

int job_parse_envelope(const char *msg, size_t len, job *out, char *err, size_t errlen) {
    cJSON *root = NULL;
    char *input = NULL;
    int rc = -1;

    if (out->attempt <= 0) out->attempt = 1;
    /* Raw input unless it is an object with an "input" member. */
    root = cJSON_ParseWithLength(msg, len);
    const cJSON *in = cJSON_IsObject(root) ? cJSON_GetObjectItemCaseSensitive(root, "input") : NULL;
    if (!in) {
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
    /* A string input is passed as its text, anything else as compact JSON. */
    if (cJSON_IsString(in)) {
        job_set_input(out, in->valuestring, strlen(in->valuestring));
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
    cJSON_Delete(root);
    return rc;
}

char *job_envelope_json(const job *j, size_t *len) {
    buf b = BUF_INIT;
    cJSON *parsed = NULL;

    buf_puts(&b, "{\"id\":");
    buf_json_str(&b, j->id, strlen(j->id));
    buf_puts(&b, ",\"input\":");
    /* Input that is itself JSON stays JSON, so a re-queued envelope reads
     * as the producer wrote it; other bytes travel as a string. */
    if (j->input_len && (parsed = cJSON_ParseWithLength(j->input, j->input_len)) != NULL)
        buf_append(&b, j->input, j->input_len);
    else
        buf_json_str(&b, j->input ? j->input : "", j->input_len);
    cJSON_Delete(parsed);
    if (j->deadline_s > 0) buf_printf(&b, ",\"deadline_s\":%d", j->deadline_s);
    buf_printf(&b, ",\"attempt\":%d}", j->attempt > 0 ? j->attempt : 1);
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
