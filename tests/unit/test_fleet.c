/* SPDX-License-Identifier: MIT */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "fleet.h"

#define S(x) ((fm_ms)(x)*FM_MS_PER_S)
#define T0 S(1767225600)

struct fixture {
        struct fm_fleet_config cfg;
        struct fm_fleet *fleet;
        struct fm_event *ev;
};

static int setup(void **state)
{
        struct fixture *fx = calloc(1, sizeof(*fx));
        assert_non_null(fx);
        fx->ev = calloc(1, sizeof(*fx->ev));
        assert_non_null(fx->ev);
        fm_fleet_config_default(&fx->cfg);
        assert_int_equal(fm_fleet_new(&fx->cfg, &fx->fleet), 0);
        *state = fx;
        return 0;
}

static int teardown(void **state)
{
        struct fixture *fx = *state;
        fm_fleet_free(fx->fleet);
        free(fx->ev);
        free(fx);
        return 0;
}

/* Recreates the fleet with a modified configuration. */
static void reconfigure(struct fixture *fx)
{
        fm_fleet_free(fx->fleet);
        assert_int_equal(fm_fleet_new(&fx->cfg, &fx->fleet), 0);
}

static struct fm_event *event(struct fixture *fx, enum fm_event_kind kind, const char *dep,
                              const char *inst, const char *version, fm_ms ts)
{
        struct fm_event *ev = fx->ev;
        memset(ev, 0, sizeof(*ev));
        ev->kind = kind;
        strcpy(ev->deployment, dep);
        strcpy(ev->instance, inst);
        if (version) {
                strcpy(ev->version, version);
                ev->fields |= FM_F_VERSION;
        }
        ev->ts = ts;
        ev->fields |= FM_F_TS;
        return ev;
}

static struct fm_event *kpi(struct fixture *fx, const char *dep, const char *inst, fm_ms ts,
                            uint64_t requests, uint64_t errors)
{
        struct fm_event *ev = event(fx, FM_EVENT_KPI, dep, inst, "v1", ts);
        ev->requests = requests;
        ev->errors = errors;
        ev->fields |= FM_F_REQUESTS | FM_F_ERRORS;
        return ev;
}

static struct fm_event *health(struct fixture *fx, const char *dep, const char *inst, fm_ms ts,
                               enum fm_health_status st)
{
        struct fm_event *ev = event(fx, FM_EVENT_HEALTH, dep, inst, "v1", ts);
        ev->status = st;
        return ev;
}

static int apply(struct fixture *fx, enum fm_reject *why)
{
        enum fm_reject dummy = FM_REJECT_NONE;
        return fm_fleet_apply(fx->fleet, fx->ev, why ? why : &dummy);
}

static void test_first_event_creates_tree(void **state)
{
        struct fixture *fx = *state;

        kpi(fx, "a", "a-0", T0, 10, 1);
        assert_int_equal(apply(fx, NULL), 0);
        kpi(fx, "a", "a-1", T0, 10, 0);
        assert_int_equal(apply(fx, NULL), 0);
        kpi(fx, "b", "b-0", T0, 10, 0);
        assert_int_equal(apply(fx, NULL), 0);

        struct fm_fleet *f = fx->fleet;
        assert_int_equal(f->n_deployments, 2);
        assert_int_equal(f->n_versions, 2);
        assert_int_equal(f->n_instances, 3);

        struct fm_deployment *a = fm_fleet_find_deployment(f, "a");
        assert_non_null(a);
        assert_string_equal(f->deployments->name, "a");
        assert_string_equal(f->deployments->next->name, "b");
        assert_null(fm_fleet_find_deployment(f, "c"));

        struct fm_instance *i = fm_deployment_find_instance(a, "a-1");
        assert_non_null(i);
        assert_ptr_equal(i->deployment, a);
        assert_string_equal(i->version->name, "v1");
        assert_int_equal(a->n_instances, 2);
        assert_string_equal(a->instances->name, "a-0");
        assert_string_equal(a->instances->next->name, "a-1");
        assert_int_equal(fm_deployment_find_version(a, "v1")->n_instances, 2);
        assert_int_equal(f->stats.accepted[FM_EVENT_KPI], 3);

        struct fm_instance *a0 = fm_deployment_find_instance(a, "a-0");
        assert_int_equal(a0->requests_total, 10);
        assert_int_equal(a0->errors_total, 1);
        assert_int_equal(a0->version->requests_total, 20);
}

