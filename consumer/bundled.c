/* bundled.c -- `oneshot --version`: the libraries inside the binary.
 *
 * Each version is asked of the library itself (its version function or,
 * for hiredis, its header's macros), so the list cannot drift from what is
 * linked. The static build (ONESHOT_STATIC, `make static`) carries every
 * library it uses; the dynamic build lists those it links in (libmicrohttpd,
 * hiredis, cJSON compiled from Debian's source package; cJSON shared with
 * `make CJSON=system`, ONESHOT_CJSON_SHARED), and librdkafka through the
 * Kafka module (main.c's first line). Their licenses: the notice file
 * installed beside the static binary (deploy/static/notice.sh). */
#include "bundled.h"

#include <cjson/cJSON.h>
#include <hiredis/hiredis.h>
#include <microhttpd.h>

#if ONESHOT_STATIC
#include <gnu/libc-version.h>
#include <librdkafka/rdkafka.h>
#include <lz4.h>
#include <openssl/crypto.h>
#include <zlib.h>
#include <zstd.h>
#endif

/* librdkafka's own list of what it was built with (builtin.features). */
#if ONESHOT_STATIC
static void rdkafka_features(char *out, size_t len) {
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    if (rd_kafka_conf_get(c, "builtin.features", out, &len) != RD_KAFKA_CONF_OK) snprintf(out, len, "?");
    rd_kafka_conf_destroy(c);
}
#endif

void bundled_print(FILE *out) {
#if ONESHOT_STATIC
    char features[512];
    rdkafka_features(features, sizeof(features));
    fprintf(out, "static build; bundled libraries (licenses: oneshot-static.NOTICE beside the binary):\n");
    fprintf(out, "  librdkafka %s (features: %s; no GSSAPI/Kerberos)\n", rd_kafka_version_str(), features);
    fprintf(out, "  hiredis %d.%d.%d with hiredis_ssl (TLS)\n", HIREDIS_MAJOR, HIREDIS_MINOR, HIREDIS_PATCH);
    fprintf(out, "  libmicrohttpd %s (no HTTPS: consumer/http/tls_stub.c)\n", MHD_get_version());
    fprintf(out, "  cJSON %s\n", cJSON_Version());
    fprintf(out, "  %s\n", OpenSSL_version(OPENSSL_VERSION));
    fprintf(out, "  zlib %s\n", zlibVersion());
    fprintf(out, "  zstd %s\n", ZSTD_versionString());
    fprintf(out, "  lz4 %s\n", LZ4_versionString());
    fprintf(out, "  glibc %s (static; host names from /etc/hosts and DNS, no NSS modules)\n",
            gnu_get_libc_version());
#else
#if ONESHOT_CJSON_SHARED
    const char *cjson = "shared";
#else
    const char *cjson = "linked in";
#endif
    fprintf(out, "dynamic build: hiredis %d.%d.%d and libmicrohttpd %s linked in, cJSON %s %s, librdkafka in %s\n",
            HIREDIS_MAJOR, HIREDIS_MINOR, HIREDIS_PATCH, MHD_get_version(), cJSON_Version(), cjson,
            "oneshot-kafka.so");
#endif
}
