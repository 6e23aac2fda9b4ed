/* SPDX-License-Identifier: MIT */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "journal.h"

struct fixture {
        char dir[64];
        struct fm_journal *j;
};

static int setup(void **state)
{
        struct fixture *fx = calloc(1, sizeof(*fx));
        assert_non_null(fx);
        snprintf(fx->dir, sizeof(fx->dir), "/tmp/fm-journal-XXXXXX");
        assert_non_null(mkdtemp(fx->dir));
        *state = fx;
        return 0;
}

static int teardown(void **state)
{
        struct fixture *fx = *state;
        fm_journal_free(fx->j);
        DIR *d = opendir(fx->dir);
        if (d) {
                struct dirent *de;
                while ((de = readdir(d)))
                        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
                                (void)unlinkat(dirfd(d), de->d_name, 0);
                closedir(d);
        }
        (void)rmdir(fx->dir);
        free(fx);
        return 0;
}

static void reopen(struct fixture *fx, const struct fm_journal_limits *lim)
{
        fx->j = fm_journal_free(fx->j);
        assert_int_equal(fm_journal_open(fx->dir, lim, &fx->j), 0);
}

static struct fm_intent rollback(const char *key, const char *from, const char *to)
{
        struct fm_intent it = {.action = FM_ACTION_ROLLBACK, .policy = "rollback"};
        snprintf(it.deployment, sizeof(it.deployment), "llm");
        snprintf(it.key, sizeof(it.key), "%s", key);
        snprintf(it.arg.rollback.from, sizeof(it.arg.rollback.from), "%s", from);
        snprintf(it.arg.rollback.to, sizeof(it.arg.rollback.to), "%s", to);
        return it;
}

static char *slurp(const struct fixture *fx, const char *name)
{
        char path[128];
        snprintf(path, sizeof(path), "%s/%s", fx->dir, name);
        FILE *f = fopen(path, "rb");
        if (!f)
                return NULL;
        char *buf = calloc(1, 1 << 20);
        assert_non_null(buf);
        size_t n = fread(buf, 1, (1 << 20) - 1, f);
        buf[n] = '\0';
        fclose(f);
        return buf;
}

static void spit(const struct fixture *fx, const char *name, const char *data, const char *mode)
{
        char path[128];
        snprintf(path, sizeof(path), "%s/%s", fx->dir, name);
        FILE *f = fopen(path, mode);
        assert_non_null(f);
        fputs(data, f);
        fclose(f);
}

static void test_round_trip(void **state)
{
        struct fixture *fx = *state;
        uint64_t seq, seq2;
        reopen(fx, NULL);
        struct fm_intent it = rollback("rollback/llm/v2/v1", "v2", "v1");
        assert_int_equal(fm_journal_begin(fx->j, &it, NULL, 3, 1000, &seq), 0);
        assert_int_equal(seq, 1);

        char *text = slurp(fx, FM_JOURNAL_FILE);
        assert_non_null(text);
        assert_non_null(strstr(text, "\"op\":\"intent\""));
        assert_non_null(strstr(text, "\"action\":\"rollback\""));
        assert_non_null(strstr(text, "\"from\":\"v2\""));
        assert_non_null(strstr(text, "\"fence\":3"));
        free(text);

        assert_int_equal(fm_journal_end(fx->j, seq, FM_JOURNAL_OK, "rolled back", 2000), 0);
        assert_int_equal(fm_journal_end(fx->j, seq, FM_JOURNAL_OK, NULL, 2000), -ENOENT);
        reopen(fx, NULL);

        const struct fm_journal_entry *p;
        assert_int_equal(fm_journal_pending(fx->j, &p), 0);
        struct fm_journal_key k;
        assert_int_equal(fm_journal_lookup(fx->j, it.key, &k), 0);
        assert_int_equal(k.seq, 1);
        assert_false(k.pending);
        assert_int_equal(k.outcome, FM_JOURNAL_OK);
        assert_int_equal(k.ts, 2000);
        assert_int_equal(fm_journal_fence(fx->j), 3);
        assert_int_equal(fm_journal_lookup(fx->j, "nope", &k), -ENOENT);

        /* Sequence numbers continue after a reopen. */
        struct fm_intent sc = {.action = FM_ACTION_SCALE, .arg.scale = {2, 4}};
        snprintf(sc.key, sizeof(sc.key), "scale/llm/4");
        assert_int_equal(fm_journal_begin(fx->j, &sc, NULL, 3, 3000, &seq2), 0);
        assert_int_equal(seq2, 2);
}

