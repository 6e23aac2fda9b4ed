/* SPDX-License-Identifier: MIT */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "event.h"
#include "fleet.h"
#include "intent.h"
#include "policies.h"
#include "policy.h"
#include "reconcile.h"

#define S(x) ((fm_ms)(x)*FM_MS_PER_S)
#define T0 S(1767225600)

struct fixture {
        struct fm_fleet_config fcfg;
        struct fm_policies_config pcfg;
        struct fm_fleet *fleet;
        struct fm_policies *pol;
        struct fm_plan plan;
        struct fm_event *ev;
};

static int setup(void **state)
{
        struct fixture *fx = calloc(1, sizeof(*fx));
        assert_non_null(fx);
        fx->ev = calloc(1, sizeof(*fx->ev));
        assert_non_null(fx->ev);
        fm_fleet_config_default(&fx->fcfg);
        fm_policies_config_default(&fx->pcfg);
        assert_int_equal(fm_plan_init(&fx->plan, 256, 256), 0);
        *state = fx;
        return 0;
}

static int teardown(void **state)
{
        struct fixture *fx = *state;
        fm_plan_done(&fx->plan);
        fm_policies_free(fx->pol);
        fm_fleet_free(fx->fleet);
        free(fx->ev);
        free(fx);
        return 0;
}

/* Creates the fleet and the policy set from the fixture's configurations. */
static void start(struct fixture *fx)
{
        fm_policies_free(fx->pol);
        fm_fleet_free(fx->fleet);
        assert_int_equal(fm_fleet_new(&fx->fcfg, &fx->fleet), 0);
        assert_int_equal(fm_policies_new(&fx->pcfg, &fx->pol), 0);
}

static struct fm_event *event(struct fixture *fx, enum fm_event_kind kind, const char *dep,
                              const char *inst, const char *version, fm_ms ts)
{
        struct fm_event *ev = fx->ev;
        memset(ev, 0, sizeof(*ev));
        ev->kind = kind;
        snprintf(ev->deployment, sizeof(ev->deployment), "%s", dep);
        snprintf(ev->instance, sizeof(ev->instance), "%s", inst);
        snprintf(ev->version, sizeof(ev->version), "%s", version);
        ev->fields = FM_F_VERSION | FM_F_TS;
        ev->ts = ts;
        return ev;
}

static void apply(struct fixture *fx)
{
        enum fm_reject why = FM_REJECT_NONE;
        assert_int_equal(fm_fleet_apply(fx->fleet, fx->ev, &why), 0);
}

static void kpi(struct fixture *fx, const char *dep, const char *inst, const char *version,
                fm_ms ts, uint64_t requests, uint64_t errors)
{
        struct fm_event *ev = event(fx, FM_EVENT_KPI, dep, inst, version, ts);
        ev->requests = requests;
        ev->errors = errors;
        ev->p50_ms = 20;
        ev->p95_ms = 40;
        ev->p99_ms = 50;
        ev->fields |= FM_F_REQUESTS | FM_F_ERRORS | FM_F_LATENCY_MS;
        apply(fx);
}

static void gpu(struct fixture *fx, const char *dep, const char *inst, fm_ms ts, double util)
{
        struct fm_event *ev = event(fx, FM_EVENT_KPI, dep, inst, "v1", ts);
        ev->gauge[FM_GAUGE_GPU_UTIL] = util;
        ev->fields |= FM_F_GAUGE(FM_GAUGE_GPU_UTIL);
        apply(fx);
}

static void ready(struct fixture *fx, const char *dep, const char *inst, fm_ms ts)
{
        struct fm_event *ev = event(fx, FM_EVENT_HEALTH, dep, inst, "v1", ts);
        ev->status = FM_HEALTH_OK;
        ev->ready = true;
        ev->fields |= FM_F_READY;
        apply(fx);
}

static void tick(struct fixture *fx, fm_ms now)
{
        struct fm_policy list[8];
        size_t n = fm_policies_list(fx->pol, list, ARRAY_SIZE(list));
        assert_int_equal(fm_reconcile(fx->fleet, list, n, now, &fx->plan), 0);
}

/* The number of intents of the plan from policy (NULL: any) with action (-1: any). */
static int count(const struct fixture *fx, const char *policy, int action)
{
        int n = 0;
        for (uint32_t k = 0; k < fx->plan.n_intents; k++) {
                const struct fm_intent *it = &fx->plan.intent[k];
                if ((!policy || strcmp(it->policy, policy) == 0) &&
                    (action < 0 || (int)it->action == action))
                        n++;
        }
        return n;
}

