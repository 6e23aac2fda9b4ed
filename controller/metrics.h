/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Prometheus text exposition format (version 0.0.4) writers and a fixed-
 * bucket histogram. Shell code: it formats into a struct fm_buf and keeps
 * no state of its own beyond what the caller passes.
 *
 * Names follow the Prometheus conventions: base units, `_total` counters.
 * Label values are escaped (backslash, double quote, newline). Numbers are
 * written with enough digits to round-trip; +Inf, -Inf and NaN as Prometheus
 * spells them.
 *
 * The writers return 0, -EINVAL (invalid metric or label name, duplicate
 * label, NULL where a string is needed) or the fm_buf error (-ENOMEM,
 * -ENOBUFS). On failure the buffer is left exactly as it was: no half
 * line is ever written.
 */

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/*
 * Writes "# HELP name help\n# TYPE name type\n" (help escaped; NULL help
 * writes the TYPE line only). type: "counter", "gauge", "histogram"
 * ("summary" and "untyped" are accepted too).
 */
int fm_prom_family(struct fm_buf *b, const char *name, const char *type, const char *help);

/*
 * Writes one sample: name{k1="v1",k2="v2"} value\n. n_labels pairs come
 * from keys[] and values[] (values are escaped; keys must be valid label
 * names). n_labels 0 writes no braces.
 */
int fm_prom_sample(struct fm_buf *b, const char *name, size_t n_labels, const char *const *keys,
                   const char *const *values, double value);

#define FM_METRIC_HIST_MAX_BOUNDS 32

/* A cumulative-bucket histogram with fixed upper bounds (le), as Prometheus has it. */
struct fm_metric_hist {
        uint32_t n;                              /* number of finite bounds */
        double bound[FM_METRIC_HIST_MAX_BOUNDS]; /* ascending */
        uint64_t
                count[FM_METRIC_HIST_MAX_BOUNDS + 1]; /* per bucket, not cumulative; last is +Inf */
        double sum;
        uint64_t total;
};

/* Sets the bounds (ascending, finite, at most FM_METRIC_HIST_MAX_BOUNDS). Returns 0 or -EINVAL. */
int fm_metric_hist_init(struct fm_metric_hist *h, const double *bounds, uint32_t n);

/* Counts one observation: v <= bound[i] goes into bucket i; NaN into +Inf (sum turns NaN). */
void fm_metric_hist_observe(struct fm_metric_hist *h, double v);

/*
 * Writes the _bucket (cumulative, with le labels after the given labels),
 * _sum and _count samples of a histogram (no HELP/TYPE: call fm_prom_family
 * first). The given keys must not include "le".
 */
int fm_prom_hist(struct fm_buf *b, const char *name, size_t n_labels, const char *const *keys,
                 const char *const *values, const struct fm_metric_hist *h);
