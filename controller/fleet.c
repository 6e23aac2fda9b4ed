/* SPDX-License-Identifier: MIT */
#include "fleet.h"

#include "detect.h"

#include <errno.h>
#include <math.h>
#include <string.h>

/* Initial room of the per-deployment maps; they grow as needed. */
#define DEPLOYMENT_MAP_HINT 16
#define INSTANCE_MAP_HINT 8
#define VERSION_MAP_HINT 4

void fm_fleet_config_default(struct fm_fleet_config *cfg)
{
        *cfg = (struct fm_fleet_config){
                .max_deployments = 256,
                .max_versions = 512,
                .max_versions_per_deployment = 32,
                .max_instances = 65536,
                .max_instances_per_deployment = 8192,
                .forget_after = 15 * 60 * FM_MS_PER_S,
                .retire_grace = 10 * 60 * FM_MS_PER_S,
                .version_retention = 24 * 3600 * FM_MS_PER_S,
                .gauge_tau = 30 * FM_MS_PER_S,
                .latency_window = 5 * 60 * FM_MS_PER_S,
                .latency_slots = 5,
                .outcomes_per_version = 8192,
                .hash_key = {UINT64_C(0x0706050403020100), UINT64_C(0x0f0e0d0c0b0a0908)},
        };
        fm_breaker_config_default(&cfg->breaker);
}

int fm_fleet_config_validate(const struct fm_fleet_config *cfg)
{
        if (cfg->max_deployments == 0 || cfg->max_versions == 0 ||
            cfg->max_versions_per_deployment == 0 || cfg->max_instances == 0 ||
            cfg->max_instances_per_deployment == 0)
                return -EINVAL;
        if (cfg->forget_after <= 0 || cfg->version_retention <= 0 || cfg->gauge_tau <= 0)
                return -EINVAL;
        if (cfg->retire_grace < 0 || cfg->retire_grace > FM_BREAKER_OPEN_MAX_LIMIT)
                return -EINVAL;
        if (cfg->latency_slots == 0 || cfg->latency_slots > FM_SKETCH_RING_MAX_SLOTS ||
            cfg->latency_window <= 0 || cfg->latency_window % cfg->latency_slots != 0)
                return -EINVAL;
        if (cfg->breaker.window_slots > FM_WINDOW_MAX_SLOTS ||
            cfg->outcomes_per_version > FM_OUTCOMES_PER_VERSION_MAX)
                return -EINVAL;
        return fm_breaker_config_validate(&cfg->breaker);
}

static const char *deployment_key(const void *p)
{
        return ((const struct fm_deployment *)p)->name;
}

static const char *version_key(const void *p)
{
        return ((const struct fm_version *)p)->name;
}

static const char *instance_key(const void *p)
{
        return ((const struct fm_instance *)p)->name;
}

int fm_fleet_new(const struct fm_fleet_config *cfg, struct fm_fleet **ret)
{
        int r = fm_fleet_config_validate(cfg);
        if (r < 0)
                return r;

        struct fm_fleet *f = calloc(1, sizeof(*f));
        if (!f)
                return -ENOMEM;
        f->cfg = *cfg;
        r = fm_map_init(&f->deployment_map, cfg->hash_key[0], cfg->hash_key[1], deployment_key,
                        DEPLOYMENT_MAP_HINT);
        if (r < 0) {
                free(f);
                return r;
        }
        *ret = f;
        return 0;
}

int fm_fleet_reconfigure(struct fm_fleet *f, const struct fm_fleet_config *cfg)
{
        int r = fm_fleet_config_validate(cfg);
        if (r < 0)
                return r;

        const struct fm_breaker_config *ob = &f->cfg.breaker, *nb = &cfg->breaker;
        bool window = ob->window != nb->window || ob->window_slots != nb->window_slots;
        bool latency = f->cfg.latency_window != cfg->latency_window ||
                       f->cfg.latency_slots != cfg->latency_slots;
        fm_ms width = nb->window / nb->window_slots;
        fm_ms lwidth = cfg->latency_window / cfg->latency_slots;

        for (struct fm_deployment *d = f->deployments; d; d = d->next) {
                for (struct fm_instance *i = d->instances; window && i; i = i->next)
                        (void)fm_window_init(&i->window, width, nb->window_slots);
                for (struct fm_version *v = d->versions; v; v = v->next) {
                        if (latency)
                                (void)fm_sketch_ring_init(&v->latency_recent, lwidth,
                                                          cfg->latency_slots);
                }
        }

        uint64_t key0 = f->cfg.hash_key[0], key1 = f->cfg.hash_key[1];
        f->cfg = *cfg;
        f->cfg.hash_key[0] = key0;
        f->cfg.hash_key[1] = key1;
        return 0;
}

