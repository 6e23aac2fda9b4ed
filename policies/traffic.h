/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Traffic decisions of one deployment, as pure functions over their own
 * inputs: ejection weights (breakers become integer weights) and canary
 * progression (a new version walks through weight steps with an analysis
 * per step). Someone else adapts the fleet into these inputs and turns the
 * results into set_weights and rollback intents. Nothing here reads a
 * clock, allocates, logs or keeps a global; `now` is an argument, every
 * output is written only on success.
 */

#include <stdbool.h>
#include <stdint.h>

#include "evidence.h"
#include "util.h"

/* ==== Ejection weights ================================================== */

/*
 * Weights are integer percentages summing to 100 (the set_weights contract),
 * so at most 100 targets can each receive traffic: that is the cap on the
 * number of targets of one call.
 */
#define FM_TRAFFIC_TARGETS_MAX 100

struct fm_traffic_config {
        /*
         * At most this share of the targets is ejected, 0..100; default 50.
         * The share is floor(n × percent / 100), raised to one ejection when
         * that is 0 and ejecting one still leaves the healthy floor (the
         * small-pool rule: Envoy's 10 % cap ejects nothing below ten hosts).
         * 0 disables ejection altogether; the small-pool rule does not apply.
         */
        uint32_t max_ejection_percent;
        /*
         * Minimum share of the targets that keeps traffic, [0, 1]; default 0.5.
         * The count is ceil(n × floor), and never less than one target.
         * Half-open targets count as keeping traffic: they are the ones coming
         * back, and an open target kept in their place would get full weight.
         */
        double healthy_floor;
        /*
         * A half-open target's weight as a percentage of its base, 1..100;
         * default 5. Shares are relative: when only half-open targets keep
         * traffic they share all of it, since traffic has to go somewhere.
         */
        uint32_t probe_percent;
};

/* max_ejection_percent 50, healthy_floor 0.5, probe_percent 5. */
void fm_traffic_config_default(struct fm_traffic_config *cfg);

/* Returns 0, or -EINVAL: a percent over 100, probe_percent 0, floor outside [0, 1] or NaN. */
int fm_traffic_config_validate(const struct fm_traffic_config *cfg);

/* One target (an instance) as the adapter sees it. */
struct fm_traffic_target {
        uint32_t base;   /* relative weight; 0: takes no traffic (drained) and is left out */
        bool eject;      /* wants out: breaker OPEN or FORCED_OPEN */
        bool half_open;  /* breaker HALF_OPEN: gets a probe share; not with eject */
        double priority; /* ejection order when a limit binds: higher first (e.g. failure
                          * rate; INFINITY for an operator's FORCED_OPEN); equal → input
                          * order; NaN ranks lowest */
};

enum fm_traffic_reason {
        FM_TRAFFIC_HEALTHY,    /* "healthy": in traffic at its base share */
        FM_TRAFFIC_PROBE,      /* "half_open_probe": probe_percent of its base share */
        FM_TRAFFIC_EJECTED,    /* "ejected": weight 0 */
        FM_TRAFFIC_KEPT_CAP,   /* "kept_max_ejection": wanted out, max_ejection_percent kept it */
        FM_TRAFFIC_KEPT_FLOOR, /* "kept_healthy_floor": wanted out, the healthy floor kept it */
        FM_TRAFFIC_ZERO_BASE,  /* "zero_base": base 0, weight 0, outside every count */
        _FM_TRAFFIC_REASON_MAX,
};

/* Stable lower-case names as above; NULL if out of range. */
const char *fm_traffic_reason_name(enum fm_traffic_reason r) _pure_;

