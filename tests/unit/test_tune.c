/* SPDX-License-Identifier: MIT */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "test_util.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tune.h"

#define EPS 1e-12

/* Seeded generator (splitmix64): the same data on every run. */
static uint64_t next_u64(uint64_t *s)
{
        uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
}

static double next_unit(uint64_t *s)
{
        return (double)(next_u64(s) >> 11) * 0x1.0p-53;
}

static size_t next_below(uint64_t *s, size_t n)
{
        return (size_t)(next_u64(s) % n);
}

/* A dataset built by hand: `count` outcomes with this score and label. */
struct data {
        size_t n;
        struct fm_outcome o[4096];
};

static void add(struct data *d, size_t count, double score, uint8_t label)
{
        for (size_t i = 0; i < count; i++) {
                assert_true(d->n < ARRAY_SIZE(d->o));
                d->o[d->n++] = (struct fm_outcome){score, label};
        }
}

/* The scratch is too large for cmocka's default stack comfort: allocate it. */
static struct fm_tune_scratch *new_scratch(void)
{
        struct fm_tune_scratch *s = malloc(sizeof(*s));
        assert_non_null(s);
        /* garbage, so that a missing reset shows */
        memset(s, 0x5a, sizeof(*s));
        return s;
}

static struct fm_tune_objective_params f1_obj(void)
{
        return (struct fm_tune_objective_params){.kind = FM_TUNE_F1};
}

/* ---- the brute-force reference: count every point directly, O(N K) ---- */

struct counts {
        uint64_t tp, fp, tn, fn;
};

static struct counts ref_count(const struct fm_outcome *o, size_t n, double t)
{
        struct counts c = {0};

        for (size_t i = 0; i < n; i++) {
                bool predicted = o[i].score >= t;
                if (o[i].label && predicted)
                        c.tp++;
                else if (o[i].label)
                        c.fn++;
                else if (predicted)
                        c.fp++;
                else
                        c.tn++;
        }
        return c;
}

/* The objective straight from the definitions; larger-is-better in *ret_u. */
static double ref_objective(const struct fm_tune_objective_params *obj, struct counts c,
                            double *ret_u, bool *ret_valid)
{
        double n = (double)(c.tp + c.fp + c.tn + c.fn);
        double p = c.tp + c.fp ? (double)c.tp / (double)(c.tp + c.fp) : 0.0;
        double r = c.tp + c.fn ? (double)c.tp / (double)(c.tp + c.fn) : 0.0;
        double f1 = p + r > 0 ? 2 * p * r / (p + r) : 0.0, cost;

        *ret_valid = true;
        switch (obj->kind) {
        case FM_TUNE_F1:
                *ret_u = f1;
                return f1;
        case FM_TUNE_PRECISION_AT_RECALL:
                *ret_valid = r >= obj->min_recall;
                *ret_u = *ret_valid ? p : -INFINITY;
                return *ret_u;
        case FM_TUNE_COST:
                cost = n > 0 ? (obj->c_fp * (double)c.fp + obj->c_fn * (double)c.fn) / n : 0.0;
                *ret_u = -cost;
                return cost;
        default:
                fail();
                return 0;
        }
}

static void check_metrics(const struct fm_tune_metrics *m, const struct fm_outcome *o, size_t n,
                          double t, const struct fm_tune_objective_params *obj)
{
        struct counts c = ref_count(o, n, t);
        double u, want, p, r;
        bool valid;

        assert_true(m->threshold == t);
        assert_int_equal(m->tp, c.tp);
        assert_int_equal(m->fp, c.fp);
        assert_int_equal(m->tn, c.tn);
        assert_int_equal(m->fn, c.fn);
        want = ref_objective(obj, c, &u, &valid);
        assert_int_equal(m->valid, valid);
        assert_near(m->objective, want, EPS);
        p = c.tp + c.fp ? (double)c.tp / (double)(c.tp + c.fp) : 0.0;
        r = c.tp + c.fn ? (double)c.tp / (double)(c.tp + c.fn) : 0.0;
        assert_near(m->precision, p, EPS);
        assert_near(m->recall, r, EPS);
        assert_near(m->f1, p + r > 0 ? 2 * p * r / (p + r) : 0.0, EPS);
        if (obj->kind == FM_TUNE_COST)
                assert_near(m->cost, want, EPS);
}

/*
 * The decision rules of tune.h written out naively over the reference
 * counts, to compare fm_tune_decide() with on random data.
 */
static void ref_decide(const struct fm_tune_config *cfg, const struct fm_outcome *o, size_t n,
                       double cur, struct fm_tune_decision *ret)
{
        size_t k_points;
        uint64_t pos = 0, neg = 0;
        double cur_u, best_u = -INFINITY, best_d = INFINITY, best_t = NAN;
        size_t reachable = 0, valid_points = 0;
        bool valid;

        assert_int_equal(fm_tune_grid_count(&cfg->grid, &k_points), 0);
        for (size_t i = 0; i < n; i++)
                o[i].label ? pos++ : neg++;
        ref_objective(&cfg->objective, ref_count(o, n, cur), &cur_u, &valid);

        for (size_t k = 0; k < k_points; k++) {
                double t = fm_tune_grid_point(&cfg->grid, k), u, dist = fabs(t - cur);
                if (dist > cfg->max_step + FM_TUNE_EPS)
                        continue;
                reachable++;
                ref_objective(&cfg->objective, ref_count(o, n, t), &u, &valid);
                if (!valid)
                        continue;
                if (valid_points++ == 0 || u > best_u || (u == best_u && dist < best_d) ||
                    (u == best_u && dist == best_d && t < best_t)) {
                        best_u = u;
                        best_d = dist;
                        best_t = t;
                }
        }

        memset(ret, 0, sizeof(*ret));
        ret->positives = pos;
        ret->negatives = neg;
        ret->n_reachable = reachable;
        ret->threshold = valid_points ? best_t : cur;
        if (valid_points && best_u > cur_u)
                ret->gain =
                        (cur_u == 0 || isinf(cur_u)) ? INFINITY : (best_u - cur_u) / fabs(cur_u);
        if (pos < cfg->min_positives)
                ret->reason = FM_TUNE_NOT_ENOUGH_POSITIVES;
        else if (neg < cfg->min_negatives)
                ret->reason = FM_TUNE_NOT_ENOUGH_NEGATIVES;
        else if (!reachable)
                ret->reason = FM_TUNE_NO_REACHABLE_POINT;
        else if (!valid_points)
                ret->reason = FM_TUNE_NO_VALID_POINT;
        else if (!(best_u > cur_u))
                ret->reason = FM_TUNE_ALREADY_BEST;
        else if (ret->gain < cfg->min_gain)
                ret->reason = FM_TUNE_GAIN_BELOW_MINIMUM;
        else
                ret->reason = FM_TUNE_CHANGE;
        ret->change = ret->reason == FM_TUNE_CHANGE;
}

/* ---- random datasets ---- */

enum score_mode {
        SCORE_UNIFORM,   /* continuous in [0, 1) */
        SCORE_ON_GRID,   /* exactly grid points: every score a tie */
        SCORE_EDGES,     /* 0, 1, grid points and uniform mixed */
        SCORE_DECIMAL,   /* k / 100: the decimals a grid is written in */
        SCORE_NEAR_GRID, /* one ulp either side of a grid point, or on it */
        _SCORE_MODE_MAX,
};

