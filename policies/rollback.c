/* SPDX-License-Identifier: MIT */
#include "rollback.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

static const char *const reason_names[_FM_ROLLBACK_REASON_MAX] = {
        [FM_ROLLBACK_HEALTHY] = "healthy",
        [FM_ROLLBACK_ACCURACY_DROP] = "accuracy_drop",
        [FM_ROLLBACK_ERROR_RATE_UP] = "error_rate",
        [FM_ROLLBACK_P99_LATENCY] = "p99_latency",
        [FM_ROLLBACK_SLO_BURNING] = "slo_burn",
        [FM_ROLLBACK_DRIFTED] = "drift",
        [FM_ROLLBACK_NOT_ENOUGH_SAMPLES] = "not_enough_samples",
        [FM_ROLLBACK_NOT_SIGNIFICANT] = "not_significant",
        [FM_ROLLBACK_NO_BASELINE] = "no_baseline",
        [FM_ROLLBACK_TARGET_ROLLED_BACK_FROM] = "target_rolled_back_from",
        [FM_ROLLBACK_NOT_KNOWN_GOOD] = "baseline_not_known_good",
        [FM_ROLLBACK_NOT_READY] = "baseline_not_ready",
        [FM_ROLLBACK_COOLDOWN] = "cooldown",
        [FM_ROLLBACK_ALREADY] = "already_rolled_back",
};

const char *fm_rollback_reason_name(enum fm_rollback_reason r)
{
        return (unsigned)r < _FM_ROLLBACK_REASON_MAX ? reason_names[r] : NULL;
}

static const char *const skip_names[_FM_ROLLBACK_SKIP_MAX] = {
        [FM_ROLLBACK_TESTED] = "tested",
        [FM_ROLLBACK_SKIP_NO_BASELINE] = "no_baseline",
        [FM_ROLLBACK_SKIP_NO_DATA] = "no_data",
        [FM_ROLLBACK_SKIP_FEW_SAMPLES] = "few_samples",
};

const char *fm_rollback_skip_name(enum fm_rollback_skip s)
{
        return (unsigned)s < _FM_ROLLBACK_SKIP_MAX ? skip_names[s] : NULL;
}

/* ==== Configuration ===================================================== */

void fm_rollback_config_default(struct fm_rollback_config *cfg)
{
        *cfg = (struct fm_rollback_config){
                .accuracy_drop = 0.05,
                .error_rate_ratio = 1.5,
                .p99_ratio = 1.5,
                .slo_target = 0.999,
                .slo_period = FM_BURN_WORKBOOK_PERIOD_MS,
                .psi_threshold = 0.2,
                .psi_min_samples = 1000,
                .min_requests = 500,
                .min_errors = 5,
                .min_outcomes = 500,
                .confidence = 0.95,
                .known_good_after = (fm_ms)30 * 60 * FM_MS_PER_S,
                .cooldown = (fm_ms)30 * 60 * FM_MS_PER_S,
        };
}

static bool duration_ok(fm_ms d)
{
        return d >= 0 && d <= FM_ROLLBACK_DURATION_MAX;
}

int fm_rollback_config_validate(const struct fm_rollback_config *cfg)
{
        struct fm_burn_window w[FM_BURN_WINDOWS];

        if (!cfg)
                return -EINVAL;
        /* written so that NaN fails every comparison */
        if (!(cfg->accuracy_drop > 0 && cfg->accuracy_drop < 1))
                return -EINVAL;
        if (!(cfg->error_rate_ratio >= 1 && isfinite(cfg->error_rate_ratio)))
                return -EINVAL;
        if (!(cfg->p99_ratio >= 1 && isfinite(cfg->p99_ratio)))
                return -EINVAL;
        if (!(cfg->slo_target > 0 && cfg->slo_target < 1))
                return -EINVAL;
        if (cfg->slo_period > FM_ROLLBACK_DURATION_MAX ||
            fm_burn_windows_scaled(cfg->slo_period, w) < 0)
                return -EINVAL;
        if (!(cfg->psi_threshold > 0 && isfinite(cfg->psi_threshold)))
                return -EINVAL;
        if (cfg->psi_min_samples == 0 || cfg->min_requests == 0 || cfg->min_outcomes == 0 ||
            cfg->min_errors == 0)
                return -EINVAL;
        if (!(cfg->confidence >= 0.5 && cfg->confidence < 1))
                return -EINVAL;
        if (!duration_ok(cfg->known_good_after) || !duration_ok(cfg->cooldown))
                return -EINVAL;
        return 0;
}

