/* SPDX-License-Identifier: MIT */

#include <errno.h>
#include <math.h>

#include "detect.h"

#define SQRT1_2 0.70710678118654752440 /* 1 / sqrt(2) */

static bool in_open_unit(double v)
{
        return v > 0.0 && v < 1.0; /* false for NaN */
}

/* ------------------------------------------------------------------------ */
/* EW mean, variance and z-score                                            */
/* ------------------------------------------------------------------------ */

int fm_zscore_init(struct fm_zscore *z, double alpha, uint32_t warmup, double min_sd)
{
        if (!in_open_unit(alpha) || warmup < 2 || !isfinite(min_sd) || min_sd < 0.0)
                return -EINVAL;

        *z = (struct fm_zscore){
                .alpha = alpha,
                .min_sd = min_sd,
                .warmup = warmup,
        };
        return 0;
}

void fm_zscore_reset(struct fm_zscore *z)
{
        z->n = 0;
        z->mean = 0.0;
        z->var = 0.0;
}

double fm_zscore_stddev(const struct fm_zscore *z)
{
        return sqrt(z->var);
}

static double score(const struct fm_zscore *z, double x)
{
        double d = x - z->mean;
        double den = fmax(sqrt(z->var), z->min_sd);

        if (den == 0.0)
                return d == 0.0 ? 0.0 : copysign(INFINITY, d);
        return d / den;
}

/*
 * The score is taken before x is absorbed: a sample must not vouch for
 * itself, or a large outlier would inflate the variance it is judged by.
 * The new state is computed aside and committed only when it is finite, so
 * one absurd sample cannot leave the tracker at Inf or NaN for good.
 */
int fm_zscore_update(struct fm_zscore *z, double x, double *ret_z)
{
        double mean, var, s = 0.0;
        bool scored;

        if (!isfinite(x))
                return -EINVAL;

        scored = z->n >= z->warmup;
        if (scored)
                s = score(z, x);

        if (z->n == 0) {
                mean = x;
                var = 0.0;
        } else {
                double d = x - z->mean;

                mean = z->mean + z->alpha * d;
                var = (1.0 - z->alpha) * (z->var + z->alpha * d * d);
                if (!isfinite(mean) || !isfinite(var))
                        return -ERANGE;
        }

        z->mean = mean;
        z->var = var;
        if (z->n < UINT64_MAX)
                z->n++;

        if (!scored)
                return 0;
        if (ret_z)
                *ret_z = s;
        return 1;
}

/* ------------------------------------------------------------------------ */
/* Page-Hinkley                                                             */
/* ------------------------------------------------------------------------ */

static bool valid_dir(enum fm_change_dir d)
{
        return d == FM_CHANGE_UP || d == FM_CHANGE_DOWN || d == FM_CHANGE_BOTH;
}

int fm_ph_init(struct fm_ph *ph, const struct fm_ph_params *p)
{
        if (!isfinite(p->delta) || p->delta < 0.0 || !isfinite(p->lambda) || p->lambda <= 0.0 ||
            !(p->alpha > 0.0 && p->alpha <= 1.0) || !valid_dir(p->dir))
                return -EINVAL;

        *ph = (struct fm_ph){.p = *p};
        return 0;
}

void fm_ph_reset(struct fm_ph *ph)
{
        ph->n = 0;
        ph->mean = 0.0;
        ph->up = ph->up_min = 0.0;
        ph->down = ph->down_max = 0.0;
}

static double ph_up(const struct fm_ph *ph)
{
        return (ph->p.dir & FM_CHANGE_UP) ? ph->up - ph->up_min : 0.0;
}

static double ph_down(const struct fm_ph *ph)
{
        return (ph->p.dir & FM_CHANGE_DOWN) ? ph->down_max - ph->down : 0.0;
}

double fm_ph_statistic(const struct fm_ph *ph)
{
        return fmax(ph_up(ph), ph_down(ph));
}

