/* SPDX-License-Identifier: MIT */

/*
 * Event decoder: topic and payload to struct fm_event, or a reason.
 *
 * The order of the checks is part of the contract, because the reason is a
 * metric label and the same bad message must always count the same way:
 *
 *   1. size (too_large), before any parsing;
 *   2. topic: structure (bad_topic), reserved levels (reserved_name), kind
 *      (unknown_kind), deployment and instance names (bad_name);
 *   3. JSON: one complete text (malformed_json), an object (not_object);
 *   4. `v` (unknown_schema_version);
 *   5. fields, in the order they appear in the payload, then the checks
 *      that need more than one field (missing_field,
 *      errors_exceed_requests).
 *
 * The object is walked once, dispatching on the key. `v` has to win over
 * any field error even if it comes last in the payload: when a field fails
 * before `v` was seen, `v` is looked up once on that (cold) path only.
 *
 * Reasons for problems inside histograms: a shape problem (missing key,
 * not an array, no bounds, bounds not strictly ascending, counts not
 * bounds + 1, an element that is not a number) is bad_histogram; a number
 * that is well placed but bad in itself (non-finite, negative where it must
 * not be, a fractional count) is bad_number, the reason the same number
 * would get as a top-level field. More bounds than FM_HIST_MAX_BOUNDS is
 * too_many_items.
 *
 * `null` is a value of the wrong type (bad_type), not an absent field.
 *
 * Counts (requests, errors, histogram counts) are capped at 2^53: more is
 * no real interval's count, and the cap keeps every sum of them exact in a
 * double and far from uint64 overflow. A count over the cap is bad_number.
 */

#include "event.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <string.h>

#include <json-c/json.h>

/* Nesting depth the tokener accepts; the schema itself needs 3. */
#define TOKENER_DEPTH 16

/* Largest count and largest integral double accepted as an integer. */
#define COUNT_MAX (UINT64_C(1) << 53)
#define EXACT_DOUBLE_MAX 9007199254740992.0 /* 2^53 */

/*
 * JSON_TOKENER_STRICT in json-c 0.16 rejects comments, trailing commas,
 * leading zeros ("01"), case variants of literals ("TRUE", "nan",
 * "infinity"), a dangling exponent ("1e") and anything after the text. It
 * still accepts single-quoted strings and the exact literals NaN, Infinity
 * and -Infinity: the field checks turn those into bad_number.
 *
 * JSON_TOKENER_VALIDATE_UTF8 is not set: it costs a call per input byte,
 * about 0.7 us on a 400-byte KPI event, twice all of our own work. The only
 * free text the decoder keeps is `reason` (version and status are ASCII by
 * their own checks), so that string alone is checked: invalid UTF-8 in it
 * is malformed_json, which is what it is. json-c turns escaped lone
 * surrogates into U+FFFD, so only raw bytes can be invalid.
 */
#define TOKENER_FLAGS JSON_TOKENER_STRICT

struct fm_decoder {
        struct json_tokener *tok;
        size_t max_payload;
        fm_ms max_skew;
        size_t prefix_len;
        char prefix[FM_PREFIX_MAX + 1];
};

static const char *const reject_names[_FM_REJECT_MAX] = {
        [FM_REJECT_NONE] = "none",
        [FM_REJECT_TOO_LARGE] = "too_large",
        [FM_REJECT_BAD_TOPIC] = "bad_topic",
        [FM_REJECT_UNKNOWN_KIND] = "unknown_kind",
        [FM_REJECT_BAD_NAME] = "bad_name",
        [FM_REJECT_RESERVED_NAME] = "reserved_name",
        [FM_REJECT_MALFORMED_JSON] = "malformed_json",
        [FM_REJECT_NOT_OBJECT] = "not_object",
        [FM_REJECT_UNKNOWN_SCHEMA_VERSION] = "unknown_schema_version",
        [FM_REJECT_MISSING_FIELD] = "missing_field",
        [FM_REJECT_BAD_TYPE] = "bad_type",
        [FM_REJECT_BAD_NUMBER] = "bad_number",
        [FM_REJECT_OUT_OF_RANGE] = "out_of_range",
        [FM_REJECT_ERRORS_EXCEED_REQUESTS] = "errors_exceed_requests",
        [FM_REJECT_TIMESTAMP_SKEW] = "timestamp_skew",
        [FM_REJECT_BAD_HISTOGRAM] = "bad_histogram",
        [FM_REJECT_BAD_STATUS] = "bad_status",
        [FM_REJECT_FIELD_TOO_LONG] = "field_too_long",
        [FM_REJECT_TOO_MANY_ITEMS] = "too_many_items",
        [FM_REJECT_DUPLICATE] = "duplicate",
        [FM_REJECT_DEPLOYMENT_CAP] = "deployment_cap",
        [FM_REJECT_VERSION_CAP] = "version_cap",
        [FM_REJECT_INSTANCE_CAP] = "instance_cap",
};

