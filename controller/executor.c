/* SPDX-License-Identifier: MIT */
#include "executor.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#define RECOVERY_POLICY "recovery"

static const char *const backend_names[_FM_BACKEND_KIND_MAX] = {
        [FM_BACKEND_DRYRUN] = "dry-run",        [FM_BACKEND_SYSTEMD] = "systemd",
        [FM_BACKEND_KUBERNETES] = "kubernetes", [FM_BACKEND_HAPROXY] = "haproxy",
        [FM_BACKEND_MLFLOW] = "mlflow",         [FM_BACKEND_ALERTMANAGER] = "alertmanager",
};

const char *fm_backend_kind_name(enum fm_backend_kind k)
{
        return (unsigned)k < _FM_BACKEND_KIND_MAX ? backend_names[k] : NULL;
}

int fm_backend_kind_from_name(const char *name)
{
        for (int k = 0; name && k < _FM_BACKEND_KIND_MAX; k++)
                if (strcmp(name, backend_names[k]) == 0)
                        return k;
        return -EINVAL;
}

void fm_executor_config_default(struct fm_executor_config *cfg)
{
        memset(cfg, 0, sizeof(*cfg));
        cfg->action_timeout = 120 * FM_MS_PER_S;
        fm_actuator_config_default(&cfg->retry);
        fm_systemd_config_default(&cfg->systemd);
        fm_kube_config_default(&cfg->kubernetes);
        fm_haproxy_config_default(&cfg->haproxy);
        fm_mlflow_config_default(&cfg->mlflow);
        fm_alertmanager_config_default(&cfg->alertmanager);
}

/* True when a binding names backend kind (kubernetes also for the Lease). */
static bool backend_used(const struct fm_executor_config *cfg, enum fm_backend_kind kind)
{
        if (kind == FM_BACKEND_KUBERNETES && cfg->kubernetes.lease.enabled)
                return true;
        for (uint32_t i = 0; i < cfg->n_bindings; i++)
                if (cfg->binding[i].backend == kind)
                        return true;
        return false;
}

int fm_executor_config_validate(const struct fm_executor_config *cfg)
{
        if (!cfg || cfg->action_timeout <= 0 || cfg->n_bindings > FM_EXECUTOR_BINDINGS_MAX ||
            fm_actuator_config_validate(&cfg->retry) < 0)
                return -EINVAL;
        for (uint32_t i = 0; i < cfg->n_bindings; i++) {
                const struct fm_binding_config *b = &cfg->binding[i];
                bool any = false;
                for (int a = 0; a < _FM_ACTION_MAX; a++)
                        any |= b->actions[a];
                if (!any || (unsigned)b->backend >= _FM_BACKEND_KIND_MAX || !b->deployment[0] ||
                    !memchr(b->deployment, '\0', sizeof(b->deployment)))
                        return -EINVAL;
        }
        /* a backend's settings matter only when it is used (kubernetes needs a server) */
        if ((backend_used(cfg, FM_BACKEND_SYSTEMD) &&
             fm_systemd_config_validate(&cfg->systemd) < 0) ||
            (backend_used(cfg, FM_BACKEND_KUBERNETES) &&
             fm_kube_config_validate(&cfg->kubernetes) < 0) ||
            (backend_used(cfg, FM_BACKEND_HAPROXY) &&
             fm_haproxy_config_validate(&cfg->haproxy) < 0) ||
            (backend_used(cfg, FM_BACKEND_MLFLOW) && fm_mlflow_config_validate(&cfg->mlflow) < 0) ||
            (backend_used(cfg, FM_BACKEND_ALERTMANAGER) &&
             fm_alertmanager_config_validate(&cfg->alertmanager) < 0))
                return -EINVAL;
        return 0;
}

enum failpoint {
        FAILPOINT_NONE,
        FAILPOINT_JOURNAL_BEGUN,
        FAILPOINT_ACTUATOR_DONE,
};

