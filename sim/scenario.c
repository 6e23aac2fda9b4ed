/* SPDX-License-Identifier: MIT */
#include "scenario.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

/*
 * The walk keeps the dotted path of the key being read (the same spelling
 * fm_yaml_load() uses in its line map: "fleet.deployments[0].name"), so
 * every message can name its key and line. Values are checked where they
 * are read; the cross-references (load and faults naming deployments and
 * versions) after the fleet is known.
 */

#define PATH_MAX_LEN 256

struct ctx {
        const struct json_object *lines;
        const char *file;
        struct fm_scn_errors *errors;
        unsigned n_errors;
};

static const char *const fault_names[_FM_SCN_FAULT_MAX] = {
        [FM_SCN_FAULT_BAD_VERSION] = "bad_version",
        [FM_SCN_FAULT_ERROR_BURST] = "error_burst",
        [FM_SCN_FAULT_SLOW] = "slow",
        [FM_SCN_FAULT_CRASH] = "crash",
        [FM_SCN_FAULT_CRASH_LOOP] = "crash_loop",
        [FM_SCN_FAULT_DRIFT] = "drift",
        [FM_SCN_FAULT_CUT_OFF] = "cut_off",
        [FM_SCN_FAULT_NOISY] = "noisy",
};

static const char *const metric_names[_FM_SCN_METRIC_MAX] = {
        [FM_SCN_METRIC_TIME_TO_DETECT] = "time_to_detect_s",
        [FM_SCN_METRIC_TIME_TO_MITIGATE] = "time_to_mitigate_s",
        [FM_SCN_METRIC_SLO_MINUTES_LOST] = "slo_minutes_lost",
        [FM_SCN_METRIC_ERROR_BUDGET_BURNT] = "error_budget_burnt",
        [FM_SCN_METRIC_FALSE_ACTIONS] = "false_actions",
        [FM_SCN_METRIC_INSTANCE_HOURS] = "instance_hours",
        [FM_SCN_METRIC_ACTIONS] = "actions",
        [FM_SCN_METRIC_MAX_REPLICAS] = "max_replicas",
        [FM_SCN_METRIC_FINAL_REPLICAS] = "final_replicas",
};

const char *fm_scn_fault_name(enum fm_scn_fault_kind k)
{
        return (unsigned)k < _FM_SCN_FAULT_MAX ? fault_names[k] : NULL;
}

const char *fm_scn_metric_name(enum fm_scn_metric m)
{
        return (unsigned)m < _FM_SCN_METRIC_MAX ? metric_names[m] : NULL;
}

static int line_of(const struct ctx *c, const char *path)
{
        struct json_object *v;
        if (!c->lines || !path ||
            !json_object_object_get_ex((struct json_object *)c->lines, path, &v))
                return 0;
        return json_object_get_int(v);
}

__attribute__((format(printf, 3, 4))) static void report(struct ctx *c, const char *path,
                                                         const char *fmt, ...)
{
        char msg[FM_SCN_TEXT_MAX];
        va_list ap;

        c->n_errors++;
        if (!c->errors)
                return;
        if (c->errors->n >= FM_SCN_ERRORS_MAX) {
                c->errors->dropped++;
                return;
        }
        va_start(ap, fmt);
        (void)vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        char *out = c->errors->line[c->errors->n++];
        int line = line_of(c, path), n;
        if (line > 0 && path && path[0])
                n = snprintf(out, FM_SCN_TEXT_MAX, "%s:%d: %s: %s", c->file, line, path, msg);
        else if (path && path[0])
                n = snprintf(out, FM_SCN_TEXT_MAX, "%s: %s: %s", c->file, path, msg);
        else
                n = snprintf(out, FM_SCN_TEXT_MAX, "%s: %s", c->file, msg);
        if (n >= FM_SCN_TEXT_MAX) /* a long line is cut; mark it */
                memcpy(out + FM_SCN_TEXT_MAX - 4, "...", 4);
}

/* Paths are bounded by the schema's depth; one that does not fit is cut (only messages use it). */
static void join(char *out, const char *base, const char *key)
{
        int n = base[0] ? snprintf(out, PATH_MAX_LEN, "%s.%s", base, key)
                        : snprintf(out, PATH_MAX_LEN, "%s", key);
        if (n < 0)
                out[0] = '\0';
}

/* Every key of obj must be in allowed (NULL-terminated). */
static void check_keys(struct ctx *c, const struct json_object *obj, const char *path,
                       const char *const *allowed)
{
        json_object_object_foreach((struct json_object *)obj, key, val)
        {
                (void)val;
                bool ok = false;
                for (size_t k = 0; allowed[k] && !ok; k++)
                        ok = strcmp(allowed[k], key) == 0;
                if (!ok) {
                        char p[PATH_MAX_LEN];
                        join(p, path, key);
                        report(c, p, "unknown key");
                }
        }
}

