/* SPDX-License-Identifier: MIT */

/*
 * Integration tests of the MLflow backend (actuators/mlflow.c) through the
 * actuator, against tests/integration/fake_mlflow.py on a free loopback
 * port: rollback moves the alias and tags the old version, thresholds land
 * as tags, errors carry MLflow's message, 429 and 500 are retried, the
 * credentials come from files, and hostile names never leave the API's
 * paths (checked in the fake's request log). The test talks to the fake's
 * /_admin/ endpoints with blocking libcurl calls; the backend itself runs
 * on sd-event.
 */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>

#include <json-c/json.h>
#include <systemd/sd-event.h>

#include "actuator_peer.h"
#include "http_peer.h"
#include "mlflow.h"
#include "proc.h"

#ifndef FM_SOURCE_ROOT
#define FM_SOURCE_ROOT "."
#endif

#define PYTHON_BIN "/usr/bin/python3"
#define FAKE_SCRIPT FM_SOURCE_ROOT "/tests/integration/fake_mlflow.py"
#define WAIT_MS 30000

struct fx {
        sd_event *e;
        struct fm_peer peer;
        uint16_t port;
        char base[64];
        struct fm_actuator *a;
        struct fm_mlflow *x;
        int backend;
        struct fm_mlflow_config cfg;
};

/* ---- the fake's admin endpoints, blocking ---- */

/* Returns the parsed JSON answer (caller puts it). */
static json_object *admin(struct fx *f, const char *path, const char *body)
{
        char url[256];
        long status;

        snprintf(url, sizeof url, "%s/_admin/%s", f->base, path);
        json_object *o = fm_http_json(NULL, url, body, &status);
        assert_int_equal(status, 200);
        assert_non_null(o);
        return o;
}

static void admin_post(struct fx *f, const char *path, const char *body)
{
        json_object_put(admin(f, path, body));
}

static json_object *jget(json_object *o, const char *key)
{
        json_object *v = NULL;
        if (!o || !json_object_object_get_ex(o, key, &v))
                return NULL;
        return v;
}

