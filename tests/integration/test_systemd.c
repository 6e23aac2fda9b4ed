/* SPDX-License-Identifier: MIT */

/*
 * Integration tests of the systemd backend (actuators/systemd.c) against a
 * private dbus-daemon with python3-dbusmock playing systemd
 * (tests/integration/systemd_mock.py, a template over dbusmock's own). Both
 * peers start once for the group (tests/integration/proc.h); every test
 * resets the mock (org.freedesktop.DBus.Mock.Reset: units and call log
 * gone) and builds a fresh actuator and backend on a fresh sd-event loop.
 * The loop runs until the actuator has an outcome or a deadline passes.
 * What the backend asked systemd for is read back from the mock's call log
 * (GetMethodCalls).
 */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "proc.h"

#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "actuator_peer.h"
#include "systemd.h"

#ifndef FM_SOURCE_ROOT
#error "FM_SOURCE_ROOT must name the source tree (meson: c_args -DFM_SOURCE_ROOT=...)"
#endif

#define DBUS_DAEMON "/usr/bin/dbus-daemon"
#define PYTHON "/usr/bin/python3"
#define MOCK_TEMPLATE FM_SOURCE_ROOT "/tests/integration/systemd_mock.py"
#define DEST "org.freedesktop.systemd1"
#define MANAGER_PATH "/org/freedesktop/systemd1"
#define MOCK_IFACE "org.freedesktop.DBus.Mock"
#define WAIT_MS 20000 /* generous: valgrind is slow */
#define CALLS_MAX 64

struct peers {
        struct fm_peer daemon, mock;
        char socket[128];
        char address[160];
};

struct env {
        struct peers *p;
        sd_event *event;
        sd_bus *ctl; /* the test's own connection, for the Mock interface */
        struct fm_actuator *a;
        struct fm_systemd *x;
        struct fm_systemd_config cfg;
        int backend;
};

static sd_bus *connect_ctl(const char *address)
{
        sd_bus *bus = NULL;

        assert_int_equal(sd_bus_new(&bus), 0);
        assert_true(sd_bus_set_address(bus, address) >= 0);
        assert_true(sd_bus_set_bus_client(bus, 1) >= 0);
        assert_true(sd_bus_start(bus) >= 0);
        return bus;
}

/* ---- the mock's control interface ---- */

static void mock_call(sd_bus *ctl, const char *method, const char *types, ...)
{
        sd_bus_message *m = NULL, *reply = NULL;
        sd_bus_error err = SD_BUS_ERROR_NULL;
        va_list ap;
        int r;

        assert_true(sd_bus_message_new_method_call(ctl, &m, DEST, MANAGER_PATH, MOCK_IFACE,
                                                   method) >= 0);
        va_start(ap, types);
        r = sd_bus_message_appendv(m, types, ap);
        va_end(ap);
        assert_true(r >= 0);
        r = sd_bus_call(ctl, m, 0, &err, &reply);
        if (r < 0)
                fail_msg("%s: %s %s", method, err.name, err.message);
        sd_bus_error_free(&err);
        sd_bus_message_unref(reply);
        sd_bus_message_unref(m);
}

/*
 * The logged calls of method, each as its string arguments joined by
 * spaces ("web-3.service replace"); other arguments are left out.
 */