enum label_mode {
        LABEL_HALF,
        LABEL_RARE, /* 10 % positive */
        LABEL_ALL_ONE,
        LABEL_ALL_ZERO,
        LABEL_BY_SCORE, /* positive with probability score: an informative model */
        _LABEL_MODE_MAX,
};

static void random_data(uint64_t *s, struct fm_outcome *o, size_t n, const struct fm_tune_grid *g,
                        enum score_mode sm, enum label_mode lm)
{
        size_t k_points;

        assert_int_equal(fm_tune_grid_count(g, &k_points), 0);
        for (size_t i = 0; i < n; i++) {
                double x = next_unit(s), pt = fm_tune_grid_point(g, next_below(s, k_points));
                switch (sm) {
                case SCORE_UNIFORM:
                        break;
                case SCORE_ON_GRID:
                        x = pt;
                        break;
                case SCORE_EDGES:
                        switch (next_below(s, 4)) {
                        case 0:
                                x = 0.0;
                                break;
                        case 1:
                                x = 1.0;
                                break;
                        case 2:
                                x = pt;
                                break;
                        default:
                                break;
                        }
                        break;
                case SCORE_DECIMAL:
                        x = (double)next_below(s, 101) / 100.0;
                        break;
                case SCORE_NEAR_GRID:
                        switch (next_below(s, 3)) {
                        case 0:
                                x = nextafter(pt, 0.0);
                                break;
                        case 1:
                                x = nextafter(pt, 2.0);
                                break;
                        default:
                                x = pt;
                                break;
                        }
                        break;
                default:
                        fail();
                }
                o[i].score = x;
                switch (lm) {
                case LABEL_HALF:
                        o[i].label = next_u64(s) & 1;
                        break;
                case LABEL_RARE:
                        o[i].label = next_unit(s) < 0.1;
                        break;
                case LABEL_ALL_ONE:
                        o[i].label = 1;
                        break;
                case LABEL_ALL_ZERO:
                        o[i].label = 0;
                        break;
                default:
                        o[i].label = next_unit(s) < x;
                        break;
                }
        }
}

static const struct fm_tune_grid random_grids[] = {
        {0.50, 0.90, 0.05},    /* the default: 9 points */
        {0.10, 0.90, 0.01},    /* the benchmark's: 81 points */
        {0.0, 1.0, 0.1},       /* ends at 0 and 1 */
        {0.0, 1.0, 0.001},     /* FM_TUNE_MAX_POINTS */
        {0.123, 0.97, 0.037},  /* hi off the grid, nothing decimal-aligned */
        {0.3, 0.3, 0.05},      /* one point */
        {0.25, 0.75, 0.0625},  /* binary fractions: exact arithmetic */
        {0.999, 1.0, 0.00025}, /* narrow, at the top */
};

static const size_t random_sizes[] = {0, 1, 2, 3, 7, 50, 400, 1500};

static struct fm_tune_objective_params random_obj(uint64_t *s, enum fm_tune_objective kind)
{
        struct fm_tune_objective_params obj = {.kind = kind};

        /* min_recall sometimes exactly 0 or 1, costs sometimes 0 */
        switch (next_below(s, 4)) {
        case 0:
                obj.min_recall = 0.0;
                break;
        case 1:
                obj.min_recall = 1.0;
                break;
        default:
                obj.min_recall = next_unit(s);
                break;
        }
        obj.c_fp = next_below(s, 5) == 0 ? 0.0 : 5 * next_unit(s);
        obj.c_fn = next_below(s, 5) == 0 ? 0.0 : 5 * next_unit(s);
        return obj;
}

static void test_grid_matches_brute_force(void **state)
{
        struct fm_tune_scratch *scratch = new_scratch();
        struct fm_tune_metrics *m = calloc(FM_TUNE_MAX_POINTS, sizeof(*m));
        struct fm_outcome *o = calloc(1500, sizeof(*o));
        uint64_t seed = 20240611;
        unsigned datasets = 0;

        (void)state;
        assert_non_null(m);
        assert_non_null(o);
        for (size_t gi = 0; gi < ARRAY_SIZE(random_grids); gi++) {
                const struct fm_tune_grid *g = &random_grids[gi];
                size_t k_points;

                assert_int_equal(fm_tune_grid_count(g, &k_points), 0);
                for (size_t ni = 0; ni < ARRAY_SIZE(random_sizes); ni++) {
                        size_t n = random_sizes[ni];
                        /* keep the O(N K) reference affordable under valgrind */
                        if (k_points > 100 && n > 400)
                                continue;
                        for (int sm = 0; sm < _SCORE_MODE_MAX; sm++) {
                                for (int lm = 0; lm < _LABEL_MODE_MAX; lm++) {
                                        random_data(&seed, o, n, g, sm, lm);
                                        datasets++;
                                        for (int kind = 0; kind < _FM_TUNE_OBJECTIVE_MAX; kind++) {
                                                struct fm_tune_objective_params obj =
                                                        random_obj(&seed, kind);
                                                int r = fm_tune_evaluate_grid(o, n, g, &obj,
                                                                              scratch, m, k_points);
                                                assert_int_equal(r, (int)k_points);
                                                for (size_t k = 0; k < k_points; k++)
                                                        check_metrics(&m[k], o, n,
                                                                      fm_tune_grid_point(g, k),
                                                                      &obj);
                                        }
                                }
                        }
                }
        }
        assert_true(datasets > 1000);
        free(o);
        free(m);
        free(scratch);
}

static void test_threshold_matches_brute_force(void **state)
{
        struct fm_outcome o[300];
        uint64_t seed = 7;

        (void)state;
        for (int round = 0; round < 200; round++) {
                size_t n = next_below(&seed, ARRAY_SIZE(o) + 1);
                struct fm_tune_objective_params obj = random_obj(&seed, round % 3);
                struct fm_tune_metrics m;
                double t;

                random_data(&seed, o, n, &random_grids[round % ARRAY_SIZE(random_grids)],
                            round % _SCORE_MODE_MAX, round % _LABEL_MODE_MAX);
                /* off the grid, on a score, and the extremes */
                switch (round % 4) {
                case 0:
                        t = next_unit(&seed);
                        break;
                case 1:
                        t = n ? o[next_below(&seed, n)].score : 0.5;
                        break;
                case 2:
                        t = 0.0;
                        break;
                default:
                        t = 1.0;
                        break;
                }
                assert_int_equal(fm_tune_evaluate_threshold(o, n, t, &obj, &m), 0);
                check_metrics(&m, o, n, t, &obj);
        }
}

