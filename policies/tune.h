/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Decision-threshold tuning: a grid search of a model's threshold on the
 * labelled outcomes of a window, and the rules that turn its result into a
 * proposal the auto-tune policy can act on.
 *
 * A prediction is positive when score >= threshold. For every point t_k of
 * a grid (default 0.50 to 0.90 by 0.05) the search counts TP, FP, TN and FN
 * and scores one objective:
 *
 *   precision  = TP / (TP + FP), 0 when nothing is predicted positive
 *   recall     = TP / (TP + FN), 0 when there are no positives
 *   F1         = 2 P R / (P + R), 0 when P + R == 0            (default)
 *   precision at a minimum recall = precision if recall >= min_recall,
 *                -inf otherwise (the point is invalid)
 *   cost       = (c_fp FP + c_fn FN) / n, per outcome, 0 when n == 0;
 *                lower is better
 *
 * Complexity. The issue asks for "sort once and sweep", O(N log N + K).
 * Only the rank of each score among the K grid points matters, and the
 * grid is known before the data, so the search drops the sort: one pass
 * drops each score into one of K + 1 cells (cell c holds the scores with
 * exactly c grid points <= score; the cell comes from one multiply and is
 * checked against the stored points, so it is exact), and one sweep from
 * the top cell down accumulates TP and FP for every point. O(N + K) time,
 * O(K) memory in a caller-provided struct fm_tune_scratch, no allocation,
 * and the counts equal those of counting every point directly (O(N K)),
 * which tests/unit/test_tune.c checks on random data.
 *
 * Pure: no allocation, no clock, no I/O, no global state. Cooldown between
 * changes is not handled here: it needs the clock, which is the policy's.
 * The policy calls fm_tune_decide() only once its cooldown since the last
 * change has passed.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "event.h"
#include "evidence.h"
#include "util.h"

/*
 * Grid limits. FM_TUNE_MAX_POINTS allows 0 to 1 by 0.001. FM_TUNE_EPS is
 * the tolerance of grid arithmetic: hi belongs to the grid when it is
 * within FM_TUNE_EPS of a point, and a grid point within FM_TUNE_EPS of
 * the edge of the max_step range is inside it. FM_TUNE_MIN_STEP keeps
 * points far apart compared with that tolerance.
 */
#define FM_TUNE_MAX_POINTS 1001
#define FM_TUNE_EPS 1e-9
#define FM_TUNE_MIN_STEP 1e-6

/* Defaults of struct fm_tune_config (fm_tune_config_default()). */
#define FM_TUNE_DEFAULT_LO 0.50
#define FM_TUNE_DEFAULT_HI 0.90
#define FM_TUNE_DEFAULT_STEP 0.05
#define FM_TUNE_DEFAULT_MIN_RECALL 0.80
#define FM_TUNE_DEFAULT_C_FP 1.0
#define FM_TUNE_DEFAULT_C_FN 1.0
#define FM_TUNE_DEFAULT_MIN_POSITIVES 50
#define FM_TUNE_DEFAULT_MIN_NEGATIVES 50
#define FM_TUNE_DEFAULT_MIN_GAIN 0.05 /* 5 % relative */
#define FM_TUNE_DEFAULT_MAX_STEP 0.10 /* threshold units */

/*
 * Candidate thresholds lo, lo + step, ... up to hi. Valid when all three
 * are finite, 0 <= lo <= hi <= 1, FM_TUNE_MIN_STEP <= step, and there are
 * at most FM_TUNE_MAX_POINTS points.
 */
struct fm_tune_grid {
        double lo, hi, step;
};

enum fm_tune_objective {
        FM_TUNE_F1,                  /* "f1" */
        FM_TUNE_PRECISION_AT_RECALL, /* "precision_at_recall" */
        FM_TUNE_COST,                /* "cost" */
        _FM_TUNE_OBJECTIVE_MAX,
};

/* Stable lower-case name of an objective (above); NULL if out of range. */
const char *fm_tune_objective_name(enum fm_tune_objective o) _pure_;

/* What is optimised. Valid when kind is in range and every number used is finite. */
struct fm_tune_objective_params {
        enum fm_tune_objective kind;
        double min_recall; /* PRECISION_AT_RECALL: in [0, 1] */
        double c_fp, c_fn; /* COST: >= 0, per false positive / false negative */
};

