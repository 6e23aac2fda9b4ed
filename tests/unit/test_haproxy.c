/* SPDX-License-Identifier: MIT */

/*
 * The HAProxy backend (actuators/haproxy.c) without HAProxy: names,
 * command lines, the parsers fed with text captured from HAProxy 2.6.12
 * (Debian 12), error classification, and the request logic against a
 * small fake runtime API on a unix socket in this process, driven by the
 * same sd-event loop. The fake keeps a server table the way HAProxy does
 * and records every command line it receives, so the tests can check
 * what was sent, in which order, and that hostile names send nothing.
 * tests/integration/test_haproxy.c does the same against a real haproxy.
 */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-event.h>

#include "../integration/haproxy_peer.h"

#define WAIT_MS 10000

/* ---- text captured from haproxy 2.6.12 ---- */

#define STATE_HEADER                                                                               \
        "1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight "    \
        "srv_iweight srv_time_since_last_change srv_check_status srv_check_result "                \
        "srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id "         \
        "srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr "    \
        "srv_agent_port\n"

/* v1 ready at weight 90, v2 drained at 5, v3 in maint (forced). */
static const char state_26[] =
        STATE_HEADER "3 web 1 v1 127.0.0.1 2 0 90 1 8 1 0 2 0 0 0 0 - 18081 - 0 0 - - 0\n"
                     "3 web 2 v2 127.0.0.1 2 8 5 5 0 1 0 2 0 0 0 0 - 18082 - 0 0 - - 0\n"
                     "3 web 3 v3 127.0.0.1 0 1 5 5 0 1 0 0 0 0 0 0 - 18083 - 0 0 - - 0\n"
                     "\n";

static void test_names(void **state)
{
        static const char *const hostile[] = {
                "",          "web;shutdown", "web shutdown", "web\nshutdown", "a/b",    "v1%20",
                "v1'",       "v1\"",         "v1\t",         "v1\r",          "\x01v1", "v1\x7f",
                "v\xc3\xa9", "{target}",     "v1#",          "v1\\",          "*",
        };
        char longname[FM_HAPROXY_NAME_MAX + 2];

        (void)state;
        assert_true(fm_haproxy_name_valid("web"));
        assert_true(fm_haproxy_name_valid("fraud-scorer-3"));
        assert_true(fm_haproxy_name_valid("V1.2_rc-1"));
        /* Dots only are harmless on a command line: HAProxy answers "No such server". */
        assert_true(fm_haproxy_name_valid(".."));
        assert_false(fm_haproxy_name_valid(NULL));
        for (size_t i = 0; i < ARRAY_SIZE(hostile); i++)
                assert_false(fm_haproxy_name_valid(hostile[i]));
        memset(longname, 'a', sizeof longname - 1);
        longname[sizeof longname - 1] = '\0';
        assert_false(fm_haproxy_name_valid(longname));
        longname[FM_HAPROXY_NAME_MAX] = '\0';
        assert_true(fm_haproxy_name_valid(longname));
}

static void test_commands(void **state)
{
        char buf[FM_HAPROXY_CMD_MAX];

        (void)state;
        assert_int_equal(fm_haproxy_cmd_set_weight(buf, sizeof buf, "web", "v1", 90), 28);
        assert_string_equal(buf, "set server web/v1 weight 90\n");
        assert_int_equal(fm_haproxy_cmd_set_weight(buf, sizeof buf, "web", "v1", 256), 29);
        assert_int_equal(fm_haproxy_cmd_set_weight(buf, sizeof buf, "web", "v1", 257), -EINVAL);
        assert_true(fm_haproxy_cmd_set_state(buf, sizeof buf, "web", "v2", FM_HAPROXY_DRAIN) > 0);
        assert_string_equal(buf, "set server web/v2 state drain\n");
        assert_true(fm_haproxy_cmd_set_state(buf, sizeof buf, "web", "v2", FM_HAPROXY_READY) > 0);
        assert_string_equal(buf, "set server web/v2 state ready\n");
        assert_true(fm_haproxy_cmd_set_state(buf, sizeof buf, "web", "v2", FM_HAPROXY_MAINT) > 0);
        assert_string_equal(buf, "set server web/v2 state maint\n");
        assert_int_equal(fm_haproxy_cmd_set_state(buf, sizeof buf, "web", "v2", 7), -EINVAL);
        assert_true(fm_haproxy_cmd_get_weight(buf, sizeof buf, "web", "v2") > 0);
        assert_string_equal(buf, "get weight web/v2\n");
        assert_true(fm_haproxy_cmd_show_state(buf, sizeof buf, "web") > 0);
        assert_string_equal(buf, "show servers state web\n");

        /* Hostile names never become a command; buf says nothing either. */
        buf[0] = '\0';
        assert_int_equal(fm_haproxy_cmd_set_weight(buf, sizeof buf, "web", "v1;shutdown", 1),
                         -EINVAL);
        assert_int_equal(fm_haproxy_cmd_set_weight(buf, sizeof buf, "web/x", "v1", 1), -EINVAL);
        assert_int_equal(fm_haproxy_cmd_set_state(buf, sizeof buf, "web", "v1\nshow", 0), -EINVAL);
        assert_int_equal(fm_haproxy_cmd_get_weight(buf, sizeof buf, "web", "v 1"), -EINVAL);
        assert_int_equal(fm_haproxy_cmd_show_state(buf, sizeof buf, "web;help"), -EINVAL);
        assert_int_equal(fm_haproxy_cmd_show_state(buf, sizeof buf, ""), -EINVAL);
        assert_string_equal(buf, "");

        /* Too small: -ENOBUFS, never a truncated command. */
        assert_int_equal(fm_haproxy_cmd_set_weight(buf, 28, "web", "v1", 90), -ENOBUFS);
        assert_string_equal(buf, "");
        assert_int_equal(fm_haproxy_cmd_show_state(buf, 0, "web"), -ENOBUFS);
}

