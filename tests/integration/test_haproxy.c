/* SPDX-License-Identifier: MIT */

/*
 * The HAProxy backend (actuators/haproxy.c) against a real haproxy
 * (/usr/sbin/haproxy, Debian 12's 2.6). Each test starts its own haproxy
 * in the foreground (-db) with a configuration written into its own
 * temporary directory (tests/integration/proc.h): an admin runtime socket,
 * a user-level one, an admin one on loopback TCP, a frontend on a free
 * loopback port and a backend "web" with servers v1 and v2 pointing at
 * unused loopback ports (no health checks, so they count as up). No
 * daemon mode, chroot or user switch, so a root run keeps access to the
 * directory.
 *
 * What the backend did is checked with the test's own blocking client on
 * the admin socket, not with the backend's read-back.
 */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "haproxy_peer.h"

#include <systemd/sd-event.h>

#define HAPROXY_BIN "/usr/sbin/haproxy"
#define WAIT_MS 20000 /* generous: valgrind */

struct fx {
        struct fm_peer peer;
        char cfg_path[128];
        char admin_sock[96];
        char user_sock[96];
        uint16_t tcp_port;
        sd_event *e;
        struct fm_actuator *a;
        struct fm_haproxy *h;
        int backend;
};

/* The test's own client: one command, the answer until EOF, into buf. */
static void query(const char *sock, const char *cmd, char *buf, size_t size)
{
        struct sockaddr_un a = {.sun_family = AF_UNIX};
        struct timeval tv = {.tv_sec = 10};
        size_t len = 0;
        int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

        assert_true(s >= 0);
        assert_true(strlen(sock) < sizeof a.sun_path);
        memcpy(a.sun_path, sock, strlen(sock) + 1);
        assert_int_equal(setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv), 0);
        assert_int_equal(connect(s, (struct sockaddr *)&a, sizeof a), 0);
        assert_int_equal(send(s, cmd, strlen(cmd), MSG_NOSIGNAL), (ssize_t)strlen(cmd));
        for (;;) {
                assert_true(len + 1 < size);
                ssize_t n = read(s, buf + len, size - len - 1);
                assert_true(n >= 0);
                if (n == 0)
                        break;
                len += (size_t)n;
        }
        buf[len] = '\0';
        close(s);
}

static struct fm_haproxy_server server_state(struct fx *fx, const char *server)
{
        static char buf[65536];
        struct fm_haproxy_server s;

        query(fx->admin_sock, "show servers state web\n", buf, sizeof buf);
        assert_int_equal(fm_haproxy_parse_servers_state(buf, strlen(buf), "web", server, &s), 0);
        return s;
}

/* A backend on fx->a talking to socket: *ret_h. */
static int add_haproxy(struct fx *fx, const char *socket, struct fm_haproxy **ret_h)
{
        struct fm_haproxy_config cfg;
        int backend;

        fm_haproxy_config_default(&cfg);
        snprintf(cfg.socket, sizeof cfg.socket, "%s", socket);
        assert_int_equal(fm_haproxy_new(fx->e, &cfg, fx->a, ret_h), 0);
        backend = fm_actuator_add_backend(fx->a, &fm_backend_haproxy_ops, *ret_h);
        assert_true(backend >= 0);
        return backend;
}

static int setup(void **state)
{
        struct fx *fx = calloc(1, sizeof *fx);
        struct fm_actuator_config acfg;
        char conf[2048];
        int n;

        assert_non_null(fx);
        *state = fx;
        fm_peer_init(&fx->peer, "haproxy");
        fm_peer_path(&fx->peer, "haproxy.cfg", fx->cfg_path, sizeof fx->cfg_path);
        fm_peer_path(&fx->peer, "admin.sock", fx->admin_sock, sizeof fx->admin_sock);
        fm_peer_path(&fx->peer, "user.sock", fx->user_sock, sizeof fx->user_sock);
        fx->tcp_port = fm_free_port();
        n = snprintf(conf, sizeof conf,
                     "global\n"
                     "    stats socket %s mode 600 level admin\n"
                     "    stats socket %s mode 600 level user\n"
                     "    stats socket ipv4@127.0.0.1:%u level admin\n"
                     "    stats timeout 10s\n"
                     "defaults\n"
                     "    mode tcp\n"
                     "    timeout connect 1s\n"
                     "    timeout client 5s\n"
                     "    timeout server 5s\n"
                     "frontend fe\n"
                     "    bind 127.0.0.1:%u\n"
                     "    default_backend web\n"
                     "backend web\n"
                     "    server v1 127.0.0.1:%u\n"
                     "    server v2 127.0.0.1:%u\n",
                     fx->admin_sock, fx->user_sock, fx->tcp_port, fm_free_port(), fm_free_port(),
                     fm_free_port());
        assert_true(n > 0 && (size_t)n < sizeof conf);
        fm_write_file(fx->cfg_path, conf);
        char *argv[] = {HAPROXY_BIN, "-f", fx->cfg_path, "-db", NULL};
        fm_peer_start(&fx->peer, argv);
        fm_peer_wait(&fx->peer, fm_ready_unix, fx->admin_sock);

        assert_int_equal(sd_event_new(&fx->e), 0);
        fm_actuator_config_default(&acfg);
        acfg.max_attempts = 1;
        acfg.breaker_failures = 1000;
        assert_int_equal(fm_actuator_new(&acfg, 7, &fx->a), 0);
        fx->backend = add_haproxy(fx, fx->admin_sock, &fx->h);
        return 0;
}

