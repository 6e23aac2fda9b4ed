/* SPDX-License-Identifier: MIT */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "tune_grid.h"

static void test_parse(void **state)
{
        struct fm_tunegrid g = {0};
        (void)state;

        assert_int_equal(fm_tunegrid_add(&g, "breaker.failure_rate=0.1:0.9:0.1"), 0);
        assert_int_equal(g.n_params, 1);
        assert_string_equal(g.param[0].name, "breaker.failure_rate");
        assert_int_equal(g.param[0].n, 9);
        assert_int_equal(g.points, 9);
        assert_int_equal(fm_tunegrid_add(&g, "breaker.min_requests=10:35:10"), 0);
        assert_int_equal(g.param[1].n, 3); /* 10, 20, 30: 35 is not reached */
        assert_int_equal(g.points, 27);
        assert_int_equal(fm_tunegrid_add(&g, "tick_s=1:1:0.5"), 0);
        assert_int_equal(g.param[2].n, 1);
        assert_int_equal(g.points, 27);

        static const char *const bad[] = {
                "breaker.failure_rate=0.1:0.9:0.1", /* twice */
                "x",
                "x=1:2",
                "x=1:2:3:4",
                "x=2:1:1",
                "x=1:2:0",
                "x=1:2:-1",
                "x=a:2:1",
                "x=1:2:nan",
                "x=1:inf:1",
                "=1:2:1",
                "Breaker.x=1:2:1",
                "a..b=1:2:1",
                ".a=1:2:1",
                "a.=1:2:1",
                "a b=1:2:1",
                "x=:2:1",
        };
        for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++)
                assert_int_equal(fm_tunegrid_add(&g, bad[k]), -EINVAL);
        assert_int_equal(g.n_params, 3);
}

static void test_caps(void **state)
{
        struct fm_tunegrid g = {0};
        char spec[64];
        (void)state;

        assert_int_equal(fm_tunegrid_add(&g, "a=1:10000:1"), 0);
        assert_int_equal(g.points, FM_TUNEGRID_GRID_MAX);
        assert_int_equal(fm_tunegrid_add(&g, "b=1:2:1"), -E2BIG);
        assert_int_equal(g.n_params, 1);

        struct fm_tunegrid h = {0};
        assert_int_equal(fm_tunegrid_add(&h, "a=1:10001:1"), -E2BIG);
        for (int k = 0; k < FM_TUNEGRID_PARAMS_MAX; k++) {
                snprintf(spec, sizeof(spec), "p%d=1:1:1", k);
                assert_int_equal(fm_tunegrid_add(&h, spec), 0);
        }
        assert_int_equal(fm_tunegrid_add(&h, "p9=1:1:1"), -E2BIG);
}

static void test_points(void **state)
{
        struct fm_tunegrid g = {0};
        double v[FM_TUNEGRID_PARAMS_MAX];
        (void)state;

        assert_int_equal(fm_tunegrid_add(&g, "a=0.1:0.3:0.1"), 0);
        assert_int_equal(fm_tunegrid_add(&g, "b=5:6:1"), 0);
        assert_int_equal(g.points, 6);
        /* the last parameter varies fastest */
        static const double want[6][2] = {{0.1, 5}, {0.1, 6}, {0.2, 5},
                                          {0.2, 6}, {0.3, 5}, {0.3, 6}};
        for (uint64_t i = 0; i < g.points; i++) {
                fm_tunegrid_point(&g, i, v);
                /* exact: 0.1 + 2 x 0.1 prints as 0.3, not 0.30000000000000004 */
                assert_true(v[0] == want[i][0]);
                assert_true(v[1] == want[i][1]);
        }
        assert_true(fm_tunegrid_value(&g.param[0], 2) <= g.param[0].hi);
}

static void test_set(void **state)
{
        json_object *root = json_tokener_parse("{\"breaker\":{\"window_s\":30},\"traffic\":null,"
                                               "\"dry_run\":true}");
        (void)state;
        assert_non_null(root);

        assert_int_equal(fm_tunegrid_set(root, "breaker.failure_rate", 0.25), 0);
        assert_int_equal(fm_tunegrid_set(root, "breaker.min_requests", 40), 0);
        assert_int_equal(fm_tunegrid_set(root, "traffic.healthy_floor", 0.5), 0);
        assert_int_equal(fm_tunegrid_set(root, "rollback.accuracy_drop", 0.125), 0);
        assert_int_equal(fm_tunegrid_set(root, "tick_s", 2), 0);
        assert_int_equal(fm_tunegrid_set(root, "dry_run.x", 1), -EINVAL);
        assert_int_equal(fm_tunegrid_set(root, "breaker.window_s.x", 1), -EINVAL);
        assert_string_equal(json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN),
                            "{\"breaker\":{\"window_s\":30,\"failure_rate\":0.25,\"min_requests\":"
                            "40},\"traffic\":{\"healthy_floor\":0.5},\"dry_run\":true,"
                            "\"rollback\":{\"accuracy_drop\":0.125},\"tick_s\":2}");
        /* a value set again replaces the old one */
        assert_int_equal(fm_tunegrid_set(root, "breaker.window_s", 12.5), 0);
        json_object *b, *w;
        assert_true(json_object_object_get_ex(root, "breaker", &b));
        assert_true(json_object_object_get_ex(b, "window_s", &w));
        assert_true(json_object_is_type(w, json_type_double));
        assert_true(json_object_get_double(w) == 12.5);
        json_object_put(root);

        json_object *arr = json_object_new_array();
        assert_int_equal(fm_tunegrid_set(arr, "a", 1), -EINVAL);
        json_object_put(arr);
}

static void test_objective(void **state)
{
        (void)state;
        assert_true(fm_tunegrid_objective(2.5, 0, 10) == 2.5);
        assert_true(fm_tunegrid_objective(2.5, 3, 10) == 32.5);
        assert_true(fm_tunegrid_objective(0, 3, 0) == 0);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_parse),     cmocka_unit_test(test_caps),
                cmocka_unit_test(test_points),    cmocka_unit_test(test_set),
                cmocka_unit_test(test_objective),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