static unsigned mock_calls(sd_bus *ctl, const char *method, char out[][300])
{
        sd_bus_message *reply = NULL;
        sd_bus_error err = SD_BUS_ERROR_NULL;
        unsigned n = 0;

        if (sd_bus_call_method(ctl, DEST, MANAGER_PATH, MOCK_IFACE, "GetMethodCalls", &err, &reply,
                               "s", method) < 0)
                fail_msg("GetMethodCalls: %s %s", err.name, err.message);
        assert_true(sd_bus_message_enter_container(reply, 'a', "(tav)") >= 0);
        while (sd_bus_message_enter_container(reply, 'r', "tav") > 0) {
                uint64_t ts;
                char *line = out[n];

                assert_true(n < CALLS_MAX);
                line[0] = '\0';
                assert_true(sd_bus_message_read(reply, "t", &ts) >= 0);
                assert_true(sd_bus_message_enter_container(reply, 'a', "v") >= 0);
                for (;;) {
                        char type;
                        const char *contents;
                        int r = sd_bus_message_peek_type(reply, &type, &contents);
                        assert_true(r >= 0);
                        if (r == 0)
                                break;
                        if (strcmp(contents, "s") == 0) {
                                const char *s;
                                size_t len = strlen(line);
                                assert_true(sd_bus_message_read(reply, "v", "s", &s) >= 0);
                                snprintf(line + len, 300 - len, "%s%s", len ? " " : "", s);
                        } else {
                                assert_true(sd_bus_message_skip(reply, "v") >= 0);
                        }
                }
                assert_true(sd_bus_message_exit_container(reply) >= 0);
                assert_true(sd_bus_message_exit_container(reply) >= 0);
                n++;
        }
        sd_bus_message_unref(reply);
        return n;
}

static unsigned count_calls(sd_bus *ctl, const char *method)
{
        char calls[CALLS_MAX][300];
        return mock_calls(ctl, method, calls);
}

static void unit_state(sd_bus *ctl, const char *unit, const char *active, const char *sub)
{
        mock_call(ctl, "SetUnitState", "sss", unit, active, sub);
}

/* ActiveState of a loaded unit, read through the manager like a client would. */
static void active_state(sd_bus *ctl, const char *unit, char *buf, size_t size)
{
        sd_bus_message *reply = NULL;
        sd_bus_error err = SD_BUS_ERROR_NULL;
        const char *path;
        char *s = NULL;

        assert_true(sd_bus_call_method(ctl, DEST, MANAGER_PATH, "org.freedesktop.systemd1.Manager",
                                       "GetUnit", &err, &reply, "s", unit) >= 0);
        assert_true(sd_bus_message_read(reply, "o", &path) >= 0);
        assert_true(sd_bus_get_property_string(ctl, DEST, path, "org.freedesktop.systemd1.Unit",
                                               "ActiveState", &err, &s) >= 0);
        snprintf(buf, size, "%s", s);
        free(s);
        sd_bus_message_unref(reply);
}

/* ---- peers ---- */

struct ready_name {
        const char *address;
};

static bool mock_ready(void *arg)
{
        struct ready_name *rn = arg;
        sd_bus *bus = NULL;
        sd_bus_message *reply = NULL;
        int has = 0;

        if (sd_bus_new(&bus) < 0)
                return false;
        if (sd_bus_set_address(bus, rn->address) >= 0 && sd_bus_set_bus_client(bus, 1) >= 0 &&
            sd_bus_start(bus) >= 0 &&
            sd_bus_call_method(bus, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                               "org.freedesktop.DBus", "NameHasOwner", NULL, &reply, "s",
                               DEST) >= 0)
                (void)sd_bus_message_read(reply, "b", &has);
        sd_bus_message_unref(reply);
        sd_bus_flush_close_unref(bus);
        return has;
}

static int group_setup(void **state)
{
        struct peers *p = calloc(1, sizeof *p);
        char conf[128], env_addr[200];
        static char text[1024];

        assert_non_null(p);
        fm_peer_init(&p->daemon, "dbus");
        fm_peer_path(&p->daemon, "bus", p->socket, sizeof p->socket);
        fm_peer_path(&p->daemon, "bus.conf", conf, sizeof conf);
        snprintf(p->address, sizeof p->address, "unix:path=%s", p->socket);
        /* A bus of our own: no service activation, anyone may own any name. */
        snprintf(text, sizeof text,
                 "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration "
                 "1.0//EN\" \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n"
                 "<busconfig>\n  <listen>unix:path=%s</listen>\n  <auth>EXTERNAL</auth>\n"
                 "  <policy context=\"default\">\n"
                 "    <allow send_destination=\"*\" eavesdrop=\"true\"/>\n"
                 "    <allow eavesdrop=\"true\"/>\n    <allow own=\"*\"/>\n"
                 "  </policy>\n</busconfig>\n",
                 p->socket);
        fm_write_file(conf, text);
        char *dargv[] = {DBUS_DAEMON, "--nofork", "--config-file", conf, NULL};
        fm_peer_start(&p->daemon, dargv);
        fm_peer_wait(&p->daemon, fm_ready_unix, p->socket);

        fm_peer_init(&p->mock, "dbusmock");
        snprintf(env_addr, sizeof env_addr, "DBUS_SYSTEM_BUS_ADDRESS=%s", p->address);
        char *margv[] = {PYTHON, "-m", "dbusmock", "--system", "--template", MOCK_TEMPLATE, NULL};
        char *menv[] = {env_addr, "PATH=/usr/bin:/bin", "LC_ALL=C.UTF-8", NULL};
        fm_peer_start_env(&p->mock, margv, menv);
        struct ready_name rn = {p->address};
        fm_peer_wait(&p->mock, mock_ready, &rn);
        *state = p;
        return 0;
}