/* List helpers: the three entity lists have the same shape. */
#define LIST_APPEND(head, tail, item, prevf, nextf)                                                \
        do {                                                                                       \
                (item)->prevf = (tail);                                                            \
                (item)->nextf = NULL;                                                              \
                if (tail)                                                                          \
                        (tail)->nextf = (item);                                                    \
                else                                                                               \
                        (head) = (item);                                                           \
                (tail) = (item);                                                                   \
        } while (0)

#define LIST_UNLINK(head, tail, item, prevf, nextf)                                                \
        do {                                                                                       \
                if ((item)->prevf)                                                                 \
                        (item)->prevf->nextf = (item)->nextf;                                      \
                else                                                                               \
                        (head) = (item)->nextf;                                                    \
                if ((item)->nextf)                                                                 \
                        (item)->nextf->prevf = (item)->prevf;                                      \
                else                                                                               \
                        (tail) = (item)->prevf;                                                    \
                (item)->prevf = (item)->nextf = NULL;                                              \
        } while (0)

/* The version list of instances has no tail pointer; a dummy one keeps the macro usable. */
static void version_link(struct fm_version *v, struct fm_instance *i)
{
        i->vprev = NULL;
        i->vnext = v->instances;
        if (v->instances)
                v->instances->vprev = i;
        v->instances = i;
        v->n_instances++;
        i->version = v;
}

static void version_unlink(struct fm_instance *i)
{
        struct fm_version *v = i->version;
        if (i->vprev)
                i->vprev->vnext = i->vnext;
        else
                v->instances = i->vnext;
        if (i->vnext)
                i->vnext->vprev = i->vprev;
        i->vprev = i->vnext = NULL;
        v->n_instances--;
        i->version = NULL;
}

static void instance_remove(struct fm_fleet *f, struct fm_instance *i)
{
        struct fm_deployment *d = i->deployment;

        version_unlink(i);
        fm_map_remove(&d->instance_map, i);
        LIST_UNLINK(d->instances, d->instances_tail, i, prev, next);
        d->n_instances--;
        f->n_instances--;
        free(i);
}

static void version_remove(struct fm_fleet *f, struct fm_version *v)
{
        struct fm_deployment *d = v->deployment;

        fm_map_remove(&d->version_map, v);
        LIST_UNLINK(d->versions, d->versions_tail, v, prev, next);
        d->n_versions--;
        f->n_versions--;
        free(v->outcomes.rec);
        free(v);
}

static void deployment_remove(struct fm_fleet *f, struct fm_deployment *d)
{
        while (d->instances)
                instance_remove(f, d->instances);
        while (d->versions)
                version_remove(f, d->versions);
        fm_map_done(&d->instance_map);
        fm_map_done(&d->version_map);
        fm_map_remove(&f->deployment_map, d);
        LIST_UNLINK(f->deployments, f->deployments_tail, d, prev, next);
        f->n_deployments--;
        free(d);
}

struct fm_fleet *fm_fleet_free(struct fm_fleet *f)
{
        if (!f)
                return NULL;
        while (f->deployments)
                deployment_remove(f, f->deployments);
        fm_map_done(&f->deployment_map);
        free(f);
        return NULL;
}

