/* SPDX-License-Identifier: MIT */
#include "mqtt.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/epoll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <mosquitto.h>
#include <mqtt_protocol.h>

/*
 * How the client lives inside sd-event
 * ====================================
 *
 * libmosquitto is used only through its "external loop" calls. Four event
 * sources drive it:
 *
 *   io     the broker socket (a duplicate of it, see watch()), EPOLLIN
 *          always and EPOLLOUT while mosquitto_want_write(). It exists only
 *          while a socket does: it is dropped the moment a connection is
 *          lost (the library closes its fd, and the number may come back
 *          with the next socket).
 *   misc   a 1 s timer running mosquitto_loop_misc() (PINGREQ, keepalive).
 *   retry  in state IDLE: when to try connecting again; in state CONNECTING:
 *          the deadline for the CONNACK.
 *   resub  when to retry a SUBSCRIBE that the broker refused.
 *
 * States: IDLE (no socket, waiting for `retry`), CONNECTING (socket open,
 * CONNECT queued or sent, no CONNACK yet), CONNECTED (CONNACK accepted).
 * Every path that ends a connection or an attempt goes through retry_later():
 * it drops the io source, arms `retry` with backoff, and then tells the
 * owner through the disconnected callback, so the owner always sees a
 * consistent client.
 *
 * libmosquitto calls our on_* functions from inside mosquitto_loop_read()
 * and friends. They never call mosquitto_loop*() (the library is not
 * re-entrant there); they only change our state, queue packets (subscribe,
 * publish are allowed in callbacks and are only queued) and arm sd-event
 * sources. After every loop call the io source's events are brought in line
 * with mosquitto_want_write().
 *
 * Connecting without blocking the event loop
 * ------------------------------------------
 * mosquitto_connect_bind_v5() is the only call taking CONNECT properties
 * (session expiry, maximum packet size) and it connects blocking. The async
 * calls (mosquitto_connect_bind_async, mosquitto_reconnect_async) start a
 * non-blocking TCP connect but take no properties; in libmosquitto 2.0 they
 * send the properties that an earlier mosquitto_connect_bind_v5() stored in
 * the client (fixed in 2.0.0, "connect properties not being sent when the
 * client automatically reconnects", #1846). 2.0.11 stores the properties
 * before it validates the keep-alive, so we call mosquitto_connect_bind_v5()
 * once at creation with keepalive -1: it stores the properties and returns
 * MOSQ_ERR_INVAL without touching the network. Every real attempt is then
 * asynchronous. This was checked against 2.0.11 by capturing the CONNECT
 * packets (both the first and the reconnects carry property 0x11), and
 * test_mqtt's persistent-session and broker-restart tests fail if the
 * session expiry stops being sent.
 *
 * What still blocks: the DNS lookup (getaddrinfo inside libmosquitto). Use a
 * numeric address, or a name the local resolver answers at once
 * (/etc/hosts, a caching resolver); a dead DNS server stalls the loop for
 * the resolver's timeout once per attempt.
 *
 * mosquitto_lib_init() is called by every fm_mqtt_new() and balanced by
 * mosquitto_lib_cleanup() in fm_mqtt_free(): libmosquitto 2.0 counts the
 * calls itself (since 1.6.10), so no global of ours is needed. Like
 * libmosquitto, this is not thread-safe: create and free clients on one
 * thread.
 */

/* Named limits. */
#define MISC_INTERVAL_MS 1000    /* mosquitto_loop_misc() period */
#define CONNECT_TIMEOUT_MS 15000 /* TCP + TLS + CONNACK of one attempt */
#define FLUSH_TIMEOUT_MS 1000    /* fm_mqtt_free(): bound on sending DISCONNECT */
#define READ_BATCH 64            /* packets read per wake-up, for fairness */
#define CRED_MAX 1024            /* bytes of a credential file's first line, NUL included */
#define RECONNECT_MAX_LIMIT (24 * 3600 * FM_MS_PER_S)
#define USEC_PER_MS UINT64_C(1000)
/*
 * MQTT v5 Maximum Packet Size we announce in CONNECT: the broker drops (for
 * us) any message larger, so input cannot make libmosquitto allocate more.
 * 16 MiB is the largest decoder.max_payload_bytes the configuration allows,
 * plus room for the topic and properties. v3.1.1 has no such field.
 */
#define MAX_PACKET_SIZE (16 * 1024 * 1024 + 64 * 1024)

#define N_FILTERS 3
#define FILTER_MAX                                                                                 \
        (sizeof("$share/") + FM_MQTT_GROUP_MAX + 1 + FM_PREFIX_MAX + sizeof("/+/+/feedback"))

