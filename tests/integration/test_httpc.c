/* SPDX-License-Identifier: MIT */

/*
 * Tests of the asynchronous HTTP client (actuators/httpc.c) against a small
 * python3 server the test starts itself (tests/integration/http_echo.py) on
 * a free loopback port: methods, bodies and headers, statuses, Retry-After,
 * the body cap, timeouts, refused connections, cancel, free with transfers
 * in flight, and HTTPS with a CA made here by openssl. Nothing sleeps: the
 * client is driven by sd_event_run() until a condition holds or a deadline
 * passes.
 */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <json-c/json.h>
#include <systemd/sd-event.h>

#include "httpc.h"
#include "proc.h"

#ifndef FM_SOURCE_ROOT
#define FM_SOURCE_ROOT "."
#endif

#define PYTHON_BIN "/usr/bin/python3"
#define ECHO_SCRIPT FM_SOURCE_ROOT "/tests/integration/http_echo.py"
#define WAIT_MS 20000 /* generous: valgrind is slow */
#define REQ_TIMEOUT 15000

struct got {
        int calls;
        int error;
        long status;
        char *body;
        size_t body_len;
        fm_ms retry_after;
        char ctype[128];
        char detail[256];
};

struct fx {
        sd_event *e;
        struct fm_httpc *h;
        struct fm_peer peer;
        uint16_t port;
        char base[64];
};

static void got_reset(struct got *g)
{
        free(g->body);
        memset(g, 0, sizeof *g);
}

static void on_done(void *userdata, const struct fm_httpc_response *r)
{
        struct got *g = userdata;

        g->calls++;
        g->error = r->error;
        g->status = r->status;
        g->retry_after = r->retry_after;
        assert_non_null(r->body);
        assert_int_equal(r->body[r->body_len], '\0');
        free(g->body);
        g->body = malloc(r->body_len + 1);
        assert_non_null(g->body);
        memcpy(g->body, r->body, r->body_len + 1);
        g->body_len = r->body_len;
        snprintf(g->ctype, sizeof g->ctype, "%s", r->content_type ? r->content_type : "");
        snprintf(g->detail, sizeof g->detail, "%s", r->detail ? r->detail : "");
        if (r->error == 0)
                assert_null(r->detail);
        else
                assert_int_equal(r->status, 0);
}

/* Runs the loop until *counter >= want or ms pass; true when reached. */
static bool run_until(sd_event *e, const int *counter, int want, int ms)
{
        int64_t deadline = fm_test_now_ms() + ms;
        while (*counter < want) {
                int64_t left = deadline - fm_test_now_ms();
                if (left <= 0)
                        return false;
                assert_true(sd_event_run(e, (uint64_t)left * 1000) >= 0);
        }
        return true;
}

static void start_echo(struct fm_peer *p, uint16_t port, const char *cert, const char *key)
{
        char port_s[8];
        snprintf(port_s, sizeof port_s, "%u", port);
        char *argv[] = {PYTHON_BIN, ECHO_SCRIPT, port_s, (char *)cert, (char *)key, NULL};
        if (!cert)
                argv[3] = NULL;
        fm_peer_start(p, argv);
        fm_peer_wait(p, fm_ready_port, &port);
}

static int setup(void **state)
{
        struct fx *f = calloc(1, sizeof *f);
        assert_non_null(f);
        assert_int_equal(sd_event_new(&f->e), 0);
        assert_int_equal(fm_httpc_new(f->e, &f->h), 0);
        fm_peer_init(&f->peer, "httpc");
        f->port = fm_free_port();
        start_echo(&f->peer, f->port, NULL, NULL);
        snprintf(f->base, sizeof f->base, "http://127.0.0.1:%u", f->port);
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        struct fx *f = *state;
        fm_httpc_free(f->h);
        fm_peer_done(&f->peer);
        sd_event_unref(f->e);
        free(f);
        return 0;
}

static void url(const struct fx *f, char *buf, size_t size, const char *path)
{
        int n = snprintf(buf, size, "%s%s", f->base, path);
        assert_true(n > 0 && (size_t)n < size);
}

