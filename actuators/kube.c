/* SPDX-License-Identifier: MIT */
#include "kube.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "http_backend.h"

/*
 * Two layers.
 *
 * A call (struct kcall) is one API request as the rest of the code sees it:
 * built from a row of the RBAC table, sent with the current bearer token,
 * and, when the answer is 401, sent once more after the token file was read
 * again and turned out to hold another token (client-go's rule for rotated
 * projected tokens). The Lease elector uses calls directly.
 *
 * An op (struct op) is one actuator attempt: a read of the object, the
 * change computed from what was read, the fencing check, one write
 * conditional on the resourceVersion read, and the read-back of the answer
 * into the result's detail. A 409 on the write sends the op back to the
 * read, a bounded number of times. The result is always delivered from an
 * HTTP callback, never from start(), so the actuator is never re-entered.
 */

#define CTYPE_JSON "application/json"
#define CTYPE_MERGE "application/merge-patch+json"
#define CTYPE_STRATEGIC "application/strategic-merge-patch+json"
#define TEXT_MAX 512 /* an image reference or storage URI */

struct kcall {
        struct kcall *prev, *next;
        struct fm_kube *k;
        uint64_t id;      /* ours, handed to the caller */
        uint64_t http_id; /* the transfer in flight, 0 none */
        char *url, *body, *token_used;
        char ctype[48];
        const char *method;
        fm_ms timeout;
        bool retried;
        fm_kube_done_fn done;
        void *userdata;
};

struct op {
        struct op *prev, *next;
        struct fm_kube *k;
        uint64_t attempt_id;
        uint64_t call_id; /* 0 when nothing is in flight */
        struct fm_action_req req;
        enum fm_kube_workload kind;
        char workload[FM_KUBE_NAME_MAX + 1];
        char traffic[FM_KUBE_NAME_MAX + 1];
        char container[FM_KUBE_LABEL_MAX + 1];
        char want[TEXT_MAX]; /* rollback: the image or storageUri wanted */
        struct fm_kube_dest dest[FM_KUBE_DESTS_MAX];
        size_t n_dest;
        unsigned conflicts;
        char before[TEXT_MAX]; /* what the read saw, for the detail */
};

struct fm_kube {
        sd_event *event;
        struct fm_actuator *a;
        struct fm_kube_config cfg; /* after defaults: server, files, namespace resolved */
        struct fm_httpc *http;
        struct fm_lease *lease;
        char *token;
        fm_ms token_read_at; /* CLOCK_MONOTONIC ms */
        struct kcall *calls;
        struct op *ops;
        unsigned n_ops;
        uint64_t next_call_id;
        uint64_t requests;
        uint64_t event_seq;
        char host[65];
};

/* ---- configuration ---- */

void fm_kube_config_default(struct fm_kube_config *cfg)
{
        memset(cfg, 0, sizeof *cfg);
        memcpy(cfg->sa_dir, FM_KUBE_SA_DIR, sizeof FM_KUBE_SA_DIR);
        cfg->timeout = 10 * FM_MS_PER_S;
        cfg->token_reread = 60 * FM_MS_PER_S;
        cfg->traffic = FM_KUBE_TRAFFIC_NONE;
        cfg->events = true;
        cfg->n_mappings = 1;
        cfg->mapping[0].deployment[0] = '*';
        cfg->mapping[0].kind = FM_KUBE_WORKLOAD_DEPLOYMENT;
        fm_lease_config_default(&cfg->lease);
}

/* A pattern: expands with sample names and leaves no control bytes or spaces. */
static bool pattern_ok(const char *p, size_t size)
{
        char out[TEXT_MAX];

        if (!fm_text_terminated(p, size))
                return false;
        if (!p[0])
                return true;
        for (const char *c = p; *c; c++)
                if ((unsigned char)*c <= ' ' || *c == 0x7f)
                        return false;
        return fm_kube_expand(p, "d", "v", out, sizeof out) >= 0;
}

static bool name_or_empty(const char *s, size_t size)
{
        return fm_text_terminated(s, size) && (!s[0] || fm_kube_name_valid(s));
}

