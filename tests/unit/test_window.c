/* SPDX-License-Identifier: MIT */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "window.h"

/* ---- helpers ---------------------------------------------------------- */

static int add3(struct fm_window *w, fm_ms t, uint32_t req, uint32_t err, uint32_t slow)
{
        const uint32_t v[_FM_CTR_MAX] = {req, err, slow};

        return fm_window_add(w, t, v);
}

static int add1(struct fm_window *w, fm_ms t, uint32_t req)
{
        return add3(w, t, req, 0, 0);
}

static uint64_t sum_req(struct fm_window *w, fm_ms now)
{
        uint64_t s[_FM_CTR_MAX];

        fm_window_sums(w, now, s);
        return s[FM_CTR_REQUESTS];
}

/* Position of slot index k in the ring, computed independently of window.c. */
static uint32_t pos_of(const struct fm_window *w, int64_t k)
{
        int64_t n = (int64_t)w->nslots;

        return (uint32_t)(((k % n) + n) % n);
}

/* The running sums must always equal what the slots hold. */
static void assert_sums_match_slots(const struct fm_window *w)
{
        for (size_t c = 0; c < _FM_CTR_MAX; c++) {
                uint64_t s = 0;

                for (uint32_t i = 0; i < w->nslots; i++)
                        s += w->slot[i][c];
                assert_int_equal(s, w->sum[c]);
        }
}

static void assert_empty(const struct fm_window *w)
{
        for (uint32_t i = 0; i < FM_WINDOW_MAX_SLOTS; i++)
                for (size_t c = 0; c < _FM_CTR_MAX; c++)
                        assert_int_equal(w->slot[i][c], 0);
        for (size_t c = 0; c < _FM_CTR_MAX; c++)
                assert_int_equal(w->sum[c], 0);
}

/* ---- init / reset ----------------------------------------------------- */

static void test_init_errors(void **state)
{
        struct fm_window w, before;

        (void)state;
        memset(&w, 0xa5, sizeof(w));
        before = w;

        assert_int_equal(fm_window_init(&w, 0, 10), -EINVAL);
        assert_int_equal(fm_window_init(&w, -1, 10), -EINVAL);
        assert_int_equal(fm_window_init(&w, INT64_MIN, 10), -EINVAL);
        assert_int_equal(fm_window_init(&w, 1000, 0), -EINVAL);
        assert_int_equal(fm_window_init(&w, 1000, FM_WINDOW_MAX_SLOTS + 1), -EINVAL);
        assert_int_equal(fm_window_init(&w, 1000, UINT32_MAX), -EINVAL);
        /* width * nslots would overflow fm_window_length() */
        assert_int_equal(fm_window_init(&w, INT64_MAX, 2), -EINVAL);
        assert_int_equal(fm_window_init(&w, INT64_MAX / 60 + 1, 60), -EINVAL);
        /* failures leave the struct alone */
        assert_memory_equal(&w, &before, sizeof(w));

        assert_int_equal(fm_window_init(&w, 1, 1), 0);
        assert_int_equal(fm_window_init(&w, INT64_MAX, 1), 0);
        assert_int_equal(fm_window_length(&w), INT64_MAX);
        assert_int_equal(fm_window_init(&w, INT64_MAX / 60, 60), 0);
        assert_int_equal(fm_window_init(&w, 1000, FM_WINDOW_MAX_SLOTS), 0);
        assert_int_equal(w.width, 1000);
        assert_int_equal(w.nslots, FM_WINDOW_MAX_SLOTS);
        assert_true(w.head == INT64_MIN);
        assert_int_equal(fm_window_length(&w), 60000);
        assert_empty(&w);
}

