/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Autoscale decision for one deployment, after the Kubernetes Horizontal
 * Pod Autoscaler ("Horizontal Pod Autoscaling — Algorithm details").
 *
 * fm_autoscale_decide() is a pure function of its configuration, the
 * caller-owned state of the deployment, an input snapshot and now. Someone
 * else builds the input from the fleet and turns the decision into a scale
 * intent. No clock, no I/O, no allocation: everything lives in the fixed
 * size struct fm_autoscale_state.
 *
 * One decision, step by step:
 *
 *  1. Range. A current count above max (or above what the budget affords)
 *     is brought down to it at once, one below min up to min ("at_max",
 *     "cost_ceiling", "at_min"); as in the HPA, windows and step limits do
 *     not apply to this correction.
 *
 *  2. Per metric, the proportional rule ceil(ready × observed / target):
 *       GPU_UTIL, QUEUE_DEPTH, IN_FLIGHT — per-instance values, averaged
 *         over the ready instances that reported one. Missing values and
 *         instances that are not ready are handled as the HPA does: on a
 *         scale-up a ready instance without a value and every instance not
 *         yet ready count as 0 % of target, on a scale-down a ready
 *         instance without a value counts as 100 % of target (the
 *         documented "desired value") and instances not ready are set
 *         aside. The ratio is then recomputed; if it now points the other
 *         way or falls within tolerance, the metric proposes no change.
 *       LATENCY — one deployment-level value (e.g. p99 ms); ratio =
 *         observed / target, applied to the number of ready instances.
 *     A ratio within `tolerance` of 1.0 proposes the current count. A
 *     metric is unusable when no ready instance reported it (latency: no
 *     value or no ready instance).
 *
 *  3. The recommendation is the largest proposal. If every enabled metric
 *     is unusable nothing happens ("no_metrics"); if some are and the rest
 *     would scale down, nothing happens either ("metrics_missing") — a
 *     scale-up on the metrics that remain is still allowed.
 *
 *  4. Predictive mode (optional): Holt's linear trend over the demand, in
 *     instances at target (the sum over ready instances of value / target,
 *     the largest across metrics), forecast cold_start ahead. When the
 *     forecast exceeds the current count by more than the tolerance its
 *     ceiling is a proposal too; the recommendation is the larger of the
 *     reactive and the predictive one, never below the reactive one.
 *
 *  5. Stabilisation: the result moves from the current count no further
 *     than the lowest recommendation of the scale-up window and the highest
 *     of the scale-down window ("stabilised"). The first call seeds a
 *     non-zero scale-down window with the current count, so a restarted
 *     controller does not scale down before it has watched a whole window.
 *
 *  6. Cold start: while a scale-up is pending — asked less than cold_start
 *     ago, the current count still at least its target and fewer instances
 *     ready than that target — no further scale-up is made
 *     ("cold_start_pending"). Scale-downs are not held.
 *
 *  7. Step limits per period (percent of, and instances added to or
 *     removed from, the count at the start of the period; the policy
 *     allowing the larger change wins — the HPA's selectPolicy Max), then
 *     min, max and the cost ceiling ("step_limited", "at_min", "at_max",
 *     "cost_ceiling").
 *
 * Reasons (stable, lower-case): "scale_up", "scale_down", "within_tolerance",
 * "direction_reversed", "no_change" (a metric outside tolerance whose
 * proportional count is the current one), "stabilised", "cold_start_pending",
 * "step_limited", "at_min", "at_max", "cost_ceiling", "no_metrics",
 * "metrics_missing". Acting decisions carry the limit that bound them
 * ("step_limited" with act = true means it scaled, but less than recommended).
 *
 * Where this deviates from the HPA, and why:
 *  - A ready instance without a value is assumed at 100 % of target on a
 *    scale-down, as the HPA documentation says; the HPA code for resource
 *    metrics uses 100 % of the request, which can be more than the target.
 *  - An instance that is not ready is always "not ready" here, with or
 *    without a value (the HPA counts a not-ready pod without metrics as
 *    missing, and separates unready pods only for CPU).
 *  - Latency with no ready instance is unusable rather than proposing 0.
 *  - Only the scale-down window is seeded at start-up. The HPA's seed sits
 *    in both, so after a restart a non-zero scale-up window delays the
 *    first scale-up; here a restart never delays a scale-up.
 *  - Step limits: one period per direction for both policies, and only the
 *    Max selection.
 *  - Bounded memory (below): windows and periods are evaluated on at most
 *    FM_AUTOSCALE_RECS_MAX / FM_AUTOSCALE_EVENTS_MAX entries.
 *  - Cold start and cost ceiling are additions of ours.
 *
 * The state assumes the caller carries out a decision with act = true. If
 * it does not (a governor vetoed it), the next input's current count shows
 * it: a pending scale-up whose target is above the current count is
 * dropped; the recorded scale event stays and only makes the step limits
 * stricter for one period.
 *
 * `now` should not go backwards. If it does, window entries and scale
 * events stamped after it are restamped now (they count for one more whole
 * window or period), a pending scale-up ends, and the forecast restarts.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "evidence.h"
#include "util.h"

enum fm_autoscale_metric {
        FM_AUTOSCALE_GPU_UTIL,    /* "gpu_util": average utilisation 0..1 of ready instances */
        FM_AUTOSCALE_QUEUE_DEPTH, /* "queue_depth": queued requests per instance */
        FM_AUTOSCALE_IN_FLIGHT,   /* "in_flight": requests in flight per instance */
        FM_AUTOSCALE_LATENCY,     /* "latency": deployment-level, e.g. p99 ms */
        _FM_AUTOSCALE_METRIC_MAX,
};

/* The per-instance metrics come first in the enum; they index fm_autoscale_instance. */
#define FM_AUTOSCALE_PER_INSTANCE_METRICS 3

/* Stable lower-case name of a metric; NULL if out of range. */
const char *fm_autoscale_metric_name(enum fm_autoscale_metric m) _pure_;

/*
 * Limits. FM_AUTOSCALE_REPLICAS_MAX bounds max_replicas, pods and the
 * input's current count; FM_AUTOSCALE_INSTANCES_MAX the instances of one
 * input; FM_AUTOSCALE_WINDOW_MAX the stabilisation windows and cold_start
 * (the HPA's window limit); FM_AUTOSCALE_PERIOD_MAX the step-limit periods
 * (the HPA's); FM_AUTOSCALE_PERCENT_MAX the scale-up percent (scale-down: at
 * most 100). A gap between forecast samples over FM_AUTOSCALE_HOLT_GAP_MAX
 * restarts the forecast.
 */
#define FM_AUTOSCALE_REPLICAS_MAX 100000u
#define FM_AUTOSCALE_INSTANCES_MAX 65536u
#define FM_AUTOSCALE_WINDOW_MAX ((fm_ms)3600 * FM_MS_PER_S)
#define FM_AUTOSCALE_PERIOD_MAX ((fm_ms)1800 * FM_MS_PER_S)
#define FM_AUTOSCALE_PERCENT_MAX 10000u
#define FM_AUTOSCALE_HOLT_GAP_MAX ((fm_ms)600 * FM_MS_PER_S)

struct fm_autoscale_metric_config {
        bool enabled;
        double target; /* > 0; GPU_UTIL in (0, 1] */
};

/*
 * Change allowed per period: the larger of `percent` % of the count at the
 * period's start and `pods` instances; 0 turns that policy off, both 0
 * forbids scaling in that direction.
 */
struct fm_autoscale_step {
        uint32_t percent;
        uint32_t pods;
        fm_ms period; /* > 0, at most FM_AUTOSCALE_PERIOD_MAX */
};

struct fm_autoscale_config {
        uint32_t min_replicas; /* >= 1; default 1 */
        uint32_t max_replicas; /* >= min, at most FM_AUTOSCALE_REPLICAS_MAX; default 10 */
        /* default: GPU_UTIL 0.7 enabled; QUEUE_DEPTH 4, IN_FLIGHT 8, LATENCY 1000 ms disabled */
        struct fm_autoscale_metric_config metric[_FM_AUTOSCALE_METRIC_MAX];
        double tolerance;              /* [0, 1); default 0.1 */
        fm_ms up_window;               /* scale-up stabilisation; default 0 */
        fm_ms down_window;             /* scale-down stabilisation; default 300 s */
        struct fm_autoscale_step up;   /* default 100 % or 4 per 15 s */
        struct fm_autoscale_step down; /* default 100 % per 15 s */
        /* Cost ceiling: at most floor(budget / cost) instances; 0 in either turns it off. */
        double cost_per_instance_hour; /* default 0 */
        double budget_per_hour;        /* default 0 */
        fm_ms cold_start;  /* time a new instance needs to become ready; default 120 s */
        bool predictive;   /* default false; needs cold_start > 0 (the forecast horizon) */
        double holt_alpha; /* level smoothing per update, (0, 1]; default 0.5 */
        double holt_beta;  /* trend smoothing per update, (0, 1]; default 0.3 */
};

void fm_autoscale_config_default(struct fm_autoscale_config *cfg);

/*
 * Returns 0, or -EINVAL: min 0 or above max, max over FM_AUTOSCALE_REPLICAS_MAX,
 * no metric enabled, an enabled target not finite and positive (GPU_UTIL over 1),
 * tolerance outside [0, 1), a window or cold_start negative or over
 * FM_AUTOSCALE_WINDOW_MAX, a period not in (0, FM_AUTOSCALE_PERIOD_MAX], a
 * percent over FM_AUTOSCALE_PERCENT_MAX (down: over 100), pods over
 * FM_AUTOSCALE_REPLICAS_MAX, cost or budget negative or not finite, a budget
 * that cannot pay for min_replicas, predictive without cold_start, Holt
 * factors outside (0, 1].
 */
int fm_autoscale_config_validate(const struct fm_autoscale_config *cfg);

/* One instance as the decision sees it; value[m] is read only when has[m]. */
struct fm_autoscale_instance {
        bool ready;
        bool has[FM_AUTOSCALE_PER_INSTANCE_METRICS];
        double value[FM_AUTOSCALE_PER_INSTANCE_METRICS]; /* finite, >= 0 */
};

struct fm_autoscale_input {
        uint32_t current; /* replicas as last set (the desired count, not instances seen) */
        const struct fm_autoscale_instance *instances; /* borrowed, read only */
        size_t n_instances;                            /* at most FM_AUTOSCALE_INSTANCES_MAX */
        bool has_latency;
        double latency; /* deployment-level, same unit as the target; finite, >= 0 */
};

/*
 * Memory of one deployment, owned by the caller, fixed size (about 2.6 KiB).
 *
 * Stabilisation keeps two monotonic queues of (time, recommendation): the
 * scale-down one holds only entries that can still be the window's maximum
 * (each larger than every later one), the scale-up one those that can be its
 * minimum. The window's extreme is then the oldest entry, exactly as if all
 * recommendations were kept. A queue holds at most FM_AUTOSCALE_RECS_MAX
 * entries; that many needs that many strictly falling (rising) proposals
 * within one window. When full, its two oldest entries merge into one that
 * keeps the older value and the newer time: the extreme outlives its time a
 * little, which only delays a scale in that direction.
 *
 * Scale events (for the step-limit periods) are kept as at most
 * FM_AUTOSCALE_EVENTS_MAX entries, dropped once older than both periods;
 * when full, the two oldest merge (sums of added and removed, the newer
 * time), which again only makes the limit stricter.
 */
#define FM_AUTOSCALE_RECS_MAX 64
#define FM_AUTOSCALE_EVENTS_MAX 32

struct fm_autoscale_rec {
        fm_ms at;
        uint32_t replicas;
};

struct fm_autoscale_recs {
        uint32_t head, n;
        struct fm_autoscale_rec item[FM_AUTOSCALE_RECS_MAX];
};

struct fm_autoscale_event {
        fm_ms at;
        uint32_t added, removed;
};

struct fm_autoscale_state {
        bool started;                  /* the scale-down window was seeded */
        struct fm_autoscale_recs up;   /* minima over the scale-up window */
        struct fm_autoscale_recs down; /* maxima over the scale-down window */
        uint32_t events_head, n_events;
        struct fm_autoscale_event event[FM_AUTOSCALE_EVENTS_MAX];
        struct {
                bool active;
                uint32_t target; /* the count asked for */
                fm_ms asked_at, ready_by;
        } pending;
        struct {
                bool valid;
                double level; /* demand, instances at target */
                double trend; /* per ms */
                fm_ms last;
        } holt;
};

/* An empty state: nothing seen yet. */
void fm_autoscale_state_init(struct fm_autoscale_state *s);

struct fm_autoscale_decision {
        uint32_t current;        /* input->current */
        uint32_t recommendation; /* after step 4, before windows, cold start and limits
                                  * (on a range correction: desired; without metrics: current) */
        uint32_t desired;        /* == current when !act */
        bool act;
        const char *reason;          /* static, see above */
        struct fm_evidence evidence; /* see below */
};

/*
 * Decides for one deployment at now and updates *state (windows, forecast,
 * and, when acting, scale events and the pending scale-up).
 *
 * Evidence, in this order and only where it applies: current_replicas,
 * ready_replicas, <metric>_ratio and <metric>_replicas for each usable
 * metric (the ratio the proposal rests on, after the missing/not-ready
 * assumptions), recommendation_replicas (the reactive one: the largest
 * proposal), predicted_replicas (the forecast demand, predictive mode),
 * window_max_replicas, window_min_replicas (when up_window > 0),
 * up_limit_replicas or down_limit_replicas, affordable_replicas (cost
 * ceiling on), max_replicas / min_replicas on a range correction. At most
 * FM_EVIDENCE_MAX.
 *
 * Returns 1 when the decision acts, 0 when it does not (*ret filled in both
 * cases), -EINVAL for an invalid cfg or input (*ret and *state untouched).
 * Never allocates, never reads a clock.
 */
int fm_autoscale_decide(const struct fm_autoscale_config *cfg, struct fm_autoscale_state *state,
                        const struct fm_autoscale_input *in, fm_ms now,
                        struct fm_autoscale_decision *ret);
