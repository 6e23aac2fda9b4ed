/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The grid of `fleetmedic tune`: parameters NAME=LO:HI:STEP over dotted
 * configuration keys, their cartesian product enumerated in a fixed order
 * (the last parameter varies fastest), overrides written into a
 * configuration tree, and the objective.
 *
 * Pure: no I/O, no clock.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FM_TUNEGRID_PARAMS_MAX 8
#define FM_TUNEGRID_NAME_MAX 128
#define FM_TUNEGRID_GRID_MAX 10000 /* points in the product */
#define FM_TUNEGRID_DEFAULT_FALSE_ACTION_WEIGHT 10.0

struct fm_tunegrid_param {
        char name[FM_TUNEGRID_NAME_MAX + 1]; /* dotted key, e.g. breaker.failure_rate */
        double lo, hi, step;
        uint32_t n; /* values: lo + k step for k < n, the last <= hi */
};

struct fm_tunegrid {
        struct fm_tunegrid_param param[FM_TUNEGRID_PARAMS_MAX];
        uint32_t n_params;
        uint64_t points; /* product of the n */
};

/*
 * Parses "NAME=LO:HI:STEP" (finite numbers, LO <= HI, STEP > 0; NAME of
 * [a-z0-9_] segments joined by '.') and appends it to g. Returns 0, -EINVAL
 * (malformed; a name given twice), -E2BIG (more than FM_TUNEGRID_PARAMS_MAX
 * parameters, or a product over FM_TUNEGRID_GRID_MAX points).
 */
int fm_tunegrid_add(struct fm_tunegrid *g, const char *spec);

/* The value of parameter p at its index k (< n), rounded off float noise. */
double fm_tunegrid_value(const struct fm_tunegrid_param *p, uint32_t k) __attribute__((pure));

/* The values of point i (< points) into values[n_params]. */
void fm_tunegrid_point(const struct fm_tunegrid *g, uint64_t i, double *values);

/*
 * Sets the dotted key to value in the JSON object tree root, creating the
 * objects on the way. Whole numbers are set as integers (the schema has
 * integer keys). Returns 0, -EINVAL (a segment on the way is not an
 * object), -ENOMEM.
 */
struct json_object;
int fm_tunegrid_set(struct json_object *root, const char *dotted, double value);

/* slo_minutes_lost + weight x false_actions */
double fm_tunegrid_objective(double slo_minutes_lost, uint64_t false_actions, double weight);
