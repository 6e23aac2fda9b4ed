/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Driving an actuator backend against a peer: a request, submitted on the
 * wall clock and run on the backend's sd-event loop until its outcome is
 * there. Include after <cmocka.h>.
 */

#include <systemd/sd-event.h>

#include "actuator.h"
#include "proc.h"

#define FM_TEST_ACTION_MS 60000  /* a request's deadline */
#define FM_TEST_OUTCOME_MS 30000 /* how long a test waits for its outcome */

/* A request for deployment with idempotency key, due FM_TEST_ACTION_MS from now. */
static inline void fm_test_req(struct fm_action_req *r, enum fm_action action,
                               const char *deployment, const char *key)
{
        memset(r, 0, sizeof *r);
        r->action = action;
        snprintf(r->deployment, sizeof r->deployment, "%s", deployment);
        snprintf(r->key, sizeof r->key, "%s", key);
        r->deadline = fm_test_wall_ms() + FM_TEST_ACTION_MS;
}

/*
 * Submits r to backend and runs the loop (ticking the actuator when it
 * asks to be woken) until the outcome is there; fails the test after
 * FM_TEST_OUTCOME_MS.
 */
static inline struct fm_action_outcome fm_test_run(sd_event *e, struct fm_actuator *a, int backend,
                                                   const struct fm_action_req *r)
{
        struct fm_action_outcome out;
        int64_t id = fm_actuator_submit(a, backend, r, fm_test_wall_ms());
        int64_t deadline = fm_test_now_ms() + FM_TEST_OUTCOME_MS;

        assert_true(id > 0);
        for (;;) {
                fm_ms now = fm_test_wall_ms(), wake, wait = 50;
                assert_true(fm_actuator_tick(a, now) >= 0);
                if (fm_actuator_poll(a, &out) == 1) {
                        assert_int_equal(out.id, (uint64_t)id);
                        return out;
                }
                if (fm_actuator_next_wake(a, &wake) == 0)
                        wait = wake <= now ? 0 : (wake - now < 50 ? wake - now : 50);
                if (fm_test_now_ms() >= deadline)
                        fail_msg("no outcome after %d ms", FM_TEST_OUTCOME_MS);
                assert_true(sd_event_run(e, (uint64_t)wait * 1000) >= 0);
        }
}
