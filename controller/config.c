/* SPDX-License-Identifier: MIT */

/*
 * Configuration loading: YAML text -> json-c tree -> struct fm_config.
 *
 * Two stages, so that each stays simple:
 *
 *   1. build: libyaml's event parser drives a small stack machine that
 *      builds the json-c tree a JSON file would give. Scalars are resolved
 *      with the YAML 1.2 core schema, and nothing more: "yes", "on" and "no"
 *      stay strings (YAML 1.1's booleans are a classic trap, "NO" for
 *      Norway), quoted scalars are always strings, and the only tags are the
 *      core ones (!!str, !!int, !!float, !!bool, !!null, !!map, !!seq).
 *      Anchors and aliases are refused rather than expanded: a config file
 *      has no use for them, and refusing them removes the "billion laughs"
 *      problem instead of capping it. The number of nodes and the depth are
 *      capped anyway, and so is the file size. Beside the tree, a json-c
 *      object maps each key's dotted path to its line (a side table rather
 *      than userdata on the values, because json-c represents null as a
 *      NULL pointer, which cannot carry anything).
 *
 *   2. walk: one pass over the tree against a schema table. Every problem
 *      is collected, not only the first, and a key with a problem is
 *      remembered, so the cross-field rules that run after the walk do not
 *      pile a second, misleading error on top of the first one.
 *
 * Errors are stored with their line and printed sorted by line at the end,
 * so the parser's errors (duplicates, aliases) and the cross-field ones
 * interleave with the walk's in file order. At most ERRORS_SHOWN_MAX are
 * kept; the rest are counted.
 *
 * This file never prints except to the caller's `errors` stream, and it
 * never reads a credential file: it only checks that each named one exists
 * and is readable, so a typo fails at load time, not at the first connect.
 */

#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include <json-c/json.h>
#include <yaml.h>

#include "http.h"
#include "http_backend.h"

#define FILE_MAX (1024 * 1024) /* bytes */
#define NODES_MAX 10000
#define DEPTH_MAX 32
#define KEY_MAX 256 /* bytes in one key */
#define PATH_BUF (DEPTH_MAX * (KEY_MAX + 24))
#define ERRORS_SHOWN_MAX 100

/* The longest duration: 10 years keeps every sum with a time far from overflow. */
#define DURATION_MAX_S (10.0 * 365 * 24 * 3600)
#define WEEK_S ((double)FM_BREAKER_OPEN_MAX_LIMIT / FM_MS_PER_S)

#define TAG_PREFIX "tag:yaml.org,2002:"

/* ---- error collection ---------------------------------------------------------------------- */

struct diag {
        unsigned line;
        unsigned seq;
        char *text;
};

struct ctx {
        const char *file;
        struct diag diag[ERRORS_SHOWN_MAX];
        unsigned n_diag;   /* stored */
        unsigned n_errors; /* in all */
        bool oom;
        json_object *lines;  /* dotted key -> line of the key */
        json_object *failed; /* dotted keys that had an error (values are null) */
        locale_t c_locale;   /* number parsing must not depend on LC_NUMERIC */
        struct fm_config cfg;
};

static void vreport(struct ctx *c, unsigned line, const char *key, const char *fmt, va_list ap)
        __attribute__((format(printf, 4, 0)));

/* Records one error. key (dotted) may be NULL, line 0 when there is none. */
static void vreport(struct ctx *c, unsigned line, const char *key, const char *fmt, va_list ap)
{
        c->n_errors++;
        if (key && c->failed && json_object_object_add(c->failed, key, NULL) < 0)
                c->oom = true;
        if (c->n_diag >= ERRORS_SHOWN_MAX)
                return;

        char msg[1024], head[64] = "";
        vsnprintf(msg, sizeof(msg), fmt, ap);
        if (line > 0)
                snprintf(head, sizeof(head), ":%u", line);
        char *text;
        if (asprintf(&text, "%s%s: %s%s%s", c->file, head, key ? key : "", key ? ": " : "", msg) <
            0) {
                c->oom = true;
                return;
        }
        /* One error, one line: a key or path with a newline must not forge another. */
        for (char *p = text; *p; p++)
                if ((unsigned char)*p < 0x20 || *p == 0x7f)
                        *p = '?';
        c->diag[c->n_diag] = (struct diag){.line = line, .seq = c->n_diag, .text = text};
        c->n_diag++;
}

static void report(struct ctx *c, unsigned line, const char *key, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));

static void report(struct ctx *c, unsigned line, const char *key, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        vreport(c, line, key, fmt, ap);
        va_end(ap);
}

static unsigned line_of(const struct ctx *c, const char *key)
{
        json_object *v;
        if (!c->lines || !json_object_object_get_ex(c->lines, key, &v))
                return 0;
        return (unsigned)json_object_get_int(v);
}

