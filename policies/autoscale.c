/* SPDX-License-Identifier: MIT */
#include "autoscale.h"

#include <errno.h>
#include <math.h>
#include <string.h>

static const char *const metric_names[_FM_AUTOSCALE_METRIC_MAX] = {
        [FM_AUTOSCALE_GPU_UTIL] = "gpu_util",
        [FM_AUTOSCALE_QUEUE_DEPTH] = "queue_depth",
        [FM_AUTOSCALE_IN_FLIGHT] = "in_flight",
        [FM_AUTOSCALE_LATENCY] = "latency",
};

/* Evidence keys must be static strings. */
static const char *const ratio_keys[_FM_AUTOSCALE_METRIC_MAX] = {
        [FM_AUTOSCALE_GPU_UTIL] = "gpu_util_ratio",
        [FM_AUTOSCALE_QUEUE_DEPTH] = "queue_depth_ratio",
        [FM_AUTOSCALE_IN_FLIGHT] = "in_flight_ratio",
        [FM_AUTOSCALE_LATENCY] = "latency_ratio",
};

static const char *const replicas_keys[_FM_AUTOSCALE_METRIC_MAX] = {
        [FM_AUTOSCALE_GPU_UTIL] = "gpu_util_replicas",
        [FM_AUTOSCALE_QUEUE_DEPTH] = "queue_depth_replicas",
        [FM_AUTOSCALE_IN_FLIGHT] = "in_flight_replicas",
        [FM_AUTOSCALE_LATENCY] = "latency_replicas",
};

const char *fm_autoscale_metric_name(enum fm_autoscale_metric m)
{
        return (unsigned)m < _FM_AUTOSCALE_METRIC_MAX ? metric_names[m] : NULL;
}

void fm_autoscale_config_default(struct fm_autoscale_config *cfg)
{
        *cfg = (struct fm_autoscale_config){
                .min_replicas = 1,
                .max_replicas = 10,
                .metric =
                        {
                                [FM_AUTOSCALE_GPU_UTIL] = {.enabled = true, .target = 0.7},
                                [FM_AUTOSCALE_QUEUE_DEPTH] = {.enabled = false, .target = 4.0},
                                [FM_AUTOSCALE_IN_FLIGHT] = {.enabled = false, .target = 8.0},
                                [FM_AUTOSCALE_LATENCY] = {.enabled = false, .target = 1000.0},
                        },
                .tolerance = 0.1,
                .up_window = 0,
                .down_window = 300 * FM_MS_PER_S,
                .up = {.percent = 100, .pods = 4, .period = 15 * FM_MS_PER_S},
                .down = {.percent = 100, .pods = 0, .period = 15 * FM_MS_PER_S},
                .cost_per_instance_hour = 0.0,
                .budget_per_hour = 0.0,
                .cold_start = 120 * FM_MS_PER_S,
                .predictive = false,
                .holt_alpha = 0.5,
                .holt_beta = 0.3,
        };
}

static bool cost_on(const struct fm_autoscale_config *cfg)
{
        return cfg->cost_per_instance_hour > 0.0 && cfg->budget_per_hour > 0.0;
}

/*
 * floor(budget / cost), with a relative nudge so that decimal inputs that
 * divide exactly (0.3 / 0.1) are not floored one short by binary rounding.
 */
static uint32_t affordable(const struct fm_autoscale_config *cfg)
{
        double n = cfg->budget_per_hour / cfg->cost_per_instance_hour;

        n = floor(n * (1.0 + 1e-9));
        return n >= (double)UINT32_MAX ? UINT32_MAX : (uint32_t)n;
}

static bool step_ok(const struct fm_autoscale_step *s, uint32_t percent_max)
{
        return s->period > 0 && s->period <= FM_AUTOSCALE_PERIOD_MAX && s->percent <= percent_max &&
               s->pods <= FM_AUTOSCALE_REPLICAS_MAX;
}

