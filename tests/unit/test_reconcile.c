/* SPDX-License-Identifier: MIT */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "event.h"
#include "fleet.h"
#include "intent.h"
#include "policy.h"
#include "reconcile.h"

#define S(x) ((fm_ms)(x)*FM_MS_PER_S)
#define T0 S(1767225600)

/* Appends a canonical text form of a plan to buf: what "identical" means below. */
static void dump_plan(char *buf, size_t size, const struct fm_plan *p)
{
        size_t len = strlen(buf);
        for (uint32_t k = 0; k < p->n_transitions && len < size; k++) {
                const struct fm_transition *t = &p->transition[k];
                len += (size_t)snprintf(buf + len, size - len, "T %" PRId64 " %s/%s %d>%d c%d o%u",
                                        t->t.at, t->deployment, t->instance, t->t.from, t->t.to,
                                        t->t.cause, t->opens);
                for (uint32_t e = 0; e < t->t.evidence.n && len < size; e++)
                        len += (size_t)snprintf(buf + len, size - len, " %s=%.17g",
                                                t->t.evidence.item[e].key,
                                                t->t.evidence.item[e].value);
                if (len < size)
                        buf[len++] = '\n', buf[len] = '\0';
        }
        for (uint32_t k = 0; k < p->n_intents && len < size; k++) {
                const struct fm_intent *it = &p->intent[k];
                len += (size_t)snprintf(buf + len, size - len, "I %" PRId64 " %d %s %s %s/%s %s",
                                        it->at, it->action, it->policy, it->reason, it->deployment,
                                        it->instance, it->key);
                for (uint32_t e = 0; e < it->evidence.n && len < size; e++)
                        len += (size_t)snprintf(buf + len, size - len, " %s=%.17g",
                                                it->evidence.item[e].key,
                                                it->evidence.item[e].value);
                if (len < size)
                        buf[len++] = '\n', buf[len] = '\0';
        }
        assert_true(len < size);
}

static uint64_t next_rand(uint64_t *s)
{
        uint64_t z = (*s += UINT64_C(0x9e3779b97f4a7c15));
        z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
        z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
        return z ^ (z >> 31);
}

/*
 * Drives a fleet with a pseudo-random but seeded stream of JSON payloads
 * through the real decoder, ticking every second, and writes the
 * concatenated plans into out.
 */
static void run_stream(uint64_t hash_k0, uint64_t seed, char *out, size_t size)
{
        struct fm_decoder_config dcfg;
        struct fm_fleet_config fcfg;
        struct fm_decoder *dec;
        struct fm_fleet *fleet;
        struct fm_plan plan;
        struct fm_event *ev = malloc(sizeof(*ev));
        const struct fm_policy policies[] = {{.ops = &fm_policy_breaker}};
        char topic[128], payload[512];

        assert_non_null(ev);
        fm_decoder_config_default(&dcfg);
        fm_fleet_config_default(&fcfg);
        fcfg.hash_key[0] = hash_k0;
        fcfg.hash_key[1] = ~hash_k0;
        assert_int_equal(fm_decoder_new(&dcfg, &dec), 0);
        assert_int_equal(fm_fleet_new(&fcfg, &fleet), 0);
        assert_int_equal(fm_plan_init(&plan, 64, 64), 0);
        out[0] = '\0';

        for (int sec = 0; sec < 400; sec++) {
                fm_ms now = T0 + S(sec);
                for (int k = 0; k < 12; k++) {
                        uint64_t r = next_rand(&seed);
                        int dep = k % 3, inst = k / 3;
                        bool bad = (k == 5 && sec > 100 && sec < 200) || (k == 7 && sec > 250);
                        bool silent = k == 10 && sec > 300;
                        if (silent || r % 3 != 0)
                                continue;
                        unsigned req = 10 + (unsigned)(r >> 8) % 20;
                        unsigned err = bad ? req * 3 / 4 : (unsigned)((r >> 16) % 2);
                        snprintf(topic, sizeof(topic), "fleet/dep-%d/inst-%d/kpi", dep, inst);
                        snprintf(payload, sizeof(payload),
                                 "{\"v\":1,\"ts\":%d.%03d,\"requests\":%u,\"errors\":%u,"
                                 "\"version\":\"v%d\",\"latency_hist\":{\"le_ms\":[10,100,1000],"
                                 "\"counts\":[%u,%u,0,0]}}",
                                 1767225600 + sec, (int)((r >> 24) % 1000), req, err, 1 + dep,
                                 req / 2, req - req / 2);
                        enum fm_reject why;
                        int rr = fm_decoder_decode(dec, topic, strlen(topic), payload,
                                                   strlen(payload), now, ev, &why);
                        assert_int_equal(rr, 0);
                        assert_int_equal(fm_fleet_apply(fleet, ev, &why), 0);
                }
                assert_int_equal(fm_reconcile(fleet, policies, 1, now, &plan), 0);
                dump_plan(out, size, &plan);
        }

        fm_plan_done(&plan);
        fm_fleet_free(fleet);
        fm_decoder_free(dec);
        free(ev);
}

