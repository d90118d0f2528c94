/* fleet.c -- placeholder until the fleet lands. */
#include "fleet.h"

#include <stdio.h>

#include "../common/exitcodes.h"

int fleet_run(const config *cfg, const char *self) {
    (void)cfg;
    (void)self;
    fprintf(stderr, "oneshot fleet: not built yet\n");
    return OS_EXIT_CONFIG;
}