static void test_reset(void **state)
{
        struct fm_window w;
        uint64_t s[_FM_CTR_MAX];

        (void)state;
        assert_int_equal(fm_window_init(&w, 100, 5), 0);
        for (fm_ms t = 0; t < 500; t += 37)
                assert_int_equal(add3(&w, t, 1, 2, 3), 0);
        fm_window_sums(&w, 499, s);
        assert_true(s[0] > 0 && s[1] > 0 && s[2] > 0);

        fm_window_reset(&w);
        assert_int_equal(w.width, 100);
        assert_int_equal(w.nslots, 5);
        assert_true(w.head == INT64_MIN);
        assert_empty(&w);
        fm_window_sums(&w, INT64_MIN, s);
        assert_int_equal(s[0] + s[1] + s[2], 0);

        /* after a reset, data far older than the old head is accepted */
        assert_int_equal(add1(&w, -1000000, 7), 0);
        assert_int_equal(sum_req(&w, -1000000), 7);
        assert_sums_match_slots(&w);
}

/* ---- bucket edges ----------------------------------------------------- */

static void test_bucket_edges(void **state)
{
        const fm_ms width = 1000;
        const uint32_t n = 10;
        const int64_t k = 5;
        struct fm_window w;

        (void)state;
        assert_int_equal(fm_window_init(&w, width, n), 0);

        /* t = k*width - 1 is in slot k - 1 ... */
        assert_int_equal(add1(&w, k * width - 1, 1), 0);
        assert_int_equal(w.head, k - 1);
        assert_int_equal(w.slot[pos_of(&w, k - 1)][FM_CTR_REQUESTS], 1);
        /* ... and t = k*width in slot k */
        assert_int_equal(add1(&w, k * width, 10), 0);
        assert_int_equal(w.head, k);
        assert_int_equal(w.slot[pos_of(&w, k)][FM_CTR_REQUESTS], 10);
        assert_int_equal(w.slot[pos_of(&w, k - 1)][FM_CTR_REQUESTS], 1);

        /* slot k - 1 is last in the window whose head is k - 1 + n - 1 */
        assert_int_equal(sum_req(&w, (k - 1 + n) * width - 1), 11);
        assert_int_equal(sum_req(&w, (k - 1 + n) * width), 10);
        /* slot k: still in at k*width + n*width - 1, gone at (k + n)*width */
        assert_int_equal(sum_req(&w, k * width + n * width - 1), 10);
        assert_int_equal(w.head, k + n - 1);
        /* the oldest slot still takes data, the one before it does not */
        assert_int_equal(add1(&w, k * width, 100), 0);
        assert_int_equal(add1(&w, k * width - 1, 1000), -ERANGE);
        assert_int_equal(sum_req(&w, k * width + n * width - 1), 110);
        assert_int_equal(sum_req(&w, (k + n) * width), 0);
        assert_int_equal(w.head, k + n);
        assert_int_equal(add1(&w, k * width + width - 1, 1), -ERANGE);
        assert_int_equal(add1(&w, (k + 1) * width, 1), 0);
        assert_int_equal(sum_req(&w, (k + n) * width), 1);
        assert_sums_match_slots(&w);
}

static void test_single_slot(void **state)
{
        struct fm_window w;

        (void)state;
        assert_int_equal(fm_window_init(&w, 10, 1), 0);
        assert_int_equal(add1(&w, 5, 1), 0);
        assert_int_equal(add1(&w, 9, 2), 0);
        assert_int_equal(sum_req(&w, 9), 3);
        assert_int_equal(add1(&w, 10, 4), 0);
        assert_int_equal(sum_req(&w, 10), 4);
        assert_int_equal(add1(&w, 9, 8), -ERANGE);
        assert_int_equal(sum_req(&w, 20), 0);
        assert_sums_match_slots(&w);
}

/* ---- negative and extreme times ---------------------------------------- */