static void test_determinism(void **state)
{
        (void)state;
        size_t size = 1 << 20;
        char *a = malloc(size), *b = malloc(size), *c = malloc(size);
        assert_non_null(a);
        assert_non_null(b);
        assert_non_null(c);

        run_stream(1, 42, a, size);
        run_stream(1, 42, b, size);
        /* another hash key changes every table layout, and nothing else */
        run_stream(UINT64_C(0xdeadbeefcafef00d), 42, c, size);

        assert_string_equal(a, b);
        assert_string_equal(a, c);
        /* the stream makes the breakers move: the test compares something */
        assert_non_null(strstr(a, "I "));
        assert_non_null(strstr(a, "breaker/restart/dep-2/inst-1/1"));
        assert_non_null(strstr(a, "heartbeat"));

        free(a);
        free(b);
        free(c);
}

struct fixture {
        struct fm_fleet *fleet;
        struct fm_plan plan;
        struct fm_event ev;
};

static int setup(void **state)
{
        struct fixture *fx = calloc(1, sizeof(*fx));
        struct fm_fleet_config cfg;
        assert_non_null(fx);
        fm_fleet_config_default(&cfg);
        assert_int_equal(fm_fleet_new(&cfg, &fx->fleet), 0);
        assert_int_equal(fm_plan_init(&fx->plan, 8, 8), 0);
        *state = fx;
        return 0;
}

static int teardown(void **state)
{
        struct fixture *fx = *state;
        fm_plan_done(&fx->plan);
        fm_fleet_free(fx->fleet);
        free(fx);
        return 0;
}

static void feed(struct fixture *fx, const char *dep, const char *inst, fm_ms ts, uint64_t req,
                 uint64_t err)
{
        enum fm_reject why;
        memset(&fx->ev, 0, offsetof(struct fm_event, outcome));
        fx->ev.kind = FM_EVENT_KPI;
        strcpy(fx->ev.deployment, dep);
        strcpy(fx->ev.instance, inst);
        strcpy(fx->ev.version, "v1");
        fx->ev.ts = ts;
        fx->ev.requests = req;
        fx->ev.errors = err;
        fx->ev.fields = FM_F_TS | FM_F_VERSION | FM_F_REQUESTS | FM_F_ERRORS;
        assert_int_equal(fm_fleet_apply(fx->fleet, &fx->ev, &why), 0);
}

static void test_breaker_policy_intents(void **state)
{
        struct fixture *fx = *state;
        const struct fm_policy policies[] = {{.ops = &fm_policy_breaker}};

        feed(fx, "a", "a-0", T0, 40, 40);
        feed(fx, "a", "a-1", T0, 40, 0);
        assert_int_equal(fm_reconcile(fx->fleet, policies, 1, T0 + S(1), &fx->plan), 0);
        assert_int_equal(fx->plan.n_transitions, 1);
        assert_int_equal(fx->plan.n_intents, 1);
        const struct fm_intent *it = &fx->plan.intent[0];
        assert_int_equal(it->action, FM_ACTION_RESTART);
        assert_string_equal(it->policy, "breaker");
        assert_string_equal(it->reason, "failure_rate");
        assert_string_equal(it->deployment, "a");
        assert_string_equal(it->instance, "a-0");
        assert_string_equal(it->key, "breaker/restart/a/a-0/1");
        assert_int_equal(it->at, T0 + S(1));
        assert_true(it->evidence.n > 0);
        assert_string_equal(it->evidence.item[0].key, "requests");
        assert_int_equal((int)it->evidence.item[0].value, 40);

        /* nothing new on the next tick: edges only */
        feed(fx, "a", "a-1", T0 + S(2), 40, 0);
        assert_int_equal(fm_reconcile(fx->fleet, policies, 1, T0 + S(2), &fx->plan), 0);
        assert_int_equal(fx->plan.n_transitions, 0);
        assert_int_equal(fx->plan.n_intents, 0);

        /* half-open is a transition but not a restart */
        feed(fx, "a", "a-1", T0 + S(30), 40, 0);
        feed(fx, "a", "a-0", T0 + S(30), 1, 0);
        assert_int_equal(fm_reconcile(fx->fleet, policies, 1, T0 + S(31), &fx->plan), 0);
        assert_int_equal(fx->plan.n_transitions, 1);
        assert_int_equal(fx->plan.transition[0].t.to, FM_BREAKER_HALF_OPEN);
        assert_int_equal(fx->plan.n_intents, 0);

        /* probes fail: a second opening, a second key */
        feed(fx, "a", "a-0", T0 + S(32), 20, 20);
        assert_int_equal(fm_reconcile(fx->fleet, policies, 1, T0 + S(32), &fx->plan), 0);
        assert_int_equal(fx->plan.n_intents, 1);
        assert_string_equal(fx->plan.intent[0].key, "breaker/restart/a/a-0/2");
        assert_string_equal(fx->plan.intent[0].reason, "probes_failed");
}