/* One submission the actuator holds. */
struct tracked {
        int64_t id; /* actuator request id; 0: free slot */
        uint64_t seq;
        const char *policy; /* static */
        enum fm_backend_kind backend;
        bool settled;
        char deployment[FM_NAME_MAX + 1];
        char instance[FM_NAME_MAX + 1];
        uint32_t scale_from, scale_to;
};

struct fm_executor {
        struct fm_executor_config cfg;
        sd_event *event;
        struct fm_journal *journal;
        struct fm_actuator *actuator;
        struct fm_dryrun *dryrun;
        struct fm_systemd *systemd;
        struct fm_kube *kube;
        struct fm_lease *lease;
        struct fm_haproxy *haproxy;
        struct fm_mlflow *mlflow;
        struct fm_alertmanager *alertmanager;
        int index[_FM_BACKEND_KIND_MAX]; /* actuator backend index; -1: not created */
        struct fm_actuator_binding *routes;
        size_t n_routes;
        sd_event_source *timer, *post, *kick;
        fm_execution_fn done;
        void *userdata;
        enum failpoint failpoint;
        struct tracked *tracked; /* FM_ACTUATOR_QUEUE_MAX slots */
        unsigned in_flight;
};

static fm_ms now_ms(struct fm_executor *x)
{
        uint64_t usec = 0;
        (void)sd_event_now(x->event, CLOCK_REALTIME, &usec);
        return (fm_ms)(usec / 1000);
}

static void failpoint(const struct fm_executor *x, enum failpoint at)
{
        if (x->failpoint == at)
                raise(SIGKILL);
}

static struct tracked *find_tracked(struct fm_executor *x, int64_t id)
{
        for (unsigned i = 0; i < FM_ACTUATOR_QUEUE_MAX; i++)
                if (x->tracked[i].id == id)
                        return &x->tracked[i];
        return NULL;
}

static enum fm_journal_outcome journal_outcome(enum fm_outcome_status s, bool settled)
{
        if (settled)
                return s == FM_OUTCOME_OK ? FM_JOURNAL_OK : FM_JOURNAL_UNKNOWN;
        switch (s) {
        case FM_OUTCOME_OK:
                return FM_JOURNAL_OK;
        case FM_OUTCOME_REFUSED:
                return FM_JOURNAL_REFUSED;
        case FM_OUTCOME_TIMEOUT: /* the backend may have acted after all */
                return FM_JOURNAL_UNKNOWN;
        default:
                return FM_JOURNAL_FAILED;
        }
}

static void collect(struct fm_executor *x)
{
        struct fm_action_outcome o;

        while (fm_actuator_poll(x->actuator, &o) > 0) {
                struct tracked *t = find_tracked(x, (int64_t)o.id);
                if (!t)
                        continue;
                failpoint(x, FAILPOINT_ACTUATOR_DONE);
                enum fm_journal_outcome jo = journal_outcome(o.status, t->settled);
                int r = fm_journal_end(x->journal, t->seq, jo, o.detail, o.finished);
                const char *outcome =
                        t->settled ? fm_journal_outcome_name(jo) : fm_outcome_status_name(o.status);
                struct fm_execution e = {
                        .key = o.key,
                        .policy = t->policy,
                        .action = o.action,
                        .deployment = t->deployment,
                        .instance = t->instance,
                        .backend = backend_names[t->backend],
                        .outcome = r < 0 ? "journal_error" : outcome,
                        .detail = o.detail,
                        .scale_from = t->scale_from,
                        .scale_to = t->scale_to,
                        .attempts = o.attempts,
                        .submitted = o.submitted,
                        .finished = o.finished,
                        .settled = t->settled,
                };
                t->id = 0;
                x->in_flight--;
                x->done(x->userdata, &e);
        }
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata);

