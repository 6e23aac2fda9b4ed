/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * tests/integration/fake_kube.py as a peer: a fake Kubernetes API server
 * on HTTPS (a certificate for 127.0.0.1 signed by a CA of its own, a
 * bearer token in a file, an RBAC allow-list) with a plain-HTTP admin port
 * to seed objects, set faults and read its request log. Include after
 * <cmocka.h>; FM_SOURCE_ROOT (the repository) locates the fake.
 */

#include "http_peer.h"
#include "kube.h"
#include "proc.h"

#ifndef FM_SOURCE_ROOT
#define FM_SOURCE_ROOT "."
#endif

#define FM_FAKE_KUBE_PYTHON "/usr/bin/python3"

struct fm_fake_kube {
        struct fm_peer peer;
        uint16_t port, admin;
        char server[64];          /* https://127.0.0.1:port */
        char ca[128];             /* the CA file that verifies it */
        char cert[128], key[128]; /* its own certificate */
        char token[128];          /* the file with the token it accepts */
};

static inline bool fm_fake_kube_ready(void *arg)
{
        const struct fm_fake_kube *f = arg;
        return fm_port_accepts(f->admin) && fm_port_accepts(f->port);
}

/*
 * Starts the fake in /tmp/fm-test-<name>-XXXXXX, accepting the token in
 * the file f->token (written here with `token`) and only the requests that
 * rbac allows (JSON: [[group, resource, verb], ...]).
 */
static inline void fm_fake_kube_start(struct fm_fake_kube *f, const char *name, const char *token,
                                      const char *rbac)
{
        char port[8], admin_port[8];

        fm_peer_init(&f->peer, name);
        fm_make_certs(&f->peer);
        fm_peer_path(&f->peer, "ca.crt", f->ca, sizeof f->ca);
        fm_peer_path(&f->peer, "server.crt", f->cert, sizeof f->cert);
        fm_peer_path(&f->peer, "server.key", f->key, sizeof f->key);
        fm_peer_path(&f->peer, "token", f->token, sizeof f->token);
        fm_write_file(f->token, token);
        f->port = fm_free_port();
        do
                f->admin = fm_free_port();
        while (f->admin == f->port);
        snprintf(port, sizeof port, "%u", f->port);
        snprintf(admin_port, sizeof admin_port, "%u", f->admin);
        snprintf(f->server, sizeof f->server, "https://127.0.0.1:%u", f->port);
        char *const argv[] = {FM_FAKE_KUBE_PYTHON,
                              FM_SOURCE_ROOT "/tests/integration/fake_kube.py",
                              "--port",
                              port,
                              "--admin-port",
                              admin_port,
                              "--cert",
                              f->cert,
                              "--key",
                              f->key,
                              "--token-file",
                              f->token,
                              "--rbac",
                              (char *)rbac,
                              NULL};
        fm_peer_start(&f->peer, argv);
        fm_peer_wait(&f->peer, fm_fake_kube_ready, f);
}

/* A request to the admin port; returns the parsed answer (caller puts; may be NULL). */
static inline struct json_object *fm_fake_kube_admin(const struct fm_fake_kube *f,
                                                     const char *method, const char *path,
                                                     const char *body, long *ret_status)
{
        char url[256];
        int n = snprintf(url, sizeof url, "http://127.0.0.1:%u%s", f->admin, path);
        assert_true(n > 0 && (size_t)n < sizeof url);
        return fm_http_json(method, url, body, ret_status);
}

/* The defaults, pointed at the fake (its server, CA and token file) and namespace ns. */
static inline void fm_fake_kube_config(const struct fm_fake_kube *f, struct fm_kube_config *cfg,
                                       const char *ns)
{
        fm_kube_config_default(cfg);
        snprintf(cfg->server, sizeof cfg->server, "%s", f->server);
        snprintf(cfg->ca_file, sizeof cfg->ca_file, "%s", f->ca);
        snprintf(cfg->token_file, sizeof cfg->token_file, "%s", f->token);
        snprintf(cfg->namespace_, sizeof cfg->namespace_, "%s", ns);
}
