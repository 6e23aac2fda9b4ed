/* SPDX-License-Identifier: MIT */
#include "http.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <microhttpd.h>

/*
 * The body buffer is reused across requests. If one response made it grow
 * past this, its memory is given back after the response is queued so a
 * single large page does not pin memory for the daemon's lifetime.
 */
#define BODY_KEEP_MAX (1u << 20)

/* How late the MHD timer may fire; MHD's own timeouts have second granularity. */
#define TIMER_ACCURACY_USEC 1000

struct fm_http {
        struct MHD_Daemon *daemon;
        sd_event_source *io;
        sd_event_source *timer;
        fm_http_handler handler;
        void *userdata;
        struct fm_buf body;
        uint16_t port;
};

static const char TEXT_PLAIN[] = "text/plain; charset=utf-8";

/* Queues a response built from a copy of body[0..len); returns MHD_NO when out of memory. */
static enum MHD_Result respond(struct MHD_Connection *c, unsigned status, const char *body,
                               size_t len, const char *content_type, const char *allow)
{
        struct MHD_Response *resp =
                MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
        enum MHD_Result ok = MHD_NO;

        if (!resp)
                return MHD_NO;
        if (MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type) != MHD_YES)
                goto done;
        if (allow && MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow) != MHD_YES)
                goto done;
        ok = MHD_queue_response(c, status, resp);
done:
        MHD_destroy_response(resp);
        return ok;
}

static enum MHD_Result respond_text(struct MHD_Connection *c, unsigned status, const char *text)
{
        return respond(c, status, text, strlen(text), TEXT_PLAIN, NULL);
}

/* Whether the client announced a request body (which we will not read). */
static bool has_body(struct MHD_Connection *c)
{
        const char *cl =
                MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);

        if (MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING))
                return true;
        return cl && strspn(cl, "0 \t") != strlen(cl);
}

/*
 * MHD's access handler; MHD calls it at least twice per request: first
 * when the headers are in, then (after any body) with *upload_data_size 0.
 *
 * Request bodies are never read. A response queued on the first call
 * makes MHD skip the body and close the connection afterwards, so that is
 * what happens to every method but GET/HEAD (405) and to a GET/HEAD that
 * announces a body. A plain GET/HEAD is answered on the second call, which
 * keeps the connection alive for the next scrape. HEAD gets the GET
 * headers; MHD leaves the body out.
 *
 * url is the path: MHD splits the query off before percent-decoding, so
 * "/metrics?x=1" arrives as "/metrics" and "/a%3Fb" as "/a?b" (which is a
 * path, not a query, and is passed on unchanged).
 *
 * A handler status outside 100..599 means it could not build its answer
 * (typically an fm_buf append failed); the half-built body is dropped and
 * a plain 500 goes out instead. The same 500 replaces a response MHD
 * refuses (no memory, a content type MHD finds malformed).
 */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
        struct fm_http *h = cls;
        const char *content_type = NULL;
        enum MHD_Result ok;
        unsigned status;

        (void)version;
        (void)upload_data;

        if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
                return respond(c, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed\n",
                               strlen("method not allowed\n"), TEXT_PLAIN, "GET, HEAD");
        if (!*con_cls && !has_body(c)) {
                *con_cls = h; /* marks "headers seen, answer on the next call" */
                return MHD_YES;
        }
        if (*upload_data_size != 0) {
                /* Unannounced body bytes after all: discard them. */
                *upload_data_size = 0;
                return MHD_YES;
        }

        fm_buf_reset(&h->body);
        status = h->handler(h->userdata, url ? url : "", &h->body, &content_type);
        ok = MHD_NO;
        if (status >= 100 && status <= 599)
                ok = respond(c, status, h->body.data ? h->body.data : "", h->body.len,
                             content_type ? content_type : TEXT_PLAIN, NULL);
        if (ok != MHD_YES)
                ok = respond_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal server error\n");
        if (h->body.cap > BODY_KEEP_MAX)
                fm_buf_done(&h->body);
        return ok;
}

/*
 * MHD must run again no later than MHD_get_timeout() says: that is how
 * idle connections time out, and a timeout of 0 means MHD already holds
 * data it has not processed (its epoll fd will not wake us for that).
 * Called after every MHD_run, so the timer always reflects the latest
 * state; with no timeout pending it is switched off.
 */
static int arm_timer(struct fm_http *h)
{
        MHD_UNSIGNED_LONG_LONG ms;
        uint64_t now, usec;
        int r;

        if (MHD_get_timeout(h->daemon, &ms) != MHD_YES)
                return sd_event_source_set_enabled(h->timer, SD_EVENT_OFF);

        r = sd_event_now(sd_event_source_get_event(h->timer), CLOCK_MONOTONIC, &now);
        if (r < 0)
                return r;
        /* Saturate below UINT64_MAX, which sd-event reserves for "infinity". */
        if (ms >= (UINT64_MAX - 1 - now) / 1000)
                usec = UINT64_MAX - 1;
        else
                usec = now + (uint64_t)ms * 1000;
        r = sd_event_source_set_time(h->timer, usec);
        if (r < 0)
                return r;
        return sd_event_source_set_enabled(h->timer, SD_EVENT_ONESHOT);
}

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
        struct fm_http *h = userdata;

        (void)s;
        (void)fd;
        (void)revents;
        (void)MHD_run(h->daemon);
        return arm_timer(h);
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
        struct fm_http *h = userdata;

        (void)s;
        (void)usec;
        (void)MHD_run(h->daemon);
        return arm_timer(h);
}

