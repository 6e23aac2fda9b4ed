/* SPDX-License-Identifier: MIT */
#include "model.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "detect.h"

/* ==== Generator: splitmix64 seeds xoshiro256** ========================== */

static uint64_t splitmix64(uint64_t *x)
{
        uint64_t z = (*x += UINT64_C(0x9e3779b97f4a7c15));
        z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
        z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
        return z ^ (z >> 31);
}

void fm_rng_seed(struct fm_rng *r, uint64_t seed)
{
        uint64_t x = seed;
        for (size_t k = 0; k < 4; k++)
                r->s[k] = splitmix64(&x);
}

static inline uint64_t rotl(uint64_t x, int k)
{
        return (x << k) | (x >> (64 - k));
}

uint64_t fm_rng_next(struct fm_rng *r)
{
        uint64_t *s = r->s;
        uint64_t result = rotl(s[1] * 5, 7) * 9;
        uint64_t t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = rotl(s[3], 45);
        return result;
}

double fm_rng_uniform(struct fm_rng *r)
{
        return (double)(fm_rng_next(r) >> 11) * 0x1.0p-53;
}

double fm_rng_normal(struct fm_rng *r)
{
        double u = fm_rng_uniform(r), v = fm_rng_uniform(r);
        if (u < 1e-300)
                u = 1e-300;
        return sqrt(-2.0 * log(u)) * cos(2.0 * M_PI * v);
}

/* ==== Small numerics ==================================================== */

double fm_model_phi(double x)
{
        return fm_stat_norm_cdf(x);
}

double fm_model_probit(double p)
{
        double x;
        return fm_stat_norm_quantile(p, &x) < 0 ? NAN : x;
}

double fm_model_hist_quantile(const double *bound, uint32_t n, const double *count, double q)
{
        double total = 0;
        for (uint32_t k = 0; k <= n; k++)
                total += count[k];
        if (!(total > 0) || n == 0)
                return NAN;
        double want = q * total, cum = 0;
        for (uint32_t k = 0; k < n; k++) {
                if (cum + count[k] >= want && count[k] > 0) {
                        double lo = k ? bound[k - 1] : 0, hi = bound[k];
                        return lo + (hi - lo) * (want - cum) / count[k];
                }
                cum += count[k];
        }
        return bound[n - 1];
}

/* A count drawn around its mean: Poisson by its normal approximation (exact enough here). */
static uint64_t draw_count(struct fm_rng *r, double mean)
{
        if (!(mean > 0))
                return 0;
        double x = mean + sqrt(mean) * fm_rng_normal(r);
        x = floor(x + 0.5);
        return x < 0 ? 0 : (uint64_t)x;
}

/* Successes of n trials of probability p, normal approximation, within [0, n]. */
static uint64_t draw_binomial(struct fm_rng *r, uint64_t n, double p)
{
        if (n == 0 || !(p > 0))
                return 0;
        if (p >= 1)
                return n;
        double mean = (double)n * p, sd = sqrt(mean * (1 - p));
        double x = floor(mean + sd * fm_rng_normal(r) + 0.5);
        if (x < 0)
                return 0;
        return x > (double)n ? n : (uint64_t)x;
}

/* ==== The model ========================================================= */

enum inst_state {
        INST_STARTING,
        INST_READY,
        INST_DOWN,       /* crashed */
        INST_RESTARTING, /* restarted by an action */
        INST_GONE,
};

struct inst {
        char name[FM_NAME_MAX + 1];
        uint32_t dep, version;
        int32_t next_version; /* -1: none pending */
        fm_ms switch_at;
        uint8_t state;
        fm_ms until; /* STARTING, RESTARTING: when it serves again */
        fm_ms next_health;
        bool reported_ready, reported_once;
        uint64_t seq;
        double weight;     /* relative */
        fm_ms loop_origin; /* crash loop cycles count from here */
        uint32_t cured;    /* bit k: fault k cured by a restart */
        uint32_t crashed;  /* bit k: fault k has taken this instance down */
        double share;      /* of its deployment's traffic, last step */
};

#define SCORE_BINS 10

/* What the faults active at now do to instance i. */
struct effect {
        double latency_factor, capacity_factor, error_rate;
        bool down, cut_off;
};

struct dep {
        uint32_t serving_version; /* new instances start on it */
        uint32_t next_index;
        bool version_weights;
        double version_weight[FM_SCN_VERSIONS_MAX];
        double default_weight;
        double threshold[FM_SCN_VERSIONS_MAX];
        double version_share[FM_SCN_VERSIONS_MAX]; /* 0..1, last step */
};

