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

/* The value of the hex digits p[0..4), or -1. */
static long hex4(const char *p) {
    long v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0) return -1;
        v = v << 4 | d;
    }
    return v;
}

/* Append the bytes of the JSON string token p[0..n) (quotes included,
 * well-formed: cJSON parsed it) to b, with their length: cJSON's
 * valuestring ends at an escaped NUL ("\u0000"), so "batch\u0000A" would
 * read as "batch". Raw bytes (control bytes, invalid UTF-8) are kept as
 * cJSON keeps them. -1 for what cJSON alone takes: a \u escape that is not
 * 4 hex digits (cJSON reads "\uzzzz" as U+0000), an unpaired surrogate. */
static int json_str_decode(buf *b, const char *p, size_t n) {
    const char *e = p + n - 1; /* the closing quote */
    if (n < 2 || *p != '"' || *e != '"') return -1;
    for (p++; p < e;) {
        const char *bs = memchr(p, '\\', (size_t)(e - p));
        if (!bs) bs = e;
        buf_append(b, p, (size_t)(bs - p));
        if ((p = bs) == e) break;
        if (e - p < 2) return -1;
        char c = p[1];
        p += 2;
        if (c != 'u') {
            const char *from = "\"\\/bfnrt", *to = "\"\\/\b\f\n\r\t", *k = strchr(from, c);
            if (!c || !k) return -1;
            buf_append(b, to + (k - from), 1);
            continue;
        }
        long cp = e - p >= 4 ? hex4(p) : -1;
        p += 4;
        if (cp >= 0xDC00 && cp <= 0xDFFF) return -1;
        if (cp >= 0xD800 && cp <= 0xDBFF) { /* a high surrogate: its low half must follow */
            long lo = e - p >= 6 && p[0] == '\\' && p[1] == 'u' ? hex4(p + 2) : -1;
            if (lo < 0xDC00 || lo > 0xDFFF) return -1;
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            p += 6;
        }
        if (cp < 0) return -1;
        unsigned char u[4];
        size_t un;
        if (cp < 0x80) {
            u[0] = (unsigned char)cp;
            un = 1;
        } else if (cp < 0x800) {
            u[0] = (unsigned char)(0xC0 | cp >> 6);
            u[1] = (unsigned char)(0x80 | (cp & 0x3F));
            un = 2;
        } else if (cp < 0x10000) {
            u[0] = (unsigned char)(0xE0 | cp >> 12);
            u[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
            u[2] = (unsigned char)(0x80 | (cp & 0x3F));
            un = 3;
        } else {
            u[0] = (unsigned char)(0xF0 | cp >> 18);
            u[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3F));
            u[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
            u[3] = (unsigned char)(0x80 | (cp & 0x3F));
            un = 4;
        }
        buf_append(b, u, un);
    }
    return 0;
}

/* 1 when the JSON string token k[0..kn) decodes to exactly name. */
static int json_key_is(const char *k, size_t kn, const char *name) {
    size_t nn = strlen(name);
    if (kn == nn + 2 && memcmp(k + 1, name, nn) == 0) return 1; /* written without escapes */
    buf d = BUF_INIT;
    int is = json_str_decode(&d, k, kn) == 0 && d.len == nn && memcmp(d.data, name, nn) == 0;
    buf_free(&d);
    return is;
}

/* The envelope's members, by their index in MEMBER_NAMES. */
enum { M_ID, M_INPUT, M_INPUT64, M_DEADLINE, M_ATTEMPT, M_COUNT };
static const char *const MEMBER_NAMES[M_COUNT] = {"id", "input", "input_base64", "deadline_s", "attempt"};

typedef struct member {
    const char *v; /* the producer's bytes of the value, NULL when absent */
    size_t n;
} member;

#define UNKNOWN_MAX 8 /* unknown members named in the warning */

typedef struct members {
    member m[M_COUNT];
    member unknown[UNKNOWN_MAX]; /* the keys' text, without the quotes */
    int nunknown;
} members;

/* Fill ms->m with the first top-level member of each name of the JSON object
 * msg[0..n) (which cJSON has parsed whole), in one pass. The values are
 * the producer's bytes: re-printing a parsed value would change numbers a
 * double cannot hold (2^53 + 1, 1e400). Keys are compared decoded and
 * with their length: "\u0069d" is "id", "id\u0000x" is not (cJSON's own
 * lookup, on NUL-terminated keys, takes it for "id"). Keys of no known
 * name go to ms->unknown (the first UNKNOWN_MAX). */
static void json_members(const char *msg, size_t n, members *ms) {
    member *m = ms->m;
    const char *p = msg, *e = msg + n;
    memset(ms, 0, sizeof(*ms));
#define SKIP_WS while (p < e && (unsigned char)*p <= ' ') p++ /* cJSON's whitespace */
    SKIP_WS;
    if (p >= e || *p++ != '{') return;
    for (;;) {
        SKIP_WS;
        if (p >= e || *p != '"') return;
        const char *k = p;
        if (!(p = json_skip_value(p, e))) return;
        size_t kn = (size_t)(p - k);
        SKIP_WS;
        if (p >= e || *p++ != ':') return;
        SKIP_WS;
        const char *v = p;
        if (p >= e || !(p = json_skip_value(p, e))) return;
        int known = 0;
        for (int i = 0; i < M_COUNT && !known; i++)
            if (json_key_is(k, kn, MEMBER_NAMES[i])) {
                known = 1;
                if (!m[i].v) {
                    m[i].v = v;
                    m[i].n = (size_t)(p - v);
                }
            }
        if (!known && ms->nunknown < UNKNOWN_MAX) ms->unknown[ms->nunknown++] = (member){k + 1, kn - 2};
        SKIP_WS;
        if (p >= e || *p++ != ',') return;
    }
#undef SKIP_WS
}

/* A member holding a whole number in [min, max]: 1 absent or null, 0 read
 * into *out, -1 anything else. */
static int member_int(const member *m, int min, int max, int *out) {
    if (!m->v) return 1;
    cJSON *it = cJSON_ParseWithLength(m->v, m->n);
    int rc = cJSON_IsNull(it) ? 1 : json_int(it, min, max, out);
    cJSON_Delete(it);
    return rc;
}

/* A member holding a string, its bytes into d: 1 absent or null, 0
 * decoded, -1 not a (strict) JSON string. */
static int member_str(const member *m, buf *d) {
    if (!m->v || (m->n == 4 && memcmp(m->v, "null", 4) == 0)) return 1;
    return *m->v == '"' && json_str_decode(d, m->v, m->n) == 0 ? 0 : -1;
}

int job_parse_envelope(const char *msg, size_t len, job *out, char *err, size_t errlen) {
    members ms;
    const member *m = ms.m;
    buf s = BUF_INIT;
    int rc = -1;

    if (out->attempt <= 0) out->attempt = 1;
    /* Raw input unless it is an object with an "input" (or "input_base64")
     * member. cJSON only checks that the whole message is JSON; the members
     * are read from the producer's text. */
    job_set_input(out, msg, len); /* the raw input, or kept whole until the envelope is valid */
    cJSON *root = json_parse_whole(msg, len);
    int is_obj = cJSON_IsObject(root);
    cJSON_Delete(root);
    if (!is_obj) return 0;
    json_members(msg, len, &ms);
    const member *in = &m[M_INPUT], *in64 = &m[M_INPUT64];
    if (!in->v && !in64->v) return 0;
    for (int i = 0; i < ms.nunknown; i++) job_note_unknown(out, "envelope", ms.unknown[i].v, ms.unknown[i].n);

    /* Every byte of the id counts: one outside the alphabet (an escaped
     * NUL included) rejects the envelope rather than cutting the id. */
    int r = member_str(&m[M_ID], &s);
    if (r < 0 || (r == 0 && !id_valid(s.data, s.len))) {
        snprintf(err, errlen, "envelope: \"id\" must be 1..%d characters of [A-Za-z0-9._:-]", ID_MAX);
        goto end;
    }
    if (r == 0) memcpy(out->id, s.data, s.len + 1);
    buf_reset(&s);
    if (member_int(&m[M_DEADLINE], 1, 100000000, &out->deadline_s) < 0) {
        snprintf(err, errlen, "envelope: \"deadline_s\" must be a positive whole number of seconds");
        goto end;
    }
    if (member_int(&m[M_ATTEMPT], 1, 1000000, &out->attempt) < 0) {
        snprintf(err, errlen, "envelope: \"attempt\" must be a positive whole number");
        goto end;
    }
    if (in64->v) {
        /* Bytes a JSON string cannot carry (invalid UTF-8, NUL). */
        buf bytes = BUF_INIT;
        if (in->v || member_str(in64, &s) != 0 || buf_unbase64(&bytes, s.data ? s.data : "", s.len) < 0) {
            buf_free(&bytes);
            snprintf(err, errlen, "envelope: \"input_base64\" must be a padded base64 string, without \"input\"");
            goto end;
        }
        job_set_input(out, bytes.data ? bytes.data : "", bytes.len);
        buf_free(&bytes);
        rc = 0;
        goto end;
    }
    /* A string input is passed as its text (NULs included), anything else
     * as the JSON the producer wrote. */
    if (*in->v == '"') {
        if (member_str(in, &s) < 0) {
            snprintf(err, errlen, "envelope: \"input\" is not a valid JSON string "
                                  "(a \\u escape is 4 hex digits, surrogates come in pairs)");
            goto end;
        }
        job_set_input(out, s.data ? s.data : "", s.len);
    } else {
        job_set_input(out, in->v, in->n);
    }
    rc = 0;
end:
    buf_free(&s);
    return rc;
}

/* 1 when s[0..n) can be embedded in an envelope as it is: reading the
 * envelope back (job_parse_envelope) gives these very bytes, so a value
 * with surrounding whitespace (which the reader trims), a JSON string
 * (read as its text), JSON followed by other bytes, a UTF-8 BOM or a value
 * nested too deep for cJSON goes as a string instead; and s is strict JSON:
 * no raw control bytes (cJSON takes them, strict parsers do not: in a
 * string none, elsewhere only the four JSON whitespace bytes, which cannot
 * lead or trail here) and only JSON's escapes. */
static int json_embeddable(const char *s, size_t n) {
    if (!n) return 0;
    int ok = 1, in_str = 0;
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
    if (!ok) return 0;
    /* The round trip itself: the envelope's other members (an id of the
     * id alphabet, numbers) read the same around the input. */
    buf b = BUF_INIT;
    job k;
    char err[8];
    memset(&k, 0, sizeof(k));
    buf_puts(&b, "{\"input\":");
    buf_append(&b, s, n);
    buf_puts(&b, "}");
    ok = job_parse_envelope(b.data, b.len, &k, err, sizeof(err)) == 0 && k.input_len == n &&
         memcmp(k.input, s, n) == 0;
    buf_free(&b);
    job_free(&k);
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

void job_note_unknown(job *j, const char *what, const char *name, size_t n) {
    buf b = BUF_INIT;
    if (n > 64) n = 64;
    if (j->unknown) {
        if (strlen(j->unknown) > 400) return;
        buf_puts(&b, j->unknown);
        buf_puts(&b, ", ");
        free(j->unknown);
    } else {
        buf_printf(&b, "unknown %s field ignored (a typo?): ", what);
    }
    buf_append(&b, name, n);
    j->unknown = buf_steal(&b, NULL);
}

void job_free(job *j) {
    free(j->unknown);
    j->unknown = NULL;
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
