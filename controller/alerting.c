/* SPDX-License-Identifier: MIT */
#include "alerting.h"

#include "detect.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

enum kind {
        KIND_ROLLBACK,
        KIND_BLOCKED,
        KIND_SLO_BURN,
        _KIND_MAX,
};

static const char *const kind_names[_KIND_MAX] = {
        [KIND_ROLLBACK] = "rollback",
        [KIND_BLOCKED] = "actions_blocked",
        [KIND_SLO_BURN] = "slo_burn",
};

struct active {
        char deployment[FM_NAME_MAX + 1];
        uint8_t kind;
        fm_ms last_seen; /* last tick the condition held */
};

struct fm_alerting {
        struct fm_alerting_config cfg;
        uint32_t n;
        struct active active[FM_ALERTING_MAX_ACTIVE];
};

void fm_alerting_config_default(struct fm_alerting_config *cfg)
{
        *cfg = (struct fm_alerting_config){
                .resolve_after = 10 * 60 * FM_MS_PER_S,
                .slo_target = 0.999,
                .slo_period = (fm_ms)30 * 86400 * FM_MS_PER_S,
                .slo_min_requests = 100,
        };
}

static int validate(const struct fm_alerting_config *cfg)
{
        struct fm_burn_window w[FM_BURN_WINDOWS];
        if (cfg->resolve_after <= 0 || !(cfg->slo_target > 0.0 && cfg->slo_target < 1.0) ||
            cfg->slo_min_requests == 0 || fm_burn_windows_scaled(cfg->slo_period, w) < 0)
                return -EINVAL;
        return 0;
}

int fm_alerting_new(const struct fm_alerting_config *cfg, struct fm_alerting **ret)
{
        if (validate(cfg) < 0)
                return -EINVAL;
        struct fm_alerting *a = calloc(1, sizeof(*a));
        if (!a)
                return -ENOMEM;
        a->cfg = *cfg;
        *ret = a;
        return 0;
}

struct fm_alerting *fm_alerting_free(struct fm_alerting *a)
{
        free(a);
        return NULL;
}

int fm_alerting_set_config(struct fm_alerting *a, const struct fm_alerting_config *cfg)
{
        if (validate(cfg) < 0)
                return -EINVAL;
        a->cfg = *cfg;
        return 0;
}

/* Severity of a blocked verdict worth an alert, or -1 when it is routine. */
static int blocked_severity(enum fm_verdict v)
{
        switch (v) {
        case FM_VERDICT_CAPACITY:
        case FM_VERDICT_RATE_LIMIT:
                return FM_SEVERITY_WARNING;
        case FM_VERDICT_PAUSED:
        case FM_VERDICT_MAINTENANCE:
                return FM_SEVERITY_INFO;
        default:
                return -1;
        }
}

static struct active *find(struct fm_alerting *a, const char *dep, enum kind k)
{
        for (uint32_t i = 0; i < a->n; i++)
                if (a->active[i].kind == k && strcmp(a->active[i].deployment, dep) == 0)
                        return &a->active[i];
        return NULL;
}

/* Forgets alerts quiet for resolve_after: they may fire again. */
static void expire(struct fm_alerting *a, fm_ms now)
{
        for (uint32_t i = 0; i < a->n;) {
                if (now - a->active[i].last_seen >= a->cfg.resolve_after)
                        a->active[i] = a->active[--a->n];
                else
                        i++;
        }
}

/* Records the condition; returns true when an alert must be raised now. */
static bool note(struct fm_alerting *a, const char *dep, enum kind k, fm_ms now)
{
        struct active *e = find(a, dep, k);
        if (e) {
                e->last_seen = now;
                return false;
        }
        if (a->n == FM_ALERTING_MAX_ACTIVE) {
                /* full: the quietest entry goes, so it may fire early rather than a new one never
                 */
                uint32_t oldest = 0;
                for (uint32_t i = 1; i < a->n; i++)
                        if (a->active[i].last_seen < a->active[oldest].last_seen)
                                oldest = i;
                a->active[oldest] = a->active[--a->n];
        }
        e = &a->active[a->n++];
        memset(e, 0, sizeof(*e));
        snprintf(e->deployment, sizeof(e->deployment), "%s", dep);
        e->kind = (uint8_t)k;
        e->last_seen = now;
        return true;
}