static const struct json_object *member(const struct json_object *obj, const char *key)
{
        struct json_object *v = NULL;
        if (!obj || !json_object_object_get_ex((struct json_object *)obj, key, &v))
                return NULL;
        return v;
}

/* obj[key] (NULL when absent), its path in p. */
static const struct json_object *lookup(const struct json_object *obj, const char *path,
                                        const char *key, char *p)
{
        join(p, path, key);
        return member(obj, key);
}

/* The index of s among names[0 .. n), or -1. */
static int name_index(const char *const *names, size_t n, const char *s)
{
        for (size_t k = 0; k < n; k++)
                if (strcmp(s, names[k]) == 0)
                        return (int)k;
        return -1;
}

/* A number in [lo, hi]; absent or null keeps *out. Returns false on an error (reported). */
static bool get_num(struct ctx *c, const struct json_object *obj, const char *path, const char *key,
                    double lo, double hi, double *out)
{
        char p[PATH_MAX_LEN];
        const struct json_object *v = lookup(obj, path, key, p);

        if (!v)
                return true;
        json_type t = json_object_get_type(v);
        if (t != json_type_int && t != json_type_double) {
                report(c, p, "expected a number");
                return false;
        }
        double d = json_object_get_double(v);
        if (!isfinite(d) || d < lo || d > hi) {
                report(c, p, "expected a number in [%g, %g]", lo, hi);
                return false;
        }
        *out = d;
        return true;
}

static bool get_int(struct ctx *c, const struct json_object *obj, const char *path, const char *key,
                    int64_t lo, int64_t hi, int64_t *out)
{
        char p[PATH_MAX_LEN];
        const struct json_object *v = lookup(obj, path, key, p);

        if (!v)
                return true;
        if (json_object_get_type(v) != json_type_int) {
                report(c, p, "expected an integer");
                return false;
        }
        int64_t n = json_object_get_int64(v);
        if (n < lo || n > hi) {
                report(c, p, "expected an integer in [%lld, %lld]", (long long)lo, (long long)hi);
                return false;
        }
        *out = n;
        return true;
}

static bool get_str(struct ctx *c, const struct json_object *obj, const char *path, const char *key,
                    char *out, size_t size, bool required)
{
        char p[PATH_MAX_LEN];
        const struct json_object *v = lookup(obj, path, key, p);

        if (!v) {
                if (required)
                        report(c, path[0] ? path : NULL, "missing key '%s'", key);
                return !required;
        }
        if (json_object_get_type(v) != json_type_string) {
                report(c, p, "expected a string");
                return false;
        }
        const char *s = json_object_get_string((struct json_object *)v);
        if (strlen(s) >= size) {
                report(c, p, "longer than %zu bytes", size - 1);
                return false;
        }
        memcpy(out, s, strlen(s) + 1);
        return true;
}

static bool get_bool(struct ctx *c, const struct json_object *obj, const char *path,
                     const char *key, bool *out)
{
        char p[PATH_MAX_LEN];
        const struct json_object *v = lookup(obj, path, key, p);

        if (!v)
                return true;
        if (json_object_get_type(v) != json_type_boolean) {
                report(c, p, "expected true or false");
                return false;
        }
        *out = json_object_get_boolean(v);
        return true;
}

/* obj[key] when it is of type t (or absent or null: NULL); reports anything else. */
static const struct json_object *get_typed(struct ctx *c, const struct json_object *obj,
                                           const char *path, const char *key, json_type t)
{
        char p[PATH_MAX_LEN];
        const struct json_object *v = lookup(obj, path, key, p);
        if (!v || json_object_get_type(v) == json_type_null)
                return NULL;
        if (json_object_get_type(v) != t) {
                report(c, p, "expected a %s", t == json_type_array ? "list" : "mapping");
                return NULL;
        }
        return v;
}

static const struct json_object *get_map(struct ctx *c, const struct json_object *obj,
                                         const char *path, const char *key)
{
        return get_typed(c, obj, path, key, json_type_object);
}

static const struct json_object *get_list(struct ctx *c, const struct json_object *obj,
                                          const char *path, const char *key)
{
        return get_typed(c, obj, path, key, json_type_array);
}