static void test_negative_times(void **state)
{
        struct fm_window w;

        (void)state;
        assert_int_equal(fm_window_init(&w, 100, 4), 0);

        assert_int_equal(add1(&w, -401, 1000), 0); /* slot -5 */
        assert_int_equal(w.head, -5);
        assert_int_equal(add1(&w, -400, 1), 0); /* slot -4 */
        assert_int_equal(w.head, -4);
        assert_int_equal(add1(&w, -101, 2), 0); /* slot -2 */
        assert_int_equal(w.head, -2);
        assert_int_equal(add1(&w, -100, 4), 0); /* slot -1 */
        assert_int_equal(add1(&w, -1, 8), 0);   /* slot -1 */
        assert_int_equal(w.head, -1);
        assert_int_equal(w.slot[pos_of(&w, -1)][FM_CTR_REQUESTS], 12);
        assert_int_equal(w.slot[pos_of(&w, -2)][FM_CTR_REQUESTS], 2);
        assert_int_equal(w.slot[pos_of(&w, -4)][FM_CTR_REQUESTS], 1);
        /* window at head -1 is slots -4 .. -1; slot -5 has rolled out */
        assert_int_equal(sum_req(&w, -1), 15);
        assert_int_equal(add1(&w, -401, 1), -ERANGE);
        assert_int_equal(add1(&w, -350, 16), 0); /* slot -4, still inside */
        assert_int_equal(sum_req(&w, -1), 31);

        /* crossing zero: slot 0 starts at t = 0 */
        assert_int_equal(add1(&w, 0, 32), 0);
        assert_int_equal(w.head, 0);
        assert_int_equal(sum_req(&w, 0), 2 + 12 + 32);
        assert_int_equal(sum_req(&w, 199), 2 + 12 + 32);
        assert_int_equal(sum_req(&w, 200), 12 + 32);
        assert_int_equal(sum_req(&w, 299), 12 + 32);
        assert_int_equal(sum_req(&w, 300), 32);
        assert_int_equal(sum_req(&w, 399), 32);
        assert_int_equal(sum_req(&w, 400), 0);
        assert_sums_match_slots(&w);
}

static void test_extreme_times(void **state)
{
        struct fm_window w;

        (void)state;
        assert_int_equal(fm_window_init(&w, 1000, 10), 0);
        assert_int_equal(add1(&w, INT64_MIN, 1), 0);
        assert_int_equal(w.head, fm_floordiv(INT64_MIN, 1000));
        assert_int_equal(sum_req(&w, INT64_MIN), 1);
        /* a jump across the whole int64 range clears everything */
        assert_int_equal(add1(&w, INT64_MAX, 2), 0);
        assert_int_equal(w.head, INT64_MAX / 1000);
        assert_int_equal(sum_req(&w, INT64_MAX), 2);
        /* now far older than head: nothing rolls, newer slots stay counted */
        assert_int_equal(sum_req(&w, INT64_MIN), 2);
        assert_int_equal(add1(&w, INT64_MIN, 1), -ERANGE);
        assert_sums_match_slots(&w);

        /*
         * width 1: slot INT64_MIN coincides with the empty head. The window
         * then behaves as if its head were the oldest possible index, which
         * is what that data is: it is counted, and rolls out normally.
         */
        assert_int_equal(fm_window_init(&w, 1, 3), 0);
        assert_int_equal(add1(&w, INT64_MIN, 5), 0);
        assert_int_equal(sum_req(&w, INT64_MIN), 5);
        assert_int_equal(add1(&w, INT64_MIN + 2, 1), 0);
        assert_int_equal(sum_req(&w, INT64_MIN + 2), 6);
        assert_int_equal(sum_req(&w, INT64_MIN + 3), 1);
        assert_int_equal(add1(&w, INT64_MIN, 5), -ERANGE);
        assert_int_equal(add1(&w, INT64_MAX, 9), 0);
        assert_int_equal(sum_req(&w, INT64_MAX), 9);
        assert_sums_match_slots(&w);
}

/* ---- past, future, jumps ---------------------------------------------- */

