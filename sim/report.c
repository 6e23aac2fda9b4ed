/* SPDX-License-Identifier: MIT */
#include "report.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "util.h"

/* Panel geometry in SVG user units: the plot area and the margins around it. */
#define PANEL_W 600
#define PANEL_H 220
#define PLOT_L 56
#define PLOT_R 14
#define PLOT_T 30
#define PLOT_B 36
#define PLOT_W (PANEL_W - PLOT_L - PLOT_R)
#define PLOT_H (PANEL_H - PLOT_T - PLOT_B)

/* Legend labels taken from the document are cut to this many bytes. */
#define LEGEND_LABEL_MAX 24u
/* Longest deployment name looked up when deciding where an event is drawn. */
#define NAME_MAX_LOOKUP 256u
#define MAX_SERIES (2u + FM_REPORT_TARGETS_MAX)

static const char *const weight_colors[FM_REPORT_TARGETS_MAX] = {
        "#ff7f0e", "#17becf", "#8c564b", "#e377c2", "#bcbd22", "#7f7f7f", "#1f77b4", "#2ca02c",
};

#define COLOR_REPLICAS "#1f77b4"
#define COLOR_READY "#2ca02c"
#define COLOR_P99 "#d62728"
#define COLOR_ERRORS "#9467bd"

/* ---- output ---- */

/* Every write goes through here; the first failure sticks and later writes are skipped. */
struct w {
        FILE *f;
        int err;
};

static void put_n(struct w *w, const char *s, size_t n)
{
        if (w->err == 0 && n > 0 && fwrite(s, 1, n, w->f) != n)
                w->err = -EIO;
}

static void put(struct w *w, const char *s)
{
        put_n(w, s, strlen(s));
}

__attribute__((format(printf, 2, 3))) static void putf(struct w *w, const char *fmt, ...)
{
        va_list ap;

        if (w->err != 0)
                return;
        va_start(ap, fmt);
        if (vfprintf(w->f, fmt, ap) < 0)
                w->err = -EIO;
        va_end(ap);
}

/*
 * Numbers as text. printf's %f follows LC_NUMERIC, and the page must be the
 * same bytes in every locale, so fractions are printed as scaled integers.
 * The struct is returned by value; its array lives until the end of the full
 * expression, long enough to be a printf argument.
 */
struct num {
        char s[64]; /* a 47-character number, a 3-byte sign, the NUL */
};

static struct num fx(double v, int dec)
{
        static const int64_t pow10[] = {1, 10, 100, 1000, 10000, 100000, 1000000};
        struct num n;

        if (!isfinite(v)) {
                snprintf(n.s, sizeof(n.s), "?");
                return n;
        }
        if (dec < 0)
                dec = 0;
        if (dec > 6)
                dec = 6;
        int64_t p = pow10[dec];
        double a = fabs(v) * (double)p;
        if (a > 9e15)
                a = 9e15;
        int64_t q = llround(a);
        const char *sign = v < 0 && q != 0 ? "-" : "";
        if (dec == 0)
                snprintf(n.s, sizeof(n.s), "%s%" PRId64, sign, q);
        else
                snprintf(n.s, sizeof(n.s), "%s%" PRId64 ".%0*" PRId64, sign, q / p, dec, q % p);
        return n;
}

/* With an explicit sign for differences: "+1.5", "−1.5" (U+2212), "0.0". */
static struct num fx_signed(double v, int dec)
{
        struct num a = fx(fabs(v), dec), n;
        bool zero = strspn(a.s, "0.") == strlen(a.s);

        snprintf(n.s, sizeof(n.s), "%s%.47s", zero ? "" : v < 0 ? "\u2212" : "+", a.s);
        return n;
}

/* Seconds as h:mm:ss, rounded to the second. */
static struct num hms(double t)
{
        struct num n;
        int64_t s = llround(fmin(fabs(t), 9e15));

        snprintf(n.s, sizeof(n.s), "%s%" PRId64 ":%02" PRId64 ":%02" PRId64, t < -0.5 ? "-" : "",
                 s / 3600, s / 60 % 60, s % 60);
        return n;
}

/* A duration for people: "45 s", "3 min 05 s", "2 h 00 min". */
static struct num span(double t)
{
        struct num n;
        int64_t s = llround(fmin(fabs(t), 9e15));

        if (s < 60)
                snprintf(n.s, sizeof(n.s), "%" PRId64 " s", s);
        else if (s < 3600)
                snprintf(n.s, sizeof(n.s), "%" PRId64 " min %02" PRId64 " s", s / 60, s % 60);
        else
                snprintf(n.s, sizeof(n.s), "%" PRId64 " h %02" PRId64 " min", s / 3600,
                         s / 60 % 60);
        return n;
}

/*
 * HTML-escape s[0..len). Safe in text and in double- or single-quoted
 * attributes. Control characters other than tab and newline (not allowed in
 * HTML text) become U+FFFD. More than `max` bytes are cut at a UTF-8
 * boundary and marked with an ellipsis.
 */
static void esc_n(struct w *w, const char *s, size_t len, size_t max)
{
        bool cut = false;
        size_t from = 0;

        if (len > max) {
                len = max;
                while (len > 0 && ((unsigned char)s[len] & 0xC0) == 0x80)
                        len--;
                cut = true;
        }
        for (size_t i = 0; i < len; i++) {
                unsigned char c = (unsigned char)s[i];
                const char *rep;

                switch (c) {
                case '&':
                        rep = "&amp;";
                        break;
                case '<':
                        rep = "&lt;";
                        break;
                case '>':
                        rep = "&gt;";
                        break;
                case '"':
                        rep = "&quot;";
                        break;
                case '\'':
                        rep = "&#39;";
                        break;
                default:
                        rep = (c < 0x20 && c != '\t' && c != '\n') || c == 0x7f ? "\uFFFD" : NULL;
                        break;
                }
                if (rep) {
                        put_n(w, s + from, i - from);
                        put(w, rep);
                        from = i + 1;
                }
        }
        put_n(w, s + from, len - from);
        if (cut)
                put(w, "\u2026");
}

static void esc(struct w *w, const char *s, size_t max)
{
        esc_n(w, s, strlen(s), max);
}

/* ---- reading the document ---- */

static struct json_object *get(const struct json_object *o, const char *key)
{
        struct json_object *v = NULL;

        if (!o || !json_object_is_type(o, json_type_object))
                return NULL;
        if (!json_object_object_get_ex(o, key, &v))
                return NULL;
        return v;
}

