/* SPDX-License-Identifier: MIT */

/*
 * Integration tests of the Kubernetes backend (actuators/kube.c) against
 * tests/integration/fake_kube.py, a fake API server with the real API's
 * semantics (HTTPS, bearer tokens, RBAC, resourceVersion conflicts, Status
 * errors, the plain-text 429). One fake serves the whole group; each test
 * clears its log and faults, seeds its own objects, drives the actuator and
 * the backend on an sd-event loop, and reads back what the fake saw through
 * its admin port. The fake's allow-list is fm_kube_rbac[] itself, passed as
 * JSON on its command line, so a request outside the table fails with 403.
 *
 * FM_SOURCE_ROOT (the repository) locates the fake; it defaults to ".".
 */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <json-c/json.h>
#include <systemd/sd-event.h>

#include "fake_kube.h"

#include "actuator_peer.h"
#include "kube.h"
#include "lease.h"

#define WAIT_MS 20000
#define NS "ns"

static struct fm_fake_kube fake;

/* ---- helpers: the admin interface ---- */

static struct json_object *admin(const char *method, const char *path, const char *body,
                                 long *ret_status)
{
        return fm_fake_kube_admin(&fake, method, path, body, ret_status);
}

static void admin_post(const char *path, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

static void admin_post(const char *path, const char *fmt, ...)
{
        char body[8192];
        va_list ap;
        long status;
        int n;

        va_start(ap, fmt);
        n = vsnprintf(body, sizeof body, fmt, ap);
        va_end(ap);
        assert_true(n > 0 && (size_t)n < sizeof body);
        json_object_put(admin("POST", path, body, &status));
        assert_int_equal(status, 200);
}

static void seed(const char *group, const char *plural, const char *object)
{
        admin_post("/seed",
                   "{\"group\":\"%s\",\"plural\":\"%s\",\"namespace\":\"" NS "\",\"object\":%s}",
                   group, plural, object);
}

/* The stored object (caller puts), NULL when absent. */
static struct json_object *object(const char *group, const char *plural, const char *name)
{
        char path[256];
        long status;
        struct json_object *o;

        snprintf(path, sizeof path, "/object?group=%s&plural=%s&namespace=" NS "&name=%s", group,
                 plural, name);
        o = admin("GET", path, NULL, &status);
        if (status != 200) {
                json_object_put(o);
                return NULL;
        }
        return o;
}

static struct json_object *request_log(void)
{
        struct json_object *o = admin("GET", "/log", NULL, NULL);
        assert_non_null(o);
        assert_true(json_object_is_type(o, json_type_array));
        return o;
}

static const char *entry_str(struct json_object *e, const char *key)
{
        struct json_object *v;
        return json_object_object_get_ex(e, key, &v) ? json_object_get_string(v) : "";
}

static int entry_int(struct json_object *e, const char *key)
{
        struct json_object *v;
        return json_object_object_get_ex(e, key, &v) ? json_object_get_int(v) : -1;
}

static double entry_t(struct json_object *e)
{
        struct json_object *v;
        return json_object_object_get_ex(e, "t", &v) ? json_object_get_double(v) : -1;
}

/* Entries of the request log with this method whose path ends with suffix. */
static size_t logged(const char *method, const char *suffix)
{
        struct json_object *log = request_log();
        size_t n = 0;

        for (size_t i = 0; i < json_object_array_length(log); i++) {
                struct json_object *e = json_object_array_get_idx(log, i);
                const char *p = entry_str(e, "path");
                size_t pl = strlen(p), sl = strlen(suffix);
                if (strcmp(entry_str(e, "method"), method) == 0 && pl >= sl &&
                    strcmp(p + pl - sl, suffix) == 0)
                        n++;
        }
        json_object_put(log);
        return n;
}

/* Every PATCH in the request log has this content type (and needle in its body). */
static void assert_patches(const char *ctype, const char *needle)
{
        struct json_object *log = request_log();

        for (size_t i = 0; i < json_object_array_length(log); i++) {
                struct json_object *e = json_object_array_get_idx(log, i);
                if (strcmp(entry_str(e, "method"), "PATCH") != 0)
                        continue;
                assert_string_equal(entry_str(e, "ctype"), ctype);
                if (needle)
                        assert_non_null(strstr(entry_str(e, "body"), needle));
        }
        json_object_put(log);
}

/* ---- the fake, once for the group ---- */

/* fm_kube_rbac[] as [[group, resource, verb], ...]. */
static char *rbac_json(int skip)
{
        struct json_object *a = json_object_new_array();
        char *s;

        for (size_t i = 0; i < fm_kube_rbac_n; i++) {
                struct json_object *row = json_object_new_array();
                if ((int)i == skip) {
                        json_object_put(row);
                        continue;
                }
                json_object_array_add(row, json_object_new_string(fm_kube_rbac[i].group));
                json_object_array_add(row, json_object_new_string(fm_kube_rbac[i].resource));
                json_object_array_add(row, json_object_new_string(fm_kube_rbac[i].verb));
                json_object_array_add(a, row);
        }
        s = strdup(json_object_to_json_string_ext(a, JSON_C_TO_STRING_PLAIN));
        json_object_put(a);
        assert_non_null(s);
        return s;
}

static void set_token(const char *token)
{
        char tmp[160];
        snprintf(tmp, sizeof tmp, "%s.new", fake.token);
        fm_write_file(tmp, token);
        assert_int_equal(rename(tmp, fake.token), 0);
}

static int group_setup(void **state)
{
        char *rbac = rbac_json(-1);
        (void)state;

        curl_global_init(CURL_GLOBAL_DEFAULT);
        fm_fake_kube_start(&fake, "kube", "token-one\n", rbac);
        free(rbac);
        return 0;
}

static int group_teardown(void **state)
{
        (void)state;
        fm_peer_done(&fake.peer);
        curl_global_cleanup();
        return 0;
}

/* ---- one backend on one loop ---- */

struct ctx {
        sd_event *event;
        struct fm_actuator *a;
        struct fm_kube *k;
        struct fm_lease *lease;
        int backend;
        bool leader;
        uint64_t transitions;
};

static void base_config(struct fm_kube_config *cfg)
{
        fm_fake_kube_config(&fake, cfg, NS);
        cfg->timeout = 5000;
}

static void ctx_free(struct ctx *c);

/* A test's own: the configuration (base_config() applied) and the backend built from it. */
struct fixture {
        struct fm_kube_config cfg;
        struct ctx *c;
};

static int setup(void **state)
{
        struct fixture *f = calloc(1, sizeof *f);

        assert_non_null(f);
        base_config(&f->cfg);
        *state = f;
        return 0;
}

/* A backend on f->cfg (replacing the previous one), with the fake's log and faults cleared. */
static struct ctx *ctx_new(struct fixture *f, uint32_t max_attempts)
{
        struct ctx *c = calloc(1, sizeof *c);
        struct fm_actuator_config ac;

        ctx_free(f->c);
        f->c = c;
        assert_non_null(c);
        fm_actuator_config_default(&ac);
        ac.backoff_base = 20;
        ac.backoff_cap = 100;
        ac.max_attempts = max_attempts;
        ac.breaker_failures = 1000000; /* tests count failures themselves */
        assert_int_equal(sd_event_new(&c->event), 0);
        assert_int_equal(fm_actuator_new(&ac, 42, &c->a), 0);
        assert_int_equal(fm_kube_new(c->event, &f->cfg, c->a, &c->k), 0);
        c->backend = fm_actuator_add_backend(c->a, &fm_backend_kube_ops, c->k);
        assert_true(c->backend >= 0);
        admin_post("/clear", "{}");
        return c;
}

static void ctx_free(struct ctx *c)
{
        if (!c)
                return;
        fm_actuator_free(c->a);
        fm_lease_free(c->lease);
        fm_kube_free(c->k);
        sd_event_unref(c->event);
        free(c);
}

static int teardown(void **state)
{
        struct fixture *f = *state;

        ctx_free(f->c);
        free(f);
        return 0;
}

static void run(struct ctx *c, const struct fm_action_req *req, struct fm_action_outcome *ret)
{
        *ret = fm_test_run(c->event, c->a, c->backend, req);
}

/* Runs the loop for ms milliseconds (lets fire-and-forget Events finish). */
static void spin(struct ctx *c, int64_t ms)
{
        int64_t end = fm_test_now_ms() + ms;
        while (fm_test_now_ms() < end)
                assert_true(sd_event_run(c->event, 10000) >= 0);
}

/* Spins until the fake logged a POST of an Event with this reason; returns it (caller puts). */
static struct json_object *wait_event(struct ctx *c, const char *reason, const char *type)
{
        int64_t deadline = fm_test_now_ms() + WAIT_MS;

        while (fm_test_now_ms() < deadline) {
                struct json_object *log = request_log();
                for (size_t i = 0; i < json_object_array_length(log); i++) {
                        struct json_object *e = json_object_array_get_idx(log, i), *ev, *v;
                        if (strcmp(entry_str(e, "method"), "POST") != 0 ||
                            !strstr(entry_str(e, "path"), "/events"))
                                continue;
                        ev = json_tokener_parse(entry_str(e, "body"));
                        if (ev && json_object_object_get_ex(ev, "reason", &v) &&
                            strcmp(json_object_get_string(v), reason) == 0 &&
                            json_object_object_get_ex(ev, "type", &v) &&
                            strcmp(json_object_get_string(v), type) == 0) {
                                assert_int_equal(entry_int(e, "status"), 201);
                                json_object_put(log);
                                return ev;
                        }
                        json_object_put(ev);
                }
                json_object_put(log);
                spin(c, 20);
        }
        fail_msg("no %s event %s", type, reason);
        return NULL;
}

static int64_t int_at(struct json_object *o, const char *const *keys)
{
        struct json_object *v = fm_kube_get(o, keys);
        assert_non_null(v);
        return json_object_get_int64(v);
}

static const char *str_at(struct json_object *o, const char *const *keys)
{
        struct json_object *v = fm_kube_get(o, keys);
        assert_non_null(v);
        return json_object_get_string(v);
}

#define DEPLOYMENT_WEB                                                                             \
        "{\"metadata\":{\"name\":\"web\"},\"spec\":{\"replicas\":2,\"template\":{\"metadata\":{}," \
        "\"spec\":{\"containers\":[{\"name\":\"model\",\"image\":\"registry.example/model:v1\"},"  \
        "{\"name\":\"proxy\",\"image\":\"envoy:1\"}]}}}}"

/* A backend with Deployment "web" seeded. */
static struct ctx *web_ctx(struct fixture *f, uint32_t max_attempts)
{
        struct ctx *c = ctx_new(f, max_attempts);
        seed("apps", "deployments", DEPLOYMENT_WEB);
        return c;
}

static void scale_req(struct fm_action_req *r, const char *deployment, const char *key, int to)
{
        fm_test_req(r, FM_ACTION_SCALE, deployment, key);
        r->arg.scale.to = to;
}

/* The fake received a Event of this reason and type. */
static void expect_event(struct ctx *c, const char *reason, const char *type)
{
        json_object_put(wait_event(c, reason, type));
}

/* ---- tests ---- */

static void test_scale(void **state)
{
        struct fixture *f = *state;
        struct fm_action_outcome out;
        struct fm_action_req req;
        struct json_object *o, *ev;
        struct ctx *c;

        c = web_ctx(f, 3);
        scale_req(&req, "web", "scale/web/1", 4);
        req.arg.scale.from = 2;
        run(c, &req, &out);
        assert_int_equal(out.status, FM_OUTCOME_OK);
        assert_int_equal(out.attempts, 1);
        assert_string_equal(out.detail, "replicas 2->4 observed 4");

        o = object("apps", "deployments", "web");
        assert_int_equal(int_at(o, (const char *const[]){"spec", "replicas", NULL}), 4);
        json_object_put(o);

        ev = wait_event(c, "FleetmedicScale", "Normal");
        assert_string_equal(str_at(ev, (const char *const[]){"involvedObject", "name", NULL}),
                            "web");
        assert_string_equal(str_at(ev, (const char *const[]){"involvedObject", "kind", NULL}),
                            "Deployment");
        assert_string_equal(str_at(ev, (const char *const[]){"reportingComponent", NULL}),
                            "fleetmedic");
        json_object_put(ev);

        assert_int_equal(logged("GET", "/deployments/web/scale"), 1);
        assert_int_equal(logged("PATCH", "/deployments/web/scale"), 1);
        /* Conditional on what was read. */
        assert_patches("application/merge-patch+json", "\"resourceVersion\"");

        /* Observing: the state holds, then it does not. */
        req.observe = true;
        snprintf(req.key, sizeof req.key, "scale/web/2");
        run(c, &req, &out);
        assert_int_equal(out.status, FM_OUTCOME_OK);
        req.arg.scale.to = 7;
        snprintf(req.key, sizeof req.key, "scale/web/3");
        run(c, &req, &out);
        assert_int_equal(out.status, FM_OUTCOME_FAILED);
        assert_int_equal(out.last_error, -ESRCH);
        assert_int_equal(logged("PATCH", "/deployments/web/scale"), 1);
}

static void weights_req(struct fm_action_req *req, const char *a, uint32_t wa, const char *b,
                        uint32_t wb)
{
        fm_test_req(req, FM_ACTION_SET_WEIGHTS, "web", "weights/web");
        req->arg.weights.n = 2;
        snprintf(req->arg.weights.w[0].target, sizeof req->arg.weights.w[0].target, "%s", a);
        req->arg.weights.w[0].weight = wa;
        snprintf(req->arg.weights.w[1].target, sizeof req->arg.weights.w[1].target, "%s", b);
        req->arg.weights.w[1].weight = wb;
}

static void test_weights_istio(void **state)
{
        struct fixture *f = *state;
        struct fm_kube_config *cfg = &f->cfg;
        struct fm_action_outcome out;
        struct fm_action_req req;
        struct json_object *o, *route;
        struct ctx *c;

        cfg->traffic = FM_KUBE_TRAFFIC_ISTIO;
        c = ctx_new(f, 3);
        seed("networking.istio.io", "virtualservices",
             "{\"metadata\":{\"name\":\"web\"},\"spec\":{\"hosts\":[\"web\"],\"http\":[{\"route\":["
             "{\"destination\":{\"host\":\"web\",\"subset\":\"v1\"},\"weight\":100},"
             "{\"destination\":{\"host\":\"web\",\"subset\":\"v2\"},\"weight\":0}]}]}}");
        weights_req(&req, "v1", 90, "v2", 10);
        run(c, &req, &out);
        assert_int_equal(out.status, FM_OUTCOME_OK);
        assert_string_equal(out.detail, "weights v1=90,v2=10 observed");
        o = object("networking.istio.io", "virtualservices", "web");
        route = fm_kube_get(json_object_array_get_idx(
                                    fm_kube_get(o, (const char *const[]){"spec", "http", NULL}), 0),
                            (const char *const[]){"route", NULL});
        assert_int_equal(
                int_at(json_object_array_get_idx(route, 0), (const char *const[]){"weight", NULL}),
                90);
        assert_int_equal(
                int_at(json_object_array_get_idx(route, 1), (const char *const[]){"weight", NULL}),
                10);
        assert_string_equal(str_at(json_object_array_get_idx(route, 1),
                                   (const char *const[]){"destination", "host", NULL}),
                            "web");
        json_object_put(o);
        assert_int_equal(logged("PATCH", "/virtualservices/web"), 1);
        expect_event(c, "FleetmedicSetWeights", "Normal");

        /* A target the route does not know: permanent, nothing written. */
        admin_post("/clear", "{}");
        weights_req(&req, "v1", 50, "v9", 50);
        run(c, &req, &out);
        assert_int_equal(out.status, FM_OUTCOME_FAILED);
        assert_int_equal(out.attempts, 1);
        assert_int_equal(logged("PATCH", "/virtualservices/web"), 0);
}

static void test_weights_gateway(void **state)
{
        struct fixture *f = *state;
        struct fm_kube_config *cfg = &f->cfg;
        struct fm_action_outcome out;
        struct fm_action_req req;
        struct json_object *o, *refs;
        struct ctx *c;

        cfg->traffic = FM_KUBE_TRAFFIC_GATEWAY;
        cfg->n_mappings = 1;
        snprintf(cfg->mapping[0].deployment, sizeof cfg->mapping[0].deployment, "web");
        snprintf(cfg->mapping[0].traffic_name, sizeof cfg->mapping[0].traffic_name, "web-route");
        c = ctx_new(f, 3);
        seed("gateway.networking.k8s.io", "httproutes",
             "{\"metadata\":{\"name\":\"web-route\"},\"spec\":{\"parentRefs\":[{\"name\":\"gw\"}],"
             "\"rules\":[{\"backendRefs\":[{\"name\":\"web-v1\",\"port\":80},"
             "{\"name\":\"web-v2\",\"port\":80,\"weight\":0}]}]}}");
        weights_req(&req, "v1", 0, "v2", 100);
        run(c, &req, &out);
        assert_int_equal(out.status, FM_OUTCOME_OK);
        o = object("gateway.networking.k8s.io", "httproutes", "web-route");
        refs = fm_kube_get(json_object_array_get_idx(
                                   fm_kube_get(o, (const char *const[]){"spec", "rules", NULL}), 0),
                           (const char *const[]){"backendRefs", NULL});
        assert_int_equal(
                int_at(json_object_array_get_idx(refs, 0), (const char *const[]){"weight", NULL}),
                0);
        assert_int_equal(
                int_at(json_object_array_get_idx(refs, 1), (const char *const[]){"weight", NULL}),
                100);
        assert_int_equal(
                int_at(json_object_array_get_idx(refs, 1), (const char *const[]){"port", NULL}),
                80);
        json_object_put(o);

        /* No mapping for another deployment: unsupported. */
        scale_req(&req, "other", "scale/other", 1);
        run(c, &req, &out);
        assert_int_equal(out.status, FM_OUTCOME_UNSUPPORTED);
}

static void test_restart(void **state)
{
        struct fixture *f = *state;
        struct fm_action_outcome out;
        struct fm_action_req req;
        struct json_object *o;
        struct ctx *c;
        const char *at;

        c = web_ctx(f, 3);
        fm_test_req(&req, FM_ACTION_RESTART, "web", "restart/web");
        run(c, &req, &out);
        assert_int_equal(out.status, FM_OUTCOME_OK);
        o = object("apps", "deployments", "web");
        at = str_at(o, (const char *const[]){"spec", "template", "metadata", "annotations",
                                             "kubectl.kubernetes.io/restartedAt", NULL});
        assert_int_equal(strlen(at), 20); /* 2025-01-02T03:04:05Z */
        assert_non_null(strstr(out.detail, at));
        /* The containers survived the strategic merge. */
        assert_int_equal(
                json_object_array_length(fm_kube_get(
                        o, (const char *const[]){"spec", "template", "spec", "containers", NULL})),
                2);
        json_object_put(o);
        assert_patches("application/strategic-merge-patch+json", NULL);
        expect_event(c, "FleetmedicRestart", "Normal");

        /* Observe after the restart: the annotation is there and the rollout complete. */
        req.observe = true;
        snprintf(req.key, sizeof req.key, "restart/web/observe");
        run(c, &req, &out);
        assert_int_equal(out.status, FM_OUTCOME_OK);

        /* A paused Deployment is refused, and the refusal is a Warning Event. */
        seed("apps", "deployments",
             "{\"metadata\":{\"name\":\"paused\"},\"spec\":{\"paused\":true,\"template\":{\"spec\":"
             "{\"containers\":[{\"name\":\"m\",\"image\":\"m:1\"}]}}}}");
        fm_test_req(&req, FM_ACTION_RESTART, "paused", "restart/paused");
        run(c, &req, &out);
        assert_int_equal(out.status, FM_OUTCOME_FAILED);
        assert_string_equal(out.detail, "can't restart paused deployment");
        expect_event(c, "FleetmedicRestart", "Warning");
}

static void test_rollback_image(void **state)
{
        struct fixture *f = *state;
        struct fm_kube_config *cfg = &f->cfg;
        struct fm_action_outcome out;
        struct fm_action_req req;
        struct json_object *o, *list;
        struct ctx *c;

        snprintf(cfg->mapping[0].image, sizeof cfg->mapping[0].image,
                 "registry.example/model:{version}");
        snprintf(cfg->mapping[0].container, sizeof cfg->mapping[0].container, "model");
        c = web_ctx(f, 3);
        fm_test_req(&req, FM_ACTION_ROLLBACK, "web", "rollback/web");
        snprintf(req.arg.rollback.from, sizeof req.arg.rollback.from, "v2");
        snprintf(req.arg.rollback.to, sizeof req.arg.rollback.to, "v0");
        run(c, &req, &out);
        assert_int_equal(out.status, FM_OUTCOME_OK);
        assert_string_equal(out.detail, "registry.example/model:v1->registry.example/model:v0 "
                                        "observed registry.example/model:v0");
        o = object("apps", "deployments", "web");
        list = fm_kube_get(o,
                           (const char *const[]){"spec", "template", "spec", "containers", NULL});
        assert_int_equal(json_object_array_length(list), 2);
        assert_string_equal(
                str_at(json_object_array_get_idx(list, 0), (const char *const[]){"image", NULL}),
                "registry.example/model:v0");
        assert_string_equal(
                str_at(json_object_array_get_idx(list, 1), (const char *const[]){"image", NULL}),
                "envoy:1");
        json_object_put(o);
        expect_event(c, "FleetmedicRollback", "Normal");
}

static void test_rollback_kserve(void **state)
{
        struct fixture *f = *state;
        struct fm_kube_config *cfg = &f->cfg;
        struct fm_action_outcome out;
        struct fm_action_req req;
        struct json_object *o, *ev;
        struct ctx *c;

        cfg->mapping[0].kind = FM_KUBE_WORKLOAD_INFERENCESERVICE;
        snprintf(cfg->mapping[0].storage_uri, sizeof cfg->mapping[0].storage_uri,
                 "s3://models/{deployment}/{version}");
        c = ctx_new(f, 3);
        seed("serving.kserve.io", "inferenceservices",
             "{\"metadata\":{\"name\":\"fraud\"},\"spec\":{\"predictor\":{\"model\":{"
             "\"modelFormat\":"
             "{\"name\":\"sklearn\"},\"storageUri\":\"s3://models/fraud/v3\"}}}}");
        fm_test_req(&req, FM_ACTION_ROLLBACK, "fraud", "rollback/fraud");
        snprintf(req.arg.rollback.to, sizeof req.arg.rollback.to, "v2");
        run(c, &req, &out);
        assert_int_equal(out.status, FM_OUTCOME_OK);
        o = object("serving.kserve.io", "inferenceservices", "fraud");
        assert_string_equal(
                str_at(o, (const char *const[]){"spec", "predictor", "model", "storageUri", NULL}),
                "s3://models/fraud/v2");
        assert_string_equal(str_at(o, (const char *const[]){"spec", "predictor", "model",
                                                            "modelFormat", "name", NULL}),
                            "sklearn");
        json_object_put(o);
        assert_patches("application/merge-patch+json", NULL); /* a custom resource: no SMP */
        ev = wait_event(c, "FleetmedicRollback", "Normal");
        assert_string_equal(str_at(ev, (const char *const[]){"involvedObject", "kind", NULL}),
                            "InferenceService");
        json_object_put(ev);

        /* Scale has no meaning for this kind here. */
        scale_req(&req, "fraud", "scale/fraud", 3);
        run(c, &req, &out);
        assert_int_equal(out.status, FM_OUTCOME_UNSUPPORTED);
}

static void test_conflict(void **state)
{
        struct fixture *f = *state;
        struct fm_action_outcome out;
        struct fm_action_req req;
        struct json_object *log;
        struct ctx *c;
        int statuses[8], n = 0;

        c = web_ctx(f, 1);
        /* A concurrent writer changes the object right after our first read. */
        admin_post("/faults", "{\"faults\":[{\"method\":\"GET\",\"path\":\"/scale\",\"touch\":true,"
                              "\"count\":1}]}");
        scale_req(&req, "web", "scale/conflict", 5);
        run(c, &req, &out);
        assert_int_equal(out.status, FM_OUTCOME_OK);
        assert_int_equal(out.attempts, 1);
        log = request_log();
        for (size_t i = 0; i < json_object_array_length(log) && n < 8; i++) {
                struct json_object *e = json_object_array_get_idx(log, i);
                if (strstr(entry_str(e, "path"), "/scale"))
                        statuses[n++] = entry_int(e, "status");
        }
        json_object_put(log);
        assert_int_equal(n, 4); /* GET, PATCH 409, GET, PATCH */
        assert_int_equal(statuses[1], 409);
        assert_int_equal(statuses[3], 200);

        /* A writer that never stops: bounded re-reads, then a retryable failure. */
        admin_post("/clear", "{}");
        admin_post("/faults", "{\"faults\":[{\"method\":\"GET\",\"path\":\"/scale\",\"touch\":true,"
                              "\"count\":100}]}");
        scale_req(&req, "web", "scale/conflict2", 6);
        run(c, &req, &out);
        assert_int_equal(out.status, FM_OUTCOME_FAILED); /* max_attempts 1 */
        assert_int_equal(out.last_error, -EBUSY);
        assert_non_null(strstr(out.detail, "409 Conflict"));
        assert_non_null(strstr(out.detail, "the object has been modified"));
        assert_int_equal(logged("PATCH", "/deployments/web/scale"), FM_KUBE_CONFLICT_RETRIES + 1);
        admin_post("/clear", "{}");
}

static void expect_failure(struct ctx *c, struct fm_action_req *req, const char *key, int error,
                           const char *needle)
{
        struct fm_action_outcome out;

        snprintf(req->key, sizeof req->key, "%s", key);
        run(c, req, &out);
        assert_int_equal(out.status, FM_OUTCOME_FAILED);
        assert_int_equal(out.attempts, 1); /* permanent: not retried */
        assert_int_equal(out.last_error, error);
        if (!strstr(out.detail, needle))
                fail_msg("detail \"%s\" lacks \"%s\"", out.detail, needle);
}

static void test_errors(void **state)
{
        struct fixture *f = *state;
        struct fm_kube_config *cfg = &f->cfg;
        struct fm_action_req req;
        struct ctx *c;
        char *rbac;

        c = web_ctx(f, 5);
        scale_req(&req, "ghost", "", 3);
        expect_failure(c, &req, "e404", -ENOENT,
                       "404 NotFound: deployments.apps \"ghost\" not found");

        snprintf(req.deployment, sizeof req.deployment, "web");
        admin_post("/faults", "{\"faults\":[{\"method\":\"PATCH\",\"status\":422,\"message\":"
                              "\"Scale.autoscaling \\\"web\\\" is invalid: spec.replicas: Invalid "
                              "value\"}]}");
        expect_failure(c, &req, "e422", -EINVAL,
                       "422 Invalid: Scale.autoscaling \"web\" is invalid");

        /* 403: the Role lacks deployments/scale patch. */
        rbac = rbac_json(FM_KUBE_SCALE_PATCH);
        admin_post("/rbac", "{\"rbac\":%s}", rbac);
        free(rbac);
        expect_failure(c, &req, "e403", -EPERM,
                       "403 Forbidden: deployments.apps \"web\" is forbidden: User "
                       "\"system:serviceaccount:ns:fleetmedic\" cannot patch resource "
                       "\"deployments/scale\"");
        rbac = rbac_json(-1);
        admin_post("/rbac", "{\"rbac\":%s}", rbac);
        free(rbac);

        /* 401: a token the server does not know (and re-reading it changes nothing). */
        char bad[160];
        fm_peer_path(&fake.peer, "bad-token", bad, sizeof bad);
        fm_write_file(bad, "not-the-token\n");
        snprintf(cfg->token_file, sizeof cfg->token_file, "%s", bad);
        c = ctx_new(f, 5);
        expect_failure(c, &req, "e401", -EACCES, "401 Unauthorized: Unauthorized");
}

static void test_retry_after(void **state)
{
        struct fixture *f = *state;
        struct fm_action_outcome out;
        struct fm_action_req req;
        struct json_object *log;
        double t429 = -1, tnext = -1;
        struct ctx *c;

        c = web_ctx(f, 3);
        /* max-in-flight's answer: plain text, Retry-After: 1. */
        admin_post("/faults", "{\"faults\":[{\"method\":\"GET\",\"status\":429,\"retry_after\":1,"
                              "\"plain\":true}]}");
        scale_req(&req, "web", "scale/429", 3);
        run(c, &req, &out);
        assert_int_equal(out.status, FM_OUTCOME_OK);
        assert_int_equal(out.attempts, 2);
        log = request_log();
        for (size_t i = 0; i < json_object_array_length(log); i++) {
                struct json_object *e = json_object_array_get_idx(log, i);
                if (!strstr(entry_str(e, "path"), "/scale"))
                        continue;
                if (entry_int(e, "status") == 429)
                        t429 = entry_t(e);
                else if (t429 >= 0 && tnext < 0)
                        tnext = entry_t(e);
        }
        json_object_put(log);
        assert_true(t429 >= 0 && tnext >= 0);
        if (tnext - t429 < 1.0)
                fail_msg("retried %.3f s after a Retry-After of 1 s", tnext - t429);

        /* A Status 503 is retried too. */
        admin_post("/clear", "{}");
        admin_post("/faults", "{\"faults\":[{\"method\":\"PATCH\",\"status\":503,\"count\":2}]}");
        scale_req(&req, "web", "scale/503", 2);
        run(c, &req, &out);
        assert_int_equal(out.status, FM_OUTCOME_OK);
        assert_int_equal(out.attempts, 3);
}

static void test_timeout(void **state)
{
        struct fixture *f = *state;
        struct fm_kube_config *cfg = &f->cfg;
        struct fm_action_outcome out;
        struct fm_action_req req;
        struct ctx *c;
        int64_t t0;

        cfg->timeout = 300;
        c = web_ctx(f, 1);
        admin_post("/faults", "{\"faults\":[{\"method\":\"GET\",\"delay\":2}]}");
        scale_req(&req, "web", "scale/slow", 3);
        t0 = fm_test_now_ms();
        run(c, &req, &out);
        assert_int_equal(out.status, FM_OUTCOME_FAILED);
        assert_int_equal(out.last_error, -ETIMEDOUT);
        assert_true(fm_test_now_ms() - t0 < 2000); /* it did not wait for the answer */

        /* Retryable: with a second attempt it succeeds. */
        c = ctx_new(f, 2);
        admin_post("/faults", "{\"faults\":[{\"method\":\"GET\",\"delay\":1}]}");
        snprintf(req.key, sizeof req.key, "scale/slow2");
        run(c, &req, &out);
        assert_int_equal(out.status, FM_OUTCOME_OK);
        assert_int_equal(out.attempts, 2);
}

static size_t count_status(struct json_object *log, int status)
{
        size_t n = 0;
        for (size_t i = 0; i < json_object_array_length(log); i++)
                if (entry_int(json_object_array_get_idx(log, i), "status") == status)
                        n++;
        if (getenv("FM_TEST_VERBOSE"))
                fprintf(stderr, "%s\n", json_object_to_json_string(log));
        return n;
}

static void test_token_rotation(void **state)
{
        struct fixture *f = *state;
        struct fm_kube_config *cfg = &f->cfg;
        struct fm_action_outcome out;
        struct fm_action_req req;
        struct json_object *log;
        struct ctx *c;

        /* Re-read on age: a rotated token is picked up without a 401. */
        cfg->token_reread = 100;
        c = web_ctx(f, 1);
        scale_req(&req, "web", "scale/tok1", 3);
        run(c, &req, &out);
        assert_int_equal(out.status, FM_OUTCOME_OK);
        expect_event(c, "FleetmedicScale", "Normal"); /* sent with the old token, before rotating */
        set_token("token-two\n");
        spin(c, 150);
        scale_req(&req, "web", "scale/tok2", 4);
        run(c, &req, &out);
        assert_int_equal(out.status, FM_OUTCOME_OK);
        log = request_log();
        assert_int_equal(count_status(log, 401), 0);
        json_object_put(log);

        /* Cached for a minute: the rotation shows as one 401, then the re-read token works. */
        cfg->token_reread = 60000;
        c = ctx_new(f, 1);
        scale_req(&req, "web", "scale/tok3", 5);
        run(c, &req, &out);
        assert_int_equal(out.status, FM_OUTCOME_OK);
        expect_event(c, "FleetmedicScale", "Normal");
        set_token("token-three\n");
        scale_req(&req, "web", "scale/tok4", 6);
        run(c, &req, &out);
        assert_int_equal(out.status, FM_OUTCOME_OK);
        assert_int_equal(out.attempts, 1);
        log = request_log();
        assert_int_equal(count_status(log, 401), 1);
        json_object_put(log);
        set_token("token-one\n");
}

static void test_hostile_names(void **state)
{
        static const char *const names[] = {
                "../web", "web/scale", "web%2fscale", "web scale", "web\nx", "web;rm",
                "web'",   "web\"",     "WEB",         "..",        ".",      "web?x=1",
                "web#x",  "a\tb",      "\x01",        "-web",      "web-",   "web..x",
        };
        struct fixture *f = *state;
        struct fm_kube_config *cfg = &f->cfg;
        struct fm_action_outcome out;
        struct fm_action_req req;
        struct json_object *log;
        struct ctx *c;
        char key[64];

        cfg->traffic = FM_KUBE_TRAFFIC_GATEWAY;
        snprintf(cfg->mapping[0].image, sizeof cfg->mapping[0].image, "r/m:{version}");
        c = ctx_new(f, 3);
        for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
                for (int a = 0; a < 4; a++) {
                        static const enum fm_action actions[] = {FM_ACTION_SCALE, FM_ACTION_RESTART,
                                                                 FM_ACTION_ROLLBACK,
                                                                 FM_ACTION_SET_WEIGHTS};
                        snprintf(key, sizeof key, "hostile/%zu/%d", i, a);
                        fm_test_req(&req, actions[a], names[i], key);
                        req.arg.scale.to = 2;
                        if (actions[a] == FM_ACTION_ROLLBACK)
                                snprintf(req.arg.rollback.to, sizeof req.arg.rollback.to, "v1");
                        if (actions[a] == FM_ACTION_SET_WEIGHTS) {
                                req.arg.weights.n = 1;
                                snprintf(req.arg.weights.w[0].target,
                                         sizeof req.arg.weights.w[0].target, "v1");
                                req.arg.weights.w[0].weight = 100;
                        }
                        run(c, &req, &out);
                        assert_int_equal(out.status, FM_OUTCOME_FAILED);
                        assert_int_equal(out.last_error, -EINVAL);
                }
        }
        /* A good deployment with hostile arguments. */
        for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
                snprintf(key, sizeof key, "hostile-arg/%zu", i);
                fm_test_req(&req, FM_ACTION_ROLLBACK, "web", key);
                snprintf(req.arg.rollback.to, sizeof req.arg.rollback.to, "%s", names[i]);
                run(c, &req, &out);
                if (strcmp(names[i], "..") != 0 && strcmp(names[i], ".") != 0 &&
                    strcmp(names[i], "-web") != 0 && strcmp(names[i], "web-") != 0 &&
                    strcmp(names[i], "web..x") != 0 && strcmp(names[i], "WEB") != 0) {
                        assert_int_equal(out.status, FM_OUTCOME_FAILED);
                        assert_int_equal(out.last_error, -EINVAL);
                }
                snprintf(key, sizeof key, "hostile-target/%zu", i);
                weights_req(&req, names[i], 50, "v2", 50);
                snprintf(req.key, sizeof req.key, "%s", key);
                run(c, &req, &out);
                if (strcmp(names[i], "WEB") != 0 && strcmp(names[i], "-web") != 0 &&
                    strcmp(names[i], "web-") != 0 && strcmp(names[i], "web..x") != 0 &&
                    strcmp(names[i], "..") != 0 && strcmp(names[i], ".") != 0) {
                        assert_int_equal(out.status, FM_OUTCOME_FAILED);
                        assert_int_equal(out.last_error, -EINVAL);
                }
        }
        log = request_log();
        /* Nothing but requests for the good deployment "web" (and its route) left the process. */
        for (size_t i = 0; i < json_object_array_length(log); i++) {
                struct json_object *e = json_object_array_get_idx(log, i), *ev;
                const char *p = entry_str(e, "path");
                if (strcmp(p, "/api/v1/namespaces/ns/events") == 0) {
                        /* The Warning Events of the failed "web" attempts. */
                        ev = json_tokener_parse(entry_str(e, "body"));
                        assert_string_equal(
                                str_at(ev, (const char *const[]){"involvedObject", "name", NULL}),
                                "web");
                        json_object_put(ev);
                } else if (!strstr(p, "/deployments/web") && !strstr(p, "/httproutes/web")) {
                        fail_msg("unexpected request %s", p);
                }
        }
        json_object_put(log);
}