int fm_kube_config_validate(const struct fm_kube_config *cfg)
{
        uint32_t named = 0;

        if (!cfg || !fm_text_terminated(cfg->sa_dir, sizeof cfg->sa_dir) ||
            !fm_text_terminated(cfg->server, sizeof cfg->server) ||
            !fm_text_terminated(cfg->token_file, sizeof cfg->token_file) ||
            !fm_text_terminated(cfg->ca_file, sizeof cfg->ca_file) ||
            !fm_text_terminated(cfg->namespace_, sizeof cfg->namespace_))
                return -EINVAL;
        if (cfg->in_cluster) {
                if (cfg->server[0] || cfg->token_file[0] || cfg->ca_file[0] ||
                    cfg->sa_dir[0] != '/')
                        return -EINVAL;
        } else if (strncmp(cfg->server, "https://", 8) != 0 &&
                   strncmp(cfg->server, "http://", 7) != 0) {
                return -EINVAL;
        }
        for (const char *c = cfg->server; *c; c++)
                if ((unsigned char)*c <= ' ' || *c == 0x7f || *c == '?' || *c == '#')
                        return -EINVAL;
        if (cfg->namespace_[0] && !fm_kube_label_valid(cfg->namespace_))
                return -EINVAL;
        if (cfg->timeout < 1 || cfg->timeout > 300 * FM_MS_PER_S || cfg->token_reread < 1 ||
            cfg->token_reread > 3600 * FM_MS_PER_S)
                return -EINVAL;
        if ((unsigned)cfg->traffic >= _FM_KUBE_TRAFFIC_MAX)
                return -EINVAL;
        if (cfg->n_mappings > FM_KUBE_MAPPINGS_MAX)
                return -EINVAL;
        for (uint32_t i = 0; i < cfg->n_mappings; i++) {
                const struct fm_kube_mapping *m = &cfg->mapping[i];

                if (!fm_text_terminated(m->deployment, sizeof m->deployment))
                        return -EINVAL;
                if (strcmp(m->deployment, "*") != 0) {
                        if (!fm_kube_name_valid(m->deployment))
                                return -EINVAL;
                        named++;
                }
                for (uint32_t j = 0; j < i; j++)
                        if (strcmp(cfg->mapping[j].deployment, m->deployment) == 0)
                                return -EINVAL;
                if ((unsigned)m->kind >= _FM_KUBE_WORKLOAD_MAX ||
                    !name_or_empty(m->workload, sizeof m->workload) ||
                    !name_or_empty(m->traffic_name, sizeof m->traffic_name) ||
                    !fm_text_terminated(m->container, sizeof m->container) ||
                    (m->container[0] && !fm_kube_label_valid(m->container)) ||
                    !pattern_ok(m->image, sizeof m->image) ||
                    !pattern_ok(m->storage_uri, sizeof m->storage_uri) ||
                    !pattern_ok(m->destination, sizeof m->destination))
                        return -EINVAL;
        }
        if (named > FM_KUBE_MAPPINGS_MAX - 1)
                return -EINVAL;
        return fm_lease_config_validate(&cfg->lease);
}

/* ---- files and the token ---- */

/* Reads at most max bytes of path into a new string, trailing whitespace cut. */
static int read_small_file(const char *path, size_t max, char **ret)
{
        char *buf;
        size_t len;
        int r;

        r = fm_read_small_file(path, max, &buf, &len);
        if (r < 0)
                return r;
        while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r' || buf[len - 1] == ' ' ||
                           buf[len - 1] == '\t'))
                len--;
        buf[len] = '\0';
        *ret = buf;
        return 0;
}

static fm_ms mono_now(const struct fm_kube *k)
{
        return fm_backend_now(k->event, CLOCK_MONOTONIC);
}

static fm_ms real_now(const struct fm_kube *k)
{
        return fm_backend_now(k->event, CLOCK_REALTIME);
}

/* Reads the token file again. A token with bytes a header cannot carry is refused. */
static int token_reload(struct fm_kube *k)
{
        char *t = NULL;
        int r;

        r = read_small_file(k->cfg.token_file, FM_KUBE_TOKEN_MAX, &t);
        if (r < 0)
                return r;
        if (!fm_text_no_controls(t)) {
                free(t);
                return -EBADMSG;
        }
        if (!t[0]) {
                free(t);
                return -ENODATA;
        }
        free(k->token);
        k->token = t;
        k->token_read_at = mono_now(k);
        return 0;
}

/* The token to send (NULL without a token file): the cached one while it is younger than
 * token_reread, else read again (the old one stays in use when that fails). */
static int token_get(struct fm_kube *k, const char **ret)
{
        int r;

        *ret = NULL;
        if (!k->cfg.token_file[0])
                return 0;
        if (!k->token || mono_now(k) - k->token_read_at >= k->cfg.token_reread) {
                r = token_reload(k);
                if (r < 0 && !k->token)
                        return r;
        }
        *ret = k->token;
        return 0;
}

/* ---- calls ---- */

static void kcall_free(struct kcall *c)
{
        if (!c)
                return;
        free(c->url);
        free(c->body);
        free(c->token_used);
        free(c);
}

static void kcall_unlink(struct fm_kube *k, struct kcall *c)
{
        if (c->prev)
                c->prev->next = c->next;
        else
                k->calls = c->next;
        if (c->next)
                c->next->prev = c->prev;
        c->prev = c->next = NULL;
}

static void kcall_done(void *userdata, const struct fm_httpc_response *resp);

static int kcall_send(struct kcall *c)
{
        struct fm_kube *k = c->k;
        const char *token;
        char *auth = NULL, ctype[80];
        const char *headers[4];
        size_t nh = 0;
        int r;

        r = token_get(k, &token);
        if (r < 0)
                return r;
        headers[nh++] = "Accept: application/json";
        if (token) {
                size_t l = strlen(token) + sizeof "Authorization: Bearer ";
                auth = malloc(l);
                if (!auth)
                        return -ENOMEM;
                snprintf(auth, l, "Authorization: Bearer %s", token);
                headers[nh++] = auth;
                free(c->token_used);
                c->token_used = strdup(token);
                if (!c->token_used) {
                        free(auth);
                        return -ENOMEM;
                }
        }
        if (c->body) {
                snprintf(ctype, sizeof ctype, "Content-Type: %s", c->ctype);
                headers[nh++] = ctype;
        }
        headers[nh] = NULL;

        struct fm_httpc_request req = {
                .method = c->method,
                .url = c->url,
                .headers = headers,
                .body = c->body,
                .body_len = c->body ? strlen(c->body) : 0,
                .ca_file = k->cfg.ca_file[0] ? k->cfg.ca_file : NULL,
                .timeout = c->timeout,
        };
        r = fm_httpc_submit(k->http, &req, kcall_done, c, &c->http_id);
        free(auth);
        if (r >= 0)
                k->requests++;
        return r;
}