static void key_error(struct ctx *c, const char *key, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

/* An error about the value of key, reported on the key's line. */
static void key_error(struct ctx *c, const char *key, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        vreport(c, line_of(c, key), key, fmt, ap);
        va_end(ap);
}

static bool failed(const struct ctx *c, const char *key)
{
        return json_object_object_get_ex(c->failed, key, NULL);
}

static int diag_cmp(const void *a, const void *b)
{
        const struct diag *x = a, *y = b;
        if (x->line != y->line)
                return x->line < y->line ? -1 : 1;
        return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static void flush_errors(struct ctx *c, FILE *errors)
{
        qsort(c->diag, c->n_diag, sizeof(c->diag[0]), diag_cmp);
        for (unsigned i = 0; i < c->n_diag; i++) {
                if (errors)
                        fprintf(errors, "%s\n", c->diag[i].text);
                free(c->diag[i].text);
        }
        if (errors && c->n_errors > c->n_diag)
                fprintf(errors, "%s: %u more errors not shown\n", c->file, c->n_errors - c->n_diag);
        c->n_diag = 0;
}

static const char *type_name(json_object *v)
{
        switch (json_object_get_type(v)) {
        case json_type_null:
                return "null";
        case json_type_boolean:
                return "a boolean";
        case json_type_double:
                return "a number";
        case json_type_int:
                return "an integer";
        case json_type_string:
                return "a string";
        case json_type_object:
                return "a mapping";
        case json_type_array:
                return "a sequence";
        }
        return "something else";
}

/* ---- stage 1: YAML events to a json-c tree --------------------------------------------------- */

struct frame {
        json_object *obj;  /* the container; the parent's unless owned */
        json_object *seen; /* mapping: key -> line, to find duplicates */
        bool is_map;
        bool owned;      /* to be discarded at its end (bad node, or the value of a bad key) */
        bool is_key;     /* a mapping or sequence used as a key */
        bool want_value; /* mapping: a key was read, its value comes next */
        bool drop_value; /* mapping: that value is discarded (bad or duplicate key) */
        char *key;       /* mapping: the pending key, when it is kept */
        size_t path_len; /* length of the path of this container */
        size_t index;    /* sequence: index of the next item */
};

struct builder {
        struct ctx *c;
        struct frame stack[DEPTH_MAX];
        unsigned depth;
        unsigned nodes;
        unsigned documents;
        json_object *root;
        bool have_root;
        unsigned root_line;
        bool root_is_map;
        size_t path_len;
        char path[PATH_BUF];
};

/* What is wrong with a node itself. */
enum bad_node {
        BAD_NONE,
        BAD_ANCHOR,
        BAD_TAG,       /* a tag other than the core ones */
        BAD_TAG_VALUE, /* a core tag the value does not fit (!!int one) */
};

static unsigned line_at(const yaml_mark_t *m)
{
        return m->line >= UINT_MAX ? UINT_MAX : (unsigned)m->line + 1;
}

static const char *path_or_null(const struct builder *b)
{
        return b->path_len > 0 ? b->path : NULL;
}

static void set_path(struct builder *b, size_t len)
{
        b->path_len = len;
        b->path[len] = '\0';
}

static bool is_digit(char ch)
{
        return ch >= '0' && ch <= '9';
}

static bool match_null(const char *s)
{
        return !*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") ||
               !strcmp(s, "NULL");
}

/* 1 true, 0 false, -1 neither. */
static int match_bool(const char *s)
{
        if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE"))
                return 1;
        if (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE"))
                return 0;
        return -1;
}

static int digit_value(char ch, unsigned base)
{
        int v;
        if (is_digit(ch))
                v = ch - '0';
        else if (ch >= 'a' && ch <= 'f')
                v = ch - 'a' + 10;
        else if (ch >= 'A' && ch <= 'F')
                v = ch - 'A' + 10;
        else
                return -1;
        return (unsigned)v < base ? v : -1;
}

/*
 * Core schema integers: [-+]?[0-9]+, 0o[0-7]+, 0x[0-9a-fA-F]+. One that
 * does not fit int64 comes back as a double (*ret_big): YAML integers are
 * unbounded, so it is an integer that is out of range, not a syntax error.
 */
static bool match_int(const char *s, int64_t *ret_i, double *ret_d, bool *ret_big)
{
        const char *p = s;
        unsigned base = 10;
        bool neg = false;
        if (p[0] == '0' && p[1] == 'o') {
                base = 8;
                p += 2;
        } else if (p[0] == '0' && p[1] == 'x') {
                base = 16;
                p += 2;
        } else if (*p == '-' || *p == '+') {
                neg = *p == '-';
                p++;
        }
        if (!*p)
                return false;
        uint64_t u = 0;
        double d = 0;
        bool big = false;
        for (; *p; p++) {
                int dig = digit_value(*p, base);
                if (dig < 0)
                        return false;
                if (u > (UINT64_MAX - (unsigned)dig) / base)
                        big = true;
                else
                        u = u * base + (unsigned)dig;
                d = d * base + dig;
        }
        uint64_t lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
        if (big || u > lim) {
                *ret_big = true;
                *ret_d = neg ? -d : d;
        } else {
                *ret_big = false;
                *ret_i = !neg ? (int64_t)u : u == lim ? INT64_MIN : -(int64_t)u;
        }
        return true;
}

/* Core schema floats: [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?, [-+]?.inf, .nan. */
static bool match_float(const char *s, locale_t loc, double *ret)
{
        const char *p = s;
        if (*p == '-' || *p == '+')
                p++;
        if (!strcmp(p, ".inf") || !strcmp(p, ".Inf") || !strcmp(p, ".INF")) {
                *ret = s[0] == '-' ? -INFINITY : INFINITY;
                return true;
        }
        if (p == s && (!strcmp(p, ".nan") || !strcmp(p, ".NaN") || !strcmp(p, ".NAN"))) {
                *ret = NAN;
                return true;
        }
        size_t digits = 0;
        for (; is_digit(*p); p++)
                digits++;
        if (*p == '.')
                for (p++; is_digit(*p); p++)
                        digits++;
        if (digits == 0)
                return false;
        if (*p == 'e' || *p == 'E') {
                p++;
                if (*p == '-' || *p == '+')
                        p++;
                if (!is_digit(*p))
                        return false;
                while (is_digit(*p))
                        p++;
        }
        if (*p)
                return false;
        char *end;
        double d = strtod_l(s, &end, loc); /* overflow gives ±HUGE_VAL: rejected as not finite */
        if (end != p)
                return false;
        *ret = d;
        return true;
}

static bool tag_is(const char *tag, const char *name)
{
        return !strncmp(tag, TAG_PREFIX, strlen(TAG_PREFIX)) &&
               !strcmp(tag + strlen(TAG_PREFIX), name);
}

/*
 * Resolves a scalar to a json-c value (NULL for null) in *ret. Returns 0,
 * -EINVAL with *ret_why set (a tag we do not support, or a value its tag
 * does not allow), or -ENOMEM.
 */
static int scalar_value(const struct builder *b, const yaml_event_t *ev, json_object **ret,
                        enum bad_node *ret_why)
{
        const char *s = (const char *)ev->data.scalar.value;
        size_t len = ev->data.scalar.length;
        const char *tag = (const char *)ev->data.scalar.tag;
        bool plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
        bool resolve;
        int64_t i;
        double d;
        bool big;

        if (!tag)
                resolve = plain; /* quoted and block scalars are strings */
        else if (!strcmp(tag, "!") || tag_is(tag, "str"))
                resolve = false;
        else {
                bool nul = memchr(s, '\0', len) != NULL;
                if (tag_is(tag, "null")) {
                        if (nul || !match_null(s))
                                goto bad_value;
                        *ret = NULL;
                        return 0;
                } else if (tag_is(tag, "bool")) {
                        int v = nul ? -1 : match_bool(s);
                        if (v < 0)
                                goto bad_value;
                        *ret = json_object_new_boolean(v);
                } else if (tag_is(tag, "int") || tag_is(tag, "float")) {
                        if (nul)
                                goto bad_value;
                        if (match_int(s, &i, &d, &big))
                                *ret = big || tag_is(tag, "float")
                                               ? json_object_new_double(big ? d : (double)i)
                                               : json_object_new_int64(i);
                        else if (tag_is(tag, "float") && match_float(s, b->c->c_locale, &d))
                                *ret = json_object_new_double(d);
                        else
                                goto bad_value;
                } else {
                        *ret_why = BAD_TAG;
                        return -EINVAL;
                }
                return *ret ? 0 : -ENOMEM;
        }

        if (resolve && !memchr(s, '\0', len)) {
                int v;
                if (match_null(s)) {
                        *ret = NULL;
                        return 0;
                }
                if ((v = match_bool(s)) >= 0)
                        *ret = json_object_new_boolean(v);
                else if (match_int(s, &i, &d, &big))
                        *ret = big ? json_object_new_double(d) : json_object_new_int64(i);
                else if (match_float(s, b->c->c_locale, &d))
                        *ret = json_object_new_double(d);
                else
                        *ret = json_object_new_string_len(s, (int)len);
        } else
                *ret = json_object_new_string_len(s, (int)len);
        return *ret ? 0 : -ENOMEM;

bad_value:
        *ret_why = BAD_TAG_VALUE;
        return -EINVAL;
}

/* Hands v to the current container (the parent takes ownership). */
static int attach(struct builder *b, json_object *v)
{
        if (b->depth == 0) {
                b->root = v;
                b->have_root = true;
                return 0;
        }
        struct frame *f = &b->stack[b->depth - 1];
        int r = f->is_map ? json_object_object_add(f->obj, f->key, v)
                          : json_object_array_add(f->obj, v);
        if (r < 0) {
                json_object_put(v);
                return -ENOMEM;
        }
        return 0;
}

/* The current slot is done: the mapping wants its next key, the sequence its next item. */
static void finish_slot(struct builder *b)
{
        if (b->depth == 0)
                return;
        struct frame *f = &b->stack[b->depth - 1];
        if (f->is_map) {
                free(f->key);
                f->key = NULL;
                f->want_value = false;
                f->drop_value = false;
        } else
                f->index++;
}

/* A key in a mapping: checks it, extends the path and records its line. */
static int on_key(struct builder *b, const yaml_event_t *ev)
{
        struct ctx *c = b->c;
        struct frame *f = &b->stack[b->depth - 1];
        const char *s = (const char *)ev->data.scalar.value;
        size_t len = ev->data.scalar.length;
        const char *tag = (const char *)ev->data.scalar.tag;
        unsigned line = line_at(&ev->start_mark);

        f->want_value = true;
        f->drop_value = true; /* until the key proves good */
        set_path(b, f->path_len);

        if (ev->data.scalar.anchor) {
                report(c, line, path_or_null(b), "anchors and aliases are not supported");
                return 0;
        }
        if (tag && strcmp(tag, "!") && !tag_is(tag, "str")) {
                report(c, line, path_or_null(b), "a key must be a string");
                return 0;
        }
        if (memchr(s, '\0', len)) {
                report(c, line, path_or_null(b), "a key contains a NUL byte");
                return 0;
        }
        if (len > KEY_MAX) {
                report(c, line, path_or_null(b), "a key is longer than %d bytes", KEY_MAX);
                return 0;
        }
        /* no schema key has a dot; one here would alias a nested key's dotted path */
        if (memchr(s, '.', len)) {
                report(c, line, path_or_null(b), "unknown key '%.*s'", (int)len, s);
                return 0;
        }

        size_t at = b->path_len;
        if (at > 0)
                b->path[at++] = '.';
        if (at + len >= PATH_BUF) { /* cannot happen within DEPTH_MAX and KEY_MAX; cheap to check */
                set_path(b, f->path_len);
                report(c, line, path_or_null(b), "the path of a key is too long");
                return 0;
        }
        memcpy(b->path + at, s, len);
        set_path(b, at + len);

        json_object *first;
        if (json_object_object_get_ex(f->seen, s, &first)) {
                report(c, line, b->path, "duplicate key (first on line %d)",
                       json_object_get_int(first));
                return 0;
        }
        json_object *l = json_object_new_int((int)line);
        if (!l || json_object_object_add(f->seen, s, l) < 0) {
                json_object_put(l);
                return -ENOMEM;
        }
        /* A key with a dot in it can alias a nested path; the first one keeps the line. */
        if (!json_object_object_get_ex(c->lines, b->path, NULL)) {
                l = json_object_new_int((int)line);
                if (!l || json_object_object_add(c->lines, b->path, l) < 0) {
                        json_object_put(l);
                        return -ENOMEM;
                }
        }
        f->key = strndup(s, len);
        if (!f->key)
                return -ENOMEM;
        f->drop_value = false;
        return 0;
}

/*
 * Where a new node goes. Returns true when it is a value to keep, false
 * when it is to be discarded; *ret_key is set when it stands in a key's
 * place (then it is discarded too, and so is the value after it).
 */
static bool node_slot(struct builder *b, bool *ret_key)
{
        *ret_key = false;
        if (b->depth == 0)
                return true;
        struct frame *f = &b->stack[b->depth - 1];
        if (f->is_map) {
                if (!f->want_value) {
                        *ret_key = true;
                        return false;
                }
                return !f->drop_value;
        }
        set_path(b, f->path_len);
        int n = snprintf(b->path + b->path_len, PATH_BUF - b->path_len, "[%zu]", f->index);
        if (n > 0 && (size_t)n < PATH_BUF - b->path_len)
                set_path(b, b->path_len + (size_t)n);
        return true;
}

/* The key position of a mapping holds something other than a scalar. */
static void bad_key(struct builder *b, unsigned line, const char *what)
{
        struct frame *f = &b->stack[b->depth - 1];
        set_path(b, f->path_len);
        report(b->c, line, path_or_null(b), "%s", what);
        f->want_value = true;
        f->drop_value = true;
}

static enum bad_node node_problem(const char *anchor, const char *tag, const char *core)
{
        if (anchor)
                return BAD_ANCHOR;
        if (tag && strcmp(tag, "!") && !tag_is(tag, core))
                return BAD_TAG;
        return BAD_NONE;
}

static void node_error(struct builder *b, unsigned line, enum bad_node why, const char *tag)
{
        const char *key = path_or_null(b);
        const char *t = tag ? tag : "";
        const char *bang = "";
        if (!strncmp(t, TAG_PREFIX, strlen(TAG_PREFIX))) {
                t += strlen(TAG_PREFIX);
                bang = "!!";
        }
        switch (why) {
        case BAD_NONE:
                return;
        case BAD_ANCHOR:
                report(b->c, line, key, "anchors and aliases are not supported");
                return;
        case BAD_TAG:
                report(b->c, line, key, "unsupported tag %s%.64s (only the YAML core tags are)",
                       bang, t);
                return;
        case BAD_TAG_VALUE:
                report(b->c, line, key, "the value is not a valid %s%.64s", bang, t);
                return;
        }
}

static int on_scalar(struct builder *b, const yaml_event_t *ev)
{
        unsigned line = line_at(&ev->start_mark);
        bool is_key;
        bool keep = node_slot(b, &is_key);
        if (is_key)
                return on_key(b, ev);

        enum bad_node why = BAD_NONE;
        json_object *v = NULL;
        if (ev->data.scalar.anchor)
                why = BAD_ANCHOR;
        else {
                int r = scalar_value(b, ev, &v, &why);
                if (r == -ENOMEM)
                        return r;
        }
        if (why != BAD_NONE) {
                node_error(b, line, why, (const char *)ev->data.scalar.tag);
                keep = false;
        }
        if (b->depth == 0)
                b->root_line = line;
        if (keep) {
                int r = attach(b, v);
                if (r < 0)
                        return r;
        } else
                json_object_put(v);
        finish_slot(b);
        return 0;
}

static int on_alias(struct builder *b, const yaml_event_t *ev)
{
        unsigned line = line_at(&ev->start_mark);
        bool is_key;
        (void)node_slot(b, &is_key);
        if (is_key) {
                bad_key(b, line, "anchors and aliases are not supported");
                return 0;
        }
        report(b->c, line, path_or_null(b), "anchors and aliases are not supported");
        finish_slot(b);
        return 0;
}

static int on_start(struct builder *b, const yaml_event_t *ev, bool is_map)
{
        struct ctx *c = b->c;
        unsigned line = line_at(&ev->start_mark);
        if (b->depth >= DEPTH_MAX) {
                report(c, line, NULL, "nesting deeper than %d levels", DEPTH_MAX);
                return -EINVAL;
        }

        bool is_key;
        bool keep = node_slot(b, &is_key);
        const char *tag =
                (const char *)(is_map ? ev->data.mapping_start.tag : ev->data.sequence_start.tag);
        const char *anchor = (const char *)(is_map ? ev->data.mapping_start.anchor
                                                   : ev->data.sequence_start.anchor);
        enum bad_node why = node_problem(anchor, tag, is_map ? "map" : "seq");
        if (is_key)
                bad_key(b, line, "a key must be a scalar");
        else if (why != BAD_NONE) {
                node_error(b, line, why, tag);
                keep = false;
        }

        json_object *obj = is_map ? json_object_new_object() : json_object_new_array();
        json_object *seen = is_map ? json_object_new_object() : NULL;
        if (!obj || (is_map && !seen)) {
                json_object_put(obj);
                json_object_put(seen);
                return -ENOMEM;
        }
        if (b->depth == 0) {
                b->root_line = line;
                b->root_is_map = is_map;
        }
        if (keep) {
                int r = attach(b, obj);
                if (r < 0) {
                        json_object_put(seen);
                        return r;
                }
        }
        b->stack[b->depth++] = (struct frame){
                .obj = obj,
                .seen = seen,
                .is_map = is_map,
                .owned = !keep,
                .is_key = is_key,
                .path_len = b->path_len,
        };
        return 0;
}

static void frame_done(struct frame *f)
{
        if (f->owned)
                json_object_put(f->obj);
        json_object_put(f->seen);
        free(f->key);
        *f = (struct frame){0};
}

static void on_end(struct builder *b)
{
        struct frame *f = &b->stack[--b->depth];
        bool is_key = f->is_key;
        set_path(b, f->path_len);
        frame_done(f);
        if (!is_key)
                finish_slot(b);
}

static int on_event(struct builder *b, const yaml_event_t *ev)
{
        switch (ev->type) {
        case YAML_DOCUMENT_START_EVENT:
                if (++b->documents > 1) {
                        report(b->c, line_at(&ev->start_mark), NULL, "more than one YAML document");
                        return -EINVAL;
                }
                return 0;
        case YAML_SCALAR_EVENT:
        case YAML_ALIAS_EVENT:
        case YAML_SEQUENCE_START_EVENT:
        case YAML_MAPPING_START_EVENT:
                if (++b->nodes > NODES_MAX) {
                        report(b->c, line_at(&ev->start_mark), NULL, "more than %d nodes",
                               NODES_MAX);
                        return -EINVAL;
                }
                if (ev->type == YAML_SCALAR_EVENT)
                        return on_scalar(b, ev);
                if (ev->type == YAML_ALIAS_EVENT)
                        return on_alias(b, ev);
                return on_start(b, ev, ev->type == YAML_MAPPING_START_EVENT);
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
                on_end(b);
                return 0;
        default:
                return 0;
        }
}

static unsigned line_of_offset(const char *buf, size_t len, size_t offset)
{
        unsigned line = 1;
        for (size_t i = 0; i < offset && i < len; i++)
                if (buf[i] == '\n')
                        line++;
        return line;
}

static void syntax_error(struct ctx *c, const yaml_parser_t *p, const char *buf, size_t len)
{
        const char *problem = p->problem ? p->problem : "unknown error";
        if (p->error == YAML_READER_ERROR) {
                report(c, line_of_offset(buf, len, p->problem_offset), NULL,
                       "invalid text: %s (byte %zu)", problem, p->problem_offset);
        } else if (p->context) {
                report(c, line_at(&p->problem_mark), NULL, "syntax error: %s (%s at line %u)",
                       problem, p->context, line_at(&p->context_mark));
        } else
                report(c, line_at(&p->problem_mark), NULL, "syntax error: %s", problem);
}

/*
 * Parses buf into *ret_root (NULL for a file without a document). Returns
 * 0 (problems that leave the rest of the tree usable were reported),
 * -EINVAL after a problem that stops the parse, or -ENOMEM.
 */
static int build_tree(struct ctx *c, const char *buf, size_t len, json_object **ret_root)
{
        struct builder *b = calloc(1, sizeof(*b));
        if (!b)
                return -ENOMEM;
        b->c = c;

        yaml_parser_t parser;
        if (!yaml_parser_initialize(&parser)) {
                free(b);
                return -ENOMEM;
        }
        yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);

        int r = 0;
        for (;;) {
                yaml_event_t ev;
                if (!yaml_parser_parse(&parser, &ev)) {
                        if (parser.error == YAML_MEMORY_ERROR)
                                r = -ENOMEM;
                        else {
                                syntax_error(c, &parser, buf, len);
                                r = -EINVAL;
                        }
                        break;
                }
                r = on_event(b, &ev);
                bool end = ev.type == YAML_STREAM_END_EVENT;
                yaml_event_delete(&ev);
                if (r < 0 || end)
                        break;
        }
        yaml_parser_delete(&parser);

        while (b->depth > 0)
                frame_done(&b->stack[--b->depth]);
        /* An empty document (or a bare null) is an empty mapping: all defaults. */
        if (r == 0 && b->have_root && !b->root_is_map && b->root)
                report(c, b->root_line, NULL, "the top level must be a mapping, not %s",
                       type_name(b->root));
        if (r == 0 && b->root_is_map)
                *ret_root = b->root;
        else {
                json_object_put(b->root);
                *ret_root = NULL;
        }
        free(b);
        return r;
}

/* ---- stage 2: the schema walk ---------------------------------------------------------------- */

struct field;
typedef void (*custom_fn)(struct ctx *c, const char *key, json_object *v);
typedef bool (*string_fn)(struct ctx *c, const char *key, const char *s);

enum ftype {
        F_SECTION,
        F_BOOL,
        F_INT,      /* stored by size: uint16_t, uint32_t (or int), size_t */
        F_NUMBER,   /* double */
        F_DURATION, /* seconds in the file, fm_ms in the struct */
        F_STRING,   /* copied into a char array after the optional check */
        F_ENUM,     /* a string among names, stored as an int (an enum) */
        F_CUSTOM,
};

struct field {
        const char *name;
        enum ftype type;
        size_t offset; /* into struct fm_config */
        size_t size;
        double min, max; /* inclusive, but min excluded with min_open */
        bool min_open;
        string_fn check;
        custom_fn custom;
        const struct field *fields; /* F_SECTION */
        const char *const *names;   /* F_ENUM: the values in enum order, NULL-terminated */
};

#define AT(m) .offset = offsetof(struct fm_config, m), .size = sizeof(((struct fm_config *)0)->m)

static void type_error(struct ctx *c, const char *key, const char *expected, json_object *v)
{
        if (!v && !strcmp(expected, "a string"))
                key_error(c, key, "expected a string, got null (write \"\" for none)");
        else
                key_error(c, key, "expected %s, got %s", expected, type_name(v));
}

/* An integer in [min, max]. */
static bool get_int(struct ctx *c, const char *key, json_object *v, int64_t min, int64_t max,
                    int64_t *ret)
{
        if (json_object_is_type(v, json_type_double)) {
                /* Only integers too large for int64 become doubles in the parser. */
                double d = json_object_get_double(v);
                if (isfinite(d) && d == floor(d) && fabs(d) >= 0x1p63) {
                        key_error(c, key, "must be between %" PRId64 " and %" PRId64, min, max);
                        return false;
                }
        }
        if (!json_object_is_type(v, json_type_int)) {
                type_error(c, key, "an integer", v);
                return false;
        }
        int64_t i = json_object_get_int64(v);
        if (i < min && max >= UINT32_MAX) {
                key_error(c, key, "must be at least %" PRId64 " (got %" PRId64 ")", min, i);
                return false;
        }
        if (i < min || i > max) {
                key_error(c, key, "must be between %" PRId64 " and %" PRId64 " (got %" PRId64 ")",
                          min, max, i);
                return false;
        }
        *ret = i;
        return true;
}

static bool get_number(struct ctx *c, const char *key, json_object *v, const struct field *f,
                       double *ret)
{
        if (!json_object_is_type(v, json_type_int) && !json_object_is_type(v, json_type_double)) {
                type_error(c, key, "a number", v);
                return false;
        }
        double d = json_object_get_double(v);
        if (!isfinite(d)) {
                key_error(c, key, "must be a finite number");
                return false;
        }
        if (f->min_open ? d <= f->min : d < f->min) {
                if (f->min_open && f->min == 0.0)
                        key_error(c, key, "must be greater than 0 (got %.15g)", d);
                else
                        key_error(c, key, "must be %s %g (got %.15g)",
                                  f->min_open ? "greater than" : "at least", f->min, d);
                return false;
        }
        if (d > f->max) {
                key_error(c, key, "must be at most %g (got %.15g)", f->max, d);
                return false;
        }
        *ret = d;
        return true;
}

static bool get_string(struct ctx *c, const char *key, json_object *v, size_t size,
                       const char **ret)
{
        if (!json_object_is_type(v, json_type_string)) {
                type_error(c, key, "a string", v);
                return false;
        }
        const char *s = json_object_get_string(v);
        size_t len = (size_t)json_object_get_string_len(v);
        if (strlen(s) != len) {
                key_error(c, key, "contains a NUL byte");
                return false;
        }
        if (size > 0 && len >= size) {
                key_error(c, key, "too long (at most %zu bytes)", size - 1);
                return false;
        }
        *ret = s;
        return true;
}

static void store_uint(void *dst, size_t size, uint64_t u)
{
        if (size == sizeof(uint16_t)) {
                uint16_t x = (uint16_t)u;
                memcpy(dst, &x, sizeof(x));
        } else if (size == sizeof(uint32_t)) {
                uint32_t x = (uint32_t)u; /* also an int: every range here is non-negative */
                memcpy(dst, &x, sizeof(x));
        } else {
                uint64_t x = u;
                memcpy(dst, &x, sizeof(x));
        }
}

static void walk(struct ctx *c, json_object *map, const struct field *fields, const char *prefix);

/* "a, b or c" of a NULL-terminated list, for messages. */
static void list_names(const char *const *names, char *buf, size_t size)
{
        size_t n = 0, len = 0;
        buf[0] = '\0';
        while (names[n])
                n++;
        for (size_t i = 0; i < n && len < size; i++) {
                int w = snprintf(buf + len, size - len, "%s%s",
                                 i == 0      ? ""
                                 : i + 1 < n ? ", "
                                             : " or ",
                                 names[i]);
                if (w < 0)
                        break;
                len += (size_t)w;
        }
}

/* An enum value: the index of the string v among names, or -1 after reporting. */
static int get_enum(struct ctx *c, const char *key, json_object *v, const char *const *names)
{
        char allowed[256];
        list_names(names, allowed, sizeof(allowed));
        if (!json_object_is_type(v, json_type_string)) {
                key_error(c, key, "expected %s, got %s", allowed, type_name(v));
                return -1;
        }
        const char *s = json_object_get_string(v);
        for (int i = 0; names[i]; i++)
                if (strcmp(s, names[i]) == 0)
                        return i;
        key_error(c, key, "expected %s (got \"%.64s\")", allowed, s);
        return -1;
}

/* The index of s among names[0 .. n), or n. */
static size_t name_index(const char *const *names, size_t n, const char *s)
{
        size_t i = 0;
        while (i < n && strcmp(s, names[i]) != 0)
                i++;
        return i;
}

/* "a, b, c" of names[0 .. n), for messages. */
static void join_names(const char *const *names, size_t n, char *buf, size_t size)
{
        buf[0] = '\0';
        for (size_t i = 0; i < n; i++)
                snprintf(buf + strlen(buf), size - strlen(buf), "%s%s", i ? ", " : "", names[i]);
}

/* v as a list of at most max entries; false after reporting. */
static bool get_list(struct ctx *c, const char *key, json_object *v, const char *what,
                     const char *plural, size_t max, size_t *ret_n)
{
        if (!json_object_is_type(v, json_type_array)) {
                char expected[64];
                snprintf(expected, sizeof(expected), "a list of %s", what);
                type_error(c, key, expected, v);
                return false;
        }
        size_t n = json_object_array_length(v);
        if (n > max) {
                key_error(c, key, "at most %zu %s", max, plural);
                return false;
        }
        *ret_n = n;
        return true;
}

/*
 * An entry of a list that is a mapping with the keys names[0 .. n): vals[i]
 * becomes the value of names[i], untouched where the key is absent. False
 * after reporting an entry that is no mapping or has another key.
 */
static bool get_entry(struct ctx *c, const char *key, json_object *e, const char *what,
                      const char *const *names, size_t n, json_object **vals)
{
        char keys[128];
        join_names(names, n, keys, sizeof(keys));
        if (!json_object_is_type(e, json_type_object)) {
                key_error(c, key, "each %s is a mapping: {%s}", what, keys);
                return false;
        }
        json_object_object_foreach(e, k, val)
        {
                size_t i = name_index(names, n, k);
                if (i == n) {
                        key_error(c, key, "unknown key '%s' in a %s (%s)", k, what, keys);
                        return false;
                }
                vals[i] = val;
        }
        return true;
}

/*
 * The value of the key member of a what entry: a non-empty list of names among
 * names[0 .. n) or "all", as a bit set; false after reporting.
 */
static bool get_name_set(struct ctx *c, const char *key, json_object *v, const char *what,
                         const char *member, const char *example, const char *const *names,
                         size_t n, uint32_t *ret)
{
        uint32_t set = 0;
        if (!json_object_is_type(v, json_type_array) || json_object_array_length(v) == 0) {
                key_error(c, key, "a %s needs %s: a list such as %s or [all]", what, member,
                          example);
                return false;
        }
        for (size_t i = 0; i < json_object_array_length(v); i++) {
                json_object *e = json_object_array_get_idx(v, i);
                const char *s =
                        json_object_is_type(e, json_type_string) ? json_object_get_string(e) : "";
                size_t j = name_index(names, n, s);
                if (strcmp(s, "all") == 0) {
                        set |= (1u << n) - 1;
                } else if (j < n) {
                        set |= 1u << j;
                } else {
                        char all[128];
                        join_names(names, n, all, sizeof(all));
                        key_error(c, key, "%s are %s or all", member, all);
                        return false;
                }
        }
        *ret = set;
        return true;
}

static void parse_field(struct ctx *c, const struct field *f, const char *key, json_object *v)
{
        void *dst = (char *)&c->cfg + f->offset;
        int64_t i;
        double d;
        const char *s;

        switch (f->type) {
        case F_SECTION:
                if (!v)
                        return; /* "tls:" with everything under it commented out */
                if (!json_object_is_type(v, json_type_object)) {
                        type_error(c, key, "a mapping", v);
                        return;
                }
                walk(c, v, f->fields, key);
                return;
        case F_BOOL:
                if (!json_object_is_type(v, json_type_boolean)) {
                        key_error(c, key, "expected a boolean (true or false), got %s",
                                  type_name(v));
                        return;
                }
                *(bool *)dst = json_object_get_boolean(v);
                return;
        case F_INT:
                if (get_int(c, key, v, (int64_t)f->min, (int64_t)f->max, &i))
                        store_uint(dst, f->size, (uint64_t)i);
                return;
        case F_NUMBER:
                if (get_number(c, key, v, f, &d))
                        *(double *)dst = d;
                return;
        case F_DURATION:
                if (!get_number(c, key, v, f, &d))
                        return;
                fm_ms ms = (fm_ms)llround(d * FM_MS_PER_S);
                if (ms < 1 && (f->min_open || f->min > 0)) {
                        key_error(c, key, "must be at least 0.001 (1 ms) (got %g)", d);
                        return;
                }
                *(fm_ms *)dst = ms;
                return;
        case F_STRING:
                if (!get_string(c, key, v, f->size, &s))
                        return;
                if (f->check && !f->check(c, key, s))
                        return;
                memcpy(dst, s, strlen(s) + 1);
                return;
        case F_ENUM: {
                int e = get_enum(c, key, v, f->names);
                if (e >= 0 && f->size == sizeof(int))
                        memcpy(dst, &e, sizeof(e));
                return;
        }
        case F_CUSTOM:
                f->custom(c, key, v);
                return;
        }
}

/* Levenshtein distance, for "did you mean"; both strings are short. */
static size_t distance(const char *a, const char *b)
{
        size_t la = strlen(a), lb = strlen(b);
        size_t row[64];
        if (la >= ARRAY_SIZE(row) || lb >= ARRAY_SIZE(row))
                return SIZE_MAX;
        for (size_t j = 0; j <= lb; j++)
                row[j] = j;
        for (size_t i = 1; i <= la; i++) {
                size_t diag = row[0];
                row[0] = i;
                for (size_t j = 1; j <= lb; j++) {
                        size_t up = row[j];
                        size_t best = diag + (a[i - 1] != b[j - 1]);
                        if (up + 1 < best)
                                best = up + 1;
                        if (row[j - 1] + 1 < best)
                                best = row[j - 1] + 1;
                        row[j] = best;
                        diag = up;
                }
        }
        return row[lb];
}

static void walk(struct ctx *c, json_object *map, const struct field *fields, const char *prefix)
{
        struct json_object_iterator it = json_object_iter_begin(map);
        struct json_object_iterator end = json_object_iter_end(map);
        for (; !json_object_iter_equal(&it, &end); json_object_iter_next(&it)) {
                const char *name = json_object_iter_peek_name(&it);
                json_object *v = json_object_iter_peek_value(&it);
                char key[PATH_BUF];
                snprintf(key, sizeof(key), "%s%s%s", prefix, *prefix ? "." : "", name);

                const struct field *f = fields;
                while (f->name && strcmp(f->name, name))
                        f++;
                if (f->name) {
                        parse_field(c, f, key, v);
                        continue;
                }

                const struct field *best = NULL;
                size_t best_d = 3; /* suggest only close names */
                for (f = fields; f->name; f++) {
                        size_t dist = distance(name, f->name);
                        if (dist < best_d) {
                                best_d = dist;
                                best = f;
                        }
                }
                if (best)
                        key_error(c, key, "unknown key (did you mean %s?)", best->name);
                else
                        key_error(c, key, "unknown key");
        }
}

/* ---- checks of single values ----------------------------------------------------------------- */

/* Why fm_mqtt_parse_url() refused url; it only says -EINVAL. */
static const char *url_problem(const char *url)
{
        const char *rest;
        if (!strncasecmp(url, "mqtt://", 7))
                rest = url + 7;
        else if (!strncasecmp(url, "mqtts://", 8))
                rest = url + 8;
        else
                return "the scheme must be mqtt:// or mqtts://";
        if (rest[strcspn(rest, "/?#")])
                return "must not have a path, query or fragment (mqtt://HOST[:PORT])";
        if (strchr(rest, '@'))
                return "must not contain user info (use username_file and password_file)";
        const char *close = rest[0] == '[' ? strchr(rest, ']') : NULL;
        const char *colon = strchr(close ? close : rest, ':');
        if ((rest[0] == '[' && !close) || (colon && strchr(colon + 1, ':')))
                return "an IPv6 address must be in brackets: mqtt://[ADDR]:PORT";
        if (rest[0] == '\0' || rest[0] == ':' || !strncmp(rest, "[]", 2))
                return "the host is empty";
        if (colon)
                return "the port must be a number from 1 to 65535";
        return "the host must be a name, an IPv4 address or [IPv6 address] of at most 255 "
               "characters";
}

static void check_url(struct ctx *c, const char *key, json_object *v)
{
        const char *s;
        if (!get_string(c, key, v, 0, &s))
                return;
        if (fm_mqtt_parse_url(&c->cfg.mqtt, s) < 0)
                key_error(c, key, "invalid URL \"%.*s\": %s", 100, s, url_problem(s));
}

static void check_protocol(struct ctx *c, const char *key, json_object *v)
{
        int p = 0;
        if (json_object_is_type(v, json_type_int) && json_object_get_int64(v) == 5)
                p = 5;
        else if (json_object_is_type(v, json_type_string)) {
                const char *s = json_object_get_string(v);
                if (!strcmp(s, "5") || !strcmp(s, "v5"))
                        p = 5;
                else if (!strcmp(s, "3.1.1") || !strcmp(s, "v311"))
                        p = 4;
        }
        if (p == 0) {
                key_error(c, key, "expected 5 or 3.1.1 (also \"v5\" or \"v311\")");
                return;
        }
        c->cfg.mqtt.protocol = p;
}

static void check_keepalive(struct ctx *c, const char *key, json_object *v)
{
        int64_t i;
        if (!get_int(c, key, v, 0, 65535, &i))
                return;
        if (i > 0 && i < 5) {
                key_error(c, key, "must be 0 (off) or between 5 and 65535 (got %" PRId64 ")", i);
                return;
        }
        c->cfg.mqtt.keepalive_s = (uint16_t)i;
}

static void check_log_level(struct ctx *c, const char *key, json_object *v)
{
        const char *s;
        if (!get_string(c, key, v, 0, &s))
                return;
        int level = fm_config_log_level(s);
        if (level < 0) {
                key_error(c, key, "expected one of err, warning, notice, info, debug");
                return;
        }
        c->cfg.log_level = level;
}

static bool check_client_id(struct ctx *c, const char *key, const char *s)
{
        if (!*s) {
                key_error(c, key, "must not be empty (the session is kept under it)");
                return false;
        }
        for (const char *p = s; *p; p++)
                if ((unsigned char)*p < 0x20 || *p == 0x7f) {
                        key_error(c, key, "must not contain control characters");
                        return false;
                }
        return true;
}

static bool check_prefix(struct ctx *c, const char *key, const char *s)
{
        /* The same rules as fm_decoder_new(), said in words. */
        if (!*s)
                key_error(c, key, "must not be empty");
        else if (strpbrk(s, "+#"))
                key_error(c, key, "must not contain the MQTT wildcards + or #");
        else if (s[strlen(s) - 1] == '/')
                key_error(c, key, "must not end with /");
        else
                return true;
        return false;
}

static bool check_group(struct ctx *c, const char *key, const char *s)
{
        for (const char *p = s; *p; p++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || is_digit(*p) ||
                      *p == '_' || *p == '-')) {
                        key_error(c, key, "may contain only A-Z, a-z, 0-9, _ and - (got '%c')", *p);
                        return false;
                }
        return true;
}

/* A credential or TLS file: "" for none, else it must exist and be readable now. */
static bool check_file(struct ctx *c, const char *key, const char *s)
{
        struct stat st;
        if (!*s)
                return true;
        if (stat(s, &st) < 0) {
                key_error(c, key, "cannot access %s: %s", s, strerror(errno));
                return false;
        }
        if (S_ISDIR(st.st_mode)) {
                key_error(c, key, "%s is a directory", s);
                return false;
        }
        if (access(s, R_OK) < 0) {
                key_error(c, key, "%s is not readable: %s", s, strerror(errno));
                return false;
        }
        return true;
}

static bool check_state_dir(struct ctx *c, const char *key, const char *s)
{
        if (s[0] != '/') {
                key_error(c, key, "must be an absolute path");
                return false;
        }
        return true;
}

static bool check_listen(struct ctx *c, const char *key, const char *s)
{
        struct sockaddr_storage ss;
        unsigned len;
        if (fm_http_parse_listen(s, &ss, &len) < 0) {
                key_error(c, key,
                          "expected a numeric ADDRESS:PORT such as 127.0.0.1:9187 or [::1]:9187 "
                          "(port 0 to 65535; host names such as localhost are not accepted)");
                return false;
        }
        return true;
}

/* ---- the schema ------------------------------------------------------------------------------ */

/* clang-format off */
#define DURATION(n, m, lo, hi) \
        {.name = n, .type = F_DURATION, AT(m), .min = lo, .max = hi, .min_open = true}
#define NUMBER(n, m, lo, hi) \
        {.name = n, .type = F_NUMBER, AT(m), .min = lo, .max = hi, .min_open = true}
#define DURATION0(n, m, hi) \
        {.name = n, .type = F_DURATION, AT(m), .min = 0, .max = hi, .min_open = false}
#define NUMBER0(n, m, lo, hi) \
        {.name = n, .type = F_NUMBER, AT(m), .min = lo, .max = hi, .min_open = false}
#define BOOL(n, m) {.name = n, .type = F_BOOL, AT(m)}
#define COUNT(n, m, lo, hi) {.name = n, .type = F_INT, AT(m), .min = lo, .max = hi}
#define STRING(n, m, fn) {.name = n, .type = F_STRING, AT(m), .check = fn}
#define CUSTOM(n, fn) {.name = n, .type = F_CUSTOM, .custom = fn}
#define SECTION(n, f) {.name = n, .type = F_SECTION, .fields = f}
#define ENUM(n, m, v) {.name = n, .type = F_ENUM, AT(m), .names = v}
/* clang-format on */

static const struct field tls_fields[] = {
        STRING("ca_file", mqtt.ca_file, check_file),
        STRING("cert_file", mqtt.cert_file, check_file),
        STRING("key_file", mqtt.key_file, check_file),
        {0},
};

static const struct field mqtt_fields[] = {
        CUSTOM("url", check_url),
        STRING("client_id", mqtt.client_id, check_client_id),
        CUSTOM("protocol", check_protocol),
        STRING("topic_prefix", mqtt.topic_prefix, check_prefix),
        COUNT("qos", mqtt.qos, 0, 1),
        COUNT("session_expiry_s", mqtt.session_expiry_s, 0, UINT32_MAX),
        CUSTOM("keepalive_s", check_keepalive),
        COUNT("receive_maximum", mqtt.receive_maximum, 1, UINT16_MAX),
        STRING("shared_group", mqtt.shared_group, check_group),
        STRING("username_file", mqtt.username_file, check_file),
        STRING("password_file", mqtt.password_file, check_file),
        SECTION("tls", tls_fields),
        DURATION("reconnect_min_s", mqtt.reconnect_min, 0, DURATION_MAX_S),
        DURATION("reconnect_max_s", mqtt.reconnect_max, 0, DURATION_MAX_S),
        {0},
};

static const struct field http_fields[] = {
        STRING("listen", http_listen, check_listen),
        {0},
};

static const struct field log_fields[] = {
        CUSTOM("level", check_log_level),
        {0},
};

static const struct field decoder_fields[] = {
        COUNT("max_payload_bytes", max_payload, 64, 16 * 1024 * 1024),
        DURATION("max_skew_s", max_skew, 0, DURATION_MAX_S),
        {0},
};

static const struct field fleet_fields[] = {
        COUNT("max_deployments", fleet.max_deployments, 1, UINT32_MAX),
        COUNT("max_versions", fleet.max_versions, 1, UINT32_MAX),
        COUNT("max_versions_per_deployment", fleet.max_versions_per_deployment, 1, UINT32_MAX),
        COUNT("max_instances", fleet.max_instances, 1, UINT32_MAX),
        COUNT("max_instances_per_deployment", fleet.max_instances_per_deployment, 1, UINT32_MAX),
        DURATION("forget_after_s", fleet.forget_after, 0, DURATION_MAX_S),
        DURATION0("retire_grace_s", fleet.retire_grace, 30 * 86400),
        DURATION("version_retention_s", fleet.version_retention, 0, DURATION_MAX_S),
        DURATION("gauge_tau_s", fleet.gauge_tau, 0, DURATION_MAX_S),
        DURATION("latency_window_s", fleet.latency_window, 0, DURATION_MAX_S),
        COUNT("latency_slots", fleet.latency_slots, 1, FM_SKETCH_RING_MAX_SLOTS),
        COUNT("outcomes_per_version", fleet.outcomes_per_version, 0, FM_OUTCOMES_PER_VERSION_MAX),
        {0},
};

static const struct field breaker_fields[] = {
        NUMBER("failure_rate", fleet.breaker.failure_rate, 0, 1),
        NUMBER("slow_call_rate", fleet.breaker.slow_rate, 0, 1),
        NUMBER("slow_call_ms", fleet.breaker.slow_call_ms, 0, DURATION_MAX_S *FM_MS_PER_S),
        COUNT("min_requests", fleet.breaker.min_requests, 1, UINT32_MAX),
        DURATION("window_s", fleet.breaker.window, 0, DURATION_MAX_S),
        COUNT("window_slots", fleet.breaker.window_slots, 1, FM_WINDOW_MAX_SLOTS),
        DURATION("open_base_s", fleet.breaker.open_base, 0, WEEK_S),
        DURATION("open_max_s", fleet.breaker.open_max, 0, WEEK_S),
        COUNT("probes", fleet.breaker.probes, 1, UINT32_MAX),
        DURATION("heartbeat_timeout_s", fleet.breaker.heartbeat_timeout, 0, WEEK_S),
        {0},
};

static void check_dry_run_policies(struct ctx *c, const char *key, json_object *v)
{
        struct fm_governor_config *g = &c->cfg.governor;
        size_t n;
        if (!get_list(c, key, v, "policy names", "policies", FM_GOVERNOR_MAX_DRY_RUN, &n))
                return;
        static const char *const known[] = {"breaker",          "traffic",   "canary",
                                            "rollback",         "autoscale", "autotune",
                                            FM_GOVERNOR_POLICY, "alerting"};
        for (size_t k = 0; k < n; k++) {
                json_object *e = json_object_array_get_idx(v, k);
                const char *s =
                        json_object_is_type(e, json_type_string) ? json_object_get_string(e) : NULL;
                if (!s || name_index(known, ARRAY_SIZE(known), s) == ARRAY_SIZE(known)) {
                        key_error(c, key,
                                  "expected names among breaker, traffic, canary, rollback, "
                                  "autoscale, autotune, governor, alerting");
                        return;
                }
        }
        g->n_dry_run_policies = (uint32_t)n;
        for (size_t k = 0; k < n; k++)
                snprintf(g->dry_run_policy[k], sizeof(g->dry_run_policy[k]), "%s",
                         json_object_get_string(json_object_array_get_idx(v, k)));
}

/*
 * governor.maintenance: a list of weekly windows in UTC,
 *   - {days: [sat, sun], start: "02:00", duration_min: 120}
 * days from mon, tue, wed, thu, fri, sat, sun (or "all"); start HH:MM.
 */
static bool parse_window(struct ctx *c, const char *key, json_object *e,
                         struct fm_governor_window *ret)
{
        static const char *const keys[] = {"days", "start", "duration_min"};
        static const char *const day_names[] = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"};
        _Static_assert(FM_DAY_ALL == (1u << ARRAY_SIZE(day_names)) - 1, "a bit a day");
        struct fm_governor_window w = {0};
        json_object *vals[ARRAY_SIZE(keys)] = {0};
        uint32_t days;

        if (!get_entry(c, key, e, "window", keys, ARRAY_SIZE(keys), vals) ||
            !get_name_set(c, key, vals[0], "window", "days", "[sat, sun]", day_names,
                          ARRAY_SIZE(day_names), &days))
                return false;
        w.days = (uint8_t)days;
        json_object *start = vals[1], *dur = vals[2];
        const char *hhmm =
                json_object_is_type(start, json_type_string) ? json_object_get_string(start) : NULL;
        unsigned h, m;
        char tail;
        if (!hhmm || sscanf(hhmm, "%2u:%2u%c", &h, &m, &tail) != 2 || h > 23 || m > 59 ||
            strlen(hhmm) != 5) {
                key_error(c, key, "a window needs start: \"HH:MM\" (UTC, 24-hour)");
                return false;
        }
        w.start_min = (uint16_t)(h * 60 + m);
        int64_t minutes = json_object_is_type(dur, json_type_int) ? json_object_get_int64(dur) : 0;
        if (minutes < 1 || minutes > FM_MINUTES_PER_WEEK) {
                key_error(c, key, "a window needs duration_min: whole minutes, 1 .. %d",
                          FM_MINUTES_PER_WEEK);
                return false;
        }
        w.duration_min = (uint16_t)minutes;
        *ret = w;
        return true;
}

static void check_maintenance(struct ctx *c, const char *key, json_object *v)
{
        struct fm_governor_config *g = &c->cfg.governor;
        struct fm_governor_window w[FM_GOVERNOR_MAX_WINDOWS];
        size_t n;

        if (!get_list(c, key, v, "windows", "windows", FM_GOVERNOR_MAX_WINDOWS, &n))
                return;
        for (size_t i = 0; i < n; i++)
                if (!parse_window(c, key, json_object_array_get_idx(v, i), &w[i]))
                        return;
        memcpy(g->window, w, n * sizeof(w[0]));
        g->n_windows = (uint32_t)n;
}

static void check_canary_steps(struct ctx *c, const char *key, json_object *v)
{
        struct fm_canary_config *cc = &c->cfg.policies.canary;
        if (!json_object_is_type(v, json_type_array)) {
                type_error(c, key, "a list of percentages", v);
                return;
        }
        size_t n = json_object_array_length(v);
        uint32_t steps[FM_CANARY_STEPS_MAX];
        if (n < 1 || n > FM_CANARY_STEPS_MAX) {
                key_error(c, key, "expected 1 to %d steps", FM_CANARY_STEPS_MAX);
                return;
        }
        for (size_t k = 0; k < n; k++) {
                json_object *e = json_object_array_get_idx(v, k);
                int64_t x = json_object_is_type(e, json_type_int) ? json_object_get_int64(e) : -1;
                if (x < 1 || x > 100 || (k > 0 && (uint32_t)x <= steps[k - 1])) {
                        key_error(c, key,
                                  "expected strictly ascending whole percentages 1..100 "
                                  "ending at 100");
                        return;
                }
                steps[k] = (uint32_t)x;
        }
        if (steps[n - 1] != 100) {
                key_error(c, key, "the last step must be 100");
                return;
        }
        memcpy(cc->steps, steps, n * sizeof(steps[0]));
        cc->n_steps = (uint32_t)n;
}

static void check_objective(struct ctx *c, const char *key, json_object *v)
{
        const char *s;
        if (!get_string(c, key, v, 0, &s))
                return;
        for (int k = 0; k < _FM_TUNE_OBJECTIVE_MAX; k++)
                if (strcmp(s, fm_tune_objective_name((enum fm_tune_objective)k)) == 0) {
                        c->cfg.policies.tune.objective.kind = (enum fm_tune_objective)k;
                        return;
                }
        key_error(c, key, "expected f1, precision_at_recall or cost");
}

static const struct field cooldown_fields[] = {
        DURATION0("restart_s", governor.cooldown[FM_ACTION_RESTART], 30 * 86400),
        DURATION0("scale_s", governor.cooldown[FM_ACTION_SCALE], 30 * 86400),
        DURATION0("set_weights_s", governor.cooldown[FM_ACTION_SET_WEIGHTS], 30 * 86400),
        DURATION0("rollback_s", governor.cooldown[FM_ACTION_ROLLBACK], 30 * 86400),
        DURATION0("set_threshold_s", governor.cooldown[FM_ACTION_SET_THRESHOLD], 30 * 86400),
        {0},
};

static const struct field governor_fields[] = {
        BOOL("paused", governor.paused),
        CUSTOM("dry_run_policies", check_dry_run_policies),
        CUSTOM("maintenance", check_maintenance),
        SECTION("cooldown", cooldown_fields),
        COUNT("rate_per_min", governor.rate_per_min, 1, FM_GOVERNOR_RATE_LIMIT),
        COUNT("rate_burst", governor.rate_burst, 1, FM_GOVERNOR_RATE_LIMIT),
        COUNT("alert_rate_per_min", governor.alert_rate_per_min, 1, FM_GOVERNOR_RATE_LIMIT),
        COUNT("alert_burst", governor.alert_burst, 1, FM_GOVERNOR_RATE_LIMIT),
        NUMBER0("capacity_floor", governor.capacity_floor, 0, 1),
        COUNT("capacity_min_instances", governor.capacity_min_instances, 1, UINT32_MAX),
        DURATION0("restart_settle_s", governor.restart_settle, 30 * 86400),
        COUNT("restart_budget", governor.restart_budget, 1, FM_GOVERNOR_RESTART_BUDGET_MAX),
        DURATION("restart_span_s", governor.restart_span, 0, 30 * 86400),
        NUMBER0("freeze_share", governor.freeze_share, 0, 1),
        DURATION("freeze_span_s", governor.freeze_span, 0, 30 * 86400),
        COUNT("freeze_min_silent", governor.freeze_min_silent, 1, UINT32_MAX),
        DURATION0("freeze_hold_s", governor.freeze_hold, 30 * 86400),
        {0},
};

static const struct field alerting_fields[] = {
        DURATION("resolve_after_s", alerting.resolve_after, 0, 30 * 86400),
        NUMBER("slo_target", alerting.slo_target, 0, 0.999999999),
        DURATION("slo_period_s", alerting.slo_period, 4.32, 30 * 86400),
        COUNT("slo_min_requests", alerting.slo_min_requests, 1, UINT32_MAX),
        {0},
};

static const struct field scale_step_up_fields[] = {
        COUNT("percent", policies.autoscale.up.percent, 0, 100000),
        COUNT("pods", policies.autoscale.up.pods, 0, FM_AUTOSCALE_REPLICAS_MAX),
        DURATION("period_s", policies.autoscale.up.period, 0, 86400),
        {0},
};

static const struct field scale_step_down_fields[] = {
        COUNT("percent", policies.autoscale.down.percent, 0, 100),
        COUNT("pods", policies.autoscale.down.pods, 0, FM_AUTOSCALE_REPLICAS_MAX),
        DURATION("period_s", policies.autoscale.down.period, 0, 86400),
        {0},
};

static const struct field scale_target_fields[] = {
        NUMBER0("gpu_util", policies.autoscale.metric[FM_AUTOSCALE_GPU_UTIL].target, 0, 1),
        NUMBER0("queue_depth", policies.autoscale.metric[FM_AUTOSCALE_QUEUE_DEPTH].target, 0, 1e9),
        NUMBER0("in_flight", policies.autoscale.metric[FM_AUTOSCALE_IN_FLIGHT].target, 0, 1e9),
        NUMBER0("latency_ms", policies.autoscale.metric[FM_AUTOSCALE_LATENCY].target, 0, 3.6e6),
        {0},
};

static const struct field autoscale_fields[] = {
        BOOL("enabled", policies.autoscale_enabled),
        COUNT("min_replicas", policies.autoscale.min_replicas, 1, FM_AUTOSCALE_REPLICAS_MAX),
        COUNT("max_replicas", policies.autoscale.max_replicas, 1, FM_AUTOSCALE_REPLICAS_MAX),
        SECTION("targets", scale_target_fields),
        NUMBER0("tolerance", policies.autoscale.tolerance, 0, 0.99),
        DURATION0("scale_up_window_s", policies.autoscale.up_window, 86400),
        DURATION0("scale_down_window_s", policies.autoscale.down_window, 86400),
        SECTION("scale_up", scale_step_up_fields),
        SECTION("scale_down", scale_step_down_fields),
        NUMBER0("cost_per_instance_hour", policies.autoscale.cost_per_instance_hour, 0, 1e9),
        NUMBER0("budget_per_hour", policies.autoscale.budget_per_hour, 0, 1e12),
        DURATION0("cold_start_s", policies.autoscale.cold_start, 86400),
        BOOL("predictive", policies.autoscale.predictive),
        NUMBER("holt_alpha", policies.autoscale.holt_alpha, 0, 1),
        NUMBER("holt_beta", policies.autoscale.holt_beta, 0, 1),
        {0},
};

static const struct field traffic_fields[] = {
        BOOL("enabled", policies.traffic_enabled),
        COUNT("max_ejection_percent", policies.traffic.max_ejection_percent, 0, 100),
        NUMBER0("healthy_floor", policies.traffic.healthy_floor, 0, 1),
        COUNT("probe_percent", policies.traffic.probe_percent, 1, 100),
        {0},
};

static const struct field canary_fields[] = {
        BOOL("enabled", policies.canary_enabled),
        CUSTOM("steps", check_canary_steps),
        DURATION("interval_s", policies.canary.interval, 0, 86400),
        COUNT("min_requests", policies.canary.min_requests, 1, UINT32_MAX),
        NUMBER0("error_margin", policies.canary.error_margin, 0, 100),
        NUMBER("confidence", policies.canary.confidence, 0.5, 0.999999),
        NUMBER0("max_p99_ratio", policies.canary.max_p99_ratio, 1, 1000),
        {0},
};

static const struct field rollback_fields[] = {
        BOOL("enabled", policies.rollback_enabled),
        NUMBER("accuracy_drop", policies.rollback.accuracy_drop, 0, 0.999999),
        NUMBER0("error_rate_ratio", policies.rollback.error_rate_ratio, 1, 1e6),
        NUMBER0("p99_ratio", policies.rollback.p99_ratio, 1, 1e6),
        NUMBER("slo_target", policies.rollback.slo_target, 0, 0.999999999),
        DURATION("slo_period_s", policies.rollback.slo_period, 4.32, 30 * 86400),
        NUMBER("psi_threshold", policies.rollback.psi_threshold, 0, 1e6),
        COUNT("psi_min_samples", policies.rollback.psi_min_samples, 1, UINT32_MAX),
        COUNT("min_requests", policies.rollback.min_requests, 1, UINT32_MAX),
        COUNT("min_errors", policies.rollback.min_errors, 1, UINT32_MAX),
        COUNT("min_outcomes", policies.rollback.min_outcomes, 1, UINT32_MAX),
        NUMBER0("confidence", policies.rollback.confidence, 0.5, 0.999999),
        DURATION0("known_good_after_s", policies.rollback.known_good_after, 30 * 86400),
        DURATION0("cooldown_s", policies.rollback.cooldown, 30 * 86400),
        {0},
};

static const struct field tune_grid_fields[] = {
        NUMBER0("lo", policies.tune.grid.lo, 0, 1),
        NUMBER0("hi", policies.tune.grid.hi, 0, 1),
        NUMBER("step", policies.tune.grid.step, 0, 1),
        {0},
};

static const struct field autotune_fields[] = {
        BOOL("enabled", policies.autotune_enabled),
        SECTION("grid", tune_grid_fields),
        CUSTOM("objective", check_objective),
        NUMBER0("min_recall", policies.tune.objective.min_recall, 0, 1),
        NUMBER0("cost_false_positive", policies.tune.objective.c_fp, 0, 1e9),
        NUMBER0("cost_false_negative", policies.tune.objective.c_fn, 0, 1e9),
        COUNT("min_positives", policies.tune.min_positives, 1, UINT32_MAX),
        COUNT("min_negatives", policies.tune.min_negatives, 1, UINT32_MAX),
        NUMBER0("min_gain", policies.tune.min_gain, 0, 100),
        NUMBER("max_step", policies.tune.max_step, 0, 1),
        DURATION("window_s", policies.tune_window, 0, 30 * 86400),
        DURATION0("cooldown_s", policies.tune_cooldown, 30 * 86400),
        NUMBER0("initial_threshold", policies.initial_threshold, 0, 1),
        {0},
};

/*
 * actuators.bindings: which backend carries which actions, per deployment,
 *   - {deployment: "*", actions: [scale, restart], backend: systemd}
 * actions from the action names, or [all]; deployment a name or "*".
 */
static bool parse_binding(struct ctx *c, const char *key, json_object *e,
                          struct fm_binding_config *ret)
{
        static const char *const keys[] = {"deployment", "actions", "backend"};
        struct fm_binding_config b = {0};
        json_object *vals[ARRAY_SIZE(keys)] = {0};
        const char *action_names[_FM_ACTION_MAX];
        uint32_t actions;

        _Static_assert(_FM_ACTION_MAX < 32, "actions fit a bit set");
        if (!get_entry(c, key, e, "binding", keys, ARRAY_SIZE(keys), vals))
                return false;
        json_object *dep = vals[0], *backend = vals[2];
        const char *d =
                json_object_is_type(dep, json_type_string) ? json_object_get_string(dep) : NULL;
        if (!d || (strcmp(d, "*") != 0 && !fm_name_valid(d, strlen(d)))) {
                key_error(c, key, "a binding needs deployment: a deployment name or \"*\"");
                return false;
        }
        snprintf(b.deployment, sizeof(b.deployment), "%s", d);
        for (int a = 0; a < _FM_ACTION_MAX; a++)
                action_names[a] = fm_action_name((enum fm_action)a);
        if (!get_name_set(c, key, vals[1], "binding", "actions", "[scale, restart]", action_names,
                          _FM_ACTION_MAX, &actions))
                return false;
        for (int a = 0; a < _FM_ACTION_MAX; a++)
                b.actions[a] = actions & (1u << a);
        int kind = json_object_is_type(backend, json_type_string)
                           ? fm_backend_kind_from_name(json_object_get_string(backend))
                           : -EINVAL;
        if (kind < 0) {
                key_error(c, key,
                          "a binding needs backend: dry-run, systemd, kubernetes, haproxy, "
                          "mlflow or alertmanager");
                return false;
        }
        b.backend = (enum fm_backend_kind)kind;
        *ret = b;
        return true;
}

static void check_bindings(struct ctx *c, const char *key, json_object *v)
{
        struct fm_executor_config *x = &c->cfg.actuators;
        size_t n;

        if (!get_list(c, key, v, "bindings", "bindings", FM_EXECUTOR_BINDINGS_MAX, &n))
                return;
        for (size_t i = 0; i < n; i++)
                if (!parse_binding(c, key, json_object_array_get_idx(v, i), &x->binding[i]))
                        return;
        x->n_bindings = (uint32_t)n;
}

/* ---- actuators: the backends' settings ------------------------------------------------------- */

_Static_assert(sizeof(enum fm_systemd_bus) == sizeof(int) &&
                       sizeof(enum fm_systemd_rollback_order) == sizeof(int) &&
                       sizeof(enum fm_kube_traffic) == sizeof(int) &&
                       sizeof(enum fm_kube_workload) == sizeof(int),
               "F_ENUM stores an int");

static const char *const systemd_bus_names[] = {"system", "user", NULL};
static const char *const systemd_order_names[] = {"start_first", "stop_first", NULL};
static const char *const kube_traffic_names[] = {"none", "istio", "gateway", NULL};
static const char *const kube_kind_names[] = {"deployment", "inferenceservice", NULL};

static bool no_controls(const char *s)
{
        for (const unsigned char *p = (const unsigned char *)s; *p; p++)
                if (*p < 0x20 || *p == 0x7f)
                        return false;
        return true;
}

static bool check_no_controls(struct ctx *c, const char *key, const char *s)
{
        if (no_controls(s))
                return true;
        key_error(c, key, "must not contain control characters");
        return false;
}

static bool check_not_empty(struct ctx *c, const char *key, const char *s)
{
        if (!*s) {
                key_error(c, key, "must not be empty");
                return false;
        }
        return check_no_controls(c, key, s);
}

static bool check_absolute(struct ctx *c, const char *key, const char *s)
{
        return check_state_dir(c, key, s);
}

/* An http:// or https:// base URL; "" allowed only when empty_ok. */
static bool http_url(struct ctx *c, const char *key, const char *s, bool empty_ok)
{
        if (!*s && empty_ok)
                return true;
        if (strncasecmp(s, "http://", 7) != 0 && strncasecmp(s, "https://", 8) != 0)
                key_error(c, key, "expected an http:// or https:// URL");
        else if (!no_controls(s) || strpbrk(s, " ?#"))
                key_error(c, key, "must not contain spaces, control characters, ? or #");
        else if (s[strcspn(s, ":") + 3] == '\0' || s[strcspn(s, ":") + 3] == '/')
                key_error(c, key, "the host is empty");
        else
                return true;
        return false;
}

static bool check_http_url(struct ctx *c, const char *key, const char *s)
{
        return http_url(c, key, s, false);
}

static bool check_http_url_or_empty(struct ctx *c, const char *key, const char *s)
{
        return http_url(c, key, s, true);
}

/* A deployment of a per-deployment list: the event decoder's name rule, or "*". */
static bool check_list_deployment(struct ctx *c, const char *key, const char *s)
{
        if (strcmp(s, "*") == 0 || fm_name_valid(s, strlen(s)))
                return true;
        key_error(c, key,
                  "expected a deployment name ([a-z0-9], with - or . inside, at most %d bytes) "
                  "or \"*\" (got \"%.64s\")",
                  FM_NAME_MAX, s);
        return false;
}

/* ---- actuators.systemd */

static bool check_job_mode(struct ctx *c, const char *key, const char *s)
{
        static const char *const modes[] = {"replace",
                                            "fail",
                                            "replace-irreversibly",
                                            "flush",
                                            "ignore-dependencies",
                                            "ignore-requirements",
                                            NULL};
        char allowed[256];
        for (size_t i = 0; modes[i]; i++)
                if (strcmp(s, modes[i]) == 0)
                        return true;
        list_names(modes, allowed, sizeof(allowed));
        key_error(c, key, "expected %s (got \"%.64s\")", allowed, s);
        return false;
}

static bool check_bus_address(struct ctx *c, const char *key, const char *s)
{
        for (const char *p = s; *p; p++)
                if (*p <= ' ' || *p > '~') {
                        key_error(c, key,
                                  "a D-Bus address is printable ASCII without spaces, such as "
                                  "unix:path=/run/dbus/system_bus_socket");
                        return false;
                }
        return true;
}

/*
 * The unit patterns are checked by the backend's own validation, one field
 * at a time: the default entry with only this field changed.
 */
static bool systemd_pattern_ok(const char *s, bool instance)
{
        struct fm_systemd_config *t = malloc(sizeof(*t));
        if (!t)
                return true; /* the section check after the walk reports what is left */
        fm_systemd_config_default(t);
        char *dst = instance ? t->deployments[0].instance_unit : t->deployments[0].unit;
        snprintf(dst, FM_SYSTEMD_PATTERN_MAX, "%s", s);
        bool ok = fm_systemd_config_validate(t) == 0;
        free(t);
        return ok;
}

static bool check_unit_pattern(struct ctx *c, const char *key, const char *s)
{
        if (systemd_pattern_ok(s, false))
                return true;
        key_error(c, key,
                  "expected a unit name pattern with {index} once, {deployment} and {version} at "
                  "most once each and no {instance}, giving a valid unit name such as "
                  "\"{deployment}-{version}@{index}.service\" (got \"%.64s\")",
                  s);
        return false;
}

static bool check_instance_unit_pattern(struct ctx *c, const char *key, const char *s)
{
        if (systemd_pattern_ok(s, true))
                return true;
        key_error(c, key,
                  "expected a unit name pattern with only {instance} and {deployment}, giving a "
                  "valid unit name such as \"{instance}.service\" (got \"%.64s\")",
                  s);
        return false;
}

/* ---- actuators.kubernetes */

static bool check_kube_label(struct ctx *c, const char *key, const char *s)
{
        if (!*s || fm_kube_label_valid(s))
                return true;
        key_error(c, key,
                  "expected \"\" or an RFC 1123 label: 1 to 63 of a-z, 0-9 and -, starting and "
                  "ending with a letter or digit (got \"%.64s\")",
                  s);
        return false;
}

static bool check_kube_name(struct ctx *c, const char *key, const char *s)
{
        if (fm_kube_name_valid(s))
                return true;
        key_error(c, key,
                  "expected an RFC 1123 subdomain: 1 to 253 of a-z, 0-9, - and ., each "
                  "dot-separated part starting and ending with a letter or digit (got \"%.64s\")",
                  s);
        return false;
}

static bool check_kube_name_or_empty(struct ctx *c, const char *key, const char *s)
{
        return !*s || check_kube_name(c, key, s);
}

static bool check_kube_deployment(struct ctx *c, const char *key, const char *s)
{
        if (!check_list_deployment(c, key, s))
                return false;
        if (strcmp(s, "*") == 0 || fm_kube_name_valid(s))
                return true;
        key_error(c, key, "must also be an RFC 1123 subdomain (no - or . next to a .)");
        return false;
}

/* A pattern of {deployment}, {version} and {target}: the backend's rule (kube.c pattern_ok). */
static bool check_kube_pattern(struct ctx *c, const char *key, const char *s)
{
        char out[FM_KUBE_PATTERN_MAX * 4];
        if (!*s)
                return true;
        for (const char *p = s; *p; p++)
                if ((unsigned char)*p <= ' ' || *p == 0x7f) {
                        key_error(c, key, "must not contain spaces or control characters");
                        return false;
                }
        if (fm_kube_expand(s, "d", "v", out, sizeof(out)) < 0) {
                key_error(c, key,
                          "the placeholders are {deployment}, {version} and {target}; a brace "
                          "must open or close one (got \"%.64s\")",
                          s);
                return false;
        }
        return true;
}

static bool check_identity(struct ctx *c, const char *key, const char *s)
{
        return check_no_controls(c, key, s);
}

static void check_lease_duration(struct ctx *c, const char *key, json_object *v)
{
        static const struct field range = {.min = 1, .max = 3600};
        double d;
        if (!get_number(c, key, v, &range, &d))
                return;
        if (d != floor(d)) {
                key_error(c, key, "must be whole seconds (got %g)", d);
                return;
        }
        c->cfg.actuators.kubernetes.lease.lease_duration = (fm_ms)d * FM_MS_PER_S;
}

/* ---- actuators.haproxy */

static bool check_haproxy_socket(struct ctx *c, const char *key, const char *s)
{
        struct fm_haproxy_config *t = malloc(sizeof(*t));
        if (!t)
                return true;
        fm_haproxy_config_default(t);
        snprintf(t->socket, sizeof(t->socket), "%s", s);
        bool ok = fm_haproxy_config_validate(t) == 0;
        free(t);
        if (!ok)
                key_error(c, key,
                          "expected the absolute path of a unix socket (at most %d bytes) or "
                          "ipv4@127.0.0.1:PORT (loopback 127.0.0.0/8 only, port 1 to 65535)",
                          FM_HAPROXY_SOCKET_MAX);
        return ok;
}

static bool check_haproxy_name_or_empty(struct ctx *c, const char *key, const char *s)
{
        if (!*s || fm_haproxy_name_valid(s))
                return true;
        key_error(c, key,
                  "expected \"\" or a name of 1 to %d of A-Z, a-z, 0-9, ., _ and - (got "
                  "\"%.64s\")",
                  FM_HAPROXY_NAME_MAX, s);
        return false;
}

static bool check_haproxy_server(struct ctx *c, const char *key, const char *s)
{
        struct fm_haproxy_config *t = malloc(sizeof(*t));
        if (!t)
                return true;
        fm_haproxy_config_default(t);
        t->n_mappings = 1;
        snprintf(t->mapping[0].deployment, sizeof(t->mapping[0].deployment), "*");
        snprintf(t->mapping[0].server, sizeof(t->mapping[0].server), "%s", s);
        bool ok = fm_haproxy_config_validate(t) == 0;
        free(t);
        if (!ok)
                key_error(c, key,
                          "expected a server name pattern of A-Z, a-z, 0-9, ., _, - and the "
                          "placeholders {target} and {deployment} (got \"%.64s\")",
                          s);
        return ok;
}

/* ---- actuators.mlflow */

/* alias and the tag keys: the backend's own rules, on a default config with one field set. */
static bool mlflow_field_ok(size_t offset, size_t size, const char *s)
{
        struct fm_mlflow_config *t = malloc(sizeof(*t));
        if (!t)
                return true;
        fm_mlflow_config_default(t);
        snprintf((char *)t + offset, size, "%s", s);
        bool ok = fm_mlflow_config_validate(t) == 0;
        free(t);
        return ok;
}

#define MLFLOW_FIELD(m)                                                                            \
        offsetof(struct fm_mlflow_config, m), sizeof(((struct fm_mlflow_config *)0)->m)

static bool check_mlflow_alias(struct ctx *c, const char *key, const char *s)
{
        if (mlflow_field_ok(MLFLOW_FIELD(alias), s))
                return true;
        key_error(c, key,
                  "expected an MLflow alias: 1 to 255 of A-Z, a-z, 0-9, _ and -, not \"latest\" "
                  "and not v followed by digits (got \"%.64s\")",
                  s);
        return false;
}

static bool check_mlflow_tag(struct ctx *c, const char *key, const char *s)
{
        if (mlflow_field_ok(MLFLOW_FIELD(threshold_tag), s))
                return true;
        key_error(c, key,
                  "expected an MLflow tag key: 1 to 250 of A-Z, a-z, 0-9, _, ., /, - and space "
                  "(got \"%.64s\")",
                  s);
        return false;
}

/* ---- actuators.alertmanager */

static void check_ttl(struct ctx *c, const char *key, json_object *v)
{
        static const struct field range = {.min = 0, .max = 7 * 86400};
        double d;
        if (!get_number(c, key, v, &range, &d))
                return;
        fm_ms ms = (fm_ms)llround(d * FM_MS_PER_S);
        if (ms != 0 && ms < FM_MS_PER_S) {
                key_error(c, key, "must be 0 (no endsAt) or between 1 and 604800 (got %g)", d);
                return;
        }
        c->cfg.actuators.alertmanager.ttl = ms;
}

static bool label_name_ok(const char *s)
{
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_'))
                return false;
        for (const char *p = s; *p; p++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || is_digit(*p) ||
                      *p == '_'))
                        return false;
        return true;
}

