/* bundled.h -- the libraries in this binary, for `oneshot --version`. */
#ifndef ONESHOT_BUNDLED_H
#define ONESHOT_BUNDLED_H

#include <stdio.h>

/* The lines after --version's first: one per bundled library (static
 * build), or what the dynamic build links and loads. */
void bundled_print(FILE *out);

#endif
