/* SPDX-License-Identifier: MIT */
#include "systemd.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <systemd/sd-bus.h>

#include "http_backend.h"

/*
 * How an action runs
 * ==================
 *
 * Every started attempt is an `op`. An op walks through at most three kinds
 * of D-Bus traffic, each asynchronous, each a callback on the event loop:
 *
 *   list   ListUnitsByPatterns on the deployment's glob (scale, rollback):
 *          tells which version runs and which instances are up, and turns
 *          into a plan of jobs in one or two phases.
 *   jobs   StartUnit / StopUnit / RestartUnit, all of a phase at once. Each
 *          reply names a job object; the job is over when JobRemoved names
 *          that path. A phase is over when every job of it is; the next
 *          phase begins only if none failed.
 *   props  GetUnit then Properties.Get of ActiveState, SubState and (for
 *          services) NRestarts: the state after a restart, or what an
 *          observation reports.
 *
 * The JobRemoved race: systemd may run a job to its end and send JobRemoved
 * before our connection has read the method reply that names the job. The
 * match is installed before any job is asked for (one connection keeps its
 * messages in order, so the bus daemon knows the match before it routes our
 * first call), and a JobRemoved that names no known job while some call is
 * still unanswered is kept in a small ring (FM_SYSTEMD_EARLY_MAX, oldest
 * dropped first). A reply first looks in that ring. Job paths are unique for
 * the life of a manager, so a kept signal never matches the wrong job.
 *
 * A lost connection fails every op as retryable; the bus is dropped from a
 * defer source (not from inside its own callback) and the next start()
 * connects again. Results always leave from a bus or timer callback, never
 * from inside start() or cancel().
 */

#define DEST "org.freedesktop.systemd1"
#define MANAGER_PATH "/org/freedesktop/systemd1"
#define MANAGER_IFACE "org.freedesktop.systemd1.Manager"
#define UNIT_IFACE "org.freedesktop.systemd1.Unit"
#define SERVICE_IFACE "org.freedesktop.systemd1.Service"
#define PROPS_IFACE "org.freedesktop.DBus.Properties"

#define JOB_PATH_MAX 128   /* early ring entry; real job paths are ~40 bytes */
#define JOB_RESULT_MAX 24  /* "dependency" and friends */
#define STATE_MAX 32       /* ActiveState / SubState values kept */
#define FAIL_MAX 160       /* first failure text */
#define RUN_VERSIONS_MAX 8 /* distinct running versions one list may show */
#define JOB_TIMEOUT_MAX ((fm_ms)3600 * FM_MS_PER_S)
#define USEC_PER_MS UINT64_C(1000)

/* ---- pure helpers: names and patterns ---- */

static bool unit_char(char c)
{
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == ':' || c == '_' || c == '.' || c == '-';
}

static bool version_char(char c)
{
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '.' || c == '_' || c == '-';
}

static bool suffix_known(const char *s)
{
        static const char *const types[] = {"service", "socket",    "target", "device",
                                            "mount",   "automount", "swap",   "timer",
                                            "path",    "slice",     "scope"};
        for (size_t i = 0; i < ARRAY_SIZE(types); i++)
                if (strcmp(s, types[i]) == 0)
                        return true;
        return false;
}

int fm_systemd_unit_name_valid(const char *name)
{
        const char *dot;
        size_t n;

        if (!name)
                return 0;
        n = strnlen(name, FM_SYSTEMD_UNIT_NAME_MAX + 1);
        if (n == 0 || n > FM_SYSTEMD_UNIT_NAME_MAX || name[0] == '@')
                return 0;
        dot = strrchr(name, '.');
        if (!dot || dot == name || !suffix_known(dot + 1))
                return 0;
        /* The first '@' ends the prefix; any later one belongs to the instance. */
        for (const char *p = name; p < dot; p++)
                if (*p != '@' && !unit_char(*p))
                        return 0;
        return 1;
}

static bool is_template(const char *name)
{
        const char *at = strchr(name, '@'), *dot = strrchr(name, '.');
        return at && dot && at + 1 == dot;
}

enum ph {
        PH_DEPLOYMENT,
        PH_VERSION,
        PH_INSTANCE,
        PH_INDEX,
        _PH_MAX,
};

/* The placeholder starting at p ('{'); *ret_end points past its '}'. -EINVAL if none. */
static int placeholder(const char *p, const char **ret_end)
{
        static const char *const names[_PH_MAX] = {"deployment", "version", "instance", "index"};
        const char *end = strchr(p, '}');

        if (!end)
                return -EINVAL;
        for (int i = 0; i < _PH_MAX; i++) {
                size_t len = strlen(names[i]);
                if ((size_t)(end - p - 1) == len && memcmp(p + 1, names[i], len) == 0) {
                        *ret_end = end + 1;
                        return i;
                }
        }
        return -EINVAL;
}

/* Counts the placeholders of pattern; -EINVAL on an unknown one or a stray brace. */
static int pattern_scan(const char *pattern, unsigned counts[_PH_MAX])
{
        memset(counts, 0, sizeof(unsigned) * _PH_MAX);
        for (const char *p = pattern; *p;) {
                const char *end;
                int ph;

                if (*p == '}')
                        return -EINVAL;
                if (*p != '{') {
                        p++;
                        continue;
                }
                ph = placeholder(p, &end);
                if (ph < 0)
                        return ph;
                counts[ph]++;
                p = end;
        }
        return 0;
}

static bool value_valid(const char *v)
{
        size_t n;

        if (!v)
                return false;
        n = strnlen(v, FM_SYSTEMD_UNIT_NAME_MAX + 1);
        if (n == 0 || n > FM_SYSTEMD_UNIT_NAME_MAX || v[0] == '.' || v[0] == '-' || strstr(v, ".."))
                return false;
        for (size_t i = 0; i < n; i++)
                if (!unit_char(v[i]))
                        return false;
        return true;
}

/*
 * Substitutes the placeholders of pattern into out (FM_SYSTEMD_UNIT_NAME_MAX
 * + 1 bytes); glob: {version} and {index} become '*' instead. Returns the
 * length or -EINVAL.
 */
static int substitute(const char *pattern, const char *deployment, const char *version,
                      const char *instance, unsigned index, bool glob, char *out)
{
        size_t n = 0;

        if (!pattern)
                return -EINVAL;
        for (const char *p = pattern; *p;) {
                const char *val = NULL, *end;
                char num[16];
                size_t len;
                int ph;

                if (*p == '}')
                        return -EINVAL;
                if (*p != '{') {
                        if (n >= FM_SYSTEMD_UNIT_NAME_MAX)
                                return -EINVAL;
                        out[n++] = *p++;
                        continue;
                }
                ph = placeholder(p, &end);
                switch (ph) {
                case PH_DEPLOYMENT:
                        val = deployment;
                        break;
                case PH_VERSION:
                        val = glob ? "*" : version;
                        break;
                case PH_INSTANCE:
                        val = instance;
                        break;
                case PH_INDEX:
                        if (glob) {
                                val = "*";
                                break;
                        }
                        if (index == 0)
                                return -EINVAL;
                        snprintf(num, sizeof num, "%u", index);
                        val = num;
                        break;
                default:
                        return -EINVAL;
                }
                if (!(glob && val[0] == '*' && val[1] == '\0') && !value_valid(val))
                        return -EINVAL;
                len = strlen(val);
                if (len > FM_SYSTEMD_UNIT_NAME_MAX - n)
                        return -EINVAL;
                memcpy(out + n, val, len);
                n += len;
                p = end;
        }
        out[n] = '\0';
        return (int)n;
}

