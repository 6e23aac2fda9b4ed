/* SPDX-License-Identifier: MIT */
#include "live.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-event.h>

#include "model.h"

/* ---- payloads (pure) ------------------------------------------------------------------------ */

static int hist_json(struct fm_buf *b, const char *key, const char *bounds_key,
                     const struct fm_hist *h)
{
        int r = fm_buf_printf(b, ",\"%s\":{\"%s\":[", key, bounds_key);
        for (uint32_t k = 0; r >= 0 && k < h->n; k++)
                r = fm_buf_printf(b, "%s%.10g", k ? "," : "", h->bound[k]);
        if (r >= 0)
                r = fm_buf_printf(b, "],\"counts\":[");
        for (uint32_t k = 0; r >= 0 && k <= h->n; k++)
                r = fm_buf_printf(b, "%s%" PRIu64, k ? "," : "", h->count[k]);
        return r < 0 ? r : fm_buf_printf(b, "]}");
}

/* Characters a name, version or reason may hold that JSON needs escaped. */
static int string_json(struct fm_buf *b, const char *s)
{
        int r = fm_buf_append(b, "\"", 1);
        for (; r >= 0 && *s; s++) {
                unsigned char c = (unsigned char)*s;
                if (c == '"' || c == '\\')
                        r = fm_buf_printf(b, "\\%c", c);
                else if (c < 0x20)
                        r = fm_buf_printf(b, "\\u%04x", c);
                else
                        r = fm_buf_append(b, s, 1);
        }
        return r < 0 ? r : fm_buf_append(b, "\"", 1);
}

int fm_live_event_json(struct fm_buf *b, const struct fm_event *ev, fm_ms ts)
{
        int r = fm_buf_printf(b, "{\"v\":1,\"ts\":%" PRId64 ".%03d", fm_floordiv(ts, FM_MS_PER_S),
                              (int)(ts - fm_floordiv(ts, FM_MS_PER_S) * FM_MS_PER_S));
        if (r >= 0 && (ev->fields & FM_F_SEQ))
                r = fm_buf_printf(b, ",\"seq\":%" PRIu64, ev->seq);
        if (r >= 0 && (ev->fields & FM_F_VERSION)) {
                r = fm_buf_printf(b, ",\"version\":");
                if (r >= 0)
                        r = string_json(b, ev->version);
        }
        switch (ev->kind) {
        case FM_EVENT_HEALTH:
                if (r >= 0)
                        r = fm_buf_printf(b, ",\"status\":\"%s\"",
                                          fm_health_status_name(ev->status));
                if (r >= 0 && (ev->fields & FM_F_READY))
                        r = fm_buf_printf(b, ",\"ready\":%s", ev->ready ? "true" : "false");
                if (r >= 0 && (ev->fields & FM_F_REASON)) {
                        r = fm_buf_printf(b, ",\"reason\":");
                        if (r >= 0)
                                r = string_json(b, ev->reason);
                }
                break;
        case FM_EVENT_KPI:
                if (r >= 0 && (ev->fields & FM_F_INTERVAL))
                        r = fm_buf_printf(b, ",\"interval_s\":%.10g", ev->interval_s);
                if (r >= 0 && (ev->fields & FM_F_REQUESTS))
                        r = fm_buf_printf(b, ",\"requests\":%" PRIu64, ev->requests);
                if (r >= 0 && (ev->fields & FM_F_ERRORS))
                        r = fm_buf_printf(b, ",\"errors\":%" PRIu64, ev->errors);
                if (r >= 0 && (ev->fields & FM_F_LATENCY_HIST))
                        r = hist_json(b, "latency_hist", "le_ms", &ev->latency_hist);
                if (r >= 0 && (ev->fields & FM_F_LATENCY_MS))
                        r = fm_buf_printf(b,
                                          ",\"latency_ms\":{\"p50\":%.10g,\"p95\":%.10g,\"p99\":"
                                          "%.10g}",
                                          ev->p50_ms, ev->p95_ms, ev->p99_ms);
                for (int g = 0; r >= 0 && g < _FM_GAUGE_MAX; g++)
                        if (ev->fields & FM_F_GAUGE(g))
                                r = fm_buf_printf(b, ",\"%s\":%.10g",
                                                  fm_gauge_name((enum fm_gauge)g), ev->gauge[g]);
                if (r >= 0 && (ev->fields & FM_F_SCORE_HIST))
                        r = hist_json(b, "score_hist", "le", &ev->score_hist);
                break;
        case FM_EVENT_FEEDBACK:
                if (r >= 0)
                        r = fm_buf_printf(b, ",\"outcomes\":[");
                for (uint32_t k = 0; r >= 0 && k < ev->n_outcomes; k++)
                        r = fm_buf_printf(b, "%s[%.10g,%u]", k ? "," : "", ev->outcome[k].score,
                                          ev->outcome[k].label);
                if (r >= 0)
                        r = fm_buf_printf(b, "]");
                break;
        default:
                return -EINVAL;
        }
        return r < 0 ? r : fm_buf_printf(b, "}");
}

int fm_live_topic(char *out, size_t size, const char *prefix, const struct fm_event *ev)
{
        const char *kind = fm_event_kind_name(ev->kind);
        if (!kind)
                return -EINVAL;
        int n = snprintf(out, size, "%s/%s/%s/%s", prefix, ev->deployment, ev->instance, kind);
        return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

/* ---- the live run (shell) ------------------------------------------------------------------- */

struct live {
        const struct fm_scenario *sc;
        const struct fm_live_options *opt;
        sd_event *event;
        struct fm_mqtt *mqtt;
        struct fm_model *model;
        sd_event_source *timer;
        struct fm_buf buf;
        struct fm_live_stats stats;
        uint64_t t0_usec; /* CLOCK_MONOTONIC of step 0 */
        fm_ms start;      /* simulated time of step 0 */
        uint32_t step, n_steps;
        uint32_t last_progress;
        int error;
        bool started, interrupted;
};

static fm_ms wall_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (fm_ms)ts.tv_sec * FM_MS_PER_S + ts.tv_nsec / 1000000;
}

