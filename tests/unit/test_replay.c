/* SPDX-License-Identifier: MIT */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "core.h"
#include "event.h"
#include "replay.h"

#define T0 ((fm_ms)1767225600000)
#define TICK 1000
#define BAD "web-2"

static void add(struct fm_replay_log *log, fm_ms t, const char *topic, const char *payload,
                bool controller)
{
        json_object *o = json_object_new_object();
        assert_non_null(o);
        json_object_object_add(o, "t", json_object_new_int64(t));
        json_object_object_add(o, "topic", json_object_new_string(topic));
        json_object_object_add(o, "payload", json_object_new_string(payload));
        if (controller)
                json_object_object_add(o, "source", json_object_new_string("controller"));
        const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
        assert_int_equal(fm_replay_log_add_line(log, s, strlen(s)), 0);
        json_object_put(o);
}

/*
 * Four instances of web report health at the start and one kpi each every
 * 500 ms for 40 s; from 20 s on, web-2 fails 90 % of its requests. Events
 * carry no ts: the decoder takes the receive time.
 */
static void fleet_log(struct fm_replay_log *log)
{
        char topic[128], payload[256];
        uint64_t seq[4] = {0};

        for (fm_ms t = T0; t <= T0 + 40000; t += 500)
                for (int k = 0; k < 4; k++) {
                        if (t == T0) {
                                snprintf(topic, sizeof(topic), "fleet/web/web-%d/health", k);
                                snprintf(payload, sizeof(payload),
                                         "{\"v\":1,\"seq\":%llu,\"version\":\"v1\",\"status\":"
                                         "\"ok\",\"ready\":true}",
                                         (unsigned long long)++seq[k]);
                                add(log, t, topic, payload, false);
                        }
                        bool bad = k == 2 && t >= T0 + 20000;
                        snprintf(topic, sizeof(topic), "fleet/web/web-%d/kpi", k);
                        snprintf(payload, sizeof(payload),
                                 "{\"v\":1,\"seq\":%llu,\"version\":\"v1\",\"interval_s\":0.5,"
                                 "\"requests\":50,\"errors\":%d,\"latency_ms\":{\"p50\":20,"
                                 "\"p95\":40,\"p99\":60}}",
                                 (unsigned long long)++seq[k], bad ? 45 : 0);
                        add(log, t, topic, payload, false);
                }
}

static struct fm_replay_result *replay(const struct fm_replay_log *log)
{
        struct fm_core_config core;
        struct fm_decoder_config dec;
        struct fm_replay_result *res = NULL;

        fm_core_config_default(&core);
        fm_decoder_config_default(&dec);
        struct fm_replay_options opt = {.core = &core, .decoder = &dec, .tick = TICK};
        assert_int_equal(fm_replay_run(log, &opt, &res), 0);
        assert_non_null(res);
        return res;
}

static void test_parse_lines(void **state)
{
        struct fm_replay_log log = {0};
        static const char ok[] = "{\"t\":5,\"topic\":\"fleet/a/b/kpi\",\"payload\":\"{}\"}\n";
        static const char dec[] =
                "{\"t\":6.4,\"topic\":\"fleet/a/_fleetmedic/decisions\",\"payload\":\"x\"}";
        (void)state;

        assert_int_equal(fm_replay_log_add_line(&log, ok, strlen(ok)), 0);
        assert_int_equal(fm_replay_log_add_line(&log, dec, strlen(dec)), 0);
        assert_int_equal(log.n, 2);
        assert_int_equal(log.entry[0].t, 5);
        assert_int_equal(log.entry[0].source, FM_REPLAY_EVENT);
        assert_string_equal(log.entry[0].payload, "{}");
        assert_int_equal(log.entry[1].t, 6);
        assert_int_equal(log.entry[1].source, FM_REPLAY_DECISION);

        static const char *const bad[] = {
                "",
                "[]",
                "{\"t\":1}",
                "{\"t\":\"1\",\"topic\":\"a\",\"payload\":\"b\"}",
                "{\"t\":1,\"topic\":\"a\",\"payload\":{}}",
                "{\"t\":1,\"topic\":\"a\",\"payload\":\"b\"} x",
        };
        for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++)
                assert_int_equal(fm_replay_log_add_line(&log, bad[k], strlen(bad[k])), -EBADMSG);
        assert_int_equal(log.n, 2);
        assert_int_equal(log.bad_lines, sizeof(bad) / sizeof(bad[0]));
        fm_replay_log_done(&log);
        assert_int_equal(log.n, 0);
}