/* After every dispatch: deliver dry-run results, advance the actuator, hand out outcomes. */
static int on_post(sd_event_source *s, void *userdata)
{
        struct fm_executor *x = userdata;
        fm_ms now, at;
        (void)s;

        /* runs after every dispatch of the loop: nothing to do is the common case */
        if (x->in_flight == 0)
                return 0;
        now = now_ms(x);
        (void)fm_dryrun_flush(x->dryrun, x->actuator, now);
        (void)fm_actuator_tick(x->actuator, now);
        collect(x);
        if (fm_actuator_next_wake(x->actuator, &at) == 0) {
                if (!x->timer)
                        (void)sd_event_add_time(x->event, &x->timer, CLOCK_REALTIME,
                                                (uint64_t)at * 1000, 1000, on_timer, x);
                else if (sd_event_source_set_time(x->timer, (uint64_t)at * 1000) >= 0)
                        (void)sd_event_source_set_enabled(x->timer, SD_EVENT_ONESHOT);
        }
        return 0;
}

/* Wakes the loop after a submission made outside it (the post source then runs). */
static int on_kick(sd_event_source *s, void *userdata)
{
        (void)s;
        (void)userdata;
        return 0;
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
        (void)s;
        (void)usec;
        (void)userdata;
        return 0; /* the post source does the work */
}

/* Creates backend kind and registers it with the actuator. */
static int add_backend(struct fm_executor *x, enum fm_backend_kind kind)
{
        const struct fm_backend_ops *ops;
        void *backend;
        int r;

        switch (kind) {
        case FM_BACKEND_SYSTEMD:
                r = fm_systemd_new(x->event, &x->cfg.systemd, x->actuator, &x->systemd);
                ops = &fm_backend_systemd_ops;
                backend = x->systemd;
                break;
        case FM_BACKEND_KUBERNETES:
                r = x->kube ? 0 : fm_kube_new(x->event, &x->cfg.kubernetes, x->actuator, &x->kube);
                ops = &fm_backend_kube_ops;
                backend = x->kube;
                break;
        case FM_BACKEND_HAPROXY:
                r = fm_haproxy_new(x->event, &x->cfg.haproxy, x->actuator, &x->haproxy);
                ops = &fm_backend_haproxy_ops;
                backend = x->haproxy;
                break;
        case FM_BACKEND_MLFLOW:
                r = fm_mlflow_new(x->event, &x->cfg.mlflow, x->actuator, &x->mlflow);
                ops = &fm_backend_mlflow_ops;
                backend = x->mlflow;
                break;
        case FM_BACKEND_ALERTMANAGER:
                r = fm_alertmanager_new(x->event, &x->cfg.alertmanager, x->actuator,
                                        &x->alertmanager);
                ops = &fm_backend_alertmanager_ops;
                backend = x->alertmanager;
                break;
        default:
                return -EINVAL;
        }
        if (r < 0)
                return r;
        r = fm_actuator_add_backend(x->actuator, ops, backend);
        if (r < 0)
                return r;
        x->index[kind] = r;
        return 0;
}

/* The Lease elector, on the kubernetes backend's transport. */
static int start_lease(struct fm_executor *x)
{
        int r = 0;

        if (!x->kube)
                r = fm_kube_new(x->event, &x->cfg.kubernetes, x->actuator, &x->kube);
        if (r < 0)
                return r;
        r = fm_lease_new(x->event, x->kube, &x->cfg.kubernetes.lease, NULL, NULL, &x->lease);
        if (r < 0)
                return r;
        fm_kube_set_lease(x->kube, x->lease);
        return 0;
}

bool fm_executor_leader(const struct fm_executor *x, uint64_t *ret_fence)
{
        if (!x)
                return false;
        if (!x->lease) {
                if (ret_fence)
                        *ret_fence = 0;
                return true;
        }
        return fm_lease_is_leader(x->lease, ret_fence);
}

int fm_executor_release(struct fm_executor *x)
{
        if (!x || !x->lease || !x->cfg.kubernetes.lease.release_on_stop)
                return 0;
        return fm_lease_release(x->lease);
}

int fm_executor_new(sd_event *event, const struct fm_executor_config *cfg,
                    struct fm_journal *journal, uint64_t seed, fm_execution_fn done, void *userdata,
                    struct fm_executor **ret)
{
        struct fm_executor *x;
        int r;

