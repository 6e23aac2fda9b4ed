/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The systemd backend: restart, scale and rollback of model servers that run
 * as systemd units, over D-Bus (sd-bus on the sd-event loop) to
 * org.freedesktop.systemd1.
 *
 * Unit naming. Each deployment maps to two patterns with placeholders:
 *   unit           the instances of one version of the deployment; must hold
 *                  {index} exactly once, may hold {deployment} and {version}
 *                  (each at most once), never {instance}.
 *                  Default "{deployment}-{version}@{index}.service": instance
 *                  N of version V is the template instance
 *                  "<deployment>-<V>@N.service".
 *   instance_unit  the unit of one instance named by the events (restart);
 *                  may hold {instance} and {deployment}, nothing else.
 *                  Default "{instance}.service". For template units name the
 *                  instances after the unit instance and write e.g.
 *                  "{deployment}@{instance}.service".
 * Every name built from a pattern is checked by fm_systemd_unit_name_valid()
 * and must not be a bare template ("x@.service"); a value substituted for a
 * placeholder may only hold [A-Za-z0-9:_.-], must not start with '.' or '-'
 * and must not hold "..". Anything else is -EINVAL before any D-Bus call is
 * made.
 *
 * Actions (all asynchronous, jobs in the configured mode, "replace" by
 * default):
 *   restart   RestartUnit(instance_unit); waits for the job's JobRemoved,
 *             then reads ActiveState, SubState and NRestarts into the
 *             detail. Observe: OK when ActiveState is "active".
 *   scale     ListUnitsByPatterns([], [glob of unit]) finds the instances;
 *             the running version is the one version whose instances are
 *             active, activating or reloading (several: retryable -EBUSY;
 *             none while the pattern holds {version}: permanent -ENOENT).
 *             Starts the missing instances 1..to (ascending) and stops the
 *             running ones above `to` (descending), all at once. Observe: OK
 *             when exactly `to` instances of that version are active.
 *   rollback  from -> to: starts `to` at the indices where `from` runs, then,
 *             when every start succeeded, stops every running `from`
 *             instance (rollback_order start_first, the default: a failed
 *             start leaves `from` running, and the `to` instances already
 *             started stay up). stop_first reverses the order for hosts that
 *             cannot hold both versions at once; then a failed stop starts
 *             nothing. Nothing of `from` running and some of `to` running:
 *             OK at once (already rolled back). Observe: OK when some `to`
 *             instance is active and no `from` instance is.
 * A multi-unit action completes once, when every job is removed; the first
 * failure decides the result and the detail says what was started and
 * stopped.
 *
 * Results: JobRemoved "done" is success; "timeout" and "canceled" are
 * retryable; "failed", "dependency", "skipped" and any other string are
 * permanent (fm_systemd_job_result_kind()). D-Bus errors are classified by
 * fm_systemd_bus_error_kind(). A job whose JobRemoved does not come within
 * job_timeout fails the action as retryable -ETIMEDOUT. A lost bus fails
 * every action in flight as retryable -ECONNRESET; the next start()
 * reconnects. A cancelled attempt forgets its calls; jobs systemd already
 * queued run on.
 *
 * Shell code: does I/O on the event loop, never logs, never runs programs.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <systemd/sd-event.h>

#include "actuator.h"
#include "event.h"
#include "util.h"

#define FM_SYSTEMD_UNIT_NAME_MAX 255  /* bytes of a unit name (UNIT_NAME_MAX - 1) */
#define FM_SYSTEMD_PATTERN_MAX 128    /* bytes of a pattern, with its NUL */
#define FM_SYSTEMD_ADDRESS_MAX 512    /* bytes of a D-Bus address, with its NUL */
#define FM_SYSTEMD_MODE_MAX 32        /* bytes of a job mode, with its NUL */
#define FM_SYSTEMD_DEPLOYMENTS_MAX 65 /* 64 named deployments plus one "*" */
#define FM_SYSTEMD_INSTANCES_MAX 256  /* highest scale target and instance index */
#define FM_SYSTEMD_LIST_MAX 4096      /* units of one ListUnitsByPatterns answer */
#define FM_SYSTEMD_EARLY_MAX 64       /* JobRemoved signals kept while their reply is due */

enum fm_systemd_bus {
        FM_SYSTEMD_BUS_SYSTEM, /* "system" */
        FM_SYSTEMD_BUS_USER,   /* "user": the calling user's manager */
        _FM_SYSTEMD_BUS_MAX,
};

enum fm_systemd_rollback_order {
        FM_SYSTEMD_START_FIRST, /* "start_first" */
        FM_SYSTEMD_STOP_FIRST,  /* "stop_first" */
        _FM_SYSTEMD_ROLLBACK_ORDER_MAX,
};

/* Units of one deployment ("*": every deployment without its own entry). */
struct fm_systemd_units {
        char deployment[FM_NAME_MAX + 1];           /* a name or "*" */
        char unit[FM_SYSTEMD_PATTERN_MAX];          /* see above */
        char instance_unit[FM_SYSTEMD_PATTERN_MAX]; /* see above */
};

/*
 * Keys of `actuators.systemd:`:
 *   bus: system             "system" or "user"
 *   address: ""             a D-Bus address ("unix:path=/run/x") used instead
 *                           of bus when not empty: for tests and unusual
 *                           setups; printable ASCII, < FM_SYSTEMD_ADDRESS_MAX
 *   job_timeout_s: 90       wait for a job's JobRemoved; 1 ms .. 1 h
 *   job_mode: replace       replace, fail, replace-irreversibly, flush,
 *                           ignore-dependencies, ignore-requirements
 *   rollback_order: start_first   or stop_first
 *   deployments:            up to 64 named entries and one "*"; the default
 *                           is the single entry "*" with the default patterns
 *     - { deployment: "*", unit: "{deployment}-{version}@{index}.service",
 *         instance_unit: "{instance}.service" }
 * A deployment with no entry and no "*" entry: start() says -EOPNOTSUPP.
 */