/* A policy that records which transitions it was handed, per deployment. */
struct spy {
        char seen[256];
        int calls;
        int fail_on; /* call number that returns an error, 0 for none */
};

static int spy_evaluate(void *state, const struct fm_policy_input *in, struct fm_plan *plan)
{
        struct spy *s = state;
        size_t len = strlen(s->seen);
        (void)plan;
        s->calls++;
        len += (size_t)snprintf(s->seen + len, sizeof(s->seen) - len, "[%s:", in->deployment->name);
        for (size_t k = 0; k < in->n_transitions; k++) {
                assert_string_equal(in->transitions[k].deployment, in->deployment->name);
                len += (size_t)snprintf(s->seen + len, sizeof(s->seen) - len, " %s",
                                        in->transitions[k].instance);
        }
        snprintf(s->seen + len, sizeof(s->seen) - len, "]");
        return s->calls == s->fail_on ? -EIO : 0;
}

static const struct fm_policy_ops spy_ops = {.name = "spy", .evaluate = spy_evaluate};

static void test_policies_see_their_deployment(void **state)
{
        struct fixture *fx = *state;
        struct spy spy = {.fail_on = 1};
        const struct fm_policy policies[] = {{.ops = &spy_ops, .state = &spy},
                                             {.ops = &fm_policy_breaker}};

        feed(fx, "a", "a-0", T0, 40, 40);
        feed(fx, "b", "b-0", T0, 40, 0);
        feed(fx, "c", "c-0", T0, 40, 40);
        feed(fx, "c", "c-1", T0, 40, 40);
        /* the spy fails on its first call: the error is returned, yet all ran */
        assert_int_equal(fm_reconcile(fx->fleet, policies, 2, T0 + S(1), &fx->plan), -EIO);
        assert_string_equal(spy.seen, "[a: a-0][b:][c: c-0 c-1]");
        assert_int_equal(fx->plan.n_intents, 3);
}

static void test_plan_overflow_counted(void **state)
{
        struct fixture *fx = *state;
        const struct fm_policy policies[] = {{.ops = &fm_policy_breaker}};

        fm_plan_done(&fx->plan);
        assert_int_equal(fm_plan_init(&fx->plan, 1, 8), 0);
        feed(fx, "a", "a-0", T0, 40, 40);
        feed(fx, "a", "a-1", T0, 40, 40);
        assert_int_equal(fm_reconcile(fx->fleet, policies, 1, T0 + S(1), &fx->plan), -ENOBUFS);
        assert_int_equal(fx->plan.n_intents, 1);
        assert_int_equal(fx->plan.dropped_intents, 1);
        assert_int_equal(fx->plan.n_transitions, 2);

        struct fm_plan other;
        assert_int_equal(fm_plan_init(&other, 0, 1), -EINVAL);
        assert_int_equal(fm_plan_init(&other, 1, 0), -EINVAL);
}

static void test_names(void **state)
{
        (void)state;
        assert_string_equal(fm_action_name(FM_ACTION_SCALE), "scale");
        assert_string_equal(fm_action_name(FM_ACTION_SET_WEIGHTS), "set_weights");
        assert_string_equal(fm_action_name(FM_ACTION_RESTART), "restart");
        assert_string_equal(fm_action_name(FM_ACTION_ROLLBACK), "rollback");
        assert_string_equal(fm_action_name(FM_ACTION_SET_THRESHOLD), "set_threshold");
        assert_string_equal(fm_action_name(FM_ACTION_ALERT), "alert");
        assert_null(fm_action_name(_FM_ACTION_MAX));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_determinism),
                cmocka_unit_test_setup_teardown(test_breaker_policy_intents, setup, teardown),
                cmocka_unit_test_setup_teardown(test_policies_see_their_deployment, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_plan_overflow_counted, setup, teardown),
                cmocka_unit_test(test_names),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
