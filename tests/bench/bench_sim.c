/* SPDX-License-Identifier: MIT */

/*
 * Simulator benchmark: 24 simulated hours of 1,000 instances (10
 * deployments of 100) reporting kpi every 10 s (8.64 M kpi events, plus
 * health every 30 s), through the real core with its default policies
 * (breakers) ticking every second, under a diurnal load with noise. The
 * events go to the core typed (no JSON); no series are kept.
 *
 * Prints key=value lines: sim_instances, sim_hours, sim_wall_seconds,
 * sim_events (events delivered to the core), sim_ticks, sim_events_per_s,
 * target_wall_seconds=30 and target_met. Missing the target is reported, not
 * an error (timing on a shared machine is noisy). Exit status 0 when the run
 * completed, 1 on an error. Options: --hours H, --instances N (a multiple of
 * 10). For one core: taskset -c 0 build/tests/bench_sim
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core.h"
#include "sim.h"

static double wall(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
        long hours = 24, instances = 1000;
        for (int k = 1; k + 1 < argc; k += 2) {
                char *end;
                long v = strtol(argv[k + 1], &end, 10);
                if (*end || v <= 0) {
                        fprintf(stderr, "bench_sim: bad value '%s'\n", argv[k + 1]);
                        return 2;
                }
                if (strcmp(argv[k], "--hours") == 0 && v <= 24 * 31)
                        hours = v;
                else if (strcmp(argv[k], "--instances") == 0 && v % 10 == 0 &&
                         v <= 10 * FM_SCN_REPLICAS_MAX)
                        instances = v;
                else {
                        fprintf(stderr, "usage: bench_sim [--hours H] [--instances N]\n");
                        return 2;
                }
        }

        struct fm_scenario *sc = calloc(1, sizeof(*sc));
        struct fm_core_config *cfg = calloc(1, sizeof(*cfg));
        if (!sc || !cfg)
                return 1;
        snprintf(sc->name, sizeof(sc->name), "bench");
        sc->seed = 1;
        sc->start_s = FM_SCN_DEFAULT_START;
        sc->duration_s = hours * 3600;
        sc->step_s = 10;
        sc->health_interval_s = 30;
        sc->grace_s = 600;
        sc->slo =
                (struct fm_scn_slo){.latency_p99_ms = 250, .error_rate = 0.01, .objective = 0.999};
        sc->actuation = (struct fm_scn_actuation){.delay_s = 2, .rollout_s = 60, .restart_s = 20};
        sc->n_deployments = 10;
        for (uint32_t d = 0; d < sc->n_deployments; d++) {
                struct fm_scn_deployment *dp = &sc->deployments[d];
                snprintf(dp->name, sizeof(dp->name), "model-%u", d);
                dp->replicas = (uint32_t)(instances / 10);
                dp->cold_start_s = 60;
                dp->feedback_per_s = 1;
                dp->n_versions = 1;
                dp->versions[0] = (struct fm_scn_version){.name = "v1",
                                                          .capacity_rps = 100,
                                                          .base_latency_ms = 40,
                                                          .service_ms = 10,
                                                          .error_rate = 0.0005,
                                                          .accuracy = 0.9,
                                                          .positive_rate = 0.3};
                dp->load = (struct fm_scn_load){.kind = FM_SCN_LOAD_DIURNAL,
                                                .rps = 50.0 * dp->replicas,
                                                .amplitude = 0.5,
                                                .period_s = 86400,
                                                .noise = 0.05};
        }

        fm_core_config_default(cfg);
        cfg->fleet.hash_key[0] = cfg->governor.hash_key[0] = 0x0123456789abcdefULL;
        cfg->fleet.hash_key[1] = cfg->governor.hash_key[1] = 0xfedcba9876543210ULL;

        struct fm_sim_options opt = {.core = cfg, .tick = FM_MS_PER_S, .series = false};
        struct fm_sim_run *run = NULL;
        double t0 = wall();
        int r = fm_sim_run(sc, &opt, &run);
        double secs = wall() - t0;
        if (r < 0) {
                fprintf(stderr, "bench_sim: %s\n", strerror(-r));
                free(sc);
                free(cfg);
                return 1;
        }
        printf("sim_instances=%ld\n", instances);
        printf("sim_hours=%ld\n", hours);
        printf("sim_wall_seconds=%.2f\n", secs);
        printf("sim_events=%llu\n", (unsigned long long)run->summary.events);
        printf("sim_ticks=%llu\n", (unsigned long long)run->summary.ticks);
        printf("sim_events_per_s=%.0f\n", secs > 0 ? (double)run->summary.events / secs : 0);
        printf("sim_actions=%llu\n", (unsigned long long)run->summary.actions);
        printf("target_wall_seconds=30\n");
        printf("target_met=%s\n", secs < 30 ? "yes" : "no");
        fm_sim_run_free(run);
        free(sc);
        free(cfg);
        return 0;
}