static void test_decide_matches_reference(void **state)
{
        struct fm_tune_scratch *scratch = new_scratch();
        struct fm_outcome *o = calloc(1500, sizeof(*o));
        uint64_t seed = 99;
        unsigned seen[_FM_TUNE_REASON_MAX] = {0};

        (void)state;
        assert_non_null(o);
        for (int round = 0; round < 600; round++) {
                struct fm_tune_config cfg;
                struct fm_tune_decision got, want;
                size_t n = random_sizes[next_below(&seed, ARRAY_SIZE(random_sizes))], k_points;
                double cur;

                fm_tune_config_default(&cfg);
                cfg.grid = random_grids[next_below(&seed, ARRAY_SIZE(random_grids))];
                assert_int_equal(fm_tune_grid_count(&cfg.grid, &k_points), 0);
                if (k_points > 100 && n > 400)
                        n = 400;
                cfg.objective = random_obj(&seed, round % 3);
                cfg.min_positives = next_below(&seed, 60);
                cfg.min_negatives = next_below(&seed, 60);
                cfg.min_gain = next_below(&seed, 3) == 0 ? 0.0 : 0.2 * next_unit(&seed);
                cfg.max_step = 0.001 + 0.5 * next_unit(&seed);
                random_data(&seed, o, n, &cfg.grid, next_below(&seed, _SCORE_MODE_MAX),
                            next_below(&seed, _LABEL_MODE_MAX));
                /* on a grid point, or anywhere */
                if (next_u64(&seed) & 1)
                        cur = fm_tune_grid_point(&cfg.grid, next_below(&seed, k_points));
                else
                        cur = next_unit(&seed);

                assert_int_equal(fm_tune_decide(&cfg, o, n, cur, scratch, &got), 0);
                ref_decide(&cfg, o, n, cur, &want);

                assert_int_equal(got.reason, want.reason);
                assert_int_equal(got.change, want.change);
                assert_true(got.threshold == want.threshold);
                assert_int_equal(got.positives, want.positives);
                assert_int_equal(got.negatives, want.negatives);
                assert_int_equal(got.n_reachable, want.n_reachable);
                assert_near(got.gain, want.gain, 1e-9);
                check_metrics(&got.current, o, n, cur, &cfg.objective);
                check_metrics(&got.proposed, o, n, got.threshold, &cfg.objective);
                seen[got.reason]++;
        }
        /* every rule was exercised */
        for (int r = 0; r < _FM_TUNE_REASON_MAX; r++)
                if (seen[r] == 0)
                        fail_msg("reason %s never seen", fm_tune_reason_name(r));
        free(o);
        free(scratch);
}

/* ---- the grid ---- */

static void test_grid_points(void **state)
{
        struct fm_tune_grid g = {0.50, 0.90, 0.05};
        size_t n = 0;

        (void)state;
        assert_int_equal(fm_tune_grid_count(&g, &n), 0);
        assert_int_equal(n, 9);
        /* the decimals the grid names, exactly: 0.50, 0.55, ..., 0.90 */
        for (size_t k = 0; k < n; k++)
                assert_true(fm_tune_grid_point(&g, k) == (double)(50 + 5 * k) / 100.0);

        g = (struct fm_tune_grid){0.10, 0.90, 0.01};
        assert_int_equal(fm_tune_grid_count(&g, &n), 0);
        assert_int_equal(n, 81);
        for (size_t k = 0; k < n; k++)
                assert_true(fm_tune_grid_point(&g, k) == (double)(10 + k) / 100.0);

        /* 0.1 + 2 * 0.1 is 0.30000000000000004 in doubles; the grid says 0.3 */
        g = (struct fm_tune_grid){0.1, 0.3, 0.1};
        assert_int_equal(fm_tune_grid_count(&g, &n), 0);
        assert_int_equal(n, 3);
        assert_true(fm_tune_grid_point(&g, 2) == 0.3);

        /* the full range at the finest step: FM_TUNE_MAX_POINTS */
        g = (struct fm_tune_grid){0.0, 1.0, 0.001};
        assert_int_equal(fm_tune_grid_count(&g, &n), 0);
        assert_int_equal(n, FM_TUNE_MAX_POINTS);
        assert_true(fm_tune_grid_point(&g, 0) == 0.0);
        assert_true(fm_tune_grid_point(&g, 500) == 0.5);
        assert_true(fm_tune_grid_point(&g, 1000) == 1.0);

        /* lo == hi: one point */
        g = (struct fm_tune_grid){0.7, 0.7, 0.05};
        assert_int_equal(fm_tune_grid_count(&g, &n), 0);
        assert_int_equal(n, 1);
        assert_true(fm_tune_grid_point(&g, 0) == 0.7);

        /* hi off the grid: the last point is below it */
        g = (struct fm_tune_grid){0.50, 0.93, 0.05};
        assert_int_equal(fm_tune_grid_count(&g, &n), 0);
        assert_int_equal(n, 9);
        assert_true(fm_tune_grid_point(&g, 8) == 0.9);

        /* hi within 1e-9 of a point, either side: the point is hi */
        g = (struct fm_tune_grid){0.50, 0.90 + 5e-10, 0.05};
        assert_int_equal(fm_tune_grid_count(&g, &n), 0);
        assert_int_equal(n, 9);
        assert_true(fm_tune_grid_point(&g, 8) == g.hi);
        g = (struct fm_tune_grid){0.50, 0.90 - 5e-10, 0.05};
        assert_int_equal(fm_tune_grid_count(&g, &n), 0);
        assert_int_equal(n, 9);
        assert_true(fm_tune_grid_point(&g, 8) == g.hi);

        /* hi 1e-8 short of a point: that point is not on the grid */
        g = (struct fm_tune_grid){0.50, 0.90 - 1e-8, 0.05};
        assert_int_equal(fm_tune_grid_count(&g, &n), 0);
        assert_int_equal(n, 8);

        /* a step so large only lo fits */
        g = (struct fm_tune_grid){0.2, 0.9, 1.0};
        assert_int_equal(fm_tune_grid_count(&g, &n), 0);
        assert_int_equal(n, 1);

        /* points are strictly increasing and inside [lo, hi] on every test grid */
        for (size_t gi = 0; gi < ARRAY_SIZE(random_grids); gi++) {
                g = random_grids[gi];
                assert_int_equal(fm_tune_grid_count(&g, &n), 0);
                for (size_t k = 0; k < n; k++) {
                        double p = fm_tune_grid_point(&g, k);
                        assert_true(p >= g.lo - 5e-10 && p <= g.hi);
                        assert_near(p, g.lo + (double)k * g.step, 1e-9);
                        if (k > 0)
                                assert_true(p > fm_tune_grid_point(&g, k - 1));
                }
        }
}

static void test_grid_invalid(void **state)
{
        static const struct fm_tune_grid bad[] = {
                {NAN, 0.9, 0.05},       {0.5, NAN, 0.05},      {0.5, 0.9, NAN},
                {-INFINITY, 0.9, 0.05}, {0.5, INFINITY, 0.05}, {0.5, 0.9, INFINITY},
                {-0.01, 0.9, 0.05},     {0.5, 1.01, 0.05},     {0.9, 0.5, 0.05},
                {0.5, 0.9, 0.0},        {0.5, 0.9, -0.05},     {0.5, 0.9, 1e-7},
        };
        struct fm_tune_grid g;
        size_t n = 12345;

        (void)state;
        for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
                assert_int_equal(fm_tune_grid_count(&bad[i], &n), -EINVAL);
                assert_int_equal(n, 12345);
        }
        assert_int_equal(fm_tune_grid_count(NULL, &n), -EINVAL);
        g = (struct fm_tune_grid){0.5, 0.9, 0.05};
        assert_int_equal(fm_tune_grid_count(&g, NULL), -EINVAL);

        /* too many points: one more than 0..1 by 0.001, and the smallest step */
        g = (struct fm_tune_grid){0.0, 1.0, 0.000999};
        assert_int_equal(fm_tune_grid_count(&g, &n), -ERANGE);
        g = (struct fm_tune_grid){0.0, 1.0, FM_TUNE_MIN_STEP};
        assert_int_equal(fm_tune_grid_count(&g, &n), -ERANGE);
        assert_int_equal(n, 12345);

        /* the smallest step is fine on a range narrow enough */
        g = (struct fm_tune_grid){0.5, 0.5 + 1000 * FM_TUNE_MIN_STEP, FM_TUNE_MIN_STEP};
        assert_int_equal(fm_tune_grid_count(&g, &n), 0);
        assert_int_equal(n, 1001);
}

