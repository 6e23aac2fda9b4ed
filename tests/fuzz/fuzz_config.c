/* SPDX-License-Identifier: MIT */

/*
 * Fuzz target for the configuration loader.
 *
 * Input: the whole of it is the configuration file. fm_config_load() reads
 * a path, so each input is written to a temporary file (mkstemp in $TMPDIR,
 * or /tmp), loaded with the errors going to a memory stream, and the file
 * is unlinked again.
 *
 * Checked against the contract of config.h (a violation aborts):
 *   - the result is 0, -EINVAL, -EFBIG or -ENOMEM (the file is readable);
 *   - -EINVAL comes with at least one error, 0 with none, and 0 writes
 *     nothing to the error stream;
 *   - the error stream holds one line per error, at most 100 of them plus
 *     one "N more errors not shown" line, each starting with the path and
 *     sorted by line number, without control characters;
 *   - on failure *ret is untouched;
 *   - on success the configuration passes fm_fleet_config_validate(), gives
 *     a decoder fm_decoder_new() accepts, and keeps every documented range;
 *   - a second load of the same file gives the same result.
 *
 * Built with -fsanitize=fuzzer this is a libFuzzer target. Built with
 * -DFM_FUZZ_MAIN it has a main() that replays the files (or the files in
 * the directories) named on the command line: a regression test over the
 * seed corpus in tests/fuzz/corpus/config/.
 */

#if !defined(_GNU_SOURCE) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L /* mkstemp, open_memstream, opendir */
#endif

#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include "config.h"
#include "event.h"
#include "fleet.h"
#include "http.h"

#define ERRORS_SHOWN_MAX 100 /* config.c prints at most this many error lines */
#define SENTINEL 0xa5

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define check(cond)                                                                                \
        do {                                                                                       \
                if (!(cond)) {                                                                     \
                        fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__,       \
                                #cond);                                                            \
                        abort();                                                                   \
                }                                                                                  \
        } while (0)

static bool str_ok(const char *s, size_t size)
{
        return memchr(s, '\0', size) != NULL;
}

#define check_str(a) check(str_ok((a), sizeof(a)))

/* Writes data to a new temporary file; returns its path (to free) or aborts. */
static char *write_temp(const uint8_t *data, size_t size)
{
        const char *dir = getenv("TMPDIR");
        if (!dir || !*dir)
                dir = "/tmp";
        size_t size_path = strlen(dir) + sizeof("/fuzz_config.XXXXXX");
        char *path = malloc(size_path);
        check(path);
        snprintf(path, size_path, "%s/fuzz_config.XXXXXX", dir);
        int fd = mkstemp(path);
        if (fd < 0) {
                fprintf(stderr, "mkstemp %s: %s\n", path, strerror(errno));
                abort();
        }
        size_t off = 0;
        while (off < size) {
                ssize_t n = write(fd, data + off, size - off);
                if (n < 0 && errno == EINTR)
                        continue;
                check(n > 0);
                off += (size_t)n;
        }
        check(close(fd) == 0);
        return path;
}

/*
 * The error output of one load: n_errors lines, or 100 and a last one that
 * counts the rest; each "PATH:LINE: ..." or "PATH: ...", in line order.
 */
static void check_errors(const char *path, const char *out, size_t len, unsigned n_errors)
{
        size_t plen = strlen(path);
        unsigned shown = n_errors < ERRORS_SHOWN_MAX ? n_errors : ERRORS_SHOWN_MAX;
        unsigned lines = shown + (n_errors > ERRORS_SHOWN_MAX);
        unsigned seen = 0;
        unsigned long last_line = 0;

        check(strlen(out) == len);
        check(len == 0 || out[len - 1] == '\n');
        for (const char *p = out; p < out + len; seen++) {
                const char *nl = memchr(p, '\n', (size_t)(out + len - p));
                check(nl);
                for (const char *q = p; q < nl; q++)
                        check((unsigned char)*q >= 0x20 && *q != 0x7f);
                check((size_t)(nl - p) > plen + 2);
                check(!memcmp(p, path, plen) && p[plen] == ':');
                const char *rest = p + plen + 1;
                if (seen < shown) {
                        unsigned long line = 0;
                        if (*rest != ' ') {
                                char *end;
                                line = strtoul(rest, &end, 10);
                                check(end > rest && line > 0 && end[0] == ':' && end[1] == ' ');
                        }
                        check(line >= last_line);
                        last_line = line;
                } else
                        check(rest[0] == ' ' && strstr(rest, " more errors not shown") != NULL);
                p = nl + 1;
        }
        check(seen == lines);
}

