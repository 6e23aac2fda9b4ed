/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <math.h>
#include <string.h>

#include "tune.h"

static const char *const objective_names[_FM_TUNE_OBJECTIVE_MAX] = {
        [FM_TUNE_F1] = "f1",
        [FM_TUNE_PRECISION_AT_RECALL] = "precision_at_recall",
        [FM_TUNE_COST] = "cost",
};

static const char *const reason_names[_FM_TUNE_REASON_MAX] = {
        [FM_TUNE_CHANGE] = "change",
        [FM_TUNE_NOT_ENOUGH_POSITIVES] = "not_enough_positives",
        [FM_TUNE_NOT_ENOUGH_NEGATIVES] = "not_enough_negatives",
        [FM_TUNE_NO_REACHABLE_POINT] = "no_reachable_point",
        [FM_TUNE_NO_VALID_POINT] = "no_valid_point",
        [FM_TUNE_ALREADY_BEST] = "already_best",
        [FM_TUNE_GAIN_BELOW_MINIMUM] = "gain_below_minimum",
};

const char *fm_tune_objective_name(enum fm_tune_objective o)
{
        return (unsigned)o < _FM_TUNE_OBJECTIVE_MAX ? objective_names[o] : NULL;
}

const char *fm_tune_reason_name(enum fm_tune_reason r)
{
        return (unsigned)r < _FM_TUNE_REASON_MAX ? reason_names[r] : NULL;
}

void fm_tune_config_default(struct fm_tune_config *cfg)
{
        *cfg = (struct fm_tune_config){
                .grid = {FM_TUNE_DEFAULT_LO, FM_TUNE_DEFAULT_HI, FM_TUNE_DEFAULT_STEP},
                .objective =
                        {
                                .kind = FM_TUNE_F1,
                                .min_recall = FM_TUNE_DEFAULT_MIN_RECALL,
                                .c_fp = FM_TUNE_DEFAULT_C_FP,
                                .c_fn = FM_TUNE_DEFAULT_C_FN,
                        },
                .min_positives = FM_TUNE_DEFAULT_MIN_POSITIVES,
                .min_negatives = FM_TUNE_DEFAULT_MIN_NEGATIVES,
                .min_gain = FM_TUNE_DEFAULT_MIN_GAIN,
                .max_step = FM_TUNE_DEFAULT_MAX_STEP,
        };
}

int fm_tune_grid_count(const struct fm_tune_grid *g, size_t *ret_n)
{
        double q;

        if (!g || !ret_n)
                return -EINVAL;
        if (!isfinite(g->lo) || !isfinite(g->hi) || !isfinite(g->step))
                return -EINVAL;
        if (!(g->lo >= 0.0 && g->lo <= g->hi && g->hi <= 1.0 && g->step >= FM_TUNE_MIN_STEP))
                return -EINVAL;

        /* hi - lo <= 1 and step >= 1e-6, so q is finite and below 2^53 */
        q = (g->hi - g->lo + FM_TUNE_EPS) / g->step;
        if (q >= FM_TUNE_MAX_POINTS)
                return -ERANGE;
        *ret_n = (size_t)floor(q) + 1;
        return 0;
}

double fm_tune_grid_point(const struct fm_tune_grid *g, size_t k)
{
        double p = g->lo + (double)k * g->step;

        /*
         * Only the last point can come this close to hi (step >= 1e-6), and
         * it may overshoot hi by about FM_TUNE_EPS (fm_tune_grid_count()).
         */
        if (p >= g->hi - FM_TUNE_EPS)
                return g->hi;
        /*
         * p < 1, so p * 1e9 is far below 2^53: the rounded integer is exact,
         * and dividing it by 1e9 (also exact) is one correctly rounded
         * operation, which gives the double nearest to the decimal with
         * nine places.
         */
        return round(p * 1e9) / 1e9;
}

static int objective_validate(const struct fm_tune_objective_params *obj)
{
        if (!obj)
                return -EINVAL;
        switch (obj->kind) {
        case FM_TUNE_F1:
                return 0;
        case FM_TUNE_PRECISION_AT_RECALL:
                return isfinite(obj->min_recall) && obj->min_recall >= 0.0 && obj->min_recall <= 1.0
                               ? 0
                               : -EINVAL;
        case FM_TUNE_COST:
                /* the sum finite keeps every per-outcome cost (at most c_fp + c_fn) finite */
                return isfinite(obj->c_fp) && isfinite(obj->c_fn) && obj->c_fp >= 0.0 &&
                                       obj->c_fn >= 0.0 && isfinite(obj->c_fp + obj->c_fn)
                               ? 0
                               : -EINVAL;
        default:
                return -EINVAL;
        }
}

