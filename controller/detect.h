/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Shared statistical detectors for the policies and alerts:
 *
 *   fm_zscore_*  exponentially weighted mean and variance, z-score of a sample
 *   fm_ph_*      Page-Hinkley change detection
 *   fm_cusum_*   two-sided tabular CUSUM
 *   fm_burn_*    SLO burn rates and the SRE workbook's multi-window alerts
 *   fm_psi_*     population stability index between two histograms
 *   fm_stat_*    normal and Student t distributions, two-sample tests,
 *                Bonferroni and Holm corrections, sample sizes
 *
 * One module rather than six because they are small, share conventions and
 * are used together; each family keeps its own prefix so a reader can tell
 * them apart. All of it is pure: no allocation, no I/O, no clock, no
 * randomness, no globals. State lives in structs the caller owns; the
 * struct fields are public so that policies can copy them into evidence,
 * but only the functions here should write them.
 *
 * Conventions: functions that can fail return 0 or a positive value on
 * success and a negative errno on failure. ret_* parameters are written
 * only on success. An _init that fails leaves its struct untouched.
 * -EINVAL means a parameter or input outside the documented domain (NaN is
 * always outside it); -ENODATA means too little data to answer; -ERANGE
 * means the answer (or the state it would lead to) is not representable.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

/* ------------------------------------------------------------------------ */
/* EW mean, variance and z-score                                            */
/* ------------------------------------------------------------------------ */

/*
 * West's (1979) incremental weighted variance in the exponentially weighted
 * form given by Finch ("Incremental calculation of weighted mean and
 * variance", 2009), per sample x:
 *
 *     d = x - mean;  mean += alpha * d;  var = (1 - alpha) * (var + alpha * d * d)
 *
 * The first sample sets mean = x, var = 0. The variance starts at 0 and
 * needs a few 1 / alpha samples to settle, hence the warm-up: no z-score is
 * given until `warmup` samples have been absorbed. About 2 / alpha is a
 * sensible warm-up (alpha = 0.05: 40 samples).
 */
struct fm_zscore {
        double alpha;    /* weight of the newest sample, in (0, 1) */
        double min_sd;   /* floor under the standard deviation, >= 0, units of x */
        uint32_t warmup; /* samples absorbed before the first z-score, >= 2 */
        uint64_t n;      /* samples absorbed since the last reset (saturates) */
        double mean;     /* EW mean, units of x; 0 while n == 0 */
        double var;      /* EW variance, units of x squared; 0 while n < 2 */
};

/*
 * Sets up an empty tracker. min_sd keeps a series that has been constant
 * (var == 0) from turning the first different sample into an infinite
 * z-score; 0 disables the floor.
 * Returns 0, or -EINVAL (z untouched) when alpha is not in (0, 1),
 * warmup < 2, or min_sd is negative or not finite.
 */
int fm_zscore_init(struct fm_zscore *z, double alpha, uint32_t warmup, double min_sd);

/* Forgets every sample; keeps alpha, warmup and min_sd. */
void fm_zscore_reset(struct fm_zscore *z);

/*
 * Scores x against the state BEFORE x, then absorbs x:
 *     score = (x - mean) / max(sqrt(var), min_sd)
 * With a zero denominator (var == 0 and min_sd == 0) the score is 0 when
 * x == mean and +-Inf otherwise.
 *
 * Returns 1 and the score in *ret_z once at least `warmup` samples were
 * absorbed before x; 0 during the warm-up (x is absorbed, *ret_z is not
 * written); -EINVAL for a non-finite x and -ERANGE when absorbing x would
 * overflow the mean or the variance (|x| near 1e154 or beyond): in both
 * cases nothing changes and *ret_z is not written. ret_z may be NULL.
 */
int fm_zscore_update(struct fm_zscore *z, double x, double *ret_z);

/* sqrt(var): the EW standard deviation, units of x, without the min_sd floor. */
double fm_zscore_stddev(const struct fm_zscore *z);

/* ------------------------------------------------------------------------ */
/* Change detection: Page-Hinkley and CUSUM                                 */
/* ------------------------------------------------------------------------ */

/* Which shifts of the mean a detector watches for; a bit mask. */
enum fm_change_dir {
        FM_CHANGE_UP = 1,   /* increases */
        FM_CHANGE_DOWN = 2, /* decreases */
        FM_CHANGE_BOTH = 3,
};

/*
 * Evidence of the last alarm, kept after the detector has reset itself so
 * that the caller can report what fired.
 */