struct fm_model {
        const struct fm_scenario *sc;
        struct fm_rng rng;
        struct inst *inst;
        uint32_t n, cap, alive;
        struct dep dep[FM_SCN_DEPLOYMENTS_MAX];
        bool deploy_done[FM_SCN_DEPLOYS_MAX];
        double bound[FM_MODEL_BOUNDS_MAX];
        uint32_t nb;
        struct fm_model_dep_stats stats[FM_SCN_DEPLOYMENTS_MAX];
        double fault_impact[FM_SCN_FAULTS_MAX];
        bool on[FM_SCN_FAULTS_MAX]; /* per step: fault k is active */
        fm_ms start;
        struct fm_event *ev;
        /* per step scratch, one entry per instance slot */
        struct effect *eff;
        bool *cut;
        uint32_t scratch_cap;
        /* per step scratch: score bins per (deployment, version) */
        double score_p[FM_SCN_DEPLOYMENTS_MAX][FM_SCN_VERSIONS_MAX][SCORE_BINS];
        double sep[FM_SCN_DEPLOYMENTS_MAX][FM_SCN_VERSIONS_MAX]; /* probit(accuracy), fixed */
        double shift[FM_SCN_DEPLOYMENTS_MAX][FM_SCN_VERSIONS_MAX];
        double flip[FM_SCN_DEPLOYMENTS_MAX][FM_SCN_VERSIONS_MAX];
};

static const double base_bounds[] = {5,   10,   20,   30,   40,   50,   60,   75,
                                     100, 125,  150,  200,  250,  300,  400,  500,
                                     750, 1000, 1500, 2000, 3000, 5000, 10000};

static int cmp_double(const void *a, const void *b)
{
        double x = *(const double *)a, y = *(const double *)b;
        return x < y ? -1 : x > y;
}

static fm_ms at_ms(const struct fm_model *m, double t_s)
{
        return m->start + (fm_ms)llround(t_s * FM_MS_PER_S);
}

bool fm_model_fault_active(const struct fm_model *m, uint32_t k, fm_ms now)
{
        const struct fm_scn_fault *f = &m->sc->faults[k];
        return now >= at_ms(m, f->at_s) && (f->until_s < 0 || now < at_ms(m, f->until_s));
}

static struct inst *inst_add(struct fm_model *m, uint32_t d, fm_ms now, bool starting)
{
        if (m->alive >= FM_MODEL_INSTANCES_MAX)
                return NULL;
        if (m->n == m->cap) {
                /* drop the gone first; grow only when that frees nothing */
                uint32_t w = 0;
                for (uint32_t k = 0; k < m->n; k++)
                        if (m->inst[k].state != INST_GONE)
                                m->inst[w++] = m->inst[k];
                m->n = w;
                if (m->n == m->cap) {
                        uint32_t cap = m->cap ? m->cap * 2 : 64;
                        struct inst *p = realloc(m->inst, cap * sizeof(*p));
                        if (!p)
                                return NULL;
                        m->inst = p;
                        m->cap = cap;
                }
        }
        struct dep *dp = &m->dep[d];
        struct inst *i = &m->inst[m->n++];
        *i = (struct inst){
                .dep = d,
                .version = dp->serving_version,
                .next_version = -1,
                .state = starting ? INST_STARTING : INST_READY,
                .until = starting ? now + (fm_ms)llround(m->sc->deployments[d].cold_start_s *
                                                         FM_MS_PER_S)
                                  : now,
                .next_health = now,
                .weight = dp->default_weight,
                .loop_origin = now,
        };
        (void)snprintf(i->name, sizeof(i->name), "%s-%u", m->sc->deployments[d].name,
                       dp->next_index++);
        m->alive++;
        return i;
}

int fm_model_new(const struct fm_scenario *sc, struct fm_model **ret)
{
        if (!sc || !ret || sc->n_deployments == 0 || sc->step_s <= 0)
                return -EINVAL;
        struct fm_model *m = calloc(1, sizeof(*m));
        if (!m)
                return -ENOMEM;
        m->sc = sc;
        m->start = (fm_ms)sc->start_s * FM_MS_PER_S;
        fm_rng_seed(&m->rng, sc->seed);
        m->ev = calloc(1, sizeof(*m->ev));
        if (!m->ev) {
                fm_model_free(m);
                return -ENOMEM;
        }
        for (size_t k = 0; k < ARRAY_SIZE(base_bounds); k++)
                m->bound[m->nb++] = base_bounds[k];
        bool have = false;
        for (uint32_t k = 0; k < m->nb; k++)
                have |= fabs(m->bound[k] - sc->slo.latency_p99_ms) < 1e-9;
        if (!have && m->nb < FM_MODEL_BOUNDS_MAX)
                m->bound[m->nb++] = sc->slo.latency_p99_ms;
        qsort(m->bound, m->nb, sizeof(double), cmp_double);

        /* what every event carries alike */
        m->ev->latency_hist.n = m->nb;
        memcpy(m->ev->latency_hist.bound, m->bound, m->nb * sizeof(m->bound[0]));
        m->ev->score_hist.n = SCORE_BINS - 1;
        for (int b = 0; b < SCORE_BINS - 1; b++)
                m->ev->score_hist.bound[b] = (b + 1) / (double)SCORE_BINS;

        for (uint32_t d = 0; d < sc->n_deployments; d++) {
                struct dep *dp = &m->dep[d];
                for (uint32_t v = 0; v < sc->deployments[d].n_versions; v++)
                        m->sep[d][v] = fm_model_probit(sc->deployments[d].versions[v].accuracy);
                dp->serving_version = sc->deployments[d].initial_version;
                dp->default_weight = 1;
                for (uint32_t v = 0; v < FM_SCN_VERSIONS_MAX; v++)
                        dp->threshold[v] = 0.5;
                for (uint32_t k = 0; k < sc->deployments[d].replicas; k++)
                        if (!inst_add(m, d, m->start, false)) {
                                fm_model_free(m);
                                return -ENOMEM;
                        }
        }
        *ret = m;
        return 0;
}

