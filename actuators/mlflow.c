/* SPDX-License-Identifier: MIT */
#include "mlflow.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#include "http_backend.h"
#include "httpc.h"

/*
 * One operation per started attempt (or listing): a little state machine
 * that issues one HTTP request at a time and moves on from the response's
 * callback. Results are only ever delivered from those callbacks, so
 * start() never re-enters the actuator. An operation is unlinked before its
 * result is delivered and freed right after, so whatever the receiver does
 * (cancel another attempt, start one) finds a consistent list.
 */

#define URL_MAX 4096
#define QUERY_MAX 2048
#define DETAIL_MAX FM_ACTUATOR_DETAIL_MAX
#define MESSAGE_MAX 160     /* bytes of a server message quoted in a detail */
#define PAGE_SIZE 200       /* max_results of one search page */
#define LIST_PAGES_MAX 64   /* pages one listing follows at most */
#define PAGE_TOKEN_MAX 1024 /* bytes of a next_page_token we pass back */
#define API "/api/2.0/mlflow/"

enum op_kind {
        OP_ROLLBACK,
        OP_THRESHOLD,
        OP_LIST,
};

enum step {
        ST_READ_ALIAS,
        ST_GET_TO,
        ST_SET_ALIAS,
        ST_TAG_FROM,
        ST_SET_TAG,
        ST_GET_VERSION,
        ST_SEARCH,
};

struct op {
        struct fm_mlflow *x;
        struct op *prev, *next;
        enum op_kind kind;
        enum step step;
        bool observe;
        uint64_t id; /* attempt id, or listing id */
        uint64_t http_id;
        char model[FM_MLFLOW_MODEL_MAX];
        char from[FM_MLFLOW_VERSION_NUM_MAX], to[FM_MLFLOW_VERSION_NUM_MAX];
        char alias_at[FM_MLFLOW_VERSION_NUM_MAX]; /* "" when the alias is unset */
        double value;
        /* listing */
        fm_mlflow_list_fn done;
        void *userdata;
        struct fm_mlflow_version *versions;
        size_t n;
        unsigned pages;
        bool truncated;
};

struct cred {
        const char *path; /* into cfg; "" for none */
        bool loaded;
        dev_t dev;
        ino_t ino;
        off_t size;
        struct timespec mtime;
        char value[FM_MLFLOW_SECRET_MAX];
};

struct fm_mlflow {
        sd_event *event;
        struct fm_actuator *a;
        struct fm_httpc *http;
        struct fm_mlflow_config cfg;
        struct cred token, user, password;
        struct op *ops;
        uint64_t next_list_id;
};

/* ---- configuration ---- */

static void copy(char *dst, size_t size, const char *src)
{
        snprintf(dst, size, "%s", src);
}

void fm_mlflow_config_default(struct fm_mlflow_config *cfg)
{
        memset(cfg, 0, sizeof *cfg);
        copy(cfg->uri, sizeof cfg->uri, "http://127.0.0.1:5000");
        copy(cfg->alias, sizeof cfg->alias, "production");
        copy(cfg->threshold_tag, sizeof cfg->threshold_tag, "fleetmedic.threshold");
        copy(cfg->rolled_back_tag, sizeof cfg->rolled_back_tag, "fleetmedic.rolled_back");
        cfg->timeout = 10 * FM_MS_PER_S;
        cfg->n_models = 1;
        copy(cfg->models[0].deployment, sizeof cfg->models[0].deployment, "*");
        copy(cfg->models[0].model, sizeof cfg->models[0].model, "*");
}

static bool alias_ok(const char *s)
{
        size_t n = strlen(s);
        if (n == 0 || n > 255 || strcasecmp(s, "latest") == 0)
                return false;
        for (size_t i = 0; i < n; i++) {
                char c = s[i];
                if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '_' || c == '-'))
                        return false;
        }
        if ((s[0] == 'v' || s[0] == 'V') && n > 1 && strspn(s + 1, "0123456789") == n - 1)
                return false;
        return true;
}

static bool tag_key_ok(const char *s)
{
        size_t n = strlen(s);
        if (n == 0 || n > 250)
                return false;
        for (size_t i = 0; i < n; i++) {
                char c = s[i];
                if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '_' || c == '.' || c == '/' || c == ' ' || c == '-'))
                        return false;
        }
        return true;
}

static bool deployment_ok(const char *s)
{
        size_t n = strlen(s);
        if (strcmp(s, "*") == 0)
                return true;
        if (n == 0 || n > FM_NAME_MAX)
                return false;
        for (size_t i = 0; i < n; i++) {
                char c = s[i];
                bool edge = i == 0 || i == n - 1;
                if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                      (!edge && (c == '-' || c == '.'))))
                        return false;
        }
        return true;
}