static bool duration_ok(fm_ms d)
{
        return d >= 0 && d <= FM_AUTOSCALE_WINDOW_MAX;
}

static bool factor_ok(double f)
{
        return isfinite(f) && f > 0.0 && f <= 1.0;
}

static bool money_ok(double m)
{
        return isfinite(m) && m >= 0.0;
}

int fm_autoscale_config_validate(const struct fm_autoscale_config *cfg)
{
        bool any = false;

        if (cfg->min_replicas == 0 || cfg->max_replicas < cfg->min_replicas ||
            cfg->max_replicas > FM_AUTOSCALE_REPLICAS_MAX)
                return -EINVAL;
        for (unsigned m = 0; m < _FM_AUTOSCALE_METRIC_MAX; m++) {
                const struct fm_autoscale_metric_config *mc = &cfg->metric[m];

                if (!mc->enabled)
                        continue;
                if (!isfinite(mc->target) || mc->target <= 0.0)
                        return -EINVAL;
                if (m == FM_AUTOSCALE_GPU_UTIL && mc->target > 1.0)
                        return -EINVAL;
                any = true;
        }
        if (!any)
                return -EINVAL;
        if (!isfinite(cfg->tolerance) || cfg->tolerance < 0.0 || cfg->tolerance >= 1.0)
                return -EINVAL;
        if (!duration_ok(cfg->up_window) || !duration_ok(cfg->down_window) ||
            !duration_ok(cfg->cold_start))
                return -EINVAL;
        if (!step_ok(&cfg->up, FM_AUTOSCALE_PERCENT_MAX) || !step_ok(&cfg->down, 100))
                return -EINVAL;
        if (!money_ok(cfg->cost_per_instance_hour) || !money_ok(cfg->budget_per_hour))
                return -EINVAL;
        if (cost_on(cfg) && affordable(cfg) < cfg->min_replicas)
                return -EINVAL;
        if (cfg->predictive && cfg->cold_start == 0)
                return -EINVAL;
        if (!factor_ok(cfg->holt_alpha) || !factor_ok(cfg->holt_beta))
                return -EINVAL;
        return 0;
}

void fm_autoscale_state_init(struct fm_autoscale_state *s)
{
        memset(s, 0, sizeof(*s));
}

static bool value_ok(double v)
{
        return isfinite(v) && v >= 0.0;
}

static int input_validate(const struct fm_autoscale_input *in)
{
        if (in->current > FM_AUTOSCALE_REPLICAS_MAX)
                return -EINVAL;
        if (in->n_instances > FM_AUTOSCALE_INSTANCES_MAX || (in->n_instances > 0 && !in->instances))
                return -EINVAL;
        if (in->has_latency && !value_ok(in->latency))
                return -EINVAL;
        for (size_t i = 0; i < in->n_instances; i++)
                for (unsigned m = 0; m < FM_AUTOSCALE_PER_INSTANCE_METRICS; m++)
                        if (in->instances[i].has[m] && !value_ok(in->instances[i].value[m]))
                                return -EINVAL;
        return 0;
}

/* ---- bounded monotonic queues for the stabilisation windows ------------ */

static struct fm_autoscale_rec *rec_at(struct fm_autoscale_recs *r, uint32_t i)
{
        return &r->item[(r->head + i) % FM_AUTOSCALE_RECS_MAX];
}

static void recs_pop_front(struct fm_autoscale_recs *r)
{
        r->head = (r->head + 1) % FM_AUTOSCALE_RECS_MAX;
        r->n--;
}

/*
 * An entry is in the window while at > now - window (the HPA's "after the
 * cutoff"). Entries stamped after now (the clock went back) are restamped
 * now: they then count for one whole window from the jump, no longer.
 */
