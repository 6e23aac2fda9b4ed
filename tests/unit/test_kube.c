/* SPDX-License-Identifier: MIT */

/*
 * Unit tests of the pure part of the Kubernetes backend (actuators/kube_api.c)
 * and of the configuration checks of kube.c and lease.c: names, URLs built
 * from the RBAC table, Status parsing, patterns, request bodies, weight
 * rewriting, Events.
 */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "kube.h"
#include "kube_api.h"
#include "lease.h"

static struct json_object *parse(const char *s)
{
        struct json_object *o = json_tokener_parse(s);
        assert_non_null(o);
        return o;
}

static const char *str_at(struct json_object *o, const char *const *keys)
{
        struct json_object *v = fm_kube_get(o, keys);
        assert_non_null(v);
        return json_object_get_string(v);
}

static void test_names(void **state)
{
        (void)state;
        static const char *const good[] = {"a",  "web", "fraud-scorer", "a.b.c",
                                           "x0", "0x",  "model-v2.prod"};
        static const char *const bad[] = {"",     "-a",  "a-", "A",     "a_b",  "a/b",  "..",
                                          "a..b", ".a",  "a.", "a b",   "a\nb", "a%2f", "a;b",
                                          "a'b",  "a\"", "\t", "a\x01", "é"};
        char long_label[80], long_name[300];

        for (size_t i = 0; i < ARRAY_SIZE(good); i++)
                assert_true(fm_kube_name_valid(good[i]));
        for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
                assert_false(fm_kube_name_valid(bad[i]));
                assert_false(fm_kube_label_valid(bad[i]));
        }
        assert_false(fm_kube_name_valid(NULL));
        assert_false(fm_kube_label_valid("a.b"));
        memset(long_label, 'a', 63);
        long_label[63] = '\0';
        assert_true(fm_kube_label_valid(long_label));
        long_label[63] = 'a';
        long_label[64] = '\0';
        assert_false(fm_kube_label_valid(long_label));
        assert_false(fm_kube_name_valid(long_label)); /* a label of 64 inside a name */
        /* 253 bytes of labels is the limit of a name. */
        for (int i = 0; i < 253; i++)
                long_name[i] = (i % 2) ? '.' : 'a';
        long_name[253] = '\0';
        long_name[252] = 'a';
        assert_true(fm_kube_name_valid(long_name));
        long_name[253] = 'a';
        long_name[254] = '\0';
        assert_false(fm_kube_name_valid(long_name));

        assert_true(fm_kube_version_valid("v1.2_rc-3"));
        assert_false(fm_kube_version_valid("v1/2"));
        assert_false(fm_kube_version_valid(""));
}

static void test_rbac_table(void **state)
{
        (void)state;
        bool seen_lease_update = false, seen_scale_patch = false, seen_event = false;

        assert_int_equal(fm_kube_rbac_n, _FM_KUBE_CALL_MAX);
        for (size_t i = 0; i < fm_kube_rbac_n; i++) {
                const struct fm_kube_rbac *r = &fm_kube_rbac[i];
                char url[FM_KUBE_URL_MAX];
                bool create = strcmp(r->verb, "create") == 0;
                int n;

                assert_non_null(r->group);
                assert_non_null(r->resource);
                assert_non_null(fm_kube_call_method((enum fm_kube_call)i));
                n = fm_kube_url("https://k:6443", (enum fm_kube_call)i, "ns", create ? NULL : "obj",
                                url, sizeof url);
                assert_true(n > 0);
                /* The path names the row's group and resource. */
                if (r->group[0]) {
                        char prefix[128];
                        snprintf(prefix, sizeof prefix, "https://k:6443/apis/%s/", r->group);
                        assert_memory_equal(url, prefix, strlen(prefix));
                } else {
                        assert_memory_equal(url, "https://k:6443/api/v1/", 22);
                }
                if (strcmp(r->group, "coordination.k8s.io") == 0 && strcmp(r->verb, "update") == 0)
                        seen_lease_update = true;
                if (strcmp(r->resource, "deployments/scale") == 0 && strcmp(r->verb, "patch") == 0)
                        seen_scale_patch = true;
                if (strcmp(r->resource, "events") == 0 && strcmp(r->verb, "create") == 0)
                        seen_event = true;
        }
        assert_true(seen_lease_update && seen_scale_patch && seen_event);
        assert_string_equal(fm_kube_call_method(FM_KUBE_LEASE_UPDATE), "PUT");
        assert_string_equal(fm_kube_call_method(FM_KUBE_LEASE_CREATE), "POST");
        assert_string_equal(fm_kube_call_method(FM_KUBE_SCALE_PATCH), "PATCH");
        assert_null(fm_kube_call_method(_FM_KUBE_CALL_MAX));
}

