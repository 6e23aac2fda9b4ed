/* SPDX-License-Identifier: MIT */

/*
 * Unit tests of controller/sketch.c: accuracy against exact quantiles on
 * several seeded distributions, exact merging, the input edges, histogram
 * and summary ingestion, and the sliding ring.
 */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sketch.h"

#define N_SAMPLES 100000
#define SLACK 1e-9 /* floating-point slack on top of FM_SKETCH_ALPHA */
#define SENTINEL -12345.0
#define TAU 6.283185307179586

/* ---- a small seeded PRNG: splitmix64, Box-Muller for normals ---- */

struct rng {
        uint64_t s;
};

static uint64_t rng_next(struct rng *r)
{
        uint64_t z = (r->s += UINT64_C(0x9e3779b97f4a7c15));
        z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
        z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
        return z ^ (z >> 31);
}

/* Uniform in (0, 1): never 0, so log() and pow(u, -k) stay finite. */
static double rng_unit(struct rng *r)
{
        return ((double)(rng_next(r) >> 11) + 0.5) * 0x1p-53;
}

static double rng_normal(struct rng *r)
{
        double u1 = rng_unit(r), u2 = rng_unit(r);
        return sqrt(-2.0 * log(u1)) * cos(TAU * u2);
}

static double gen_uniform(struct rng *r)
{
        return 0.5 + 1999.5 * rng_unit(r);
}

static double gen_lognormal(struct rng *r)
{
        return exp(log(50.0) + 1.0 * rng_normal(r));
}

/* 70 % fast path around 5 ms, 30 % slow path around 800 ms. */
static double gen_bimodal(struct rng *r)
{
        if (rng_unit(r) < 0.7)
                return exp(log(5.0) + 0.3 * rng_normal(r));
        return exp(log(800.0) + 0.5 * rng_normal(r));
}

/* Pareto, x_m = 1 ms, shape 1.2: heavy tail, infinite variance. */
static double gen_pareto(struct rng *r)
{
        return 1.0 * pow(rng_unit(r), -1.0 / 1.2);
}

static int cmp_double(const void *a, const void *b)
{
        double x = *(const double *)a, y = *(const double *)b;
        return (x > y) - (x < y);
}

static size_t exact_rank(double q, size_t n)
{
        return (size_t)floor(q * (double)(n - 1));
}

static double rel_err(double got, double exact)
{
        return fabs(got - exact) / exact;
}

static double quantile_ok(const struct fm_sketch *s, double q)
{
        double v = SENTINEL;
        assert_int_equal(fm_sketch_quantile(s, q, &v), 0);
        return v;
}

static const double named_q[] = {0.0,  0.001, 0.01, 0.1,  0.25,  0.5,
                                 0.75, 0.9,   0.95, 0.99, 0.999, 1.0};

/*
 * Fills a sketch with N_SAMPLES draws and compares named quantiles and a
 * sweep of q = k / 1000 against the sorted samples. Returns the worst
 * relative error seen.
 */
static double check_distribution(const char *name, double (*gen)(struct rng *), uint64_t seed)
{
        struct rng r = {seed};
        struct fm_sketch s;
        double *x = malloc(N_SAMPLES * sizeof(*x));
        double sum = 0.0, worst = 0.0;

        assert_non_null(x);
        fm_sketch_reset(&s);
        for (size_t i = 0; i < N_SAMPLES; i++) {
                x[i] = gen(&r);
                sum += x[i];
                fm_sketch_add(&s, x[i], 1);
        }
        qsort(x, N_SAMPLES, sizeof(*x), cmp_double);

        assert_int_equal(s.count, N_SAMPLES);
        assert_true(s.min == x[0]);
        assert_true(s.max == x[N_SAMPLES - 1]);
        assert_true(fabs(s.sum - sum) <= 1e-9 * sum);

        for (size_t k = 0; k < ARRAY_SIZE(named_q) + 1001; k++) {
                double q = k < ARRAY_SIZE(named_q) ? named_q[k]
                                                   : (double)(k - ARRAY_SIZE(named_q)) / 1000.0;
                double exact = x[exact_rank(q, N_SAMPLES)];
                double got = quantile_ok(&s, q);
                double e = rel_err(got, exact);

                /* The guarantee covers values inside the sketch's range. */
                if (exact < FM_SKETCH_MIN_MS || exact > FM_SKETCH_MAX_MS)
                        continue;
                if (e > worst)
                        worst = e;
                if (e > FM_SKETCH_ALPHA + SLACK)
                        fail_msg("%s q=%g: got %.9g exact %.9g rel err %.6g", name, q, got, exact,
                                 e);
        }
        /* Both ends are exact. */
        assert_true(quantile_ok(&s, 0.0) == x[0]);
        assert_true(quantile_ok(&s, 1.0) == x[N_SAMPLES - 1]);

        print_message("%-9s worst relative error %.9f (alpha %.4f)\n", name, worst,
                      FM_SKETCH_ALPHA);
        free(x);
        return worst;
}

