/* SPDX-License-Identifier: MIT */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <locale.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include "config.h"
#include "event.h"
#include "http.h"
#include "mqtt.h"

#ifndef FM_SOURCE_ROOT
#error "FM_SOURCE_ROOT must name the source tree (meson: c_args -DFM_SOURCE_ROOT=...)"
#endif

#define EXAMPLE FM_SOURCE_ROOT "/packaging/fleetmedic.example.yaml"
#define FILE_MAX (1024 * 1024)

struct fixture {
        char dir[256];
        char config[512]; /* dir/config.yaml */
        char *out;        /* what fm_config_load() wrote to errors */
        size_t out_len;
        unsigned n_errors;
};

static void write_file(const char *path, const char *text, size_t len)
{
        FILE *f = fopen(path, "we");
        assert_non_null(f);
        assert_int_equal(fwrite(text, 1, len, f), len);
        assert_int_equal(fclose(f), 0);
}

static void make_file(struct fixture *fx, const char *name, const char *text)
{
        char path[512];
        snprintf(path, sizeof(path), "%s/%s", fx->dir, name);
        write_file(path, text, strlen(text));
}

static int setup(void **state)
{
        struct fixture *fx = calloc(1, sizeof(*fx));
        assert_non_null(fx);
        const char *tmp = getenv("TMPDIR");
        snprintf(fx->dir, sizeof(fx->dir), "%s/fm-test-config-XXXXXX", tmp && *tmp ? tmp : "/tmp");
        assert_non_null(mkdtemp(fx->dir));
        snprintf(fx->config, sizeof(fx->config), "%s/config.yaml", fx->dir);
        /* Stand-ins for credential and TLS files: only their existence matters. */
        make_file(fx, "user", "fleetmedic\n");
        make_file(fx, "pass", "secret\n");
        make_file(fx, "ca.pem", "ca\n");
        make_file(fx, "client.pem", "cert\n");
        make_file(fx, "client.key", "key\n");
        char sub[512];
        snprintf(sub, sizeof(sub), "%s/subdir", fx->dir);
        assert_int_equal(mkdir(sub, 0700), 0);
        *state = fx;
        return 0;
}

static int teardown(void **state)
{
        struct fixture *fx = *state;
        DIR *d = opendir(fx->dir);
        if (d) {
                struct dirent *de;
                while ((de = readdir(d))) {
                        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
                                continue;
                        if (unlinkat(dirfd(d), de->d_name, 0) < 0)
                                (void)unlinkat(dirfd(d), de->d_name, AT_REMOVEDIR);
                }
                closedir(d);
        }
        (void)rmdir(fx->dir);
        free(fx->out);
        free(fx);
        return 0;
}

/*
 * Expands the placeholders of a test text: @DIR@ is the fixture directory,
 * @A<n>@ is n letters 'a'. Returns a malloc'd string.
 */
static char *expand(const struct fixture *fx, const char *text)
{
        size_t cap = strlen(text) + 1, len = 0;
        for (const char *p = text; (p = strchr(p, '@')); p++)
                cap += strlen(fx->dir) + 4096;
        char *s = malloc(cap);
        assert_non_null(s);
        for (const char *p = text; *p;) {
                if (!strncmp(p, "@DIR@", 5)) {
                        len += (size_t)snprintf(s + len, cap - len, "%s", fx->dir);
                        p += 5;
                } else if (!strncmp(p, "@A", 2)) {
                        char *end;
                        unsigned long n = strtoul(p + 2, &end, 10);
                        assert_true(*end == '@' && n < 4096);
                        memset(s + len, 'a', n);
                        len += n;
                        p = end + 1;
                } else
                        s[len++] = *p++;
        }
        s[len] = '\0';
        return s;
}

/* Loads path, capturing the error output in fx->out. */
static int load_path(struct fixture *fx, const char *path, struct fm_config *cfg)
{
        free(fx->out);
        fx->out = NULL;
        FILE *errors = open_memstream(&fx->out, &fx->out_len);
        assert_non_null(errors);
        fx->n_errors = 12345;
        int r = fm_config_load(path, cfg, errors, &fx->n_errors);
        assert_int_equal(fclose(errors), 0);
        return r;
}

/* Writes text (placeholders expanded) to fx->config and loads it. */
static int load_text(struct fixture *fx, const char *text, struct fm_config *cfg)
{
        char *s = expand(fx, text);
        write_file(fx->config, s, strlen(s));
        free(s);
        return load_path(fx, fx->config, cfg);
}

static bool contains(const char *hay, const char *needle)
{
        return hay && strstr(hay, needle);
}

/* The actuators section, every backend's settings included. */
static void assert_actuators_equal(const struct fm_executor_config *a,
                                   const struct fm_executor_config *b)
{
        assert_int_equal(a->action_timeout, b->action_timeout);
        assert_int_equal(a->retry.backoff_base, b->retry.backoff_base);
        assert_int_equal(a->retry.backoff_cap, b->retry.backoff_cap);
        assert_int_equal(a->retry.max_attempts, b->retry.max_attempts);
        assert_int_equal(a->retry.breaker_failures, b->retry.breaker_failures);
        assert_int_equal(a->retry.breaker_cooloff, b->retry.breaker_cooloff);
        assert_int_equal(a->retry.breaker_cooloff_max, b->retry.breaker_cooloff_max);
        assert_int_equal(a->n_bindings, b->n_bindings);

        const struct fm_systemd_config *sa = &a->systemd, *sb = &b->systemd;
        assert_int_equal(sa->bus, sb->bus);
        assert_string_equal(sa->address, sb->address);
        assert_int_equal(sa->job_timeout, sb->job_timeout);
        assert_string_equal(sa->job_mode, sb->job_mode);
        assert_int_equal(sa->rollback_order, sb->rollback_order);
        assert_int_equal(sa->n_deployments, sb->n_deployments);
        for (uint32_t i = 0; i < sa->n_deployments; i++) {
                assert_string_equal(sa->deployments[i].deployment, sb->deployments[i].deployment);
                assert_string_equal(sa->deployments[i].unit, sb->deployments[i].unit);
                assert_string_equal(sa->deployments[i].instance_unit,
                                    sb->deployments[i].instance_unit);
        }

        const struct fm_kube_config *ka = &a->kubernetes, *kb = &b->kubernetes;
        assert_int_equal(ka->in_cluster, kb->in_cluster);
        assert_string_equal(ka->sa_dir, kb->sa_dir);
        assert_string_equal(ka->server, kb->server);
        assert_string_equal(ka->token_file, kb->token_file);
        assert_string_equal(ka->ca_file, kb->ca_file);
        assert_string_equal(ka->namespace_, kb->namespace_);
        assert_int_equal(ka->timeout, kb->timeout);
        assert_int_equal(ka->token_reread, kb->token_reread);
        assert_int_equal(ka->traffic, kb->traffic);
        assert_int_equal(ka->events, kb->events);
        assert_int_equal(ka->n_mappings, kb->n_mappings);
        for (uint32_t i = 0; i < ka->n_mappings; i++) {
                const struct fm_kube_mapping *x = &ka->mapping[i], *y = &kb->mapping[i];
                assert_string_equal(x->deployment, y->deployment);
                assert_int_equal(x->kind, y->kind);
                assert_string_equal(x->workload, y->workload);
                assert_string_equal(x->container, y->container);
                assert_string_equal(x->image, y->image);
                assert_string_equal(x->storage_uri, y->storage_uri);
                assert_string_equal(x->traffic_name, y->traffic_name);
                assert_string_equal(x->destination, y->destination);
        }
        const struct fm_lease_config *la = &ka->lease, *lb = &kb->lease;
        assert_int_equal(la->enabled, lb->enabled);
        assert_string_equal(la->name, lb->name);
        assert_string_equal(la->namespace_, lb->namespace_);
        assert_string_equal(la->identity, lb->identity);
        assert_int_equal(la->lease_duration, lb->lease_duration);
        assert_int_equal(la->renew_deadline, lb->renew_deadline);
        assert_int_equal(la->retry_period, lb->retry_period);
        assert_int_equal(la->release_on_stop, lb->release_on_stop);

        const struct fm_haproxy_config *ha = &a->haproxy, *hb = &b->haproxy;
        assert_string_equal(ha->socket, hb->socket);
        assert_int_equal(ha->timeout, hb->timeout);
        assert_int_equal(ha->n_mappings, hb->n_mappings);
        for (uint32_t i = 0; i < ha->n_mappings; i++) {
                assert_string_equal(ha->mapping[i].deployment, hb->mapping[i].deployment);
                assert_string_equal(ha->mapping[i].backend, hb->mapping[i].backend);
                assert_string_equal(ha->mapping[i].server, hb->mapping[i].server);
        }

        const struct fm_mlflow_config *ma = &a->mlflow, *mb = &b->mlflow;
        assert_string_equal(ma->uri, mb->uri);
        assert_string_equal(ma->ca_file, mb->ca_file);
        assert_string_equal(ma->token_file, mb->token_file);
        assert_string_equal(ma->username_file, mb->username_file);
        assert_string_equal(ma->password_file, mb->password_file);
        assert_string_equal(ma->alias, mb->alias);
        assert_string_equal(ma->threshold_tag, mb->threshold_tag);
        assert_string_equal(ma->rolled_back_tag, mb->rolled_back_tag);
        assert_int_equal(ma->timeout, mb->timeout);
        assert_int_equal(ma->n_models, mb->n_models);
        for (uint32_t i = 0; i < ma->n_models; i++) {
                assert_string_equal(ma->models[i].deployment, mb->models[i].deployment);
                assert_string_equal(ma->models[i].model, mb->models[i].model);
        }

        const struct fm_alertmanager_config *aa = &a->alertmanager, *ab = &b->alertmanager;
        assert_string_equal(aa->url, ab->url);
        assert_string_equal(aa->ca_file, ab->ca_file);
        assert_int_equal(aa->timeout, ab->timeout);
        assert_string_equal(aa->alertname, ab->alertname);
        assert_string_equal(aa->generator_url, ab->generator_url);
        assert_int_equal(aa->ttl, ab->ttl);
        assert_int_equal(aa->n_labels, ab->n_labels);
        for (uint32_t i = 0; i < aa->n_labels; i++) {
                assert_string_equal(aa->labels[i].name, ab->labels[i].name);
                assert_string_equal(aa->labels[i].value, ab->labels[i].value);
        }
}

