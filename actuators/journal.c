/* SPDX-License-Identifier: MIT */
#include "journal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#define NIL UINT32_MAX
#define SNAPSHOT_VERSION 1

/*
 * The key table: a slot pool grown up to keys_max, a chained hash index on
 * the key, and an LRU list (oldest at the head) that decides which completed
 * key is forgotten when the pool is full. Pending keys are never evicted;
 * pending_max <= keys_max guarantees a completed one exists to evict.
 */
struct key_slot {
        char key[FM_INTENT_KEY_MAX];
        uint64_t seq;
        fm_ms ts;
        bool pending;
        enum fm_journal_outcome outcome;
        uint32_t hnext;
        uint32_t prev, next;
};

struct fm_journal {
        int dirfd, fd;
        struct fm_journal_limits lim;
        uint64_t size; /* bytes of journal.jsonl, all complete records */
        uint64_t next_seq;
        uint64_t fence;
        bool poisoned;

        struct key_slot *slot;
        uint32_t n_slots, cap_slots;
        uint32_t *bucket;
        uint32_t mask;
        uint32_t lru_head, lru_tail;

        struct fm_journal_entry *pend; /* ordered by seq */
        size_t n_pend, cap_pend;
};

static void json_putp(json_object **o)
{
        json_object_put(*o);
}
#define _cleanup_json_ _cleanup_(json_putp)

static void closep(int *fd)
{
        if (*fd >= 0)
                close(*fd);
}
#define _cleanup_close_ _cleanup_(closep)

static const char *const outcome_names[_FM_JOURNAL_OUTCOME_MAX] = {
        [FM_JOURNAL_OK] = "ok",
        [FM_JOURNAL_FAILED] = "failed",
        [FM_JOURNAL_REFUSED] = "refused",
        [FM_JOURNAL_UNKNOWN] = "unknown",
};

const char *fm_journal_outcome_name(enum fm_journal_outcome o)
{
        return (unsigned)o < _FM_JOURNAL_OUTCOME_MAX ? outcome_names[o] : NULL;
}

static int outcome_from_name(const char *s, enum fm_journal_outcome *ret)
{
        for (unsigned i = 0; i < _FM_JOURNAL_OUTCOME_MAX; i++)
                if (strcmp(s, outcome_names[i]) == 0) {
                        *ret = (enum fm_journal_outcome)i;
                        return 0;
                }
        return -EBADMSG;
}

static int action_from_name(const char *s, enum fm_action *ret)
{
        for (unsigned i = 0; i < _FM_ACTION_MAX; i++)
                if (strcmp(s, fm_action_name((enum fm_action)i)) == 0) {
                        *ret = (enum fm_action)i;
                        return 0;
                }
        return -EBADMSG;
}

void fm_journal_limits_default(struct fm_journal_limits *l)
{
        l->file_max = FM_JOURNAL_FILE_MAX_DEFAULT;
        l->keys_max = FM_JOURNAL_KEYS_MAX;
        l->pending_max = FM_JOURNAL_PENDING_MAX;
}

/* ---- plain file helpers ---- */

static int write_all(int fd, const void *data, size_t len)
{
        const char *p = data;
        while (len > 0) {
                ssize_t n = write(fd, p, len);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                p += n;
                len -= (size_t)n;
        }
        return 0;
}

static bool name_ok(const char *name)
{
        size_t n = strnlen(name, FM_STATE_NAME_MAX + 1);
        return n > 0 && n <= FM_STATE_NAME_MAX && !strchr(name, '/') && strcmp(name, ".") != 0 &&
               strcmp(name, "..") != 0;
}

int fm_state_write_atomic(int dirfd, const char *name, const void *data, size_t len)
{
        char tmp[FM_STATE_NAME_MAX + 8];
        int r;

        if (!name || !name_ok(name) || (len > 0 && !data))
                return -EINVAL;
        r = snprintf(tmp, sizeof(tmp), ".%s.tmp", name);
        if (r < 0 || (size_t)r >= sizeof(tmp))
                return -EINVAL;

        int fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
                return -errno;
        r = write_all(fd, data, len);
        if (r == 0 && fsync(fd) < 0)
                r = -errno;
        if (close(fd) < 0 && r == 0)
                r = -errno;
        if (r == 0 && renameat(dirfd, tmp, dirfd, name) < 0)
                r = -errno;
        if (r < 0) {
                (void)unlinkat(dirfd, tmp, 0);
                return r;
        }
        /* The rename is durable only once the directory is. */
        if (fsync(dirfd) < 0)
                return -errno;
        return 0;
}

