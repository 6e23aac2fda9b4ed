/* SPDX-License-Identifier: MIT */

/*
 * The pure parts of the systemd backend, no bus: unit name rules, pattern
 * expansion and matching, classification of job results and D-Bus errors,
 * configuration validation.
 */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "systemd.h"

static void test_unit_name_valid(void **state)
{
        (void)state;
        static const char *const good[] = {
                "a.service",     "web-v1@3.service", "web-v1@.service", "a:b_c-d.e.socket",
                "x@a@b.service", "0x.service",       "foo.target",      "m.mount",
                "s.slice",       "t.timer",          "p.path",          "sc.scope",
                "sw.swap",       "d.device",         "am.automount",    "A-Z.service",
        };
        static const char *const bad[] = {
                "",
                "../x",
                "a/b",
                "a b.service",
                "a\n",
                "a\n.service",
                "%",
                "%.service",
                "@",
                "@.service",
                "@a.service",
                "a",
                "a.",
                ".service",
                "a.unknown",
                "a.Service",
                "a;b.service",
                "a\\x2d.service",
                "a\"b.service",
                "a\tb.service",
                "é.service",
                "a.service ",
                "a*.service",
                "a?.service",
                "a[1].service",
        };
        char name[300];

        for (size_t i = 0; i < ARRAY_SIZE(good); i++)
                if (!fm_systemd_unit_name_valid(good[i]))
                        fail_msg("\"%s\" should be valid", good[i]);
        for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
                if (fm_systemd_unit_name_valid(bad[i]))
                        fail_msg("\"%s\" should be invalid", bad[i]);
        assert_false(fm_systemd_unit_name_valid(NULL));

        /* 255 bytes is the longest name; 256 is one too many. */
        memset(name, 'a', sizeof name);
        memcpy(name + 255 - strlen(".service"), ".service", sizeof ".service");
        assert_int_equal(strlen(name), 255);
        assert_true(fm_systemd_unit_name_valid(name));
        memset(name, 'a', sizeof name);
        memcpy(name + 256 - strlen(".service"), ".service", sizeof ".service");
        assert_int_equal(strlen(name), 256);
        assert_false(fm_systemd_unit_name_valid(name));
}

static void test_expand(void **state)
{
        (void)state;
        char buf[FM_SYSTEMD_UNIT_NAME_MAX + 1];

        assert_int_equal(fm_systemd_expand("{deployment}-{version}@{index}.service", "web", "v1",
                                           NULL, 3, buf, sizeof buf),
                         (int)strlen("web-v1@3.service"));
        assert_string_equal(buf, "web-v1@3.service");
        assert_true(fm_systemd_expand("{instance}.service", "web", NULL, "web-3", 0, buf,
                                      sizeof buf) > 0);
        assert_string_equal(buf, "web-3.service");
        assert_true(fm_systemd_expand("{deployment}@{instance}.service", "web", NULL, "gpu0", 0,
                                      buf, sizeof buf) > 0);
        assert_string_equal(buf, "web@gpu0.service");
        assert_true(fm_systemd_expand("model-{deployment}.service", "fraud-scorer", NULL, NULL, 0,
                                      buf, sizeof buf) > 0);
        assert_string_equal(buf, "model-fraud-scorer.service");
        assert_true(fm_systemd_expand("{deployment}@{index}.service", "web", NULL, NULL, 256, buf,
                                      sizeof buf) > 0);
        assert_string_equal(buf, "web@256.service");
}

