/* SPDX-License-Identifier: MIT */
#include "reconcile.h"

#include <errno.h>
#include <string.h>

static int collect(void *userdata, const struct fm_transition *t)
{
        return fm_plan_add_transition(userdata, t);
}

/*
 * The tick emits transitions deployment by deployment, in list order, and
 * only deployments that still have instances can have any. So walking the
 * deployment list and the transition array side by side hands each
 * deployment its own run of transitions without a search.
 */
int fm_reconcile(struct fm_fleet *f, const struct fm_policy *policies, size_t n_policies, fm_ms now,
                 struct fm_plan *plan)
{
        int ret = 0;

        fm_plan_reset(plan, now);
        if (fm_fleet_tick(f, now, collect, plan) < 0)
                ret = -ENOBUFS;

        size_t cursor = 0;
        for (const struct fm_deployment *d = f->deployments; d; d = d->next) {
                size_t first = cursor;
                while (cursor < plan->n_transitions &&
                       strcmp(plan->transition[cursor].deployment, d->name) == 0)
                        cursor++;

                const struct fm_policy_input in = {
                        .fleet = f,
                        .deployment = d,
                        .transitions = plan->transition + first,
                        .n_transitions = cursor - first,
                        .now = now,
                };
                for (size_t k = 0; k < n_policies; k++) {
                        int r = policies[k].ops->evaluate(policies[k].state, &in, plan);
                        if (r < 0 && ret == 0)
                                ret = r;
                }
        }
        return ret;
}
