/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The pure part of the Kubernetes backend: which API calls exist (the RBAC
 * table), how their URLs are built from validated names, the JSON bodies
 * fleetmedic sends, how a Status answer is read, and how the weights of a
 * VirtualService or HTTPRoute are rewritten. No I/O, no clock (times come
 * in as arguments), never logs. kube.c and lease.c do the talking.
 *
 * Every request the code can make is one row of fm_kube_rbac[], indexed by
 * enum fm_kube_call; the URL builder derives the path (API group, resource,
 * subresource) and the HTTP method (from the verb) from that very row, so
 * the table a Role is checked against cannot drift from what is sent.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "util.h"

#define FM_KUBE_NAME_MAX 253    /* RFC 1123 subdomain */
#define FM_KUBE_LABEL_MAX 63    /* RFC 1123 label (namespaces, Services) */
#define FM_KUBE_URL_MAX 1024    /* a whole request URL */
#define FM_KUBE_RV_MAX 64       /* a resourceVersion we accept */
#define FM_KUBE_MESSAGE_MAX 200 /* the part of a Status message kept */
#define FM_KUBE_DESTS_MAX 32    /* destinations of one weight change */

/* One API call fleetmedic can make; the index into fm_kube_rbac[]. */
enum fm_kube_call {
        FM_KUBE_DEPLOYMENT_GET,
        FM_KUBE_DEPLOYMENT_PATCH, /* rollout restart, container image */
        FM_KUBE_SCALE_GET,
        FM_KUBE_SCALE_PATCH,
        FM_KUBE_ISVC_GET,
        FM_KUBE_ISVC_PATCH, /* storageUri */
        FM_KUBE_VS_GET,
        FM_KUBE_VS_PATCH,
        FM_KUBE_ROUTE_GET,
        FM_KUBE_ROUTE_PATCH,
        FM_KUBE_EVENT_CREATE,
        FM_KUBE_LEASE_GET,
        FM_KUBE_LEASE_CREATE,
        FM_KUBE_LEASE_UPDATE,
        _FM_KUBE_CALL_MAX,
};

/*
 * A permission one call needs: API group ("" for core), resource (plural,
 * "/subresource" appended where one is used) and verb (get, create,
 * update, patch), exactly as a Role's rules spell them.
 */
struct fm_kube_rbac {
        const char *group, *resource, *verb;
};

extern const struct fm_kube_rbac fm_kube_rbac[_FM_KUBE_CALL_MAX];
extern const size_t fm_kube_rbac_n; /* == _FM_KUBE_CALL_MAX */

/* "GET", "POST", "PUT", "PATCH" for call c (from its verb); NULL when out of range. */
const char *fm_kube_call_method(enum fm_kube_call c) _pure_;

/* RFC 1123 subdomain: 1..253 bytes of [a-z0-9.-], dot-separated labels that start and end
 * alphanumeric. NULL is not valid. */
bool fm_kube_name_valid(const char *s) _pure_;

/* RFC 1123 label: 1..63 bytes of [a-z0-9-], starting and ending alphanumeric. */
bool fm_kube_label_valid(const char *s) _pure_;

/* A model version as events carry it: [A-Za-z0-9._-]{1,64}. */
bool fm_kube_version_valid(const char *s) _pure_;

/*
 * Writes the URL of call c into buf: server (http:// or https://, no
 * trailing slash needed), then /api/v1 or /apis/GROUP/VERSION,
 * /namespaces/NS/RESOURCE, /NAME and /SUBRESOURCE. name must be NULL for
 * the create calls (they POST to the collection) and a name otherwise.
 * ns must be a label and name a subdomain; each is percent-escaped too.
 * Returns the length, -EINVAL (bad call, server, ns or name: nothing
 * written that could reach a server) or -ENOBUFS.
 */
int fm_kube_url(const char *server, enum fm_kube_call c, const char *ns, const char *name,
                char *buf, size_t size);

/* What an error answer said. */
struct fm_kube_status {
        int code;                          /* Status.code, else the HTTP status */
        char reason[64];                   /* e.g. "NotFound"; "" when none */
        char message[FM_KUBE_MESSAGE_MAX]; /* control bytes replaced by spaces */
        fm_ms retry_after;                 /* details.retryAfterSeconds, 0 when absent */
};

/*
 * Reads an error answer: a JSON Status, or anything else (the plain-text
 * 429 of max-in-flight and APF, a proxy's HTML) taken as text, its first
 * line as the message. body may be NULL. Never fails.
 */
void fm_kube_status_parse(long http_status, const char *body, size_t len,
                          struct fm_kube_status *ret);