/* ---- hand-computed examples ---- */

static void test_hand_computed(void **state)
{
        struct fm_tune_scratch *scratch = new_scratch();
        struct fm_tune_grid g = {0.50, 0.90, 0.05};
        struct fm_tune_objective_params obj = f1_obj();
        struct fm_tune_metrics m[9];
        struct data *d = calloc(1, sizeof(*d));

        (void)state;
        assert_non_null(d);
        /*
         * Positives at 0.95, 0.8, 0.7 (exactly a grid point), 0.6 and 0.3;
         * negatives at 0.85, 0.65, 0.55, 0.4, 0.1 and 0.0.
         */
        add(d, 1, 0.95, 1);
        add(d, 1, 0.8, 1);
        add(d, 1, 0.7, 1);
        add(d, 1, 0.6, 1);
        add(d, 1, 0.3, 1);
        add(d, 1, 0.85, 0);
        add(d, 1, 0.65, 0);
        add(d, 1, 0.55, 0);
        add(d, 1, 0.4, 0);
        add(d, 1, 0.1, 0);
        add(d, 1, 0.0, 0);

        assert_int_equal(fm_tune_evaluate_grid(d->o, d->n, &g, &obj, scratch, m, 9), 9);
        /*
         * t = 0.50: predicted 0.95 0.8 0.7 0.6 | 0.85 0.65 0.55 -> TP 4 FP 3 FN 1 TN 3
         * P = 4/7, R = 4/5, F1 = 2 * 4 / (2 * 4 + 3 + 1) = 8/12
         */
        assert_true(m[0].threshold == 0.5);
        assert_int_equal(m[0].tp, 4);
        assert_int_equal(m[0].fp, 3);
        assert_int_equal(m[0].fn, 1);
        assert_int_equal(m[0].tn, 3);
        assert_near(m[0].precision, 4.0 / 7.0, EPS);
        assert_near(m[0].recall, 0.8, EPS);
        assert_near(m[0].objective, 8.0 / 12.0, EPS);
        /* t = 0.55: the negative at 0.55 is a tie, so still predicted positive */
        assert_int_equal(m[1].fp, 3);
        assert_int_equal(m[1].tp, 4);
        /* t = 0.60: TP 4 FP 2 -> F1 = 8 / (8 + 2 + 1) */
        assert_int_equal(m[2].fp, 2);
        assert_near(m[2].objective, 8.0 / 11.0, EPS);
        /* t = 0.70: the positive at 0.7 counts (score == threshold); TP 3 FP 1 FN 2 */
        assert_true(m[4].threshold == 0.7);
        assert_int_equal(m[4].tp, 3);
        assert_int_equal(m[4].fp, 1);
        assert_int_equal(m[4].fn, 2);
        assert_near(m[4].objective, 6.0 / 9.0, EPS);
        /* t = 0.75: TP 2 FP 1 FN 3 -> F1 = 4 / 8 */
        assert_near(m[5].objective, 0.5, EPS);
        /* t = 0.90: only 0.95: TP 1 FP 0 FN 4 -> P 1, R 0.2, F1 = 2 / 6 */
        assert_int_equal(m[8].tp, 1);
        assert_int_equal(m[8].fp, 0);
        assert_near(m[8].precision, 1.0, EPS);
        assert_near(m[8].objective, 2.0 / 6.0, EPS);

        /* precision at recall >= 0.6: t = 0.70 has R = 0.6, P = 0.75; t = 0.75 is invalid */
        obj = (struct fm_tune_objective_params){.kind = FM_TUNE_PRECISION_AT_RECALL,
                                                .min_recall = 0.6};
        assert_int_equal(fm_tune_evaluate_grid(d->o, d->n, &g, &obj, scratch, m, 9), 9);
        assert_true(m[4].valid);
        assert_near(m[4].objective, 0.75, EPS);
        assert_false(m[5].valid);
        assert_true(m[5].objective == -INFINITY);
        assert_true(m[0].valid);
        assert_near(m[0].objective, 4.0 / 7.0, EPS);

        /* cost, c_fp = 1, c_fn = 3, per outcome (11): t = 0.5 -> (3 + 3) / 11; 0.9 -> 12 / 11 */
        obj = (struct fm_tune_objective_params){.kind = FM_TUNE_COST, .c_fp = 1, .c_fn = 3};
        assert_int_equal(fm_tune_evaluate_grid(d->o, d->n, &g, &obj, scratch, m, 9), 9);
        assert_near(m[0].cost, 6.0 / 11.0, EPS);
        assert_near(m[0].objective, 6.0 / 11.0, EPS);
        assert_near(m[8].cost, 12.0 / 11.0, EPS);

        /* off the grid, exactly: at 0.62, TP 3 (0.95 0.8 0.7), FP 2 (0.85 0.65), FN 2 */
        obj = f1_obj();
        assert_int_equal(fm_tune_evaluate_threshold(d->o, d->n, 0.62, &obj, &m[0]), 0);
        assert_int_equal(m[0].tp, 3);
        assert_int_equal(m[0].fp, 2);
        assert_near(m[0].objective, 6.0 / 10.0, EPS);

        free(d);
        free(scratch);
}

static void test_empty_and_degenerate(void **state)
{
        struct fm_tune_scratch *scratch = new_scratch();
        struct fm_tune_grid g = {0.50, 0.90, 0.05};
        struct fm_tune_objective_params obj = {.kind = FM_TUNE_COST, .c_fp = 2, .c_fn = 1};
        struct fm_tune_metrics m[9];
        struct fm_outcome one = {0.5, 1};

        (void)state;
        /* no outcomes: all counts 0, precision/recall/F1 0, cost 0; NULL is fine */
        assert_int_equal(fm_tune_evaluate_grid(NULL, 0, &g, &obj, scratch, m, 9), 9);
        for (size_t k = 0; k < 9; k++) {
                assert_int_equal(m[k].tp + m[k].fp + m[k].tn + m[k].fn, 0);
                assert_true(m[k].precision == 0 && m[k].recall == 0 && m[k].f1 == 0);
                assert_true(m[k].cost == 0);
        }
        /* one positive exactly at lo: TP at 0.5 only */
        obj = f1_obj();
        assert_int_equal(fm_tune_evaluate_grid(&one, 1, &g, &obj, scratch, m, 9), 9);
        assert_int_equal(m[0].tp, 1);
        assert_near(m[0].objective, 1.0, EPS);
        assert_int_equal(m[1].tp, 0);
        assert_int_equal(m[1].fn, 1);
        assert_true(m[1].objective == 0.0);
        free(scratch);
}

