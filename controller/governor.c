/* SPDX-License-Identifier: MIT */
#include "governor.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "map.h"

#define MS_PER_MIN ((fm_ms)60 * FM_MS_PER_S)
#define MIN_PER_DAY (24 * 60)
/* Token buckets count in units of 1/60000 token: a refill of rate_per_min units per ms is exact. */
#define TOKEN ((int64_t)MS_PER_MIN)
/* "S/" + deployment + "/" + instance + "/" + action + NUL */
#define KEY_MAX 160

/* Namespaces: live decisions, and dry-run ("shadow") ones. */
enum { LIVE, SHADOW, _NS_MAX };
/* Buckets per namespace. */
enum { ACTIONS, ALERTS, _BUCKET_MAX };

enum { ENTRY_TARGET, ENTRY_FREEZE };

/*
 * One row of the state table. A target entry ("L/dep/inst/action" or
 * "S/..." for dry-run) holds the last approval, the review that made it
 * (for the per-tick rules) and, for restarts, the recent restart times and
 * the budget episode. A freeze entry ("F/dep") exists while the deployment
 * is frozen.
 */
struct entry {
        char key[KEY_MAX];
        bool used;
        uint8_t kind;
        uint8_t action;
        uint8_t ns;
        bool has_last;
        bool budget_alerted;
        bool freeze_alerted;
        uint8_t n_restarts;
        uint32_t freeze_n; /* freeze: the deployment's instances at the last frozen review */
        fm_ms held_since;  /* freeze: when the hold began (instances gone), or -1 */
        fm_ms touched;     /* newest time the entry mattered: GC and eviction */
        fm_ms last;        /* last approval; for a freeze entry, the episode start */
        uint64_t tick;     /* review of the last approval (freeze: of the last sighting) */
        uint32_t tick_index;
        fm_ms restart[FM_GOVERNOR_RESTART_BUDGET_MAX]; /* approved restarts, oldest first */
};

/* Per deployment, per review. */
struct dep_stats {
        const struct fm_deployment *d;
        uint32_t n, silent;
        int64_t in_service[_NS_MAX];
        fm_ms silent_first, silent_last;
        bool frozen;
        bool held;         /* frozen by the hold: the silent instances were forgotten */
        uint32_t freeze_n; /* with held: the instances the freeze counted */
};

struct fm_governor {
        struct fm_governor_config cfg;
        struct fm_map map;
        struct entry *pool;
        uint32_t *free_idx;
        uint32_t n_free;
        int64_t tokens[_NS_MAX][_BUCKET_MAX];
        fm_ms refilled;
        bool has_refilled;
        uint64_t tick;
        struct fm_governor_stats stats;

        /* scratch of one review, grown to the largest fleet seen */
        struct dep_stats *dep;
        uint32_t n_dep, cap_dep;
        fm_ms *silent;
        uint32_t cap_silent;
        const struct fm_weight **wsort;
        uint32_t cap_wsort;
};

/* --- configuration ---------------------------------------------------- */

void fm_governor_config_default(struct fm_governor_config *cfg)
{
        *cfg = (struct fm_governor_config){
                .rate_per_min = 30,
                .rate_burst = 10,
                .alert_rate_per_min = 10,
                .alert_burst = 20,
                .capacity_floor = 0.5,
                .capacity_min_instances = 1,
                .restart_settle = 60 * FM_MS_PER_S,
                .restart_budget = 3,
                .restart_span = 30 * MS_PER_MIN,
                .freeze_share = 0.5,
                .freeze_span = 60 * FM_MS_PER_S,
                .freeze_min_silent = 2,
                .freeze_hold = 15 * MS_PER_MIN,
                .max_entries = 4096,
        };
        cfg->cooldown[FM_ACTION_RESTART] = 60 * FM_MS_PER_S;
        cfg->cooldown[FM_ACTION_SCALE] = 60 * FM_MS_PER_S;
        cfg->cooldown[FM_ACTION_SET_WEIGHTS] = 10 * FM_MS_PER_S;
        cfg->cooldown[FM_ACTION_ROLLBACK] = 30 * MS_PER_MIN;
        cfg->cooldown[FM_ACTION_SET_THRESHOLD] = 60 * MS_PER_MIN;
        cfg->cooldown[FM_ACTION_ALERT] = 0;
}

static bool share_ok(double s)
{
        return isfinite(s) && s >= 0.0 && s <= 1.0;
}

static bool rate_ok(uint32_t r)
{
        return r >= 1 && r <= FM_GOVERNOR_RATE_LIMIT;
}

static bool span_ok(fm_ms t)
{
        return t >= 0 && t <= FM_GOVERNOR_COOLDOWN_LIMIT;
}

