/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Rollback decision: should a deployment's current version be rolled back
 * to its baseline (the previous version, or the stable version during a
 * canary)? A pure function of counts the caller measured, the
 * configuration and a small per-deployment state; it never sees the fleet
 * (the adapter in policies.c does that), never reads a clock, never
 * allocates.
 *
 * Five signals, each comparing the current version with the baseline:
 *
 *   accuracy_drop  accuracy from labelled feedback fell by at least
 *                  accuracy_drop relative to the baseline's
 *                  (cur <= base * (1 - accuracy_drop)), and a one-sided
 *                  pooled two-proportion z-test of the error proportions
 *                  (1 - accuracy) says the current one is higher
 *   error_rate     errors / requests above error_rate_ratio times the
 *                  baseline's, and a one-sided two-proportion z-test says
 *                  it is higher
 *   p99_latency    p99 above p99_ratio times the baseline's
 *   slo_burn       a multi-window burn-rate pair of the current version
 *                  fires (the SRE workbook's 14.4x and 6x pairs, windows
 *                  scaled to slo_period; see fm_burn_windows_scaled)
 *   drift          PSI of the score histograms at or above psi_threshold
 *
 * A signal is tested only with enough data on both sides (min_outcomes,
 * min_requests, psi_min_samples; slo_burn needs min_requests in the long
 * window of the pair, current side only); otherwise it is skipped and
 * says why. Practical and statistical significance are both required for
 * the two rate signals: the observed change must cross its threshold AND
 * its p-value must survive Holm's correction at 1 - confidence across the
 * rate signals actually tested (m = 0, 1 or 2). A huge sample makes a
 * tiny drop significant, which the threshold rejects; a small sample
 * makes a large observed drop likely noise, which the test rejects.
 * The error rate also needs min_errors errors on the current side to
 * cross: against a baseline of a few errors in a million, one error in
 * min_requests is far above any ratio and, as the z-test's normal
 * approximation fails on counts that small, "significant" too; a count of
 * a handful is where both start to mean something.
 *
 * p99, slo_burn and drift carry no p-value: a quantile ratio and a PSI
 * have no cheap exact test, and a burn-rate pair is itself a sustained-rate
 * criterion (the long window makes it significant, the short one makes it
 * stop). They are gated by their minimum sample sizes and thresholds only,
 * and do not count in Holm's m. PSI needs psi_min_samples per side
 * because its usual bands (0.1, 0.25) false-alarm on small samples: a PSI
 * of two samples of one distribution has expectation about
 * (bins - 1) (1/n1 + 1/n2), 0.18 at 100 per side with 10 bins.
 *
 * Safety, checked after a signal fires and in this order, each blocking
 * with its own reason: the baseline exists; it was never rolled back from
 * (no oscillation); it is known-good (served at least known_good_after and
 * not marked bad); it is ready (the caller's judgement, see the adapter);
 * no rollback of this deployment within cooldown. A current version that
 * was already rolled back from decides nothing more (already_rolled_back):
 * that makes the decision edge-triggered while the actuator works.
 *
 * The state remembers up to FM_ROLLBACK_MARKS_MAX versions (bad, rolled
 * back from); when full the oldest mark is forgotten. It changes only
 * through fm_rollback_commit() and fm_rollback_mark_bad(), so a decision
 * that could not be carried out (a full plan) is simply made again.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "detect.h"
#include "event.h"
#include "evidence.h"
#include "util.h"

/* Score histogram bins per side (the fleet's FM_SCORE_BINS). */
#define FM_ROLLBACK_SCORE_BINS 10
/* Versions the state remembers as bad or rolled back from. */
#define FM_ROLLBACK_MARKS_MAX 16
/* Upper limit of the durations in the configuration: 30 days. */
#define FM_ROLLBACK_DURATION_MAX ((fm_ms)30 * 24 * 3600 * FM_MS_PER_S)

enum fm_rollback_signal {
        FM_ROLLBACK_ACCURACY,
        FM_ROLLBACK_ERROR_RATE,
        FM_ROLLBACK_P99,
        FM_ROLLBACK_SLO_BURN,
        FM_ROLLBACK_DRIFT,
        _FM_ROLLBACK_SIGNAL_MAX,
};

enum fm_rollback_reason {
        FM_ROLLBACK_HEALTHY,            /* "healthy": nothing crossed a threshold */
        FM_ROLLBACK_ACCURACY_DROP,      /* "accuracy_drop" */
        FM_ROLLBACK_ERROR_RATE_UP,      /* "error_rate" */
        FM_ROLLBACK_P99_LATENCY,        /* "p99_latency" */
        FM_ROLLBACK_SLO_BURNING,        /* "slo_burn" */
        FM_ROLLBACK_DRIFTED,            /* "drift" */
        FM_ROLLBACK_NOT_ENOUGH_SAMPLES, /* "not_enough_samples": no signal could be tested */
        FM_ROLLBACK_NOT_SIGNIFICANT,    /* "not_significant": crossed, but the test says noise */
        FM_ROLLBACK_NO_BASELINE,        /* "no_baseline" */
        FM_ROLLBACK_TARGET_ROLLED_BACK_FROM, /* "target_rolled_back_from" */
        FM_ROLLBACK_NOT_KNOWN_GOOD, /* "baseline_not_known_good": too young, or marked bad */
        FM_ROLLBACK_NOT_READY,      /* "baseline_not_ready" */
        FM_ROLLBACK_COOLDOWN,       /* "cooldown" */
        FM_ROLLBACK_ALREADY,        /* "already_rolled_back": the current version was */
        _FM_ROLLBACK_REASON_MAX,
};

/* The reason's name (above); NULL if out of range. */
const char *fm_rollback_reason_name(enum fm_rollback_reason r) _pure_;

/* Why a signal was not tested. */
enum fm_rollback_skip {
        FM_ROLLBACK_TESTED,           /* "tested" */
        FM_ROLLBACK_SKIP_NO_BASELINE, /* "no_baseline" */
        FM_ROLLBACK_SKIP_NO_DATA,     /* "no_data": a side has none (no p99, zero baseline) */
        FM_ROLLBACK_SKIP_FEW_SAMPLES, /* "few_samples": below the signal's minimum */
        _FM_ROLLBACK_SKIP_MAX,
};

const char *fm_rollback_skip_name(enum fm_rollback_skip s) _pure_;

struct fm_rollback_config {
        double accuracy_drop;     /* relative drop that counts, in (0, 1); default 0.05 */
        double error_rate_ratio;  /* current / baseline error rate, >= 1; default 1.5 */
        double p99_ratio;         /* current / baseline p99, >= 1; default 1.5 */
        double slo_target;        /* availability SLO, in (0, 1); default 0.999 */
        fm_ms slo_period;         /* SLO period, 4320 ms .. 30 d; default 30 d */
        double psi_threshold;     /* PSI that counts as drift, > 0; default 0.2 */
        uint64_t psi_min_samples; /* scores per side before PSI is tested, >= 1; default 1000 */
        uint64_t min_requests; /* per side (error rate, p99, burn long window), >= 1; default 500 */
        /* errors of the current side before its error rate can count as up, >= 1; default 5 */
        uint64_t min_errors;
        uint64_t min_outcomes;  /* labelled outcomes per side, >= 1; default 500 */
        double confidence;      /* family-wise, in [0.5, 1); default 0.95 */
        fm_ms known_good_after; /* baseline served this long, 0 .. 30 d; default 30 min */
        fm_ms cooldown; /* between two rollbacks of a deployment, 0 .. 30 d; default 30 min */
};

void fm_rollback_config_default(struct fm_rollback_config *cfg);

/* Returns 0 or -EINVAL for a value outside the ranges above (NaN included). */
int fm_rollback_config_validate(const struct fm_rollback_config *cfg);

/* What one version's statistics say; counts since the version was first seen. */
struct fm_rollback_side {
        uint64_t requests, errors;  /* errors <= requests */
        uint64_t outcomes, correct; /* labelled outcomes and those right at the threshold */
        bool has_p99;
        double p99_ms;                             /* finite, >= 0 when has_p99 */
        uint64_t latency_samples;                  /* requests behind p99_ms */
        double score_bins[FM_ROLLBACK_SCORE_BINS]; /* counts, finite, >= 0 */
};

/*
 * Requests and errors of the current version over the burn windows of
 * fm_burn_windows_scaled(cfg->slo_period): [pair][0] the long window,
 * [pair][1] the short one, pairs in the workbook's order (fast first).
 */
struct fm_rollback_burn {
        uint64_t requests[FM_BURN_WINDOWS][2], errors[FM_BURN_WINDOWS][2];
};

struct fm_rollback_input {
        const char *current;  /* name, non-empty */
        const char *baseline; /* name; NULL or "" when there is none */
        struct fm_rollback_side cur, base;
        struct fm_rollback_burn burn;
        bool baseline_ready;
        fm_ms baseline_served; /* how long the baseline was served, ms */
};

struct fm_rollback_mark {
        char version[FM_VERSION_MAX + 1];
        bool bad, rolled_back_from;
        uint64_t seq; /* age order for eviction */
};

struct fm_rollback_state {
        bool has_last;
        fm_ms last_at; /* of the last rollback */
        uint64_t seq;
        uint32_t rollbacks;
        struct fm_rollback_mark mark[FM_ROLLBACK_MARKS_MAX];
};

void fm_rollback_state_init(struct fm_rollback_state *s);

/* Marks version bad (an operator's or another policy's verdict). Returns 0 or -EINVAL. */
int fm_rollback_mark_bad(struct fm_rollback_state *s, const char *version);

/* Whether version is marked bad / was rolled back from. */
bool fm_rollback_is_bad(const struct fm_rollback_state *s, const char *version);
bool fm_rollback_was_rolled_back_from(const struct fm_rollback_state *s, const char *version);

/* Per-signal evidence. Rates and accuracies are fractions, p99 in ms. */
struct fm_rollback_signal_result {
        enum fm_rollback_skip skip; /* TESTED or why not */
        double observed;            /* current side; NAN when not tested */
        double baseline;            /* baseline side (slo_burn: the factor); NAN when not tested */
        double p_value;             /* one-sided; NAN for signals without a test */
        bool crossed;               /* observed crossed the threshold */
        bool significant;           /* crossed and, where there is a test, Holm-significant */
};

struct fm_rollback_decision {
        bool rollback;
        enum fm_rollback_reason reason;
        const char *from, *to; /* point into the input; to is NULL without a baseline */
        struct fm_rollback_signal_result signal[_FM_ROLLBACK_SIGNAL_MAX];
        uint32_t tests; /* Holm's m */
        struct fm_evidence evidence;
};

/*
 * Decides. Returns 1 when a rollback is decided (dec->rollback, reason the
 * first significant signal in enum order), 0 when not (reason says why),
 * -EINVAL (dec untouched) for an invalid cfg or input (missing current
 * name, errors > requests, correct > outcomes, a non-finite or negative
 * p99 or bin, negative baseline_served). The state is read, never written.
 */
int fm_rollback_decide(const struct fm_rollback_config *cfg, const struct fm_rollback_state *s,
                       const struct fm_rollback_input *in, fm_ms now,
                       struct fm_rollback_decision *dec);

/*
 * Records a rollback that was carried out (asked for): from becomes bad
 * and rolled back from, and the cooldown starts at now. Returns 0 or
 * -EINVAL when dec is not a rollback.
 */
int fm_rollback_commit(struct fm_rollback_state *s, const struct fm_rollback_decision *dec,
                       fm_ms now);