/* The item at index k of a list, which must be a mapping. */
static const struct json_object *list_item(struct ctx *c, const struct json_object *list,
                                           const char *path, size_t k, char *item_path)
{
        const struct json_object *v = json_object_array_get_idx(list, k);
        if (snprintf(item_path, PATH_MAX_LEN, "%s[%zu]", path, k) < 0)
                item_path[0] = '\0';
        if (!v || json_object_get_type(v) != json_type_object) {
                report(c, item_path, "expected a mapping");
                return NULL;
        }
        return v;
}

static bool scenario_name_valid(const char *s)
{
        size_t n = strlen(s);
        if (n == 0 || n > FM_NAME_MAX)
                return false;
        for (size_t k = 0; k < n; k++)
                if (!((s[k] >= 'a' && s[k] <= 'z') || (s[k] >= '0' && s[k] <= '9') || s[k] == '-' ||
                      s[k] == '_'))
                        return false;
        return true;
}

int fm_scenario_find_deployment(const struct fm_scenario *sc, const char *name)
{
        for (uint32_t d = 0; d < sc->n_deployments; d++)
                if (strcmp(sc->deployments[d].name, name) == 0)
                        return (int)d;
        return -1;
}

int fm_scenario_find_version(const struct fm_scenario *sc, uint32_t d, const char *name)
{
        if (d >= sc->n_deployments)
                return -1;
        for (uint32_t v = 0; v < sc->deployments[d].n_versions; v++)
                if (strcmp(sc->deployments[d].versions[v].name, name) == 0)
                        return (int)v;
        return -1;
}

/* ---- fleet ----------------------------------------------------------------------------------- */

static void parse_version(struct ctx *c, const struct json_object *o, const char *path,
                          struct fm_scn_version *v)
{
        static const char *const keys[] = {
                "name",       "capacity_rps", "base_latency_ms", "service_ms",
                "error_rate", "accuracy",     "positive_rate",   NULL};
        check_keys(c, o, path, keys);
        *v = (struct fm_scn_version){
                .capacity_rps = 100,
                .base_latency_ms = 40,
                .service_ms = 10,
                .error_rate = 0.001,
                .accuracy = 0.9,
                .positive_rate = 0.3,
        };
        if (get_str(c, o, path, "name", v->name, sizeof(v->name), true) && v->name[0] &&
            !fm_version_valid(v->name, strlen(v->name))) {
                char p[PATH_MAX_LEN];
                join(p, path, "name");
                report(c, p, "not a valid version name ([A-Za-z0-9._-]{1,64})");
        }
        (void)get_num(c, o, path, "capacity_rps", 1e-3, 1e7, &v->capacity_rps);
        (void)get_num(c, o, path, "base_latency_ms", 0, 1e6, &v->base_latency_ms);
        (void)get_num(c, o, path, "service_ms", 0, 1e6, &v->service_ms);
        (void)get_num(c, o, path, "error_rate", 0, 1, &v->error_rate);
        (void)get_num(c, o, path, "accuracy", 0.5001, 0.9999, &v->accuracy);
        (void)get_num(c, o, path, "positive_rate", 0.001, 0.999, &v->positive_rate);
}

static void parse_deployment(struct ctx *c, const struct json_object *o, const char *path,
                             struct fm_scn_deployment *d)
{
        static const char *const keys[] = {"name",           "replicas", "version", "cold_start_s",
                                           "feedback_per_s", "versions", NULL};
        char p[PATH_MAX_LEN], vname[FM_VERSION_MAX + 1] = "";
        int64_t replicas = 0;

        check_keys(c, o, path, keys);
        d->cold_start_s = 60;
        d->feedback_per_s = 0;
        if (get_str(c, o, path, "name", d->name, sizeof(d->name), true) &&
            !fm_name_valid(d->name, strlen(d->name))) {
                join(p, path, "name");
                report(c, p, "not a valid deployment name");
        } else if (strlen(d->name) > FM_NAME_MAX - 8) {
                join(p, path, "name");
                report(c, p, "longer than %d bytes (instance names add a suffix)", FM_NAME_MAX - 8);
        }
        if (!member(o, "replicas"))
                report(c, path, "missing key 'replicas'");
        (void)get_int(c, o, path, "replicas", 0, FM_SCN_REPLICAS_MAX, &replicas);
        d->replicas = (uint32_t)replicas;
        (void)get_num(c, o, path, "cold_start_s", 0, 3600, &d->cold_start_s);
        (void)get_num(c, o, path, "feedback_per_s", 0, 1e5, &d->feedback_per_s);
        (void)get_str(c, o, path, "version", vname, sizeof(vname), false);

