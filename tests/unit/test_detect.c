/* SPDX-License-Identifier: MIT */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "test_util.h"

#include <errno.h>
#include <math.h>
#include <string.h>

#include "detect.h"

#define assert_rel(a, b, rel)                                                                      \
        do {                                                                                       \
                double a_ = (a), b_ = (b);                                                         \
                if (!(fabs(a_ - b_) <= (rel)*fabs(b_)))                                            \
                        fail_msg("%s = %.17g, want %.17g (rel %g)", #a, a_, b_, (double)(rel));    \
        } while (0)

#define SENTINEL 123.25

/* ------------------------------------------------------------------------ */
/* Seeded noise: SplitMix64 and Box-Muller                                  */
/* ------------------------------------------------------------------------ */

struct rng {
        uint64_t s;
};

static uint64_t rng_next(struct rng *r)
{
        uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);

        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
}

/* Uniform in (0, 1): never 0, so log() below is finite. */
static double rng_unif(struct rng *r)
{
        return ((double)(rng_next(r) >> 11) + 0.5) * 0x1.0p-53;
}

static double rng_gauss(struct rng *r)
{
        double u = rng_unif(r), v = rng_unif(r);

        return sqrt(-2.0 * log(u)) * cos(2.0 * 3.14159265358979323846 * v);
}

/* ------------------------------------------------------------------------ */
/* z-score                                                                  */
/* ------------------------------------------------------------------------ */

static void test_zscore_warmup(void **state)
{
        struct fm_zscore z;
        double s = SENTINEL;

        (void)state;
        assert_int_equal(fm_zscore_init(&z, 0.5, 3, 0.0), 0);

        /* warm-up: absorbed, not scored, *ret_z untouched */
        assert_int_equal(fm_zscore_update(&z, 1.0, &s), 0);
        assert_true(s == SENTINEL);
        assert_true(z.mean == 1.0 && z.var == 0.0);
        /* d = 2: mean 1 + 0.5 * 2 = 2, var 0.5 * (0 + 0.5 * 4) = 1 */
        assert_int_equal(fm_zscore_update(&z, 3.0, &s), 0);
        assert_near(z.mean, 2.0, 1e-15);
        assert_near(z.var, 1.0, 1e-15);
        /* d = 0: mean 2, var 0.5 * 1 = 0.5 */
        assert_int_equal(fm_zscore_update(&z, 2.0, &s), 0);
        assert_true(s == SENTINEL);
        assert_int_equal(z.n, 3);
        assert_near(z.var, 0.5, 1e-15);
        assert_near(fm_zscore_stddev(&z), sqrt(0.5), 1e-15);

        /* three absorbed: scored against the state before x: (4 - 2) / sqrt(0.5) */
        assert_int_equal(fm_zscore_update(&z, 4.0, &s), 1);
        assert_near(s, 2.0 / sqrt(0.5), 1e-14);
        /* then absorbed: d = 2, mean 3, var 0.5 * (0.5 + 2) = 1.25 */
        assert_near(z.mean, 3.0, 1e-15);
        assert_near(z.var, 1.25, 1e-15);
        assert_int_equal(fm_zscore_update(&z, 3.0, &s), 1);
        assert_near(s, 0.0, 1e-15);
        /* ret_z may be NULL */
        assert_int_equal(fm_zscore_update(&z, 3.0, NULL), 1);

        /* reset: the warm-up starts again, parameters kept */
        fm_zscore_reset(&z);
        assert_int_equal(z.n, 0);
        assert_true(z.alpha == 0.5 && z.warmup == 3);
        s = SENTINEL;
        assert_int_equal(fm_zscore_update(&z, 10.0, &s), 0);
        assert_int_equal(fm_zscore_update(&z, 10.0, &s), 0);
        assert_int_equal(fm_zscore_update(&z, 10.0, &s), 0);
        assert_true(s == SENTINEL);
}

static void test_zscore_zero_variance(void **state)
{
        struct fm_zscore z;
        double s = SENTINEL;

        (void)state;
        /* a constant series has var 0: equal is 0, different is +-Inf without a floor */
        assert_int_equal(fm_zscore_init(&z, 0.1, 2, 0.0), 0);
        assert_int_equal(fm_zscore_update(&z, 5.0, &s), 0);
        assert_int_equal(fm_zscore_update(&z, 5.0, &s), 0);
        assert_int_equal(fm_zscore_update(&z, 5.0, &s), 1);
        assert_true(s == 0.0);
        assert_int_equal(fm_zscore_update(&z, 6.0, &s), 1);
        assert_true(isinf(s) && s > 0);

        assert_int_equal(fm_zscore_init(&z, 0.1, 2, 0.0), 0);
        fm_zscore_update(&z, 5.0, NULL);
        fm_zscore_update(&z, 5.0, NULL);
        assert_int_equal(fm_zscore_update(&z, 4.0, &s), 1);
        assert_true(isinf(s) && s < 0);

        /* with a floor of 0.5 the same sample scores 2 */
        assert_int_equal(fm_zscore_init(&z, 0.1, 2, 0.5), 0);
        fm_zscore_update(&z, 5.0, NULL);
        fm_zscore_update(&z, 5.0, NULL);
        assert_int_equal(fm_zscore_update(&z, 6.0, &s), 1);
        assert_near(s, 2.0, 1e-15);
}

static void test_zscore_gaussian(void **state)
{
        struct rng r = {.s = 7};
        struct fm_zscore z;
        double s = 0.0;
        int big = 0, scored = 0;

        (void)state;
        /* N(3, 2^2): the EW mean and sd settle near 3 and 2 */
        assert_int_equal(fm_zscore_init(&z, 0.01, 200, 0.0), 0);
        for (int i = 0; i < 20000; i++) {
                int rc = fm_zscore_update(&z, 3.0 + 2.0 * rng_gauss(&r), &s);

                assert_true(rc == 0 || rc == 1);
                assert_int_equal(rc, i >= 200);
                scored += rc;
                big += rc == 1 && fabs(s) > 4.0;
        }
        assert_int_equal(scored, 20000 - 200);
        assert_near(z.mean, 3.0, 0.6);
        assert_near(fm_zscore_stddev(&z), 2.0, 0.4);
        /* |z| > 4 has probability 6e-5 for a normal; allow a few */
        assert_true(big <= 10);

        /* a 6-sigma outlier scores about 6 */
        double out = z.mean + 6.0 * fm_zscore_stddev(&z);
        assert_int_equal(fm_zscore_update(&z, out, &s), 1);
        assert_near(s, 6.0, 1e-9);
}

static void test_zscore_einval(void **state)
{
        struct fm_zscore z, copy;
        double s = SENTINEL;

        (void)state;
        memset(&z, 0xa5, sizeof(z));
        copy = z;
        assert_int_equal(fm_zscore_init(&z, 0.0, 10, 0.0), -EINVAL);
        assert_int_equal(fm_zscore_init(&z, 1.0, 10, 0.0), -EINVAL);
        assert_int_equal(fm_zscore_init(&z, -0.1, 10, 0.0), -EINVAL);
        assert_int_equal(fm_zscore_init(&z, NAN, 10, 0.0), -EINVAL);
        assert_int_equal(fm_zscore_init(&z, 0.1, 0, 0.0), -EINVAL);
        assert_int_equal(fm_zscore_init(&z, 0.1, 1, 0.0), -EINVAL);
        assert_int_equal(fm_zscore_init(&z, 0.1, 10, -1.0), -EINVAL);
        assert_int_equal(fm_zscore_init(&z, 0.1, 10, NAN), -EINVAL);
        assert_int_equal(fm_zscore_init(&z, 0.1, 10, INFINITY), -EINVAL);
        assert_memory_equal(&z, &copy, sizeof(z));

        assert_int_equal(fm_zscore_init(&z, 0.1, 2, 0.0), 0);
        fm_zscore_update(&z, 1.0, NULL);
        fm_zscore_update(&z, 2.0, NULL);
        copy = z;
        assert_int_equal(fm_zscore_update(&z, NAN, &s), -EINVAL);
        assert_int_equal(fm_zscore_update(&z, INFINITY, &s), -EINVAL);
        assert_int_equal(fm_zscore_update(&z, -INFINITY, &s), -EINVAL);
        assert_memory_equal(&z, &copy, sizeof(z));
        assert_true(s == SENTINEL);

        /* an absorbable-looking sample whose squared deviation overflows */
        assert_int_equal(fm_zscore_init(&z, 0.5, 2, 0.0), 0);
        fm_zscore_update(&z, 1e200, NULL);
        copy = z;
        assert_int_equal(fm_zscore_update(&z, -1e200, &s), -ERANGE);
        assert_memory_equal(&z, &copy, sizeof(z));
}

