/* SPDX-License-Identifier: MIT */
#include "alertmanager.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "http_backend.h"
#include "httpc.h"

/*
 * One operation per attempt or resolve: one HTTP request, and its result
 * delivered from the response callback (never from start()). Operations
 * are unlinked before their result is delivered and freed right after.
 */

#define URL_MAX 512
#define DETAIL_MAX FM_ACTUATOR_DETAIL_MAX

struct op {
        struct fm_alertmanager *x;
        struct op *prev, *next;
        bool action; /* an actuator attempt, else a resolve */
        bool observe;
        uint64_t attempt_id;
        uint64_t http_id;
        json_object *labels; /* what identifies the alert */
        fm_alertmanager_done_fn done;
        void *userdata;
        char what[96];
};

struct fm_alertmanager {
        sd_event *event;
        struct fm_actuator *a;
        struct fm_httpc *http;
        struct fm_alertmanager_config cfg;
        struct op *ops;
};

static void copy(char *dst, size_t size, const char *src)
{
        snprintf(dst, size, "%s", src);
}

void fm_alertmanager_config_default(struct fm_alertmanager_config *cfg)
{
        memset(cfg, 0, sizeof *cfg);
        copy(cfg->url, sizeof cfg->url, "http://127.0.0.1:9093");
        copy(cfg->alertname, sizeof cfg->alertname, "FleetmedicAlert");
        cfg->timeout = 10 * FM_MS_PER_S;
}

static bool label_name_ok(const char *s)
{
        if (!s[0] || !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z') || s[0] == '_'))
                return false;
        for (const char *p = s; *p; p++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                      (*p >= '0' && *p <= '9') || *p == '_'))
                        return false;
        return true;
}

int fm_alertmanager_config_validate(const struct fm_alertmanager_config *cfg)
{
        static const char *const reserved[] = {"alertname", "severity", "deployment", "instance"};

        if (!cfg || !fm_text_terminated(cfg->url, sizeof cfg->url) ||
            !fm_text_terminated(cfg->ca_file, sizeof cfg->ca_file) ||
            !fm_text_terminated(cfg->alertname, sizeof cfg->alertname) ||
            !fm_text_terminated(cfg->generator_url, sizeof cfg->generator_url))
                return -EINVAL;
        if (!fm_http_base_url_ok(cfg->url) || !fm_text_no_controls(cfg->ca_file))
                return -EINVAL;
        if (!cfg->alertname[0] || !fm_text_no_controls(cfg->alertname))
                return -EINVAL;
        if (cfg->generator_url[0] &&
            !(fm_text_no_controls(cfg->generator_url) && fm_http_url_scheme_ok(cfg->generator_url)))
                return -EINVAL;
        if (cfg->timeout < 1 || cfg->timeout > 600 * FM_MS_PER_S)
                return -EINVAL;
        if (cfg->ttl != 0 && (cfg->ttl < FM_MS_PER_S || cfg->ttl > (fm_ms)7 * 24 * 3600 * 1000))
                return -EINVAL;
        if (cfg->n_labels > FM_ALERTMANAGER_LABELS_MAX)
                return -EINVAL;
        for (uint32_t i = 0; i < cfg->n_labels; i++) {
                const struct fm_alertmanager_label *l = &cfg->labels[i];
                if (!fm_text_terminated(l->name, sizeof l->name) ||
                    !fm_text_terminated(l->value, sizeof l->value) || !label_name_ok(l->name) ||
                    !fm_text_no_controls(l->value))
                        return -EINVAL;
                for (size_t k = 0; k < ARRAY_SIZE(reserved); k++)
                        if (strcmp(l->name, reserved[k]) == 0)
                                return -EINVAL;
                for (uint32_t j = 0; j < i; j++)
                        if (strcmp(cfg->labels[j].name, l->name) == 0)
                                return -EINVAL;
        }
        return 0;
}

int fm_alertmanager_new(sd_event *event, const struct fm_alertmanager_config *cfg,
                        struct fm_actuator *a, struct fm_alertmanager **ret)
{
        struct fm_alertmanager *x;
        int r;

