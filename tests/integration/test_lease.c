/* SPDX-License-Identifier: MIT */

/*
 * Leader election (actuators/lease.c) against tests/integration/fake_kube.py:
 * two electors in two forked child processes, each with its own sd-event
 * loop, compete for one Lease. Each reports every leadership change over
 * a pipe as "<CLOCK_MONOTONIC ms> <leader 0/1> <transitions>". The test
 * checks that at most one leads at any time, SIGKILLs the leader, and
 * checks that the other takes over — not before the old record expired
 * (measured on the fake's own clock between the two holders' writes) and
 * not much later either — with the transition count (the fencing token)
 * one higher.
 *
 * Short durations keep it quick: lease 3 s, renew deadline 2 s, retry 0.5 s.
 */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <inttypes.h>

#include <json-c/json.h>
#include <systemd/sd-event.h>

#include "fake_kube.h"
#include "lease.h"

#define NS "ns"
#define LEASE_NAME "fleetmedic"
#define LEASE_MS 3000
#define RENEW_MS 2000
#define RETRY_MS 500
#define EVENTS_MAX 64

static struct fm_fake_kube fake;

struct change {
        int64_t t;
        bool leader;
        uint64_t transitions;
};

struct elector {
        pid_t pid;
        int fd; /* read end of its report pipe */
        char identity[32];
        char buf[512];
        size_t len;
        struct change ev[EVENTS_MAX];
        size_t n;
};

static struct elector electors[2];

static void kill_electors(void)
{
        for (size_t i = 0; i < 2; i++)
                if (electors[i].pid > 0) {
                        kill(electors[i].pid, SIGKILL);
                        waitpid(electors[i].pid, NULL, 0);
                        electors[i].pid = 0;
                }
}

static struct json_object *admin(const char *method, const char *path, const char *body)
{
        long status;
        struct json_object *o = fm_fake_kube_admin(&fake, method, path, body, &status);

        assert_int_equal(status, 200);
        assert_non_null(o);
        return o;
}

static struct json_object *admin_get(const char *path)
{
        return admin("GET", path, NULL);
}

static int group_setup(void **state)
{
        (void)state;

        curl_global_init(CURL_GLOBAL_DEFAULT);
        atexit(kill_electors);
        /* Only what an elector needs: a request outside fm_kube_rbac's Lease rows is a 403. */
        fm_fake_kube_start(&fake, "lease", "lease-token\n",
                           "[[\"coordination.k8s.io\",\"leases\",\"get\"],"
                           "[\"coordination.k8s.io\",\"leases\",\"create\"],"
                           "[\"coordination.k8s.io\",\"leases\",\"update\"]]");
        return 0;
}

static int group_teardown(void **state)
{
        (void)state;
        kill_electors();
        fm_peer_done(&fake.peer);
        curl_global_cleanup();
        return 0;
}

/* An elector's configuration: the fake, short durations; name NULL keeps the default Lease. */
static void lease_config(struct fm_kube_config *cfg, const char *name, const char *identity)
{
        fm_fake_kube_config(&fake, cfg, NS);
        cfg->timeout = 1000;
        cfg->lease.enabled = true;
        if (name)
                snprintf(cfg->lease.name, sizeof cfg->lease.name, "%s", name);
        snprintf(cfg->lease.identity, sizeof cfg->lease.identity, "%s", identity);
        cfg->lease.lease_duration = LEASE_MS;
        cfg->lease.renew_deadline = RENEW_MS;
        cfg->lease.retry_period = RETRY_MS;
}

/* ---- the child: one elector on its own loop ---- */

static void report(void *userdata, bool leader, uint64_t transitions)
{
        int fd = *(int *)userdata;
        char line[96];
        int n = snprintf(line, sizeof line, "%" PRId64 " %d %" PRIu64 "\n", fm_test_now_ms(),
                         leader ? 1 : 0, transitions);
        if (n > 0 && write(fd, line, (size_t)n) != n)
                _exit(3);
}

