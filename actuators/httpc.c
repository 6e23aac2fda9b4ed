/* SPDX-License-Identifier: MIT */
#include "httpc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <time.h>

#include <curl/curl.h>

/*
 * How libcurl lives inside sd-event
 * =================================
 *
 * One CURLM multi handle per client, driven only through
 * curl_multi_socket_action():
 *
 *   sockets  libcurl tells us through CURLMOPT_SOCKETFUNCTION which socket
 *            it wants watched for what (IN, OUT, both, or REMOVE). Each
 *            watched socket gets one sd-event io source, remembered with
 *            curl_multi_assign(); a change of interest only updates its
 *            events. Readiness goes back as socket_action(fd, flags).
 *   timer    CURLMOPT_TIMERFUNCTION asks for one timeout (or none): a single
 *            CLOCK_MONOTONIC source, re-armed each time, with 1 ms accuracy
 *            (sd-event's default 250 ms would delay every transfer, since
 *            libcurl starts its work from a 0 ms timeout).
 *
 * After every socket_action the finished transfers are collected with
 * curl_multi_info_read() and their callbacks run, one by one, from the
 * loop. libcurl's own callbacks (socket, timer, header, write) never call
 * back into the owner, and nothing calls socket_action from inside them.
 *
 * Submitting only adds an easy handle: libcurl then asks for a 0 ms timer
 * and does the work from the loop, so a done callback can never run inside
 * fm_httpc_submit(). A done callback may submit, cancel, or even free the
 * client: while callbacks run, fm_httpc_free() aborts every transfer at
 * once and leaves the release of the client itself to the dispatch loop,
 * which stops dispatching and frees it on its way out.
 */

#define TOTAL_CONNECTIONS_MAX 64      /* sockets of one client; more transfers queue */
#define RETRY_AFTER_MAX_S (24 * 3600) /* a longer hint is clamped here */
#define USEC_PER_MS UINT64_C(1000)

struct sock;

struct transfer {
        struct fm_httpc *h;
        struct transfer *prev, *next;
        uint64_t id;
        CURL *easy;
        struct curl_slist *headers;
        fm_httpc_done_fn done;
        void *userdata;
        char *body;
        size_t body_len, body_cap;
        bool too_big;
        fm_ms retry_after;
        char errbuf[CURL_ERROR_SIZE];
};

struct sock {
        struct fm_httpc *h;
        struct sock *prev, *next;
        curl_socket_t fd;
        sd_event_source *source;
};

struct fm_httpc {
        sd_event *event;
        CURLM *multi;
        sd_event_source *timer;
        struct transfer *transfers;
        struct sock *socks;
        unsigned n;
        uint64_t next_id;
        unsigned dispatching; /* depth of done callbacks running */
        bool doomed;          /* fm_httpc_free() was called from a done callback */
        bool global_init;
};

static void transfer_unlink(struct fm_httpc *h, struct transfer *t)
{
        if (t->prev)
                t->prev->next = t->next;
        else
                h->transfers = t->next;
        if (t->next)
                t->next->prev = t->prev;
        t->prev = t->next = NULL;
        h->n--;
}

/* Removes t from the multi handle (no callback) and frees it. */
static void transfer_free(struct fm_httpc *h, struct transfer *t)
{
        if (!t)
                return;
        if (t->easy) {
                if (h->multi)
                        (void)curl_multi_remove_handle(h->multi, t->easy);
                curl_easy_cleanup(t->easy);
        }
        curl_slist_free_all(t->headers);
        free(t->body);
        free(t);
}

static void sock_free(struct fm_httpc *h, struct sock *s)
{
        if (s->prev)
                s->prev->next = s->next;
        else
                h->socks = s->next;
        if (s->next)
                s->next->prev = s->prev;
        s->source = sd_event_source_disable_unref(s->source);
        free(s);
}

static void abort_all(struct fm_httpc *h)
{
        while (h->transfers) {
                struct transfer *t = h->transfers;
                transfer_unlink(h, t);
                transfer_free(h, t);
        }
}