        join(p, path, "versions");
        const struct json_object *vl = get_list(c, o, path, "versions");
        size_t n = vl ? json_object_array_length(vl) : 0;
        if (n == 0 || n > FM_SCN_VERSIONS_MAX)
                report(c, vl ? p : path, "expected 1 to %d versions", FM_SCN_VERSIONS_MAX);
        for (size_t k = 0; k < n && k < FM_SCN_VERSIONS_MAX; k++) {
                char ip[PATH_MAX_LEN];
                const struct json_object *vo = list_item(c, vl, p, k, ip);
                if (!vo)
                        continue;
                parse_version(c, vo, ip, &d->versions[d->n_versions]);
                for (uint32_t j = 0; j < d->n_versions; j++)
                        if (strcmp(d->versions[j].name, d->versions[d->n_versions].name) == 0)
                                report(c, ip, "version '%s' listed twice", d->versions[j].name);
                d->n_versions++;
        }
        d->initial_version = 0;
        if (vname[0]) {
                bool found = false;
                for (uint32_t j = 0; j < d->n_versions; j++)
                        if (strcmp(d->versions[j].name, vname) == 0) {
                                d->initial_version = j;
                                found = true;
                        }
                if (!found) {
                        join(p, path, "version");
                        report(c, p, "'%s' is not one of the versions", vname);
                }
        }
}

static void parse_load(struct ctx *c, struct fm_scenario *sc, const struct json_object *o,
                       const char *path, bool *seen)
{
        static const char *const keys[] = {"deployment", "kind",  "rps",    "amplitude", "period_s",
                                           "phase_s",    "at_s",  "ramp_s", "to_rps",    "factor",
                                           "duration_s", "noise", NULL};
        static const char *const kinds[] = {"constant", "diurnal", "ramp", "spike"};
        char name[FM_NAME_MAX + 1] = "", kind[16] = "constant", p[PATH_MAX_LEN];

        check_keys(c, o, path, keys);
        if (!get_str(c, o, path, "deployment", name, sizeof(name), true))
                return;
        int d = fm_scenario_find_deployment(sc, name);
        join(p, path, "deployment");
        if (d < 0) {
                report(c, p, "no deployment '%s' in the fleet", name);
                return;
        }
        if (seen[d]) {
                report(c, p, "a second load for '%s'", name);
                return;
        }
        seen[d] = true;
        struct fm_scn_load *l = &sc->deployments[d].load;
        *l = (struct fm_scn_load){
                .rps = 0,
                .amplitude = 0.5,
                .period_s = 86400,
                .factor = 3,
                .ramp_s = 60,
                .duration_s = 600,
                .noise = 0.02,
        };
        if (get_str(c, o, path, "kind", kind, sizeof(kind), false)) {
                int k = name_index(kinds, ARRAY_SIZE(kinds), kind);
                if (k >= 0)
                        l->kind = (enum fm_scn_load_kind)k;
                else {
                        join(p, path, "kind");
                        report(c, p, "expected constant, diurnal, ramp or spike");
                }
        }
        (void)get_num(c, o, path, "rps", 0, 1e8, &l->rps);
        l->to_rps = l->rps;
        (void)get_num(c, o, path, "amplitude", 0, 1, &l->amplitude);
        (void)get_num(c, o, path, "period_s", 60, 1e8, &l->period_s);
        (void)get_num(c, o, path, "phase_s", -1e8, 1e8, &l->phase_s);
        (void)get_num(c, o, path, "at_s", 0, 1e8, &l->at_s);
        (void)get_num(c, o, path, "ramp_s", 0, 1e8, &l->ramp_s);
        (void)get_num(c, o, path, "to_rps", 0, 1e8, &l->to_rps);
        (void)get_num(c, o, path, "factor", 0, 1000, &l->factor);
        (void)get_num(c, o, path, "duration_s", 0, 1e8, &l->duration_s);
        (void)get_num(c, o, path, "noise", 0, 1, &l->noise);
}