static int read_fd(int fd, size_t max, char **ret_data, size_t *ret_len)
{
        struct stat st;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -EBADMSG;
        if ((uint64_t)st.st_size > max)
                return -EFBIG;
        size_t cap = (size_t)st.st_size, len = 0;
        char *buf = malloc(cap + 1);
        if (!buf)
                return -ENOMEM;
        /* Read what fstat promised; a file that changes under us is cut there. */
        while (len < cap) {
                ssize_t n = pread(fd, buf + len, cap - len, (off_t)len);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        int r = -errno;
                        free(buf);
                        return r;
                }
                if (n == 0)
                        break;
                len += (size_t)n;
        }
        buf[len] = '\0';
        *ret_data = buf;
        *ret_len = len;
        return 0;
}

int fm_state_read(int dirfd, const char *name, size_t max, char **ret_data, size_t *ret_len)
{
        if (!name || !name_ok(name))
                return -EINVAL;
        _cleanup_close_ int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return -errno;
        return read_fd(fd, max, ret_data, ret_len);
}

/* ---- key table ---- */

static uint32_t hash_key(const char *s)
{
        uint32_t h = 2166136261u;
        for (; *s; s++)
                h = (h ^ (uint8_t)*s) * 16777619u;
        return h;
}

static uint32_t key_find(const struct fm_journal *j, const char *key)
{
        for (uint32_t i = j->bucket[hash_key(key) & j->mask]; i != NIL; i = j->slot[i].hnext)
                if (strcmp(j->slot[i].key, key) == 0)
                        return i;
        return NIL;
}

static void lru_unlink(struct fm_journal *j, uint32_t i)
{
        struct key_slot *s = &j->slot[i];
        if (s->prev != NIL)
                j->slot[s->prev].next = s->next;
        else
                j->lru_head = s->next;
        if (s->next != NIL)
                j->slot[s->next].prev = s->prev;
        else
                j->lru_tail = s->prev;
        s->prev = s->next = NIL;
}

static void lru_append(struct fm_journal *j, uint32_t i)
{
        struct key_slot *s = &j->slot[i];
        s->prev = j->lru_tail;
        s->next = NIL;
        if (j->lru_tail != NIL)
                j->slot[j->lru_tail].next = i;
        else
                j->lru_head = i;
        j->lru_tail = i;
}

static void hash_unlink(struct fm_journal *j, uint32_t i)
{
        uint32_t *p = &j->bucket[hash_key(j->slot[i].key) & j->mask];
        while (*p != i)
                p = &j->slot[*p].hnext;
        *p = j->slot[i].hnext;
}

/* Makes room for one more slot so that key_get() after a durable write cannot fail. */
static int key_reserve(struct fm_journal *j)
{
        if (j->n_slots < j->cap_slots || j->cap_slots >= j->lim.keys_max)
                return 0;
        uint64_t cap = j->cap_slots ? (uint64_t)j->cap_slots * 2 : 64;
        if (cap > j->lim.keys_max)
                cap = j->lim.keys_max;
        struct key_slot *s = realloc(j->slot, cap * sizeof(*s));
        if (!s)
                return -ENOMEM;
        j->slot = s;
        j->cap_slots = (uint32_t)cap;
        return 0;
}

/* The slot of key, made most recent; a new one evicts the oldest completed key. */
static uint32_t key_get(struct fm_journal *j, const char *key)
{
        uint32_t i = key_find(j, key);
        if (i != NIL) {
                lru_unlink(j, i);
                lru_append(j, i);
                return i;
        }
        if (j->n_slots < j->cap_slots)
                i = j->n_slots++;
        else {
                for (i = j->lru_head; i != NIL && j->slot[i].pending; i = j->slot[i].next)
                        ;
                if (i == NIL)
                        return NIL;
                hash_unlink(j, i);
                lru_unlink(j, i);
        }
        struct key_slot *s = &j->slot[i];
        *s = (struct key_slot){.hnext = NIL, .prev = NIL, .next = NIL};
        snprintf(s->key, sizeof(s->key), "%s", key);
        uint32_t *b = &j->bucket[hash_key(key) & j->mask];
        s->hnext = *b;
        *b = i;
        lru_append(j, i);
        return i;
}

/* ---- pending entries ---- */

static int pend_reserve(struct fm_journal *j)
{
        if (j->n_pend < j->cap_pend)
                return 0;
        size_t cap = j->cap_pend ? j->cap_pend * 2 : 16;
        struct fm_journal_entry *p = realloc(j->pend, cap * sizeof(*p));
        if (!p)
                return -ENOMEM;
        j->pend = p;
        j->cap_pend = cap;
        return 0;
}

static size_t pend_find(const struct fm_journal *j, uint64_t seq)
{
        for (size_t i = 0; i < j->n_pend; i++)
                if (j->pend[i].seq == seq)
                        return i;
        return SIZE_MAX;
}

/*
 * Records a begun entry in memory; takes e->args. Callers reserved room in
 * both tables, so this fails only when every key slot is pending (replay
 * of a journal written with bigger limits).
 */
