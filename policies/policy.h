/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The policy interface. A policy is a pure function of the fleet (read
 * only), this tick's breaker transitions, its own configuration and state,
 * and now; it appends intents to the plan. It never does I/O, never reads
 * a clock and never writes the fleet. Each policy keeps whatever memory it
 * needs (cooldowns, forecasts) in its own state object.
 */

#include <stddef.h>

#include "fleet.h"
#include "intent.h"
#include "util.h"

struct fm_policy_input {
        const struct fm_fleet *fleet;
        const struct fm_deployment *deployment;  /* the deployment being evaluated */
        const struct fm_transition *transitions; /* this tick's, of this deployment only */
        size_t n_transitions;
        fm_ms now;
};

struct fm_policy_ops {
        const char *name; /* stable, lower-case: a metric label and the audit's "policy" */
        /*
         * Evaluates one deployment. state is the policy's own (may be NULL).
         * Returns 0 or a negative errno; an error does not stop other
         * policies or deployments.
         */
        int (*evaluate)(void *state, const struct fm_policy_input *in, struct fm_plan *plan);
};

struct fm_policy {
        const struct fm_policy_ops *ops;
        void *state;
};

/*
 * The breaker policy: every opening of an instance's breaker becomes a
 * restart intent for that instance, keyed by the opening, with the
 * transition's evidence. Taking the instance out of traffic is the traffic
 * policy's part, which reads the breaker states. Stateless.
 */
extern const struct fm_policy_ops fm_policy_breaker;
