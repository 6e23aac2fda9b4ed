/* SPDX-License-Identifier: MIT */
#include "haproxy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "http_backend.h"

/*
 * How a request runs
 * ==================
 *
 * Requests (set_weights attempts from the actuator, state changes from
 * fm_haproxy_set_state()) wait in one FIFO queue. Only the head runs, and
 * it always has exactly one connection open while it runs: each step of a
 * request sends one command on a fresh connection and decides, from the
 * answer, the next command or the end. So "the head is running" and "a
 * connection is open" are the same thing, and a deferred "kick" event
 * starts the head whenever no connection is open. Results are delivered
 * from I/O, timer or kick callbacks only, never from inside start(),
 * cancel() or fm_haproxy_set_state().
 *
 * Steps of a set_weights request (see haproxy.h for why this order):
 *
 *   PLAN    show servers state B   -> missing server: PROBE; observe: end;
 *                                     nothing to change: end OK; else APPLY
 *   PROBE   get weight B/S         -> end with HAProxy's message
 *   APPLY   set server B/S ...     -> one per change, in order; then VERIFY
 *   VERIFY  show servers state B   -> end: OK when everything reads back
 *
 * A state request starts at APPLY with its one command.
 */

#define RESPONSE_CHUNK 4096
#define DETAIL_MAX 512
#define MSG_MAX 120
#define OPS_MAX (2 * FM_ACTUATOR_WEIGHTS_MAX)
#define USEC_PER_MS UINT64_C(1000)

/* srv_admin_state bits (HAProxy's SRV_ADMF_*). */
#define ADMF_FMAINT 0x01u
#define ADMF_IMAINT 0x02u
#define ADMF_CMAINT 0x04u
#define ADMF_FDRAIN 0x08u
#define ADMF_IDRAIN 0x10u
#define ADMF_RMAINT 0x20u
#define ADMF_HMAINT 0x40u
#define ADMF_MAINT (ADMF_FMAINT | ADMF_IMAINT | ADMF_CMAINT | ADMF_RMAINT | ADMF_HMAINT)
#define ADMF_DRAIN (ADMF_FDRAIN | ADMF_IDRAIN)

static const char default_socket[] = "/run/haproxy/admin.sock";
static const char tcp_prefix[] = "ipv4@";

enum job_kind {
        JOB_WEIGHTS,
        JOB_STATE,
};

enum phase {
        PH_PLAN,
        PH_PROBE,
        PH_APPLY,
        PH_VERIFY,
};

enum op_kind {
        OP_WEIGHT,
        OP_READY,
        OP_DRAIN,
        OP_MAINT,
};

struct target {
        char server[FM_HAPROXY_NAME_MAX + 1];
        uint32_t weight; /* JOB_WEIGHTS: the weight asked for */
        struct fm_haproxy_server seen;
};

struct op {
        uint8_t target;
        uint8_t kind; /* enum op_kind */
};

struct job {
        enum job_kind kind;
        uint64_t id; /* the actuator's attempt id, or the state request's id */
        bool observe;
        enum fm_haproxy_state state; /* JOB_STATE: the state asked for */
        fm_haproxy_state_fn done;    /* JOB_STATE */
        void *userdata;
        char backend[FM_HAPROXY_NAME_MAX + 1];
        uint32_t n;
        struct target t[FM_ACTUATOR_WEIGHTS_MAX];
        enum phase phase;
        uint32_t probe; /* PH_PROBE: the target that was missing */
        struct op ops[OPS_MAX];
        uint32_t n_ops, i_op;
};

struct conn {
        int fd; /* -1 when closed */
        sd_event_source *io;
        sd_event_source *timer;
        bool connecting; /* TCP connect in progress */
        char cmd[FM_HAPROXY_CMD_MAX];
        size_t cmd_len, cmd_off;
        char *in;
        size_t in_len, in_cap;
};

struct fm_haproxy {
        sd_event *event;
        struct fm_actuator *a;
        struct fm_haproxy_config cfg;
        struct sockaddr_storage addr;
        socklen_t addr_len;
        struct job *queue[FM_HAPROXY_QUEUE_MAX]; /* queue[0] is the head */
        unsigned n_queue;
        struct conn conn;
        sd_event_source *kick;
        uint64_t last_state_id;
};

/* ---- names, numbers, addresses ---- */

static bool name_char(char c)
{
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
               c == '.' || c == '_' || c == '-';
}

bool fm_haproxy_name_valid(const char *s)
{
        size_t i;

        if (!s)
                return false;
        for (i = 0; s[i]; i++)
                if (i >= FM_HAPROXY_NAME_MAX || !name_char(s[i]))
                        return false;
        return i > 0;
}

/* Decimal digits only (no sign, no spaces), value <= max. */
static int parse_u32(const char *s, size_t len, uint32_t max, uint32_t *ret)
{
        uint64_t v = 0;

        if (len == 0 || len > 10)
                return -EINVAL;
        for (size_t i = 0; i < len; i++) {
                if (s[i] < '0' || s[i] > '9')
                        return -EINVAL;
                v = v * 10 + (uint64_t)(s[i] - '0');
        }
        if (v > max)
                return -ERANGE;
        *ret = (uint32_t)v;
        return 0;
}

/*
 * The socket address: an absolute path (AF_UNIX), or "ipv4@A.B.C.D:PORT"
 * with A = 127 (the runtime API gives full control of the proxy: it is
 * never reached over a network).
 */