static void test_config(void **state)
{
        struct fm_haproxy_config cfg, bad;
        static const char *const bad_sockets[] = {
                "",
                "admin.sock",
                "ipv4@10.0.0.1:9999",
                "ipv4@127.0.0.1",
                "ipv4@127.0.0.1:0",
                "ipv4@127.0.0.1:65536",
                "ipv4@127.0.0.1:-1",
                "ipv4@localhost:9999",
                "ipv6@::1:9999",
                "unix@/run/haproxy/admin.sock",
        };

        (void)state;
        fm_haproxy_config_default(&cfg);
        assert_string_equal(cfg.socket, "/run/haproxy/admin.sock");
        assert_int_equal(cfg.timeout, 5000);
        assert_int_equal(cfg.n_mappings, 0);
        assert_int_equal(fm_haproxy_config_validate(&cfg), 0);
        assert_int_equal(fm_haproxy_config_validate(NULL), -EINVAL);

        snprintf(cfg.socket, sizeof cfg.socket, "ipv4@127.0.0.2:9999");
        assert_int_equal(fm_haproxy_config_validate(&cfg), 0);
        for (size_t i = 0; i < ARRAY_SIZE(bad_sockets); i++) {
                bad = cfg;
                snprintf(bad.socket, sizeof bad.socket, "%s", bad_sockets[i]);
                assert_int_equal(fm_haproxy_config_validate(&bad), -EINVAL);
        }
        bad = cfg;
        memset(bad.socket, 'a', sizeof bad.socket); /* unterminated */
        bad.socket[0] = '/';
        assert_int_equal(fm_haproxy_config_validate(&bad), -EINVAL);

        bad = cfg;
        bad.timeout = 0;
        assert_int_equal(fm_haproxy_config_validate(&bad), -EINVAL);
        bad.timeout = FM_HAPROXY_TIMEOUT_MAX + 1;
        assert_int_equal(fm_haproxy_config_validate(&bad), -EINVAL);
        bad.timeout = FM_HAPROXY_TIMEOUT_MAX;
        assert_int_equal(fm_haproxy_config_validate(&bad), 0);

        cfg.n_mappings = 2;
        snprintf(cfg.mapping[0].deployment, sizeof cfg.mapping[0].deployment, "web");
        snprintf(cfg.mapping[0].backend, sizeof cfg.mapping[0].backend, "be_web");
        snprintf(cfg.mapping[0].server, sizeof cfg.mapping[0].server, "{deployment}-{target}");
        snprintf(cfg.mapping[1].deployment, sizeof cfg.mapping[1].deployment, "*");
        assert_int_equal(fm_haproxy_config_validate(&cfg), 0);

        bad = cfg;
        snprintf(bad.mapping[1].deployment, sizeof bad.mapping[1].deployment, "web");
        assert_int_equal(fm_haproxy_config_validate(&bad), -EINVAL); /* duplicate */
        bad = cfg;
        snprintf(bad.mapping[0].backend, sizeof bad.mapping[0].backend, "be web");
        assert_int_equal(fm_haproxy_config_validate(&bad), -EINVAL);
        bad = cfg;
        snprintf(bad.mapping[0].server, sizeof bad.mapping[0].server, "{version}");
        assert_int_equal(fm_haproxy_config_validate(&bad), -EINVAL);
        snprintf(bad.mapping[0].server, sizeof bad.mapping[0].server, "{target");
        assert_int_equal(fm_haproxy_config_validate(&bad), -EINVAL);
        snprintf(bad.mapping[0].server, sizeof bad.mapping[0].server, "{target};x");
        assert_int_equal(fm_haproxy_config_validate(&bad), -EINVAL);
        bad = cfg;
        bad.mapping[0].deployment[0] = '\0';
        assert_int_equal(fm_haproxy_config_validate(&bad), -EINVAL);
        bad = cfg;
        bad.n_mappings = FM_HAPROXY_MAPPINGS_MAX + 1;
        assert_int_equal(fm_haproxy_config_validate(&bad), -EINVAL);
}

static void test_map(void **state)
{
        struct fm_haproxy_config cfg;
        char be[FM_HAPROXY_NAME_MAX + 1] = "untouched", srv[FM_HAPROXY_NAME_MAX + 1] = "untouched";
        char longt[FM_HAPROXY_NAME_MAX + 1];

        (void)state;
        fm_haproxy_config_default(&cfg);
        assert_int_equal(fm_haproxy_map(&cfg, "web", "v1", be, srv), 0);
        assert_string_equal(be, "web");
        assert_string_equal(srv, "v1");

        cfg.n_mappings = 2;
        snprintf(cfg.mapping[0].deployment, sizeof cfg.mapping[0].deployment, "*");
        snprintf(cfg.mapping[0].server, sizeof cfg.mapping[0].server, "srv-{target}");
        snprintf(cfg.mapping[1].deployment, sizeof cfg.mapping[1].deployment, "fraud");
        snprintf(cfg.mapping[1].backend, sizeof cfg.mapping[1].backend, "be_fraud");
        snprintf(cfg.mapping[1].server, sizeof cfg.mapping[1].server, "{deployment}_{target}");
        assert_int_equal(fm_haproxy_config_validate(&cfg), 0);

        /* The exact mapping wins over "*" even when "*" comes first. */
        assert_int_equal(fm_haproxy_map(&cfg, "fraud", "v7", be, srv), 0);
        assert_string_equal(be, "be_fraud");
        assert_string_equal(srv, "fraud_v7");
        assert_int_equal(fm_haproxy_map(&cfg, "web", "web-0", be, srv), 0);
        assert_string_equal(be, "web");
        assert_string_equal(srv, "srv-web-0");

        /* Hostile inputs: -EINVAL, outputs untouched. */
        snprintf(be, sizeof be, "untouched");
        snprintf(srv, sizeof srv, "untouched");
        assert_int_equal(fm_haproxy_map(&cfg, "web", "v1;shutdown", be, srv), -EINVAL);
        assert_int_equal(fm_haproxy_map(&cfg, "web", "a/b", be, srv), -EINVAL);
        assert_int_equal(fm_haproxy_map(&cfg, "web x", "v1", be, srv), -EINVAL);
        assert_int_equal(fm_haproxy_map(&cfg, "web", "", be, srv), -EINVAL);
        assert_int_equal(fm_haproxy_map(&cfg, "web", "v1\n", be, srv), -EINVAL);
        assert_int_equal(fm_haproxy_map(&cfg, "*", "v1", be, srv), -EINVAL);
        /* A valid target whose expansion is too long for a name. */
        memset(longt, 'x', sizeof longt - 1);
        longt[sizeof longt - 1] = '\0';
        assert_int_equal(fm_haproxy_map(&cfg, "web", longt, be, srv), -EINVAL);
        assert_string_equal(be, "untouched");
        assert_string_equal(srv, "untouched");
}