static void test_pending_after_crash(void **state)
{
        struct fixture *fx = *state;
        uint64_t s1, s2;
        reopen(fx, NULL);
        struct fm_intent a = rollback("rb/a", "v2", "v1");
        struct fm_intent w = {.action = FM_ACTION_SET_WEIGHTS, .arg.weights = {.first = 7, .n = 2}};
        struct fm_weight ws[2] = {{"v1", 90}, {"v2", 10}};
        snprintf(w.deployment, sizeof(w.deployment), "llm");
        snprintf(w.instance, sizeof(w.instance), "i-1");
        snprintf(w.key, sizeof(w.key), "weights/llm/1");
        assert_int_equal(fm_journal_begin(fx->j, &a, NULL, 1, 10, &s1), 0);
        assert_int_equal(fm_journal_begin(fx->j, &w, ws, 1, 11, &s2), 0);
        reopen(fx, NULL); /* "crash": nothing ended */

        const struct fm_journal_entry *p;
        assert_int_equal(fm_journal_pending(fx->j, &p), 2);
        assert_int_equal(p[0].seq, s1);
        assert_int_equal(p[0].intent.action, FM_ACTION_ROLLBACK);
        assert_string_equal(p[0].intent.key, "rb/a");
        assert_string_equal(p[0].intent.deployment, "llm");
        assert_string_equal(p[0].intent.arg.rollback.from, "v2");
        assert_string_equal(p[0].intent.arg.rollback.to, "v1");
        assert_int_equal(p[0].fence, 1);
        assert_int_equal(p[0].ts, 10);
        assert_int_equal(p[1].intent.action, FM_ACTION_SET_WEIGHTS);
        assert_string_equal(p[1].intent.instance, "i-1");
        assert_int_equal(p[1].intent.arg.weights.n, 2);
        assert_non_null(strstr(p[1].args, "\"target\":\"v2\""));

        /* Pending keys are refused until settled. */
        assert_int_equal(fm_journal_begin(fx->j, &a, NULL, 1, 20, &s1), -EINPROGRESS);
        /* The daemon observed the backend: the rollback happened. */
        assert_int_equal(fm_journal_end(fx->j, p[0].seq, FM_JOURNAL_OK, "observed", 30), 0);
        assert_int_equal(fm_journal_pending(fx->j, &p), 1);
        assert_int_equal(p[0].seq, s2);
        assert_int_equal(fm_journal_end(fx->j, s2, FM_JOURNAL_UNKNOWN, NULL, 31), 0);
        reopen(fx, NULL);
        assert_int_equal(fm_journal_pending(fx->j, &p), 0);
        assert_int_equal(fm_journal_begin(fx->j, &a, NULL, 1, 40, &s1), -EALREADY);
        /* unknown may be retried */
        assert_int_equal(fm_journal_begin(fx->j, &w, ws, 1, 41, &s1), 0);
}

static void test_torn_last_line(void **state)
{
        struct fixture *fx = *state;
        uint64_t seq;
        reopen(fx, NULL);
        struct fm_intent a = rollback("rb/a", "v2", "v1");
        assert_int_equal(fm_journal_begin(fx->j, &a, NULL, 1, 10, &seq), 0);
        assert_int_equal(fm_journal_end(fx->j, seq, FM_JOURNAL_OK, NULL, 11), 0);
        fx->j = fm_journal_free(fx->j);

        char *before = slurp(fx, FM_JOURNAL_FILE);
        assert_non_null(before);
        spit(fx, FM_JOURNAL_FILE, "{\"seq\":2,\"op\":\"intent\",\"key\":\"rb/b", "a");
        reopen(fx, NULL);
        char *after = slurp(fx, FM_JOURNAL_FILE);
        assert_string_equal(before, after); /* the torn tail was cut away */
        free(after);

        const struct fm_journal_entry *p;
        assert_int_equal(fm_journal_pending(fx->j, &p), 0);
        assert_int_equal(fm_journal_begin(fx->j, &a, NULL, 1, 12, &seq), -EALREADY);
        struct fm_intent b = rollback("rb/b", "v3", "v2");
        assert_int_equal(fm_journal_begin(fx->j, &b, NULL, 1, 13, &seq), 0);
        assert_int_equal(seq, 2);
        fx->j = fm_journal_free(fx->j);

        /* A bad line before the last one is corruption, not a torn write. */
        spit(fx, FM_JOURNAL_FILE, before, "w");
        spit(fx, FM_JOURNAL_FILE, "garbage\n{\"seq\":9,\"op\":\"done\"}\n", "a");
        assert_int_equal(fm_journal_open(fx->dir, NULL, &fx->j), -EBADMSG);
        assert_null(fx->j);
        free(before);
}