struct fm_model *fm_model_free(struct fm_model *m)
{
        if (!m)
                return NULL;
        free(m->inst);
        free(m->eff);
        free(m->cut);
        free(m->ev);
        free(m);
        return NULL;
}

const struct fm_model_dep_stats *fm_model_stats(const struct fm_model *m, uint32_t d)
{
        return d < m->sc->n_deployments ? &m->stats[d] : NULL;
}

uint32_t fm_model_bounds(const struct fm_model *m, const double **ret)
{
        *ret = m->bound;
        return m->nb;
}

double fm_model_fault_impact(const struct fm_model *m, uint32_t k)
{
        return k < m->sc->n_faults ? m->fault_impact[k] : 0;
}

uint32_t fm_model_instances(const struct fm_model *m)
{
        return m->alive;
}

double fm_model_threshold(const struct fm_model *m, uint32_t d, uint32_t v)
{
        return d < m->sc->n_deployments && v < FM_SCN_VERSIONS_MAX ? m->dep[d].threshold[v] : NAN;
}

/* ---- faults, as they bear on one instance ------------------------------------------------------
 */

static bool fault_hits(const struct fm_scn_fault *f, const struct inst *i)
{
        if (f->deployment != i->dep)
                return false;
        if (f->instance[0])
                return strcmp(f->instance, i->name) == 0;
        if (f->version >= 0)
                return (uint32_t)f->version == i->version;
        return true;
}

static void instance_effect(struct fm_model *m, struct inst *i, fm_ms now, struct effect *e)
{
        const struct fm_scenario *sc = m->sc;
        const struct fm_scn_version *ver = &sc->deployments[i->dep].versions[i->version];

        *e = (struct effect){
                .latency_factor = 1, .capacity_factor = 1, .error_rate = ver->error_rate};
        for (uint32_t k = 0; k < sc->n_faults; k++) {
                const struct fm_scn_fault *f = &sc->faults[k];
                if (!m->on[k] || !fault_hits(f, i) || (i->cured & (1u << k)))
                        continue;
                switch (f->kind) {
                case FM_SCN_FAULT_BAD_VERSION:
                        if (f->error_rate >= 0)
                                e->error_rate = f->error_rate;
                        e->latency_factor *= f->latency_factor;
                        break;
                case FM_SCN_FAULT_ERROR_BURST:
                        e->error_rate += f->error_rate;
                        break;
                case FM_SCN_FAULT_SLOW:
                        e->latency_factor *= f->factor;
                        e->capacity_factor /= f->factor;
                        break;
                case FM_SCN_FAULT_CRASH:
                        e->down = true;
                        break;
                case FM_SCN_FAULT_CRASH_LOOP: {
                        /* down first, then up: down_s, up_s, down_s, ... from the origin */
                        fm_ms origin = at_ms(m, f->at_s);
                        if (i->loop_origin > origin)
                                origin = i->loop_origin;
                        fm_ms cycle = (fm_ms)llround((f->up_s + f->down_s) * FM_MS_PER_S);
                        fm_ms up_first = i->loop_origin > at_ms(m, f->at_s)
                                                 ? (fm_ms)llround(f->up_s * FM_MS_PER_S)
                                                 : 0;
                        fm_ms pos = now - origin;
                        if (pos >= up_first) {
                                fm_ms ph = (pos - up_first) % cycle;
                                e->down |= ph < (fm_ms)llround(f->down_s * FM_MS_PER_S);
                        }
                        break;
                }
                case FM_SCN_FAULT_NOISY:
                        e->error_rate += fabs(f->error_noise * fm_rng_normal(&m->rng));
                        e->latency_factor *= exp(f->latency_noise * fm_rng_normal(&m->rng));
                        break;
                default:
                        break;
                }
        }
        if (e->error_rate > 1)
                e->error_rate = 1;
}

/* ---- load ------------------------------------------------------------------------------------ */

