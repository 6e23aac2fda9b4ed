/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Event decoding: an MQTT topic and payload become one typed event, exactly
 * schema v1 of DESIGN.md, or a rejection with a reason.
 *
 * Topic: <prefix>/<deployment>/<instance>/<kind>, kind in health, kpi,
 * feedback. The decoder owns one json_tokener that it reuses for every
 * payload; the only allocation per event is json-c's own object tree, freed
 * before fm_decoder_decode() returns. The caller owns the struct fm_event
 * it decodes into (it is large: keep one and reuse it).
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

/* Name limits of the schema. */
#define FM_NAME_MAX 63    /* deployment, instance: [a-z0-9]([-a-z0-9.]{0,61}[a-z0-9])? */
#define FM_VERSION_MAX 64 /* version: [A-Za-z0-9._-]{1,64} */
#define FM_REASON_MAX 256 /* health reason, bytes */

/* Caps on arrays inside one payload; more is rejected as too_many_items. */
#define FM_HIST_MAX_BOUNDS 64 /* latency_hist.le_ms / score_hist.le entries */
#define FM_OUTCOMES_MAX 1024  /* feedback outcomes per event */

/* Decoder defaults (documented in README and the example configuration). */
#define FM_DECODER_DEFAULT_MAX_PAYLOAD (64 * 1024) /* bytes */
#define FM_DECODER_DEFAULT_MAX_SKEW_MS (300 * FM_MS_PER_S)
#define FM_DECODER_DEFAULT_PREFIX "fleet"
#define FM_PREFIX_MAX 128

enum fm_event_kind {
        FM_EVENT_HEALTH,
        FM_EVENT_KPI,
        FM_EVENT_FEEDBACK,
        _FM_EVENT_KIND_MAX,
};

/*
 * Why an event was rejected. The names returned by fm_reject_name() are
 * stable: they are metric labels (fleetmedic_events_rejected_total{reason}).
 * The decoder produces TOO_LARGE .. TOO_MANY_ITEMS; fleet state produces
 * DUPLICATE and the caps.
 * Append new values at the end of their group; never rename.
 */
enum fm_reject {
        FM_REJECT_NONE = 0,
        FM_REJECT_TOO_LARGE,              /* "too_large": payload over the size limit */
        FM_REJECT_BAD_TOPIC,              /* "bad_topic": wrong prefix or number of levels */
        FM_REJECT_UNKNOWN_KIND,           /* "unknown_kind": last topic level not a kind */
        FM_REJECT_BAD_NAME,               /* "bad_name": deployment, instance or version name */
        FM_REJECT_RESERVED_NAME,          /* "reserved_name": a topic level starting with '_' */
        FM_REJECT_MALFORMED_JSON,         /* "malformed_json": not one complete JSON text */
        FM_REJECT_NOT_OBJECT,             /* "not_object": top level is not an object */
        FM_REJECT_UNKNOWN_SCHEMA_VERSION, /* "unknown_schema_version": `v` missing or not 1 */
        FM_REJECT_MISSING_FIELD,          /* "missing_field": a field the kind needs */
        FM_REJECT_BAD_TYPE,               /* "bad_type": a field of the wrong JSON type */
        FM_REJECT_BAD_NUMBER,   /* "bad_number": non-finite, negative, or a count that is not an
                                   integer */
        FM_REJECT_OUT_OF_RANGE, /* "out_of_range": utilisation, score or label outside its range */
        FM_REJECT_ERRORS_EXCEED_REQUESTS, /* "errors_exceed_requests" */
        FM_REJECT_TIMESTAMP_SKEW,         /* "timestamp_skew": ts further than the skew from now */
        FM_REJECT_BAD_HISTOGRAM,  /* "bad_histogram": bounds not ascending, counts not len+1 */
        FM_REJECT_BAD_STATUS,     /* "bad_status": health status not ok/degraded/down */
        FM_REJECT_FIELD_TOO_LONG, /* "field_too_long": reason over 256 bytes */
        FM_REJECT_TOO_MANY_ITEMS, /* "too_many_items": histogram or outcomes over their cap */
        /* produced by fleet state */
        FM_REJECT_DUPLICATE,      /* "duplicate": seq not newer than the last seen */
        FM_REJECT_DEPLOYMENT_CAP, /* "deployment_cap" */
        FM_REJECT_VERSION_CAP,    /* "version_cap" */
        FM_REJECT_INSTANCE_CAP,   /* "instance_cap" */
        _FM_REJECT_MAX,
};

/* Stable lower-case name of a reason; "none" for FM_REJECT_NONE, NULL if out of range. */
const char *fm_reject_name(enum fm_reject r) _pure_;

/* Stable lower-case name of a kind ("health", "kpi", "feedback"); NULL if out of range. */
const char *fm_event_kind_name(enum fm_event_kind k) _pure_;

enum fm_health_status {
        FM_HEALTH_UNKNOWN = 0, /* never reported */
        FM_HEALTH_OK,
        FM_HEALTH_DEGRADED,
        FM_HEALTH_DOWN,
};

const char *fm_health_status_name(enum fm_health_status s) _pure_;

