/* SPDX-License-Identifier: MIT */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "rollback.h"

#define S(x) ((fm_ms)(x)*FM_MS_PER_S)
#define NOW S(1767225600)

/* A side with correct / outcomes labelled and nothing else. */
static struct fm_rollback_side acc(uint64_t correct, uint64_t outcomes)
{
        return (struct fm_rollback_side){.outcomes = outcomes, .correct = correct};
}

/* An input that passes every safety rule: baseline v1 served 2 h, ready. */
static struct fm_rollback_input input(struct fm_rollback_side cur, struct fm_rollback_side base)
{
        return (struct fm_rollback_input){
                .current = "v2",
                .baseline = "v1",
                .cur = cur,
                .base = base,
                .baseline_ready = true,
                .baseline_served = S(7200),
        };
}

static int decide(const struct fm_rollback_config *cfg, const struct fm_rollback_state *s,
                  const struct fm_rollback_input *in, struct fm_rollback_decision *dec)
{
        return fm_rollback_decide(cfg, s, in, NOW, dec);
}

static const char *reason(const struct fm_rollback_decision *d)
{
        return fm_rollback_reason_name(d->reason);
}

/* ==== The done-when cases =============================================== */

static void test_accuracy_drop_both_sides(void **state)
{
        (void)state;
        struct fm_rollback_config cfg;
        struct fm_rollback_state s;
        struct fm_rollback_decision d;
        fm_rollback_config_default(&cfg);
        fm_rollback_state_init(&s);

        /* baseline 0.90 on 5000, current 0.855 (a 5 % relative drop) on 5000 */
        struct fm_rollback_input in = input(acc(4275, 5000), acc(4500, 5000));
        assert_int_equal(decide(&cfg, &s, &in, &d), 1);
        assert_true(d.rollback);
        assert_string_equal(reason(&d), "accuracy_drop");
        assert_string_equal(d.from, "v2");
        assert_string_equal(d.to, "v1");
        const struct fm_rollback_signal_result *a = &d.signal[FM_ROLLBACK_ACCURACY];
        assert_int_equal(a->skip, FM_ROLLBACK_TESTED);
        assert_true(fabs(a->observed - 0.855) < 1e-12 && fabs(a->baseline - 0.90) < 1e-12);
        assert_true(a->p_value < 1e-9);
        assert_true(a->crossed && a->significant);
        assert_int_equal(d.tests, 1);
        assert_true(d.evidence.n > 0);
        assert_string_equal(d.evidence.item[0].key, "accuracy");
        /* untested signals say why */
        assert_int_equal(d.signal[FM_ROLLBACK_ERROR_RATE].skip, FM_ROLLBACK_SKIP_NO_DATA);
        assert_int_equal(d.signal[FM_ROLLBACK_DRIFT].skip, FM_ROLLBACK_SKIP_NO_DATA);
        assert_true(isnan(d.signal[FM_ROLLBACK_DRIFT].observed));

        /* the same observed drop on 100 outcomes: below min_outcomes */
        in = input(acc(85, 100), acc(90, 100));
        assert_int_equal(decide(&cfg, &s, &in, &d), 0);
        assert_false(d.rollback);
        assert_string_equal(reason(&d), "not_enough_samples");
        assert_int_equal(d.signal[FM_ROLLBACK_ACCURACY].skip, FM_ROLLBACK_SKIP_FEW_SAMPLES);

        /* ... and with the minimum lowered, the test calls it noise (p = 0.17) */
        cfg.min_outcomes = 50;
        assert_int_equal(decide(&cfg, &s, &in, &d), 0);
        assert_string_equal(reason(&d), "not_significant");
        a = &d.signal[FM_ROLLBACK_ACCURACY];
        assert_true(a->crossed && !a->significant);
        assert_true(a->p_value > 0.1 && a->p_value < 0.2);
        fm_rollback_config_default(&cfg);

        /* an unchanged version with the same noise: 0.90 vs 0.90, and 0.897 vs 0.90 */
        in = input(acc(4500, 5000), acc(4500, 5000));
        assert_int_equal(decide(&cfg, &s, &in, &d), 0);
        assert_string_equal(reason(&d), "healthy");
        in = input(acc(4485, 5000), acc(4500, 5000));
        assert_int_equal(decide(&cfg, &s, &in, &d), 0);
        assert_string_equal(reason(&d), "healthy");
        assert_false(d.signal[FM_ROLLBACK_ACCURACY].crossed);
        /* a better current version is not a regression */
        in = input(acc(4750, 5000), acc(4500, 5000));
        assert_int_equal(decide(&cfg, &s, &in, &d), 0);
        assert_string_equal(reason(&d), "healthy");
}

