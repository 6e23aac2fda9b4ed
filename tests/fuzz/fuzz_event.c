/* SPDX-License-Identifier: MIT */

/*
 * Fuzz target for the event decoder.
 *
 * Input: byte 0 is the topic length L (clamped to what is left), then L
 * bytes of topic, then the payload. The decoder uses the default prefix
 * "fleet", so seeds start with e.g. "\x16fleet/dep-a/inst-1/kpi".
 *
 * Each input is decoded twice with one decoder, then a known good event:
 * the two results must agree, and the good event must decode whatever
 * state the input left the tokener in. Every result is checked against the
 * contract of event.h; a violation aborts.
 *
 * Built with -fsanitize=fuzzer this is a libFuzzer target. Built with
 * -DFM_FUZZ_MAIN it has a main() that replays the files (or the files in
 * the directories) named on the command line: a regression test over the
 * seed corpus in tests/fuzz/corpus/event/.
 */

#if !defined(_GNU_SOURCE) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L /* stat, opendir */
#endif

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "event.h"

#define NOW INT64_C(1700000000000)
#define GOOD_TOPIC "fleet/dep-a/inst-1/kpi"
#define GOOD_PAYLOAD "{\"v\":1,\"seq\":1,\"requests\":2,\"errors\":1}"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define check(cond)                                                                                \
        do {                                                                                       \
                if (!(cond)) {                                                                     \
                        fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__,       \
                                #cond);                                                            \
                        abort();                                                                   \
                }                                                                                  \
        } while (0)

static bool str_ok(const char *s, size_t max)
{
        return memchr(s, '\0', max + 1) != NULL;
}

static void check_hist(const struct fm_hist *h, bool nonneg)
{
        check(h->n >= 1 && h->n <= FM_HIST_MAX_BOUNDS);
        for (uint32_t i = 0; i < h->n; i++) {
                check(isfinite(h->bound[i]));
                check(!nonneg || h->bound[i] >= 0);
                check(i == 0 || h->bound[i] > h->bound[i - 1]);
        }
        for (uint32_t i = 0; i <= h->n; i++)
                check(h->count[i] <= (UINT64_C(1) << 53));
}

