/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Human-readable lines for transitions and intents (shell code: it writes
 * to a FILE). Times print relative to `origin` when origin >= 0, as
 * seconds since the epoch otherwise.
 */

#include <stdio.h>

#include "evidence.h"
#include "fleet.h"
#include "intent.h"

/* "key=value key=value ..." with integers printed without a fraction. */
void fm_print_evidence(FILE *out, const struct fm_evidence *e);

/* One line: time, deployment/instance, from -> to, cause, evidence. */
void fm_print_transition(FILE *out, const struct fm_transition *t, fm_ms origin);

/* One line: time, action, target, policy, reason, key, evidence. */
void fm_print_intent(FILE *out, const struct fm_intent *it, fm_ms origin);