static const char *const kind_names[_FM_EVENT_KIND_MAX] = {
        [FM_EVENT_HEALTH] = "health",
        [FM_EVENT_KPI] = "kpi",
        [FM_EVENT_FEEDBACK] = "feedback",
};

static const char *const status_names[] = {
        [FM_HEALTH_UNKNOWN] = "unknown",
        [FM_HEALTH_OK] = "ok",
        [FM_HEALTH_DEGRADED] = "degraded",
        [FM_HEALTH_DOWN] = "down",
};

static const char *const gauge_names[_FM_GAUGE_MAX] = {
        [FM_GAUGE_QUEUE_DEPTH] = "queue_depth",
        [FM_GAUGE_IN_FLIGHT] = "in_flight",
        [FM_GAUGE_CPU] = "cpu",
        [FM_GAUGE_GPU_UTIL] = "gpu_util",
        [FM_GAUGE_GPU_MEM] = "gpu_mem",
        [FM_GAUGE_TOKENS_PER_S] = "tokens_per_s",
};

const char *fm_reject_name(enum fm_reject r)
{
        if ((unsigned)r >= ARRAY_SIZE(reject_names))
                return NULL;
        return reject_names[r];
}

const char *fm_event_kind_name(enum fm_event_kind k)
{
        if ((unsigned)k >= ARRAY_SIZE(kind_names))
                return NULL;
        return kind_names[k];
}

const char *fm_health_status_name(enum fm_health_status s)
{
        if ((unsigned)s >= ARRAY_SIZE(status_names))
                return NULL;
        return status_names[s];
}

const char *fm_gauge_name(enum fm_gauge g)
{
        if ((unsigned)g >= ARRAY_SIZE(gauge_names))
                return NULL;
        return gauge_names[g];
}

static bool is_lower_digit(char c)
{
        return (unsigned char)(c - 'a') < 26 || (unsigned char)(c - '0') < 10;
}

bool fm_name_valid(const char *s, size_t len)
{
        if (!s || len < 1 || len > FM_NAME_MAX)
                return false;
        if (!is_lower_digit(s[0]) || !is_lower_digit(s[len - 1]))
                return false;
        for (size_t i = 1; i + 1 < len; i++)
                if (!is_lower_digit(s[i]) && s[i] != '-' && s[i] != '.')
                        return false;
        return true;
}

bool fm_version_valid(const char *s, size_t len)
{
        if (!s || len < 1 || len > FM_VERSION_MAX)
                return false;
        for (size_t i = 0; i < len; i++) {
                char c = s[i];
                if (!is_lower_digit(c) && (unsigned char)(c - 'A') >= 26 && c != '.' && c != '_' &&
                    c != '-')
                        return false;
        }
        return true;
}

void fm_decoder_config_default(struct fm_decoder_config *cfg)
{
        *cfg = (struct fm_decoder_config){
                .max_payload = FM_DECODER_DEFAULT_MAX_PAYLOAD,
                .max_skew = FM_DECODER_DEFAULT_MAX_SKEW_MS,
                .prefix = FM_DECODER_DEFAULT_PREFIX,
        };
}

/*
 * Beyond the documented checks, a prefix with an MQTT wildcard can match no
 * published topic, and json_tokener_parse_ex() takes an int length, so the
 * size limit must fit one.
 */
int fm_decoder_new(const struct fm_decoder_config *cfg, struct fm_decoder **ret)
{
        if (!cfg || !ret || !cfg->prefix)
                return -EINVAL;
        size_t plen = 0;
        while (plen <= FM_PREFIX_MAX && cfg->prefix[plen] != '\0')
                plen++;
        if (plen == 0 || plen > FM_PREFIX_MAX || cfg->prefix[plen - 1] == '/')
                return -EINVAL;
        if (memchr(cfg->prefix, '+', plen) || memchr(cfg->prefix, '#', plen))
                return -EINVAL;
        if (cfg->max_payload == 0 || cfg->max_payload > INT_MAX || cfg->max_skew < 0)
                return -EINVAL;

        struct fm_decoder *d = calloc(1, sizeof(*d));
        if (!d)
                return -ENOMEM;
        d->tok = json_tokener_new_ex(TOKENER_DEPTH);
        if (!d->tok) {
                free(d);
                return -ENOMEM;
        }
        json_tokener_set_flags(d->tok, TOKENER_FLAGS);
        d->max_payload = cfg->max_payload;
        d->max_skew = cfg->max_skew;
        d->prefix_len = plen;
        memcpy(d->prefix, cfg->prefix, plen);
        d->prefix[plen] = '\0';
        *ret = d;
        return 0;
}