/* ==== State ============================================================= */

void fm_rollback_state_init(struct fm_rollback_state *s)
{
        memset(s, 0, sizeof(*s));
}

static const struct fm_rollback_mark *mark_find(const struct fm_rollback_state *s,
                                                const char *version)
{
        if (!version || !version[0])
                return NULL;
        for (size_t k = 0; k < FM_ROLLBACK_MARKS_MAX; k++)
                if (s->mark[k].version[0] && strcmp(s->mark[k].version, version) == 0)
                        return &s->mark[k];
        return NULL;
}

/* The mark of version, made on need; when all are used the oldest is reused. */
static struct fm_rollback_mark *mark_get(struct fm_rollback_state *s, const char *version)
{
        struct fm_rollback_mark *m = (struct fm_rollback_mark *)mark_find(s, version);
        if (m)
                return m;
        m = &s->mark[0];
        for (size_t k = 0; k < FM_ROLLBACK_MARKS_MAX; k++) {
                if (!s->mark[k].version[0]) {
                        m = &s->mark[k];
                        break;
                }
                if (s->mark[k].seq < m->seq)
                        m = &s->mark[k];
        }
        memset(m, 0, sizeof(*m));
        (void)snprintf(m->version, sizeof(m->version), "%s", version);
        m->seq = ++s->seq;
        return m;
}

static bool name_ok(const char *version)
{
        return version && version[0] && strlen(version) <= FM_VERSION_MAX;
}

int fm_rollback_mark_bad(struct fm_rollback_state *s, const char *version)
{
        if (!s || !name_ok(version))
                return -EINVAL;
        mark_get(s, version)->bad = true;
        return 0;
}

bool fm_rollback_is_bad(const struct fm_rollback_state *s, const char *version)
{
        const struct fm_rollback_mark *m = mark_find(s, version);
        return m && m->bad;
}

bool fm_rollback_was_rolled_back_from(const struct fm_rollback_state *s, const char *version)
{
        const struct fm_rollback_mark *m = mark_find(s, version);
        return m && m->rolled_back_from;
}

int fm_rollback_commit(struct fm_rollback_state *s, const struct fm_rollback_decision *dec,
                       fm_ms now)
{
        if (!s || !dec || !dec->rollback || !name_ok(dec->from))
                return -EINVAL;
        struct fm_rollback_mark *m = mark_get(s, dec->from);
        m->bad = true;
        m->rolled_back_from = true;
        s->has_last = true;
        s->last_at = now;
        s->rollbacks++;
        return 0;
}

/* ==== Decision ========================================================== */

static bool side_ok(const struct fm_rollback_side *s)
{
        if (s->errors > s->requests || s->correct > s->outcomes)
                return false;
        if (s->has_p99 && !(s->p99_ms >= 0 && isfinite(s->p99_ms)))
                return false;
        for (size_t k = 0; k < FM_ROLLBACK_SCORE_BINS; k++)
                if (!(s->score_bins[k] >= 0 && isfinite(s->score_bins[k])))
                        return false;
        return true;
}

