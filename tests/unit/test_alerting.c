/* SPDX-License-Identifier: MIT */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "alerting.h"

#define MIN(x) ((fm_ms)(x)*60 * FM_MS_PER_S)

struct fixture {
        struct fm_alerting *a;
        struct fm_plan plan;
};

static int setup(void **state)
{
        struct fixture *fx = calloc(1, sizeof(*fx));
        struct fm_alerting_config cfg;
        assert_non_null(fx);
        fm_alerting_config_default(&cfg);
        assert_int_equal(fm_alerting_new(&cfg, &fx->a), 0);
        assert_int_equal(fm_plan_init(&fx->plan, 16, 4), 0);
        *state = fx;
        return 0;
}

static int teardown(void **state)
{
        struct fixture *fx = *state;
        fm_alerting_free(fx->a);
        fm_plan_done(&fx->plan);
        free(fx);
        return 0;
}

static struct fm_intent *add(struct fixture *fx, enum fm_action action, const char *dep,
                             const char *inst, enum fm_verdict v)
{
        struct fm_intent *it = fm_plan_add_intent(&fx->plan, action, "test");
        assert_non_null(it);
        strcpy(it->deployment, dep);
        strcpy(it->instance, inst);
        it->verdict = v;
        it->reason = "r";
        return it;
}

static const struct fm_intent *alert(const struct fixture *fx, uint32_t first, uint32_t k)
{
        uint32_t seen = 0;
        for (uint32_t i = first; i < fx->plan.n_intents; i++)
                if (fx->plan.intent[i].action == FM_ACTION_ALERT && seen++ == k)
                        return &fx->plan.intent[i];
        return NULL;
}

static void test_rollback_alert(void **state)
{
        struct fixture *fx = *state;

        fm_plan_reset(&fx->plan, MIN(0));
        struct fm_intent *rb = add(fx, FM_ACTION_ROLLBACK, "a", "", FM_VERDICT_DRY_RUN);
        strcpy(rb->arg.rollback.from, "v2");
        strcpy(rb->arg.rollback.to, "v1");
        add(fx, FM_ACTION_ROLLBACK, "b", "", FM_VERDICT_COOLDOWN); /* not executed: no alert */
        assert_int_equal(fm_alerting_review(fx->a, NULL, &fx->plan, MIN(0)), 1);
        const struct fm_intent *al = alert(fx, 0, 0);
        assert_non_null(al);
        assert_string_equal(al->policy, "alerting");
        assert_string_equal(al->reason, "rollback");
        assert_string_equal(al->deployment, "a");
        assert_int_equal(al->verdict, FM_VERDICT_PENDING);
        assert_int_equal(al->arg.alert.severity, FM_SEVERITY_CRITICAL);
        assert_non_null(strstr(al->arg.alert.summary, "v2 -> v1"));
        assert_null(alert(fx, 0, 1));
}

static void test_blocked_grouped_and_routine_ignored(void **state)
{
        struct fixture *fx = *state;

        fm_plan_reset(&fx->plan, MIN(0));
        add(fx, FM_ACTION_RESTART, "a", "a-0", FM_VERDICT_CAPACITY);
        add(fx, FM_ACTION_RESTART, "b", "b-0", FM_VERDICT_COOLDOWN); /* routine */
        add(fx, FM_ACTION_SCALE, "a", "", FM_VERDICT_MAINTENANCE);
        add(fx, FM_ACTION_RESTART, "c", "c-0", FM_VERDICT_CONFLICT); /* routine */
        add(fx, FM_ACTION_RESTART, "d", "d-0", FM_VERDICT_PAUSED);
        assert_int_equal(fm_alerting_review(fx->a, NULL, &fx->plan, MIN(0)), 2);

        const struct fm_intent *a = alert(fx, 0, 0), *d = alert(fx, 0, 1);
        assert_string_equal(a->deployment, "a");
        assert_string_equal(a->reason, "actions_blocked");
        /* the worst of the group: capacity_floor is a warning, maintenance info */
        assert_int_equal(a->arg.alert.severity, FM_SEVERITY_WARNING);
        assert_non_null(strstr(a->arg.alert.summary, "restart a-0 (capacity_floor)"));
        assert_non_null(strstr(a->arg.alert.summary, "scale (maintenance)"));
        assert_int_equal((int)a->evidence.item[0].value, 2);
        assert_string_equal(d->deployment, "d");
        assert_int_equal(d->arg.alert.severity, FM_SEVERITY_INFO);
}