static const struct fm_intent *find(const struct fixture *fx, const char *policy, int action)
{
        for (uint32_t k = 0; k < fx->plan.n_intents; k++) {
                const struct fm_intent *it = &fx->plan.intent[k];
                if (strcmp(it->policy, policy) == 0 && (int)it->action == action)
                        return it;
        }
        return NULL;
}

/* The weight of target in a set_weights intent; -1 if absent. Also checks the sum. */
static int weight_of(const struct fixture *fx, const struct fm_intent *it, const char *target)
{
        int found = -1;
        uint32_t sum = 0;
        for (uint32_t k = 0; k < it->arg.weights.n; k++) {
                const struct fm_weight *w = &fx->plan.weight[it->arg.weights.first + k];
                sum += w->weight;
                if (strcmp(w->target, target) == 0)
                        found = (int)w->weight;
        }
        assert_int_equal(sum, 100);
        return found;
}

/* ==== autoscale ========================================================= */

static void autoscale_fleet(struct fixture *fx, double util)
{
        fx->pcfg.autoscale_enabled = true;
        fx->pcfg.autoscale.metric[FM_AUTOSCALE_GPU_UTIL].target = 0.4;
        start(fx);
        const char *names[] = {"a-0", "a-1", "a-2"};
        for (int k = 0; k < 3; k++) {
                ready(fx, "a", names[k], T0);
                gpu(fx, "a", names[k], T0 + 1, util);
        }
}

static void test_autoscale_scales_up(void **state)
{
        struct fixture *fx = *state;
        autoscale_fleet(fx, 0.8);

        tick(fx, T0 + S(2));
        assert_int_equal(count(fx, NULL, -1), 1);
        const struct fm_intent *it = find(fx, "autoscale", FM_ACTION_SCALE);
        assert_non_null(it);
        assert_int_equal(it->arg.scale.from, 3);
        assert_int_equal(it->arg.scale.to, 6);
        assert_string_equal(it->deployment, "a");
        assert_string_equal(it->instance, "");
        assert_string_equal(it->key, "autoscale/scale/a/6/1");
        assert_string_equal(it->reason, "scale_up");
        assert_true(it->evidence.n > 0);
        assert_string_equal(it->evidence.item[0].key, "current_replicas");

        /* the ask stands while the new instances start: no repeat on the next ticks */
        for (int k = 3; k < 30; k++) {
                gpu(fx, "a", "a-0", T0 + S(k), 0.8);
                tick(fx, T0 + S(k) + 1);
                assert_int_equal(count(fx, "autoscale", -1), 0);
        }
}

/*
 * A scale the governor blocked did not happen: after a short quiet the next
 * decision starts from the fleet's count, not from the count asked for. (A
 * policy that kept assuming its vetoed asks took place would step down from
 * numbers the fleet never had, and its first approved step would cut far
 * more than it says.)
 */
static void test_autoscale_vetoed(void **state)
{
        struct fixture *fx = *state;
        autoscale_fleet(fx, 0.8);

        tick(fx, T0 + S(2));
        struct fm_intent *it = (struct fm_intent *)find(fx, "autoscale", FM_ACTION_SCALE);
        assert_non_null(it);
        assert_int_equal(it->arg.scale.to, 6);
        it->verdict = FM_VERDICT_COOLDOWN;
        fm_policies_note_verdicts(fx->pol, &fx->plan, T0 + S(2));

        /* quiet: no intent a tick while the governor would block it anyway */
        fm_ms quiet_end = T0 + S(2) + FM_POLICIES_VETO_QUIET_MS;
        static const char *const names[] = {"a-0", "a-1", "a-2"};
        for (fm_ms t = T0 + S(3); t < quiet_end; t += S(1)) {
                for (int k = 0; k < 3; k++)
                        gpu(fx, "a", names[k], t, 0.8);
                tick(fx, t + 1);
                assert_int_equal(count(fx, "autoscale", -1), 0);
        }
        for (int k = 0; k < 3; k++)
                gpu(fx, "a", names[k], quiet_end, 0.8);
        tick(fx, quiet_end + 1);
        it = (struct fm_intent *)find(fx, "autoscale", FM_ACTION_SCALE);
        assert_non_null(it);
        assert_int_equal(it->arg.scale.from, 3); /* the fleet's count */
        assert_int_equal(it->arg.scale.to, 6);
        assert_string_equal(it->key, "autoscale/scale/a/6/2");

        /* approved (or dry-run) asks stand as before */
        it->verdict = FM_VERDICT_APPROVED;
        fm_policies_note_verdicts(fx->pol, &fx->plan, quiet_end + 1);
        tick(fx, quiet_end + S(2));
        assert_int_equal(count(fx, "autoscale", -1), 0);
}

