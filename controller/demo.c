/* SPDX-License-Identifier: MIT */
#include "demo.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "event.h"
#include "fleet.h"
#include "format.h"
#include "governor.h"
#include "intent.h"
#include "reconcile.h"

/*
 * The story, in simulated seconds from the start:
 *   fraud-scorer (v7, three instances) and recsys-ranker (v12, two) serve
 *   normally; every instance reports kpi every 5 s and health every 15 s.
 *   60..240   fraud-scorer-2 fails 80 % of its requests: the breaker opens,
 *             probes fail and the open time doubles, then it recovers and
 *             the probes close the breaker.
 *   300..420  recsys-ranker-1 answers slowly (most calls over 1 s): the
 *             slow-call rate opens its breaker.
 *   450..     fraud-scorer-1 goes silent: its heartbeat is lost.
 *   Along the way a few broken messages show the decoder's rejections.
 */
#define DEMO_START_S 1767225600 /* 2026-01-01T00:00:00Z */
#define DEMO_DURATION_S 600
#define DEMO_STEP_S 5

struct demo_instance {
        const char *deployment, *instance, *version;
        uint32_t rps;
};

static const struct demo_instance demo_fleet[] = {
        {"fraud-scorer", "fraud-scorer-0", "v7", 10},
        {"fraud-scorer", "fraud-scorer-1", "v7", 10},
        {"fraud-scorer", "fraud-scorer-2", "v7", 10},
        {"recsys-ranker", "recsys-ranker-0", "v12", 16},
        {"recsys-ranker", "recsys-ranker-1", "v12", 16},
};

struct demo {
        FILE *out;
        struct fm_decoder *dec;
        struct fm_fleet *fleet;
        struct fm_event *ev;
        struct fm_plan plan;
        struct fm_governor *governor;
        uint64_t rng;
        uint64_t seq[ARRAY_SIZE(demo_fleet)];
        fm_ms origin;
};

/* A small seeded generator: the demo prints the same thing every run. */
static uint32_t demo_rand(struct demo *d, uint32_t below)
{
        d->rng = d->rng * UINT64_C(6364136223846793005) + UINT64_C(1442695040888963407);
        return below ? (uint32_t)((d->rng >> 33) % below) : 0;
}

static void publish(struct demo *d, const char *topic, const char *payload, fm_ms now)
{
        enum fm_reject why = FM_REJECT_NONE;
        int r = fm_decoder_decode(d->dec, topic, strlen(topic), payload, strlen(payload), now,
                                  d->ev, &why);
        if (r == 0)
                r = fm_fleet_apply(d->fleet, d->ev, &why);
        if (r == -EBADMSG)
                fprintf(d->out, "t=+%" PRId64 ".000s rejected %s reason=%s\n    payload: %s\n",
                        (now - d->origin) / FM_MS_PER_S, topic, fm_reject_name(why), payload);
}

static void publish_kpi(struct demo *d, size_t k, int64_t t_s, fm_ms now)
{
        const struct demo_instance *in = &demo_fleet[k];
        int64_t rel = t_s - DEMO_START_S;
        bool failing = k == 2 && rel >= 60 && rel < 240;
        bool slow = k == 4 && rel >= 300 && rel < 420;
        uint32_t requests = in->rps * DEMO_STEP_S + demo_rand(d, 10);
        uint32_t errors = failing ? requests * 8 / 10 : (demo_rand(d, 20) == 0);
        /* bounds: 5 10 25 50 100 250 500 1000 2500 ms, +Inf */
        uint32_t c[10] = {0};
        if (slow) {
                c[6] = requests / 10;
                c[8] = requests * 7 / 10;
                c[9] = requests - c[6] - c[8];
        } else {
                c[2] = requests / 5;
                c[3] = requests / 2;
                c[4] = requests / 5;
                c[5] = requests - c[2] - c[3] - c[4];
        }
        char topic[256], payload[1024];
        snprintf(topic, sizeof(topic), "fleet/%s/%s/kpi", in->deployment, in->instance);
        snprintf(payload, sizeof(payload),
                 "{\"v\":1,\"ts\":%" PRId64 ",\"seq\":%" PRIu64 ",\"version\":\"%s\","
                 "\"interval_s\":%d,\"requests\":%u,\"errors\":%u,"
                 "\"latency_hist\":{\"le_ms\":[5,10,25,50,100,250,500,1000,2500],"
                 "\"counts\":[%u,%u,%u,%u,%u,%u,%u,%u,%u,%u]},"
                 "\"queue_depth\":%u,\"gpu_util\":0.%02u}",
                 t_s, ++d->seq[k], in->version, DEMO_STEP_S, requests, errors, c[0], c[1], c[2],
                 c[3], c[4], c[5], c[6], c[7], c[8], c[9], demo_rand(d, 4), 40 + demo_rand(d, 30));
        publish(d, topic, payload, now);
}