static void recs_expire(struct fm_autoscale_recs *r, fm_ms now, fm_ms window)
{
        for (uint32_t i = 0; i < r->n; i++)
                if (rec_at(r, i)->at > now)
                        rec_at(r, i)->at = now;
        while (r->n > 0 && rec_at(r, 0)->at <= now - window)
                recs_pop_front(r);
}

/*
 * Appends a recommendation to a queue kept monotonic: want_max keeps the
 * entries that can still be the maximum (a newer entry at least as large
 * makes an older one irrelevant), !want_max the minimum. The oldest entry
 * is then the window's extreme. A time before the newest entry's (the clock
 * went back) is taken as the newest's, so the queue stays in time order.
 */
static void recs_push(struct fm_autoscale_recs *r, fm_ms now, uint32_t replicas, bool want_max)
{
        fm_ms at = now;

        while (r->n > 0) {
                struct fm_autoscale_rec *back = rec_at(r, r->n - 1);

                if (back->at > at)
                        at = back->at;
                if (want_max ? back->replicas > replicas : back->replicas < replicas)
                        break;
                r->n--;
        }
        if (r->n == FM_AUTOSCALE_RECS_MAX) {
                /* Merge the two oldest: the extreme value, the newer time (conservative). */
                rec_at(r, 1)->replicas = rec_at(r, 0)->replicas;
                recs_pop_front(r);
        }
        *rec_at(r, r->n) = (struct fm_autoscale_rec){.at = at, .replicas = replicas};
        r->n++;
}

/* ---- scale events for the step-limit periods ---------------------------- */

static struct fm_autoscale_event *event_at(struct fm_autoscale_state *s, uint32_t i)
{
        return &s->event[(s->events_head + i) % FM_AUTOSCALE_EVENTS_MAX];
}

static void events_pop_front(struct fm_autoscale_state *s)
{
        s->events_head = (s->events_head + 1) % FM_AUTOSCALE_EVENTS_MAX;
        s->n_events--;
}

static void events_expire(struct fm_autoscale_state *s, const struct fm_autoscale_config *cfg,
                          fm_ms now)
{
        fm_ms keep = cfg->up.period > cfg->down.period ? cfg->up.period : cfg->down.period;

        for (uint32_t i = 0; i < s->n_events; i++)
                if (event_at(s, i)->at > now)
                        event_at(s, i)->at = now; /* the clock went back, see recs_expire */
        while (s->n_events > 0 && event_at(s, 0)->at <= now - keep)
                events_pop_front(s);
}

static void events_push(struct fm_autoscale_state *s, fm_ms now, uint32_t from, uint32_t to)
{
        if (s->n_events == FM_AUTOSCALE_EVENTS_MAX) {
                struct fm_autoscale_event *a = event_at(s, 0), *b = event_at(s, 1);

                b->added = fm_sat_add_u32(b->added, a->added);
                b->removed = fm_sat_add_u32(b->removed, a->removed);
                events_pop_front(s);
        }
        *event_at(s, s->n_events) = (struct fm_autoscale_event){
                .at = now,
                .added = to > from ? to - from : 0,
                .removed = from > to ? from - to : 0,
        };
        s->n_events++;
}

/* The count at the start of the period: current minus what was added in it plus what was removed.
 */
static int64_t period_start(struct fm_autoscale_state *s, uint32_t current, fm_ms period, fm_ms now)
{
        int64_t start = current;

        for (uint32_t i = 0; i < s->n_events; i++) {
                const struct fm_autoscale_event *e = event_at(s, i);

                if (e->at > now - period)
                        start += (int64_t)e->removed - (int64_t)e->added;
        }
        return start < 0 ? 0 : start;
}

/* Highest count a scale-up may reach now; the policy allowing the most wins; never below current.
 */
