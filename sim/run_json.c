/* SPDX-License-Identifier: MIT */
/*
 * The run document (the contract between the engine and the HTML report):
 * built with json-c, keys in the contract's order. Doubles are written
 * from a fixed printf format and rounded to what a reader needs, so the
 * same run gives the same bytes; NAN becomes null.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "sim.h"

struct b {
        bool failed;
};

static json_object *chk(struct b *b, json_object *o)
{
        if (!o)
                b->failed = true;
        return o;
}

/* A number with `digits` decimals, trailing zeros dropped; null for NAN. */
static json_object *num(struct b *b, double v, int digits)
{
        char s[64];
        if (!isfinite(v))
                return NULL;
        if (v == 0)
                v = 0; /* no "-0" */
        int n = snprintf(s, sizeof(s), "%.*f", digits, v);
        if (n < 0 || (size_t)n >= sizeof(s))
                return chk(b, json_object_new_double(v));
        if (strchr(s, '.')) {
                char *end = s + strlen(s) - 1;
                while (*end == '0')
                        *end-- = '\0';
                if (*end == '.')
                        *end = '\0';
        }
        if (strcmp(s, "-0") == 0)
                memcpy(s, "0", 2);
        return chk(b, json_object_new_double_s(v, s));
}

static void add(struct b *b, json_object *obj, const char *key, json_object *v)
{
        if (json_object_object_add(obj, key, v) < 0) {
                json_object_put(v);
                b->failed = true;
        }
}

static void push(struct b *b, json_object *arr, json_object *v)
{
        if (json_object_array_add(arr, v) < 0) {
                json_object_put(v);
                b->failed = true;
        }
}

static json_object *str(struct b *b, const char *s)
{
        return chk(b, json_object_new_string(s ? s : ""));
}

static json_object *i64(struct b *b, int64_t v)
{
        return chk(b, json_object_new_int64(v));
}

