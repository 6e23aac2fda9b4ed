/* SPDX-License-Identifier: MIT */
#include "actuator.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

enum slot_state {
        SLOT_FREE,
        SLOT_RUNNING,
        SLOT_WAITING,
        SLOT_DONE,
};

struct slot {
        uint8_t state;  /* enum slot_state */
        uint8_t status; /* enum fm_outcome_status, when DONE */
        bool probe;     /* this attempt is its backend's half-open probe */
        int backend;
        uint64_t id, attempt_id;
        uint32_t attempts;
        int last_error;
        fm_ms submitted, next_at, finished;
        struct fm_action_req req;
        char detail[FM_ACTUATOR_DETAIL_MAX];
};

struct backend {
        const struct fm_backend_ops *ops;
        void *userdata;
        enum fm_actuator_breaker_state state;
        uint32_t failures; /* consecutive */
        uint32_t opens;
        fm_ms open_until, cooloff; /* cooloff: the duration of the next opening */
        bool probe_busy;
};

struct fm_actuator {
        struct fm_actuator_config cfg;
        uint64_t rng;
        uint64_t next_id, next_attempt;
        bool busy; /* inside a backend callback */
        struct backend backend[FM_ACTUATOR_BACKENDS_MAX];
        int n_backends;
        struct slot *slot;
        uint32_t *done; /* ring of slot indices in finishing order */
        uint32_t done_head, n_done;
};

/* ---- requests --------------------------------------------------------- */

static bool terminated(const char *s, size_t size)
{
        return memchr(s, '\0', size) != NULL;
}

int fm_action_req_from_intent(const struct fm_plan *p, const struct fm_intent *it, uint64_t fence,
                              fm_ms deadline, struct fm_action_req *ret)
{
        struct fm_action_req r = {0};

        if (!p || !it || !ret || (unsigned)it->action >= _FM_ACTION_MAX)
                return -EINVAL;

        r.action = it->action;
        r.fence = fence;
        r.deadline = deadline;
        memcpy(r.deployment, it->deployment, sizeof r.deployment);
        memcpy(r.instance, it->instance, sizeof r.instance);
        memcpy(r.key, it->key, sizeof r.key);

        switch (it->action) {
        case FM_ACTION_SCALE:
                r.arg.scale.from = it->arg.scale.from;
                r.arg.scale.to = it->arg.scale.to;
                break;
        case FM_ACTION_SET_WEIGHTS: {
                uint32_t first = it->arg.weights.first, n = it->arg.weights.n;

                if (first > p->n_weights || n > p->n_weights - first)
                        return -EINVAL;
                if (n > FM_ACTUATOR_WEIGHTS_MAX)
                        return -E2BIG;
                r.arg.weights.n = n;
                if (n > 0)
                        memcpy(r.arg.weights.w, p->weight + first, n * sizeof(struct fm_weight));
                break;
        }
        case FM_ACTION_RESTART:
                break;
        case FM_ACTION_ROLLBACK:
                memcpy(r.arg.rollback.from, it->arg.rollback.from, sizeof r.arg.rollback.from);
                memcpy(r.arg.rollback.to, it->arg.rollback.to, sizeof r.arg.rollback.to);
                break;
        case FM_ACTION_SET_THRESHOLD:
                memcpy(r.arg.threshold.version, it->arg.threshold.version,
                       sizeof r.arg.threshold.version);
                r.arg.threshold.from = it->arg.threshold.from;
                r.arg.threshold.to = it->arg.threshold.to;
                break;
        case FM_ACTION_ALERT:
                r.arg.alert.severity = it->arg.alert.severity;
                memcpy(r.arg.alert.summary, it->arg.alert.summary, sizeof r.arg.alert.summary);
                break;
        default:
                return -EINVAL;
        }

        *ret = r;
        return 0;
}

/* Appends to buf at *len, keeping *len the would-be length (snprintf's contract). */
static void append(char *buf, size_t size, int *len, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));

static void append(char *buf, size_t size, int *len, const char *fmt, ...)
{
        va_list ap;
        size_t at = (size_t)*len;
        int r;

        va_start(ap, fmt);
        r = vsnprintf(at < size ? buf + at : NULL, at < size ? size - at : 0, fmt, ap);
        va_end(ap);
        if (r > 0)
                *len += r;
}