/* ------------------------------------------------------------------------ */
/* Page-Hinkley                                                             */
/* ------------------------------------------------------------------------ */

static const struct fm_ph_params ph_default = {
        .delta = 0.5,
        .lambda = 20.0,
        .alpha = 1.0,
        .min_samples = 30,
        .dir = FM_CHANGE_BOTH,
};

/*
 * Feeds `pre` samples of N(level, sigma^2), then `post` of
 * N(level + step, sigma^2); returns the delay of the first alarm after the
 * step (0 = on the first shifted sample), -1 if none, -2 if an alarm came
 * before the step.
 */
static int ph_delay(struct fm_ph *ph, struct rng *r, int pre, int post, double level, double sigma,
                    double step)
{
        for (int i = 0; i < pre; i++)
                if (fm_ph_update(ph, level + sigma * rng_gauss(r)) == 1)
                        return -2;
        for (int i = 0; i < post; i++)
                if (fm_ph_update(ph, level + step + sigma * rng_gauss(r)) == 1)
                        return i;
        return -1;
}

static void test_ph_stationary_quiet(void **state)
{
        struct rng r = {.s = 42};
        struct fm_ph ph;

        (void)state;
        /* level does not matter: the test works on deviations from the running mean */
        assert_int_equal(fm_ph_init(&ph, &ph_default), 0);
        for (int i = 0; i < 10000; i++)
                assert_int_equal(fm_ph_update(&ph, 100.0 + rng_gauss(&r)), 0);
        assert_int_equal(ph.alarms, 0);
        assert_int_equal(ph.n, 10000);
        assert_true(fm_ph_statistic(&ph) >= 0.0 && fm_ph_statistic(&ph) <= ph_default.lambda);
}

static void test_ph_step(void **state)
{
        struct rng r = {.s = 1234};
        struct fm_ph ph;
        int d;

        (void)state;
        /* +2 sigma: about lambda / (2 - delta) = 13 samples expected */
        assert_int_equal(fm_ph_init(&ph, &ph_default), 0);
        d = ph_delay(&ph, &r, 2000, 500, 10.0, 1.0, 2.0);
        assert_true(d >= 0 && d <= 40);
        assert_int_equal(ph.alarms, 1);
        assert_int_equal(ph.last.dir, +1);
        assert_true(ph.last.stat > ph_default.lambda);
        assert_int_equal(ph.last.n, 2000 + d + 1);
        /* it reset itself */
        assert_int_equal(ph.n, 0);
        assert_true(fm_ph_statistic(&ph) == 0.0);

        /* -2 sigma */
        assert_int_equal(fm_ph_init(&ph, &ph_default), 0);
        d = ph_delay(&ph, &r, 2000, 500, 10.0, 1.0, -2.0);
        assert_true(d >= 0 && d <= 40);
        assert_int_equal(ph.last.dir, -1);

        /* watching increases only, a drop goes unnoticed; a rise does not */
        struct fm_ph_params up = ph_default;
        up.dir = FM_CHANGE_UP;
        assert_int_equal(fm_ph_init(&ph, &up), 0);
        assert_int_equal(ph_delay(&ph, &r, 2000, 1000, 10.0, 1.0, -2.0), -1);
        assert_int_equal(fm_ph_init(&ph, &up), 0);
        d = ph_delay(&ph, &r, 2000, 500, 10.0, 1.0, 2.0);
        assert_true(d >= 0 && d <= 40);

        /* scaled noise: delta and lambda are in units of x */
        struct fm_ph_params scaled = ph_default;
        scaled.delta *= 5.0;
        scaled.lambda *= 5.0;
        assert_int_equal(fm_ph_init(&ph, &scaled), 0);
        d = ph_delay(&ph, &r, 10000, 500, 200.0, 5.0, 10.0);
        assert_true(d >= 0 && d <= 40);
}

static void test_ph_formula(void **state)
{
        struct fm_ph ph;
        struct fm_ph_params p = {
                .delta = 0.1,
                .lambda = 1.5,
                .alpha = 0.5,
                .min_samples = 0,
                .dir = FM_CHANGE_BOTH,
        };

        (void)state;
        assert_int_equal(fm_ph_init(&ph, &p), 0);

        /* x = 0: mean 0, U = -0.1, L = 0.1; statistic 0 after one sample */
        assert_int_equal(fm_ph_update(&ph, 0.0), 0);
        assert_near(ph.up, -0.1, 1e-15);
        assert_near(ph.down, 0.1, 1e-15);
        assert_true(fm_ph_statistic(&ph) == 0.0);
        /* x = 2: mean 1, dev 1: U = -0.05 + 1 - 0.1 = 0.85, L = 0.05 + 1 + 0.1 = 1.15 */
        assert_int_equal(fm_ph_update(&ph, 2.0), 0);
        assert_near(ph.up, 0.85, 1e-15);
        assert_near(ph.down, 1.15, 1e-15);
        assert_near(fm_ph_statistic(&ph), 0.95, 1e-15); /* PH_up = 0.85 - (-0.1) */
        /*
         * x = 0: mean 2/3, dev -2/3: U3 = 0.425 - 2/3 - 0.1 = -0.3417 (the new
         * minimum), L3 = 0.575 - 2/3 + 0.1 = 0.0083: PH_down = 1.15 - 0.0083 < 1.5
         */
        assert_int_equal(fm_ph_update(&ph, 0.0), 0);
        double u3 = 0.425 - 2.0 / 3.0 - 0.1;
        assert_near(ph.up, u3, 1e-15);
        assert_near(ph.down, 0.575 - 2.0 / 3.0 + 0.1, 1e-15);
        assert_near(fm_ph_statistic(&ph), 1.15 - (0.575 - 2.0 / 3.0 + 0.1), 1e-15);
        /* x = 3: mean 1.25, dev 1.75: U4 = U3 / 2 + 1.65 = 1.479; PH_up = U4 - U3 = 1.82 */
        assert_int_equal(fm_ph_update(&ph, 3.0), 1);
        assert_near(ph.last.stat, 0.5 * u3 + 1.65 - u3, 1e-14);
        assert_int_equal(ph.last.dir, +1);
        assert_int_equal(ph.last.n, 4);

        /* min_samples holds the alarm back */
        p.min_samples = 5;
        assert_int_equal(fm_ph_init(&ph, &p), 0);
        assert_int_equal(fm_ph_update(&ph, 0.0), 0);
        assert_int_equal(fm_ph_update(&ph, 2.0), 0);
        assert_int_equal(fm_ph_update(&ph, 0.0), 0);
        assert_int_equal(fm_ph_update(&ph, 3.0), 0);
        assert_true(fm_ph_statistic(&ph) > p.lambda);
        assert_int_equal(fm_ph_update(&ph, 3.0), 1);
        assert_int_equal(ph.last.n, 5);

        /* fm_ph_reset forgets the samples, keeps the alarm record */
        fm_ph_reset(&ph);
        assert_int_equal(ph.n, 0);
        assert_int_equal(ph.alarms, 1);
}

static void test_ph_forgetting(void **state)
{
        struct rng r = {.s = 99};
        struct fm_ph ph;
        struct fm_ph_params p = ph_default;
        int d;

        (void)state;
        /*
         * alpha = 0.9: U hovers around -delta / (1 - alpha) = -5 with sd
         * about 2.3; a 4-sigma step moves it to about +35.
         */
        p.alpha = 0.9;
        assert_int_equal(fm_ph_init(&ph, &p), 0);
        d = ph_delay(&ph, &r, 10000, 500, 0.0, 1.0, 4.0);
        assert_true(d >= 0 && d <= 40);
        /* and the sums stay bounded: after 10,000 samples U is near -5, not near -5000 */
        assert_int_equal(fm_ph_init(&ph, &p), 0);
        assert_int_equal(ph_delay(&ph, &r, 10000, 0, 0.0, 1.0, 0.0), -1);
        assert_near(ph.up, -5.0, 15.0);
}

