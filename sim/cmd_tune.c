/* SPDX-License-Identifier: MIT */
#include "cmd_tune.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "cli.h"
#include "config.h"
#include "scenario.h"
#include "sim.h"
#include "tune_grid.h"

enum {
        OPT_PARAM = 0x100,
        OPT_WEIGHT,
};

#define TUNE_SCENARIOS_MAX 64

static void usage(FILE *out)
{
        fputs("Usage: fleetmedic tune SCENARIO... --param NAME=LO:HI:STEP... [-c CONFIG]\n"
              "                       [--false-action-weight W]\n"
              "\n"
              "Grid-searches configuration parameters over scenarios: runs every scenario\n"
              "through the core for every point of the grid (the cartesian product of the\n"
              "parameters' values, at most 10000 points) and prints the point with the\n"
              "lowest objective, SLO minutes lost + W x false actions summed over the\n"
              "scenarios, and its margin over the current setting (the configuration as\n"
              "given). Ties go to the first point in grid order (the last parameter\n"
              "varies fastest). The same inputs print the same result.\n"
              "\n"
              "      --param NAME=LO:HI:STEP  a numeric configuration key (dotted, e.g.\n"
              "                          breaker.failure_rate=0.3:0.7:0.1); up to 8\n"
              "  -c, --config FILE       base configuration for every scenario (default:\n"
              "                          each scenario's own config:, else the defaults)\n"
              "      --false-action-weight W  (default 10)\n"
              "  -h, --help              show this help\n"
              "\n"
              "Exit status: 0 ok, 1 failure (unreadable files, a value the schema\n"
              "refuses), 2 usage.\n",
              out);
}

struct scenario {
        const char *path;
        struct fm_scenario *sc;
        json_object *base; /* its base configuration tree */
        bool explicit_dry_run;
};

static int base_config(struct scenario *s, const char *config)
{
        char path[FM_SCN_PATH_MAX + 1024];
        if (!config && s->sc->config[0]) {
                int r = fm_cli_scenario_config(s->path, s->sc->config, path, sizeof(path));
                if (r < 0)
                        return r;
                config = path;
        }
        if (!config) {
                s->base = json_object_new_object();
                return s->base ? 0 : -ENOMEM;
        }
        int r = fm_yaml_load(config, &s->base, NULL, stderr);
        if (r < 0)
                return r;
        s->explicit_dry_run = json_object_object_get_ex(s->base, "dry_run", NULL);
        return 0;
}

/*
 * The configuration of s with the overrides: written as JSON (which the
 * YAML loader reads) to a private temporary file, loaded through the one
 * schema, removed.
 */
static int point_config(const struct scenario *s, const struct fm_tunegrid *g, const double *values,
                        struct fm_core_config *core, fm_ms *tick)
{
        json_object *tree = NULL;
        char path[] = "/tmp/fleetmedic-tune-XXXXXX";
        int r, fd = -1;

        if (json_object_deep_copy(s->base, &tree, NULL) < 0)
                return -ENOMEM;
        for (uint32_t k = 0; k < g->n_params; k++)
                if ((r = fm_tunegrid_set(tree, g->param[k].name, values[k])) < 0) {
                        fprintf(stderr, "fleetmedic tune: %s: %s\n", g->param[k].name,
                                r == -EINVAL ? "a key on the way is not a section" : strerror(-r));
                        json_object_put(tree);
                        return r;
                }
        const char *text = json_object_to_json_string_ext(tree, JSON_C_TO_STRING_PLAIN);
        fd = mkstemp(path);
        if (fd < 0 || !text) {
                r = fd < 0 ? -errno : -ENOMEM;
                goto out;
        }
        size_t len = strlen(text);
        if (write(fd, text, len) != (ssize_t)len) {
                r = -EIO;
                goto out;
        }
        struct fm_config *cfg = malloc(sizeof(*cfg));
        if (!cfg) {
                r = -ENOMEM;
                goto out;
        }
        fm_config_default(cfg);
        r = fm_config_load(path, cfg, stderr, NULL);
        if (r >= 0) {
                fm_cli_sim_core(cfg, s->explicit_dry_run, s->sc->seed, core);
                *tick = cfg->tick;
        }
        free(cfg);
out:
        if (fd >= 0) {
                close(fd);
                unlink(path);
        }
        json_object_put(tree);
        return r;
}

struct score {
        double objective, slo_minutes_lost;
        uint64_t false_actions;
};

/* Every scenario at one point (g NULL: the base configurations as they are). */
static int evaluate(struct scenario *sc, unsigned n, const struct fm_tunegrid *g,
                    const double *values, double weight, struct score *ret)
{
        static const struct fm_tunegrid none = {0};
        struct fm_core_config *core = malloc(sizeof(*core));
        struct score s = {0};
        int r = 0;

        if (!core)
                return -ENOMEM;
        for (unsigned k = 0; k < n; k++) {
                fm_ms tick = 0;
                struct fm_sim_run *run = NULL;
                r = point_config(&sc[k], g ? g : &none, values, core, &tick);
                if (r < 0)
                        break;
                struct fm_sim_options opt = {.core = core, .tick = tick};
                r = fm_sim_run(sc[k].sc, &opt, &run);
                if (r < 0) {
                        fprintf(stderr, "fleetmedic tune: %s: %s\n", sc[k].path,
                                r == -EINVAL ? "the core refused the configuration" : strerror(-r));
                        break;
                }
                s.slo_minutes_lost += run->summary.slo_minutes_lost;
                s.false_actions += run->summary.false_actions;
                fm_sim_run_free(run);
        }
        free(core);
        s.objective = fm_tunegrid_objective(s.slo_minutes_lost, s.false_actions, weight);
        if (r >= 0)
                *ret = s;
        return r;
}