static void test_version_moves(void **state)
{
        struct fixture *fx = *state;
        struct fm_fleet *f = fx->fleet;

        /* no version at first: the unversioned bucket */
        event(fx, FM_EVENT_HEALTH, "a", "a-0", NULL, T0)->status = FM_HEALTH_OK;
        assert_int_equal(apply(fx, NULL), 0);
        struct fm_deployment *d = fm_fleet_find_deployment(f, "a");
        struct fm_instance *i = fm_deployment_find_instance(d, "a-0");
        assert_string_equal(i->version->name, "");

        event(fx, FM_EVENT_HEALTH, "a", "a-0", "v7", T0 + 1)->status = FM_HEALTH_OK;
        assert_int_equal(apply(fx, NULL), 0);
        assert_string_equal(i->version->name, "v7");
        assert_int_equal(fm_deployment_find_version(d, "")->n_instances, 0);
        assert_int_equal(fm_deployment_find_version(d, "v7")->n_instances, 1);

        /* an event without a version keeps it where it is */
        event(fx, FM_EVENT_HEALTH, "a", "a-0", NULL, T0 + 2)->status = FM_HEALTH_OK;
        assert_int_equal(apply(fx, NULL), 0);
        assert_string_equal(i->version->name, "v7");

        event(fx, FM_EVENT_HEALTH, "a", "a-0", "v8", T0 + 3)->status = FM_HEALTH_OK;
        assert_int_equal(apply(fx, NULL), 0);
        assert_string_equal(i->version->name, "v8");
        assert_int_equal(fm_deployment_find_version(d, "v7")->n_instances, 0);
        assert_ptr_equal(fm_deployment_find_version(d, "v8")->instances, i);
        assert_int_equal(d->n_versions, 3);
}

static void test_caps_reject_without_change(void **state)
{
        struct fixture *fx = *state;
        fx->cfg.max_deployments = 2;
        fx->cfg.max_versions = 3;
        fx->cfg.max_versions_per_deployment = 2;
        fx->cfg.max_instances = 4;
        fx->cfg.max_instances_per_deployment = 3;
        reconfigure(fx);
        struct fm_fleet *f = fx->fleet;
        enum fm_reject why;

        kpi(fx, "a", "a-0", T0, 1, 0);
        assert_int_equal(apply(fx, NULL), 0);
        kpi(fx, "b", "b-0", T0, 1, 0);
        assert_int_equal(apply(fx, NULL), 0);

        kpi(fx, "c", "c-0", T0, 1, 0);
        assert_int_equal(apply(fx, &why), -EBADMSG);
        assert_int_equal(why, FM_REJECT_DEPLOYMENT_CAP);
        assert_null(fm_fleet_find_deployment(f, "c"));
        assert_int_equal(f->n_deployments, 2);

        /* per-deployment version cap: a has v1, v2 may come, v3 may not */
        event(fx, FM_EVENT_KPI, "a", "a-1", "v2", T0);
        assert_int_equal(apply(fx, NULL), 0);
        event(fx, FM_EVENT_KPI, "a", "a-2", "v3", T0);
        assert_int_equal(apply(fx, &why), -EBADMSG);
        assert_int_equal(why, FM_REJECT_VERSION_CAP);
        /* the instance of the rejected event was not created either */
        assert_null(fm_deployment_find_instance(fm_fleet_find_deployment(f, "a"), "a-2"));

        /* global version cap: three exist (a/v1, a/v2, b/v1) */
        event(fx, FM_EVENT_KPI, "b", "b-0", "v9", T0);
        assert_int_equal(apply(fx, &why), -EBADMSG);
        assert_int_equal(why, FM_REJECT_VERSION_CAP);
        assert_string_equal(
                fm_deployment_find_instance(fm_fleet_find_deployment(f, "b"), "b-0")->version->name,
                "v1");

        /* per-deployment instance cap 3 */
        kpi(fx, "a", "a-2", T0, 1, 0);
        assert_int_equal(apply(fx, NULL), 0);
        kpi(fx, "a", "a-3", T0, 1, 0);
        assert_int_equal(apply(fx, &why), -EBADMSG);
        assert_int_equal(why, FM_REJECT_INSTANCE_CAP);

        /* global instance cap 4: a-0, a-1, a-2, b-0 */
        kpi(fx, "b", "b-1", T0, 1, 0);
        assert_int_equal(apply(fx, &why), -EBADMSG);
        assert_int_equal(why, FM_REJECT_INSTANCE_CAP);
        assert_int_equal(f->n_instances, 4);

        /* known names still pass */
        kpi(fx, "b", "b-0", T0 + 1, 1, 0);
        assert_int_equal(apply(fx, NULL), 0);

        assert_int_equal(f->stats.rejected[FM_REJECT_DEPLOYMENT_CAP], 1);
        assert_int_equal(f->stats.rejected[FM_REJECT_VERSION_CAP], 2);
        assert_int_equal(f->stats.rejected[FM_REJECT_INSTANCE_CAP], 2);
}

static void test_flood_of_names_is_bounded(void **state)
{
        struct fixture *fx = *state;
        fx->cfg.max_instances = 100;
        reconfigure(fx);
        char name[32];

        for (int k = 0; k < 5000; k++) {
                snprintf(name, sizeof(name), "x-%d", k);
                kpi(fx, k % 2 ? "a" : "b", name, T0, 1, 0);
                (void)apply(fx, NULL);
        }
        assert_int_equal(fx->fleet->n_instances, 100);
        assert_int_equal(fx->fleet->stats.rejected[FM_REJECT_INSTANCE_CAP], 4900);
}

