#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""End-to-end ingest benchmark: publishers -> mosquitto -> fleetmedic, beside mosquitto_sub.

One broker on a free loopback port (per-client queue limits off, so nothing is
dropped by the broker), `fleetmedic run --dry-run`, and `mosquitto_sub -t
'fleet/+/+/kpi' -q 0` as the reference subscriber. Two or more publisher
processes (a minimal MQTT 3.1.1 client over a raw socket, tests/integration/
fmtest.py) send pre-built QoS 0 PUBLISH packets: valid schema-v1 KPI events of
~170-190 bytes, unique seq per instance, 1,000 instances across 10 deployments
by default. (mosquitto_pub -l sends every line to one topic, so one topic per
instance would need a process per instance; the raw publisher is faster.)

Each subscriber's rate is measured from its first to its last message:
  - fleetmedic: fleetmedic_events_received_total polled every 50 ms, the first
    and last arrival interpolated inside their polling intervals at the
    steady rate;
  - mosquitto_sub: a reader thread timestamps the chunks of its output.

Prints key=value lines: events=, controller_events=, mosquitto_sub_events=,
controller_events_per_s=, mosquitto_sub_events_per_s=, ratio= (controller/sub),
controller_rejected=, and more. The target is ratio >= 0.8; missing it is
printed (target_met=no), not an error. Exit status 1 only on errors.

Usage: tests/bench/bench_e2e.py [--events N] [--publishers N] [--instances N]
                                [--deployments N] [--binary PATH]