static void test_add_into_past_slots(void **state)
{
        const fm_ms width = 50;
        const uint32_t n = 6;
        struct fm_window w, before;
        uint64_t s[_FM_CTR_MAX];

        (void)state;
        memset(&w, 0, sizeof(w)); /* defined padding for the memcmp below */
        assert_int_equal(fm_window_init(&w, width, n), 0);
        assert_int_equal(add3(&w, 20 * width, 1, 0, 0), 0);

        /* every slot of the window, newest to oldest, still takes data */
        for (int64_t k = 20; k > 20 - (int64_t)n; k--)
                assert_int_equal(add3(&w, k * width + (k % width), 0, 1, (uint32_t)k), 0);
        assert_int_equal(w.head, 20);
        fm_window_sums(&w, 20 * width, s);
        assert_int_equal(s[FM_CTR_REQUESTS], 1);
        assert_int_equal(s[FM_CTR_ERRORS], n);
        assert_int_equal(s[FM_CTR_SLOW], 20 + 19 + 18 + 17 + 16 + 15);
        assert_sums_match_slots(&w);

        /* older than the window: -ERANGE and nothing at all changes */
        before = w;
        assert_int_equal(add3(&w, (20 - (int64_t)n) * width + width - 1, 1, 1, 1), -ERANGE);
        assert_int_equal(add3(&w, (20 - (int64_t)n) * width, 1, 1, 1), -ERANGE);
        assert_int_equal(add3(&w, -123456789, 1, 1, 1), -ERANGE);
        assert_int_equal(add3(&w, INT64_MIN, 1, 1, 1), -ERANGE);
        assert_memory_equal(&w, &before, sizeof(w));
}

static void test_jump_clears(void **state)
{
        const fm_ms width = 10;
        const uint32_t n = 8;
        struct fm_window w;

        (void)state;
        assert_int_equal(fm_window_init(&w, width, n), 0);
        for (fm_ms t = 0; t < (fm_ms)n * width; t++)
                assert_int_equal(add3(&w, t, 1, 2, 3), 0);
        assert_int_equal(sum_req(&w, n * width - 1), n * width);

        /* a jump larger than the window, via add */
        assert_int_equal(add3(&w, 1000 * width, 0, 0, 1), 0);
        assert_int_equal(w.head, 1000);
        for (uint32_t i = 0; i < n; i++) {
                assert_int_equal(w.slot[i][FM_CTR_REQUESTS], 0);
                assert_int_equal(w.slot[i][FM_CTR_ERRORS], 0);
        }
        assert_int_equal(w.sum[FM_CTR_SLOW], 1);
        assert_sums_match_slots(&w);

        /* and via sums */
        assert_int_equal(sum_req(&w, INT64_MAX), 0);
        assert_empty(&w);
        assert_int_equal(w.head, INT64_MAX / width);
}

static void test_jump_exactly_nslots(void **state)
{
        const fm_ms width = 10;
        const uint32_t n = 5;
        struct fm_window w;

        (void)state;
        assert_int_equal(fm_window_init(&w, width, n), 0);
        /* slots 0..4 hold 1, 2, 4, 8, 16 */
        for (uint32_t k = 0; k < n; k++)
                assert_int_equal(add1(&w, (fm_ms)k * width, 1u << k), 0);
        assert_int_equal(sum_req(&w, 4 * width), 31);

        /* a jump of n - 1 keeps only the old head */
        assert_int_equal(sum_req(&w, (4 + n - 1) * width), 16);
        assert_int_equal(w.head, 4 + n - 1);
        assert_sums_match_slots(&w);

        /* a jump of exactly n clears everything, even the old head */
        assert_int_equal(add1(&w, (fm_ms)(4 + n - 1 + n) * width, 64), 0);
        assert_int_equal(w.head, 4 + n - 1 + n);
        assert_int_equal(sum_req(&w, (4 + n - 1 + n) * width), 64);
        assert_int_equal(w.slot[pos_of(&w, w.head)][FM_CTR_REQUESTS], 64);
        assert_sums_match_slots(&w);

        /* same thing through sums */
        assert_int_equal(sum_req(&w, (4 + n - 1 + 2 * n) * width), 0);
        assert_empty(&w);
}

