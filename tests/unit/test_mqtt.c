/* SPDX-License-Identifier: MIT */

/*
 * Integration tests of the MQTT client (controller/mqtt.c) against a real
 * mosquitto broker. Every test that needs one starts its own on a free
 * loopback port with its own directory (configuration, persistence, log),
 * so tests share nothing. The broker and every helper process
 * (mosquitto_pub, mosquitto_sub, openssl) are children of this process:
 * each has PR_SET_PDEATHSIG so it dies with us whatever happens, teardown
 * stops the broker by PID (SIGTERM, then SIGKILL after a deadline) also
 * after a failed assertion, and an atexit handler catches the rest.
 *
 * Nothing sleeps: the client is driven by sd_event_run() until a condition
 * holds or a deadline passes, and child processes are waited for through
 * a "death pipe" (as an sd-event source, or with poll()): see
 * tests/integration/proc.h.
 */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <systemd/sd-event.h>

#include "../integration/proc.h"
#include "mqtt.h"

#define BROKER_BIN "/usr/sbin/mosquitto"
#define PUB_BIN "/usr/bin/mosquitto_pub"
#define SUB_BIN "/usr/bin/mosquitto_sub"
#define PASSWD_BIN "/usr/bin/mosquitto_passwd"

#define WAIT_MS 10000 /* generous: valgrind is slow */
#define MAX_MSGS 32
#define WILL_TOPIC "fleet/_fleetmedic/controller/status"
#define WILL_PAYLOAD "offline"
#define MOSQUITTO_SUB_TIMEOUT 27 /* mosquitto_sub's exit code when -W expires */

/* ---- the broker ---- */

struct broker {
        struct fm_peer p; /* its directory: configuration, persistence, logs */
        uint16_t port;
        char conf[96];
        fm_ms ready_at; /* when the last start saw the port accept */
};

/*
 * Open descriptors of this process, to check that a client leaves none
 * behind. Call it once the loop has its CLOCK_MONOTONIC timerfd (see
 * warm_up()): that one belongs to the sd_event, not to the client.
 */
static unsigned count_fds(void)
{
        unsigned n = 0;
        for (int fd = 0; fd < 1024; fd++)
                if (fcntl(fd, F_GETFD) >= 0)
                        n++;
        return n;
}

/* Creates the directory and a configuration; `extra` is appended (listener options, auth). */
static void broker_init(struct broker *b, const char *extra)
{
        memset(b, 0, sizeof(*b));
        fm_peer_init(&b->p, "mqtt");
        b->port = fm_free_port();
        fm_peer_path(&b->p, "mosquitto.conf", b->conf, sizeof(b->conf));

        char text[2048];
        int n = snprintf(
                text, sizeof(text),
                "listener %u 127.0.0.1\n"
                "%s"
                "persistence true\n"
                "persistence_location %s/\n"
                /* 0 = no limit: the tests check that nothing is lost */
                "max_queued_messages 0\n"
                "max_queued_bytes 0\n"
                "log_dest file %s/broker.log\n"
                "log_type all\n"
                /* as root, mosquitto would switch to user mosquitto and lose our dir */
                "%s"
                "%s",
                b->port, extra && strstr(extra, "allow_anonymous") ? "" : "allow_anonymous true\n",
                b->p.dir, b->p.dir, geteuid() == 0 ? "user root\n" : "", extra ? extra : "");
        assert_true(n > 0 && (size_t)n < sizeof(text));
        fm_write_file(b->conf, text);
}

/* Starts the broker and waits (polling a TCP connect, with a deadline) until it accepts. */
static void broker_start(struct broker *b)
{
        char *argv[] = {BROKER_BIN, "-c", b->conf, NULL};
        fm_peer_start(&b->p, argv);
        fm_peer_wait(&b->p, fm_ready_port, &b->port);
        b->ready_at = fm_test_now_ms();
}

static void broker_stop(struct broker *b, int sig)
{
        fm_peer_stop(&b->p, sig);
}

/* ---- what the callbacks saw ---- */

struct rec {
        unsigned connected, subscribed, disconnected, n_msgs;
        bool session_present;
        int last_reason;
        unsigned *sum; /* optional: a counter shared by several clients */
        fm_ms t_connected;
        fm_ms t_disconnected[8];
        char topic[MAX_MSGS][128];
        char payload[MAX_MSGS][256];
        size_t len[MAX_MSGS];
};

static void cb_message(void *u, const char *topic, const void *payload, size_t len)
{
        struct rec *r = u;
        assert_non_null(topic);
        assert_non_null(payload);
        if (r->n_msgs < MAX_MSGS) {
                snprintf(r->topic[r->n_msgs], sizeof(r->topic[0]), "%s", topic);
                size_t n = len < sizeof(r->payload[0]) - 1 ? len : sizeof(r->payload[0]) - 1;
                memcpy(r->payload[r->n_msgs], payload, n);
                r->payload[r->n_msgs][n] = '\0';
                r->len[r->n_msgs] = len;
        }
        r->n_msgs++;
        if (r->sum)
                (*r->sum)++;
}

static void cb_connected(void *u, bool session_present)
{
        struct rec *r = u;
        r->connected++;
        r->session_present = session_present;
        r->t_connected = fm_test_now_ms();
}

static void cb_subscribed(void *u)
{
        struct rec *r = u;
        r->subscribed++;
}

static void cb_disconnected(void *u, int reason)
{
        struct rec *r = u;
        if (r->disconnected < ARRAY_SIZE(r->t_disconnected))
                r->t_disconnected[r->disconnected] = fm_test_now_ms();
        r->disconnected++;
        r->last_reason = reason;
}

