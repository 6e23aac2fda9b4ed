/* SPDX-License-Identifier: MIT */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "actuator.h"
#include "traffic.h"

/* A weight set the traffic policy can make is always one request. */
_Static_assert(FM_ACTUATOR_WEIGHTS_MAX == FM_TRAFFIC_TARGETS_MAX,
               "the actuator must take every weight set the traffic policy makes");

#define S(x) ((fm_ms)(x)*FM_MS_PER_S)
#define T0 S(1700000000)

/* ---- a fake backend: records starts and cancels, the test completes ---- */

#define FAKE_MAX 2048

struct fake {
        uint64_t started[FAKE_MAX];
        struct fm_action_req last_req;
        uint32_t n_started;
        uint64_t cancelled[FAKE_MAX];
        uint32_t n_cancelled;
        int start_ret;               /* returned by start, 0 normally */
        struct fm_actuator *reenter; /* if set, start tries to call back in */
        int reenter_ret;
};

static int fake_start(void *backend, const struct fm_action_req *req, uint64_t attempt_id)
{
        struct fake *f = backend;
        struct fm_action_result ok = {.kind = FM_RESULT_OK};

        if (f->reenter)
                f->reenter_ret = fm_actuator_complete(f->reenter, attempt_id, &ok, T0);
        if (f->start_ret < 0)
                return f->start_ret;
        assert_true(f->n_started < FAKE_MAX);
        f->started[f->n_started++] = attempt_id;
        f->last_req = *req;
        return 0;
}

static void fake_cancel(void *backend, uint64_t attempt_id)
{
        struct fake *f = backend;

        assert_true(f->n_cancelled < FAKE_MAX);
        f->cancelled[f->n_cancelled++] = attempt_id;
}

static const struct fm_backend_ops fake_ops = {
        .name = "fake",
        .supports =
                {
                        [FM_ACTION_SCALE] = true,
                        [FM_ACTION_SET_WEIGHTS] = true,
                        [FM_ACTION_RESTART] = true,
                        [FM_ACTION_ROLLBACK] = true,
                        [FM_ACTION_SET_THRESHOLD] = true,
                        [FM_ACTION_ALERT] = false,
                },
        .start = fake_start,
        .cancel = fake_cancel,
};

static uint64_t last_attempt(const struct fake *f)
{
        assert_true(f->n_started > 0);
        return f->started[f->n_started - 1];
}

static struct fm_action_req mkreq(enum fm_action action, const char *dep, const char *key,
                                  fm_ms deadline)
{
        struct fm_action_req r = {.action = action, .deadline = deadline, .fence = 7};

        snprintf(r.deployment, sizeof r.deployment, "%s", dep);
        snprintf(r.key, sizeof r.key, "%s", key);
        if (action == FM_ACTION_SCALE) {
                r.arg.scale.from = 2;
                r.arg.scale.to = 4;
        }
        return r;
}

static struct fm_actuator *mkact(const struct fm_actuator_config *cfg, uint64_t seed,
                                 struct fake *f, int *ret_backend)
{
        struct fm_actuator *a = NULL;

        assert_int_equal(fm_actuator_new(cfg, seed, &a), 0);
        *ret_backend = fm_actuator_add_backend(a, &fake_ops, f);
        assert_int_equal(*ret_backend, 0);
        return a;
}

static int complete(struct fm_actuator *a, uint64_t attempt, enum fm_result_kind kind, int error,
                    fm_ms retry_after, const char *detail, fm_ms now)
{
        struct fm_action_result r = {
                .kind = kind, .error = error, .retry_after = retry_after, .detail = detail};

        return fm_actuator_complete(a, attempt, &r, now);
}

static void expect_outcome(struct fm_actuator *a, int64_t id, enum fm_outcome_status status,
                           uint32_t attempts, struct fm_action_outcome *ret)
{
        struct fm_action_outcome o;

        assert_int_equal(fm_actuator_poll(a, &o), 1);
        assert_int_equal(o.id, id);
        assert_string_equal(fm_outcome_status_name(o.status), fm_outcome_status_name(status));
        assert_int_equal(o.attempts, attempts);
        if (ret)
                *ret = o;
}

/* ---- tests ------------------------------------------------------------- */

