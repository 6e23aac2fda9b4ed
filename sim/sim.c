/* SPDX-License-Identifier: MIT */
#include "sim.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ==== The simulated actuator backend ==================================== */

/*
 * start() only records the attempt (the actuator forbids re-entry); the
 * engine calls backend_due() every tick, which applies what is due to the
 * model and completes the attempts.
 */
struct pending {
        uint64_t attempt;
        fm_ms due;
        struct fm_action_req req;
};

struct sim_backend {
        struct fm_model *model;
        struct fm_core *core; /* told of every scale carried out */
        const struct fm_scenario *sc;
        fm_ms now; /* set by the engine before every actuator call */
        struct pending *p;
        uint32_t n, cap;
};

static int backend_start(void *b, const struct fm_action_req *req, uint64_t attempt_id)
{
        struct sim_backend *sb = b;
        if (sb->n == sb->cap) {
                uint32_t cap = sb->cap ? sb->cap * 2 : 16;
                struct pending *p = realloc(sb->p, cap * sizeof(*p));
                if (!p)
                        return -ENOMEM;
                sb->p = p;
                sb->cap = cap;
        }
        sb->p[sb->n++] = (struct pending){
                .attempt = attempt_id,
                .due = sb->now + (fm_ms)llround(sb->sc->actuation.delay_s * FM_MS_PER_S),
                .req = *req,
        };
        return 0;
}

static void backend_cancel(void *b, uint64_t attempt_id)
{
        struct sim_backend *sb = b;
        for (uint32_t k = 0; k < sb->n; k++)
                if (sb->p[k].attempt == attempt_id) {
                        memmove(&sb->p[k], &sb->p[k + 1], (sb->n - k - 1) * sizeof(*sb->p));
                        sb->n--;
                        return;
                }
}

static const struct fm_backend_ops sim_backend_ops = {
        .name = "sim",
        .supports = {true, true, true, true, true, true},
        .start = backend_start,
        .cancel = backend_cancel,
};

static int apply_req(struct fm_model *m, const struct fm_action_req *r, fm_ms now)
{
        switch (r->action) {
        case FM_ACTION_SCALE:
                return fm_model_scale(m, r->deployment, r->arg.scale.to, now);
        case FM_ACTION_SET_WEIGHTS:
                return fm_model_set_weights(m, r->deployment, r->arg.weights.w, r->arg.weights.n);
        case FM_ACTION_RESTART:
                return fm_model_restart(m, r->deployment, r->instance, now);
        case FM_ACTION_ROLLBACK:
                return fm_model_rollback(m, r->deployment, r->arg.rollback.from, r->arg.rollback.to,
                                         now);
        case FM_ACTION_SET_THRESHOLD:
                return fm_model_set_threshold(m, r->deployment, r->arg.threshold.version,
                                              r->arg.threshold.to);
        case FM_ACTION_ALERT:
        default:
                return 0;
        }
}

/* Applies and completes every attempt due at now, oldest first. */
static int backend_due(struct sim_backend *sb, struct fm_actuator *a, fm_ms now)
{
        uint32_t k = 0;
        while (k < sb->n) {
                if (sb->p[k].due > now) {
                        k++;
                        continue;
                }
                struct pending p = sb->p[k];
                memmove(&sb->p[k], &sb->p[k + 1], (sb->n - k - 1) * sizeof(*sb->p));
                sb->n--;
                int r = apply_req(sb->model, &p.req, now);
                struct fm_action_result res = {.kind = FM_RESULT_OK, .detail = "applied"};
                if (r == -ENOMEM)
                        return r;
                if (r < 0)
                        res = (struct fm_action_result){.kind = FM_RESULT_PERMANENT,
                                                        .error = r,
                                                        .detail = "no such target"};
                else if (p.req.action == FM_ACTION_SCALE && sb->core)
                        (void)fm_core_note_scaled(sb->core, p.req.deployment, p.req.arg.scale.from,
                                                  p.req.arg.scale.to, now);
                (void)fm_actuator_complete(a, p.attempt, &res, now);
        }
        return 0;
}

