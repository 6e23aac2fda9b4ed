/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * `fleetmedic tune SCENARIO... --param NAME=LO:HI:STEP... [-c CONFIG]
 * [--false-action-weight W]`: grid search of numeric configuration keys over
 * scenarios (tune_grid.h). Each point's configuration is the base (-c, else
 * each scenario's own config:, else the defaults) with the overrides, loaded
 * through the configuration schema (fm_config_load() on a private temporary
 * file that is removed at once), so a value the schema refuses is reported
 * as such. The simulator's rules apply: dry_run is false unless the base
 * sets it; hash keys from each scenario's seed.
 *
 * argv[0] is the command's name ("tune"). Prints the best point, its
 * objective and its margin over the base configuration. Returns the process
 * exit code: 0 ok, 1 failure, 2 usage.
 */
int fm_cmd_tune(int argc, char **argv);