static void test_parse_weight(void **state)
{
        uint32_t cur = 1234, init = 1234;

        (void)state;
        assert_int_equal(fm_haproxy_parse_weight("90 (initial 1)\n\n", 16, &cur, &init), 0);
        assert_int_equal(cur, 90);
        assert_int_equal(init, 1);
        assert_int_equal(fm_haproxy_parse_weight("0 (initial 256)\n", 16, &cur, NULL), 0);
        assert_int_equal(cur, 0);

        static const char *const bad[] = {
                "No such server.\n\n",
                "No such backend.\n\n",
                "Require 'backend/server'.\n\n",
                "",
                "90\n",
                "90 (initial )\n",
                "90 (initial 1\n",
                "-1 (initial 1)\n",
                "90 (initial 1) trailing\n",
                "99999999999 (initial 1)\n",
        };
        cur = init = 77;
        for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
                assert_int_equal(fm_haproxy_parse_weight(bad[i], strlen(bad[i]), &cur, &init),
                                 -EBADMSG);
        assert_int_equal(cur, 77);
        assert_int_equal(init, 77);
}

static void test_parse_servers_state(void **state)
{
        struct fm_haproxy_server s;
        const size_t len = sizeof state_26 - 1;

        (void)state;
        assert_int_equal(fm_haproxy_parse_servers_state(state_26, len, "web", "v1", &s), 0);
        assert_int_equal(s.op_state, 2);
        assert_int_equal(s.admin_state, 0);
        assert_int_equal(s.uweight, 90);
        assert_int_equal(s.iweight, 1);
        assert_int_equal(fm_haproxy_admin_state(s.admin_state), FM_HAPROXY_READY);

        assert_int_equal(fm_haproxy_parse_servers_state(state_26, len, "web", "v2", &s), 0);
        assert_int_equal(s.admin_state, 8);
        assert_int_equal(s.uweight, 5);
        assert_int_equal(fm_haproxy_admin_state(s.admin_state), FM_HAPROXY_DRAIN);

        assert_int_equal(fm_haproxy_parse_servers_state(state_26, len, "web", "v3", &s), 0);
        assert_int_equal(s.op_state, 0);
        assert_int_equal(fm_haproxy_admin_state(s.admin_state), FM_HAPROXY_MAINT);

        /* Names match whole tokens only. */
        assert_int_equal(fm_haproxy_parse_servers_state(state_26, len, "web", "v", &s), -ENOENT);
        assert_int_equal(fm_haproxy_parse_servers_state(state_26, len, "we", "v1", &s), -ENOENT);
        assert_int_equal(fm_haproxy_parse_servers_state(state_26, len, "web", "v4", &s), -ENOENT);

        /* Columns are found by name: another order reads the same. */
        static const char reordered[] = "1\n# srv_name srv_uweight be_name srv_iweight "
                                        "srv_admin_state srv_op_state extra\n"
                                        "v9 42 api 10 9 2 x\n";
        assert_int_equal(
                fm_haproxy_parse_servers_state(reordered, sizeof reordered - 1, "api", "v9", &s),
                0);
        assert_int_equal(s.uweight, 42);
        assert_int_equal(s.iweight, 10);
        assert_int_equal(s.admin_state, 9);
        assert_int_equal(fm_haproxy_admin_state(9), FM_HAPROXY_MAINT); /* maint beats drain */
        assert_int_equal(fm_haproxy_admin_state(0x10), FM_HAPROXY_DRAIN);
        assert_int_equal(fm_haproxy_admin_state(0x20), FM_HAPROXY_MAINT);

        /* A table of no servers: the backend exists, the server does not. */
        static const char empty[] = STATE_HEADER "\n";
        assert_int_equal(fm_haproxy_parse_servers_state(empty, sizeof empty - 1, "web", "v1", &s),
                         -ENOENT);

        static const char *const bad[] = {
                "Can't find backend.\n\n",
                "",
                "2\n# be_name srv_name srv_op_state srv_admin_state srv_uweight srv_iweight\n",
                "1\nbe_name srv_name\n",
                "1\n# be_name srv_name srv_op_state srv_admin_state srv_uweight\n", /* no iweight */
                STATE_HEADER "3 web 1 v1 127.0.0.1 2\n",                            /* short row */
                STATE_HEADER "3 web 1 v1 127.0.0.1 2 0 x 1 8 1 0 2 0 0 0 0 - 1 - 0 0 - - 0\n",
                STATE_HEADER "3 web 1 v1 127.0.0.1 2 -1 9 1 8 1 0 2 0 0 0 0 - 1 - 0 0 - - 0\n",
        };
        s.uweight = 4321;
        for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
                assert_int_equal(
                        fm_haproxy_parse_servers_state(bad[i], strlen(bad[i]), "web", "v1", &s),
                        -EBADMSG);
        assert_int_equal(s.uweight, 4321);
}

static void test_classify(void **state)
{
        static const struct {
                const char *text;
                enum fm_result_kind kind;
                int error;
        } cases[] = {
                {"\n", FM_RESULT_OK, 0},
                {"", FM_RESULT_OK, 0},
                {"No such server.\n\n", FM_RESULT_PERMANENT, -ENOENT},
                {"No such backend.\n\n", FM_RESULT_PERMANENT, -ENOENT},
                {"Can't find backend.\n\n", FM_RESULT_PERMANENT, -ENOENT},
                {"Require 'backend/server'.\n\n", FM_RESULT_PERMANENT, -ENOENT},
                {"\nPermission denied\n\n", FM_RESULT_PERMANENT, -EACCES},
                {"Unknown command, but maybe one of the following ones is a better match:\n"
                 "  set weight <bk>/<srv>  (DEPRECATED)     : change a server's weight\n",
                 FM_RESULT_PERMANENT, -EOPNOTSUPP},
                {"Absolute weight can only be between 0 and 256 inclusive.\n\n",
                 FM_RESULT_PERMANENT, -EINVAL},
                {"'set server <srv> state' expects 'ready', 'drain' and 'maint'.\n\n",
                 FM_RESULT_PERMANENT, -EINVAL},
                {"something new\n", FM_RESULT_PERMANENT, -EIO},
        };
        int error;

        (void)state;
        for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
                error = 12345;
                assert_int_equal(fm_haproxy_classify(cases[i].text, strlen(cases[i].text), &error),
                                 cases[i].kind);
                assert_int_equal(error, cases[i].error);
        }
        assert_int_equal(fm_haproxy_classify(NULL, 0, NULL), FM_RESULT_OK);
}

