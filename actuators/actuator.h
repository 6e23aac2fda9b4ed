/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The actuator: one interface in front of every backend (dry-run, systemd,
 * kubernetes, haproxy, mlflow, alertmanager).
 *
 * A caller submits a request (a copy of what to do, an idempotency key, a
 * fencing token and an absolute deadline) to one backend and later drains
 * its observed outcome. In between, the actuator is a state machine with no
 * clock and no I/O of its own:
 *
 *   submit --> RUNNING --(complete: ok / permanent / refused)--> DONE
 *                 |  ^
 *    (retryable)  v  | (tick at next_at, breaker admits)
 *               WAITING
 *   RUNNING or WAITING --(tick at or past the deadline)--> DONE (timeout)
 *   DONE --(poll)--> slot freed
 *
 * Time comes in as `now`; attempts leave through the backend's start() and
 * come back through fm_actuator_complete(), so the same code runs under an
 * sd-event loop (arm a timer at fm_actuator_next_wake(), feed completions
 * from I/O callbacks) and in tests with a fake backend.
 *
 * Retries: only retryable failures are retried, after a delay drawn with
 * full jitter, uniform in [0, min(cap, base * 2^(n-1))] for the n-th retry
 * (base 0.5 s, cap 30 s by default), from a PRNG seeded at creation. A
 * server's retry-after hint is a floor on that delay. Retries stop at
 * max_attempts or at the deadline, whichever comes first.
 *
 * Breaker, one per backend: `breaker_failures` consecutive failed attempts
 * (retryable, permanent, start failures, attempts cancelled at their
 * deadline) open it for a cool-off (30 s, doubling on each re-open up to
 * 5 min). While it is OPEN, submit fails fast with -EHOSTDOWN and queued
 * retries are held: they are not attempted, and a request whose deadline
 * passes while held ends as "breaker_open". After the cool-off it is
 * HALF_OPEN: exactly one attempt (new or retry) goes through as a probe,
 * the others wait; the probe's success closes the breaker, its failure
 * re-opens it. A fencing refusal says nothing about the backend's health
 * and neither counts nor clears failures.
 *
 * Re-entrancy: a backend's start() and cancel() must not call back into the
 * actuator; mutating calls made from inside them fail with -EBUSY. A
 * backend that knows the result at once (dry-run) records it and completes
 * it later, from the event loop (see fm_dryrun_flush()).
 *
 * Never logs, never reads a clock, never sleeps.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "intent.h"
#include "util.h"

/* Limits. */
#define FM_ACTUATOR_QUEUE_MAX 1024   /* requests held at once (in flight or undrained) */
#define FM_ACTUATOR_BACKENDS_MAX 16  /* backends per actuator */
#define FM_ACTUATOR_WEIGHTS_MAX 100  /* weights of one request: FM_TRAFFIC_TARGETS_MAX */
#define FM_ACTUATOR_DETAIL_MAX 256   /* observed detail of an outcome, with its NUL */
#define FM_ACTUATOR_ATTEMPTS_MAX 100 /* upper limit of config.max_attempts */
#define FM_ACTUATOR_RETRY_AFTER_MAX ((fm_ms)3600 * FM_MS_PER_S) /* server hints are capped here */

/* What to do: a self-contained copy, nothing points into the plan. */
struct fm_action_req {
        enum fm_action action;
        char deployment[FM_NAME_MAX + 1];
        char instance[FM_NAME_MAX + 1]; /* "" when the target is the deployment */
        char key[FM_INTENT_KEY_MAX];    /* idempotency key, not empty */
        uint64_t fence;                 /* the lease's transition count */
        fm_ms deadline;                 /* absolute; the request ends as timeout here */
        /*
         * Observe only (settling a journal entry after a restart): change
         * nothing; complete FM_RESULT_OK when the state this action asks for
         * already holds (detail: what was seen), FM_RESULT_PERMANENT with
         * error -ESRCH when it does not, or a transport failure as usual.
         */
        bool observe;
        union {
                struct {
                        uint32_t from, to;
                } scale;
                struct {
                        uint32_t n;
                        struct fm_weight w[FM_ACTUATOR_WEIGHTS_MAX];
                } weights;
                struct {
                        char from[FM_VERSION_MAX + 1], to[FM_VERSION_MAX + 1];
                } rollback;
                struct {
                        char version[FM_VERSION_MAX + 1];
                        double from, to;
                } threshold;
                struct {
                        enum fm_severity severity;
                        char summary[FM_ALERT_SUMMARY_MAX];
                } alert;
        } arg;
};

/*
 * Fills *ret from an intent of plan p (set_weights reads p's weight pool).
 * Returns 0, -EINVAL (bad action, weights outside the pool), -E2BIG (more
 * than FM_ACTUATOR_WEIGHTS_MAX weights); *ret untouched on failure.
 */
int fm_action_req_from_intent(const struct fm_plan *p, const struct fm_intent *it, uint64_t fence,
                              fm_ms deadline, struct fm_action_req *ret);