static void test_urls(void **state)
{
        (void)state;
        char url[FM_KUBE_URL_MAX];
        static const char *const hostile[] = {"../x", "a/b", "a%2fb", "a b", "a\nb", "a;b", "a'b",
                                              "A",    "",    "a?b",   "a#b", "a\rb", "..",  "."};

        assert_int_equal(
                fm_kube_url("https://k:6443/", FM_KUBE_SCALE_PATCH, "prod", "web", url, sizeof url),
                (int)strlen("https://k:6443/apis/apps/v1/namespaces/prod/deployments/web/scale"));
        assert_string_equal(url,
                            "https://k:6443/apis/apps/v1/namespaces/prod/deployments/web/scale");
        assert_true(fm_kube_url("https://k", FM_KUBE_EVENT_CREATE, "prod", NULL, url, sizeof url) >
                    0);
        assert_string_equal(url, "https://k/api/v1/namespaces/prod/events");
        assert_true(fm_kube_url("https://k", FM_KUBE_ISVC_GET, "p", "m.v1", url, sizeof url) > 0);
        assert_string_equal(
                url,
                "https://k/apis/serving.kserve.io/v1beta1/namespaces/p/inferenceservices/m.v1");
        assert_true(fm_kube_url("https://k", FM_KUBE_VS_PATCH, "p", "m", url, sizeof url) > 0);
        assert_string_equal(url,
                            "https://k/apis/networking.istio.io/v1/namespaces/p/virtualservices/m");
        assert_true(fm_kube_url("https://k", FM_KUBE_ROUTE_GET, "p", "m", url, sizeof url) > 0);
        assert_string_equal(
                url, "https://k/apis/gateway.networking.k8s.io/v1/namespaces/p/httproutes/m");

        for (size_t i = 0; i < ARRAY_SIZE(hostile); i++) {
                strcpy(url, "untouched");
                assert_int_equal(fm_kube_url("https://k", FM_KUBE_DEPLOYMENT_GET, "ns", hostile[i],
                                             url, sizeof url),
                                 -EINVAL);
                assert_int_equal(fm_kube_url("https://k", FM_KUBE_DEPLOYMENT_GET, hostile[i], "web",
                                             url, sizeof url),
                                 -EINVAL);
        }
        /* Namespaces are labels: no dots. */
        assert_int_equal(
                fm_kube_url("https://k", FM_KUBE_DEPLOYMENT_GET, "a.b", "web", url, sizeof url),
                -EINVAL);
        /* Create calls take no name, the others need one. */
        assert_int_equal(fm_kube_url("https://k", FM_KUBE_LEASE_CREATE, "ns", "x", url, sizeof url),
                         -EINVAL);
        assert_int_equal(fm_kube_url("https://k", FM_KUBE_LEASE_GET, "ns", NULL, url, sizeof url),
                         -EINVAL);
        assert_int_equal(fm_kube_url("ftp://k", FM_KUBE_LEASE_GET, "ns", "x", url, sizeof url),
                         -EINVAL);
        assert_int_equal(fm_kube_url("https://k/?x", FM_KUBE_LEASE_GET, "ns", "x", url, sizeof url),
                         -EINVAL);
        assert_int_equal(fm_kube_url("https://k", FM_KUBE_LEASE_GET, "ns", "x", url, 20), -ENOBUFS);
        assert_int_equal(fm_kube_url("https://k", _FM_KUBE_CALL_MAX, "ns", "x", url, sizeof url),
                         -EINVAL);
}

