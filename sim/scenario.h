/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Simulator scenarios: a YAML (or JSON) file read by fm_yaml_load() into a
 * json-c tree, turned here into a struct fm_scenario with every value
 * checked. Errors name the file, the line and the dotted key, like the
 * configuration's ("web.yaml:12: fleet.deployments[0].replicas: ...").
 *
 * The format (durations in seconds; every key optional unless marked):
 *
 *   name: bad-version                 required, [a-z0-9-]{1,63}
 *   description: "one line"
 *   seed: 42                          integer >= 0, default 1
 *   start: 1767225600                 epoch seconds of t = 0 (2026-01-01T00:00:00Z)
 *   duration_s: 7200                  required, 60 .. 31 days
 *   step_s: 10                        interval of kpi reports and of the series, 1 .. 300
 *   health_interval_s: 30             periodic health reports (also sent on every change)
 *   grace_s: 600                      how long after a fault ends an action on its target
 *                                     still counts as a response to it (false actions)
 *   config: config/rollback.yaml      controller configuration, relative to this file;
 *                                     without it (and without -c) the defaults run, with
 *                                     dry_run false (see cmd_sim.h)
 *   slo: {latency_p99_ms: 250, error_rate: 0.01, objective: 0.999}
 *   actuation:                        the simulated actuator's delays
 *     delay_s: 2                      from submit to the backend acting (any action)
 *     rollout_s: 60                   a rollback reaches every instance within this
 *     restart_s: 20                   an instance is down this long when restarted
 *   fleet:
 *     deployments:                    1 .. FM_SCN_DEPLOYMENTS_MAX
 *       - name: web                   required, a deployment name of the event schema
 *         replicas: 8                 required, instances at t = 0, 0 .. FM_SCN_REPLICAS_MAX
 *         version: v1                 version served at t = 0 (default: the first listed)
 *         cold_start_s: 60            a new instance serves this long after it is created
 *         feedback_per_s: 2           labelled outcomes coming back per second
 *         versions:                   1 .. FM_SCN_VERSIONS_MAX
 *           - name: v1                required
 *             capacity_rps: 100       requests per second one instance serves, > 0
 *             base_latency_ms: 40     fixed part of a request's latency
 *             service_ms: 10          queueing part: mean S / (1 - utilisation)
 *             error_rate: 0.001       in [0, 1]
 *             accuracy: 0.93          at threshold 0.5, in (0.5, 1)
 *             positive_rate: 0.3      share of label 1, in (0, 1)
 *     load:                           one per deployment, by name
 *       - deployment: web             required
 *         kind: constant              constant | diurnal | ramp | spike
 *         rps: 400                    base (mean for diurnal), >= 0
 *         amplitude: 0.5              diurnal: rps * (1 - amplitude cos(2 pi (t - phase) / period))
 *         period_s: 86400  phase_s: 0
 *         at_s: 0  ramp_s: 60         ramp: rps -> to_rps from at_s over ramp_s;
 *         to_rps: 800                 spike: rps * factor from at_s for duration_s, edges ramp_s
 *         factor: 3  duration_s: 600
 *         noise: 0.02                 multiplicative noise per step (standard deviation)
 *   deploys:                          rollouts: instances switch version over rollout_s
 *     - {at_s: 3600, deployment: web, version: v2, rollout_s: 60}
 *   faults:
 *     - kind: bad_version             see enum fm_scn_fault_kind for the kinds and parameters
 *       target: web/v2                deployment, deployment/version or deployment/instance
 *       at_s: 3600                    required
 *       until_s: 5400                 absent or null: to the end
 *       ...
 *   expect:                           checked by --check; each item one of:
 *     - {action: rollback, policy: rollback, reason: accuracy_drop, verdict: approved,
 *        after_s: 3600, before_s: 4500, min: 1, max: 1}   count of matching actions
 *     - {metric: slo_minutes_lost, max: 5}                 a summary number
 *     - {alert: frozen, min: 1}                            alerts (reason) raised
 *     Each may carry `name:`; otherwise one is made up from the rule.
 *
 * Pure: no I/O (the caller reads the file), no clock.
 */