/* A successful load: every value within the range config.h documents. */
static void check_config(const struct fm_config *cfg)
{
        const struct fm_mqtt_config *m = &cfg->mqtt;

        check(fm_fleet_config_validate(&cfg->fleet) == 0);

        check_str(m->host);
        check(m->host[0] != '\0');
        check(m->port >= 1);
        check(m->protocol == 4 || m->protocol == 5);
        check_str(m->client_id);
        check(m->client_id[0] != '\0');
        for (const char *p = m->client_id; *p; p++)
                check((unsigned char)*p >= 0x20 && *p != 0x7f);
        check_str(m->topic_prefix);
        check(m->qos == 0 || m->qos == 1);
        check(m->keepalive_s == 0 || m->keepalive_s >= 5);
        check(m->receive_maximum >= 1);
        check_str(m->shared_group);
        check_str(m->username_file);
        check_str(m->password_file);
        check_str(m->ca_file);
        check_str(m->cert_file);
        check_str(m->key_file);
        check(!m->password_file[0] || m->username_file[0]);
        check(!m->cert_file[0] == !m->key_file[0]);
        check(m->tls || (!m->ca_file[0] && !m->cert_file[0] && !m->key_file[0]));
        check(m->reconnect_min >= 1 && m->reconnect_min <= m->reconnect_max);

        check_str(cfg->http_listen);
        struct sockaddr_storage ss;
        unsigned sslen;
        check(fm_http_parse_listen(cfg->http_listen, &ss, &sslen) == 0);
        check_str(cfg->state_dir);
        check(cfg->state_dir[0] == '/');
        check(cfg->tick >= 50 && cfg->tick <= 60 * FM_MS_PER_S);
        check(cfg->log_level >= LOG_ERR && cfg->log_level <= LOG_DEBUG);
        check(cfg->max_payload >= 64 && cfg->max_payload <= 16 * 1024 * 1024);
        check(cfg->max_skew >= 1);

        /* The daemon builds its decoder from this; it must accept it. */
        struct fm_decoder_config dc;
        struct fm_decoder *d = NULL;
        fm_config_decoder(cfg, &dc);
        check(fm_decoder_new(&dc, &d) == 0);
        fm_decoder_free(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        char *path = write_temp(data, size);
        struct fm_config *cfg = malloc(sizeof(*cfg));
        struct fm_config *cfg2 = malloc(sizeof(*cfg2));
        struct fm_config *untouched = malloc(sizeof(*untouched));
        check(cfg && cfg2 && untouched);
        memset(cfg, SENTINEL, sizeof(*cfg));
        memset(cfg2, SENTINEL, sizeof(*cfg2));
        memset(untouched, SENTINEL, sizeof(*untouched));

        char *out = NULL;
        size_t out_len = 0;
        FILE *errors = open_memstream(&out, &out_len);
        check(errors);
        unsigned n_errors = UINT32_MAX;
        int r = fm_config_load(path, cfg, errors, &n_errors);
        check(fclose(errors) == 0);

        check(r == 0 || r == -EINVAL || r == -EFBIG || r == -ENOMEM);
        check(n_errors != UINT32_MAX);
        if (r == -EINVAL)
                check(n_errors >= 1);
        check_errors(path, out, out_len, n_errors);
        if (r == 0) {
                check(n_errors == 0 && out_len == 0);
                check_config(cfg);
        } else
                check(!memcmp(cfg, untouched, sizeof(*cfg)));

        /* Deterministic, and no stream is needed. */
        unsigned n_errors2 = UINT32_MAX;
        int r2 = fm_config_load(path, cfg2, NULL, &n_errors2);
        check(r2 == r && n_errors2 == n_errors);
        if (r == 0)
                check(!memcmp(cfg, cfg2, sizeof(*cfg)));

        check(unlink(path) == 0);
        free(out);
        free(untouched);
        free(cfg2);
        free(cfg);
        free(path);
        return 0;
}

#ifdef FM_FUZZ_MAIN
#define FUZZ_INPUT_MAX (2 * 1024 * 1024) /* past the loader's 1 MiB, to reach -EFBIG */
#include "fuzz_main.h"
#endif