/*
 * Both sums are kept whatever the direction watched: they cost two
 * additions, and keeping them makes the state the same for every
 * direction, which keeps the code one path.
 *
 * The minimum and maximum start from the reset value 0. That is still
 * Hinkley's min over t = 1..T: on the first sample the mean is that sample,
 * so U_1 = -delta <= 0 and L_1 = delta >= 0, and the statistic is 0 after
 * one sample.
 */
int fm_ph_update(struct fm_ph *ph, double x)
{
        double mean, dev, up, down, up_min, down_max, su, sd;
        uint64_t n;

        if (!isfinite(x))
                return -EINVAL;

        n = ph->n < UINT64_MAX ? ph->n + 1 : ph->n;
        mean = ph->mean + (x - ph->mean) / (double)n;
        dev = x - mean;
        up = ph->p.alpha * ph->up + dev - ph->p.delta;
        down = ph->p.alpha * ph->down + dev + ph->p.delta;
        up_min = fmin(ph->up_min, up);
        down_max = fmax(ph->down_max, down);
        if (!isfinite(mean) || !isfinite(up) || !isfinite(down) || !isfinite(up - up_min) ||
            !isfinite(down_max - down))
                return -ERANGE;

        ph->n = n;
        ph->mean = mean;
        ph->up = up;
        ph->down = down;
        ph->up_min = up_min;
        ph->down_max = down_max;

        if (n < ph->p.min_samples)
                return 0;

        su = ph_up(ph);
        sd = ph_down(ph);
        if (!(su > ph->p.lambda) && !(sd > ph->p.lambda))
                return 0;

        ph->last = (struct fm_change){
                .stat = fmax(su, sd),
                .dir = su >= sd ? +1 : -1,
                .n = n,
        };
        ph->alarms++;
        fm_ph_reset(ph);
        return 1;
}

/* ------------------------------------------------------------------------ */
/* CUSUM                                                                    */
/* ------------------------------------------------------------------------ */

int fm_cusum_init(struct fm_cusum *c, const struct fm_cusum_params *p)
{
        if (!isfinite(p->target) || !isfinite(p->sigma) || p->sigma <= 0.0 || !isfinite(p->k) ||
            p->k < 0.0 || !isfinite(p->h) || p->h <= 0.0)
                return -EINVAL;

        *c = (struct fm_cusum){.p = *p};
        return 0;
}

void fm_cusum_reset(struct fm_cusum *c)
{
        c->n = 0;
        c->hi = c->lo = 0.0;
}

double fm_cusum_statistic(const struct fm_cusum *c)
{
        return fmax(c->hi, c->lo);
}

/*
 * Between updates both sums are at most h (a larger one raises an alarm and
 * is zeroed), so they stay finite; only z itself can overflow, for a finite
 * x absurdly far from the target, and then the alarm carries +Inf.
 */
int fm_cusum_update(struct fm_cusum *c, double x)
{
        double z;

        if (!isfinite(x))
                return -EINVAL;

        z = (x - c->p.target) / c->p.sigma;
        c->hi = fmax(0.0, c->hi + z - c->p.k);
        c->lo = fmax(0.0, c->lo - z - c->p.k);
        if (c->n < UINT64_MAX)
                c->n++;

        if (!(c->hi > c->p.h) && !(c->lo > c->p.h))
                return 0;

        c->last = (struct fm_change){
                .stat = fmax(c->hi, c->lo),
                .dir = c->hi >= c->lo ? +1 : -1,
                .n = c->n,
        };
        c->alarms++;
        fm_cusum_reset(c);
        return 1;
}

/* ------------------------------------------------------------------------ */
/* SLO burn rate                                                            */
/* ------------------------------------------------------------------------ */

int fm_burn_rate(double bad, double total, double slo_target, double *ret_rate)
{
        if (!in_open_unit(slo_target) || !isfinite(bad) || !isfinite(total) || bad < 0.0 ||
            total < 0.0 || bad > total)
                return -EINVAL;

        *ret_rate = total == 0.0 ? 0.0 : (bad / total) / (1.0 - slo_target);
        return 0;
}

