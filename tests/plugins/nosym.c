/* nosym.c -- test plugin that forgets to export oneshot_plugin_table. */
#include <oneshot/plugin.h>

int oneshot_not_a_table(void);
int oneshot_not_a_table(void) { return ONESHOT_PLUGIN_ABI; }
