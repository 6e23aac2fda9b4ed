/* SPDX-License-Identifier: MIT */
#include "kube_api.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "httpc.h"

const struct fm_kube_rbac fm_kube_rbac[_FM_KUBE_CALL_MAX] = {
        [FM_KUBE_DEPLOYMENT_GET] = {"apps", "deployments", "get"},
        [FM_KUBE_DEPLOYMENT_PATCH] = {"apps", "deployments", "patch"},
        [FM_KUBE_SCALE_GET] = {"apps", "deployments/scale", "get"},
        [FM_KUBE_SCALE_PATCH] = {"apps", "deployments/scale", "patch"},
        [FM_KUBE_ISVC_GET] = {"serving.kserve.io", "inferenceservices", "get"},
        [FM_KUBE_ISVC_PATCH] = {"serving.kserve.io", "inferenceservices", "patch"},
        [FM_KUBE_VS_GET] = {"networking.istio.io", "virtualservices", "get"},
        [FM_KUBE_VS_PATCH] = {"networking.istio.io", "virtualservices", "patch"},
        [FM_KUBE_ROUTE_GET] = {"gateway.networking.k8s.io", "httproutes", "get"},
        [FM_KUBE_ROUTE_PATCH] = {"gateway.networking.k8s.io", "httproutes", "patch"},
        [FM_KUBE_EVENT_CREATE] = {"", "events", "create"},
        [FM_KUBE_LEASE_GET] = {"coordination.k8s.io", "leases", "get"},
        [FM_KUBE_LEASE_CREATE] = {"coordination.k8s.io", "leases", "create"},
        [FM_KUBE_LEASE_UPDATE] = {"coordination.k8s.io", "leases", "update"},
};

const size_t fm_kube_rbac_n = _FM_KUBE_CALL_MAX;

/* The API version fleetmedic speaks for each group (section 2 of the API facts). */
static const char *group_version(const char *group)
{
        static const struct {
                const char *group, *version;
        } v[] = {
                {"apps", "v1"},
                {"coordination.k8s.io", "v1"},
                {"networking.istio.io", "v1"},
                {"gateway.networking.k8s.io", "v1"},
                {"serving.kserve.io", "v1beta1"},
        };

        for (size_t i = 0; i < ARRAY_SIZE(v); i++)
                if (strcmp(v[i].group, group) == 0)
                        return v[i].version;
        return NULL;
}

const char *fm_kube_call_method(enum fm_kube_call c)
{
        static const struct {
                const char *verb, *method;
        } m[] = {
                {"get", "GET"},
                {"create", "POST"},
                {"update", "PUT"},
                {"patch", "PATCH"},
        };

        if ((unsigned)c >= _FM_KUBE_CALL_MAX)
                return NULL;
        for (size_t i = 0; i < ARRAY_SIZE(m); i++)
                if (strcmp(m[i].verb, fm_kube_rbac[c].verb) == 0)
                        return m[i].method;
        return NULL;
}

static bool alnum_lower(char c)
{
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* One label of s[0..len): [a-z0-9]([-a-z0-9]*[a-z0-9])?, 1..63 bytes. */
static bool label_ok(const char *s, size_t len)
{
        if (len == 0 || len > FM_KUBE_LABEL_MAX || !alnum_lower(s[0]) || !alnum_lower(s[len - 1]))
                return false;
        for (size_t i = 0; i < len; i++)
                if (!alnum_lower(s[i]) && s[i] != '-')
                        return false;
        return true;
}

bool fm_kube_label_valid(const char *s)
{
        return s && label_ok(s, strnlen(s, FM_KUBE_LABEL_MAX + 1));
}

bool fm_kube_name_valid(const char *s)
{
        size_t len;
        const char *p;

        if (!s)
                return false;
        len = strnlen(s, FM_KUBE_NAME_MAX + 1);
        if (len == 0 || len > FM_KUBE_NAME_MAX)
                return false;
        for (p = s;;) {
                const char *dot = memchr(p, '.', (size_t)(s + len - p));
                size_t l = dot ? (size_t)(dot - p) : (size_t)(s + len - p);

                if (!label_ok(p, l))
                        return false;
                if (!dot)
                        return true;
                p = dot + 1;
        }
}

bool fm_kube_version_valid(const char *s)
{
        size_t len;

        if (!s)
                return false;
        len = strnlen(s, 65);
        if (len == 0 || len > 64)
                return false;
        for (size_t i = 0; i < len; i++) {
                char c = s[i];
                if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '.' || c == '_' || c == '-'))
                        return false;
        }
        return true;
}

