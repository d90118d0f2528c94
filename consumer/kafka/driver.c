/* kafka/driver.c -- the Kafka broker in the registry (broker_kafka: its
 * names and flags, and operations that load the module on first use and
 * call its table), and finding and loading oneshot-kafka.so, or, in a
 * build with ONESHOT_KAFKA_BUILTIN (the static file, `make static`), the
 * Kafka code linked into the binary: no dlopen at run time. */
#include "module.h"

#include <stdio.h>

#include "../../common/exitcodes.h"

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

/* --- the driver: each operation loads the module, then calls it --- */

static const broker *kdrv_code(char *err, size_t errlen) {
    const kafka_module *m = kafka_module_load(err, errlen);
    return m ? m->broker : NULL;
}

static int kdrv_load(const source_ops **src, const store_ops **st, char *err, size_t errlen) {
    const broker *k = kdrv_code(err, errlen);
    if (!k) return -1;
    *src = k->source;
    *st = k->store;
    return 0;
}

/* A command's "oneshot CMD: why" and 69 when the module cannot be loaded. */
static const broker *kdrv_code_for(const char *cmd) {
    char err[512];
    const broker *k = kdrv_code(err, sizeof(err));
    if (!k) fprintf(stderr, "oneshot %s: %s\n", cmd, err);
    return k;
}

static int kdrv_submit(const config *cfg, const submission *sub, char *out_id, size_t n) {
    const broker *k = kdrv_code_for("submit");
    return k ? k->submit(cfg, sub, out_id, n) : OS_EXIT_UNAVAILABLE;
}

static int kdrv_status(const config *cfg, const char *id) {
    const broker *k = kdrv_code_for("status");
    return k ? k->status(cfg, id) : OS_EXIT_UNAVAILABLE;
}

static int kdrv_wait(const config *cfg, const char *id) {
    const broker *k = kdrv_code_for("wait");
    return k ? k->wait(cfg, id) : OS_EXIT_UNAVAILABLE;
}

static int kdrv_backlog_open(const config *cfg, void **state, char *err, size_t errlen) {
    const broker *k = kdrv_code(err, errlen);
    return k ? k->backlog_open(cfg, state, err, errlen) : -1;
}

/* Only after a backlog_open that loaded the module. */
static int kdrv_backlog_query(void *state, const config *cfg, backlog_count *out, char *err, size_t errlen) {
    return kdrv_code(err, errlen)->backlog_query(state, cfg, out, err, errlen);
}

static int kdrv_redrive(const config *cfg, struct rconn *c, const char *only, buf *moved, buf *skipped, int *n,
                         int *nskipped, int *matched, char *err, size_t errlen) {
    const broker *k = kdrv_code(err, errlen);
    *nskipped = *matched = 0;
    return k ? k->redrive(cfg, c, only, moved, skipped, n, nskipped, matched, err, errlen) : -1;
}

const broker broker_kafka = {
    .name = "kafka",
    .store_name = "kafka",
    .load = kdrv_load,
    .address_option = "kafka",
    .fleet_idle_timeout = "30", /* a group join alone can take seconds */
    .submit = kdrv_submit,
    .backlog_open = kdrv_backlog_open,
    .backlog_query = kdrv_backlog_query,
    .no_sweep = " (Kafka re-delivers an uncommitted offset by itself)",
    .redrive = kdrv_redrive,
    .redrive_all_only = "Kafka dead letters are re-driven in their order (--all); one letter by hand: README, "
                        "Kafka, \"Re-drive\"",
    .status = kdrv_status,
    .wait = kdrv_wait,
    .no_cancel = "the Kafka store keeps no cancel marks: run the replicas with --store redis (and cancel with "
                 "--redis), or stop the job's replica",
};
