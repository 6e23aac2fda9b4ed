/* SPDX-License-Identifier: MIT */
#include "actuator.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

/*
 * The dry-run backend. Its start() knows the result at once, but calling
 * fm_actuator_complete() from inside start() would re-enter the actuator
 * while it is half-way through launching the attempt (the actuator refuses
 * that with -EBUSY). So start() records the attempt and its detail, and
 * fm_dryrun_flush(), run by the event loop right after (or by a test),
 * delivers the results. At most one attempt per actuator request is in
 * flight, so FM_ACTUATOR_QUEUE_MAX records always suffice for one actuator.
 */

#define DRYRUN_PENDING_MAX FM_ACTUATOR_QUEUE_MAX

struct pending {
        uint64_t attempt_id;
        bool observe; /* a dry run applied nothing: an observation never finds it */
        char detail[FM_ACTUATOR_DETAIL_MAX];
};

struct fm_dryrun {
        struct pending *pending; /* in start order */
        uint32_t n;
        uint64_t started;
};

int fm_dryrun_new(struct fm_dryrun **ret)
{
        struct fm_dryrun *d;

        if (!ret)
                return -EINVAL;
        d = calloc(1, sizeof *d);
        if (!d)
                return -ENOMEM;
        d->pending = calloc(DRYRUN_PENDING_MAX, sizeof *d->pending);
        if (!d->pending) {
                free(d);
                return -ENOMEM;
        }
        *ret = d;
        return 0;
}

struct fm_dryrun *fm_dryrun_free(struct fm_dryrun *d)
{
        if (d) {
                free(d->pending);
                free(d);
        }
        return NULL;
}

uint64_t fm_dryrun_started(const struct fm_dryrun *d)
{
        return d ? d->started : 0;
}

static int dryrun_start(void *backend, const struct fm_action_req *req, uint64_t attempt_id)
{
        struct fm_dryrun *d = backend;
        struct pending *p;
        static const char prefix[] = "dry-run: would ";
        static const char observed[] = "dry-run: nothing was applied";
        int r;

        if (d->n >= DRYRUN_PENDING_MAX)
                return -ENOBUFS;
        p = d->pending + d->n;
        p->observe = req->observe;
        if (req->observe) {
                memcpy(p->detail, observed, sizeof observed);
                goto recorded;
        }
        memcpy(p->detail, prefix, sizeof prefix - 1);
        /* A truncated detail is still a faithful prefix: accept it. */
        r = fm_action_req_describe(req, p->detail + sizeof prefix - 1,
                                   sizeof p->detail - (sizeof prefix - 1));
        if (r < 0)
                return r;
recorded:
        p->attempt_id = attempt_id;
        d->n++;
        d->started++;
        return 0;
}

static void dryrun_cancel(void *backend, uint64_t attempt_id)
{
        struct fm_dryrun *d = backend;

        for (uint32_t i = 0; i < d->n; i++)
                if (d->pending[i].attempt_id == attempt_id) {
                        memmove(d->pending + i, d->pending + i + 1,
                                (d->n - i - 1) * sizeof *d->pending);
                        d->n--;
                        return;
                }
}

int fm_dryrun_flush(struct fm_dryrun *d, struct fm_actuator *a, fm_ms now)
{
        int delivered = 0;
        bool busy = false;
        uint32_t i;

        if (!d || !a)
                return -EINVAL;
        for (i = 0; i < d->n; i++) {
                struct fm_action_result res = {
                        .kind = d->pending[i].observe ? FM_RESULT_PERMANENT : FM_RESULT_OK,
                        .error = d->pending[i].observe ? -ESRCH : 0,
                        .detail = d->pending[i].detail,
                };
                int r = fm_actuator_complete(a, d->pending[i].attempt_id, &res, now);

                if (r == -EBUSY) {
                        busy = true;
                        break;
                }
                if (r >= 0)
                        delivered++;
        }
        /* Keep what was not delivered because of re-entry, drop the rest. */
        memmove(d->pending, d->pending + i, (d->n - i) * sizeof *d->pending);
        d->n -= i;
        return busy && delivered == 0 ? -EBUSY : delivered;
}

_Static_assert(_FM_ACTION_MAX == 6, "dry-run must support every action");

const struct fm_backend_ops fm_backend_dryrun_ops = {
        .name = "dry-run",
        .supports =
                {
                        [FM_ACTION_SCALE] = true,
                        [FM_ACTION_SET_WEIGHTS] = true,
                        [FM_ACTION_RESTART] = true,
                        [FM_ACTION_ROLLBACK] = true,
                        [FM_ACTION_SET_THRESHOLD] = true,
                        [FM_ACTION_ALERT] = true,
                },
        .start = dryrun_start,
        .cancel = dryrun_cancel,
};
