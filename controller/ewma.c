/* SPDX-License-Identifier: MIT */

#include <math.h>

#include "ewma.h"

void fm_ewma_reset(struct fm_ewma *e)
{
        *e = (struct fm_ewma){
                .value = 0.0,
                .last = 0,
                .valid = false,
        };
}

/*
 * A sample taken dt after the previous one gets weight 1 - exp(-dt / tau).
 * Chaining updates multiplies the survival factors exp(-dt_i / tau), so
 * after a total time T the old value keeps exp(-T / tau) of its weight
 * however T was cut into samples: that is what makes tau a time constant
 * rather than a sample count.
 *
 * -expm1(-x) is used instead of 1 - exp(-x) because dt is often far smaller
 * than tau (1 ms against tens of seconds), where the subtraction would lose
 * most of its digits.
 *
 * A sample at or before the last one has no positive dt; it is counted as
 * 1 ms late so it still nudges the average a little (see ewma.h), and it
 * never moves `last` backwards, so the next in-order sample is weighted by
 * its distance from the newest sample seen.
 *
 * tau <= 0 is outside the contract; we treat it as "no memory": weight 1,
 * the limit of the formula as tau goes to 0.
 */
static double weight(fm_ms last, fm_ms t, fm_ms tau)
{
        double dt;

        if (tau <= 0)
                return 1.0;
        /* t - last can overflow int64; the unsigned difference is exact. */
        dt = t > last ? (double)((uint64_t)t - (uint64_t)last) : 1.0;
        return -expm1(-dt / (double)tau);
}

void fm_ewma_update(struct fm_ewma *e, double x, fm_ms t, fm_ms tau)
{
        double w, d;

        if (!isfinite(x))
                return;

        if (!e->valid) {
                e->value = x;
                e->last = t;
                e->valid = true;
                return;
        }

        w = weight(e->last, t, tau);
        d = x - e->value;
        if (w >= 1.0)
                e->value = x; /* exact, rather than value + (x - value) */
        else if (isfinite(d))
                e->value += w * d; /* a constant input stays exactly constant */
        else
                /* Opposite-signed values near DBL_MAX: the difference
                 * overflows but the convex blend cannot. */
                e->value = e->value * (1.0 - w) + x * w;

        if (t > e->last)
                e->last = t;
}