int fm_governor_config_validate(const struct fm_governor_config *cfg)
{
        if (!cfg)
                return -EINVAL;
        for (unsigned a = 0; a < _FM_ACTION_MAX; a++)
                if (!span_ok(cfg->cooldown[a]))
                        return -EINVAL;
        if (cfg->cooldown[FM_ACTION_ALERT] != 0)
                return -EINVAL;
        if (!rate_ok(cfg->rate_per_min) || !rate_ok(cfg->rate_burst) ||
            !rate_ok(cfg->alert_rate_per_min) || !rate_ok(cfg->alert_burst))
                return -EINVAL;
        if (!share_ok(cfg->capacity_floor) || !share_ok(cfg->freeze_share))
                return -EINVAL;
        if (cfg->capacity_min_instances == 0 || cfg->freeze_min_silent == 0)
                return -EINVAL;
        if (cfg->restart_budget == 0 || cfg->restart_budget > FM_GOVERNOR_RESTART_BUDGET_MAX)
                return -EINVAL;
        if (cfg->restart_span <= 0 || !span_ok(cfg->restart_span) ||
            !span_ok(cfg->restart_settle) || !span_ok(cfg->freeze_span) ||
            !span_ok(cfg->freeze_hold))
                return -EINVAL;
        if (cfg->n_windows > FM_GOVERNOR_MAX_WINDOWS)
                return -EINVAL;
        for (uint32_t w = 0; w < cfg->n_windows; w++) {
                const struct fm_governor_window *win = &cfg->window[w];
                if (win->days == 0 || win->days > FM_DAY_ALL || win->start_min >= MIN_PER_DAY ||
                    win->duration_min == 0 || win->duration_min > FM_MINUTES_PER_WEEK)
                        return -EINVAL;
        }
        if (cfg->n_dry_run_policies > FM_GOVERNOR_MAX_DRY_RUN)
                return -EINVAL;
        for (uint32_t k = 0; k < cfg->n_dry_run_policies; k++) {
                const char *p = cfg->dry_run_policy[k];
                if (p[0] == '\0' || !memchr(p, '\0', sizeof(cfg->dry_run_policy[k])))
                        return -EINVAL;
        }
        if (cfg->max_entries < FM_GOVERNOR_MIN_ENTRIES ||
            cfg->max_entries > FM_GOVERNOR_MAX_ENTRIES)
                return -EINVAL;
        return 0;
}

/* --- the state table ---------------------------------------------------- */

static const char *entry_key(const void *item)
{
        return ((const struct entry *)item)->key;
}

static struct entry *entry_get(const struct fm_governor *g, const char *key)
{
        return fm_map_get(&g->map, key, strlen(key));
}

static void entry_drop(struct fm_governor *g, struct entry *e)
{
        (void)fm_map_remove(&g->map, e);
        e->used = false;
        g->free_idx[g->n_free++] = (uint32_t)(e - g->pool);
}

/*
 * The table is full: the entry untouched for longest goes (ties: smallest
 * key, so the choice does not depend on the hash layout). Entries of this
 * review carry the newest time and go last.
 */
static void evict(struct fm_governor *g)
{
        struct entry *victim = NULL;
        for (uint32_t k = 0; k < g->cfg.max_entries; k++) {
                struct entry *e = &g->pool[k];
                if (!e->used)
                        continue;
                if (!victim || e->touched < victim->touched ||
                    (e->touched == victim->touched && strcmp(e->key, victim->key) < 0))
                        victim = e;
        }
        if (victim) {
                entry_drop(g, victim);
                g->stats.evictions++;
        }
}

/* A fresh entry for key (which must not be present); NULL only if the map failed. */
static struct entry *entry_new(struct fm_governor *g, const char *key, uint8_t kind, fm_ms now)
{
        if (g->n_free == 0)
                evict(g);
        if (g->n_free == 0)
                return NULL;
        struct entry *e = &g->pool[g->free_idx[g->n_free - 1]];
        *e = (struct entry){.used = true, .kind = kind, .touched = now};
        (void)snprintf(e->key, sizeof(e->key), "%s", key);
        if (fm_map_put(&g->map, e) < 0) {
                e->used = false;
                return NULL;
        }
        g->n_free--;
        return e;
}

static void target_key(char key[KEY_MAX], int ns, const char *deployment, const char *instance,
                       enum fm_action a)
{
        (void)snprintf(key, KEY_MAX, "%c/%.63s/%.63s/%s", ns == SHADOW ? 'S' : 'L', deployment,
                       instance, fm_action_name(a));
}

static void freeze_key(char key[KEY_MAX], const char *deployment)
{
        (void)snprintf(key, KEY_MAX, "F/%.63s", deployment);
}

/* The instance part of an intent's target: only restarts target one instance. */
static const char *target_instance(const struct fm_intent *it)
{
        return it->action == FM_ACTION_RESTART ? it->instance : "";
}

static struct entry *target_get(const struct fm_governor *g, int ns, const struct fm_intent *it,
                                enum fm_action a)
{
        char key[KEY_MAX];
        target_key(key, ns, it->deployment, a == FM_ACTION_RESTART ? it->instance : "", a);
        return entry_get(g, key);
}

/* How long a target entry stays useful after it was last touched. */
static fm_ms keep_for(const struct fm_governor_config *cfg, enum fm_action a)
{
        fm_ms t = cfg->cooldown[a];
        if (a == FM_ACTION_RESTART) {
                if (cfg->restart_span > t)
                        t = cfg->restart_span;
                if (cfg->restart_settle > t)
                        t = cfg->restart_settle;
        }
        return t;
}

/* An event at t lies within span before now (a time ahead of now counts: the clock went back). */
static bool within(fm_ms now, fm_ms t, fm_ms span)
{
        return now - t < span;
}

static bool restarting(const struct fm_governor *g, int ns, const char *deployment,
                       const char *instance, fm_ms now)
{
        char key[KEY_MAX];
        target_key(key, ns, deployment, instance, FM_ACTION_RESTART);
        const struct entry *e = entry_get(g, key);
        return e && e->has_last && within(now, e->last, g->cfg.restart_settle);
}

/* In service as seen from namespace ns: not ejected, no restart approved lately. */
static bool in_service(const struct fm_governor *g, int ns, const struct fm_instance *i, fm_ms now)
{
        if (fm_breaker_ejected(&i->breaker))
                return false;
        if (restarting(g, LIVE, i->deployment->name, i->name, now))
                return false;
        return !(ns == SHADOW && restarting(g, SHADOW, i->deployment->name, i->name, now));
}

/* --- lifecycle ---------------------------------------------------------- */

static void fill_buckets(struct fm_governor *g)
{
        for (int ns = 0; ns < _NS_MAX; ns++) {
                g->tokens[ns][ACTIONS] = (int64_t)g->cfg.rate_burst * TOKEN;
                g->tokens[ns][ALERTS] = (int64_t)g->cfg.alert_burst * TOKEN;
        }
}