/* Submits and waits for the single callback. */
static void fetch(struct fx *f, const struct fm_httpc_request *req, struct got *g)
{
        got_reset(g);
        uint64_t id = 0;
        assert_int_equal(fm_httpc_submit(f->h, req, on_done, g, &id), 0);
        assert_true(id > 0);
        assert_int_equal(g->calls, 0); /* never from inside submit */
        assert_true(run_until(f->e, &g->calls, 1, WAIT_MS));
        assert_int_equal(g->calls, 1);
}

/* What the echo server saw (caller puts). */
static json_object *echoed(const struct got *g)
{
        json_object *o = json_tokener_parse(g->body);
        assert_non_null(o);
        return o;
}

static const char *jstr(json_object *o, const char *key)
{
        json_object *v;
        assert_true(json_object_object_get_ex(o, key, &v));
        return json_object_get_string(v);
}

static const char *jheader(json_object *o, const char *name)
{
        json_object *hs, *v;
        assert_true(json_object_object_get_ex(o, "headers", &hs));
        if (!json_object_object_get_ex(hs, name, &v))
                return NULL;
        return json_object_get_string(v);
}

static void test_get_headers(void **state)
{
        struct fx *f = *state;
        struct got g = {0};
        char u[256];
        const char *hdrs[] = {"X-Test: abc", "Accept: application/json", NULL};

        url(f, u, sizeof u, "/echo?x=1&y=two");
        struct fm_httpc_request req = {
                .method = "GET", .url = u, .headers = hdrs, .timeout = REQ_TIMEOUT};
        fetch(f, &req, &g);
        assert_int_equal(g.error, 0);
        assert_int_equal(g.status, 200);
        assert_string_equal(g.ctype, "application/json");
        json_object *o = echoed(&g);
        assert_string_equal(jstr(o, "method"), "GET");
        assert_string_equal(jstr(o, "path"), "/echo");
        assert_string_equal(jstr(o, "query"), "x=1&y=two");
        assert_string_equal(jheader(o, "x-test"), "abc");
        assert_null(jheader(o, "authorization"));
        assert_null(jheader(o, "expect"));
        json_object_put(o);
        assert_int_equal(fm_httpc_in_flight(f->h), 0);
        got_reset(&g);
}

static void test_methods_with_body(void **state)
{
        struct fx *f = *state;
        static const char *const methods[] = {"POST", "PUT", "PATCH", "DELETE"};
        const char *hdrs[] = {"Content-Type: application/json", NULL};
        const char body[] = "{\"a\":1,\"s\":\"x\\u0000y\"}";
        struct got g = {0};
        char u[256];

        url(f, u, sizeof u, "/echo");
        for (size_t i = 0; i < ARRAY_SIZE(methods); i++) {
                struct fm_httpc_request req = {.method = methods[i],
                                               .url = u,
                                               .headers = hdrs,
                                               .body = body,
                                               .body_len = strlen(body),
                                               .timeout = REQ_TIMEOUT};
                fetch(f, &req, &g);
                assert_int_equal(g.error, 0);
                assert_int_equal(g.status, 200);
                json_object *o = echoed(&g);
                assert_string_equal(jstr(o, "method"), methods[i]);
                assert_string_equal(jstr(o, "body"), body);
                assert_string_equal(jheader(o, "content-type"), "application/json");
                assert_string_equal(jheader(o, "content-length"), "22");
                json_object_put(o);
        }

        /* A POST without a body still says Content-Length: 0. */
        struct fm_httpc_request empty = {.method = "POST", .url = u, .timeout = REQ_TIMEOUT};
        fetch(f, &empty, &g);
        json_object *o = echoed(&g);
        assert_string_equal(jstr(o, "method"), "POST");
        assert_string_equal(jheader(o, "content-length"), "0");
        assert_string_equal(jstr(o, "body"), "");
        json_object_put(o);

        /* The body is copied at submit: changing the caller's buffer after does not matter. */
        char mutable[] = "original";
        struct fm_httpc_request copy = {.method = "PATCH",
                                        .url = u,
                                        .body = mutable,
                                        .body_len = strlen(mutable),
                                        .timeout = REQ_TIMEOUT};
        got_reset(&g);
        assert_int_equal(fm_httpc_submit(f->h, &copy, on_done, &g, NULL), 0);
        memset(mutable, 'Z', strlen(mutable));
        assert_true(run_until(f->e, &g.calls, 1, WAIT_MS));
        o = echoed(&g);
        assert_string_equal(jstr(o, "body"), "original");
        json_object_put(o);
        got_reset(&g);
}

