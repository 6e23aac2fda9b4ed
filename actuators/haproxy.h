/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The HAProxy backend: set_weights through HAProxy's runtime API (the
 * "stats socket" at level admin), and a server state API (ready, drain,
 * maint) for the daemon and the breaker.
 *
 * Names. A set_weights request names a deployment and weight targets
 * (versions or instances). A mapping turns them into HAProxy names: the
 * backend is the mapping's `backend` (default: the deployment's name), the
 * server is the mapping's `server` pattern with "{target}" and
 * "{deployment}" replaced (default "{target}": the target's name itself).
 * Every name that reaches a command line must match [A-Za-z0-9._-]{1,127}
 * (fm_haproxy_name_valid()); anything else is refused with -EINVAL before a
 * byte is sent, so no ";" (the CLI's command separator), space, newline or
 * "/" can change what HAProxy executes.
 *
 * Weights. fleetmedic weights are 0..100 and HAProxy's 0..256; both are
 * relative (HAProxy shares traffic in proportion to the weights of the
 * servers that are up), so a weight w > 0 is passed through as it is:
 * {v1:90, v2:10} becomes weights 90 and 10. A weight of 0 means drain: the
 * server is put in state drain (no new traffic, sticky sessions finish)
 * and its weight is left as it was, so a later ready restores it. A server
 * in maint already takes no traffic and satisfies a weight of 0 as it is.
 * A server whose weight goes above 0 gets its weight first and then state
 * ready, so it never serves a moment at a stale weight. The servers that
 * gain traffic are changed before those that are drained, so a move from
 * {v1:100, v2:0} to {v1:0, v2:100} never leaves the backend without a
 * ready server. A target with a weight above 0 whose server is in maint
 * (an operator's or the breaker's) fails the whole request before anything
 * is changed: set_weights never undoes a maintenance.
 *
 * One attempt:
 *   1. "show servers state <backend>" (format 1, HAProxy 1.8 .. 3.x): the
 *      state of every server. A missing backend fails here ("Can't find
 *      backend."); a missing server is asked about once with
 *      "get weight <backend>/<server>" so the failure carries HAProxy's
 *      own words ("No such server.").
 *   2. Only what differs: "set server <b>/<s> weight <w>",
 *      "set server <b>/<s> state ready|drain" ("set weight" is marked
 *      deprecated in 2.6's help; "set server ... weight" does the same).
 *   3. "show servers state <backend>" again: the attempt completes OK only
 *      when every target reads back as asked, with a detail such as
 *      "web/v1 weight 90 ready, web/v2 weight 10 ready".
 * An observe request runs step 1 only: OK when the state holds, else
 * PERMANENT with -ESRCH.
 *
 * Transport. Each command is one connection (the runtime API answers one
 * line in non-interactive mode and closes): a non-blocking AF_UNIX (or
 * loopback TCP) stream socket on the sd-event loop, the command written,
 * the answer read until EOF (at most FM_HAPROXY_RESPONSE_MAX bytes), the
 * whole exchange bounded by `timeout`. Requests run one after the other in
 * the order they came (at most FM_HAPROXY_QUEUE_MAX held), so two actions
 * never interleave their commands.
 *
 * Failures: a socket that is missing, refuses, resets or times out is
 * retryable (HAProxy restarting); an unknown backend or server (-ENOENT),
 * "Permission denied" (-EACCES: the socket is not at level admin), an
 * unknown command (-EOPNOTSUPP) or an answer we cannot read (-EBADMSG) is
 * permanent; a read-back that differs after the change (someone else
 * changed the server meanwhile) is retryable with -EAGAIN.
 *
 * Shell code: does I/O, never logs, never runs a program.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <systemd/sd-event.h>

#include "actuator.h"

/* Limits. */
#define FM_HAPROXY_MAPPINGS_MAX 64              /* per-deployment mappings, "*" included */
#define FM_HAPROXY_NAME_MAX 127                 /* bytes of a backend or server name */
#define FM_HAPROXY_SOCKET_MAX 107               /* bytes of the socket address (sun_path) */
#define FM_HAPROXY_QUEUE_MAX 64                 /* requests held at once (running + waiting) */
#define FM_HAPROXY_RESPONSE_MAX (1024u * 1024u) /* bytes of one answer */
#define FM_HAPROXY_CMD_MAX 320                  /* bytes of one command line, with "\n" */
#define FM_HAPROXY_WEIGHT_MAX 256               /* HAProxy's largest weight */
#define FM_HAPROXY_TIMEOUT_MAX ((fm_ms)300 * FM_MS_PER_S)

/*
 * Configuration keys (section actuators.haproxy):
 *   socket: /run/haproxy/admin.sock  the runtime API: an absolute path of a
 *                                    unix socket (at most 107 bytes), or
 *                                    "ipv4@127.0.0.1:PORT" (loopback
 *                                    127.0.0.0/8 only, port 1..65535)
 *   timeout_s: 5                     one command's exchange; 0.001 .. 300
 *   mappings:                        at most 64
 *     - deployment: web              a deployment name or "*" (the default
 *                                    for the others); each at most once
 *       backend: ""                  "" = the deployment's name, else a name
 *                                    [A-Za-z0-9._-]{1,127}
 *       server: "{target}"           pattern of the server name: "{target}"
 *                                    and "{deployment}" are replaced; else
 *                                    only [A-Za-z0-9._-]; "" = "{target}"
 * Without a mapping for a deployment (and no "*"), the defaults apply.
 */
struct fm_haproxy_mapping {
        char deployment[FM_NAME_MAX + 1];      /* a name or "*" */
        char backend[FM_HAPROXY_NAME_MAX + 1]; /* "" = the deployment's name */
        char server[FM_HAPROXY_NAME_MAX + 1];  /* pattern; "" = "{target}" */
};

struct fm_haproxy_config {
        char socket[FM_HAPROXY_SOCKET_MAX + 1]; /* default "/run/haproxy/admin.sock" */
        fm_ms timeout;                          /* default 5 s; 1 ms .. 300 s */
        uint32_t n_mappings;                    /* default 0 */
        struct fm_haproxy_mapping mapping[FM_HAPROXY_MAPPINGS_MAX];
};

void fm_haproxy_config_default(struct fm_haproxy_config *cfg);

/* Returns 0, or -EINVAL for any value outside the ranges above (cfg NULL included). */
int fm_haproxy_config_validate(const struct fm_haproxy_config *cfg);

/* True when s is a name that may enter a command line: [A-Za-z0-9._-]{1,127}. */
bool fm_haproxy_name_valid(const char *s) _pure_;

/*
 * The HAProxy backend and server of (deployment, target) under cfg (the
 * deployment's own mapping, else "*", else the defaults), written to
 * backend and server (each FM_HAPROXY_NAME_MAX + 1 bytes). Returns 0, or
 * -EINVAL when an input or a resulting name is not a valid name;
 * the outputs are untouched on failure.
 */
int fm_haproxy_map(const struct fm_haproxy_config *cfg, const char *deployment, const char *target,
                   char backend[static FM_HAPROXY_NAME_MAX + 1],
                   char server[static FM_HAPROXY_NAME_MAX + 1]);

/* An administrative state of a server, as the runtime API sets it. */
enum fm_haproxy_state {
        FM_HAPROXY_READY,
        FM_HAPROXY_DRAIN,
        FM_HAPROXY_MAINT,
        _FM_HAPROXY_STATE_MAX,
};

/* "ready", "drain", "maint"; NULL for anything else. */
const char *fm_haproxy_state_name(enum fm_haproxy_state s) _pure_;

/*
 * The state an srv_admin_state bit set shows: maint when any maintenance
 * bit is set (forced, inherited, configured, resolution, hostname), else
 * drain when a drain bit is (forced or inherited), else ready.
 */
enum fm_haproxy_state fm_haproxy_admin_state(uint32_t admin) _pure_;

/*
 * Command lines, "\n" included, into buf. Every name is checked with
 * fm_haproxy_name_valid(). Return the length, -EINVAL (a bad name, weight
 * over FM_HAPROXY_WEIGHT_MAX, bad state) or -ENOBUFS (size too small).
 */
int fm_haproxy_cmd_set_weight(char *buf, size_t size, const char *backend, const char *server,
                              uint32_t weight);
int fm_haproxy_cmd_set_state(char *buf, size_t size, const char *backend, const char *server,
                             enum fm_haproxy_state state);
int fm_haproxy_cmd_get_weight(char *buf, size_t size, const char *backend, const char *server);
int fm_haproxy_cmd_show_state(char *buf, size_t size, const char *backend);

/*
 * Reads an answer to "get weight": "<current> (initial <initial>)".
 * Returns 0 and both numbers (either pointer may be NULL), or -EBADMSG;
 * outputs untouched on failure.
 */
int fm_haproxy_parse_weight(const char *text, size_t len, uint32_t *ret_current,
                            uint32_t *ret_initial);

/* One row of "show servers state". */
struct fm_haproxy_server {
        uint32_t op_state;    /* 0 stopped, 1 starting, 2 running, 3 stopping */
        uint32_t admin_state; /* SRV_ADMF_* bits, see fm_haproxy_admin_state() */
        uint32_t uweight;     /* current weight */
        uint32_t iweight;     /* weight from the configuration */
};

/*
 * Finds server `server` of backend `backend` in an answer to "show servers
 * state" (format version 1; columns located by the header line's names).
 * Returns 0 and *ret, -ENOENT when the table has no such row, -EBADMSG
 * when the text is not such a table; *ret untouched on failure.
 */
int fm_haproxy_parse_servers_state(const char *text, size_t len, const char *backend,
                                   const char *server, struct fm_haproxy_server *ret);

/*
 * Classifies a runtime API answer that may hold an error message.
 * FM_RESULT_OK when the text is blank (what every successful "set" says);
 * otherwise FM_RESULT_PERMANENT and *ret_error: -ENOENT (no such backend or
 * server, "Require 'backend/server'"), -EACCES (permission denied),
 * -EOPNOTSUPP (unknown command), -EINVAL (an argument HAProxy refused),
 * -EIO (any other text). ret_error may be NULL.
 */
enum fm_result_kind fm_haproxy_classify(const char *text, size_t len, int *ret_error);

/*
 * The first non-blank line of an answer, with anything outside printable
 * ASCII replaced by '?', into buf (NUL-terminated, truncated to fit). For
 * details such as "web/v9: No such server.".
 */
void fm_haproxy_message(const char *text, size_t len, char *buf, size_t size);

struct fm_haproxy;

/*
 * A new backend on event, reporting set_weights results to a (borrowed;
 * must outlive the backend). cfg is copied. Returns 0, -EINVAL (cfg
 * invalid, event or a NULL), -ENOMEM, or -errno of adding an event source;
 * *ret untouched on failure.
 */
int fm_haproxy_new(sd_event *event, const struct fm_haproxy_config *cfg, struct fm_actuator *a,
                   struct fm_haproxy **ret);

/* Aborts every request without completing or calling back, frees. Accepts NULL; returns NULL. */
struct fm_haproxy *fm_haproxy_free(struct fm_haproxy *h);

/*
 * Called from the event loop with the outcome of fm_haproxy_set_state():
 * res->detail is valid during the call only. The callback may submit new
 * requests but must not free h.
 */
typedef void (*fm_haproxy_state_fn)(void *userdata, uint64_t id,
                                    const struct fm_action_result *res);

/*
 * Sets the state of the server that (deployment, target) maps to, then
 * reads it back; done runs later from the loop, exactly once unless the
 * request is cancelled or h freed. Returns 0 and an id > 0 in *ret_id
 * (may be NULL), -EINVAL (bad name, state or done), -ENOBUFS (queue full),
 * -ENOMEM.
 */
int fm_haproxy_set_state(struct fm_haproxy *h, const char *deployment, const char *target,
                         enum fm_haproxy_state state, fm_haproxy_state_fn done, void *userdata,
                         uint64_t *ret_id);

/* Abandons request id of fm_haproxy_set_state(); unknown ids are ignored. */
void fm_haproxy_cancel_state(struct fm_haproxy *h, uint64_t id);

/* Requests held (running or waiting their turn). */
unsigned fm_haproxy_pending(const struct fm_haproxy *h) _pure_;

/* Supports set_weights; restart and the rest are -EOPNOTSUPP. */
extern const struct fm_backend_ops fm_backend_haproxy_ops;
