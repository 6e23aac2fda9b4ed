/* SPDX-License-Identifier: MIT */
#include "replay.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "audit.h"
#include "buf.h"

#define DECISIONS_TOPIC_SUFFIX "/_fleetmedic/decisions"

void fm_replay_log_done(struct fm_replay_log *log)
{
        if (!log)
                return;
        for (size_t k = 0; k < log->n; k++) {
                free(log->entry[k].topic);
                free(log->entry[k].payload);
        }
        free(log->entry);
        *log = (struct fm_replay_log){0};
}

static bool ends_with(const char *s, const char *suffix)
{
        size_t n = strlen(s), m = strlen(suffix);
        return n >= m && memcmp(s + n - m, suffix, m) == 0;
}

static int grow(struct fm_replay_log *log)
{
        if (log->n < log->cap)
                return 0;
        if (log->cap >= FM_REPLAY_ENTRIES_MAX)
                return -E2BIG;
        size_t cap = log->cap ? log->cap * 2 : 1024;
        if (cap > FM_REPLAY_ENTRIES_MAX)
                cap = FM_REPLAY_ENTRIES_MAX;
        struct fm_replay_entry *e = realloc(log->entry, cap * sizeof(*e));
        if (!e)
                return -ENOMEM;
        log->entry = e;
        log->cap = cap;
        return 0;
}

/* A time in ms from a JSON number: an integer, or a double rounded to the nearest ms. */
static bool ms_of(json_object *o, double scale, fm_ms *ret)
{
        if (json_object_is_type(o, json_type_int) && scale == 1) {
                *ret = json_object_get_int64(o);
                return true;
        }
        if (!json_object_is_type(o, json_type_int) && !json_object_is_type(o, json_type_double))
                return false;
        double v = json_object_get_double(o) * scale;
        if (!isfinite(v) || fabs(v) > 9e15)
                return false;
        *ret = (fm_ms)llround(v);
        return true;
}

int fm_replay_log_add_line(struct fm_replay_log *log, const char *line, size_t len)
{
        json_tokener *tok = NULL;
        json_object *root = NULL, *t, *topic, *payload, *source;
        int r = -EBADMSG;

        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
                len--;
        if (len > FM_REPLAY_LINE_MAX)
                return -E2BIG;
        if ((r = grow(log)) < 0)
                return r;
        r = -EBADMSG;
        tok = json_tokener_new();
        if (!tok)
                return -ENOMEM;
        root = json_tokener_parse_ex(tok, line, (int)len);
        if (!root || json_tokener_get_error(tok) != json_tokener_success ||
            tok->char_offset != (int)len || !json_object_is_type(root, json_type_object))
                goto out;
        struct fm_replay_entry e = {0};
        if (!json_object_object_get_ex(root, "t", &t) || !ms_of(t, 1, &e.t) ||
            !json_object_object_get_ex(root, "topic", &topic) ||
            !json_object_is_type(topic, json_type_string) ||
            !json_object_object_get_ex(root, "payload", &payload) ||
            !json_object_is_type(payload, json_type_string))
                goto out;
        const char *src = NULL;
        if (json_object_object_get_ex(root, "source", &source) &&
            json_object_is_type(source, json_type_string))
                src = json_object_get_string(source);
        e.topic = strdup(json_object_get_string(topic));
        e.payload_len = (size_t)json_object_get_string_len(payload);
        e.payload = malloc(e.payload_len + 1);
        if (!e.topic || !e.payload) {
                free(e.topic);
                free(e.payload);
                r = -ENOMEM;
                goto out;
        }
        memcpy(e.payload, json_object_get_string(payload), e.payload_len);
        e.payload[e.payload_len] = '\0';
        e.source = (src && strcmp(src, "controller") == 0) ||
                                   ends_with(e.topic, DECISIONS_TOPIC_SUFFIX)
                           ? FM_REPLAY_DECISION
                           : FM_REPLAY_EVENT;
        log->entry[log->n++] = e;
        r = 0;
out:
        if (r == -EBADMSG)
                log->bad_lines++;
        json_object_put(root);
        json_tokener_free(tok);
        return r;
}