static void test_now_older_than_head(void **state)
{
        const fm_ms width = 1000;
        struct fm_window w;
        uint64_t s[_FM_CTR_MAX];

        (void)state;
        assert_int_equal(fm_window_init(&w, width, 4), 0);
        assert_int_equal(add3(&w, 1000, 1, 0, 0), 0);
        assert_int_equal(add3(&w, 5000, 0, 1, 0), 0); /* stamped in the future */
        assert_int_equal(w.head, 5);
        /* slot 1 rolled out when head reached 5 (window 2..5) */
        fm_window_sums(&w, 1500, s);
        assert_int_equal(s[FM_CTR_REQUESTS], 0);
        assert_int_equal(s[FM_CTR_ERRORS], 1);
        assert_int_equal(w.head, 5);

        assert_int_equal(add3(&w, 3000, 0, 0, 1), 0);
        /* now older than head: the future-stamped slot is included */
        fm_window_sums(&w, 3500, s);
        assert_int_equal(s[FM_CTR_ERRORS], 1);
        assert_int_equal(s[FM_CTR_SLOW], 1);
        assert_int_equal(w.head, 5);
        /* even when now is far older than the head */
        fm_window_sums(&w, -1000000, s);
        assert_int_equal(s[FM_CTR_ERRORS] + s[FM_CTR_SLOW], 2);
        assert_int_equal(w.head, 5);
        /* once now catches up, the window rolls as usual */
        fm_window_sums(&w, 6999, s);
        assert_int_equal(s[FM_CTR_ERRORS] + s[FM_CTR_SLOW], 2);
        fm_window_sums(&w, 7000, s);
        assert_int_equal(s[FM_CTR_SLOW], 0);
        assert_int_equal(s[FM_CTR_ERRORS], 1);
        assert_sums_match_slots(&w);
}

/*
 * Rolling is "move the head to max(head, slot of now)", and the empty head
 * is the oldest index, so a query also places the head of an empty window.
 */
static void test_sums_on_empty_window_sets_head(void **state)
{
        struct fm_window w;

        (void)state;
        assert_int_equal(fm_window_init(&w, 100, 3), 0);
        assert_int_equal(sum_req(&w, 10000), 0);
        assert_int_equal(w.head, 100);
        assert_int_equal(add1(&w, 9799, 1), -ERANGE);
        assert_int_equal(add1(&w, 9800, 1), 0);
        assert_int_equal(sum_req(&w, 10000), 1);
}

static void test_saturation(void **state)
{
        struct fm_window w;
        uint64_t s[_FM_CTR_MAX];

        (void)state;
        assert_int_equal(fm_window_init(&w, 10, 4), 0);
        assert_int_equal(add3(&w, 0, UINT32_MAX - 5, 7, UINT32_MAX), 0);
        assert_int_equal(add3(&w, 1, 10, 0, UINT32_MAX), 0);
        assert_int_equal(add3(&w, 2, UINT32_MAX, 0, 1), 0);
        assert_int_equal(w.slot[0][FM_CTR_REQUESTS], UINT32_MAX);
        assert_int_equal(w.slot[0][FM_CTR_SLOW], UINT32_MAX);
        fm_window_sums(&w, 9, s);
        assert_int_equal(s[FM_CTR_REQUESTS], UINT32_MAX);
        assert_int_equal(s[FM_CTR_ERRORS], 7);
        assert_int_equal(s[FM_CTR_SLOW], UINT32_MAX);
        assert_sums_match_slots(&w);

        /* other slots add on top in the 64-bit sum */
        assert_int_equal(add3(&w, 10, UINT32_MAX, 1, 3), 0);
        assert_int_equal(add3(&w, 25, 2, 0, 0), 0);
        fm_window_sums(&w, 39, s);
        assert_int_equal(s[FM_CTR_REQUESTS], 2ull * UINT32_MAX + 2);
        assert_int_equal(s[FM_CTR_SLOW], (uint64_t)UINT32_MAX + 3);
        assert_sums_match_slots(&w);

        /* the saturated slot rolls out cleanly */
        fm_window_sums(&w, 40, s);
        assert_int_equal(s[FM_CTR_REQUESTS], (uint64_t)UINT32_MAX + 2);
        assert_int_equal(s[FM_CTR_ERRORS], 1);
        assert_int_equal(s[FM_CTR_SLOW], 3);
        assert_sums_match_slots(&w);
        fm_window_sums(&w, 59, s);
        assert_int_equal(s[FM_CTR_REQUESTS], 2);
        fm_window_sums(&w, 60, s);
        assert_int_equal(s[FM_CTR_REQUESTS], 0);
        assert_sums_match_slots(&w);
}

