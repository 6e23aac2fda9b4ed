/* SPDX-License-Identifier: MIT */
/*
 * The policy set: configuration, per-deployment state, and the five
 * adapters (traffic, canary, rollback, autoscale, autotune) between the read-only
 * fleet and the pure decision modules. One file because the adapters share
 * the per-deployment state and its lifetime rules; each adapter is a
 * section below.
 *
 * Per-deployment state lives in a struct dep_state, found by deployment
 * name through a keyed map (keyed with the fleet's own hash key, taken on
 * the first evaluation) and kept on a list for the sweep. It is created on
 * a deployment's first evaluation and dropped when the deployment is gone:
 * at the start of each tick (the evaluation of the fleet's first
 * deployment) every state whose deployment no longer exists, or exists
 * with another first_seen (forgotten and seen anew), is freed. The number
 * of states is capped by the fleet's max_deployments. If the fleet becomes
 * empty nothing is evaluated, so the states linger until the next tick
 * with a deployment; they are bounded all the same.
 *
 * All five adapters are edge-triggered on their output: they emit an
 * intent only when what they want differs from what they last asked for.
 * They assume what they asked for is carried out (see each section for
 * how a veto is recovered from).
 */
#include "policies.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "map.h"

/* Upper limit of tune_window and tune_cooldown: 30 days. */
#define TUNE_DURATION_MAX ((fm_ms)30 * 24 * 3600 * FM_MS_PER_S)

struct tune_rec {
        bool used;
        bool changed; /* the threshold was changed at least once */
        char version[FM_VERSION_MAX + 1];
        double threshold; /* current (as last asked for) */
        fm_ms changed_at; /* of the last change */
        uint32_t changes; /* numbers the keys */
};

struct dep_state {
        char name[FM_NAME_MAX + 1];
        fm_ms first_seen; /* of the deployment this state belongs to */
        struct dep_state *prev, *next;

        /* autoscale */
        struct fm_autoscale_state as;
        uint32_t scales; /* scale intents emitted; numbers the keys */
        bool asked;      /* a scale was asked for and is not yet seen in the fleet */
        uint32_t asked_to;
        fm_ms asked_at;
        fm_ms quiet_until; /* the governor blocked the last scale: no decision before */

        /* traffic: the last weights emitted, as a hash (override only) */
        bool override;
        uint64_t weights_hash;
        bool weights_resend;       /* the last set was blocked: send it again */
        fm_ms traffic_quiet_until; /* ... but not before */
        uint32_t weight_sets;      /* numbers the keys */

        /* canary */
        bool canary_active;
        char stable[FM_VERSION_MAX + 1], canary[FM_VERSION_MAX + 1];
        struct fm_canary_state cs;
        uint64_t base_requests[2], base_errors[2]; /* [0] stable, [1] canary, at step start */

        /* rollback: bad and rolled-back-from versions, the last rollback */
        struct fm_rollback_state rb;

        /* autotune */
        struct tune_rec tune[FM_POLICIES_TUNE_VERSIONS_MAX];
};

struct fm_policies {
        struct fm_policies_config cfg;
        struct fm_map map; /* name -> dep_state; slot NULL until the first evaluation */
        struct dep_state *states;
        uint32_t n_states;
        bool swept;
        fm_ms swept_at;
        const struct fm_fleet *swept_fleet;

        /* scratch, allocated on first need and reused */
        struct fm_autoscale_instance *as_inst;
        size_t as_cap;
        struct fm_outcome *outcomes;
        size_t outcomes_cap;
        struct fm_tune_scratch *tune_scratch;
        struct fm_sketch *sketch;

        struct fm_policies_stats stats;
};

/* ==== Configuration ===================================================== */

void fm_policies_config_default(struct fm_policies_config *cfg)
{
        memset(cfg, 0, sizeof(*cfg));
        fm_autoscale_config_default(&cfg->autoscale);
        fm_traffic_config_default(&cfg->traffic);
        fm_canary_config_default(&cfg->canary);
        fm_rollback_config_default(&cfg->rollback);
        fm_tune_config_default(&cfg->tune);
        cfg->tune_window = (fm_ms)3600 * FM_MS_PER_S;
        cfg->tune_cooldown = (fm_ms)3600 * FM_MS_PER_S;
        cfg->initial_threshold = 0.5;
}

int fm_policies_config_validate(const struct fm_policies_config *cfg)
{
        if (!cfg)
                return -EINVAL;
        if (cfg->autoscale_enabled && fm_autoscale_config_validate(&cfg->autoscale) < 0)
                return -EINVAL;
        if (cfg->traffic_enabled && fm_traffic_config_validate(&cfg->traffic) < 0)
                return -EINVAL;
        if (cfg->canary_enabled && fm_canary_config_validate(&cfg->canary) < 0)
                return -EINVAL;
        if (cfg->rollback_enabled && fm_rollback_config_validate(&cfg->rollback) < 0)
                return -EINVAL;
        if (cfg->autotune_enabled && fm_tune_config_validate(&cfg->tune) < 0)
                return -EINVAL;
        if (cfg->tune_window <= 0 || cfg->tune_window > TUNE_DURATION_MAX)
                return -EINVAL;
        if (cfg->tune_cooldown < 0 || cfg->tune_cooldown > TUNE_DURATION_MAX)
                return -EINVAL;
        if (!isfinite(cfg->initial_threshold) || cfg->initial_threshold < 0 ||
            cfg->initial_threshold > 1)
                return -EINVAL;
        return 0;
}

