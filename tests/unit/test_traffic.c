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

#include "traffic.h"

/*
 * Times are offsets from T0, a realistic epoch time, so that nothing passes
 * only because now happens to be 0.
 */
#define S(x) ((fm_ms)(x)*FM_MS_PER_S)
#define MIN(x) S((x)*60)
#define T0 S(1700000000)

#define SENTINEL 0x5a

/* ---- helpers ---------------------------------------------------------- */

/* The one item with this key; fails on a duplicate key. */
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

static void assert_ev_at(const struct fm_evidence *e, const char *key, double want, double rel,
                         const char *file, int line)
{
        const struct fm_evidence_item *it;

        /* a full list may have dropped pairs; the policy must stay below it */
        if (e->n >= FM_EVIDENCE_MAX)
                fail_msg("%s:%d: evidence list full (%u pairs)", file, line, e->n);
        it = ev_find(e, key);
        if (!it)
                fail_msg("%s:%d: evidence has no key \"%s\"", file, line, key);
        fm_test_close_at(it->value, want, rel, key, file, line);
}
#define assert_ev(e, key, want) assert_ev_at((e), (key), (want), 1e-9, __FILE__, __LINE__)
#define assert_ev_rel(e, key, want, rel) assert_ev_at((e), (key), (want), (rel), __FILE__, __LINE__)

static void assert_no_ev_at(const struct fm_evidence *e, const char *key, const char *file,
                            int line)
{
        if (ev_find(e, key))
                fail_msg("%s:%d: evidence unexpectedly has key \"%s\"", file, line, key);
}
#define assert_no_ev(e, key) assert_no_ev_at((e), (key), __FILE__, __LINE__)

/* splitmix64: a seeded generator, so the property test is the same on every run. */
static uint64_t rnd(uint64_t *s)
{
        uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
}

static uint32_t rnd_below(uint64_t *s, uint32_t n)
{
        return (uint32_t)(rnd(s) % n);
}

/* ---- ejection helpers ------------------------------------------------- */

static struct fm_traffic_config tcfg(uint32_t pct, double floor_share)
{
        struct fm_traffic_config c;

        fm_traffic_config_default(&c);
        c.max_ejection_percent = pct;
        c.healthy_floor = floor_share;
        return c;
}

/* n targets of base 1, none ejecting; priority falls with the index. */
static void healthy(struct fm_traffic_target *t, uint32_t n)
{
        for (uint32_t i = 0; i < n; i++)
                t[i] = (struct fm_traffic_target){.base = 1, .priority = 0.0};
}

static void bad(struct fm_traffic_target *t, double priority)
{
        t->eject = true;
        t->priority = priority;
}

static uint32_t weight_sum(const struct fm_traffic_result *r)
{
        uint32_t sum = 0;

        for (uint32_t i = 0; i < r->n; i++)
                sum += r->weight[i];
        return sum;
}

static void assert_weights_at(const struct fm_traffic_result *r, const uint32_t *want, uint32_t n,
                              const char *file, int line)
{
        if (r->n != n)
                fail_msg("%s:%d: result has %u targets, expected %u", file, line, r->n, n);
        for (uint32_t i = 0; i < n; i++)
                if (r->weight[i] != want[i])
                        fail_msg("%s:%d: weight[%u] = %u, expected %u", file, line, i, r->weight[i],
                                 want[i]);
        if (weight_sum(r) != 100)
                fail_msg("%s:%d: weights sum to %u", file, line, weight_sum(r));
}
#define assert_weights(r, ...)                                                                     \
        do {                                                                                       \
                const uint32_t want_[] = {__VA_ARGS__};                                            \
                assert_weights_at((r), want_, ARRAY_SIZE(want_), __FILE__, __LINE__);              \
        } while (0)

static void assert_indices_at(const uint16_t *got, uint32_t n_got, const uint16_t *want,
                              uint32_t n_want, const char *what, const char *file, int line)
{
        if (n_got != n_want)
                fail_msg("%s:%d: %s has %u entries, expected %u", file, line, what, n_got, n_want);
        for (uint32_t i = 0; i < n_want; i++)
                if (got[i] != want[i])
                        fail_msg("%s:%d: %s[%u] = %u, expected %u", file, line, what, i, got[i],
                                 want[i]);
}
#define assert_ejected(r, ...)                                                                     \
        do {                                                                                       \
                const uint16_t want_[] = {__VA_ARGS__};                                            \
                assert_indices_at((r)->ejected, (r)->n_ejected, want_, ARRAY_SIZE(want_),          \
                                  "ejected", __FILE__, __LINE__);                                  \
        } while (0)
#define assert_kept(r, ...)                                                                        \
        do {                                                                                       \
                const uint16_t want_[] = {__VA_ARGS__};                                            \
                assert_indices_at((r)->kept, (r)->n_kept, want_, ARRAY_SIZE(want_), "kept",        \
                                  __FILE__, __LINE__);                                             \
        } while (0)

static void assert_reason_at(const struct fm_traffic_result *r, uint32_t i,
                             enum fm_traffic_reason want, const char *file, int line)
{
        if (r->reason[i] != want)
                fail_msg("%s:%d: reason[%u] = %s, expected %s", file, line, i,
                         fm_traffic_reason_name(r->reason[i]), fm_traffic_reason_name(want));
}
#define assert_reason(r, i, want) assert_reason_at((r), (i), (want), __FILE__, __LINE__)

static void eject_ok(const struct fm_traffic_config *c, const struct fm_traffic_target *t,
                     uint32_t n, struct fm_traffic_result *r)
{
        memset(r, SENTINEL, sizeof(*r));
        assert_int_equal(fm_traffic_eject(c, t, n, r), 0);
        assert_int_equal(r->n, n);
        assert_int_equal(weight_sum(r), 100);
}

static void eject_fails(const struct fm_traffic_config *c, const struct fm_traffic_target *t,
                        uint32_t n, int err)
{
        struct fm_traffic_result r, s;

        memset(&r, SENTINEL, sizeof(r));
        memset(&s, SENTINEL, sizeof(s));
        assert_int_equal(fm_traffic_eject(c, t, n, &r), err);
        assert_memory_equal(&r, &s, sizeof(r));
}

/* ---- ejection: configuration ------------------------------------------ */

static void test_traffic_config(void **state)
{
        struct fm_traffic_config c;

        (void)state;
        fm_traffic_config_default(&c);
        assert_int_equal(c.max_ejection_percent, 50);
        assert_double_close(c.healthy_floor, 0.5);
        assert_int_equal(c.probe_percent, 5);
        assert_int_equal(fm_traffic_config_validate(&c), 0);

        static const struct {
                uint32_t pct;
                double floor_share;
                uint32_t probe;
                int want;
        } table[] = {
                {0, 0.5, 5, 0},          {100, 0.5, 5, 0},      {101, 0.5, 5, -EINVAL},
                {50, 0.0, 5, 0},         {50, 1.0, 5, 0},       {50, -0.01, 5, -EINVAL},
                {50, 1.01, 5, -EINVAL},  {50, NAN, 5, -EINVAL}, {50, INFINITY, 5, -EINVAL},
                {50, 0.5, 0, -EINVAL},   {50, 0.5, 1, 0},       {50, 0.5, 100, 0},
                {50, 0.5, 101, -EINVAL},
        };
        for (size_t i = 0; i < ARRAY_SIZE(table); i++) {
                c = (struct fm_traffic_config){
                        .max_ejection_percent = table[i].pct,
                        .healthy_floor = table[i].floor_share,
                        .probe_percent = table[i].probe,
                };
                if (fm_traffic_config_validate(&c) != table[i].want)
                        fail_msg("row %zu: validate = %d, expected %d", i,
                                 fm_traffic_config_validate(&c), table[i].want);
        }
}