enum state {
        ST_IDLE,
        ST_CONNECTING,
        ST_CONNECTED,
};

struct fm_mqtt {
        sd_event *event;
        struct mosquitto *mosq;
        struct fm_mqtt_config cfg;
        struct fm_mqtt_callbacks cb;
        void *userdata;

        sd_event_source *io;
        uint32_t io_events;
        sd_event_source *misc;
        sd_event_source *retry;
        sd_event_source *resub;

        char filter[N_FILTERS][FILTER_MAX];

        enum state state;
        bool lib_init;     /* mosquitto_lib_init() to balance */
        bool connect_init; /* mosquitto_connect_bind_async() has stored host and port */
        bool ever_connected;
        bool ever_subscribed; /* a SUBACK granted all filters in this process */
        bool subscribed;
        bool closing;         /* inside fm_mqtt_free() */
        int sub_mid;          /* of the SUBSCRIBE awaiting its SUBACK, 0 for none */
        int refusal;          /* CONNACK reason of the current attempt, 0 for none */
        int suback_error;     /* last SUBACK failure code, 0 once granted */
        unsigned attempt;     /* connection attempts since the last CONNACK */
        unsigned sub_attempt; /* refused SUBSCRIBEs since the last granted one */
        uint64_t reconnects;
        uint64_t rng; /* splitmix64 state, seeded at creation */
};

static const char *const kinds[N_FILTERS] = {"health", "kpi", "feedback"};

/* splitmix64: small, fast, and good enough to spread retry times. */
static uint64_t rng_next(uint64_t *s)
{
        uint64_t z = (*s += UINT64_C(0x9e3779b97f4a7c15));
        z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
        z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
        return z ^ (z >> 31);
}

static uint64_t rng_seed(const void *salt)
{
        uint64_t seed = 0;
        if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) == (ssize_t)sizeof(seed))
                return seed;
        /* Entropy pool not ready (early boot): jitter only needs to differ per process. */
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 32) ^ (uint64_t)getpid() ^
               (uint64_t)(uintptr_t)salt;
}

/*
 * Exponential backoff with full jitter: the window is
 * [reconnect_min / 2, min(reconnect_max, reconnect_min * 2^attempt)] and the
 * delay is uniform over all of it. The floor keeps a broker that accepts
 * and drops us at once from being hammered with near-zero delays; the
 * spread over the whole window keeps several controllers from retrying in
 * step.
 */
static fm_ms backoff(struct fm_mqtt *m, unsigned attempt)
{
        fm_ms lo = m->cfg.reconnect_min / 2, cap = m->cfg.reconnect_min;
        for (unsigned i = 0; i < attempt && cap < m->cfg.reconnect_max; i++)
                cap *= 2;
        if (cap > m->cfg.reconnect_max)
                cap = m->cfg.reconnect_max;
        return lo + (fm_ms)(rng_next(&m->rng) % (uint64_t)(cap - lo + 1));
}

static int arm(sd_event_source *s, fm_ms delay)
{
        int r = sd_event_source_set_time_relative(s, (uint64_t)delay * USEC_PER_MS);
        if (r < 0)
                return r;
        return sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
}

static fm_ms now_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (fm_ms)ts.tv_sec * FM_MS_PER_S + ts.tv_nsec / 1000000;
}

/* The reason handed to the disconnected callback for a libmosquitto result. */
static int mosq_reason(int rc, int saved_errno)
{
        if (rc == MOSQ_ERR_ERRNO && saved_errno > 0)
                return -saved_errno;
        return rc;
}

/* v3.1.1 CONNACK return codes 1..5 as their MQTT v5 reason codes, so they cannot be mistaken for
 * MOSQ_ERR_*. */
static int connack_reason(int protocol, int rc)
{
        static const int v5[] = {
                0,
                MQTT_RC_UNSUPPORTED_PROTOCOL_VERSION,
                MQTT_RC_CLIENTID_NOT_VALID,
                MQTT_RC_SERVER_UNAVAILABLE,
                MQTT_RC_BAD_USERNAME_OR_PASSWORD,
                MQTT_RC_NOT_AUTHORIZED,
        };
        if (protocol != MQTT_PROTOCOL_V5 && rc > 0 && rc < (int)ARRAY_SIZE(v5))
                return v5[rc];
        return rc;
}

static void update_io(struct fm_mqtt *m)
{
        if (!m->io)
                return;
        uint32_t ev = EPOLLIN | (mosquitto_want_write(m->mosq) ? EPOLLOUT : 0);
        if (ev != m->io_events && sd_event_source_set_io_events(m->io, ev) >= 0)
                m->io_events = ev;
}