/* Field by field: struct assignment need not copy padding, so no memcmp. */
static void assert_config_equal(const struct fm_config *a, const struct fm_config *b)
{
        const struct fm_mqtt_config *x = &a->mqtt, *y = &b->mqtt;
        assert_string_equal(x->host, y->host);
        assert_int_equal(x->port, y->port);
        assert_int_equal(x->tls, y->tls);
        assert_int_equal(x->protocol, y->protocol);
        assert_string_equal(x->client_id, y->client_id);
        assert_string_equal(x->topic_prefix, y->topic_prefix);
        assert_int_equal(x->qos, y->qos);
        assert_int_equal(x->session_expiry_s, y->session_expiry_s);
        assert_int_equal(x->keepalive_s, y->keepalive_s);
        assert_int_equal(x->receive_maximum, y->receive_maximum);
        assert_string_equal(x->shared_group, y->shared_group);
        assert_string_equal(x->username_file, y->username_file);
        assert_string_equal(x->password_file, y->password_file);
        assert_string_equal(x->ca_file, y->ca_file);
        assert_string_equal(x->cert_file, y->cert_file);
        assert_string_equal(x->key_file, y->key_file);
        assert_int_equal(x->reconnect_min, y->reconnect_min);
        assert_int_equal(x->reconnect_max, y->reconnect_max);
        assert_string_equal(x->will_topic, y->will_topic);
        assert_string_equal(x->will_payload, y->will_payload);
        assert_string_equal(a->http_listen, b->http_listen);
        assert_string_equal(a->state_dir, b->state_dir);
        assert_int_equal(a->dry_run, b->dry_run);
        assert_int_equal(a->tick, b->tick);
        assert_int_equal(a->log_level, b->log_level);
        assert_int_equal(a->max_payload, b->max_payload);
        assert_int_equal(a->max_skew, b->max_skew);
        const struct fm_fleet_config *f = &a->fleet, *g = &b->fleet;
        assert_int_equal(f->max_deployments, g->max_deployments);
        assert_int_equal(f->max_versions, g->max_versions);
        assert_int_equal(f->max_versions_per_deployment, g->max_versions_per_deployment);
        assert_int_equal(f->max_instances, g->max_instances);
        assert_int_equal(f->max_instances_per_deployment, g->max_instances_per_deployment);
        assert_int_equal(f->forget_after, g->forget_after);
        assert_int_equal(f->version_retention, g->version_retention);
        assert_int_equal(f->gauge_tau, g->gauge_tau);
        assert_int_equal(f->latency_window, g->latency_window);
        assert_int_equal(f->latency_slots, g->latency_slots);
        assert_int_equal(f->hash_key[0], g->hash_key[0]);
        assert_int_equal(f->hash_key[1], g->hash_key[1]);
        const struct fm_breaker_config *p = &f->breaker, *q = &g->breaker;
        assert_true(p->failure_rate == q->failure_rate);
        assert_true(p->slow_rate == q->slow_rate);
        assert_true(p->slow_call_ms == q->slow_call_ms);
        assert_int_equal(p->min_requests, q->min_requests);
        assert_int_equal(p->window, q->window);
        assert_int_equal(p->window_slots, q->window_slots);
        assert_int_equal(p->open_base, q->open_base);
        assert_int_equal(p->open_max, q->open_max);
        assert_int_equal(p->probes, q->probes);
        assert_int_equal(p->heartbeat_timeout, q->heartbeat_timeout);
        assert_int_equal(f->outcomes_per_version, g->outcomes_per_version);

        const struct fm_governor_config *ga = &a->governor, *gb = &b->governor;
        assert_int_equal(ga->paused, gb->paused);
        assert_int_equal(ga->n_dry_run_policies, gb->n_dry_run_policies);
        assert_int_equal(ga->n_windows, gb->n_windows);
        for (int k = 0; k < _FM_ACTION_MAX; k++)
                assert_int_equal(ga->cooldown[k], gb->cooldown[k]);
        assert_int_equal(ga->rate_per_min, gb->rate_per_min);
        assert_int_equal(ga->rate_burst, gb->rate_burst);
        assert_int_equal(ga->alert_rate_per_min, gb->alert_rate_per_min);
        assert_int_equal(ga->alert_burst, gb->alert_burst);
        assert_true(ga->capacity_floor == gb->capacity_floor);
        assert_int_equal(ga->capacity_min_instances, gb->capacity_min_instances);
        assert_int_equal(ga->restart_settle, gb->restart_settle);
        assert_int_equal(ga->restart_budget, gb->restart_budget);
        assert_int_equal(ga->restart_span, gb->restart_span);
        assert_true(ga->freeze_share == gb->freeze_share);
        assert_int_equal(ga->freeze_span, gb->freeze_span);
        assert_int_equal(ga->freeze_min_silent, gb->freeze_min_silent);

        assert_int_equal(a->alerting.resolve_after, b->alerting.resolve_after);
        assert_true(a->alerting.slo_target == b->alerting.slo_target);
        assert_int_equal(a->alerting.slo_period, b->alerting.slo_period);
        assert_int_equal(a->alerting.slo_min_requests, b->alerting.slo_min_requests);

        const struct fm_policies_config *pa = &a->policies, *pb = &b->policies;
        assert_int_equal(pa->autoscale_enabled, pb->autoscale_enabled);
        assert_int_equal(pa->traffic_enabled, pb->traffic_enabled);
        assert_int_equal(pa->canary_enabled, pb->canary_enabled);
        assert_int_equal(pa->rollback_enabled, pb->rollback_enabled);
        assert_int_equal(pa->autotune_enabled, pb->autotune_enabled);
        const struct fm_autoscale_config *xa = &pa->autoscale, *xb = &pb->autoscale;
        assert_int_equal(xa->min_replicas, xb->min_replicas);
        assert_int_equal(xa->max_replicas, xb->max_replicas);
        for (int k = 0; k < _FM_AUTOSCALE_METRIC_MAX; k++) {
                assert_int_equal(xa->metric[k].enabled, xb->metric[k].enabled);
                assert_true(xa->metric[k].target == xb->metric[k].target);
        }
        assert_true(xa->tolerance == xb->tolerance);
        assert_int_equal(xa->up_window, xb->up_window);
        assert_int_equal(xa->down_window, xb->down_window);
        assert_int_equal(xa->up.percent, xb->up.percent);
        assert_int_equal(xa->up.pods, xb->up.pods);
        assert_int_equal(xa->up.period, xb->up.period);
        assert_int_equal(xa->down.percent, xb->down.percent);
        assert_int_equal(xa->down.pods, xb->down.pods);
        assert_int_equal(xa->down.period, xb->down.period);
        assert_int_equal(xa->cold_start, xb->cold_start);
        assert_int_equal(xa->predictive, xb->predictive);
        assert_true(xa->holt_alpha == xb->holt_alpha && xa->holt_beta == xb->holt_beta);
        assert_int_equal(pa->traffic.max_ejection_percent, pb->traffic.max_ejection_percent);
        assert_true(pa->traffic.healthy_floor == pb->traffic.healthy_floor);
        assert_int_equal(pa->traffic.probe_percent, pb->traffic.probe_percent);
        assert_int_equal(pa->canary.n_steps, pb->canary.n_steps);
        for (uint32_t k = 0; k < pa->canary.n_steps; k++)
                assert_int_equal(pa->canary.steps[k], pb->canary.steps[k]);
        assert_int_equal(pa->canary.interval, pb->canary.interval);
        assert_int_equal(pa->canary.min_requests, pb->canary.min_requests);
        assert_true(pa->canary.error_margin == pb->canary.error_margin);
        assert_true(pa->canary.confidence == pb->canary.confidence);
        assert_true(pa->canary.max_p99_ratio == pb->canary.max_p99_ratio);
        const struct fm_rollback_config *ra = &pa->rollback, *rb = &pb->rollback;
        assert_true(ra->accuracy_drop == rb->accuracy_drop);
        assert_true(ra->error_rate_ratio == rb->error_rate_ratio);
        assert_true(ra->p99_ratio == rb->p99_ratio);
        assert_true(ra->slo_target == rb->slo_target);
        assert_int_equal(ra->slo_period, rb->slo_period);
        assert_true(ra->psi_threshold == rb->psi_threshold);
        assert_int_equal(ra->psi_min_samples, rb->psi_min_samples);
        assert_int_equal(ra->min_requests, rb->min_requests);
        assert_int_equal(ra->min_outcomes, rb->min_outcomes);
        assert_true(ra->confidence == rb->confidence);
        assert_int_equal(ra->known_good_after, rb->known_good_after);
        assert_int_equal(ra->cooldown, rb->cooldown);
        const struct fm_tune_config *ta = &pa->tune, *tb = &pb->tune;
        assert_true(ta->grid.lo == tb->grid.lo && ta->grid.hi == tb->grid.hi &&
                    ta->grid.step == tb->grid.step);
        assert_int_equal(ta->objective.kind, tb->objective.kind);
        assert_true(ta->objective.min_recall == tb->objective.min_recall);
        assert_true(ta->objective.c_fp == tb->objective.c_fp);
        assert_true(ta->objective.c_fn == tb->objective.c_fn);
        assert_int_equal(ta->min_positives, tb->min_positives);
        assert_int_equal(ta->min_negatives, tb->min_negatives);
        assert_true(ta->min_gain == tb->min_gain && ta->max_step == tb->max_step);
        assert_int_equal(pa->tune_window, pb->tune_window);
        assert_int_equal(pa->tune_cooldown, pb->tune_cooldown);
        assert_true(pa->initial_threshold == pb->initial_threshold);
        assert_actuators_equal(&a->actuators, &b->actuators);
}

/* ---- defaults ----------------------------------------------------------------------------------
 */

static void test_defaults(void **state)
{
        (void)state;
        struct fm_config cfg;
        memset(&cfg, 0xa5, sizeof(cfg));
        fm_config_default(&cfg);

        assert_string_equal(cfg.mqtt.host, "127.0.0.1");
        assert_int_equal(cfg.mqtt.port, 1883);
        assert_false(cfg.mqtt.tls);
        assert_int_equal(cfg.mqtt.protocol, 5);
        assert_string_equal(cfg.mqtt.client_id, "fleetmedic");
        assert_string_equal(cfg.mqtt.topic_prefix, "fleet");
        assert_int_equal(cfg.mqtt.qos, 1);
        assert_int_equal(cfg.mqtt.session_expiry_s, 3600);
        assert_int_equal(cfg.mqtt.keepalive_s, 30);
        assert_int_equal(cfg.mqtt.receive_maximum, 100);
        assert_string_equal(cfg.mqtt.shared_group, "");
        assert_string_equal(cfg.mqtt.username_file, "");
        assert_string_equal(cfg.mqtt.password_file, "");
        assert_string_equal(cfg.mqtt.ca_file, "");
        assert_string_equal(cfg.mqtt.cert_file, "");
        assert_string_equal(cfg.mqtt.key_file, "");
        assert_int_equal(cfg.mqtt.reconnect_min, 1000);
        assert_int_equal(cfg.mqtt.reconnect_max, 60000);
        assert_string_equal(cfg.mqtt.will_topic, "");
        assert_string_equal(cfg.mqtt.will_payload, "");
        assert_string_equal(cfg.http_listen, FM_HTTP_DEFAULT_LISTEN);
        assert_string_equal(cfg.state_dir, "/var/lib/fleetmedic");
        assert_true(cfg.dry_run);
        assert_int_equal(cfg.tick, 1000);
        assert_int_equal(cfg.log_level, LOG_INFO);
        assert_int_equal(cfg.max_payload, 65536);
        assert_int_equal(cfg.max_skew, 300000);

        struct fm_fleet_config fleet;
        fm_fleet_config_default(&fleet);
        assert_int_equal(cfg.fleet.max_instances, fleet.max_instances);
        assert_int_equal(cfg.fleet.breaker.window, fleet.breaker.window);
        assert_int_equal(fm_fleet_config_validate(&cfg.fleet), 0);

        struct fm_mqtt_config m;
        memset(&m, 0xa5, sizeof(m));
        fm_mqtt_config_default(&m);
        assert_string_equal(m.host, cfg.mqtt.host);
        assert_string_equal(m.will_topic, "");
}

static void test_decoder(void **state)
{
        (void)state;
        struct fm_config cfg;
        fm_config_default(&cfg);
        struct fm_decoder_config dc, def;
        fm_config_decoder(&cfg, &dc);
        fm_decoder_config_default(&def);
        assert_int_equal(dc.max_payload, def.max_payload);
        assert_int_equal(dc.max_skew, def.max_skew);
        assert_string_equal(dc.prefix, def.prefix);
        assert_ptr_equal(dc.prefix, cfg.mqtt.topic_prefix);

        snprintf(cfg.mqtt.topic_prefix, sizeof(cfg.mqtt.topic_prefix), "acme/fleet");
        cfg.max_payload = 1024;
        cfg.max_skew = 5000;
        fm_config_decoder(&cfg, &dc);
        assert_string_equal(dc.prefix, "acme/fleet");
        assert_int_equal(dc.max_payload, 1024);
        assert_int_equal(dc.max_skew, 5000);
        struct fm_decoder *d = NULL;
        assert_int_equal(fm_decoder_new(&dc, &d), 0);
        fm_decoder_free(d);
}

static void test_log_level(void **state)
{
        (void)state;
        assert_int_equal(fm_config_log_level("err"), LOG_ERR);
        assert_int_equal(fm_config_log_level("warning"), LOG_WARNING);
        assert_int_equal(fm_config_log_level("notice"), LOG_NOTICE);
        assert_int_equal(fm_config_log_level("info"), LOG_INFO);
        assert_int_equal(fm_config_log_level("debug"), LOG_DEBUG);
        assert_int_equal(fm_config_log_level("Info"), -EINVAL);
        assert_int_equal(fm_config_log_level("error"), -EINVAL);
        assert_int_equal(fm_config_log_level(""), -EINVAL);
        assert_int_equal(fm_config_log_level(NULL), -EINVAL);
}

/* ---- valid files --------------------------------------------------------------------------------
 */

static const char full_yaml[] = "# every key, none at its default\n"
                                "mqtt:\n"
                                "  url: mqtts://[2001:db8::1]:8884\n"
                                "  client_id: fm-test-1\n"
                                "  protocol: 3.1.1\n"
                                "  topic_prefix: acme/fleet\n"
                                "  qos: 0\n"
                                "  session_expiry_s: 7200\n"
                                "  keepalive_s: 0\n"
                                "  receive_maximum: 250\n"
                                "  shared_group: ctl_group-1\n"
                                "  username_file: @DIR@/user\n"
                                "  password_file: '@DIR@/pass'\n"
                                "  tls:\n"
                                "    ca_file: @DIR@/ca.pem\n"
                                "    cert_file: \"@DIR@/client.pem\"\n"
                                "    key_file: @DIR@/client.key\n"
                                "  reconnect_min_s: 0.25\n"
                                "  reconnect_max_s: 120\n"
                                "http:\n"
                                "  listen: \"[::1]:0\"\n"
                                "state_dir: /srv/fleetmedic/state\n"
                                "dry_run: false\n"
                                "tick_s: 0.5\n"
                                "log:\n"
                                "  level: debug\n"
                                "decoder:\n"
                                "  max_payload_bytes: 131072\n"
                                "  max_skew_s: 60.5\n"
                                "fleet:\n"
                                "  max_deployments: 10\n"
                                "  max_versions: 20\n"
                                "  max_versions_per_deployment: 4\n"
                                "  max_instances: 1000\n"
                                "  max_instances_per_deployment: 100\n"
                                "  forget_after_s: 600\n"
                                "  version_retention_s: 3600\n"
                                "  gauge_tau_s: 10\n"
                                "  latency_window_s: 120\n"
                                "  latency_slots: 6\n"
                                "breaker:\n"
                                "  failure_rate: 0.25\n"
                                "  slow_call_rate: 1\n"
                                "  slow_call_ms: 250.5\n"
                                "  min_requests: 5\n"
                                "  window_s: 60\n"
                                "  window_slots: 12\n"
                                "  open_base_s: 10\n"
                                "  open_max_s: 3600\n"
                                "  probes: 3\n"
                                "  heartbeat_timeout_s: 15\n";

static const char full_json[] =
        "{\n"
        "  \"mqtt\": {\n"
        "    \"url\": \"mqtts://[2001:db8::1]:8884\", \"client_id\": \"fm-test-1\",\n"
        "    \"protocol\": \"3.1.1\", \"topic_prefix\": \"acme/fleet\", \"qos\": 0,\n"
        "    \"session_expiry_s\": 7200, \"keepalive_s\": 0, \"receive_maximum\": 250,\n"
        "    \"shared_group\": \"ctl_group-1\",\n"
        "    \"username_file\": \"@DIR@/user\", \"password_file\": \"@DIR@/pass\",\n"
        "    \"tls\": {\"ca_file\": \"@DIR@/ca.pem\", \"cert_file\": \"@DIR@/client.pem\",\n"
        "            \"key_file\": \"@DIR@/client.key\"},\n"
        "    \"reconnect_min_s\": 0.25, \"reconnect_max_s\": 120\n"
        "  },\n"
        "  \"http\": {\"listen\": \"[::1]:0\"},\n"
        "  \"state_dir\": \"/srv/fleetmedic/state\",\n"
        "  \"dry_run\": false,\n"
        "  \"tick_s\": 5e-1,\n"
        "  \"log\": {\"level\": \"debug\"},\n"
        "  \"decoder\": {\"max_payload_bytes\": 131072, \"max_skew_s\": 60.5},\n"
        "  \"fleet\": {\n"
        "    \"max_deployments\": 10, \"max_versions\": 20, \"max_versions_per_deployment\": 4,\n"
        "    \"max_instances\": 1000, \"max_instances_per_deployment\": 100,\n"
        "    \"forget_after_s\": 600, \"version_retention_s\": 3600, \"gauge_tau_s\": 10,\n"
        "    \"latency_window_s\": 120, \"latency_slots\": 6\n"
        "  },\n"
        "  \"breaker\": {\n"
        "    \"failure_rate\": 0.25, \"slow_call_rate\": 1, \"slow_call_ms\": 250.5,\n"
        "    \"min_requests\": 5, \"window_s\": 60, \"window_slots\": 12, \"open_base_s\": 10,\n"
        "    \"open_max_s\": 3600, \"probes\": 3, \"heartbeat_timeout_s\": 15\n"
        "  }\n"
        "}\n";