static uint32_t up_limit(struct fm_autoscale_state *s, const struct fm_autoscale_config *cfg,
                         uint32_t current, fm_ms now)
{
        int64_t start = period_start(s, current, cfg->up.period, now), limit = current;

        if (cfg->up.pods > 0 && start + cfg->up.pods > limit)
                limit = start + cfg->up.pods;
        if (cfg->up.percent > 0) {
                /* ceil: a small count must still be able to grow */
                int64_t p = start + (start * cfg->up.percent + 99) / 100;
                if (p > limit)
                        limit = p;
        }
        return limit > UINT32_MAX ? UINT32_MAX : (uint32_t)limit;
}

/* Lowest count a scale-down may reach now; the policy allowing the most wins; never above current.
 */
static uint32_t down_limit(struct fm_autoscale_state *s, const struct fm_autoscale_config *cfg,
                           uint32_t current, fm_ms now)
{
        int64_t start = period_start(s, current, cfg->down.period, now), limit = current;

        if (cfg->down.pods > 0 && start - cfg->down.pods < limit)
                limit = start - cfg->down.pods;
        if (cfg->down.percent > 0) {
                /* floor: the HPA truncates, allowing the smaller change */
                int64_t p = start * (100 - cfg->down.percent) / 100;
                if (p < limit)
                        limit = p;
        }
        return limit < 0 ? 0 : (uint32_t)limit;
}

/* ---- the proportional rule ---------------------------------------------- */

enum outcome {
        OUT_CHANGE,    /* proportional count, outside tolerance */
        OUT_TOLERANCE, /* within tolerance: current */
        OUT_REVERSED,  /* the missing/not-ready assumptions reversed it: current */
};

struct proposal {
        bool valid;
        enum outcome outcome;
        double ratio;      /* the one the count rests on */
        uint32_t replicas; /* proposed count */
        double demand;     /* load in instances at target, from ready instances */
};

/* ceil with a tolerance for binary rounding: 3 × 2.0000000000000004 is 6, not 7. */
static uint32_t ceil_count(double x)
{
        double c;

        if (!(x > 0.0))
                return 0;
        c = ceil(x - 1e-9 * fmax(1.0, x));
        return c >= (double)FM_AUTOSCALE_REPLICAS_MAX ? FM_AUTOSCALE_REPLICAS_MAX : (uint32_t)c;
}

static bool within(double ratio, double tolerance)
{
        return fabs(1.0 - ratio) <= tolerance + 1e-9;
}

/*
 * The HPA's replica calculation for a per-instance metric. First the plain
 * ratio over ready instances with a value. If nothing is missing and no
 * instance is still starting during a scale-up, that is the answer. If not,
 * the HPA's conservative assumptions fill the gaps — ready instances without
 * a value at target on a scale-down and at 0 on a scale-up, instances not
 * ready at 0 on a scale-up — and the ratio is taken again over the larger
 * set. If the gaps turn the direction around or bring the ratio within
 * tolerance, the metric asks for nothing: the data is not clear enough to
 * move on.
 */
static struct proposal per_instance(const struct fm_autoscale_config *cfg,
                                    const struct fm_autoscale_input *in, unsigned m)
{
        double target = cfg->metric[m].target, sum = 0.0, ratio, nratio, total;
        uint32_t with = 0, missing = 0, unready = 0, n;
        struct proposal p = {.valid = false};

        for (size_t i = 0; i < in->n_instances; i++) {
                const struct fm_autoscale_instance *x = &in->instances[i];

                if (!x->ready)
                        unready++;
                else if (x->has[m]) {
                        sum += x->value[m];
                        with++;
                } else
                        missing++;
        }
        if (with == 0)
                return p;

        p.valid = true;
        p.demand = sum / target;
        ratio = sum / with / target;
        bool up_with_unready = unready > 0 && ratio > 1.0;

        if (!up_with_unready && missing == 0) {
                p.ratio = ratio;
                if (within(ratio, cfg->tolerance)) {
                        p.outcome = OUT_TOLERANCE;
                        p.replicas = in->current;
                } else {
                        p.outcome = OUT_CHANGE;
                        p.replicas = ceil_count(ratio * with);
                }
                return p;
        }

        total = sum;
        n = with;
        if (missing > 0 && ratio < 1.0) {
                total += missing * target;
                n += missing;
        } else if (missing > 0 && ratio > 1.0)
                n += missing;
        if (up_with_unready)
                n += unready;
        nratio = total / n / target;
        p.ratio = nratio;

        if ((ratio < 1.0 && nratio > 1.0) || (ratio > 1.0 && nratio < 1.0)) {
                p.outcome = OUT_REVERSED;
                p.replicas = in->current;
                return p;
        }
        if (within(nratio, cfg->tolerance)) {
                p.outcome = OUT_TOLERANCE;
                p.replicas = in->current;
                return p;
        }
        p.replicas = ceil_count(nratio * n);
        if ((nratio < 1.0 && p.replicas > in->current) ||
            (nratio > 1.0 && p.replicas < in->current)) {
                p.outcome = OUT_REVERSED;
                p.replicas = in->current;
                return p;
        }
        p.outcome = OUT_CHANGE;
        return p;
}