static int group_teardown(void **state)
{
        struct peers *p = *state;

        if (!p)
                return 0;
        fm_peer_done(&p->mock);
        fm_peer_done(&p->daemon);
        free(p);
        return 0;
}

/* ---- per test ---- */

static void env_start(struct env *e)
{
        struct fm_actuator_config ac;

        fm_actuator_config_default(&ac);
        ac.max_attempts = 1; /* one attempt: its result is the outcome */
        ac.breaker_failures = 1000;
        assert_int_equal(fm_actuator_new(&ac, 1, &e->a), 0);
        assert_int_equal(fm_systemd_new(e->event, &e->cfg, e->a, &e->x), 0);
        e->backend = fm_actuator_add_backend(e->a, &fm_backend_systemd_ops, e->x);
        assert_true(e->backend >= 0);
}

static int setup(void **state)
{
        struct peers *p = *state;
        struct env *e = calloc(1, sizeof *e);

        assert_non_null(e);
        e->p = p;
        assert_int_equal(sd_event_new(&e->event), 0);
        e->ctl = connect_ctl(p->address);
        mock_call(e->ctl, "Reset", "");
        mock_call(e->ctl, "ClearCalls", "");
        fm_systemd_config_default(&e->cfg);
        snprintf(e->cfg.address, sizeof e->cfg.address, "%s", p->address);
        e->cfg.job_timeout = 10 * FM_MS_PER_S;
        *state = e;
        return 0;
}

static int teardown(void **state)
{
        struct env *e = *state;
        struct peers *p = e->p;

        fm_actuator_free(e->a);
        fm_systemd_free(e->x);
        sd_bus_flush_close_unref(e->ctl);
        sd_event_unref(e->event);
        free(e);
        *state = p;
        return 0;
}

static struct fm_action_req make_req(enum fm_action action, const char *deployment,
                                     const char *instance)
{
        static unsigned seq;
        struct fm_action_req req;
        char key[16];

        snprintf(key, sizeof key, "k%u", ++seq);
        fm_test_req(&req, action, deployment, key);
        snprintf(req.instance, sizeof req.instance, "%s", instance);
        return req;
}

/* Submits req and runs the loop until its outcome: the backend has nothing left in flight. */
static struct fm_action_outcome run(struct env *e, const struct fm_action_req *req)
{
        struct fm_action_outcome out = fm_test_run(e->event, e->a, e->backend, req);
        assert_int_equal(fm_systemd_in_flight(e->x), 0);
        return out;
}

/* A scale of "web" from (0: unknown) to to, or its observation. */
static struct fm_action_outcome run_scale(struct env *e, uint32_t from, uint32_t to, bool observe)
{
        struct fm_action_req req = make_req(FM_ACTION_SCALE, "web", "");

        req.arg.scale.from = from;
        req.arg.scale.to = to;
        req.observe = observe;
        return run(e, &req);
}

static void assert_contains(const char *haystack, const char *needle)
{
        if (!strstr(haystack, needle))
                fail_msg("\"%s\" does not contain \"%s\"", haystack, needle);
}

static void assert_failed(const struct fm_action_outcome *out, int error, const char *needle)
{
        assert_int_equal(out->status, FM_OUTCOME_FAILED);
        assert_int_equal(out->last_error, error);
        assert_contains(out->detail, needle);
}

