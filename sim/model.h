/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The simulated fleet: instances with a capacity and a queueing model of
 * latency, load spread by traffic weights, cold starts, restarts, rollouts
 * and the scenario's faults, reporting the events of schema v1 as typed
 * struct fm_event (no JSON).
 *
 * Time advances in steps of the scenario's step_s. One step:
 *   1. due rollouts start (instances switch version at staggered times);
 *      instances finish cold starts, restarts, version switches; crashes
 *      and crash loops take instances down and bring them back;
 *   2. the load of each deployment (profile x noise) is split over the
 *      instances that serve: by version weights when set (else by
 *      instances), then by instance weights (default equal). Instances
 *      that are down, restarting or cold-starting get nothing: the load
 *      balancer's own health checks see them;
 *   3. per instance: utilisation rho = arrivals / capacity; latency is a
 *      fixed part plus an exponential queueing part of mean
 *      service_ms / (1 - rho) (M/M/1 sojourn time), rho capped at 0.98, so
 *      p99 = base + service ln(100) / (1 - rho) rises steeply near
 *      saturation; past capacity the excess overflows the queue as errors;
 *      requests and errors are drawn around their means (normal
 *      approximations of Poisson and binomial counts);
 *   4. each instance that can reach the controller reports health (every
 *      health_interval_s and on every change of readiness) and, when
 *      serving, one kpi event: requests, errors, a latency histogram,
 *      gauges (queue_depth, in_flight, cpu, gpu_util) and a score
 *      histogram; each deployment returns labelled outcomes (feedback)
 *      through a serving instance of each version.
 *
 * Scores: a request with label y has score logistic(z), z ~ N(sep (2y - 1)
 * + shift, 1), sep = probit(accuracy), so the accuracy at threshold 0.5 is
 * the version's accuracy; drift faults move `shift`, which moves both the
 * score histogram (PSI) and the best threshold. A bad_version's lower
 * accuracy flips labels against the scores instead (probability
 * (a - a') / (2a - 1)): the scores look the same, the feedback disagrees.
 *
 * All randomness comes from one xoshiro256** generator seeded with
 * splitmix64 from the scenario's seed. Cost per step is O(instances).
 * Pure: no clock, no I/O.
 */

#include <stdbool.h>
#include <stdint.h>

#include "event.h"
#include "intent.h"
#include "scenario.h"
#include "util.h"

/* ---- the generator --------------------------------------------------------------------------- */

struct fm_rng {
        uint64_t s[4];
};

void fm_rng_seed(struct fm_rng *r, uint64_t seed);
uint64_t fm_rng_next(struct fm_rng *r);
/* Uniform in [0, 1). */
double fm_rng_uniform(struct fm_rng *r);
/* Standard normal (Box-Muller; one value per call). */
double fm_rng_normal(struct fm_rng *r);

/* ---- helpers exposed for tests --------------------------------------------------------------- */

/* Standard normal CDF and its inverse (p in (0, 1)). */
double fm_model_phi(double x) _pure_;
double fm_model_probit(double p) _pure_;

/* The q-quantile (0 < q < 1) of a histogram (n bounds, n + 1 counts); NAN when empty. */
double fm_model_hist_quantile(const double *bound, uint32_t n, const double *count, double q);

/* ---- the model ------------------------------------------------------------------------------- */

#define FM_MODEL_BOUNDS_MAX 32
#define FM_MODEL_INSTANCES_MAX 65536 /* instances alive at once, all deployments */

/* One deployment over the last step. */
struct fm_model_dep_stats {
        uint64_t requests, errors;         /* including requests nobody could serve */
        double p99_ms;                     /* NAN without served requests */
        uint32_t replicas;                 /* instances that exist (any state) */
        uint32_t ready;                    /* instances serving */
        double share[FM_SCN_VERSIONS_MAX]; /* percent of the step's traffic per version */
        double hist[FM_MODEL_BOUNDS_MAX + 1];
};

struct fm_model;

/* Called for each event the controller receives; ev is valid during the call only. */
typedef void (*fm_model_sink)(void *userdata, const struct fm_event *ev);

/* Returns 0, -EINVAL, -ENOMEM. sc is borrowed and must outlive the model. */
int fm_model_new(const struct fm_scenario *sc, struct fm_model **ret);

/* Accepts NULL; returns NULL. */
struct fm_model *fm_model_free(struct fm_model *m);

/*
 * Advances one step ending at now (ms since the epoch; steps must be step_s
 * apart) and reports its events to sink (NULL: no events are built, for a
 * run without the controller). Returns 0 or -ENOMEM.
 */
int fm_model_step(struct fm_model *m, fm_ms now, fm_model_sink sink, void *userdata);

/* The last step's numbers of deployment d. */
const struct fm_model_dep_stats *fm_model_stats(const struct fm_model *m, uint32_t d);

/* The latency bounds (ms) of every histogram the model builds. */
uint32_t fm_model_bounds(const struct fm_model *m, const double **ret);

/*
 * The share (0..1) of its deployment's traffic in the last step that fault k
 * touched: its instance's or version's share, 1 for deployment-wide faults,
 * 0 when the fault is not active or was cured (a restart).
 */
double fm_model_fault_impact(const struct fm_model *m, uint32_t k);

/* Whether fault k is active (between at_s and until_s) at now. */
bool fm_model_fault_active(const struct fm_model *m, uint32_t k, fm_ms now);

/*
 * Actions, applied at now. Return 0 (or the number of instances affected,
 * >= 0), -ENOENT for an unknown deployment, version or instance (the
 * actuator reports it as a permanent failure), -EINVAL for bad arguments.
 *   scale: new instances cold-start; removed ones (not serving first, then
 *     the newest) are gone at once;
 *   rollback: every instance of `from` switches to `to` within rollout_s;
 *     new instances start on `to`;
 *   restart: the instance is down restart_s; cures a crash and a slow
 *     instance (unless sticky), not a crash loop;
 *   set_weights: every target a version of the deployment: version weights;
 *     otherwise instance weights (names not found are ignored, -ENOENT when
 *     none is found); instances created later get the set's mean weight;
 *   set_threshold: recorded (the instances apply it).
 */
int fm_model_scale(struct fm_model *m, const char *dep, uint32_t to, fm_ms now);
int fm_model_rollback(struct fm_model *m, const char *dep, const char *from, const char *to,
                      fm_ms now);
int fm_model_restart(struct fm_model *m, const char *dep, const char *instance, fm_ms now);
int fm_model_set_weights(struct fm_model *m, const char *dep, const struct fm_weight *w,
                         uint32_t n);
int fm_model_set_threshold(struct fm_model *m, const char *dep, const char *version, double value);

/* Whether the instance exists (not gone) in deployment d. */
bool fm_model_has_instance(const struct fm_model *m, uint32_t d, const char *instance);

/* The threshold last set for version v of deployment d (initially 0.5). */
double fm_model_threshold(const struct fm_model *m, uint32_t d, uint32_t v);

/* Instances in existence now across the fleet (any state but gone). */
uint32_t fm_model_instances(const struct fm_model *m);
