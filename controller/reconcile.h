/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * One reconcile tick: advance the fleet to now (forget the silent, roll the
 * windows, step every breaker), then run each policy over each deployment,
 * in order of first appearance. The plan receives the transitions and the
 * intents. Level-triggered and deterministic: the same events applied and
 * the same sequence of now values give the same plan, byte for byte,
 * whatever the hash key of the maps.
 */

#include <stddef.h>

#include "fleet.h"
#include "intent.h"
#include "policy.h"
#include "util.h"

/*
 * Runs one tick. The plan is reset first. Returns 0, or the first negative
 * errno a policy returned (every policy still ran on every deployment), or
 * -ENOBUFS when the plan overflowed (see its dropped counters).
 */
int fm_reconcile(struct fm_fleet *f, const struct fm_policy *policies, size_t n_policies, fm_ms now,
                 struct fm_plan *plan);
