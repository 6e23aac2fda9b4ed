/* SPDX-License-Identifier: MIT */

/*
 * DDSketch-style quantile sketch: see sketch.h for the contract.
 *
 * Bucket i (0-based) holds the values in (MIN * gamma^(i-1), MIN * gamma^i],
 * so a value v in range goes to ceil(log(v / MIN) / log(gamma)). Every value
 * of bucket i is within a relative error of alpha of the bucket's
 * representative 2 * MIN * gamma^i / (gamma + 1): that point divides the
 * bucket so that (rep - low) / low == (high - rep) / high == alpha. Because
 * the index is monotone in the value, the value of rank r lies in the bucket
 * where the cumulative count first exceeds r, and the bound follows.
 *
 * Counts are kept saturating: each add is clipped so that the total never
 * wraps, which keeps sum(bucket[]) == count, the invariant the quantile walk
 * relies on. Nothing here allocates, and no state lives outside the structs.
 */

#include <errno.h>
#include <math.h>
#include <string.h>

#include "sketch.h"

_Static_assert(FM_SKETCH_BUCKETS >= 2, "the sketch needs at least two buckets");
_Static_assert(FM_SKETCH_RING_MAX_SLOTS >= 1, "the ring needs at least one slot");
_Static_assert(FM_SKETCH_RING_MAX_SLOTS <= UINT32_MAX, "nslots is a uint32_t");
/*
 * FM_SKETCH_BUCKETS == ceil(ln(MAX / MIN) / ln(gamma)) + 1 cannot be a
 * static assertion in C17 (log() is not a constant expression); the unit
 * test test_bucket_count checks it both ways (large enough, not wasteful).
 */

/*
 * ln(gamma) and its inverse. Written as functions of constants rather than
 * stored anywhere, so there is no mutable state; an optimising compiler
 * folds them to literals.
 */
static inline double log_gamma(void)
{
        return log((1.0 + FM_SKETCH_ALPHA) / (1.0 - FM_SKETCH_ALPHA));
}

static inline double inv_log_gamma(void)
{
        return 1.0 / log_gamma();
}

/*
 * Bucket of a finite, non-negative value; out-of-range values clamp. The
 * clamp is on the index, in double before any conversion: v / MIN may
 * overflow to infinity for huge v, and x is then infinite too.
 */
static uint32_t bucket_of(double v)
{
        if (v <= FM_SKETCH_MIN_MS)
                return 0;

        double x = ceil(log(v / FM_SKETCH_MIN_MS) * inv_log_gamma());
        if (!(x < (double)(FM_SKETCH_BUCKETS - 1)))
                return FM_SKETCH_BUCKETS - 1;
        if (x < 0.0)
                return 0;
        return (uint32_t)x;
}

/* Representative value of bucket i, before clamping to [min, max]. */
static double bucket_value(uint32_t i)
{
        double gamma = (1.0 + FM_SKETCH_ALPHA) / (1.0 - FM_SKETCH_ALPHA);
        return FM_SKETCH_MIN_MS * 2.0 * exp((double)i * log_gamma()) / (gamma + 1.0);
}

void fm_sketch_reset(struct fm_sketch *s)
{
        memset(s, 0, sizeof(*s));
}

/* Adds n at value_ms, whose bucket index the caller computed. */
static void add_at(struct fm_sketch *s, double value_ms, uint32_t index, uint64_t n)
{
        /* Saturate rather than wrap: bucket counts can then never wrap either. */
        if (n > UINT64_MAX - s->count)
                n = UINT64_MAX - s->count;
        if (n == 0)
                return;

        if (s->count == 0) {
                s->min = value_ms;
                s->max = value_ms;
        } else {
                if (value_ms < s->min)
                        s->min = value_ms;
                if (value_ms > s->max)
                        s->max = value_ms;
        }
        s->count += n;
        s->sum += value_ms * (double)n;
        s->bucket[index] += n;
}