static void test_message(void **state)
{
        char buf[16];

        (void)state;
        fm_haproxy_message("\nPermission denied\n\n", 20, buf, sizeof buf);
        assert_string_equal(buf, "Permission deni"); /* truncated to fit */
        fm_haproxy_message("  No\x1b[31m way\t \n", 15, buf, sizeof buf);
        assert_string_equal(buf, "No?[31m way");
        fm_haproxy_message("\n\n", 2, buf, sizeof buf);
        assert_string_equal(buf, "");
        fm_haproxy_message(NULL, 0, buf, sizeof buf);
        assert_string_equal(buf, "");
        assert_string_equal(fm_haproxy_state_name(FM_HAPROXY_DRAIN), "drain");
        assert_null(fm_haproxy_state_name(_FM_HAPROXY_STATE_MAX));
}

/* ---- a fake runtime API on the event loop ---- */

enum fake_mode {
        FAKE_HAPROXY, /* behaves like the runtime API at level admin */
        FAKE_SILENT,  /* reads, never answers */
        FAKE_CLOSE,   /* reads, closes without a word */
        FAKE_HUGE,    /* answers more than FM_HAPROXY_RESPONSE_MAX bytes */
        FAKE_USER,    /* level user: every set is "Permission denied" */
        FAKE_STUCK,   /* accepts set weight but the weight does not change */
};

#define FAKE_SERVERS 4
#define FAKE_CMDS 64
#define FAKE_CONNS 8

struct fake_server {
        char name[16];
        uint32_t admin, uweight, iweight;
};

struct fake_conn {
        struct fake *f;
        int fd;
        sd_event_source *src;
        char in[512];
        size_t in_len;
        char *out;
        size_t out_len, out_off;
};

struct fake {
        enum fake_mode mode;
        int lfd;
        sd_event_source *accept_src;
        struct fake_server srv[FAKE_SERVERS];
        unsigned n_srv;
        char cmds[FAKE_CMDS][FM_HAPROXY_CMD_MAX];
        unsigned n_cmds;
        struct fake_conn conn[FAKE_CONNS];
};

struct fx {
        sd_event *e;
        char dir[64];
        char sock[96];
        struct fake fake;
        struct fm_actuator *a;
        struct fm_haproxy *h;
        int backend;
        struct fm_haproxy_config cfg;
};

static struct fake_server *fake_find(struct fake *f, const char *name)
{
        for (unsigned i = 0; i < f->n_srv; i++)
                if (strcmp(f->srv[i].name, name) == 0)
                        return f->srv + i;
        return NULL;
}

static void fake_conn_close(struct fake_conn *c)
{
        c->src = sd_event_source_disable_unref(c->src);
        if (c->fd >= 0)
                close(c->fd);
        c->fd = -1;
        free(c->out);
        c->out = NULL;
        c->in_len = c->out_len = c->out_off = 0;
}

static void fake_answer(struct fake *f, const char *cmd, char **ret, size_t *ret_len)
{
        char be[64], sv[64], what[16], arg[16];
        struct fake_server *s;
        char *out = NULL;
        size_t len = 0;
        FILE *m = open_memstream(&out, &len);

        assert_non_null(m);
        if (f->mode == FAKE_HUGE) {
                for (unsigned i = 0; i < FM_HAPROXY_RESPONSE_MAX / 32 + 8; i++)
                        fputs("0123456789012345678901234567890\n", m);
        } else if (sscanf(cmd, "show servers state %63s", be) == 1) {
                if (strcmp(be, "web") != 0) {
                        fputs("Can't find backend.\n\n", m);
                } else {
                        fputs(STATE_HEADER, m);
                        for (unsigned i = 0; i < f->n_srv; i++)
                                fprintf(m,
                                        "3 web %u %s 127.0.0.1 2 %u %u %u 1 1 0 2 0 0 0 0 - 1 - 0 "
                                        "0 - - 0\n",
                                        i + 1, f->srv[i].name, f->srv[i].admin, f->srv[i].uweight,
                                        f->srv[i].iweight);
                        fputs("\n", m);
                }
        } else if (sscanf(cmd, "get weight %63[^/]/%63s", be, sv) == 2) {
                if (strcmp(be, "web") != 0)
                        fputs("No such backend.\n\n", m);
                else if (!(s = fake_find(f, sv)))
                        fputs("No such server.\n\n", m);
                else
                        fprintf(m, "%u (initial %u)\n\n", s->uweight, s->iweight);
        } else if (sscanf(cmd, "set server %63[^/]/%63s %15s %15s", be, sv, what, arg) == 4) {
                if (f->mode == FAKE_USER)
                        fputs("Permission denied\n\n", m);
                else if (strcmp(be, "web") != 0)
                        fputs("No such backend.\n\n", m);
                else if (!(s = fake_find(f, sv)))
                        fputs("No such server.\n\n", m);
                else if (strcmp(what, "weight") == 0) {
                        if (f->mode != FAKE_STUCK)
                                assert_int_equal(sscanf(arg, "%u", &s->uweight), 1);
                        fputs("\n", m);
                } else if (strcmp(arg, "ready") == 0) {
                        s->admin &= ~(0x01u | 0x08u);
                        fputs("\n", m);
                } else if (strcmp(arg, "drain") == 0) {
                        s->admin = (s->admin & ~0x01u) | 0x08u;
                        fputs("\n", m);
                } else if (strcmp(arg, "maint") == 0) {
                        s->admin |= 0x01u;
                        fputs("\n", m);
                } else {
                        fputs("'set server <srv> state' expects 'ready', 'drain' and 'maint'.\n\n",
                              m);
                }
        } else {
                fputs("Unknown command, but maybe one of the following ones is a better match:\n",
                      m);
        }
        assert_int_equal(fclose(m), 0);
        *ret = out;
        *ret_len = len;
}

