/* SPDX-License-Identifier: MIT */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "core.h"
#include "model.h"
#include "scenario.h"
#include "sim.h"

#define START ((fm_ms)FM_SCN_DEFAULT_START * FM_MS_PER_S)

/* One deployment "web" of n instances of v1 (and v2 when two), constant load. */
static struct fm_scenario *small(uint32_t n, double rps, uint32_t versions)
{
        struct fm_scenario *sc = calloc(1, sizeof(*sc));
        assert_non_null(sc);
        snprintf(sc->name, sizeof(sc->name), "t");
        sc->seed = 5;
        sc->start_s = FM_SCN_DEFAULT_START;
        sc->duration_s = 1800;
        sc->step_s = 10;
        sc->health_interval_s = 30;
        sc->grace_s = 600;
        sc->slo =
                (struct fm_scn_slo){.latency_p99_ms = 250, .error_rate = 0.01, .objective = 0.999};
        sc->actuation = (struct fm_scn_actuation){.delay_s = 2, .rollout_s = 0, .restart_s = 20};
        sc->n_deployments = 1;
        struct fm_scn_deployment *d = &sc->deployments[0];
        snprintf(d->name, sizeof(d->name), "web");
        d->replicas = n;
        d->cold_start_s = 60;
        d->n_versions = versions;
        for (uint32_t v = 0; v < versions; v++) {
                d->versions[v] = (struct fm_scn_version){.capacity_rps = 100,
                                                         .base_latency_ms = 40,
                                                         .service_ms = 10,
                                                         .error_rate = 0.0,
                                                         .accuracy = 0.9,
                                                         .positive_rate = 0.3};
                snprintf(d->versions[v].name, sizeof(d->versions[v].name), "v%u", v + 1);
        }
        d->load = (struct fm_scn_load){.kind = FM_SCN_LOAD_CONSTANT, .rps = rps};
        return sc;
}

static void test_rng(void **state)
{
        (void)state;
        struct fm_rng a, b;
        fm_rng_seed(&a, 42);
        fm_rng_seed(&b, 42);
        double sum = 0, sq = 0;
        for (int k = 0; k < 100000; k++) {
                uint64_t x = fm_rng_next(&a);
                assert_int_equal(x, fm_rng_next(&b));
        }
        for (int k = 0; k < 100000; k++) {
                double u = fm_rng_uniform(&a);
                assert_true(u >= 0 && u < 1);
                double z = fm_rng_normal(&b);
                sum += z;
                sq += z * z;
        }
        assert_true(fabs(sum / 100000) < 0.02);
        assert_true(fabs(sq / 100000 - 1) < 0.03);
        fm_rng_seed(&b, 43);
        assert_int_not_equal(fm_rng_next(&a), fm_rng_next(&b));
}

static void test_numerics(void **state)
{
        (void)state;
        assert_true(fabs(fm_model_phi(0) - 0.5) < 1e-12);
        assert_true(fabs(fm_model_phi(1.959964) - 0.975) < 1e-6);
        for (double p = 0.01; p < 1; p += 0.07)
                assert_true(fabs(fm_model_phi(fm_model_probit(p)) - p) < 1e-9);
        assert_true(isnan(fm_model_probit(0)));

        const double bound[] = {10, 20, 30};
        const double count[] = {50, 40, 10, 0};
        assert_true(fabs(fm_model_hist_quantile(bound, 3, count, 0.5) - 10) < 1e-9);
        assert_true(fabs(fm_model_hist_quantile(bound, 3, count, 0.95) - 25) < 1e-9);
        const double none[] = {0, 0, 0, 0};
        assert_true(isnan(fm_model_hist_quantile(bound, 3, none, 0.99)));
}

struct counter {
        uint64_t kpi, health, feedback, requests;
        double p99_seen;
};

static void count(void *userdata, const struct fm_event *ev)
{
        struct counter *c = userdata;
        if (ev->kind == FM_EVENT_KPI) {
                c->kpi++;
                c->requests += ev->requests;
                uint64_t sum = 0;
                for (uint32_t k = 0; k <= ev->latency_hist.n; k++)
                        sum += ev->latency_hist.count[k];
                assert_int_equal(sum, ev->requests);
                assert_true(ev->errors <= ev->requests);
        } else if (ev->kind == FM_EVENT_HEALTH)
                c->health++;
        else
                c->feedback++;
}

/* p99 of one deployment over a few steps at a load. */
static double p99_at(double rps, uint64_t *errors)
{
        struct fm_scenario *sc = small(4, rps, 1);
        struct fm_model *m = NULL;
        assert_int_equal(fm_model_new(sc, &m), 0);
        double p99 = 0;
        *errors = 0;
        for (int k = 1; k <= 6; k++) {
                assert_int_equal(fm_model_step(m, START + k * 10000, NULL, NULL), 0);
                p99 = fm_model_stats(m, 0)->p99_ms;
                *errors += fm_model_stats(m, 0)->errors;
        }
        fm_model_free(m);
        free(sc);
        return p99;
}