static void assert_full(const struct fixture *fx, const struct fm_config *cfg)
{
        char path[512];
        assert_string_equal(cfg->mqtt.host, "2001:db8::1");
        assert_int_equal(cfg->mqtt.port, 8884);
        assert_true(cfg->mqtt.tls);
        assert_int_equal(cfg->mqtt.protocol, 4);
        assert_string_equal(cfg->mqtt.client_id, "fm-test-1");
        assert_string_equal(cfg->mqtt.topic_prefix, "acme/fleet");
        assert_int_equal(cfg->mqtt.qos, 0);
        assert_int_equal(cfg->mqtt.session_expiry_s, 7200);
        assert_int_equal(cfg->mqtt.keepalive_s, 0);
        assert_int_equal(cfg->mqtt.receive_maximum, 250);
        assert_string_equal(cfg->mqtt.shared_group, "ctl_group-1");
        snprintf(path, sizeof(path), "%s/user", fx->dir);
        assert_string_equal(cfg->mqtt.username_file, path);
        snprintf(path, sizeof(path), "%s/pass", fx->dir);
        assert_string_equal(cfg->mqtt.password_file, path);
        snprintf(path, sizeof(path), "%s/ca.pem", fx->dir);
        assert_string_equal(cfg->mqtt.ca_file, path);
        snprintf(path, sizeof(path), "%s/client.pem", fx->dir);
        assert_string_equal(cfg->mqtt.cert_file, path);
        snprintf(path, sizeof(path), "%s/client.key", fx->dir);
        assert_string_equal(cfg->mqtt.key_file, path);
        assert_int_equal(cfg->mqtt.reconnect_min, 250);
        assert_int_equal(cfg->mqtt.reconnect_max, 120000);
        assert_string_equal(cfg->http_listen, "[::1]:0");
        assert_string_equal(cfg->state_dir, "/srv/fleetmedic/state");
        assert_false(cfg->dry_run);
        assert_int_equal(cfg->tick, 500);
        assert_int_equal(cfg->log_level, LOG_DEBUG);
        assert_int_equal(cfg->max_payload, 131072);
        assert_int_equal(cfg->max_skew, 60500);
        assert_int_equal(cfg->fleet.max_deployments, 10);
        assert_int_equal(cfg->fleet.max_versions, 20);
        assert_int_equal(cfg->fleet.max_versions_per_deployment, 4);
        assert_int_equal(cfg->fleet.max_instances, 1000);
        assert_int_equal(cfg->fleet.max_instances_per_deployment, 100);
        assert_int_equal(cfg->fleet.forget_after, 600000);
        assert_int_equal(cfg->fleet.version_retention, 3600000);
        assert_int_equal(cfg->fleet.gauge_tau, 10000);
        assert_int_equal(cfg->fleet.latency_window, 120000);
        assert_int_equal(cfg->fleet.latency_slots, 6);
        const struct fm_breaker_config *b = &cfg->fleet.breaker;
        assert_true(b->failure_rate == 0.25);
        assert_true(b->slow_rate == 1.0);
        assert_true(b->slow_call_ms == 250.5);
        assert_int_equal(b->min_requests, 5);
        assert_int_equal(b->window, 60000);
        assert_int_equal(b->window_slots, 12);
        assert_int_equal(b->open_base, 10000);
        assert_int_equal(b->open_max, 3600000);
        assert_int_equal(b->probes, 3);
        assert_int_equal(b->heartbeat_timeout, 15000);
        assert_int_equal(fm_fleet_config_validate(&cfg->fleet), 0);
}

static void test_full_yaml(void **state)
{
        struct fixture *fx = *state;
        struct fm_config cfg;
        int r = load_text(fx, full_yaml, &cfg);
        if (r != 0)
                print_error("%s", fx->out);
        assert_int_equal(r, 0);
        assert_int_equal(fx->n_errors, 0);
        assert_int_equal(fx->out_len, 0);
        assert_full(fx, &cfg);
}

static void test_full_json(void **state)
{
        struct fixture *fx = *state;
        struct fm_config from_yaml, from_json;
        assert_int_equal(load_text(fx, full_yaml, &from_yaml), 0);

        char *s = expand(fx, full_json);
        char path[512];
        snprintf(path, sizeof(path), "%s/config.json", fx->dir);
        write_file(path, s, strlen(s));
        free(s);
        int r = load_path(fx, path, &from_json);
        if (r != 0)
                print_error("%s", fx->out);
        assert_int_equal(r, 0);
        assert_int_equal(fx->n_errors, 0);
        assert_full(fx, &from_json);
        assert_config_equal(&from_yaml, &from_json);
}

/* Files that say nothing give the defaults. */
static void test_empty(void **state)
{
        struct fixture *fx = *state;
        static const char *const texts[] = {
                "",      "# nothing but comments\n\n# here\n",
                "---\n", "--- ~\n...\n",
                "{}\n",  "mqtt:\n  tls:\n    # ca_file: /etc/ssl/ca.pem\nfleet:\nbreaker: {}\n",
        };
        struct fm_config def;
        fm_config_default(&def);
        for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
                struct fm_config cfg;
                int r = load_text(fx, texts[i], &cfg);
                if (r != 0)
                        print_error("case %zu:\n%s", i, fx->out);
                assert_int_equal(r, 0);
                assert_int_equal(fx->n_errors, 0);
                assert_config_equal(&cfg, &def);
        }
}

/* YAML 1.2 core schema: what plain scalars and core tags resolve to. */
static void test_scalars(void **state)
{
        struct fixture *fx = *state;
        struct fm_config cfg;
        int r = load_text(fx,
                          "mqtt:\n"
                          "  receive_maximum: 0x40\n"
                          "  session_expiry_s: 0o17\n"
                          "  keepalive_s: +10\n"
                          "  qos: !!int 0\n"
                          "  client_id: !!str 123\n"
                          "  protocol: \"5\"\n"
                          "  topic_prefix: !str_is_not_a_tag_here\n"
                          "state_dir: !!str /x\n"
                          "tick_s: !!float 2\n"
                          "dry_run: False\n"
                          "fleet:\n"
                          "  gauge_tau_s: 1e1\n"
                          "  forget_after_s: .5\n"
                          "  version_retention_s: 007\n"
                          "breaker:\n"
                          "  failure_rate: !!float 1\n"
                          "  slow_call_rate: 0.0005e3\n"
                          "  min_requests: 4294967295\n"
                          "  open_base_s: 0.0015\n"
                          "  open_max_s: 604800\n"
                          "log: {level: \"err\"}\n",
                          &cfg);
        /* "!str_is_not_a_tag_here" is a local tag: refused. */
        assert_int_equal(r, -EINVAL);
        assert_int_equal(fx->n_errors, 1);
        assert_true(contains(fx->out, ":8: mqtt.topic_prefix: unsupported tag"));

        r = load_text(fx,
                      "mqtt:\n"
                      "  receive_maximum: 0x40\n"
                      "  session_expiry_s: 0o17\n"
                      "  keepalive_s: +10\n"
                      "  qos: !!int 0\n"
                      "  client_id: !!str 123\n"
                      "  protocol: \"5\"\n"
                      "  topic_prefix: ! 42\n"
                      "state_dir: !!str /x\n"
                      "tick_s: !!float 2\n"
                      "dry_run: False\n"
                      "fleet:\n"
                      "  gauge_tau_s: 1e1\n"
                      "  forget_after_s: .5\n"
                      "  version_retention_s: 007\n"
                      "breaker:\n"
                      "  failure_rate: !!float 1\n"
                      "  slow_call_rate: 0.0005e3\n"
                      "  min_requests: 4294967295\n"
                      "  open_base_s: 0.0015\n"
                      "  open_max_s: 604800\n"
                      "log: {level: \"err\"}\n",
                      &cfg);
        if (r != 0)
                print_error("%s", fx->out);
        assert_int_equal(r, 0);
        assert_int_equal(cfg.mqtt.receive_maximum, 64);
        assert_int_equal(cfg.mqtt.session_expiry_s, 15);
        assert_int_equal(cfg.mqtt.keepalive_s, 10);
        assert_int_equal(cfg.mqtt.qos, 0);
        assert_string_equal(cfg.mqtt.client_id, "123");
        assert_int_equal(cfg.mqtt.protocol, 5);
        assert_string_equal(cfg.mqtt.topic_prefix, "42");
        assert_string_equal(cfg.state_dir, "/x");
        assert_int_equal(cfg.tick, 2000);
        assert_false(cfg.dry_run);
        assert_int_equal(cfg.fleet.gauge_tau, 10000);
        assert_int_equal(cfg.fleet.forget_after, 500);
        assert_int_equal(cfg.fleet.version_retention, 7000);
        assert_true(cfg.fleet.breaker.failure_rate == 1.0);
        assert_true(cfg.fleet.breaker.slow_rate == 0.5);
        assert_int_equal(cfg.fleet.breaker.min_requests, UINT32_MAX);
        assert_int_equal(cfg.fleet.breaker.open_base, 2); /* 1.5 ms rounds to 2 */
        assert_int_equal(cfg.fleet.breaker.open_max, 604800000);
        assert_int_equal(cfg.log_level, LOG_ERR);

        /* protocol spellings */
        static const struct {
                const char *text;
                int protocol;
        } protos[] = {
                {"mqtt: {protocol: 5}\n", 5},     {"mqtt: {protocol: v5}\n", 5},
                {"mqtt: {protocol: 3.1.1}\n", 4}, {"mqtt: {protocol: \"3.1.1\"}\n", 4},
                {"mqtt: {protocol: v311}\n", 4},
        };
        for (size_t i = 0; i < sizeof(protos) / sizeof(protos[0]); i++) {
                assert_int_equal(load_text(fx, protos[i].text, &cfg), 0);
                assert_int_equal(cfg.mqtt.protocol, protos[i].protocol);
        }
}

/* Numbers are read the same whatever LC_NUMERIC says. */
static void test_locale(void **state)
{
        struct fixture *fx = *state;
        static const char *const locales[] = {"de_DE.UTF-8", "de_DE.utf8", "fr_FR.UTF-8",
                                              "C.UTF-8"};
        const char *set = NULL;
        for (size_t i = 0; i < sizeof(locales) / sizeof(locales[0]) && !set; i++)
                set = setlocale(LC_NUMERIC, locales[i]);
        struct fm_config cfg;
        int r = load_text(fx, "tick_s: 0.25\nbreaker: {failure_rate: 0.75}\n", &cfg);
        setlocale(LC_NUMERIC, "C");
        assert_int_equal(r, 0);
        assert_int_equal(cfg.tick, 250);
        assert_true(cfg.fleet.breaker.failure_rate == 0.75);
}

/* The shipped example: every key at its default; it must load cleanly and give the defaults. */
static void test_example(void **state)
{
        struct fixture *fx = *state;
        struct fm_config cfg, def;
        int r = load_path(fx, EXAMPLE, &cfg);
        if (r != 0)
                print_error("%s", fx->out);
        assert_int_equal(r, 0);
        assert_int_equal(fx->n_errors, 0);
        assert_int_equal(fx->out_len, 0);
        fm_config_default(&def);
        assert_config_equal(&cfg, &def);

        /* ... and it names every key (a crude indentation walk over "key:" lines). */
        static const char *const keys[] = {
                "mqtt.url",
                "mqtt.client_id",
                "mqtt.protocol",
                "mqtt.topic_prefix",
                "mqtt.qos",
                "mqtt.session_expiry_s",
                "mqtt.keepalive_s",
                "mqtt.receive_maximum",
                "mqtt.shared_group",
                "mqtt.username_file",
                "mqtt.password_file",
                "mqtt.tls.ca_file",
                "mqtt.tls.cert_file",
                "mqtt.tls.key_file",
                "mqtt.reconnect_min_s",
                "mqtt.reconnect_max_s",
                "http.listen",
                "state_dir",
                "dry_run",
                "tick_s",
                "log.level",
                "decoder.max_payload_bytes",
                "decoder.max_skew_s",
                "fleet.max_deployments",
                "fleet.max_versions",
                "fleet.max_versions_per_deployment",
                "fleet.max_instances",
                "fleet.max_instances_per_deployment",
                "fleet.forget_after_s",
                "fleet.retire_grace_s",
                "fleet.version_retention_s",
                "fleet.gauge_tau_s",
                "fleet.latency_window_s",
                "fleet.latency_slots",
                "breaker.failure_rate",
                "breaker.slow_call_rate",
                "breaker.slow_call_ms",
                "breaker.min_requests",
                "breaker.window_s",
                "breaker.window_slots",
                "breaker.open_base_s",
                "breaker.open_max_s",
                "breaker.probes",
                "breaker.heartbeat_timeout_s",
                "actuators.action_timeout_s",
                "actuators.backoff_base_s",
                "actuators.backoff_cap_s",
                "actuators.max_attempts",
                "actuators.breaker_failures",
                "actuators.breaker_cooloff_s",
                "actuators.breaker_cooloff_max_s",
                "actuators.bindings",
                "actuators.systemd.bus",
                "actuators.systemd.address",
                "actuators.systemd.job_timeout_s",
                "actuators.systemd.job_mode",
                "actuators.systemd.rollback_order",
                "actuators.systemd.units",
                "actuators.kubernetes.in_cluster",
                "actuators.kubernetes.service_account_dir",
                "actuators.kubernetes.server",
                "actuators.kubernetes.token_file",
                "actuators.kubernetes.ca_file",
                "actuators.kubernetes.namespace",
                "actuators.kubernetes.timeout_s",
                "actuators.kubernetes.token_reread_s",
                "actuators.kubernetes.traffic",
                "actuators.kubernetes.events",
                "actuators.kubernetes.workloads",
                "actuators.kubernetes.lease.enabled",
                "actuators.kubernetes.lease.name",
                "actuators.kubernetes.lease.namespace",
                "actuators.kubernetes.lease.identity",
                "actuators.kubernetes.lease.lease_duration_s",
                "actuators.kubernetes.lease.renew_deadline_s",
                "actuators.kubernetes.lease.retry_period_s",
                "actuators.kubernetes.lease.release_on_stop",
                "actuators.haproxy.socket",
                "actuators.haproxy.timeout_s",
                "actuators.haproxy.backends",
                "actuators.mlflow.uri",
                "actuators.mlflow.ca_file",
                "actuators.mlflow.token_file",
                "actuators.mlflow.username_file",
                "actuators.mlflow.password_file",
                "actuators.mlflow.alias",
                "actuators.mlflow.threshold_tag",
                "actuators.mlflow.rolled_back_tag",
                "actuators.mlflow.timeout_s",
                "actuators.mlflow.models",
                "actuators.alertmanager.url",
                "actuators.alertmanager.ca_file",
                "actuators.alertmanager.timeout_s",
                "actuators.alertmanager.alertname",
                "actuators.alertmanager.generator_url",
                "actuators.alertmanager.ttl_s",
                "actuators.alertmanager.labels",
        };
        FILE *f = fopen(EXAMPLE, "re");
        assert_non_null(f);
        char line[1024], level[4][64] = {{0}};
        char found[16384] = "|";
        while (fgets(line, sizeof(line), f)) {
                size_t indent = strspn(line, " ");
                const char *k = line + indent;
                size_t n = strspn(k, "abcdefghijklmnopqrstuvwxyz_");
                if (n == 0 || k[n] != ':' || indent % 2 || indent / 2 >= 4 || n >= 64)
                        continue;
                size_t d = indent / 2;
                snprintf(level[d], sizeof(level[d]), "%.*s", (int)n, k);
                char path[300] = "";
                for (size_t i = 0; i <= d; i++)
                        snprintf(path + strlen(path), sizeof(path) - strlen(path), "%s%s",
                                 i ? "." : "", level[i]);
                snprintf(found + strlen(found), sizeof(found) - strlen(found), "%s|", path);
        }
        fclose(f);
        for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
                char want[128];
                snprintf(want, sizeof(want), "|%s|", keys[i]);
                if (!strstr(found, want))
                        print_error("example lacks %s\n", keys[i]);
                assert_non_null(strstr(found, want));

                /* The schema knows the key: a wrong type is reported, not "unknown key". */
                char text[256];
                const char *dot;
                const char *p = keys[i];
                text[0] = '\0';
                int depth = 0;
                while ((dot = strchr(p, '.'))) {
                        snprintf(text + strlen(text), sizeof(text) - strlen(text), "%*s%.*s:\n",
                                 depth * 2, "", (int)(dot - p), p);
                        p = dot + 1;
                        depth++;
                }
                snprintf(text + strlen(text), sizeof(text) - strlen(text), "%*s%s: [1]\n",
                         depth * 2, "", p);
                assert_int_equal(load_text(fx, text, &cfg), -EINVAL);
                assert_int_equal(fx->n_errors, 1);
                assert_true(contains(fx->out, keys[i]));
                assert_false(contains(fx->out, "unknown key"));
        }
}