static void publish_health(struct demo *d, size_t k, int64_t t_s, fm_ms now)
{
        const struct demo_instance *in = &demo_fleet[k];
        char topic[256], payload[512];
        snprintf(topic, sizeof(topic), "fleet/%s/%s/health", in->deployment, in->instance);
        snprintf(payload, sizeof(payload),
                 "{\"v\":1,\"ts\":%" PRId64 ",\"seq\":%" PRIu64
                 ",\"version\":\"%s\",\"status\":\"ok\",\"ready\":true}",
                 t_s, ++d->seq[k], in->version);
        publish(d, topic, payload, now);
}

/* Messages a real fleet sends now and then, each rejected for its own reason. */
static void publish_broken(struct demo *d, int64_t rel, int64_t t_s, fm_ms now)
{
        char payload[256];
        switch (rel) {
        case 20:
                publish(d, "fleet/fraud-scorer/fraud-scorer-0/kpi", "{\"v\":1,\"requests\":10,",
                        now);
                break;
        case 40:
                snprintf(payload, sizeof(payload),
                         "{\"v\":1,\"ts\":%" PRId64 ",\"requests\":10,\"errors\":12}", t_s);
                publish(d, "fleet/recsys-ranker/recsys-ranker-0/kpi", payload, now);
                break;
        case 45:
                /* a QoS 1 redelivery: the same seq again */
                snprintf(payload, sizeof(payload),
                         "{\"v\":1,\"ts\":%" PRId64 ",\"seq\":%" PRIu64 ",\"status\":\"ok\"}",
                         t_s - 5, d->seq[0]);
                publish(d, "fleet/fraud-scorer/fraud-scorer-0/health", payload, now);
                break;
        case 50:
                publish(d, "fleet/Fraud_Scorer/x/kpi", "{\"v\":1}", now);
                break;
        default:
                break;
        }
}

static int tick(struct demo *d, fm_ms now, const struct fm_policy *policies, size_t n)
{
        int r = fm_reconcile(d->fleet, policies, n, now, &d->plan);
        if (r >= 0)
                r = fm_governor_review(d->governor, d->fleet, &d->plan, now);
        for (uint32_t k = 0; k < d->plan.n_transitions; k++)
                fm_print_transition(d->out, &d->plan.transition[k], d->origin);
        for (uint32_t k = 0; k < d->plan.n_intents; k++) {
                fm_print_intent(d->out, &d->plan.intent[k], d->origin);
        }
        return r;
}