/* ---- tests ---- */

static void test_restart(void **state)
{
        struct env *e = *state;
        char calls[CALLS_MAX][300];

        mock_call(e->ctl, "AddMockUnit", "s", "web-3.service");
        mock_call(e->ctl, "SetNRestarts", "su", "web-3.service", 2);
        env_start(e);
        struct fm_action_req req = make_req(FM_ACTION_RESTART, "web", "web-3");
        struct fm_action_outcome out = run(e, &req);
        assert_int_equal(out.status, FM_OUTCOME_OK);
        assert_contains(out.detail, "restart web-3.service: job done");
        assert_contains(out.detail, "active/running, NRestarts 2");
        assert_int_equal(mock_calls(e->ctl, "RestartUnit", calls), 1);
        assert_string_equal(calls[0], "web-3.service replace");
        assert_int_equal(count_calls(e->ctl, "Subscribe"), 1);
        assert_int_equal(count_calls(e->ctl, "StartUnit"), 0);
}

/* The JobRemoved signal overtakes the method reply. */
static void test_restart_early_signal(void **state)
{
        struct env *e = *state;

        mock_call(e->ctl, "AddMockUnit", "s", "web-3.service");
        mock_call(e->ctl, "SetEarly", "b", 1);
        env_start(e);
        struct fm_action_req req = make_req(FM_ACTION_RESTART, "web", "web-3");
        struct fm_action_outcome out = run(e, &req);
        assert_int_equal(out.status, FM_OUTCOME_OK);
        assert_contains(out.detail, "job done");
}

/* No JobRemoved: the action waits for it, and ends only at job_timeout. */
static void test_restart_waits_for_job(void **state)
{
        struct env *e = *state;

        mock_call(e->ctl, "AddMockUnit", "s", "web-3.service");
        mock_call(e->ctl, "SetJobResult", "ss", "web-3.service", "hold");
        e->cfg.job_timeout = 1500;
        env_start(e);
        struct fm_action_req req = make_req(FM_ACTION_RESTART, "web", "web-3");
        int64_t t0 = fm_test_now_ms();
        struct fm_action_outcome out = run(e, &req);
        assert_true(fm_test_now_ms() - t0 >= 1400);
        assert_int_equal(out.status, FM_OUTCOME_FAILED); /* retryable, but one attempt only */
        assert_int_equal(out.last_error, -ETIMEDOUT);
        assert_contains(out.detail, "not finished");
        assert_int_equal(count_calls(e->ctl, "RestartUnit"), 1);
}

static void test_restart_job_failed(void **state)
{
        struct env *e = *state;

        mock_call(e->ctl, "AddMockUnit", "s", "web-3.service");
        mock_call(e->ctl, "SetJobResult", "ss", "web-3.service", "failed");
        env_start(e);
        struct fm_action_req req = make_req(FM_ACTION_RESTART, "web", "web-3");
        struct fm_action_outcome out = run(e, &req);
        assert_failed(&out, -EIO, "restart web-3.service: job failed");
        assert_contains(out.detail, "failed/failed");
}

static void test_restart_no_such_unit(void **state)
{
        struct env *e = *state;

        env_start(e);
        struct fm_action_req req = make_req(FM_ACTION_RESTART, "web", "ghost");
        struct fm_action_outcome out = run(e, &req);
        assert_failed(&out, -ENOENT, "org.freedesktop.systemd1.NoSuchUnit");
}