static void test_queueing(void **state)
{
        (void)state;
        uint64_t e1, e2, e3;
        double low = p99_at(40, &e1), high = p99_at(360, &e2), over = p99_at(600, &e3);
        /* p99 = 40 + 10 ln(100) / (1 - rho): ~91 at rho 0.1, ~500 at rho 0.9 */
        assert_true(low > 80 && low < 100);
        assert_true(high > 300 && high < 700);
        assert_true(over > high);
        assert_int_equal(e1, 0);
        assert_int_equal(e2, 0);
        assert_true(e3 > 0); /* 150 rps on 100 rps of capacity: a third overflows */
}

static void test_events_and_cold_start(void **state)
{
        (void)state;
        struct fm_scenario *sc = small(3, 150, 1);
        sc->deployments[0].feedback_per_s = 2;
        struct fm_model *m = NULL;
        struct counter c = {0};
        assert_int_equal(fm_model_new(sc, &m), 0);
        assert_int_equal(fm_model_step(m, START + 10000, count, &c), 0);
        assert_int_equal(c.kpi, 3);
        assert_int_equal(c.health, 3); /* the first report of each */
        assert_int_equal(c.feedback, 1);
        assert_true(c.requests > 1300 && c.requests < 1700);

        assert_int_equal(fm_model_scale(m, "web", 5, START + 10000), 2);
        assert_int_equal(fm_model_instances(m), 5);
        assert_int_equal(fm_model_step(m, START + 20000, NULL, NULL), 0);
        assert_int_equal(fm_model_stats(m, 0)->replicas, 5);
        assert_int_equal(fm_model_stats(m, 0)->ready, 3); /* cold-starting for 60 s */
        for (int k = 3; k <= 8; k++)
                assert_int_equal(fm_model_step(m, START + k * 10000, NULL, NULL), 0);
        assert_int_equal(fm_model_stats(m, 0)->ready, 5);

        assert_int_equal(fm_model_scale(m, "web", 2, START + 80000), 3);
        assert_int_equal(fm_model_instances(m), 2);
        assert_int_equal(fm_model_scale(m, "nope", 2, START), -ENOENT);
        fm_model_free(m);
        free(sc);
}

static void test_weights_rollback_restart(void **state)
{
        (void)state;
        struct fm_scenario *sc = small(4, 200, 2);
        sc->n_faults = 1;
        sc->faults[0] = (struct fm_scn_fault){.kind = FM_SCN_FAULT_SLOW,
                                              .deployment = 0,
                                              .version = -1,
                                              .instance = "web-1",
                                              .at_s = 0,
                                              .until_s = -1,
                                              .factor = 4};
        struct fm_model *m = NULL;
        assert_int_equal(fm_model_new(sc, &m), 0);
        assert_int_equal(fm_model_step(m, START + 10000, NULL, NULL), 0);
        assert_true(fm_model_fault_impact(m, 0) > 0.2);

        /* instance weights: web-1 out */
        struct fm_weight w[4] = {{"web-0", 34}, {"web-1", 0}, {"web-2", 33}, {"web-3", 33}};
        assert_int_equal(fm_model_set_weights(m, "web", w, 4), 4);
        assert_int_equal(fm_model_step(m, START + 20000, NULL, NULL), 0);
        assert_true(fm_model_fault_impact(m, 0) < 1e-9);
        assert_true(fm_model_stats(m, 0)->p99_ms < 250);

        /* a restart cures the slow instance */
        struct fm_weight back[4] = {{"web-0", 25}, {"web-1", 25}, {"web-2", 25}, {"web-3", 25}};
        assert_int_equal(fm_model_set_weights(m, "web", back, 4), 4);
        assert_int_equal(fm_model_restart(m, "web", "web-1", START + 20000), 1);
        assert_int_equal(fm_model_step(m, START + 30000, NULL, NULL), 0);
        assert_int_equal(fm_model_stats(m, 0)->ready, 3);
        for (int k = 4; k <= 6; k++)
                assert_int_equal(fm_model_step(m, START + k * 10000, NULL, NULL), 0);
        assert_int_equal(fm_model_stats(m, 0)->ready, 4);
        assert_true(fm_model_fault_impact(m, 0) < 1e-9);
        assert_int_equal(fm_model_restart(m, "web", "web-9", START), -ENOENT);

        /* rollback with rollout 0: every instance on v2 at the next step */
        assert_int_equal(fm_model_rollback(m, "web", "v1", "v2", START + 60000), 4);
        assert_int_equal(fm_model_step(m, START + 70000, NULL, NULL), 0);
        assert_true(fm_model_stats(m, 0)->share[1] > 99.9);
        assert_int_equal(fm_model_rollback(m, "web", "v2", "v9", START), -ENOENT);

        /* version weights */
        struct fm_weight vw[2] = {{"v1", 0}, {"v2", 100}};
        assert_int_equal(fm_model_set_weights(m, "web", vw, 2), 2);
        assert_int_equal(fm_model_set_threshold(m, "web", "v2", 0.7), 0);
        assert_true(fabs(fm_model_threshold(m, 0, 1) - 0.7) < 1e-12);
        assert_int_equal(fm_model_set_threshold(m, "web", "v2", 1.5), -EINVAL);
        fm_model_free(m);
        free(sc);
}