struct fm_decoder *fm_decoder_free(struct fm_decoder *d)
{
        if (!d)
                return NULL;
        json_tokener_free(d->tok);
        free(d);
        return NULL;
}

/* ---- topic ---- */

static bool level_is(const char *s, size_t len, const char *lit, size_t lit_len)
{
        return len == lit_len && memcmp(s, lit, len) == 0;
}

/*
 * <prefix>/<deployment>/<instance>/<kind>. A reserved level wins over an
 * unknown kind: the controller's own outputs (<prefix>/<dep>/_fleetmedic/
 * decisions) come back to a controller subscribed to <prefix>/+/+/+ and
 * should be counted as what they are.
 */
static enum fm_reject decode_topic(const struct fm_decoder *d, const char *topic, size_t len,
                                   struct fm_event *ev)
{
        if (len <= d->prefix_len || memcmp(topic, d->prefix, d->prefix_len) != 0 ||
            topic[d->prefix_len] != '/')
                return FM_REJECT_BAD_TOPIC;

        const char *p = topic + d->prefix_len + 1, *end = topic + len;
        const char *lv[3];
        size_t ll[3];
        for (size_t i = 0; i < 3; i++) {
                const char *slash = memchr(p, '/', (size_t)(end - p));
                if ((i < 2) != (slash != NULL))
                        return FM_REJECT_BAD_TOPIC; /* fewer or more than three levels */
                const char *e = slash ? slash : end;
                if (e == p)
                        return FM_REJECT_BAD_TOPIC; /* empty level */
                lv[i] = p;
                ll[i] = (size_t)(e - p);
                p = e + 1;
        }

        for (size_t i = 0; i < 3; i++)
                if (lv[i][0] == '_')
                        return FM_REJECT_RESERVED_NAME;

        if (level_is(lv[2], ll[2], "kpi", 3))
                ev->kind = FM_EVENT_KPI;
        else if (level_is(lv[2], ll[2], "health", 6))
                ev->kind = FM_EVENT_HEALTH;
        else if (level_is(lv[2], ll[2], "feedback", 8))
                ev->kind = FM_EVENT_FEEDBACK;
        else
                return FM_REJECT_UNKNOWN_KIND;

        if (!fm_name_valid(lv[0], ll[0]) || !fm_name_valid(lv[1], ll[1]))
                return FM_REJECT_BAD_NAME;
        memcpy(ev->deployment, lv[0], ll[0]);
        ev->deployment[ll[0]] = '\0';
        memcpy(ev->instance, lv[1], ll[1]);
        ev->instance[ll[1]] = '\0';
        return FM_REJECT_NONE;
}

/* ---- JSON access ---- */

/*
 * The elements of a JSON array, or NULL if o is not an array. json-c's
 * struct array_list is public (arraylist.h); indexing it directly saves
 * json_object_array_get_idx() and array_list_get_idx() per element, most
 * of the cost of reading a histogram. A JSON null element is NULL.
 */
static struct json_object *const *array_items(struct json_object *o, size_t *ret_n)
{
        if (!json_object_is_type(o, json_type_array))
                return NULL;
        const struct array_list *al = json_object_get_array(o);
        *ret_n = al->length;
        return (struct json_object *const *)al->array;
}

/* ---- numbers ---- */

/* The value of a JSON number; false if o is not a number. */
static bool get_number(struct json_object *o, double *ret)
{
        enum json_type t = json_object_get_type(o);
        if (t != json_type_double && t != json_type_int)
                return false;
        *ret = json_object_get_double(o);
        return true;
}

/*
 * A non-negative integer up to max: a JSON integer, or a double with an
 * integral value (1.0, 1e3) not above 2^53. json-c 0.16 keeps integers over
 * INT64_MAX as uint64 and clamps larger ones to UINT64_MAX.
 */