static void test_uniform(void **state)
{
        (void)state;
        check_distribution("uniform", gen_uniform, 1);
}

static void test_lognormal(void **state)
{
        (void)state;
        check_distribution("lognormal", gen_lognormal, 2);
}

static void test_bimodal(void **state)
{
        (void)state;
        check_distribution("bimodal", gen_bimodal, 3);
}

static void test_pareto(void **state)
{
        (void)state;
        check_distribution("pareto", gen_pareto, 4);
}

/*
 * The representative of every bucket is within alpha of every value that
 * lands in it: single values on a fine geometric grid across the whole
 * range plus the exact bucket edges MIN * gamma^k, each read back at the
 * middle rank between two anchors outside the range (so no clamping).
 */
static void check_single(struct fm_sketch *s, double v)
{
        fm_sketch_reset(s);
        fm_sketch_add(s, FM_SKETCH_MIN_MS / 10.0, 1);
        fm_sketch_add(s, v, 1);
        fm_sketch_add(s, FM_SKETCH_MAX_MS * 10.0, 1);
        double got = quantile_ok(s, 0.5);
        if (rel_err(got, v) > FM_SKETCH_ALPHA + SLACK)
                fail_msg("value %.17g read back as %.17g", v, got);
}

static void test_every_bucket_within_alpha(void **state)
{
        double gamma = (1.0 + FM_SKETCH_ALPHA) / (1.0 - FM_SKETCH_ALPHA);
        struct fm_sketch s;

        (void)state;
        for (double v = FM_SKETCH_MIN_MS; v <= FM_SKETCH_MAX_MS; v *= 1.003)
                check_single(&s, v);
        for (int k = 0; k < FM_SKETCH_BUCKETS; k++) {
                double edge = FM_SKETCH_MIN_MS * pow(gamma, k);
                if (edge > FM_SKETCH_MAX_MS)
                        break;
                check_single(&s, edge);
                check_single(&s, nextafter(edge, 0.0));
                check_single(&s, nextafter(edge, INFINITY));
        }
        check_single(&s, FM_SKETCH_MIN_MS);
        check_single(&s, FM_SKETCH_MAX_MS);
}

/*
 * FM_SKETCH_BUCKETS is exactly ceil(ln(MAX/MIN) / ln(gamma)) + 1: the
 * index of MAX is the last bucket, so there is room for it and no bucket
 * is wasted. Behaviourally, MAX read back (unclamped) is within alpha.
 */
static void test_bucket_count(void **state)
{
        double gamma = (1.0 + FM_SKETCH_ALPHA) / (1.0 - FM_SKETCH_ALPHA);
        double idx = ceil(log(FM_SKETCH_MAX_MS / FM_SKETCH_MIN_MS) / log(gamma));
        struct fm_sketch s;

        (void)state;
        assert_true(idx < FM_SKETCH_BUCKETS);
        assert_true(idx == FM_SKETCH_BUCKETS - 1);
        /* MIN * gamma^(BUCKETS-2) < MAX <= MIN * gamma^(BUCKETS-1) */
        assert_true(FM_SKETCH_MIN_MS * pow(gamma, FM_SKETCH_BUCKETS - 2) < FM_SKETCH_MAX_MS);
        assert_true(FM_SKETCH_MIN_MS * pow(gamma, FM_SKETCH_BUCKETS - 1) >= FM_SKETCH_MAX_MS);

        fm_sketch_reset(&s);
        fm_sketch_add(&s, FM_SKETCH_MAX_MS, 1);
        assert_int_equal(s.bucket[FM_SKETCH_BUCKETS - 1], 1);
        check_single(&s, FM_SKETCH_MAX_MS);

        assert_int_equal(sizeof(struct fm_sketch), 32 + 8 * FM_SKETCH_BUCKETS);
        print_message("sizeof(struct fm_sketch) = %zu, sizeof(struct fm_sketch_ring) = %zu\n",
                      sizeof(struct fm_sketch), sizeof(struct fm_sketch_ring));
}

/* ---- merging and weights ---- */

static void assert_same_buckets(const struct fm_sketch *a, const struct fm_sketch *b)
{
        assert_int_equal(a->count, b->count);
        assert_true(a->min == b->min);
        assert_true(a->max == b->max);
        assert_memory_equal(a->bucket, b->bucket, sizeof(a->bucket));
}