/* ---- randomized comparison against a naive reference ------------------ */

static uint64_t splitmix64(uint64_t *s)
{
        uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
}

static uint64_t rnd(uint64_t *s, uint64_t bound)
{
        return bound == 0 ? 0 : splitmix64(s) % bound;
}

/*
 * The reference keeps every accepted (t, v) pair and recomputes the sums
 * from scratch. Its head H is the newest slot index seen by an accepted add
 * or by a query since the last reset. An add whose slot is at or before
 * H - nslots is refused, judged against H as it stands at that moment. A
 * query sums the pairs with slot index in (H - nslots, H], where each slot
 * saturates at UINT32_MAX: saturating adds of non-negative values give
 * min(total, UINT32_MAX), whatever their order. Pairs that have fallen out
 * can never return (H never decreases), so they are dropped to keep it fast.
 */
struct ref_ev {
        int64_t k;
        uint32_t v[_FM_CTR_MAX];
};

struct ref {
        fm_ms width;
        uint32_t n;
        bool has_head;
        int64_t head;
        struct ref_ev *ev;
        size_t nev, cap;
};

static int64_t ref_slot(const struct ref *r, fm_ms t)
{
        int64_t q = t / r->width;

        return (t % r->width < 0) ? q - 1 : q;
}

static void ref_prune(struct ref *r)
{
        size_t j = 0;

        for (size_t i = 0; i < r->nev; i++)
                if (r->ev[i].k > r->head - (int64_t)r->n)
                        r->ev[j++] = r->ev[i];
        r->nev = j;
}

static int ref_add(struct ref *r, fm_ms t, const uint32_t v[_FM_CTR_MAX])
{
        int64_t k = ref_slot(r, t);

        if (r->has_head && k <= r->head - (int64_t)r->n)
                return -ERANGE;
        if (!r->has_head || k > r->head)
                r->head = k;
        r->has_head = true;
        if (r->nev == r->cap) {
                size_t cap = r->cap ? 2 * r->cap : 64;
                struct ref_ev *ev = realloc(r->ev, cap * sizeof(*ev));

                assert_non_null(ev);
                r->ev = ev;
                r->cap = cap;
        }
        r->ev[r->nev].k = k;
        memcpy(r->ev[r->nev].v, v, sizeof(r->ev[r->nev].v));
        r->nev++;
        ref_prune(r);
        return 0;
}

static void ref_sums(struct ref *r, fm_ms now, uint64_t ret[_FM_CTR_MAX])
{
        uint64_t tot[FM_WINDOW_MAX_SLOTS][_FM_CTR_MAX] = {{0}};
        int64_t k = ref_slot(r, now);
        int64_t oldest;

        if (!r->has_head || k > r->head)
                r->head = k;
        r->has_head = true;
        ref_prune(r);

        oldest = r->head - (int64_t)r->n + 1;
        for (size_t i = 0; i < r->nev; i++) {
                assert_true(r->ev[i].k >= oldest && r->ev[i].k <= r->head);
                for (size_t c = 0; c < _FM_CTR_MAX; c++)
                        tot[r->ev[i].k - oldest][c] += r->ev[i].v[c];
        }
        for (size_t c = 0; c < _FM_CTR_MAX; c++) {
                ret[c] = 0;
                for (uint32_t i = 0; i < r->n; i++)
                        ret[c] += tot[i][c] > UINT32_MAX ? UINT32_MAX : tot[i][c];
        }
}