static void test_basic_auth(void **state)
{
        struct fx *f = *state;
        struct got g = {0};
        char u[256];

        url(f, u, sizeof u, "/echo");
        struct fm_httpc_request req = {.method = "GET",
                                       .url = u,
                                       .basic_user = "alice",
                                       .basic_password = "s3cret:x",
                                       .timeout = REQ_TIMEOUT};
        fetch(f, &req, &g);
        json_object *o = echoed(&g);
        /* base64("alice:s3cret:x") */
        assert_string_equal(jheader(o, "authorization"), "Basic YWxpY2U6czNjcmV0Ong=");
        json_object_put(o);
        got_reset(&g);
}

static void test_status_and_retry_after(void **state)
{
        struct fx *f = *state;
        struct got g = {0};
        char u[512];

        url(f, u, sizeof u, "/echo?status=404");
        struct fm_httpc_request req = {.method = "GET", .url = u, .timeout = REQ_TIMEOUT};
        fetch(f, &req, &g);
        assert_int_equal(g.error, 0);
        assert_int_equal(g.status, 404);
        assert_int_equal(g.retry_after, 0);
        assert_non_null(strstr(g.body, "\"method\""));

        url(f, u, sizeof u, "/echo?status=429&retry_after=7");
        fetch(f, &req, &g);
        assert_int_equal(g.status, 429);
        assert_int_equal(g.retry_after, 7000);

        url(f, u, sizeof u, "/echo?status=503&retry_after=%20%2012%20");
        fetch(f, &req, &g);
        assert_int_equal(g.status, 503);
        assert_int_equal(g.retry_after, 12000);

        /* Garbage and negative values are ignored; huge ones are clamped to a day. */
        url(f, u, sizeof u, "/echo?status=503&retry_after=-5");
        fetch(f, &req, &g);
        assert_int_equal(g.retry_after, 0);
        url(f, u, sizeof u, "/echo?status=503&retry_after=12abc");
        fetch(f, &req, &g);
        assert_int_equal(g.retry_after, 0);
        url(f, u, sizeof u, "/echo?status=503&retry_after=99999999999999999999999");
        fetch(f, &req, &g);
        assert_int_equal(g.retry_after, (fm_ms)24 * 3600 * 1000);

        /* An HTTP-date: the seconds left until then; a past date means no wait. */
        url(f, u, sizeof u, "/echo?status=503&retry_after=Wed,%2021%20Oct%202015%2007:28:00%20GMT");
        fetch(f, &req, &g);
        assert_int_equal(g.retry_after, 0);
        char date[64], path[256];
        time_t later = time(NULL) + 120;
        struct tm tm;
        assert_non_null(gmtime_r(&later, &tm));
        assert_true(strftime(date, sizeof date, "%a,%%20%d%%20%b%%20%Y%%20%H:%M:%S%%20GMT", &tm) >
                    0);
        snprintf(path, sizeof path, "/echo?status=503&retry_after=%s", date);
        url(f, u, sizeof u, path);
        fetch(f, &req, &g);
        assert_true(g.retry_after >= 100000 && g.retry_after <= 120000);

        /* Redirects are reported, never followed. */
        url(f, u, sizeof u, "/echo?status=302&location=/echo%3Fstatus%3D200");
        fetch(f, &req, &g);
        assert_int_equal(g.error, 0);
        assert_int_equal(g.status, 302);
        got_reset(&g);
}