int fm_action_req_describe(const struct fm_action_req *req, char *buf, size_t size)
{
        const char *name;
        int len = 0;

        if (!req || (!buf && size > 0))
                return -EINVAL;
        name = fm_action_name(req->action);
        if (!name)
                return -EINVAL;
        if (size > 0)
                buf[0] = '\0';

        append(buf, size, &len, "%s %s%s%s", name, req->deployment, req->instance[0] ? "/" : "",
               req->instance);

        switch (req->action) {
        case FM_ACTION_SCALE:
                append(buf, size, &len, " %" PRIu32 "->%" PRIu32, req->arg.scale.from,
                       req->arg.scale.to);
                break;
        case FM_ACTION_SET_WEIGHTS:
                for (uint32_t i = 0; i < req->arg.weights.n && i < FM_ACTUATOR_WEIGHTS_MAX; i++)
                        append(buf, size, &len, "%s%s=%" PRIu32, i == 0 ? " " : ",",
                               req->arg.weights.w[i].target, req->arg.weights.w[i].weight);
                break;
        case FM_ACTION_ROLLBACK:
                append(buf, size, &len, " %s->%s", req->arg.rollback.from, req->arg.rollback.to);
                break;
        case FM_ACTION_SET_THRESHOLD:
                append(buf, size, &len, " %s %g->%g", req->arg.threshold.version,
                       req->arg.threshold.from, req->arg.threshold.to);
                break;
        case FM_ACTION_ALERT: {
                const char *sev = fm_severity_name(req->arg.alert.severity);

                append(buf, size, &len, " %s: %s", sev ? sev : "?", req->arg.alert.summary);
                break;
        }
        default:
                break;
        }
        return len;
}

enum fm_result_kind fm_result_kind_from_http(int status)
{
        if (status >= 200 && status < 300)
                return FM_RESULT_OK;
        switch (status) {
        case 408: /* request timeout */
        case 409: /* optimistic-concurrency conflict: re-read and try again */
        case 425:
        case 429:
        case 500:
        case 502:
        case 503:
        case 504:
                return FM_RESULT_RETRYABLE;
        default:
                return FM_RESULT_PERMANENT;
        }
}

enum fm_result_kind fm_result_kind_from_errno(int error)
{
        switch (error < 0 ? -error : error) {
        case ETIMEDOUT:
        case ECONNREFUSED:
        case ECONNRESET:
        case ECONNABORTED:
        case EAGAIN:
        case EBUSY:
        case ENOBUFS:
        case ENOMEM:
        case EHOSTUNREACH:
        case ENETUNREACH:
        case ENETDOWN:
        case EPIPE:
        case EINTR:
                return FM_RESULT_RETRYABLE;
        default:
                return FM_RESULT_PERMANENT;
        }
}

const char *fm_outcome_status_name(enum fm_outcome_status s)
{
        static const char *const names[_FM_OUTCOME_STATUS_MAX] = {
                [FM_OUTCOME_OK] = "ok",
                [FM_OUTCOME_FAILED] = "failed",
                [FM_OUTCOME_TIMEOUT] = "timeout",
                [FM_OUTCOME_REFUSED] = "refused",
                [FM_OUTCOME_UNSUPPORTED] = "unsupported",
                [FM_OUTCOME_BREAKER_OPEN] = "breaker_open",
        };

        return (unsigned)s < _FM_OUTCOME_STATUS_MAX ? names[s] : NULL;
}

/* ---- configuration ---------------------------------------------------- */

void fm_actuator_config_default(struct fm_actuator_config *cfg)
{
        *cfg = (struct fm_actuator_config){
                .queue_max = FM_ACTUATOR_QUEUE_MAX,
                .backoff_base = 500,
                .backoff_cap = 30 * FM_MS_PER_S,
                .max_attempts = 10,
                .breaker_failures = 5,
                .breaker_cooloff = 30 * FM_MS_PER_S,
                .breaker_cooloff_max = 300 * FM_MS_PER_S,
        };
}

int fm_actuator_config_validate(const struct fm_actuator_config *cfg)
{
        if (!cfg || cfg->queue_max < 1 || cfg->queue_max > FM_ACTUATOR_QUEUE_MAX)
                return -EINVAL;
        if (cfg->backoff_base <= 0 || cfg->backoff_cap < cfg->backoff_base ||
            cfg->backoff_cap > FM_ACTUATOR_RETRY_AFTER_MAX)
                return -EINVAL;
        if (cfg->max_attempts < 1 || cfg->max_attempts > FM_ACTUATOR_ATTEMPTS_MAX)
                return -EINVAL;
        if (cfg->breaker_failures < 1)
                return -EINVAL;
        if (cfg->breaker_cooloff <= 0 || cfg->breaker_cooloff_max < cfg->breaker_cooloff ||
            cfg->breaker_cooloff_max > FM_ACTUATOR_RETRY_AFTER_MAX)
                return -EINVAL;
        return 0;
}

