/* SPDX-License-Identifier: MIT */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "test_util.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "breaker.h"

/*
 * Times are offsets from T0, a realistic epoch time, so that nothing passes
 * only because now happens to be 0.
 */
#define S(x) ((fm_ms)(x)*FM_MS_PER_S)
#define T0 S(1700000000)

/* ---- helpers ---------------------------------------------------------- */

/* The one item with this key; fails on a duplicate key. */
static const struct fm_evidence_item *ev_find(const struct fm_evidence *e, const char *key)
{
        const struct fm_evidence_item *found = NULL;

        for (uint32_t i = 0; i < e->n; i++) {
                if (strcmp(e->item[i].key, key) != 0)
                        continue;
                if (found)
                        fail_msg("evidence key \"%s\" appears twice", key);
                found = &e->item[i];
        }
        return found;
}

static void assert_ev_at(const struct fm_evidence *e, const char *key, double want,
                         const char *file, int line)
{
        const struct fm_evidence_item *it;

        /* a full list may have dropped pairs; the breaker must stay below it */
        if (e->n >= FM_EVIDENCE_MAX)
                fail_msg("%s:%d: evidence list full (%u pairs)", file, line, e->n);
        it = ev_find(e, key);
        if (!it)
                fail_msg("%s:%d: evidence has no key \"%s\"", file, line, key);
        fm_test_close_at(it->value, want, 1e-9, key, file, line);
}
#define assert_ev(e, key, want) assert_ev_at((e), (key), (want), __FILE__, __LINE__)

static void assert_no_ev_at(const struct fm_evidence *e, const char *key, const char *file,
                            int line)
{
        if (ev_find(e, key))
                fail_msg("%s:%d: evidence unexpectedly has key \"%s\"", file, line, key);
}
#define assert_no_ev(e, key) assert_no_ev_at((e), (key), __FILE__, __LINE__)

static void assert_trans_at(const struct fm_breaker_transition *t, enum fm_breaker_state from,
                            enum fm_breaker_state to, enum fm_breaker_cause cause, fm_ms at,
                            const char *file, int line)
{
        if (t->from != from || t->to != to || t->cause != cause || t->at != at)
                fail_msg("%s:%d: transition %s->%s (%s) at %lld, expected %s->%s (%s) at %lld",
                         file, line, fm_breaker_state_name(t->from), fm_breaker_state_name(t->to),
                         fm_breaker_cause_name(t->cause), (long long)t->at,
                         fm_breaker_state_name(from), fm_breaker_state_name(to),
                         fm_breaker_cause_name(cause), (long long)at);
}
#define assert_trans(t, from, to, cause, at)                                                       \
        assert_trans_at((t), (from), (to), (cause), (at), __FILE__, __LINE__)

#define SENTINEL 0x5a

static void fill_sentinel(struct fm_breaker_transition *t)
{
        memset(t, SENTINEL, sizeof(*t));
}

static void assert_sentinel(const struct fm_breaker_transition *t)
{
        struct fm_breaker_transition s;

        fill_sentinel(&s);
        assert_memory_equal(t, &s, sizeof(s));
}

static void assert_breaker_equal(const struct fm_breaker *a, const struct fm_breaker *b)
{
        assert_int_equal(a->state, b->state);
        assert_int_equal(a->reopens, b->reopens);
        assert_int_equal(a->since, b->since);
        assert_int_equal(a->open_until, b->open_until);
        assert_int_equal(a->open_for, b->open_for);
        assert_int_equal(a->probe_requests, b->probe_requests);
        assert_int_equal(a->probe_errors, b->probe_errors);
        assert_int_equal(a->probe_slow, b->probe_slow);
        assert_int_equal(a->opens, b->opens);
}

static void assert_probes(const struct fm_breaker *b, uint32_t req, uint32_t err, uint32_t slow)
{
        assert_int_equal(b->probe_requests, req);
        assert_int_equal(b->probe_errors, err);
        assert_int_equal(b->probe_slow, slow);
}

static struct fm_breaker_input input(uint64_t req, uint64_t err, uint64_t slow,
                                     enum fm_health_status health, fm_ms last_seen)
{
        return (struct fm_breaker_input){
                .requests = req,
                .errors = err,
                .slow = slow,
                .health = health,
                .last_seen = last_seen,
        };
}

/* A healthy instance that was heard from just now and served nothing. */
static struct fm_breaker_input quiet(fm_ms now)
{
        return input(0, 0, 0, FM_HEALTH_OK, now);
}

static struct fm_breaker_config defaults(void)
{
        struct fm_breaker_config cfg;

        fm_breaker_config_default(&cfg);
        return cfg;
}

/* Evaluates and requires that nothing happened: 0, *ret and the breaker untouched. */
static void eval_nothing(struct fm_breaker *b, const struct fm_breaker_config *cfg,
                         const struct fm_breaker_input *in, fm_ms now)
{
        struct fm_breaker before = *b;
        struct fm_breaker_transition t;

        fill_sentinel(&t);
        assert_int_equal(fm_breaker_evaluate(b, cfg, in, now, &t), 0);
        assert_sentinel(&t);
        assert_breaker_equal(b, &before);
}

/* Evaluates and requires one transition; returns it. */
static struct fm_breaker_transition eval_change(struct fm_breaker *b,
                                                const struct fm_breaker_config *cfg,
                                                const struct fm_breaker_input *in, fm_ms now)
{
        struct fm_breaker_transition t;

        fill_sentinel(&t);
        assert_int_equal(fm_breaker_evaluate(b, cfg, in, now, &t), 1);
        assert_int_equal(t.at, now);
        assert_int_equal(b->since, now);
        assert_int_equal(t.to, b->state);
        return t;
}

/* CLOSED -> OPEN through health down at now. */
static void open_now(struct fm_breaker *b, const struct fm_breaker_config *cfg, fm_ms now)
{
        struct fm_breaker_input in = input(0, 0, 0, FM_HEALTH_DOWN, now);

        assert_int_equal(b->state, FM_BREAKER_CLOSED);
        (void)eval_change(b, cfg, &in, now);
        assert_int_equal(b->state, FM_BREAKER_OPEN);
}

/* OPEN -> HALF_OPEN at exactly open_until; returns that time. */
static fm_ms half_open_now(struct fm_breaker *b, const struct fm_breaker_config *cfg)
{
        fm_ms at = b->open_until;
        struct fm_breaker_input in = quiet(at);

        assert_int_equal(b->state, FM_BREAKER_OPEN);
        (void)eval_change(b, cfg, &in, at);
        assert_int_equal(b->state, FM_BREAKER_HALF_OPEN);
        assert_probes(b, 0, 0, 0);
        return at;
}

/* A fresh breaker in HALF_OPEN after its first opening; returns when it half-opened. */
static fm_ms fresh_half_open(struct fm_breaker *b, const struct fm_breaker_config *cfg)
{
        fm_breaker_init(b, T0);
        open_now(b, cfg, T0);
        return half_open_now(b, cfg);
}

static void put_in_state(struct fm_breaker *b, const struct fm_breaker_config *cfg,
                         enum fm_breaker_state s)
{
        struct fm_breaker_transition t;

        fm_breaker_init(b, T0);
        switch (s) {
        case FM_BREAKER_CLOSED:
                break;
        case FM_BREAKER_OPEN:
                open_now(b, cfg, T0);
                break;
        case FM_BREAKER_HALF_OPEN:
                (void)fresh_half_open(b, cfg);
                break;
        case FM_BREAKER_FORCED_OPEN:
                assert_int_equal(fm_breaker_force(b, FM_BREAKER_FORCE_OPEN, T0, &t), 1);
                break;
        case FM_BREAKER_DISABLED:
                assert_int_equal(fm_breaker_force(b, FM_BREAKER_DISABLE, T0, &t), 1);
                break;
        default:
                fail_msg("bad state %d", (int)s);
        }
        assert_int_equal(b->state, s);
}

/*
 * A scenario as a table: at each step the caller may record a probe batch,
 * then evaluates at T0 + at with the given window counters, health and
 * silence (now - last_seen). The expected result, state, cause and (when
 * the step opens the breaker) open duration and re-open count are checked;
 * a failure names the step.
 */
struct step {
        const char *what;
        fm_ms at;
        uint64_t p_req, p_err, p_slow; /* probe batch recorded before evaluating */
        uint64_t req, err, slow;       /* closed-state window */
        enum fm_health_status health;
        fm_ms silence;
        int want_r;
        enum fm_breaker_state want_state;
        enum fm_breaker_cause want_cause; /* when want_r */
        fm_ms want_open_for;              /* when the step enters OPEN */
        unsigned want_reopens;            /* when the step enters OPEN */
};