static double load_at(const struct fm_scn_load *l, double t)
{
        switch (l->kind) {
        case FM_SCN_LOAD_DIURNAL:
                return l->rps * (1 - l->amplitude * cos(2 * M_PI * (t - l->phase_s) / l->period_s));
        case FM_SCN_LOAD_RAMP:
                if (t <= l->at_s)
                        return l->rps;
                if (t >= l->at_s + l->ramp_s)
                        return l->to_rps;
                return l->rps + (l->to_rps - l->rps) * (t - l->at_s) / l->ramp_s;
        case FM_SCN_LOAD_SPIKE: {
                double f = 0, end = l->at_s + l->duration_s;
                if (t >= l->at_s && t < end) {
                        f = 1;
                        if (l->ramp_s > 0 && t < l->at_s + l->ramp_s)
                                f = (t - l->at_s) / l->ramp_s;
                        if (l->ramp_s > 0 && t > end - l->ramp_s)
                                f = fmin(f, (end - t) / l->ramp_s);
                }
                return l->rps * (1 + (l->factor - 1) * f);
        }
        case FM_SCN_LOAD_CONSTANT:
        default:
                return l->rps;
        }
}

/* ---- one step -------------------------------------------------------------------------------- */

static void apply_deploys(struct fm_model *m, fm_ms now)
{
        const struct fm_scenario *sc = m->sc;
        for (uint32_t k = 0; k < sc->n_deploys; k++) {
                const struct fm_scn_deploy *dp = &sc->deploys[k];
                if (m->deploy_done[k] || now < at_ms(m, dp->at_s))
                        continue;
                m->deploy_done[k] = true;
                m->dep[dp->deployment].serving_version = dp->version;
                for (uint32_t j = 0; j < m->n; j++) {
                        struct inst *i = &m->inst[j];
                        if (i->state == INST_GONE || i->dep != dp->deployment)
                                continue;
                        i->next_version = (int32_t)dp->version;
                        i->switch_at = now + (fm_ms)llround(fm_rng_uniform(&m->rng) *
                                                            dp->rollout_s * FM_MS_PER_S);
                }
        }
}

/* Score bins and separation per version at now, with the drift faults. */
static void score_model(struct fm_model *m, fm_ms now)
{
        const struct fm_scenario *sc = m->sc;
        for (uint32_t d = 0; d < sc->n_deployments; d++) {
                const struct fm_scn_deployment *sd = &sc->deployments[d];
                for (uint32_t v = 0; v < sd->n_versions; v++) {
                        double acc = sd->versions[v].accuracy, shift = 0, flip = 0;
                        for (uint32_t k = 0; k < sc->n_faults; k++) {
                                const struct fm_scn_fault *f = &sc->faults[k];
                                if (f->deployment != d ||
                                    (f->version >= 0 && (uint32_t)f->version != v) || !m->on[k])
                                        continue;
                                /* labels that disagree with the scores: the accuracy falls,
                                 * the score distribution stays (a drift is what moves it) */
                                if (f->kind == FM_SCN_FAULT_BAD_VERSION && f->accuracy > 0 &&
                                    f->accuracy < acc)
                                        flip = (acc - f->accuracy) / (2 * acc - 1);
                                if (f->kind == FM_SCN_FAULT_DRIFT) {
                                        double t = (double)(now - at_ms(m, f->at_s)) / FM_MS_PER_S;
                                        double frac = f->ramp_s > 0 ? fmin(1, t / f->ramp_s) : 1;
                                        shift += f->shift * frac;
                                }
                        }
                        double sep = m->sep[d][v], pos = sd->versions[v].positive_rate;
                        m->shift[d][v] = shift;
                        m->flip[d][v] = flip;
                        double prev = 0;
                        for (int b = 0; b < SCORE_BINS; b++) {
                                double cdf = 1;
                                if (b < SCORE_BINS - 1) {
                                        double x = (b + 1) / (double)SCORE_BINS;
                                        double lx = log(x / (1 - x));
                                        cdf = pos * fm_model_phi(lx - sep - shift) +
                                              (1 - pos) * fm_model_phi(lx + sep - shift);
                                }
                                m->score_p[d][v][b] = cdf - prev;
                                prev = cdf;
                        }
                }
        }
}

static void fill_hist(struct fm_model *m, double l0, double mean, uint64_t n, struct fm_hist *h,
                      double *acc)
{
        uint64_t prev = 0;
        for (uint32_t k = 0; k < m->nb; k++) {
                double x = m->bound[k], cdf;
                if (x <= l0)
                        cdf = 0;
                else if (prev == n)
                        cdf = 1;
                else
                        cdf = 1 - exp(-(x - l0) / mean);
                uint64_t c = (uint64_t)llround((double)n * cdf);
                if (c > n)
                        c = n;
                if (c < prev)
                        c = prev;
                h->count[k] = c - prev;
                acc[k] += (double)(c - prev);
                prev = c;
        }
        h->count[m->nb] = n - prev;
        acc[m->nb] += (double)(n - prev);
}

