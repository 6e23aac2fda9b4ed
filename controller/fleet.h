/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Fleet state: deployment ▸ version ▸ instance, built from decoded events.
 *
 * Lookups by name are O(1) (keyed hash maps); iteration is in order of
 * first appearance (linked lists), so the same events give the same order
 * whatever the hash key. Instances appear on their first valid event and
 * are forgotten after `forget_after` of silence; a version with no
 * instances is kept for `version_retention` (its statistics are the
 * baseline a rollback compares against), a deployment as long as it has a
 * version. Caps bound the number of each; an event that would exceed one
 * is rejected, counted, and changes nothing.
 *
 * Per instance the fleet keeps only what the breaker and the saturation
 * policies need: a counter window, gauge averages, health, heartbeat and
 * the breaker (about 1.2 KiB). Latency sketches live per version.
 *
 * Policies read the structures below through const pointers and never
 * write them. Pure: no clock, no I/O; memory is allocated when a name is
 * first seen, never per event.
 */

#include <stdbool.h>
#include <stdint.h>

#include "breaker.h"
#include "event.h"
#include "ewma.h"
#include "map.h"
#include "sketch.h"
#include "util.h"
#include "window.h"

struct fm_deployment;
struct fm_version;

struct fm_instance {
        char name[FM_NAME_MAX + 1];
        struct fm_deployment *deployment;
        struct fm_version *version;
        struct fm_instance *prev, *next;   /* deployment's instances, first seen first */
        struct fm_instance *vprev, *vnext; /* version's instances */
        fm_ms first_seen;
        fm_ms last_seen; /* newest event time */
        fm_ms last_ts;   /* time of the event with last_seq */
        uint64_t last_seq;
        bool has_seq;
        bool ready; /* latest reported readiness; false until reported */
        enum fm_health_status health;
        fm_ms health_at;
        char health_reason[FM_REASON_MAX + 1];
        uint64_t requests_total, errors_total;
        struct fm_window window;
        struct fm_ewma gauge[_FM_GAUGE_MAX];
        struct fm_breaker breaker;
};

/* A labelled outcome as the fleet keeps it: 12 bytes. */
struct fm_outcome_rec {
        float score;
        uint8_t label;
        uint32_t age_s; /* seconds from the version's first_seen to the event */
};

/*
 * The most recent labelled outcomes of a version, oldest overwritten first.
 * Allocated on the version's first feedback event, cap records in all.
 */
struct fm_outcome_ring {
        struct fm_outcome_rec *rec; /* NULL until the first feedback */
        uint32_t cap, head, n;      /* head: next slot written */
};

/* Score histograms are kept on this many equal bins over [0, 1], for PSI. */
#define FM_SCORE_BINS 10
/* Burn-rate windows of a version: 60 slots each. */
#define FM_BURN_FINE_SLOT_MS (60 * FM_MS_PER_S)       /* 1 min: the last hour */
#define FM_BURN_COARSE_SLOT_MS (6 * 60 * FM_MS_PER_S) /* 6 min: the last six hours */

struct fm_version {
        char name[FM_VERSION_MAX + 1]; /* "" for instances that never named one */
        struct fm_deployment *deployment;
        struct fm_version *prev, *next; /* deployment's versions, first seen first */
        struct fm_instance *instances;  /* head of the vnext list */
        uint32_t n_instances;
        fm_ms first_seen, last_seen;
        uint64_t requests_total, errors_total, slow_total;
        uint64_t outcomes_total, positives_total;
        struct fm_outcome_ring outcomes;  /* recent outcomes, for accuracy and threshold tuning */
        struct fm_window burn_fine;       /* requests/errors/slow, 1-min slots over 1 h */
        struct fm_window burn_coarse;     /* the same, 6-min slots over 6 h */
        double score_bins[FM_SCORE_BINS]; /* score_hist since first seen, rebinned */
        uint64_t score_events;            /* kpi events that carried a score_hist */
        struct fm_sketch latency_total;   /* since the version was first seen */
        struct fm_sketch_ring latency_recent;
};