static bool input_ok(const struct fm_rollback_input *in)
{
        if (!name_ok(in->current) || !side_ok(&in->cur) || !side_ok(&in->base))
                return false;
        if (in->baseline && strlen(in->baseline) > FM_VERSION_MAX)
                return false;
        for (size_t k = 0; k < FM_BURN_WINDOWS; k++)
                for (size_t w = 0; w < 2; w++)
                        if (in->burn.errors[k][w] > in->burn.requests[k][w])
                                return false;
        return in->baseline_served >= 0;
}

static void untested(struct fm_rollback_signal_result *r, enum fm_rollback_skip why)
{
        *r = (struct fm_rollback_signal_result){
                .skip = why, .observed = NAN, .baseline = NAN, .p_value = NAN};
}

/*
 * A rate signal (accuracy as its error proportion, or the error rate):
 * x/n of the current side against the baseline's. crossed() is the
 * practical threshold; the p-value is the one-sided z-test of "current
 * worse". Significance is decided later, by Holm across such signals.
 */
static void rate_signal(struct fm_rollback_signal_result *r, uint64_t x1, uint64_t n1, uint64_t x2,
                        uint64_t n2, uint64_t min_n, bool has_base)
{
        struct fm_test_result t;

        if (!has_base) {
                untested(r, FM_ROLLBACK_SKIP_NO_BASELINE);
                return;
        }
        if (n1 == 0 || n2 == 0) {
                untested(r, FM_ROLLBACK_SKIP_NO_DATA);
                return;
        }
        if (n1 < min_n || n2 < min_n) {
                untested(r, FM_ROLLBACK_SKIP_FEW_SAMPLES);
                return;
        }
        if (fm_stat_ztest_2prop(x1, n1, x2, n2, &t) < 0) {
                untested(r, FM_ROLLBACK_SKIP_NO_DATA);
                return;
        }
        *r = (struct fm_rollback_signal_result){
                .skip = FM_ROLLBACK_TESTED,
                .observed = (double)x1 / (double)n1,
                .baseline = (double)x2 / (double)n2,
                .p_value = t.p_greater,
        };
}

/* Accuracy: the test runs on wrong = outcomes - correct; the evidence shows accuracy. */
static void accuracy_signal(const struct fm_rollback_config *cfg,
                            const struct fm_rollback_input *in, bool has_base,
                            struct fm_rollback_signal_result *r)
{
        const struct fm_rollback_side *c = &in->cur, *b = &in->base;

        rate_signal(r, c->outcomes - c->correct, c->outcomes, b->outcomes - b->correct, b->outcomes,
                    cfg->min_outcomes, has_base);
        if (r->skip != FM_ROLLBACK_TESTED)
                return;
        r->observed = 1 - r->observed;
        r->baseline = 1 - r->baseline;
        /*
         * Relative drop against the threshold with a little slack, so that
         * an exact 5 % drop (0.855 against 0.90) counts despite rounding.
         */
        r->crossed = r->baseline > 0 &&
                     (r->baseline - r->observed) / r->baseline >= cfg->accuracy_drop - 1e-9;
}

static void error_signal(const struct fm_rollback_config *cfg, const struct fm_rollback_input *in,
                         bool has_base, struct fm_rollback_signal_result *r)
{
        const struct fm_rollback_side *c = &in->cur, *b = &in->base;

        rate_signal(r, c->errors, c->requests, b->errors, b->requests, cfg->min_requests, has_base);
        if (r->skip != FM_ROLLBACK_TESTED)
                return;
        /* a baseline without errors: any error rate is above any ratio of it */
        r->crossed =
                r->observed > r->baseline * cfg->error_rate_ratio && c->errors >= cfg->min_errors;
}