static _Noreturn void elector_main(const char *identity, int fd)
{
        struct fm_kube_config *cfg = calloc(1, sizeof *cfg);
        struct fm_kube *k = NULL;
        struct fm_lease *l = NULL;
        sd_event *e = NULL;

        if (!cfg || sd_event_new(&e) < 0)
                _exit(2);
        lease_config(cfg, NULL, identity);
        if (fm_kube_new(e, cfg, NULL, &k) < 0 ||
            fm_lease_new(e, k, &cfg->lease, report, &fd, &l) < 0)
                _exit(2);
        sd_event_loop(e);
        _exit(0);
}

static void start_elector(struct elector *el, const char *identity)
{
        int p[2];

        memset(el, 0, sizeof *el);
        snprintf(el->identity, sizeof el->identity, "%s", identity);
        assert_int_equal(pipe2(p, O_CLOEXEC), 0);
        el->pid = fm_fork();
        if (el->pid == 0) {
                close(p[0]);
                elector_main(identity, p[1]);
        }
        close(p[1]);
        el->fd = p[0];
        assert_int_equal(fcntl(el->fd, F_SETFL, O_NONBLOCK), 0);
}

/* Reads whatever the electors reported, waiting at most ms. */
static void collect(int64_t ms)
{
        struct pollfd pf[2];
        int n = 0;

        for (size_t i = 0; i < 2; i++)
                if (electors[i].fd >= 0)
                        pf[n++] = (struct pollfd){.fd = electors[i].fd, .events = POLLIN};
        if (poll(pf, (nfds_t)n, (int)ms) <= 0)
                return;
        for (size_t i = 0; i < 2; i++) {
                struct elector *el = &electors[i];
                ssize_t r;
                char *nl;

                if (el->fd < 0)
                        continue;
                r = read(el->fd, el->buf + el->len, sizeof el->buf - 1 - el->len);
                if (r <= 0)
                        continue;
                el->len += (size_t)r;
                el->buf[el->len] = '\0';
                while ((nl = strchr(el->buf, '\n'))) {
                        struct change *c = &el->ev[el->n];
                        int leader = 0;
                        assert_true(el->n < EVENTS_MAX);
                        assert_int_equal(sscanf(el->buf, "%" SCNd64 " %d %" SCNu64, &c->t, &leader,
                                                &c->transitions),
                                         3);
                        c->leader = leader;
                        el->n++;
                        memmove(el->buf, nl + 1, el->len - (size_t)(nl + 1 - el->buf) + 1);
                        el->len -= (size_t)(nl + 1 - el->buf);
                }
        }
}

static bool leading(const struct elector *el)
{
        return el->n > 0 && el->ev[el->n - 1].leader;
}

/* Waits until el leads; fails after ms. Returns when it became leader. */
static int64_t wait_leader(int64_t ms, int *ret_index)
{
        int64_t deadline = fm_test_now_ms() + ms;

        for (;;) {
                for (int i = 0; i < 2; i++)
                        if (electors[i].pid > 0 && leading(&electors[i])) {
                                *ret_index = i;
                                return electors[i].ev[electors[i].n - 1].t;
                        }
                if (fm_test_now_ms() >= deadline)
                        fail_msg("no leader after %" PRId64 " ms", ms);
                collect(50);
        }
}

