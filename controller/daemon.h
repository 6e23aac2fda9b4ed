/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * `fleetmedic run`: the daemon shell around the decision core. One sd-event
 * loop carries MQTT ingestion, the reconcile tick, the HTTP endpoints,
 * signals (SIGTERM/SIGINT stop, SIGHUP reloads) and the systemd watchdog.
 */

#include <stdbool.h>

/* Command-line settings; each non-NULL one overrides the file (and survives reloads). */
struct fm_daemon_options {
        const char *config_path; /* NULL: embedded defaults */
        const char *mqtt_url;
        const char *listen;
        const char *state_dir;
        const char *topic_prefix;
        const char *client_id;
        bool dry_run;
};

/*
 * Runs until SIGTERM or SIGINT. Returns 0 after a clean stop, -EINVAL when
 * the configuration is invalid (errors already logged), other -errno when
 * start-up fails.
 */
int fm_daemon_run(const struct fm_daemon_options *opt);