static void test_success(void **state)
{
        (void)state;
        struct fake f = {0};
        struct fm_action_outcome o;
        int be;
        struct fm_actuator *a = mkact(NULL, 1, &f, &be);
        struct fm_action_req r = mkreq(FM_ACTION_SCALE, "web", "scale/web/4", T0 + S(60));
        int64_t id = fm_actuator_submit(a, be, &r, T0);
        fm_ms at;

        assert_true(id >= 1);
        assert_int_equal(f.n_started, 1);
        assert_string_equal(f.last_req.key, "scale/web/4");
        assert_int_equal(f.last_req.fence, 7);
        assert_int_equal(fm_actuator_poll(a, &o), 0);
        assert_int_equal(fm_actuator_next_wake(a, &at), 0);
        assert_int_equal(at, T0 + S(60)); /* only the deadline */

        assert_int_equal(complete(a, last_attempt(&f), FM_RESULT_OK, 0, 0, "scaled to 4", T0 + 5),
                         0);
        expect_outcome(a, id, FM_OUTCOME_OK, 1, &o);
        assert_string_equal(o.key, "scale/web/4");
        assert_string_equal(o.detail, "scaled to 4");
        assert_int_equal(o.last_error, 0);
        assert_int_equal(o.finished, T0 + 5);
        assert_int_equal(fm_actuator_poll(a, &o), 0);
        assert_int_equal(fm_actuator_next_wake(a, &at), -ENOENT);
        /* A second result for the same attempt is late. */
        assert_int_equal(complete(a, f.started[0], FM_RESULT_OK, 0, 0, NULL, T0 + 6), -ENOENT);
        fm_actuator_free(a);
}

/* Fails n times with a retryable error, then succeeds; returns the delays chosen. */
static void run_retries(uint64_t seed, uint32_t n, fm_ms *delays)
{
        struct fake f = {0};
        struct fm_actuator_config cfg;
        struct fm_actuator_request_info info;
        int be;
        struct fm_actuator *a;
        struct fm_action_req r = mkreq(FM_ACTION_RESTART, "web", "restart/web", T0 + S(3600));
        fm_ms now = T0;
        int64_t id;

        fm_actuator_config_default(&cfg);
        cfg.breaker_failures = 100; /* keep the breaker out of it */
        cfg.max_attempts = FM_ACTUATOR_ATTEMPTS_MAX;
        assert_int_equal(fm_actuator_config_validate(&cfg), 0);
        a = mkact(&cfg, seed, &f, &be);
        id = fm_actuator_submit(a, be, &r, now);
        assert_true(id >= 1);

        for (uint32_t i = 1; i <= n; i++) {
                fm_ms ceiling = fm_actuator_backoff_ceiling(&cfg, i), at;

                assert_int_equal(f.n_started, i);
                assert_int_equal(complete(a, last_attempt(&f), FM_RESULT_RETRYABLE, -EAGAIN, 0,
                                          "503 Service Unavailable", now),
                                 0);
                assert_int_equal(fm_actuator_request_info(a, (uint64_t)id, &info), 0);
                assert_false(info.running);
                delays[i - 1] = info.next_at - now;
                assert_true(delays[i - 1] >= 0);
                assert_true(delays[i - 1] <= ceiling);
                assert_true(ceiling <= cfg.backoff_cap);
                assert_int_equal(fm_actuator_next_wake(a, &at), 0);
                assert_int_equal(at, info.next_at);

                /* Not a millisecond early. */
                if (delays[i - 1] > 0) {
                        assert_int_equal(fm_actuator_tick(a, info.next_at - 1), 0);
                        assert_int_equal(f.n_started, i);
                }
                now = info.next_at;
                assert_int_equal(fm_actuator_tick(a, now), 1);
        }
        assert_int_equal(complete(a, last_attempt(&f), FM_RESULT_OK, 0, 0, "ok", now), 0);
        expect_outcome(a, id, FM_OUTCOME_OK, n + 1, NULL);
        fm_actuator_free(a);
}

static void test_retry_backoff(void **state)
{
        (void)state;
        struct fm_actuator_config cfg;
        fm_ms d1[9], d2[9], d3[9];
        static const fm_ms want_ceiling[] = {500,   1000,  2000,  4000, 8000,
                                             16000, 30000, 30000, 30000};
        bool differ = false;
        fm_ms first_half = 0, second_half = 0;

        fm_actuator_config_default(&cfg);
        for (uint32_t i = 0; i < ARRAY_SIZE(want_ceiling); i++)
                assert_int_equal(fm_actuator_backoff_ceiling(&cfg, i + 1), want_ceiling[i]);

        run_retries(42, 9, d1);
        run_retries(42, 9, d2);
        run_retries(43, 9, d3);
        for (int i = 0; i < 9; i++) {
                assert_int_equal(d1[i], d2[i]); /* deterministic for a seed */
                if (d1[i] != d3[i])
                        differ = true;
        }
        assert_true(differ);
        /* The delays grow with the ceilings (full jitter: not each one, but on the whole). */
        for (int i = 0; i < 4; i++)
                first_half += d1[i];
        for (int i = 5; i < 9; i++)
                second_half += d1[i];
        assert_true(second_half > first_half);
}

