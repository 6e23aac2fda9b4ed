/* SPDX-License-Identifier: MIT */
#include "intent.h"

#include <errno.h>
#include <string.h>

static const char *const action_names[_FM_ACTION_MAX] = {
        [FM_ACTION_SCALE] = "scale",
        [FM_ACTION_SET_WEIGHTS] = "set_weights",
        [FM_ACTION_RESTART] = "restart",
        [FM_ACTION_ROLLBACK] = "rollback",
        [FM_ACTION_SET_THRESHOLD] = "set_threshold",
        [FM_ACTION_ALERT] = "alert",
};

const char *fm_action_name(enum fm_action a)
{
        return (unsigned)a < _FM_ACTION_MAX ? action_names[a] : NULL;
}

static const char *const severity_names[_FM_SEVERITY_MAX] = {
        [FM_SEVERITY_INFO] = "info",
        [FM_SEVERITY_WARNING] = "warning",
        [FM_SEVERITY_CRITICAL] = "critical",
};

const char *fm_severity_name(enum fm_severity s)
{
        return (unsigned)s < _FM_SEVERITY_MAX ? severity_names[s] : NULL;
}

static const char *const verdict_names[_FM_VERDICT_MAX] = {
        [FM_VERDICT_PENDING] = "pending",         [FM_VERDICT_APPROVED] = "approved",
        [FM_VERDICT_DRY_RUN] = "dry_run",         [FM_VERDICT_COOLDOWN] = "cooldown",
        [FM_VERDICT_RATE_LIMIT] = "rate_limit",   [FM_VERDICT_CAPACITY] = "capacity_floor",
        [FM_VERDICT_FROZEN] = "frozen",           [FM_VERDICT_PAUSED] = "paused",
        [FM_VERDICT_MAINTENANCE] = "maintenance", [FM_VERDICT_CONFLICT] = "conflict",
};

const char *fm_verdict_name(enum fm_verdict v)
{
        return (unsigned)v < _FM_VERDICT_MAX ? verdict_names[v] : NULL;
}

int fm_plan_init(struct fm_plan *p, uint32_t intents, uint32_t transitions)
{
        if (intents == 0 || transitions == 0)
                return -EINVAL;
        *p = (struct fm_plan){0};
        p->intent = calloc(intents, sizeof(*p->intent));
        p->transition = calloc(transitions, sizeof(*p->transition));
        p->weight = calloc(FM_PLAN_DEFAULT_WEIGHTS, sizeof(*p->weight));
        if (!p->intent || !p->transition || !p->weight) {
                fm_plan_done(p);
                return -ENOMEM;
        }
        p->cap_intents = intents;
        p->cap_transitions = transitions;
        p->cap_weights = FM_PLAN_DEFAULT_WEIGHTS;
        return 0;
}

void fm_plan_done(struct fm_plan *p)
{
        free(p->intent);
        free(p->transition);
        free(p->weight);
        *p = (struct fm_plan){0};
}

void fm_plan_reset(struct fm_plan *p, fm_ms now)
{
        p->now = now;
        p->n_intents = p->n_transitions = p->n_weights = 0;
        p->dropped_intents = p->dropped_transitions = p->dropped_weights = 0;
}

struct fm_intent *fm_plan_add_intent(struct fm_plan *p, enum fm_action action, const char *policy)
{
        if (p->n_intents >= p->cap_intents) {
                p->dropped_intents++;
                return NULL;
        }
        struct fm_intent *in = &p->intent[p->n_intents++];
        memset(in, 0, sizeof(*in));
        in->action = action;
        in->policy = policy;
        in->at = p->now;
        return in;
}

struct fm_weight *fm_plan_add_weights(struct fm_plan *p, struct fm_intent *it, uint32_t n)
{
        if (n > p->cap_weights - p->n_weights) {
                p->dropped_weights++;
                return NULL;
        }
        struct fm_weight *w = &p->weight[p->n_weights];
        memset(w, 0, n * sizeof(*w));
        it->arg.weights.first = p->n_weights;
        it->arg.weights.n = n;
        p->n_weights += n;
        return w;
}

int fm_plan_add_transition(struct fm_plan *p, const struct fm_transition *t)
{
        if (p->n_transitions >= p->cap_transitions) {
                p->dropped_transitions++;
                return -ENOBUFS;
        }
        p->transition[p->n_transitions++] = *t;
        return 0;
}