static void test_status(void **state)
{
        (void)state;
        struct fm_kube_status st;
        static const char conflict[] =
                "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\","
                "\"message\":\"Operation cannot be fulfilled on deployments.apps \\\"m\\\": the "
                "object "
                "has been modified\",\"reason\":\"Conflict\",\"details\":{\"name\":\"m\",\"group\":"
                "\"apps\",\"kind\":\"deployments\"},\"code\":409}";
        static const char evict[] =
                "{\"kind\":\"Status\",\"reason\":\"TooManyRequests\",\"message\":"
                "\"slow\\ndown\",\"details\":{\"retryAfterSeconds\":7},\"code\":429}";
        static const char plain[] = "Too many requests, please try again later.\nsecond line";

        fm_kube_status_parse(409, conflict, strlen(conflict), &st);
        assert_int_equal(st.code, 409);
        assert_string_equal(st.reason, "Conflict");
        assert_non_null(strstr(st.message, "deployments.apps \"m\""));
        assert_int_equal(st.retry_after, 0);

        fm_kube_status_parse(429, evict, strlen(evict), &st);
        assert_string_equal(st.reason, "TooManyRequests");
        assert_string_equal(st.message, "slow down"); /* control bytes flattened */
        assert_int_equal(st.retry_after, 7000);

        fm_kube_status_parse(429, plain, strlen(plain), &st);
        assert_int_equal(st.code, 429);
        assert_string_equal(st.reason, "");
        assert_string_equal(st.message, "Too many requests, please try again later.");

        fm_kube_status_parse(502, NULL, 0, &st);
        assert_int_equal(st.code, 502);
        assert_string_equal(st.message, "");

        fm_kube_status_parse(500, "{\"code\":\"x\",\"reason\":5}", 23, &st);
        assert_int_equal(st.code, 500);
        assert_string_equal(st.reason, "");
}

static void test_expand_and_time(void **state)
{
        (void)state;
        char buf[64];

        assert_int_equal(
                fm_kube_expand("registry.example/model:{version}", "web", "v7", buf, sizeof buf),
                (int)strlen("registry.example/model:v7"));
        assert_string_equal(buf, "registry.example/model:v7");
        assert_true(fm_kube_expand("s3://models/{deployment}/{version}", "web", "v7", buf,
                                   sizeof buf) > 0);
        assert_string_equal(buf, "s3://models/web/v7");
        assert_true(fm_kube_expand("{deployment}-{target}", "web", "v2", buf, sizeof buf) > 0);
        assert_string_equal(buf, "web-v2");
        assert_int_equal(fm_kube_expand("{nope}", "web", "v2", buf, sizeof buf), -EINVAL);
        assert_int_equal(fm_kube_expand("x{version", "web", "v2", buf, sizeof buf), -EINVAL);
        assert_int_equal(fm_kube_expand("{deployment}{deployment}", "web", "v", buf, 6), -ENOBUFS);

        assert_int_equal(fm_kube_format_time(1735787045123, false, buf, sizeof buf), 20);
        assert_string_equal(buf, "2025-01-02T03:04:05Z");
        assert_int_equal(fm_kube_format_time(1735787045123, true, buf, sizeof buf), 27);
        assert_string_equal(buf, "2025-01-02T03:04:05.123000Z");
        assert_int_equal(fm_kube_format_time(1735787045123, true, buf, 10), -ENOBUFS);
}

static void test_bodies(void **state)
{
        (void)state;
        struct json_object *o;
        char *s = NULL;

        assert_int_equal(fm_kube_scale_patch("42", 4, &s), 0);
        o = parse(s);
        assert_string_equal(fm_kube_resource_version(o), "42");
        assert_int_equal(json_object_get_int(
                                 fm_kube_get(o, (const char *const[]){"spec", "replicas", NULL})),
                         4);
        json_object_put(o);
        free(s);

        assert_int_equal(fm_kube_restart_patch("7", "2025-01-02T03:04:05Z", &s), 0);
        o = parse(s);
        assert_string_equal(
                str_at(o, (const char *const[]){"spec", "template", "metadata", "annotations",
                                                "kubectl.kubernetes.io/restartedAt", NULL}),
                "2025-01-02T03:04:05Z");
        json_object_put(o);
        free(s);

        assert_int_equal(fm_kube_image_patch(NULL, "model", "r/m:v1", &s), 0);
        o = parse(s);
        assert_null(fm_kube_resource_version(o));
        {
                struct json_object *c = fm_kube_get(
                        o, (const char *const[]){"spec", "template", "spec", "containers", NULL});
                assert_int_equal(json_object_array_length(c), 1);
                assert_string_equal(str_at(json_object_array_get_idx(c, 0),
                                           (const char *const[]){"name", NULL}),
                                    "model");
        }
        json_object_put(o);
        free(s);

        assert_int_equal(fm_kube_storage_patch("9", "s3://m/v1", &s), 0);
        o = parse(s);
        assert_string_equal(
                str_at(o, (const char *const[]){"spec", "predictor", "model", "storageUri", NULL}),
                "s3://m/v1");
        json_object_put(o);
        free(s);

        s = NULL;
        assert_int_equal(fm_kube_scale_patch("", 1, &s), -EINVAL);
        assert_int_equal(fm_kube_image_patch("1", "", "x", &s), -EINVAL);
        assert_null(s);
}