static void run_steps(struct fm_breaker *b, const struct fm_breaker_config *cfg,
                      const struct step *steps, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                const struct step *s = &steps[i];
                fm_ms now = T0 + s->at;
                struct fm_breaker_input in =
                        input(s->req, s->err, s->slow, s->health, now - s->silence);
                struct fm_breaker_transition t;
                enum fm_breaker_state from = b->state;
                const struct fm_evidence_item *it;
                int r;

                if (s->p_req > 0)
                        fm_breaker_record(b, cfg, s->p_req, s->p_err, s->p_slow);
                fill_sentinel(&t);
                r = fm_breaker_evaluate(b, cfg, &in, now, &t);
                if (r != s->want_r || b->state != s->want_state)
                        fail_msg("step %zu (%s): r=%d state=%s, expected r=%d state=%s", i, s->what,
                                 r, fm_breaker_state_name(b->state), s->want_r,
                                 fm_breaker_state_name(s->want_state));
                if (r == 0) {
                        assert_sentinel(&t);
                        continue;
                }
                if (t.from != from || t.to != s->want_state || t.cause != s->want_cause ||
                    t.at != now || b->since != now)
                        fail_msg("step %zu (%s): transition %s->%s (%s) at %+lld ms", i, s->what,
                                 fm_breaker_state_name(t.from), fm_breaker_state_name(t.to),
                                 fm_breaker_cause_name(t.cause), (long long)(t.at - T0));
                if (s->want_state != FM_BREAKER_OPEN)
                        continue;
                it = ev_find(&t.evidence, "open_s");
                if (b->open_for != s->want_open_for || b->open_until - now != s->want_open_for ||
                    !it || it->value != (double)s->want_open_for / FM_MS_PER_S)
                        fail_msg("step %zu (%s): open_for=%lld open_until-at=%lld open_s=%g, "
                                 "expected %lld ms",
                                 i, s->what, (long long)b->open_for,
                                 (long long)(b->open_until - now), it ? it->value : -1.0,
                                 (long long)s->want_open_for);
                it = ev_find(&t.evidence, "reopens");
                if (b->reopens != s->want_reopens || !it || it->value != s->want_reopens)
                        fail_msg("step %zu (%s): reopens=%u (evidence %g), expected %u", i, s->what,
                                 b->reopens, it ? it->value : -1.0, s->want_reopens);
        }
}

/* ---- names -------------------------------------------------------------- */

static void test_state_names(void **state)
{
        static const char *const want[] = {
                [FM_BREAKER_CLOSED] = "closed",       [FM_BREAKER_OPEN] = "open",
                [FM_BREAKER_HALF_OPEN] = "half_open", [FM_BREAKER_FORCED_OPEN] = "forced_open",
                [FM_BREAKER_DISABLED] = "disabled",
        };

        (void)state;
        assert_int_equal(ARRAY_SIZE(want), _FM_BREAKER_STATE_MAX);
        for (size_t i = 0; i < ARRAY_SIZE(want); i++) {
                assert_non_null(fm_breaker_state_name((enum fm_breaker_state)i));
                assert_string_equal(fm_breaker_state_name((enum fm_breaker_state)i), want[i]);
        }
        assert_null(fm_breaker_state_name(_FM_BREAKER_STATE_MAX));
        assert_null(fm_breaker_state_name((enum fm_breaker_state)255));
        assert_null(fm_breaker_state_name((enum fm_breaker_state) - 1));
}

static void test_cause_names(void **state)
{
        static const char *const want[] = {
                [FM_CAUSE_FAILURE_RATE] = "failure_rate",
                [FM_CAUSE_SLOW_RATE] = "slow_call_rate",
                [FM_CAUSE_HEALTH_DOWN] = "health_down",
                [FM_CAUSE_HEARTBEAT_LOST] = "heartbeat_lost",
                [FM_CAUSE_OPEN_ELAPSED] = "open_elapsed",
                [FM_CAUSE_PROBES_PASSED] = "probes_passed",
                [FM_CAUSE_PROBES_FAILED] = "probes_failed",
                [FM_CAUSE_OPERATOR] = "operator",
        };

        (void)state;
        assert_int_equal(ARRAY_SIZE(want), _FM_BREAKER_CAUSE_MAX);
        for (size_t i = 0; i < ARRAY_SIZE(want); i++) {
                assert_non_null(fm_breaker_cause_name((enum fm_breaker_cause)i));
                assert_string_equal(fm_breaker_cause_name((enum fm_breaker_cause)i), want[i]);
        }
        assert_null(fm_breaker_cause_name(_FM_BREAKER_CAUSE_MAX));
        assert_null(fm_breaker_cause_name((enum fm_breaker_cause)1000));
        assert_null(fm_breaker_cause_name((enum fm_breaker_cause) - 1));
}

/* ---- configuration ------------------------------------------------------ */

static void test_config_default(void **state)
{
        struct fm_breaker_config cfg;

        (void)state;
        memset(&cfg, 0xff, sizeof(cfg));
        fm_breaker_config_default(&cfg);
        assert_double_close(cfg.failure_rate, 0.5);
        assert_double_close(cfg.slow_rate, 0.5);
        assert_double_close(cfg.slow_call_ms, 1000.0);
        assert_int_equal(cfg.min_requests, 20);
        assert_int_equal(cfg.window, S(30));
        assert_int_equal(cfg.window_slots, 6);
        assert_int_equal(cfg.open_base, S(30));
        assert_int_equal(cfg.open_max, S(600));
        assert_int_equal(cfg.probes, 10);
        assert_int_equal(cfg.heartbeat_timeout, S(30));
        assert_int_equal(fm_breaker_config_validate(&cfg), 0);
}

static void test_config_validate_accepts_edges(void **state)
{
        struct fm_breaker_config cfg;

        (void)state;
        cfg = defaults();
        cfg.failure_rate = 1.0; /* (0, 1] includes 1 */
        cfg.slow_rate = 1.0;
        assert_int_equal(fm_breaker_config_validate(&cfg), 0);

        cfg = defaults();
        cfg.failure_rate = 1e-9;
        cfg.slow_rate = 1e-9;
        assert_int_equal(fm_breaker_config_validate(&cfg), 0);

        cfg = defaults();
        cfg.open_max = cfg.open_base; /* no doubling at all is allowed */
        assert_int_equal(fm_breaker_config_validate(&cfg), 0);

        cfg = defaults();
        cfg.window = cfg.window_slots; /* 1 ms slots */
        assert_int_equal(fm_breaker_config_validate(&cfg), 0);

        cfg = defaults();
        cfg.window_slots = 1;
        cfg.min_requests = 1;
        cfg.probes = 1;
        cfg.open_base = 1;
        cfg.heartbeat_timeout = 1;
        assert_int_equal(fm_breaker_config_validate(&cfg), 0);
}

enum cfg_field {
        F_FAILURE_RATE,
        F_SLOW_RATE,
        F_SLOW_CALL_MS,
        F_MIN_REQUESTS,
        F_WINDOW,
        F_WINDOW_SLOTS,
        F_OPEN_BASE,
        F_OPEN_MAX,
        F_PROBES,
        F_HEARTBEAT,
};

static void test_config_validate_rejects(void **state)
{
        static const struct {
                const char *what;
                enum cfg_field field;
                double d;  /* for the double fields */
                int64_t i; /* for the integer fields */
        } bad[] = {
                {"failure_rate 0", F_FAILURE_RATE, 0.0, 0},
                {"failure_rate -0.1", F_FAILURE_RATE, -0.1, 0},
                {"failure_rate > 1", F_FAILURE_RATE, 1.0000001, 0},
                {"failure_rate 2", F_FAILURE_RATE, 2.0, 0},
                {"failure_rate NaN", F_FAILURE_RATE, NAN, 0},
                {"failure_rate inf", F_FAILURE_RATE, INFINITY, 0},
                {"failure_rate -inf", F_FAILURE_RATE, -INFINITY, 0},
                {"slow_rate 0", F_SLOW_RATE, 0.0, 0},
                {"slow_rate > 1", F_SLOW_RATE, 1.5, 0},
                {"slow_rate NaN", F_SLOW_RATE, NAN, 0},
                {"slow_rate inf", F_SLOW_RATE, INFINITY, 0},
                {"slow_call_ms 0", F_SLOW_CALL_MS, 0.0, 0},
                {"slow_call_ms < 0", F_SLOW_CALL_MS, -1.0, 0},
                {"slow_call_ms NaN", F_SLOW_CALL_MS, NAN, 0},
                {"slow_call_ms inf", F_SLOW_CALL_MS, INFINITY, 0},
                {"min_requests 0", F_MIN_REQUESTS, 0, 0},
                {"window 0", F_WINDOW, 0, 0},
                {"window < 0", F_WINDOW, 0, -S(60)},
                {"window not a multiple of slots", F_WINDOW, 0, S(30) + 1},
                {"window 31 s with 6 slots", F_WINDOW, 0, S(31)},
                {"window shorter than slots", F_WINDOW, 0, 5},
                {"window_slots 0", F_WINDOW_SLOTS, 0, 0},
                {"window_slots 7 (30000 % 7 != 0)", F_WINDOW_SLOTS, 0, 7},
                {"open_base 0", F_OPEN_BASE, 0, 0},
                {"open_base < 0", F_OPEN_BASE, 0, -S(30)},
                {"open_max < open_base", F_OPEN_MAX, 0, S(30) - 1},
                {"open_max 0", F_OPEN_MAX, 0, 0},
                {"probes 0", F_PROBES, 0, 0},
                {"heartbeat_timeout 0", F_HEARTBEAT, 0, 0},
                {"heartbeat_timeout < 0", F_HEARTBEAT, 0, -1},
        };

        (void)state;
        for (size_t k = 0; k < ARRAY_SIZE(bad); k++) {
                struct fm_breaker_config cfg = defaults();

                switch (bad[k].field) {
                case F_FAILURE_RATE:
                        cfg.failure_rate = bad[k].d;
                        break;
                case F_SLOW_RATE:
                        cfg.slow_rate = bad[k].d;
                        break;
                case F_SLOW_CALL_MS:
                        cfg.slow_call_ms = bad[k].d;
                        break;
                case F_MIN_REQUESTS:
                        cfg.min_requests = (uint32_t)bad[k].i;
                        break;
                case F_WINDOW:
                        cfg.window = bad[k].i;
                        break;
                case F_WINDOW_SLOTS:
                        cfg.window_slots = (uint32_t)bad[k].i;
                        break;
                case F_OPEN_BASE:
                        cfg.open_base = bad[k].i;
                        break;
                case F_OPEN_MAX:
                        cfg.open_max = bad[k].i;
                        break;
                case F_PROBES:
                        cfg.probes = (uint32_t)bad[k].i;
                        break;
                case F_HEARTBEAT:
                        cfg.heartbeat_timeout = bad[k].i;
                        break;
                }
                if (fm_breaker_config_validate(&cfg) != -EINVAL)
                        fail_msg("config \"%s\" accepted", bad[k].what);
        }
}