int fm_tune_config_validate(const struct fm_tune_config *cfg)
{
        size_t k;
        int r;

        if (!cfg)
                return -EINVAL;
        r = fm_tune_grid_count(&cfg->grid, &k);
        if (r < 0)
                return r;
        r = objective_validate(&cfg->objective);
        if (r < 0)
                return r;
        if (!isfinite(cfg->min_gain) || cfg->min_gain < 0.0)
                return -EINVAL;
        if (!isfinite(cfg->max_step) || !(cfg->max_step > 0.0))
                return -EINVAL;
        return 0;
}

/* Fills *m from the four counts at threshold t. */
static void score(const struct fm_tune_objective_params *obj, double t, uint64_t tp, uint64_t fp,
                  uint64_t tn, uint64_t fn, struct fm_tune_metrics *m)
{
        uint64_t n = tp + fp + tn + fn;
        double p, r;

        p = tp + fp > 0 ? (double)tp / (double)(tp + fp) : 0.0;
        r = tp + fn > 0 ? (double)tp / (double)(tp + fn) : 0.0;

        *m = (struct fm_tune_metrics){
                .threshold = t,
                .tp = tp,
                .fp = fp,
                .tn = tn,
                .fn = fn,
                .precision = p,
                .recall = r,
                .f1 = p + r > 0.0 ? 2.0 * p * r / (p + r) : 0.0,
                .valid = true,
        };

        switch (obj->kind) {
        case FM_TUNE_PRECISION_AT_RECALL:
                m->valid = r >= obj->min_recall;
                m->objective = m->valid ? p : -INFINITY;
                break;
        case FM_TUNE_COST:
                /* fractions first: each is <= 1, so the cost stays <= c_fp + c_fn */
                m->cost = n > 0 ? obj->c_fp * ((double)fp / (double)n) +
                                          obj->c_fn * ((double)fn / (double)n)
                                : 0.0;
                m->objective = m->cost;
                break;
        default:
                m->objective = m->f1;
                break;
        }
}

/* The objective oriented so that larger is better; -inf for an invalid point. */
static double utility(const struct fm_tune_objective_params *obj, const struct fm_tune_metrics *m)
{
        return obj->kind == FM_TUNE_COST ? -m->cost : m->objective;
}

/*
 * The counting pass. Cell c of a label counts the scores s with exactly c
 * grid points <= s (0 <= c <= K): s below the first point is in cell 0, s
 * at or above the last in cell K. Then s >= point[k] exactly when its
 * cell is > k, and the sweep needs nothing else.
 *
 * The cell is estimated as floor((s - point[0]) / step) + 1 with one
 * multiply, then corrected by comparing s with the stored points: the
 * points are rounded (fm_tune_grid_point()) and the product is inexact,
 * so the estimate can be one off, but the comparisons make the cell exact
 * and use the same `s >= point` as a direct count. Scores outside [0, 1]
 * land in the end cells by the same rule.
 *
 * The same pass also counts, per label, the scores >= extra (the current
 * threshold of fm_tune_decide(), which need not be on the grid; +inf when
 * not wanted), so the current threshold is evaluated exactly at no extra
 * pass. Returns 0 or -EINVAL for a bad outcome.
 */
static int count_cells(const struct fm_outcome *o, size_t n, const double *point, size_t k_points,
                       double step, double extra, uint64_t (*cell)[FM_TUNE_MAX_POINTS + 1],
                       uint64_t ret_extra[2])
{
        const double inv = 1.0 / step, first = point[0], top = (double)k_points;
        uint64_t hit[2] = {0, 0};

        memset(cell[0], 0, (k_points + 1) * sizeof(cell[0][0]));
        memset(cell[1], 0, (k_points + 1) * sizeof(cell[1][0]));

        for (size_t i = 0; i < n; i++) {
                const double s = o[i].score;
                const unsigned label = o[i].label;
                double e;
                size_t c;

                if (_unlikely_(!isfinite(s) || label > 1))
                        return -EINVAL;

                e = (s - first) * inv;
                if (e < 0.0)
                        c = 0;
                else if (e >= top)
                        c = k_points;
                else
                        c = (size_t)e + 1;
                while (c > 0 && s < point[c - 1])
                        c--;
                while (c < k_points && s >= point[c])
                        c++;

                cell[label][c]++;
                hit[label] += s >= extra;
        }

        ret_extra[0] = hit[0];
        ret_extra[1] = hit[1];
        return 0;
}

