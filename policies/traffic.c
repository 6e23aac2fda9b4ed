/* SPDX-License-Identifier: MIT */
#include "traffic.h"

#include <errno.h>
#include <math.h>
#include <string.h>

/* ==== Ejection weights ================================================== */

static const char *const reason_names[_FM_TRAFFIC_REASON_MAX] = {
        [FM_TRAFFIC_HEALTHY] = "healthy",
        [FM_TRAFFIC_PROBE] = "half_open_probe",
        [FM_TRAFFIC_EJECTED] = "ejected",
        [FM_TRAFFIC_KEPT_CAP] = "kept_max_ejection",
        [FM_TRAFFIC_KEPT_FLOOR] = "kept_healthy_floor",
        [FM_TRAFFIC_ZERO_BASE] = "zero_base",
};

const char *fm_traffic_reason_name(enum fm_traffic_reason r)
{
        return (unsigned)r < _FM_TRAFFIC_REASON_MAX ? reason_names[r] : NULL;
}

void fm_traffic_config_default(struct fm_traffic_config *cfg)
{
        *cfg = (struct fm_traffic_config){
                .max_ejection_percent = 50,
                .healthy_floor = 0.5,
                .probe_percent = 5,
        };
}

int fm_traffic_config_validate(const struct fm_traffic_config *cfg)
{
        if (cfg->max_ejection_percent > 100)
                return -EINVAL;
        if (cfg->probe_percent == 0 || cfg->probe_percent > 100)
                return -EINVAL;
        /* written so that NaN fails */
        if (!(cfg->healthy_floor >= 0.0 && cfg->healthy_floor <= 1.0))
                return -EINVAL;
        return 0;
}

/*
 * ceil(n × f) for f in [0, 1], forgiving the last bits of binary fractions:
 * 10 × 0.3 is 3.0000000000000004 in doubles and must give 3, not 4.
 */
static uint32_t ceil_share(uint32_t n, double f)
{
        double x = ceil((double)n * f - 1e-9);

        return x <= 0.0 ? 0 : (uint32_t)x;
}

/* NaN ranks lowest, so a target without a usable priority goes last. */
static double rank(double p)
{
        return isnan(p) ? -HUGE_VAL : p;
}

/* True when target a goes out before target b: higher priority, then earlier input. */
static bool before(const struct fm_traffic_target *t, uint16_t a, uint16_t b)
{
        double pa = rank(t[a].priority), pb = rank(t[b].priority);

        if (pa > pb)
                return true;
        if (pa < pb)
                return false;
        return a < b;
}

/*
 * Shares 100 among the targets with eff[i] > 0 in proportion to eff, as
 * integers summing to exactly 100, each at least 1 (there are at most 100
 * of them).
 *
 * Shares under 1 are pinned at 1 first, and the rest of the budget is
 * split among the others; pinning only lowers the others' quotas, so all
 * that fall under 1 in one pass are pinned together and the passes end.
 * Some target always stays unpinned: the unpinned ones share a budget at
 * least as large as their number, so one of them has a quota of 1 or more.
 * The rest is the largest-remainder (Hamilton) method in exact integers:
 * each gets floor(budget × eff / W) and the leftover units go one each to
 * the largest remainders, ties to the earlier target.
 */
static void apportion(const uint64_t *eff, uint32_t n, uint32_t *w)
{
        bool pinned[FM_TRAFFIC_TARGETS_MAX] = {false};
        uint64_t budget = 100, total;
        bool changed;

        do {
                total = 0;
                for (uint32_t i = 0; i < n; i++)
                        if (eff[i] > 0 && !pinned[i])
                                total += eff[i];
                /* judged against this pass's budget and total, then both shrink */
                uint64_t newly = 0;
                for (uint32_t i = 0; i < n; i++) {
                        if (eff[i] == 0 || pinned[i] || budget * eff[i] >= total)
                                continue;
                        pinned[i] = true;
                        newly++;
                }
                budget -= newly;
                changed = newly > 0;
        } while (changed);

        uint64_t rem[FM_TRAFFIC_TARGETS_MAX] = {0};
        uint64_t given = 0;

        for (uint32_t i = 0; i < n; i++) {
                if (eff[i] == 0) {
                        w[i] = 0;
                } else if (pinned[i]) {
                        w[i] = 1;
                } else {
                        w[i] = (uint32_t)(budget * eff[i] / total);
                        rem[i] = budget * eff[i] % total;
                        given += w[i];
                }
        }
        for (uint64_t left = budget - given; left > 0; left--) {
                uint32_t best = UINT32_MAX;

                for (uint32_t i = 0; i < n; i++) {
                        if (eff[i] == 0 || pinned[i] || rem[i] == 0)
                                continue;
                        if (best == UINT32_MAX || rem[i] > rem[best])
                                best = i;
                }
                /* left > 0 implies some remainder is still unused; never taken */
                if (best == UINT32_MAX)
                        break;
                w[best]++;
                rem[best] = 0;
        }
}

