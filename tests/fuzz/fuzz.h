/* fuzz.h -- shared by the libFuzzer harnesses in tests/fuzz/.
 *
 * Each fuzz_X.c defines LLVMFuzzerTestOneInput and is linked by
 * `make fuzz-build` against the product objects built with coverage,
 * ASan and UBSan ($(BUILD)/fuzz). A broken invariant calls fuzz_fail, which
 * aborts: libFuzzer keeps the input as a crash artifact. */
#ifndef ONESHOT_FUZZ_H
#define ONESHOT_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define fuzz_fail(...)                                                   \
    do {                                                                 \
        fprintf(stderr, "fuzz invariant broken at %s:%d: ", __FILE__, __LINE__); \
        fprintf(stderr, __VA_ARGS__);                                    \
        fputc('\n', stderr);                                             \
        abort();                                                         \
    } while (0)

/* A NUL-terminated copy of the input (malloc'd), as a C string API gets it. */
static inline char *fuzz_cstr(const uint8_t *data, size_t size) {
    char *s = malloc(size + 1);
    if (!s) abort();
    if (size) memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

#endif