static void parse_fleet(struct ctx *c, struct fm_scenario *sc, const struct json_object *fleet)
{
        static const char *const keys[] = {"deployments", "load", NULL};
        bool seen[FM_SCN_DEPLOYMENTS_MAX] = {false};

        if (!fleet) {
                report(c, NULL, "missing key 'fleet'");
                return;
        }
        check_keys(c, fleet, "fleet", keys);
        const struct json_object *dl = get_list(c, fleet, "fleet", "deployments");
        size_t n = dl ? json_object_array_length(dl) : 0;
        if (n == 0 || n > FM_SCN_DEPLOYMENTS_MAX)
                report(c, dl ? "fleet.deployments" : "fleet", "expected 1 to %d deployments",
                       FM_SCN_DEPLOYMENTS_MAX);
        for (size_t k = 0; k < n && k < FM_SCN_DEPLOYMENTS_MAX; k++) {
                char ip[PATH_MAX_LEN];
                const struct json_object *o = list_item(c, dl, "fleet.deployments", k, ip);
                if (!o)
                        continue;
                struct fm_scn_deployment *d = &sc->deployments[sc->n_deployments];
                parse_deployment(c, o, ip, d);
                if (fm_scenario_find_deployment(sc, d->name) >= 0)
                        report(c, ip, "deployment '%s' listed twice", d->name);
                sc->n_deployments++;
        }
        const struct json_object *ll = get_list(c, fleet, "fleet", "load");
        n = ll ? json_object_array_length(ll) : 0;
        for (size_t k = 0; k < n; k++) {
                char ip[PATH_MAX_LEN];
                const struct json_object *o = list_item(c, ll, "fleet.load", k, ip);
                if (o)
                        parse_load(c, sc, o, ip, seen);
        }
}

/* ---- deploys and faults ---------------------------------------------------------------------- */

/* "dep", "dep/version" or "dep/instance": fills deployment, version, instance. */
static bool parse_target(struct ctx *c, const struct fm_scenario *sc, const char *path,
                         const char *target, struct fm_scn_fault *f)
{
        char dep[FM_NAME_MAX + 1];
        const char *slash = strchr(target, '/');
        size_t n = slash ? (size_t)(slash - target) : strlen(target);

        if (n == 0 || n > FM_NAME_MAX) {
                report(c, path, "expected DEPLOYMENT, DEPLOYMENT/VERSION or DEPLOYMENT/INSTANCE");
                return false;
        }
        memcpy(dep, target, n);
        dep[n] = '\0';
        int d = fm_scenario_find_deployment(sc, dep);
        if (d < 0) {
                report(c, path, "no deployment '%s' in the fleet", dep);
                return false;
        }
        f->deployment = (uint32_t)d;
        f->version = -1;
        f->instance[0] = '\0';
        if (!slash)
                return true;
        const char *rest = slash + 1;
        int v = fm_scenario_find_version(sc, (uint32_t)d, rest);
        if (v >= 0) {
                f->version = v;
                return true;
        }
        if (!fm_name_valid(rest, strlen(rest)) || strlen(rest) > FM_NAME_MAX) {
                report(c, path, "'%s' is neither a version of '%s' nor an instance name", rest,
                       dep);
                return false;
        }
        memcpy(f->instance, rest, strlen(rest) + 1);
        return true;
}

