/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Exponentially weighted moving average for gauges sampled at irregular
 * times: a sample taken dt after the previous one gets the weight
 * 1 - exp(-dt / tau), so the average forgets with time constant tau
 * whatever the sampling rate. The first sample sets the value. A sample
 * at or before the last one is blended with the smallest weight
 * (dt = 0 → weight 0 would ignore it; we give it 1 - exp(-1 ms / tau))
 * and does not move `last` back.
 *
 * Pure: no allocation, no I/O.
 */

#include <stdbool.h>

#include "util.h"

struct fm_ewma {
        double value;
        fm_ms last; /* time of the newest sample */
        bool valid; /* at least one sample */
};

/* Empties the average. */
void fm_ewma_reset(struct fm_ewma *e);

/*
 * Adds sample x taken at t; tau > 0 in ms (tau <= 0 means no memory: every
 * sample, late ones too, replaces the value). Non-finite x is ignored and
 * changes nothing, `last` included.
 */
void fm_ewma_update(struct fm_ewma *e, double x, fm_ms t, fm_ms tau);