static void kcall_done(void *userdata, const struct fm_httpc_response *resp)
{
        struct kcall *c = userdata;
        struct fm_kube *k = c->k;
        fm_kube_done_fn done = c->done;
        void *ud = c->userdata;

        c->http_id = 0;
        if (resp->error == 0 && resp->status == 401 && !c->retried && k->cfg.token_file[0]) {
                /* The token may have been rotated under us: read it again now, not in a minute. */
                c->retried = true;
                if (token_reload(k) == 0 && c->token_used && strcmp(k->token, c->token_used) != 0 &&
                    kcall_send(c) >= 0)
                        return;
        }
        kcall_unlink(k, c);
        kcall_free(c);
        if (done)
                done(ud, resp);
}

int fm_kube_request(struct fm_kube *k, enum fm_kube_call call, const char *ns, const char *name,
                    const char *ctype, const char *body, fm_ms timeout, fm_kube_done_fn done,
                    void *userdata, uint64_t *ret_id)
{
        char url[FM_KUBE_URL_MAX];
        struct kcall *c;
        int r;

        if (!k || (unsigned)call >= _FM_KUBE_CALL_MAX || (body && (!ctype || strlen(ctype) >= 48)))
                return -EINVAL;
        r = fm_kube_url(k->cfg.server, call, ns ? ns : k->cfg.namespace_, name, url, sizeof url);
        if (r < 0)
                return r == -ENOBUFS ? -EINVAL : r;
        c = calloc(1, sizeof *c);
        if (!c)
                return -ENOMEM;
        c->k = k;
        c->method = fm_kube_call_method(call);
        c->timeout = timeout > 0 ? timeout : k->cfg.timeout;
        c->done = done;
        c->userdata = userdata;
        c->url = strdup(url);
        if (body) {
                c->body = strdup(body);
                memcpy(c->ctype, ctype, strlen(ctype) + 1);
        }
        if (!c->url || (body && !c->body)) {
                kcall_free(c);
                return -ENOMEM;
        }
        r = kcall_send(c);
        if (r < 0) {
                kcall_free(c);
                return r;
        }
        c->id = ++k->next_call_id;
        c->next = k->calls;
        if (k->calls)
                k->calls->prev = c;
        k->calls = c;
        if (ret_id)
                *ret_id = c->id;
        return 0;
}

void fm_kube_cancel(struct fm_kube *k, uint64_t id)
{
        if (!k || id == 0)
                return;
        for (struct kcall *c = k->calls; c; c = c->next)
                if (c->id == id) {
                        if (c->http_id)
                                fm_httpc_cancel(k->http, c->http_id);
                        kcall_unlink(k, c);
                        kcall_free(c);
                        return;
                }
}

uint64_t fm_kube_requests(const struct fm_kube *k)
{
        return k ? k->requests : 0;
}

const char *fm_kube_namespace(const struct fm_kube *k)
{
        return k ? k->cfg.namespace_ : NULL;
}

void fm_kube_set_lease(struct fm_kube *k, struct fm_lease *l)
{
        if (k)
                k->lease = l;
}

/* ---- ops ---- */

static void op_unlink(struct fm_kube *k, struct op *op)
{
        if (op->prev)
                op->prev->next = op->next;
        else
                k->ops = op->next;
        if (op->next)
                op->next->prev = op->prev;
        k->n_ops--;
}

static const char *action_reason(enum fm_action a)
{
        switch (a) {
        case FM_ACTION_SCALE:
                return "FleetmedicScale";
        case FM_ACTION_SET_WEIGHTS:
                return "FleetmedicSetWeights";
        case FM_ACTION_RESTART:
                return "FleetmedicRestart";
        case FM_ACTION_ROLLBACK:
                return "FleetmedicRollback";
        default:
                return "Fleetmedic";
        }
}

static const char *action_verb(enum fm_action a)
{
        switch (a) {
        case FM_ACTION_SCALE:
                return "Scale";
        case FM_ACTION_SET_WEIGHTS:
                return "SetWeights";
        case FM_ACTION_RESTART:
                return "Restart";
        case FM_ACTION_ROLLBACK:
                return "Rollback";
        default:
                return "Act";
        }
}

/* Records what an op did as an Event; fire and forget (its failure changes nothing). */
static void record_event(struct fm_kube *k, const struct op *op, bool warning, const char *detail)
{
        char what[160], msg[FM_ACTUATOR_DETAIL_MAX + 200];
        char *body = NULL;
        bool isvc = op->kind == FM_KUBE_WORKLOAD_INFERENCESERVICE;
        struct timespec ts;
        int r;

        if (!k->cfg.events || op->req.observe)
                return;
        /* client-go names an Event <object>.<hex nanoseconds>; the sequence number breaks ties. */
        clock_gettime(CLOCK_REALTIME, &ts);
        if (fm_action_req_describe(&op->req, what, sizeof what) < 0)
                what[0] = '\0';
        snprintf(msg, sizeof msg, "%s: %s", what, detail ? detail : "");
        struct fm_kube_event ev = {
                .ns = k->cfg.namespace_,
                .api_version = isvc ? "serving.kserve.io/v1beta1" : "apps/v1",
                .kind = isvc ? "InferenceService" : "Deployment",
                .name = op->workload,
                .reason = action_reason(op->req.action),
                .message = msg,
                .action = action_verb(op->req.action),
                .instance = k->host,
                .warning = warning,
                .now = real_now(k),
                .unique = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec + ++k->event_seq,
        };
        r = fm_kube_event_body(&ev, &body);
        if (r < 0)
                return;
        (void)fm_kube_request(k, FM_KUBE_EVENT_CREATE, NULL, NULL, CTYPE_JSON, body, 0, NULL, NULL,
                              NULL);
        free(body);
}