struct fm_change {
        double stat; /* the statistic that crossed the threshold (units: see the detector) */
        int dir;     /* +1: the mean went up, -1: it went down */
        uint64_t n;  /* samples since the previous reset, the alarming one included */
};

/*
 * Page-Hinkley test (Page 1954, Hinkley 1971) in the form used by stream
 * mining libraries: with mean_t the running mean of x_1..x_t since the last
 * reset,
 *
 *     U_t = alpha * U_{t-1} + (x_t - mean_t - delta)     PH_up   = U_t - min(U_1..U_t)
 *     L_t = alpha * L_{t-1} + (x_t - mean_t + delta)     PH_down = max(L_1..L_t) - L_t
 *
 * and an alarm when t >= min_samples and a watched PH exceeds lambda.
 * delta is the drift tolerated per sample (changes of the mean smaller than
 * delta are ignored; it also keeps stationary noise from accumulating),
 * lambda the evidence needed. For noise of standard deviation sigma the
 * false-alarm probability per sample falls like exp(-2 * delta * lambda /
 * sigma^2), and a step of size s > delta is found after about
 * lambda / (s - delta) samples.
 * alpha < 1 makes the sums forget old deviations (alpha = 1: the classic
 * test, no forgetting). Forgetting has a price: U and L become
 * mean-reverting, hovering around -+delta / (1 - alpha) with a standard
 * deviation near sigma / sqrt(1 - alpha^2), and their swings over a long
 * run count as evidence. Keep lambda several of those deviations wide
 * (alpha = 0.9, sigma = 1: 2.3, fine with lambda = 20; alpha = 0.99: 7,
 * not fine), and expect a step s to move U by about s / (1 - alpha) at
 * most, so smaller steps are never detected. When in doubt, alpha = 1.
 */
struct fm_ph_params {
        double delta;         /* units of x, >= 0 */
        double lambda;        /* units of x, > 0 */
        double alpha;         /* forgetting factor of U and L, in (0, 1] */
        uint32_t min_samples; /* no alarm before this many samples since the last reset */
        enum fm_change_dir dir;
};

struct fm_ph {
        struct fm_ph_params p;
        uint64_t n;            /* samples since the last reset */
        double mean;           /* running mean of those samples */
        double up, up_min;     /* U_t and its minimum */
        double down, down_max; /* L_t and its maximum */
        uint64_t alarms;       /* alarms since init */
        struct fm_change last; /* the last alarm; zero while alarms == 0 */
};

/*
 * Copies p and empties the detector. Returns 0, or -EINVAL (ph untouched)
 * when delta < 0, lambda <= 0, alpha not in (0, 1], dir not one of the
 * enum values, or a value is not finite.
 */
int fm_ph_init(struct fm_ph *ph, const struct fm_ph_params *p);

/* Forgets the samples (keeps the parameters, alarms and last). */
void fm_ph_reset(struct fm_ph *ph);

/*
 * Adds x. Returns 1 when a change is detected: ph->last gets the evidence,
 * alarms is incremented and the detector resets itself, so the next sample
 * starts a new test against the new level. Returns 0 otherwise. -EINVAL for
 * a non-finite x and -ERANGE when the sums would overflow; then nothing
 * changes.
 */
int fm_ph_update(struct fm_ph *ph, double x);

/* The current statistic: the larger of the watched PH_up and PH_down, units of x, >= 0. */
double fm_ph_statistic(const struct fm_ph *ph);

/*
 * Two-sided tabular CUSUM (Page 1954; Montgomery, "Introduction to
 * Statistical Quality Control", 9.1). With z_t = (x_t - target) / sigma,
 *
 *     S+_t = max(0, S+_{t-1} + z_t - k)      S-_t = max(0, S-_{t-1} - z_t - k)
 *
 * and an alarm when either exceeds h. k and h are in units of sigma: k is
 * usually half the shift to detect quickly (k = 0.5 for one sigma), h
 * sets the false-alarm rate (k = 0.5, h = 5: an in-control run length
 * around 465 samples for the two-sided chart; k = 1, h = 8: tens of
 * millions). For input that is already standardised (z-scores from
 * fm_zscore, say) use target = 0, sigma = 1.
 */
struct fm_cusum_params {
        double target; /* in-control mean, units of x */
        double sigma;  /* in-control standard deviation, units of x, > 0 */
        double k;      /* allowance, sigmas, >= 0 */
        double h;      /* decision interval, sigmas, > 0 */
};

