/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * What the backends that talk to a server over fm_httpc (kubernetes and its
 * Lease elector, mlflow, alertmanager) share: checks of configured text,
 * the printable copy of server text that goes into a result's detail,
 * reading a response as a JSON object, and the loop's clock. The clock and
 * the small-file reader serve the other backends on the loop too. Shell
 * code: does I/O (the clock, a file), never logs.
 */

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include <json-c/json.h>
#include <systemd/sd-event.h>

#include "httpc.h"
#include "util.h"

/* True when s holds a NUL within its size bytes. */
bool fm_text_terminated(const char *s, size_t size) _pure_;

/* True when s has no control byte (< 0x20, 0x7f). */
bool fm_text_no_controls(const char *s) _pure_;

/*
 * Copies at most max bytes of s (NULL: "") into dst of size bytes, always
 * NUL-terminated when size > 0, every control byte replaced by '?'.
 */
void fm_text_sanitize(char *dst, size_t size, const char *s, size_t max);

/* True when url starts with http:// or https:// (any case). */
bool fm_http_url_scheme_ok(const char *url) _pure_;

/* A server's base URL: an http(s) scheme, no control bytes, no space, '?' or '#'. */
bool fm_http_base_url_ok(const char *url) _pure_;

/* Cuts the trailing slashes of url in place. */
void fm_http_trim_slashes(char *url);

/*
 * What went wrong with a request that got no HTTP answer (resp->error < 0):
 * libcurl's text, else strerror. Written into d of size bytes.
 */
void fm_http_transport_detail(const struct fm_httpc_response *resp, char *d, size_t size);

/*
 * The response body parsed as one JSON object; NULL when the body is empty,
 * not JSON, or JSON of another type. The caller owns the result.
 */
json_object *fm_http_json_object(const struct fm_httpc_response *resp);

/*
 * Adds value under key to the JSON object o, taking value over (it is put
 * on failure; NULL, from a failed json_object_new_*, counts as failure).
 * Returns 0 or -ENOMEM.
 */
int fm_json_add(json_object *o, const char *key, json_object *value);

/* fm_json_add() of a new string holding a copy of value. */
int fm_json_add_string(json_object *o, const char *key, const char *value);

/*
 * The loop's cached time of clock (CLOCK_MONOTONIC, CLOCK_REALTIME) in
 * milliseconds, or the clock read directly when the loop cannot say.
 */
fm_ms fm_backend_now(sd_event *event, clockid_t clock);

/*
 * Reads path whole into a new NUL-terminated buffer (*ret, the caller frees
 * it; *ret_len, may be NULL, its length). Returns 0, -EFBIG (more than max
 * bytes), -ENOMEM, or -errno of open or read (-EISDIR for a directory);
 * nothing is written on failure.
 */
int fm_read_small_file(const char *path, size_t max, char **ret, size_t *ret_len);