static int parse_socket(const char *s, struct sockaddr_storage *ret, socklen_t *ret_len)
{
        size_t len = strnlen(s, FM_HAPROXY_SOCKET_MAX + 1);

        if (len == 0 || len > FM_HAPROXY_SOCKET_MAX)
                return -EINVAL;
        if (s[0] == '/') {
                struct sockaddr_un un = {.sun_family = AF_UNIX};

                if (len >= sizeof un.sun_path)
                        return -EINVAL;
                memcpy(un.sun_path, s, len + 1);
                memset(ret, 0, sizeof *ret);
                memcpy(ret, &un, sizeof un);
                *ret_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + 1);
                return 0;
        }
        if (strncmp(s, tcp_prefix, sizeof tcp_prefix - 1) == 0) {
                const char *host = s + sizeof tcp_prefix - 1, *colon = strrchr(host, ':');
                char ip[INET_ADDRSTRLEN];
                struct sockaddr_in in = {.sin_family = AF_INET};
                uint32_t port;

                if (!colon || (size_t)(colon - host) >= sizeof ip)
                        return -EINVAL;
                memcpy(ip, host, (size_t)(colon - host));
                ip[colon - host] = '\0';
                if (inet_pton(AF_INET, ip, &in.sin_addr) != 1 ||
                    (ntohl(in.sin_addr.s_addr) >> 24) != 127)
                        return -EINVAL;
                if (parse_u32(colon + 1, strlen(colon + 1), 65535, &port) < 0 || port == 0)
                        return -EINVAL;
                in.sin_port = htons((uint16_t)port);
                memset(ret, 0, sizeof *ret);
                memcpy(ret, &in, sizeof in);
                *ret_len = sizeof in;
                return 0;
        }
        return -EINVAL;
}

static bool deployment_valid(const char *s)
{
        return strcmp(s, "*") == 0 || fm_haproxy_name_valid(s);
}

/* A server pattern: name characters and the placeholders {target} and {deployment}. */
static bool pattern_valid(const char *p)
{
        static const char *const holders[] = {"{target}", "{deployment}"};

        while (*p) {
                bool matched = false;

                if (*p != '{') {
                        if (!name_char(*p))
                                return false;
                        p++;
                        continue;
                }
                for (size_t i = 0; i < ARRAY_SIZE(holders); i++) {
                        size_t hl = strlen(holders[i]);

                        if (strncmp(p, holders[i], hl) == 0) {
                                p += hl;
                                matched = true;
                                break;
                        }
                }
                if (!matched)
                        return false;
        }
        return true;
}

void fm_haproxy_config_default(struct fm_haproxy_config *cfg)
{
        memset(cfg, 0, sizeof *cfg);
        memcpy(cfg->socket, default_socket, sizeof default_socket);
        cfg->timeout = 5 * FM_MS_PER_S;
}

int fm_haproxy_config_validate(const struct fm_haproxy_config *cfg)
{
        struct sockaddr_storage ss;
        socklen_t sl;

        if (!cfg || !fm_text_terminated(cfg->socket, sizeof cfg->socket) ||
            parse_socket(cfg->socket, &ss, &sl) < 0)
                return -EINVAL;
        if (cfg->timeout < 1 || cfg->timeout > FM_HAPROXY_TIMEOUT_MAX)
                return -EINVAL;
        if (cfg->n_mappings > FM_HAPROXY_MAPPINGS_MAX)
                return -EINVAL;
        for (uint32_t i = 0; i < cfg->n_mappings; i++) {
                const struct fm_haproxy_mapping *m = cfg->mapping + i;

                if (!fm_text_terminated(m->deployment, sizeof m->deployment) ||
                    !fm_text_terminated(m->backend, sizeof m->backend) ||
                    !fm_text_terminated(m->server, sizeof m->server))
                        return -EINVAL;
                if (!deployment_valid(m->deployment))
                        return -EINVAL;
                if (m->backend[0] && !fm_haproxy_name_valid(m->backend))
                        return -EINVAL;
                if (!pattern_valid(m->server))
                        return -EINVAL;
                for (uint32_t j = 0; j < i; j++)
                        if (strcmp(cfg->mapping[j].deployment, m->deployment) == 0)
                                return -EINVAL;
        }
        return 0;
}

static const struct fm_haproxy_mapping *find_mapping(const struct fm_haproxy_config *cfg,
                                                     const char *deployment)
{
        const struct fm_haproxy_mapping *star = NULL;

        for (uint32_t i = 0; i < cfg->n_mappings && i < FM_HAPROXY_MAPPINGS_MAX; i++) {
                if (strcmp(cfg->mapping[i].deployment, deployment) == 0)
                        return cfg->mapping + i;
                if (!star && strcmp(cfg->mapping[i].deployment, "*") == 0)
                        star = cfg->mapping + i;
        }
        return star;
}

static int append_str(char *buf, size_t size, size_t *len, const char *s)
{
        size_t sl = strlen(s);

        if (*len + sl >= size)
                return -EINVAL;
        memcpy(buf + *len, s, sl);
        *len += sl;
        buf[*len] = '\0';
        return 0;
}

int fm_haproxy_map(const struct fm_haproxy_config *cfg, const char *deployment, const char *target,
                   char backend[static FM_HAPROXY_NAME_MAX + 1],
                   char server[static FM_HAPROXY_NAME_MAX + 1])
{
        const struct fm_haproxy_mapping *m;
        const char *b, *p;
        char srv[FM_HAPROXY_NAME_MAX + 1];
        size_t len = 0;

        if (!cfg || !fm_haproxy_name_valid(deployment) || !fm_haproxy_name_valid(target))
                return -EINVAL;
        m = find_mapping(cfg, deployment);
        b = m && m->backend[0] ? m->backend : deployment;
        p = m && m->server[0] ? m->server : "{target}";
        if (!fm_haproxy_name_valid(b))
                return -EINVAL;
        srv[0] = '\0';
        while (*p) {
                if (strncmp(p, "{target}", 8) == 0) {
                        if (append_str(srv, sizeof srv, &len, target) < 0)
                                return -EINVAL;
                        p += 8;
                } else if (strncmp(p, "{deployment}", 12) == 0) {
                        if (append_str(srv, sizeof srv, &len, deployment) < 0)
                                return -EINVAL;
                        p += 12;
                } else {
                        if (len + 1 >= sizeof srv)
                                return -EINVAL;
                        srv[len++] = *p++;
                        srv[len] = '\0';
                }
        }
        if (!fm_haproxy_name_valid(srv))
                return -EINVAL;
        memcpy(backend, b, strlen(b) + 1);
        memcpy(server, srv, len + 1);
        return 0;
}

