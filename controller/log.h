/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Logging for the shell (the core never logs). To the journal with
 * structured fields (PRIORITY, MESSAGE, DEPLOYMENT=, INSTANCE=, POLICY=)
 * when stderr is connected to it (systemd sets $JOURNAL_STREAM to stderr's
 * device:inode), to stderr as "level: [deployment/instance] message"
 * otherwise.
 *
 * The log level and target are the one piece of process-wide mutable state
 * the style allows: set once at start and on reload, read everywhere.
 */

#include <stdarg.h>
#include <stdbool.h>
#include <syslog.h>

#include "util.h"

/* Picks the target (journal or stderr) and the maximum priority logged. */
void fm_log_setup(int max_level);

/* Changes the maximum priority (on reload). */
void fm_log_set_level(int max_level);

/* True when messages at this priority are written. */
bool fm_log_enabled(int level);

/*
 * Logs one message. deployment, instance and policy may be NULL; when set,
 * they become journal fields and a prefix on stderr.
 */
void fm_log_full(int level, const char *deployment, const char *instance, const char *policy,
                 const char *fmt, ...) __attribute__((format(printf, 5, 6)));

#define log_error(...) fm_log_full(LOG_ERR, NULL, NULL, NULL, __VA_ARGS__)
#define log_warning(...) fm_log_full(LOG_WARNING, NULL, NULL, NULL, __VA_ARGS__)
#define log_notice(...) fm_log_full(LOG_NOTICE, NULL, NULL, NULL, __VA_ARGS__)
#define log_info(...) fm_log_full(LOG_INFO, NULL, NULL, NULL, __VA_ARGS__)
#define log_debug(...) fm_log_full(LOG_DEBUG, NULL, NULL, NULL, __VA_ARGS__)

/*
 * A token-bucket rate limit: at most `burst` messages per `interval`.
 * fm_ratelimit_test() says whether one more may be logged now and counts
 * the ones it refuses; when a new interval opens it returns how many were
 * suppressed in the last one through *ret_suppressed (so the caller can say
 * so once).
 */
struct fm_ratelimit {
        fm_ms interval;
        unsigned burst;
        fm_ms begin;
        unsigned n;
        unsigned suppressed;
};

bool fm_ratelimit_test(struct fm_ratelimit *rl, fm_ms now, unsigned *ret_suppressed);