int fm_systemd_expand(const char *pattern, const char *deployment, const char *version,
                      const char *instance, unsigned index, char *buf, size_t size)
{
        char out[FM_SYSTEMD_UNIT_NAME_MAX + 1];
        int n;

        if (!buf)
                return -EINVAL;
        n = substitute(pattern, deployment, version, instance, index, false, out);
        if (n < 0)
                return n;
        if (!fm_systemd_unit_name_valid(out) || is_template(out))
                return -EINVAL;
        if ((size_t)n + 1 > size)
                return -ENOBUFS;
        memcpy(buf, out, (size_t)n + 1);
        return n;
}

static bool match_at(const char *p, const char *dep, const char *s, char *ver, unsigned *idx)
{
        for (;;) {
                const char *end;
                size_t k;

                if (*p == '\0')
                        return *s == '\0';
                if (*p != '{') {
                        if (*p != *s)
                                return false;
                        p++;
                        s++;
                        continue;
                }
                switch (placeholder(p, &end)) {
                case PH_DEPLOYMENT:
                        k = strlen(dep);
                        if (strncmp(s, dep, k) != 0)
                                return false;
                        p = end;
                        s += k;
                        continue;
                case PH_VERSION:
                        /* Shortest first; the rest of the pattern decides. */
                        for (k = 1; k <= FM_VERSION_MAX && version_char(s[k - 1]); k++)
                                if (match_at(end, dep, s + k, ver, idx)) {
                                        memcpy(ver, s, k);
                                        ver[k] = '\0';
                                        return true;
                                }
                        return false;
                case PH_INDEX: {
                        unsigned v = 0;

                        if (s[0] < '1' || s[0] > '9')
                                return false;
                        for (k = 0; s[k] >= '0' && s[k] <= '9'; k++) {
                                v = v * 10 + (unsigned)(s[k] - '0');
                                if (v > FM_SYSTEMD_INSTANCES_MAX)
                                        return false;
                                if (match_at(end, dep, s + k + 1, ver, idx)) {
                                        *idx = v;
                                        return true;
                                }
                        }
                        return false;
                }
                default:
                        return false;
                }
        }
}

int fm_systemd_match(const char *pattern, const char *deployment, const char *name,
                     char *ret_version, unsigned *ret_index)
{
        unsigned counts[_PH_MAX];
        char ver[FM_VERSION_MAX + 1] = "";
        unsigned idx = 0;

        if (!pattern || !deployment || !name || !ret_version || !ret_index)
                return -EINVAL;
        if (pattern_scan(pattern, counts) < 0 || counts[PH_INDEX] != 1 || counts[PH_VERSION] > 1 ||
            counts[PH_INSTANCE] > 0)
                return -EINVAL;
        if (!match_at(pattern, deployment, name, ver, &idx))
                return 0;
        memcpy(ret_version, ver, strlen(ver) + 1);
        *ret_index = idx;
        return 1;
}

/* One name a job or a bus call can end with, and what it means for a result. */
struct kind_row {
        const char *name;
        enum fm_result_kind kind;
        int error;
};

/* The row of table named name (NULL, or not there: a permanent -EIO). */
static enum fm_result_kind kind_lookup(const struct kind_row *table, size_t n, const char *name,
                                       int *ret_error)
{
        int error = -EIO;
        enum fm_result_kind kind = FM_RESULT_PERMANENT;

        for (size_t i = 0; name && i < n; i++)
                if (strcmp(name, table[i].name) == 0) {
                        kind = table[i].kind;
                        error = table[i].error;
                        break;
                }
        if (ret_error)
                *ret_error = error;
        return kind;
}

enum fm_result_kind fm_systemd_job_result_kind(const char *result, int *ret_error)
{
        static const struct kind_row table[] = {
                {"done", FM_RESULT_OK, 0},
                {"timeout", FM_RESULT_RETRYABLE, -ETIMEDOUT},
                {"canceled", FM_RESULT_RETRYABLE, -ECANCELED},
                {"failed", FM_RESULT_PERMANENT, -EIO},
                {"dependency", FM_RESULT_PERMANENT, -ENOLINK},
                {"skipped", FM_RESULT_PERMANENT, -EALREADY},
        };
        return kind_lookup(table, ARRAY_SIZE(table), result, ret_error);
}

enum fm_result_kind fm_systemd_bus_error_kind(const char *name, int *ret_error)
{
        static const struct kind_row table[] = {
                {"org.freedesktop.systemd1.NoSuchUnit", FM_RESULT_PERMANENT, -ENOENT},
                {"org.freedesktop.systemd1.NoSuchJob", FM_RESULT_PERMANENT, -ENOENT},
                {"org.freedesktop.systemd1.LoadFailed", FM_RESULT_PERMANENT, -ENOEXEC},
                {"org.freedesktop.systemd1.UnitMasked", FM_RESULT_PERMANENT, -ENOEXEC},
                {"org.freedesktop.systemd1.OnlyByDependency", FM_RESULT_PERMANENT, -EACCES},
                {"org.freedesktop.systemd1.JobFailed", FM_RESULT_PERMANENT, -EIO},
                {"org.freedesktop.systemd1.TransactionIsDestructive", FM_RESULT_RETRYABLE, -EBUSY},
                {"org.freedesktop.systemd1.TransactionJobsConflicting", FM_RESULT_RETRYABLE,
                 -EBUSY},
                {"org.freedesktop.DBus.Error.AccessDenied", FM_RESULT_PERMANENT, -EACCES},
                {"org.freedesktop.DBus.Error.InteractiveAuthorizationRequired", FM_RESULT_PERMANENT,
                 -EACCES},
                {"org.freedesktop.DBus.Error.InvalidArgs", FM_RESULT_PERMANENT, -EINVAL},
                {"org.freedesktop.DBus.Error.UnknownMethod", FM_RESULT_PERMANENT, -EOPNOTSUPP},
                {"org.freedesktop.DBus.Error.UnknownObject", FM_RESULT_PERMANENT, -EOPNOTSUPP},
                {"org.freedesktop.DBus.Error.UnknownInterface", FM_RESULT_PERMANENT, -EOPNOTSUPP},
                {"org.freedesktop.DBus.Error.NoReply", FM_RESULT_RETRYABLE, -ETIMEDOUT},
                {"org.freedesktop.DBus.Error.Timeout", FM_RESULT_RETRYABLE, -ETIMEDOUT},
                {"org.freedesktop.DBus.Error.TimedOut", FM_RESULT_RETRYABLE, -ETIMEDOUT},
                {"org.freedesktop.DBus.Error.Disconnected", FM_RESULT_RETRYABLE, -ECONNRESET},
                {"org.freedesktop.DBus.Error.ServiceUnknown", FM_RESULT_RETRYABLE, -ECONNREFUSED},
                {"org.freedesktop.DBus.Error.NameHasNoOwner", FM_RESULT_RETRYABLE, -ECONNREFUSED},
                {"org.freedesktop.DBus.Error.NoMemory", FM_RESULT_RETRYABLE, -ENOMEM},
                {"org.freedesktop.DBus.Error.LimitsExceeded", FM_RESULT_RETRYABLE, -ENOBUFS},
        };
        return kind_lookup(table, ARRAY_SIZE(table), name, ret_error);
}

