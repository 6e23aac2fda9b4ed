/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Intents and the plan of one reconcile tick.
 *
 * An intent is what a policy wants done, with the evidence it rests on and
 * an idempotency key: the same wish on a later tick carries the same key,
 * so whoever executes it (governor, journal, actuator) can tell a repeat
 * from a new action. A plan collects the tick's breaker transitions (the
 * audit trail of the state machine) and its intents in fixed-size arrays
 * allocated once; what does not fit is counted, never silently lost.
 */

#include <stdint.h>

#include "event.h"
#include "evidence.h"
#include "fleet.h"
#include "util.h"

enum fm_action {
        FM_ACTION_SCALE,
        FM_ACTION_SET_WEIGHTS,
        FM_ACTION_RESTART,
        FM_ACTION_ROLLBACK,
        FM_ACTION_SET_THRESHOLD,
        FM_ACTION_ALERT,
        _FM_ACTION_MAX,
};

/* "scale", "set_weights", "restart", "rollback", "set_threshold", "alert"; NULL if out of range. */
const char *fm_action_name(enum fm_action a) _pure_;

#define FM_INTENT_KEY_MAX 224 /* "rollback/" + three names of the longest kinds fits */
#define FM_ALERT_SUMMARY_MAX 160

enum fm_severity {
        FM_SEVERITY_INFO,
        FM_SEVERITY_WARNING,
        FM_SEVERITY_CRITICAL,
        _FM_SEVERITY_MAX,
};

/* "info", "warning", "critical"; NULL if out of range. */
const char *fm_severity_name(enum fm_severity s) _pure_;

/*
 * What the governor made of an intent. Everything but APPROVED and DRY_RUN
 * means "not executed"; the names are stable (audit records, metric labels).
 */
enum fm_verdict {
        FM_VERDICT_PENDING,     /* "pending": not reviewed yet */
        FM_VERDICT_APPROVED,    /* "approved" */
        FM_VERDICT_DRY_RUN,     /* "dry_run": decided and recorded, not executed */
        FM_VERDICT_COOLDOWN,    /* "cooldown": too soon after the last one of its kind */
        FM_VERDICT_RATE_LIMIT,  /* "rate_limit": the global action rate is spent */
        FM_VERDICT_CAPACITY,    /* "capacity_floor": would take capacity below the floor */
        FM_VERDICT_FROZEN,      /* "frozen": the controller is blind to this deployment */
        FM_VERDICT_PAUSED,      /* "paused": the operator paused actions */
        FM_VERDICT_MAINTENANCE, /* "maintenance": inside a maintenance window */
        FM_VERDICT_CONFLICT, /* "conflict": pre-empted (a rollback) or a second action on one target
                              */
        _FM_VERDICT_MAX,
};

const char *fm_verdict_name(enum fm_verdict v) _pure_;

/* One weight of a set_weights intent; stored in the plan's weight pool. */
struct fm_weight {
        char target[FM_VERSION_MAX + 1]; /* an instance or a version name */
        uint32_t weight;                 /* 0..100; a set sums to 100 unless all are 0 */
};

struct fm_intent {
        enum fm_action action;
        const char *policy; /* static: the policy's name */
        const char *reason; /* static: why, e.g. a breaker cause name */
        fm_ms at;
        char deployment[FM_NAME_MAX + 1];
        char instance[FM_NAME_MAX + 1]; /* "" when the target is the deployment */
        char key[FM_INTENT_KEY_MAX];    /* idempotency key */
        enum fm_verdict verdict;        /* set by the governor */
        union {
                struct {
                        uint32_t from, to; /* replicas */
                } scale;
                struct {
                        uint32_t first, n; /* plan->weight[first .. first + n) */
                } weights;
                struct {
                        char from[FM_VERSION_MAX + 1], to[FM_VERSION_MAX + 1];
                } rollback;
                struct {
                        char version[FM_VERSION_MAX + 1];
                        double from, to;
                } threshold;
                struct {
                        enum fm_severity severity;
                        char summary[FM_ALERT_SUMMARY_MAX];
                } alert;
        } arg;
        struct fm_evidence evidence;
};

/* Default capacities of a plan. */
#define FM_PLAN_DEFAULT_INTENTS 4096
#define FM_PLAN_DEFAULT_TRANSITIONS 4096

#define FM_PLAN_DEFAULT_WEIGHTS 16384

struct fm_plan {
        fm_ms now;
        struct fm_intent *intent;
        uint32_t n_intents, cap_intents;
        struct fm_weight *weight;
        uint32_t n_weights, cap_weights; /* cap FM_PLAN_DEFAULT_WEIGHTS */
        uint64_t dropped_weights;
        struct fm_transition *transition;
        uint32_t n_transitions, cap_transitions;
        uint64_t dropped_intents, dropped_transitions; /* over capacity, this tick */
};

/* Allocates the arrays. Returns 0, -EINVAL (a zero capacity), -ENOMEM. */
int fm_plan_init(struct fm_plan *p, uint32_t intents, uint32_t transitions);

/* Frees the arrays; accepts a zeroed or already freed plan. */
void fm_plan_done(struct fm_plan *p);

/* Empties the plan for a tick at now. */
void fm_plan_reset(struct fm_plan *p, fm_ms now);

/*
 * A zeroed intent at the end of the plan, stamped with action, policy and
 * the plan's time, or NULL (counted in dropped_intents) when the plan is
 * full. The caller fills in the rest.
 */
struct fm_intent *fm_plan_add_intent(struct fm_plan *p, enum fm_action action, const char *policy);

/*
 * Reserves n weights in the pool for a set_weights intent and points
 * it->arg.weights at them. Returns the first one (zeroed), or NULL (counted
 * in dropped_weights) when the pool cannot hold n.
 */
struct fm_weight *fm_plan_add_weights(struct fm_plan *p, struct fm_intent *it, uint32_t n);

/* Appends a copy of t; -ENOBUFS (counted) when full. */
int fm_plan_add_transition(struct fm_plan *p, const struct fm_transition *t);
