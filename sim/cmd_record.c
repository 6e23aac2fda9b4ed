/* SPDX-License-Identifier: MIT */
#include "cmd_record.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>
#include <mosquitto.h>
#include <systemd/sd-event.h>

#include "cli.h"
#include "event.h"
#include "mqtt.h"
#include "util.h"

enum {
        OPT_MQTT = 0x100,
        OPT_PREFIX,
        OPT_DURATION,
};

#define RECONNECT_DELAY_MS 1000
#define MISC_INTERVAL_MS 1000
#define KEEPALIVE_S 30
#define DURATION_MAX_S (366.0 * 24 * 3600)

/*
 * The recorder's own small client: libmosquitto on sd-event, like the
 * daemon's (controller/mqtt.c) but with the subscriptions a recording needs,
 * the controller's decisions included, which the daemon's client leaves out
 * on purpose. A broker that goes away is retried every second.
 */
struct recorder {
        sd_event *event;
        struct mosquitto *m;
        sd_event_source *io, *misc, *reconnect;
        const char *host;
        uint16_t port;
        char prefix[FM_PREFIX_MAX + 1];
        FILE *out;
        const char *out_path;
        uint64_t lines, decisions;
        int error; /* the first write error, stops the recording */
        bool subscribed_once;
};

static void usage(FILE *out)
{
        fputs("Usage: fleetmedic record [--mqtt URL] [--topic-prefix P] [-o FILE]\n"
              "                         [--duration S]\n"
              "\n"
              "Subscribes to P/+/+/{health,kpi,feedback} and the controller's decisions\n"
              "(P/+/_fleetmedic/decisions) and writes one JSON line per message:\n"
              "{\"t\": receive time in ms, \"topic\": ..., \"payload\": the payload as a string},\n"
              "with \"source\": \"controller\" on decisions. `fleetmedic replay` reads it.\n"
              "\n"
              "      --mqtt URL          broker, mqtt://HOST[:PORT] (default "
              "mqtt://127.0.0.1:1883)\n"
              "      --topic-prefix P    (default fleet)\n"
              "  -o, --output FILE       the log (default: stdout); appended to\n"
              "      --duration S        stop after S seconds (default: until SIGINT/SIGTERM)\n"
              "  -h, --help              show this help\n"
              "\n"
              "Exit status: 0 ok, 1 failure (the log cannot be written, the broker refused\n"
              "the subscriptions), 2 usage.\n",
              out);
}

static fm_ms realtime_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (fm_ms)ts.tv_sec * FM_MS_PER_S + ts.tv_nsec / 1000000;
}

static void stop(struct recorder *rc, int error)
{
        if (error && !rc->error)
                rc->error = error;
        sd_event_exit(rc->event, 0);
}

static int watch_socket(struct recorder *rc);
static void lost(struct recorder *rc);

static void update_events(struct recorder *rc)
{
        if (rc->io)
                (void)sd_event_source_set_io_events(
                        rc->io, EPOLLIN | (mosquitto_want_write(rc->m) ? EPOLLOUT : 0));
}

static bool connection_gone(int rc)
{
        return rc == MOSQ_ERR_CONN_LOST || rc == MOSQ_ERR_NO_CONN || rc == MOSQ_ERR_ERRNO ||
               rc == MOSQ_ERR_KEEPALIVE || rc == MOSQ_ERR_PROTOCOL;
}

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
        struct recorder *rc = userdata;
        int r = MOSQ_ERR_SUCCESS;
        (void)s;
        (void)fd;

        if (revents & (EPOLLIN | EPOLLHUP | EPOLLERR))
                r = mosquitto_loop_read(rc->m, 1);
        if (r == MOSQ_ERR_SUCCESS && (revents & EPOLLOUT))
                r = mosquitto_loop_write(rc->m, 1);
        if (connection_gone(r)) {
                lost(rc);
                return 0;
        }
        update_events(rc);
        return 0;
}

static int arm(sd_event_source *s, fm_ms ms)
{
        int r = sd_event_source_set_time_relative(s, (uint64_t)ms * 1000);
        return r < 0 ? r : sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
}

static int on_misc(sd_event_source *s, uint64_t usec, void *userdata)
{
        struct recorder *rc = userdata;
        (void)usec;
        if (rc->io) {
                int r = mosquitto_loop_misc(rc->m);
                if (connection_gone(r))
                        lost(rc);
                else
                        update_events(rc);
        }
        return arm(s, MISC_INTERVAL_MS);
}

static int on_reconnect(sd_event_source *s, uint64_t usec, void *userdata)
{
        struct recorder *rc = userdata;
        (void)usec;
        if (mosquitto_reconnect(rc->m) != MOSQ_ERR_SUCCESS || watch_socket(rc) < 0)
                return arm(s, RECONNECT_DELAY_MS);
        return 0;
}

