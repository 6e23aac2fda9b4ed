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

const char *fm_action_name(enum fm_action a) {
        return (unsigned)a < _FM_ACTION_MAX ? action_names[a] : NULL;
}

int fm_plan_init(struct fm_plan *p, uint32_t intents, uint32_t transitions) {
        if (intents == 0 || transitions == 0)
                return -EINVAL;
        *p = (struct fm_plan){0};
        p->intent = calloc(intents, sizeof(*p->intent));
        p->transition = calloc(transitions, sizeof(*p->transition));
        if (!p->intent || !p->transition) {
                fm_plan_done(p);
                return -ENOMEM;
        }
        p->cap_intents = intents;
        p->cap_transitions = transitions;
        return 0;
}

void fm_plan_done(struct fm_plan *p) {
        free(p->intent);
        free(p->transition);
        *p = (struct fm_plan){0};
}

void fm_plan_reset(struct fm_plan *p, fm_ms now) {
        p->now = now;
        p->n_intents = p->n_transitions = 0;
        p->dropped_intents = p->dropped_transitions = 0;
}

struct fm_intent *fm_plan_add_intent(struct fm_plan *p, enum fm_action action, const char *policy) {
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

int fm_plan_add_transition(struct fm_plan *p, const struct fm_transition *t) {
        if (p->n_transitions >= p->cap_transitions) {
                p->dropped_transitions++;
                return -ENOBUFS;
        }
        p->transition[p->n_transitions++] = *t;
        return 0;
}