const char *fm_haproxy_state_name(enum fm_haproxy_state s)
{
        static const char *const names[_FM_HAPROXY_STATE_MAX] = {
                [FM_HAPROXY_READY] = "ready",
                [FM_HAPROXY_DRAIN] = "drain",
                [FM_HAPROXY_MAINT] = "maint",
        };

        return (unsigned)s < _FM_HAPROXY_STATE_MAX ? names[s] : NULL;
}

enum fm_haproxy_state fm_haproxy_admin_state(uint32_t admin)
{
        if (admin & ADMF_MAINT)
                return FM_HAPROXY_MAINT;
        if (admin & ADMF_DRAIN)
                return FM_HAPROXY_DRAIN;
        return FM_HAPROXY_READY;
}

/* ---- command lines ---- */

static int format_cmd(char *buf, size_t size, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static int format_cmd(char *buf, size_t size, const char *fmt, ...)
{
        va_list ap;
        int r;

        if (!buf || size == 0)
                return -ENOBUFS;
        va_start(ap, fmt);
        r = vsnprintf(buf, size, fmt, ap);
        va_end(ap);
        if (r < 0)
                return -EINVAL;
        if ((size_t)r >= size) {
                buf[0] = '\0';
                return -ENOBUFS;
        }
        return r;
}

int fm_haproxy_cmd_set_weight(char *buf, size_t size, const char *backend, const char *server,
                              uint32_t weight)
{
        if (!fm_haproxy_name_valid(backend) || !fm_haproxy_name_valid(server) ||
            weight > FM_HAPROXY_WEIGHT_MAX)
                return -EINVAL;
        return format_cmd(buf, size, "set server %s/%s weight %" PRIu32 "\n", backend, server,
                          weight);
}

int fm_haproxy_cmd_set_state(char *buf, size_t size, const char *backend, const char *server,
                             enum fm_haproxy_state state)
{
        const char *name = fm_haproxy_state_name(state);

        if (!name || !fm_haproxy_name_valid(backend) || !fm_haproxy_name_valid(server))
                return -EINVAL;
        return format_cmd(buf, size, "set server %s/%s state %s\n", backend, server, name);
}

int fm_haproxy_cmd_get_weight(char *buf, size_t size, const char *backend, const char *server)
{
        if (!fm_haproxy_name_valid(backend) || !fm_haproxy_name_valid(server))
                return -EINVAL;
        return format_cmd(buf, size, "get weight %s/%s\n", backend, server);
}

int fm_haproxy_cmd_show_state(char *buf, size_t size, const char *backend)
{
        if (!fm_haproxy_name_valid(backend))
                return -EINVAL;
        return format_cmd(buf, size, "show servers state %s\n", backend);
}

/* ---- answers ---- */

static bool blank(char c)
{
        return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static size_t digits(const char *s, size_t len)
{
        size_t i = 0;

        while (i < len && s[i] >= '0' && s[i] <= '9')
                i++;
        return i;
}

int fm_haproxy_parse_weight(const char *text, size_t len, uint32_t *ret_current,
                            uint32_t *ret_initial)
{
        static const char mid[] = " (initial ";
        uint32_t cur, init;
        size_t i = 0, d;

        if (!text)
                return -EBADMSG;
        d = digits(text, len);
        if (parse_u32(text, d, UINT32_MAX, &cur) < 0)
                return -EBADMSG;
        i = d;
        if (len - i < sizeof mid - 1 || memcmp(text + i, mid, sizeof mid - 1) != 0)
                return -EBADMSG;
        i += sizeof mid - 1;
        d = digits(text + i, len - i);
        if (parse_u32(text + i, d, UINT32_MAX, &init) < 0)
                return -EBADMSG;
        i += d;
        if (i >= len || text[i] != ')')
                return -EBADMSG;
        for (i++; i < len; i++)
                if (!blank(text[i]))
                        return -EBADMSG;
        if (ret_current)
                *ret_current = cur;
        if (ret_initial)
                *ret_initial = init;
        return 0;
}

/* The next line of [*p, end) without its "\n"; false at the end. */
static bool next_line(const char **p, const char *end, const char **ret, size_t *ret_len)
{
        const char *s = *p, *nl;

        if (s >= end)
                return false;
        nl = memchr(s, '\n', (size_t)(end - s));
        *ret = s;
        *ret_len = nl ? (size_t)(nl - s) : (size_t)(end - s);
        *p = nl ? nl + 1 : end;
        return true;
}

/* The next space-separated token of [*p, end); false when none is left. */
static bool next_token(const char **p, const char *end, const char **ret, size_t *ret_len)
{
        const char *s = *p;

        while (s < end && (*s == ' ' || *s == '\t' || *s == '\r'))
                s++;
        if (s >= end)
                return false;
        *ret = s;
        while (s < end && *s != ' ' && *s != '\t' && *s != '\r')
                s++;
        *ret_len = (size_t)(s - *ret);
        *p = s;
        return true;
}

static bool token_is(const char *tok, size_t len, const char *s)
{
        return strlen(s) == len && memcmp(tok, s, len) == 0;
}

enum column {
        COL_BE_NAME,
        COL_SRV_NAME,
        COL_OP_STATE,
        COL_ADMIN_STATE,
        COL_UWEIGHT,
        COL_IWEIGHT,
        _COL_MAX,
};

/* Columns beyond this index are not looked at; HAProxy 2.6 has 25. */
#define COLUMNS_MAX 256

int fm_haproxy_parse_servers_state(const char *text, size_t len, const char *backend,
                                   const char *server, struct fm_haproxy_server *ret)
{
        static const char *const names[_COL_MAX] = {
                [COL_BE_NAME] = "be_name",       [COL_SRV_NAME] = "srv_name",
                [COL_OP_STATE] = "srv_op_state", [COL_ADMIN_STATE] = "srv_admin_state",
                [COL_UWEIGHT] = "srv_uweight",   [COL_IWEIGHT] = "srv_iweight",
        };
        const char *p, *end, *line, *tok;
        size_t line_len, tok_len;
        int col[_COL_MAX];
        int last = 0;

        if (!text || !backend || !server || !ret)
                return -EBADMSG;
        p = text;
        end = text + len;

        /* The format version, alone on the first line. */
        if (!next_line(&p, end, &line, &line_len) || !token_is(line, line_len, "1"))
                return -EBADMSG;

        /* "# be_id be_name srv_id ...": where each column is. */
        if (!next_line(&p, end, &line, &line_len) || line_len < 1 || line[0] != '#')
                return -EBADMSG;
        for (int c = 0; c < _COL_MAX; c++)
                col[c] = -1;
        {
                const char *lp = line + 1, *le = line + line_len;

                for (int i = 0; i < COLUMNS_MAX && next_token(&lp, le, &tok, &tok_len); i++)
                        for (int c = 0; c < _COL_MAX; c++)
                                if (col[c] < 0 && token_is(tok, tok_len, names[c]))
                                        col[c] = i;
        }
        for (int c = 0; c < _COL_MAX; c++) {
                if (col[c] < 0)
                        return -EBADMSG;
                if (col[c] > last)
                        last = col[c];
        }

        while (next_line(&p, end, &line, &line_len)) {
                const char *lp = line, *le = line + line_len;
                const char *field[_COL_MAX] = {0};
                size_t field_len[_COL_MAX] = {0};
                struct fm_haproxy_server s;
                int i;

                if (line_len == 0 || line[0] == '#')
                        continue;
                for (i = 0; i <= last && next_token(&lp, le, &tok, &tok_len); i++)
                        for (int c = 0; c < _COL_MAX; c++)
                                if (col[c] == i) {
                                        field[c] = tok;
                                        field_len[c] = tok_len;
                                }
                if (i <= last)
                        return -EBADMSG;
                if (!token_is(field[COL_BE_NAME], field_len[COL_BE_NAME], backend) ||
                    !token_is(field[COL_SRV_NAME], field_len[COL_SRV_NAME], server))
                        continue;
                if (parse_u32(field[COL_OP_STATE], field_len[COL_OP_STATE], UINT32_MAX,
                              &s.op_state) < 0 ||
                    parse_u32(field[COL_ADMIN_STATE], field_len[COL_ADMIN_STATE], UINT32_MAX,
                              &s.admin_state) < 0 ||
                    parse_u32(field[COL_UWEIGHT], field_len[COL_UWEIGHT], UINT32_MAX, &s.uweight) <
                            0 ||
                    parse_u32(field[COL_IWEIGHT], field_len[COL_IWEIGHT], UINT32_MAX, &s.iweight) <
                            0)
                        return -EBADMSG;
                *ret = s;
                return 0;
        }
        return -ENOENT;
}

static bool contains_ci(const char *text, size_t len, const char *needle)
{
        size_t nl = strlen(needle);

        for (size_t i = 0; i + nl <= len; i++) {
                size_t j = 0;

                while (j < nl) {
                        char a = text[i + j], b = needle[j];

                        if (a >= 'A' && a <= 'Z')
                                a = (char)(a - 'A' + 'a');
                        if (b >= 'A' && b <= 'Z')
                                b = (char)(b - 'A' + 'a');
                        if (a != b)
                                break;
                        j++;
                }
                if (j == nl)
                        return true;
        }
        return false;
}

enum fm_result_kind fm_haproxy_classify(const char *text, size_t len, int *ret_error)
{
        /* Messages of HAProxy 2.6's cli.c, server.c, proxy.c, first match wins. */
        static const struct {
                const char *text;
                int error;
        } known[] = {
                {"No such server", -ENOENT},
                {"No such backend", -ENOENT},
                {"Can't find backend", -ENOENT},
                {"Require 'backend/server'", -ENOENT},
                {"Permission denied", -EACCES},
                {"Unknown command", -EOPNOTSUPP},
                {"weight", -EINVAL}, /* "Absolute weight can only be ...", "Require <weight>" */
                {"expects", -EINVAL},
        };
        bool empty = true;

        for (size_t i = 0; text && i < len; i++)
                if (!blank(text[i])) {
                        empty = false;
                        break;
                }
        if (empty) {
                if (ret_error)
                        *ret_error = 0;
                return FM_RESULT_OK;
        }
        for (size_t i = 0; i < ARRAY_SIZE(known); i++)
                if (contains_ci(text, len, known[i].text)) {
                        if (ret_error)
                                *ret_error = known[i].error;
                        return FM_RESULT_PERMANENT;
                }
        if (ret_error)
                *ret_error = -EIO;
        return FM_RESULT_PERMANENT;
}

void fm_haproxy_message(const char *text, size_t len, char *buf, size_t size)
{
        const char *p = text, *end = text + (text ? len : 0), *line;
        size_t line_len, o = 0;

        if (!buf || size == 0)
                return;
        buf[0] = '\0';
        if (!text)
                return;
        while (next_line(&p, end, &line, &line_len)) {
                size_t a = 0, b = line_len;

                while (a < b && blank(line[a]))
                        a++;
                while (b > a && blank(line[b - 1]))
                        b--;
                if (a == b)
                        continue;
                for (size_t i = a; i < b && o + 1 < size; i++)
                        buf[o++] = line[i] >= 0x20 && line[i] < 0x7f ? line[i] : '?';
                buf[o] = '\0';
                return;
        }
}

/* ---- the queue ---- */

static fm_ms realtime_now(struct fm_haproxy *h)
{
        return fm_backend_now(h->event, CLOCK_REALTIME);
}

static void conn_close(struct conn *c)
{
        c->io = sd_event_source_disable_unref(c->io);
        c->timer = sd_event_source_disable_unref(c->timer);
        if (c->fd >= 0)
                close(c->fd);
        c->fd = -1;
        c->connecting = false;
        c->cmd_len = c->cmd_off = 0;
        c->in_len = 0;
}

static void kick_later(struct fm_haproxy *h)
{
        if (h->n_queue > 0)
                (void)sd_event_source_set_enabled(h->kick, SD_EVENT_ONESHOT);
}

/* Takes queue[i] out, keeping the order of the rest. */
static struct job *dequeue(struct fm_haproxy *h, unsigned i)
{
        struct job *j = h->queue[i];

        memmove(h->queue + i, h->queue + i + 1, (h->n_queue - i - 1) * sizeof *h->queue);
        h->n_queue--;
        h->queue[h->n_queue] = NULL;
        return j;
}

/*
 * Ends the head job: takes it out of the queue and closes its connection
 * before anyone hears of it, so whatever the callee does (submit more,
 * cancel others) finds a consistent backend.
 */
static void finish(struct fm_haproxy *h, enum fm_result_kind kind, int error, const char *detail)
{
        struct job *j = dequeue(h, 0);
        struct fm_action_result res = {
                .kind = kind,
                .error = kind == FM_RESULT_OK ? 0 : error,
                .detail = detail,
        };

        conn_close(&h->conn);
        kick_later(h);
        if (j->kind == JOB_WEIGHTS)
                (void)fm_actuator_complete(h->a, j->id, &res, realtime_now(h));
        else
                j->done(j->userdata, j->id, &res);
        free(j);
}

static enum fm_result_kind transport_kind(int error)
{
        switch (-error) {
        case ENOENT:       /* the socket is not there (yet): HAProxy is restarting */
        case ECONNREFUSED: /* a stale socket file, nobody listens */
        case ENOTCONN:
        case ECONNRESET:
        case EPIPE:
        case ETIMEDOUT:
        case EAGAIN: /* a unix socket's backlog is full */
                return FM_RESULT_RETRYABLE;
        default:
                return fm_result_kind_from_errno(error);
        }
}

static void fail_transport(struct fm_haproxy *h, int error)
{
        char detail[DETAIL_MAX];

        (void)snprintf(detail, sizeof detail, "haproxy %s: %s", h->cfg.socket, strerror(-error));
        finish(h, transport_kind(error), error, detail);
}

/* ---- one command on one connection ---- */

static void on_answer(struct fm_haproxy *h, const char *text, size_t len);

static int conn_read(struct fm_haproxy *h)
{
        struct conn *c = &h->conn;

        for (;;) {
                ssize_t n;

                if (c->in_cap - c->in_len < 2) {
                        size_t cap = c->in_cap ? c->in_cap * 2 : RESPONSE_CHUNK;
                        char *in;

                        if (c->in_cap > FM_HAPROXY_RESPONSE_MAX)
                                return -EFBIG;
                        if (cap > FM_HAPROXY_RESPONSE_MAX + 2)
                                cap = FM_HAPROXY_RESPONSE_MAX + 2;
                        in = realloc(c->in, cap);
                        if (!in)
                                return -ENOMEM;
                        c->in = in;
                        c->in_cap = cap;
                }
                n = read(c->fd, c->in + c->in_len, c->in_cap - c->in_len - 1);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return errno == EAGAIN ? 0 : -errno;
                }
                if (n == 0)
                        return 1;
                c->in_len += (size_t)n;
                if (c->in_len > FM_HAPROXY_RESPONSE_MAX)
                        return -EFBIG;
        }
}

static int conn_write(struct conn *c)
{
        while (c->cmd_off < c->cmd_len) {
                ssize_t n = send(c->fd, c->cmd + c->cmd_off, c->cmd_len - c->cmd_off, MSG_NOSIGNAL);

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return errno == EAGAIN ? 0 : -errno;
                }
                c->cmd_off += (size_t)n;
        }
        return 1;
}

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
        struct fm_haproxy *h = userdata;
        struct conn *c = &h->conn;
        int r;

        (void)s;
        (void)fd;
        if (c->connecting) {
                int err = 0;
                socklen_t el = sizeof err;

                if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0)
                        err = errno;
                if (err != 0) {
                        fail_transport(h, -err);
                        return 0;
                }
                c->connecting = false;
        }
        if (c->cmd_off < c->cmd_len) {
                r = conn_write(c);
                if (r < 0) {
                        fail_transport(h, r);
                        return 0;
                }
                if (r > 0 && sd_event_source_set_io_events(c->io, EPOLLIN) < 0) {
                        fail_transport(h, -EIO);
                        return 0;
                }
                if (r == 0)
                        return 0;
        }
        if (!(revents & (EPOLLIN | EPOLLHUP | EPOLLERR)))
                return 0;
        r = conn_read(h);
        if (r < 0) {
                if (r == -EFBIG)
                        finish(h, FM_RESULT_PERMANENT, r, "haproxy: answer too large");
                else
                        fail_transport(h, r);
                return 0;
        }
        if (r == 0)
                return 0;
        /* EOF: HAProxy answered and closed. Nothing at all means it went away. */
        if (c->in_len == 0) {
                fail_transport(h, -ECONNRESET);
                return 0;
        }
        c->in[c->in_len] = '\0';
        on_answer(h, c->in, c->in_len);
        return 0;
}

