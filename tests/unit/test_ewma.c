/* SPDX-License-Identifier: MIT */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "test_util.h"

#include <float.h>
#include <math.h>
#include <string.h>

#include "ewma.h"

#define EPS 1e-12

static void test_reset_and_first_sample(void **state)
{
        struct fm_ewma e;

        (void)state;
        memset(&e, 0xa5, sizeof(e));
        fm_ewma_reset(&e);
        assert_false(e.valid);

        /* the first sample sets the value whatever tau and t are */
        fm_ewma_update(&e, 42.5, 1000, 60000);
        assert_true(e.valid);
        assert_true(e.value == 42.5);
        assert_int_equal(e.last, 1000);

        fm_ewma_update(&e, 0.0, 2000, 60000);
        assert_true(e.value < 42.5);

        /* after a reset the next sample sets the value again */
        fm_ewma_reset(&e);
        assert_false(e.valid);
        fm_ewma_update(&e, -7.0, -5000, 1000);
        assert_true(e.valid);
        assert_true(e.value == -7.0);
        assert_int_equal(e.last, -5000);
}

static void test_weight_formula(void **state)
{
        struct fm_ewma e;
        double want;

        (void)state;
        fm_ewma_reset(&e);
        fm_ewma_update(&e, 0.0, 0, 1000);

        /* dt = 300, tau = 1000: weight 1 - exp(-0.3) */
        fm_ewma_update(&e, 10.0, 300, 1000);
        want = 10.0 * (1.0 - exp(-0.3));
        assert_near(e.value, want, EPS);
        assert_int_equal(e.last, 300);

        /* dt = 2000: weight 1 - exp(-2) towards the new sample */
        fm_ewma_update(&e, -4.0, 2300, 1000);
        want = want + (1.0 - exp(-2.0)) * (-4.0 - want);
        assert_near(e.value, want, EPS);
        assert_int_equal(e.last, 2300);

        /* dt = tau: the old value keeps exactly 1/e */
        fm_ewma_reset(&e);
        fm_ewma_update(&e, 1.0, 5000, 250);
        fm_ewma_update(&e, 0.0, 5250, 250);
        assert_near(e.value, exp(-1.0), EPS);
}

/* Small weights keep their precision (1 - exp(x) would lose digits). */
static void test_small_weight_precision(void **state)
{
        struct fm_ewma e;

        (void)state;
        fm_ewma_reset(&e);
        fm_ewma_update(&e, 0.0, 0, INT64_C(1000000000000));
        fm_ewma_update(&e, 1.0, 1, INT64_C(1000000000000));
        assert_true(e.value > 0.0);
        assert_near(e.value / 1e-12, 1.0, 1e-9);
}

/*
 * A step from 0 to 1 at t = 0, sampled every 1, 10, 100 or 250 ms, or at
 * irregular times: after tau the average is 1 - 1/e, after 3 tau 1 - 1/e^3,
 * whatever the rate, because the survival factors multiply to exp(-T/tau).
 */
static void test_rate_independence(void **state)
{
        static const fm_ms steps[] = {1, 10, 100, 250};
        const fm_ms tau = 1000;
        uint64_t s = 0x12345;

        (void)state;
        for (size_t i = 0; i <= ARRAY_SIZE(steps); i++) {
                struct fm_ewma e;
                fm_ms t = 0;

                fm_ewma_reset(&e);
                fm_ewma_update(&e, 0.0, 0, tau);
                for (int m = 1; m <= 3; m++) {
                        while (t < m * tau) {
                                fm_ms step;

                                if (i < ARRAY_SIZE(steps)) {
                                        step = steps[i];
                                } else {
                                        /* irregular: a small LCG, 1..199 ms */
                                        s = s * 6364136223846793005ull + 1442695040888963407ull;
                                        step = 1 + (fm_ms)((s >> 33) % 199);
                                }
                                if (t + step > m * tau)
                                        step = m * tau - t; /* land on m*tau */
                                t += step;
                                fm_ewma_update(&e, 1.0, t, tau);
                        }
                        assert_int_equal(t, m * tau);
                        assert_near(e.value, 1.0 - exp(-(double)m), 1e-9);
                }
        }
}

static void test_constant_input_is_exact(void **state)
{
        struct fm_ewma e;

        (void)state;
        fm_ewma_reset(&e);
        for (fm_ms t = 0; t < 100000; t += 37)
                fm_ewma_update(&e, 0.1, t, 5000);
        assert_true(e.value == 0.1);
}