static void test_autoscale_within_tolerance(void **state)
{
        struct fixture *fx = *state;
        autoscale_fleet(fx, 0.42);
        for (int k = 2; k < 10; k++) {
                tick(fx, T0 + S(k));
                assert_int_equal(count(fx, NULL, -1), 0);
        }
}

/* ==== traffic =========================================================== */

/* Three instances of a; a-0 fails at T0 so its breaker opens on the next tick. */
static void traffic_scenario(struct fixture *fx, int step)
{
        switch (step) {
        case 0:
                kpi(fx, "a", "a-0", "v1", T0, 30, 20);
                kpi(fx, "a", "a-1", "v1", T0, 30, 0);
                kpi(fx, "a", "a-2", "v1", T0, 30, 0);
                break;
        case 1: /* probes are admitted once half open (30 s) */
                kpi(fx, "a", "a-0", "v1", T0 + S(30), 1, 0);
                kpi(fx, "a", "a-1", "v1", T0 + S(30), 30, 0);
                kpi(fx, "a", "a-2", "v1", T0 + S(30), 30, 0);
                break;
        case 2:
                kpi(fx, "a", "a-0", "v1", T0 + S(32), 50, 1);
                break;
        }
}

/* A blocked weight set is sent again after a short quiet: the balancer still has the old one. */
static void test_traffic_vetoed(void **state)
{
        struct fixture *fx = *state;
        fx->pcfg.traffic_enabled = true;
        fx->fcfg.breaker.open_base = S(300); /* a-0 stays ejected through the quiet */
        start(fx);

        traffic_scenario(fx, 0);
        tick(fx, T0 + S(1));
        struct fm_intent *it = (struct fm_intent *)find(fx, "traffic", FM_ACTION_SET_WEIGHTS);
        assert_non_null(it);
        assert_string_equal(it->key, "traffic/weights/a/1");
        it->verdict = FM_VERDICT_RATE_LIMIT;
        fm_policies_note_verdicts(fx->pol, &fx->plan, T0 + S(1));

        fm_ms quiet_end = T0 + S(1) + FM_POLICIES_VETO_QUIET_MS;
        tick(fx, quiet_end - 1);
        assert_int_equal(count(fx, "traffic", -1), 0);
        kpi(fx, "a", "a-1", "v1", quiet_end - 1, 30, 0); /* the others stay fine and heard */
        kpi(fx, "a", "a-2", "v1", quiet_end - 1, 30, 0);
        tick(fx, quiet_end);
        it = (struct fm_intent *)find(fx, "traffic", FM_ACTION_SET_WEIGHTS);
        assert_non_null(it);
        assert_string_equal(it->key, "traffic/weights/a/2");
        assert_int_equal(weight_of(fx, it, "a-0"), 0); /* the same set as the blocked one */
        assert_string_equal(it->reason, "ejected");
}

static void test_traffic_edges(void **state)
{
        struct fixture *fx = *state;
        fx->pcfg.traffic_enabled = true;
        start(fx);

        traffic_scenario(fx, 0);
        tick(fx, T0 + S(1));
        assert_int_equal(count(fx, "breaker", FM_ACTION_RESTART), 1);
        assert_int_equal(count(fx, "traffic", -1), 1);
        const struct fm_intent *it = find(fx, "traffic", FM_ACTION_SET_WEIGHTS);
        assert_non_null(it);
        assert_int_equal(it->arg.weights.n, 3);
        assert_int_equal(weight_of(fx, it, "a-0"), 0);
        assert_int_equal(weight_of(fx, it, "a-1"), 50);
        assert_int_equal(weight_of(fx, it, "a-2"), 50);
        assert_string_equal(it->reason, "ejected");
        assert_string_equal(it->key, "traffic/weights/a/1");
        assert_string_equal(it->deployment, "a");

        /* level unchanged: no new intent */
        tick(fx, T0 + S(2));
        assert_int_equal(count(fx, "traffic", -1), 0);
        tick(fx, T0 + S(10));
        assert_int_equal(count(fx, "traffic", -1), 0);

        /* half open: a probe share */
        traffic_scenario(fx, 1);
        tick(fx, T0 + S(31));
        it = find(fx, "traffic", FM_ACTION_SET_WEIGHTS);
        assert_non_null(it);
        int probe = weight_of(fx, it, "a-0");
        assert_true(probe > 0 && probe < 10);
        assert_string_equal(it->reason, "half_open_probe");
        assert_string_equal(it->key, "traffic/weights/a/2");

        /* closed: the equal split again */
        traffic_scenario(fx, 2);
        tick(fx, T0 + S(33));
        it = find(fx, "traffic", FM_ACTION_SET_WEIGHTS);
        assert_non_null(it);
        assert_true(weight_of(fx, it, "a-0") >= 33);
        assert_true(weight_of(fx, it, "a-1") >= 33);
        assert_string_equal(it->reason, "healthy");
        assert_string_equal(it->key, "traffic/weights/a/3");

        tick(fx, T0 + S(34));
        assert_int_equal(count(fx, "traffic", -1), 0);
}