static void p99_signal(const struct fm_rollback_config *cfg, const struct fm_rollback_input *in,
                       bool has_base, struct fm_rollback_signal_result *r)
{
        const struct fm_rollback_side *c = &in->cur, *b = &in->base;

        if (!has_base) {
                untested(r, FM_ROLLBACK_SKIP_NO_BASELINE);
                return;
        }
        if (!c->has_p99 || !b->has_p99 || b->p99_ms <= 0) {
                untested(r, FM_ROLLBACK_SKIP_NO_DATA);
                return;
        }
        if (c->latency_samples < cfg->min_requests || b->latency_samples < cfg->min_requests) {
                untested(r, FM_ROLLBACK_SKIP_FEW_SAMPLES);
                return;
        }
        *r = (struct fm_rollback_signal_result){
                .skip = FM_ROLLBACK_TESTED,
                .observed = c->p99_ms,
                .baseline = b->p99_ms,
                .p_value = NAN,
                .crossed = c->p99_ms > b->p99_ms * cfg->p99_ratio,
        };
        r->significant = r->crossed;
}

/*
 * Burn rate of the current version only. A pair is tested when its long
 * window holds min_requests; it fires when both windows burn above its
 * factor (fm_burn_alert). The evidence is the pair that fired, or else
 * the pair whose long window burns fastest relative to its factor.
 */
static void burn_signal(const struct fm_rollback_config *cfg, const struct fm_rollback_input *in,
                        double rate_out[FM_BURN_WINDOWS][2], struct fm_rollback_signal_result *r)
{
        struct fm_burn_window w[FM_BURN_WINDOWS];
        bool any = false;
        double best = -1;

        untested(r, FM_ROLLBACK_SKIP_FEW_SAMPLES);
        for (size_t k = 0; k < FM_BURN_WINDOWS; k++)
                rate_out[k][0] = rate_out[k][1] = NAN;
        if (fm_burn_windows_scaled(cfg->slo_period, w) < 0)
                return;
        for (size_t k = 0; k < FM_BURN_WINDOWS; k++) {
                double rate[2];
                if (in->burn.requests[k][0] < cfg->min_requests)
                        continue;
                for (size_t j = 0; j < 2; j++)
                        if (fm_burn_rate((double)in->burn.errors[k][j],
                                         (double)in->burn.requests[k][j], cfg->slo_target,
                                         &rate[j]) < 0)
                                return;
                rate_out[k][0] = rate[0];
                rate_out[k][1] = rate[1];
                any = true;
                bool fires = fm_burn_alert(&w[k], rate[0], rate[1]);
                double rel = rate[0] / w[k].factor;
                if (r->skip != FM_ROLLBACK_TESTED || (fires && !r->crossed) ||
                    (fires == r->crossed && rel > best)) {
                        r->skip = FM_ROLLBACK_TESTED;
                        r->observed = rate[0];
                        r->baseline = w[k].factor;
                        r->crossed = fires;
                        best = rel;
                }
        }
        if (!any)
                return;
        r->significant = r->crossed;
}

static void drift_signal(const struct fm_rollback_config *cfg, const struct fm_rollback_input *in,
                         bool has_base, struct fm_rollback_signal_result *r)
{
        double nc = 0, nb = 0, psi;

        if (!has_base) {
                untested(r, FM_ROLLBACK_SKIP_NO_BASELINE);
                return;
        }
        for (size_t k = 0; k < FM_ROLLBACK_SCORE_BINS; k++) {
                nc += in->cur.score_bins[k];
                nb += in->base.score_bins[k];
        }
        if (nc <= 0 || nb <= 0) {
                untested(r, FM_ROLLBACK_SKIP_NO_DATA);
                return;
        }
        if (nc < (double)cfg->psi_min_samples || nb < (double)cfg->psi_min_samples) {
                untested(r, FM_ROLLBACK_SKIP_FEW_SAMPLES);
                return;
        }
        if (fm_psi_compute(in->base.score_bins, in->cur.score_bins, FM_ROLLBACK_SCORE_BINS,
                           (double)cfg->psi_min_samples, &psi) < 0) {
                untested(r, FM_ROLLBACK_SKIP_NO_DATA);
                return;
        }
        *r = (struct fm_rollback_signal_result){
                .skip = FM_ROLLBACK_TESTED,
                .observed = psi,
                .baseline = cfg->psi_threshold,
                .p_value = NAN,
                .crossed = psi >= cfg->psi_threshold,
        };
        r->significant = r->crossed;
}