static void test_ph_einval(void **state)
{
        struct fm_ph ph, copy;
        struct fm_ph_params p;

        (void)state;
        memset(&ph, 0xa5, sizeof(ph));
        copy = ph;
#define BAD_PH(field, value)                                                                       \
        do {                                                                                       \
                p = ph_default;                                                                    \
                p.field = value;                                                                   \
                assert_int_equal(fm_ph_init(&ph, &p), -EINVAL);                                    \
        } while (0)
        BAD_PH(delta, -0.1);
        BAD_PH(delta, NAN);
        BAD_PH(delta, INFINITY);
        BAD_PH(lambda, 0.0);
        BAD_PH(lambda, -1.0);
        BAD_PH(lambda, NAN);
        BAD_PH(lambda, INFINITY);
        BAD_PH(alpha, 0.0);
        BAD_PH(alpha, 1.0000001);
        BAD_PH(alpha, NAN);
        BAD_PH(dir, 0);
        BAD_PH(dir, 4);
#undef BAD_PH
        assert_memory_equal(&ph, &copy, sizeof(ph));

        /* delta = 0 and alpha = 1 are inside the domain */
        p = ph_default;
        p.delta = 0.0;
        assert_int_equal(fm_ph_init(&ph, &p), 0);

        fm_ph_update(&ph, 1.0);
        copy = ph;
        assert_int_equal(fm_ph_update(&ph, NAN), -EINVAL);
        assert_int_equal(fm_ph_update(&ph, INFINITY), -EINVAL);
        assert_int_equal(fm_ph_update(&ph, -INFINITY), -EINVAL);
        assert_memory_equal(&ph, &copy, sizeof(ph));

        /* the running mean would overflow */
        assert_int_equal(fm_ph_init(&ph, &ph_default), 0);
        fm_ph_update(&ph, -1.7e308);
        copy = ph;
        assert_int_equal(fm_ph_update(&ph, 1.7e308), -ERANGE);
        assert_memory_equal(&ph, &copy, sizeof(ph));
}

/* ------------------------------------------------------------------------ */
/* CUSUM                                                                    */
/* ------------------------------------------------------------------------ */

static const struct fm_cusum_params cusum_std = {.target = 0.0, .sigma = 1.0, .k = 1.0, .h = 8.0};

static int cusum_delay(struct fm_cusum *c, struct rng *r, int pre, int post, double level,
                       double sigma, double step)
{
        for (int i = 0; i < pre; i++)
                if (fm_cusum_update(c, level + sigma * rng_gauss(r)) == 1)
                        return -2;
        for (int i = 0; i < post; i++)
                if (fm_cusum_update(c, level + step + sigma * rng_gauss(r)) == 1)
                        return i;
        return -1;
}

static void test_cusum_formula(void **state)
{
        struct fm_cusum c;
        struct fm_cusum_params p = {.target = 0.0, .sigma = 1.0, .k = 0.5, .h = 5.0};

        (void)state;
        assert_int_equal(fm_cusum_init(&c, &p), 0);
        assert_int_equal(fm_cusum_update(&c, 1.0), 0); /* S+ = 0.5 */
        assert_int_equal(fm_cusum_update(&c, 2.0), 0); /* S+ = 2.0 */
        assert_near(c.hi, 2.0, 1e-15);
        assert_int_equal(fm_cusum_update(&c, -1.0), 0); /* S+ = 0.5, S- = 0.5 */
        assert_near(c.hi, 0.5, 1e-15);
        assert_near(c.lo, 0.5, 1e-15);
        assert_near(fm_cusum_statistic(&c), 0.5, 1e-15);
        assert_int_equal(fm_cusum_update(&c, 3.0), 0); /* S+ = 3.0, S- = 0 */
        assert_true(c.lo == 0.0);
        assert_int_equal(fm_cusum_update(&c, 3.0), 1); /* S+ = 5.5 > 5 */
        assert_near(c.last.stat, 5.5, 1e-15);
        assert_int_equal(c.last.dir, +1);
        assert_int_equal(c.last.n, 5);
        assert_int_equal(c.alarms, 1);
        assert_true(c.hi == 0.0 && c.lo == 0.0 && c.n == 0);

        /* with a target and sigma: x = 100 - 3 * 4 is z = -3, S- = 2.5 each time */
        p = (struct fm_cusum_params){.target = 100.0, .sigma = 4.0, .k = 0.5, .h = 4.0};
        assert_int_equal(fm_cusum_init(&c, &p), 0);
        assert_int_equal(fm_cusum_update(&c, 88.0), 0);
        assert_int_equal(fm_cusum_update(&c, 88.0), 1);
        assert_near(c.last.stat, 5.0, 1e-15);
        assert_int_equal(c.last.dir, -1);

        /* a value so far out that z overflows alarms with +Inf */
        p = (struct fm_cusum_params){.target = 0.0, .sigma = 1e-300, .k = 0.5, .h = 4.0};
        assert_int_equal(fm_cusum_init(&c, &p), 0);
        assert_int_equal(fm_cusum_update(&c, 1e300), 1);
        assert_true(isinf(c.last.stat));

        /* reset zeroes the sums, keeps the record */
        p = (struct fm_cusum_params){.target = 0.0, .sigma = 1.0, .k = 0.5, .h = 5.0};
        assert_int_equal(fm_cusum_init(&c, &p), 0);
        fm_cusum_update(&c, 3.0);
        fm_cusum_reset(&c);
        assert_true(c.hi == 0.0 && c.n == 0);
}

static void test_cusum_stationary_and_step(void **state)
{
        struct rng r = {.s = 2024};
        struct fm_cusum c;
        int d;

        (void)state;
        assert_int_equal(fm_cusum_init(&c, &cusum_std), 0);
        for (int i = 0; i < 10000; i++)
                assert_int_equal(fm_cusum_update(&c, rng_gauss(&r)), 0);
        assert_int_equal(c.alarms, 0);

        /* +2 sigma with k = 1, h = 8: about h / (2 - k) = 8 samples expected */
        assert_int_equal(fm_cusum_init(&c, &cusum_std), 0);
        d = cusum_delay(&c, &r, 2000, 500, 0.0, 1.0, 2.0);
        assert_true(d >= 0 && d <= 40);
        assert_int_equal(c.last.dir, +1);
        assert_true(c.last.stat > cusum_std.h);

        assert_int_equal(fm_cusum_init(&c, &cusum_std), 0);
        d = cusum_delay(&c, &r, 2000, 500, 0.0, 1.0, -2.0);
        assert_true(d >= 0 && d <= 40);
        assert_int_equal(c.last.dir, -1);

        /* raw values with a target mean: latency around 250 ms, sd 20, then +40 */
        struct fm_cusum_params raw = {.target = 250.0, .sigma = 20.0, .k = 1.0, .h = 8.0};
        assert_int_equal(fm_cusum_init(&c, &raw), 0);
        d = cusum_delay(&c, &r, 10000, 500, 250.0, 20.0, 40.0);
        assert_true(d >= 0 && d <= 40);
}