static void test_duplicates(void **state)
{
        struct fixture *fx = *state;
        enum fm_reject why;
        struct fm_event *ev;

        ev = kpi(fx, "a", "a-0", T0 + 10, 5, 0);
        ev->seq = 7;
        ev->fields |= FM_F_SEQ;
        assert_int_equal(apply(fx, NULL), 0);

        /* redelivery: same seq, same ts */
        assert_int_equal(apply(fx, &why), -EBADMSG);
        assert_int_equal(why, FM_REJECT_DUPLICATE);

        /* older message arriving late */
        ev = kpi(fx, "a", "a-0", T0 + 9, 5, 0);
        ev->seq = 6;
        ev->fields |= FM_F_SEQ;
        assert_int_equal(apply(fx, &why), -EBADMSG);
        assert_int_equal(why, FM_REJECT_DUPLICATE);

        /* no ts in the payload: seq alone decides */
        ev = kpi(fx, "a", "a-0", T0 + 60, 5, 0);
        ev->fields &= ~(uint32_t)FM_F_TS;
        ev->seq = 7;
        ev->fields |= FM_F_SEQ;
        assert_int_equal(apply(fx, &why), -EBADMSG);

        /* the instance restarted: seq starts over, ts is newer */
        ev = kpi(fx, "a", "a-0", T0 + 11, 5, 0);
        ev->seq = 0;
        ev->fields |= FM_F_SEQ;
        assert_int_equal(apply(fx, NULL), 0);
        ev->seq = 1;
        ev->ts = T0 + 12;
        assert_int_equal(apply(fx, NULL), 0);

        /* no seq: never a duplicate */
        kpi(fx, "a", "a-0", T0 + 5, 5, 0);
        assert_int_equal(apply(fx, NULL), 0);

        struct fm_instance *i =
                fm_deployment_find_instance(fm_fleet_find_deployment(fx->fleet, "a"), "a-0");
        assert_int_equal(i->requests_total, 20);
        assert_int_equal(fx->fleet->stats.rejected[FM_REJECT_DUPLICATE], 3);
}

static void test_forget_and_retention(void **state)
{
        struct fixture *fx = *state;
        struct fm_fleet *f = fx->fleet;

        kpi(fx, "a", "a-0", T0, 5, 0);
        assert_int_equal(apply(fx, NULL), 0);
        kpi(fx, "a", "a-1", T0 + S(100), 5, 0);
        assert_int_equal(apply(fx, NULL), 0);

        assert_int_equal(fm_fleet_tick(f, T0 + fx->cfg.forget_after, NULL, NULL), 0);
        assert_int_equal(f->n_instances, 2);
        assert_int_equal(fm_fleet_tick(f, T0 + fx->cfg.forget_after + 1, NULL, NULL), 0);
        assert_int_equal(f->n_instances, 1);
        assert_int_equal(f->stats.instances_forgotten, 1);
        struct fm_deployment *d = fm_fleet_find_deployment(f, "a");
        assert_null(fm_deployment_find_instance(d, "a-0"));
        assert_non_null(fm_deployment_find_instance(d, "a-1"));

        fm_ms gone = T0 + S(100) + fx->cfg.forget_after + 1;
        assert_int_equal(fm_fleet_tick(f, gone, NULL, NULL), 0);
        assert_int_equal(f->n_instances, 0);
        /* the empty version is kept as a baseline */
        assert_int_equal(f->n_versions, 1);
        assert_non_null(fm_fleet_find_deployment(f, "a"));

        fm_ms expired = T0 + S(100) + fx->cfg.version_retention + 1;
        assert_int_equal(fm_fleet_tick(f, expired, NULL, NULL), 0);
        assert_int_equal(f->n_versions, 0);
        assert_int_equal(f->n_deployments, 0);
        assert_null(fm_fleet_find_deployment(f, "a"));
        assert_int_equal(f->stats.versions_forgotten, 1);

        /* it comes back as new */
        kpi(fx, "a", "a-0", expired, 5, 0);
        assert_int_equal(apply(fx, NULL), 0);
        assert_int_equal(f->n_instances, 1);
}

static void test_slow_calls_from_hist(void **state)
{
        struct fixture *fx = *state;
        struct fm_event *ev = event(fx, FM_EVENT_KPI, "a", "a-0", "v1", T0);
        struct fm_hist *h = &ev->latency_hist;
        const double bounds[] = {100, 500, 1000, 2000};
        const uint64_t counts[] = {10, 20, 30, 40, 50};

        ev->fields |= FM_F_LATENCY_HIST;
        h->n = 4;
        memcpy(h->bound, bounds, sizeof(bounds));
        memcpy(h->count, counts, sizeof(counts));

        /* threshold on a bound: buckets above it count fully, +Inf included */
        assert_int_equal(fm_event_slow_calls(ev, 1000), 40 + 50);
        /* halfway through (1000, 2000]: half of 40 */
        assert_int_equal(fm_event_slow_calls(ev, 1500), 20 + 50);
        /* in the first bucket (0, 100]: 3/4 of 10 rounds to 8 */
        assert_int_equal(fm_event_slow_calls(ev, 25), 8 + 20 + 30 + 40 + 50);
        /* at the last bound only the +Inf bucket is slow; above it, nothing can be told */
        assert_int_equal(fm_event_slow_calls(ev, 2000), 50);
        assert_int_equal(fm_event_slow_calls(ev, 5000), 0);
}

