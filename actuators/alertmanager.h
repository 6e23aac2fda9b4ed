/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The Alertmanager backend: the alert action becomes an alert posted to
 * Alertmanager API v2 (POST /api/v2/alerts, a JSON array of one alert),
 * over fm_httpc on the sd-event loop. Shell code: does I/O, never logs.
 *
 * The alert: labels {alertname (config), severity ("info", "warning",
 * "critical"), deployment, instance (when the action names one), and the
 * configured static labels}; annotations {summary}; startsAt = now;
 * endsAt = now + ttl when ttl > 0 (else Alertmanager's resolve_timeout
 * applies); generatorURL when configured. Alertmanager identifies an alert
 * by its labels, so posting the same labels again refreshes it.
 *
 * Resolving: the alert action only ever raises. When the condition
 * clears, the daemon calls fm_alertmanager_resolve() with the same
 * deployment, instance and severity: it posts the same labels with
 * endsAt = now, which resolves the alert at once.
 *
 * Observe (after a restart): OK when Alertmanager lists an active alert
 * with exactly these labels (GET /api/v2/alerts?active=true, compared
 * here, so no name is put into a filter expression), else PERMANENT -ESRCH.
 *
 * Names from events reach only JSON bodies (json-c escapes them); no name
 * reaches a URL.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <systemd/sd-event.h>

#include "actuator.h"
#include "util.h"

#define FM_ALERTMANAGER_URL_MAX 256
#define FM_ALERTMANAGER_PATH_MAX 256
#define FM_ALERTMANAGER_LABELS_MAX 16
#define FM_ALERTMANAGER_LABEL_NAME_MAX 64   /* with its NUL */
#define FM_ALERTMANAGER_LABEL_VALUE_MAX 256 /* with its NUL */

struct fm_alertmanager_label {
        char name[FM_ALERTMANAGER_LABEL_NAME_MAX];   /* [a-zA-Z_][a-zA-Z0-9_]* */
        char value[FM_ALERTMANAGER_LABEL_VALUE_MAX]; /* no control bytes */
};

/*
 * Configuration, section `actuators.alertmanager:`.
 *   url: http://127.0.0.1:9093   http:// or https:// base (a trailing "/" is dropped)
 *   ca_file: ""                  PEM bundle for https; "" = the system store
 *   timeout_s: 10                each HTTP request, 0.001 .. 600
 *   alertname: FleetmedicAlert   the alertname label, a label value
 *   generator_url: ""            generatorURL of every alert; "" = none
 *   ttl_s: 0                     endsAt = startsAt + ttl; 0 = none, else 1 s .. 7 days
 *   labels: {}                   static labels, up to FM_ALERTMANAGER_LABELS_MAX; names
 *                                not alertname, severity, deployment or instance
 */
struct fm_alertmanager_config {
        char url[FM_ALERTMANAGER_URL_MAX];
        char ca_file[FM_ALERTMANAGER_PATH_MAX];
        fm_ms timeout;
        char alertname[FM_ALERTMANAGER_LABEL_VALUE_MAX];
        char generator_url[FM_ALERTMANAGER_URL_MAX];
        fm_ms ttl;
        uint32_t n_labels;
        struct fm_alertmanager_label labels[FM_ALERTMANAGER_LABELS_MAX];
};

void fm_alertmanager_config_default(struct fm_alertmanager_config *cfg);

/* 0 or -EINVAL. */
int fm_alertmanager_config_validate(const struct fm_alertmanager_config *cfg);

struct fm_alertmanager;

/* a may be NULL when only fm_alertmanager_resolve() is used. Returns 0, -EINVAL, -ENOMEM,
 * -EIO; *ret untouched on failure. */
int fm_alertmanager_new(sd_event *event, const struct fm_alertmanager_config *cfg,
                        struct fm_actuator *a, struct fm_alertmanager **ret);

/* Aborts in-flight work, never completes. Accepts NULL; returns NULL. */
struct fm_alertmanager *fm_alertmanager_free(struct fm_alertmanager *x);

extern const struct fm_backend_ops
        fm_backend_alertmanager_ops; /* pointer = struct fm_alertmanager * */

/* error 0 when Alertmanager accepted it, else a negative errno; detail says what happened. */
typedef void (*fm_alertmanager_done_fn)(void *userdata, int error, const char *detail);

/*
 * Resolves the alert raised for (deployment, instance or "" , severity):
 * posts its labels with endsAt = now. done runs once from the loop, never
 * from inside this call (NULL: no report). Returns 0, -EINVAL (bad name or
 * severity), -ENOMEM.
 */
int fm_alertmanager_resolve(struct fm_alertmanager *x, const char *deployment, const char *instance,
                            enum fm_severity severity, fm_alertmanager_done_fn done,
                            void *userdata);