static bool is(const struct json_object *o, enum json_type t)
{
        return o && json_object_is_type(o, t);
}

static bool num(const struct json_object *v, double *ret)
{
        if (!is(v, json_type_int) && !is(v, json_type_double))
                return false;
        double d = json_object_get_double(v);
        if (!isfinite(d))
                return false;
        *ret = d;
        return true;
}

static bool num_at(const struct json_object *o, const char *key, double *ret)
{
        return num(get(o, key), ret);
}

/*
 * A document value shown as text: strings escaped, integers and booleans
 * printed, anything else (missing, null, object) as `dflt`, a literal.
 */
static void text(struct w *w, const struct json_object *v, size_t max, const char *dflt)
{
        if (is(v, json_type_string))
                esc_n(w, json_object_get_string((struct json_object *)v),
                      (size_t)json_object_get_string_len(v), max);
        else if (is(v, json_type_int) && json_object_get_int64(v) == INT64_MAX)
                putf(w, "%" PRIu64, json_object_get_uint64(v)); /* a uint64 seed */
        else if (is(v, json_type_int))
                putf(w, "%" PRId64, json_object_get_int64(v));
        else if (is(v, json_type_double) && isfinite(json_object_get_double(v)))
                put(w, fx(json_object_get_double(v), 3).s);
        else if (is(v, json_type_boolean))
                put(w, json_object_get_boolean(v) ? "true" : "false");
        else
                put(w, dflt);
}

static bool str_eq(const struct json_object *v, const char *s)
{
        return is(v, json_type_string) &&
               strcmp(json_object_get_string((struct json_object *)v), s) == 0;
}

struct run {
        const struct json_object *doc;
        const struct json_object *deps; /* series.deployments */
        size_t n;                       /* samples */
        double *t;                      /* series.t_s */
        double end;                     /* duration_s, or the last sample time */
        double slo_lat, slo_err;        /* NAN when the document has none */
};

static int check_doc(const struct json_object *doc, bool top)
{
        const struct json_object *series = get(doc, "series");
        const struct json_object *t = get(series, "t_s");
        const struct json_object *deps = get(series, "deployments");
        double d;

        if (!is(doc, json_type_object) || !is(t, json_type_array) || !is(deps, json_type_object))
                return -EINVAL;
        size_t n = json_object_array_length(t);
        if (n > FM_REPORT_SAMPLES_MAX)
                return -E2BIG;
        for (size_t i = 0; i < n; i++)
                if (!num(json_object_array_get_idx(t, i), &d))
                        return -EINVAL;
        json_object_object_foreach((struct json_object *)deps, name, dep)
        {
                (void)name;
                if (!is(dep, json_type_object))
                        return -EINVAL;
        }
        const struct json_object *base = get(doc, "baseline");
        if (top && base && !is(base, json_type_null))
                return check_doc(base, false);
        return 0;
}

static void run_done(struct run *r)
{
        free(r->t);
        r->t = NULL;
}

/* The document has passed check_doc(). */
static int run_load(struct run *r, const struct json_object *doc)
{
        const struct json_object *series = get(doc, "series");
        const struct json_object *t = get(series, "t_s");
        const struct json_object *slo = get(doc, "slo");
        double d;

        *r = (struct run){.doc = doc, .deps = get(series, "deployments")};
        r->n = json_object_array_length(t);
        r->t = calloc(r->n ? r->n : 1, sizeof(double));
        if (!r->t)
                return -ENOMEM;
        for (size_t i = 0; i < r->n; i++) {
                (void)num(json_object_array_get_idx(t, i), &r->t[i]);
                r->end = fmax(r->end, r->t[i]);
        }
        if (num_at(doc, "duration_s", &d) && d > 0)
                r->end = fmax(r->end, d);
        r->slo_lat = num_at(slo, "latency_p99_ms", &d) && d > 0 ? d : NAN;
        r->slo_err = num_at(slo, "error_rate", &d) && d >= 0 ? d : NAN;
        return 0;
}

/*
 * The values of a metric array as doubles, one per sample, NAN for a gap
 * (null, non-number, past the end of the array). *ret is NULL when the
 * array is absent.
 */
static int load_vals(const struct run *r, const struct json_object *arr, double scale, double **ret)
{
        double d;

        *ret = NULL;
        if (!is(arr, json_type_array))
                return 0;
        double *v = malloc((r->n ? r->n : 1) * sizeof(double));
        if (!v)
                return -ENOMEM;
        size_t len = json_object_array_length(arr);
        for (size_t i = 0; i < r->n; i++)
                v[i] = i < len && num(json_object_array_get_idx(arr, i), &d) ? d * scale : NAN;
        *ret = v;
        return 0;
}

/*
 * Whether an event that names deployment ev[0..len) belongs on the charts of
 * `dep`: when it names `dep`, or when it names nothing the run charts (a
 * fleet-wide event, or an unknown name), so that no event goes unseen.
 */
static bool applies(const struct run *r, const char *ev, size_t len, const char *dep)
{
        char key[NAME_MAX_LOOKUP];

        if (!ev || len == 0)
                return true;
        if (strlen(dep) == len && memcmp(dep, ev, len) == 0)
                return true;
        if (len >= sizeof(key))
                return true;
        memcpy(key, ev, len);
        key[len] = '\0';
        return get(r->deps, key) == NULL;
}

/* ---- charts ---- */

struct cseries {
        const char *label; /* from the document or a literal; escaped either way */
        const char *color;
        bool step;
        bool wide;    /* drawn wider, under the series after it, so equal values show both */
        double *v[2]; /* per panel; NULL when that run lacks the series */
};

struct chart {
        const char *title;
        const char *unit; /* y axis label */
        const char *slo_unit;
        double top, step; /* y axis: 0..top, ticks every step */
        int dec;          /* decimals of the y tick labels */
        int slo_dec;
        double xmax;
        double slo[2]; /* per panel, in chart units; NAN for none */
        size_t ns;
        struct cseries s[MAX_SERIES];
};

static void chart_done(struct chart *c)
{
        for (size_t i = 0; i < c->ns; i++) {
                free(c->s[i].v[0]);
                free(c->s[i].v[1]);
        }
        c->ns = 0;
}

