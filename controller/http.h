/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The controller's HTTP endpoint server: libmicrohttpd driven from the
 * sd-event loop (MHD_USE_EPOLL without an internal thread; its epoll fd is
 * one IO source and MHD's timeout one timer), so handlers run on the loop
 * thread and may read the daemon's state without locks.
 *
 * Only GET and HEAD are served; other methods get 405. Request bodies are
 * not read. Connections are limited (FM_HTTP_MAX_CONNECTIONS) and time out
 * (FM_HTTP_TIMEOUT_S).
 */

#include <stdint.h>

#include <systemd/sd-event.h>

#include "buf.h"

#define FM_HTTP_MAX_CONNECTIONS 64
#define FM_HTTP_TIMEOUT_S 10
#define FM_HTTP_DEFAULT_LISTEN "127.0.0.1:9187"

/*
 * Serves one request. path is the URL path without the query, percent-
 * decoded by libmicrohttpd (so "/a%3Fb" arrives as "/a?b"). Fills body
 * (owned by the server, empty on entry) and *content_type (static string;
 * NULL means text/plain; charset=utf-8) and returns the HTTP status code.
 * A status outside 100..599 (0, say, after an fm_buf append failed) means
 * "could not build the answer": the body is dropped and a plain 500 sent.
 * Called for GET and HEAD only; for HEAD the body is built and not sent.
 */
typedef unsigned (*fm_http_handler)(void *userdata, const char *path, struct fm_buf *body,
                                    const char **content_type);

struct fm_http;

/*
 * Parses "ADDR:PORT" ("127.0.0.1:9187", "[::1]:9187", port 0 for any free
 * port) into a socket address. Returns 0 or -EINVAL; *ret and *ret_len are
 * untouched on error. Addresses are numeric only (inet_pton: dotted-quad
 * IPv4, bracketed IPv6 without a zone id); names such as "localhost" are
 * refused, never resolved. Shared with the config validation so both
 * accept exactly the same strings (implemented in listen.c).
 */
struct sockaddr_storage;
int fm_http_parse_listen(const char *listen, struct sockaddr_storage *ret, unsigned *ret_len);

/*
 * Binds and starts serving on e. Returns 0, -EINVAL (bad address or
 * argument), -EADDRINUSE, or what bind() said (-EADDRNOTAVAIL, -EACCES,
 * -EAFNOSUPPORT, ...), other -errno. *ret is written only on success.
 */
int fm_http_new(sd_event *e, const char *listen, fm_http_handler handler, void *userdata,
                struct fm_http **ret);

/* Stops serving and frees; accepts NULL; returns NULL. Not from inside the handler. */
struct fm_http *fm_http_free(struct fm_http *h);

/* The bound TCP port (useful with port 0); 0 for NULL. */
uint16_t fm_http_port(const struct fm_http *h);