static void drop(struct fm_mqtt *m)
{
        m->io = sd_event_source_disable_unref(m->io);
        m->io_events = 0;
        (void)sd_event_source_set_enabled(m->misc, SD_EVENT_OFF);
        (void)sd_event_source_set_enabled(m->resub, SD_EVENT_OFF);
        (void)sd_event_source_set_enabled(m->retry, SD_EVENT_OFF);
        m->state = ST_IDLE;
        m->subscribed = false;
        m->sub_mid = 0;
}

/* The attempt or the connection is over: back to IDLE, arm the next attempt, tell the owner. */
static void retry_later(struct fm_mqtt *m, int reason)
{
        drop(m);
        fm_ms d = backoff(m, m->attempt);
        if (m->attempt < UINT_MAX)
                m->attempt++;
        (void)arm(m->retry, d);
        if (m->cb.disconnected)
                m->cb.disconnected(m->userdata, reason);
}

/* Idempotent: the library's on_disconnect and our own checks may both report one loss. */
static void lose(struct fm_mqtt *m, int reason)
{
        if (m->closing || m->state == ST_IDLE)
                return;
        retry_later(m, m->refusal ? m->refusal : reason);
}

static void subscribe_all(struct fm_mqtt *m)
{
        char *subs[N_FILTERS];
        for (size_t i = 0; i < N_FILTERS; i++)
                subs[i] = m->filter[i];
        int mid = 0;
        int rc = mosquitto_subscribe_multiple(m->mosq, &mid, N_FILTERS, subs, m->cfg.qos, 0, NULL);
        if (rc != MOSQ_ERR_SUCCESS) {
                /* Only NOMEM or a dying socket get here; the io source sees the latter. */
                (void)arm(m->resub, backoff(m, m->sub_attempt));
                if (m->sub_attempt < UINT_MAX)
                        m->sub_attempt++;
                return;
        }
        m->sub_mid = mid;
}

static void on_connect(struct mosquitto *mosq, void *obj, int rc, int flags,
                       const mosquitto_property *props)
{
        struct fm_mqtt *m = obj;
        (void)mosq;
        (void)props;

        if (m->closing || m->state != ST_CONNECTING)
                return;
        if (rc != 0) {
                /* The library fails the read right after this and calls on_disconnect. */
                m->refusal = connack_reason(m->cfg.protocol, rc);
                return;
        }

        m->state = ST_CONNECTED;
        m->attempt = 0;
        (void)sd_event_source_set_enabled(m->retry, SD_EVENT_OFF);
        if (m->ever_connected)
                m->reconnects++;
        m->ever_connected = true;

        bool present = flags & 1;
        /* A resumed session holds the subscriptions we made; if unsure, subscribe again. */
        bool resumed = present && m->ever_subscribed;
        if (resumed)
                m->subscribed = true;
        else
                subscribe_all(m);

        if (m->cb.connected)
                m->cb.connected(m->userdata, present);
        if (resumed && m->state == ST_CONNECTED && m->cb.subscribed)
                m->cb.subscribed(m->userdata);
}

static void on_subscribe(struct mosquitto *mosq, void *obj, int mid, int qos_count,
                         const int *granted, const mosquitto_property *props)
{
        struct fm_mqtt *m = obj;
        (void)mosq;
        (void)props;

        if (m->closing || m->state != ST_CONNECTED || mid != m->sub_mid)
                return;
        m->sub_mid = 0;

        int err = qos_count == N_FILTERS ? 0 : MQTT_RC_UNSPECIFIED;
        for (int i = 0; i < qos_count && granted; i++)
                if (granted[i] >= 0x80)
                        err = granted[i];
        if (err) {
                m->suback_error = err;
                (void)arm(m->resub, backoff(m, m->sub_attempt));
                if (m->sub_attempt < UINT_MAX)
                        m->sub_attempt++;
                return;
        }

        m->suback_error = 0;
        m->sub_attempt = 0;
        m->subscribed = true;
        m->ever_subscribed = true;
        if (m->cb.subscribed)
                m->cb.subscribed(m->userdata);
}

static void on_message(struct mosquitto *mosq, void *obj, const struct mosquitto_message *msg,
                       const mosquitto_property *props)
{
        struct fm_mqtt *m = obj;
        (void)mosq;
        (void)props;

        if (m->closing || !m->cb.message || !msg->topic || msg->payloadlen < 0)
                return;
        m->cb.message(m->userdata, msg->topic, msg->payload ? msg->payload : "",
                      (size_t)msg->payloadlen);
}