static void ref_reset(struct ref *r)
{
        r->has_head = false;
        r->nev = 0;
}

static uint32_t rnd_value(uint64_t *s)
{
        uint64_t r = rnd(s, 1000);

        if (r == 0)
                return UINT32_MAX - (uint32_t)rnd(s, 4);
        if (r < 4)
                return (uint32_t)splitmix64(s);
        return (uint32_t)rnd(s, 5);
}

static void run_random(uint64_t seed, fm_ms width, uint32_t n, size_t nops)
{
        struct fm_window w;
        struct ref r = {.width = width, .n = n};
        uint64_t s = seed;
        fm_ms len = width * (fm_ms)n;
        fm_ms cur = (fm_ms)rnd(&s, 2000000000000ull) - 1000000000000ll;
        size_t nrange = 0, nok = 0;

        assert_int_equal(fm_window_init(&w, width, n), 0);

        for (size_t op = 0; op < nops; op++) {
                uint64_t kind = rnd(&s, 1000);
                uint64_t got[_FM_CTR_MAX], want[_FM_CTR_MAX];
                uint32_t v[_FM_CTR_MAX];
                fm_ms t;
                int rc, rrc;

                for (size_t c = 0; c < _FM_CTR_MAX; c++)
                        v[c] = rnd_value(&s);

                if (kind < 550) { /* in order, small step */
                        cur += (fm_ms)rnd(&s, 2 * (uint64_t)width);
                        t = cur;
                } else if (kind < 700) { /* out of order, some beyond the window */
                        t = cur - (fm_ms)rnd(&s, (uint64_t)(len + len / 2) + 2 * (uint64_t)width);
                } else if (kind < 750) { /* stamped a little in the future */
                        t = cur + (fm_ms)rnd(&s, 3 * (uint64_t)width);
                } else if (kind < 900) { /* query at the current time */
                        t = cur;
                } else if (kind < 950) { /* query at a time older than head */
                        t = cur - (fm_ms)rnd(&s, 2 * (uint64_t)len);
                } else if (kind < 990) { /* jump around the window length */
                        cur += len - width + (fm_ms)rnd(&s, 3 * (uint64_t)width);
                        t = cur;
                } else if (kind < 999) { /* big jump */
                        cur += len * (fm_ms)(1 + rnd(&s, 5)) + (fm_ms)rnd(&s, (uint64_t)width);
                        t = cur;
                } else {
                        fm_window_reset(&w);
                        ref_reset(&r);
                        continue;
                }

                if (kind < 750 || (kind >= 950 && rnd(&s, 2))) {
                        rc = fm_window_add(&w, t, v);
                        rrc = ref_add(&r, t, v);
                        if (rc != rrc)
                                fail_msg("seed %llu op %zu: add(%lld) = %d, want %d",
                                         (unsigned long long)seed, op, (long long)t, rc, rrc);
                        if (rc == 0)
                                nok++;
                        else
                                nrange++;
                } else {
                        fm_window_sums(&w, t, got);
                        ref_sums(&r, t, want);
                        for (size_t c = 0; c < _FM_CTR_MAX; c++)
                                if (got[c] != want[c])
                                        fail_msg("seed %llu op %zu: sums(%lld)[%zu] = %llu, "
                                                 "want %llu",
                                                 (unsigned long long)seed, op, (long long)t, c,
                                                 (unsigned long long)got[c],
                                                 (unsigned long long)want[c]);
                }
                if (r.has_head && w.head != r.head)
                        fail_msg("seed %llu op %zu: head %lld, want %lld", (unsigned long long)seed,
                                 op, (long long)w.head, (long long)r.head);
                assert_sums_match_slots(&w);
        }

        /* the mix must have exercised both outcomes of add */
        assert_true(nok > nops / 4);
        assert_true(nrange > nops / 100);
        free(r.ev);
}