static void test_retries_exhausted(void **state)
{
        (void)state;
        struct fake f = {0};
        struct fm_actuator_config cfg;
        struct fm_action_outcome o;
        int be;
        struct fm_actuator *a;
        struct fm_action_req r = mkreq(FM_ACTION_RESTART, "web", "k", T0 + S(3600));
        fm_ms now = T0;
        int64_t id;

        fm_actuator_config_default(&cfg);
        cfg.max_attempts = 3;
        cfg.breaker_failures = 100;
        a = mkact(&cfg, 5, &f, &be);
        id = fm_actuator_submit(a, be, &r, now);
        for (int i = 0; i < 3; i++) {
                assert_int_equal(complete(a, last_attempt(&f), FM_RESULT_RETRYABLE, -ETIMEDOUT, 0,
                                          NULL, now),
                                 0);
                now += S(31);
                fm_actuator_tick(a, now);
        }
        expect_outcome(a, id, FM_OUTCOME_FAILED, 3, &o);
        assert_int_equal(o.last_error, -ETIMEDOUT);
        assert_int_equal(f.n_started, 3);
        fm_actuator_free(a);
}

static void test_permanent_not_retried(void **state)
{
        (void)state;
        struct fake f = {0};
        struct fm_action_outcome o;
        int be;
        struct fm_actuator *a = mkact(NULL, 1, &f, &be);
        struct fm_action_req r = mkreq(FM_ACTION_SCALE, "web", "k", T0 + S(600));
        int64_t id = fm_actuator_submit(a, be, &r, T0);
        fm_ms at;

        assert_int_equal(complete(a, last_attempt(&f), FM_RESULT_PERMANENT, -EINVAL, 0,
                                  "422 Unprocessable Entity", T0 + 1),
                         0);
        expect_outcome(a, id, FM_OUTCOME_FAILED, 1, &o);
        assert_int_equal(o.last_error, -EINVAL);
        assert_string_equal(o.detail, "422 Unprocessable Entity");
        assert_int_equal(fm_actuator_tick(a, T0 + S(300)), 0);
        assert_int_equal(f.n_started, 1);
        assert_int_equal(fm_actuator_next_wake(a, &at), -ENOENT);
        fm_actuator_free(a);
}

static void test_retry_after(void **state)
{
        (void)state;
        struct fake f = {0};
        struct fm_actuator_request_info info;
        int be;
        struct fm_actuator *a = mkact(NULL, 1, &f, &be);
        struct fm_action_req r = mkreq(FM_ACTION_SCALE, "web", "k", T0 + S(600));
        int64_t id = fm_actuator_submit(a, be, &r, T0);

        /* 429 with Retry-After: 10 — far above the first backoff ceiling of 0.5 s. */
        assert_int_equal(complete(a, last_attempt(&f), FM_RESULT_RETRYABLE, -EAGAIN, S(10),
                                  "429 Too Many Requests", T0),
                         0);
        assert_int_equal(fm_actuator_request_info(a, (uint64_t)id, &info), 0);
        assert_int_equal(info.next_at, T0 + S(10));
        assert_int_equal(fm_actuator_tick(a, T0 + S(10) - 1), 0);
        assert_int_equal(f.n_started, 1);
        assert_int_equal(fm_actuator_tick(a, T0 + S(10)), 1);
        assert_int_equal(f.n_started, 2);
        assert_int_equal(complete(a, last_attempt(&f), FM_RESULT_OK, 0, 0, NULL, T0 + S(11)), 0);
        expect_outcome(a, id, FM_OUTCOME_OK, 2, NULL);
        fm_actuator_free(a);
}

static void test_deadline(void **state)
{
        (void)state;
        struct fake f = {0};
        struct fm_action_outcome o;
        int be;
        struct fm_actuator *a = mkact(NULL, 1, &f, &be);
        struct fm_action_req r = mkreq(FM_ACTION_SCALE, "web", "k", T0 + S(5));
        int64_t id;
        uint64_t att;

        assert_int_equal(fm_actuator_submit(a, be, &r, T0 + S(5)), -ETIMEDOUT);
        id = fm_actuator_submit(a, be, &r, T0);
        att = last_attempt(&f);
        assert_int_equal(fm_actuator_tick(a, T0 + S(5) - 1), 0);
        assert_int_equal(fm_actuator_poll(a, &o), 0);
        assert_int_equal(fm_actuator_tick(a, T0 + S(5)), 0);
        assert_int_equal(f.n_cancelled, 1);
        assert_int_equal(f.cancelled[0], att);
        expect_outcome(a, id, FM_OUTCOME_TIMEOUT, 1, &o);
        assert_int_equal(o.last_error, -ETIMEDOUT);
        /* The backend's late answer is ignored. */
        assert_int_equal(complete(a, att, FM_RESULT_OK, 0, 0, NULL, T0 + S(6)), -ENOENT);
        assert_int_equal(fm_actuator_poll(a, &o), 0);

        /* A request waiting for its retry times out too, with nothing to cancel. */
        r.deadline = T0 + S(20);
        id = fm_actuator_submit(a, be, &r, T0 + S(10));
        assert_int_equal(complete(a, last_attempt(&f), FM_RESULT_RETRYABLE, -EAGAIN, S(60), NULL,
                                  T0 + S(10)),
                         0);
        assert_int_equal(fm_actuator_tick(a, T0 + S(20)), 0);
        assert_int_equal(f.n_cancelled, 1);
        expect_outcome(a, id, FM_OUTCOME_TIMEOUT, 1, &o);
        assert_int_equal(o.last_error, -EAGAIN);
        fm_actuator_free(a);
}