static enum fm_reject get_uint(struct json_object *o, uint64_t max, uint64_t *ret)
{
        uint64_t u;
        switch (json_object_get_type(o)) {
        case json_type_int: {
                int64_t i = json_object_get_int64(o);
                if (i < 0)
                        return FM_REJECT_BAD_NUMBER;
                u = i == INT64_MAX ? json_object_get_uint64(o) : (uint64_t)i;
                break;
        }
        case json_type_double: {
                double v = json_object_get_double(o);
                if (!(v >= 0 && v <= EXACT_DOUBLE_MAX) || v != floor(v))
                        return FM_REJECT_BAD_NUMBER;
                u = (uint64_t)v;
                break;
        }
        default:
                return FM_REJECT_BAD_TYPE;
        }
        if (u > max)
                return FM_REJECT_BAD_NUMBER;
        *ret = u;
        return FM_REJECT_NONE;
}

/* A finite number >= 0. */
static enum fm_reject get_nonneg(struct json_object *o, double *ret)
{
        double v;
        if (!get_number(o, &v))
                return FM_REJECT_BAD_TYPE;
        if (!isfinite(v) || v < 0)
                return FM_REJECT_BAD_NUMBER;
        *ret = v;
        return FM_REJECT_NONE;
}

/* A finite number in [0, 1]. */
static enum fm_reject get_unit(struct json_object *o, double *ret)
{
        double v;
        if (!get_number(o, &v))
                return FM_REJECT_BAD_TYPE;
        if (!isfinite(v))
                return FM_REJECT_BAD_NUMBER;
        if (v < 0 || v > 1)
                return FM_REJECT_OUT_OF_RANGE;
        *ret = v;
        return FM_REJECT_NONE;
}

/*
 * Seconds (finite, >= 0, below 2^53 ms) to ms, rounding toward -inf. A
 * decimal such as 1.005 has no exact double, and 1.005 * 1000 comes out as
 * 1004.9999999999999: plain floor() would lose a millisecond the sender
 * wrote. The decimal-to-double conversion and the multiplication are off
 * by at most ms * 2^-52 together, so a product within twice that of an
 * integer is taken as that integer. Only a true fraction that close below
 * the next millisecond (0.75 us at today's epoch, below the resolution of
 * a double there) is rounded up instead of down.
 */
static fm_ms secs_to_ms(double s)
{
        double ms = s * 1000.0;
        double r = round(ms);
        if (fabs(ms - r) <= ms * 0x1p-51)
                return (fm_ms)r;
        return (fm_ms)floor(ms);
}

/* ---- fields ---- */

struct walk {
        struct fm_event *ev;
        fm_ms now;
        fm_ms max_skew;
        bool have_v;
        bool have_status;
        bool have_outcomes;
};

/* `v` is the integer 1; 1.0 is the same number in JSON, "1" is not. */
static bool v_valid(struct json_object *o)
{
        switch (json_object_get_type(o)) {
        case json_type_int:
                return json_object_get_int64(o) == 1;
        case json_type_double:
                return json_object_get_double(o) == 1.0;
        default:
                return false;
        }
}

static enum fm_reject field_ts(struct json_object *o, struct walk *w)
{
        double s;
        if (!get_number(o, &s))
                return FM_REJECT_BAD_TYPE;
        if (!isfinite(s) || s < 0)
                return FM_REJECT_BAD_NUMBER;
        /* Past 2^53 ms (year ~287000) no real clock is within the skew. */
        if (s * 1000.0 >= EXACT_DOUBLE_MAX)
                return FM_REJECT_TIMESTAMP_SKEW;
        fm_ms ts = secs_to_ms(s);
        uint64_t diff =
                ts >= w->now ? (uint64_t)ts - (uint64_t)w->now : (uint64_t)w->now - (uint64_t)ts;
        if (diff > (uint64_t)w->max_skew)
                return FM_REJECT_TIMESTAMP_SKEW;
        w->ev->ts = ts;
        w->ev->fields |= FM_F_TS;
        return FM_REJECT_NONE;
}

static enum fm_reject field_seq(struct json_object *o, struct fm_event *ev)
{
        enum fm_reject r = get_uint(o, UINT64_MAX, &ev->seq);
        if (r == FM_REJECT_NONE)
                ev->fields |= FM_F_SEQ;
        return r;
}

static enum fm_reject field_version(struct json_object *o, struct fm_event *ev)
{
        if (!json_object_is_type(o, json_type_string))
                return FM_REJECT_BAD_TYPE;
        size_t len = (size_t)json_object_get_string_len(o);
        const char *s = json_object_get_string(o);
        if (!fm_version_valid(s, len))
                return FM_REJECT_BAD_NAME;
        memcpy(ev->version, s, len);
        ev->version[len] = '\0';
        ev->fields |= FM_F_VERSION;
        return FM_REJECT_NONE;
}