int fm_mlflow_config_validate(const struct fm_mlflow_config *cfg)
{
        if (!cfg)
                return -EINVAL;
        if (!fm_text_terminated(cfg->uri, sizeof cfg->uri) ||
            !fm_text_terminated(cfg->ca_file, sizeof cfg->ca_file) ||
            !fm_text_terminated(cfg->token_file, sizeof cfg->token_file) ||
            !fm_text_terminated(cfg->username_file, sizeof cfg->username_file) ||
            !fm_text_terminated(cfg->password_file, sizeof cfg->password_file) ||
            !fm_text_terminated(cfg->alias, sizeof cfg->alias) ||
            !fm_text_terminated(cfg->threshold_tag, sizeof cfg->threshold_tag) ||
            !fm_text_terminated(cfg->rolled_back_tag, sizeof cfg->rolled_back_tag))
                return -EINVAL;
        if (!fm_http_base_url_ok(cfg->uri))
                return -EINVAL;
        if (!fm_text_no_controls(cfg->ca_file) || !fm_text_no_controls(cfg->token_file) ||
            !fm_text_no_controls(cfg->username_file) || !fm_text_no_controls(cfg->password_file))
                return -EINVAL;
        if ((cfg->username_file[0] == '\0') != (cfg->password_file[0] == '\0'))
                return -EINVAL;
        if (!alias_ok(cfg->alias) || !tag_key_ok(cfg->threshold_tag) ||
            !tag_key_ok(cfg->rolled_back_tag))
                return -EINVAL;
        if (cfg->timeout < 1 || cfg->timeout > 600 * FM_MS_PER_S)
                return -EINVAL;
        if (cfg->n_models > FM_MLFLOW_MODELS_MAX)
                return -EINVAL;
        for (uint32_t i = 0; i < cfg->n_models; i++) {
                const struct fm_mlflow_model_map *m = &cfg->models[i];
                if (!fm_text_terminated(m->deployment, sizeof m->deployment) ||
                    !fm_text_terminated(m->model, sizeof m->model) ||
                    !deployment_ok(m->deployment) || m->model[0] == '\0' ||
                    !fm_text_no_controls(m->model))
                        return -EINVAL;
                for (uint32_t j = 0; j < i; j++)
                        if (strcmp(cfg->models[j].deployment, m->deployment) == 0)
                                return -EINVAL;
        }
        return 0;
}

const char *fm_mlflow_model_for(const struct fm_mlflow *x, const char *deployment)
{
        const struct fm_mlflow_model_map *star = NULL;

        if (!x || !deployment)
                return NULL;
        for (uint32_t i = 0; i < x->cfg.n_models; i++) {
                const struct fm_mlflow_model_map *m = &x->cfg.models[i];
                if (strcmp(m->deployment, deployment) == 0)
                        return strcmp(m->model, "*") == 0 ? deployment : m->model;
                if (strcmp(m->deployment, "*") == 0)
                        star = m;
        }
        if (!star)
                return NULL;
        return strcmp(star->model, "*") == 0 ? deployment : star->model;
}

int fm_mlflow_version_number(const char *version, char *buf, size_t size)
{
        size_t n;

        if (!version || !buf)
                return -EINVAL;
        if (version[0] == 'v')
                version++;
        n = strlen(version);
        if (n == 0 || n > 10 || version[0] == '0' || strspn(version, "0123456789") != n)
                return -EINVAL;
        if (n >= size)
                return -ENOBUFS;
        memcpy(buf, version, n + 1);
        return (int)n;
}

/* ---- credentials ---- */

/*
 * Reads c's file when it changed since the last read. Returns 0 (also when
 * unchanged), or -errno / -EINVAL (empty, control bytes). On failure the
 * value read before stays.
 */
static int cred_refresh(struct cred *c)
{
        struct stat st;
        char buf[FM_MLFLOW_SECRET_MAX];
        ssize_t n;
        size_t len = 0;
        int fd, r = 0;

        if (!c->path || c->path[0] == '\0')
                return 0;
        if (stat(c->path, &st) < 0)
                return -errno;
        if (c->loaded && st.st_dev == c->dev && st.st_ino == c->ino && st.st_size == c->size &&
            st.st_mtim.tv_sec == c->mtime.tv_sec && st.st_mtim.tv_nsec == c->mtime.tv_nsec)
                return 0;
        fd = open(c->path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0) {
                r = -errno;
                goto out;
        }
        while (len < sizeof buf - 1) {
                n = read(fd, buf + len, sizeof buf - 1 - len);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        r = -errno;
                        goto out;
                }
                if (n == 0)
                        break;
                len += (size_t)n;
        }
        buf[len] = '\0';
        buf[strcspn(buf, "\n")] = '\0';
        len = strlen(buf);
        if (len > 0 && buf[len - 1] == '\r')
                buf[--len] = '\0';
        if (len == 0 || !fm_text_no_controls(buf)) {
                r = -EINVAL;
                goto out;
        }
        memcpy(c->value, buf, len + 1);
        c->loaded = true;
        c->dev = st.st_dev;
        c->ino = st.st_ino;
        c->size = st.st_size;
        c->mtime = st.st_mtim;