"""

import argparse
import os
import signal
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))
import fmtest  # noqa: E402

TOPIC_FILTER = "fleet/+/+/kpi"


# ---- publisher process ----------------------------------------------------------------------


def instance_names(instances, deployments):
    out = []
    for i in range(instances):
        dep = "dep-%02d" % (i % deployments)
        out.append((dep, "%s-%04d" % (dep, i)))
    return out


def build_packets(index, publishers, events, instances, deployments):
    """The QoS 0 PUBLISH packets of publisher `index`: its share of the events, round robin
    over its own instances (so every instance's seq rises in this one connection)."""
    names = instance_names(instances, deployments)
    mine = [n for k, n in enumerate(names) if k % publishers == index]
    count = events // publishers + (1 if index < events % publishers else 0)
    topics = ["fleet/%s/%s/kpi" % n for n in mine]
    packets = []
    payload_bytes = 0
    nmine = len(mine)
    for j in range(count):
        k = j % nmine
        seq = j // nmine + 1
        req = 100 + (j * 7) % 400
        payload = ('{"v":1,"seq":%d,"version":"v7","interval_s":10,"requests":%d,"errors":%d,'
                   '"latency_ms":{"p50":%.1f,"p95":%.1f,"p99":%.1f},"queue_depth":%d,'
                   '"cpu":%.2f,"gpu_util":%.2f}'
                   % (seq, req, j % 3, 10 + j % 13, 40 + j % 17, 80 + j % 29, j % 9,
                      (j % 100) / 100.0, (j % 97) / 100.0))
        payload_bytes += len(payload)
        packets.append(fmtest.publish_packet(topics[k], payload.encode(), 0))
    return packets, payload_bytes


def publisher_main(args):
    packets, payload_bytes = build_packets(args.index, args.publishers, args.events,
                                           args.instances, args.deployments)
    data = b"".join(packets)
    size = len(data)
    avg = payload_bytes / max(1, len(packets))
    p = fmtest.Publisher(args.port, client_id="bench-pub-%d" % args.index, timeout=60)
    p.connect()
    sys.stdout.write("ready %d %d %.1f\n" % (len(packets), size, avg))
    sys.stdout.flush()
    if sys.stdin.readline().strip() != "go":
        return 1
    t0 = time.monotonic()
    view = memoryview(data)
    step = 1 << 20
    for off in range(0, size, step):
        p.send_raw(view[off:off + step])
    p.close()
    sys.stdout.write("done %d %.6f\n" % (len(packets), time.monotonic() - t0))
    sys.stdout.flush()
    return 0


# ---- measurement ----------------------------------------------------------------------------


class SubCounter:
    """mosquitto_sub's stdout counted in chunks; first/last chunk times."""

    def __init__(self, proc):
        self.proc = proc
        self.count = 0
        self.t_first = None
        self.t_last = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        fd = self.proc.stdout.fileno()
        while True:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                return
            now = time.monotonic()
            n = chunk.count(b"\n")
            if n:
                if self.t_first is None:
                    self.t_first = now
                self.t_last = now
                self.count += n

    def rate(self):
        if self.count < 2 or self.t_last <= self.t_first:
            return 0.0
        return (self.count - 1) / (self.t_last - self.t_first)


class MetricsPoller:
    """fleetmedic_events_received_total{kind="kpi"} every 50 ms, as (monotonic, count)."""

    def __init__(self, daemon, interval=0.05):
        self.daemon = daemon
        self.interval = interval
        self.samples = []
        self.errors = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        nxt = time.monotonic()
        while not self.stop.is_set():
            try:
                m = self.daemon.metrics()
                t = time.monotonic()
                self.samples.append((t, fmtest.metric(m, "fleetmedic_events_received_total",
                                                      kind="kpi")))
            except Exception:  # noqa: BLE001
                self.errors += 1
            nxt += self.interval
            delay = nxt - time.monotonic()
            if delay > 0:
                self.stop.wait(delay)
            else:
                nxt = time.monotonic()

    def latest(self):
        return self.samples[-1][1] if self.samples else 0

    def rate(self, total):
        """(events, events/s from the first to the last arrival, first, last)."""
        s = list(self.samples)
        if not s or s[-1][1] < 2:
            return (s[-1][1] if s else 0), 0.0, None, None
        n = s[-1][1]
        i1 = next(k for k, (_, c) in enumerate(s) if c > 0)       # first sample with data
        i2 = next(k for k, (_, c) in enumerate(s) if c >= n)      # first sample at the end
        # the steady rate between those samples, then the first and last arrival inside
        # their polling intervals at that rate
        if i2 > i1:
            steady = (s[i2][1] - s[i1][1]) / (s[i2][0] - s[i1][0]) if s[i2][0] > s[i1][0] else 0
        else:
            steady = 0
        t_prev0 = s[i1 - 1][0] if i1 > 0 else s[i1][0]
        if steady > 0:
            t_first = max(t_prev0, s[i1][0] - s[i1][1] / steady)
            t_last = min(s[i2][0], s[i2 - 1][0] + (n - s[i2 - 1][1]) / steady) \
                if i2 > 0 else s[i2][0]
        else:
            t_first, t_last = t_prev0, s[i2][0]
        if t_last <= t_first:
            return n, 0.0, t_first, t_last
        return n, (n - 1) / (t_last - t_first), t_first, t_last


def cpu_seconds(pid):
    """utime + stime of a process, in seconds."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


# ---- the run --------------------------------------------------------------------------------


def run(args):
    if not fmtest.have_mosquitto() or not fmtest.have_clients():
        print("error=mosquitto, mosquitto_sub or mosquitto_pub is not installed",
              file=sys.stderr)
        return 1
    binary = args.binary or fmtest.fleetmedic_binary()
    if not os.access(binary, os.X_OK):
        print("error=fleetmedic binary %s not found" % binary, file=sys.stderr)
        return 1

    env = fmtest.Env(prefix="fm-bench-")
    pubs = []
    try:
        broker = env.broker(extra_conf="log_type subscribe\n")
        daemon = env.daemon(broker, dry_run=True, binary=binary)

        sub_proc = subprocess.Popen(
            [fmtest.MOSQUITTO_SUB, "-h", "127.0.0.1", "-p", str(broker.port), "-t",
             TOPIC_FILTER, "-q", "0", "-i", "bench-sub"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        env.procs.append(sub_proc)
        fmtest.wait_for(lambda: "bench-sub 0 %s" % TOPIC_FILTER in fmtest.tail(broker.log, 500),
                        10, interval=0.05, what="mosquitto_sub to subscribe")
        sub = SubCounter(sub_proc)

        # publishers build their packets first, then all start on "go"
        t_gen = time.monotonic()
        for i in range(args.publishers):
            argv = [sys.executable, os.path.abspath(__file__), "--_publisher", "--index",
                    str(i), "--port", str(broker.port), "--events", str(args.events),
                    "--publishers", str(args.publishers), "--instances", str(args.instances),
                    "--deployments", str(args.deployments)]
            p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
            pubs.append(p)
            env.procs.append(p)
        sizes = []
        for p in pubs:
            line = p.stdout.readline().decode().split()
            if not line or line[0] != "ready":
                raise RuntimeError("a publisher failed to start (exit %s)" % p.poll())
            sizes.append((int(line[1]), int(line[2]), float(line[3])))
        n_events = sum(s[0] for s in sizes)
        gen_s = time.monotonic() - t_gen

        poller = MetricsPoller(daemon)
        cpu0 = {name: cpu_seconds(pid) for name, pid in
                (("controller", daemon.pid), ("broker", broker.proc.pid),
                 ("mosquitto_sub", sub_proc.pid))}
        t0 = time.monotonic()
        for p in pubs:
            p.stdin.write(b"go\n")
            p.stdin.flush()
        pub_secs = []
        for p in pubs:
            line = p.stdout.readline().decode().split()
            if not line or line[0] != "done":
                raise RuntimeError("a publisher failed (exit %s)" % p.wait(10))
            pub_secs.append(float(line[2]))
            if p.wait(30) != 0:
                raise RuntimeError("a publisher exited with %d" % p.returncode)
        t_published = time.monotonic() - t0

        # until both subscribers have everything, or nothing moved for 10 s
        last, since = None, time.monotonic()
        deadline = time.monotonic() + args.timeout
        while True:
            cur = (poller.latest(), sub.count)
            if cur[0] >= n_events and cur[1] >= n_events:
                break
            now = time.monotonic()
            if cur != last:
                last, since = cur, now
            elif now - since > 10:
                break
            if now > deadline:
                break
            if not daemon.running():
                raise RuntimeError("fleetmedic exited (%s)" % daemon.proc.returncode)
            time.sleep(0.05)
        time.sleep(0.2)  # one more poll after the last message
        poller.stop.set()
        poller.thread.join(5)
        cpu = {name: cpu_seconds(pid) - cpu0[name] for name, pid in
               (("controller", daemon.pid), ("broker", broker.proc.pid),
                ("mosquitto_sub", sub_proc.pid))}
        m = daemon.metrics()

        c_events, c_rate, c_first, c_last = poller.rate(n_events)
        s_rate = sub.rate()
        ratio = c_rate / s_rate if s_rate else 0.0
        rejected = fmtest.metric_sum(m, "fleetmedic_events_rejected_total")
        accepted = fmtest.metric(m, "fleetmedic_events_accepted_total", kind="kpi")
        avg_bytes = sum(s[1] for s in sizes) / max(1, n_events)

        out = [
            ("events", n_events),
            ("publishers", args.publishers),
            ("instances", args.instances),
            ("deployments", args.deployments),
            ("payload_bytes_avg", "%.1f" % (sum(s[2] * s[0] for s in sizes) / max(1, n_events))),
            ("packet_bytes_avg", "%.1f" % avg_bytes),
            ("generate_s", "%.2f" % gen_s),
            ("publish_s", "%.3f" % t_published),
            ("publish_events_per_s", "%.0f" % (n_events / t_published if t_published else 0)),
            ("controller_events", int(c_events)),
            ("controller_accepted", int(accepted)),
            ("controller_rejected", int(rejected)),
            ("controller_lost", int(n_events - c_events)),
            ("mosquitto_sub_events", sub.count),
            ("mosquitto_sub_lost", n_events - sub.count),
            ("controller_events_per_s", "%.0f" % c_rate),
            ("mosquitto_sub_events_per_s", "%.0f" % s_rate),
            ("controller_s", "%.3f" % ((c_last - c_first) if c_first else 0)),
            ("mosquitto_sub_s", "%.3f" % ((sub.t_last - sub.t_first) if sub.t_first else 0)),
            ("ratio", "%.3f" % ratio),
            ("target_ratio", "0.8"),
            ("target_met", "yes" if ratio >= 0.8 else "no"),
            ("controller_cpu_s", "%.2f" % cpu["controller"]),
            ("broker_cpu_s", "%.2f" % cpu["broker"]),
            ("mosquitto_sub_cpu_s", "%.2f" % cpu["mosquitto_sub"]),
            ("controller_cpu_us_per_event", "%.2f" % (cpu["controller"] * 1e6 / max(1, c_events))),
            ("controller_vmrss_kib", fmtest.vm_rss_kib(daemon.pid)),
            ("metrics_polls", len(poller.samples)),
            ("metrics_poll_errors", poller.errors),
            ("cpus", os.cpu_count()),
        ]
        for k, v in out:
            print("%s=%s" % (k, v))
        sys.stdout.flush()
        return 0
    except Exception as e:  # noqa: BLE001
        print("error=%s" % e, file=sys.stderr)
        print(env.diag(), file=sys.stderr)
        return 1
    finally:
        for p in pubs:
            fmtest.stop_pid(p, signal.SIGTERM, 5)
        env.cleanup()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=1000000, help="events in total (1000000)")
    ap.add_argument("--publishers", type=int, default=2, help="publisher processes (2)")
    ap.add_argument("--instances", type=int, default=1000, help="instances (1000)")
    ap.add_argument("--deployments", type=int, default=10, help="deployments (10)")
    ap.add_argument("--binary", help="fleetmedic binary (default $FLEETMEDIC or build/fleetmedic)")
    ap.add_argument("--timeout", type=float, default=300, help="overall wait, s (300)")
    ap.add_argument("--_publisher", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--index", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.events < 1 or args.publishers < 1 or args.instances < args.publishers \
            or args.deployments < 1:
        ap.error("need events >= 1, publishers >= 1, instances >= publishers, deployments >= 1")
    if args._publisher:
        return publisher_main(args)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