/* actuators.alertmanager.labels: a mapping of static label names to values. */
static void check_labels(struct ctx *c, const char *key, json_object *v)
{
        static const char *const reserved[] = {"alertname", "severity", "deployment", "instance"};
        struct fm_alertmanager_config *am = &c->cfg.actuators.alertmanager;
        struct fm_alertmanager_label l[FM_ALERTMANAGER_LABELS_MAX];
        unsigned before = c->n_errors;
        size_t n = 0;

        if (!v) {
                am->n_labels = 0; /* "labels:" with every label commented out */
                return;
        }
        if (!json_object_is_type(v, json_type_object)) {
                type_error(c, key, "a mapping of label names to values", v);
                return;
        }
        if (json_object_object_length(v) > FM_ALERTMANAGER_LABELS_MAX) {
                key_error(c, key, "at most %d labels", FM_ALERTMANAGER_LABELS_MAX);
                return;
        }
        json_object_object_foreach(v, name, val)
        {
                char sub[PATH_BUF];
                const char *s;
                snprintf(sub, sizeof(sub), "%s.%s", key, name);
                if (name_index(reserved, ARRAY_SIZE(reserved), name) < ARRAY_SIZE(reserved)) {
                        key_error(c, sub,
                                  "alertname, severity, deployment and instance are set by "
                                  "fleetmedic and cannot be static labels");
                        continue;
                }
                if (!label_name_ok(name)) {
                        key_error(c, sub,
                                  "a label name is a letter or _ followed by letters, digits "
                                  "and _");
                        continue;
                }
                if (strlen(name) >= FM_ALERTMANAGER_LABEL_NAME_MAX) {
                        key_error(c, sub, "a label name is at most %d bytes",
                                  FM_ALERTMANAGER_LABEL_NAME_MAX - 1);
                        continue;
                }
                if (!get_string(c, sub, val, FM_ALERTMANAGER_LABEL_VALUE_MAX, &s) ||
                    !check_no_controls(c, sub, s))
                        continue;
                memset(&l[n], 0, sizeof(l[n]));
                memcpy(l[n].name, name, strlen(name) + 1);
                memcpy(l[n].value, s, strlen(s) + 1);
                n++;
        }
        if (c->n_errors != before)
                return;
        memset(am->labels, 0, sizeof(am->labels));
        memcpy(am->labels, l, n * sizeof(l[0]));
        am->n_labels = (uint32_t)n;
}