out:
        explicit_bzero(buf, sizeof buf);
        close(fd);
        return r;
}

static void cred_wipe(struct cred *c)
{
        explicit_bzero(c->value, sizeof c->value);
        c->loaded = false;
}

/* ---- lifecycle ---- */

static void op_free(struct op *o)
{
        if (!o)
                return;
        free(o->versions);
        free(o);
}

static void op_link(struct fm_mlflow *x, struct op *o)
{
        o->x = x;
        o->next = x->ops;
        if (x->ops)
                x->ops->prev = o;
        x->ops = o;
}

static void op_unlink(struct fm_mlflow *x, struct op *o)
{
        if (o->prev)
                o->prev->next = o->next;
        else
                x->ops = o->next;
        if (o->next)
                o->next->prev = o->prev;
        o->prev = o->next = NULL;
}

int fm_mlflow_new(sd_event *event, const struct fm_mlflow_config *cfg, struct fm_actuator *a,
                  struct fm_mlflow **ret)
{
        struct fm_mlflow *x;
        int r;

        if (!event || !ret || fm_mlflow_config_validate(cfg) < 0)
                return -EINVAL;
        x = calloc(1, sizeof *x);
        if (!x)
                return -ENOMEM;
        x->event = sd_event_ref(event);
        x->a = a;
        x->cfg = *cfg;
        x->next_list_id = 1;
        fm_http_trim_slashes(x->cfg.uri);
        x->token.path = x->cfg.token_file;
        x->user.path = x->cfg.username_file;
        x->password.path = x->cfg.password_file;
        r = cred_refresh(&x->token);
        if (r >= 0)
                r = cred_refresh(&x->user);
        if (r >= 0)
                r = cred_refresh(&x->password);
        if (r >= 0 && x->user.loaded && strchr(x->user.value, ':'))
                r = -EINVAL;
        if (r >= 0)
                r = fm_httpc_new(event, &x->http);
        if (r < 0) {
                fm_mlflow_free(x);
                return r;
        }
        *ret = x;
        return 0;
}

struct fm_mlflow *fm_mlflow_free(struct fm_mlflow *x)
{
        if (!x)
                return NULL;
        while (x->ops) {
                struct op *o = x->ops;
                op_unlink(x, o);
                op_free(o);
        }
        x->http = fm_httpc_free(x->http);
        cred_wipe(&x->token);
        cred_wipe(&x->user);
        cred_wipe(&x->password);
        sd_event_unref(x->event);
        free(x);
        return NULL;
}

/* ---- requests ---- */

static void on_http(void *userdata, const struct fm_httpc_response *resp);

/*
 * Sends one request of o: GET with query, or POST with a JSON body. The
 * credentials are refreshed first (a failed re-read keeps the old ones).
 */
static int op_send(struct op *o, const char *method, const char *path, const char *query,
                   json_object *body)
{
        struct fm_mlflow *x = o->x;
        char url[URL_MAX], auth[FM_MLFLOW_SECRET_MAX + 32];
        const char *headers[4] = {"Accept: application/json"};
        size_t nh = 1;
        const char *text = NULL;
        size_t text_len = 0;
        int n, r;

        n = snprintf(url, sizeof url, "%s" API "%s%s%s", x->cfg.uri, path, query ? "?" : "",
                     query ? query : "");
        if (n < 0 || (size_t)n >= sizeof url)
                return -EINVAL;

        (void)cred_refresh(&x->token);
        (void)cred_refresh(&x->user);
        (void)cred_refresh(&x->password);
        bool basic = x->user.loaded && x->password.loaded;
        if (!basic && x->token.loaded) {
                n = snprintf(auth, sizeof auth, "Authorization: Bearer %s", x->token.value);
                if (n < 0 || (size_t)n >= sizeof auth)
                        return -EINVAL;
                headers[nh++] = auth;
        }
        if (body) {
                headers[nh++] = "Content-Type: application/json";
                text = json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN);
                if (!text)
                        return -ENOMEM;
                text_len = strlen(text);
        }
        headers[nh] = NULL;

        struct fm_httpc_request req = {
                .method = method,
                .url = url,
                .headers = headers,
                .body = text,
                .body_len = text_len,
                .ca_file = x->cfg.ca_file[0] ? x->cfg.ca_file : NULL,
                .basic_user = basic ? x->user.value : NULL,
                .basic_password = basic ? x->password.value : NULL,
                .timeout = x->cfg.timeout,
        };
        r = fm_httpc_submit(x->http, &req, on_http, o, &o->http_id);
        explicit_bzero(auth, sizeof auth);
        return r;
}

static int escape_into(char *buf, size_t size, const char *s)
{
        int r = fm_url_escape(s, buf, size);
        return r < 0 ? -EINVAL : 0;
}