/*
 * Writes "<action> <target>[ <args>]" into buf, e.g. "scale web 2->4",
 * "set_weights web v1=90,v2=10", "restart web/web-0". Returns the length
 * (snprintf's: may exceed size - 1, then buf is truncated), or -EINVAL.
 */
int fm_action_req_describe(const struct fm_action_req *req, char *buf, size_t size);

/* How one attempt ended, as the backend observed it. */
enum fm_result_kind {
        FM_RESULT_OK,
        FM_RESULT_RETRYABLE, /* 408, 409 conflict, 425, 429, 5xx gateway/unavailable, timeouts,
                                ECONNREFUSED */
        FM_RESULT_PERMANENT, /* anything else: retrying cannot help */
        FM_RESULT_REFUSED,   /* fencing: our token is stale, we are not the leader any more */
        _FM_RESULT_KIND_MAX,
};

struct fm_action_result {
        enum fm_result_kind kind;
        int error;          /* negative errno of the failure; 0 for ok */
        fm_ms retry_after;  /* > 0: the server asked to wait at least this long */
        const char *detail; /* observed detail, may be NULL; copied (truncated) */
};

/* Kind of an HTTP status: 2xx ok; 408, 409, 425, 429, 500, 502, 503, 504 retryable; else permanent.
 */
enum fm_result_kind fm_result_kind_from_http(int status) _pure_;

/* Kind of a negative errno from a transport: timeouts, refused/reset connections, EAGAIN,
 * ENOBUFS, ENOMEM, unreachable hosts are retryable; the rest permanent. */
enum fm_result_kind fm_result_kind_from_errno(int error) _pure_;

/*
 * A backend. ops is static; the backend pointer given to
 * fm_actuator_add_backend() is borrowed and must outlive the actuator.
 */
struct fm_backend_ops {
        const char *name;
        bool supports[_FM_ACTION_MAX];
        /*
         * Begins one attempt asynchronously; req is valid only during the
         * call (copy what is needed). Returns 0 when started (the result
         * comes later through fm_actuator_complete() with this attempt_id),
         * -EOPNOTSUPP when it cannot do this request (final: "unsupported"),
         * another negative errno when it cannot start (classified by
         * fm_result_kind_from_errno(), counted like a failed attempt).
         */
        int (*start)(void *backend, const struct fm_action_req *req, uint64_t attempt_id);
        /* Abandons a started attempt; its result, if it still comes, is ignored. */
        void (*cancel)(void *backend, uint64_t attempt_id);
};

struct fm_actuator_config {
        uint32_t queue_max;    /* 1..FM_ACTUATOR_QUEUE_MAX; default FM_ACTUATOR_QUEUE_MAX */
        fm_ms backoff_base;    /* first retry ceiling; default 500 ms */
        fm_ms backoff_cap;     /* ceiling of the doubling; default 30 s */
        uint32_t max_attempts; /* attempts per request, 1..FM_ACTUATOR_ATTEMPTS_MAX; default 10 */
        uint32_t breaker_failures; /* consecutive failures that open a breaker; default 5 */
        fm_ms breaker_cooloff;     /* first open duration; default 30 s */
        fm_ms breaker_cooloff_max; /* cap of the doubling; default 5 min */
};

void fm_actuator_config_default(struct fm_actuator_config *cfg);

/* Returns 0, or -EINVAL: values outside the ranges above, non-positive durations,
 * cap < base, cooloff_max < cooloff, either over FM_ACTUATOR_RETRY_AFTER_MAX. */
int fm_actuator_config_validate(const struct fm_actuator_config *cfg);

/* The ceiling of the n-th retry's delay (n >= 1): min(cap, base * 2^(n-1)). */
fm_ms fm_actuator_backoff_ceiling(const struct fm_actuator_config *cfg, uint32_t n) _pure_;

struct fm_actuator;

/*
 * A new actuator; cfg NULL means the defaults (copied). seed drives the
 * jitter; the same seed and inputs give the same delays. Returns 0,
 * -EINVAL (cfg invalid), -ENOMEM; *ret untouched on failure.
 */
int fm_actuator_new(const struct fm_actuator_config *cfg, uint64_t seed, struct fm_actuator **ret);

/* Cancels every running attempt through its backend, frees. Accepts NULL; returns NULL. */
struct fm_actuator *fm_actuator_free(struct fm_actuator *a);

/* Registers a backend; returns its index (>= 0), -EINVAL (ops incomplete), -ENOBUFS (full). */
int fm_actuator_add_backend(struct fm_actuator *a, const struct fm_backend_ops *ops, void *backend);

/*
 * Submits req (copied) to backend index `backend` and starts its first
 * attempt now when the breaker admits it. Returns the request id (>= 1), or
 *   -EINVAL      bad index, action, empty or unterminated strings, too many weights
 *   -ETIMEDOUT   the deadline is not after now
 *   -EOPNOTSUPP  the backend does not support the action
 *   -EHOSTDOWN   the backend's breaker is open (fail fast)
 *   -EALREADY    a request with the same key is in flight (running or waiting)
 *   -ENOBUFS     queue_max requests are held (undrained outcomes count)
 *   -EBUSY       called from inside a backend's start() or cancel()
 * A start failure is not an error of submit: it shows in the outcome.
 */