static void evidence(const struct fm_rollback_config *cfg, const struct fm_rollback_input *in,
                     const double burn[FM_BURN_WINDOWS][2], struct fm_rollback_decision *dec)
{
        static const char *const burn_keys[FM_BURN_WINDOWS][2] = {
                {"burn_fast_long", "burn_fast_short"},
                {"burn_slow_long", "burn_slow_short"},
        };
        struct fm_evidence *e = &dec->evidence;
        const struct fm_rollback_signal_result *s = dec->signal;

        e->n = 0;
        if (s[FM_ROLLBACK_ACCURACY].skip == FM_ROLLBACK_TESTED) {
                fm_evidence_add(e, "accuracy", s[FM_ROLLBACK_ACCURACY].observed);
                fm_evidence_add(e, "accuracy_baseline", s[FM_ROLLBACK_ACCURACY].baseline);
                fm_evidence_add(e, "accuracy_p", s[FM_ROLLBACK_ACCURACY].p_value);
                fm_evidence_add(e, "outcomes", (double)in->cur.outcomes);
                fm_evidence_add(e, "outcomes_baseline", (double)in->base.outcomes);
        }
        if (s[FM_ROLLBACK_ERROR_RATE].skip == FM_ROLLBACK_TESTED) {
                fm_evidence_add(e, "error_rate", s[FM_ROLLBACK_ERROR_RATE].observed);
                fm_evidence_add(e, "error_rate_baseline", s[FM_ROLLBACK_ERROR_RATE].baseline);
                fm_evidence_add(e, "error_rate_p", s[FM_ROLLBACK_ERROR_RATE].p_value);
                fm_evidence_add(e, "requests", (double)in->cur.requests);
                fm_evidence_add(e, "requests_baseline", (double)in->base.requests);
        }
        if (s[FM_ROLLBACK_P99].skip == FM_ROLLBACK_TESTED) {
                fm_evidence_add(e, "p99_ms", s[FM_ROLLBACK_P99].observed);
                fm_evidence_add(e, "p99_baseline_ms", s[FM_ROLLBACK_P99].baseline);
        }
        for (size_t k = 0; k < FM_BURN_WINDOWS; k++)
                if (!isnan(burn[k][0])) {
                        fm_evidence_add(e, burn_keys[k][0], burn[k][0]);
                        fm_evidence_add(e, burn_keys[k][1], burn[k][1]);
                }
        if (s[FM_ROLLBACK_DRIFT].skip == FM_ROLLBACK_TESTED)
                fm_evidence_add(e, "psi", s[FM_ROLLBACK_DRIFT].observed);
        fm_evidence_add(e, "alpha", 1 - cfg->confidence);
        fm_evidence_add(e, "tests", dec->tests);
        fm_evidence_add(e, "baseline_served_s", (double)in->baseline_served / FM_MS_PER_S);
}

/* The first blocking safety rule for a rollback to in->baseline, or HEALTHY. */
static enum fm_rollback_reason safety(const struct fm_rollback_config *cfg,
                                      const struct fm_rollback_state *s,
                                      const struct fm_rollback_input *in, fm_ms now)
{
        if (fm_rollback_was_rolled_back_from(s, in->baseline))
                return FM_ROLLBACK_TARGET_ROLLED_BACK_FROM;
        if (fm_rollback_is_bad(s, in->baseline) || in->baseline_served < cfg->known_good_after)
                return FM_ROLLBACK_NOT_KNOWN_GOOD;
        if (!in->baseline_ready)
                return FM_ROLLBACK_NOT_READY;
        /* a clock that went back (now < last_at) does not extend the cooldown */
        if (s->has_last && now >= s->last_at && now - s->last_at < cfg->cooldown)
                return FM_ROLLBACK_COOLDOWN;
        return FM_ROLLBACK_HEALTHY;
}

