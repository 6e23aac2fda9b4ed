/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The decision core as one object: the fleet, the policies, the safety
 * governor and alerting, and the plan they fill. The daemon, the simulator
 * and replay are three thin shells around it: each feeds decoded events
 * with fm_core_apply() and calls fm_core_tick() at its own clock; what the
 * plan holds after a tick (breaker transitions, intents with their
 * verdicts) is theirs to execute, record or report.
 *
 * Pure: no I/O, no clock, no globals. The same configuration, the same
 * events and the same sequence of now values give the same plans.
 */

#include <stddef.h>

#include "alerting.h"
#include "event.h"
#include "fleet.h"
#include "governor.h"
#include "intent.h"
#include "policies.h"
#include "util.h"

struct fm_core_config {
        struct fm_fleet_config fleet; /* includes the breaker */
        struct fm_policies_config policies;
        struct fm_governor_config governor;
        struct fm_alerting_config alerting;
};

/* The defaults of every part. */
void fm_core_config_default(struct fm_core_config *cfg);

/* 0, or -EINVAL when a part is invalid. */
int fm_core_config_validate(const struct fm_core_config *cfg);

struct fm_core;

/* Returns 0, -EINVAL, -ENOMEM; *ret untouched on failure. cfg is copied. */
int fm_core_new(const struct fm_core_config *cfg, struct fm_core **ret);

/* Accepts NULL; returns NULL. */
struct fm_core *fm_core_free(struct fm_core *c);

/*
 * Applies a new configuration keeping all state (breakers, cooldowns, tuned
 * thresholds). Returns 0 or -EINVAL, in which case nothing changed.
 */
int fm_core_reconfigure(struct fm_core *c, const struct fm_core_config *cfg);

/* Applies one decoded event (fm_fleet_apply()). */
int fm_core_apply(struct fm_core *c, const struct fm_event *ev, enum fm_reject *ret_reason);

/*
 * Tells the core that a scale of the deployment from `from` to `to`
 * replicas was carried out at now (fm_fleet_note_scaled()): for a grace
 * period the instances a scale-down removed are retired when they go
 * silent, instead of opening their breakers and asking for restarts of
 * instances that no longer exist. Shells call it when the actuator reports
 * a scale action done, with the action's own from and to. Returns 0,
 * -EINVAL or -ENOENT (the deployment is not known).
 */
int fm_core_note_scaled(struct fm_core *c, const char *deployment, uint32_t from, uint32_t to,
                        fm_ms now);

/* What went wrong in a tick, stage by stage: 0 or a negative errno each. */
struct fm_core_tick_errors {
        int reconcile; /* a policy failed; -ENOBUFS: the plan overflowed */
        int governor;
        int alerting_review; /* the governor's review of the tick's alerts */
};

/*
 * One tick at now: reconcile (fleet and policies), the governor's review,
 * alerting on the verdicts, the governor's review of those alerts. The
 * plan it returns belongs to c and is valid until the next tick. Returns 0,
 * or the first stage's error (all stages still ran; errors, when not NULL,
 * gets each one).
 */
int fm_core_tick(struct fm_core *c, fm_ms now, const struct fm_plan **ret_plan,
                 struct fm_core_tick_errors *errors);

/* The parts, for metrics, status and the simulator's observations. */
struct fm_fleet *fm_core_fleet(const struct fm_core *c);
const struct fm_governor *fm_core_governor(const struct fm_core *c);
const struct fm_policies *fm_core_policies(const struct fm_core *c);
const struct fm_plan *fm_core_plan(const struct fm_core *c);