static const struct fm_burn_window workbook[FM_BURN_WINDOWS] = {
        {.long_ms = 3600 * FM_MS_PER_S, .short_ms = 300 * FM_MS_PER_S, .factor = 14.4},
        {.long_ms = 6 * 3600 * FM_MS_PER_S, .short_ms = 1800 * FM_MS_PER_S, .factor = 6.0},
};

/* base * period / 30 d, rounded half up; no overflow: 6 h * 366 d < 2^63 ms^2. */
static fm_ms scale(fm_ms base, fm_ms period)
{
        return (base * period + FM_BURN_WORKBOOK_PERIOD_MS / 2) / FM_BURN_WORKBOOK_PERIOD_MS;
}

int fm_burn_windows_scaled(fm_ms period_ms, struct fm_burn_window ret[FM_BURN_WINDOWS])
{
        struct fm_burn_window w[FM_BURN_WINDOWS];

        if (period_ms <= 0 || period_ms > FM_BURN_PERIOD_MAX_MS)
                return -EINVAL;

        for (size_t i = 0; i < FM_BURN_WINDOWS; i++) {
                w[i] = (struct fm_burn_window){
                        .long_ms = scale(workbook[i].long_ms, period_ms),
                        .short_ms = scale(workbook[i].short_ms, period_ms),
                        .factor = workbook[i].factor,
                };
                if (w[i].short_ms <= 0)
                        return -EINVAL;
        }

        for (size_t i = 0; i < FM_BURN_WINDOWS; i++)
                ret[i] = w[i];
        return 0;
}

bool fm_burn_alert(const struct fm_burn_window *w, double long_rate, double short_rate)
{
        return long_rate > w->factor && short_rate > w->factor;
}

/* ------------------------------------------------------------------------ */
/* Population stability index                                               */
/* ------------------------------------------------------------------------ */

/* Sums counts[0..n-1]: 0, -EINVAL (negative or non-finite count), -ERANGE (overflow). */
static int total_of(const double *counts, size_t n, double *ret)
{
        double s = 0.0;

        for (size_t i = 0; i < n; i++) {
                if (!isfinite(counts[i]) || counts[i] < 0.0)
                        return -EINVAL;
                s += counts[i];
        }
        if (!isfinite(s))
                return -ERANGE;
        *ret = s;
        return 0;
}

/* Sum of the floored proportions, to renormalise them. */
static double floored_sum(const double *counts, size_t n, double total)
{
        double s = 0.0;

        for (size_t i = 0; i < n; i++)
                s += fmax(counts[i] / total, FM_PSI_EPSILON);
        return s;
}

int fm_psi_compute(const double *expected, const double *actual, size_t n, double min_total,
                   double *ret_psi)
{
        double te, ta, se, sa, psi = 0.0;
        int r;

        if (n == 0 || n > FM_PSI_MAX_BINS || !isfinite(min_total) || min_total < 0.0)
                return -EINVAL;
        r = total_of(expected, n, &te);
        if (r < 0)
                return r;
        r = total_of(actual, n, &ta);
        if (r < 0)
                return r;
        if (te == 0.0 || ta == 0.0 || te < min_total || ta < min_total)
                return -ENODATA;

        se = floored_sum(expected, n, te);
        sa = floored_sum(actual, n, ta);
        for (size_t i = 0; i < n; i++) {
                double e = fmax(expected[i] / te, FM_PSI_EPSILON) / se;
                double a = fmax(actual[i] / ta, FM_PSI_EPSILON) / sa;

                psi += (a - e) * log(a / e);
        }

        /* Each term is >= 0 in exact arithmetic; rounding must not make the sum negative. */
        *ret_psi = fmax(psi, 0.0);
        return 0;
}

/* Left edge of output bin j; j == m is hi exactly. */
static double edge(double lo, double hi, size_t m, size_t j)
{
        return j >= m ? hi : lo + (hi - lo) * ((double)j / (double)m);
}

/*
 * Spreads mass uniformly over [a, b] (a < b) onto m equal bins over
 * [lo, hi]; whatever falls outside the range goes to the end bins.
 */