static int fake_on_conn(sd_event_source *src, int fd, uint32_t revents, void *userdata)
{
        struct fake_conn *c = userdata;
        struct fake *f = c->f;
        char *nl;

        (void)src;
        (void)fd;
        if (c->out) {
                while (c->out_off < c->out_len) {
                        ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
                                         MSG_NOSIGNAL);
                        if (n < 0 && errno == EAGAIN)
                                return 0;
                        if (n <= 0)
                                break;
                        c->out_off += (size_t)n;
                }
                fake_conn_close(c);
                return 0;
        }
        if (!(revents & EPOLLIN))
                return 0;
        ssize_t n = read(c->fd, c->in + c->in_len, sizeof c->in - 1 - c->in_len);
        if (n <= 0) {
                fake_conn_close(c);
                return 0;
        }
        c->in_len += (size_t)n;
        c->in[c->in_len] = '\0';
        nl = strchr(c->in, '\n');
        if (!nl)
                return 0;
        assert_true(f->n_cmds < FAKE_CMDS);
        assert_true((size_t)(nl - c->in) + 2 <= FM_HAPROXY_CMD_MAX);
        memcpy(f->cmds[f->n_cmds], c->in, (size_t)(nl - c->in) + 1);
        f->cmds[f->n_cmds][nl - c->in + 1] = '\0';
        f->n_cmds++;
        if (f->mode == FAKE_SILENT) {
                assert_int_equal(sd_event_source_set_enabled(c->src, SD_EVENT_OFF), 0);
                return 0;
        }
        if (f->mode == FAKE_CLOSE) {
                fake_conn_close(c);
                return 0;
        }
        *nl = '\0';
        fake_answer(f, c->in, &c->out, &c->out_len);
        assert_int_equal(sd_event_source_set_io_events(c->src, EPOLLOUT), 0);
        return 0;
}

static int fake_on_accept(sd_event_source *src, int fd, uint32_t revents, void *userdata)
{
        struct fake *f = userdata;
        int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

        (void)src;
        (void)revents;
        if (cfd < 0)
                return 0;
        for (unsigned i = 0; i < FAKE_CONNS; i++) {
                struct fake_conn *c = f->conn + i;
                if (c->fd >= 0)
                        continue;
                c->f = f;
                c->fd = cfd;
                assert_int_equal(sd_event_add_io(sd_event_source_get_event(src), &c->src, cfd,
                                                 EPOLLIN, fake_on_conn, c),
                                 0);
                return 0;
        }
        close(cfd);
        return 0;
}

static void fake_add(struct fake *f, const char *name, uint32_t admin, uint32_t weight)
{
        struct fake_server *s = f->srv + f->n_srv++;

        snprintf(s->name, sizeof s->name, "%s", name);
        s->admin = admin;
        s->uweight = s->iweight = weight;
}

static int setup(void **state)
{
        struct fx *fx = calloc(1, sizeof *fx);
        struct sockaddr_un un = {.sun_family = AF_UNIX};
        struct fm_actuator_config acfg;

        assert_non_null(fx);
        fx->fake.lfd = -1;
        for (unsigned i = 0; i < FAKE_CONNS; i++)
                fx->fake.conn[i].fd = -1;
        *state = fx;
        assert_int_equal(sd_event_new(&fx->e), 0);
        snprintf(fx->dir, sizeof fx->dir, "/tmp/fm-test-haproxy-unit-XXXXXX");
        assert_non_null(mkdtemp(fx->dir));
        snprintf(fx->sock, sizeof fx->sock, "%s/admin.sock", fx->dir);

        fx->fake.lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        assert_true(fx->fake.lfd >= 0);
        snprintf(un.sun_path, sizeof un.sun_path, "%s", fx->sock);
        assert_int_equal(bind(fx->fake.lfd, (struct sockaddr *)&un, sizeof un), 0);
        assert_int_equal(listen(fx->fake.lfd, 16), 0);
        assert_int_equal(sd_event_add_io(fx->e, &fx->fake.accept_src, fx->fake.lfd, EPOLLIN,
                                         fake_on_accept, &fx->fake),
                         0);
        fake_add(&fx->fake, "v1", 0, 1);
        fake_add(&fx->fake, "v2", 0, 1);
        fake_add(&fx->fake, "v3", 0x01, 1);

        fm_actuator_config_default(&acfg);
        acfg.max_attempts = 1;
        acfg.breaker_failures = 1000;
        assert_int_equal(fm_actuator_new(&acfg, 1, &fx->a), 0);
        fm_haproxy_config_default(&fx->cfg);
        snprintf(fx->cfg.socket, sizeof fx->cfg.socket, "%s", fx->sock);
        fx->cfg.timeout = 300;
        assert_int_equal(fm_haproxy_new(fx->e, &fx->cfg, fx->a, &fx->h), 0);
        fx->backend = fm_actuator_add_backend(fx->a, &fm_backend_haproxy_ops, fx->h);
        assert_true(fx->backend >= 0);
        return 0;
}

static int teardown(void **state)
{
        struct fx *fx = *state;

        fm_actuator_free(fx->a);
        fm_haproxy_free(fx->h);
        for (unsigned i = 0; i < FAKE_CONNS; i++)
                fake_conn_close(fx->fake.conn + i);
        sd_event_source_disable_unref(fx->fake.accept_src);
        if (fx->fake.lfd >= 0)
                close(fx->fake.lfd);
        sd_event_unref(fx->e);
        fm_rm_tree(fx->dir);
        free(fx);
        return 0;
}

static struct fm_action_outcome run(struct fx *fx, const struct fm_action_req *req)
{
        return fm_test_run(fx->e, fx->a, fx->backend, req);
}

static struct fm_test_state_result set_state(struct fx *fx, const char *target,
                                             enum fm_haproxy_state st)
{
        return fm_test_set_state(fx->e, fx->h, target, st);
}