/* ==== canary ============================================================ */

/* Stable v1 on a-0 and a-1, canary v2 on a-2, reporting every 10 s. */
static void canary_report(struct fixture *fx, fm_ms ts, uint64_t canary_errors)
{
        kpi(fx, "a", "a-0", "v1", ts, 100, 1);
        kpi(fx, "a", "a-1", "v1", ts, 100, 1);
        kpi(fx, "a", "a-2", "v2", ts, 100, canary_errors);
}

static void test_canary_advance_and_abort(void **state)
{
        struct fixture *fx = *state;
        fx->pcfg.canary_enabled = true;
        fx->pcfg.canary.interval = S(60);
        start(fx);

        canary_report(fx, T0, 1);
        tick(fx, T0 + S(1));
        const struct fm_intent *it = find(fx, "canary", FM_ACTION_SET_WEIGHTS);
        assert_non_null(it);
        assert_int_equal(weight_of(fx, it, "v1"), 95);
        assert_int_equal(weight_of(fx, it, "v2"), 5);
        assert_string_equal(it->reason, "canary_started");
        assert_string_equal(it->key, "canary/weights/a/v2/0");

        /* healthy: holds until the interval has passed, then advances once */
        int advanced_at = -1;
        for (int sec = 10; sec <= 110; sec += 10) {
                canary_report(fx, T0 + S(sec), 1);
                tick(fx, T0 + S(sec) + S(1));
                if (count(fx, "canary", -1) == 0)
                        continue;
                assert_int_equal(advanced_at, -1);
                advanced_at = sec;
                it = find(fx, "canary", FM_ACTION_SET_WEIGHTS);
                assert_non_null(it);
                assert_int_equal(weight_of(fx, it, "v2"), 10);
                assert_string_equal(it->reason, "analysis_passed");
                assert_string_equal(it->key, "canary/weights/a/v2/1");
                assert_int_equal(count(fx, "canary", FM_ACTION_ROLLBACK), 0);
        }
        assert_int_equal(advanced_at, 60);

        /* a regression of the error rate aborts at once, with a rollback */
        canary_report(fx, T0 + S(130), 40);
        tick(fx, T0 + S(131));
        assert_int_equal(count(fx, "canary", FM_ACTION_SET_WEIGHTS), 1);
        it = find(fx, "canary", FM_ACTION_SET_WEIGHTS);
        assert_int_equal(weight_of(fx, it, "v2"), 0);
        assert_int_equal(weight_of(fx, it, "v1"), 100);
        it = find(fx, "canary", FM_ACTION_ROLLBACK);
        assert_non_null(it);
        assert_string_equal(it->arg.rollback.from, "v2");
        assert_string_equal(it->arg.rollback.to, "v1");
        assert_string_equal(it->reason, "error_rate_regression");
        assert_string_equal(it->key, "canary/rollback/a/v2");

        /* terminal: nothing more */
        canary_report(fx, T0 + S(140), 40);
        tick(fx, T0 + S(141));
        assert_int_equal(count(fx, "canary", -1), 0);
}

/* ==== autotune ========================================================== */