static void test_observe_restart(void **state)
{
        struct env *e = *state;
        struct fm_action_req req;
        struct fm_action_outcome out;

        mock_call(e->ctl, "AddMockUnit", "s", "web-1.service");
        mock_call(e->ctl, "AddMockUnit", "s", "web-2.service");
        unit_state(e->ctl, "web-1.service", "active", "running");
        env_start(e);

        req = make_req(FM_ACTION_RESTART, "web", "web-1");
        req.observe = true;
        out = run(e, &req);
        assert_int_equal(out.status, FM_OUTCOME_OK);
        assert_contains(out.detail, "active/running");

        req = make_req(FM_ACTION_RESTART, "web", "web-2");
        req.observe = true;
        out = run(e, &req);
        assert_failed(&out, -ESRCH, "inactive/dead");

        req = make_req(FM_ACTION_RESTART, "web", "web-9");
        req.observe = true;
        out = run(e, &req);
        assert_failed(&out, -ESRCH, "not loaded");

        /* Observing changes nothing. */
        assert_int_equal(count_calls(e->ctl, "RestartUnit"), 0);
        assert_int_equal(count_calls(e->ctl, "StartUnit"), 0);
}

static void test_scale(void **state)
{
        struct env *e = *state;
        char calls[CALLS_MAX][300], st[32];
        struct fm_action_outcome out;

        mock_call(e->ctl, "AddMockUnit", "s", "web-v1@.service");
        unit_state(e->ctl, "web-v1@1.service", "active", "running");
        unit_state(e->ctl, "web-v1@2.service", "active", "running");
        env_start(e);

        out = run_scale(e, 2, 4, false);
        assert_int_equal(out.status, FM_OUTCOME_OK);
        assert_contains(out.detail, "scale web (v1) 2->4");
        assert_contains(out.detail, "started 2/2, stopped 0/0");
        assert_int_equal(mock_calls(e->ctl, "StartUnit", calls), 2);
        assert_string_equal(calls[0], "web-v1@3.service replace");
        assert_string_equal(calls[1], "web-v1@4.service replace");
        assert_int_equal(count_calls(e->ctl, "StopUnit"), 0);
        assert_int_equal(mock_calls(e->ctl, "ListUnitsByPatterns", calls), 1);
        active_state(e->ctl, "web-v1@4.service", st, sizeof st);
        assert_string_equal(st, "active");

        out = run_scale(e, 2, 4, true);
        assert_int_equal(out.status, FM_OUTCOME_OK);
        assert_contains(out.detail, "4 active");

        mock_call(e->ctl, "ClearCalls", "");
        out = run_scale(e, 4, 2, false);
        assert_int_equal(out.status, FM_OUTCOME_OK);
        assert_contains(out.detail, "started 0/0, stopped 2/2");
        assert_int_equal(mock_calls(e->ctl, "StopUnit", calls), 2);
        assert_string_equal(calls[0], "web-v1@4.service replace");
        assert_string_equal(calls[1], "web-v1@3.service replace");
        assert_int_equal(count_calls(e->ctl, "StartUnit"), 0);
        active_state(e->ctl, "web-v1@3.service", st, sizeof st);
        assert_string_equal(st, "inactive");

        /* Observe: 2 holds, 3 does not. */
        out = run_scale(e, 0, 2, true);
        assert_int_equal(out.status, FM_OUTCOME_OK);
        out = run_scale(e, 0, 3, true);
        assert_failed(&out, -ESRCH, "2 active");

        /* Already there: no job at all. */
        mock_call(e->ctl, "ClearCalls", "");
        out = run_scale(e, 2, 2, false);
        assert_int_equal(out.status, FM_OUTCOME_OK);
        assert_contains(out.detail, "nothing to do");
        assert_int_equal(count_calls(e->ctl, "StartUnit") + count_calls(e->ctl, "StopUnit"), 0);
}

static void test_scale_job_failed(void **state)
{
        struct env *e = *state;

        mock_call(e->ctl, "AddMockUnit", "s", "web-v1@.service");
        unit_state(e->ctl, "web-v1@1.service", "active", "running");
        mock_call(e->ctl, "SetJobResult", "ss", "web-v1@3.service", "dependency");
        env_start(e);
        struct fm_action_outcome out = run_scale(e, 1, 4, false);
        assert_failed(&out, -ENOLINK, "start web-v1@3.service: job dependency");
        assert_contains(out.detail, "started 2/3");
        /* Every job was waited for: all three were asked for. */
        assert_int_equal(count_calls(e->ctl, "StartUnit"), 3);
}

