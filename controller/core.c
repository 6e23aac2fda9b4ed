/* SPDX-License-Identifier: MIT */
#include "core.h"

#include <errno.h>
#include <stdlib.h>

#include "policy.h"
#include "reconcile.h"

#define CORE_POLICIES_MAX 8

struct fm_core {
        struct fm_core_config cfg;
        struct fm_fleet *fleet;
        struct fm_policies *policy_set;
        struct fm_policy policies[CORE_POLICIES_MAX];
        size_t n_policies;
        struct fm_governor *governor;
        struct fm_alerting *alerting;
        struct fm_plan plan;
};

void fm_core_config_default(struct fm_core_config *cfg)
{
        fm_fleet_config_default(&cfg->fleet);
        fm_policies_config_default(&cfg->policies);
        fm_governor_config_default(&cfg->governor);
        fm_alerting_config_default(&cfg->alerting);
}

int fm_core_config_validate(const struct fm_core_config *cfg)
{
        if (!cfg || fm_fleet_config_validate(&cfg->fleet) < 0 ||
            fm_policies_config_validate(&cfg->policies) < 0 ||
            fm_governor_config_validate(&cfg->governor) < 0)
                return -EINVAL;
        return 0;
}

int fm_core_new(const struct fm_core_config *cfg, struct fm_core **ret)
{
        struct fm_core *c;
        int r;

        if (!cfg || !ret || fm_core_config_validate(cfg) < 0)
                return -EINVAL;
        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->cfg = *cfg;
        if ((r = fm_fleet_new(&c->cfg.fleet, &c->fleet)) < 0 ||
            (r = fm_plan_init(&c->plan, FM_PLAN_DEFAULT_INTENTS, FM_PLAN_DEFAULT_TRANSITIONS)) <
                    0 ||
            (r = fm_policies_new(&c->cfg.policies, &c->policy_set)) < 0 ||
            (r = fm_governor_new(&c->cfg.governor, &c->governor)) < 0 ||
            (r = fm_alerting_new(&c->cfg.alerting, &c->alerting)) < 0) {
                fm_core_free(c);
                return r;
        }
        c->n_policies = fm_policies_list(c->policy_set, c->policies, CORE_POLICIES_MAX);
        *ret = c;
        return 0;
}

struct fm_core *fm_core_free(struct fm_core *c)
{
        if (!c)
                return NULL;
        fm_alerting_free(c->alerting);
        fm_governor_free(c->governor);
        fm_policies_free(c->policy_set);
        fm_plan_done(&c->plan);
        fm_fleet_free(c->fleet);
        free(c);
        return NULL;
}

int fm_core_reconfigure(struct fm_core *c, const struct fm_core_config *cfg)
{
        if (!c || fm_core_config_validate(cfg) < 0)
                return -EINVAL;
        /* validated above, so none of these can refuse: nothing is left half-applied */
        if (fm_fleet_reconfigure(c->fleet, &cfg->fleet) < 0 ||
            fm_policies_reconfigure(c->policy_set, &cfg->policies) < 0 ||
            fm_governor_set_config(c->governor, &cfg->governor) < 0 ||
            fm_alerting_set_config(c->alerting, &cfg->alerting) < 0)
                return -EINVAL;
        c->cfg = *cfg;
        c->n_policies = fm_policies_list(c->policy_set, c->policies, CORE_POLICIES_MAX);
        return 0;
}

int fm_core_apply(struct fm_core *c, const struct fm_event *ev, enum fm_reject *ret_reason)
{
        return fm_fleet_apply(c->fleet, ev, ret_reason);
}

int fm_core_note_scaled(struct fm_core *c, const char *deployment, uint32_t from, uint32_t to,
                        fm_ms now)
{
        if (!c)
                return -EINVAL;
        return fm_fleet_note_scaled(c->fleet, deployment, from, to, now);
}

int fm_core_tick(struct fm_core *c, fm_ms now, const struct fm_plan **ret_plan,
                 struct fm_core_tick_errors *errors)
{
        struct fm_core_tick_errors e = {0};

        e.reconcile = fm_reconcile(c->fleet, c->policies, c->n_policies, now, &c->plan);
        e.governor = fm_governor_review(c->governor, c->fleet, &c->plan, now);
        /* alerts about this tick's verdicts, then the governor's word on those alerts */
        if (fm_alerting_review(c->alerting, c->fleet, &c->plan, now) > 0)
                e.alerting_review = fm_governor_review(c->governor, c->fleet, &c->plan, now);
        /* what was blocked will not happen: the policies must not assume it did */
        fm_policies_note_verdicts(c->policy_set, &c->plan, now);
        if (errors)
                *errors = e;
        if (ret_plan)
                *ret_plan = &c->plan;
        return e.reconcile < 0 ? e.reconcile : e.governor < 0 ? e.governor : e.alerting_review;
}

struct fm_fleet *fm_core_fleet(const struct fm_core *c)
{
        return c->fleet;
}

const struct fm_governor *fm_core_governor(const struct fm_core *c)
{
        return c->governor;
}

const struct fm_policies *fm_core_policies(const struct fm_core *c)
{
        return c->policy_set;
}

const struct fm_plan *fm_core_plan(const struct fm_core *c)
{
        return &c->plan;
}