static void check_event(const struct fm_event *ev, fm_ms now, fm_ms skew)
{
        check(ev->kind >= FM_EVENT_HEALTH && ev->kind < _FM_EVENT_KIND_MAX);
        check(str_ok(ev->deployment, FM_NAME_MAX));
        check(str_ok(ev->instance, FM_NAME_MAX));
        check(fm_name_valid(ev->deployment, strlen(ev->deployment)));
        check(fm_name_valid(ev->instance, strlen(ev->instance)));
        check(str_ok(ev->version, FM_VERSION_MAX));
        if (ev->fields & FM_F_VERSION)
                check(fm_version_valid(ev->version, strlen(ev->version)));
        else
                check(ev->version[0] == '\0');
        check((ev->fields & ~((FM_F_SCORE_HIST << 1) - 1)) == 0);
        if (ev->fields & FM_F_TS)
                check(ev->ts >= now - skew && ev->ts <= now + skew && ev->ts >= 0);
        else
                check(ev->ts == now);
        check(str_ok(ev->reason, FM_REASON_MAX));
        if (!(ev->fields & FM_F_REASON))
                check(ev->reason[0] == '\0');

        switch (ev->kind) {
        case FM_EVENT_HEALTH:
                check(ev->status >= FM_HEALTH_OK && ev->status <= FM_HEALTH_DOWN);
                check((ev->fields &
                       ~(FM_F_SEQ | FM_F_VERSION | FM_F_TS | FM_F_READY | FM_F_REASON)) == 0);
                check(ev->n_outcomes == 0);
                break;
        case FM_EVENT_KPI:
                check(ev->status == FM_HEALTH_UNKNOWN);
                check(ev->n_outcomes == 0);
                check((ev->fields & (FM_F_READY | FM_F_REASON)) == 0);
                if (ev->fields & FM_F_INTERVAL)
                        check(isfinite(ev->interval_s) && ev->interval_s > 0);
                if (ev->fields & FM_F_ERRORS) {
                        check(ev->fields & FM_F_REQUESTS);
                        check(ev->errors <= ev->requests);
                }
                if (ev->fields & FM_F_LATENCY_HIST)
                        check_hist(&ev->latency_hist, true);
                if (ev->fields & FM_F_SCORE_HIST)
                        check_hist(&ev->score_hist, false);
                if (ev->fields & FM_F_LATENCY_MS)
                        check(isfinite(ev->p99_ms) && ev->p50_ms >= 0 && ev->p50_ms <= ev->p95_ms &&
                              ev->p95_ms <= ev->p99_ms);
                for (int g = 0; g < _FM_GAUGE_MAX; g++) {
                        if (!(ev->fields & FM_F_GAUGE(g)))
                                continue;
                        double v = ev->gauge[g];
                        check(isfinite(v) && v >= 0);
                        if (g == FM_GAUGE_CPU || g == FM_GAUGE_GPU_UTIL || g == FM_GAUGE_GPU_MEM)
                                check(v <= 1);
                }
                break;
        case FM_EVENT_FEEDBACK:
                check(ev->status == FM_HEALTH_UNKNOWN);
                check((ev->fields & ~(FM_F_SEQ | FM_F_VERSION | FM_F_TS)) == 0);
                check(ev->n_outcomes >= 1 && ev->n_outcomes <= FM_OUTCOMES_MAX);
                for (uint32_t i = 0; i < ev->n_outcomes; i++) {
                        check(ev->outcome[i].score >= 0 && ev->outcome[i].score <= 1);
                        check(ev->outcome[i].label <= 1);
                }
                break;
        default:
                check(false);
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        if (size < 1)
                return 0;
        size_t tlen = data[0];
        if (tlen > size - 1)
                tlen = size - 1;
        const char *topic = (const char *)data + 1;
        const uint8_t *payload = data + 1 + tlen;
        size_t plen = size - 1 - tlen;

        struct fm_decoder_config cfg;
        fm_decoder_config_default(&cfg);
        struct fm_decoder *d = NULL;
        check(fm_decoder_new(&cfg, &d) == 0);
        struct fm_event *ev = malloc(sizeof(*ev));
        check(ev);

        enum fm_reject reason = _FM_REJECT_MAX, reason2 = _FM_REJECT_MAX;
        int r = fm_decoder_decode(d, topic, tlen, payload, plen, NOW, ev, &reason);
        check(r == 0 || r == -EBADMSG);
        if (r == 0) {
                check(reason == FM_REJECT_NONE);
                check_event(ev, NOW, cfg.max_skew);
        } else {
                check(reason >= FM_REJECT_TOO_LARGE && reason <= FM_REJECT_TOO_MANY_ITEMS);
                check(fm_reject_name(reason) != NULL);
        }

        /* deterministic, also with a reused tokener */
        int r2 = fm_decoder_decode(d, topic, tlen, payload, plen, NOW, ev, &reason2);
        check(r2 == r && reason2 == reason);
        if (r2 == 0)
                check_event(ev, NOW, cfg.max_skew);

        /* whatever came before, a good event decodes */
        check(fm_decoder_decode(d, GOOD_TOPIC, strlen(GOOD_TOPIC), GOOD_PAYLOAD,
                                strlen(GOOD_PAYLOAD), NOW, ev, &reason) == 0);
        check(ev->kind == FM_EVENT_KPI && ev->seq == 1 && ev->requests == 2 && ev->errors == 1);

        free(ev);
        fm_decoder_free(d);
        return 0;
}

#ifdef FM_FUZZ_MAIN
#define FUZZ_INPUT_MAX (1024 * 1024)
#include "fuzz_main.h"
#endif