static void test_deployment_reads(void **state)
{
        (void)state;
        struct json_object *d = parse(
                "{\"metadata\":{\"generation\":3,\"resourceVersion\":\"5\"},\"spec\":{\"replicas\":"
                "2,"
                "\"template\":{\"spec\":{\"containers\":[{\"name\":\"model\",\"image\":\"r/m:v1\"},"
                "{\"name\":\"proxy\",\"image\":\"envoy\"}]}}},\"status\":{\"observedGeneration\":3,"
                "\"updatedReplicas\":2,\"availableReplicas\":2}}");
        const char *img = NULL;

        assert_true(fm_kube_rollout_complete(d));
        assert_int_equal(fm_kube_container_image(d, "proxy", &img), 0);
        assert_string_equal(img, "envoy");
        assert_int_equal(fm_kube_container_image(d, "", &img), -ENOENT); /* two containers */
        assert_int_equal(fm_kube_container_image(d, "nope", &img), -ENOENT);
        json_object_put(d);

        /* Zero counters are omitted: a missing availableReplicas is 0, so not complete. */
        d = parse("{\"metadata\":{\"generation\":2},\"spec\":{\"replicas\":1},\"status\":"
                  "{\"observedGeneration\":2,\"updatedReplicas\":1}}");
        assert_false(fm_kube_rollout_complete(d));
        json_object_put(d);
        d = parse("{\"metadata\":{\"generation\":2},\"spec\":{\"replicas\":1},\"status\":"
                  "{\"observedGeneration\":1,\"updatedReplicas\":1,\"availableReplicas\":1}}");
        assert_false(fm_kube_rollout_complete(d));
        json_object_put(d);
}