static struct fm_deployment *deployment_create(struct fm_fleet *f, const char *name, fm_ms now)
{
        struct fm_deployment *d = calloc(1, sizeof(*d));
        if (!d)
                return NULL;
        memcpy(d->name, name, strnlen(name, FM_NAME_MAX));
        d->first_seen = now;
        if (fm_map_init(&d->instance_map, f->cfg.hash_key[0], f->cfg.hash_key[1], instance_key,
                        INSTANCE_MAP_HINT) < 0)
                goto fail;
        if (fm_map_init(&d->version_map, f->cfg.hash_key[0], f->cfg.hash_key[1], version_key,
                        VERSION_MAP_HINT) < 0)
                goto fail;
        if (fm_map_put(&f->deployment_map, d) < 0)
                goto fail;
        LIST_APPEND(f->deployments, f->deployments_tail, d, prev, next);
        f->n_deployments++;
        return d;
fail:
        fm_map_done(&d->instance_map);
        fm_map_done(&d->version_map);
        free(d);
        return NULL;
}

static struct fm_version *version_create(struct fm_fleet *f, struct fm_deployment *d,
                                         const char *name, fm_ms now)
{
        struct fm_version *v = calloc(1, sizeof(*v));
        if (!v)
                return NULL;
        memcpy(v->name, name, strnlen(name, FM_VERSION_MAX));
        v->deployment = d;
        v->first_seen = v->last_seen = now;
        (void)fm_window_init(&v->burn_fine, FM_BURN_FINE_SLOT_MS, 60);
        (void)fm_window_init(&v->burn_coarse, FM_BURN_COARSE_SLOT_MS, 60);
        fm_sketch_reset(&v->latency_total);
        (void)fm_sketch_ring_init(&v->latency_recent, f->cfg.latency_window / f->cfg.latency_slots,
                                  f->cfg.latency_slots);
        if (fm_map_put(&d->version_map, v) < 0) {
                free(v);
                return NULL;
        }
        LIST_APPEND(d->versions, d->versions_tail, v, prev, next);
        d->n_versions++;
        f->n_versions++;
        return v;
}

static struct fm_instance *instance_create(struct fm_fleet *f, struct fm_deployment *d,
                                           struct fm_version *v, const char *name, fm_ms now)
{
        struct fm_instance *i = calloc(1, sizeof(*i));
        if (!i)
                return NULL;
        memcpy(i->name, name, strnlen(name, FM_NAME_MAX));
        i->deployment = d;
        i->first_seen = i->last_seen = now;
        (void)fm_window_init(&i->window, f->cfg.breaker.window / f->cfg.breaker.window_slots,
                             f->cfg.breaker.window_slots);
        for (size_t g = 0; g < _FM_GAUGE_MAX; g++)
                fm_ewma_reset(&i->gauge[g]);
        fm_breaker_init(&i->breaker, now);
        if (fm_map_put(&d->instance_map, i) < 0) {
                free(i);
                return NULL;
        }
        LIST_APPEND(d->instances, d->instances_tail, i, prev, next);
        d->n_instances++;
        f->n_instances++;
        version_link(v, i);
        return i;
}

struct fm_deployment *fm_fleet_find_deployment(const struct fm_fleet *f, const char *name)
{
        return fm_map_get(&f->deployment_map, name, strlen(name));
}

struct fm_instance *fm_deployment_find_instance(const struct fm_deployment *d, const char *name)
{
        return fm_map_get(&d->instance_map, name, strlen(name));
}

struct fm_version *fm_deployment_find_version(const struct fm_deployment *d, const char *name)
{
        return fm_map_get(&d->version_map, name, strlen(name));
}

/*
 * QoS 1 redelivers, so a seq that is not newer is a duplicate. An instance
 * that restarts begins counting again from zero, though: a lower seq on an
 * event whose own timestamp is newer than the last one is a new sequence,
 * not a duplicate (a redelivered message carries its original ts).
 */
static bool is_duplicate(const struct fm_instance *i, const struct fm_event *ev)
{
        if (!(ev->fields & FM_F_SEQ) || !i->has_seq || ev->seq > i->last_seq)
                return false;
        return !((ev->fields & FM_F_TS) && ev->ts > i->last_ts);
}

