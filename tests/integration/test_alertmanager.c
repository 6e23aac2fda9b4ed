/* SPDX-License-Identifier: MIT */

/*
 * Integration test of the Alertmanager backend (actuators/alertmanager.c)
 * against a real prometheus-alertmanager started on a free loopback port
 * with its own configuration and storage directory and no clustering. The
 * alert goes through the actuator; the test reads Alertmanager's view back
 * with blocking libcurl calls to GET /api/v2/alerts.
 */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <json-c/json.h>
#include <systemd/sd-event.h>

#include "actuator_peer.h"
#include "alertmanager.h"
#include "http_peer.h"
#include "proc.h"

#define AM_BIN "/usr/bin/prometheus-alertmanager"
#define WAIT_MS 30000

struct fx {
        sd_event *e;
        struct fm_peer peer;
        uint16_t port;
        char base[64];
        struct fm_actuator *a;
        struct fm_alertmanager *x;
        int backend;
};

static bool am_ready(void *arg)
{
        const struct fx *f = arg;
        char url[96];
        snprintf(url, sizeof url, "%s/-/ready", f->base);
        return fm_http(NULL, url, NULL, NULL) == 200;
}

static int setup(void **state)
{
        struct fx *f = calloc(1, sizeof *f);
        char conf[128], data[128], arg_conf[160], arg_data[160], arg_web[64];

        assert_non_null(f);
        assert_int_equal(sd_event_new(&f->e), 0);
        fm_peer_init(&f->peer, "alertmanager");
        fm_peer_path(&f->peer, "alertmanager.yml", conf, sizeof conf);
        fm_peer_path(&f->peer, "data", data, sizeof data);
        fm_write_file(conf, "route:\n  receiver: blackhole\nreceivers:\n  - name: blackhole\n");
        f->port = fm_free_port();
        snprintf(f->base, sizeof f->base, "http://127.0.0.1:%u", f->port);
        snprintf(arg_conf, sizeof arg_conf, "--config.file=%s", conf);
        snprintf(arg_data, sizeof arg_data, "--storage.path=%s", data);
        snprintf(arg_web, sizeof arg_web, "--web.listen-address=127.0.0.1:%u", f->port);
        char *argv[] = {AM_BIN, arg_conf, arg_data, arg_web, "--cluster.listen-address=", NULL};
        fm_peer_start(&f->peer, argv);
        fm_peer_wait(&f->peer, am_ready, f);

        struct fm_actuator_config ac;
        fm_actuator_config_default(&ac);
        ac.backoff_base = 10;
        ac.backoff_cap = 50;
        ac.max_attempts = 3;
        assert_int_equal(fm_actuator_new(&ac, 7, &f->a), 0);
        struct fm_alertmanager_config c;
        fm_alertmanager_config_default(&c);
        snprintf(c.url, sizeof c.url, "%s/", f->base);
        c.n_labels = 1;
        snprintf(c.labels[0].name, sizeof c.labels[0].name, "team");
        snprintf(c.labels[0].value, sizeof c.labels[0].value, "ml-serving");
        snprintf(c.generator_url, sizeof c.generator_url, "http://fleetmedic.example/status");
        assert_int_equal(fm_alertmanager_new(f->e, &c, f->a, &f->x), 0);
        f->backend = fm_actuator_add_backend(f->a, &fm_backend_alertmanager_ops, f->x);
        assert_true(f->backend >= 0);
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        struct fx *f = *state;
        fm_actuator_free(f->a);
        fm_alertmanager_free(f->x);
        fm_peer_done(&f->peer);
        sd_event_unref(f->e);
        free(f);
        return 0;
}

static void alert_req(struct fm_action_req *r, const char *deployment, const char *instance,
                      enum fm_severity sev, const char *summary)
{
        fm_test_req(r, FM_ACTION_ALERT, deployment, "alert-test");
        snprintf(r->instance, sizeof r->instance, "%s", instance);
        r->arg.alert.severity = sev;
        snprintf(r->arg.alert.summary, sizeof r->arg.alert.summary, "%s", summary);
}

static void run(struct fx *f, const struct fm_action_req *r, struct fm_action_outcome *out)
{
        *out = fm_test_run(f->e, f->a, f->backend, r);
}

static const char *jstr(json_object *o, const char *key)
{
        json_object *v;
        if (!o || !json_object_object_get_ex(o, key, &v))
                return NULL;
        return json_object_get_string(v);
}

/* The alert with these deployment and instance labels from GET /api/v2/alerts (new ref). */
static json_object *find_alert(struct fx *f, const char *query, const char *deployment)
{
        char url[160];
        json_object *out = NULL;
        long status;

        snprintf(url, sizeof url, "%s/api/v2/alerts%s", f->base, query);
        json_object *arr = fm_http_json(NULL, url, NULL, &status);
        assert_int_equal(status, 200);
        assert_non_null(arr);
        for (size_t i = 0; i < json_object_array_length(arr); i++) {
                json_object *a = json_object_array_get_idx(arr, i), *l;
                if (json_object_object_get_ex(a, "labels", &l) &&
                    strcmp(jstr(l, "deployment"), deployment) == 0)
                        out = json_object_get(a);
        }
        json_object_put(arr);
        return out;
}

struct resolved {
        int calls, error;
        char detail[256];
};

static void on_resolved(void *userdata, int error, const char *detail)
{
        struct resolved *r = userdata;
        r->calls++;
        r->error = error;
        snprintf(r->detail, sizeof r->detail, "%s", detail);
}