static void test_idempotency(void **state)
{
        struct fixture *fx = *state;
        uint64_t seq, seq2;
        reopen(fx, NULL);
        struct fm_intent a = rollback("rb/a", "v2", "v1");
        assert_int_equal(fm_journal_begin(fx->j, &a, NULL, 0, 10, &seq), 0);
        assert_int_equal(fm_journal_begin(fx->j, &a, NULL, 0, 11, &seq2), -EINPROGRESS);
        assert_int_equal(fm_journal_end(fx->j, seq, FM_JOURNAL_FAILED, "backend 503", 12), 0);
        /* failed may be retried */
        assert_int_equal(fm_journal_begin(fx->j, &a, NULL, 0, 13, &seq2), 0);
        assert_int_equal(fm_journal_end(fx->j, seq2, FM_JOURNAL_OK, NULL, 14), 0);
        assert_int_equal(fm_journal_begin(fx->j, &a, NULL, 0, 15, &seq), -EALREADY);
        reopen(fx, NULL);
        assert_int_equal(fm_journal_begin(fx->j, &a, NULL, 0, 16, &seq), -EALREADY);
        assert_int_equal(fm_journal_compact(fx->j), 0);
        reopen(fx, NULL);
        assert_int_equal(fm_journal_begin(fx->j, &a, NULL, 0, 17, &seq), -EALREADY);

        struct fm_intent bad = a;
        bad.key[0] = '\0';
        assert_int_equal(fm_journal_begin(fx->j, &bad, NULL, 0, 18, &seq), -EINVAL);
        bad = a;
        bad.action = _FM_ACTION_MAX;
        assert_int_equal(fm_journal_begin(fx->j, &bad, NULL, 0, 18, &seq), -EINVAL);
        assert_int_equal(fm_journal_end(fx->j, 99, FM_JOURNAL_OK, NULL, 18), -ENOENT);
}

static void test_fencing(void **state)
{
        struct fixture *fx = *state;
        uint64_t seq;
        reopen(fx, NULL);
        struct fm_intent a = rollback("rb/a", "v2", "v1"), b = rollback("rb/b", "v3", "v2");
        assert_int_equal(fm_journal_begin(fx->j, &a, NULL, 7, 10, &seq), 0);
        assert_int_equal(fm_journal_fence(fx->j), 7);
        assert_int_equal(fm_journal_begin(fx->j, &b, NULL, 6, 11, &seq), -ESTALE);
        reopen(fx, NULL);
        assert_int_equal(fm_journal_fence(fx->j), 7);
        assert_int_equal(fm_journal_begin(fx->j, &b, NULL, 6, 12, &seq), -ESTALE);
        assert_int_equal(fm_journal_begin(fx->j, &b, NULL, 7, 12, &seq), 0);
        assert_int_equal(fm_journal_compact(fx->j), 0);
        reopen(fx, NULL);
        assert_int_equal(fm_journal_fence(fx->j), 7);
        struct fm_intent c = rollback("rb/c", "v4", "v3");
        assert_int_equal(fm_journal_begin(fx->j, &c, NULL, 5, 13, &seq), -ESTALE);
        assert_int_equal(fm_journal_begin(fx->j, &c, NULL, 9, 13, &seq), 0);
        assert_int_equal(fm_journal_fence(fx->j), 9);
}

