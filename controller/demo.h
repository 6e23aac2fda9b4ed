/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdio.h>

/*
 * The built-in demonstration: ten simulated minutes of events for two
 * deployments, published as JSON payloads through the real decoder, fleet
 * state, breaker and reconcile, with the decisions printed to out as they
 * happen. Returns 0 or a negative errno.
 */
int fm_demo_run(FILE *out);
