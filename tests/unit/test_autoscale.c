/* SPDX-License-Identifier: MIT */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "test_util.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "autoscale.h"

/*
 * Times are offsets from T0, a realistic epoch time, so that nothing passes
 * only because now happens to be 0.
 */
#define S(x) ((fm_ms)(x)*FM_MS_PER_S)
#define T0 S(1700000000)

#define GPU FM_AUTOSCALE_GPU_UTIL
#define QUEUE FM_AUTOSCALE_QUEUE_DEPTH
#define INFLIGHT FM_AUTOSCALE_IN_FLIGHT
#define LAT FM_AUTOSCALE_LATENCY

#define MISSING NAN /* in tables: no value */

#define TGT_GPU 0.5
#define TGT_QUEUE 4.0
#define TGT_INFLIGHT 8.0
#define TGT_LAT 200.0

#define MAX_INST 512

/* ---- helpers ---------------------------------------------------------- */

static const struct fm_evidence_item *ev_find(const struct fm_evidence *e, const char *key)
{
        const struct fm_evidence_item *found = NULL;

        for (uint32_t i = 0; i < e->n; i++) {
                if (strcmp(e->item[i].key, key) != 0)
                        continue;
                if (found)
                        fail_msg("evidence key \"%s\" appears twice", key);
                found = &e->item[i];
        }
        return found;
}

static double ev_value(const struct fm_evidence *e, const char *key)
{
        const struct fm_evidence_item *it = ev_find(e, key);

        if (!it)
                fail_msg("evidence key \"%s\" missing", key);
        return it->value;
}

static const double targets[_FM_AUTOSCALE_METRIC_MAX] = {
        [GPU] = TGT_GPU,
        [QUEUE] = TGT_QUEUE,
        [INFLIGHT] = TGT_INFLIGHT,
        [LAT] = TGT_LAT,
};

/*
 * The configuration most tests start from: GPU utilisation at target 0.5,
 * a wide range, no windows, no cold start and step limits that never bind,
 * so each test turns on only what it is about.
 */
static struct fm_autoscale_config base_cfg(void)
{
        struct fm_autoscale_config cfg;

        fm_autoscale_config_default(&cfg);
        for (unsigned m = 0; m < _FM_AUTOSCALE_METRIC_MAX; m++)
                cfg.metric[m] = (struct fm_autoscale_metric_config){.enabled = m == GPU,
                                                                    .target = targets[m]};
        cfg.min_replicas = 1;
        cfg.max_replicas = 1000;
        cfg.down_window = 0;
        cfg.up_window = 0;
        cfg.up = (struct fm_autoscale_step){.percent = 10000, .pods = 1000, .period = S(15)};
        cfg.down = (struct fm_autoscale_step){.percent = 100, .pods = 0, .period = S(15)};
        cfg.cold_start = 0;
        assert_int_equal(fm_autoscale_config_validate(&cfg), 0);
        return cfg;
}

struct world {
        struct fm_autoscale_config cfg;
        struct fm_autoscale_state st;
        struct fm_autoscale_instance inst[MAX_INST];
        struct fm_autoscale_input in;
        unsigned actions, ups, downs, reversals;
        int last_dir;
};

static void world_init(struct world *w, const struct fm_autoscale_config *cfg, uint32_t current)
{
        memset(w, 0, sizeof(*w));
        w->cfg = *cfg;
        fm_autoscale_state_init(&w->st);
        w->in.current = current;
        w->in.instances = w->inst;
}

/*
 * Describes the fleet: `with` ready instances reporting ratio × target for
 * each metric whose ratio[m] is not NaN, `missing` ready instances
 * reporting nothing, `unready` instances not ready (reporting nothing).
 * ratio[LAT] is the deployment-level latency (NaN: none).
 */
static void world_fleet(struct world *w, uint32_t with, uint32_t missing, uint32_t unready,
                        const double ratio[_FM_AUTOSCALE_METRIC_MAX])
{
        size_t n = 0;

        assert_true(with + missing + unready <= MAX_INST);
        for (uint32_t i = 0; i < with + missing + unready; i++, n++) {
                struct fm_autoscale_instance *x = &w->inst[n];

                memset(x, 0, sizeof(*x));
                x->ready = i < with + missing;
                if (i >= with)
                        continue;
                for (unsigned m = 0; m < FM_AUTOSCALE_PER_INSTANCE_METRICS; m++) {
                        if (isnan(ratio[m]))
                                continue;
                        x->has[m] = true;
                        x->value[m] = ratio[m] * targets[m];
                }
        }
        w->in.n_instances = n;
        w->in.has_latency = !isnan(ratio[LAT]);
        w->in.latency = w->in.has_latency ? ratio[LAT] * TGT_LAT : 0.0;
}

/* All `ready` instances report GPU at ratio × target; `unready` more are starting. */
static void world_gpu(struct world *w, uint32_t ready, uint32_t unready, double ratio)
{
        const double r[_FM_AUTOSCALE_METRIC_MAX] = {ratio, MISSING, MISSING, MISSING};

        world_fleet(w, ready, 0, unready, r);
}

/* Decides at t and, as the caller would, carries out an action: current becomes desired. */
static struct fm_autoscale_decision world_step(struct world *w, fm_ms t)
{
        struct fm_autoscale_decision d;
        int r = fm_autoscale_decide(&w->cfg, &w->st, &w->in, t, &d);

        if (r < 0)
                fail_msg("fm_autoscale_decide: %s", strerror(-r));
        assert_int_equal(r, d.act ? 1 : 0);
        assert_int_equal(d.current, w->in.current);
        assert_non_null(d.reason);
        assert_true(d.evidence.n <= FM_EVIDENCE_MAX);
        if (!d.act) {
                assert_int_equal(d.desired, d.current);
                return d;
        }
        assert_int_not_equal(d.desired, d.current);
        int dir = d.desired > d.current ? 1 : -1;
        w->actions++;
        if (dir > 0)
                w->ups++;
        else
                w->downs++;
        if (w->last_dir != 0 && dir != w->last_dir)
                w->reversals++;
        w->last_dir = dir;
        w->in.current = d.desired;
        return d;
}

static void expect(const struct fm_autoscale_decision *d, const char *name, bool act,
                   uint32_t desired, const char *reason)
{
        if (d->act != act || d->desired != desired || strcmp(d->reason, reason) != 0)
                fail_msg("%s: got act=%d desired=%u reason=%s, expected act=%d desired=%u "
                         "reason=%s",
                         name, d->act, d->desired, d->reason, act, desired, reason);
}

/* ---- the HPA's proportional rule, tolerance, missing and not-ready ---- */

struct hpa_row {
        const char *name;
        uint32_t current;
        uint32_t with;    /* ready instances with a value */
        double ratio;     /* their value / target */
        uint32_t missing; /* ready, no value */
        uint32_t unready;
        bool act;
        uint32_t desired;
        const char *reason;
        double want_ratio; /* the gpu_util_ratio evidence; NaN: not checked / absent */
};

