/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The simulator live: the scenario's fleet model (model.h) stepped in real
 * time, scaled by a speed factor, its events published to an MQTT broker
 * as schema v1 JSON on <prefix>/<deployment>/<instance>/<kind>, for a live
 * controller to decide on. No decision core runs here and no action reaches
 * the model: the controller is expected to run in dry-run.
 *
 * Time: step k of the scenario (k = 1 .. duration_s / step_s) is published
 * k * step_s / speed seconds after the broker accepted the connection,
 * every event stamped with the wall-clock time of its publication (ts, in
 * seconds with milliseconds), so the controller judges it as fresh. Events
 * go out at QoS 1 with a per-instance seq (the model's), so a duplicate
 * after a reconnect is dropped by the controller.
 */

#include <stdbool.h>
#include <stdint.h>

#include "buf.h"
#include "event.h"
#include "mqtt.h"
#include "scenario.h"
#include "util.h"

#define FM_LIVE_SPEED_MAX 100000.0

/*
 * The payload of ev as schema v1 JSON, stamped with ts, appended to b.
 * Pure. Returns 0, -ENOBUFS or -ENOMEM.
 */
int fm_live_event_json(struct fm_buf *b, const struct fm_event *ev, fm_ms ts);

/* <prefix>/<deployment>/<instance>/<kind> into out. Returns 0 or -ENAMETOOLONG. */
int fm_live_topic(char *out, size_t size, const char *prefix, const struct fm_event *ev);

struct fm_live_options {
        const struct fm_mqtt_config *mqtt; /* broker and topic prefix; the client id is derived */
        double speed;                      /* > 0: simulated seconds per wall-clock second */
        bool progress;                     /* print progress lines on stderr */
};

struct fm_live_stats {
        uint64_t steps, published, publish_failures;
};

/*
 * Runs sc live until its end or SIGINT/SIGTERM (shell code: an event loop,
 * the network, the clock). Returns 0 (stats in *ret when not NULL),
 * -EINVAL, -ENOMEM, -EINTR when stopped by a signal, or a negative errno
 * of the event loop.
 */
int fm_live_run(const struct fm_scenario *sc, const struct fm_live_options *opt,
                struct fm_live_stats *ret);