/* ==== Lifecycle and per-deployment state ================================ */

static const char *state_key(const void *item)
{
        return ((const struct dep_state *)item)->name;
}

int fm_policies_new(const struct fm_policies_config *cfg, struct fm_policies **ret)
{
        if (!ret || fm_policies_config_validate(cfg) < 0)
                return -EINVAL;
        struct fm_policies *p = calloc(1, sizeof(*p));
        if (!p)
                return -ENOMEM;
        p->cfg = *cfg;
        *ret = p;
        return 0;
}

int fm_policies_reconfigure(struct fm_policies *p, const struct fm_policies_config *cfg)
{
        if (!p || fm_policies_config_validate(cfg) < 0)
                return -EINVAL;
        p->cfg = *cfg;
        return 0;
}

static void state_drop(struct fm_policies *p, struct dep_state *s)
{
        (void)fm_map_remove(&p->map, s);
        if (s->prev)
                s->prev->next = s->next;
        else
                p->states = s->next;
        if (s->next)
                s->next->prev = s->prev;
        p->n_states--;
        free(s);
}

struct fm_policies *fm_policies_free(struct fm_policies *p)
{
        if (!p)
                return NULL;
        while (p->states)
                state_drop(p, p->states);
        fm_map_done(&p->map);
        free(p->as_inst);
        free(p->outcomes);
        free(p->tune_scratch);
        free(p->sketch);
        free(p);
        return NULL;
}

void fm_policies_get_stats(const struct fm_policies *p, struct fm_policies_stats *ret)
{
        *ret = p->stats;
        ret->deployments = p->n_states;
}

static bool state_current(const struct dep_state *s, const struct fm_deployment *d)
{
        return d && d->first_seen == s->first_seen;
}

/*
 * Drops the states of deployments that are gone, once per tick: the first
 * deployment of the fleet is evaluated first on every tick, and the
 * (fleet, now) pair tells the policies of one tick apart.
 */
static void sweep(struct fm_policies *p, const struct fm_policy_input *in)
{
        if (in->deployment != in->fleet->deployments)
                return;
        if (p->swept && p->swept_at == in->now && p->swept_fleet == in->fleet)
                return;
        for (struct dep_state *s = p->states, *sn; s; s = sn) {
                sn = s->next;
                if (!state_current(s, fm_fleet_find_deployment(in->fleet, s->name)))
                        state_drop(p, s);
        }
        p->swept = true;
        p->swept_at = in->now;
        p->swept_fleet = in->fleet;
}

static int state_get(struct fm_policies *p, const struct fm_policy_input *in,
                     struct dep_state **ret)
{
        const struct fm_deployment *d = in->deployment;

        if (!p->map.slot) {
                int r = fm_map_init(&p->map, in->fleet->cfg.hash_key[0], in->fleet->cfg.hash_key[1],
                                    state_key, 16);
                if (r < 0) {
                        p->stats.state_errors++;
                        return r;
                }
        }
        sweep(p, in);

        struct dep_state *s = fm_map_get(&p->map, d->name, strlen(d->name));
        if (s && !state_current(s, d)) {
                state_drop(p, s);
                s = NULL;
        }
        if (!s) {
                if (p->n_states >= in->fleet->cfg.max_deployments) {
                        p->stats.state_errors++;
                        return -ENOBUFS;
                }
                s = calloc(1, sizeof(*s));
                if (!s) {
                        p->stats.state_errors++;
                        return -ENOMEM;
                }
                memcpy(s->name, d->name, sizeof(s->name));
                s->first_seen = d->first_seen;
                fm_autoscale_state_init(&s->as);
                fm_rollback_state_init(&s->rb);
                if (fm_map_put(&p->map, s) < 0) {
                        free(s);
                        p->stats.state_errors++;
                        return -ENOMEM;
                }
                s->next = p->states;
                if (p->states)
                        p->states->prev = s;
                p->states = s;
                p->n_states++;
        }
        *ret = s;
        return 0;
}

/* p99 of a version's recent latency window into *ret; false without data. */
static bool version_p99(struct fm_policies *p, const struct fm_version *v, fm_ms now, double *ret)
{
        if (!p->sketch) {
                p->sketch = malloc(sizeof(*p->sketch));
                if (!p->sketch)
                        return false;
        }
        fm_sketch_ring_collect(&v->latency_recent, now, p->sketch);
        return fm_sketch_quantile(p->sketch, 0.99, ret) == 0 && isfinite(*ret) && *ret >= 0;
}

/* ==== Traffic: breaker ejections become weights over instances ========== */

static const struct fm_policy_ops traffic_ops;

