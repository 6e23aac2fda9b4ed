/* SPDX-License-Identifier: MIT */
#include "audit.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

/* json-c objects are built, serialised once into b, then released. */
static int emit(struct fm_buf *b, json_object *o)
{
        if (!o)
                return -ENOMEM;
        const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
                                                                  JSON_C_TO_STRING_NOSLASHESCAPE);
        int r = s ? fm_buf_append(b, s, strlen(s)) : -ENOMEM;
        json_object_put(o);
        return r;
}

static void add_str(json_object *o, const char *k, const char *v)
{
        json_object_object_add(o, k, json_object_new_string(v ? v : ""));
}

static void add_double(json_object *o, const char *k, double v)
{
        json_object_object_add(o, k, json_object_new_double(v));
}

static void add_int(json_object *o, const char *k, int64_t v)
{
        json_object_object_add(o, k, json_object_new_int64(v));
}

static void add_bool(json_object *o, const char *k, bool v)
{
        json_object_object_add(o, k, json_object_new_boolean(v));
}

/* Seconds with exactly the milliseconds we have, not a binary fraction's noise. */
static void add_ts(json_object *o, const char *k, fm_ms t)
{
        char text[32];
        snprintf(text, sizeof(text), "%s%" PRId64 ".%03" PRId64, t < 0 ? "-" : "",
                 (t < 0 ? -t : t) / FM_MS_PER_S, (t < 0 ? -t : t) % FM_MS_PER_S);
        json_object_object_add(o, k, json_object_new_double_s((double)t / FM_MS_PER_S, text));
}

/* Whole numbers print as integers (requests=240, not 240.0). */
static void add_number(json_object *o, const char *k, double v)
{
        if (v == floor(v) && fabs(v) < 9e15)
                add_int(o, k, (int64_t)v);
        else
                add_double(o, k, v);
}

static json_object *evidence_object(const struct fm_evidence *e)
{
        json_object *o = json_object_new_object();
        for (uint32_t k = 0; o && k < e->n; k++)
                add_number(o, e->item[k].key, e->item[k].value);
        return o;
}

int fm_audit_transition(struct fm_buf *b, const struct fm_transition *t)
{
        json_object *o = json_object_new_object();
        if (!o)
                return -ENOMEM;
        add_ts(o, "ts", t->t.at);
        add_str(o, "type", "transition");
        add_str(o, "deployment", t->deployment);
        add_str(o, "instance", t->instance);
        add_str(o, "version", t->version);
        add_str(o, "from", fm_breaker_state_name(t->t.from));
        add_str(o, "to", fm_breaker_state_name(t->t.to));
        add_str(o, "cause", fm_breaker_cause_name(t->t.cause));
        json_object_object_add(o, "evidence", evidence_object(&t->t.evidence));
        return emit(b, o);
}

static json_object *args_object(const struct fm_intent *it, const struct fm_plan *plan)
{
        json_object *a = json_object_new_object();
        if (!a)
                return NULL;
        switch (it->action) {
        case FM_ACTION_SCALE:
                add_int(a, "from", it->arg.scale.from);
                add_int(a, "to", it->arg.scale.to);
                break;
        case FM_ACTION_SET_WEIGHTS: {
                json_object *w = json_object_new_object();
                uint32_t first = it->arg.weights.first, n = it->arg.weights.n;
                for (uint32_t k = 0; w && plan && k < n && first + k < plan->n_weights; k++)
                        add_int(w, plan->weight[first + k].target, plan->weight[first + k].weight);
                json_object_object_add(a, "weights", w);
                break;
        }
        case FM_ACTION_ROLLBACK:
                add_str(a, "from", it->arg.rollback.from);
                add_str(a, "to", it->arg.rollback.to);
                break;
        case FM_ACTION_SET_THRESHOLD:
                add_str(a, "version", it->arg.threshold.version);
                add_double(a, "from", it->arg.threshold.from);
                add_double(a, "to", it->arg.threshold.to);
                break;
        case FM_ACTION_ALERT:
                add_str(a, "severity", fm_severity_name(it->arg.alert.severity));
                add_str(a, "summary", it->arg.alert.summary);
                break;
        case FM_ACTION_RESTART:
        default:
                break;
        }
        return a;
}

int fm_audit_intent(struct fm_buf *b, const struct fm_intent *it, const struct fm_plan *plan,
                    const char *outcome)
{
        json_object *o = json_object_new_object();
        if (!o)
                return -ENOMEM;
        add_ts(o, "ts", it->at);
        add_str(o, "type", "action");
        add_str(o, "action", fm_action_name(it->action));
        add_str(o, "policy", it->policy);
        add_str(o, "reason", it->reason);
        add_str(o, "deployment", it->deployment);
        add_str(o, "instance", it->instance);
        add_str(o, "key", it->key);
        add_str(o, "verdict", fm_verdict_name(it->verdict));
        add_str(o, "outcome", outcome);
        json_object_object_add(o, "args", args_object(it, plan));
        json_object_object_add(o, "evidence", evidence_object(&it->evidence));
        return emit(b, o);
}

int fm_audit_execution(struct fm_buf *b, const struct fm_execution *e)
{
        json_object *o = json_object_new_object();
        if (!o)
                return -ENOMEM;
        add_ts(o, "ts", e->finished);
        add_str(o, "type", "execution");
        add_str(o, "action", fm_action_name(e->action));
        add_str(o, "policy", e->policy);
        add_str(o, "deployment", e->deployment);
        add_str(o, "instance", e->instance);
        add_str(o, "key", e->key);
        add_str(o, "backend", e->backend);
        add_str(o, "outcome", e->outcome);
        add_str(o, "detail", e->detail);
        add_int(o, "attempts", e->attempts);
        add_ts(o, "submitted", e->submitted);
        add_bool(o, "settled", e->settled);
        return emit(b, o);
}