/* ==== Engine ============================================================ */

struct engine {
        const struct fm_scenario *sc;
        struct fm_sim_run *run;
        struct fm_model *model;
        struct fm_core *core;
        struct fm_actuator *act;
        struct sim_backend backend;
        int backend_index;
        fm_ms start;
        enum fm_reject why;
};

static double rel_s(const struct engine *e, fm_ms t)
{
        return (double)(t - e->start) / FM_MS_PER_S;
}

static void sink(void *userdata, const struct fm_event *ev)
{
        struct engine *e = userdata;
        e->run->summary.events++;
        (void)fm_core_apply(e->core, ev, &e->why);
}

static bool incident_active(const struct fm_sim_incident *in, double t, double grace)
{
        return t >= in->at_s && (in->until_s < 0 || t <= in->until_s + grace);
}

static bool fault_is(const struct fm_scenario *sc, const struct fm_sim_incident *in,
                     enum fm_scn_fault_kind k)
{
        return in->fault >= 0 && sc->faults[in->fault].kind == k;
}

/* Does incident `in` cover taking `name` (an instance or a version) out of traffic or restarting
 * it? */
static bool covers_target(const struct fm_scenario *sc, const struct fm_sim_incident *in,
                          const char *name)
{
        if (in->fault < 0)
                return false;
        const struct fm_scn_fault *f = &sc->faults[in->fault];
        if (f->kind == FM_SCN_FAULT_CUT_OFF || f->kind == FM_SCN_FAULT_NOISY ||
            f->kind == FM_SCN_FAULT_DRIFT)
                return false;
        if (f->instance[0])
                return strcmp(f->instance, name) == 0;
        if (f->version >= 0) {
                /* a version incident covers its version and any instance (we cannot tell here
                 * which version an instance served; the breaker's evidence names it) */
                int v = fm_scenario_find_version(sc, f->deployment, name);
                return v < 0 || v == f->version;
        }
        return true;
}

static bool justified_by(const struct engine *e, const struct fm_sim_incident *in,
                         const struct fm_intent *it, const struct fm_plan *plan)
{
        const struct fm_scenario *sc = e->sc;
        if (strcmp(sc->deployments[in->deployment].name, it->deployment) != 0)
                return false;
        bool load = in->fault < 0;
        bool blind = fault_is(sc, in, FM_SCN_FAULT_CUT_OFF) || fault_is(sc, in, FM_SCN_FAULT_NOISY);
        switch (it->action) {
        case FM_ACTION_SCALE:
                return load || (!blind && it->arg.scale.to > it->arg.scale.from);
        case FM_ACTION_RESTART:
                return covers_target(sc, in, it->instance);
        case FM_ACTION_SET_WEIGHTS:
                for (uint32_t k = 0; k < it->arg.weights.n; k++) {
                        const struct fm_weight *w = &plan->weight[it->arg.weights.first + k];
                        if (w->weight == 0 && !covers_target(sc, in, w->target))
                                return false;
                }
                return !blind && !load;
        case FM_ACTION_ROLLBACK:
                if (in->fault < 0)
                        return false;
                {
                        const struct fm_scn_fault *f = &sc->faults[in->fault];
                        bool kind = f->kind == FM_SCN_FAULT_BAD_VERSION ||
                                    f->kind == FM_SCN_FAULT_ERROR_BURST ||
                                    f->kind == FM_SCN_FAULT_DRIFT;
                        if (!kind || f->instance[0])
                                return false;
                        return f->version < 0 ||
                               fm_scenario_find_version(sc, f->deployment, it->arg.rollback.from) ==
                                       f->version;
                }
        case FM_ACTION_SET_THRESHOLD:
                if (!fault_is(sc, in, FM_SCN_FAULT_DRIFT))
                        return false;
                return sc->faults[in->fault].version < 0 ||
                       fm_scenario_find_version(sc, in->deployment, it->arg.threshold.version) ==
                               sc->faults[in->fault].version;
        default:
                return true;
        }
}