uint64_t fm_event_slow_calls(const struct fm_event *ev, double slow_ms)
{
        if (ev->fields & FM_F_LATENCY_HIST) {
                const struct fm_hist *h = &ev->latency_hist;
                double slow = 0.0;
                double lo = 0.0;
                for (uint32_t k = 0; k < h->n; k++) {
                        double hi = h->bound[k];
                        if (h->count[k] != 0 && hi > slow_ms) {
                                double frac = lo >= slow_ms ? 1.0 : (hi - slow_ms) / (hi - lo);
                                slow += frac * (double)h->count[k];
                        }
                        lo = hi;
                }
                if (lo >= slow_ms)
                        slow += (double)h->count[h->n];
                return (uint64_t)llround(slow);
        }
        if ((ev->fields & (FM_F_LATENCY_MS | FM_F_REQUESTS)) == (FM_F_LATENCY_MS | FM_F_REQUESTS)) {
                /* points (0 ms, 0), (p50, .5), (p95, .95), (p99, .99) of the CDF */
                const double x[4] = {0.0, ev->p50_ms, ev->p95_ms, ev->p99_ms};
                const double y[4] = {0.0, 0.50, 0.95, 0.99};
                double above = 0.0;
                for (int k = 3; k >= 1; k--) {
                        if (slow_ms >= x[k])
                                break;
                        if (slow_ms >= x[k - 1]) {
                                double cdf = y[k - 1] + (y[k] - y[k - 1]) * (slow_ms - x[k - 1]) /
                                                                (x[k] - x[k - 1]);
                                above = 1.0 - cdf;
                                break;
                        }
                }
                return (uint64_t)llround(above * (double)ev->requests);
        }
        return 0;
}

static uint32_t clamp32(uint64_t x)
{
        return x > UINT32_MAX ? UINT32_MAX : (uint32_t)x;
}

static void apply_kpi(struct fm_fleet *f, struct fm_instance *i, const struct fm_event *ev)
{
        struct fm_version *v = i->version;
        uint64_t req = 0, err = 0;

        if (ev->fields & FM_F_REQUESTS) {
                req = ev->requests;
                err = (ev->fields & FM_F_ERRORS) ? ev->errors : 0;
        } else if (ev->fields & FM_F_LATENCY_HIST) {
                for (uint32_t k = 0; k <= ev->latency_hist.n; k++)
                        req += ev->latency_hist.count[k];
        }
        uint64_t slow = fm_event_slow_calls(ev, f->cfg.breaker.slow_call_ms);
        if (slow > req)
                slow = req;

        if (req) {
                const uint32_t c[_FM_CTR_MAX] = {
                        [FM_CTR_REQUESTS] = clamp32(req),
                        [FM_CTR_ERRORS] = clamp32(err),
                        [FM_CTR_SLOW] = clamp32(slow),
                };
                if (fm_window_add(&i->window, ev->ts, c) < 0)
                        f->stats.window_late++;
                (void)fm_window_add(&v->burn_fine, ev->ts, c);
                (void)fm_window_add(&v->burn_coarse, ev->ts, c);
                i->requests_total += req;
                i->errors_total += err;
                v->requests_total += req;
                v->errors_total += err;
                v->slow_total += slow;
                fm_breaker_record(&i->breaker, &f->cfg.breaker, req, err, slow);
        }

        if (ev->fields & (FM_F_LATENCY_HIST | FM_F_LATENCY_MS)) {
                struct fm_sketch *slot = fm_sketch_ring_at(&v->latency_recent, ev->ts);
                if (ev->fields & FM_F_LATENCY_HIST) {
                        struct fm_sketch *const both[] = {&v->latency_total, slot};
                        fm_sketch_add_hist_many(both, slot ? 2 : 1, &ev->latency_hist);
                } else if (req) {
                        fm_sketch_add_summary(&v->latency_total, ev->p50_ms, ev->p95_ms, ev->p99_ms,
                                              req);
                        if (slot)
                                fm_sketch_add_summary(slot, ev->p50_ms, ev->p95_ms, ev->p99_ms,
                                                      req);
                }
        }

        for (size_t g = 0; g < _FM_GAUGE_MAX; g++)
                if (ev->fields & FM_F_GAUGE(g))
                        fm_ewma_update(&i->gauge[g], ev->gauge[g], ev->ts, f->cfg.gauge_tau);

        if (ev->fields & FM_F_SCORE_HIST) {
                double bins[FM_SCORE_BINS];
                const struct fm_hist *h = &ev->score_hist;
                if (fm_psi_rebin(h->bound, h->n, h->count, 0.0, 1.0, FM_SCORE_BINS, bins) == 0) {
                        for (size_t k = 0; k < FM_SCORE_BINS; k++)
                                v->score_bins[k] += bins[k];
                        v->score_events++;
                }
        }
}