/* The fake's time of the successful Lease writes by identity: the last one, or the first. */
static double write_time(struct json_object *log, const char *identity, bool last)
{
        double t = -1;

        for (size_t i = 0; i < json_object_array_length(log); i++) {
                struct json_object *e = json_object_array_get_idx(log, i), *v, *body;
                const char *method;
                int status;

                json_object_object_get_ex(e, "method", &v);
                method = json_object_get_string(v);
                json_object_object_get_ex(e, "status", &v);
                status = json_object_get_int(v);
                if ((strcmp(method, "PUT") != 0 && strcmp(method, "POST") != 0) ||
                    (status != 200 && status != 201))
                        continue;
                json_object_object_get_ex(e, "body", &v);
                body = json_tokener_parse(json_object_get_string(v));
                v = fm_kube_get(body, (const char *const[]){"spec", "holderIdentity", NULL});
                if (v && strcmp(json_object_get_string(v), identity) == 0) {
                        struct json_object *tv;
                        json_object_object_get_ex(e, "t", &tv);
                        t = json_object_get_double(tv);
                        if (!last) {
                                json_object_put(body);
                                return t;
                        }
                }
                json_object_put(body);
        }
        return t;
}

static void test_failover(void **state)
{
        struct json_object *log, *lease;
        struct elector *old, *next;
        int64_t became, killed, took;
        double t_old, t_new;
        int li, ni;
        (void)state;

        start_elector(&electors[0], "elector-a");
        start_elector(&electors[1], "elector-b");

        became = wait_leader(10000, &li);
        old = &electors[li];
        next = &electors[1 - li];
        /* Two lease durations of steady state: one leader, no flapping. */
        for (int64_t end = fm_test_now_ms() + 2 * LEASE_MS; fm_test_now_ms() < end;)
                collect(50);
        assert_int_equal(old->n, 1);
        assert_true(old->ev[0].leader);
        for (size_t i = 0; i < next->n; i++)
                assert_false(next->ev[i].leader);
        (void)became;

        killed = fm_test_now_ms();
        kill(old->pid, SIGKILL);
        waitpid(old->pid, NULL, 0);
        old->pid = 0;

        took = wait_leader(LEASE_MS + 10 * RETRY_MS + 5000, &ni);
        assert_int_equal(ni, 1 - li);
        /* Not much later than the lease expiring: duration plus two jittered polls. */
        if (took - killed > LEASE_MS + 5 * RETRY_MS + 1000)
                fail_msg("takeover %" PRId64 " ms after the kill", took - killed);
        /* The fencing token moved on. */
        assert_int_equal(next->ev[next->n - 1].transitions, old->ev[0].transitions + 1);

        /* On the server's clock: the new holder wrote only after the old record expired. */
        log = admin_get("/log");
        t_old = write_time(log, old->identity, true);
        t_new = write_time(log, next->identity, false);
        json_object_put(log);
        assert_true(t_old > 0 && t_new > 0);
        if (t_new - t_old < LEASE_MS / 1000.0)
                fail_msg("took over %.3f s after the last renewal, lease is %.1f s", t_new - t_old,
                         LEASE_MS / 1000.0);

        lease = admin_get("/object?group=coordination.k8s.io&plural=leases&namespace=" NS
                          "&name=" LEASE_NAME);
        assert_string_equal(json_object_get_string(fm_kube_get(
                                    lease, (const char *const[]){"spec", "holderIdentity", NULL})),
                            next->identity);
        assert_int_equal(json_object_get_int64(fm_kube_get(
                                 lease, (const char *const[]){"spec", "leaseTransitions", NULL})),
                         (int64_t)next->ev[next->n - 1].transitions);
        json_object_put(lease);

        /* At most one leader at any time: the old one's reign ended when it was killed. */
        assert_true(took >= killed);
        kill_electors();
        close(electors[0].fd);
        close(electors[1].fd);
        electors[0].fd = electors[1].fd = -1;
}

/* ---- one elector in this process ---- */

struct local {
        sd_event *event;
        struct fm_kube *k;
        struct fm_lease *l;
        struct fm_kube_config *cfg;
        bool leader;
        unsigned changes;
        uint64_t transitions;
};

static void on_change(void *userdata, bool leader, uint64_t transitions)
{
        struct local *lo = userdata;
        lo->leader = leader;
        lo->transitions = transitions;
        lo->changes++;
}