/* ==== Each trigger just below and just above its threshold ============== */

enum knob { ACC, ERR, P99, BURN, PSI };

/*
 * One error in 521 requests against a baseline of 0.035 %: over the ratio,
 * and the z-test (its normal approximation broken on a count of one) says
 * p < 0.05. min_errors keeps it from rolling back a healthy version; from
 * min_errors errors on the same traffic it does.
 */
static void test_min_errors(void **state)
{
        (void)state;
        struct fm_rollback_config cfg;
        struct fm_rollback_state s;
        struct fm_rollback_decision d;
        fm_rollback_config_default(&cfg);
        fm_rollback_state_init(&s);
        assert_int_equal(cfg.min_errors, 5);

        struct fm_rollback_side base = {.requests = 100000, .errors = 35};
        struct fm_rollback_input in =
                input((struct fm_rollback_side){.requests = 521, .errors = 1}, base);
        assert_int_equal(decide(&cfg, &s, &in, &d), 0);
        assert_false(d.rollback);
        const struct fm_rollback_signal_result *e = &d.signal[FM_ROLLBACK_ERROR_RATE];
        assert_int_equal(e->skip, FM_ROLLBACK_TESTED);
        assert_true(e->p_value < 0.05);
        assert_true(e->observed > e->baseline * cfg.error_rate_ratio);
        assert_false(e->crossed);
        assert_string_equal(reason(&d), "healthy");

        /* without the guard, the one error rolls back */
        cfg.min_errors = 1;
        assert_int_equal(decide(&cfg, &s, &in, &d), 1);
        assert_string_equal(reason(&d), "error_rate");

        /* five errors in 521 are a regression */
        cfg.min_errors = 5;
        in = input((struct fm_rollback_side){.requests = 521, .errors = 5}, base);
        assert_int_equal(decide(&cfg, &s, &in, &d), 1);
        assert_string_equal(reason(&d), "error_rate");
        in = input((struct fm_rollback_side){.requests = 521, .errors = 4}, base);
        assert_int_equal(decide(&cfg, &s, &in, &d), 0);

        cfg.min_errors = 0;
        assert_int_equal(fm_rollback_config_validate(&cfg), -EINVAL);
}

struct trigger_case {
        const char *name;
        enum knob knob;
        double value; /* the knob's current-side value, see fill() */
        int ret;
        const char *reason;
};

/* Score bins: the baseline flat, the current tilted by t towards high scores. */
static void tilt(double bins[FM_ROLLBACK_SCORE_BINS], double t, double total)
{
        for (size_t k = 0; k < FM_ROLLBACK_SCORE_BINS; k++)
                bins[k] = total / FM_ROLLBACK_SCORE_BINS * (1 + t * ((double)k - 4.5) / 4.5);
}