static void apply_health(struct fm_instance *i, const struct fm_event *ev)
{
        if (i->health != FM_HEALTH_UNKNOWN && ev->ts < i->health_at)
                return; /* an older report than the one we hold */
        i->health = ev->status;
        i->health_at = ev->ts;
        i->ready = (ev->fields & FM_F_READY) ? ev->ready : ev->status != FM_HEALTH_DOWN;
        memcpy(i->health_reason, ev->reason, strnlen(ev->reason, FM_REASON_MAX) + 1);
}

/* Allocation happens once per version, on its first feedback: never per event after that. */
static void apply_feedback(struct fm_fleet *f, struct fm_version *v, const struct fm_event *ev)
{
        struct fm_outcome_ring *r = &v->outcomes;

        v->outcomes_total += ev->n_outcomes;
        for (uint32_t k = 0; k < ev->n_outcomes; k++)
                v->positives_total += ev->outcome[k].label;

        if (!r->rec && f->cfg.outcomes_per_version > 0) {
                r->rec = calloc(f->cfg.outcomes_per_version, sizeof(*r->rec));
                if (!r->rec)
                        return; /* totals still count; the window stays empty */
                r->cap = f->cfg.outcomes_per_version;
        }
        fm_ms age = ev->ts - v->first_seen;
        uint32_t age_s = age <= 0                         ? 0
                         : age / FM_MS_PER_S > UINT32_MAX ? UINT32_MAX
                                                          : (uint32_t)(age / FM_MS_PER_S);
        for (uint32_t k = 0; r->rec && k < ev->n_outcomes; k++) {
                r->rec[r->head] = (struct fm_outcome_rec){
                        .score = (float)ev->outcome[k].score,
                        .label = ev->outcome[k].label,
                        .age_s = age_s,
                };
                r->head = (r->head + 1) % r->cap;
                if (r->n < r->cap)
                        r->n++;
        }
}

size_t fm_version_outcomes(const struct fm_version *v, fm_ms since, struct fm_outcome *out,
                           size_t max)
{
        const struct fm_outcome_ring *r = &v->outcomes;
        size_t n = 0;

        if (!r->rec)
                return 0;
        /* Records are in time order, so those from `since` on are a suffix of the ring. */
        fm_ms since_age = since - v->first_seen;
        uint32_t first = 0;
        while (first < r->n &&
               (fm_ms)r->rec[(r->head + r->cap - r->n + first) % r->cap].age_s * FM_MS_PER_S <
                       since_age)
                first++;
        /* when out is too small, keep the newest */
        if (r->n - first > max)
                first = r->n - (uint32_t)max;
        for (uint32_t k = first; k < r->n; k++) {
                const struct fm_outcome_rec *e = &r->rec[(r->head + r->cap - r->n + k) % r->cap];
                out[n++] = (struct fm_outcome){.score = e->score, .label = e->label};
        }
        return n;
}

static int reject(struct fm_fleet *f, enum fm_reject why, enum fm_reject *ret_reason)
{
        f->stats.rejected[why]++;
        *ret_reason = why;
        return -EBADMSG;
}