static void test_merge_equals_union(void **state)
{
        struct rng r = {42};
        struct fm_sketch a, b, all, empty;

        (void)state;
        fm_sketch_reset(&a);
        fm_sketch_reset(&b);
        fm_sketch_reset(&all);
        fm_sketch_reset(&empty);
        for (int i = 0; i < 50000; i++) {
                /* Different distributions on the two sides. */
                double v = (i & 1) ? gen_lognormal(&r) : gen_bimodal(&r);
                fm_sketch_add((i & 1) ? &a : &b, v, 1);
                fm_sketch_add(&all, v, 1);
        }

        fm_sketch_merge(&a, &empty); /* merging nothing changes nothing */
        fm_sketch_merge(&a, &b);
        assert_same_buckets(&a, &all);
        assert_true(fabs(a.sum - all.sum) <= 1e-9 * all.sum);
        for (size_t k = 0; k < ARRAY_SIZE(named_q); k++)
                assert_true(quantile_ok(&a, named_q[k]) == quantile_ok(&all, named_q[k]));

        /* Merging into an empty sketch copies it, min and max included. */
        fm_sketch_merge(&empty, &all);
        assert_same_buckets(&empty, &all);
        assert_true(empty.sum == all.sum);
}

static void test_weighted_add(void **state)
{
        struct fm_sketch w, ones;
        const double vals[] = {0.3, 7.0, 7.0001, 120.0, 99999.0};
        const uint64_t weight[] = {1, 7, 3, 1000, 2};

        (void)state;
        fm_sketch_reset(&w);
        fm_sketch_reset(&ones);
        for (size_t i = 0; i < ARRAY_SIZE(vals); i++) {
                fm_sketch_add(&w, vals[i], weight[i]);
                for (uint64_t j = 0; j < weight[i]; j++)
                        fm_sketch_add(&ones, vals[i], 1);
        }
        assert_same_buckets(&w, &ones);
        assert_true(fabs(w.sum - ones.sum) <= 1e-12 * ones.sum);
        for (size_t k = 0; k < ARRAY_SIZE(named_q); k++)
                assert_true(quantile_ok(&w, named_q[k]) == quantile_ok(&ones, named_q[k]));

        /* n == 0 is a no-op. */
        fm_sketch_add(&w, 5.0, 0);
        assert_same_buckets(&w, &ones);
}

/* Counts saturate instead of wrapping; the quantile walk stays sound. */
static void test_saturation(void **state)
{
        struct fm_sketch s, t;
        uint64_t total = 0;
        double v;

        (void)state;
        fm_sketch_reset(&s);
        fm_sketch_add(&s, 1.0, UINT64_MAX - 1);
        fm_sketch_add(&s, 100.0, 5);
        assert_true(s.count == UINT64_MAX);
        assert_true(s.max == 100.0);

        fm_sketch_reset(&t);
        fm_sketch_add(&t, 1000.0, 10);
        fm_sketch_merge(&t, &s);
        assert_true(t.count == UINT64_MAX);
        for (int i = 0; i < FM_SKETCH_BUCKETS; i++)
                total += t.bucket[i];
        assert_true(total == UINT64_MAX);

        v = quantile_ok(&t, 1.0);
        assert_true(v == 1000.0);
        v = quantile_ok(&t, 0.5);
        assert_true(rel_err(v, 1.0) <= FM_SKETCH_ALPHA + SLACK);
        v = quantile_ok(&t, 0.0);
        assert_true(v == 1.0);
}

/* ---- edges of the API ---- */

static void test_empty_and_bad_q(void **state)
{
        struct fm_sketch s;
        double v = SENTINEL;
        const double bad[] = {-0.01, 1.0000001, -INFINITY, INFINITY, NAN, -NAN};

        (void)state;
        fm_sketch_reset(&s);
        assert_int_equal(fm_sketch_quantile(&s, 0.5, &v), -ENODATA);
        assert_true(v == SENTINEL);
        assert_int_equal(fm_sketch_quantile(&s, 0.0, &v), -ENODATA);
        assert_int_equal(fm_sketch_quantile(&s, 1.0, &v), -ENODATA);
        assert_true(v == SENTINEL);

        fm_sketch_add(&s, 3.0, 1);
        for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
                assert_int_equal(fm_sketch_quantile(&s, bad[i], &v), -EINVAL);
                assert_true(v == SENTINEL);
        }
        assert_int_equal(fm_sketch_quantile(&s, 0.5, &v), 0);
        assert_true(v == 3.0);

        /* A reset sketch is empty again. */
        fm_sketch_reset(&s);
        assert_int_equal(fm_sketch_quantile(&s, 0.5, &v), -ENODATA);
}