static void test_traffic_names(void **state)
{
        (void)state;
        assert_string_equal(fm_traffic_reason_name(FM_TRAFFIC_HEALTHY), "healthy");
        assert_string_equal(fm_traffic_reason_name(FM_TRAFFIC_PROBE), "half_open_probe");
        assert_string_equal(fm_traffic_reason_name(FM_TRAFFIC_EJECTED), "ejected");
        assert_string_equal(fm_traffic_reason_name(FM_TRAFFIC_KEPT_CAP), "kept_max_ejection");
        assert_string_equal(fm_traffic_reason_name(FM_TRAFFIC_KEPT_FLOOR), "kept_healthy_floor");
        assert_string_equal(fm_traffic_reason_name(FM_TRAFFIC_ZERO_BASE), "zero_base");
        assert_null(fm_traffic_reason_name(_FM_TRAFFIC_REASON_MAX));
        assert_null(fm_traffic_reason_name((enum fm_traffic_reason) - 1));
}

/* ---- ejection: redistribution ----------------------------------------- */

static void test_all_healthy(void **state)
{
        struct fm_traffic_config c = tcfg(50, 0.5);
        struct fm_traffic_target t[4];
        struct fm_traffic_result r;

        (void)state;
        healthy(t, 4);
        eject_ok(&c, t, 4, &r);
        assert_weights(&r, 25, 25, 25, 25);
        for (uint32_t i = 0; i < 4; i++)
                assert_reason(&r, i, FM_TRAFFIC_HEALTHY);
        assert_int_equal(r.n_ejected, 0);
        assert_int_equal(r.n_kept, 0);
        assert_ev(&r.evidence, "targets", 4);
        assert_ev(&r.evidence, "eject_wanted", 0);
        assert_ev(&r.evidence, "ejected", 0);

        /* a single target takes everything */
        eject_ok(&c, t, 1, &r);
        assert_weights(&r, 100);
}

static void test_equal_one_ejected(void **state)
{
        struct fm_traffic_config c = tcfg(50, 0.5);
        struct fm_traffic_target t[4];
        struct fm_traffic_result r;

        (void)state;
        healthy(t, 4);
        bad(&t[1], 0.8);
        eject_ok(&c, t, 4, &r);
        /* 100/3 each; the one leftover unit goes to the earliest of the equal remainders */
        assert_weights(&r, 34, 0, 33, 33);
        assert_reason(&r, 0, FM_TRAFFIC_HEALTHY);
        assert_reason(&r, 1, FM_TRAFFIC_EJECTED);
        assert_ejected(&r, 1);
        assert_int_equal(r.n_kept, 0);
        assert_ev(&r.evidence, "eject_wanted", 1);
        assert_ev(&r.evidence, "ejected", 1);
        assert_ev(&r.evidence, "cap_ejections", 2);
        assert_ev(&r.evidence, "floor_targets", 2);
        assert_ev(&r.evidence, "allowed_ejections", 2);
        assert_ev(&r.evidence, "small_pool_rule", 0);

        /* the same for any position of the ejected one: the leftover goes to the first kept */
        healthy(t, 4);
        bad(&t[0], 0.8);
        eject_ok(&c, t, 4, &r);
        assert_weights(&r, 0, 34, 33, 33);

        /* deterministic: the same input gives the same bytes */
        struct fm_traffic_result r2;
        eject_ok(&c, t, 4, &r2);
        assert_memory_equal(&r, &r2, sizeof(r));
}

static void test_unequal_bases(void **state)
{
        struct fm_traffic_config c = tcfg(50, 0.5);
        struct fm_traffic_target t[4];
        struct fm_traffic_result r;

        (void)state;
        healthy(t, 4);
        for (uint32_t i = 0; i < 4; i++)
                t[i].base = i + 1;
        eject_ok(&c, t, 4, &r);
        assert_weights(&r, 10, 20, 30, 40);

        /* 1:2:3 of 100 = 16.67, 33.33, 50: the leftover unit goes to the largest remainder */
        bad(&t[3], 1.0);
        eject_ok(&c, t, 4, &r);
        assert_weights(&r, 17, 33, 50, 0);

        /* ejecting the small one shares in proportion among the big ones: 2:3:4 of 100 */
        healthy(t, 4);
        for (uint32_t i = 0; i < 4; i++)
                t[i].base = i + 1;
        bad(&t[0], 1.0);
        eject_ok(&c, t, 4, &r);
        /* 22.22, 33.33, 44.44 → 22, 33, 44 and the leftover to .44 */
        assert_weights(&r, 0, 22, 33, 45);

        /* a share under 1 % is raised to 1 %, never rounded out of traffic */
        healthy(t, 3);
        t[0].base = 256;
        eject_ok(&c, t, 3, &r);
        assert_weights(&r, 98, 1, 1);

        /* huge bases do not overflow */
        healthy(t, 3);
        t[0].base = UINT32_MAX;
        t[1].base = UINT32_MAX;
        t[2].base = UINT32_MAX / 2;
        eject_ok(&c, t, 3, &r);
        assert_weights(&r, 40, 40, 20);
}

static void test_max_ejection_percent_boundary(void **state)
{
        static const struct {
                uint32_t pct, ejected;
        } table[] = {
                {9, 1}, /* small-pool rule: floor(0.9) = 0 → 1 */
                {10, 1}, {19, 1}, {20, 2}, {29, 2}, {30, 3},
                {39, 3}, {40, 4}, {49, 4}, {50, 5}, {100, 5},
        };
        struct fm_traffic_target t[10];
        struct fm_traffic_result r;

        (void)state;
        for (size_t k = 0; k < ARRAY_SIZE(table); k++) {
                struct fm_traffic_config c = tcfg(table[k].pct, 0.0);

                healthy(t, 10);
                for (uint32_t i = 0; i < 5; i++)
                        bad(&t[2 * i], 0.5 + 0.1 * i); /* 8 is the worst, then 6, 4, 2, 0 */
                eject_ok(&c, t, 10, &r);
                if (r.n_ejected != table[k].ejected)
                        fail_msg("pct %u: %u ejected, expected %u", table[k].pct, r.n_ejected,
                                 table[k].ejected);
                assert_int_equal(r.n_kept, 5 - table[k].ejected);
                assert_ev(&r.evidence, "kept_by_cap", 5 - table[k].ejected);
                assert_ev(&r.evidence, "kept_by_floor", 0);
                /* the worst go first */
                for (uint32_t j = 0; j < r.n_ejected; j++) {
                        assert_int_equal(r.ejected[j], 8 - 2 * j);
                        assert_reason(&r, r.ejected[j], FM_TRAFFIC_EJECTED);
                        assert_int_equal(r.weight[r.ejected[j]], 0);
                }
                for (uint32_t j = 0; j < r.n_kept; j++) {
                        assert_int_equal(r.kept[j], 8 - 2 * (r.n_ejected + j));
                        assert_reason(&r, r.kept[j], FM_TRAFFIC_KEPT_CAP);
                        assert_true(r.weight[r.kept[j]] > 0);
                }
        }
}

static void test_priority_order(void **state)
{
        struct fm_traffic_config c = tcfg(40, 0.0);
        struct fm_traffic_target t[5];
        struct fm_traffic_result r;

        (void)state;
        healthy(t, 5);
        bad(&t[0], 0.6);
        bad(&t[1], 0.9);
        bad(&t[2], 0.9);
        bad(&t[3], NAN);
        bad(&t[4], 0.7);
        eject_ok(&c, t, 5, &r);
        /* ties in input order; NaN last */
        assert_ejected(&r, 1, 2);
        assert_kept(&r, 4, 0, 3);
        assert_weights(&r, 34, 0, 0, 33, 33);

        /* an operator's FORCED_OPEN (INFINITY) outranks any rate */
        t[3].priority = INFINITY;
        eject_ok(&c, t, 5, &r);
        assert_ejected(&r, 3, 1);
        assert_kept(&r, 2, 4, 0);
}