static void test_scale_two_versions(void **state)
{
        struct env *e = *state;

        mock_call(e->ctl, "AddMockUnit", "s", "web-v1@.service");
        mock_call(e->ctl, "AddMockUnit", "s", "web-v2@.service");
        unit_state(e->ctl, "web-v1@1.service", "active", "running");
        unit_state(e->ctl, "web-v2@1.service", "active", "running");
        env_start(e);
        struct fm_action_outcome out = run_scale(e, 2, 3, false);
        assert_failed(&out, -EBUSY, "both running");
        assert_int_equal(count_calls(e->ctl, "StartUnit"), 0);
}

static void setup_versions(struct env *e)
{
        mock_call(e->ctl, "AddMockUnit", "s", "web-v1@.service");
        mock_call(e->ctl, "AddMockUnit", "s", "web-v2@.service");
        unit_state(e->ctl, "web-v1@1.service", "active", "running");
        unit_state(e->ctl, "web-v1@2.service", "active", "running");
}

static void test_rollback(void **state)
{
        struct env *e = *state;
        char calls[CALLS_MAX][300], all[CALLS_MAX][300], st[32];
        unsigned n;

        setup_versions(e);
        env_start(e);
        struct fm_action_req req = make_req(FM_ACTION_ROLLBACK, "web", "");
        snprintf(req.arg.rollback.from, sizeof req.arg.rollback.from, "%s", "v1");
        snprintf(req.arg.rollback.to, sizeof req.arg.rollback.to, "%s", "v2");
        struct fm_action_outcome out = run(e, &req);
        assert_int_equal(out.status, FM_OUTCOME_OK);
        assert_contains(out.detail, "rollback web v1->v2");
        assert_contains(out.detail, "started 2/2, stopped 2/2");
        assert_int_equal(mock_calls(e->ctl, "StartUnit", calls), 2);
        assert_string_equal(calls[0], "web-v2@1.service replace");
        assert_string_equal(calls[1], "web-v2@2.service replace");
        assert_int_equal(mock_calls(e->ctl, "StopUnit", calls), 2);
        assert_string_equal(calls[0], "web-v1@2.service replace");
        assert_string_equal(calls[1], "web-v1@1.service replace");

        /* start_first: every start comes before the first stop. */
        {
                sd_bus_message *reply = NULL;
                const char *names[CALLS_MAX];
                n = 0;
                assert_true(sd_bus_call_method(e->ctl, DEST, MANAGER_PATH, MOCK_IFACE, "GetCalls",
                                               NULL, &reply, "") >= 0);
                assert_true(sd_bus_message_enter_container(reply, 'a', "(tsav)") >= 0);
                while (sd_bus_message_enter_container(reply, 'r', "tsav") > 0) {
                        uint64_t ts;
                        const char *name;
                        assert_true(sd_bus_message_read(reply, "ts", &ts, &name) >= 0);
                        assert_true(sd_bus_message_skip(reply, "av") >= 0);
                        assert_true(sd_bus_message_exit_container(reply) >= 0);
                        assert_true(n < CALLS_MAX);
                        snprintf(all[n], sizeof all[n], "%s", name);
                        names[n] = all[n];
                        n++;
                }
                sd_bus_message_unref(reply);
                int last_start = -1, first_stop = -1;
                for (unsigned i = 0; i < n; i++) {
                        if (strcmp(names[i], "StartUnit") == 0)
                                last_start = (int)i;
                        if (strcmp(names[i], "StopUnit") == 0 && first_stop < 0)
                                first_stop = (int)i;
                }
                assert_true(last_start >= 0 && first_stop > last_start);
        }
        active_state(e->ctl, "web-v2@2.service", st, sizeof st);
        assert_string_equal(st, "active");
        active_state(e->ctl, "web-v1@1.service", st, sizeof st);
        assert_string_equal(st, "inactive");

        req.observe = true;
        snprintf(req.key, sizeof req.key, "%s", "observe-rollback");
        out = run(e, &req);
        assert_int_equal(out.status, FM_OUTCOME_OK);
        assert_contains(out.detail, "2 of v2 active, 0 of v1 active");
}

