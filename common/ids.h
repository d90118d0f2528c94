/* ids.h -- job ids and replica ids. */
#ifndef ONESHOT_IDS_H
#define ONESHOT_IDS_H

#include <stddef.h>

#define ID_MAX 200 /* a job id is 1..200 bytes of [A-Za-z0-9._:-] */

/* 1 when s[0..n) is a valid job id, else 0. */
int id_valid(const char *s, size_t n);
/* A random RFC 4122 version-4 UUID into out (>= 37 bytes). */
void id_uuid4(char *out);
/* Fill buf with len random bytes (getrandom, /dev/urandom fallback). */
void id_random_bytes(void *buf, size_t len);
/* The replica (worker) id: hostname-pid-4 random hex, into out. */
void id_replica(char *out, size_t outlen);

#endif