static void test_set_weights(void **state)
{
        struct fx *fx = *state;
        struct fm_action_req req = fm_test_weights("web", "v1", 90, "v2", 10);
        struct fm_action_outcome o = run(fx, &req);

        assert_int_equal(o.status, FM_OUTCOME_OK);
        assert_string_equal(o.detail, "web/v1 weight 90 ready, web/v2 weight 10 ready");
        assert_int_equal(fx->fake.n_cmds, 4);
        assert_string_equal(fx->fake.cmds[0], "show servers state web\n");
        assert_string_equal(fx->fake.cmds[1], "set server web/v1 weight 90\n");
        assert_string_equal(fx->fake.cmds[2], "set server web/v2 weight 10\n");
        assert_string_equal(fx->fake.cmds[3], "show servers state web\n");

        /* Again: nothing differs, nothing is sent but the look. */
        fx->fake.n_cmds = 0;
        req = fm_test_weights("web", "v1", 90, "v2", 10);
        o = run(fx, &req);
        assert_int_equal(o.status, FM_OUTCOME_OK);
        assert_int_equal(fx->fake.n_cmds, 1);

        /* Observe: the state holds. */
        req.observe = true;
        snprintf(req.key, sizeof req.key, "observe-1");
        o = run(fx, &req);
        assert_int_equal(o.status, FM_OUTCOME_OK);
        assert_int_equal(fx->fake.n_cmds, 2);
}

static void test_drain_and_back(void **state)
{
        struct fx *fx = *state;
        struct fm_action_req req = fm_test_weights("web", "v1", 50, "v2", 50);
        struct fm_action_outcome o = run(fx, &req);

        assert_int_equal(o.status, FM_OUTCOME_OK);

        /* v1 to 0 and v2 to 100: v2 gains first, v1 is drained last, its weight kept. */
        fx->fake.n_cmds = 0;
        req = fm_test_weights("web", "v1", 0, "v2", 100);
        o = run(fx, &req);
        assert_int_equal(o.status, FM_OUTCOME_OK);
        assert_string_equal(o.detail, "web/v1 weight 50 drain, web/v2 weight 100 ready");
        assert_int_equal(fx->fake.n_cmds, 4);
        assert_string_equal(fx->fake.cmds[1], "set server web/v2 weight 100\n");
        assert_string_equal(fx->fake.cmds[2], "set server web/v1 state drain\n");

        /* Observe of the old state: it no longer holds. */
        req = fm_test_weights("web", "v1", 50, "v2", 50);
        req.observe = true;
        fx->fake.n_cmds = 0;
        o = run(fx, &req);
        assert_int_equal(o.status, FM_OUTCOME_FAILED);
        assert_int_equal(o.last_error, -ESRCH);
        assert_int_equal(fx->fake.n_cmds, 1);

        /* Back: v1's weight first, then ready, so it never serves at a stale weight. */
        fx->fake.n_cmds = 0;
        req = fm_test_weights("web", "v1", 30, "v2", 70);
        o = run(fx, &req);
        assert_int_equal(o.status, FM_OUTCOME_OK);
        assert_string_equal(o.detail, "web/v1 weight 30 ready, web/v2 weight 70 ready");
        assert_int_equal(fx->fake.n_cmds, 5);
        assert_string_equal(fx->fake.cmds[1], "set server web/v1 weight 30\n");
        assert_string_equal(fx->fake.cmds[2], "set server web/v1 state ready\n");
        assert_string_equal(fx->fake.cmds[3], "set server web/v2 weight 70\n");
}

static void test_maint_is_left_alone(void **state)
{
        struct fx *fx = *state;
        struct fm_action_req req = fm_test_weights("web", "v1", 50, "v3", 50);
        struct fm_action_outcome o = run(fx, &req);

        assert_int_equal(o.status, FM_OUTCOME_FAILED);
        assert_int_equal(o.last_error, -EBUSY);
        assert_string_equal(o.detail, "web/v3 is in maint; nothing changed");
        assert_int_equal(fx->fake.n_cmds, 1);
        assert_int_equal(fx->fake.srv[0].uweight, 1);

        /* A weight of 0 is satisfied by maint as it is. */
        fx->fake.n_cmds = 0;
        req = fm_test_weights("web", "v1", 100, "v3", 0);
        o = run(fx, &req);
        assert_int_equal(o.status, FM_OUTCOME_OK);
        assert_string_equal(o.detail, "web/v1 weight 100 ready, web/v3 weight 1 maint");
        assert_int_equal(fx->fake.n_cmds, 3);
        assert_int_equal(fx->fake.srv[2].admin, 0x01);
}

static void test_unknown_names(void **state)
{
        struct fx *fx = *state;
        struct fm_action_req req = fm_test_weights("web", "v1", 90, "v9", 10);
        struct fm_action_outcome o = run(fx, &req);

        /* Nothing changes when one of the servers is missing. */
        assert_int_equal(o.status, FM_OUTCOME_FAILED);
        assert_int_equal(o.last_error, -ENOENT);
        assert_string_equal(o.detail, "web/v9: No such server.");
        assert_int_equal(fx->fake.n_cmds, 2);
        assert_string_equal(fx->fake.cmds[1], "get weight web/v9\n");
        assert_int_equal(fx->fake.srv[0].uweight, 1);

        fx->fake.n_cmds = 0;
        req = fm_test_weights("api", "v1", 100, NULL, 0);
        o = run(fx, &req);
        assert_int_equal(o.status, FM_OUTCOME_FAILED);
        assert_int_equal(o.last_error, -ENOENT);
        assert_string_equal(o.detail, "api: Can't find backend.");
        assert_int_equal(fx->fake.n_cmds, 1);

        struct fm_test_state_result r = set_state(fx, "v9", FM_HAPROXY_DRAIN);
        assert_int_equal(r.kind, FM_RESULT_PERMANENT);
        assert_int_equal(r.error, -ENOENT);
        assert_string_equal(r.detail, "web/v9: No such server.");
}