static void on_lease(void *userdata, bool leader, uint64_t transitions)
{
        struct ctx *c = userdata;
        c->leader = leader;
        c->transitions = transitions;
}

static void test_fence(void **state)
{
        struct fixture *f = *state;
        struct fm_kube_config *cfg = &f->cfg;
        struct fm_action_outcome out;
        struct fm_action_req req;
        struct ctx *c;
        int64_t deadline;

        cfg->lease.enabled = true;
        snprintf(cfg->lease.name, sizeof cfg->lease.name, "fence-test");
        snprintf(cfg->lease.identity, sizeof cfg->lease.identity, "me");
        cfg->lease.lease_duration = 3000;
        cfg->lease.renew_deadline = 2000;
        cfg->lease.retry_period = 500;
        c = web_ctx(f, 1);

        /* Enabled but no elector yet: refused, nothing written. */
        scale_req(&req, "web", "fence/0", 3);
        run(c, &req, &out);
        assert_int_equal(out.status, FM_OUTCOME_REFUSED);

        assert_int_equal(fm_lease_new(c->event, c->k, &cfg->lease, on_lease, c, &c->lease), 0);
        fm_kube_set_lease(c->k, c->lease);
        deadline = fm_test_now_ms() + WAIT_MS;
        while (!c->leader) {
                assert_true(fm_test_now_ms() < deadline);
                assert_true(sd_event_run(c->event, 100000) >= 0);
        }
        uint64_t fence = 99;
        assert_true(fm_lease_is_leader(c->lease, &fence));
        assert_int_equal(fence, c->transitions);

        req.fence = fence + 1; /* stale (or forged) */
        snprintf(req.key, sizeof req.key, "fence/1");
        run(c, &req, &out);
        assert_int_equal(out.status, FM_OUTCOME_REFUSED);
        assert_non_null(strstr(out.detail, "stale"));

        req.fence = fence;
        snprintf(req.key, sizeof req.key, "fence/2");
        run(c, &req, &out);
        assert_int_equal(out.status, FM_OUTCOME_OK);

        assert_int_equal(logged("PATCH", "/deployments/web/scale"), 1);
}