static void parse_fault(struct ctx *c, struct fm_scenario *sc, const struct json_object *o,
                        const char *path)
{
        struct fm_scn_fault *f = &sc->faults[sc->n_faults++];
        static const char *const keys[] = {
                "kind",        "target",         "at_s",   "until_s",    "accuracy",
                "error_rate",  "latency_factor", "factor", "up_s",       "down_s",
                "shift",       "ramp_s",         "share",  "load_noise", "latency_noise",
                "error_noise", "sticky",         NULL};
        char kind[32] = "", p[PATH_MAX_LEN];

        check_keys(c, o, path, keys);
        *f = (struct fm_scn_fault){
                .until_s = -1,
                .accuracy = -1,
                .error_rate = -1,
                .latency_factor = 1,
                .factor = 5,
                .up_s = 60,
                .down_s = 20,
                .shift = 1.5,
                .ramp_s = -1,
                .share = 0.5,
                .load_noise = 0.2,
                .latency_noise = 0.3,
                .error_noise = 0.003,
        };
        if (get_str(c, o, path, "kind", kind, sizeof(kind), true)) {
                int k = name_index(fault_names, _FM_SCN_FAULT_MAX, kind);
                if (k >= 0)
                        f->kind = (enum fm_scn_fault_kind)k;
                else {
                        join(p, path, "kind");
                        report(c, p,
                               "expected bad_version, error_burst, slow, crash, crash_loop, "
                               "drift, cut_off or noisy");
                        return;
                }
        } else
                return;
        if (!member(o, "at_s"))
                report(c, path, "missing key 'at_s'");
        (void)get_num(c, o, path, "at_s", 0, 1e8, &f->at_s);
        const struct json_object *u = member(o, "until_s");
        if (u && json_object_get_type(u) != json_type_null &&
            get_num(c, o, path, "until_s", 0, 1e8, &f->until_s) && f->until_s <= f->at_s) {
                join(p, path, "until_s");
                report(c, p, "must be after at_s");
        }
        if (get_str(c, o, path, "target", f->target, sizeof(f->target), true)) {
                join(p, path, "target");
                if (parse_target(c, sc, p, f->target, f)) {
                        bool inst = f->instance[0] != '\0', ver = f->version >= 0;
                        bool ok = true;
                        switch (f->kind) {
                        case FM_SCN_FAULT_BAD_VERSION:
                                ok = ver;
                                break;
                        case FM_SCN_FAULT_SLOW:
                        case FM_SCN_FAULT_CRASH:
                        case FM_SCN_FAULT_CRASH_LOOP:
                                ok = inst;
                                break;
                        case FM_SCN_FAULT_DRIFT:
                                ok = !inst;
                                break;
                        case FM_SCN_FAULT_CUT_OFF:
                        case FM_SCN_FAULT_NOISY:
                                ok = !inst && !ver;
                                break;
                        default:
                                break;
                        }
                        if (!ok)
                                report(c, p, "the wrong kind of target for a %s fault", kind);
                }
        }
        (void)get_num(c, o, path, "accuracy", 0.5001, 0.9999, &f->accuracy);
        (void)get_num(c, o, path, "error_rate", 0, 1, &f->error_rate);
        (void)get_num(c, o, path, "latency_factor", 0.01, 1000, &f->latency_factor);
        (void)get_num(c, o, path, "factor", 0.01, 1000, &f->factor);
        (void)get_num(c, o, path, "up_s", 1, 1e6, &f->up_s);
        (void)get_num(c, o, path, "down_s", 1, 1e6, &f->down_s);
        (void)get_num(c, o, path, "shift", -10, 10, &f->shift);
        (void)get_num(c, o, path, "ramp_s", 0, 1e8, &f->ramp_s);
        (void)get_num(c, o, path, "share", 0, 1, &f->share);
        (void)get_num(c, o, path, "load_noise", 0, 1, &f->load_noise);
        (void)get_num(c, o, path, "latency_noise", 0, 2, &f->latency_noise);
        (void)get_num(c, o, path, "error_noise", 0, 0.5, &f->error_noise);
        (void)get_bool(c, o, path, "sticky", &f->sticky);
        if (f->kind == FM_SCN_FAULT_ERROR_BURST && f->error_rate < 0)
                f->error_rate = 0.2;
        if (f->ramp_s < 0)
                f->ramp_s = f->until_s > f->at_s ? f->until_s - f->at_s : 3600;
}

static void parse_deploy(struct ctx *c, struct fm_scenario *sc, const struct json_object *o,
                         const char *path)
{
        struct fm_scn_deploy *dp = &sc->deploys[sc->n_deploys++];
        static const char *const keys[] = {"at_s", "deployment", "version", "rollout_s", NULL};
        char dep[FM_NAME_MAX + 1] = "", ver[FM_VERSION_MAX + 1] = "", p[PATH_MAX_LEN];

        check_keys(c, o, path, keys);
        dp->at_s = 0;
        dp->rollout_s = 60;
        if (!member(o, "at_s"))
                report(c, path, "missing key 'at_s'");
        (void)get_num(c, o, path, "at_s", 0, 1e8, &dp->at_s);
        (void)get_num(c, o, path, "rollout_s", 0, 1e6, &dp->rollout_s);
        if (!get_str(c, o, path, "deployment", dep, sizeof(dep), true) ||
            !get_str(c, o, path, "version", ver, sizeof(ver), true))
                return;
        int d = fm_scenario_find_deployment(sc, dep);
        if (d < 0) {
                join(p, path, "deployment");
                report(c, p, "no deployment '%s' in the fleet", dep);
                return;
        }
        int v = fm_scenario_find_version(sc, (uint32_t)d, ver);
        if (v < 0) {
                join(p, path, "version");
                report(c, p, "'%s' is not a version of '%s'", ver, dep);
                return;
        }
        dp->deployment = (uint32_t)d;
        dp->version = (uint32_t)v;
}

/* ---- expectations ---------------------------------------------------------------------------- */