void fm_sketch_add(struct fm_sketch *s, double value_ms, uint64_t n)
{
        if (!isfinite(value_ms) || value_ms < 0.0)
                return;
        add_at(s, value_ms, bucket_of(value_ms), n);
}

/*
 * One point per histogram bucket: the geometric mean of its bounds suits
 * latency buckets, which are usually spaced geometrically. A bucket whose
 * lower bound is not positive has no geometric mean; it is treated like
 * bucket 0 (lower bound 0) and gets half its upper bound.
 */
void fm_sketch_add_hist_many(struct fm_sketch *const *s, size_t n_sketches, const struct fm_hist *h)
{
        uint32_t n = h->n;

        if (n == 0 || n > FM_HIST_MAX_BOUNDS)
                return;

        for (uint32_t i = 0; i <= n; i++) {
                uint64_t c = h->count[i];
                double v;

                if (c == 0)
                        continue;
                if (i == n)
                        v = h->bound[n - 1];
                else if (i == 0 || !(h->bound[i - 1] > 0.0))
                        v = h->bound[i] / 2.0;
                else
                        /* sqrt of each factor: the product could overflow. */
                        v = sqrt(h->bound[i - 1]) * sqrt(h->bound[i]);
                if (!isfinite(v) || v < 0.0)
                        continue;
                /* one log per bucket, however many sketches take it */
                uint32_t index = bucket_of(v);
                for (size_t k = 0; k < n_sketches; k++)
                        add_at(s[k], v, index, c);
        }
}

void fm_sketch_add_hist(struct fm_sketch *s, const struct fm_hist *h)
{
        fm_sketch_add_hist_many(&s, 1, h);
}

/*
 * Weights: floor(45 % of n) at p95, floor(5 % of n) at p99 (the 4 % between
 * p95 and p99 plus the top 1 %, which a summary cannot place any higher), the
 * remainder at p50. With rank floor(q * (n - 1)) this returns p50, p95 and p99
 * exactly (up to the sketch's own error) for every n >= 40; below that, p99
 * may read as p95 because floor(5 % of n) is too small a share.
 */
void fm_sketch_add_summary(struct fm_sketch *s, double p50, double p95, double p99, uint64_t n)
{
        if (!isfinite(p50) || !isfinite(p95) || !isfinite(p99))
                return;
        if (p50 < 0.0 || p95 < p50 || p99 < p95)
                return;
        if (n == 0)
                return;

        /* floor(n * k / 100) without overflowing n * k. */
        uint64_t w95 = n / 100 * 45 + n % 100 * 45 / 100;
        uint64_t w99 = n / 100 * 5 + n % 100 * 5 / 100;
        uint64_t w50 = n - w95 - w99;

        fm_sketch_add(s, p50, w50);
        fm_sketch_add(s, p95, w95);
        fm_sketch_add(s, p99, w99);
}

void fm_sketch_merge(struct fm_sketch *dst, const struct fm_sketch *src)
{
        if (src->count == 0)
                return;

        if (dst->count == 0) {
                dst->min = src->min;
                dst->max = src->max;
        } else {
                if (src->min < dst->min)
                        dst->min = src->min;
                if (src->max > dst->max)
                        dst->max = src->max;
        }
        dst->sum += src->sum;

        /*
         * Saturate bucket by bucket against the room left in the total, so
         * the invariant sum(bucket[]) == count survives an overflow.
         */
        uint64_t room = UINT64_MAX - dst->count;
        for (uint32_t i = 0; i < FM_SKETCH_BUCKETS; i++) {
                uint64_t c = src->bucket[i];
                if (c > room)
                        c = room;
                dst->bucket[i] += c;
                dst->count += c;
                room -= c;
        }
}

/*
 * Rank floor(q * (count - 1)), then the first bucket whose cumulative count
 * exceeds it. Ranks 0 and count - 1 answer with the exact min and max, which
 * the sketch keeps anyway; every other rank gets its bucket's
 * representative, clamped to [min, max].
 */