/* GET path?name=<model>&<key>=<value>. */
static int op_get_named(struct op *o, const char *path, const char *key, const char *value)
{
        char q[QUERY_MAX], m[3 * FM_MLFLOW_MODEL_MAX], v[3 * FM_MLFLOW_ALIAS_MAX];
        int n;

        if (escape_into(m, sizeof m, o->model) < 0 || escape_into(v, sizeof v, value) < 0)
                return -EINVAL;
        n = snprintf(q, sizeof q, "name=%s&%s=%s", m, key, v);
        if (n < 0 || (size_t)n >= sizeof q)
                return -EINVAL;
        return op_send(o, "GET", path, q, NULL);
}

/* POST path with {"name": model, k1: v1, ...} (NULL-terminated pairs). */
static int op_post(struct op *o, const char *path, ...)
{
        json_object *body = json_object_new_object();
        va_list ap;
        const char *k;
        int r = 0;

        if (!body)
                return -ENOMEM;
        if (json_object_object_add(body, "name", json_object_new_string(o->model)) < 0)
                r = -ENOMEM;
        va_start(ap, path);
        while (r == 0 && (k = va_arg(ap, const char *))) {
                const char *v = va_arg(ap, const char *);
                json_object *s = json_object_new_string(v);
                if (!s || json_object_object_add(body, k, s) < 0)
                        r = -ENOMEM;
        }
        va_end(ap);
        if (r == 0)
                r = op_send(o, "POST", path, NULL, body);
        json_object_put(body);
        return r;
}

static int search_page(struct op *o, const char *page_token)
{
        char filter[FM_MLFLOW_MODEL_MAX + 16], f[3 * sizeof filter], t[3 * PAGE_TOKEN_MAX];
        char q[QUERY_MAX + sizeof t];
        int n;

        n = snprintf(filter, sizeof filter, "name='%s'", o->model);
        if (n < 0 || (size_t)n >= sizeof filter || escape_into(f, sizeof f, filter) < 0)
                return -EINVAL;
        t[0] = '\0';
        if (page_token && escape_into(t, sizeof t, page_token) < 0)
                return -EINVAL;
        n = snprintf(q, sizeof q, "filter=%s&max_results=%d%s%s", f, PAGE_SIZE,
                     t[0] ? "&page_token=" : "", t);
        if (n < 0 || (size_t)n >= sizeof q)
                return -EINVAL;
        return op_send(o, "GET", "model-versions/search", q, NULL);
}

/* ---- results ---- */

static fm_ms now_ms(const struct fm_mlflow *x)
{
        return fm_backend_now(x->event, CLOCK_REALTIME);
}

static void finish(struct op *o, enum fm_result_kind kind, int error, fm_ms retry_after,
                   const char *detail)
{
        struct fm_mlflow *x = o->x;
        char clean[DETAIL_MAX];
        struct fm_action_result res = {
                .kind = kind,
                .error = kind == FM_RESULT_OK ? 0 : error,
                .retry_after = retry_after,
                .detail = clean,
        };

        /* Names in the detail come from events and servers: no control bytes leave. */
        fm_text_sanitize(clean, sizeof clean, detail, sizeof clean - 1);

        op_unlink(x, o);
        if (x->a)
                (void)fm_actuator_complete(x->a, o->id, &res, now_ms(x));
        op_free(o);
}

static void finish_list(struct op *o, int error, long status, const char *detail)
{
        struct fm_mlflow *x = o->x;
        struct fm_mlflow_version_list l = {
                .error = error,
                .status = status,
                .detail = error ? detail : NULL,
                .n = error ? 0 : o->n,
                .truncated = o->truncated,
                .v = o->versions,
        };

        op_unlink(x, o);
        if (o->done)
                o->done(o->userdata, &l);
        op_free(o);
}

/* A transport or setup failure of o. */
static void fail_errno(struct op *o, int error, const char *what)
{
        char d[DETAIL_MAX];

        snprintf(d, sizeof d, "%s: %s", what ? what : "request", strerror(-error));
        if (o->kind == OP_LIST)
                finish_list(o, error, 0, d);
        else
                finish(o, fm_result_kind_from_errno(error), error, 0, d);
}

static int http_errno(long status)
{
        switch (status) {
        case 400:
                return -EINVAL;
        case 401:
        case 403:
                return -EACCES;
        case 404:
                return -ENOENT;
        case 408:
        case 504:
                return -ETIMEDOUT;
        case 409:
                return -EBUSY;
        case 429:
        case 503:
                return -EAGAIN;
        default:
                return -EIO;
        }
}

/*
 * Reads MLflow's error body into code and d ("HTTP 404 CODE: message", or
 * the first line of a plain-text body).
 */
