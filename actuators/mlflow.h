/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The MLflow Model Registry backend: rollback moves a registered model's
 * alias, set_threshold writes a model-version tag, and the versions of a
 * model can be listed. MLflow REST API 2.0 over fm_httpc (HTTP or HTTPS),
 * on the sd-event loop. Shell code: does I/O, never logs.
 *
 * Names
 * -----
 * The registered model of a deployment comes from `models`: an entry with
 * the deployment's name wins, else the entry "*"; a model of "*" means "the
 * deployment's own name". No matching entry: the backend cannot act for
 * that deployment (start() returns -EOPNOTSUPP).
 *
 * A fleetmedic version name is the MLflow version number, written either
 * as the number itself ("7") or with a "v" in front ("v7", as instances
 * usually report it): [v]?[1-9][0-9]{0,9}. Anything else is refused with
 * -EINVAL (a permanent failure) before any request is made. Model names
 * are percent-encoded in query strings and go into JSON bodies through
 * json-c; a model name used inside a search filter must not contain a
 * single quote, a backslash or a control byte (-EINVAL).
 *
 * Actions
 * -------
 * rollback(from, to):
 *   1. GET  registered-models/alias  (name, alias): where the alias points.
 *      An unset alias counts as "nowhere". When it points neither at
 *      `from` nor at `to`, someone else moved it: the attempt fails
 *      permanently with -ESTALE and changes nothing.
 *   2. GET  model-versions/get (name, version=to): `to` must exist and be
 *      READY (PENDING_REGISTRATION is retryable, FAILED_REGISTRATION
 *      permanent).
 *   3. POST registered-models/alias {name, alias, version=to}, skipped when
 *      the alias is already there (a retry after a partial success).
 *   4. POST model-versions/set-tag {name, version=from,
 *      key=rolled_back_tag, value="<alias>:<to>"}: marks `from` as rolled
 *      back from, and to what.
 *   Observed: the alias points at `to`.
 * set_threshold(version, to):
 *   POST model-versions/set-tag {name, version, key=threshold_tag,
 *   value=to as the shortest decimal that reads back as the same double}.
 *   Observed: that tag of that version parses to exactly `to`.
 * observe: rollback holds when the alias points at `to`; a threshold holds
 *   when the tag equals the value. Nothing is written.
 *
 * Errors: MLflow's {"error_code","message"} body goes into the detail
 * ("HTTP 404 RESOURCE_DOES_NOT_EXIST: Model Version (name=m, version=9) not
 * found"); the kind follows the HTTP status (fm_result_kind_from_http:
 * 408, 409, 429, 5xx retryable, with the server's Retry-After); transport
 * errors follow fm_result_kind_from_errno.
 *
 * Credentials: basic auth when both username_file and password_file are
 * set (MLflow's own rule: basic wins), else a bearer token from
 * token_file, else none. Each file's first line is read at fm_mlflow_new()
 * and again whenever the file's mtime, size or inode changes (checked
 * before each request); a file that cannot be read later keeps the last
 * good value. Secrets never reach a detail.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <systemd/sd-event.h>

#include "actuator.h"
#include "util.h"

#define FM_MLFLOW_URI_MAX 256     /* bytes of uri, with its NUL */
#define FM_MLFLOW_PATH_MAX 256    /* bytes of a file path, with its NUL */
#define FM_MLFLOW_MODEL_MAX 256   /* bytes of a registered model name, with its NUL */
#define FM_MLFLOW_ALIAS_MAX 256   /* MLflow: at most 255 bytes of [A-Za-z0-9_-] */
#define FM_MLFLOW_TAG_KEY_MAX 251 /* MLflow: tag keys at most 250 bytes */
#define FM_MLFLOW_MODELS_MAX 64   /* entries of the deployment -> model mapping */
#define FM_MLFLOW_LIST_MAX 1024   /* versions one fm_mlflow_list_versions() gathers */
#define FM_MLFLOW_SECRET_MAX 4096 /* bytes of a credential file's first line */
#define FM_MLFLOW_VERSION_NUM_MAX 16

struct fm_mlflow_model_map {
        char deployment[FM_NAME_MAX + 1]; /* a deployment name or "*" */
        char model[FM_MLFLOW_MODEL_MAX];  /* the registered model, or "*": the deployment's name */
};

/*
 * Configuration, section `actuators.mlflow:`.
 *   uri: http://127.0.0.1:5000     http:// or https:// base; a trailing "/" is dropped,
 *                                  a path prefix kept; < FM_MLFLOW_URI_MAX bytes
 *   ca_file: ""                    PEM bundle for https; "" = the system store
 *   token_file: ""                 bearer token (first line)
 *   username_file: ""  password_file: ""   basic auth; both or neither
 *   alias: production              the alias rollback moves: [A-Za-z0-9_-]{1,255},
 *                                  not "latest" (any case), not v<digits>
 *   threshold_tag: fleetmedic.threshold     version tag set_threshold writes
 *   rolled_back_tag: fleetmedic.rolled_back version tag marking a rolled-back version
 *                                  tag keys: [A-Za-z0-9_./ -]{1,250}
 *   timeout_s: 10                  each HTTP request, 0.001 .. 600
 *   models: [{deployment: "*", model: "*"}]   up to FM_MLFLOW_MODELS_MAX entries,
 *                                  deployment a name or "*", model non-empty, no
 *                                  duplicate deployments
 */
struct fm_mlflow_config {
        char uri[FM_MLFLOW_URI_MAX];
        char ca_file[FM_MLFLOW_PATH_MAX];
        char token_file[FM_MLFLOW_PATH_MAX];
        char username_file[FM_MLFLOW_PATH_MAX];
        char password_file[FM_MLFLOW_PATH_MAX];
        char alias[FM_MLFLOW_ALIAS_MAX];
        char threshold_tag[FM_MLFLOW_TAG_KEY_MAX];
        char rolled_back_tag[FM_MLFLOW_TAG_KEY_MAX];
        fm_ms timeout;
        uint32_t n_models;
        struct fm_mlflow_model_map models[FM_MLFLOW_MODELS_MAX];
};

void fm_mlflow_config_default(struct fm_mlflow_config *cfg);

/* 0 or -EINVAL (a value outside the ranges above). */
int fm_mlflow_config_validate(const struct fm_mlflow_config *cfg);

struct fm_mlflow;

/*
 * Results go to actuator a (fm_actuator_complete); a may be NULL when only
 * fm_mlflow_list_versions() is used. Reads the credential files. Returns 0,
 * -EINVAL (cfg invalid, a credential with control bytes or empty), -ENOMEM,
 * -errno of reading a credential file, -EIO (libcurl); *ret untouched on
 * failure.
 */
int fm_mlflow_new(sd_event *event, const struct fm_mlflow_config *cfg, struct fm_actuator *a,
                  struct fm_mlflow **ret);

/* Aborts in-flight work, never completes; wipes the credentials. Accepts NULL; returns NULL. */
struct fm_mlflow *fm_mlflow_free(struct fm_mlflow *x);

/* The registered model for deployment (see Names), or NULL. Points into x's config. */
const char *fm_mlflow_model_for(const struct fm_mlflow *x, const char *deployment);

extern const struct fm_backend_ops fm_backend_mlflow_ops; /* backend pointer = struct fm_mlflow * */

/* One model version as listed. Strings are truncated to fit. */
struct fm_mlflow_version {
        char version[FM_MLFLOW_VERSION_NUM_MAX]; /* MLflow's version number, "3" */
        char status[32];                         /* READY, PENDING_REGISTRATION, ... */
        char current_stage[16];                  /* None, Staging, Production, Archived */
        char run_id[64];
        fm_ms creation_timestamp;
        bool has_alias;     /* the configured alias points here */
        bool rolled_back;   /* carries rolled_back_tag */
        bool has_threshold; /* carries threshold_tag ... */
        double threshold;   /* ... with this value (when it parses) */
};

struct fm_mlflow_version_list {
        int error;          /* 0, or a negative errno (-ENOENT: no such model, -EIO, transport) */
        long status;        /* HTTP status of the last response, 0 without one */
        const char *detail; /* on error: what went wrong; NULL otherwise */
        size_t n;
        bool truncated; /* more than FM_MLFLOW_LIST_MAX versions exist; the first ones are here */
        const struct fm_mlflow_version *v;
};

/* Valid during the callback only. */
typedef void (*fm_mlflow_list_fn)(void *userdata, const struct fm_mlflow_version_list *list);

/*
 * Lists every version of registered model `model` (model-versions/search
 * with filter name='model', page by page through next_page_token).
 * Asynchronous: done runs once from the loop, never from inside this call,
 * unless the listing is cancelled first. Returns 0 and an id > 0 in *ret_id
 * (may be NULL), -EINVAL (bad model name), -ENOMEM.
 */
int fm_mlflow_list_versions(struct fm_mlflow *x, const char *model, fm_mlflow_list_fn done,
                            void *userdata, uint64_t *ret_id);

/* Stops listing id; its callback is not called. Unknown ids are ignored. */
void fm_mlflow_list_cancel(struct fm_mlflow *x, uint64_t id);

/*
 * Parses a fleetmedic version name into MLflow's version number ("v7" and
 * "7" both give "7"). Returns the length written, -EINVAL, -ENOBUFS.
 */
int fm_mlflow_version_number(const char *version, char *buf, size_t size);