static struct proposal deployment_level(const struct fm_autoscale_config *cfg,
                                        const struct fm_autoscale_input *in, unsigned m,
                                        uint32_t ready)
{
        struct proposal p = {.valid = false};

        if (!in->has_latency || ready == 0)
                return p;
        p.valid = true;
        p.ratio = in->latency / cfg->metric[m].target;
        p.demand = p.ratio * ready;
        if (within(p.ratio, cfg->tolerance)) {
                p.outcome = OUT_TOLERANCE;
                p.replicas = in->current;
        } else {
                p.outcome = OUT_CHANGE;
                p.replicas = ceil_count(p.demand);
        }
        return p;
}

/* ---- Holt's linear trend ------------------------------------------------- */

/*
 * Holt's method for samples at irregular times: the trend is per ms, the
 * level is first carried forward by trend × dt and then blended with the
 * sample. alpha and beta weigh each update, so they assume roughly regular
 * ticks. A second sample in the same tick is ignored; a gap over
 * FM_AUTOSCALE_HOLT_GAP_MAX, or a clock gone back, restarts the forecast,
 * as such a trend says nothing about now.
 */
static void holt_update(struct fm_autoscale_state *s, const struct fm_autoscale_config *cfg,
                        double x, fm_ms now)
{
        fm_ms dt = now - s->holt.last;

        if (!s->holt.valid || dt > FM_AUTOSCALE_HOLT_GAP_MAX || dt < 0) {
                s->holt.valid = true;
                s->holt.level = x;
                s->holt.trend = 0.0;
                s->holt.last = now;
                return;
        }
        if (dt <= 0)
                return;

        double prev = s->holt.level;
        double forecast = prev + s->holt.trend * (double)dt;

        s->holt.level = cfg->holt_alpha * x + (1.0 - cfg->holt_alpha) * forecast;
        s->holt.trend = cfg->holt_beta * (s->holt.level - prev) / (double)dt +
                        (1.0 - cfg->holt_beta) * s->holt.trend;
        s->holt.last = now;
}

/* ---- the decision -------------------------------------------------------- */

static void record_action(struct fm_autoscale_state *s, const struct fm_autoscale_config *cfg,
                          fm_ms now, uint32_t from, uint32_t to)
{
        events_push(s, now, from, to);
        if (to > from && cfg->cold_start > 0) {
                s->pending.active = true;
                s->pending.target = to;
                s->pending.asked_at = now;
                s->pending.ready_by = now + cfg->cold_start;
        } else if (to < from)
                s->pending.active = false;
}

/*
 * A scale-up stops holding the next one once its instances could be ready
 * (cold_start has passed), are ready, or are no longer asked for (the count
 * is below its target: lowered since, or never carried out). A ready_by
 * further ahead than cold_start means the clock went back; it ends too.
 */
