/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Latency quantile sketch with fixed memory, in the manner of DDSketch:
 * logarithmic buckets with ratio gamma = (1 + a) / (1 - a), a = FM_SKETCH_ALPHA.
 * Every quantile it returns for values inside [FM_SKETCH_MIN_MS,
 * FM_SKETCH_MAX_MS] is within a relative error of FM_SKETCH_ALPHA of the
 * exact value at rank floor(q * (count - 1)) (0-based) of the added values.
 * Values below the range are counted in the lowest bucket, values above in
 * the highest; returned quantiles are clamped to the exact observed min and
 * max. Sketches merge exactly (bucket-wise sums), so per-instance or
 * per-slot sketches can be combined without losing the bound.
 *
 * Pure: no allocation, no I/O.
 */

#include <stddef.h>
#include <stdint.h>

#include "event.h"
#include "util.h"

#define FM_SKETCH_ALPHA 0.0075 /* relative accuracy: 0.75 %, under the 1 % promised */
#define FM_SKETCH_MIN_MS 0.01  /* 10 microseconds */
#define FM_SKETCH_MAX_MS 3.6e6 /* one hour */
/*
 * ceil(ln(MAX/MIN) / ln(gamma)) + 1 = ceil(1313.42) + 1: bucket 0 holds MIN
 * (and below), bucket 1314 holds MAX. log() is not a constant expression, so
 * tests/unit/test_sketch.c checks this both ways (large enough, no waste).
 */
#define FM_SKETCH_BUCKETS 1315

/*
 * Memory: sizeof(struct fm_sketch) = 32 + 8 * FM_SKETCH_BUCKETS = 10552 bytes
 * (about 10.3 KiB), fixed whatever is added; a full ring (below) is about
 * 62 KiB.
 */
struct fm_sketch {
        uint64_t count;
        double sum;      /* of added values, for the mean */
        double min, max; /* exact extremes; meaningless when count == 0 */
        uint64_t bucket[FM_SKETCH_BUCKETS];
};

/* Empties the sketch. */
void fm_sketch_reset(struct fm_sketch *s);

/* Adds value (ms) with weight n. Non-finite or negative values are ignored; n == 0 is a no-op. */
void fm_sketch_add(struct fm_sketch *s, double value_ms, uint64_t n);

/*
 * Adds a schema histogram (bounds in ms). Each finite bucket's count goes in
 * at one representative value inside the bucket (the geometric mean of its
 * bounds; half the first bound for bucket 0), the +Inf bucket at the last
 * bound. A histogram is therefore only as precise as its own bounds.
 */
void fm_sketch_add_hist(struct fm_sketch *s, const struct fm_hist *h);

/* The same into each of n_sketches sketches, computing each bucket's index once. */
void fm_sketch_add_hist_many(struct fm_sketch *const *s, size_t n_sketches,
                             const struct fm_hist *h);

/*
 * Adds n requests summarised only by p50/p95/p99 (ms): the weights are
 * split 50 % at p50, 45 % at p95 and 5 % at p99 (the 4 % between p95 and
 * p99 plus the top 1 %, which a summary cannot place higher), so that the
 * sketch's p50, p95 and p99 of these requests are those values (for
 * n >= 40; fewer requests are too few for a 5 % share to reach rank p99).
 * The p95 and p99 shares are rounded down and the remainder goes to p50.
 * Nothing is added if the three are not finite, non-negative and
 * non-decreasing.
 */
void fm_sketch_add_summary(struct fm_sketch *s, double p50, double p95, double p99, uint64_t n);

/* dst += src. */
void fm_sketch_merge(struct fm_sketch *dst, const struct fm_sketch *src);

/*
 * Quantile q in [0, 1]. Returns 0 and the value in *ret; -EINVAL if q is
 * outside [0, 1] or not finite; -ENODATA if the sketch is empty. *ret is
 * written only on success. The ranks 0 and count - 1 (q = 0, q = 1) answer
 * with the exact min and max.
 */
int fm_sketch_quantile(const struct fm_sketch *s, double q, double *ret);

/*
 * A sliding window of sketches: nslots slots of `width` ms each, a ring
 * indexed by floor(t / width). Used per version for "p99 over the last
 * minutes" while fm_sketch itself serves lifetime statistics.
 */
#define FM_SKETCH_RING_MAX_SLOTS 6

struct fm_sketch_ring {
        fm_ms width;
        uint32_t nslots;
        int64_t head; /* slot index of the newest slot; INT64_MIN when empty */
        struct fm_sketch slot[FM_SKETCH_RING_MAX_SLOTS];
};

/* Returns 0, or -EINVAL when width <= 0 or nslots is 0 or over the maximum. */
int fm_sketch_ring_init(struct fm_sketch_ring *r, fm_ms width, uint32_t nslots);

/*
 * Returns the slot sketch for time t, rolling the ring forward (clearing
 * the slots that fall out) if t is newer than the head. Returns NULL when t
 * is older than the oldest slot: the caller drops that data.
 */
struct fm_sketch *fm_sketch_ring_at(struct fm_sketch_ring *r, fm_ms t);

/*
 * Merges the slots that cover (now - nslots * width, now] into *ret
 * (which is reset first). Slots newer than now (clock skew) are included.
 * Does not modify the ring.
 */
void fm_sketch_ring_collect(const struct fm_sketch_ring *r, fm_ms now, struct fm_sketch *ret);