static bool action_false(const struct engine *e, const struct fm_intent *it,
                         const struct fm_plan *plan)
{
        const struct fm_scenario *sc = e->sc;
        double t = rel_s(e, it->at);
        int d = fm_scenario_find_deployment(sc, it->deployment);
        /* under a load that moves, following it is the autoscaler's job at any time */
        if (it->action == FM_ACTION_SCALE && d >= 0 &&
            sc->deployments[d].load.kind != FM_SCN_LOAD_CONSTANT)
                return false;
        /* a set_weights that takes nobody out of traffic restores; it is never false */
        if (it->action == FM_ACTION_SET_WEIGHTS) {
                bool zero = false;
                for (uint32_t k = 0; k < it->arg.weights.n; k++)
                        zero |= plan->weight[it->arg.weights.first + k].weight == 0;
                if (!zero)
                        return false;
        }
        for (uint32_t k = 0; k < e->run->n_incidents; k++) {
                const struct fm_sim_incident *in = &e->run->incidents[k];
                if (incident_active(in, t, sc->grace_s) && justified_by(e, in, it, plan))
                        return false;
        }
        return true;
}

/* Does the intent (any verdict but dry_run) concern the incident's target? */
static bool concerns(const struct engine *e, const struct fm_sim_incident *in,
                     const struct fm_intent *it, const struct fm_plan *plan)
{
        const struct fm_scenario *sc = e->sc;
        if (strcmp(sc->deployments[in->deployment].name, it->deployment) != 0)
                return false;
        if (in->fault < 0 ||
            (sc->faults[in->fault].version < 0 && !sc->faults[in->fault].instance[0]))
                return true;
        const struct fm_scn_fault *f = &sc->faults[in->fault];
        if (f->instance[0]) {
                if (strcmp(it->instance, f->instance) == 0)
                        return true;
                if (it->action == FM_ACTION_SET_WEIGHTS)
                        for (uint32_t k = 0; k < it->arg.weights.n; k++) {
                                const struct fm_weight *w =
                                        &plan->weight[it->arg.weights.first + k];
                                if (w->weight == 0 && strcmp(w->target, f->instance) == 0)
                                        return true;
                        }
                return false;
        }
        const char *vname = sc->deployments[f->deployment].versions[f->version].name;
        if (it->action == FM_ACTION_ROLLBACK)
                return strcmp(it->arg.rollback.from, vname) == 0;
        return it->policy &&
               (strcmp(it->policy, "rollback") == 0 || strcmp(it->policy, "canary") == 0 ||
                strcmp(it->policy, "autotune") == 0);
}

static bool transition_concerns(const struct engine *e, const struct fm_sim_incident *in,
                                const struct fm_transition *t)
{
        const struct fm_scenario *sc = e->sc;
        if (t->t.to != FM_BREAKER_OPEN ||
            strcmp(sc->deployments[in->deployment].name, t->deployment) != 0)
                return false;
        if (in->fault < 0)
                return true;
        const struct fm_scn_fault *f = &sc->faults[in->fault];
        if (f->instance[0])
                return strcmp(f->instance, t->instance) == 0;
        if (f->version >= 0)
                return strcmp(sc->deployments[f->deployment].versions[f->version].name,
                              t->version) == 0;
        return true;
}