/* 60 positives at 0.85, 30 negatives at 0.55 and 30 at 0.66: best thresholds 0.7..0.85. */
static void feedback(struct fixture *fx, fm_ms ts)
{
        struct fm_event *ev = event(fx, FM_EVENT_FEEDBACK, "a", "a-0", "v1", ts);
        ev->n_outcomes = 120;
        for (int k = 0; k < 60; k++)
                ev->outcome[k] = (struct fm_outcome){0.85, 1};
        for (int k = 60; k < 90; k++)
                ev->outcome[k] = (struct fm_outcome){0.55, 0};
        for (int k = 90; k < 120; k++)
                ev->outcome[k] = (struct fm_outcome){0.66, 0};
        apply(fx);
}

static void test_autotune(void **state)
{
        struct fixture *fx = *state;
        fx->pcfg.autotune_enabled = true;
        fx->fcfg.forget_after = S(7200);
        fx->fcfg.breaker.heartbeat_timeout = S(7200);
        start(fx);

        feedback(fx, T0);
        tick(fx, T0 + S(1));
        assert_int_equal(count(fx, NULL, -1), 1);
        const struct fm_intent *it = find(fx, "autotune", FM_ACTION_SET_THRESHOLD);
        assert_non_null(it);
        assert_string_equal(it->arg.threshold.version, "v1");
        assert_true(fabs(it->arg.threshold.from - 0.5) < 1e-12);
        assert_true(fabs(it->arg.threshold.to - 0.6) < 1e-9);
        assert_true(it->arg.threshold.to - it->arg.threshold.from <= fx->pcfg.tune.max_step + 1e-9);
        assert_string_equal(it->key, "autotune/threshold/a/v1/1");
        assert_string_equal(it->reason, "change");
        assert_int_equal(it->evidence.n, 11);

        /* cooldown: the same evidence, more of it, and no change */
        for (int m = 1; m <= 50; m += 7) {
                feedback(fx, T0 + S(60 * m));
                tick(fx, T0 + S(60 * m) + S(1));
                assert_int_equal(count(fx, "autotune", -1), 0);
        }

        /* after the cooldown the next step, from the threshold asked for */
        feedback(fx, T0 + S(3600));
        tick(fx, T0 + S(3602));
        it = find(fx, "autotune", FM_ACTION_SET_THRESHOLD);
        assert_non_null(it);
        assert_true(fabs(it->arg.threshold.from - 0.6) < 1e-9);
        assert_true(fabs(it->arg.threshold.to - 0.7) < 1e-9);
        assert_string_equal(it->key, "autotune/threshold/a/v1/2");
}

/* ==== rollback ========================================================== */

/* n outcomes, all labelled 1: `right` scored 0.8 (right at 0.5), the rest 0.2. */
static void outcomes(struct fixture *fx, const char *inst, const char *version, fm_ms ts, int n,
                     int right)
{
        for (int done = 0, batch = 0; done < n; batch++) {
                struct fm_event *ev = event(fx, FM_EVENT_FEEDBACK, "a", inst, version, ts + batch);
                int m = n - done < FM_OUTCOMES_MAX ? n - done : FM_OUTCOMES_MAX;
                ev->n_outcomes = (uint32_t)m;
                for (int k = 0; k < m; k++, done++)
                        ev->outcome[k] = (struct fm_outcome){done < right ? 0.8 : 0.2, 1};
                apply(fx);
        }
}

static void ready_version(struct fixture *fx, const char *inst, const char *version, fm_ms ts)
{
        struct fm_event *ev = event(fx, FM_EVENT_HEALTH, "a", inst, version, ts);
        ev->status = FM_HEALTH_OK;
        ev->ready = true;
        ev->fields |= FM_F_READY;
        apply(fx);
}

/*
 * v1 serves an hour at 0.90 accuracy; v2 replaces it (v1's instance is
 * forgotten, v1 retained) and its feedback shows 0.855: one rollback
 * v2 -> v1, then nothing more. Before v2 has enough feedback, nothing.
 */
