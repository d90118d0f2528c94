/* fuzz_redis_url.c -- redis_url_parse and redis_url_masked on any string.
 *
 * Invariants: a parsed URL has a host and a port in 1..65535 (TCP) or an
 * absolute socket path (unix), NUL-terminated fields; and the masked form
 * (what --print-config shows) never yields a password: parsed again it
 * has none, or "***". */
#include "../../config/redis_url.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *url = fuzz_cstr(data, size);
    char err[256] = "";
    redis_url u, m;

    if (redis_url_parse(url, &u, err, sizeof(err)) < 0) {
        if (!err[0]) fuzz_fail("rejected without a reason");
    } else if (u.is_unix) {
        if (u.path[0] != '/' || strlen(u.path) >= sizeof(u.path)) fuzz_fail("unix path '%s'", u.path);
    } else {
        if (!u.host[0] || u.port < 1 || u.port > 65535) fuzz_fail("host '%s' port %d", u.host, u.port);
    }
    if (u.db < 0) fuzz_fail("db %d", u.db);
    char *masked = redis_url_masked(url);
    if (!masked) fuzz_fail("no masked URL");
    if (redis_url_parse(url, &u, err, sizeof(err)) == 0 && u.password[0] &&
        redis_url_parse(masked, &m, err, sizeof(err)) == 0 && m.password[0] &&
        strcmp(m.password, "***") != 0)
        fuzz_fail("masked URL '%s' still carries password '%s'", masked, m.password);
    free(masked);
    free(url);
    return 0;
}