static void destroy(struct fm_httpc *h)
{
        abort_all(h);
        if (h->multi)
                (void)curl_multi_cleanup(h->multi);
        while (h->socks)
                sock_free(h, h->socks);
        h->timer = sd_event_source_disable_unref(h->timer);
        sd_event_unref(h->event);
        if (h->global_init)
                curl_global_cleanup();
        free(h);
}

struct fm_httpc *fm_httpc_free(struct fm_httpc *h)
{
        if (!h)
                return NULL;
        if (h->dispatching) {
                /* Inside a done callback: the dispatch loop releases h on its way out. */
                abort_all(h);
                h->doomed = true;
                return NULL;
        }
        destroy(h);
        return NULL;
}

/* ---- error mapping ---- */

static int map_error(const struct transfer *t, CURLcode code)
{
        long os_errno = 0;

        switch (code) {
        case CURLE_OK:
                return 0;
        case CURLE_OPERATION_TIMEDOUT:
                return -ETIMEDOUT;
        case CURLE_COULDNT_CONNECT:
                (void)curl_easy_getinfo(t->easy, CURLINFO_OS_ERRNO, &os_errno);
                if (os_errno == EHOSTUNREACH || os_errno == ENETUNREACH)
                        return -EHOSTUNREACH;
                if (os_errno == ETIMEDOUT)
                        return -ETIMEDOUT;
                return -ECONNREFUSED;
        case CURLE_COULDNT_RESOLVE_HOST:
        case CURLE_COULDNT_RESOLVE_PROXY:
                return -EHOSTUNREACH;
        case CURLE_SEND_ERROR:
        case CURLE_RECV_ERROR:
        case CURLE_GOT_NOTHING:
        case CURLE_PARTIAL_FILE:
                return -ECONNRESET;
        case CURLE_FILESIZE_EXCEEDED:
                return -EFBIG;
        case CURLE_WRITE_ERROR:
                return t->too_big ? -EFBIG : -EIO;
        case CURLE_SSL_CONNECT_ERROR:
        case CURLE_PEER_FAILED_VERIFICATION:
        case CURLE_SSL_CERTPROBLEM:
        case CURLE_SSL_CIPHER:
        case CURLE_SSL_CACERT_BADFILE:
        case CURLE_SSL_ENGINE_NOTFOUND:
        case CURLE_SSL_ENGINE_SETFAILED:
        case CURLE_SSL_ENGINE_INITFAILED:
        case CURLE_SSL_SHUTDOWN_FAILED:
        case CURLE_SSL_CRL_BADFILE:
        case CURLE_SSL_ISSUER_ERROR:
        case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
        case CURLE_SSL_INVALIDCERTSTATUS:
        case CURLE_SSL_CLIENTCERT:
        case CURLE_USE_SSL_FAILED:
        case CURLE_WEIRD_SERVER_REPLY:
        case CURLE_HTTP2:
        case CURLE_HTTP2_STREAM:
        case CURLE_HTTP3:
        case CURLE_UNSUPPORTED_PROTOCOL:
        case CURLE_TOO_MANY_REDIRECTS:
        case CURLE_BAD_CONTENT_ENCODING:
                return -EPROTO;
        default:
                return -EIO;
        }
}

/* ---- dispatch ---- */

/*
 * Runs the done callbacks of every finished transfer. Returns true when a
 * callback freed the client (then h is gone and the caller must not touch
 * it).
 */