/*
 * MHD_start_daemon() only says NULL, and its documentation promises no
 * errno. In practice errno is still bind()'s when binding failed, but we
 * do not rely on it. Instead, once MHD has failed, ask the kernel the same
 * question it asked: bind a socket of the same family with the same
 * options (SO_REUSEADDR, and IPV6_V6ONLY off for dual stack) to the same
 * address. If that fails, its errno (-EADDRINUSE, -EADDRNOTAVAIL,
 * -EACCES, -EAFNOSUPPORT, ...) is the answer. If it succeeds the address
 * was not the problem and MHD's errno, if any, is the best we have.
 *
 * This is a check after the fact, not a pre-check: we never hold the port
 * before MHD binds, so it cannot make MHD fail, and the only race (the
 * port being freed between MHD's bind and ours) falls back to MHD's errno.
 * The probe socket never listens and is closed at once.
 */
static int bind_errno(const struct sockaddr_storage *sa, unsigned sa_len)
{
        const int one = 1, zero = 0;
        int fd, r = 0;

        fd = socket(sa->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
                r = -errno;
        else if (sa->ss_family == AF_INET6 &&
                 setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero)) < 0)
                r = -errno;
        else if (bind(fd, (const struct sockaddr *)sa, sa_len) < 0)
                r = -errno;
        close(fd);
        return r;
}

/*
 * Listening-socket options, and why MHD_OPTION_LISTENING_ADDRESS_REUSE is
 * not passed: in libmicrohttpd 0.9.75 a value of 1 adds SO_REUSEPORT, so a
 * second controller on the same port would bind successfully and the
 * kernel would split scrapes between the two; a value of 0 means
 * "disallow reuse", which on Linux drops SO_REUSEADDR as well and makes a
 * quick restart fail while old connections sit in TIME_WAIT. Leaving the
 * option out gives plain SO_REUSEADDR, which is what we want: restarts
 * bind at once, a live listener still gets -EADDRINUSE.
 *
 * No MHD_USE_ERROR_LOG: library code never prints.
 */
static struct MHD_Daemon *start_daemon(struct fm_http *h, const struct sockaddr_storage *sa)
{
        unsigned flags = MHD_USE_EPOLL;

        if (sa->ss_family == AF_INET6)
                flags |= MHD_USE_DUAL_STACK;
        return MHD_start_daemon(flags, 0, NULL, NULL, on_request, h, MHD_OPTION_SOCK_ADDR,
                                (const struct sockaddr *)sa, MHD_OPTION_CONNECTION_LIMIT,
                                (unsigned)FM_HTTP_MAX_CONNECTIONS, MHD_OPTION_CONNECTION_TIMEOUT,
                                (unsigned)FM_HTTP_TIMEOUT_S, MHD_OPTION_END);
}

int fm_http_new(sd_event *e, const char *listen, fm_http_handler handler, void *userdata,
                struct fm_http **ret)
{
        struct sockaddr_storage sa;
        const union MHD_DaemonInfo *info;
        struct fm_http *h;
        unsigned sa_len;
        int r;

        if (!e || !listen || !handler || !ret)
                return -EINVAL;
        r = fm_http_parse_listen(listen, &sa, &sa_len);
        if (r < 0)
                return r;

        h = calloc(1, sizeof(*h));
        if (!h)
                return -ENOMEM;
        h->handler = handler;
        h->userdata = userdata;

        errno = 0;
        h->daemon = start_daemon(h, &sa);
        if (!h->daemon) {
                int saved = errno;

                r = bind_errno(&sa, sa_len);
                if (r == 0)
                        r = saved > 0 ? -saved : -EIO;
                goto fail;
        }

        info = MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_BIND_PORT);
        if (!info || info->port == 0) {
                r = -EIO;
                goto fail;
        }
        h->port = info->port;

        info = MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_EPOLL_FD);
        if (!info || info->epoll_fd < 0) {
                r = -EIO;
                goto fail;
        }
        r = sd_event_add_io(e, &h->io, info->epoll_fd, EPOLLIN, on_io, h);
        if (r < 0)
                goto fail;
        r = sd_event_add_time(e, &h->timer, CLOCK_MONOTONIC, 0, TIMER_ACCURACY_USEC, on_timer, h);
        if (r < 0)
                goto fail;
        (void)sd_event_source_set_description(h->io, "fm-http-io");
        (void)sd_event_source_set_description(h->timer, "fm-http-timeout");
        r = arm_timer(h);
        if (r < 0)
                goto fail;

        *ret = h;
        return 0;
fail:
        fm_http_free(h);
        return r;
}

/*
 * The sources go first: the IO source watches MHD's epoll fd, which
 * MHD_stop_daemon closes. Must not be called from inside a handler.
 */
struct fm_http *fm_http_free(struct fm_http *h)
{
        if (!h)
                return NULL;
        h->timer = sd_event_source_disable_unref(h->timer);
        h->io = sd_event_source_disable_unref(h->io);
        if (h->daemon)
                MHD_stop_daemon(h->daemon);
        fm_buf_done(&h->body);
        free(h);
        return NULL;
}

uint16_t fm_http_port(const struct fm_http *h)
{
        return h ? h->port : 0;
}