/* A failed start leaves the old version running, and the detail says so. */
static void test_rollback_start_failed(void **state)
{
        struct env *e = *state;
        char st[32];

        setup_versions(e);
        mock_call(e->ctl, "SetJobResult", "ss", "web-v2@2.service", "failed");
        env_start(e);
        struct fm_action_req req = make_req(FM_ACTION_ROLLBACK, "web", "");
        snprintf(req.arg.rollback.from, sizeof req.arg.rollback.from, "%s", "v1");
        snprintf(req.arg.rollback.to, sizeof req.arg.rollback.to, "%s", "v2");
        struct fm_action_outcome out = run(e, &req);
        assert_failed(&out, -EIO, "start web-v2@2.service: job failed");
        assert_contains(out.detail, "started 1/2, stopped 0/2");
        assert_contains(out.detail, "v1 left running");
        assert_int_equal(count_calls(e->ctl, "StopUnit"), 0);
        active_state(e->ctl, "web-v1@1.service", st, sizeof st);
        assert_string_equal(st, "active");

        req.observe = true;
        snprintf(req.key, sizeof req.key, "%s", "observe-rollback-failed");
        out = run(e, &req);
        assert_int_equal(out.status, FM_OUTCOME_FAILED);
        assert_int_equal(out.last_error, -ESRCH);
}

static void test_rollback_stop_first(void **state)
{
        struct env *e = *state;
        char calls[CALLS_MAX][300];

        setup_versions(e);
        e->cfg.rollback_order = FM_SYSTEMD_STOP_FIRST;
        mock_call(e->ctl, "SetJobResult", "ss", "web-v1@1.service", "timeout");
        env_start(e);
        struct fm_action_req req = make_req(FM_ACTION_ROLLBACK, "web", "");
        snprintf(req.arg.rollback.from, sizeof req.arg.rollback.from, "%s", "v1");
        snprintf(req.arg.rollback.to, sizeof req.arg.rollback.to, "%s", "v2");
        struct fm_action_outcome out = run(e, &req);
        assert_int_equal(out.status, FM_OUTCOME_FAILED); /* retryable, one attempt */
        assert_int_equal(out.last_error, -ETIMEDOUT);
        assert_contains(out.detail, "stop web-v1@1.service: job timeout");
        assert_contains(out.detail, "v2 not started");
        assert_int_equal(mock_calls(e->ctl, "StopUnit", calls), 2);
        assert_int_equal(count_calls(e->ctl, "StartUnit"), 0);
}

static void test_hostile_names(void **state)
{
        struct env *e = *state;
        static const char *const bad[] = {"../x", "a/b",  "a b", "a\n",  "%",  "@",
                                          "x;y",  "a\"b", "..",  "a\tb", "$x", "a@b"};
        static const char *const methods[] = {"StartUnit", "StopUnit", "RestartUnit", "GetUnit",
                                              "ListUnitsByPatterns"};

        /* Restarts name the deployment too, so a hostile one is refused there as well. */
        snprintf(e->cfg.deployments[0].instance_unit, sizeof e->cfg.deployments[0].instance_unit,
                 "%s", "{deployment}@{instance}.service");
        env_start(e);
        for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
                struct fm_action_req req;
                struct fm_action_outcome out;

                req = make_req(FM_ACTION_RESTART, "web", bad[i]);
                out = run(e, &req);
                assert_int_equal(out.status, FM_OUTCOME_FAILED);
                assert_int_equal(out.last_error, -EINVAL);

                req = make_req(FM_ACTION_SCALE, bad[i], "");
                req.arg.scale.to = 3;
                out = run(e, &req);
                assert_int_equal(out.status, FM_OUTCOME_FAILED);
                assert_int_equal(out.last_error, -EINVAL);

                req = make_req(FM_ACTION_ROLLBACK, "web", "");
                snprintf(req.arg.rollback.from, sizeof req.arg.rollback.from, "%s", "v1");
                snprintf(req.arg.rollback.to, sizeof req.arg.rollback.to, "%s", bad[i]);
                out = run(e, &req);
                assert_int_equal(out.status, FM_OUTCOME_FAILED);
                assert_int_equal(out.last_error, -EINVAL);

                req = make_req(FM_ACTION_RESTART, bad[i], "web-1");
                req.observe = true;
                out = run(e, &req);
                assert_int_equal(out.status, FM_OUTCOME_FAILED);
                assert_int_equal(out.last_error, -EINVAL);
        }
        for (size_t i = 0; i < ARRAY_SIZE(methods); i++)
                assert_int_equal(count_calls(e->ctl, methods[i]), 0);
}

