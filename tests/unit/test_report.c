/* SPDX-License-Identifier: MIT */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "report.h"

/* ---- helpers ---- */

static struct json_object *parse(const char *text)
{
        struct json_object *o = json_tokener_parse(text);
        assert_non_null(o);
        return o;
}

/* Renders `doc` into memory: the text (caller frees); *ret_r the result code, *ret_len the byte
 * count. */
static char *render_to(const struct json_object *doc, int *ret_r, size_t *ret_len)
{
        /* on the heap: the stream keeps pointers to both until fclose() */
        struct {
                char *buf;
                size_t len;
        } *m = calloc(1, sizeof(*m));
        assert_non_null(m);
        FILE *f = open_memstream(&m->buf, &m->len);
        assert_non_null(f);
        int r = fm_sim_report_html(doc, f);
        assert_int_equal(fclose(f), 0);
        char *buf = m->buf;
        if (ret_len)
                *ret_len = m->len;
        free(m);
        *ret_r = r;
        return buf;
}

static char *render(const struct json_object *doc)
{
        char *html;
        int r;
        html = render_to(doc, &r, NULL);
        assert_int_equal(r, 0);
        return html;
}

static size_t count(const char *hay, const char *needle)
{
        size_t n = 0, k = strlen(needle);
        for (const char *p = strstr(hay, needle); p; p = strstr(p + k, needle))
                n++;
        return n;
}

/* The text of each "<svg ... </svg>" in turn; *cursor starts at the page. Caller frees. */
static char *next_svg(const char **cursor)
{
        const char *a = strstr(*cursor, "<svg");
        if (!a)
                return NULL;
        const char *z = strstr(a, "</svg>");
        assert_non_null(z);
        z += strlen("</svg>");
        *cursor = z;
        return strndup(a, (size_t)(z - a));
}

/*
 * The "d" of the first series path drawn in `color` after `from`, or NULL.
 * Caller frees.
 */
static char *path_d(const char *from, const char *color)
{
        char key[64];
        snprintf(key, sizeof(key), "stroke=\"%s\" d=\"", color);
        const char *p = strstr(from, key);
        if (!p)
                return NULL;
        p += strlen(key);
        const char *e = strchr(p, '"');
        assert_non_null(e);
        return strndup(p, (size_t)(e - p));
}

/* How often needle stands in the path drawn in color (which must be there). */
static size_t path_count(const char *html, const char *color, const char *needle)
{
        char *d = path_d(html, color);
        assert_non_null(d);
        size_t n = count(d, needle);
        free(d);
        return n;
}

/* Points in a path: its absolute M, L and H commands. */
static size_t path_points(const char *d)
{
        size_t n = 0;
        for (; *d; d++)
                n += *d == 'M' || *d == 'L' || *d == 'H';
        return n;
}

/*
 * A run document: one deployment (or the given JSON for "deployments"), a
 * p99 series, optional extra top-level members spliced in before "series".
 */
static struct json_object *doc_with(const char *extra, const char *t_s, const char *deployments)
{
        char *text = NULL;
        int r = asprintf(&text,
                         "{\"scenario\":\"s\",\"seed\":7,\"duration_s\":40,\"step_s\":10,"
                         "\"controller\":true,"
                         "\"slo\":{\"latency_p99_ms\":250,\"error_rate\":0.01,\"objective\":0.999},"
                         "%s%s\"series\":{\"t_s\":%s,\"deployments\":%s}}",
                         extra, *extra ? "," : "", t_s, deployments);
        assert_true(r > 0);
        struct json_object *o = parse(text);
        free(text);
        return o;
}

#define WEB_5                                                                                      \
        "{\"web\":{\"replicas\":[2,2,3,3,3],\"ready\":[2,2,2,3,3],"                                \
        "\"p99_ms\":[100,120,null,130,140],\"error_rate\":[0.001,0.002,null,0.02,0.001],"          \
        "\"weights\":{\"v1\":[100,100,90,90,0],\"v2\":[0,0,10,10,100]}}}"
#define T_5 "[0,10,20,30,40]"

/* ---- tests ---- */