/* Delivers the op's one result and frees it. */
static void op_finish(struct op *op, enum fm_result_kind kind, int error, fm_ms retry_after,
                      const char *detail)
{
        struct fm_kube *k = op->k;
        struct fm_action_result res = {
                .kind = kind,
                .error = kind == FM_RESULT_OK ? 0 : error,
                .retry_after = retry_after,
                .detail = detail,
        };

        op_unlink(k, op);
        if (kind == FM_RESULT_OK || (kind == FM_RESULT_PERMANENT && error != -ESRCH))
                record_event(k, op, kind != FM_RESULT_OK, detail);
        if (k->a)
                (void)fm_actuator_complete(k->a, op->attempt_id, &res, real_now(k));
        free(op);
}

static void op_finishf(struct op *op, enum fm_result_kind kind, int error, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));

static void op_finishf(struct op *op, enum fm_result_kind kind, int error, const char *fmt, ...)
{
        char detail[FM_ACTUATOR_DETAIL_MAX];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(detail, sizeof detail, fmt, ap);
        va_end(ap);
        op_finish(op, kind, error, 0, detail);
}

static int http_errno(long status)
{
        switch (status) {
        case 400:
                return -EBADMSG;
        case 401:
                return -EACCES;
        case 403:
                return -EPERM;
        case 404:
                return -ENOENT;
        case 409:
                return -EBUSY;
        case 415:
                return -EPROTONOSUPPORT;
        case 422:
                return -EINVAL;
        case 429:
                return -EAGAIN;
        case 504:
                return -ETIMEDOUT;
        default:
                return status >= 500 ? -EIO : -EPROTO;
        }
}

/*
 * Ends the op when resp is not a 2xx answer: transport errors by errno,
 * HTTP errors by status with the Status object's reason and message.
 * Returns true when it ended the op.
 */
static bool op_failed(struct op *op, const struct fm_httpc_response *resp, const char *what)
{
        struct fm_kube_status st;
        char detail[FM_ACTUATOR_DETAIL_MAX + sizeof st.message + sizeof st.reason];

        if (resp->error != 0) {
                snprintf(detail, sizeof detail, "%s: %s", what,
                         resp->detail ? resp->detail : strerror(-resp->error));
                op_finish(op, fm_result_kind_from_errno(resp->error), resp->error, 0, detail);
                return true;
        }
        if (resp->status >= 200 && resp->status < 300)
                return false;
        fm_kube_status_parse(resp->status, resp->body, resp->body_len, &st);
        snprintf(detail, sizeof detail, "%s: %ld %s: %s", what, resp->status,
                 st.reason[0] ? st.reason : "error", st.message);
        op_finish(op, fm_result_kind_from_http((int)resp->status), http_errno(resp->status),
                  resp->retry_after > st.retry_after ? resp->retry_after : st.retry_after, detail);
        return true;
}

static enum fm_kube_call read_call(const struct op *op)
{
        switch (op->req.action) {
        case FM_ACTION_SCALE:
                return FM_KUBE_SCALE_GET;
        case FM_ACTION_SET_WEIGHTS:
                return op->k->cfg.traffic == FM_KUBE_TRAFFIC_ISTIO ? FM_KUBE_VS_GET
                                                                   : FM_KUBE_ROUTE_GET;
        default:
                return op->kind == FM_KUBE_WORKLOAD_INFERENCESERVICE ? FM_KUBE_ISVC_GET
                                                                     : FM_KUBE_DEPLOYMENT_GET;
        }
}

static const char *op_object(const struct op *op)
{
        return op->req.action == FM_ACTION_SET_WEIGHTS ? op->traffic : op->workload;
}

static void op_read_done(void *userdata, const struct fm_httpc_response *resp);
static void op_write_done(void *userdata, const struct fm_httpc_response *resp);

static int op_read(struct op *op)
{
        return fm_kube_request(op->k, read_call(op), NULL, op_object(op), NULL, NULL, 0,
                               op_read_done, op, &op->call_id);
}

/* The fencing check, right before a write. Returns true when the write may go. */
static bool op_fenced(struct op *op)
{
        struct fm_kube *k = op->k;
        uint64_t fence;

        if (!k->cfg.lease.enabled)
                return true;
        if (!k->lease || !fm_lease_is_leader(k->lease, &fence)) {
                op_finishf(op, FM_RESULT_REFUSED, -ESTALE, "not the leader (fence %" PRIu64 ")",
                           op->req.fence);
                return false;
        }
        if (fence != op->req.fence) {
                op_finishf(op, FM_RESULT_REFUSED, -ESTALE,
                           "fence %" PRIu64 " is stale: lease transitions %" PRIu64, op->req.fence,
                           fence);
                return false;
        }
        return true;
}

/* Fences, then sends the write; ends the op on failure. body is freed. */
static void op_write(struct op *op, enum fm_kube_call call, const char *ctype, char *body)
{
        int r;

        if (!op_fenced(op)) {
                free(body);
                return;
        }
        r = fm_kube_request(op->k, call, NULL, op_object(op), ctype, body, 0, op_write_done, op,
                            &op->call_id);
        free(body);
        if (r < 0)
                op_finishf(op, fm_result_kind_from_errno(r), r, "write: %s", strerror(-r));
}