static void emit_health(struct fm_model *m, struct inst *i, fm_ms now, fm_model_sink sink,
                        void *userdata)
{
        struct fm_event *ev = m->ev;
        ev->kind = FM_EVENT_HEALTH;
        ev->fields = FM_F_SEQ | FM_F_VERSION | FM_F_TS | FM_F_READY;
        ev->ts = now;
        ev->seq = ++i->seq;
        ev->status = FM_HEALTH_OK;
        ev->ready = i->state == INST_READY;
        if (ev->ready)
                ev->reason[0] = '\0';
        else {
                memcpy(ev->reason, "starting", sizeof("starting"));
                ev->fields |= FM_F_REASON;
        }
        memcpy(ev->instance, i->name, sizeof(i->name));
        memcpy(ev->version, m->sc->deployments[i->dep].versions[i->version].name,
               sizeof(ev->version));
        memcpy(ev->deployment, m->sc->deployments[i->dep].name, sizeof(ev->deployment));
        sink(userdata, ev);
        i->reported_ready = ev->ready;
        i->reported_once = true;
        i->next_health = now + m->sc->health_interval_s * FM_MS_PER_S;
}

static void emit_feedback(struct fm_model *m, uint32_t d, fm_ms now, double step_s, const bool *cut,
                          fm_model_sink sink, void *userdata)
{
        const struct fm_scn_deployment *sd = &m->sc->deployments[d];
        struct fm_event *ev = m->ev;

        if (!(sd->feedback_per_s > 0))
                return;
        for (uint32_t v = 0; v < sd->n_versions; v++) {
                double share = m->dep[d].version_share[v];
                if (!(share > 0))
                        continue;
                struct inst *via = NULL;
                for (uint32_t k = 0; k < m->n && !via; k++) {
                        struct inst *i = &m->inst[k];
                        if (i->dep == d && i->version == v && i->state == INST_READY && !cut[k])
                                via = i;
                }
                uint64_t n = draw_count(&m->rng, sd->feedback_per_s * step_s * share);
                if (!via || n == 0)
                        continue;
                if (n > FM_OUTCOMES_MAX)
                        n = FM_OUTCOMES_MAX;
                double sep = m->sep[d][v], shift = m->shift[d][v], flip = m->flip[d][v],
                       pos = sd->versions[v].positive_rate;
                for (uint64_t k = 0; k < n; k++) {
                        uint8_t label = fm_rng_uniform(&m->rng) < pos;
                        double z = (label ? sep : -sep) + shift + fm_rng_normal(&m->rng);
                        double s = 1 / (1 + exp(-z));
                        if (flip > 0 && fm_rng_uniform(&m->rng) < flip)
                                label = !label;
                        ev->outcome[k] = (struct fm_outcome){.score = s, .label = label};
                }
                ev->kind = FM_EVENT_FEEDBACK;
                ev->fields = FM_F_SEQ | FM_F_VERSION | FM_F_TS;
                ev->ts = now;
                ev->seq = ++via->seq;
                ev->n_outcomes = (uint32_t)n;
                ev->status = FM_HEALTH_UNKNOWN;
                ev->reason[0] = '\0';
                memcpy(ev->instance, via->name, sizeof(via->name));
                memcpy(ev->version, sd->versions[v].name, sizeof(ev->version));
                memcpy(ev->deployment, sd->name, sizeof(ev->deployment));
                sink(userdata, ev);
        }
        ev->n_outcomes = 0;
}

/* Which instances are cut off from the controller now: the first share of each deployment's. */
static void mark_cut_off(struct fm_model *m, bool *cut)
{
        const struct fm_scenario *sc = m->sc;
        for (uint32_t k = 0; k < sc->n_faults; k++) {
                const struct fm_scn_fault *f = &sc->faults[k];
                if (f->kind != FM_SCN_FAULT_CUT_OFF || !m->on[k])
                        continue;
                uint32_t total = 0, taken = 0;
                for (uint32_t j = 0; j < m->n; j++)
                        total += m->inst[j].dep == f->deployment && m->inst[j].state != INST_GONE;
                uint32_t want = (uint32_t)ceil(f->share * total - 1e-9);
                for (uint32_t j = 0; j < m->n && taken < want; j++)
                        if (m->inst[j].dep == f->deployment && m->inst[j].state != INST_GONE) {
                                cut[j] = true;
                                taken++;
                        }
        }
}