static void test_decisions_of_a_failing_instance(void **state)
{
        struct fm_replay_log log = {0};
        (void)state;

        fleet_log(&log);
        struct fm_replay_result *res = replay(&log);
        assert_int_equal(res->events, log.n);
        assert_int_equal(res->applied, log.n);
        /* the clock runs from the first event to the last, one tick a second */
        assert_int_equal(res->ticks, 40);
        assert_int_equal(res->n_recorded, 0);

        bool opened = false, restart = false;
        for (uint32_t k = 0; k < res->n_decisions; k++) {
                const struct fm_replay_decision *d = &res->decision[k];
                assert_true(d->ts > T0 + 20000 && d->ts <= T0 + 40000);
                assert_int_equal(d->ts % TICK, 0);
                if (d->instance[0])
                        assert_string_equal(d->instance, BAD);
                assert_string_equal(d->deployment, "web");
                if (d->transition && strcmp(d->action, "open") == 0) {
                        assert_false(opened);
                        opened = true;
                        assert_non_null(strstr(d->record, "\"cause\":\"failure_rate\""));
                }
                if (!d->transition && strcmp(d->action, "restart") == 0) {
                        restart = true;
                        assert_string_equal(d->policy, "breaker");
                        /* replay is always dry-run: nothing is approved */
                        if (strcmp(d->verdict, "approved") == 0)
                                fail_msg("%s", d->record);
                }
        }
        assert_true(opened);
        assert_true(restart);
        fm_replay_result_free(res);
        fm_replay_log_done(&log);
}

static void test_deterministic(void **state)
{
        struct fm_replay_log log = {0};
        (void)state;

        fleet_log(&log);
        struct fm_replay_result *a = replay(&log), *b = replay(&log);
        assert_true(a->n_decisions > 0);
        assert_int_equal(a->n_decisions, b->n_decisions);
        for (uint32_t k = 0; k < a->n_decisions; k++)
                assert_string_equal(a->decision[k].record, b->decision[k].record);
        fm_replay_result_free(a);
        fm_replay_result_free(b);
        fm_replay_log_done(&log);
}

/* A log holding the decisions a replay makes is reproduced; an altered one is not. */
static void test_compare(void **state)
{
        struct fm_replay_log log = {0};
        (void)state;

        fleet_log(&log);
        struct fm_replay_result *first = replay(&log);
        uint32_t n = first->n_decisions;
        assert_true(n >= 2);
        for (uint32_t k = 0; k < n; k++)
                add(&log, first->decision[k].ts + 3, "fleet/web/_fleetmedic/decisions",
                    first->decision[k].record, false);
        struct fm_replay_result *same = replay(&log);
        assert_int_equal(same->n_recorded, n);
        assert_int_equal(same->n_decisions, n);
        assert_int_equal(same->matched, n);
        assert_int_equal(same->missing, 0);
        assert_int_equal(same->extra, 0);
        for (uint32_t k = 0; k < n; k++)
                assert_int_equal(same->recorded[k].match, (int32_t)k);
        fm_replay_result_free(same);

        /* the first recorded decision about the bad instance names another one */
        char *at = NULL;
        for (size_t k = log.n - n; !at && k < log.n; k++)
                at = strstr(log.entry[k].payload, "\"instance\":\"" BAD "\"");
        assert_non_null(at);
        at[strlen("\"instance\":\"web-")] = '1';
        struct fm_replay_result *other = replay(&log);
        assert_int_equal(other->matched, n - 1);
        assert_int_equal(other->missing, 1);
        assert_int_equal(other->extra, 1);
        fm_replay_result_free(other);
        fm_replay_result_free(first);
        fm_replay_log_done(&log);
}