static void test_out_of_order(void **state)
{
        const fm_ms tau = 1000;
        struct fm_ewma e;
        double w1 = 1.0 - exp(-1.0 / (double)tau);
        double want;

        (void)state;
        fm_ewma_reset(&e);
        fm_ewma_update(&e, 0.0, 1000, tau);

        /* older than last: weighted as if 1 ms late, last stays */
        fm_ewma_update(&e, 100.0, 500, tau);
        want = 100.0 * w1;
        assert_near(e.value, want, EPS);
        assert_int_equal(e.last, 1000);

        /* the same time as last gets the same 1 ms weight */
        fm_ewma_update(&e, 100.0, 1000, tau);
        want += w1 * (100.0 - want);
        assert_near(e.value, want, EPS);
        assert_int_equal(e.last, 1000);

        /* the next in-order sample is weighted from the newest one seen */
        fm_ewma_update(&e, 0.0, 1100, tau);
        want += (1.0 - exp(-0.1)) * (0.0 - want);
        assert_near(e.value, want, EPS);
        assert_int_equal(e.last, 1100);

        /* far in the past: still the small weight, never a large one */
        fm_ewma_update(&e, 1e6, INT64_MIN, tau);
        want += w1 * (1e6 - want);
        assert_near(e.value, want, 1e-9);
        assert_int_equal(e.last, 1100);
}

static void test_non_finite_ignored(void **state)
{
        struct fm_ewma e, before;

        (void)state;
        fm_ewma_reset(&e);
        fm_ewma_update(&e, NAN, 10, 1000);
        fm_ewma_update(&e, INFINITY, 10, 1000);
        fm_ewma_update(&e, -INFINITY, 10, 1000);
        assert_false(e.valid);

        fm_ewma_update(&e, 3.0, 100, 1000);
        before = e;
        fm_ewma_update(&e, NAN, 200, 1000);
        fm_ewma_update(&e, INFINITY, 300, 1000);
        fm_ewma_update(&e, -INFINITY, 400, 1000);
        assert_true(e.valid);
        assert_true(e.value == before.value);
        assert_int_equal(e.last, before.last); /* a rejected sample moves no time */
}

static void test_large_gaps_and_values(void **state)
{
        struct fm_ewma e;

        (void)state;
        /* a gap much longer than tau: weight 1, the value is the sample */
        fm_ewma_reset(&e);
        fm_ewma_update(&e, 5.0, 0, 10);
        fm_ewma_update(&e, 0.3, 100000, 10);
        assert_true(e.value == 0.3);

        /* the whole int64 range as dt does not overflow */
        fm_ewma_reset(&e);
        fm_ewma_update(&e, 1.0, INT64_MIN, 1000);
        fm_ewma_update(&e, 2.0, INT64_MAX, 1000);
        assert_true(e.value == 2.0);
        assert_int_equal(e.last, INT64_MAX);

        /* opposite extremes stay finite */
        fm_ewma_reset(&e);
        fm_ewma_update(&e, -DBL_MAX, 0, 1000);
        fm_ewma_update(&e, DBL_MAX, 500, 1000);
        assert_true(isfinite(e.value));
        assert_true(e.value > -DBL_MAX && e.value < DBL_MAX);
}

static void test_tau_not_positive(void **state)
{
        struct fm_ewma e;

        (void)state;
        fm_ewma_reset(&e);
        fm_ewma_update(&e, 1.0, 0, 0);
        fm_ewma_update(&e, 2.0, 1, 0);
        assert_true(e.value == 2.0);
        fm_ewma_update(&e, 3.0, 1, -5);
        assert_true(e.value == 3.0);
        /* weight 1 applies to a late sample too; last does not move back */
        fm_ewma_update(&e, 4.0, -100, 0);
        assert_true(e.value == 4.0);
        assert_int_equal(e.last, 1);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_reset_and_first_sample),
                cmocka_unit_test(test_weight_formula),
                cmocka_unit_test(test_small_weight_precision),
                cmocka_unit_test(test_rate_independence),
                cmocka_unit_test(test_constant_input_is_exact),
                cmocka_unit_test(test_out_of_order),
                cmocka_unit_test(test_non_finite_ignored),
                cmocka_unit_test(test_large_gaps_and_values),
                cmocka_unit_test(test_tau_not_positive),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