static void parse_expect(struct ctx *c, struct fm_scenario *sc, const struct json_object *o,
                         const char *path)
{
        struct fm_scn_expect *e = &sc->expect[sc->n_expect++];
        static const char *const keys[] = {"name",     "action", "alert",   "metric",
                                           "policy",   "reason", "verdict", "after_s",
                                           "before_s", "min",    "max",     NULL};
        char s[64] = "", p[PATH_MAX_LEN];
        int kinds = !!member(o, "action") + !!member(o, "alert") + !!member(o, "metric");

        check_keys(c, o, path, keys);
        *e = (struct fm_scn_expect){.action = -1, .verdict = FM_VERDICT_APPROVED, .before_s = -1};
        if (kinds != 1) {
                report(c, path, "expected exactly one of 'action', 'alert' or 'metric'");
                return;
        }
        (void)get_str(c, o, path, "name", e->name, sizeof(e->name), false);
        (void)get_str(c, o, path, "policy", e->policy, sizeof(e->policy), false);
        (void)get_str(c, o, path, "reason", e->reason, sizeof(e->reason), false);
        (void)get_num(c, o, path, "after_s", 0, 1e8, &e->after_s);
        (void)get_num(c, o, path, "before_s", 0, 1e8, &e->before_s);
        if (member(o, "min")) {
                e->has_min = get_num(c, o, path, "min", -1e12, 1e12, &e->min);
        }
        if (member(o, "max")) {
                e->has_max = get_num(c, o, path, "max", -1e12, 1e12, &e->max);
        }
        if (get_str(c, o, path, "verdict", s, sizeof(s), false) && s[0]) {
                bool ok = false;
                for (int v = 0; v < _FM_VERDICT_MAX; v++)
                        if (strcmp(s, fm_verdict_name((enum fm_verdict)v)) == 0) {
                                e->verdict = v;
                                ok = true;
                        }
                if (!ok) {
                        join(p, path, "verdict");
                        report(c, p, "unknown verdict '%s'", s);
                }
        }
        s[0] = '\0';
        if (member(o, "action")) {
                e->kind = FM_SCN_EXPECT_ACTION;
                if (get_str(c, o, path, "action", s, sizeof(s), true) && strcmp(s, "any") != 0) {
                        for (int a = 0; a < _FM_ACTION_MAX; a++)
                                if (strcmp(s, fm_action_name((enum fm_action)a)) == 0)
                                        e->action = a;
                        if (e->action < 0) {
                                join(p, path, "action");
                                report(c, p, "unknown action '%s'", s);
                        }
                }
        } else if (member(o, "alert")) {
                e->kind = FM_SCN_EXPECT_ALERT;
                e->action = FM_ACTION_ALERT;
                if (get_str(c, o, path, "alert", s, sizeof(s), true) && strcmp(s, "any") != 0)
                        memcpy(e->reason, s, strlen(s) + 1);
        } else {
                e->kind = FM_SCN_EXPECT_METRIC;
                if (get_str(c, o, path, "metric", s, sizeof(s), true)) {
                        int m = name_index(metric_names, _FM_SCN_METRIC_MAX, s);
                        if (m >= 0)
                                e->metric = (enum fm_scn_metric)m;
                        else {
                                join(p, path, "metric");
                                report(c, p, "unknown metric '%s'", s);
                        }
                }
                if (!e->has_min && !e->has_max)
                        report(c, path, "a metric expectation needs 'min' or 'max'");
        }
        if (e->kind != FM_SCN_EXPECT_METRIC && !e->has_min && !e->has_max) {
                e->has_min = true;
                e->min = 1;
        }
        if (!e->name[0]) {
                char bound[64] = "";
                if (e->has_min && e->has_max)
                        (void)snprintf(bound, sizeof(bound), "in [%g, %g]", e->min, e->max);
                else if (e->has_min)
                        (void)snprintf(bound, sizeof(bound), ">= %g", e->min);
                else
                        (void)snprintf(bound, sizeof(bound), "<= %g", e->max);
                if (e->kind == FM_SCN_EXPECT_METRIC)
                        (void)snprintf(e->name, sizeof(e->name), "%s %s", metric_names[e->metric],
                                       bound);
                else
                        (void)snprintf(e->name, sizeof(e->name), "%s%s%s%s%s %s", s[0] ? s : "any",
                                       e->kind == FM_SCN_EXPECT_ALERT ? " alerts" : " actions",
                                       e->reason[0] && e->kind != FM_SCN_EXPECT_ALERT ? " (" : "",
                                       e->kind != FM_SCN_EXPECT_ALERT ? e->reason : "",
                                       e->reason[0] && e->kind != FM_SCN_EXPECT_ALERT ? ")" : "",
                                       bound);
        }
}

/* ---- top level ------------------------------------------------------------------------------- */

typedef void (*item_fn)(struct ctx *c, struct fm_scenario *sc, const struct json_object *o,
                        const char *path);

/*
 * The entries of the list root[key], of which the first max count (what
 * names them in the message about more), each a mapping parsed by fn.
 */
static void parse_items(struct ctx *c, struct fm_scenario *sc, const struct json_object *root,
                        const char *key, size_t max, const char *what, item_fn fn)
{
        const struct json_object *l = get_list(c, root, "", key);
        size_t n = l ? json_object_array_length(l) : 0;
        if (n > max)
                report(c, key, "at most %zu %s", max, what);
        for (size_t k = 0; k < n && k < max; k++) {
                char ip[PATH_MAX_LEN];
                const struct json_object *o = list_item(c, l, key, k, ip);
                if (o)
                        fn(c, sc, o, ip);
        }
}