static void error_detail(const struct fm_httpc_response *resp, char *code, size_t code_size,
                         char *d, size_t size)
{
        json_object *o = json_tokener_parse(resp->body), *c = NULL, *m = NULL;
        char msg[MESSAGE_MAX + 1] = "";

        code[0] = '\0';
        if (o && json_object_is_type(o, json_type_object)) {
                if (json_object_object_get_ex(o, "error_code", &c) &&
                    json_object_is_type(c, json_type_string))
                        fm_text_sanitize(code, code_size, json_object_get_string(c), code_size - 1);
                if (json_object_object_get_ex(o, "message", &m) &&
                    json_object_is_type(m, json_type_string))
                        fm_text_sanitize(msg, sizeof msg, json_object_get_string(m), MESSAGE_MAX);
        } else {
                fm_text_sanitize(msg, sizeof msg, resp->body, strcspn(resp->body, "\r\n"));
        }
        json_object_put(o);
        if (code[0])
                snprintf(d, size, "HTTP %ld %s: %s", resp->status, code, msg);
        else if (msg[0])
                snprintf(d, size, "HTTP %ld: %s", resp->status, msg);
        else
                snprintf(d, size, "HTTP %ld", resp->status);
}

static void fail_http(struct op *o, const struct fm_httpc_response *resp)
{
        char code[64], d[DETAIL_MAX];

        error_detail(resp, code, sizeof code, d, sizeof d);
        if (o->kind == OP_LIST) {
                finish_list(o, http_errno(resp->status), resp->status, d);
                return;
        }
        enum fm_result_kind kind = fm_result_kind_from_http((int)resp->status);
        if (strcmp(code, "RESOURCE_DOES_NOT_EXIST") == 0)
                kind = FM_RESULT_PERMANENT;
        finish(o, kind, http_errno(resp->status),
               kind == FM_RESULT_RETRYABLE ? resp->retry_after : 0, d);
}

/* The string member key of o, or NULL. */
static const char *jstr(json_object *o, const char *key)
{
        json_object *v;
        if (!o || !json_object_object_get_ex(o, key, &v) ||
            !json_object_is_type(v, json_type_string))
                return NULL;
        return json_object_get_string(v);
}

static bool version_num_ok(const char *v)
{
        size_t n = v ? strlen(v) : 0;
        return n > 0 && n < FM_MLFLOW_VERSION_NUM_MAX && strspn(v, "0123456789") == n;
}

/* The value of tag key in a model_version's tags[], or NULL. */
static const char *tag_value(json_object *mv, const char *key)
{
        json_object *tags;
        if (!json_object_object_get_ex(mv, "tags", &tags) ||
            !json_object_is_type(tags, json_type_array))
                return NULL;
        for (size_t i = 0; i < json_object_array_length(tags); i++) {
                json_object *t = json_object_array_get_idx(tags, i);
                const char *k = jstr(t, "key");
                if (k && strcmp(k, key) == 0)
                        return jstr(t, "value");
        }
        return NULL;
}

static bool parse_double(const char *s, double *ret)
{
        char *end;
        double d;
        if (!s || !*s)
                return false;
        errno = 0;
        d = strtod(s, &end);
        if (errno || *end || !isfinite(d))
                return false;
        *ret = d;
        return true;
}

/* The shortest %g form that reads back as exactly d. */
static void format_double(char *buf, size_t size, double d)
{
        for (int prec = 1; prec <= 17; prec++) {
                double back;
                snprintf(buf, size, "%.*g", prec, d);
                if (parse_double(buf, &back) && back == d)
                        return;
        }
}

/* ---- the steps ---- */

static int start_step(struct op *o)
{
        struct fm_mlflow *x = o->x;
        char value[FM_MLFLOW_ALIAS_MAX + FM_MLFLOW_VERSION_NUM_MAX + 2];

        switch (o->step) {
        case ST_READ_ALIAS:
                return op_get_named(o, "registered-models/alias", "alias", x->cfg.alias);
        case ST_GET_TO:
                return op_get_named(o, "model-versions/get", "version", o->to);
        case ST_SET_ALIAS:
                return op_post(o, "registered-models/alias", "alias", x->cfg.alias, "version",
                               o->to, (const char *)NULL);
        case ST_TAG_FROM:
                snprintf(value, sizeof value, "%s:%s", x->cfg.alias, o->to);
                return op_post(o, "model-versions/set-tag", "version", o->from, "key",
                               x->cfg.rolled_back_tag, "value", value, (const char *)NULL);
        case ST_SET_TAG:
                format_double(value, sizeof value, o->value);
                return op_post(o, "model-versions/set-tag", "version", o->to, "key",
                               x->cfg.threshold_tag, "value", value, (const char *)NULL);
        case ST_GET_VERSION:
                return op_get_named(o, "model-versions/get", "version", o->to);
        case ST_SEARCH:
                return search_page(o, NULL);
        }
        return -EINVAL;
}

/* Moves o to step s and sends its request; a failure to send ends o. */
static void advance(struct op *o, enum step s)
{
        int r;
        o->step = s;
        r = start_step(o);
        if (r < 0)
                fail_errno(o, r, "sending");
}