struct fm_cusum {
        struct fm_cusum_params p;
        uint64_t n;            /* samples since the last reset */
        double hi, lo;         /* S+ and S-, sigmas, >= 0 */
        uint64_t alarms;       /* alarms since init */
        struct fm_change last; /* the last alarm (stat in sigmas); zero while alarms == 0 */
};

/*
 * Copies p and empties the detector. Returns 0, or -EINVAL (c untouched)
 * when sigma <= 0, k < 0, h <= 0 or a value is not finite.
 */
int fm_cusum_init(struct fm_cusum *c, const struct fm_cusum_params *p);

/* Zeroes the sums (keeps the parameters, alarms and last). */
void fm_cusum_reset(struct fm_cusum *c);

/*
 * Adds x. Returns 1 when S+ or S- exceeds h: c->last gets the evidence (the
 * larger sum; +Inf if x is so far out that z_t overflows), alarms is
 * incremented and the sums are zeroed. Returns 0 otherwise, -EINVAL (and
 * changes nothing) for a non-finite x.
 */
int fm_cusum_update(struct fm_cusum *c, double x);

/* max(S+, S-), sigmas, >= 0. */
double fm_cusum_statistic(const struct fm_cusum *c);

/* ------------------------------------------------------------------------ */
/* SLO burn rate                                                            */
/* ------------------------------------------------------------------------ */

/*
 * The burn rate is how fast the error budget is spent, relative to spending
 * exactly all of it over the SLO period: (bad / total) / (1 - slo_target).
 * Burn 1 for the whole period uses the whole budget; burn 20 would use it
 * in 1/20 of the period. 2 % errors against a 99.9 % SLO is burn 20.
 *
 * Returns 0 and the rate in *ret_rate (0 when total == 0), or -EINVAL when
 * slo_target is not in (0, 1), bad or total is negative or not finite, or
 * bad > total.
 */
int fm_burn_rate(double bad, double total, double slo_target, double *ret_rate);

/*
 * Multi-window, multi-burn-rate alerts (Google SRE workbook, "Alerting on
 * SLOs", recommendation 6): a pair alerts when the burn rate over the long
 * window AND over the short window both exceed the factor. The long window
 * makes the alert significant, the short one makes it stop soon after the
 * burning stops. For a 30-day SLO period the workbook pages on
 *
 *     1 h / 5 min at 14.4   (2 % of the budget spent in 1 h)
 *     6 h / 30 min at 6     (5 % of the budget spent in 6 h)
 *
 * (its third pair, 3 d / 6 h at 1, is a ticket and not included here).
 */
#define FM_BURN_WINDOWS 2
#define FM_BURN_WORKBOOK_PERIOD_MS ((fm_ms)30 * 24 * 3600 * FM_MS_PER_S)
#define FM_BURN_PERIOD_MAX_MS ((fm_ms)366 * 24 * 3600 * FM_MS_PER_S) /* a year */

struct fm_burn_window {
        fm_ms long_ms;  /* long window, ms */
        fm_ms short_ms; /* short window, ms: 1/12 of the long one */
        double factor;  /* burn rate both windows must exceed */
};

/*
 * The workbook's two paging pairs for an SLO period of period_ms, in the
 * workbook's order (fast burn first). The factors stay as they are and the
 * windows scale by period_ms / 30 days, rounded to the nearest ms, so each
 * pair still fires after the same fraction of the budget is spent (2 % and
 * 5 %): a 7-day period gives 14 min / 70 s at 14.4 and 84 min / 7 min at 6.
 * Returns 0 and fills ret[0..FM_BURN_WINDOWS-1]; -EINVAL when period_ms
 * <= 0, above FM_BURN_PERIOD_MAX_MS, or so short (below 4320 ms) that a
 * window would round to 0 ms.
 */
int fm_burn_windows_scaled(fm_ms period_ms, struct fm_burn_window ret[FM_BURN_WINDOWS]);

/*
 * Whether pair w fires: long_rate > w->factor and short_rate > w->factor
 * (strictly, as in the workbook's rules). The rates are fm_burn_rate() over
 * w->long_ms and w->short_ms; the caller measures them. NaN never fires.
 */
bool fm_burn_alert(const struct fm_burn_window *w, double long_rate, double short_rate);

/* ------------------------------------------------------------------------ */
/* Population stability index                                               */
/* ------------------------------------------------------------------------ */

