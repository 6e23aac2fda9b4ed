/* SPDX-License-Identifier: MIT */
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <systemd/sd-journal.h>

/* The process-wide log settings (see log.h for why these may be global). */
static struct {
        int max_level;
        bool journal;
} log_state = {LOG_INFO, false};

static const char *const level_names[] = {
        [LOG_EMERG] = "emerg", [LOG_ALERT] = "alert",     [LOG_CRIT] = "crit",
        [LOG_ERR] = "error",   [LOG_WARNING] = "warning", [LOG_NOTICE] = "notice",
        [LOG_INFO] = "info",   [LOG_DEBUG] = "debug",
};

/* systemd sets $JOURNAL_STREAM to "DEV:INODE" of the stream it gave us as stderr. */
static bool stderr_is_journal(void)
{
        const char *e = getenv("JOURNAL_STREAM");
        struct stat st;
        unsigned long long dev, ino;

        if (!e || sscanf(e, "%llu:%llu", &dev, &ino) != 2)
                return false;
        if (fstat(STDERR_FILENO, &st) < 0)
                return false;
        return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void fm_log_setup(int max_level)
{
        log_state.max_level = max_level;
        log_state.journal = stderr_is_journal();
}

void fm_log_set_level(int max_level)
{
        log_state.max_level = max_level;
}

bool fm_log_enabled(int level)
{
        return level <= log_state.max_level;
}

void fm_log_full(int level, const char *deployment, const char *instance, const char *policy,
                 const char *fmt, ...)
{
        char msg[2048];
        va_list ap;

        if (!fm_log_enabled(level))
                return;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);

        if (log_state.journal) {
                /* the set fields are packed first: the first NULL format ends the list */
                const char *f[3] = {NULL, NULL, NULL};
                char dep[96], ins[96], pol[96];
                int n = 0;
                if (deployment) {
                        snprintf(dep, sizeof(dep), "DEPLOYMENT=%s", deployment);
                        f[n++] = dep;
                }
                if (instance) {
                        snprintf(ins, sizeof(ins), "INSTANCE=%s", instance);
                        f[n++] = ins;
                }
                if (policy) {
                        snprintf(pol, sizeof(pol), "POLICY=%s", policy);
                        f[n++] = pol;
                }
                sd_journal_send("MESSAGE=%s", msg, "PRIORITY=%d", level,
                                "SYSLOG_IDENTIFIER=fleetmedic", f[0] ? "%s" : NULL, f[0],
                                f[1] ? "%s" : NULL, f[1], f[2] ? "%s" : NULL, f[2], NULL);
                return;
        }

        const char *name = level >= 0 && level <= LOG_DEBUG ? level_names[level] : "log";
        if (deployment || instance)
                fprintf(stderr, "fleetmedic %s: [%s%s%s] %s\n", name, deployment ? deployment : "",
                        instance ? "/" : "", instance ? instance : "", msg);
        else
                fprintf(stderr, "fleetmedic %s: %s\n", name, msg);
}

bool fm_ratelimit_test(struct fm_ratelimit *rl, fm_ms now, unsigned *ret_suppressed)
{
        unsigned suppressed = 0;

        if (rl->n == 0 && rl->suppressed == 0)
                rl->begin = now;
        if (now - rl->begin >= rl->interval || now < rl->begin) {
                suppressed = rl->suppressed;
                rl->begin = now;
                rl->n = 0;
                rl->suppressed = 0;
        }
        if (ret_suppressed)
                *ret_suppressed = suppressed;
        if (rl->n < rl->burst) {
                rl->n++;
                return true;
        }
        rl->suppressed++;
        return false;
}
