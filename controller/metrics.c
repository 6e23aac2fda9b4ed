/* SPDX-License-Identifier: MIT */
#include "metrics.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Longest number we format: "-2.2250738585072014e-308" is 24 characters. */
#define NUM_MAX 32

/*
 * Every writer below either appends whole lines or, on failure, leaves the
 * buffer exactly as it found it: a scrape page never carries half a
 * sample. Each public function remembers the length it started from and
 * truncates back to it on any error.
 */
static int rollback(struct fm_buf *b, size_t len, int r)
{
        b->len = len;
        if (b->data)
                b->data[len] = '\0';
        return r;
}

static bool is_alpha_(char c)
{
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_digit(char c)
{
        return c >= '0' && c <= '9';
}

/* [a-zA-Z_:][a-zA-Z0-9_:]* */
static bool metric_name_ok(const char *s)
{
        if (!s || !(is_alpha_(*s) || *s == ':'))
                return false;
        for (s++; *s; s++)
                if (!(is_alpha_(*s) || is_digit(*s) || *s == ':'))
                        return false;
        return true;
}

/* [a-zA-Z_][a-zA-Z0-9_]* */
static bool label_name_ok(const char *s)
{
        if (!s || !is_alpha_(*s))
                return false;
        for (s++; *s; s++)
                if (!(is_alpha_(*s) || is_digit(*s)))
                        return false;
        return true;
}

/*
 * Formats v the way the exposition format reads it back (Go's
 * strconv.ParseFloat): NaN, +Inf, -Inf; integral values in int64 range
 * in plain digits (42, not 4.2e+01), which is also exact; everything else
 * in the fewest of 15, 16 or 17 significant digits that reads back as the
 * same double. For normal numbers that is the shortest round-trip form:
 * %g drops trailing zeros, and a shorter exact form, having at most
 * DBL_DIG (15) digits, is what %.15g prints. Subnormals, having fewer
 * significant bits, may get 15 digits where fewer would do.
 *
 * %g and strtod follow LC_NUMERIC; the daemon leaves it at "C".
 */
static void format_num(double v, char out[static NUM_MAX])
{
        if (isnan(v)) {
                snprintf(out, NUM_MAX, "NaN");
                return;
        }
        if (isinf(v)) {
                snprintf(out, NUM_MAX, "%s", v > 0 ? "+Inf" : "-Inf");
                return;
        }
        if (v == trunc(v) && v >= -0x1p63 && v < 0x1p63) {
                snprintf(out, NUM_MAX, "%lld", (long long)v);
                return;
        }
        for (int prec = 15; prec <= 17; prec++) {
                snprintf(out, NUM_MAX, "%.*g", prec, v);
                if (prec == 17 || strtod(out, NULL) == v)
                        return;
        }
}

/* Appends s with backslash and newline escaped, and double quote too when quote is set. */
static int put_escaped(struct fm_buf *b, const char *s, bool quote)
{
        const char *special = quote ? "\\\n\"" : "\\\n";

        for (;;) {
                size_t n = strcspn(s, special);
                int r = fm_buf_append(b, s, n);

                if (r < 0)
                        return r;
                s += n;
                if (!*s)
                        return 0;
                r = fm_buf_append(b, *s == '\n' ? "\\n" : *s == '"' ? "\\\"" : "\\\\", 2);
                if (r < 0)
                        return r;
                s++;
        }
}

/*
 * Appends {k1="v1",...,extra_key="extra_value"} (no braces when there
 * are no labels at all). Keys must be valid, distinct, and not equal to
 * extra_key; extra_value is a formatted number and needs no escaping.
 */
static int put_labels(struct fm_buf *b, size_t n, const char *const *keys,
                      const char *const *values, const char *extra_key, const char *extra_value)
{
        int r;

        if (n > 0 && (!keys || !values))
                return -EINVAL;
        if (n == 0 && !extra_key)
                return 0;
        r = fm_buf_append(b, "{", 1);
        for (size_t i = 0; r >= 0 && i < n; i++) {
                if (!label_name_ok(keys[i]) || !values[i])
                        return -EINVAL;
                if (extra_key && strcmp(keys[i], extra_key) == 0)
                        return -EINVAL;
                for (size_t j = 0; j < i; j++)
                        if (strcmp(keys[i], keys[j]) == 0)
                                return -EINVAL;
                r = fm_buf_printf(b, "%s%s=\"", i ? "," : "", keys[i]);
                if (r >= 0)
                        r = put_escaped(b, values[i], true);
                if (r >= 0)
                        r = fm_buf_append(b, "\"", 1);
        }
        if (r >= 0 && extra_key)
                r = fm_buf_printf(b, "%s%s=\"%s\"", n ? "," : "", extra_key, extra_value);
        if (r >= 0)
                r = fm_buf_append(b, "}", 1);
        return r;
}

/* name suffix{labels} value\n, with value already formatted. No rollback: callers do it. */
static int put_sample(struct fm_buf *b, const char *name, const char *suffix, size_t n,
                      const char *const *keys, const char *const *values, const char *extra_key,
                      const char *extra_value, const char *value)
{
        int r = fm_buf_printf(b, "%s%s", name, suffix);

        if (r >= 0)
                r = put_labels(b, n, keys, values, extra_key, extra_value);
        if (r >= 0)
                r = fm_buf_printf(b, " %s\n", value);
        return r;
}

int fm_prom_family(struct fm_buf *b, const char *name, const char *type, const char *help)
{
        static const char *const types[] = {"counter", "gauge", "histogram", "summary", "untyped"};
        size_t start;
        bool type_ok = false;
        int r = 0;

        if (!b || !metric_name_ok(name) || !type)
                return -EINVAL;
        for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
                type_ok = type_ok || strcmp(type, types[i]) == 0;
        if (!type_ok)
                return -EINVAL;

        start = b->len;
        if (help) {
                r = fm_buf_printf(b, "# HELP %s ", name);
                if (r >= 0)
                        r = put_escaped(b, help, false);
                if (r >= 0)
                        r = fm_buf_append(b, "\n", 1);
        }
        if (r >= 0)
                r = fm_buf_printf(b, "# TYPE %s %s\n", name, type);
        return r < 0 ? rollback(b, start, r) : 0;
}

int fm_prom_sample(struct fm_buf *b, const char *name, size_t n_labels, const char *const *keys,
                   const char *const *values, double value)
{
        char num[NUM_MAX];
        size_t start;
        int r;

        if (!b || !metric_name_ok(name))
                return -EINVAL;
        format_num(value, num);
        start = b->len;
        r = put_sample(b, name, "", n_labels, keys, values, NULL, NULL, num);
        return r < 0 ? rollback(b, start, r) : 0;
}

int fm_metric_hist_init(struct fm_metric_hist *h, const double *bounds, uint32_t n)
{
        if (!h || n > FM_METRIC_HIST_MAX_BOUNDS || (n > 0 && !bounds))
                return -EINVAL;
        for (uint32_t i = 0; i < n; i++) {
                if (!isfinite(bounds[i]))
                        return -EINVAL;
                if (i > 0 && !(bounds[i] > bounds[i - 1]))
                        return -EINVAL;
        }
        *h = (struct fm_metric_hist){.n = n};
        if (n > 0)
                memcpy(h->bound, bounds, n * sizeof(bounds[0]));
        return 0;
}

/*
 * Buckets are "less or equal": v goes into the first bucket whose bound
 * is >= v, past the last bound into +Inf. NaN compares false with every
 * bound, so the search runs past the end: it lands in +Inf and makes
 * the sum NaN, as in the reference Go client.
 */
void fm_metric_hist_observe(struct fm_metric_hist *h, double v)
{
        uint32_t lo = 0, hi = h->n;

        while (lo < hi) {
                uint32_t mid = lo + (hi - lo) / 2;

                if (v <= h->bound[mid])
                        hi = mid;
                else
                        lo = mid + 1;
        }
        h->count[lo]++;
        h->sum += v;
        h->total++;
}

int fm_prom_hist(struct fm_buf *b, const char *name, size_t n_labels, const char *const *keys,
                 const char *const *values, const struct fm_metric_hist *h)
{
        char le[NUM_MAX], num[NUM_MAX];
        uint64_t cum = 0;
        size_t start;
        int r = 0;

        if (!b || !metric_name_ok(name) || !h || h->n > FM_METRIC_HIST_MAX_BOUNDS)
                return -EINVAL;

        start = b->len;
        for (uint32_t i = 0; r >= 0 && i < h->n; i++) {
                cum += h->count[i];
                format_num(h->bound[i], le);
                snprintf(num, sizeof(num), "%" PRIu64, cum);
                r = put_sample(b, name, "_bucket", n_labels, keys, values, "le", le, num);
        }
        if (r >= 0) {
                snprintf(num, sizeof(num), "%" PRIu64, h->total);
                r = put_sample(b, name, "_bucket", n_labels, keys, values, "le", "+Inf", num);
        }
        if (r >= 0) {
                format_num(h->sum, num);
                r = put_sample(b, name, "_sum", n_labels, keys, values, NULL, NULL, num);
        }
        if (r >= 0) {
                snprintf(num, sizeof(num), "%" PRIu64, h->total);
                r = put_sample(b, name, "_count", n_labels, keys, values, NULL, NULL, num);
        }
        return r < 0 ? rollback(b, start, r) : 0;
}
