/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The policy set the daemon and the simulator run: each policy's
 * configuration, whether it is on, and the per-deployment state the
 * policies keep between ticks (autoscale recommendations and cold starts,
 * the last weights sent, canary progress, rollback marks, tuning cooldowns).
 *
 * The adapters here turn the fleet (read only) into the inputs of the pure
 * decision modules (autoscale.h, traffic.h, rollback.h, tune.h) and their decisions
 * into intents with evidence. Level-triggered with edges on the output:
 * each tick computes what the deployment should look like and emits an
 * intent only when it differs from what was last asked for, with an
 * idempotency key naming the wish.
 *
 * Defaults: breaker on; autoscale, traffic, canary, rollback and autotune off until
 * configured (acting on capacity or traffic needs targets and bounds only
 * the operator can give).
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "autoscale.h"
#include "fleet.h"
#include "policy.h"
#include "rollback.h"
#include "traffic.h"
#include "tune.h"
#include "util.h"

struct fm_policies_config {
        bool autoscale_enabled;
        struct fm_autoscale_config autoscale;

        bool traffic_enabled; /* breaker ejections become set_weights over instances */
        struct fm_traffic_config traffic;

        bool canary_enabled; /* a second version with instances is a canary of the first */
        struct fm_canary_config canary;

        /* the newest version against its baseline; see the rollback section of policies.c */
        bool rollback_enabled;
        struct fm_rollback_config rollback;

        bool autotune_enabled;
        struct fm_tune_config tune;
        fm_ms tune_window;        /* outcomes considered; default 1 h */
        fm_ms tune_cooldown;      /* between two threshold changes of a version; default 1 h */
        double initial_threshold; /* the threshold a version starts with; default 0.5 */
};

void fm_policies_config_default(struct fm_policies_config *cfg);

/* Returns 0 or -EINVAL (the enabled policies' own validations). */
int fm_policies_config_validate(const struct fm_policies_config *cfg);

struct fm_policies;

/*
 * Creates the policy set. cfg is copied. Per-deployment state is allocated
 * when a deployment is first evaluated (bounded by the fleet's deployment
 * cap) and dropped when the deployment is gone. Returns 0, -EINVAL, -ENOMEM.
 */
int fm_policies_new(const struct fm_policies_config *cfg, struct fm_policies **ret);

/* Applies a new configuration, keeping state. Returns 0 or -EINVAL (nothing changed). */
int fm_policies_reconfigure(struct fm_policies *p, const struct fm_policies_config *cfg);

/* Frees; accepts NULL; returns NULL. */
struct fm_policies *fm_policies_free(struct fm_policies *p);

/*
 * Fills out[] with the policies to run, in evaluation order (breaker,
 * traffic, canary, rollback, autoscale, autotune; disabled ones left out) and returns
 * how many (at most max). The entries point into p.
 */
size_t fm_policies_list(struct fm_policies *p, struct fm_policy *out, size_t max);

/* How long autoscale or traffic waits after the governor blocked its intent before it asks again.
 */
#define FM_POLICIES_VETO_QUIET_MS ((fm_ms)30 * FM_MS_PER_S)

/*
 * Tells the policies what the governor made of the tick's intents (call it
 * after the reviews). A scale the governor blocked (any verdict but
 * approved, dry_run and pending) will not happen: autoscale stops standing
 * the asked-for count in for the fleet's, so its next decision starts from
 * what the fleet has, and it stays quiet for FM_POLICIES_VETO_QUIET_MS so a
 * cooldown does not become a blocked intent every tick. A blocked weight
 * set of the traffic policy is sent again after the same quiet (the load
 * balancer still has the old weights). A dry-run verdict is taken as
 * carried out: dry-run shows what the controller would do.
 */
void fm_policies_note_verdicts(struct fm_policies *p, const struct fm_plan *plan, fm_ms now);

/*
 * Versions per deployment whose tuned threshold is remembered; a version
 * beyond it is not tuned (counted) until one of the others is gone.
 */
#define FM_POLICIES_TUNE_VERSIONS_MAX 32

/* What the policy set counted itself; the shell turns these into metrics. */
struct fm_policies_stats {
        uint32_t deployments;      /* deployments with state now */
        uint64_t traffic_too_many; /* traffic evaluations skipped: over FM_TRAFFIC_TARGETS_MAX */
        uint64_t tune_versions_skipped; /* version evaluations skipped: tuning table full */
        uint64_t state_errors;          /* a deployment not evaluated: state cap or no memory */
};

/* Copies the counters into *ret. */
void fm_policies_get_stats(const struct fm_policies *p, struct fm_policies_stats *ret);
