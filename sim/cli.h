/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * What the command front ends (controller/main.c, sim/cmd_*.c) share: the
 * exit codes, the option loop's handling of --help and of usage errors,
 * option values, output files, and the loading of scenarios and of the
 * configuration of a simulated run. Shell code for front ends: it prints
 * its errors on stderr.
 */

#include <getopt.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "config.h"
#include "core.h"
#include "scenario.h"

/* The process exit codes every command documents in its --help. */
enum {
        FM_EXIT_OK = 0,
        FM_EXIT_FAILED = 1,
        FM_EXIT_USAGE = 2,
};

/* What fm_cli_option() returns besides the options of the command. */
enum {
        FM_CLI_END = -1,  /* no more options; optind is at the first operand */
        FM_CLI_HELP = -2, /* -h or --help: the usage is printed on stdout */
        FM_CLI_BAD = -3,  /* an unknown option or a missing value, which getopt printed */
};

/*
 * getopt_long() for a command whose shortopts include "h" and whose options
 * include {"help", no_argument, NULL, 'h'}: the next option of the command,
 * or one of FM_CLI_*. fm_cli_exit() of a value other than FM_CLI_END is the
 * command's exit code.
 */
int fm_cli_option(int argc, char **argv, const char *shortopts, const struct option *options,
                  void (*usage)(FILE *out));

/* The exit code for FM_CLI_HELP (0) or FM_CLI_BAD (2). */
int fm_cli_exit(int c);

/* A whole option value that is a finite number, in strtod()'s syntax; -EINVAL if not. */
int fm_cli_number(const char *s, double *ret);

/*
 * A --topic-prefix value: 1..FM_PREFIX_MAX bytes without + or # or a
 * trailing /. Prints what is wrong as "fleetmedic CMD: ..." and returns false.
 */
bool fm_cli_prefix_ok(const char *cmd, const char *prefix);

/*
 * The output file path opened with mode ("we", "ae"); "-" is stdout. NULL
 * with errno set on failure.
 */
FILE *fm_cli_open_output(const char *path, const char *mode);

/*
 * Closes what fm_cli_open_output() gave (stdout is flushed, not closed).
 * Returns r, else -EIO when the stream failed.
 */
int fm_cli_close_output(FILE *f, int r);

/*
 * Loads the scenario file path (YAML or JSON) into sc. Every error is
 * printed on stderr. Returns 0, -EINVAL (invalid), or another negative errno.
 */
int fm_cli_load_scenario(const char *path, struct fm_scenario *sc);

/*
 * The path of the configuration a scenario names under config:, relative to
 * the scenario file's directory unless absolute. -ENAMETOOLONG when it does
 * not fit.
 */
int fm_cli_scenario_config(const char *scenario, const char *config, char *out, size_t size);

/*
 * The core configuration of a simulated run from cfg: dry_run only when the
 * configuration file set it (explicit_dry_run), else false; the fleet's and
 * the governor's hash keys derived from the scenario's seed, so that a run
 * is repeatable to the byte.
 */
void fm_cli_sim_core(const struct fm_config *cfg, bool explicit_dry_run, uint64_t seed,
                     struct fm_core_config *ret);