/* clang-format off */
static const struct hpa_row hpa_rows[] = {
        /* The documentation's examples. */
        {"3 replicas at 200% double", 3, 3, 2.0, 0, 0, true, 6, "scale_up", 2.0},
        {"4 replicas at 50% halve", 4, 4, 0.5, 0, 0, true, 2, "scale_down", 0.5},
        {"1 replica at 105%: within tolerance", 1, 1, 1.05, 0, 0, false, 1, "within_tolerance", 1.05},
        /* Just above and below the tolerance band (0.1). */
        {"ratio 1.11 scales up", 10, 10, 1.11, 0, 0, true, 12, "scale_up", 1.11},
        {"ratio 1.10: within tolerance", 10, 10, 1.10, 0, 0, false, 10, "within_tolerance", 1.1},
        {"ratio 1.09: within tolerance", 10, 10, 1.09, 0, 0, false, 10, "within_tolerance", 1.09},
        {"ratio 0.91: within tolerance", 10, 10, 0.91, 0, 0, false, 10, "within_tolerance", 0.91},
        {"ratio 0.90: within tolerance", 10, 10, 0.90, 0, 0, false, 10, "within_tolerance", 0.9},
        {"ratio 0.89 scales down", 10, 10, 0.89, 0, 0, true, 9, "scale_down", 0.89},
        {"exactly at target", 5, 5, 1.0, 0, 0, false, 5, "within_tolerance", 1.0},
        /* Ready instances without a value: 0 % on a scale-up ... */
        {"missing at 0% on scale-up", 3, 2, 2.0, 1, 0, true, 4, "scale_up", 4.0 / 3.0},
        {"missing at 0%: within tolerance", 3, 2, 1.6, 1, 0, false, 3, "within_tolerance", 3.2 / 3.0},
        {"missing at 0%: reversed", 3, 1, 1.5, 2, 0, false, 3, "direction_reversed", 0.5},
        /* ... and 100 % of target on a scale-down. */
        {"missing at 100% on scale-down", 4, 2, 0.5, 2, 0, true, 3, "scale_down", 0.75},
        {"missing at 100%: within tolerance", 4, 1, 0.7, 3, 0, false, 4, "within_tolerance", 0.925},
        /* Instances not ready: 0 % on a scale-up, set aside on a scale-down. */
        {"not ready at 0% on scale-up", 3, 2, 2.4, 0, 1, true, 5, "scale_up", 1.6},
        {"not ready at 0%: within tolerance", 4, 2, 2.0, 0, 2, false, 4, "within_tolerance", 1.0},
        {"not ready at 0%: reversed", 4, 2, 1.5, 0, 2, false, 4, "direction_reversed", 0.75},
        {"not ready set aside on scale-down", 4, 2, 0.5, 0, 2, true, 1, "scale_down", 0.5},
        {"missing and not ready on scale-up", 6, 3, 3.0, 1, 2, true, 9, "scale_up", 9.0 / 6.0},
        /* Nothing to go on. */
        {"no ready instance with a value", 3, 0, 0.0, 1, 2, false, 3, "no_metrics", NAN},
        {"no instance at all", 3, 0, 0.0, 0, 0, false, 3, "no_metrics", NAN},
        /* A proposal of 0 is clamped to min. */
        {"idle fleet goes to min", 4, 4, 0.0, 0, 0, true, 1, "at_min", 0.0},
};
/* clang-format on */

static void test_hpa_rule(void **unused)
{
        (void)unused;
        static struct world w;
        struct fm_autoscale_config cfg = base_cfg();

        for (size_t i = 0; i < ARRAY_SIZE(hpa_rows); i++) {
                const struct hpa_row *row = &hpa_rows[i];
                const double r[_FM_AUTOSCALE_METRIC_MAX] = {row->ratio, MISSING, MISSING, MISSING};

                world_init(&w, &cfg, row->current);
                world_fleet(&w, row->with, row->missing, row->unready, r);
                struct fm_autoscale_decision d = world_step(&w, T0);
                expect(&d, row->name, row->act, row->desired, row->reason);
                if (!isnan(row->want_ratio))
                        assert_double_close(ev_value(&d.evidence, "gpu_util_ratio"),
                                            row->want_ratio);
                else
                        assert_null(ev_find(&d.evidence, "gpu_util_ratio"));
        }
}

static void test_hpa_evidence(void **unused)
{
        (void)unused;
        static struct world w;
        struct fm_autoscale_config cfg = base_cfg();

        world_init(&w, &cfg, 3);
        world_gpu(&w, 3, 0, 2.0);
        struct fm_autoscale_decision d = world_step(&w, T0);
        expect(&d, "3 at 200%", true, 6, "scale_up");
        assert_int_equal(d.recommendation, 6);
        assert_double_close(ev_value(&d.evidence, "current_replicas"), 3);
        assert_double_close(ev_value(&d.evidence, "ready_replicas"), 3);
        assert_double_close(ev_value(&d.evidence, "gpu_util_ratio"), 2.0);
        assert_double_close(ev_value(&d.evidence, "gpu_util_replicas"), 6);
        assert_double_close(ev_value(&d.evidence, "recommendation_replicas"), 6);
        assert_double_close(ev_value(&d.evidence, "window_max_replicas"), 6);
        assert_double_close(ev_value(&d.evidence, "up_limit_replicas"), 1003);
        assert_null(ev_find(&d.evidence, "window_min_replicas"));
        assert_null(ev_find(&d.evidence, "predicted_replicas"));
        assert_null(ev_find(&d.evidence, "affordable_replicas"));
        /* Order: the inputs first. */
        assert_string_equal(d.evidence.item[0].key, "current_replicas");
        assert_string_equal(d.evidence.item[1].key, "ready_replicas");
}

/* ---- several metrics ---------------------------------------------------- */

struct multi_row {
        const char *name;
        uint32_t current, ready, unready;
        bool enabled[_FM_AUTOSCALE_METRIC_MAX];
        double ratio[_FM_AUTOSCALE_METRIC_MAX]; /* NaN: no value */
        bool act;
        uint32_t desired;
        const char *reason;
};

#define ON_GQ                                                                                      \
        {                                                                                          \
                true, true, false, false                                                           \
        }
#define ON_ALL                                                                                     \
        {                                                                                          \
                true, true, true, true                                                             \
        }
#define ON_GL                                                                                      \
        {                                                                                          \
                true, false, false, true                                                           \
        }
#define ON_L                                                                                       \
        {                                                                                          \
                false, false, false, true                                                          \
        }