/*
 * PSI = sum_i (a_i - e_i) * ln(a_i / e_i) over the bins' proportions of an
 * expected (reference) and an actual histogram with the same bins. It is
 * symmetric in the two and 0 for identical proportions; the usual reading
 * is < 0.1 stable, 0.1 to 0.25 a moderate shift, > 0.25 a major shift.
 *
 * An empty bin would make the log infinite, so each proportion is floored
 * at FM_PSI_EPSILON and the proportions are then renormalised to sum to 1.
 * The floor also bounds what one nearly empty bin can contribute: about
 * ln(1 / FM_PSI_EPSILON) = 9.2 per unit of proportion moved.
 */
#define FM_PSI_EPSILON 1e-4
#define FM_PSI_MAX_BINS 1024 /* bins of fm_psi_compute; bounds and bins of fm_psi_rebin */

/*
 * PSI of actual[0..n-1] against expected[0..n-1] (counts, fractional
 * allowed). Returns 0 and the PSI (>= 0, dimensionless) in *ret_psi;
 * -ENODATA when either total is below min_total or is 0; -EINVAL when n is
 * 0 or above FM_PSI_MAX_BINS, a count is negative or not finite, or
 * min_total is negative or not finite; -ERANGE when a total overflows.
 */
int fm_psi_compute(const double *expected, const double *actual, size_t n, double min_total,
                   double *ret_psi);

/*
 * Maps a histogram with arbitrary ascending bounds onto n_bins equal bins
 * over [lo, hi] (for model scores: 10 bins over [0, 1]), so histograms
 * reported with different bounds can be compared with fm_psi_compute().
 *
 * The input has the schema's shape (score_hist, latency_hist): n_bounds
 * strictly ascending finite bounds and n_bounds + 1 counts; count[0] is
 * the bucket (-Inf, bound[0]], count[i] is (bound[i-1], bound[i]], and
 * count[n_bounds] is (bound[n_bounds-1], +Inf).
 *
 * Each bucket's count is spread uniformly over its interval and every
 * output bin gets the share that overlaps it (linear interpolation of the
 * cumulative count within each bucket). The open-ended buckets have no
 * width to spread over, so they are cut at the output range: the first
 * bucket is spread over [lo, bound[0]] when lo < bound[0] and otherwise
 * goes whole into the first bin; the last is spread over
 * [bound[n_bounds-1], hi] when that is not empty and otherwise goes whole
 * into the last bin. Any share below lo is added to the first bin and any
 * share above hi to the last, so the total is kept (up to rounding).
 * Interpolation assumes a flat density within each input bucket; output
 * bins finer than the input buckets show that assumption, not data.
 *
 * Returns 0 and fills ret_bins[0..n_bins-1] (fractional counts); -EINVAL
 * when n_bounds or n_bins is 0 or above FM_PSI_MAX_BINS, the bounds are
 * not finite and strictly ascending, lo >= hi, lo or hi is not finite, or
 * the span of the bounds or of [lo, hi] overflows.
 */
int fm_psi_rebin(const double *bound, size_t n_bounds, const uint64_t *count, double lo, double hi,
                 size_t n_bins, double *ret_bins);

/* ------------------------------------------------------------------------ */
/* Distributions and tests                                                  */
/* ------------------------------------------------------------------------ */

/*
 * Standard normal CDF, Phi(x) = erfc(-x / sqrt(2)) / 2: accurate to a few
 * ulps in both tails (no 1 - small cancellation). Phi(-Inf) = 0,
 * Phi(+Inf) = 1, NaN gives NaN.
 */
double fm_stat_norm_cdf(double x);

/* Upper tail 1 - Phi(x) = erfc(x / sqrt(2)) / 2, accurate for large x. */
double fm_stat_norm_sf(double x);

/*
 * Inverse of Phi: the x with Phi(x) = p, by Wichura's algorithm AS 241
 * (PPND16, Applied Statistics 37, 1988), relative error about 1e-16.
 * Returns 0 and x in *ret_x, or -EINVAL when p is not in (0, 1) (0 and 1
 * would be -+Inf; no confidence threshold needs them).
 */
int fm_stat_norm_quantile(double p, double *ret_x);

/*
 * CDF of Student's t with df degrees of freedom (df need not be an
 * integer), through the regularised incomplete beta function evaluated by
 * its continued fraction. Measured against mpmath: relative error about
 * 1e-15 for df up to 1e4, growing with df as lgamma's rounding shows
 * (4e-11 at df = 1e6). A CDF near 1 cannot hold a small upper tail: for
 * p-values use fm_stat_welch_t's, which are computed as tails.
 * Returns 0 and P(T <= t) in *ret_p; -EINVAL when df is not finite and > 0
 * or t is NaN (t = +-Inf gives 1 or 0).
 */