static void test_weights_istio(void **state)
{
        (void)state;
        struct json_object *vs = parse(
                "{\"metadata\":{\"resourceVersion\":\"11\"},\"spec\":{\"hosts\":[\"m\"],\"http\":["
                "{\"match\":[{\"uri\":{\"prefix\":\"/"
                "admin\"}}],\"route\":[{\"destination\":{\"host\":\"admin\"}}]},"
                "{\"route\":[{\"destination\":{\"host\":\"m\",\"subset\":\"v1\"},\"weight\":100},"
                "{\"destination\":{\"host\":\"m\",\"subset\":\"v2\"}},"
                "{\"destination\":{\"host\":\"m\",\"subset\":\"v0\"},\"weight\":0}]}]}}");
        struct fm_kube_dest d[2] = {{"v1", 90}, {"v2", 10}};
        struct json_object *patch, *list, *route;
        char *s = NULL;

        assert_int_equal(fm_kube_weights(FM_KUBE_TRAFFIC_ISTIO, vs, NULL, d, 2, NULL), -ESRCH);
        assert_int_equal(fm_kube_weights(FM_KUBE_TRAFFIC_ISTIO, vs, "11", d, 2, &s), 0);
        patch = parse(s);
        free(s);
        assert_string_equal(fm_kube_resource_version(patch), "11");
        list = fm_kube_get(patch, (const char *const[]){"spec", "http", NULL});
        assert_int_equal(json_object_array_length(list), 2); /* the whole list: merge patch */
        route = fm_kube_get(json_object_array_get_idx(list, 1),
                            (const char *const[]){"route", NULL});
        assert_int_equal(json_object_get_int(fm_kube_get(json_object_array_get_idx(route, 0),
                                                         (const char *const[]){"weight", NULL})),
                         90);
        assert_int_equal(json_object_get_int(fm_kube_get(json_object_array_get_idx(route, 1),
                                                         (const char *const[]){"weight", NULL})),
                         10);
        assert_int_equal(json_object_get_int(fm_kube_get(json_object_array_get_idx(route, 2),
                                                         (const char *const[]){"weight", NULL})),
                         0);
        /* The untouched route keeps no weight. */
        route = fm_kube_get(json_object_array_get_idx(list, 0),
                            (const char *const[]){"route", NULL});
        assert_null(fm_kube_get(json_object_array_get_idx(route, 0),
                                (const char *const[]){"weight", NULL}));
        /* vs was rewritten in place: the check now holds. */
        assert_int_equal(fm_kube_weights(FM_KUBE_TRAFFIC_ISTIO, vs, NULL, d, 2, NULL), 0);
        json_object_put(patch);

        struct fm_kube_dest missing[2] = {{"v1", 50}, {"v9", 50}};
        assert_int_equal(fm_kube_weights(FM_KUBE_TRAFFIC_ISTIO, vs, "11", missing, 2, &s), -ENOENT);
        struct fm_kube_dest none[1] = {{"v9", 100}};
        assert_int_equal(fm_kube_weights(FM_KUBE_TRAFFIC_ISTIO, vs, "11", none, 1, &s), -ENOENT);
        json_object_put(vs);
}

static void test_weights_gateway(void **state)
{
        (void)state;
        struct json_object *rt = parse(
                "{\"metadata\":{\"resourceVersion\":\"3\"},\"spec\":{\"rules\":[{\"backendRefs\":["
                "{\"name\":\"web-v1\",\"port\":80},{\"name\":\"web-v2\",\"port\":80,\"weight\":0}]}"
                "]}}");
        struct fm_kube_dest d[2] = {{"web-v1", 1}, {"web-v2", 0}};
        struct fm_kube_dest e[2] = {{"web-v1", 0}, {"web-v2", 100}};
        char *s = NULL;

        /* A missing Gateway weight is 1. */
        assert_int_equal(fm_kube_weights(FM_KUBE_TRAFFIC_GATEWAY, rt, NULL, d, 2, NULL), 0);
        assert_int_equal(fm_kube_weights(FM_KUBE_TRAFFIC_GATEWAY, rt, NULL, e, 2, NULL), -ESRCH);
        assert_int_equal(fm_kube_weights(FM_KUBE_TRAFFIC_GATEWAY, rt, "3", e, 2, &s), 0);
        assert_non_null(strstr(s, "\"rules\""));
        assert_non_null(strstr(s, "\"weight\":100"));
        free(s);
        assert_int_equal(fm_kube_weights(FM_KUBE_TRAFFIC_NONE, rt, "3", e, 2, &s), -EINVAL);
        json_object_put(rt);
        rt = parse("{\"spec\":{\"rules\":5}}");
        assert_int_equal(fm_kube_weights(FM_KUBE_TRAFFIC_GATEWAY, rt, NULL, e, 2, NULL), -EBADMSG);
        json_object_put(rt);
}