static bool copy_str(json_object *root, const char *key, char *out, size_t size, bool required)
{
        json_object *o;
        out[0] = '\0';
        if (!json_object_object_get_ex(root, key, &o) || !json_object_is_type(o, json_type_string))
                return !required;
        const char *s = json_object_get_string(o);
        if (strlen(s) >= size)
                return false;
        memcpy(out, s, strlen(s) + 1);
        return true;
}

int fm_replay_decision_parse(const char *json, size_t len, struct fm_replay_decision *d)
{
        json_tokener *tok = json_tokener_new();
        json_object *root, *ts;
        char type[16];
        int r = -EBADMSG;

        if (!tok)
                return -ENOMEM;
        root = json_tokener_parse_ex(tok, json, (int)len);
        if (!root || json_tokener_get_error(tok) != json_tokener_success ||
            !json_object_is_type(root, json_type_object))
                goto out;
        struct fm_replay_decision x = {.match = -1};
        if (!json_object_object_get_ex(root, "ts", &ts) || !ms_of(ts, FM_MS_PER_S, &x.ts) ||
            !copy_str(root, "type", type, sizeof(type), true) ||
            !copy_str(root, "deployment", x.deployment, sizeof(x.deployment), true) ||
            !copy_str(root, "instance", x.instance, sizeof(x.instance), false))
                goto out;
        if (strcmp(type, "transition") == 0) {
                x.transition = true;
                if (!copy_str(root, "to", x.action, sizeof(x.action), true) ||
                    !copy_str(root, "from", x.policy, sizeof(x.policy), true))
                        goto out;
        } else if (strcmp(type, "action") == 0) {
                if (!copy_str(root, "action", x.action, sizeof(x.action), true) ||
                    !copy_str(root, "policy", x.policy, sizeof(x.policy), true) ||
                    !copy_str(root, "verdict", x.verdict, sizeof(x.verdict), true))
                        goto out;
        } else {
                goto out;
        }
        *d = x;
        r = 0;
out:
        json_object_put(root);
        json_tokener_free(tok);
        return r;
}

struct fm_replay_result *fm_replay_result_free(struct fm_replay_result *r)
{
        if (!r)
                return NULL;
        for (uint32_t k = 0; k < r->n_decisions; k++)
                free(r->decision[k].record);
        for (uint32_t k = 0; k < r->n_recorded; k++)
                free(r->recorded[k].record);
        free(r->decision);
        free(r->recorded);
        free(r);
        return NULL;
}

static int add_decision(struct fm_replay_decision **list, uint32_t *n, uint64_t *dropped,
                        const char *json, size_t len)
{
        struct fm_replay_decision d;
        int r = fm_replay_decision_parse(json, len, &d);
        if (r < 0)
                return r;
        if (*n >= FM_REPLAY_DECISIONS_MAX) {
                (*dropped)++;
                return 0;
        }
        /* the capacity is 2n after each power of two n (16 at first): full when n is one */
        if ((*n & (*n - 1)) == 0) {
                uint32_t cap = *n ? *n * 2 : 16;
                struct fm_replay_decision *p = realloc(*list, cap * sizeof(*p));
                if (!p)
                        return -ENOMEM;
                *list = p;
        }
        d.record = strndup(json, len);
        if (!d.record)
                return -ENOMEM;
        (*list)[(*n)++] = d;
        return 0;
}

struct replay {
        const struct fm_replay_options *opt;
        struct fm_core *core;
        struct fm_replay_result *res;
        const struct fm_replay_log *log;
        size_t cursor; /* the first event that may wake the loop for the next tick */
        struct fm_buf buf;
        fm_ms *anchor; /* recorded decision times, ascending */
        size_t n_anchor, next_anchor;
};