/* ---- broken files
 * -------------------------------------------------------------------------------- */

struct bad {
        const char *what;
        const char *text; /* with @DIR@ and @A<n>@ placeholders */
        unsigned line;    /* 0: the message has no line */
        const char *key;  /* NULL: the message names no key */
        const char *msg;  /* a substring of the message */
};

static const struct bad bad_cases[] = {
        {"unknown top-level key", "mqtt:\n  qos: 1\nmqtt_url: x\n", 3, "mqtt_url", "unknown key"},
        {"unknown nested key (typo)", "mqtt:\n  client_id: a\n  keepalve_s: 10\n", 3,
         "mqtt.keepalve_s", "unknown key (did you mean keepalive_s?)"},
        {"unknown key two levels down", "mqtt:\n  tls:\n    cafile: x\n", 3, "mqtt.tls.cafile",
         "unknown key (did you mean ca_file?)"},
        {"unknown key, nothing close", "fleet:\n  colour: blue\n", 2, "fleet.colour",
         "unknown key"},
        {"string for integer", "mqtt:\n  receive_maximum: \"100\"\n", 2, "mqtt.receive_maximum",
         "expected an integer, got a string"},
        {"fraction for integer", "fleet:\n  max_instances: 10.5\n", 2, "fleet.max_instances",
         "expected an integer, got a number"},
        {"integer for string", "mqtt:\n  client_id: 123\n", 2, "mqtt.client_id",
         "expected a string, got an integer"},
        {"sequence for string", "state_dir: [/a]\n", 1, "state_dir",
         "expected a string, got a sequence"},
        {"null for string", "state_dir:\n", 1, "state_dir", "got null (write \"\" for none)"},
        {"section not a mapping", "mqtt: mqtt://broker\n", 1, "mqtt",
         "expected a mapping, got a string"},
        {"yes is not a boolean", "dry_run: yes\n", 1, "dry_run",
         "expected a boolean (true or false), got a string"},
        {"qos 2", "mqtt:\n  qos: 2\n", 2, "mqtt.qos", "must be between 0 and 1 (got 2)"},
        {"keepalive 3", "mqtt:\n  keepalive_s: 3\n", 2, "mqtt.keepalive_s",
         "must be 0 (off) or between 5 and 65535 (got 3)"},
        {"keepalive over 65535", "mqtt:\n  keepalive_s: 65536\n", 2, "mqtt.keepalive_s",
         "must be between 0 and 65535"},
        {"receive_maximum 0", "mqtt:\n  receive_maximum: 0\n", 2, "mqtt.receive_maximum",
         "must be between 1 and 65535 (got 0)"},
        {"session expiry over 32 bits", "mqtt:\n  session_expiry_s: 4294967296\n", 2,
         "mqtt.session_expiry_s", "must be between 0 and 4294967295"},
        {"integer beyond int64", "mqtt:\n  session_expiry_s: 99999999999999999999999\n", 2,
         "mqtt.session_expiry_s", "must be between 0 and 4294967295"},
        {"port 70000 in url", "mqtt:\n  url: mqtt://broker:70000\n", 2, "mqtt.url",
         "port must be a number from 1 to 65535"},
        {"port 0 in url", "mqtt:\n  url: mqtt://broker:0\n", 2, "mqtt.url",
         "port must be a number from 1 to 65535"},
        {"http:// url", "mqtt:\n  url: http://broker:1883\n", 2, "mqtt.url",
         "scheme must be mqtt:// or mqtts://"},
        {"url with path", "mqtt:\n  url: mqtt://broker:1883/fleet\n", 2, "mqtt.url",
         "must not have a path"},
        {"url with query", "mqtt:\n  url: mqtt://broker?x=1\n", 2, "mqtt.url",
         "must not have a path, query"},
        {"url with user info", "mqtt:\n  url: mqtt://fm:secret@broker\n", 2, "mqtt.url",
         "must not contain user info"},
        {"url with empty host", "mqtt:\n  url: mqtt://:1883\n", 2, "mqtt.url", "host is empty"},
        {"url with nothing", "mqtt:\n  url: mqtts://\n", 2, "mqtt.url", "host is empty"},
        {"url with bare IPv6", "mqtt:\n  url: mqtt://::1:1883\n", 2, "mqtt.url", "in brackets"},
        {"url host too long", "mqtt:\n  url: mqtt://@A256@\n", 2, "mqtt.url", "at most 255"},
        {"bad protocol", "mqtt:\n  protocol: 4\n", 2, "mqtt.protocol",
         "expected 5 or 3.1.1 (also \"v5\" or \"v311\")"},
        {"protocol 3.1", "mqtt:\n  protocol: 3.1\n", 2, "mqtt.protocol", "expected 5 or 3.1.1"},
        {"negative duration", "fleet:\n  forget_after_s: -5\n", 2, "fleet.forget_after_s",
         "must be greater than 0 (got -5)"},
        {"zero duration", "breaker:\n  open_base_s: 0\n", 2, "breaker.open_base_s",
         "must be greater than 0 (got 0)"},
        {"duration below 1 ms", "decoder:\n  max_skew_s: 0.0004\n", 2, "decoder.max_skew_s",
         "must be at least 0.001"},
        {"duration of a string", "fleet:\n  gauge_tau_s: 30s\n", 2, "fleet.gauge_tau_s",
         "expected a number, got a string"},
        {"NaN rate", "breaker:\n  failure_rate: .nan\n", 2, "breaker.failure_rate",
         "must be a finite number"},
        {"infinite duration", "fleet:\n  gauge_tau_s: .inf\n", 2, "fleet.gauge_tau_s",
         "must be a finite number"},
        {"-inf tick", "tick_s: -.Inf\n", 1, "tick_s", "must be a finite number"},
        {"overflowing float", "fleet:\n  version_retention_s: 1e400\n", 2,
         "fleet.version_retention_s", "must be a finite number"},
        {"duration over 10 years", "fleet:\n  version_retention_s: 1e9\n", 2,
         "fleet.version_retention_s", "must be at most 3.1536e+08"},
        {"tick below 0.05", "tick_s: 0.01\n", 1, "tick_s", "must be at least 0.05 (got 0.01)"},
        {"tick above 60", "tick_s: 61\n", 1, "tick_s", "must be at most 60 (got 61)"},
        {"rate over 1", "breaker:\n  slow_call_rate: 1.5\n", 2, "breaker.slow_call_rate",
         "must be at most 1 (got 1.5)"},
        {"rate 0", "breaker:\n  failure_rate: 0\n", 2, "breaker.failure_rate",
         "must be greater than 0"},
        {"slow_call_ms 0", "breaker:\n  slow_call_ms: 0\n", 2, "breaker.slow_call_ms",
         "must be greater than 0"},
        {"window not a multiple of the slots (both set)",
         "breaker:\n  window_s: 30\n  window_slots: 7\n", 3, "breaker.window_slots",
         "window_s (30) must divide into window_slots (7) slots of whole milliseconds"},
        {"window not a multiple of the slots (window set)", "breaker:\n  window_s: 31\n", 2,
         "breaker.window_s", "must divide into window_slots (6)"},
        {"latency window not a multiple of the slots",
         "fleet:\n  latency_slots: 4\n  latency_window_s: 0.01\n", 3, "fleet.latency_window_s",
         "must divide into latency_slots (4)"},
        {"reconnect_min > reconnect_max", "mqtt:\n  reconnect_max_s: 5\n  reconnect_min_s: 10\n", 3,
         "mqtt.reconnect_min_s",
         "reconnect_min_s (10) must not be greater than reconnect_max_s (5)"},
        {"reconnect_min over the default max", "mqtt:\n  reconnect_min_s: 61\n", 2,
         "mqtt.reconnect_min_s", "must not be greater than reconnect_max_s (60)"},
        {"open_base over open_max", "breaker:\n  open_base_s: 700\n", 2, "breaker.open_base_s",
         "open_max_s (600) must not be less than open_base_s (700)"},
        {"open_max over a week", "breaker:\n  open_max_s: 700000\n", 2, "breaker.open_max_s",
         "must be at most 604800"},
        {"heartbeat timeout over a week", "breaker:\n  heartbeat_timeout_s: 604801\n", 2,
         "breaker.heartbeat_timeout_s", "must be at most 604800"},
        {"cert_file without key_file",
         "mqtt:\n  url: mqtts://broker\n  tls:\n    cert_file: @DIR@/client.pem\n", 4,
         "mqtt.tls.cert_file", "needs mqtt.tls.key_file"},
        {"key_file without cert_file",
         "mqtt:\n  url: mqtts://broker\n  tls:\n    key_file: @DIR@/client.key\n", 4,
         "mqtt.tls.key_file", "needs mqtt.tls.cert_file"},
        {"tls keys with mqtt://",
         "mqtt:\n  url: mqtt://broker\n  tls:\n    ca_file: @DIR@/ca.pem\n", 4, "mqtt.tls.ca_file",
         "TLS settings need an mqtts:// URL"},
        {"tls keys with the default url", "mqtt:\n  tls: {ca_file: @DIR@/ca.pem}\n", 2,
         "mqtt.tls.ca_file", "TLS settings need an mqtts:// URL"},
        {"missing credential file", "mqtt:\n  username_file: @DIR@/nope\n", 2, "mqtt.username_file",
         "cannot access @DIR@/nope: No such file or directory"},
        {"missing TLS file", "mqtt:\n  url: mqtts://b\n  tls:\n    ca_file: /nonexistent/ca.pem\n",
         4, "mqtt.tls.ca_file", "cannot access /nonexistent/ca.pem"},
        {"credential file is a directory",
         "mqtt:\n  username_file: @DIR@/user\n  password_file: @DIR@/subdir\n", 3,
         "mqtt.password_file", "@DIR@/subdir is a directory"},
        {"password without user", "mqtt:\n  password_file: @DIR@/pass\n", 2, "mqtt.password_file",
         "needs mqtt.username_file"},
        {"relative state_dir", "state_dir: var/lib/fleetmedic\n", 1, "state_dir",
         "must be an absolute path"},
        {"empty state_dir", "state_dir: \"\"\n", 1, "state_dir", "must be an absolute path"},
        {"bad log level", "log:\n  level: verbose\n", 2, "log.level",
         "expected one of err, warning, notice, info, debug"},
        {"listen on a name", "http:\n  listen: localhost:9187\n", 2, "http.listen",
         "expected a numeric ADDRESS:PORT"},
        {"listen port too big", "http:\n  listen: \"[::1]:65536\"\n", 2, "http.listen",
         "expected a numeric ADDRESS:PORT"},
        {"listen without port", "http:\n  listen: 127.0.0.1\n", 2, "http.listen",
         "expected a numeric ADDRESS:PORT"},
        {"listen too long", "http:\n  listen: @A128@\n", 2, "http.listen",
         "too long (at most 127 bytes)"},
        {"max_instances 0", "fleet:\n  max_instances: 0\n", 2, "fleet.max_instances",
         "must be at least 1 (got 0)"},
        {"latency_slots too many", "fleet:\n  latency_slots: 7\n", 2, "fleet.latency_slots",
         "must be between 1 and 6 (got 7)"},
        {"window_slots too many", "breaker:\n  window_slots: 61\n", 2, "breaker.window_slots",
         "must be between 1 and 60 (got 61)"},
        {"probes 0", "breaker:\n  probes: 0\n", 2, "breaker.probes", "must be at least 1"},
        {"max_payload below 64", "decoder:\n  max_payload_bytes: 63\n", 2,
         "decoder.max_payload_bytes", "must be between 64 and 16777216 (got 63)"},
        {"duplicate key", "mqtt:\n  qos: 0\n  client_id: a\n  qos: 1\n", 4, "mqtt.qos",
         "duplicate key (first on line 2)"},
        {"duplicate section", "log:\n  level: info\nlog:\n  level: debug\n", 3, "log",
         "duplicate key (first on line 1)"},
        {"duplicate key in JSON", "{\"tick_s\": 1,\n \"tick_s\": 2}\n", 2, "tick_s",
         "duplicate key (first on line 1)"},
        {"top level a sequence", "- mqtt\n- http\n", 1, NULL,
         "the top level must be a mapping, not a sequence"},
        {"top level a scalar", "# config\nhello\n", 2, NULL,
         "the top level must be a mapping, not a string"},
        {"syntax error", "mqtt:\n  qos: 1\n   url: mqtt://b\n", 3, NULL,
         "syntax error: mapping values are not allowed"},
        {"tab indentation", "mqtt:\n\tqos: 1\n", 2, NULL, "syntax error"},
        {"unclosed flow mapping", "log: {level: info\nstate_dir: /x\n", 2, NULL,
         "syntax error: did not find expected ',' or '}' (while parsing a flow mapping at line 1)"},
        {"JSON syntax error", "{\"mqtt\": {\"qos\": 1}\n \"tick_s\": 2}\n", 2, NULL,
         "syntax error: did not find expected ',' or '}'"},
        {"invalid UTF-8", "log:\n  level: \"\xff\"\n", 2, NULL, "invalid text"},
        {"two documents", "log: {level: info}\n---\nlog: {level: info}\n", 2, NULL,
         "more than one YAML document"},
        {"too-long client_id", "mqtt:\n  client_id: @A129@\n", 2, "mqtt.client_id",
         "too long (at most 128 bytes)"},
        {"empty client_id", "mqtt:\n  client_id: \"\"\n", 2, "mqtt.client_id", "must not be empty"},
        {"client_id with a newline", "mqtt:\n  client_id: \"a\\nb\"\n", 2, "mqtt.client_id",
         "control characters"},
        {"shared_group with /", "mqtt:\n  shared_group: ctl/a\n", 2, "mqtt.shared_group",
         "may contain only A-Z, a-z, 0-9, _ and - (got '/')"},
        {"shared_group too long", "mqtt:\n  shared_group: @A65@\n", 2, "mqtt.shared_group",
         "too long (at most 64 bytes)"},
        {"topic_prefix with a wildcard", "mqtt:\n  topic_prefix: fleet/#\n", 2, "mqtt.topic_prefix",
         "wildcards"},
        {"topic_prefix ending in /", "mqtt:\n  topic_prefix: fleet/\n", 2, "mqtt.topic_prefix",
         "must not end with /"},
        {"topic_prefix empty", "mqtt:\n  topic_prefix: ''\n", 2, "mqtt.topic_prefix",
         "must not be empty"},
        {"NUL in a string", "state_dir: \"/var/\\0lib\"\n", 1, "state_dir", "NUL byte"},
        {"anchor", "log: &l\n  level: info\n", 1, "log", "anchors and aliases are not supported"},
        {"alias", "log:\n  level: *lvl\n", 2, "log.level", "anchors and aliases are not supported"},
        {"unsupported tag", "state_dir: !!binary L3Zhcg==\n", 1, "state_dir",
         "unsupported tag !!binary (only the YAML core tags are)"},
        {"local tag", "mqtt: !broker\n  qos: 1\n", 1, "mqtt", "unsupported tag !broker"},
        {"value not matching its tag", "mqtt:\n  qos: !!int one\n", 2, "mqtt.qos",
         "the value is not a valid !!int"},
        {"non-scalar key", "? [a, b]\n: 1\n", 1, NULL, "a key must be a scalar"},
        {"key too long", "mqtt:\n  @A300@: 1\n", 2, "mqtt", "longer than 256 bytes"},
};