static void test_in_cluster(void **state)
{
        struct fixture *f = *state;
        struct fm_kube_config *cfg = &f->cfg;
        struct fm_action_outcome out;
        struct fm_action_req req;
        struct ctx *c;
        char dir[160], path[200], port[8], cert[8192];
        FILE *fp;
        size_t n;

        fm_peer_path(&fake.peer, "sa", dir, sizeof dir);
        assert_int_equal(mkdir(dir, 0700), 0);
        snprintf(path, sizeof path, "%s/token", dir);
        fm_write_file(path, "token-one\n");
        snprintf(path, sizeof path, "%s/namespace", dir);
        fm_write_file(path, NS);
        fp = fopen(fake.ca, "re");
        assert_non_null(fp);
        n = fread(cert, 1, sizeof cert - 1, fp);
        fclose(fp);
        cert[n] = '\0';
        snprintf(path, sizeof path, "%s/ca.crt", dir);
        fm_write_file(path, cert);

        fm_kube_config_default(cfg);
        cfg->in_cluster = true;
        snprintf(cfg->sa_dir, sizeof cfg->sa_dir, "%s", dir);
        unsetenv("POD_NAMESPACE");
        unsetenv("KUBERNETES_SERVICE_HOST");
        {
                struct fm_kube *k = NULL;
                sd_event *e = NULL;
                assert_int_equal(sd_event_new(&e), 0);
                assert_int_equal(fm_kube_new(e, cfg, NULL, &k), -ENXIO);
                sd_event_unref(e);
        }
        snprintf(port, sizeof port, "%u", fake.port);
        setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1", 1);
        setenv("KUBERNETES_SERVICE_PORT", port, 1);
        c = ctx_new(f, 1);
        assert_string_equal(fm_kube_namespace(c->k), NS);
        seed("apps", "deployments", DEPLOYMENT_WEB);
        scale_req(&req, "web", "scale/in-cluster", 1);
        run(c, &req, &out);
        assert_int_equal(out.status, FM_OUTCOME_OK);
        unsetenv("KUBERNETES_SERVICE_HOST");
        unsetenv("KUBERNETES_SERVICE_PORT");
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_scale, setup, teardown),
                cmocka_unit_test_setup_teardown(test_weights_istio, setup, teardown),
                cmocka_unit_test_setup_teardown(test_weights_gateway, setup, teardown),
                cmocka_unit_test_setup_teardown(test_restart, setup, teardown),
                cmocka_unit_test_setup_teardown(test_rollback_image, setup, teardown),
                cmocka_unit_test_setup_teardown(test_rollback_kserve, setup, teardown),
                cmocka_unit_test_setup_teardown(test_conflict, setup, teardown),
                cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
                cmocka_unit_test_setup_teardown(test_retry_after, setup, teardown),
                cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
                cmocka_unit_test_setup_teardown(test_token_rotation, setup, teardown),
                cmocka_unit_test_setup_teardown(test_hostile_names, setup, teardown),
                cmocka_unit_test_setup_teardown(test_fence, setup, teardown),
                cmocka_unit_test_setup_teardown(test_in_cluster, setup, teardown),
        };
        if (getenv("FM_TEST_FILTER"))
                cmocka_set_test_filter(getenv("FM_TEST_FILTER"));
        return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