static void test_out_of_range_clamps(void **state)
{
        struct fm_sketch s;

        (void)state;
        fm_sketch_reset(&s);
        fm_sketch_add(&s, 0.0, 1);
        fm_sketch_add(&s, 0.001, 2);
        fm_sketch_add(&s, FM_SKETCH_MIN_MS, 1);
        assert_int_equal(s.bucket[0], 4);
        fm_sketch_add(&s, 1e7, 2);
        fm_sketch_add(&s, 1e300, 1);
        assert_int_equal(s.bucket[FM_SKETCH_BUCKETS - 1], 3);
        assert_int_equal(s.count, 7);
        assert_true(s.min == 0.0);
        assert_true(s.max == 1e300);

        for (int k = 0; k <= 100; k++) {
                double v = quantile_ok(&s, k / 100.0);
                assert_true(v >= s.min && v <= s.max);
        }
        assert_true(quantile_ok(&s, 0.0) == 0.0);
        assert_true(quantile_ok(&s, 1.0) == 1e300);

        /* Only values below MIN: answers stay inside [min, max]. */
        fm_sketch_reset(&s);
        fm_sketch_add(&s, 0.001, 1);
        fm_sketch_add(&s, 0.002, 1);
        fm_sketch_add(&s, 0.003, 1);
        for (int k = 0; k <= 10; k++) {
                double v = quantile_ok(&s, k / 10.0);
                assert_true(v >= 0.001 && v <= 0.003);
        }
        /* Only values above MAX, likewise. */
        fm_sketch_reset(&s);
        fm_sketch_add(&s, 5e6, 1);
        fm_sketch_add(&s, 6e6, 1);
        fm_sketch_add(&s, 7e6, 1);
        for (int k = 0; k <= 10; k++) {
                double v = quantile_ok(&s, k / 10.0);
                assert_true(v >= 5e6 && v <= 7e6);
        }
}

static void test_ignores_bad_values(void **state)
{
        struct fm_sketch s, before;
        const double bad[] = {-1.0, -1e-300, -INFINITY, INFINITY, NAN, -NAN};

        (void)state;
        fm_sketch_reset(&s);
        for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
                fm_sketch_add(&s, bad[i], 3);
        assert_int_equal(s.count, 0);
        fm_sketch_add(&s, 2.0, 1);
        before = s;
        for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
                fm_sketch_add(&s, bad[i], 3);
        assert_memory_equal(&s, &before, sizeof(s));
}

/* ---- histograms ---- */

static void hist_set(struct fm_hist *h, const double *bound, uint32_t n, const uint64_t *count)
{
        memset(h, 0, sizeof(*h));
        h->n = n;
        memcpy(h->bound, bound, n * sizeof(*bound));
        memcpy(h->count, count, (n + 1) * sizeof(*count));
}

static const double hb[] = {1, 2, 5, 10, 20, 50, 100};

static void test_hist_single_bucket(void **state)
{
        struct fm_hist h;
        struct fm_sketch s;
        uint64_t c[8];

        (void)state;
        /* Every finite bucket in turn, then +Inf. */
        for (uint32_t b = 0; b <= ARRAY_SIZE(hb); b++) {
                double want = b == 0                ? hb[0] / 2.0
                              : b == ARRAY_SIZE(hb) ? hb[ARRAY_SIZE(hb) - 1]
                                                    : sqrt(hb[b - 1] * hb[b]);
                memset(c, 0, sizeof(c));
                c[b] = 1000;
                hist_set(&h, hb, ARRAY_SIZE(hb), c);
                fm_sketch_reset(&s);
                fm_sketch_add_hist(&s, &h);
                assert_int_equal(s.count, 1000);
                for (size_t k = 0; k < ARRAY_SIZE(named_q); k++)
                        assert_true(rel_err(quantile_ok(&s, named_q[k]), want) <=
                                    FM_SKETCH_ALPHA + SLACK);
                assert_true(fabs(s.sum - 1000 * want) <= 1e-9 * 1000 * want);
        }
}