static bool check_bad(struct fixture *fx, const struct bad *b)
{
        struct fm_config cfg, orig;
        memset(&cfg, 0x5a, sizeof(cfg));
        memcpy(&orig, &cfg, sizeof(cfg));
        int r = load_text(fx, b->text, &cfg);

        char *msg = expand(fx, b->msg);
        char head[1024];
        if (b->line > 0)
                snprintf(head, sizeof(head), "%s:%u: %s%s", fx->config, b->line,
                         b->key ? b->key : "", b->key ? ": " : "");
        else
                snprintf(head, sizeof(head), "%s: %s%s", fx->config, b->key ? b->key : "",
                         b->key ? ": " : "");
        size_t lines = 0;
        for (const char *p = fx->out; p && *p; p++)
                lines += *p == '\n';
        /* One line: "head" at its start and msg in it. */
        bool ok = r == -EINVAL && fx->n_errors == 1 && lines == 1 && fx->out &&
                  !strncmp(fx->out, head, strlen(head)) && contains(fx->out, msg) &&
                  memcmp(&cfg, &orig, sizeof(cfg)) == 0;
        if (!ok)
                print_error("case \"%s\": r=%d n_errors=%u\n  want: %s...%s\n  got:  %s\n", b->what,
                            r, fx->n_errors, head, msg, fx->out ? fx->out : "(nothing)");
        free(msg);
        return ok;
}

static void test_bad(void **state)
{
        struct fixture *fx = *state;
        unsigned failures = 0;
        for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++)
                failures += !check_bad(fx, &bad_cases[i]);
        assert_int_equal(failures, 0);
}

/* The governor, alerting and policy sections land where the daemon reads them. */
static void test_policy_sections(void **state)
{
        struct fixture *fx = *state;
        struct fm_config cfg;

        assert_int_equal(load_text(fx,
                                   "governor:\n"
                                   "  paused: true\n"
                                   "  dry_run_policies: [autoscale, rollback]\n"
                                   "  maintenance:\n"
                                   "    - {days: [sat, sun], start: \"02:30\", duration_min: 90}\n"
                                   "    - {days: [all], start: \"23:00\", duration_min: 120}\n"
                                   "  cooldown: {restart_s: 0, scale_s: 120}\n"
                                   "alerting: {resolve_after_s: 60, slo_target: 0.99}\n"
                                   "autoscale:\n"
                                   "  enabled: true\n"
                                   "  targets: {gpu_util: 0, queue_depth: 4}\n"
                                   "canary: {enabled: true, steps: [10, 50, 100]}\n"
                                   "rollback: {enabled: true, accuracy_drop: 0.1}\n"
                                   "autotune: {enabled: true, objective: cost}\n",
                                   &cfg),
                         0);
        assert_true(cfg.governor.paused);
        assert_int_equal(cfg.governor.n_dry_run_policies, 2);
        assert_string_equal(cfg.governor.dry_run_policy[1], "rollback");
        assert_int_equal(cfg.governor.n_windows, 2);
        assert_int_equal(cfg.governor.window[0].days, FM_DAY_SAT | FM_DAY_SUN);
        assert_int_equal(cfg.governor.window[0].start_min, 150);
        assert_int_equal(cfg.governor.window[0].duration_min, 90);
        assert_int_equal(cfg.governor.window[1].days, FM_DAY_ALL);
        assert_int_equal(cfg.governor.cooldown[FM_ACTION_RESTART], 0);
        assert_int_equal(cfg.governor.cooldown[FM_ACTION_SCALE], 120000);
        assert_int_equal(cfg.alerting.resolve_after, 60000);
        assert_true(cfg.policies.autoscale_enabled);
        assert_false(cfg.policies.autoscale.metric[FM_AUTOSCALE_GPU_UTIL].enabled);
        assert_true(cfg.policies.autoscale.metric[FM_AUTOSCALE_QUEUE_DEPTH].enabled);
        assert_int_equal(cfg.policies.canary.n_steps, 3);
        assert_int_equal(cfg.policies.canary.steps[1], 50);
        assert_true(cfg.policies.rollback_enabled);
        assert_int_equal(cfg.policies.tune.objective.kind, FM_TUNE_COST);

        static const struct {
                const char *text, *want;
        } bad[] = {
                {"governor:\n  maintenance:\n    - {days: [sunday], start: \"02:00\", "
                 "duration_min: 10}\n",
                 ":2: governor.maintenance: days are mon"},
                {"governor:\n  maintenance:\n    - {days: [sun], start: \"2:00\", "
                 "duration_min: 10}\n",
                 ":2: governor.maintenance: a window needs start"},
                {"governor:\n  maintenance:\n    - {days: [sun], start: \"02:00\", "
                 "duration_min: 0}\n",
                 ":2: governor.maintenance: a window needs duration_min"},
                {"governor:\n  dry_run_policies: [autoscaler]\n",
                 ":2: governor.dry_run_policies: expected names"},
                {"autoscale:\n  enabled: true\n  targets: {gpu_util: 0}\n",
                 "autoscale.targets: autoscale is enabled but no target is set"},
                {"alerting:\n  slo_target: 1\n", ":2: alerting.slo_target: must be at most"},
                {"canary:\n  steps: [10, 50]\n", ":2: canary.steps: the last step must be 100"},
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                assert_int_equal(load_text(fx, bad[i].text, &cfg), -EINVAL);
                if (!contains(fx->out, bad[i].want))
                        fail_msg("case %zu: wanted \"%s\" in:\n%s", i, bad[i].want, fx->out);
        }
}

/* The actuators section: retry settings and the bindings, with errors that name the key. */
static void test_actuators_section(void **state)
{
        struct fixture *fx = *state;
        struct fm_config cfg;

        assert_int_equal(load_text(fx,
                                   "actuators:\n"
                                   "  action_timeout_s: 30\n"
                                   "  backoff_base_s: 0.25\n"
                                   "  max_attempts: 3\n"
                                   "  bindings:\n"
                                   "    - {deployment: \"*\", actions: [all], backend: dry-run}\n"
                                   "    - {deployment: web, actions: [scale, restart], "
                                   "backend: systemd}\n",
                                   &cfg),
                         0);
        assert_int_equal(cfg.actuators.action_timeout, 30000);
        assert_int_equal(cfg.actuators.retry.backoff_base, 250);
        assert_int_equal(cfg.actuators.retry.max_attempts, 3);
        assert_int_equal(cfg.actuators.n_bindings, 2);
        assert_string_equal(cfg.actuators.binding[0].deployment, "*");
        for (int a = 0; a < _FM_ACTION_MAX; a++)
                assert_true(cfg.actuators.binding[0].actions[a]);
        assert_int_equal(cfg.actuators.binding[0].backend, FM_BACKEND_DRYRUN);
        assert_string_equal(cfg.actuators.binding[1].deployment, "web");
        assert_true(cfg.actuators.binding[1].actions[FM_ACTION_SCALE]);
        assert_true(cfg.actuators.binding[1].actions[FM_ACTION_RESTART]);
        assert_false(cfg.actuators.binding[1].actions[FM_ACTION_ROLLBACK]);
        assert_int_equal(cfg.actuators.binding[1].backend, FM_BACKEND_SYSTEMD);
        assert_int_equal(fm_executor_config_validate(&cfg.actuators), 0);

        static const struct {
                const char *text, *want;
        } bad[] = {
                {"actuators:\n  bindings:\n    - {deployment: \"*\", actions: [scale], "
                 "backend: ssh}\n",
                 ":2: actuators.bindings: a binding needs backend"},
                {"actuators:\n  bindings:\n    - {deployment: \"*\", actions: [reboot], "
                 "backend: systemd}\n",
                 ":2: actuators.bindings: actions are scale"},
                {"actuators:\n  bindings:\n    - {deployment: \"../x\", actions: [scale], "
                 "backend: systemd}\n",
                 ":2: actuators.bindings: a binding needs deployment"},
                {"actuators:\n  bindings:\n    - {deployment: web, actions: [], "
                 "backend: systemd}\n",
                 ":2: actuators.bindings: a binding needs actions"},
                {"actuators:\n  bindings:\n    - {deployment: web, action: [scale], "
                 "backend: systemd}\n",
                 ":2: actuators.bindings: unknown key 'action'"},
                {"actuators:\n  backoff_base_s: 10\n  backoff_cap_s: 1\n",
                 ":3: actuators.backoff_cap_s: backoff_cap_s (1) must not be less"},
                {"actuators:\n  max_attempts: 0\n", ":2: actuators.max_attempts:"},
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                assert_int_equal(load_text(fx, bad[i].text, &cfg), -EINVAL);
                if (!contains(fx->out, bad[i].want))
                        fail_msg("case %zu: wanted \"%s\" in:\n%s", i, bad[i].want, fx->out);
        }
}

/* ---- the actuator backends' sections ----------------------------------------------------------
 */

struct bad_key {
        const char *text; /* with @DIR@ and @A<n>@ placeholders */
        const char *want; /* ":LINE: KEY: message" (a prefix of the message is enough) */
};

/* Each text gives exactly one error, "CONFIG:LINE: KEY: message", and leaves *cfg alone. */
static void expect_bad_keys(struct fixture *fx, const struct bad_key *b, size_t n)
{
        unsigned failures = 0;
        for (size_t i = 0; i < n; i++) {
                struct fm_config cfg, orig;
                memset(&cfg, 0x5a, sizeof(cfg));
                memcpy(&orig, &cfg, sizeof(cfg));
                int r = load_text(fx, b[i].text, &cfg);
                char *want = expand(fx, b[i].want);
                char full[2048];
                snprintf(full, sizeof(full), "%s%s", fx->config, want);
                if (r != -EINVAL || fx->n_errors != 1 || !contains(fx->out, full) ||
                    memcmp(&cfg, &orig, sizeof(cfg)) != 0) {
                        print_error("case %zu: r=%d n_errors=%u\n  want: %s\n  got:  %s\n", i, r,
                                    fx->n_errors, full, fx->out ? fx->out : "(nothing)");
                        failures++;
                }
                free(want);
        }
        assert_int_equal(failures, 0);
}

/* "actuators:\n  SECTION:\n    KEY:\n" and n entries "{deployment: d<i>}" (labels: "l<i>: x"). */
static char *many_entries(const char *section, const char *key, unsigned n, bool labels)
{
        size_t cap = 256 + (size_t)n * 40, len = 0;
        char *s = malloc(cap);
        assert_non_null(s);
        len += (size_t)snprintf(s, cap, "actuators:\n  %s:\n    %s:\n", section, key);
        for (unsigned i = 0; i < n; i++)
                len += (size_t)snprintf(s + len, cap - len,
                                        labels ? "      l%u: x\n" : "      - {deployment: d%u}\n",
                                        i);
        assert_true(len < cap);
        return s;
}