static void test_event(void **state)
{
        (void)state;
        struct fm_kube_event ev = {
                .ns = "prod",
                .api_version = "apps/v1",
                .kind = "Deployment",
                .name = "web",
                .reason = "FleetmedicScale",
                .message = "scale web 2->4\n\"quoted\"",
                .action = "Scale",
                .instance = "host-1",
                .warning = false,
                .now = 1735787045123,
                .unique = 0xabc,
        };
        struct json_object *o;
        char *s = NULL;

        assert_int_equal(fm_kube_event_body(&ev, &s), 0);
        o = parse(s);
        free(s);
        assert_string_equal(str_at(o, (const char *const[]){"metadata", "name", NULL}), "web.abc");
        assert_string_equal(str_at(o, (const char *const[]){"metadata", "namespace", NULL}),
                            "prod");
        assert_string_equal(str_at(o, (const char *const[]){"involvedObject", "namespace", NULL}),
                            "prod");
        assert_string_equal(str_at(o, (const char *const[]){"involvedObject", "kind", NULL}),
                            "Deployment");
        assert_string_equal(str_at(o, (const char *const[]){"type", NULL}), "Normal");
        assert_string_equal(str_at(o, (const char *const[]){"reportingComponent", NULL}),
                            "fleetmedic");
        assert_string_equal(str_at(o, (const char *const[]){"source", "component", NULL}),
                            "fleetmedic");
        assert_string_equal(str_at(o, (const char *const[]){"message", NULL}),
                            "scale web 2->4 \"quoted\"");
        assert_string_equal(str_at(o, (const char *const[]){"firstTimestamp", NULL}),
                            "2025-01-02T03:04:05Z");
        json_object_put(o);

        ev.warning = true;
        assert_int_equal(fm_kube_event_body(&ev, &s), 0);
        o = parse(s);
        free(s);
        assert_string_equal(str_at(o, (const char *const[]){"type", NULL}), "Warning");
        json_object_put(o);
        ev.reason = "";
        assert_int_equal(fm_kube_event_body(&ev, &s), -EINVAL);
}

static void test_configs(void **state)
{
        (void)state;
        struct fm_kube_config *c = malloc(sizeof *c);
        struct fm_lease_config l;

        assert_non_null(c);
        fm_kube_config_default(c);
        assert_int_equal(c->timeout, 10000);
        assert_int_equal(c->token_reread, 60000);
        assert_int_equal(c->n_mappings, 1);
        assert_string_equal(c->mapping[0].deployment, "*");
        assert_int_equal(fm_kube_config_validate(c), -EINVAL); /* no server */
        strcpy(c->server, "https://127.0.0.1:6443");
        assert_int_equal(fm_kube_config_validate(c), 0);
        strcpy(c->namespace_, "Prod");
        assert_int_equal(fm_kube_config_validate(c), -EINVAL);
        strcpy(c->namespace_, "prod");
        strcpy(c->mapping[0].image, "r/m:{verson}");
        assert_int_equal(fm_kube_config_validate(c), -EINVAL);
        strcpy(c->mapping[0].image, "r/m:{version}");
        c->n_mappings = 2;
        strcpy(c->mapping[1].deployment, "*"); /* twice */
        assert_int_equal(fm_kube_config_validate(c), -EINVAL);
        strcpy(c->mapping[1].deployment, "web/x");
        assert_int_equal(fm_kube_config_validate(c), -EINVAL);
        strcpy(c->mapping[1].deployment, "web");
        assert_int_equal(fm_kube_config_validate(c), 0);
        c->in_cluster = true;
        assert_int_equal(fm_kube_config_validate(c), -EINVAL); /* server set too */
        c->server[0] = '\0';
        assert_int_equal(fm_kube_config_validate(c), 0);
        free(c);

        fm_lease_config_default(&l);
        assert_int_equal(l.lease_duration, 15000);
        assert_int_equal(l.renew_deadline, 10000);
        assert_int_equal(l.retry_period, 2000);
        assert_string_equal(l.name, "fleetmedic");
        assert_int_equal(fm_lease_config_validate(&l), 0);
        l.renew_deadline = 15000; /* not below the duration */
        assert_int_equal(fm_lease_config_validate(&l), -EINVAL);
        l.renew_deadline = 2400; /* not above 1.2 x retry */
        assert_int_equal(fm_lease_config_validate(&l), -EINVAL);
        l.renew_deadline = 2500;
        assert_int_equal(fm_lease_config_validate(&l), 0);
        l.lease_duration = 15500; /* whole seconds */
        assert_int_equal(fm_lease_config_validate(&l), -EINVAL);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_names),
                cmocka_unit_test(test_rbac_table),
                cmocka_unit_test(test_urls),
                cmocka_unit_test(test_status),
                cmocka_unit_test(test_expand_and_time),
                cmocka_unit_test(test_bodies),
                cmocka_unit_test(test_deployment_reads),
                cmocka_unit_test(test_weights_istio),
                cmocka_unit_test(test_weights_gateway),
                cmocka_unit_test(test_event),
                cmocka_unit_test(test_configs),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