/*
 * The decision rules around the search. The applied threshold moves at
 * most max_step from the current one, and stays inside the grid's
 * [lo, hi]: both are constraints of the search, not clamps applied to its
 * result. The proposal is the best grid point within
 * [current - max_step, current + max_step] (widened by FM_TUNE_EPS), so a
 * better point further away is never chosen, and nothing is proposed when
 * no grid point is that close (current outside the bounds by more than
 * max_step).
 */
struct fm_tune_config {
        struct fm_tune_grid grid;
        struct fm_tune_objective_params objective;
        uint64_t min_positives; /* outcomes labelled 1 needed to decide */
        uint64_t min_negatives; /* outcomes labelled 0 needed to decide */
        double min_gain;        /* >= 0: relative gain needed to change, see fm_tune_decide() */
        double max_step;        /* > 0: largest move of the threshold per change */
};

/* Fills *cfg with the FM_TUNE_DEFAULT_* values: F1 on 0.50..0.90 by 0.05. */
void fm_tune_config_default(struct fm_tune_config *cfg);

/* Returns 0 if cfg is valid, -EINVAL or -ERANGE as fm_tune_decide() would. */
int fm_tune_config_validate(const struct fm_tune_config *cfg);

/*
 * Validates a grid and returns its number of points in *ret_n (1 to
 * FM_TUNE_MAX_POINTS): floor((hi - lo + FM_TUNE_EPS) / step) + 1. Returns
 * 0, -EINVAL for a NULL, non-finite or out-of-order grid or a step below
 * FM_TUNE_MIN_STEP, -ERANGE for more than FM_TUNE_MAX_POINTS points.
 * *ret_n is written only on success.
 */
int fm_tune_grid_count(const struct fm_tune_grid *g, size_t *ret_n);

/*
 * Point k of a valid grid, k < its count: lo + k * step, computed from k
 * (no accumulated error) and rounded to the nearest multiple of
 * FM_TUNE_EPS, so that a grid written in decimals yields exactly the
 * thresholds its decimals name (0.1 + 2 * 0.1 gives 0.3, not
 * 0.30000000000000004) and a score written as 0.7 is positive at the
 * point 0.7. A point within FM_TUNE_EPS of hi is hi. These are the
 * thresholds every function here uses.
 */
double fm_tune_grid_point(const struct fm_tune_grid *g, size_t k) _pure_;

/* Counts and objective at one threshold. */
struct fm_tune_metrics {
        double threshold;
        uint64_t tp, fp, tn, fn;
        double precision, recall, f1; /* as defined above, for every objective */
        double cost;                  /* per outcome; 0 unless the objective is COST */
        /*
         * The objective in its own units: f1; precision or -INFINITY below
         * min_recall; cost (lower is better).
         */
        double objective;
        bool valid; /* false only for PRECISION_AT_RECALL below min_recall */
};

/*
 * Per-call working memory of the search, owned by the caller (about
 * 24 KiB: keep one in the policy's state and reuse it, or put it on a
 * stack that can take it). Its contents between calls mean nothing.
 */
struct fm_tune_scratch {
        double point[FM_TUNE_MAX_POINTS];
        uint64_t cell[2][FM_TUNE_MAX_POINTS + 1]; /* [label][cell] */
};

/*
 * Evaluates every point of the grid on the n outcomes (n may be 0;
 * outcomes may be NULL then). Each outcome needs a finite score (the
 * schema's are in [0, 1]; others are counted correctly too) and a label 0
 * or 1. O(n + K) time for K points, using *scratch.
 *
 * On success returns K and fills ret_metrics[0 .. K-1] in grid order;
 * ret_metrics is not written on failure. Returns -EINVAL for a NULL
 * argument, an invalid grid or objective, a non-finite score or a label
 * other than 0 or 1; -ERANGE for too many points; -ENOBUFS if
 * n_metrics < K.
 */
int fm_tune_evaluate_grid(const struct fm_outcome *outcomes, size_t n,
                          const struct fm_tune_grid *grid,
                          const struct fm_tune_objective_params *obj,
                          struct fm_tune_scratch *scratch, struct fm_tune_metrics *ret_metrics,
                          size_t n_metrics);

