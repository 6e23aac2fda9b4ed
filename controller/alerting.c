/* SPDX-License-Identifier: MIT */
#include "alerting.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

enum kind {
        KIND_ROLLBACK,
        KIND_BLOCKED,
        _KIND_MAX,
};

static const char *const kind_names[_KIND_MAX] = {
        [KIND_ROLLBACK] = "rollback",
        [KIND_BLOCKED] = "actions_blocked",
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

void fm_alerting_config_default(struct fm_alerting_config *cfg) {
        *cfg = (struct fm_alerting_config){.resolve_after = 10 * 60 * FM_MS_PER_S};
}

int fm_alerting_new(const struct fm_alerting_config *cfg, struct fm_alerting **ret) {
        if (cfg->resolve_after <= 0)
                return -EINVAL;
        struct fm_alerting *a = calloc(1, sizeof(*a));
        if (!a)
                return -ENOMEM;
        a->cfg = *cfg;
        *ret = a;
        return 0;
}

struct fm_alerting *fm_alerting_free(struct fm_alerting *a) {
        free(a);
        return NULL;
}

int fm_alerting_set_config(struct fm_alerting *a, const struct fm_alerting_config *cfg) {
        if (cfg->resolve_after <= 0)
                return -EINVAL;
        a->cfg = *cfg;
        return 0;
}

/* Severity of a blocked verdict worth an alert, or -1 when it is routine. */
static int blocked_severity(enum fm_verdict v) {
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

static struct active *find(struct fm_alerting *a, const char *dep, enum kind k) {
        for (uint32_t i = 0; i < a->n; i++)
                if (a->active[i].kind == k && strcmp(a->active[i].deployment, dep) == 0)
                        return &a->active[i];
        return NULL;
}

/* Forgets alerts quiet for resolve_after: they may fire again. */
static void expire(struct fm_alerting *a, fm_ms now) {
        for (uint32_t i = 0; i < a->n;) {
                if (now - a->active[i].last_seen >= a->cfg.resolve_after)
                        a->active[i] = a->active[--a->n];
                else
                        i++;
        }
}

/* Records the condition; returns true when an alert must be raised now. */
static bool note(struct fm_alerting *a, const char *dep, enum kind k, fm_ms now) {
        struct active *e = find(a, dep, k);
        if (e) {
                e->last_seen = now;
                return false;
        }
        if (a->n == FM_ALERTING_MAX_ACTIVE) {
                /* full: the quietest entry goes, so it may fire early rather than a new one never */
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

static void unnote(struct fm_alerting *a, const char *dep, enum kind k) {
        struct active *e = find(a, dep, k);
        if (e)
                *e = a->active[--a->n];
}

/* snprintf that truncates on purpose: summaries are bounded, a long one is cut. */
static void __attribute__((format(printf, 3, 4))) fmt(char *dst, size_t size, const char *f, ...) {
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

static void describe(struct group *g, const struct fm_intent *it, enum kind k) {
        char item[96];
        if (k == KIND_ROLLBACK)
                fmt(item, sizeof(item), "%s -> %s (%s)", it->arg.rollback.from,
                         it->arg.rollback.to, it->reason ? it->reason : "-");
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
                fm_ms now) {
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
        fmt(al->arg.alert.summary, sizeof(al->arg.alert.summary), "%s %s: %s",
                 k == KIND_ROLLBACK ? "rollback of" : "actions blocked on", g->deployment,
                 g->summary);
        fm_evidence_add(&al->evidence, "actions", g->count);
        return 1;
}

/*
 * Intents of one deployment are not necessarily adjacent in the plan
 * (policies run per deployment, the governor appends at the end), so each
 * deployment with something to say is gathered in one pass over the plan
 * from its first qualifying intent: O(intents x groups), both small.
 */
int fm_alerting_review(struct fm_alerting *a, struct fm_plan *plan, fm_ms now) {
        uint32_t n = plan->n_intents; /* alerts appended below are not inputs */
        int raised = 0, ret = 0;

        expire(a, now);
        for (enum kind k = 0; k < _KIND_MAX; k++) {
                for (uint32_t i = 0; i < n; i++) {
                        const struct fm_intent *it = &plan->intent[i];
                        bool hit = k == KIND_ROLLBACK ? it->action == FM_ACTION_ROLLBACK &&
                                                                (it->verdict == FM_VERDICT_APPROVED ||
                                                                 it->verdict == FM_VERDICT_DRY_RUN)
                                                      : it->action != FM_ACTION_ALERT &&
                                                                blocked_severity(it->verdict) >= 0;
                        if (!hit)
                                continue;
                        /* first qualifying intent of its deployment? */
                        bool seen = false;
                        for (uint32_t j = 0; j < i && !seen; j++) {
                                const struct fm_intent *p = &plan->intent[j];
                                bool phit = k == KIND_ROLLBACK
                                                    ? p->action == FM_ACTION_ROLLBACK &&
                                                              (p->verdict == FM_VERDICT_APPROVED ||
                                                               p->verdict == FM_VERDICT_DRY_RUN)
                                                    : p->action != FM_ACTION_ALERT &&
                                                              blocked_severity(p->verdict) >= 0;
                                seen = phit && strcmp(p->deployment, it->deployment) == 0;
                        }
                        if (seen)
                                continue;

                        struct group g = {.deployment = it->deployment,
                                          .severity = k == KIND_ROLLBACK ? FM_SEVERITY_CRITICAL
                                                                         : FM_SEVERITY_INFO};
                        for (uint32_t j = i; j < n; j++) {
                                const struct fm_intent *q = &plan->intent[j];
                                if (strcmp(q->deployment, it->deployment) != 0)
                                        continue;
                                if (k == KIND_ROLLBACK) {
                                        if (q->action == FM_ACTION_ROLLBACK &&
                                            (q->verdict == FM_VERDICT_APPROVED ||
                                             q->verdict == FM_VERDICT_DRY_RUN))
                                                describe(&g, q, k);
                                } else if (q->action != FM_ACTION_ALERT) {
                                        int sev = blocked_severity(q->verdict);
                                        if (sev < 0)
                                                continue;
                                        if (sev > g.severity)
                                                g.severity = sev;
                                        describe(&g, q, k);
                                }
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