static void test_idempotency_key(void **state)
{
        (void)state;
        struct fake f = {0};
        int be;
        struct fm_actuator *a = mkact(NULL, 1, &f, &be);
        struct fm_action_req r = mkreq(FM_ACTION_SCALE, "web", "scale/web/4", T0 + S(60));
        struct fm_action_req other = mkreq(FM_ACTION_SCALE, "web", "scale/web/5", T0 + S(60));
        int64_t id = fm_actuator_submit(a, be, &r, T0), id2;

        assert_true(id >= 1);
        assert_int_equal(fm_actuator_submit(a, be, &r, T0 + 1), -EALREADY);
        /* Still in flight while waiting for a retry. */
        assert_int_equal(complete(a, last_attempt(&f), FM_RESULT_RETRYABLE, -EAGAIN, 0, NULL, T0),
                         0);
        assert_int_equal(fm_actuator_submit(a, be, &r, T0 + 2), -EALREADY);
        id2 = fm_actuator_submit(a, be, &other, T0 + 2);
        assert_true(id2 > id);
        /* Once it is done the key may be used again. */
        fm_actuator_tick(a, T0 + S(1));
        assert_int_equal(complete(a, f.started[2], FM_RESULT_OK, 0, 0, NULL, T0 + S(1)), 0);
        assert_true(fm_actuator_submit(a, be, &r, T0 + S(2)) > id2);

        r.key[0] = '\0';
        assert_int_equal(fm_actuator_submit(a, be, &r, T0), -EINVAL);
        assert_int_equal(fm_actuator_submit(a, 1, &other, T0), -EINVAL);
        fm_actuator_free(a);
}

static void test_queue_bound(void **state)
{
        (void)state;
        struct fake *f = calloc(1, sizeof *f);
        struct fm_action_outcome o;
        int be;
        struct fm_actuator *a;
        struct fm_action_req r = mkreq(FM_ACTION_RESTART, "web", "", T0 + S(60));
        int64_t first = 0;

        assert_non_null(f);
        a = mkact(NULL, 1, f, &be);
        for (int i = 0; i < FM_ACTUATOR_QUEUE_MAX; i++) {
                int64_t id;

                snprintf(r.key, sizeof r.key, "restart/%d", i);
                id = fm_actuator_submit(a, be, &r, T0);
                assert_true(id >= 1);
                if (i == 0)
                        first = id;
        }
        snprintf(r.key, sizeof r.key, "restart/over");
        assert_int_equal(fm_actuator_submit(a, be, &r, T0), -ENOBUFS);
        /* A finished but undrained outcome still holds its slot. */
        assert_int_equal(complete(a, f->started[0], FM_RESULT_OK, 0, 0, NULL, T0), 0);
        assert_int_equal(fm_actuator_submit(a, be, &r, T0), -ENOBUFS);
        expect_outcome(a, first, FM_OUTCOME_OK, 1, &o);
        assert_true(fm_actuator_submit(a, be, &r, T0) >= 1);
        /* Free cancels what still runs. */
        fm_actuator_free(a);
        assert_int_equal(f->n_cancelled, FM_ACTUATOR_QUEUE_MAX);
        free(f);

        {
                struct fm_actuator_config cfg;
                struct fm_actuator *b = NULL;

                fm_actuator_config_default(&cfg);
                cfg.queue_max = FM_ACTUATOR_QUEUE_MAX + 1;
                assert_int_equal(fm_actuator_new(&cfg, 1, &b), -EINVAL);
                assert_null(b);
                cfg.queue_max = 0;
                assert_int_equal(fm_actuator_config_validate(&cfg), -EINVAL);
        }
}