static int apply_intent(struct fm_journal *j, struct fm_journal_entry *e)
{
        uint32_t k = key_get(j, e->intent.key);
        if (k == NIL) {
                free(e->args);
                return -ENOBUFS;
        }
        j->slot[k].pending = true;
        j->slot[k].seq = e->seq;
        j->pend[j->n_pend++] = *e;
        if (e->seq >= j->next_seq)
                j->next_seq = e->seq + 1;
        if (e->fence > j->fence)
                j->fence = e->fence;
        return 0;
}

static void apply_done(struct fm_journal *j, size_t p, enum fm_journal_outcome o, fm_ms ts)
{
        struct fm_journal_entry *e = &j->pend[p];
        uint32_t k = key_find(j, e->intent.key);
        if (k != NIL && j->slot[k].seq == e->seq) {
                j->slot[k].pending = false;
                j->slot[k].outcome = o;
                j->slot[k].ts = ts;
                lru_unlink(j, k);
                lru_append(j, k);
        }
        free(e->args);
        memmove(e, e + 1, (j->n_pend - p - 1) * sizeof(*e));
        j->n_pend--;
}

/* ---- JSON helpers ---- */

static int add(json_object *o, const char *k, json_object *v)
{
        if (!v)
                return -ENOMEM;
        if (json_object_object_add(o, k, v) < 0) {
                json_object_put(v);
                return -ENOMEM;
        }
        return 0;
}

static json_object *new_str(const char *s, size_t size)
{
        return json_object_new_string_len(s, (int)strnlen(s, size));
}

static int get(json_object *o, const char *k, json_type t, json_object **ret)
{
        json_object *v;
        if (!json_object_object_get_ex(o, k, &v) || !json_object_is_type(v, t))
                return -EBADMSG;
        *ret = v;
        return 0;
}

static int get_u64(json_object *o, const char *k, uint64_t *ret)
{
        json_object *v;
        if (get(o, k, json_type_int, &v) < 0 || json_object_get_int64(v) < 0)
                return -EBADMSG;
        *ret = json_object_get_uint64(v);
        return 0;
}

static int get_u32(json_object *o, const char *k, uint32_t *ret)
{
        uint64_t v;
        if (get_u64(o, k, &v) < 0 || v > UINT32_MAX)
                return -EBADMSG;
        *ret = (uint32_t)v;
        return 0;
}

static int get_i64(json_object *o, const char *k, int64_t *ret)
{
        json_object *v;
        if (get(o, k, json_type_int, &v) < 0)
                return -EBADMSG;
        *ret = json_object_get_int64(v);
        return 0;
}

static int get_double(json_object *o, const char *k, double *ret)
{
        json_object *v;
        if (!json_object_object_get_ex(o, k, &v) ||
            !(json_object_is_type(v, json_type_double) || json_object_is_type(v, json_type_int)))
                return -EBADMSG;
        *ret = json_object_get_double(v);
        return 0;
}

/* Copies string field k into buf; too long for buf is corrupt. */
static int get_str(json_object *o, const char *k, char *buf, size_t size)
{
        json_object *v;
        if (get(o, k, json_type_string, &v) < 0)
                return -EBADMSG;
        size_t n = (size_t)json_object_get_string_len(v);
        if (n >= size || memchr(json_object_get_string(v), '\0', n))
                return -EBADMSG;
        memcpy(buf, json_object_get_string(v), n + 1);
        return 0;
}

static json_object *args_to_json(const struct fm_intent *it, const struct fm_weight *w)
{
        _cleanup_json_ json_object *a = json_object_new_object();
        int r = 0;
        if (!a)
                return NULL;
        switch (it->action) {
        case FM_ACTION_SCALE:
                r = add(a, "from", json_object_new_int64(it->arg.scale.from));
                if (r == 0)
                        r = add(a, "to", json_object_new_int64(it->arg.scale.to));
                break;
        case FM_ACTION_SET_WEIGHTS: {
                json_object *arr = json_object_new_array();
                r = add(a, "weights", arr);
                for (uint32_t i = 0; r == 0 && i < it->arg.weights.n; i++) {
                        json_object *x = json_object_new_object();
                        if (!x || json_object_array_add(arr, x) < 0) {
                                json_object_put(x);
                                r = -ENOMEM;
                                break;
                        }
                        r = add(x, "target", new_str(w[i].target, sizeof(w[i].target)));
                        if (r == 0)
                                r = add(x, "weight", json_object_new_int64(w[i].weight));
                }
                break;
        }
        case FM_ACTION_RESTART:
                break;
        case FM_ACTION_ROLLBACK:
                r = add(a, "from", new_str(it->arg.rollback.from, sizeof(it->arg.rollback.from)));
                if (r == 0)
                        r = add(a, "to", new_str(it->arg.rollback.to, sizeof(it->arg.rollback.to)));
                break;
        case FM_ACTION_SET_THRESHOLD:
                r = add(a, "version",
                        new_str(it->arg.threshold.version, sizeof(it->arg.threshold.version)));
                if (r == 0)
                        r = add(a, "from", json_object_new_double(it->arg.threshold.from));
                if (r == 0)
                        r = add(a, "to", json_object_new_double(it->arg.threshold.to));
                break;
        case FM_ACTION_ALERT: {
                const char *sev = fm_severity_name(it->arg.alert.severity);
                r = add(a, "severity", json_object_new_string(sev ? sev : "info"));
                if (r == 0)
                        r = add(a, "summary",
                                new_str(it->arg.alert.summary, sizeof(it->arg.alert.summary)));
                break;
        }
        default:
                return NULL;
        }
        if (r < 0)
                return NULL;
        json_object *ret = a;
        a = NULL;
        return ret;
}