/* ---- per-deployment lists (units, workloads, backends, models) */

/* A key of a list entry: a string copied into the entry, or an enum stored as an int. */
struct item_field {
        const char *name;
        size_t offset, size;      /* into the entry */
        string_fn check;          /* strings: NULL, or the value's check */
        const char *const *names; /* an enum: its values */
};

struct list_schema {
        const char *what;                /* "unit mapping", for messages */
        size_t offset;                   /* of the entries in struct fm_config */
        size_t count_offset;             /* of their uint32_t count */
        size_t item_size;                /* of one entry */
        size_t capacity;                 /* entries, "*" included */
        size_t named_max;                /* entries other than "*" */
        void (*init)(void *item);        /* an entry's defaults */
        const struct item_field *fields; /* the first is deployment */
};

#define ITEM(type, n, m, fn)                                                                       \
        {                                                                                          \
                .name = n, .offset = offsetof(type, m), .size = sizeof(((type *)0)->m),            \
                .check = fn                                                                        \
        }
#define ITEM_ENUM(type, n, m, v)                                                                   \
        {                                                                                          \
                .name = n, .offset = offsetof(type, m), .size = sizeof(((type *)0)->m), .names = v \
        }

/* The line of an entry: that of its first key, else the list's. */
static unsigned item_line(const struct ctx *c, const char *key, const char *item, json_object *e)
{
        if (json_object_is_type(e, json_type_object)) {
                struct json_object_iterator it = json_object_iter_begin(e);
                struct json_object_iterator end = json_object_iter_end(e);
                if (!json_object_iter_equal(&it, &end)) {
                        char sub[PATH_BUF];
                        snprintf(sub, sizeof(sub), "%s.%s", item, json_object_iter_peek_name(&it));
                        unsigned l = line_of(c, sub);
                        if (l > 0)
                                return l;
                }
        }
        return line_of(c, key);
}