int fm_model_step(struct fm_model *m, fm_ms now, fm_model_sink sink, void *userdata)
{
        const struct fm_scenario *sc = m->sc;
        const double step_s = (double)sc->step_s;
        const double t = (double)(now - m->start) / FM_MS_PER_S;

        for (uint32_t k = 0; k < sc->n_faults; k++)
                m->on[k] = fm_model_fault_active(m, k, now);
        apply_deploys(m, now);
        score_model(m, now);

        if (m->scratch_cap < m->n) {
                struct effect *e = realloc(m->eff, m->cap * sizeof(*e));
                if (!e)
                        return -ENOMEM;
                m->eff = e;
                bool *c = realloc(m->cut, m->cap * sizeof(*c));
                if (!c)
                        return -ENOMEM;
                m->cut = c;
                m->scratch_cap = m->cap;
        }
        struct effect *eff = m->eff;
        bool *cut = m->cut;
        memset(cut, 0, m->n * sizeof(*cut));
        mark_cut_off(m, cut);

        /* states */
        for (uint32_t k = 0; k < m->n; k++) {
                struct inst *i = &m->inst[k];
                if (i->state == INST_GONE)
                        continue;
                if (i->next_version >= 0 && now >= i->switch_at) {
                        i->version = (uint32_t)i->next_version;
                        i->next_version = -1;
                }
                if ((i->state == INST_STARTING || i->state == INST_RESTARTING) && now >= i->until)
                        i->state = INST_READY;
                instance_effect(m, i, now, &eff[k]);
                if (i->state == INST_READY && eff[k].down)
                        i->state = INST_DOWN;
                else if (i->state == INST_DOWN && !eff[k].down)
                        i->state = INST_READY;
        }

        /* load split: version weights, then instance weights */
        for (uint32_t d = 0; d < sc->n_deployments; d++) {
                const struct fm_scn_deployment *sd = &sc->deployments[d];
                struct dep *dp = &m->dep[d];
                double vsum[FM_SCN_VERSIONS_MAX] = {0}, vw[FM_SCN_VERSIONS_MAX] = {0}, wtot = 0;
                uint32_t vcount[FM_SCN_VERSIONS_MAX] = {0};
                for (uint32_t k = 0; k < m->n; k++) {
                        const struct inst *i = &m->inst[k];
                        if (i->dep == d && i->state == INST_READY) {
                                vsum[i->version] += i->weight;
                                vcount[i->version]++;
                        }
                }
                for (uint32_t v = 0; v < sd->n_versions; v++) {
                        if (!vcount[v])
                                continue;
                        vw[v] = dp->version_weights ? dp->version_weight[v] : vsum[v];
                        wtot += vw[v];
                }
                if (!(wtot > 0)) /* every weight zero: traffic goes somewhere all the same */
                        for (uint32_t v = 0; v < sd->n_versions; v++) {
                                vw[v] = vcount[v];
                                wtot += vw[v];
                        }
                for (uint32_t v = 0; v < sd->n_versions; v++)
                        dp->version_share[v] = wtot > 0 ? vw[v] / wtot : 0;
                for (uint32_t k = 0; k < m->n; k++) {
                        struct inst *i = &m->inst[k];
                        if (i->dep != d)
                                continue;
                        i->share = 0;
                        if (i->state != INST_READY)
                                continue;
                        double vs = dp->version_share[i->version];
                        i->share = vsum[i->version] > 0 ? vs * i->weight / vsum[i->version]
                                                        : vs / vcount[i->version];
                }
        }

        /* serve */
        memset(m->stats, 0, sizeof(m->stats));
        for (uint32_t d = 0; d < sc->n_deployments; d++) {
                const struct fm_scn_deployment *sd = &sc->deployments[d];
                struct fm_model_dep_stats *st = &m->stats[d];
                double noise = sd->load.noise;
                for (uint32_t k = 0; k < sc->n_faults; k++)
                        if (sc->faults[k].kind == FM_SCN_FAULT_NOISY &&
                            sc->faults[k].deployment == d && m->on[k])
                                noise = hypot(noise, sc->faults[k].load_noise);
                double lambda = load_at(&sd->load, t) * (1 + noise * fm_rng_normal(&m->rng));
                if (lambda < 0)
                        lambda = 0;
                bool any = false;
                for (uint32_t k = 0; k < m->n; k++) {
                        struct inst *i = &m->inst[k];
                        if (i->dep != d || i->state == INST_GONE)
                                continue;
                        st->replicas++;
                        if (i->state != INST_READY)
                                continue;
                        st->ready++;
                        any = true;
                        const struct fm_scn_version *ver = &sd->versions[i->version];
                        const struct effect *e = &eff[k];
                        double li = lambda * i->share, mu = ver->capacity_rps * e->capacity_factor;
                        double rho = mu > 0 ? li / mu : 1e9, rq = rho > 0.98 ? 0.98 : rho;
                        uint64_t n = draw_count(&m->rng, li * step_s);
                        uint64_t over = rho > 1 ? (uint64_t)llround((double)n * (1 - 1 / rho)) : 0;
                        uint64_t err = over + draw_binomial(&m->rng, n - over, e->error_rate);
                        double l0 = ver->base_latency_ms * e->latency_factor;
                        double mean = ver->service_ms * e->latency_factor / (1 - rq);
                        if (!(mean > 1e-6))
                                mean = 1e-6;
                        st->requests += n;
                        st->errors += err;
                        st->share[i->version] += (double)n;

                        struct fm_event *ev = m->ev;
                        fill_hist(m, l0, mean, n - over, &ev->latency_hist, st->hist);
                        if (over)
                                ev->latency_hist.count[m->nb] += over,
                                        st->hist[m->nb] += (double)over;
                        if (!sink || cut[k])
                                continue;
                        if (!i->reported_once || i->reported_ready != true || now >= i->next_health)
                                emit_health(m, i, now, sink, userdata);
                        ev->kind = FM_EVENT_KPI;
                        ev->fields = FM_F_SEQ | FM_F_VERSION | FM_F_TS | FM_F_INTERVAL |
                                     FM_F_REQUESTS | FM_F_ERRORS | FM_F_LATENCY_HIST |
                                     FM_F_QUEUE_DEPTH | FM_F_IN_FLIGHT | FM_F_CPU | FM_F_GPU_UTIL |
                                     FM_F_SCORE_HIST;
                        ev->ts = now;
                        ev->seq = ++i->seq;
                        ev->status = FM_HEALTH_UNKNOWN;
                        ev->reason[0] = '\0';
                        ev->interval_s = step_s;
                        ev->requests = n;
                        ev->errors = err;
                        ev->gauge[FM_GAUGE_QUEUE_DEPTH] = fmin(rq * rq / (1 - rq), 1000);
                        ev->gauge[FM_GAUGE_IN_FLIGHT] = fmin(rq / (1 - rq), 1000);
                        ev->gauge[FM_GAUGE_CPU] = rho > 1 ? 1 : rho;
                        ev->gauge[FM_GAUGE_GPU_UTIL] = rho > 1 ? 1 : rho;
                        struct fm_hist *sh = &ev->score_hist;
                        uint64_t left = n;
                        for (int b = 0; b < SCORE_BINS - 1; b++) {
                                uint64_t c =
                                        (uint64_t)llround((double)n * m->score_p[d][i->version][b]);
                                if (c > left)
                                        c = left;
                                sh->count[b] = c;
                                left -= c;
                        }
                        sh->count[SCORE_BINS - 1] = left;
                        memcpy(ev->instance, i->name, sizeof(i->name));
                        memcpy(ev->version, sd->versions[i->version].name, sizeof(ev->version));
                        memcpy(ev->deployment, sd->name, sizeof(ev->deployment));
                        sink(userdata, ev);
                }
                /* nobody serves: every request fails */
                if (!any) {
                        uint64_t n = draw_count(&m->rng, lambda * step_s);
                        st->requests += n;
                        st->errors += n;
                }
                double served = 0;
                for (uint32_t v = 0; v < FM_SCN_VERSIONS_MAX; v++)
                        served += st->share[v];
                for (uint32_t v = 0; v < FM_SCN_VERSIONS_MAX; v++)
                        st->share[v] = served > 0 ? 100 * st->share[v] / served : 0;
                st->p99_ms = fm_model_hist_quantile(m->bound, m->nb, st->hist, 0.99);
        }

        /* health of instances that do not serve (starting: not ready; down: silent) */
        if (sink)
                for (uint32_t k = 0; k < m->n; k++) {
                        struct inst *i = &m->inst[k];
                        if (i->state == INST_STARTING && !cut[k] &&
                            (!i->reported_once || i->reported_ready || now >= i->next_health))
                                emit_health(m, i, now, sink, userdata);
                }
        if (sink)
                for (uint32_t d = 0; d < sc->n_deployments; d++)
                        emit_feedback(m, d, now, step_s, cut, sink, userdata);

        /* how much of each fault's deployment its effect touched */
        for (uint32_t f = 0; f < sc->n_faults; f++) {
                const struct fm_scn_fault *fa = &sc->faults[f];
                double s = 0;
                if (!m->on[f])
                        s = 0;
                else if (fa->instance[0] || fa->version >= 0) {
                        for (uint32_t k = 0; k < m->n; k++) {
                                const struct inst *i = &m->inst[k];
                                if (i->state == INST_GONE || !fault_hits(fa, i) ||
                                    (i->cured & (1u << f)))
                                        continue;
                                /* a crashed instance gets no traffic: it hurts through capacity */
                                s += i->share;
                        }
                } else
                        s = 1;
                m->fault_impact[f] = s > 1 ? 1 : s;
        }
        return 0;
}