/* clang-format off */
static const struct multi_row multi_rows[] = {
        {"largest wins", 4, 4, 0, ON_GQ, {1.5, 2.0, MISSING, MISSING}, true, 8, "scale_up"},
        {"largest wins, other order", 4, 4, 0, ON_GQ, {2.0, 1.5, MISSING, MISSING}, true, 8, "scale_up"},
        {"within tolerance beats a scale-down", 4, 4, 0, ON_GQ, {1.05, 0.5, MISSING, MISSING}, false, 4, "within_tolerance"},
        {"both down: the larger", 4, 4, 0, ON_GQ, {0.5, 0.75, MISSING, MISSING}, true, 3, "scale_down"},
        {"four metrics, in-flight largest", 4, 4, 0, ON_ALL, {1.2, 0.5, 2.5, 1.5}, true, 10, "scale_up"},
        {"latency on ready count", 4, 4, 0, ON_L, {MISSING, MISSING, MISSING, 1.5}, true, 6, "scale_up"},
        {"latency just above tolerance", 10, 10, 0, ON_L, {MISSING, MISSING, MISSING, 1.11}, true, 12, "scale_up"},
        {"latency just inside tolerance", 10, 10, 0, ON_L, {MISSING, MISSING, MISSING, 1.09}, false, 10, "within_tolerance"},
        {"latency, instances starting", 4, 2, 2, ON_L, {MISSING, MISSING, MISSING, 2.0}, false, 4, "no_change"},
        {"latency, no ready instance", 4, 0, 4, ON_L, {MISSING, MISSING, MISSING, 2.0}, false, 4, "no_metrics"},
        {"latency missing", 4, 4, 0, ON_L, {MISSING, MISSING, MISSING, MISSING}, false, 4, "no_metrics"},
        {"one missing, other down: hold", 4, 4, 0, ON_GL, {0.5, MISSING, MISSING, MISSING}, false, 4, "metrics_missing"},
        {"one missing, other up: scale", 4, 4, 0, ON_GL, {2.0, MISSING, MISSING, MISSING}, true, 8, "scale_up"},
        {"one missing, other at target", 4, 4, 0, ON_GL, {1.0, MISSING, MISSING, MISSING}, false, 4, "within_tolerance"},
        {"disabled metric ignored", 4, 4, 0, ON_GQ, {0.5, 0.5, 9.0, 9.0}, true, 2, "scale_down"},
};
/* clang-format on */

static void test_multi_metric(void **unused)
{
        (void)unused;
        static struct world w;

        for (size_t i = 0; i < ARRAY_SIZE(multi_rows); i++) {
                const struct multi_row *row = &multi_rows[i];
                struct fm_autoscale_config cfg = base_cfg();

                for (unsigned m = 0; m < _FM_AUTOSCALE_METRIC_MAX; m++)
                        cfg.metric[m].enabled = row->enabled[m];
                assert_int_equal(fm_autoscale_config_validate(&cfg), 0);
                world_init(&w, &cfg, row->current);
                world_fleet(&w, row->ready, 0, row->unready, row->ratio);
                struct fm_autoscale_decision d = world_step(&w, T0);
                expect(&d, row->name, row->act, row->desired, row->reason);
                for (unsigned m = 0; m < _FM_AUTOSCALE_METRIC_MAX; m++) {
                        char key[32];
                        (void)snprintf(key, sizeof(key), "%s_ratio", fm_autoscale_metric_name(m));
                        const struct fm_evidence_item *it = ev_find(&d.evidence, key);
                        bool usable = row->enabled[m] && !isnan(row->ratio[m]) && row->ready > 0;
                        if (usable != (it != NULL))
                                fail_msg("%s: %s evidence %s", row->name, key,
                                         it ? "present" : "absent");
                        if (it)
                                assert_double_close(it->value, row->ratio[m]);
                }
        }
}

/* ---- stabilisation ------------------------------------------------------- */

/*
 * The instances stay 10 ready ones, so a ratio r recommends ceil(10 r)
 * whatever the current count; the steps are (time, ratio, expected).
 */
struct seq_step {
        int t_s;
        double ratio;
        bool act;
        uint32_t desired;
        const char *reason;
        int window_max; /* -1: not checked */
};

static void run_seq(struct world *w, const char *name, const struct seq_step *steps, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                char what[96];

                world_gpu(w, 10, 0, steps[i].ratio);
                struct fm_autoscale_decision d = world_step(w, T0 + S(steps[i].t_s));
                (void)snprintf(what, sizeof(what), "%s, step %zu (t=%ds)", name, i, steps[i].t_s);
                expect(&d, what, steps[i].act, steps[i].desired, steps[i].reason);
                if (steps[i].window_max >= 0)
                        assert_double_close(ev_value(&d.evidence, "window_max_replicas"),
                                            steps[i].window_max);
        }
}

static void test_scale_down_stabilisation(void **unused)
{
        (void)unused;
        static struct world w;
        struct fm_autoscale_config cfg = base_cfg();
        static const struct seq_step steps[] = {
                {0, 1.0, false, 10, "within_tolerance", 10},
                {60, 0.5, false, 10, "stabilised", 10},  /* a dip: held */
                {120, 0.8, false, 10, "stabilised", 10}, /* still inside the window */
                {180, 0.4, false, 10, "stabilised", 10},
                {299, 0.4, false, 10, "stabilised", 10}, /* t=0 still within 300 s */
                {300, 0.4, true, 8, "scale_down", 8},    /* t=0 out: highest left is 8 */
                {360, 0.4, false, 8, "stabilised", 8},
                {419, 0.4, false, 8, "stabilised", 8},
                {420, 0.4, true, 4, "scale_down", 4}, /* t=120 out */
                {480, 0.4, false, 4, "no_change", 4}, /* 0.4 of 10 is the current 4 */
        };

        cfg.down_window = S(300);
        world_init(&w, &cfg, 10);
        run_seq(&w, "scale-down window", steps, ARRAY_SIZE(steps));
}

static void test_scale_down_window_seeded(void **unused)
{
        (void)unused;
        static struct world w;
        struct fm_autoscale_config cfg = base_cfg();
        /* A fresh state (controller restart) does not scale down before a window has passed. */
        static const struct seq_step steps[] = {
                {0, 0.3, false, 10, "stabilised", 10},
                {299, 0.3, false, 10, "stabilised", 10},
                {300, 0.3, true, 3, "scale_down", 3},
        };

        cfg.down_window = S(300);
        world_init(&w, &cfg, 10);
        run_seq(&w, "seeded window", steps, ARRAY_SIZE(steps));
}

static void test_scale_up_stabilisation(void **unused)
{
        (void)unused;
        static struct world w;
        struct fm_autoscale_config cfg = base_cfg();
        /* Default: scale-up window 0, immediate. */
        static const struct seq_step immediate[] = {
                {0, 1.0, false, 10, "within_tolerance", -1},
                {15, 2.0, true, 20, "scale_up", -1},
        };
        /* A 60 s window: only a rise that lasts the window; to its lowest recommendation. */
        /* clang-format off */
        static const struct seq_step windowed[] = {
                {0, 1.0, false, 10, "within_tolerance", -1},
                {15, 2.0, false, 10, "stabilised", -1},
                {30, 1.5, false, 10, "stabilised", -1},
                {59, 2.0, false, 10, "stabilised", -1},
                {60, 2.0, true, 15, "scale_up", -1}, /* t=0 out; lowest left is 15 */
                {90, 2.0, true, 20, "scale_up", -1}, /* t=30 out */
        };
        /* clang-format on */

        world_init(&w, &cfg, 10);
        run_seq(&w, "scale-up window 0", immediate, ARRAY_SIZE(immediate));

        cfg.up_window = S(60);
        cfg.down_window = S(300);
        world_init(&w, &cfg, 10);
        run_seq(&w, "scale-up window 60 s", windowed, ARRAY_SIZE(windowed));
}

