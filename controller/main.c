/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "cmd_record.h"
#include "cmd_replay.h"
#include "cmd_sim.h"
#include "cmd_tune.h"
#include "config.h"
#include "daemon.h"
#include "demo.h"
#include "http.h"
#include "status.h"

static void usage(FILE *out)
{
        fputs("Usage: fleetmedic [-h|--help] [-V|--version] COMMAND [OPTIONS]\n"
              "\n"
              "Self-healing controller for ML inference fleets.\n"
              "\n"
              "Commands:\n"
              "  run [-c CONFIG] [OPTIONS]\n"
              "        Run the controller: consume health, kpi and feedback events over MQTT,\n"
              "        keep fleet state and circuit breakers, run the configured policies\n"
              "        through the safety governor, and record and publish every decision.\n"
              "        Without -c it runs on the embedded defaults. Options override the file:\n"
              "          -c, --config FILE        YAML or JSON configuration\n"
              "          --mqtt URL               broker, mqtt://HOST[:PORT] or "
              "mqtts://HOST[:PORT]\n"
              "                                   (default mqtt://127.0.0.1:1883)\n"
              "          --listen ADDR:PORT       HTTP endpoints /metrics /healthz /readyz "
              "/status\n"
              "                                   (default 127.0.0.1:9187; port 0 picks a free "
              "one)\n"
              "          --state-dir DIR          state directory (default /var/lib/fleetmedic)\n"
              "          --topic-prefix P         event topics are P/DEPLOYMENT/INSTANCE/KIND\n"
              "                                   (default fleet)\n"
              "          --client-id ID           MQTT client id and session (default fleetmedic;\n"
              "                                   one per replica, e.g. the pod name)\n"
              "          --dry-run                record actions without executing them\n"
              "        Signals: SIGTERM and SIGINT stop cleanly; SIGHUP reloads the configuration\n"
              "        (an invalid file is refused and the running configuration kept).\n"
              "        With dry_run: false in the file, approved actions are journaled in the\n"
              "        state directory and executed through the backends actuators.bindings\n"
              "        names; actions a previous run left unfinished are settled at start.\n"
              "  check -c CONFIG\n"
              "        Validate a configuration; print every error as FILE:LINE: KEY: message.\n"
              "  status [--listen ADDR:PORT]\n"
              "        Print a running controller's state as tables (default 127.0.0.1:9187).\n"
              "  sim SCENARIO [-c CONFIG] [--report FILE.html] [--json FILE] [--baseline]\n"
              "      [--check]\n"
              "        Run a scenario (YAML or JSON) through the real decision core in simulated\n"
              "        time and print a summary. -c replaces the scenario's own config:; dry_run\n"
              "        is false unless the configuration sets it. --json writes the run\n"
              "        document ('-' for stdout), --report a self-contained HTML report,\n"
              "        --baseline also runs without the controller, --check exits 1 when an\n"
              "        expectation fails.\n"
              "  sim SCENARIO --live [--mqtt URL] [--topic-prefix P] [--speed X]\n"
              "      [--report FILE.html]\n"
              "        Publish the scenario's fleet events to a broker in real time (X simulated\n"
              "        seconds per second; default 1) for a running controller to decide on.\n"
              "  record [--mqtt URL] [--topic-prefix P] [-o FILE] [--duration S]\n"
              "        Write the events (P/+/+/{health,kpi,feedback}) and the controller's\n"
              "        decisions to a JSON-lines log until SIGINT/SIGTERM or S seconds.\n"
              "  replay LOG [-c CONFIG] [--topic-prefix P] [--json FILE] [--check] [-q]\n"
              "        Feed a recorded log through the decision core in dry-run with the log's\n"
              "        clock; print each decision and a summary; compare with the recorded\n"
              "        decisions (--check: exit 1 on a difference).\n"
              "  tune SCENARIO... --param NAME=LO:HI:STEP... [-c CONFIG]\n"
              "      [--false-action-weight W]\n"
              "        Grid-search numeric configuration keys over scenarios (at most 10000\n"
              "        points); print the best point by SLO minutes lost + W x false actions\n"
              "        (W default 10) and its margin over the configuration as given.\n"
              "  demo\n"
              "        Feed the decision core a built-in sequence of sample events (two\n"
              "        deployments, instances turning bad) and print each breaker decision\n"
              "        with its evidence.\n"
              "\n"
              "Exit status:\n"
              "  0  success\n"
              "  1  the command failed (run: start-up failed; check: the configuration is "
              "invalid;\n"
              "     status: the controller could not be reached; sim: the run failed or,\n"
              "     with --check, an expectation failed; record: the log cannot be written or\n"
              "     the subscriptions were refused; replay: unreadable log or configuration,\n"
              "     or with --check a mismatch; tune: unreadable files or a value the schema\n"
              "     refuses)\n"
              "  2  usage error\n",
              out);
}

enum {
        OPT_MQTT = 0x100,
        OPT_LISTEN,
        OPT_STATE_DIR,
        OPT_TOPIC_PREFIX,
        OPT_CLIENT_ID,
        OPT_DRY_RUN,
};