/* ---- actions --------------------------------------------------------------------------------- */

static int dep_index(const struct fm_model *m, const char *dep)
{
        return dep ? fm_scenario_find_deployment(m->sc, dep) : -1;
}

bool fm_model_has_instance(const struct fm_model *m, uint32_t d, const char *instance)
{
        for (uint32_t k = 0; k < m->n; k++)
                if (m->inst[k].dep == d && m->inst[k].state != INST_GONE &&
                    strcmp(m->inst[k].name, instance) == 0)
                        return true;
        return false;
}

int fm_model_scale(struct fm_model *m, const char *dep, uint32_t to, fm_ms now)
{
        int d = dep_index(m, dep);
        uint32_t n = 0;
        if (d < 0)
                return -ENOENT;
        if (to > FM_SCN_REPLICAS_MAX)
                return -EINVAL;
        for (uint32_t k = 0; k < m->n; k++)
                n += m->inst[k].dep == (uint32_t)d && m->inst[k].state != INST_GONE;
        if (to > n) {
                for (uint32_t k = n; k < to; k++)
                        if (!inst_add(m, (uint32_t)d, now, true))
                                return -ENOMEM;
                return (int)(to - n);
        }
        uint32_t drop = n - to, dropped = 0;
        /* instances that do not serve go first, then the newest */
        for (int pass = 0; pass < 2 && dropped < drop; pass++)
                for (uint32_t k = m->n; k-- > 0 && dropped < drop;) {
                        struct inst *i = &m->inst[k];
                        if (i->dep != (uint32_t)d || i->state == INST_GONE ||
                            (pass == 0 && i->state == INST_READY))
                                continue;
                        i->state = INST_GONE;
                        m->alive--;
                        dropped++;
                }
        return (int)dropped;
}