static void on_disconnect(struct mosquitto *mosq, void *obj, int rc,
                          const mosquitto_property *props)
{
        int saved_errno = errno; /* first: MOSQ_ERR_ERRNO leaves the cause here */
        struct fm_mqtt *m = obj;
        (void)mosq;
        (void)props;

        lose(m, rc == 0 ? MOSQ_ERR_CONN_LOST : mosq_reason(rc, saved_errno));
}

/* After a loop call: a failure, or a socket the library closed quietly, is a lost connection. */
static void settle(struct fm_mqtt *m, int rc, int saved_errno)
{
        if (rc != MOSQ_ERR_SUCCESS)
                lose(m, mosq_reason(rc, saved_errno));
        else if (m->io && mosquitto_socket(m->mosq) < 0)
                lose(m, MOSQ_ERR_CONN_LOST);
        update_io(m);
}

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
        struct fm_mqtt *m = userdata;
        int rc = MOSQ_ERR_SUCCESS, e = 0;
        (void)s;
        (void)fd;

        if (revents & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
                /*
                 * loop_read handles one packet per call; read on while the
                 * socket has data, as libmosquitto's own loop does (errno
                 * EAGAIN marks the end), but at most READ_BATCH packets so
                 * timers and other sources get their turn.
                 */
                for (unsigned i = 0; i < READ_BATCH && m->io; i++) {
                        errno = 0;
                        rc = mosquitto_loop_read(m->mosq, 1);
                        e = errno;
                        if (rc != MOSQ_ERR_SUCCESS || e == EAGAIN || e == EWOULDBLOCK)
                                break;
                }
        }
        if (rc == MOSQ_ERR_SUCCESS && m->io && (revents & EPOLLOUT)) {
                errno = 0;
                rc = mosquitto_loop_write(m->mosq, 1);
                e = errno;
        }
        if (m->io)
                settle(m, rc, e);
        return 0;
}

static int on_misc(sd_event_source *s, uint64_t usec, void *userdata)
{
        struct fm_mqtt *m = userdata;
        (void)usec;

        if (!m->io)
                return 0;
        errno = 0;
        int rc = mosquitto_loop_misc(m->mosq);
        int e = errno;
        settle(m, rc, e);
        if (m->io)
                (void)arm(s, MISC_INTERVAL_MS);
        return 0;
}

/*
 * Reads the first line of a credential file into buf (size CRED_MAX),
 * without its line ending. Only regular files; an empty first line or one
 * that does not fit is -EINVAL.
 */
static int read_first_line(const char *path, char *buf, size_t size)
{
        int r = 0;
        size_t n = 0;
        int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0)
                return -errno;

        struct stat st;
        if (fstat(fd, &st) < 0) {
                r = -errno;
                goto out;
        }
        if (!S_ISREG(st.st_mode)) {
                r = -EINVAL;
                goto out;
        }
        while (n < size - 1) {
                ssize_t k = read(fd, buf + n, size - 1 - n);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0) {
                        r = -errno;
                        goto out;
                }
                if (k == 0)
                        break;
                n += (size_t)k;
                if (memchr(buf + n - (size_t)k, '\n', (size_t)k))
                        break;
        }
        buf[n] = '\0';
        char *nl = memchr(buf, '\n', n);
        if (nl)
                *nl = '\0';
        else if (n == size - 1)
                r = -EINVAL; /* longer than CRED_MAX */
        size_t len = strlen(buf);
        if (len > 0 && buf[len - 1] == '\r')
                buf[--len] = '\0';
        if (r == 0 && len == 0)
                r = -EINVAL;
out:
        close(fd);
        return r;
}

/* (Re-)reads the credential files and hands them to libmosquitto. */
static int apply_credentials(struct fm_mqtt *m)
{
        char user[CRED_MAX], pass[CRED_MAX];
        const char *u = NULL, *p = NULL;
        int r = 0;

        if (!m->cfg.username_file[0] && !m->cfg.password_file[0])
                return 0;
        if (m->cfg.username_file[0]) {
                r = read_first_line(m->cfg.username_file, user, sizeof(user));
                if (r < 0)
                        goto out;
                u = user;
        }
        if (m->cfg.password_file[0]) {
                r = read_first_line(m->cfg.password_file, pass, sizeof(pass));
                if (r < 0)
                        goto out;
                p = pass;
        }
        int rc = mosquitto_username_pw_set(m->mosq, u, p);
        r = rc == MOSQ_ERR_SUCCESS ? 0 : rc == MOSQ_ERR_NOMEM ? -ENOMEM : -EINVAL;
out:
        explicit_bzero(user, sizeof(user));
        explicit_bzero(pass, sizeof(pass));
        return r;
}