/* ---- step limits, min, max, cost ----------------------------------------- */

struct limit_row {
        const char *name;
        uint32_t current;
        double ratio; /* of 10 ready instances: recommends ceil(10 ratio) */
        uint32_t min, max;
        struct fm_autoscale_step up, down;
        double cost, budget;
        bool act;
        uint32_t desired;
        const char *reason;
};

/* clang-format off */
#define UP_WIDE {10000, 1000, S(15)}
#define UP_HPA {100, 4, S(15)}
#define DOWN_ALL {100, 0, S(15)}

static const struct limit_row limit_rows[] = {
        /* Scale-up: 100 % or 4 instances per 15 s, the larger. */
        {"pods policy larger",      2, 2.0, 1, 1000, UP_HPA, DOWN_ALL, 0, 0, true, 6, "step_limited"},
        {"percent policy larger",  10, 4.0, 1, 1000, UP_HPA, DOWN_ALL, 0, 0, true, 20, "step_limited"},
        {"just inside the limit",  10, 2.0, 1, 1000, UP_HPA, DOWN_ALL, 0, 0, true, 20, "scale_up"},
        {"pods only",              10, 4.0, 1, 1000, {0, 4, S(15)}, DOWN_ALL, 0, 0, true, 14, "step_limited"},
        {"percent rounds up",       3, 4.0, 1, 1000, {50, 0, S(15)}, DOWN_ALL, 0, 0, true, 5, "step_limited"},
        {"percent lets 1 grow",     1, 4.0, 1, 1000, {10, 0, S(15)}, DOWN_ALL, 0, 0, true, 2, "step_limited"},
        {"scale-up off",           10, 4.0, 1, 1000, {0, 0, S(15)}, DOWN_ALL, 0, 0, false, 10, "step_limited"},
        /* Scale-down. */
        {"down 100%",              10, 0.1, 1, 1000, UP_WIDE, DOWN_ALL, 0, 0, true, 1, "scale_down"},
        {"down 50%",               10, 0.1, 1, 1000, UP_WIDE, {50, 0, S(15)}, 0, 0, true, 5, "step_limited"},
        {"down percent floors",     5, 0.1, 1, 1000, UP_WIDE, {50, 0, S(15)}, 0, 0, true, 2, "step_limited"},
        {"down: pods allow more",  10, 0.1, 1, 1000, UP_WIDE, {10, 3, S(15)}, 0, 0, true, 7, "step_limited"},
        {"down: percent allows more", 10, 0.1, 1, 1000, UP_WIDE, {50, 3, S(15)}, 0, 0, true, 5, "step_limited"},
        {"scale-down off",         10, 0.1, 1, 1000, UP_WIDE, {0, 0, S(15)}, 0, 0, false, 10, "step_limited"},
        /* min and max. */
        {"max clamps a scale-up",   8, 2.0, 1, 10, UP_WIDE, DOWN_ALL, 0, 0, true, 10, "at_max"},
        {"at max: nothing to do",  10, 2.0, 1, 10, UP_WIDE, DOWN_ALL, 0, 0, false, 10, "at_max"},
        {"one below max",           9, 2.0, 1, 10, UP_WIDE, DOWN_ALL, 0, 0, true, 10, "at_max"},
        {"min clamps a scale-down", 5, 0.1, 3, 10, UP_WIDE, DOWN_ALL, 0, 0, true, 3, "at_min"},
        {"at min: nothing to do",   3, 0.1, 3, 10, UP_WIDE, DOWN_ALL, 0, 0, false, 3, "at_min"},
        {"step limit above min",   10, 0.1, 3, 10, UP_WIDE, {20, 0, S(15)}, 0, 0, true, 8, "step_limited"},
        {"max below step limit",    8, 4.0, 1, 10, UP_HPA, DOWN_ALL, 0, 0, true, 10, "at_max"},
        {"above max: down at once", 12, 1.0, 1, 10, UP_WIDE, {0, 0, S(15)}, 0, 0, true, 10, "at_max"},
        {"below min: up at once",   0, 1.0, 2, 10, {0, 0, S(15)}, DOWN_ALL, 0, 0, true, 2, "at_min"},
        /* Cost ceiling: 20 / 2.5 = 8 affordable. */
        {"cost ceiling clamps",     6, 1.2, 1, 20, UP_WIDE, DOWN_ALL, 2.5, 20.0, true, 8, "cost_ceiling"},
        {"cost ceiling blocks",     8, 1.2, 1, 20, UP_WIDE, DOWN_ALL, 2.5, 20.0, false, 8, "cost_ceiling"},
        {"under the cost ceiling",  6, 0.7, 1, 20, UP_WIDE, DOWN_ALL, 2.5, 20.0, true, 7, "scale_up"},
        {"over budget: down",      10, 1.0, 1, 20, UP_WIDE, DOWN_ALL, 2.5, 20.0, true, 8, "cost_ceiling"},
        {"0.3 / 0.1 affords 3",     2, 0.5, 1, 20, UP_WIDE, DOWN_ALL, 0.1, 0.3, true, 3, "cost_ceiling"},
        {"budget above max",        9, 2.0, 1, 10, UP_WIDE, DOWN_ALL, 1.0, 100.0, true, 10, "at_max"},
        {"cost 0: off",             9, 2.0, 1, 20, UP_WIDE, DOWN_ALL, 0.0, 1.0, true, 20, "scale_up"},
        {"budget 0: off",           9, 2.0, 1, 20, UP_WIDE, DOWN_ALL, 1.0, 0.0, true, 20, "scale_up"},
};
/* clang-format on */

static void test_limits(void **unused)
{
        (void)unused;
        static struct world w;

        for (size_t i = 0; i < ARRAY_SIZE(limit_rows); i++) {
                const struct limit_row *row = &limit_rows[i];
                struct fm_autoscale_config cfg = base_cfg();

                cfg.min_replicas = row->min;
                cfg.max_replicas = row->max;
                cfg.up = row->up;
                cfg.down = row->down;
                cfg.cost_per_instance_hour = row->cost;
                cfg.budget_per_hour = row->budget;
                if (fm_autoscale_config_validate(&cfg) != 0)
                        fail_msg("%s: config invalid", row->name);
                world_init(&w, &cfg, row->current);
                world_gpu(&w, 10, 0, row->ratio);
                struct fm_autoscale_decision d = world_step(&w, T0);
                expect(&d, row->name, row->act, row->desired, row->reason);
                if (row->cost > 0 && row->budget > 0)
                        assert_non_null(ev_find(&d.evidence, "affordable_replicas"));
        }
}