int fm_model_rollback(struct fm_model *m, const char *dep, const char *from, const char *to,
                      fm_ms now)
{
        int d = dep_index(m, dep);
        if (d < 0)
                return -ENOENT;
        int vf = fm_scenario_find_version(m->sc, (uint32_t)d, from);
        int vt = fm_scenario_find_version(m->sc, (uint32_t)d, to);
        if (vt < 0)
                return -ENOENT;
        struct dep *dp = &m->dep[d];
        dp->serving_version = (uint32_t)vt;
        int n = 0;
        double rollout = m->sc->actuation.rollout_s;
        for (uint32_t k = 0; k < m->n; k++) {
                struct inst *i = &m->inst[k];
                if (i->dep != (uint32_t)d || i->state == INST_GONE)
                        continue;
                bool on_from = vf < 0 || i->version == (uint32_t)vf ||
                               (i->next_version >= 0 && i->next_version == vf);
                if (!on_from)
                        continue;
                i->next_version = vt;
                i->switch_at =
                        now + (fm_ms)llround(fm_rng_uniform(&m->rng) * rollout * FM_MS_PER_S);
                n++;
        }
        /* weights that named the old version give way to the new one */
        if (dp->version_weights && vf >= 0) {
                dp->version_weight[vt] += dp->version_weight[vf];
                dp->version_weight[vf] = 0;
        }
        return n;
}

int fm_model_restart(struct fm_model *m, const char *dep, const char *instance, fm_ms now)
{
        int d = dep_index(m, dep);
        if (d < 0 || !instance)
                return -ENOENT;
        for (uint32_t k = 0; k < m->n; k++) {
                struct inst *i = &m->inst[k];
                if (i->dep != (uint32_t)d || i->state == INST_GONE || strcmp(i->name, instance))
                        continue;
                fm_ms up = now + (fm_ms)llround(m->sc->actuation.restart_s * FM_MS_PER_S);
                i->state = INST_RESTARTING;
                i->until = up;
                i->loop_origin = up;
                for (uint32_t f = 0; f < m->sc->n_faults; f++) {
                        const struct fm_scn_fault *fa = &m->sc->faults[f];
                        if (!fault_hits(fa, i) || !fm_model_fault_active(m, f, now))
                                continue;
                        if (fa->kind == FM_SCN_FAULT_CRASH ||
                            (fa->kind == FM_SCN_FAULT_SLOW && !fa->sticky))
                                i->cured |= 1u << f;
                }
                return 1;
        }
        return -ENOENT;
}

int fm_model_set_weights(struct fm_model *m, const char *dep, const struct fm_weight *w, uint32_t n)
{
        int d = dep_index(m, dep);
        if (d < 0)
                return -ENOENT;
        if (n == 0 || !w)
                return -EINVAL;
        struct dep *dp = &m->dep[d];
        bool versions = true;
        for (uint32_t k = 0; k < n && versions; k++)
                versions = fm_scenario_find_version(m->sc, (uint32_t)d, w[k].target) >= 0;
        if (versions) {
                for (uint32_t v = 0; v < FM_SCN_VERSIONS_MAX; v++)
                        dp->version_weight[v] = 0;
                for (uint32_t k = 0; k < n; k++)
                        dp->version_weight[fm_scenario_find_version(m->sc, (uint32_t)d,
                                                                    w[k].target)] = w[k].weight;
                dp->version_weights = true;
                return (int)n;
        }
        int found = 0;
        double sum = 0;
        for (uint32_t k = 0; k < n; k++) {
                sum += w[k].weight;
                for (uint32_t j = 0; j < m->n; j++) {
                        struct inst *i = &m->inst[j];
                        if (i->dep == (uint32_t)d && i->state != INST_GONE &&
                            strcmp(i->name, w[k].target) == 0) {
                                i->weight = w[k].weight;
                                found++;
                        }
                }
        }
        if (!found)
                return -ENOENT;
        dp->default_weight = sum / n > 0 ? sum / n : 1;
        return found;
}

int fm_model_set_threshold(struct fm_model *m, const char *dep, const char *version, double value)
{
        int d = dep_index(m, dep);
        if (d < 0)
                return -ENOENT;
        int v = fm_scenario_find_version(m->sc, (uint32_t)d, version);
        if (v < 0)
                return -ENOENT;
        if (!(value >= 0 && value <= 1))
                return -EINVAL;
        m->dep[d].threshold[v] = value;
        return 0;
}