/* Appends text to buf at *pos; -ENOBUFS when it does not fit. */
static int put(char *buf, size_t size, size_t *pos, const char *text)
{
        size_t l = strlen(text);

        if (*pos + l >= size)
                return -ENOBUFS;
        memcpy(buf + *pos, text, l + 1);
        *pos += l;
        return 0;
}

/* Appends "/" and s escaped as one path segment. */
static int put_segment(char *buf, size_t size, size_t *pos, const char *s)
{
        int r = put(buf, size, pos, "/");

        if (r < 0)
                return r;
        r = fm_url_escape(s, buf + *pos, size - *pos);
        if (r < 0)
                return r;
        *pos += (size_t)r;
        return 0;
}

static bool server_ok(const char *server)
{
        size_t l;

        if (!server || (strncmp(server, "https://", 8) != 0 && strncmp(server, "http://", 7) != 0))
                return false;
        l = strlen(server);
        if (l > FM_KUBE_URL_MAX / 2)
                return false;
        for (size_t i = 0; i < l; i++)
                if ((unsigned char)server[i] <= ' ' || server[i] == 0x7f || server[i] == '?' ||
                    server[i] == '#')
                        return false;
        return true;
}

int fm_kube_url(const char *server, enum fm_kube_call c, const char *ns, const char *name,
                char *buf, size_t size)
{
        const struct fm_kube_rbac *row;
        const char *version, *slash;
        char resource[64], sub[32] = "";
        bool create;
        size_t pos = 0, sl;
        int r;

        if ((unsigned)c >= _FM_KUBE_CALL_MAX || !buf || size == 0 || !server_ok(server) ||
            !fm_kube_label_valid(ns))
                return -EINVAL;
        row = &fm_kube_rbac[c];
        create = strcmp(row->verb, "create") == 0;
        if (create ? name != NULL : !fm_kube_name_valid(name))
                return -EINVAL;
        slash = strchr(row->resource, '/');
        if (slash) {
                if ((size_t)(slash - row->resource) >= sizeof resource ||
                    strlen(slash + 1) >= sizeof sub)
                        return -EINVAL;
                memcpy(resource, row->resource, (size_t)(slash - row->resource));
                resource[slash - row->resource] = '\0';
                memcpy(sub, slash + 1, strlen(slash + 1) + 1);
        } else {
                if (strlen(row->resource) >= sizeof resource)
                        return -EINVAL;
                memcpy(resource, row->resource, strlen(row->resource) + 1);
        }

        buf[0] = '\0';
        sl = strlen(server);
        while (sl > 0 && server[sl - 1] == '/')
                sl--;
        if (sl >= size)
                return -ENOBUFS;
        memcpy(buf, server, sl);
        buf[sl] = '\0';
        pos = sl;
        if (row->group[0] == '\0') {
                r = put(buf, size, &pos, "/api/v1");
        } else {
                version = group_version(row->group);
                if (!version)
                        return -EINVAL;
                r = put(buf, size, &pos, "/apis/");
                if (r >= 0)
                        r = put(buf, size, &pos, row->group);
                if (r >= 0)
                        r = put_segment(buf, size, &pos, version);
        }
        if (r >= 0)
                r = put(buf, size, &pos, "/namespaces");
        if (r >= 0)
                r = put_segment(buf, size, &pos, ns);
        if (r >= 0)
                r = put_segment(buf, size, &pos, resource);
        if (r >= 0 && name)
                r = put_segment(buf, size, &pos, name);
        if (r >= 0 && sub[0])
                r = put_segment(buf, size, &pos, sub);
        if (r < 0) {
                buf[0] = '\0';
                return r;
        }
        return (int)pos;
}

/* Copies at most size - 1 bytes of s[0..len), control bytes as spaces, stopping at a newline
 * when first_line. */
static void copy_text(char *dst, size_t size, const char *s, size_t len, bool first_line)
{
        size_t o = 0;

        for (size_t i = 0; i < len && o + 1 < size && s[i]; i++) {
                unsigned char c = (unsigned char)s[i];
                if (first_line && (c == '\n' || c == '\r'))
                        break;
                dst[o++] = (c < ' ' || c == 0x7f) ? ' ' : (char)c;
        }
        while (o > 0 && dst[o - 1] == ' ')
                o--;
        dst[o] = '\0';
}