static void spread(double *out, size_t m, double lo, double hi, double a, double b, double mass)
{
        double w = b - a, ia = fmax(a, lo), ib = fmin(b, hi);
        size_t j;

        if (a < lo)
                out[0] += mass * ((fmin(b, lo) - a) / w);
        if (b > hi)
                out[m - 1] += mass * ((b - fmax(a, hi)) / w);
        if (!(ia < ib))
                return;

        j = (size_t)((ia - lo) / (hi - lo) * (double)m);
        if (j >= m)
                j = m - 1;
        while (j > 0 && edge(lo, hi, m, j) > ia) /* rounding in the division above */
                j--;
        for (; j < m; j++) {
                double e0 = edge(lo, hi, m, j), e1 = edge(lo, hi, m, j + 1), ov;

                if (e0 >= ib)
                        break;
                ov = fmin(ib, e1) - fmax(ia, e0);
                if (ov > 0.0)
                        out[j] += mass * (ov / w);
        }
}

int fm_psi_rebin(const double *bound, size_t n_bounds, const uint64_t *count, double lo, double hi,
                 size_t n_bins, double *ret_bins)
{
        size_t nb = n_bounds, m = n_bins;

        if (nb == 0 || nb > FM_PSI_MAX_BINS || m == 0 || m > FM_PSI_MAX_BINS || !isfinite(lo) ||
            !isfinite(hi) || !(lo < hi))
                return -EINVAL;
        for (size_t i = 0; i < nb; i++)
                if (!isfinite(bound[i]) || (i > 0 && !(bound[i] > bound[i - 1])))
                        return -EINVAL;
        /* Every difference taken below lies within this span. */
        if (!isfinite(fmax(bound[nb - 1], hi) - fmin(bound[0], lo)))
                return -EINVAL;

        for (size_t j = 0; j < m; j++)
                ret_bins[j] = 0.0;

        if (count[0] > 0) {
                if (lo < bound[0])
                        spread(ret_bins, m, lo, hi, lo, bound[0], (double)count[0]);
                else
                        ret_bins[0] += (double)count[0];
        }
        for (size_t i = 1; i < nb; i++)
                if (count[i] > 0)
                        spread(ret_bins, m, lo, hi, bound[i - 1], bound[i], (double)count[i]);
        if (count[nb] > 0) {
                if (bound[nb - 1] < hi)
                        spread(ret_bins, m, lo, hi, bound[nb - 1], hi, (double)count[nb]);
                else
                        ret_bins[m - 1] += (double)count[nb];
        }
        return 0;
}

/* ------------------------------------------------------------------------ */
/* Normal distribution                                                      */
/* ------------------------------------------------------------------------ */

double fm_stat_norm_cdf(double x)
{
        return 0.5 * erfc(-x * SQRT1_2);
}

double fm_stat_norm_sf(double x)
{
        return 0.5 * erfc(x * SQRT1_2);
}

static double poly7(const double c[8], double x)
{
        double v = c[7];

        for (int i = 6; i >= 0; i--)
                v = v * x + c[i];
        return v;
}

/*
 * Wichura's AS 241 (PPND16): three rational approximations of degree 7, one
 * for the centre (|p - 0.5| <= 0.425) and two for the tails in
 * r = sqrt(-ln(min(p, 1 - p))), split at r = 5 (p about 1.4e-11).
 * Coefficients as published, lowest degree first.
 */