static void print_summary(struct demo *d)
{
        const struct fm_fleet *f = d->fleet;

        fprintf(d->out, "\nfleet at the end:\n");
        for (const struct fm_deployment *dep = f->deployments; dep; dep = dep->next) {
                for (const struct fm_instance *i = dep->instances; i; i = i->next)
                        fprintf(d->out, "  %-14s %-16s %-4s breaker=%-10s opens=%u health=%s\n",
                                dep->name, i->name, i->version->name,
                                fm_breaker_state_name(i->breaker.state), i->breaker.opens,
                                fm_health_status_name(i->health));
                for (const struct fm_version *v = dep->versions; v; v = v->next) {
                        double p50 = 0, p99 = 0;
                        (void)fm_sketch_quantile(&v->latency_total, 0.50, &p50);
                        (void)fm_sketch_quantile(&v->latency_total, 0.99, &p99);
                        fprintf(d->out,
                                "  %-14s version %-8s requests=%" PRIu64 " errors=%" PRIu64
                                " p50_ms=%.1f p99_ms=%.1f\n",
                                dep->name, v->name, v->requests_total, v->errors_total, p50, p99);
                }
        }
        fprintf(d->out,
                "events accepted: health=%" PRIu64 " kpi=%" PRIu64 " feedback=%" PRIu64 "\n",
                f->stats.accepted[FM_EVENT_HEALTH], f->stats.accepted[FM_EVENT_KPI],
                f->stats.accepted[FM_EVENT_FEEDBACK]);
}

int fm_demo_run(FILE *out)
{
        struct fm_decoder_config dcfg;
        struct fm_fleet_config fcfg;
        struct demo d = {.out = out, .rng = 42, .origin = (fm_ms)DEMO_START_S * FM_MS_PER_S};
        const struct fm_policy policies[] = {{.ops = &fm_policy_breaker}};
        int r;

        fm_decoder_config_default(&dcfg);
        fm_fleet_config_default(&fcfg);
        d.ev = malloc(sizeof(*d.ev));
        if (!d.ev)
                return -ENOMEM;
        r = fm_decoder_new(&dcfg, &d.dec);
        if (r < 0)
                goto done;
        r = fm_fleet_new(&fcfg, &d.fleet);
        if (r < 0)
                goto done;
        r = fm_plan_init(&d.plan, FM_PLAN_DEFAULT_INTENTS, FM_PLAN_DEFAULT_TRANSITIONS);
        if (r < 0)
                goto done;
        struct fm_governor_config gcfg;
        fm_governor_config_default(&gcfg);
        gcfg.dry_run = true; /* the demo decides and records; nothing is executed */
        r = fm_governor_new(&gcfg, &d.governor);
        if (r < 0)
                goto done;

        fprintf(out, "fleetmedic demo: %zu instances in 2 deployments, %d simulated seconds\n",
                ARRAY_SIZE(demo_fleet), DEMO_DURATION_S);
        fprintf(out,
                "breaker: failure_rate>=%.2f or slow_call_rate>=%.2f (calls over %.0f ms) "
                "with >=%u requests in %" PRId64 " s; open %" PRId64 " s doubling to %" PRId64
                " s; %u probes\n\n",
                fcfg.breaker.failure_rate, fcfg.breaker.slow_rate, fcfg.breaker.slow_call_ms,
                fcfg.breaker.min_requests, fcfg.breaker.window / FM_MS_PER_S,
                fcfg.breaker.open_base / FM_MS_PER_S, fcfg.breaker.open_max / FM_MS_PER_S,
                fcfg.breaker.probes);

        for (int64_t rel = 0; rel <= DEMO_DURATION_S; rel += DEMO_STEP_S) {
                int64_t t_s = DEMO_START_S + rel;
                fm_ms now = t_s * FM_MS_PER_S;
                for (size_t k = 0; k < ARRAY_SIZE(demo_fleet); k++) {
                        if (k == 1 && rel >= 450)
                                continue; /* fraud-scorer-1 has gone silent */
                        publish_kpi(&d, k, t_s, now);
                        if (rel % 15 == 0)
                                publish_health(&d, k, t_s, now);
                }
                publish_broken(&d, rel, t_s, now);
                r = tick(&d, now, policies, ARRAY_SIZE(policies));
                if (r < 0)
                        goto done;
        }
        print_summary(&d);
        r = 0;
done:
        fm_plan_done(&d.plan);
        fm_governor_free(d.governor);
        fm_fleet_free(d.fleet);
        fm_decoder_free(d.dec);
        free(d.ev);
        return r;
}