int fm_traffic_eject(const struct fm_traffic_config *cfg, const struct fm_traffic_target *targets,
                     uint32_t n, struct fm_traffic_result *ret)
{
        struct fm_traffic_result r = {.n = n};
        uint16_t want[FM_TRAFFIC_TARGETS_MAX];
        uint64_t eff[FM_TRAFFIC_TARGETS_MAX];
        uint32_t pool = 0, zero = 0, half = 0, n_want = 0;
        int k;

        k = fm_traffic_config_validate(cfg);
        if (k < 0)
                return k;
        if (n > FM_TRAFFIC_TARGETS_MAX)
                return -E2BIG;
        for (uint32_t i = 0; i < n; i++)
                if (targets[i].eject && targets[i].half_open)
                        return -EINVAL;

        /* The pool, and the wishes in ejection order (insertion sort: n is small, stable). */
        for (uint32_t i = 0; i < n; i++) {
                const struct fm_traffic_target *t = &targets[i];

                if (t->base == 0) {
                        r.reason[i] = FM_TRAFFIC_ZERO_BASE;
                        zero++;
                        continue;
                }
                pool++;
                if (t->half_open) {
                        r.reason[i] = FM_TRAFFIC_PROBE;
                        half++;
                } else {
                        r.reason[i] = FM_TRAFFIC_HEALTHY;
                }
                if (!t->eject)
                        continue;
                uint32_t j = n_want++;
                for (; j > 0 && before(targets, (uint16_t)i, want[j - 1]); j--)
                        want[j] = want[j - 1];
                want[j] = (uint16_t)i;
        }
        if (pool == 0)
                return -ENODATA;

        uint32_t floor_targets = ceil_share(pool, cfg->healthy_floor);
        if (floor_targets < 1)
                floor_targets = 1;
        if (floor_targets > pool)
                floor_targets = pool;
        uint32_t by_floor = pool - floor_targets;

        uint32_t cap = pool * cfg->max_ejection_percent / 100;
        bool small_pool = false;
        if (cap == 0 && cfg->max_ejection_percent > 0 && pool - 1 >= floor_targets) {
                /* the small-pool rule: one ejection as long as the floor holds */
                cap = 1;
                small_pool = true;
        }
        uint32_t allowed = cap < by_floor ? cap : by_floor;
        enum fm_traffic_reason kept_reason =
                by_floor <= cap ? FM_TRAFFIC_KEPT_FLOOR : FM_TRAFFIC_KEPT_CAP;
        uint32_t kept_cap = 0, kept_floor = 0;

        for (uint32_t j = 0; j < n_want; j++) {
                uint16_t i = want[j];

                if (j < allowed) {
                        r.reason[i] = FM_TRAFFIC_EJECTED;
                        r.ejected[r.n_ejected++] = i;
                } else {
                        r.reason[i] = kept_reason;
                        r.kept[r.n_kept++] = i;
                        if (kept_reason == FM_TRAFFIC_KEPT_CAP)
                                kept_cap++;
                        else
                                kept_floor++;
                }
        }

        /* Effective weights in hundredths of a base unit, so probes stay exact integers. */
        for (uint32_t i = 0; i < n; i++) {
                switch (r.reason[i]) {
                case FM_TRAFFIC_ZERO_BASE:
                case FM_TRAFFIC_EJECTED:
                        eff[i] = 0;
                        break;
                case FM_TRAFFIC_PROBE:
                        eff[i] = (uint64_t)targets[i].base * cfg->probe_percent;
                        break;
                default:
                        eff[i] = (uint64_t)targets[i].base * 100;
                        break;
                }
        }
        apportion(eff, n, r.weight);

        fm_evidence_add(&r.evidence, "targets", pool);
        fm_evidence_add(&r.evidence, "zero_base_targets", zero);
        fm_evidence_add(&r.evidence, "half_open_targets", half);
        fm_evidence_add(&r.evidence, "eject_wanted", n_want);
        fm_evidence_add(&r.evidence, "ejected", r.n_ejected);
        fm_evidence_add(&r.evidence, "kept_by_cap", kept_cap);
        fm_evidence_add(&r.evidence, "kept_by_floor", kept_floor);
        fm_evidence_add(&r.evidence, "max_ejection_percent", cfg->max_ejection_percent);
        fm_evidence_add(&r.evidence, "cap_ejections", cap);
        fm_evidence_add(&r.evidence, "small_pool_rule", small_pool);
        fm_evidence_add(&r.evidence, "healthy_floor", cfg->healthy_floor);
        fm_evidence_add(&r.evidence, "floor_targets", floor_targets);
        fm_evidence_add(&r.evidence, "allowed_ejections", allowed);
        fm_evidence_add(&r.evidence, "probe_percent", cfg->probe_percent);

        *ret = r;
        return 0;
}