struct fm_traffic_result {
        uint32_t n; /* the number of targets given */
        /* Per target, in input order. Weights sum to exactly 100; an ejected or
         * zero-base target has 0, every other target at least 1. */
        uint32_t weight[FM_TRAFFIC_TARGETS_MAX];
        enum fm_traffic_reason reason[FM_TRAFFIC_TARGETS_MAX];
        /* Input indices of the ejected targets, in ejection order. */
        uint32_t n_ejected;
        uint16_t ejected[FM_TRAFFIC_TARGETS_MAX];
        /* Input indices of targets that wanted out but were kept in (reason
         * KEPT_CAP or KEPT_FLOOR), in the same order (the next to go first). */
        uint32_t n_kept;
        uint16_t kept[FM_TRAFFIC_TARGETS_MAX];
        /* targets, zero_base_targets, half_open_targets, eject_wanted, ejected, kept_by_cap,
         * kept_by_floor, max_ejection_percent, cap_ejections, small_pool_rule, healthy_floor,
         * floor_targets, allowed_ejections, probe_percent */
        struct fm_evidence evidence;
};

/*
 * Turns the targets' ejection wishes into weights. Among the n targets of
 * nonzero base (the pool), the allowed number of ejections is
 *
 *     min(cap, n - floor_targets)
 *     cap = max(floor(n × max_ejection_percent / 100),
 *               1 if max_ejection_percent > 0 and n - 1 >= floor_targets)
 *     floor_targets = max(1, ceil(n × healthy_floor))
 *
 * When more targets want out, the highest priorities go (ties in input
 * order) and the rest stay in at full weight, with the reason of the limit
 * that bound (the floor when it is the tighter or equal one). Targets in
 * traffic then share 100 in proportion to base (a half-open one to
 * base × probe_percent / 100) by the largest-remainder method (ties to the
 * earlier target), after raising any share under 1 % to 1 %, so a target
 * kept in traffic is never rounded out of it.
 *
 * targets (n of them, borrowed, read only) may be NULL when n is 0.
 * Returns 0 and fills *ret; -EINVAL for an invalid cfg or a target with
 * both eject and half_open; -E2BIG for n over FM_TRAFFIC_TARGETS_MAX;
 * -ENODATA when no target has a nonzero base (nothing could carry traffic,
 * so there is no set of weights to apply). *ret is untouched on error.
 */
int fm_traffic_eject(const struct fm_traffic_config *cfg, const struct fm_traffic_target *targets,
                     uint32_t n, struct fm_traffic_result *ret);

/* ==== Canary progression ================================================ */

#define FM_CANARY_STEPS_MAX 16
/* Upper limit of the analysis interval: one week. */
#define FM_CANARY_INTERVAL_MAX ((fm_ms)7 * 24 * 3600 * FM_MS_PER_S)

struct fm_canary_config {
        /* The canary's weight per step, percent: strictly ascending, 1..100, the last
         * 100; default 5, 10, 25, 50, 100. */
        uint32_t steps[FM_CANARY_STEPS_MAX];
        uint32_t n_steps;      /* 1..FM_CANARY_STEPS_MAX; default 5 */
        fm_ms interval;        /* least time on a step before it advances; default 5 min */
        uint64_t min_requests; /* per side before any judgement; default 100 */
        /* The error-rate check aborts when canary rate > stable rate × (1 + error_margin)
         * and a one-sided two-proportion z-test rejects "canary no worse" at this
         * confidence. Defaults 0.2 and 0.95. */
        double error_margin;
        double confidence;    /* in (0.5, 1) */
        double max_p99_ratio; /* abort when canary p99 > stable p99 × this; >= 1; default 1.5 */
};

void fm_canary_config_default(struct fm_canary_config *cfg);

/* Returns 0, or -EINVAL for any value outside the ranges above (including NaN). */
int fm_canary_config_validate(const struct fm_canary_config *cfg);

struct fm_canary_state {
        uint32_t step;    /* index into cfg->steps of the weight in effect */
        fm_ms step_since; /* when that step began, or when the state became terminal */
        bool aborted;     /* terminal: canary at 0, a rollback was asked for */
        bool promoted;    /* terminal: the canary became stable */
};