int fm_scenario_from_json(const struct json_object *root, const struct json_object *lines,
                          const char *file, struct fm_scenario *ret, struct fm_scn_errors *errors)
{
        static const char *const keys[] = {"name",
                                           "description",
                                           "seed",
                                           "start",
                                           "duration_s",
                                           "step_s",
                                           "health_interval_s",
                                           "grace_s",
                                           "config",
                                           "slo",
                                           "actuation",
                                           "fleet",
                                           "deploys",
                                           "faults",
                                           "expect",
                                           NULL};
        struct ctx c = {.lines = lines, .file = file ? file : "(scenario)", .errors = errors};
        struct fm_scenario *sc = ret;

        if (errors)
                memset(errors, 0, sizeof(*errors));
        if (!root || !ret)
                return -EINVAL;
        memset(sc, 0, sizeof(*sc));
        if (json_object_get_type(root) != json_type_object) {
                report(&c, NULL, "the top level must be a mapping");
                return -EINVAL;
        }
        check_keys(&c, root, "", keys);

        if (get_str(&c, root, "", "name", sc->name, sizeof(sc->name), true) &&
            !scenario_name_valid(sc->name))
                report(&c, "name", "expected [a-z0-9_-]{1,63}");
        (void)get_str(&c, root, "", "description", sc->description, sizeof(sc->description), false);
        (void)get_str(&c, root, "", "config", sc->config, sizeof(sc->config), false);
        int64_t seed = 1, start = FM_SCN_DEFAULT_START;
        (void)get_int(&c, root, "", "seed", 0, INT64_MAX, &seed);
        sc->seed = (uint64_t)seed;
        (void)get_int(&c, root, "", "start", 0, (int64_t)1 << 40, &start);
        sc->start_s = start;
        sc->duration_s = 0;
        if (!member(root, "duration_s"))
                report(&c, NULL, "missing key 'duration_s'");
        (void)get_int(&c, root, "", "duration_s", 60, FM_SCN_DURATION_MAX, &sc->duration_s);
        sc->step_s = 10;
        (void)get_int(&c, root, "", "step_s", 1, 300, &sc->step_s);
        sc->health_interval_s = 30;
        (void)get_int(&c, root, "", "health_interval_s", 1, 3600, &sc->health_interval_s);
        sc->grace_s = 600;
        (void)get_num(&c, root, "", "grace_s", 0, 1e7, &sc->grace_s);

        sc->slo =
                (struct fm_scn_slo){.latency_p99_ms = 250, .error_rate = 0.01, .objective = 0.999};
        const struct json_object *slo = get_map(&c, root, "", "slo");
        if (slo) {
                static const char *const skeys[] = {"latency_p99_ms", "error_rate", "objective",
                                                    NULL};
                check_keys(&c, slo, "slo", skeys);
                (void)get_num(&c, slo, "slo", "latency_p99_ms", 0.001, 1e7,
                              &sc->slo.latency_p99_ms);
                (void)get_num(&c, slo, "slo", "error_rate", 0, 1, &sc->slo.error_rate);
                (void)get_num(&c, slo, "slo", "objective", 0.5, 0.999999, &sc->slo.objective);
        }
        sc->actuation = (struct fm_scn_actuation){.delay_s = 2, .rollout_s = 60, .restart_s = 20};
        const struct json_object *act = get_map(&c, root, "", "actuation");
        if (act) {
                static const char *const akeys[] = {"delay_s", "rollout_s", "restart_s", NULL};
                check_keys(&c, act, "actuation", akeys);
                (void)get_num(&c, act, "actuation", "delay_s", 0, 3600, &sc->actuation.delay_s);
                (void)get_num(&c, act, "actuation", "rollout_s", 0, 3600, &sc->actuation.rollout_s);
                (void)get_num(&c, act, "actuation", "restart_s", 0, 3600, &sc->actuation.restart_s);
        }

        parse_fleet(&c, sc, get_map(&c, root, "", "fleet"));

        parse_items(&c, sc, root, "deploys", FM_SCN_DEPLOYS_MAX, "deploys", parse_deploy);
        parse_items(&c, sc, root, "faults", FM_SCN_FAULTS_MAX, "faults", parse_fault);
        parse_items(&c, sc, root, "expect", FM_SCN_EXPECT_MAX, "expectations", parse_expect);
        return c.n_errors ? -EINVAL : 0;
}