/* ---- init ----------------------------------------------------------------- */

static void test_init(void **state)
{
        struct fm_breaker b;

        (void)state;
        memset(&b, 0xa5, sizeof(b));
        fm_breaker_init(&b, T0 + 123);
        assert_int_equal(b.state, FM_BREAKER_CLOSED);
        assert_int_equal(b.since, T0 + 123);
        assert_int_equal(b.reopens, 0);
        assert_int_equal(b.opens, 0);
        assert_probes(&b, 0, 0, 0);
        assert_false(fm_breaker_ejected(&b));
}

/* ---- CLOSED ----------------------------------------------------------------- */

struct rate_case {
        uint64_t req, err, slow;
        int want_r;
        enum fm_breaker_cause want_cause;
};

/* Runs each case on a fresh CLOSED breaker with a healthy, talking instance. */
static void run_rate_cases(const struct fm_breaker_config *cfg, const struct rate_case *c, size_t n)
{
        for (size_t k = 0; k < n; k++) {
                struct fm_breaker b;
                struct fm_breaker_transition t;
                fm_ms now = T0 + S(5);
                struct fm_breaker_input in =
                        input(c[k].req, c[k].err, c[k].slow, FM_HEALTH_OK, now - S(1));
                int r;

                fm_breaker_init(&b, T0);
                fill_sentinel(&t);
                r = fm_breaker_evaluate(&b, cfg, &in, now, &t);
                if (r != c[k].want_r)
                        fail_msg("case %zu (%llu req, %llu err, %llu slow): r=%d, expected %d", k,
                                 (unsigned long long)c[k].req, (unsigned long long)c[k].err,
                                 (unsigned long long)c[k].slow, r, c[k].want_r);
                if (r == 0) {
                        assert_sentinel(&t);
                        assert_int_equal(b.state, FM_BREAKER_CLOSED);
                        assert_int_equal(b.since, T0);
                        assert_int_equal(b.opens, 0);
                        assert_false(fm_breaker_ejected(&b));
                        continue;
                }
                if (t.cause != c[k].want_cause)
                        fail_msg("case %zu: cause %s, expected %s", k,
                                 fm_breaker_cause_name(t.cause),
                                 fm_breaker_cause_name(c[k].want_cause));
                assert_trans(&t, FM_BREAKER_CLOSED, FM_BREAKER_OPEN, c[k].want_cause, now);
                assert_int_equal(b.state, FM_BREAKER_OPEN);
                assert_int_equal(b.since, now);
                assert_int_equal(b.open_for, cfg->open_base);
                assert_int_equal(b.open_until, now + cfg->open_base);
                assert_int_equal(b.opens, 1);
                assert_int_equal(b.reopens, 0);
                assert_true(fm_breaker_ejected(&b));

                assert_ev(&t.evidence, "requests", (double)c[k].req);
                assert_ev(&t.evidence, "errors", (double)c[k].err);
                assert_ev(&t.evidence, "slow_calls", (double)c[k].slow);
                assert_ev(&t.evidence, "failure_rate", (double)c[k].err / (double)c[k].req);
                assert_ev(&t.evidence, "failure_threshold", cfg->failure_rate);
                assert_ev(&t.evidence, "slow_call_rate", (double)c[k].slow / (double)c[k].req);
                assert_ev(&t.evidence, "slow_call_threshold", cfg->slow_rate);
                assert_ev(&t.evidence, "slow_call_ms", cfg->slow_call_ms);
                assert_ev(&t.evidence, "min_requests", cfg->min_requests);
                assert_ev(&t.evidence, "window_s", (double)cfg->window / FM_MS_PER_S);
                assert_ev(&t.evidence, "open_s", (double)cfg->open_base / FM_MS_PER_S);
                assert_ev(&t.evidence, "reopens", 0);
                assert_no_ev(&t.evidence, "probes");
                assert_no_ev(&t.evidence, "silence_s");
        }
}

static void test_closed_rates_defaults(void **state)
{
        static const struct rate_case c[] = {
                /* failure rate: at the threshold opens, just below does not */
                {20, 10, 0, 1, FM_CAUSE_FAILURE_RATE},
                {20, 9, 0, 0, 0},
                {21, 11, 0, 1, FM_CAUSE_FAILURE_RATE},
                {21, 10, 0, 0, 0},
                {1000, 500, 0, 1, FM_CAUSE_FAILURE_RATE},
                {1000, 499, 0, 0, 0},
                {20, 20, 0, 1, FM_CAUSE_FAILURE_RATE},
                /* below min_requests nothing opens, even at 100 % */
                {19, 19, 0, 0, 0},
                {19, 0, 19, 0, 0},
                {19, 19, 19, 0, 0},
                {1, 1, 1, 0, 0},
                {0, 0, 0, 0, 0},
                /* slow-call rate */
                {20, 0, 10, 1, FM_CAUSE_SLOW_RATE},
                {20, 0, 9, 0, 0},
                {20, 0, 20, 1, FM_CAUSE_SLOW_RATE},
                {20, 9, 10, 1, FM_CAUSE_SLOW_RATE},
                {20, 9, 9, 0, 0},
                {1000, 499, 499, 0, 0},
                /* both over: the failure rate is named */
                {20, 10, 10, 1, FM_CAUSE_FAILURE_RATE},
                {20, 20, 20, 1, FM_CAUSE_FAILURE_RATE},
                {40, 30, 39, 1, FM_CAUSE_FAILURE_RATE},
        };
        struct fm_breaker_config cfg = defaults();

        (void)state;
        run_rate_cases(&cfg, c, ARRAY_SIZE(c));
}

static void test_closed_rates_custom(void **state)
{
        static const struct rate_case c[] = {
                {5, 2, 0, 1, FM_CAUSE_FAILURE_RATE},  /* 0.4 */
                {10, 3, 0, 1, FM_CAUSE_FAILURE_RATE}, /* 0.3 exactly */
                {10, 2, 1, 0, 0},                     /* 0.2 / 0.1 */
                {10, 2, 2, 1, FM_CAUSE_SLOW_RATE},    /* slow 0.2 exactly */
                {4, 4, 4, 0, 0},                      /* below min_requests = 5 */
                {5, 1, 0, 0, 0},                      /* 0.2 < 0.3, slow 0 */
                {100, 29, 19, 0, 0},
                {100, 30, 20, 1, FM_CAUSE_FAILURE_RATE},
        };
        struct fm_breaker_config cfg = defaults();

        (void)state;
        cfg.failure_rate = 0.3;
        cfg.slow_rate = 0.2;
        cfg.slow_call_ms = 250.0;
        cfg.min_requests = 5;
        cfg.window = S(10);
        cfg.window_slots = 10;
        cfg.open_base = S(7);
        cfg.open_max = S(100);
        assert_int_equal(fm_breaker_config_validate(&cfg), 0);
        run_rate_cases(&cfg, c, ARRAY_SIZE(c));
}

static void test_closed_rates_threshold_one(void **state)
{
        static const struct rate_case c[] = {
                {20, 19, 19, 0, 0},
                {20, 20, 0, 1, FM_CAUSE_FAILURE_RATE},
                {20, 0, 20, 1, FM_CAUSE_SLOW_RATE},
        };
        struct fm_breaker_config cfg = defaults();

        (void)state;
        cfg.failure_rate = 1.0;
        cfg.slow_rate = 1.0;
        run_rate_cases(&cfg, c, ARRAY_SIZE(c));
}