/*
 * Evaluates one threshold exactly, by counting: O(n). threshold must be
 * finite. Returns 0 and fills *ret, or -EINVAL as fm_tune_evaluate_grid().
 */
int fm_tune_evaluate_threshold(const struct fm_outcome *outcomes, size_t n, double threshold,
                               const struct fm_tune_objective_params *obj,
                               struct fm_tune_metrics *ret);

/*
 * Why a decision does or does not change the threshold. The names of
 * fm_tune_reason_name() are stable: metric labels and audit reasons.
 * Append new values at the end; never rename.
 */
enum fm_tune_reason {
        FM_TUNE_CHANGE,               /* "change": apply decision.threshold */
        FM_TUNE_NOT_ENOUGH_POSITIVES, /* "not_enough_positives": fewer than min_positives */
        FM_TUNE_NOT_ENOUGH_NEGATIVES, /* "not_enough_negatives": fewer than min_negatives */
        FM_TUNE_NO_REACHABLE_POINT,   /* "no_reachable_point": no grid point within max_step */
        FM_TUNE_NO_VALID_POINT,       /* "no_valid_point": none reachable meets min_recall */
        FM_TUNE_ALREADY_BEST,         /* "already_best": no reachable point beats the current */
        FM_TUNE_GAIN_BELOW_MINIMUM,   /* "gain_below_minimum": better, by less than min_gain */
        _FM_TUNE_REASON_MAX,
};

/* Stable lower-case name of a reason (above); NULL if out of range. */
const char *fm_tune_reason_name(enum fm_tune_reason r) _pure_;

struct fm_tune_decision {
        bool change; /* true exactly when reason is FM_TUNE_CHANGE */
        enum fm_tune_reason reason;
        double threshold; /* proposed; the current one when nothing is reachable/valid */
        uint64_t positives, negatives;   /* labels in the window */
        size_t n_reachable;              /* grid points within max_step of the current threshold */
        struct fm_tune_metrics current;  /* exactly at the current threshold, on or off the grid */
        struct fm_tune_metrics proposed; /* at the proposal (== current when nothing proposed) */
        /*
         * Relative gain of the proposal: (best - cur) / |cur| for F1 and
         * precision, (cur - best) / |cur| for cost (the relative
         * reduction). +INFINITY when the proposal is better and the
         * current objective is 0 or invalid (-inf); 0 when it is not
         * better.
         */
        double gain;
};

/*
 * Decides whether to move the threshold from current_threshold (finite,
 * in [0, 1]) given the window's outcomes. The proposal is the best grid
 * point reachable under max_step (see struct fm_tune_config); ties go to
 * the point closest to the current threshold, then to the lower one. The
 * rules, in order:
 *   positives < min_positives          -> not_enough_positives
 *   negatives < min_negatives          -> not_enough_negatives
 *   no grid point within max_step      -> no_reachable_point
 *   none of those valid (min_recall)   -> no_valid_point
 *   no reachable point strictly better than the current threshold
 *   (including: the best is the current) -> already_best
 *   gain < min_gain                    -> gain_below_minimum
 *   otherwise                          -> change
 * The proposal and both metrics are filled whatever the reason (the
 * evidence of what would be done), except that with no reachable or valid
 * point the proposal is the current threshold.
 *
 * O(n + K), using *scratch. Returns 0 and fills *ret; -EINVAL for a NULL
 * argument, an invalid configuration, a current threshold that is not
 * finite or outside [0, 1], or a bad outcome; -ERANGE for too many grid
 * points. *ret is written only on success. Cooldown is the caller's.
 */
int fm_tune_decide(const struct fm_tune_config *cfg, const struct fm_outcome *outcomes, size_t n,
                   double current_threshold, struct fm_tune_scratch *scratch,
                   struct fm_tune_decision *ret);

/*
 * Appends a decision's evidence to *e: positives, negatives,
 * threshold_current, threshold_proposed, objective_current,
 * objective_proposed, gain, tp_current, fp_current, tp_proposed,
 * fp_proposed (11 items). Values that are not finite (an invalid
 * objective, an infinite gain) are left out, as evidence must be
 * representable in JSON.
 */
void fm_tune_evidence(const struct fm_tune_decision *d, struct fm_evidence *e);
