# SPDX-License-Identifier: MIT
"""Helpers for fleetmedic's integration tests and end-to-end benchmark.

Standard library only. Everything that is started here is stopped by its
PID (SIGTERM, then SIGKILL after a deadline); nothing is ever stopped by
name. Waiting is always a poll with a deadline.

    Broker        a mosquitto on a free loopback port, in its own temp dir,
                  persistence on, per-client queue limits off
    Daemon        `fleetmedic run` against a broker, HTTP on a free port
    Publisher     a minimal MQTT 3.1.1 client over a raw socket: CONNECT,
                  PUBLISH at QoS 0/1 (pipelined, PUBACKs awaited), DISCONNECT
    Subscriber    a mosquitto_sub process read by a thread, lines timestamped
    parse_metrics Prometheus text -> {(name, frozenset(labels.items())): value}
"""

import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request

MOSQUITTO = os.environ.get("MOSQUITTO", "/usr/sbin/mosquitto")
MOSQUITTO_SUB = shutil.which("mosquitto_sub") or "/usr/bin/mosquitto_sub"
MOSQUITTO_PUB = shutil.which("mosquitto_pub") or "/usr/bin/mosquitto_pub"

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def fleetmedic_binary():
    """The binary under test: $FLEETMEDIC, else build/fleetmedic in the repository."""
    path = os.environ.get("FLEETMEDIC", os.path.join(REPO_ROOT, "build", "fleetmedic"))
    if not os.path.isabs(path):
        path = os.path.join(REPO_ROOT, path)
    return path


def have_mosquitto():
    return os.access(MOSQUITTO, os.X_OK)


def have_clients():
    return os.access(MOSQUITTO_SUB, os.X_OK) and os.access(MOSQUITTO_PUB, os.X_OK)


# ---- polling --------------------------------------------------------------------------------


class Timeout(AssertionError):
    pass


class Fatal(AssertionError):
    """Raised by a wait_for condition to give up at once (e.g. the process died)."""


def wait_for(cond, timeout, interval=0.02, what="condition"):
    """Polls cond() until it returns a true value, which is returned; Timeout after timeout s."""
    deadline = time.monotonic() + timeout
    last_exc = None
    while True:
        try:
            v = cond()
            if v:
                return v
            last_exc = None
        except Fatal:
            raise
        except Exception as e:  # noqa: BLE001 - retried until the deadline
            last_exc = e
        if time.monotonic() >= deadline:
            msg = "timed out after %.1f s waiting for %s" % (timeout, what)
            if last_exc is not None:
                msg += " (last error: %r)" % (last_exc,)
            raise Timeout(msg)
        time.sleep(interval)


def wait_stable(read, quiet, timeout, interval=0.05, what="value to settle"):
    """Polls read() until its value has not changed for `quiet` s; returns the value."""
    deadline = time.monotonic() + timeout
    last = read()
    since = time.monotonic()
    while True:
        time.sleep(interval)
        v = read()
        now = time.monotonic()
        if v != last:
            last, since = v, now
        elif now - since >= quiet:
            return v
        if now >= deadline:
            raise Timeout("timed out after %.1f s waiting for %s (last %r)" % (timeout, what, v))