int fm_fleet_apply(struct fm_fleet *f, const struct fm_event *ev, enum fm_reject *ret_reason)
{
        const struct fm_fleet_config *cfg = &f->cfg;
        struct fm_deployment *d = fm_fleet_find_deployment(f, ev->deployment);
        struct fm_instance *i = d ? fm_deployment_find_instance(d, ev->instance) : NULL;
        struct fm_version *v;
        const char *vname;

        if (i && is_duplicate(i, ev))
                return reject(f, FM_REJECT_DUPLICATE, ret_reason);

        /* An event without a version keeps the instance where it is. */
        if (ev->fields & FM_F_VERSION)
                vname = ev->version;
        else
                vname = i ? i->version->name : "";
        if (i && strcmp(i->version->name, vname) == 0)
                v = i->version;
        else
                v = d ? fm_deployment_find_version(d, vname) : NULL;

        /* Every cap is checked before anything is created: a rejected event changes nothing. */
        if (!d && f->n_deployments >= cfg->max_deployments)
                return reject(f, FM_REJECT_DEPLOYMENT_CAP, ret_reason);
        if (!v && (f->n_versions >= cfg->max_versions ||
                   (d && d->n_versions >= cfg->max_versions_per_deployment)))
                return reject(f, FM_REJECT_VERSION_CAP, ret_reason);
        if (!i && (f->n_instances >= cfg->max_instances ||
                   (d && d->n_instances >= cfg->max_instances_per_deployment)))
                return reject(f, FM_REJECT_INSTANCE_CAP, ret_reason);

        bool new_d = !d, new_v = !v;
        if (!d && !(d = deployment_create(f, ev->deployment, ev->ts)))
                return -ENOMEM;
        if (!v && !(v = version_create(f, d, vname, ev->ts)))
                goto nomem;
        if (!i) {
                if (!(i = instance_create(f, d, v, ev->instance, ev->ts)))
                        goto nomem;
        } else if (i->version != v) {
                version_unlink(i);
                version_link(v, i);
        }

        if (ev->fields & FM_F_SEQ) {
                i->last_seq = ev->seq;
                i->last_ts = ev->ts;
                i->has_seq = true;
        }
        if (ev->ts > i->last_seen)
                i->last_seen = ev->ts;
        if (ev->ts > v->last_seen)
                v->last_seen = ev->ts;

        switch (ev->kind) {
        case FM_EVENT_HEALTH:
                apply_health(i, ev);
                break;
        case FM_EVENT_KPI:
                apply_kpi(f, i, ev);
                break;
        case FM_EVENT_FEEDBACK:
                apply_feedback(f, v, ev);
                break;
        default:
                break;
        }
        f->stats.accepted[ev->kind]++;
        return 0;

nomem:
        if (new_v && v)
                version_remove(f, v);
        if (new_d)
                deployment_remove(f, d);
        return -ENOMEM;
}

static int evaluate_instance(struct fm_fleet *f, struct fm_instance *i, fm_ms now,
                             int (*emit)(void *, const struct fm_transition *), void *userdata)
{
        uint64_t sum[_FM_CTR_MAX];
        fm_window_sums(&i->window, now, sum);

        const struct fm_breaker_input in = {
                .requests = sum[FM_CTR_REQUESTS],
                .errors = sum[FM_CTR_ERRORS],
                .slow = sum[FM_CTR_SLOW],
                .health = i->health,
                .last_seen = i->last_seen,
        };
        struct fm_transition t;
        if (fm_breaker_evaluate(&i->breaker, &f->cfg.breaker, &in, now, &t.t) <= 0)
                return 0;

        /* A closing breaker starts from a clean window: the failures that opened it are history. */
        if (t.t.to == FM_BREAKER_CLOSED)
                fm_window_reset(&i->window);
        if (!emit)
                return 0;
        memcpy(t.deployment, i->deployment->name, sizeof(t.deployment));
        memcpy(t.instance, i->name, sizeof(t.instance));
        memcpy(t.version, i->version->name, sizeof(t.version));
        t.opens = i->breaker.opens;
        return emit(userdata, &t);
}

int fm_fleet_note_scaled(struct fm_fleet *f, const char *deployment, uint32_t from, uint32_t to,
                         fm_ms now)
{
        if (!f || !deployment)
                return -EINVAL;
        struct fm_deployment *d = fm_fleet_find_deployment(f, deployment);
        if (!d)
                return -ENOENT;
        if (to < from) {
                uint64_t p = (uint64_t)d->retire_pending + (from - to);
                uint32_t cap = f->cfg.max_instances_per_deployment;
                d->retire_pending = p > cap ? cap : (uint32_t)p;
                d->retire_until = now + f->cfg.retire_grace;
                d->retiring = true;
        }
        d->retire_to = to;
        return 0;
}

/* Instances of d a noted scale-down still lets go; 0 outside the grace. */
static uint32_t departures_due(const struct fm_deployment *d, fm_ms now)
{
        if (!d->retiring || now > d->retire_until)
                return 0;
        uint32_t surplus = d->n_instances > d->retire_to ? d->n_instances - d->retire_to : 0;
        return surplus > d->retire_pending ? surplus : d->retire_pending;
}

