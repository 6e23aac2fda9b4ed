/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The action journal: write-ahead log of every approved action.
 *
 * Before an action is executed the daemon calls fm_journal_begin(), which
 * appends an "intent" record to <dir>/journal.jsonl and fdatasync()s it;
 * after the actuator answered, fm_journal_end() appends a "done" record with
 * the outcome. One JSON object per line:
 *
 *   {"seq":N,"op":"intent","key":..,"action":..,"policy":..,"deployment":..,
 *    "instance":..,"args":{..},"fence":F,"ts":..}
 *   {"seq":N,"op":"done","key":..,"outcome":"ok|failed|refused|unknown",
 *    "detail":..,"ts":..}
 *
 * What the journal guarantees:
 *   - idempotency: a key whose last action ended "ok" is never begun again
 *     (-EALREADY), in particular a completed rollback is never repeated; a key
 *     begun and not ended is refused with -EINPROGRESS. A key that ended
 *     failed/refused/unknown may be begun again.
 *   - fencing: each begin carries a fencing token (the Lease's transition
 *     count). The journal keeps the highest token it has seen (persisted in
 *     the records and the snapshot) and refuses a lower one with -ESTALE, so
 *     a deposed leader's late action cannot be recorded or executed.
 *   - recovery: fm_journal_open() loads journal.snapshot.json, replays the
 *     journal, cuts away a torn last line, and exposes the entries begun but
 *     never ended (fm_journal_pending()). The daemon settles each of them by
 *     observing the backends and records the result with fm_journal_end().
 *   - compaction: once the journal grows past limits.file_max, the next
 *     begin/end first writes the snapshot atomically and starts an empty
 *     journal. Replay is idempotent, so a crash between the two steps is safe.
 *   - exclusivity: the state directory is flock()ed; a second open fails.
 *
 * This is shell-side code: it does file I/O but never logs; every failure is
 * a negative errno for the daemon to report. After a failed write or sync the
 * journal is poisoned (every later call returns -EIO): after a failed fsync
 * the kernel's page cache cannot be trusted to tell what reached the disk.
 */

#include <stddef.h>
#include <stdint.h>

#include "intent.h"
#include "util.h"

#define FM_JOURNAL_FILE "journal.jsonl"
#define FM_JOURNAL_SNAPSHOT_FILE "journal.snapshot.json"

/* Longest record line, newline included. A bigger one is -E2BIG (huge weight sets). */
#define FM_JOURNAL_RECORD_MAX (256u * 1024u)
/* Completed keys remembered; past it the least recently used completed key is forgotten. */
#define FM_JOURNAL_KEYS_MAX 65536u
/* Entries begun and not ended at once; past it begin returns -ENOBUFS. */
#define FM_JOURNAL_PENDING_MAX 4096u
/* Default journal size that triggers compaction. */
#define FM_JOURNAL_FILE_MAX_DEFAULT (16u * 1024u * 1024u)
/* Biggest journal or snapshot file open() will read; bigger is -EFBIG. */
#define FM_JOURNAL_READ_MAX (256u * 1024u * 1024u)
/* Longest "detail" of a done record, in bytes; longer is cut at a UTF-8 boundary. */
#define FM_JOURNAL_DETAIL_MAX 512u
/* Longest file name fm_state_write_atomic() accepts. */
#define FM_STATE_NAME_MAX 128u

struct fm_journal_limits {
        uint64_t file_max; /* compaction threshold in bytes; default FM_JOURNAL_FILE_MAX_DEFAULT */
        uint32_t keys_max; /* 1..FM_JOURNAL_KEYS_MAX; default FM_JOURNAL_KEYS_MAX */
        uint32_t pending_max; /* 1..FM_JOURNAL_PENDING_MAX; default FM_JOURNAL_PENDING_MAX */
};

void fm_journal_limits_default(struct fm_journal_limits *l);

enum fm_journal_outcome {
        FM_JOURNAL_OK,      /* "ok": done; the key is never begun again */
        FM_JOURNAL_FAILED,  /* "failed": the actuator reported failure */
        FM_JOURNAL_REFUSED, /* "refused": not executed (e.g. the actuator fenced it off) */
        FM_JOURNAL_UNKNOWN, /* "unknown": settled without knowing whether it took effect */
        _FM_JOURNAL_OUTCOME_MAX,
};

/* "ok", "failed", "refused", "unknown"; NULL if out of range. */
const char *fm_journal_outcome_name(enum fm_journal_outcome o) _pure_;