        if (!event || !ret || fm_alertmanager_config_validate(cfg) < 0)
                return -EINVAL;
        x = calloc(1, sizeof *x);
        if (!x)
                return -ENOMEM;
        x->event = sd_event_ref(event);
        x->a = a;
        x->cfg = *cfg;
        fm_http_trim_slashes(x->cfg.url);
        r = fm_httpc_new(event, &x->http);
        if (r < 0) {
                fm_alertmanager_free(x);
                return r;
        }
        *ret = x;
        return 0;
}

static void op_free(struct op *o)
{
        if (o) {
                json_object_put(o->labels);
                free(o);
        }
}

static void op_unlink(struct fm_alertmanager *x, struct op *o)
{
        if (o->prev)
                o->prev->next = o->next;
        else
                x->ops = o->next;
        if (o->next)
                o->next->prev = o->prev;
        o->prev = o->next = NULL;
}

static void op_link(struct fm_alertmanager *x, struct op *o)
{
        o->x = x;
        o->next = x->ops;
        if (x->ops)
                x->ops->prev = o;
        x->ops = o;
}

struct fm_alertmanager *fm_alertmanager_free(struct fm_alertmanager *x)
{
        if (!x)
                return NULL;
        while (x->ops) {
                struct op *o = x->ops;
                op_unlink(x, o);
                op_free(o);
        }
        x->http = fm_httpc_free(x->http);
        sd_event_unref(x->event);
        free(x);
        return NULL;
}

/* ---- building alerts ---- */

static fm_ms now_ms(const struct fm_alertmanager *x)
{
        return fm_backend_now(x->event, CLOCK_REALTIME);
}

/* RFC 3339 in UTC with milliseconds. */
static int rfc3339(fm_ms t, char *buf, size_t size)
{
        time_t s = (time_t)fm_floordiv(t, 1000);
        struct tm tm;
        char day[32];

        if (!gmtime_r(&s, &tm) || strftime(day, sizeof day, "%Y-%m-%dT%H:%M:%S", &tm) == 0)
                return -EINVAL;
        int n = snprintf(buf, size, "%s.%03dZ", day, (int)(t - (fm_ms)s * 1000));
        return n > 0 && (size_t)n < size ? 0 : -ENOBUFS;
}

/* The labels of an alert for (deployment, instance, severity). */
static int make_labels(const struct fm_alertmanager *x, const char *deployment,
                       const char *instance, enum fm_severity severity, json_object **ret)
{
        const char *sev = fm_severity_name(severity);
        json_object *l;
        int r = 0;

        if (!sev || !deployment || !deployment[0])
                return -EINVAL;
        l = json_object_new_object();
        if (!l)
                return -ENOMEM;
        r = fm_json_add_string(l, "alertname", x->cfg.alertname);
        if (r >= 0)
                r = fm_json_add_string(l, "severity", sev);
        if (r >= 0)
                r = fm_json_add_string(l, "deployment", deployment);
        if (r >= 0 && instance && instance[0])
                r = fm_json_add_string(l, "instance", instance);
        for (uint32_t i = 0; r >= 0 && i < x->cfg.n_labels; i++)
                r = fm_json_add_string(l, x->cfg.labels[i].name, x->cfg.labels[i].value);
        if (r < 0) {
                json_object_put(l);
                return r;
        }
        *ret = l;
        return 0;
}

static void on_http(void *userdata, const struct fm_httpc_response *resp);

static int send_request(struct op *o, const char *method, const char *path, const char *body)
{
        struct fm_alertmanager *x = o->x;
        char url[URL_MAX];
        const char *headers[] = {"Accept: application/json", "Content-Type: application/json",
                                 NULL};
        int n = snprintf(url, sizeof url, "%s%s", x->cfg.url, path);

        if (n < 0 || (size_t)n >= sizeof url)
                return -EINVAL;
        if (!body)
                headers[1] = NULL;
        struct fm_httpc_request req = {
                .method = method,
                .url = url,
                .headers = headers,
                .body = body,
                .body_len = body ? strlen(body) : 0,
                .ca_file = x->cfg.ca_file[0] ? x->cfg.ca_file : NULL,
                .timeout = x->cfg.timeout,
        };
        return fm_httpc_submit(x->http, &req, on_http, o, &o->http_id);
}

