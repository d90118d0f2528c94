/* exitcodes.c -- the exit-code mapping. */
#include "exitcodes.h"

int exitcode_from_core(int code) {
    if (code == 0) return OS_EXIT_OK;
    if (code >= 1 && code <= OS_EXIT_FAILED_MAX) return code;
    return OS_EXIT_FAILED;
}

const char *exitcode_name(int code) {
    switch (code) {
    case OS_EXIT_OK:          return "ok";
    case OS_EXIT_REJECTED:    return "rejected";
    case OS_EXIT_NOINPUT:     return "unknown-job";
    case OS_EXIT_UNAVAILABLE: return "unavailable";
    case OS_EXIT_IDLE:        return "idle";
    case OS_EXIT_CONFIG:      return "config";
    case OS_EXIT_DEADLINE:    return "deadline";
    case OS_EXIT_SIGINT:      return "sigint";
    case OS_EXIT_TERM:        return "terminated";
    default:
        return (code >= 1 && code <= OS_EXIT_FAILED_MAX) ? "failed" : "unknown";
    }
}