static void test_closed_health(void **state)
{
        static const enum fm_health_status fine[] = {
                FM_HEALTH_UNKNOWN,
                FM_HEALTH_OK,
                FM_HEALTH_DEGRADED,
        };
        struct fm_breaker_config cfg = defaults();
        struct fm_breaker b;
        struct fm_breaker_input in;
        struct fm_breaker_transition t;
        fm_ms now = T0 + S(1);

        (void)state;
        for (size_t k = 0; k < ARRAY_SIZE(fine); k++) {
                fm_breaker_init(&b, T0);
                in = input(0, 0, 0, fine[k], now);
                eval_nothing(&b, &cfg, &in, now);
                in = input(10, 3, 3, fine[k], now);
                eval_nothing(&b, &cfg, &in, now);
        }

        /* down opens with no requests at all */
        fm_breaker_init(&b, T0);
        in = input(0, 0, 0, FM_HEALTH_DOWN, now);
        t = eval_change(&b, &cfg, &in, now);
        assert_trans(&t, FM_BREAKER_CLOSED, FM_BREAKER_OPEN, FM_CAUSE_HEALTH_DOWN, now);
        assert_ev(&t.evidence, "health_down", 1);
        assert_ev(&t.evidence, "open_s", 30);
        assert_ev(&t.evidence, "reopens", 0);
        assert_int_equal(b.open_until, now + S(30));
        assert_int_equal(b.opens, 1);
        assert_true(fm_breaker_ejected(&b));
}

static void test_closed_heartbeat(void **state)
{
        static const struct {
                fm_ms timeout, silence;
                int want_r;
        } c[] = {
                {S(30), 0, 0},         {S(30), S(30) - 1, 0}, {S(30), S(30), 0},  /* == timeout is
                                                                                     not lost */
                {S(30), S(30) + 1, 1}, {S(30), S(3600), 1},   {S(30), -S(10), 0}, /* last_seen ahead
                                                                                     of now */
                {S(5), S(5), 0},       {S(5), S(5) + 1, 1},   {1, 1, 0},          {1, 2, 1},
        };
        struct fm_breaker_config cfg = defaults();

        (void)state;
        for (size_t k = 0; k < ARRAY_SIZE(c); k++) {
                struct fm_breaker b;
                struct fm_breaker_transition t;
                fm_ms now = T0 + S(100);
                struct fm_breaker_input in = input(0, 0, 0, FM_HEALTH_OK, now - c[k].silence);
                int r;

                cfg.heartbeat_timeout = c[k].timeout;
                fm_breaker_init(&b, T0);
                fill_sentinel(&t);
                r = fm_breaker_evaluate(&b, &cfg, &in, now, &t);
                if (r != c[k].want_r)
                        fail_msg("case %zu (timeout %lld, silence %lld): r=%d, expected %d", k,
                                 (long long)c[k].timeout, (long long)c[k].silence, r, c[k].want_r);
                if (r == 0) {
                        assert_sentinel(&t);
                        assert_int_equal(b.state, FM_BREAKER_CLOSED);
                        continue;
                }
                assert_trans(&t, FM_BREAKER_CLOSED, FM_BREAKER_OPEN, FM_CAUSE_HEARTBEAT_LOST, now);
                assert_ev(&t.evidence, "silence_s", (double)c[k].silence / FM_MS_PER_S);
                assert_ev(&t.evidence, "heartbeat_timeout_s", (double)c[k].timeout / FM_MS_PER_S);
                assert_ev(&t.evidence, "open_s", 30);
                assert_ev(&t.evidence, "reopens", 0);
                assert_int_equal(b.open_until, now + S(30));
        }
}

/* breaker.c: health and heartbeat come before the rates; health before heartbeat. */
static void test_closed_precedence(void **state)
{
        struct fm_breaker_config cfg = defaults();
        struct fm_breaker b;
        struct fm_breaker_input in;
        struct fm_breaker_transition t;
        fm_ms now = T0 + S(100);

        (void)state;
        fm_breaker_init(&b, T0);
        in = input(20, 20, 20, FM_HEALTH_DOWN, now - S(60));
        t = eval_change(&b, &cfg, &in, now);
        assert_int_equal(t.cause, FM_CAUSE_HEALTH_DOWN);

        fm_breaker_init(&b, T0);
        in = input(20, 20, 20, FM_HEALTH_OK, now - S(60));
        t = eval_change(&b, &cfg, &in, now);
        assert_int_equal(t.cause, FM_CAUSE_HEARTBEAT_LOST);
        assert_ev(&t.evidence, "silence_s", 60);
}

/* ---- OPEN ------------------------------------------------------------------ */

static void test_open_waits_then_half_opens(void **state)
{
        struct fm_breaker_config cfg = defaults();
        struct fm_breaker b;
        struct fm_breaker_input in;
        struct fm_breaker_transition t;
        fm_ms opened = T0 + S(10);

        (void)state;
        fm_breaker_init(&b, T0);
        in = input(100, 80, 0, FM_HEALTH_OK, opened);
        t = eval_change(&b, &cfg, &in, opened);
        assert_trans(&t, FM_BREAKER_CLOSED, FM_BREAKER_OPEN, FM_CAUSE_FAILURE_RATE, opened);
        assert_int_equal(b.open_until, opened + S(30));

        /* nothing before open_until, whatever comes in */
        in = quiet(opened + S(30) - 1);
        eval_nothing(&b, &cfg, &in, opened);
        eval_nothing(&b, &cfg, &in, opened + S(15));
        eval_nothing(&b, &cfg, &in, opened + S(30) - 1);
        assert_true(fm_breaker_ejected(&b));

        /* exactly at open_until */
        in = quiet(opened + S(30));
        t = eval_change(&b, &cfg, &in, opened + S(30));
        assert_trans(&t, FM_BREAKER_OPEN, FM_BREAKER_HALF_OPEN, FM_CAUSE_OPEN_ELAPSED,
                     opened + S(30));
        assert_ev(&t.evidence, "open_s", 30);
        assert_ev(&t.evidence, "reopens", 0);
        assert_int_equal(b.state, FM_BREAKER_HALF_OPEN);
        assert_probes(&b, 0, 0, 0);
        assert_int_equal(b.opens, 1);
        assert_false(fm_breaker_ejected(&b));

        /* a late tick half-opens too, at the tick's time */
        fm_breaker_init(&b, T0);
        open_now(&b, &cfg, T0);
        in = quiet(T0 + S(500));
        t = eval_change(&b, &cfg, &in, T0 + S(500));
        assert_trans(&t, FM_BREAKER_OPEN, FM_BREAKER_HALF_OPEN, FM_CAUSE_OPEN_ELAPSED, T0 + S(500));
}

/* OPEN looks only at the clock: health, silence and rates do not matter. */
static void test_open_ignores_inputs(void **state)
{
        struct fm_breaker_config cfg = defaults();
        struct fm_breaker b;
        struct fm_breaker_input in;
        fm_ms now = T0 + S(29);

        (void)state;
        fm_breaker_init(&b, T0);
        open_now(&b, &cfg, T0);
        in = input(1000, 1000, 1000, FM_HEALTH_DOWN, T0 - S(3600));
        eval_nothing(&b, &cfg, &in, now);
        in = input(0, 0, 0, FM_HEALTH_OK, now);
        eval_nothing(&b, &cfg, &in, now);
        /* and still half-opens on time with a down, silent instance */
        in = input(1000, 1000, 1000, FM_HEALTH_DOWN, T0 - S(3600));
        (void)eval_change(&b, &cfg, &in, T0 + S(30));
        assert_int_equal(b.state, FM_BREAKER_HALF_OPEN);
}

/* ---- probes ---------------------------------------------------------------- */

static void test_record_ignored_outside_half_open(void **state)
{
        static const enum fm_breaker_state states[] = {
                FM_BREAKER_CLOSED,
                FM_BREAKER_OPEN,
                FM_BREAKER_FORCED_OPEN,
                FM_BREAKER_DISABLED,
        };
        struct fm_breaker_config cfg = defaults();

        (void)state;
        for (size_t k = 0; k < ARRAY_SIZE(states); k++) {
                struct fm_breaker b, before;

                put_in_state(&b, &cfg, states[k]);
                before = b;
                fm_breaker_record(&b, &cfg, 5, 5, 5);
                fm_breaker_record(&b, &cfg, 100, 0, 0);
                assert_breaker_equal(&b, &before);
        }
}

static void test_record_accumulates_to_limit(void **state)
{
        struct fm_breaker_config cfg = defaults();
        struct fm_breaker b;

        (void)state;
        (void)fresh_half_open(&b, &cfg);
        fm_breaker_record(&b, &cfg, 4, 1, 0);
        assert_probes(&b, 4, 1, 0);
        fm_breaker_record(&b, &cfg, 0, 3, 3); /* no requests: nothing */
        assert_probes(&b, 4, 1, 0);
        fm_breaker_record(&b, &cfg, 4, 0, 1);
        assert_probes(&b, 8, 1, 1);
        /* 2 of 5 fit: ceil(5 * 2 / 5) = 2 errors, 2 slow */
        fm_breaker_record(&b, &cfg, 5, 5, 5);
        assert_probes(&b, 10, 3, 3);
        /* full: nothing more is admitted */
        fm_breaker_record(&b, &cfg, 3, 3, 3);
        fm_breaker_record(&b, &cfg, 1, 0, 0);
        assert_probes(&b, 10, 3, 3);
}