int fm_stat_norm_quantile(double p, double *ret_x)
{
        static const double a[8] = {
                3.3871328727963666080e0,  1.3314166789178437745e+2, 1.9715909503065514427e+3,
                1.3731693765509461125e+4, 4.5921953931549871457e+4, 6.7265770927008700853e+4,
                3.3430575583588128105e+4, 2.5090809287301226727e+3,
        };
        static const double b[8] = {
                1.0,
                4.2313330701600911252e+1,
                6.8718700749205790830e+2,
                5.3941960214247511077e+3,
                2.1213794301586595867e+4,
                3.9307895800092710610e+4,
                2.8729085735721942674e+4,
                5.2264952788528545610e+3,
        };
        static const double c[8] = {
                1.42343711074968357734e0,  4.63033784615654529590e0,  5.76949722146069140550e0,
                3.64784832476320460504e0,  1.27045825245236838258e0,  2.41780725177450611770e-1,
                2.27238449892691845833e-2, 7.74545014278341407640e-4,
        };
        static const double d[8] = {
                1.0,
                2.05319162663775882187e0,
                1.67638483018380384940e0,
                6.89767334985100004550e-1,
                1.48103976427480074590e-1,
                1.51986665636164571966e-2,
                5.47593808499534494600e-4,
                1.05075007164441684324e-9,
        };
        static const double e[8] = {
                6.65790464350110377720e0,  5.46378491116411436990e0,  1.78482653991729133580e0,
                2.96560571828504891230e-1, 2.65321895265761230930e-2, 1.24266094738807843860e-3,
                2.71155556874348757815e-5, 2.01033439929228813265e-7,
        };
        static const double f[8] = {
                1.0,
                5.99832206555887937690e-1,
                1.36929880922735805310e-1,
                1.48753612908506148525e-2,
                7.86869131145613259100e-4,
                1.84631831751005468180e-5,
                1.42151175831644588870e-7,
                2.04426310338993978564e-15,
        };
        double q, r, x;

        if (!in_open_unit(p))
                return -EINVAL;

        q = p - 0.5;
        if (fabs(q) <= 0.425) {
                r = 0.180625 - q * q;
                *ret_x = q * poly7(a, r) / poly7(b, r);
                return 0;
        }

        r = sqrt(-log(q < 0.0 ? p : 1.0 - p));
        if (r <= 5.0) {
                r -= 1.6;
                x = poly7(c, r) / poly7(d, r);
        } else {
                r -= 5.0;
                x = poly7(e, r) / poly7(f, r);
        }
        *ret_x = q < 0.0 ? -x : x;
        return 0;
}

/* ------------------------------------------------------------------------ */
/* Student's t                                                              */
/* ------------------------------------------------------------------------ */

#define CF_MAX_ITER 10000
#define CF_EPS 1e-15
#define CF_TINY 1e-300

/*
 * Continued fraction of the incomplete beta function, evaluated by the
 * modified Lentz method (Numerical Recipes, 6.4). It converges quickly for
 * x < (a + 1) / (a + b + 2); the caller swaps a and b otherwise. The
 * number of terms grows like sqrt(max(a, b)) near that point, far under
 * CF_MAX_ITER for any df we meet.
 */
static double betacf(double a, double b, double x)
{
        double qab = a + b, qap = a + 1.0, qam = a - 1.0;
        double c = 1.0, d = 1.0 - qab * x / qap, h;

        if (fabs(d) < CF_TINY)
                d = CF_TINY;
        d = 1.0 / d;
        h = d;
        for (int i = 1; i <= CF_MAX_ITER; i++) {
                double m = i, m2 = 2.0 * m, aa, del;

                aa = m * (b - m) * x / ((qam + m2) * (a + m2));
                d = 1.0 + aa * d;
                if (fabs(d) < CF_TINY)
                        d = CF_TINY;
                c = 1.0 + aa / c;
                if (fabs(c) < CF_TINY)
                        c = CF_TINY;
                d = 1.0 / d;
                h *= d * c;

                aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
                d = 1.0 + aa * d;
                if (fabs(d) < CF_TINY)
                        d = CF_TINY;
                c = 1.0 + aa / c;
                if (fabs(c) < CF_TINY)
                        c = CF_TINY;
                d = 1.0 / d;
                del = d * c;
                h *= del;
                if (fabs(del - 1.0) < CF_EPS)
                        break;
        }
        return h;
}

/*
 * Regularised incomplete beta I_x(a, b) with y = 1 - x and their logs
 * passed in, computed by the caller without cancellation. lgamma_r rather
 * than lgamma: lgamma writes the global signgam.
 */