static void print_point(const struct fm_tunegrid *g, const double *values)
{
        for (uint32_t k = 0; k < g->n_params; k++)
                printf("%s%s=%.10g", k ? " " : "", g->param[k].name, values[k]);
}

int fm_cmd_tune(int argc, char **argv)
{
        static const struct option options[] = {
                {"param", required_argument, NULL, OPT_PARAM},
                {"config", required_argument, NULL, 'c'},
                {"false-action-weight", required_argument, NULL, OPT_WEIGHT},
                {"help", no_argument, NULL, 'h'},
                {0},
        };
        struct fm_tunegrid grid = {0};
        const char *config = NULL;
        double weight = FM_TUNEGRID_DEFAULT_FALSE_ACTION_WEIGHT;
        int c, r;

        while ((c = fm_cli_option(argc, argv, "c:h", options, usage)) >= 0) {
                switch (c) {
                case OPT_PARAM:
                        r = fm_tunegrid_add(&grid, optarg);
                        if (r < 0) {
                                fprintf(stderr, "fleetmedic tune: --param %s: %s\n", optarg,
                                        r == -E2BIG ? "more than 8 parameters or 10000 points"
                                                    : "expected NAME=LO:HI:STEP with LO <= HI, "
                                                      "STEP > 0, each NAME once");
                                return FM_EXIT_USAGE;
                        }
                        break;
                case 'c':
                        config = optarg;
                        break;
                case OPT_WEIGHT:
                        if (fm_cli_number(optarg, &weight) < 0 || weight < 0) {
                                fprintf(stderr,
                                        "fleetmedic tune: --false-action-weight %s: "
                                        "expected a number >= 0\n",
                                        optarg);
                                return FM_EXIT_USAGE;
                        }
                        break;
                }
        }
        if (c != FM_CLI_END)
                return fm_cli_exit(c);
        unsigned n = (unsigned)(argc - optind);
        if (n == 0 || n > TUNE_SCENARIOS_MAX || grid.n_params == 0) {
                fprintf(stderr,
                        "fleetmedic tune: expected 1..%d SCENARIO files and at least one "
                        "--param\n",
                        TUNE_SCENARIOS_MAX);
                usage(stderr);
                return FM_EXIT_USAGE;
        }

        struct scenario *sc = calloc(n, sizeof(*sc));
        int ret = FM_EXIT_FAILED;
        if (!sc)
                goto out;
        for (unsigned k = 0; k < n; k++) {
                sc[k].path = argv[optind + (int)k];
                sc[k].sc = calloc(1, sizeof(*sc[k].sc));
                if (!sc[k].sc || fm_cli_load_scenario(sc[k].path, sc[k].sc) < 0 ||
                    base_config(&sc[k], config) < 0)
                        goto out;
        }

        struct score current, best = {0}, s;
        double values[FM_TUNEGRID_PARAMS_MAX], best_values[FM_TUNEGRID_PARAMS_MAX];
        uint64_t best_i = 0;
        if (evaluate(sc, n, NULL, values, weight, &current) < 0)
                goto out;
        for (uint64_t i = 0; i < grid.points; i++) {
                fm_tunegrid_point(&grid, i, values);
                if (evaluate(sc, n, &grid, values, weight, &s) < 0) {
                        fprintf(stderr, "fleetmedic tune: at ");
                        for (uint32_t k = 0; k < grid.n_params; k++)
                                fprintf(stderr, "%s%s=%.10g", k ? " " : "", grid.param[k].name,
                                        values[k]);
                        fprintf(stderr, "\n");
                        goto out;
                }
                if (i == 0 || s.objective < best.objective) {
                        best = s;
                        best_i = i;
                        memcpy(best_values, values, sizeof(values));
                }
        }
        printf("tune: %u scenarios x %" PRIu64 " points, objective = SLO minutes lost + %g x "
               "false actions\n",
               n, grid.points, weight);
        printf("best:    ");
        print_point(&grid, best_values);
        printf("\n         objective %.4f (SLO minutes lost %.4f, false actions %" PRIu64
               "), point %" PRIu64 "\n",
               best.objective, best.slo_minutes_lost, best.false_actions, best_i);
        printf("current: objective %.4f (SLO minutes lost %.4f, false actions %" PRIu64 ")\n",
               current.objective, current.slo_minutes_lost, current.false_actions);
        printf("margin:  %.4f better than the current setting\n",
               current.objective - best.objective);
        ret = fflush(stdout) == EOF ? FM_EXIT_FAILED : FM_EXIT_OK;
out:
        for (unsigned k = 0; sc && k < n; k++) {
                free(sc[k].sc);
                json_object_put(sc[k].base);
        }
        free(sc);
        return ret;
}
