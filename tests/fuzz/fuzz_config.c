/* fuzz_config.c -- config_load from a JSON file, the environment and flags.
 *
 * The input is split at NUL bytes: the first piece is the --config file's
 * text (no file when empty), each later piece an environment entry when it
 * starts with ONESHOT_, else a command-line word. The harness names the
 * only file read (--config/ONESHOT_CONFIG from the input are dropped).
 * Invariants: an accepted configuration prints (--print-config) as JSON
 * whose secrets are masked: auth-token "***", kafka-prop secrets "k=***",
 * and the redis and pushgateway URLs without a usable password. */
#include <cjson/cJSON.h>
#include <unistd.h>

#include "../../config/config.h"
#include "../../config/redis_url.h"
#include "../../consumer/pushgw.h"
#include "fuzz.h"

#define MAX_PIECES 64

static char file_path[64];
static int file_fd = -1;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    snprintf(file_path, sizeof(file_path), "/tmp/oneshot-fuzz-config.XXXXXX");
    file_fd = mkstemp(file_path);
    if (file_fd < 0) abort();
    unlink(file_path); /* read back through /proc, gone at exit */
    snprintf(file_path, sizeof(file_path), "/proc/self/fd/%d", file_fd);
    return 0;
}

static void check_masked(const char *json) {
    cJSON *root = cJSON_Parse(json);
    if (!cJSON_IsObject(root)) fuzz_fail("--print-config is not a JSON object: %s", json);
    const cJSON *tok = cJSON_GetObjectItemCaseSensitive(root, "auth-token");
    if (cJSON_IsString(tok) && strcmp(tok->valuestring, "***") != 0)
        fuzz_fail("auth-token printed: %s", tok->valuestring);
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(root, "redis");
    redis_url u;
    char err[256];
    if (cJSON_IsString(r) && redis_url_parse(r->valuestring, &u, err, sizeof(err)) == 0 &&
        u.password[0] && strcmp(u.password, "***") != 0)
        fuzz_fail("redis password printed: %s", r->valuestring);
    const cJSON *pg = cJSON_GetObjectItemCaseSensitive(root, "pushgateway");
    pushgw_url pu;
    if (cJSON_IsString(pg) && pushgw_parse_url(pg->valuestring, &pu, err, sizeof(err)) == 0 && pu.auth[0]) {
        size_t n = strlen(pu.auth);
        if (strcmp(pu.auth, "***") != 0 && (n < 4 || strcmp(pu.auth + n - 4, ":***") != 0))
            fuzz_fail("pushgateway password printed: %s", pg->valuestring);
    }
    const cJSON *props = cJSON_GetObjectItemCaseSensitive(root, "kafka-prop"), *p;
    cJSON_ArrayForEach(p, props) {
        const char *kv = cJSON_GetStringValue(p);
        if (!kv) fuzz_fail("kafka-prop item is not a string");
        char *key = strndup(kv, strcspn(kv, "="));
        if ((strstr(key, "password") || strstr(key, "secret")) && strcmp(kv + strlen(key), "=***") != 0)
            fuzz_fail("kafka secret printed: %s", kv);
        free(key);
    }
    cJSON_Delete(root);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *text = malloc(size + 1);
    char *argv[MAX_PIECES + 3], *envp[MAX_PIECES + 1];
    int argc = 0, envc = 0;
    config cfg;
    char err[512] = "";

    if (!text) abort();
    if (size) memcpy(text, data, size);
    text[size] = '\0';
    size_t first = strlen(text);
    if (ftruncate(file_fd, 0) < 0 || pwrite(file_fd, text, first, 0) != (ssize_t)first) abort();
    if (first) {
        argv[argc++] = (char *)"--config";
        argv[argc++] = file_path;
    }
    for (size_t i = first + 1; i <= size && argc < MAX_PIECES && envc < MAX_PIECES; i += strlen(text + i) + 1) {
        char *piece = text + i;
        if (strncmp(piece, "--config", 8) == 0 || strncmp(piece, "ONESHOT_CONFIG=", 15) == 0) continue;
        if (strncmp(piece, "ONESHOT_", 8) == 0)
            envp[envc++] = piece;
        else
            argv[argc++] = piece;
    }
    argv[argc] = NULL;
    envp[envc] = NULL;
    int allow_args = size && (data[0] & 1);
    int rc = config_load(&cfg, argc, argv, envp, allow_args, err, sizeof(err));
    if (rc < 0) {
        if (!err[0] || strchr(err, '\n')) fuzz_fail("the error must be one line: '%s'", err);
    } else if (!cfg.help && !cfg.version) {
        if (!cfg.source || !cfg.bind || !cfg.redis_url || !cfg.core || !cfg.store || !cfg.dead_letter)
            fuzz_fail("a setting without a value after a successful load");
        char *json = config_to_json(&cfg);
        if (!json) fuzz_fail("config_to_json failed");
        check_masked(json);
        free(json);
    }
    config_free(&cfg);
    free(text);
    return 0;
}