static void test_record_partial_batch(void **state)
{
        static const struct {
                uint64_t pre_req, pre_err, pre_slow; /* recorded first (fits) */
                uint64_t req, err, slow;
                uint32_t want_req, want_err, want_slow;
        } c[] = {
                {0, 0, 0, 15, 5, 3, 10, 4, 2},      /* 3.33 -> 4, 2 exactly */
                {0, 0, 0, 30, 1, 0, 10, 1, 0},      /* 0.33 -> 1 */
                {0, 0, 0, 30, 0, 29, 10, 0, 10},    /* 9.67 -> 10 */
                {0, 0, 0, 20, 10, 10, 10, 5, 5},    /* exact halves */
                {0, 0, 0, 11, 1, 10, 10, 1, 10},    /* 0.91 -> 1, 9.09 -> 10 */
                {0, 0, 0, 1000, 999, 1, 10, 10, 1}, /* 9.99 -> 10, 0.01 -> 1 */
                {0, 0, 0, 25, 12, 0, 10, 5, 0},     /* 4.8 -> 5 */
                {0, 0, 0, 10, 3, 7, 10, 3, 7},      /* fits exactly: no scaling */
                {0, 0, 0, 5, 9, 9, 5, 5, 5},        /* errors > requests: clamped */
                {0, 0, 0, 0, 5, 5, 0, 0, 0},        /* no requests */
                {7, 0, 0, 9, 3, 0, 10, 1, 0},       /* room 3: 3*3/9 = 1 */
                {7, 0, 0, 9, 4, 0, 10, 2, 0},       /* 1.33 -> 2 */
                {7, 2, 1, 6, 6, 0, 10, 5, 1},       /* room 3, all errors */
                {9, 0, 0, 100, 0, 0, 10, 0, 0},     {9, 0, 0, 100, 1, 0, 10, 1, 0}, /* 0.01 -> 1 */
                {10, 2, 2, 5, 5, 5, 10, 2, 2}, /* already full */
        };
        struct fm_breaker_config cfg = defaults();

        (void)state;
        for (size_t k = 0; k < ARRAY_SIZE(c); k++) {
                struct fm_breaker b;

                (void)fresh_half_open(&b, &cfg);
                if (c[k].pre_req)
                        fm_breaker_record(&b, &cfg, c[k].pre_req, c[k].pre_err, c[k].pre_slow);
                fm_breaker_record(&b, &cfg, c[k].req, c[k].err, c[k].slow);
                if (b.probe_requests != c[k].want_req || b.probe_errors != c[k].want_err ||
                    b.probe_slow != c[k].want_slow)
                        fail_msg("case %zu: admitted %u/%u/%u, expected %u/%u/%u", k,
                                 b.probe_requests, b.probe_errors, b.probe_slow, c[k].want_req,
                                 c[k].want_err, c[k].want_slow);
        }
}

/*
 * The proportional share must be rounded up for any batch the types allow.
 * 9e18 + 1 errors in 1e19 + 1 requests, 10 admitted: 9 + 1e-19 errors,
 * which rounds up to 10.
 */
static void test_record_rounding_huge_batch(void **state)
{
        struct fm_breaker_config cfg = defaults();
        struct fm_breaker b;

        (void)state;
        (void)fresh_half_open(&b, &cfg);
        fm_breaker_record(&b, &cfg, UINT64_C(10000000000000000001), UINT64_C(9000000000000000001),
                          UINT64_C(1));
        assert_int_equal(b.probe_requests, 10);
        assert_int_equal(b.probe_slow, 1);
        assert_int_equal(b.probe_errors, 10);
}

/* ---- HALF_OPEN ------------------------------------------------------------- */

/* No decision before `probes` results are in; the batch that crosses decides. */
static void test_half_open_probe_limit(void **state)
{
        static const struct step steps[] = {
                {"opens on health", 0, 0, 0, 0, 0, 0, 0, FM_HEALTH_DOWN, 0, 1, FM_BREAKER_OPEN,
                 FM_CAUSE_HEALTH_DOWN, S(30), 0},
                {"half-opens", S(30), 0, 0, 0, 0, 0, 0, FM_HEALTH_OK, 0, 1, FM_BREAKER_HALF_OPEN,
                 FM_CAUSE_OPEN_ELAPSED, 0, 0},
                {"no probes yet", S(31), 0, 0, 0, 0, 0, 0, FM_HEALTH_OK, 0, 0, FM_BREAKER_HALF_OPEN,
                 0, 0, 0},
                {"1 of 3, failed", S(32), 1, 1, 1, 0, 0, 0, FM_HEALTH_OK, 0, 0,
                 FM_BREAKER_HALF_OPEN, 0, 0, 0},
                {"2 of 3, failed", S(33), 1, 1, 1, 0, 0, 0, FM_HEALTH_OK, 0, 0,
                 FM_BREAKER_HALF_OPEN, 0, 0, 0},
                {"window counters do not matter", S(34), 0, 0, 0, 1000, 1000, 1000, FM_HEALTH_OK, 0,
                 0, FM_BREAKER_HALF_OPEN, 0, 0, 0},
                {"3rd of a batch of 5 decides", S(35), 5, 0, 0, 0, 0, 0, FM_HEALTH_OK, 0, 1,
                 FM_BREAKER_OPEN, FM_CAUSE_PROBES_FAILED, S(60), 1},
                {"half-opens after 60 s", S(95), 0, 0, 0, 0, 0, 0, FM_HEALTH_OK, 0, 1,
                 FM_BREAKER_HALF_OPEN, FM_CAUSE_OPEN_ELAPSED, 0, 0},
                {"counters restarted: 2 clean", S(96), 2, 0, 0, 0, 0, 0, FM_HEALTH_OK, 0, 0,
                 FM_BREAKER_HALF_OPEN, 0, 0, 0},
                {"3rd clean closes", S(97), 1, 0, 0, 0, 0, 0, FM_HEALTH_OK, 0, 1, FM_BREAKER_CLOSED,
                 FM_CAUSE_PROBES_PASSED, 0, 0},
        };
        struct fm_breaker_config cfg = defaults();
        struct fm_breaker b;

        (void)state;
        cfg.probes = 3;
        fm_breaker_init(&b, T0);
        run_steps(&b, &cfg, steps, ARRAY_SIZE(steps));
        assert_int_equal(b.opens, 2);
        assert_int_equal(b.reopens, 0);
}

static void test_half_open_decisions(void **state)
{
        static const struct {
                uint32_t err, slow;
                enum fm_breaker_state want;
        } c[] = {
                {0, 0, FM_BREAKER_CLOSED}, {4, 4, FM_BREAKER_CLOSED}, {4, 0, FM_BREAKER_CLOSED},
                {0, 4, FM_BREAKER_CLOSED}, {5, 0, FM_BREAKER_OPEN},   {0, 5, FM_BREAKER_OPEN},
                {5, 4, FM_BREAKER_OPEN},   {4, 5, FM_BREAKER_OPEN},   {10, 10, FM_BREAKER_OPEN},
                {10, 0, FM_BREAKER_OPEN},
        };
        struct fm_breaker_config cfg = defaults();

        (void)state;
        for (size_t k = 0; k < ARRAY_SIZE(c); k++) {
                struct fm_breaker b;
                struct fm_breaker_input in;
                struct fm_breaker_transition t;
                fm_ms now = fresh_half_open(&b, &cfg) + S(1);

                fm_breaker_record(&b, &cfg, 10, c[k].err, c[k].slow);
                in = quiet(now);
                t = eval_change(&b, &cfg, &in, now);
                if (b.state != c[k].want)
                        fail_msg("case %zu (%u err, %u slow of 10): %s, expected %s", k, c[k].err,
                                 c[k].slow, fm_breaker_state_name(b.state),
                                 fm_breaker_state_name(c[k].want));
                assert_ev(&t.evidence, "probes", 10);
                assert_ev(&t.evidence, "requests", 10);
                assert_ev(&t.evidence, "errors", c[k].err);
                assert_ev(&t.evidence, "slow_calls", c[k].slow);
                assert_ev(&t.evidence, "failure_rate", c[k].err / 10.0);
                assert_ev(&t.evidence, "slow_call_rate", c[k].slow / 10.0);
                assert_ev(&t.evidence, "failure_threshold", 0.5);
                assert_ev(&t.evidence, "slow_call_threshold", 0.5);
                assert_no_ev(&t.evidence, "window_s");
                assert_no_ev(&t.evidence, "min_requests");
                if (c[k].want == FM_BREAKER_CLOSED) {
                        assert_trans(&t, FM_BREAKER_HALF_OPEN, FM_BREAKER_CLOSED,
                                     FM_CAUSE_PROBES_PASSED, now);
                        assert_int_equal(b.reopens, 0);
                        assert_int_equal(b.opens, 1);
                        assert_false(fm_breaker_ejected(&b));
                } else {
                        assert_trans(&t, FM_BREAKER_HALF_OPEN, FM_BREAKER_OPEN,
                                     FM_CAUSE_PROBES_FAILED, now);
                        assert_ev(&t.evidence, "open_s", 60);
                        assert_ev(&t.evidence, "reopens", 1);
                        assert_int_equal(b.open_until, now + S(60));
                        assert_int_equal(b.reopens, 1);
                        assert_int_equal(b.opens, 2);
                        assert_true(fm_breaker_ejected(&b));
                }
                assert_probes(&b, 0, 0, 0);
        }
}