# ---- ports and processes --------------------------------------------------------------------


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tcp_open(port, host="127.0.0.1", timeout=0.2):
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def stop_pid(proc, sig=signal.SIGTERM, timeout=10.0):
    """Sends sig to proc (a Popen) by its PID; SIGKILL if it has not exited after timeout s.
    Returns the exit status (negative for a signal), None if it was never started."""
    if proc is None:
        return None
    if proc.poll() is None:
        try:
            os.kill(proc.pid, sig)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            try:
                os.kill(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(timeout=10)
    return proc.returncode


def tail(path, n=40):
    try:
        with open(path, "rb") as f:
            lines = f.read().decode("utf-8", "replace").splitlines()
    except OSError as e:
        return "(%s: %s)" % (path, e)
    return "\n".join(lines[-n:])


def vm_rss_kib(pid):
    """VmRSS of a process in KiB, from /proc/PID/status."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS for pid %d" % pid)


# ---- mosquitto ------------------------------------------------------------------------------


class Broker:
    """A mosquitto broker in its own directory.

    Queue limits are off (max_queued_messages 0 and max_queued_bytes 0 mean
    "no maximum" in mosquitto 2.0): with the default of 1000 queued messages
    per client the broker silently drops messages under load, at QoS 0 and 1
    alike, and a "nothing lost" assertion would test the broker's limit.
    max_inflight_messages stays at its default (20; a v5 client's receive
    maximum lowers it further): in-flight is a flow control, not a drop.
    Persistence is on, so a SIGTERM saves queued messages and persistent
    sessions, and a restart on the same port and directory restores them.
    """

    def __init__(self, workdir, port=None, extra_conf=""):
        self.dir = os.path.join(workdir, "broker")
        os.makedirs(self.dir, exist_ok=True)
        self.port = port or free_port()
        self.conf = os.path.join(self.dir, "mosquitto.conf")
        self.log = os.path.join(self.dir, "mosquitto.log")
        self.proc = None
        lines = [
            "listener %d 127.0.0.1" % self.port,
            "allow_anonymous true",
            "persistence true",
            "persistence_location %s/" % self.dir,
            "autosave_interval 1800",
            "max_queued_messages 0",
            "max_queued_bytes 0",
            "log_dest file %s" % self.log,
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            "connection_messages true",
            "log_timestamp_format %H:%M:%S",
        ]
        if os.geteuid() == 0:
            # As root, mosquitto 2.0 drops to the user "mosquitto", which could
            # not write the persistence file or the log in our temp dir.
            lines.append("user root")
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n" + extra_conf)

    @property
    def url(self):
        return "mqtt://127.0.0.1:%d" % self.port

    def start(self, timeout=10.0):
        assert self.proc is None or self.proc.poll() is not None, "broker already running"
        out = open(os.path.join(self.dir, "mosquitto.stdout"), "ab")
        try:
            self.proc = subprocess.Popen([MOSQUITTO, "-c", self.conf], stdin=subprocess.DEVNULL,
                                         stdout=out, stderr=subprocess.STDOUT)
        finally:
            out.close()

        def up():
            if self.proc.poll() is not None:
                raise Fatal("mosquitto exited with %s:\n%s" % (self.proc.returncode,
                                                                        self.diag()))
            return tcp_open(self.port)

        wait_for(up, timeout, what="mosquitto to accept connections on port %d" % self.port)
        return self

    def stop(self, sig=signal.SIGTERM, timeout=10.0):
        rc = stop_pid(self.proc, sig, timeout)
        return rc

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def diag(self, n=30):
        return "--- mosquitto log (%s) ---\n%s\n--- stdout ---\n%s" % (
            self.log, tail(self.log, n), tail(os.path.join(self.dir, "mosquitto.stdout"), 10))


# ---- fleetmedic -----------------------------------------------------------------------------


class Daemon:
    """`fleetmedic run` against a broker, HTTP endpoints on a free loopback port."""

    def __init__(self, workdir, broker, config=None, topic_prefix=None, http_port=None,
                 state_dir=None, dry_run=False, binary=None, name="fleetmedic"):
        self.workdir = workdir
        self.broker = broker
        self.binary = binary or fleetmedic_binary()
        self.config = config
        self.topic_prefix = topic_prefix
        self.http_port = http_port or free_port()
        self.state_dir = state_dir or os.path.join(workdir, "state")
        self.dry_run = dry_run
        self.log = os.path.join(workdir, name + ".log")
        self.proc = None
        self.starts = 0

    @property
    def base(self):
        return "http://127.0.0.1:%d" % self.http_port

    def argv(self):
        a = [self.binary, "run", "--mqtt", self.broker.url, "--listen",
             "127.0.0.1:%d" % self.http_port, "--state-dir", self.state_dir]
        if self.topic_prefix:
            a += ["--topic-prefix", self.topic_prefix]
        if self.config:
            a += ["-c", self.config]
        if self.dry_run:
            a.append("--dry-run")
        return a

    def start(self, wait_ready=True, timeout=15.0):
        assert self.proc is None or self.proc.poll() is not None, "daemon already running"
        self.starts += 1
        out = open(self.log, "ab")
        try:
            out.write(("=== start %d: %s\n" % (self.starts, " ".join(self.argv()))).encode())
            out.flush()
            self.proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL, stdout=out,
                                         stderr=subprocess.STDOUT)
        finally:
            out.close()
        if wait_ready:
            self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout=15.0):
        def ready():
            if self.proc.poll() is not None:
                raise Fatal("fleetmedic exited with %s:\n%s" % (self.proc.returncode,
                                                                         self.diag()))
            return self.http("/readyz")[0] == 200

        wait_for(ready, timeout, interval=0.05, what="fleetmedic /readyz to return 200")

    def stop(self, sig=signal.SIGTERM, timeout=10.0):
        """Stops the daemon; a SIGTERM stop must be clean: exit 0, no sanitizer report."""
        was_running = self.running()
        rc = stop_pid(self.proc, sig, timeout)
        if was_running and sig == signal.SIGTERM:
            with open(self.log, "rb") as f:
                log = f.read().decode(errors="replace")
            bad = [m for m in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")
                   if m in log]
            if rc != 0 or bad:
                raise AssertionError("fleetmedic did not stop cleanly (exit %s%s); log tail:\n%s"
                                     % (rc, ", " + ", ".join(bad) if bad else "", log[-4000:]))
        return rc

    def kill(self):
        return stop_pid(self.proc, signal.SIGKILL, 5.0)

    def signal(self, sig):
        assert self.running(), "daemon not running"
        os.kill(self.proc.pid, sig)

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self):
        return self.proc.pid

    def http(self, path, timeout=5.0):
        """(status, body bytes); status 0 when the connection failed."""
        try:
            with urllib.request.urlopen(self.base + path, timeout=timeout) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()
        except (urllib.error.URLError, OSError):
            return 0, b""

    def metrics(self):
        code, body = self.http("/metrics")
        if code != 200:
            raise AssertionError("/metrics returned %d" % code)
        return parse_metrics(body.decode("utf-8"))

    def status(self):
        code, body = self.http("/status")
        if code != 200:
            raise AssertionError("/status returned %d" % code)
        return json.loads(body)

    def diag(self, n=40):
        return "--- fleetmedic log (%s) ---\n%s" % (self.log, tail(self.log, n))


# ---- Prometheus text ------------------------------------------------------------------------

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+\S+)?\s*$")
_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*(,|$)')


def _unescape(v):
    return re.sub(r"\\(.)", lambda m: {"n": "\n"}.get(m.group(1), m.group(1)), v)


def parse_metrics(text):
    """Prometheus text format -> {(name, frozenset(labels.items())): float}."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        if not m:
            raise ValueError("unparsable metrics line: %r" % line)
        name, labels_text, value = m.group(1), m.group(3), m.group(4)
        labels = {}
        if labels_text:
            pos = 0
            while pos < len(labels_text):
                lm = _LABEL.match(labels_text, pos)
                if not lm:
                    raise ValueError("unparsable labels in line: %r" % line)
                labels[lm.group(1)] = _unescape(lm.group(2))
                pos = lm.end()
        v = {"+Inf": float("inf"), "-Inf": float("-inf"), "NaN": float("nan")}.get(value)
        out[(name, frozenset(labels.items()))] = float(value) if v is None else v
    return out


def metric(m, name, **labels):
    """The value of one sample; 0.0 when absent."""
    return m.get((name, frozenset(labels.items())), 0.0)


def metric_by(m, name, label):
    """{label value: value} of the samples of name."""
    out = {}
    for (n, ls), v in m.items():
        if n == name:
            d = dict(ls)
            out[d.get(label)] = v
    return out


def metric_sum(m, name):
    return sum(v for (n, _), v in m.items() if n == name)


# ---- a minimal MQTT 3.1.1 publisher ---------------------------------------------------------


class MQTTError(Exception):
    pass


def _varint(n):
    out = bytearray()
    while True:
        b = n % 128
        n //= 128
        if n:
            b |= 0x80
        out.append(b)
        if not n:
            return bytes(out)


def _utf8(s):
    b = s.encode("utf-8") if isinstance(s, str) else s
    return struct.pack("!H", len(b)) + b


def publish_packet(topic, payload, qos=0, pid=0, retain=False):
    """The bytes of one PUBLISH packet."""
    if isinstance(payload, str):
        payload = payload.encode("utf-8")
    var = _utf8(topic) + (struct.pack("!H", pid) if qos else b"")
    return (bytes([0x30 | (qos << 1) | (1 if retain else 0)]) + _varint(len(var) + len(payload))
            + var + payload)


class Publisher:
    """MQTT 3.1.1 over a plain socket: enough to publish arbitrary bytes fast.

    publish() sends one message (QoS 1 waits for its PUBACK); publish_many()
    pipelines QoS 1 messages in windows and returns how many were
    acknowledged. Keepalive is 0 (none), so an idle publisher needs no pings.
    """

    def __init__(self, port, host="127.0.0.1", client_id=None, clean=True, timeout=10.0):
        self.host, self.port = host, port
        self.client_id = client_id or "fmtest-%d-%d" % (os.getpid(), id(self) % 100000)
        self.clean = clean
        self.timeout = timeout
        self.sock = None
        self.buf = bytearray()
        self.next_pid = 1

    def __enter__(self):
        return self if self.sock is not None else self.connect()

    def __exit__(self, *exc):
        self.close()

    def connect(self):
        self.sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        flags = 0x02 if self.clean else 0x00
        var = _utf8("MQTT") + bytes([4, flags]) + struct.pack("!H", 0)
        payload = _utf8(self.client_id)
        self.sock.sendall(bytes([0x10]) + _varint(len(var) + len(payload)) + var + payload)
        ptype, body = self._read_packet()
        if ptype != 0x20 or len(body) != 2:
            raise MQTTError("expected CONNACK, got packet type 0x%02x" % ptype)
        if body[1] != 0:
            raise MQTTError("CONNACK refused: return code %d" % body[1])
        return self

    def close(self, disconnect=True):
        if self.sock is None:
            return
        try:
            if disconnect:
                self.sock.sendall(b"\xe0\x00")
        except OSError:
            pass
        try:
            self.sock.close()
        finally:
            self.sock = None

    def _recv_some(self):
        data = self.sock.recv(65536)
        if not data:
            raise MQTTError("connection closed by the broker")
        self.buf += data

    def _read_packet(self):
        """(type byte & 0xf0, body) of the next packet from the broker."""
        while True:
            if len(self.buf) >= 2:
                n, mult, i = 0, 1, 1
                complete = False
                while i < len(self.buf) and i <= 4:
                    b = self.buf[i]
                    n += (b & 0x7F) * mult
                    mult *= 128
                    i += 1
                    if not b & 0x80:
                        complete = True
                        break
                if complete and len(self.buf) >= i + n:
                    ptype = self.buf[0] & 0xF0
                    body = bytes(self.buf[i:i + n])
                    del self.buf[:i + n]
                    return ptype, body
            self._recv_some()

    def _pid(self):
        pid = self.next_pid
        self.next_pid = pid % 65535 + 1
        return pid

    def publish(self, topic, payload, qos=0, retain=False):
        if qos == 0:
            self.sock.sendall(publish_packet(topic, payload, 0, 0, retain))
            return True
        return self.publish_many([(topic, payload)], qos=qos, retain=retain) == 1

    def send_raw(self, data):
        """Sends pre-built packet bytes (QoS 0 publishes) as they are."""
        self.sock.sendall(data)

    def publish_many(self, messages, qos=1, window=200, retain=False, on_acked=None):
        """Publishes (topic, payload) pairs in order; returns how many were acknowledged
        (QoS 1) or sent (QoS 0). QoS 1 messages go out in windows of `window`, each window
        waiting for all its PUBACKs. on_acked(index) is called per acknowledged message.
        A lost connection raises MQTTError with .acked set to the count so far."""
        if qos == 0:
            chunk = []
            size = 0
            for topic, payload in messages:
                p = publish_packet(topic, payload, 0, 0, retain)
                chunk.append(p)
                size += len(p)
                if size >= 1 << 20:
                    self.sock.sendall(b"".join(chunk))
                    chunk, size = [], 0
            if chunk:
                self.sock.sendall(b"".join(chunk))
            return len(messages) if hasattr(messages, "__len__") else None
        acked = 0
        index = 0
        batch = []
        it = iter(messages)
        done = False
        while not done:
            batch = []
            pids = {}
            for _ in range(window):
                try:
                    topic, payload = next(it)
                except StopIteration:
                    done = True
                    break
                pid = self._pid()
                pids[pid] = index
                index += 1
                batch.append(publish_packet(topic, payload, 1, pid, retain))
            if not batch:
                break
            try:
                self.sock.sendall(b"".join(batch))
                while pids:
                    ptype, body = self._read_packet()
                    if ptype == 0x40 and len(body) >= 2:
                        pid = struct.unpack("!H", body[:2])[0]
                        i = pids.pop(pid, None)
                        if i is not None:
                            acked += 1
                            if on_acked:
                                on_acked(i)
            except (OSError, MQTTError) as e:
                err = MQTTError("connection lost after %d acknowledged: %s" % (acked, e))
                err.acked = acked
                err.sent = index
                raise err from e
        return acked


# ---- mosquitto_sub and mosquitto_pub --------------------------------------------------------


class Subscriber:
    """mosquitto_sub in the background; a thread collects (monotonic time, line) pairs.
    Start it before what it should see (retained messages arrive anyway)."""

    def __init__(self, port, topic, qos=1, count=None, wait_s=None, verbose=False,
                 extra=(), client_id=None):
        argv = [MOSQUITTO_SUB, "-h", "127.0.0.1", "-p", str(port), "-t", topic, "-q", str(qos)]
        if verbose:
            argv.append("-v")
        if count:
            argv += ["-C", str(count)]
        if wait_s:
            argv += ["-W", str(int(wait_s))]
        if client_id:
            argv += ["-i", client_id]
        argv += list(extra)
        self.port = port
        self.topic = topic
        self.lines = []
        self.lock = threading.Lock()
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        for raw in self.proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            with self.lock:
                self.lines.append((time.monotonic(), line))

    def snapshot(self):
        with self.lock:
            return list(self.lines)

    def wait_line(self, pred, timeout, what="a matching message", start=0):
        """The first (time, line) at index >= start with pred(line) true."""
        def find():
            for t, line in self.snapshot()[start:]:
                try:
                    if pred(line):
                        return (t, line)
                except ValueError:
                    continue
            return None
        return wait_for(find, timeout, what=what)

    def wait_subscribed(self, timeout=10.0):
        """Returns once the subscription is active: a probe published (QoS 1) to the
        subscribed topic arrives. Only for a filter without wildcards; the probe line is
        "fmtest-probe-N", which JSON readers skip."""
        assert "+" not in self.topic and "#" not in self.topic
        deadline = time.monotonic() + timeout
        k = 0
        while True:
            k += 1
            probe = "fmtest-probe-%d" % k
            pub(self.port, self.topic, probe, qos=1)
            try:
                self.wait_line(lambda line: line == probe, min(0.5, timeout))
                return
            except Timeout:
                if time.monotonic() >= deadline:
                    raise Timeout("mosquitto_sub on %s did not subscribe within %.1f s"
                                  % (self.topic, timeout))

    def stop(self):
        stop_pid(self.proc, signal.SIGTERM, 5.0)
        self.thread.join(timeout=5)
        for s in (self.proc.stdout, self.proc.stderr):
            try:
                s.close()
            except Exception:  # noqa: BLE001
                pass


def sub_once(port, topic, count=1, wait_s=3, extra=()):
    """Runs mosquitto_sub -C count -W wait_s; returns the list of lines received."""
    argv = [MOSQUITTO_SUB, "-h", "127.0.0.1", "-p", str(port), "-t", topic, "-C", str(count),
            "-W", str(int(wait_s))] + list(extra)
    r = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=wait_s + 10)
    return r.stdout.decode("utf-8", "replace").splitlines()