static void test_slow_calls_from_summary(void **state)
{
        struct fixture *fx = *state;
        struct fm_event *ev = kpi(fx, "a", "a-0", T0, 1000, 0);

        ev->fields |= FM_F_LATENCY_MS;
        ev->p50_ms = 100;
        ev->p95_ms = 500;
        ev->p99_ms = 900;
        assert_int_equal(fm_event_slow_calls(ev, 900), 0);
        assert_int_equal(fm_event_slow_calls(ev, 5000), 0);
        assert_int_equal(fm_event_slow_calls(ev, 500), 50);
        assert_int_equal(fm_event_slow_calls(ev, 700), 30); /* cdf .97 */
        assert_int_equal(fm_event_slow_calls(ev, 100), 500);
        assert_int_equal(fm_event_slow_calls(ev, 50), 750);  /* cdf .25 */
        assert_int_equal(fm_event_slow_calls(ev, 300), 275); /* cdf .725 */

        /* no request count: nothing to scale */
        ev->fields &= ~(uint32_t)FM_F_REQUESTS;
        assert_int_equal(fm_event_slow_calls(ev, 100), 0);
}

static void test_kpi_feeds_window_sketch_gauges(void **state)
{
        struct fixture *fx = *state;
        struct fm_event *ev = kpi(fx, "a", "a-0", T0, 100, 10);
        struct fm_hist *h = &ev->latency_hist;

        ev->fields |= FM_F_LATENCY_HIST | FM_F_GAUGE(FM_GAUGE_GPU_UTIL);
        h->n = 2;
        h->bound[0] = 100;
        h->bound[1] = 2000;
        h->count[0] = 40;
        h->count[1] = 30;
        h->count[2] = 30;
        ev->gauge[FM_GAUGE_GPU_UTIL] = 0.75;
        assert_int_equal(apply(fx, NULL), 0);

        struct fm_deployment *d = fm_fleet_find_deployment(fx->fleet, "a");
        struct fm_instance *i = fm_deployment_find_instance(d, "a-0");
        uint64_t sum[_FM_CTR_MAX];
        fm_window_sums(&i->window, T0, sum);
        assert_int_equal(sum[FM_CTR_REQUESTS], 100);
        assert_int_equal(sum[FM_CTR_ERRORS], 10);
        /* 1000 ms threshold: 30 * (2000-1000)/(2000-100) = 15.8 -> 16, plus 30 */
        assert_int_equal(sum[FM_CTR_SLOW], 46);
        assert_int_equal(i->version->slow_total, 46);

        assert_true(i->gauge[FM_GAUGE_GPU_UTIL].valid);
        assert_true(fabs(i->gauge[FM_GAUGE_GPU_UTIL].value - 0.75) < 1e-12);
        assert_false(i->gauge[FM_GAUGE_CPU].valid);

        assert_int_equal(i->version->latency_total.count, 100);
        double p50;
        assert_int_equal(fm_sketch_quantile(&i->version->latency_total, 0.5, &p50), 0);
        assert_true(p50 > 100 && p50 <= 2000);

        /* a histogram without a request count still counts its requests */
        ev = event(fx, FM_EVENT_KPI, "a", "a-0", "v1", T0 + 1);
        ev->fields |= FM_F_LATENCY_HIST;
        ev->latency_hist.n = 1;
        ev->latency_hist.bound[0] = 10;
        ev->latency_hist.count[0] = 3;
        ev->latency_hist.count[1] = 2;
        assert_int_equal(apply(fx, NULL), 0);
        fm_window_sums(&i->window, T0 + 1, sum);
        assert_int_equal(sum[FM_CTR_REQUESTS], 105);
}