/* ---- configuration ---- */

static const char *const bus_names[_FM_SYSTEMD_BUS_MAX] = {"system", "user"};
static const char *const order_names[_FM_SYSTEMD_ROLLBACK_ORDER_MAX] = {"start_first",
                                                                        "stop_first"};

const char *fm_systemd_bus_name(enum fm_systemd_bus b)
{
        return (unsigned)b < _FM_SYSTEMD_BUS_MAX ? bus_names[b] : NULL;
}

const char *fm_systemd_rollback_order_name(enum fm_systemd_rollback_order o)
{
        return (unsigned)o < _FM_SYSTEMD_ROLLBACK_ORDER_MAX ? order_names[o] : NULL;
}

void fm_systemd_config_default(struct fm_systemd_config *cfg)
{
        memset(cfg, 0, sizeof *cfg);
        cfg->bus = FM_SYSTEMD_BUS_SYSTEM;
        cfg->job_timeout = 90 * FM_MS_PER_S;
        memcpy(cfg->job_mode, "replace", sizeof "replace");
        cfg->rollback_order = FM_SYSTEMD_START_FIRST;
        cfg->n_deployments = 1;
        memcpy(cfg->deployments[0].deployment, "*", 2);
        snprintf(cfg->deployments[0].unit, sizeof cfg->deployments[0].unit, "%s",
                 "{deployment}-{version}@{index}.service");
        snprintf(cfg->deployments[0].instance_unit, sizeof cfg->deployments[0].instance_unit, "%s",
                 "{instance}.service");
}

static int units_validate(const struct fm_systemd_units *u)
{
        unsigned c[_PH_MAX];
        char out[FM_SYSTEMD_UNIT_NAME_MAX + 1];

        if (!fm_text_terminated(u->deployment, sizeof u->deployment) ||
            !fm_text_terminated(u->unit, sizeof u->unit) ||
            !fm_text_terminated(u->instance_unit, sizeof u->instance_unit))
                return -EINVAL;
        if (strcmp(u->deployment, "*") != 0 &&
            !fm_name_valid(u->deployment, strnlen(u->deployment, sizeof u->deployment)))
                return -EINVAL;
        if (pattern_scan(u->unit, c) < 0 || c[PH_INDEX] != 1 || c[PH_VERSION] > 1 ||
            c[PH_DEPLOYMENT] > 1 || c[PH_INSTANCE] > 0)
                return -EINVAL;
        if (fm_systemd_expand(u->unit, "d", "v", NULL, 1, out, sizeof out) < 0)
                return -EINVAL;
        if (pattern_scan(u->instance_unit, c) < 0 || c[PH_INDEX] > 0 || c[PH_VERSION] > 0)
                return -EINVAL;
        if (fm_systemd_expand(u->instance_unit, "d", NULL, "i", 0, out, sizeof out) < 0)
                return -EINVAL;
        return 0;
}

int fm_systemd_config_validate(const struct fm_systemd_config *cfg)
{
        static const char *const modes[] = {"replace",
                                            "fail",
                                            "replace-irreversibly",
                                            "flush",
                                            "ignore-dependencies",
                                            "ignore-requirements"};
        bool mode_ok = false, star = false;
        uint32_t named = 0;

        if (!cfg || (unsigned)cfg->bus >= _FM_SYSTEMD_BUS_MAX ||
            (unsigned)cfg->rollback_order >= _FM_SYSTEMD_ROLLBACK_ORDER_MAX)
                return -EINVAL;
        if (cfg->job_timeout < 1 || cfg->job_timeout > JOB_TIMEOUT_MAX)
                return -EINVAL;
        if (!fm_text_terminated(cfg->address, sizeof cfg->address) ||
            !fm_text_terminated(cfg->job_mode, sizeof cfg->job_mode))
                return -EINVAL;
        for (const char *p = cfg->address; *p; p++)
                if (*p <= ' ' || *p > '~')
                        return -EINVAL;
        for (size_t i = 0; i < ARRAY_SIZE(modes); i++)
                mode_ok = mode_ok || strcmp(cfg->job_mode, modes[i]) == 0;
        if (!mode_ok || cfg->n_deployments > FM_SYSTEMD_DEPLOYMENTS_MAX)
                return -EINVAL;
        for (uint32_t i = 0; i < cfg->n_deployments; i++) {
                const struct fm_systemd_units *u = cfg->deployments + i;

                if (units_validate(u) < 0)
                        return -EINVAL;
                if (strcmp(u->deployment, "*") == 0) {
                        if (star)
                                return -EINVAL;
                        star = true;
                } else if (++named > FM_SYSTEMD_DEPLOYMENTS_MAX - 1) {
                        return -EINVAL;
                }
                for (uint32_t j = 0; j < i; j++)
                        if (strcmp(cfg->deployments[j].deployment, u->deployment) == 0)
                                return -EINVAL;
        }
        return 0;
}

/* ---- the backend ---- */

enum job_state {
        J_IDLE,    /* phase not begun */
        J_CALLING, /* method call sent, no reply yet */
        J_WAITING, /* reply named the job; waiting for JobRemoved */
        J_DONE,
};

enum verb {
        V_START,
        V_STOP,
        V_RESTART,
};

struct op;

struct job {
        struct op *op;
        char unit[FM_SYSTEMD_UNIT_NAME_MAX + 1];
        char *path; /* job object path, once the reply came */
        sd_bus_slot *slot;
        enum verb verb;
        uint8_t phase;
        enum job_state state;
        bool ok;
};

struct op {
        struct op *next;
        struct fm_systemd *x;
        uint64_t attempt_id;
        enum fm_action action;
        bool observe;
        const struct fm_systemd_units *map; /* points into x->cfg */
        char deployment[FM_NAME_MAX + 1];
        char from[FM_VERSION_MAX + 1], to[FM_VERSION_MAX + 1]; /* rollback */
        char version[FM_VERSION_MAX + 1];                      /* scale: the running one */
        uint32_t scale_from, scale_to;
        char unit[FM_SYSTEMD_UNIT_NAME_MAX + 1]; /* restart, or the glob of a list */

        sd_bus_slot *call; /* list or GetUnit */
        sd_bus_slot *prop[3];
        unsigned props_pending;
        sd_event_source *timer;

        struct job *jobs;
        uint32_t n_jobs;
        uint8_t phase, n_phases;

        /* The first failure decides the result. */
        bool failed;
        enum fm_result_kind kind;
        int error;
        char fail[FAIL_MAX];

        /* Observed unit state (restart, observe). */
        bool have_state, have_nrestarts, not_loaded;
        char active[STATE_MAX], sub[STATE_MAX];
        uint32_t nrestarts;
        /* Restart: how the job ended, decided before the state is read. */
        enum fm_result_kind job_kind;
        int job_error;
        char job_result[JOB_RESULT_MAX];
};

struct early {
        char path[JOB_PATH_MAX];
        char result[JOB_RESULT_MAX];
};

struct fm_systemd {
        sd_event *event;
        struct fm_actuator *actuator;
        struct fm_systemd_config cfg;
        sd_bus *bus;
        sd_bus_slot *filter;
        sd_bus_slot *match;
        sd_bus_slot *subscribe;
        sd_event_source *drop; /* defer: closes a lost bus outside its callbacks */
        struct op *ops;
        unsigned n_ops;
        struct early early[FM_SYSTEMD_EARLY_MAX];
        unsigned early_next;
};

