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

#define FM_INTENT_KEY_MAX 192

struct fm_intent {
        enum fm_action action;
        const char *policy; /* static: the policy's name */
        const char *reason; /* static: why, e.g. a breaker cause name */
        fm_ms at;
        char deployment[FM_NAME_MAX + 1];
        char instance[FM_NAME_MAX + 1]; /* "" when the target is the deployment */
        char key[FM_INTENT_KEY_MAX];    /* idempotency key */
        struct fm_evidence evidence;
};

/* Default capacities of a plan. */
#define FM_PLAN_DEFAULT_INTENTS 4096
#define FM_PLAN_DEFAULT_TRANSITIONS 4096

struct fm_plan {
        fm_ms now;
        struct fm_intent *intent;
        uint32_t n_intents, cap_intents;
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

/* Appends a copy of t; -ENOBUFS (counted) when full. */
int fm_plan_add_transition(struct fm_plan *p, const struct fm_transition *t);