/* Envoy's 10 % cap ejects nothing below ten hosts; ours ejects one while the floor holds. */
static void test_envoy_small_pool(void **state)
{
        struct fm_traffic_config c = tcfg(10, 0.5);
        struct fm_traffic_target t[10];
        struct fm_traffic_result r;

        (void)state;
        /* 3 targets, 1 bad, 10 % cap, floor 0.5: floor(0.3) = 0, but 2 >= ceil(1.5) stay */
        healthy(t, 3);
        bad(&t[2], 0.7);
        eject_ok(&c, t, 3, &r);
        assert_weights(&r, 50, 50, 0);
        assert_ejected(&r, 2);
        assert_int_equal(r.n_kept, 0);
        assert_ev(&r.evidence, "cap_ejections", 1);
        assert_ev(&r.evidence, "small_pool_rule", 1);
        assert_ev(&r.evidence, "floor_targets", 2);
        assert_ev(&r.evidence, "allowed_ejections", 1);

        /* 9 targets: still one, and only one */
        healthy(t, 9);
        bad(&t[4], 0.7);
        eject_ok(&c, t, 9, &r);
        assert_ejected(&r, 4);
        bad(&t[7], 0.9);
        eject_ok(&c, t, 9, &r);
        assert_ejected(&r, 7);
        assert_kept(&r, 4);
        assert_reason(&r, 4, FM_TRAFFIC_KEPT_CAP);

        /* 10 targets: the percentage gives 1 by itself, the rule is not needed */
        healthy(t, 10);
        bad(&t[0], 0.7);
        bad(&t[1], 0.7);
        eject_ok(&c, t, 10, &r);
        assert_ejected(&r, 0);
        assert_ev(&r.evidence, "small_pool_rule", 0);
        assert_ev(&r.evidence, "cap_ejections", 1);

        /* the rule yields to the floor: 2 targets with floor 1.0 must both keep traffic */
        c = tcfg(10, 1.0);
        healthy(t, 2);
        bad(&t[1], 0.7);
        eject_ok(&c, t, 2, &r);
        assert_weights(&r, 50, 50);
        assert_int_equal(r.n_ejected, 0);
        assert_kept(&r, 1);
        assert_reason(&r, 1, FM_TRAFFIC_KEPT_FLOOR);
        assert_ev(&r.evidence, "small_pool_rule", 0);
        assert_ev(&r.evidence, "cap_ejections", 0);

        /* floor 0.5 of 2 is one target: the bad one goes */
        c = tcfg(10, 0.5);
        eject_ok(&c, t, 2, &r);
        assert_weights(&r, 100, 0);

        /* a cap of 0 disables ejection; the small-pool rule does not override it */
        c = tcfg(0, 0.5);
        healthy(t, 3);
        bad(&t[2], 0.7);
        eject_ok(&c, t, 3, &r);
        assert_weights(&r, 34, 33, 33);
        assert_kept(&r, 2);
        assert_reason(&r, 2, FM_TRAFFIC_KEPT_CAP);
        assert_ev(&r.evidence, "small_pool_rule", 0);
}

static void test_floor_holds(void **state)
{
        struct fm_traffic_config c = tcfg(100, 0.5);
        struct fm_traffic_target t[10];
        struct fm_traffic_result r;

        (void)state;
        /* 2 targets both bad: at most one goes, the worse */
        healthy(t, 2);
        bad(&t[0], 0.6);
        bad(&t[1], 0.9);
        eject_ok(&c, t, 2, &r);
        assert_weights(&r, 100, 0);
        assert_ejected(&r, 1);
        assert_kept(&r, 0);
        assert_reason(&r, 0, FM_TRAFFIC_KEPT_FLOOR);
        assert_ev(&r.evidence, "kept_by_floor", 1);
        assert_ev(&r.evidence, "kept_by_cap", 0);

        /* the same with the default 50 % cap: both limits allow 1; the floor is named */
        c = tcfg(50, 0.5);
        eject_ok(&c, t, 2, &r);
        assert_weights(&r, 100, 0);
        assert_reason(&r, 0, FM_TRAFFIC_KEPT_FLOOR);

        /* all bad: as many go as the floor allows; ceil(5 × 0.5) = 3 stay */
        c = tcfg(100, 0.5);
        healthy(t, 5);
        for (uint32_t i = 0; i < 5; i++)
                bad(&t[i], 0.5);
        eject_ok(&c, t, 5, &r);
        assert_ejected(&r, 0, 1);
        assert_kept(&r, 2, 3, 4);
        assert_weights(&r, 0, 0, 34, 33, 33);
        assert_ev(&r.evidence, "floor_targets", 3);

        /* floor 0 still keeps one target in traffic */
        c = tcfg(100, 0.0);
        eject_ok(&c, t, 5, &r);
        assert_int_equal(r.n_ejected, 4);
        assert_weights(&r, 0, 0, 0, 0, 100);
        assert_ev(&r.evidence, "floor_targets", 1);

        /* 10 × 0.3 is 3 targets, not 4 by a rounding error */
        c = tcfg(100, 0.3);
        healthy(t, 10);
        for (uint32_t i = 0; i < 10; i++)
                bad(&t[i], 0.5);
        eject_ok(&c, t, 10, &r);
        assert_int_equal(r.n_ejected, 7);
        assert_ev(&r.evidence, "floor_targets", 3);

        /* half-open targets keep traffic, so they count towards the floor */
        c = tcfg(100, 0.5);
        healthy(t, 4);
        bad(&t[0], 0.9);
        bad(&t[1], 0.8);
        t[2].half_open = true;
        t[3].half_open = true;
        eject_ok(&c, t, 4, &r);
        assert_ejected(&r, 0, 1);
        assert_weights(&r, 0, 0, 50, 50);

        /* 2 open, 1 half-open: one open one stays for the floor (2 of 3), at full weight */
        healthy(t, 3);
        bad(&t[0], 0.9);
        bad(&t[1], 0.8);
        t[2].half_open = true;
        eject_ok(&c, t, 3, &r);
        assert_ejected(&r, 0);
        assert_kept(&r, 1);
        assert_reason(&r, 1, FM_TRAFFIC_KEPT_FLOOR);
        assert_reason(&r, 2, FM_TRAFFIC_PROBE);
        assert_weights(&r, 0, 95, 5);
}

static void test_half_open_probe(void **state)
{
        struct fm_traffic_config c = tcfg(50, 0.5);
        struct fm_traffic_target t[10];
        struct fm_traffic_result r;

        (void)state;
        /* 1 : 1 : 1 : 0.05 of 100 = 32.79 ×3 and 1.64 */
        healthy(t, 4);
        t[3].half_open = true;
        eject_ok(&c, t, 4, &r);
        assert_weights(&r, 33, 33, 33, 1);
        assert_reason(&r, 3, FM_TRAFFIC_PROBE);
        assert_ev(&r.evidence, "half_open_targets", 1);
        assert_ev(&r.evidence, "probe_percent", 5);

        /* configurable: half of the base share */
        c.probe_percent = 50;
        healthy(t, 2);
        t[1].half_open = true;
        eject_ok(&c, t, 2, &r);
        assert_weights(&r, 67, 33);

        /* a probe that rounds under 1 % is raised to 1 %: 0.55 → 1, the other 9 share 99 */
        c.probe_percent = 5;
        healthy(t, 10);
        t[9].half_open = true;
        eject_ok(&c, t, 10, &r);
        assert_weights(&r, 11, 11, 11, 11, 11, 11, 11, 11, 11, 1);

        /* a probe is proportional to its own base */
        healthy(t, 2);
        t[0].base = 100;
        t[1].base = 100;
        t[1].half_open = true;
        c.probe_percent = 20;
        eject_ok(&c, t, 2, &r);
        assert_weights(&r, 83, 17);

        /* a half-open and an ejecting target at once is a contradiction */
        healthy(t, 2);
        t[1].half_open = true;
        t[1].eject = true;
        eject_fails(&c, t, 2, -EINVAL);
}