static void test_systemd_section(void **state)
{
        struct fixture *fx = *state;
        struct fm_config cfg;

        int r = load_text(fx,
                          "actuators:\n"
                          "  systemd:\n"
                          "    bus: user\n"
                          "    address: \"unix:path=/run/user/1000/bus\"\n"
                          "    job_timeout_s: 2.5\n"
                          "    job_mode: ignore-dependencies\n"
                          "    rollback_order: stop_first\n"
                          "    units:\n"
                          "      - {deployment: web, unit: \"web-{version}@{index}.service\"}\n"
                          "      - deployment: \"*\"\n"
                          "        unit: \"{deployment}@{index}.service\"\n"
                          "        instance_unit: \"{deployment}@{instance}.service\"\n",
                          &cfg);
        if (r != 0)
                print_error("%s", fx->out);
        assert_int_equal(r, 0);
        const struct fm_systemd_config *sd = &cfg.actuators.systemd;
        assert_int_equal(sd->bus, FM_SYSTEMD_BUS_USER);
        assert_string_equal(sd->address, "unix:path=/run/user/1000/bus");
        assert_int_equal(sd->job_timeout, 2500);
        assert_string_equal(sd->job_mode, "ignore-dependencies");
        assert_int_equal(sd->rollback_order, FM_SYSTEMD_STOP_FIRST);
        assert_int_equal(sd->n_deployments, 2);
        assert_string_equal(sd->deployments[0].deployment, "web");
        assert_string_equal(sd->deployments[0].unit, "web-{version}@{index}.service");
        assert_string_equal(sd->deployments[0].instance_unit, "{instance}.service"); /* default */
        assert_string_equal(sd->deployments[1].deployment, "*");
        assert_string_equal(sd->deployments[1].unit, "{deployment}@{index}.service");
        assert_string_equal(sd->deployments[1].instance_unit, "{deployment}@{instance}.service");
        assert_int_equal(fm_systemd_config_validate(sd), 0);

        /* A list replaces the default one, "*" entry included. */
        assert_int_equal(
                load_text(fx, "actuators:\n  systemd:\n    units: [{deployment: web}]\n", &cfg), 0);
        assert_int_equal(cfg.actuators.systemd.n_deployments, 1);
        assert_string_equal(cfg.actuators.systemd.deployments[0].deployment, "web");
        assert_string_equal(cfg.actuators.systemd.deployments[0].unit,
                            "{deployment}-{version}@{index}.service");
        assert_int_equal(load_text(fx, "actuators:\n  systemd:\n    units: []\n", &cfg), 0);
        assert_int_equal(cfg.actuators.systemd.n_deployments, 0);

        /* 64 named deployments and "*" fit; one more does not. */
        char *text = many_entries("systemd", "units", 64, false);
        size_t len = strlen(text);
        text = realloc(text, len + 64);
        assert_non_null(text);
        snprintf(text + len, 64, "      - {deployment: \"*\"}\n");
        assert_int_equal(load_text(fx, text, &cfg), 0);
        assert_int_equal(cfg.actuators.systemd.n_deployments, 65);
        free(text);
        text = many_entries("systemd", "units", 65, false);
        assert_int_equal(load_text(fx, text, &cfg), -EINVAL);
        assert_true(contains(fx->out, ":3: actuators.systemd.units: at most 64 named deployments"));
        free(text);
        text = many_entries("systemd", "units", 66, false);
        assert_int_equal(load_text(fx, text, &cfg), -EINVAL);
        assert_true(contains(fx->out, ":3: actuators.systemd.units: at most 65 entries"));
        free(text);

        static const struct bad_key bad[] = {
                {"actuators:\n  systemd:\n    bus: session\n",
                 ":3: actuators.systemd.bus: expected system or user (got \"session\")"},
                {"actuators:\n  systemd:\n    bus: 1\n",
                 ":3: actuators.systemd.bus: expected system or user, got an integer"},
                {"actuators:\n  systemd:\n    rollback_order: together\n",
                 ":3: actuators.systemd.rollback_order: expected start_first or stop_first"},
                {"actuators:\n  systemd:\n    job_mode: isolate\n",
                 ":3: actuators.systemd.job_mode: expected replace, fail, replace-irreversibly, "
                 "flush, ignore-dependencies or ignore-requirements (got \"isolate\")"},
                {"actuators:\n  systemd:\n    job_timeout_s: 3601\n",
                 ":3: actuators.systemd.job_timeout_s: must be at most 3600"},
                {"actuators:\n  systemd:\n    address: \"unix:path=/a b\"\n",
                 ":3: actuators.systemd.address: a D-Bus address is printable ASCII"},
                {"actuators:\n  systemd:\n    address: @A512@\n",
                 ":3: actuators.systemd.address: too long (at most 511 bytes)"},
                {"actuators:\n  systemd:\n    units: web\n",
                 ":3: actuators.systemd.units: expected a list of unit mappings, got a string"},
                {"actuators:\n  systemd:\n    units: [web]\n",
                 ":3: actuators.systemd.units[0]: each entry is a unit mapping: {deployment, "
                 "unit, instance_unit}, not a string"},
                {"actuators:\n  systemd:\n    units:\n      - {unit: \"x@{index}.service\"}\n",
                 ":4: actuators.systemd.units[0]: each unit mapping needs deployment"},
                {"actuators:\n  systemd:\n    units:\n      - deployment: web\n"
                 "        template: \"x@.service\"\n",
                 ":5: actuators.systemd.units[0].template: unknown key in a unit mapping "
                 "(deployment, unit, instance_unit)"},
                {"actuators:\n  systemd:\n    units:\n      - {deployment: Web}\n",
                 ":4: actuators.systemd.units[0].deployment: expected a deployment name"},
                {"actuators:\n  systemd:\n    units:\n      - deployment: web\n"
                 "        unit: web.service\n",
                 ":5: actuators.systemd.units[0].unit: expected a unit name pattern with "
                 "{index} once"},
                {"actuators:\n  systemd:\n    units:\n      - deployment: web\n"
                 "        unit: \"web;x@{index}.service\"\n",
                 ":5: actuators.systemd.units[0].unit: expected a unit name pattern"},
                {"actuators:\n  systemd:\n    units:\n      - deployment: web\n"
                 "        instance_unit: \"{version}.service\"\n",
                 ":5: actuators.systemd.units[0].instance_unit: expected a unit name pattern "
                 "with only {instance} and {deployment}"},
                {"actuators:\n  systemd:\n    units:\n      - deployment: web\n"
                 "        unit: \"@A130@@{index}.service\"\n",
                 ":5: actuators.systemd.units[0].unit: too long (at most 127 bytes)"},
                {"actuators:\n  systemd:\n    units:\n      - {deployment: web}\n"
                 "      - {deployment: web}\n",
                 ":5: actuators.systemd.units[1].deployment: deployment \"web\" has an entry "
                 "already (actuators.systemd.units[0])"},
        };
        expect_bad_keys(fx, bad, sizeof(bad) / sizeof(bad[0]));
}

static void test_kubernetes_section(void **state)
{
        struct fixture *fx = *state;
        struct fm_config cfg;

        int r = load_text(
                fx,
                "actuators:\n"
                "  bindings:\n"
                "    - {deployment: \"*\", actions: [scale, rollback], backend: kubernetes}\n"
                "  kubernetes:\n"
                "    server: https://10.0.0.1:6443\n"
                "    token_file: @DIR@/pass\n"
                "    ca_file: @DIR@/ca.pem\n"
                "    namespace: models\n"
                "    timeout_s: 5\n"
                "    token_reread_s: 30\n"
                "    traffic: istio\n"
                "    events: false\n"
                "    workloads:\n"
                "      - deployment: llm\n"
                "        kind: inferenceservice\n"
                "        name: llm-isvc\n"
                "        storage_uri: \"s3://models/{deployment}/{version}\"\n"
                "        route: llm-vs\n"
                "        destination: \"{deployment}-{target}\"\n"
                "      - {deployment: \"*\", container: server, image: "
                "\"reg.example/m:{version}\"}\n"
                "    lease:\n"
                "      enabled: true\n"
                "      name: fm-lock\n"
                "      namespace: infra\n"
                "      identity: \"ctl 1\"\n"
                "      lease_duration_s: 20\n"
                "      renew_deadline_s: 12\n"
                "      retry_period_s: 3\n"
                "      release_on_stop: false\n",
                &cfg);
        if (r != 0)
                print_error("%s", fx->out);
        assert_int_equal(r, 0);
        const struct fm_kube_config *k = &cfg.actuators.kubernetes;
        char path[600];
        assert_false(k->in_cluster);
        assert_string_equal(k->sa_dir, FM_KUBE_SA_DIR);
        assert_string_equal(k->server, "https://10.0.0.1:6443");
        snprintf(path, sizeof(path), "%s/pass", fx->dir);
        assert_string_equal(k->token_file, path);
        snprintf(path, sizeof(path), "%s/ca.pem", fx->dir);
        assert_string_equal(k->ca_file, path);
        assert_string_equal(k->namespace_, "models");
        assert_int_equal(k->timeout, 5000);
        assert_int_equal(k->token_reread, 30000);
        assert_int_equal(k->traffic, FM_KUBE_TRAFFIC_ISTIO);
        assert_false(k->events);
        assert_int_equal(k->n_mappings, 2);
        assert_string_equal(k->mapping[0].deployment, "llm");
        assert_int_equal(k->mapping[0].kind, FM_KUBE_WORKLOAD_INFERENCESERVICE);
        assert_string_equal(k->mapping[0].workload, "llm-isvc");
        assert_string_equal(k->mapping[0].storage_uri, "s3://models/{deployment}/{version}");
        assert_string_equal(k->mapping[0].traffic_name, "llm-vs");
        assert_string_equal(k->mapping[0].destination, "{deployment}-{target}");
        assert_string_equal(k->mapping[0].image, "");
        assert_string_equal(k->mapping[1].deployment, "*");
        assert_int_equal(k->mapping[1].kind, FM_KUBE_WORKLOAD_DEPLOYMENT);
        assert_string_equal(k->mapping[1].container, "server");
        assert_string_equal(k->mapping[1].image, "reg.example/m:{version}");
        assert_string_equal(k->mapping[1].workload, "");
        assert_true(k->lease.enabled);
        assert_string_equal(k->lease.name, "fm-lock");
        assert_string_equal(k->lease.namespace_, "infra");
        assert_string_equal(k->lease.identity, "ctl 1");
        assert_int_equal(k->lease.lease_duration, 20000);
        assert_int_equal(k->lease.renew_deadline, 12000);
        assert_int_equal(k->lease.retry_period, 3000);
        assert_false(k->lease.release_on_stop);
        assert_int_equal(fm_kube_config_validate(k), 0);
        assert_int_equal(fm_executor_config_validate(&cfg.actuators), 0);

        /* In a cluster the service account gives the server. */
        assert_int_equal(load_text(fx,
                                   "actuators:\n  kubernetes:\n    in_cluster: true\n"
                                   "    service_account_dir: /run/sa\n    lease: {enabled: true}\n",
                                   &cfg),
                         0);
        assert_true(cfg.actuators.kubernetes.in_cluster);
        assert_string_equal(cfg.actuators.kubernetes.sa_dir, "/run/sa");
        assert_int_equal(fm_kube_config_validate(&cfg.actuators.kubernetes), 0);

        static const struct bad_key bad[] = {
                {"actuators:\n  kubernetes:\n    traffic: linkerd\n",
                 ":3: actuators.kubernetes.traffic: expected none, istio or gateway (got "
                 "\"linkerd\")"},
                {"actuators:\n  kubernetes:\n    server: ftp://api:6443\n",
                 ":3: actuators.kubernetes.server: expected an http:// or https:// URL"},
                {"actuators:\n  kubernetes:\n    server: \"https://api:6443/?x=1\"\n",
                 ":3: actuators.kubernetes.server: must not contain spaces, control characters, ? "
                 "or #"},
                {"actuators:\n  kubernetes:\n    namespace: Models\n",
                 ":3: actuators.kubernetes.namespace: expected \"\" or an RFC 1123 label"},
                {"actuators:\n  kubernetes:\n    token_file: @DIR@/nope\n",
                 ":3: actuators.kubernetes.token_file: cannot access @DIR@/nope"},
                {"actuators:\n  kubernetes:\n    ca_file: @DIR@/subdir\n",
                 ":3: actuators.kubernetes.ca_file: @DIR@/subdir is a directory"},
                {"actuators:\n  kubernetes:\n    service_account_dir: run/sa\n",
                 ":3: actuators.kubernetes.service_account_dir: must be an absolute path"},
                {"actuators:\n  kubernetes:\n    timeout_s: 301\n",
                 ":3: actuators.kubernetes.timeout_s: must be at most 300"},
                {"actuators:\n  kubernetes:\n    in_cluster: true\n    server: https://api:6443\n",
                 ":4: actuators.kubernetes.server: must be empty with in_cluster: true"},
                {"actuators:\n  kubernetes:\n    lease:\n      enabled: true\n",
                 ":4: actuators.kubernetes.lease.enabled: the Lease needs the Kubernetes API"},
                {"actuators:\n  bindings:\n    - {deployment: \"*\", actions: [scale], "
                 "backend: kubernetes}\n",
                 ":2: actuators.bindings: a binding names kubernetes: set "
                 "actuators.kubernetes.server"},
                {"actuators:\n  kubernetes:\n    workloads:\n      - {deployment: web, kind: "
                 "statefulset}\n",
                 ":4: actuators.kubernetes.workloads[0].kind: expected deployment or "
                 "inferenceservice (got \"statefulset\")"},
                {"actuators:\n  kubernetes:\n    workloads:\n      - {deployment: web, name: "
                 "Web_1}\n",
                 ":4: actuators.kubernetes.workloads[0].name: expected an RFC 1123 subdomain"},
                {"actuators:\n  kubernetes:\n    workloads:\n      - {deployment: web, "
                 "container: a.b}\n",
                 ":4: actuators.kubernetes.workloads[0].container: expected \"\" or an RFC 1123 "
                 "label"},
                {"actuators:\n  kubernetes:\n    workloads:\n      - deployment: web\n"
                 "        image: \"reg/m:{tag}\"\n",
                 ":5: actuators.kubernetes.workloads[0].image: the placeholders are "
                 "{deployment}, {version} and {target}"},
                {"actuators:\n  kubernetes:\n    workloads:\n      - deployment: web\n"
                 "        route: \"a b\"\n",
                 ":5: actuators.kubernetes.workloads[0].route: expected an RFC 1123 subdomain"},
                {"actuators:\n  kubernetes:\n    workloads:\n      - {deployment: a.-b}\n",
                 ":4: actuators.kubernetes.workloads[0].deployment: must also be an RFC 1123 "
                 "subdomain"},
                {"actuators:\n  kubernetes:\n    workloads:\n      - {deployment: web, "
                 "routes: x}\n",
                 ":4: actuators.kubernetes.workloads[0].routes: unknown key in a workload "
                 "mapping (deployment, kind, name, container, image, storage_uri, route, "
                 "destination)"},
                {"actuators:\n  kubernetes:\n    lease:\n      name: Lock\n",
                 ":4: actuators.kubernetes.lease.name: expected an RFC 1123 subdomain"},
                {"actuators:\n  kubernetes:\n    lease:\n      identity: \"a\\tb\"\n",
                 ":4: actuators.kubernetes.lease.identity: must not contain control characters"},
                {"actuators:\n  kubernetes:\n    lease:\n      identity: @A129@\n",
                 ":4: actuators.kubernetes.lease.identity: too long (at most 128 bytes)"},
                {"actuators:\n  kubernetes:\n    lease:\n      lease_duration_s: 15.5\n",
                 ":4: actuators.kubernetes.lease.lease_duration_s: must be whole seconds"},
                {"actuators:\n  kubernetes:\n    lease:\n      lease_duration_s: 3601\n",
                 ":4: actuators.kubernetes.lease.lease_duration_s: must be at most 3600"},
                {"actuators:\n  kubernetes:\n    lease:\n      renew_deadline_s: 20\n",
                 ":4: actuators.kubernetes.lease.renew_deadline_s: renew_deadline_s (20) must "
                 "be less than lease_duration_s (15)"},
                {"actuators:\n  kubernetes:\n    lease:\n      retry_period_s: 9\n",
                 ":4: actuators.kubernetes.lease.retry_period_s: renew_deadline_s (10) must be "
                 "more than 1.2 times retry_period_s (9)"},
                {"actuators:\n  kubernetes:\n    lease:\n      retry_period_s: 0.005\n",
                 ":4: actuators.kubernetes.lease.retry_period_s: must be at least 0.01"},
        };
        expect_bad_keys(fx, bad, sizeof(bad) / sizeof(bad[0]));
}