static void on_read_alias(struct op *o, const struct fm_httpc_response *resp, json_object *j)
{
        const char *alias = o->x->cfg.alias;
        char d[DETAIL_MAX];

        if (resp->status == 400) {
                char code[64];
                error_detail(resp, code, sizeof code, d, sizeof d);
                if (strcmp(code, "INVALID_PARAMETER_VALUE") != 0 || !strstr(d, "not found")) {
                        fail_http(o, resp);
                        return;
                }
                o->alias_at[0] = '\0'; /* the alias is not set */
        } else if (resp->status != 200) {
                fail_http(o, resp);
                return;
        } else {
                json_object *mv = NULL;
                const char *v = NULL;
                if (json_object_object_get_ex(j, "model_version", &mv))
                        v = jstr(mv, "version");
                if (!version_num_ok(v)) {
                        finish(o, FM_RESULT_PERMANENT, -EBADMSG, 0,
                               "registered-models/alias: no model_version.version in the answer");
                        return;
                }
                copy(o->alias_at, sizeof o->alias_at, v);
        }

        if (o->observe) {
                if (strcmp(o->alias_at, o->to) == 0) {
                        snprintf(d, sizeof d, "alias %.64s at %s", alias, o->to);
                        finish(o, FM_RESULT_OK, 0, 0, d);
                } else {
                        snprintf(d, sizeof d, "alias %.64s at %s, not %s", alias,
                                 o->alias_at[0] ? o->alias_at : "(unset)", o->to);
                        finish(o, FM_RESULT_PERMANENT, -ESRCH, 0, d);
                }
                return;
        }
        if (o->alias_at[0] && strcmp(o->alias_at, o->from) != 0 &&
            strcmp(o->alias_at, o->to) != 0) {
                snprintf(d, sizeof d, "alias %.64s at %s, expected %s or %s: left alone", alias,
                         o->alias_at, o->from, o->to);
                finish(o, FM_RESULT_PERMANENT, -ESTALE, 0, d);
                return;
        }
        advance(o, ST_GET_TO);
}

/*
 * The model_version of a model-versions/get answer into *ret_mv. Returns
 * false when the answer ended o (an HTTP error, no model_version).
 */
static bool version_answer(struct op *o, const struct fm_httpc_response *resp, json_object *j,
                           json_object **ret_mv)
{
        if (resp->status != 200) {
                fail_http(o, resp);
                return false;
        }
        if (!json_object_object_get_ex(j, "model_version", ret_mv)) {
                finish(o, FM_RESULT_PERMANENT, -EBADMSG, 0,
                       "model-versions/get: no model_version in the answer");
                return false;
        }
        return true;
}

static void on_get_to(struct op *o, const struct fm_httpc_response *resp, json_object *j)
{
        json_object *mv = NULL;
        const char *status = NULL;
        char d[DETAIL_MAX];

        if (!version_answer(o, resp, j, &mv))
                return;
        status = jstr(mv, "status");
        if (status && strcmp(status, "READY") != 0) {
                bool pending = strcmp(status, "PENDING_REGISTRATION") == 0;
                char s[40];
                fm_text_sanitize(s, sizeof s, status, 32);
                snprintf(d, sizeof d, "version %s of %.64s is %s", o->to, o->model, s);
                finish(o, pending ? FM_RESULT_RETRYABLE : FM_RESULT_PERMANENT,
                       pending ? -EAGAIN : -EINVAL, 0, d);
                return;
        }
        advance(o, strcmp(o->alias_at, o->to) == 0 ? ST_TAG_FROM : ST_SET_ALIAS);
}

static void on_action_done(struct op *o, const struct fm_httpc_response *resp)
{
        struct fm_mlflow *x = o->x;
        char d[DETAIL_MAX], v[32];

        if (resp->status != 200) {
                fail_http(o, resp);
                return;
        }
        switch (o->step) {
        case ST_SET_ALIAS:
                advance(o, ST_TAG_FROM);
                return;
        case ST_TAG_FROM:
                if (strcmp(o->alias_at, o->to) == 0)
                        snprintf(d, sizeof d, "alias %.64s already at %s, version %s tagged %.64s",
                                 x->cfg.alias, o->to, o->from, x->cfg.rolled_back_tag);
                else
                        snprintf(d, sizeof d, "alias %.64s %s->%s, version %s tagged %.64s",
                                 x->cfg.alias, o->alias_at[0] ? o->alias_at : "(unset)", o->to,
                                 o->from, x->cfg.rolled_back_tag);
                finish(o, FM_RESULT_OK, 0, 0, d);
                return;
        case ST_SET_TAG:
                format_double(v, sizeof v, o->value);
                snprintf(d, sizeof d, "version %s tag %.64s=%s", o->to, x->cfg.threshold_tag, v);
                finish(o, FM_RESULT_OK, 0, 0, d);
                return;
        default:
                finish(o, FM_RESULT_PERMANENT, -EINVAL, 0, "internal: unexpected step");
                return;
        }
}