/* Validates and fills scratch->point; returns K or a negative errno. */
static int prepare(const struct fm_outcome *outcomes, size_t n, const struct fm_tune_grid *grid,
                   const struct fm_tune_objective_params *obj, struct fm_tune_scratch *scratch,
                   size_t *ret_k)
{
        size_t k_points;
        int r;

        if (!grid || !scratch || (n > 0 && !outcomes))
                return -EINVAL;
        r = fm_tune_grid_count(grid, &k_points);
        if (r < 0)
                return r;
        r = objective_validate(obj);
        if (r < 0)
                return r;
        for (size_t k = 0; k < k_points; k++)
                scratch->point[k] = fm_tune_grid_point(grid, k);
        *ret_k = k_points;
        return 0;
}

int fm_tune_evaluate_grid(const struct fm_outcome *outcomes, size_t n,
                          const struct fm_tune_grid *grid,
                          const struct fm_tune_objective_params *obj,
                          struct fm_tune_scratch *scratch, struct fm_tune_metrics *ret_metrics,
                          size_t n_metrics)
{
        uint64_t extra[2], pos = 0, neg = 0, tp = 0, fp = 0;
        size_t k_points;
        int r;

        if (!ret_metrics)
                return -EINVAL;
        r = prepare(outcomes, n, grid, obj, scratch, &k_points);
        if (r < 0)
                return r;
        if (n_metrics < k_points)
                return -ENOBUFS;
        r = count_cells(outcomes, n, scratch->point, k_points, grid->step, INFINITY, scratch->cell,
                        extra);
        if (r < 0)
                return r;

        for (size_t c = 0; c <= k_points; c++) {
                neg += scratch->cell[0][c];
                pos += scratch->cell[1][c];
        }
        /* from the top: at point k the predicted positives are cells k+1 .. K */
        for (size_t k = k_points; k-- > 0;) {
                tp += scratch->cell[1][k + 1];
                fp += scratch->cell[0][k + 1];
                score(obj, scratch->point[k], tp, fp, neg - fp, pos - tp, &ret_metrics[k]);
        }
        return (int)k_points;
}

int fm_tune_evaluate_threshold(const struct fm_outcome *outcomes, size_t n, double threshold,
                               const struct fm_tune_objective_params *obj,
                               struct fm_tune_metrics *ret)
{
        uint64_t pos = 0, neg = 0, tp = 0, fp = 0;
        int r;

        if (!ret || (n > 0 && !outcomes) || !isfinite(threshold))
                return -EINVAL;
        r = objective_validate(obj);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                const double s = outcomes[i].score;
                if (!isfinite(s) || outcomes[i].label > 1)
                        return -EINVAL;
                if (outcomes[i].label) {
                        pos++;
                        tp += s >= threshold;
                } else {
                        neg++;
                        fp += s >= threshold;
                }
        }
        score(obj, threshold, tp, fp, neg - fp, pos - tp, ret);
        return 0;
}

/*
 * Is candidate (utility u, distance d from the current threshold,
 * threshold t) better than the best so far? Larger utility, then nearer
 * to the current threshold (the smallest change that achieves it), then
 * the lower threshold, so the choice does not depend on the sweep order.
 */
static bool better(double u, double d, double t, double bu, double bd, double bt)
{
        if (u != bu)
                return u > bu;
        if (d != bd)
                return d < bd;
        return t < bt;
}

int fm_tune_decide(const struct fm_tune_config *cfg, const struct fm_outcome *outcomes, size_t n,
                   double current_threshold, struct fm_tune_scratch *scratch,
                   struct fm_tune_decision *ret)
{
        const double cur = current_threshold;
        struct fm_tune_decision d = {0};
        struct fm_tune_metrics m, best = {0};
        double best_u = -INFINITY, best_d = INFINITY, reach;
        uint64_t extra[2], pos = 0, neg = 0, tp = 0, fp = 0;
        size_t k_points, n_valid = 0;
        int r;