struct fm_systemd_config {
        enum fm_systemd_bus bus;
        char address[FM_SYSTEMD_ADDRESS_MAX];
        fm_ms job_timeout;
        char job_mode[FM_SYSTEMD_MODE_MAX];
        enum fm_systemd_rollback_order rollback_order;
        uint32_t n_deployments;
        struct fm_systemd_units deployments[FM_SYSTEMD_DEPLOYMENTS_MAX];
};

void fm_systemd_config_default(struct fm_systemd_config *cfg);

/* 0 or -EINVAL: a field out of range, an invalid pattern, a deployment name
 * neither valid nor "*", two entries for one deployment, more than 64 named. */
int fm_systemd_config_validate(const struct fm_systemd_config *cfg);

/* "system", "user"; "start_first", "stop_first"; NULL when out of range. */
const char *fm_systemd_bus_name(enum fm_systemd_bus b) _pure_;
const char *fm_systemd_rollback_order_name(enum fm_systemd_rollback_order o) _pure_;

/*
 * True (1) when name is a valid unit name (plain, template or instance) by
 * systemd's rules: 1..255 bytes, a known type suffix (service, socket,
 * target, device, mount, automount, swap, timer, path, slice, scope), before
 * it only [A-Za-z0-9:_.-] and '@', not starting with '@', one '@' at most in
 * the prefix (the instance may hold more). False (0) otherwise, also for NULL.
 */
int fm_systemd_unit_name_valid(const char *name);

/*
 * Expands pattern into buf: {deployment}, {version}, {instance} become the
 * given strings, {index} the decimal index (>= 1). A placeholder in use must
 * get a non-empty value of [A-Za-z0-9:_.-] only, not starting with '.' or
 * '-', without ".." (index: >= 1). The result
 * must be a valid unit name that is not a bare template. Returns its length,
 * -EINVAL (unknown placeholder, stray brace, hostile or missing value,
 * invalid result, longer than 255), -ENOBUFS (buf too small); buf is
 * written only on success.
 */
int fm_systemd_expand(const char *pattern, const char *deployment, const char *version,
                      const char *instance, unsigned index, char *buf, size_t size);

/*
 * Matches a unit name against a `unit` pattern for deployment: {version}
 * matches 1..FM_VERSION_MAX bytes of [A-Za-z0-9._-], {index} a decimal
 * 1..FM_SYSTEMD_INSTANCES_MAX without leading zeros. Returns 1 and the
 * version (NUL-terminated into ret_version of FM_VERSION_MAX + 1 bytes, ""
 * when the pattern has none) and *ret_index; 0 when it does not match;
 * -EINVAL on bad arguments.
 */
int fm_systemd_match(const char *pattern, const char *deployment, const char *name,
                     char *ret_version, unsigned *ret_index);

/*
 * A JobRemoved result string's kind: "done" ok (*ret_error 0); "timeout"
 * (-ETIMEDOUT) and "canceled" (-ECANCELED) retryable; "failed" (-EIO),
 * "dependency" (-ENOLINK), "skipped" (-EALREADY) and anything else,
 * NULL included (-EIO), permanent. ret_error may be NULL.
 */
enum fm_result_kind fm_systemd_job_result_kind(const char *result, int *ret_error);

/*
 * A D-Bus error name's kind and errno: NoSuchUnit, NoSuchJob (-ENOENT),
 * LoadFailed, UnitMasked (-ENOEXEC), OnlyByDependency, AccessDenied,
 * InteractiveAuthorizationRequired (-EACCES), InvalidArgs (-EINVAL),
 * UnknownMethod/Object/Interface (-EOPNOTSUPP) and JobFailed (-EIO) are
 * permanent; NoReply, Timeout, TimedOut (-ETIMEDOUT), Disconnected
 * (-ECONNRESET), ServiceUnknown, NameHasNoOwner (-ECONNREFUSED),
 * NoMemory (-ENOMEM), LimitsExceeded (-ENOBUFS), TransactionIsDestructive
 * and TransactionJobsConflicting (-EBUSY) are retryable; others permanent
 * with -EIO. ret_error may be NULL.
 */
enum fm_result_kind fm_systemd_bus_error_kind(const char *name, int *ret_error);

struct fm_systemd;

/*
 * Connects to the bus (attached to event), installs the JobRemoved match
 * and calls Subscribe, both asynchronously. cfg is copied; a is borrowed and
 * must outlive the backend. Returns 0, -EINVAL, -ENOMEM, or -errno of
 * connecting; *ret untouched on failure.
 */
int fm_systemd_new(sd_event *event, const struct fm_systemd_config *cfg, struct fm_actuator *a,
                   struct fm_systemd **ret);

/* Drops every attempt in flight without completing it, closes the bus. NULL ok; returns NULL. */
struct fm_systemd *fm_systemd_free(struct fm_systemd *x);

/* Attempts in flight (started, not completed or cancelled). */
unsigned fm_systemd_in_flight(const struct fm_systemd *x) _pure_;

/* Supports restart, scale, rollback. The backend pointer is a struct fm_systemd *. */
extern const struct fm_backend_ops fm_backend_systemd_ops;