static void describe(const struct fm_plan *plan, const struct fm_intent *it, char *target,
                     size_t size)
{
        size_t at = 0;
        int n;
        target[0] = '\0';
        switch (it->action) {
        case FM_ACTION_SCALE:
                (void)snprintf(target, size, "%u->%u", it->arg.scale.from, it->arg.scale.to);
                break;
        case FM_ACTION_ROLLBACK:
                n = snprintf(target, size, "%s->%s", it->arg.rollback.from, it->arg.rollback.to);
                if (n < 0)
                        target[0] = '\0';
                break;
        case FM_ACTION_SET_THRESHOLD:
                n = snprintf(target, size, "%s %.2f->%.2f", it->arg.threshold.version,
                             it->arg.threshold.from, it->arg.threshold.to);
                if (n < 0)
                        target[0] = '\0';
                break;
        case FM_ACTION_RESTART:
                n = snprintf(target, size, "%s", it->instance);
                if (n < 0)
                        target[0] = '\0';
                break;
        case FM_ACTION_SET_WEIGHTS:
                for (uint32_t k = 0; k < it->arg.weights.n && at + 1 < size; k++) {
                        const struct fm_weight *w = &plan->weight[it->arg.weights.first + k];
                        n = snprintf(target + at, size - at, "%s%s=%u", k ? "," : "", w->target,
                                     w->weight);
                        if (n < 0 || (size_t)n >= size - at) {
                                /* too long: end with an ellipsis */
                                if (size >= 4)
                                        memcpy(target + size - 4, "...", 4);
                                break;
                        }
                        at += (size_t)n;
                }
                break;
        case FM_ACTION_ALERT:
                n = snprintf(target, size, "%s: %s", fm_severity_name(it->arg.alert.severity),
                             it->arg.alert.summary);
                if (n < 0)
                        target[0] = '\0';
                break;
        default:
                break;
        }
}

static void reason_text(const struct fm_intent *it, char *out, size_t size)
{
        size_t at = 0;
        int n = snprintf(out, size, "%s", it->reason ? it->reason : "");
        if (n < 0 || (size_t)n >= size)
                return;
        at = (size_t)n;
        for (uint32_t k = 0; k < it->evidence.n && at + 1 < size; k++) {
                const struct fm_evidence_item *ev = &it->evidence.item[k];
                double v = ev->value;
                if (v == floor(v) && fabs(v) < 1e15)
                        n = snprintf(out + at, size - at, "%s%s=%.0f", k ? " " : ": ", ev->key, v);
                else
                        n = snprintf(out + at, size - at, "%s%s=%.4g", k ? " " : ": ", ev->key, v);
                if (n < 0 || (size_t)n >= size - at)
                        break;
                at += (size_t)n;
        }
}

static struct fm_sim_action *add_action(struct fm_sim_run *run)
{
        if (run->n_actions >= FM_SIM_ACTIONS_MAX) {
                run->summary.actions_dropped++;
                return NULL;
        }
        if (run->n_actions == run->cap_actions) {
                uint32_t cap = run->cap_actions ? run->cap_actions * 2 : 64;
                struct fm_sim_action *p = realloc(run->actions, cap * sizeof(*p));
                if (!p)
                        return NULL;
                run->actions = p;
                run->cap_actions = cap;
        }
        struct fm_sim_action *a = &run->actions[run->n_actions++];
        memset(a, 0, sizeof(*a));
        return a;
}

static void mark_remedy(struct engine *e, const struct fm_sim_action *a)
{
        if (a->action != FM_ACTION_ROLLBACK && a->action != FM_ACTION_SET_THRESHOLD)
                return;
        for (uint32_t k = 0; k < e->run->n_incidents; k++) {
                struct fm_sim_incident *in = &e->run->incidents[k];
                if (fault_is(e->sc, in, FM_SCN_FAULT_DRIFT) &&
                    strcmp(e->sc->deployments[in->deployment].name, a->deployment) == 0)
                        in->remedied = true;
        }
}

