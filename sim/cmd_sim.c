/* SPDX-License-Identifier: MIT */
#include "cmd_sim.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "cli.h"
#include "config.h"
#include "live.h"
#include "mqtt.h"
#include "report.h"
#include "sim.h"

enum {
        OPT_REPORT = 0x100,
        OPT_JSON,
        OPT_BASELINE,
        OPT_CHECK,
        OPT_LIVE,
        OPT_MQTT,
        OPT_SPEED,
        OPT_PREFIX,
};

static void usage(FILE *out)
{
        fputs("Usage: fleetmedic sim SCENARIO [-c CONFIG] [--report FILE.html] [--json FILE]\n"
              "                      [--baseline] [--check]\n"
              "       fleetmedic sim SCENARIO --live [--mqtt URL] [--topic-prefix P]\n"
              "                      [--speed X] [-c CONFIG] [--report FILE.html] [--json FILE]\n"
              "\n"
              "Runs a scenario (YAML or JSON) through the real decision core in simulated\n"
              "time and prints a summary. With --live, publishes the simulated fleet's\n"
              "events to an MQTT broker in real time instead, for a running controller to\n"
              "decide on (no core runs in the simulator, no action reaches its fleet); a\n"
              "report or run document asked for is then that of the same scenario run\n"
              "through the core here, written before the live run starts.\n"
              "\n"
              "  -c, --config FILE   controller configuration (default: the scenario's\n"
              "                      `config:`, else the defaults); dry_run is false unless\n"
              "                      the file sets it\n"
              "      --json FILE     write the run document (JSON; '-' for stdout)\n"
              "      --report FILE   write a self-contained HTML report\n"
              "      --baseline      also run without the controller, under \"baseline\"\n"
              "      --check         exit 1 when an expectation of the scenario fails\n"
              "      --live          publish the events to a broker in real time\n"
              "      --mqtt URL      with --live: mqtt://HOST[:PORT] (default\n"
              "                      mqtt://127.0.0.1:1883)\n"
              "      --topic-prefix P  with --live: topics P/DEPLOYMENT/INSTANCE/KIND\n"
              "                      (default fleet)\n"
              "      --speed X       with --live: simulated seconds per second (default 1;\n"
              "                      60 plays a minute per second)\n"
              "  -h, --help          show this help\n"
              "\n"
              "Exit status: 0 ok, 1 failure or a failed expectation with --check, 2 usage.\n",
              out);
}

/* Whether the file sets dry_run itself (the simulator's default differs from the daemon's). */
static int sets_dry_run(const char *path, bool *ret)
{
        struct json_object *root = NULL;
        int r = fm_yaml_load(path, &root, NULL, NULL);
        if (r < 0)
                return r;
        *ret = json_object_object_get_ex(root, "dry_run", NULL);
        json_object_put(root);
        return 0;
}

static int load_config(const char *path, uint64_t seed, struct fm_core_config *core, fm_ms *tick)
{
        struct fm_config *cfg = malloc(sizeof(*cfg));
        bool explicit_dry_run = false;
        int r = 0;

        if (!cfg)
                return -ENOMEM;
        fm_config_default(cfg);
        if (path) {
                r = fm_config_load(path, cfg, stderr, NULL);
                if (r >= 0)
                        r = sets_dry_run(path, &explicit_dry_run);
                if (r < 0) {
                        free(cfg);
                        return r;
                }
        }
        fm_cli_sim_core(cfg, explicit_dry_run, seed, core);
        *tick = cfg->tick;
        free(cfg);
        return 0;
}

static int write_json(const char *path, struct json_object *doc)
{
        FILE *f = fm_cli_open_output(path, "we");
        if (!f)
                return -errno;
        const char *s = json_object_to_json_string_ext(doc, JSON_C_TO_STRING_PLAIN |
                                                                    JSON_C_TO_STRING_NOSLASHESCAPE);
        int r = 0;
        if (!s || fputs(s, f) == EOF || fputc('\n', f) == EOF)
                r = -EIO;
        return fm_cli_close_output(f, r);
}

static int write_report(const char *path, struct json_object *doc)
{
        FILE *f = fopen(path, "we");
        if (!f)
                return -errno;
        return fm_cli_close_output(f, fm_sim_report_html(doc, f));
}