struct fm_deployment {
        char name[FM_NAME_MAX + 1];
        struct fm_deployment *prev, *next;
        struct fm_map instance_map, version_map;
        struct fm_instance *instances, *instances_tail;
        struct fm_version *versions, *versions_tail;
        uint32_t n_instances, n_versions;
        fm_ms first_seen;
        /* executed scale-downs whose instances may still be leaving; see fm_fleet_note_scaled() */
        uint32_t retire_pending; /* departures expected and not yet seen */
        uint32_t retire_to;      /* replicas the last executed scale asked for */
        fm_ms retire_until;      /* silent surplus instances are retired until then */
        bool retiring;
};

/* Upper limit of fleet.outcomes_per_version. */
#define FM_OUTCOMES_PER_VERSION_MAX (1u << 20)

struct fm_fleet_config {
        uint32_t max_deployments;              /* default 256 */
        uint32_t max_versions;                 /* in all, default 512 */
        uint32_t max_versions_per_deployment;  /* default 32 */
        uint32_t max_instances;                /* in all, default 65536 */
        uint32_t max_instances_per_deployment; /* default 8192 */
        fm_ms forget_after;            /* instance silence before it is forgotten; default 15 min */
        fm_ms retire_grace;            /* after an executed scale-down, how long silent surplus
                                          instances are retired, not failed; default 10 min */
        fm_ms version_retention;       /* how long an empty version is kept; default 24 h */
        fm_ms gauge_tau;               /* EWMA time constant of gauges; default 30 s */
        fm_ms latency_window;          /* recent latency sketch window; default 5 min */
        uint32_t latency_slots;        /* its slots; default 5 (1 min each), at most
                                          FM_SKETCH_RING_MAX_SLOTS */
        uint32_t outcomes_per_version; /* recent labelled outcomes kept; default 8192, 0 keeps none
                                        */
        uint64_t hash_key[2]; /* SipHash key for the name maps; the shell picks it at random */
        struct fm_breaker_config breaker;
};

void fm_fleet_config_default(struct fm_fleet_config *cfg);

/* Returns 0 or -EINVAL for zero caps, non-positive durations, bad latency window or breaker
 * settings. */
int fm_fleet_config_validate(const struct fm_fleet_config *cfg);

/* What the fleet counted itself; the shell turns these into metrics. */
struct fm_fleet_stats {
        uint64_t accepted[_FM_EVENT_KIND_MAX];
        uint64_t rejected[_FM_REJECT_MAX]; /* only the reasons fleet state produces */
        uint64_t window_late;              /* counters older than the window, not counted */
        uint64_t instances_forgotten, versions_forgotten;
        uint64_t instances_retired; /* forgotten as departures of a scale-down */
};

struct fm_fleet {
        struct fm_fleet_config cfg;
        struct fm_map deployment_map;
        struct fm_deployment *deployments, *deployments_tail;
        uint32_t n_deployments, n_versions, n_instances;
        struct fm_fleet_stats stats;
};

/* Creates an empty fleet; cfg is copied. Returns 0, -EINVAL (invalid cfg), -ENOMEM. */
int fm_fleet_new(const struct fm_fleet_config *cfg, struct fm_fleet **ret);

/*
 * Applies a new configuration to a live fleet (a reload) and keeps what it
 * knows: deployments, versions, instances, breaker states. The hash key is
 * kept (the maps are built on it). Counter windows whose geometry changed
 * start empty, as do latency rings; lowered caps evict nothing but admit no
 * new names until the counts fall below them. Returns 0 or -EINVAL (cfg
 * invalid; nothing changed).
 */
int fm_fleet_reconfigure(struct fm_fleet *f, const struct fm_fleet_config *cfg);

/* Frees the fleet and everything in it; accepts NULL; returns NULL. */
struct fm_fleet *fm_fleet_free(struct fm_fleet *f);

/*
 * Applies one decoded event. Returns 0 when applied; -EBADMSG with
 * *ret_reason set (DUPLICATE or a cap) when rejected, in which case the
 * fleet is unchanged but for its rejection counter; -ENOMEM.
 */
int fm_fleet_apply(struct fm_fleet *f, const struct fm_event *ev, enum fm_reject *ret_reason);