static int cmd_run(int argc, char **argv)
{
        static const struct option options[] = {
                {"config", required_argument, NULL, 'c'},
                {"mqtt", required_argument, NULL, OPT_MQTT},
                {"listen", required_argument, NULL, OPT_LISTEN},
                {"state-dir", required_argument, NULL, OPT_STATE_DIR},
                {"topic-prefix", required_argument, NULL, OPT_TOPIC_PREFIX},
                {"client-id", required_argument, NULL, OPT_CLIENT_ID},
                {"dry-run", no_argument, NULL, OPT_DRY_RUN},
                {"help", no_argument, NULL, 'h'},
                {0},
        };
        struct fm_daemon_options opt = {0};
        int c;

        while ((c = fm_cli_option(argc, argv, "c:h", options, usage)) >= 0) {
                switch (c) {
                case 'c':
                        opt.config_path = optarg;
                        break;
                case OPT_MQTT:
                        opt.mqtt_url = optarg;
                        break;
                case OPT_LISTEN:
                        opt.listen = optarg;
                        break;
                case OPT_STATE_DIR:
                        opt.state_dir = optarg;
                        break;
                case OPT_TOPIC_PREFIX:
                        opt.topic_prefix = optarg;
                        break;
                case OPT_CLIENT_ID:
                        opt.client_id = optarg;
                        break;
                case OPT_DRY_RUN:
                        opt.dry_run = true;
                        break;
                }
        }
        if (c != FM_CLI_END)
                return fm_cli_exit(c);
        if (optind != argc) {
                fprintf(stderr, "fleetmedic run: unexpected argument '%s'\n", argv[optind]);
                return FM_EXIT_USAGE;
        }
        return fm_daemon_run(&opt) < 0 ? FM_EXIT_FAILED : FM_EXIT_OK;
}

static int cmd_check(int argc, char **argv)
{
        static const struct option options[] = {
                {"config", required_argument, NULL, 'c'},
                {"help", no_argument, NULL, 'h'},
                {0},
        };
        const char *path = NULL;
        int c;

        while ((c = fm_cli_option(argc, argv, "c:h", options, usage)) >= 0)
                if (c == 'c')
                        path = optarg;
        if (c != FM_CLI_END)
                return fm_cli_exit(c);
        if (!path || optind != argc) {
                fprintf(stderr, "fleetmedic check: expected -c CONFIG\n");
                return FM_EXIT_USAGE;
        }

        struct fm_config cfg;
        unsigned n = 0;
        int r = fm_config_load(path, &cfg, stderr, &n);
        if (r < 0) {
                if (r == -EINVAL)
                        fprintf(stderr, "%s: %u error%s\n", path, n, n == 1 ? "" : "s");
                return FM_EXIT_FAILED;
        }
        printf("%s: valid\n", path);
        return FM_EXIT_OK;
}

static int cmd_status(int argc, char **argv)
{
        static const struct option options[] = {
                {"listen", required_argument, NULL, OPT_LISTEN},
                {"help", no_argument, NULL, 'h'},
                {0},
        };
        const char *listen = FM_HTTP_DEFAULT_LISTEN;
        int c;

        while ((c = fm_cli_option(argc, argv, "h", options, usage)) >= 0)
                if (c == OPT_LISTEN)
                        listen = optarg;
        if (c != FM_CLI_END)
                return fm_cli_exit(c);
        if (optind != argc) {
                fprintf(stderr, "fleetmedic status: unexpected argument '%s'\n", argv[optind]);
                return FM_EXIT_USAGE;
        }
        int r = fm_status_print(listen, stdout, stderr);
        if (r == -EINVAL)
                return FM_EXIT_USAGE;
        return r < 0 ? FM_EXIT_FAILED : FM_EXIT_OK;
}

static int cmd_demo(int argc, char **argv)
{
        (void)argv;
        if (argc != 1) {
                fprintf(stderr, "fleetmedic demo: takes no arguments\n");
                return FM_EXIT_USAGE;
        }
        int r = fm_demo_run(stdout);
        if (r < 0) {
                fprintf(stderr, "fleetmedic: demo failed: %s\n", strerror(-r));
                return FM_EXIT_FAILED;
        }
        return FM_EXIT_OK;
}

int main(int argc, char **argv)
{
        static const struct option options[] = {
                {"help", no_argument, NULL, 'h'},
                {"version", no_argument, NULL, 'V'},
                {0},
        };
        static const struct {
                const char *name;
                int (*run)(int argc, char **argv);
        } commands[] = {
                {"run", cmd_run},          {"check", cmd_check},  {"status", cmd_status},
                {"demo", cmd_demo},        {"sim", fm_cmd_sim},   {"record", fm_cmd_record},
                {"replay", fm_cmd_replay}, {"tune", fm_cmd_tune},
        };
        int c;

        while ((c = getopt_long(argc, argv, "+hV", options, NULL)) != -1) {
                switch (c) {
                case 'h':
                        usage(stdout);
                        return FM_EXIT_OK;
                case 'V':
                        printf("fleetmedic %s\n", FM_VERSION);
                        return FM_EXIT_OK;
                default:
                        usage(stderr);
                        return FM_EXIT_USAGE;
                }
        }
        if (optind >= argc) {
                usage(stderr);
                return FM_EXIT_USAGE;
        }

        const char *cmd = argv[optind];
        for (size_t k = 0; k < sizeof(commands) / sizeof(commands[0]); k++) {
                if (strcmp(cmd, commands[k].name) == 0) {
                        /* the command parses its own options from its name on */
                        int sub_argc = argc - optind;
                        char **sub_argv = argv + optind;
                        optind = 0;
                        return commands[k].run(sub_argc, sub_argv);
                }
        }
        fprintf(stderr, "fleetmedic: unknown command '%s'\n", cmd);
        usage(stderr);
        return FM_EXIT_USAGE;
}