/* One entry into item; false after reporting what is wrong with it. */
static bool parse_item(struct ctx *c, const struct list_schema *ls, const char *key, size_t i,
                       json_object *e, void *item)
{
        char path[PATH_BUF], names[256] = "";
        unsigned before = c->n_errors;
        bool have_deployment = false;

        snprintf(path, sizeof(path), "%s[%zu]", key, i);
        for (const struct item_field *f = ls->fields; f->name; f++)
                snprintf(names + strlen(names), sizeof(names) - strlen(names), "%s%s",
                         f == ls->fields ? "" : ", ", f->name);
        if (!json_object_is_type(e, json_type_object)) {
                report(c, item_line(c, key, path, e), path, "each entry is a %s: {%s}, not %s",
                       ls->what, names, type_name(e));
                return false;
        }
        ls->init(item);
        json_object_object_foreach(e, k, val)
        {
                char sub[PATH_BUF + KEY_MAX + 2];
                const struct item_field *f = ls->fields;
                const char *s;
                snprintf(sub, sizeof(sub), "%s.%s", path, k);
                while (f->name && strcmp(f->name, k) != 0)
                        f++;
                if (!f->name) {
                        key_error(c, sub, "unknown key in a %s (%s)", ls->what, names);
                        continue;
                }
                char *dst = (char *)item + f->offset;
                if (f->names) {
                        int x = get_enum(c, sub, val, f->names);
                        if (x >= 0)
                                memcpy(dst, &x, sizeof(x));
                } else if (get_string(c, sub, val, f->size, &s) &&
                           (!f->check || f->check(c, sub, s)))
                        memcpy(dst, s, strlen(s) + 1);
                if (f == ls->fields)
                        have_deployment = true;
        }
        if (!have_deployment)
                report(c, item_line(c, key, path, e), path,
                       "each %s needs deployment: a deployment name or \"*\"", ls->what);
        return c->n_errors == before;
}