static bool dispatch_done(struct fm_httpc *h)
{
        CURLMsg *msg;
        int left;

        while (!h->doomed && (msg = curl_multi_info_read(h->multi, &left))) {
                struct transfer *t = NULL;
                char *priv = NULL;

                if (msg->msg != CURLMSG_DONE)
                        continue;
                (void)curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
                t = (struct transfer *)priv;
                if (!t)
                        continue;

                CURLcode code = msg->data.result;
                struct fm_httpc_response resp = {0};
                char *ctype = NULL;

                resp.error = map_error(t, code);
                if (resp.error == 0) {
                        (void)curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &resp.status);
                        (void)curl_easy_getinfo(t->easy, CURLINFO_CONTENT_TYPE, &ctype);
                        resp.content_type = ctype;
                        resp.body = t->body ? t->body : "";
                        resp.body_len = t->body_len;
                } else {
                        resp.body = "";
                        if (resp.error == -EFBIG)
                                resp.detail = "response body too large";
                        else
                                resp.detail = t->errbuf[0] ? t->errbuf : curl_easy_strerror(code);
                }
                resp.retry_after = t->retry_after;

                /* Unlinked before the callback, freed after: it may cancel or submit. */
                transfer_unlink(h, t);
                (void)curl_multi_remove_handle(h->multi, t->easy);
                h->dispatching++;
                if (t->done)
                        t->done(t->userdata, &resp);
                h->dispatching--;
                transfer_free(h, t);
        }
        if (h->doomed && h->dispatching == 0) {
                destroy(h);
                return true;
        }
        return false;
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
        struct fm_httpc *h = userdata;
        int running = 0;

        (void)s;
        (void)usec;
        (void)curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running);
        (void)dispatch_done(h);
        return 0;
}

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
        struct fm_httpc *h = userdata;
        int running = 0, flags = 0;

        (void)s;
        if (revents & EPOLLIN)
                flags |= CURL_CSELECT_IN;
        if (revents & EPOLLOUT)
                flags |= CURL_CSELECT_OUT;
        if (revents & (EPOLLERR | EPOLLHUP))
                flags |= CURL_CSELECT_ERR;
        (void)curl_multi_socket_action(h->multi, fd, flags, &running);
        (void)dispatch_done(h);
        return 0;
}

/* CURLMOPT_SOCKETFUNCTION: keep one io source per socket in line with what libcurl wants. */
static int on_socket(CURL *easy, curl_socket_t fd, int what, void *clientp, void *socketp)
{
        struct fm_httpc *h = clientp;
        struct sock *s = socketp;
        uint32_t events = 0;
        int r;

        (void)easy;
        if (what == CURL_POLL_REMOVE) {
                if (s) {
                        (void)curl_multi_assign(h->multi, fd, NULL);
                        sock_free(h, s);
                }
                return 0;
        }
        if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
                events |= EPOLLIN;
        if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
                events |= EPOLLOUT;

        if (s) {
                if (events == 0)
                        return sd_event_source_set_enabled(s->source, SD_EVENT_OFF) < 0 ? -1 : 0;
                if (sd_event_source_set_io_events(s->source, events) < 0)
                        return -1;
                return sd_event_source_set_enabled(s->source, SD_EVENT_ON) < 0 ? -1 : 0;
        }

        s = calloc(1, sizeof *s);
        if (!s)
                return -1;
        s->h = h;
        s->fd = fd;
        r = sd_event_add_io(h->event, &s->source, fd, events, on_io, h);
        if (r < 0) {
                free(s);
                return -1;
        }
        if (events == 0)
                (void)sd_event_source_set_enabled(s->source, SD_EVENT_OFF);
        (void)sd_event_source_set_description(s->source, "httpc-io");
        s->next = h->socks;
        if (h->socks)
                h->socks->prev = s;
        h->socks = s;
        if (curl_multi_assign(h->multi, fd, s) != CURLM_OK) {
                sock_free(h, s);
                return -1;
        }
        return 0;
}

/* CURLMOPT_TIMERFUNCTION: one timer, -1 means none. */
static int on_curl_timer(CURLM *multi, long timeout_ms, void *clientp)
{
        struct fm_httpc *h = clientp;

        (void)multi;
        if (timeout_ms < 0)
                return sd_event_source_set_enabled(h->timer, SD_EVENT_OFF) < 0 ? -1 : 0;
        if (sd_event_source_set_time_relative(h->timer, (uint64_t)timeout_ms * USEC_PER_MS) < 0)
                return -1;
        return sd_event_source_set_enabled(h->timer, SD_EVENT_ONESHOT) < 0 ? -1 : 0;
}