/* A new canary version: step 0 since now, not terminal. Its weight is cfg->steps[0]. */
void fm_canary_reset(struct fm_canary_state *state, fm_ms now);

/* The canary weight the state stands for: 0 aborted, 100 promoted, else the step's
 * (0 when the step is out of cfg's range). */
uint32_t fm_canary_weight(const struct fm_canary_config *cfg, const struct fm_canary_state *state);

/* One side of the comparison, counted over the current step (the adapter restarts its
 * counts when the step changes). */
struct fm_canary_side {
        uint64_t requests, errors; /* errors <= requests */
        double p99_ms;             /* read only when has_p99; finite and >= 0 */
        bool has_p99;
};

struct fm_canary_input {
        struct fm_canary_side stable, canary;
};

enum fm_canary_action {
        FM_CANARY_HOLD,    /* "hold": keep the weight */
        FM_CANARY_ADVANCE, /* "advance": move to the next step's weight */
        FM_CANARY_PROMOTE, /* "promote": the canary becomes stable (100 %) */
        FM_CANARY_ABORT,   /* "abort": canary to 0 and roll back */
        _FM_CANARY_ACTION_MAX,
};

enum fm_canary_reason {
        FM_CANARY_INSUFFICIENT_DATA,  /* "insufficient_data": a side under min_requests */
        FM_CANARY_INCONCLUSIVE,       /* "inconclusive": worse beyond the margin, not yet
                                       * significant; waits for more data, never advances */
        FM_CANARY_INTERVAL,           /* "interval_not_elapsed" */
        FM_CANARY_PASSED,             /* "analysis_passed" */
        FM_CANARY_ERROR_REGRESSION,   /* "error_rate_regression" */
        FM_CANARY_LATENCY_REGRESSION, /* "latency_regression" */
        FM_CANARY_TERMINAL,           /* "terminal": already aborted or promoted */
        _FM_CANARY_REASON_MAX,
};

/* Stable lower-case names as above; NULL if out of range. */
const char *fm_canary_action_name(enum fm_canary_action a) _pure_;
const char *fm_canary_reason_name(enum fm_canary_reason r) _pure_;

struct fm_canary_decision {
        enum fm_canary_action action;
        enum fm_canary_reason reason;
        uint32_t weight; /* canary weight to apply, percent; stable gets 100 - weight */
        bool rollback;   /* abort: a rollback is wanted */
        /* step, canary_weight_percent, step_elapsed_s, interval_s, min_requests,
         * stable_requests, canary_requests, then once both sides have min_requests:
         * stable_error_rate, canary_error_rate, error_margin, error_z, error_p_value,
         * and when both sides have a p99 (stable's > 0): p99_ratio, max_p99_ratio */
        struct fm_evidence evidence;
};

/*
 * One analysis of the canary at now. In order:
 *
 *   terminal state                    → hold (weight 0 or 100), reason terminal
 *   a side under min_requests         → hold: no judgement either way
 *   error rate over the margin and
 *     significant                     → abort (error_rate_regression)
 *   p99 ratio over max_p99_ratio      → abort (latency_regression)
 *   error rate over the margin only   → hold (inconclusive)
 *   less than interval on this step   → hold
 *   the last step                     → promote
 *   otherwise                         → advance, the step restarting at now
 *
 * A proven regression aborts at once, whatever the time on the step: waiting
 * would only serve more errors. The interval limits progress, so weights move
 * at most one step per interval, only forward, or to 0 on abort, and a
 * flapping analysis cannot make them oscillate.
 *
 * cfg and in are read only; *state is updated in place and *ret filled, both
 * only on success. Returns 1 when the state changed (advance, promote,
 * abort), 0 on hold, -EINVAL for an invalid cfg, a state outside cfg's steps
 * or both terminal flags, or an input with errors > requests or a bad p99.
 */
int fm_canary_decide(const struct fm_canary_config *cfg, struct fm_canary_state *state,
                     const struct fm_canary_input *in, fm_ms now, struct fm_canary_decision *ret);
