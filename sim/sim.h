/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The simulation engine: the fleet model (model.h), the real decision core
 * (core.h) and the real actuator (actuator.h) with a simulated backend,
 * driven by one simulated clock; then the run's series, summary and
 * expectations.
 *
 * Time: milliseconds since the epoch, from the scenario's start; the model
 * steps every step_s, the core ticks every `tick` (the configuration's
 * tick_s). At one instant the model's events come first, then the tick.
 * Every intent the governor APPROVED is submitted to the actuator, whose
 * simulated backend applies it to the model after actuation.delay_s (then
 * the model's own delays follow: cold starts, rollouts, restarts) and
 * completes the attempt. Nothing about the policies or the governor is
 * special here: what the configuration says (dry_run included) holds.
 *
 * Incidents: the scenario's faults, plus a load spike or ramp (kind
 * "spike" / "ramp", target the deployment). Definitions of the summary:
 *
 *   time_to_detect_s    of the first incident that is not `noisy`: from its
 *                       start to the first intent (any verdict but dry_run;
 *                       alerts included) or breaker transition concerning its
 *                       target: the instance (intents naming it, set_weights
 *                       giving it 0, its breaker), the version (a rollback
 *                       from it, breakers of instances on it, any intent of
 *                       the deployment by rollback or canary), or, for a
 *                       deployment-wide incident, anything of the deployment.
 *   time_to_mitigate_s  from the same start to the first step after detection
 *                       from which, for 60 s, the deployment meets its SLO and
 *                       the incident's effect reaches at most 1 % of its
 *                       traffic (or a set_threshold or rollback answering a
 *                       drift was carried out); null if never.
 *   slo_minutes_lost    sum over steps and deployments of step minutes in which
 *                       p99 > slo.latency_p99_ms or error rate >
 *                       slo.error_rate, weighted by the deployment's share of
 *                       the step's requests.
 *   error_budget_burnt  errors / (requests * (1 - slo.objective)).
 *   false_actions       executed actions (APPROVED, alerts excluded) that no
 *                       incident justifies. An incident justifies an action
 *                       from its start to grace_s after its end when:
 *                         scale        up: any incident of the deployment
 *                                      but cut_off and noisy; up or down,
 *                                      at any time: a deployment whose load
 *                                      is not constant (diurnal, spike, ramp)
 *                         restart      an instance incident of that instance;
 *                                      a version or deployment-wide
 *                                      bad_version/error_burst/slow/crash
 *                         set_weights  no target given 0, or every target given
 *                                      0 is covered as for restart (a version
 *                                      named: a version incident of it)
 *                         rollback     from a version with bad_version,
 *                                      error_burst or drift (or a deployment
 *                                      error_burst or drift)
 *                         set_threshold a drift of the version or deployment
 *                       cut_off and noisy justify nothing.
 *   instance_hours      the integral of instances in existence (any state).
 *   actions             executed actions (APPROVED, alerts excluded).
 */

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "actuator.h"
#include "core.h"
#include "model.h"
#include "scenario.h"

#define FM_SIM_ACTIONS_MAX 20000 /* actions listed in a run; more are counted */
#define FM_SIM_TEXT_MAX 512

struct fm_sim_action {
        fm_ms at;
        enum fm_action action;
        const char *policy; /* static */
        const char *reason; /* static: the intent's reason */
        char deployment[FM_NAME_MAX + 1];
        char target[160];
        enum fm_verdict verdict;
        char outcome[24]; /* "" when not executed, else an outcome name or "rejected" */
        bool is_false;
        char text[FM_SIM_TEXT_MAX]; /* reason with its evidence */
        int64_t request;            /* actuator request id, 0 when none */
};

struct fm_sim_dep_series {
        uint32_t *replicas, *ready;
        double *p99_ms, *error_rate;          /* NAN where there was no traffic */
        double *weights[FM_SCN_VERSIONS_MAX]; /* percent of traffic per version */
};

struct fm_sim_incident {
        const char *kind; /* static: fault name, "spike" or "ramp" */
        uint32_t deployment;
        int32_t fault;        /* index into the scenario's faults, -1 for a load incident */
        double at_s, until_s; /* until_s < 0: to the end */
        char target[2 * FM_NAME_MAX + 2];
        double detect_s, mitigate_s; /* absolute seconds from start; NAN when not yet */
        bool remedied;               /* drift: a threshold or rollback was carried out */
        uint32_t good_steps;         /* consecutive steps meeting the mitigation rule */
        double good_from;
};

struct fm_sim_summary {
        double time_to_detect_s, time_to_mitigate_s; /* NAN: null */
        double slo_minutes_lost, error_budget_burnt, instance_hours;
        uint64_t false_actions, actions, requests, errors;
        uint32_t max_replicas, final_replicas;
        uint64_t actions_dropped; /* over FM_SIM_ACTIONS_MAX, not listed */
        uint64_t events;          /* delivered to the core */
        uint64_t ticks;
};

struct fm_sim_expect_result {
        bool ok;
        char detail[FM_SIM_TEXT_MAX];
};

struct fm_sim_run {
        const struct fm_scenario *sc;
        bool controller;
        uint32_t n_samples;
        int64_t *t_s;
        struct fm_sim_dep_series series[FM_SCN_DEPLOYMENTS_MAX];
        uint32_t n_actions, cap_actions;
        struct fm_sim_action *actions;
        uint32_t n_incidents;
        struct fm_sim_incident incidents[FM_SCN_FAULTS_MAX + FM_SCN_DEPLOYMENTS_MAX];
        struct fm_sim_summary summary;
        struct fm_sim_expect_result expect[FM_SCN_EXPECT_MAX];
};

struct fm_sim_options {
        const struct fm_core_config *core; /* NULL: no controller (a baseline run) */
        fm_ms tick;                        /* core tick, > 0 (the configuration's tick_s) */
        bool series;                       /* keep the series (JSON, report) */
};

/*
 * Runs sc. Returns 0 and the run in *ret (the caller frees it with
 * fm_sim_run_free()), -EINVAL (bad options, or a core configuration the
 * core refuses), -ENOMEM. sc is borrowed and must outlive the run.
 */
int fm_sim_run(const struct fm_scenario *sc, const struct fm_sim_options *opt,
               struct fm_sim_run **ret);

/* Accepts NULL; returns NULL. */
struct fm_sim_run *fm_sim_run_free(struct fm_sim_run *r);

/* Whether every expectation of the scenario held in run r. */
bool fm_sim_expectations_ok(const struct fm_sim_run *r);

/*
 * The run document of sim/report.h's contract (keys in its order, numbers
 * formatted deterministically); baseline may be NULL. Returns 0 and a new
 * tree in *ret (the caller puts it), or -ENOMEM.
 */
struct json_object;
int fm_sim_run_json(const struct fm_sim_run *run, const struct fm_sim_run *baseline,
                    struct json_object **ret);
