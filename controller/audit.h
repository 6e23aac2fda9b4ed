/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * JSON documents the shell emits: audit records (one per breaker transition
 * or intent, published to <prefix>/<deployment>/_fleetmedic/decisions and
 * kept for /status), the retained state summary (<prefix>/_fleetmedic/state)
 * and the /status document. Each function appends one compact JSON text to
 * b and returns 0 or a negative errno.
 *
 * Audit record fields: ts (seconds since the epoch, milliseconds),
 * type ("transition" or "action"), deployment, instance, and for a
 * transition version, from, to, cause; for an action action, policy,
 * reason, key, outcome; both carry evidence as an object of numbers.
 */

#include <stdbool.h>
#include <stdint.h>

#include "buf.h"
#include "fleet.h"
#include "executor.h"
#include "intent.h"
#include "util.h"

int fm_audit_transition(struct fm_buf *b, const struct fm_transition *t);

/*
 * An intent with its governor verdict, its arguments ("args": replicas,
 * weights, versions, threshold or alert text; weights are read from plan)
 * and outcome: "dry_run" or "blocked" here, later the actuator's observed
 * result.
 */
int fm_audit_intent(struct fm_buf *b, const struct fm_intent *it, const struct fm_plan *plan,
                    const char *outcome);

/* {"online":..,"dry_run":..,"ts":..,"deployments":N,"instances":N,"breakers_open":N} */
/*
 * What an executed action came to (type "execution"): key, policy, action,
 * target, backend (null when none was reached), outcome, detail, attempts,
 * submitted (when it was handed over), settled (true when it was settled by
 * observation after a restart).
 */
int fm_audit_execution(struct fm_buf *b, const struct fm_execution *e);

int fm_audit_state(struct fm_buf *b, const struct fm_fleet *f, bool online, bool dry_run,
                   fm_ms now);

struct fm_status_info {
        const char *version;
        double uptime_s;
        bool dry_run, ready, mqtt_connected, mqtt_subscribed;
        uint64_t mqtt_reconnects;
        const char *const *recent; /* audit records (JSON texts), oldest first */
        unsigned n_recent;
};

/*
 * The /status document: the info above, and every deployment with its
 * versions (instances, request and error totals, p50/p95/p99 over the
 * recent latency window) and instances (version, breaker state and since,
 * health, readiness, seconds since last seen, window request/error/slow
 * counts), and the recent decisions.
 */
int fm_audit_status(struct fm_buf *b, const struct fm_fleet *f, const struct fm_status_info *info,
                    fm_ms now);