static void test_hist_mixed(void **state)
{
        struct fm_hist h;
        struct fm_sketch s;
        /* 10 at 0.5, 20 at sqrt(10), 60 at sqrt(200), 10 at 100 (+Inf). */
        const uint64_t c[8] = {10, 0, 20, 0, 60, 0, 0, 10};
        /* Ranks 0..9 read 0.5, 10..29 sqrt(10), 30..89 sqrt(200), 90..99 100. */
        const struct {
                int rank;
                double want;
        } cases[] = {
                {0, 0.5},          {9, 0.5},          {10, sqrt(10.0)}, {29, sqrt(10.0)},
                {30, sqrt(200.0)}, {89, sqrt(200.0)}, {90, 100.0},      {99, 100.0},
        };

        (void)state;
        hist_set(&h, hb, ARRAY_SIZE(hb), c);
        fm_sketch_reset(&s);
        fm_sketch_add_hist(&s, &h);
        assert_int_equal(s.count, 100);
        assert_true(s.min == 0.5);
        assert_true(s.max == 100.0);
        for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
                /* A q in the middle of the rank, so floor(q * 99) is that rank. */
                double q = cases[i].rank == 99 ? 1.0 : (cases[i].rank + 0.5) / 99.0;
                double v = quantile_ok(&s, q);
                if (rel_err(v, cases[i].want) > FM_SKETCH_ALPHA + SLACK)
                        fail_msg("rank %d got %g want %g", cases[i].rank, v, cases[i].want);
        }

        /* Adding the same histogram twice doubles every bucket. */
        struct fm_sketch twice = s;
        fm_sketch_add_hist(&twice, &h);
        for (int i = 0; i < FM_SKETCH_BUCKETS; i++)
                assert_true(twice.bucket[i] == 2 * s.bucket[i]);
}

static void test_hist_edges(void **state)
{
        struct fm_hist h;
        struct fm_sketch s;
        const uint64_t c[8] = {1, 2, 3, 4, 5, 6, 7, 8};
        const uint64_t zero[8] = {0};
        const double zb[] = {0.0, 4.0, 1e300};
        const uint64_t zc[4] = {0, 5, 0, 0};

        (void)state;
        fm_sketch_reset(&s);

        /* All-zero counts add nothing. */
        hist_set(&h, hb, ARRAY_SIZE(hb), zero);
        fm_sketch_add_hist(&s, &h);
        assert_int_equal(s.count, 0);

        /* n == 0 and n over the cap are ignored. */
        hist_set(&h, hb, ARRAY_SIZE(hb), c);
        h.n = 0;
        fm_sketch_add_hist(&s, &h);
        assert_int_equal(s.count, 0);
        h.n = FM_HIST_MAX_BOUNDS + 1;
        fm_sketch_add_hist(&s, &h);
        assert_int_equal(s.count, 0);

        /* A full-size histogram is accepted. */
        memset(&h, 0, sizeof(h));
        h.n = FM_HIST_MAX_BOUNDS;
        for (uint32_t i = 0; i < FM_HIST_MAX_BOUNDS; i++)
                h.bound[i] = 0.1 * pow(1.2, i);
        for (uint32_t i = 0; i <= FM_HIST_MAX_BOUNDS; i++)
                h.count[i] = i + 1;
        fm_sketch_add_hist(&s, &h);
        assert_int_equal(s.count, (FM_HIST_MAX_BOUNDS + 1) * (FM_HIST_MAX_BOUNDS + 2) / 2);
        assert_true(s.max == h.bound[FM_HIST_MAX_BOUNDS - 1]);

        /* A zero lower bound has no geometric mean: half the upper one. */
        fm_sketch_reset(&s);
        hist_set(&h, zb, 3, zc);
        fm_sketch_add_hist(&s, &h);
        assert_int_equal(s.count, 5);
        assert_true(s.min == 2.0 && s.max == 2.0);

        /* Huge bounds do not overflow the geometric mean into infinity. */
        const uint64_t hc[4] = {0, 0, 3, 0};
        fm_sketch_reset(&s);
        hist_set(&h, zb, 3, hc);
        fm_sketch_add_hist(&s, &h);
        assert_int_equal(s.count, 3);
        assert_true(isfinite(s.max));
}

/* ---- summaries ---- */

static void test_summary_reproduces(void **state)
{
        const uint64_t ns[] = {40, 41, 99, 100, 101, 1000, 12345, 1000000, UINT64_C(1) << 40};
        struct fm_sketch s;

        (void)state;
        for (size_t i = 0; i < ARRAY_SIZE(ns); i++) {
                fm_sketch_reset(&s);
                fm_sketch_add_summary(&s, 12.0, 80.0, 250.0, ns[i]);
                assert_true(s.count == ns[i]);
                assert_true(rel_err(quantile_ok(&s, 0.50), 12.0) <= FM_SKETCH_ALPHA + SLACK);
                assert_true(rel_err(quantile_ok(&s, 0.95), 80.0) <= FM_SKETCH_ALPHA + SLACK);
                assert_true(rel_err(quantile_ok(&s, 0.99), 250.0) <= FM_SKETCH_ALPHA + SLACK);
        }

        /* Every n from 40 up, on equal and on distinct values. */
        for (uint64_t n = 40; n <= 2000; n++) {
                fm_sketch_reset(&s);
                fm_sketch_add_summary(&s, 3.0, 30.0, 300.0, n);
                assert_true(s.count == n);
                if (rel_err(quantile_ok(&s, 0.50), 3.0) > FM_SKETCH_ALPHA + SLACK ||
                    rel_err(quantile_ok(&s, 0.95), 30.0) > FM_SKETCH_ALPHA + SLACK ||
                    rel_err(quantile_ok(&s, 0.99), 300.0) > FM_SKETCH_ALPHA + SLACK)
                        fail_msg("summary of n=%llu not reproduced", (unsigned long long)n);
        }

        /* Equal percentiles are fine. */
        fm_sketch_reset(&s);
        fm_sketch_add_summary(&s, 7.0, 7.0, 7.0, 10);
        assert_int_equal(s.count, 10);
        assert_true(quantile_ok(&s, 0.99) == 7.0);

        /* Small n: everything still counted, the remainder at p50. */
        fm_sketch_reset(&s);
        fm_sketch_add_summary(&s, 1.0, 2.0, 3.0, 1);
        assert_int_equal(s.count, 1);
        assert_true(s.min == 1.0 && s.max == 1.0);
}