static void test_evaluate_errors(void **state)
{
        struct fm_tune_scratch *scratch = new_scratch();
        struct fm_tune_grid g = {0.50, 0.90, 0.05};
        struct fm_tune_objective_params obj = f1_obj();
        struct fm_tune_metrics m[9], before[9], one;
        struct fm_outcome o[3] = {{0.2, 0}, {0.7, 1}, {0.9, 1}};

        (void)state;
        memset(m, 0x77, sizeof(m));
        memcpy(before, m, sizeof(m));

        assert_int_equal(fm_tune_evaluate_grid(o, 3, &g, &obj, scratch, m, 8), -ENOBUFS);
        assert_int_equal(fm_tune_evaluate_grid(NULL, 3, &g, &obj, scratch, m, 9), -EINVAL);
        assert_int_equal(fm_tune_evaluate_grid(o, 3, NULL, &obj, scratch, m, 9), -EINVAL);
        assert_int_equal(fm_tune_evaluate_grid(o, 3, &g, NULL, scratch, m, 9), -EINVAL);
        assert_int_equal(fm_tune_evaluate_grid(o, 3, &g, &obj, NULL, m, 9), -EINVAL);
        assert_int_equal(fm_tune_evaluate_grid(o, 3, &g, &obj, scratch, NULL, 9), -EINVAL);

        obj.kind = _FM_TUNE_OBJECTIVE_MAX;
        assert_int_equal(fm_tune_evaluate_grid(o, 3, &g, &obj, scratch, m, 9), -EINVAL);
        obj = (struct fm_tune_objective_params){.kind = FM_TUNE_PRECISION_AT_RECALL,
                                                .min_recall = 1.5};
        assert_int_equal(fm_tune_evaluate_grid(o, 3, &g, &obj, scratch, m, 9), -EINVAL);
        obj = (struct fm_tune_objective_params){.kind = FM_TUNE_COST, .c_fp = -1, .c_fn = 1};
        assert_int_equal(fm_tune_evaluate_grid(o, 3, &g, &obj, scratch, m, 9), -EINVAL);
        obj = (struct fm_tune_objective_params){.kind = FM_TUNE_COST, .c_fp = 1, .c_fn = NAN};
        assert_int_equal(fm_tune_evaluate_grid(o, 3, &g, &obj, scratch, m, 9), -EINVAL);
        obj = (struct fm_tune_objective_params){
                .kind = FM_TUNE_COST, .c_fp = DBL_MAX, .c_fn = DBL_MAX};
        assert_int_equal(fm_tune_evaluate_grid(o, 3, &g, &obj, scratch, m, 9), -EINVAL);

        /* bad outcomes, even the last one: nothing is written */
        obj = f1_obj();
        o[2].label = 2;
        assert_int_equal(fm_tune_evaluate_grid(o, 3, &g, &obj, scratch, m, 9), -EINVAL);
        assert_int_equal(fm_tune_evaluate_threshold(o, 3, 0.5, &obj, &one), -EINVAL);
        o[2] = (struct fm_outcome){NAN, 1};
        assert_int_equal(fm_tune_evaluate_grid(o, 3, &g, &obj, scratch, m, 9), -EINVAL);
        o[2].score = INFINITY;
        assert_int_equal(fm_tune_evaluate_grid(o, 3, &g, &obj, scratch, m, 9), -EINVAL);
        assert_memory_equal(m, before, sizeof(m));

        g.step = 0;
        assert_int_equal(fm_tune_evaluate_grid(o, 2, &g, &obj, scratch, m, 9), -EINVAL);
        g = (struct fm_tune_grid){0.0, 1.0, 0.0005};
        assert_int_equal(fm_tune_evaluate_grid(o, 2, &g, &obj, scratch, m, 9), -ERANGE);
        assert_memory_equal(m, before, sizeof(m));

        assert_int_equal(fm_tune_evaluate_threshold(o, 2, NAN, &obj, &one), -EINVAL);
        assert_int_equal(fm_tune_evaluate_threshold(o, 2, 0.5, NULL, &one), -EINVAL);
        assert_int_equal(fm_tune_evaluate_threshold(o, 2, 0.5, &obj, NULL), -EINVAL);

        /* scores outside [0, 1] are still counted by the rule score >= threshold */
        o[0] = (struct fm_outcome){-3.0, 0};
        o[1] = (struct fm_outcome){7.0, 0};
        g = (struct fm_tune_grid){0.50, 0.90, 0.05};
        assert_int_equal(fm_tune_evaluate_grid(o, 2, &g, &obj, scratch, m, 9), 9);
        assert_int_equal(m[0].fp, 1);
        assert_int_equal(m[8].fp, 1);
        assert_int_equal(m[8].tn, 1);
        free(scratch);
}

/* ---- decisions ---- */

/* Default config with small sample minimums, for hand-built windows. */
static struct fm_tune_config small_cfg(void)
{
        struct fm_tune_config cfg;

        fm_tune_config_default(&cfg);
        cfg.min_positives = 1;
        cfg.min_negatives = 1;
        return cfg;
}

