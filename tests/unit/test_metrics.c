/* SPDX-License-Identifier: MIT */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "metrics.h"
#include "util.h"

/* ---- helpers ---------------------------------------------------------- */

static const char *text(const struct fm_buf *b)
{
        return b->data ? b->data : "";
}

/* The buffer must hold exactly `want`, and the writer must have returned 0. */
#define assert_text(r, b, want)                                                                    \
        do {                                                                                       \
                assert_int_equal((r), 0);                                                          \
                assert_string_equal(text(b), (want));                                              \
                assert_int_equal((b)->len, strlen(want));                                          \
        } while (0)

/* One sample without labels; returns the value as written (between ' ' and '\n'). */
static const char *value_text(struct fm_buf *b, double v)
{
        fm_buf_reset(b);
        assert_int_equal(fm_prom_sample(b, "v", 0, NULL, NULL, v), 0);
        assert_true(b->len >= 3 && strncmp(b->data, "v ", 2) == 0);
        assert_int_equal(b->data[b->len - 1], '\n');
        b->data[b->len - 1] = '\0'; /* drop the newline for comparison */
        return b->data + 2;
}

/* ---- families ----------------------------------------------------------- */

static void test_family(void **state)
{
        struct fm_buf b = {0};

        (void)state;
        assert_text(fm_prom_family(&b, "fm_events_total", "counter", "Events ingested."), &b,
                    "# HELP fm_events_total Events ingested.\n"
                    "# TYPE fm_events_total counter\n");
        assert_text(fm_prom_family(&b, "fm_up", "gauge", "Whether we are up."), &b,
                    "# HELP fm_events_total Events ingested.\n"
                    "# TYPE fm_events_total counter\n"
                    "# HELP fm_up Whether we are up.\n"
                    "# TYPE fm_up gauge\n");
        fm_buf_done(&b);
}

static void test_family_types(void **state)
{
        static const char *const ok[] = {"counter", "gauge", "histogram", "summary", "untyped"};
        static const char *const bad[] = {"", "Counter", "hist", "counter ", "gauge\n"};
        struct fm_buf b = {0};
        char want[128];

        (void)state;
        for (size_t i = 0; i < ARRAY_SIZE(ok); i++) {
                fm_buf_reset(&b);
                snprintf(want, sizeof(want), "# TYPE m %s\n", ok[i]);
                assert_text(fm_prom_family(&b, "m", ok[i], NULL), &b, want);
        }
        for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
                fm_buf_reset(&b);
                assert_int_equal(fm_prom_family(&b, "m", bad[i], "h"), -EINVAL);
                assert_int_equal(b.len, 0);
        }
        assert_int_equal(fm_prom_family(&b, "m", NULL, "h"), -EINVAL);
        fm_buf_done(&b);
}

/* HELP escapes backslash and newline only; a double quote stays as it is. */
static void test_family_help_escaping(void **state)
{
        struct fm_buf b = {0};

        (void)state;
        assert_text(fm_prom_family(&b, "m", "gauge", "a\\b\nc\"d\\\\\n\n"), &b,
                    "# HELP m a\\\\b\\nc\"d\\\\\\\\\\n\\n\n"
                    "# TYPE m gauge\n");
        fm_buf_reset(&b);
        /* Empty help: the reference writer keeps the separating space. */
        assert_text(fm_prom_family(&b, "m", "gauge", ""), &b, "# HELP m \n# TYPE m gauge\n");
        fm_buf_reset(&b);
        assert_text(fm_prom_family(&b, "m", "gauge", NULL), &b, "# TYPE m gauge\n");
        fm_buf_done(&b);
}