static void test_summary_rejects(void **state)
{
        const struct {
                double p50, p95, p99;
        } bad[] = {
                {10.0, 5.0, 20.0}, {10.0, 20.0, 15.0}, {-1.0, 2.0, 3.0},     {NAN, 2.0, 3.0},
                {1.0, NAN, 3.0},   {1.0, 2.0, NAN},    {1.0, 2.0, INFINITY}, {-INFINITY, 2.0, 3.0},
        };
        struct fm_sketch s;

        (void)state;
        fm_sketch_reset(&s);
        for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
                fm_sketch_add_summary(&s, bad[i].p50, bad[i].p95, bad[i].p99, 1000);
        assert_int_equal(s.count, 0);
        fm_sketch_add_summary(&s, 1.0, 2.0, 3.0, 0);
        assert_int_equal(s.count, 0);
}

/* ---- the ring ---- */

static void test_ring_init(void **state)
{
        struct fm_sketch_ring r, before;

        (void)state;
        memset(&r, 0xa5, sizeof(r));
        before = r;
        assert_int_equal(fm_sketch_ring_init(&r, 0, 3), -EINVAL);
        assert_int_equal(fm_sketch_ring_init(&r, -1000, 3), -EINVAL);
        assert_int_equal(fm_sketch_ring_init(&r, 1000, 0), -EINVAL);
        assert_int_equal(fm_sketch_ring_init(&r, 1000, FM_SKETCH_RING_MAX_SLOTS + 1), -EINVAL);
        assert_int_equal(fm_sketch_ring_init(&r, 1000, UINT32_MAX), -EINVAL);
        assert_memory_equal(&r, &before, sizeof(r));

        assert_int_equal(fm_sketch_ring_init(&r, 1, 1), 0);
        assert_int_equal(fm_sketch_ring_init(&r, 1000, FM_SKETCH_RING_MAX_SLOTS), 0);
        assert_true(r.width == 1000);
        assert_int_equal(r.nslots, FM_SKETCH_RING_MAX_SLOTS);
        assert_true(r.head == INT64_MIN);
        for (int i = 0; i < FM_SKETCH_RING_MAX_SLOTS; i++)
                assert_int_equal(r.slot[i].count, 0);
}

static void test_ring_slot_edges(void **state)
{
        struct fm_sketch_ring *r = malloc(sizeof(*r));
        struct fm_sketch *s0, *s1;

        (void)state;
        assert_non_null(r);
        assert_int_equal(fm_sketch_ring_init(r, 1000, 3), 0);

        s0 = fm_sketch_ring_at(r, 0);
        assert_non_null(s0);
        assert_true(fm_sketch_ring_at(r, 999) == s0);
        fm_sketch_add(s0, 1.0, 1);

        /* t = 1000 is the first instant of slot 1. */
        s1 = fm_sketch_ring_at(r, 1000);
        assert_non_null(s1);
        assert_true(s1 != s0);
        assert_int_equal(s1->count, 0);
        assert_true(r->head == 1);
        assert_true(fm_sketch_ring_at(r, 999) == s0);
        assert_int_equal(s0->count, 1);
        assert_true(fm_sketch_ring_at(r, 1999) == s1);

        /* Negative time: -1 is in slot -1, -1000 too, -1001 in slot -2. */
        assert_non_null(fm_sketch_ring_at(r, -1));
        assert_true(fm_sketch_ring_at(r, -1) == fm_sketch_ring_at(r, -1000));
        assert_null(fm_sketch_ring_at(r, -1001));
        assert_true(r->head == 1);

        /* Slot 3 reuses slot 0's memory, cleared. */
        struct fm_sketch *s3 = fm_sketch_ring_at(r, 3000);
        assert_true(s3 == s0);
        assert_int_equal(s3->count, 0);
        free(r);
}