/*
 * Watches the new socket. Two things about the fd libmosquitto 2.0 gives us:
 * it is not close-on-exec, so a process the daemon spawns would inherit it
 * and keep the connection open after we close it (the broker would then
 * never see us go); and the library closes it itself, before it tells us
 * (on_disconnect). If epoll watched that fd and another reference to the
 * socket existed at that moment (a child between fork and exec), the epoll
 * registration would outlive the close and report events for a freed
 * source. So we set FD_CLOEXEC on it and let sd-event watch a duplicate
 * that we own: its registration can always be removed, and sd-event closes
 * it when the source is dropped, which every close by the library is
 * followed by.
 */
static int watch(struct fm_mqtt *m)
{
        int fd = mosquitto_socket(m->mosq);
        if (fd < 0)
                return -ENOTCONN;
        int flags = fcntl(fd, F_GETFD);
        if (flags < 0 || fcntl(fd, F_SETFD, flags | FD_CLOEXEC) < 0)
                return -errno;
        int dup_fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        if (dup_fd < 0)
                return -errno;
        uint32_t ev = EPOLLIN | (mosquitto_want_write(m->mosq) ? EPOLLOUT : 0);
        int r = sd_event_add_io(m->event, &m->io, dup_fd, ev, on_io, m);
        if (r < 0) {
                close(dup_fd);
                return r;
        }
        r = sd_event_source_set_io_fd_own(m->io, true);
        if (r < 0) {
                m->io = sd_event_source_disable_unref(m->io);
                close(dup_fd);
                return r;
        }
        m->io_events = ev;
        (void)sd_event_source_set_description(m->io, "mqtt-socket");
        return arm(m->misc, MISC_INTERVAL_MS);
}

static void attempt(struct fm_mqtt *m)
{
        int r = apply_credentials(m);
        if (r < 0) {
                retry_later(m, r);
                return;
        }

        m->refusal = 0;
        errno = 0;
        int rc = m->connect_init ? mosquitto_reconnect_async(m->mosq)
                                 : mosquitto_connect_bind_async(m->mosq, m->cfg.host, m->cfg.port,
                                                                m->cfg.keepalive_s, NULL);
        int e = errno;
        if (rc != MOSQ_ERR_INVAL && rc != MOSQ_ERR_NOMEM)
                m->connect_init = true;
        if (rc != MOSQ_ERR_SUCCESS) {
                retry_later(m, mosq_reason(rc, e));
                return;
        }
        r = watch(m);
        if (r < 0) {
                retry_later(m, r);
                return;
        }
        m->state = ST_CONNECTING;
        (void)arm(m->retry, CONNECT_TIMEOUT_MS);
}

static int on_retry(sd_event_source *s, uint64_t usec, void *userdata)
{
        struct fm_mqtt *m = userdata;
        (void)s;
        (void)usec;

        if (m->state == ST_IDLE)
                attempt(m);
        else if (m->state == ST_CONNECTING)
                lose(m, -ETIMEDOUT);
        return 0;
}

static int on_resub(sd_event_source *s, uint64_t usec, void *userdata)
{
        struct fm_mqtt *m = userdata;
        (void)s;
        (void)usec;

        if (m->state == ST_CONNECTED && !m->subscribed && m->sub_mid == 0) {
                subscribe_all(m);
                update_io(m);
        }
        return 0;
}

static bool terminated(const char *s, size_t size)
{
        return memchr(s, '\0', size) != NULL;
}

static bool has_any(const char *s, const char *chars)
{
        return s[strcspn(s, chars)] != '\0';
}