static fm_ms now_ms(struct fm_systemd *x)
{
        return fm_backend_now(x->event, CLOCK_REALTIME);
}

unsigned fm_systemd_in_flight(const struct fm_systemd *x)
{
        return x ? x->n_ops : 0;
}

static void op_free(struct op *op)
{
        struct fm_systemd *x = op->x;

        for (struct op **pp = &x->ops; *pp; pp = &(*pp)->next)
                if (*pp == op) {
                        *pp = op->next;
                        x->n_ops--;
                        break;
                }
        sd_bus_slot_unref(op->call);
        for (size_t i = 0; i < ARRAY_SIZE(op->prop); i++)
                sd_bus_slot_unref(op->prop[i]);
        sd_event_source_disable_unref(op->timer);
        for (uint32_t i = 0; i < op->n_jobs; i++) {
                sd_bus_slot_unref(op->jobs[i].slot);
                free(op->jobs[i].path);
        }
        free(op->jobs);
        free(op);
}

static const char *verb_name(enum verb v)
{
        return v == V_START ? "start" : v == V_STOP ? "stop" : "restart";
}

/* The first failure of op; later ones only count. */
static void op_fail(struct op *op, enum fm_result_kind kind, int error, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));

static void op_fail(struct op *op, enum fm_result_kind kind, int error, const char *fmt, ...)
{
        va_list ap;

        if (op->failed)
                return;
        op->failed = true;
        op->kind = kind;
        op->error = error;
        va_start(ap, fmt);
        vsnprintf(op->fail, sizeof op->fail, fmt, ap);
        va_end(ap);
}

static void job_counts(const struct op *op, enum verb v, uint32_t *ret_ok, uint32_t *ret_all)
{
        uint32_t ok = 0, all = 0;

        for (uint32_t i = 0; i < op->n_jobs; i++)
                if (op->jobs[i].verb == v) {
                        all++;
                        ok += op->jobs[i].ok;
                }
        *ret_ok = ok;
        *ret_all = all;
}

static void describe(const struct op *op, char *buf, size_t size)
{
        switch (op->action) {
        case FM_ACTION_RESTART:
                snprintf(buf, size, "restart %s", op->unit);
                break;
        case FM_ACTION_SCALE:
                snprintf(buf, size, "scale %s%s%s%s %u->%u", op->deployment,
                         op->version[0] ? " (" : "", op->version, op->version[0] ? ")" : "",
                         op->scale_from, op->scale_to);
                break;
        case FM_ACTION_ROLLBACK:
                snprintf(buf, size, "rollback %s %s->%s", op->deployment, op->from, op->to);
                break;
        default:
                snprintf(buf, size, "%s", "?");
                break;
        }
}

/* Writes the detail of a finished op: what it is, the first failure, what was done. */
static void compose(const struct op *op, const char *note, char *buf, size_t size)
{
        char what[FM_SYSTEMD_UNIT_NAME_MAX + 32];
        uint32_t st_ok, st_all, sp_ok, sp_all;
        int n;

        describe(op, what, sizeof what);
        n = snprintf(buf, size, "%s: %s%s", what, op->failed ? op->fail : "",
                     op->failed && note && note[0] ? "; " : "");
        if (n < 0 || (size_t)n >= size)
                return;
        if (note && note[0]) {
                int m = snprintf(buf + n, size - (size_t)n, "%s", note);
                if (m < 0 || (size_t)m >= size - (size_t)n)
                        return;
                n += m;
        }
        if (op->action == FM_ACTION_RESTART || op->observe || op->n_jobs == 0)
                return;
        job_counts(op, V_START, &st_ok, &st_all);
        job_counts(op, V_STOP, &sp_ok, &sp_all);
        n += snprintf(buf + n, size - (size_t)n, "%sstarted %u/%u, stopped %u/%u",
                      op->failed || (note && note[0]) ? "; " : "", st_ok, st_all, sp_ok, sp_all);
        if (n < 0 || (size_t)n >= size)
                return;
        if (op->action == FM_ACTION_ROLLBACK && op->failed && op->phase + 1 < op->n_phases)
                snprintf(buf + n, size - (size_t)n, "; %s %s",
                         op->x->cfg.rollback_order == FM_SYSTEMD_START_FIRST ? op->from : op->to,
                         op->x->cfg.rollback_order == FM_SYSTEMD_START_FIRST ? "left running"
                                                                             : "not started");
}

/*
 * Ends op with its result: the first failure when there was one, else
 * (kind, error). Frees op, then hands the result to the actuator. The
 * caller must not touch op afterwards.
 */
static void finish(struct op *op, enum fm_result_kind kind, int error, const char *note)
{
        struct fm_systemd *x = op->x;
        char detail[FM_ACTUATOR_DETAIL_MAX];
        struct fm_action_result res = {0};
        uint64_t id = op->attempt_id;

        compose(op, note, detail, sizeof detail);
        if (op->failed) {
                kind = op->kind;
                error = op->error;
        }
        res.kind = kind;
        res.error = kind == FM_RESULT_OK ? 0 : error;
        res.detail = detail;
        op_free(op);
        (void)fm_actuator_complete(x->actuator, id, &res, now_ms(x));
}

/* Records a D-Bus error reply (or a local failure) as op's failure. */
static void fail_bus(struct op *op, const sd_bus_error *e, int r, const char *what)
{
        enum fm_result_kind kind;
        int error;

        if (e && sd_bus_error_is_set(e)) {
                kind = fm_systemd_bus_error_kind(e->name, &error);
                op_fail(op, kind, error, "%s: %s", what, e->name);
        } else {
                error = r < 0 ? r : -EIO;
                op_fail(op, fm_result_kind_from_errno(error), error, "%s: %s", what,
                        strerror(-error));
        }
}

/* ---- properties: ActiveState, SubState, NRestarts ---- */

static bool state_up(const char *active)
{
        return strcmp(active, "active") == 0 || strcmp(active, "reloading") == 0;
}

static void props_done(struct op *op)
{
        char note[2 * STATE_MAX + 48];

        if (op->not_loaded)
                snprintf(note, sizeof note, "%s", "not loaded");
        else if (!op->have_state)
                note[0] = '\0';
        else if (op->have_nrestarts)
                snprintf(note, sizeof note, "%s/%s, NRestarts %u", op->active, op->sub,
                         op->nrestarts);
        else
                snprintf(note, sizeof note, "%s/%s", op->active, op->sub);

        if (op->observe) {
                if (op->failed)
                        finish(op, op->kind, op->error, note);
                else if (op->have_state && state_up(op->active))
                        finish(op, FM_RESULT_OK, 0, note);
                else
                        finish(op, FM_RESULT_PERMANENT, -ESRCH, note);
                return;
        }
        /* A restart: the job decided; the state is only evidence. */
        {
                char both[sizeof note + JOB_RESULT_MAX + 16];
                snprintf(both, sizeof both, "job %s%s%s", op->job_result, note[0] ? "; " : "",
                         note);
                if (op->job_kind != FM_RESULT_OK)
                        op_fail(op, op->job_kind, op->job_error, "job %s", op->job_result);
                finish(op, op->job_kind, op->job_error, op->failed ? note : both);
        }
}

