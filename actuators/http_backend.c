/* SPDX-License-Identifier: MIT */
#include "http_backend.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

bool fm_text_terminated(const char *s, size_t size)
{
        return memchr(s, '\0', size) != NULL;
}

bool fm_text_no_controls(const char *s)
{
        for (const unsigned char *p = (const unsigned char *)s; *p; p++)
                if (*p < 0x20 || *p == 0x7f)
                        return false;
        return true;
}

void fm_text_sanitize(char *dst, size_t size, const char *s, size_t max)
{
        size_t i = 0;

        for (; s && s[i] && i < max && i + 1 < size; i++) {
                unsigned char c = (unsigned char)s[i];
                dst[i] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
        }
        if (size > 0)
                dst[i] = '\0';
}

bool fm_http_url_scheme_ok(const char *url)
{
        return strncasecmp(url, "http://", 7) == 0 || strncasecmp(url, "https://", 8) == 0;
}

bool fm_http_base_url_ok(const char *url)
{
        return fm_http_url_scheme_ok(url) && fm_text_no_controls(url) && !strpbrk(url, " ?#");
}

void fm_http_trim_slashes(char *url)
{
        size_t n = strlen(url);

        while (n > 0 && url[n - 1] == '/')
                url[--n] = '\0';
}

void fm_http_transport_detail(const struct fm_httpc_response *resp, char *d, size_t size)
{
        snprintf(d, size, "%s", resp->detail ? resp->detail : strerror(-resp->error));
}

json_object *fm_http_json_object(const struct fm_httpc_response *resp)
{
        struct json_tokener *tok;
        json_object *o;

        if (!resp->body || resp->body_len == 0 || resp->body_len > (size_t)INT32_MAX)
                return NULL;
        tok = json_tokener_new();
        if (!tok)
                return NULL;
        o = json_tokener_parse_ex(tok, resp->body, (int)resp->body_len);
        if (json_tokener_get_error(tok) != json_tokener_success ||
            !json_object_is_type(o, json_type_object)) {
                json_object_put(o);
                o = NULL;
        }
        json_tokener_free(tok);
        return o;
}

int fm_json_add(json_object *o, const char *key, json_object *value)
{
        if (!value || json_object_object_add(o, key, value) < 0) {
                json_object_put(value);
                return -ENOMEM;
        }
        return 0;
}

int fm_json_add_string(json_object *o, const char *key, const char *value)
{
        return fm_json_add(o, key, json_object_new_string(value));
}

fm_ms fm_backend_now(sd_event *event, clockid_t clock)
{
        uint64_t usec = 0;
        struct timespec ts;

        if (event && sd_event_now(event, clock, &usec) >= 0)
                return (fm_ms)(usec / 1000);
        clock_gettime(clock, &ts);
        return (fm_ms)ts.tv_sec * FM_MS_PER_S + ts.tv_nsec / 1000000;
}

int fm_read_small_file(const char *path, size_t max, char **ret, size_t *ret_len)
{
        char *buf;
        size_t len = 0;
        int fd, r = 0;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        buf = malloc(max + 2);
        if (!buf) {
                close(fd);
                return -ENOMEM;
        }
        /* One byte past max tells a file of exactly max bytes from a longer one. */
        while (len <= max) {
                ssize_t n = read(fd, buf + len, max + 1 - len);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        r = -errno;
                        break;
                }
                if (n == 0)
                        break;
                len += (size_t)n;
        }
        close(fd);
        if (r == 0 && len > max)
                r = -EFBIG;
        if (r < 0) {
                free(buf);
                return r;
        }
        buf[len] = '\0';
        *ret = buf;
        if (ret_len)
                *ret_len = len;
        return 0;
}
