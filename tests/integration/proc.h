/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Peer processes for integration tests written with cmocka: a fake API
 * server, a real haproxy, a dbus-daemon, an alertmanager, a mosquitto
 * broker; helper programs run to completion (fm_run()), among them the
 * openssl commands that make test certificates. Include after <cmocka.h>.
 *
 * Every peer is a child of the test with PR_SET_PDEATHSIG, so it dies with
 * the test whatever happens; it runs in its own temporary directory
 * (removed by fm_peer_done()); it is stopped by its PID only (SIGTERM, then
 * SIGKILL after a deadline); fm_peer_track() registers an atexit() handler
 * that stops whatever a failed test left running. Nothing sleeps blindly:
 * readiness is polled with a deadline, and a peer that dies while we wait
 * fails the test at once (the "death pipe": the child keeps the write end
 * of a pipe open across exec, so the read end reports POLLHUP when it is
 * gone; valgrind 3.19 does not know pidfd_open()).
 *
 * Set FM_TEST_VERBOSE=1 to see the peers' stderr.
 */

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define FM_PEER_START_MS 20000 /* generous: valgrind and a cold page cache are slow */
#define FM_PEER_STOP_MS 5000
#define FM_PEERS_MAX 8

struct fm_peer {
        pid_t pid;
        int exit_fd;  /* read end of the death pipe, -1 when not running */
        char dir[64]; /* the peer's own temporary directory */
        char log[96]; /* dir/peer.log: its stdout and stderr */
};

static inline int64_t fm_test_now_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The wall clock in milliseconds since the epoch (what fm_ms `now` arguments are). */
static inline int64_t fm_test_wall_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Ends the test program as skipped (exit code 77, for meson) when path is not an executable. */
static inline void fm_require_program(const char *path)
{
        if (access(path, X_OK) != 0) {
                fprintf(stderr, "skipping: %s not found\n", path);
                exit(77);
        }
}

/* The only global: what atexit() must stop if a test dies without its teardown. */
static struct fm_peer *fm_live_peers[FM_PEERS_MAX];

static inline int fm_rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
        (void)st;
        (void)flag;
        (void)ftw;
        remove(path);
        return 0;
}