static uint64_t fnv(uint64_t h, const void *data, size_t len)
{
        const unsigned char *b = data;
        for (size_t k = 0; k < len; k++)
                h = (h ^ b[k]) * UINT64_C(0x100000001b3);
        return h;
}

/*
 * Withdraws the intent just added when its weights did not fit: a
 * set_weights without weights must not reach the governor. It is the
 * plan's last intent, so this is a pop; counted as a dropped intent.
 */
static void withdraw(struct fm_plan *plan)
{
        plan->n_intents--;
        plan->dropped_intents++;
}

/*
 * Targets are the deployment's instances in fleet order, base 1 each. The
 * weights are an override only while some instance is ejected or half
 * open; with every instance in traffic at its base share the load
 * balancer's own equal split is what we want, so no intent is emitted for
 * a pool that merely grows or shrinks while healthy — but the return from
 * an override to the equal split is emitted (the instances named with
 * their shares). The last override is remembered as a hash of the
 * (name, weight) pairs; a collision of two different overrides would
 * suppress one intent, with odds of 2^-64.
 *
 * More than FM_TRAFFIC_TARGETS_MAX instances cannot be given integer
 * percentages each: the deployment is skipped (no intent) and counted.
 */
static int traffic_evaluate(void *state, const struct fm_policy_input *in, struct fm_plan *plan)
{
        struct fm_policies *p = state;
        const struct fm_deployment *d = in->deployment;
        struct fm_traffic_target tg[FM_TRAFFIC_TARGETS_MAX];
        struct fm_traffic_result res;
        struct dep_state *s;
        int r;

        r = state_get(p, in, &s);
        if (r < 0)
                return r;
        if (d->n_instances == 0 || in->now < s->traffic_quiet_until)
                return 0;
        if (d->n_instances > FM_TRAFFIC_TARGETS_MAX) {
                p->stats.traffic_too_many++;
                return 0;
        }

        uint32_t n = 0;
        bool probing = false;
        for (const struct fm_instance *i = d->instances; i && n < FM_TRAFFIC_TARGETS_MAX;
             i = i->next, n++) {
                const struct fm_breaker *b = &i->breaker;
                /* the tick rolled the window to now, so its running sums are current */
                uint64_t req = i->window.sum[FM_CTR_REQUESTS], err = i->window.sum[FM_CTR_ERRORS];
                tg[n] = (struct fm_traffic_target){
                        .base = 1,
                        .eject = fm_breaker_ejected(b),
                        .half_open = b->state == FM_BREAKER_HALF_OPEN,
                        .priority = b->state == FM_BREAKER_FORCED_OPEN ? INFINITY
                                    : req > 0                          ? (double)err / (double)req
                                                                       : 0.0,
                };
                probing |= tg[n].half_open;
        }
        r = fm_traffic_eject(&p->cfg.traffic, tg, n, &res);
        if (r < 0)
                return r;

        bool override = res.n_ejected > 0 || probing;
        uint64_t h = 0;
        if (override) {
                uint32_t k = 0;
                h = fnv(UINT64_C(0xcbf29ce484222325), &n, sizeof(n));
                for (const struct fm_instance *i = d->instances; i && k < n; i = i->next, k++) {
                        h = fnv(h, i->name, strlen(i->name) + 1);
                        h = fnv(h, &res.weight[k], sizeof(res.weight[k]));
                }
        }
        if (!s->weights_resend && override == s->override && h == s->weights_hash)
                return 0;

        struct fm_intent *it = fm_plan_add_intent(plan, FM_ACTION_SET_WEIGHTS, traffic_ops.name);
        if (!it)
                return -ENOBUFS;
        struct fm_weight *w = fm_plan_add_weights(plan, it, n);
        if (!w) {
                withdraw(plan);
                return -ENOBUFS;
        }
        uint32_t k = 0;
        for (const struct fm_instance *i = d->instances; i && k < n; i = i->next, k++) {
                memcpy(w[k].target, i->name, sizeof(i->name));
                w[k].weight = res.weight[k];
        }
        s->weight_sets++;
        it->reason = res.n_ejected > 0 ? fm_traffic_reason_name(FM_TRAFFIC_EJECTED)
                     : probing         ? fm_traffic_reason_name(FM_TRAFFIC_PROBE)
                                       : fm_traffic_reason_name(FM_TRAFFIC_HEALTHY);
        memcpy(it->deployment, d->name, sizeof(it->deployment));
        (void)snprintf(it->key, sizeof(it->key), "traffic/weights/%s/%u", d->name, s->weight_sets);
        it->evidence = res.evidence;
        s->override = override;
        s->weights_hash = h;
        s->weights_resend = false;
        return 0;
}

static const struct fm_policy_ops traffic_ops = {
        .name = "traffic",
        .evaluate = traffic_evaluate,
};

/* ==== Canary: a second version walks through weight steps =============== */

static const struct fm_policy_ops canary_ops;