static void on_get_version(struct op *o, const struct fm_httpc_response *resp, json_object *j)
{
        const char *key = o->x->cfg.threshold_tag;
        json_object *mv = NULL;
        const char *tv;
        double d;
        char text[DETAIL_MAX], v[32], seen[40];

        if (!version_answer(o, resp, j, &mv))
                return;
        tv = tag_value(mv, key);
        format_double(v, sizeof v, o->value);
        if (tv && parse_double(tv, &d) && d == o->value) {
                snprintf(text, sizeof text, "version %s tag %.64s=%s", o->to, key, v);
                finish(o, FM_RESULT_OK, 0, 0, text);
                return;
        }
        fm_text_sanitize(seen, sizeof seen, tv ? tv : "(unset)", 32);
        snprintf(text, sizeof text, "version %s tag %.64s is %s, not %s", o->to, key, seen, v);
        finish(o, FM_RESULT_PERMANENT, -ESRCH, 0, text);
}

static void list_add(struct op *o, json_object *mv)
{
        const struct fm_mlflow_config *cfg = &o->x->cfg;
        struct fm_mlflow_version *v;
        json_object *al, *ts;
        const char *s;

        s = jstr(mv, "version");
        if (!version_num_ok(s))
                return;
        v = &o->versions[o->n++];
        memset(v, 0, sizeof *v);
        copy(v->version, sizeof v->version, s);
        fm_text_sanitize(v->status, sizeof v->status, jstr(mv, "status"), sizeof v->status - 1);
        fm_text_sanitize(v->current_stage, sizeof v->current_stage, jstr(mv, "current_stage"),
                         sizeof v->current_stage - 1);
        fm_text_sanitize(v->run_id, sizeof v->run_id, jstr(mv, "run_id"), sizeof v->run_id - 1);
        if (json_object_object_get_ex(mv, "creation_timestamp", &ts))
                v->creation_timestamp = json_object_get_int64(ts);
        if (json_object_object_get_ex(mv, "aliases", &al) &&
            json_object_is_type(al, json_type_array))
                for (size_t i = 0; i < json_object_array_length(al); i++) {
                        json_object *a = json_object_array_get_idx(al, i);
                        if (json_object_is_type(a, json_type_string) &&
                            strcmp(json_object_get_string(a), cfg->alias) == 0)
                                v->has_alias = true;
                }
        v->rolled_back = tag_value(mv, cfg->rolled_back_tag) != NULL;
        v->has_threshold = parse_double(tag_value(mv, cfg->threshold_tag), &v->threshold);
}

static void on_search(struct op *o, const struct fm_httpc_response *resp, json_object *j)
{
        json_object *arr = NULL;
        const char *token;
        int r;

        if (resp->status != 200) {
                fail_http(o, resp);
                return;
        }
        if (!j || !json_object_is_type(j, json_type_object)) {
                finish_list(o, -EBADMSG, resp->status, "model-versions/search: not a JSON object");
                return;
        }
        if (json_object_object_get_ex(j, "model_versions", &arr) &&
            json_object_is_type(arr, json_type_array)) {
                for (size_t i = 0; i < json_object_array_length(arr); i++) {
                        if (o->n >= FM_MLFLOW_LIST_MAX) {
                                o->truncated = true;
                                break;
                        }
                        list_add(o, json_object_array_get_idx(arr, i));
                }
        }
        o->pages++;
        token = jstr(j, "next_page_token");
        if (!token || !token[0]) {
                finish_list(o, 0, resp->status, NULL);
                return;
        }
        if (o->truncated || o->n >= FM_MLFLOW_LIST_MAX || o->pages >= LIST_PAGES_MAX ||
            strlen(token) >= PAGE_TOKEN_MAX) {
                o->truncated = true;
                finish_list(o, 0, resp->status, NULL);
                return;
        }
        r = search_page(o, token);
        if (r < 0)
                fail_errno(o, r, "sending");
}

static void on_http(void *userdata, const struct fm_httpc_response *resp)
{
        struct op *o = userdata;
        json_object *j = NULL;

        o->http_id = 0;
        if (resp->error < 0) {
                char d[DETAIL_MAX];
                fm_http_transport_detail(resp, d, sizeof d);
                if (o->kind == OP_LIST)
                        finish_list(o, resp->error, 0, d);
                else
                        finish(o, fm_result_kind_from_errno(resp->error), resp->error,
                               resp->retry_after, d);
                return;
        }
        if (resp->status == 200)
                j = json_tokener_parse(resp->body);
        switch (o->step) {
        case ST_READ_ALIAS:
                on_read_alias(o, resp, j);
                break;
        case ST_GET_TO:
                on_get_to(o, resp, j);
                break;
        case ST_SET_ALIAS:
        case ST_TAG_FROM:
        case ST_SET_TAG:
                on_action_done(o, resp);
                break;
        case ST_GET_VERSION:
                on_get_version(o, resp, j);
                break;
        case ST_SEARCH:
                on_search(o, resp, j);
                break;
        }
        json_object_put(j);
}