static void test_expand_hostile(void **state)
{
        (void)state;
        static const char *const bad[] = {"../x", "a/b",  "a b", "a\n", "%",      "@", "",
                                          "..",   ".",    "-x",  ";",   "a;b",    "'", "a\"b",
                                          "\x01", "a\tb", "*",   "a?b", "x/../y", "é"};
        static const char *const patterns[] = {"{instance}.service", "{deployment}@{index}.service",
                                               "{deployment}-{version}@{index}.service"};
        char buf[FM_SYSTEMD_UNIT_NAME_MAX + 1] = "untouched";
        char longv[300];

        for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
                assert_int_equal(
                        fm_systemd_expand(patterns[0], "web", "v1", bad[i], 1, buf, sizeof buf),
                        -EINVAL);
                assert_int_equal(
                        fm_systemd_expand(patterns[1], bad[i], "v1", "i", 1, buf, sizeof buf),
                        -EINVAL);
                assert_int_equal(
                        fm_systemd_expand(patterns[2], "web", bad[i], "i", 1, buf, sizeof buf),
                        -EINVAL);
        }
        assert_string_equal(buf, "untouched");

        /* Missing values, index 0, a placeholder the code does not know, stray braces. */
        assert_int_equal(fm_systemd_expand(patterns[0], "web", "v1", NULL, 1, buf, sizeof buf),
                         -EINVAL);
        assert_int_equal(fm_systemd_expand(patterns[1], "web", NULL, NULL, 0, buf, sizeof buf),
                         -EINVAL);
        assert_int_equal(fm_systemd_expand("{host}.service", "web", "v", "i", 1, buf, sizeof buf),
                         -EINVAL);
        assert_int_equal(
                fm_systemd_expand("{deployment.service", "web", "v", "i", 1, buf, sizeof buf),
                -EINVAL);
        assert_int_equal(fm_systemd_expand("web}.service", "web", "v", "i", 1, buf, sizeof buf),
                         -EINVAL);
        assert_int_equal(fm_systemd_expand(NULL, "web", "v", "i", 1, buf, sizeof buf), -EINVAL);
        /* The result itself must be a valid, non-template unit name. */
        assert_int_equal(
                fm_systemd_expand("{deployment}@.service", "web", NULL, NULL, 0, buf, sizeof buf),
                -EINVAL);
        assert_int_equal(fm_systemd_expand("{deployment}", "web", NULL, NULL, 0, buf, sizeof buf),
                         -EINVAL);
        assert_int_equal(
                fm_systemd_expand("a/{deployment}.service", "web", NULL, NULL, 0, buf, sizeof buf),
                -EINVAL);
        assert_int_equal(
                fm_systemd_expand("{instance}.service", "web", NULL, "a@b", 0, buf, sizeof buf),
                -EINVAL);
        /* Longer than 255 bytes. */
        memset(longv, 'v', sizeof longv);
        longv[250] = '\0';
        assert_int_equal(
                fm_systemd_expand("{instance}.service", "web", NULL, longv, 0, buf, sizeof buf),
                -EINVAL);
        longv[240] = '\0';
        assert_true(fm_systemd_expand("{instance}.service", "web", NULL, longv, 0, buf,
                                      sizeof buf) > 0);
        /* A buffer too small is not the input's fault. */
        assert_int_equal(fm_systemd_expand("{instance}.service", "web", NULL, "web-3", 0, buf, 8),
                         -ENOBUFS);
        assert_string_equal(buf + 240, ".service");
}

static void test_match(void **state)
{
        (void)state;
        const char *p = "{deployment}-{version}@{index}.service";
        char v[FM_VERSION_MAX + 1];
        unsigned idx = 0;

        assert_int_equal(fm_systemd_match(p, "web", "web-v1@3.service", v, &idx), 1);
        assert_string_equal(v, "v1");
        assert_int_equal(idx, 3);
        /* A version holding the separator: the rest of the pattern decides. */
        assert_int_equal(fm_systemd_match(p, "web", "web-v1-rc.2@12.service", v, &idx), 1);
        assert_string_equal(v, "v1-rc.2");
        assert_int_equal(idx, 12);
        /* Other deployments, templates, leading zeros, index 0, too high, other suffixes. */
        assert_int_equal(fm_systemd_match(p, "web", "webx-v1@3.service", v, &idx), 0);
        assert_int_equal(fm_systemd_match(p, "web", "api-v1@3.service", v, &idx), 0);
        assert_int_equal(fm_systemd_match(p, "web", "web-v1@.service", v, &idx), 0);
        assert_int_equal(fm_systemd_match(p, "web", "web-v1@03.service", v, &idx), 0);
        assert_int_equal(fm_systemd_match(p, "web", "web-v1@0.service", v, &idx), 0);
        assert_int_equal(fm_systemd_match(p, "web", "web-v1@257.service", v, &idx), 0);
        assert_int_equal(fm_systemd_match(p, "web", "web-v1@3.socket", v, &idx), 0);
        assert_int_equal(fm_systemd_match(p, "web", "web-@3.service", v, &idx), 0);
        /* No version in the pattern. */
        assert_int_equal(
                fm_systemd_match("{deployment}@{index}.service", "web", "web@7.service", v, &idx),
                1);
        assert_string_equal(v, "");
        assert_int_equal(idx, 7);
        /* A pattern without {index} cannot list instances. */
        assert_int_equal(fm_systemd_match("{deployment}.service", "web", "web.service", v, &idx),
                         -EINVAL);
}