static int teardown(void **state)
{
        struct fx *fx = *state;

        fm_actuator_free(fx->a);
        fm_haproxy_free(fx->h);
        sd_event_unref(fx->e);
        fm_peer_done(&fx->peer);
        free(fx);
        return 0;
}

static struct fm_action_outcome run(struct fx *fx, const struct fm_action_req *req)
{
        return fm_test_run(fx->e, fx->a, fx->backend, req);
}

static struct fm_test_state_result set_state(struct fx *fx, const char *target,
                                             enum fm_haproxy_state st)
{
        return fm_test_set_state(fx->e, fx->h, target, st);
}

static void test_set_weights(void **state)
{
        struct fx *fx = *state;
        struct fm_action_req req = fm_test_weights("web", "v1", 90, "v2", 10);
        struct fm_action_outcome o = run(fx, &req);
        char buf[256];

        assert_int_equal(o.status, FM_OUTCOME_OK);
        assert_string_equal(o.detail, "web/v1 weight 90 ready, web/v2 weight 10 ready");
        query(fx->admin_sock, "get weight web/v1\n", buf, sizeof buf);
        assert_string_equal(buf, "90 (initial 1)\n\n");
        query(fx->admin_sock, "get weight web/v2\n", buf, sizeof buf);
        assert_string_equal(buf, "10 (initial 1)\n\n");

        /* Observe: holds now. */
        req.observe = true;
        o = run(fx, &req);
        assert_int_equal(o.status, FM_OUTCOME_OK);
        assert_string_equal(o.detail, "web/v1 weight 90 ready, web/v2 weight 10 ready");

        /* Observe of something else: -ESRCH, and nothing changed. */
        req = fm_test_weights("web", "v1", 50, "v2", 50);
        req.observe = true;
        o = run(fx, &req);
        assert_int_equal(o.status, FM_OUTCOME_FAILED);
        assert_int_equal(o.last_error, -ESRCH);
        assert_int_equal(server_state(fx, "v1").uweight, 90);
}

static void test_drain_and_ready(void **state)
{
        struct fx *fx = *state;
        struct fm_action_req req = fm_test_weights("web", "v1", 90, "v2", 10);
        struct fm_action_outcome o = run(fx, &req);
        struct fm_haproxy_server s;

        assert_int_equal(o.status, FM_OUTCOME_OK);

        req = fm_test_weights("web", "v1", 100, "v2", 0);
        o = run(fx, &req);
        assert_int_equal(o.status, FM_OUTCOME_OK);
        assert_string_equal(o.detail, "web/v1 weight 100 ready, web/v2 weight 10 drain");
        s = server_state(fx, "v2");
        assert_int_equal(fm_haproxy_admin_state(s.admin_state), FM_HAPROXY_DRAIN);
        assert_int_equal(s.admin_state, 0x08); /* forced drain, nothing else */
        s = server_state(fx, "v1");
        assert_int_equal(s.uweight, 100);
        assert_int_equal(s.admin_state, 0);

        req = fm_test_weights("web", "v1", 75, "v2", 25);
        o = run(fx, &req);
        assert_int_equal(o.status, FM_OUTCOME_OK);
        assert_string_equal(o.detail, "web/v1 weight 75 ready, web/v2 weight 25 ready");
        s = server_state(fx, "v2");
        assert_int_equal(s.admin_state, 0);
        assert_int_equal(s.uweight, 25);
}

