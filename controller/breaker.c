/* SPDX-License-Identifier: MIT */
#include "breaker.h"

#include <errno.h>
#include <math.h>

static const char *const state_names[_FM_BREAKER_STATE_MAX] = {
        [FM_BREAKER_CLOSED] = "closed",       [FM_BREAKER_OPEN] = "open",
        [FM_BREAKER_HALF_OPEN] = "half_open", [FM_BREAKER_FORCED_OPEN] = "forced_open",
        [FM_BREAKER_DISABLED] = "disabled",
};

static const char *const cause_names[_FM_BREAKER_CAUSE_MAX] = {
        [FM_CAUSE_FAILURE_RATE] = "failure_rate",   [FM_CAUSE_SLOW_RATE] = "slow_call_rate",
        [FM_CAUSE_HEALTH_DOWN] = "health_down",     [FM_CAUSE_HEARTBEAT_LOST] = "heartbeat_lost",
        [FM_CAUSE_OPEN_ELAPSED] = "open_elapsed",   [FM_CAUSE_PROBES_PASSED] = "probes_passed",
        [FM_CAUSE_PROBES_FAILED] = "probes_failed", [FM_CAUSE_OPERATOR] = "operator",
};

const char *fm_breaker_state_name(enum fm_breaker_state s)
{
        return (unsigned)s < _FM_BREAKER_STATE_MAX ? state_names[s] : NULL;
}

const char *fm_breaker_cause_name(enum fm_breaker_cause c)
{
        return (unsigned)c < _FM_BREAKER_CAUSE_MAX ? cause_names[c] : NULL;
}

void fm_breaker_config_default(struct fm_breaker_config *cfg)
{
        *cfg = (struct fm_breaker_config){
                .failure_rate = 0.5,
                .slow_rate = 0.5,
                .slow_call_ms = 1000.0,
                .min_requests = 20,
                .window = 30 * FM_MS_PER_S,
                .window_slots = 6,
                .open_base = 30 * FM_MS_PER_S,
                .open_max = 600 * FM_MS_PER_S,
                .probes = 10,
                .heartbeat_timeout = 30 * FM_MS_PER_S,
        };
}

static bool rate_ok(double r)
{
        return isfinite(r) && r > 0.0 && r <= 1.0;
}

int fm_breaker_config_validate(const struct fm_breaker_config *cfg)
{
        if (!rate_ok(cfg->failure_rate) || !rate_ok(cfg->slow_rate))
                return -EINVAL;
        if (!isfinite(cfg->slow_call_ms) || cfg->slow_call_ms <= 0.0)
                return -EINVAL;
        if (cfg->min_requests == 0 || cfg->probes == 0)
                return -EINVAL;
        if (cfg->window <= 0 || cfg->window_slots == 0 || cfg->window % cfg->window_slots != 0)
                return -EINVAL;
        if (cfg->open_base <= 0 || cfg->open_max < cfg->open_base || cfg->heartbeat_timeout <= 0)
                return -EINVAL;
        if (cfg->open_max > FM_BREAKER_OPEN_MAX_LIMIT ||
            cfg->heartbeat_timeout > FM_BREAKER_OPEN_MAX_LIMIT)
                return -EINVAL;
        return 0;
}

void fm_breaker_init(struct fm_breaker *b, fm_ms now)
{
        *b = (struct fm_breaker){.state = FM_BREAKER_CLOSED, .since = now};
}

/* ceil(x * num / den), exact for any 64-bit inputs (num <= den keeps it in range). */
static uint64_t scale_up(uint64_t x, uint64_t num, uint64_t den)
{
        if (den == 0)
                return 0;
        unsigned __int128 p = (unsigned __int128)x * num;
        return (uint64_t)((p + den - 1) / den);
}