static void test_names(void **state)
{
        static const char *const ok[] = {"a", "_", ":", "a:b_c9", "fm_http_requests_total", "A_Z"};
        static const char *const bad[] = {"", "9a", "a b", "a-b", "a{", "é", "a\n", "a.b"};
        struct fm_buf b = {0};

        (void)state;
        for (size_t i = 0; i < ARRAY_SIZE(ok); i++) {
                assert_int_equal(fm_prom_family(&b, ok[i], "gauge", "h"), 0);
                assert_int_equal(fm_prom_sample(&b, ok[i], 0, NULL, NULL, 1), 0);
        }
        fm_buf_reset(&b);
        for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
                assert_int_equal(fm_prom_family(&b, bad[i], "gauge", "h"), -EINVAL);
                assert_int_equal(fm_prom_sample(&b, bad[i], 0, NULL, NULL, 1), -EINVAL);
        }
        assert_int_equal(fm_prom_family(&b, NULL, "gauge", "h"), -EINVAL);
        assert_int_equal(fm_prom_sample(&b, NULL, 0, NULL, NULL, 1), -EINVAL);
        assert_int_equal(fm_prom_family(NULL, "m", "gauge", "h"), -EINVAL);
        assert_int_equal(fm_prom_sample(NULL, "m", 0, NULL, NULL, 1), -EINVAL);
        assert_int_equal(b.len, 0);
        fm_buf_done(&b);
}

/* ---- samples ------------------------------------------------------------ */

static void test_sample_labels(void **state)
{
        const char *const k1[] = {"deployment"};
        const char *const v1[] = {"llama-70b"};
        const char *const k2[] = {"deployment", "version"};
        const char *const v2[] = {"llama-70b", "v2"};
        struct fm_buf b = {0};

        (void)state;
        assert_text(fm_prom_sample(&b, "fm_up", 0, NULL, NULL, 1), &b, "fm_up 1\n");
        fm_buf_reset(&b);
        /* n_labels 0 ignores the arrays, even when given. */
        assert_text(fm_prom_sample(&b, "fm_up", 0, k1, v1, 1), &b, "fm_up 1\n");
        fm_buf_reset(&b);
        assert_text(fm_prom_sample(&b, "fm_x_total", 1, k1, v1, 42), &b,
                    "fm_x_total{deployment=\"llama-70b\"} 42\n");
        fm_buf_reset(&b);
        assert_text(fm_prom_sample(&b, "fm_x_total", 2, k2, v2, 0.5), &b,
                    "fm_x_total{deployment=\"llama-70b\",version=\"v2\"} 0.5\n");
        fm_buf_reset(&b);
        /* An empty value is legal. */
        const char *const empty[] = {""};
        assert_text(fm_prom_sample(&b, "m", 1, k1, empty, 3), &b, "m{deployment=\"\"} 3\n");
        fm_buf_done(&b);
}

static void test_label_escaping(void **state)
{
        const char *const k[] = {"a", "b", "c", "d", "e"};
        const char *const v[] = {"back\\slash", "dq\"uote", "new\nline", "\\\"\n\\\"\n",
                                 "plain 'single' {} = , # é\t"};
        struct fm_buf b = {0};

        (void)state;
        assert_text(fm_prom_sample(&b, "m", 5, k, v, 1), &b,
                    "m{a=\"back\\\\slash\",b=\"dq\\\"uote\",c=\"new\\nline\","
                    "d=\"\\\\\\\"\\n\\\\\\\"\\n\",e=\"plain 'single' {} = , # é\t\"} 1\n");
        fm_buf_done(&b);
}

/* Bad label sets fail with -EINVAL and leave what the buffer held before. */
static void test_label_errors(void **state)
{
        static const char *const bad_keys[] = {"", "1a", "a-b", "a b", "a:b", "é", "a\""};
        const char *const two_same[] = {"x", "x"};
        const char *const vals[] = {"1", "2"};
        const char *const null_val[] = {"1", NULL};
        const char *const good[] = {"x", "y"};
        struct fm_buf b = {0};

        (void)state;
        assert_int_equal(fm_buf_printf(&b, "before\n"), 0);
        for (size_t i = 0; i < ARRAY_SIZE(bad_keys); i++) {
                /* The bad key second, so the first label has been written by then. */
                const char *const keys[] = {"ok", bad_keys[i]};

                assert_int_equal(fm_prom_sample(&b, "m", 2, keys, vals, 1), -EINVAL);
                assert_string_equal(text(&b), "before\n");
        }
        const char *const null_key[] = {"ok", NULL};
        assert_int_equal(fm_prom_sample(&b, "m", 2, null_key, vals, 1), -EINVAL);
        assert_int_equal(fm_prom_sample(&b, "m", 2, two_same, vals, 1), -EINVAL);
        assert_int_equal(fm_prom_sample(&b, "m", 2, good, null_val, 1), -EINVAL);
        assert_int_equal(fm_prom_sample(&b, "m", 1, NULL, vals, 1), -EINVAL);
        assert_int_equal(fm_prom_sample(&b, "m", 1, good, NULL, 1), -EINVAL);
        assert_string_equal(text(&b), "before\n");
        assert_int_equal(b.len, strlen("before\n"));
        fm_buf_done(&b);
}