static int handle_plan(struct engine *e, const struct fm_plan *plan, fm_ms now)
{
        struct fm_sim_run *run = e->run;
        double t = rel_s(e, now);

        for (uint32_t k = 0; k < plan->n_transitions; k++)
                for (uint32_t j = 0; j < run->n_incidents; j++) {
                        struct fm_sim_incident *in = &run->incidents[j];
                        if (isnan(in->detect_s) && t >= in->at_s &&
                            transition_concerns(e, in, &plan->transition[k]))
                                in->detect_s = t;
                }

        for (uint32_t k = 0; k < plan->n_intents; k++) {
                const struct fm_intent *it = &plan->intent[k];
                if (it->verdict != FM_VERDICT_DRY_RUN)
                        for (uint32_t j = 0; j < run->n_incidents; j++) {
                                struct fm_sim_incident *in = &run->incidents[j];
                                if (isnan(in->detect_s) && t >= in->at_s &&
                                    concerns(e, in, it, plan))
                                        in->detect_s = t;
                        }

                bool executed = it->verdict == FM_VERDICT_APPROVED;
                bool counted = executed && it->action != FM_ACTION_ALERT;
                bool is_false = counted && action_false(e, it, plan);
                if (counted) {
                        run->summary.actions++;
                        run->summary.false_actions += is_false;
                }
                struct fm_sim_action *a = add_action(run);
                if (a) {
                        a->at = it->at;
                        a->action = it->action;
                        a->policy = it->policy;
                        a->reason = it->reason;
                        a->verdict = it->verdict;
                        a->is_false = is_false;
                        memcpy(a->deployment, it->deployment, sizeof(a->deployment));
                        describe(plan, it, a->target, sizeof(a->target));
                        reason_text(it, a->text, sizeof(a->text));
                }
                if (!executed)
                        continue;

                struct fm_action_req req;
                int r = fm_action_req_from_intent(plan, it, 1, now + 300 * FM_MS_PER_S, &req);
                int64_t id = r < 0 ? r : fm_actuator_submit(e->act, e->backend_index, &req, now);
                if (id == -ENOMEM)
                        return -ENOMEM;
                if (a) {
                        if (id > 0)
                                a->request = id;
                        else
                                (void)snprintf(a->outcome, sizeof(a->outcome), "rejected");
                }
        }
        return 0;
}

static void poll_outcomes(struct engine *e)
{
        struct fm_action_outcome o;
        while (fm_actuator_poll(e->act, &o) > 0) {
                struct fm_sim_run *run = e->run;
                for (uint32_t k = run->n_actions; k-- > 0;)
                        if (run->actions[k].request == (int64_t)o.id) {
                                struct fm_sim_action *a = &run->actions[k];
                                (void)snprintf(a->outcome, sizeof(a->outcome), "%s",
                                               fm_outcome_status_name(o.status));
                                if (o.status == FM_OUTCOME_OK)
                                        mark_remedy(e, a);
                                break;
                        }
        }
}

static int controller_tick(struct engine *e, fm_ms now)
{
        const struct fm_plan *plan = NULL;
        int r;

        e->run->summary.ticks++;
        (void)fm_core_tick(e->core, now, &plan, NULL);
        e->backend.now = now;
        if (plan && (r = handle_plan(e, plan, now)) < 0)
                return r;
        r = fm_actuator_tick(e->act, now);
        if (r == -ENOMEM)
                return r;
        r = backend_due(&e->backend, e->act, now);
        if (r < 0)
                return r;
        poll_outcomes(e);
        return 0;
}

/* ==== Measurements ====================================================== */

static int series_alloc(struct fm_sim_run *run, uint32_t n)
{
        const struct fm_scenario *sc = run->sc;
        run->t_s = calloc(n, sizeof(*run->t_s));
        if (!run->t_s)
                return -ENOMEM;
        for (uint32_t d = 0; d < sc->n_deployments; d++) {
                struct fm_sim_dep_series *s = &run->series[d];
                s->replicas = calloc(n, sizeof(uint32_t));
                s->ready = calloc(n, sizeof(uint32_t));
                s->p99_ms = calloc(n, sizeof(double));
                s->error_rate = calloc(n, sizeof(double));
                if (!s->replicas || !s->ready || !s->p99_ms || !s->error_rate)
                        return -ENOMEM;
                for (uint32_t v = 0; v < sc->deployments[d].n_versions; v++)
                        if (!(s->weights[v] = calloc(n, sizeof(double))))
                                return -ENOMEM;
        }
        return 0;
}

static bool slo_met(const struct fm_scenario *sc, const struct fm_model_dep_stats *st)
{
        if (st->requests == 0)
                return true;
        double er = (double)st->errors / (double)st->requests;
        return !(er > sc->slo.error_rate) && !(st->p99_ms > sc->slo.latency_p99_ms);
}