static inline void fm_rm_tree(const char *dir)
{
        if (dir && dir[0])
                nftw(dir, fm_rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

static inline void fm_kill_live_peers(void)
{
        for (size_t i = 0; i < FM_PEERS_MAX; i++) {
                struct fm_peer *p = fm_live_peers[i];
                if (p && p->pid > 0) {
                        kill(p->pid, SIGKILL);
                        waitpid(p->pid, NULL, 0);
                        p->pid = 0;
                        fm_rm_tree(p->dir);
                }
                fm_live_peers[i] = NULL;
        }
}

static inline void fm_peer_track(struct fm_peer *p, bool on)
{
        static bool registered;
        if (!registered) {
                atexit(fm_kill_live_peers);
                registered = true;
        }
        for (size_t i = 0; i < FM_PEERS_MAX; i++) {
                if (on && !fm_live_peers[i]) {
                        fm_live_peers[i] = p;
                        return;
                }
                if (!on && fm_live_peers[i] == p) {
                        fm_live_peers[i] = NULL;
                        return;
                }
        }
}

/* Creates the peer's directory /tmp/fm-test-<name>-XXXXXX. */
static inline void fm_peer_init(struct fm_peer *p, const char *name)
{
        memset(p, 0, sizeof(*p));
        p->exit_fd = -1;
        int n = snprintf(p->dir, sizeof(p->dir), "/tmp/fm-test-%s-XXXXXX", name);
        assert_true(n > 0 && (size_t)n < sizeof(p->dir));
        assert_non_null(mkdtemp(p->dir));
        n = snprintf(p->log, sizeof(p->log), "%s/peer.log", p->dir);
        assert_true(n > 0 && (size_t)n < sizeof(p->log));
}

/* buf = dir/name */
static inline void fm_peer_path(const struct fm_peer *p, const char *name, char *buf, size_t size)
{
        int n = snprintf(buf, size, "%s/%s", p->dir, name);
        assert_true(n > 0 && (size_t)n < size);
}

static inline void fm_write_file(const char *path, const char *text)
{
        FILE *f = fopen(path, "we");
        assert_non_null(f);
        assert_true(fputs(text, f) >= 0);
        assert_int_equal(fclose(f), 0);
}

/* fork() of a child that dies with the test (PR_SET_PDEATHSIG); returns 0 in the child. */
static inline pid_t fm_fork(void)
{
        pid_t parent = getpid();
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                prctl(PR_SET_PDEATHSIG, SIGKILL);
                if (getppid() != parent)
                        _exit(126);
        }
        return pid;
}

/*
 * fork + exec of argv (argv[0] an absolute path; envp NULL keeps ours) in
 * dir (NULL: ours). The child dies with us; its stdin is /dev/null, its
 * stdout out_fd and its stderr err_fd (-1: /dev/null; stderr stays ours
 * with FM_TEST_VERBOSE). Returns its PID; *ret_exit_fd gets the read end
 * of its death pipe.
 */
static inline pid_t fm_spawn(char *const argv[], char *const envp[], const char *dir, int out_fd,
                             int err_fd, int *ret_exit_fd)
{
        int dp[2];
        assert_int_equal(pipe2(dp, O_CLOEXEC), 0);
        pid_t pid = fm_fork();
        if (pid == 0) {
                int null = open("/dev/null", O_RDWR | O_CLOEXEC);
                if (null >= 0)
                        dup2(null, STDIN_FILENO);
                dup2(out_fd >= 0 ? out_fd : null, STDOUT_FILENO);
                if (!getenv("FM_TEST_VERBOSE"))
                        dup2(err_fd >= 0 ? err_fd : null, STDERR_FILENO);
                if (fcntl(dp[1], F_SETFD, 0) < 0 || (dir && chdir(dir) < 0))
                        _exit(125);
                if (envp)
                        execve(argv[0], argv, envp);
                else
                        execv(argv[0], argv);
                _exit(127);
        }
        close(dp[1]);
        *ret_exit_fd = dp[0];
        return pid;
}

/*
 * Runs argv to completion, its output discarded; returns its exit code
 * (128 + the signal that killed it). Fails the test when it has not
 * finished after FM_PEER_START_MS (it is killed then).
 */
static inline int fm_run(char *const argv[])
{
        int exit_fd, status = 0;
        pid_t pid = fm_spawn(argv, NULL, NULL, -1, -1, &exit_fd);
        struct pollfd pf = {.fd = exit_fd, .events = POLLIN};
        bool done = poll(&pf, 1, FM_PEER_START_MS) > 0;
        if (!done)
                kill(pid, SIGKILL);
        assert_int_equal(waitpid(pid, &status, 0), pid);
        close(exit_fd);
        if (!done)
                fail_msg("%s did not finish in %d ms", argv[0], FM_PEER_START_MS);
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/*
 * Starts argv (argv[0] an absolute path; envp NULL keeps ours) in the
 * peer's directory, stdout and stderr appended to its log (stderr stays
 * ours with FM_TEST_VERBOSE).
 */
static inline void fm_peer_start_env(struct fm_peer *p, char *const argv[], char *const envp[])
{
        assert_int_equal(p->pid, 0);
        int log = open(p->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        assert_true(log >= 0);
        p->pid = fm_spawn(argv, envp, p->dir, log, log, &p->exit_fd);
        close(log);
        fm_peer_track(p, true);
}

static inline void fm_peer_start(struct fm_peer *p, char *const argv[])
{
        fm_peer_start_env(p, argv, NULL);
}

/* True while the peer runs. */
static inline bool fm_peer_alive(const struct fm_peer *p)
{
        if (p->pid <= 0 || p->exit_fd < 0)
                return false;
        struct pollfd pf = {.fd = p->exit_fd, .events = POLLIN};
        return poll(&pf, 1, 0) == 0;
}

/*
 * Polls ready(arg) every 10 ms until it is true; fails the test when the
 * peer exits first or FM_PEER_START_MS pass (naming the log to read).
 */
static inline void fm_peer_wait(struct fm_peer *p, bool (*ready)(void *arg), void *arg)
{
        int64_t deadline = fm_test_now_ms() + FM_PEER_START_MS;
        while (!ready(arg)) {
                int64_t left = deadline - fm_test_now_ms();
                if (left <= 0)
                        fail_msg("peer not ready after %d ms; see %s", FM_PEER_START_MS, p->log);
                struct pollfd pf = {.fd = p->exit_fd, .events = POLLIN};
                if (poll(&pf, 1, left < 10 ? (int)left : 10) > 0)
                        fail_msg("peer exited at start; see %s", p->log);
        }
}

/* Stops the peer with sig (SIGKILL after FM_PEER_STOP_MS) and reaps it; returns its wait status. */
static inline int fm_peer_stop(struct fm_peer *p, int sig)
{
        int status = 0;
        if (p->pid <= 0)
                return 0;
        kill(p->pid, SIGCONT); /* in case a test stopped it */
        kill(p->pid, sig);
        struct pollfd pf = {.fd = p->exit_fd, .events = POLLIN};
        if (poll(&pf, 1, FM_PEER_STOP_MS) <= 0)
                kill(p->pid, SIGKILL);
        waitpid(p->pid, &status, 0);
        close(p->exit_fd);
        p->exit_fd = -1;
        p->pid = 0;
        fm_peer_track(p, false);
        return status;
}

/* Stops the peer and removes its directory (keeps it with FM_TEST_KEEP=1). */
static inline void fm_peer_done(struct fm_peer *p)
{
        fm_peer_stop(p, SIGTERM);
        if (!getenv("FM_TEST_KEEP"))
                fm_rm_tree(p->dir);
        p->dir[0] = '\0';
}

/* A free TCP port on 127.0.0.1 (bound, read back, closed). */
static inline uint16_t fm_free_port(void)
{
        int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(s >= 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof(a)), 0);
        socklen_t len = sizeof(a);
        assert_int_equal(getsockname(s, (struct sockaddr *)&a, &len), 0);
        close(s);
        return ntohs(a.sin_port);
}

/* True when 127.0.0.1:port accepts a connection. */
static inline bool fm_port_accepts(uint16_t port)
{
        int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (s < 0)
                return false;
        struct sockaddr_in a = {.sin_family = AF_INET,
                                .sin_port = htons(port),
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        bool ok = connect(s, (struct sockaddr *)&a, sizeof(a)) == 0;
        close(s);
        return ok;
}

/* True when the unix stream socket at path accepts a connection. */
static inline bool fm_unix_accepts(const char *path)
{
        struct sockaddr_un a = {.sun_family = AF_UNIX};
        if (strlen(path) >= sizeof(a.sun_path))
                return false;
        strcpy(a.sun_path, path);
        int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (s < 0)
                return false;
        bool ok = connect(s, (struct sockaddr *)&a, sizeof(a)) == 0;
        close(s);
        return ok;
}

/* For fm_peer_wait(): arg points to a uint16_t port. */
static inline bool fm_ready_port(void *arg)
{
        return fm_port_accepts(*(const uint16_t *)arg);
}

/* For fm_peer_wait(): arg is a socket path. */
static inline bool fm_ready_unix(void *arg)
{
        return fm_unix_accepts(arg);
}

#define FM_OPENSSL_BIN "/usr/bin/openssl"

/*
 * openssl req: a new EC P-256 key in key and, for subject subj, a
 * self-signed certificate valid for a day in out (x509) or a request.
 */
static inline void fm_openssl_req(const char *key, const char *out, const char *subj, bool x509)
{
        char *argv[] = {FM_OPENSSL_BIN,
                        "req",
                        "-newkey",
                        "ec",
                        "-pkeyopt",
                        "ec_paramgen_curve:prime256v1",
                        "-nodes",
                        "-keyout",
                        (char *)key,
                        "-out",
                        (char *)out,
                        "-subj",
                        (char *)subj,
                        x509 ? "-x509" : NULL,
                        "-days",
                        "1",
                        NULL};
        assert_int_equal(fm_run(argv), 0);
}

/* A self-signed CA in p's directory: <name>.key and <name>.crt. */
static inline void fm_make_ca(const struct fm_peer *p, const char *name)
{
        char key[128], crt[128], subj[96];
        int n = snprintf(key, sizeof key, "%s/%s.key", p->dir, name);
        assert_true(n > 0 && (size_t)n < sizeof key);
        n = snprintf(crt, sizeof crt, "%s/%s.crt", p->dir, name);
        assert_true(n > 0 && (size_t)n < sizeof crt);
        snprintf(subj, sizeof subj, "/CN=fleetmedic test %s", name);
        fm_openssl_req(key, crt, subj, true);
}

/*
 * In p's directory: a CA (ca.key, ca.crt: fm_make_ca(p, "ca")) and
 * server.key and server.crt for 127.0.0.1 and localhost, signed by it.
 */
static inline void fm_make_certs(const struct fm_peer *p)
{
        char ca_key[128], ca_crt[128], key[128], csr[128], crt[128], ext[128];
        fm_make_ca(p, "ca");
        fm_peer_path(p, "ca.key", ca_key, sizeof ca_key);
        fm_peer_path(p, "ca.crt", ca_crt, sizeof ca_crt);
        fm_peer_path(p, "server.key", key, sizeof key);
        fm_peer_path(p, "server.csr", csr, sizeof csr);
        fm_peer_path(p, "server.crt", crt, sizeof crt);
        fm_peer_path(p, "ext.cnf", ext, sizeof ext);
        fm_write_file(ext, "subjectAltName=IP:127.0.0.1,DNS:localhost\n");
        fm_openssl_req(key, csr, "/CN=localhost", false);
        char *sign[] = {FM_OPENSSL_BIN,
                        "x509",
                        "-req",
                        "-in",
                        csr,
                        "-CA",
                        ca_crt,
                        "-CAkey",
                        ca_key,
                        "-CAcreateserial",
                        "-out",
                        crt,
                        "-days",
                        "1",
                        "-extfile",
                        ext,
                        NULL};
        assert_int_equal(fm_run(sign), 0);
}