static void test_cusum_einval(void **state)
{
        struct fm_cusum c, copy;
        struct fm_cusum_params p;

        (void)state;
        memset(&c, 0xa5, sizeof(c));
        copy = c;
#define BAD_CUSUM(field, value)                                                                    \
        do {                                                                                       \
                p = cusum_std;                                                                     \
                p.field = value;                                                                   \
                assert_int_equal(fm_cusum_init(&c, &p), -EINVAL);                                  \
        } while (0)
        BAD_CUSUM(target, NAN);
        BAD_CUSUM(target, INFINITY);
        BAD_CUSUM(sigma, 0.0);
        BAD_CUSUM(sigma, -1.0);
        BAD_CUSUM(sigma, NAN);
        BAD_CUSUM(sigma, INFINITY);
        BAD_CUSUM(k, -0.1);
        BAD_CUSUM(k, NAN);
        BAD_CUSUM(k, INFINITY);
        BAD_CUSUM(h, 0.0);
        BAD_CUSUM(h, -1.0);
        BAD_CUSUM(h, NAN);
        BAD_CUSUM(h, INFINITY);
#undef BAD_CUSUM
        assert_memory_equal(&c, &copy, sizeof(c));

        p = cusum_std;
        p.k = 0.0;
        assert_int_equal(fm_cusum_init(&c, &p), 0);
        fm_cusum_update(&c, 1.0);
        copy = c;
        assert_int_equal(fm_cusum_update(&c, NAN), -EINVAL);
        assert_int_equal(fm_cusum_update(&c, INFINITY), -EINVAL);
        assert_int_equal(fm_cusum_update(&c, -INFINITY), -EINVAL);
        assert_memory_equal(&c, &copy, sizeof(c));
}

/* ------------------------------------------------------------------------ */
/* Burn rate                                                                */
/* ------------------------------------------------------------------------ */

static void test_burn_rate(void **state)
{
        double b = SENTINEL;

        (void)state;
        /* SRE workbook: 2 % errors against a 99.9 % SLO burns at 20 */
        assert_int_equal(fm_burn_rate(2.0, 100.0, 0.999, &b), 0);
        assert_rel(b, 20.0, 1e-12);
        /* 100 % errors against 99.9 %: the 30-day budget is gone in 43 min, burn 1000 */
        assert_int_equal(fm_burn_rate(1000.0, 1000.0, 0.999, &b), 0);
        assert_rel(b, 1000.0, 1e-12);
        /* exactly on budget */
        assert_int_equal(fm_burn_rate(1.0, 100.0, 0.99, &b), 0);
        assert_rel(b, 1.0, 1e-12);
        /* no traffic: no burn */
        assert_int_equal(fm_burn_rate(0.0, 0.0, 0.999, &b), 0);
        assert_true(b == 0.0);
        assert_int_equal(fm_burn_rate(0.0, 50.0, 0.999, &b), 0);
        assert_true(b == 0.0);

        b = SENTINEL;
        assert_int_equal(fm_burn_rate(1.0, 100.0, 0.0, &b), -EINVAL);
        assert_int_equal(fm_burn_rate(1.0, 100.0, 1.0, &b), -EINVAL);
        assert_int_equal(fm_burn_rate(1.0, 100.0, -0.5, &b), -EINVAL);
        assert_int_equal(fm_burn_rate(1.0, 100.0, 1.5, &b), -EINVAL);
        assert_int_equal(fm_burn_rate(1.0, 100.0, NAN, &b), -EINVAL);
        assert_int_equal(fm_burn_rate(-1.0, 100.0, 0.999, &b), -EINVAL);
        assert_int_equal(fm_burn_rate(1.0, -100.0, 0.999, &b), -EINVAL);
        assert_int_equal(fm_burn_rate(101.0, 100.0, 0.999, &b), -EINVAL);
        assert_int_equal(fm_burn_rate(NAN, 100.0, 0.999, &b), -EINVAL);
        assert_int_equal(fm_burn_rate(1.0, NAN, 0.999, &b), -EINVAL);
        assert_int_equal(fm_burn_rate(1.0, INFINITY, 0.999, &b), -EINVAL);
        assert_true(b == SENTINEL);
}

#define MIN_MS ((fm_ms)60 * FM_MS_PER_S)
#define HOUR_MS (60 * MIN_MS)
#define DAY_MS (24 * HOUR_MS)

static void test_burn_windows(void **state)
{
        struct fm_burn_window w[FM_BURN_WINDOWS], w30[FM_BURN_WINDOWS], copy[FM_BURN_WINDOWS];

        (void)state;
        /* 30 days: the workbook's numbers */
        assert_int_equal(fm_burn_windows_scaled(30 * DAY_MS, w30), 0);
        assert_int_equal(w30[0].long_ms, HOUR_MS);
        assert_int_equal(w30[0].short_ms, 5 * MIN_MS);
        assert_true(w30[0].factor == 14.4);
        assert_int_equal(w30[1].long_ms, 6 * HOUR_MS);
        assert_int_equal(w30[1].short_ms, 30 * MIN_MS);
        assert_true(w30[1].factor == 6.0);

        /* 7 days: 7/30 of each window, factors unchanged */
        assert_int_equal(fm_burn_windows_scaled(7 * DAY_MS, w), 0);
        for (size_t i = 0; i < FM_BURN_WINDOWS; i++) {
                assert_int_equal(w[i].long_ms, w30[i].long_ms * 7 / 30);
                assert_int_equal(w[i].short_ms, w30[i].short_ms * 7 / 30);
                assert_true(w[i].factor == w30[i].factor);
        }
        assert_int_equal(w[0].long_ms, 14 * MIN_MS);
        assert_int_equal(w[0].short_ms, 70 * FM_MS_PER_S);
        assert_int_equal(w[1].long_ms, 84 * MIN_MS);
        assert_int_equal(w[1].short_ms, 7 * MIN_MS);

        /* 28 days */
        assert_int_equal(fm_burn_windows_scaled(28 * DAY_MS, w), 0);
        assert_int_equal(w[0].long_ms, 56 * MIN_MS);
        assert_int_equal(w[0].short_ms, 280 * FM_MS_PER_S);

        /* the extremes: a year, and the shortest period whose 5 min rounds to 1 ms */
        assert_int_equal(fm_burn_windows_scaled(FM_BURN_PERIOD_MAX_MS, w), 0);
        assert_int_equal(w[1].long_ms, 6 * HOUR_MS * 366 / 30);
        assert_int_equal(fm_burn_windows_scaled(4320, w), 0);
        assert_int_equal(w[0].short_ms, 1);

        memcpy(copy, w, sizeof(w));
        assert_int_equal(fm_burn_windows_scaled(4319, w), -EINVAL);
        assert_int_equal(fm_burn_windows_scaled(0, w), -EINVAL);
        assert_int_equal(fm_burn_windows_scaled(-DAY_MS, w), -EINVAL);
        assert_int_equal(fm_burn_windows_scaled(FM_BURN_PERIOD_MAX_MS + 1, w), -EINVAL);
        assert_int_equal(fm_burn_windows_scaled(INT64_MAX, w), -EINVAL);
        assert_memory_equal(w, copy, sizeof(w));
}

static void test_burn_alert(void **state)
{
        struct fm_burn_window w[FM_BURN_WINDOWS];

        (void)state;
        assert_int_equal(fm_burn_windows_scaled(30 * DAY_MS, w), 0);
        assert_true(fm_burn_alert(&w[0], 20.0, 15.0));
        /* both must exceed, strictly */
        assert_false(fm_burn_alert(&w[0], 20.0, 14.4));
        assert_false(fm_burn_alert(&w[0], 14.4, 20.0));
        assert_false(
                fm_burn_alert(&w[0], 20.0, 1.0)); /* burning stopped: the short window clears */
        assert_false(fm_burn_alert(&w[0], 1.0, 20.0)); /* a blip: the long window is calm */
        assert_false(fm_burn_alert(&w[0], NAN, 20.0));
        assert_false(fm_burn_alert(&w[0], 20.0, NAN));
        /* burn 10: not the fast pair, but the slow one */
        assert_false(fm_burn_alert(&w[0], 10.0, 10.0));
        assert_true(fm_burn_alert(&w[1], 10.0, 10.0));
}

/* ------------------------------------------------------------------------ */
/* PSI                                                                      */
/* ------------------------------------------------------------------------ */