static void test_rollback_end_to_end(void **state)
{
        struct fixture *fx = *state;
        fx->pcfg.rollback_enabled = true;
        start(fx);

        ready_version(fx, "a-0", "v1", T0);
        outcomes(fx, "a-0", "v1", T0 + S(10), 5000, 4500);
        kpi(fx, "a", "a-0", "v1", T0 + S(3600), 1000, 1);
        tick(fx, T0 + S(3601));
        assert_int_equal(count(fx, "rollback", -1), 0);

        /* v2 appears after a-0 has gone silent for longer than forget_after */
        fm_ms t2 = T0 + S(3600) + fx->fcfg.forget_after + S(60);
        ready_version(fx, "a-1", "v2", t2);
        kpi(fx, "a", "a-1", "v2", t2, 1000, 1);
        outcomes(fx, "a-1", "v2", t2 + S(1), 100, 85);
        tick(fx, t2 + S(2));
        const struct fm_deployment *d = fm_fleet_find_deployment(fx->fleet, "a");
        assert_non_null(d);
        assert_int_equal(fm_deployment_find_version(d, "v1")->n_instances, 0);
        assert_int_equal(count(fx, "rollback", -1), 0); /* 100 outcomes: too few */

        outcomes(fx, "a-1", "v2", t2 + S(30), 4900, 4190); /* 4275 / 5000 in all */
        tick(fx, t2 + S(31));
        assert_int_equal(count(fx, "rollback", -1), 1);
        const struct fm_intent *it = find(fx, "rollback", FM_ACTION_ROLLBACK);
        assert_non_null(it);
        assert_string_equal(it->deployment, "a");
        assert_string_equal(it->arg.rollback.from, "v2");
        assert_string_equal(it->arg.rollback.to, "v1");
        assert_string_equal(it->reason, "accuracy_drop");
        assert_string_equal(it->key, "rollback/a/v2/v1");
        assert_true(it->evidence.n > 0);
        assert_string_equal(it->evidence.item[0].key, "accuracy");
        assert_true(fabs(it->evidence.item[0].value - 0.855) < 1e-9);
        assert_true(fabs(it->evidence.item[1].value - 0.90) < 1e-9);

        /* the same evidence, more of it: no second rollback */
        for (int m = 1; m <= 5; m++) {
                outcomes(fx, "a-1", "v2", t2 + S(60 * m), 100, 50);
                tick(fx, t2 + S(60 * m) + S(1));
                assert_int_equal(count(fx, "rollback", -1), 0);
        }
}

/* ==== disabled, determinism, state lifetime, configuration ============== */

static void test_disabled_emit_nothing(void **state)
{
        struct fixture *fx = *state;
        start(fx);
        struct fm_policy list[8];
        assert_int_equal(fm_policies_list(fx->pol, list, 8), 1);
        assert_ptr_equal(list[0].ops, &fm_policy_breaker);

        /* what makes each policy act in the tests above, at once */
        traffic_scenario(fx, 0);
        feedback(fx, T0);
        for (int k = 0; k < 3; k++)
                gpu(fx, "a", k == 0 ? "a-0" : k == 1 ? "a-1" : "a-2", T0 + 1, 1.0);
        kpi(fx, "a", "a-3", "v2", T0, 100, 40);
        tick(fx, T0 + S(1));
        assert_int_equal(count(fx, "breaker", -1), (int)fx->plan.n_intents);
        assert_int_equal(fx->plan.n_intents, 1);
        canary_report(fx, T0 + S(10), 40);
        tick(fx, T0 + S(11));
        assert_int_equal(fx->plan.n_intents, 0);
}

static void enable_all(struct fixture *fx)
{
        fx->pcfg.autoscale_enabled = true;
        fx->pcfg.traffic_enabled = true;
        fx->pcfg.canary_enabled = true;
        fx->pcfg.autotune_enabled = true;
        fx->pcfg.canary.interval = S(60);
}

static void dump(const struct fixture *fx, char *buf, size_t size)
{
        size_t len = strlen(buf);
        for (uint32_t k = 0; k < fx->plan.n_intents && len < size; k++) {
                const struct fm_intent *it = &fx->plan.intent[k];
                len += (size_t)snprintf(buf + len, size - len, "%" PRId64 " %d %s %s %s %s", it->at,
                                        it->action, it->policy, it->reason, it->key,
                                        it->deployment);
                if (it->action == FM_ACTION_SET_WEIGHTS)
                        for (uint32_t w = 0; w < it->arg.weights.n && len < size; w++)
                                len += (size_t)snprintf(
                                        buf + len, size - len, " %s:%u",
                                        fx->plan.weight[it->arg.weights.first + w].target,
                                        fx->plan.weight[it->arg.weights.first + w].weight);
                for (uint32_t e = 0; e < it->evidence.n && len < size; e++)
                        len += (size_t)snprintf(buf + len, size - len, " %s=%.17g",
                                                it->evidence.item[e].key,
                                                it->evidence.item[e].value);
                if (len + 1 < size)
                        buf[len++] = '\n', buf[len] = '\0';
        }
        assert_true(len + 1 < size);
}