void fm_breaker_record(struct fm_breaker *b, const struct fm_breaker_config *cfg, uint64_t requests,
                       uint64_t errors, uint64_t slow)
{
        if (b->state != FM_BREAKER_HALF_OPEN || requests == 0)
                return;
        if (b->probe_requests >= cfg->probes)
                return;

        uint64_t room = cfg->probes - b->probe_requests;
        uint64_t take = requests < room ? requests : room;
        uint64_t e = take == requests ? errors : scale_up(errors, take, requests);
        uint64_t s = take == requests ? slow : scale_up(slow, take, requests);

        b->probe_requests += (uint32_t)take;
        b->probe_errors += (uint32_t)(e < take ? e : take);
        b->probe_slow += (uint32_t)(s < take ? s : take);
}

static double ratio(uint64_t part, uint64_t whole)
{
        return whole ? (double)part / (double)whole : 0.0;
}

static fm_ms open_duration(const struct fm_breaker_config *cfg, unsigned reopens)
{
        fm_ms d = cfg->open_base;
        for (unsigned i = 0; i < reopens && d < cfg->open_max; i++)
                d = d > cfg->open_max / 2 ? cfg->open_max : d * 2;
        return d < cfg->open_max ? d : cfg->open_max;
}

static void enter(struct fm_breaker *b, enum fm_breaker_state to, enum fm_breaker_cause cause,
                  fm_ms now, struct fm_breaker_transition *t)
{
        t->from = b->state;
        t->to = to;
        t->cause = cause;
        t->at = now;
        b->state = (uint8_t)to;
        b->since = now;
        b->probe_requests = b->probe_errors = b->probe_slow = 0;
}

/* Opens (or re-opens from HALF_OPEN, doubling the duration) and records how long. */
static void open_breaker(struct fm_breaker *b, const struct fm_breaker_config *cfg,
                         enum fm_breaker_cause cause, fm_ms now, struct fm_breaker_transition *t)
{
        bool reopen = b->state == FM_BREAKER_HALF_OPEN;

        if (reopen && b->reopens < UINT8_MAX)
                b->reopens++;
        else if (!reopen)
                b->reopens = 0;
        enter(b, FM_BREAKER_OPEN, cause, now, t);
        b->open_for = open_duration(cfg, b->reopens);
        b->open_until = now + b->open_for;
        b->opens++;
        fm_evidence_add(&t->evidence, "open_s", (double)b->open_for / FM_MS_PER_S);
        fm_evidence_add(&t->evidence, "reopens", b->reopens);
}

static void add_rates(struct fm_evidence *e, const struct fm_breaker_config *cfg, uint64_t req,
                      uint64_t err, uint64_t slow, bool window)
{
        fm_evidence_add(e, "requests", (double)req);
        fm_evidence_add(e, "errors", (double)err);
        fm_evidence_add(e, "slow_calls", (double)slow);
        fm_evidence_add(e, "failure_rate", ratio(err, req));
        fm_evidence_add(e, "failure_threshold", cfg->failure_rate);
        fm_evidence_add(e, "slow_call_rate", ratio(slow, req));
        fm_evidence_add(e, "slow_call_threshold", cfg->slow_rate);
        fm_evidence_add(e, "slow_call_ms", cfg->slow_call_ms);
        if (window) {
                fm_evidence_add(e, "min_requests", cfg->min_requests);
                fm_evidence_add(e, "window_s", (double)cfg->window / FM_MS_PER_S);
        } else {
                fm_evidence_add(e, "probes", cfg->probes);
        }
}

/*
 * Health and heartbeat come first: an instance that says it is down or has
 * gone silent is out whatever its last counters said. Then the rates, but
 * only over enough requests that one unlucky error cannot trip the breaker.
 */
static int open_if_down_or_silent(struct fm_breaker *b, const struct fm_breaker_config *cfg,
                                  const struct fm_breaker_input *in, fm_ms now,
                                  struct fm_breaker_transition *t)
{
        if (in->health == FM_HEALTH_DOWN) {
                fm_evidence_add(&t->evidence, "health_down", 1);
                open_breaker(b, cfg, FM_CAUSE_HEALTH_DOWN, now, t);
                return 1;
        }
        if (now - in->last_seen > cfg->heartbeat_timeout) {
                fm_evidence_add(&t->evidence, "silence_s",
                                (double)(now - in->last_seen) / FM_MS_PER_S);
                fm_evidence_add(&t->evidence, "heartbeat_timeout_s",
                                (double)cfg->heartbeat_timeout / FM_MS_PER_S);
                open_breaker(b, cfg, FM_CAUSE_HEARTBEAT_LOST, now, t);
                return 1;
        }
        return 0;
}