static int args_from_json(json_object *a, struct fm_intent *it)
{
        int r = 0;
        switch (it->action) {
        case FM_ACTION_SCALE:
                r = get_u32(a, "from", &it->arg.scale.from);
                if (r == 0)
                        r = get_u32(a, "to", &it->arg.scale.to);
                return r;
        case FM_ACTION_SET_WEIGHTS: {
                json_object *arr;
                if (get(a, "weights", json_type_array, &arr) < 0)
                        return -EBADMSG;
                it->arg.weights.first = 0;
                it->arg.weights.n = (uint32_t)json_object_array_length(arr);
                return 0;
        }
        case FM_ACTION_RESTART:
                return 0;
        case FM_ACTION_ROLLBACK:
                r = get_str(a, "from", it->arg.rollback.from, sizeof(it->arg.rollback.from));
                if (r == 0)
                        r = get_str(a, "to", it->arg.rollback.to, sizeof(it->arg.rollback.to));
                return r;
        case FM_ACTION_SET_THRESHOLD:
                r = get_str(a, "version", it->arg.threshold.version,
                            sizeof(it->arg.threshold.version));
                if (r == 0)
                        r = get_double(a, "from", &it->arg.threshold.from);
                if (r == 0)
                        r = get_double(a, "to", &it->arg.threshold.to);
                return r;
        case FM_ACTION_ALERT: {
                char sev[16];
                r = get_str(a, "severity", sev, sizeof(sev));
                if (r < 0)
                        return r;
                it->arg.alert.severity = FM_SEVERITY_INFO;
                for (unsigned i = 0; i < _FM_SEVERITY_MAX; i++)
                        if (strcmp(sev, fm_severity_name((enum fm_severity)i)) == 0)
                                it->arg.alert.severity = (enum fm_severity)i;
                return get_str(a, "summary", it->arg.alert.summary, sizeof(it->arg.alert.summary));
        }
        default:
                return -EBADMSG;
        }
}

/* The intent record of e; takes args. policy may be NULL. */
static json_object *intent_record(const struct fm_journal_entry *e, const char *policy,
                                  json_object *args)
{
        _cleanup_json_ json_object *o = json_object_new_object();
        const struct fm_intent *it = &e->intent;
        if (!o) {
                json_object_put(args);
                return NULL;
        }
        int r = add(o, "seq", json_object_new_uint64(e->seq));
        if (r == 0)
                r = add(o, "op", json_object_new_string("intent"));
        if (r == 0)
                r = add(o, "key", new_str(it->key, sizeof(it->key)));
        if (r == 0)
                r = add(o, "action", json_object_new_string(fm_action_name(it->action)));
        if (r == 0 && policy)
                r = add(o, "policy", json_object_new_string(policy));
        if (r == 0)
                r = add(o, "deployment", new_str(it->deployment, sizeof(it->deployment)));
        if (r == 0)
                r = add(o, "instance", new_str(it->instance, sizeof(it->instance)));
        if (r == 0)
                r = add(o, "args", args);
        else
                json_object_put(args);
        if (r == 0)
                r = add(o, "fence", json_object_new_uint64(e->fence));
        if (r == 0)
                r = add(o, "ts", json_object_new_int64(e->ts));
        if (r < 0)
                return NULL;
        json_object *ret = o;
        o = NULL;
        return ret;
}