static enum fm_reject field_status(struct json_object *o, struct walk *w)
{
        if (!json_object_is_type(o, json_type_string))
                return FM_REJECT_BAD_TYPE;
        size_t len = (size_t)json_object_get_string_len(o);
        const char *s = json_object_get_string(o);
        if (level_is(s, len, "ok", 2))
                w->ev->status = FM_HEALTH_OK;
        else if (level_is(s, len, "degraded", 8))
                w->ev->status = FM_HEALTH_DEGRADED;
        else if (level_is(s, len, "down", 4))
                w->ev->status = FM_HEALTH_DOWN;
        else
                return FM_REJECT_BAD_STATUS;
        w->have_status = true;
        return FM_REJECT_NONE;
}

static enum fm_reject field_ready(struct json_object *o, struct fm_event *ev)
{
        if (!json_object_is_type(o, json_type_boolean))
                return FM_REJECT_BAD_TYPE;
        ev->ready = json_object_get_boolean(o);
        ev->fields |= FM_F_READY;
        return FM_REJECT_NONE;
}

/* RFC 3629 UTF-8: no overlong forms, no surrogates, nothing past U+10FFFF. */
static bool utf8_valid(const unsigned char *s, size_t len)
{
        size_t i = 0;
        while (i < len) {
                unsigned char c = s[i];
                if (c < 0x80) {
                        i++;
                        continue;
                }
                size_t n;
                unsigned char lo = 0x80, hi = 0xbf; /* range of the second byte */
                if (c >= 0xc2 && c <= 0xdf)
                        n = 1;
                else if (c == 0xe0) {
                        n = 2;
                        lo = 0xa0;
                } else if (c == 0xed) {
                        n = 2;
                        hi = 0x9f;
                } else if (c >= 0xe1 && c <= 0xef)
                        n = 2;
                else if (c == 0xf0) {
                        n = 3;
                        lo = 0x90;
                } else if (c >= 0xf1 && c <= 0xf3)
                        n = 3;
                else if (c == 0xf4) {
                        n = 3;
                        hi = 0x8f;
                } else
                        return false;
                if (len - i - 1 < n || s[i + 1] < lo || s[i + 1] > hi)
                        return false;
                for (size_t k = 2; k <= n; k++)
                        if ((s[i + k] & 0xc0) != 0x80)
                                return false;
                i += n + 1;
        }
        return true;
}

/* Free text of at most FM_REASON_MAX bytes, copied as is. */
static enum fm_reject field_reason(struct json_object *o, struct fm_event *ev)
{
        if (!json_object_is_type(o, json_type_string))
                return FM_REJECT_BAD_TYPE;
        size_t len = (size_t)json_object_get_string_len(o);
        if (len > FM_REASON_MAX)
                return FM_REJECT_FIELD_TOO_LONG;
        const char *s = json_object_get_string(o);
        if (!utf8_valid((const unsigned char *)s, len))
                return FM_REJECT_MALFORMED_JSON; /* see TOKENER_FLAGS */
        memcpy(ev->reason, s, len);
        ev->reason[len] = '\0';
        ev->fields |= FM_F_REASON;
        return FM_REJECT_NONE;
}

static enum fm_reject field_interval(struct json_object *o, struct fm_event *ev)
{
        double v;
        if (!get_number(o, &v))
                return FM_REJECT_BAD_TYPE;
        if (!isfinite(v) || v <= 0)
                return FM_REJECT_BAD_NUMBER;
        ev->interval_s = v;
        ev->fields |= FM_F_INTERVAL;
        return FM_REJECT_NONE;
}

static enum fm_reject field_count(struct json_object *o, struct fm_event *ev, uint64_t *dst,
                                  uint32_t bit)
{
        enum fm_reject r = get_uint(o, COUNT_MAX, dst);
        if (r == FM_REJECT_NONE)
                ev->fields |= bit;
        return r;
}

static enum fm_reject field_gauge(struct json_object *o, struct fm_event *ev, enum fm_gauge g)
{
        enum fm_reject r;
        if (g == FM_GAUGE_CPU || g == FM_GAUGE_GPU_UTIL || g == FM_GAUGE_GPU_MEM)
                r = get_unit(o, &ev->gauge[g]);
        else
                r = get_nonneg(o, &ev->gauge[g]);
        if (r == FM_REJECT_NONE)
                ev->fields |= FM_F_GAUGE(g);
        return r;
}