static void prop_reply(struct op *op, sd_bus_message *m, size_t i)
{
        static const char *const names[] = {"ActiveState", "SubState", "NRestarts"};
        int r;

        op->prop[i] = sd_bus_slot_unref(op->prop[i]);
        if (sd_bus_message_is_method_error(m, NULL)) {
                /* Only ActiveState matters to an observation; the rest is evidence. */
                if (i == 0 && op->observe)
                        fail_bus(op, sd_bus_message_get_error(m), 0, names[i]);
        } else if (i == 2) {
                uint32_t u;
                r = sd_bus_message_read(m, "v", "u", &u);
                if (r >= 0) {
                        op->nrestarts = u;
                        op->have_nrestarts = true;
                }
        } else {
                const char *s;
                r = sd_bus_message_read(m, "v", "s", &s);
                if (r >= 0) {
                        snprintf(i == 0 ? op->active : op->sub, STATE_MAX, "%s", s);
                        op->have_state = op->have_state || i == 0;
                }
        }
        if (--op->props_pending == 0)
                props_done(op);
}

static int on_active(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
        (void)ret_error;
        prop_reply(userdata, m, 0);
        return 1;
}

static int on_sub(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
        (void)ret_error;
        prop_reply(userdata, m, 1);
        return 1;
}

static int on_nrestarts(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
        (void)ret_error;
        prop_reply(userdata, m, 2);
        return 1;
}

static int get_prop(struct op *op, const char *path, size_t i, const char *iface, const char *name)
{
        static const sd_bus_message_handler_t handlers[] = {on_active, on_sub, on_nrestarts};
        int r = sd_bus_call_method_async(op->x->bus, &op->prop[i], DEST, path, PROPS_IFACE, "Get",
                                         handlers[i], op, "ss", iface, name);
        if (r >= 0)
                op->props_pending++;
        return r;
}

static int on_get_unit(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
        struct op *op = userdata;
        const sd_bus_error *e;
        const char *path;
        const char *dot;
        int r;

        (void)ret_error;
        op->call = sd_bus_slot_unref(op->call);
        e = sd_bus_message_get_error(m);
        if (e) {
                if (sd_bus_error_has_name(e, "org.freedesktop.systemd1.NoSuchUnit"))
                        op->not_loaded = true;
                else if (op->observe)
                        fail_bus(op, e, 0, "GetUnit");
                props_done(op);
                return 1;
        }
        r = sd_bus_message_read(m, "o", &path);
        if (r < 0) {
                if (op->observe)
                        fail_bus(op, NULL, r, "GetUnit");
                props_done(op);
                return 1;
        }
        r = get_prop(op, path, 0, UNIT_IFACE, "ActiveState");
        if (r >= 0)
                r = get_prop(op, path, 1, UNIT_IFACE, "SubState");
        dot = strrchr(op->unit, '.');
        if (r >= 0 && dot && strcmp(dot, ".service") == 0)
                r = get_prop(op, path, 2, SERVICE_IFACE, "NRestarts");
        if (r < 0 && op->observe)
                fail_bus(op, NULL, r, "Properties.Get");
        if (op->props_pending == 0)
                props_done(op);
        /* else on_prop() ends it; a failed later Get only leaves a field out. */
        return 1;
}

static int read_state(struct op *op)
{
        return sd_bus_call_method_async(op->x->bus, &op->call, DEST, MANAGER_PATH, MANAGER_IFACE,
                                        "GetUnit", on_get_unit, op, "s", op->unit);
}

/* ---- jobs ---- */

static void phase_begin(struct op *op);

/* After a job ended: the next phase, the state read, or the end. */
static void phase_check(struct op *op)
{
        for (uint32_t i = 0; i < op->n_jobs; i++)
                if (op->jobs[i].phase == op->phase && op->jobs[i].state != J_DONE)
                        return;
        op->timer = sd_event_source_disable_unref(op->timer);
        if (op->action == FM_ACTION_RESTART) {
                int r = read_state(op);
                if (r < 0) {
                        if (op->job_kind != FM_RESULT_OK)
                                op_fail(op, op->job_kind, op->job_error, "job %s", op->job_result);
                        finish(op, op->job_kind, op->job_error, NULL);
                }
                return;
        }
        if (op->failed || op->phase + 1 >= op->n_phases) {
                finish(op, FM_RESULT_OK, 0, NULL);
                return;
        }
        op->phase++;
        phase_begin(op);
}

static void job_removed(struct job *j, const char *result)
{
        struct op *op = j->op;
        enum fm_result_kind kind;
        int error;

        j->state = J_DONE;
        kind = fm_systemd_job_result_kind(result, &error);
        j->ok = kind == FM_RESULT_OK;
        if (j->verb == V_RESTART) {
                op->job_kind = kind;
                op->job_error = error;
                snprintf(op->job_result, sizeof op->job_result, "%s", result);
        } else if (!j->ok) {
                op_fail(op, kind, error, "%s %s: job %.*s", verb_name(j->verb), j->unit,
                        JOB_RESULT_MAX - 1, result);
        }
        phase_check(op);
}

static bool any_calling(const struct fm_systemd *x)
{
        for (const struct op *op = x->ops; op; op = op->next)
                for (uint32_t i = 0; i < op->n_jobs; i++)
                        if (op->jobs[i].state == J_CALLING)
                                return true;
        return false;
}

static int on_job_removed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
        struct fm_systemd *x = userdata;
        const char *path, *unit, *result;
        uint32_t id;
        struct early *e;

        (void)ret_error;
        if (sd_bus_message_read(m, "uoss", &id, &path, &unit, &result) < 0)
                return 0;
        for (struct op *op = x->ops; op; op = op->next)
                for (uint32_t i = 0; i < op->n_jobs; i++) {
                        struct job *j = op->jobs + i;
                        if (j->state == J_WAITING && strcmp(j->path, path) == 0) {
                                job_removed(j, result);
                                return 0;
                        }
                }
        if (!any_calling(x) || strlen(path) >= JOB_PATH_MAX)
                return 0;
        e = x->early + x->early_next;
        x->early_next = (x->early_next + 1) % FM_SYSTEMD_EARLY_MAX;
        snprintf(e->path, sizeof e->path, "%s", path);
        snprintf(e->result, sizeof e->result, "%s", result);
        return 0;
}

static int on_job_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
        struct job *j = userdata;
        struct op *op = j->op;
        struct fm_systemd *x = op->x;
        const sd_bus_error *e;
        const char *path;
        char what[FM_SYSTEMD_UNIT_NAME_MAX + 16];
        int r;

        (void)ret_error;
        j->slot = sd_bus_slot_unref(j->slot);
        snprintf(what, sizeof what, "%s %s", verb_name(j->verb), j->unit);
        e = sd_bus_message_get_error(m);
        r = e ? 0 : sd_bus_message_read(m, "o", &path);
        if (e || r < 0) {
                j->state = J_DONE;
                fail_bus(op, e, r, what);
                if (j->verb == V_RESTART) {
                        /* No job ran: nothing to read back, the call's error decides. */
                        finish(op, op->kind, op->error, NULL);
                        return 1;
                }
                phase_check(op);
                return 1;
        }
        for (unsigned i = 0; i < FM_SYSTEMD_EARLY_MAX; i++)
                if (x->early[i].path[0] && strcmp(x->early[i].path, path) == 0) {
                        char result[JOB_RESULT_MAX];
                        memcpy(result, x->early[i].result, sizeof result);
                        x->early[i].path[0] = '\0';
                        job_removed(j, result);
                        return 1;
                }
        j->path = strdup(path);
        if (!j->path) {
                j->state = J_DONE;
                op_fail(op, FM_RESULT_RETRYABLE, -ENOMEM, "%s: out of memory", what);
                phase_check(op);
                return 1;
        }
        j->state = J_WAITING;
        return 1;
}