struct fm_deployment *fm_fleet_find_deployment(const struct fm_fleet *f, const char *name);
struct fm_instance *fm_deployment_find_instance(const struct fm_deployment *d, const char *name);
struct fm_version *fm_deployment_find_version(const struct fm_deployment *d, const char *name);

/*
 * Estimated number of requests slower than slow_ms in a kpi event: from the
 * histogram when there is one (buckets above the threshold fully, the
 * bucket that straddles it in linear proportion, the +Inf bucket only when
 * its lower bound is at or above the threshold), else from p50/p95/p99 by
 * linear interpolation of the distribution between (0, 0) and those points
 * (with a threshold at or above p99, none are assumed slow: the summary
 * cannot tell). 0 without latency data.
 */
uint64_t fm_event_slow_calls(const struct fm_event *ev, double slow_ms);

/*
 * One instance whose breaker changed state during a tick, with the names
 * copied (the instance may be forgotten later in the same tick).
 */
struct fm_transition {
        char deployment[FM_NAME_MAX + 1];
        char instance[FM_NAME_MAX + 1];
        char version[FM_VERSION_MAX + 1];
        uint32_t opens; /* the breaker's opening count after the transition */
        struct fm_breaker_transition t;
};

/*
 * Advances time to now: retires the departures of noted scale-downs (see
 * fm_fleet_note_scaled()), forgets silent instances and expired versions,
 * rolls windows, and evaluates every breaker. Each transition is passed to
 * emit (which may be NULL); the fleet is consistent during the callback.
 * Returns 0 or the first negative value emit returned (the tick completes
 * regardless).
 */
int fm_fleet_tick(struct fm_fleet *f, fm_ms now,
                  int (*emit)(void *userdata, const struct fm_transition *t), void *userdata);

/*
 * Tells the fleet that a scale of the deployment from `from` to `to`
 * replicas was carried out at now. The shell calls it when the actuator
 * reports a scale action done (never for one merely approved or dry-run).
 *
 * Why: the instances a scale-down removes stop reporting, and their
 * breakers would open on the lost heartbeat and ask for restarts of
 * instances that no longer exist; the governor would count them as
 * silent and could freeze the deployment. So for retire_grace after the
 * note, an instance that has gone silent (no event for more than the
 * breaker's heartbeat_timeout) is retired, forgotten at once without a
 * breaker transition and counted in stats.instances_retired, as long as
 * departures are due: while the deployment has more instances than `to`
 * of the latest note, or while fewer instances were retired than the
 * notes' scale-downs removed (from - to of each, summed; a scale up
 * cancels none of them, as pods already terminating go anyway). The
 * longest silent go first, ties in fleet order. An instance that stays
 * silent beyond the grace, or beyond the departures, is a failure again,
 * as it would be without a note.
 *
 * Returns 0, -EINVAL (NULL names) or -ENOENT (no such deployment).
 */
int fm_fleet_note_scaled(struct fm_fleet *f, const char *deployment, uint32_t from, uint32_t to,
                         fm_ms now);

/*
 * Copies the outcomes of v from since (ms, epoch) on into out, oldest
 * first, and returns how many. When more than max qualify, the newest max
 * are copied. Scores become doubles. Assumes feedback arrives in time
 * order (a late batch is kept where it arrived).
 */
size_t fm_version_outcomes(const struct fm_version *v, fm_ms since, struct fm_outcome *out,
                           size_t max);

/*
 * Requests and errors of v over the last len ms as of now, from its burn
 * windows: the 1-minute one up to an hour, the 6-minute one beyond (at most
 * six hours), in whole slots (len rounded to the nearest slot, at least one).
 * errors never exceeds requests.
 */
void fm_version_burn_counts(const struct fm_version *v, fm_ms now, fm_ms len, uint64_t *ret_req,
                            uint64_t *ret_err);

/* Operator override of one instance's breaker; see fm_breaker_force. -ENOENT if unknown. */
int fm_fleet_force(struct fm_fleet *f, const char *deployment, const char *instance,
                   enum fm_breaker_op op, fm_ms now, struct fm_transition *ret);