/* ==== Canary progression ================================================ */

static const char *const action_names[_FM_CANARY_ACTION_MAX] = {
        [FM_CANARY_HOLD] = "hold",
        [FM_CANARY_ADVANCE] = "advance",
        [FM_CANARY_PROMOTE] = "promote",
        [FM_CANARY_ABORT] = "abort",
};

static const char *const canary_reason_names[_FM_CANARY_REASON_MAX] = {
        [FM_CANARY_INSUFFICIENT_DATA] = "insufficient_data",
        [FM_CANARY_INCONCLUSIVE] = "inconclusive",
        [FM_CANARY_INTERVAL] = "interval_not_elapsed",
        [FM_CANARY_PASSED] = "analysis_passed",
        [FM_CANARY_ERROR_REGRESSION] = "error_rate_regression",
        [FM_CANARY_LATENCY_REGRESSION] = "latency_regression",
        [FM_CANARY_TERMINAL] = "terminal",
};

const char *fm_canary_action_name(enum fm_canary_action a)
{
        return (unsigned)a < _FM_CANARY_ACTION_MAX ? action_names[a] : NULL;
}

const char *fm_canary_reason_name(enum fm_canary_reason r)
{
        return (unsigned)r < _FM_CANARY_REASON_MAX ? canary_reason_names[r] : NULL;
}

void fm_canary_config_default(struct fm_canary_config *cfg)
{
        *cfg = (struct fm_canary_config){
                .steps = {5, 10, 25, 50, 100},
                .n_steps = 5,
                .interval = 5 * 60 * FM_MS_PER_S,
                .min_requests = 100,
                .error_margin = 0.2,
                .confidence = 0.95,
                .max_p99_ratio = 1.5,
        };
}

int fm_canary_config_validate(const struct fm_canary_config *cfg)
{
        if (cfg->n_steps == 0 || cfg->n_steps > FM_CANARY_STEPS_MAX)
                return -EINVAL;
        for (uint32_t i = 0; i < cfg->n_steps; i++) {
                if (cfg->steps[i] == 0 || cfg->steps[i] > 100)
                        return -EINVAL;
                if (i > 0 && cfg->steps[i] <= cfg->steps[i - 1])
                        return -EINVAL;
        }
        if (cfg->steps[cfg->n_steps - 1] != 100)
                return -EINVAL;
        if (cfg->interval <= 0 || cfg->interval > FM_CANARY_INTERVAL_MAX)
                return -EINVAL;
        if (cfg->min_requests == 0)
                return -EINVAL;
        /* each written so that NaN fails */
        if (!(cfg->error_margin >= 0.0 && isfinite(cfg->error_margin)))
                return -EINVAL;
        if (!(cfg->confidence > 0.5 && cfg->confidence < 1.0))
                return -EINVAL;
        if (!(cfg->max_p99_ratio >= 1.0 && isfinite(cfg->max_p99_ratio)))
                return -EINVAL;
        return 0;
}

void fm_canary_reset(struct fm_canary_state *state, fm_ms now)
{
        *state = (struct fm_canary_state){.step = 0, .step_since = now};
}

uint32_t fm_canary_weight(const struct fm_canary_config *cfg, const struct fm_canary_state *state)
{
        if (state->aborted)
                return 0;
        if (state->promoted)
                return 100;
        if (state->step >= cfg->n_steps || state->step >= FM_CANARY_STEPS_MAX)
                return 0;
        return cfg->steps[state->step];
}

static bool side_ok(const struct fm_canary_side *s)
{
        if (s->errors > s->requests)
                return false;
        return !s->has_p99 || (isfinite(s->p99_ms) && s->p99_ms >= 0.0);
}

/*
 * One-sided two-proportion z-test of "the canary's error rate is no higher
 * than stable's": z = (pc - ps) / sqrt(p (1 - p) (1/nc + 1/ns)) with the
 * pooled rate p, and the p-value is the upper tail 1 - Φ(z), computed as
 * erfc(z / √2) / 2 so it stays accurate far in the tail. When the pooled
 * rate is 0 or 1 both sides are identical and there is nothing to reject.
 */