static int on_timeout(sd_event_source *s, uint64_t usec, void *userdata)
{
        struct op *op = userdata;
        uint32_t pending = 0;

        (void)s;
        (void)usec;
        for (uint32_t i = 0; i < op->n_jobs; i++)
                pending += op->jobs[i].phase == op->phase && op->jobs[i].state != J_DONE;
        op_fail(op, FM_RESULT_RETRYABLE, -ETIMEDOUT, "%u job(s) not finished after %lld ms",
                pending, (long long)op->x->cfg.job_timeout);
        finish(op, FM_RESULT_RETRYABLE, -ETIMEDOUT, NULL);
        return 0;
}

static int job_call(struct job *j)
{
        struct op *op = j->op;
        const char *method = j->verb == V_START  ? "StartUnit"
                             : j->verb == V_STOP ? "StopUnit"
                                                 : "RestartUnit";

        return sd_bus_call_method_async(op->x->bus, &j->slot, DEST, MANAGER_PATH, MANAGER_IFACE,
                                        method, on_job_reply, j, "ss", j->unit,
                                        op->x->cfg.job_mode);
}

/* Sends every job of the current phase; runs from callbacks only (it may finish op). */
static void phase_begin(struct op *op)
{
        int r = sd_event_add_time_relative(op->x->event, &op->timer, CLOCK_MONOTONIC,
                                           (uint64_t)op->x->cfg.job_timeout * USEC_PER_MS, 0,
                                           on_timeout, op);
        if (r < 0) {
                op_fail(op, fm_result_kind_from_errno(r), r, "timer: %s", strerror(-r));
                finish(op, op->kind, op->error, NULL);
                return;
        }
        for (uint32_t i = 0; i < op->n_jobs; i++) {
                struct job *j = op->jobs + i;

                if (j->phase != op->phase)
                        continue;
                r = job_call(j);
                if (r < 0) {
                        char what[FM_SYSTEMD_UNIT_NAME_MAX + 16];
                        snprintf(what, sizeof what, "%s %s", verb_name(j->verb), j->unit);
                        j->state = J_DONE;
                        fail_bus(op, NULL, r, what);
                } else {
                        j->state = J_CALLING;
                }
        }
        phase_check(op);
}

/* ---- planning scale and rollback from a unit list ---- */

#define S_RUN 1 /* active, activating or reloading: no start needed */
#define S_UP 2  /* active or reloading: counts for an observation */

struct vrun {
        char name[FM_VERSION_MAX + 1];
        uint8_t state[FM_SYSTEMD_INSTANCES_MAX + 1];
        unsigned n_run, n_up;
};

struct listing {
        struct vrun v[RUN_VERSIONS_MAX];
        unsigned n;
};

static struct vrun *listing_find(struct listing *l, const char *version)
{
        for (unsigned i = 0; i < l->n; i++)
                if (strcmp(l->v[i].name, version) == 0)
                        return l->v + i;
        return NULL;
}

/* Reads a ListUnits* reply into l (running units only). -E2BIG: too many versions or units. */
static int read_listing(struct op *op, sd_bus_message *m, struct listing *l)
{
        const char *name, *desc, *load, *active, *sub, *follow, *path, *jtype, *jpath;
        uint32_t jid;
        unsigned n = 0;
        int r;

        r = sd_bus_message_enter_container(m, 'a', "(ssssssouso)");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_read(m, "(ssssssouso)", &name, &desc, &load, &active, &sub,
                                        &follow, &path, &jid, &jtype, &jpath)) > 0) {
                char version[FM_VERSION_MAX + 1];
                unsigned index;
                uint8_t st = 0;
                struct vrun *v;

                if (++n > FM_SYSTEMD_LIST_MAX)
                        return -E2BIG;
                if (fm_systemd_match(op->map->unit, op->deployment, name, version, &index) != 1)
                        continue;
                if (strcmp(active, "active") == 0 || strcmp(active, "reloading") == 0)
                        st = S_RUN | S_UP;
                else if (strcmp(active, "activating") == 0)
                        st = S_RUN;
                if (!st)
                        continue;
                v = listing_find(l, version);
                if (!v) {
                        if (l->n >= RUN_VERSIONS_MAX)
                                return -E2BIG;
                        v = l->v + l->n++;
                        memcpy(v->name, version, sizeof version);
                }
                if (v->state[index])
                        continue;
                v->state[index] = st;
                v->n_run++;
                v->n_up += (st & S_UP) != 0;
        }
        if (r < 0)
                return r;
        return sd_bus_message_exit_container(m);
}

static int add_job(struct op *op, enum verb verb, uint8_t phase, const char *version,
                   unsigned index)
{
        struct job *j = op->jobs + op->n_jobs;
        int r = fm_systemd_expand(op->map->unit, op->deployment, version, NULL, index, j->unit,
                                  sizeof j->unit);
        if (r < 0)
                return r;
        j->op = op;
        j->verb = verb;
        j->phase = phase;
        j->state = J_IDLE;
        op->n_jobs++;
        return 0;
}

static void plan_scale(struct op *op, struct listing *l)
{
        static const struct vrun none = {0};
        const struct vrun *v = &none;
        char note[64];
        int r = 0;

        if (l->n > 1) {
                op_fail(op, FM_RESULT_RETRYABLE, -EBUSY, "versions %s and %s both running",
                        l->v[0].name, l->v[1].name);
                finish(op, op->kind, op->error, NULL);
                return;
        }
        if (l->n == 1) {
                v = l->v;
                memcpy(op->version, v->name, sizeof op->version);
        } else if (strstr(op->map->unit, "{version}")) {
                op_fail(op, FM_RESULT_PERMANENT, -ENOENT,
                        "no running instance to take the version from");
                finish(op, op->kind, op->error, NULL);
                return;
        }
        if (op->observe) {
                bool above = false;
                for (unsigned i = op->scale_to + 1; i <= FM_SYSTEMD_INSTANCES_MAX; i++)
                        above = above || (v->state[i] & S_UP);
                snprintf(note, sizeof note, "%u active", v->n_up);
                if (v->n_up == op->scale_to && !above)
                        finish(op, FM_RESULT_OK, 0, note);
                else
                        finish(op, FM_RESULT_PERMANENT, -ESRCH, note);
                return;
        }
        op->jobs = calloc(FM_SYSTEMD_INSTANCES_MAX, sizeof *op->jobs);
        if (!op->jobs) {
                op_fail(op, FM_RESULT_RETRYABLE, -ENOMEM, "out of memory");
                finish(op, op->kind, op->error, NULL);
                return;
        }
        for (unsigned i = 1; r >= 0 && i <= op->scale_to; i++)
                if (!(v->state[i] & S_RUN))
                        r = add_job(op, V_START, 0, v->name, i);
        for (unsigned i = FM_SYSTEMD_INSTANCES_MAX; r >= 0 && i > op->scale_to; i--)
                if (v->state[i] & S_RUN)
                        r = add_job(op, V_STOP, 0, v->name, i);
        if (r < 0) {
                op_fail(op, FM_RESULT_PERMANENT, r, "invalid unit name");
                op->n_jobs = 0;
                finish(op, op->kind, op->error, NULL);
                return;
        }
        if (op->n_jobs == 0) {
                snprintf(note, sizeof note, "nothing to do, %u running", v->n_run);
                finish(op, FM_RESULT_OK, 0, note);
                return;
        }
        op->n_phases = 1;
        phase_begin(op);
}