static void test_body_cap(void **state)
{
        struct fx *f = *state;
        struct got g = {0};
        char u[256], path[128];
        struct fm_httpc_request req = {.method = "GET", .url = u, .timeout = REQ_TIMEOUT};

        snprintf(path, sizeof path, "/echo?size=%u", FM_HTTPC_BODY_MAX);
        url(f, u, sizeof u, path);
        fetch(f, &req, &g);
        assert_int_equal(g.error, 0);
        assert_int_equal(g.body_len, FM_HTTPC_BODY_MAX);
        assert_int_equal(g.body[FM_HTTPC_BODY_MAX - 1], 'x');

        /* One byte more, announced by Content-Length. */
        snprintf(path, sizeof path, "/echo?size=%u", FM_HTTPC_BODY_MAX + 1);
        url(f, u, sizeof u, path);
        fetch(f, &req, &g);
        assert_int_equal(g.error, -EFBIG);
        assert_int_equal(g.status, 0);
        assert_int_equal(g.body_len, 0);
        assert_true(g.detail[0] != '\0');

        /* One byte more, chunked: found while reading. */
        snprintf(path, sizeof path, "/echo?size=%u&chunked=1", FM_HTTPC_BODY_MAX + 1);
        url(f, u, sizeof u, path);
        fetch(f, &req, &g);
        assert_int_equal(g.error, -EFBIG);
        got_reset(&g);
}

static void test_timeout(void **state)
{
        struct fx *f = *state;
        struct got g = {0};
        char u[256];

        url(f, u, sizeof u, "/echo?delay_ms=5000");
        struct fm_httpc_request req = {.method = "GET", .url = u, .timeout = 300};
        int64_t t0 = fm_test_now_ms();
        fetch(f, &req, &g);
        assert_int_equal(g.error, -ETIMEDOUT);
        assert_int_equal(g.status, 0);
        assert_true(fm_test_now_ms() - t0 <
                    5000); /* the client gave up, the server did not answer */
        assert_true(g.detail[0] != '\0');
        got_reset(&g);
}

static void test_refused(void **state)
{
        struct fx *f = *state;
        struct got g = {0};
        char u[128];

        snprintf(u, sizeof u, "http://127.0.0.1:%u/echo", fm_free_port());
        struct fm_httpc_request req = {.method = "GET", .url = u, .timeout = REQ_TIMEOUT};
        fetch(f, &req, &g);
        assert_int_equal(g.error, -ECONNREFUSED);
        assert_int_equal(g.status, 0);
        got_reset(&g);
}

static void test_cancel(void **state)
{
        struct fx *f = *state;
        struct got a = {0}, b = {0};
        char ua[256], ub[256];
        uint64_t ida = 0, idb = 0;

        url(f, ua, sizeof ua, "/echo?delay_ms=200");
        url(f, ub, sizeof ub, "/echo?delay_ms=800");
        struct fm_httpc_request ra = {.method = "GET", .url = ua, .timeout = REQ_TIMEOUT};
        struct fm_httpc_request rb = {.method = "GET", .url = ub, .timeout = REQ_TIMEOUT};
        assert_int_equal(fm_httpc_submit(f->h, &ra, on_done, &a, &ida), 0);
        assert_int_equal(fm_httpc_submit(f->h, &rb, on_done, &b, &idb), 0);
        assert_true(ida != idb);
        assert_int_equal(fm_httpc_in_flight(f->h), 2);

        /* Let both reach the server, then cancel the one that would finish first. */
        struct got s = {0};
        char us[256];
        url(f, us, sizeof us, "/echo");
        struct fm_httpc_request rs = {.method = "GET", .url = us, .timeout = REQ_TIMEOUT};
        assert_int_equal(fm_httpc_submit(f->h, &rs, on_done, &s, NULL), 0);
        assert_true(run_until(f->e, &s.calls, 1, WAIT_MS));
        fm_httpc_cancel(f->h, ida);
        fm_httpc_cancel(f->h, ida);    /* twice: ignored */
        fm_httpc_cancel(f->h, 999999); /* unknown: ignored */
        assert_int_equal(fm_httpc_in_flight(f->h), 1);

        assert_true(run_until(f->e, &b.calls, 1, WAIT_MS));
        assert_int_equal(b.status, 200);
        assert_int_equal(a.calls, 0);
        assert_int_equal(fm_httpc_in_flight(f->h), 0);
        got_reset(&a);
        got_reset(&b);
        got_reset(&s);
}