/*
 * {"<bounds_key>": [n ascending finite bounds], "counts": [n + 1 counts]}.
 * Latency bounds must also be >= 0; score bounds may be any finite number.
 * Other keys are ignored, as at the top level. See the comment at the top
 * of the file for which problem gets which reason.
 */
static enum fm_reject decode_hist(struct json_object *o, const char *bounds_key, bool nonneg_bounds,
                                  struct fm_hist *h)
{
        if (!json_object_is_type(o, json_type_object))
                return FM_REJECT_BAD_TYPE;

        struct json_object *le = NULL, *counts = NULL;
        json_object_object_foreach(o, hkey, hval)
        {
                if (strcmp(hkey, bounds_key) == 0)
                        le = hval;
                else if (strcmp(hkey, "counts") == 0)
                        counts = hval;
        }
        size_t n = 0, nc = 0;
        struct json_object *const *bv = array_items(le, &n);
        struct json_object *const *cv = array_items(counts, &nc);
        if (!bv || !cv || n == 0)
                return FM_REJECT_BAD_HISTOGRAM;
        if (n > FM_HIST_MAX_BOUNDS)
                return FM_REJECT_TOO_MANY_ITEMS;
        if (nc != n + 1)
                return FM_REJECT_BAD_HISTOGRAM;

        for (size_t i = 0; i < n; i++) {
                double b;
                if (!get_number(bv[i], &b))
                        return FM_REJECT_BAD_HISTOGRAM;
                if (!isfinite(b) || (nonneg_bounds && b < 0))
                        return FM_REJECT_BAD_NUMBER;
                if (i > 0 && !(b > h->bound[i - 1]))
                        return FM_REJECT_BAD_HISTOGRAM;
                h->bound[i] = b;
        }
        for (size_t i = 0; i <= n; i++) {
                enum fm_reject r = get_uint(cv[i], COUNT_MAX, &h->count[i]);
                if (r == FM_REJECT_BAD_TYPE)
                        return FM_REJECT_BAD_HISTOGRAM;
                if (r != FM_REJECT_NONE)
                        return r;
        }
        h->n = (uint32_t)n;
        return FM_REJECT_NONE;
}

static enum fm_reject field_hist(struct json_object *o, struct fm_event *ev, bool latency)
{
        enum fm_reject r = latency ? decode_hist(o, "le_ms", true, &ev->latency_hist)
                                   : decode_hist(o, "le", false, &ev->score_hist);
        if (r == FM_REJECT_NONE)
                ev->fields |= latency ? FM_F_LATENCY_HIST : FM_F_SCORE_HIST;
        return r;
}

/* {"p50", "p95", "p99"}: all three, finite, >= 0, non-decreasing. */
static enum fm_reject field_latency_ms(struct json_object *o, struct fm_event *ev)
{
        if (!json_object_is_type(o, json_type_object))
                return FM_REJECT_BAD_TYPE;

        struct json_object *p[3] = {NULL, NULL, NULL};
        bool seen[3] = {false, false, false};
        json_object_object_foreach(o, pkey, pval)
        {
                size_t i;
                if (strcmp(pkey, "p50") == 0)
                        i = 0;
                else if (strcmp(pkey, "p95") == 0)
                        i = 1;
                else if (strcmp(pkey, "p99") == 0)
                        i = 2;
                else
                        continue;
                p[i] = pval; /* NULL for a JSON null: bad_type below */
                seen[i] = true;
        }
        double v[3];
        for (size_t i = 0; i < 3; i++) {
                if (!seen[i])
                        return FM_REJECT_MISSING_FIELD;
                enum fm_reject r = get_nonneg(p[i], &v[i]);
                if (r != FM_REJECT_NONE)
                        return r;
        }
        if (v[0] > v[1] || v[1] > v[2])
                return FM_REJECT_OUT_OF_RANGE;
        ev->p50_ms = v[0];
        ev->p95_ms = v[1];
        ev->p99_ms = v[2];
        ev->fields |= FM_F_LATENCY_MS;
        return FM_REJECT_NONE;
}

/* [[score, label], ...]: 1..FM_OUTCOMES_MAX pairs. */
static enum fm_reject field_outcomes(struct json_object *o, struct walk *w)
{
        struct fm_event *ev = w->ev;
        size_t n = 0;
        struct json_object *const *items = array_items(o, &n);
        if (!items)
                return FM_REJECT_BAD_TYPE;
        if (n == 0)
                return FM_REJECT_MISSING_FIELD;
        if (n > FM_OUTCOMES_MAX)
                return FM_REJECT_TOO_MANY_ITEMS;

