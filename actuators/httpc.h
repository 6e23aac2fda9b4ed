/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Asynchronous HTTP(S) client for the actuators (kubernetes, mlflow,
 * alertmanager): libcurl's multi interface driven by an sd-event loop
 * (CURLMOPT_SOCKETFUNCTION -> sd_event_add_io, CURLMOPT_TIMERFUNCTION -> a
 * CLOCK_MONOTONIC timer source). Nothing blocks: a request is submitted,
 * and its done callback runs later from the loop — never from inside
 * fm_httpc_submit() — exactly once unless it was cancelled first.
 *
 * Transport rules: HTTP and HTTPS only (CURLOPT_PROTOCOLS_STR), no
 * redirects followed, TLS peers always verified (with ca_file when given,
 * else the system store), no proxy from the environment, no signals, a
 * response body capped at FM_HTTPC_BODY_MAX (-EFBIG beyond), a whole-
 * transfer timeout. Shell-side: does I/O, never logs.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <systemd/sd-event.h>

#include "util.h"

#define FM_HTTPC_BODY_MAX (8u * 1024u * 1024u) /* bytes of one response body */
#define FM_HTTPC_HEADERS_MAX 16                /* request headers of one request */

struct fm_httpc;

/* Returns 0, -ENOMEM, -EIO (libcurl failed to initialise); *ret untouched on failure. */
int fm_httpc_new(sd_event *event, struct fm_httpc **ret);

/* Aborts every transfer without calling its callback, frees. Accepts NULL; returns NULL. */
struct fm_httpc *fm_httpc_free(struct fm_httpc *h);

struct fm_httpc_request {
        const char *method;          /* "GET", "POST", "PUT", "PATCH", "DELETE" */
        const char *url;             /* http:// or https:// only */
        const char *const *headers;  /* NULL-terminated "Name: value" lines, or NULL */
        const char *body;            /* copied; NULL for none */
        size_t body_len;
        const char *ca_file;         /* PEM bundle to verify the server with; NULL: system */
        const char *basic_user;      /* with basic_password: HTTP basic auth; NULL: none */
        const char *basic_password;
        fm_ms timeout;               /* whole transfer, > 0 */
};

struct fm_httpc_response {
        int error;            /* 0 when an HTTP status came back; else a negative errno:
                                 -ETIMEDOUT, -ECONNREFUSED, -EHOSTUNREACH, -ECONNRESET,
                                 -EPROTO (TLS or protocol failure), -EFBIG (body too large),
                                 -EIO (anything else) */
        long status;          /* HTTP status, 0 when error != 0 */
        const char *body;     /* NUL-terminated, valid during the callback only */
        size_t body_len;
        fm_ms retry_after;    /* from a Retry-After header in seconds; 0 when absent */
        const char *content_type; /* NULL when absent; valid during the callback */
        const char *detail;   /* libcurl's error text when error != 0, else NULL */
};

typedef void (*fm_httpc_done_fn)(void *userdata, const struct fm_httpc_response *resp);

/*
 * Starts a request (everything in req is copied). Returns 0 and an id > 0 in
 * *ret_id (may be NULL), -EINVAL (bad method, URL not http(s), too many
 * headers, timeout <= 0), -ENOMEM.
 */
int fm_httpc_submit(struct fm_httpc *h, const struct fm_httpc_request *req, fm_httpc_done_fn done,
                    void *userdata, uint64_t *ret_id);

/* Aborts request id; its callback is not called. Unknown ids are ignored. */
void fm_httpc_cancel(struct fm_httpc *h, uint64_t id);

/* Requests in flight. */
unsigned fm_httpc_in_flight(const struct fm_httpc *h) _pure_;

/*
 * Percent-encodes s for one URL path segment or query value: every byte but
 * the RFC 3986 unreserved ones (A-Z a-z 0-9 - . _ ~) becomes %XX, so "/",
 * "?", "#", ".." and NUL-free control bytes cannot change the URL's shape.
 * Returns the length written (excluding NUL) or -ENOBUFS when size is too small.
 */
int fm_url_escape(const char *s, char *buf, size_t size);
