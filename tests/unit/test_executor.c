/* SPDX-License-Identifier: MIT */

/*
 * The executor on a real sd-event loop, with a real journal in a temporary
 * state directory and the dry-run backend: routing, write-ahead journaling,
 * the outcomes that never reach a backend, and settling after a restart.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <systemd/sd-event.h>

#include "executor.h"
#include "journal.h"

#include "../integration/proc.h"

#define SEEN_MAX 16

struct seen {
        unsigned n;
        char outcome[SEEN_MAX][32];
        char backend[SEEN_MAX][32];
        char key[SEEN_MAX][FM_INTENT_KEY_MAX];
        bool settled[SEEN_MAX];
};

struct fixture {
        char dir[64];
        sd_event *event;
        struct fm_journal *journal;
        struct fm_executor *x;
        struct fm_plan plan;
        struct seen seen;
};

static void on_done(void *userdata, const struct fm_execution *e)
{
        struct seen *s = userdata;
        assert_true(s->n < SEEN_MAX);
        snprintf(s->outcome[s->n], sizeof(s->outcome[0]), "%s", e->outcome);
        snprintf(s->backend[s->n], sizeof(s->backend[0]), "%s", e->backend ? e->backend : "-");
        snprintf(s->key[s->n], sizeof(s->key[0]), "%s", e->key);
        s->settled[s->n] = e->settled;
        s->n++;
}

static fm_ms now_ms(struct fixture *f)
{
        uint64_t usec;
        assert_int_equal(sd_event_now(f->event, CLOCK_REALTIME, &usec) >= 0, 1);
        return (fm_ms)(usec / 1000);
}

/* Runs the loop until n callbacks were seen (at most 5 s). */
static void run_until(struct fixture *f, unsigned n)
{
        int64_t deadline = fm_test_now_ms() + 5000;
        while (f->seen.n < n) {
                assert_true(fm_test_now_ms() < deadline);
                assert_true(sd_event_run(f->event, 50 * 1000) >= 0);
        }
}

static void bind_all_to_dryrun(struct fm_executor_config *cfg, const char *deployment)
{
        struct fm_binding_config *b = &cfg->binding[cfg->n_bindings++];
        snprintf(b->deployment, sizeof(b->deployment), "%s", deployment);
        for (int a = 0; a < _FM_ACTION_MAX; a++)
                b->actions[a] = a != FM_ACTION_ALERT; /* alerts stay unbound */
        b->backend = FM_BACKEND_DRYRUN;
}

static void open_executor(struct fixture *f)
{
        struct fm_executor_config cfg;
        fm_executor_config_default(&cfg);
        bind_all_to_dryrun(&cfg, "*");
        assert_int_equal(fm_journal_open(f->dir, NULL, &f->journal), 0);
        assert_int_equal(fm_executor_new(f->event, &cfg, f->journal, 1, on_done, &f->seen, &f->x),
                         0);
}

static void close_executor(struct fixture *f)
{
        f->x = fm_executor_free(f->x);
        f->journal = fm_journal_free(f->journal);
}

static int setup(void **state)
{
        struct fixture *f = calloc(1, sizeof(*f));
        assert_non_null(f);
        snprintf(f->dir, sizeof(f->dir), "/tmp/fm-test-executor-XXXXXX");
        assert_non_null(mkdtemp(f->dir));
        assert_int_equal(sd_event_new(&f->event), 0);
        assert_int_equal(fm_plan_init(&f->plan, 16, 16), 0);
        open_executor(f);
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        struct fixture *f = *state;
        close_executor(f);
        fm_plan_done(&f->plan);
        sd_event_unref(f->event);
        fm_rm_tree(f->dir);
        free(f);
        return 0;
}

static struct fm_intent *rollback(struct fixture *f, const char *key)
{
        struct fm_intent *it = fm_plan_add_intent(&f->plan, FM_ACTION_ROLLBACK, "rollback");
        assert_non_null(it);
        snprintf(it->deployment, sizeof(it->deployment), "web");
        snprintf(it->key, sizeof(it->key), "%s", key);
        snprintf(it->arg.rollback.from, sizeof(it->arg.rollback.from), "v2");
        snprintf(it->arg.rollback.to, sizeof(it->arg.rollback.to), "v1");
        it->verdict = FM_VERDICT_APPROVED;
        return it;
}