static void pending_expire(struct fm_autoscale_state *s, const struct fm_autoscale_config *cfg,
                           const struct fm_autoscale_input *in, uint32_t ready, fm_ms now)
{
        if (!s->pending.active)
                return;
        if (now >= s->pending.ready_by || s->pending.ready_by - now > cfg->cold_start ||
            ready >= s->pending.target || in->current < s->pending.target)
                s->pending.active = false;
}

int fm_autoscale_decide(const struct fm_autoscale_config *cfg, struct fm_autoscale_state *state,
                        const struct fm_autoscale_input *in, fm_ms now,
                        struct fm_autoscale_decision *ret)
{
        struct fm_autoscale_decision d = {.current = in->current};
        struct proposal prop[_FM_AUTOSCALE_METRIC_MAX] = {{.valid = false}};
        uint32_t cur = in->current, ready = 0, max_allowed, n_valid = 0, n_invalid = 0;
        uint32_t rec = 0, stab;
        bool reversed = false, tolerance_only = true;
        double demand = 0.0;
        int r;

        r = fm_autoscale_config_validate(cfg);
        if (r < 0)
                return r;
        r = input_validate(in);
        if (r < 0)
                return r;

        for (size_t i = 0; i < in->n_instances; i++)
                if (in->instances[i].ready)
                        ready++;

        /* As the HPA: a fresh controller first watches one scale-down window. */
        if (!state->started) {
                if (cfg->down_window > 0)
                        recs_push(&state->down, now, cur, true);
                state->started = true;
        }
        recs_expire(&state->up, now, cfg->up_window);
        recs_expire(&state->down, now, cfg->down_window);
        events_expire(state, cfg, now);
        pending_expire(state, cfg, in, ready, now);

        max_allowed = cfg->max_replicas;
        if (cost_on(cfg) && affordable(cfg) < max_allowed)
                max_allowed = affordable(cfg);

        fm_evidence_add(&d.evidence, "current_replicas", cur);
        fm_evidence_add(&d.evidence, "ready_replicas", ready);

        /* 1. Range correction, outside windows and step limits. */
        if (cur > max_allowed || cur < cfg->min_replicas) {
                d.recommendation = d.desired = cur > max_allowed ? max_allowed : cfg->min_replicas;
                d.act = true;
                if (cur < cfg->min_replicas) {
                        d.reason = "at_min";
                        fm_evidence_add(&d.evidence, "min_replicas", cfg->min_replicas);
                } else if (max_allowed < cfg->max_replicas) {
                        d.reason = "cost_ceiling";
                        fm_evidence_add(&d.evidence, "affordable_replicas", max_allowed);
                } else {
                        d.reason = "at_max";
                        fm_evidence_add(&d.evidence, "max_replicas", cfg->max_replicas);
                }
                record_action(state, cfg, now, cur, d.desired);
                goto out;
        }

        /* 2 and 3. Proposals per metric; the largest wins. */
        for (unsigned m = 0; m < _FM_AUTOSCALE_METRIC_MAX; m++) {
                if (!cfg->metric[m].enabled)
                        continue;
                prop[m] = m < FM_AUTOSCALE_PER_INSTANCE_METRICS
                                  ? per_instance(cfg, in, m)
                                  : deployment_level(cfg, in, m, ready);
                if (!prop[m].valid) {
                        n_invalid++;
                        continue;
                }
                n_valid++;
                fm_evidence_add(&d.evidence, ratio_keys[m], prop[m].ratio);
                fm_evidence_add(&d.evidence, replicas_keys[m], prop[m].replicas);
                if (prop[m].replicas > rec)
                        rec = prop[m].replicas;
                if (prop[m].demand > demand)
                        demand = prop[m].demand;
        }
        if (n_valid == 0) {
                d.recommendation = d.desired = cur;
                d.reason = "no_metrics";
                goto out;
        }
        if (n_invalid > 0 && rec < cur) {
                d.recommendation = d.desired = cur;
                d.reason = "metrics_missing";
                goto out;
        }
        /* Which reason explains a recommendation equal to the current count. */
        for (unsigned m = 0; m < _FM_AUTOSCALE_METRIC_MAX; m++) {
                if (!cfg->metric[m].enabled || !prop[m].valid || prop[m].replicas != rec)
                        continue;
                if (prop[m].outcome == OUT_REVERSED)
                        reversed = true;
                if (prop[m].outcome != OUT_TOLERANCE)
                        tolerance_only = false;
        }