static int canary_weights(struct fm_plan *plan, const struct dep_state *s, const char *dep,
                          uint32_t canary_weight, const char *reason, const char *step,
                          const struct fm_evidence *ev)
{
        struct fm_intent *it = fm_plan_add_intent(plan, FM_ACTION_SET_WEIGHTS, canary_ops.name);
        if (!it)
                return -ENOBUFS;
        struct fm_weight *w = fm_plan_add_weights(plan, it, 2);
        if (!w) {
                withdraw(plan);
                return -ENOBUFS;
        }
        memcpy(w[0].target, s->stable, sizeof(w[0].target));
        w[0].weight = 100 - canary_weight;
        memcpy(w[1].target, s->canary, sizeof(w[1].target));
        w[1].weight = canary_weight;
        it->reason = reason;
        memcpy(it->deployment, dep, sizeof(it->deployment));
        (void)snprintf(it->key, sizeof(it->key), "canary/weights/%s/%s/%s", dep, s->canary, step);
        if (ev)
                it->evidence = *ev;
        return 0;
}

static void canary_rebase(struct dep_state *s, const struct fm_version *stable,
                          const struct fm_version *canary)
{
        s->base_requests[0] = stable->requests_total;
        s->base_errors[0] = stable->errors_total;
        s->base_requests[1] = canary->requests_total;
        s->base_errors[1] = canary->errors_total;
}

/* Requests and errors of a side since its step began; a total that fell (the version was
 * forgotten and seen anew) restarts the count. */
static void canary_side(struct fm_policies *p, const struct fm_version *v, uint64_t *base_req,
                        uint64_t *base_err, fm_ms now, struct fm_canary_side *ret)
{
        if (v->requests_total < *base_req || v->errors_total < *base_err) {
                *base_req = v->requests_total;
                *base_err = v->errors_total;
        }
        ret->requests = v->requests_total - *base_req;
        ret->errors = v->errors_total - *base_err;
        if (ret->errors > ret->requests)
                ret->errors = ret->requests;
        ret->has_p99 = version_p99(p, v, now, &ret->p99_ms);
}

/*
 * A deployment with exactly two versions that have instances is a canary
 * rollout: the version first seen earlier (earlier in the fleet's list) is
 * stable, the other the canary. Versions without a name are not weighed.
 * Any other number of versions ends the rollout (the state is forgotten);
 * a new pair (either name differs) starts one at step 0 and emits its
 * first weights at once, so the analysis compares the traffic split it
 * assumes. Counts per side are version totals since the step began; p99 is
 * each version's recent latency window (fleet latency_window), not the
 * step's. Terminal states (promoted, aborted) emit nothing more until the
 * pair changes.
 */
static int canary_evaluate(void *state, const struct fm_policy_input *in, struct fm_plan *plan)
{
        struct fm_policies *p = state;
        const struct fm_deployment *d = in->deployment;
        const struct fm_canary_config *cfg = &p->cfg.canary;
        const struct fm_version *stable = NULL, *canary = NULL;
        struct dep_state *s;
        char step[16];
        int r, n = 0;

        r = state_get(p, in, &s);
        if (r < 0)
                return r;
        for (const struct fm_version *v = d->versions; v; v = v->next) {
                if (v->n_instances == 0)
                        continue;
                if (n == 0)
                        stable = v;
                else if (n == 1)
                        canary = v;
                n++;
        }
        if (n != 2 || !stable->name[0] || !canary->name[0]) {
                s->canary_active = false;
                return 0;
        }

        if (!s->canary_active || strcmp(s->stable, stable->name) != 0 ||
            strcmp(s->canary, canary->name) != 0) {
                memcpy(s->stable, stable->name, sizeof(s->stable));
                memcpy(s->canary, canary->name, sizeof(s->canary));
                fm_canary_reset(&s->cs, in->now);
                canary_rebase(s, stable, canary);
                s->canary_active = true;
                return canary_weights(plan, s, d->name, fm_canary_weight(cfg, &s->cs),
                                      "canary_started", "0", NULL);
        }

        /* a reload may have shortened the steps */
        if (s->cs.step >= cfg->n_steps)
                s->cs.step = cfg->n_steps - 1;

        struct fm_canary_input cin;
        canary_side(p, stable, &s->base_requests[0], &s->base_errors[0], in->now, &cin.stable);
        canary_side(p, canary, &s->base_requests[1], &s->base_errors[1], in->now, &cin.canary);

        struct fm_canary_decision dec;
        r = fm_canary_decide(cfg, &s->cs, &cin, in->now, &dec);
        if (r <= 0)
                return r;

        const char *reason = fm_canary_reason_name(dec.reason);
        switch (dec.action) {
        case FM_CANARY_ADVANCE:
                canary_rebase(s, stable, canary);
                (void)snprintf(step, sizeof(step), "%u", s->cs.step);
                return canary_weights(plan, s, d->name, dec.weight, reason, step, &dec.evidence);
        case FM_CANARY_PROMOTE:
                return canary_weights(plan, s, d->name, dec.weight, reason, "promoted",
                                      &dec.evidence);
        case FM_CANARY_ABORT: {
                r = canary_weights(plan, s, d->name, 0, reason, "aborted", &dec.evidence);
                if (r < 0)
                        return r;
                struct fm_intent *it =
                        fm_plan_add_intent(plan, FM_ACTION_ROLLBACK, canary_ops.name);
                if (!it)
                        return -ENOBUFS;
                it->reason = reason;
                memcpy(it->deployment, d->name, sizeof(it->deployment));
                memcpy(it->arg.rollback.from, s->canary, sizeof(it->arg.rollback.from));
                memcpy(it->arg.rollback.to, s->stable, sizeof(it->arg.rollback.to));
                (void)snprintf(it->key, sizeof(it->key), "canary/rollback/%s/%s", d->name,
                               s->canary);
                it->evidence = dec.evidence;
                return 0;
        }
        default:
                return 0;
        }
}

