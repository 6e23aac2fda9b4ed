/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The safety governor: the last step before any action.
 *
 * fm_governor_review() gives every pending intent of a tick's plan a
 * verdict (intent.h) and appends the governor's own alerts. An intent is
 * checked in this order; the first rule that blocks it decides:
 *
 *   1. paused       the operator switch; absolute, so it explains first
 *   2. maintenance  a weekly window (UTC) is open; humans are working
 *   3. frozen       the controller is probably blind to the deployment: a
 *                   capacity-reducing action would rest on data we cannot
 *                   trust, so none of the numbers below are worth consulting
 *   4. conflict     a rollback of the deployment pre-empts it, or another
 *                   intent already took its target this tick; a structural
 *                   reason of this tick, shown in preference to the timing
 *                   rules it would also often trip
 *   5. cooldown     too soon after the last action on the same target
 *   6. budget       restart budget of the instance spent (verdict COOLDOWN:
 *                   it is a cooldown over a longer span; evidence tells)
 *   7. capacity     the action would leave too few instances in service;
 *                   after the per-target rules because it depends on what
 *                   this tick already approved
 *   8. rate limit   the global token bucket; last of the blocking rules, so
 *                   only an intent that would otherwise pass spends a token
 *   9. dry-run      global or per policy: DRY_RUN means "would have been
 *                   approved", so a dry run shows exactly what would happen
 *  10. approved
 *
 * Alerts (FM_ACTION_ALERT) touch nothing in the fleet: only paused, their
 * own rate bucket and dry-run apply (maintenance windows do not silence
 * the controller; routing silences are Alertmanager's job). Alert cooldown
 * must be 0: the governor's alerts are deduplicated per episode, a policy's
 * by the alerting policy.
 *
 * Targets. A target is (deployment, instance, action); the instance is
 * part of it only for restarts: scale, set_weights, rollback and
 * set_threshold target the whole deployment. Cooldowns, "one approved
 * action per target per tick" and restart budgets are per target.
 *
 * Rollback pre-emption. Rollbacks are reviewed first. A rollback approved
 * this tick makes every scale and set_weights intent of the same
 * deployment from a different policy CONFLICT (the rollback's own policy
 * may still move traffic or replicas around it). A rollback that is itself
 * blocked pre-empts nothing: there is no concurrent action to collide with.
 *
 * Capacity-reducing, for the freeze: every restart; scale with to < from;
 * set_weights giving weight 0 to any target. By kind, not by effect, because
 * a blind controller's breakers have already ejected the silent instances,
 * and those are exactly the actions to hold back. And a set_weights that
 * takes an in-service instance below its equal share: each instance gets
 * the weight of its name, else its version's weight spread over the
 * version's instances; one more than a unit (integer rounding) under the
 * mean of the instances the set covers is below. Half-open breakers of
 * silent instances ask for exactly such probe weights, which would eject
 * the instances in all but name. While a freeze is held (below), any
 * set_weights naming instances is reducing: it would set the known ones
 * anew and leave the forgotten ones at their old absolute weights.
 *
 * Capacity floor, by effect: an instance is in service when its breaker
 * does not eject it and no restart of it was approved within
 * restart_settle. A restart of an in-service instance removes one; a
 * set_weights removes every in-service instance it gives weight 0 (named
 * directly, or through its version when the instance is not named); a scale
 * down from -> to assumes the worst, that min(from - to, in service)
 * in-service instances go. The floor is
 * max(ceil(capacity_floor * n), capacity_min_instances) with n the
 * deployment's known instances (for a scale, `to`), and an action is
 * blocked when it removes at least one in-service instance and leaves fewer
 * than the floor. Restarting an instance that is already out of service
 * never lowers capacity and is never blocked by the floor. Two removals of
 * one instance in one tick (set_weights, then restart) may be counted
 * twice: conservative.
 *
 * Blindness freeze: an instance is silent when now - last_seen exceeds the
 * fleet's breaker heartbeat_timeout. The deployment is frozen when the
 * largest group of silent instances whose last_seen lie within freeze_span
 * of each other holds at least freeze_min_silent instances and MORE than
 * freeze_share of the deployment's instances (at exactly the share it is
 * not frozen). A freeze episode lasts while the condition holds at each
 * review; its start raises one alert. Freeze hold: when the condition stops
 * holding because the deployment now has fewer instances than at the
 * episode's last frozen review (the fleet forgot the silent ones; it has
 * not heard from them), the episode stays frozen until the count is back
 * or for freeze_hold after the drop, whichever comes first.
 *
 * Governor alerts are critical, of policy "governor", reason "frozen" or
 * "restart_budget_exhausted", keyed by episode start. An episode counts as
 * alerted once its alert is in the plan with any verdict but RATE_LIMIT (a
 * rate-limited one is raised again at the next review, or the next blocked
 * restart); an alert PAUSED is not repeated after the pause.
 *
 * Dry-run ("shadow") intents: an intent is dry-run when the global flag is
 * set or its policy is listed. A dry-run intent sees the live world plus the
 * earlier dry-run decisions (live cooldowns, budgets and approvals bind it;
 * its own are kept apart and never bind a live intent), and spends tokens
 * from separate buckets. So a policy can run in shadow in production
 * without touching the live rules, and its audit shows its real cadence.
 *
 * Idempotency keys are not remembered: within the cooldown a repeat is
 * blocked anyway, and after it a level-triggered repeat is meant to be
 * re-applied; dropping an already executed key is the journal's job.
 *
 * Pure: no clock, no I/O, no globals. The same configuration, fleet and
 * sequence of plans and `now` values give the same verdicts, evidence and
 * alerts; the hash key changes only the table layout.
 */

