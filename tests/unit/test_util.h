/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Double comparisons for the cmocka tests. cmocka 1.1's assert_float_equal
 * and assert_near compare in float precision, far too coarse for these
 * checks. Include after <cmocka.h>.
 */

#include <math.h>

/* |a - b| <= eps; equal values (infinities too) are near. */
#define assert_near(a, b, eps)                                                                     \
        do {                                                                                       \
                double a_ = (a), b_ = (b);                                                         \
                if (!(a_ == b_ || fabs(a_ - b_) <= (eps)))                                         \
                        fail_msg("%s = %.17g, want %.17g (eps %g)", #a, a_, b_, (double)(eps));    \
        } while (0)

/* Relative tolerance rel, with 1 as the smallest scale (so values near 0 compare absolutely). */
static inline void fm_test_close_at(double got, double want, double rel, const char *what,
                                    const char *file, int line)
{
        double tol = rel * fmax(1.0, fmax(fabs(got), fabs(want)));

        if (!(fabs(got - want) <= tol))
                fail_msg("%s:%d: %s = %.17g, expected %.17g", file, line, what, got, want);
}

/* got == want within 1e-9 relative. */
#define assert_double_close(got, want)                                                             \
        fm_test_close_at((got), (want), 1e-9, #got, __FILE__, __LINE__)