static void test_unsupported(void **state)
{
        (void)state;
        struct fake f = {0};
        struct fm_action_outcome o;
        int be;
        struct fm_actuator *a = mkact(NULL, 1, &f, &be);
        struct fm_action_req r = mkreq(FM_ACTION_ALERT, "web", "alert/web", T0 + S(60));
        int64_t id;

        assert_int_equal(fm_actuator_submit(a, be, &r, T0), -EOPNOTSUPP);
        assert_int_equal(f.n_started, 0);

        /* Declared, but the backend finds it cannot (e.g. no mesh configured). */
        r = mkreq(FM_ACTION_SET_WEIGHTS, "web", "weights/web", T0 + S(60));
        f.start_ret = -EOPNOTSUPP;
        id = fm_actuator_submit(a, be, &r, T0);
        assert_true(id >= 1);
        expect_outcome(a, id, FM_OUTCOME_UNSUPPORTED, 1, &o);
        assert_int_equal(o.last_error, -EOPNOTSUPP);

        /* A start that cannot begin for a transient reason is retried. */
        f.start_ret = -ECONNREFUSED;
        r = mkreq(FM_ACTION_RESTART, "web", "restart/web", T0 + S(60));
        id = fm_actuator_submit(a, be, &r, T0);
        assert_int_equal(fm_actuator_poll(a, &o), 0);
        f.start_ret = 0;
        assert_int_equal(fm_actuator_tick(a, T0 + S(1)), 1);
        assert_int_equal(complete(a, last_attempt(&f), FM_RESULT_OK, 0, 0, NULL, T0 + S(1)), 0);
        expect_outcome(a, id, FM_OUTCOME_OK, 2, &o);
        assert_int_equal(o.last_error, -ECONNREFUSED);
        fm_actuator_free(a);
}

static void fail_one(struct fm_actuator *a, int be, struct fake *f, int i, fm_ms now)
{
        struct fm_action_req r = mkreq(FM_ACTION_RESTART, "web", "", now + S(600));
        int64_t id;

        snprintf(r.key, sizeof r.key, "fail/%d", i);
        id = fm_actuator_submit(a, be, &r, now);
        assert_true(id >= 1);
        assert_int_equal(complete(a, last_attempt(f), FM_RESULT_PERMANENT, -EIO, 0, NULL, now), 0);
        expect_outcome(a, id, FM_OUTCOME_FAILED, 1, NULL);
}

static void test_breaker(void **state)
{
        (void)state;
        struct fake f = {0};
        struct fm_actuator_backend_info bi;
        struct fm_actuator_request_info ri;
        int be;
        struct fm_actuator *a = mkact(NULL, 1, &f, &be);
        struct fm_action_req r = mkreq(FM_ACTION_RESTART, "web", "probe", T0 + S(3600));
        struct fm_action_req r2 = mkreq(FM_ACTION_RESTART, "web", "second", T0 + S(3600));
        int64_t probe, second;
        uint32_t starts;

        for (int i = 0; i < 4; i++)
                fail_one(a, be, &f, i, T0);
        assert_int_equal(fm_actuator_backend_info(a, be, &bi), 0);
        assert_int_equal(bi.state, FM_ACTUATOR_BREAKER_CLOSED);
        assert_int_equal(bi.consecutive_failures, 4);
        fail_one(a, be, &f, 4, T0);
        assert_int_equal(fm_actuator_backend_info(a, be, &bi), 0);
        assert_int_equal(bi.state, FM_ACTUATOR_BREAKER_OPEN);
        assert_int_equal(bi.opens, 1);
        assert_int_equal(bi.open_until, T0 + S(30));

        /* Open: fail fast, nothing reaches the backend. */
        starts = f.n_started;
        assert_int_equal(fm_actuator_submit(a, be, &r, T0 + 1), -EHOSTDOWN);
        assert_int_equal(fm_actuator_submit(a, be, &r, T0 + S(30) - 1), -EHOSTDOWN);
        assert_int_equal(f.n_started, starts);

        /* Half-open: one probe goes through, the next request waits. */
        probe = fm_actuator_submit(a, be, &r, T0 + S(30));
        assert_true(probe >= 1);
        assert_int_equal(f.n_started, starts + 1);
        second = fm_actuator_submit(a, be, &r2, T0 + S(30));
        assert_true(second >= 1);
        assert_int_equal(f.n_started, starts + 1);
        assert_int_equal(fm_actuator_backend_info(a, be, &bi), 0);
        assert_int_equal(bi.state, FM_ACTUATOR_BREAKER_HALF_OPEN);
        assert_int_equal(fm_actuator_tick(a, T0 + S(31)), 0);
        assert_int_equal(fm_actuator_request_info(a, (uint64_t)second, &ri), 0);
        assert_false(ri.running);
        assert_int_equal(ri.attempts, 0);

        /* The probe succeeds: closed, the held request goes. */
        assert_int_equal(complete(a, last_attempt(&f), FM_RESULT_OK, 0, 0, NULL, T0 + S(32)), 0);
        expect_outcome(a, probe, FM_OUTCOME_OK, 1, NULL);
        assert_int_equal(fm_actuator_backend_info(a, be, &bi), 0);
        assert_int_equal(bi.state, FM_ACTUATOR_BREAKER_CLOSED);
        assert_int_equal(bi.consecutive_failures, 0);
        assert_int_equal(fm_actuator_tick(a, T0 + S(32)), 1);
        assert_int_equal(complete(a, last_attempt(&f), FM_RESULT_OK, 0, 0, NULL, T0 + S(33)), 0);
        expect_outcome(a, second, FM_OUTCOME_OK, 1, NULL);

        /* Open again; a failed probe re-opens for twice as long. */
        for (int i = 0; i < 5; i++)
                fail_one(a, be, &f, 10 + i, T0 + S(100));
        assert_int_equal(fm_actuator_backend_info(a, be, &bi), 0);
        assert_int_equal(bi.state, FM_ACTUATOR_BREAKER_OPEN);
        assert_int_equal(bi.open_until, T0 + S(130));
        fail_one(a, be, &f, 20, T0 + S(130));
        assert_int_equal(fm_actuator_backend_info(a, be, &bi), 0);
        assert_int_equal(bi.state, FM_ACTUATOR_BREAKER_OPEN);
        assert_int_equal(bi.open_until, T0 + S(130) + S(60));
        assert_int_equal(bi.opens, 3);
        fm_actuator_free(a);
}