static void lost(struct recorder *rc)
{
        rc->io = sd_event_source_disable_unref(rc->io);
        fprintf(stderr, "fleetmedic record: connection to the broker lost; reconnecting\n");
        (void)arm(rc->reconnect, RECONNECT_DELAY_MS);
}

static int watch_socket(struct recorder *rc)
{
        int fd = mosquitto_socket(rc->m);
        if (fd < 0)
                return -ENOTCONN;
        rc->io = sd_event_source_disable_unref(rc->io);
        int r = sd_event_add_io(rc->event, &rc->io, fd, EPOLLIN, on_io, rc);
        if (r < 0)
                return r;
        update_events(rc);
        return 0;
}

static void on_connect(struct mosquitto *m, void *obj, int code)
{
        struct recorder *rc = obj;
        static const char *const suffix[] = {"+/+/health", "+/+/kpi", "+/+/feedback",
                                             "+/_fleetmedic/decisions"};
        char storage[ARRAY_SIZE(suffix)][FM_PREFIX_MAX + 32];
        char *subs[ARRAY_SIZE(suffix)];

        if (code != 0) {
                fprintf(stderr, "fleetmedic record: the broker refused the connection (%d)\n",
                        code);
                return;
        }
        for (size_t k = 0; k < ARRAY_SIZE(suffix); k++) {
                snprintf(storage[k], sizeof(storage[k]), "%s/%s", rc->prefix, suffix[k]);
                subs[k] = storage[k];
        }
        if (mosquitto_subscribe_multiple(m, NULL, (int)ARRAY_SIZE(suffix), subs, 1, 0, NULL) !=
            MOSQ_ERR_SUCCESS)
                fprintf(stderr, "fleetmedic record: subscribing failed\n");
}

static void on_subscribe(struct mosquitto *m, void *obj, int mid, int n, const int *granted)
{
        struct recorder *rc = obj;
        (void)m;
        (void)mid;
        for (int k = 0; k < n; k++)
                if (granted[k] >= 0x80) {
                        fprintf(stderr, "fleetmedic record: the broker refused a subscription\n");
                        stop(rc, -EACCES);
                        return;
                }
        if (!rc->subscribed_once)
                fprintf(stderr,
                        "fleetmedic record: subscribed to %s/+/+/{health,kpi,feedback} "
                        "and %s/+/_fleetmedic/decisions\n",
                        rc->prefix, rc->prefix);
        rc->subscribed_once = true;
}

static bool is_decision(const char *topic)
{
        static const char suffix[] = "/_fleetmedic/decisions";
        size_t n = strlen(topic);
        return n >= sizeof(suffix) - 1 && strcmp(topic + n - (sizeof(suffix) - 1), suffix) == 0;
}

static void on_message(struct mosquitto *m, void *obj, const struct mosquitto_message *msg)
{
        struct recorder *rc = obj;
        (void)m;
        if (rc->error)
                return;
        json_object *o = json_object_new_object();
        if (!o) {
                stop(rc, -ENOMEM);
                return;
        }
        bool decision = is_decision(msg->topic);
        json_object_object_add(o, "t", json_object_new_int64(realtime_ms()));
        json_object_object_add(o, "topic", json_object_new_string(msg->topic));
        json_object_object_add(
                o, "payload",
                json_object_new_string_len(msg->payload ? msg->payload : "", msg->payloadlen));
        if (decision)
                json_object_object_add(o, "source", json_object_new_string("controller"));
        const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
                                                                  JSON_C_TO_STRING_NOSLASHESCAPE);
        if (!s || fputs(s, rc->out) == EOF || fputc('\n', rc->out) == EOF ||
            fflush(rc->out) == EOF) {
                stop(rc, s ? -EIO : -ENOMEM);
        } else {
                rc->lines++;
                rc->decisions += decision;
        }
        json_object_put(o);
}

static int on_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata)
{
        (void)s;
        (void)si;
        stop(userdata, 0);
        return 0;
}

static int on_deadline(sd_event_source *s, uint64_t usec, void *userdata)
{
        (void)s;
        (void)usec;
        stop(userdata, 0);
        return 0;
}