static void z_test(uint64_t err_c, uint64_t n_c, uint64_t err_s, uint64_t n_s, double *ret_z,
                   double *ret_p)
{
        double pc = (double)err_c / (double)n_c, ps = (double)err_s / (double)n_s;
        double p = ((double)err_c + (double)err_s) / ((double)n_c + (double)n_s);
        double se = sqrt(p * (1.0 - p) * (1.0 / (double)n_c + 1.0 / (double)n_s));

        if (!(se > 0.0)) {
                *ret_z = 0.0;
                *ret_p = 1.0;
                return;
        }
        *ret_z = (pc - ps) / se;
        *ret_p = 0.5 * erfc(*ret_z * 0.70710678118654752440); /* 1/√2 */
}

int fm_canary_decide(const struct fm_canary_config *cfg, struct fm_canary_state *state,
                     const struct fm_canary_input *in, fm_ms now, struct fm_canary_decision *ret)
{
        struct fm_canary_decision d = {.action = FM_CANARY_HOLD};
        struct fm_canary_state s = *state;
        const struct fm_canary_side *st = &in->stable, *ca = &in->canary;
        int k;

        k = fm_canary_config_validate(cfg);
        if (k < 0)
                return k;
        if (s.step >= cfg->n_steps || (s.aborted && s.promoted))
                return -EINVAL;
        if (!side_ok(st) || !side_ok(ca))
                return -EINVAL;

        fm_ms elapsed;
        if (__builtin_sub_overflow(now, s.step_since, &elapsed))
                elapsed = now < s.step_since ? INT64_MIN : INT64_MAX;

        fm_evidence_add(&d.evidence, "step", s.step);
        fm_evidence_add(&d.evidence, "canary_weight_percent", fm_canary_weight(cfg, &s));
        fm_evidence_add(&d.evidence, "step_elapsed_s", (double)elapsed / FM_MS_PER_S);
        fm_evidence_add(&d.evidence, "interval_s", (double)cfg->interval / FM_MS_PER_S);
        fm_evidence_add(&d.evidence, "min_requests", (double)cfg->min_requests);
        fm_evidence_add(&d.evidence, "stable_requests", (double)st->requests);
        fm_evidence_add(&d.evidence, "canary_requests", (double)ca->requests);

        if (s.aborted || s.promoted) {
                d.reason = FM_CANARY_TERMINAL;
                goto done;
        }
        if (st->requests < cfg->min_requests || ca->requests < cfg->min_requests) {
                d.reason = FM_CANARY_INSUFFICIENT_DATA;
                goto done;
        }

        double rate_s = (double)st->errors / (double)st->requests;
        double rate_c = (double)ca->errors / (double)ca->requests;
        double z, p_value;

        z_test(ca->errors, ca->requests, st->errors, st->requests, &z, &p_value);
        fm_evidence_add(&d.evidence, "stable_error_rate", rate_s);
        fm_evidence_add(&d.evidence, "canary_error_rate", rate_c);
        fm_evidence_add(&d.evidence, "error_margin", cfg->error_margin);
        fm_evidence_add(&d.evidence, "error_z", z);
        fm_evidence_add(&d.evidence, "error_p_value", p_value);

        bool latency_bad = false;
        if (st->has_p99 && ca->has_p99 && st->p99_ms > 0.0) {
                double ratio = ca->p99_ms / st->p99_ms;

                fm_evidence_add(&d.evidence, "p99_ratio", ratio);
                fm_evidence_add(&d.evidence, "max_p99_ratio", cfg->max_p99_ratio);
                latency_bad = ratio > cfg->max_p99_ratio;
        }
        bool over_margin = rate_c > rate_s * (1.0 + cfg->error_margin);
        bool significant = p_value < 1.0 - cfg->confidence;

        if (over_margin && significant) {
                d.action = FM_CANARY_ABORT;
                d.reason = FM_CANARY_ERROR_REGRESSION;
        } else if (latency_bad) {
                d.action = FM_CANARY_ABORT;
                d.reason = FM_CANARY_LATENCY_REGRESSION;
        } else if (over_margin) {
                d.reason = FM_CANARY_INCONCLUSIVE;
        } else if (elapsed < cfg->interval) {
                d.reason = FM_CANARY_INTERVAL;
        } else if (s.step + 1 == cfg->n_steps) {
                d.action = FM_CANARY_PROMOTE;
                d.reason = FM_CANARY_PASSED;
        } else {
                d.action = FM_CANARY_ADVANCE;
                d.reason = FM_CANARY_PASSED;
        }

        switch (d.action) {
        case FM_CANARY_ABORT:
                s.aborted = true;
                s.step_since = now;
                d.rollback = true;
                break;
        case FM_CANARY_PROMOTE:
                s.promoted = true;
                s.step_since = now;
                break;
        case FM_CANARY_ADVANCE:
                s.step++;
                s.step_since = now;
                break;
        default:
                break;
        }

done:
        d.weight = fm_canary_weight(cfg, &s);
        *state = s;
        *ret = d;
        return d.action == FM_CANARY_HOLD ? 0 : 1;
}