static void test_zero_base(void **state)
{
        struct fm_traffic_config c = tcfg(50, 0.5);
        struct fm_traffic_target t[4];
        struct fm_traffic_result r;

        (void)state;
        /* every base 0: nothing could carry traffic, no weights to apply */
        healthy(t, 4);
        for (uint32_t i = 0; i < 4; i++)
                t[i].base = 0;
        eject_fails(&c, t, 4, -ENODATA);
        bad(&t[0], 1.0);
        t[1].half_open = true;
        eject_fails(&c, t, 4, -ENODATA);
        eject_fails(&c, NULL, 0, -ENODATA);

        /* zero-base targets are outside the pool and every count */
        healthy(t, 4);
        t[0].base = 0;
        bad(&t[0], 1.0);
        t[3].base = 0;
        eject_ok(&c, t, 4, &r);
        assert_weights(&r, 0, 50, 50, 0);
        assert_reason(&r, 0, FM_TRAFFIC_ZERO_BASE);
        assert_reason(&r, 3, FM_TRAFFIC_ZERO_BASE);
        assert_int_equal(r.n_ejected, 0);
        assert_int_equal(r.n_kept, 0);
        assert_ev(&r.evidence, "targets", 2);
        assert_ev(&r.evidence, "zero_base_targets", 2);
        assert_ev(&r.evidence, "eject_wanted", 0);

        /* the floor counts the pool: 1 of 2 may go */
        bad(&t[1], 1.0);
        eject_ok(&c, t, 4, &r);
        assert_weights(&r, 0, 0, 100, 0);
        assert_ejected(&r, 1);
}

static void test_eject_errors(void **state)
{
        struct fm_traffic_config c = tcfg(50, 0.5);
        struct fm_traffic_target t[FM_TRAFFIC_TARGETS_MAX + 1];
        struct fm_traffic_result r;

        (void)state;
        healthy(t, FM_TRAFFIC_TARGETS_MAX + 1);
        eject_fails(&c, t, FM_TRAFFIC_TARGETS_MAX + 1, -E2BIG);
        eject_ok(&c, t, FM_TRAFFIC_TARGETS_MAX, &r);
        for (uint32_t i = 0; i < FM_TRAFFIC_TARGETS_MAX; i++)
                assert_int_equal(r.weight[i], 1);

        c.max_ejection_percent = 101;
        eject_fails(&c, t, 4, -EINVAL);
        c = tcfg(50, NAN);
        eject_fails(&c, t, 4, -EINVAL);
}

/*
 * Property test over many random pools: whatever the bases, wishes and
 * limits, the weights sum to 100, an ejected or zero-base target has 0 and
 * every other at least 1, the limits hold, the worst go first, shares follow
 * the bases, and each weight is within one unit of its exact share when no
 * share had to be raised to 1.
 */
static void test_weights_property(void **state)
{
        uint64_t seed = 0x5eedf1ee7ULL;
        struct fm_traffic_target t[FM_TRAFFIC_TARGETS_MAX];
        struct fm_traffic_result r;
        uint32_t runs = 0, with_ejections = 0, capped = 0, floored = 0, exact = 0;

        (void)state;
        for (uint32_t iter = 0; iter < 20000; iter++) {
                struct fm_traffic_config c = {
                        .max_ejection_percent = rnd_below(&seed, 101),
                        .healthy_floor = (double)rnd_below(&seed, 11) / 10.0,
                        .probe_percent = 1 + rnd_below(&seed, 100),
                };
                uint32_t n = rnd_below(&seed, 8) == 0 ? 1 + rnd_below(&seed, 100)
                                                      : 1 + rnd_below(&seed, 12);
                uint32_t p_bad = rnd_below(&seed, 101), p_half = rnd_below(&seed, 30);
                uint32_t shape = rnd_below(&seed, 4);

                for (uint32_t i = 0; i < n; i++) {
                        uint32_t base;

                        switch (shape) {
                        case 0:
                                base = 1; /* equal */
                                break;
                        case 1:
                                base = 1 + rnd_below(&seed, 256);
                                break;
                        case 2:
                                base = rnd_below(&seed, 4); /* some zeros */
                                break;
                        default:
                                base = (uint32_t)rnd(&seed); /* anything, huge included */
                                break;
                        }
                        t[i] = (struct fm_traffic_target){
                                .base = base,
                                .priority = (double)rnd_below(&seed, 5) / 4.0,
                        };
                        if (rnd_below(&seed, 100) < p_bad)
                                t[i].eject = true;
                        else if (rnd_below(&seed, 100) < p_half)
                                t[i].half_open = true;
                }

                uint32_t pool = 0, wanted = 0;
                for (uint32_t i = 0; i < n; i++) {
                        pool += t[i].base > 0;
                        wanted += t[i].base > 0 && t[i].eject;
                }

                memset(&r, SENTINEL, sizeof(r));
                int k = fm_traffic_eject(&c, t, n, &r);
                if (pool == 0) {
                        assert_int_equal(k, -ENODATA);
                        continue;
                }
                assert_int_equal(k, 0);
                runs++;

                if (weight_sum(&r) != 100)
                        fail_msg("iter %u: weights sum to %u", iter, weight_sum(&r));

                /* the limits */
                uint32_t floor_targets = (uint32_t)ceil((double)pool * c.healthy_floor - 1e-9);
                if (floor_targets < 1)
                        floor_targets = 1;
                uint32_t cap = pool * c.max_ejection_percent / 100;
                if (cap == 0 && c.max_ejection_percent > 0 && pool - 1 >= floor_targets)
                        cap = 1;
                uint32_t allowed = cap < pool - floor_targets ? cap : pool - floor_targets;
                assert_true(r.n_ejected <= allowed);
                assert_true(pool - r.n_ejected >= floor_targets);
                assert_int_equal(r.n_ejected + r.n_kept, wanted);
                assert_int_equal(r.n_ejected, wanted < allowed ? wanted : allowed);
                if (r.n_ejected > 0)
                        with_ejections++;
                if (r.n_kept > 0 && r.reason[r.kept[0]] == FM_TRAFFIC_KEPT_CAP)
                        capped++;
                else if (r.n_kept > 0)
                        floored++;

                /* the worst go first: nothing kept in outranks anything ejected */
                for (uint32_t a = 0; a < r.n_ejected; a++)
                        for (uint32_t b = 0; b < r.n_kept; b++)
                                assert_true(t[r.ejected[a]].priority >= t[r.kept[b]].priority);

                /* per target */
                uint64_t total = 0;
                for (uint32_t i = 0; i < n; i++) {
                        switch (r.reason[i]) {
                        case FM_TRAFFIC_ZERO_BASE:
                                assert_int_equal(t[i].base, 0);
                                assert_int_equal(r.weight[i], 0);
                                break;
                        case FM_TRAFFIC_EJECTED:
                                assert_true(t[i].eject);
                                assert_int_equal(r.weight[i], 0);
                                break;
                        case FM_TRAFFIC_PROBE:
                                assert_true(t[i].half_open);
                                assert_true(r.weight[i] >= 1);
                                total += (uint64_t)t[i].base * c.probe_percent;
                                break;
                        case FM_TRAFFIC_KEPT_CAP:
                        case FM_TRAFFIC_KEPT_FLOOR:
                                assert_true(t[i].eject);
                                assert_true(r.weight[i] >= 1);
                                total += (uint64_t)t[i].base * 100;
                                break;
                        case FM_TRAFFIC_HEALTHY:
                                assert_false(t[i].eject || t[i].half_open);
                                assert_true(r.weight[i] >= 1);
                                total += (uint64_t)t[i].base * 100;
                                break;
                        default:
                                fail_msg("iter %u: reason[%u] = %d", iter, i, r.reason[i]);
                        }
                }

                /* shares follow the bases: a larger effective base never gets less */
                double share[FM_TRAFFIC_TARGETS_MAX];
                bool raised = false;
                for (uint32_t i = 0; i < n; i++) {
                        uint64_t eff = 0;

                        if (r.weight[i] > 0)
                                eff = (uint64_t)t[i].base *
                                      (r.reason[i] == FM_TRAFFIC_PROBE ? c.probe_percent : 100);
                        share[i] = 100.0 * (double)eff / (double)total;
                        if (eff > 0 && share[i] < 1.0)
                                raised = true;
                }
                for (uint32_t i = 0; i < n; i++)
                        for (uint32_t j = 0; j < n; j++)
                                if (share[i] > share[j] && r.weight[i] < r.weight[j])
                                        fail_msg("iter %u: share %.4f got %u, share %.4f got %u",
                                                 iter, share[i], r.weight[i], share[j],
                                                 r.weight[j]);
                if (!raised) {
                        exact++;
                        for (uint32_t i = 0; i < n; i++)
                                if (fabs((double)r.weight[i] - share[i]) >= 1.0 + 1e-9)
                                        fail_msg("iter %u: weight[%u] = %u, exact share %.6f", iter,
                                                 i, r.weight[i], share[i]);
                }

                /* deterministic */
                struct fm_traffic_result r2;
                memset(&r2, SENTINEL, sizeof(r2));
                assert_int_equal(fm_traffic_eject(&c, t, n, &r2), 0);
                assert_memory_equal(&r, &r2, sizeof(r));
        }
        /* the generator did exercise every branch */
        assert_true(runs > 15000);
        assert_true(with_ejections > 1000);
        assert_true(capped > 100);
        assert_true(floored > 100);
        assert_true(exact > 1000);
}