static void test_burn_windows_and_scores(void **state)
{
        struct fixture *fx = *state;
        uint64_t r[_FM_CTR_MAX];

        /* one kpi a minute for ten minutes, 100 requests, the last three with 10 errors */
        for (int m = 0; m < 10; m++) {
                struct fm_event *ev = kpi(fx, "a", "a-0", T0 + S(60 * m), 100, m >= 7 ? 10 : 0);
                if (m == 0) {
                        ev->fields |= FM_F_SCORE_HIST;
                        ev->score_hist.n = 1;
                        ev->score_hist.bound[0] = 0.5;
                        ev->score_hist.count[0] = 30; /* (.., 0.5]: spread over [0, 0.5] */
                        ev->score_hist.count[1] = 10; /* (0.5, +Inf): spread over [0.5, 1] */
                }
                assert_int_equal(apply(fx, NULL), 0);
        }
        struct fm_version *v =
                fm_deployment_find_version(fm_fleet_find_deployment(fx->fleet, "a"), "v1");
        fm_ms now = T0 + S(60 * 9 + 30);
        fm_window_recent(&v->burn_fine, now, 5, r); /* the last five minutes */
        assert_int_equal(r[FM_CTR_REQUESTS], 500);
        assert_int_equal(r[FM_CTR_ERRORS], 30);
        fm_window_recent(&v->burn_fine, now, 60, r); /* the hour */
        assert_int_equal(r[FM_CTR_REQUESTS], 1000);
        fm_window_recent(&v->burn_coarse, now, 60, r);
        assert_int_equal(r[FM_CTR_REQUESTS], 1000);

        assert_int_equal(v->score_events, 1);
        double total = 0;
        for (int k = 0; k < FM_SCORE_BINS; k++)
                total += v->score_bins[k];
        assert_true(fabs(total - 40) < 1e-9);
        assert_true(fabs(v->score_bins[0] - 6) < 1e-9); /* 30 over five bins */
        assert_true(fabs(v->score_bins[9] - 2) < 1e-9); /* 10 over five bins */
}

static void test_health_order(void **state)
{
        struct fixture *fx = *state;

        health(fx, "a", "a-0", T0 + 10, FM_HEALTH_DOWN);
        strcpy(fx->ev->reason, "oom");
        assert_int_equal(apply(fx, NULL), 0);
        struct fm_instance *i =
                fm_deployment_find_instance(fm_fleet_find_deployment(fx->fleet, "a"), "a-0");
        assert_int_equal(i->health, FM_HEALTH_DOWN);
        assert_false(i->ready);
        assert_string_equal(i->health_reason, "oom");

        /* an older report does not override a newer one */
        health(fx, "a", "a-0", T0 + 5, FM_HEALTH_OK);
        assert_int_equal(apply(fx, NULL), 0);
        assert_int_equal(i->health, FM_HEALTH_DOWN);

        health(fx, "a", "a-0", T0 + 11, FM_HEALTH_DEGRADED);
        fx->ev->ready = false;
        fx->ev->fields |= FM_F_READY;
        assert_int_equal(apply(fx, NULL), 0);
        assert_int_equal(i->health, FM_HEALTH_DEGRADED);
        assert_false(i->ready);
        assert_string_equal(i->health_reason, "");
        assert_int_equal(i->last_seen, T0 + 11);
}

static void test_feedback(void **state)
{
        struct fixture *fx = *state;
        struct fm_event *ev = event(fx, FM_EVENT_FEEDBACK, "a", "a-0", "v1", T0);
        ev->n_outcomes = 3;
        ev->outcome[0] = (struct fm_outcome){0.9, 1};
        ev->outcome[1] = (struct fm_outcome){0.2, 0};
        ev->outcome[2] = (struct fm_outcome){0.7, 1};
        assert_int_equal(apply(fx, NULL), 0);
        struct fm_version *v =
                fm_deployment_find_version(fm_fleet_find_deployment(fx->fleet, "a"), "v1");
        assert_int_equal(v->outcomes_total, 3);
        assert_int_equal(v->positives_total, 2);
        assert_int_equal(fx->fleet->stats.accepted[FM_EVENT_FEEDBACK], 1);
}

static void test_outcome_ring(void **state)
{
        struct fixture *fx = *state;
        fx->cfg.outcomes_per_version = 4;
        reconfigure(fx);
        struct fm_outcome out[8];

        for (int round = 0; round < 2; round++) {
                struct fm_event *ev =
                        event(fx, FM_EVENT_FEEDBACK, "a", "a-0", "v1", T0 + S(10 * round));
                ev->n_outcomes = 3;
                for (int k = 0; k < 3; k++)
                        ev->outcome[k] = (struct fm_outcome){0.25 * k + round * 0.125,
                                                             (uint8_t)((k + round) % 2)};
                assert_int_equal(apply(fx, NULL), 0);
        }
        struct fm_version *v =
                fm_deployment_find_version(fm_fleet_find_deployment(fx->fleet, "a"), "v1");
        assert_int_equal(v->outcomes_total, 6);
        assert_int_equal(v->outcomes.n, 4);

        /* the four newest, oldest first: round 0's last, then round 1's three */
        assert_int_equal(fm_version_outcomes(v, T0, out, 8), 4);
        assert_true(fabs(out[0].score - 0.5) < 1e-6 && out[0].label == 0);
        assert_true(fabs(out[1].score - 0.125) < 1e-6 && out[1].label == 1);
        assert_true(fabs(out[3].score - 0.625) < 1e-6 && out[3].label == 1);
        /* only round 1 is at or after T0 + 10 s */
        assert_int_equal(fm_version_outcomes(v, T0 + S(10), out, 8), 3);
        /* max bounds the copy, keeping the newest */
        assert_int_equal(fm_version_outcomes(v, T0, out, 2), 2);
        assert_true(fabs(out[0].score - 0.375) < 1e-6);
        assert_true(fabs(out[1].score - 0.625) < 1e-6);

        /* with 0 kept, only the totals count */
        fx->cfg.outcomes_per_version = 0;
        reconfigure(fx);
        event(fx, FM_EVENT_FEEDBACK, "a", "a-0", "v1", T0)->n_outcomes = 1;
        fx->ev->outcome[0] = (struct fm_outcome){0.9, 1};
        assert_int_equal(apply(fx, NULL), 0);
        v = fm_deployment_find_version(fm_fleet_find_deployment(fx->fleet, "a"), "v1");
        assert_int_equal(v->outcomes_total, 1);
        assert_int_equal(fm_version_outcomes(v, T0, out, 8), 0);
}