static void test_scenario_errors(void **state)
{
        (void)state;
        const char *text =
                "{\"name\": \"ok-name\", \"duration_s\": 600, \"bogus\": 1,"
                " \"fleet\": {\"deployments\": [{\"name\": \"web\", \"replicas\": 2,"
                " \"versions\": [{\"name\": \"v1\", \"capacity_rps\": -1}]}],"
                " \"load\": [{\"deployment\": \"api\", \"rps\": 10}]},"
                " \"faults\": [{\"kind\": \"slow\", \"target\": \"web/v1\", \"at_s\": 5}],"
                " \"expect\": [{\"metric\": \"nope\", \"max\": 1}]}";
        struct json_object *root = json_tokener_parse(text);
        assert_non_null(root);
        struct fm_scenario *sc = calloc(1, sizeof(*sc));
        struct fm_scn_errors *errs = calloc(1, sizeof(*errs));
        assert_int_equal(fm_scenario_from_json(root, NULL, "s.yaml", sc, errs), -EINVAL);
        const char *want[] = {
                "s.yaml: bogus: unknown key",
                "s.yaml: fleet.deployments[0].versions[0].capacity_rps: expected a number",
                "s.yaml: fleet.load[0].deployment: no deployment 'api' in the fleet",
                "s.yaml: faults[0].target: the wrong kind of target for a slow fault",
                "s.yaml: expect[0].metric: unknown metric 'nope'",
        };
        for (size_t k = 0; k < sizeof(want) / sizeof(want[0]); k++) {
                bool found = false;
                for (uint32_t j = 0; j < errs->n && !found; j++)
                        found = strncmp(errs->line[j], want[k], strlen(want[k])) == 0;
                if (!found)
                        fail_msg("missing error: %s", want[k]);
        }
        json_object_put(root);

        text = "{\"name\": \"fine\", \"duration_s\": 600, \"fleet\": {\"deployments\":"
               " [{\"name\": \"web\", \"replicas\": 2, \"versions\": [{\"name\": \"v1\"}]}]},"
               " \"expect\": [{\"action\": \"restart\", \"max\": 0}]}";
        root = json_tokener_parse(text);
        assert_int_equal(fm_scenario_from_json(root, NULL, "s.yaml", sc, errs), 0);
        assert_int_equal(errs->n, 0);
        assert_int_equal(sc->step_s, 10);
        assert_int_equal(sc->expect[0].action, FM_ACTION_RESTART);
        assert_false(sc->expect[0].has_min);
        json_object_put(root);
        free(errs);
        free(sc);
}

static char *run_doc(const struct fm_scenario *sc, bool controller, struct fm_sim_run **keep)
{
        struct fm_core_config cfg;
        fm_core_config_default(&cfg);
        cfg.policies.traffic_enabled = true;
        struct fm_sim_options opt = {
                .core = controller ? &cfg : NULL, .tick = FM_MS_PER_S, .series = true};
        struct fm_sim_run *run = NULL;
        assert_int_equal(fm_sim_run(sc, &opt, &run), 0);
        struct json_object *doc = NULL;
        assert_int_equal(fm_sim_run_json(run, NULL, &doc), 0);
        char *s = strdup(json_object_to_json_string_ext(doc, JSON_C_TO_STRING_PLAIN));
        json_object_put(doc);
        if (keep)
                *keep = run;
        else
                fm_sim_run_free(run);
        return s;
}