/* Slot k gets value k + 1 with weight k + 1, for k = 0 .. 4. */
static void ring_fill(struct fm_sketch_ring *r)
{
        for (int k = 0; k <= 4; k++) {
                struct fm_sketch *s = fm_sketch_ring_at(r, k * 1000 + 500);
                assert_non_null(s);
                fm_sketch_add(s, k + 1.0, (uint64_t)k + 1);
        }
}

static void test_ring_collect(void **state)
{
        struct fm_sketch_ring *r = malloc(sizeof(*r));
        struct fm_sketch_ring *copy = malloc(sizeof(*r));
        struct fm_sketch out;
        const struct {
                fm_ms now;
                uint64_t count; /* sum of k + 1 over the included slots */
                double min, max;
        } cases[] = {
                {4000, 3 + 4 + 5, 3, 5},                          /* slots 2, 3, 4 */
                {4999, 3 + 4 + 5, 3, 5}, {3999, 3 + 4 + 5, 3, 5}, /* slot 4 is newer than now */
                {2000, 3 + 4 + 5, 3, 5}, {1999, 3 + 4 + 5, 3, 5}, /* slot 1 is gone anyway */
                {5000, 4 + 5, 4, 5},                              /* (2000, 5000]: slots 3, 4 */
                {6999, 5, 5, 5},                                  /* (4000, 6999]: slot 4 */
                {7000, 0, 0, 0},                                  /* (5000, 7000]: none */
                {INT64_MAX, 0, 0, 0},    {-1000000, 3 + 4 + 5, 3, 5}, {INT64_MIN, 3 + 4 + 5, 3, 5},
        };

        (void)state;
        assert_non_null(r);
        assert_non_null(copy);
        assert_int_equal(fm_sketch_ring_init(r, 1000, 3), 0);

        /* An empty ring collects nothing, and out is reset first. */
        fm_sketch_reset(&out);
        fm_sketch_add(&out, 1.0, 1);
        fm_sketch_ring_collect(r, 0, &out);
        assert_int_equal(out.count, 0);

        ring_fill(r);
        assert_true(r->head == 4);
        memcpy(copy, r, sizeof(*r));
        for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
                fm_sketch_ring_collect(r, cases[i].now, &out);
                if (out.count != cases[i].count)
                        fail_msg("now=%lld: count %llu, want %llu", (long long)cases[i].now,
                                 (unsigned long long)out.count, (unsigned long long)cases[i].count);
                if (out.count > 0) {
                        assert_true(out.min == cases[i].min);
                        assert_true(out.max == cases[i].max);
                }
        }
        /* collect does not touch the ring. */
        assert_memory_equal(copy, r, sizeof(*r));

        /* Older than the oldest slot: NULL, and the ring is unchanged. */
        assert_null(fm_sketch_ring_at(r, 1999));
        assert_null(fm_sketch_ring_at(r, INT64_MIN + 1));
        assert_non_null(fm_sketch_ring_at(r, 2000));
        assert_memory_equal(copy, r, sizeof(*r));

        /* A small jump clears only the skipped and new slots. */
        assert_non_null(fm_sketch_ring_at(r, 6000)); /* head 6: clears 5 and 6 */
        fm_sketch_ring_collect(r, 6000, &out);
        assert_int_equal(out.count, 5); /* slot 4 survives */
        assert_null(fm_sketch_ring_at(r, 3999));

        free(copy);
        free(r);
}