/* ---- numbers ------------------------------------------------------------ */

struct num_case {
        double v;
        const char *want;
};

static void test_values(void **state)
{
        static const struct num_case cases[] = {
                /* Integral values that fit in int64: plain digits. */
                {0.0, "0"},
                {-0.0, "0"},
                {1.0, "1"},
                {-1.0, "-1"},
                {42.0, "42"},
                {1e6, "1000000"},
                {1e15, "1000000000000000"},
                {9007199254740992.0, "9007199254740992"},         /* 2^53 */
                {9007199254740994.0, "9007199254740994"},         /* 2^53 + 2 */
                {-9223372036854775808.0, "-9223372036854775808"}, /* -2^63 */
                {9223372036854774784.0, "9223372036854774784"},   /* largest double < 2^63 */
                /* Integral but beyond int64: shortest round-trip form. */
                {9223372036854775808.0, "9.223372036854776e+18"}, /* 2^63 */
                {1e20, "1e+20"},
                {-1e300, "-1e+300"},
                {DBL_MAX, "1.7976931348623157e+308"},
                /* Fractions: the shortest form that reads back the same. */
                {0.5, "0.5"},
                {-2.25, "-2.25"},
                {0.1, "0.1"},
                {0.1 + 0.2, "0.30000000000000004"},
                {1.0 / 3.0, "0.3333333333333333"},
                {2.0 / 3.0, "0.6666666666666666"},
                {123456.789, "123456.789"},
                {1.5e-7, "1.5e-07"},
                {DBL_MIN, "2.2250738585072014e-308"},
                {4.9406564584124654e-324, "4.94065645841247e-324"}, /* subnormal: 15 digits */
                /* Non-finite, as Prometheus spells them. */
                {INFINITY, "+Inf"},
                {-INFINITY, "-Inf"},
                {NAN, "NaN"},
                {-NAN, "NaN"},
        };
        struct fm_buf b = {0};

        (void)state;
        for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
                const char *got = value_text(&b, cases[i].v);

                if (strcmp(got, cases[i].want) != 0)
                        fail_msg("case %zu: %.17g written as \"%s\", want \"%s\"", i, cases[i].v,
                                 got, cases[i].want);
        }
        fm_buf_done(&b);
}

/* Every finite value written must read back bit-exactly (modulo the sign of zero). */
static void test_values_round_trip(void **state)
{
        struct fm_buf b = {0};
        uint64_t x = UINT64_C(0x9e3779b97f4a7c15);

        (void)state;
        for (int i = 0; i < 20000; i++) {
                double v;

                /* xorshift over the bit patterns: every exponent and mantissa shape. */
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                memcpy(&v, &x, sizeof(v));
                if (!isfinite(v))
                        continue;
                const char *got = value_text(&b, v);
                char *end;
                double back = strtod(got, &end);

                assert_int_equal(*end, '\0');
                if (!(back == v))
                        fail_msg("%a written as \"%s\" reads back as %a", v, got, back);
                assert_null(strchr(got, ','));
        }
        fm_buf_done(&b);
}

/* ---- histogram ---------------------------------------------------------- */