        if (!cfg || !ret)
                return -EINVAL;
        r = fm_tune_config_validate(cfg);
        if (r < 0)
                return r;
        if (!isfinite(cur) || cur < 0.0 || cur > 1.0)
                return -EINVAL;
        r = prepare(outcomes, n, &cfg->grid, &cfg->objective, scratch, &k_points);
        if (r < 0)
                return r;
        r = count_cells(outcomes, n, scratch->point, k_points, cfg->grid.step, cur, scratch->cell,
                        extra);
        if (r < 0)
                return r;

        for (size_t c = 0; c <= k_points; c++) {
                neg += scratch->cell[0][c];
                pos += scratch->cell[1][c];
        }
        d.positives = pos;
        d.negatives = neg;
        score(&cfg->objective, cur, extra[1], extra[0], neg - extra[0], pos - extra[1], &d.current);

        /*
         * The sweep of fm_tune_evaluate_grid(), keeping only the best
         * reachable valid point: O(K) with no metrics array.
         */
        reach = cfg->max_step + FM_TUNE_EPS;
        for (size_t k = k_points; k-- > 0;) {
                const double t = scratch->point[k], dist = fabs(t - cur);
                double u;

                tp += scratch->cell[1][k + 1];
                fp += scratch->cell[0][k + 1];
                if (!(dist <= reach))
                        continue;
                d.n_reachable++;
                score(&cfg->objective, t, tp, fp, neg - fp, pos - tp, &m);
                if (!m.valid)
                        continue;
                u = utility(&cfg->objective, &m);
                if (n_valid++ == 0 || better(u, dist, t, best_u, best_d, best.threshold)) {
                        best = m;
                        best_u = u;
                        best_d = dist;
                }
        }

        if (n_valid > 0) {
                const double cur_u = utility(&cfg->objective, &d.current);

                d.threshold = best.threshold;
                d.proposed = best;
                if (!(best_u > cur_u))
                        d.gain = 0.0;
                else if (cur_u == 0.0 || isinf(cur_u))
                        d.gain = INFINITY;
                else
                        d.gain = (best_u - cur_u) / fabs(cur_u);
        } else {
                d.threshold = cur;
                d.proposed = d.current;
                d.gain = 0.0;
        }

        if (pos < cfg->min_positives)
                d.reason = FM_TUNE_NOT_ENOUGH_POSITIVES;
        else if (neg < cfg->min_negatives)
                d.reason = FM_TUNE_NOT_ENOUGH_NEGATIVES;
        else if (d.n_reachable == 0)
                d.reason = FM_TUNE_NO_REACHABLE_POINT;
        else if (n_valid == 0)
                d.reason = FM_TUNE_NO_VALID_POINT;
        else if (!(best_u > utility(&cfg->objective, &d.current)))
                d.reason = FM_TUNE_ALREADY_BEST;
        else if (d.gain < cfg->min_gain)
                d.reason = FM_TUNE_GAIN_BELOW_MINIMUM;
        else
                d.reason = FM_TUNE_CHANGE;
        d.change = d.reason == FM_TUNE_CHANGE;

        *ret = d;
        return 0;
}

static void add_finite(struct fm_evidence *e, const char *key, double v)
{
        if (isfinite(v))
                fm_evidence_add(e, key, v);
}

void fm_tune_evidence(const struct fm_tune_decision *d, struct fm_evidence *e)
{
        add_finite(e, "positives", (double)d->positives);
        add_finite(e, "negatives", (double)d->negatives);
        add_finite(e, "threshold_current", d->current.threshold);
        add_finite(e, "threshold_proposed", d->threshold);
        add_finite(e, "objective_current", d->current.objective);
        add_finite(e, "objective_proposed", d->proposed.objective);
        add_finite(e, "gain", d->gain);
        add_finite(e, "tp_current", (double)d->current.tp);
        add_finite(e, "fp_current", (double)d->current.fp);
        add_finite(e, "tp_proposed", (double)d->proposed.tp);
        add_finite(e, "fp_proposed", (double)d->proposed.fp);
}
