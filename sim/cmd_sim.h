/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * `fleetmedic sim SCENARIO [-c CONFIG] [--report FILE.html] [--json FILE]
 * [--baseline] [--check]`: the simulator's front end (shell code: reads
 * files, writes files, prints).
 *
 * The controller's configuration is -c CONFIG when given, else the file the
 * scenario names under `config:` (relative to the scenario's directory),
 * else the embedded defaults. In the simulator `dry_run` defaults to false
 * so that the actions execute in the simulated fleet; a configuration that
 * sets `dry_run: true` explicitly runs the scenario in shadow: every
 * decision is recorded with the verdict dry_run and nothing is executed.
 * The hash keys of the fleet and the governor are derived from the seed.
 *
 * argv[0] is the command's name ("sim"). Prints a short human summary on
 * stdout; errors on stderr. Returns the process exit code: 0 ok, 1 the run
 * failed (unreadable or invalid files, a write error) or --check found an
 * expectation that failed, 2 usage.
 */
int fm_cmd_sim(int argc, char **argv);
