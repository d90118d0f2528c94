/* store.c -- the "none" store (the stores are found through their
 * brokers: broker_store). */
#include "store.h"


static int none_open(const config *cfg, void **state, char *err, size_t errlen) {
    (void)cfg;
    (void)err;
    (void)errlen;
    *state = NULL;
    return 0;
}

static int none_put_status(void *state, const status_rec *st, char *err, size_t errlen) {
    (void)state;
    (void)st;
    (void)err;
    (void)errlen;
    return 0;
}

static int none_put_result(void *state, const status_rec *st, const char *data, size_t len,
                           char *err, size_t errlen) {
    (void)state;
    (void)st;
    (void)data;
    (void)len;
    (void)err;
    (void)errlen;
    return 0;
}

static int none_cancelled(void *state, const char *id) {
    (void)state;
    (void)id;
    return 0;
}

static void none_close(void *state) { (void)state; }

const store_ops store_none = {
    .name = "none",
    .open = none_open,
    .put_status = none_put_status,
    .put_result = none_put_result,
    .cancelled = none_cancelled,
    .close = none_close,
};
