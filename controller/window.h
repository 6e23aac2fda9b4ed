/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Time-bucketed sliding window of counters (requests, errors, slow calls).
 *
 * The window is nslots slots of `width` ms; slot k holds events with
 * floor(t / width) == k, so a time exactly on a bucket edge belongs to the
 * newer bucket. The window at `now` covers the slots head - nslots + 1 ..
 * head where head = floor(now / width): the current, partly filled slot
 * and nslots - 1 full ones.
 *
 * The head only moves forward, to the newest slot index seen by an add or a
 * query. An empty window's head (INT64_MIN) acts as the oldest index there
 * is, so the first add, or the first query, places it.
 *
 * Running sums are kept beside the slots, so adding and querying are O(1)
 * amortised: rolling forward clears at most nslots slots however large the
 * jump. Slot counts are 32-bit and saturate at UINT32_MAX; sums are 64-bit
 * and always equal the sum of what the slots hold.
 *
 * Pure: no allocation, no I/O. The struct is a fixed 768 bytes (12 bytes
 * for each of FM_WINDOW_MAX_SLOTS slots plus 48) whatever nslots is.
 */

#include <stdint.h>

#include "util.h"

#define FM_WINDOW_MAX_SLOTS 60

enum fm_counter {
        FM_CTR_REQUESTS,
        FM_CTR_ERRORS,
        FM_CTR_SLOW,
        _FM_CTR_MAX,
};

struct fm_window {
        fm_ms width;
        int64_t head; /* newest slot index; INT64_MIN when empty */
        uint32_t nslots;
        uint64_t sum[_FM_CTR_MAX];
        uint32_t slot[FM_WINDOW_MAX_SLOTS][_FM_CTR_MAX];
};

/*
 * Sets up an empty window of nslots slots of width ms.
 * Returns 0, or -EINVAL (leaving *w untouched) when width <= 0, nslots is 0
 * or over the maximum, or width * nslots does not fit in fm_ms.
 */
int fm_window_init(struct fm_window *w, fm_ms width, uint32_t nslots);

/* Empties the window, keeping width and nslots. */
void fm_window_reset(struct fm_window *w);

/*
 * Adds v[] at time t. If t's slot is newer than the head, the window rolls
 * forward first. Returns 0, or -ERANGE (and changes nothing) when t falls
 * before the oldest slot, floor(t / width) <= head - nslots, judged against
 * the head as it stands: late data is kept only while its slot is still in
 * the window.
 */
int fm_window_add(struct fm_window *w, fm_ms t, const uint32_t v[_FM_CTR_MAX]);

/*
 * Rolls the window forward to now (if now is newer than the head) and
 * writes the sums over the window into ret[]. When now is older than the
 * head (events stamped slightly in the future), nothing rolls and the sums
 * are those of the window ending at the head, newer slots included; how far
 * now lags the head does not matter. On an empty window this places the
 * head at now's slot, so later adds older than the window are refused.
 */
void fm_window_sums(struct fm_window *w, fm_ms now, uint64_t ret[_FM_CTR_MAX]);

/*
 * Sums of the k newest slots as of now (the slot holding now and the k - 1
 * before it), without rolling the window: a read for policies that hold
 * the fleet read-only. k is capped at nslots. O(k).
 */
void fm_window_recent(const struct fm_window *w, fm_ms now, uint32_t k, uint64_t ret[_FM_CTR_MAX]);

/* Length of the window in ms: width * nslots. */
static inline fm_ms fm_window_length(const struct fm_window *w)
{
        return w->width * (fm_ms)w->nslots;
}