static void test_hist_init_errors(void **state)
{
        struct fm_metric_hist h, orig;
        double many[FM_METRIC_HIST_MAX_BOUNDS + 1];

        (void)state;
        for (size_t i = 0; i < ARRAY_SIZE(many); i++)
                many[i] = (double)i;
        memset(&h, 0xa5, sizeof(h));
        orig = h;

        const double equal[] = {1, 1};
        const double down[] = {1, 2, 1.5};
        const double nan_b[] = {1, NAN};
        const double nan_first[] = {NAN, 1};
        const double inf_b[] = {1, INFINITY};
        const double ninf_b[] = {-INFINITY, 1};

        assert_int_equal(fm_metric_hist_init(&h, equal, 2), -EINVAL);
        assert_int_equal(fm_metric_hist_init(&h, down, 3), -EINVAL);
        assert_int_equal(fm_metric_hist_init(&h, nan_b, 2), -EINVAL);
        assert_int_equal(fm_metric_hist_init(&h, nan_first, 2), -EINVAL);
        assert_int_equal(fm_metric_hist_init(&h, inf_b, 2), -EINVAL);
        assert_int_equal(fm_metric_hist_init(&h, ninf_b, 2), -EINVAL);
        assert_int_equal(fm_metric_hist_init(&h, many, FM_METRIC_HIST_MAX_BOUNDS + 1), -EINVAL);
        assert_int_equal(fm_metric_hist_init(&h, NULL, 1), -EINVAL);
        assert_int_equal(fm_metric_hist_init(NULL, many, 1), -EINVAL);
        /* Failures leave the histogram untouched. */
        assert_memory_equal(&h, &orig, sizeof(h));

        /* The limits themselves are fine. */
        assert_int_equal(fm_metric_hist_init(&h, many, FM_METRIC_HIST_MAX_BOUNDS), 0);
        assert_int_equal(h.n, FM_METRIC_HIST_MAX_BOUNDS);
        assert_int_equal(h.total, 0);
        assert_true(h.sum == 0.0);
        for (size_t i = 0; i <= FM_METRIC_HIST_MAX_BOUNDS; i++)
                assert_int_equal(h.count[i], 0);
        assert_int_equal(fm_metric_hist_init(&h, NULL, 0), 0);
        assert_int_equal(h.n, 0);
        const double neg[] = {-10, -1, -0.5, 0};
        assert_int_equal(fm_metric_hist_init(&h, neg, 4), 0);
}

/* le is "less or equal": a value equal to a bound goes into that bound's bucket. */
static void test_hist_boundaries(void **state)
{
        const double bounds[] = {0.1, 1, 10};
        struct fm_metric_hist h;

        (void)state;
        assert_int_equal(fm_metric_hist_init(&h, bounds, 3), 0);
        fm_metric_hist_observe(&h, 0.1);
        assert_int_equal(h.count[0], 1);
        fm_metric_hist_observe(&h, nextafter(0.1, 1));
        assert_int_equal(h.count[1], 1);
        fm_metric_hist_observe(&h, 1);
        assert_int_equal(h.count[1], 2);
        fm_metric_hist_observe(&h, 10);
        assert_int_equal(h.count[2], 1);
        fm_metric_hist_observe(&h, nextafter(10, 11));
        assert_int_equal(h.count[3], 1);
        fm_metric_hist_observe(&h, -5);
        assert_int_equal(h.count[0], 2);
        fm_metric_hist_observe(&h, -INFINITY);
        assert_int_equal(h.count[0], 3);
        fm_metric_hist_observe(&h, INFINITY);
        assert_int_equal(h.count[3], 2);
        assert_int_equal(h.total, 8);
        assert_true(isnan(h.sum)); /* -Inf + +Inf */

        /* Every bucket of a full-size histogram, hit exactly at its bound. */
        double many[FM_METRIC_HIST_MAX_BOUNDS];
        for (size_t i = 0; i < ARRAY_SIZE(many); i++)
                many[i] = ldexp(1, (int)i - 10);
        assert_int_equal(fm_metric_hist_init(&h, many, FM_METRIC_HIST_MAX_BOUNDS), 0);
        for (size_t i = 0; i < ARRAY_SIZE(many); i++) {
                fm_metric_hist_observe(&h, many[i]);
                for (size_t j = 0; j <= FM_METRIC_HIST_MAX_BOUNDS; j++)
                        assert_int_equal(h.count[j], j <= i ? 1 : 0);
        }
}