static const struct fm_mqtt_callbacks cbs = {
        .message = cb_message,
        .connected = cb_connected,
        .subscribed = cb_subscribed,
        .disconnected = cb_disconnected,
};

/* ---- the fixture ---- */

struct fixture {
        sd_event *e;
        struct broker b;
        struct fm_mqtt *m, *m2;
        struct rec r, r2;
};

/* Only what cannot fail in practice: cmocka runs no teardown after a failed setup. */
static int setup(void **state)
{
        struct fixture *f = calloc(1, sizeof(*f));
        if (!f)
                return -1;
        f->b.p.exit_fd = -1;
        if (sd_event_new(&f->e) < 0) {
                free(f);
                return -1;
        }
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        struct fixture *f = *state;
        f->m = fm_mqtt_free(f->m);
        f->m2 = fm_mqtt_free(f->m2);
        fm_peer_done(&f->b.p);
        sd_event_unref(f->e);
        free(f);
        return 0;
}

/* First thing in a test: skip without mosquitto, else make the broker (and start it). */
static void begin(struct fixture *f, bool start)
{
        if (access(BROKER_BIN, X_OK) != 0 || access(PUB_BIN, X_OK) != 0 ||
            access(SUB_BIN, X_OK) != 0)
                skip();
        broker_init(&f->b, NULL);
        if (start)
                broker_start(&f->b);
}

static void make_cfg(struct fm_mqtt_config *c, const struct fixture *f, const char *client_id)
{
        fm_mqtt_config_default(c);
        snprintf(c->host, sizeof(c->host), "127.0.0.1");
        c->port = f->b.port;
        snprintf(c->client_id, sizeof(c->client_id), "%s", client_id);
        snprintf(c->topic_prefix, sizeof(c->topic_prefix), "fleet");
}

static int on_nothing(sd_event_source *s, uint64_t usec, void *u)
{
        (void)s;
        (void)usec;
        (void)u;
        return 0;
}

/* Makes the loop create its CLOCK_MONOTONIC timerfd now, so fd counts compare like with like. */
static void warm_up(sd_event *e)
{
        sd_event_source *s = NULL;
        assert_int_equal(sd_event_add_time_relative(e, &s, CLOCK_MONOTONIC, 0, 0, on_nothing, NULL),
                         0);
        assert_true(sd_event_run(e, 0) >= 0);
        sd_event_source_disable_unref(s);
}

/* Runs the loop until *counter >= want or the deadline passes. */
static bool wait_count(sd_event *e, const unsigned *counter, unsigned want, int timeout_ms)
{
        fm_ms deadline = fm_test_now_ms() + timeout_ms;
        while (*counter < want) {
                fm_ms left = deadline - fm_test_now_ms();
                if (left <= 0)
                        return false;
                assert_true(sd_event_run(e, (uint64_t)left * 1000) >= 0);
        }
        return true;
}

/* Runs the loop for a while, whatever happens (to see that something does NOT happen). */
static void run_for(sd_event *e, int ms)
{
        fm_ms deadline = fm_test_now_ms() + ms;
        for (fm_ms left; (left = deadline - fm_test_now_ms()) > 0;)
                assert_true(sd_event_run(e, (uint64_t)left * 1000) >= 0);
}

static void start_client(struct fixture *f, struct fm_mqtt **m, struct rec *r,
                         const struct fm_mqtt_config *c)
{
        assert_int_equal(fm_mqtt_new(f->e, c, &cbs, r, m), 0);
        if (!wait_count(f->e, &r->subscribed, r->subscribed + 1, WAIT_MS))
                fail_msg("client %s not subscribed (connected %u, disconnected %u, reason %d)",
                         c->client_id, r->connected, r->disconnected, r->last_reason);
}

/* ---- helper processes ---- */

struct child {
        pid_t pid;
        int exit_fd;
        int out; /* read end of its stdout, or -1 */
        unsigned exited;
        int status; /* exit code, or 128 + signal */
        sd_event_source *src;
};

static void reap(struct child *c)
{
        int st = 0;
        if (waitpid(c->pid, &st, 0) == c->pid)
                c->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        c->pid = 0;
        c->exited = 1;
        c->src = sd_event_source_disable_unref(c->src);
        if (c->exit_fd >= 0)
                close(c->exit_fd);
        c->exit_fd = -1;
}

static int on_child_exit(sd_event_source *s, int fd, uint32_t revents, void *u)
{
        (void)s;
        (void)fd;
        (void)revents;
        reap(u);
        return 0;
}

static void spawn(struct child *c, sd_event *e, bool capture, char *const argv[])
{
        int p[2] = {-1, -1};
        memset(c, 0, sizeof(*c));
        c->out = -1;
        if (capture)
                assert_int_equal(pipe2(p, O_CLOEXEC), 0);
        c->pid = fm_spawn(argv, NULL, NULL, p[1], -1, &c->exit_fd);
        if (capture) {
                close(p[1]);
                c->out = p[0];
        }
        if (e)
                assert_int_equal(sd_event_add_io(e, &c->src, c->exit_fd, EPOLLIN, on_child_exit, c),
                                 0);
}

/*
 * Runs argv to completion and returns its exit status; with out, its
 * stdout. With drive, the client's loop runs meanwhile (the child may need
 * it, e.g. to receive what it publishes); without, the client is frozen.
 */