static struct fm_rollback_input fill(const struct trigger_case *c, struct fm_rollback_config *cfg)
{
        struct fm_rollback_input in = input(acc(0, 0), acc(0, 0));
        switch (c->knob) {
        case ACC: /* baseline 4500 / 5000 right */
                in.cur = acc((uint64_t)c->value, 5000);
                in.base = acc(4500, 5000);
                break;
        case ERR: /* baseline 1 % of 10000 */
                in.cur.requests = in.base.requests = 10000;
                in.cur.errors = (uint64_t)c->value;
                in.base.errors = 100;
                break;
        case P99: /* baseline 100 ms */
                in.cur.has_p99 = in.base.has_p99 = true;
                in.cur.latency_samples = in.base.latency_samples = 2000;
                in.cur.p99_ms = c->value;
                in.base.p99_ms = 100;
                break;
        case BURN: /* fast pair: value errors in 10000 over 1 h, 1.5 % over 5 min */
                in.burn.requests[0][0] = 10000;
                in.burn.errors[0][0] = (uint64_t)c->value;
                in.burn.requests[0][1] = 1000;
                in.burn.errors[0][1] = 15;
                in.burn.requests[1][0] = 60000; /* slow pair: 0.5 %, burn 5 < 6 */
                in.burn.errors[1][0] = 300;
                in.burn.requests[1][1] = 5000;
                in.burn.errors[1][1] = 25;
                break;
        case PSI: { /* threshold set around the PSI of a 0.5 tilt: value is the offset */
                tilt(in.base.score_bins, 0, 5000);
                tilt(in.cur.score_bins, 0.5, 5000);
                double psi;
                assert_int_equal(fm_psi_compute(in.base.score_bins, in.cur.score_bins,
                                                FM_ROLLBACK_SCORE_BINS, 1, &psi),
                                 0);
                cfg->psi_threshold = psi - c->value;
                break;
        }
        }
        return in;
}

static void test_triggers_table(void **state)
{
        (void)state;
        static const struct trigger_case cases[] = {
                {"accuracy 4.9 % drop", ACC, 4280, 0, "healthy"},
                {"accuracy 5.0 % drop", ACC, 4275, 1, "accuracy_drop"},
                {"accuracy 6 % drop", ACC, 4230, 1, "accuracy_drop"},
                {"error rate 1.5x (not above)", ERR, 150, 0, "healthy"},
                {"error rate 1.51x", ERR, 151, 1, "error_rate"},
                {"error rate 1.4x", ERR, 140, 0, "healthy"},
                {"p99 1.5x (not above)", P99, 150, 0, "healthy"},
                {"p99 1.501x", P99, 150.1, 1, "p99_latency"},
                {"burn 14.4 (not above)", BURN, 144, 0, "healthy"},
                {"burn 14.5", BURN, 145, 1, "slo_burn"},
                {"psi just below", PSI, -1e-6, 0, "healthy"},
                {"psi at threshold", PSI, 0, 1, "drift"},
                {"psi just above", PSI, 1e-6, 1, "drift"},
        };
        for (size_t k = 0; k < ARRAY_SIZE(cases); k++) {
                struct fm_rollback_config cfg;
                struct fm_rollback_state s;
                struct fm_rollback_decision d;
                fm_rollback_config_default(&cfg);
                fm_rollback_state_init(&s);
                struct fm_rollback_input in = fill(&cases[k], &cfg);
                int r = decide(&cfg, &s, &in, &d);
                if (r != cases[k].ret || strcmp(reason(&d), cases[k].reason) != 0)
                        fail_msg("%s: got %d %s", cases[k].name, r, reason(&d));
        }
}