static void print_seconds(const char *label, double v)
{
        if (isnan(v))
                printf("  %-20s -\n", label);
        else
                printf("  %-20s %.0f s\n", label, v);
}

static void print_summary(const struct fm_sim_run *run, const struct fm_sim_run *base)
{
        const struct fm_scenario *sc = run->sc;
        const struct fm_sim_summary *s = &run->summary;

        printf("scenario %s: %lld s simulated, seed %llu\n", sc->name, (long long)sc->duration_s,
               (unsigned long long)sc->seed);
        print_seconds("time to detect", s->time_to_detect_s);
        print_seconds("time to mitigate", s->time_to_mitigate_s);
        printf("  %-20s %.2f", "SLO minutes lost", s->slo_minutes_lost);
        if (base)
                printf(" (baseline %.2f)", base->summary.slo_minutes_lost);
        printf("\n  %-20s %.4f\n", "error budget burnt", s->error_budget_burnt);
        printf("  %-20s %llu (false %llu)\n", "actions", (unsigned long long)s->actions,
               (unsigned long long)s->false_actions);
        printf("  %-20s %.2f\n", "instance-hours", s->instance_hours);
        for (uint32_t k = 0; k < sc->n_expect; k++)
                printf("  %s %s: %s\n", run->expect[k].ok ? "PASS" : "FAIL", sc->expect[k].name,
                       run->expect[k].detail);
}

/* Publishes sc live; prints what it did. Errors are printed. */
static int run_live(const struct fm_scenario *sc, const char *url, const char *prefix, double speed)
{
        struct fm_mqtt_config *mc = malloc(sizeof(*mc));
        struct fm_live_stats st = {0};
        int r = -EINVAL;

        if (!mc) {
                fprintf(stderr, "fleetmedic sim: out of memory\n");
                return -ENOMEM;
        }
        fm_mqtt_config_default(mc);
        if (url && fm_mqtt_parse_url(mc, url) < 0) {
                fprintf(stderr,
                        "fleetmedic sim: --mqtt %s: expected mqtt://HOST[:PORT] or "
                        "mqtts://HOST[:PORT]\n",
                        url);
                goto out;
        }
        if (prefix) {
                if (!fm_cli_prefix_ok("sim", prefix))
                        goto out;
                memcpy(mc->topic_prefix, prefix, strlen(prefix) + 1);
        }
        struct fm_live_options lo = {.mqtt = mc, .speed = speed, .progress = true};
        r = fm_live_run(sc, &lo, &st);
        if (r < 0 && r != -EINTR) {
                fprintf(stderr, "fleetmedic sim --live: %s\n", strerror(-r));
                goto out;
        }
        printf("scenario %s live: %" PRIu64 " steps, %" PRIu64 " events published, %" PRIu64
               " failed%s\n",
               sc->name, st.steps, st.published, st.publish_failures,
               r == -EINTR ? " (interrupted)" : "");
out:
        free(mc);
        return r;
}