        for (size_t i = 0; i < n; i++) {
                size_t np = 0;
                struct json_object *const *pair = array_items(items[i], &np);
                if (!pair || np != 2)
                        return FM_REJECT_BAD_TYPE;

                enum fm_reject r = get_unit(pair[0], &ev->outcome[i].score);
                if (r != FM_REJECT_NONE)
                        return r;

                double label;
                if (!get_number(pair[1], &label))
                        return FM_REJECT_BAD_TYPE;
                if (!isfinite(label))
                        return FM_REJECT_BAD_NUMBER;
                /* integer 0 or 1, or a double exactly 0.0 or 1.0 */
                if (label != 0.0 && label != 1.0)
                        return FM_REJECT_OUT_OF_RANGE;
                ev->outcome[i].label = label == 1.0;
        }
        ev->n_outcomes = (uint32_t)n;
        w->have_outcomes = true;
        return FM_REJECT_NONE;
}

/*
 * One top-level field. Dispatch on the first byte, then compare the rest:
 * most keys are rejected or matched after one or two byte compares. Keys
 * that are unknown, or not meaningful for the kind, are ignored.
 */
static enum fm_reject decode_field(const char *key, struct json_object *val, struct walk *w)
{
        struct fm_event *ev = w->ev;
        bool kpi = ev->kind == FM_EVENT_KPI;
        bool health = ev->kind == FM_EVENT_HEALTH;

        switch (key[0]) {
        case 'v':
                if (key[1] == '\0') {
                        w->have_v = true;
                        return v_valid(val) ? FM_REJECT_NONE : FM_REJECT_UNKNOWN_SCHEMA_VERSION;
                }
                if (strcmp(key, "version") == 0)
                        return field_version(val, ev);
                break;
        case 't':
                if (strcmp(key, "ts") == 0)
                        return field_ts(val, w);
                if (kpi && strcmp(key, "tokens_per_s") == 0)
                        return field_gauge(val, ev, FM_GAUGE_TOKENS_PER_S);
                break;
        case 's':
                if (strcmp(key, "seq") == 0)
                        return field_seq(val, ev);
                if (health && strcmp(key, "status") == 0)
                        return field_status(val, w);
                if (kpi && strcmp(key, "score_hist") == 0)
                        return field_hist(val, ev, false);
                break;
        case 'r':
                if (kpi && strcmp(key, "requests") == 0)
                        return field_count(val, ev, &ev->requests, FM_F_REQUESTS);
                if (health && strcmp(key, "ready") == 0)
                        return field_ready(val, ev);
                if (health && strcmp(key, "reason") == 0)
                        return field_reason(val, ev);
                break;
        case 'e':
                if (kpi && strcmp(key, "errors") == 0)
                        return field_count(val, ev, &ev->errors, FM_F_ERRORS);
                break;
        case 'i':
                if (kpi && strcmp(key, "interval_s") == 0)
                        return field_interval(val, ev);
                if (kpi && strcmp(key, "in_flight") == 0)
                        return field_gauge(val, ev, FM_GAUGE_IN_FLIGHT);
                break;
        case 'l':
                if (kpi && strcmp(key, "latency_hist") == 0)
                        return field_hist(val, ev, true);
                if (kpi && strcmp(key, "latency_ms") == 0)
                        return field_latency_ms(val, ev);
                break;
        case 'q':
                if (kpi && strcmp(key, "queue_depth") == 0)
                        return field_gauge(val, ev, FM_GAUGE_QUEUE_DEPTH);
                break;
        case 'c':
                if (kpi && strcmp(key, "cpu") == 0)
                        return field_gauge(val, ev, FM_GAUGE_CPU);
                break;
        case 'g':
                if (kpi && strcmp(key, "gpu_util") == 0)
                        return field_gauge(val, ev, FM_GAUGE_GPU_UTIL);
                if (kpi && strcmp(key, "gpu_mem") == 0)
                        return field_gauge(val, ev, FM_GAUGE_GPU_MEM);
                break;
        case 'o':
                if (ev->kind == FM_EVENT_FEEDBACK && strcmp(key, "outcomes") == 0)
                        return field_outcomes(val, w);
                break;
        default:
                break;
        }
        return FM_REJECT_NONE;
}

static enum fm_reject decode_object(struct json_object *obj, struct walk *w)
{
        struct fm_event *ev = w->ev;

