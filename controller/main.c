/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "demo.h"

/* Exit codes, documented in --help. */
enum {
        EXIT_OK = 0,
        EXIT_FAILURE_RUN = 1,
        EXIT_USAGE = 2,
};

static void usage(FILE *out) {
        fputs("Usage: fleetmedic [OPTIONS] COMMAND\n"
              "\n"
              "Self-healing controller for ML inference fleets.\n"
              "\n"
              "Commands:\n"
              "  demo        Feed the decision core a built-in sequence of sample events\n"
              "              (two deployments, instances turning bad) and print each\n"
              "              breaker decision with its evidence.\n"
              "\n"
              "Options:\n"
              "  -h, --help     Show this help and exit.\n"
              "  -V, --version  Show the version and exit.\n"
              "\n"
              "Exit status:\n"
              "  0  success\n"
              "  1  the command failed\n"
              "  2  usage error\n",
              out);
}

int main(int argc, char **argv) {
        static const struct option options[] = {
                {"help", no_argument, NULL, 'h'},
                {"version", no_argument, NULL, 'V'},
                {0},
        };
        int c;

        while ((c = getopt_long(argc, argv, "+hV", options, NULL)) != -1) {
                switch (c) {
                case 'h':
                        usage(stdout);
                        return EXIT_OK;
                case 'V':
                        printf("fleetmedic %s\n", FM_VERSION);
                        return EXIT_OK;
                default:
                        usage(stderr);
                        return EXIT_USAGE;
                }
        }
        if (optind >= argc) {
                usage(stderr);
                return EXIT_USAGE;
        }

        const char *cmd = argv[optind];
        if (strcmp(cmd, "demo") == 0) {
                if (optind + 1 != argc) {
                        fprintf(stderr, "fleetmedic: demo takes no arguments\n");
                        return EXIT_USAGE;
                }
                int r = fm_demo_run(stdout);
                if (r < 0) {
                        fprintf(stderr, "fleetmedic: demo failed: %s\n", strerror(-r));
                        return EXIT_FAILURE_RUN;
                }
                return EXIT_OK;
        }
        fprintf(stderr, "fleetmedic: unknown command '%s'\n", cmd);
        usage(stderr);
        return EXIT_USAGE;
}