static void test_decide_change(void **state)
{
        struct fm_tune_scratch *scratch = new_scratch();
        struct fm_tune_config cfg;
        struct fm_tune_decision dec;
        struct data *d = calloc(1, sizeof(*d));
        struct fm_evidence ev = {0};

        (void)state;
        assert_non_null(d);
        fm_tune_config_default(&cfg);
        /* 60 sure positives, 40 negatives just above 0.5, 100 clear negatives */
        add(d, 60, 0.95, 1);
        add(d, 40, 0.52, 0);
        add(d, 100, 0.1, 0);

        assert_int_equal(fm_tune_decide(&cfg, d->o, d->n, 0.5, scratch, &dec), 0);
        /*
         * F1 at 0.5: P = 0.6, R = 1 -> 0.75. Every point from 0.55 up has
         * F1 = 1; within max_step the nearest of them, 0.55, wins the tie.
         */
        assert_int_equal(dec.reason, FM_TUNE_CHANGE);
        assert_string_equal(fm_tune_reason_name(dec.reason), "change");
        assert_true(dec.change);
        assert_true(dec.threshold == 0.55);
        assert_int_equal(dec.positives, 60);
        assert_int_equal(dec.negatives, 140);
        assert_int_equal(dec.n_reachable, 3); /* 0.5, 0.55, 0.6 */
        assert_near(dec.current.objective, 0.75, EPS);
        assert_int_equal(dec.current.fp, 40);
        assert_near(dec.proposed.objective, 1.0, EPS);
        assert_int_equal(dec.proposed.fp, 0);
        assert_int_equal(dec.proposed.tp, 60);
        assert_near(dec.gain, (1.0 - 0.75) / 0.75, EPS);

        fm_tune_evidence(&dec, &ev);
        assert_int_equal(ev.n, 11);
        assert_string_equal(ev.item[0].key, "positives");
        assert_true(ev.item[0].value == 60);
        assert_string_equal(ev.item[3].key, "threshold_proposed");
        assert_true(ev.item[3].value == 0.55);
        assert_string_equal(ev.item[6].key, "gain");
        assert_string_equal(ev.item[10].key, "fp_proposed");

        /* now at 0.55 it is already the best */
        assert_int_equal(fm_tune_decide(&cfg, d->o, d->n, 0.55, scratch, &dec), 0);
        assert_int_equal(dec.reason, FM_TUNE_ALREADY_BEST);
        assert_false(dec.change);
        assert_true(dec.threshold == 0.55);
        assert_true(dec.gain == 0.0);

        /* off the grid at 0.57, tied with every reachable point: already best */
        assert_int_equal(fm_tune_decide(&cfg, d->o, d->n, 0.57, scratch, &dec), 0);
        assert_int_equal(dec.reason, FM_TUNE_ALREADY_BEST);
        assert_true(dec.threshold == 0.55); /* the nearest of the tied points */
        assert_near(dec.current.objective, 1.0, EPS);

        /* the current threshold off the grid is evaluated exactly: 0.51 sees the 0.52s */
        assert_int_equal(fm_tune_decide(&cfg, d->o, d->n, 0.51, scratch, &dec), 0);
        assert_int_equal(dec.current.fp, 40);
        assert_true(dec.current.threshold == 0.51);
        assert_int_equal(dec.reason, FM_TUNE_CHANGE);
        assert_true(dec.threshold == 0.55);

        /*
         * The last tie-break: on a binary grid, 0.53125 is exactly 0.03125
         * from 0.5 and from 0.5625, and with no score between 0.3 and 0.95
         * every reachable point is equal. The lower of the two is reported.
         */
        d->n = 0;
        add(d, 60, 0.95, 1);
        add(d, 10, 0.3, 1);
        add(d, 100, 0.1, 0);
        cfg.grid = (struct fm_tune_grid){0.25, 0.75, 0.0625};
        assert_int_equal(fm_tune_decide(&cfg, d->o, d->n, 0.53125, scratch, &dec), 0);
        assert_int_equal(dec.reason, FM_TUNE_ALREADY_BEST);
        assert_true(dec.threshold == 0.5);

        free(d);
        free(scratch);
}

/*
 * A window for the cost objective (c_fp = c_fn = 1): `a` negatives at
 * 0.52 are false positives at 0.5 only, `b` positives at 0.53 are false
 * negatives from 0.55 up; 100 clear positives and negatives make up the
 * rest. Moving from 0.5 to 0.55 cuts the errors from a to b: a relative
 * reduction of (a - b) / a.
 */
static void cost_window(struct data *d, size_t a, size_t b)
{
        d->n = 0;
        add(d, a, 0.52, 0);
        add(d, b, 0.53, 1);
        add(d, 100, 0.95, 1);
        add(d, 100, 0.05, 0);
}

static void test_decide_min_gain(void **state)
{
        struct fm_tune_scratch *scratch = new_scratch();
        struct fm_tune_config cfg = small_cfg();
        struct fm_tune_decision dec;
        struct data *d = calloc(1, sizeof(*d));
        double g;

        (void)state;
        assert_non_null(d);
        cfg.objective =
                (struct fm_tune_objective_params){.kind = FM_TUNE_COST, .c_fp = 1, .c_fn = 1};

        /* 21 -> 20 errors: 4.8 %, just below 5 % */
        cost_window(d, 21, 20);
        assert_int_equal(fm_tune_decide(&cfg, d->o, d->n, 0.5, scratch, &dec), 0);
        assert_int_equal(dec.reason, FM_TUNE_GAIN_BELOW_MINIMUM);
        assert_string_equal(fm_tune_reason_name(dec.reason), "gain_below_minimum");
        assert_false(dec.change);
        assert_near(dec.gain, 1.0 / 21.0, EPS);
        assert_true(dec.threshold == 0.55); /* still reported: the evidence */
        assert_near(dec.current.objective, 21.0 / 241.0, EPS);
        assert_near(dec.proposed.objective, 20.0 / 241.0, EPS);
        assert_int_equal(dec.current.fp, 21);
        assert_int_equal(dec.proposed.fn, 20);

        /* 19 -> 18 errors: 5.3 %, just above */
        cost_window(d, 19, 18);
        assert_int_equal(fm_tune_decide(&cfg, d->o, d->n, 0.5, scratch, &dec), 0);
        assert_int_equal(dec.reason, FM_TUNE_CHANGE);
        assert_near(dec.gain, 1.0 / 19.0, EPS);
        assert_true(dec.threshold == 0.55);

        /* 20 -> 19: 5 %; the rule is gain >= min_gain, so the exact boundary applies */
        cost_window(d, 20, 19);
        cfg.min_gain = 0;
        assert_int_equal(fm_tune_decide(&cfg, d->o, d->n, 0.5, scratch, &dec), 0);
        g = dec.gain;
        assert_near(g, 0.05, EPS);
        cfg.min_gain = g;
        assert_int_equal(fm_tune_decide(&cfg, d->o, d->n, 0.5, scratch, &dec), 0);
        assert_int_equal(dec.reason, FM_TUNE_CHANGE);
        cfg.min_gain = nextafter(g, INFINITY);
        assert_int_equal(fm_tune_decide(&cfg, d->o, d->n, 0.5, scratch, &dec), 0);
        assert_int_equal(dec.reason, FM_TUNE_GAIN_BELOW_MINIMUM);

        /* F1 from 0 (nothing predicted positive at 0.9): an infinite gain */
        d->n = 0;
        add(d, 10, 0.85, 1);
        add(d, 10, 0.1, 0);
        cfg = small_cfg();
        assert_int_equal(fm_tune_decide(&cfg, d->o, d->n, 0.9, scratch, &dec), 0);
        assert_true(dec.current.objective == 0.0);
        assert_true(isinf(dec.gain) && dec.gain > 0);
        assert_int_equal(dec.reason, FM_TUNE_CHANGE);
        assert_true(dec.threshold == 0.85);

        free(d);
        free(scratch);
}

