/* fleet.h -- `oneshot fleet`: the batch-jobs platform on one machine
 *.
 *
 * A single-threaded supervisor: it reads the backlog of the replicas'
 * source (backlog.h), starts one replica (this binary, `run`) per waiting
 * job up to --max-concurrent, passes their log lines through with their
 * pid, stops a replica at --deadline (SIGTERM, SIGKILL after --term-grace
 * + 10 s), reaps and tallies them by exit code, and prints one JSON summary
 * line on stdout when it ends (--drain: once nothing is queued or pending
 * and no replica runs; otherwise on SIGINT or SIGTERM). */
#ifndef ONESHOT_FLEET_H
#define ONESHOT_FLEET_H

#include "../config/config.h"

/* cfg: the fleet's own settings (from the arguments before `--`).
 * argc/argv: every argument after the word `fleet`, `--` and the replica
 * options included; settings before `--` that are not the fleet's own
 * (--max-concurrent, --poll-ms, --drain, --deadline) go to the replicas
 * too. self: argv[0], used when /proc/self/exe cannot be read. Returns
 * the exit code: 0 when every replica that took a job exited 0, 1 when
 * one did not, 78 when the replicas cannot run with these options. */
int fleet_run(const config *cfg, const char *self, int argc, char **argv);

#endif
