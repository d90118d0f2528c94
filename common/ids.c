/* ids.c -- job ids and replica ids. */
#include "ids.h"

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

int id_valid(const char *s, size_t n) {
    if (n == 0 || n > ID_MAX) return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == ':' || c == '-'))
            return 0;
    }
    return 1;
}

void id_random_bytes(void *buf, size_t len) {
    unsigned char *p = buf;
    size_t got = 0;
    while (got < len) {
        ssize_t n = getrandom(p + got, len - got, 0);
        if (n <= 0) break;
        got += (size_t)n;
    }
    if (got == len) return;
    /* getrandom unavailable (old seccomp profiles): fall back to the clock
     * and pid. Ids need uniqueness, not secrecy. */
    uint64_t x = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)buf;
    for (; got < len; got++) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        p[got] = (unsigned char)x;
    }
}

void id_uuid4(char *out) {
    unsigned char r[16];
    id_random_bytes(r, sizeof(r));
    r[6] = (unsigned char)((r[6] & 0x0f) | 0x40);
    r[8] = (unsigned char)((r[8] & 0x3f) | 0x80);
    snprintf(out, 37,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
             r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11],
             r[12], r[13], r[14], r[15]);
}

void id_replica(char *out, size_t outlen) {
    char host[64] = "host";
    unsigned char r[2];
    gethostname(host, sizeof(host) - 1);
    host[sizeof(host) - 1] = '\0';
    /* Keep only id-safe characters: the replica id names Redis keys. */
    for (char *c = host; *c; c++)
        if (!id_valid(c, 1)) *c = '-';
    id_random_bytes(r, sizeof(r));
    snprintf(out, outlen, "%s-%ld-%02x%02x", host, (long)getpid(), r[0], r[1]);
}