static void test_psi_values(void **state)
{
        const double h[4] = {10, 20, 30, 40};
        const double h3[4] = {30, 60, 90, 120};
        const double e2[2] = {50, 50}, a2[2] = {90, 10};
        const double ez[2] = {100, 0}, az[2] = {50, 50};
        double psi = SENTINEL, psi2;

        (void)state;
        /* identical: exactly 0 */
        assert_int_equal(fm_psi_compute(h, h, 4, 0.0, &psi), 0);
        assert_true(psi == 0.0);
        /* same proportions, other totals */
        assert_int_equal(fm_psi_compute(h, h3, 4, 0.0, &psi), 0);
        assert_near(psi, 0.0, 1e-15);

        /* (0.1 - 0.5) ln(0.1 / 0.5) + (0.9 - 0.5) ln(0.9 / 0.5) = 0.4 ln 9 */
        assert_int_equal(fm_psi_compute(e2, a2, 2, 0.0, &psi), 0);
        assert_near(psi, 0.4 * log(9.0), 1e-14);
        assert_near(psi, 0.8788898309344878, 1e-14);
        /* symmetric */
        assert_int_equal(fm_psi_compute(a2, e2, 2, 0.0, &psi2), 0);
        assert_near(psi2, psi, 1e-15);

        /* an empty bin: floored at 1e-4, then renormalised by 1.0001 */
        double e0 = 1.0 / 1.0001, e1 = 1e-4 / 1.0001;
        double want = (0.5 - e0) * log(0.5 / e0) + (0.5 - e1) * log(0.5 / e1);
        assert_int_equal(fm_psi_compute(ez, az, 2, 0.0, &psi), 0);
        assert_near(psi, want, 1e-12);
        assert_near(psi, 4.6042492440450875, 1e-12);

        /* min_total: 100 is enough for 100, not for 99 */
        assert_int_equal(fm_psi_compute(e2, a2, 2, 100.0, &psi), 0);
        psi = SENTINEL;
        assert_int_equal(fm_psi_compute(e2, a2, 2, 100.5, &psi), -ENODATA);
        assert_int_equal(fm_psi_compute(h, e2, 2, 100.0, &psi), -ENODATA); /* 10 + 20 */
        assert_int_equal(fm_psi_compute(e2, h, 2, 100.0, &psi), -ENODATA);
        assert_true(psi == SENTINEL);
}

static void test_psi_errors(void **state)
{
        const double ok[3] = {1, 2, 3};
        const double zero[3] = {0, 0, 0};
        const double neg[3] = {1, -2, 3};
        const double nan_[3] = {1, NAN, 3};
        const double inf_[3] = {1, INFINITY, 3};
        const double huge[3] = {1.7e308, 1.7e308, 0};
        double big[FM_PSI_MAX_BINS + 1];
        double psi = SENTINEL;

        (void)state;
        for (size_t i = 0; i < ARRAY_SIZE(big); i++)
                big[i] = 1.0;

        assert_int_equal(fm_psi_compute(ok, zero, 3, 0.0, &psi), -ENODATA);
        assert_int_equal(fm_psi_compute(zero, ok, 3, 0.0, &psi), -ENODATA);
        assert_int_equal(fm_psi_compute(ok, ok, 0, 0.0, &psi), -EINVAL);
        assert_int_equal(fm_psi_compute(big, big, FM_PSI_MAX_BINS + 1, 0.0, &psi), -EINVAL);
        assert_int_equal(fm_psi_compute(neg, ok, 3, 0.0, &psi), -EINVAL);
        assert_int_equal(fm_psi_compute(ok, neg, 3, 0.0, &psi), -EINVAL);
        assert_int_equal(fm_psi_compute(nan_, ok, 3, 0.0, &psi), -EINVAL);
        assert_int_equal(fm_psi_compute(ok, inf_, 3, 0.0, &psi), -EINVAL);
        assert_int_equal(fm_psi_compute(ok, ok, 3, -1.0, &psi), -EINVAL);
        assert_int_equal(fm_psi_compute(ok, ok, 3, NAN, &psi), -EINVAL);
        assert_int_equal(fm_psi_compute(ok, ok, 3, INFINITY, &psi), -EINVAL);
        assert_int_equal(fm_psi_compute(huge, ok, 3, 0.0, &psi), -ERANGE);
        assert_true(psi == SENTINEL);

        assert_int_equal(fm_psi_compute(big, big, FM_PSI_MAX_BINS, 0.0, &psi), 0);
        assert_true(psi == 0.0);
}

static void assert_bins(const double *got, const double *want, size_t n)
{
        for (size_t i = 0; i < n; i++)
                assert_near(got[i], want[i], 1e-9);
}

static void test_psi_rebin(void **state)
{
        double out[10];

        (void)state;
        {
                /* deciles reported as deciles: unchanged (the first bucket spans [0, 0.1]) */
                const double b[9] = {0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9};
                const uint64_t c[10] = {5, 1, 2, 3, 4, 5, 6, 7, 8, 9};
                const double want[10] = {5, 1, 2, 3, 4, 5, 6, 7, 8, 9};
                assert_int_equal(fm_psi_rebin(b, 9, c, 0.0, 1.0, 10, out), 0);
                assert_bins(out, want, 10);
        }
        {
                /* same, with the schema's explicit last bound 1.0 and an empty +Inf bucket */
                const double b[10] = {0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0};
                const uint64_t c[11] = {5, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0};
                const double want[10] = {5, 1, 2, 3, 4, 5, 6, 7, 8, 9};
                assert_int_equal(fm_psi_rebin(b, 10, c, 0.0, 1.0, 10, out), 0);
                assert_bins(out, want, 10);
        }
        {
                /* coarse onto fine: each half splits evenly */
                const double b[1] = {0.5};
                const uint64_t c[2] = {10, 30};
                const double want[4] = {5, 5, 15, 15};
                assert_int_equal(fm_psi_rebin(b, 1, c, 0.0, 1.0, 4, out), 0);
                assert_bins(out, want, 4);
        }
        {
                /* a bucket straddling bins: [0.25, 0.75] holds 100, 20 per 0.1 */
                const double b[2] = {0.25, 0.75};
                const uint64_t c[3] = {0, 100, 0};
                const double want[10] = {0, 0, 10, 20, 20, 20, 20, 10, 0, 0};
                assert_int_equal(fm_psi_rebin(b, 2, c, 0.0, 1.0, 10, out), 0);
                assert_bins(out, want, 10);
        }
        {
                /* the +Inf bucket spread over [0.4, 1] */
                const double b[2] = {0.2, 0.4};
                const uint64_t c[3] = {2, 4, 6};
                const double want[5] = {2, 4, 2, 2, 2};
                assert_int_equal(fm_psi_rebin(b, 2, c, 0.0, 1.0, 5, out), 0);
                assert_bins(out, want, 5);
        }
        {
                /* below the range: into the first bin (the schema test's histogram) */
                const double b[3] = {-1.0, 0.0, 0.5};
                const uint64_t c[4] = {1, 2, 3, 4};
                const double want[2] = {6, 4};
                assert_int_equal(fm_psi_rebin(b, 3, c, 0.0, 1.0, 2, out), 0);
                assert_bins(out, want, 2);
        }
        {
                /* above the range: [0.5, 2] is 1/3 inside, 2/3 above; +Inf whole into the last */
                const double b[2] = {0.5, 2.0};
                const uint64_t c[3] = {0, 9, 7};
                const double want[2] = {0, 16};
                assert_int_equal(fm_psi_rebin(b, 2, c, 0.0, 1.0, 2, out), 0);
                assert_bins(out, want, 2);
        }
        {
                /* a bucket across lo: [-0.5, 0.5] is half below (first bin), half in bins 0-4 */
                const double b[2] = {-0.5, 0.5};
                const uint64_t c[3] = {0, 20, 0};
                const double want[10] = {12, 2, 2, 2, 2, 0, 0, 0, 0, 0};
                assert_int_equal(fm_psi_rebin(b, 2, c, 0.0, 1.0, 10, out), 0);
                assert_bins(out, want, 10);
        }
}