/*
 * The bus goes away while a job runs: the action fails at once as retryable
 * -ECONNRESET instead of waiting for a JobRemoved that cannot come. Runs
 * last: it stops the group's dbus-daemon (and so the mock).
 */
static void test_bus_lost(void **state)
{
        struct env *e = *state;
        struct fm_action_outcome out;
        int64_t deadline = fm_test_now_ms() + WAIT_MS;

        mock_call(e->ctl, "AddMockUnit", "s", "web-3.service");
        mock_call(e->ctl, "SetJobResult", "ss", "web-3.service", "hold");
        env_start(e);
        struct fm_action_req req = make_req(FM_ACTION_RESTART, "web", "web-3");
        assert_true(fm_actuator_submit(e->a, e->backend, &req, fm_test_wall_ms()) >= 1);
        while (count_calls(e->ctl, "RestartUnit") == 0) {
                assert_true(fm_test_now_ms() < deadline);
                assert_true(sd_event_run(e->event, 50 * 1000) >= 0);
        }
        fm_peer_stop(&e->p->daemon, SIGTERM);
        while (fm_actuator_poll(e->a, &out) != 1) {
                assert_true(fm_test_now_ms() < deadline);
                assert_true(fm_actuator_tick(e->a, fm_test_wall_ms()) >= 0);
                assert_true(sd_event_run(e->event, 50 * 1000) >= 0);
        }
        assert_int_equal(out.status, FM_OUTCOME_FAILED); /* retryable, one attempt */
        assert_int_equal(out.last_error, -ECONNRESET);
        assert_contains(out.detail, "bus disconnected");
        assert_int_equal(fm_systemd_in_flight(e->x), 0);
}

/* An unsupported action and a deployment without mapping: -EOPNOTSUPP, no call. */
static void test_unsupported(void **state)
{
        struct env *e = *state;

        e->cfg.n_deployments = 1;
        snprintf(e->cfg.deployments[0].deployment, sizeof e->cfg.deployments[0].deployment, "%s",
                 "api");
        env_start(e);
        struct fm_action_req req = make_req(FM_ACTION_RESTART, "web", "web-1");
        struct fm_action_outcome out = run(e, &req);
        assert_int_equal(out.status, FM_OUTCOME_UNSUPPORTED);
        assert_int_equal(count_calls(e->ctl, "RestartUnit"), 0);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_restart, setup, teardown),
                cmocka_unit_test_setup_teardown(test_restart_early_signal, setup, teardown),
                cmocka_unit_test_setup_teardown(test_restart_waits_for_job, setup, teardown),
                cmocka_unit_test_setup_teardown(test_restart_job_failed, setup, teardown),
                cmocka_unit_test_setup_teardown(test_restart_no_such_unit, setup, teardown),
                cmocka_unit_test_setup_teardown(test_observe_restart, setup, teardown),
                cmocka_unit_test_setup_teardown(test_scale, setup, teardown),
                cmocka_unit_test_setup_teardown(test_scale_job_failed, setup, teardown),
                cmocka_unit_test_setup_teardown(test_scale_two_versions, setup, teardown),
                cmocka_unit_test_setup_teardown(test_rollback, setup, teardown),
                cmocka_unit_test_setup_teardown(test_rollback_start_failed, setup, teardown),
                cmocka_unit_test_setup_teardown(test_rollback_stop_first, setup, teardown),
                cmocka_unit_test_setup_teardown(test_hostile_names, setup, teardown),
                cmocka_unit_test_setup_teardown(test_unsupported, setup, teardown),
                cmocka_unit_test_setup_teardown(test_bus_lost, setup, teardown), /* last */
        };
        return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