int fm_governor_new(const struct fm_governor_config *cfg, struct fm_governor **ret)
{
        if (!ret || fm_governor_config_validate(cfg) < 0)
                return -EINVAL;
        struct fm_governor *g = calloc(1, sizeof(*g));
        if (!g)
                return -ENOMEM;
        g->cfg = *cfg;
        g->pool = calloc(cfg->max_entries, sizeof(*g->pool));
        g->free_idx = calloc(cfg->max_entries, sizeof(*g->free_idx));
        if (!g->pool || !g->free_idx ||
            fm_map_init(&g->map, cfg->hash_key[0], cfg->hash_key[1], entry_key, cfg->max_entries) <
                    0) {
                fm_governor_free(g);
                return -ENOMEM;
        }
        /* popped from the end: slot 0 first */
        for (uint32_t k = 0; k < cfg->max_entries; k++)
                g->free_idx[k] = cfg->max_entries - 1 - k;
        g->n_free = cfg->max_entries;
        fill_buckets(g);
        *ret = g;
        return 0;
}

struct fm_governor *fm_governor_free(struct fm_governor *g)
{
        if (!g)
                return NULL;
        fm_map_done(&g->map);
        free(g->pool);
        free(g->free_idx);
        free(g->dep);
        free(g->silent);
        free(g->wsort);
        free(g);
        return NULL;
}

int fm_governor_set_config(struct fm_governor *g, const struct fm_governor_config *cfg)
{
        if (!g || fm_governor_config_validate(cfg) < 0)
                return -EINVAL;
        uint32_t max_entries = g->cfg.max_entries;
        uint64_t k0 = g->cfg.hash_key[0], k1 = g->cfg.hash_key[1];
        g->cfg = *cfg;
        g->cfg.max_entries = max_entries;
        g->cfg.hash_key[0] = k0;
        g->cfg.hash_key[1] = k1;
        for (int ns = 0; ns < _NS_MAX; ns++) {
                int64_t a = (int64_t)cfg->rate_burst * TOKEN, b = (int64_t)cfg->alert_burst * TOKEN;
                if (g->tokens[ns][ACTIONS] > a)
                        g->tokens[ns][ACTIONS] = a;
                if (g->tokens[ns][ALERTS] > b)
                        g->tokens[ns][ALERTS] = b;
        }
        return 0;
}

const struct fm_governor_stats *fm_governor_stats(const struct fm_governor *g)
{
        return &g->stats;
}

/* --- rules that need no state ------------------------------------------- */

/*
 * Minute of the week from now alone: epoch minute 0 fell on a Thursday,
 * day 3 of an ISO week that starts on Monday.
 */
int fm_governor_maintenance(const struct fm_governor_config *cfg, fm_ms now, fm_ms *ret_remaining)
{
        const int64_t week = FM_MINUTES_PER_WEEK;
        int64_t minute = fm_floordiv(now, MS_PER_MIN);
        fm_ms into = now - minute * MS_PER_MIN;
        int64_t mow = ((minute + 3 * MIN_PER_DAY) % week + week) % week;

        for (uint32_t w = 0; w < cfg->n_windows; w++) {
                const struct fm_governor_window *win = &cfg->window[w];
                for (int day = 0; day < 7; day++) {
                        if (!(win->days & (1u << day)))
                                continue;
                        int64_t start = (int64_t)day * MIN_PER_DAY + win->start_min;
                        int64_t off = ((mow - start) % week + week) % week;
                        if (off < win->duration_min) {
                                if (ret_remaining)
                                        *ret_remaining =
                                                (win->duration_min - off) * MS_PER_MIN - into;
                                return (int)w;
                        }
                }
        }
        return -ENOENT;
}

static bool dry_run_policy(const struct fm_governor_config *cfg, const char *policy)
{
        if (cfg->dry_run)
                return true;
        for (uint32_t k = 0; k < cfg->n_dry_run_policies; k++)
                if (strcmp(cfg->dry_run_policy[k], policy ? policy : "") == 0)
                        return true;
        return false;
}

static bool same_policy(const char *a, const char *b)
{
        return strcmp(a ? a : "", b ? b : "") == 0;
}

/* max(ceil(share * n), minimum), ignoring float noise (0.7 * 10 is 7.000000000000001). */
static int64_t floor_of(const struct fm_governor_config *cfg, uint64_t n)
{
        double x = ceil(cfg->capacity_floor * (double)n - 1e-9);
        int64_t f = x > 0.0 ? (int64_t)x : 0;
        return f > (int64_t)cfg->capacity_min_instances ? f : (int64_t)cfg->capacity_min_instances;
}

static double seconds(fm_ms t)
{
        return (double)t / FM_MS_PER_S;
}

/* --- token buckets ------------------------------------------------------ */

static void refill(struct fm_governor *g, fm_ms now)
{
        if (!g->has_refilled) {
                g->has_refilled = true;
                g->refilled = now;
                return;
        }
        if (now <= g->refilled) /* the clock stood or went back: no tokens for that */
                return;
        fm_ms dt = now - g->refilled;
        g->refilled = now;
        for (int ns = 0; ns < _NS_MAX; ns++)
                for (int b = 0; b < _BUCKET_MAX; b++) {
                        int64_t rate =
                                b == ACTIONS ? g->cfg.rate_per_min : g->cfg.alert_rate_per_min;
                        int64_t cap =
                                (int64_t)(b == ACTIONS ? g->cfg.rate_burst : g->cfg.alert_burst) *
                                TOKEN;
                        /* dt < cap keeps dt * rate far from overflow; rate >= 1 fills at cap */
                        if (dt >= cap || g->tokens[ns][b] + dt * rate >= cap)
                                g->tokens[ns][b] = cap;
                        else
                                g->tokens[ns][b] += dt * rate;
                }
}