/* ---- canary helpers --------------------------------------------------- */

static struct fm_canary_config ccfg(void)
{
        struct fm_canary_config c;

        fm_canary_config_default(&c);
        return c;
}

static struct fm_canary_side side(uint64_t requests, uint64_t errors)
{
        return (struct fm_canary_side){.requests = requests, .errors = errors};
}

static struct fm_canary_side side_p99(uint64_t requests, uint64_t errors, double p99)
{
        return (struct fm_canary_side){
                .requests = requests, .errors = errors, .p99_ms = p99, .has_p99 = true};
}

static struct fm_canary_input cin(struct fm_canary_side stable, struct fm_canary_side canary)
{
        return (struct fm_canary_input){.stable = stable, .canary = canary};
}

/* Plenty of data, same error rate, same latency. */
static struct fm_canary_input good(void)
{
        return cin(side_p99(10000, 100, 200.0), side_p99(1000, 10, 200.0));
}

static void assert_decision_at(const struct fm_canary_decision *d, int rc, int want_rc,
                               enum fm_canary_action action, enum fm_canary_reason reason,
                               uint32_t weight, const char *file, int line)
{
        if (rc != want_rc || d->action != action || d->reason != reason || d->weight != weight)
                fail_msg("%s:%d: rc %d %s (%s) weight %u, expected rc %d %s (%s) weight %u", file,
                         line, rc, fm_canary_action_name(d->action),
                         fm_canary_reason_name(d->reason), d->weight, want_rc,
                         fm_canary_action_name(action), fm_canary_reason_name(reason), weight);
        if (d->rollback != (action == FM_CANARY_ABORT))
                fail_msg("%s:%d: rollback %d with %s", file, line, d->rollback,
                         fm_canary_action_name(d->action));
}
#define assert_decision(d, rc, want_rc, action, reason, weight)                                    \
        assert_decision_at((d), (rc), (want_rc), (action), (reason), (weight), __FILE__, __LINE__)

/* Decides and checks the outcome; the return value follows from the action. */
static void decide_at(const struct fm_canary_config *c, struct fm_canary_state *s,
                      struct fm_canary_input in, fm_ms now, enum fm_canary_action action,
                      enum fm_canary_reason reason, uint32_t weight, struct fm_canary_decision *d,
                      const char *file, int line)
{
        memset(d, SENTINEL, sizeof(*d));
        int rc = fm_canary_decide(c, s, &in, now, d);
        assert_decision_at(d, rc, action == FM_CANARY_HOLD ? 0 : 1, action, reason, weight, file,
                           line);
        if (d->weight != fm_canary_weight(c, s))
                fail_msg("%s:%d: decision weight %u, state weight %u", file, line, d->weight,
                         fm_canary_weight(c, s));
}
#define decide(c, s, in, now, action, reason, weight, d)                                           \
        decide_at((c), (s), (in), (now), (action), (reason), (weight), (d), __FILE__, __LINE__)

static void decide_fails(const struct fm_canary_config *c, struct fm_canary_state *s,
                         struct fm_canary_input in, fm_ms now, int err)
{
        struct fm_canary_decision d, sd;
        struct fm_canary_state before = *s;

        memset(&d, SENTINEL, sizeof(d));
        memset(&sd, SENTINEL, sizeof(sd));
        assert_int_equal(fm_canary_decide(c, s, &in, now, &d), err);
        assert_memory_equal(&d, &sd, sizeof(d));
        assert_memory_equal(s, &before, sizeof(before));
}

/* ---- canary: configuration -------------------------------------------- */

static void test_canary_config(void **state)
{
        struct fm_canary_config c = ccfg();

        (void)state;
        assert_int_equal(c.n_steps, 5);
        assert_int_equal(c.steps[0], 5);
        assert_int_equal(c.steps[1], 10);
        assert_int_equal(c.steps[2], 25);
        assert_int_equal(c.steps[3], 50);
        assert_int_equal(c.steps[4], 100);
        assert_int_equal(c.interval, MIN(5));
        assert_int_equal(c.min_requests, 100);
        assert_int_equal(fm_canary_config_validate(&c), 0);

        /* steps */
        static const struct {
                uint32_t n, steps[FM_CANARY_STEPS_MAX + 1];
                int want;
        } steps[] = {
                {1, {100}, 0},
                {2, {1, 100}, 0},
                {16, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 100}, 0},
                {0, {100}, -EINVAL},
                {17, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 100}, -EINVAL},
                {3, {5, 5, 100}, -EINVAL},   /* not strictly ascending */
                {3, {25, 10, 100}, -EINVAL}, /* descending */
                {3, {0, 10, 100}, -EINVAL},  /* a 0 % step sees no traffic */
                {3, {5, 10, 50}, -EINVAL},   /* last not 100 */
                {3, {5, 101, 100}, -EINVAL}, /* over 100 */
                {2, {50, 101}, -EINVAL},
        };
        for (size_t i = 0; i < ARRAY_SIZE(steps); i++) {
                c = ccfg();
                memset(c.steps, 0, sizeof(c.steps));
                c.n_steps = steps[i].n;
                for (uint32_t j = 0; j < steps[i].n && j < FM_CANARY_STEPS_MAX; j++)
                        c.steps[j] = steps[i].steps[j];
                if (fm_canary_config_validate(&c) != steps[i].want)
                        fail_msg("steps row %zu: validate = %d, expected %d", i,
                                 fm_canary_config_validate(&c), steps[i].want);
        }

        /* the rest */
        static const struct {
                fm_ms interval;
                uint64_t min_requests;
                double margin, confidence, p99;
                int want;
        } table[] = {
                {MIN(5), 100, 0.2, 0.95, 1.5, 0},
                {1, 1, 0.0, 0.51, 1.0, 0},
                {FM_CANARY_INTERVAL_MAX, 100, 0.2, 0.999, 1.5, 0},
                {0, 100, 0.2, 0.95, 1.5, -EINVAL},
                {-1, 100, 0.2, 0.95, 1.5, -EINVAL},
                {FM_CANARY_INTERVAL_MAX + 1, 100, 0.2, 0.95, 1.5, -EINVAL},
                {MIN(5), 0, 0.2, 0.95, 1.5, -EINVAL},
                {MIN(5), 100, -0.1, 0.95, 1.5, -EINVAL},
                {MIN(5), 100, NAN, 0.95, 1.5, -EINVAL},
                {MIN(5), 100, INFINITY, 0.95, 1.5, -EINVAL},
                {MIN(5), 100, 0.2, 0.5, 1.5, -EINVAL},
                {MIN(5), 100, 0.2, 1.0, 1.5, -EINVAL},
                {MIN(5), 100, 0.2, NAN, 1.5, -EINVAL},
                {MIN(5), 100, 0.2, 0.95, 0.99, -EINVAL},
                {MIN(5), 100, 0.2, 0.95, NAN, -EINVAL},
                {MIN(5), 100, 0.2, 0.95, INFINITY, -EINVAL},
        };
        for (size_t i = 0; i < ARRAY_SIZE(table); i++) {
                c = ccfg();
                c.interval = table[i].interval;
                c.min_requests = table[i].min_requests;
                c.error_margin = table[i].margin;
                c.confidence = table[i].confidence;
                c.max_p99_ratio = table[i].p99;
                if (fm_canary_config_validate(&c) != table[i].want)
                        fail_msg("row %zu: validate = %d, expected %d", i,
                                 fm_canary_config_validate(&c), table[i].want);
        }

        /* decide refuses an invalid configuration */
        struct fm_canary_state s;
        fm_canary_reset(&s, T0);
        c = ccfg();
        c.steps[4] = 90;
        decide_fails(&c, &s, good(), T0 + MIN(10), -EINVAL);
}