static int on_timeout(sd_event_source *s, uint64_t usec, void *userdata)
{
        (void)s;
        (void)usec;
        fail_transport(userdata, -ETIMEDOUT);
        return 0;
}

/*
 * Sends the command in h->conn.cmd on a new connection. Returns 0, or a
 * negative errno with nothing left open (the caller fails the job).
 */
static int conn_open(struct fm_haproxy *h)
{
        struct conn *c = &h->conn;
        int r;

        c->fd = socket(h->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (c->fd < 0)
                return -errno;
        if (connect(c->fd, (const struct sockaddr *)&h->addr, h->addr_len) < 0) {
                if (errno != EINPROGRESS) {
                        r = -errno;
                        goto fail;
                }
                c->connecting = true;
        }
        r = sd_event_add_io(h->event, &c->io, c->fd, EPOLLOUT, on_io, h);
        if (r < 0)
                goto fail;
        (void)sd_event_source_set_description(c->io, "haproxy-socket");
        r = sd_event_add_time_relative(h->event, &c->timer, CLOCK_MONOTONIC,
                                       (uint64_t)h->cfg.timeout * USEC_PER_MS, USEC_PER_MS,
                                       on_timeout, h);
        if (r < 0)
                goto fail;
        (void)sd_event_source_set_description(c->timer, "haproxy-timeout");
        return 0;
fail:
        conn_close(c);
        return r;
}

/*
 * Sends the command of len bytes already formatted into h->conn.cmd (a
 * negative len: the formatting failed) on a new connection; fails the job
 * on error.
 */
static void issue(struct fm_haproxy *h, int len)
{
        int r;

        if (len < 0) {
                finish(h, FM_RESULT_PERMANENT, len, "haproxy: cannot form the command");
                return;
        }
        conn_close(&h->conn);
        h->conn.cmd_len = (size_t)len;
        h->conn.cmd_off = 0;
        r = conn_open(h);
        if (r < 0)
                fail_transport(h, r);
}

/* ---- the steps of a job ---- */

static struct job *head(struct fm_haproxy *h)
{
        return h->queue[0];
}

static void issue_show(struct fm_haproxy *h, struct job *j)
{
        issue(h, fm_haproxy_cmd_show_state(h->conn.cmd, sizeof h->conn.cmd, j->backend));
}

static void issue_op(struct fm_haproxy *h, struct job *j)
{
        const struct op *o = j->ops + j->i_op;
        const struct target *t = j->t + o->target;
        char *buf = h->conn.cmd;
        size_t size = sizeof h->conn.cmd;

        switch ((enum op_kind)o->kind) {
        case OP_WEIGHT:
                issue(h, fm_haproxy_cmd_set_weight(buf, size, j->backend, t->server, t->weight));
                return;
        case OP_READY:
                issue(h,
                      fm_haproxy_cmd_set_state(buf, size, j->backend, t->server, FM_HAPROXY_READY));
                return;
        case OP_DRAIN:
                issue(h,
                      fm_haproxy_cmd_set_state(buf, size, j->backend, t->server, FM_HAPROXY_DRAIN));
                return;
        case OP_MAINT:
                issue(h,
                      fm_haproxy_cmd_set_state(buf, size, j->backend, t->server, FM_HAPROXY_MAINT));
                return;
        }
        issue(h, -EINVAL);
}

static void begin(struct fm_haproxy *h, struct job *j)
{
        if (j->kind == JOB_STATE) {
                j->phase = PH_APPLY;
                j->i_op = 0;
                issue_op(h, j);
                return;
        }
        j->phase = PH_PLAN;
        issue_show(h, j);
}

static bool target_holds(const struct job *j, const struct target *t)
{
        enum fm_haproxy_state st = fm_haproxy_admin_state(t->seen.admin_state);

        if (j->kind == JOB_STATE)
                return st == j->state;
        if (t->weight == 0)
                return st != FM_HAPROXY_READY;
        return st == FM_HAPROXY_READY && t->seen.uweight == t->weight;
}

/* True when every target holds what the job asks for. */
static bool job_holds(const struct job *j)
{
        for (uint32_t i = 0; i < j->n; i++)
                if (!target_holds(j, j->t + i))
                        return false;
        return true;
}

/* "web/v1 weight 90 ready, web/v2 weight 10 ready" from what was last read. */
static void describe(const struct job *j, const char *prefix, char *buf, size_t size)
{
        size_t o = 0;
        int r;

        r = snprintf(buf, size, "%s", prefix);
        o = r > 0 && (size_t)r < size ? (size_t)r : 0;
        for (uint32_t i = 0; i < j->n && o < size; i++) {
                const struct target *t = j->t + i;

                r = snprintf(buf + o, size - o, "%s%s/%s weight %" PRIu32 " %s", i ? ", " : "",
                             j->backend, t->server, t->seen.uweight,
                             fm_haproxy_state_name(fm_haproxy_admin_state(t->seen.admin_state)));
                if (r < 0)
                        break;
                o += (size_t)r;
        }
}

/* Fails the head with HAProxy's message, prefixed with what it was about. */
static void fail_answer(struct fm_haproxy *h, const char *about, const char *text, size_t len,
                        int fallback)
{
        char msg[MSG_MAX], detail[DETAIL_MAX];
        int error = 0;
        enum fm_result_kind kind = fm_haproxy_classify(text, len, &error);

        if (kind == FM_RESULT_OK) {
                kind = FM_RESULT_PERMANENT;
                error = fallback;
        }
        fm_haproxy_message(text, len, msg, sizeof msg);
        (void)snprintf(detail, sizeof detail, "%s: %s", about, msg[0] ? msg : "unreadable answer");
        finish(h, kind, error, detail);
}

/*
 * Reads every target's row. Returns 0, the index + 1 of the first missing
 * target as a positive number, or -EBADMSG.
 */
static int read_table(struct job *j, const char *text, size_t len)
{
        for (uint32_t i = 0; i < j->n; i++) {
                int r = fm_haproxy_parse_servers_state(text, len, j->backend, j->t[i].server,
                                                       &j->t[i].seen);
                if (r == -ENOENT)
                        return (int)i + 1;
                if (r < 0)
                        return r;
        }
        return 0;
}

static void plan(struct fm_haproxy *h, struct job *j)
{
        char detail[DETAIL_MAX];

        if (j->observe) {
                describe(j, "", detail, sizeof detail);
                finish(h, job_holds(j) ? FM_RESULT_OK : FM_RESULT_PERMANENT, -ESRCH, detail);
                return;
        }
        for (uint32_t i = 0; i < j->n; i++) {
                const struct target *t = j->t + i;

                if (t->weight > 0 &&
                    fm_haproxy_admin_state(t->seen.admin_state) == FM_HAPROXY_MAINT) {
                        (void)snprintf(detail, sizeof detail, "%s/%s is in maint; nothing changed",
                                       j->backend, t->server);
                        finish(h, FM_RESULT_PERMANENT, -EBUSY, detail);
                        return;
                }
        }

        /* Servers that gain traffic first (weight, then ready), drains last. */
        j->n_ops = 0;
        for (uint32_t i = 0; i < j->n; i++) {
                const struct target *t = j->t + i;

                if (t->weight == 0)
                        continue;
                if (t->seen.uweight != t->weight)
                        j->ops[j->n_ops++] = (struct op){(uint8_t)i, OP_WEIGHT};
                if (fm_haproxy_admin_state(t->seen.admin_state) != FM_HAPROXY_READY)
                        j->ops[j->n_ops++] = (struct op){(uint8_t)i, OP_READY};
        }
        for (uint32_t i = 0; i < j->n; i++)
                if (j->t[i].weight == 0 &&
                    fm_haproxy_admin_state(j->t[i].seen.admin_state) == FM_HAPROXY_READY)
                        j->ops[j->n_ops++] = (struct op){(uint8_t)i, OP_DRAIN};

        if (j->n_ops == 0) {
                describe(j, "", detail, sizeof detail);
                finish(h, FM_RESULT_OK, 0, detail);
                return;
        }
        j->phase = PH_APPLY;
        j->i_op = 0;
        issue_op(h, j);
}

static void on_answer(struct fm_haproxy *h, const char *text, size_t len)
{
        struct job *j = head(h);
        char about[2 * FM_HAPROXY_NAME_MAX + 2], detail[DETAIL_MAX];
        int r;

        switch (j->phase) {
        case PH_PLAN:
                r = read_table(j, text, len);
                if (r < 0) {
                        fail_answer(h, j->backend, text, len, -EBADMSG);
                        return;
                }
                if (r > 0) {
                        j->phase = PH_PROBE;
                        j->probe = (uint32_t)r - 1;
                        issue(h, fm_haproxy_cmd_get_weight(h->conn.cmd, sizeof h->conn.cmd,
                                                           j->backend, j->t[j->probe].server));
                        return;
                }
                plan(h, j);
                return;

        case PH_PROBE:
                (void)snprintf(about, sizeof about, "%s/%s", j->backend, j->t[j->probe].server);
                if (fm_haproxy_parse_weight(text, len, NULL, NULL) < 0) {
                        fail_answer(h, about, text, len, -ENOENT);
                        return;
                }
                /* It exists after all: it came while we looked. Look again later. */
                (void)snprintf(detail, sizeof detail, "%s appeared while being read", about);
                finish(h, FM_RESULT_RETRYABLE, -EAGAIN, detail);
                return;

        case PH_APPLY: {
                const struct target *t = j->t + j->ops[j->i_op].target;

                if (fm_haproxy_classify(text, len, NULL) != FM_RESULT_OK) {
                        (void)snprintf(about, sizeof about, "%s/%s", j->backend, t->server);
                        fail_answer(h, about, text, len, -EIO);
                        return;
                }
                if (++j->i_op < j->n_ops) {
                        issue_op(h, j);
                        return;
                }
                j->phase = PH_VERIFY;
                issue_show(h, j);
                return;
        }

        case PH_VERIFY: {
                bool holds;

                r = read_table(j, text, len);
                if (r > 0) {
                        (void)snprintf(detail, sizeof detail, "%s/%s vanished", j->backend,
                                       j->t[r - 1].server);
                        finish(h, FM_RESULT_PERMANENT, -ENOENT, detail);
                        return;
                }
                if (r < 0) {
                        fail_answer(h, j->backend, text, len, -EBADMSG);
                        return;
                }
                holds = job_holds(j);
                describe(j, holds ? "" : "read back differs: ", detail, sizeof detail);
                finish(h, holds ? FM_RESULT_OK : FM_RESULT_RETRYABLE, -EAGAIN, detail);
                return;
        }
        }
}

static int on_kick(sd_event_source *s, void *userdata)
{
        struct fm_haproxy *h = userdata;

        (void)s;
        if (h->conn.fd >= 0 || h->n_queue == 0)
                return 0;
        begin(h, head(h));
        return 0;
}

/* ---- the backend ---- */

int fm_haproxy_new(sd_event *event, const struct fm_haproxy_config *cfg, struct fm_actuator *a,
                   struct fm_haproxy **ret)
{
        struct fm_haproxy *h;
        int r;

        if (!event || !cfg || !a || !ret || fm_haproxy_config_validate(cfg) < 0)
                return -EINVAL;
        h = calloc(1, sizeof *h);
        if (!h)
                return -ENOMEM;
        h->cfg = *cfg;
        h->a = a;
        h->conn.fd = -1;
        h->event = sd_event_ref(event);
        r = parse_socket(cfg->socket, &h->addr, &h->addr_len);
        if (r < 0)
                goto fail;
        r = sd_event_add_defer(event, &h->kick, on_kick, h);
        if (r < 0)
                goto fail;
        (void)sd_event_source_set_description(h->kick, "haproxy-kick");
        r = sd_event_source_set_enabled(h->kick, SD_EVENT_OFF);
        if (r < 0)
                goto fail;
        *ret = h;
        return 0;
fail:
        fm_haproxy_free(h);
        return r;
}

struct fm_haproxy *fm_haproxy_free(struct fm_haproxy *h)
{
        if (!h)
                return NULL;
        conn_close(&h->conn);
        free(h->conn.in);
        for (unsigned i = 0; i < h->n_queue; i++)
                free(h->queue[i]);
        h->kick = sd_event_source_disable_unref(h->kick);
        sd_event_unref(h->event);
        free(h);
        return NULL;
}

unsigned fm_haproxy_pending(const struct fm_haproxy *h)
{
        return h ? h->n_queue : 0;
}

/* A new job of kind and id, when the queue has room for it: 0, -ENOBUFS, -ENOMEM. */
static int job_new(struct fm_haproxy *h, enum job_kind kind, uint64_t id, struct job **ret)
{
        struct job *j;

        if (h->n_queue >= FM_HAPROXY_QUEUE_MAX)
                return -ENOBUFS;
        j = calloc(1, sizeof *j);
        if (!j)
                return -ENOMEM;
        j->kind = kind;
        j->id = id;
        *ret = j;
        return 0;
}

static int enqueue(struct fm_haproxy *h, struct job *j)
{
        if (h->n_queue >= FM_HAPROXY_QUEUE_MAX)
                return -ENOBUFS;
        h->queue[h->n_queue++] = j;
        kick_later(h);
        return 0;
}

/* Drops a job by kind and id; if it was running, its connection goes too. */
static void drop(struct fm_haproxy *h, enum job_kind kind, uint64_t id)
{
        for (unsigned i = 0; i < h->n_queue; i++) {
                struct job *j = h->queue[i];

                if (j->kind != kind || j->id != id)
                        continue;
                if (i == 0)
                        conn_close(&h->conn);
                free(dequeue(h, i));
                kick_later(h);
                return;
        }
}

static int haproxy_start(void *backend, const struct fm_action_req *req, uint64_t attempt_id)
{
        struct fm_haproxy *h = backend;
        struct job *j;
        char be[FM_HAPROXY_NAME_MAX + 1];
        int r = -EINVAL;

        if (!h || !req)
                return -EINVAL;
        if (req->action != FM_ACTION_SET_WEIGHTS)
                return -EOPNOTSUPP;
        if (req->arg.weights.n == 0 || req->arg.weights.n > FM_ACTUATOR_WEIGHTS_MAX ||
            !fm_text_terminated(req->deployment, sizeof req->deployment))
                return -EINVAL;
        r = job_new(h, JOB_WEIGHTS, attempt_id, &j);
        if (r < 0)
                return r;
        j->observe = req->observe;
        j->n = req->arg.weights.n;
        for (uint32_t i = 0; i < j->n; i++) {
                const struct fm_weight *w = req->arg.weights.w + i;

                if (!fm_text_terminated(w->target, sizeof w->target) ||
                    w->weight > FM_HAPROXY_WEIGHT_MAX) {
                        r = -EINVAL;
                        goto fail;
                }
                r = fm_haproxy_map(&h->cfg, req->deployment, w->target, be, j->t[i].server);
                if (r < 0)
                        goto fail;
                if (i == 0)
                        memcpy(j->backend, be, sizeof be);
                for (uint32_t k = 0; k < i; k++)
                        if (strcmp(j->t[k].server, j->t[i].server) == 0) {
                                r = -EINVAL; /* two weights for one server */
                                goto fail;
                        }
                j->t[i].weight = w->weight;
        }
        r = enqueue(h, j);
        if (r < 0)
                goto fail;
        return 0;
fail:
        free(j);
        return r;
}

static void haproxy_cancel(void *backend, uint64_t attempt_id)
{
        if (backend)
                drop(backend, JOB_WEIGHTS, attempt_id);
}

int fm_haproxy_set_state(struct fm_haproxy *h, const char *deployment, const char *target,
                         enum fm_haproxy_state state, fm_haproxy_state_fn done, void *userdata,
                         uint64_t *ret_id)
{
        struct job *j;
        int r;

        if (!h || !done || !fm_haproxy_state_name(state))
                return -EINVAL;
        r = job_new(h, JOB_STATE, h->last_state_id + 1, &j);
        if (r < 0)
                return r;
        r = fm_haproxy_map(&h->cfg, deployment, target, j->backend, j->t[0].server);
        if (r < 0)
                goto fail;
        j->state = state;
        j->done = done;
        j->userdata = userdata;
        j->n = 1;
        j->n_ops = 1;
        j->ops[0] = (struct op){0, state == FM_HAPROXY_READY   ? OP_READY
                                   : state == FM_HAPROXY_DRAIN ? OP_DRAIN
                                                               : OP_MAINT};
        r = enqueue(h, j);
        if (r < 0)
                goto fail;
        h->last_state_id = j->id;
        if (ret_id)
                *ret_id = j->id;
        return 0;
fail:
        free(j);
        return r;
}

void fm_haproxy_cancel_state(struct fm_haproxy *h, uint64_t id)
{
        if (h)
                drop(h, JOB_STATE, id);
}

const struct fm_backend_ops fm_backend_haproxy_ops = {
        .name = "haproxy",
        .supports = {[FM_ACTION_SET_WEIGHTS] = true},
        .start = haproxy_start,
        .cancel = haproxy_cancel,
};