/* Bits of struct fm_event.fields: which optional fields the payload carried. */
enum {
        FM_F_SEQ = 1u << 0,
        FM_F_VERSION = 1u << 1,
        FM_F_TS = 1u << 2, /* ts was in the payload (else it is `now`) */
        FM_F_READY = 1u << 3,
        FM_F_REASON = 1u << 4,
        FM_F_INTERVAL = 1u << 5,
        FM_F_REQUESTS = 1u << 6,
        FM_F_ERRORS = 1u << 7,
        FM_F_LATENCY_HIST = 1u << 8,
        FM_F_LATENCY_MS = 1u << 9,
        FM_F_QUEUE_DEPTH = 1u << 10,
        FM_F_IN_FLIGHT = 1u << 11,
        FM_F_CPU = 1u << 12,
        FM_F_GPU_UTIL = 1u << 13,
        FM_F_GPU_MEM = 1u << 14,
        FM_F_TOKENS_PER_S = 1u << 15,
        FM_F_SCORE_HIST = 1u << 16,
};

/* Gauges of a kpi event, in this order in struct fm_event.gauge[]. */
enum fm_gauge {
        FM_GAUGE_QUEUE_DEPTH,
        FM_GAUGE_IN_FLIGHT,
        FM_GAUGE_CPU,
        FM_GAUGE_GPU_UTIL,
        FM_GAUGE_GPU_MEM,
        FM_GAUGE_TOKENS_PER_S,
        _FM_GAUGE_MAX,
};

/* Bit of struct fm_event.fields for a gauge: FM_F_QUEUE_DEPTH << g. */
#define FM_F_GAUGE(g) (FM_F_QUEUE_DEPTH << (g))

/* JSON field name of a gauge ("queue_depth", ...). */
const char *fm_gauge_name(enum fm_gauge g) _pure_;

/*
 * A histogram as the schema sends it: n ascending finite bounds and n+1
 * counts, the last count being the +Inf bucket. Bucket i holds values in
 * (bound[i-1], bound[i]]; bucket 0 holds values <= bound[0].
 */
struct fm_hist {
        uint32_t n; /* number of bounds, 1..FM_HIST_MAX_BOUNDS */
        double bound[FM_HIST_MAX_BOUNDS];
        uint64_t count[FM_HIST_MAX_BOUNDS + 1];
};

struct fm_outcome {
        double score;  /* finite, in [0, 1] */
        uint8_t label; /* 0 or 1 */
};

struct fm_event {
        enum fm_event_kind kind;
        uint32_t fields; /* FM_F_* bits */
        char deployment[FM_NAME_MAX + 1];
        char instance[FM_NAME_MAX + 1];
        char version[FM_VERSION_MAX + 1]; /* "" unless FM_F_VERSION */
        fm_ms ts;     /* payload ts (ms, fraction truncated toward -inf) or `now` */
        uint64_t seq; /* valid with FM_F_SEQ */

        /* health: status is required for this kind */
        enum fm_health_status status;
        bool ready; /* valid with FM_F_READY */
        char reason[FM_REASON_MAX + 1];

        /* kpi */
        double interval_s;             /* > 0, valid with FM_F_INTERVAL */
        uint64_t requests;             /* valid with FM_F_REQUESTS */
        uint64_t errors;               /* valid with FM_F_ERRORS; requires requests; <= requests */
        struct fm_hist latency_hist;   /* valid with FM_F_LATENCY_HIST; bounds in ms */
        double p50_ms, p95_ms, p99_ms; /* valid with FM_F_LATENCY_MS */
        double gauge[_FM_GAUGE_MAX];   /* each valid with FM_F_GAUGE(g) */
        struct fm_hist score_hist;     /* valid with FM_F_SCORE_HIST */

        /* feedback: outcomes are required for this kind (at least one) */
        uint32_t n_outcomes;
        struct fm_outcome outcome[FM_OUTCOMES_MAX];
};

struct fm_decoder_config {
        size_t max_payload; /* bytes; payloads larger are too_large */
        fm_ms max_skew;     /* |ts - now| above this is timestamp_skew */
        const char *prefix; /* topic prefix without trailing '/'; may contain '/' */
};

/* Fills *cfg with the defaults above. */
void fm_decoder_config_default(struct fm_decoder_config *cfg);

struct fm_decoder;

/*
 * Creates a decoder. cfg is copied (the prefix too). Returns 0 and the
 * decoder in *ret, -EINVAL for a bad configuration (empty or over-long
 * prefix, prefix ending in '/', zero size limit, negative skew), -ENOMEM.
 */
int fm_decoder_new(const struct fm_decoder_config *cfg, struct fm_decoder **ret);

/* Frees the decoder; accepts NULL; returns NULL. */
struct fm_decoder *fm_decoder_free(struct fm_decoder *d);

/*
 * Decodes one message received at `now`. topic need not be NUL-terminated
 * (topic_len bytes); payload likewise. On success returns 0, sets
 * *ret_reason to FM_REJECT_NONE and fills *ret: kind, deployment, instance
 * and ts always; version and reason are "" when absent; status is
 * FM_HEALTH_UNKNOWN and n_outcomes 0 for kinds that do not carry them.
 * Every other member is valid only with its bit in ret->fields and is
 * unspecified otherwise: *ret is not cleared per event, as clearing ~20 KB
 * would cost more than the parse. On rejection returns -EBADMSG, sets
 * *ret_reason, and leaves the fleet-relevant meaning of *ret undefined (it
 * may be partly written). -EINVAL for a NULL decoder, ret or ret_reason, or
 * a NULL topic or payload with a non-zero length. Never allocates beyond
 * json-c's parse tree, which is released before returning.
 */
int fm_decoder_decode(struct fm_decoder *d, const char *topic, size_t topic_len,
                      const void *payload, size_t payload_len, fm_ms now, struct fm_event *ret,
                      enum fm_reject *ret_reason);

/* Name checks of the schema, exposed for the shell and the tests. */
bool fm_name_valid(const char *s, size_t len) _pure_;    /* deployment, instance */
bool fm_version_valid(const char *s, size_t len) _pure_; /* version */