/*
 * Each consecutive re-open doubles the open duration up to open_max:
 * 30, 60, 120, 240, 480, 600, 600 s with the defaults. A close resets it.
 */
static void test_backoff_cap(void **state)
{
#define FAIL10 10, 10, 0
#define PASS10 10, 0, 0
#define NOWIN 0, 0, 0
#define OK FM_HEALTH_OK, 0
        static const struct step steps[] = {
                {"opens on failures", 0, NOWIN, 20, 10, 0, OK, 1, FM_BREAKER_OPEN,
                 FM_CAUSE_FAILURE_RATE, S(30), 0},
                {"1 ms early", S(30) - 1, NOWIN, NOWIN, OK, 0, FM_BREAKER_OPEN, 0, 0, 0},
                {"half", S(30), NOWIN, NOWIN, OK, 1, FM_BREAKER_HALF_OPEN, FM_CAUSE_OPEN_ELAPSED, 0,
                 0},
                {"re-open 1", S(31), FAIL10, NOWIN, OK, 1, FM_BREAKER_OPEN, FM_CAUSE_PROBES_FAILED,
                 S(60), 1},
                {"1 ms early", S(91) - 1, NOWIN, NOWIN, OK, 0, FM_BREAKER_OPEN, 0, 0, 0},
                {"half", S(91), NOWIN, NOWIN, OK, 1, FM_BREAKER_HALF_OPEN, FM_CAUSE_OPEN_ELAPSED, 0,
                 0},
                {"re-open 2", S(92), FAIL10, NOWIN, OK, 1, FM_BREAKER_OPEN, FM_CAUSE_PROBES_FAILED,
                 S(120), 2},
                {"1 ms early", S(212) - 1, NOWIN, NOWIN, OK, 0, FM_BREAKER_OPEN, 0, 0, 0},
                {"half", S(212), NOWIN, NOWIN, OK, 1, FM_BREAKER_HALF_OPEN, FM_CAUSE_OPEN_ELAPSED,
                 0, 0},
                {"re-open 3", S(213), FAIL10, NOWIN, OK, 1, FM_BREAKER_OPEN, FM_CAUSE_PROBES_FAILED,
                 S(240), 3},
                {"half", S(453), NOWIN, NOWIN, OK, 1, FM_BREAKER_HALF_OPEN, FM_CAUSE_OPEN_ELAPSED,
                 0, 0},
                {"re-open 4", S(454), FAIL10, NOWIN, OK, 1, FM_BREAKER_OPEN, FM_CAUSE_PROBES_FAILED,
                 S(480), 4},
                {"half", S(934), NOWIN, NOWIN, OK, 1, FM_BREAKER_HALF_OPEN, FM_CAUSE_OPEN_ELAPSED,
                 0, 0},
                {"re-open 5: capped", S(935), FAIL10, NOWIN, OK, 1, FM_BREAKER_OPEN,
                 FM_CAUSE_PROBES_FAILED, S(600), 5},
                {"1 ms early", S(1535) - 1, NOWIN, NOWIN, OK, 0, FM_BREAKER_OPEN, 0, 0, 0},
                {"half", S(1535), NOWIN, NOWIN, OK, 1, FM_BREAKER_HALF_OPEN, FM_CAUSE_OPEN_ELAPSED,
                 0, 0},
                {"re-open 6: capped", S(1536), FAIL10, NOWIN, OK, 1, FM_BREAKER_OPEN,
                 FM_CAUSE_PROBES_FAILED, S(600), 6},
                {"half", S(2136), NOWIN, NOWIN, OK, 1, FM_BREAKER_HALF_OPEN, FM_CAUSE_OPEN_ELAPSED,
                 0, 0},
                {"probes pass", S(2137), PASS10, NOWIN, OK, 1, FM_BREAKER_CLOSED,
                 FM_CAUSE_PROBES_PASSED, 0, 0},
                {"clean window", S(2138), NOWIN, 100, 0, 0, OK, 0, FM_BREAKER_CLOSED, 0, 0, 0},
                {"opens again: base", S(2200), NOWIN, 20, 0, 10, OK, 1, FM_BREAKER_OPEN,
                 FM_CAUSE_SLOW_RATE, S(30), 0},
                {"half", S(2230), NOWIN, NOWIN, OK, 1, FM_BREAKER_HALF_OPEN, FM_CAUSE_OPEN_ELAPSED,
                 0, 0},
                {"re-open: 60 again", S(2231), FAIL10, NOWIN, OK, 1, FM_BREAKER_OPEN,
                 FM_CAUSE_PROBES_FAILED, S(60), 1},
        };
#undef FAIL10
#undef PASS10
#undef NOWIN
#undef OK
        struct fm_breaker_config cfg = defaults();
        struct fm_breaker b;

        (void)state;
        fm_breaker_init(&b, T0);
        run_steps(&b, &cfg, steps, ARRAY_SIZE(steps));
        assert_int_equal(b.opens, 9);
}

/* The half-open evaluation's evidence of the time it stayed open. */
static void test_half_open_evidence_of_open(void **state)
{
        struct fm_breaker_config cfg = defaults();
        struct fm_breaker b;
        struct fm_breaker_input in;
        struct fm_breaker_transition t;
        fm_ms now = fresh_half_open(&b, &cfg);

        (void)state;
        fm_breaker_record(&b, &cfg, 10, 10, 0);
        in = quiet(now + 1);
        (void)eval_change(&b, &cfg, &in, now + 1);
        in = quiet(b.open_until);
        t = eval_change(&b, &cfg, &in, b.open_until);
        assert_trans(&t, FM_BREAKER_OPEN, FM_BREAKER_HALF_OPEN, FM_CAUSE_OPEN_ELAPSED,
                     now + 1 + S(60));
        assert_ev(&t.evidence, "open_s", 60);
        assert_ev(&t.evidence, "reopens", 1);
}

static void test_half_open_health_down(void **state)
{
        struct fm_breaker_config cfg = defaults();
        struct fm_breaker b;
        struct fm_breaker_input in;
        struct fm_breaker_transition t;
        fm_ms now;

        (void)state;
        /* degraded is not down */
        now = fresh_half_open(&b, &cfg) + S(1);
        in = input(0, 0, 0, FM_HEALTH_DEGRADED, now);
        eval_nothing(&b, &cfg, &in, now);

        /* down re-opens before any probe result, doubling */
        in = input(0, 0, 0, FM_HEALTH_DOWN, now);
        t = eval_change(&b, &cfg, &in, now);
        assert_trans(&t, FM_BREAKER_HALF_OPEN, FM_BREAKER_OPEN, FM_CAUSE_HEALTH_DOWN, now);
        assert_ev(&t.evidence, "health_down", 1);
        assert_ev(&t.evidence, "open_s", 60);
        assert_ev(&t.evidence, "reopens", 1);
        assert_int_equal(b.open_until, now + S(60));
        assert_int_equal(b.opens, 2);

        /* again, with passing probes in hand: health still wins */
        now = half_open_now(&b, &cfg) + S(1);
        fm_breaker_record(&b, &cfg, 10, 0, 0);
        in = input(0, 0, 0, FM_HEALTH_DOWN, now);
        t = eval_change(&b, &cfg, &in, now);
        assert_trans(&t, FM_BREAKER_HALF_OPEN, FM_BREAKER_OPEN, FM_CAUSE_HEALTH_DOWN, now);
        assert_ev(&t.evidence, "open_s", 120);
        assert_ev(&t.evidence, "reopens", 2);
        assert_probes(&b, 0, 0, 0);
}

static void test_half_open_heartbeat(void **state)
{
        struct fm_breaker_config cfg = defaults();
        struct fm_breaker b;
        struct fm_breaker_input in;
        struct fm_breaker_transition t;
        fm_ms now;

        (void)state;
        now = fresh_half_open(&b, &cfg) + S(40);
        in = input(0, 0, 0, FM_HEALTH_OK, now - S(30)); /* == timeout */
        eval_nothing(&b, &cfg, &in, now);

        in = input(0, 0, 0, FM_HEALTH_OK, now - S(30) - 1);
        t = eval_change(&b, &cfg, &in, now);
        assert_trans(&t, FM_BREAKER_HALF_OPEN, FM_BREAKER_OPEN, FM_CAUSE_HEARTBEAT_LOST, now);
        assert_ev(&t.evidence, "silence_s", 30.001);
        assert_ev(&t.evidence, "heartbeat_timeout_s", 30);
        assert_ev(&t.evidence, "open_s", 60);
        assert_ev(&t.evidence, "reopens", 1);
        assert_int_equal(b.open_until, now + S(60));

        /* silence beats failing probes too, and still doubles */
        now = half_open_now(&b, &cfg) + S(1);
        fm_breaker_record(&b, &cfg, 10, 10, 10);
        in = input(0, 0, 0, FM_HEALTH_OK, now - S(100));
        t = eval_change(&b, &cfg, &in, now);
        assert_trans(&t, FM_BREAKER_HALF_OPEN, FM_BREAKER_OPEN, FM_CAUSE_HEARTBEAT_LOST, now);
        assert_ev(&t.evidence, "silence_s", 100);
        assert_ev(&t.evidence, "open_s", 120);
}