struct collected {
        struct fm_transition t[16];
        int n;
};

static int collect(void *userdata, const struct fm_transition *t)
{
        struct collected *c = userdata;
        if (c->n < 16)
                c->t[c->n++] = *t;
        return 0;
}

static void test_breaker_through_tick(void **state)
{
        struct fixture *fx = *state;
        struct fm_fleet *f = fx->fleet;
        struct collected c = {0};

        /* 30 requests, 20 errors: over 50 % with more than 20 requests */
        kpi(fx, "a", "a-0", T0, 30, 20);
        assert_int_equal(apply(fx, NULL), 0);
        kpi(fx, "a", "a-1", T0, 30, 0);
        assert_int_equal(apply(fx, NULL), 0);
        assert_int_equal(fm_fleet_tick(f, T0 + S(1), collect, &c), 0);
        assert_int_equal(c.n, 1);
        assert_string_equal(c.t[0].deployment, "a");
        assert_string_equal(c.t[0].instance, "a-0");
        assert_string_equal(c.t[0].version, "v1");
        assert_int_equal(c.t[0].t.to, FM_BREAKER_OPEN);
        assert_int_equal(c.t[0].t.cause, FM_CAUSE_FAILURE_RATE);
        assert_int_equal(c.t[0].opens, 1);

        /* half-open after 30 s; probes arrive with the next kpi */
        c.n = 0;
        kpi(fx, "a", "a-0", T0 + S(30), 1, 0);
        assert_int_equal(apply(fx, NULL), 0);
        kpi(fx, "a", "a-1", T0 + S(30), 1, 0);
        assert_int_equal(apply(fx, NULL), 0);
        assert_int_equal(fm_fleet_tick(f, T0 + S(31), collect, &c), 0);
        assert_int_equal(c.n, 1);
        assert_int_equal(c.t[0].t.to, FM_BREAKER_HALF_OPEN);

        kpi(fx, "a", "a-0", T0 + S(32), 50, 1);
        assert_int_equal(apply(fx, NULL), 0);
        struct fm_instance *i =
                fm_deployment_find_instance(fm_fleet_find_deployment(f, "a"), "a-0");
        assert_int_equal(i->breaker.probe_requests, fx->cfg.breaker.probes);
        assert_int_equal(i->breaker.probe_errors, 1);

        c.n = 0;
        assert_int_equal(fm_fleet_tick(f, T0 + S(33), collect, &c), 0);
        assert_int_equal(c.n, 1);
        assert_int_equal(c.t[0].t.to, FM_BREAKER_CLOSED);
        assert_int_equal(c.t[0].t.cause, FM_CAUSE_PROBES_PASSED);
        /* the window that opened it was cleared */
        uint64_t sum[_FM_CTR_MAX];
        fm_window_sums(&i->window, T0 + S(33), sum);
        assert_int_equal(sum[FM_CTR_REQUESTS], 0);

        /* next ticks: nothing new while healthy and reporting */
        c.n = 0;
        kpi(fx, "a", "a-0", T0 + S(40), 30, 0);
        assert_int_equal(apply(fx, NULL), 0);
        kpi(fx, "a", "a-1", T0 + S(40), 30, 0);
        assert_int_equal(apply(fx, NULL), 0);
        assert_int_equal(fm_fleet_tick(f, T0 + S(41), collect, &c), 0);
        assert_int_equal(c.n, 0);

        /* a-1 goes silent */
        kpi(fx, "a", "a-0", T0 + S(70), 30, 0);
        assert_int_equal(apply(fx, NULL), 0);
        assert_int_equal(fm_fleet_tick(f, T0 + S(71), collect, &c), 0);
        assert_int_equal(c.n, 1);
        assert_string_equal(c.t[0].instance, "a-1");
        assert_int_equal(c.t[0].t.cause, FM_CAUSE_HEARTBEAT_LOST);
}

static void report(struct fixture *fx, const char *dep, const char *inst, fm_ms ts)
{
        kpi(fx, dep, inst, ts, 10, 0);
        assert_int_equal(apply(fx, NULL), 0);
}

static const struct fm_instance *find(const struct fm_fleet *f, const char *dep, const char *inst)
{
        const struct fm_deployment *d = fm_fleet_find_deployment(f, dep);
        return d ? fm_deployment_find_instance(d, inst) : NULL;
}

