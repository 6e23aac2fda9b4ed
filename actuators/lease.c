/* SPDX-License-Identifier: MIT */
#include "lease.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "http_backend.h"
#include "kube.h"

/*
 * One try (client-go's tryAcquireOrRenew) is a GET, then a POST (the Lease
 * is absent) or a PUT (we hold it, or it expired). Tries run one at a time
 * from a timer: every retry_period while leading, every retry_period plus
 * up to 1.2 x retry_period of jitter while not, so racing electors spread
 * out. The timer also checks the renew deadline, even while a try hangs.
 *
 * "Expired" is decided only from our own observations: the record (the
 * Lease's spec) is remembered with the local monotonic time it was first
 * seen in that form; another holder's record is valid until that time
 * plus its leaseDurationSeconds. A leader that stops renewing stops
 * changing the record, so every other elector sees it expire at most
 * lease_duration after its last renewal — and the leader itself has
 * stepped down by then, renew_deadline after the last renewal it sent.
 */

#define JITTER_FACTOR 1.2

struct fm_lease {
        sd_event *event;
        struct fm_kube *kube;
        struct fm_lease_config cfg;
        fm_lease_change_fn on_change;
        void *userdata;
        sd_event_source *timer;
        sd_event_source *notify; /* deferred on_change(false) after fm_lease_release() */
        uint64_t call_id;        /* 0 when no request is in flight */
        bool leader, stopped;
        uint64_t transitions;
        fm_ms renewed_at; /* monotonic: when the last successful write was sent */
        fm_ms sent_at;    /* monotonic: when the write in flight was sent */
        uint64_t pending_transitions;
        char *observed; /* the spec as last seen, serialised */
        fm_ms observed_at;
        struct json_object *last; /* the Lease as last read or written */
        uint64_t rng;
};

void fm_lease_config_default(struct fm_lease_config *cfg)
{
        memset(cfg, 0, sizeof *cfg);
        memcpy(cfg->name, "fleetmedic", sizeof "fleetmedic");
        cfg->lease_duration = 15 * FM_MS_PER_S;
        cfg->renew_deadline = 10 * FM_MS_PER_S;
        cfg->retry_period = 2 * FM_MS_PER_S;
        cfg->release_on_stop = true;
}

int fm_lease_config_validate(const struct fm_lease_config *cfg)
{
        if (!cfg || !memchr(cfg->name, '\0', sizeof cfg->name) ||
            !memchr(cfg->namespace_, '\0', sizeof cfg->namespace_) ||
            !memchr(cfg->identity, '\0', sizeof cfg->identity))
                return -EINVAL;
        if (!fm_kube_name_valid(cfg->name) ||
            (cfg->namespace_[0] && !fm_kube_label_valid(cfg->namespace_)))
                return -EINVAL;
        for (const char *c = cfg->identity; *c; c++)
                if ((unsigned char)*c < ' ' || *c == 0x7f)
                        return -EINVAL;
        if (cfg->lease_duration < FM_MS_PER_S || cfg->lease_duration > 3600 * FM_MS_PER_S ||
            cfg->lease_duration % FM_MS_PER_S != 0)
                return -EINVAL;
        if (cfg->retry_period < 10 || cfg->renew_deadline >= cfg->lease_duration ||
            (double)cfg->renew_deadline <= JITTER_FACTOR * (double)cfg->retry_period)
                return -EINVAL;
        return 0;
}

static fm_ms mono_now(const struct fm_lease *l)
{
        return fm_backend_now(l->event, CLOCK_MONOTONIC);
}

static fm_ms real_now(const struct fm_lease *l)
{
        return fm_backend_now(l->event, CLOCK_REALTIME);
}

/* Half the renew deadline: a hung request still leaves time for another try before it. */
static fm_ms request_timeout(const struct fm_lease *l)
{
        return l->cfg.renew_deadline / 2;
}

static uint64_t next_random(struct fm_lease *l)
{
        /* xorshift64* */
        l->rng ^= l->rng >> 12;
        l->rng ^= l->rng << 25;
        l->rng ^= l->rng >> 27;
        return l->rng * UINT64_C(2685821657736338717);
}