static void publish(void *userdata, const struct fm_event *ev)
{
        struct live *l = userdata;
        char topic[FM_PREFIX_MAX + 2 * FM_NAME_MAX + 32];

        fm_buf_reset(&l->buf);
        if (fm_live_topic(topic, sizeof(topic), l->opt->mqtt->topic_prefix, ev) < 0 ||
            fm_live_event_json(&l->buf, ev, wall_ms()) < 0 ||
            fm_mqtt_publish(l->mqtt, topic, l->buf.data, l->buf.len, 1, false) < 0)
                l->stats.publish_failures++;
        else
                l->stats.published++;
}

static uint64_t due_usec(const struct live *l, uint32_t step)
{
        double s = (double)step * (double)l->sc->step_s / l->opt->speed;
        return l->t0_usec + (uint64_t)llround(s * 1e6);
}

static int on_step(sd_event_source *s, uint64_t usec, void *userdata)
{
        struct live *l = userdata;
        (void)usec;

        l->step++;
        fm_ms now = l->start + (fm_ms)l->step * l->sc->step_s * FM_MS_PER_S;
        int r = fm_model_step(l->model, now, publish, l);
        if (r < 0) {
                l->error = r;
                return sd_event_exit(l->event, 0);
        }
        l->stats.steps++;
        if (l->opt->progress && (l->step * 10 / l->n_steps != l->last_progress)) {
                l->last_progress = l->step * 10 / l->n_steps;
                fprintf(stderr,
                        "sim --live: %s at t=%" PRId64 " s of %" PRId64 " s, %" PRIu64
                        " events published\n",
                        l->sc->name, (int64_t)l->step * l->sc->step_s, l->sc->duration_s,
                        l->stats.published);
        }
        if (l->step >= l->n_steps)
                return sd_event_exit(l->event, 0);
        r = sd_event_source_set_time(s, due_usec(l, l->step + 1));
        if (r >= 0)
                r = sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
        return r;
}

static void on_connected(void *userdata, bool session_present)
{
        struct live *l = userdata;
        (void)session_present;
        if (l->started)
                return;
        l->started = true;
        if (sd_event_now(l->event, CLOCK_MONOTONIC, &l->t0_usec) < 0) {
                struct timespec ts;
                clock_gettime(CLOCK_MONOTONIC, &ts);
                l->t0_usec = (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
        }
        int r = sd_event_add_time(l->event, &l->timer, CLOCK_MONOTONIC, due_usec(l, 1), 1, on_step,
                                  l);
        if (r < 0) {
                l->error = r;
                sd_event_exit(l->event, 0);
                return;
        }
        if (l->opt->progress)
                fprintf(stderr, "sim --live: publishing %s to mqtt://%s:%u under %s at %gx\n",
                        l->sc->name, l->opt->mqtt->host, l->opt->mqtt->port,
                        l->opt->mqtt->topic_prefix, l->opt->speed);
}

static void on_disconnected(void *userdata, int reason)
{
        struct live *l = userdata;
        if (l->opt->progress)
                fprintf(stderr, "sim --live: broker connection lost or refused (%d); retrying\n",
                        reason);
}

static int on_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata)
{
        struct live *l = userdata;
        (void)s;
        (void)si;
        l->interrupted = true;
        return sd_event_exit(l->event, 0);
}

int fm_live_run(const struct fm_scenario *sc, const struct fm_live_options *opt,
                struct fm_live_stats *ret)
{
        static const struct fm_mqtt_callbacks cb = {
                .connected = on_connected,
                .disconnected = on_disconnected,
        };
        struct live l = {.sc = sc, .opt = opt};
        struct fm_mqtt_config mc;
        sigset_t mask;
        int r;

        if (!sc || !opt || !opt->mqtt || !(opt->speed > 0) || opt->speed > FM_LIVE_SPEED_MAX ||
            sc->step_s <= 0 || sc->duration_s < sc->step_s)
                return -EINVAL;
        l.start = (fm_ms)sc->start_s * FM_MS_PER_S;
        l.n_steps = (uint32_t)(sc->duration_s / sc->step_s);

        mc = *opt->mqtt;
        /* its own identity, and no session left behind on the broker */
        snprintf(mc.client_id, sizeof(mc.client_id), "fleetmedic-sim-%ld", (long)getpid());
        mc.session_expiry_s = 0;
        mc.qos = 0;
        mc.will_topic[0] = mc.will_payload[0] = '\0';

        if ((r = fm_model_new(sc, &l.model)) < 0)
                return r;
        if ((r = sd_event_new(&l.event)) < 0)
                goto out;
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        if ((r = sd_event_add_signal(l.event, NULL, SIGTERM, on_signal, &l)) < 0 ||
            (r = sd_event_add_signal(l.event, NULL, SIGINT, on_signal, &l)) < 0)
                goto out;
        if ((r = fm_mqtt_new(l.event, &mc, &cb, &l, &l.mqtt)) < 0)
                goto out;
        r = sd_event_loop(l.event);
        if (r >= 0)
                r = l.error ? l.error : l.interrupted ? -EINTR : 0;
        if (ret)
                *ret = l.stats;
out:
        l.mqtt = fm_mqtt_free(l.mqtt);
        sd_event_source_disable_unref(l.timer);
        sd_event_unref(l.event);
        fm_model_free(l.model);
        fm_buf_done(&l.buf);
        return r;
}