/* A recorded decision off the one-second grid moves the replay's tick there. */
static void test_tick_follows_recorded_ticks(void **state)
{
        struct fm_replay_log log = {0};
        (void)state;

        fleet_log(&log);
        struct fm_replay_result *first = replay(&log);
        assert_true(first->n_decisions > 0);
        const struct fm_replay_decision *d0 = &first->decision[0];
        fm_ms live = d0->ts + 300; /* the live controller ticked 300 ms late */
        char *rec = strdup(d0->record);
        assert_non_null(rec);
        char ts[64];
        snprintf(ts, sizeof(ts), "\"ts\":%lld.%03lld", (long long)(d0->ts / 1000),
                 (long long)(d0->ts % 1000));
        char *at = strstr(rec, ts);
        assert_non_null(at);
        char moved[64];
        snprintf(moved, sizeof(moved), "\"ts\":%lld.%03lld", (long long)(live / 1000),
                 (long long)(live % 1000));
        assert_int_equal(strlen(moved), strlen(ts));
        memcpy(at, moved, strlen(moved));
        add(&log, live + 5, "fleet/web/_fleetmedic/decisions", rec, false);
        free(rec);

        struct fm_replay_result *res = replay(&log);
        assert_true(res->n_decisions > 0);
        assert_int_equal(res->decision[0].ts, live);
        assert_int_equal(res->matched, 1);
        assert_int_equal(res->missing, 0);
        fm_replay_result_free(res);
        fm_replay_result_free(first);
        fm_replay_log_done(&log);
}

static void test_rejections_counted(void **state)
{
        struct fm_replay_log log = {0};
        (void)state;

        add(&log, T0, "fleet/web/web-0/kpi", "{\"v\":1,\"requests\":1,\"errors\":2}", false);
        add(&log, T0 + 1, "fleet/web/web-0/kpi", "not json", false);
        add(&log, T0 + 2, "other/web/web-0/kpi", "{\"v\":1}", false);
        struct fm_replay_result *res = replay(&log);
        assert_int_equal(res->events, 3);
        assert_int_equal(res->applied, 0);
        assert_int_equal(res->rejected[FM_REJECT_ERRORS_EXCEED_REQUESTS], 1);
        assert_int_equal(res->rejected[FM_REJECT_MALFORMED_JSON], 1);
        assert_int_equal(res->rejected[FM_REJECT_BAD_TOPIC], 1);
        assert_int_equal(res->n_decisions, 0);
        fm_replay_result_free(res);
        fm_replay_log_done(&log);
}

static void test_bad_options(void **state)
{
        struct fm_replay_log log = {0};
        struct fm_core_config core;
        struct fm_decoder_config dec;
        struct fm_replay_result *res = NULL;
        (void)state;

        fm_core_config_default(&core);
        fm_decoder_config_default(&dec);
        struct fm_replay_options opt = {.core = &core, .decoder = &dec, .tick = 0};
        assert_int_equal(fm_replay_run(&log, &opt, &res), -EINVAL);
        assert_null(res);
        opt.tick = TICK;
        assert_int_equal(fm_replay_run(&log, &opt, &res), 0);
        assert_int_equal(res->n_decisions, 0);
        assert_int_equal(res->ticks, 0);
        fm_replay_result_free(res);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_parse_lines),
                cmocka_unit_test(test_decisions_of_a_failing_instance),
                cmocka_unit_test(test_deterministic),
                cmocka_unit_test(test_compare),
                cmocka_unit_test(test_tick_follows_recorded_ticks),
                cmocka_unit_test(test_rejections_counted),
                cmocka_unit_test(test_bad_options),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