static void step_down(struct fm_lease *l)
{
        if (!l->leader)
                return;
        l->leader = false;
        if (l->on_change)
                l->on_change(l->userdata, false, l->transitions);
}

static void arm(struct fm_lease *l)
{
        fm_ms delay = l->cfg.retry_period;

        if (!l->leader)
                delay += (fm_ms)((double)l->cfg.retry_period * JITTER_FACTOR *
                                 ((double)(next_random(l) >> 11) / 9007199254740992.0));
        (void)sd_event_source_set_time(l->timer, (uint64_t)(mono_now(l) + delay) * 1000);
        (void)sd_event_source_set_enabled(l->timer, SD_EVENT_ONESHOT);
}

/* Remembers obj's spec and when it last changed. */
static void observe(struct fm_lease *l, struct json_object *obj)
{
        struct json_object *spec = fm_kube_get(obj, (const char *const[]){"spec", NULL});
        const char *s = spec ? json_object_to_json_string_ext(spec, JSON_C_TO_STRING_PLAIN) : "";

        if (!l->observed || strcmp(l->observed, s) != 0) {
                char *copy = strdup(s);
                if (copy) {
                        free(l->observed);
                        l->observed = copy;
                }
                l->observed_at = mono_now(l);
        }
        json_object_put(l->last);
        l->last = json_object_get(obj);
}

/* A successful POST or PUT: we hold the lease with `transitions`. */
static void won(struct fm_lease *l, const struct fm_httpc_response *resp)
{
        struct json_object *obj = fm_http_json_object(resp);
        bool was = l->leader;

        if (obj) {
                observe(l, obj);
                json_object_put(obj);
        }
        l->renewed_at = l->sent_at;
        l->transitions = l->pending_transitions;
        l->leader = true;
        if (!was && l->on_change)
                l->on_change(l->userdata, true, l->transitions);
}

static void write_done(void *userdata, const struct fm_httpc_response *resp)
{
        struct fm_lease *l = userdata;

        l->call_id = 0;
        if (resp->error == 0 && (resp->status == 200 || resp->status == 201))
                won(l, resp);
        /* 409 (another elector wrote first) and every failure: this try is lost. */
}

static void create(struct fm_lease *l)
{
        struct json_object *o = json_object_new_object(), *meta, *spec;
        char when[40];
        int r = -ENOMEM;

        meta = json_object_new_object();
        spec = json_object_new_object();
        if (!o || !meta || !spec || json_object_object_add(o, "metadata", meta) < 0) {
                json_object_put(meta);
                json_object_put(spec);
                goto out;
        }
        if (json_object_object_add(o, "spec", spec) < 0) {
                json_object_put(spec);
                goto out;
        }
        if (fm_kube_format_time(real_now(l), true, when, sizeof when) < 0)
                goto out;
        if (fm_json_add_string(o, "apiVersion", "coordination.k8s.io/v1") < 0 ||
            fm_json_add_string(o, "kind", "Lease") < 0 ||
            fm_json_add_string(meta, "name", l->cfg.name) < 0 ||
            fm_json_add_string(meta, "namespace", l->cfg.namespace_) < 0 ||
            fm_json_add_string(spec, "holderIdentity", l->cfg.identity) < 0 ||
            fm_json_add(spec, "leaseDurationSeconds",
                        json_object_new_int64(l->cfg.lease_duration / FM_MS_PER_S)) < 0 ||
            fm_json_add_string(spec, "acquireTime", when) < 0 ||
            fm_json_add_string(spec, "renewTime", when) < 0 ||
            fm_json_add(spec, "leaseTransitions", json_object_new_int64(0)) < 0)
                goto out;
        l->sent_at = mono_now(l);
        l->pending_transitions = 0;
        r = fm_kube_request(l->kube, FM_KUBE_LEASE_CREATE, l->cfg.namespace_, NULL,
                            "application/json",
                            json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN),
                            request_timeout(l), write_done, l, &l->call_id);
out:
        json_object_put(o);
        if (r < 0)
                l->call_id = 0;
}

static int64_t spec_int(struct json_object *obj, const char *key, int64_t dflt)
{
        struct json_object *v = fm_kube_get(obj, (const char *const[]){"spec", key, NULL});

        return v && json_object_is_type(v, json_type_int) ? json_object_get_int64(v) : dflt;
}