static void test_hist_output(void **state)
{
        const double bounds[] = {0.005, 0.25, 1, 2.5};
        const char *const k[] = {"deployment", "verb"};
        const char *const v[] = {"a\"b", "GET"};
        /* Binary fractions, so the sum is exact; 0.25 and 2.5 sit on bounds. */
        static const double obs[] = {0.00390625, 0.25, 0.125, 0.25, 0.5, 2.5, 2.5, 3.25};
        struct fm_metric_hist h;
        struct fm_buf b = {0};

        (void)state;
        assert_int_equal(fm_metric_hist_init(&h, bounds, 4), 0);
        for (size_t i = 0; i < ARRAY_SIZE(obs); i++)
                fm_metric_hist_observe(&h, obs[i]);

        assert_int_equal(fm_prom_family(&b, "fm_latency_seconds", "histogram", "Latency."), 0);
        assert_text(fm_prom_hist(&b, "fm_latency_seconds", 2, k, v, &h), &b,
                    "# HELP fm_latency_seconds Latency.\n"
                    "# TYPE fm_latency_seconds histogram\n"
                    "fm_latency_seconds_bucket{deployment=\"a\\\"b\",verb=\"GET\",le=\"0.005\"} 1\n"
                    "fm_latency_seconds_bucket{deployment=\"a\\\"b\",verb=\"GET\",le=\"0.25\"} 4\n"
                    "fm_latency_seconds_bucket{deployment=\"a\\\"b\",verb=\"GET\",le=\"1\"} 5\n"
                    "fm_latency_seconds_bucket{deployment=\"a\\\"b\",verb=\"GET\",le=\"2.5\"} 7\n"
                    "fm_latency_seconds_bucket{deployment=\"a\\\"b\",verb=\"GET\",le=\"+Inf\"} 8\n"
                    "fm_latency_seconds_sum{deployment=\"a\\\"b\",verb=\"GET\"} 9.37890625\n"
                    "fm_latency_seconds_count{deployment=\"a\\\"b\",verb=\"GET\"} 8\n");

        /* No labels: le is the only one. */
        fm_buf_reset(&b);
        assert_text(fm_prom_hist(&b, "h", 0, NULL, NULL, &h), &b,
                    "h_bucket{le=\"0.005\"} 1\n"
                    "h_bucket{le=\"0.25\"} 4\n"
                    "h_bucket{le=\"1\"} 5\n"
                    "h_bucket{le=\"2.5\"} 7\n"
                    "h_bucket{le=\"+Inf\"} 8\n"
                    "h_sum 9.37890625\n"
                    "h_count 8\n");
        fm_buf_done(&b);
}

static void test_hist_edge_cases(void **state)
{
        const double bounds[] = {-1, 0, 1e20, 1e-9};
        const char *const k[] = {"x"};
        const char *const v[] = {"y"};
        struct fm_metric_hist h;
        struct fm_buf b = {0};

        (void)state;
        /* Empty histogram with awkward bounds: counts 0, sum 0. */
        assert_int_equal(fm_metric_hist_init(&h, bounds, 3), 0);
        assert_text(fm_prom_hist(&b, "h", 1, k, v, &h), &b,
                    "h_bucket{x=\"y\",le=\"-1\"} 0\n"
                    "h_bucket{x=\"y\",le=\"0\"} 0\n"
                    "h_bucket{x=\"y\",le=\"1e+20\"} 0\n"
                    "h_bucket{x=\"y\",le=\"+Inf\"} 0\n"
                    "h_sum{x=\"y\"} 0\n"
                    "h_count{x=\"y\"} 0\n");

        /* No finite bounds: only +Inf. NaN lands there and poisons the sum. */
        fm_buf_reset(&b);
        assert_int_equal(fm_metric_hist_init(&h, NULL, 0), 0);
        fm_metric_hist_observe(&h, 1);
        fm_metric_hist_observe(&h, NAN);
        assert_text(fm_prom_hist(&b, "h", 0, NULL, NULL, &h), &b,
                    "h_bucket{le=\"+Inf\"} 2\n"
                    "h_sum NaN\n"
                    "h_count 2\n");

        /* Counts past 2^53 are written exactly, not through a double. */
        fm_buf_reset(&b);
        assert_int_equal(fm_metric_hist_init(&h, bounds, 1), 0);
        h.count[0] = UINT64_C(9007199254740993);
        h.count[1] = UINT64_C(1);
        h.total = UINT64_C(9007199254740994);
        h.sum = -0.25;
        assert_text(fm_prom_hist(&b, "h", 0, NULL, NULL, &h), &b,
                    "h_bucket{le=\"-1\"} 9007199254740993\n"
                    "h_bucket{le=\"+Inf\"} 9007199254740994\n"
                    "h_sum -0.25\n"
                    "h_count 9007199254740994\n");
        fm_buf_done(&b);
}