int fm_httpc_new(sd_event *event, struct fm_httpc **ret)
{
        struct fm_httpc *h;
        int r;

        if (!event || !ret)
                return -EINVAL;
        h = calloc(1, sizeof *h);
        if (!h)
                return -ENOMEM;
        h->event = sd_event_ref(event);
        h->next_id = 1;
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
                r = -EIO;
                goto fail;
        }
        h->global_init = true;
        h->multi = curl_multi_init();
        if (!h->multi) {
                r = -EIO;
                goto fail;
        }
        r = sd_event_add_time_relative(event, &h->timer, CLOCK_MONOTONIC, 0, USEC_PER_MS, on_timer,
                                       h);
        if (r < 0)
                goto fail;
        r = sd_event_source_set_enabled(h->timer, SD_EVENT_OFF);
        if (r < 0)
                goto fail;
        (void)sd_event_source_set_description(h->timer, "httpc-timer");
        if (curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, on_socket) != CURLM_OK ||
            curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h) != CURLM_OK ||
            curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer) != CURLM_OK ||
            curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h) != CURLM_OK ||
            curl_multi_setopt(h->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS,
                              (long)TOTAL_CONNECTIONS_MAX) != CURLM_OK) {
                r = -EIO;
                goto fail;
        }
        *ret = h;
        return 0;
fail:
        destroy(h);
        return r;
}

unsigned fm_httpc_in_flight(const struct fm_httpc *h)
{
        return h ? h->n : 0;
}

/* ---- one transfer ---- */

static size_t on_write(char *data, size_t size, size_t nmemb, void *userdata)
{
        struct transfer *t = userdata;
        size_t n = size * nmemb;

        if (n > FM_HTTPC_BODY_MAX - t->body_len) {
                t->too_big = true;
                return 0;
        }
        if (t->body_len + n + 1 > t->body_cap) {
                size_t cap = t->body_cap ? t->body_cap : 4096;
                while (cap < t->body_len + n + 1)
                        cap *= 2;
                if (cap > FM_HTTPC_BODY_MAX + 1)
                        cap = FM_HTTPC_BODY_MAX + 1;
                char *b = realloc(t->body, cap);
                if (!b)
                        return 0;
                t->body = b;
                t->body_cap = cap;
        }
        memcpy(t->body + t->body_len, data, n);
        t->body_len += n;
        t->body[t->body_len] = '\0';
        return n;
}

/*
 * Retry-After: delta-seconds, or an HTTP-date turned into the seconds left
 * until then (a date in the past means no wait). Anything else is ignored.
 * Returns milliseconds, 0 when absent or unusable.
 */
static fm_ms parse_retry_after(const char *v, size_t len)
{
        char buf[64];
        size_t i = 0;

        while (len > 0 && (v[len - 1] == '\r' || v[len - 1] == '\n' || v[len - 1] == ' ' ||
                           v[len - 1] == '\t'))
                len--;
        while (i < len && (v[i] == ' ' || v[i] == '\t'))
                i++;
        v += i;
        len -= i;
        if (len == 0 || len >= sizeof buf)
                return 0;
        memcpy(buf, v, len);
        buf[len] = '\0';

        if (buf[0] >= '0' && buf[0] <= '9') {
                int64_t s = 0;
                for (size_t k = 0; k < len; k++) {
                        if (buf[k] < '0' || buf[k] > '9')
                                return 0;
                        if (s < RETRY_AFTER_MAX_S)
                                s = s * 10 + (buf[k] - '0');
                }
                if (s > RETRY_AFTER_MAX_S)
                        s = RETRY_AFTER_MAX_S;
                return (fm_ms)s * FM_MS_PER_S;
        }

        time_t when = curl_getdate(buf, NULL);
        if (when == (time_t)-1)
                return 0;
        int64_t delta = (int64_t)when - (int64_t)time(NULL);
        if (delta <= 0)
                return 0;
        if (delta > RETRY_AFTER_MAX_S)
                delta = RETRY_AFTER_MAX_S;
        return (fm_ms)delta * FM_MS_PER_S;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *userdata)
{
        struct transfer *t = userdata;
        size_t n = size * nmemb;
        static const char name[] = "retry-after:";

        /* A new status line (after a 100 Continue, say) starts a new set of headers. */
        if (n >= 5 && memcmp(data, "HTTP/", 5) == 0)
                t->retry_after = 0;
        else if (n > sizeof name - 1 && strncasecmp(data, name, sizeof name - 1) == 0)
                t->retry_after = parse_retry_after(data + sizeof name - 1, n - (sizeof name - 1));
        return n;
}