static void measure(struct engine *e, fm_ms now, bool keep_series)
{
        const struct fm_scenario *sc = e->sc;
        struct fm_sim_run *run = e->run;
        struct fm_sim_summary *s = &run->summary;
        double t = rel_s(e, now), step_min = (double)sc->step_s / 60.0;
        uint64_t total = 0;
        uint32_t replicas = 0;

        for (uint32_t d = 0; d < sc->n_deployments; d++)
                total += fm_model_stats(e->model, d)->requests;
        for (uint32_t d = 0; d < sc->n_deployments; d++) {
                const struct fm_model_dep_stats *st = fm_model_stats(e->model, d);
                s->requests += st->requests;
                s->errors += st->errors;
                replicas += st->replicas;
                if (!slo_met(sc, st) && total > 0)
                        s->slo_minutes_lost += step_min * (double)st->requests / (double)total;
                if (keep_series) {
                        struct fm_sim_dep_series *ser = &run->series[d];
                        uint32_t k = run->n_samples;
                        ser->replicas[k] = st->replicas;
                        ser->ready[k] = st->ready;
                        ser->p99_ms[k] = st->p99_ms;
                        ser->error_rate[k] =
                                st->requests ? (double)st->errors / (double)st->requests : NAN;
                        for (uint32_t v = 0; v < sc->deployments[d].n_versions; v++)
                                ser->weights[v][k] = st->share[v];
                }
        }
        if (keep_series)
                run->t_s[run->n_samples++] = (int64_t)llround(t);
        s->instance_hours += (double)replicas * (double)sc->step_s / 3600.0;
        if (replicas > s->max_replicas)
                s->max_replicas = replicas;
        s->final_replicas = replicas;

        /* mitigation: 60 s of the SLO met with the incident's effect gone, after detection */
        uint32_t need = (uint32_t)((60 + sc->step_s - 1) / sc->step_s);
        for (uint32_t k = 0; k < run->n_incidents; k++) {
                struct fm_sim_incident *in = &run->incidents[k];
                if (isnan(in->detect_s) || !isnan(in->mitigate_s) || t < in->detect_s)
                        continue;
                bool ok = slo_met(sc, fm_model_stats(e->model, in->deployment));
                if (in->fault >= 0 && ok) {
                        const struct fm_scn_fault *f = &sc->faults[in->fault];
                        bool gone = fm_model_fault_impact(e->model, (uint32_t)in->fault) <= 0.01 ||
                                    f->kind == FM_SCN_FAULT_CUT_OFF;
                        if (f->kind == FM_SCN_FAULT_DRIFT)
                                gone = in->remedied ||
                                       !fm_model_fault_active(e->model, (uint32_t)in->fault, now);
                        ok = gone;
                }
                if (!ok) {
                        in->good_steps = 0;
                        continue;
                }
                if (in->good_steps++ == 0)
                        in->good_from = t;
                if (in->good_steps >= need)
                        in->mitigate_s = in->good_from;
        }
}

static void build_incidents(struct fm_sim_run *run)
{
        const struct fm_scenario *sc = run->sc;
        for (uint32_t k = 0; k < sc->n_faults; k++) {
                const struct fm_scn_fault *f = &sc->faults[k];
                struct fm_sim_incident *in = &run->incidents[run->n_incidents++];
                *in = (struct fm_sim_incident){
                        .kind = fm_scn_fault_name(f->kind),
                        .deployment = f->deployment,
                        .fault = (int32_t)k,
                        .at_s = f->at_s,
                        .until_s = f->until_s,
                        .detect_s = NAN,
                        .mitigate_s = NAN,
                };
                memcpy(in->target, f->target, sizeof(in->target));
        }
        for (uint32_t d = 0; d < sc->n_deployments; d++) {
                const struct fm_scn_load *l = &sc->deployments[d].load;
                if (l->kind != FM_SCN_LOAD_SPIKE && l->kind != FM_SCN_LOAD_RAMP)
                        continue;
                struct fm_sim_incident *in = &run->incidents[run->n_incidents++];
                *in = (struct fm_sim_incident){
                        .kind = l->kind == FM_SCN_LOAD_SPIKE ? "spike" : "ramp",
                        .deployment = d,
                        .fault = -1,
                        .at_s = l->at_s,
                        .until_s = l->kind == FM_SCN_LOAD_SPIKE ? l->at_s + l->duration_s
                                                                : l->at_s + l->ramp_s,
                        .detect_s = NAN,
                        .mitigate_s = NAN,
                };
                (void)snprintf(in->target, sizeof(in->target), "%s", sc->deployments[d].name);
        }
}