static void unnote(struct fm_alerting *a, const char *dep, enum kind k)
{
        struct active *e = find(a, dep, k);
        if (e)
                *e = a->active[--a->n];
}

/* snprintf that truncates on purpose: summaries are bounded, a long one is cut. */
static void __attribute__((format(printf, 3, 4))) fmt(char *dst, size_t size, const char *f, ...)
{
        va_list ap;
        va_start(ap, f);
        (void)vsnprintf(dst, size, f, ap);
        va_end(ap);
}

/* One deployment's group of one kind in this tick. */
struct group {
        const char *deployment;
        int severity;
        unsigned count;
        char summary[FM_ALERT_SUMMARY_MAX];
        size_t len;
};

static void describe(struct group *g, const struct fm_intent *it, enum kind k)
{
        char item[96];
        if (k == KIND_ROLLBACK)
                fmt(item, sizeof(item), "%s -> %s (%s)", it->arg.rollback.from, it->arg.rollback.to,
                    it->reason ? it->reason : "-");
        else
                fmt(item, sizeof(item), "%s%s%s (%s)", fm_action_name(it->action),
                    it->instance[0] ? " " : "", it->instance, fm_verdict_name(it->verdict));
        if (g->len + strlen(item) + 3 < sizeof(g->summary)) {
                int n = snprintf(g->summary + g->len, sizeof(g->summary) - g->len, "%s%s",
                                 g->count ? "; " : "", item);
                if (n > 0)
                        g->len += (size_t)n;
        }
        g->count++;
}

static int emit(struct fm_alerting *a, struct fm_plan *plan, const struct group *g, enum kind k,
                fm_ms now)
{
        if (!note(a, g->deployment, k, now))
                return 0;
        struct fm_intent *al = fm_plan_add_intent(plan, FM_ACTION_ALERT, "alerting");
        if (!al) {
                unnote(a, g->deployment, k);
                return -ENOBUFS;
        }
        al->reason = kind_names[k];
        snprintf(al->deployment, sizeof(al->deployment), "%s", g->deployment);
        snprintf(al->key, sizeof(al->key), "alerting/%s/%s/%lld", kind_names[k], g->deployment,
                 (long long)now);
        al->arg.alert.severity = (enum fm_severity)g->severity;
        static const char *const lead[_KIND_MAX] = {
                [KIND_ROLLBACK] = "rollback of",
                [KIND_BLOCKED] = "actions blocked on",
                [KIND_SLO_BURN] = "error budget burning on",
        };
        fmt(al->arg.alert.summary, sizeof(al->arg.alert.summary), "%s %s: %s", lead[k],
            g->deployment, g->summary);
        fm_evidence_add(&al->evidence, "actions", g->count);
        return 1;
}

/* Whether an intent belongs in an alert of kind k. */
static bool qualifies(const struct fm_intent *it, enum kind k)
{
        if (k == KIND_ROLLBACK)
                return it->action == FM_ACTION_ROLLBACK &&
                       (it->verdict == FM_VERDICT_APPROVED || it->verdict == FM_VERDICT_DRY_RUN);
        return it->action != FM_ACTION_ALERT && blocked_severity(it->verdict) >= 0;
}

/* Whether an intent before index i of the same deployment already qualified for kind k. */
static bool seen_before(const struct fm_plan *plan, uint32_t i, enum kind k)
{
        const char *dep = plan->intent[i].deployment;
        for (uint32_t j = 0; j < i; j++)
                if (qualifies(&plan->intent[j], k) && strcmp(plan->intent[j].deployment, dep) == 0)
                        return true;
        return false;
}

/*
 * Intents of one deployment are not necessarily adjacent in the plan
 * (policies run per deployment, the governor appends at the end), so each
 * deployment with something to say is gathered in one pass over the plan
 * from its first qualifying intent: O(intents x groups), both small.
 */
static double burn(const struct fm_deployment *d, fm_ms now, fm_ms len, double slo_target,
                   uint64_t *ret_req)
{
        uint64_t req = 0, err = 0;
        for (const struct fm_version *v = d->versions; v; v = v->next) {
                uint64_t r, e;
                if (v->n_instances == 0)
                        continue;
                fm_version_burn_counts(v, now, len, &r, &e);
                req += r;
                err += e;
        }
        double rate = 0.0;
        if (fm_burn_rate((double)err, (double)req, slo_target, &rate) < 0)
                rate = 0.0;
        *ret_req = req;
        return rate;
}