/* Parses an intent record into *e (e->args malloc'ed on success). */
static int entry_from_json(json_object *o, struct fm_journal_entry *e)
{
        char action[32];
        json_object *args;
        int r;

        *e = (struct fm_journal_entry){0};
        if (get_u64(o, "seq", &e->seq) < 0 || get_u64(o, "fence", &e->fence) < 0 ||
            get_i64(o, "ts", &e->ts) < 0 || get_str(o, "action", action, sizeof(action)) < 0 ||
            action_from_name(action, &e->intent.action) < 0 ||
            get_str(o, "key", e->intent.key, sizeof(e->intent.key)) < 0 || !e->intent.key[0] ||
            get_str(o, "deployment", e->intent.deployment, sizeof(e->intent.deployment)) < 0 ||
            get_str(o, "instance", e->intent.instance, sizeof(e->intent.instance)) < 0 ||
            get(o, "args", json_type_object, &args) < 0)
                return -EBADMSG;
        r = args_from_json(args, &e->intent);
        if (r < 0)
                return r;
        e->intent.at = e->ts;
        e->args = strdup(json_object_to_json_string_ext(args, JSON_C_TO_STRING_PLAIN));
        return e->args ? 0 : -ENOMEM;
}

/* ---- the journal file ---- */

/*
 * Appends one record and syncs it. A failed write is cut back so the file
 * stays a sequence of whole records; a failed sync poisons the journal.
 */
static int append(struct fm_journal *j, json_object *rec)
{
        const char *s = json_object_to_json_string_ext(rec, JSON_C_TO_STRING_PLAIN |
                                                                    JSON_C_TO_STRING_NOSLASHESCAPE);
        if (!s)
                return -ENOMEM;
        size_t len = strlen(s);
        if (len + 1 > FM_JOURNAL_RECORD_MAX)
                return -E2BIG;
        _cleanup_free_ char *line = malloc(len + 1);
        if (!line)
                return -ENOMEM;
        memcpy(line, s, len);
        line[len] = '\n';

        int r = write_all(j->fd, line, len + 1);
        if (r < 0) {
                if (ftruncate(j->fd, (off_t)j->size) < 0)
                        j->poisoned = true;
                return r;
        }
        if (fdatasync(j->fd) < 0) {
                j->poisoned = true;
                return -errno;
        }
        j->size += len + 1;
        return 0;
}

static json_object *snapshot_json(const struct fm_journal *j)
{
        _cleanup_json_ json_object *o = json_object_new_object();
        json_object *keys = json_object_new_array(), *pend = json_object_new_array();
        if (!o) {
                json_object_put(keys);
                json_object_put(pend);
                return NULL;
        }
        int r = add(o, "keys", keys);
        if (r == 0)
                r = add(o, "pending", pend);
        else
                json_object_put(pend);
        if (r == 0)
                r = add(o, "version", json_object_new_int(SNAPSHOT_VERSION));
        if (r == 0)
                r = add(o, "next_seq", json_object_new_uint64(j->next_seq));
        if (r == 0)
                r = add(o, "fence", json_object_new_uint64(j->fence));
        for (uint32_t i = j->lru_head; r == 0 && i != NIL; i = j->slot[i].next) {
                const struct key_slot *s = &j->slot[i];
                if (s->pending)
                        continue;
                json_object *k = json_object_new_object();
                if (!k || json_object_array_add(keys, k) < 0) {
                        json_object_put(k);
                        return NULL;
                }
                r = add(k, "key", json_object_new_string(s->key));
                if (r == 0)
                        r = add(k, "seq", json_object_new_uint64(s->seq));
                if (r == 0)
                        r = add(k, "outcome", json_object_new_string(outcome_names[s->outcome]));
                if (r == 0)
                        r = add(k, "ts", json_object_new_int64(s->ts));
        }
        for (size_t i = 0; r == 0 && i < j->n_pend; i++) {
                json_object *args = json_tokener_parse(j->pend[i].args);
                json_object *rec = args ? intent_record(&j->pend[i], NULL, args) : NULL;
                if (!rec || json_object_array_add(pend, rec) < 0) {
                        json_object_put(rec);
                        return NULL;
                }
        }
        if (r < 0)
                return NULL;
        json_object *ret = o;
        o = NULL;
        return ret;
}

/*
 * Snapshot first, then an empty journal: a crash between the two leaves the
 * new snapshot and the old journal, whose replay changes nothing (records
 * below next_seq and ends of entries no longer pending are skipped).
 */