/* Raised once; held while the condition recurs within resolve_after; again after a quiet spell. */
static void test_hysteresis(void **state)
{
        struct fixture *fx = *state;
        int raised = 0;

        for (int m = 0; m <= 30; m++) {
                fm_plan_reset(&fx->plan, MIN(m));
                /* blocked every 5 minutes up to minute 20, then quiet */
                if (m <= 20 && m % 5 == 0)
                        add(fx, FM_ACTION_RESTART, "a", "a-0", FM_VERDICT_RATE_LIMIT);
                int r = fm_alerting_review(fx->a, NULL, &fx->plan, MIN(m));
                assert_true(r >= 0);
                raised += r;
        }
        assert_int_equal(raised, 1);

        /* minute 30: quiet for exactly resolve_after (10 min) since minute 20: may fire again */
        fm_plan_reset(&fx->plan, MIN(30));
        add(fx, FM_ACTION_RESTART, "a", "a-0", FM_VERDICT_RATE_LIMIT);
        assert_int_equal(fm_alerting_review(fx->a, NULL, &fx->plan, MIN(30)), 1);
        /* and one minute later it is active again */
        fm_plan_reset(&fx->plan, MIN(31));
        add(fx, FM_ACTION_RESTART, "a", "a-0", FM_VERDICT_RATE_LIMIT);
        assert_int_equal(fm_alerting_review(fx->a, NULL, &fx->plan, MIN(31)), 0);
}

/* Just under resolve_after of quiet, the alert is still active. */
static void test_hysteresis_edge(void **state)
{
        struct fixture *fx = *state;
        fm_ms quiet = MIN(10);

        fm_plan_reset(&fx->plan, 0);
        add(fx, FM_ACTION_RESTART, "a", "a-0", FM_VERDICT_CAPACITY);
        assert_int_equal(fm_alerting_review(fx->a, NULL, &fx->plan, 0), 1);
        fm_plan_reset(&fx->plan, quiet - 1);
        add(fx, FM_ACTION_RESTART, "a", "a-0", FM_VERDICT_CAPACITY);
        assert_int_equal(fm_alerting_review(fx->a, NULL, &fx->plan, quiet - 1), 0);
        /* the last sighting was at quiet - 1: another resolve_after from there */
        fm_plan_reset(&fx->plan, 2 * quiet - 1);
        add(fx, FM_ACTION_RESTART, "a", "a-0", FM_VERDICT_CAPACITY);
        assert_int_equal(fm_alerting_review(fx->a, NULL, &fx->plan, 2 * quiet - 1), 1);
}

static void test_full_plan_retries(void **state)
{
        struct fixture *fx = *state;

        fm_plan_done(&fx->plan);
        assert_int_equal(fm_plan_init(&fx->plan, 1, 1), 0);
        fm_plan_reset(&fx->plan, 0);
        add(fx, FM_ACTION_RESTART, "a", "a-0", FM_VERDICT_CAPACITY);
        assert_int_equal(fm_alerting_review(fx->a, NULL, &fx->plan, 0), -ENOBUFS);
        /* not marked raised: it comes next tick when there is room */
        fm_plan_done(&fx->plan);
        assert_int_equal(fm_plan_init(&fx->plan, 4, 1), 0);
        fm_plan_reset(&fx->plan, 1000);
        add(fx, FM_ACTION_RESTART, "a", "a-0", FM_VERDICT_CAPACITY);
        assert_int_equal(fm_alerting_review(fx->a, NULL, &fx->plan, 1000), 1);
}