        json_object_object_foreach(obj, key, val)
        {
                enum fm_reject r = decode_field(key, val, w);
                if (r == FM_REJECT_NONE)
                        continue;
                if (r != FM_REJECT_UNKNOWN_SCHEMA_VERSION && !w->have_v) {
                        /* `v` comes later, or not at all: it takes precedence. */
                        struct json_object *v;
                        if (!json_object_object_get_ex(obj, "v", &v) || !v_valid(v))
                                return FM_REJECT_UNKNOWN_SCHEMA_VERSION;
                }
                return r;
        }
        if (!w->have_v)
                return FM_REJECT_UNKNOWN_SCHEMA_VERSION;

        switch (ev->kind) {
        case FM_EVENT_HEALTH:
                if (!w->have_status)
                        return FM_REJECT_MISSING_FIELD;
                break;
        case FM_EVENT_KPI:
                if (ev->fields & FM_F_ERRORS) {
                        if (!(ev->fields & FM_F_REQUESTS))
                                return FM_REJECT_MISSING_FIELD;
                        if (ev->errors > ev->requests)
                                return FM_REJECT_ERRORS_EXCEED_REQUESTS;
                }
                break;
        case FM_EVENT_FEEDBACK:
                if (!w->have_outcomes)
                        return FM_REJECT_MISSING_FIELD;
                break;
        default:
                break;
        }
        return FM_REJECT_NONE;
}

/* ---- JSON ---- */

static bool is_json_ws(char c)
{
        return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/*
 * Parses exactly one JSON text filling the payload, with optional white
 * space around it. Returns false if it is not; else true and the tree in
 * *ret, for the caller to put (json-c represents a JSON null as NULL).
 *
 * A payload is not NUL-terminated, so a top-level number ("1") ends at the
 * end of the input and json-c reports json_tokener_continue: the end of
 * input is then signalled the documented way, by feeding it a '\0'. A
 * truncated text fails the same way and becomes malformed_json.
 */
static bool parse_json(struct json_tokener *tok, const char *p, size_t len,
                       struct json_object **ret)
{
        if (len == 0)
                return false;
        json_tokener_reset(tok);
        struct json_object *obj = json_tokener_parse_ex(tok, p, (int)len);
        enum json_tokener_error err = json_tokener_get_error(tok);
        size_t end = json_tokener_get_parse_end(tok);
        if (err == json_tokener_continue) {
                /* all of p was consumed; only the end of input is missing */
                obj = json_tokener_parse_ex(tok, "", 1);
                err = json_tokener_get_error(tok);
                end = len;
        }
        if (err != json_tokener_success) {
                json_object_put(obj);
                return false;
        }
        /* json-c eats trailing white space and, strict, fails on anything
         * else; this keeps the guarantee whatever the flags. */
        for (size_t i = end; i < len; i++)
                if (!is_json_ws(p[i])) {
                        json_object_put(obj);
                        return false;
                }
        *ret = obj; /* NULL for a JSON null */
        return true;
}

int fm_decoder_decode(struct fm_decoder *d, const char *topic, size_t topic_len,
                      const void *payload, size_t payload_len, fm_ms now, struct fm_event *ret,
                      enum fm_reject *ret_reason)
{
        if (!d || !ret || !ret_reason || (!topic && topic_len > 0) || (!payload && payload_len > 0))
                return -EINVAL;

        enum fm_reject r;
        if (payload_len > d->max_payload) {
                r = FM_REJECT_TOO_LARGE;
                goto reject;
        }
        r = decode_topic(d, topic, topic_len, ret);
        if (r != FM_REJECT_NONE)
                goto reject;

        struct json_object *obj = NULL;
        if (!parse_json(d->tok, payload, payload_len, &obj)) {
                r = FM_REJECT_MALFORMED_JSON;
                goto reject;
        }
        if (!json_object_is_type(obj, json_type_object)) {
                json_object_put(obj);
                r = FM_REJECT_NOT_OBJECT;
                goto reject;
        }

        /* Only what is valid without a flag; see the comment in event.h. */
        ret->fields = 0;
        ret->version[0] = '\0';
        ret->reason[0] = '\0';
        ret->ts = now;
        ret->status = FM_HEALTH_UNKNOWN;
        ret->n_outcomes = 0;

        struct walk w = {
                .ev = ret,
                .now = now,
                .max_skew = d->max_skew,
        };
        r = decode_object(obj, &w);
        json_object_put(obj);
        if (r != FM_REJECT_NONE)
                goto reject;
        *ret_reason = FM_REJECT_NONE;
        return 0;

reject:
        *ret_reason = r;
        return -EBADMSG;
}
