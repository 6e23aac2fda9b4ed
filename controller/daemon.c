/* SPDX-License-Identifier: MIT */
#include "daemon.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>

#include <json-c/json.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>

#include "alerting.h"
#include "audit.h"
#include "buf.h"
#include "config.h"
#include "event.h"
#include "executor.h"
#include "fleet.h"
#include "governor.h"
#include "http.h"
#include "intent.h"
#include "journal.h"
#include "log.h"
#include "metrics.h"
#include "mqtt.h"
#include "policies.h"
#include "policy.h"
#include "reconcile.h"

/* Decisions kept for /status. */
#define RECENT_DECISIONS 64
/* The retained state summary is refreshed at most this often. */
#define STATE_PUBLISH_INTERVAL_MS (10 * FM_MS_PER_S)
/* Per-event warnings: at most this many per interval. */
#define WARN_BURST 10
#define WARN_INTERVAL_MS (10 * FM_MS_PER_S)

/* Every name an intent's policy can have: the label set of fleetmedic_actions_total. */
static const char *const policy_names[] = {
        "breaker",   "traffic",  "canary",           "rollback",
        "autoscale", "autotune", FM_GOVERNOR_POLICY, "alerting",
};
#define N_POLICY_NAMES ARRAY_SIZE(policy_names)

/* Every outcome an execution can have: the label set of fleetmedic_executions_total. */
static const char *const execution_outcomes[] = {
        "ok",      "failed",    "timeout",     "refused",       "unsupported", "breaker_open",
        "unbound", "duplicate", "in_progress", "journal_error", "unknown",     "not_leader",
};
#define N_EXECUTION_OUTCOMES ARRAY_SIZE(execution_outcomes)

/* Upper bounds of fleetmedic_decode_seconds. */
static const double decode_bounds[] = {1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5,
                                       1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 1e-2};

struct daemon {
        const struct fm_daemon_options *opt;
        struct fm_config cfg;
        bool dry_run; /* effective */
        sd_event *event;
        struct fm_decoder *decoder;
        struct fm_core *core;
        struct fm_journal *journal;
        struct fm_executor *executor;
        bool settling;          /* a previous run's actions are being observed: no decisions yet */
        struct fm_fleet *fleet; /* the core's */
        struct fm_event *ev;
        struct fm_mqtt *mqtt;
        struct fm_http *http;
        sd_event_source *tick, *watchdog;
        uint64_t watchdog_usec;
        fm_ms started;
        fm_ms last_state_publish;
        struct fm_ratelimit warn;
        struct fm_buf scratch;
        char state_topic[FM_PREFIX_MAX + 32];

        /* metrics */
        uint64_t received[_FM_EVENT_KIND_MAX];
        uint64_t rejected[_FM_REJECT_MAX]; /* by the decoder; the fleet counts its own */
        uint64_t actions[N_POLICY_NAMES][_FM_VERDICT_MAX]; /* by policy and verdict */
        uint64_t executions[_FM_BACKEND_KIND_MAX + 1][N_EXECUTION_OUTCOMES]; /* last: none */
        uint64_t transitions;
        uint64_t plan_overflows;
        uint64_t reloads, reload_failures;
        uint64_t connects; /* across MQTT client re-creations on reload */
        struct fm_metric_hist decode_seconds;

        /* recent audit records, oldest first from recent_head */
        char *recent[RECENT_DECISIONS];
        unsigned recent_head, recent_n;
};

static fm_ms realtime_ms(struct daemon *d)
{
        uint64_t usec;
        if (sd_event_now(d->event, CLOCK_REALTIME, &usec) < 0) {
                struct timespec ts;
                clock_gettime(CLOCK_REALTIME, &ts);
                return (fm_ms)ts.tv_sec * FM_MS_PER_S + ts.tv_nsec / 1000000;
        }
        return (fm_ms)(usec / 1000);
}