/* p99 and PSI are gated by their minimum samples; burn by the long window's requests. */
static void test_sample_gates(void **state)
{
        (void)state;
        struct fm_rollback_config cfg;
        struct fm_rollback_state s;
        struct fm_rollback_decision d;
        fm_rollback_config_default(&cfg);
        fm_rollback_state_init(&s);

        struct trigger_case c = {"p99", P99, 300, 1, ""};
        struct fm_rollback_input in = fill(&c, &cfg);
        in.cur.latency_samples = 499;
        assert_int_equal(decide(&cfg, &s, &in, &d), 0);
        assert_string_equal(reason(&d), "not_enough_samples");
        assert_int_equal(d.signal[FM_ROLLBACK_P99].skip, FM_ROLLBACK_SKIP_FEW_SAMPLES);
        in.cur.latency_samples = 500;
        assert_int_equal(decide(&cfg, &s, &in, &d), 1);

        /* a big PSI on 500 scores per side is not tested (psi_min_samples 1000) */
        in = input(acc(0, 0), acc(0, 0));
        tilt(in.base.score_bins, 0, 500);
        tilt(in.cur.score_bins, 0.9, 500);
        assert_int_equal(decide(&cfg, &s, &in, &d), 0);
        assert_int_equal(d.signal[FM_ROLLBACK_DRIFT].skip, FM_ROLLBACK_SKIP_FEW_SAMPLES);
        tilt(in.base.score_bins, 0, 1000);
        tilt(in.cur.score_bins, 0.9, 1000);
        assert_int_equal(decide(&cfg, &s, &in, &d), 1);
        assert_string_equal(reason(&d), "drift");

        /* the burn pair needs min_requests in its long window */
        c = (struct trigger_case){"burn", BURN, 500, 1, ""};
        in = fill(&c, &cfg);
        in.burn.requests[0][0] = 499;
        in.burn.errors[0][0] = 400;
        in.burn.requests[1][0] = 499;
        in.burn.errors[1][0] = 400;
        assert_int_equal(decide(&cfg, &s, &in, &d), 0);
        assert_string_equal(reason(&d), "not_enough_samples");
        in.burn.requests[0][0] = 500;
        assert_int_equal(decide(&cfg, &s, &in, &d), 1);
        assert_string_equal(reason(&d), "slo_burn");
        /* the short window stops it: burning has stopped */
        in.burn.errors[0][1] = 0;
        assert_int_equal(decide(&cfg, &s, &in, &d), 0);
}

/*
 * Holm: accuracy 0.855 vs 0.90 on 400 each has p = 0.026. Alone (m = 1) it
 * passes alpha = 0.05; tested together with an unchanged error rate
 * (m = 2) its threshold is 0.025 and it fails.
 */
static void test_holm_borderline(void **state)
{
        (void)state;
        struct fm_rollback_config cfg;
        struct fm_rollback_state s;
        struct fm_rollback_decision d;
        fm_rollback_config_default(&cfg);
        fm_rollback_state_init(&s);
        cfg.min_outcomes = 100;

        struct fm_rollback_input in = input(acc(342, 400), acc(360, 400));
        assert_int_equal(decide(&cfg, &s, &in, &d), 1);
        assert_int_equal(d.tests, 1);
        double p = d.signal[FM_ROLLBACK_ACCURACY].p_value;
        assert_true(p > 0.025 && p < 0.05);

        in.cur.requests = in.base.requests = 10000;
        in.cur.errors = in.base.errors = 100;
        assert_int_equal(decide(&cfg, &s, &in, &d), 0);
        assert_int_equal(d.tests, 2);
        assert_string_equal(reason(&d), "not_significant");
        assert_true(d.signal[FM_ROLLBACK_ACCURACY].crossed);
        assert_false(d.signal[FM_ROLLBACK_ACCURACY].significant);

        /* with 99 % confidence even alone it is not enough */
        in.cur.requests = in.base.requests = 0;
        in.cur.errors = in.base.errors = 0;
        cfg.confidence = 0.99;
        assert_int_equal(decide(&cfg, &s, &in, &d), 0);
        assert_string_equal(reason(&d), "not_significant");
}

/* ==== Safety ============================================================ */