static void test_breaker_holds_retries(void **state)
{
        (void)state;
        struct fake f = {0};
        struct fm_actuator_config cfg;
        struct fm_actuator_backend_info bi;
        struct fm_actuator_request_info ri;
        struct fm_action_outcome o;
        int be;
        struct fm_actuator *a;
        struct fm_action_req r = mkreq(FM_ACTION_RESTART, "web", "held", T0 + S(20));
        int64_t id;
        fm_ms at;

        fm_actuator_config_default(&cfg);
        cfg.breaker_failures = 2;
        a = mkact(&cfg, 9, &f, &be);
        id = fm_actuator_submit(a, be, &r, T0);
        assert_int_equal(complete(a, last_attempt(&f), FM_RESULT_RETRYABLE, -EAGAIN, 0, NULL, T0),
                         0);
        assert_int_equal(fm_actuator_tick(a, T0 + S(1)), 1);
        assert_int_equal(
                complete(a, last_attempt(&f), FM_RESULT_RETRYABLE, -EAGAIN, 0, NULL, T0 + S(1)), 0);
        assert_int_equal(fm_actuator_backend_info(a, be, &bi), 0);
        assert_int_equal(bi.state, FM_ACTUATOR_BREAKER_OPEN);
        /* The retry is due but held; the wake-up is the deadline (before the cool-off). */
        assert_int_equal(fm_actuator_tick(a, T0 + S(5)), 0);
        assert_int_equal(fm_actuator_tick(a, T0 + S(19)), 0);
        assert_int_equal(f.n_started, 2);
        assert_int_equal(fm_actuator_request_info(a, (uint64_t)id, &ri), 0);
        assert_int_equal(fm_actuator_next_wake(a, &at), 0);
        assert_int_equal(at, T0 + S(20));
        assert_int_equal(fm_actuator_tick(a, T0 + S(20)), 0);
        expect_outcome(a, id, FM_OUTCOME_BREAKER_OPEN, 2, &o);
        assert_int_equal(o.last_error, -EAGAIN);
        fm_actuator_free(a);
}

static void test_fencing_refused(void **state)
{
        (void)state;
        struct fake f = {0};
        struct fm_actuator_backend_info bi;
        struct fm_action_outcome o;
        int be;
        struct fm_actuator *a = mkact(NULL, 1, &f, &be);
        struct fm_action_req r = mkreq(FM_ACTION_ROLLBACK, "web", "rollback/web", T0 + S(60));
        int64_t id = fm_actuator_submit(a, be, &r, T0);

        assert_int_equal(complete(a, last_attempt(&f), FM_RESULT_REFUSED, -ESTALE, 0,
                                  "fence 7 < lease transitions 8", T0 + 1),
                         0);
        expect_outcome(a, id, FM_OUTCOME_REFUSED, 1, &o);
        assert_int_equal(o.last_error, -ESTALE);
        assert_string_equal(o.detail, "fence 7 < lease transitions 8");
        assert_int_equal(fm_actuator_tick(a, T0 + S(30)), 0);
        assert_int_equal(f.n_started, 1);
        assert_int_equal(fm_actuator_backend_info(a, be, &bi), 0);
        assert_int_equal(bi.consecutive_failures, 0);
        fm_actuator_free(a);
}