static int evaluate_closed(struct fm_breaker *b, const struct fm_breaker_config *cfg,
                           const struct fm_breaker_input *in, fm_ms now,
                           struct fm_breaker_transition *t)
{
        if (open_if_down_or_silent(b, cfg, in, now, t))
                return 1;
        if (in->requests < cfg->min_requests)
                return 0;

        enum fm_breaker_cause cause;
        if (ratio(in->errors, in->requests) >= cfg->failure_rate)
                cause = FM_CAUSE_FAILURE_RATE;
        else if (ratio(in->slow, in->requests) >= cfg->slow_rate)
                cause = FM_CAUSE_SLOW_RATE;
        else
                return 0;
        add_rates(&t->evidence, cfg, in->requests, in->errors, in->slow, true);
        open_breaker(b, cfg, cause, now, t);
        return 1;
}

static int evaluate_half_open(struct fm_breaker *b, const struct fm_breaker_config *cfg,
                              const struct fm_breaker_input *in, fm_ms now,
                              struct fm_breaker_transition *t)
{
        if (open_if_down_or_silent(b, cfg, in, now, t))
                return 1;
        if (b->probe_requests < cfg->probes)
                return 0;

        uint32_t req = b->probe_requests, err = b->probe_errors, slow = b->probe_slow;
        add_rates(&t->evidence, cfg, req, err, slow, false);
        if (ratio(err, req) >= cfg->failure_rate || ratio(slow, req) >= cfg->slow_rate) {
                open_breaker(b, cfg, FM_CAUSE_PROBES_FAILED, now, t);
        } else {
                enter(b, FM_BREAKER_CLOSED, FM_CAUSE_PROBES_PASSED, now, t);
                b->reopens = 0;
        }
        return 1;
}

int fm_breaker_evaluate(struct fm_breaker *b, const struct fm_breaker_config *cfg,
                        const struct fm_breaker_input *in, fm_ms now,
                        struct fm_breaker_transition *ret)
{
        struct fm_breaker_transition t = {0};
        int r = 0;

        switch ((enum fm_breaker_state)b->state) {
        case FM_BREAKER_CLOSED:
                r = evaluate_closed(b, cfg, in, now, &t);
                break;
        case FM_BREAKER_OPEN:
                if (now >= b->open_until) {
                        fm_evidence_add(&t.evidence, "open_s", (double)b->open_for / FM_MS_PER_S);
                        fm_evidence_add(&t.evidence, "reopens", b->reopens);
                        enter(b, FM_BREAKER_HALF_OPEN, FM_CAUSE_OPEN_ELAPSED, now, &t);
                        r = 1;
                }
                break;
        case FM_BREAKER_HALF_OPEN:
                r = evaluate_half_open(b, cfg, in, now, &t);
                break;
        case FM_BREAKER_FORCED_OPEN:
        case FM_BREAKER_DISABLED:
        default:
                break;
        }
        if (r > 0)
                *ret = t;
        return r;
}

int fm_breaker_force(struct fm_breaker *b, enum fm_breaker_op op, fm_ms now,
                     struct fm_breaker_transition *ret)
{
        enum fm_breaker_state to;

        switch (op) {
        case FM_BREAKER_FORCE_OPEN:
                to = FM_BREAKER_FORCED_OPEN;
                break;
        case FM_BREAKER_DISABLE:
                to = FM_BREAKER_DISABLED;
                break;
        case FM_BREAKER_RELEASE:
                if (b->state != FM_BREAKER_FORCED_OPEN && b->state != FM_BREAKER_DISABLED)
                        return 0;
                to = FM_BREAKER_CLOSED;
                break;
        default:
                return -EINVAL;
        }
        if (b->state == to)
                return 0;

        struct fm_breaker_transition t = {0};
        enter(b, to, FM_CAUSE_OPERATOR, now, &t);
        b->reopens = 0;
        *ret = t;
        return 1;
}
