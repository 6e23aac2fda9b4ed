/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Requests to the HAProxy backend (actuators/haproxy.c), for the tests
 * that run it against a real haproxy and against the fake in
 * tests/unit/test_haproxy.c. Include after <cmocka.h>.
 */

#include "actuator_peer.h"
#include "haproxy.h"

#define FM_TEST_HAPROXY_MS 10000 /* how long a test waits for a set_state result */

/* set_weights for deployment: t1 at w1 and, unless t2 is NULL, t2 at w2 (each with its own key). */
static inline struct fm_action_req fm_test_weights(const char *deployment, const char *t1,
                                                   uint32_t w1, const char *t2, uint32_t w2)
{
        static unsigned seq;
        struct fm_action_req req;
        char key[16];

        snprintf(key, sizeof key, "k%u", ++seq);
        fm_test_req(&req, FM_ACTION_SET_WEIGHTS, deployment, key);
        snprintf(req.arg.weights.w[0].target, sizeof req.arg.weights.w[0].target, "%s", t1);
        req.arg.weights.w[0].weight = w1;
        req.arg.weights.n = 1;
        if (t2) {
                snprintf(req.arg.weights.w[1].target, sizeof req.arg.weights.w[1].target, "%s", t2);
                req.arg.weights.w[1].weight = w2;
                req.arg.weights.n = 2;
        }
        return req;
}

struct fm_test_state_result {
        bool done;
        uint64_t id;
        enum fm_result_kind kind;
        int error;
        char detail[FM_ACTUATOR_DETAIL_MAX];
};

static inline void fm_test_on_state(void *userdata, uint64_t id, const struct fm_action_result *res)
{
        struct fm_test_state_result *r = userdata;

        assert_false(r->done);
        r->done = true;
        r->id = id;
        r->kind = res->kind;
        r->error = res->error;
        snprintf(r->detail, sizeof r->detail, "%s", res->detail ? res->detail : "");
}

/*
 * fm_haproxy_set_state() of server target in backend "web", run on e until
 * its result: never from inside the call, and nothing pending after it.
 */
static inline struct fm_test_state_result
fm_test_set_state(sd_event *e, struct fm_haproxy *h, const char *target, enum fm_haproxy_state st)
{
        struct fm_test_state_result r = {0};
        uint64_t id = 0;
        int64_t deadline = fm_test_now_ms() + FM_TEST_HAPROXY_MS;

        assert_int_equal(fm_haproxy_set_state(h, "web", target, st, fm_test_on_state, &r, &id), 0);
        assert_true(id > 0);
        assert_false(r.done);
        while (!r.done) {
                assert_true(fm_test_now_ms() < deadline);
                assert_true(sd_event_run(e, 100 * 1000) >= 0);
        }
        assert_int_equal(r.id, id);
        assert_int_equal(fm_haproxy_pending(h), 0);
        return r;
}
