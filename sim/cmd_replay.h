/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * `fleetmedic replay LOG [-c CONFIG] [--topic-prefix P] [--json FILE]
 * [--check] [--quiet]`: feeds a log written by `fleetmedic record` through
 * the decision core in dry-run with the clock taken from the log (see
 * replay.h), prints each decision as the daemon's audit record, then a
 * summary by policy and action; when the log holds the live controller's
 * decisions, how many the replay reproduced.
 *
 * argv[0] is the command's name ("replay"). Returns the process exit code:
 * 0 ok, 1 failure (unreadable log or configuration, a write error) or, with
 * --check, a decision that differs from the recorded ones, 2 usage.
 */
int fm_cmd_replay(int argc, char **argv);
