/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The Kubernetes backend: scale (the apps/v1 scale subresource), set_weights
 * (an Istio VirtualService or a Gateway API HTTPRoute), restart (a rollout
 * restart of the pod template), rollback (a container image, or a KServe
 * InferenceService's storageUri), each recorded as a core/v1 Event; and the
 * transport the Lease elector (lease.h) shares.
 *
 * Each attempt reads the object, computes the change and writes it with the
 * resourceVersion it read, so a concurrent writer makes the write fail with
 * 409; the attempt then re-reads and tries again, at most
 * FM_KUBE_CONFLICT_RETRIES times, before it reports a retryable failure.
 * When leader election is on, the fencing token (req->fence) is compared
 * with the lease's transition count right before every write; a mismatch,
 * or not leading, ends the attempt as FM_RESULT_REFUSED.
 *
 * Errors: the Status object of an answer is read into the detail ("403
 * Forbidden: ..."); 401, 403, 404, 415 and 422 are permanent, 409, 429 and
 * 5xx retryable with the server's Retry-After; an answer slower than
 * `timeout` ends as a retryable -ETIMEDOUT. After a 401 the token file is
 * read again and, when the token changed, the request is sent once more.
 *
 * Every name that reaches a URL is checked as an RFC 1123 subdomain (the
 * namespace as a label) and escaped; a hostile name fails the attempt with
 * -EINVAL before any request is made.
 *
 * Shell code: does I/O on the sd-event loop, never logs.
 */

#include <stdbool.h>
#include <stdint.h>

#include <systemd/sd-event.h>

#include "actuator.h"
#include "httpc.h"
#include "kube_api.h"
#include "lease.h"
#include "util.h"

#define FM_KUBE_MAPPINGS_MAX 65               /* 64 named deployments and one "*" */
#define FM_KUBE_PATTERN_MAX 256               /* image, storage URI and destination patterns */
#define FM_KUBE_PATH_MAX 4096                 /* file names */
#define FM_KUBE_SERVER_MAX 256                /* the server URL */
#define FM_KUBE_TOKEN_MAX 16384               /* bytes of a bearer token */
#define FM_KUBE_CONFLICT_RETRIES 3            /* re-reads after a 409 inside one attempt */
#define FM_KUBE_OPS_MAX FM_ACTUATOR_QUEUE_MAX /* attempts in flight */
#define FM_KUBE_SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"

enum fm_kube_workload {
        FM_KUBE_WORKLOAD_DEPLOYMENT,       /* apps/v1 Deployment */
        FM_KUBE_WORKLOAD_INFERENCESERVICE, /* serving.kserve.io/v1beta1 InferenceService */
        _FM_KUBE_WORKLOAD_MAX,
};

/*
 * How one deployment (an event's deployment name, or "*" for every other)
 * maps onto Kubernetes objects. YAML, a list under
 * actuators.kubernetes.deployments, each item:
 *   deployment: "*"            a deployment name or "*"; each at most once
 *   kind: deployment           deployment or inferenceservice
 *   workload: ""               "" = the deployment name; an RFC 1123 subdomain
 *   container: ""              container whose image a rollback sets; "" = the only one
 *   image: ""                  rollback image pattern, e.g. registry.example/model:{version};
 *                              "" = rollback unsupported (kind deployment)
 *   storage_uri: ""            rollback storageUri pattern (kind inferenceservice),
 *                              e.g. s3://models/{deployment}/{version}
 *   traffic_name: ""           "" = the deployment name; the VirtualService or HTTPRoute
 *   destination: ""            destination pattern of a weight target; "" = "{target}"
 *                              (Istio subset) or "{deployment}-{target}" (Gateway Service)
 * Patterns know {deployment}, {version} and {target}.
 * Kind inferenceservice supports rollback and set_weights only.
 */
struct fm_kube_mapping {
        char deployment[FM_KUBE_NAME_MAX + 1];
        enum fm_kube_workload kind;
        char workload[FM_KUBE_NAME_MAX + 1];
        char container[FM_KUBE_LABEL_MAX + 1];
        char image[FM_KUBE_PATTERN_MAX];
        char storage_uri[FM_KUBE_PATTERN_MAX];
        char traffic_name[FM_KUBE_NAME_MAX + 1];
        char destination[FM_KUBE_PATTERN_MAX];
};

/*
 * YAML, under actuators.kubernetes:
 *   in_cluster: false          true: server from $KUBERNETES_SERVICE_HOST/PORT, token,
 *                              ca.crt and namespace from sa_dir (server, token_file and
 *                              ca_file must then be empty)
 *   sa_dir: /var/run/secrets/kubernetes.io/serviceaccount
 *   server: ""                 https://host:port (http:// accepted for tests); required
 *                              unless in_cluster
 *   token_file: ""             bearer token file; "" = no Authorization header
 *   ca_file: ""                PEM bundle; "" = the system store
 *   namespace: ""              "" = $POD_NAMESPACE, sa_dir/namespace (in cluster), or
 *                              "default"; an RFC 1123 label
 *   timeout_s: 10              per request, 0.001 .. 300
 *   token_reread_s: 60         the token file is read again when older than this, 0.001 .. 3600
 *   traffic: none              none, istio or gateway
 *   events: true               record a core/v1 Event per action
 *   deployments: [...]         struct fm_kube_mapping; default one "*" mapping of kind
 *                              deployment with every field empty
 *   lease: {...}               struct fm_lease_config
 */
struct fm_kube_config {
        bool in_cluster;
        char sa_dir[FM_KUBE_PATH_MAX];
        char server[FM_KUBE_SERVER_MAX];
        char token_file[FM_KUBE_PATH_MAX];
        char ca_file[FM_KUBE_PATH_MAX];
        char namespace_[FM_KUBE_LABEL_MAX + 1];
        fm_ms timeout;
        fm_ms token_reread;
        enum fm_kube_traffic traffic;
        bool events;
        uint32_t n_mappings;
        struct fm_kube_mapping mapping[FM_KUBE_MAPPINGS_MAX];
        struct fm_lease_config lease;
};

void fm_kube_config_default(struct fm_kube_config *cfg);

/* 0 or -EINVAL: the ranges above, invalid names and patterns, duplicate deployments, more
 * than 64 named mappings. Does not read files or the environment. */
int fm_kube_config_validate(const struct fm_kube_config *cfg);

struct fm_kube;

/*
 * a is where results go (borrowed); event the loop. With in_cluster reads
 * the environment and sa_dir now (-ENXIO when not in a cluster). Returns
 * 0, -EINVAL, -ENOMEM, -ENXIO, -errno of reading a file; *ret untouched
 * on failure. a may be NULL for a transport used only by a Lease elector.
 */
int fm_kube_new(sd_event *event, const struct fm_kube_config *cfg, struct fm_actuator *a,
                struct fm_kube **ret);

/* Aborts in-flight work without completing it (Events too), frees. Accepts NULL; returns
 * NULL. The lease (fm_kube_set_lease) is not freed. */
struct fm_kube *fm_kube_free(struct fm_kube *k);

/*
 * The elector whose transition count fences every write (borrowed; NULL
 * to unset). While the configuration has lease.enabled and no elector is
 * set, every write is refused.
 */
void fm_kube_set_lease(struct fm_kube *k, struct fm_lease *l);

/* The namespace in use (after defaults). */
const char *fm_kube_namespace(const struct fm_kube *k) _pure_;

/* The transport, for lease.c: a request of call c on name (NULL for create) in ns (NULL:
 * the backend's), with an optional body of content type ctype. done gets the answer on the
 * loop; a 401 is retried once with a re-read token. Returns 0 and *ret_id, -EINVAL (bad
 * name: nothing sent), -ENOMEM, -errno of reading the token. */
typedef void (*fm_kube_done_fn)(void *userdata, const struct fm_httpc_response *resp);
int fm_kube_request(struct fm_kube *k, enum fm_kube_call c, const char *ns, const char *name,
                    const char *ctype, const char *body, fm_ms timeout, fm_kube_done_fn done,
                    void *userdata, uint64_t *ret_id);

/* Aborts a request of fm_kube_request(); its callback is not called. */
void fm_kube_cancel(struct fm_kube *k, uint64_t id);

/* Requests sent so far (each HTTP request counts, 401 retries too). */
uint64_t fm_kube_requests(const struct fm_kube *k) _pure_;

extern const struct fm_backend_ops fm_backend_kube_ops; /* backend pointer = struct fm_kube * */
