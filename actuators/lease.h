/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Leader election with a coordination.k8s.io/v1 Lease, the way client-go's
 * leaderelection package does it (section 2.6 of the API facts), driven by
 * an sd-event loop.
 *
 * Every retry_period the elector GETs the Lease (creating it when absent)
 * and, when it holds it or the record has expired, PUTs it back with the
 * resourceVersion it read, so of two electors racing only one wins (the
 * other gets 409). Expiry is judged by the local time at which this
 * elector last saw the record change, plus leaseDurationSeconds — never by
 * the server's renewTime, so clock skew between replicas does not matter.
 * A takeover increments leaseTransitions; that count is the fencing token
 * every action carries (fm_lease_is_leader()).
 *
 * A leader that cannot renew within renew_deadline (measured from when the
 * last successful renewal was sent) steps down on its own, before any
 * other elector can consider the lease expired (renew_deadline <
 * lease_duration).
 *
 * Shell code: does I/O through the Kubernetes backend's transport, never
 * logs.
 */

#include <stdbool.h>
#include <stdint.h>

#include <systemd/sd-event.h>

#include "kube_api.h"
#include "util.h"

/*
 * YAML, under actuators.kubernetes.lease:
 *   enabled: false
 *   name: fleetmedic              an RFC 1123 subdomain
 *   namespace: ""                 "" = the backend's namespace
 *   identity: ""                  "" = the host name; 1..128 bytes, no control bytes
 *   lease_duration_s: 15          client-go's defaults; the rule
 *   renew_deadline_s: 10            lease_duration > renew_deadline > 1.2 * retry_period
 *   retry_period_s: 2             applies; lease_duration in whole seconds, 1 .. 3600
 *   release_on_stop: true         give the lease up on a clean stop (fm_lease_release)
 */
struct fm_lease_config {
        bool enabled;
        char name[FM_KUBE_NAME_MAX + 1];
        char namespace_[FM_KUBE_LABEL_MAX + 1];
        char identity[129];
        fm_ms lease_duration;
        fm_ms renew_deadline;
        fm_ms retry_period;
        bool release_on_stop;
};

void fm_lease_config_default(struct fm_lease_config *cfg);

/* 0 or -EINVAL (the ranges and rule above; a disabled config is checked too). */
int fm_lease_config_validate(const struct fm_lease_config *cfg);

struct fm_kube;
struct fm_lease;

/*
 * Called from the event loop (never from inside an fm_lease_* call) when
 * this elector becomes leader (leader true, transitions the fencing token)
 * or stops being leader.
 */
typedef void (*fm_lease_change_fn)(void *userdata, bool leader, uint64_t transitions);

/*
 * Starts electing at once on event. kube is the transport (server, token,
 * CA, timeout; borrowed: it must outlive the elector); cfg is copied, and
 * an empty identity or namespace is filled from the host name or kube's
 * namespace. on_change may be NULL. Returns 0, -EINVAL (cfg invalid or
 * not enabled), -ENOMEM, or -errno of a setup step; *ret untouched on
 * failure.
 */
int fm_lease_new(sd_event *event, struct fm_kube *kube, const struct fm_lease_config *cfg,
                 fm_lease_change_fn on_change, void *userdata, struct fm_lease **ret);

/* Stops at once (no release, no callback), cancels what is in flight. Accepts NULL; returns
 * NULL. */
struct fm_lease *fm_lease_free(struct fm_lease *l);

/*
 * True when this elector leads right now: it holds the lease and its last
 * successful renewal was sent less than renew_deadline ago. *ret_fence
 * (may be NULL) gets leaseTransitions as of that renewal; untouched when
 * false.
 */
bool fm_lease_is_leader(const struct fm_lease *l, uint64_t *ret_fence);

/*
 * Steps down and, when leading, hands the lease back (holderIdentity "",
 * leaseDurationSeconds 1, leaseTransitions unchanged) with one PUT that
 * completes on the loop; the elector stops electing. on_change(false) is
 * called from the loop when it was leader. Returns 0 or -errno of the
 * request.
 */
int fm_lease_release(struct fm_lease *l);

/* The identity in use (after defaults). */
const char *fm_lease_identity(const struct fm_lease *l) _pure_;