static void test_canary_names(void **state)
{
        (void)state;
        assert_string_equal(fm_canary_action_name(FM_CANARY_HOLD), "hold");
        assert_string_equal(fm_canary_action_name(FM_CANARY_ADVANCE), "advance");
        assert_string_equal(fm_canary_action_name(FM_CANARY_PROMOTE), "promote");
        assert_string_equal(fm_canary_action_name(FM_CANARY_ABORT), "abort");
        assert_null(fm_canary_action_name(_FM_CANARY_ACTION_MAX));
        assert_string_equal(fm_canary_reason_name(FM_CANARY_INSUFFICIENT_DATA),
                            "insufficient_data");
        assert_string_equal(fm_canary_reason_name(FM_CANARY_INCONCLUSIVE), "inconclusive");
        assert_string_equal(fm_canary_reason_name(FM_CANARY_INTERVAL), "interval_not_elapsed");
        assert_string_equal(fm_canary_reason_name(FM_CANARY_PASSED), "analysis_passed");
        assert_string_equal(fm_canary_reason_name(FM_CANARY_ERROR_REGRESSION),
                            "error_rate_regression");
        assert_string_equal(fm_canary_reason_name(FM_CANARY_LATENCY_REGRESSION),
                            "latency_regression");
        assert_string_equal(fm_canary_reason_name(FM_CANARY_TERMINAL), "terminal");
        assert_null(fm_canary_reason_name(_FM_CANARY_REASON_MAX));
}

static void test_canary_reset(void **state)
{
        struct fm_canary_config c = ccfg();
        struct fm_canary_state s;

        (void)state;
        memset(&s, SENTINEL, sizeof(s));
        fm_canary_reset(&s, T0);
        assert_int_equal(s.step, 0);
        assert_int_equal(s.step_since, T0);
        assert_false(s.aborted);
        assert_false(s.promoted);
        assert_int_equal(fm_canary_weight(&c, &s), 5);

        s.step = 3;
        assert_int_equal(fm_canary_weight(&c, &s), 50);
        s.step = 5;
        assert_int_equal(fm_canary_weight(&c, &s), 0); /* out of range */
        s.step = 3;
        s.aborted = true;
        assert_int_equal(fm_canary_weight(&c, &s), 0);
        s.aborted = false;
        s.promoted = true;
        assert_int_equal(fm_canary_weight(&c, &s), 100);
}

/* ---- canary: progression ---------------------------------------------- */

static void test_canary_walk(void **state)
{
        struct fm_canary_config c = ccfg();
        struct fm_canary_state s;
        struct fm_canary_decision d;
        static const uint32_t next[] = {10, 25, 50, 100};
        fm_ms t = T0;

        (void)state;
        fm_canary_reset(&s, t);
        for (uint32_t i = 0; i < ARRAY_SIZE(next); i++) {
                uint32_t cur = c.steps[i];

                /* healthy, but the interval has not elapsed */
                decide(&c, &s, good(), t + MIN(1), FM_CANARY_HOLD, FM_CANARY_INTERVAL, cur, &d);
                decide(&c, &s, good(), t + MIN(5) - 1, FM_CANARY_HOLD, FM_CANARY_INTERVAL, cur, &d);
                assert_ev(&d.evidence, "step", i);
                assert_ev(&d.evidence, "canary_weight_percent", cur);
                assert_ev(&d.evidence, "step_elapsed_s", 300 - 0.001);
                assert_ev(&d.evidence, "interval_s", 300);
                /* exactly one interval: advance, and the step restarts now */
                decide(&c, &s, good(), t + MIN(5), FM_CANARY_ADVANCE, FM_CANARY_PASSED, next[i],
                       &d);
                assert_ev(&d.evidence, "step", i);
                assert_ev(&d.evidence, "canary_weight_percent", cur);
                t += MIN(5);
                assert_int_equal(s.step, i + 1);
                assert_int_equal(s.step_since, t);
                /* at most one step per interval: at once again → hold */
                decide(&c, &s, good(), t, FM_CANARY_HOLD, FM_CANARY_INTERVAL, next[i], &d);
        }
        /* at 100 %: one more interval of analysis, then promote */
        decide(&c, &s, good(), t + MIN(4), FM_CANARY_HOLD, FM_CANARY_INTERVAL, 100, &d);
        decide(&c, &s, good(), t + MIN(7), FM_CANARY_PROMOTE, FM_CANARY_PASSED, 100, &d);
        assert_true(s.promoted);
        assert_false(s.aborted);
        assert_int_equal(s.step_since, t + MIN(7));

        /* terminal until reset, even with data that would abort */
        struct fm_canary_input worse = cin(side(1000, 0), side(1000, 500));
        decide(&c, &s, worse, t + MIN(60), FM_CANARY_HOLD, FM_CANARY_TERMINAL, 100, &d);
        decide(&c, &s, good(), t + MIN(60), FM_CANARY_HOLD, FM_CANARY_TERMINAL, 100, &d);
        fm_canary_reset(&s, t + MIN(61));
        decide(&c, &s, good(), t + MIN(62), FM_CANARY_HOLD, FM_CANARY_INTERVAL, 5, &d);
}

static void test_canary_late_ticks(void **state)
{
        struct fm_canary_config c = ccfg();
        struct fm_canary_state s;
        struct fm_canary_decision d;

        (void)state;
        /* a long gap between analyses still moves one step only */
        fm_canary_reset(&s, T0);
        decide(&c, &s, good(), T0 + MIN(60), FM_CANARY_ADVANCE, FM_CANARY_PASSED, 10, &d);
        decide(&c, &s, good(), T0 + MIN(60), FM_CANARY_HOLD, FM_CANARY_INTERVAL, 10, &d);
        decide(&c, &s, good(), T0 + MIN(64), FM_CANARY_HOLD, FM_CANARY_INTERVAL, 10, &d);
        decide(&c, &s, good(), T0 + MIN(65), FM_CANARY_ADVANCE, FM_CANARY_PASSED, 25, &d);

        /* a clock that went back holds, and extreme times do not overflow */
        decide(&c, &s, good(), T0, FM_CANARY_HOLD, FM_CANARY_INTERVAL, 25, &d);
        decide(&c, &s, good(), INT64_MIN, FM_CANARY_HOLD, FM_CANARY_INTERVAL, 25, &d);
        s.step_since = INT64_MIN;
        decide(&c, &s, good(), INT64_MAX, FM_CANARY_ADVANCE, FM_CANARY_PASSED, 50, &d);
        assert_int_equal(s.step_since, INT64_MAX);

        /* a single 100 % step: analysis for one interval, then promote */
        c.n_steps = 1;
        c.steps[0] = 100;
        fm_canary_reset(&s, T0);
        assert_int_equal(fm_canary_weight(&c, &s), 100);
        decide(&c, &s, good(), T0 + MIN(1), FM_CANARY_HOLD, FM_CANARY_INTERVAL, 100, &d);
        decide(&c, &s, good(), T0 + MIN(5), FM_CANARY_PROMOTE, FM_CANARY_PASSED, 100, &d);
}