static void test_psi_rebin_total(void **state)
{
        struct rng r = {.s = 5};
        double b[64], out[10], total, sum;
        uint64_t c[65];

        (void)state;
        /* random ascending bounds around [0, 1]: the total always survives */
        for (int round = 0; round < 200; round++) {
                size_t n = 1 + (size_t)(rng_next(&r) % 64);
                double x = -0.5 + rng_unif(&r);

                total = 0.0;
                for (size_t i = 0; i < n; i++) {
                        b[i] = x;
                        x += 0.002 + 0.05 * rng_unif(&r);
                }
                for (size_t i = 0; i <= n; i++) {
                        c[i] = rng_next(&r) % 1000;
                        total += (double)c[i];
                }
                assert_int_equal(fm_psi_rebin(b, n, c, 0.0, 1.0, 10, out), 0);
                sum = 0.0;
                for (size_t j = 0; j < 10; j++) {
                        assert_true(out[j] >= 0.0);
                        sum += out[j];
                }
                assert_near(sum, total, 1e-9 * total + 1e-12);
        }
}

static void test_psi_rebin_einval(void **state)
{
        const double b[3] = {0.1, 0.5, 0.9};
        const uint64_t c[4] = {1, 2, 3, 4};
        const double dup[3] = {0.1, 0.5, 0.5};
        const double desc[3] = {0.1, 0.9, 0.5};
        const double nanb[3] = {0.1, NAN, 0.9};
        const double infb[3] = {0.1, 0.5, INFINITY};
        const double wide[2] = {-1e308, 1e308};
        double many[FM_PSI_MAX_BINS + 1];
        uint64_t many_c[FM_PSI_MAX_BINS + 2] = {0};
        double out[FM_PSI_MAX_BINS + 1];

        (void)state;
        for (size_t i = 0; i < ARRAY_SIZE(many); i++)
                many[i] = (double)i;
        for (size_t i = 0; i < ARRAY_SIZE(out); i++)
                out[i] = SENTINEL;

        assert_int_equal(fm_psi_rebin(b, 0, c, 0.0, 1.0, 10, out), -EINVAL);
        assert_int_equal(fm_psi_rebin(many, FM_PSI_MAX_BINS + 1, many_c, 0.0, 1.0, 10, out),
                         -EINVAL);
        assert_int_equal(fm_psi_rebin(b, 3, c, 0.0, 1.0, 0, out), -EINVAL);
        assert_int_equal(fm_psi_rebin(b, 3, c, 0.0, 1.0, FM_PSI_MAX_BINS + 1, out), -EINVAL);
        assert_int_equal(fm_psi_rebin(dup, 3, c, 0.0, 1.0, 10, out), -EINVAL);
        assert_int_equal(fm_psi_rebin(desc, 3, c, 0.0, 1.0, 10, out), -EINVAL);
        assert_int_equal(fm_psi_rebin(nanb, 3, c, 0.0, 1.0, 10, out), -EINVAL);
        assert_int_equal(fm_psi_rebin(infb, 3, c, 0.0, 1.0, 10, out), -EINVAL);
        assert_int_equal(fm_psi_rebin(b, 3, c, 1.0, 1.0, 10, out), -EINVAL);
        assert_int_equal(fm_psi_rebin(b, 3, c, 1.0, 0.0, 10, out), -EINVAL);
        assert_int_equal(fm_psi_rebin(b, 3, c, NAN, 1.0, 10, out), -EINVAL);
        assert_int_equal(fm_psi_rebin(b, 3, c, 0.0, INFINITY, 10, out), -EINVAL);
        assert_int_equal(fm_psi_rebin(wide, 2, c, 0.0, 1.0, 10, out), -EINVAL);
        assert_int_equal(fm_psi_rebin(b, 3, c, -1e308, 1e308, 10, out), -EINVAL);
        for (size_t i = 0; i < ARRAY_SIZE(out); i++)
                assert_true(out[i] == SENTINEL);

        /* the caps themselves are accepted */
        assert_int_equal(
                fm_psi_rebin(many, FM_PSI_MAX_BINS, many_c, 0.0, 1.0, FM_PSI_MAX_BINS, out), 0);
}

/* ------------------------------------------------------------------------ */
/* Distributions                                                            */
/* ------------------------------------------------------------------------ */

static void test_norm_cdf(void **state)
{
        (void)state;
        assert_near(fm_stat_norm_cdf(1.96), 0.9750021048517795, 1e-15);
        assert_near(fm_stat_norm_cdf(-1.96), 1.0 - 0.9750021048517795, 1e-15);
        assert_true(fm_stat_norm_cdf(0.0) == 0.5);
        assert_near(fm_stat_norm_sf(1.96), 1.0 - 0.9750021048517795, 1e-15);
        /* the lower tail keeps its relative precision */
        assert_rel(fm_stat_norm_cdf(-10.0), 7.619853024160526e-24, 1e-13);
        assert_rel(fm_stat_norm_sf(10.0), 7.619853024160526e-24, 1e-13);
        assert_true(fm_stat_norm_cdf(-INFINITY) == 0.0);
        assert_true(fm_stat_norm_cdf(INFINITY) == 1.0);
        assert_true(isnan(fm_stat_norm_cdf(NAN)));
}

static void test_norm_quantile(void **state)
{
        double x = SENTINEL;

        (void)state;
        assert_int_equal(fm_stat_norm_quantile(0.975, &x), 0);
        assert_near(x, 1.959963984540054, 1e-12);
        assert_int_equal(fm_stat_norm_quantile(0.025, &x), 0);
        assert_near(x, -1.959963984540054, 1e-12);
        assert_int_equal(fm_stat_norm_quantile(0.5, &x), 0);
        assert_true(x == 0.0);
        assert_int_equal(fm_stat_norm_quantile(0.95, &x), 0);
        assert_near(x, 1.6448536269514722, 1e-12);
        assert_int_equal(fm_stat_norm_quantile(0.999, &x), 0);
        assert_near(x, 3.090232306167814, 1e-12);
        assert_int_equal(fm_stat_norm_quantile(1e-10, &x), 0); /* the far tail, r > 5 */
        assert_near(x, -6.361340902404056, 1e-12);

        /*
         * Round trip over 300 decades of the lower tail up to the centre;
         * the upper half by symmetry against the tail 1 - (1 - p) that the
         * double 1 - p really leaves (exact by Sterbenz).
         */
        for (double p = 1e-300; p < 0.5; p *= 1.7) {
                double lo, hi, tail = 1.0 - (1.0 - p);

                assert_int_equal(fm_stat_norm_quantile(p, &lo), 0);
                assert_rel(fm_stat_norm_cdf(lo), p, 1e-12);
                if (tail == 0.0)
                        continue;
                assert_int_equal(fm_stat_norm_quantile(1.0 - p, &hi), 0);
                assert_int_equal(fm_stat_norm_quantile(tail, &lo), 0);
                assert_rel(hi, -lo, 1e-14);
        }

        x = SENTINEL;
        assert_int_equal(fm_stat_norm_quantile(0.0, &x), -EINVAL);
        assert_int_equal(fm_stat_norm_quantile(1.0, &x), -EINVAL);
        assert_int_equal(fm_stat_norm_quantile(-0.1, &x), -EINVAL);
        assert_int_equal(fm_stat_norm_quantile(1.1, &x), -EINVAL);
        assert_int_equal(fm_stat_norm_quantile(NAN, &x), -EINVAL);
        assert_int_equal(fm_stat_norm_quantile(INFINITY, &x), -EINVAL);
        assert_true(x == SENTINEL);
}