static int run_child(struct fixture *f, bool drive, char *out, size_t out_size, char *const argv[])
{
        struct child c;
        spawn(&c, drive ? f->e : NULL, out != NULL, argv);
        bool done;
        if (drive) {
                done = wait_count(f->e, &c.exited, 1, WAIT_MS);
        } else {
                struct pollfd p = {.fd = c.exit_fd, .events = POLLIN};
                done = poll(&p, 1, WAIT_MS) > 0;
                if (done)
                        reap(&c);
        }
        if (!done) {
                kill(c.pid, SIGKILL);
                reap(&c);
        }
        if (out) {
                size_t n = 0;
                ssize_t k;
                while (n < out_size - 1 && (k = read(c.out, out + n, out_size - 1 - n)) > 0)
                        n += (size_t)k;
                out[n] = '\0';
                close(c.out);
        }
        if (!done)
                fail_msg("%s did not finish in %d ms", argv[0], WAIT_MS);
        return c.status;
}

static void mqtt_pub(struct fixture *f, bool drive, const char *topic, const char *msg,
                     const char *repeat)
{
        char port[8];
        snprintf(port, sizeof(port), "%u", f->b.port);
        char *argv[] = {PUB_BIN,        "-h", "127.0.0.1", "-p",
                        port,           "-q", "1",         "-t",
                        (char *)topic,  "-m", (char *)msg, repeat ? "--repeat" : NULL,
                        (char *)repeat, NULL};
        assert_int_equal(run_child(f, drive, NULL, 0, argv), 0);
}

/* mosquitto_sub -C 1 -W secs -v on topic: returns its exit status, the message in out. */
static int mqtt_sub_one(struct fixture *f, const char *topic, const char *secs, char *out,
                        size_t size)
{
        char port[8];
        snprintf(port, sizeof(port), "%u", f->b.port);
        char *argv[] = {SUB_BIN, "-h", "127.0.0.1", "-p",         port, "-t", (char *)topic,
                        "-C",    "1",  "-W",        (char *)secs, "-v", NULL};
        return run_child(f, false, out, size, argv);
}

/* ---- tests that need no broker ---- */