static json_object *run_doc(struct b *b, const struct fm_sim_run *run)
{
        const struct fm_scenario *sc = run->sc;
        const fm_ms start = (fm_ms)sc->start_s * FM_MS_PER_S;
        json_object *doc = chk(b, json_object_new_object());
        if (!doc)
                return NULL;

        add(b, doc, "scenario", str(b, sc->name));
        add(b, doc, "description", str(b, sc->description));
        add(b, doc, "seed", chk(b, json_object_new_uint64(sc->seed)));
        add(b, doc, "duration_s", i64(b, sc->duration_s));
        add(b, doc, "step_s", i64(b, sc->step_s));
        add(b, doc, "controller", chk(b, json_object_new_boolean(run->controller)));

        json_object *slo = chk(b, json_object_new_object());
        if (slo) {
                add(b, slo, "latency_p99_ms", num(b, sc->slo.latency_p99_ms, 3));
                add(b, slo, "error_rate", num(b, sc->slo.error_rate, 6));
                add(b, slo, "objective", num(b, sc->slo.objective, 6));
        }
        add(b, doc, "slo", slo);

        const struct fm_sim_summary *s = &run->summary;
        json_object *sum = chk(b, json_object_new_object());
        if (sum) {
                add(b, sum, "time_to_detect_s", num(b, s->time_to_detect_s, 1));
                add(b, sum, "time_to_mitigate_s", num(b, s->time_to_mitigate_s, 1));
                add(b, sum, "slo_minutes_lost", num(b, s->slo_minutes_lost, 2));
                add(b, sum, "error_budget_burnt", num(b, s->error_budget_burnt, 4));
                add(b, sum, "false_actions", i64(b, (int64_t)s->false_actions));
                add(b, sum, "instance_hours", num(b, s->instance_hours, 2));
                add(b, sum, "actions", i64(b, (int64_t)s->actions));
                add(b, sum, "requests", i64(b, (int64_t)s->requests));
                add(b, sum, "errors", i64(b, (int64_t)s->errors));
                add(b, sum, "max_replicas", i64(b, s->max_replicas));
                add(b, sum, "final_replicas", i64(b, s->final_replicas));
                add(b, sum, "actions_not_listed", i64(b, (int64_t)s->actions_dropped));
        }
        add(b, doc, "summary", sum);

        json_object *faults = chk(b, json_object_new_array());
        for (uint32_t k = 0; faults && k < run->n_incidents; k++) {
                const struct fm_sim_incident *in = &run->incidents[k];
                json_object *f = chk(b, json_object_new_object());
                if (!f)
                        break;
                add(b, f, "t_s", num(b, in->at_s, 3));
                add(b, f, "kind", str(b, in->kind));
                add(b, f, "target", str(b, in->target));
                add(b, f, "until_s", in->until_s < 0 ? NULL : num(b, in->until_s, 3));
                add(b, f, "detected_s", num(b, in->detect_s, 3));
                add(b, f, "mitigated_s", num(b, in->mitigate_s, 3));
                push(b, faults, f);
        }
        add(b, doc, "faults", faults);

        json_object *acts = chk(b, json_object_new_array());
        for (uint32_t k = 0; acts && k < run->n_actions; k++) {
                const struct fm_sim_action *a = &run->actions[k];
                json_object *o = chk(b, json_object_new_object());
                if (!o)
                        break;
                add(b, o, "t_s", num(b, (double)(a->at - start) / FM_MS_PER_S, 3));
                add(b, o, "policy", str(b, a->policy));
                add(b, o, "action", str(b, fm_action_name(a->action)));
                add(b, o, "deployment", str(b, a->deployment));
                add(b, o, "target", str(b, a->target));
                add(b, o, "verdict", str(b, fm_verdict_name(a->verdict)));
                add(b, o, "outcome", a->outcome[0] ? str(b, a->outcome) : NULL);
                add(b, o, "false", chk(b, json_object_new_boolean(a->is_false)));
                add(b, o, "reason", str(b, a->text));
                push(b, acts, o);
        }
        add(b, doc, "actions", acts);

        json_object *series = chk(b, json_object_new_object());
        if (series) {
                json_object *t = chk(b, json_object_new_array_ext((int)run->n_samples));
                for (uint32_t k = 0; t && k < run->n_samples; k++)
                        push(b, t, i64(b, run->t_s[k]));
                add(b, series, "t_s", t);
                json_object *deps = chk(b, json_object_new_object());
                for (uint32_t d = 0; deps && d < sc->n_deployments; d++) {
                        const struct fm_sim_dep_series *ds = &run->series[d];
                        json_object *o = chk(b, json_object_new_object());
                        json_object *rep = chk(b, json_object_new_array());
                        json_object *rdy = chk(b, json_object_new_array());
                        json_object *p99 = chk(b, json_object_new_array());
                        json_object *err = chk(b, json_object_new_array());
                        json_object *w = chk(b, json_object_new_object());
                        for (uint32_t k = 0;
                             ds->replicas && rep && rdy && p99 && err && k < run->n_samples; k++) {
                                push(b, rep, i64(b, ds->replicas[k]));
                                push(b, rdy, i64(b, ds->ready[k]));
                                push(b, p99, num(b, ds->p99_ms[k], 1));
                                push(b, err, num(b, ds->error_rate[k], 5));
                        }
                        for (uint32_t v = 0; w && v < sc->deployments[d].n_versions; v++) {
                                json_object *a = chk(b, json_object_new_array());
                                for (uint32_t k = 0; a && ds->weights[v] && k < run->n_samples; k++)
                                        push(b, a, num(b, ds->weights[v][k], 1));
                                add(b, w, sc->deployments[d].versions[v].name, a);
                        }
                        if (o) {
                                add(b, o, "replicas", rep);
                                add(b, o, "ready", rdy);
                                add(b, o, "p99_ms", p99);
                                add(b, o, "error_rate", err);
                                add(b, o, "weights", w);
                                add(b, deps, sc->deployments[d].name, o);
                        } else {
                                json_object_put(rep);
                                json_object_put(rdy);
                                json_object_put(p99);
                                json_object_put(err);
                                json_object_put(w);
                        }
                }
                add(b, series, "deployments", deps);
        }
        add(b, doc, "series", series);

        json_object *exp = chk(b, json_object_new_array());
        for (uint32_t k = 0; exp && k < sc->n_expect; k++) {
                json_object *o = chk(b, json_object_new_object());
                if (!o)
                        break;
                add(b, o, "name", str(b, sc->expect[k].name));
                add(b, o, "ok", chk(b, json_object_new_boolean(run->expect[k].ok)));
                add(b, o, "detail", str(b, run->expect[k].detail));
                push(b, exp, o);
        }
        add(b, doc, "expectations", exp);
        return doc;
}

int fm_sim_run_json(const struct fm_sim_run *run, const struct fm_sim_run *baseline,
                    struct json_object **ret)
{
        struct b b = {false};
        if (!run || !ret)
                return -EINVAL;
        json_object *doc = run_doc(&b, run);
        if (doc && baseline)
                add(&b, doc, "baseline", run_doc(&b, baseline));
        if (b.failed || !doc) {
                json_object_put(doc);
                return -ENOMEM;
        }
        *ret = doc;
        return 0;
}