static const struct fm_policy_ops canary_ops = {
        .name = "canary",
        .evaluate = canary_evaluate,
};

/* ==== Rollback ========================================================== */

static const struct fm_policy_ops rollback_ops;

_Static_assert(FM_SCORE_BINS == FM_ROLLBACK_SCORE_BINS, "score bins of fleet and rollback");

/*
 * The decision threshold a version's predictions are made at: the one
 * autotune last asked for when it tunes the version, else the initial one.
 */
static double version_threshold(const struct fm_policies *p, const struct dep_state *s,
                                const struct fm_version *v)
{
        if (p->cfg.autotune_enabled)
                for (size_t k = 0; k < FM_POLICIES_TUNE_VERSIONS_MAX; k++)
                        if (s->tune[k].used && strcmp(s->tune[k].version, v->name) == 0)
                                return s->tune[k].threshold;
        return p->cfg.initial_threshold;
}

/*
 * One side of the comparison, over the version's whole recorded life:
 * request and error totals, accuracy over every outcome in its ring (a
 * prediction is right when (score >= threshold) == label), p99 and sample
 * count of latency_total (not the recent ring: a retained baseline has no
 * recent latency), and the score histogram.
 */
static int rollback_side(struct fm_policies *p, const struct dep_state *s,
                         const struct fm_version *v, struct fm_rollback_side *ret)
{
        memset(ret, 0, sizeof(*ret));
        ret->requests = v->requests_total;
        ret->errors = v->errors_total > v->requests_total ? v->requests_total : v->errors_total;
        if (v->outcomes.n > 0) {
                if (p->outcomes_cap < v->outcomes.cap) {
                        struct fm_outcome *o = realloc(p->outcomes, v->outcomes.cap * sizeof(*o));
                        if (!o)
                                return -ENOMEM;
                        p->outcomes = o;
                        p->outcomes_cap = v->outcomes.cap;
                }
                size_t n = fm_version_outcomes(v, v->first_seen, p->outcomes, p->outcomes_cap);
                double t = version_threshold(p, s, v);
                for (size_t k = 0; k < n; k++)
                        if ((p->outcomes[k].score >= t) == (p->outcomes[k].label == 1))
                                ret->correct++;
                ret->outcomes = n;
        }
        if (v->latency_total.count > 0 &&
            fm_sketch_quantile(&v->latency_total, 0.99, &ret->p99_ms) == 0 &&
            isfinite(ret->p99_ms) && ret->p99_ms >= 0) {
                ret->has_p99 = true;
                ret->latency_samples = v->latency_total.count;
        } else
                ret->p99_ms = 0;
        for (size_t k = 0; k < FM_SCORE_BINS; k++)
                ret->score_bins[k] =
                        isfinite(v->score_bins[k]) && v->score_bins[k] > 0 ? v->score_bins[k] : 0;
        return 0;
}

/*
 * Requests and errors of v over the last len ms: the 1-min windows up to
 * an hour, the 6-min ones beyond (validation keeps slo_period at most 30
 * days, so no window exceeds their 6 h). Slots are rounded to the nearest
 * count, at least 1; the newest slot is the one still filling, so the sum
 * covers between k - 1 and k slots of time.
 */
/*
 * The current version is the newest (last first seen) named version with
 * instances. Its baseline: during a canary (another version with
 * instances) the stable one, the first seen of those; otherwise the most
 * recent named version seen before it, instances or not (the fleet keeps
 * an empty version for version_retention, with its statistics). Versions
 * first seen after the current one have no instances and are not
 * candidates.
 *
 * Ready: a baseline with instances must have at least one that reports
 * ready and is not ejected by its breaker (instances that are all failing
 * are no place to send traffic). A baseline without instances counts as
 * ready: it is retained and its artifact deployable, and starting it is
 * the actuator's part; a rollback is exactly that. Whether it is bad is
 * the decision module's check. Served = last_seen - first_seen of the
 * baseline; "without incident" = not marked bad.
 *
 * Edge: the decision is committed (the current version marked bad and
 * rolled back from) only once the intent is in the plan; the version then
 * decides nothing more, and the key names the pair. A vetoed rollback is
 * not retried: the operator sees it in the audit and acts.
 */