static bool method_known(const char *m)
{
        static const char *const known[] = {"GET", "POST", "PUT", "PATCH", "DELETE"};
        for (size_t i = 0; i < ARRAY_SIZE(known); i++)
                if (strcmp(m, known[i]) == 0)
                        return true;
        return false;
}

/* True when url parses and its scheme is http or https. */
static bool url_ok(const char *url)
{
        CURLU *u = curl_url();
        char *scheme = NULL;
        bool ok = false;

        if (!u)
                return false;
        if (curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
            curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK)
                ok = strcasecmp(scheme, "http") == 0 || strcasecmp(scheme, "https") == 0;
        curl_free(scheme);
        curl_url_cleanup(u);
        return ok;
}

static bool header_ok(const char *line)
{
        const char *colon = strchr(line, ':');

        if (!colon || colon == line)
                return false;
        return strpbrk(line, "\r\n") == NULL;
}

#define SET(opt, val)                                                                              \
        do {                                                                                       \
                if (curl_easy_setopt(t->easy, opt, val) != CURLE_OK)                               \
                        return -ENOMEM;                                                            \
        } while (0)

/* Sets every option of t from req. Returns 0, -EINVAL, -ENOMEM. */
static int configure(struct transfer *t, const struct fm_httpc_request *req)
{
        bool has_body = req->body != NULL;

        SET(CURLOPT_PRIVATE, (void *)t);
        SET(CURLOPT_URL, req->url);
        SET(CURLOPT_PROTOCOLS_STR, "http,https");
        SET(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
        SET(CURLOPT_FOLLOWLOCATION, 0L);
        SET(CURLOPT_NOSIGNAL, 1L);
        SET(CURLOPT_NOPROXY, "*");
        SET(CURLOPT_PROXY, "");
        SET(CURLOPT_SSL_VERIFYPEER, 1L);
        SET(CURLOPT_SSL_VERIFYHOST, 2L);
        if (req->ca_file && req->ca_file[0]) {
                SET(CURLOPT_CAINFO, req->ca_file);
                /* Only that bundle: no system directory beside it. */
                SET(CURLOPT_CAPATH, NULL);
        }
        SET(CURLOPT_TIMEOUT_MS, (long)req->timeout);
        SET(CURLOPT_CONNECTTIMEOUT_MS, (long)req->timeout);
        SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)FM_HTTPC_BODY_MAX);
        SET(CURLOPT_WRITEFUNCTION, on_write);
        SET(CURLOPT_WRITEDATA, (void *)t);
        SET(CURLOPT_HEADERFUNCTION, on_header);
        SET(CURLOPT_HEADERDATA, (void *)t);
        SET(CURLOPT_ERRORBUFFER, t->errbuf);
        SET(CURLOPT_TCP_KEEPALIVE, 1L);

        if (req->basic_user && req->basic_password) {
                SET(CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
                SET(CURLOPT_USERNAME, req->basic_user);
                SET(CURLOPT_PASSWORD, req->basic_password);
        }

        if (strcmp(req->method, "GET") == 0) {
                SET(CURLOPT_HTTPGET, 1L);
        } else {
                if (strcmp(req->method, "POST") == 0)
                        SET(CURLOPT_POST, 1L);
                else
                        SET(CURLOPT_CUSTOMREQUEST, req->method);
                /* PUT, PATCH and POST always say how long their body is, even when empty. */
                if (has_body || strcmp(req->method, "DELETE") != 0) {
                        SET(CURLOPT_POSTFIELDSIZE_LARGE,
                            (curl_off_t)(has_body ? req->body_len : 0));
                        SET(CURLOPT_COPYPOSTFIELDS, has_body ? req->body : "");
                }
        }

        /* No "Expect: 100-continue" round trip for large bodies. */
        t->headers = curl_slist_append(NULL, "Expect:");
        if (!t->headers)
                return -ENOMEM;
        for (size_t i = 0; req->headers && req->headers[i]; i++) {
                struct curl_slist *l = curl_slist_append(t->headers, req->headers[i]);
                if (!l)
                        return -ENOMEM;
                t->headers = l;
        }
        SET(CURLOPT_HTTPHEADER, t->headers);
        return 0;
}