static void local_start(struct local *lo, const char *name)
{
        memset(lo, 0, sizeof *lo);
        lo->cfg = calloc(1, sizeof *lo->cfg);
        assert_non_null(lo->cfg);
        lease_config(lo->cfg, name, "local");
        assert_int_equal(sd_event_new(&lo->event), 0);
        assert_int_equal(fm_kube_new(lo->event, lo->cfg, NULL, &lo->k), 0);
        assert_int_equal(fm_lease_new(lo->event, lo->k, &lo->cfg->lease, on_change, lo, &lo->l), 0);
        assert_false(fm_lease_is_leader(lo->l, NULL));
        assert_int_equal(lo->changes, 0); /* never from inside fm_lease_new() */
}

static void local_stop(struct local *lo)
{
        fm_lease_free(lo->l);
        fm_kube_free(lo->k);
        sd_event_unref(lo->event);
        free(lo->cfg);
}

/* Runs the loop until lo->leader == want; returns the time it took. */
static int64_t local_wait(struct local *lo, bool want, int64_t ms)
{
        int64_t start = fm_test_now_ms();

        while (lo->leader != want) {
                if (fm_test_now_ms() - start > ms)
                        fail_msg("leader did not become %d within %" PRId64 " ms", want, ms);
                assert_true(sd_event_run(lo->event, 50000) >= 0);
        }
        return fm_test_now_ms() - start;
}

static void test_renew_deadline(void **state)
{
        struct local lo;
        uint64_t fence = 0, t0;
        int64_t took;
        (void)state;

        local_start(&lo, "deadline");
        local_wait(&lo, true, 10000);
        assert_true(fm_lease_is_leader(lo.l, &fence));
        t0 = lo.transitions;
        assert_int_equal(fence, t0);

        /* Every renewal fails from now on: the leader must stop before the lease can expire
         * for anyone else. */
        json_object_put(admin("POST", "/faults",
                              "{\"faults\":[{\"path\":\"/leases/deadline\",\"status\":500,"
                              "\"count\":100000}]}"));
        took = local_wait(&lo, false, 10000);
        if (took >= LEASE_MS)
                fail_msg("still leading %" PRId64 " ms after renewals stopped (lease %d ms)", took,
                         LEASE_MS);
        assert_false(fm_lease_is_leader(lo.l, NULL));

        /* The server recovers: the record is still ours, so the count does not move. */
        json_object_put(admin("POST", "/clear", "{}"));
        local_wait(&lo, true, 10000);
        assert_int_equal(lo.transitions, t0);
        local_stop(&lo);
}

static void test_release(void **state)
{
        struct json_object *lease;
        struct local lo;
        unsigned changes;
        (void)state;

        local_start(&lo, "release");
        local_wait(&lo, true, 10000);
        changes = lo.changes;
        assert_int_equal(fm_lease_release(lo.l), 0);
        assert_false(fm_lease_is_leader(lo.l, NULL));
        assert_int_equal(lo.changes, changes); /* the callback comes from the loop */
        local_wait(&lo, false, 5000);
        /* Let the release PUT land. */
        for (int64_t end = fm_test_now_ms() + 500; fm_test_now_ms() < end;)
                assert_true(sd_event_run(lo.event, 50000) >= 0);
        lease = admin_get("/object?group=coordination.k8s.io&plural=leases&namespace=" NS
                          "&name=release");
        assert_string_equal(json_object_get_string(fm_kube_get(
                                    lease, (const char *const[]){"spec", "holderIdentity", NULL})),
                            "");
        assert_int_equal(
                json_object_get_int(fm_kube_get(
                        lease, (const char *const[]){"spec", "leaseDurationSeconds", NULL})),
                1);
        assert_int_equal(json_object_get_int64(fm_kube_get(
                                 lease, (const char *const[]){"spec", "leaseTransitions", NULL})),
                         (int64_t)lo.transitions);
        json_object_put(lease);
        local_stop(&lo);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_failover),
                cmocka_unit_test(test_renew_deadline),
                cmocka_unit_test(test_release),
        };
        return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