/* ==== Expectations ====================================================== */

static double metric_value(const struct fm_sim_summary *s, enum fm_scn_metric m)
{
        switch (m) {
        case FM_SCN_METRIC_TIME_TO_DETECT:
                return s->time_to_detect_s;
        case FM_SCN_METRIC_TIME_TO_MITIGATE:
                return s->time_to_mitigate_s;
        case FM_SCN_METRIC_SLO_MINUTES_LOST:
                return s->slo_minutes_lost;
        case FM_SCN_METRIC_ERROR_BUDGET_BURNT:
                return s->error_budget_burnt;
        case FM_SCN_METRIC_FALSE_ACTIONS:
                return (double)s->false_actions;
        case FM_SCN_METRIC_INSTANCE_HOURS:
                return s->instance_hours;
        case FM_SCN_METRIC_ACTIONS:
                return (double)s->actions;
        case FM_SCN_METRIC_MAX_REPLICAS:
                return s->max_replicas;
        case FM_SCN_METRIC_FINAL_REPLICAS:
                return s->final_replicas;
        default:
                return NAN;
        }
}

static bool in_bounds(const struct fm_scn_expect *x, double v)
{
        if (isnan(v))
                return false;
        return !(x->has_min && v < x->min) && !(x->has_max && v > x->max);
}

static void check_expectations(struct fm_sim_run *run)
{
        const struct fm_scenario *sc = run->sc;
        for (uint32_t k = 0; k < sc->n_expect; k++) {
                const struct fm_scn_expect *x = &sc->expect[k];
                struct fm_sim_expect_result *res = &run->expect[k];
                if (x->kind == FM_SCN_EXPECT_METRIC) {
                        double v = metric_value(&run->summary, x->metric);
                        res->ok = in_bounds(x, v);
                        if (isnan(v))
                                (void)snprintf(res->detail, sizeof(res->detail), "%s is null",
                                               fm_scn_metric_name(x->metric));
                        else
                                (void)snprintf(res->detail, sizeof(res->detail), "%s = %.4g",
                                               fm_scn_metric_name(x->metric), v);
                        continue;
                }
                uint32_t n = 0;
                double first = NAN;
                for (uint32_t j = 0; j < run->n_actions; j++) {
                        const struct fm_sim_action *a = &run->actions[j];
                        double t = (double)(a->at - (fm_ms)sc->start_s * FM_MS_PER_S) / FM_MS_PER_S;
                        if (x->kind == FM_SCN_EXPECT_ALERT
                                    ? a->action != FM_ACTION_ALERT
                                    : (x->action >= 0 ? (int)a->action != x->action
                                                      : a->action == FM_ACTION_ALERT))
                                continue;
                        if ((int)a->verdict != x->verdict || t < x->after_s ||
                            (x->before_s >= 0 && t > x->before_s))
                                continue;
                        if (x->policy[0] && (!a->policy || strcmp(a->policy, x->policy)))
                                continue;
                        if (x->reason[0] && (!a->reason || strcmp(a->reason, x->reason)))
                                continue;
                        if (n++ == 0)
                                first = t;
                }
                res->ok = in_bounds(x, n);
                if (n)
                        (void)snprintf(res->detail, sizeof(res->detail),
                                       "%u matching, the first at %.0f s", n, first);
                else
                        (void)snprintf(res->detail, sizeof(res->detail), "none matching");
        }
}

