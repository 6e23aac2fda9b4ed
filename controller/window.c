/* SPDX-License-Identifier: MIT */

#include <errno.h>
#include <string.h>

#include "window.h"

/*
 * The ring: slot index k lives at position k mod nslots. Indices can be
 * negative (times before the epoch), and C's % keeps the sign of the
 * dividend, so fold the remainder back into 0 .. nslots - 1.
 */
static uint32_t ring_pos(const struct fm_window *w, int64_t k)
{
        int64_t n = (int64_t)w->nslots;
        int64_t r = k % n;

        return (uint32_t)(r < 0 ? r + n : r);
}

static void clear_all(struct fm_window *w)
{
        memset(w->slot, 0, sizeof(w->slot));
        memset(w->sum, 0, sizeof(w->sum));
}

/*
 * Moves the head forward to slot index k (k > head). The slots head + 1 .. k
 * are about to be reused for new indices, so their old counts leave the
 * running sums as they are cleared. A gap of nslots or more means nothing
 * in the window survives, so we clear everything at once: that bounds the
 * work by nslots however far time jumped.
 *
 * The gap is computed in unsigned arithmetic: k - head can exceed INT64_MAX
 * (for instance from the empty head INT64_MIN to any positive index), and
 * modular subtraction gives the exact distance when k > head.
 *
 * The empty head INT64_MIN needs no special case: an empty window has all
 * slots at zero, so "clearing" the gap is harmless, and it behaves exactly
 * like a window whose head is the oldest possible index.
 */
static void roll(struct fm_window *w, int64_t k)
{
        uint64_t gap = (uint64_t)k - (uint64_t)w->head;

        if (gap >= w->nslots) {
                clear_all(w);
        } else {
                for (uint64_t i = 1; i <= gap; i++) {
                        uint32_t p = ring_pos(w, w->head + (int64_t)i);

                        for (size_t c = 0; c < _FM_CTR_MAX; c++) {
                                w->sum[c] -= w->slot[p][c];
                                w->slot[p][c] = 0;
                        }
                }
        }
        w->head = k;
}

int fm_window_init(struct fm_window *w, fm_ms width, uint32_t nslots)
{
        if (width <= 0 || nslots == 0 || nslots > FM_WINDOW_MAX_SLOTS)
                return -EINVAL;
        /* fm_window_length() multiplies the two; keep it from overflowing. */
        if (width > INT64_MAX / (int64_t)nslots)
                return -EINVAL;

        w->width = width;
        w->nslots = nslots;
        fm_window_reset(w);
        return 0;
}

void fm_window_reset(struct fm_window *w)
{
        clear_all(w);
        w->head = INT64_MIN;
}

int fm_window_add(struct fm_window *w, fm_ms t, const uint32_t v[_FM_CTR_MAX])
{
        int64_t k = fm_floordiv(t, w->width);
        uint32_t p;

        if (k > w->head)
                roll(w, k);
        else if ((uint64_t)w->head - (uint64_t)k >= w->nslots)
                return -ERANGE; /* at or before head - nslots: already gone */

        p = ring_pos(w, k);
        for (size_t c = 0; c < _FM_CTR_MAX; c++) {
                uint32_t old = w->slot[p][c];
                uint32_t upd = fm_sat_add_u32(old, v[c]);

                /* Only what the slot actually took enters the sum, so the
                 * sum stays equal to the slots after saturation too. */
                w->slot[p][c] = upd;
                w->sum[c] += upd - old;
        }
        return 0;
}

void fm_window_sums(struct fm_window *w, fm_ms now, uint64_t ret[_FM_CTR_MAX])
{
        int64_t k = fm_floordiv(now, w->width);

        if (k > w->head)
                roll(w, k);
        for (size_t c = 0; c < _FM_CTR_MAX; c++)
                ret[c] = w->sum[c];
}

void fm_window_recent(const struct fm_window *w, fm_ms now, uint32_t k, uint64_t ret[_FM_CTR_MAX])
{
        int64_t now_idx = fm_floordiv(now, w->width);

        memset(ret, 0, _FM_CTR_MAX * sizeof(ret[0]));
        if (k > w->nslots)
                k = w->nslots;
        for (uint32_t j = 0; j < k; j++) {
                int64_t idx = now_idx - (int64_t)j;
                /* newer than the head: not written yet; too old: rolled out or about to be */
                if (idx > w->head || (uint64_t)w->head - (uint64_t)idx >= w->nslots)
                        continue;
                uint32_t p = ring_pos(w, idx);
                for (size_t c = 0; c < _FM_CTR_MAX; c++)
                        ret[c] += w->slot[p][c];
        }
}
