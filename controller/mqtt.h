/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * MQTT ingestion: one libmosquitto client driven from the sd-event loop.
 *
 * The client's socket is an sd-event IO source (EPOLLIN always, EPOLLOUT
 * only while mosquitto_want_write()), mosquitto_loop_misc() runs from a
 * 1 s timer, and nothing runs on another thread. When the connection is
 * lost the IO source is dropped and a reconnect is scheduled with
 * exponential backoff and full jitter: uniform over
 * [reconnect_min / 2, min(reconnect_max, reconnect_min * 2^attempt)] (the
 * jitter comes from a generator seeded at creation; a CONNACK resets
 * attempt). Connection attempts are non-blocking except for the DNS lookup:
 * give a numeric address or a name the local resolver answers at once. An
 * attempt without a CONNACK after 15 s is abandoned and retried.
 *
 * Subscriptions: QoS `qos` to <prefix>/+/+/health, <prefix>/+/+/kpi and
 * <prefix>/+/+/feedback (so the controller's own _fleetmedic topics never
 * come back to it), each wrapped in $share/<group>/ when shared_group is
 * set. They are made again on every connect unless the broker reports a
 * resumed session (v5: session present flag) that already has them.
 *
 * Session: client_id with clean start off and, for v5, the session expiry
 * interval property, so QoS 1 messages queued while the controller is away
 * are delivered when it returns. A v5 CONNECT also announces a Maximum
 * Packet Size of 16 MiB + 64 KiB (the largest decoder payload limit plus
 * room for the topic): the broker drops larger messages instead of sending
 * them. v3.1.1 has no such cap.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <systemd/sd-event.h>

#include "event.h"
#include "util.h"

#define FM_MQTT_HOST_MAX 255
#define FM_MQTT_CLIENT_ID_MAX 128 /* MQTT v5 allows more; brokers commonly cap at 23..65535 */
#define FM_MQTT_GROUP_MAX 64
#define FM_PATH_MAX 4096
#define FM_MQTT_WILL_MAX 256

struct fm_mqtt_config {
        char host[FM_MQTT_HOST_MAX + 1];           /* from the URL; IPv6 without brackets */
        uint16_t port;                             /* default 1883, or 8883 for mqtts:// */
        bool tls;                                  /* mqtts:// */
        int protocol;                              /* 5 (default) or 4 (v3.1.1) */
        char client_id[FM_MQTT_CLIENT_ID_MAX + 1]; /* default "fleetmedic" */
        char topic_prefix[FM_PREFIX_MAX + 1];      /* default "fleet" */
        int qos;                                   /* 0 or 1; default 1 */
        uint32_t session_expiry_s;                 /* v5 session expiry; default 3600 */
        uint16_t keepalive_s;                      /* default 30; 0 or >= 5 */
        uint16_t receive_maximum; /* v5 in-flight QoS 1 from the broker; default 100 */
        char shared_group[FM_MQTT_GROUP_MAX + 1]; /* "" for none */
        char username_file[FM_PATH_MAX];          /* "" for none; first line is the user name */
        char password_file[FM_PATH_MAX];          /* "" for none; first line is the password */
        char ca_file[FM_PATH_MAX];                /* mqtts: CA bundle; "" means the system's */
        char cert_file[FM_PATH_MAX];              /* client certificate; with key_file */
        char key_file[FM_PATH_MAX];
        fm_ms reconnect_min; /* default 1 s */
        fm_ms reconnect_max; /* default 60 s */
        /* will, set by the daemon: retained, QoS 1; "" for none */
        char will_topic[FM_PREFIX_MAX + 64];
        char will_payload[FM_MQTT_WILL_MAX];
};

void fm_mqtt_config_default(struct fm_mqtt_config *cfg);

/*
 * Parses mqtt://host[:port] or mqtts://host[:port] (IPv6 as [addr]) into
 * host, port and tls. Returns 0 or -EINVAL; cfg untouched on error.
 */
int fm_mqtt_parse_url(struct fm_mqtt_config *cfg, const char *url);

/*
 * Called from inside the event loop; any member may be NULL. A callback may
 * call fm_mqtt_publish() and the accessors, never fm_mqtt_free() on the
 * client that called it.
 */
struct fm_mqtt_callbacks {
        /* A message on one of the subscriptions. topic is NUL-terminated;
         * payload (never NULL) and topic are valid only during the call. */
        void (*message)(void *userdata, const char *topic, const void *payload, size_t len);
        /* CONNACK accepted. */
        void (*connected)(void *userdata, bool session_present);
        /* Every subscription acknowledged with a granted QoS (not a failure
         * code), or taken over from a resumed session. */
        void (*subscribed)(void *userdata);
        /*
         * The connection is gone, or an attempt to connect failed; a
         * reconnect is scheduled. Called once per lost connection and once
         * per failed attempt. reason: 1..127 a MOSQ_ERR_*; 128..255 an MQTT
         * v5 reason code (CONNACK refusal or server DISCONNECT; v3.1.1
         * CONNACK codes 1..5 are given as their v5 equivalents 132..136);
         * negative: -errno (a socket error, -ETIMEDOUT for no CONNACK in
         * time, or the error reading a credential file).
         */
        void (*disconnected)(void *userdata, int reason);
};

struct fm_mqtt;

/*
 * Creates the client and starts connecting on e. Credentials are read from
 * their files here (and again on each reconnect, so a rotated password is
 * picked up). Returns 0, -EINVAL (bad config), -ENOENT/-EACCES (credential
 * or TLS files), -ENOMEM. A broker that is down is not an error: the client
 * keeps retrying. The first attempt runs from the loop, so no callback is
 * called before this returns. cfg and cb are copied; e is referenced.
 * Calls mosquitto_lib_init(), balanced by fm_mqtt_free() (libmosquitto
 * counts the calls); like libmosquitto, not thread-safe. A client
 * certificate without ca_file trusts the OS store and /etc/ssl/certs.
 */
int fm_mqtt_new(sd_event *e, const struct fm_mqtt_config *cfg, const struct fm_mqtt_callbacks *cb,
                void *userdata, struct fm_mqtt **ret);

/*
 * Sends DISCONNECT if connected (so the will is not published) and waits at
 * most 1 s for it to be written, then frees. Accepts NULL; returns NULL.
 */
struct fm_mqtt *fm_mqtt_free(struct fm_mqtt *m);

/*
 * Queues a publish (qos 0 or 1; the payload is copied). Returns 0, -ENOTCONN
 * while not connected (no CONNACK yet, or the socket failed while writing),
 * -EINVAL (bad topic, qos or size), -ENOMEM. QoS 1 messages wait in
 * libmosquitto's memory until acknowledged; the caller bounds its rate.
 */
int fm_mqtt_publish(struct fm_mqtt *m, const char *topic, const void *payload, size_t len, int qos,
                    bool retain);

bool fm_mqtt_connected(const struct fm_mqtt *m);
bool fm_mqtt_subscribed(const struct fm_mqtt *m);

/* Successful connections after the first one. */
uint64_t fm_mqtt_reconnects(const struct fm_mqtt *m);

/*
 * The failure code (0x80 or above) the broker gave in the last SUBACK that
 * refused a subscription, or 0 once one granted them all. While the
 * subscriptions are refused, fm_mqtt_subscribed() is false and they are
 * retried with the reconnect backoff.
 */
int fm_mqtt_subscribe_error(const struct fm_mqtt *m);