bool fm_sim_expectations_ok(const struct fm_sim_run *r)
{
        for (uint32_t k = 0; k < r->sc->n_expect; k++)
                if (!r->expect[k].ok)
                        return false;
        return true;
}

/* ==== Run =============================================================== */

struct fm_sim_run *fm_sim_run_free(struct fm_sim_run *r)
{
        if (!r)
                return NULL;
        free(r->t_s);
        for (uint32_t d = 0; d < FM_SCN_DEPLOYMENTS_MAX; d++) {
                struct fm_sim_dep_series *s = &r->series[d];
                free(s->replicas);
                free(s->ready);
                free(s->p99_ms);
                free(s->error_rate);
                for (uint32_t v = 0; v < FM_SCN_VERSIONS_MAX; v++)
                        free(s->weights[v]);
        }
        free(r->actions);
        free(r);
        return NULL;
}

int fm_sim_run(const struct fm_scenario *sc, const struct fm_sim_options *opt,
               struct fm_sim_run **ret)
{
        struct engine e = {.sc = sc, .backend_index = -1};
        int r;

        if (!sc || !opt || !ret || opt->tick <= 0 || sc->step_s <= 0 || sc->duration_s <= 0)
                return -EINVAL;
        e.run = calloc(1, sizeof(*e.run));
        if (!e.run)
                return -ENOMEM;
        e.run->sc = sc;
        e.run->controller = opt->core != NULL;
        e.start = (fm_ms)sc->start_s * FM_MS_PER_S;
        const fm_ms step = sc->step_s * FM_MS_PER_S, end = e.start + sc->duration_s * FM_MS_PER_S;
        uint32_t n_steps = (uint32_t)(sc->duration_s / sc->step_s);

        build_incidents(e.run);
        if (opt->series && (r = series_alloc(e.run, n_steps)) < 0)
                goto fail;
        if ((r = fm_model_new(sc, &e.model)) < 0)
                goto fail;
        if (opt->core) {
                if ((r = fm_core_new(opt->core, &e.core)) < 0 ||
                    (r = fm_actuator_new(NULL, sc->seed, &e.act)) < 0)
                        goto fail;
                e.backend = (struct sim_backend){
                        .model = e.model, .core = e.core, .sc = sc, .now = e.start};
                e.backend_index = fm_actuator_add_backend(e.act, &sim_backend_ops, &e.backend);
                if (e.backend_index < 0) {
                        r = e.backend_index;
                        goto fail;
                }
        }

        fm_ms next_step = e.start + step, next_tick = e.start + opt->tick;
        while (true) {
                fm_ms now = next_step;
                if (e.core && next_tick < now)
                        now = next_tick;
                if (now > end)
                        break;
                if (now == next_step) {
                        r = fm_model_step(e.model, now, e.core ? sink : NULL, &e);
                        if (r < 0)
                                goto fail;
                        measure(&e, now, opt->series && e.run->n_samples < n_steps);
                        next_step += step;
                }
                if (e.core && now == next_tick) {
                        r = controller_tick(&e, now);
                        if (r < 0)
                                goto fail;
                        next_tick += opt->tick;
                }
        }

        struct fm_sim_summary *s = &e.run->summary;
        s->error_budget_burnt =
                s->requests ? (double)s->errors / ((double)s->requests * (1 - sc->slo.objective))
                            : 0;
        s->time_to_detect_s = s->time_to_mitigate_s = NAN;
        for (uint32_t k = 0; k < e.run->n_incidents; k++) {
                const struct fm_sim_incident *in = &e.run->incidents[k];
                if (in->fault >= 0 && sc->faults[in->fault].kind == FM_SCN_FAULT_NOISY)
                        continue;
                s->time_to_detect_s = in->detect_s - in->at_s;
                s->time_to_mitigate_s = in->mitigate_s - in->at_s;
                break;
        }
        check_expectations(e.run);
        *ret = e.run;
        e.run = NULL;
        r = 0;
fail:
        fm_sim_run_free(e.run);
        fm_actuator_free(e.act);
        free(e.backend.p);
        fm_core_free(e.core);
        fm_model_free(e.model);
        return r;
}