#include <stdbool.h>
#include <stdint.h>

#include "fleet.h"
#include "intent.h"
#include "util.h"

/* The policy name of the governor's own alerts. */
#define FM_GOVERNOR_POLICY "governor"

#define FM_GOVERNOR_MAX_WINDOWS 8         /* maintenance windows */
#define FM_GOVERNOR_MAX_DRY_RUN 16        /* policies listed for dry-run */
#define FM_GOVERNOR_POLICY_NAME_MAX 31    /* bytes of a listed policy name */
#define FM_GOVERNOR_RESTART_BUDGET_MAX 16 /* restarts remembered per instance */
#define FM_GOVERNOR_COOLDOWN_LIMIT ((fm_ms)30 * 24 * 3600 * FM_MS_PER_S) /* 30 days */
#define FM_GOVERNOR_RATE_LIMIT 1000000 /* upper bound of rates and bursts */
#define FM_GOVERNOR_MIN_ENTRIES 16
#define FM_GOVERNOR_MAX_ENTRIES (1u << 20)
#define FM_MINUTES_PER_WEEK (7 * 24 * 60)

/* Days of a maintenance window (UTC), ISO order. */
enum {
        FM_DAY_MON = 1u << 0,
        FM_DAY_TUE = 1u << 1,
        FM_DAY_WED = 1u << 2,
        FM_DAY_THU = 1u << 3,
        FM_DAY_FRI = 1u << 4,
        FM_DAY_SAT = 1u << 5,
        FM_DAY_SUN = 1u << 6,
        FM_DAY_ALL = 0x7f,
};

/*
 * A weekly window: it opens at start_min (minute of the day, UTC) on every
 * day in `days` and stays open duration_min minutes, across midnight and
 * the end of the week if need be. Minute-exact: open from hh:mm:00.000
 * through the last millisecond of its last minute.
 */
struct fm_governor_window {
        uint8_t days;          /* FM_DAY_* bits, not 0 */
        uint16_t start_min;    /* 0..1439 */
        uint16_t duration_min; /* 1..FM_MINUTES_PER_WEEK */
};

struct fm_governor_config {
        bool paused;  /* every intent PAUSED; default false */
        bool dry_run; /* every intent, alerts too, is decided but not executed; default false */
        /* policies whose intents are dry-run; "governor" covers the governor's alerts */
        uint32_t n_dry_run_policies;
        char dry_run_policy[FM_GOVERNOR_MAX_DRY_RUN][FM_GOVERNOR_POLICY_NAME_MAX + 1];

        /*
         * Minimum time between two approved actions on one target, per
         * action. Defaults: restart 60 s (per instance), scale 60 s,
         * set_weights 10 s, rollback 30 min, set_threshold 1 h, alert 0
         * (must be 0). At most FM_GOVERNOR_COOLDOWN_LIMIT.
         */
        fm_ms cooldown[_FM_ACTION_MAX];

        /*
         * Global action rate, a token bucket: rate_per_min tokens a minute,
         * holding at most rate_burst; one action spends one. Defaults 30/min,
         * burst 10. Alerts draw from their own bucket (default 10/min, burst
         * 20): an alert storm never starves actions, nor the reverse.
         */
        uint32_t rate_per_min, rate_burst;
        uint32_t alert_rate_per_min, alert_burst;

        /* Capacity floor: see above. Defaults 0.5 and 1; share in [0, 1], minimum >= 1. */
        double capacity_floor;
        uint32_t capacity_min_instances;
        fm_ms restart_settle; /* a restarted instance is out of service this long; default 60 s */

        /*
         * Restart budget: at most restart_budget approved restarts of one
         * instance within restart_span (a restart at r counts while
         * now - r < restart_span); the next is blocked (COOLDOWN) and one
         * critical alert is raised per exhaustion episode. The episode ends
         * when a restart of the instance passes the budget again.
         * Defaults 3 in 30 min; budget 1..FM_GOVERNOR_RESTART_BUDGET_MAX.
         */
        uint32_t restart_budget;
        fm_ms restart_span;