int fm_cmd_sim(int argc, char **argv)
{
        static const struct option options[] = {
                {"config", required_argument, NULL, 'c'},
                {"report", required_argument, NULL, OPT_REPORT},
                {"json", required_argument, NULL, OPT_JSON},
                {"baseline", no_argument, NULL, OPT_BASELINE},
                {"check", no_argument, NULL, OPT_CHECK},
                {"live", no_argument, NULL, OPT_LIVE},
                {"mqtt", required_argument, NULL, OPT_MQTT},
                {"speed", required_argument, NULL, OPT_SPEED},
                {"topic-prefix", required_argument, NULL, OPT_PREFIX},
                {"help", no_argument, NULL, 'h'},
                {0},
        };
        const char *config = NULL, *report = NULL, *json = NULL;
        const char *mqtt_url = NULL, *prefix = NULL;
        bool baseline = false, check = false, live = false;
        double speed = 1;
        int c;

        while ((c = fm_cli_option(argc, argv, "c:h", options, usage)) >= 0) {
                switch (c) {
                case 'c':
                        config = optarg;
                        break;
                case OPT_REPORT:
                        report = optarg;
                        break;
                case OPT_JSON:
                        json = optarg;
                        break;
                case OPT_BASELINE:
                        baseline = true;
                        break;
                case OPT_CHECK:
                        check = true;
                        break;
                case OPT_LIVE:
                        live = true;
                        break;
                case OPT_MQTT:
                        mqtt_url = optarg;
                        break;
                case OPT_PREFIX:
                        prefix = optarg;
                        break;
                case OPT_SPEED:
                        if (fm_cli_number(optarg, &speed) < 0 || !(speed > 0) ||
                            speed > FM_LIVE_SPEED_MAX) {
                                fprintf(stderr,
                                        "fleetmedic sim: --speed %s: expected a number in "
                                        "(0, %.0f]\n",
                                        optarg, FM_LIVE_SPEED_MAX);
                                return FM_EXIT_USAGE;
                        }
                        break;
                }
        }
        if (c != FM_CLI_END)
                return fm_cli_exit(c);
        if (optind + 1 != argc) {
                fprintf(stderr, "fleetmedic sim: expected one SCENARIO file\n");
                usage(stderr);
                return FM_EXIT_USAGE;
        }
        const char *path = argv[optind];
        if (!live && (mqtt_url || prefix)) {
                fprintf(stderr, "fleetmedic sim: --mqtt and --topic-prefix need --live\n");
                return FM_EXIT_USAGE;
        }
        if (live && (baseline || check)) {
                fprintf(stderr, "fleetmedic sim: --baseline and --check do not go with --live\n");
                return FM_EXIT_USAGE;
        }

        struct fm_scenario *sc = calloc(1, sizeof(*sc));
        struct fm_core_config *core = calloc(1, sizeof(*core));
        struct fm_sim_run *run = NULL, *base = NULL;
        struct json_object *doc = NULL;
        char cfg_path[FM_SCN_PATH_MAX + 1024];
        int ret = FM_EXIT_FAILED, r;
        fm_ms tick = FM_MS_PER_S;

        if (!sc || !core) {
                fprintf(stderr, "fleetmedic sim: out of memory\n");
                goto out;
        }
        if (fm_cli_load_scenario(path, sc) < 0)
                goto out;
        if (live && !json && !report) {
                ret = run_live(sc, mqtt_url, prefix, speed) < 0 ? FM_EXIT_FAILED : FM_EXIT_OK;
                goto out;
        }
        if (!config && sc->config[0]) {
                if (fm_cli_scenario_config(path, sc->config, cfg_path, sizeof(cfg_path)) < 0) {
                        fprintf(stderr, "%s: config: path too long\n", path);
                        goto out;
                }
                config = cfg_path;
        }
        if ((r = load_config(config, sc->seed, core, &tick)) < 0) {
                if (r == -ENOMEM)
                        fprintf(stderr, "fleetmedic sim: out of memory\n");
                goto out;
        }

        struct fm_sim_options opt = {.core = core, .tick = tick, .series = json || report};
        r = fm_sim_run(sc, &opt, &run);
        if (r < 0) {
                fprintf(stderr, "fleetmedic sim: %s: %s\n", path,
                        r == -EINVAL ? "the core refused the configuration" : strerror(-r));
                goto out;
        }
        if (baseline) {
                opt.core = NULL;
                r = fm_sim_run(sc, &opt, &base);
                if (r < 0) {
                        fprintf(stderr, "fleetmedic sim: baseline: %s\n", strerror(-r));
                        goto out;
                }
        }
        if (json || report) {
                r = fm_sim_run_json(run, base, &doc);
                if (r < 0) {
                        fprintf(stderr, "fleetmedic sim: %s\n", strerror(-r));
                        goto out;
                }
        }
        if (json && (r = write_json(json, doc)) < 0) {
                fprintf(stderr, "fleetmedic sim: %s: %s\n", json, strerror(-r));
                goto out;
        }
        if (report && (r = write_report(report, doc)) < 0) {
                fprintf(stderr, "fleetmedic sim: %s: %s\n", report, strerror(-r));
                goto out;
        }
        if (!live && (!json || strcmp(json, "-") != 0))
                print_summary(run, base);
        if (live) {
                /* the report is written first: the live run ends the command */
                ret = run_live(sc, mqtt_url, prefix, speed) < 0 ? FM_EXIT_FAILED : FM_EXIT_OK;
                goto out;
        }
        ret = check && !fm_sim_expectations_ok(run) ? FM_EXIT_FAILED : FM_EXIT_OK;
out:
        json_object_put(doc);
        fm_sim_run_free(base);
        fm_sim_run_free(run);
        free(core);
        free(sc);
        return ret;
}