static void run_all(struct fixture *fx, uint64_t hash_k0, char *out, size_t size)
{
        fm_fleet_config_default(&fx->fcfg);
        fx->fcfg.hash_key[0] = hash_k0;
        fx->fcfg.hash_key[1] = ~hash_k0;
        fm_policies_config_default(&fx->pcfg);
        enable_all(fx);
        start(fx);
        out[0] = '\0';
        feedback(fx, T0);
        for (int sec = 0; sec <= 150; sec += 10) {
                canary_report(fx, T0 + S(sec), sec > 100 ? 40 : 1);
                kpi(fx, "b", "b-0", "v1", T0 + S(sec), sec == 20 ? 100 : 30, sec == 20 ? 90 : 0);
                kpi(fx, "b", "b-1", "v1", T0 + S(sec), 30, 0);
                gpu(fx, "b", "b-0", T0 + S(sec) + 1, 0.95);
                gpu(fx, "b", "b-1", T0 + S(sec) + 1, 0.95);
                ready(fx, "b", "b-0", T0 + S(sec) + 2);
                ready(fx, "b", "b-1", T0 + S(sec) + 2);
                tick(fx, T0 + S(sec) + S(1));
                dump(fx, out, size);
        }
}

static void test_determinism(void **state)
{
        struct fixture *fx = *state;
        size_t size = 1 << 18;
        char *a = malloc(size), *b = malloc(size), *c = malloc(size);
        assert_non_null(a);
        assert_non_null(b);
        assert_non_null(c);

        run_all(fx, 1, a, size);
        run_all(fx, 1, b, size);
        run_all(fx, UINT64_C(0xdeadbeefcafef00d), c, size);
        assert_string_equal(a, b);
        assert_string_equal(a, c);
        /* every policy had something to say */
        assert_non_null(strstr(a, " autoscale "));
        assert_non_null(strstr(a, " traffic "));
        assert_non_null(strstr(a, "canary/rollback/a/v2"));
        assert_non_null(strstr(a, " autotune "));
        free(a);
        free(b);
        free(c);
}

static void test_state_dropped(void **state)
{
        struct fixture *fx = *state;
        struct fm_policies_stats st;
        fx->pcfg.traffic_enabled = true;
        fx->fcfg.forget_after = S(60);
        fx->fcfg.version_retention = S(1);
        start(fx);

        kpi(fx, "b", "b-0", "v1", T0, 10, 0);
        traffic_scenario(fx, 0);
        tick(fx, T0 + S(1));
        assert_string_equal(find(fx, "traffic", FM_ACTION_SET_WEIGHTS)->key, "traffic/weights/a/1");
        fm_policies_get_stats(fx->pol, &st);
        assert_int_equal(st.deployments, 2);

        /* a falls silent and is forgotten; b keeps reporting */
        for (int sec = 10; sec <= 90; sec += 10) {
                kpi(fx, "b", "b-0", "v1", T0 + S(sec), 10, 0);
                tick(fx, T0 + S(sec) + S(1));
        }
        assert_null(fm_fleet_find_deployment(fx->fleet, "a"));
        fm_policies_get_stats(fx->pol, &st);
        assert_int_equal(st.deployments, 1);

        /* a comes back: a new state, so the keys start over */
        kpi(fx, "a", "a-0", "v1", T0 + S(100), 30, 20);
        kpi(fx, "a", "a-1", "v1", T0 + S(100), 30, 0);
        kpi(fx, "a", "a-2", "v1", T0 + S(100), 30, 0);
        kpi(fx, "b", "b-0", "v1", T0 + S(100), 10, 0);
        tick(fx, T0 + S(101));
        const struct fm_intent *it = find(fx, "traffic", FM_ACTION_SET_WEIGHTS);
        assert_non_null(it);
        assert_string_equal(it->key, "traffic/weights/a/1");
        fm_policies_get_stats(fx->pol, &st);
        assert_int_equal(st.deployments, 2);
}