/* Changes made within the period count against it; once older, they no longer do. */
static void test_step_period(void **unused)
{
        (void)unused;
        static struct world w;
        struct fm_autoscale_config cfg = base_cfg();
        static const struct seq_step steps[] = {
                {0, 4.0, true, 20, "step_limited", -1},  /* 10 → max(14, 20) */
                {5, 4.0, false, 20, "step_limited", -1}, /* period began at 10: used up */
                {14, 4.0, false, 20, "step_limited", -1},
                {15, 4.0, true, 40, "scale_up", -1}, /* t=0 out of the period */
                {16, 0.1, true, 1, "scale_down", -1},
                {20, 8.0, true, 40, "step_limited", -1}, /* start = 1 - 20 + 39 = 20 → 40 */
        };

        cfg.up = (struct fm_autoscale_step){100, 4, S(15)};
        world_init(&w, &cfg, 10);
        run_seq(&w, "periods", steps, ARRAY_SIZE(steps));
}

/* ---- cold start ----------------------------------------------------------- */

static void test_cold_start(void **unused)
{
        (void)unused;
        static struct world w;
        struct fm_autoscale_config cfg = base_cfg();
        struct fm_autoscale_decision d;

        cfg.cold_start = S(120);
        cfg.up = (struct fm_autoscale_step){100, 4, S(15)};

        /* Held until the first scale-up's instances could be ready, then allowed. */
        world_init(&w, &cfg, 4);
        world_gpu(&w, 4, 0, 2.0);
        d = world_step(&w, T0);
        expect(&d, "first scale-up", true, 8, "scale_up");
        world_gpu(&w, 4, 4, 3.0); /* 4 starting: 12 / 8 = 1.5 → 12 */
        d = world_step(&w, T0 + S(30));
        expect(&d, "second within cold start", false, 8, "cold_start_pending");
        assert_int_equal(d.recommendation, 12);
        d = world_step(&w, T0 + S(119));
        expect(&d, "second just before ready_by", false, 8, "cold_start_pending");
        d = world_step(&w, T0 + S(120));
        expect(&d, "second at ready_by", true, 12, "scale_up");

        /* Ends early when the instances asked for are all ready. */
        world_init(&w, &cfg, 4);
        world_gpu(&w, 4, 0, 2.0);
        d = world_step(&w, T0);
        expect(&d, "first", true, 8, "scale_up");
        world_gpu(&w, 7, 1, 3.0);
        d = world_step(&w, T0 + S(60));
        expect(&d, "7 of 8 ready", false, 8, "cold_start_pending");
        world_gpu(&w, 8, 0, 1.5);
        d = world_step(&w, T0 + S(61));
        expect(&d, "8 of 8 ready", true, 12, "scale_up");

        /* Ends when the scale-up was not carried out (current below its target). */
        world_init(&w, &cfg, 4);
        world_gpu(&w, 4, 0, 2.0);
        d = world_step(&w, T0);
        expect(&d, "first", true, 8, "scale_up");
        w.in.current = 4; /* vetoed */
        d = world_step(&w, T0 + S(30));
        expect(&d, "after a veto", true, 8, "scale_up");

        /* A scale-down is not held, and ends the hold. */
        world_init(&w, &cfg, 4);
        world_gpu(&w, 4, 0, 2.0);
        d = world_step(&w, T0);
        expect(&d, "first", true, 8, "scale_up");
        world_gpu(&w, 4, 4, 0.25);
        d = world_step(&w, T0 + S(30));
        expect(&d, "scale-down while starting", true, 1, "scale_down");
        world_gpu(&w, 1, 0, 3.0);
        d = world_step(&w, T0 + S(31));
        expect(&d, "scale-up after it", true, 3, "scale_up");
}

/* ---- predictive mode ------------------------------------------------------- */

/*
 * A small fleet simulation: demand (in instances at target) comes as a
 * total queue shared by the ready instances; a new instance becomes ready
 * cold_start after it was asked for.
 */
struct sim {
        struct world w;
        fm_ms ready_at[MAX_INST];
        uint32_t n;
};

static void sim_init(struct sim *s, const struct fm_autoscale_config *cfg, uint32_t n)
{
        world_init(&s->w, cfg, n);
        s->n = n;
        for (uint32_t i = 0; i < n; i++)
                s->ready_at[i] = 0;
}

/* One tick at t with the given demand; returns the decision. */
static struct fm_autoscale_decision sim_tick(struct sim *s, fm_ms t, double demand, bool data)
{
        uint32_t ready = 0;

        for (uint32_t i = 0; i < s->n; i++)
                if (s->ready_at[i] <= t)
                        ready++;
        for (uint32_t i = 0; i < s->n; i++) {
                struct fm_autoscale_instance *x = &s->w.inst[i];

                memset(x, 0, sizeof(*x));
                x->ready = s->ready_at[i] <= t;
                if (!x->ready || !data)
                        continue;
                for (unsigned m = 0; m < FM_AUTOSCALE_PER_INSTANCE_METRICS; m++) {
                        x->has[m] = true;
                        x->value[m] = demand * targets[m] / ready;
                }
        }
        s->w.in.n_instances = s->n;
        s->w.in.has_latency = false;

        struct fm_autoscale_decision d = world_step(&s->w, t);
        if (d.act) {
                assert_true(d.desired <= MAX_INST);
                for (uint32_t i = s->n; i < d.desired; i++)
                        s->ready_at[i] = t + s->w.cfg.cold_start;
                s->n = d.desired;
        }
        return d;
}

static double ready_capacity(const struct sim *s, fm_ms t)
{
        double c = 0;

        for (uint32_t i = 0; i < s->n; i++)
                if (s->ready_at[i] <= t)
                        c += 1.0;
        return c;
}

static void test_predictive_ramp(void **unused)
{
        (void)unused;
        static struct sim reactive, predictive;
        struct fm_autoscale_config cfg = base_cfg();
        double short_r = 0, short_p = 0;
        int first_r = -1, first_p = -1, ahead = 0, behind = 0;

        cfg.metric[GPU].enabled = false;
        cfg.metric[QUEUE].enabled = true;
        cfg.cold_start = S(60);
        cfg.up = (struct fm_autoscale_step){100, 4, S(15)};
        cfg.down_window = S(300);
        sim_init(&reactive, &cfg, 2);
        cfg.predictive = true;
        assert_int_equal(fm_autoscale_config_validate(&cfg), 0);
        sim_init(&predictive, &cfg, 2);

        /* Demand 2 instances, rising by one every 30 s, for 20 minutes. */
        for (int k = 0; k <= 80; k++) {
                fm_ms t = T0 + S(15 * k);
                double demand = 2.0 + 15.0 * k / 30.0;

                sim_tick(&reactive, t, demand, true);
                struct fm_autoscale_decision d = sim_tick(&predictive, t, demand, true);

                /* Never below the reactive recommendation. */
                assert_true(d.recommendation >= ev_value(&d.evidence, "recommendation_replicas"));
                /* Once Holt has settled on the ramp it forecasts demand + 2 (60 s at 1 per 30 s).
                 */
                if (k >= 40)
                        assert_true(fabs(ev_value(&d.evidence, "predicted_replicas") -
                                         (demand + 2.0)) < 0.05);
                if (predictive.n > reactive.n)
                        ahead++;
                else if (predictive.n < reactive.n)
                        behind++;
                if (first_r < 0 && reactive.n >= 20)
                        first_r = k;
                if (first_p < 0 && predictive.n >= 20)
                        first_p = k;
                short_r += fmax(0.0, demand - ready_capacity(&reactive, t));
                short_p += fmax(0.0, demand - ready_capacity(&predictive, t));
        }
        /*
         * The runs differ in history, and the tolerance band can let the
         * reactive one step over the predictive one for a tick or two; over
         * the ramp the predictive one is ahead nearly all the time, reaches
         * 20 instances two minutes earlier and leaves less than half the
         * shortfall (demand over ready capacity).
         */
        assert_true(first_p >= 0 && first_r >= 0);
        assert_true(first_p + 4 <= first_r);
        assert_true(ahead >= 60);
        assert_true(behind <= 5);
        assert_true(short_p < 0.5 * short_r);
}