static void test_hostile_names(void **state)
{
        struct fx *fx = *state;
        static const char *const hostile[] = {
                "v1;shutdown sessions server web/v2",
                "v1 weight 0",
                "v1\nset server web/v2 state maint",
                "web/v2",
                "v1%0a",
                "'v1'",
                "v1\"",
                "v1\x01",
                "v1\x1b",
                "",
        };
        struct fm_action_outcome o;
        struct fm_action_req req;

        for (size_t i = 0; i < ARRAY_SIZE(hostile); i++) {
                req = fm_test_weights("web", "v1", 50, "v2", 50);
                snprintf(req.arg.weights.w[1].target, sizeof req.arg.weights.w[1].target, "%s",
                         hostile[i]);
                o = run(fx, &req);
                assert_int_equal(o.status, FM_OUTCOME_FAILED);
                assert_int_equal(o.last_error, -EINVAL);
        }
        req = fm_test_weights("web;help", "v1", 100, NULL, 0);
        o = run(fx, &req);
        assert_int_equal(o.last_error, -EINVAL);
        req = fm_test_weights("web", "v1", 257, NULL, 0);
        o = run(fx, &req);
        assert_int_equal(o.last_error, -EINVAL);
        /* Two weights for one server contradict each other. */
        req = fm_test_weights("web", "v1", 50, "v1", 50);
        o = run(fx, &req);
        assert_int_equal(o.last_error, -EINVAL);

        assert_int_equal(fm_haproxy_set_state(fx->h, "web", "v1;x", FM_HAPROXY_MAINT,
                                              fm_test_on_state, NULL, NULL),
                         -EINVAL);
        assert_int_equal(fm_haproxy_set_state(fx->h, "web x", "v1", FM_HAPROXY_MAINT,
                                              fm_test_on_state, NULL, NULL),
                         -EINVAL);
        assert_int_equal(fm_haproxy_set_state(fx->h, "web", "v1", 3, fm_test_on_state, NULL, NULL),
                         -EINVAL);
        assert_int_equal(fm_haproxy_pending(fx->h), 0);
        assert_int_equal(sd_event_run(fx->e, 0) >= 0, true);
        assert_int_equal(fx->fake.n_cmds, 0);
}

static void test_unsupported(void **state)
{
        struct fx *fx = *state;
        struct fm_action_req req = fm_test_weights("web", "v1", 1, NULL, 0);

        (void)state;
        req.action = FM_ACTION_RESTART;
        snprintf(req.instance, sizeof req.instance, "v1");
        assert_int_equal(fm_actuator_submit(fx->a, fx->backend, &req, fm_test_wall_ms()),
                         -EOPNOTSUPP);
        assert_int_equal(fm_backend_haproxy_ops.start(fx->h, &req, 99), -EOPNOTSUPP);
        req.action = FM_ACTION_SCALE;
        assert_int_equal(fm_backend_haproxy_ops.start(fx->h, &req, 99), -EOPNOTSUPP);
        assert_int_equal(fm_haproxy_pending(fx->h), 0);
}

static void test_set_state(void **state)
{
        struct fx *fx = *state;
        struct fm_test_state_result r = set_state(fx, "v2", FM_HAPROXY_DRAIN);

        assert_int_equal(r.kind, FM_RESULT_OK);
        assert_string_equal(r.detail, "web/v2 weight 1 drain");
        assert_int_equal(fx->fake.srv[1].admin, 0x08);
        r = set_state(fx, "v2", FM_HAPROXY_MAINT);
        assert_int_equal(r.kind, FM_RESULT_OK);
        assert_string_equal(r.detail, "web/v2 weight 1 maint");
        r = set_state(fx, "v2", FM_HAPROXY_READY);
        assert_int_equal(r.kind, FM_RESULT_OK);
        assert_string_equal(r.detail, "web/v2 weight 1 ready");
        assert_int_equal(fx->fake.srv[1].admin, 0);
        assert_int_equal(fx->fake.n_cmds, 6);
        assert_string_equal(fx->fake.cmds[2], "set server web/v2 state maint\n");
}

/* Requests queue and run one after the other: their commands never interleave. */
static void test_serialized(void **state)
{
        struct fx *fx = *state;
        struct fm_test_state_result r[3] = {{0}};
        struct fm_action_outcome o;
        struct fm_action_req req = fm_test_weights("web", "v1", 60, "v2", 40);
        fm_ms deadline = fm_test_now_ms() + WAIT_MS;
        int64_t id;

        assert_int_equal(fm_haproxy_set_state(fx->h, "web", "v1", FM_HAPROXY_DRAIN,
                                              fm_test_on_state, r, NULL),
                         0);
        id = fm_actuator_submit(fx->a, fx->backend, &req, fm_test_wall_ms());
        assert_true(id > 0);
        assert_int_equal(fm_haproxy_set_state(fx->h, "web", "v2", FM_HAPROXY_DRAIN,
                                              fm_test_on_state, r + 1, NULL),
                         0);
        assert_int_equal(fm_haproxy_pending(fx->h), 3);
        while (!r[1].done) {
                assert_true(fm_test_now_ms() < deadline);
                assert_true(sd_event_run(fx->e, 100 * 1000) >= 0);
        }
        assert_true(r[0].done);
        assert_int_equal(fm_actuator_poll(fx->a, &o), 1);
        assert_int_equal(o.status, FM_OUTCOME_OK);
        assert_int_equal(fx->fake.n_cmds, 2 + 5 + 2);
        assert_string_equal(fx->fake.cmds[0], "set server web/v1 state drain\n");
        assert_string_equal(fx->fake.cmds[1], "show servers state web\n");
        assert_string_equal(fx->fake.cmds[2], "show servers state web\n");
        assert_string_equal(fx->fake.cmds[3], "set server web/v1 weight 60\n");
        assert_string_equal(fx->fake.cmds[4], "set server web/v1 state ready\n");
        assert_string_equal(fx->fake.cmds[5], "set server web/v2 weight 40\n");
        assert_string_equal(fx->fake.cmds[6], "show servers state web\n");
        assert_string_equal(fx->fake.cmds[7], "set server web/v2 state drain\n");
}

static void test_cancel(void **state)
{
        struct fx *fx = *state;
        struct fm_test_state_result r[2] = {{0}};
        uint64_t id0, id1;
        fm_ms deadline = fm_test_now_ms() + WAIT_MS;

        assert_int_equal(fm_haproxy_set_state(fx->h, "web", "v1", FM_HAPROXY_DRAIN,
                                              fm_test_on_state, r, &id0),
                         0);
        assert_int_equal(fm_haproxy_set_state(fx->h, "web", "v2", FM_HAPROXY_DRAIN,
                                              fm_test_on_state, r + 1, &id1),
                         0);
        assert_true(id1 > id0);
        fm_haproxy_cancel_state(fx->h, id0);
        fm_haproxy_cancel_state(fx->h, 12345);
        assert_int_equal(fm_haproxy_pending(fx->h), 1);
        while (!r[1].done) {
                assert_true(fm_test_now_ms() < deadline);
                assert_true(sd_event_run(fx->e, 100 * 1000) >= 0);
        }
        assert_false(r[0].done);
        assert_int_equal(fx->fake.srv[0].admin, 0);
        assert_int_equal(fx->fake.srv[1].admin, 0x08);

        /* Cancelled while its command is on the wire: the answer is dropped, nothing is called. */
        fx->fake.mode = FAKE_SILENT;
        r[0].done = false;
        assert_int_equal(fm_haproxy_set_state(fx->h, "web", "v1", FM_HAPROXY_DRAIN,
                                              fm_test_on_state, r, &id0),
                         0);
        while (fx->fake.n_cmds < 3) {
                assert_true(fm_test_now_ms() < deadline);
                assert_true(sd_event_run(fx->e, 100 * 1000) >= 0);
        }
        fm_haproxy_cancel_state(fx->h, id0);
        assert_int_equal(fm_haproxy_pending(fx->h), 0);
        assert_true(sd_event_run(fx->e, 400 * 1000) >= 0); /* past the 300 ms timeout */
        assert_false(r[0].done);
}