/* Spends one token of bucket b, or adds the evidence of the refusal. */
static bool take_token(struct fm_governor *g, int ns, int b, struct fm_intent *it)
{
        if (g->tokens[ns][b] >= TOKEN) {
                g->tokens[ns][b] -= TOKEN;
                return true;
        }
        fm_evidence_add(&it->evidence, "tokens", (double)g->tokens[ns][b] / TOKEN);
        fm_evidence_add(&it->evidence, "rate_per_min",
                        b == ACTIONS ? g->cfg.rate_per_min : g->cfg.alert_rate_per_min);
        fm_evidence_add(&it->evidence, "burst",
                        b == ACTIONS ? g->cfg.rate_burst : g->cfg.alert_burst);
        return false;
}

/* --- one review ----------------------------------------------------------- */

struct review {
        struct fm_governor *g;
        const struct fm_fleet *f;
        struct fm_plan *plan;
        fm_ms now;
        int maintenance; /* window index or -ENOENT */
        fm_ms maintenance_remaining;
        int ret;
};

static void set_verdict(struct review *r, struct fm_intent *it, enum fm_verdict v)
{
        it->verdict = v;
        r->g->stats.verdicts[v]++;
}

static int cmp_ms(const void *a, const void *b)
{
        fm_ms x = *(const fm_ms *)a, y = *(const fm_ms *)b;
        return (x > y) - (x < y);
}

static int cmp_dep(const void *a, const void *b)
{
        uintptr_t x = (uintptr_t)((const struct dep_stats *)a)->d;
        uintptr_t y = (uintptr_t)((const struct dep_stats *)b)->d;
        return (x > y) - (x < y);
}

static struct dep_stats *find_stats(const struct fm_governor *g, const struct fm_deployment *d)
{
        if (!d || g->n_dep == 0)
                return NULL;
        struct dep_stats key = {.d = d};
        return bsearch(&key, g->dep, g->n_dep, sizeof(*g->dep), cmp_dep);
}

/*
 * Counts instances out of the breaker's ejection and finds the largest
 * group of silent instances whose silence began within freeze_span of each
 * other: sort their last_seen and slide a window over them.
 */
static void assess(struct fm_governor *g, const struct fm_deployment *d, fm_ms heartbeat, fm_ms now,
                   struct dep_stats *s)
{
        uint32_t n_silent = 0;
        int64_t up = 0;

        *s = (struct dep_stats){.d = d, .n = d->n_instances};
        for (const struct fm_instance *i = d->instances; i; i = i->next) {
                if (!fm_breaker_ejected(&i->breaker))
                        up++;
                if (now - i->last_seen > heartbeat && n_silent < g->cap_silent)
                        g->silent[n_silent++] = i->last_seen;
        }
        s->in_service[LIVE] = s->in_service[SHADOW] = up;
        if (n_silent == 0)
                return;
        qsort(g->silent, n_silent, sizeof(*g->silent), cmp_ms);
        uint32_t best = 0, lo = 0;
        for (uint32_t hi = 0; hi < n_silent; hi++) {
                while (g->silent[hi] - g->silent[lo] > g->cfg.freeze_span)
                        lo++;
                if (hi - lo + 1 > best) {
                        best = hi - lo + 1;
                        s->silent_first = g->silent[lo];
                        s->silent_last = g->silent[hi];
                }
        }
        s->silent = best;
        s->frozen = s->n > 0 && best >= g->cfg.freeze_min_silent &&
                    (double)best / (double)s->n > g->cfg.freeze_share;
}

static void freeze_evidence(struct fm_evidence *e, const struct fm_governor_config *cfg,
                            const struct dep_stats *s)
{
        fm_evidence_add(e, "silent_instances", s->silent);
        fm_evidence_add(e, "instances", s->n);
        fm_evidence_add(e, "silent_share", s->n ? (double)s->silent / s->n : 0.0);
        fm_evidence_add(e, "freeze_share", cfg->freeze_share);
        fm_evidence_add(e, "silence_spread_s", seconds(s->silent_last - s->silent_first));
        if (s->held)
                fm_evidence_add(e, "instances_at_freeze", s->freeze_n);
}

/*
 * Appends a governor alert and reviews it at once. Returns true when the
 * episode may count as alerted: the alert is in the plan and was not
 * refused by the rate limit (a refused one is raised again later).
 */
static bool raise_alert(struct review *r, bool shadow, const char *reason, const char *deployment,
                        const char *instance, const char *summary, const char *key,
                        const struct fm_evidence *evidence)
{
        struct fm_governor *g = r->g;
        struct fm_intent *it = fm_plan_add_intent(r->plan, FM_ACTION_ALERT, FM_GOVERNOR_POLICY);
        if (!it) {
                g->stats.alerts_dropped++;
                r->ret = -ENOBUFS;
                return false;
        }
        g->stats.alerts_raised++;
        it->reason = reason;
        it->at = r->now;
        (void)snprintf(it->deployment, sizeof(it->deployment), "%s", deployment);
        (void)snprintf(it->instance, sizeof(it->instance), "%s", instance);
        (void)snprintf(it->key, sizeof(it->key), "%s", key);
        it->arg.alert.severity = FM_SEVERITY_CRITICAL;
        (void)snprintf(it->arg.alert.summary, sizeof(it->arg.alert.summary), "%s", summary);
        it->evidence = *evidence;

        shadow = shadow || dry_run_policy(&g->cfg, FM_GOVERNOR_POLICY);
        if (g->cfg.paused)
                set_verdict(r, it, FM_VERDICT_PAUSED);
        else if (!take_token(g, shadow ? SHADOW : LIVE, ALERTS, it))
                set_verdict(r, it, FM_VERDICT_RATE_LIMIT);
        else
                set_verdict(r, it, shadow ? FM_VERDICT_DRY_RUN : FM_VERDICT_APPROVED);
        return it->verdict != FM_VERDICT_RATE_LIMIT;
}

