/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The simulator's HTML report: one self-contained HTML5 page rendered from a
 * run document (the JSON `fleetmedic sim --json` writes; its shape is the
 * contract with the engine). Inline CSS and inline SVG only: no script, no
 * external asset, no web font, so the page opens offline and in any viewer.
 *
 * What the page holds:
 *   - a header: scenario, description, seed, duration, step, controller
 *     on/off, the SLO;
 *   - a summary table (time to detect, time to mitigate, SLO minutes lost,
 *     error budget burnt, false actions, instance-hours, actions, requests,
 *     errors) with the baseline run and the difference beside it when the
 *     document carries a "baseline";
 *   - the expectations with pass/fail;
 *   - per deployment four charts: replicas and ready, p99 latency with the
 *     SLO as a dashed line, error rate with its SLO line, traffic weights per
 *     target. Faults are shaded spans and actions vertical markers (a number
 *     that points into the action table, details in a <title> tooltip). An
 *     action or fault is drawn on the charts of the deployment it names (for
 *     faults: the target up to its first '/'); one naming no charted
 *     deployment is drawn on every chart. With a baseline each chart is a
 *     pair of panels, run and baseline side by side, on the same axes;
 *   - the action table and the fault table.
 *
 * Nulls in a series are gaps in its line. A series longer than the chart's
 * point budget is down-sampled to the minimum and the maximum of each of a
 * fixed number of buckets, so a chart never holds more than
 * FM_REPORT_CHART_POINTS_MAX points whatever the run length. Every string
 * from the document is HTML-escaped. The output depends on the document
 * alone: numbers are printed with integer arithmetic (no locale, no %f), and
 * the same document gives the same bytes.
 */

#include <stdio.h>

struct json_object;

/* Most points drawn in one chart, all its series together. */
#define FM_REPORT_CHART_POINTS_MAX 1000u
/* Most deployments charted; the others are named in a note. */
#define FM_REPORT_DEPLOYMENTS_MAX 32u
/* Most weight targets drawn per deployment (in document order). */
#define FM_REPORT_TARGETS_MAX 8u
/* Most action markers per chart and rows in the action table. */
#define FM_REPORT_MARKERS_MAX 500u
#define FM_REPORT_ROWS_MAX 2000u
/* Most bytes of one document string shown; longer is cut at a UTF-8 boundary and marked. */
#define FM_REPORT_STRING_MAX 1024u
/* Most samples per series accepted; a longer "t_s" is -E2BIG. */
#define FM_REPORT_SAMPLES_MAX (4u * 1024u * 1024u)

/*
 * Write the HTML report of the run document `run` to `out`.
 *
 * `run` is borrowed and never modified. Required: `run` is an object with a
 * "series" object holding a "t_s" array of numbers and a "deployments" object
 * whose members are objects; the same holds for "baseline" when it is present
 * and not null. Everything else is optional and shown as "—" or left out when
 * missing; a metric array that is shorter than "t_s" ends early, a non-number
 * inside it is a gap.
 *
 * Returns 0; -EINVAL when a required part is missing or malformed (nothing
 * may have been written, or a partial page); -E2BIG when "t_s" holds more
 * than FM_REPORT_SAMPLES_MAX samples; -ENOMEM; -EIO when writing or flushing
 * `out` failed. Does not close `out`. Never logs.
 */
int fm_sim_report_html(const struct json_object *run, FILE *out);