void fm_kube_status_parse(long http_status, const char *body, size_t len,
                          struct fm_kube_status *ret)
{
        struct json_object *root = NULL, *v;
        struct json_tokener *tok;

        memset(ret, 0, sizeof *ret);
        ret->code = (int)http_status;
        if (!body || len == 0)
                return;
        tok = json_tokener_new();
        if (tok && len < (size_t)INT32_MAX) {
                root = json_tokener_parse_ex(tok, body, (int)len);
                if (json_tokener_get_error(tok) != json_tokener_success) {
                        json_object_put(root);
                        root = NULL;
                }
        }
        json_tokener_free(tok);

        if (!root || !json_object_is_type(root, json_type_object)) {
                json_object_put(root);
                copy_text(ret->message, sizeof ret->message, body, len, true);
                return;
        }
        if (json_object_object_get_ex(root, "code", &v) && json_object_is_type(v, json_type_int)) {
                int64_t c = json_object_get_int64(v);
                if (c >= 100 && c <= 599)
                        ret->code = (int)c;
        }
        if (json_object_object_get_ex(root, "reason", &v) &&
            json_object_is_type(v, json_type_string))
                copy_text(ret->reason, sizeof ret->reason, json_object_get_string(v),
                          (size_t)json_object_get_string_len(v), true);
        if (json_object_object_get_ex(root, "message", &v) &&
            json_object_is_type(v, json_type_string))
                copy_text(ret->message, sizeof ret->message, json_object_get_string(v),
                          (size_t)json_object_get_string_len(v), false);
        v = fm_kube_get(root, (const char *const[]){"details", "retryAfterSeconds", NULL});
        if (v && json_object_is_type(v, json_type_int)) {
                int64_t s = json_object_get_int64(v);
                if (s > 0 && s <= 3600)
                        ret->retry_after = (fm_ms)s * FM_MS_PER_S;
        }
        json_object_put(root);
}

int fm_kube_expand(const char *pattern, const char *deployment, const char *value, char *buf,
                   size_t size)
{
        size_t pos = 0;

        if (!pattern || !deployment || !value || !buf || size == 0)
                return -EINVAL;
        buf[0] = '\0';
        for (const char *p = pattern; *p;) {
                char one[2] = {*p, '\0'};
                const char *text = one;
                int r;

                if (*p == '{') {
                        const char *end = strchr(p, '}');
                        size_t l;

                        if (!end)
                                return -EINVAL;
                        l = (size_t)(end - p - 1);
                        if (l == 10 && memcmp(p + 1, "deployment", 10) == 0)
                                text = deployment;
                        else if ((l == 7 && memcmp(p + 1, "version", 7) == 0) ||
                                 (l == 6 && memcmp(p + 1, "target", 6) == 0))
                                text = value;
                        else
                                return -EINVAL;
                        p = end + 1;
                } else {
                        p++;
                }
                r = put(buf, size, &pos, text);
                if (r < 0) {
                        buf[0] = '\0';
                        return r;
                }
        }
        return (int)pos;
}

int fm_kube_format_time(fm_ms t, bool micro, char *buf, size_t size)
{
        time_t secs = (time_t)fm_floordiv(t, FM_MS_PER_S);
        int ms = (int)(t - (fm_ms)secs * FM_MS_PER_S);
        struct tm tm;
        int n;

        if (!buf || size == 0)
                return -EINVAL;
        if (!gmtime_r(&secs, &tm) || tm.tm_year + 1900 < 1 || tm.tm_year + 1900 > 9999)
                return -ERANGE;
        if (micro)
                n = snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", tm.tm_year + 1900,
                             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                             ms * 1000);
        else
                n = snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900,
                             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
        if (n < 0 || (size_t)n >= size)
                return -ENOBUFS;
        return n;
}

struct json_object *fm_kube_get(struct json_object *obj, const char *const *keys)
{
        for (; obj && *keys; keys++)
                if (!json_object_is_type(obj, json_type_object) ||
                    !json_object_object_get_ex(obj, *keys, &obj))
                        return NULL;
        return obj;
}