static double monotonic_s(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- configuration ------------------------------------------------------------------------- */

static void force_dry_run(struct fm_config *cfg);

/* The file (or the defaults) with the command line on top. Errors are logged. */
static int load_config(const struct fm_daemon_options *opt, struct fm_config *ret)
{
        struct fm_config cfg;
        unsigned n = 0;
        int r;

        if (opt->config_path) {
                char *text = NULL;
                size_t len = 0;
                FILE *errs = open_memstream(&text, &len);
                r = fm_config_load(opt->config_path, &cfg, errs, &n);
                if (errs)
                        fclose(errs);
                if (r < 0) {
                        for (char *line = text, *next; line && *line; line = next) {
                                next = strchr(line, '\n');
                                if (next)
                                        *next++ = '\0';
                                log_error("%s", line);
                        }
                        if (!text || !*text)
                                log_error("%s: %s", opt->config_path, strerror(-r));
                        free(text);
                        return r;
                }
                free(text);
        } else {
                fm_config_default(&cfg);
        }

        if (opt->mqtt_url && fm_mqtt_parse_url(&cfg.mqtt, opt->mqtt_url) < 0) {
                log_error("--mqtt %s: expected mqtt://HOST[:PORT] or mqtts://HOST[:PORT]",
                          opt->mqtt_url);
                return -EINVAL;
        }
        if (opt->mqtt_url && !cfg.mqtt.tls &&
            (cfg.mqtt.ca_file[0] || cfg.mqtt.cert_file[0] || cfg.mqtt.key_file[0])) {
                log_error("--mqtt %s: the configuration sets mqtt.tls files, which need mqtts://",
                          opt->mqtt_url);
                return -EINVAL;
        }
        if (opt->listen) {
                struct sockaddr_storage sa;
                unsigned salen;
                if (fm_http_parse_listen(opt->listen, &sa, &salen) < 0 ||
                    strlen(opt->listen) >= sizeof(cfg.http_listen)) {
                        log_error("--listen %s: expected ADDR:PORT, e.g. 127.0.0.1:9187 or "
                                  "[::1]:9187",
                                  opt->listen);
                        return -EINVAL;
                }
                snprintf(cfg.http_listen, sizeof(cfg.http_listen), "%s", opt->listen);
        }
        if (opt->state_dir) {
                if (opt->state_dir[0] != '/' || strlen(opt->state_dir) >= sizeof(cfg.state_dir)) {
                        log_error("--state-dir %s: expected an absolute path", opt->state_dir);
                        return -EINVAL;
                }
                snprintf(cfg.state_dir, sizeof(cfg.state_dir), "%s", opt->state_dir);
        }
        if (opt->client_id) {
                size_t id_len = strlen(opt->client_id);
                bool ok = id_len > 0 && id_len < sizeof(cfg.mqtt.client_id);
                for (const char *p = opt->client_id; ok && *p; p++)
                        ok = (unsigned char)*p >= 0x20 && *p != 0x7f;
                if (!ok) {
                        log_error("--client-id: 1 to %zu bytes without control characters",
                                  sizeof(cfg.mqtt.client_id) - 1);
                        return -EINVAL;
                }
                memcpy(cfg.mqtt.client_id, opt->client_id, id_len + 1);
        }
        if (opt->topic_prefix) {
                if (strlen(opt->topic_prefix) >= sizeof(cfg.mqtt.topic_prefix)) {
                        log_error("--topic-prefix: longer than %d bytes", FM_PREFIX_MAX);
                        return -EINVAL;
                }
                snprintf(cfg.mqtt.topic_prefix, sizeof(cfg.mqtt.topic_prefix), "%s",
                         opt->topic_prefix);
        }
        if (opt->dry_run)
                cfg.dry_run = true;

        /* the decoder is the judge of a prefix */
        struct fm_decoder_config dcfg;
        struct fm_decoder *probe = NULL;
        fm_config_decoder(&cfg, &dcfg);
        r = fm_decoder_new(&dcfg, &probe);
        fm_decoder_free(probe);
        if (r < 0) {
                log_error("topic prefix '%s' is not usable: it must be non-empty, without a "
                          "trailing '/', '+' or '#'",
                          cfg.mqtt.topic_prefix);
                return -EINVAL;
        }
        *ret = cfg;
        return 0;
}

static int ensure_state_dir(const char *dir)
{
        if (mkdir(dir, 0750) < 0 && errno != EEXIST)
                return -errno;
        struct stat st;
        if (stat(dir, &st) < 0)
                return -errno;
        return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}

/* ---- audit and decisions ------------------------------------------------------------------- */

static void remember(struct daemon *d, const char *record)
{
        char *copy = strdup(record);
        if (!copy)
                return;
        unsigned slot = (d->recent_head + d->recent_n) % RECENT_DECISIONS;
        if (d->recent_n == RECENT_DECISIONS) {
                free(d->recent[d->recent_head]);
                d->recent_head = (d->recent_head + 1) % RECENT_DECISIONS;
        } else {
                d->recent_n++;
        }
        d->recent[slot] = copy;
}

static void publish_decision(struct daemon *d, const char *deployment, const char *record)
{
        char topic[FM_PREFIX_MAX + FM_NAME_MAX + 32];
        remember(d, record);
        if (!d->mqtt)
                return;
        snprintf(topic, sizeof(topic), "%s/%s/_fleetmedic/decisions", d->cfg.mqtt.topic_prefix,
                 deployment);
        int r = fm_mqtt_publish(d->mqtt, topic, record, strlen(record), 1, false);
        if (r < 0 && r != -ENOTCONN)
                log_warning("publishing a decision to %s failed: %s", topic, strerror(-r));
}

static void on_execution(void *userdata, const struct fm_execution *e)
{
        struct daemon *d = userdata;
        struct fm_buf *b = &d->scratch;
        size_t o = 0;
        int k = e->backend ? fm_backend_kind_from_name(e->backend) : -1;

        while (o < N_EXECUTION_OUTCOMES && strcmp(execution_outcomes[o], e->outcome) != 0)
                o++;
        if (o < N_EXECUTION_OUTCOMES)
                d->executions[k >= 0 ? k : _FM_BACKEND_KIND_MAX][o]++;
        bool ok = strcmp(e->outcome, "ok") == 0;
        /* the instances a scale-down removed fall silent: retired, not failed */
        if (ok && e->action == FM_ACTION_SCALE && e->backend &&
            strcmp(e->backend, fm_backend_kind_name(FM_BACKEND_DRYRUN)) != 0)
                (void)fm_core_note_scaled(d->core, e->deployment, e->scale_from, e->scale_to,
                                          e->finished);
        fm_buf_reset(b);
        if (fm_audit_execution(b, e) < 0)
                return;
        fm_log_full(ok ? LOG_NOTICE : LOG_ERR, e->deployment, e->instance[0] ? e->instance : NULL,
                    e->policy, "%s %s%s%s via %s: %s%s%s", fm_action_name(e->action), e->deployment,
                    e->instance[0] ? "/" : "", e->instance, e->backend ? e->backend : "no backend",
                    e->outcome, e->detail[0] ? ": " : "", e->detail);
        publish_decision(d, e->deployment, b->data);
}

/* Only the Lease holder acts, with the Lease's transition count as the fencing token. */
static void execute(struct daemon *d, const struct fm_plan *plan, const struct fm_intent *it,
                    fm_ms now)
{
        uint64_t fence = 0;

        if (fm_executor_leader(d->executor, &fence)) {
                (void)fm_executor_submit(d->executor, plan, it, fence, now);
                return;
        }
        struct fm_execution e = {
                .key = it->key,
                .policy = it->policy,
                .action = it->action,
                .deployment = it->deployment,
                .instance = it->instance,
                .outcome = "not_leader",
                .detail = "another controller holds the lease",
                .submitted = now,
                .finished = now,
        };
        on_execution(d, &e);
}

static void handle_plan(struct daemon *d, const struct fm_plan *plan, fm_ms now)
{
        struct fm_buf *b = &d->scratch;

        for (uint32_t k = 0; k < plan->n_transitions; k++) {
                const struct fm_transition *t = &plan->transition[k];
                d->transitions++;
                fm_buf_reset(b);
                if (fm_audit_transition(b, t) < 0)
                        continue;
                fm_log_full(t->t.to == FM_BREAKER_CLOSED ? LOG_NOTICE : LOG_WARNING, t->deployment,
                            t->instance, "breaker", "breaker %s -> %s (%s): %s",
                            fm_breaker_state_name(t->t.from), fm_breaker_state_name(t->t.to),
                            fm_breaker_cause_name(t->t.cause), b->data);
                publish_decision(d, t->deployment, b->data);
        }
        for (uint32_t k = 0; k < plan->n_intents; k++) {
                const struct fm_intent *it = &plan->intent[k];
                size_t p = 0;
                while (p < N_POLICY_NAMES && strcmp(policy_names[p], it->policy) != 0)
                        p++;
                if (p < N_POLICY_NAMES && (unsigned)it->verdict < _FM_VERDICT_MAX)
                        d->actions[p][it->verdict]++;
                const char *outcome = it->verdict == FM_VERDICT_APPROVED  ? "approved"
                                      : it->verdict == FM_VERDICT_DRY_RUN ? "dry_run"
                                                                          : "blocked";
                fm_buf_reset(b);
                if (fm_audit_intent(b, it, plan, outcome) < 0)
                        continue;
                fm_log_full(LOG_WARNING, it->deployment, it->instance[0] ? it->instance : NULL,
                            it->policy, "%s %s%s%s (%s): %s", fm_action_name(it->action),
                            it->deployment, it->instance[0] ? "/" : "", it->instance,
                            fm_verdict_name(it->verdict), b->data);
                publish_decision(d, it->deployment, b->data);
                if (it->verdict == FM_VERDICT_APPROVED && d->executor)
                        execute(d, plan, it, now);
        }
        if (plan->dropped_intents || plan->dropped_transitions) {
                d->plan_overflows++;
                log_error("reconcile produced more than the plan holds: %" PRIu64
                          " intents and %" PRIu64 " transitions dropped",
                          plan->dropped_intents, plan->dropped_transitions);
        }
}

static void publish_state(struct daemon *d, fm_ms now, bool online)
{
        if (!d->mqtt || !fm_mqtt_connected(d->mqtt))
                return;
        struct fm_buf *b = &d->scratch;
        fm_buf_reset(b);
        if (fm_audit_state(b, d->fleet, online, d->dry_run, now) < 0)
                return;
        (void)fm_mqtt_publish(d->mqtt, d->state_topic, b->data, b->len, 1, true);
        d->last_state_publish = now;
}

/* ---- MQTT ---------------------------------------------------------------------------------- */

static int kind_of_topic(const char *topic)
{
        const char *slash = strrchr(topic, '/');
        const char *k = slash ? slash + 1 : topic;
        for (int i = 0; i < _FM_EVENT_KIND_MAX; i++)
                if (strcmp(k, fm_event_kind_name((enum fm_event_kind)i)) == 0)
                        return i;
        return -1;
}

static void on_message(void *userdata, const char *topic, const void *payload, size_t len)
{
        struct daemon *d = userdata;
        fm_ms now = realtime_ms(d);
        enum fm_reject why = FM_REJECT_NONE;
        int kind = kind_of_topic(topic);

        if (kind >= 0)
                d->received[kind]++;
        double t0 = monotonic_s();
        int r = fm_decoder_decode(d->decoder, topic, strlen(topic), payload, len, now, d->ev, &why);
        fm_metric_hist_observe(&d->decode_seconds, monotonic_s() - t0);
        if (r == -EBADMSG)
                d->rejected[why]++;
        else if (r == 0)
                r = fm_core_apply(d->core, d->ev, &why);
        if (r == 0)
                return;

        unsigned suppressed = 0;
        if (!fm_ratelimit_test(&d->warn, now, &suppressed))
                return;
        if (suppressed)
                log_warning("%u more rejected events were not logged", suppressed);
        if (r == -EBADMSG)
                log_warning("rejected an event on %s: %s", topic, fm_reject_name(why));
        else
                log_error("applying an event on %s failed: %s", topic, strerror(-r));
}

static void notify_status(struct daemon *d)
{
        sd_notifyf(false, "STATUS=mqtt %s%s; %" PRIu32 " deployments, %" PRIu32 " instances",
                   d->mqtt && fm_mqtt_connected(d->mqtt) ? "connected" : "disconnected",
                   d->mqtt && fm_mqtt_subscribed(d->mqtt) ? ", subscribed" : "",
                   d->fleet->n_deployments, d->fleet->n_instances);
}

static void on_connected(void *userdata, bool session_present)
{
        struct daemon *d = userdata;
        d->connects++;
        log_info("connected to mqtt%s://%s:%u as %s (%s session)", d->cfg.mqtt.tls ? "s" : "",
                 d->cfg.mqtt.host, d->cfg.mqtt.port, d->cfg.mqtt.client_id,
                 session_present ? "resumed" : "new");
        publish_state(d, realtime_ms(d), true);
        notify_status(d);
}

static void on_subscribed(void *userdata)
{
        struct daemon *d = userdata;
        log_info("subscribed to %s/+/+/{health,kpi,feedback}", d->cfg.mqtt.topic_prefix);
        notify_status(d);
}

static void on_disconnected(void *userdata, int reason)
{
        struct daemon *d = userdata;
        log_warning("mqtt connection lost (reason %d); reconnecting", reason);
        notify_status(d);
}

static int start_mqtt(struct daemon *d)
{
        static const struct fm_mqtt_callbacks cb = {
                .message = on_message,
                .connected = on_connected,
                .subscribed = on_subscribed,
                .disconnected = on_disconnected,
        };
        struct fm_mqtt_config mc = d->cfg.mqtt;

        snprintf(d->state_topic, sizeof(d->state_topic), "%s/_fleetmedic/state", mc.topic_prefix);
        snprintf(mc.will_topic, sizeof(mc.will_topic), "%s", d->state_topic);
        snprintf(mc.will_payload, sizeof(mc.will_payload), "{\"online\":false}");
        int r = fm_mqtt_new(d->event, &mc, &cb, d, &d->mqtt);
        if (r < 0)
                log_error("mqtt client: %s", strerror(-r));
        return r;
}

/* ---- HTTP ---------------------------------------------------------------------------------- */

static int render_metrics(struct daemon *d, struct fm_buf *b)
{
        const struct fm_fleet *f = d->fleet;
        static const char *const kind_key[] = {"kind"};
        static const char *const reason_key[] = {"reason"};
        static const char *const dep_state_keys[] = {"deployment", "state"};
        static const char *const action_keys[] = {"policy", "outcome"};
        int r = 0;

#define TRY(x)                                                                                     \
        do {                                                                                       \
                if ((r = (x)) < 0)                                                                 \
                        return r;                                                                  \
        } while (0)

        TRY(fm_prom_family(b, "fleetmedic_events_received_total", "counter",
                           "MQTT messages received, by the kind in their topic."));
        for (int k = 0; k < _FM_EVENT_KIND_MAX; k++) {
                const char *v[] = {fm_event_kind_name((enum fm_event_kind)k)};
                TRY(fm_prom_sample(b, "fleetmedic_events_received_total", 1, kind_key, v,
                                   (double)d->received[k]));
        }
        TRY(fm_prom_family(b, "fleetmedic_events_accepted_total", "counter",
                           "Events decoded and applied to fleet state, by kind."));
        for (int k = 0; k < _FM_EVENT_KIND_MAX; k++) {
                const char *v[] = {fm_event_kind_name((enum fm_event_kind)k)};
                TRY(fm_prom_sample(b, "fleetmedic_events_accepted_total", 1, kind_key, v,
                                   (double)f->stats.accepted[k]));
        }
        TRY(fm_prom_family(b, "fleetmedic_events_rejected_total", "counter",
                           "Events rejected, by reason. A rejected event changes nothing."));
        for (int k = FM_REJECT_NONE + 1; k < _FM_REJECT_MAX; k++) {
                const char *v[] = {fm_reject_name((enum fm_reject)k)};
                TRY(fm_prom_sample(b, "fleetmedic_events_rejected_total", 1, reason_key, v,
                                   (double)(d->rejected[k] + f->stats.rejected[k])));
        }
        TRY(fm_prom_family(b, "fleetmedic_decode_seconds", "histogram",
                           "Time to decode one MQTT payload into an event."));
        TRY(fm_prom_hist(b, "fleetmedic_decode_seconds", 0, NULL, NULL, &d->decode_seconds));

        TRY(fm_prom_family(b, "fleetmedic_breaker_state", "gauge",
                           "Instances per deployment whose breaker is in each state."));
        for (const struct fm_deployment *dep = f->deployments; dep; dep = dep->next) {
                unsigned n[_FM_BREAKER_STATE_MAX] = {0};
                for (const struct fm_instance *i = dep->instances; i; i = i->next)
                        n[i->breaker.state]++;
                for (int s = 0; s < _FM_BREAKER_STATE_MAX; s++) {
                        const char *v[] = {dep->name,
                                           fm_breaker_state_name((enum fm_breaker_state)s)};
                        TRY(fm_prom_sample(b, "fleetmedic_breaker_state", 2, dep_state_keys, v,
                                           n[s]));
                }
        }
        TRY(fm_prom_family(b, "fleetmedic_breaker_transitions_total", "counter",
                           "Breaker state changes."));
        TRY(fm_prom_sample(b, "fleetmedic_breaker_transitions_total", 0, NULL, NULL,
                           (double)d->transitions));
        TRY(fm_prom_family(b, "fleetmedic_actions_total", "counter",
                           "Actions the policies asked for, by policy and the governor's "
                           "verdict (outcome)."));
        for (size_t p = 0; p < N_POLICY_NAMES; p++)
                for (int o = FM_VERDICT_APPROVED; o < _FM_VERDICT_MAX; o++) {
                        const char *v[] = {policy_names[p], fm_verdict_name((enum fm_verdict)o)};
                        TRY(fm_prom_sample(b, "fleetmedic_actions_total", 2, action_keys, v,
                                           (double)d->actions[p][o]));
                }
        TRY(fm_prom_family(b, "fleetmedic_executions_total", "counter",
                           "Approved actions by the backend that carried them (\"none\" when "
                           "none was reached) and what they came to (outcome)."));
        for (int k = 0; k <= _FM_BACKEND_KIND_MAX; k++)
                for (size_t o = 0; o < N_EXECUTION_OUTCOMES; o++) {
                        static const char *const exec_keys[] = {"backend", "outcome"};
                        const char *v[] = {k < _FM_BACKEND_KIND_MAX
                                                   ? fm_backend_kind_name((enum fm_backend_kind)k)
                                                   : "none",
                                           execution_outcomes[o]};
                        TRY(fm_prom_sample(b, "fleetmedic_executions_total", 2, exec_keys, v,
                                           (double)d->executions[k][o]));
                }
        TRY(fm_prom_family(b, "fleetmedic_plan_overflows_total", "counter",
                           "Reconcile ticks whose intents or transitions did not all fit."));
        TRY(fm_prom_sample(b, "fleetmedic_plan_overflows_total", 0, NULL, NULL,
                           (double)d->plan_overflows));

        TRY(fm_prom_family(b, "fleetmedic_fleet_deployments", "gauge", "Deployments tracked."));
        TRY(fm_prom_sample(b, "fleetmedic_fleet_deployments", 0, NULL, NULL, f->n_deployments));
        TRY(fm_prom_family(b, "fleetmedic_fleet_versions", "gauge", "Versions tracked."));
        TRY(fm_prom_sample(b, "fleetmedic_fleet_versions", 0, NULL, NULL, f->n_versions));
        TRY(fm_prom_family(b, "fleetmedic_fleet_instances", "gauge", "Instances tracked."));
        TRY(fm_prom_sample(b, "fleetmedic_fleet_instances", 0, NULL, NULL, f->n_instances));
        TRY(fm_prom_family(b, "fleetmedic_instances_forgotten_total", "counter",
                           "Instances forgotten after their silence."));
        TRY(fm_prom_sample(b, "fleetmedic_instances_forgotten_total", 0, NULL, NULL,
                           (double)f->stats.instances_forgotten));

        bool connected = d->mqtt && fm_mqtt_connected(d->mqtt);
        TRY(fm_prom_family(b, "fleetmedic_mqtt_connected", "gauge",
                           "1 while connected to the broker."));
        TRY(fm_prom_sample(b, "fleetmedic_mqtt_connected", 0, NULL, NULL, connected));
        TRY(fm_prom_family(b, "fleetmedic_mqtt_reconnects_total", "counter",
                           "Successful connections after the first."));
        TRY(fm_prom_sample(b, "fleetmedic_mqtt_reconnects_total", 0, NULL, NULL,
                           d->connects ? (double)(d->connects - 1) : 0));
        TRY(fm_prom_family(b, "fleetmedic_ready", "gauge", "1 once subscribed."));
        TRY(fm_prom_sample(b, "fleetmedic_ready", 0, NULL, NULL,
                           d->mqtt && fm_mqtt_subscribed(d->mqtt)));
        TRY(fm_prom_family(b, "fleetmedic_dry_run", "gauge", "1 when actions are only recorded."));
        TRY(fm_prom_sample(b, "fleetmedic_dry_run", 0, NULL, NULL, d->dry_run));
        TRY(fm_prom_family(b, "fleetmedic_config_reloads_total", "counter",
                           "Configuration reloads (SIGHUP) applied."));
        TRY(fm_prom_sample(b, "fleetmedic_config_reloads_total", 0, NULL, NULL,
                           (double)d->reloads));
        TRY(fm_prom_family(b, "fleetmedic_config_reload_failures_total", "counter",
                           "Reloads refused because the new configuration was invalid."));
        TRY(fm_prom_sample(b, "fleetmedic_config_reload_failures_total", 0, NULL, NULL,
                           (double)d->reload_failures));
#undef TRY
        return 0;
}

static unsigned http_handler(void *userdata, const char *path, struct fm_buf *body,
                             const char **content_type)
{
        struct daemon *d = userdata;
        bool ready = d->mqtt && fm_mqtt_subscribed(d->mqtt);

        if (strcmp(path, "/metrics") == 0) {
                *content_type = "text/plain; version=0.0.4; charset=utf-8";
                return render_metrics(d, body) < 0 ? 500 : 200;
        }
        if (strcmp(path, "/healthz") == 0)
                return fm_buf_printf(body, "ok\n") < 0 ? 500 : 200;
        if (strcmp(path, "/readyz") == 0) {
                if (ready)
                        return fm_buf_printf(body, "ready\n") < 0 ? 500 : 200;
                (void)fm_buf_printf(body, "not ready: %s\n",
                                    d->mqtt && fm_mqtt_connected(d->mqtt)
                                            ? "not subscribed yet"
                                            : "not connected to the broker");
                return 503;
        }
        if (strcmp(path, "/status") == 0) {
                fm_ms now = realtime_ms(d);
                const char *recent[RECENT_DECISIONS];
                for (unsigned k = 0; k < d->recent_n; k++)
                        recent[k] = d->recent[(d->recent_head + k) % RECENT_DECISIONS];
                const struct fm_status_info info = {
                        .version = FM_VERSION,
                        .uptime_s = (double)(now - d->started) / FM_MS_PER_S,
                        .dry_run = d->dry_run,
                        .ready = ready,
                        .mqtt_connected = d->mqtt && fm_mqtt_connected(d->mqtt),
                        .mqtt_subscribed = ready,
                        .mqtt_reconnects = d->connects ? d->connects - 1 : 0,
                        .recent = recent,
                        .n_recent = d->recent_n,
                };
                *content_type = "application/json";
                return fm_audit_status(body, d->fleet, &info, now) < 0 ? 500 : 200;
        }
        (void)fm_buf_printf(body, "not found; try /metrics, /healthz, /readyz or /status\n");
        return 404;
}

/* ---- timers and signals -------------------------------------------------------------------- */

static int arm(sd_event_source *s, fm_ms period)
{
        int r = sd_event_source_set_time_relative(s, (uint64_t)period * 1000);
        if (r < 0)
                return r;
        return sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
}

static int on_tick(sd_event_source *s, uint64_t usec, void *userdata)
{
        struct daemon *d = userdata;
        fm_ms now = realtime_ms(d);
        (void)usec;

        const struct fm_plan *plan;
        struct fm_core_tick_errors e;

        /*
         * Settle first, then decide: a decision taken while a previous run's
         * action is still being observed would meet its pending journal key
         * ("in_progress") and be lost. Events keep updating the fleet meanwhile.
         */
        if (d->settling) {
                if (fm_executor_in_flight(d->executor) > 0)
                        return arm(s, d->cfg.tick);
                d->settling = false;
                log_info("settled; deciding again");
        }

        (void)fm_core_tick(d->core, now, &plan, &e);
        if (e.reconcile < 0 && e.reconcile != -ENOBUFS)
                log_error("a policy failed: %s", strerror(-e.reconcile));
        if (e.governor < 0)
                log_error("governor review: %s", strerror(-e.governor));
        if (e.alerting_review < 0)
                log_error("governor review of alerts: %s", strerror(-e.alerting_review));
        handle_plan(d, plan, now);
        if (now - d->last_state_publish >= STATE_PUBLISH_INTERVAL_MS) {
                publish_state(d, now, true);
                notify_status(d);
        }
        return arm(s, d->cfg.tick);
}

static int on_watchdog(sd_event_source *s, uint64_t usec, void *userdata)
{
        struct daemon *d = userdata;
        (void)usec;
        sd_notify(false, "WATCHDOG=1");
        return arm(s, (fm_ms)(d->watchdog_usec / 2000));
}

static int on_stop(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata)
{
        struct daemon *d = userdata;
        log_info("received %s, stopping", strsignal((int)si->ssi_signo));
        sd_notify(false, "STOPPING=1");
        publish_state(d, realtime_ms(d), false);
        return sd_event_exit(sd_event_source_get_event(s), 0);
}

static bool mqtt_config_equal(const struct fm_mqtt_config *a, const struct fm_mqtt_config *b)
{
        return strcmp(a->host, b->host) == 0 && a->port == b->port && a->tls == b->tls &&
               a->protocol == b->protocol && strcmp(a->client_id, b->client_id) == 0 &&
               strcmp(a->topic_prefix, b->topic_prefix) == 0 && a->qos == b->qos &&
               a->session_expiry_s == b->session_expiry_s && a->keepalive_s == b->keepalive_s &&
               a->receive_maximum == b->receive_maximum &&
               strcmp(a->shared_group, b->shared_group) == 0 &&
               strcmp(a->username_file, b->username_file) == 0 &&
               strcmp(a->password_file, b->password_file) == 0 &&
               strcmp(a->ca_file, b->ca_file) == 0 && strcmp(a->cert_file, b->cert_file) == 0 &&
               strcmp(a->key_file, b->key_file) == 0 && a->reconnect_min == b->reconnect_min &&
               a->reconnect_max == b->reconnect_max;
}

/*
 * A reload keeps fleet state and applies what changed: log level, fleet and
 * breaker settings in place, the decoder, the tick; the MQTT client and the
 * HTTP server are recreated only when their settings changed. An invalid
 * file changes nothing.
 */
static int on_reload(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata)
{
        struct daemon *d = userdata;
        struct fm_config cfg;
        (void)s;
        (void)si;

        sd_notify(false, "RELOADING=1");
        if (load_config(d->opt, &cfg) < 0) {
                d->reload_failures++;
                log_error("reload refused: the configuration is invalid; keeping the running one");
                goto done;
        }
        cfg.fleet.hash_key[0] = d->cfg.fleet.hash_key[0];
        cfg.fleet.hash_key[1] = d->cfg.fleet.hash_key[1];
        force_dry_run(&cfg);
        /* every part is checked before any is applied: a refused reload changes nothing */
        struct fm_core_config core;
        fm_config_core(&cfg, &core);
        if (fm_core_reconfigure(d->core, &core) < 0) {
                d->reload_failures++;
                log_error("reload refused: settings rejected; keeping the running ones");
                goto done;
        }

        struct fm_decoder_config dcfg;
        struct fm_decoder *dec;
        fm_config_decoder(&cfg, &dcfg);
        if (fm_decoder_new(&dcfg, &dec) == 0) {
                fm_decoder_free(d->decoder);
                d->decoder = dec;
        }
        fm_log_set_level(cfg.log_level);

        bool mqtt_changed = !mqtt_config_equal(&cfg.mqtt, &d->cfg.mqtt);
        bool http_changed = strcmp(cfg.http_listen, d->cfg.http_listen) != 0;
        /* the backends hold connections, the Lease and in-flight actions: they stay as started */
        if (memcmp(&cfg.actuators, &d->cfg.actuators, sizeof(cfg.actuators)) != 0) {
                log_warning("actuators settings changed: they take effect at the next start; "
                            "the running ones are kept");
                cfg.actuators = d->cfg.actuators;
        }
        d->cfg = cfg;
        d->dry_run = cfg.dry_run;
        if (mqtt_changed) {
                log_info("mqtt settings changed: reconnecting");
                d->mqtt = fm_mqtt_free(d->mqtt);
                (void)start_mqtt(d);
        }
        if (http_changed) {
                struct fm_http *h = NULL;
                if (fm_http_new(d->event, cfg.http_listen, http_handler, d, &h) < 0) {
                        log_error("cannot listen on %s; keeping the old listener", cfg.http_listen);
                } else {
                        fm_http_free(d->http);
                        d->http = h;
                }
        }
        d->reloads++;
        log_info("configuration reloaded");
done:
        sd_notify(false, "READY=1");
        notify_status(d);
        return 0;
}

/* ---- lifecycle ----------------------------------------------------------------------------- */

/* The top-level dry_run holds the governor's: every intent is decided, none executed. */
static void force_dry_run(struct fm_config *cfg)
{
        if (cfg->dry_run)
                cfg->governor.dry_run = true;
}

static void daemon_done(struct daemon *d)
{
        d->mqtt = fm_mqtt_free(d->mqtt);
        d->http = fm_http_free(d->http);
        sd_event_source_unref(d->tick);
        sd_event_source_unref(d->watchdog);
        sd_event_unref(d->event);
        fm_executor_free(d->executor);
        fm_journal_free(d->journal);
        fm_core_free(d->core);
        fm_decoder_free(d->decoder);
        free(d->ev);
        fm_buf_done(&d->scratch);
        for (unsigned k = 0; k < d->recent_n; k++)
                free(d->recent[(d->recent_head + k) % RECENT_DECISIONS]);
}

static int daemon_start(struct daemon *d)
{
        struct fm_decoder_config dcfg;
        sigset_t mask;
        int r;

        r = ensure_state_dir(d->cfg.state_dir);
        if (r < 0) {
                log_error("state directory %s: %s", d->cfg.state_dir, strerror(-r));
                return r;
        }
        if (getrandom(d->cfg.fleet.hash_key, sizeof(d->cfg.fleet.hash_key), 0) !=
                    (ssize_t)sizeof(d->cfg.fleet.hash_key) ||
            getrandom(d->cfg.governor.hash_key, sizeof(d->cfg.governor.hash_key), 0) !=
                    (ssize_t)sizeof(d->cfg.governor.hash_key))
                log_warning("getrandom failed; name maps use the default hash key");

        fm_config_decoder(&d->cfg, &dcfg);
        d->ev = malloc(sizeof(*d->ev));
        if (!d->ev)
                return -ENOMEM;
        force_dry_run(&d->cfg);
        struct fm_core_config core;
        fm_config_core(&d->cfg, &core);
        if ((r = fm_decoder_new(&dcfg, &d->decoder)) < 0 ||
            (r = fm_core_new(&core, &d->core)) < 0) {
                log_error("cannot set up the decision core: %s", strerror(-r));
                return r;
        }
        d->fleet = fm_core_fleet(d->core);
        (void)fm_metric_hist_init(&d->decode_seconds, decode_bounds, ARRAY_SIZE(decode_bounds));
        d->warn = (struct fm_ratelimit){.interval = WARN_INTERVAL_MS, .burst = WARN_BURST};

        if ((r = sd_event_default(&d->event)) < 0)
                return r;
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGHUP);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        if ((r = sd_event_add_signal(d->event, NULL, SIGTERM, on_stop, d)) < 0 ||
            (r = sd_event_add_signal(d->event, NULL, SIGINT, on_stop, d)) < 0 ||
            (r = sd_event_add_signal(d->event, NULL, SIGHUP, on_reload, d)) < 0)
                return r;

        d->started = realtime_ms(d);
        r = fm_journal_open(d->cfg.state_dir, NULL, &d->journal);
        if (r < 0) {
                log_error("action journal in %s: %s%s", d->cfg.state_dir, strerror(-r),
                          r == -EBUSY ? " (another fleetmedic uses this state directory)" : "");
                return r;
        }
        uint64_t seed = 0;
        if (getrandom(&seed, sizeof(seed), 0) != (ssize_t)sizeof(seed))
                seed = (uint64_t)d->started;
        r = fm_executor_new(d->event, &d->cfg.actuators, d->journal, seed, on_execution, d,
                            &d->executor);
        if (r < 0) {
                log_error("actuators: %s%s", strerror(-r),
                          r == -EOPNOTSUPP ? " (a binding names a backend this build lacks)" : "");
                return r;
        }
        r = fm_executor_settle(d->executor, d->started);
        if (r > 0) {
                log_notice("settling %d actions a previous run began and did not finish; "
                           "no decision is taken until they are",
                           r);
                d->settling = true;
        }
        r = sd_event_add_time_relative(d->event, &d->tick, CLOCK_MONOTONIC,
                                       (uint64_t)d->cfg.tick * 1000, 0, on_tick, d);
        if (r < 0)
                return r;
        if (sd_watchdog_enabled(false, &d->watchdog_usec) > 0) {
                r = sd_event_add_time_relative(d->event, &d->watchdog, CLOCK_MONOTONIC,
                                               d->watchdog_usec / 2, 0, on_watchdog, d);
                if (r < 0)
                        return r;
        }

        r = fm_http_new(d->event, d->cfg.http_listen, http_handler, d, &d->http);
        if (r < 0) {
                log_error("cannot serve HTTP on %s: %s", d->cfg.http_listen, strerror(-r));
                return r;
        }
        return start_mqtt(d);
}

int fm_daemon_run(const struct fm_daemon_options *opt)
{
        struct daemon d = {.opt = opt};
        int r;

        r = load_config(opt, &d.cfg);
        if (r < 0)
                return r;
        fm_log_setup(d.cfg.log_level);
        if (!d.cfg.dry_run && d.cfg.actuators.n_bindings == 0)
                log_warning("dry_run is off, but actuators.bindings is empty: approved actions "
                            "end as unbound, none is executed");
        d.dry_run = d.cfg.dry_run;

        r = daemon_start(&d);
        if (r < 0)
                goto done;
        log_info("fleetmedic %s running: mqtt%s://%s:%u prefix %s, http %s (port %u)%s", FM_VERSION,
                 d.cfg.mqtt.tls ? "s" : "", d.cfg.mqtt.host, d.cfg.mqtt.port,
                 d.cfg.mqtt.topic_prefix, d.cfg.http_listen, fm_http_port(d.http),
                 d.dry_run ? ", dry-run" : "");
        sd_notify(false, "READY=1");
        notify_status(&d);
        r = sd_event_loop(d.event);
        if (r < 0)
                log_error("event loop failed: %s", strerror(-r));
done:
        daemon_done(&d);
        return r < 0 ? r : 0;
}