static void test_t_cdf(void **state)
{
        const double pi = 3.14159265358979323846;
        const double ts[] = {-30.0, -3.0, -0.5, 0.0, 0.7, 2.0, 10.0, 1e6};
        double p = SENTINEL;

        (void)state;
        for (size_t i = 0; i < ARRAY_SIZE(ts); i++) {
                double t = ts[i];

                /* df = 1 is Cauchy, df = 2 has a closed form too */
                assert_int_equal(fm_stat_t_cdf(t, 1.0, &p), 0);
                assert_near(p, 0.5 + atan(t) / pi, 1e-14);
                assert_int_equal(fm_stat_t_cdf(t, 2.0, &p), 0);
                assert_near(p, 0.5 + t / (2.0 * sqrt(2.0 + t * t)), 1e-14);
        }
        /* reference values from mpmath (betainc at 40 digits) */
        assert_int_equal(fm_stat_t_cdf(2.228138851986, 10.0, &p), 0);
        assert_near(p, 0.97499999999998835, 1e-14);
        assert_int_equal(fm_stat_t_cdf(1.5, 3.7, &p), 0);
        assert_near(p, 0.89320091539899323, 1e-14);
        assert_int_equal(fm_stat_t_cdf(-2.0, 25.0, &p), 0);
        assert_rel(p, 0.028237990213448647, 1e-12);
        assert_int_equal(fm_stat_t_cdf(4.0, 2.5, &p), 0);
        assert_near(p, 0.98049351207934088, 1e-14);
        assert_int_equal(fm_stat_t_cdf(0.3, 1e6, &p), 0);
        assert_near(p, 0.61791139101050290, 1e-9);
        /* towards the normal */
        assert_int_equal(fm_stat_t_cdf(1.96, 1e7, &p), 0);
        assert_near(p, fm_stat_norm_cdf(1.96), 1e-7);
        assert_int_equal(fm_stat_t_cdf(INFINITY, 3.0, &p), 0);
        assert_true(p == 1.0);
        assert_int_equal(fm_stat_t_cdf(-INFINITY, 3.0, &p), 0);
        assert_true(p == 0.0);
        /* |t| / sqrt(df) beyond 1e154: the Cauchy tail 1 / (pi |t|) */
        assert_int_equal(fm_stat_t_cdf(-1e200, 1.0, &p), 0);
        assert_rel(p, 1.0 / (pi * 1e200), 1e-12);

        p = SENTINEL;
        assert_int_equal(fm_stat_t_cdf(1.0, 0.0, &p), -EINVAL);
        assert_int_equal(fm_stat_t_cdf(1.0, -1.0, &p), -EINVAL);
        assert_int_equal(fm_stat_t_cdf(1.0, NAN, &p), -EINVAL);
        assert_int_equal(fm_stat_t_cdf(1.0, INFINITY, &p), -EINVAL);
        assert_int_equal(fm_stat_t_cdf(NAN, 3.0, &p), -EINVAL);
        assert_true(p == SENTINEL);
}

/* ------------------------------------------------------------------------ */
/* Tests                                                                    */
/* ------------------------------------------------------------------------ */

static void test_ztest_2prop(void **state)
{
        struct fm_test_result t, copy;

        (void)state;
        /*
         * By hand: canary 30 errors in 200 (0.15), baseline 15 in 200 (0.075).
         * Pooled p = 45 / 400 = 0.1125; se = sqrt(0.1125 * 0.8875 * (1/200 + 1/200))
         * = sqrt(0.0009984375) = 0.0315980...; z = 0.075 / se = 2.37356;
         * one-sided p = 1 - Phi(2.37356) = 0.0088087, two-sided 0.0176174.
         */
        assert_int_equal(fm_stat_ztest_2prop(30, 200, 15, 200, &t), 0);
        assert_near(t.stat, 0.075 / sqrt(0.1125 * 0.8875 * 0.01), 1e-12);
        assert_near(t.stat, 2.3735633163877067, 1e-12);
        assert_rel(t.p_greater, 0.0088086861172594119, 1e-11);
        assert_rel(t.p_two_sided, 0.017617372234518824, 1e-11);
        assert_true(isinf(t.df));

        /* the other way round: same |z|, "1 > 2" is now implausible */
        assert_int_equal(fm_stat_ztest_2prop(15, 200, 30, 200, &t), 0);
        assert_near(t.stat, -2.3735633163877067, 1e-12);
        assert_near(t.p_greater, 1.0 - 0.0088086861172594119, 1e-12);
        assert_rel(t.p_two_sided, 0.017617372234518824, 1e-11);

        /* all zero or all one: equal rates */
        assert_int_equal(fm_stat_ztest_2prop(0, 100, 0, 50, &t), 0);
        assert_true(t.stat == 0.0 && t.p_greater == 0.5 && t.p_two_sided == 1.0);
        assert_int_equal(fm_stat_ztest_2prop(100, 100, 50, 50, &t), 0);
        assert_true(t.stat == 0.0 && t.p_greater == 0.5 && t.p_two_sided == 1.0);
        /* same rate, different sizes */
        assert_int_equal(fm_stat_ztest_2prop(10, 100, 50, 500, &t), 0);
        assert_near(t.stat, 0.0, 1e-15);

        memset(&t, 0xa5, sizeof(t));
        copy = t;
        assert_int_equal(fm_stat_ztest_2prop(0, 0, 1, 10, &t), -ENODATA);
        assert_int_equal(fm_stat_ztest_2prop(1, 10, 0, 0, &t), -ENODATA);
        assert_int_equal(fm_stat_ztest_2prop(11, 10, 1, 10, &t), -EINVAL);
        assert_int_equal(fm_stat_ztest_2prop(1, 10, 11, 10, &t), -EINVAL);
        assert_memory_equal(&t, &copy, sizeof(t));
}

static void test_welch(void **state)
{
        struct fm_test_result t, copy;
        struct fm_moments a = {.n = 10, .mean = 5.0, .var = 4.0};
        struct fm_moments b = {.n = 20, .mean = 3.5, .var = 1.0};
        struct fm_moments bad;

        (void)state;
        /*
         * va = 0.4, vb = 0.05: t = 1.5 / sqrt(0.45) = sqrt(5);
         * df = 0.45^2 / (0.4^2 / 9 + 0.05^2 / 19) = 11.306938775510204.
         */
        assert_int_equal(fm_stat_welch_t(&a, &b, &t), 0);
        assert_near(t.stat, sqrt(5.0), 1e-14);
        assert_near(t.df, 11.306938775510204, 1e-12);
        assert_rel(t.p_greater, 0.023200376611541779, 1e-11);
        assert_rel(t.p_two_sided, 0.046400753223083558, 1e-11);

        assert_int_equal(fm_stat_welch_t(&b, &a, &t), 0);
        assert_near(t.stat, -sqrt(5.0), 1e-14);
        assert_near(t.p_greater, 1.0 - 0.023200376611541779, 1e-11);

        /* one variance 0: df is the other sample's n - 1 */
        bad = b;
        bad.var = 0.0;
        assert_int_equal(fm_stat_welch_t(&a, &bad, &t), 0);
        assert_near(t.df, 9.0, 1e-12);

        memset(&t, 0xa5, sizeof(t));
        copy = t;
        bad = a;
        bad.n = 1;
        assert_int_equal(fm_stat_welch_t(&bad, &b, &t), -ENODATA);
        assert_int_equal(fm_stat_welch_t(&a, &bad, &t), -ENODATA);
        bad = a;
        bad.var = -1.0;
        assert_int_equal(fm_stat_welch_t(&bad, &b, &t), -EINVAL);
        bad.var = NAN;
        assert_int_equal(fm_stat_welch_t(&a, &bad, &t), -EINVAL);
        bad = a;
        bad.mean = INFINITY;
        assert_int_equal(fm_stat_welch_t(&bad, &b, &t), -EINVAL);
        bad.mean = NAN;
        assert_int_equal(fm_stat_welch_t(&a, &bad, &t), -EINVAL);
        /* no spread at all */
        struct fm_moments c1 = {.n = 5, .mean = 1.0, .var = 0.0};
        struct fm_moments c2 = {.n = 5, .mean = 2.0, .var = 0.0};
        assert_int_equal(fm_stat_welch_t(&c1, &c2, &t), -EDOM);
        /* the statistic overflows */
        struct fm_moments h1 = {.n = 5, .mean = 1e308, .var = 1e-300};
        struct fm_moments h2 = {.n = 5, .mean = -1e308, .var = 1e-300};
        assert_int_equal(fm_stat_welch_t(&h1, &h2, &t), -ERANGE);
        assert_memory_equal(&t, &copy, sizeof(t));
}

static void assert_sig(const bool *got, const bool *want, size_t m)
{
        for (size_t i = 0; i < m; i++)
                if (got[i] != want[i])
                        fail_msg("signal %zu: %d, want %d", i, got[i], want[i]);
}