static void test_set_state(void **state)
{
        struct fx *fx = *state;
        struct fm_test_state_result r = set_state(fx, "v2", FM_HAPROXY_MAINT);

        assert_int_equal(r.kind, FM_RESULT_OK);
        assert_string_equal(r.detail, "web/v2 weight 1 maint");
        assert_int_equal(fm_haproxy_admin_state(server_state(fx, "v2").admin_state),
                         FM_HAPROXY_MAINT);

        /* set_weights does not undo a maintenance. */
        struct fm_action_req req = fm_test_weights("web", "v1", 50, "v2", 50);
        struct fm_action_outcome o = run(fx, &req);
        assert_int_equal(o.status, FM_OUTCOME_FAILED);
        assert_int_equal(o.last_error, -EBUSY);
        assert_int_equal(server_state(fx, "v1").uweight, 1);

        r = set_state(fx, "v2", FM_HAPROXY_DRAIN);
        assert_int_equal(r.kind, FM_RESULT_OK);
        assert_string_equal(r.detail, "web/v2 weight 1 drain");
        r = set_state(fx, "v2", FM_HAPROXY_READY);
        assert_int_equal(r.kind, FM_RESULT_OK);
        assert_string_equal(r.detail, "web/v2 weight 1 ready");
        assert_int_equal(server_state(fx, "v2").admin_state, 0);
}

static void test_unknown_server_and_backend(void **state)
{
        struct fx *fx = *state;
        struct fm_action_req req = fm_test_weights("web", "v1", 90, "v9", 10);
        struct fm_action_outcome o = run(fx, &req);

        assert_int_equal(o.status, FM_OUTCOME_FAILED);
        assert_int_equal(o.last_error, -ENOENT);
        assert_string_equal(o.detail, "web/v9: No such server.");
        assert_int_equal(server_state(fx, "v1").uweight, 1); /* nothing was applied */

        req = fm_test_weights("api", "v1", 100, NULL, 0);
        o = run(fx, &req);
        assert_int_equal(o.status, FM_OUTCOME_FAILED);
        assert_int_equal(o.last_error, -ENOENT);
        assert_string_equal(o.detail, "api: Can't find backend.");

        struct fm_test_state_result r = set_state(fx, "v9", FM_HAPROXY_DRAIN);
        assert_int_equal(r.kind, FM_RESULT_PERMANENT);
        assert_int_equal(r.error, -ENOENT);
        assert_string_equal(r.detail, "web/v9: No such server.");
}

static void test_hostile_names(void **state)
{
        struct fx *fx = *state;
        static const char *const hostile[] = {
                "v2;set server web/v1 state maint",
                "v2 weight 0",
                "v1\nset server web/v1 state maint",
                "v1/../v2",
                "v1;shutdown sessions server web/v1",
                "v1\"",
                "v1'",
                "v1%0a",
                "v1\x01",
        };
        static char before[65536], after[65536], stat[65536];
        struct fm_action_outcome o;
        struct fm_action_req req;

        req = fm_test_weights("web", "v1", 60, "v2", 40);
        assert_int_equal(run(fx, &req).status, FM_OUTCOME_OK);
        query(fx->admin_sock, "show servers state web\n", before, sizeof before);

        for (size_t i = 0; i < ARRAY_SIZE(hostile); i++) {
                req = fm_test_weights("web", "v1", 0, "v2", 100);
                snprintf(req.arg.weights.w[1].target, sizeof req.arg.weights.w[1].target, "%s",
                         hostile[i]);
                o = run(fx, &req);
                assert_int_equal(o.status, FM_OUTCOME_FAILED);
                assert_int_equal(o.last_error, -EINVAL);
                assert_int_equal(fm_haproxy_set_state(fx->h, "web", hostile[i], FM_HAPROXY_MAINT,
                                                      fm_test_on_state, NULL, NULL),
                                 -EINVAL);
        }
        req = fm_test_weights("web;disable frontend fe", "v1", 0, NULL, 0);
        o = run(fx, &req);
        assert_int_equal(o.last_error, -EINVAL);
        assert_int_equal(fm_haproxy_pending(fx->h), 0);

        /* HAProxy's state is as it was, column for column but the clock. */
        query(fx->admin_sock, "show servers state web\n", after, sizeof after);
        struct fm_haproxy_server b, a;
        for (int i = 1; i <= 2; i++) {
                const char *name = i == 1 ? "v1" : "v2";
                assert_int_equal(
                        fm_haproxy_parse_servers_state(before, strlen(before), "web", name, &b), 0);
                assert_int_equal(
                        fm_haproxy_parse_servers_state(after, strlen(after), "web", name, &a), 0);
                assert_memory_equal(&a, &b, sizeof a);
        }
        assert_int_equal(server_state(fx, "v1").uweight, 60);
        assert_int_equal(server_state(fx, "v2").uweight, 40);
        /* The frontend still serves. */
        query(fx->admin_sock, "show stat\n", stat, sizeof stat);
        assert_non_null(strstr(stat, "fe,FRONTEND,"));
        assert_null(strstr(stat, "STOP"));
}