static void describe_weights(const struct op *op, char *buf, size_t size)
{
        size_t o = 0;

        buf[0] = '\0';
        for (size_t i = 0; i < op->n_dest && o < size; i++) {
                int n = snprintf(buf + o, size - o, "%s%s=%" PRIu32, i ? "," : "", op->dest[i].name,
                                 op->dest[i].weight);
                if (n < 0)
                        break;
                o += (size_t)n;
        }
}

static void op_read_scale(struct op *op, struct json_object *obj, const char *rv)
{
        struct json_object *v = fm_kube_get(obj, (const char *const[]){"spec", "replicas", NULL});
        int64_t have = v && json_object_is_type(v, json_type_int) ? json_object_get_int64(v) : 0;
        uint32_t to = op->req.arg.scale.to;
        char *body = NULL;
        int r;

        if (op->req.observe || have == (int64_t)to) {
                if (have == (int64_t)to)
                        op_finishf(op, FM_RESULT_OK, 0, "replicas %" PRId64 " observed", have);
                else
                        op_finishf(op, FM_RESULT_PERMANENT, -ESRCH,
                                   "replicas %" PRId64 " observed, want %" PRIu32, have, to);
                return;
        }
        snprintf(op->before, sizeof op->before, "%" PRId64, have);
        r = fm_kube_scale_patch(rv, to, &body);
        if (r < 0) {
                op_finishf(op, FM_RESULT_PERMANENT, r, "scale: %s", strerror(-r));
                return;
        }
        op_write(op, FM_KUBE_SCALE_PATCH, CTYPE_MERGE, body);
}