/* The GET answer in hand (obj): give up, or write ourselves in as holder. */
static void acquire_or_renew(struct fm_lease *l, struct json_object *obj)
{
        struct json_object *spec = fm_kube_get(obj, (const char *const[]){"spec", NULL}), *h;
        const char *holder = "";
        int64_t duration, transitions;
        char when[40];
        bool ours;
        int r;

        observe(l, obj);
        if (!spec || !json_object_is_type(spec, json_type_object))
                return;
        h = fm_kube_get(spec, (const char *const[]){"holderIdentity", NULL});
        if (h && json_object_is_type(h, json_type_string))
                holder = json_object_get_string(h);
        ours = strcmp(holder, l->cfg.identity) == 0;
        duration = spec_int(obj, "leaseDurationSeconds", l->cfg.lease_duration / FM_MS_PER_S);
        transitions = spec_int(obj, "leaseTransitions", 0);
        if (transitions < 0)
                transitions = 0;
        if (holder[0] && !ours && mono_now(l) < l->observed_at + duration * FM_MS_PER_S) {
                /* Someone else holds a record we have not yet seen expire. */
                step_down(l);
                return;
        }
        if (!ours && l->leader)
                step_down(l);
        if (fm_kube_format_time(real_now(l), true, when, sizeof when) < 0)
                return;
        if (!ours) {
                transitions++;
                if (fm_json_add_string(spec, "acquireTime", when) < 0)
                        return;
        }
        if (fm_json_add_string(spec, "holderIdentity", l->cfg.identity) < 0 ||
            fm_json_add(spec, "leaseDurationSeconds",
                        json_object_new_int64(l->cfg.lease_duration / FM_MS_PER_S)) < 0 ||
            fm_json_add_string(spec, "renewTime", when) < 0 ||
            fm_json_add(spec, "leaseTransitions", json_object_new_int64(transitions)) < 0)
                return;
        l->sent_at = mono_now(l);
        l->pending_transitions = (uint64_t)transitions;
        /* The object as read carries its resourceVersion: a concurrent writer makes this 409. */
        r = fm_kube_request(l->kube, FM_KUBE_LEASE_UPDATE, l->cfg.namespace_, l->cfg.name,
                            "application/json",
                            json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PLAIN),
                            request_timeout(l), write_done, l, &l->call_id);
        if (r < 0)
                l->call_id = 0;
}

static void get_done(void *userdata, const struct fm_httpc_response *resp)
{
        struct fm_lease *l = userdata;
        struct json_object *obj;

        l->call_id = 0;
        if (resp->error != 0)
                return;
        if (resp->status == 404) {
                create(l);
                return;
        }
        if (resp->status != 200)
                return;
        obj = fm_http_json_object(resp);
        if (!obj)
                return;
        acquire_or_renew(l, obj);
        json_object_put(obj);
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
        struct fm_lease *l = userdata;
        int r;

        (void)s;
        (void)usec;
        if (l->stopped)
                return 0;
        if (l->leader && mono_now(l) - l->renewed_at > l->cfg.renew_deadline) {
                /* No renewal within the deadline: stop acting before anyone may take over. */
                fm_kube_cancel(l->kube, l->call_id);
                l->call_id = 0;
                step_down(l);
        }
        if (l->call_id == 0) {
                r = fm_kube_request(l->kube, FM_KUBE_LEASE_GET, l->cfg.namespace_, l->cfg.name,
                                    NULL, NULL, request_timeout(l), get_done, l, &l->call_id);
                if (r < 0)
                        l->call_id = 0;
        }
        arm(l);
        return 0;
}