        /* 4. Forecast: only a complete picture of the demand feeds the trend. */
        fm_evidence_add(&d.evidence, "recommendation_replicas", rec);
        if (n_invalid == 0)
                holt_update(state, cfg, demand, now);
        if (cfg->predictive && state->holt.valid) {
                /* From the last sample (older if some metric was missing since) to the horizon. */
                fm_ms h = now - state->holt.last + cfg->cold_start;
                double f = state->holt.level + state->holt.trend * (double)h;

                if (f < 0.0)
                        f = 0.0;
                fm_evidence_add(&d.evidence, "predicted_replicas", f);
                /* The same band as the reactive rule: capacity by then is the current count. */
                if (f > cur * (1.0 + cfg->tolerance) + 1e-9 && ceil_count(f) > rec)
                        rec = ceil_count(f);
        }
        d.recommendation = rec;

        /* 5. Stabilisation. */
        recs_push(&state->up, now, rec, false);
        recs_push(&state->down, now, rec, true);
        {
                uint32_t up_min = rec_at(&state->up, 0)->replicas;
                uint32_t down_max = rec_at(&state->down, 0)->replicas;

                stab = cur;
                if (stab < up_min)
                        stab = up_min;
                if (stab > down_max)
                        stab = down_max;
                fm_evidence_add(&d.evidence, "window_max_replicas", down_max);
                if (cfg->up_window > 0)
                        fm_evidence_add(&d.evidence, "window_min_replicas", up_min);
        }

        d.desired = cur;
        if (stab == cur) {
                if (rec != cur)
                        d.reason = "stabilised";
                else if (reversed)
                        d.reason = "direction_reversed";
                else if (tolerance_only)
                        d.reason = "within_tolerance";
                else
                        d.reason = "no_change";
        } else if (stab > cur) {
                /* 6 and 7, upwards. */
                uint32_t limit = up_limit(state, cfg, cur, now);
                uint32_t allowed = limit < max_allowed ? limit : max_allowed;

                fm_evidence_add(&d.evidence, "up_limit_replicas", limit);
                if (allowed <= cur || stab > allowed) {
                        if (limit < max_allowed)
                                d.reason = "step_limited";
                        else if (max_allowed < cfg->max_replicas)
                                d.reason = "cost_ceiling";
                        else
                                d.reason = "at_max";
                } else
                        d.reason = "scale_up";
                if (allowed > cur && state->pending.active)
                        d.reason = "cold_start_pending";
                else if (allowed > cur)
                        d.desired = stab < allowed ? stab : allowed;
        } else {
                /* 7, downwards. */
                uint32_t limit = down_limit(state, cfg, cur, now);
                uint32_t allowed = limit > cfg->min_replicas ? limit : cfg->min_replicas;

                fm_evidence_add(&d.evidence, "down_limit_replicas", limit);
                if (stab < allowed)
                        d.reason = limit > cfg->min_replicas ? "step_limited" : "at_min";
                else
                        d.reason = "scale_down";
                d.desired = stab > allowed ? stab : allowed;
        }
        if (cost_on(cfg))
                fm_evidence_add(&d.evidence, "affordable_replicas", affordable(cfg));

        if (d.desired != cur) {
                d.act = true;
                record_action(state, cfg, now, cur, d.desired);
        }

out:
        *ret = d;
        return d.act ? 1 : 0;
}