/*
 * The freeze hold. A freeze episode's condition can stop holding because
 * the fleet forgot the silent instances (forget_after), not because they
 * were heard from again: the controller is as blind as before, only to
 * fewer names. So an episode whose deployment now has fewer instances than
 * at its last frozen review stays frozen ("held") until the count is back
 * (the instances report again, as new ones) or for freeze_hold at most.
 */
static bool hold(const struct fm_governor *g, struct entry *e, struct dep_stats *s, fm_ms now)
{
        if (s->n >= e->freeze_n || g->cfg.freeze_hold == 0)
                return false;
        if (e->held_since < 0)
                e->held_since = now;
        if (!within(now, e->held_since, g->cfg.freeze_hold))
                return false;
        s->frozen = s->held = true;
        s->freeze_n = e->freeze_n;
        return true;
}

/*
 * Pass over the fleet: per deployment its instance counts and freeze state,
 * in fleet order (so freeze alerts come in a stable order); then the table
 * sorted by deployment address for lookups.
 */
static void survey(struct review *r)
{
        struct fm_governor *g = r->g;
        g->n_dep = 0;
        g->stats.frozen_deployments = 0;
        if (!r->f)
                return;

        fm_ms heartbeat = r->f->cfg.breaker.heartbeat_timeout;
        for (const struct fm_deployment *d = r->f->deployments; d && g->n_dep < g->cap_dep;
             d = d->next) {
                struct dep_stats *s = &g->dep[g->n_dep++];
                assess(g, d, heartbeat, r->now, s);
                char key[KEY_MAX];
                freeze_key(key, d->name);
                struct entry *e = entry_get(g, key);
                if (!s->frozen && !(e && hold(g, e, s, r->now)))
                        continue;
                g->stats.frozen_deployments++;

                if (!e && (e = entry_new(g, key, ENTRY_FREEZE, r->now))) {
                        e->last = r->now;
                        e->held_since = -1;
                }
                if (!e)
                        continue;
                if (!s->held) {
                        e->freeze_n = s->n;
                        e->held_since = -1;
                }
                e->tick = g->tick;
                e->touched = r->now;
                if (e->freeze_alerted)
                        continue;

                struct fm_evidence ev = {0};
                char summary[FM_ALERT_SUMMARY_MAX], akey[FM_INTENT_KEY_MAX];
                freeze_evidence(&ev, &g->cfg, s);
                /* a long name may cut the summary short; the labels carry it in full */
                if (snprintf(summary, sizeof(summary),
                             "controller blind to %.63s: %u of %u instances went silent at once; "
                             "capacity-reducing actions frozen",
                             d->name, s->silent, s->n) < 0)
                        summary[0] = '\0';
                (void)snprintf(akey, sizeof(akey), "governor/frozen/%.63s/%lld", d->name,
                               (long long)e->last);
                e->freeze_alerted =
                        raise_alert(r, false, "frozen", d->name, "", summary, akey, &ev);
        }
        if (g->n_dep > 1)
                qsort(g->dep, g->n_dep, sizeof(*g->dep), cmp_dep);
}

/* Splits "L/dep/inst/action" into its names. */
static bool split_key(const char *key, char dep[FM_NAME_MAX + 1], char inst[FM_NAME_MAX + 1])
{
        const char *a = key + 2, *b = strchr(a, '/'), *c = b ? strchr(b + 1, '/') : NULL;
        if (!c || b - a > FM_NAME_MAX || c - b - 1 > FM_NAME_MAX)
                return false;
        memcpy(dep, a, (size_t)(b - a));
        dep[b - a] = '\0';
        memcpy(inst, b + 1, (size_t)(c - b - 1));
        inst[c - b - 1] = '\0';
        return true;
}

/*
 * Pass over the table: ends freeze episodes not seen in this review, drops
 * targets whose every rule has expired, and takes instances with a recent
 * restart out of their deployment's in-service counts (a dry-run restart
 * only out of the dry-run view).
 */
static void sweep(struct review *r)
{
        struct fm_governor *g = r->g;
        for (uint32_t k = 0; k < g->cfg.max_entries; k++) {
                struct entry *e = &g->pool[k];
                if (!e->used)
                        continue;
                if (e->kind == ENTRY_FREEZE) {
                        if (e->tick != g->tick)
                                entry_drop(g, e);
                        continue;
                }
                if (!within(r->now, e->touched, keep_for(&g->cfg, e->action))) {
                        entry_drop(g, e);
                        continue;
                }
                if (e->action != FM_ACTION_RESTART || !e->has_last ||
                    !within(r->now, e->last, g->cfg.restart_settle) || !r->f)
                        continue;

                char dn[FM_NAME_MAX + 1], in[FM_NAME_MAX + 1];
                if (!split_key(e->key, dn, in))
                        continue;
                const struct fm_deployment *d = fm_fleet_find_deployment(r->f, dn);
                const struct fm_instance *i = d ? fm_deployment_find_instance(d, in) : NULL;
                struct dep_stats *s = find_stats(g, d);
                if (!i || !s || fm_breaker_ejected(&i->breaker))
                        continue;
                if (e->ns == LIVE) {
                        s->in_service[LIVE]--;
                        s->in_service[SHADOW]--;
                } else if (!restarting(g, LIVE, dn, in, r->now)) {
                        s->in_service[SHADOW]--;
                }
        }
        g->stats.entries = g->cfg.max_entries - g->n_free;
}

static int cmp_weight(const void *a, const void *b)
{
        const struct fm_weight *x = *(const struct fm_weight *const *)a;
        const struct fm_weight *y = *(const struct fm_weight *const *)b;
        int c = strcmp(x->target, y->target);
        return c ? c : (x > y) - (x < y);
}