static void test_free_in_flight(void **state)
{
        struct fx *f = *state;
        struct got g[3] = {0};
        char u[256];

        url(f, u, sizeof u, "/echo?delay_ms=2000");
        struct fm_httpc_request req = {
                .method = "POST", .url = u, .body = "{}", .body_len = 2, .timeout = REQ_TIMEOUT};
        for (size_t i = 0; i < 3; i++)
                assert_int_equal(fm_httpc_submit(f->h, &req, on_done, &g[i], NULL), 0);
        /* A fast request finishing shows the slow ones are under way. */
        struct got s = {0};
        char us[256];
        url(f, us, sizeof us, "/echo");
        struct fm_httpc_request rs = {.method = "GET", .url = us, .timeout = REQ_TIMEOUT};
        assert_int_equal(fm_httpc_submit(f->h, &rs, on_done, &s, NULL), 0);
        assert_true(run_until(f->e, &s.calls, 1, WAIT_MS));
        assert_int_equal(fm_httpc_in_flight(f->h), 3);
        f->h = fm_httpc_free(f->h);
        assert_null(f->h);
        for (size_t i = 0; i < 3; i++)
                assert_int_equal(g[i].calls, 0);
        got_reset(&s);

        /* Also freed right after submit, before the loop ever ran. */
        assert_int_equal(fm_httpc_new(f->e, &f->h), 0);
        assert_int_equal(fm_httpc_submit(f->h, &req, on_done, &g[0], NULL), 0);
        f->h = fm_httpc_free(f->h);
        assert_int_equal(g[0].calls, 0);
        assert_null(fm_httpc_free(NULL));
}

/* A done callback that submits another request, and one that frees the client. */
struct chain {
        struct fx *f;
        struct got g;
        int submitted;
        char url[256];
};

static void on_chain(void *userdata, const struct fm_httpc_response *r)
{
        struct chain *c = userdata;
        on_done(&c->g, r);
        if (c->submitted < 2) {
                struct fm_httpc_request req = {
                        .method = "GET", .url = c->url, .timeout = REQ_TIMEOUT};
                assert_int_equal(fm_httpc_submit(c->f->h, &req, on_chain, c, NULL), 0);
                c->submitted++;
        }
}

static void on_free(void *userdata, const struct fm_httpc_response *r)
{
        struct chain *c = userdata;
        on_done(&c->g, r);
        c->f->h = fm_httpc_free(c->f->h);
}

static void test_callback_reentry(void **state)
{
        struct fx *f = *state;
        struct chain c = {.f = f};

        url(f, c.url, sizeof c.url, "/echo");
        struct fm_httpc_request req = {.method = "GET", .url = c.url, .timeout = REQ_TIMEOUT};
        assert_int_equal(fm_httpc_submit(f->h, &req, on_chain, &c, NULL), 0);
        assert_true(run_until(f->e, &c.g.calls, 3, WAIT_MS));
        assert_int_equal(c.g.calls, 3);
        assert_int_equal(fm_httpc_in_flight(f->h), 0);
        got_reset(&c.g);

        /* Freed from inside a callback while another transfer is in flight. */
        struct chain d = {.f = f};
        struct got other = {0};
        char slow[256];
        url(f, slow, sizeof slow, "/echo?delay_ms=1500");
        struct fm_httpc_request rs = {.method = "GET", .url = slow, .timeout = REQ_TIMEOUT};
        assert_int_equal(fm_httpc_submit(f->h, &rs, on_done, &other, NULL), 0);
        assert_int_equal(fm_httpc_submit(f->h, &req, on_free, &d, NULL), 0);
        assert_true(run_until(f->e, &d.g.calls, 1, WAIT_MS));
        assert_null(f->h);
        assert_int_equal(other.calls, 0);
        got_reset(&d.g);
}