static void test_canary_insufficient_data(void **state)
{
        struct fm_canary_config c = ccfg();
        struct fm_canary_state s;
        struct fm_canary_decision d;
        /* terrible numbers, but one side is under min_requests */
        struct fm_canary_input few_canary = cin(side_p99(10000, 0, 100.0), side_p99(99, 99, 900.0));
        struct fm_canary_input few_stable =
                cin(side_p99(99, 0, 100.0), side_p99(10000, 9000, 900.0));

        (void)state;
        fm_canary_reset(&s, T0);
        decide(&c, &s, few_canary, T0 + MIN(1), FM_CANARY_HOLD, FM_CANARY_INSUFFICIENT_DATA, 5, &d);
        /* after the interval: still hold, neither advance nor abort */
        decide(&c, &s, few_canary, T0 + MIN(30), FM_CANARY_HOLD, FM_CANARY_INSUFFICIENT_DATA, 5,
               &d);
        assert_ev(&d.evidence, "canary_requests", 99);
        assert_ev(&d.evidence, "stable_requests", 10000);
        assert_ev(&d.evidence, "min_requests", 100);
        assert_no_ev(&d.evidence, "error_z");
        assert_no_ev(&d.evidence, "p99_ratio");
        decide(&c, &s, few_stable, T0 + MIN(30), FM_CANARY_HOLD, FM_CANARY_INSUFFICIENT_DATA, 5,
               &d);
        decide(&c, &s, cin(side(0, 0), side(0, 0)), T0 + MIN(30), FM_CANARY_HOLD,
               FM_CANARY_INSUFFICIENT_DATA, 5, &d);
        assert_int_equal(s.step, 0);
        assert_int_equal(s.step_since, T0);

        /* exactly min_requests on both sides is enough */
        decide(&c, &s, cin(side(100, 1), side(100, 1)), T0 + MIN(30), FM_CANARY_ADVANCE,
               FM_CANARY_PASSED, 10, &d);
}

static void test_canary_error_regression(void **state)
{
        struct fm_canary_config c = ccfg();
        struct fm_canary_state s;
        struct fm_canary_decision d;

        (void)state;
        /* 5 % vs 10 % over 1000 requests each: z = 4.24, p = 1.1e-5 → abort, before the interval */
        fm_canary_reset(&s, T0);
        decide(&c, &s, cin(side(1000, 50), side(1000, 100)), T0 + MIN(1), FM_CANARY_ABORT,
               FM_CANARY_ERROR_REGRESSION, 0, &d);
        assert_true(d.rollback);
        assert_true(s.aborted);
        assert_false(s.promoted);
        assert_ev(&d.evidence, "stable_error_rate", 0.05);
        assert_ev(&d.evidence, "canary_error_rate", 0.10);
        assert_ev(&d.evidence, "error_margin", 0.2);
        assert_ev_rel(&d.evidence, "error_z", 4.244763599780089, 1e-9);
        assert_ev_rel(&d.evidence, "error_p_value", 1.0941199668070109e-05, 1e-6);
        assert_ev(&d.evidence, "canary_weight_percent", 5); /* the weight it aborted from */

        /* terminal: the rollback is asked for once, the weight stays 0 */
        decide(&c, &s, good(), T0 + MIN(10), FM_CANARY_HOLD, FM_CANARY_TERMINAL, 0, &d);
        assert_false(d.rollback);

        /* the same observed 5 % vs 10 % over 100 requests each: p = 0.09 → wait, never advance */
        c.min_requests = 50;
        fm_canary_reset(&s, T0);
        for (fm_ms t = T0; t <= T0 + MIN(30); t += MIN(1))
                decide(&c, &s, cin(side(100, 5), side(100, 10)), t, FM_CANARY_HOLD,
                       FM_CANARY_INCONCLUSIVE, 5, &d);
        assert_ev_rel(&d.evidence, "error_z", 1.3423121104280487, 1e-9);
        assert_ev_rel(&d.evidence, "error_p_value", 0.08974740918651529, 1e-6);
        /* more data for the same rates makes it significant */
        decide(&c, &s, cin(side(1000, 50), side(1000, 100)), T0 + MIN(31), FM_CANARY_ABORT,
               FM_CANARY_ERROR_REGRESSION, 0, &d);

        /* just either side of the confidence: 25 vs 15 of 1000 is p = 0.055, 26 is p = 0.041 */
        c = ccfg();
        fm_canary_reset(&s, T0);
        decide(&c, &s, cin(side(1000, 15), side(1000, 25)), T0 + MIN(10), FM_CANARY_HOLD,
               FM_CANARY_INCONCLUSIVE, 5, &d);
        decide(&c, &s, cin(side(1000, 15), side(1000, 26)), T0 + MIN(10), FM_CANARY_ABORT,
               FM_CANARY_ERROR_REGRESSION, 0, &d);

        /* the confidence is configurable: p = 0.033 aborts at 95 %, not at 99 % */
        fm_canary_reset(&s, T0);
        c.confidence = 0.99;
        decide(&c, &s, cin(side(1000, 10), side(1000, 20)), T0 + MIN(10), FM_CANARY_HOLD,
               FM_CANARY_INCONCLUSIVE, 5, &d);
        c.confidence = 0.95;
        decide(&c, &s, cin(side(1000, 10), side(1000, 20)), T0 + MIN(10), FM_CANARY_ABORT,
               FM_CANARY_ERROR_REGRESSION, 0, &d);

        /* significant but within the margin: 11 % vs 10 % (ratio 1.1 < 1.2) advances */
        fm_canary_reset(&s, T0);
        decide(&c, &s, cin(side(100000, 10000), side(100000, 11000)), T0 + MIN(5),
               FM_CANARY_ADVANCE, FM_CANARY_PASSED, 10, &d);
        assert_ev_rel(&d.evidence, "error_z", 7.294219615409076, 1e-9);

        /* a canary better than stable is no regression, however significant */
        fm_canary_reset(&s, T0);
        decide(&c, &s, cin(side(1000, 100), side(1000, 0)), T0 + MIN(5), FM_CANARY_ADVANCE,
               FM_CANARY_PASSED, 10, &d);

        /* no errors on either side: z 0, p 1 */
        fm_canary_reset(&s, T0);
        decide(&c, &s, cin(side(1000, 0), side(1000, 0)), T0 + MIN(5), FM_CANARY_ADVANCE,
               FM_CANARY_PASSED, 10, &d);
        assert_ev(&d.evidence, "error_z", 0);
        assert_ev(&d.evidence, "error_p_value", 1);
        /* all errors on both sides: no difference either */
        decide(&c, &s, cin(side(1000, 1000), side(1000, 1000)), T0 + MIN(10), FM_CANARY_ADVANCE,
               FM_CANARY_PASSED, 25, &d);

        /* errors where stable has none: 3 of 1000 is p = 0.042 */
        fm_canary_reset(&s, T0);
        decide(&c, &s, cin(side(1000, 0), side(1000, 3)), T0 + MIN(5), FM_CANARY_ABORT,
               FM_CANARY_ERROR_REGRESSION, 0, &d);
}