#include <stdbool.h>
#include <stdint.h>

#include "event.h"
#include "intent.h"
#include "util.h"

struct json_object;

#define FM_SCN_DEPLOYMENTS_MAX 16
#define FM_SCN_VERSIONS_MAX 8
#define FM_SCN_REPLICAS_MAX 10000
#define FM_SCN_FAULTS_MAX 32
#define FM_SCN_DEPLOYS_MAX 16
#define FM_SCN_EXPECT_MAX 32
#define FM_SCN_TEXT_MAX 256
#define FM_SCN_ERRORS_MAX 32
#define FM_SCN_PATH_MAX 1024
#define FM_SCN_DURATION_MAX ((int64_t)31 * 24 * 3600)
#define FM_SCN_DEFAULT_START 1767225600 /* 2026-01-01T00:00:00Z */

struct fm_scn_version {
        char name[FM_VERSION_MAX + 1];
        double capacity_rps, base_latency_ms, service_ms, error_rate, accuracy, positive_rate;
};

enum fm_scn_load_kind {
        FM_SCN_LOAD_CONSTANT,
        FM_SCN_LOAD_DIURNAL,
        FM_SCN_LOAD_RAMP,
        FM_SCN_LOAD_SPIKE,
};

struct fm_scn_load {
        enum fm_scn_load_kind kind;
        double rps, amplitude, to_rps, factor, noise;
        double period_s, phase_s, at_s, ramp_s, duration_s;
};

struct fm_scn_deployment {
        char name[FM_NAME_MAX + 1];
        uint32_t replicas;
        uint32_t initial_version; /* index into versions */
        double cold_start_s, feedback_per_s;
        uint32_t n_versions;
        struct fm_scn_version versions[FM_SCN_VERSIONS_MAX];
        struct fm_scn_load load;
};

/*
 * Fault kinds and their parameters (defaults in brackets):
 *   bad_version   target dep/version; from at_s the version is worse:
 *                 accuracy [unchanged], error_rate [unchanged], latency_factor [1]
 *   error_burst   target dep, dep/version or dep/instance: extra error_rate [0.2]
 *   slow          target dep/instance: latency and service time x factor [5]; a
 *                 restart cures it unless sticky: true [false]
 *   crash         target dep/instance: down until restarted (or until_s)
 *   crash_loop    target dep/instance: up up_s [60], down down_s [20], over and over;
 *                 a restart does not cure it
 *   drift         target dep or dep/version: the scores shift by `shift` [1.5] logits,
 *                 linearly over ramp_s [until_s - at_s, or 3600]
 *   cut_off       target dep: share [0.5] of its instances stop reaching the controller
 *                 (they keep serving)
 *   noisy         target dep: load_noise [0.2], latency_noise [0.3], error_noise [0.003]:
 *                 healthy but noisy
 */
enum fm_scn_fault_kind {
        FM_SCN_FAULT_BAD_VERSION,
        FM_SCN_FAULT_ERROR_BURST,
        FM_SCN_FAULT_SLOW,
        FM_SCN_FAULT_CRASH,
        FM_SCN_FAULT_CRASH_LOOP,
        FM_SCN_FAULT_DRIFT,
        FM_SCN_FAULT_CUT_OFF,
        FM_SCN_FAULT_NOISY,
        _FM_SCN_FAULT_MAX,
};

/* "bad_version", "error_burst", ...; NULL if out of range. */
const char *fm_scn_fault_name(enum fm_scn_fault_kind k) _pure_;

struct fm_scn_fault {
        enum fm_scn_fault_kind kind;
        uint32_t deployment;              /* index */
        int32_t version;                  /* index, or -1 */
        char instance[FM_NAME_MAX + 1];   /* "" unless the target is an instance */
        char target[2 * FM_NAME_MAX + 2]; /* as written */
        double at_s, until_s;             /* until_s < 0: to the end */
        double accuracy, error_rate, latency_factor, factor, up_s, down_s, shift, ramp_s, share;
        double load_noise, latency_noise, error_noise;
        bool sticky;
};