static void test_invalid(void **state)
{
        struct fx *f = *state;
        struct got g = {0};
        char u[256];
        uint64_t id = 12345;

        url(f, u, sizeof u, "/echo");
        struct fm_httpc_request ok = {.method = "GET", .url = u, .timeout = REQ_TIMEOUT};
        struct fm_httpc_request r;

        r = ok;
        r.method = "TRACE";
        assert_int_equal(fm_httpc_submit(f->h, &r, on_done, &g, &id), -EINVAL);
        r.method = "get";
        assert_int_equal(fm_httpc_submit(f->h, &r, on_done, &g, &id), -EINVAL);
        r = ok;
        r.timeout = 0;
        assert_int_equal(fm_httpc_submit(f->h, &r, on_done, &g, &id), -EINVAL);
        r.timeout = -1;
        assert_int_equal(fm_httpc_submit(f->h, &r, on_done, &g, &id), -EINVAL);

        static const char *const bad_urls[] = {
                "ftp://127.0.0.1/x",
                "file:///etc/passwd",
                "gopher://127.0.0.1/",
                "127.0.0.1:80/echo",
                "http://127.0.0.1/a b",
                "http://127.0.0.1/\r\nX: y",
                "",
                "dict://127.0.0.1/",
        };
        for (size_t i = 0; i < ARRAY_SIZE(bad_urls); i++) {
                r = ok;
                r.url = bad_urls[i];
                assert_int_equal(fm_httpc_submit(f->h, &r, on_done, &g, &id), -EINVAL);
        }

        const char *inject[] = {"X-A: 1\r\nX-Injected: 2", NULL};
        const char *noname[] = {": value", NULL};
        const char *nocolon[] = {"Header", NULL};
        r = ok;
        r.headers = inject;
        assert_int_equal(fm_httpc_submit(f->h, &r, on_done, &g, &id), -EINVAL);
        r.headers = noname;
        assert_int_equal(fm_httpc_submit(f->h, &r, on_done, &g, &id), -EINVAL);
        r.headers = nocolon;
        assert_int_equal(fm_httpc_submit(f->h, &r, on_done, &g, &id), -EINVAL);

        const char *many[FM_HTTPC_HEADERS_MAX + 2];
        for (size_t i = 0; i < FM_HTTPC_HEADERS_MAX + 1; i++)
                many[i] = "X-Many: 1";
        many[FM_HTTPC_HEADERS_MAX + 1] = NULL;
        r.headers = many;
        assert_int_equal(fm_httpc_submit(f->h, &r, on_done, &g, &id), -EINVAL);
        many[FM_HTTPC_HEADERS_MAX] = NULL; /* exactly the maximum is fine */
        fetch(f, &r, &g);
        assert_int_equal(g.status, 200);

        r = ok;
        r.basic_user = "only-user";
        assert_int_equal(fm_httpc_submit(f->h, &r, on_done, &g, &id), -EINVAL);
        r = ok;
        r.body_len = 3;
        assert_int_equal(fm_httpc_submit(f->h, &r, on_done, &g, &id), -EINVAL);

        assert_int_equal(fm_httpc_submit(NULL, &ok, on_done, &g, &id), -EINVAL);
        assert_int_equal(fm_httpc_submit(f->h, NULL, on_done, &g, &id), -EINVAL);
        assert_int_equal(id, 12345); /* written only on success */
        assert_int_equal(fm_httpc_in_flight(f->h), 0);
        assert_int_equal(fm_httpc_new(NULL, &f->h), -EINVAL);
        got_reset(&g);
}

/* An escaped hostile segment reaches the server as one segment, unchanged. */
static void test_escaped_path(void **state)
{
        struct fx *f = *state;
        struct got g = {0};
        char seg[64], path[160], u[256];

        assert_true(fm_url_escape("../x?y#z /%", seg, sizeof seg) > 0);
        snprintf(path, sizeof path, "/echo/%s?q=%s", seg, seg);
        url(f, u, sizeof u, path);
        struct fm_httpc_request req = {.method = "GET", .url = u, .timeout = REQ_TIMEOUT};
        fetch(f, &req, &g);
        json_object *o = echoed(&g);
        assert_string_equal(jstr(o, "path"), "/echo/..%2Fx%3Fy%23z%20%2F%25");
        assert_string_equal(jstr(o, "query"), "q=..%2Fx%3Fy%23z%20%2F%25");
        json_object_put(o);
        got_reset(&g);
}