static void plan_rollback(struct op *op, struct listing *l)
{
        static const struct vrun none = {0};
        const struct vrun *from = listing_find(l, op->from), *to = listing_find(l, op->to);
        bool start_first = op->x->cfg.rollback_order == FM_SYSTEMD_START_FIRST;
        char note[2 * FM_VERSION_MAX + 64];
        int r = 0;

        if (!from)
                from = &none;
        if (!to)
                to = &none;
        if (op->observe) {
                snprintf(note, sizeof note, "%u of %s active, %u of %s active", to->n_up, op->to,
                         from->n_up, op->from);
                if (to->n_up > 0 && from->n_up == 0)
                        finish(op, FM_RESULT_OK, 0, note);
                else
                        finish(op, FM_RESULT_PERMANENT, -ESRCH, note);
                return;
        }
        if (from->n_run == 0) {
                snprintf(note, sizeof note, "%s not running, %u of %s running", op->from, to->n_run,
                         op->to);
                if (to->n_run > 0) {
                        finish(op, FM_RESULT_OK, 0, note);
                } else {
                        op_fail(op, FM_RESULT_PERMANENT, -ENOENT, "%s", note);
                        finish(op, op->kind, op->error, NULL);
                }
                return;
        }
        op->jobs = calloc(2 * (size_t)FM_SYSTEMD_INSTANCES_MAX, sizeof *op->jobs);
        if (!op->jobs) {
                op_fail(op, FM_RESULT_RETRYABLE, -ENOMEM, "out of memory");
                finish(op, op->kind, op->error, NULL);
                return;
        }
        for (unsigned i = 1; r >= 0 && i <= FM_SYSTEMD_INSTANCES_MAX; i++)
                if ((from->state[i] & S_RUN) && !(to->state[i] & S_RUN))
                        r = add_job(op, V_START, start_first ? 0 : 1, op->to, i);
        for (unsigned i = FM_SYSTEMD_INSTANCES_MAX; r >= 0 && i >= 1; i--)
                if (from->state[i] & S_RUN)
                        r = add_job(op, V_STOP, start_first ? 1 : 0, op->from, i);
        if (r < 0) {
                op_fail(op, FM_RESULT_PERMANENT, r, "invalid unit name");
                op->n_jobs = 0;
                finish(op, op->kind, op->error, NULL);
                return;
        }
        op->n_phases = 2;
        phase_begin(op);
}

static int on_list(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
        struct op *op = userdata;
        const sd_bus_error *e;
        struct listing *l;
        int r;

        (void)ret_error;
        op->call = sd_bus_slot_unref(op->call);
        e = sd_bus_message_get_error(m);
        if (e) {
                fail_bus(op, e, 0, "ListUnitsByPatterns");
                finish(op, op->kind, op->error, NULL);
                return 1;
        }
        l = calloc(1, sizeof *l);
        if (!l) {
                op_fail(op, FM_RESULT_RETRYABLE, -ENOMEM, "out of memory");
                finish(op, op->kind, op->error, NULL);
                return 1;
        }
        r = read_listing(op, m, l);
        if (r < 0) {
                op_fail(op, r == -E2BIG ? FM_RESULT_PERMANENT : FM_RESULT_RETRYABLE, r,
                        "unit list: %s", strerror(-r));
                finish(op, op->kind, op->error, NULL);
        } else if (op->action == FM_ACTION_SCALE) {
                plan_scale(op, l);
        } else {
                plan_rollback(op, l);
        }
        free(l);
        return 1;
}

static int list_units(struct op *op)
{
        sd_bus_message *m = NULL;
        char *patterns[] = {op->unit, NULL};
        int r;

        r = sd_bus_message_new_method_call(op->x->bus, &m, DEST, MANAGER_PATH, MANAGER_IFACE,
                                           "ListUnitsByPatterns");
        if (r >= 0)
                r = sd_bus_message_append_strv(m, (char *[]){NULL});
        if (r >= 0)
                r = sd_bus_message_append_strv(m, patterns);
        if (r >= 0)
                r = sd_bus_call_async(op->x->bus, &op->call, m, on_list, op, 0);
        sd_bus_message_unref(m);
        return r;
}

/* ---- the connection ---- */

static void drop_bus(struct fm_systemd *x)
{
        x->subscribe = sd_bus_slot_unref(x->subscribe);
        x->match = sd_bus_slot_unref(x->match);
        x->filter = sd_bus_slot_unref(x->filter);
        if (x->bus) {
                sd_bus_detach_event(x->bus);
                x->bus = sd_bus_close_unref(x->bus);
        }
}

static int on_drop(sd_event_source *s, void *userdata)
{
        (void)s;
        drop_bus(userdata);
        return 0;
}

static void schedule_drop(struct fm_systemd *x)
{
        if (x->drop)
                (void)sd_event_source_set_enabled(x->drop, SD_EVENT_ONESHOT);
}

static int on_filter(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
        struct fm_systemd *x = userdata;

        (void)ret_error;
        if (!sd_bus_message_is_signal(m, "org.freedesktop.DBus.Local", "Disconnected"))
                return 0;
        while (x->ops) {
                struct op *op = x->ops;
                op_fail(op, FM_RESULT_RETRYABLE, -ECONNRESET, "bus disconnected");
                finish(op, op->kind, op->error, NULL);
        }
        schedule_drop(x);
        return 0;
}

static int on_match_installed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
        struct fm_systemd *x = userdata;

        (void)ret_error;
        /* Without the match no job could ever end: start over on the next attempt. */
        if (sd_bus_message_is_method_error(m, NULL))
                schedule_drop(x);
        return 0;
}

static int on_subscribed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
        struct fm_systemd *x = userdata;

        (void)m;
        (void)ret_error;
        /* An error is not fatal: a manager that signals without Subscribe still works. */
        x->subscribe = sd_bus_slot_unref(x->subscribe);
        return 0;
}

static int connect_bus(struct fm_systemd *x)
{
        sd_bus *bus = NULL;
        int r;

        if (x->cfg.address[0]) {
                r = sd_bus_new(&bus);
                if (r < 0)
                        return r;
                r = sd_bus_set_address(bus, x->cfg.address);
                if (r >= 0)
                        r = sd_bus_set_bus_client(bus, 1);
                if (r >= 0)
                        r = sd_bus_start(bus);
        } else if (x->cfg.bus == FM_SYSTEMD_BUS_USER) {
                r = sd_bus_open_user(&bus);
        } else {
                r = sd_bus_open_system(&bus);
        }
        if (r >= 0)
                r = sd_bus_set_exit_on_disconnect(bus, 0);
        if (r >= 0)
                r = sd_bus_attach_event(bus, x->event, SD_EVENT_PRIORITY_NORMAL);
        if (r < 0) {
                sd_bus_close_unref(bus);
                return r;
        }
        x->bus = bus;
        r = sd_bus_add_filter(bus, &x->filter, on_filter, x);
        if (r >= 0)
                r = sd_bus_match_signal_async(bus, &x->match, DEST, MANAGER_PATH, MANAGER_IFACE,
                                              "JobRemoved", on_job_removed, on_match_installed, x);
        if (r >= 0)
                r = sd_bus_call_method_async(bus, &x->subscribe, DEST, MANAGER_PATH, MANAGER_IFACE,
                                             "Subscribe", on_subscribed, x, "");
        if (r < 0)
                drop_bus(x);
        return r;
}