static void test_alert_and_resolve(void **state)
{
        struct fx *f = *state;
        struct fm_action_req r;
        struct fm_action_outcome o;

        alert_req(&r, "fraud-scorer", "fraud-scorer-3", FM_SEVERITY_CRITICAL,
                  "p99 latency 2.3x the SLO for 5 min");
        run(f, &r, &o);
        assert_int_equal(o.status, FM_OUTCOME_OK);
        assert_string_equal(o.detail, "alert critical fraud-scorer/fraud-scorer-3 posted");

        json_object *a = find_alert(f, "", "fraud-scorer"), *l, *ann, *st;
        assert_non_null(a);
        assert_true(json_object_object_get_ex(a, "labels", &l));
        assert_int_equal(json_object_object_length(l), 5);
        assert_string_equal(jstr(l, "alertname"), "FleetmedicAlert");
        assert_string_equal(jstr(l, "severity"), "critical");
        assert_string_equal(jstr(l, "instance"), "fraud-scorer-3");
        assert_string_equal(jstr(l, "team"), "ml-serving");
        assert_true(json_object_object_get_ex(a, "annotations", &ann));
        assert_string_equal(jstr(ann, "summary"), "p99 latency 2.3x the SLO for 5 min");
        assert_string_equal(jstr(a, "generatorURL"), "http://fleetmedic.example/status");
        assert_true(json_object_object_get_ex(a, "status", &st));
        assert_string_equal(jstr(st, "state"), "active");
        json_object_put(a);

        /* Observed after a restart: it is there. */
        r.observe = true;
        run(f, &r, &o);
        assert_int_equal(o.status, FM_OUTCOME_OK);

        /* Resolved: gone from the active alerts. */
        struct resolved res = {0};
        assert_int_equal(fm_alertmanager_resolve(f->x, "fraud-scorer", "fraud-scorer-3",
                                                 FM_SEVERITY_CRITICAL, on_resolved, &res),
                         0);
        assert_int_equal(res.calls, 0);
        int64_t deadline = fm_test_now_ms() + WAIT_MS;
        while (res.calls == 0 && fm_test_now_ms() < deadline)
                assert_true(sd_event_run(f->e, 100 * 1000) >= 0);
        assert_int_equal(res.calls, 1);
        assert_int_equal(res.error, 0);
        a = find_alert(f, "?active=true", "fraud-scorer");
        if (a) {
                /* Still listed: then no longer active. */
                assert_true(json_object_object_get_ex(a, "status", &st));
                assert_string_not_equal(jstr(st, "state"), "active");
                json_object_put(a);
        }
        run(f, &r, &o);
        assert_int_equal(o.status, FM_OUTCOME_FAILED);
        assert_int_equal(o.last_error, -ESRCH);
}

static void test_hostile_names(void **state)
{
        struct fx *f = *state;
        struct fm_action_req r;
        struct fm_action_outcome o;
        const char *name = "x\"},{\"labels\":{\"a\":\"b";

        alert_req(&r, name, "", FM_SEVERITY_WARNING, "quote \" backslash \\ newline \n end");
        run(f, &r, &o);
        assert_int_equal(o.status, FM_OUTCOME_OK);
        json_object *a = find_alert(f, "", name), *l, *ann;
        assert_non_null(a);
        assert_true(json_object_object_get_ex(a, "labels", &l));
        assert_int_equal(json_object_object_length(l), 4); /* no instance label */
        assert_true(json_object_object_get_ex(a, "annotations", &ann));
        assert_string_equal(jstr(ann, "summary"), "quote \" backslash \\ newline \n end");
        json_object_put(a);

        /* Bad severity: refused before anything is sent. */
        alert_req(&r, "web", "", (enum fm_severity)99, "x");
        run(f, &r, &o);
        assert_int_equal(o.status, FM_OUTCOME_FAILED);
        assert_int_equal(o.last_error, -EINVAL);
        assert_int_equal(fm_alertmanager_resolve(f->x, "", NULL, FM_SEVERITY_INFO, NULL, NULL),
                         -EINVAL);
}

static void test_config(void **state)
{
        (void)state;
        struct fm_alertmanager_config c, d;
        fm_alertmanager_config_default(&d);
        assert_int_equal(fm_alertmanager_config_validate(&d), 0);
        assert_string_equal(d.url, "http://127.0.0.1:9093");
        c = d;
        c.n_labels = 1;
        snprintf(c.labels[0].name, sizeof c.labels[0].name, "severity");
        assert_int_equal(fm_alertmanager_config_validate(&c), -EINVAL);
        snprintf(c.labels[0].name, sizeof c.labels[0].name, "1bad");
        assert_int_equal(fm_alertmanager_config_validate(&c), -EINVAL);
        snprintf(c.labels[0].name, sizeof c.labels[0].name, "env");
        assert_int_equal(fm_alertmanager_config_validate(&c), 0);
        c.n_labels = FM_ALERTMANAGER_LABELS_MAX + 1;
        assert_int_equal(fm_alertmanager_config_validate(&c), -EINVAL);
        c = d;
        snprintf(c.url, sizeof c.url, "unix:///x");
        assert_int_equal(fm_alertmanager_config_validate(&c), -EINVAL);
        c = d;
        c.ttl = 10;
        assert_int_equal(fm_alertmanager_config_validate(&c), -EINVAL);
}

int main(void)
{
        fm_require_program(AM_BIN);
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_config),
                cmocka_unit_test_setup_teardown(test_alert_and_resolve, setup, teardown),
                cmocka_unit_test_setup_teardown(test_hostile_names, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