static void test_compaction(void **state)
{
        struct fixture *fx = *state;
        struct fm_journal_limits lim;
        uint64_t seq, last = 0;
        fm_journal_limits_default(&lim);
        lim.file_max = 512;
        lim.keys_max = 64;
        lim.pending_max = 8;
        reopen(fx, &lim);

        for (int i = 0; i < 100; i++) {
                char key[32];
                snprintf(key, sizeof(key), "rb/%d", i);
                struct fm_intent it = rollback(key, "v2", "v1");
                assert_int_equal(fm_journal_begin(fx->j, &it, NULL, (uint64_t)i, i, &seq), 0);
                assert_true(seq > last);
                last = seq;
                if (i % 10 != 9) /* every tenth stays pending */
                        assert_int_equal(fm_journal_end(fx->j, seq, FM_JOURNAL_OK, NULL, i), 0);
                if (i == 50) /* pending_max 8: settle the oldest ones */
                        for (int k = 9; k < 50; k += 10) {
                                const struct fm_journal_entry *p;
                                assert_true(fm_journal_pending(fx->j, &p) > 0);
                                assert_int_equal(
                                        fm_journal_end(fx->j, p[0].seq, FM_JOURNAL_OK, NULL, i), 0);
                        }
        }
        char *snap = slurp(fx, FM_JOURNAL_SNAPSHOT_FILE);
        assert_non_null(snap);
        free(snap);
        char *text = slurp(fx, FM_JOURNAL_FILE);
        assert_true(strlen(text) < 1024); /* compacted */
        free(text);

        reopen(fx, &lim);
        const struct fm_journal_entry *p;
        assert_int_equal(fm_journal_pending(fx->j, &p), 5);
        assert_string_equal(p[0].intent.key, "rb/59");
        assert_string_equal(p[4].intent.key, "rb/99");
        assert_string_equal(p[4].intent.arg.rollback.to, "v1");
        assert_int_equal(fm_journal_fence(fx->j), 99);
        /* The most recent keys survive; rb/0 was evicted (keys_max 64). */
        struct fm_intent recent = rollback("rb/98", "v2", "v1");
        assert_int_equal(fm_journal_begin(fx->j, &recent, NULL, 99, 200, &seq), -EALREADY);
        struct fm_intent pend = rollback("rb/99", "v2", "v1");
        assert_int_equal(fm_journal_begin(fx->j, &pend, NULL, 99, 200, &seq), -EINPROGRESS);
        struct fm_journal_key k;
        assert_int_equal(fm_journal_lookup(fx->j, "rb/0", &k), -ENOENT);
        assert_int_equal(fm_journal_begin(fx->j, &recent, NULL, 99, 200, &seq), -EALREADY);
        /* seq continues past everything seen */
        struct fm_intent fresh = rollback("rb/new", "v2", "v1");
        assert_int_equal(fm_journal_begin(fx->j, &fresh, NULL, 99, 201, &seq), 0);
        assert_true(seq > last);
}

static void test_crash_mid_compaction(void **state)
{
        struct fixture *fx = *state;
        uint64_t s1, s2;
        reopen(fx, NULL);
        struct fm_intent a = rollback("rb/a", "v2", "v1"), b = rollback("rb/b", "v3", "v2");
        assert_int_equal(fm_journal_begin(fx->j, &a, NULL, 1, 10, &s1), 0);
        assert_int_equal(fm_journal_begin(fx->j, &b, NULL, 1, 11, &s2), 0);
        assert_int_equal(fm_journal_end(fx->j, s1, FM_JOURNAL_OK, NULL, 12), 0);
        fx->j = fm_journal_free(fx->j);
        char *old = slurp(fx, FM_JOURNAL_FILE);
        reopen(fx, NULL);
        assert_int_equal(fm_journal_compact(fx->j), 0);
        fx->j = fm_journal_free(fx->j);
        /* New snapshot, old journal: replaying it again must change nothing. */
        spit(fx, FM_JOURNAL_FILE, old, "w");
        free(old);
        reopen(fx, NULL);
        const struct fm_journal_entry *p;
        assert_int_equal(fm_journal_pending(fx->j, &p), 1);
        assert_int_equal(p[0].seq, s2);
        assert_int_equal(fm_journal_begin(fx->j, &a, NULL, 1, 13, &s1), -EALREADY);
}