static int tick_at(struct replay *rp, fm_ms now)
{
        const struct fm_plan *plan;
        struct fm_core_tick_errors e;
        struct fm_replay_result *res = rp->res;
        int r;

        res->ticks++;
        if (fm_core_tick(rp->core, now, &plan, &e) < 0)
                res->tick_errors++;
        for (uint32_t k = 0; k < plan->n_transitions; k++) {
                fm_buf_reset(&rp->buf);
                if ((r = fm_audit_transition(&rp->buf, &plan->transition[k])) < 0)
                        return r;
                r = add_decision(&res->decision, &res->n_decisions, &res->decisions_dropped,
                                 rp->buf.data, rp->buf.len);
                if (r < 0)
                        return r;
        }
        for (uint32_t k = 0; k < plan->n_intents; k++) {
                const struct fm_intent *it = &plan->intent[k];
                const char *outcome = it->verdict == FM_VERDICT_APPROVED  ? "approved"
                                      : it->verdict == FM_VERDICT_DRY_RUN ? "dry_run"
                                                                          : "blocked";
                fm_buf_reset(&rp->buf);
                if ((r = fm_audit_intent(&rp->buf, it, plan, outcome)) < 0)
                        return r;
                r = add_decision(&res->decision, &res->n_decisions, &res->decisions_dropped,
                                 rp->buf.data, rp->buf.len);
                if (r < 0)
                        return r;
        }
        return 0;
}

/*
 * The tick after p. A live controller re-arms its timer when a tick is done
 * and its event loop runs the tick at the first wake-up after that: the
 * next message when one comes within a quarter tick, else the timer's own
 * wake-up (coalesced by the loop within that quarter). So: a recorded tick
 * time within 1.5 ticks wins; else the first event at or after p + tick if
 * it comes within a quarter tick (it is applied first, then the tick);
 * else p + tick.
 */
static fm_ms next_tick(struct replay *rp, fm_ms p)
{
        const struct fm_replay_log *log = rp->log;
        fm_ms tick = rp->opt->tick, due = p + tick;
        while (rp->next_anchor < rp->n_anchor && rp->anchor[rp->next_anchor] <= p)
                rp->next_anchor++;
        if (rp->next_anchor < rp->n_anchor && rp->anchor[rp->next_anchor] <= p + tick + tick / 2)
                return rp->anchor[rp->next_anchor];
        while (rp->cursor < log->n &&
               (log->entry[rp->cursor].t < due || log->entry[rp->cursor].source != FM_REPLAY_EVENT))
                rp->cursor++;
        if (rp->cursor < log->n && log->entry[rp->cursor].t <= due + tick / 4)
                return log->entry[rp->cursor].t;
        return due;
}

static int cmp_ms(const void *a, const void *b)
{
        fm_ms x = *(const fm_ms *)a, y = *(const fm_ms *)b;
        return (x > y) - (x < y);
}

static bool same_key(const struct fm_replay_decision *a, const struct fm_replay_decision *b)
{
        return a->transition == b->transition && strcmp(a->deployment, b->deployment) == 0 &&
               strcmp(a->instance, b->instance) == 0 && strcmp(a->action, b->action) == 0 &&
               strcmp(a->policy, b->policy) == 0 && strcmp(a->verdict, b->verdict) == 0;
}

/*
 * Each recorded decision, in time order, takes the nearest unmatched
 * replayed one with its key within one tick. Replayed decisions are in
 * time order (ticks never go back), so the candidates are found by binary
 * search.
 */
static void compare(struct fm_replay_result *res, fm_ms tick)
{
        for (uint32_t k = 0; k < res->n_recorded; k++) {
                struct fm_replay_decision *rec = &res->recorded[k];
                uint32_t lo = 0, hi = res->n_decisions;
                while (lo < hi) {
                        uint32_t mid = lo + (hi - lo) / 2;
                        if (res->decision[mid].ts < rec->ts - tick)
                                lo = mid + 1;
                        else
                                hi = mid;
                }
                int64_t best = -1;
                fm_ms best_d = 0;
                for (uint32_t j = lo; j < res->n_decisions && res->decision[j].ts <= rec->ts + tick;
                     j++) {
                        struct fm_replay_decision *d = &res->decision[j];
                        if (d->match >= 0 || !same_key(d, rec))
                                continue;
                        fm_ms dist = llabs(d->ts - rec->ts);
                        if (best < 0 || dist < best_d) {
                                best = j;
                                best_d = dist;
                        }
                }
                if (best >= 0) {
                        rec->match = (int32_t)best;
                        res->decision[best].match = (int32_t)k;
                        res->matched++;
                } else {
                        res->missing++;
                }
        }
        if (res->n_recorded > 0)
                for (uint32_t j = 0; j < res->n_decisions; j++)
                        if (res->decision[j].match < 0)
                                res->extra++;
}

