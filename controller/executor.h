/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The executor: what turns an approved intent into a change of the fleet,
 * safely. It owns the actuator (retries, deadlines, a breaker per backend)
 * and the backends the bindings name, and writes ahead to the action
 * journal:
 *
 *   approved intent --route--> backend        (no binding: "unbound")
 *                   --journal begin, fsync--> (done before: "duplicate";
 *                                              pending: "in_progress";
 *                                              stale fence: "refused")
 *                   --actuator submit--> ... observed outcome
 *                   --journal end--> callback
 *
 * On start, fm_executor_settle() takes every journal entry begun and never
 * ended (the previous run died between the two) and asks its backend to
 * observe, not act: "ok" when the state the action asked for holds (the
 * key is then done and never executed again: a completed rollback is not
 * repeated), "unknown" otherwise (the policy may ask again; the key can be
 * begun again).
 *
 * Every submission ends in exactly one callback: at once for what never
 * reached a backend, from the event loop for the rest. Shell code: it runs
 * on the sd-event loop (a timer for retries, a post source to collect
 * outcomes) and never logs.
 *
 * FM_FAILPOINT (environment, read at creation) stops the process with
 * SIGKILL at a named point, for crash tests: "journal-begun" (after the
 * intent record is synced, before the backend is asked) or
 * "actuator-done" (after the backend reported, before the journal's end
 * record). Unset in production.
 */

#include <stdbool.h>
#include <stdint.h>

#include <systemd/sd-event.h>

#include "actuator.h"
#include "alertmanager.h"
#include "haproxy.h"
#include "intent.h"
#include "journal.h"
#include "kube.h"
#include "lease.h"
#include "mlflow.h"
#include "systemd.h"
#include "util.h"

enum fm_backend_kind {
        FM_BACKEND_DRYRUN,
        FM_BACKEND_SYSTEMD,
        FM_BACKEND_KUBERNETES,
        FM_BACKEND_HAPROXY,
        FM_BACKEND_MLFLOW,
        FM_BACKEND_ALERTMANAGER,
        _FM_BACKEND_KIND_MAX,
};

/* "dry-run", "systemd", "kubernetes", "haproxy", "mlflow", "alertmanager"; NULL out of range. */
const char *fm_backend_kind_name(enum fm_backend_kind k) _pure_;
/* The kind of a name, or -EINVAL. */
int fm_backend_kind_from_name(const char *name) _pure_;

#define FM_EXECUTOR_BINDINGS_MAX 128

/* Which backend carries which actions for a deployment ("*": every deployment without its own). */
struct fm_binding_config {
        char deployment[FM_NAME_MAX + 1];
        bool actions[_FM_ACTION_MAX];
        enum fm_backend_kind backend;
};

struct fm_executor_config {
        fm_ms action_timeout;            /* deadline of each action; default 120 s */
        struct fm_actuator_config retry; /* backoff and breaker; fm_actuator_config_default() */
        struct fm_binding_config binding[FM_EXECUTOR_BINDINGS_MAX];
        uint32_t n_bindings; /* default 0: nothing is bound */
        /* each backend's settings; a backend is created only when a binding names it,
         * except kubernetes, also created when kubernetes.lease.enabled */
        struct fm_systemd_config systemd;
        struct fm_kube_config kubernetes; /* includes the Lease */
        struct fm_haproxy_config haproxy;
        struct fm_mlflow_config mlflow;
        struct fm_alertmanager_config alertmanager;
};

void fm_executor_config_default(struct fm_executor_config *cfg);

/* 0, or -EINVAL: timeout <= 0, retry invalid, a binding with no action or a bad backend. */
int fm_executor_config_validate(const struct fm_executor_config *cfg);
/* (a backend's own settings are validated only when a binding, or the Lease, uses it) */

/* What one submission came to. Strings are valid during the callback only. */
struct fm_execution {
        const char *key;
        const char *policy; /* the intent's policy; "recovery" for settling */
        enum fm_action action;
        const char *deployment;
        const char *instance; /* "" for the deployment */
        const char *backend;  /* NULL when none was reached */
        /*
         * "ok", "failed", "timeout", "refused", "unsupported", "breaker_open"
         * (from the actuator), "unbound" (no binding), "duplicate" (done
         * before: not repeated), "in_progress" (the key is pending),
         * "journal_error" (not journaled, so not executed), "unknown"
         * (settling: not observed in effect).
         */
        const char *outcome;
        const char *detail;            /* "" when none */
        uint32_t scale_from, scale_to; /* the replicas of a scale; 0 otherwise */
        uint32_t attempts;
        fm_ms submitted, finished;
        bool settled; /* from fm_executor_settle() */
};

typedef void (*fm_execution_fn)(void *userdata, const struct fm_execution *e);

struct fm_executor;

/*
 * Creates the actuator and the dry-run backend (always there) plus each
 * backend a binding names. The journal is borrowed (the daemon opens it in
 * its state directory). seed drives retry jitter. Returns 0, -EINVAL,
 * -ENOMEM, -EOPNOTSUPP (a binding names a backend this build cannot
 * create), or a backend's setup error.
 */
int fm_executor_new(sd_event *event, const struct fm_executor_config *cfg,
                    struct fm_journal *journal, uint64_t seed, fm_execution_fn done, void *userdata,
                    struct fm_executor **ret);

/* Cancels what is in flight (their journal entries stay pending), frees. NULL ok. */
struct fm_executor *fm_executor_free(struct fm_executor *x);

/*
 * Executes approved intent it of plan with fencing token fence. Returns 0
 * when a backend has it (the callback comes later), 1 when it ended at
 * once (the callback already ran), or -EINVAL for an intent that is not
 * approved or malformed.
 */
int fm_executor_submit(struct fm_executor *x, const struct fm_plan *plan,
                       const struct fm_intent *it, uint64_t fence, fm_ms now);

/*
 * Settles every pending journal entry by observation (see above). Returns
 * the number submitted for observation; entries that cannot be observed
 * (no binding any more, malformed) are ended "unknown" at once.
 */
int fm_executor_settle(struct fm_executor *x, fm_ms now);

/*
 * Leadership: with kubernetes.lease.enabled only the holder of the Lease
 * acts. Returns true when this controller may act now, with the fencing
 * token (the Lease's transition count; 0 without a Lease) in *ret_fence.
 */
bool fm_executor_leader(const struct fm_executor *x, uint64_t *ret_fence);

/* Gives the Lease up (kubernetes.lease.release_on_stop) before a clean stop; 0 or -errno. */
int fm_executor_release(struct fm_executor *x);

/* Actions in flight (submitted, not called back). */
unsigned fm_executor_in_flight(const struct fm_executor *x) _pure_;

/* The actuator, for its backends' breaker states in metrics. */
const struct fm_actuator *fm_executor_actuator(const struct fm_executor *x) _pure_;