static void test_decide_samples(void **state)
{
        struct fm_tune_scratch *scratch = new_scratch();
        struct fm_tune_config cfg;
        struct fm_tune_decision dec;
        struct data *d = calloc(1, sizeof(*d));

        (void)state;
        assert_non_null(d);
        fm_tune_config_default(&cfg);
        assert_int_equal(cfg.min_positives, 50);
        assert_int_equal(cfg.min_negatives, 50);

        /* 49 positives: one short */
        add(d, 49, 0.95, 1);
        add(d, 50, 0.52, 0);
        assert_int_equal(fm_tune_decide(&cfg, d->o, d->n, 0.5, scratch, &dec), 0);
        assert_int_equal(dec.reason, FM_TUNE_NOT_ENOUGH_POSITIVES);
        assert_string_equal(fm_tune_reason_name(dec.reason), "not_enough_positives");
        assert_false(dec.change);
        assert_int_equal(dec.positives, 49);
        /* the proposal is still evidence of what would be done */
        assert_true(dec.threshold == 0.55);

        /* exactly 50: enough */
        add(d, 1, 0.95, 1);
        assert_int_equal(fm_tune_decide(&cfg, d->o, d->n, 0.5, scratch, &dec), 0);
        assert_int_equal(dec.reason, FM_TUNE_CHANGE);

        /* 49 negatives */
        d->n = 0;
        add(d, 50, 0.95, 1);
        add(d, 49, 0.52, 0);
        assert_int_equal(fm_tune_decide(&cfg, d->o, d->n, 0.5, scratch, &dec), 0);
        assert_int_equal(dec.reason, FM_TUNE_NOT_ENOUGH_NEGATIVES);
        assert_string_equal(fm_tune_reason_name(dec.reason), "not_enough_negatives");
        assert_int_equal(dec.negatives, 49);
        add(d, 1, 0.52, 0);
        assert_int_equal(fm_tune_decide(&cfg, d->o, d->n, 0.5, scratch, &dec), 0);
        assert_int_equal(dec.reason, FM_TUNE_CHANGE);

        /* both short: positives are reported first; an empty window too */
        d->n = 0;
        add(d, 3, 0.95, 1);
        add(d, 3, 0.52, 0);
        assert_int_equal(fm_tune_decide(&cfg, d->o, d->n, 0.5, scratch, &dec), 0);
        assert_int_equal(dec.reason, FM_TUNE_NOT_ENOUGH_POSITIVES);
        assert_int_equal(fm_tune_decide(&cfg, NULL, 0, 0.5, scratch, &dec), 0);
        assert_int_equal(dec.reason, FM_TUNE_NOT_ENOUGH_POSITIVES);
        assert_int_equal(dec.positives + dec.negatives, 0);

        /* all one label with a zero minimum of the other */
        d->n = 0;
        add(d, 100, 0.95, 1);
        cfg.min_negatives = 0;
        assert_int_equal(fm_tune_decide(&cfg, d->o, d->n, 0.5, scratch, &dec), 0);
        assert_int_equal(dec.reason, FM_TUNE_ALREADY_BEST);
        free(d);
        free(scratch);
}

static void test_decide_max_step_and_bounds(void **state)
{
        struct fm_tune_scratch *scratch = new_scratch();
        struct fm_tune_config cfg = small_cfg();
        struct fm_tune_decision dec;
        struct fm_tune_metrics m[9];
        struct data *d = calloc(1, sizeof(*d));

        (void)state;
        assert_non_null(d);
        /*
         * Negatives spread up to 0.88, positives at 0.95: the global best is
         * 0.9 (F1 = 1); nearer points are better step by step.
         */
        add(d, 50, 0.95, 1);
        add(d, 10, 0.52, 0);
        add(d, 10, 0.57, 0);
        add(d, 10, 0.62, 0);
        add(d, 10, 0.67, 0);
        add(d, 10, 0.72, 0);
        add(d, 10, 0.77, 0);
        add(d, 10, 0.82, 0);
        add(d, 10, 0.88, 0);
        assert_int_equal(
                fm_tune_evaluate_grid(d->o, d->n, &cfg.grid, &cfg.objective, scratch, m, 9), 9);
        assert_near(m[8].objective, 1.0, EPS);
        for (size_t k = 0; k < 8; k++)
                assert_true(m[k].objective < m[k + 1].objective);

        /* from 0.5 with max_step 0.1: 0.6 at most, not 0.9 */
        assert_int_equal(fm_tune_decide(&cfg, d->o, d->n, 0.5, scratch, &dec), 0);
        assert_int_equal(dec.reason, FM_TUNE_CHANGE);
        assert_true(dec.threshold == 0.6);
        assert_int_equal(dec.n_reachable, 3);

        /* a larger step reaches further */
        cfg.max_step = 0.25;
        assert_int_equal(fm_tune_decide(&cfg, d->o, d->n, 0.5, scratch, &dec), 0);
        assert_true(dec.threshold == 0.75);
        cfg.max_step = 0.4;
        assert_int_equal(fm_tune_decide(&cfg, d->o, d->n, 0.5, scratch, &dec), 0);
        assert_true(dec.threshold == 0.9);
        /* just short of a point: 0.8 is 0.3 away, 0.3 - 1e-6 does not reach it */
        cfg.max_step = 0.3 - 1e-6;
        assert_int_equal(fm_tune_decide(&cfg, d->o, d->n, 0.5, scratch, &dec), 0);
        assert_true(dec.threshold == 0.75);

        /* the bounds: hi = 0.7 keeps the proposal at 0.7 whatever the step */
        cfg.max_step = 1.0;
        cfg.grid.hi = 0.7;
        assert_int_equal(fm_tune_decide(&cfg, d->o, d->n, 0.5, scratch, &dec), 0);
        assert_true(dec.threshold == 0.7);

        /* current below lo: only points within the step of it are candidates */
        cfg = small_cfg();
        assert_int_equal(fm_tune_decide(&cfg, d->o, d->n, 0.45, scratch, &dec), 0);
        assert_int_equal(dec.n_reachable, 2); /* 0.5, 0.55 */
        assert_true(dec.threshold == 0.55);

        /* current far outside the bounds: nothing reachable */
        assert_int_equal(fm_tune_decide(&cfg, d->o, d->n, 0.2, scratch, &dec), 0);
        assert_int_equal(dec.reason, FM_TUNE_NO_REACHABLE_POINT);
        assert_string_equal(fm_tune_reason_name(dec.reason), "no_reachable_point");
        assert_int_equal(dec.n_reachable, 0);
        assert_true(dec.threshold == 0.2);
        assert_true(dec.proposed.threshold == 0.2);
        assert_true(dec.gain == 0.0);

        /* above hi: only 0.9 is within 0.1 of 0.97 (0.85 is 0.12 away); F1 0 -> 1 */
        assert_int_equal(fm_tune_decide(&cfg, d->o, d->n, 0.97, scratch, &dec), 0);
        assert_int_equal(dec.n_reachable, 1);
        assert_int_equal(dec.reason, FM_TUNE_CHANGE);
        assert_true(dec.threshold == 0.9);

        free(d);
        free(scratch);
}