int fm_replay_run(const struct fm_replay_log *log, const struct fm_replay_options *opt,
                  struct fm_replay_result **ret)
{
        struct replay rp = {.opt = opt, .log = log};
        struct fm_decoder *dec = NULL;
        struct fm_event *ev = NULL;
        struct fm_core_config core;
        int r;

        if (!log || !opt || !opt->core || !opt->decoder || opt->tick <= 0 || !ret)
                return -EINVAL;
        core = *opt->core;
        core.governor.dry_run = true;

        rp.res = calloc(1, sizeof(*rp.res));
        ev = malloc(sizeof(*ev));
        rp.anchor = calloc(log->n ? log->n : 1, sizeof(*rp.anchor));
        if (!rp.res || !ev || !rp.anchor) {
                r = -ENOMEM;
                goto fail;
        }
        if ((r = fm_decoder_new(opt->decoder, &dec)) < 0 || (r = fm_core_new(&core, &rp.core)) < 0)
                goto fail;

        struct fm_replay_result *res = rp.res;
        for (size_t k = 0; k < log->n; k++) {
                const struct fm_replay_entry *e = &log->entry[k];
                if (e->source != FM_REPLAY_DECISION)
                        continue;
                uint32_t before = res->n_recorded;
                r = add_decision(&res->recorded, &res->n_recorded, &res->decisions_dropped,
                                 e->payload, e->payload_len);
                if (r == -ENOMEM)
                        goto fail;
                if (res->n_recorded > before)
                        rp.anchor[rp.n_anchor++] = res->recorded[before].ts;
        }
        qsort(rp.anchor, rp.n_anchor, sizeof(*rp.anchor), cmp_ms);

        if (log->n > 0) {
                fm_ms clock = log->entry[0].t;
                fm_ms next = next_tick(&rp, clock);
                res->first = res->last = clock;
                for (size_t k = 0; k < log->n; k++) {
                        const struct fm_replay_entry *e = &log->entry[k];
                        fm_ms t = e->t > clock ? e->t : clock;
                        while (next < t) {
                                if ((r = tick_at(&rp, next)) < 0)
                                        goto fail;
                                next = next_tick(&rp, next);
                        }
                        clock = t;
                        if (e->source != FM_REPLAY_EVENT)
                                continue;
                        enum fm_reject why = FM_REJECT_NONE;
                        res->events++;
                        r = fm_decoder_decode(dec, e->topic, strlen(e->topic), e->payload,
                                              e->payload_len, t, ev, &why);
                        if (r == 0)
                                r = fm_core_apply(rp.core, ev, &why);
                        if (r == 0)
                                res->applied++;
                        else if (r == -EBADMSG && (unsigned)why < _FM_REJECT_MAX)
                                res->rejected[why]++;
                        else if (r == -ENOMEM)
                                goto fail;
                }
                while (next <= clock) {
                        if ((r = tick_at(&rp, next)) < 0)
                                goto fail;
                        next = next_tick(&rp, next);
                }
                res->last = clock;
        }
        compare(res, opt->tick);
        *ret = res;
        rp.res = NULL;
        r = 0;
fail:
        fm_replay_result_free(rp.res);
        fm_core_free(rp.core);
        fm_decoder_free(dec);
        fm_buf_done(&rp.buf);
        free(rp.anchor);
        free(ev);
        return r;
}