int fm_rollback_decide(const struct fm_rollback_config *cfg, const struct fm_rollback_state *s,
                       const struct fm_rollback_input *in, fm_ms now,
                       struct fm_rollback_decision *dec)
{
        static const enum fm_rollback_reason fired[_FM_ROLLBACK_SIGNAL_MAX] = {
                [FM_ROLLBACK_ACCURACY] = FM_ROLLBACK_ACCURACY_DROP,
                [FM_ROLLBACK_ERROR_RATE] = FM_ROLLBACK_ERROR_RATE_UP,
                [FM_ROLLBACK_P99] = FM_ROLLBACK_P99_LATENCY,
                [FM_ROLLBACK_SLO_BURN] = FM_ROLLBACK_SLO_BURNING,
                [FM_ROLLBACK_DRIFT] = FM_ROLLBACK_DRIFTED,
        };
        struct fm_rollback_decision d = {0};
        double burn[FM_BURN_WINDOWS][2];
        double p[2];
        size_t idx[2], m = 0;
        bool sig[2] = {false, false};

        if (!cfg || !s || !in || !dec || fm_rollback_config_validate(cfg) < 0 || !input_ok(in))
                return -EINVAL;

        bool has_base = in->baseline && in->baseline[0];
        d.from = in->current;
        d.to = has_base ? in->baseline : NULL;

        accuracy_signal(cfg, in, has_base, &d.signal[FM_ROLLBACK_ACCURACY]);
        error_signal(cfg, in, has_base, &d.signal[FM_ROLLBACK_ERROR_RATE]);
        p99_signal(cfg, in, has_base, &d.signal[FM_ROLLBACK_P99]);
        burn_signal(cfg, in, burn, &d.signal[FM_ROLLBACK_SLO_BURN]);
        drift_signal(cfg, in, has_base, &d.signal[FM_ROLLBACK_DRIFT]);

        /* Holm across the rate signals that were tested, crossed or not */
        for (size_t k = FM_ROLLBACK_ACCURACY; k <= FM_ROLLBACK_ERROR_RATE; k++)
                if (d.signal[k].skip == FM_ROLLBACK_TESTED) {
                        idx[m] = k;
                        p[m++] = d.signal[k].p_value;
                }
        if (fm_stat_holm(p, m, 1 - cfg->confidence, sig) < 0)
                return -EINVAL;
        for (size_t j = 0; j < m; j++)
                d.signal[idx[j]].significant = d.signal[idx[j]].crossed && sig[j];
        d.tests = (uint32_t)m;
        evidence(cfg, in, burn, &d);

        bool any_tested = false, any_crossed = false;
        int first = -1;
        for (size_t k = 0; k < _FM_ROLLBACK_SIGNAL_MAX; k++) {
                any_tested |= d.signal[k].skip == FM_ROLLBACK_TESTED;
                any_crossed |= d.signal[k].crossed;
                if (first < 0 && d.signal[k].significant)
                        first = (int)k;
        }

        if (fm_rollback_was_rolled_back_from(s, in->current))
                d.reason = FM_ROLLBACK_ALREADY;
        else if (!has_base)
                d.reason = FM_ROLLBACK_NO_BASELINE;
        else if (first < 0)
                d.reason = any_crossed  ? FM_ROLLBACK_NOT_SIGNIFICANT
                           : any_tested ? FM_ROLLBACK_HEALTHY
                                        : FM_ROLLBACK_NOT_ENOUGH_SAMPLES;
        else {
                d.reason = safety(cfg, s, in, now);
                if (d.reason == FM_ROLLBACK_HEALTHY) {
                        d.reason = fired[first];
                        d.rollback = true;
                }
        }
        *dec = d;
        return d.rollback ? 1 : 0;
}