static const char *restarted_at(struct json_object *obj)
{
        struct json_object *v = fm_kube_get(
                obj, (const char *const[]){"spec", "template", "metadata", "annotations",
                                           "kubectl.kubernetes.io/restartedAt", NULL});

        return v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

static void op_read_restart(struct op *op, struct json_object *obj, const char *rv)
{
        struct json_object *paused =
                fm_kube_get(obj, (const char *const[]){"spec", "paused", NULL});
        const char *at = restarted_at(obj);
        char when[40], *body = NULL;
        int r;

        if (op->req.observe) {
                if (at && fm_kube_rollout_complete(obj))
                        op_finishf(op, FM_RESULT_OK, 0, "restartedAt %.40s, rollout complete", at);
                else
                        op_finishf(op, FM_RESULT_PERMANENT, -ESRCH, "%s",
                                   at ? "rollout not complete" : "no restart recorded");
                return;
        }
        if (paused && json_object_get_boolean(paused)) {
                op_finishf(op, FM_RESULT_PERMANENT, -EPERM, "can't restart paused deployment");
                return;
        }
        r = fm_kube_format_time(real_now(op->k), false, when, sizeof when);
        if (r >= 0)
                r = fm_kube_restart_patch(rv, when, &body);
        if (r < 0) {
                op_finishf(op, FM_RESULT_PERMANENT, r, "restart: %s", strerror(-r));
                return;
        }
        snprintf(op->before, sizeof op->before, "%s", when);
        op_write(op, FM_KUBE_DEPLOYMENT_PATCH, CTYPE_STRATEGIC, body);
}

static const char *storage_uri(struct json_object *obj)
{
        struct json_object *v = fm_kube_get(
                obj, (const char *const[]){"spec", "predictor", "model", "storageUri", NULL});

        return v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

static void op_read_rollback(struct op *op, struct json_object *obj, const char *rv)
{
        bool isvc = op->kind == FM_KUBE_WORKLOAD_INFERENCESERVICE;
        const char *have = NULL;
        char *body = NULL;
        int r;

        if (isvc) {
                have = storage_uri(obj);
        } else {
                r = fm_kube_container_image(obj, op->container, &have);
                if (r < 0) {
                        op_finishf(op, FM_RESULT_PERMANENT, r, "container %s: %s",
                                   op->container[0] ? op->container : "(only)",
                                   r == -ENOENT ? "not found" : "malformed");
                        return;
                }
        }
        if (op->req.observe || (have && strcmp(have, op->want) == 0)) {
                if (have && strcmp(have, op->want) == 0)
                        op_finishf(op, FM_RESULT_OK, 0, "%s %.200s observed",
                                   isvc ? "storageUri" : "image", have);
                else
                        op_finishf(op, FM_RESULT_PERMANENT, -ESRCH,
                                   "%s %.100s observed, want %.100s", isvc ? "storageUri" : "image",
                                   have ? have : "(none)", op->want);
                return;
        }
        snprintf(op->before, sizeof op->before, "%s", have ? have : "(none)");
        r = isvc ? fm_kube_storage_patch(rv, op->want, &body)
                 : fm_kube_image_patch(rv, op->container[0] ? op->container : NULL, op->want,
                                       &body);
        if (r == -EINVAL && !isvc) {
                /* container "" means the only one: patch it by the name the read showed. */
                struct json_object *c = fm_kube_get(
                        obj, (const char *const[]){"spec", "template", "spec", "containers", NULL});
                struct json_object *name = NULL;
                c = c ? json_object_array_get_idx(c, 0) : NULL;
                if (c && json_object_object_get_ex(c, "name", &name) &&
                    json_object_is_type(name, json_type_string) &&
                    fm_kube_label_valid(json_object_get_string(name))) {
                        snprintf(op->container, sizeof op->container, "%s",
                                 json_object_get_string(name));
                        r = fm_kube_image_patch(rv, op->container, op->want, &body);
                }
        }
        if (r < 0) {
                op_finishf(op, FM_RESULT_PERMANENT, r, "rollback: %s", strerror(-r));
                return;
        }
        op_write(op, isvc ? FM_KUBE_ISVC_PATCH : FM_KUBE_DEPLOYMENT_PATCH,
                 isvc ? CTYPE_MERGE : CTYPE_STRATEGIC, body);
}

static void op_read_weights(struct op *op, struct json_object *obj, const char *rv)
{
        enum fm_kube_traffic t = op->k->cfg.traffic;
        char ws[FM_ACTUATOR_DETAIL_MAX / 2], *body = NULL;
        int r;

        describe_weights(op, ws, sizeof ws);
        r = fm_kube_weights(t, obj, NULL, op->dest, op->n_dest, NULL);
        if (r == 0) {
                op_finishf(op, FM_RESULT_OK, 0, "weights %s observed", ws);
                return;
        }
        if (r != -ESRCH || op->req.observe) {
                op_finishf(op, FM_RESULT_PERMANENT, r == -ESRCH ? -ESRCH : r, "weights %s: %s", ws,
                           r == -ESRCH    ? "not observed"
                           : r == -ENOENT ? "destination not in the route"
                                          : "malformed route");
                return;
        }
        r = fm_kube_weights(t, obj, rv, op->dest, op->n_dest, &body);
        if (r < 0) {
                op_finishf(op, FM_RESULT_PERMANENT, r, "weights: %s", strerror(-r));
                return;
        }
        op_write(op, t == FM_KUBE_TRAFFIC_ISTIO ? FM_KUBE_VS_PATCH : FM_KUBE_ROUTE_PATCH,
                 CTYPE_MERGE, body);
}

static void op_read_done(void *userdata, const struct fm_httpc_response *resp)
{
        struct op *op = userdata;
        struct json_object *obj;
        const char *rv;

        op->call_id = 0;
        if (op_failed(op, resp, "read"))
                return;
        obj = fm_http_json_object(resp);
        rv = obj ? fm_kube_resource_version(obj) : NULL;
        if (!obj || !rv) {
                json_object_put(obj);
                op_finishf(op, FM_RESULT_PERMANENT, -EBADMSG, "read: malformed answer");
                return;
        }
        switch (op->req.action) {
        case FM_ACTION_SCALE:
                op_read_scale(op, obj, rv);
                break;
        case FM_ACTION_RESTART:
                op_read_restart(op, obj, rv);
                break;
        case FM_ACTION_ROLLBACK:
                op_read_rollback(op, obj, rv);
                break;
        case FM_ACTION_SET_WEIGHTS:
                op_read_weights(op, obj, rv);
                break;
        default:
                op_finishf(op, FM_RESULT_PERMANENT, -EOPNOTSUPP, "unsupported");
                break;
        }
        json_object_put(obj);
}

/* What the write's answer shows, compared with what was asked. */
static void op_write_done(void *userdata, const struct fm_httpc_response *resp)
{
        struct op *op = userdata;
        struct json_object *obj, *v;
        char ws[FM_ACTUATOR_DETAIL_MAX / 2];
        int r;

        op->call_id = 0;
        if (resp->error == 0 && resp->status == 409 && op->conflicts < FM_KUBE_CONFLICT_RETRIES) {
                /* Someone changed the object between our read and write: read it again. */
                op->conflicts++;
                r = op_read(op);
                if (r < 0)
                        op_finishf(op, fm_result_kind_from_errno(r), r, "re-read: %s",
                                   strerror(-r));
                return;
        }
        if (op_failed(op, resp, "write"))
                return;
        obj = fm_http_json_object(resp);
        if (!obj) {
                op_finishf(op, FM_RESULT_PERMANENT, -EBADMSG, "write: malformed answer");
                return;
        }
        switch (op->req.action) {
        case FM_ACTION_SCALE: {
                int64_t got;
                v = fm_kube_get(obj, (const char *const[]){"spec", "replicas", NULL});
                got = v && json_object_is_type(v, json_type_int) ? json_object_get_int64(v) : 0;
                op_finishf(op, got == op->req.arg.scale.to ? FM_RESULT_OK : FM_RESULT_RETRYABLE,
                           -EAGAIN, "replicas %s->%" PRIu32 " observed %" PRId64, op->before,
                           op->req.arg.scale.to, got);
                break;
        }
        case FM_ACTION_RESTART: {
                const char *at = restarted_at(obj);
                bool ok = at && strcmp(at, op->before) == 0;
                op_finishf(op, ok ? FM_RESULT_OK : FM_RESULT_RETRYABLE, -EAGAIN,
                           "restartedAt %s observed %.40s", op->before, at ? at : "(none)");
                break;
        }
        case FM_ACTION_ROLLBACK: {
                const char *have = NULL;
                if (op->kind == FM_KUBE_WORKLOAD_INFERENCESERVICE)
                        have = storage_uri(obj);
                else if (fm_kube_container_image(obj, op->container, &have) < 0)
                        have = NULL;
                op_finishf(op,
                           have && strcmp(have, op->want) == 0 ? FM_RESULT_OK : FM_RESULT_RETRYABLE,
                           -EAGAIN, "%.100s->%.60s observed %.60s", op->before, op->want,
                           have ? have : "(none)");
                break;
        }
        case FM_ACTION_SET_WEIGHTS:
                describe_weights(op, ws, sizeof ws);
                r = fm_kube_weights(op->k->cfg.traffic, obj, NULL, op->dest, op->n_dest, NULL);
                op_finishf(op, r == 0 ? FM_RESULT_OK : FM_RESULT_RETRYABLE, -EAGAIN,
                           "weights %s %s", ws, r == 0 ? "observed" : "not observed");
                break;
        default:
                op_finishf(op, FM_RESULT_PERMANENT, -EOPNOTSUPP, "unsupported");
                break;
        }
        json_object_put(obj);
}

static const struct fm_kube_mapping *find_mapping(const struct fm_kube *k, const char *deployment)
{
        const struct fm_kube_mapping *star = NULL;

        for (uint32_t i = 0; i < k->cfg.n_mappings; i++) {
                if (strcmp(k->cfg.mapping[i].deployment, deployment) == 0)
                        return &k->cfg.mapping[i];
                if (strcmp(k->cfg.mapping[i].deployment, "*") == 0)
                        star = &k->cfg.mapping[i];
        }
        return star;
}

/* An image or URI built from a pattern: printable, no spaces. */
static bool text_ok(const char *s)
{
        if (!s[0])
                return false;
        for (; *s; s++)
                if ((unsigned char)*s <= ' ' || *s == 0x7f)
                        return false;
        return true;
}

/* Fills op from req and the mapping; -EOPNOTSUPP, -EINVAL (hostile names). */
static int op_prepare(struct fm_kube *k, struct op *op, const struct fm_action_req *req)
{
        const struct fm_kube_mapping *m;
        const char *d = req->deployment;
        int r;

        if (!fm_text_terminated(req->deployment, sizeof req->deployment) ||
            !fm_text_terminated(req->instance, sizeof req->instance) || !fm_kube_name_valid(d))
                return -EINVAL;
        if (req->instance[0] && !fm_kube_name_valid(req->instance))
                return -EINVAL;
        m = find_mapping(k, d);
        if (!m)
                return -EOPNOTSUPP;
        op->req = *req;
        op->kind = m->kind;
        snprintf(op->workload, sizeof op->workload, "%s", m->workload[0] ? m->workload : d);
        snprintf(op->traffic, sizeof op->traffic, "%s", m->traffic_name[0] ? m->traffic_name : d);
        snprintf(op->container, sizeof op->container, "%s", m->container);
        if (!fm_kube_name_valid(op->workload) || !fm_kube_name_valid(op->traffic))
                return -EINVAL;

        switch (req->action) {
        case FM_ACTION_SCALE:
        case FM_ACTION_RESTART:
                if (m->kind != FM_KUBE_WORKLOAD_DEPLOYMENT)
                        return -EOPNOTSUPP;
                if (req->action == FM_ACTION_SCALE && req->arg.scale.to > INT32_MAX)
                        return -EINVAL;
                return 0;
        case FM_ACTION_ROLLBACK: {
                const char *pattern =
                        m->kind == FM_KUBE_WORKLOAD_INFERENCESERVICE ? m->storage_uri : m->image;
                if (!pattern[0])
                        return -EOPNOTSUPP;
                if (!fm_text_terminated(req->arg.rollback.to, sizeof req->arg.rollback.to) ||
                    !fm_kube_version_valid(req->arg.rollback.to))
                        return -EINVAL;
                r = fm_kube_expand(pattern, d, req->arg.rollback.to, op->want, sizeof op->want);
                if (r < 0 || !text_ok(op->want))
                        return -EINVAL;
                return 0;
        }
        case FM_ACTION_SET_WEIGHTS: {
                const char *pattern = m->destination[0] ? m->destination
                                      : k->cfg.traffic == FM_KUBE_TRAFFIC_ISTIO
                                              ? "{target}"
                                              : "{deployment}-{target}";
                if (k->cfg.traffic == FM_KUBE_TRAFFIC_NONE)
                        return -EOPNOTSUPP;
                if (req->arg.weights.n == 0 || req->arg.weights.n > FM_KUBE_DESTS_MAX)
                        return -EINVAL;
                for (uint32_t i = 0; i < req->arg.weights.n; i++) {
                        const struct fm_weight *w = &req->arg.weights.w[i];
                        struct fm_kube_dest *dd = &op->dest[i];

                        if (!fm_text_terminated(w->target, sizeof w->target) ||
                            !fm_kube_version_valid(w->target) || w->weight > 100)
                                return -EINVAL;
                        r = fm_kube_expand(pattern, d, w->target, dd->name, sizeof dd->name);
                        if (r < 0)
                                return -EINVAL;
                        /* A Service name is a label; a subset name keeps to a version's bytes. */
                        if (k->cfg.traffic == FM_KUBE_TRAFFIC_GATEWAY
                                    ? !fm_kube_label_valid(dd->name)
                                    : !fm_kube_version_valid(dd->name))
                                return -EINVAL;
                        for (uint32_t j = 0; j < i; j++)
                                if (strcmp(op->dest[j].name, dd->name) == 0)
                                        return -EINVAL;
                        dd->weight = w->weight;
                }
                op->n_dest = req->arg.weights.n;
                return 0;
        }
        default:
                return -EOPNOTSUPP;
        }
}

static int kube_start(void *backend, const struct fm_action_req *req, uint64_t attempt_id)
{
        struct fm_kube *k = backend;
        struct op *op;
        int r;

        if (!k || !req)
                return -EINVAL;
        if (k->n_ops >= FM_KUBE_OPS_MAX)
                return -ENOBUFS;
        op = calloc(1, sizeof *op);
        if (!op)
                return -ENOMEM;
        r = op_prepare(k, op, req);
        if (r < 0) {
                free(op);
                return r;
        }
        op->k = k;
        op->attempt_id = attempt_id;
        r = op_read(op);
        if (r < 0) {
                free(op);
                return r;
        }
        op->next = k->ops;
        if (k->ops)
                k->ops->prev = op;
        k->ops = op;
        k->n_ops++;
        return 0;
}

static void kube_cancel(void *backend, uint64_t attempt_id)
{
        struct fm_kube *k = backend;

        for (struct op *op = k->ops; op; op = op->next)
                if (op->attempt_id == attempt_id) {
                        fm_kube_cancel(k, op->call_id);
                        op_unlink(k, op);
                        free(op);
                        return;
                }
}

const struct fm_backend_ops fm_backend_kube_ops = {
        .name = "kubernetes",
        .supports =
                {
                        [FM_ACTION_SCALE] = true,
                        [FM_ACTION_SET_WEIGHTS] = true,
                        [FM_ACTION_RESTART] = true,
                        [FM_ACTION_ROLLBACK] = true,
                },
        .start = kube_start,
        .cancel = kube_cancel,
};

/* ---- setup ---- */

/* Fills server, token_file, ca_file from the in-cluster environment. */
static int resolve_in_cluster(struct fm_kube_config *cfg)
{
        const char *host = getenv("KUBERNETES_SERVICE_HOST");
        const char *port = getenv("KUBERNETES_SERVICE_PORT");
        bool v6;
        int n;

        if (!host || !host[0] || !port || !port[0])
                return -ENXIO;
        if (strspn(port, "0123456789") != strlen(port) || strlen(port) > 5)
                return -EINVAL;
        for (const char *c = host; *c; c++)
                if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
                      (*c >= '0' && *c <= '9') || *c == '.' || *c == '-' || *c == ':'))
                        return -EINVAL;
        v6 = strchr(host, ':') != NULL;
        n = snprintf(cfg->server, sizeof cfg->server, "https://%s%s%s:%s", v6 ? "[" : "", host,
                     v6 ? "]" : "", port);
        if (n < 0 || (size_t)n >= sizeof cfg->server)
                return -EINVAL;
        n = snprintf(cfg->token_file, sizeof cfg->token_file, "%s/token", cfg->sa_dir);
        if (n < 0 || (size_t)n >= sizeof cfg->token_file)
                return -EINVAL;
        n = snprintf(cfg->ca_file, sizeof cfg->ca_file, "%s/ca.crt", cfg->sa_dir);
        if (n < 0 || (size_t)n >= sizeof cfg->ca_file)
                return -EINVAL;
        return 0;
}