struct fm_scn_deploy {
        double at_s, rollout_s;
        uint32_t deployment, version;
};

enum fm_scn_expect_kind {
        FM_SCN_EXPECT_ACTION,
        FM_SCN_EXPECT_ALERT,
        FM_SCN_EXPECT_METRIC,
};

/* Summary numbers an expectation can bound. */
enum fm_scn_metric {
        FM_SCN_METRIC_TIME_TO_DETECT,
        FM_SCN_METRIC_TIME_TO_MITIGATE,
        FM_SCN_METRIC_SLO_MINUTES_LOST,
        FM_SCN_METRIC_ERROR_BUDGET_BURNT,
        FM_SCN_METRIC_FALSE_ACTIONS,
        FM_SCN_METRIC_INSTANCE_HOURS,
        FM_SCN_METRIC_ACTIONS,
        FM_SCN_METRIC_MAX_REPLICAS,
        FM_SCN_METRIC_FINAL_REPLICAS,
        _FM_SCN_METRIC_MAX,
};

/* "time_to_detect_s", "time_to_mitigate_s", "slo_minutes_lost", ...; NULL if out of range. */
const char *fm_scn_metric_name(enum fm_scn_metric m) _pure_;

struct fm_scn_expect {
        enum fm_scn_expect_kind kind;
        char name[FM_SCN_TEXT_MAX];
        int action;                  /* enum fm_action, or -1 for any (kind ACTION) */
        char policy[32], reason[64]; /* "" matches any; ALERT: reason */
        int verdict;                 /* enum fm_verdict; default APPROVED */
        double after_s, before_s;    /* window of the action's time; before_s < 0: none */
        enum fm_scn_metric metric;
        bool has_min, has_max;
        double min, max; /* ACTION/ALERT: default min 1 unless max is given */
};

struct fm_scn_slo {
        double latency_p99_ms, error_rate, objective;
};

struct fm_scn_actuation {
        double delay_s, rollout_s, restart_s;
};

struct fm_scenario {
        char name[FM_NAME_MAX + 1];
        char description[FM_SCN_TEXT_MAX];
        char config[FM_SCN_PATH_MAX]; /* "" when the scenario names none */
        uint64_t seed;
        int64_t start_s;
        int64_t duration_s, step_s, health_interval_s;
        double grace_s;
        struct fm_scn_slo slo;
        struct fm_scn_actuation actuation;
        uint32_t n_deployments;
        struct fm_scn_deployment deployments[FM_SCN_DEPLOYMENTS_MAX];
        uint32_t n_deploys;
        struct fm_scn_deploy deploys[FM_SCN_DEPLOYS_MAX];
        uint32_t n_faults;
        struct fm_scn_fault faults[FM_SCN_FAULTS_MAX];
        uint32_t n_expect;
        struct fm_scn_expect expect[FM_SCN_EXPECT_MAX];
};

/* Error lines of a failed parse, "FILE:LINE: KEY: message". */
struct fm_scn_errors {
        uint32_t n;       /* lines held */
        uint32_t dropped; /* over FM_SCN_ERRORS_MAX */
        char line[FM_SCN_ERRORS_MAX][FM_SCN_TEXT_MAX];
};

/*
 * Fills *ret from root (the tree fm_yaml_load() gave; lines its line map,
 * may be NULL; file names the file in messages). Returns 0, or -EINVAL with
 * every problem found in *errors (which may be NULL); *ret may be partly
 * written on failure. Unknown keys are errors. Borrows the trees.
 */
int fm_scenario_from_json(const struct json_object *root, const struct json_object *lines,
                          const char *file, struct fm_scenario *ret, struct fm_scn_errors *errors);

/* Index of a deployment by name, or -1. */
int fm_scenario_find_deployment(const struct fm_scenario *sc, const char *name);

/* Index of a version of deployment d by name, or -1. */
int fm_scenario_find_version(const struct fm_scenario *sc, uint32_t d, const char *name);