static void test_atomic_write(void **state)
{
        struct fixture *fx = *state;
        reopen(fx, NULL);
        int dfd = fm_journal_dirfd(fx->j);
        assert_int_equal(fm_state_write_atomic(dfd, "state.json", "{\"a\":1}", 7), 0);
        assert_int_equal(fm_state_write_atomic(dfd, "state.json", "{\"a\":22}", 8), 0);
        char *data;
        size_t len;
        assert_int_equal(fm_state_read(dfd, "state.json", 1024, &data, &len), 0);
        assert_int_equal(len, 8);
        assert_string_equal(data, "{\"a\":22}");
        free(data);
        assert_int_equal(fm_state_read(dfd, "state.json", 4, &data, &len), -EFBIG);
        assert_int_equal(fm_state_read(dfd, "missing.json", 4, &data, &len), -ENOENT);

        DIR *d = opendir(fx->dir);
        struct dirent *de;
        while ((de = readdir(d)))
                assert_null(strstr(de->d_name, ".tmp"));
        closedir(d);

        assert_int_equal(fm_state_write_atomic(dfd, "", "x", 1), -EINVAL);
        assert_int_equal(fm_state_write_atomic(dfd, "a/b", "x", 1), -EINVAL);
        assert_int_equal(fm_state_write_atomic(dfd, "..", "x", 1), -EINVAL);
        /* A failed write leaves the old content in place and no temp file. */
        assert_int_equal(fm_state_write_atomic(-1, "state.json", "x", 1), -EBADF);
        assert_int_equal(fm_state_read(dfd, "state.json", 1024, &data, &len), 0);
        assert_string_equal(data, "{\"a\":22}");
        free(data);
}

static void test_open_errors(void **state)
{
        struct fixture *fx = *state;
        struct fm_journal *j = NULL, *j2 = NULL;
        char missing[96];
        snprintf(missing, sizeof(missing), "%s/nope", fx->dir);
        assert_int_equal(fm_journal_open(missing, NULL, &j), -ENOENT);
        assert_null(j);

        struct fm_journal_limits lim;
        fm_journal_limits_default(&lim);
        lim.keys_max = 0;
        assert_int_equal(fm_journal_open(fx->dir, &lim, &j), -EINVAL);
        fm_journal_limits_default(&lim);
        lim.pending_max = 10;
        lim.keys_max = 5;
        assert_int_equal(fm_journal_open(fx->dir, &lim, &j), -EINVAL);

        /* One owner per state directory. */
        assert_int_equal(fm_journal_open(fx->dir, NULL, &j), 0);
        assert_int_equal(fm_journal_open(fx->dir, NULL, &j2), -EBUSY);
        fm_journal_free(j);

        spit(fx, FM_JOURNAL_SNAPSHOT_FILE, "{\"version\":1}", "w");
        assert_int_equal(fm_journal_open(fx->dir, NULL, &j), -EBADMSG);
}

static void test_open_unwritable(void **state)
{
        struct fixture *fx = *state;
        struct fm_journal *j = NULL;
        if (geteuid() == 0)
                skip(); /* root writes anywhere */
        char ro[96];
        snprintf(ro, sizeof(ro), "%s/ro", fx->dir);
        assert_int_equal(mkdir(ro, 0500), 0);
        int r = fm_journal_open(ro, NULL, &j);
        (void)rmdir(ro);
        assert_int_equal(r, -EACCES);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
                cmocka_unit_test_setup_teardown(test_pending_after_crash, setup, teardown),
                cmocka_unit_test_setup_teardown(test_torn_last_line, setup, teardown),
                cmocka_unit_test_setup_teardown(test_idempotency, setup, teardown),
                cmocka_unit_test_setup_teardown(test_fencing, setup, teardown),
                cmocka_unit_test_setup_teardown(test_compaction, setup, teardown),
                cmocka_unit_test_setup_teardown(test_crash_mid_compaction, setup, teardown),
                cmocka_unit_test_setup_teardown(test_atomic_write, setup, teardown),
                cmocka_unit_test_setup_teardown(test_open_errors, setup, teardown),
                cmocka_unit_test_setup_teardown(test_open_unwritable, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