static void test_safety_table(void **state)
{
        (void)state;
        enum {
                BAD_NONE,
                BAD_BASE_RB,
                BAD_BASE_MARKED,
                BAD_YOUNG,
                BAD_NOT_READY,
                BAD_COOLDOWN,
                BAD_COOLDOWN_OVER,
                BAD_CURRENT_RB,
                BAD_NO_BASE,
                BAD_EMPTY_BASE,
                BAD_CLOCK_BACK
        };
        static const struct {
                int what;
                int ret;
                const char *reason;
        } cases[] = {
                {BAD_NONE, 1, "accuracy_drop"},
                {BAD_BASE_RB, 0, "target_rolled_back_from"},
                {BAD_BASE_MARKED, 0, "baseline_not_known_good"},
                {BAD_YOUNG, 0, "baseline_not_known_good"},
                {BAD_NOT_READY, 0, "baseline_not_ready"},
                {BAD_COOLDOWN, 0, "cooldown"},
                {BAD_COOLDOWN_OVER, 1, "accuracy_drop"},
                {BAD_CURRENT_RB, 0, "already_rolled_back"},
                {BAD_NO_BASE, 0, "no_baseline"},
                {BAD_EMPTY_BASE, 0, "no_baseline"},
                {BAD_CLOCK_BACK, 1, "accuracy_drop"},
        };
        for (size_t k = 0; k < ARRAY_SIZE(cases); k++) {
                struct fm_rollback_config cfg;
                struct fm_rollback_state s;
                struct fm_rollback_decision d, prior = {.rollback = true};
                fm_rollback_config_default(&cfg);
                fm_rollback_state_init(&s);
                struct fm_rollback_input in = input(acc(4275, 5000), acc(4500, 5000));
                switch (cases[k].what) {
                case BAD_BASE_RB:
                        prior.from = "v1";
                        assert_int_equal(fm_rollback_commit(&s, &prior, NOW - S(86400)), 0);
                        break;
                case BAD_BASE_MARKED:
                        assert_int_equal(fm_rollback_mark_bad(&s, "v1"), 0);
                        break;
                case BAD_YOUNG:
                        in.baseline_served = cfg.known_good_after - 1;
                        break;
                case BAD_NOT_READY:
                        in.baseline_ready = false;
                        break;
                case BAD_COOLDOWN:
                case BAD_COOLDOWN_OVER:
                case BAD_CLOCK_BACK:
                        prior.from = "v0";
                        assert_int_equal(fm_rollback_commit(
                                                 &s, &prior,
                                                 cases[k].what == BAD_COOLDOWN     ? NOW - S(1799)
                                                 : cases[k].what == BAD_CLOCK_BACK ? NOW + S(60)
                                                                                   : NOW - S(1800)),
                                         0);
                        break;
                case BAD_CURRENT_RB:
                        prior.from = "v2";
                        assert_int_equal(fm_rollback_commit(&s, &prior, NOW - S(86400)), 0);
                        break;
                case BAD_NO_BASE:
                        in.baseline = NULL;
                        break;
                case BAD_EMPTY_BASE:
                        in.baseline = "";
                        break;
                default:
                        break;
                }
                int r = decide(&cfg, &s, &in, &d);
                if (r != cases[k].ret || strcmp(reason(&d), cases[k].reason) != 0)
                        fail_msg("case %zu: got %d %s", k, r, reason(&d));
                /* evidence is there whether or not it acts */
                if (cases[k].what != BAD_NO_BASE && cases[k].what != BAD_EMPTY_BASE)
                        assert_true(d.signal[FM_ROLLBACK_ACCURACY].significant);
        }
}

