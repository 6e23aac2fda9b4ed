/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "policy.h"

static int breaker_evaluate(void *state, const struct fm_policy_input *in, struct fm_plan *plan)
{
        (void)state;

        for (size_t k = 0; k < in->n_transitions; k++) {
                const struct fm_transition *t = &in->transitions[k];
                if (t->t.to != FM_BREAKER_OPEN)
                        continue;

                struct fm_intent *it =
                        fm_plan_add_intent(plan, FM_ACTION_RESTART, fm_policy_breaker.name);
                if (!it)
                        return -ENOBUFS;
                it->reason = fm_breaker_cause_name(t->t.cause);
                memcpy(it->deployment, t->deployment, sizeof(it->deployment));
                memcpy(it->instance, t->instance, sizeof(it->instance));
                /* names are bounded well below the key size, so this cannot truncate */
                (void)snprintf(it->key, sizeof(it->key), "breaker/restart/%s/%s/%u", t->deployment,
                               t->instance, t->opens);
                it->evidence = t->t.evidence;
        }
        return 0;
}

const struct fm_policy_ops fm_policy_breaker = {
        .name = "breaker",
        .evaluate = breaker_evaluate,
};