static void test_hist_errors(void **state)
{
        const double bounds[] = {1};
        const char *const le[] = {"le"};
        const char *const dup[] = {"a", "a"};
        const char *const bad[] = {"ok", "9"};
        const char *const v[] = {"1", "2"};
        struct fm_metric_hist h;
        struct fm_buf b = {0};

        (void)state;
        assert_int_equal(fm_metric_hist_init(&h, bounds, 1), 0);
        assert_int_equal(fm_buf_printf(&b, "kept\n"), 0);
        /* A caller's own "le" would clash with the bucket label. */
        assert_int_equal(fm_prom_hist(&b, "h", 1, le, v, &h), -EINVAL);
        assert_int_equal(fm_prom_hist(&b, "h", 2, dup, v, &h), -EINVAL);
        assert_int_equal(fm_prom_hist(&b, "h", 2, bad, v, &h), -EINVAL);
        assert_int_equal(fm_prom_hist(&b, "9h", 0, NULL, NULL, &h), -EINVAL);
        assert_int_equal(fm_prom_hist(&b, "h", 0, NULL, NULL, NULL), -EINVAL);
        assert_int_equal(fm_prom_hist(NULL, "h", 0, NULL, NULL, &h), -EINVAL);
        h.n = FM_METRIC_HIST_MAX_BOUNDS + 1;
        assert_int_equal(fm_prom_hist(&b, "h", 0, NULL, NULL, &h), -EINVAL);
        assert_string_equal(text(&b), "kept\n");

        /* A plain sample may use "le"; only histograms reserve it. */
        fm_buf_reset(&b);
        assert_text(fm_prom_sample(&b, "m", 1, le, v, 1), &b, "m{le=\"1\"} 1\n");
        fm_buf_done(&b);
}

/*
 * Running out of buffer room in the middle of a sample: -ENOBUFS, and the
 * buffer is back to where it was (no half line). The buffer is filled to
 * just below FM_BUF_MAX with calloc'd (untouched) memory to get there.
 */
static void test_out_of_room(void **state)
{
        const char *const k[] = {"a", "b"};
        const char *const v[] = {"short", "a label value long enough not to fit"};
        const double bounds[] = {1, 2};
        struct fm_metric_hist h;
        struct fm_buf b = {0};
        size_t start = FM_BUF_MAX - 40;

        (void)state;
        b.data = calloc(1, FM_BUF_MAX);
        assert_non_null(b.data);
        b.cap = FM_BUF_MAX;
        b.len = start;
        b.data[start - 1] = 'x';

        assert_int_equal(fm_prom_sample(&b, "m", 2, k, v, 1), -ENOBUFS);
        assert_int_equal(b.len, start);
        assert_int_equal(b.data[start], '\0');
        assert_int_equal(b.data[start - 1], 'x');

        assert_int_equal(fm_metric_hist_init(&h, bounds, 2), 0);
        assert_int_equal(fm_prom_hist(&b, "m", 1, k, v, &h), -ENOBUFS);
        assert_int_equal(b.len, start);
        assert_int_equal(b.data[start], '\0');

        assert_int_equal(fm_prom_family(&b, "m", "gauge", "a help text that is too long to fit"),
                         -ENOBUFS);
        assert_int_equal(b.len, start);
        assert_int_equal(b.data[start], '\0');

        /* What does fit still goes in. */
        assert_int_equal(fm_prom_sample(&b, "m", 1, k, v, 1), 0);
        assert_string_equal(b.data + start, "m{a=\"short\"} 1\n");
        fm_buf_done(&b);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_family),
                cmocka_unit_test(test_family_types),
                cmocka_unit_test(test_family_help_escaping),
                cmocka_unit_test(test_names),
                cmocka_unit_test(test_sample_labels),
                cmocka_unit_test(test_label_escaping),
                cmocka_unit_test(test_label_errors),
                cmocka_unit_test(test_values),
                cmocka_unit_test(test_values_round_trip),
                cmocka_unit_test(test_hist_init_errors),
                cmocka_unit_test(test_hist_boundaries),
                cmocka_unit_test(test_hist_output),
                cmocka_unit_test(test_hist_edge_cases),
                cmocka_unit_test(test_hist_errors),
                cmocka_unit_test(test_out_of_room),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
