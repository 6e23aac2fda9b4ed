/* SPDX-License-Identifier: MIT */

/*
 * The MQTT client's configuration: defaults and the broker URL.
 *
 * Kept apart from mqtt.c (the client itself) so the configuration loader,
 * its tests and its fuzzers need neither libmosquitto nor sd-event.
 *
 * The URL grammar is deliberately small: scheme, host, optional port and
 * nothing else. User info is refused because credentials come from files
 * (a password in a URL ends up in logs and `ps`), and a path, query or
 * fragment would mean nothing to MQTT, so accepting one would only hide a
 * mistake.
 */

#include "mqtt.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

void fm_mqtt_config_default(struct fm_mqtt_config *cfg)
{
        *cfg = (struct fm_mqtt_config){
                .host = "127.0.0.1",
                .port = 1883,
                .tls = false,
                .protocol = 5,
                .client_id = "fleetmedic",
                .topic_prefix = FM_DECODER_DEFAULT_PREFIX,
                .qos = 1,
                .session_expiry_s = 3600,
                .keepalive_s = 30,
                .receive_maximum = 100,
                .reconnect_min = 1 * FM_MS_PER_S,
                .reconnect_max = 60 * FM_MS_PER_S,
        };
}

/* A port of 1..5 decimal digits, value 1..65535; no sign, no spaces. */
static int parse_port(const char *s, size_t n, uint16_t *ret)
{
        if (n == 0 || n > 5)
                return -EINVAL;
        unsigned v = 0;
        for (size_t i = 0; i < n; i++) {
                if (s[i] < '0' || s[i] > '9')
                        return -EINVAL;
                v = v * 10 + (unsigned)(s[i] - '0');
        }
        if (v == 0 || v > 65535)
                return -EINVAL;
        *ret = (uint16_t)v;
        return 0;
}

/* A DNS name or IPv4 address: letters, digits, '-', '.', '_' (container service names). */
static bool host_char(char ch)
{
        return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
               ch == '-' || ch == '.' || ch == '_';
}

int fm_mqtt_parse_url(struct fm_mqtt_config *cfg, const char *url)
{
        if (!cfg || !url)
                return -EINVAL;

        bool tls;
        const char *p;
        if (strncasecmp(url, "mqtt://", 7) == 0) {
                tls = false;
                p = url + 7;
        } else if (strncasecmp(url, "mqtts://", 8) == 0) {
                tls = true;
                p = url + 8;
        } else
                return -EINVAL;

        const char *host, *rest;
        size_t host_len;
        if (*p == '[') {
                /* IPv6 literal; zone ids ("%eth0") are not supported. */
                const char *close = strchr(p, ']');
                if (!close)
                        return -EINVAL;
                host = p + 1;
                host_len = (size_t)(close - host);
                if (host_len == 0 || host_len >= INET6_ADDRSTRLEN)
                        return -EINVAL;
                char buf[INET6_ADDRSTRLEN];
                memcpy(buf, host, host_len);
                buf[host_len] = '\0';
                struct in6_addr a6;
                if (inet_pton(AF_INET6, buf, &a6) != 1)
                        return -EINVAL;
                rest = close + 1;
        } else {
                host = p;
                while (host_char(*p))
                        p++;
                host_len = (size_t)(p - host);
                if (host_len == 0)
                        return -EINVAL;
                rest = p;
        }
        if (host_len > FM_MQTT_HOST_MAX)
                return -EINVAL;

        uint16_t port = tls ? 8883 : 1883;
        if (*rest == ':') {
                if (parse_port(rest + 1, strlen(rest + 1), &port) < 0)
                        return -EINVAL;
        } else if (*rest != '\0')
                return -EINVAL; /* a path, query, user info or a character no host has */

        memcpy(cfg->host, host, host_len);
        cfg->host[host_len] = '\0';
        cfg->port = port;
        cfg->tls = tls;
        return 0;
}
