/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Replay: a recorded event log fed through the decision core with the clock
 * taken from the log, and the decisions compared with the live
 * controller's when the log holds them.
 *
 * The log (what `fleetmedic record` writes) is one JSON text per line:
 *   {"t": receive time in ms since the epoch, "topic": "...",
 *    "payload": "<the raw payload as a JSON string>"}
 * and, for the controller's own audit records (topics
 * <prefix>/<deployment>/_fleetmedic/decisions), "source": "controller".
 *
 * Clock: every event is decoded and applied at its t (the decoder's `now`,
 * so a payload ts is judged against the time of receipt as live). The core
 * ticks every `tick` from the first entry's t: before an event at t, every
 * tick due before t runs (at one instant the event comes first, as in the
 * simulator), and the last tick is the last at or before the log's last t.
 * The live controller's ticks are not a perfect grid: its timer is re-armed
 * when a tick is done, and its event loop runs the tick at its first
 * wake-up after that, often a message. The log tells when some ticks were:
 * the ts of each recorded decision is the time of the tick that made it.
 * So the tick after p is: the first recorded decision time in
 * (p, p + 1.5 tick] when there is one; else the first event in
 * [p + tick, p + 1.25 tick] (applied first, then the tick); else p + tick.
 *
 * Comparison key: type; deployment; instance; for an action its action,
 * policy and verdict; for a transition its from and to states. A replayed
 * decision matches a recorded one with the same key whose ts is within one
 * tick (each is matched at most once, the nearest first, in time order).
 *
 * Pure: no I/O, no clock. The same log and options give the same result.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core.h"
#include "event.h"
#include "util.h"

#define FM_REPLAY_LINE_MAX (FM_DECODER_DEFAULT_MAX_PAYLOAD * 8) /* bytes of one log line */
#define FM_REPLAY_ENTRIES_MAX 50000000u                         /* entries in one log */
#define FM_REPLAY_DECISIONS_MAX 1000000u                        /* decisions listed */

enum fm_replay_source {
        FM_REPLAY_EVENT,    /* an event on a fleet topic */
        FM_REPLAY_DECISION, /* an audit record of the live controller */
};

struct fm_replay_entry {
        fm_ms t;
        enum fm_replay_source source;
        char *topic;   /* owned */
        char *payload; /* owned, NUL-terminated; payload_len bytes before the NUL */
        size_t payload_len;
};

struct fm_replay_log {
        struct fm_replay_entry *entry;
        size_t n, cap;
        uint64_t bad_lines; /* lines that were not a log entry (counted, skipped) */
};

/* Frees every entry; accepts a zeroed log; leaves it zeroed. */
void fm_replay_log_done(struct fm_replay_log *log);

/*
 * Parses one log line (len bytes, need not be NUL-terminated; a trailing
 * newline is allowed) and appends it. Returns 0; -EBADMSG for a line that
 * is not an entry (counted in bad_lines, nothing appended); -E2BIG past
 * FM_REPLAY_ENTRIES_MAX or FM_REPLAY_LINE_MAX; -ENOMEM. An entry is a
 * decision when its "source" is "controller" or its topic ends in
 * "/_fleetmedic/decisions".
 */
int fm_replay_log_add_line(struct fm_replay_log *log, const char *line, size_t len);

/* One decision, replayed or recorded, reduced to what is compared. */
struct fm_replay_decision {
        fm_ms ts;
        bool transition; /* else an action */
        char deployment[FM_NAME_MAX + 1];
        char instance[FM_NAME_MAX + 1];
        char action[24];  /* action name, or the breaker's "to" state */
        char policy[24];  /* policy name, or the breaker's "from" state */
        char verdict[16]; /* "" for a transition */
        char *record;     /* the audit record (JSON text), owned */
        int32_t match;    /* index in the other list, -1 when unmatched */
};

struct fm_replay_options {
        const struct fm_core_config *core; /* governor.dry_run is forced on */
        const struct fm_decoder_config *decoder;
        fm_ms tick; /* > 0 */
};

struct fm_replay_result {
        struct fm_replay_decision *decision; /* replayed, in order */
        uint32_t n_decisions;
        struct fm_replay_decision *recorded; /* the log's, in log order */
        uint32_t n_recorded;
        uint64_t decisions_dropped; /* over FM_REPLAY_DECISIONS_MAX, not listed */
        uint64_t events, applied, ticks;
        uint64_t rejected[_FM_REJECT_MAX];
        uint64_t tick_errors;
        uint32_t matched, missing, extra; /* missing: recorded, not replayed; extra: the reverse */
        fm_ms first, last;                /* the log's time span */
};

/*
 * Replays log. Returns 0 and a new result in *ret (free it with
 * fm_replay_result_free()), -EINVAL (bad options or a core configuration
 * the core refuses), -ENOMEM. Entries are taken in log order; an entry
 * whose t is older than the clock is applied at the clock (receive times
 * of one recorder never go back, but a merged log may).
 */
int fm_replay_run(const struct fm_replay_log *log, const struct fm_replay_options *opt,
                  struct fm_replay_result **ret);

/* Accepts NULL; returns NULL. */
struct fm_replay_result *fm_replay_result_free(struct fm_replay_result *r);

/*
 * Parses an audit record (JSON text) into d (record is not copied: d->record
 * is left NULL). Returns 0, or -EBADMSG when it is not a transition or
 * action record (an execution record, for one).
 */
int fm_replay_decision_parse(const char *json, size_t len, struct fm_replay_decision *d);