/* The namespace: configured, else $POD_NAMESPACE or the service account's file (in cluster),
 * else "default". */
static int resolve_namespace(struct fm_kube_config *cfg)
{
        const char *env = getenv("POD_NAMESPACE");
        char path[FM_KUBE_PATH_MAX + 16], *text = NULL;
        int r;

        if (cfg->namespace_[0])
                return 0;
        if (cfg->in_cluster) {
                if (env && env[0]) {
                        if (!fm_kube_label_valid(env))
                                return -EINVAL;
                        snprintf(cfg->namespace_, sizeof cfg->namespace_, "%s", env);
                        return 0;
                }
                snprintf(path, sizeof path, "%s/namespace", cfg->sa_dir);
                r = read_small_file(path, FM_KUBE_LABEL_MAX + 8, &text);
                if (r < 0)
                        return r;
                if (!fm_kube_label_valid(text)) {
                        free(text);
                        return -EINVAL;
                }
                snprintf(cfg->namespace_, sizeof cfg->namespace_, "%s", text);
                free(text);
                return 0;
        }
        memcpy(cfg->namespace_, "default", sizeof "default");
        return 0;
}

int fm_kube_new(sd_event *event, const struct fm_kube_config *cfg, struct fm_actuator *a,
                struct fm_kube **ret)
{
        struct fm_kube *k;
        int r;