int fm_stat_t_cdf(double t, double df, double *ret_p);

/* Result of a two-sample test of "sample 1 is above sample 2". */
struct fm_test_result {
        double stat;        /* z or t; positive when sample 1 is above sample 2 */
        double df;          /* degrees of freedom; Inf for a z-test */
        double p_greater;   /* one-sided p-value for "1 > 2": P(stat' >= stat) under H0 */
        double p_two_sided; /* P(|stat'| >= |stat|) under H0 */
};

/*
 * Pooled two-proportion z-test of x1/n1 against x2/n2 (successes, here
 * usually errors, out of trials):
 *     p = (x1 + x2) / (n1 + n2),  z = (x1/n1 - x2/n2) / sqrt(p (1 - p) (1/n1 + 1/n2))
 * p_greater = 1 - Phi(z) tests "rate 1 > rate 2" (the canary is worse),
 * p_two_sided = 2 (1 - Phi(|z|)). When p is 0 or 1 the two rates are
 * equal and z is 0 (p_greater 0.5, p_two_sided 1).
 * The normal approximation wants about 5 successes and 5 failures in each
 * sample; below that the p-values are optimistic (see fm_stat_min_n_2prop).
 * Returns 0 and fills *ret (df = +Inf); -ENODATA when n1 or n2 is 0;
 * -EINVAL when x1 > n1 or x2 > n2.
 */
int fm_stat_ztest_2prop(uint64_t x1, uint64_t n1, uint64_t x2, uint64_t n2,
                        struct fm_test_result *ret);

/* Summary of one sample for Welch's test. */
struct fm_moments {
        uint64_t n;  /* sample size */
        double mean; /* sample mean */
        double var;  /* unbiased sample variance (divisor n - 1), >= 0 */
};

/*
 * Welch's unequal-variances t-test of mean 1 against mean 2, with the
 * Welch-Satterthwaite degrees of freedom.
 * Returns 0 and fills *ret; -ENODATA when a sample has fewer than 2
 * values; -EINVAL when a mean or variance is not finite or a variance is
 * negative; -EDOM when both variances are 0 (the statistic is undefined);
 * -ERANGE when the statistic or df overflows.
 */
int fm_stat_welch_t(const struct fm_moments *a, const struct fm_moments *b,
                    struct fm_test_result *ret);

/*
 * Multiple-comparison corrections for m signals tested at family-wise
 * error rate alpha. Both take p[0..m-1] and write ret_sig[i] = whether
 * signal i is significant, returning how many are.
 *
 * Bonferroni: p[i] <= alpha / m.
 * Holm (1979): sort the p-values ascending and, for k = 1..m, reject while
 * p_(k) <= alpha / (m - k + 1); stop at the first that fails. It controls
 * the same error rate and is never less powerful than Bonferroni: its
 * first threshold is Bonferroni's and the later ones are looser.
 *
 * Return the count of significant signals (0..m), or -EINVAL when m is
 * above FM_STAT_MAX_TESTS, alpha is not in (0, 1) or a p-value is not in
 * [0, 1]. m == 0 returns 0 and writes nothing.
 */
#define FM_STAT_MAX_TESTS 64
int fm_stat_bonferroni(const double *p, size_t m, double alpha, bool *ret_sig);
int fm_stat_holm(const double *p, size_t m, double alpha, bool *ret_sig);

/*
 * Sample size per group for a one-sided two-proportion z-test at level
 * alpha to detect a change from p_base to p_alt with the given power
 * (Fleiss, "Statistical Methods for Rates and Proportions", 3rd ed., 4.2,
 * without continuity correction):
 *
 *     n = (z_{1-alpha} sqrt(2 pbar (1 - pbar)) + z_power sqrt(p_base (1 - p_base) + p_alt (1 -
 * p_alt)))^2 / (p_alt - p_base)^2,    pbar = (p_base + p_alt) / 2
 *
 * rounded up, and at least 1 (a power at or below the level needs no
 * data). The rollback policy should not judge a canary on fewer.
 * Returns 0 and n in *ret_n; -EINVAL when p_base, p_alt, alpha or power
 * is not in (0, 1) or p_alt == p_base; -ERANGE when n does not fit in
 * uint64_t.
 */
int fm_stat_min_n_2prop(double p_base, double p_alt, double alpha, double power, uint64_t *ret_n);