int fm_lease_new(sd_event *event, struct fm_kube *kube, const struct fm_lease_config *cfg,
                 fm_lease_change_fn on_change, void *userdata, struct fm_lease **ret)
{
        struct fm_lease *l;
        struct timespec ts;
        int r;

        if (!event || !kube || !cfg || !ret || !cfg->enabled || fm_lease_config_validate(cfg) < 0)
                return -EINVAL;
        l = calloc(1, sizeof *l);
        if (!l)
                return -ENOMEM;
        l->cfg = *cfg;
        l->kube = kube;
        l->on_change = on_change;
        l->userdata = userdata;
        if (!l->cfg.namespace_[0])
                snprintf(l->cfg.namespace_, sizeof l->cfg.namespace_, "%s",
                         fm_kube_namespace(kube));
        if (!l->cfg.identity[0] && (gethostname(l->cfg.identity, 64) < 0 || !l->cfg.identity[0]))
                memcpy(l->cfg.identity, "fleetmedic", sizeof "fleetmedic");
        if (!fm_kube_label_valid(l->cfg.namespace_)) {
                free(l);
                return -EINVAL;
        }
        clock_gettime(CLOCK_MONOTONIC, &ts);
        l->rng = ((uint64_t)getpid() << 32) ^ (uint64_t)ts.tv_nsec ^ (uint64_t)ts.tv_sec ^ 1;
        l->event = sd_event_ref(event);
        r = sd_event_add_time(event, &l->timer, CLOCK_MONOTONIC, 0, 1000, on_timer, l);
        if (r < 0) {
                fm_lease_free(l);
                return r;
        }
        /* First try at once, from the loop. */
        (void)sd_event_source_set_time(l->timer, (uint64_t)mono_now(l) * 1000);
        (void)sd_event_source_set_enabled(l->timer, SD_EVENT_ONESHOT);
        *ret = l;
        return 0;
}

struct fm_lease *fm_lease_free(struct fm_lease *l)
{
        if (!l)
                return NULL;
        if (l->call_id)
                fm_kube_cancel(l->kube, l->call_id);
        sd_event_source_disable_unref(l->timer);
        sd_event_source_disable_unref(l->notify);
        json_object_put(l->last);
        free(l->observed);
        sd_event_unref(l->event);
        free(l);
        return NULL;
}

bool fm_lease_is_leader(const struct fm_lease *l, uint64_t *ret_fence)
{
        if (!l || !l->leader || l->stopped)
                return false;
        if (mono_now(l) - l->renewed_at > l->cfg.renew_deadline)
                return false;
        if (ret_fence)
                *ret_fence = l->transitions;
        return true;
}

const char *fm_lease_identity(const struct fm_lease *l)
{
        return l ? l->cfg.identity : NULL;
}

static int on_notify(sd_event_source *s, void *userdata)
{
        struct fm_lease *l = userdata;

        (void)s;
        if (l->on_change)
                l->on_change(l->userdata, false, l->transitions);
        return 0;
}

static void release_done(void *userdata, const struct fm_httpc_response *resp)
{
        struct fm_lease *l = userdata;

        (void)resp;
        l->call_id = 0;
}

int fm_lease_release(struct fm_lease *l)
{
        struct json_object *spec;
        char when[40];
        bool was;
        int r;

        if (!l)
                return -EINVAL;
        was = fm_lease_is_leader(l, NULL);
        l->stopped = true;
        l->leader = false;
        (void)sd_event_source_set_enabled(l->timer, SD_EVENT_OFF);
        if (l->call_id) {
                fm_kube_cancel(l->kube, l->call_id);
                l->call_id = 0;
        }
        if (!was)
                return 0;
        r = sd_event_add_defer(l->event, &l->notify, on_notify, l);
        if (r < 0)
                return r;
        spec = fm_kube_get(l->last, (const char *const[]){"spec", NULL});
        if (!spec || !json_object_is_type(spec, json_type_object))
                return -ENODATA;
        if (fm_kube_format_time(real_now(l), true, when, sizeof when) < 0)
                return -ERANGE;
        if (fm_json_add_string(spec, "holderIdentity", "") < 0 ||
            fm_json_add(spec, "leaseDurationSeconds", json_object_new_int64(1)) < 0 ||
            fm_json_add_string(spec, "acquireTime", when) < 0 ||
            fm_json_add_string(spec, "renewTime", when) < 0)
                return -ENOMEM;
        return fm_kube_request(l->kube, FM_KUBE_LEASE_UPDATE, l->cfg.namespace_, l->cfg.name,
                               "application/json",
                               json_object_to_json_string_ext(l->last, JSON_C_TO_STRING_PLAIN),
                               request_timeout(l), release_done, l, &l->call_id);
}