/* ---- the backend ---- */

static int model_name(const struct fm_mlflow *x, const char *deployment, char *buf, size_t size)
{
        const char *m = fm_mlflow_model_for(x, deployment);
        if (!m)
                return -EOPNOTSUPP;
        if (m[0] == '\0' || strlen(m) >= size)
                return -EINVAL;
        copy(buf, size, m);
        return 0;
}

static int mlflow_start(void *backend, const struct fm_action_req *req, uint64_t attempt_id)
{
        struct fm_mlflow *x = backend;
        struct op *o;
        int r;

        if (!x || !req)
                return -EINVAL;
        if (req->action != FM_ACTION_ROLLBACK && req->action != FM_ACTION_SET_THRESHOLD)
                return -EOPNOTSUPP;
        if (!fm_text_terminated(req->deployment, sizeof req->deployment))
                return -EINVAL;
        o = calloc(1, sizeof *o);
        if (!o)
                return -ENOMEM;
        o->id = attempt_id;
        o->observe = req->observe;
        r = model_name(x, req->deployment, o->model, sizeof o->model);
        if (r < 0)
                goto fail;
        if (req->action == FM_ACTION_ROLLBACK) {
                o->kind = OP_ROLLBACK;
                if (!fm_text_terminated(req->arg.rollback.from, sizeof req->arg.rollback.from) ||
                    !fm_text_terminated(req->arg.rollback.to, sizeof req->arg.rollback.to)) {
                        r = -EINVAL;
                        goto fail;
                }
                if (fm_mlflow_version_number(req->arg.rollback.from, o->from, sizeof o->from) < 0 ||
                    fm_mlflow_version_number(req->arg.rollback.to, o->to, sizeof o->to) < 0 ||
                    strcmp(o->from, o->to) == 0) {
                        r = -EINVAL;
                        goto fail;
                }
                o->step = ST_READ_ALIAS;
        } else {
                o->kind = OP_THRESHOLD;
                if (!fm_text_terminated(req->arg.threshold.version,
                                        sizeof req->arg.threshold.version) ||
                    fm_mlflow_version_number(req->arg.threshold.version, o->to, sizeof o->to) < 0 ||
                    !isfinite(req->arg.threshold.to)) {
                        r = -EINVAL;
                        goto fail;
                }
                o->value = req->arg.threshold.to;
                o->step = req->observe ? ST_GET_VERSION : ST_SET_TAG;
        }
        op_link(x, o);
        r = start_step(o);
        if (r < 0) {
                op_unlink(x, o);
                goto fail;
        }
        return 0;
fail:
        op_free(o);
        return r;
}

/* Drops the listing (list) or attempt with id, its request aborted; no result is delivered. */
static void op_cancel(struct fm_mlflow *x, bool list, uint64_t id)
{
        for (struct op *o = x->ops; o; o = o->next)
                if ((o->kind == OP_LIST) == list && o->id == id) {
                        if (o->http_id)
                                fm_httpc_cancel(x->http, o->http_id);
                        op_unlink(x, o);
                        op_free(o);
                        return;
                }
}

static void mlflow_cancel(void *backend, uint64_t attempt_id)
{
        op_cancel(backend, false, attempt_id);
}

const struct fm_backend_ops fm_backend_mlflow_ops = {
        .name = "mlflow",
        .supports =
                {
                        [FM_ACTION_ROLLBACK] = true,
                        [FM_ACTION_SET_THRESHOLD] = true,
                },
        .start = mlflow_start,
        .cancel = mlflow_cancel,
};

int fm_mlflow_list_versions(struct fm_mlflow *x, const char *model, fm_mlflow_list_fn done,
                            void *userdata, uint64_t *ret_id)
{
        struct op *o;
        int r;

        if (!x || !model || !done || model[0] == '\0' || strlen(model) >= FM_MLFLOW_MODEL_MAX ||
            !fm_text_no_controls(model) || strpbrk(model, "'\\"))
                return -EINVAL;
        o = calloc(1, sizeof *o);
        if (!o)
                return -ENOMEM;
        o->versions = calloc(FM_MLFLOW_LIST_MAX, sizeof *o->versions);
        if (!o->versions) {
                op_free(o);
                return -ENOMEM;
        }
        o->kind = OP_LIST;
        o->step = ST_SEARCH;
        o->done = done;
        o->userdata = userdata;
        o->id = x->next_list_id++;
        copy(o->model, sizeof o->model, model);
        op_link(x, o);
        r = start_step(o);
        if (r < 0) {
                op_unlink(x, o);
                op_free(o);
                return r;
        }
        if (ret_id)
                *ret_id = o->id;
        return 0;
}

void fm_mlflow_list_cancel(struct fm_mlflow *x, uint64_t id)
{
        if (x)
                op_cancel(x, true, id);
}