/*
 * Expands a pattern: {deployment} becomes deployment, {version} and
 * {target} become value; other bytes are copied. Returns the length,
 * -EINVAL (an unknown or unclosed placeholder, a NULL argument) or
 * -ENOBUFS.
 */
int fm_kube_expand(const char *pattern, const char *deployment, const char *value, char *buf,
                   size_t size);

/*
 * t (ms since the epoch) as RFC 3339 in UTC: "2025-01-02T03:04:05Z", or
 * with micro, a MicroTime "2025-01-02T03:04:05.123000Z". Returns the
 * length, -ERANGE, -ENOBUFS.
 */
int fm_kube_format_time(fm_ms t, bool micro, char *buf, size_t size);

/* obj's metadata.resourceVersion, NULL when absent or longer than FM_KUBE_RV_MAX. Borrowed. */
const char *fm_kube_resource_version(struct json_object *obj);

/* The object at keys[0].keys[1]... (NULL-terminated), NULL when missing. Borrowed. */
struct json_object *fm_kube_get(struct json_object *obj, const char *const *keys);

/*
 * Request bodies, each a JSON text the caller frees, written to *ret.
 * rv is the resourceVersion the change is conditional on (a 409 when the
 * object moved on), NULL for none. Return 0, -EINVAL, -ENOMEM.
 *   scale:   merge patch {"metadata":{"resourceVersion"},"spec":{"replicas":N}}
 *   restart: strategic merge patch of the pod template's
 *            kubectl.kubernetes.io/restartedAt annotation to `when`
 *   image:   strategic merge patch of one container (by name) to image
 *   storage: merge patch of spec.predictor.model.storageUri
 */
int fm_kube_scale_patch(const char *rv, uint32_t replicas, char **ret);
int fm_kube_restart_patch(const char *rv, const char *when, char **ret);
int fm_kube_image_patch(const char *rv, const char *container, const char *image, char **ret);
int fm_kube_storage_patch(const char *rv, const char *uri, char **ret);

/* A Deployment's spec.replicas (1 when absent) and whether its rollout is complete:
 * observedGeneration >= generation, updated == available == spec.replicas (missing = 0). */
bool fm_kube_rollout_complete(struct json_object *deployment);

/*
 * The image of container `container` in a Deployment's pod template; with
 * container "" the only container. Returns 0 and *ret (borrowed), -ENOENT
 * (no such container, or "" with several), -EBADMSG (malformed).
 */
int fm_kube_container_image(struct json_object *deployment, const char *container,
                            const char **ret);

enum fm_kube_traffic {
        FM_KUBE_TRAFFIC_NONE,
        FM_KUBE_TRAFFIC_ISTIO,   /* VirtualService: spec.http[].route[].destination.subset */
        FM_KUBE_TRAFFIC_GATEWAY, /* HTTPRoute: spec.rules[].backendRefs[].name */
        _FM_KUBE_TRAFFIC_MAX,
};

/* One destination and the weight it should get. */
struct fm_kube_dest {
        char name[FM_KUBE_NAME_MAX + 1]; /* the Istio subset or the backendRef Service name */
        uint32_t weight;
};

/*
 * Rewrites the weights of a VirtualService or HTTPRoute (obj, parsed GET
 * answer, modified in place): in every route (http[] entry or rules[]
 * entry) that names at least one of the n destinations, each named
 * destination gets its weight and every other destination of that route 0.
 * With ret NULL only checks: 0 when every touched route already has these
 * weights, -ESRCH when not. Otherwise writes to *ret a merge patch that
 * carries metadata.resourceVersion (rv) and the whole rewritten
 * spec.http / spec.rules list (merge patches replace lists). Returns 0,
 * -ENOENT (no route names any destination, or a route lacks one of them),
 * -EBADMSG (malformed object), -EINVAL, -ENOMEM.
 */
int fm_kube_weights(enum fm_kube_traffic t, struct json_object *obj, const char *rv,
                    const struct fm_kube_dest *d, size_t n, char **ret);

/* A core/v1 Event about one object. */
struct fm_kube_event {
        const char *ns;
        const char *api_version, *kind, *name; /* the involved object */
        const char *reason;                    /* e.g. "FleetmedicScale" */
        const char *message;                   /* capped at 1 KiB */
        const char *action;                    /* e.g. "Scale" */
        const char *instance;                  /* reportingInstance, e.g. the hostname */
        bool warning;                          /* type Warning, else Normal */
        fm_ms now;
        uint64_t unique; /* makes metadata.name <object>.<hex> unique */
};

/* The POST body of ev into *ret (caller frees). Returns 0, -EINVAL, -ENOMEM. */
int fm_kube_event_body(const struct fm_kube_event *ev, char **ret);