        if (!event || !cfg || !ret || fm_kube_config_validate(cfg) < 0)
                return -EINVAL;
        k = calloc(1, sizeof *k);
        if (!k)
                return -ENOMEM;
        k->cfg = *cfg;
        k->a = a;
        if (cfg->in_cluster) {
                r = resolve_in_cluster(&k->cfg);
                if (r < 0)
                        goto fail;
        }
        r = resolve_namespace(&k->cfg);
        if (r < 0)
                goto fail;
        if (gethostname(k->host, sizeof k->host - 1) < 0 || !k->host[0])
                memcpy(k->host, "fleetmedic", sizeof "fleetmedic");
        r = fm_httpc_new(event, &k->http);
        if (r < 0)
                goto fail;
        k->event = sd_event_ref(event);
        *ret = k;
        return 0;
fail:
        free(k);
        return r;
}

struct fm_kube *fm_kube_free(struct fm_kube *k)
{
        if (!k)
                return NULL;
        while (k->ops) {
                struct op *op = k->ops;
                op_unlink(k, op);
                free(op);
        }
        while (k->calls) {
                struct kcall *c = k->calls;
                if (c->http_id)
                        fm_httpc_cancel(k->http, c->http_id);
                kcall_unlink(k, c);
                kcall_free(c);
        }
        fm_httpc_free(k->http);
        free(k->token);
        sd_event_unref(k->event);
        free(k);
        return NULL;
}
