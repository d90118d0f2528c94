/* kafka/loader.c -- finding and loading oneshot-kafka.so, or, in a build
 * with ONESHOT_KAFKA_BUILTIN (the static file, `make static`), the Kafka
 * code linked into the binary: no dlopen at run time. */
#include "module.h"

#if ONESHOT_KAFKA_BUILTIN
/* consumer/kafka/module.c, compiled into the binary. librdkafka does
 * nothing at link time: it initialises (and OpenSSL with it) only when a
 * Kafka client is made, so a replica that never uses Kafka pays nothing. */
extern const kafka_module oneshot_kafka_module;

const kafka_module *kafka_module_load(char *err, size_t errlen) {
    (void)err;
    (void)errlen;
    return &oneshot_kafka_module;
}
#else

#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static const kafka_module *loaded;
static void *handle;

static void *try_open(const char *dir, const char *rel, char *why, size_t whylen) {
    char path[PATH_MAX + 64];
    snprintf(path, sizeof(path), "%s%s/%s", dir, rel, KAFKA_MODULE_FILE);
    if (access(path, R_OK) != 0) return NULL;
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) snprintf(why, whylen, "%s", dlerror());
    return h;
}

const kafka_module *kafka_module_load(char *err, size_t errlen) {
    char self[PATH_MAX];
    char why[512] = "";

    pthread_mutex_lock(&mu);
    if (loaded) goto end;
    const char *envdir = getenv("ONESHOT_MODULE_DIR");
    if (envdir && *envdir) handle = try_open(envdir, "", why, sizeof(why));
    if (!handle) {
        ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
        if (n > 0) {
            self[n] = '\0';
            char *slash = strrchr(self, '/');
            if (slash) *slash = '\0';
            handle = try_open(self, "", why, sizeof(why));
            if (!handle) handle = try_open(self, "/../lib/oneshot", why, sizeof(why));
        }
    }
    if (!handle) {
        snprintf(err, errlen, "cannot load the Kafka module %s (beside the binary, in ../lib/oneshot, or "
                 "$ONESHOT_MODULE_DIR)%s%s", KAFKA_MODULE_FILE, why[0] ? ": " : "", why);
        goto end;
    }
    const kafka_module *m = dlsym(handle, "oneshot_kafka_module");
    if (!m || m->abi != KAFKA_MODULE_ABI) {
        snprintf(err, errlen, "%s: %s", KAFKA_MODULE_FILE,
                 m ? "built for another version of oneshot" : "no oneshot_kafka_module table");
        dlclose(handle);
        handle = NULL;
        goto end;
    }
    loaded = m;
end:
    pthread_mutex_unlock(&mu);
    return loaded;
}
#endif