static int validate(const struct fm_mqtt_config *c)
{
        if (!terminated(c->host, sizeof(c->host)) ||
            !terminated(c->client_id, sizeof(c->client_id)) ||
            !terminated(c->topic_prefix, sizeof(c->topic_prefix)) ||
            !terminated(c->shared_group, sizeof(c->shared_group)) ||
            !terminated(c->username_file, sizeof(c->username_file)) ||
            !terminated(c->password_file, sizeof(c->password_file)) ||
            !terminated(c->ca_file, sizeof(c->ca_file)) ||
            !terminated(c->cert_file, sizeof(c->cert_file)) ||
            !terminated(c->key_file, sizeof(c->key_file)) ||
            !terminated(c->will_topic, sizeof(c->will_topic)) ||
            !terminated(c->will_payload, sizeof(c->will_payload)))
                return -EINVAL;
        if (!c->host[0] || c->port == 0 || !c->client_id[0])
                return -EINVAL;
        if (c->protocol != MQTT_PROTOCOL_V5 && c->protocol != MQTT_PROTOCOL_V311)
                return -EINVAL;
        if (c->qos < 0 || c->qos > 1)
                return -EINVAL;
        if (c->keepalive_s != 0 && c->keepalive_s < 5)
                return -EINVAL;
        if (c->protocol == MQTT_PROTOCOL_V5 && c->receive_maximum == 0)
                return -EINVAL;
        if (!c->topic_prefix[0] || has_any(c->topic_prefix, "+#") ||
            c->topic_prefix[strlen(c->topic_prefix) - 1] == '/')
                return -EINVAL;
        if (has_any(c->shared_group, "/+#"))
                return -EINVAL;
        if (c->reconnect_min <= 0 || c->reconnect_max < c->reconnect_min ||
            c->reconnect_max > RECONNECT_MAX_LIMIT)
                return -EINVAL;
        if (c->tls && (!c->cert_file[0] != !c->key_file[0]))
                return -EINVAL;
        if (c->will_topic[0] && mosquitto_pub_topic_check(c->will_topic) != MOSQ_ERR_SUCCESS)
                return -EINVAL;
        return 0;
}

static int build_filters(struct fm_mqtt *m)
{
        const char *g = m->cfg.shared_group;
        for (size_t i = 0; i < N_FILTERS; i++) {
                int n = snprintf(m->filter[i], sizeof(m->filter[i]), "%s%s%s%s/+/+/%s",
                                 g[0] ? "$share/" : "", g, g[0] ? "/" : "", m->cfg.topic_prefix,
                                 kinds[i]);
                if (n < 0 || (size_t)n >= sizeof(m->filter[i]))
                        return -EINVAL;
                if (mosquitto_sub_topic_check(m->filter[i]) != MOSQ_ERR_SUCCESS)
                        return -EINVAL;
        }
        return 0;
}

static int check_readable(const char *path)
{
        return access(path, R_OK) < 0 ? -errno : 0;
}

/* The OS store through MOSQ_OPT_TLS_USE_OS_CERTS; a client certificate needs a CA path as well. */
#define OS_CA_DIR "/etc/ssl/certs"

static int setup_tls(struct fm_mqtt *m)
{
        const struct fm_mqtt_config *c = &m->cfg;
        int r;
        if (c->ca_file[0] && (r = check_readable(c->ca_file)) < 0)
                return r;
        if (c->cert_file[0] && (r = check_readable(c->cert_file)) < 0)
                return r;
        if (c->key_file[0] && (r = check_readable(c->key_file)) < 0)
                return r;

        int rc = MOSQ_ERR_SUCCESS;
        if (!c->ca_file[0])
                rc = mosquitto_int_option(m->mosq, MOSQ_OPT_TLS_USE_OS_CERTS, 1);
        /*
         * mosquitto_tls_set() insists on a CA file or directory. Without
         * ca_file and without a client certificate the option above is all
         * that is needed; with a certificate, the OS store's directory is
         * passed as well.
         */
        if (rc == MOSQ_ERR_SUCCESS && (c->ca_file[0] || c->cert_file[0]))
                rc = mosquitto_tls_set(m->mosq, c->ca_file[0] ? c->ca_file : NULL,
                                       c->ca_file[0] ? NULL : OS_CA_DIR,
                                       c->cert_file[0] ? c->cert_file : NULL,
                                       c->key_file[0] ? c->key_file : NULL, NULL);
        return rc == MOSQ_ERR_SUCCESS ? 0 : rc == MOSQ_ERR_NOMEM ? -ENOMEM : -EINVAL;
}

/* See "Connecting without blocking the event loop" above. */
static int store_connect_properties(struct fm_mqtt *m)
{
        mosquitto_property *props = NULL;
        int rc = mosquitto_property_add_int32(&props, MQTT_PROP_SESSION_EXPIRY_INTERVAL,
                                              m->cfg.session_expiry_s);
        if (rc == MOSQ_ERR_SUCCESS)
                rc = mosquitto_property_add_int32(&props, MQTT_PROP_MAXIMUM_PACKET_SIZE,
                                                  MAX_PACKET_SIZE);
        if (rc == MOSQ_ERR_SUCCESS) {
                rc = mosquitto_connect_bind_v5(m->mosq, m->cfg.host, m->cfg.port, -1, NULL, props);
                /* INVAL is the expected answer to keepalive -1; anything else is a surprise. */
                rc = rc == MOSQ_ERR_INVAL     ? MOSQ_ERR_SUCCESS
                     : rc == MOSQ_ERR_SUCCESS ? MOSQ_ERR_UNKNOWN
                                              : rc;
        }
        mosquitto_property_free_all(&props);
        return rc == MOSQ_ERR_SUCCESS ? 0 : rc == MOSQ_ERR_NOMEM ? -ENOMEM : -EINVAL;
}