static void test_config(void **state)
{
        (void)state;
        struct fm_policies_config cfg;
        struct fm_policies *p = NULL;
        struct fm_policy list[8];

        fm_policies_config_default(&cfg);
        assert_false(cfg.autoscale_enabled || cfg.traffic_enabled || cfg.canary_enabled ||
                     cfg.autotune_enabled);
        assert_int_equal(cfg.tune_window, S(3600));
        assert_int_equal(cfg.tune_cooldown, S(3600));
        assert_true(cfg.initial_threshold == 0.5);
        assert_int_equal(fm_policies_config_validate(&cfg), 0);

        /* a disabled policy's configuration is not checked; an enabled one's is */
        cfg.autoscale.min_replicas = 0;
        assert_int_equal(fm_policies_config_validate(&cfg), 0);
        cfg.autoscale_enabled = true;
        assert_int_equal(fm_policies_config_validate(&cfg), -EINVAL);
        fm_policies_config_default(&cfg);
        cfg.canary.n_steps = 0;
        cfg.canary_enabled = true;
        assert_int_equal(fm_policies_config_validate(&cfg), -EINVAL);
        fm_policies_config_default(&cfg);
        assert_false(cfg.rollback_enabled);
        cfg.rollback.confidence = 1;
        assert_int_equal(fm_policies_config_validate(&cfg), 0);
        cfg.rollback_enabled = true;
        assert_int_equal(fm_policies_config_validate(&cfg), -EINVAL);
        cfg.rollback.confidence = 0.95;
        assert_int_equal(fm_policies_config_validate(&cfg), 0);

        /* the extra fields always */
        const struct {
                fm_ms window, cooldown;
                double initial;
                int ret;
        } cases[] = {
                {S(3600), S(3600), 0.5, 0},       {0, S(3600), 0.5, -EINVAL},
                {S(3600), -1, 0.5, -EINVAL},      {S(3600), 0, 0.5, 0},
                {S(3600), S(3600), 1.5, -EINVAL}, {S(3600), S(3600), NAN, -EINVAL},
                {S(3600), S(3600), 0, 0},         {S(3600) * 24 * 31, S(1), 0.5, -EINVAL},
        };
        for (size_t k = 0; k < ARRAY_SIZE(cases); k++) {
                fm_policies_config_default(&cfg);
                cfg.tune_window = cases[k].window;
                cfg.tune_cooldown = cases[k].cooldown;
                cfg.initial_threshold = cases[k].initial;
                assert_int_equal(fm_policies_config_validate(&cfg), cases[k].ret);
        }

        fm_policies_config_default(&cfg);
        assert_int_equal(fm_policies_new(&cfg, &p), 0);
        assert_int_equal(fm_policies_list(p, list, 8), 1);
        cfg.traffic_enabled = cfg.canary_enabled = cfg.autoscale_enabled = cfg.autotune_enabled =
                cfg.rollback_enabled = true;
        assert_int_equal(fm_policies_reconfigure(p, &cfg), 0);
        assert_int_equal(fm_policies_list(p, list, 8), 6);
        assert_string_equal(list[0].ops->name, "breaker");
        assert_string_equal(list[1].ops->name, "traffic");
        assert_string_equal(list[2].ops->name, "canary");
        assert_string_equal(list[3].ops->name, "rollback");
        assert_string_equal(list[4].ops->name, "autoscale");
        assert_string_equal(list[5].ops->name, "autotune");
        assert_int_equal(fm_policies_list(p, list, 2), 2);
        /* a bad reload changes nothing */
        cfg.traffic_enabled = false;
        cfg.initial_threshold = -1;
        assert_int_equal(fm_policies_reconfigure(p, &cfg), -EINVAL);
        assert_int_equal(fm_policies_list(p, list, 8), 6);
        assert_null(fm_policies_free(p));
        assert_null(fm_policies_free(NULL));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_autoscale_scales_up, setup, teardown),
                cmocka_unit_test_setup_teardown(test_autoscale_within_tolerance, setup, teardown),
                cmocka_unit_test_setup_teardown(test_autoscale_vetoed, setup, teardown),
                cmocka_unit_test_setup_teardown(test_traffic_vetoed, setup, teardown),
                cmocka_unit_test_setup_teardown(test_traffic_edges, setup, teardown),
                cmocka_unit_test_setup_teardown(test_canary_advance_and_abort, setup, teardown),
                cmocka_unit_test_setup_teardown(test_autotune, setup, teardown),
                cmocka_unit_test_setup_teardown(test_rollback_end_to_end, setup, teardown),
                cmocka_unit_test_setup_teardown(test_disabled_emit_nothing, setup, teardown),
                cmocka_unit_test_setup_teardown(test_determinism, setup, teardown),
                cmocka_unit_test_setup_teardown(test_state_dropped, setup, teardown),
                cmocka_unit_test(test_config),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