/*
 * After a noted scale-down the instances that went silent are retired:
 * forgotten without a breaker transition (no restart of a pod that is
 * gone). Only as many as the scale removed, the longest silent first; a
 * later scale-up cancels none; an instance silent beyond them, or after
 * the grace, is a failure as before.
 */
static void test_scale_down_retires(void **state)
{
        struct fixture *fx = *state;
        struct fm_fleet *f = fx->fleet;
        struct collected c = {0};
        const char *a[] = {"a-0", "a-1", "a-2", "a-3", "a-4", "a-5"};
        const char *b[] = {"b-0", "b-1", "b-2", "b-3"};
        const char *cc[] = {"c-0", "c-1", "c-2", "c-3", "c-4"};
        const char *d[] = {"d-0", "d-1", "d-2", "d-3"};

        for (int k = 0; k < 6; k++)
                report(fx, "a", a[k], T0);
        for (int k = 0; k < 4; k++)
                report(fx, "b", b[k], T0);
        for (int k = 0; k < 5; k++)
                report(fx, "c", cc[k], T0);
        for (int k = 0; k < 4; k++)
                report(fx, "d", d[k], T0);
        report(fx, "d", "d-2", T0 + S(2));
        for (int k = 0; k < 4; k++) /* d-1 silent since T0, d-2 since T0 + 2 s */
                if (k != 1 && k != 2)
                        report(fx, "d", d[k], T0 + S(20));

        assert_int_equal(fm_fleet_note_scaled(f, "zz", 6, 4, T0), -ENOENT);
        assert_int_equal(fm_fleet_note_scaled(f, NULL, 6, 4, T0), -EINVAL);
        assert_int_equal(fm_fleet_note_scaled(f, "a", 6, 4, T0 + S(5)), 0);
        assert_int_equal(fm_fleet_note_scaled(f, "b", 4, 2, T0 + S(5)), 0);
        assert_int_equal(fm_fleet_note_scaled(f, "c", 5, 3, T0 + S(5)), 0);
        assert_int_equal(fm_fleet_note_scaled(f, "c", 3, 4, T0 + S(6)), 0);
        assert_int_equal(fm_fleet_note_scaled(f, "d", 4, 3, T0 + S(5)), 0);
        for (int k = 0; k < 4; k++) {
                report(fx, "a", a[k], T0 + S(20));
                report(fx, "b", b[k], T0 + S(20));
        }
        for (int k = 0; k < 3; k++)
                report(fx, "c", cc[k], T0 + S(20));

        assert_int_equal(fm_fleet_tick(f, T0 + S(33), collect, &c), 0);
        /* a-4, a-5 and c-3, c-4 retired; of d, only d-1; d-2 fails */
        assert_int_equal(c.n, 1);
        assert_string_equal(c.t[0].instance, "d-2");
        assert_int_equal(c.t[0].t.cause, FM_CAUSE_HEARTBEAT_LOST);
        assert_null(find(f, "a", "a-4"));
        assert_null(find(f, "a", "a-5"));
        assert_null(find(f, "c", "c-3"));
        assert_null(find(f, "c", "c-4"));
        assert_null(find(f, "d", "d-1"));
        assert_non_null(find(f, "d", "d-2"));
        assert_int_equal(fm_fleet_find_deployment(f, "a")->n_instances, 4);
        assert_int_equal(f->stats.instances_retired, 5);
        assert_int_equal(f->stats.instances_forgotten, 0);

        /* a-3 goes silent later: the departures are done, its breaker opens */
        c.n = 0;
        for (int k = 0; k < 3; k++)
                report(fx, "a", a[k], T0 + S(60));
        for (int k = 0; k < 4; k++)
                report(fx, "b", b[k], T0 + S(60));
        assert_int_equal(fm_fleet_tick(f, T0 + S(61), collect, &c), 0);
        int in_a = 0;
        for (int k = 0; k < c.n; k++)
                if (strcmp(c.t[k].deployment, "a") == 0) {
                        in_a++;
                        assert_string_equal(c.t[k].instance, "a-3");
                        assert_int_equal(c.t[k].t.cause, FM_CAUSE_HEARTBEAT_LOST);
                }
        assert_int_equal(in_a, 1);
        assert_int_equal(fm_fleet_find_deployment(f, "b")->n_instances, 4);

        /* b-2 and b-3 report until the grace is nearly over: then they are failures */
        fm_ms end = T0 + S(5) + fx->cfg.retire_grace;
        for (int k = 0; k < 4; k++)
                report(fx, "b", b[k], end - S(10));
        report(fx, "b", "b-0", end + S(24));
        report(fx, "b", "b-1", end + S(24));
        c.n = 0;
        assert_int_equal(fm_fleet_tick(f, end + S(25), collect, &c), 0);
        int opened = 0;
        for (int k = 0; k < c.n; k++)
                if (c.t[k].t.cause == FM_CAUSE_HEARTBEAT_LOST &&
                    strcmp(c.t[k].deployment, "b") == 0)
                        opened++;
        assert_int_equal(opened, 2);
        assert_int_equal(fm_fleet_find_deployment(f, "b")->n_instances, 4);
        assert_int_equal(f->stats.instances_retired, 5);
}