static void test_null_and_invalid(void **state)
{
        (void)state;
        sd_event *e = NULL;
        assert_int_equal(sd_event_new(&e), 0);
        struct fm_mqtt_config good;
        fm_mqtt_config_default(&good);
        struct fm_mqtt *m = NULL;
        struct rec r = {0};

        assert_null(fm_mqtt_free(NULL));
        assert_false(fm_mqtt_connected(NULL));
        assert_false(fm_mqtt_subscribed(NULL));
        assert_int_equal(fm_mqtt_reconnects(NULL), 0);
        assert_int_equal(fm_mqtt_subscribe_error(NULL), 0);
        assert_int_equal(fm_mqtt_publish(NULL, "a", "b", 1, 0, false), -EINVAL);
        assert_int_equal(fm_mqtt_new(NULL, &good, &cbs, &r, &m), -EINVAL);
        assert_int_equal(fm_mqtt_new(e, NULL, &cbs, &r, &m), -EINVAL);
        assert_int_equal(fm_mqtt_new(e, &good, NULL, &r, &m), -EINVAL);
        assert_int_equal(fm_mqtt_new(e, &good, &cbs, &r, NULL), -EINVAL);

        struct fm_mqtt_config c;
        int rows = 0;
#define EXPECT_EINVAL(stmt)                                                                        \
        do {                                                                                       \
                c = good;                                                                          \
                stmt;                                                                              \
                m = NULL;                                                                          \
                int r_ = fm_mqtt_new(e, &c, &cbs, &r, &m);                                         \
                if (r_ != -EINVAL)                                                                 \
                        fail_msg("%s: got %d, expected -EINVAL", #stmt, r_);                       \
                assert_null(m);                                                                    \
                rows++;                                                                            \
        } while (0)
        EXPECT_EINVAL(c.host[0] = '\0');
        EXPECT_EINVAL(c.port = 0);
        EXPECT_EINVAL(c.protocol = 3);
        EXPECT_EINVAL(c.protocol = 6);
        EXPECT_EINVAL(c.qos = 2);
        EXPECT_EINVAL(c.qos = -1);
        EXPECT_EINVAL(c.keepalive_s = 4);
        EXPECT_EINVAL(c.receive_maximum = 0);
        EXPECT_EINVAL(c.client_id[0] = '\0');
        EXPECT_EINVAL(c.topic_prefix[0] = '\0');
        EXPECT_EINVAL(snprintf(c.topic_prefix, sizeof(c.topic_prefix), "fleet/#"));
        EXPECT_EINVAL(snprintf(c.topic_prefix, sizeof(c.topic_prefix), "fl+eet"));
        EXPECT_EINVAL(snprintf(c.topic_prefix, sizeof(c.topic_prefix), "fleet/"));
        EXPECT_EINVAL(snprintf(c.shared_group, sizeof(c.shared_group), "a/b"));
        EXPECT_EINVAL(snprintf(c.shared_group, sizeof(c.shared_group), "a#"));
        EXPECT_EINVAL(c.reconnect_min = 0);
        EXPECT_EINVAL((c.reconnect_min = 2000, c.reconnect_max = 1000));
        EXPECT_EINVAL(c.reconnect_max = INT64_C(1) << 40);
        EXPECT_EINVAL(snprintf(c.will_topic, sizeof(c.will_topic), "fleet/+/status"));
        EXPECT_EINVAL((c.tls = true, snprintf(c.cert_file, sizeof(c.cert_file), "/etc/hostname")));
        EXPECT_EINVAL(memset(c.host, 'h', sizeof(c.host))); /* not NUL-terminated */
        assert_int_equal(rows, 21);

        /* Files that do not exist. */
        c = good;
        snprintf(c.password_file, sizeof(c.password_file), "/nonexistent/fm-password");
        assert_int_equal(fm_mqtt_new(e, &c, &cbs, &r, &m), -ENOENT);
        c = good;
        snprintf(c.username_file, sizeof(c.username_file), "/nonexistent/fm-user");
        assert_int_equal(fm_mqtt_new(e, &c, &cbs, &r, &m), -ENOENT);
        c = good;
        c.tls = true;
        snprintf(c.ca_file, sizeof(c.ca_file), "/nonexistent/ca.crt");
        assert_int_equal(fm_mqtt_new(e, &c, &cbs, &r, &m), -ENOENT);
        /* A credential that is not a regular file, or is empty. */
        c = good;
        snprintf(c.password_file, sizeof(c.password_file), "/tmp");
        assert_int_equal(fm_mqtt_new(e, &c, &cbs, &r, &m), -EINVAL);
        c = good;
        snprintf(c.password_file, sizeof(c.password_file), "/dev/null");
        assert_int_equal(fm_mqtt_new(e, &c, &cbs, &r, &m), -EINVAL);

        /* A valid configuration with no broker: created, freed before the loop ever runs. */
        assert_int_equal(fm_mqtt_new(e, &good, &cbs, &r, &m), 0);
        assert_false(fm_mqtt_connected(m));
        assert_int_equal(fm_mqtt_publish(m, "fleet/d/i/kpi", "x", 1, 1, false), -ENOTCONN);
        assert_int_equal(fm_mqtt_publish(m, NULL, "x", 1, 1, false), -EINVAL);
        assert_int_equal(fm_mqtt_publish(m, "fleet/d/i/kpi", NULL, 1, 1, false), -EINVAL);
        assert_int_equal(fm_mqtt_publish(m, "fleet/d/i/kpi", "x", 1, 2, false), -EINVAL);
        assert_null(fm_mqtt_free(m));
        assert_int_equal(r.connected + r.disconnected + r.subscribed + r.n_msgs, 0);
        sd_event_unref(e);
}

/* ---- tests against a broker ---- */

static void test_connect_subscribe(void **state)
{
        struct fixture *f = *state;
        begin(f, true);
        struct fm_mqtt_config c;
        make_cfg(&c, f, "fm-connect");
        assert_int_equal(fm_mqtt_new(f->e, &c, &cbs, &f->r, &f->m), 0);
        assert_false(fm_mqtt_connected(f->m));
        assert_int_equal(f->r.connected, 0); /* nothing happens before the loop runs */

        assert_true(wait_count(f->e, &f->r.subscribed, 1, WAIT_MS));
        assert_int_equal(f->r.connected, 1);
        assert_false(f->r.session_present); /* a fresh broker */
        assert_int_equal(f->r.disconnected, 0);
        assert_true(fm_mqtt_connected(f->m));
        assert_true(fm_mqtt_subscribed(f->m));
        assert_int_equal(fm_mqtt_reconnects(f->m), 0);
        assert_int_equal(fm_mqtt_subscribe_error(f->m), 0);

        /* Quiet afterwards: no further callbacks while nothing happens. */
        run_for(f->e, 300);
        assert_int_equal(f->r.connected, 1);
        assert_int_equal(f->r.subscribed, 1);
        assert_int_equal(f->r.disconnected, 0);
}

static void test_receive_and_filter(void **state)
{
        struct fixture *f = *state;
        begin(f, true);
        struct fm_mqtt_config c;
        make_cfg(&c, f, "fm-receive");
        start_client(f, &f->m, &f->r, &c);

        /* Not ours: published first, so they would arrive before the others. */
        mqtt_pub(f, true, "fleet/d/_fleetmedic/decisions", "{\"decision\":1}", NULL);
        mqtt_pub(f, true, "fleet/d/i/other", "{\"v\":1}", NULL);
        mqtt_pub(f, true, "fleet/d/i/x/kpi", "{\"v\":1}", NULL);
        mqtt_pub(f, true, "other/d/i/kpi", "{\"v\":1}", NULL);
        /* Ours. */
        mqtt_pub(f, true, "fleet/d/i/kpi", "{\"v\":1}", NULL);
        mqtt_pub(f, true, "fleet/dep-a/inst-1/health", "{\"v\":1,\"status\":\"ok\"}", NULL);
        mqtt_pub(f, true, "fleet/dep-a/inst-2/feedback", "{\"v\":1,\"outcomes\":[]}", NULL);

        assert_true(wait_count(f->e, &f->r.n_msgs, 3, WAIT_MS));
        run_for(f->e, 200);
        assert_int_equal(f->r.n_msgs, 3);
        assert_string_equal(f->r.topic[0], "fleet/d/i/kpi");
        assert_string_equal(f->r.payload[0], "{\"v\":1}");
        assert_int_equal(f->r.len[0], strlen("{\"v\":1}"));
        assert_string_equal(f->r.topic[1], "fleet/dep-a/inst-1/health");
        assert_string_equal(f->r.payload[1], "{\"v\":1,\"status\":\"ok\"}");
        assert_string_equal(f->r.topic[2], "fleet/dep-a/inst-2/feedback");
}

static void test_publish_roundtrip(void **state)
{
        struct fixture *f = *state;
        begin(f, true);
        struct fm_mqtt_config c;
        make_cfg(&c, f, "fm-publish");
        assert_int_equal(fm_mqtt_new(f->e, &c, &cbs, &f->r, &f->m), 0);
        assert_int_equal(fm_mqtt_publish(f->m, "fleet/d/i/kpi", "x", 1, 1, false), -ENOTCONN);
        assert_true(wait_count(f->e, &f->r.subscribed, 1, WAIT_MS));

        assert_int_equal(fm_mqtt_publish(f->m, "fleet/#", "x", 1, 1, false), -EINVAL);
        assert_int_equal(fm_mqtt_publish(f->m, "fleet/+/i/kpi", "x", 1, 1, false), -EINVAL);
        assert_int_equal(fm_mqtt_publish(f->m, "", "x", 1, 1, false), -EINVAL);

        const char *p = "{\"v\":1,\"status\":\"degraded\",\"reason\":\"warming up\"}";
        assert_int_equal(fm_mqtt_publish(f->m, "fleet/d/i/health", p, strlen(p), 1, false), 0);
        assert_int_equal(fm_mqtt_publish(f->m, "fleet/d/i/kpi", NULL, 0, 0, false), 0);
        /* A bigger one, more than one socket write's worth for sure. */
        size_t big_len = 200 * 1024;
        char *big = malloc(big_len);
        assert_non_null(big);
        memset(big, 'b', big_len);
        assert_int_equal(fm_mqtt_publish(f->m, "fleet/d/i/feedback", big, big_len, 1, false), 0);
        free(big);

        assert_true(wait_count(f->e, &f->r.n_msgs, 3, WAIT_MS));
        assert_string_equal(f->r.topic[0], "fleet/d/i/health");
        assert_string_equal(f->r.payload[0], p);
        assert_string_equal(f->r.topic[1], "fleet/d/i/kpi");
        assert_int_equal(f->r.len[1], 0);
        assert_string_equal(f->r.topic[2], "fleet/d/i/feedback");
        assert_int_equal(f->r.len[2], big_len);

        /* Retained: once it is back here the broker has it, and a later subscriber sees it. */
        assert_int_equal(fm_mqtt_publish(f->m, "fleet/d/i/kpi", "r1", 2, 1, true), 0);
        assert_true(wait_count(f->e, &f->r.n_msgs, 4, WAIT_MS));
        char out[256];
        assert_int_equal(mqtt_sub_one(f, "fleet/d/i/kpi", "5", out, sizeof(out)), 0);
        assert_string_equal(out, "fleet/d/i/kpi r1\n");
}

/*
 * The broker goes away and comes back on the same port. With SIGTERM it
 * saves its database, so the session (subscriptions and queue) survives.
 */
static void test_broker_restart(void **state)
{
        struct fixture *f = *state;
        begin(f, true);
        struct fm_mqtt_config c;
        make_cfg(&c, f, "fm-restart");
        start_client(f, &f->m, &f->r, &c);

        fm_ms t_stop = fm_test_now_ms();
        broker_stop(&f->b, SIGTERM);
        broker_start(&f->b);
        /* Published while the client is still away: kept by the resumed session. */
        mqtt_pub(f, false, "fleet/d/i/kpi", "{\"v\":1,\"while\":\"away\"}", NULL);

        assert_true(wait_count(f->e, &f->r.connected, 2, WAIT_MS));
        print_message("reconnect after broker restart: %lld ms after the stop, %lld ms after the "
                      "broker listened again (reconnect_min %lld ms)\n",
                      (long long)(f->r.t_connected - t_stop),
                      (long long)(f->r.t_connected - f->b.ready_at), (long long)c.reconnect_min);
        assert_true(f->r.disconnected >= 1);
        assert_int_equal(fm_mqtt_reconnects(f->m), 1);
        assert_true(f->r.session_present);
        assert_true(wait_count(f->e, &f->r.subscribed, 2, WAIT_MS));
        assert_true(fm_mqtt_subscribed(f->m));

        mqtt_pub(f, true, "fleet/d/i/health", "{\"v\":1,\"status\":\"ok\"}", NULL);
        assert_true(wait_count(f->e, &f->r.n_msgs, 2, WAIT_MS));
        assert_string_equal(f->r.payload[0], "{\"v\":1,\"while\":\"away\"}");
        assert_string_equal(f->r.topic[1], "fleet/d/i/health");
        assert_int_equal(fm_mqtt_reconnects(f->m), 1);
}

/* SIGKILL: nothing saved, the session is gone, so the client must subscribe again. */
static void test_broker_crash(void **state)
{
        struct fixture *f = *state;
        begin(f, true);
        struct fm_mqtt_config c;
        make_cfg(&c, f, "fm-crash");
        warm_up(f->e);
        unsigned fds = count_fds();
        start_client(f, &f->m, &f->r, &c);

        broker_stop(&f->b, SIGKILL);
        assert_true(wait_count(f->e, &f->r.disconnected, 1, WAIT_MS));
        assert_false(fm_mqtt_connected(f->m));
        assert_false(fm_mqtt_subscribed(f->m));
        assert_int_equal(fm_mqtt_publish(f->m, "fleet/d/i/kpi", "x", 1, 1, false), -ENOTCONN);
        broker_start(&f->b);

        assert_true(wait_count(f->e, &f->r.subscribed, 2, WAIT_MS));
        assert_int_equal(f->r.connected, 2);
        assert_false(f->r.session_present);
        assert_int_equal(fm_mqtt_reconnects(f->m), 1);

        mqtt_pub(f, true, "fleet/d/i/kpi", "{\"v\":1}", NULL);
        assert_true(wait_count(f->e, &f->r.n_msgs, 1, WAIT_MS));
        assert_string_equal(f->r.topic[0], "fleet/d/i/kpi");

        f->m = fm_mqtt_free(f->m);
        assert_int_equal(count_fds(), fds);
}

/*
 * A broker that stops answering (SIGSTOP: the kernel keeps the TCP
 * connection up) is noticed through the keep-alive that the 1 s
 * mosquitto_loop_misc() timer runs; when it answers again the client is
 * back. Takes about two keep-alive periods.
 */
static void test_keepalive_timeout(void **state)
{
        struct fixture *f = *state;
        begin(f, true);
        struct fm_mqtt_config c;
        make_cfg(&c, f, "fm-keepalive");
        c.keepalive_s = 5;
        c.reconnect_min = 200;
        c.reconnect_max = 400;
        start_client(f, &f->m, &f->r, &c);

        assert_int_equal(kill(f->b.p.pid, SIGSTOP), 0);
        fm_ms t_stop = fm_test_now_ms();
        assert_true(wait_count(f->e, &f->r.disconnected, 1, 3 * c.keepalive_s * 1000));
        print_message("silent broker noticed after %lld ms (keepalive %u s)\n",
                      (long long)(fm_test_now_ms() - t_stop), c.keepalive_s);
        assert_int_equal(f->r.last_reason, 19 /* MOSQ_ERR_KEEPALIVE */);
        assert_false(fm_mqtt_connected(f->m));

        assert_int_equal(kill(f->b.p.pid, SIGCONT), 0);
        assert_true(wait_count(f->e, &f->r.connected, 2, WAIT_MS));
        assert_int_equal(fm_mqtt_reconnects(f->m), 1);
        assert_true(wait_count(f->e, &f->r.subscribed, 2, WAIT_MS));
}

/* Client A subscribes and leaves cleanly; 5 QoS 1 messages wait in its session for client B. */
static void test_persistent_session(void **state)
{
        struct fixture *f = *state;
        begin(f, true);
        struct fm_mqtt_config c;
        make_cfg(&c, f, "fm-persist");
        start_client(f, &f->m, &f->r, &c);
        f->m = fm_mqtt_free(f->m);

        for (int i = 0; i < 5; i++) {
                char msg[32];
                snprintf(msg, sizeof(msg), "{\"v\":1,\"seq\":%d}", i);
                mqtt_pub(f, false, "fleet/d/i/kpi", msg, NULL);
        }

        assert_int_equal(fm_mqtt_new(f->e, &c, &cbs, &f->r2, &f->m2), 0);
        assert_true(wait_count(f->e, &f->r2.n_msgs, 5, WAIT_MS));
        assert_int_equal(f->r2.connected, 1);
        assert_true(f->r2.session_present);
        for (int i = 0; i < 5; i++) {
                char msg[32];
                snprintf(msg, sizeof(msg), "{\"v\":1,\"seq\":%d}", i);
                assert_string_equal(f->r2.payload[i], msg);
        }
        /* A new client object subscribes again (idempotent at the broker): no duplicates. */
        assert_true(wait_count(f->e, &f->r2.subscribed, 1, WAIT_MS));
        run_for(f->e, 200);
        assert_int_equal(f->r2.n_msgs, 5);
}

static void will_cfg(struct fm_mqtt_config *c, const struct fixture *f, const char *id)
{
        make_cfg(c, f, id);
        snprintf(c->will_topic, sizeof(c->will_topic), "%s", WILL_TOPIC);
        snprintf(c->will_payload, sizeof(c->will_payload), "%s", WILL_PAYLOAD);
}

static void test_will_not_published_on_free(void **state)
{
        struct fixture *f = *state;
        begin(f, true);
        struct fm_mqtt_config c;
        will_cfg(&c, f, "fm-will-clean");
        start_client(f, &f->m, &f->r, &c);
        f->m = fm_mqtt_free(f->m);

        char out[256];
        assert_int_equal(mqtt_sub_one(f, WILL_TOPIC, "1", out, sizeof(out)), MOSQUITTO_SUB_TIMEOUT);
        assert_string_equal(out, "");
}

/* A process that holds a client and dies without fm_mqtt_free(): the broker publishes the will. */
static void test_will_published_on_crash(void **state)
{
        struct fixture *f = *state;
        begin(f, true);
        struct fm_mqtt_config c;
        will_cfg(&c, f, "fm-will-crash");

        int p[2];
        assert_int_equal(pipe2(p, O_CLOEXEC), 0);
        pid_t pid = fm_fork();
        if (pid == 0) {
                /* No cmocka here: plain exit codes. */
                sd_event *e = NULL;
                struct fm_mqtt *m = NULL;
                struct rec r = {0};
                if (sd_event_new(&e) < 0 || fm_mqtt_new(e, &c, &cbs, &r, &m) < 0)
                        _exit(3);
                fm_ms deadline = fm_test_now_ms() + WAIT_MS;
                while (r.subscribed == 0 && fm_test_now_ms() < deadline)
                        sd_event_run(e, 100 * 1000);
                if (r.subscribed == 0)
                        _exit(4);
                if (write(p[1], "1", 1) != 1)
                        _exit(5);
                _exit(0); /* the socket closes without DISCONNECT */
        }
        close(p[1]);
        struct pollfd pf = {.fd = p[0], .events = POLLIN};
        assert_int_equal(poll(&pf, 1, WAIT_MS), 1);
        int st = 0;
        assert_int_equal(waitpid(pid, &st, 0), pid);
        close(p[0]);
        assert_true(WIFEXITED(st));
        assert_int_equal(WEXITSTATUS(st), 0);

        char out[256];
        assert_int_equal(mqtt_sub_one(f, WILL_TOPIC, "5", out, sizeof(out)), 0);
        assert_string_equal(out, WILL_TOPIC " " WILL_PAYLOAD "\n");
}

static void test_v311(void **state)
{
        struct fixture *f = *state;
        begin(f, true);
        struct fm_mqtt_config c;
        make_cfg(&c, f, "fm-v311");
        c.protocol = 4;
        start_client(f, &f->m, &f->r, &c);
        assert_false(f->r.session_present);
        mqtt_pub(f, true, "fleet/d/i/kpi", "{\"v\":1}", NULL);
        assert_true(wait_count(f->e, &f->r.n_msgs, 1, WAIT_MS));
        assert_string_equal(f->r.topic[0], "fleet/d/i/kpi");

        /* v3.1.1 clean session off: the session is kept too. */
        f->m = fm_mqtt_free(f->m);
        mqtt_pub(f, false, "fleet/d/i/health", "{\"v\":1,\"status\":\"ok\"}", NULL);
        assert_int_equal(fm_mqtt_new(f->e, &c, &cbs, &f->r2, &f->m2), 0);
        assert_true(wait_count(f->e, &f->r2.n_msgs, 1, WAIT_MS));
        assert_true(f->r2.session_present);
        assert_string_equal(f->r2.topic[0], "fleet/d/i/health");
}

static void test_shared_subscription(void **state)
{
        struct fixture *f = *state;
        begin(f, true);
        unsigned sum = 0;
        f->r.sum = f->r2.sum = &sum;
        struct fm_mqtt_config c1, c2;
        make_cfg(&c1, f, "fm-shared-1");
        make_cfg(&c2, f, "fm-shared-2");
        snprintf(c1.shared_group, sizeof(c1.shared_group), "fleetmedic");
        snprintf(c2.shared_group, sizeof(c2.shared_group), "fleetmedic");
        start_client(f, &f->m, &f->r, &c1);
        start_client(f, &f->m2, &f->r2, &c2);

        mqtt_pub(f, true, "fleet/d/i/kpi", "{\"v\":1}", "20");
        assert_true(wait_count(f->e, &sum, 20, WAIT_MS));
        run_for(f->e, 200);
        assert_int_equal(sum, 20);
        assert_int_equal(f->r.n_msgs + f->r2.n_msgs, 20);
        assert_true(f->r.n_msgs > 0);
        assert_true(f->r2.n_msgs > 0);
}

/* No broker at first: failed attempts are reported and spaced by the backoff, then it connects. */
static void test_broker_down_then_up(void **state)
{
        struct fixture *f = *state;
        begin(f, false);
        struct fm_mqtt_config c;
        make_cfg(&c, f, "fm-down");
        c.reconnect_min = 200;
        c.reconnect_max = 400;
        warm_up(f->e);
        unsigned fds = count_fds();
        assert_int_equal(fm_mqtt_new(f->e, &c, &cbs, &f->r, &f->m), 0);
        assert_true(wait_count(f->e, &f->r.disconnected, 4, WAIT_MS));
        assert_int_equal(f->r.connected, 0);
        assert_int_equal(f->r.last_reason, -ECONNREFUSED);
        for (int i = 1; i < 4; i++) {
                fm_ms gap = f->r.t_disconnected[i] - f->r.t_disconnected[i - 1];
                /* [reconnect_min / 2, reconnect_max], with room for a slow machine above */
                if (gap < 95 || gap > 400 + 250)
                        fail_msg("retry gap %d: %lld ms", i, (long long)gap);
        }

        broker_start(&f->b);
        assert_true(wait_count(f->e, &f->r.subscribed, 1, WAIT_MS));
        assert_int_equal(f->r.connected, 1);
        assert_int_equal(fm_mqtt_reconnects(f->m), 0); /* the first connection is not a reconnect */
        f->m = fm_mqtt_free(f->m);
        assert_int_equal(count_fds(), fds + 1); /* + the broker's exit_fd, opened since */
}

/* Password authentication, and a password file rewritten while the client retries. */
static void test_credentials(void **state)
{
        struct fixture *f = *state;
        begin(f, true);
        if (access(PASSWD_BIN, X_OK) != 0)
                skip();
        char pwfile[128], extra[256], ufile[128], pfile[128];
        fm_peer_path(&f->b.p, "passwd", pwfile, sizeof(pwfile));
        char *argv[] = {PASSWD_BIN, "-c", "-b", pwfile, "fm-user", "s3cret", NULL};
        assert_int_equal(fm_run(argv), 0);
        snprintf(extra, sizeof(extra), "allow_anonymous false\npassword_file %s\n", pwfile);
        broker_stop(&f->b, SIGTERM);
        char dir[sizeof(f->b.p.dir)];
        snprintf(dir, sizeof(dir), "%s", f->b.p.dir);
        uint16_t port = f->b.port;
        /* Same directory and port, new configuration. */
        char text[1024];
        snprintf(text, sizeof(text),
                 "listener %u 127.0.0.1\n%spersistence false\nlog_dest file %s/broker.log\n%s",
                 port, extra, dir, geteuid() == 0 ? "user root\n" : "");
        fm_write_file(f->b.conf, text);
        broker_start(&f->b);

        fm_peer_path(&f->b.p, "user", ufile, sizeof(ufile));
        fm_peer_path(&f->b.p, "pass", pfile, sizeof(pfile));
        fm_write_file(ufile, "fm-user\n");
        fm_write_file(pfile, "wrong\r\n");

        struct fm_mqtt_config c;
        make_cfg(&c, f, "fm-auth");
        c.reconnect_min = 100;
        c.reconnect_max = 200;
        snprintf(c.username_file, sizeof(c.username_file), "%s", ufile);
        snprintf(c.password_file, sizeof(c.password_file), "%s", pfile);
        assert_int_equal(fm_mqtt_new(f->e, &c, &cbs, &f->r, &f->m), 0);
        assert_true(wait_count(f->e, &f->r.disconnected, 2, WAIT_MS));
        assert_int_equal(f->r.connected, 0);
        if (f->r.last_reason != 135 && f->r.last_reason != 134)
                fail_msg("refusal reason %d", f->r.last_reason);

        /* The same for v3.1.1: its return code 5 is reported as 135. */
        struct fm_mqtt_config c4 = c;
        c4.protocol = 4;
        snprintf(c4.client_id, sizeof(c4.client_id), "fm-auth-v311");
        assert_int_equal(fm_mqtt_new(f->e, &c4, &cbs, &f->r2, &f->m2), 0);
        assert_true(wait_count(f->e, &f->r2.disconnected, 1, WAIT_MS));
        assert_true(f->r2.last_reason == 135 || f->r2.last_reason == 134);
        f->m2 = fm_mqtt_free(f->m2);

        /* Rotated: the next attempt reads the new password (no trailing newline this time). */
        fm_write_file(pfile, "s3cret");
        assert_true(wait_count(f->e, &f->r.subscribed, 1, WAIT_MS));
        assert_int_equal(f->r.connected, 1);
        assert_int_equal(fm_mqtt_reconnects(f->m), 0);

        /* A credential file that vanishes makes the attempt fail with its errno. */
        unsigned before = f->r.disconnected;
        assert_int_equal(unlink(pfile), 0);
        broker_stop(&f->b, SIGTERM);
        assert_true(wait_count(f->e, &f->r.disconnected, before + 2, WAIT_MS));
        assert_int_equal(f->r.last_reason, -ENOENT);
}

/* mqtts:// with a CA file, against a broker with a certificate made here. */
static void test_tls(void **state)
{
        struct fixture *f = *state;
        begin(f, true);
        if (access(FM_OPENSSL_BIN, X_OK) != 0)
                skip();
        char ca_crt[128], srv_key[128], srv_crt[128];
        fm_make_certs(&f->b.p);
        fm_peer_path(&f->b.p, "ca.crt", ca_crt, sizeof(ca_crt));
        fm_peer_path(&f->b.p, "server.key", srv_key, sizeof(srv_key));
        fm_peer_path(&f->b.p, "server.crt", srv_crt, sizeof(srv_crt));

        char text[2048];
        snprintf(text, sizeof(text),
                 "listener %u 127.0.0.1\nallow_anonymous true\ncafile %s\ncertfile %s\nkeyfile %s\n"
                 "persistence false\nlog_dest file %s/broker.log\n%s",
                 f->b.port, ca_crt, srv_crt, srv_key, f->b.p.dir,
                 geteuid() == 0 ? "user root\n" : "");
        broker_stop(&f->b, SIGTERM);
        fm_write_file(f->b.conf, text);
        broker_start(&f->b);

        struct fm_mqtt_config c;
        make_cfg(&c, f, "fm-tls");
        c.tls = true;
        snprintf(c.ca_file, sizeof(c.ca_file), "%s", ca_crt);
        start_client(f, &f->m, &f->r, &c);
        assert_int_equal(fm_mqtt_publish(f->m, "fleet/d/i/kpi", "{\"v\":1}", 7, 1, false), 0);
        assert_true(wait_count(f->e, &f->r.n_msgs, 1, WAIT_MS));
        assert_string_equal(f->r.payload[0], "{\"v\":1}");

        /* A CA that did not sign the server's certificate: refused, retried, never connected. */
        struct fm_mqtt_config bad = c;
        snprintf(bad.client_id, sizeof(bad.client_id), "fm-tls-bad");
        snprintf(bad.ca_file, sizeof(bad.ca_file), "%s", srv_crt);
        bad.reconnect_min = 100;
        bad.reconnect_max = 200;
        assert_int_equal(fm_mqtt_new(f->e, &bad, &cbs, &f->r2, &f->m2), 0);
        assert_true(wait_count(f->e, &f->r2.disconnected, 2, WAIT_MS));
        assert_int_equal(f->r2.connected, 0);
}

int main(void)
{
        signal(SIGPIPE, SIG_IGN);
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_null_and_invalid),
                cmocka_unit_test_setup_teardown(test_connect_subscribe, setup, teardown),
                cmocka_unit_test_setup_teardown(test_receive_and_filter, setup, teardown),
                cmocka_unit_test_setup_teardown(test_publish_roundtrip, setup, teardown),
                cmocka_unit_test_setup_teardown(test_broker_restart, setup, teardown),
                cmocka_unit_test_setup_teardown(test_broker_crash, setup, teardown),
                cmocka_unit_test_setup_teardown(test_keepalive_timeout, setup, teardown),
                cmocka_unit_test_setup_teardown(test_persistent_session, setup, teardown),
                cmocka_unit_test_setup_teardown(test_will_not_published_on_free, setup, teardown),
                cmocka_unit_test_setup_teardown(test_will_published_on_crash, setup, teardown),
                cmocka_unit_test_setup_teardown(test_v311, setup, teardown),
                cmocka_unit_test_setup_teardown(test_shared_subscription, setup, teardown),
                cmocka_unit_test_setup_teardown(test_broker_down_then_up, setup, teardown),
                cmocka_unit_test_setup_teardown(test_credentials, setup, teardown),
                cmocka_unit_test_setup_teardown(test_tls, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