/* Approved, bound, journaled, executed once; the same key again is a duplicate. */
static void test_execute_once(void **state)
{
        struct fixture *f = *state;
        struct fm_journal_key k;
        const struct fm_intent *it = rollback(f, "rollback/web/v2/v1");

        assert_int_equal(fm_executor_submit(f->x, &f->plan, it, 0, now_ms(f)), 0);
        /* journaled before the backend got it: pending until the outcome */
        assert_int_equal(fm_journal_lookup(f->journal, it->key, &k), 0);
        assert_int_equal(k.pending, 1);
        assert_int_equal(fm_executor_in_flight(f->x), 1);
        run_until(f, 1);
        assert_string_equal(f->seen.outcome[0], "ok");
        assert_string_equal(f->seen.backend[0], "dry-run");
        assert_false(f->seen.settled[0]);
        assert_int_equal(fm_executor_in_flight(f->x), 0);
        assert_int_equal(fm_journal_lookup(f->journal, it->key, &k), 0);
        assert_int_equal(k.pending, 0);
        assert_int_equal(k.outcome, FM_JOURNAL_OK);

        /* never repeated, also after a restart */
        assert_int_equal(fm_executor_submit(f->x, &f->plan, it, 0, now_ms(f)), 1);
        assert_string_equal(f->seen.outcome[1], "duplicate");
        close_executor(f);
        open_executor(f);
        assert_int_equal(fm_executor_submit(f->x, &f->plan, it, 0, now_ms(f)), 1);
        assert_string_equal(f->seen.outcome[2], "duplicate");
        assert_int_equal(fm_executor_in_flight(f->x), 0);
}

/* What never reaches a backend ends at once, and nothing is journaled as pending. */
static void test_immediate_outcomes(void **state)
{
        struct fixture *f = *state;
        struct fm_journal_key k;

        struct fm_intent *alert = fm_plan_add_intent(&f->plan, FM_ACTION_ALERT, "alerting");
        assert_non_null(alert);
        snprintf(alert->deployment, sizeof(alert->deployment), "web");
        snprintf(alert->key, sizeof(alert->key), "alert/web/1");
        snprintf(alert->arg.alert.summary, sizeof(alert->arg.alert.summary), "s");
        alert->verdict = FM_VERDICT_APPROVED;
        assert_int_equal(fm_executor_submit(f->x, &f->plan, alert, 0, now_ms(f)), 1);
        assert_string_equal(f->seen.outcome[0], "unbound");
        assert_string_equal(f->seen.backend[0], "-");
        assert_int_equal(fm_journal_lookup(f->journal, alert->key, &k), -ENOENT);

        /* a verdict other than approved is not executed at all */
        struct fm_intent *it = rollback(f, "rollback/web/v3/v1");
        it->verdict = FM_VERDICT_DRY_RUN;
        assert_int_equal(fm_executor_submit(f->x, &f->plan, it, 0, now_ms(f)), -EINVAL);
        assert_int_equal(f->seen.n, 1);

        /* a stale fencing token: refused, not executed */
        it->verdict = FM_VERDICT_APPROVED;
        assert_int_equal(fm_executor_submit(f->x, &f->plan, it, 7, now_ms(f)), 0);
        run_until(f, 2);
        assert_string_equal(f->seen.outcome[1], "ok");
        struct fm_intent *late = rollback(f, "rollback/web/v4/v1");
        assert_int_equal(fm_executor_submit(f->x, &f->plan, late, 6, now_ms(f)), 1);
        assert_string_equal(f->seen.outcome[2], "refused");
        assert_int_equal(fm_journal_lookup(f->journal, late->key, &k), -ENOENT);
}

/*
 * A previous run journaled an action and died before it ended: the next run
 * observes instead of acting. The dry-run backend never applies anything,
 * so the entry settles as "unknown" and the key may be begun again.
 */
static void test_settle(void **state)
{
        struct fixture *f = *state;
        struct fm_journal_key k;
        uint64_t seq;
        const struct fm_intent *it = rollback(f, "rollback/web/v2/v1");

        assert_int_equal(fm_journal_begin(f->journal, it, NULL, 0, now_ms(f), &seq), 0);
        close_executor(f);
        open_executor(f);
        assert_int_equal(fm_journal_lookup(f->journal, it->key, &k), 0);
        assert_int_equal(k.pending, 1);

        assert_int_equal(fm_executor_settle(f->x, now_ms(f)), 1);
        run_until(f, 1);
        assert_string_equal(f->seen.outcome[0], "unknown");
        assert_true(f->seen.settled[0]);
        assert_string_equal(f->seen.key[0], it->key);
        assert_int_equal(fm_journal_lookup(f->journal, it->key, &k), 0);
        assert_int_equal(k.pending, 0);
        assert_int_equal(k.outcome, FM_JOURNAL_UNKNOWN);

        /* the policy may ask again: now it is executed */
        assert_int_equal(fm_executor_submit(f->x, &f->plan, it, 0, now_ms(f)), 0);
        run_until(f, 2);
        assert_string_equal(f->seen.outcome[1], "ok");
        assert_int_equal(fm_executor_settle(f->x, now_ms(f)), 0);
}