/* reopens saturates at UINT8_MAX and the duration stays at the cap. */
static void test_reopens_saturate(void **state)
{
        struct fm_breaker_config cfg = defaults();
        struct fm_breaker b;
        struct fm_breaker_input in;
        struct fm_breaker_transition t;
        fm_ms now;

        (void)state;
        fm_breaker_init(&b, T0);
        open_now(&b, &cfg, T0);
        for (unsigned i = 1; i <= 300; i++) {
                now = half_open_now(&b, &cfg) + 1;
                in = input(0, 0, 0, FM_HEALTH_DOWN, now);
                t = eval_change(&b, &cfg, &in, now);
                assert_int_equal(b.state, FM_BREAKER_OPEN);
                assert_int_equal(b.reopens, i < UINT8_MAX ? i : UINT8_MAX);
                assert_int_equal(b.open_for, i >= 5 ? S(600) : S(30) << i);
                assert_int_equal(b.open_until - now, b.open_for);
                assert_ev(&t.evidence, "open_s", (double)b.open_for / FM_MS_PER_S);
        }
        assert_int_equal(b.opens, 301);

        /* a close resets the doubling */
        now = half_open_now(&b, &cfg) + 1;
        fm_breaker_record(&b, &cfg, 10, 0, 0);
        in = quiet(now);
        (void)eval_change(&b, &cfg, &in, now);
        assert_int_equal(b.state, FM_BREAKER_CLOSED);
        assert_int_equal(b.reopens, 0);
        open_now(&b, &cfg, now + 1);
        assert_int_equal(b.open_for, S(30));
}

/*
 * The doubling must stop at open_max for any configuration that validates.
 * open_max = 9e18 ms passes validation; the 49th doubling of 30 s (8.4e18)
 * would overflow fm_ms, so the cap must be applied before multiplying.
 * reopens is set directly: reaching 48 through the API would first push
 * now + open_for past INT64_MAX.
 */
static void test_open_max_huge(void **state)
{
        struct fm_breaker_config cfg = defaults();
        struct fm_breaker b;
        struct fm_breaker_input in;
        struct fm_breaker_transition t;
        fm_ms now;

        (void)state;
        cfg.open_max = FM_BREAKER_OPEN_MAX_LIMIT + 1;
        assert_int_equal(fm_breaker_config_validate(&cfg), -EINVAL);
        cfg.open_max = FM_BREAKER_OPEN_MAX_LIMIT;
        assert_int_equal(fm_breaker_config_validate(&cfg), 0);
        now = fresh_half_open(&b, &cfg) + 1;
        b.reopens = 48;
        fm_breaker_record(&b, &cfg, 10, 10, 0);
        in = quiet(now);
        t = eval_change(&b, &cfg, &in, now);
        assert_trans(&t, FM_BREAKER_HALF_OPEN, FM_BREAKER_OPEN, FM_CAUSE_PROBES_FAILED, now);
        assert_int_equal(b.reopens, 49);
        assert_true(b.open_for == cfg.open_max);
        assert_true(b.open_until == now + cfg.open_max);
}

/* ---- operator -------------------------------------------------------------- */

static void assert_sticky(struct fm_breaker *b, const struct fm_breaker_config *cfg)
{
        struct fm_breaker_input in;
        fm_ms now = T0 + S(1);

        /* whatever the input and however long, no automatic transition */
        for (fm_ms dt = 0; dt <= S(100000); dt += S(997)) {
                in = input(1000, 1000, 1000, FM_HEALTH_DOWN, now + dt - S(86400));
                eval_nothing(b, cfg, &in, now + dt);
                in = input(0, 0, 0, FM_HEALTH_OK, now + dt);
                eval_nothing(b, cfg, &in, now + dt);
                in = input(20, 0, 0, FM_HEALTH_OK, now + dt - S(31));
                eval_nothing(b, cfg, &in, now + dt);
        }
        /* probe results are not admitted */
        fm_breaker_record(b, cfg, 10, 0, 0);
        assert_probes(b, 0, 0, 0);
}

static void test_override_sticky(void **state)
{
        static const struct {
                enum fm_breaker_op op;
                enum fm_breaker_state st;
                bool ejected;
        } c[] = {
                {FM_BREAKER_FORCE_OPEN, FM_BREAKER_FORCED_OPEN, true},
                {FM_BREAKER_DISABLE, FM_BREAKER_DISABLED, false},
        };
        struct fm_breaker_config cfg = defaults();

        (void)state;
        for (size_t k = 0; k < ARRAY_SIZE(c); k++) {
                struct fm_breaker b, before;
                struct fm_breaker_transition t;

                fm_breaker_init(&b, T0);
                fill_sentinel(&t);
                assert_int_equal(fm_breaker_force(&b, c[k].op, T0 + 5, &t), 1);
                assert_trans(&t, FM_BREAKER_CLOSED, c[k].st, FM_CAUSE_OPERATOR, T0 + 5);
                assert_int_equal(b.state, c[k].st);
                assert_int_equal(b.since, T0 + 5);
                assert_int_equal(fm_breaker_ejected(&b), c[k].ejected);
                assert_sticky(&b, &cfg);

                /* already there */
                before = b;
                fill_sentinel(&t);
                assert_int_equal(fm_breaker_force(&b, c[k].op, T0 + 6, &t), 0);
                assert_sentinel(&t);
                assert_breaker_equal(&b, &before);

                /* release */
                assert_int_equal(fm_breaker_force(&b, FM_BREAKER_RELEASE, T0 + 7, &t), 1);
                assert_trans(&t, c[k].st, FM_BREAKER_CLOSED, FM_CAUSE_OPERATOR, T0 + 7);
                assert_int_equal(b.state, FM_BREAKER_CLOSED);
                assert_int_equal(b.since, T0 + 7);
                assert_false(fm_breaker_ejected(&b));

                /* and it works as a breaker again */
                struct fm_breaker_input in = input(20, 10, 0, FM_HEALTH_OK, T0 + 8);
                t = eval_change(&b, &cfg, &in, T0 + 8);
                assert_trans(&t, FM_BREAKER_CLOSED, FM_BREAKER_OPEN, FM_CAUSE_FAILURE_RATE, T0 + 8);
        }
}

/* Every op from every state. */
static void test_force_matrix(void **state)
{
        static const struct {
                enum fm_breaker_state from;
                enum fm_breaker_op op;
                int want_r;
                enum fm_breaker_state want;
        } c[] = {
                {FM_BREAKER_CLOSED, FM_BREAKER_FORCE_OPEN, 1, FM_BREAKER_FORCED_OPEN},
                {FM_BREAKER_OPEN, FM_BREAKER_FORCE_OPEN, 1, FM_BREAKER_FORCED_OPEN},
                {FM_BREAKER_HALF_OPEN, FM_BREAKER_FORCE_OPEN, 1, FM_BREAKER_FORCED_OPEN},
                {FM_BREAKER_FORCED_OPEN, FM_BREAKER_FORCE_OPEN, 0, FM_BREAKER_FORCED_OPEN},
                {FM_BREAKER_DISABLED, FM_BREAKER_FORCE_OPEN, 1, FM_BREAKER_FORCED_OPEN},
                {FM_BREAKER_CLOSED, FM_BREAKER_DISABLE, 1, FM_BREAKER_DISABLED},
                {FM_BREAKER_OPEN, FM_BREAKER_DISABLE, 1, FM_BREAKER_DISABLED},
                {FM_BREAKER_HALF_OPEN, FM_BREAKER_DISABLE, 1, FM_BREAKER_DISABLED},
                {FM_BREAKER_FORCED_OPEN, FM_BREAKER_DISABLE, 1, FM_BREAKER_DISABLED},
                {FM_BREAKER_DISABLED, FM_BREAKER_DISABLE, 0, FM_BREAKER_DISABLED},
                {FM_BREAKER_CLOSED, FM_BREAKER_RELEASE, 0, FM_BREAKER_CLOSED},
                {FM_BREAKER_OPEN, FM_BREAKER_RELEASE, 0, FM_BREAKER_OPEN},
                {FM_BREAKER_HALF_OPEN, FM_BREAKER_RELEASE, 0, FM_BREAKER_HALF_OPEN},
                {FM_BREAKER_FORCED_OPEN, FM_BREAKER_RELEASE, 1, FM_BREAKER_CLOSED},
                {FM_BREAKER_DISABLED, FM_BREAKER_RELEASE, 1, FM_BREAKER_CLOSED},
        };
        struct fm_breaker_config cfg = defaults();

        (void)state;
        for (size_t k = 0; k < ARRAY_SIZE(c); k++) {
                struct fm_breaker b, before;
                struct fm_breaker_transition t;
                fm_ms now = T0 + S(1000);
                int r;

                put_in_state(&b, &cfg, c[k].from);
                if (c[k].from == FM_BREAKER_HALF_OPEN)
                        fm_breaker_record(&b, &cfg, 3, 1, 1);
                before = b;
                fill_sentinel(&t);
                r = fm_breaker_force(&b, c[k].op, now, &t);
                if (r != c[k].want_r || b.state != c[k].want)
                        fail_msg("case %zu (op %d from %s): r=%d state=%s, expected r=%d %s", k,
                                 (int)c[k].op, fm_breaker_state_name(c[k].from), r,
                                 fm_breaker_state_name(b.state), c[k].want_r,
                                 fm_breaker_state_name(c[k].want));
                if (r == 0) {
                        assert_sentinel(&t);
                        assert_breaker_equal(&b, &before);
                        continue;
                }
                assert_trans(&t, c[k].from, c[k].want, FM_CAUSE_OPERATOR, now);
                assert_int_equal(b.since, now);
                assert_int_equal(b.reopens, 0);
                assert_int_equal(b.opens, before.opens);
                assert_int_equal(fm_breaker_ejected(&b), c[k].want == FM_BREAKER_FORCED_OPEN);
        }
}

