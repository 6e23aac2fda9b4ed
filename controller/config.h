/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Configuration: one schema, one validation pass.
 *
 * The file is YAML (JSON is YAML too, and is accepted as such): libyaml
 * parses it into the same json-c tree a JSON file gives, with the line of
 * every key kept beside it, and fm_config_load() walks that tree once
 * against the schema below. Every problem is reported — not only the first
 * — as "FILE:LINE: KEY: message" with KEY the dotted path (mqtt.tls.ca_file,
 * fleet.max_instances). Unknown keys are errors (a typo must not silently
 * fall back to a default). Without a file, fm_config_default() gives the
 * embedded defaults: discover deployments from the events, default
 * policies, dry-run. An empty file (or one holding only comments, or a
 * bare null) gives the defaults too, and so does a section left empty
 * ("tls:" with its keys commented out).
 *
 * The YAML accepted: YAML 1.2 core schema scalars only (true/false, not
 * yes/no; null, ~ or empty; decimal, 0o octal and 0x hex integers; floats
 * including .inf and .nan, which every number here then rejects); quoted
 * scalars are always strings; tags only the core ones (!!str, !!int, ...);
 * no anchors or aliases; no duplicate keys; one document, a mapping at the
 * top; at most 1 MiB, 10000 nodes and 32 levels of nesting.
 *
 * Schema (durations in seconds, fractions allowed unless said; every
 * duration must be finite, > 0, at least 1 ms after rounding to whole
 * milliseconds and at most 10 years unless its range says otherwise):
 *   mqtt:
 *     url: mqtt://127.0.0.1:1883      mqtt:// or mqtts://, fm_mqtt_parse_url()
 *     client_id: fleetmedic           1..128 bytes, no control characters
 *     protocol: 5                     5 or 3.1.1 (also "v5", "v311")
 *     topic_prefix: fleet             1..128 bytes, no + or #, no trailing /
 *     qos: 1                          0 or 1
 *     session_expiry_s: 3600          integer, 0 .. 4294967295
 *     keepalive_s: 30                 integer, 0 or 5 .. 65535
 *     receive_maximum: 100            integer, 1 .. 65535
 *     shared_group: ""                "" or [A-Za-z0-9_-]{1,64}
 *     username_file: ""  password_file: ""   password needs username
 *     tls: { ca_file: "", cert_file: "", key_file: "" }   cert and key together
 *       (each file named must exist and be readable when the file is
 *       loaded; it is not read: its contents never enter the config)
 *     reconnect_min_s: 1  reconnect_max_s: 60              min <= max
 *   http:
 *     listen: 127.0.0.1:9187         ADDR:PORT, [v6]:PORT, numeric only, port 0..65535
 *                                     (fm_http_parse_listen(); at most 127 bytes)
 *   state_dir: /var/lib/fleetmedic    absolute path; not created here
 *   dry_run: true
 *   tick_s: 1                         reconcile interval, 0.05 .. 60
 *   log:
 *     level: info                     err, warning, notice, info, debug
 *   decoder:
 *     max_payload_bytes: 65536        integer, 64 .. 16777216
 *     max_skew_s: 300                 > 0
 *   fleet:
 *     max_deployments, max_versions, max_versions_per_deployment,
 *     max_instances, max_instances_per_deployment: integers 1 .. 4294967295
 *       (defaults 256, 512, 32, 65536, 8192)
 *     forget_after_s: 900  version_retention_s: 86400  gauge_tau_s: 30
 *     latency_window_s: 300  latency_slots: 5      slots integer 1 .. 6
 *   breaker:
 *     failure_rate: 0.5  slow_call_rate: 0.5       rates in (0, 1]
 *     slow_call_ms: 1000                           milliseconds, > 0, <= 10 years
 *     min_requests: 20  probes: 10                 integers 1 .. 4294967295
 *     window_s: 30  window_slots: 6                slots integer 1 .. 60
 *     open_base_s: 30  open_max_s: 600  heartbeat_timeout_s: 30
 *                                                  each at most 604800 (a week)
 *   actuators:                        (see fleetmedic(8); fields in executor.h and the
 *                                      backends' headers, actuators/<backend>.h)
 *     action_timeout_s, backoff_base_s, backoff_cap_s, max_attempts, breaker_failures,
 *     breaker_cooloff_s, breaker_cooloff_max_s, bindings: [{deployment, actions, backend}]
 *     systemd: bus (system|user), address, job_timeout_s, job_mode,
 *       rollback_order (start_first|stop_first), units: [{deployment, unit, instance_unit}]
 *     kubernetes: in_cluster, service_account_dir, server, token_file, ca_file, namespace,
 *       timeout_s, token_reread_s, traffic (none|istio|gateway), events,
 *       workloads: [{deployment, kind (deployment|inferenceservice), name, container, image,
 *                    storage_uri, route, destination}],
 *       lease: {enabled, name, namespace, identity, lease_duration_s (whole seconds),
 *               renew_deadline_s, retry_period_s, release_on_stop}
 *     haproxy: socket, timeout_s, backends: [{deployment, backend, server}]
 *     mlflow: uri, ca_file, token_file, username_file, password_file, alias, threshold_tag,
 *       rolled_back_tag, timeout_s, models: [{deployment, model}]
 *     alertmanager: url, ca_file, timeout_s, alertname, generator_url, ttl_s (0 or 1 s ..
 *       7 days), labels: {name: value}
 *   A per-deployment list (units, workloads, backends, models) given in the file replaces
 *   the default list whole; each deployment (a name or "*") appears once. An error in an
 *   entry names it: actuators.systemd.units[1].unit.
 *
 * Cross-field rules are checked after the walk with the same error format
 * (the line of the key that breaks the rule; when the file sets both keys
 * of a rule, the later one): the fleet and breaker checks of
 * fm_fleet_config_validate() (latency_window_s and window_s must split
 * into their slots in whole milliseconds, open_base_s <= open_max_s),
 * reconnect_min_s <= reconnect_max_s, cert_file with key_file,
 * password_file only with username_file, tls settings only with mqtts://;
 * the actuators' backoff and cooloff pairs, kubernetes.server when kubernetes
 * is used (a binding or the Lease) outside a cluster and empty inside one,
 * the Lease's lease_duration_s > renew_deadline_s > 1.2 * retry_period_s,
 * mlflow's username_file with password_file; then each backend's own
 * fm_<backend>_config_validate(), reported on its section
 * ("actuators.systemd"), when nothing in the section had an error.
 * A rule is not checked when one of its keys already had an error.
 *
 * Error lines: "FILE:LINE: KEY: message" for a key; "FILE:LINE: message"
 * for what belongs to no key (syntax errors, invalid UTF-8, a top level
 * that is not a mapping); "FILE: message" when there is no line (the file
 * cannot be read). They are printed sorted by line; after the first 100,
 * the rest are only counted, and one last line says how many there were.
 */

#include <stdbool.h>
#include <stdio.h>

#include "core.h"
#include "event.h"
#include "executor.h"
#include "alerting.h"
#include "fleet.h"
#include "governor.h"
#include "policies.h"
#include "mqtt.h"
#include "util.h"

struct fm_config {
        struct fm_mqtt_config mqtt;
        char http_listen[128];
        char state_dir[FM_PATH_MAX];
        bool dry_run;
        fm_ms tick;
        int log_level; /* syslog priority: LOG_ERR .. LOG_DEBUG */
        size_t max_payload;
        fm_ms max_skew;
        struct fm_fleet_config fleet; /* includes the breaker */
        struct fm_governor_config governor;
        struct fm_alerting_config alerting;
        struct fm_policies_config policies;
        struct fm_executor_config actuators;
};

/* The embedded defaults. */
void fm_config_default(struct fm_config *cfg);

/* The decoder configuration this configuration implies (prefix points into cfg). */
void fm_config_decoder(const struct fm_config *cfg, struct fm_decoder_config *ret);

/* The decision core's configuration this configuration implies (a copy). */
void fm_config_core(const struct fm_config *cfg, struct fm_core_config *ret);

/*
 * Loads and validates path over the defaults. On success returns 0 and
 * fills *ret. On failure returns -EINVAL (invalid content; every error was
 * written to errors as one line each, "PATH:LINE: KEY: message"), -EFBIG
 * for a file over 1 MiB, -ENOMEM, or -errno when the file cannot be read
 * (-ENOENT, -EACCES, -EISDIR; also written to errors); *ret is untouched.
 * errors may be NULL. Returns the number of errors through *ret_n_errors
 * when that is not NULL, on success (0) and on failure alike. Never reads
 * the credential and TLS files it names, and never prints anywhere but to
 * errors.
 */
int fm_config_load(const char *path, struct fm_config *ret, FILE *errors, unsigned *ret_n_errors);

/*
 * Reads a YAML (or JSON) file into a json-c tree with the rules above (core
 * schema scalars, no anchors, no duplicate keys, 1 MiB, a mapping at the
 * top; an empty file is an empty mapping), for other files in the same
 * format (simulator scenarios). *ret_lines, when not NULL, maps each dotted
 * key ("fleet.deployments[0].name" style paths as the builder records them)
 * to its line. Errors go to errors as "PATH:LINE: message". Returns 0,
 * -EINVAL, -EFBIG, -ENOMEM or -errno of reading; the caller puts the trees.
 */
struct json_object;
int fm_yaml_load(const char *path, struct json_object **ret_root, struct json_object **ret_lines,
                 FILE *errors);

/* Parses a log level name ("err" .. "debug"); returns the syslog priority or -EINVAL. */
int fm_config_log_level(const char *name);