static void test_decide_precision_at_recall(void **state)
{
        struct fm_tune_scratch *scratch = new_scratch();
        struct fm_tune_config cfg = small_cfg();
        struct fm_tune_decision dec;
        struct data *d = calloc(1, sizeof(*d));
        struct fm_evidence ev = {0};

        (void)state;
        assert_non_null(d);
        cfg.objective = (struct fm_tune_objective_params){.kind = FM_TUNE_PRECISION_AT_RECALL,
                                                          .min_recall = 0.9};
        /* 10 positives: 9 at 0.8, 1 at 0.56; negatives at 0.52 (5) and 0.58 (5) */
        add(d, 9, 0.8, 1);
        add(d, 1, 0.56, 1);
        add(d, 5, 0.52, 0);
        add(d, 5, 0.58, 0);

        /*
         * At 0.5: R 1, P 10/20. At 0.55: R 1, P 10/15. At 0.6: R 0.9, P 1:
         * the best. From 0.5 with max_step 0.1 all three are reachable.
         */
        assert_int_equal(fm_tune_decide(&cfg, d->o, d->n, 0.5, scratch, &dec), 0);
        assert_int_equal(dec.reason, FM_TUNE_CHANGE);
        assert_true(dec.threshold == 0.6);
        assert_near(dec.proposed.objective, 1.0, EPS);
        assert_near(dec.current.objective, 0.5, EPS);
        assert_near(dec.gain, 1.0, EPS);

        /* from 0.9 (recall 0: invalid), nothing reachable meets recall 0.95 (0.8 has 0.9) */
        cfg.objective.min_recall = 0.95;
        assert_int_equal(fm_tune_decide(&cfg, d->o, d->n, 0.9, scratch, &dec), 0);
        assert_int_equal(dec.reason, FM_TUNE_NO_VALID_POINT);
        assert_string_equal(fm_tune_reason_name(dec.reason), "no_valid_point");
        assert_int_equal(dec.n_reachable, 3);
        assert_true(dec.threshold == 0.9);
        assert_false(dec.current.valid);

        /*
         * Back to recall 0.9: from 0.85 (recall 0: invalid) 0.75 and 0.8 are
         * valid with precision 1, and 0.8 is nearer: an infinite gain.
         */
        cfg.objective.min_recall = 0.9;
        assert_int_equal(fm_tune_decide(&cfg, d->o, d->n, 0.85, scratch, &dec), 0);
        assert_int_equal(dec.reason, FM_TUNE_CHANGE);
        assert_true(dec.threshold == 0.8);
        assert_true(dec.current.objective == -INFINITY);
        assert_true(isinf(dec.gain));

        /* the evidence leaves out what JSON cannot carry */
        fm_tune_evidence(&dec, &ev);
        assert_int_equal(ev.n, 9);
        for (uint32_t i = 0; i < ev.n; i++) {
                assert_true(isfinite(ev.item[i].value));
                assert_string_not_equal(ev.item[i].key, "gain");
                assert_string_not_equal(ev.item[i].key, "objective_current");
        }
        free(d);
        free(scratch);
}

static void test_decide_errors(void **state)
{
        struct fm_tune_scratch *scratch = new_scratch();
        struct fm_tune_config cfg = small_cfg(), bad;
        struct fm_tune_decision dec, before;
        struct fm_outcome o[2] = {{0.7, 1}, {0.2, 0}};

        (void)state;
        memset(&dec, 0x42, sizeof(dec));
        before = dec;

        assert_int_equal(fm_tune_config_validate(&cfg), 0);
        assert_int_equal(fm_tune_decide(NULL, o, 2, 0.5, scratch, &dec), -EINVAL);
        assert_int_equal(fm_tune_decide(&cfg, o, 2, 0.5, NULL, &dec), -EINVAL);
        assert_int_equal(fm_tune_decide(&cfg, o, 2, 0.5, scratch, NULL), -EINVAL);
        assert_int_equal(fm_tune_decide(&cfg, NULL, 2, 0.5, scratch, &dec), -EINVAL);
        assert_int_equal(fm_tune_decide(&cfg, o, 2, NAN, scratch, &dec), -EINVAL);
        assert_int_equal(fm_tune_decide(&cfg, o, 2, -0.01, scratch, &dec), -EINVAL);
        assert_int_equal(fm_tune_decide(&cfg, o, 2, 1.01, scratch, &dec), -EINVAL);

        bad = cfg;
        bad.max_step = 0;
        assert_int_equal(fm_tune_config_validate(&bad), -EINVAL);
        assert_int_equal(fm_tune_decide(&bad, o, 2, 0.5, scratch, &dec), -EINVAL);
        bad = cfg;
        bad.max_step = NAN;
        assert_int_equal(fm_tune_decide(&bad, o, 2, 0.5, scratch, &dec), -EINVAL);
        bad = cfg;
        bad.min_gain = -0.1;
        assert_int_equal(fm_tune_decide(&bad, o, 2, 0.5, scratch, &dec), -EINVAL);
        bad = cfg;
        bad.min_gain = INFINITY;
        assert_int_equal(fm_tune_decide(&bad, o, 2, 0.5, scratch, &dec), -EINVAL);
        bad = cfg;
        bad.grid.lo = 0.95;
        assert_int_equal(fm_tune_decide(&bad, o, 2, 0.5, scratch, &dec), -EINVAL);
        bad = cfg;
        bad.grid = (struct fm_tune_grid){0.0, 1.0, 0.0001};
        assert_int_equal(fm_tune_config_validate(&bad), -ERANGE);
        assert_int_equal(fm_tune_decide(&bad, o, 2, 0.5, scratch, &dec), -ERANGE);
        bad = cfg;
        bad.objective.kind = (enum fm_tune_objective) - 1;
        assert_int_equal(fm_tune_decide(&bad, o, 2, 0.5, scratch, &dec), -EINVAL);
        assert_int_equal(fm_tune_config_validate(NULL), -EINVAL);

        o[1].label = 7;
        assert_int_equal(fm_tune_decide(&cfg, o, 2, 0.5, scratch, &dec), -EINVAL);
        o[1] = (struct fm_outcome){NAN, 0};
        assert_int_equal(fm_tune_decide(&cfg, o, 2, 0.5, scratch, &dec), -EINVAL);

        assert_memory_equal(&dec, &before, sizeof(dec));
        free(scratch);
}

static void test_names_and_defaults(void **state)
{
        struct fm_tune_config cfg;

        (void)state;
        assert_string_equal(fm_tune_objective_name(FM_TUNE_F1), "f1");
        assert_string_equal(fm_tune_objective_name(FM_TUNE_PRECISION_AT_RECALL),
                            "precision_at_recall");
        assert_string_equal(fm_tune_objective_name(FM_TUNE_COST), "cost");
        assert_null(fm_tune_objective_name(_FM_TUNE_OBJECTIVE_MAX));
        assert_null(fm_tune_objective_name((enum fm_tune_objective) - 1));

        for (int r = 0; r < _FM_TUNE_REASON_MAX; r++)
                assert_non_null(fm_tune_reason_name(r));
        assert_string_equal(fm_tune_reason_name(FM_TUNE_ALREADY_BEST), "already_best");
        assert_null(fm_tune_reason_name(_FM_TUNE_REASON_MAX));

        fm_tune_config_default(&cfg);
        assert_int_equal(fm_tune_config_validate(&cfg), 0);
        assert_true(cfg.grid.lo == 0.5 && cfg.grid.hi == 0.9 && cfg.grid.step == 0.05);
        assert_int_equal(cfg.objective.kind, FM_TUNE_F1);
        assert_true(cfg.min_gain == 0.05);
        assert_true(cfg.max_step == 0.10);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_grid_points),
                cmocka_unit_test(test_grid_invalid),
                cmocka_unit_test(test_hand_computed),
                cmocka_unit_test(test_empty_and_degenerate),
                cmocka_unit_test(test_evaluate_errors),
                cmocka_unit_test(test_grid_matches_brute_force),
                cmocka_unit_test(test_threshold_matches_brute_force),
                cmocka_unit_test(test_decide_matches_reference),
                cmocka_unit_test(test_decide_change),
                cmocka_unit_test(test_decide_min_gain),
                cmocka_unit_test(test_decide_samples),
                cmocka_unit_test(test_decide_max_step_and_bounds),
                cmocka_unit_test(test_decide_precision_at_recall),
                cmocka_unit_test(test_decide_errors),
                cmocka_unit_test(test_names_and_defaults),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