static void test_haproxy_section(void **state)
{
        struct fixture *fx = *state;
        struct fm_config cfg;

        int r = load_text(fx,
                          "actuators:\n"
                          "  haproxy:\n"
                          "    socket: ipv4@127.0.0.1:9999\n"
                          "    timeout_s: 1.5\n"
                          "    backends:\n"
                          "      - {deployment: web, backend: web_be, server: "
                          "\"{deployment}-{target}\"}\n"
                          "      - {deployment: \"*\"}\n",
                          &cfg);
        if (r != 0)
                print_error("%s", fx->out);
        assert_int_equal(r, 0);
        const struct fm_haproxy_config *h = &cfg.actuators.haproxy;
        assert_string_equal(h->socket, "ipv4@127.0.0.1:9999");
        assert_int_equal(h->timeout, 1500);
        assert_int_equal(h->n_mappings, 2);
        assert_int_equal(fm_haproxy_config_validate(h), 0);
        char backend[FM_HAPROXY_NAME_MAX + 1], server[FM_HAPROXY_NAME_MAX + 1];
        assert_int_equal(fm_haproxy_map(h, "web", "v2", backend, server), 0);
        assert_string_equal(backend, "web_be");
        assert_string_equal(server, "web-v2");
        assert_int_equal(fm_haproxy_map(h, "chat", "v1", backend, server), 0);
        assert_string_equal(backend, "chat");
        assert_string_equal(server, "v1");

        char *text = many_entries("haproxy", "backends", 65, false);
        assert_int_equal(load_text(fx, text, &cfg), -EINVAL);
        assert_true(contains(fx->out, ":3: actuators.haproxy.backends: at most 64 entries\n"));
        free(text);

        static const struct bad_key bad[] = {
                {"actuators:\n  haproxy:\n    socket: ipv4@10.0.0.1:9999\n",
                 ":3: actuators.haproxy.socket: expected the absolute path of a unix socket"},
                {"actuators:\n  haproxy:\n    socket: admin.sock\n",
                 ":3: actuators.haproxy.socket: expected the absolute path of a unix socket"},
                {"actuators:\n  haproxy:\n    socket: /@A107@\n",
                 ":3: actuators.haproxy.socket: too long (at most 107 bytes)"},
                {"actuators:\n  haproxy:\n    timeout_s: 0\n",
                 ":3: actuators.haproxy.timeout_s: must be greater than 0"},
                {"actuators:\n  haproxy:\n    backends:\n      - {deployment: web, backend: "
                 "\"web be\"}\n",
                 ":4: actuators.haproxy.backends[0].backend: expected \"\" or a name"},
                {"actuators:\n  haproxy:\n    backends:\n      - deployment: web\n"
                 "        server: \"{target};disable\"\n",
                 ":5: actuators.haproxy.backends[0].server: expected a server name pattern"},
                {"actuators:\n  haproxy:\n    backends:\n      - {deployment: web, weight: 1}\n",
                 ":4: actuators.haproxy.backends[0].weight: unknown key in a backend mapping "
                 "(deployment, backend, server)"},
                {"actuators:\n  haproxy:\n    backends:\n      - {deployment: web, server: 1}\n",
                 ":4: actuators.haproxy.backends[0].server: expected a string, got an integer"},
        };
        expect_bad_keys(fx, bad, sizeof(bad) / sizeof(bad[0]));
}

static void test_mlflow_section(void **state)
{
        struct fixture *fx = *state;
        struct fm_config cfg;

        int r = load_text(fx,
                          "actuators:\n"
                          "  mlflow:\n"
                          "    uri: https://mlflow.example:8443/prefix\n"
                          "    ca_file: @DIR@/ca.pem\n"
                          "    username_file: @DIR@/user\n"
                          "    password_file: @DIR@/pass\n"
                          "    token_file: @DIR@/pass\n"
                          "    alias: champion\n"
                          "    threshold_tag: fm.threshold\n"
                          "    rolled_back_tag: fm/rolled back\n"
                          "    timeout_s: 30\n"
                          "    models:\n"
                          "      - {deployment: web, model: web-classifier}\n",
                          &cfg);
        if (r != 0)
                print_error("%s", fx->out);
        assert_int_equal(r, 0);
        const struct fm_mlflow_config *m = &cfg.actuators.mlflow;
        char path[600];
        assert_string_equal(m->uri, "https://mlflow.example:8443/prefix");
        snprintf(path, sizeof(path), "%s/ca.pem", fx->dir);
        assert_string_equal(m->ca_file, path);
        snprintf(path, sizeof(path), "%s/user", fx->dir);
        assert_string_equal(m->username_file, path);
        snprintf(path, sizeof(path), "%s/pass", fx->dir);
        assert_string_equal(m->password_file, path);
        assert_string_equal(m->token_file, path);
        assert_string_equal(m->alias, "champion");
        assert_string_equal(m->threshold_tag, "fm.threshold");
        assert_string_equal(m->rolled_back_tag, "fm/rolled back");
        assert_int_equal(m->timeout, 30000);
        assert_int_equal(m->n_models, 1); /* the default "*" entry is gone */
        assert_string_equal(m->models[0].deployment, "web");
        assert_string_equal(m->models[0].model, "web-classifier");
        assert_int_equal(fm_mlflow_config_validate(m), 0);

        assert_int_equal(
                load_text(fx, "actuators:\n  mlflow:\n    models: [{deployment: web}]\n", &cfg), 0);
        assert_string_equal(cfg.actuators.mlflow.models[0].model, "*");

        static const struct bad_key bad[] = {
                {"actuators:\n  mlflow:\n    uri: mlflow:5000\n",
                 ":3: actuators.mlflow.uri: expected an http:// or https:// URL"},
                {"actuators:\n  mlflow:\n    uri: http://\n",
                 ":3: actuators.mlflow.uri: the host is empty"},
                {"actuators:\n  mlflow:\n    uri: http://@A256@\n",
                 ":3: actuators.mlflow.uri: too long (at most 255 bytes)"},
                {"actuators:\n  mlflow:\n    alias: Latest\n",
                 ":3: actuators.mlflow.alias: expected an MLflow alias"},
                {"actuators:\n  mlflow:\n    alias: v3\n",
                 ":3: actuators.mlflow.alias: expected an MLflow alias"},
                {"actuators:\n  mlflow:\n    threshold_tag: \"fm:threshold\"\n",
                 ":3: actuators.mlflow.threshold_tag: expected an MLflow tag key"},
                {"actuators:\n  mlflow:\n    rolled_back_tag: \"\"\n",
                 ":3: actuators.mlflow.rolled_back_tag: expected an MLflow tag key"},
                {"actuators:\n  mlflow:\n    timeout_s: 601\n",
                 ":3: actuators.mlflow.timeout_s: must be at most 600"},
                {"actuators:\n  mlflow:\n    username_file: @DIR@/user\n",
                 ":3: actuators.mlflow.username_file: needs actuators.mlflow.password_file"},
                {"actuators:\n  mlflow:\n    username_file: @DIR@/user\n"
                 "    password_file: @DIR@/nope\n",
                 ":4: actuators.mlflow.password_file: cannot access @DIR@/nope"},
                {"actuators:\n  mlflow:\n    models:\n      - {deployment: web, model: \"\"}\n",
                 ":4: actuators.mlflow.models[0].model: must not be empty"},
                {"actuators:\n  mlflow:\n    models:\n      - {model: web}\n",
                 ":4: actuators.mlflow.models[0]: each model mapping needs deployment"},
                {"actuators:\n  mlflow:\n    models: {web: web}\n",
                 ":3: actuators.mlflow.models: expected a list of model mappings, got a mapping"},
        };
        expect_bad_keys(fx, bad, sizeof(bad) / sizeof(bad[0]));
}

static void test_alertmanager_section(void **state)
{
        struct fixture *fx = *state;
        struct fm_config cfg;

        int r = load_text(fx,
                          "actuators:\n"
                          "  alertmanager:\n"
                          "    url: http://127.0.0.1:19093/\n"
                          "    ca_file: @DIR@/ca.pem\n"
                          "    timeout_s: 3\n"
                          "    alertname: FleetmedicTest\n"
                          "    generator_url: https://grafana.example/d/fleet\n"
                          "    ttl_s: 3600\n"
                          "    labels:\n"
                          "      team: ml\n"
                          "      env: \"prod eu\"\n",
                          &cfg);
        if (r != 0)
                print_error("%s", fx->out);
        assert_int_equal(r, 0);
        const struct fm_alertmanager_config *a = &cfg.actuators.alertmanager;
        char path[600];
        assert_string_equal(a->url, "http://127.0.0.1:19093/");
        snprintf(path, sizeof(path), "%s/ca.pem", fx->dir);
        assert_string_equal(a->ca_file, path);
        assert_int_equal(a->timeout, 3000);
        assert_string_equal(a->alertname, "FleetmedicTest");
        assert_string_equal(a->generator_url, "https://grafana.example/d/fleet");
        assert_int_equal(a->ttl, 3600000);
        assert_int_equal(a->n_labels, 2);
        assert_string_equal(a->labels[0].name, "team");
        assert_string_equal(a->labels[0].value, "ml");
        assert_string_equal(a->labels[1].name, "env");
        assert_string_equal(a->labels[1].value, "prod eu");
        assert_int_equal(fm_alertmanager_config_validate(a), 0);

        char *text = many_entries("alertmanager", "labels", 16, true);
        assert_int_equal(load_text(fx, text, &cfg), 0);
        assert_int_equal(cfg.actuators.alertmanager.n_labels, 16);
        free(text);
        text = many_entries("alertmanager", "labels", 17, true);
        assert_int_equal(load_text(fx, text, &cfg), -EINVAL);
        assert_true(contains(fx->out, ":3: actuators.alertmanager.labels: at most 16 labels"));
        free(text);

        static const struct bad_key bad[] = {
                {"actuators:\n  alertmanager:\n    url: localhost:9093\n",
                 ":3: actuators.alertmanager.url: expected an http:// or https:// URL"},
                {"actuators:\n  alertmanager:\n    url: \"http://am:9093/#x\"\n",
                 ":3: actuators.alertmanager.url: must not contain spaces"},
                {"actuators:\n  alertmanager:\n    generator_url: grafana\n",
                 ":3: actuators.alertmanager.generator_url: expected an http:// or https:// URL"},
                {"actuators:\n  alertmanager:\n    alertname: \"\"\n",
                 ":3: actuators.alertmanager.alertname: must not be empty"},
                {"actuators:\n  alertmanager:\n    ca_file: @DIR@/nope\n",
                 ":3: actuators.alertmanager.ca_file: cannot access"},
                {"actuators:\n  alertmanager:\n    ttl_s: 0.5\n",
                 ":3: actuators.alertmanager.ttl_s: must be 0 (no endsAt) or between 1 and "
                 "604800 (got 0.5)"},
                {"actuators:\n  alertmanager:\n    ttl_s: 604801\n",
                 ":3: actuators.alertmanager.ttl_s: must be at most 604800"},
                {"actuators:\n  alertmanager:\n    ttl_s: -1\n",
                 ":3: actuators.alertmanager.ttl_s: must be at least 0"},
                {"actuators:\n  alertmanager:\n    labels:\n      team: ml\n      severity: x\n",
                 ":5: actuators.alertmanager.labels.severity: alertname, severity, deployment "
                 "and instance are set by fleetmedic"},
                {"actuators:\n  alertmanager:\n    labels:\n      2team: ml\n",
                 ":4: actuators.alertmanager.labels.2team: a label name is a letter or _"},
                {"actuators:\n  alertmanager:\n    labels:\n      team-a: ml\n",
                 ":4: actuators.alertmanager.labels.team-a: a label name is a letter or _"},
                {"actuators:\n  alertmanager:\n    labels:\n      @A64@: ml\n",
                 ":4: actuators.alertmanager.labels.@A64@: a label name is at most 63 bytes"},
                {"actuators:\n  alertmanager:\n    labels:\n      team: 42\n",
                 ":4: actuators.alertmanager.labels.team: expected a string, got an integer"},
                {"actuators:\n  alertmanager:\n    labels:\n      team: \"a\\nb\"\n",
                 ":4: actuators.alertmanager.labels.team: must not contain control characters"},
                {"actuators:\n  alertmanager:\n    labels:\n      team: @A256@\n",
                 ":4: actuators.alertmanager.labels.team: too long (at most 255 bytes)"},
                {"actuators:\n  alertmanager:\n    labels: [team]\n",
                 ":3: actuators.alertmanager.labels: expected a mapping of label names to "
                 "values, got a sequence"},
        };
        expect_bad_keys(fx, bad, sizeof(bad) / sizeof(bad[0]));
}

/* Every problem in a file is reported, in line order, each once. */
static void test_many_errors(void **state)
{
        struct fixture *fx = *state;
        struct fm_config cfg;
        int r = load_text(fx,
                          "mqtt:\n"                         /* 1 */
                          "  url: http://broker\n"          /* 2: scheme */
                          "  qos: 2\n"                      /* 3: range */
                          "  reconnect_min_s: 30\n"         /* 4 */
                          "  reconnect_max_s: 10\n"         /* 5: cross-field */
                          "  tls:\n"                        /* 6 */
                          "    cert_file: @DIR@/nope.pem\n" /* 7: missing file */
                          "state_dir: relative\n"           /* 8: not absolute */
                          "dry_run: no\n"                   /* 9: type */
                          "colour: blue\n"                  /* 10: unknown */
                          "breaker:\n"                      /* 11 */
                          "  window_s: -1\n"                /* 12: range; no cross-field */
                          "  window_slots: 7\n"             /* 13 */
                          "  failure_rate: 2\n"             /* 14: range */
                          "  failure_rate: 0.1\n"           /* 15: duplicate */
                          "log: {level: loud}\n",           /* 16: log level */
                          &cfg);
        assert_int_equal(r, -EINVAL);
        assert_int_equal(fx->n_errors, 11);
        static const char *const want[] = {
                ":2: mqtt.url: ",
                ":3: mqtt.qos: ",
                ":5: mqtt.reconnect_max_s: ",
                ":7: mqtt.tls.cert_file: cannot access",
                ":8: state_dir: ",
                ":9: dry_run: ",
                ":10: colour: unknown key",
                ":12: breaker.window_s: must be greater than 0",
                ":14: breaker.failure_rate: must be at most 1",
                ":15: breaker.failure_rate: duplicate key",
                ":16: log.level: ",
        };
        const char *prev = fx->out;
        for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
                const char *at = strstr(fx->out, want[i]);
                if (!at || at < prev)
                        print_error("missing or out of order: %s\n%s", want[i], fx->out);
                assert_non_null(at);
                assert_true(at >= prev);
                prev = at;
        }
        /* One line per error and nothing else. */
        size_t lines = 0;
        for (const char *p = fx->out; *p; p++)
                lines += *p == '\n';
        assert_int_equal(lines, 11);
        assert_false(contains(fx->out, "window_slots"));
        assert_false(contains(fx->out, "needs mqtt.tls.key_file"));
}