#undef SET

int fm_httpc_submit(struct fm_httpc *h, const struct fm_httpc_request *req, fm_httpc_done_fn done,
                    void *userdata, uint64_t *ret_id)
{
        struct transfer *t;
        size_t nh = 0;
        int r;

        if (!h || !req || !req->method || !req->url || h->doomed)
                return -EINVAL;
        if (!method_known(req->method) || req->timeout <= 0 || req->timeout > (fm_ms)INT32_MAX)
                return -EINVAL;
        if (req->body == NULL && req->body_len != 0)
                return -EINVAL;
        if ((req->basic_user == NULL) != (req->basic_password == NULL))
                return -EINVAL;
        for (; req->headers && req->headers[nh]; nh++) {
                if (nh >= FM_HTTPC_HEADERS_MAX || !header_ok(req->headers[nh]))
                        return -EINVAL;
        }
        if (!url_ok(req->url))
                return -EINVAL;

        t = calloc(1, sizeof *t);
        if (!t)
                return -ENOMEM;
        t->h = h;
        t->done = done;
        t->userdata = userdata;
        t->easy = curl_easy_init();
        if (!t->easy) {
                transfer_free(h, t);
                return -ENOMEM;
        }
        r = configure(t, req);
        if (r < 0) {
                transfer_free(h, t);
                return r;
        }
        if (curl_multi_add_handle(h->multi, t->easy) != CURLM_OK) {
                /* Not added: transfer_free()'s remove is a harmless no-op. */
                transfer_free(h, t);
                return -ENOMEM;
        }
        t->id = h->next_id++;
        t->next = h->transfers;
        if (h->transfers)
                h->transfers->prev = t;
        h->transfers = t;
        h->n++;
        if (ret_id)
                *ret_id = t->id;
        return 0;
}

void fm_httpc_cancel(struct fm_httpc *h, uint64_t id)
{
        if (!h)
                return;
        for (struct transfer *t = h->transfers; t; t = t->next)
                if (t->id == id) {
                        transfer_unlink(h, t);
                        transfer_free(h, t);
                        return;
                }
}

int fm_url_escape(const char *s, char *buf, size_t size)
{
        static const char hex[] = "0123456789ABCDEF";
        size_t o = 0;

        if (!s || !buf)
                return -EINVAL;
        for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
                bool plain = (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
                             (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' || *p == '_' ||
                             *p == '~';
                size_t need = plain ? 1 : 3;
                if (o + need >= size || o + need > (size_t)INT32_MAX)
                        return -ENOBUFS;
                if (plain) {
                        buf[o++] = (char)*p;
                } else {
                        buf[o++] = '%';
                        buf[o++] = hex[*p >> 4];
                        buf[o++] = hex[*p & 15];
                }
        }
        if (o >= size)
                return -ENOBUFS;
        buf[o] = '\0';
        return (int)o;
}