/* The burn-rate alerts: the first pair that fires names the severity. */
static int review_burn(struct fm_alerting *a, const struct fm_fleet *f, struct fm_plan *plan,
                       fm_ms now)
{
        struct fm_burn_window w[FM_BURN_WINDOWS];
        int raised = 0, ret = 0;

        if (fm_burn_windows_scaled(a->cfg.slo_period, w) < 0)
                return -EINVAL;
        for (const struct fm_deployment *d = f->deployments; d; d = d->next) {
                for (size_t p = 0; p < FM_BURN_WINDOWS; p++) {
                        uint64_t req_long, req_short;
                        double rl = burn(d, now, w[p].long_ms, a->cfg.slo_target, &req_long);
                        double rs = burn(d, now, w[p].short_ms, a->cfg.slo_target, &req_short);
                        if (req_long < a->cfg.slo_min_requests || !fm_burn_alert(&w[p], rl, rs))
                                continue;
                        struct group g = {
                                .deployment = d->name,
                                .severity = p == 0 ? FM_SEVERITY_CRITICAL : FM_SEVERITY_WARNING,
                        };
                        fmt(g.summary, sizeof(g.summary),
                            "burn rate %.1f over %llds and %.1f over %llds, above %.1f", rl,
                            (long long)(w[p].long_ms / FM_MS_PER_S), rs,
                            (long long)(w[p].short_ms / FM_MS_PER_S), w[p].factor);
                        g.count = 1;
                        int r = emit(a, plan, &g, KIND_SLO_BURN, now);
                        if (r > 0) {
                                struct fm_intent *al = &plan->intent[plan->n_intents - 1];
                                al->evidence.n = 0;
                                fm_evidence_add(&al->evidence, "burn_rate_long", rl);
                                fm_evidence_add(&al->evidence, "burn_rate_short", rs);
                                fm_evidence_add(&al->evidence, "factor", w[p].factor);
                                fm_evidence_add(&al->evidence, "long_window_s",
                                                (double)w[p].long_ms / FM_MS_PER_S);
                                fm_evidence_add(&al->evidence, "short_window_s",
                                                (double)w[p].short_ms / FM_MS_PER_S);
                                fm_evidence_add(&al->evidence, "slo_target", a->cfg.slo_target);
                                fm_evidence_add(&al->evidence, "requests_long", (double)req_long);
                                raised++;
                        } else if (r < 0 && ret == 0) {
                                ret = r;
                        }
                        break; /* the fast pair firing says it all */
                }
        }
        return ret < 0 ? ret : raised;
}

int fm_alerting_review(struct fm_alerting *a, const struct fm_fleet *f, struct fm_plan *plan,
                       fm_ms now)
{
        uint32_t n = plan->n_intents; /* alerts appended below are not inputs */
        int raised = 0, ret = 0;

        expire(a, now);
        if (f) {
                int r = review_burn(a, f, plan, now);
                if (r < 0)
                        ret = r;
                else
                        raised += r;
        }
        for (enum kind k = 0; k < KIND_SLO_BURN; k++) {
                for (uint32_t i = 0; i < n; i++) {
                        const struct fm_intent *it = &plan->intent[i];
                        if (!qualifies(it, k) || seen_before(plan, i, k))
                                continue;

                        struct group g = {.deployment = it->deployment,
                                          .severity = k == KIND_ROLLBACK ? FM_SEVERITY_CRITICAL
                                                                         : FM_SEVERITY_INFO};
                        for (uint32_t j = i; j < n; j++) {
                                const struct fm_intent *q = &plan->intent[j];
                                if (!qualifies(q, k) || strcmp(q->deployment, g.deployment) != 0)
                                        continue;
                                if (k == KIND_BLOCKED && blocked_severity(q->verdict) > g.severity)
                                        g.severity = blocked_severity(q->verdict);
                                describe(&g, q, k);
                        }
                        int r = emit(a, plan, &g, k, now);
                        if (r < 0 && ret == 0)
                                ret = r;
                        else if (r > 0)
                                raised++;
                }
        }
        return ret < 0 ? ret : raised;
}
