/* SPDX-License-Identifier: MIT */
#include "tune_grid.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

static bool parse_number(const char *s, size_t len, double *ret)
{
        char buf[64], *end;
        if (len == 0 || len >= sizeof(buf))
                return false;
        memcpy(buf, s, len);
        buf[len] = '\0';
        errno = 0;
        double v = strtod(buf, &end);
        if (errno || *end || !isfinite(v))
                return false;
        *ret = v;
        return true;
}

static bool name_ok(const char *s, size_t len)
{
        if (len == 0 || len > FM_TUNEGRID_NAME_MAX || s[0] == '.' || s[len - 1] == '.')
                return false;
        for (size_t k = 0; k < len; k++) {
                char c = s[k];
                if (c == '.' ? s[k + 1] == '.'
                             : !((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
                        return false;
        }
        return true;
}

int fm_tunegrid_add(struct fm_tunegrid *g, const char *spec)
{
        const char *eq = strchr(spec, '=');
        if (!eq)
                return -EINVAL;
        const char *c1 = strchr(eq + 1, ':');
        const char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2 || strchr(c2 + 1, ':'))
                return -EINVAL;
        struct fm_tunegrid_param p = {0};
        size_t nlen = (size_t)(eq - spec);
        if (!name_ok(spec, nlen) || !parse_number(eq + 1, (size_t)(c1 - eq - 1), &p.lo) ||
            !parse_number(c1 + 1, (size_t)(c2 - c1 - 1), &p.hi) ||
            !parse_number(c2 + 1, strlen(c2 + 1), &p.step) || p.lo > p.hi || !(p.step > 0))
                return -EINVAL;
        memcpy(p.name, spec, nlen);
        p.name[nlen] = '\0';
        for (uint32_t k = 0; k < g->n_params; k++)
                if (strcmp(g->param[k].name, p.name) == 0)
                        return -EINVAL;
        if (g->n_params >= FM_TUNEGRID_PARAMS_MAX)
                return -E2BIG;
        /* a relative slack so that 0.1:0.9:0.1 has nine values, not eight */
        double n = floor((p.hi - p.lo) / p.step + 1e-9) + 1;
        if (n > FM_TUNEGRID_GRID_MAX)
                return -E2BIG;
        p.n = (uint32_t)n;
        uint64_t points = (g->n_params ? g->points : 1) * p.n;
        if (points > FM_TUNEGRID_GRID_MAX)
                return -E2BIG;
        g->param[g->n_params++] = p;
        g->points = points;
        return 0;
}

double fm_tunegrid_value(const struct fm_tunegrid_param *p, uint32_t k)
{
        double v = p->lo + (double)k * p->step;
        /* 0.1 + 2 x 0.1 is 0.30000000000000004: keep 12 significant digits */
        double scale = pow(10, 11 - floor(log10(fmax(fabs(v), 1e-300))));
        double r = v == 0 ? 0 : round(v * scale) / scale;
        return r > p->hi ? p->hi : r;
}

void fm_tunegrid_point(const struct fm_tunegrid *g, uint64_t i, double *values)
{
        for (uint32_t k = g->n_params; k-- > 0;) {
                const struct fm_tunegrid_param *p = &g->param[k];
                values[k] = fm_tunegrid_value(p, (uint32_t)(i % p->n));
                i /= p->n;
        }
}

int fm_tunegrid_set(struct json_object *root, const char *dotted, double value)
{
        char seg[FM_TUNEGRID_NAME_MAX + 1];
        json_object *o = root;

        if (!json_object_is_type(root, json_type_object) || strlen(dotted) > FM_TUNEGRID_NAME_MAX)
                return -EINVAL;
        for (const char *s = dotted;;) {
                const char *dot = strchr(s, '.');
                size_t len = dot ? (size_t)(dot - s) : strlen(s);
                memcpy(seg, s, len);
                seg[len] = '\0';
                if (!dot) {
                        json_object *v = value == floor(value) && fabs(value) < 9e15
                                                 ? json_object_new_int64((int64_t)value)
                                                 : json_object_new_double(value);
                        if (!v)
                                return -ENOMEM;
                        return json_object_object_add(o, seg, v) < 0 ? -ENOMEM : 0;
                }
                json_object *next;
                if (!json_object_object_get_ex(o, seg, &next) ||
                    json_object_is_type(next, json_type_null)) {
                        next = json_object_new_object();
                        if (!next || json_object_object_add(o, seg, next) < 0) {
                                json_object_put(next);
                                return -ENOMEM;
                        }
                } else if (!json_object_is_type(next, json_type_object)) {
                        return -EINVAL;
                }
                o = next;
                s = dot + 1;
        }
}

double fm_tunegrid_objective(double slo_minutes_lost, uint64_t false_actions, double weight)
{
        return slo_minutes_lost + weight * (double)false_actions;
}