static void test_ring_big_jump(void **state)
{
        struct fm_sketch_ring *r = malloc(sizeof(*r));
        struct fm_sketch out;

        (void)state;
        assert_non_null(r);
        assert_int_equal(fm_sketch_ring_init(r, 1000, 3), 0);
        ring_fill(r);

        /* A jump of exactly nslots slots clears everything... */
        struct fm_sketch *s = fm_sketch_ring_at(r, 7000);
        assert_non_null(s);
        for (int i = 0; i < 3; i++)
                assert_int_equal(r->slot[i].count, 0);
        fm_sketch_ring_collect(r, 7000, &out);
        assert_int_equal(out.count, 0);

        /* ...and so does one far beyond it, without looping or overflowing. */
        assert_null(fm_sketch_ring_at(r, 4999)); /* older than the ring now */
        fm_sketch_add(fm_sketch_ring_at(r, 7500), 9.0, 9);
        s = fm_sketch_ring_at(r, INT64_MAX);
        assert_non_null(s);
        for (int i = 0; i < 3; i++)
                assert_int_equal(r->slot[i].count, 0);
        fm_sketch_add(s, 2.0, 2);
        fm_sketch_ring_collect(r, INT64_MAX, &out);
        assert_int_equal(out.count, 2);
        fm_sketch_ring_collect(r, 0, &out); /* now far behind: the head is "newer" */
        assert_int_equal(out.count, 2);
        assert_null(fm_sketch_ring_at(r, 0));

        /* From the far past to the far future. */
        assert_int_equal(fm_sketch_ring_init(r, 1, FM_SKETCH_RING_MAX_SLOTS), 0);
        assert_null(fm_sketch_ring_at(r, INT64_MIN)); /* the empty-head sentinel */
        s = fm_sketch_ring_at(r, INT64_MIN + 1);
        assert_non_null(s);
        fm_sketch_add(s, 1.0, 1);
        fm_sketch_ring_collect(r, INT64_MIN + 1, &out);
        assert_int_equal(out.count, 1);
        fm_sketch_ring_collect(r, INT64_MAX, &out);
        assert_int_equal(out.count, 0);
        assert_non_null(fm_sketch_ring_at(r, INT64_MAX));
        fm_sketch_ring_collect(r, INT64_MAX, &out);
        assert_int_equal(out.count, 0);
        free(r);
}

/* One slot: the ring degenerates to a tumbling window. */
static void test_ring_one_slot(void **state)
{
        struct fm_sketch_ring r;
        struct fm_sketch out;

        (void)state;
        assert_int_equal(fm_sketch_ring_init(&r, 60000, 1), 0);
        fm_sketch_add(fm_sketch_ring_at(&r, 59999), 1.0, 4);
        fm_sketch_ring_collect(&r, 59999, &out);
        assert_int_equal(out.count, 4);
        fm_sketch_ring_collect(&r, 60000, &out);
        assert_int_equal(out.count, 0);
        fm_sketch_add(fm_sketch_ring_at(&r, 60000), 1.0, 1);
        assert_null(fm_sketch_ring_at(&r, 59999));
        fm_sketch_ring_collect(&r, 60000, &out);
        assert_int_equal(out.count, 1);
}

/* Adding one histogram to several sketches at once equals adding it to each. */
static void test_add_hist_many(void **state)
{
        (void)state;
        struct fm_sketch *a = calloc(4, sizeof(*a));
        assert_non_null(a);
        struct fm_hist h = {.n = 3, .bound = {5, 50, 500}, .count = {7, 0, 11, 2}};

        fm_sketch_reset(&a[0]);
        fm_sketch_reset(&a[1]);
        fm_sketch_reset(&a[2]);
        fm_sketch_reset(&a[3]);
        fm_sketch_add(&a[1], 3.0, 4); /* a sketch that already holds data */
        fm_sketch_add(&a[3], 3.0, 4);
        struct fm_sketch *const both[] = {&a[0], &a[1]};
        fm_sketch_add_hist_many(both, 2, &h);
        fm_sketch_add_hist(&a[2], &h);
        fm_sketch_add_hist(&a[3], &h);
        for (int k = 0; k < 2; k++) {
                assert_int_equal(a[k].count, a[k + 2].count);
                assert_true(a[k].sum == a[k + 2].sum && a[k].min == a[k + 2].min &&
                            a[k].max == a[k + 2].max);
                assert_memory_equal(a[k].bucket, a[k + 2].bucket, sizeof(a[k].bucket));
        }
        assert_int_equal(a[0].count, 20);
        free(a);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_add_hist_many),
                cmocka_unit_test(test_uniform),
                cmocka_unit_test(test_lognormal),
                cmocka_unit_test(test_bimodal),
                cmocka_unit_test(test_pareto),
                cmocka_unit_test(test_every_bucket_within_alpha),
                cmocka_unit_test(test_bucket_count),
                cmocka_unit_test(test_merge_equals_union),
                cmocka_unit_test(test_weighted_add),
                cmocka_unit_test(test_saturation),
                cmocka_unit_test(test_empty_and_bad_q),
                cmocka_unit_test(test_out_of_range_clamps),
                cmocka_unit_test(test_ignores_bad_values),
                cmocka_unit_test(test_hist_single_bucket),
                cmocka_unit_test(test_hist_mixed),
                cmocka_unit_test(test_hist_edges),
                cmocka_unit_test(test_summary_reproduces),
                cmocka_unit_test(test_summary_rejects),
                cmocka_unit_test(test_ring_init),
                cmocka_unit_test(test_ring_slot_edges),
                cmocka_unit_test(test_ring_collect),
                cmocka_unit_test(test_ring_big_jump),
                cmocka_unit_test(test_ring_one_slot),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