/* POSTs [{labels, annotations?, startsAt, endsAt?, generatorURL?}]. */
static int post_alert(struct op *o, const char *summary, bool resolve)
{
        struct fm_alertmanager *x = o->x;
        json_object *arr = json_object_new_array(), *alert = json_object_new_object(), *ann = NULL;
        char ts[40];
        fm_ms now = now_ms(x);
        int r = -ENOMEM;

        if (!arr || !alert)
                goto out;
        if (json_object_object_add(alert, "labels", json_object_get(o->labels)) < 0)
                goto out;
        if (summary) {
                ann = json_object_new_object();
                if (!ann || fm_json_add_string(ann, "summary", summary) < 0)
                        goto out;
                if (json_object_object_add(alert, "annotations", ann) < 0)
                        goto out;
                ann = NULL;
        }
        r = rfc3339(now, ts, sizeof ts);
        if (r < 0 || (r = fm_json_add_string(alert, "startsAt", ts)) < 0)
                goto out;
        if (resolve || x->cfg.ttl > 0) {
                r = rfc3339(resolve ? now : now + x->cfg.ttl, ts, sizeof ts);
                if (r < 0 || (r = fm_json_add_string(alert, "endsAt", ts)) < 0)
                        goto out;
        }
        if (x->cfg.generator_url[0] &&
            (r = fm_json_add_string(alert, "generatorURL", x->cfg.generator_url)) < 0)
                goto out;
        r = -ENOMEM;
        if (json_object_array_add(arr, alert) < 0)
                goto out;
        alert = NULL;
        r = send_request(o, "POST", "/api/v2/alerts",
                         json_object_to_json_string_ext(arr, JSON_C_TO_STRING_PLAIN));
out:
        json_object_put(ann);
        json_object_put(alert);
        json_object_put(arr);
        return r;
}

/* ---- results ---- */

static void finish(struct op *o, enum fm_result_kind kind, int error, fm_ms retry_after,
                   const char *detail)
{
        struct fm_alertmanager *x = o->x;
        char clean[DETAIL_MAX];

        fm_text_sanitize(clean, sizeof clean, detail, sizeof clean - 1);
        op_unlink(x, o);
        if (o->action) {
                struct fm_action_result res = {
                        .kind = kind,
                        .error = kind == FM_RESULT_OK ? 0 : error,
                        .retry_after = retry_after,
                        .detail = clean,
                };
                if (x->a)
                        (void)fm_actuator_complete(x->a, o->attempt_id, &res, now_ms(x));
        } else if (o->done) {
                o->done(o->userdata, kind == FM_RESULT_OK ? 0 : error, clean);
        }
        op_free(o);
}

static int http_errno(long status)
{
        if (status == 400 || status == 422)
                return -EINVAL;
        if (status == 401 || status == 403)
                return -EACCES;
        if (status == 404)
                return -ENOENT;
        if (status == 429 || status == 503)
                return -EAGAIN;
        return -EIO;
}

/* True when alert (from GET /api/v2/alerts) is active and carries exactly want's labels. */
static bool same_alert(json_object *alert, json_object *want)
{
        json_object *labels, *status, *state;

        if (!json_object_object_get_ex(alert, "labels", &labels) ||
            !json_object_is_type(labels, json_type_object))
                return false;
        if (json_object_object_length(labels) != json_object_object_length(want))
                return false;
        json_object_object_foreach(want, k, v)
        {
                json_object *have;
                if (!json_object_object_get_ex(labels, k, &have) ||
                    !json_object_is_type(have, json_type_string) ||
                    strcmp(json_object_get_string(have), json_object_get_string(v)) != 0)
                        return false;
        }
        if (json_object_object_get_ex(alert, "status", &status) &&
            json_object_object_get_ex(status, "state", &state))
                return strcmp(json_object_get_string(state), "active") == 0;
        return true;
}