/*
 * A per-deployment list replaces the default one as a whole (the default
 * "*" entry goes too). Every entry is checked, each deployment may appear
 * once, and nothing is stored unless all of it is good.
 */
static void parse_list(struct ctx *c, const char *key, json_object *v, const struct list_schema *ls)
{
        if (!json_object_is_type(v, json_type_array)) {
                char what[64];
                snprintf(what, sizeof(what), "a list of %ss", ls->what);
                type_error(c, key, what, v);
                return;
        }
        size_t n = json_object_array_length(v), named = 0;
        if (n > ls->capacity) {
                key_error(c, key, "at most %zu entries%s", ls->capacity,
                          ls->named_max < ls->capacity ? " (named deployments and one \"*\")" : "");
                return;
        }
        char *items = calloc(n ? n : 1, ls->item_size);
        if (!items) {
                c->oom = true;
                return;
        }
        bool ok = true;
        for (size_t i = 0; i < n; i++) {
                char *item = items + i * ls->item_size;
                if (!parse_item(c, ls, key, i, json_object_array_get_idx(v, i), item)) {
                        ok = false;
                        continue;
                }
                const char *dep = item + ls->fields[0].offset;
                if (strcmp(dep, "*") != 0)
                        named++;
                for (size_t j = 0; j < i; j++)
                        if (strcmp(items + j * ls->item_size + ls->fields[0].offset, dep) == 0) {
                                char sub[PATH_BUF];
                                snprintf(sub, sizeof(sub), "%s[%zu].deployment", key, i);
                                key_error(c, sub,
                                          "deployment \"%s\" has an entry already (%s[%zu])", dep,
                                          key, j);
                                ok = false;
                                break;
                        }
        }
        if (ok && named > ls->named_max) {
                key_error(c, key, "at most %zu named deployments (and one \"*\")", ls->named_max);
                ok = false;
        }
        if (ok) {
                char *dst = (char *)&c->cfg + ls->offset;
                uint32_t count = (uint32_t)n;
                memset(dst, 0, ls->capacity * ls->item_size);
                if (n > 0)
                        memcpy(dst, items, n * ls->item_size);
                memcpy((char *)&c->cfg + ls->count_offset, &count, sizeof(count));
        }
        free(items);
}

#define LIST_AT(m, count)                                                                          \
        .offset = offsetof(struct fm_config, m), .count_offset = offsetof(struct fm_config, count)

static void systemd_units_init(void *item)
{
        struct fm_systemd_config def;
        fm_systemd_config_default(&def);
        memcpy(item, &def.deployments[0], sizeof(def.deployments[0]));
        memset(((struct fm_systemd_units *)item)->deployment, 0, FM_NAME_MAX + 1);
}

static const struct item_field systemd_units_fields[] = {
        ITEM(struct fm_systemd_units, "deployment", deployment, check_list_deployment),
        ITEM(struct fm_systemd_units, "unit", unit, check_unit_pattern),
        ITEM(struct fm_systemd_units, "instance_unit", instance_unit, check_instance_unit_pattern),
        {0},
};