/* An entry begun and not ended, as recovered from disk. */
struct fm_journal_entry {
        uint64_t seq;
        uint64_t fence;
        fm_ms ts;
        /*
         * The intent as journaled: action, deployment, instance, key and arg.
         * policy and reason are NULL, evidence is zeroed; for set_weights
         * arg.weights.first is 0 and the weights are only in args.
         */
        struct fm_intent intent;
        char *args; /* the "args" object as JSON text; owned by the journal */
};

/* What the journal knows of one key. */
struct fm_journal_key {
        uint64_t seq; /* of the last begin */
        int pending;  /* 1: begun, not ended; outcome and ts are then meaningless */
        enum fm_journal_outcome outcome;
        fm_ms ts; /* of the end */
};

struct fm_journal;

/*
 * Opens (creating if need be) the journal in the existing directory dir,
 * loads the snapshot, replays the journal and truncates a torn last line.
 * limits may be NULL for the defaults. On success *ret owns the journal.
 * Returns 0, -EINVAL (bad limits), -EBUSY (another process holds the dir),
 * -EBADMSG (a corrupt record before the last line, or a corrupt snapshot),
 * -EFBIG, -ENOMEM, or the errno of open/read/write (-ENOENT for a missing
 * dir, -EACCES for an unwritable one).
 */
int fm_journal_open(const char *dir, const struct fm_journal_limits *limits,
                    struct fm_journal **ret);

/* Closes the files and frees everything; accepts NULL; returns NULL. */
struct fm_journal *fm_journal_free(struct fm_journal *j);

/*
 * Journals the intent it before it is executed. weights points at
 * it->arg.weights.n weights for FM_ACTION_SET_WEIGHTS and is ignored
 * otherwise. fence is the caller's fencing token; now the record's time.
 * The record is on disk when this returns 0 and sets *ret_seq.
 * Returns -EALREADY (key completed ok), -EINPROGRESS (key pending),
 * -ESTALE (fence below the highest seen), -ENOBUFS (pending_max entries
 * pending), -EINVAL (bad action or empty/unterminated key), -E2BIG (record
 * over FM_JOURNAL_RECORD_MAX), -ENOMEM, -EIO (poisoned) or a write errno.
 * Nothing is changed on failure.
 */
int fm_journal_begin(struct fm_journal *j, const struct fm_intent *it,
                     const struct fm_weight *weights, uint64_t fence, fm_ms now, uint64_t *ret_seq);

/*
 * Records the outcome of pending entry seq, with an optional detail (may be
 * NULL; cut to FM_JOURNAL_DETAIL_MAX bytes). Returns 0, -ENOENT (seq is not
 * pending), -EINVAL (bad outcome), -ENOMEM, -EIO (poisoned) or a write errno.
 */
int fm_journal_end(struct fm_journal *j, uint64_t seq, enum fm_journal_outcome outcome,
                   const char *detail, fm_ms now);

/*
 * The entries begun and not ended, oldest first, in *ret_entries (owned by
 * the journal, valid until the next begin/end/free). Returns their number.
 */
size_t fm_journal_pending(const struct fm_journal *j, const struct fm_journal_entry **ret_entries);

/* Fills *ret for key; returns 0 or -ENOENT (never seen, or forgotten). */
int fm_journal_lookup(const struct fm_journal *j, const char *key, struct fm_journal_key *ret);

/* The highest fencing token seen. */
uint64_t fm_journal_fence(const struct fm_journal *j) _pure_;

/* The directory fd, for fm_state_write_atomic(); owned by the journal. */
int fm_journal_dirfd(const struct fm_journal *j) _pure_;

/*
 * Writes the snapshot and starts an empty journal now (normally done
 * automatically past limits.file_max). Returns 0, -ENOMEM, -EIO or a
 * write errno.
 */
int fm_journal_compact(struct fm_journal *j);

/*
 * Replaces the file name in directory dirfd with data[0..len) atomically:
 * writes ".<name>.tmp", fsyncs it, renames it over name and fsyncs the
 * directory. A reader sees the old content or the new, never a mix; no
 * temporary file is left behind. Returns 0, -EINVAL (name empty, with '/',
 * "." or "..", or longer than FM_STATE_NAME_MAX) or the errno of the
 * failing call.
 */
int fm_state_write_atomic(int dirfd, const char *name, const void *data, size_t len);

/*
 * Reads the file name in dirfd into a NUL-terminated buffer the caller
 * frees. Returns 0 (*ret_data, *ret_len set), -EFBIG (over max bytes),
 * -ENOENT, -ENOMEM or the errno of the failing call.
 */
int fm_state_read(int dirfd, const char *name, size_t max, char **ret_data, size_t *ret_len);