static int setup_client(struct fm_mqtt *m)
{
        const struct fm_mqtt_config *c = &m->cfg;
        int r;

        if (mosquitto_lib_init() != MOSQ_ERR_SUCCESS)
                return -ENOMEM;
        m->lib_init = true;

        errno = 0;
        m->mosq = mosquitto_new(c->client_id, false, m);
        if (!m->mosq)
                return errno == ENOMEM ? -ENOMEM : -EINVAL;

        int rc = mosquitto_int_option(m->mosq, MOSQ_OPT_PROTOCOL_VERSION, c->protocol);
        if (rc == MOSQ_ERR_SUCCESS && c->protocol == MQTT_PROTOCOL_V5)
                rc = mosquitto_int_option(m->mosq, MOSQ_OPT_RECEIVE_MAXIMUM, c->receive_maximum);
        if (rc == MOSQ_ERR_SUCCESS)
                rc = mosquitto_int_option(m->mosq, MOSQ_OPT_TCP_NODELAY, 1);
        if (rc == MOSQ_ERR_SUCCESS && c->will_topic[0])
                rc = mosquitto_will_set(m->mosq, c->will_topic, (int)strlen(c->will_payload),
                                        c->will_payload, 1, true);
        if (rc != MOSQ_ERR_SUCCESS)
                return rc == MOSQ_ERR_NOMEM ? -ENOMEM : -EINVAL;

        if (c->tls && (r = setup_tls(m)) < 0)
                return r;
        if ((r = apply_credentials(m)) < 0)
                return r;
        if (c->protocol == MQTT_PROTOCOL_V5 && (r = store_connect_properties(m)) < 0)
                return r;

        mosquitto_connect_v5_callback_set(m->mosq, on_connect);
        mosquitto_disconnect_v5_callback_set(m->mosq, on_disconnect);
        mosquitto_subscribe_v5_callback_set(m->mosq, on_subscribe);
        mosquitto_message_v5_callback_set(m->mosq, on_message);
        return 0;
}

static int setup_sources(struct fm_mqtt *m)
{
        /* The first attempt runs from the loop, so no callback fires inside fm_mqtt_new(). */
        int r = sd_event_add_time_relative(m->event, &m->retry, CLOCK_MONOTONIC, 0, USEC_PER_MS,
                                           on_retry, m);
        if (r < 0)
                return r;
        r = sd_event_add_time_relative(m->event, &m->misc, CLOCK_MONOTONIC,
                                       MISC_INTERVAL_MS * USEC_PER_MS, 0, on_misc, m);
        if (r < 0)
                return r;
        r = sd_event_add_time_relative(m->event, &m->resub, CLOCK_MONOTONIC, 0, USEC_PER_MS,
                                       on_resub, m);
        if (r < 0)
                return r;
        (void)sd_event_source_set_description(m->retry, "mqtt-retry");
        (void)sd_event_source_set_description(m->misc, "mqtt-misc");
        (void)sd_event_source_set_description(m->resub, "mqtt-resubscribe");
        r = sd_event_source_set_enabled(m->misc, SD_EVENT_OFF);
        if (r < 0)
                return r;
        return sd_event_source_set_enabled(m->resub, SD_EVENT_OFF);
}

int fm_mqtt_new(sd_event *e, const struct fm_mqtt_config *cfg, const struct fm_mqtt_callbacks *cb,
                void *userdata, struct fm_mqtt **ret)
{
        if (!e || !cfg || !cb || !ret)
                return -EINVAL;
        int r = validate(cfg);
        if (r < 0)
                return r;

        struct fm_mqtt *m = calloc(1, sizeof(*m));
        if (!m)
                return -ENOMEM;
        m->event = sd_event_ref(e);
        m->cfg = *cfg;
        m->cb = *cb;
        m->userdata = userdata;
        m->state = ST_IDLE;
        m->rng = rng_seed(m);

        r = build_filters(m);
        if (r < 0)
                goto fail;
        r = setup_client(m);
        if (r < 0)
                goto fail;
        r = setup_sources(m);
        if (r < 0)
                goto fail;

        *ret = m;
        return 0;
fail:
        fm_mqtt_free(m);
        return r;
}

