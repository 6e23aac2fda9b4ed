/* SPDX-License-Identifier: MIT */

/*
 * The HTTP server against real loopback sockets. The server runs on this
 * thread's sd-event loop; each request comes from a client thread with a
 * blocking socket, which writes a byte to a pipe when it is done. The test
 * runs the loop until every client has reported or a deadline passes.
 *
 * Clean-up on every exit path: the fixture's teardown (which cmocka also
 * runs after a failed assertion) shuts down any client socket still open,
 * which wakes its thread, joins it, and frees the servers and the loop.
 */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-event.h>

#include "buf.h"
#include "http.h"
#include "util.h"

#define MAX_CLIENTS 4
#define MAX_SERVERS 2
#define BIG_BODY_LEN (2u << 20) /* larger than the socket buffers, and than BODY_KEEP_MAX */
#define WAIT_S 10               /* how long an ordinary exchange may take */
#define CLIENT_RCVTIMEO_S 30    /* backstop so a client thread can never hang forever */

/* ---- fixture ------------------------------------------------------------ */

struct client {
        pthread_t thread;
        bool started;
        int sock;
        int notify_fd;
        struct sockaddr_storage sa;
        socklen_t sa_len;
        const char *req;
        size_t req_len;
        int err;            /* positive errno of a failed connect/send/recv, or 0 */
        struct fm_buf resp; /* everything read until EOF */
        double elapsed;     /* seconds from connect to EOF */
};

struct handler_ctx {
        unsigned calls;
        char last_path[512];
};

struct fx {
        sd_event *e;
        struct fm_http *h[MAX_SERVERS];
        struct handler_ctx ctx;
        int notify[2];
        sd_event_source *notify_src;
        unsigned n_done;
        struct client c[MAX_CLIENTS];
        unsigned n_clients;
};

static double mono_s(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/*
 * The test handler: /hello and /json answer with fixed bodies, /fail
 * returns 0 (a handler that could not build its body), /badtype sets a
 * content type with a CRLF in it, /big a body larger than any socket
 * buffer; anything else is 404. It records every path.
 */
static unsigned handler(void *userdata, const char *path, struct fm_buf *body,
                        const char **content_type)
{
        struct handler_ctx *ctx = userdata;

        ctx->calls++;
        snprintf(ctx->last_path, sizeof(ctx->last_path), "%s", path);
        if (strcmp(path, "/hello") == 0)
                return fm_buf_printf(body, "hello\n") < 0 ? 0 : 200;
        if (strcmp(path, "/json") == 0) {
                *content_type = "application/json";
                return fm_buf_printf(body, "{\"ok\":true}") < 0 ? 0 : 200;
        }
        if (strcmp(path, "/badtype") == 0) {
                *content_type = "text/plain\r\nX-Injected: 1";
                return fm_buf_printf(body, "body") < 0 ? 0 : 200;
        }
        if (strcmp(path, "/fail") == 0) {
                (void)fm_buf_printf(body, "half-built");
                return 0;
        }
        if (strcmp(path, "/big") == 0) {
                for (unsigned i = 0; i < BIG_BODY_LEN; i++)
                        if (fm_buf_append(body, &"0123456789abcdef"[i % 16], 1) < 0)
                                return 0;
                return 200;
        }
        return fm_buf_printf(body, "not found: %s\n", path) < 0 ? 0 : 404;
}

static int on_notify(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
        struct fx *fx = userdata;
        char buf[16];
        ssize_t n;

        (void)s;
        (void)revents;
        n = read(fd, buf, sizeof(buf));
        if (n > 0)
                fx->n_done += (unsigned)n;
        return 0;
}

static int setup(void **state)
{
        struct fx *fx = calloc(1, sizeof(*fx));

        assert_non_null(fx);
        fx->notify[0] = fx->notify[1] = -1;
        assert_int_equal(sd_event_new(&fx->e), 0);
        assert_int_equal(pipe2(fx->notify, O_CLOEXEC | O_NONBLOCK), 0);
        assert_int_equal(
                sd_event_add_io(fx->e, &fx->notify_src, fx->notify[0], EPOLLIN, on_notify, fx), 0);
        *state = fx;
        return 0;
}

static void client_reap(struct client *c)
{
        if (c->started) {
                /* Wakes a thread still blocked in connect/send/recv; harmless if it is done. */
                shutdown(c->sock, SHUT_RDWR);
                pthread_join(c->thread, NULL);
                c->started = false;
        }
        if (c->sock >= 0)
                close(c->sock);
        c->sock = -1;
        fm_buf_done(&c->resp);
}

static int teardown(void **state)
{
        struct fx *fx = *state;

        for (unsigned i = 0; i < fx->n_clients; i++)
                client_reap(&fx->c[i]);
        for (unsigned i = 0; i < MAX_SERVERS; i++)
                fx->h[i] = fm_http_free(fx->h[i]);
        sd_event_source_disable_unref(fx->notify_src);
        if (fx->notify[0] >= 0)
                close(fx->notify[0]);
        if (fx->notify[1] >= 0)
                close(fx->notify[1]);
        sd_event_unref(fx->e);
        free(fx);
        return 0;
}

static void *client_main(void *arg)
{
        struct client *c = arg;
        double t0 = mono_s();
        size_t off = 0;

        if (connect(c->sock, (struct sockaddr *)&c->sa, c->sa_len) < 0) {
                c->err = errno;
                goto done;
        }
        while (off < c->req_len) {
                ssize_t n = send(c->sock, c->req + off, c->req_len - off, MSG_NOSIGNAL);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        c->err = errno;
                        goto done;
                }
                off += (size_t)n;
        }
        for (;;) {
                char buf[65536];
                ssize_t n = recv(c->sock, buf, sizeof(buf), 0);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        c->err = errno;
                        break;
                }
                if (n == 0)
                        break;
                if (fm_buf_append(&c->resp, buf, (size_t)n) < 0) {
                        c->err = ENOBUFS;
                        break;
                }
        }