fm_ms fm_actuator_backoff_ceiling(const struct fm_actuator_config *cfg, uint32_t n)
{
        fm_ms c = cfg->backoff_base;

        /* Doubles at most ~63 times before reaching any sane cap: no overflow. */
        for (uint32_t i = 1; i < n && c < cfg->backoff_cap; i++)
                c *= 2;
        return c < cfg->backoff_cap ? c : cfg->backoff_cap;
}

/* splitmix64: small, seedable, good enough for jitter. */
static uint64_t rng_next(uint64_t *s)
{
        uint64_t z = (*s += UINT64_C(0x9e3779b97f4a7c15));

        z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
        z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
        return z ^ (z >> 31);
}

/* ---- lifecycle -------------------------------------------------------- */

int fm_actuator_new(const struct fm_actuator_config *cfg, uint64_t seed, struct fm_actuator **ret)
{
        struct fm_actuator_config c;
        struct fm_actuator *a;

        if (!ret)
                return -EINVAL;
        if (cfg)
                c = *cfg;
        else
                fm_actuator_config_default(&c);
        if (fm_actuator_config_validate(&c) < 0)
                return -EINVAL;

        a = calloc(1, sizeof *a);
        if (!a)
                return -ENOMEM;
        a->cfg = c;
        a->rng = seed;
        a->slot = calloc(c.queue_max, sizeof *a->slot);
        a->done = calloc(c.queue_max, sizeof *a->done);
        if (!a->slot || !a->done) {
                free(a->slot);
                free(a->done);
                free(a);
                return -ENOMEM;
        }
        *ret = a;
        return 0;
}

struct fm_actuator *fm_actuator_free(struct fm_actuator *a)
{
        if (!a)
                return NULL;
        a->busy = true;
        for (uint32_t i = 0; a->slot && i < a->cfg.queue_max; i++) {
                struct slot *s = a->slot + i;

                if (s->state == SLOT_RUNNING)
                        a->backend[s->backend].ops->cancel(a->backend[s->backend].userdata,
                                                           s->attempt_id);
        }
        free(a->slot);
        free(a->done);
        free(a);
        return NULL;
}

int fm_actuator_add_backend(struct fm_actuator *a, const struct fm_backend_ops *ops, void *backend)
{
        struct backend *b;

        if (!a || !ops || !ops->start || !ops->cancel || !ops->name)
                return -EINVAL;
        if (a->busy)
                return -EBUSY;
        if (a->n_backends >= FM_ACTUATOR_BACKENDS_MAX)
                return -ENOBUFS;
        b = a->backend + a->n_backends;
        *b = (struct backend){
                .ops = ops,
                .userdata = backend,
                .state = FM_ACTUATOR_BREAKER_CLOSED,
                .cooloff = a->cfg.breaker_cooloff,
        };
        return a->n_backends++;
}

/* ---- breaker ---------------------------------------------------------- */

static void breaker_advance(struct backend *b, fm_ms now)
{
        if (b->state == FM_ACTUATOR_BREAKER_OPEN && now >= b->open_until) {
                b->state = FM_ACTUATOR_BREAKER_HALF_OPEN;
                b->probe_busy = false;
        }
}

static void breaker_open(const struct fm_actuator *a, struct backend *b, fm_ms now)
{
        b->state = FM_ACTUATOR_BREAKER_OPEN;
        b->open_until = now + b->cooloff;
        b->cooloff = b->cooloff * 2 < a->cfg.breaker_cooloff_max ? b->cooloff * 2
                                                                 : a->cfg.breaker_cooloff_max;
        b->opens++;
        b->probe_busy = false;
}

static void breaker_failure(const struct fm_actuator *a, struct backend *b, bool probe, fm_ms now)
{
        b->failures = fm_sat_add_u32(b->failures, 1);
        if (b->state == FM_ACTUATOR_BREAKER_HALF_OPEN && probe)
                breaker_open(a, b, now);
        else if (b->state == FM_ACTUATOR_BREAKER_CLOSED && b->failures >= a->cfg.breaker_failures)
                breaker_open(a, b, now);
}