static void test_holm_bonferroni(void **state)
{
        bool sig[8];

        (void)state;
        {
                /* Holm's later thresholds (0.025, 0.05) admit what Bonferroni's 0.0167 does not */
                const double p[3] = {0.024, 0.001, 0.02};
                const bool bonf[3] = {false, true, false};
                const bool holm[3] = {true, true, true};
                assert_int_equal(fm_stat_bonferroni(p, 3, 0.05, sig), 1);
                assert_sig(sig, bonf, 3);
                assert_int_equal(fm_stat_holm(p, 3, 0.05, sig), 3);
                assert_sig(sig, holm, 3);
        }
        {
                /*
                 * Step-down stops at the first failure: sorted 0.01 <= 0.0125,
                 * 0.013 <= 0.0167, 0.03 > 0.025 stop; 0.04 <= 0.05 is never reached.
                 */
                const double p[4] = {0.01, 0.04, 0.03, 0.013};
                const bool bonf[4] = {true, false, false, false};
                const bool holm[4] = {true, false, false, true};
                assert_int_equal(fm_stat_bonferroni(p, 4, 0.05, sig), 1);
                assert_sig(sig, bonf, 4);
                assert_int_equal(fm_stat_holm(p, 4, 0.05, sig), 2);
                assert_sig(sig, holm, 4);
        }
        {
                /* the smallest p fails: nothing, for either */
                const double p[3] = {0.5, 0.02, 0.03};
                const bool none[3] = {false, false, false};
                assert_int_equal(fm_stat_bonferroni(p, 3, 0.05, sig), 0);
                assert_sig(sig, none, 3);
                assert_int_equal(fm_stat_holm(p, 3, 0.05, sig), 0);
                assert_sig(sig, none, 3);
        }
        {
                /*
                 * On the threshold counts (0.1 / 4 is exactly 0.025); ties:
                 * 0.025 <= 0.025, 0.03 <= 0.0333, 0.03 <= 0.05, 0.9 > 0.1.
                 */
                const double p[4] = {0.025, 0.9, 0.03, 0.03};
                const bool bonf[4] = {true, false, false, false};
                const bool holm[4] = {true, false, true, true};
                assert_int_equal(fm_stat_bonferroni(p, 4, 0.1, sig), 1);
                assert_sig(sig, bonf, 4);
                assert_int_equal(fm_stat_holm(p, 4, 0.1, sig), 3);
                assert_sig(sig, holm, 4);
        }
        {
                /* one signal: both are the plain test */
                const double p[1] = {0.05};
                assert_int_equal(fm_stat_bonferroni(p, 1, 0.05, sig), 1);
                assert_int_equal(fm_stat_holm(p, 1, 0.05, sig), 1);
        }
}

static void test_holm_bonferroni_einval(void **state)
{
        const double ok[2] = {0.01, 0.2};
        const double neg[2] = {0.01, -0.1};
        const double over[2] = {1.1, 0.2};
        const double nan_[2] = {0.01, NAN};
        double many[FM_STAT_MAX_TESTS + 1];
        bool sig[FM_STAT_MAX_TESTS + 1];
        bool want[FM_STAT_MAX_TESTS + 1];
        int (*const fn[2])(const double *, size_t, double, bool *) = {fm_stat_bonferroni,
                                                                      fm_stat_holm};

        (void)state;
        for (size_t i = 0; i < ARRAY_SIZE(many); i++)
                many[i] = 0.0;
        for (size_t i = 0; i < ARRAY_SIZE(sig); i++)
                sig[i] = want[i] = true;

        for (size_t f = 0; f < 2; f++) {
                assert_int_equal(fn[f](many, FM_STAT_MAX_TESTS + 1, 0.05, sig), -EINVAL);
                assert_int_equal(fn[f](ok, 2, 0.0, sig), -EINVAL);
                assert_int_equal(fn[f](ok, 2, 1.0, sig), -EINVAL);
                assert_int_equal(fn[f](ok, 2, NAN, sig), -EINVAL);
                assert_int_equal(fn[f](neg, 2, 0.05, sig), -EINVAL);
                assert_int_equal(fn[f](over, 2, 0.05, sig), -EINVAL);
                assert_int_equal(fn[f](nan_, 2, 0.05, sig), -EINVAL);
                /* m == 0: nothing to test, nothing written */
                assert_int_equal(fn[f](NULL, 0, 0.05, sig), 0);
                assert_sig(sig, want, ARRAY_SIZE(sig));
                /* the cap itself, all p = 0 */
                assert_int_equal(fn[f](many, FM_STAT_MAX_TESTS, 0.05, sig), FM_STAT_MAX_TESTS);
        }
}

static void test_min_n(void **state)
{
        uint64_t n = 77;

        (void)state;
        /*
         * 10 % to 15 %, one-sided alpha 0.05, power 0.8:
         * (1.644854 * sqrt(2 * 0.125 * 0.875) + 0.841621 * sqrt(0.09 + 0.1275))^2 / 0.05^2
         * = 539.93, so 540 per group.
         */
        assert_int_equal(fm_stat_min_n_2prop(0.10, 0.15, 0.05, 0.8, &n), 0);
        assert_int_equal(n, 540);
        assert_int_equal(fm_stat_min_n_2prop(0.15, 0.10, 0.05, 0.8, &n), 0);
        assert_int_equal(n, 540);
        /* a tiny alpha still works (no 1 - alpha rounding to 1) */
        assert_int_equal(fm_stat_min_n_2prop(0.10, 0.15, 1e-20, 0.8, &n), 0);
        assert_true(n > 540);
        /* power below the level: no data needed */
        assert_int_equal(fm_stat_min_n_2prop(0.10, 0.15, 0.4, 0.1, &n), 0);
        assert_int_equal(n, 1);

        n = 77;
        assert_int_equal(fm_stat_min_n_2prop(0.5, 0.5 + 1e-15, 0.05, 0.8, &n), -ERANGE);
        assert_int_equal(fm_stat_min_n_2prop(0.0, 0.15, 0.05, 0.8, &n), -EINVAL);
        assert_int_equal(fm_stat_min_n_2prop(0.10, 1.0, 0.05, 0.8, &n), -EINVAL);
        assert_int_equal(fm_stat_min_n_2prop(NAN, 0.15, 0.05, 0.8, &n), -EINVAL);
        assert_int_equal(fm_stat_min_n_2prop(0.10, 0.10, 0.05, 0.8, &n), -EINVAL);
        assert_int_equal(fm_stat_min_n_2prop(0.10, 0.15, 0.0, 0.8, &n), -EINVAL);
        assert_int_equal(fm_stat_min_n_2prop(0.10, 0.15, 1.0, 0.8, &n), -EINVAL);
        assert_int_equal(fm_stat_min_n_2prop(0.10, 0.15, 0.05, 1.0, &n), -EINVAL);
        assert_int_equal(fm_stat_min_n_2prop(0.10, 0.15, 0.05, NAN, &n), -EINVAL);
        assert_int_equal(n, 77);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_zscore_warmup),
                cmocka_unit_test(test_zscore_zero_variance),
                cmocka_unit_test(test_zscore_gaussian),
                cmocka_unit_test(test_zscore_einval),
                cmocka_unit_test(test_ph_stationary_quiet),
                cmocka_unit_test(test_ph_step),
                cmocka_unit_test(test_ph_formula),
                cmocka_unit_test(test_ph_forgetting),
                cmocka_unit_test(test_ph_einval),
                cmocka_unit_test(test_cusum_formula),
                cmocka_unit_test(test_cusum_stationary_and_step),
                cmocka_unit_test(test_cusum_einval),
                cmocka_unit_test(test_burn_rate),
                cmocka_unit_test(test_burn_windows),
                cmocka_unit_test(test_burn_alert),
                cmocka_unit_test(test_psi_values),
                cmocka_unit_test(test_psi_errors),
                cmocka_unit_test(test_psi_rebin),
                cmocka_unit_test(test_psi_rebin_total),
                cmocka_unit_test(test_psi_rebin_einval),
                cmocka_unit_test(test_norm_cdf),
                cmocka_unit_test(test_norm_quantile),
                cmocka_unit_test(test_t_cdf),
                cmocka_unit_test(test_ztest_2prop),
                cmocka_unit_test(test_welch),
                cmocka_unit_test(test_holm_bonferroni),
                cmocka_unit_test(test_holm_bonferroni_einval),
                cmocka_unit_test(test_min_n),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