def pub(port, topic, message=None, qos=1, null=False, retain=False, timeout=10):
    """One message with mosquitto_pub; raises on failure."""
    argv = [MOSQUITTO_PUB, "-h", "127.0.0.1", "-p", str(port), "-t", topic, "-q", str(qos)]
    if null:
        argv.append("-n")
    else:
        argv += ["-m", message]
    if retain:
        argv.append("-r")
    r = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=timeout)
    if r.returncode != 0:
        raise AssertionError("mosquitto_pub %s failed (%d): %s" % (topic, r.returncode,
                                                                   r.stderr.decode()))


# ---- a test environment that always cleans up -----------------------------------------------


class Env:
    """A temp dir plus everything started in it; cleanup() stops all by PID and removes
    the dir (kept when FMTEST_KEEP=1 is set, for a look at the logs)."""

    def __init__(self, prefix="fmtest-"):
        self.dir = tempfile.mkdtemp(prefix=prefix)
        self.brokers = []
        self.daemons = []
        self.subs = []
        self.publishers = []
        self.procs = []

    def broker(self, **kw):
        """A started broker. On a port picked here, a lost race for the port (another
        process bound it between the pick and mosquitto's bind) is retried on a new one."""
        for attempt in range(3):
            b = Broker(self.dir, **kw)
            self.brokers.append(b)
            try:
                return b.start()
            except Fatal:
                if "port" in kw or attempt == 2 or "Address already in use" not in b.diag():
                    raise

    def daemon(self, broker, start=True, **kw):
        """A daemon, started and ready unless start=False; the HTTP port race is retried
        like the broker's."""
        for attempt in range(3):
            d = Daemon(self.dir, broker, **kw)
            self.daemons.append(d)
            if not start:
                return d
            try:
                return d.start()
            except Fatal:
                if "http_port" in kw or attempt == 2 or "cannot serve HTTP" not in d.diag():
                    raise

    def subscriber(self, *a, **kw):
        s = Subscriber(*a, **kw)
        self.subs.append(s)
        return s

    def publisher(self, port, **kw):
        p = Publisher(port, **kw)
        self.publishers.append(p)
        return p.connect()

    def write(self, name, text):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def diag(self):
        parts = [d.diag() for d in self.daemons] + [b.diag() for b in self.brokers]
        return "\n".join(parts)

    def cleanup(self):
        for p in self.publishers:
            try:
                p.close()
            except Exception:  # noqa: BLE001
                pass
        for s in self.subs:
            s.stop()
        for d in self.daemons:
            d.stop(signal.SIGTERM, 10.0)
        for b in self.brokers:
            b.stop(signal.SIGTERM, 10.0)
        for p in self.procs:
            stop_pid(p, signal.SIGTERM, 5.0)
        if os.environ.get("FMTEST_KEEP"):
            print("fmtest: kept %s" % self.dir)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)


