/* SPDX-License-Identifier: MIT */
#include "cmd_replay.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "config.h"
#include "replay.h"

enum {
        OPT_JSON = 0x100,
        OPT_CHECK,
        OPT_PREFIX,
};

/* Rows of the summary table. */
#define SUMMARY_ROWS 256

static void usage(FILE *out)
{
        fputs("Usage: fleetmedic replay LOG [-c CONFIG] [--topic-prefix P] [--json FILE]\n"
              "                         [--check] [-q]\n"
              "\n"
              "Feeds a log written by `fleetmedic record` through the decision core in\n"
              "dry-run, with the clock taken from the log, and prints what the controller\n"
              "would have decided: each decision as its audit record (JSON), then counts\n"
              "by policy and action. When the log holds the live controller's decisions,\n"
              "prints how many the replay reproduced (same type, deployment, instance,\n"
              "action, policy and verdict, within one tick).\n"
              "\n"
              "  -c, --config FILE       controller configuration (default: the embedded\n"
              "                          defaults); its tick_s is the replay's tick\n"
              "      --topic-prefix P    topic prefix of the events (default: the\n"
              "                          configuration's mqtt.topic_prefix)\n"
              "      --json FILE         write the decisions as JSON lines ('-' for stdout)\n"
              "      --check             exit 1 when a decision differs from the recorded ones\n"
              "  -q, --quiet             print only the summary\n"
              "  -h, --help              show this help\n"
              "\n"
              "Exit status: 0 ok, 1 failure or, with --check, a mismatch, 2 usage.\n",
              out);
}

static int read_log(const char *path, struct fm_replay_log *log)
{
        FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "re");
        char *line = NULL;
        size_t size = 0;
        ssize_t n;
        uint64_t lineno = 0;
        int r = 0;

        if (!f) {
                r = -errno;
                fprintf(stderr, "fleetmedic replay: %s: %s\n", path, strerror(-r));
                return r;
        }
        while ((n = getline(&line, &size, f)) >= 0) {
                lineno++;
                if (n == 0 || (n == 1 && line[0] == '\n'))
                        continue;
                r = fm_replay_log_add_line(log, line, (size_t)n);
                if (r == -EBADMSG) {
                        if (log->bad_lines <= 10)
                                fprintf(stderr, "%s:%" PRIu64 ": not a log entry; skipped\n", path,
                                        lineno);
                        r = 0;
                } else if (r < 0) {
                        fprintf(stderr, "%s:%" PRIu64 ": %s\n", path, lineno,
                                r == -E2BIG ? "line or log too large" : strerror(-r));
                        break;
                }
        }
        if (r == 0 && ferror(f)) {
                r = -EIO;
                fprintf(stderr, "fleetmedic replay: %s: read error\n", path);
        }
        free(line);
        if (f != stdin)
                fclose(f);
        return r;
}

struct row {
        char policy[24], action[24];
        uint64_t n;
};

static void print_summary(const struct fm_replay_result *res, bool compared)
{
        struct row *rows = calloc(SUMMARY_ROWS, sizeof(*rows));
        uint32_t n_rows = 0;

        for (uint32_t k = 0; k < res->n_decisions; k++) {
                const struct fm_replay_decision *d = &res->decision[k];
                const char *policy = d->transition ? "breaker" : d->policy;
                char action[24];
                snprintf(action, sizeof(action), "%s%.20s", d->transition ? "to " : "", d->action);
                uint32_t j = 0;
                while (j < n_rows &&
                       (strcmp(rows[j].policy, policy) != 0 || strcmp(rows[j].action, action) != 0))
                        j++;
                if (!rows)
                        break;
                if (j == n_rows) {
                        if (n_rows == SUMMARY_ROWS)
                                continue;
                        snprintf(rows[j].policy, sizeof(rows[j].policy), "%s", policy);
                        snprintf(rows[j].action, sizeof(rows[j].action), "%s", action);
                        n_rows++;
                }
                rows[j].n++;
        }
        double span = (double)(res->last - res->first) / FM_MS_PER_S;
        printf("replay: %" PRIu64 " events (%" PRIu64 " applied) over %.1f s, %" PRIu64
               " ticks, %" PRIu32 " decisions\n",
               res->events, res->applied, span, res->ticks, res->n_decisions);
        for (int k = 1; k < _FM_REJECT_MAX; k++)
                if (res->rejected[k])
                        printf("  rejected %-24s %" PRIu64 "\n", fm_reject_name((enum fm_reject)k),
                               res->rejected[k]);
        if (n_rows)
                printf("  %-12s %-20s %s\n", "POLICY", "ACTION", "COUNT");
        for (uint32_t j = 0; j < n_rows; j++)
                printf("  %-12s %-20s %" PRIu64 "\n", rows[j].policy, rows[j].action, rows[j].n);
        free(rows);
        if (res->decisions_dropped)
                printf("  %" PRIu64 " more decisions not listed\n", res->decisions_dropped);
        if (compared)
                printf("compared with the %" PRIu32 " recorded decisions: %" PRIu32
                       " matched, %" PRIu32 " missing from the replay, %" PRIu32
                       " not in the recording: %s\n",
                       res->n_recorded, res->matched, res->missing, res->extra,
                       res->missing || res->extra ? "MISMATCH" : "reproduced");
        else
                printf("the log holds no decisions of a live controller: nothing compared\n");
}