static void test_canary_latency_regression(void **state)
{
        struct fm_canary_config c = ccfg();
        struct fm_canary_state s;
        struct fm_canary_decision d;

        (void)state;
        /* 160 / 100 = 1.6 > 1.5: abort, before the interval */
        fm_canary_reset(&s, T0);
        decide(&c, &s, cin(side_p99(1000, 10, 100.0), side_p99(1000, 10, 160.0)), T0 + MIN(1),
               FM_CANARY_ABORT, FM_CANARY_LATENCY_REGRESSION, 0, &d);
        assert_ev(&d.evidence, "p99_ratio", 1.6);
        assert_ev(&d.evidence, "max_p99_ratio", 1.5);
        assert_true(s.aborted);

        /* exactly at the limit passes */
        fm_canary_reset(&s, T0);
        decide(&c, &s, cin(side_p99(1000, 10, 100.0), side_p99(1000, 10, 150.0)), T0 + MIN(5),
               FM_CANARY_ADVANCE, FM_CANARY_PASSED, 10, &d);
        assert_ev(&d.evidence, "p99_ratio", 1.5);

        /* p99 is not judged without both sides' p99, or with a stable p99 of 0 */
        fm_canary_reset(&s, T0);
        decide(&c, &s, cin(side(1000, 10), side_p99(1000, 10, 900.0)), T0 + MIN(5),
               FM_CANARY_ADVANCE, FM_CANARY_PASSED, 10, &d);
        assert_no_ev(&d.evidence, "p99_ratio");
        decide(&c, &s, cin(side_p99(1000, 10, 0.0), side_p99(1000, 10, 900.0)), T0 + MIN(10),
               FM_CANARY_ADVANCE, FM_CANARY_PASSED, 25, &d);
        assert_no_ev(&d.evidence, "p99_ratio");

        /* nor below min_requests */
        decide(&c, &s, cin(side_p99(1000, 10, 100.0), side_p99(99, 0, 900.0)), T0 + MIN(20),
               FM_CANARY_HOLD, FM_CANARY_INSUFFICIENT_DATA, 25, &d);

        /* both regressions at once: the error rate is named, both are in the evidence */
        decide(&c, &s, cin(side_p99(1000, 50, 100.0), side_p99(1000, 100, 900.0)), T0 + MIN(20),
               FM_CANARY_ABORT, FM_CANARY_ERROR_REGRESSION, 0, &d);
        assert_ev(&d.evidence, "p99_ratio", 9.0);

        /* a latency regression also aborts while the error rate is only inconclusive */
        fm_canary_reset(&s, T0);
        decide(&c, &s, cin(side_p99(1000, 15, 100.0), side_p99(1000, 25, 200.0)), T0 + MIN(1),
               FM_CANARY_ABORT, FM_CANARY_LATENCY_REGRESSION, 0, &d);

        /* the limit is configurable */
        c.max_p99_ratio = 2.0;
        fm_canary_reset(&s, T0);
        decide(&c, &s, cin(side_p99(1000, 10, 100.0), side_p99(1000, 10, 160.0)), T0 + MIN(5),
               FM_CANARY_ADVANCE, FM_CANARY_PASSED, 10, &d);
}

/*
 * An analysis that flips between healthy, inconclusive and short of data
 * every minute: weights only ever move forward, at most one step per
 * interval, and never back except to 0 on abort.
 */
static void test_canary_flapping(void **state)
{
        struct fm_canary_config c = ccfg();
        struct fm_canary_state s;
        struct fm_canary_decision d;
        const struct fm_canary_input inputs[] = {
                good(), cin(side(1000, 15), side(1000, 25)), /* inconclusive */
                cin(side(1000, 15), side(10, 0)),            /* short of data */
                cin(side(1000, 15), side(1000, 16)),         /* healthy */
        };
        uint64_t seed = 42;
        uint32_t weight = 5, changes = 0;
        fm_ms last_change = T0;

        (void)state;
        fm_canary_reset(&s, T0);
        for (fm_ms t = T0 + MIN(1); t <= T0 + MIN(120); t += MIN(1)) {
                struct fm_canary_input in = inputs[rnd_below(&seed, ARRAY_SIZE(inputs))];

                memset(&d, SENTINEL, sizeof(d));
                int rc = fm_canary_decide(&c, &s, &in, t, &d);
                assert_true(rc == 0 || rc == 1);
                assert_true(d.action == FM_CANARY_HOLD || d.action == FM_CANARY_ADVANCE ||
                            d.action == FM_CANARY_PROMOTE);
                assert_true(d.weight >= weight);
                if (d.weight != weight) {
                        assert_true(t - last_change >= c.interval);
                        last_change = t;
                        changes++;
                }
                weight = d.weight;
        }
        assert_true(s.promoted);
        assert_int_equal(weight, 100);
        assert_int_equal(changes, 4);

        /* the same flapping with a regression: forward, then straight to 0, and it stays */
        fm_canary_reset(&s, T0);
        weight = 5;
        bool aborted = false;
        for (fm_ms t = T0 + MIN(1); t <= T0 + MIN(120); t += MIN(1)) {
                struct fm_canary_input in = inputs[rnd_below(&seed, ARRAY_SIZE(inputs))];

                if (t == T0 + MIN(17))
                        in = cin(side(1000, 50), side(1000, 100));
                assert_true(fm_canary_decide(&c, &s, &in, t, &d) >= 0);
                if (aborted)
                        assert_int_equal(d.weight, 0);
                else if (d.action == FM_CANARY_ABORT)
                        aborted = true;
                else
                        assert_true(d.weight >= weight);
                weight = d.weight;
        }
        assert_true(aborted);
        assert_true(s.aborted);
        assert_int_equal(weight, 0);
}

static void test_canary_invalid(void **state)
{
        struct fm_canary_config c = ccfg();
        struct fm_canary_state s;
        struct fm_canary_decision d;

        (void)state;
        fm_canary_reset(&s, T0);
        /* errors over requests */
        decide_fails(&c, &s, cin(side(100, 101), side(1000, 0)), T0 + MIN(5), -EINVAL);
        decide_fails(&c, &s, cin(side(1000, 0), side(100, 101)), T0 + MIN(5), -EINVAL);
        /* a p99 that is not a duration */
        decide_fails(&c, &s, cin(side_p99(1000, 0, NAN), side(1000, 0)), T0 + MIN(5), -EINVAL);
        decide_fails(&c, &s, cin(side(1000, 0), side_p99(1000, 0, -1.0)), T0 + MIN(5), -EINVAL);
        decide_fails(&c, &s, cin(side(1000, 0), side_p99(1000, 0, INFINITY)), T0 + MIN(5), -EINVAL);
        /* ... is ignored when has_p99 is false */
        struct fm_canary_input in = cin(side(1000, 0), side(1000, 0));
        in.canary.p99_ms = NAN;
        decide(&c, &s, in, T0 + MIN(5), FM_CANARY_ADVANCE, FM_CANARY_PASSED, 10, &d);

        /* a state outside the configuration (steps shrunk under a running canary) */
        s.step = 5;
        decide_fails(&c, &s, good(), T0 + MIN(20), -EINVAL);
        s.step = 1;
        s.aborted = true;
        s.promoted = true;
        decide_fails(&c, &s, good(), T0 + MIN(20), -EINVAL);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_traffic_config),
                cmocka_unit_test(test_traffic_names),
                cmocka_unit_test(test_all_healthy),
                cmocka_unit_test(test_equal_one_ejected),
                cmocka_unit_test(test_unequal_bases),
                cmocka_unit_test(test_max_ejection_percent_boundary),
                cmocka_unit_test(test_priority_order),
                cmocka_unit_test(test_envoy_small_pool),
                cmocka_unit_test(test_floor_holds),
                cmocka_unit_test(test_half_open_probe),
                cmocka_unit_test(test_zero_base),
                cmocka_unit_test(test_eject_errors),
                cmocka_unit_test(test_weights_property),
                cmocka_unit_test(test_canary_config),
                cmocka_unit_test(test_canary_names),
                cmocka_unit_test(test_canary_reset),
                cmocka_unit_test(test_canary_walk),
                cmocka_unit_test(test_canary_late_ticks),
                cmocka_unit_test(test_canary_insufficient_data),
                cmocka_unit_test(test_canary_error_regression),
                cmocka_unit_test(test_canary_latency_regression),
                cmocka_unit_test(test_canary_flapping),
                cmocka_unit_test(test_canary_invalid),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