static void test_escaping(void **state)
{
        (void)state;
        struct json_object *doc = parse(
                "{\"scenario\":\"<script>alert(1)</script>\","
                "\"description\":\"a \\\"quoted\\\" & 'single' <b>bold</b>\\u0001\","
                "\"seed\":1,\"duration_s\":20,\"controller\":true,"
                "\"faults\":[{\"t_s\":0,\"kind\":\"<img src=x>\",\"target\":\"<x>/v\","
                "\"until_s\":10}],"
                "\"actions\":[{\"t_s\":10,\"policy\":\"p\\\"><script>\",\"action\":\"a&b\","
                "\"deployment\":\"<dep>\\\"&\",\"target\":\"</title><script>x</script>\","
                "\"verdict\":\"approved\",\"outcome\":\"ok\",\"false\":false,"
                "\"reason\":\"</td><script>evil()</script>\"}],"
                "\"expectations\":[{\"name\":\"<svg onload=x>\",\"ok\":true,\"detail\":\"&\"}],"
                "\"series\":{\"t_s\":[0,10,20],\"deployments\":{\"<dep>\\\"&\":{"
                "\"replicas\":[1,1,1],\"weights\":{\"<i>t</i>\":[100,100,100]}}}}}");
        char *html = render(doc);

        assert_null(strstr(html, "<script"));
        assert_null(strstr(html, "<img"));
        assert_null(strstr(html, "<b>"));
        assert_null(strstr(html, "<i>"));
        assert_null(strstr(html, "<dep>"));
        assert_null(strstr(html, "<x>"));
        assert_null(strstr(html, "<svg onload"));
        assert_null(strstr(html, "\"><script"));
        assert_null(strstr(html, "\x01"));
        assert_non_null(strstr(html, "&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert_non_null(strstr(html, "a &quot;quoted&quot; &amp; &#39;single&#39; &lt;b&gt;"));
        /* The deployment name inside an attribute stays inside it. */
        assert_non_null(strstr(html, "aria-label=\"Replicas, &lt;dep&gt;&quot;&amp;\""));
        assert_non_null(strstr(html, "&lt;/title&gt;&lt;script&gt;x&lt;/script&gt;"));
        assert_non_null(strstr(html, "&lt;/td&gt;&lt;script&gt;evil()&lt;/script&gt;"));
        assert_non_null(strstr(html, "&lt;i&gt;t&lt;/i&gt;"));
        /* Every '<' left is one of ours: no tag is opened by a document string. */
        assert_int_equal(count(html, "<title>"), count(html, "</title>"));
        free(html);
        json_object_put(doc);
}

static void test_long_strings_are_cut(void **state)
{
        (void)state;
        size_t n = 3 * FM_REPORT_STRING_MAX;
        char *s = malloc(n + 1);
        assert_non_null(s);
        /* "é" repeated: a cut in the middle would leave half a character. */
        for (size_t i = 0; i + 1 < n; i += 2) {
                s[i] = (char)0xC3;
                s[i + 1] = (char)0xA9;
        }
        s[n] = '\0';
        struct json_object *doc = doc_with("", T_5, WEB_5);
        json_object_object_add(doc, "description", json_object_new_string(s));
        char *html = render(doc);

        const char *p = strstr(html, "<p class=\"desc\">");
        assert_non_null(p);
        p += strlen("<p class=\"desc\">");
        const char *e = strstr(p, "</p>");
        assert_non_null(e);
        /* At most the cap, a whole number of characters, then the ellipsis. */
        size_t shown = (size_t)(e - p) - strlen("\u2026");
        assert_true(shown <= FM_REPORT_STRING_MAX);
        assert_int_equal(shown % 2, 0);
        assert_memory_equal(e - strlen("\u2026"), "\u2026", strlen("\u2026"));
        free(html);
        free(s);
        json_object_put(doc);
}

static void test_nulls_are_gaps(void **state)
{
        (void)state;
        struct json_object *doc = doc_with("", T_5, WEB_5);
        char *html = render(doc);

        /* p99 [100,120,null,130,140]: two subpaths of two points each. */
        char *d = path_d(html, "#d62728");
        assert_non_null(d);
        assert_int_equal(count(d, "M"), 2);
        assert_int_equal(path_points(d), 4);
        assert_null(strstr(d, "h0"));
        free(d);
        /* The error rate has the same shape. */
        assert_int_equal(path_count(html, "#9467bd", "M"), 2);
        /* Replicas have no null: one subpath, a step line through all five samples. */
        assert_int_equal(path_count(html, "#1f77b4", "M"), 1);
        assert_int_equal(path_count(html, "#1f77b4", "H"), 4);
        free(html);
        json_object_put(doc);

        /* A lone sample between nulls is drawn as a dot, not dropped. */
        doc = doc_with("", T_5, "{\"web\":{\"p99_ms\":[null,120,null,null,140]}}");
        html = render(doc);
        assert_int_equal(path_count(html, "#d62728", "M"), 2);
        assert_int_equal(path_count(html, "#d62728", "h0"), 2);
        free(html);
        json_object_put(doc);

        /* All null: no path at all, and the panel says so. */
        doc = doc_with("", T_5, "{\"web\":{\"p99_ms\":[null,null,null,null,null]}}");
        html = render(doc);
        assert_null(strstr(html, "stroke=\"#d62728\" d="));
        assert_int_equal(count(html, ">no data</text>"), 4);
        free(html);
        json_object_put(doc);
}

static void test_slo_lines(void **state)
{
        (void)state;
        struct json_object *doc = doc_with("", T_5, WEB_5);
        char *html = render(doc);

        const char *cur = html;
        char *replicas = next_svg(&cur), *p99 = next_svg(&cur), *err = next_svg(&cur),
             *weights = next_svg(&cur);
        assert_non_null(weights);
        assert_null(strstr(replicas, "class=\"slo\""));
        assert_null(strstr(weights, "class=\"slo\""));
        assert_int_equal(count(p99, "<title>SLO 250 ms</title>"), 1);
        assert_int_equal(count(err, "<title>SLO 1.00 %</title>"), 1);
        /*
         * p99 axis: max(140, 250 * 1.15) = 287.5 -> ticks of 100 up to 300; the
         * plot runs from y 30 to 184, so 250 ms sits at 184 - 154 * 250 / 300.
         */
        assert_non_null(strstr(p99, "<line class=\"slo\" x1=\"56\" x2=\"586\" y1=\"55.7\" "
                                    "y2=\"55.7\"><title>SLO 250 ms</title>"));
        assert_non_null(strstr(p99, ">300</text>"));
        free(replicas);
        free(p99);
        free(err);
        free(weights);
        free(html);
        json_object_put(doc);

        /* Without an "slo" there is no SLO line. */
        doc = parse("{\"series\":{\"t_s\":" T_5 ",\"deployments\":" WEB_5 "}}");
        html = render(doc);
        assert_null(strstr(html, "<title>SLO"));
        assert_int_equal(count(html, "<svg"), 4);
        free(html);
        json_object_put(doc);
}

#define ACTION(t, dep, verdict)                                                                    \
        "{\"t_s\":" #t ",\"policy\":\"autoscale\",\"action\":\"scale\",\"deployment\":\"" dep      \
        "\",\"target\":\"2->3\",\"verdict\":\"" verdict "\",\"outcome\":\"ok\",\"false\":false,"   \
        "\"reason\":\"r\"}"

#define ON_WEB                                                                                     \
        "\"actions\":[" ACTION(10, "web", "approved") "," ACTION(20, "web", "denied") "," ACTION(  \
                30, "web", "approved") "]"
#define ON_EACH                                                                                    \
        "\"actions\":[" ACTION(10, "web", "approved") "," ACTION(20, "db", "approved") "," ACTION( \
                30, "fleet", "approved") "]"
#define WEB_AND_DB "{\"web\":{\"replicas\":[1,1,1,1,1]},\"db\":{\"replicas\":[1,1,1,1,1]}}"

static void test_markers(void **state)
{
        (void)state;
        struct json_object *doc = doc_with(ON_WEB, T_5, WEB_5);
        char *html = render(doc);
        const char *cur = html;
        size_t svgs = 0;
        for (char *svg; (svg = next_svg(&cur)); free(svg)) {
                assert_int_equal(count(svg, "<g class=\"action"), 3);
                assert_int_equal(count(svg, "<g class=\"action declined\""), 1);
                svgs++;
        }
        assert_int_equal(svgs, 4);
        /* The table lists each action once. */
        assert_int_equal(count(html, "<td>autoscale</td>"), 3);
        free(html);
        json_object_put(doc);

        /*
         * Two deployments: an action is drawn on its deployment's charts, one
         * naming no charted deployment ("fleet") on every chart.
         */
        doc = doc_with(ON_EACH, T_5, WEB_AND_DB);
        html = render(doc);
        cur = html;
        svgs = 0;
        for (char *svg; (svg = next_svg(&cur)); free(svg)) {
                assert_int_equal(count(svg, "<g class=\"action"), 2);
                assert_non_null(strstr(svg, svgs < 4 ? ">1</text></g>" : ">2</text></g>"));
                assert_non_null(strstr(svg, ">3</text></g>"));
                svgs++;
        }
        assert_int_equal(svgs, 8);
        free(html);
        json_object_put(doc);

        /*
         * More actions than the cap: FM_REPORT_MARKERS_MAX markers, a note for
         * the rest, and labels thinned out so they do not overlap.
         */
        doc = doc_with("", T_5, WEB_5);
        struct json_object *as = json_object_new_array();
        const size_t many = FM_REPORT_MARKERS_MAX + 100;
        for (size_t i = 0; i < many; i++) {
                struct json_object *a = parse(ACTION(0, "web", "approved"));
                json_object_object_add(a, "t_s",
                                       json_object_new_double(40.0 * (double)i / (double)many));
                json_object_array_add(as, a);
        }
        json_object_object_add(doc, "actions", as);
        json_object_object_add(doc, "summary", parse("{\"actions_not_listed\":17}"));
        html = render(doc);
        assert_non_null(strstr(html, "leaves out 17 more actions"));
        cur = html;
        char *svg = next_svg(&cur);
        assert_non_null(svg);
        assert_int_equal(count(svg, "<g class=\"action"), FM_REPORT_MARKERS_MAX);
        assert_non_null(strstr(svg, ">100 more actions not drawn</text>"));
        /* The markers span 530 * 500 / 600 px; labels (1-3 digits) need 10 px at least. */
        size_t labels = count(svg, "</text></g>");
        assert_true(labels >= 2);
        assert_true(labels <= 530 * FM_REPORT_MARKERS_MAX / many / 10 + 1);
        assert_int_equal(count(html, "<td>autoscale</td>"), many);
        free(svg);
        free(html);
        json_object_put(doc);
}

static void test_faults(void **state)
{
        (void)state;
        struct json_object *doc = doc_with(
                "\"faults\":[{\"t_s\":10,\"kind\":\"bad_version\",\"target\":\"web/v2\","
                "\"until_s\":null},{\"t_s\":0,\"kind\":\"x\",\"target\":\"db\",\"until_s\":5}]",
                T_5, "{\"web\":{\"replicas\":[1,1,1,1,1]},\"db\":{\"replicas\":[1,1,1,1,1]}}");
        char *html = render(doc);
        const char *cur = html;
        char *web = next_svg(&cur);
        assert_non_null(web);
        /* web/v2 from 10 s to the end (40 s): x from 56 + 530/4 to 586. */
        assert_int_equal(count(web, "<title>fault "), 1);
        assert_non_null(strstr(web, "<rect class=\"fault\" x=\"188.5\" y=\"30\" width=\"397.5\""));
        free(web);
        for (int i = 0; i < 4; i++)
                free(next_svg(&cur));
        char *db = next_svg(&cur);
        assert_non_null(db);
        assert_int_equal(count(db, "<title>fault "), 1);
        assert_non_null(strstr(db, "fault x on db"));
        free(db);
        assert_int_equal(count(html, "end of run"), 1);
        free(html);
        json_object_put(doc);
}

static void test_baseline_panel(void **state)
{
        (void)state;
        struct json_object *doc =
                doc_with("\"summary\":{\"slo_minutes_lost\":1.5,\"actions\":2}", T_5, WEB_5);
        char *html = render(doc);
        assert_int_equal(count(html, "<svg"), 4);
        assert_int_equal(count(html, "<figure"), 4);
        assert_null(strstr(html, "baseline"));
        free(html);

        struct json_object *base =
                doc_with("\"summary\":{\"slo_minutes_lost\":12.25,\"actions\":0}", T_5, WEB_5);
        json_object_object_add(base, "controller", json_object_new_boolean(false));
        json_object_object_add(doc, "baseline", base);
        html = render(doc);
        assert_int_equal(count(html, "<svg"), 8);
        assert_int_equal(count(html, "<figcaption>baseline: without controller</figcaption>"), 4);
        assert_int_equal(count(html, "<figcaption>with controller</figcaption>"), 4);
        /* Panels pair up: run, then baseline, in one row per chart. */
        assert_int_equal(count(html, "<div class=\"row\">"), 4);
        assert_int_equal(count(html, "aria-label=\"p99 latency, baseline, web\""), 1);
        /* The summary gets the baseline column and the difference. */
        assert_non_null(strstr(html, "<td class=\"n\">12.3 min</td>"));
        assert_non_null(strstr(html, "<td class=\"n better\">\u221210.8 min</td>"));
        assert_non_null(strstr(html, "<td class=\"n\">+2</td>"));
        free(html);
        json_object_put(doc);
}

static void test_invalid(void **state)
{
        (void)state;
        static const char *const bad[] = {
                "[]",
                "{\"scenario\":\"s\"}",
                "{\"series\":{\"deployments\":{}}}",
                "{\"series\":{\"t_s\":[0,10]}}",
                "{\"series\":{\"t_s\":{},\"deployments\":{}}}",
                "{\"series\":{\"t_s\":[0,\"10\"],\"deployments\":{}}}",
                "{\"series\":{\"t_s\":[0,null],\"deployments\":{}}}",
                "{\"series\":{\"t_s\":[0,10],\"deployments\":[]}}",
                "{\"series\":{\"t_s\":[0,10],\"deployments\":{\"web\":[1,2]}}}",
                "{\"series\":{\"t_s\":[0,10],\"deployments\":{}},\"baseline\":{\"scenario\":\"s\"}"
                "}",
                "{\"series\":{\"t_s\":[0,10],\"deployments\":{}},\"baseline\":7}",
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                struct json_object *doc = parse(bad[i]);
                char *html;
                size_t len;
                int r;
                html = render_to(doc, &r, &len);
                if (r != -EINVAL)
                        fail_msg("case %zu: %d", i, r);
                /* Nothing written for a document that is refused up front. */
                assert_int_equal(len, 0);
                free(html);
                json_object_put(doc);
        }
        assert_int_equal(fm_sim_report_html(NULL, stdout), -EINVAL);

        /* Only the required parts: accepted. A uint64 seed prints whole. */
        struct json_object *doc = parse("{\"seed\":18446744073709551615,"
                                        "\"series\":{\"t_s\":[],\"deployments\":{}},"
                                        "\"baseline\":null,\"summary\":7,\"actions\":{},"
                                        "\"faults\":\"x\",\"expectations\":[1,null]}");
        char *html = render(doc);
        assert_non_null(strstr(html, "</html>\n"));
        assert_non_null(strstr(html, "The run has no deployments."));
        assert_non_null(strstr(html, "<dd>18446744073709551615</dd>"));
        free(html);
        json_object_put(doc);

        /* Non-numbers inside a metric array are gaps, a short array ends early. */
        doc = doc_with("", T_5, "{\"web\":{\"p99_ms\":[1,\"x\",3,{}],\"replicas\":[1,2]}}");
        html = render(doc);
        assert_int_equal(path_count(html, "#d62728", "M"), 2);
        assert_int_equal(path_count(html, "#d62728", "h0"), 2);
        char *d = path_d(html, "#1f77b4");
        assert_int_equal(path_points(d), 2);
        free(d);
        free(html);
        json_object_put(doc);
}

static void test_write_error(void **state)
{
        (void)state;
        struct json_object *doc = doc_with("", T_5, WEB_5);
        FILE *f = fopen("/dev/full", "w");
        if (!f)
                skip();
        assert_int_equal(fm_sim_report_html(doc, f), -EIO);
        (void)fclose(f);
        json_object_put(doc);
}

#define EXTRAS                                                                                     \
        "\"faults\":[{\"t_s\":10,\"kind\":\"k\",\"target\":\"web\",\"until_s\":20,"                \
        "\"detected_s\":15,\"mitigated_s\":null}],"                                                \
        "\"summary\":{\"time_to_detect_s\":95,\"error_budget_burnt\":0.125}"

static void test_deterministic(void **state)
{
        (void)state;
        struct json_object *doc =
                doc_with("\"actions\":[" ACTION(10, "web", "approved") "]," EXTRAS, T_5, WEB_5);
        json_object_object_add(doc, "baseline", doc_with("", T_5, WEB_5));
        char *a, *b;
        size_t na, nb;
        int r;
        a = render_to(doc, &r, &na);
        assert_int_equal(r, 0);
        b = render_to(doc, &r, &nb);
        assert_int_equal(r, 0);
        assert_int_equal(na, nb);
        assert_memory_equal(a, b, na);

        /* A copy parsed again from its own text gives the same page too. */
        struct json_object *copy = parse(json_object_to_json_string(doc));
        free(b);
        b = render_to(copy, &r, &nb);
        assert_int_equal(r, 0);
        assert_int_equal(na, nb);
        assert_memory_equal(a, b, na);
        assert_non_null(strstr(a, "1 min 35 s"));
        assert_non_null(strstr(a, "<td class=\"n\">0:00:15</td><td class=\"n\">\u2014</td></tr>"));
        assert_non_null(strstr(a, "12.5 %"));
        free(a);
        free(b);
        json_object_put(copy);
        json_object_put(doc);
}

/*
 * A day at one sample a second: every chart stays within the point budget,
 * and a one-sample spike is still drawn at its height.
 */
static void test_downsampling(void **state)
{
        (void)state;
        const size_t n = 86401, spike = 54321;
        struct json_object *t = json_object_new_array_ext((int)n);
        struct json_object *p99 = json_object_new_array_ext((int)n);
        struct json_object *rep = json_object_new_array_ext((int)n);
        struct json_object *ready = json_object_new_array_ext((int)n);
        for (size_t i = 0; i < n; i++) {
                json_object_array_add(t, json_object_new_int64((int64_t)i));
                json_object_array_add(
                        p99, i == spike      ? json_object_new_double(1000)
                             : i % 7200 < 60 ? NULL
                                             : json_object_new_double(100 + (double)(i % 13)));
                json_object_array_add(rep, json_object_new_int64(3 + (int64_t)(i / 3600 % 5)));
                json_object_array_add(ready, json_object_new_int64(3 + (int64_t)(i / 3700 % 5)));
        }
        struct json_object *web = json_object_new_object();
        json_object_object_add(web, "p99_ms", p99);
        json_object_object_add(web, "replicas", rep);
        json_object_object_add(web, "ready", ready);
        struct json_object *deps = json_object_new_object();
        json_object_object_add(deps, "web", web);
        struct json_object *series = json_object_new_object();
        json_object_object_add(series, "t_s", t);
        json_object_object_add(series, "deployments", deps);
        struct json_object *doc = json_object_new_object();
        json_object_object_add(doc, "duration_s", json_object_new_int(86400));
        json_object_object_add(doc, "series", series);

        char *html;
        size_t len;
        int r;
        html = render_to(doc, &r, &len);
        assert_int_equal(r, 0);
        assert_true(len < 200 * 1024);
        const char *cur = html;
        size_t svgs = 0, pts[4] = {0, 0, 0, 0};
        for (char *svg; (svg = next_svg(&cur)); free(svg)) {
                size_t points = 0;
                for (const char *p = strstr(svg, " d=\""); p; p = strstr(p + 1, " d=\"")) {
                        char *d = strndup(p + 4, (size_t)(strchr(p + 4, '"') - (p + 4)));
                        points += path_points(d);
                        free(d);
                }
                assert_true(points <= FM_REPORT_CHART_POINTS_MAX);
                assert_true(svgs < 4);
                pts[svgs++] = points;
        }
        assert_int_equal(svgs, 4);
        /* The budget is used, not thrown away: two series of steps, one of p99. */
        assert_true(pts[0] >= FM_REPORT_CHART_POINTS_MAX / 4);
        assert_true(pts[1] >= FM_REPORT_CHART_POINTS_MAX * 9 / 10);
        /* Twelve gaps of a minute, one at the start, leave twelve subpaths... */
        char *d = path_d(html, "#d62728");
        assert_non_null(d);
        assert_int_equal(count(d, "M"), 12);
        /* ...and the spike sets the axis (1000 ms) and is drawn at its top, y = 30. */
        assert_non_null(strstr(d, " 30.0"));
        free(d);
        /* A day is labelled in hours. */
        assert_non_null(strstr(html, "time (h)"));
        free(html);
        json_object_put(doc);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_escaping),       cmocka_unit_test(test_long_strings_are_cut),
                cmocka_unit_test(test_nulls_are_gaps), cmocka_unit_test(test_slo_lines),
                cmocka_unit_test(test_markers),        cmocka_unit_test(test_faults),
                cmocka_unit_test(test_baseline_panel), cmocka_unit_test(test_invalid),
                cmocka_unit_test(test_write_error),    cmocka_unit_test(test_deterministic),
                cmocka_unit_test(test_downsampling),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
