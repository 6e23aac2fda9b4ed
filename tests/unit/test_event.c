/* SPDX-License-Identifier: MIT */

/*
 * Tests of the event decoder (controller/event.c): a table with one or more
 * rows per rejection reason, the happy path of each kind, and the edges of
 * names, timestamps, limits and tokener reuse.
 */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "event.h"

#define NOW INT64_C(1700000000000) /* 2023-11-14T22:13:20Z, in ms */
#define TABLE_MAX_PAYLOAD 1024

#define TK "fleet/dep-a/inst-1/kpi"
#define TH "fleet/dep-a/inst-1/health"
#define TF "fleet/dep-a/inst-1/feedback"

/* Literal building blocks for long payloads. */
#define SP16 "                "
#define SP256 SP16 SP16 SP16 SP16 SP16 SP16 SP16 SP16 SP16 SP16 SP16 SP16 SP16 SP16 SP16 SP16
#define SP1K SP256 SP256 SP256 SP256
#define X16 "xxxxxxxxxxxxxxxx"
#define X64 X16 X16 X16 X16
#define X256 X64 X64 X64 X64
#define DIG10(p) p "0," p "1," p "2," p "3," p "4," p "5," p "6," p "7," p "8," p "9,"
/* 65 ascending bounds: 10 .. 74 */
#define BOUNDS65 DIG10("1") DIG10("2") DIG10("3") DIG10("4") DIG10("5") DIG10("6") "70,71,72,73,74"

#define HIST_OK "{\"le_ms\":[10,20],\"counts\":[1,2,3]}"