int fm_sketch_quantile(const struct fm_sketch *s, double q, double *ret)
{
        if (!isfinite(q) || q < 0.0 || q > 1.0)
                return -EINVAL;
        if (s->count == 0)
                return -ENODATA;

        uint64_t last = s->count - 1;
        double r = floor(q * (double)last);
        /* (double)last may round up past last; never convert past it. */
        uint64_t rank = r >= (double)last ? last : (uint64_t)r;

        if (rank == 0) {
                *ret = s->min;
                return 0;
        }
        if (rank == last) {
                *ret = s->max;
                return 0;
        }

        uint64_t cum = 0;
        uint32_t i;
        for (i = 0; i < FM_SKETCH_BUCKETS - 1; i++) {
                cum += s->bucket[i];
                if (cum > rank)
                        break;
        }

        double v = bucket_value(i);
        if (v < s->min)
                v = s->min;
        if (v > s->max)
                v = s->max;
        *ret = v;
        return 0;
}

/* k mod nslots in [0, nslots), also for negative k. */
static uint32_t ring_pos(const struct fm_sketch_ring *r, int64_t k)
{
        int64_t m = k % (int64_t)r->nslots;
        if (m < 0)
                m += r->nslots;
        return (uint32_t)m;
}

int fm_sketch_ring_init(struct fm_sketch_ring *r, fm_ms width, uint32_t nslots)
{
        if (width <= 0 || nslots == 0 || nslots > FM_SKETCH_RING_MAX_SLOTS)
                return -EINVAL;

        memset(r, 0, sizeof(*r));
        r->width = width;
        r->nslots = nslots;
        r->head = INT64_MIN;
        return 0;
}

/*
 * Differences between slot indices are taken in uint64_t after comparing
 * the operands: for a > b, (uint64_t)a - (uint64_t)b is the exact distance,
 * where a - b in int64_t could overflow on extreme timestamps.
 *
 * INT64_MIN doubles as the "empty" head. The one slot index that collides
 * with it (t == INT64_MIN with width 1) is answered with NULL: no real
 * timestamp is that old.
 */
struct fm_sketch *fm_sketch_ring_at(struct fm_sketch_ring *r, fm_ms t)
{
        int64_t k = fm_floordiv(t, r->width);

        if (k == INT64_MIN)
                return NULL;

        if (r->head == INT64_MIN) {
                r->head = k;
                fm_sketch_reset(&r->slot[ring_pos(r, k)]);
                return &r->slot[ring_pos(r, k)];
        }

        if (k > r->head) {
                uint64_t jump = (uint64_t)k - (uint64_t)r->head;
                if (jump >= r->nslots) {
                        for (uint32_t i = 0; i < r->nslots; i++)
                                fm_sketch_reset(&r->slot[i]);
                } else {
                        for (uint64_t j = 1; j <= jump; j++)
                                fm_sketch_reset(&r->slot[ring_pos(r, r->head + (int64_t)j)]);
                }
                r->head = k;
        } else if ((uint64_t)r->head - (uint64_t)k >= r->nslots) {
                return NULL;
        }

        return &r->slot[ring_pos(r, k)];
}

void fm_sketch_ring_collect(const struct fm_sketch_ring *r, fm_ms now, struct fm_sketch *ret)
{
        fm_sketch_reset(ret);
        if (r->head == INT64_MIN)
                return;

        int64_t kn = fm_floordiv(now, r->width);

        /* The ring holds slots head - nslots + 1 .. head; keep those > kn - nslots. */
        for (uint32_t i = 0; i < r->nslots; i++) {
                if (r->head < INT64_MIN + (int64_t)i)
                        break; /* would be before the start of time: never written */
                int64_t j = r->head - (int64_t)i;
                if (j < kn && (uint64_t)kn - (uint64_t)j >= r->nslots)
                        break; /* older slots are older still */
                fm_sketch_merge(ret, &r->slot[ring_pos(r, j)]);
        }
}