static void test_transport_failures(void **state)
{
        struct fx *fx = *state;
        struct fm_test_state_result r;
        struct fm_action_outcome o;
        struct fm_action_req req;

        fx->fake.mode = FAKE_SILENT;
        r = set_state(fx, "v1", FM_HAPROXY_DRAIN);
        assert_int_equal(r.kind, FM_RESULT_RETRYABLE);
        assert_int_equal(r.error, -ETIMEDOUT);

        fx->fake.mode = FAKE_CLOSE;
        r = set_state(fx, "v1", FM_HAPROXY_DRAIN);
        assert_int_equal(r.kind, FM_RESULT_RETRYABLE);
        assert_int_equal(r.error, -ECONNRESET);

        fx->fake.mode = FAKE_HUGE;
        req = fm_test_weights("web", "v1", 1, NULL, 0);
        o = run(fx, &req);
        assert_int_equal(o.status, FM_OUTCOME_FAILED);
        assert_int_equal(o.last_error, -EFBIG);

        fx->fake.mode = FAKE_USER;
        r = set_state(fx, "v1", FM_HAPROXY_DRAIN);
        assert_int_equal(r.kind, FM_RESULT_PERMANENT);
        assert_int_equal(r.error, -EACCES);
        assert_string_equal(r.detail, "web/v1: Permission denied");

        /* Someone else keeps the weight where it was: the read-back says so, retry later. */
        fx->fake.mode = FAKE_STUCK;
        req = fm_test_weights("web", "v1", 7, NULL, 0);
        o = run(fx, &req);
        assert_int_equal(o.status, FM_OUTCOME_FAILED);
        assert_int_equal(o.last_error, -EAGAIN);
        assert_string_equal(o.detail, "read back differs: web/v1 weight 1 ready");

        /* The socket is gone (HAProxy restarting): retryable. */
        fx->fake.mode = FAKE_HAPROXY;
        assert_int_equal(unlink(fx->sock), 0);
        r = set_state(fx, "v1", FM_HAPROXY_DRAIN);
        assert_int_equal(r.kind, FM_RESULT_RETRYABLE);
        assert_int_equal(r.error, -ENOENT);
        assert_non_null(strstr(r.detail, fx->sock));

        /* A socket file nobody listens on: refused, retryable. */
        int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_un un = {.sun_family = AF_UNIX};
        snprintf(un.sun_path, sizeof un.sun_path, "%s", fx->sock);
        assert_int_equal(bind(s, (struct sockaddr *)&un, sizeof un), 0);
        close(s);
        r = set_state(fx, "v1", FM_HAPROXY_DRAIN);
        assert_int_equal(r.kind, FM_RESULT_RETRYABLE);
        assert_int_equal(r.error, -ECONNREFUSED);
}

static void test_new_and_free(void **state)
{
        struct fx *fx = *state;
        struct fm_haproxy *h = NULL;
        struct fm_haproxy_config cfg = fx->cfg;

        assert_int_equal(fm_haproxy_new(NULL, &cfg, fx->a, &h), -EINVAL);
        assert_int_equal(fm_haproxy_new(fx->e, NULL, fx->a, &h), -EINVAL);
        assert_int_equal(fm_haproxy_new(fx->e, &cfg, NULL, &h), -EINVAL);
        cfg.timeout = 0;
        assert_int_equal(fm_haproxy_new(fx->e, &cfg, fx->a, &h), -EINVAL);
        assert_null(h);
        assert_null(fm_haproxy_free(NULL));

        /* Freed with work queued and on the wire: nothing is called back. */
        struct fm_test_state_result r = {0};
        cfg = fx->cfg;
        assert_int_equal(fm_haproxy_new(fx->e, &cfg, fx->a, &h), 0);
        assert_int_equal(
                fm_haproxy_set_state(h, "web", "v1", FM_HAPROXY_DRAIN, fm_test_on_state, &r, NULL),
                0);
        assert_int_equal(
                fm_haproxy_set_state(h, "web", "v2", FM_HAPROXY_DRAIN, fm_test_on_state, &r, NULL),
                0);
        assert_true(sd_event_run(fx->e, 0) >= 0); /* the first connects */
        assert_null(fm_haproxy_free(h));
        assert_true(sd_event_run(fx->e, 50 * 1000) >= 0);
        assert_false(r.done);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_names),
                cmocka_unit_test(test_commands),
                cmocka_unit_test(test_config),
                cmocka_unit_test(test_map),
                cmocka_unit_test(test_parse_weight),
                cmocka_unit_test(test_parse_servers_state),
                cmocka_unit_test(test_classify),
                cmocka_unit_test(test_message),
                cmocka_unit_test_setup_teardown(test_set_weights, setup, teardown),
                cmocka_unit_test_setup_teardown(test_drain_and_back, setup, teardown),
                cmocka_unit_test_setup_teardown(test_maint_is_left_alone, setup, teardown),
                cmocka_unit_test_setup_teardown(test_unknown_names, setup, teardown),
                cmocka_unit_test_setup_teardown(test_hostile_names, setup, teardown),
                cmocka_unit_test_setup_teardown(test_unsupported, setup, teardown),
                cmocka_unit_test_setup_teardown(test_set_state, setup, teardown),
                cmocka_unit_test_setup_teardown(test_serialized, setup, teardown),
                cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
                cmocka_unit_test_setup_teardown(test_transport_failures, setup, teardown),
                cmocka_unit_test_setup_teardown(test_new_and_free, setup, teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