static void test_state_marks(void **state)
{
        (void)state;
        struct fm_rollback_state s;
        struct fm_rollback_decision d = {.rollback = true, .from = "v2"};
        fm_rollback_state_init(&s);

        assert_false(fm_rollback_is_bad(&s, "v2"));
        assert_int_equal(fm_rollback_commit(&s, &d, NOW), 0);
        assert_true(fm_rollback_is_bad(&s, "v2"));
        assert_true(fm_rollback_was_rolled_back_from(&s, "v2"));
        assert_true(s.has_last && s.last_at == NOW && s.rollbacks == 1);
        assert_int_equal(fm_rollback_mark_bad(&s, "v3"), 0);
        assert_true(fm_rollback_is_bad(&s, "v3"));
        assert_false(fm_rollback_was_rolled_back_from(&s, "v3"));
        assert_false(fm_rollback_is_bad(&s, NULL));
        assert_false(fm_rollback_is_bad(&s, ""));

        /* full: the oldest mark goes */
        char name[16];
        for (int k = 0; k < FM_ROLLBACK_MARKS_MAX - 1; k++) {
                snprintf(name, sizeof(name), "x%d", k);
                assert_int_equal(fm_rollback_mark_bad(&s, name), 0);
        }
        assert_false(fm_rollback_is_bad(&s, "v2"));
        assert_true(fm_rollback_is_bad(&s, "v3"));
        assert_true(fm_rollback_is_bad(&s, "x0"));

        d.rollback = false;
        assert_int_equal(fm_rollback_commit(&s, &d, NOW), -EINVAL);
        d = (struct fm_rollback_decision){.rollback = true, .from = ""};
        assert_int_equal(fm_rollback_commit(&s, &d, NOW), -EINVAL);
        assert_int_equal(fm_rollback_mark_bad(&s, NULL), -EINVAL);
        assert_int_equal(fm_rollback_mark_bad(&s, ""), -EINVAL);
}

/* ==== Missing data and invalid input ==================================== */

static void test_missing_data(void **state)
{
        (void)state;
        struct fm_rollback_config cfg;
        struct fm_rollback_state s;
        struct fm_rollback_decision d;
        fm_rollback_config_default(&cfg);
        fm_rollback_state_init(&s);

        struct fm_rollback_input in = input(acc(0, 0), acc(0, 0));
        assert_int_equal(decide(&cfg, &s, &in, &d), 0);
        assert_string_equal(reason(&d), "not_enough_samples");
        assert_int_equal(d.tests, 0);
        for (size_t k = 0; k < _FM_ROLLBACK_SIGNAL_MAX; k++)
                assert_int_not_equal(d.signal[k].skip, FM_ROLLBACK_TESTED);

        /* the current side's bad accuracy with a baseline that has no feedback */
        in = input(acc(3000, 5000), acc(0, 0));
        assert_int_equal(decide(&cfg, &s, &in, &d), 0);
        assert_string_equal(reason(&d), "not_enough_samples");
        assert_int_equal(d.signal[FM_ROLLBACK_ACCURACY].skip, FM_ROLLBACK_SKIP_NO_DATA);

        /* p99 on one side only; a zero baseline p99 */
        in = input(acc(0, 0), acc(0, 0));
        in.cur.has_p99 = true;
        in.cur.p99_ms = 1000;
        in.cur.latency_samples = in.base.latency_samples = 5000;
        assert_int_equal(decide(&cfg, &s, &in, &d), 0);
        assert_int_equal(d.signal[FM_ROLLBACK_P99].skip, FM_ROLLBACK_SKIP_NO_DATA);
        in.base.has_p99 = true;
        in.base.p99_ms = 0;
        assert_int_equal(decide(&cfg, &s, &in, &d), 0);
        assert_int_equal(d.signal[FM_ROLLBACK_P99].skip, FM_ROLLBACK_SKIP_NO_DATA);

        /* without a baseline only the burn rate is looked at, and nothing is done */
        in = input(acc(3000, 5000), acc(0, 0));
        in.baseline = NULL;
        in.burn.requests[0][0] = 10000;
        in.burn.errors[0][0] = 5000;
        in.burn.requests[0][1] = 1000;
        in.burn.errors[0][1] = 500;
        assert_int_equal(decide(&cfg, &s, &in, &d), 0);
        assert_string_equal(reason(&d), "no_baseline");
        assert_int_equal(d.signal[FM_ROLLBACK_ACCURACY].skip, FM_ROLLBACK_SKIP_NO_BASELINE);
        assert_true(d.signal[FM_ROLLBACK_SLO_BURN].significant);
        assert_null(d.to);

        /* invalid input leaves dec untouched */
        struct fm_rollback_decision keep;
        memset(&keep, 0x5a, sizeof(keep));
        d = keep;
        const struct {
                int what;
        } bad[] = {{0}, {1}, {2}, {3}, {4}, {5}, {6}, {7}};
        for (size_t k = 0; k < ARRAY_SIZE(bad); k++) {
                in = input(acc(10, 20), acc(10, 20));
                switch (bad[k].what) {
                case 0:
                        in.current = NULL;
                        break;
                case 1:
                        in.current = "";
                        break;
                case 2:
                        in.cur.errors = 2, in.cur.requests = 1;
                        break;
                case 3:
                        in.base.correct = 21;
                        break;
                case 4:
                        in.cur.has_p99 = true, in.cur.p99_ms = NAN;
                        break;
                case 5:
                        in.base.score_bins[3] = -1;
                        break;
                case 6:
                        in.baseline_served = -1;
                        break;
                case 7:
                        in.burn.errors[1][1] = 1;
                        break;
                }
                assert_int_equal(decide(&cfg, &s, &in, &d), -EINVAL);
                assert_memory_equal(&d, &keep, sizeof(d));
        }
        in = input(acc(10, 20), acc(10, 20));
        assert_int_equal(fm_rollback_decide(NULL, &s, &in, NOW, &d), -EINVAL);
        assert_int_equal(fm_rollback_decide(&cfg, NULL, &in, NOW, &d), -EINVAL);
        assert_int_equal(fm_rollback_decide(&cfg, &s, NULL, NOW, &d), -EINVAL);
        assert_int_equal(fm_rollback_decide(&cfg, &s, &in, NOW, NULL), -EINVAL);
        cfg.confidence = 1;
        assert_int_equal(decide(&cfg, &s, &in, &d), -EINVAL);
}