static void test_job_result_kind(void **state)
{
        (void)state;
        static const struct {
                const char *result;
                enum fm_result_kind kind;
                int error;
        } cases[] = {
                {"done", FM_RESULT_OK, 0},
                {"timeout", FM_RESULT_RETRYABLE, -ETIMEDOUT},
                {"canceled", FM_RESULT_RETRYABLE, -ECANCELED},
                {"failed", FM_RESULT_PERMANENT, -EIO},
                {"dependency", FM_RESULT_PERMANENT, -ENOLINK},
                {"skipped", FM_RESULT_PERMANENT, -EALREADY},
                {"invalid", FM_RESULT_PERMANENT, -EIO},
                {"assert", FM_RESULT_PERMANENT, -EIO},
                {"unsupported", FM_RESULT_PERMANENT, -EIO},
                {"collected", FM_RESULT_PERMANENT, -EIO},
                {"once", FM_RESULT_PERMANENT, -EIO},
                {"whatever-comes-next", FM_RESULT_PERMANENT, -EIO},
                {"Done", FM_RESULT_PERMANENT, -EIO},
                {"", FM_RESULT_PERMANENT, -EIO},
        };
        int error = 1;

        for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
                assert_int_equal(fm_systemd_job_result_kind(cases[i].result, &error),
                                 cases[i].kind);
                assert_int_equal(error, cases[i].error);
        }
        assert_int_equal(fm_systemd_job_result_kind(NULL, NULL), FM_RESULT_PERMANENT);
}

static void test_bus_error_kind(void **state)
{
        (void)state;
        static const struct {
                const char *name;
                enum fm_result_kind kind;
                int error;
        } cases[] = {
                {"org.freedesktop.systemd1.NoSuchUnit", FM_RESULT_PERMANENT, -ENOENT},
                {"org.freedesktop.systemd1.UnitMasked", FM_RESULT_PERMANENT, -ENOEXEC},
                {"org.freedesktop.systemd1.LoadFailed", FM_RESULT_PERMANENT, -ENOEXEC},
                {"org.freedesktop.DBus.Error.AccessDenied", FM_RESULT_PERMANENT, -EACCES},
                {"org.freedesktop.DBus.Error.InteractiveAuthorizationRequired", FM_RESULT_PERMANENT,
                 -EACCES},
                {"org.freedesktop.DBus.Error.InvalidArgs", FM_RESULT_PERMANENT, -EINVAL},
                {"org.freedesktop.DBus.Error.NoReply", FM_RESULT_RETRYABLE, -ETIMEDOUT},
                {"org.freedesktop.DBus.Error.Timeout", FM_RESULT_RETRYABLE, -ETIMEDOUT},
                {"org.freedesktop.DBus.Error.Disconnected", FM_RESULT_RETRYABLE, -ECONNRESET},
                {"org.freedesktop.DBus.Error.ServiceUnknown", FM_RESULT_RETRYABLE, -ECONNREFUSED},
                {"org.freedesktop.systemd1.TransactionIsDestructive", FM_RESULT_RETRYABLE, -EBUSY},
                {"org.example.Unknown", FM_RESULT_PERMANENT, -EIO},
        };
        int error = 1;

        for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
                assert_int_equal(fm_systemd_bus_error_kind(cases[i].name, &error), cases[i].kind);
                assert_int_equal(error, cases[i].error);
        }
}