static void drop_second(struct fx *fx, struct fm_haproxy *h)
{
        /* The actuator holds the backend pointer: free it first. */
        fm_actuator_free(fx->a);
        fx->a = NULL;
        fm_haproxy_free(h);
}

static void test_permission_denied(void **state)
{
        struct fx *fx = *state;
        struct fm_haproxy *user = NULL;
        int backend = add_haproxy(fx, fx->user_sock, &user);

        struct fm_action_req req = fm_test_weights("web", "v1", 70, "v2", 30);
        struct fm_action_outcome o = fm_test_run(fx->e, fx->a, backend, &req);
        assert_int_equal(o.status, FM_OUTCOME_FAILED);
        assert_int_equal(o.last_error, -EACCES);
        assert_string_equal(o.detail, "web/v1: Permission denied");
        assert_int_equal(server_state(fx, "v1").uweight, 1);
        drop_second(fx, user);
}

static void test_tcp_socket(void **state)
{
        struct fx *fx = *state;
        struct fm_haproxy *tcp = NULL;
        char socket[64];

        snprintf(socket, sizeof socket, "ipv4@127.0.0.1:%u", fx->tcp_port);
        int backend = add_haproxy(fx, socket, &tcp);

        struct fm_action_req req = fm_test_weights("web", "v1", 33, "v2", 67);
        struct fm_action_outcome o = fm_test_run(fx->e, fx->a, backend, &req);
        assert_int_equal(o.status, FM_OUTCOME_OK);
        assert_string_equal(o.detail, "web/v1 weight 33 ready, web/v2 weight 67 ready");
        assert_int_equal(server_state(fx, "v2").uweight, 67);
        drop_second(fx, tcp);
}

static void test_haproxy_stopped(void **state)
{
        struct fx *fx = *state;
        struct fm_actuator_config acfg;
        struct fm_actuator *a2 = NULL;
        struct fm_actuator_request_info info;
        struct fm_haproxy *h2 = NULL;
        struct fm_haproxy_config cfg;
        int backend;

        fm_peer_stop(&fx->peer, SIGTERM);

        struct fm_test_state_result r = set_state(fx, "v1", FM_HAPROXY_DRAIN);
        assert_int_equal(r.kind, FM_RESULT_RETRYABLE);
        assert_true(r.error == -ENOENT || r.error == -ECONNREFUSED);

        struct fm_action_req req = fm_test_weights("web", "v1", 90, "v2", 10);
        struct fm_action_outcome o = run(fx, &req);
        assert_int_equal(o.status, FM_OUTCOME_FAILED);
        assert_true(o.last_error == -ENOENT || o.last_error == -ECONNREFUSED);

        /* With retries allowed the actuator keeps the request waiting for another go. */
        fm_actuator_config_default(&acfg);
        assert_int_equal(fm_actuator_new(&acfg, 9, &a2), 0);
        fm_haproxy_config_default(&cfg);
        snprintf(cfg.socket, sizeof cfg.socket, "%s", fx->admin_sock);
        assert_int_equal(fm_haproxy_new(fx->e, &cfg, a2, &h2), 0);
        backend = fm_actuator_add_backend(a2, &fm_backend_haproxy_ops, h2);
        req = fm_test_weights("web", "v1", 90, "v2", 10);
        int64_t id = fm_actuator_submit(a2, backend, &req, fm_test_wall_ms());
        assert_true(id > 0);
        int64_t deadline = fm_test_now_ms() + WAIT_MS;
        for (;;) {
                assert_int_equal(fm_actuator_request_info(a2, (uint64_t)id, &info), 0);
                if (!info.running)
                        break;
                assert_true(fm_test_now_ms() < deadline);
                assert_true(sd_event_run(fx->e, 100 * 1000) >= 0);
        }
        assert_false(info.done);
        assert_int_equal(info.attempts, 1);
        fm_actuator_free(a2);
        fm_haproxy_free(h2);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_set_weights, setup, teardown),
                cmocka_unit_test_setup_teardown(test_drain_and_ready, setup, teardown),
                cmocka_unit_test_setup_teardown(test_set_state, setup, teardown),
                cmocka_unit_test_setup_teardown(test_unknown_server_and_backend, setup, teardown),
                cmocka_unit_test_setup_teardown(test_hostile_names, setup, teardown),
                cmocka_unit_test_setup_teardown(test_permission_denied, setup, teardown),
                cmocka_unit_test_setup_teardown(test_tcp_socket, setup, teardown),
                cmocka_unit_test_setup_teardown(test_haproxy_stopped, setup, teardown),
        };

        fm_require_program(HAPROXY_BIN); /* Debian package haproxy */
        return cmocka_run_group_tests(tests, NULL, NULL);
}