static void breaker_success(const struct fm_actuator *a, struct backend *b)
{
        b->failures = 0;
        b->state = FM_ACTUATOR_BREAKER_CLOSED;
        b->cooloff = a->cfg.breaker_cooloff;
        b->probe_busy = false;
}

/* May an attempt start now? Claims the probe when half-open. */
static bool breaker_admit(struct backend *b, bool *ret_probe)
{
        switch (b->state) {
        case FM_ACTUATOR_BREAKER_CLOSED:
                *ret_probe = false;
                return true;
        case FM_ACTUATOR_BREAKER_HALF_OPEN:
                if (b->probe_busy)
                        return false;
                b->probe_busy = true;
                *ret_probe = true;
                return true;
        default:
                return false;
        }
}

/* ---- the state machine ------------------------------------------------ */

static void finish(struct fm_actuator *a, struct slot *s, enum fm_outcome_status status, fm_ms now)
{
        s->state = SLOT_DONE;
        s->status = (uint8_t)status;
        s->finished = now;
        a->done[(a->done_head + a->n_done) % a->cfg.queue_max] = (uint32_t)(s - a->slot);
        a->n_done++;
}

static void set_detail(struct slot *s, const char *detail)
{
        if (detail)
                snprintf(s->detail, sizeof s->detail, "%s", detail);
}

/* Full jitter: uniform in [0, ceiling of the n-th retry]. */
static fm_ms jitter(struct fm_actuator *a, uint32_t n)
{
        fm_ms c = fm_actuator_backoff_ceiling(&a->cfg, n);

        return (fm_ms)(rng_next(&a->rng) % (uint64_t)(c + 1));
}

/* An attempt of s ended with kind; decides between done and another try. */
static void settle(struct fm_actuator *a, struct slot *s, enum fm_result_kind kind, int error,
                   fm_ms retry_after, fm_ms now)
{
        struct backend *b = a->backend + s->backend;
        bool probe = s->probe;

        s->probe = false;
        if (probe)
                b->probe_busy = false;
        s->attempt_id = 0;
        if (kind != FM_RESULT_OK)
                s->last_error = error < 0 ? error : (error > 0 ? -error : -EIO);

        switch (kind) {
        case FM_RESULT_OK:
                breaker_success(a, b);
                finish(a, s, FM_OUTCOME_OK, now);
                return;
        case FM_RESULT_REFUSED:
                finish(a, s, FM_OUTCOME_REFUSED, now);
                return;
        case FM_RESULT_PERMANENT:
                breaker_failure(a, b, probe, now);
                finish(a, s, FM_OUTCOME_FAILED, now);
                return;
        case FM_RESULT_RETRYABLE:
        default: {
                fm_ms delay;

                breaker_failure(a, b, probe, now);
                if (s->attempts >= a->cfg.max_attempts) {
                        finish(a, s, FM_OUTCOME_FAILED, now);
                        return;
                }
                delay = jitter(a, s->attempts);
                if (retry_after > FM_ACTUATOR_RETRY_AFTER_MAX)
                        retry_after = FM_ACTUATOR_RETRY_AFTER_MAX;
                if (retry_after > delay)
                        delay = retry_after;
                s->state = SLOT_WAITING;
                s->next_at = now + delay;
                return;
        }
        }
}

/* Starts an attempt of s; the breaker has admitted it (probe: as the half-open probe). */
static void launch(struct fm_actuator *a, struct slot *s, bool probe, fm_ms now)
{
        struct backend *b = a->backend + s->backend;
        int r;

        s->attempt_id = ++a->next_attempt;
        s->attempts++;
        s->probe = probe;
        s->state = SLOT_RUNNING;

        a->busy = true;
        r = b->ops->start(b->userdata, &s->req, s->attempt_id);
        a->busy = false;
        if (r >= 0)
                return;

        if (r == -EOPNOTSUPP) {
                if (s->probe)
                        b->probe_busy = false;
                s->probe = false;
                s->attempt_id = 0;
                s->last_error = r;
                finish(a, s, FM_OUTCOME_UNSUPPORTED, now);
                return;
        }
        set_detail(s, "start failed");
        settle(a, s, fm_result_kind_from_errno(r), r, 0, now);
}