static double ibeta(double a, double b, double x, double y, double lx, double ly)
{
        int sg;
        double lbeta = lgamma_r(a, &sg) + lgamma_r(b, &sg) - lgamma_r(a + b, &sg);
        double front = exp(a * lx + b * ly - lbeta);

        if (x < (a + 1.0) / (a + b + 2.0))
                return front * betacf(a, b, x) / a;
        return 1.0 - front * betacf(b, a, y) / b;
}

/*
 * P(T > |t|) = I_x(df / 2, 1 / 2) / 2 with x = df / (df + t^2). With
 * r = t^2 / df: x = 1 / (1 + r) and y = 1 - x = r / (1 + r), so both and
 * their logs come from r and log1p without subtracting nearby numbers.
 */
static double t_tail(double t, double df)
{
        double u = fabs(t) / sqrt(df), r = u * u, x, y, lx, ly;

        if (isinf(u))
                return 0.0;
        if (r == 0.0)
                return 0.5;
        if (isfinite(r)) {
                x = 1.0 / (1.0 + r);
                y = r / (1.0 + r);
                lx = -log1p(r);
                ly = r > 1.0 ? -log1p(1.0 / r) : log(r) - log1p(r);
        } else {
                /* |t| / sqrt(df) above 1e154: log1p(r) is log(r) to the last bit. */
                lx = -2.0 * log(u);
                x = exp(lx);
                y = 1.0;
                ly = 0.0;
        }
        return 0.5 * ibeta(0.5 * df, 0.5, x, y, lx, ly);
}

int fm_stat_t_cdf(double t, double df, double *ret_p)
{
        double tail;

        if (isnan(t) || !isfinite(df) || df <= 0.0)
                return -EINVAL;

        tail = t_tail(t, df);
        *ret_p = t < 0.0 ? tail : 1.0 - tail;
        return 0;
}

/* ------------------------------------------------------------------------ */
/* Two-sample tests                                                         */
/* ------------------------------------------------------------------------ */

int fm_stat_ztest_2prop(uint64_t x1, uint64_t n1, uint64_t x2, uint64_t n2,
                        struct fm_test_result *ret)
{
        double p1, p2, pool, var, z = 0.0;

        if (n1 == 0 || n2 == 0)
                return -ENODATA;
        if (x1 > n1 || x2 > n2)
                return -EINVAL;

        /*
         * All successes or all failures: the rates are equal and the pooled
         * variance is 0. Decided on the integers, not on a pooled rate that
         * rounding may leave a hair away from 0 or 1.
         */
        if (!((x1 == 0 && x2 == 0) || (x1 == n1 && x2 == n2))) {
                p1 = (double)x1 / (double)n1;
                p2 = (double)x2 / (double)n2;
                pool = ((double)x1 + (double)x2) / ((double)n1 + (double)n2);
                var = pool * (1.0 - pool) * (1.0 / (double)n1 + 1.0 / (double)n2);
                z = (p1 - p2) / sqrt(var);
        }

        *ret = (struct fm_test_result){
                .stat = z,
                .df = INFINITY,
                .p_greater = fm_stat_norm_sf(z),
                .p_two_sided = erfc(fabs(z) * SQRT1_2),
        };
        return 0;
}

static bool valid_moments(const struct fm_moments *m)
{
        return isfinite(m->mean) && isfinite(m->var) && m->var >= 0.0;
}

/*
 * The Welch-Satterthwaite df is (va + vb)^2 / (va^2 / (na - 1) + vb^2 / (nb - 1))
 * with va = var_a / na. Written with the shares va / (va + vb), which lie
 * in [0, 1], it cannot underflow or overflow for tiny or huge variances.
 */
int fm_stat_welch_t(const struct fm_moments *a, const struct fm_moments *b,
                    struct fm_test_result *ret)
{
        double va, vb, se2, ra, rb, t, df, tail;

        if (a->n < 2 || b->n < 2)
                return -ENODATA;
        if (!valid_moments(a) || !valid_moments(b))
                return -EINVAL;