int64_t fm_actuator_submit(struct fm_actuator *a, int backend, const struct fm_action_req *req,
                           fm_ms now);

/*
 * Delivers the result of attempt attempt_id. Returns 0, -ENOENT (unknown,
 * cancelled or already completed attempt: a late result, ignored),
 * -EINVAL (bad kind), -EBUSY (re-entrant).
 */
int fm_actuator_complete(struct fm_actuator *a, uint64_t attempt_id,
                         const struct fm_action_result *result, fm_ms now);

/*
 * Advances time: half-opens breakers whose cool-off is over, ends requests
 * at their deadline (cancelling a running attempt), starts due retries the
 * breakers admit. Returns the number of attempts started, or -EBUSY.
 */
int fm_actuator_tick(struct fm_actuator *a, fm_ms now);

/* When tick next has work: 0 and *ret_at, or -ENOENT when nothing is pending. */
int fm_actuator_next_wake(const struct fm_actuator *a, fm_ms *ret_at);

enum fm_outcome_status {
        FM_OUTCOME_OK,           /* "ok" */
        FM_OUTCOME_FAILED,       /* "failed": permanent error, or retries exhausted */
        FM_OUTCOME_TIMEOUT,      /* "timeout": the deadline passed */
        FM_OUTCOME_REFUSED,      /* "refused": fencing token rejected */
        FM_OUTCOME_UNSUPPORTED,  /* "unsupported": the backend's start said -EOPNOTSUPP */
        FM_OUTCOME_BREAKER_OPEN, /* "breaker_open": the deadline passed while the breaker held it */
        _FM_OUTCOME_STATUS_MAX,
};

const char *fm_outcome_status_name(enum fm_outcome_status s) _pure_;

struct fm_action_outcome {
        uint64_t id;
        char key[FM_INTENT_KEY_MAX];
        enum fm_action action;
        int backend;
        enum fm_outcome_status status;
        uint32_t attempts;
        int last_error; /* negative errno of the last failed attempt, 0 if none */
        fm_ms submitted, finished;
        char detail[FM_ACTUATOR_DETAIL_MAX]; /* the last observed detail */
};

/* Takes the oldest finished outcome: 1 and *ret, or 0 when none (*ret untouched). Frees its slot.
 */
int fm_actuator_poll(struct fm_actuator *a, struct fm_action_outcome *ret);

enum fm_actuator_breaker_state {
        FM_ACTUATOR_BREAKER_CLOSED,
        FM_ACTUATOR_BREAKER_OPEN,
        FM_ACTUATOR_BREAKER_HALF_OPEN,
};

struct fm_actuator_backend_info {
        const char *name;
        enum fm_actuator_breaker_state state; /* as last evaluated (submit, tick) */
        uint32_t consecutive_failures;
        uint32_t opens;
        fm_ms open_until;
};

/* 0 and *ret, or -EINVAL for a bad index. */
int fm_actuator_backend_info(const struct fm_actuator *a, int backend,
                             struct fm_actuator_backend_info *ret);

struct fm_actuator_request_info {
        bool running; /* else waiting for next_at or the breaker, or done */
        bool done;
        uint32_t attempts;
        fm_ms next_at; /* waiting: when the next attempt is due */
        uint64_t attempt_id;
};

/* 0 and *ret for a held request, -ENOENT otherwise. */
int fm_actuator_request_info(const struct fm_actuator *a, uint64_t id,
                             struct fm_actuator_request_info *ret);

/*
 * Binding: which backend carries which action for a deployment. A binding
 * whose deployment is "*" is the default for every deployment without its
 * own binding for that action.
 */
struct fm_actuator_binding {
        char deployment[FM_NAME_MAX + 1]; /* a name or "*" */
        enum fm_action action;
        int backend;
};

/* The backend index for (deployment, action): an exact binding wins over "*"; the first of
 * equals wins. -ENOENT when none matches, -EINVAL on a bad action. */
int fm_actuator_route(const struct fm_actuator_binding *b, size_t n, const char *deployment,
                      enum fm_action action);

/*
 * The dry-run backend (dryrun.c): supports every action, touches nothing,
 * and completes each attempt as ok with the detail
 * "dry-run: would <action> <target>[ <args>]". Its start() only records the
 * attempt (no re-entry); fm_dryrun_flush() delivers the results.
 */
extern const struct fm_backend_ops fm_backend_dryrun_ops;

struct fm_dryrun;

/* Returns 0 or -ENOMEM; *ret untouched on failure. */
int fm_dryrun_new(struct fm_dryrun **ret);

/* Accepts NULL; returns NULL. */
struct fm_dryrun *fm_dryrun_free(struct fm_dryrun *d);

/* Completes every recorded attempt at now, oldest first. Returns how many were
 * delivered to a (late ones the actuator ignores are dropped), or -EBUSY. */
int fm_dryrun_flush(struct fm_dryrun *d, struct fm_actuator *a, fm_ms now);

/* Attempts started so far (what it "would" have done). */
uint64_t fm_dryrun_started(const struct fm_dryrun *d) _pure_;