/*
 * Retires silent instances of d while departures are due, the longest
 * silent first (ties: fleet order). Quadratic in the departures, which a
 * scale bounds; usually every silent instance goes in the first pass.
 */
static void retire(struct fm_fleet *f, struct fm_deployment *d, fm_ms now)
{
        fm_ms hb = f->cfg.breaker.heartbeat_timeout;
        uint32_t due = departures_due(d, now);
        if (d->retiring && now > d->retire_until) {
                d->retiring = false;
                d->retire_pending = 0;
        }
        while (due > 0) {
                struct fm_instance *pick = NULL;
                for (struct fm_instance *i = d->instances; i; i = i->next)
                        if (now - i->last_seen > hb && (!pick || i->last_seen < pick->last_seen))
                                pick = i;
                if (!pick)
                        return;
                instance_remove(f, pick);
                f->stats.instances_retired++;
                if (d->retire_pending > 0)
                        d->retire_pending--;
                due--;
        }
}

int fm_fleet_tick(struct fm_fleet *f, fm_ms now,
                  int (*emit)(void *userdata, const struct fm_transition *t), void *userdata)
{
        int ret = 0;

        for (struct fm_deployment *d = f->deployments, *dn; d; d = dn) {
                dn = d->next;
                retire(f, d, now);
                for (struct fm_instance *i = d->instances, *in; i; i = in) {
                        in = i->next;
                        if (now - i->last_seen > f->cfg.forget_after) {
                                instance_remove(f, i);
                                f->stats.instances_forgotten++;
                                continue;
                        }
                        int r = evaluate_instance(f, i, now, emit, userdata);
                        if (r < 0 && ret == 0)
                                ret = r;
                }
                for (struct fm_version *v = d->versions, *vn; v; v = vn) {
                        vn = v->next;
                        if (v->n_instances == 0 && now - v->last_seen > f->cfg.version_retention) {
                                version_remove(f, v);
                                f->stats.versions_forgotten++;
                        }
                }
                if (d->n_instances == 0 && d->n_versions == 0)
                        deployment_remove(f, d);
        }
        return ret;
}

void fm_version_burn_counts(const struct fm_version *v, fm_ms now, fm_ms len, uint64_t *ret_req,
                            uint64_t *ret_err)
{
        bool fine = len <= FM_BURN_FINE_SLOT_MS * FM_WINDOW_MAX_SLOTS;
        const struct fm_window *w = fine ? &v->burn_fine : &v->burn_coarse;
        fm_ms slot = fine ? FM_BURN_FINE_SLOT_MS : FM_BURN_COARSE_SLOT_MS;
        fm_ms k = (len + slot / 2) / slot;
        uint64_t sum[_FM_CTR_MAX];

        fm_window_recent(w, now, (uint32_t)(k < 1 ? 1 : k > w->nslots ? w->nslots : k), sum);
        *ret_req = sum[FM_CTR_REQUESTS];
        *ret_err = sum[FM_CTR_ERRORS] > sum[FM_CTR_REQUESTS] ? sum[FM_CTR_REQUESTS]
                                                             : sum[FM_CTR_ERRORS];
}

int fm_fleet_force(struct fm_fleet *f, const char *deployment, const char *instance,
                   enum fm_breaker_op op, fm_ms now, struct fm_transition *ret)
{
        struct fm_deployment *d = fm_fleet_find_deployment(f, deployment);
        struct fm_instance *i = d ? fm_deployment_find_instance(d, instance) : NULL;
        if (!i)
                return -ENOENT;

        struct fm_transition t;
        int r = fm_breaker_force(&i->breaker, op, now, &t.t);
        if (r <= 0)
                return r;
        if (t.t.to == FM_BREAKER_CLOSED)
                fm_window_reset(&i->window);
        memcpy(t.deployment, d->name, sizeof(t.deployment));
        memcpy(t.instance, i->name, sizeof(t.instance));
        memcpy(t.version, i->version->name, sizeof(t.version));
        t.opens = i->breaker.opens;
        *ret = t;
        return 1;
}