const char *fm_kube_resource_version(struct json_object *obj)
{
        struct json_object *v =
                fm_kube_get(obj, (const char *const[]){"metadata", "resourceVersion", NULL});

        if (!v || !json_object_is_type(v, json_type_string) || json_object_get_string_len(v) == 0 ||
            json_object_get_string_len(v) > FM_KUBE_RV_MAX)
                return NULL;
        return json_object_get_string(v);
}

/* Serialises root (consumed) into a malloc'd string at *ret. */
static int finish(struct json_object *root, char **ret)
{
        const char *s;
        char *copy;

        if (!root)
                return -ENOMEM;
        s = json_object_to_json_string_ext(root,
                                           JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
        copy = s ? strdup(s) : NULL;
        json_object_put(root);
        if (!copy)
                return -ENOMEM;
        *ret = copy;
        return 0;
}

/* Sets key of obj to a new string s; false on allocation failure. */
static bool set_str(struct json_object *obj, const char *key, const char *s)
{
        struct json_object *v = json_object_new_string(s);

        if (!v)
                return false;
        if (json_object_object_add(obj, key, v) < 0) {
                json_object_put(v);
                return false;
        }
        return true;
}

/* Sets key of obj to child (consumed); returns child or NULL. */
static struct json_object *set_obj(struct json_object *obj, const char *key,
                                   struct json_object *child)
{
        if (!obj || !child) {
                json_object_put(child);
                return NULL;
        }
        if (json_object_object_add(obj, key, child) < 0) {
                json_object_put(child);
                return NULL;
        }
        return child;
}

/* A new root object with metadata.resourceVersion = rv (when rv) and an empty spec;
 * *ret_spec is the spec. NULL on allocation failure. */
static struct json_object *patch_root(const char *rv, struct json_object **ret_spec)
{
        struct json_object *root = json_object_new_object(), *meta;

        if (!root)
                return NULL;
        if (rv) {
                meta = set_obj(root, "metadata", json_object_new_object());
                if (!meta || !set_str(meta, "resourceVersion", rv))
                        goto fail;
        }
        *ret_spec = set_obj(root, "spec", json_object_new_object());
        if (!*ret_spec)
                goto fail;
        return root;
fail:
        json_object_put(root);
        return NULL;
}

static bool rv_ok(const char *rv)
{
        return !rv || (rv[0] && strlen(rv) <= FM_KUBE_RV_MAX);
}

int fm_kube_scale_patch(const char *rv, uint32_t replicas, char **ret)
{
        struct json_object *spec, *root;

        if (!ret || !rv_ok(rv) || replicas > INT32_MAX)
                return -EINVAL;
        root = patch_root(rv, &spec);
        if (root && !set_obj(spec, "replicas", json_object_new_int((int32_t)replicas))) {
                json_object_put(root);
                root = NULL;
        }
        return finish(root, ret);
}

int fm_kube_restart_patch(const char *rv, const char *when, char **ret)
{
        struct json_object *spec, *root, *o;

        if (!ret || !rv_ok(rv) || !when || !when[0])
                return -EINVAL;
        root = patch_root(rv, &spec);
        o = set_obj(spec, "template", json_object_new_object());
        o = set_obj(o, "metadata", json_object_new_object());
        o = set_obj(o, "annotations", json_object_new_object());
        if (!o || !set_str(o, "kubectl.kubernetes.io/restartedAt", when)) {
                json_object_put(root);
                return -ENOMEM;
        }
        return finish(root, ret);
}

int fm_kube_image_patch(const char *rv, const char *container, const char *image, char **ret)
{
        struct json_object *spec, *root, *o, *list, *c;

        if (!ret || !rv_ok(rv) || !container || !container[0] || !image || !image[0])
                return -EINVAL;
        root = patch_root(rv, &spec);
        o = set_obj(spec, "template", json_object_new_object());
        o = set_obj(o, "spec", json_object_new_object());
        list = set_obj(o, "containers", json_object_new_array());
        c = json_object_new_object();
        if (!list || !c || json_object_array_add(list, c) < 0) {
                json_object_put(c);
                json_object_put(root);
                return -ENOMEM;
        }
        /* Strategic merge: containers merge by their "name" key, so one entry is enough. */
        if (!set_str(c, "name", container) || !set_str(c, "image", image)) {
                json_object_put(root);
                return -ENOMEM;
        }
        return finish(root, ret);
}

int fm_kube_storage_patch(const char *rv, const char *uri, char **ret)
{
        struct json_object *spec, *root, *o;

        if (!ret || !rv_ok(rv) || !uri || !uri[0])
                return -EINVAL;
        root = patch_root(rv, &spec);
        o = set_obj(spec, "predictor", json_object_new_object());
        o = set_obj(o, "model", json_object_new_object());
        if (!o || !set_str(o, "storageUri", uri)) {
                json_object_put(root);
                return -ENOMEM;
        }
        return finish(root, ret);
}

/* An integer field (missing: dflt). */
static int64_t get_int(struct json_object *obj, const char *const *keys, int64_t dflt)
{
        struct json_object *v = fm_kube_get(obj, keys);

        return v && json_object_is_type(v, json_type_int) ? json_object_get_int64(v) : dflt;
}

bool fm_kube_rollout_complete(struct json_object *d)
{
        int64_t gen = get_int(d, (const char *const[]){"metadata", "generation", NULL}, 0);
        int64_t observed =
                get_int(d, (const char *const[]){"status", "observedGeneration", NULL}, 0);
        int64_t want = get_int(d, (const char *const[]){"spec", "replicas", NULL}, 1);
        int64_t updated = get_int(d, (const char *const[]){"status", "updatedReplicas", NULL}, 0);
        int64_t available =
                get_int(d, (const char *const[]){"status", "availableReplicas", NULL}, 0);

        return observed >= gen && updated == want && available == want;
}

int fm_kube_container_image(struct json_object *d, const char *container, const char **ret)
{
        struct json_object *list = fm_kube_get(
                d, (const char *const[]){"spec", "template", "spec", "containers", NULL});
        struct json_object *found = NULL, *image;
        size_t n;

        if (!list || !json_object_is_type(list, json_type_array) || !container)
                return -EBADMSG;
        n = json_object_array_length(list);
        if (!container[0]) {
                if (n != 1)
                        return -ENOENT;
                found = json_object_array_get_idx(list, 0);
        } else {
                for (size_t i = 0; i < n && !found; i++) {
                        struct json_object *c = json_object_array_get_idx(list, i), *name;
                        if (json_object_object_get_ex(c, "name", &name) &&
                            json_object_is_type(name, json_type_string) &&
                            strcmp(json_object_get_string(name), container) == 0)
                                found = c;
                }
                if (!found)
                        return -ENOENT;
        }
        if (!json_object_is_type(found, json_type_object) ||
            !json_object_object_get_ex(found, "image", &image) ||
            !json_object_is_type(image, json_type_string))
                return -EBADMSG;
        *ret = json_object_get_string(image);
        return 0;
}

/* The name a route entry's destination goes by, NULL when it has none. */
static const char *dest_name(enum fm_kube_traffic t, struct json_object *entry)
{
        struct json_object *v =
                t == FM_KUBE_TRAFFIC_ISTIO
                        ? fm_kube_get(entry, (const char *const[]){"destination", "subset", NULL})
                        : fm_kube_get(entry, (const char *const[]){"name", NULL});

        return v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

/* The index of name in d[0..n), or -1. */
static int dest_index(const struct fm_kube_dest *d, size_t n, const char *name)
{
        for (size_t i = 0; name && i < n; i++)
                if (strcmp(d[i].name, name) == 0)
                        return (int)i;
        return -1;
}

int fm_kube_weights(enum fm_kube_traffic t, struct json_object *obj, const char *rv,
                    const struct fm_kube_dest *d, size_t n, char **ret)
{
        const char *list_key = t == FM_KUBE_TRAFFIC_ISTIO ? "http" : "rules";
        const char *entry_key = t == FM_KUBE_TRAFFIC_ISTIO ? "route" : "backendRefs";
        struct json_object *list, *root, *spec;
        bool touched = false, differs = false;
        size_t nr;

        if ((t != FM_KUBE_TRAFFIC_ISTIO && t != FM_KUBE_TRAFFIC_GATEWAY) || !obj || !d || n == 0 ||
            n > FM_KUBE_DESTS_MAX || (ret && !rv_ok(rv)))
                return -EINVAL;
        list = fm_kube_get(obj, (const char *const[]){"spec", list_key, NULL});
        if (!list || !json_object_is_type(list, json_type_array))
                return -EBADMSG;
        nr = json_object_array_length(list);
        for (size_t i = 0; i < nr; i++) {
                struct json_object *route = json_object_array_get_idx(list, i), *entries;
                bool seen[FM_KUBE_DESTS_MAX] = {false}, any = false;
                size_t ne;

                if (!json_object_object_get_ex(route, entry_key, &entries) ||
                    !json_object_is_type(entries, json_type_array))
                        continue;
                ne = json_object_array_length(entries);
                for (size_t j = 0; j < ne; j++)
                        if (dest_index(d, n, dest_name(t, json_object_array_get_idx(entries, j))) >=
                            0)
                                any = true;
                if (!any)
                        continue;
                touched = true;
                for (size_t j = 0; j < ne; j++) {
                        struct json_object *e = json_object_array_get_idx(entries, j), *w;
                        int k = dest_index(d, n, dest_name(t, e));
                        uint32_t want = k >= 0 ? d[k].weight : 0;
                        /* A missing weight: Gateway's default is 1; Istio's lone destination 100.
                         */
                        int64_t have = t == FM_KUBE_TRAFFIC_GATEWAY ? 1 : (ne == 1 ? 100 : 0);

                        if (!json_object_is_type(e, json_type_object))
                                return -EBADMSG;
                        if (k >= 0)
                                seen[k] = true;
                        if (json_object_object_get_ex(e, "weight", &w) &&
                            json_object_is_type(w, json_type_int))
                                have = json_object_get_int64(w);
                        if (have != (int64_t)want)
                                differs = true;
                        if (ret && !set_obj(e, "weight", json_object_new_int((int32_t)want)))
                                return -ENOMEM;
                }
                for (size_t k = 0; k < n; k++)
                        if (!seen[k])
                                return -ENOENT;
        }
        if (!touched)
                return -ENOENT;
        if (!ret)
                return differs ? -ESRCH : 0;
        root = patch_root(rv, &spec);
        if (!root || !set_obj(spec, list_key, json_object_get(list))) {
                json_object_put(root);
                return -ENOMEM;
        }
        return finish(root, ret);
}

int fm_kube_event_body(const struct fm_kube_event *ev, char **ret)
{
        struct json_object *root, *meta, *inv, *src;
        char name[FM_KUBE_NAME_MAX + 1], when[40], msg[1024];
        int n;

        if (!ev || !ret || !ev->ns || !ev->api_version || !ev->kind || !ev->name || !ev->reason ||
            !ev->reason[0] || strlen(ev->reason) > 128 || !ev->message || !ev->action ||
            !ev->action[0] || strlen(ev->action) > 128 || !ev->instance || !ev->instance[0])
                return -EINVAL;
        /* client-go's <object>.<hex nanoseconds>, cut to fit a subdomain. */
        n = snprintf(name, sizeof name, "%.*s.%" PRIx64, 200, ev->name, ev->unique);
        if (n < 0 || (size_t)n >= sizeof name ||
            fm_kube_format_time(ev->now, false, when, sizeof when) < 0)
                return -EINVAL;
        copy_text(msg, sizeof msg, ev->message, strlen(ev->message), false);

        root = json_object_new_object();
        if (!root)
                return -ENOMEM;
        meta = set_obj(root, "metadata", json_object_new_object());
        inv = set_obj(root, "involvedObject", json_object_new_object());
        src = set_obj(root, "source", json_object_new_object());
        if (!meta || !inv || !src || !set_str(root, "apiVersion", "v1") ||
            !set_str(root, "kind", "Event") || !set_str(meta, "name", name) ||
            !set_str(meta, "namespace", ev->ns) || !set_str(inv, "apiVersion", ev->api_version) ||
            !set_str(inv, "kind", ev->kind) || !set_str(inv, "namespace", ev->ns) ||
            !set_str(inv, "name", ev->name) || !set_str(root, "reason", ev->reason) ||
            !set_str(root, "message", msg) ||
            !set_str(root, "type", ev->warning ? "Warning" : "Normal") ||
            !set_str(root, "action", ev->action) || !set_str(src, "component", "fleetmedic") ||
            !set_str(root, "reportingComponent", "fleetmedic") ||
            !set_str(root, "reportingInstance", ev->instance) ||
            !set_str(root, "firstTimestamp", when) || !set_str(root, "lastTimestamp", when) ||
            !set_obj(root, "count", json_object_new_int(1))) {
                json_object_put(root);
                return -ENOMEM;
        }
        return finish(root, ret);
}
