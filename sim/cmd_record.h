/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * `fleetmedic record [--mqtt URL] [--topic-prefix P] [-o FILE]
 * [--duration S]`: subscribes to P/+/+/health, P/+/+/kpi, P/+/+/feedback
 * and the controller's P/+/_fleetmedic/decisions, and writes one JSON line
 * per message (the log replay.h reads):
 *   {"t": receive time in ms since the epoch, "topic": "...", "payload": "..."}
 * with "source": "controller" on the decisions. Each line is flushed as it
 * is written. Stops on SIGINT or SIGTERM, or after --duration seconds.
 *
 * argv[0] is the command's name ("record"). Returns the process exit code:
 * 0 ok, 1 failure (the output cannot be written, the broker refused the
 * subscriptions), 2 usage.
 */
int fm_cmd_record(int argc, char **argv);