static bool req_valid(const struct fm_action_req *req)
{
        if ((unsigned)req->action >= _FM_ACTION_MAX)
                return false;
        if (!terminated(req->deployment, sizeof req->deployment) ||
            !terminated(req->instance, sizeof req->instance) ||
            !terminated(req->key, sizeof req->key) || req->key[0] == '\0' ||
            req->deployment[0] == '\0')
                return false;
        if (req->action == FM_ACTION_SET_WEIGHTS && req->arg.weights.n > FM_ACTUATOR_WEIGHTS_MAX)
                return false;
        return true;
}

int64_t fm_actuator_submit(struct fm_actuator *a, int backend, const struct fm_action_req *req,
                           fm_ms now)
{
        struct slot *free_slot = NULL;
        struct backend *b;
        bool probe;

        if (!a || !req)
                return -EINVAL;
        if (a->busy)
                return -EBUSY;
        if (backend < 0 || backend >= a->n_backends || !req_valid(req))
                return -EINVAL;
        if (req->deadline <= now)
                return -ETIMEDOUT;
        b = a->backend + backend;
        if (!b->ops->supports[req->action])
                return -EOPNOTSUPP;
        breaker_advance(b, now);
        if (b->state == FM_ACTUATOR_BREAKER_OPEN)
                return -EHOSTDOWN;

        for (uint32_t i = 0; i < a->cfg.queue_max; i++) {
                struct slot *s = a->slot + i;

                if (s->state == SLOT_FREE) {
                        if (!free_slot)
                                free_slot = s;
                } else if (s->state != SLOT_DONE && strcmp(s->req.key, req->key) == 0)
                        return -EALREADY;
        }
        if (!free_slot)
                return -ENOBUFS;

        *free_slot = (struct slot){
                .state = SLOT_WAITING,
                .backend = backend,
                .id = ++a->next_id,
                .submitted = now,
                .next_at = now,
                .req = *req,
        };
        if (breaker_admit(b, &probe))
                launch(a, free_slot, probe, now);
        return (int64_t)free_slot->id;
}

static struct slot *find_attempt(struct fm_actuator *a, uint64_t attempt_id)
{
        if (attempt_id == 0)
                return NULL;
        for (uint32_t i = 0; i < a->cfg.queue_max; i++)
                if (a->slot[i].state == SLOT_RUNNING && a->slot[i].attempt_id == attempt_id)
                        return a->slot + i;
        return NULL;
}

int fm_actuator_complete(struct fm_actuator *a, uint64_t attempt_id,
                         const struct fm_action_result *result, fm_ms now)
{
        struct slot *s;

        if (!a || !result || (unsigned)result->kind >= _FM_RESULT_KIND_MAX)
                return -EINVAL;
        if (a->busy)
                return -EBUSY;
        s = find_attempt(a, attempt_id);
        if (!s)
                return -ENOENT;
        set_detail(s, result->detail);
        settle(a, s, result->kind, result->error, result->retry_after, now);
        return 0;
}

/* The deadline of s has passed: cancel what runs, report what held it. */
static void expire(struct fm_actuator *a, struct slot *s, fm_ms now)
{
        struct backend *b = a->backend + s->backend;

        if (s->state == SLOT_RUNNING) {
                bool probe = s->probe;

                a->busy = true;
                b->ops->cancel(b->userdata, s->attempt_id);
                a->busy = false;
                s->probe = false;
                if (probe)
                        b->probe_busy = false;
                s->attempt_id = 0;
                s->last_error = -ETIMEDOUT;
                breaker_failure(a, b, probe, now);
                finish(a, s, FM_OUTCOME_TIMEOUT, now);
                return;
        }
        /* Waiting: it was held by the breaker if the breaker would not admit it now. */
        if (b->state == FM_ACTUATOR_BREAKER_OPEN ||
            (b->state == FM_ACTUATOR_BREAKER_HALF_OPEN && b->probe_busy))
                finish(a, s, FM_OUTCOME_BREAKER_OPEN, now);
        else
                finish(a, s, FM_OUTCOME_TIMEOUT, now);
}