/* ==== Flapping ========================================================== */

/*
 * The input alternates every tick between a significant drop and a
 * healthy version. The first bad tick rolls back (committed as the
 * adapter would); afterwards nothing oscillates: the current version is
 * already rolled back from, and once the roles swap (v1 current, v2 its
 * "previous" version) v2 is never a target again, however bad v1 looks.
 */
static void test_flapping(void **state)
{
        (void)state;
        struct fm_rollback_config cfg;
        struct fm_rollback_state s;
        struct fm_rollback_decision d;
        fm_rollback_config_default(&cfg);
        fm_rollback_state_init(&s);

        /* before min samples, flapping does nothing at all */
        for (int t = 0; t < 20; t++) {
                struct fm_rollback_input in = t % 2 ? input(acc(300, 400), acc(360, 400))
                                                    : input(acc(360, 400), acc(360, 400));
                assert_int_equal(fm_rollback_decide(&cfg, &s, &in, NOW + S(60 * t), &d), 0);
        }

        int rollbacks = 0;
        for (int t = 0; t < 200; t++) {
                fm_ms now = NOW + S(60 * t);
                struct fm_rollback_input in = t % 2 ? input(acc(4275, 5000), acc(4500, 5000))
                                                    : input(acc(4500, 5000), acc(4500, 5000));
                int r = fm_rollback_decide(&cfg, &s, &in, now, &d);
                assert_true(r >= 0);
                if (r == 1) {
                        rollbacks++;
                        assert_int_equal(fm_rollback_commit(&s, &d, now), 0);
                }
                if (t > 1 && t % 2)
                        assert_string_equal(reason(&d), "already_rolled_back");
        }
        assert_int_equal(rollbacks, 1);

        /* roles swapped, long after any cooldown: v1 looks bad against v2 */
        struct fm_rollback_input in = input(acc(4000, 5000), acc(4500, 5000));
        in.current = "v1";
        in.baseline = "v2";
        assert_int_equal(fm_rollback_decide(&cfg, &s, &in, NOW + S(86400), &d), 0);
        assert_string_equal(reason(&d), "target_rolled_back_from");
}

/* ==== Configuration ===================================================== */