static unsigned open_breakers(const struct fm_deployment *d)
{
        unsigned n = 0;
        for (const struct fm_instance *i = d->instances; i; i = i->next)
                n += fm_breaker_ejected(&i->breaker);
        return n;
}

int fm_audit_state(struct fm_buf *b, const struct fm_fleet *f, bool online, bool dry_run, fm_ms now)
{
        json_object *o = json_object_new_object();
        unsigned open = 0;
        if (!o)
                return -ENOMEM;
        for (const struct fm_deployment *d = f->deployments; d; d = d->next)
                open += open_breakers(d);
        add_bool(o, "online", online);
        add_bool(o, "dry_run", dry_run);
        add_ts(o, "ts", now);
        add_int(o, "deployments", f->n_deployments);
        add_int(o, "instances", f->n_instances);
        add_int(o, "breakers_open", open);
        return emit(b, o);
}

static void add_quantiles(json_object *o, const struct fm_sketch_ring *ring, fm_ms now)
{
        struct fm_sketch *s = malloc(sizeof(*s));
        if (!s)
                return;
        fm_sketch_ring_collect(ring, now, s);
        static const struct {
                const char *key;
                double q;
        } qs[] = {{"p50_ms", 0.50}, {"p95_ms", 0.95}, {"p99_ms", 0.99}};
        for (size_t k = 0; k < sizeof(qs) / sizeof(qs[0]); k++) {
                double v;
                if (fm_sketch_quantile(s, qs[k].q, &v) == 0)
                        add_double(o, qs[k].key, v);
                else
                        json_object_object_add(o, qs[k].key, NULL);
        }
        free(s);
}

static json_object *version_object(const struct fm_version *v, fm_ms now)
{
        json_object *o = json_object_new_object();
        if (!o)
                return NULL;
        add_str(o, "name", v->name);
        add_int(o, "instances", v->n_instances);
        add_int(o, "requests_total", (int64_t)v->requests_total);
        add_int(o, "errors_total", (int64_t)v->errors_total);
        add_int(o, "outcomes_total", (int64_t)v->outcomes_total);
        add_quantiles(o, &v->latency_recent, now);
        return o;
}

static json_object *instance_object(const struct fm_instance *i, fm_ms now)
{
        json_object *o = json_object_new_object();
        if (!o)
                return NULL;
        /* the last rolled window; the tick rolls it every interval */
        uint64_t sum[_FM_CTR_MAX] = {0};
        struct fm_window w = i->window;
        fm_window_sums(&w, now, sum);

        add_str(o, "name", i->name);
        add_str(o, "version", i->version->name);
        add_str(o, "breaker", fm_breaker_state_name(i->breaker.state));
        add_ts(o, "breaker_since", i->breaker.since);
        add_int(o, "breaker_opens", i->breaker.opens);
        add_str(o, "health", fm_health_status_name(i->health));
        add_bool(o, "ready", i->ready);
        add_double(o, "last_seen_s_ago", (double)(now - i->last_seen) / FM_MS_PER_S);
        add_int(o, "window_requests", (int64_t)sum[FM_CTR_REQUESTS]);
        add_int(o, "window_errors", (int64_t)sum[FM_CTR_ERRORS]);
        add_int(o, "window_slow", (int64_t)sum[FM_CTR_SLOW]);
        return o;
}

int fm_audit_status(struct fm_buf *b, const struct fm_fleet *f, const struct fm_status_info *info,
                    fm_ms now)
{
        json_object *o = json_object_new_object();
        if (!o)
                return -ENOMEM;
        add_str(o, "version", info->version);
        add_ts(o, "ts", now);
        add_double(o, "uptime_s", info->uptime_s);
        add_bool(o, "dry_run", info->dry_run);
        add_bool(o, "ready", info->ready);

        json_object *mqtt = json_object_new_object();
        if (mqtt) {
                add_bool(mqtt, "connected", info->mqtt_connected);
                add_bool(mqtt, "subscribed", info->mqtt_subscribed);
                add_int(mqtt, "reconnects", (int64_t)info->mqtt_reconnects);
        }
        json_object_object_add(o, "mqtt", mqtt);

        json_object *deps = json_object_new_array();
        for (const struct fm_deployment *d = f->deployments; deps && d; d = d->next) {
                json_object *dep = json_object_new_object(), *vers = json_object_new_array(),
                            *insts = json_object_new_array();
                if (!dep || !vers || !insts) {
                        json_object_put(dep);
                        json_object_put(vers);
                        json_object_put(insts);
                        continue;
                }
                add_str(dep, "name", d->name);
                for (const struct fm_version *v = d->versions; v; v = v->next)
                        json_object_array_add(vers, version_object(v, now));
                for (const struct fm_instance *i = d->instances; i; i = i->next)
                        json_object_array_add(insts, instance_object(i, now));
                json_object_object_add(dep, "versions", vers);
                json_object_object_add(dep, "instances", insts);
                json_object_array_add(deps, dep);
        }
        json_object_object_add(o, "deployments", deps);

        json_object *recent = json_object_new_array();
        for (unsigned k = 0; recent && k < info->n_recent; k++) {
                json_object *r = json_tokener_parse(info->recent[k]);
                if (r)
                        json_object_array_add(recent, r);
        }
        json_object_object_add(o, "recent_decisions", recent);
        return emit(b, o);
}