/* Flat demand: the forecast adds nothing and the predictive mode behaves as the reactive one. */
static void test_predictive_flat(void **unused)
{
        (void)unused;
        static struct sim s;
        struct fm_autoscale_config cfg = base_cfg();

        cfg.cold_start = S(60);
        cfg.predictive = true;
        cfg.down_window = S(300);
        sim_init(&s, &cfg, 4);
        for (int k = 0; k < 120; k++) {
                struct fm_autoscale_decision d = sim_tick(&s, T0 + S(15 * k), 4.0, true);
                expect(&d, "flat demand", false, 4, "within_tolerance");
                assert_int_equal(d.recommendation, 4);
        }
}

/* ---- flapping input -------------------------------------------------------- */

enum flap_kind {
        FLAP_PER_INSTANCE, /* each ready instance reports 2× / 0.5× target, alternately */
        FLAP_DEMAND,       /* total demand alternates 2× / 0.5× of the starting fleet */
        FLAP_MISSING,      /* low demand alternates with no data at all */
        FLAP_NEAR_BAND,    /* alternates just outside either side of the tolerance band */
};

struct flap_row {
        const char *name;
        enum flap_kind kind;
        bool predictive;
        fm_ms tick;
        bool no_down_window; /* control: without it the same input must oscillate */
        unsigned max_actions;
};

static const struct flap_row flap_rows[] = {
        {"per instance 2x/0.5x", FLAP_PER_INSTANCE, false, S(15), false, 2},
        {"per instance 2x/0.5x, predictive", FLAP_PER_INSTANCE, true, S(15), false, 2},
        {"per instance 2x/0.5x, 1 s ticks", FLAP_PER_INSTANCE, false, S(1), false, 2},
        {"demand 2x/0.5x", FLAP_DEMAND, false, S(15), false, 2},
        {"demand 2x/0.5x, predictive", FLAP_DEMAND, true, S(15), false, 2},
        {"low / missing", FLAP_MISSING, false, S(15), false, 2},
        {"1.15x / 0.85x", FLAP_NEAR_BAND, false, S(15), false, 2},
        {"control: demand 2x/0.5x, no down window", FLAP_DEMAND, false, S(15), true, 0},
};

static void test_flapping(void **unused)
{
        (void)unused;
        static struct sim s;

        for (size_t i = 0; i < ARRAY_SIZE(flap_rows); i++) {
                const struct flap_row *row = &flap_rows[i];
                struct fm_autoscale_config cfg;

                /* Defaults: down window 300 s, cold start 120 s, 100 % or 4 per 15 s. */
                fm_autoscale_config_default(&cfg);
                cfg.metric[GPU].target = TGT_GPU;
                cfg.predictive = row->predictive;
                if (row->no_down_window)
                        cfg.down_window = 0;
                sim_init(&s, &cfg, 4);

                for (fm_ms t = 0; t <= S(30 * 60); t += row->tick) {
                        bool high = (t / row->tick) % 2 == 0;
                        double demand = 0;
                        bool data = true;

                        switch (row->kind) {
                        case FLAP_PER_INSTANCE:
                                demand = (high ? 2.0 : 0.5) * ready_capacity(&s, T0 + t);
                                break;
                        case FLAP_DEMAND:
                                demand = (high ? 2.0 : 0.5) * 4;
                                break;
                        case FLAP_MISSING:
                                demand = 1.0;
                                data = high;
                                break;
                        case FLAP_NEAR_BAND:
                                demand = (high ? 1.15 : 0.85) * 4;
                                break;
                        }
                        sim_tick(&s, T0 + t, demand, data);
                }
                if (row->no_down_window) {
                        if (s.w.reversals < 10)
                                fail_msg("%s: only %u reversals", row->name, s.w.reversals);
                        continue;
                }
                if (s.w.actions > row->max_actions || s.w.reversals > 0)
                        fail_msg("%s: %u actions (%u up, %u down), %u reversals", row->name,
                                 s.w.actions, s.w.ups, s.w.downs, s.w.reversals);
        }
}

/* ---- bounded memory -------------------------------------------------------- */

/*
 * 150 strictly falling recommendations, one a second, inside a 300 s
 * window: more than the queue holds. The window maximum must never be
 * below the exact one (merging only delays a scale-down), and the decision
 * never scales below what the exact window allows.
 */
static void test_window_cap(void **unused)
{
        (void)unused;
        static struct world w;
        static uint32_t hist_rec[600];
        static fm_ms hist_at[600];
        struct fm_autoscale_config cfg = base_cfg();
        const double none[_FM_AUTOSCALE_METRIC_MAX] = {MISSING, MISSING, MISSING, MISSING};
        size_t nh = 0;
        bool hit_cap = false;

        cfg.metric[GPU].enabled = false;
        cfg.metric[LAT].enabled = true;
        cfg.max_replicas = 1000;
        cfg.down_window = S(300);
        world_init(&w, &cfg, 400);
        world_fleet(&w, 400, 0, 0, none);
        hist_rec[nh] = 400;
        hist_at[nh++] = T0;

        for (int k = 0; k < 500; k++) {
                fm_ms t = T0 + S(k);
                uint32_t rec = k < 150 ? 340 - (uint32_t)k : 100;
                uint32_t exact = 0;

                w.in.has_latency = true;
                w.in.latency = rec / 400.0 * TGT_LAT;
                struct fm_autoscale_decision d = world_step(&w, t);
                assert_int_equal(ev_value(&d.evidence, "recommendation_replicas"), rec);
                hist_rec[nh] = rec;
                hist_at[nh++] = t;
                for (size_t j = 0; j < nh; j++)
                        if (hist_at[j] > t - cfg.down_window && hist_rec[j] > exact)
                                exact = hist_rec[j];
                assert_true(ev_value(&d.evidence, "window_max_replicas") >= exact);
                assert_true(d.desired >= (exact < d.current ? exact : d.current));
                assert_true(w.st.down.n <= FM_AUTOSCALE_RECS_MAX);
                if (w.st.down.n == FM_AUTOSCALE_RECS_MAX)
                        hit_cap = true;
        }
        assert_true(hit_cap);
        /* In the end all falling entries are out and the fleet is at the flat recommendation. */
        assert_int_equal(w.in.current, 100);
}