#define assert_dbl(a, b)                                                                           \
        do {                                                                                       \
                double a_ = (a), b_ = (b);                                                         \
                if (!(a_ == b_))                                                                   \
                        fail_msg("%s == %.17g, expected %.17g", #a, a_, b_);                       \
        } while (0)

struct fixture {
        struct fm_decoder *d;
        struct fm_event *ev;
};

static int setup(void **state)
{
        struct fixture *f = calloc(1, sizeof(*f));
        assert_non_null(f);
        struct fm_decoder_config cfg;
        fm_decoder_config_default(&cfg);
        cfg.max_payload = TABLE_MAX_PAYLOAD;
        assert_int_equal(fm_decoder_new(&cfg, &f->d), 0);
        f->ev = malloc(sizeof(*f->ev));
        assert_non_null(f->ev);
        /* garbage, so that a field the decoder forgets to set shows */
        memset(f->ev, 0xa5, sizeof(*f->ev));
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        struct fixture *f = *state;
        assert_null(fm_decoder_free(f->d));
        free(f->ev);
        free(f);
        return 0;
}

static int decode_n(struct fm_decoder *d, const char *topic, const char *payload, size_t len,
                    fm_ms now, struct fm_event *ev, enum fm_reject *reason)
{
        return fm_decoder_decode(d, topic, strlen(topic), payload, len, now, ev, reason);
}

static int decode(struct fm_decoder *d, const char *topic, const char *payload, struct fm_event *ev,
                  enum fm_reject *reason)
{
        return decode_n(d, topic, payload, strlen(payload), NOW, ev, reason);
}

/* Decodes and fails the test unless it is accepted. */
static void expect_ok(struct fixture *f, const char *topic, const char *payload)
{
        enum fm_reject reason = FM_REJECT_NONE;
        int r = decode(f->d, topic, payload, f->ev, &reason);
        if (r != 0)
                fail_msg("%s %s: rejected (%d, %s)", topic, payload, r, fm_reject_name(reason));
        assert_int_equal(reason, FM_REJECT_NONE);
}

static void expect_reject(struct fixture *f, const char *topic, const char *payload,
                          enum fm_reject want)
{
        enum fm_reject reason = FM_REJECT_NONE;
        int r = decode(f->d, topic, payload, f->ev, &reason);
        if (r != -EBADMSG || reason != want)
                fail_msg("%s %s: got %d/%s, want %s", topic, payload, r,
                         r == -EBADMSG ? fm_reject_name(reason) : "-", fm_reject_name(want));
}

/* ---- rejection table ---- */

struct reject_row {
        const char *topic;
        const char *payload;
        size_t len; /* 0: strlen(payload) */
        enum fm_reject reason;
};

static const struct reject_row reject_rows[] = {
        /* too_large: checked before anything else */
        {TK, "{\"v\":1}" SP1K, 0, FM_REJECT_TOO_LARGE},
        {"nope", "{" SP1K, 0, FM_REJECT_TOO_LARGE},

        /* bad_topic: checked before the payload */
        {"other/dep-a/inst-1/kpi", "{\"v\":1}", 0, FM_REJECT_BAD_TOPIC},
        {"fleetx/dep-a/inst-1/kpi", "{\"v\":1}", 0, FM_REJECT_BAD_TOPIC},
        {"FLEET/dep-a/inst-1/kpi", "{\"v\":1}", 0, FM_REJECT_BAD_TOPIC},
        {"/fleet/dep-a/inst-1/kpi", "{\"v\":1}", 0, FM_REJECT_BAD_TOPIC},
        {"", "{\"v\":1}", 0, FM_REJECT_BAD_TOPIC},
        {"fleet", "{\"v\":1}", 0, FM_REJECT_BAD_TOPIC},
        {"fleet/", "{\"v\":1}", 0, FM_REJECT_BAD_TOPIC},
        {"fleet/dep-a", "{\"v\":1}", 0, FM_REJECT_BAD_TOPIC},
        {"fleet/dep-a/inst-1", "{\"v\":1}", 0, FM_REJECT_BAD_TOPIC},
        {"fleet/dep-a/inst-1/kpi/x", "{\"v\":1}", 0, FM_REJECT_BAD_TOPIC},
        {"fleet/dep-a/inst-1/kpi/", "{\"v\":1}", 0, FM_REJECT_BAD_TOPIC},
        {"fleet//inst-1/kpi", "{\"v\":1}", 0, FM_REJECT_BAD_TOPIC},
        {"fleet/dep-a//kpi", "{\"v\":1}", 0, FM_REJECT_BAD_TOPIC},
        {"fleet/dep-a/inst-1/", "{\"v\":1}", 0, FM_REJECT_BAD_TOPIC},
        {"fleet/dep-a/inst-1", "{", 0, FM_REJECT_BAD_TOPIC},

        /* reserved_name: any level starting with '_', before the kind */
        {"fleet/_dep/inst-1/kpi", "{\"v\":1}", 0, FM_REJECT_RESERVED_NAME},
        {"fleet/dep-a/_inst/kpi", "{\"v\":1}", 0, FM_REJECT_RESERVED_NAME},
        {"fleet/dep-a/inst-1/_kpi", "{\"v\":1}", 0, FM_REJECT_RESERVED_NAME},
        {"fleet/dep-a/_fleetmedic/decisions", "{\"v\":1}", 0, FM_REJECT_RESERVED_NAME},

        /* unknown_kind: before the names */
        {"fleet/dep-a/inst-1/kpis", "{\"v\":1}", 0, FM_REJECT_UNKNOWN_KIND},
        {"fleet/dep-a/inst-1/kp", "{\"v\":1}", 0, FM_REJECT_UNKNOWN_KIND},
        {"fleet/dep-a/inst-1/KPI", "{\"v\":1}", 0, FM_REJECT_UNKNOWN_KIND},
        {"fleet/dep-a/inst-1/metrics", "{\"v\":1}", 0, FM_REJECT_UNKNOWN_KIND},
        {"fleet/dep-a/inst-1/health2", "{\"v\":1}", 0, FM_REJECT_UNKNOWN_KIND},
        {"fleet/DEP/inst-1/feedbac", "{\"v\":1}", 0, FM_REJECT_UNKNOWN_KIND},

        /* bad_name: topic names, then the version field */
        {"fleet/Dep/inst-1/kpi", "{\"v\":1}", 0, FM_REJECT_BAD_NAME},
        {"fleet/dep-a/-inst/kpi", "{\"v\":1}", 0, FM_REJECT_BAD_NAME},
        {"fleet/dep-a/inst-/kpi", "{\"v\":1}", 0, FM_REJECT_BAD_NAME},
        {"fleet/dep./inst-1/kpi", "{\"v\":1}", 0, FM_REJECT_BAD_NAME},
        {"fleet/.dep/inst-1/kpi", "{\"v\":1}", 0, FM_REJECT_BAD_NAME},
        {"fleet/d_p/inst-1/kpi", "{\"v\":1}", 0, FM_REJECT_BAD_NAME},
        {"fleet/dep-a/inst+/kpi", "{\"v\":1}", 0, FM_REJECT_BAD_NAME},
        {"fleet/dep-a/in#st/kpi", "{\"v\":1}", 0, FM_REJECT_BAD_NAME},
        {"fleet/" X64 "/inst-1/kpi", "{\"v\":1}", 0, FM_REJECT_BAD_NAME},
        {"fleet/dep-a/inst-1/kpi", "{", 0, FM_REJECT_MALFORMED_JSON},
        {"fleet/Dep/inst-1/kpi", "{", 0, FM_REJECT_BAD_NAME},
        {TK, "{\"v\":1,\"version\":\"v 1\"}", 0, FM_REJECT_BAD_NAME},
        {TK, "{\"v\":1,\"version\":\"\"}", 0, FM_REJECT_BAD_NAME},
        {TK, "{\"v\":1,\"version\":\"v/1\"}", 0, FM_REJECT_BAD_NAME},
        {TH, "{\"v\":1,\"status\":\"ok\",\"version\":\"v\xc3\xa9\"}", 0, FM_REJECT_BAD_NAME},
        {TF, "{\"v\":1,\"version\":\"" X64 "x\",\"outcomes\":[[0.5,1]]}", 0, FM_REJECT_BAD_NAME},

        /* malformed_json: not exactly one complete JSON text */
        {TK, "", 0, FM_REJECT_MALFORMED_JSON},
        {TK, "   ", 0, FM_REJECT_MALFORMED_JSON},
        {TK, "{", 0, FM_REJECT_MALFORMED_JSON},
        {TK, "{\"v\":1", 0, FM_REJECT_MALFORMED_JSON},
        {TK, "{\"v\":1,\"requests\":", 0, FM_REJECT_MALFORMED_JSON},
        {TK, "{\"v\":1}x", 0, FM_REJECT_MALFORMED_JSON},
        {TK, "{\"v\":1} x", 0, FM_REJECT_MALFORMED_JSON},
        {TK, "{\"v\":1}{\"v\":1}", 0, FM_REJECT_MALFORMED_JSON},
        {TK, "{\"v\":1} {\"v\":1}", 0, FM_REJECT_MALFORMED_JSON},
        {TK, "{\"v\":1}\0", 8, FM_REJECT_MALFORMED_JSON},
        {TK, "1 2", 0, FM_REJECT_MALFORMED_JSON},
        {TK, "nul", 0, FM_REJECT_MALFORMED_JSON},
        {TK, "{\"v\":1,}", 0, FM_REJECT_MALFORMED_JSON},
        {TK, "{\"v\":01}", 0, FM_REJECT_MALFORMED_JSON},
        {TK, "{\"v\":TRUE}", 0, FM_REJECT_MALFORMED_JSON},
        {TK, "/*c*/{\"v\":1}", 0, FM_REJECT_MALFORMED_JSON},
        {TK, "{\"v\":1}/*c*/", 0, FM_REJECT_MALFORMED_JSON},
        {TK, "{\"v\":1,\"ts\":nan}", 0, FM_REJECT_MALFORMED_JSON},
        {TK, "{\"v\":1,\"ts\":infinity}", 0, FM_REJECT_MALFORMED_JSON},
        /* invalid UTF-8 in the one free text kept (see TOKENER_FLAGS in event.c) */
        {TH, "{\"v\":1,\"status\":\"ok\",\"reason\":\"\xff\"}", 0, FM_REJECT_MALFORMED_JSON},
        {TH, "{\"v\":1,\"status\":\"ok\",\"reason\":\"a\xc0\xaf\"}", 0, FM_REJECT_MALFORMED_JSON},
        {TH, "{\"v\":1,\"status\":\"ok\",\"reason\":\"\xed\xa0\x80\"}", 0,
         FM_REJECT_MALFORMED_JSON},
        {TH, "{\"v\":1,\"status\":\"ok\",\"reason\":\"\xe2\x82\"}", 0, FM_REJECT_MALFORMED_JSON},
        {TH, "{\"v\":1,\"status\":\"ok\",\"reason\":\"\xf4\x90\x80\x80\"}", 0,
         FM_REJECT_MALFORMED_JSON},
        {TH, "{\"v\":1,\"status\":\"ok\",\"reason\":\"\xe0\x80\xaf\"}", 0,
         FM_REJECT_MALFORMED_JSON},
        {TH, "{\"v\":1,\"status\":\"ok\",\"reason\":\"\xe2\x82\x41\"}", 0,
         FM_REJECT_MALFORMED_JSON},
        {TH, "{\"v\":1,\"status\":\"ok\",\"reason\":\"\xf0\x80\x80\x80\"}", 0,
         FM_REJECT_MALFORMED_JSON},
        {TH, "{\"v\":1,\"status\":\"ok\",\"reason\":\"\xf4\x8f\xbf\"}", 0,
         FM_REJECT_MALFORMED_JSON},
        {TH, "{\"v\":1,\"status\":\"ok\",\"reason\":\"\x80\"}", 0, FM_REJECT_MALFORMED_JSON},
        {TK, "{\"v\":1,\"x\":[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]}", 0, FM_REJECT_MALFORMED_JSON},

        /* not_object */
        {TK, "1", 0, FM_REJECT_NOT_OBJECT},
        {TK, "1.5", 0, FM_REJECT_NOT_OBJECT},
        {TK, "[1]", 0, FM_REJECT_NOT_OBJECT},
        {TK, " [] ", 0, FM_REJECT_NOT_OBJECT},
        {TK, "\"v\"", 0, FM_REJECT_NOT_OBJECT},
        {TK, "null", 0, FM_REJECT_NOT_OBJECT},
        {TK, "true", 0, FM_REJECT_NOT_OBJECT},

        /* unknown_schema_version: before any field problem */
        {TK, "{}", 0, FM_REJECT_UNKNOWN_SCHEMA_VERSION},
        {TK, "{\"v\":2}", 0, FM_REJECT_UNKNOWN_SCHEMA_VERSION},
        {TK, "{\"v\":0}", 0, FM_REJECT_UNKNOWN_SCHEMA_VERSION},
        {TK, "{\"v\":-1}", 0, FM_REJECT_UNKNOWN_SCHEMA_VERSION},
        {TK, "{\"v\":1.5}", 0, FM_REJECT_UNKNOWN_SCHEMA_VERSION},
        {TK, "{\"v\":\"1\"}", 0, FM_REJECT_UNKNOWN_SCHEMA_VERSION},
        {TK, "{\"v\":null}", 0, FM_REJECT_UNKNOWN_SCHEMA_VERSION},
        {TK, "{\"v\":true}", 0, FM_REJECT_UNKNOWN_SCHEMA_VERSION},
        {TK, "{\"v\":[1]}", 0, FM_REJECT_UNKNOWN_SCHEMA_VERSION},
        {TK, "{\"V\":1}", 0, FM_REJECT_UNKNOWN_SCHEMA_VERSION},
        {TK, "{\"ts\":-1}", 0, FM_REJECT_UNKNOWN_SCHEMA_VERSION},
        {TK, "{\"ts\":-1,\"v\":2}", 0, FM_REJECT_UNKNOWN_SCHEMA_VERSION},
        {TK, "{\"requests\":1,\"errors\":2}", 0, FM_REJECT_UNKNOWN_SCHEMA_VERSION},
        {TH, "{\"ready\":true}", 0, FM_REJECT_UNKNOWN_SCHEMA_VERSION},

        /* missing_field */
        {TH, "{\"v\":1}", 0, FM_REJECT_MISSING_FIELD},
        {TH, "{\"v\":1,\"ready\":true,\"reason\":\"x\"}", 0, FM_REJECT_MISSING_FIELD},
        {TK, "{\"v\":1,\"errors\":0}", 0, FM_REJECT_MISSING_FIELD},
        {TK, "{\"v\":1,\"latency_ms\":{\"p50\":1,\"p95\":2}}", 0, FM_REJECT_MISSING_FIELD},
        {TK, "{\"v\":1,\"latency_ms\":{}}", 0, FM_REJECT_MISSING_FIELD},
        {TF, "{\"v\":1}", 0, FM_REJECT_MISSING_FIELD},
        {TF, "{\"v\":1,\"outcomes\":[]}", 0, FM_REJECT_MISSING_FIELD},

        /* bad_type */
        {TK, "{\"v\":1,\"ts\":\"1700000000\"}", 0, FM_REJECT_BAD_TYPE},
        {TK, "{\"v\":1,\"ts\":null}", 0, FM_REJECT_BAD_TYPE},
        {TK, "{\"v\":1,\"seq\":\"1\"}", 0, FM_REJECT_BAD_TYPE},
        {TK, "{\"v\":1,\"seq\":true}", 0, FM_REJECT_BAD_TYPE},
        {TK, "{\"v\":1,\"version\":1}", 0, FM_REJECT_BAD_TYPE},
        {TK, "{\"v\":1,\"version\":null}", 0, FM_REJECT_BAD_TYPE},
        {TH, "{\"v\":1,\"status\":1}", 0, FM_REJECT_BAD_TYPE},
        {TH, "{\"v\":1,\"status\":\"ok\",\"ready\":\"true\"}", 0, FM_REJECT_BAD_TYPE},
        {TH, "{\"v\":1,\"status\":\"ok\",\"ready\":1}", 0, FM_REJECT_BAD_TYPE},
        {TH, "{\"v\":1,\"status\":\"ok\",\"reason\":5}", 0, FM_REJECT_BAD_TYPE},
        {TK, "{\"v\":1,\"interval_s\":\"10\"}", 0, FM_REJECT_BAD_TYPE},
        {TK, "{\"v\":1,\"requests\":\"5\"}", 0, FM_REJECT_BAD_TYPE},
        {TK, "{\"v\":1,\"requests\":5,\"errors\":null}", 0, FM_REJECT_BAD_TYPE},
        {TK, "{\"v\":1,\"latency_hist\":[10,20]}", 0, FM_REJECT_BAD_TYPE},
        {TK, "{\"v\":1,\"latency_ms\":5}", 0, FM_REJECT_BAD_TYPE},
        {TK, "{\"v\":1,\"latency_ms\":{\"p50\":1,\"p95\":\"2\",\"p99\":3}}", 0, FM_REJECT_BAD_TYPE},
        {TK, "{\"v\":1,\"cpu\":\"0.5\"}", 0, FM_REJECT_BAD_TYPE},
        {TK, "{\"v\":1,\"queue_depth\":null}", 0, FM_REJECT_BAD_TYPE},
        {TK, "{\"v\":1,\"score_hist\":\"x\"}", 0, FM_REJECT_BAD_TYPE},
        {TF, "{\"v\":1,\"outcomes\":{}}", 0, FM_REJECT_BAD_TYPE},
        {TF, "{\"v\":1,\"outcomes\":[0.5]}", 0, FM_REJECT_BAD_TYPE},
        {TF, "{\"v\":1,\"outcomes\":[[0.5]]}", 0, FM_REJECT_BAD_TYPE},
        {TF, "{\"v\":1,\"outcomes\":[[0.5,1,2]]}", 0, FM_REJECT_BAD_TYPE},
        {TF, "{\"v\":1,\"outcomes\":[[\"0.5\",1]]}", 0, FM_REJECT_BAD_TYPE},
        {TF, "{\"v\":1,\"outcomes\":[[0.5,true]]}", 0, FM_REJECT_BAD_TYPE},
        {TF, "{\"v\":1,\"outcomes\":[[0.5,1],null]}", 0, FM_REJECT_BAD_TYPE},

        /* bad_number */
        {TK, "{\"v\":1,\"ts\":-1}", 0, FM_REJECT_BAD_NUMBER},
        {TK, "{\"ts\":-1,\"v\":1}", 0, FM_REJECT_BAD_NUMBER}, /* v after the bad field */
        {TK, "{\"v\":1,\"ts\":NaN}", 0, FM_REJECT_BAD_NUMBER},
        {TK, "{\"v\":1,\"ts\":Infinity}", 0, FM_REJECT_BAD_NUMBER},
        {TK, "{\"v\":1,\"ts\":-Infinity}", 0, FM_REJECT_BAD_NUMBER},
        {TK, "{\"v\":1,\"seq\":-1}", 0, FM_REJECT_BAD_NUMBER},
        {TK, "{\"v\":1,\"seq\":1.5}", 0, FM_REJECT_BAD_NUMBER},
        {TK, "{\"v\":1,\"seq\":1e300}", 0, FM_REJECT_BAD_NUMBER},
        {TK, "{\"v\":1,\"seq\":9007199254740994.0}", 0, FM_REJECT_BAD_NUMBER},
        {TK, "{\"v\":1,\"interval_s\":0}", 0, FM_REJECT_BAD_NUMBER},
        {TK, "{\"v\":1,\"interval_s\":-10}", 0, FM_REJECT_BAD_NUMBER},
        {TK, "{\"v\":1,\"interval_s\":NaN}", 0, FM_REJECT_BAD_NUMBER},
        {TK, "{\"v\":1,\"interval_s\":1e400}", 0, FM_REJECT_BAD_NUMBER},
        {TK, "{\"v\":1,\"requests\":-1}", 0, FM_REJECT_BAD_NUMBER},
        {TK, "{\"v\":1,\"requests\":1.5}", 0, FM_REJECT_BAD_NUMBER},
        {TK, "{\"v\":1,\"requests\":Infinity}", 0, FM_REJECT_BAD_NUMBER},
        {TK, "{\"v\":1,\"requests\":9007199254740993}", 0, FM_REJECT_BAD_NUMBER},
        {TK, "{\"v\":1,\"requests\":5,\"errors\":-1}", 0, FM_REJECT_BAD_NUMBER},
        {TK, "{\"v\":1,\"queue_depth\":-1}", 0, FM_REJECT_BAD_NUMBER},
        {TK, "{\"v\":1,\"in_flight\":-0.5}", 0, FM_REJECT_BAD_NUMBER},
        {TK, "{\"v\":1,\"tokens_per_s\":Infinity}", 0, FM_REJECT_BAD_NUMBER},
        {TK, "{\"v\":1,\"cpu\":NaN}", 0, FM_REJECT_BAD_NUMBER},
        {TK, "{\"v\":1,\"gpu_mem\":-Infinity}", 0, FM_REJECT_BAD_NUMBER},
        {TK, "{\"v\":1,\"latency_ms\":{\"p50\":-1,\"p95\":2,\"p99\":3}}", 0, FM_REJECT_BAD_NUMBER},
        {TK, "{\"v\":1,\"latency_ms\":{\"p50\":1,\"p95\":NaN,\"p99\":3}}", 0, FM_REJECT_BAD_NUMBER},
        {TK, "{\"v\":1,\"latency_hist\":{\"le_ms\":[-1,20],\"counts\":[1,2,3]}}", 0,
         FM_REJECT_BAD_NUMBER},
        {TK, "{\"v\":1,\"latency_hist\":{\"le_ms\":[10,NaN],\"counts\":[1,2,3]}}", 0,
         FM_REJECT_BAD_NUMBER},
        {TK, "{\"v\":1,\"latency_hist\":{\"le_ms\":[10,20],\"counts\":[1,-2,3]}}", 0,
         FM_REJECT_BAD_NUMBER},
        {TK, "{\"v\":1,\"latency_hist\":{\"le_ms\":[10,20],\"counts\":[1,2,3.5]}}", 0,
         FM_REJECT_BAD_NUMBER},
        {TK, "{\"v\":1,\"score_hist\":{\"le\":[0.5,Infinity],\"counts\":[1,2,3]}}", 0,
         FM_REJECT_BAD_NUMBER},
        {TF, "{\"v\":1,\"outcomes\":[[NaN,1]]}", 0, FM_REJECT_BAD_NUMBER},
        {TF, "{\"v\":1,\"outcomes\":[[0.5,NaN]]}", 0, FM_REJECT_BAD_NUMBER},

        /* out_of_range */
        {TK, "{\"v\":1,\"cpu\":1.5}", 0, FM_REJECT_OUT_OF_RANGE},
        {TK, "{\"v\":1,\"gpu_util\":-0.1}", 0, FM_REJECT_OUT_OF_RANGE},
        {TK, "{\"v\":1,\"gpu_mem\":2}", 0, FM_REJECT_OUT_OF_RANGE},
        {TK, "{\"v\":1,\"latency_ms\":{\"p50\":3,\"p95\":2,\"p99\":4}}", 0, FM_REJECT_OUT_OF_RANGE},
        {TK, "{\"v\":1,\"latency_ms\":{\"p50\":1,\"p95\":5,\"p99\":4}}", 0, FM_REJECT_OUT_OF_RANGE},
        {TF, "{\"v\":1,\"outcomes\":[[1.5,1]]}", 0, FM_REJECT_OUT_OF_RANGE},
        {TF, "{\"v\":1,\"outcomes\":[[-0.1,0]]}", 0, FM_REJECT_OUT_OF_RANGE},
        {TF, "{\"v\":1,\"outcomes\":[[0.5,2]]}", 0, FM_REJECT_OUT_OF_RANGE},
        {TF, "{\"v\":1,\"outcomes\":[[0.5,-1]]}", 0, FM_REJECT_OUT_OF_RANGE},
        {TF, "{\"v\":1,\"outcomes\":[[0.5,0.5]]}", 0, FM_REJECT_OUT_OF_RANGE},
        {TF, "{\"v\":1,\"outcomes\":[[0.5,1],[0.2,0],[0.9,3]]}", 0, FM_REJECT_OUT_OF_RANGE},

        /* errors_exceed_requests, whatever the order of the keys */
        {TK, "{\"v\":1,\"requests\":5,\"errors\":6}", 0, FM_REJECT_ERRORS_EXCEED_REQUESTS},
        {TK, "{\"errors\":1,\"requests\":0,\"v\":1}", 0, FM_REJECT_ERRORS_EXCEED_REQUESTS},

        /* timestamp_skew: default limit 300 s around NOW */
        {TK, "{\"v\":1,\"ts\":1700000300.001}", 0, FM_REJECT_TIMESTAMP_SKEW},
        {TK, "{\"v\":1,\"ts\":1699999699.999}", 0, FM_REJECT_TIMESTAMP_SKEW},
        {TK, "{\"v\":1,\"ts\":0}", 0, FM_REJECT_TIMESTAMP_SKEW},
        {TK, "{\"v\":1,\"ts\":1700000000000}", 0, FM_REJECT_TIMESTAMP_SKEW},
        {TK, "{\"v\":1,\"ts\":1e300}", 0, FM_REJECT_TIMESTAMP_SKEW},

        /* bad_histogram */
        {TK, "{\"v\":1,\"latency_hist\":{\"le_ms\":[20,10],\"counts\":[1,2,3]}}", 0,
         FM_REJECT_BAD_HISTOGRAM},
        {TK, "{\"v\":1,\"latency_hist\":{\"le_ms\":[10,10],\"counts\":[1,2,3]}}", 0,
         FM_REJECT_BAD_HISTOGRAM},
        {TK, "{\"v\":1,\"latency_hist\":{\"le_ms\":[10,20],\"counts\":[1,2]}}", 0,
         FM_REJECT_BAD_HISTOGRAM},
        {TK, "{\"v\":1,\"latency_hist\":{\"le_ms\":[10,20],\"counts\":[1,2,3,4]}}", 0,
         FM_REJECT_BAD_HISTOGRAM},
        {TK, "{\"v\":1,\"latency_hist\":{\"le_ms\":[10,20]}}", 0, FM_REJECT_BAD_HISTOGRAM},
        {TK, "{\"v\":1,\"latency_hist\":{\"counts\":[1]}}", 0, FM_REJECT_BAD_HISTOGRAM},
        {TK, "{\"v\":1,\"latency_hist\":{}}", 0, FM_REJECT_BAD_HISTOGRAM},
        {TK, "{\"v\":1,\"latency_hist\":{\"le_ms\":[],\"counts\":[1]}}", 0,
         FM_REJECT_BAD_HISTOGRAM},
        {TK, "{\"v\":1,\"latency_hist\":{\"le_ms\":10,\"counts\":[1,2]}}", 0,
         FM_REJECT_BAD_HISTOGRAM},
        {TK, "{\"v\":1,\"latency_hist\":{\"le_ms\":[10],\"counts\":null}}", 0,
         FM_REJECT_BAD_HISTOGRAM},
        {TK, "{\"v\":1,\"latency_hist\":{\"le_ms\":[\"10\"],\"counts\":[1,2]}}", 0,
         FM_REJECT_BAD_HISTOGRAM},
        {TK, "{\"v\":1,\"latency_hist\":{\"le_ms\":[10],\"counts\":[1,\"2\"]}}", 0,
         FM_REJECT_BAD_HISTOGRAM},
        {TK, "{\"v\":1,\"latency_hist\":{\"le_ms\":[10],\"counts\":[1,null]}}", 0,
         FM_REJECT_BAD_HISTOGRAM},
        {TK, "{\"v\":1,\"score_hist\":{\"le_ms\":[0.5],\"counts\":[1,2]}}", 0,
         FM_REJECT_BAD_HISTOGRAM},
        {TK, "{\"v\":1,\"score_hist\":{\"le\":[0.5,0.1],\"counts\":[1,2,3]}}", 0,
         FM_REJECT_BAD_HISTOGRAM},

        /* bad_status */
        {TH, "{\"v\":1,\"status\":\"OK\"}", 0, FM_REJECT_BAD_STATUS},
        {TH, "{\"v\":1,\"status\":\"up\"}", 0, FM_REJECT_BAD_STATUS},
        {TH, "{\"v\":1,\"status\":\"\"}", 0, FM_REJECT_BAD_STATUS},
        {TH, "{\"v\":1,\"status\":\"ok \"}", 0, FM_REJECT_BAD_STATUS},
        {TH, "{\"v\":1,\"status\":\"unknown\"}", 0, FM_REJECT_BAD_STATUS},

        /* field_too_long: reason over 256 bytes */
        {TH, "{\"v\":1,\"status\":\"down\",\"reason\":\"" X256 "x\"}", 0, FM_REJECT_FIELD_TOO_LONG},
        {TH, "{\"v\":1,\"status\":\"down\",\"reason\":\"" X256 X256 "\"}", 0,
         FM_REJECT_FIELD_TOO_LONG},

        /* too_many_items */
        {TK, "{\"v\":1,\"latency_hist\":{\"le_ms\":[" BOUNDS65 "],\"counts\":[1]}}", 0,
         FM_REJECT_TOO_MANY_ITEMS},
        {TK, "{\"v\":1,\"score_hist\":{\"le\":[" BOUNDS65 "],\"counts\":[]}}", 0,
         FM_REJECT_TOO_MANY_ITEMS},
};

static void test_reject_table(void **state)
{
        struct fixture *f = *state;
        bool covered[_FM_REJECT_MAX] = {false};

        for (size_t i = 0; i < ARRAY_SIZE(reject_rows); i++) {
                const struct reject_row *row = &reject_rows[i];
                size_t len = row->len ? row->len : strlen(row->payload);
                enum fm_reject reason = FM_REJECT_NONE;
                int r = decode_n(f->d, row->topic, row->payload, len, NOW, f->ev, &reason);
                if (r != -EBADMSG || reason != row->reason)
                        fail_msg("row %zu (%s %.80s): got %d/%s, want %s", i, row->topic,
                                 row->payload, r, r == -EBADMSG ? fm_reject_name(reason) : "-",
                                 fm_reject_name(row->reason));
                covered[row->reason] = true;

                /* the same decoder goes on decoding after any rejection */
                expect_ok(f, TK, "{\"v\":1,\"seq\":7}");
                assert_true(f->ev->fields == FM_F_SEQ);
                assert_int_equal(f->ev->seq, 7);
        }
        for (int r = FM_REJECT_TOO_LARGE; r <= FM_REJECT_TOO_MANY_ITEMS; r++)
                if (!covered[r])
                        fail_msg("no row for %s", fm_reject_name(r));
}

/* ---- names ---- */

static void test_reject_names(void **state)
{
        (void)state;
        assert_string_equal(fm_reject_name(FM_REJECT_NONE), "none");
        for (int i = 0; i < _FM_REJECT_MAX; i++) {
                const char *n = fm_reject_name(i);
                assert_non_null(n);
                assert_true(n[0] != '\0');
                for (const char *p = n; *p; p++)
                        assert_true((*p >= 'a' && *p <= 'z') || *p == '_');
                for (int j = 0; j < i; j++)
                        assert_true(strcmp(n, fm_reject_name(j)) != 0);
        }
        assert_null(fm_reject_name(_FM_REJECT_MAX));
        assert_null(fm_reject_name((enum fm_reject) - 1));
        /* spot checks: metric labels must never change */
        assert_string_equal(fm_reject_name(FM_REJECT_TOO_LARGE), "too_large");
        assert_string_equal(fm_reject_name(FM_REJECT_UNKNOWN_SCHEMA_VERSION),
                            "unknown_schema_version");
        assert_string_equal(fm_reject_name(FM_REJECT_ERRORS_EXCEED_REQUESTS),
                            "errors_exceed_requests");
        assert_string_equal(fm_reject_name(FM_REJECT_TOO_MANY_ITEMS), "too_many_items");
        assert_string_equal(fm_reject_name(FM_REJECT_INSTANCE_CAP), "instance_cap");
}

static void test_other_names(void **state)
{
        (void)state;
        assert_string_equal(fm_event_kind_name(FM_EVENT_HEALTH), "health");
        assert_string_equal(fm_event_kind_name(FM_EVENT_KPI), "kpi");
        assert_string_equal(fm_event_kind_name(FM_EVENT_FEEDBACK), "feedback");
        assert_null(fm_event_kind_name(_FM_EVENT_KIND_MAX));

        assert_string_equal(fm_health_status_name(FM_HEALTH_UNKNOWN), "unknown");
        assert_string_equal(fm_health_status_name(FM_HEALTH_OK), "ok");
        assert_string_equal(fm_health_status_name(FM_HEALTH_DEGRADED), "degraded");
        assert_string_equal(fm_health_status_name(FM_HEALTH_DOWN), "down");
        assert_null(fm_health_status_name(FM_HEALTH_DOWN + 1));

        static const char *const gauges[] = {"queue_depth", "in_flight", "cpu",
                                             "gpu_util",    "gpu_mem",   "tokens_per_s"};
        assert_int_equal(ARRAY_SIZE(gauges), _FM_GAUGE_MAX);
        for (int g = 0; g < _FM_GAUGE_MAX; g++)
                assert_string_equal(fm_gauge_name(g), gauges[g]);
        assert_null(fm_gauge_name(_FM_GAUGE_MAX));
}

static bool name_ok(const char *s)
{
        return fm_name_valid(s, strlen(s));
}

static void test_name_valid(void **state)
{
        (void)state;
        char buf[80];

        assert_true(name_ok("a"));
        assert_true(name_ok("0"));
        assert_true(name_ok("ab"));
        assert_true(name_ok("a-b"));
        assert_true(name_ok("a.b"));
        assert_true(name_ok("a--b..c"));
        assert_true(name_ok("llama-3.1-8b"));
        memset(buf, 'a', 63);
        buf[63] = '\0';
        assert_true(name_ok(buf));
        buf[63] = 'a';
        buf[64] = '\0';
        assert_false(name_ok(buf));

        assert_false(name_ok(""));
        assert_false(fm_name_valid(NULL, 0));
        assert_false(name_ok("-a"));
        assert_false(name_ok("a-"));
        assert_false(name_ok(".a"));
        assert_false(name_ok("a."));
        assert_false(name_ok("-"));
        assert_false(name_ok("."));
        assert_false(name_ok("A"));
        assert_false(name_ok("aBc"));
        assert_false(name_ok("a_b"));
        assert_false(name_ok("_a"));
        assert_false(name_ok("a/b"));
        assert_false(name_ok("a b"));
        assert_false(name_ok("a+"));
        assert_false(name_ok("\xc3\xa9"));
        /* length counts, not the NUL */
        assert_true(fm_name_valid("abc-", 3));
        assert_false(fm_name_valid("ab\0c", 4));
}

static bool version_ok(const char *s)
{
        return fm_version_valid(s, strlen(s));
}

static void test_version_valid(void **state)
{
        (void)state;
        char buf[80];

        assert_true(version_ok("v1"));
        assert_true(version_ok("1.2.3-rc.1_B"));
        assert_true(version_ok("-"));
        assert_true(version_ok("_"));
        assert_true(version_ok("."));
        assert_true(version_ok("ABCxyz0189"));
        memset(buf, 'V', 64);
        buf[64] = '\0';
        assert_true(version_ok(buf));
        buf[64] = 'V';
        buf[65] = '\0';
        assert_false(version_ok(buf));

        assert_false(version_ok(""));
        assert_false(fm_version_valid(NULL, 0));
        assert_false(version_ok("v 1"));
        assert_false(version_ok("v/1"));
        assert_false(version_ok("v+1"));
        assert_false(version_ok("v:1"));
        assert_false(version_ok("v\xc3\xa9"));
        assert_true(fm_version_valid("v1 junk", 2));
        assert_false(fm_version_valid("v\0", 2));
}

/* ---- happy paths ---- */

static void test_health(void **state)
{
        struct fixture *f = *state;

        expect_ok(f, "fleet/dep-a/inst-1/health",
                  "{\"v\":1,\"ts\":1700000001.25,\"seq\":42,\"version\":\"v1.2_rc-3\","
                  "\"status\":\"degraded\",\"ready\":false,\"reason\":\"gpu ecc errors\"}");
        struct fm_event *ev = f->ev;
        assert_int_equal(ev->kind, FM_EVENT_HEALTH);
        assert_string_equal(ev->deployment, "dep-a");
        assert_string_equal(ev->instance, "inst-1");
        assert_int_equal(ev->fields, FM_F_TS | FM_F_SEQ | FM_F_VERSION | FM_F_READY | FM_F_REASON);
        assert_int_equal(ev->ts, NOW + 1250);
        assert_int_equal(ev->seq, 42);
        assert_string_equal(ev->version, "v1.2_rc-3");
        assert_int_equal(ev->status, FM_HEALTH_DEGRADED);
        assert_false(ev->ready);
        assert_string_equal(ev->reason, "gpu ecc errors");
        assert_int_equal(ev->n_outcomes, 0);

        expect_ok(f, TH, "{\"status\":\"ok\",\"v\":1,\"ready\":true}");
        assert_int_equal(ev->status, FM_HEALTH_OK);
        assert_int_equal(ev->fields, FM_F_READY);
        assert_true(ev->ready);
        assert_string_equal(ev->version, "");
        assert_string_equal(ev->reason, "");
        assert_int_equal(ev->ts, NOW);

        expect_ok(f, TH, "{\"v\":1,\"status\":\"down\",\"reason\":\"\"}");
        assert_int_equal(ev->status, FM_HEALTH_DOWN);
        assert_int_equal(ev->fields, FM_F_REASON);
        assert_string_equal(ev->reason, "");

        /* reason of exactly 256 bytes, UTF-8 counted in bytes */
        expect_ok(f, TH, "{\"v\":1,\"status\":\"down\",\"reason\":\"" X256 "\"}");
        assert_int_equal(strlen(ev->reason), 256);
        expect_ok(f, TH, "{\"v\":1,\"status\":\"down\",\"reason\":\"caf\xc3\xa9 \\u00e9\\n\"}");
        assert_string_equal(ev->reason, "caf\xc3\xa9 \xc3\xa9\n");
        expect_reject(f, TH, "{\"v\":1,\"status\":\"down\",\"reason\":\"" X256 "\xc3\xa9\"}",
                      FM_REJECT_FIELD_TOO_LONG);

        /* UTF-8 edges: U+20AC, U+D7FF, U+FFFF, U+1F600, U+40000, U+10FFFF */
        expect_ok(f, TH,
                  "{\"v\":1,\"status\":\"ok\",\"reason\":\"\xe2\x82\xac\xed\x9f\xbf\xef\xbf\xbf"
                  "\xf0\x9f\x98\x80\xf1\x80\x80\x80\xf4\x8f\xbf\xbf\"}");
        assert_int_equal(strlen(ev->reason), 21);
        /* an escaped lone surrogate is U+FFFD to json-c */
        expect_ok(f, TH, "{\"v\":1,\"status\":\"ok\",\"reason\":\"\\ud800\"}");
        assert_string_equal(ev->reason, "\xef\xbf\xbd");
        /* strings the decoder does not keep are not checked */
        expect_ok(f, TH, "{\"v\":1,\"status\":\"ok\",\"x\":\"\xff\",\"\xfe\":1}");
}

static void test_kpi_full(void **state)
{
        struct fixture *f = *state;
        const char *p = "{\"v\":1,\"ts\":1700000000.123,\"seq\":9,\"version\":\"2024-05-01\","
                        "\"interval_s\":10.5,\"requests\":1000,\"errors\":7,"
                        "\"latency_hist\":{\"le_ms\":[5,10,25.5],\"counts\":[100,200,300,400]},"
                        "\"latency_ms\":{\"p99\":250,\"p50\":12.5,\"p95\":80},"
                        "\"queue_depth\":3,\"in_flight\":2.5,\"cpu\":0.75,\"gpu_util\":1,"
                        "\"gpu_mem\":0,\"tokens_per_s\":1234.5,"
                        "\"score_hist\":{\"le\":[-1,0,0.5],\"counts\":[1,2,3,4],\"x\":1},"
                        "\"unknown\":{\"deep\":[1,2,{\"a\":null}]},\"status\":\"bogus\"}";
        expect_ok(f, "fleet/llama-3.1/pod-7.zone-b/kpi", p);
        struct fm_event *ev = f->ev;

        assert_int_equal(ev->kind, FM_EVENT_KPI);
        assert_string_equal(ev->deployment, "llama-3.1");
        assert_string_equal(ev->instance, "pod-7.zone-b");
        uint32_t all = FM_F_TS | FM_F_SEQ | FM_F_VERSION | FM_F_INTERVAL | FM_F_REQUESTS |
                       FM_F_ERRORS | FM_F_LATENCY_HIST | FM_F_LATENCY_MS | FM_F_SCORE_HIST;
        for (int g = 0; g < _FM_GAUGE_MAX; g++)
                all |= FM_F_GAUGE(g);
        assert_int_equal(ev->fields, all);
        assert_int_equal(ev->ts, NOW + 123);
        assert_int_equal(ev->seq, 9);
        assert_string_equal(ev->version, "2024-05-01");
        assert_dbl(ev->interval_s, 10.5);
        assert_int_equal(ev->requests, 1000);
        assert_int_equal(ev->errors, 7);

        assert_int_equal(ev->latency_hist.n, 3);
        assert_dbl(ev->latency_hist.bound[0], 5);
        assert_dbl(ev->latency_hist.bound[1], 10);
        assert_dbl(ev->latency_hist.bound[2], 25.5);
        assert_int_equal(ev->latency_hist.count[0], 100);
        assert_int_equal(ev->latency_hist.count[1], 200);
        assert_int_equal(ev->latency_hist.count[2], 300);
        assert_int_equal(ev->latency_hist.count[3], 400);

        assert_dbl(ev->p50_ms, 12.5);
        assert_dbl(ev->p95_ms, 80);
        assert_dbl(ev->p99_ms, 250);

        assert_dbl(ev->gauge[FM_GAUGE_QUEUE_DEPTH], 3);
        assert_dbl(ev->gauge[FM_GAUGE_IN_FLIGHT], 2.5);
        assert_dbl(ev->gauge[FM_GAUGE_CPU], 0.75);
        assert_dbl(ev->gauge[FM_GAUGE_GPU_UTIL], 1);
        assert_dbl(ev->gauge[FM_GAUGE_GPU_MEM], 0);
        assert_dbl(ev->gauge[FM_GAUGE_TOKENS_PER_S], 1234.5);

        assert_int_equal(ev->score_hist.n, 3);
        assert_dbl(ev->score_hist.bound[0], -1);
        assert_dbl(ev->score_hist.bound[1], 0);
        assert_dbl(ev->score_hist.bound[2], 0.5);
        assert_int_equal(ev->score_hist.count[3], 4);

        /* not meaningful for kpi: ignored, and left at their defaults */
        assert_int_equal(ev->status, FM_HEALTH_UNKNOWN);
        assert_int_equal(ev->n_outcomes, 0);
        assert_string_equal(ev->reason, "");
}

static void test_kpi_heartbeat(void **state)
{
        struct fixture *f = *state;

        /* after a full event, a heartbeat must not inherit anything flagged */
        expect_ok(f, TK, "{\"v\":1,\"seq\":1,\"version\":\"v9\",\"requests\":5,\"errors\":5}");
        expect_ok(f, TK, "{\"v\":1}");
        assert_int_equal(f->ev->kind, FM_EVENT_KPI);
        assert_int_equal(f->ev->fields, 0);
        assert_int_equal(f->ev->ts, NOW);
        assert_string_equal(f->ev->version, "");
        assert_string_equal(f->ev->deployment, "dep-a");
        assert_string_equal(f->ev->instance, "inst-1");

        expect_ok(f, TK, " \t\r\n{ \"v\" : 1.0 } \n\t");
        assert_int_equal(f->ev->fields, 0);
        expect_ok(f, TK, "{\"v\":1e0}");
        expect_ok(f, TK, "{\"v\":1,\"requests\":0,\"errors\":0}");
        assert_int_equal(f->ev->fields, FM_F_REQUESTS | FM_F_ERRORS);
        expect_ok(f, TK, "{\"v\":1,\"requests\":3}");
        assert_int_equal(f->ev->fields, FM_F_REQUESTS);
        expect_ok(f, TK, "{\"v\":1,\"latency_ms\":{\"p50\":1,\"p95\":1,\"p99\":1}}");
        assert_dbl(f->ev->p99_ms, 1);
        expect_ok(f, TK, "{\"v\":1,\"latency_ms\":{\"p90\":9,\"p50\":1,\"p95\":2,\"p99\":3}}");
        assert_dbl(f->ev->p95_ms, 2);
        expect_ok(f, TK, "{\"v\":1,\"latency_hist\":{\"le_ms\":[0],\"counts\":[0,0]}}");
        assert_int_equal(f->ev->latency_hist.n, 1);
}

static void test_feedback(void **state)
{
        struct fixture *f = *state;

        expect_ok(f, TF,
                  "{\"v\":1,\"version\":\"v2\",\"outcomes\":[[0.9,1],[0.1,0],[0,0.0],[1,1.0],"
                  "[0.5,1]],\"requests\":\"ignored\"}");
        struct fm_event *ev = f->ev;
        assert_int_equal(ev->kind, FM_EVENT_FEEDBACK);
        assert_int_equal(ev->fields, FM_F_VERSION);
        assert_int_equal(ev->n_outcomes, 5);
        assert_dbl(ev->outcome[0].score, 0.9);
        assert_int_equal(ev->outcome[0].label, 1);
        assert_dbl(ev->outcome[1].score, 0.1);
        assert_int_equal(ev->outcome[1].label, 0);
        assert_dbl(ev->outcome[2].score, 0);
        assert_int_equal(ev->outcome[2].label, 0);
        assert_dbl(ev->outcome[3].score, 1);
        assert_int_equal(ev->outcome[3].label, 1);
        assert_int_equal(ev->outcome[4].label, 1);
        assert_int_equal(ev->status, FM_HEALTH_UNKNOWN);
}

/* ---- time ---- */

static void test_ts(void **state)
{
        struct fixture *f = *state;

        expect_ok(f, TK, "{\"v\":1,\"ts\":1700000000}");
        assert_int_equal(f->ev->ts, NOW);
        assert_true(f->ev->fields & FM_F_TS);
        expect_ok(f, TK, "{\"v\":1,\"ts\":1700000000.5}");
        assert_int_equal(f->ev->ts, NOW + 500);
        expect_ok(f, TK, "{\"v\":1,\"ts\":1700000000.0019}");
        assert_int_equal(f->ev->ts, NOW + 1);
        expect_ok(f, TK, "{\"v\":1,\"ts\":1.7e9}");
        assert_int_equal(f->ev->ts, NOW);

        /* absent: now, and no FM_F_TS */
        expect_ok(f, TK, "{\"v\":1}");
        assert_int_equal(f->ev->ts, NOW);
        assert_false(f->ev->fields & FM_F_TS);
        enum fm_reject reason;
        assert_int_equal(decode_n(f->d, TK, "{\"v\":1}", 7, 12345, f->ev, &reason), 0);
        assert_int_equal(f->ev->ts, 12345);

        /* skew: exactly at the limit is accepted, 1 ms over is not */
        expect_ok(f, TK, "{\"v\":1,\"ts\":1700000300}");
        assert_int_equal(f->ev->ts, NOW + FM_DECODER_DEFAULT_MAX_SKEW_MS);
        expect_ok(f, TK, "{\"v\":1,\"ts\":1699999700}");
        assert_int_equal(f->ev->ts, NOW - FM_DECODER_DEFAULT_MAX_SKEW_MS);
        expect_ok(f, TK, "{\"v\":1,\"ts\":1700000300.000999}");
        expect_reject(f, TK, "{\"v\":1,\"ts\":1700000300.001}", FM_REJECT_TIMESTAMP_SKEW);
        expect_ok(f, TK, "{\"v\":1,\"ts\":1699999700.000}");
        expect_reject(f, TK, "{\"v\":1,\"ts\":1699999699.999}", FM_REJECT_TIMESTAMP_SKEW);
}

/*
 * Decimal fractions that have no exact double must still give the
 * millisecond written: 1.005 * 1000 is 1004.9999999999999 in doubles. With
 * a skew of 0 only the exact millisecond is accepted.
 */
static void test_ts_exact_ms(void **state)
{
        (void)state;
        struct fm_decoder_config cfg;
        fm_decoder_config_default(&cfg);
        cfg.max_skew = 0;
        struct fm_decoder *d;
        assert_int_equal(fm_decoder_new(&cfg, &d), 0);
        struct fm_event *ev = malloc(sizeof(*ev));
        assert_non_null(ev);
        enum fm_reject reason;
        char p[64];

        for (int s = 0; s < 3; s++)
                for (int ms = 0; ms < 1000; ms++) {
                        int n = snprintf(p, sizeof(p), "{\"v\":1,\"ts\":%d.%03d}", s, ms);
                        assert_true(n > 0 && (size_t)n < sizeof(p));
                        if (decode_n(d, TK, p, (size_t)n, s * 1000 + ms, ev, &reason) != 0)
                                fail_msg("%s: %s", p, fm_reject_name(reason));
                        assert_int_equal(ev->ts, s * 1000 + ms);
                }
        for (int ms = 0; ms < 1000; ms++) {
                int n = snprintf(p, sizeof(p), "{\"v\":1,\"ts\":1700000000.%03d}", ms);
                assert_true(n > 0 && (size_t)n < sizeof(p));
                assert_int_equal(decode_n(d, TK, p, (size_t)n, NOW + ms, ev, &reason), 0);
        }
        /* below a millisecond: toward -inf */
        const char *sub = "{\"v\":1,\"ts\":0.0005}";
        assert_int_equal(decode_n(d, TK, sub, strlen(sub), 0, ev, &reason), 0);
        assert_int_equal(ev->ts, 0);
        sub = "{\"v\":1,\"ts\":1.9999}";
        assert_int_equal(decode_n(d, TK, sub, strlen(sub), 1999, ev, &reason), 0);
        assert_int_equal(ev->ts, 1999);

        free(ev);
        fm_decoder_free(d);
}

/* ---- topics and configuration ---- */

static void test_prefix_with_slash(void **state)
{
        (void)state;
        struct fm_decoder_config cfg;
        fm_decoder_config_default(&cfg);
        cfg.prefix = "a/b";
        struct fm_decoder *d;
        assert_int_equal(fm_decoder_new(&cfg, &d), 0);
        struct fixture f = {.d = d, .ev = malloc(sizeof(struct fm_event))};
        assert_non_null(f.ev);

        expect_ok(&f, "a/b/dep/inst/kpi", "{\"v\":1}");
        assert_string_equal(f.ev->deployment, "dep");
        assert_string_equal(f.ev->instance, "inst");
        expect_reject(&f, "a/b/c/dep/inst/kpi", "{\"v\":1}", FM_REJECT_BAD_TOPIC);
        expect_reject(&f, "a/b/dep/inst", "{\"v\":1}", FM_REJECT_BAD_TOPIC);
        expect_reject(&f, "a/b/dep/inst/kpi/x", "{\"v\":1}", FM_REJECT_BAD_TOPIC);
        expect_reject(&f, "a/dep/inst/kpi", "{\"v\":1}", FM_REJECT_BAD_TOPIC);
        expect_reject(&f, "a/bdep/inst/kpi", "{\"v\":1}", FM_REJECT_BAD_TOPIC);
        expect_reject(&f, "a/b", "{\"v\":1}", FM_REJECT_BAD_TOPIC);
        expect_reject(&f, "fleet/dep/inst/kpi", "{\"v\":1}", FM_REJECT_BAD_TOPIC);

        /* topic not NUL-terminated: only topic_len bytes count */
        enum fm_reject reason;
        assert_int_equal(fm_decoder_decode(d, "a/b/dep/inst/kpi/garbage", 16, "{\"v\":1}x", 7, NOW,
                                           f.ev, &reason),
                         0);
        assert_int_equal(f.ev->kind, FM_EVENT_KPI);

        free(f.ev);
        fm_decoder_free(d);
}

static void test_decoder_config(void **state)
{
        (void)state;
        struct fm_decoder_config cfg;
        struct fm_decoder *d = NULL;
        char longp[FM_PREFIX_MAX + 2];

        fm_decoder_config_default(&cfg);
        assert_int_equal(cfg.max_payload, FM_DECODER_DEFAULT_MAX_PAYLOAD);
        assert_int_equal(cfg.max_skew, FM_DECODER_DEFAULT_MAX_SKEW_MS);
        assert_string_equal(cfg.prefix, "fleet");
        assert_int_equal(fm_decoder_new(&cfg, &d), 0);
        assert_non_null(d);
        assert_null(fm_decoder_free(d));
        assert_null(fm_decoder_free(NULL));

        struct fm_decoder *untouched = (struct fm_decoder *)&cfg;
        d = untouched;
        fm_decoder_config_default(&cfg);
        cfg.prefix = NULL;
        assert_int_equal(fm_decoder_new(&cfg, &d), -EINVAL);
        cfg.prefix = "";
        assert_int_equal(fm_decoder_new(&cfg, &d), -EINVAL);
        cfg.prefix = "fleet/";
        assert_int_equal(fm_decoder_new(&cfg, &d), -EINVAL);
        cfg.prefix = "fleet/+";
        assert_int_equal(fm_decoder_new(&cfg, &d), -EINVAL);
        cfg.prefix = "#";
        assert_int_equal(fm_decoder_new(&cfg, &d), -EINVAL);
        memset(longp, 'p', FM_PREFIX_MAX + 1);
        longp[FM_PREFIX_MAX + 1] = '\0';
        cfg.prefix = longp;
        assert_int_equal(fm_decoder_new(&cfg, &d), -EINVAL);
        fm_decoder_config_default(&cfg);
        cfg.max_payload = 0;
        assert_int_equal(fm_decoder_new(&cfg, &d), -EINVAL);
        fm_decoder_config_default(&cfg);
        cfg.max_payload = (size_t)INT_MAX + 1;
        assert_int_equal(fm_decoder_new(&cfg, &d), -EINVAL);
        fm_decoder_config_default(&cfg);
        cfg.max_skew = -1;
        assert_int_equal(fm_decoder_new(&cfg, &d), -EINVAL);
        assert_int_equal(fm_decoder_new(NULL, &d), -EINVAL);
        fm_decoder_config_default(&cfg);
        assert_int_equal(fm_decoder_new(&cfg, NULL), -EINVAL);
        assert_ptr_equal(d, untouched); /* ret_ untouched on failure */

        /* the prefix is copied */
        longp[FM_PREFIX_MAX] = '\0';
        cfg.prefix = longp;
        assert_int_equal(fm_decoder_new(&cfg, &d), 0);
        longp[0] = 'q';
        char topic[FM_PREFIX_MAX + 32];
        memset(topic, 'p', FM_PREFIX_MAX);
        memcpy(topic + FM_PREFIX_MAX, "/d/i/kpi", 9);
        struct fm_event *ev = malloc(sizeof(*ev));
        assert_non_null(ev);
        enum fm_reject reason;
        assert_int_equal(decode(d, topic, "{\"v\":1}", ev, &reason), 0);
        free(ev);
        fm_decoder_free(d);
}

static void test_null_args(void **state)
{
        struct fixture *f = *state;
        enum fm_reject reason = FM_REJECT_NONE;
        assert_int_equal(fm_decoder_decode(NULL, TK, strlen(TK), "{}", 2, NOW, f->ev, &reason),
                         -EINVAL);
        assert_int_equal(fm_decoder_decode(f->d, TK, strlen(TK), "{}", 2, NOW, NULL, &reason),
                         -EINVAL);
        assert_int_equal(fm_decoder_decode(f->d, TK, strlen(TK), "{}", 2, NOW, f->ev, NULL),
                         -EINVAL);
        assert_int_equal(fm_decoder_decode(f->d, NULL, 3, "{}", 2, NOW, f->ev, &reason), -EINVAL);
        assert_int_equal(fm_decoder_decode(f->d, TK, strlen(TK), NULL, 2, NOW, f->ev, &reason),
                         -EINVAL);
        assert_int_equal(reason, FM_REJECT_NONE);
        /* empty topic and payload are ordinary rejections */
        assert_int_equal(fm_decoder_decode(f->d, NULL, 0, NULL, 0, NOW, f->ev, &reason), -EBADMSG);
        assert_int_equal(reason, FM_REJECT_BAD_TOPIC);
        assert_int_equal(fm_decoder_decode(f->d, TK, strlen(TK), NULL, 0, NOW, f->ev, &reason),
                         -EBADMSG);
        assert_int_equal(reason, FM_REJECT_MALFORMED_JSON);
}

/* ---- limits ---- */

static void test_size_limit(void **state)
{
        (void)state;
        struct fm_decoder_config cfg;
        fm_decoder_config_default(&cfg);
        cfg.max_payload = 64;
        struct fm_decoder *d;
        assert_int_equal(fm_decoder_new(&cfg, &d), 0);
        struct fm_event *ev = malloc(sizeof(*ev));
        assert_non_null(ev);
        enum fm_reject reason;
        char p[66];

        memset(p, ' ', sizeof(p));
        memcpy(p, "{\"v\":1}", 7);
        assert_int_equal(decode_n(d, TK, p, 64, NOW, ev, &reason), 0);
        assert_int_equal(decode_n(d, TK, p, 65, NOW, ev, &reason), -EBADMSG);
        assert_int_equal(reason, FM_REJECT_TOO_LARGE);
        free(ev);
        fm_decoder_free(d);
}

/* Appends to a buffer, failing the test if it would not fit. */
__attribute__((format(printf, 4, 5))) static void append(char *buf, size_t size, size_t *len,
                                                         const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(buf + *len, size - *len, fmt, ap);
        va_end(ap);
        assert_true(n >= 0 && (size_t)n < size - *len);
        *len += (size_t)n;
}

static void test_item_caps(void **state)
{
        (void)state;
        struct fm_decoder_config cfg;
        fm_decoder_config_default(&cfg);
        struct fm_decoder *d;
        assert_int_equal(fm_decoder_new(&cfg, &d), 0);
        struct fm_event *ev = malloc(sizeof(*ev));
        assert_non_null(ev);
        enum fm_reject reason;
        size_t size = 32 * 1024, len;
        char *p = malloc(size);
        assert_non_null(p);

        for (int nb = FM_HIST_MAX_BOUNDS; nb <= FM_HIST_MAX_BOUNDS + 1; nb++) {
                len = 0;
                append(p, size, &len, "{\"v\":1,\"latency_hist\":{\"le_ms\":[");
                for (int i = 0; i < nb; i++)
                        append(p, size, &len, "%s%d", i ? "," : "", (i + 1) * 10);
                append(p, size, &len, "],\"counts\":[");
                for (int i = 0; i <= nb; i++)
                        append(p, size, &len, "%s%d", i ? "," : "", i);
                append(p, size, &len, "]}}");
                int r = decode_n(d, TK, p, len, NOW, ev, &reason);
                if (nb == FM_HIST_MAX_BOUNDS) {
                        assert_int_equal(r, 0);
                        assert_int_equal(ev->latency_hist.n, FM_HIST_MAX_BOUNDS);
                        assert_dbl(ev->latency_hist.bound[FM_HIST_MAX_BOUNDS - 1],
                                   FM_HIST_MAX_BOUNDS * 10);
                        assert_int_equal(ev->latency_hist.count[FM_HIST_MAX_BOUNDS],
                                         FM_HIST_MAX_BOUNDS);
                } else {
                        assert_int_equal(r, -EBADMSG);
                        assert_int_equal(reason, FM_REJECT_TOO_MANY_ITEMS);
                }
        }

        for (int no = FM_OUTCOMES_MAX; no <= FM_OUTCOMES_MAX + 1; no++) {
                len = 0;
                append(p, size, &len, "{\"v\":1,\"outcomes\":[");
                for (int i = 0; i < no; i++)
                        append(p, size, &len, "%s[0.%03d,%d]", i ? "," : "", i % 1000, i & 1);
                append(p, size, &len, "]}");
                int r = decode_n(d, TF, p, len, NOW, ev, &reason);
                if (no == FM_OUTCOMES_MAX) {
                        assert_int_equal(r, 0);
                        assert_int_equal(ev->n_outcomes, FM_OUTCOMES_MAX);
                        assert_dbl(ev->outcome[FM_OUTCOMES_MAX - 1].score, 0.023);
                        assert_int_equal(ev->outcome[FM_OUTCOMES_MAX - 1].label, 1);
                } else {
                        assert_int_equal(r, -EBADMSG);
                        assert_int_equal(reason, FM_REJECT_TOO_MANY_ITEMS);
                }
        }
        free(p);
        free(ev);
        fm_decoder_free(d);
}

static void test_numbers(void **state)
{
        struct fixture *f = *state;

        /* seq: any non-negative JSON integer, or an integral double up to 2^53 */
        expect_ok(f, TK, "{\"v\":1,\"seq\":0}");
        assert_int_equal(f->ev->seq, 0);
        expect_ok(f, TK, "{\"v\":1,\"seq\":18446744073709551615}");
        assert_true(f->ev->seq == UINT64_MAX);
        expect_ok(f, TK, "{\"v\":1,\"seq\":9223372036854775807}");
        assert_true(f->ev->seq == INT64_MAX);
        expect_ok(f, TK, "{\"v\":1,\"seq\":9223372036854775808}");
        assert_true(f->ev->seq == (uint64_t)INT64_MAX + 1);
        expect_ok(f, TK, "{\"v\":1,\"seq\":3.0}");
        assert_int_equal(f->ev->seq, 3);
        expect_ok(f, TK, "{\"v\":1,\"seq\":1e3}");
        assert_int_equal(f->ev->seq, 1000);
        expect_ok(f, TK, "{\"v\":1,\"seq\":9007199254740992.0}");
        assert_true(f->ev->seq == UINT64_C(9007199254740992));
        expect_ok(f, TK, "{\"v\":1,\"seq\":-0}");
        assert_int_equal(f->ev->seq, 0);
        expect_ok(f, TK, "{\"v\":1,\"seq\":-0.0}");
        assert_int_equal(f->ev->seq, 0);

        /* counts: capped at 2^53 */
        expect_ok(f, TK, "{\"v\":1,\"requests\":9007199254740992,\"errors\":2.0}");
        assert_true(f->ev->requests == UINT64_C(9007199254740992));
        assert_int_equal(f->ev->errors, 2);
        expect_reject(f, TK, "{\"v\":1,\"requests\":18446744073709551615}", FM_REJECT_BAD_NUMBER);
        expect_reject(f, TK, "{\"v\":1,\"requests\":-9223372036854775808}", FM_REJECT_BAD_NUMBER);

        expect_ok(f, TK, "{\"v\":1,\"interval_s\":1e-9}");
        assert_dbl(f->ev->interval_s, 1e-9);
        expect_ok(f, TK, "{\"v\":1,\"cpu\":0,\"gpu_util\":1.0,\"gpu_mem\":1e-3}");
        assert_dbl(f->ev->gauge[FM_GAUGE_GPU_MEM], 1e-3);
        expect_ok(f, TK, "{\"v\":1,\"queue_depth\":0,\"tokens_per_s\":1e12}");

        /* non-finite numbers in fields we do not read are not ours to judge */
        expect_ok(f, TK, "{\"v\":1,\"extra\":NaN,\"more\":[Infinity]}");
}

static void test_ignored_fields(void **state)
{
        struct fixture *f = *state;

        /* fields of other kinds are ignored, however wrong */
        expect_ok(f, TK, "{\"v\":1,\"outcomes\":\"x\",\"ready\":3,\"reason\":[],\"status\":0}");
        assert_int_equal(f->ev->fields, 0);
        expect_ok(f, TH,
                  "{\"v\":1,\"status\":\"ok\",\"requests\":-1,\"errors\":9,\"cpu\":7,"
                  "\"latency_hist\":1,\"latency_ms\":2,\"interval_s\":0,\"outcomes\":{}}");
        assert_int_equal(f->ev->fields, 0);
        expect_ok(f, TF,
                  "{\"v\":1,\"outcomes\":[[0,0]],\"status\":\"nope\",\"ready\":\"x\","
                  "\"score_hist\":[],\"tokens_per_s\":-1,\"queue_depth\":null}");
        assert_int_equal(f->ev->fields, 0);

        /* unknown keys, including near misses of known ones */
        expect_ok(f, TK,
                  "{\"v\":1,\"vv\":2,\"Ts\":\"x\",\"seqs\":-1,\"versions\":1,\"cpu_\":9,"
                  "\"\":null,\"q\":1,\"latency\":{},\"_x\":{\"a\":[1,{\"b\":2}]},\"tokens\":-1,"
                  "\"score\":-1,\"in\":-1,\"gpu\":-1,\"gpu_memory\":-1,\"out\":-1,\"err\":-1,"
                  "\"req\":-1,\"interval\":-1,\"queue\":-1,\"cpus\":-1}");
        assert_int_equal(f->ev->fields, 0);
        expect_ok(f, TH, "{\"v\":1,\"status\":\"ok\",\"stat\":1,\"ready_\":1,\"reasons\":1}");
        assert_int_equal(f->ev->fields, 0);
        expect_ok(f, TF, "{\"v\":1,\"outcomes\":[[1,1]],\"outcome\":1,\"other\":1}");
        assert_int_equal(f->ev->n_outcomes, 1);

        /* duplicate keys: json-c keeps the last one */
        expect_ok(f, TK, "{\"v\":1,\"seq\":1,\"seq\":2}");
        assert_int_equal(f->ev->seq, 2);
        expect_reject(f, TK, "{\"v\":1,\"v\":2}", FM_REJECT_UNKNOWN_SCHEMA_VERSION);
}

/*
 * Many events through one decoder, each rejection followed by a good event:
 * the tokener must be fully reset whatever state an error left it in
 * (inside a string, a number, an array, at depth).
 */
static void test_reuse(void **state)
{
        struct fixture *f = *state;
        static const char *const bad[] = {
                "{\"v\":1,\"reason\":\"unterminated",
                "{\"v\":1,\"requests\":12",
                "[[[[[[[[",
                "{\"v\":1,\"x\":[1,2,",
                "{\"v\":1}}",
                "\"",
                "{\"v\":1,\"x\":\"\\u12",
        };
        enum fm_reject reason;
        char p[128];

        for (int i = 0; i < 2000; i++) {
                const char *b = bad[(size_t)i % ARRAY_SIZE(bad)];
                assert_int_equal(decode(f->d, TK, b, f->ev, &reason), -EBADMSG);
                assert_int_equal(reason, FM_REJECT_MALFORMED_JSON);

                int n = snprintf(p, sizeof(p), "{\"v\":1,\"seq\":%d,\"requests\":%d,\"errors\":%d}",
                                 i, i + 1, i / 2);
                assert_true(n > 0 && (size_t)n < sizeof(p));
                assert_int_equal(decode_n(f->d, TK, p, (size_t)n, NOW, f->ev, &reason), 0);
                assert_int_equal(f->ev->seq, i);
                assert_int_equal(f->ev->requests, i + 1);
                assert_int_equal(f->ev->errors, i / 2);
        }
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_reject_table, setup, teardown),
                cmocka_unit_test(test_reject_names),
                cmocka_unit_test(test_other_names),
                cmocka_unit_test(test_name_valid),
                cmocka_unit_test(test_version_valid),
                cmocka_unit_test_setup_teardown(test_health, setup, teardown),
                cmocka_unit_test_setup_teardown(test_kpi_full, setup, teardown),
                cmocka_unit_test_setup_teardown(test_kpi_heartbeat, setup, teardown),
                cmocka_unit_test_setup_teardown(test_feedback, setup, teardown),
                cmocka_unit_test_setup_teardown(test_ts, setup, teardown),
                cmocka_unit_test(test_ts_exact_ms),
                cmocka_unit_test(test_prefix_with_slash),
                cmocka_unit_test(test_decoder_config),
                cmocka_unit_test_setup_teardown(test_null_args, setup, teardown),
                cmocka_unit_test(test_size_limit),
                cmocka_unit_test(test_item_caps),
                cmocka_unit_test_setup_teardown(test_numbers, setup, teardown),
                cmocka_unit_test_setup_teardown(test_ignored_fields, setup, teardown),
                cmocka_unit_test_setup_teardown(test_reuse, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