static void print_mismatches(const struct fm_replay_result *res)
{
        unsigned shown = 0;
        for (uint32_t k = 0; k < res->n_recorded && shown < 20; k++)
                if (res->recorded[k].match < 0) {
                        printf("  missing: %s\n", res->recorded[k].record);
                        shown++;
                }
        for (uint32_t k = 0; k < res->n_decisions && shown < 40; k++)
                if (res->decision[k].match < 0) {
                        printf("  extra:   %s\n", res->decision[k].record);
                        shown++;
                }
}

static int write_json(const char *path, const struct fm_replay_result *res)
{
        FILE *f = fm_cli_open_output(path, "we");
        int r = 0;
        if (!f)
                return -errno;
        for (uint32_t k = 0; k < res->n_decisions && r == 0; k++)
                if (fputs(res->decision[k].record, f) == EOF || fputc('\n', f) == EOF)
                        r = -EIO;
        return fm_cli_close_output(f, r);
}

int fm_cmd_replay(int argc, char **argv)
{
        static const struct option options[] = {
                {"config", required_argument, NULL, 'c'},
                {"topic-prefix", required_argument, NULL, OPT_PREFIX},
                {"json", required_argument, NULL, OPT_JSON},
                {"check", no_argument, NULL, OPT_CHECK},
                {"quiet", no_argument, NULL, 'q'},
                {"help", no_argument, NULL, 'h'},
                {0},
        };
        const char *config = NULL, *json = NULL, *prefix = NULL;
        bool check = false, quiet = false;
        int c, r, ret = FM_EXIT_FAILED;

        while ((c = fm_cli_option(argc, argv, "c:qh", options, usage)) >= 0) {
                switch (c) {
                case 'c':
                        config = optarg;
                        break;
                case OPT_PREFIX:
                        prefix = optarg;
                        break;
                case OPT_JSON:
                        json = optarg;
                        break;
                case OPT_CHECK:
                        check = true;
                        break;
                case 'q':
                        quiet = true;
                        break;
                }
        }
        if (c != FM_CLI_END)
                return fm_cli_exit(c);
        if (optind + 1 != argc) {
                fprintf(stderr, "fleetmedic replay: expected one LOG file\n");
                usage(stderr);
                return FM_EXIT_USAGE;
        }
        if (prefix && strlen(prefix) > FM_PREFIX_MAX) {
                fprintf(stderr, "fleetmedic replay: --topic-prefix: longer than %d bytes\n",
                        FM_PREFIX_MAX);
                return FM_EXIT_USAGE;
        }

        struct fm_config *cfg = malloc(sizeof(*cfg));
        struct fm_core_config *core = malloc(sizeof(*core));
        struct fm_replay_log log = {0};
        struct fm_replay_result *res = NULL;
        struct fm_decoder_config dcfg;

        if (!cfg || !core) {
                fprintf(stderr, "fleetmedic replay: out of memory\n");
                goto out;
        }
        fm_config_default(cfg);
        if (config && fm_config_load(config, cfg, stderr, NULL) < 0)
                goto out;
        if (prefix)
                snprintf(cfg->mqtt.topic_prefix, sizeof(cfg->mqtt.topic_prefix), "%s", prefix);
        fm_config_core(cfg, core);
        fm_config_decoder(cfg, &dcfg);
        if (read_log(argv[optind], &log) < 0)
                goto out;
        if (log.bad_lines)
                fprintf(stderr, "fleetmedic replay: %" PRIu64 " lines were not log entries\n",
                        log.bad_lines);

        struct fm_replay_options opt = {.core = core, .decoder = &dcfg, .tick = cfg->tick};
        r = fm_replay_run(&log, &opt, &res);
        if (r < 0) {
                fprintf(stderr, "fleetmedic replay: %s\n",
                        r == -EINVAL ? "the core or the decoder refused the configuration"
                                     : strerror(-r));
                goto out;
        }
        bool to_stdout = json && strcmp(json, "-") == 0;
        if (json && (r = write_json(json, res)) < 0) {
                fprintf(stderr, "fleetmedic replay: %s: %s\n", json, strerror(-r));
                goto out;
        }
        if (!quiet && !to_stdout)
                for (uint32_t k = 0; k < res->n_decisions; k++)
                        printf("%s\n", res->decision[k].record);
        if (!to_stdout) {
                print_summary(res, res->n_recorded > 0);
                if (res->missing || res->extra)
                        print_mismatches(res);
        }
        ret = check && (res->missing || res->extra) ? FM_EXIT_FAILED : FM_EXIT_OK;
        if (fflush(stdout) == EOF)
                ret = FM_EXIT_FAILED;
out:
        fm_replay_result_free(res);
        fm_replay_log_done(&log);
        free(core);
        free(cfg);
        return ret;
}