/* With more errors than are shown, the rest are counted. */
static void test_error_cap(void **state)
{
        struct fixture *fx = *state;
        size_t cap = 200 * 16 + 1, len = 0;
        char *text = malloc(cap);
        assert_non_null(text);
        for (int i = 0; i < 150; i++)
                len += (size_t)snprintf(text + len, cap - len, "key%d: 1\n", i);
        write_file(fx->config, text, len);
        free(text);
        struct fm_config cfg;
        assert_int_equal(load_path(fx, fx->config, &cfg), -EINVAL);
        assert_int_equal(fx->n_errors, 150);
        assert_true(contains(fx->out, ":1: key0: unknown key"));
        assert_true(contains(fx->out, ":100: key99: unknown key"));
        assert_false(contains(fx->out, "key100:"));
        assert_true(contains(fx->out, ": 50 more errors not shown"));
}

static void test_missing_file(void **state)
{
        struct fixture *fx = *state;
        struct fm_config cfg, orig;
        memset(&cfg, 0x5a, sizeof(cfg));
        memcpy(&orig, &cfg, sizeof(cfg));
        char path[512];
        snprintf(path, sizeof(path), "%s/does-not-exist.yaml", fx->dir);
        assert_int_equal(load_path(fx, path, &cfg), -ENOENT);
        assert_int_equal(fx->n_errors, 1);
        char want[600];
        snprintf(want, sizeof(want), "%s: cannot read: No such file or directory\n", path);
        assert_string_equal(fx->out, want);
        assert_memory_equal(&cfg, &orig, sizeof(cfg));

        assert_int_equal(load_path(fx, fx->dir, &cfg), -EISDIR);
        assert_int_equal(fx->n_errors, 1);

        /* errors and ret_n_errors may be NULL */
        assert_int_equal(fm_config_load(path, &cfg, NULL, NULL), -ENOENT);
        assert_int_equal(fm_config_load(EXAMPLE, &cfg, NULL, NULL), 0);
}

static void test_unreadable_file(void **state)
{
        struct fixture *fx = *state;
        if (geteuid() == 0) {
                print_message("running as root: access() ignores permissions, skipped\n");
                skip();
        }
        char path[512];
        snprintf(path, sizeof(path), "%s/pass", fx->dir);
        assert_int_equal(chmod(path, 0), 0);
        struct fm_config cfg;
        int r = load_text(fx, "mqtt:\n  username_file: @DIR@/user\n  password_file: @DIR@/pass\n",
                          &cfg);
        assert_int_equal(chmod(path, 0600), 0);
        assert_int_equal(r, -EINVAL);
        assert_int_equal(fx->n_errors, 1);
        assert_true(contains(fx->out, ":3: mqtt.password_file: "));
        assert_true(contains(fx->out, "is not readable: Permission denied"));

        assert_int_equal(chmod(fx->config, 0), 0);
        r = load_path(fx, fx->config, &cfg);
        assert_int_equal(chmod(fx->config, 0600), 0);
        assert_int_equal(r, -EACCES);
}

/* Size, node and depth limits. */
static void test_limits(void **state)
{
        struct fixture *fx = *state;
        struct fm_config cfg;
        char *text = malloc(FILE_MAX + 2);
        assert_non_null(text);

        /* Exactly 1 MiB loads; one byte more does not. */
        const char head[] = "log: {level: debug}\n#";
        memcpy(text, head, strlen(head));
        memset(text + strlen(head), 'x', FILE_MAX - strlen(head) - 1);
        text[FILE_MAX - 1] = '\n';
        write_file(fx->config, text, FILE_MAX);
        assert_int_equal(load_path(fx, fx->config, &cfg), 0);
        assert_int_equal(cfg.log_level, LOG_DEBUG);
        text[FILE_MAX - 1] = 'x';
        text[FILE_MAX] = '\n';
        write_file(fx->config, text, FILE_MAX + 1);
        assert_int_equal(load_path(fx, fx->config, &cfg), -EFBIG);
        assert_int_equal(fx->n_errors, 1);
        assert_true(contains(fx->out, ": larger than 1048576 bytes"));

        /* More than 10000 nodes. */
        size_t len = (size_t)snprintf(text, FILE_MAX, "x: [");
        for (int i = 0; i < 10001; i++)
                len += (size_t)snprintf(text + len, FILE_MAX - len, "1,");
        len += (size_t)snprintf(text + len, FILE_MAX - len, "1]\n");
        write_file(fx->config, text, len);
        assert_int_equal(load_path(fx, fx->config, &cfg), -EINVAL);
        assert_int_equal(fx->n_errors, 1);
        assert_true(contains(fx->out, ":1: more than 10000 nodes"));

        /* Deeper than 32 levels. */
        len = (size_t)snprintf(text, FILE_MAX, "x:\n  ");
        for (int i = 0; i < 40; i++)
                text[len++] = '[';
        for (int i = 0; i < 40; i++)
                text[len++] = ']';
        text[len++] = '\n';
        write_file(fx->config, text, len);
        assert_int_equal(load_path(fx, fx->config, &cfg), -EINVAL);
        assert_int_equal(fx->n_errors, 1);
        assert_true(contains(fx->out, ":2: nesting deeper than 32 levels"));
        free(text);
}

/* ---- fm_mqtt_parse_url
 * --------------------------------------------------------------------------- */

static void test_parse_url(void **state)
{
        (void)state;
        static const struct {
                const char *url;
                const char *host;
                uint16_t port;
                bool tls;
        } good[] = {
                {"mqtt://broker", "broker", 1883, false},
                {"mqtts://broker", "broker", 8883, true},
                {"mqtt://10.0.0.1:1884", "10.0.0.1", 1884, false},
                {"mqtts://broker.example.com:443", "broker.example.com", 443, true},
                {"mqtt://[::1]", "::1", 1883, false},
                {"mqtts://[2001:db8::1]:8884", "2001:db8::1", 8884, true},
                {"mqtt://[::ffff:10.0.0.1]:1", "::ffff:10.0.0.1", 1, false},
                {"MQTT://Broker-1:65535", "Broker-1", 65535, false},
                {"mqtt://mosquitto_1", "mosquitto_1", 1883, false},
        };
        for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
                struct fm_mqtt_config m;
                fm_mqtt_config_default(&m);
                if (fm_mqtt_parse_url(&m, good[i].url) != 0)
                        print_error("rejected: %s\n", good[i].url);
                assert_int_equal(fm_mqtt_parse_url(&m, good[i].url), 0);
                assert_string_equal(m.host, good[i].host);
                assert_int_equal(m.port, good[i].port);
                assert_int_equal(m.tls, good[i].tls);
        }

        char long_host[300];
        snprintf(long_host, sizeof(long_host), "mqtt://%0255d", 0);
        struct fm_mqtt_config m;
        fm_mqtt_config_default(&m);
        assert_int_equal(fm_mqtt_parse_url(&m, long_host), 0);
        assert_int_equal(strlen(m.host), 255);
        snprintf(long_host, sizeof(long_host), "mqtt://%0256d", 0);

        const char *const bad[] = {
                "",
                "mqtt://",
                "mqtts://",
                "mqtt://:1883",
                "http://broker",
                "tcp://broker:1883",
                "mqtt:/broker",
                "mqtt//broker",
                "broker:1883",
                "mqtt://broker:0",
                "mqtt://broker:65536",
                "mqtt://broker:123456",
                "mqtt://broker:",
                "mqtt://broker:-1",
                "mqtt://broker:+1",
                "mqtt://broker: 1",
                "mqtt://broker:1883/",
                "mqtt://broker/fleet",
                "mqtt://broker?x=1",
                "mqtt://broker#f",
                "mqtt://user@broker",
                "mqtt://user:pw@broker:1883",
                "mqtt://::1",
                "mqtt://::1:1883",
                "mqtt://[::1",
                "mqtt://[]:1883",
                "mqtt://[zz::1]:1883",
                "mqtt://[10.0.0.1]:1883",
                "mqtt://[::1]x",
                "mqtt://[::1]:",
                "mqtt://[fe80::1%eth0]",
                "mqtt://bro ker",
                "mqtt:// broker",
                "mqtt://broker ",
                long_host,
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                struct fm_mqtt_config a, b;
                memset(&a, 0x5a, sizeof(a));
                memcpy(&b, &a, sizeof(b));
                if (fm_mqtt_parse_url(&a, bad[i]) != -EINVAL)
                        print_error("accepted: \"%s\"\n", bad[i]);
                assert_int_equal(fm_mqtt_parse_url(&a, bad[i]), -EINVAL);
                assert_memory_equal(&a, &b, sizeof(a)); /* untouched */
        }
        assert_int_equal(fm_mqtt_parse_url(&m, NULL), -EINVAL);
        assert_int_equal(fm_mqtt_parse_url(NULL, "mqtt://b"), -EINVAL);
}

/* ---- fm_http_parse_listen
 * ------------------------------------------------------------------------ */

static void test_parse_listen(void **state)
{
        (void)state;
        static const struct {
                const char *listen;
                int family;
                const char *addr;
                uint16_t port;
        } good[] = {
                {"127.0.0.1:9187", AF_INET, "127.0.0.1", 9187},
                {"0.0.0.0:0", AF_INET, "0.0.0.0", 0},
                {"255.255.255.255:65535", AF_INET, "255.255.255.255", 65535},
                {"[::1]:9187", AF_INET6, "::1", 9187},
                {"[::]:0", AF_INET6, "::", 0},
                {"[2001:db8::42]:80", AF_INET6, "2001:db8::42", 80},
                {"[::ffff:10.0.0.1]:8080", AF_INET6, "::ffff:10.0.0.1", 8080},
        };
        for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
                struct sockaddr_storage ss;
                unsigned len = 0;
                if (fm_http_parse_listen(good[i].listen, &ss, &len) != 0)
                        print_error("rejected: %s\n", good[i].listen);
                assert_int_equal(fm_http_parse_listen(good[i].listen, &ss, &len), 0);
                assert_int_equal(ss.ss_family, good[i].family);
                char buf[INET6_ADDRSTRLEN];
                if (good[i].family == AF_INET) {
                        const struct sockaddr_in *sin = (const struct sockaddr_in *)&ss;
                        assert_int_equal(len, sizeof(*sin));
                        assert_int_equal(ntohs(sin->sin_port), good[i].port);
                        assert_non_null(inet_ntop(AF_INET, &sin->sin_addr, buf, sizeof(buf)));
                } else {
                        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&ss;
                        assert_int_equal(len, sizeof(*sin6));
                        assert_int_equal(ntohs(sin6->sin6_port), good[i].port);
                        assert_non_null(inet_ntop(AF_INET6, &sin6->sin6_addr, buf, sizeof(buf)));
                }
                assert_string_equal(buf, good[i].addr);
        }

        static const char *const bad[] = {
                "",
                ":9187",
                "9187",
                "localhost:9187",
                "*:9187",
                "127.0.0.1",
                "127.0.0.1:",
                "127.0.0.1:65536",
                "127.0.0.1:100000",
                "127.0.0.1:-1",
                "127.0.0.1:+80",
                "127.0.0.1: 80",
                "127.0.0.1:80 ",
                " 127.0.0.1:80",
                "127.0.0.1:0x50",
                "127.0.0.1:80:90",
                "1.2.3:80",
                "1.2.3.4.5:80",
                "256.0.0.1:80",
                "1.2.3.04:80",
                "::1:9187",
                "[::1]",
                "[::1]:",
                "[::1]9187",
                "[]:80",
                "[127.0.0.1]:80",
                "[::1]:80x",
                "[::1]:65536",
                "[::1%lo]:80",
                "[localhost]:80",
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                struct sockaddr_storage ss, orig;
                memset(&ss, 0x5a, sizeof(ss));
                memcpy(&orig, &ss, sizeof(ss));
                unsigned len = 12345;
                if (fm_http_parse_listen(bad[i], &ss, &len) != -EINVAL)
                        print_error("accepted: \"%s\"\n", bad[i]);
                assert_int_equal(fm_http_parse_listen(bad[i], &ss, &len), -EINVAL);
                assert_int_equal(len, 12345);
                assert_memory_equal(&ss, &orig, sizeof(ss));
        }
        struct sockaddr_storage ss;
        unsigned len;
        assert_int_equal(fm_http_parse_listen(NULL, &ss, &len), -EINVAL);
        assert_int_equal(fm_http_parse_listen(FM_HTTP_DEFAULT_LISTEN, &ss, &len), 0);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_defaults),
                cmocka_unit_test(test_decoder),
                cmocka_unit_test(test_log_level),
                cmocka_unit_test_setup_teardown(test_full_yaml, setup, teardown),
                cmocka_unit_test_setup_teardown(test_full_json, setup, teardown),
                cmocka_unit_test_setup_teardown(test_empty, setup, teardown),
                cmocka_unit_test_setup_teardown(test_scalars, setup, teardown),
                cmocka_unit_test_setup_teardown(test_locale, setup, teardown),
                cmocka_unit_test_setup_teardown(test_example, setup, teardown),
                cmocka_unit_test_setup_teardown(test_actuators_section, setup, teardown),
                cmocka_unit_test_setup_teardown(test_systemd_section, setup, teardown),
                cmocka_unit_test_setup_teardown(test_kubernetes_section, setup, teardown),
                cmocka_unit_test_setup_teardown(test_haproxy_section, setup, teardown),
                cmocka_unit_test_setup_teardown(test_mlflow_section, setup, teardown),
                cmocka_unit_test_setup_teardown(test_alertmanager_section, setup, teardown),
                cmocka_unit_test_setup_teardown(test_bad, setup, teardown),
                cmocka_unit_test_setup_teardown(test_policy_sections, setup, teardown),
                cmocka_unit_test_setup_teardown(test_many_errors, setup, teardown),
                cmocka_unit_test_setup_teardown(test_error_cap, setup, teardown),
                cmocka_unit_test_setup_teardown(test_missing_file, setup, teardown),
                cmocka_unit_test_setup_teardown(test_unreadable_file, setup, teardown),
                cmocka_unit_test_setup_teardown(test_limits, setup, teardown),
                cmocka_unit_test(test_parse_url),
                cmocka_unit_test(test_parse_listen),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