static void test_engine(void **state)
{
        (void)state;
        struct fm_scenario *sc = small(6, 240, 1);
        sc->deployments[0].versions[0].capacity_rps = 60;
        sc->n_faults = 1;
        sc->faults[0] = (struct fm_scn_fault){.kind = FM_SCN_FAULT_SLOW,
                                              .deployment = 0,
                                              .version = -1,
                                              .instance = "web-2",
                                              .at_s = 300,
                                              .until_s = -1,
                                              .factor = 4};
        snprintf(sc->faults[0].target, sizeof(sc->faults[0].target), "web/web-2");
        sc->n_expect = 2;
        sc->expect[0] = (struct fm_scn_expect){.kind = FM_SCN_EXPECT_ACTION,
                                               .action = FM_ACTION_RESTART,
                                               .verdict = FM_VERDICT_APPROVED,
                                               .after_s = 300,
                                               .before_s = 500,
                                               .has_min = true,
                                               .min = 1};
        sc->expect[1] = (struct fm_scn_expect){.kind = FM_SCN_EXPECT_METRIC,
                                               .metric = FM_SCN_METRIC_FALSE_ACTIONS,
                                               .has_max = true,
                                               .max = 0};

        struct fm_sim_run *run = NULL;
        char *a = run_doc(sc, true, &run);
        char *b = run_doc(sc, true, NULL);
        assert_string_equal(a, b); /* the same seed, the same bytes */
        assert_true(fm_sim_expectations_ok(run));
        assert_true(run->summary.time_to_detect_s > 0 && run->summary.time_to_detect_s < 200);
        assert_false(isnan(run->summary.time_to_mitigate_s));
        assert_int_equal(run->n_samples, 180);
        assert_true(run->summary.events > 6 * 180);
        bool restarted = false;
        for (uint32_t k = 0; k < run->n_actions; k++)
                if (run->actions[k].action == FM_ACTION_RESTART) {
                        assert_string_equal(run->actions[k].target, "web-2");
                        assert_string_equal(run->actions[k].outcome, "ok");
                        restarted = true;
                }
        assert_true(restarted);

        /* without the controller: no action, the slow instance stays, more SLO lost */
        struct fm_sim_run *base = NULL;
        char *c = run_doc(sc, false, &base);
        assert_int_equal(base->n_actions, 0);
        assert_int_equal(base->summary.events, 0);
        assert_false(fm_sim_expectations_ok(base));
        assert_true(base->summary.slo_minutes_lost > run->summary.slo_minutes_lost);
        assert_true(isnan(base->summary.time_to_detect_s));

        struct json_object *doc = NULL;
        assert_int_equal(fm_sim_run_json(run, base, &doc), 0);
        struct json_object *bl, *ctl;
        assert_true(json_object_object_get_ex(doc, "baseline", &bl));
        assert_true(json_object_object_get_ex(bl, "controller", &ctl));
        assert_false(json_object_get_boolean(ctl));
        json_object_put(doc);

        fm_sim_run_free(run);
        fm_sim_run_free(base);
        free(a);
        free(b);
        free(c);
        free(sc);
}

/*
 * An over-provisioned deployment is scaled down; the simulated actuator
 * tells the core of each scale it carries out, so the instances it removed
 * are retired when they go silent: no restart of an instance that is gone,
 * no freeze from their silence.
 */
static void test_scale_down_retires(void **state)
{
        (void)state;
        struct fm_scenario *sc = small(10, 150, 1);
        sc->duration_s = 1200;
        struct fm_core_config cfg;
        fm_core_config_default(&cfg);
        cfg.policies.autoscale_enabled = true;
        cfg.policies.autoscale.min_replicas = 2;
        cfg.policies.autoscale.cold_start = 60 * FM_MS_PER_S;
        struct fm_sim_options opt = {.core = &cfg, .tick = FM_MS_PER_S};
        struct fm_sim_run *run = NULL;
        assert_int_equal(fm_sim_run(sc, &opt, &run), 0);

        unsigned downs = 0;
        for (uint32_t k = 0; k < run->n_actions; k++) {
                const struct fm_sim_action *a = &run->actions[k];
                if (a->action == FM_ACTION_SCALE && a->verdict == FM_VERDICT_APPROVED)
                        downs += strcmp(a->reason, "scale_down") == 0;
                if (a->action == FM_ACTION_RESTART || a->verdict == FM_VERDICT_FROZEN)
                        fail_msg("%s %s at %lld: %s", a->policy, fm_action_name(a->action),
                                 (long long)a->at, a->text);
        }
        assert_true(downs >= 1);
        assert_true(run->summary.final_replicas < 10);
        fm_sim_run_free(run);
        free(sc);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_rng),
                cmocka_unit_test(test_numerics),
                cmocka_unit_test(test_queueing),
                cmocka_unit_test(test_events_and_cold_start),
                cmocka_unit_test(test_weights_rollback_restart),
                cmocka_unit_test(test_scenario_errors),
                cmocka_unit_test(test_engine),
                cmocka_unit_test(test_scale_down_retires),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