        if (!event || !journal || !done || !ret || fm_executor_config_validate(cfg) < 0)
                return -EINVAL;
        x = calloc(1, sizeof(*x));
        if (!x)
                return -ENOMEM;
        x->cfg = *cfg;
        x->event = sd_event_ref(event);
        x->journal = journal;
        x->done = done;
        x->userdata = userdata;
        for (int k = 0; k < _FM_BACKEND_KIND_MAX; k++)
                x->index[k] = -1;
        const char *fp = getenv("FM_FAILPOINT");
        if (fp && strcmp(fp, "journal-begun") == 0)
                x->failpoint = FAILPOINT_JOURNAL_BEGUN;
        else if (fp && strcmp(fp, "actuator-done") == 0)
                x->failpoint = FAILPOINT_ACTUATOR_DONE;

        x->tracked = calloc(FM_ACTUATOR_QUEUE_MAX, sizeof(*x->tracked));
        x->routes = calloc((size_t)cfg->n_bindings * _FM_ACTION_MAX + 1, sizeof(*x->routes));
        if (!x->tracked || !x->routes) {
                r = -ENOMEM;
                goto fail;
        }
        if ((r = fm_actuator_new(&cfg->retry, seed, &x->actuator)) < 0 ||
            (r = fm_dryrun_new(&x->dryrun)) < 0)
                goto fail;
        r = fm_actuator_add_backend(x->actuator, &fm_backend_dryrun_ops, x->dryrun);
        if (r < 0)
                goto fail;
        x->index[FM_BACKEND_DRYRUN] = r;

        for (uint32_t i = 0; i < cfg->n_bindings; i++) {
                const struct fm_binding_config *b = &cfg->binding[i];
                if (x->index[b->backend] < 0 && (r = add_backend(x, b->backend)) < 0)
                        goto fail;
                for (int a = 0; a < _FM_ACTION_MAX; a++) {
                        if (!b->actions[a])
                                continue;
                        struct fm_actuator_binding *rt = &x->routes[x->n_routes++];
                        memcpy(rt->deployment, b->deployment, sizeof(rt->deployment));
                        rt->action = (enum fm_action)a;
                        rt->backend = x->index[b->backend];
                }
        }
        if (cfg->kubernetes.lease.enabled && (r = start_lease(x)) < 0)
                goto fail;
        if ((r = sd_event_add_post(event, &x->post, on_post, x)) < 0 ||
            (r = sd_event_add_defer(event, &x->kick, on_kick, x)) < 0 ||
            (r = sd_event_source_set_enabled(x->kick, SD_EVENT_OFF)) < 0)
                goto fail;
        *ret = x;
        return 0;
fail:
        fm_executor_free(x);
        return r;
}

struct fm_executor *fm_executor_free(struct fm_executor *x)
{
        if (!x)
                return NULL;
        sd_event_source_disable_unref(x->timer);
        sd_event_source_disable_unref(x->post);
        sd_event_source_disable_unref(x->kick);
        /* the actuator cancels in-flight attempts through the backends: free it first */
        fm_actuator_free(x->actuator);
        fm_lease_free(x->lease);
        fm_kube_free(x->kube);
        fm_systemd_free(x->systemd);
        fm_haproxy_free(x->haproxy);
        fm_mlflow_free(x->mlflow);
        fm_alertmanager_free(x->alertmanager);
        fm_dryrun_free(x->dryrun);
        free(x->routes);
        free(x->tracked);
        sd_event_unref(x->event);
        free(x);
        return NULL;
}

static enum fm_backend_kind kind_of_index(const struct fm_executor *x, int index)
{
        for (int k = 0; k < _FM_BACKEND_KIND_MAX; k++)
                if (x->index[k] == index)
                        return (enum fm_backend_kind)k;
        return FM_BACKEND_DRYRUN;
}

