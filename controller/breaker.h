/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Circuit breaker, one per instance.
 *
 *   CLOSED --(failure or slow-call rate >= threshold with >= min requests
 *             in the window; health down; heartbeat lost)--> OPEN
 *   OPEN --(open duration elapsed)--> HALF_OPEN
 *   HALF_OPEN --(probe limit reached, rates under thresholds)--> CLOSED
 *   HALF_OPEN --(probe rates at or over a threshold; health down;
 *               heartbeat lost)--> OPEN, open duration doubled (capped)
 *   any --(operator)--> FORCED_OPEN or DISABLED --(operator release)--> CLOSED
 *
 * The breaker is passive: the fleet sees aggregated request counts, not
 * single calls. In HALF_OPEN the traffic policy gives the instance a small
 * share of traffic and fm_breaker_record() admits the results of at most
 * `probes` requests; the next evaluation decides on them. The counters of
 * the closed-state window are the caller's (struct fm_window); it clears
 * them when the breaker closes, so old failures cannot re-open it at once.
 *
 * fm_breaker_evaluate() runs on every reconcile tick and makes at most one
 * transition; each comes with its evidence. Pure: no clock, no I/O.
 */

#include <stdbool.h>
#include <stdint.h>

#include "event.h"
#include "evidence.h"
#include "util.h"

enum fm_breaker_state {
        FM_BREAKER_CLOSED,
        FM_BREAKER_OPEN,
        FM_BREAKER_HALF_OPEN,
        FM_BREAKER_FORCED_OPEN,
        FM_BREAKER_DISABLED,
        _FM_BREAKER_STATE_MAX,
};

enum fm_breaker_cause {
        FM_CAUSE_FAILURE_RATE,   /* "failure_rate" */
        FM_CAUSE_SLOW_RATE,      /* "slow_call_rate" */
        FM_CAUSE_HEALTH_DOWN,    /* "health_down" */
        FM_CAUSE_HEARTBEAT_LOST, /* "heartbeat_lost" */
        FM_CAUSE_OPEN_ELAPSED,   /* "open_elapsed" */
        FM_CAUSE_PROBES_PASSED,  /* "probes_passed" */
        FM_CAUSE_PROBES_FAILED,  /* "probes_failed" */
        FM_CAUSE_OPERATOR,       /* "operator" */
        _FM_BREAKER_CAUSE_MAX,
};

/* Stable lower-case names ("closed", "open", "half_open", "forced_open", "disabled"). */
const char *fm_breaker_state_name(enum fm_breaker_state s) _pure_;
const char *fm_breaker_cause_name(enum fm_breaker_cause c) _pure_;

struct fm_breaker_config {
        double failure_rate;     /* open at errors/requests >= this; default 0.5 */
        double slow_rate;        /* open at slow/requests >= this; default 0.5 */
        double slow_call_ms;     /* a request slower than this is a slow call; default 1000 */
        uint32_t min_requests;   /* no rate decision below this many requests; default 20 */
        fm_ms window;            /* length of the counter window; default 30 s */
        uint32_t window_slots;   /* buckets in the window; default 6 (5 s each) */
        fm_ms open_base;         /* first open duration; default 30 s */
        fm_ms open_max;          /* cap of the doubling; default 600 s */
        uint32_t probes;         /* probe results admitted in HALF_OPEN; default 10 */
        fm_ms heartbeat_timeout; /* silence that counts as a lost heartbeat; default 30 s */
};

void fm_breaker_config_default(struct fm_breaker_config *cfg);

/* Upper limit of open_max and heartbeat_timeout: one week. */
#define FM_BREAKER_OPEN_MAX_LIMIT ((fm_ms)7 * 24 * 3600 * FM_MS_PER_S)

/* Returns 0, or -EINVAL: rates outside (0, 1], non-positive durations, open_max < open_base,
 * open_max or heartbeat_timeout over a week, window not a multiple of window_slots,
 * probes or min_requests 0. */
int fm_breaker_config_validate(const struct fm_breaker_config *cfg);

struct fm_breaker {
        uint8_t state;    /* enum fm_breaker_state */
        uint8_t reopens;  /* consecutive re-opens since the last close; saturates */
        fm_ms since;      /* when the current state was entered */
        fm_ms open_until; /* OPEN: when it may half-open */
        fm_ms open_for;   /* OPEN: the duration chosen at the last opening */
        uint32_t probe_requests, probe_errors, probe_slow;
        uint32_t opens; /* openings since creation (names restart episodes) */
};

/* What the caller observed of the instance, handed to each evaluation. */
struct fm_breaker_input {
        uint64_t requests, errors, slow; /* over the closed-state window */
        enum fm_health_status health;    /* latest reported */
        fm_ms last_seen;                 /* newest event time */
};

struct fm_breaker_transition {
        enum fm_breaker_state from, to;
        enum fm_breaker_cause cause;
        fm_ms at;
        struct fm_evidence evidence;
};

/* A new breaker, CLOSED since now. */
void fm_breaker_init(struct fm_breaker *b, fm_ms now);

/*
 * Admits probe results while HALF_OPEN: at most cfg->probes requests in all;
 * when only part of a batch fits, its errors and slow calls are admitted in
 * proportion, rounded up (a probe batch is never made to look better than
 * it was). Does nothing in other states.
 */
void fm_breaker_record(struct fm_breaker *b, const struct fm_breaker_config *cfg, uint64_t requests,
                       uint64_t errors, uint64_t slow);

/*
 * Advances the state machine at now. Returns 1 and fills *ret when the
 * state changed, 0 when it did not (*ret untouched).
 */
int fm_breaker_evaluate(struct fm_breaker *b, const struct fm_breaker_config *cfg,
                        const struct fm_breaker_input *in, fm_ms now,
                        struct fm_breaker_transition *ret);

enum fm_breaker_op {
        FM_BREAKER_FORCE_OPEN,
        FM_BREAKER_DISABLE,
        FM_BREAKER_RELEASE, /* FORCED_OPEN or DISABLED back to CLOSED */
};

/*
 * Operator override. Returns 1 and fills *ret on a transition, 0 when the
 * breaker is already there (or RELEASE of a breaker not under override),
 * -EINVAL for an unknown op.
 */
int fm_breaker_force(struct fm_breaker *b, enum fm_breaker_op op, fm_ms now,
                     struct fm_breaker_transition *ret);

/* True when the instance should get no regular traffic (OPEN, FORCED_OPEN). */
static inline bool fm_breaker_ejected(const struct fm_breaker *b)
{
        return b->state == FM_BREAKER_OPEN || b->state == FM_BREAKER_FORCED_OPEN;
}