# ---- schema v1 events -----------------------------------------------------------------------


def kpi(seq=None, version="v7", requests=100, errors=1, ts=None, **extra):
    e = {"v": 1}
    if ts is not None:
        e["ts"] = ts
    if seq is not None:
        e["seq"] = seq
    if version is not None:
        e["version"] = version
    e.update({"interval_s": 10, "requests": requests, "errors": errors,
              "latency_ms": {"p50": 12.5, "p95": 40.0, "p99": 80.0},
              "queue_depth": 3, "cpu": 0.4})
    e.update(extra)
    return json.dumps(e, separators=(",", ":"))


def health(seq=None, version="v7", status="ok", ready=True, ts=None, **extra):
    e = {"v": 1}
    if ts is not None:
        e["ts"] = ts
    if seq is not None:
        e["seq"] = seq
    if version is not None:
        e["version"] = version
    e.update({"status": status, "ready": ready})
    e.update(extra)
    return json.dumps(e, separators=(",", ":"))


def feedback(seq=None, version="v7", outcomes=((0.9, 1), (0.2, 0), (0.7, 1)), ts=None, **extra):
    e = {"v": 1}
    if ts is not None:
        e["ts"] = ts
    if seq is not None:
        e["seq"] = seq
    if version is not None:
        e["version"] = version
    e["outcomes"] = [list(o) for o in outcomes]
    e.update(extra)
    return json.dumps(e, separators=(",", ":"))