/* Feeds one deployment a kpi event per minute with the given error share. */
static void feed(struct fm_fleet *f, struct fm_event *ev, fm_ms t, uint64_t req, uint64_t err)
{
        enum fm_reject why;
        memset(ev, 0, offsetof(struct fm_event, outcome));
        ev->kind = FM_EVENT_KPI;
        strcpy(ev->deployment, "a");
        strcpy(ev->instance, "a-0");
        strcpy(ev->version, "v1");
        ev->ts = t;
        ev->requests = req;
        ev->errors = err;
        ev->fields = FM_F_TS | FM_F_VERSION | FM_F_REQUESTS | FM_F_ERRORS;
        assert_int_equal(fm_fleet_apply(f, ev, &why), 0);
}

static void test_slo_burn(void **state)
{
        struct fixture *fx = *state;
        struct fm_fleet_config fcfg;
        struct fm_fleet *f;
        struct fm_event *ev = malloc(sizeof(*ev));
        fm_ms t0 = (fm_ms)1767225600 * FM_MS_PER_S;

        assert_non_null(ev);
        fm_fleet_config_default(&fcfg);
        fcfg.forget_after = (fm_ms)24 * 3600 * FM_MS_PER_S;
        assert_int_equal(fm_fleet_new(&fcfg, &f), 0);

        /* an hour at 0.5 % errors against 99.9 %: burn 5, under both pairs (14.4 and 6) */
        for (int m = 0; m < 60; m++)
                feed(f, ev, t0 + MIN(m), 1000, 5);
        fm_plan_reset(&fx->plan, t0 + MIN(59));
        assert_int_equal(fm_alerting_review(fx->a, f, &fx->plan, t0 + MIN(59)), 0);
        /* ten more minutes at 1 %: the short windows burn above 6, the long ones not yet */
        for (int m = 60; m < 70; m++)
                feed(f, ev, t0 + MIN(m), 1000, 10);
        fm_plan_reset(&fx->plan, t0 + MIN(69));
        assert_int_equal(fm_alerting_review(fx->a, f, &fx->plan, t0 + MIN(69)), 0);

        /* then 2 % to minute 119: the last hour burns 18.3, the last 5 minutes 20 */
        for (int m = 70; m < 120; m++)
                feed(f, ev, t0 + MIN(m), 1000, 20);
        fm_plan_reset(&fx->plan, t0 + MIN(119));
        assert_int_equal(fm_alerting_review(fx->a, f, &fx->plan, t0 + MIN(119)), 1);
        const struct fm_intent *al = alert(fx, 0, 0);
        assert_string_equal(al->reason, "slo_burn");
        assert_int_equal(al->arg.alert.severity, FM_SEVERITY_CRITICAL);
        assert_non_null(strstr(al->arg.alert.summary, "above 14.4"));
        /* still burning a minute later: held by hysteresis */
        feed(f, ev, t0 + MIN(120), 1000, 20);
        fm_plan_reset(&fx->plan, t0 + MIN(120));
        assert_int_equal(fm_alerting_review(fx->a, f, &fx->plan, t0 + MIN(120)), 0);

        fm_fleet_free(f);
        free(ev);
}

static void test_config(void **state)
{
        (void)state;
        struct fm_alerting_config cfg;
        fm_alerting_config_default(&cfg);
        cfg.resolve_after = 0;
        struct fm_alerting *a = NULL;
        assert_int_equal(fm_alerting_new(&cfg, &a), -EINVAL);
        assert_null(a);
        assert_null(fm_alerting_free(NULL));

        cfg.resolve_after = 1000;
        assert_int_equal(fm_alerting_new(&cfg, &a), 0);
        cfg.resolve_after = -1;
        assert_int_equal(fm_alerting_set_config(a, &cfg), -EINVAL);
        cfg.resolve_after = 5000;
        assert_int_equal(fm_alerting_set_config(a, &cfg), 0);
        fm_alerting_free(a);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_rollback_alert, setup, teardown),
                cmocka_unit_test_setup_teardown(test_blocked_grouped_and_routine_ignored, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_hysteresis, setup, teardown),
                cmocka_unit_test_setup_teardown(test_hysteresis_edge, setup, teardown),
                cmocka_unit_test_setup_teardown(test_full_plan_retries, setup, teardown),
                cmocka_unit_test_setup_teardown(test_slo_burn, setup, teardown),
                cmocka_unit_test(test_config),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
