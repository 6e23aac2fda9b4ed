/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Alerting: after the governor has given each intent its verdict, turn
 * what people must hear about into alert intents, grouped and deduplicated.
 *
 *   - a rollback (approved or dry-run): "rollback", critical;
 *   - an SLO burning too fast: per deployment, the requests and errors of
 *     its versions with instances over the SRE workbook's two paging pairs
 *     (1 h and 5 min above 14.4x, 6 h and 30 min above 6x, scaled to the
 *     SLO period): "slo_burn", critical for the fast pair, warning for the
 *     slow one, once the long window holds min_requests;
 *   - actions held back by a safety rule that means the controller could
 *     not do what it judged necessary — capacity_floor and rate_limit
 *     (warning), paused and maintenance (info): "actions_blocked". Cooldowns
 *     and conflicts are routine and are not alerted; the governor raises
 *     its own alerts for a blind controller and exhausted restarts.
 *
 * Grouping: one alert per deployment and kind per tick, whose summary
 * names the first few actions. Deduplication with hysteresis: once raised,
 * an alert of a (deployment, kind) stays active while its condition comes
 * back within resolve_after; only after a quiet resolve_after may it be
 * raised again. The rate limit is the governor's alert bucket: the caller
 * reviews the plan again after this step (only the new, pending alerts
 * are reviewed). Pure: no clock, no I/O.
 */

#include <stdint.h>

#include "fleet.h"
#include "intent.h"
#include "util.h"

#define FM_ALERTING_MAX_ACTIVE 512 /* (deployment, kind) pairs remembered */

struct fm_alerting_config {
        fm_ms resolve_after;       /* quiet time before an alert may fire again; default 10 min */
        double slo_target;         /* availability objective, (0, 1); default 0.999 */
        fm_ms slo_period;          /* 4.32 s .. 30 days; default 30 days */
        uint64_t slo_min_requests; /* in a pair's long window before it may fire; default 100 */
};

void fm_alerting_config_default(struct fm_alerting_config *cfg);

struct fm_alerting;

/* Returns 0, -EINVAL (resolve_after <= 0, SLO settings out of range), -ENOMEM. */
int fm_alerting_new(const struct fm_alerting_config *cfg, struct fm_alerting **ret);
struct fm_alerting *fm_alerting_free(struct fm_alerting *a);

/* A reload: keeps the active alerts. Returns 0 or -EINVAL (nothing changed). */
int fm_alerting_set_config(struct fm_alerting *a, const struct fm_alerting_config *cfg);

/*
 * Appends the tick's alerts (policy "alerting", verdict pending) to plan.
 * Returns the number appended, or -ENOBUFS when the plan was full (the
 * alert is tried again next tick: it was not marked raised).
 */
int fm_alerting_review(struct fm_alerting *a, const struct fm_fleet *f, struct fm_plan *plan,
                       fm_ms now);