static void on_http(void *userdata, const struct fm_httpc_response *resp)
{
        struct op *o = userdata;
        char d[DETAIL_MAX], msg[160];

        o->http_id = 0;
        if (resp->error < 0) {
                fm_http_transport_detail(resp, d, sizeof d);
                finish(o, fm_result_kind_from_errno(resp->error), resp->error, resp->retry_after,
                       d);
                return;
        }
        if (resp->status < 200 || resp->status >= 300) {
                json_object *j = json_tokener_parse(resp->body), *m = NULL;
                if (j && json_object_object_get_ex(j, "message", &m))
                        fm_text_sanitize(msg, sizeof msg, json_object_get_string(m),
                                         sizeof msg - 1);
                else if (j && json_object_is_type(j, json_type_string))
                        fm_text_sanitize(msg, sizeof msg, json_object_get_string(j),
                                         sizeof msg - 1);
                else
                        fm_text_sanitize(msg, sizeof msg, resp->body, strcspn(resp->body, "\r\n"));
                json_object_put(j);
                snprintf(d, sizeof d, "HTTP %ld: %s", resp->status, msg);
                enum fm_result_kind kind = fm_result_kind_from_http((int)resp->status);
                finish(o, kind, http_errno(resp->status),
                       kind == FM_RESULT_RETRYABLE ? resp->retry_after : 0, d);
                return;
        }
        if (o->observe) {
                json_object *j = json_tokener_parse(resp->body);
                bool found = false;
                if (j && json_object_is_type(j, json_type_array))
                        for (size_t i = 0; !found && i < json_object_array_length(j); i++)
                                found = same_alert(json_object_array_get_idx(j, i), o->labels);
                json_object_put(j);
                snprintf(d, sizeof d, "alert %s %s", o->what, found ? "active" : "not active");
                finish(o, found ? FM_RESULT_OK : FM_RESULT_PERMANENT, found ? 0 : -ESRCH, 0, d);
                return;
        }
        snprintf(d, sizeof d, "alert %s %s", o->what, o->action ? "posted" : "resolved");
        finish(o, FM_RESULT_OK, 0, 0, d);
}

/* ---- entry points ---- */

static int start_op(struct fm_alertmanager *x, struct op *o, const char *deployment,
                    const char *instance, enum fm_severity severity, const char *summary,
                    bool resolve)
{
        int r = make_labels(x, deployment, instance, severity, &o->labels);

        if (r < 0)
                return r;
        snprintf(o->what, sizeof o->what, "%s %.40s%s%.40s", fm_severity_name(severity), deployment,
                 instance && instance[0] ? "/" : "", instance ? instance : "");
        op_link(x, o);
        if (o->observe)
                r = send_request(o, "GET", "/api/v2/alerts?active=true", NULL);
        else
                r = post_alert(o, summary, resolve);
        if (r < 0)
                op_unlink(x, o);
        return r;
}

static int am_start(void *backend, const struct fm_action_req *req, uint64_t attempt_id)
{
        struct fm_alertmanager *x = backend;
        struct op *o;
        int r;

        if (!x || !req)
                return -EINVAL;
        if (req->action != FM_ACTION_ALERT)
                return -EOPNOTSUPP;
        if (!fm_text_terminated(req->deployment, sizeof req->deployment) ||
            !fm_text_terminated(req->instance, sizeof req->instance) ||
            !fm_text_terminated(req->arg.alert.summary, sizeof req->arg.alert.summary))
                return -EINVAL;
        o = calloc(1, sizeof *o);
        if (!o)
                return -ENOMEM;
        o->action = true;
        o->observe = req->observe;
        o->attempt_id = attempt_id;
        r = start_op(x, o, req->deployment, req->instance, req->arg.alert.severity,
                     req->arg.alert.summary, false);
        if (r < 0) {
                op_free(o);
                return r;
        }
        return 0;
}

static void am_cancel(void *backend, uint64_t attempt_id)
{
        struct fm_alertmanager *x = backend;

        for (struct op *o = x->ops; o; o = o->next)
                if (o->action && o->attempt_id == attempt_id) {
                        if (o->http_id)
                                fm_httpc_cancel(x->http, o->http_id);
                        op_unlink(x, o);
                        op_free(o);
                        return;
                }
}

const struct fm_backend_ops fm_backend_alertmanager_ops = {
        .name = "alertmanager",
        .supports = {[FM_ACTION_ALERT] = true},
        .start = am_start,
        .cancel = am_cancel,
};

int fm_alertmanager_resolve(struct fm_alertmanager *x, const char *deployment, const char *instance,
                            enum fm_severity severity, fm_alertmanager_done_fn done, void *userdata)
{
        struct op *o;
        int r;

        if (!x || !deployment)
                return -EINVAL;
        o = calloc(1, sizeof *o);
        if (!o)
                return -ENOMEM;
        o->done = done;
        o->userdata = userdata;
        r = start_op(x, o, deployment, instance, severity, NULL, true);
        if (r < 0) {
                op_free(o);
                return r;
        }
        return 0;
}