static void test_force_invalid_op(void **state)
{
        static const int bad_ops[] = {3, 4, 100, -1, INT32_MAX};
        static const enum fm_breaker_state states[] = {
                FM_BREAKER_CLOSED,      FM_BREAKER_OPEN,     FM_BREAKER_HALF_OPEN,
                FM_BREAKER_FORCED_OPEN, FM_BREAKER_DISABLED,
        };
        struct fm_breaker_config cfg = defaults();

        (void)state;
        for (size_t s = 0; s < ARRAY_SIZE(states); s++) {
                for (size_t k = 0; k < ARRAY_SIZE(bad_ops); k++) {
                        struct fm_breaker b, before;
                        struct fm_breaker_transition t;

                        put_in_state(&b, &cfg, states[s]);
                        before = b;
                        fill_sentinel(&t);
                        assert_int_equal(
                                fm_breaker_force(&b, (enum fm_breaker_op)bad_ops[k], T0 + S(1), &t),
                                -EINVAL);
                        assert_sentinel(&t);
                        assert_breaker_equal(&b, &before);
                }
        }
}

/* An operator override ends a re-open episode: the next opening starts at open_base. */
static void test_release_resets_backoff(void **state)
{
        static const enum fm_breaker_op ops[] = {FM_BREAKER_FORCE_OPEN, FM_BREAKER_DISABLE};
        struct fm_breaker_config cfg = defaults();

        (void)state;
        for (size_t k = 0; k < ARRAY_SIZE(ops); k++) {
                struct fm_breaker b;
                struct fm_breaker_input in;
                struct fm_breaker_transition t;
                fm_ms now = fresh_half_open(&b, &cfg) + 1;

                in = input(0, 0, 0, FM_HEALTH_DOWN, now);
                (void)eval_change(&b, &cfg, &in, now);
                assert_int_equal(b.open_for, S(60));
                assert_int_equal(fm_breaker_force(&b, ops[k], now + 1, &t), 1);
                assert_int_equal(fm_breaker_force(&b, FM_BREAKER_RELEASE, now + 2, &t), 1);
                in = input(0, 0, 0, FM_HEALTH_DOWN, now + 3);
                t = eval_change(&b, &cfg, &in, now + 3);
                assert_trans(&t, FM_BREAKER_CLOSED, FM_BREAKER_OPEN, FM_CAUSE_HEALTH_DOWN, now + 3);
                assert_int_equal(b.open_for, S(30));
                assert_ev(&t.evidence, "open_s", 30);
                assert_ev(&t.evidence, "reopens", 0);
        }
}

/* ---- counters and ejection --------------------------------------------------- */

static void test_opens_counter(void **state)
{
        struct fm_breaker_config cfg = defaults();
        struct fm_breaker b;
        struct fm_breaker_input in;
        fm_ms now;

        (void)state;
        fm_breaker_init(&b, T0);
        assert_int_equal(b.opens, 0);
        open_now(&b, &cfg, T0); /* closed -> open */
        assert_int_equal(b.opens, 1);
        now = half_open_now(&b, &cfg); /* half-opening is not an opening */
        assert_int_equal(b.opens, 1);
        fm_breaker_record(&b, &cfg, 10, 9, 0);
        in = quiet(now + 1);
        (void)eval_change(&b, &cfg, &in, now + 1); /* re-open */
        assert_int_equal(b.opens, 2);
        now = half_open_now(&b, &cfg);
        fm_breaker_record(&b, &cfg, 10, 0, 0);
        in = quiet(now + 1);
        (void)eval_change(&b, &cfg, &in, now + 1); /* close */
        assert_int_equal(b.opens, 2);
        in = input(50, 0, 0, FM_HEALTH_OK, now + 2);
        eval_nothing(&b, &cfg, &in, now + 2);
        assert_int_equal(b.opens, 2);
        in = input(0, 0, 0, FM_HEALTH_OK, now + 3 - S(31));
        (void)eval_change(&b, &cfg, &in, now + 3); /* heartbeat */
        assert_int_equal(b.opens, 3);
}

static void test_ejected(void **state)
{
        static const struct {
                enum fm_breaker_state s;
                bool ejected;
        } c[] = {
                {FM_BREAKER_CLOSED, false},    {FM_BREAKER_OPEN, true},
                {FM_BREAKER_HALF_OPEN, false}, {FM_BREAKER_FORCED_OPEN, true},
                {FM_BREAKER_DISABLED, false},
        };
        struct fm_breaker_config cfg = defaults();

        (void)state;
        for (size_t k = 0; k < ARRAY_SIZE(c); k++) {
                struct fm_breaker b;

                put_in_state(&b, &cfg, c[k].s);
                assert_int_equal(fm_breaker_ejected(&b), c[k].ejected);
        }
}

/* When evaluate returns 0, *ret is left alone, in every state. */
static void test_evaluate_ret_untouched(void **state)
{
        static const enum fm_breaker_state states[] = {
                FM_BREAKER_CLOSED,      FM_BREAKER_OPEN,     FM_BREAKER_HALF_OPEN,
                FM_BREAKER_FORCED_OPEN, FM_BREAKER_DISABLED,
        };
        struct fm_breaker_config cfg = defaults();

        (void)state;
        for (size_t k = 0; k < ARRAY_SIZE(states); k++) {
                struct fm_breaker b;
                struct fm_breaker_input in;
                fm_ms now = T0 + S(1);

                put_in_state(&b, &cfg, states[k]);
                if (states[k] == FM_BREAKER_HALF_OPEN)
                        now = b.since + 1;
                in = input(19, 19, 19, FM_HEALTH_OK, now);
                eval_nothing(&b, &cfg, &in, now);
        }
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_state_names),
                cmocka_unit_test(test_cause_names),
                cmocka_unit_test(test_config_default),
                cmocka_unit_test(test_config_validate_accepts_edges),
                cmocka_unit_test(test_config_validate_rejects),
                cmocka_unit_test(test_init),
                cmocka_unit_test(test_closed_rates_defaults),
                cmocka_unit_test(test_closed_rates_custom),
                cmocka_unit_test(test_closed_rates_threshold_one),
                cmocka_unit_test(test_closed_health),
                cmocka_unit_test(test_closed_heartbeat),
                cmocka_unit_test(test_closed_precedence),
                cmocka_unit_test(test_open_waits_then_half_opens),
                cmocka_unit_test(test_open_ignores_inputs),
                cmocka_unit_test(test_record_ignored_outside_half_open),
                cmocka_unit_test(test_record_accumulates_to_limit),
                cmocka_unit_test(test_record_partial_batch),
                cmocka_unit_test(test_record_rounding_huge_batch),
                cmocka_unit_test(test_half_open_probe_limit),
                cmocka_unit_test(test_half_open_decisions),
                cmocka_unit_test(test_backoff_cap),
                cmocka_unit_test(test_half_open_evidence_of_open),
                cmocka_unit_test(test_half_open_health_down),
                cmocka_unit_test(test_half_open_heartbeat),
                cmocka_unit_test(test_reopens_saturate),
                cmocka_unit_test(test_override_sticky),
                cmocka_unit_test(test_force_matrix),
                cmocka_unit_test(test_force_invalid_op),
                cmocka_unit_test(test_release_resets_backoff),
                cmocka_unit_test(test_opens_counter),
                cmocka_unit_test(test_ejected),
                cmocka_unit_test(test_evaluate_ret_untouched),
                /* last: under -fno-sanitize-recover its overflow ends the run */
                cmocka_unit_test(test_open_max_huge),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