static void test_reentry_refused(void **state)
{
        (void)state;
        struct fake f = {0};
        int be;
        struct fm_actuator *a = mkact(NULL, 1, &f, &be);
        struct fm_action_req r = mkreq(FM_ACTION_RESTART, "web", "k", T0 + S(60));

        f.reenter = a;
        assert_true(fm_actuator_submit(a, be, &r, T0) >= 1);
        assert_int_equal(f.reenter_ret, -EBUSY);
        fm_actuator_free(a);
}

static void test_route(void **state)
{
        (void)state;
        static const struct fm_actuator_binding b[] = {
                {"*", FM_ACTION_SCALE, 1},    {"web", FM_ACTION_SCALE, 2},
                {"*", FM_ACTION_ROLLBACK, 3}, {"web", FM_ACTION_SET_WEIGHTS, 4},
                {"*", FM_ACTION_SCALE, 5}, /* shadowed by the first "*" */
        };

        assert_int_equal(fm_actuator_route(b, ARRAY_SIZE(b), "web", FM_ACTION_SCALE), 2);
        assert_int_equal(fm_actuator_route(b, ARRAY_SIZE(b), "api", FM_ACTION_SCALE), 1);
        assert_int_equal(fm_actuator_route(b, ARRAY_SIZE(b), "web", FM_ACTION_ROLLBACK), 3);
        assert_int_equal(fm_actuator_route(b, ARRAY_SIZE(b), "web", FM_ACTION_SET_WEIGHTS), 4);
        assert_int_equal(fm_actuator_route(b, ARRAY_SIZE(b), "api", FM_ACTION_SET_WEIGHTS),
                         -ENOENT);
        assert_int_equal(fm_actuator_route(b, ARRAY_SIZE(b), "web", FM_ACTION_ALERT), -ENOENT);
        assert_int_equal(fm_actuator_route(b, ARRAY_SIZE(b), "web", _FM_ACTION_MAX), -EINVAL);
        assert_int_equal(fm_actuator_route(NULL, 0, "web", FM_ACTION_SCALE), -ENOENT);
}

static void test_dryrun(void **state)
{
        (void)state;
        struct fm_plan p = {0};
        struct fm_intent *it;
        struct fm_weight *w;
        struct fm_dryrun *d = NULL;
        struct fm_actuator *a = NULL;
        struct fm_action_req req;
        struct fm_action_outcome o;
        int be;
        int64_t id1, id2;

        assert_int_equal(fm_plan_init(&p, 8, 8), 0);
        fm_plan_reset(&p, T0);
        it = fm_plan_add_intent(&p, FM_ACTION_SET_WEIGHTS, "traffic");
        assert_non_null(it);
        snprintf(it->deployment, sizeof it->deployment, "web");
        snprintf(it->key, sizeof it->key, "set_weights/web");
        w = fm_plan_add_weights(&p, it, 2);
        assert_non_null(w);
        snprintf(w[0].target, sizeof w[0].target, "v1");
        w[0].weight = 90;
        snprintf(w[1].target, sizeof w[1].target, "v2");
        w[1].weight = 10;

        assert_int_equal(fm_dryrun_new(&d), 0);
        assert_int_equal(fm_actuator_new(NULL, 3, &a), 0);
        be = fm_actuator_add_backend(a, &fm_backend_dryrun_ops, d);
        assert_int_equal(be, 0);

        assert_int_equal(fm_action_req_from_intent(&p, it, 12, T0 + S(10), &req), 0);
        assert_int_equal(req.arg.weights.n, 2);
        assert_int_equal(req.fence, 12);
        id1 = fm_actuator_submit(a, be, &req, T0);
        assert_true(id1 >= 1);

        req = mkreq(FM_ACTION_SCALE, "api", "scale/api", T0 + S(10));
        snprintf(req.instance, sizeof req.instance, "api-0");
        id2 = fm_actuator_submit(a, be, &req, T0);
        assert_true(id2 > id1);
        assert_int_equal(fm_dryrun_started(d), 2);

        /* Nothing is reported until the flush: start never re-enters. */
        assert_int_equal(fm_actuator_poll(a, &o), 0);
        assert_int_equal(fm_dryrun_flush(d, a, T0 + 1), 2);
        expect_outcome(a, id1, FM_OUTCOME_OK, 1, &o);
        assert_string_equal(o.detail, "dry-run: would set_weights web v1=90,v2=10");
        expect_outcome(a, id2, FM_OUTCOME_OK, 1, &o);
        assert_string_equal(o.detail, "dry-run: would scale api/api-0 2->4");
        assert_int_equal(fm_dryrun_flush(d, a, T0 + 2), 0);

        /* A cancelled attempt is forgotten by the backend. */
        req = mkreq(FM_ACTION_RESTART, "web", "restart/web", T0 + S(20));
        id1 = fm_actuator_submit(a, be, &req, T0 + S(10));
        assert_int_equal(fm_actuator_tick(a, T0 + S(20)), 0);
        expect_outcome(a, id1, FM_OUTCOME_TIMEOUT, 1, NULL);
        assert_int_equal(fm_dryrun_flush(d, a, T0 + S(21)), 0);

        /* Too many weights for a request. */
        fm_plan_reset(&p, T0);
        it = fm_plan_add_intent(&p, FM_ACTION_SET_WEIGHTS, "traffic");
        assert_non_null(fm_plan_add_weights(&p, it, FM_ACTUATOR_WEIGHTS_MAX + 1));
        assert_int_equal(fm_action_req_from_intent(&p, it, 1, T0 + 1, &req), -E2BIG);

        fm_actuator_free(a);
        fm_dryrun_free(d);
        fm_plan_done(&p);
}