done:
        c->elapsed = mono_s() - t0;
        (void)!write(c->notify_fd, "x", 1);
        return NULL;
}

/* Starts a client thread that sends req to host:port and reads until the server closes. */
static struct client *client_start(struct fx *fx, int family, uint16_t port, const char *req)
{
        struct timeval tv = {.tv_sec = CLIENT_RCVTIMEO_S};
        struct client *c;

        assert_true(fx->n_clients < MAX_CLIENTS);
        c = &fx->c[fx->n_clients++];
        *c = (struct client){
                .sock = -1, .notify_fd = fx->notify[1], .req = req, .req_len = strlen(req)};
        if (family == AF_INET6) {
                struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&c->sa;

                s6->sin6_family = AF_INET6;
                s6->sin6_port = htons(port);
                s6->sin6_addr = in6addr_loopback;
                c->sa_len = sizeof(*s6);
        } else {
                struct sockaddr_in *s4 = (struct sockaddr_in *)&c->sa;

                s4->sin_family = AF_INET;
                s4->sin_port = htons(port);
                s4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
                c->sa_len = sizeof(*s4);
        }
        c->sock = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(c->sock >= 0);
        assert_int_equal(setsockopt(c->sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
        assert_int_equal(pthread_create(&c->thread, NULL, client_main, c), 0);
        c->started = true;
        return c;
}

/* Runs the loop until every started client has finished, failing after timeout_s. */
static void run_until_done(struct fx *fx, double timeout_s)
{
        double deadline = mono_s() + timeout_s;

        while (fx->n_done < fx->n_clients) {
                double left = deadline - mono_s();

                if (left <= 0)
                        fail_msg("clients not done after %.0f s (%u of %u)", timeout_s, fx->n_done,
                                 fx->n_clients);
                assert_true(sd_event_run(fx->e, (uint64_t)(left * 1e6) + 1) >= 0);
        }
        for (unsigned i = 0; i < fx->n_clients; i++)
                if (fx->c[i].started) {
                        pthread_join(fx->c[i].thread, NULL);
                        fx->c[i].started = false;
                }
}

/* One request over IPv4 on port, returning the finished client. */
static struct client *exchange(struct fx *fx, uint16_t port, const char *req)
{
        struct client *c = client_start(fx, AF_INET, port, req);

        run_until_done(fx, WAIT_S);
        assert_int_equal(c->err, 0);
        return c;
}

static uint16_t start_server(struct fx *fx, const char *listen)
{
        assert_int_equal(fm_http_new(fx->e, listen, handler, &fx->ctx, &fx->h[0]), 0);
        assert_non_null(fx->h[0]);
        assert_true(fm_http_port(fx->h[0]) != 0);
        return fm_http_port(fx->h[0]);
}

/* ---- response parsing --------------------------------------------------- */

static const char *resp_text(const struct client *c)
{
        return c->resp.data ? c->resp.data : "";
}

static unsigned resp_status(const struct client *c)
{
        unsigned status = 0;

        if (sscanf(resp_text(c), "HTTP/1.%*[01] %3u ", &status) != 1)
                fail_msg("not an HTTP response: \"%.80s\"", resp_text(c));
        return status;
}

/* The value of the first header called name (case-insensitive), or NULL. */
static const char *resp_header(const struct client *c, const char *name, char *out, size_t size)
{
        const char *p = strstr(resp_text(c), "\r\n");
        const char *end = strstr(resp_text(c), "\r\n\r\n");
        size_t nl = strlen(name);

        while (p && end && p < end) {
                p += 2;
                if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
                        const char *v = p + nl + 1, *eol = strstr(v, "\r\n");

                        while (*v == ' ')
                                v++;
                        snprintf(out, size, "%.*s", (int)(eol - v), v);
                        return out;
                }
                p = strstr(p, "\r\n");
        }
        return NULL;
}

/* Everything after the header block of the (first) response. */
static const char *resp_body(const struct client *c)
{
        const char *end = strstr(resp_text(c), "\r\n\r\n");

        assert_non_null(end);
        return end + 4;
}

static void assert_header(const struct client *c, const char *name, const char *want)
{
        char v[256];

        if (!resp_header(c, name, v, sizeof(v)))
                fail_msg("no %s header in \"%s\"", name, resp_text(c));
        assert_string_equal(v, want);
}

/* ---- tests -------------------------------------------------------------- */

static void test_get(void **state)
{
        struct fx *fx = *state;
        uint16_t port = start_server(fx, "127.0.0.1:0");
        struct client *c = exchange(fx, port,
                                    "GET /hello?x=1&y=%20 HTTP/1.1\r\nHost: t\r\n"
                                    "Connection: close\r\n\r\n");

        assert_int_equal(resp_status(c), 200);
        assert_string_equal(resp_body(c), "hello\n");
        assert_header(c, "Content-Type", "text/plain; charset=utf-8");
        assert_header(c, "Content-Length", "6");
        assert_int_equal(fx->ctx.calls, 1);
        assert_string_equal(fx->ctx.last_path, "/hello");
}

static void test_content_type_and_status(void **state)
{
        struct fx *fx = *state;
        uint16_t port = start_server(fx, "127.0.0.1:0");
        struct client *c;

        c = exchange(fx, port, "GET /json HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
        assert_int_equal(resp_status(c), 200);
        assert_header(c, "Content-Type", "application/json");
        assert_string_equal(resp_body(c), "{\"ok\":true}");

        c = exchange(fx, port, "GET /nope HTTP/1.0\r\n\r\n");
        assert_int_equal(resp_status(c), 404);
        assert_header(c, "Content-Type", "text/plain; charset=utf-8");
        assert_string_equal(resp_body(c), "not found: /nope\n");
        assert_string_equal(fx->ctx.last_path, "/nope");

        /* A %3F is part of the path, not a query. */
        c = exchange(fx, port, "GET /a%3Fb?c HTTP/1.0\r\n\r\n");
        assert_int_equal(resp_status(c), 404);
        assert_string_equal(fx->ctx.last_path, "/a?b");
}

/* A handler that could not build its body gets a plain 500, not its half-built text. */
static void test_handler_failure(void **state)
{
        struct fx *fx = *state;
        uint16_t port = start_server(fx, "127.0.0.1:0");
        struct client *c;

        c = exchange(fx, port, "GET /fail HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
        assert_int_equal(resp_status(c), 500);
        assert_header(c, "Content-Type", "text/plain; charset=utf-8");
        assert_null(strstr(resp_body(c), "half-built"));

        /* A content type MHD refuses (header injection) also ends in a plain 500. */
        c = exchange(fx, port, "GET /badtype HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
        assert_int_equal(resp_status(c), 500);
        assert_null(strstr(resp_text(c), "X-Injected"));
        assert_header(c, "Content-Type", "text/plain; charset=utf-8");
}

static void test_method_not_allowed(void **state)
{
        static const char *const reqs[] = {
                "POST /hello HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello",
                "PUT /hello HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n",
                "DELETE /hello HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
                "OPTIONS * HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        };
        struct fx *fx = *state;
        uint16_t port = start_server(fx, "127.0.0.1:0");

        for (size_t i = 0; i < ARRAY_SIZE(reqs); i++) {
                struct client *c = exchange(fx, port, reqs[i]);

                assert_int_equal(resp_status(c), 405);
                assert_header(c, "Allow", "GET, HEAD");
                client_reap(c);
                fx->n_clients = 0;
                fx->n_done = 0;
        }
        assert_int_equal(fx->ctx.calls, 0);
}

static void test_head(void **state)
{
        struct fx *fx = *state;
        uint16_t port = start_server(fx, "127.0.0.1:0");
        struct client *c = exchange(
                fx, port, "HEAD /hello?q HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");

        assert_int_equal(resp_status(c), 200);
        assert_header(c, "Content-Type", "text/plain; charset=utf-8");
        assert_header(c, "Content-Length", "6");
        assert_string_equal(resp_body(c), "");
        assert_string_equal(fx->ctx.last_path, "/hello");
}

/* Two pipelined requests on one connection: both served, the first keeps it open. */
static void test_keep_alive(void **state)
{
        struct fx *fx = *state;
        uint16_t port = start_server(fx, "127.0.0.1:0");
        struct client *c = exchange(fx, port,
                                    "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n"
                                    "GET /json HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
        const char *second;
        char v[64];

        assert_int_equal(resp_status(c), 200);
        assert_null(resp_header(c, "Connection", v, sizeof(v)));
        assert_int_equal(strncmp(resp_body(c), "hello\n", 6), 0);
        second = strstr(resp_body(c), "HTTP/1.1 200 ");
        assert_non_null(second);
        assert_non_null(strstr(second, "\r\n\r\n{\"ok\":true}"));
        assert_int_equal(fx->ctx.calls, 2);
}

/* A GET that carries a body is answered without reading it, and the connection closed. */
static void test_get_with_body(void **state)
{
        struct fx *fx = *state;
        uint16_t port = start_server(fx, "127.0.0.1:0");
        struct client *c = exchange(fx, port,
                                    "GET /hello HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n"
                                    "\r\npartial body");

        assert_int_equal(resp_status(c), 200);
        assert_string_equal(resp_body(c), "hello\n");
        assert_header(c, "Connection", "close");
}

/* A body larger than the socket buffers goes out over several loop iterations. */
static void test_big_body(void **state)
{
        struct fx *fx = *state;
        uint16_t port = start_server(fx, "127.0.0.1:0");
        struct client *c;
        const char *body;
        char want_len[32];

        for (int round = 0; round < 2; round++) {
                c = exchange(fx, port, "GET /big HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
                assert_int_equal(resp_status(c), 200);
                snprintf(want_len, sizeof(want_len), "%u", BIG_BODY_LEN);
                assert_header(c, "Content-Length", want_len);
                body = resp_body(c);
                assert_int_equal(c->resp.len - (size_t)(body - c->resp.data), BIG_BODY_LEN);
                for (unsigned i = 0; i < BIG_BODY_LEN; i += 4099)
                        assert_int_equal(body[i], "0123456789abcdef"[i % 16]);
                client_reap(c);
                fx->n_clients = 0;
                fx->n_done = 0;
        }
        /* And the server still answers small requests after the big buffer went. */
        c = exchange(fx, port, "GET /hello HTTP/1.0\r\n\r\n");
        assert_string_equal(resp_body(c), "hello\n");
}

static void test_many_sequential(void **state)
{
        struct fx *fx = *state;
        uint16_t port = start_server(fx, "127.0.0.1:0");

        for (int i = 0; i < 50; i++) {
                struct client *c = exchange(fx, port, "GET /hello HTTP/1.0\r\n\r\n");

                assert_int_equal(resp_status(c), 200);
                client_reap(c);
                fx->n_clients = 0;
                fx->n_done = 0;
        }
        assert_int_equal(fx->ctx.calls, 50);
}

static void test_address_in_use(void **state)
{
        struct fx *fx = *state;
        uint16_t port = start_server(fx, "127.0.0.1:0");
        struct fm_http *sentinel = (struct fm_http *)&fx->ctx, *second = sentinel;
        char listen[64];
        int r;

        snprintf(listen, sizeof(listen), "127.0.0.1:%u", port);
        r = fm_http_new(fx->e, listen, handler, &fx->ctx, &second);
        if (r == 0)
                fx->h[1] = second; /* so that teardown frees it */
        assert_int_equal(r, -EADDRINUSE);
        assert_ptr_equal(second, sentinel); /* untouched on failure */

        /* The first server is unharmed. */
        struct client *c = exchange(fx, port, "GET /hello HTTP/1.0\r\n\r\n");
        assert_int_equal(resp_status(c), 200);

        /* Once it is gone the port can be bound again at once (SO_REUSEADDR, TIME_WAIT). */
        fx->h[0] = fm_http_free(fx->h[0]);
        assert_int_equal(fm_http_new(fx->e, listen, handler, &fx->ctx, &fx->h[0]), 0);
        assert_int_equal(fm_http_port(fx->h[0]), port);
}

/* An address that is not local: the bind error comes back as it is. */
static void test_address_not_available(void **state)
{
        struct fx *fx = *state;
        FILE *f = fopen("/proc/sys/net/ipv4/ip_nonlocal_bind", "re");
        int nonlocal = 0;

        if (f) {
                if (fscanf(f, "%d", &nonlocal) != 1)
                        nonlocal = 0;
                fclose(f);
        }
        if (nonlocal)
                skip();
        /* 192.0.2.0/24 is TEST-NET-1, never assigned to a host. */
        assert_int_equal(fm_http_new(fx->e, "192.0.2.1:0", handler, &fx->ctx, &fx->h[0]),
                         -EADDRNOTAVAIL);
        assert_null(fx->h[0]);
}

static void test_bad_arguments(void **state)
{
        static const char *const bad[] = {
                "",
                "nonsense",
                "127.0.0.1",
                "127.0.0.1:",
                ":80",
                "127.0.0.1:65536",
                "127.0.0.1:-1",
                "127.0.0.1:80x",
                "[::1]",
                "[::1]:",
                "[::1:80",
                "1.2.3.4.5:80",
                "[1.2.3.4]:80",
                "300.0.0.1:80",
        };
        struct fx *fx = *state;
        struct fm_http **h = &fx->h[0]; /* teardown frees anything wrongly created */

        for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
                int r = fm_http_new(fx->e, bad[i], handler, &fx->ctx, h);

                if (r != -EINVAL)
                        fail_msg("\"%s\": got %d, want -EINVAL", bad[i], r);
                assert_null(*h);
        }
        assert_int_equal(fm_http_new(NULL, "127.0.0.1:0", handler, NULL, h), -EINVAL);
        assert_int_equal(fm_http_new(fx->e, NULL, handler, NULL, h), -EINVAL);
        assert_int_equal(fm_http_new(fx->e, "127.0.0.1:0", NULL, NULL, h), -EINVAL);
        assert_int_equal(fm_http_new(fx->e, "127.0.0.1:0", handler, NULL, NULL), -EINVAL);
        assert_null(*h);
        assert_null(fm_http_free(NULL));
        assert_int_equal(fm_http_port(NULL), 0);
}

/* IPv6 loopback, when the host has it. */
static void test_ipv6(void **state)
{
        struct fx *fx = *state;
        int r = fm_http_new(fx->e, "[::1]:0", handler, &fx->ctx, &fx->h[0]);
        struct client *c;

        if (r == -EAFNOSUPPORT || r == -EADDRNOTAVAIL)
                skip();
        assert_int_equal(r, 0);
        c = client_start(fx, AF_INET6, fm_http_port(fx->h[0]),
                         "GET /hello?v6 HTTP/1.1\r\nHost: [::1]\r\nConnection: close\r\n\r\n");
        run_until_done(fx, WAIT_S);
        assert_int_equal(c->err, 0);
        assert_int_equal(resp_status(c), 200);
        assert_string_equal(resp_body(c), "hello\n");
        assert_string_equal(fx->ctx.last_path, "/hello");
}

/*
 * Dual stack: an IPv6 listener bound to the v4-mapped loopback address.
 * The kernel refuses that bind on a v6-only socket, so success shows the
 * server cleared IPV6_V6ONLY; an IPv4 client then reaches it.
 */
static void test_dual_stack(void **state)
{
        struct fx *fx = *state;
        int r = fm_http_new(fx->e, "[::ffff:127.0.0.1]:0", handler, &fx->ctx, &fx->h[0]);
        struct client *c;

        if (r == -EAFNOSUPPORT)
                skip();
        assert_int_equal(r, 0);
        c = exchange(fx, fm_http_port(fx->h[0]), "GET /hello HTTP/1.0\r\n\r\n");
        assert_int_equal(resp_status(c), 200);
}

/*
 * Idle connections are closed after FM_HTTP_TIMEOUT_S: one that never sent
 * a byte and one stuck in the middle of its request line. Both wait in
 * parallel, so this takes about FM_HTTP_TIMEOUT_S once.
 */
static void test_idle_timeout(void **state)
{
        struct fx *fx = *state;
        uint16_t port = start_server(fx, "127.0.0.1:0");
        struct client *idle = client_start(fx, AF_INET, port, "");
        struct client *partial = client_start(fx, AF_INET, port, "GET /hel");

        run_until_done(fx, FM_HTTP_TIMEOUT_S + 5);
        assert_int_equal(idle->err, 0);
        assert_int_equal(partial->err, 0);
        assert_int_equal(idle->resp.len, 0);
        assert_true(idle->elapsed >= FM_HTTP_TIMEOUT_S - 1);
        assert_true(idle->elapsed < FM_HTTP_TIMEOUT_S + 4);
        assert_true(partial->elapsed >= FM_HTTP_TIMEOUT_S - 1);
        assert_true(partial->elapsed < FM_HTTP_TIMEOUT_S + 4);
        assert_int_equal(fx->ctx.calls, 0);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_get, setup, teardown),
                cmocka_unit_test_setup_teardown(test_content_type_and_status, setup, teardown),
                cmocka_unit_test_setup_teardown(test_handler_failure, setup, teardown),
                cmocka_unit_test_setup_teardown(test_method_not_allowed, setup, teardown),
                cmocka_unit_test_setup_teardown(test_head, setup, teardown),
                cmocka_unit_test_setup_teardown(test_keep_alive, setup, teardown),
                cmocka_unit_test_setup_teardown(test_get_with_body, setup, teardown),
                cmocka_unit_test_setup_teardown(test_big_body, setup, teardown),
                cmocka_unit_test_setup_teardown(test_many_sequential, setup, teardown),
                cmocka_unit_test_setup_teardown(test_address_in_use, setup, teardown),
                cmocka_unit_test_setup_teardown(test_address_not_available, setup, teardown),
                cmocka_unit_test_setup_teardown(test_bad_arguments, setup, teardown),
                cmocka_unit_test_setup_teardown(test_ipv6, setup, teardown),
                cmocka_unit_test_setup_teardown(test_dual_stack, setup, teardown),
                cmocka_unit_test_setup_teardown(test_idle_timeout, setup, teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