static const struct list_schema systemd_units_list = {
        .what = "unit mapping",
        LIST_AT(actuators.systemd.deployments, actuators.systemd.n_deployments),
        .item_size = sizeof(struct fm_systemd_units),
        .capacity = FM_SYSTEMD_DEPLOYMENTS_MAX,
        .named_max = FM_SYSTEMD_DEPLOYMENTS_MAX - 1,
        .init = systemd_units_init,
        .fields = systemd_units_fields,
};

static void kube_workload_init(void *item)
{
        memset(item, 0, sizeof(struct fm_kube_mapping));
        ((struct fm_kube_mapping *)item)->kind = FM_KUBE_WORKLOAD_DEPLOYMENT;
}

static const struct item_field kube_workload_fields[] = {
        ITEM(struct fm_kube_mapping, "deployment", deployment, check_kube_deployment),
        ITEM_ENUM(struct fm_kube_mapping, "kind", kind, kube_kind_names),
        ITEM(struct fm_kube_mapping, "name", workload, check_kube_name_or_empty),
        ITEM(struct fm_kube_mapping, "container", container, check_kube_label),
        ITEM(struct fm_kube_mapping, "image", image, check_kube_pattern),
        ITEM(struct fm_kube_mapping, "storage_uri", storage_uri, check_kube_pattern),
        ITEM(struct fm_kube_mapping, "route", traffic_name, check_kube_name_or_empty),
        ITEM(struct fm_kube_mapping, "destination", destination, check_kube_pattern),
        {0},
};

static const struct list_schema kube_workload_list = {
        .what = "workload mapping",
        LIST_AT(actuators.kubernetes.mapping, actuators.kubernetes.n_mappings),
        .item_size = sizeof(struct fm_kube_mapping),
        .capacity = FM_KUBE_MAPPINGS_MAX,
        .named_max = FM_KUBE_MAPPINGS_MAX - 1,
        .init = kube_workload_init,
        .fields = kube_workload_fields,
};

static void haproxy_backend_init(void *item)
{
        struct fm_haproxy_mapping *m = item;
        memset(m, 0, sizeof(*m));
        snprintf(m->server, sizeof(m->server), "{target}");
}

static const struct item_field haproxy_backend_fields[] = {
        ITEM(struct fm_haproxy_mapping, "deployment", deployment, check_list_deployment),
        ITEM(struct fm_haproxy_mapping, "backend", backend, check_haproxy_name_or_empty),
        ITEM(struct fm_haproxy_mapping, "server", server, check_haproxy_server),
        {0},
};

static const struct list_schema haproxy_backend_list = {
        .what = "backend mapping",
        LIST_AT(actuators.haproxy.mapping, actuators.haproxy.n_mappings),
        .item_size = sizeof(struct fm_haproxy_mapping),
        .capacity = FM_HAPROXY_MAPPINGS_MAX,
        .named_max = FM_HAPROXY_MAPPINGS_MAX,
        .init = haproxy_backend_init,
        .fields = haproxy_backend_fields,
};

static void mlflow_model_init(void *item)
{
        struct fm_mlflow_model_map *m = item;
        memset(m, 0, sizeof(*m));
        m->model[0] = '*';
}

static const struct item_field mlflow_model_fields[] = {
        ITEM(struct fm_mlflow_model_map, "deployment", deployment, check_list_deployment),
        ITEM(struct fm_mlflow_model_map, "model", model, check_not_empty),
        {0},
};

static const struct list_schema mlflow_model_list = {
        .what = "model mapping",
        LIST_AT(actuators.mlflow.models, actuators.mlflow.n_models),
        .item_size = sizeof(struct fm_mlflow_model_map),
        .capacity = FM_MLFLOW_MODELS_MAX,
        .named_max = FM_MLFLOW_MODELS_MAX,
        .init = mlflow_model_init,
        .fields = mlflow_model_fields,
};

static void check_systemd_units(struct ctx *c, const char *key, json_object *v)
{
        parse_list(c, key, v, &systemd_units_list);
}

static void check_kube_workloads(struct ctx *c, const char *key, json_object *v)
{
        parse_list(c, key, v, &kube_workload_list);
}

static void check_haproxy_backends(struct ctx *c, const char *key, json_object *v)
{
        parse_list(c, key, v, &haproxy_backend_list);
}

static void check_mlflow_models(struct ctx *c, const char *key, json_object *v)
{
        parse_list(c, key, v, &mlflow_model_list);
}

/* ---- the backends' tables */

static const struct field systemd_fields[] = {
        ENUM("bus", actuators.systemd.bus, systemd_bus_names),
        STRING("address", actuators.systemd.address, check_bus_address),
        DURATION("job_timeout_s", actuators.systemd.job_timeout, 0, 3600),
        STRING("job_mode", actuators.systemd.job_mode, check_job_mode),
        ENUM("rollback_order", actuators.systemd.rollback_order, systemd_order_names),
        CUSTOM("units", check_systemd_units),
        {0},
};

static const struct field lease_fields[] = {
        BOOL("enabled", actuators.kubernetes.lease.enabled),
        STRING("name", actuators.kubernetes.lease.name, check_kube_name),
        STRING("namespace", actuators.kubernetes.lease.namespace_, check_kube_label),
        STRING("identity", actuators.kubernetes.lease.identity, check_identity),
        CUSTOM("lease_duration_s", check_lease_duration),
        DURATION("renew_deadline_s", actuators.kubernetes.lease.renew_deadline, 0, 3600),
        {.name = "retry_period_s",
         .type = F_DURATION,
         AT(actuators.kubernetes.lease.retry_period),
         .min = 0.01,
         .max = 3600},
        BOOL("release_on_stop", actuators.kubernetes.lease.release_on_stop),
        {0},
};

static const struct field kubernetes_fields[] = {
        BOOL("in_cluster", actuators.kubernetes.in_cluster),
        STRING("service_account_dir", actuators.kubernetes.sa_dir, check_absolute),
        STRING("server", actuators.kubernetes.server, check_http_url_or_empty),
        STRING("token_file", actuators.kubernetes.token_file, check_file),
        STRING("ca_file", actuators.kubernetes.ca_file, check_file),
        STRING("namespace", actuators.kubernetes.namespace_, check_kube_label),
        DURATION("timeout_s", actuators.kubernetes.timeout, 0, 300),
        DURATION("token_reread_s", actuators.kubernetes.token_reread, 0, 3600),
        ENUM("traffic", actuators.kubernetes.traffic, kube_traffic_names),
        BOOL("events", actuators.kubernetes.events),
        CUSTOM("workloads", check_kube_workloads),
        SECTION("lease", lease_fields),
        {0},
};

static const struct field haproxy_fields[] = {
        STRING("socket", actuators.haproxy.socket, check_haproxy_socket),
        DURATION("timeout_s", actuators.haproxy.timeout, 0, 300),
        CUSTOM("backends", check_haproxy_backends),
        {0},
};

static const struct field mlflow_fields[] = {
        STRING("uri", actuators.mlflow.uri, check_http_url),
        STRING("ca_file", actuators.mlflow.ca_file, check_file),
        STRING("token_file", actuators.mlflow.token_file, check_file),
        STRING("username_file", actuators.mlflow.username_file, check_file),
        STRING("password_file", actuators.mlflow.password_file, check_file),
        STRING("alias", actuators.mlflow.alias, check_mlflow_alias),
        STRING("threshold_tag", actuators.mlflow.threshold_tag, check_mlflow_tag),
        STRING("rolled_back_tag", actuators.mlflow.rolled_back_tag, check_mlflow_tag),
        DURATION("timeout_s", actuators.mlflow.timeout, 0, 600),
        CUSTOM("models", check_mlflow_models),
        {0},
};

static const struct field alertmanager_fields[] = {
        STRING("url", actuators.alertmanager.url, check_http_url),
        STRING("ca_file", actuators.alertmanager.ca_file, check_file),
        DURATION("timeout_s", actuators.alertmanager.timeout, 0, 600),
        STRING("alertname", actuators.alertmanager.alertname, check_not_empty),
        STRING("generator_url", actuators.alertmanager.generator_url, check_http_url_or_empty),
        CUSTOM("ttl_s", check_ttl),
        CUSTOM("labels", check_labels),
        {0},
};

static const struct field actuators_fields[] = {
        DURATION("action_timeout_s", actuators.action_timeout, 0, 86400),
        DURATION("backoff_base_s", actuators.retry.backoff_base, 0, 3600),
        DURATION("backoff_cap_s", actuators.retry.backoff_cap, 0, 3600),
        COUNT("max_attempts", actuators.retry.max_attempts, 1, FM_ACTUATOR_ATTEMPTS_MAX),
        COUNT("breaker_failures", actuators.retry.breaker_failures, 1, 1000),
        DURATION("breaker_cooloff_s", actuators.retry.breaker_cooloff, 0, 3600),
        DURATION("breaker_cooloff_max_s", actuators.retry.breaker_cooloff_max, 0, 3600),
        CUSTOM("bindings", check_bindings),
        SECTION("systemd", systemd_fields),
        SECTION("kubernetes", kubernetes_fields),
        SECTION("haproxy", haproxy_fields),
        SECTION("mlflow", mlflow_fields),
        SECTION("alertmanager", alertmanager_fields),
        {0},
};

static const struct field top_fields[] = {
        SECTION("mqtt", mqtt_fields),
        SECTION("http", http_fields),
        STRING("state_dir", state_dir, check_state_dir),
        {.name = "dry_run", .type = F_BOOL, AT(dry_run)},
        {.name = "tick_s", .type = F_DURATION, AT(tick), .min = 0.05, .max = 60},
        SECTION("log", log_fields),
        SECTION("decoder", decoder_fields),
        SECTION("fleet", fleet_fields),
        SECTION("breaker", breaker_fields),
        SECTION("governor", governor_fields),
        SECTION("alerting", alerting_fields),
        SECTION("autoscale", autoscale_fields),
        SECTION("traffic", traffic_fields),
        SECTION("canary", canary_fields),
        SECTION("rollback", rollback_fields),
        SECTION("autotune", autotune_fields),
        SECTION("actuators", actuators_fields),
        {0},
};

/* ---- cross-field rules ----------------------------------------------------------------------- */

static void rule_error(struct ctx *c, const char *a, const char *b, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));

/*
 * A rule between keys a and b is broken: it is reported on the one of them
 * that the file sets, and when it sets both, on the later one: that is
 * where the reader of the file meets the contradiction.
 */
static void rule_error(struct ctx *c, const char *a, const char *b, const char *fmt, ...)
{
        unsigned la = line_of(c, a), lb = line_of(c, b);
        const char *key = lb >= la ? b : a;
        va_list ap;
        va_start(ap, fmt);
        vreport(c, lb >= la ? lb : la, key, fmt, ap);
        va_end(ap);
}

static double secs(fm_ms ms)
{
        return (double)ms / FM_MS_PER_S;
}

/* A target of 0 turns a metric off: the YAML has no separate switch per metric. */
static void autoscale_targets_to_switches(struct fm_autoscale_config *a)
{
        for (int k = 0; k < _FM_AUTOSCALE_METRIC_MAX; k++)
                a->metric[k].enabled = a->metric[k].target > 0;
}

static void policy_checks(struct ctx *c)
{
        struct fm_policies_config *p = &c->cfg.policies;
        const struct fm_autoscale_config *a = &p->autoscale;

        autoscale_targets_to_switches(&p->autoscale);
        if (!failed(c, "autoscale.min_replicas") && !failed(c, "autoscale.max_replicas") &&
            a->min_replicas > a->max_replicas)
                rule_error(c, "autoscale.min_replicas", "autoscale.max_replicas",
                           "min_replicas (%" PRIu32
                           ") must not be greater than max_replicas (%" PRIu32 ")",
                           a->min_replicas, a->max_replicas);
        if (p->autoscale_enabled) {
                bool any = false;
                for (int k = 0; k < _FM_AUTOSCALE_METRIC_MAX; k++)
                        any |= a->metric[k].enabled;
                if (!any)
                        key_error(c, "autoscale.targets",
                                  "autoscale is enabled but no target is set (a target of 0 "
                                  "is off)");
        }
        if (!failed(c, "autotune.grid.lo") && !failed(c, "autotune.grid.hi") &&
            p->tune.grid.lo > p->tune.grid.hi)
                rule_error(c, "autotune.grid.lo", "autotune.grid.hi",
                           "grid lo (%g) must not be greater than hi (%g)", p->tune.grid.lo,
                           p->tune.grid.hi);
        if (c->n_errors)
                return;

        /* the modules' own validations have the last word */
        if (p->autoscale_enabled && fm_autoscale_config_validate(&p->autoscale) < 0)
                key_error(c, "autoscale",
                          "the settings do not fit together (see fleetmedic(8): a budget "
                          "that cannot pay for min_replicas, predictive without cold_start_s, "
                          "a step period of 0, ...)");
        if (p->traffic_enabled && fm_traffic_config_validate(&p->traffic) < 0)
                key_error(c, "traffic", "the settings do not fit together");
        if (p->canary_enabled && fm_canary_config_validate(&p->canary) < 0)
                key_error(c, "canary", "the settings do not fit together");
        if (p->rollback_enabled && fm_rollback_config_validate(&p->rollback) < 0)
                key_error(c, "rollback", "the settings do not fit together");
        if (p->autotune_enabled && fm_tune_config_validate(&p->tune) < 0)
                key_error(c, "autotune",
                          "the settings do not fit together (the grid must have at most "
                          "1001 points; min_recall applies to precision_at_recall)");
        if (c->n_errors == 0 && fm_policies_config_validate(p) < 0)
                key_error(c, "autotune", "window_s, cooldown_s or initial_threshold out of range");
        if (fm_governor_config_validate(&c->cfg.governor) < 0)
                key_error(c, "governor", "the settings do not fit together");
}

/* True when a key under prefix (the section itself included) had an error. */
static bool section_failed(const struct ctx *c, const char *prefix)
{
        size_t n = strlen(prefix);
        json_object_object_foreach(c->failed, k, v)
        {
                (void)v;
                if (strncmp(k, prefix, n) == 0 && (k[n] == '\0' || k[n] == '.' || k[n] == '['))
                        return true;
        }
        return false;
}

/* The Kubernetes backend is created when a binding names it or the Lease is on. */
static bool kube_used(const struct fm_executor_config *x)
{
        if (x->kubernetes.lease.enabled)
                return true;
        for (uint32_t i = 0; i < x->n_bindings; i++)
                if (x->binding[i].backend == FM_BACKEND_KUBERNETES)
                        return true;
        return false;
}