int fm_actuator_tick(struct fm_actuator *a, fm_ms now)
{
        int started = 0;

        if (!a)
                return -EINVAL;
        if (a->busy)
                return -EBUSY;

        for (int i = 0; i < a->n_backends; i++)
                breaker_advance(a->backend + i, now);

        for (uint32_t i = 0; i < a->cfg.queue_max; i++) {
                struct slot *s = a->slot + i;

                if ((s->state == SLOT_RUNNING || s->state == SLOT_WAITING) &&
                    now >= s->req.deadline)
                        expire(a, s, now);
        }

        for (uint32_t i = 0; i < a->cfg.queue_max; i++) {
                struct slot *s = a->slot + i;
                bool probe;

                if (s->state != SLOT_WAITING || s->next_at > now)
                        continue;
                /* A start failure can re-open the breaker: ask it for every attempt. */
                if (!breaker_admit(a->backend + s->backend, &probe))
                        continue;
                launch(a, s, probe, now);
                started++;
        }
        return started;
}

int fm_actuator_next_wake(const struct fm_actuator *a, fm_ms *ret_at)
{
        bool any = false;
        fm_ms at = 0;

        if (!a || !ret_at)
                return -EINVAL;
        for (uint32_t i = 0; i < a->cfg.queue_max; i++) {
                const struct slot *s = a->slot + i;
                const struct backend *b = a->backend + s->backend;
                fm_ms t = s->req.deadline;

                if (s->state != SLOT_RUNNING && s->state != SLOT_WAITING)
                        continue;
                if (s->state == SLOT_WAITING) {
                        fm_ms due = s->next_at;

                        if (b->state == FM_ACTUATOR_BREAKER_OPEN && b->open_until > due)
                                due = b->open_until;
                        /* A half-open breaker with its probe out wakes us by completion. */
                        if (!(b->state == FM_ACTUATOR_BREAKER_HALF_OPEN && b->probe_busy) &&
                            due < t)
                                t = due;
                }
                if (!any || t < at)
                        at = t;
                any = true;
        }
        if (!any)
                return -ENOENT;
        *ret_at = at;
        return 0;
}

int fm_actuator_poll(struct fm_actuator *a, struct fm_action_outcome *ret)
{
        struct slot *s;

        if (!a || !ret)
                return -EINVAL;
        if (a->n_done == 0)
                return 0;
        s = a->slot + a->done[a->done_head];
        a->done_head = (a->done_head + 1) % a->cfg.queue_max;
        a->n_done--;

        *ret = (struct fm_action_outcome){
                .id = s->id,
                .action = s->req.action,
                .backend = s->backend,
                .status = (enum fm_outcome_status)s->status,
                .attempts = s->attempts,
                .last_error = s->last_error,
                .submitted = s->submitted,
                .finished = s->finished,
        };
        memcpy(ret->key, s->req.key, sizeof ret->key);
        memcpy(ret->detail, s->detail, sizeof ret->detail);
        s->state = SLOT_FREE;
        return 1;
}

int fm_actuator_backend_info(const struct fm_actuator *a, int backend,
                             struct fm_actuator_backend_info *ret)
{
        const struct backend *b;

        if (!a || !ret || backend < 0 || backend >= a->n_backends)
                return -EINVAL;
        b = a->backend + backend;
        *ret = (struct fm_actuator_backend_info){
                .name = b->ops->name,
                .state = b->state,
                .consecutive_failures = b->failures,
                .opens = b->opens,
                .open_until = b->open_until,
        };
        return 0;
}

int fm_actuator_request_info(const struct fm_actuator *a, uint64_t id,
                             struct fm_actuator_request_info *ret)
{
        if (!a || !ret)
                return -EINVAL;
        for (uint32_t i = 0; i < a->cfg.queue_max; i++) {
                const struct slot *s = a->slot + i;

                if (s->state == SLOT_FREE || s->id != id)
                        continue;
                *ret = (struct fm_actuator_request_info){
                        .running = s->state == SLOT_RUNNING,
                        .done = s->state == SLOT_DONE,
                        .attempts = s->attempts,
                        .next_at = s->next_at,
                        .attempt_id = s->attempt_id,
                };
                return 0;
        }
        return -ENOENT;
}

/* ---- routing ---------------------------------------------------------- */

int fm_actuator_route(const struct fm_actuator_binding *b, size_t n, const char *deployment,
                      enum fm_action action)
{
        int fallback = -ENOENT;

        if ((unsigned)action >= _FM_ACTION_MAX || (!b && n > 0) || !deployment)
                return -EINVAL;
        for (size_t i = 0; i < n; i++) {
                if (b[i].action != action || b[i].backend < 0)
                        continue;
                if (strcmp(b[i].deployment, deployment) == 0)
                        return b[i].backend;
                if (fallback < 0 && strcmp(b[i].deployment, "*") == 0)
                        fallback = b[i].backend;
        }
        return fallback;
}