static int run(struct recorder *rc, double duration)
{
        sigset_t mask;
        int r;

        if ((r = sd_event_new(&rc->event)) < 0)
                return r;
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        if ((r = sd_event_add_signal(rc->event, NULL, SIGTERM, on_signal, rc)) < 0 ||
            (r = sd_event_add_signal(rc->event, NULL, SIGINT, on_signal, rc)) < 0)
                return r;
        if (duration > 0 &&
            (r = sd_event_add_time_relative(rc->event, NULL, CLOCK_MONOTONIC,
                                            (uint64_t)(duration * 1e6), 1000, on_deadline, rc)) < 0)
                return r;
        if ((r = sd_event_add_time_relative(rc->event, &rc->misc, CLOCK_MONOTONIC,
                                            MISC_INTERVAL_MS * 1000, 0, on_misc, rc)) < 0 ||
            (r = sd_event_add_time_relative(rc->event, &rc->reconnect, CLOCK_MONOTONIC, 0, 0,
                                            on_reconnect, rc)) < 0)
                return r;
        (void)sd_event_source_set_enabled(rc->reconnect, SD_EVENT_OFF);

        rc->m = mosquitto_new(NULL, true, rc);
        if (!rc->m)
                return -ENOMEM;
        mosquitto_connect_callback_set(rc->m, on_connect);
        mosquitto_subscribe_callback_set(rc->m, on_subscribe);
        mosquitto_message_callback_set(rc->m, on_message);
        if (mosquitto_connect(rc->m, rc->host, rc->port, KEEPALIVE_S) != MOSQ_ERR_SUCCESS ||
            watch_socket(rc) < 0) {
                fprintf(stderr,
                        "fleetmedic record: cannot reach the broker at %s:%u yet; "
                        "retrying\n",
                        rc->host, rc->port);
                (void)arm(rc->reconnect, RECONNECT_DELAY_MS);
        }
        r = sd_event_loop(rc->event);
        if (rc->io) {
                mosquitto_disconnect(rc->m);
                (void)mosquitto_loop_write(rc->m, 1);
        }
        return r < 0 ? r : rc->error;
}

int fm_cmd_record(int argc, char **argv)
{
        static const struct option options[] = {
                {"mqtt", required_argument, NULL, OPT_MQTT},
                {"topic-prefix", required_argument, NULL, OPT_PREFIX},
                {"output", required_argument, NULL, 'o'},
                {"duration", required_argument, NULL, OPT_DURATION},
                {"help", no_argument, NULL, 'h'},
                {0},
        };
        struct fm_mqtt_config *mc = malloc(sizeof(*mc));
        struct recorder rc = {.out = stdout, .out_path = "-"};
        const char *url = "mqtt://127.0.0.1:1883", *prefix = FM_DECODER_DEFAULT_PREFIX;
        double duration = 0;
        int c, r, ret = FM_EXIT_USAGE;

        if (!mc) {
                fprintf(stderr, "fleetmedic record: out of memory\n");
                return FM_EXIT_FAILED;
        }
        while ((c = fm_cli_option(argc, argv, "o:h", options, usage)) >= 0) {
                switch (c) {
                case OPT_MQTT:
                        url = optarg;
                        break;
                case OPT_PREFIX:
                        prefix = optarg;
                        break;
                case 'o':
                        rc.out_path = optarg;
                        break;
                case OPT_DURATION:
                        if (fm_cli_number(optarg, &duration) < 0 || duration <= 0 ||
                            duration > DURATION_MAX_S) {
                                fprintf(stderr,
                                        "fleetmedic record: --duration %s: expected "
                                        "seconds > 0\n",
                                        optarg);
                                goto out;
                        }
                        break;
                }
        }
        if (c != FM_CLI_END) {
                ret = fm_cli_exit(c);
                goto out;
        }
        if (optind != argc) {
                fprintf(stderr, "fleetmedic record: unexpected argument %s\n", argv[optind]);
                goto out;
        }
        fm_mqtt_config_default(mc);
        if (fm_mqtt_parse_url(mc, url) < 0 || mc->tls) {
                fprintf(stderr, "fleetmedic record: --mqtt %s: expected mqtt://HOST[:PORT]\n", url);
                goto out;
        }
        if (!fm_cli_prefix_ok("record", prefix))
                goto out;
        memcpy(rc.prefix, prefix, strlen(prefix) + 1);
        rc.host = mc->host;
        rc.port = mc->port;
        ret = FM_EXIT_FAILED;
        rc.out = fm_cli_open_output(rc.out_path, "ae");
        if (!rc.out) {
                fprintf(stderr, "fleetmedic record: %s: %s\n", rc.out_path, strerror(errno));
                goto out;
        }
        mosquitto_lib_init();
        r = run(&rc, duration);
        if (rc.m)
                mosquitto_destroy(rc.m);
        mosquitto_lib_cleanup();
        rc.io = sd_event_source_disable_unref(rc.io);
        rc.misc = sd_event_source_disable_unref(rc.misc);
        rc.reconnect = sd_event_source_disable_unref(rc.reconnect);
        rc.event = sd_event_unref(rc.event);
        r = fm_cli_close_output(rc.out, r);
        if (r < 0) {
                fprintf(stderr, "fleetmedic record: %s\n",
                        r == -EACCES ? "the broker refused the subscriptions" : strerror(-r));
                goto out;
        }
        fprintf(stderr, "fleetmedic record: %" PRIu64 " messages written (%" PRIu64 " decisions)\n",
                rc.lines, rc.decisions);
        ret = FM_EXIT_OK;
out:
        free(mc);
        return ret;
}