/* Without a note, the same silence is a failure of each instance. */
static void test_scale_down_unnoted(void **state)
{
        struct fixture *fx = *state;
        struct collected c = {0};
        report(fx, "a", "a-0", T0);
        report(fx, "a", "a-1", T0);
        report(fx, "a", "a-0", T0 + S(20));
        assert_int_equal(fm_fleet_tick(fx->fleet, T0 + S(31), collect, &c), 0);
        assert_int_equal(c.n, 1);
        assert_string_equal(c.t[0].instance, "a-1");
        assert_int_equal(c.t[0].t.cause, FM_CAUSE_HEARTBEAT_LOST);
        assert_int_equal(fx->fleet->stats.instances_retired, 0);
}

static void test_force(void **state)
{
        struct fixture *fx = *state;
        struct fm_transition t;

        kpi(fx, "a", "a-0", T0, 1, 0);
        assert_int_equal(apply(fx, NULL), 0);
        assert_int_equal(fm_fleet_force(fx->fleet, "a", "nope", FM_BREAKER_FORCE_OPEN, T0, &t),
                         -ENOENT);
        assert_int_equal(fm_fleet_force(fx->fleet, "a", "a-0", FM_BREAKER_FORCE_OPEN, T0, &t), 1);
        assert_int_equal(t.t.to, FM_BREAKER_FORCED_OPEN);
        assert_string_equal(t.instance, "a-0");
        assert_int_equal(fm_fleet_force(fx->fleet, "a", "a-0", FM_BREAKER_FORCE_OPEN, T0, &t), 0);
        assert_int_equal(fm_fleet_force(fx->fleet, "a", "a-0", FM_BREAKER_RELEASE, T0, &t), 1);
        assert_int_equal(t.t.to, FM_BREAKER_CLOSED);
}

static void test_config_validate(void **state)
{
        (void)state;
        struct fm_fleet_config cfg;
        struct fm_fleet *f = NULL;

        fm_fleet_config_default(&cfg);
        assert_int_equal(fm_fleet_config_validate(&cfg), 0);
        cfg.max_instances = 0;
        assert_int_equal(fm_fleet_new(&cfg, &f), -EINVAL);
        assert_null(f);
        fm_fleet_config_default(&cfg);
        cfg.latency_slots = FM_SKETCH_RING_MAX_SLOTS + 1;
        assert_int_equal(fm_fleet_config_validate(&cfg), -EINVAL);
        fm_fleet_config_default(&cfg);
        cfg.breaker.window_slots = FM_WINDOW_MAX_SLOTS * 2;
        cfg.breaker.window = FM_WINDOW_MAX_SLOTS * 2 * 1000;
        assert_int_equal(fm_fleet_config_validate(&cfg), -EINVAL);
        fm_fleet_config_default(&cfg);
        cfg.breaker.failure_rate = 0;
        assert_int_equal(fm_fleet_config_validate(&cfg), -EINVAL);
        fm_fleet_config_default(&cfg);
        cfg.retire_grace = -1;
        assert_int_equal(fm_fleet_config_validate(&cfg), -EINVAL);
        cfg.retire_grace = 0;
        assert_int_equal(fm_fleet_config_validate(&cfg), 0);
}

/* Per tracked instance, the fleet stays far below the 16 KiB budget. */
static void test_instance_size(void **state)
{
        (void)state;
        assert_true(sizeof(struct fm_instance) <= 4096);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_first_event_creates_tree, setup, teardown),
                cmocka_unit_test_setup_teardown(test_version_moves, setup, teardown),
                cmocka_unit_test_setup_teardown(test_caps_reject_without_change, setup, teardown),
                cmocka_unit_test_setup_teardown(test_flood_of_names_is_bounded, setup, teardown),
                cmocka_unit_test_setup_teardown(test_duplicates, setup, teardown),
                cmocka_unit_test_setup_teardown(test_forget_and_retention, setup, teardown),
                cmocka_unit_test_setup_teardown(test_slow_calls_from_hist, setup, teardown),
                cmocka_unit_test_setup_teardown(test_slow_calls_from_summary, setup, teardown),
                cmocka_unit_test_setup_teardown(test_kpi_feeds_window_sketch_gauges, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_health_order, setup, teardown),
                cmocka_unit_test_setup_teardown(test_burn_windows_and_scores, setup, teardown),
                cmocka_unit_test_setup_teardown(test_feedback, setup, teardown),
                cmocka_unit_test_setup_teardown(test_outcome_ring, setup, teardown),
                cmocka_unit_test_setup_teardown(test_breaker_through_tick, setup, teardown),
                cmocka_unit_test_setup_teardown(test_scale_down_retires, setup, teardown),
                cmocka_unit_test_setup_teardown(test_scale_down_unnoted, setup, teardown),
                cmocka_unit_test_setup_teardown(test_force, setup, teardown),
                cmocka_unit_test(test_config_validate),
                cmocka_unit_test(test_instance_size),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