/* Reports what ended before reaching a backend. */
static void report_now(struct fm_executor *x, const struct fm_intent *it, const char *policy,
                       const char *backend, const char *outcome, const char *detail, bool settled,
                       fm_ms now)
{
        struct fm_execution e = {
                .key = it->key,
                .policy = policy,
                .action = it->action,
                .deployment = it->deployment,
                .instance = it->instance,
                .backend = backend,
                .outcome = outcome,
                .detail = detail ? detail : "",
                .submitted = now,
                .finished = now,
                .settled = settled,
        };
        x->done(x->userdata, &e);
}

static struct tracked *free_slot(struct fm_executor *x)
{
        return find_tracked(x, 0);
}

/* Hands req to backend index; 0 when the actuator holds it, else the submit error. */
static int hand_over(struct fm_executor *x, int index, const struct fm_action_req *req,
                     uint64_t seq, const char *policy, bool settled, fm_ms now)
{
        struct tracked *t = free_slot(x);
        if (!t)
                return -ENOBUFS;
        int64_t id = fm_actuator_submit(x->actuator, index, req, now);
        if (id < 0)
                return (int)id;
        *t = (struct tracked){
                .id = id,
                .seq = seq,
                .policy = policy,
                .backend = kind_of_index(x, index),
                .settled = settled,
        };
        memcpy(t->deployment, req->deployment, sizeof(t->deployment));
        memcpy(t->instance, req->instance, sizeof(t->instance));
        if (req->action == FM_ACTION_SCALE) {
                t->scale_from = req->arg.scale.from;
                t->scale_to = req->arg.scale.to;
        }
        x->in_flight++;
        (void)sd_event_source_set_enabled(x->kick, SD_EVENT_ONESHOT);
        return 0;
}

static const char *submit_outcome(int r)
{
        switch (r) {
        case -EOPNOTSUPP:
                return "unsupported";
        case -EHOSTDOWN:
                return "breaker_open";
        case -ETIMEDOUT:
                return "timeout";
        case -EALREADY:
                return "in_progress";
        default:
                return "failed";
        }
}

int fm_executor_submit(struct fm_executor *x, const struct fm_plan *plan,
                       const struct fm_intent *it, uint64_t fence, fm_ms now)
{
        struct fm_action_req req;
        uint64_t seq = 0;
        int r;

        if (!x || !plan || !it || it->verdict != FM_VERDICT_APPROVED)
                return -EINVAL;
        r = fm_action_req_from_intent(plan, it, fence, now + x->cfg.action_timeout, &req);
        if (r < 0)
                return r;
        int index = fm_actuator_route(x->routes, x->n_routes, it->deployment, it->action);
        if (index < 0) {
                report_now(x, it, it->policy, NULL, "unbound",
                           "no backend is bound to this action for this deployment", false, now);
                return 1;
        }
        const char *backend = backend_names[kind_of_index(x, index)];
        const struct fm_weight *w =
                it->action == FM_ACTION_SET_WEIGHTS ? plan->weight + it->arg.weights.first : NULL;
        r = fm_journal_begin(x->journal, it, w, fence, now, &seq);
        if (r < 0) {
                const char *outcome = r == -EALREADY      ? "duplicate"
                                      : r == -EINPROGRESS ? "in_progress"
                                      : r == -ESTALE      ? "refused"
                                                          : "journal_error";
                report_now(x, it, it->policy, backend, outcome, strerror(-r), false, now);
                return 1;
        }
        failpoint(x, FAILPOINT_JOURNAL_BEGUN);
        r = hand_over(x, index, &req, seq, it->policy, false, now);
        if (r < 0) {
                /* never reached the backend: nothing happened */
                (void)fm_journal_end(x->journal, seq, FM_JOURNAL_FAILED, strerror(-r), now);
                report_now(x, it, it->policy, backend, submit_outcome(r), strerror(-r), false, now);
                return 1;
        }
        return 0;
}