static void test_config(void **state)
{
        (void)state;
        struct fm_systemd_config c;

        fm_systemd_config_default(&c);
        assert_int_equal(fm_systemd_config_validate(&c), 0);
        assert_int_equal(c.bus, FM_SYSTEMD_BUS_SYSTEM);
        assert_int_equal(c.job_timeout, 90 * FM_MS_PER_S);
        assert_string_equal(c.job_mode, "replace");
        assert_string_equal(c.deployments[0].deployment, "*");
        assert_string_equal(fm_systemd_bus_name(FM_SYSTEMD_BUS_USER), "user");
        assert_string_equal(fm_systemd_rollback_order_name(FM_SYSTEMD_STOP_FIRST), "stop_first");
        assert_null(fm_systemd_bus_name(_FM_SYSTEMD_BUS_MAX));

        c.job_timeout = 0;
        assert_int_equal(fm_systemd_config_validate(&c), -EINVAL);
        fm_systemd_config_default(&c);
        snprintf(c.job_mode, sizeof c.job_mode, "%s", "isolate");
        assert_int_equal(fm_systemd_config_validate(&c), -EINVAL);
        fm_systemd_config_default(&c);
        snprintf(c.address, sizeof c.address, "%s", "unix:path=/x y");
        assert_int_equal(fm_systemd_config_validate(&c), -EINVAL);

        /* Patterns: {index} once in unit; no {instance} in unit; no {version} in instance_unit. */
        static const char *const bad_unit[] = {
                "{deployment}.service",       "{deployment}@{index}{index}.service",
                "{instance}@{index}.service", "{deployment}/{index}.service",
                "{deployment}@{index}",       "{nope}@{index}.service"};
        for (size_t i = 0; i < ARRAY_SIZE(bad_unit); i++) {
                fm_systemd_config_default(&c);
                snprintf(c.deployments[0].unit, sizeof c.deployments[0].unit, "%s", bad_unit[i]);
                if (fm_systemd_config_validate(&c) != -EINVAL)
                        fail_msg("unit pattern \"%s\" accepted", bad_unit[i]);
        }
        fm_systemd_config_default(&c);
        snprintf(c.deployments[0].instance_unit, sizeof c.deployments[0].instance_unit, "%s",
                 "{version}-{instance}.service");
        assert_int_equal(fm_systemd_config_validate(&c), -EINVAL);

        /* Named entries: valid names, no duplicates, one "*", at most 64 named. */
        fm_systemd_config_default(&c);
        c.n_deployments = 2;
        c.deployments[1] = c.deployments[0];
        assert_int_equal(fm_systemd_config_validate(&c), -EINVAL); /* two "*" */
        snprintf(c.deployments[1].deployment, sizeof c.deployments[1].deployment, "%s", "Web");
        assert_int_equal(fm_systemd_config_validate(&c), -EINVAL);
        snprintf(c.deployments[1].deployment, sizeof c.deployments[1].deployment, "%s", "web");
        assert_int_equal(fm_systemd_config_validate(&c), 0);
        c.n_deployments = FM_SYSTEMD_DEPLOYMENTS_MAX;
        for (uint32_t i = 1; i < c.n_deployments; i++) {
                c.deployments[i] = c.deployments[0];
                snprintf(c.deployments[i].deployment, sizeof c.deployments[i].deployment, "d%u", i);
        }
        assert_int_equal(fm_systemd_config_validate(&c), 0);
        snprintf(c.deployments[0].deployment, sizeof c.deployments[0].deployment, "%s", "d0");
        assert_int_equal(fm_systemd_config_validate(&c), -EINVAL); /* 65 named */
        c.n_deployments = FM_SYSTEMD_DEPLOYMENTS_MAX + 1;
        assert_int_equal(fm_systemd_config_validate(&c), -EINVAL);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_unit_name_valid), cmocka_unit_test(test_expand),
                cmocka_unit_test(test_expand_hostile),  cmocka_unit_test(test_match),
                cmocka_unit_test(test_job_result_kind), cmocka_unit_test(test_bus_error_kind),
                cmocka_unit_test(test_config),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