/* The largest weight set the traffic policy makes converts, names and weights intact. */
static void test_weights_limit(void **state)
{
        (void)state;
        struct fm_plan p;
        struct fm_action_req req;
        assert_int_equal(fm_plan_init(&p, 4, 4), 0);
        fm_plan_reset(&p, T0);
        struct fm_intent *it = fm_plan_add_intent(&p, FM_ACTION_SET_WEIGHTS, "traffic");
        assert_non_null(it);
        snprintf(it->deployment, sizeof(it->deployment), "web");
        snprintf(it->key, sizeof(it->key), "traffic/weights/web/1");
        struct fm_weight *w = fm_plan_add_weights(&p, it, FM_TRAFFIC_TARGETS_MAX);
        assert_non_null(w);
        for (uint32_t k = 0; k < FM_TRAFFIC_TARGETS_MAX; k++) {
                snprintf(w[k].target, sizeof(w[k].target), "web-%u", k);
                w[k].weight = 1;
        }
        assert_int_equal(fm_action_req_from_intent(&p, it, 1, T0 + 1, &req), 0);
        assert_int_equal(req.arg.weights.n, FM_TRAFFIC_TARGETS_MAX);
        assert_string_equal(req.arg.weights.w[FM_TRAFFIC_TARGETS_MAX - 1].target, "web-99");
        assert_int_equal(req.arg.weights.w[FM_TRAFFIC_TARGETS_MAX - 1].weight, 1);
        fm_plan_done(&p);
}

static void test_kinds(void **state)
{
        (void)state;
        assert_int_equal(fm_result_kind_from_http(200), FM_RESULT_OK);
        assert_int_equal(fm_result_kind_from_http(429), FM_RESULT_RETRYABLE);
        assert_int_equal(fm_result_kind_from_http(503), FM_RESULT_RETRYABLE);
        assert_int_equal(fm_result_kind_from_http(404), FM_RESULT_PERMANENT);
        assert_int_equal(fm_result_kind_from_errno(-ECONNREFUSED), FM_RESULT_RETRYABLE);
        assert_int_equal(fm_result_kind_from_errno(-ETIMEDOUT), FM_RESULT_RETRYABLE);
        assert_int_equal(fm_result_kind_from_errno(-EACCES), FM_RESULT_PERMANENT);
        assert_null(fm_outcome_status_name(_FM_OUTCOME_STATUS_MAX));
        assert_string_equal(fm_outcome_status_name(FM_OUTCOME_BREAKER_OPEN), "breaker_open");
        assert_null(fm_actuator_free(NULL));
        assert_null(fm_dryrun_free(NULL));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_success),
                cmocka_unit_test(test_retry_backoff),
                cmocka_unit_test(test_retries_exhausted),
                cmocka_unit_test(test_permanent_not_retried),
                cmocka_unit_test(test_retry_after),
                cmocka_unit_test(test_deadline),
                cmocka_unit_test(test_idempotency_key),
                cmocka_unit_test(test_queue_bound),
                cmocka_unit_test(test_unsupported),
                cmocka_unit_test(test_breaker),
                cmocka_unit_test(test_breaker_holds_retries),
                cmocka_unit_test(test_fencing_refused),
                cmocka_unit_test(test_reentry_refused),
                cmocka_unit_test(test_route),
                cmocka_unit_test(test_dryrun),
                cmocka_unit_test(test_weights_limit),
                cmocka_unit_test(test_kinds),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