        va = a->var / (double)a->n;
        vb = b->var / (double)b->n;
        se2 = va + vb;
        if (se2 == 0.0)
                return -EDOM;
        if (!isfinite(se2))
                return -ERANGE;

        t = (a->mean - b->mean) / sqrt(se2);
        ra = va / se2;
        rb = vb / se2;
        df = 1.0 / (ra * ra / (double)(a->n - 1) + rb * rb / (double)(b->n - 1));
        if (!isfinite(t) || !isfinite(df))
                return -ERANGE;

        tail = t_tail(t, df);
        *ret = (struct fm_test_result){
                .stat = t,
                .df = df,
                .p_greater = t > 0.0 ? tail : 1.0 - tail,
                .p_two_sided = 2.0 * tail,
        };
        return 0;
}

/* ------------------------------------------------------------------------ */
/* Multiple comparisons                                                     */
/* ------------------------------------------------------------------------ */

static int check_pvalues(const double *p, size_t m, double alpha)
{
        if (m > FM_STAT_MAX_TESTS || !in_open_unit(alpha))
                return -EINVAL;
        for (size_t i = 0; i < m; i++)
                if (!(p[i] >= 0.0 && p[i] <= 1.0))
                        return -EINVAL;
        return 0;
}

int fm_stat_bonferroni(const double *p, size_t m, double alpha, bool *ret_sig)
{
        int r = check_pvalues(p, m, alpha), k = 0;

        if (r < 0)
                return r;
        for (size_t i = 0; i < m; i++) {
                ret_sig[i] = p[i] <= alpha / (double)m;
                k += ret_sig[i];
        }
        return k;
}

/*
 * Holm's step-down: the order is found with an insertion sort of indices
 * (m <= 64, no allocation); it is stable, so tied p-values keep their
 * input order, which does not change the outcome.
 */
int fm_stat_holm(const double *p, size_t m, double alpha, bool *ret_sig)
{
        size_t idx[FM_STAT_MAX_TESTS];
        int r = check_pvalues(p, m, alpha), k = 0;

        if (r < 0)
                return r;

        for (size_t i = 0; i < m; i++) {
                size_t j = i;

                while (j > 0 && p[idx[j - 1]] > p[i]) {
                        idx[j] = idx[j - 1];
                        j--;
                }
                idx[j] = i;
        }

        for (size_t i = 0; i < m; i++)
                ret_sig[i] = false;
        for (size_t i = 0; i < m; i++) {
                if (!(p[idx[i]] <= alpha / (double)(m - i)))
                        break;
                ret_sig[idx[i]] = true;
                k++;
        }
        return k;
}

/* ------------------------------------------------------------------------ */
/* Sample size                                                              */
/* ------------------------------------------------------------------------ */

int fm_stat_min_n_2prop(double p_base, double p_alt, double alpha, double power, uint64_t *ret_n)
{
        double za, zb, pbar, s0, s1, num, n;
        int r;

        if (!in_open_unit(p_base) || !in_open_unit(p_alt) || !in_open_unit(alpha) ||
            !in_open_unit(power) || p_base == p_alt)
                return -EINVAL;

        /* z_{1-alpha} as -z_alpha: 1 - alpha would round to 1 for tiny alpha. */
        r = fm_stat_norm_quantile(alpha, &za);
        if (r < 0)
                return r;
        za = -za;
        r = fm_stat_norm_quantile(power, &zb);
        if (r < 0)
                return r;

        pbar = 0.5 * (p_base + p_alt);
        s0 = sqrt(2.0 * pbar * (1.0 - pbar));
        s1 = sqrt(p_base * (1.0 - p_base) + p_alt * (1.0 - p_alt));
        num = za * s0 + zb * s1;
        /* A power at or below the level needs no data at all; one sample is the floor. */
        if (num <= 0.0) {
                *ret_n = 1;
                return 0;
        }
        n = ceil(num * num / ((p_alt - p_base) * (p_alt - p_base)));
        if (!(n < 18446744073709551616.0)) /* 2^64 */
                return -ERANGE;
        *ret_n = n < 1.0 ? 1 : (uint64_t)n;
        return 0;
}