/* The weights of a journaled set_weights, from its args text. */
static int entry_weights(const struct fm_journal_entry *e, struct fm_action_req *req)
{
        json_object *args = json_tokener_parse(e->args ? e->args : "");
        json_object *arr;
        int r = -EBADMSG;

        if (!args || !json_object_object_get_ex(args, "weights", &arr) ||
            !json_object_is_type(arr, json_type_array))
                goto out;
        size_t n = json_object_array_length(arr);
        if (n > FM_ACTUATOR_WEIGHTS_MAX) {
                r = -E2BIG;
                goto out;
        }
        for (size_t i = 0; i < n; i++) {
                json_object *w = json_object_array_get_idx(arr, i), *t, *v;
                if (!json_object_object_get_ex(w, "target", &t) ||
                    !json_object_object_get_ex(w, "weight", &v) ||
                    json_object_get_string_len(t) > FM_VERSION_MAX)
                        goto out;
                snprintf(req->arg.weights.w[i].target, sizeof(req->arg.weights.w[i].target), "%s",
                         json_object_get_string(t));
                req->arg.weights.w[i].weight = (uint32_t)json_object_get_int64(v);
        }
        req->arg.weights.n = (uint32_t)n;
        r = 0;
out:
        json_object_put(args);
        return r;
}

/* The request that observes journal entry e, whose intent it is a copy of. */
static int entry_req(const struct fm_journal_entry *e, struct fm_intent *it, fm_ms deadline,
                     struct fm_action_req *req)
{
        const struct fm_plan no_weights = {0};

        /* a journaled set_weights keeps its weights in args, not in a plan's pool */
        if (it->action == FM_ACTION_SET_WEIGHTS)
                it->arg.weights.first = it->arg.weights.n = 0;
        int r = fm_action_req_from_intent(&no_weights, it, e->fence, deadline, req);
        if (r < 0)
                return r;
        req->observe = true;
        return it->action == FM_ACTION_SET_WEIGHTS ? entry_weights(e, req) : 0;
}

int fm_executor_settle(struct fm_executor *x, fm_ms now)
{
        const struct fm_journal_entry *entries;
        int submitted = 0;

        if (!x)
                return -EINVAL;
        /* ending an entry invalidates the array: take the oldest until none is left unseen */
        size_t n = fm_journal_pending(x->journal, &entries);
        uint64_t *seqs = calloc(n ? n : 1, sizeof(*seqs));
        if (!seqs)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++)
                seqs[i] = entries[i].seq;
        for (size_t i = 0; i < n; i++) {
                size_t m = fm_journal_pending(x->journal, &entries);
                const struct fm_journal_entry *e = NULL;
                for (size_t k = 0; k < m && !e; k++)
                        if (entries[k].seq == seqs[i])
                                e = &entries[k];
                if (!e)
                        continue;
                struct fm_intent it = e->intent; /* ending the entry invalidates e */
                struct fm_action_req req;
                const char *why;
                int r = entry_req(e, &it, now + x->cfg.action_timeout, &req);
                if (r < 0) {
                        why = "the journal entry cannot be read back";
                } else {
                        int index = fm_actuator_route(x->routes, x->n_routes, req.deployment,
                                                      req.action);
                        if (index < 0)
                                why = "no backend is bound to observe it";
                        else if ((r = hand_over(x, index, &req, e->seq, RECOVERY_POLICY, true,
                                                now)) < 0)
                                why = strerror(-r);
                        else {
                                submitted++;
                                continue;
                        }
                }
                int je = fm_journal_end(x->journal, e->seq, FM_JOURNAL_UNKNOWN, why, now);
                report_now(x, &it, RECOVERY_POLICY, NULL, je < 0 ? "journal_error" : "unknown", why,
                           true, now);
        }
        free(seqs);
        return submitted;
}

unsigned fm_executor_in_flight(const struct fm_executor *x)
{
        return x ? x->in_flight : 0;
}

const struct fm_actuator *fm_executor_actuator(const struct fm_executor *x)
{
        return x ? x->actuator : NULL;
}