/* The smallest weight the sorted set gives name, or -1 when it does not name it. */
static int64_t weight_of(const struct fm_weight *const *w, uint32_t n, const char *name)
{
        uint32_t lo = 0, hi = n;
        while (lo < hi) {
                uint32_t mid = lo + (hi - lo) / 2;
                if (strcmp(w[mid]->target, name) < 0)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        int64_t best = -1;
        for (; lo < n && strcmp(w[lo]->target, name) == 0; lo++)
                if (best < 0 || w[lo]->weight < best)
                        best = w[lo]->weight;
        return best;
}

/* Sorts the intent's weights into g->wsort for weight_of(); returns how many. */
static uint32_t sort_weights(struct review *r, const struct fm_intent *it)
{
        uint32_t n = it->arg.weights.n;
        for (uint32_t k = 0; k < n; k++)
                r->g->wsort[k] = &r->plan->weight[it->arg.weights.first + k];
        qsort(r->g->wsort, n, sizeof(*r->g->wsort), cmp_weight);
        return n;
}

/*
 * The weight the sorted set gives instance i in *ret: its own name's, else
 * its version's spread over the version's instances. False when the set
 * names neither.
 */
static bool instance_weight(const struct fm_governor *g, uint32_t n, const struct fm_instance *i,
                            double *ret)
{
        int64_t w = weight_of(g->wsort, n, i->name);
        if (w >= 0) {
                *ret = (double)w;
                return true;
        }
        w = weight_of(g->wsort, n, i->version->name);
        if (w < 0)
                return false;
        *ret = (double)w / i->version->n_instances;
        return true;
}

/*
 * Does a set_weights, during a freeze, take traffic from an instance we
 * cannot judge? Each instance of the deployment gets the weight of its own
 * name, else of its version spread over the version's instances (an
 * instance named by neither is left as it is). An in-service instance
 * whose weight is more than one unit (the rounding of integer shares)
 * below the mean of the instances the set covers is taken below its equal
 * share: a probe or partial ejection, as a blind controller's half-open
 * breakers ask for. While the freeze is held (instances forgotten), a set
 * that names instances leaves the forgotten ones at their old absolute
 * weights while it sets the rest anew, so it is held back too.
 */
static bool below_share(struct review *r, const struct fm_intent *it, int ns,
                        const struct fm_deployment *d, const struct dep_stats *s)
{
        struct fm_governor *g = r->g;
        uint32_t n = d ? sort_weights(r, it) : 0;
        if (n == 0)
                return false;

        double total = 0.0, x;
        uint32_t covered = 0;
        for (const struct fm_instance *i = d->instances; i; i = i->next)
                if (instance_weight(g, n, i, &x)) {
                        total += x;
                        covered++;
                }
        if (covered == 0)
                return false;
        if (s && s->held)
                for (const struct fm_instance *i = d->instances; i; i = i->next)
                        if (weight_of(g->wsort, n, i->name) >= 0)
                                return true;
        double mean = total / covered;
        for (const struct fm_instance *i = d->instances; i; i = i->next)
                if (instance_weight(g, n, i, &x) && x + 1.0 < mean && in_service(g, ns, i, r->now))
                        return true;
        return false;
}

static bool reducing_kind(struct review *r, const struct fm_intent *it, int ns,
                          const struct fm_deployment *d, const struct dep_stats *s)
{
        const struct fm_plan *plan = r->plan;
        switch (it->action) {
        case FM_ACTION_RESTART:
                return true;
        case FM_ACTION_SCALE:
                return it->arg.scale.to < it->arg.scale.from;
        case FM_ACTION_SET_WEIGHTS:
                for (uint32_t k = 0; k < it->arg.weights.n; k++)
                        if (plan->weight[it->arg.weights.first + k].weight == 0)
                                return true;
                return below_share(r, it, ns, d, s);
        default:
                return false;
        }
}

/*
 * In-service instances the intent takes out of service, and the size of the
 * deployment the floor applies to (*ret_n).
 */
static int64_t removal(struct review *r, const struct fm_intent *it, int ns,
                       const struct fm_deployment *d, const struct dep_stats *s, uint64_t *ret_n)
{
        struct fm_governor *g = r->g;
        *ret_n = s ? s->n : 0;
        switch (it->action) {
        case FM_ACTION_RESTART: {
                const struct fm_instance *i =
                        d ? fm_deployment_find_instance(d, it->instance) : NULL;
                return i && in_service(g, ns, i, r->now) ? 1 : 0;
        }
        case FM_ACTION_SCALE: {
                *ret_n = it->arg.scale.to;
                if (it->arg.scale.to >= it->arg.scale.from || !s)
                        return 0;
                int64_t gone = (int64_t)it->arg.scale.from - it->arg.scale.to;
                int64_t up = s->in_service[ns] > 0 ? s->in_service[ns] : 0;
                return gone < up ? gone : up;
        }
        case FM_ACTION_SET_WEIGHTS: {
                uint32_t n = d ? sort_weights(r, it) : 0;
                int64_t gone = 0;
                double x;
                for (const struct fm_instance *i = n ? d->instances : NULL; i; i = i->next)
                        if (instance_weight(g, n, i, &x) && x <= 0 && in_service(g, ns, i, r->now))
                                gone++;
                return gone;
        }
        default:
                return 0;
        }
}

/* Appends the target's restarts within the span to t (ascending by insertion). */
static void restarts_in_span(const struct entry *e, fm_ms now, fm_ms span, fm_ms *t, uint32_t *n)
{
        if (!e)
                return;
        for (uint32_t k = 0; k < e->n_restarts; k++) {
                if (!within(now, e->restart[k], span))
                        continue;
                uint32_t j = (*n)++;
                for (; j > 0 && t[j - 1] > e->restart[k]; j--)
                        t[j] = t[j - 1];
                t[j] = e->restart[k];
        }
}

/*
 * The restart budget. Blocks with COOLDOWN and evidence, raising the
 * episode's alert once; a pass ends the episode.
 */
static bool budget_spent(struct review *r, struct fm_intent *it, int ns)
{
        struct fm_governor *g = r->g;
        const struct fm_governor_config *cfg = &g->cfg;
        struct entry *live = target_get(g, LIVE, it, FM_ACTION_RESTART);
        struct entry *own = ns == SHADOW ? target_get(g, SHADOW, it, FM_ACTION_RESTART) : live;
        fm_ms t[2 * FM_GOVERNOR_RESTART_BUDGET_MAX];
        uint32_t c = 0;
        restarts_in_span(live, r->now, cfg->restart_span, t, &c);
        if (ns == SHADOW)
                restarts_in_span(own, r->now, cfg->restart_span, t, &c);

        if (c < cfg->restart_budget) {
                if (own)
                        own->budget_alerted = false;
                return false;
        }

        fm_evidence_add(&it->evidence, "restarts_in_span", c);
        fm_evidence_add(&it->evidence, "restart_budget", cfg->restart_budget);
        fm_evidence_add(&it->evidence, "restart_span_s", seconds(cfg->restart_span));
        /* the budget has room again once c - budget + 1 of them have left the span */
        fm_evidence_add(&it->evidence, "budget_remaining_s",
                        seconds(t[c - cfg->restart_budget] + cfg->restart_span - r->now));

        if (!own) {
                char key[KEY_MAX];
                target_key(key, ns, it->deployment, it->instance, FM_ACTION_RESTART);
                if ((own = entry_new(g, key, ENTRY_TARGET, r->now))) {
                        own->action = FM_ACTION_RESTART;
                        own->ns = (uint8_t)ns;
                }
        }
        if (own && !own->budget_alerted) {
                struct fm_evidence ev = {0};
                char summary[FM_ALERT_SUMMARY_MAX], akey[FM_INTENT_KEY_MAX];
                fm_evidence_add(&ev, "restarts_in_span", c);
                fm_evidence_add(&ev, "restart_budget", cfg->restart_budget);
                fm_evidence_add(&ev, "restart_span_s", seconds(cfg->restart_span));
                if (snprintf(summary, sizeof(summary),
                             "restart budget of %.63s/%.63s spent: %u restarts in %lld s; "
                             "restarts stop",
                             it->deployment, it->instance, c,
                             (long long)(cfg->restart_span / FM_MS_PER_S)) < 0)
                        summary[0] = '\0';
                (void)snprintf(akey, sizeof(akey), "governor/restart_budget/%.63s/%.63s/%lld",
                               it->deployment, it->instance, (long long)r->now);
                own->touched = r->now;
                own->budget_alerted = raise_alert(r, ns == SHADOW, "restart_budget_exhausted",
                                                  it->deployment, it->instance, summary, akey, &ev);
        }
        return true;
}

/* Writes the approval (or dry-run decision) into the state. */
static void record(struct review *r, uint32_t idx, const struct fm_intent *it, int ns,
                   struct dep_stats *s, int64_t gone)
{
        struct fm_governor *g = r->g;
        struct entry *e = target_get(g, ns, it, it->action);
        if (!e) {
                char key[KEY_MAX];
                target_key(key, ns, it->deployment, target_instance(it), it->action);
                if (!(e = entry_new(g, key, ENTRY_TARGET, r->now)))
                        return;
                e->action = (uint8_t)it->action;
                e->ns = (uint8_t)ns;
        }
        e->has_last = true;
        e->last = e->touched = r->now;
        e->tick = g->tick;
        e->tick_index = idx;
        if (it->action == FM_ACTION_RESTART) {
                if (e->n_restarts == FM_GOVERNOR_RESTART_BUDGET_MAX) {
                        memmove(e->restart, e->restart + 1,
                                sizeof(e->restart) - sizeof(e->restart[0]));
                        e->n_restarts--;
                }
                e->restart[e->n_restarts++] = r->now;
        }
        if (s && gone > 0) {
                s->in_service[SHADOW] -= gone;
                if (ns == LIVE)
                        s->in_service[LIVE] -= gone;
        }
}

/* The first blocking rule after the operator switches; see governor.h. */
static enum fm_verdict decide(struct review *r, uint32_t idx, int ns)
{
        struct fm_governor *g = r->g;
        const struct fm_governor_config *cfg = &g->cfg;
        struct fm_intent *it = &r->plan->intent[idx];
        struct fm_evidence *ev = &it->evidence;

        if (cfg->paused)
                return FM_VERDICT_PAUSED;
        if (it->action == FM_ACTION_ALERT)
                return take_token(g, ns, ALERTS, it) ? FM_VERDICT_APPROVED : FM_VERDICT_RATE_LIMIT;

        if (r->maintenance >= 0) {
                fm_evidence_add(ev, "maintenance_window", r->maintenance);
                fm_evidence_add(ev, "maintenance_remaining_s", seconds(r->maintenance_remaining));
                return FM_VERDICT_MAINTENANCE;
        }

        const struct fm_deployment *d =
                r->f ? fm_fleet_find_deployment(r->f, it->deployment) : NULL;
        struct dep_stats *s = find_stats(g, d);
        if (s && s->frozen && reducing_kind(r, it, ns, d, s)) {
                freeze_evidence(ev, cfg, s);
                return FM_VERDICT_FROZEN;
        }

        if (it->action == FM_ACTION_SCALE || it->action == FM_ACTION_SET_WEIGHTS) {
                for (int k = LIVE; k <= ns; k++) {
                        const struct entry *rb = target_get(g, k, it, FM_ACTION_ROLLBACK);
                        if (rb && rb->tick == g->tick &&
                            !same_policy(r->plan->intent[rb->tick_index].policy, it->policy)) {
                                fm_evidence_add(ev, "preempted_by", rb->tick_index);
                                return FM_VERDICT_CONFLICT;
                        }
                }
        }

        struct entry *e[_NS_MAX] = {target_get(g, LIVE, it, it->action), NULL};
        if (ns == SHADOW)
                e[SHADOW] = target_get(g, SHADOW, it, it->action);
        bool has_last = false;
        fm_ms last = 0;
        for (int k = LIVE; k <= ns; k++) {
                if (!e[k])
                        continue;
                if (e[k]->tick == g->tick) {
                        fm_evidence_add(ev, "duplicate_of", e[k]->tick_index);
                        return FM_VERDICT_CONFLICT;
                }
                if (e[k]->has_last && (!has_last || e[k]->last > last)) {
                        has_last = true;
                        last = e[k]->last;
                }
        }

        fm_ms cooldown = cfg->cooldown[it->action];
        if (has_last && within(r->now, last, cooldown)) {
                fm_evidence_add(ev, "cooldown_s", seconds(cooldown));
                fm_evidence_add(ev, "cooldown_remaining_s", seconds(last + cooldown - r->now));
                return FM_VERDICT_COOLDOWN;
        }

        if (it->action == FM_ACTION_RESTART && budget_spent(r, it, ns))
                return FM_VERDICT_COOLDOWN;

        uint64_t n;
        int64_t gone = removal(r, it, ns, d, s, &n);
        if (gone > 0) {
                int64_t up = s ? s->in_service[ns] : 0, fl = floor_of(cfg, n);
                if (up - gone < fl) {
                        fm_evidence_add(ev, "instances", (double)n);
                        fm_evidence_add(ev, "in_service", (double)up);
                        fm_evidence_add(ev, "removed", (double)gone);
                        fm_evidence_add(ev, "floor", (double)fl);
                        return FM_VERDICT_CAPACITY;
                }
        }

        if (!take_token(g, ns, ACTIONS, it))
                return FM_VERDICT_RATE_LIMIT;

        record(r, idx, it, ns, s, gone);
        return FM_VERDICT_APPROVED;
}

static void review_one(struct review *r, uint32_t idx)
{
        struct fm_intent *it = &r->plan->intent[idx];
        int ns = dry_run_policy(&r->g->cfg, it->policy) ? SHADOW : LIVE;
        enum fm_verdict v = decide(r, idx, ns);
        if (v == FM_VERDICT_APPROVED && ns == SHADOW)
                v = FM_VERDICT_DRY_RUN;
        set_verdict(r, it, v);
}

static bool name_ok(const char *s, size_t size, bool required)
{
        return memchr(s, '\0', size) && (!required || s[0] != '\0');
}

/* Checks the plan and sizes the scratch, before anything changes. */
static int prepare(struct fm_governor *g, const struct fm_fleet *f, const struct fm_plan *plan)
{
        uint32_t max_w = 0, max_i = 0, n_dep = f ? f->n_deployments : 0;

        for (uint32_t k = 0; k < plan->n_intents; k++) {
                const struct fm_intent *it = &plan->intent[k];
                if (it->verdict != FM_VERDICT_PENDING)
                        continue;
                if ((unsigned)it->action >= _FM_ACTION_MAX)
                        return -EINVAL;
                bool alert = it->action == FM_ACTION_ALERT;
                if (!name_ok(it->deployment, sizeof(it->deployment), !alert) ||
                    !name_ok(it->instance, sizeof(it->instance), it->action == FM_ACTION_RESTART))
                        return -EINVAL;
                if (it->action == FM_ACTION_SET_WEIGHTS) {
                        if ((uint64_t)it->arg.weights.first + it->arg.weights.n > plan->n_weights)
                                return -EINVAL;
                        if (it->arg.weights.n > max_w)
                                max_w = it->arg.weights.n;
                }
        }
        if (f)
                for (const struct fm_deployment *d = f->deployments; d; d = d->next)
                        if (d->n_instances > max_i)
                                max_i = d->n_instances;

        if (n_dep > g->cap_dep) {
                struct dep_stats *p = realloc(g->dep, n_dep * sizeof(*p));
                if (!p)
                        return -ENOMEM;
                g->dep = p;
                g->cap_dep = n_dep;
        }
        if (max_i > g->cap_silent) {
                fm_ms *p = realloc(g->silent, max_i * sizeof(*p));
                if (!p)
                        return -ENOMEM;
                g->silent = p;
                g->cap_silent = max_i;
        }
        if (max_w > g->cap_wsort) {
                const struct fm_weight **p = realloc(g->wsort, max_w * sizeof(*p));
                if (!p)
                        return -ENOMEM;
                g->wsort = p;
                g->cap_wsort = max_w;
        }
        return 0;
}

/*
 * The review: refill the buckets, survey the fleet (freeze episodes and
 * their alerts), sweep the table (expired entries, restarts in progress),
 * then rollbacks first, so that one approved pre-empts the scale and
 * weight changes of its deployment wherever they stand in the plan, then
 * everything else in plan order. Alerts the governor appends are reviewed
 * as they are appended and are not visited again.
 */
int fm_governor_review(struct fm_governor *g, const struct fm_fleet *f, struct fm_plan *plan,
                       fm_ms now)
{
        if (!g || !plan)
                return -EINVAL;
        int r0 = prepare(g, f, plan);
        if (r0 < 0)
                return r0;

        struct review r = {.g = g, .f = f, .plan = plan, .now = now};
        r.maintenance = fm_governor_maintenance(&g->cfg, now, &r.maintenance_remaining);
        g->tick++;
        refill(g, now);
        survey(&r);
        sweep(&r);

        uint32_t n = plan->n_intents;
        for (uint32_t k = 0; k < n; k++)
                if (plan->intent[k].verdict == FM_VERDICT_PENDING &&
                    plan->intent[k].action == FM_ACTION_ROLLBACK)
                        review_one(&r, k);
        for (uint32_t k = 0; k < n; k++)
                if (plan->intent[k].verdict == FM_VERDICT_PENDING)
                        review_one(&r, k);
        g->stats.entries = g->cfg.max_entries - g->n_free;
        return r.ret;
}