static int rollback_evaluate(void *state, const struct fm_policy_input *in, struct fm_plan *plan)
{
        struct fm_policies *p = state;
        const struct fm_deployment *d = in->deployment;
        const struct fm_rollback_config *cfg = &p->cfg.rollback;
        const struct fm_version *cur = NULL, *base = NULL;
        struct fm_burn_window w[FM_BURN_WINDOWS];
        struct dep_state *s;
        int r;

        r = state_get(p, in, &s);
        if (r < 0)
                return r;
        for (const struct fm_version *v = d->versions; v; v = v->next)
                if (v->n_instances > 0 && v->name[0])
                        cur = v;
        if (!cur)
                return 0;
        for (const struct fm_version *v = d->versions; v && !base; v = v->next)
                if (v != cur && v->n_instances > 0 && v->name[0])
                        base = v;
        for (const struct fm_version *v = cur->prev; v && !base; v = v->prev)
                if (v->name[0])
                        base = v;

        struct fm_rollback_input rin = {.current = cur->name, .baseline = base ? base->name : NULL};
        r = rollback_side(p, s, cur, &rin.cur);
        if (r < 0)
                return r;
        if (base) {
                r = rollback_side(p, s, base, &rin.base);
                if (r < 0)
                        return r;
                rin.baseline_ready = base->n_instances == 0;
                for (const struct fm_instance *i = base->instances; i && !rin.baseline_ready;
                     i = i->vnext)
                        rin.baseline_ready = i->ready && !fm_breaker_ejected(&i->breaker);
                rin.baseline_served =
                        base->last_seen > base->first_seen ? base->last_seen - base->first_seen : 0;
        }
        r = fm_burn_windows_scaled(cfg->slo_period, w);
        if (r < 0)
                return r;
        for (size_t k = 0; k < FM_BURN_WINDOWS; k++) {
                fm_version_burn_counts(cur, in->now, w[k].long_ms, &rin.burn.requests[k][0],
                                       &rin.burn.errors[k][0]);
                fm_version_burn_counts(cur, in->now, w[k].short_ms, &rin.burn.requests[k][1],
                                       &rin.burn.errors[k][1]);
        }

        struct fm_rollback_decision dec;
        r = fm_rollback_decide(cfg, &s->rb, &rin, in->now, &dec);
        if (r <= 0)
                return r;

        struct fm_intent *it = fm_plan_add_intent(plan, FM_ACTION_ROLLBACK, rollback_ops.name);
        if (!it)
                return -ENOBUFS;
        it->reason = fm_rollback_reason_name(dec.reason);
        memcpy(it->deployment, d->name, sizeof(it->deployment));
        memcpy(it->arg.rollback.from, cur->name, sizeof(it->arg.rollback.from));
        memcpy(it->arg.rollback.to, base->name, sizeof(it->arg.rollback.to));
        /*
         * Names of 63 + 64 + 64 bytes do not fit FM_INTENT_KEY_MAX: then the
         * key leaves out the target, still unique as a version is rolled
         * back from at most once.
         */
        char key[FM_NAME_MAX + 2 * FM_VERSION_MAX + 16];
        int n = snprintf(key, sizeof(key), "rollback/%s/%s/%s", d->name, cur->name, base->name);
        if (n > 0 && (size_t)n < sizeof(it->key))
                memcpy(it->key, key, (size_t)n + 1);
        else
                (void)snprintf(it->key, sizeof(it->key), "rollback/%s/%s", d->name, cur->name);
        it->evidence = dec.evidence;
        return fm_rollback_commit(&s->rb, &dec, in->now);
}

static const struct fm_policy_ops rollback_ops = {
        .name = "rollback",
        .evaluate = rollback_evaluate,
};

/* ==== Autoscale ========================================================= */

static const struct fm_policy_ops autoscale_ops;

/*
 * The current count. Until an actuator reports desired replicas, the
 * fleet's count of instances is the current count — except right after we
 * asked for a change: new instances take cold_start to appear and removed
 * ones stay in the fleet until forget_after of silence, and deciding on the
 * stale count would ask again every tick. So the count asked for stands in
 * for the fleet's until the fleet shows it, until the governor is known to
 * have blocked it (fm_policies_note_verdicts()), or for cold_start +
 * forget_after (then the wish evidently was not carried out, e.g. the
 * backend failed, and the fleet's count rules again; the decision is made
 * anew).
 */
static uint32_t autoscale_current(const struct fm_policies *p, struct dep_state *s,
                                  const struct fm_policy_input *in)
{
        uint32_t seen = in->deployment->n_instances;
        if (!s->asked)
                return seen;
        fm_ms hold = p->cfg.autoscale.cold_start + in->fleet->cfg.forget_after;
        if (seen == s->asked_to || in->now - s->asked_at >= hold || in->now < s->asked_at) {
                s->asked = false;
                return seen;
        }
        return s->asked_to;
}

/*
 * Per instance: ready = reported ready and not ejected by its breaker;
 * values = the valid gauge averages (GPU_UTIL, QUEUE_DEPTH, IN_FLIGHT). A
 * gauge average stays valid after its instance stops reporting it; a
 * silent instance is forgotten after forget_after. Latency (only when that
 * metric is enabled): p99 over the recent window of the version with the
 * most instances (ties: the one seen first), the version that carries most
 * of the traffic; merging all versions would let a small canary skew it.
 */