/* A set_weights keeps its weights in the journal's args: settling reads them back to observe. */
static void test_settle_weights(void **state)
{
        struct fixture *f = *state;
        uint64_t seq;
        struct fm_intent *it = fm_plan_add_intent(&f->plan, FM_ACTION_SET_WEIGHTS, "traffic");
        assert_non_null(it);
        snprintf(it->deployment, sizeof(it->deployment), "web");
        snprintf(it->key, sizeof(it->key), "weights/web/1");
        it->verdict = FM_VERDICT_APPROVED;
        struct fm_weight *w = fm_plan_add_weights(&f->plan, it, 2);
        assert_non_null(w);
        snprintf(w[0].target, sizeof(w[0].target), "v1");
        w[0].weight = 90;
        snprintf(w[1].target, sizeof(w[1].target), "v2");
        w[1].weight = 10;
        assert_int_equal(fm_journal_begin(f->journal, it, w, 0, now_ms(f), &seq), 0);
        close_executor(f);
        open_executor(f);

        /* 1: handed over for observation, not ended at once as unreadable */
        assert_int_equal(fm_executor_settle(f->x, now_ms(f)), 1);
        run_until(f, 1);
        assert_string_equal(f->seen.outcome[0], "unknown");
        assert_string_equal(f->seen.key[0], "weights/web/1");
        assert_true(f->seen.settled[0]);
}

/* An entry whose deployment has no binding any more is settled "unknown" at once. */
static void test_settle_unbound(void **state)
{
        struct fixture *f = *state;
        uint64_t seq;
        struct fm_intent *alert = fm_plan_add_intent(&f->plan, FM_ACTION_ALERT, "alerting");
        assert_non_null(alert);
        snprintf(alert->deployment, sizeof(alert->deployment), "web");
        snprintf(alert->key, sizeof(alert->key), "alert/web/2");
        alert->verdict = FM_VERDICT_APPROVED;
        assert_int_equal(fm_journal_begin(f->journal, alert, NULL, 0, now_ms(f), &seq), 0);

        assert_int_equal(fm_executor_settle(f->x, now_ms(f)), 0);
        assert_int_equal(f->seen.n, 1);
        assert_string_equal(f->seen.outcome[0], "unknown");
        assert_true(f->seen.settled[0]);
        assert_int_equal(fm_journal_pending(f->journal, &(const struct fm_journal_entry *){0}), 0);
}

static void test_config(void **state)
{
        struct fm_executor_config cfg;
        (void)state;
        fm_executor_config_default(&cfg);
        assert_int_equal(fm_executor_config_validate(&cfg), 0);
        assert_int_equal(cfg.action_timeout, 120000);
        assert_int_equal(cfg.n_bindings, 0);
        cfg.n_bindings = 1; /* a binding with no action */
        assert_int_equal(fm_executor_config_validate(&cfg), -EINVAL);
        cfg.binding[0].actions[FM_ACTION_SCALE] = true;
        snprintf(cfg.binding[0].deployment, sizeof(cfg.binding[0].deployment), "*");
        assert_int_equal(fm_executor_config_validate(&cfg), 0);
        cfg.binding[0].backend = _FM_BACKEND_KIND_MAX;
        assert_int_equal(fm_executor_config_validate(&cfg), -EINVAL);
        assert_string_equal(fm_backend_kind_name(FM_BACKEND_KUBERNETES), "kubernetes");
        assert_int_equal(fm_backend_kind_from_name("haproxy"), FM_BACKEND_HAPROXY);
        assert_int_equal(fm_backend_kind_from_name("ssh"), -EINVAL);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_execute_once, setup, teardown),
                cmocka_unit_test_setup_teardown(test_immediate_outcomes, setup, teardown),
                cmocka_unit_test_setup_teardown(test_settle, setup, teardown),
                cmocka_unit_test_setup_teardown(test_settle_weights, setup, teardown),
                cmocka_unit_test_setup_teardown(test_settle_unbound, setup, teardown),
                cmocka_unit_test(test_config),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