        /*
         * Blindness freeze: see above. Defaults share 0.5 (frozen above it),
         * span 60 s, at least 2 silent instances (one silent instance is that
         * instance's problem, which its breaker handles; it says nothing
         * about the controller's sight).
         */
        double freeze_share;
        fm_ms freeze_span;
        uint32_t freeze_min_silent;
        fm_ms freeze_hold; /* the hold above; default 15 min, 0 disables it */

        uint32_t n_windows;
        struct fm_governor_window window[FM_GOVERNOR_MAX_WINDOWS];

        /*
         * Size of the state table (targets with a cooldown, restart history
         * or budget episode, and frozen deployments), fixed at creation: a
         * reload keeps the old size. An entry is dropped once its longest
         * rule has expired; when the table is full the entry untouched for
         * longest is evicted (counted). Approved actions are bounded by the
         * rate, so live entries stay below rate_per_min * (longest cooldown
         * or span, in minutes) + burst + frozen deployments: with the
         * defaults 30 * 60 + 10 = 1810 of the default 4096.
         */
        uint32_t max_entries;
        uint64_t hash_key[2]; /* SipHash key of the table; the shell picks it at random */
};

/* Fills *cfg with the defaults above (no windows, no dry-run policies, zero hash key). */
void fm_governor_config_default(struct fm_governor_config *cfg);

/*
 * Returns 0, or -EINVAL: a negative or over-limit cooldown, a non-zero
 * alert cooldown, a rate or burst outside 1..FM_GOVERNOR_RATE_LIMIT, a share
 * outside [0, 1] or not finite, capacity_min_instances or
 * freeze_min_silent 0, a restart budget outside 1..16, a non-positive
 * restart_span or negative restart_settle, freeze_span or freeze_hold (each at most
 * FM_GOVERNOR_COOLDOWN_LIMIT), a bad window, an empty or unterminated
 * dry-run policy name, too many windows or names, max_entries outside
 * [FM_GOVERNOR_MIN_ENTRIES, FM_GOVERNOR_MAX_ENTRIES].
 */
int fm_governor_config_validate(const struct fm_governor_config *cfg);

/* What the governor counted; the shell turns these into metrics. */
struct fm_governor_stats {
        uint64_t verdicts[_FM_VERDICT_MAX]; /* every verdict given, alerts included */
        uint64_t alerts_raised;             /* governor alerts appended to plans */
        uint64_t alerts_dropped;            /* could not be appended: plan full */
        uint64_t evictions;                 /* live table entries evicted when full */
        uint32_t frozen_deployments;        /* at the last review */
        uint32_t entries;                   /* table entries in use */
};

struct fm_governor;

/*
 * Creates a governor with empty state; cfg is copied. The token buckets
 * start full. Returns 0, -EINVAL (cfg invalid), -ENOMEM.
 */
int fm_governor_new(const struct fm_governor_config *cfg, struct fm_governor **ret);

/* Frees the governor; accepts NULL; returns NULL. */
struct fm_governor *fm_governor_free(struct fm_governor *g);

/*
 * Applies a new configuration (a reload) and keeps the state: cooldown
 * clocks, restart histories, budget and freeze episodes, tokens (clamped to
 * the new bursts). max_entries and hash_key keep their values from
 * creation. Returns 0 or -EINVAL (nothing changed).
 */
int fm_governor_set_config(struct fm_governor *g, const struct fm_governor_config *cfg);

/*
 * Reviews the plan at now against the fleet (read only; NULL means an
 * empty fleet). Every intent whose verdict is FM_VERDICT_PENDING gets one,
 * plus evidence for a block (e.g. cooldown_remaining_s, in_service, floor,
 * silent_share); intents already decided are left alone, so a second call
 * on one plan changes nothing. Approvals and dry-run decisions are
 * recorded in the state. Alerts of policy FM_GOVERNOR_POLICY are appended
 * (and reviewed at once) for a freeze starting and for an exhausted restart
 * budget, once per episode.
 *
 * Returns 0; -EINVAL (NULL g or plan, an action out of range, a non-alert
 * intent without a deployment, a restart without an instance, set_weights
 * outside the plan's weight pool) or -ENOMEM, in both cases before
 * anything changed; -ENOBUFS when a governor alert did not fit in the plan
 * (counted in plan->dropped_intents and stats.alerts_dropped; every
 * verdict is still set, and the alert is retried at the next review).
 */
int fm_governor_review(struct fm_governor *g, const struct fm_fleet *f, struct fm_plan *plan,
                       fm_ms now);

/*
 * The maintenance window open at now: returns its index and, when
 * ret_remaining is not NULL, the milliseconds until that occurrence closes;
 * -ENOENT when none is open (*ret_remaining untouched). Computed from now
 * alone (1970-01-01 was a Thursday); no time zone, no libc time function.
 */
int fm_governor_maintenance(const struct fm_governor_config *cfg, fm_ms now, fm_ms *ret_remaining);

/* The counters. */
const struct fm_governor_stats *fm_governor_stats(const struct fm_governor *g);
