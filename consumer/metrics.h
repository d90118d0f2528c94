/* metrics.h -- the replica's metrics in the Prometheus text format (0.0.4).
 *
 * GET /metrics renders them from the replica's observable state (replica.h)
 * for as long as the process lives. A replica lives for one job and is
 * usually gone before Prometheus scrapes it, so at exit metrics_final
 * records the job's final figures and, with --pushgateway, pushes the
 * final metrics once (pushgw.h). */
#ifndef ONESHOT_METRICS_H
#define ONESHOT_METRICS_H

#include <stddef.h>

#include "../common/status.h"
#include "../config/config.h"

#define METRICS_PUSH_JOB "oneshot"      /* the Pushgateway's job label */
#define METRICS_PUSH_TIMEOUT_MS 2000    /* the whole push, connect to answer */

/* The renderer for httpd_set_metrics: a malloc'd body the caller frees. */
void metrics_render(char **body, size_t *len);

/* Keep the final status (duration, attempt, cpu, memory) for later
 * renders, then, when cfg->pushgateway is set, PUT the final metrics
 * (oneshot_up 0) to <URL>/metrics/job/oneshot/instance/<replica id>.
 * Never fails the replica: a push that fails is logged at warn. */
void metrics_final(const config *cfg, const status_rec *st);

#endif