static void test_url_escape(void **state)
{
        (void)state;
        static const struct {
                const char *in, *out;
        } cases[] = {
                {"", ""},
                {"plain-Name_1.2~", "plain-Name_1.2~"},
                {"a/b", "a%2Fb"},
                {"..", ".."}, /* harmless once "/" cannot appear */
                {"../..", "..%2F.."},
                {"%2F", "%252F"},
                {"a b", "a%20b"},
                {"x\ny\r", "x%0Ay%0D"},
                {"a;b&c=d", "a%3Bb%26c%3Dd"},
                {"'\"`", "%27%22%60"},
                {"?#[]@!$()*+,", "%3F%23%5B%5D%40%21%24%28%29%2A%2B%2C"},
                {"\x01\x1f\x7f", "%01%1F%7F"},
                {"\xc3\xa9\xff", "%C3%A9%FF"},
        };
        char buf[128];

        for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
                int n = fm_url_escape(cases[i].in, buf, sizeof buf);
                assert_int_equal(n, (int)strlen(cases[i].out));
                assert_string_equal(buf, cases[i].out);
        }

        /* Exact fit, one short, nothing. */
        assert_int_equal(fm_url_escape("a/", buf, 5), 4);
        assert_string_equal(buf, "a%2F");
        assert_int_equal(fm_url_escape("a/", buf, 4), -ENOBUFS);
        assert_int_equal(fm_url_escape("a", buf, 1), -ENOBUFS);
        assert_int_equal(fm_url_escape("", buf, 1), 0);
        assert_int_equal(fm_url_escape("", buf, 0), -ENOBUFS);
        assert_int_equal(fm_url_escape(NULL, buf, sizeof buf), -EINVAL);
        assert_int_equal(fm_url_escape("a", NULL, 4), -EINVAL);
}

static void test_https(void **state)
{
        struct fx *f = *state;
        struct fm_peer tls;
        struct got g = {0};
        char crt[128], key[128], ca[128], u[128];

        if (access(FM_OPENSSL_BIN, X_OK) != 0)
                skip();
        fm_peer_init(&tls, "httpc-tls");
        fm_make_certs(&tls);
        fm_make_ca(&tls, "other-ca");
        fm_peer_path(&tls, "server.crt", crt, sizeof crt);
        fm_peer_path(&tls, "server.key", key, sizeof key);
        fm_peer_path(&tls, "ca.crt", ca, sizeof ca);
        uint16_t port = fm_free_port();
        start_echo(&tls, port, crt, key);

        snprintf(u, sizeof u, "https://127.0.0.1:%u/echo?status=201", port);
        struct fm_httpc_request req = {
                .method = "GET", .url = u, .ca_file = ca, .timeout = REQ_TIMEOUT};
        fetch(f, &req, &g);
        assert_int_equal(g.error, 0);
        assert_int_equal(g.status, 201);
        assert_non_null(strstr(g.body, "\"GET\""));

        /* Without the CA: the system store does not know it. */
        req.ca_file = NULL;
        fetch(f, &req, &g);
        assert_int_equal(g.error, -EPROTO);
        assert_int_equal(g.status, 0);
        assert_true(g.detail[0] != '\0');

        /* Another CA: refused as well. */
        char other[128];
        fm_peer_path(&tls, "other-ca.crt", other, sizeof other);
        req.ca_file = other;
        fetch(f, &req, &g);
        assert_int_equal(g.error, -EPROTO);

        fm_peer_done(&tls);
        got_reset(&g);
}

int main(void)
{
        fm_require_program(PYTHON_BIN);
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_url_escape),
                cmocka_unit_test_setup_teardown(test_get_headers, setup, teardown),
                cmocka_unit_test_setup_teardown(test_methods_with_body, setup, teardown),
                cmocka_unit_test_setup_teardown(test_basic_auth, setup, teardown),
                cmocka_unit_test_setup_teardown(test_status_and_retry_after, setup, teardown),
                cmocka_unit_test_setup_teardown(test_body_cap, setup, teardown),
                cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
                cmocka_unit_test_setup_teardown(test_refused, setup, teardown),
                cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
                cmocka_unit_test_setup_teardown(test_free_in_flight, setup, teardown),
                cmocka_unit_test_setup_teardown(test_callback_reentry, setup, teardown),
                cmocka_unit_test_setup_teardown(test_invalid, setup, teardown),
                cmocka_unit_test_setup_teardown(test_escaped_path, setup, teardown),
                cmocka_unit_test_setup_teardown(test_https, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