static const char *jstr(json_object *o, const char *key)
{
        json_object *v = jget(o, key);
        return v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

/* The registry's model `name` from /_admin/state (a new reference), or NULL. */
static json_object *state_model(struct fx *f, const char *name)
{
        json_object *st = admin(f, "state", NULL), *ms = jget(st, "models"), *out = NULL;
        for (size_t i = 0; ms && i < json_object_array_length(ms); i++) {
                json_object *m = json_object_array_get_idx(ms, i);
                if (strcmp(jstr(m, "name"), name) == 0)
                        out = json_object_get(m);
        }
        json_object_put(st);
        return out;
}

/* Where alias points in model name ("" when unset); buf gets it. */
static const char *alias_of(struct fx *f, const char *name, const char *alias, char *buf,
                            size_t size)
{
        json_object *m = state_model(f, name), *al = jget(m, "aliases");
        buf[0] = '\0';
        for (size_t i = 0; al && i < json_object_array_length(al); i++) {
                json_object *a = json_object_array_get_idx(al, i);
                if (strcmp(jstr(a, "alias"), alias) == 0)
                        snprintf(buf, size, "%s", jstr(a, "version"));
        }
        json_object_put(m);
        return buf;
}

/* Tag key of version ver of model name, or "" (copied into buf). */
static const char *tag_of(struct fx *f, const char *name, const char *ver, const char *key,
                          char *buf, size_t size)
{
        json_object *m = state_model(f, name), *vs = jget(m, "versions");
        buf[0] = '\0';
        for (size_t i = 0; vs && i < json_object_array_length(vs); i++) {
                json_object *v = json_object_array_get_idx(vs, i), *tags = jget(v, "tags");
                if (strcmp(jstr(v, "version"), ver) != 0)
                        continue;
                for (size_t k = 0; tags && k < json_object_array_length(tags); k++) {
                        json_object *t = json_object_array_get_idx(tags, k);
                        if (strcmp(jstr(t, "key"), key) == 0)
                                snprintf(buf, size, "%s", jstr(t, "value"));
                }
        }
        json_object_put(m);
        return buf;
}

static json_object *request_log(struct fx *f)
{
        json_object *l = admin(f, "log", NULL), *r = json_object_get(jget(l, "requests"));
        json_object_put(l);
        assert_non_null(r);
        return r;
}

static const char SEED[] =
        "{\"models\":[{\"name\":\"fraud-scorer\",\"versions\":[{\"version\":\"1\"},"
        "{\"version\":\"2\"},{\"version\":\"3\"},{\"version\":\"4\",\"status\":"
        "\"PENDING_REGISTRATION\"}],\"aliases\":{\"production\":\"3\"}},"
        "{\"name\":\"ranker-model\",\"versions\":[{\"version\":\"1\"},{\"version\":\"2\"}]}]}";

/* ---- fixture ---- */

static void start_backend(struct fx *f)
{
        struct fm_actuator_config ac;
        fm_actuator_config_default(&ac);
        ac.backoff_base = 10;
        ac.backoff_cap = 50;
        ac.max_attempts = 5;
        ac.breaker_failures = 100;
        assert_int_equal(fm_actuator_new(&ac, 42, &f->a), 0);
        assert_int_equal(fm_mlflow_new(f->e, &f->cfg, f->a, &f->x), 0);
        f->backend = fm_actuator_add_backend(f->a, &fm_backend_mlflow_ops, f->x);
        assert_true(f->backend >= 0);
}

static void stop_backend(struct fx *f)
{
        f->a = fm_actuator_free(f->a);
        f->x = fm_mlflow_free(f->x);
}

static int setup(void **state)
{
        struct fx *f = calloc(1, sizeof *f);
        char port_s[8];

        assert_non_null(f);
        assert_int_equal(sd_event_new(&f->e), 0);
        fm_peer_init(&f->peer, "mlflow");
        f->port = fm_free_port();
        snprintf(port_s, sizeof port_s, "%u", f->port);
        char *argv[] = {PYTHON_BIN, FAKE_SCRIPT, port_s, NULL};
        fm_peer_start(&f->peer, argv);
        fm_peer_wait(&f->peer, fm_ready_port, &f->port);
        snprintf(f->base, sizeof f->base, "http://127.0.0.1:%u", f->port);
        admin_post(f, "seed", SEED);

        fm_mlflow_config_default(&f->cfg);
        snprintf(f->cfg.uri, sizeof f->cfg.uri, "%s/", f->base); /* a trailing "/" is dropped */
        f->cfg.timeout = 5000;
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        struct fx *f = *state;
        stop_backend(f);
        fm_peer_done(&f->peer);
        sd_event_unref(f->e);
        free(f);
        return 0;
}

/* ---- driving the actuator ---- */

static void rollback_req(struct fm_action_req *r, const char *deployment, const char *from,
                         const char *to)
{
        fm_test_req(r, FM_ACTION_ROLLBACK, deployment, "rollback-test");
        snprintf(r->arg.rollback.from, sizeof r->arg.rollback.from, "%s", from);
        snprintf(r->arg.rollback.to, sizeof r->arg.rollback.to, "%s", to);
}

static void threshold_req(struct fm_action_req *r, const char *deployment, const char *version,
                          double to)
{
        fm_test_req(r, FM_ACTION_SET_THRESHOLD, deployment, "threshold-test");
        snprintf(r->arg.threshold.version, sizeof r->arg.threshold.version, "%s", version);
        r->arg.threshold.to = to;
}

static void run(struct fx *f, const struct fm_action_req *r, struct fm_action_outcome *out)
{
        *out = fm_test_run(f->e, f->a, f->backend, r);
}

/* ---- tests ---- */

static void test_rollback(void **state)
{
        struct fx *f = *state;
        struct fm_action_req r;
        struct fm_action_outcome o;
        char buf[64];

        start_backend(f);
        rollback_req(&r, "fraud-scorer", "v3", "2");
        run(f, &r, &o);
        assert_int_equal(o.status, FM_OUTCOME_OK);
        assert_int_equal(o.attempts, 1);
        assert_string_equal(o.detail,
                            "alias production 3->2, version 3 tagged fleetmedic.rolled_back");
        assert_string_equal(alias_of(f, "fraud-scorer", "production", buf, sizeof buf), "2");
        assert_string_equal(
                tag_of(f, "fraud-scorer", "3", "fleetmedic.rolled_back", buf, sizeof buf),
                "production:2");

        /* The wire: read alias, check the target, move the alias, tag the old version. */
        json_object *log = request_log(f);
        assert_int_equal(json_object_array_length(log), 4);
        static const char *const want[][2] = {
                {"GET", "/api/2.0/mlflow/registered-models/alias"},
                {"GET", "/api/2.0/mlflow/model-versions/get"},
                {"POST", "/api/2.0/mlflow/registered-models/alias"},
                {"POST", "/api/2.0/mlflow/model-versions/set-tag"},
        };
        for (size_t i = 0; i < 4; i++) {
                json_object *e = json_object_array_get_idx(log, i);
                assert_string_equal(jstr(e, "method"), want[i][0]);
                assert_string_equal(jstr(e, "path"), want[i][1]);
                assert_int_equal(json_object_get_int(jget(e, "status")), 200);
                if (strcmp(want[i][0], "POST") == 0)
                        assert_string_equal(jstr(e, "content_type"), "application/json");
                assert_null(jstr(e, "authorization"));
        }
        json_object *p0 = jget(json_object_array_get_idx(log, 0), "params");
        assert_string_equal(jstr(p0, "name"), "fraud-scorer");
        assert_string_equal(jstr(p0, "alias"), "production");
        json_object *b2 = json_tokener_parse(jstr(json_object_array_get_idx(log, 2), "body"));
        assert_string_equal(jstr(b2, "name"), "fraud-scorer");
        assert_string_equal(jstr(b2, "alias"), "production");
        assert_string_equal(jstr(b2, "version"), "2");
        json_object_put(b2);
        json_object_put(log);

        /* Observing: the alias is at 2, not at 1. */
        rollback_req(&r, "fraud-scorer", "3", "2");
        r.observe = true;
        run(f, &r, &o);
        assert_int_equal(o.status, FM_OUTCOME_OK);
        assert_string_equal(o.detail, "alias production at 2");
        rollback_req(&r, "fraud-scorer", "3", "1");
        r.observe = true;
        run(f, &r, &o);
        assert_int_equal(o.status, FM_OUTCOME_FAILED);
        assert_int_equal(o.last_error, -ESRCH);
        assert_string_equal(alias_of(f, "fraud-scorer", "production", buf, sizeof buf), "2");

        /* Again (a retry after a partial success): the alias stays, the tag is set again. */
        rollback_req(&r, "fraud-scorer", "3", "2");
        run(f, &r, &o);
        assert_int_equal(o.status, FM_OUTCOME_OK);
        assert_non_null(strstr(o.detail, "already at 2"));

        /* Someone else moved the alias to 1: left alone. */
        rollback_req(&r, "fraud-scorer", "3", "v2");
        admin_post(
                f, "seed",
                "{\"models\":[{\"name\":\"fraud-scorer\",\"versions\":[{\"version\":\"1\"},"
                "{\"version\":\"2\"},{\"version\":\"3\"}],\"aliases\":{\"production\":\"1\"}}]}");
        run(f, &r, &o);
        assert_int_equal(o.status, FM_OUTCOME_FAILED);
        assert_int_equal(o.last_error, -ESTALE);
        assert_string_equal(alias_of(f, "fraud-scorer", "production", buf, sizeof buf), "1");

        /* An unset alias is set. */
        admin_post(f, "seed",
                   "{\"models\":[{\"name\":\"fraud-scorer\",\"versions\":[{\"version\":\"1\"},"
                   "{\"version\":\"2\"},{\"version\":\"3\"}]}]}");
        run(f, &r, &o);
        assert_int_equal(o.status, FM_OUTCOME_OK);
        assert_string_equal(alias_of(f, "fraud-scorer", "production", buf, sizeof buf), "2");
}

static void test_threshold(void **state)
{
        struct fx *f = *state;
        struct fm_action_req r;
        struct fm_action_outcome o;
        char buf[64];

        start_backend(f);
        threshold_req(&r, "fraud-scorer", "v2", 0.65);
        run(f, &r, &o);
        assert_int_equal(o.status, FM_OUTCOME_OK);
        assert_string_equal(o.detail, "version 2 tag fleetmedic.threshold=0.65");
        assert_string_equal(tag_of(f, "fraud-scorer", "2", "fleetmedic.threshold", buf, sizeof buf),
                            "0.65");

        threshold_req(&r, "fraud-scorer", "3", 1.0 / 3.0);
        run(f, &r, &o);
        assert_int_equal(o.status, FM_OUTCOME_OK);
        assert_string_equal(tag_of(f, "fraud-scorer", "3", "fleetmedic.threshold", buf, sizeof buf),
                            "0.3333333333333333");

        threshold_req(&r, "fraud-scorer", "2", 0.65);
        r.observe = true;
        run(f, &r, &o);
        assert_int_equal(o.status, FM_OUTCOME_OK);
        threshold_req(&r, "fraud-scorer", "2", 0.7);
        r.observe = true;
        run(f, &r, &o);
        assert_int_equal(o.status, FM_OUTCOME_FAILED);
        assert_int_equal(o.last_error, -ESRCH);
        assert_string_equal(o.detail, "version 2 tag fleetmedic.threshold is 0.65, not 0.7");
        threshold_req(&r, "fraud-scorer", "1", 0.7);
        r.observe = true;
        run(f, &r, &o);
        assert_int_equal(o.status, FM_OUTCOME_FAILED);
        assert_int_equal(o.last_error, -ESRCH);

        /* Through a mapping to another model. */
        stop_backend(f);
        f->cfg.n_models = 1;
        snprintf(f->cfg.models[0].deployment, sizeof f->cfg.models[0].deployment, "ranker");
        snprintf(f->cfg.models[0].model, sizeof f->cfg.models[0].model, "ranker-model");
        start_backend(f);
        threshold_req(&r, "ranker", "1", 0.5);
        run(f, &r, &o);
        assert_int_equal(o.status, FM_OUTCOME_OK);
        assert_string_equal(tag_of(f, "ranker-model", "1", "fleetmedic.threshold", buf, sizeof buf),
                            "0.5");
        /* No entry for this deployment and no "*": unsupported. */
        threshold_req(&r, "fraud-scorer", "1", 0.5);
        run(f, &r, &o);
        assert_int_equal(o.status, FM_OUTCOME_UNSUPPORTED);
}

static void test_missing(void **state)
{
        struct fx *f = *state;
        struct fm_action_req r;
        struct fm_action_outcome o;

        start_backend(f);
        rollback_req(&r, "fraud-scorer", "3", "9");
        run(f, &r, &o);
        assert_int_equal(o.status, FM_OUTCOME_FAILED);
        assert_int_equal(o.attempts, 1);
        assert_int_equal(o.last_error, -ENOENT);
        assert_string_equal(o.detail, "HTTP 404 RESOURCE_DOES_NOT_EXIST: Model Version "
                                      "(name=fraud-scorer, version=9) not found");

        threshold_req(&r, "fraud-scorer", "9", 0.5);
        run(f, &r, &o);
        assert_int_equal(o.status, FM_OUTCOME_FAILED);
        assert_int_equal(o.attempts, 1);
        assert_non_null(strstr(o.detail, "version=9) not found"));

        rollback_req(&r, "unknown-model", "2", "1");
        run(f, &r, &o);
        assert_int_equal(o.status, FM_OUTCOME_FAILED);
        assert_string_equal(o.detail, "HTTP 404 RESOURCE_DOES_NOT_EXIST: Registered Model with "
                                      "name=unknown-model not found");

        /* A version still registering is retried until the deadline ends it. */
        rollback_req(&r, "fraud-scorer", "3", "4");
        r.deadline = fm_test_wall_ms() + 600;
        run(f, &r, &o);
        assert_true(o.status == FM_OUTCOME_TIMEOUT || o.status == FM_OUTCOME_FAILED);
        assert_true(o.attempts >= 2);
        assert_non_null(strstr(o.detail, "PENDING_REGISTRATION"));

        /* Nothing listens: a transport failure, retried. */
        stop_backend(f);
        snprintf(f->cfg.uri, sizeof f->cfg.uri, "http://127.0.0.1:%u", fm_free_port());
        start_backend(f);
        rollback_req(&r, "fraud-scorer", "3", "2");
        run(f, &r, &o);
        assert_int_equal(o.status, FM_OUTCOME_FAILED);
        assert_int_equal(o.attempts, 5);
        assert_int_equal(o.last_error, -ECONNREFUSED);
}

static void test_retry(void **state)
{
        struct fx *f = *state;
        struct fm_action_req r;
        struct fm_action_outcome o;
        char buf[64];

        start_backend(f);
        admin_post(f, "faults", "{\"count\":1,\"status\":429,\"retry_after\":\"1\"}");
        int64_t t0 = fm_test_now_ms();
        threshold_req(&r, "fraud-scorer", "2", 0.8);
        run(f, &r, &o);
        assert_int_equal(o.status, FM_OUTCOME_OK);
        assert_int_equal(o.attempts, 2);
        assert_true(fm_test_now_ms() - t0 >= 1000); /* Retry-After is a floor */
        assert_string_equal(tag_of(f, "fraud-scorer", "2", "fleetmedic.threshold", buf, sizeof buf),
                            "0.8");

        /* 500 then 503 in the middle of a rollback: the attempt starts over and completes. */
        admin_post(f, "faults", "{\"count\":2,\"status\":500}");
        rollback_req(&r, "fraud-scorer", "3", "1");
        run(f, &r, &o);
        assert_int_equal(o.status, FM_OUTCOME_OK);
        assert_int_equal(o.attempts, 3);
        assert_string_equal(alias_of(f, "fraud-scorer", "production", buf, sizeof buf), "1");

        /* A slow server: each request has the configured timeout. */
        stop_backend(f);
        f->cfg.timeout = 200;
        start_backend(f);
        admin_post(f, "faults", "{\"count\":1,\"status\":0,\"delay_ms\":1500}");
        threshold_req(&r, "fraud-scorer", "1", 0.25);
        run(f, &r, &o);
        assert_int_equal(o.status, FM_OUTCOME_OK);
        assert_int_equal(o.attempts, 2);
}

static void write_secret(struct fx *f, const char *name, const char *text, char *path, size_t size)
{
        char tmp[160];
        fm_peer_path(&f->peer, name, path, size);
        snprintf(tmp, sizeof tmp, "%s.tmp", path);
        fm_write_file(tmp, text);
        assert_int_equal(rename(tmp, path), 0); /* a new inode, as a rotation does */
}

/* The last logged request carried this Authorization header; returns how many were logged. */
static size_t last_authorization(struct fx *f, const char *want)
{
        json_object *log = request_log(f);
        size_t n = json_object_array_length(log);

        assert_true(n > 0);
        assert_string_equal(jstr(json_object_array_get_idx(log, n - 1), "authorization"), want);
        json_object_put(log);
        return n;
}

static void test_auth(void **state)
{
        struct fx *f = *state;
        struct fm_action_req r;
        struct fm_action_outcome o;
        char token[128], user[128], pass[128];

        admin_post(f, "auth", "{\"token\":\"s3cr3t-token\"}");
        write_secret(f, "token", "s3cr3t-token\n", token, sizeof token);
        snprintf(f->cfg.token_file, sizeof f->cfg.token_file, "%s", token);
        start_backend(f);
        threshold_req(&r, "fraud-scorer", "2", 0.6);
        run(f, &r, &o);
        assert_int_equal(o.status, FM_OUTCOME_OK);
        assert_int_equal(last_authorization(f, "Bearer s3cr3t-token"), 1);

        /* The server wants another token now; the file is rotated after the first failure. */
        admin_post(f, "auth", "{\"token\":\"rotated\"}");
        threshold_req(&r, "fraud-scorer", "2", 0.61);
        run(f, &r, &o);
        assert_int_equal(o.status, FM_OUTCOME_FAILED);
        assert_int_equal(o.last_error, -EACCES);
        assert_non_null(strstr(o.detail, "HTTP 401: You are not authenticated"));
        assert_null(strstr(o.detail, "s3cr3t"));
        write_secret(f, "token", "rotated", token, sizeof token);
        run(f, &r, &o);
        assert_int_equal(o.status, FM_OUTCOME_OK);
        last_authorization(f, "Bearer rotated");

        /* Basic auth wins over the token. */
        stop_backend(f);
        admin_post(f, "auth", "{\"username\":\"fleet\",\"password\":\"pa:ss w\"}");
        write_secret(f, "user", "fleet\n", user, sizeof user);
        write_secret(f, "pass", "pa:ss w\r\n", pass, sizeof pass);
        snprintf(f->cfg.username_file, sizeof f->cfg.username_file, "%s", user);
        snprintf(f->cfg.password_file, sizeof f->cfg.password_file, "%s", pass);
        start_backend(f);
        threshold_req(&r, "fraud-scorer", "2", 0.62);
        run(f, &r, &o);
        assert_int_equal(o.status, FM_OUTCOME_OK);
        last_authorization(f, "Basic ZmxlZXQ6cGE6c3Mgdw==");
        stop_backend(f);

        /* Unreadable or empty credentials fail at creation. */
        struct fm_mlflow *x = NULL;
        struct fm_mlflow_config c = f->cfg;
        snprintf(c.password_file, sizeof c.password_file, "%s/none", f->peer.dir);
        assert_int_equal(fm_mlflow_new(f->e, &c, NULL, &x), -ENOENT);
        write_secret(f, "empty", "\n", pass, sizeof pass);
        snprintf(c.password_file, sizeof c.password_file, "%s", pass);
        assert_int_equal(fm_mlflow_new(f->e, &c, NULL, &x), -EINVAL);
        assert_null(x);
}

/* Every logged request is one of the API's endpoints, with only the API's parameters. */
static void assert_log_confined(struct fx *f, const char *const *names, size_t n_names)
{
        static const char *const paths[] = {
                "/api/2.0/mlflow/registered-models/alias",
                "/api/2.0/mlflow/model-versions/get",
                "/api/2.0/mlflow/model-versions/set-tag",
                "/api/2.0/mlflow/model-versions/search",
        };
        static const char *const keys[] = {"name",   "alias",       "version",
                                           "filter", "max_results", "page_token"};
        json_object *log = request_log(f);

        for (size_t i = 0; i < json_object_array_length(log); i++) {
                json_object *e = json_object_array_get_idx(log, i);
                const char *path = jstr(e, "path"), *raw = jstr(e, "raw_path");
                bool known = false;
                for (size_t k = 0; k < ARRAY_SIZE(paths); k++)
                        known = known || strcmp(path, paths[k]) == 0;
                assert_true(known);
                /* The raw path itself, before any decoding, is that endpoint. */
                assert_int_equal(strncmp(raw, path, strlen(path)), 0);
                assert_true(raw[strlen(path)] == '\0' || raw[strlen(path)] == '?');
                json_object_object_foreach(jget(e, "params"), key, val)
                {
                        bool ok = false;
                        (void)val;
                        for (size_t k = 0; k < ARRAY_SIZE(keys); k++)
                                ok = ok || strcmp(key, keys[k]) == 0;
                        assert_true(ok);
                }
                /* The name arrived whole: one of the names sent, byte for byte. */
                const char *name = jstr(jget(e, "params"), "name");
                json_object *body = NULL;
                if (!name) {
                        body = json_tokener_parse(jstr(e, "body"));
                        name = jstr(body, "name");
                }
                if (name) {
                        bool sent = false;
                        for (size_t k = 0; k < n_names; k++)
                                sent = sent || strcmp(name, names[k]) == 0;
                        assert_true(sent);
                }
                json_object_put(body);
        }
        json_object_put(log);
}

static void test_hostile_names(void **state)
{
        struct fx *f = *state;
        struct fm_action_req r;
        struct fm_action_outcome o;
        static const char *const deployments[] = {
                "../../admin",      "a/b?c=d#e",   "x%2F..%2F",       "a b", "nl\nx",
                "semi;colon'quote", "amp&name=zz", "ctl\x01\x1f\x7f", "..",  "back\\slash",
        };
        static const char *const versions[] = {
                "../1", "1/../2", "1 OR 1",      "v1;2", "%31", "1\n", "",
                "01",   "v",      "12345678901", "1'",   "-1",  "1.5", "vv1",
        };

        start_backend(f);
        for (size_t i = 0; i < ARRAY_SIZE(deployments); i++) {
                rollback_req(&r, deployments[i], "3", "2");
                run(f, &r, &o);
                assert_int_equal(o.status, FM_OUTCOME_FAILED);
                assert_non_null(strstr(o.detail, "RESOURCE_DOES_NOT_EXIST"));
                for (const char *p = o.detail; *p; p++)
                        assert_true((unsigned char)*p >= 0x20 && *p != 0x7f);
                threshold_req(&r, deployments[i], "2", 0.5);
                run(f, &r, &o);
                assert_int_equal(o.status, FM_OUTCOME_FAILED);
        }
        assert_log_confined(f, deployments, ARRAY_SIZE(deployments));

        /* Bad versions never make a request at all. */
        json_object *log = request_log(f);
        size_t before = json_object_array_length(log);
        json_object_put(log);
        for (size_t i = 0; i < ARRAY_SIZE(versions); i++) {
                rollback_req(&r, "fraud-scorer", versions[i], "2");
                run(f, &r, &o);
                assert_int_equal(o.status, FM_OUTCOME_FAILED);
                assert_int_equal(o.last_error, -EINVAL);
                rollback_req(&r, "fraud-scorer", "3", versions[i]);
                run(f, &r, &o);
                assert_int_equal(o.last_error, -EINVAL);
                threshold_req(&r, "fraud-scorer", versions[i], 0.5);
                run(f, &r, &o);
                assert_int_equal(o.last_error, -EINVAL);
        }
        threshold_req(&r, "fraud-scorer", "2", NAN);
        run(f, &r, &o);
        assert_int_equal(o.last_error, -EINVAL);
        rollback_req(&r, "fraud-scorer", "v2", "2");
        run(f, &r, &o);
        assert_int_equal(o.last_error, -EINVAL);
        log = request_log(f);
        assert_int_equal(json_object_array_length(log), before);
        json_object_put(log);
        char buf[64];
        assert_string_equal(alias_of(f, "fraud-scorer", "production", buf, sizeof buf), "3");
}

struct listing {
        int calls;
        int error;
        size_t n;
        bool truncated;
        size_t with_alias, rolled_back;
        char first[16];
};

static void on_list(void *userdata, const struct fm_mlflow_version_list *l)
{
        struct listing *s = userdata;
        s->calls++;
        s->error = l->error;
        s->n = l->n;
        s->truncated = l->truncated;
        for (size_t i = 0; i < l->n; i++) {
                s->with_alias += l->v[i].has_alias;
                s->rolled_back += l->v[i].rolled_back;
                assert_string_equal(l->v[i].status, "READY");
        }
        if (l->n)
                snprintf(s->first, sizeof s->first, "%s", l->v[0].version);
}

static void test_list_versions(void **state)
{
        struct fx *f = *state;
        struct listing s = {0}, c = {0};
        uint64_t id = 0, id2 = 0;

        /* 450 versions: three pages of 200. */
        size_t size = 64 * 1024, len = 0;
        char *seed = malloc(size);
        assert_non_null(seed);
        len += (size_t)snprintf(seed + len, size - len,
                                "{\"models\":[{\"name\":\"big\","
                                "\"aliases\":{\"production\":\"7\"},"
                                "\"versions\":[");
        for (int i = 1; i <= 450; i++)
                len += (size_t)snprintf(seed + len, size - len, "%s{\"version\":\"%d\"%s}",
                                        i > 1 ? "," : "", i,
                                        i % 100 == 0 ? ",\"tags\":{\"fleetmedic.rolled_back\":"
                                                       "\"production:1\"}"
                                                     : "");
        len += (size_t)snprintf(seed + len, size - len,
                                "]},{\"name\":\"big2\",\"versions\":["
                                "{\"version\":\"1\"}]}]}");
        assert_true(len < size);
        admin_post(f, "seed", seed);
        free(seed);

        assert_int_equal(fm_mlflow_new(f->e, &f->cfg, NULL, &f->x), 0);
        assert_int_equal(fm_mlflow_list_versions(f->x, "big", on_list, &s, &id), 0);
        assert_int_equal(fm_mlflow_list_versions(f->x, "big2", on_list, &c, &id2), 0);
        assert_int_equal(s.calls, 0);
        fm_mlflow_list_cancel(f->x, id2);
        int64_t deadline = fm_test_now_ms() + WAIT_MS;
        while (s.calls == 0 && fm_test_now_ms() < deadline)
                assert_true(sd_event_run(f->e, 100 * 1000) >= 0);
        assert_int_equal(s.calls, 1);
        assert_int_equal(s.error, 0);
        assert_int_equal(s.n, 450);
        assert_false(s.truncated);
        assert_int_equal(s.with_alias, 1);
        assert_int_equal(s.rolled_back, 4);
        assert_int_equal(c.calls, 0);

        json_object *log = request_log(f);
        size_t n = json_object_array_length(log);
        assert_int_equal(n, 3); /* the listing cancelled before the loop ran sent nothing */
        json_object *p = jget(json_object_array_get_idx(log, 0), "params");
        assert_string_equal(jstr(p, "filter"), "name='big'");
        assert_non_null(jstr(jget(json_object_array_get_idx(log, 1), "params"), "page_token"));
        json_object_put(log);

        /* An unknown model has no versions; a quote cannot reach a filter. */
        memset(&s, 0, sizeof s);
        assert_int_equal(fm_mlflow_list_versions(f->x, "nothing-here", on_list, &s, NULL), 0);
        deadline = fm_test_now_ms() + WAIT_MS;
        while (s.calls == 0 && fm_test_now_ms() < deadline)
                assert_true(sd_event_run(f->e, 100 * 1000) >= 0);
        assert_int_equal(s.error, 0);
        assert_int_equal(s.n, 0);
        assert_int_equal(fm_mlflow_list_versions(f->x, "a' OR name!='", on_list, &s, NULL),
                         -EINVAL);
        assert_int_equal(fm_mlflow_list_versions(f->x, "a\\", on_list, &s, NULL), -EINVAL);
        assert_int_equal(fm_mlflow_list_versions(f->x, "", on_list, &s, NULL), -EINVAL);
}

static void test_config(void **state)
{
        (void)state;
        struct fm_mlflow_config c, d;
        char buf[16];

        fm_mlflow_config_default(&d);
        assert_int_equal(fm_mlflow_config_validate(&d), 0);
        assert_string_equal(d.uri, "http://127.0.0.1:5000");
        assert_string_equal(d.alias, "production");

        static const char *const bad_alias[] = {"latest", "LATEST", "v3",  "V12",
                                                "",       "a b",    "a/b", "a.b"};
        for (size_t i = 0; i < ARRAY_SIZE(bad_alias); i++) {
                c = d;
                snprintf(c.alias, sizeof c.alias, "%s", bad_alias[i]);
                assert_int_equal(fm_mlflow_config_validate(&c), -EINVAL);
        }
        c = d;
        snprintf(c.alias, sizeof c.alias, "v2-canary");
        assert_int_equal(fm_mlflow_config_validate(&c), 0);
        c = d;
        snprintf(c.uri, sizeof c.uri, "ftp://x");
        assert_int_equal(fm_mlflow_config_validate(&c), -EINVAL);
        c = d;
        c.timeout = 0;
        assert_int_equal(fm_mlflow_config_validate(&c), -EINVAL);
        c = d;
        snprintf(c.username_file, sizeof c.username_file, "/u");
        assert_int_equal(fm_mlflow_config_validate(&c), -EINVAL);
        c = d;
        snprintf(c.threshold_tag, sizeof c.threshold_tag, "bad\"tag");
        assert_int_equal(fm_mlflow_config_validate(&c), -EINVAL);
        c = d;
        c.n_models = 2;
        c.models[1] = c.models[0];
        assert_int_equal(fm_mlflow_config_validate(&c), -EINVAL); /* duplicate */
        snprintf(c.models[1].deployment, sizeof c.models[1].deployment, "Bad/Name");
        assert_int_equal(fm_mlflow_config_validate(&c), -EINVAL);
        c.n_models = FM_MLFLOW_MODELS_MAX + 1;
        assert_int_equal(fm_mlflow_config_validate(&c), -EINVAL);

        assert_int_equal(fm_mlflow_version_number("v7", buf, sizeof buf), 1);
        assert_string_equal(buf, "7");
        assert_int_equal(fm_mlflow_version_number("4294967295", buf, sizeof buf), 10);
        assert_int_equal(fm_mlflow_version_number("07", buf, sizeof buf), -EINVAL);
        assert_int_equal(fm_mlflow_version_number("v", buf, sizeof buf), -EINVAL);
        assert_int_equal(fm_mlflow_version_number("12", buf, 2), -ENOBUFS);
}

int main(void)
{
        fm_require_program(PYTHON_BIN);
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_config),
                cmocka_unit_test_setup_teardown(test_rollback, setup, teardown),
                cmocka_unit_test_setup_teardown(test_threshold, setup, teardown),
                cmocka_unit_test_setup_teardown(test_missing, setup, teardown),
                cmocka_unit_test_setup_teardown(test_retry, setup, teardown),
                cmocka_unit_test_setup_teardown(test_auth, setup, teardown),
                cmocka_unit_test_setup_teardown(test_hostile_names, setup, teardown),
                cmocka_unit_test_setup_teardown(test_list_versions, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