static void kube_checks(struct ctx *c)
{
        const struct fm_kube_config *k = &c->cfg.actuators.kubernetes;
        const struct fm_lease_config *l = &k->lease;

        if (k->in_cluster) {
                static const char *const keys[] = {"actuators.kubernetes.server",
                                                   "actuators.kubernetes.token_file",
                                                   "actuators.kubernetes.ca_file"};
                const char *vals[] = {k->server, k->token_file, k->ca_file};
                for (size_t i = 0; i < ARRAY_SIZE(keys); i++)
                        if (vals[i][0])
                                key_error(c, keys[i],
                                          "must be empty with in_cluster: true (the service "
                                          "account provides it)");
        } else if (!k->server[0] && !failed(c, "actuators.kubernetes.server") &&
                   kube_used(&c->cfg.actuators)) {
                if (l->enabled)
                        rule_error(c, "actuators.kubernetes.server",
                                   "actuators.kubernetes.lease.enabled",
                                   "the Lease needs the Kubernetes API: set "
                                   "actuators.kubernetes.server, or in_cluster: true");
                else
                        rule_error(c, "actuators.kubernetes.server", "actuators.bindings",
                                   "a binding names kubernetes: set actuators.kubernetes.server, "
                                   "or in_cluster: true");
        }

        const char *dur = "actuators.kubernetes.lease.lease_duration_s";
        const char *renew = "actuators.kubernetes.lease.renew_deadline_s";
        const char *retry = "actuators.kubernetes.lease.retry_period_s";
        if (!failed(c, dur) && !failed(c, renew) && l->renew_deadline >= l->lease_duration)
                rule_error(c, dur, renew,
                           "renew_deadline_s (%g) must be less than lease_duration_s (%g)",
                           secs(l->renew_deadline), secs(l->lease_duration));
        else if (!failed(c, renew) && !failed(c, retry) &&
                 (double)l->renew_deadline <= 1.2 * (double)l->retry_period)
                rule_error(c, renew, retry,
                           "renew_deadline_s (%g) must be more than 1.2 times retry_period_s "
                           "(%g)",
                           secs(l->renew_deadline), secs(l->retry_period));
}

/*
 * The backends' own validations have the last word, each on its section
 * when nothing in it had an error already. Kubernetes is checked whether
 * or not it is used, with a stand-in server when none is set (needed only
 * when used: kube_checks() said so).
 */
static void backend_checks(struct ctx *c)
{
        const struct fm_executor_config *x = &c->cfg.actuators;
        const struct fm_mlflow_config *m = &x->mlflow;

        kube_checks(c);
        if (m->username_file[0] && !m->password_file[0] &&
            !failed(c, "actuators.mlflow.password_file"))
                key_error(c, "actuators.mlflow.username_file",
                          "needs actuators.mlflow.password_file as well");
        if (m->password_file[0] && !m->username_file[0] &&
            !failed(c, "actuators.mlflow.username_file"))
                key_error(c, "actuators.mlflow.password_file",
                          "needs actuators.mlflow.username_file as well");

        if (!section_failed(c, "actuators.systemd") && fm_systemd_config_validate(&x->systemd) < 0)
                key_error(c, "actuators.systemd", "the settings do not fit together");
        if (!section_failed(c, "actuators.kubernetes")) {
                struct fm_kube_config *k = malloc(sizeof(*k));
                if (!k)
                        c->oom = true;
                else {
                        *k = x->kubernetes;
                        if (!k->in_cluster && !k->server[0])
                                snprintf(k->server, sizeof(k->server), "https://kubernetes");
                        if (fm_kube_config_validate(k) < 0)
                                key_error(c, "actuators.kubernetes",
                                          "the settings do not fit together");
                        free(k);
                }
        }
        if (!section_failed(c, "actuators.haproxy") && fm_haproxy_config_validate(&x->haproxy) < 0)
                key_error(c, "actuators.haproxy", "the settings do not fit together");
        if (!section_failed(c, "actuators.mlflow") && fm_mlflow_config_validate(m) < 0)
                key_error(c, "actuators.mlflow", "the settings do not fit together");
        if (!section_failed(c, "actuators.alertmanager") &&
            fm_alertmanager_config_validate(&x->alertmanager) < 0)
                key_error(c, "actuators.alertmanager", "the settings do not fit together");
}

static void actuator_checks(struct ctx *c)
{
        const struct fm_actuator_config *r = &c->cfg.actuators.retry;

        if (!failed(c, "actuators.backoff_base_s") && !failed(c, "actuators.backoff_cap_s") &&
            r->backoff_cap < r->backoff_base)
                rule_error(c, "actuators.backoff_base_s", "actuators.backoff_cap_s",
                           "backoff_cap_s (%g) must not be less than backoff_base_s (%g)",
                           secs(r->backoff_cap), secs(r->backoff_base));
        if (!failed(c, "actuators.breaker_cooloff_s") &&
            !failed(c, "actuators.breaker_cooloff_max_s") &&
            r->breaker_cooloff_max < r->breaker_cooloff)
                rule_error(c, "actuators.breaker_cooloff_s", "actuators.breaker_cooloff_max_s",
                           "breaker_cooloff_max_s (%g) must not be less than breaker_cooloff_s "
                           "(%g)",
                           secs(r->breaker_cooloff_max), secs(r->breaker_cooloff));
        backend_checks(c);
}

static void cross_checks(struct ctx *c)
{
        const struct fm_mqtt_config *m = &c->cfg.mqtt;
        const struct fm_fleet_config *fl = &c->cfg.fleet;
        const struct fm_breaker_config *br = &fl->breaker;

        if (!failed(c, "mqtt.reconnect_min_s") && !failed(c, "mqtt.reconnect_max_s") &&
            m->reconnect_min > m->reconnect_max)
                rule_error(c, "mqtt.reconnect_min_s", "mqtt.reconnect_max_s",
                           "reconnect_min_s (%g) must not be greater than reconnect_max_s (%g)",
                           secs(m->reconnect_min), secs(m->reconnect_max));

        if (m->cert_file[0] && !m->key_file[0] && !failed(c, "mqtt.tls.key_file"))
                key_error(c, "mqtt.tls.cert_file", "needs mqtt.tls.key_file as well");
        if (m->key_file[0] && !m->cert_file[0] && !failed(c, "mqtt.tls.cert_file"))
                key_error(c, "mqtt.tls.key_file", "needs mqtt.tls.cert_file as well");

        if (!m->tls && !failed(c, "mqtt.url")) {
                static const char *const keys[] = {"mqtt.tls.ca_file", "mqtt.tls.cert_file",
                                                   "mqtt.tls.key_file"};
                const char *vals[] = {m->ca_file, m->cert_file, m->key_file};
                for (size_t i = 0; i < ARRAY_SIZE(keys); i++)
                        if (vals[i][0])
                                key_error(c, keys[i],
                                          "TLS settings need an mqtts:// URL (mqtt.url is "
                                          "mqtt://)");
        }

        if (m->password_file[0] && !m->username_file[0] && !failed(c, "mqtt.username_file"))
                key_error(c, "mqtt.password_file", "needs mqtt.username_file as well");

        if (!failed(c, "fleet.latency_window_s") && !failed(c, "fleet.latency_slots") &&
            fl->latency_window % fl->latency_slots != 0)
                rule_error(c, "fleet.latency_window_s", "fleet.latency_slots",
                           "latency_window_s (%g) must divide into latency_slots (%" PRIu32
                           ") slots of whole milliseconds",
                           secs(fl->latency_window), fl->latency_slots);

        if (!failed(c, "breaker.window_s") && !failed(c, "breaker.window_slots") &&
            br->window % br->window_slots != 0)
                rule_error(c, "breaker.window_s", "breaker.window_slots",
                           "window_s (%g) must divide into window_slots (%" PRIu32
                           ") slots of whole milliseconds",
                           secs(br->window), br->window_slots);

        if (!failed(c, "breaker.open_base_s") && !failed(c, "breaker.open_max_s") &&
            br->open_max < br->open_base)
                rule_error(c, "breaker.open_base_s", "breaker.open_max_s",
                           "open_max_s (%g) must not be less than open_base_s (%g)",
                           secs(br->open_max), secs(br->open_base));

        /* The fleet's own check has the last word; the rules above should leave it nothing. */
        if (c->n_errors == 0 && fm_fleet_config_validate(fl) < 0)
                key_error(c, "fleet", "rejected by the fleet's validation");

        policy_checks(c);
        actuator_checks(c);
}

/* ---- public ---------------------------------------------------------------------------------- */

void fm_config_default(struct fm_config *cfg)
{
        memset(cfg, 0, sizeof(*cfg));
        fm_mqtt_config_default(&cfg->mqtt);
        snprintf(cfg->http_listen, sizeof(cfg->http_listen), "%s", FM_HTTP_DEFAULT_LISTEN);
        snprintf(cfg->state_dir, sizeof(cfg->state_dir), "%s", "/var/lib/fleetmedic");
        cfg->dry_run = true;
        cfg->tick = 1 * FM_MS_PER_S;
        cfg->log_level = LOG_INFO;
        cfg->max_payload = FM_DECODER_DEFAULT_MAX_PAYLOAD;
        cfg->max_skew = FM_DECODER_DEFAULT_MAX_SKEW_MS;
        fm_fleet_config_default(&cfg->fleet);
        fm_governor_config_default(&cfg->governor);
        fm_alerting_config_default(&cfg->alerting);
        fm_policies_config_default(&cfg->policies);
        fm_executor_config_default(&cfg->actuators);
        /* in the file a target of 0 means off; keep the defaults saying the same */
        for (int k = 0; k < _FM_AUTOSCALE_METRIC_MAX; k++)
                if (!cfg->policies.autoscale.metric[k].enabled)
                        cfg->policies.autoscale.metric[k].target = 0;
}

void fm_config_decoder(const struct fm_config *cfg, struct fm_decoder_config *ret)
{
        *ret = (struct fm_decoder_config){
                .max_payload = cfg->max_payload,
                .max_skew = cfg->max_skew,
                .prefix = cfg->mqtt.topic_prefix,
        };
}

void fm_config_core(const struct fm_config *cfg, struct fm_core_config *ret)
{
        *ret = (struct fm_core_config){
                .fleet = cfg->fleet,
                .policies = cfg->policies,
                .governor = cfg->governor,
                .alerting = cfg->alerting,
        };
}

int fm_config_log_level(const char *name)
{
        static const struct {
                const char *name;
                int level;
        } levels[] = {
                {"err", LOG_ERR},   {"warning", LOG_WARNING}, {"notice", LOG_NOTICE},
                {"info", LOG_INFO}, {"debug", LOG_DEBUG},
        };
        if (!name)
                return -EINVAL;
        for (size_t i = 0; i < ARRAY_SIZE(levels); i++)
                if (!strcmp(name, levels[i].name))
                        return levels[i].level;
        return -EINVAL;
}

/* Reads at most FILE_MAX bytes of path. Returns 0, -EFBIG, or -errno (-EISDIR for a directory). */
static int read_file(const char *path, char **ret, size_t *ret_len)
{
        return fm_read_small_file(path, FILE_MAX, ret, ret_len);
}

/*
 * The start of a load: path read into *ret_buf and the context's tables made.
 * Returns 0 or a negative errno, reported where it is about the file.
 */
static int load_start(struct ctx *c, const char *path, char **ret_buf, size_t *ret_len)
{
        int r = read_file(path, ret_buf, ret_len);
        if (r == -EFBIG)
                report(c, 0, NULL, "larger than %d bytes", FILE_MAX);
        else if (r < 0)
                report(c, 0, NULL, "cannot read: %s", strerror(-r));
        if (r < 0)
                return r;
        c->lines = json_object_new_object();
        c->failed = json_object_new_object();
        c->c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
        if (!c->lines || !c->failed || !c->c_locale)
                return -ENOMEM;
        return 0;
}

/* The end of a load that returns r: the messages written to errors, c freed. */
static int load_end(struct ctx *c, int r, FILE *errors, unsigned *ret_n_errors)
{
        if (r == -ENOMEM)
                report(c, 0, NULL, "out of memory");
        if (ret_n_errors)
                *ret_n_errors = c->n_errors;
        flush_errors(c, errors);
        json_object_put(c->lines);
        json_object_put(c->failed);
        if (c->c_locale)
                freelocale(c->c_locale);
        free(c);
        return r;
}

int fm_config_load(const char *path, struct fm_config *ret, FILE *errors, unsigned *ret_n_errors)
{
        struct ctx *c = calloc(1, sizeof(*c));
        char *buf = NULL;
        size_t len = 0;
        json_object *root = NULL;
        int r;

        if (!c)
                return -ENOMEM;
        c->file = path ? path : "(null)";
        if (!path || !ret) {
                r = -EINVAL;
                report(c, 0, NULL, "no configuration file given");
                goto out;
        }
        fm_config_default(&c->cfg);

        r = load_start(c, path, &buf, &len);
        if (r < 0)
                goto out;

        r = build_tree(c, buf, len, &root);
        if (r < 0)
                goto out;
        if (root)
                walk(c, root, top_fields, "");
        if (c->n_errors == 0 || root)
                cross_checks(c);

        r = c->oom ? -ENOMEM : c->n_errors > 0 ? -EINVAL : 0;
        if (r == 0)
                *ret = c->cfg;
out:
        json_object_put(root);
        free(buf);
        return load_end(c, r, errors, ret_n_errors);
}

int fm_yaml_load(const char *path, json_object **ret_root, json_object **ret_lines, FILE *errors)
{
        struct ctx *c = calloc(1, sizeof(*c));
        char *buf = NULL;
        size_t len = 0;
        json_object *root = NULL;
        int r;

        if (!c)
                return -ENOMEM;
        c->file = path ? path : "(null)";
        if (!path || !ret_root) {
                r = -EINVAL;
                report(c, 0, NULL, "no file given");
                goto out;
        }
        r = load_start(c, path, &buf, &len);
        if (r < 0)
                goto out;
        r = build_tree(c, buf, len, &root);
        if (r == 0 && c->n_errors > 0)
                r = -EINVAL;
        if (r == 0 && !root)
                root = json_object_new_object();
        if (r == 0 && !root)
                r = -ENOMEM;
        if (r == 0) {
                *ret_root = root;
                root = NULL;
                if (ret_lines) {
                        *ret_lines = c->lines;
                        c->lines = NULL;
                }
        }
out:
        json_object_put(root);
        free(buf);
        return load_end(c, r, errors, NULL);
}