static int autoscale_evaluate(void *state, const struct fm_policy_input *in, struct fm_plan *plan)
{
        static const enum fm_gauge gauge_of[FM_AUTOSCALE_PER_INSTANCE_METRICS] = {
                [FM_AUTOSCALE_GPU_UTIL] = FM_GAUGE_GPU_UTIL,
                [FM_AUTOSCALE_QUEUE_DEPTH] = FM_GAUGE_QUEUE_DEPTH,
                [FM_AUTOSCALE_IN_FLIGHT] = FM_GAUGE_IN_FLIGHT,
        };
        struct fm_policies *p = state;
        const struct fm_deployment *d = in->deployment;
        struct dep_state *s;
        int r;

        r = state_get(p, in, &s);
        if (r < 0)
                return r;
        if (d->n_instances == 0 || in->now < s->quiet_until)
                return 0;
        if (d->n_instances > FM_AUTOSCALE_INSTANCES_MAX)
                return -E2BIG;
        if (p->as_cap < d->n_instances) {
                struct fm_autoscale_instance *a = realloc(p->as_inst, d->n_instances * sizeof(*a));
                if (!a)
                        return -ENOMEM;
                p->as_inst = a;
                p->as_cap = d->n_instances;
        }

        size_t n = 0;
        for (const struct fm_instance *i = d->instances; i && n < p->as_cap; i = i->next, n++) {
                struct fm_autoscale_instance *a = &p->as_inst[n];
                a->ready = i->ready && !fm_breaker_ejected(&i->breaker);
                for (size_t m = 0; m < FM_AUTOSCALE_PER_INSTANCE_METRICS; m++) {
                        const struct fm_ewma *g = &i->gauge[gauge_of[m]];
                        a->has[m] = g->valid && isfinite(g->value) && g->value >= 0;
                        a->value[m] = a->has[m] ? g->value : 0;
                }
        }

        struct fm_autoscale_input ain = {
                .current = autoscale_current(p, s, in),
                .instances = p->as_inst,
                .n_instances = n,
        };
        if (p->cfg.autoscale.metric[FM_AUTOSCALE_LATENCY].enabled) {
                const struct fm_version *top = NULL;
                for (const struct fm_version *v = d->versions; v; v = v->next)
                        if (v->n_instances > 0 && (!top || v->n_instances > top->n_instances))
                                top = v;
                if (top)
                        ain.has_latency = version_p99(p, top, in->now, &ain.latency);
        }

        struct fm_autoscale_decision dec;
        r = fm_autoscale_decide(&p->cfg.autoscale, &s->as, &ain, in->now, &dec);
        if (r <= 0)
                return r;

        struct fm_intent *it = fm_plan_add_intent(plan, FM_ACTION_SCALE, autoscale_ops.name);
        if (!it)
                return -ENOBUFS;
        s->scales++;
        s->asked = true;
        s->asked_to = dec.desired;
        s->asked_at = in->now;
        it->reason = dec.reason;
        memcpy(it->deployment, d->name, sizeof(it->deployment));
        it->arg.scale.from = dec.current;
        it->arg.scale.to = dec.desired;
        (void)snprintf(it->key, sizeof(it->key), "autoscale/scale/%s/%u/%u", d->name, dec.desired,
                       s->scales);
        it->evidence = dec.evidence;
        return 0;
}

void fm_policies_note_verdicts(struct fm_policies *p, const struct fm_plan *plan, fm_ms now)
{
        if (!p || !plan || !p->map.slot)
                return;
        for (uint32_t k = 0; k < plan->n_intents; k++) {
                const struct fm_intent *it = &plan->intent[k];
                if (it->verdict == FM_VERDICT_APPROVED || it->verdict == FM_VERDICT_DRY_RUN ||
                    it->verdict == FM_VERDICT_PENDING)
                        continue;
                struct dep_state *s = fm_map_get(&p->map, it->deployment, strlen(it->deployment));
                if (!s)
                        continue;
                if (it->action == FM_ACTION_SCALE && strcmp(it->policy, autoscale_ops.name) == 0 &&
                    s->asked && s->asked_to == it->arg.scale.to) {
                        s->asked = false;
                        s->quiet_until = now + FM_POLICIES_VETO_QUIET_MS;
                } else if (it->action == FM_ACTION_SET_WEIGHTS &&
                           strcmp(it->policy, traffic_ops.name) == 0) {
                        s->weights_resend = true;
                        s->traffic_quiet_until = now + FM_POLICIES_VETO_QUIET_MS;
                }
        }
}

static const struct fm_policy_ops autoscale_ops = {
        .name = "autoscale",
        .evaluate = autoscale_evaluate,
};

/* ==== Autotune ========================================================== */

static const struct fm_policy_ops autotune_ops;