/* Alternating actions fill the event ring; the period's sums stay exact. */
static void test_event_cap(void **unused)
{
        (void)unused;
        static struct world w;
        struct fm_autoscale_config cfg = base_cfg();
        struct fm_autoscale_decision d;

        cfg.tolerance = 0.0;
        cfg.up.period = S(1800);
        cfg.down.period = S(1800);
        world_init(&w, &cfg, 10);
        for (int k = 0; k < 3 * FM_AUTOSCALE_EVENTS_MAX; k++) {
                world_gpu(&w, 10, 0, k % 2 == 0 ? 1.5 : 0.5);
                d = world_step(&w, T0 + S(k));
                assert_true(d.act);
                assert_true(w.st.n_events <= FM_AUTOSCALE_EVENTS_MAX);
        }
        assert_int_equal(w.st.n_events, FM_AUTOSCALE_EVENTS_MAX);
        assert_int_equal(w.in.current, 5);
        /* The period began at 10: 4 more allowed on top of that, whatever came between. */
        cfg.up = (struct fm_autoscale_step){0, 4, S(1800)};
        w.cfg = cfg;
        world_gpu(&w, 10, 0, 1.5);
        d = world_step(&w, T0 + S(1000));
        expect(&d, "after many events", true, 14, "step_limited");
        assert_double_close(ev_value(&d.evidence, "up_limit_replicas"), 14);
}

/* With everything on, the evidence fits exactly and nothing is dropped. */
static void test_evidence_full(void **unused)
{
        (void)unused;
        static struct world w;
        struct fm_autoscale_config cfg = base_cfg();
        const double r[_FM_AUTOSCALE_METRIC_MAX] = {1.2, 1.3, 1.4, 1.5};
        static const char *const keys[] = {
                "current_replicas",    "ready_replicas",          "gpu_util_ratio",
                "gpu_util_replicas",   "queue_depth_ratio",       "queue_depth_replicas",
                "in_flight_ratio",     "in_flight_replicas",      "latency_ratio",
                "latency_replicas",    "recommendation_replicas", "predicted_replicas",
                "window_max_replicas", "window_min_replicas",     "up_limit_replicas",
                "affordable_replicas",
        };

        for (unsigned m = 0; m < _FM_AUTOSCALE_METRIC_MAX; m++)
                cfg.metric[m].enabled = true;
        cfg.predictive = true;
        cfg.cold_start = S(60);
        cfg.up_window = S(30);
        cfg.cost_per_instance_hour = 1.0;
        cfg.budget_per_hour = 100.0;
        assert_int_equal(fm_autoscale_config_validate(&cfg), 0);
        world_init(&w, &cfg, 10);
        world_fleet(&w, 10, 0, 0, r);
        struct fm_autoscale_decision d = world_step(&w, T0);
        expect(&d, "all metrics", true, 15, "scale_up");
        assert_int_equal(d.evidence.n, ARRAY_SIZE(keys));
        for (size_t i = 0; i < ARRAY_SIZE(keys); i++)
                assert_string_equal(d.evidence.item[i].key, keys[i]);
}

/* ---- validation ------------------------------------------------------------ */

struct cfg_row {
        const char *name;
        void (*mutate)(struct fm_autoscale_config *cfg);
};

#define CFG_ROW(n, ...)                                                                            \
        static void mut_##n(struct fm_autoscale_config *c)                                         \
        {                                                                                          \
                __VA_ARGS__;                                                                       \
        }
CFG_ROW(min0, c->min_replicas = 0)
CFG_ROW(max_lt_min, (c->min_replicas = 5, c->max_replicas = 4))
CFG_ROW(max_big, c->max_replicas = FM_AUTOSCALE_REPLICAS_MAX + 1)
CFG_ROW(no_metric, c->metric[GPU].enabled = false)
CFG_ROW(target0, c->metric[GPU].target = 0.0)
CFG_ROW(target_neg, c->metric[QUEUE] = (struct fm_autoscale_metric_config){true, -1.0})
CFG_ROW(target_nan, c->metric[LAT] = (struct fm_autoscale_metric_config){true, NAN})
CFG_ROW(target_inf, c->metric[INFLIGHT] = (struct fm_autoscale_metric_config){true, INFINITY})
CFG_ROW(gpu_over_1, c->metric[GPU].target = 1.5)
CFG_ROW(tol_neg, c->tolerance = -0.01)
CFG_ROW(tol_1, c->tolerance = 1.0)
CFG_ROW(tol_nan, c->tolerance = NAN)
CFG_ROW(up_window_neg, c->up_window = -1)
CFG_ROW(down_window_big, c->down_window = FM_AUTOSCALE_WINDOW_MAX + 1)
CFG_ROW(cold_start_neg, c->cold_start = -1)
CFG_ROW(cold_start_big, c->cold_start = FM_AUTOSCALE_WINDOW_MAX + 1)
CFG_ROW(up_period0, c->up.period = 0)
CFG_ROW(down_period_big, c->down.period = FM_AUTOSCALE_PERIOD_MAX + 1)
CFG_ROW(up_percent_big, c->up.percent = FM_AUTOSCALE_PERCENT_MAX + 1)
CFG_ROW(down_percent_101, c->down.percent = 101)
CFG_ROW(up_pods_big, c->up.pods = FM_AUTOSCALE_REPLICAS_MAX + 1)
CFG_ROW(cost_neg, c->cost_per_instance_hour = -1.0)
CFG_ROW(budget_inf, c->budget_per_hour = INFINITY)
CFG_ROW(budget_short,
        (c->min_replicas = 3, c->cost_per_instance_hour = 1.0, c->budget_per_hour = 2.5))
CFG_ROW(predictive_no_cold, (c->predictive = true, c->cold_start = 0))
CFG_ROW(alpha0, c->holt_alpha = 0.0)
CFG_ROW(beta_big, c->holt_beta = 1.5)

static const struct cfg_row cfg_rows[] = {
        {"min 0", mut_min0},
        {"max below min", mut_max_lt_min},
        {"max over the limit", mut_max_big},
        {"no metric enabled", mut_no_metric},
        {"target 0", mut_target0},
        {"target negative", mut_target_neg},
        {"target NaN", mut_target_nan},
        {"target infinite", mut_target_inf},
        {"GPU target over 1", mut_gpu_over_1},
        {"tolerance negative", mut_tol_neg},
        {"tolerance 1", mut_tol_1},
        {"tolerance NaN", mut_tol_nan},
        {"up window negative", mut_up_window_neg},
        {"down window over an hour", mut_down_window_big},
        {"cold start negative", mut_cold_start_neg},
        {"cold start over an hour", mut_cold_start_big},
        {"up period 0", mut_up_period0},
        {"down period over 30 min", mut_down_period_big},
        {"up percent over the limit", mut_up_percent_big},
        {"down percent over 100", mut_down_percent_101},
        {"up pods over the limit", mut_up_pods_big},
        {"cost negative", mut_cost_neg},
        {"budget infinite", mut_budget_inf},
        {"budget cannot pay for min", mut_budget_short},
        {"predictive without cold start", mut_predictive_no_cold},
        {"alpha 0", mut_alpha0},
        {"beta over 1", mut_beta_big},
};