/*
 * Sends DISCONNECT and waits, at most FLUSH_TIMEOUT_MS, until it and
 * everything queued before it is written. This is the one place that
 * blocks, on purpose: the process is going away and a broker that never
 * sees the DISCONNECT publishes the will.
 */
static void say_goodbye(struct fm_mqtt *m)
{
        if (mosquitto_disconnect(m->mosq) != MOSQ_ERR_SUCCESS)
                return;
        fm_ms deadline = now_ms() + FLUSH_TIMEOUT_MS;
        while (mosquitto_socket(m->mosq) >= 0 && mosquitto_want_write(m->mosq)) {
                fm_ms left = deadline - now_ms();
                if (left <= 0)
                        break;
                struct pollfd p = {.fd = mosquitto_socket(m->mosq), .events = POLLOUT};
                int n = poll(&p, 1, (int)left);
                if (n < 0 && errno != EINTR)
                        break;
                if (n > 0 && mosquitto_loop_write(m->mosq, 1) != MOSQ_ERR_SUCCESS)
                        break;
        }
        /*
         * Closing a socket with unread data (the PUBACK of the last state
         * publish, say) sends a reset instead of a FIN, and a broker whose
         * kernel receives the reset drops what it has not read yet, the
         * DISCONNECT included: it treats the session as lost and publishes
         * the will after all. So half-close and read until the broker
         * closes its side, within the same deadline. The library has
         * closed its own descriptor once DISCONNECT is written; the socket
         * lives on in the duplicate the event source owns (see watch()).
         */
        int fd = m->io ? sd_event_source_get_io_fd(m->io) : -1;
        if (fd < 0)
                fd = mosquitto_socket(m->mosq);
        if (fd < 0 || shutdown(fd, SHUT_WR) < 0)
                return;
        for (;;) {
                fm_ms left = deadline - now_ms();
                if (left <= 0)
                        break;
                struct pollfd p = {.fd = fd, .events = POLLIN};
                int n = poll(&p, 1, (int)left);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        break;
                char sink[512];
                ssize_t got = recv(fd, sink, sizeof(sink), MSG_DONTWAIT);
                if (got == 0 || (got < 0 && errno != EAGAIN && errno != EINTR))
                        break;
        }
}

struct fm_mqtt *fm_mqtt_free(struct fm_mqtt *m)
{
        if (!m)
                return NULL;
        m->closing = true;
        if (m->mosq && m->state == ST_CONNECTED && mosquitto_socket(m->mosq) >= 0)
                say_goodbye(m);
        m->io = sd_event_source_disable_unref(m->io);
        m->misc = sd_event_source_disable_unref(m->misc);
        m->retry = sd_event_source_disable_unref(m->retry);
        m->resub = sd_event_source_disable_unref(m->resub);
        if (m->mosq)
                mosquitto_destroy(m->mosq);
        if (m->lib_init)
                mosquitto_lib_cleanup();
        sd_event_unref(m->event);
        free(m);
        return NULL;
}

int fm_mqtt_publish(struct fm_mqtt *m, const char *topic, const void *payload, size_t len, int qos,
                    bool retain)
{
        if (!m || !topic || (!payload && len > 0) || len > INT_MAX || qos < 0 || qos > 1)
                return -EINVAL;
        if (m->closing || m->state != ST_CONNECTED)
                return -ENOTCONN;

        int rc = mosquitto_publish(m->mosq, NULL, topic, (int)len, payload, qos, retain);
        /* Whatever was not written now goes out on EPOLLOUT; a broken socket shows up there too. */
        update_io(m);
        switch (rc) {
        case MOSQ_ERR_SUCCESS:
                return 0;
        case MOSQ_ERR_NOMEM:
                return -ENOMEM;
        case MOSQ_ERR_NO_CONN:
        case MOSQ_ERR_CONN_LOST:
        case MOSQ_ERR_ERRNO:
                return -ENOTCONN;
        default:
                return -EINVAL;
        }
}

bool fm_mqtt_connected(const struct fm_mqtt *m)
{
        return m && m->state == ST_CONNECTED;
}

bool fm_mqtt_subscribed(const struct fm_mqtt *m)
{
        return m && m->state == ST_CONNECTED && m->subscribed;
}

uint64_t fm_mqtt_reconnects(const struct fm_mqtt *m)
{
        return m ? m->reconnects : 0;
}

int fm_mqtt_subscribe_error(const struct fm_mqtt *m)
{
        return m ? m->suback_error : 0;
}