/*
 * The tuning record of a version, made on first need. Records of versions
 * the deployment no longer has are freed first; a full table (more than
 * FM_POLICIES_TUNE_VERSIONS_MAX versions with outcomes) returns NULL.
 */
static struct tune_rec *tune_rec(struct dep_state *s, const struct fm_deployment *d,
                                 const char *version, double initial)
{
        struct tune_rec *free_rec = NULL;
        for (size_t k = 0; k < FM_POLICIES_TUNE_VERSIONS_MAX; k++) {
                struct tune_rec *t = &s->tune[k];
                if (t->used && strcmp(t->version, version) == 0)
                        return t;
                if (t->used && !fm_deployment_find_version(d, t->version))
                        t->used = false;
                if (!t->used && !free_rec)
                        free_rec = t;
        }
        if (!free_rec)
                return NULL;
        memset(free_rec, 0, sizeof(*free_rec));
        free_rec->used = true;
        (void)snprintf(free_rec->version, sizeof(free_rec->version), "%s", version);
        free_rec->threshold = initial;
        return free_rec;
}

/*
 * Per version with instances and labelled outcomes: the outcomes of the
 * last tune_window, the current threshold (initial_threshold until we
 * changed it; a change is assumed applied — there is no feedback of the
 * threshold in effect), and no decision at all within tune_cooldown of the
 * last change. A version's outcomes are read into one buffer sized to its
 * ring, grown on need (at most FM_OUTCOMES_PER_VERSION_MAX records).
 */
static int autotune_evaluate(void *state, const struct fm_policy_input *in, struct fm_plan *plan)
{
        struct fm_policies *p = state;
        const struct fm_deployment *d = in->deployment;
        struct dep_state *s;
        int r, ret = 0;

        r = state_get(p, in, &s);
        if (r < 0)
                return r;

        for (const struct fm_version *v = d->versions; v; v = v->next) {
                if (v->n_instances == 0 || v->outcomes.n == 0)
                        continue;
                struct tune_rec *t = tune_rec(s, d, v->name, p->cfg.initial_threshold);
                if (!t) {
                        p->stats.tune_versions_skipped++;
                        continue;
                }
                if (t->changed && in->now - t->changed_at < p->cfg.tune_cooldown &&
                    in->now >= t->changed_at)
                        continue;

                if (!p->tune_scratch) {
                        p->tune_scratch = malloc(sizeof(*p->tune_scratch));
                        if (!p->tune_scratch)
                                return -ENOMEM;
                }
                if (p->outcomes_cap < v->outcomes.cap) {
                        struct fm_outcome *o = realloc(p->outcomes, v->outcomes.cap * sizeof(*o));
                        if (!o)
                                return -ENOMEM;
                        p->outcomes = o;
                        p->outcomes_cap = v->outcomes.cap;
                }
                size_t n = fm_version_outcomes(v, in->now - p->cfg.tune_window, p->outcomes,
                                               p->outcomes_cap);

                struct fm_tune_decision dec;
                r = fm_tune_decide(&p->cfg.tune, p->outcomes, n, t->threshold, p->tune_scratch,
                                   &dec);
                if (r < 0) {
                        if (ret == 0)
                                ret = r;
                        continue;
                }
                if (!dec.change)
                        continue;

                struct fm_intent *it =
                        fm_plan_add_intent(plan, FM_ACTION_SET_THRESHOLD, autotune_ops.name);
                if (!it)
                        return -ENOBUFS;
                t->changes++;
                it->reason = fm_tune_reason_name(dec.reason);
                memcpy(it->deployment, d->name, sizeof(it->deployment));
                memcpy(it->arg.threshold.version, v->name, sizeof(it->arg.threshold.version));
                it->arg.threshold.from = t->threshold;
                it->arg.threshold.to = dec.threshold;
                (void)snprintf(it->key, sizeof(it->key), "autotune/threshold/%s/%s/%u", d->name,
                               v->name, t->changes);
                fm_tune_evidence(&dec, &it->evidence);
                t->threshold = dec.threshold;
                t->changed = true;
                t->changed_at = in->now;
        }
        return ret;
}

static const struct fm_policy_ops autotune_ops = {
        .name = "autotune",
        .evaluate = autotune_evaluate,
};

/* ==== The list ========================================================== */

size_t fm_policies_list(struct fm_policies *p, struct fm_policy *out, size_t max)
{
        const struct fm_policy all[] = {
                {.ops = &fm_policy_breaker, .state = NULL},
                {.ops = p->cfg.traffic_enabled ? &traffic_ops : NULL, .state = p},
                {.ops = p->cfg.canary_enabled ? &canary_ops : NULL, .state = p},
                {.ops = p->cfg.rollback_enabled ? &rollback_ops : NULL, .state = p},
                {.ops = p->cfg.autoscale_enabled ? &autoscale_ops : NULL, .state = p},
                {.ops = p->cfg.autotune_enabled ? &autotune_ops : NULL, .state = p},
        };
        size_t n = 0;
        for (size_t k = 0; k < ARRAY_SIZE(all) && n < max; k++)
                if (all[k].ops)
                        out[n++] = all[k];
        return n;
}