int fm_journal_compact(struct fm_journal *j)
{
        if (j->poisoned)
                return -EIO;
        _cleanup_json_ json_object *snap = snapshot_json(j);
        if (!snap)
                return -ENOMEM;
        const char *s = json_object_to_json_string_ext(
                snap, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
        if (!s)
                return -ENOMEM;
        int r = fm_state_write_atomic(j->dirfd, FM_JOURNAL_SNAPSHOT_FILE, s, strlen(s));
        if (r < 0)
                return r;
        r = fm_state_write_atomic(j->dirfd, FM_JOURNAL_FILE, "", 0);
        if (r < 0)
                return r;
        int fd = openat(j->dirfd, FM_JOURNAL_FILE, O_RDWR | O_APPEND | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0) {
                /* The old fd names a file that is gone: nothing more may be written. */
                j->poisoned = true;
                return -errno;
        }
        close(j->fd);
        j->fd = fd;
        j->size = 0;
        return 0;
}

static int maybe_compact(struct fm_journal *j)
{
        return j->size >= j->lim.file_max ? fm_journal_compact(j) : 0;
}

/* ---- open and replay ---- */

static int load_snapshot(struct fm_journal *j)
{
        _cleanup_free_ char *data = NULL;
        size_t len;
        int r = fm_state_read(j->dirfd, FM_JOURNAL_SNAPSHOT_FILE, FM_JOURNAL_READ_MAX, &data, &len);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;

        _cleanup_json_ json_object *o = json_tokener_parse(data);
        json_object *keys, *pend;
        int64_t version;
        if (!o || !json_object_is_type(o, json_type_object) ||
            get_i64(o, "version", &version) < 0 || version != SNAPSHOT_VERSION ||
            get_u64(o, "next_seq", &j->next_seq) < 0 || get_u64(o, "fence", &j->fence) < 0 ||
            get(o, "keys", json_type_array, &keys) < 0 ||
            get(o, "pending", json_type_array, &pend) < 0)
                return -EBADMSG;

        size_t n = json_object_array_length(keys);
        for (size_t i = 0; i < n; i++) {
                json_object *k = json_object_array_get_idx(keys, i);
                char key[FM_INTENT_KEY_MAX], outcome[16];
                uint64_t seq;
                fm_ms ts;
                enum fm_journal_outcome oc;
                if (!json_object_is_type(k, json_type_object) ||
                    get_str(k, "key", key, sizeof(key)) < 0 || !key[0] ||
                    get_u64(k, "seq", &seq) < 0 || get_i64(k, "ts", &ts) < 0 ||
                    get_str(k, "outcome", outcome, sizeof(outcome)) < 0 ||
                    outcome_from_name(outcome, &oc) < 0)
                        return -EBADMSG;
                r = key_reserve(j);
                if (r < 0)
                        return r;
                uint32_t s = key_get(j, key);
                if (s == NIL)
                        return -ENOBUFS;
                j->slot[s].seq = seq;
                j->slot[s].ts = ts;
                j->slot[s].outcome = oc;
                j->slot[s].pending = false;
        }

        uint64_t next_seq = j->next_seq;
        n = json_object_array_length(pend);
        for (size_t i = 0; i < n; i++) {
                json_object *p = json_object_array_get_idx(pend, i);
                struct fm_journal_entry e;
                if (!json_object_is_type(p, json_type_object))
                        return -EBADMSG;
                r = entry_from_json(p, &e);
                if (r < 0)
                        return r;
                if (key_reserve(j) < 0 || pend_reserve(j) < 0) {
                        free(e.args);
                        return -ENOMEM;
                }
                r = apply_intent(j, &e);
                if (r < 0)
                        return r;
        }
        if (j->next_seq < next_seq)
                j->next_seq = next_seq;
        return 0;
}

static int replay_record(struct fm_journal *j, json_object *o)
{
        char op[16];
        uint64_t seq;
        int r;

        if (!json_object_is_type(o, json_type_object) || get_str(o, "op", op, sizeof(op)) < 0 ||
            get_u64(o, "seq", &seq) < 0)
                return -EBADMSG;

        if (strcmp(op, "intent") == 0) {
                struct fm_journal_entry e;
                r = entry_from_json(o, &e);
                if (r < 0)
                        return r;
                /* Below next_seq: already in the snapshot (a crash mid-compaction). */
                if (e.seq < j->next_seq) {
                        free(e.args);
                        return 0;
                }
                if (key_reserve(j) < 0 || pend_reserve(j) < 0) {
                        free(e.args);
                        return -ENOMEM;
                }
                return apply_intent(j, &e);
        }
        if (strcmp(op, "done") == 0) {
                char outcome[16];
                enum fm_journal_outcome oc;
                fm_ms ts;
                if (get_str(o, "outcome", outcome, sizeof(outcome)) < 0 ||
                    outcome_from_name(outcome, &oc) < 0 || get_i64(o, "ts", &ts) < 0)
                        return -EBADMSG;
                size_t p = pend_find(j, seq);
                if (p != SIZE_MAX)
                        apply_done(j, p, oc, ts);
                return 0;
        }
        return -EBADMSG;
}

static json_object *parse_line(json_tokener *tok, const char *s, size_t len)
{
        json_tokener_reset(tok);
        json_object *o = json_tokener_parse_ex(tok, s, (int)len);
        if (!o)
                return NULL;
        if (json_tokener_get_error(tok) != json_tokener_success ||
            json_tokener_get_parse_end(tok) != len) {
                json_object_put(o);
                return NULL;
        }
        return o;
}

/*
 * Replays journal.jsonl. Every record was written with its newline in one
 * write and synced before begin/end returned, so a last line that lacks its
 * newline or does not parse was never acknowledged: it is cut away. A bad
 * line anywhere else is corruption and fails the open.
 */
static int replay_journal(struct fm_journal *j)
{
        _cleanup_free_ char *data = NULL;
        size_t len;
        int r = read_fd(j->fd, FM_JOURNAL_READ_MAX, &data, &len);
        if (r < 0)
                return r;

        json_tokener *tok = json_tokener_new_ex(32);
        if (!tok)
                return -ENOMEM;
        size_t pos = 0;
        r = 0;
        while (pos < len) {
                char *nl = memchr(data + pos, '\n', len - pos);
                size_t end = nl ? (size_t)(nl - data) : len;
                json_object *o = NULL;
                if (nl && end - pos < FM_JOURNAL_RECORD_MAX)
                        o = parse_line(tok, data + pos, end - pos);
                if (!o) {
                        if (!nl || end + 1 == len)
                                break; /* torn tail */
                        r = -EBADMSG;
                        break;
                }
                r = replay_record(j, o);
                json_object_put(o);
                if (r < 0)
                        break;
                pos = end + 1;
        }
        json_tokener_free(tok);
        if (r < 0)
                return r;
        if (pos < len) {
                if (ftruncate(j->fd, (off_t)pos) < 0 || fdatasync(j->fd) < 0)
                        return -errno;
        }
        j->size = pos;
        return 0;
}

int fm_journal_open(const char *dir, const struct fm_journal_limits *limits,
                    struct fm_journal **ret)
{
        struct fm_journal_limits lim;
        int r;

        if (!dir || !ret)
                return -EINVAL;
        if (limits)
                lim = *limits;
        else
                fm_journal_limits_default(&lim);
        if (lim.file_max == 0 || lim.keys_max == 0 || lim.keys_max > FM_JOURNAL_KEYS_MAX ||
            lim.pending_max == 0 || lim.pending_max > FM_JOURNAL_PENDING_MAX ||
            lim.pending_max > lim.keys_max)
                return -EINVAL;

        struct fm_journal *j = calloc(1, sizeof(*j));
        if (!j)
                return -ENOMEM;
        j->dirfd = j->fd = -1;
        j->lim = lim;
        j->next_seq = 1;
        j->lru_head = j->lru_tail = NIL;

        uint32_t nb = 64;
        while (nb < lim.keys_max)
                nb *= 2;
        j->bucket = malloc(nb * sizeof(*j->bucket));
        if (!j->bucket) {
                r = -ENOMEM;
                goto fail;
        }
        memset(j->bucket, 0xff, nb * sizeof(*j->bucket));
        j->mask = nb - 1;

        j->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (j->dirfd < 0) {
                r = -errno;
                goto fail;
        }
        if (flock(j->dirfd, LOCK_EX | LOCK_NB) < 0) {
                r = errno == EWOULDBLOCK ? -EBUSY : -errno;
                goto fail;
        }
        r = load_snapshot(j);
        if (r < 0)
                goto fail;
        j->fd = openat(j->dirfd, FM_JOURNAL_FILE,
                       O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (j->fd < 0) {
                r = -errno;
                goto fail;
        }
        /* A journal created just now must survive a crash as a directory entry. */
        if (fsync(j->dirfd) < 0) {
                r = -errno;
                goto fail;
        }
        r = replay_journal(j);
        if (r < 0)
                goto fail;
        *ret = j;
        return 0;
fail:
        fm_journal_free(j);
        return r;
}

struct fm_journal *fm_journal_free(struct fm_journal *j)
{
        if (!j)
                return NULL;
        for (size_t i = 0; i < j->n_pend; i++)
                free(j->pend[i].args);
        free(j->pend);
        free(j->slot);
        free(j->bucket);
        if (j->fd >= 0)
                close(j->fd);
        if (j->dirfd >= 0)
                close(j->dirfd); /* drops the flock */
        free(j);
        return NULL;
}

/* ---- begin / end ---- */

int fm_journal_begin(struct fm_journal *j, const struct fm_intent *it,
                     const struct fm_weight *weights, uint64_t fence, fm_ms now, uint64_t *ret_seq)
{
        if (!j || !it || (unsigned)it->action >= _FM_ACTION_MAX || !it->key[0] ||
            strnlen(it->key, sizeof(it->key)) == sizeof(it->key) ||
            (it->action == FM_ACTION_SET_WEIGHTS && it->arg.weights.n > 0 && !weights))
                return -EINVAL;
        if (j->poisoned)
                return -EIO;
        if (fence < j->fence)
                return -ESTALE;
        uint32_t k = key_find(j, it->key);
        if (k != NIL && j->slot[k].pending)
                return -EINPROGRESS;
        if (k != NIL && j->slot[k].outcome == FM_JOURNAL_OK)
                return -EALREADY;
        if (j->n_pend >= j->lim.pending_max)
                return -ENOBUFS;

        int r = maybe_compact(j);
        if (r < 0)
                return r;
        if (key_reserve(j) < 0 || pend_reserve(j) < 0)
                return -ENOMEM;

        struct fm_journal_entry e = {.seq = j->next_seq, .fence = fence, .ts = now};
        e.intent.action = it->action;
        e.intent.at = now;
        memcpy(e.intent.deployment, it->deployment, sizeof(e.intent.deployment));
        e.intent.deployment[sizeof(e.intent.deployment) - 1] = '\0';
        memcpy(e.intent.instance, it->instance, sizeof(e.intent.instance));
        e.intent.instance[sizeof(e.intent.instance) - 1] = '\0';
        memcpy(e.intent.key, it->key, sizeof(e.intent.key));
        e.intent.arg = it->arg;
        if (it->action == FM_ACTION_SET_WEIGHTS)
                e.intent.arg.weights.first = 0;

        json_object *args = args_to_json(it, weights);
        if (!args)
                return -ENOMEM;
        e.args = strdup(json_object_to_json_string_ext(args, JSON_C_TO_STRING_PLAIN));
        if (!e.args) {
                json_object_put(args);
                return -ENOMEM;
        }
        _cleanup_json_ json_object *rec = intent_record(&e, it->policy, args);
        if (!rec) {
                free(e.args);
                return -ENOMEM;
        }
        r = append(j, rec);
        if (r < 0) {
                free(e.args);
                return r;
        }
        r = apply_intent(j, &e); /* cannot fail: room reserved, pending_max <= keys_max */
        if (r < 0)
                return r;
        *ret_seq = e.seq;
        return 0;
}

/* Copies at most FM_JOURNAL_DETAIL_MAX bytes, not splitting a UTF-8 sequence. */
static void cut_detail(const char *detail, char *buf)
{
        size_t n = strnlen(detail, FM_JOURNAL_DETAIL_MAX + 1);
        if (n > FM_JOURNAL_DETAIL_MAX) {
                n = FM_JOURNAL_DETAIL_MAX;
                while (n > 0 && ((uint8_t)detail[n] & 0xC0) == 0x80)
                        n--;
        }
        memcpy(buf, detail, n);
        buf[n] = '\0';
}

int fm_journal_end(struct fm_journal *j, uint64_t seq, enum fm_journal_outcome outcome,
                   const char *detail, fm_ms now)
{
        char d[FM_JOURNAL_DETAIL_MAX + 1];

        if (!j || (unsigned)outcome >= _FM_JOURNAL_OUTCOME_MAX)
                return -EINVAL;
        if (j->poisoned)
                return -EIO;
        if (pend_find(j, seq) == SIZE_MAX)
                return -ENOENT;
        int r = maybe_compact(j);
        if (r < 0)
                return r;
        size_t p = pend_find(j, seq);
        cut_detail(detail ? detail : "", d);

        _cleanup_json_ json_object *o = json_object_new_object();
        if (!o)
                return -ENOMEM;
        r = add(o, "seq", json_object_new_uint64(seq));
        if (r == 0)
                r = add(o, "op", json_object_new_string("done"));
        if (r == 0)
                r = add(o, "key", json_object_new_string(j->pend[p].intent.key));
        if (r == 0)
                r = add(o, "outcome", json_object_new_string(outcome_names[outcome]));
        if (r == 0)
                r = add(o, "detail", json_object_new_string(d));
        if (r == 0)
                r = add(o, "ts", json_object_new_int64(now));
        if (r < 0)
                return r;
        r = append(j, o);
        if (r < 0)
                return r;
        apply_done(j, p, outcome, now);
        return 0;
}

size_t fm_journal_pending(const struct fm_journal *j, const struct fm_journal_entry **ret_entries)
{
        *ret_entries = j->pend;
        return j->n_pend;
}

int fm_journal_lookup(const struct fm_journal *j, const char *key, struct fm_journal_key *ret)
{
        uint32_t k = key ? key_find(j, key) : NIL;
        if (k == NIL)
                return -ENOENT;
        const struct key_slot *s = &j->slot[k];
        *ret = (struct fm_journal_key){
                .seq = s->seq, .pending = s->pending, .outcome = s->outcome, .ts = s->ts};
        return 0;
}

uint64_t fm_journal_fence(const struct fm_journal *j)
{
        return j->fence;
}

int fm_journal_dirfd(const struct fm_journal *j)
{
        return j->dirfd;
}