int fm_systemd_new(sd_event *event, const struct fm_systemd_config *cfg, struct fm_actuator *a,
                   struct fm_systemd **ret)
{
        struct fm_systemd *x;
        int r;

        if (!event || !a || !ret || fm_systemd_config_validate(cfg) < 0)
                return -EINVAL;
        x = calloc(1, sizeof *x);
        if (!x)
                return -ENOMEM;
        x->event = sd_event_ref(event);
        x->actuator = a;
        x->cfg = *cfg;
        r = sd_event_add_defer(event, &x->drop, on_drop, x);
        if (r >= 0)
                r = sd_event_source_set_enabled(x->drop, SD_EVENT_OFF);
        if (r >= 0)
                r = connect_bus(x);
        if (r < 0) {
                fm_systemd_free(x);
                return r;
        }
        *ret = x;
        return 0;
}

struct fm_systemd *fm_systemd_free(struct fm_systemd *x)
{
        if (!x)
                return NULL;
        while (x->ops)
                op_free(x->ops);
        drop_bus(x);
        sd_event_source_disable_unref(x->drop);
        sd_event_unref(x->event);
        free(x);
        return NULL;
}

static const struct fm_systemd_units *find_map(const struct fm_systemd *x, const char *deployment)
{
        const struct fm_systemd_units *star = NULL;

        for (uint32_t i = 0; i < x->cfg.n_deployments; i++) {
                const struct fm_systemd_units *u = x->cfg.deployments + i;
                if (strcmp(u->deployment, deployment) == 0)
                        return u;
                if (strcmp(u->deployment, "*") == 0)
                        star = u;
        }
        return star;
}

/*
 * Checks every name the request brings before anything reaches the bus:
 * the unit a restart acts on, or the unit pattern expanded with the
 * request's deployment and versions at the widest index.
 */
static int prepare(struct op *op, const struct fm_action_req *req)
{
        char probe[FM_SYSTEMD_UNIT_NAME_MAX + 1];
        int r;

        if (!fm_text_terminated(req->deployment, sizeof req->deployment) ||
            !fm_text_terminated(req->instance, sizeof req->instance))
                return -EINVAL;
        memcpy(op->deployment, req->deployment, sizeof op->deployment);
        switch (req->action) {
        case FM_ACTION_RESTART:
                r = fm_systemd_expand(op->map->instance_unit, req->deployment, NULL, req->instance,
                                      0, op->unit, sizeof op->unit);
                return r < 0 ? -EINVAL : 0;
        case FM_ACTION_SCALE:
                if (req->arg.scale.to > FM_SYSTEMD_INSTANCES_MAX)
                        return -E2BIG;
                op->scale_from = req->arg.scale.from;
                op->scale_to = req->arg.scale.to;
                if (fm_systemd_expand(op->map->unit, req->deployment, "v", NULL,
                                      FM_SYSTEMD_INSTANCES_MAX, probe, sizeof probe) < 0)
                        return -EINVAL;
                break;
        case FM_ACTION_ROLLBACK:
                if (!strstr(op->map->unit, "{version}"))
                        return -EOPNOTSUPP;
                if (!fm_text_terminated(req->arg.rollback.from, sizeof req->arg.rollback.from) ||
                    !fm_text_terminated(req->arg.rollback.to, sizeof req->arg.rollback.to) ||
                    strcmp(req->arg.rollback.from, req->arg.rollback.to) == 0)
                        return -EINVAL;
                for (int k = 0; k < 2; k++) {
                        const char *v = k ? req->arg.rollback.to : req->arg.rollback.from;
                        size_t n = strlen(v);
                        if (n == 0 || n > FM_VERSION_MAX)
                                return -EINVAL;
                        for (size_t i = 0; i < n; i++)
                                if (!version_char(v[i]))
                                        return -EINVAL;
                        if (fm_systemd_expand(op->map->unit, req->deployment, v, NULL,
                                              FM_SYSTEMD_INSTANCES_MAX, probe, sizeof probe) < 0)
                                return -EINVAL;
                }
                memcpy(op->from, req->arg.rollback.from, sizeof op->from);
                memcpy(op->to, req->arg.rollback.to, sizeof op->to);
                break;
        default:
                return -EOPNOTSUPP;
        }
        r = substitute(op->map->unit, req->deployment, NULL, NULL, 0, true, op->unit);
        return r < 0 ? -EINVAL : 0;
}

static int systemd_start(void *backend, const struct fm_action_req *req, uint64_t attempt_id)
{
        struct fm_systemd *x = backend;
        struct op *op;
        int r;

        if (!x || !req)
                return -EINVAL;
        op = calloc(1, sizeof *op);
        if (!op)
                return -ENOMEM;
        op->x = x;
        op->attempt_id = attempt_id;
        op->action = req->action;
        op->observe = req->observe;
        op->map = find_map(x, req->deployment);
        r = op->map ? prepare(op, req) : -EOPNOTSUPP;
        if (r >= 0 && !x->bus)
                r = connect_bus(x);
        if (r < 0) {
                free(op);
                return r;
        }
        op->next = x->ops;
        x->ops = op;
        x->n_ops++;

        if (op->action != FM_ACTION_RESTART)
                r = list_units(op);
        else if (op->observe)
                r = read_state(op);
        else {
                op->jobs = calloc(1, sizeof *op->jobs);
                if (!op->jobs) {
                        op_free(op);
                        return -ENOMEM;
                }
                memcpy(op->jobs[0].unit, op->unit, sizeof op->unit);
                op->jobs[0].op = op;
                op->jobs[0].verb = V_RESTART;
                op->n_jobs = 1;
                op->n_phases = 1;
                snprintf(op->job_result, sizeof op->job_result, "%s", "unknown");
                r = sd_event_add_time_relative(x->event, &op->timer, CLOCK_MONOTONIC,
                                               (uint64_t)x->cfg.job_timeout * USEC_PER_MS, 0,
                                               on_timeout, op);
                if (r >= 0)
                        r = job_call(op->jobs);
                if (r >= 0)
                        op->jobs[0].state = J_CALLING;
        }
        if (r < 0) {
                op_free(op);
                return r;
        }
        return 0;
}

static void systemd_cancel(void *backend, uint64_t attempt_id)
{
        struct fm_systemd *x = backend;

        for (struct op *op = x->ops; op; op = op->next)
                if (op->attempt_id == attempt_id) {
                        op_free(op);
                        return;
                }
}

const struct fm_backend_ops fm_backend_systemd_ops = {
        .name = "systemd",
        .supports =
                {
                        [FM_ACTION_SCALE] = true,
                        [FM_ACTION_RESTART] = true,
                        [FM_ACTION_ROLLBACK] = true,
                },
        .start = systemd_start,
        .cancel = systemd_cancel,
};