static void test_config(void **state)
{
        (void)state;
        struct fm_rollback_config cfg;
        fm_rollback_config_default(&cfg);
        assert_int_equal(fm_rollback_config_validate(&cfg), 0);
        assert_true(cfg.accuracy_drop == 0.05 && cfg.confidence == 0.95);
        assert_true(cfg.psi_threshold == 0.2 && cfg.psi_min_samples == 1000);
        assert_int_equal(cfg.slo_period, FM_BURN_WORKBOOK_PERIOD_MS);
        assert_int_equal(cfg.cooldown, S(1800));
        assert_int_equal(cfg.known_good_after, S(1800));
        assert_int_equal(fm_rollback_config_validate(NULL), -EINVAL);

        const struct {
                int field;
                double value;
                int ret;
        } cases[] = {
                {0, 0, -EINVAL},
                {0, 1, -EINVAL},
                {0, NAN, -EINVAL},
                {0, 0.5, 0},
                {1, 0.99, -EINVAL},
                {1, 1, 0},
                {1, INFINITY, -EINVAL},
                {2, 0.5, -EINVAL},
                {2, NAN, -EINVAL},
                {3, 0, -EINVAL},
                {3, 1, -EINVAL},
                {3, 0.99, 0},
                {4, 0, -EINVAL},
                {4, 4319, -EINVAL},
                {4, 7 * 86400e3, 0},
                {4, 31 * 86400e3, -EINVAL},
                {5, 0, -EINVAL},
                {5, NAN, -EINVAL},
                {6, 0, -EINVAL},
                {7, 0, -EINVAL},
                {8, 0, -EINVAL},
                {9, 0.49, -EINVAL},
                {9, 1, -EINVAL},
                {9, 0.5, 0},
                {10, -1, -EINVAL},
                {10, 0, 0},
                {11, -1, -EINVAL},
                {11, 31 * 86400e3, -EINVAL},
                {11, 0, 0},
        };
        for (size_t k = 0; k < ARRAY_SIZE(cases); k++) {
                fm_rollback_config_default(&cfg);
                double v = cases[k].value;
                switch (cases[k].field) {
                case 0:
                        cfg.accuracy_drop = v;
                        break;
                case 1:
                        cfg.error_rate_ratio = v;
                        break;
                case 2:
                        cfg.p99_ratio = v;
                        break;
                case 3:
                        cfg.slo_target = v;
                        break;
                case 4:
                        cfg.slo_period = (fm_ms)v;
                        break;
                case 5:
                        cfg.psi_threshold = v;
                        break;
                case 6:
                        cfg.psi_min_samples = (uint64_t)v;
                        break;
                case 7:
                        cfg.min_requests = (uint64_t)v;
                        break;
                case 8:
                        cfg.min_outcomes = (uint64_t)v;
                        break;
                case 9:
                        cfg.confidence = v;
                        break;
                case 10:
                        cfg.known_good_after = (fm_ms)v;
                        break;
                case 11:
                        cfg.cooldown = (fm_ms)v;
                        break;
                }
                if (fm_rollback_config_validate(&cfg) != cases[k].ret)
                        fail_msg("case %zu", k);
        }

        assert_string_equal(fm_rollback_reason_name(FM_ROLLBACK_COOLDOWN), "cooldown");
        assert_null(fm_rollback_reason_name(_FM_ROLLBACK_REASON_MAX));
        assert_string_equal(fm_rollback_skip_name(FM_ROLLBACK_SKIP_FEW_SAMPLES), "few_samples");
        assert_null(fm_rollback_skip_name(_FM_ROLLBACK_SKIP_MAX));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_accuracy_drop_both_sides),
                cmocka_unit_test(test_min_errors),
                cmocka_unit_test(test_triggers_table),
                cmocka_unit_test(test_sample_gates),
                cmocka_unit_test(test_holm_borderline),
                cmocka_unit_test(test_safety_table),
                cmocka_unit_test(test_state_marks),
                cmocka_unit_test(test_missing_data),
                cmocka_unit_test(test_flapping),
                cmocka_unit_test(test_config),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