static void test_config_validate(void **unused)
{
        (void)unused;
        struct fm_autoscale_config cfg;

        fm_autoscale_config_default(&cfg);
        assert_int_equal(fm_autoscale_config_validate(&cfg), 0);
        assert_int_equal(cfg.min_replicas, 1);
        assert_double_close(cfg.tolerance, 0.1);
        assert_int_equal(cfg.up_window, 0);
        assert_int_equal(cfg.down_window, S(300));
        assert_int_equal(cfg.up.percent, 100);
        assert_int_equal(cfg.up.pods, 4);
        assert_int_equal(cfg.up.period, S(15));
        assert_int_equal(cfg.down.percent, 100);

        for (size_t i = 0; i < ARRAY_SIZE(cfg_rows); i++) {
                struct fm_autoscale_state st, st0;
                struct fm_autoscale_decision d, d0;
                struct fm_autoscale_input in = {.current = 2};

                fm_autoscale_config_default(&cfg);
                cfg_rows[i].mutate(&cfg);
                if (fm_autoscale_config_validate(&cfg) != -EINVAL)
                        fail_msg("%s: accepted", cfg_rows[i].name);

                /* decide refuses it too and touches nothing. */
                fm_autoscale_state_init(&st);
                memcpy(&st0, &st, sizeof(st));
                memset(&d, 0xa5, sizeof(d));
                memcpy(&d0, &d, sizeof(d));
                assert_int_equal(fm_autoscale_decide(&cfg, &st, &in, T0, &d), -EINVAL);
                assert_memory_equal(&st, &st0, sizeof(st));
                assert_memory_equal(&d, &d0, sizeof(d));
        }

        /* Edges that are valid. */
        fm_autoscale_config_default(&cfg);
        cfg.tolerance = 0.0;
        cfg.metric[GPU].target = 1.0;
        cfg.down.percent = 100;
        cfg.up = (struct fm_autoscale_step){0, 0, FM_AUTOSCALE_PERIOD_MAX};
        cfg.down_window = FM_AUTOSCALE_WINDOW_MAX;
        cfg.min_replicas = cfg.max_replicas = 3;
        cfg.cost_per_instance_hour = 1.0;
        cfg.budget_per_hour = 3.0;
        assert_int_equal(fm_autoscale_config_validate(&cfg), 0);
}

struct input_row {
        const char *name;
        uint32_t current;
        size_t n; /* instances used from the fixture */
        bool null_instances;
        double value; /* of instance 0, GPU */
        bool has_latency;
        double latency;
};

static const struct input_row input_rows[] = {
        {"current over the limit", FM_AUTOSCALE_REPLICAS_MAX + 1, 1, false, 0.5, false, 0},
        {"too many instances", 2, FM_AUTOSCALE_INSTANCES_MAX + 1, false, 0.5, false, 0},
        {"instances NULL", 2, 1, true, 0.5, false, 0},
        {"value NaN", 2, 1, false, NAN, false, 0},
        {"value negative", 2, 1, false, -0.1, false, 0},
        {"value infinite", 2, 1, false, INFINITY, false, 0},
        {"latency NaN", 2, 1, false, 0.5, true, NAN},
        {"latency negative", 2, 1, false, 0.5, true, -1.0},
};

static void test_input_validate(void **unused)
{
        (void)unused;
        struct fm_autoscale_config cfg = base_cfg();
        struct fm_autoscale_instance inst = {.ready = true, .has = {true}};

        for (size_t i = 0; i < ARRAY_SIZE(input_rows); i++) {
                const struct input_row *row = &input_rows[i];
                struct fm_autoscale_state st, st0;
                struct fm_autoscale_decision d, d0;
                struct fm_autoscale_input in = {
                        .current = row->current,
                        .instances = row->null_instances ? NULL : &inst,
                        .n_instances = row->n,
                        .has_latency = row->has_latency,
                        .latency = row->latency,
                };

                inst.value[GPU] = row->value;
                fm_autoscale_state_init(&st);
                memcpy(&st0, &st, sizeof(st));
                memset(&d, 0x5a, sizeof(d));
                memcpy(&d0, &d, sizeof(d));
                if (fm_autoscale_decide(&cfg, &st, &in, T0, &d) != -EINVAL)
                        fail_msg("%s: accepted", row->name);
                assert_memory_equal(&st, &st0, sizeof(st));
                assert_memory_equal(&d, &d0, sizeof(d));
        }

        /* A value of an instance without has[] is not looked at. */
        struct fm_autoscale_instance odd = {
                .ready = true, .has = {true, false}, .value = {0.5, NAN}};
        struct fm_autoscale_input in = {.current = 1, .instances = &odd, .n_instances = 1};
        struct fm_autoscale_state st;
        struct fm_autoscale_decision d;
        fm_autoscale_state_init(&st);
        assert_int_equal(fm_autoscale_decide(&cfg, &st, &in, T0, &d), 0);
        assert_string_equal(d.reason, "within_tolerance");
}

static void test_names(void **unused)
{
        (void)unused;
        assert_string_equal(fm_autoscale_metric_name(GPU), "gpu_util");
        assert_string_equal(fm_autoscale_metric_name(QUEUE), "queue_depth");
        assert_string_equal(fm_autoscale_metric_name(INFLIGHT), "in_flight");
        assert_string_equal(fm_autoscale_metric_name(LAT), "latency");
        assert_null(fm_autoscale_metric_name(_FM_AUTOSCALE_METRIC_MAX));
}

/* The clock going back neither crashes nor holds a scale-up longer than cold_start. */
static void test_clock_back(void **unused)
{
        (void)unused;
        static struct world w;
        struct fm_autoscale_config cfg = base_cfg();
        struct fm_autoscale_decision d;

        cfg.cold_start = S(120);
        cfg.down_window = S(300);
        world_init(&w, &cfg, 4);
        world_gpu(&w, 4, 0, 2.0);
        d = world_step(&w, T0 + S(3600));
        expect(&d, "first", true, 8, "scale_up");
        world_gpu(&w, 4, 4, 3.0);
        d = world_step(&w, T0); /* an hour back */
        expect(&d, "after the jump", true, 12, "scale_up");
        world_gpu(&w, 12, 0, 0.1);
        d = world_step(&w, T0 + S(10));
        expect(&d, "entries from before the jump stay in the window", false, 12, "stabilised");
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_names),
                cmocka_unit_test(test_hpa_rule),
                cmocka_unit_test(test_hpa_evidence),
                cmocka_unit_test(test_multi_metric),
                cmocka_unit_test(test_scale_down_stabilisation),
                cmocka_unit_test(test_scale_down_window_seeded),
                cmocka_unit_test(test_scale_up_stabilisation),
                cmocka_unit_test(test_limits),
                cmocka_unit_test(test_step_period),
                cmocka_unit_test(test_cold_start),
                cmocka_unit_test(test_predictive_ramp),
                cmocka_unit_test(test_predictive_flat),
                cmocka_unit_test(test_flapping),
                cmocka_unit_test(test_window_cap),
                cmocka_unit_test(test_event_cap),
                cmocka_unit_test(test_evidence_full),
                cmocka_unit_test(test_config_validate),
                cmocka_unit_test(test_input_validate),
                cmocka_unit_test(test_clock_back),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
