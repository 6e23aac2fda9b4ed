/* SPDX-License-Identifier: MIT */

/*
 * The HTTP listen address: "A.B.C.D:PORT" or "[V6]:PORT", numeric only.
 *
 * Kept out of http.c so that the configuration loader validates with the
 * very function the server binds with, without linking libmicrohttpd.
 * Names ("localhost", "*") are refused on purpose: resolving one could give
 * several addresses or block, and which one would be bound is a guess an
 * operator should not have to make. "0.0.0.0" and "[::]" say "all
 * addresses" explicitly.
 */

#include "http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

/* A port of 1..5 decimal digits, value 0..65535; no sign, no spaces. */
static int parse_port(const char *s, uint16_t *ret)
{
        size_t n = strlen(s);
        if (n == 0 || n > 5)
                return -EINVAL;
        unsigned v = 0;
        for (size_t i = 0; i < n; i++) {
                if (s[i] < '0' || s[i] > '9')
                        return -EINVAL;
                v = v * 10 + (unsigned)(s[i] - '0');
        }
        if (v > 65535)
                return -EINVAL;
        *ret = (uint16_t)v;
        return 0;
}

int fm_http_parse_listen(const char *listen, struct sockaddr_storage *ret, unsigned *ret_len)
{
        if (!listen || !ret || !ret_len)
                return -EINVAL;

        char addr[INET6_ADDRSTRLEN];
        const char *port_str;
        int family;

        if (listen[0] == '[') {
                const char *close = strchr(listen, ']');
                if (!close || close[1] != ':')
                        return -EINVAL;
                size_t n = (size_t)(close - (listen + 1));
                if (n == 0 || n >= sizeof(addr))
                        return -EINVAL;
                memcpy(addr, listen + 1, n);
                addr[n] = '\0';
                port_str = close + 2;
                family = AF_INET6;
        } else {
                const char *colon = strchr(listen, ':');
                if (!colon)
                        return -EINVAL;
                size_t n = (size_t)(colon - listen);
                if (n == 0 || n >= INET_ADDRSTRLEN)
                        return -EINVAL;
                memcpy(addr, listen, n);
                addr[n] = '\0';
                port_str = colon + 1;
                family = AF_INET;
        }

        uint16_t port;
        if (parse_port(port_str, &port) < 0)
                return -EINVAL;

        struct sockaddr_storage ss;
        memset(&ss, 0, sizeof(ss));
        unsigned len;
        if (family == AF_INET) {
                struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
                /* inet_pton() takes only the four-part dotted decimal form. */
                if (inet_pton(AF_INET, addr, &sin->sin_addr) != 1)
                        return -EINVAL;
                sin->sin_family = AF_INET;
                sin->sin_port = htons(port);
                len = sizeof(*sin);
        } else {
                struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
                if (inet_pton(AF_INET6, addr, &sin6->sin6_addr) != 1)
                        return -EINVAL;
                sin6->sin6_family = AF_INET6;
                sin6->sin6_port = htons(port);
                len = sizeof(*sin6);
        }

        *ret = ss;
        *ret_len = len;
        return 0;
}