static void test_random_vs_reference(void **state)
{
        static const struct {
                fm_ms width;
                uint32_t n;
        } cfg[] = {
                {1, 1}, {1, 2}, {7, 3}, {1000, 10}, {10, 60}, {3, FM_WINDOW_MAX_SLOTS},
        };
        uint64_t seed = 0x5eedf1ee7ull;

        (void)state;
        for (size_t i = 0; i < ARRAY_SIZE(cfg); i++)
                run_random(seed + i, cfg[i].width, cfg[i].n, 20000);
        /* a few more shapes with random width and slot count */
        for (size_t i = 0; i < 8; i++) {
                uint64_t s = seed ^ (0x1000 + i);
                fm_ms width = 1 + (fm_ms)rnd(&s, 5000);
                uint32_t n = 1 + (uint32_t)rnd(&s, FM_WINDOW_MAX_SLOTS);

                run_random(s, width, n, 5000);
        }
}

/* fm_window_recent reads the newest k slots without rolling the window. */
static void test_recent(void **state)
{
        struct fm_window w;
        uint64_t r[_FM_CTR_MAX];
        (void)state;

        assert_int_equal(fm_window_init(&w, 1000, 6), 0);
        for (int s = 0; s < 6; s++) {
                const uint32_t v[_FM_CTR_MAX] = {(uint32_t)(s + 1), (uint32_t)s, 0};
                assert_int_equal(fm_window_add(&w, s * 1000 + 500, v), 0);
        }
        /* slots 0..5 hold requests 1..6 */
        fm_window_recent(&w, 5999, 1, r);
        assert_int_equal(r[FM_CTR_REQUESTS], 6);
        fm_window_recent(&w, 5999, 3, r);
        assert_int_equal(r[FM_CTR_REQUESTS], 6 + 5 + 4);
        assert_int_equal(r[FM_CTR_ERRORS], 5 + 4 + 3);
        fm_window_recent(&w, 5999, 100, r); /* capped at nslots */
        assert_int_equal(r[FM_CTR_REQUESTS], 21);
        /* two seconds later, unrolled: slots 6 and 7 are empty, 2..5 remain in reach */
        fm_window_recent(&w, 7000, 3, r);
        assert_int_equal(r[FM_CTR_REQUESTS], 6);
        fm_window_recent(&w, 7000, 6, r);
        assert_int_equal(r[FM_CTR_REQUESTS], 6 + 5 + 4 + 3);
        /* far past the window: nothing */
        fm_window_recent(&w, 60000, 6, r);
        assert_int_equal(r[FM_CTR_REQUESTS], 0);
        /* the read changed nothing */
        uint64_t sums[_FM_CTR_MAX];
        fm_window_sums(&w, 5999, sums);
        assert_int_equal(sums[FM_CTR_REQUESTS], 21);
        /* an empty window */
        fm_window_reset(&w);
        fm_window_recent(&w, 5999, 6, r);
        assert_int_equal(r[FM_CTR_REQUESTS], 0);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_init_errors),
                cmocka_unit_test(test_reset),
                cmocka_unit_test(test_recent),
                cmocka_unit_test(test_bucket_edges),
                cmocka_unit_test(test_single_slot),
                cmocka_unit_test(test_negative_times),
                cmocka_unit_test(test_extreme_times),
                cmocka_unit_test(test_add_into_past_slots),
                cmocka_unit_test(test_jump_clears),
                cmocka_unit_test(test_jump_exactly_nslots),
                cmocka_unit_test(test_now_older_than_head),
                cmocka_unit_test(test_sums_on_empty_window_sets_head),
                cmocka_unit_test(test_saturation),
                cmocka_unit_test(test_random_vs_reference),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