/* A y axis with 3 to 5 ticks at 1, 2 or 5 times a power of ten that holds max. */
static void nice_axis(struct chart *c, double max, bool integer)
{
        if (!(max > 0))
                max = integer ? 1 : 1e-3;
        double raw = max / 4;
        double p = pow(10, floor(log10(raw)));
        double m = raw / p;
        double step = (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p;
        if (integer && step < 1)
                step = 1;
        c->step = step;
        c->top = ceil(max / step - 1e-9) * step;
        int dec = (int)-floor(log10(step) + 1e-9);
        c->dec = dec > 0 ? dec : 0;
}

static double px_x(const struct chart *c, double t)
{
        double x = t / c->xmax;
        return PLOT_L + fmin(fmax(x, 0), 1) * PLOT_W;
}

static double px_y(const struct chart *c, double v)
{
        double y = v / c->top;
        return PLOT_T + PLOT_H - fmin(fmax(y, 0), 1) * PLOT_H;
}

/* Path writer: a null sample lifts the pen; a lone point is drawn as a dot. */
struct pen {
        struct w *w;
        const struct chart *c;
        bool step;
        size_t seg; /* points in the current subpath */
};

static void pen_point(struct pen *p, double t, double v)
{
        struct num x = fx(px_x(p->c, t), 1), y = fx(px_y(p->c, v), 1);

        if (p->seg == 0)
                putf(p->w, "M%s %s", x.s, y.s);
        else if (p->step)
                putf(p->w, "H%sV%s", x.s, y.s);
        else
                putf(p->w, "L%s %s", x.s, y.s);
        p->seg++;
}

static void pen_lift(struct pen *p)
{
        if (p->seg == 1)
                put(p->w, "h0");
        p->seg = 0;
}

/*
 * Down-sampling: with more samples than `budget`, the samples are cut into
 * budget/2 buckets by index and each bucket gives its smallest and its
 * largest value, in time order. Peaks survive (a spike is one sample wide)
 * and the result depends only on the input. Gaps survive too: a null before,
 * between or after the two points of a bucket lifts the pen there.
 */
static void draw_values(struct pen *p, const double *t, const double *v, size_t n, size_t budget)
{
        if (n <= budget) {
                for (size_t i = 0; i < n; i++) {
                        if (isnan(v[i]))
                                pen_lift(p);
                        else
                                pen_point(p, t[i], v[i]);
                }
                pen_lift(p);
                return;
        }
        size_t nb = budget / 2 ? budget / 2 : 1;
        for (size_t b = 0; b < nb; b++) {
                size_t lo = (size_t)((uint64_t)b * n / nb),
                       hi = (size_t)((uint64_t)(b + 1) * n / nb);
                size_t imin = SIZE_MAX, imax = SIZE_MAX;
                for (size_t i = lo; i < hi; i++) {
                        if (isnan(v[i]))
                                continue;
                        if (imin == SIZE_MAX || v[i] < v[imin])
                                imin = i;
                        if (imax == SIZE_MAX || v[i] > v[imax])
                                imax = i;
                }
                if (imin == SIZE_MAX) {
                        pen_lift(p);
                        continue;
                }
                size_t a = imin < imax ? imin : imax, z = imin < imax ? imax : imin;
                bool before = false, between = false, after = false;
                for (size_t i = lo; i < hi; i++)
                        if (isnan(v[i])) {
                                before |= i < a;
                                between |= i > a && i < z;
                                after |= i > z;
                        }
                if (before)
                        pen_lift(p);
                pen_point(p, t[a], v[a]);
                if (between)
                        pen_lift(p);
                if (z != a)
                        pen_point(p, t[z], v[z]);
                if (after)
                        pen_lift(p);
        }
        pen_lift(p);
}

static bool any_value(const double *v, size_t n)
{
        for (size_t i = 0; v && i < n; i++)
                if (!isnan(v[i]))
                        return true;
        return false;
}

/* One panel of a chart: the run it draws and which of the chart's value sets it uses. */
struct panel {
        const struct run *r;
        const char *dep;
        unsigned idx; /* 0: the run, 1: its baseline */
};

/* Time axis: seconds, minutes, hours or days by run length, at most about 8 ticks. */
static void x_axis(struct w *w, const struct chart *c)
{
        static const double steps[] = {1,    2,     5,     10,    15,    30,     60,
                                       120,  300,   600,   900,   1200,  1800,   3600,
                                       7200, 10800, 21600, 43200, 86400, 172800, 604800};
        double unit = 1, step = steps[ARRAY_SIZE(steps) - 1];
        const char *uname = "s";

        if (c->xmax > 72 * 3600)
                unit = 86400, uname = "d";
        else if (c->xmax > 3 * 3600)
                unit = 3600, uname = "h";
        else if (c->xmax > 300)
                unit = 60, uname = "min";
        for (size_t i = 0; i < ARRAY_SIZE(steps); i++)
                if (c->xmax / steps[i] <= 8) {
                        step = steps[i];
                        break;
                }
        while (c->xmax / step > 8)
                step *= 2;
        double f = step / unit;
        int dec = f == floor(f) ? 0 : f * 10 == floor(f * 10) ? 1 : 2;
        for (int64_t k = 0; k * step <= c->xmax * (1 + 1e-9); k++) {
                struct num x = fx(px_x(c, (double)k * step), 1);
                putf(w, "<line class=\"grid\" x1=\"%s\" x2=\"%s\" y1=\"%d\" y2=\"%d\"/>", x.s, x.s,
                     PLOT_T, PLOT_T + PLOT_H);
                putf(w,
                     "<line class=\"tick\" x1=\"%s\" x2=\"%s\" y1=\"%d\" y2=\"%d\"/>"
                     "<text x=\"%s\" y=\"%d\" text-anchor=\"middle\">%s</text>",
                     x.s, x.s, PLOT_T + PLOT_H, PLOT_T + PLOT_H + 4, x.s, PLOT_T + PLOT_H + 15,
                     fx((double)k * step / unit, dec).s);
        }
        putf(w, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">time (%s)</text>",
             PLOT_L + PLOT_W / 2, PANEL_H - 4, uname);
}

static void y_axis(struct w *w, const struct chart *c)
{
        for (int64_t k = 0; k * c->step <= c->top * (1 + 1e-9); k++) {
                double v = (double)k * c->step;
                struct num y = fx(px_y(c, v), 1);
                putf(w,
                     "<line class=\"grid\" x1=\"%d\" x2=\"%d\" y1=\"%s\" y2=\"%s\"/>"
                     "<text x=\"%d\" y=\"%s\" text-anchor=\"end\">%s</text>",
                     PLOT_L, PLOT_L + PLOT_W, y.s, y.s, PLOT_L - 5, fx(px_y(c, v) + 3.5, 1).s,
                     fx(v, c->dec).s);
        }
        putf(w, "<text x=\"12\" y=\"%d\" text-anchor=\"middle\" transform=\"rotate(-90 12 %d)\">",
             PLOT_T + PLOT_H / 2, PLOT_T + PLOT_H / 2);
        put(w, c->unit);
        put(w, "</text>");
}

/* Where an event names its deployment: a fault's target up to the first '/'. */
static void event_dep(const struct json_object *v, bool prefix, const char **ret, size_t *ret_len)
{
        *ret = NULL;
        *ret_len = 0;
        if (!is(v, json_type_string))
                return;
        const char *s = json_object_get_string((struct json_object *)v);
        size_t n = (size_t)json_object_get_string_len(v);
        if (prefix) {
                const char *slash = memchr(s, '/', n);
                if (slash)
                        n = (size_t)(slash - s);
        }
        *ret = s;
        *ret_len = n;
}

static unsigned faults(struct w *w, const struct chart *c, const struct panel *pn)
{
        const struct json_object *fs = get(pn->r->doc, "faults");
        unsigned drawn = 0;

        if (!is(fs, json_type_array))
                return 0;
        size_t n = json_object_array_length(fs);
        for (size_t i = 0; i < n && i < FM_REPORT_ROWS_MAX; i++) {
                const struct json_object *f = json_object_array_get_idx(fs, i);
                const char *d;
                size_t dlen;
                double t0, t1;

                if (!num_at(f, "t_s", &t0))
                        continue;
                if (!num_at(f, "until_s", &t1))
                        t1 = pn->r->end;
                event_dep(get(f, "target"), true, &d, &dlen);
                if (!applies(pn->r, d, dlen, pn->dep))
                        continue;
                double x0 = px_x(c, t0), x1 = px_x(c, fmax(t1, t0));
                putf(w,
                     "<rect class=\"fault\" x=\"%s\" y=\"%d\" width=\"%s\" height=\"%d\"><title>",
                     fx(x0, 1).s, PLOT_T, fx(fmax(x1 - x0, 1), 1).s, PLOT_H);
                put(w, "fault ");
                text(w, get(f, "kind"), FM_REPORT_STRING_MAX, "?");
                put(w, " on ");
                text(w, get(f, "target"), FM_REPORT_STRING_MAX, "?");
                putf(w, ", %s", hms(t0).s);
                if (num_at(f, "until_s", &t1))
                        putf(w, " to %s", hms(t1).s);
                else
                        put(w, " to the end");
                put(w, "</title></rect>");
                drawn++;
        }
        return drawn;
}

static bool executed(const struct json_object *a)
{
        return str_eq(get(a, "verdict"), "approved") && str_eq(get(a, "outcome"), "ok");
}

static bool false_action(const struct json_object *a)
{
        const struct json_object *f = get(a, "false");
        return is(f, json_type_boolean) && json_object_get_boolean(f);
}

/* One line of text naming an action, for tooltips. */
static void action_line(struct w *w, const struct json_object *a, size_t i)
{
        double t;

        putf(w, "#%zu at %s: ", i + 1, num_at(a, "t_s", &t) ? hms(t).s : "?");
        text(w, get(a, "policy"), FM_REPORT_STRING_MAX, "?");
        put(w, " ");
        text(w, get(a, "action"), FM_REPORT_STRING_MAX, "?");
        put(w, " ");
        text(w, get(a, "deployment"), FM_REPORT_STRING_MAX, "");
        put(w, " ");
        text(w, get(a, "target"), FM_REPORT_STRING_MAX, "");
        put(w, ", ");
        text(w, get(a, "verdict"), FM_REPORT_STRING_MAX, "?");
        put(w, ", ");
        text(w, get(a, "outcome"), FM_REPORT_STRING_MAX, "?");
        if (false_action(a))
                put(w, ", false action");
        put(w, ": ");
        text(w, get(a, "reason"), FM_REPORT_STRING_MAX, "");
}

/*
 * Action markers. Their number labels are thinned so they do not pile up: a
 * marker whose label would touch the last label drawn keeps its line and
 * tooltip but no label (a digit is about 6 units wide at the chart's font
 * size). Past FM_REPORT_MARKERS_MAX the panel says how many were left out.
 */
#define DIGIT_W 6.0

static unsigned markers(struct w *w, const struct chart *c, const struct panel *pn)
{
        const struct json_object *as = get(pn->r->doc, "actions");
        unsigned drawn = 0;
        size_t skipped = 0;
        double label_end = -INFINITY;

        if (!is(as, json_type_array))
                return 0;
        size_t n = json_object_array_length(as);
        for (size_t i = 0; i < n; i++) {
                const struct json_object *a = json_object_array_get_idx(as, i);
                const char *d;
                size_t dlen;
                double t;

                if (!num_at(a, "t_s", &t))
                        continue;
                event_dep(get(a, "deployment"), false, &d, &dlen);
                if (!applies(pn->r, d, dlen, pn->dep))
                        continue;
                if (drawn >= FM_REPORT_MARKERS_MAX) {
                        skipped++;
                        continue;
                }
                double px = px_x(c, t);
                struct num x = fx(px, 1);
                putf(w, "<g class=\"action%s%s\"><title>", executed(a) ? "" : " declined",
                     false_action(a) ? " false" : "");
                action_line(w, a, i);
                putf(w, "</title><line x1=\"%s\" x2=\"%s\" y1=\"%d\" y2=\"%d\"/>", x.s, x.s, PLOT_T,
                     PLOT_T + PLOT_H);
                if (px >= label_end + 4) {
                        char label[24];
                        int len = snprintf(label, sizeof(label), "%zu", i + 1);
                        putf(w, "<text x=\"%s\" y=\"%d\">%s</text>", fx(px + 2, 1).s, PLOT_T + 9,
                             label);
                        label_end = px + 2 + DIGIT_W * len;
                }
                put(w, "</g>");
                drawn++;
        }
        if (skipped > 0)
                putf(w,
                     "<text class=\"note\" x=\"%d\" y=\"%d\" text-anchor=\"end\">%zu more "
                     "actions not drawn</text>",
                     PLOT_L + PLOT_W - 3, PLOT_T + PLOT_H - 4, skipped);
        return drawn;
}

enum swatch { SW_LINE, SW_DASH, SW_BOX, SW_MARK };

struct legend {
        struct w *w;
        int x;
};

static size_t utf8_chars(const char *s, size_t n)
{
        size_t k = 0;
        for (size_t i = 0; i < n; i++)
                k += ((unsigned char)s[i] & 0xC0) != 0x80;
        return k;
}

static void legend_item(struct legend *l, enum swatch sw, const char *color, const char *label)
{
        size_t n = strlen(label);
        size_t chars = utf8_chars(label, n < LEGEND_LABEL_MAX ? n : LEGEND_LABEL_MAX + 1);
        int width = 22 + (int)chars * 6 + 12;
        int y = 14;

        if (l->x + width > PANEL_W)
                return;
        switch (sw) {
        case SW_LINE:
                putf(l->w,
                     "<line class=\"series\" stroke=\"%s\" x1=\"%d\" x2=\"%d\" y1=\"%d\" "
                     "y2=\"%d\"/>",
                     color, l->x, l->x + 16, y - 4, y - 4);
                break;
        case SW_DASH:
                putf(l->w, "<line class=\"slo\" x1=\"%d\" x2=\"%d\" y1=\"%d\" y2=\"%d\"/>", l->x,
                     l->x + 16, y - 4, y - 4);
                break;
        case SW_BOX:
                putf(l->w, "<rect class=\"fault\" x=\"%d\" y=\"%d\" width=\"16\" height=\"9\"/>",
                     l->x, y - 9);
                break;
        case SW_MARK:
                putf(l->w, "<g class=\"key\"><line x1=\"%d\" x2=\"%d\" y1=\"%d\" y2=\"%d\"/></g>",
                     l->x + 8, l->x + 8, y - 10, y + 1);
                break;
        }
        putf(l->w, "<text x=\"%d\" y=\"%d\">", l->x + 22, y);
        esc(l->w, label, LEGEND_LABEL_MAX);
        put(l->w, "</text>");
        l->x += width;
}

static void panel(struct w *w, const struct chart *c, const struct panel *pn)
{
        const double slo = c->slo[pn->idx];
        bool data = false;

        putf(w,
             "<svg class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 %d %d\" "
             "width=\"%d\" height=\"%d\" role=\"img\" aria-label=\"",
             PANEL_W, PANEL_H, PANEL_W, PANEL_H);
        put(w, c->title);
        put(w, pn->idx ? ", baseline, " : ", ");
        esc(w, pn->dep, FM_REPORT_STRING_MAX);
        putf(w, "\"><rect class=\"plot\" x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\"/>", PLOT_L,
             PLOT_T, PLOT_W, PLOT_H);
        unsigned nf = faults(w, c, pn);
        y_axis(w, c);
        x_axis(w, c);
        if (!isnan(slo)) {
                struct num y = fx(px_y(c, slo), 1);
                putf(w,
                     "<line class=\"slo\" x1=\"%d\" x2=\"%d\" y1=\"%s\" y2=\"%s\"><title>SLO "
                     "%s%s</title></line>",
                     PLOT_L, PLOT_L + PLOT_W, y.s, y.s, fx(slo, c->slo_dec).s, c->slo_unit);
                putf(w,
                     "<text class=\"slo-label\" x=\"%d\" y=\"%s\" text-anchor=\"end\">SLO</text>",
                     PLOT_L + PLOT_W - 3, fx(px_y(c, slo) - 3, 1).s);
        }
        size_t budget = FM_REPORT_CHART_POINTS_MAX / (c->ns ? c->ns : 1);
        for (size_t k = 0; k < c->ns; k++) {
                const struct cseries *s = &c->s[k];
                const double *v = s->v[pn->idx];
                if (!any_value(v, pn->r->n))
                        continue;
                data = true;
                putf(w, "<path class=\"series%s\" stroke=\"%s\" d=\"", s->wide ? " wide" : "",
                     s->color);
                struct pen p = {.w = w, .c = c, .step = s->step};
                draw_values(&p, pn->r->t, v, pn->r->n, budget);
                put(w, "\"><title>");
                esc(w, s->label, FM_REPORT_STRING_MAX);
                put(w, "</title></path>");
        }
        unsigned nm = markers(w, c, pn);
        if (!data)
                putf(w,
                     "<text class=\"nodata\" x=\"%d\" y=\"%d\" text-anchor=\"middle\">no "
                     "data</text>",
                     PLOT_L + PLOT_W / 2, PLOT_T + PLOT_H / 2);

        struct legend l = {.w = w, .x = PLOT_L};
        for (size_t k = 0; k < c->ns; k++)
                legend_item(&l, SW_LINE, c->s[k].color, c->s[k].label);
        if (!isnan(slo))
                legend_item(&l, SW_DASH, NULL, "SLO");
        if (nf > 0)
                legend_item(&l, SW_BOX, NULL, "fault");
        if (nm > 0)
                legend_item(&l, SW_MARK, NULL, "action");
        put(w, "</svg>");
}

enum metric { M_REPLICAS, M_P99, M_ERRORS, M_WEIGHTS, _M_MAX };

struct ctx {
        struct w w;
        struct run run[2];
        unsigned nruns;
};

static int add_series(struct chart *c, const struct ctx *x, const struct json_object *const *dep,
                      const char *label, const char *color, bool step, const char *group,
                      const char *key, double scale)
{
        struct cseries *s = &c->s[c->ns++];

        *s = (struct cseries){.label = label, .color = color, .step = step};
        for (unsigned p = 0; p < x->nruns; p++) {
                const struct json_object *o = group ? get(dep[p], group) : dep[p];
                int r = load_vals(&x->run[p], get(o, key), scale, &s->v[p]);
                if (r < 0)
                        return r;
        }
        return 0;
}

static bool have_target(const struct chart *c, const char *name)
{
        for (size_t k = 0; k < c->ns; k++)
                if (strcmp(c->s[k].label, name) == 0)
                        return true;
        return false;
}

static int chart_build(const struct ctx *x, const char *name, enum metric m, struct chart *c)
{
        const struct json_object *dep[2] = {NULL, NULL};
        double max = 0;
        int r = 0;

        *c = (struct chart){.slo = {NAN, NAN}, .unit = "", .slo_unit = ""};
        for (unsigned p = 0; p < x->nruns; p++) {
                dep[p] = get(x->run[p].deps, name);
                c->xmax = fmax(c->xmax, x->run[p].end);
        }
        if (!(c->xmax > 0))
                c->xmax = 1;

        switch (m) {
        case M_REPLICAS:
                c->title = "Replicas";
                c->unit = "instances";
                r = add_series(c, x, dep, "replicas", COLOR_REPLICAS, true, NULL, "replicas", 1);
                c->s[0].wide = true;
                if (r >= 0)
                        r = add_series(c, x, dep, "ready", COLOR_READY, true, NULL, "ready", 1);
                break;
        case M_P99:
                c->title = "p99 latency";
                c->unit = "p99 (ms)";
                c->slo_unit = " ms";
                r = add_series(c, x, dep, "p99", COLOR_P99, false, NULL, "p99_ms", 1);
                for (unsigned p = 0; p < x->nruns; p++)
                        c->slo[p] = x->run[p].slo_lat;
                break;
        case M_ERRORS:
                c->title = "Error rate";
                c->unit = "errors (%)";
                c->slo_unit = " %";
                c->slo_dec = 2;
                r = add_series(c, x, dep, "error rate", COLOR_ERRORS, false, NULL, "error_rate",
                               100);
                for (unsigned p = 0; p < x->nruns; p++)
                        c->slo[p] = x->run[p].slo_err * 100;
                break;
        case M_WEIGHTS:
                c->title = "Traffic weights";
                c->unit = "weight (%)";
                for (unsigned p = 0; p < x->nruns && r >= 0; p++) {
                        const struct json_object *ws = get(dep[p], "weights");
                        if (!is(ws, json_type_object))
                                continue;
                        json_object_object_foreach((struct json_object *)ws, target, arr)
                        {
                                (void)arr;
                                if (c->ns >= FM_REPORT_TARGETS_MAX)
                                        break;
                                if (have_target(c, target))
                                        continue;
                                r = add_series(c, x, dep, target, weight_colors[c->ns], true,
                                               "weights", target, 1);
                                if (r < 0)
                                        break;
                        }
                }
                break;
        default:
                return -EINVAL;
        }
        if (r < 0) {
                chart_done(c);
                return r;
        }

        if (m == M_WEIGHTS) {
                c->top = 100;
                c->step = 25;
                c->dec = 0;
                return 0;
        }
        for (size_t k = 0; k < c->ns; k++)
                for (unsigned p = 0; p < x->nruns; p++)
                        for (size_t i = 0; c->s[k].v[p] && i < x->run[p].n; i++)
                                if (!isnan(c->s[k].v[p][i]))
                                        max = fmax(max, c->s[k].v[p][i]);
        for (unsigned p = 0; p < x->nruns; p++)
                if (!isnan(c->slo[p]))
                        max = fmax(max, c->slo[p] * 1.15);
        nice_axis(c, max, m == M_REPLICAS);
        return 0;
}

static void caption(struct w *w, const struct run *r, unsigned idx)
{
        const struct json_object *ctl = get(r->doc, "controller");

        put(w, idx ? "baseline: " : "");
        if (is(ctl, json_type_boolean))
                put(w, json_object_get_boolean(ctl) ? "with controller" : "without controller");
        else
                put(w, idx ? "the run without its controller" : "the run");
}

static int deployment(struct ctx *x, const char *name)
{
        struct w *w = &x->w;

        put(w, "<section class=\"dep\"><h3>Deployment ");
        esc(w, name, FM_REPORT_STRING_MAX);
        put(w, "</h3>\n");
        for (int m = 0; m < _M_MAX; m++) {
                struct chart c;
                int r = chart_build(x, name, (enum metric)m, &c);
                if (r < 0)
                        return r;
                putf(w, "<h4>%s</h4>\n<div class=\"row\">", c.title);
                for (unsigned p = 0; p < x->nruns; p++) {
                        struct panel pn = {.r = &x->run[p], .dep = name, .idx = p};
                        put(w, "<figure class=\"panel\"><figcaption>");
                        caption(w, &x->run[p], p);
                        put(w, "</figcaption>");
                        panel(w, &c, &pn);
                        put(w, "</figure>");
                }
                put(w, "</div>\n");
                chart_done(&c);
        }
        put(w, "</section>\n");
        return 0;
}

/* ---- tables ---- */

enum kind { K_SPAN, K_MIN, K_PCT, K_CNT, K_HRS };

static const struct row {
        const char *key, *label;
        enum kind kind;
        bool lower_better;
} summary_rows[] = {
        {"time_to_detect_s", "Time to detect", K_SPAN, true},
        {"time_to_mitigate_s", "Time to mitigate", K_SPAN, true},
        {"slo_minutes_lost", "SLO minutes lost", K_MIN, true},
        {"error_budget_burnt", "Error budget burnt", K_PCT, true},
        {"false_actions", "False actions", K_CNT, true},
        {"instance_hours", "Instance-hours", K_HRS, true},
        {"actions", "Actions", K_CNT, false},
        {"requests", "Requests", K_CNT, false},
        {"errors", "Errors", K_CNT, true},
};

static void value(struct w *w, enum kind k, double v, bool diff)
{
        switch (k) {
        case K_SPAN:
                putf(w, "%s%s", diff && fabs(v) >= 0.5 ? (v < 0 ? "\u2212" : "+") : "", span(v).s);
                break;
        case K_MIN:
                putf(w, "%s min", diff ? fx_signed(v, 1).s : fx(v, 1).s);
                break;
        case K_PCT:
                putf(w, "%s %s", diff ? fx_signed(v * 100, 1).s : fx(v * 100, 1).s,
                     diff ? "pp" : "%");
                break;
        case K_CNT:
                put(w, diff ? fx_signed(v, 0).s : fx(v, 0).s);
                break;
        case K_HRS:
                put(w, diff ? fx_signed(v, 2).s : fx(v, 2).s);
                break;
        }
}

static void summary(struct ctx *x)
{
        struct w *w = &x->w;
        const struct json_object *s[2] = {get(x->run[0].doc, "summary"), NULL};
        bool base = x->nruns > 1;

        if (base)
                s[1] = get(x->run[1].doc, "summary");
        put(w, "<section><h2>Summary</h2>\n");
        if (!is(s[0], json_type_object) && !is(s[1], json_type_object)) {
                put(w, "<p>The run document has no summary.</p></section>\n");
                return;
        }
        put(w, "<table class=\"summary\"><tr><th>metric</th><th>");
        caption(w, &x->run[0], 0);
        put(w, "</th>");
        if (base) {
                put(w, "<th>");
                caption(w, &x->run[1], 1);
                put(w, "</th><th>difference</th>");
        }
        put(w, "</tr>\n");
        for (size_t i = 0; i < ARRAY_SIZE(summary_rows); i++) {
                const struct row *row = &summary_rows[i];
                double v[2];
                bool have[2] = {false, false};

                if (!get(s[0], row->key) && !get(s[1], row->key))
                        continue;
                putf(w, "<tr><th>%s</th>", row->label);
                for (unsigned p = 0; p < x->nruns; p++) {
                        have[p] = num_at(s[p], row->key, &v[p]);
                        put(w, "<td class=\"n\">");
                        if (have[p])
                                value(w, row->kind, v[p], false);
                        else
                                put(w, "\u2014");
                        put(w, "</td>");
                }
                if (base) {
                        if (have[0] && have[1]) {
                                double d = v[0] - v[1];
                                const char *cls = "";
                                if (row->lower_better && fabs(d) > 1e-12)
                                        cls = d < 0 ? " better" : " worse";
                                putf(w, "<td class=\"n%s\">", cls);
                                value(w, row->kind, d, true);
                                put(w, "</td>");
                        } else {
                                put(w, "<td class=\"n\">\u2014</td>");
                        }
                }
                put(w, "</tr>\n");
        }
        put(w, "</table></section>\n");
}

static void expectations(struct ctx *x)
{
        struct w *w = &x->w;
        const struct json_object *es = get(x->run[0].doc, "expectations");
        size_t n = is(es, json_type_array) ? json_object_array_length(es) : 0, ok = 0;

        put(w, "<section><h2>Expectations</h2>\n");
        if (n == 0) {
                put(w, "<p>None.</p></section>\n");
                return;
        }
        for (size_t i = 0; i < n; i++) {
                const struct json_object *v = get(json_object_array_get_idx(es, i), "ok");
                ok += is(v, json_type_boolean) && json_object_get_boolean(v);
        }
        putf(w, "<p>%zu of %zu passed.</p>\n", ok, n);
        put(w, "<table "
               "class=\"expect\"><tr><th>expectation</th><th>result</th><th>detail</th></tr>\n");
        for (size_t i = 0; i < n && i < FM_REPORT_ROWS_MAX; i++) {
                const struct json_object *e = json_object_array_get_idx(es, i);
                const struct json_object *v = get(e, "ok");

                put(w, "<tr><td>");
                text(w, get(e, "name"), FM_REPORT_STRING_MAX, "?");
                if (!is(v, json_type_boolean))
                        put(w, "</td><td class=\"unknown\">?");
                else if (json_object_get_boolean(v))
                        put(w, "</td><td class=\"pass\">pass");
                else
                        put(w, "</td><td class=\"fail\">FAIL");
                put(w, "</td><td>");
                text(w, get(e, "detail"), FM_REPORT_STRING_MAX, "");
                put(w, "</td></tr>\n");
        }
        put(w, "</table></section>\n");
}

static void cell(struct w *w, const struct json_object *o, const char *key)
{
        put(w, "<td>");
        text(w, get(o, key), FM_REPORT_STRING_MAX, "\u2014");
        put(w, "</td>");
}

static void actions(struct ctx *x)
{
        struct w *w = &x->w;
        const struct json_object *as = get(x->run[0].doc, "actions");
        size_t n = is(as, json_type_array) ? json_object_array_length(as) : 0;
        double more;

        put(w, "<section><h2>Actions</h2>\n");
        if (n == 0) {
                put(w, "<p>None.</p></section>\n");
                return;
        }
        put(w, "<table class=\"actions\"><tr><th>#</th><th>time</th><th>policy</th><th>action</th>"
               "<th>deployment</th><th>target</th><th>verdict</th><th>outcome</th><th>false</th>"
               "<th>reason</th></tr>\n");
        for (size_t i = 0; i < n && i < FM_REPORT_ROWS_MAX; i++) {
                const struct json_object *a = json_object_array_get_idx(as, i);
                double t;

                putf(w, "<tr%s><td class=\"n\">%zu</td><td class=\"n\">%s</td>",
                     executed(a) ? "" : " class=\"declined\"", i + 1,
                     num_at(a, "t_s", &t) ? hms(t).s : "\u2014");
                cell(w, a, "policy");
                cell(w, a, "action");
                cell(w, a, "deployment");
                cell(w, a, "target");
                cell(w, a, "verdict");
                cell(w, a, "outcome");
                put(w, false_action(a) ? "<td class=\"fail\">yes</td>" : "<td></td>");
                put(w, "<td class=\"reason\">");
                text(w, get(a, "reason"), FM_REPORT_STRING_MAX, "");
                put(w, "</td></tr>\n");
        }
        put(w, "</table>\n");
        if (n > FM_REPORT_ROWS_MAX)
                putf(w, "<p>%zu more actions not listed.</p>\n", n - FM_REPORT_ROWS_MAX);
        /* The engine keeps a bounded list and counts what it left out. */
        if (num_at(get(x->run[0].doc, "summary"), "actions_not_listed", &more) && more >= 1)
                putf(w, "<p>The run document leaves out %s more actions.</p>\n", fx(more, 0).s);
        put(w, "</section>\n");
}

static void fault_table(struct ctx *x)
{
        struct w *w = &x->w;
        const struct json_object *fs = get(x->run[0].doc, "faults");
        size_t n = is(fs, json_type_array) ? json_object_array_length(fs) : 0;

        put(w, "<section><h2>Faults</h2>\n");
        if (n == 0) {
                put(w, "<p>None.</p></section>\n");
                return;
        }
        put(w, "<table class=\"faults\"><tr><th>start</th><th>end</th><th>kind</th>"
               "<th>target</th><th>detected</th><th>mitigated</th></tr>\n");
        for (size_t i = 0; i < n && i < FM_REPORT_ROWS_MAX; i++) {
                const struct json_object *f = json_object_array_get_idx(fs, i);
                double t;

                putf(w, "<tr><td class=\"n\">%s</td>", num_at(f, "t_s", &t) ? hms(t).s : "\u2014");
                putf(w, "<td class=\"n\">%s</td>",
                     num_at(f, "until_s", &t) ? hms(t).s : "end of run");
                cell(w, f, "kind");
                cell(w, f, "target");
                putf(w, "<td class=\"n\">%s</td>",
                     num_at(f, "detected_s", &t) ? hms(t).s : "\u2014");
                putf(w, "<td class=\"n\">%s</td>",
                     num_at(f, "mitigated_s", &t) ? hms(t).s : "\u2014");
                put(w, "</tr>\n");
        }
        put(w, "</table></section>\n");
}

/* ---- page ---- */

static const char css[] =
        "body{font:14px/1.4 \"DejaVu Sans\",Verdana,sans-serif;color:#222;background:#fff;"
        "margin:16px 24px;max-width:1240px}\n"
        "h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:24px 0 8px;"
        "border-bottom:1px solid #ddd}h3{font-size:16px;margin:18px 0 4px}"
        "h4{font-size:13px;margin:10px 0 2px;color:#444}\n"
        "table{border-collapse:collapse;font-size:13px}th,td{border:1px solid #ddd;"
        "padding:3px 8px;text-align:left;vertical-align:top}th{background:#f4f4f4}"
        "td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}"
        "td.reason{max-width:480px;overflow-wrap:anywhere}tr.declined td{color:#777}\n"
        ".better{color:#1a7f37}.worse{color:#b42318}.pass{color:#1a7f37;font-weight:bold}"
        ".fail{color:#b42318;font-weight:bold}\n"
        "dl.meta{display:grid;grid-template-columns:max-content auto;gap:2px 12px;margin:8px 0}"
        "dl.meta dt{color:#555}dl.meta dd{margin:0}\n"
        ".row{display:flex;gap:16px;flex-wrap:wrap}figure{margin:0}"
        "figcaption{font-size:12px;color:#555}\n"
        "svg.chart{display:block;background:#fff}"
        "svg.chart text{font:10px \"DejaVu Sans\",Verdana,sans-serif;fill:#333}\n"
        ".plot{fill:#fff;stroke:#bbb}.grid{stroke:#ececec}.tick{stroke:#888}.fault{fill:#fbe0dc}"
        ".slo{stroke:#444;stroke-width:1.2;stroke-dasharray:6 4;fill:none}\n"
        ".series{fill:none;stroke-width:2;stroke-linejoin:round;stroke-linecap:round}.series.wide{"
        "stroke-width:4}"
        ".action line,.key line{stroke:#333;stroke-width:1;stroke-opacity:.75}"
        ".action.declined line{stroke:#999;stroke-dasharray:2 2}"
        ".action.false line{stroke:#e8590c}.nodata{fill:#999}\n";

static void header(struct ctx *x)
{
        struct w *w = &x->w;
        const struct run *r = &x->run[0];
        const struct json_object *doc = r->doc, *ctl = get(doc, "controller");
        double d;

        put(w, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
               "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
               "<title>fleetmedic sim: ");
        text(w, get(doc, "scenario"), FM_REPORT_STRING_MAX, "unnamed scenario");
        put(w, "</title>\n<style>\n");
        put(w, css);
        put(w, "</style>\n</head>\n<body>\n<header>\n<h1>Simulation: ");
        text(w, get(doc, "scenario"), FM_REPORT_STRING_MAX, "unnamed scenario");
        put(w, "</h1>\n<p class=\"desc\">");
        text(w, get(doc, "description"), FM_REPORT_STRING_MAX, "");
        put(w, "</p>\n<dl class=\"meta\">\n<dt>seed</dt><dd>");
        text(w, get(doc, "seed"), FM_REPORT_STRING_MAX, "\u2014");
        putf(w, "</dd>\n<dt>duration</dt><dd>%s (%s s)", span(r->end).s, fx(r->end, 0).s);
        if (num_at(doc, "step_s", &d))
                putf(w, ", a sample every %s s", fx(d, d == floor(d) ? 0 : 1).s);
        put(w, "</dd>\n<dt>controller</dt><dd>");
        put(w, !is(ctl, json_type_boolean)    ? "\u2014"
               : json_object_get_boolean(ctl) ? "on"
                                              : "off");
        put(w, "</dd>\n");
        if (!isnan(r->slo_lat) || !isnan(r->slo_err) || num_at(get(doc, "slo"), "objective", &d)) {
                const char *sep = "";
                put(w, "<dt>SLO</dt><dd>");
                if (!isnan(r->slo_lat)) {
                        putf(w, "p99 \u2264 %s ms", fx(r->slo_lat, 0).s);
                        sep = ", ";
                }
                if (!isnan(r->slo_err)) {
                        putf(w, "%serror rate \u2264 %s %%", sep, fx(r->slo_err * 100, 2).s);
                        sep = ", ";
                }
                if (num_at(get(doc, "slo"), "objective", &d))
                        putf(w, "%sobjective %s %%", sep, fx(d * 100, 2).s);
                put(w, "</dd>\n");
        }
        if (x->nruns > 1)
                put(w, "<dt>baseline</dt><dd>the same scenario without the controller, beside "
                       "every figure</dd>\n");
        put(w, "</dl>\n</header>\n");
}

static int charts(struct ctx *x)
{
        struct w *w = &x->w;
        size_t shown = 0, n = 0;

        put(w,
            "<section><h2>Charts</h2>\n<p>Shaded spans are faults, vertical lines actions "
            "(numbered as in the action table; hover for details), the dashed line the SLO.</p>\n");
        json_object_object_foreach((struct json_object *)x->run[0].deps, name, dep)
        {
                (void)dep;
                n++;
                if (shown >= FM_REPORT_DEPLOYMENTS_MAX)
                        continue;
                int r = deployment(x, name);
                if (r < 0)
                        return r;
                shown++;
        }
        if (n == 0)
                put(w, "<p>The run has no deployments.</p>\n");
        if (n > shown)
                putf(w, "<p>%zu more deployments not charted.</p>\n", n - shown);
        put(w, "</section>\n");
        return 0;
}

int fm_sim_report_html(const struct json_object *run, FILE *out)
{
        struct ctx x = {.w = {.f = out}};
        int r;

        if (!run || !out)
                return -EINVAL;
        r = check_doc(run, true);
        if (r < 0)
                return r;
        r = run_load(&x.run[0], run);
        if (r < 0)
                goto out;
        x.nruns = 1;
        const struct json_object *base = get(run, "baseline");
        if (base && !is(base, json_type_null)) {
                r = run_load(&x.run[1], base);
                if (r < 0)
                        goto out;
                x.nruns = 2;
        }

        header(&x);
        summary(&x);
        expectations(&x);
        r = charts(&x);
        if (r < 0)
                goto out;
        actions(&x);
        fault_table(&x);
        put(&x.w, "</body>\n</html>\n");
        if (x.w.err == 0 && fflush(out) != 0)
                x.w.err = -EIO;
        if (x.w.err == 0 && ferror(out))
                x.w.err = -EIO;
        r = x.w.err;
out:
        run_done(&x.run[0]);
        run_done(&x.run[1]);
        return r;
}
