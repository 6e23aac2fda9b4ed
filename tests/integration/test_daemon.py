#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Integration tests of `fleetmedic run` against a real mosquitto broker on loopback.

Run:  python3 tests/integration/test_daemon.py [-v] [TestClass.test_name]
      FLEETMEDIC=/path/to/fleetmedic selects the binary (default build/fleetmedic).
      FMTEST_KEEP=1 keeps each test's temp dir (broker and daemon logs).

Every test starts its own broker (free port, own temp dir, queue limits off)
and its own daemon, and stops them by PID whatever happens. Without
/usr/sbin/mosquitto the broker tests are skipped (exit status 77 when every
test was skipped, which meson reports as SKIP).

Which rejection reasons can arrive over MQTT. The daemon subscribes to
<prefix>/+/+/health, <prefix>/+/+/kpi and <prefix>/+/+/feedback, so a message
always has four levels, the right prefix, and a known kind:
  - unknown_kind is unreachable: the last level of every delivered topic is
    health, kpi or feedback;
  - bad_topic is reachable only through an empty level: '+' matches an empty
    level in MQTT, so fleet//inst/kpi is delivered (a wrong prefix or level
    count is not);
  - reserved_name is reachable: '+' matches a level starting with '_'
    (fleet/_x/inst/kpi is delivered; only '$' levels are shielded from '+');
  - every payload reason is reachable, and so are duplicate and the three
    caps (deployment_cap, version_cap, instance_cap; the caps with a
    configuration that lowers them).
"""

import collections
import functools
import json
import os
import random
import signal
import sys
import threading
import time
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fmtest  # noqa: E402
from fmtest import metric, metric_by, metric_sum  # noqa: E402

KINDS = ("health", "kpi", "feedback")

# Every reason the daemon can count; the metric has one sample per reason.
ALL_REASONS = (
    "too_large", "bad_topic", "unknown_kind", "bad_name", "reserved_name", "malformed_json",
    "not_object", "unknown_schema_version", "missing_field", "bad_type", "bad_number",
    "out_of_range", "errors_exceed_requests", "timestamp_skew", "bad_histogram", "bad_status",
    "field_too_long", "too_many_items", "duplicate", "deployment_cap", "version_cap",
    "instance_cap",
)


def with_diag(fn):
    """Appends the daemon and broker logs to a failure's message."""
    @functools.wraps(fn)
    def wrapper(self, *a, **kw):
        try:
            return fn(self, *a, **kw)
        except unittest.SkipTest:
            raise
        except Exception as e:  # noqa: BLE001
            env = getattr(self, "env", None)
            diag = env.diag() if env else ""
            raise AssertionError("%s: %s\n%s" % (type(e).__name__, e, diag)) from e
    return wrapper


def counters(m):
    """(received{kind}, accepted{kind}, rejected{reason}) from parsed metrics."""
    return (metric_by(m, "fleetmedic_events_received_total", "kind"),
            metric_by(m, "fleetmedic_events_accepted_total", "kind"),
            metric_by(m, "fleetmedic_events_rejected_total", "reason"))


# ---- payloads whose fate is known -----------------------------------------------------------


def rejected_cases(now):
    """[(reason, topic, payload bytes)]: one or more events per reachable decoder reason.
    Most go to deployment "ghost", which must not exist afterwards (a rejected event changes
    nothing)."""
    g = "fleet/ghost/ghost-1/"
    big = b'{"v":1,"pad":"' + b"x" * (64 * 1024) + b'"}'  # over 64 KiB
    hist = lambda le, counts: json.dumps(  # noqa: E731
        {"v": 1, "latency_hist": {"le_ms": le, "counts": counts}}).encode()
    return [
        ("too_large", g + "kpi", big),
        ("bad_topic", "fleet//ghost-1/kpi", b'{"v":1,"requests":1}'),
        ("bad_topic", "fleet/ghost//health", b'{"v":1,"status":"ok"}'),
        ("bad_name", "fleet/Ghost/ghost-1/kpi", b'{"v":1,"requests":1}'),
        ("bad_name", "fleet/ghost/ghost-1-/kpi", b'{"v":1,"requests":1}'),
        ("bad_name", g + "kpi", b'{"v":1,"version":"v 7","requests":1}'),
        ("reserved_name", "fleet/_ghost/ghost-1/kpi", b'{"v":1,"requests":1}'),
        ("reserved_name", "fleet/ghost/_fleetmedic/feedback", b'{"v":1,"outcomes":[[0.5,1]]}'),
        ("malformed_json", g + "kpi", b'{"v":1,"requests":'),
        ("malformed_json", g + "kpi", b'{"v":1} {"v":1}'),
        ("malformed_json", g + "health", b'{"v":1,"status":"ok","reason":"\xff\xfe bad utf-8"}'),
        ("not_object", g + "kpi", b'[{"v":1}]'),
        ("not_object", g + "feedback", b'42'),
        ("unknown_schema_version", g + "kpi", b'{"v":2,"requests":1}'),
        ("unknown_schema_version", g + "kpi", b'{"requests":1}'),
        ("unknown_schema_version", g + "health", b'{"status":"ok","v":"1"}'),
        ("missing_field", g + "health", b'{"v":1,"ready":true}'),
        ("missing_field", g + "feedback", b'{"v":1,"outcomes":[]}'),
        ("missing_field", g + "kpi", b'{"v":1,"errors":1}'),
        ("bad_type", g + "kpi", b'{"v":1,"requests":"10"}'),
        ("bad_type", g + "kpi", b'{"v":1,"requests":null}'),
        ("bad_type", g + "health", b'{"v":1,"status":"ok","ready":"yes"}'),
        ("bad_number", g + "kpi", b'{"v":1,"requests":-1}'),
        ("bad_number", g + "kpi", b'{"v":1,"requests":1.5}'),
        ("bad_number", g + "kpi", b'{"v":1,"cpu":NaN}'),
        ("bad_number", g + "kpi", b'{"v":1,"queue_depth":Infinity}'),
        ("out_of_range", g + "kpi", b'{"v":1,"cpu":1.5}'),
        ("out_of_range", g + "feedback", b'{"v":1,"outcomes":[[0.5,2]]}'),
        ("errors_exceed_requests", g + "kpi", b'{"v":1,"requests":5,"errors":6}'),
        ("timestamp_skew", g + "kpi", ('{"v":1,"ts":%.3f,"requests":1}' % (now - 3600)).encode()),
        ("bad_histogram", g + "kpi", hist([10, 5], [1, 2, 3])),
        ("bad_histogram", g + "kpi", hist([10, 20], [1, 2])),
        ("bad_status", g + "health", b'{"v":1,"status":"sleeping"}'),
        ("field_too_long", g + "health",
         ('{"v":1,"status":"degraded","reason":"%s"}' % ("r" * 300)).encode()),
        ("too_many_items", g + "kpi", hist(list(range(1, 66)), [0] * 66)),
        ("too_many_items", g + "feedback",
         json.dumps({"v": 1, "outcomes": [[0.5, 1]] * 1025}).encode()),
    ]


def hostile_payloads(n, seed, now):
    """n (topic, payload) pairs on valid topics that the daemon must all reject: random
    bytes, 10k-deep nesting, 1 MiB bodies (every 2,500th), huge numbers, NaN and Infinity,
    bad version names, wrong types, invalid UTF-8."""
    rnd = random.Random(seed)
    deep_arr = b"[" * 10000 + b"]" * 10000
    deep_obj = b'{"a":' * 10000 + b"1" + b"}" * 10000
    deep_in_field = b'{"v":1,"latency_hist":' + b"[" * 10000 + b"]" * 10000 + b"}"
    deep_unclosed = b'{"v":1,"x":' + b"[" * 10000
    mib = b'{"v":1,"status":"ok","pad":"' + b"A" * (1 << 20) + b'"}'
    fixed = [
        ("kpi", b'{"v":1,"requests":1e400}'),
        ("kpi", b'{"v":1,"requests":99999999999999999999999}'),
        ("kpi", b'{"v":1,"errors":99999999999999999999999,"requests":1}'),
        ("kpi", b'{"v":1,"interval_s":1e400}'),
        ("kpi", b'{"v":1,"queue_depth":-1e400}'),
        ("kpi", b'{"v":1,"latency_ms":{"p50":1e400,"p95":1,"p99":2}}'),
        ("kpi", b'{"v":1,"latency_hist":{"le_ms":[1e400],"counts":[1,2]}}'),
        ("kpi", b'{"v":1,"latency_hist":{"le_ms":[1],"counts":[99999999999999999999999,1]}}'),
        ("health", b'{"v":1,"ts":1e400,"status":"ok"}'),
        ("health", b'{"v":1,"ts":99999999999999999999999,"status":"ok"}'),
        ("feedback", b'{"v":1,"seq":1e400,"outcomes":[[0.5,1]]}'),
        ("feedback", b'{"v":99999999999999999999999,"outcomes":[[0.5,1]]}'),
        ("kpi", b'{"v":1,"cpu":NaN}'),
        ("kpi", b'{"v":1,"gpu_util":Infinity}'),
        ("kpi", b'{"v":1,"tokens_per_s":-Infinity}'),
        ("health", b'{"v":1,"ts":NaN,"status":"ok"}'),
        ("feedback", b'{"v":1,"outcomes":[[NaN,1]]}'),
        ("feedback", b'{"v":1,"outcomes":[[0.5,Infinity]]}'),
        ("kpi", b'{"v":NaN}'),
        ("kpi", b'{"v":1,"version":"../../etc/passwd"}'),
        ("kpi", b'{"v":1,"version":""}'),
        ("health", b'{"v":1,"status":"ok","version":"' + b"v" * 65 + b'"}'),
        ("feedback", b'{"v":1,"version":"v7;rm -rf","outcomes":[[0.5,1]]}'),
        ("kpi", b'{"v":1,"version":"v\xc3\xa9"}'),
        ("kpi", b'{"v":1,"version":"\\u0000v7"}'),
        ("kpi", b'{"v":1,"version":7}'),
        ("kpi", b'{"v":1,"requests":"100"}'),
        ("kpi", b'{"v":1,"requests":[100]}'),
        ("kpi", b'{"v":1,"latency_ms":[1,2,3]}'),
        ("kpi", b'{"v":1,"latency_hist":"fast"}'),
        ("health", b'{"v":1,"status":1}'),
        ("health", b'{"v":1,"status":"ok","ready":1}'),
        ("health", b'{"v":1,"status":null}'),
        ("feedback", b'{"v":1,"outcomes":{"a":1}}'),
        ("feedback", b'{"v":1,"outcomes":[0.5,1]}'),
        ("kpi", b'{"v":"1"}'),
        ("kpi", b'{"v":true}'),
        ("kpi", b'"just a string"'),
        ("kpi", b'null'),
        ("kpi", b'true'),
        ("health", b'{"v":1,"status":"ok","reason":"\xff"}'),
        ("health", b'{"v":1,"status":"ok","reason":"\xed\xa0\x80 surrogate"}'),
        ("health", b'{"v":1,"status":"ok","reason":"\xc0\xaf overlong"}'),
        ("health", b'{"v":1,"status":"ok","reason":"\xf4\x90\x80\x80 past U+10FFFF"}'),
        ("health", b'{"v":1,"status":"ok","reason":"truncated \xe2\x82"}'),
        ("feedback", b'{"v":1,\xff"outcomes":[[0.5,1]]}'),
        ("kpi", b'\xef\xbb\xbf{"v":1}x'),
        ("kpi", b'{"v":1,"requests":1,}'),
        ("kpi", b"{'v':2}"),  # json-c accepts single quotes even when strict
        ("kpi", b'{"v":1,"requests":01}'),
        ("kpi", b'{"v":1 /* comment */}'),
        ("kpi", b'{"v":1}\x00'),
        ("kpi", b''),
        ("kpi", deep_arr),
        ("kpi", deep_obj),
        ("kpi", deep_in_field),
        ("health", deep_unclosed),
    ]
    out = []
    for k in range(n):
        inst = "h-%d" % (k % 97)
        sel = k % 4
        if k % 2500 == 249:  # in the warm-up too: the same mix before and after
            kind, payload = "health", mib
        elif sel == 0:
            # random bytes, never the start of an object with "v":1
            payload = rnd.randbytes(rnd.randrange(0, 600))
            kind = KINDS[k % 3]
        elif sel == 1:
            kind, payload = fixed[(k // 4) % len(fixed)]
        elif sel == 2:
            # a valid-looking event with one field broken at random
            kind = KINDS[k % 3]
            field = rnd.randrange(5)
            bad = [
                b'"requests":%d,"errors":%d' % (rnd.randrange(0, 10), rnd.randrange(11, 99)),
                b'"cpu":%d.5' % rnd.randrange(1, 9),
                b'"ts":%d' % (int(now) - rnd.randrange(400, 10 ** 6)),
                b'"version":"%s"' % rnd.choice([b"a b", b"v/7", b"v#", b"v+", b"\\n"]),
                b'"seq":-%d' % rnd.randrange(1, 10 ** 9),
            ][field]
            if kind == "kpi":
                payload = b'{"v":1,' + bad + b"}"
            elif field < 2:  # kpi-only fields: break what the kind does have
                payload = {
                    "health": b'{"v":1,"status":"ok","reason":"\\u00e9 %c"}'
                              % rnd.randrange(0x80, 0xC2),
                    "feedback": b'{"v":1,"outcomes":[[0.5,1],[0.5,%d]]}' % rnd.randrange(2, 9),
                }[kind]
            elif kind == "health":
                payload = b'{"v":1,"status":"ok",' + bad + b"}"
            else:
                payload = b'{"v":1,"outcomes":[[0.5,1]],' + bad + b"}"
        else:
            # nesting of random depth, mostly past the tokener's limit
            depth = rnd.randrange(17, 3000)
            kind = KINDS[k % 3]
            payload = b'{"v":1,"outcomes":' + b"[" * depth + b"0.5,1" + b"]" * depth + b"}"
        out.append(("fleet/hostile/%s/%s" % (inst, kind), payload))
    return out


# ---- the tests ------------------------------------------------------------------------------


class DaemonTestCase(unittest.TestCase):
    binary = fmtest.fleetmedic_binary()

    def setUp(self):
        if not fmtest.have_mosquitto():
            self.skipTest("%s is not installed" % fmtest.MOSQUITTO)
        if not fmtest.have_clients():
            self.skipTest("mosquitto_pub/mosquitto_sub are not installed")
        if not os.access(self.binary, os.X_OK):
            self.fail("fleetmedic binary %s not found (build it, or set FLEETMEDIC)"
                      % self.binary)
        self.env = fmtest.Env()
        self.addCleanup(self.env.cleanup)

    def wait_total(self, d, n, timeout=30, what=None):
        """Waits until the daemon has received n messages in all; returns the metrics."""
        def done():
            m = d.metrics()
            return m if metric_sum(m, "fleetmedic_events_received_total") >= n else None
        return fmtest.wait_for(done, timeout, interval=0.05,
                               what=what or "fleetmedic to receive %d messages" % n)

    def accepted(self, d, kind=None):
        m = d.metrics()
        if kind:
            return metric(m, "fleetmedic_events_accepted_total", kind=kind)
        return metric_sum(m, "fleetmedic_events_accepted_total")


@unittest.skipUnless(fmtest.have_mosquitto(), "mosquitto is not installed")
class TestDaemon(DaemonTestCase):

    # a. every message counted exactly once, by kind and by reason
    @with_diag
    def test_a_counts(self):
        env = self.env
        b = env.broker()
        d = env.daemon(b)
        now = time.time()

        received = collections.Counter()
        accepted = collections.Counter()
        rejected = collections.Counter()
        instances = {"fraud-scorer": ["fraud-scorer-0", "fraud-scorer-1", "fraud-scorer-2"],
                     "ranker": ["ranker-0", "ranker-1"]}
        versions = {"fraud-scorer": "v7", "ranker": "2024.06.1_rc-2"}

        # valid events over the raw publisher: N health, M kpi, K feedback, seq rising per
        # instance in publishing order (one connection keeps the order)
        N, M, K = 14, 31, 9
        plan = ["health"] * N + ["kpi"] * M + ["feedback"] * K
        random.Random(1).shuffle(plan)
        seq = collections.Counter()
        raw = []
        last_kpi = None
        for k, kind in enumerate(plan):
            dep = "fraud-scorer" if k % 3 else "ranker"
            inst = instances[dep][(k // 3) % len(instances[dep])]
            if inst == "ranker-1":
                inst = "ranker-0"  # ranker-1 is left to mosquitto_pub
            seq[inst] += 1
            mk = {"health": fmtest.health, "kpi": fmtest.kpi, "feedback": fmtest.feedback}[kind]
            payload = mk(seq=seq[inst], version=versions[dep], ts=round(now + k * 0.001, 3))
            topic = "fleet/%s/%s/%s" % (dep, inst, kind)
            raw.append((topic, payload))
            received[kind] += 1
            accepted[kind] += 1
            if kind == "kpi":
                last_kpi = (topic, payload)
        # a duplicate: the same kpi event again (same seq and ts, as a redelivery)
        raw.append(last_kpi)
        received["kpi"] += 1
        rejected["duplicate"] += 1
        # an older seq without ts is a duplicate too (with a newer ts it would count as a
        # restarted sequence: fleet.c, is_duplicate)
        dup_inst = "fleet/fraud-scorer/fraud-scorer-1/kpi"
        raw.append((dup_inst, fmtest.kpi(seq=1, version="v7")))
        received["kpi"] += 1
        rejected["duplicate"] += 1

        for reason, topic, payload in rejected_cases(now):
            raw.append((topic, payload))
            received[topic.rsplit("/", 1)[1]] += 1
            rejected[reason] += 1

        with env.publisher(b.port) as p:
            self.assertEqual(p.publish_many(raw, qos=1), len(raw))

        # a few with mosquitto_pub, on their own instance ranker-1 (its own seq order)
        fmtest.pub(b.port, "fleet/ranker/ranker-1/health",
                   fmtest.health(seq=1, version=versions["ranker"]))
        fmtest.pub(b.port, "fleet/ranker/ranker-1/kpi",
                   fmtest.kpi(seq=2, version=versions["ranker"]))
        fmtest.pub(b.port, "fleet/ranker/ranker-1/feedback",
                   fmtest.feedback(seq=3, version=versions["ranker"]))
        fmtest.pub(b.port, "fleet/ranker/ranker-1/kpi", qos=0,
                   message=fmtest.kpi(seq=4, version=versions["ranker"], requests=7, errors=0))
        for kind in ("health", "kpi", "feedback", "kpi"):
            received[kind] += 1
            accepted[kind] += 1
        fmtest.pub(b.port, "fleet/ranker/ranker-1/kpi", null=True)  # empty payload
        received["kpi"] += 1
        rejected["malformed_json"] += 1
        fmtest.pub(b.port, "fleet/_fleetmedic/ranker-1/health", '{"v":1,"status":"ok"}')
        received["health"] += 1
        rejected["reserved_name"] += 1

        total = sum(received.values())
        self.wait_total(d, total)
        # nothing more arrives: the counters settle at exactly what was sent
        fmtest.wait_stable(lambda: counters(d.metrics()), quiet=0.5, timeout=10)
        m = d.metrics()
        got_recv, got_acc, got_rej = counters(m)
        print("\n  sent: %d messages; received %s accepted %s rejected %s" % (
            total, dict(received), dict(accepted), dict(rejected)))
        self.assertEqual({k: got_recv.get(k, 0) for k in KINDS},
                         {k: float(received[k]) for k in KINDS}, "received_total{kind}")
        self.assertEqual({k: got_acc.get(k, 0) for k in KINDS},
                         {k: float(accepted[k]) for k in KINDS}, "accepted_total{kind}")
        self.assertEqual({r: v for r, v in got_rej.items() if v},
                         {r: float(v) for r, v in rejected.items()}, "rejected_total{reason}")
        for r in ALL_REASONS:
            self.assertIn(r, got_rej, "rejected_total has no sample for reason %s" % r)
        self.assertEqual(metric(m, "fleetmedic_fleet_instances"), 5)
        self.assertEqual(metric(m, "fleetmedic_ready"), 1)
        self.assertEqual(metric(m, "fleetmedic_mqtt_connected"), 1)
        self.assertEqual(metric(m, "fleetmedic_mqtt_reconnects_total"), 0)
        # the decode histogram saw every message that reached the decoder
        self.assertEqual(metric(m, "fleetmedic_decode_seconds_count"), total)
        self.assertEqual(metric(m, "fleetmedic_decode_seconds_bucket", le="+Inf"), total)

        st = d.status()
        deps = {x["name"]: x for x in st["deployments"]}
        self.assertEqual(set(deps), {"fraud-scorer", "ranker"}, "ghost must not exist")
        for dep, names in instances.items():
            got = {i["name"] for i in deps[dep]["instances"]}
            self.assertEqual(got, set(names))
            self.assertEqual({i["version"] for i in deps[dep]["instances"]}, {versions[dep]})
        self.assertTrue(st["ready"])
        self.assertTrue(st["mqtt"]["connected"])

    # a2. the caps of fleet state, lowered in the configuration
    @with_diag
    def test_a2_caps(self):
        env = self.env
        b = env.broker()
        cfg = env.write("caps.yaml", "fleet:\n  max_deployments: 2\n"
                        "  max_versions_per_deployment: 1\n"
                        "  max_instances_per_deployment: 2\n")
        d = env.daemon(b, config=cfg)
        msgs = [
            ("fleet/fraud-scorer/fs-0/kpi", fmtest.kpi(seq=1, version="v7")),
            ("fleet/fraud-scorer/fs-1/kpi", fmtest.kpi(seq=1, version="v7")),
            ("fleet/ranker/rk-0/health", fmtest.health(seq=1, version="v1")),
            ("fleet/third/th-0/kpi", fmtest.kpi(seq=1, version="v1")),       # deployment_cap
            ("fleet/fraud-scorer/fs-0/kpi", fmtest.kpi(seq=2, version="v8")),  # version_cap
            ("fleet/fraud-scorer/fs-2/kpi", fmtest.kpi(seq=1, version="v7")),  # instance_cap
            ("fleet/fraud-scorer/fs-0/kpi", fmtest.kpi(seq=3, version="v7")),
        ]
        with env.publisher(b.port) as p:
            self.assertEqual(p.publish_many(msgs), len(msgs))
        m = self.wait_total(d, len(msgs))
        fmtest.wait_stable(lambda: counters(d.metrics()), quiet=0.3, timeout=10)
        m = d.metrics()
        _, acc, rej = counters(m)
        self.assertEqual({r: v for r, v in rej.items() if v},
                         {"deployment_cap": 1, "version_cap": 1, "instance_cap": 1})
        self.assertEqual(acc, {"kpi": 3, "health": 1, "feedback": 0})
        self.assertEqual(metric(m, "fleetmedic_fleet_instances"), 3)
        self.assertEqual(metric(m, "fleetmedic_fleet_deployments"), 2)

    # b. the broker restarts in the middle of a QoS 1 stream
    @with_diag
    def test_b_broker_restart(self):
        env = self.env
        b = env.broker()
        cfg = env.write("b.yaml", "mqtt:\n  reconnect_min_s: 1\n  reconnect_max_s: 2\n")
        d = env.daemon(b, config=cfg)

        stats = {"acked": 0, "attempted": 0, "reconnects": 0, "errors": []}
        lock = threading.Lock()
        stop = threading.Event()
        topic = "fleet/stream/stream-0/kpi"

        def publisher():
            seq = 0
            pub = None
            while not stop.is_set():
                if pub is None:
                    try:
                        pub = fmtest.Publisher(b.port, client_id="fmtest-stream", timeout=5)
                        pub.connect()
                    except (OSError, fmtest.MQTTError):
                        pub = None
                        time.sleep(0.05)
                        continue
                batch = []
                for _ in range(10):
                    seq += 1
                    batch.append((topic, fmtest.kpi(seq=seq, ts=round(time.time(), 3),
                                                    requests=10, errors=0)))
                try:
                    n = pub.publish_many(batch, window=10)
                    with lock:
                        stats["acked"] += n
                        stats["attempted"] += len(batch)
                except fmtest.MQTTError as e:
                    with lock:
                        stats["acked"] += e.acked
                        stats["attempted"] += len(batch)
                        stats["reconnects"] += 1
                    pub.close(disconnect=False)
                    pub = None
                    continue
                time.sleep(0.005)
            if pub is not None:
                pub.close()

        th = threading.Thread(target=publisher, daemon=True)
        th.start()
        self.addCleanup(th.join, 10)
        self.addCleanup(stop.set)

        fmtest.wait_for(lambda: stats["acked"] >= 1500, 20, what="1,500 events acknowledged")
        rc = b.stop(signal.SIGTERM)
        self.assertEqual(rc, 0, "mosquitto did not stop cleanly")
        acked_at_stop = stats["acked"]
        time.sleep(2.0)  # the outage itself, not a wait for a condition
        b.start()
        fmtest.wait_for(lambda: stats["acked"] >= acked_at_stop + 1500, 30,
                        what="the publisher to reconnect and 1,500 more events acknowledged")
        stop.set()
        th.join(10)
        self.assertFalse(th.is_alive())
        acked, attempted = stats["acked"], stats["attempted"]

        fmtest.wait_for(lambda: metric(d.metrics(), "fleetmedic_ready") == 1, 30,
                        what="the daemon to be subscribed again")
        fmtest.wait_for(lambda: self.accepted(d, "kpi") >= acked, 30,
                        what="accepted_total{kind=kpi} >= %d acknowledged" % acked)
        fmtest.wait_stable(lambda: counters(d.metrics()), quiet=1.0, timeout=30)
        m = d.metrics()
        recv, acc, rej = counters(m)
        print("\n  publisher: attempted=%d acked=%d reconnects=%d; daemon: received=%d "
              "accepted=%d duplicates=%d mqtt_reconnects=%d" % (
                  attempted, acked, stats["reconnects"], recv["kpi"], acc["kpi"],
                  rej.get("duplicate", 0), metric(m, "fleetmedic_mqtt_reconnects_total")))
        self.assertGreaterEqual(stats["reconnects"], 1, "the publisher never lost its broker")
        self.assertGreaterEqual(metric(m, "fleetmedic_mqtt_reconnects_total"), 1)
        self.assertEqual(metric(m, "fleetmedic_mqtt_connected"), 1)
        self.assertGreaterEqual(acc["kpi"], acked, "an event the broker acknowledged was lost")
        self.assertLessEqual(acc["kpi"], attempted, "an event was counted twice")
        # redeliveries are duplicates; nothing else is rejected
        self.assertEqual({r: v for r, v in rej.items() if v and r != "duplicate"}, {})
        self.assertEqual(recv["kpi"], acc["kpi"] + rej.get("duplicate", 0))

    # c. the controller is away for 5 s; its persistent session keeps its events
    @with_diag
    def test_c_controller_away(self):
        env = self.env
        b = env.broker()
        d = env.daemon(b)
        with env.publisher(b.port) as p:
            self.assertEqual(p.publish_many([("fleet/away/away-0/health",
                                              fmtest.health(seq=1))]), 1)
        fmtest.wait_for(lambda: self.accepted(d) == 1, 10, what="the first event")
        self.assertEqual(d.stop(signal.SIGTERM), 0, "fleetmedic did not exit with 0 on SIGTERM")

        # 5 s of QoS 1 events while it is away
        sent = 0
        seq = {}
        t0 = time.monotonic()
        with env.publisher(b.port) as p:
            k = 0
            while time.monotonic() - t0 < 5.0:
                batch = []
                for _ in range(20):
                    inst = "away-%d" % (k % 7)
                    seq[inst] = seq.get(inst, 1) + 1
                    kind = KINDS[k % 3]
                    mk = {"health": fmtest.health, "kpi": fmtest.kpi,
                          "feedback": fmtest.feedback}[kind]
                    batch.append(("fleet/away/%s/%s" % (inst, kind),
                                  mk(seq=seq[inst], ts=round(time.time(), 3))))
                    k += 1
                self.assertEqual(p.publish_many(batch), len(batch))
                sent += len(batch)
                time.sleep(0.05)
        print("\n  published %d QoS 1 events in 5 s while the controller was away" % sent)

        d.start()
        m = self.wait_total(d, sent, what="the %d queued events after the restart" % sent)
        fmtest.wait_stable(lambda: counters(d.metrics()), quiet=0.5, timeout=10)
        m = d.metrics()
        recv, acc, rej = counters(m)
        self.assertEqual(sum(recv.values()), sent)
        self.assertEqual(sum(acc.values()), sent)
        self.assertEqual(sum(rej.values()), 0)
        self.assertEqual(metric(m, "fleetmedic_fleet_instances"), 7)

    # d. hostile payloads: all rejected, the daemon alive, memory flat
    @with_diag
    def test_d_hostile(self):
        env = self.env
        b = env.broker()
        d = env.daemon(b)
        now = time.time()

        warm = hostile_payloads(1000, seed=7, now=now)
        with env.publisher(b.port, timeout=30) as p:
            self.assertEqual(p.publish_many(warm, window=100), len(warm))
        self.wait_total(d, len(warm), timeout=30)
        rss_warm = fmtest.vm_rss_kib(d.pid)

        flood = hostile_payloads(10000, seed=8, now=now)
        t0 = time.monotonic()
        with env.publisher(b.port, timeout=30) as p:
            self.assertEqual(p.publish_many(flood, window=100), len(flood))
        total = len(warm) + len(flood)
        self.wait_total(d, total, timeout=45)
        elapsed = time.monotonic() - t0
        fmtest.wait_stable(lambda: counters(d.metrics()), quiet=0.5, timeout=10)
        rss_flood = fmtest.vm_rss_kib(d.pid)
        m = d.metrics()
        recv, acc, rej = counters(m)
        print("\n  hostile: %d + %d payloads in %.1f s; VmRSS after warm-up %d KiB, after flood "
              "%d KiB (%+d KiB); rejected by reason %s" % (
                  len(warm), len(flood), elapsed, rss_warm, rss_flood, rss_flood - rss_warm,
                  {r: int(v) for r, v in sorted(rej.items()) if v}))
        self.assertTrue(d.running(), "fleetmedic died")
        self.assertEqual(d.http("/healthz")[0], 200)
        self.assertEqual(d.http("/readyz")[0], 200)
        self.assertEqual(sum(recv.values()), total)
        self.assertEqual(sum(acc.values()), 0, "a hostile payload was accepted")
        self.assertEqual(sum(rej.values()), total)
        self.assertEqual(metric(m, "fleetmedic_fleet_instances"), 0)
        if os.environ.get("FMTEST_SANITIZED"):
            # ASan keeps freed memory in quarantine: resident memory says nothing there.
            return
        self.assertLessEqual(rss_flood - rss_warm, 8 * 1024,
                             "VmRSS grew by more than 8 MiB during the flood")
        # and it still takes a good event
        with env.publisher(b.port) as p:
            p.publish_many([("fleet/after/after-0/kpi", fmtest.kpi(seq=1))])
        fmtest.wait_for(lambda: self.accepted(d, "kpi") == 1, 10, what="a valid event")

    # e. SIGHUP reloads a valid file and refuses an invalid one
    @with_diag
    def test_e_reload(self):
        env = self.env
        b = env.broker()
        cfg = env.write("reload.yaml", "breaker:\n  failure_rate: 0.5\n")
        d = env.daemon(b, config=cfg)
        msgs = [("fleet/reload/reload-%d/kpi" % i, fmtest.kpi(seq=1)) for i in range(3)]
        with env.publisher(b.port) as p:
            p.publish_many(msgs)
        fmtest.wait_for(lambda: self.accepted(d) == 3, 10, what="3 events")
        m0 = d.metrics()
        self.assertEqual(metric(m0, "fleetmedic_config_reloads_total"), 0)
        self.assertEqual(metric(m0, "fleetmedic_fleet_instances"), 3)

        env.write("reload.yaml", "breaker:\n  failure_rate: 0.6\n")
        d.signal(signal.SIGHUP)
        fmtest.wait_for(lambda: metric(d.metrics(), "fleetmedic_config_reloads_total") == 1, 10,
                        what="config_reloads_total 1")
        m = d.metrics()
        self.assertEqual(metric(m, "fleetmedic_config_reload_failures_total"), 0)
        self.assertEqual(metric(m, "fleetmedic_fleet_instances"), 3, "instances lost on reload")
        self.assertEqual(d.http("/readyz")[0], 200)
        # the MQTT settings did not change: no reconnect
        self.assertEqual(metric(m, "fleetmedic_mqtt_reconnects_total"), 0,
                         "an unchanged MQTT configuration made the client reconnect")

        env.write("reload.yaml", "breaker:\n  failure_rate: 1.5\n  no_such_key: 1\n")
        d.signal(signal.SIGHUP)
        fmtest.wait_for(
            lambda: metric(d.metrics(), "fleetmedic_config_reload_failures_total") == 1, 10,
            what="config_reload_failures_total 1")
        m = d.metrics()
        self.assertEqual(metric(m, "fleetmedic_config_reloads_total"), 1)
        self.assertEqual(metric(m, "fleetmedic_fleet_instances"), 3)
        self.assertTrue(d.running())
        self.assertEqual(d.http("/readyz")[0], 200)
        # still ingesting
        with env.publisher(b.port) as p:
            p.publish_many([("fleet/reload/reload-0/kpi", fmtest.kpi(seq=2))])
        fmtest.wait_for(lambda: self.accepted(d) == 4, 10, what="an event after the reloads")

        # a change of MQTT settings: the client is recreated, and subscribes again
        env.write("reload.yaml", "breaker:\n  failure_rate: 0.6\nmqtt:\n  keepalive_s: 10\n")
        d.signal(signal.SIGHUP)
        fmtest.wait_for(lambda: metric(d.metrics(), "fleetmedic_config_reloads_total") == 2, 10,
                        what="config_reloads_total 2")
        fmtest.wait_for(lambda: d.http("/readyz")[0] == 200, 15,
                        what="ready again after an MQTT change")
        self.assertEqual(metric(d.metrics(), "fleetmedic_fleet_instances"), 3)
        with env.publisher(b.port) as p:
            p.publish_many([("fleet/reload/reload-0/kpi", fmtest.kpi(seq=3))])
        fmtest.wait_for(lambda: self.accepted(d) == 5, 10,
                        what="an event after the MQTT reload")

    # f. the will and the retained state
    @with_diag
    def test_f_will_and_state(self):
        env = self.env
        b = env.broker()
        keepalive = 5
        cfg = env.write("f.yaml", "mqtt:\n  keepalive_s: %d\n" % keepalive)
        state_topic = "fleet/_fleetmedic/state"
        d = env.daemon(b, config=cfg)

        def state_online(line):
            return json.loads(line).get("online")

        watch = env.subscriber(b.port, state_topic)
        watch.wait_line(lambda l: state_online(l) is True, 10, what="state online:true")
        lines = fmtest.sub_once(b.port, state_topic, count=1, wait_s=3)
        self.assertEqual(len(lines), 1, "no retained state")
        st = json.loads(lines[0])
        self.assertIs(st["online"], True)

        # a crash: the broker publishes the will
        n = len(watch.snapshot())
        t0 = time.monotonic()
        d.kill()
        t, line = watch.wait_line(lambda l: state_online(l) is False, keepalive * 1.5 + 2,
                                  what="the will (online:false) after SIGKILL", start=n)
        elapsed = t - t0
        print("\n  will published %.2f s after SIGKILL" % elapsed)
        self.assertLessEqual(elapsed, keepalive * 1.5)
        self.assertEqual(json.loads(line), {"online": False})
        lines = fmtest.sub_once(b.port, state_topic, count=1, wait_s=3)
        self.assertEqual([json.loads(x).get("online") for x in lines], [False],
                         "the will is not retained")

        # back again
        n = len(watch.snapshot())
        d.start()
        watch.wait_line(lambda l: state_online(l) is True, 10, start=n,
                        what="state online:true after the restart")

        # a hang (SIGSTOP): the socket stays open, so only the keepalive can tell; the
        # broker gives up after 1.5 x keepalive without a packet and publishes the will
        n = len(watch.snapshot())
        t0 = time.monotonic()
        d.signal(signal.SIGSTOP)
        self.addCleanup(lambda: d.running() and os.kill(d.pid, signal.SIGCONT))
        t, line = watch.wait_line(lambda l: state_online(l) is False, keepalive * 1.5 + 10,
                                  what="the will after SIGSTOP", start=n)
        elapsed = t - t0
        print("  will published %.2f s after SIGSTOP (keepalive %d s)" % (elapsed, keepalive))
        # mosquitto 2.0 sweeps keepalives only every 6 s (src/keepalive.c:
        # last_keepalive_check + 5 < now), so a hung client's will comes 1.5 x keepalive
        # to 1.5 x keepalive + 6 s after its last packet (+1 s for whole-second clocks)
        self.assertLessEqual(elapsed, keepalive * 1.5 + 7.0)
        self.assertEqual(json.loads(line), {"online": False})
        # thawed, it finds its connection gone, reconnects and says online again
        n = len(watch.snapshot())
        d.signal(signal.SIGCONT)
        watch.wait_line(lambda l: state_online(l) is True, 15, start=n,
                        what="state online:true after SIGCONT")
        fmtest.wait_for(lambda: d.http("/readyz")[0] == 200, 10, what="ready after SIGCONT")
        self.assertGreaterEqual(metric(d.metrics(), "fleetmedic_mqtt_reconnects_total"), 1)

        # a clean stop: the daemon itself says online:false
        n = len(watch.snapshot())
        self.assertEqual(d.stop(signal.SIGTERM), 0, "fleetmedic did not exit with 0 on SIGTERM")
        _, line = watch.wait_line(lambda l: state_online(l) is False, 5, start=n,
                                  what="state online:false after SIGTERM")
        lines = fmtest.sub_once(b.port, state_topic, count=1, wait_s=3)
        self.assertEqual(len(lines), 1)
        st = json.loads(lines[0])
        self.assertIs(st["online"], False)
        self.assertIn("dry_run", st, "the clean-stop state is the daemon's summary, not the will")

    # g. a failing instance opens its breaker; the decision is published
    @with_diag
    def test_g_breaker_decision(self):
        env = self.env
        b = env.broker()
        d = env.daemon(b)
        dep = "fraud-scorer"
        dec = env.subscriber(b.port, "fleet/%s/_fleetmedic/decisions" % dep)
        dec.wait_subscribed()  # in place before anything is decided
        now = time.time()
        msgs = [("fleet/%s/%s-0/kpi" % (dep, dep),
                 fmtest.kpi(seq=s, version="v7", ts=round(now + s * 0.01, 3), requests=40,
                            errors=30))
                for s in range(1, 4)]
        msgs += [("fleet/%s/%s-1/kpi" % (dep, dep),
                  fmtest.kpi(seq=1, version="v7", requests=40, errors=0))]
        with env.publisher(b.port) as p:
            p.publish_many(msgs)

        def parsed():
            out = []
            for _, line in dec.snapshot():
                try:
                    out.append(json.loads(line))
                except ValueError:
                    pass
            return out

        def found():
            recs = parsed()
            tr = [r for r in recs if r.get("type") == "transition" and r.get("to") == "open"]
            ac = [r for r in recs if r.get("action") == "restart"
                  and r.get("outcome") == "dry_run"]
            return (tr, ac) if tr and ac else None

        tr, ac = fmtest.wait_for(found, 15, what="transition to open and a restart decision")
        print("\n  decisions: %s" % json.dumps(tr[0]) + "\n             %s" % json.dumps(ac[0]))
        self.assertEqual(tr[0]["instance"], "%s-0" % dep)
        self.assertEqual(tr[0]["deployment"], dep)
        self.assertEqual(tr[0].get("cause"), "failure_rate")
        self.assertEqual(ac[0]["instance"], "%s-0" % dep)
        self.assertEqual(ac[0]["policy"], "breaker")
        self.assertNotIn("%s-1" % dep, [r.get("instance") for r in parsed()],
                         "the healthy instance got a decision")
        m = d.metrics()
        self.assertGreaterEqual(
            metric(m, "fleetmedic_actions_total", policy="breaker", outcome="dry_run"), 1)
        self.assertEqual(metric(m, "fleetmedic_breaker_state", deployment=dep, state="open"), 1)
        st = d.status()
        self.assertTrue(st.get("recent_decisions"), "/status has no recent decisions")


@unittest.skipUnless(fmtest.have_mosquitto(), "mosquitto is not installed")
class TestPrefix(DaemonTestCase):

    # i. --topic-prefix with a '/' inside: events, state and decisions move under it
    @with_diag
    def test_i_topic_prefix(self):
        env = self.env
        b = env.broker()
        prefix = "acme/prod"
        d = env.daemon(b, topic_prefix=prefix)
        state = fmtest.sub_once(b.port, prefix + "/_fleetmedic/state", count=1, wait_s=5)
        self.assertEqual(len(state), 1, "no retained state under the prefix")
        self.assertIs(json.loads(state[0])["online"], True)
        dec = env.subscriber(b.port, prefix + "/api/_fleetmedic/decisions")
        dec.wait_subscribed()
        msgs = [
            ("fleet/api/api-0/kpi", fmtest.kpi(seq=1)),            # not subscribed: never seen
            ("acme/api/api-0/kpi", fmtest.kpi(seq=1)),             # not subscribed either
            ("acme/prod/api/api-0/kpi", fmtest.kpi(seq=1)),        # accepted
            ("acme/prod/api/api-0/health", fmtest.health(seq=2)),  # accepted
            ("acme/prod/api//kpi", fmtest.kpi(seq=1)),             # bad_topic
        ] + [("acme/prod/api/api-1/kpi", fmtest.kpi(seq=s, requests=40, errors=40))
             for s in range(1, 3)]
        with env.publisher(b.port) as p:
            p.publish_many(msgs)
        self.wait_total(d, 5)
        fmtest.wait_stable(lambda: counters(d.metrics()), quiet=0.5, timeout=10)
        recv, acc, rej = counters(d.metrics())
        self.assertEqual(sum(recv.values()), 5)
        self.assertEqual(acc, {"kpi": 3, "health": 1, "feedback": 0})
        self.assertEqual({r: v for r, v in rej.items() if v}, {"bad_topic": 1})
        dec.wait_line(lambda l: json.loads(l).get("to") == "open", 15,
                      what="a decision under the prefix")
        st = d.status()
        self.assertEqual([x["name"] for x in st["deployments"]], ["api"])
        self.assertEqual(d.http("/healthz")[0], 200)
        self.assertEqual(d.http("/no-such-endpoint")[0], 404)


@unittest.skipUnless(fmtest.have_mosquitto(), "mosquitto is not installed")
class TestBrokerAbsent(DaemonTestCase):

    # j. no broker yet: alive but not ready; ready once the broker comes; a stop while the
    #    broker is gone is still prompt
    @with_diag
    def test_j_broker_absent(self):
        env = self.env
        b = fmtest.Broker(env.dir)  # configured on a free port, not started
        env.brokers.append(b)
        cfg = env.write("j.yaml", "mqtt:\n  reconnect_min_s: 1\n  reconnect_max_s: 2\n")
        d = env.daemon(b, start=False, config=cfg)
        d.start(wait_ready=False)
        fmtest.wait_for(lambda: d.http("/healthz")[0] == 200, 10, what="/healthz 200")
        code, body = d.http("/readyz")
        self.assertEqual(code, 503, body)
        m = d.metrics()
        self.assertEqual(metric(m, "fleetmedic_ready"), 0)
        self.assertEqual(metric(m, "fleetmedic_mqtt_connected"), 0)
        self.assertFalse(d.status()["ready"])

        b.start()
        d.wait_ready(timeout=15)
        with env.publisher(b.port) as p:
            p.publish_many([("fleet/late/late-0/kpi", fmtest.kpi(seq=1))])
        fmtest.wait_for(lambda: self.accepted(d) == 1, 10, what="an event")
        m = d.metrics()
        self.assertEqual(metric(m, "fleetmedic_mqtt_connected"), 1)
        self.assertEqual(metric(m, "fleetmedic_mqtt_reconnects_total"), 0,
                         "the first successful connection is not a reconnect")

        b.stop(signal.SIGTERM)
        fmtest.wait_for(lambda: d.http("/readyz")[0] == 503, 10, what="/readyz 503")
        self.assertEqual(metric(d.metrics(), "fleetmedic_mqtt_connected"), 0)
        t0 = time.monotonic()
        rc = d.stop(signal.SIGTERM, timeout=10)
        elapsed = time.monotonic() - t0
        self.assertEqual(rc, 0, "exit status after SIGTERM with the broker gone")
        self.assertLess(elapsed, 5, "SIGTERM took %.1f s with the broker gone" % elapsed)


class TestCheck(unittest.TestCase):
    """h. `fleetmedic check -c`: no broker needed."""
    binary = fmtest.fleetmedic_binary()

    def setUp(self):
        if not os.access(self.binary, os.X_OK):
            self.fail("fleetmedic binary %s not found (build it, or set FLEETMEDIC)"
                      % self.binary)
        self.env = fmtest.Env()
        self.addCleanup(self.env.cleanup)

    def check(self, path):
        import subprocess
        r = subprocess.run([self.binary, "check", "-c", path], stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=20)
        return r.returncode, r.stdout.decode(), r.stderr.decode()

    def test_h_check(self):
        good = self.env.write("good.yaml", "\n".join([
            "mqtt:",
            "  url: mqtt://127.0.0.1:1883",
            "  client_id: fleetmedic-a",
            "  keepalive_s: 5",
            "breaker:",
            "  failure_rate: 0.6",
            "  min_requests: 20",
            "decoder:",
            "  max_payload_bytes: 65536",
            ""]))
        rc, out, err = self.check(good)
        self.assertEqual(rc, 0, "valid config refused: %s%s" % (out, err))
        self.assertIn("valid", out)

        good_json = self.env.write("good.json", '{"breaker": {"failure_rate": 0.7}, '
                                   '"tick_s": 0.5}\n')
        rc, out, err = self.check(good_json)
        self.assertEqual(rc, 0, "valid JSON config refused: %s%s" % (out, err))

        bad = self.env.write("bad.yaml", "\n".join([
            "mqtt:",
            "  keepalive_s: 5",
            "breaker:",
            "  min_requests: 20",
            "  failure_rate: 1.5",
            ""]))
        rc, out, err = self.check(bad)
        self.assertEqual(rc, 1, "invalid config accepted: %s%s" % (out, err))
        lines = [l for l in err.splitlines() if "breaker.failure_rate" in l]
        self.assertTrue(lines, "no error names breaker.failure_rate:\n" + err)
        self.assertRegex(lines[0], r"^%s:5: breaker\.failure_rate: " % _re_escape(bad))

        typo = self.env.write("typo.yaml", "mqtt:\n  keepalive: 5\n")
        rc, out, err = self.check(typo)
        self.assertEqual(rc, 1, "unknown key accepted: %s%s" % (out, err))
        self.assertRegex(err, r"(?m)^%s:2: mqtt\.keepalive: " % _re_escape(typo))

        rc, out, err = self.check(os.path.join(self.env.dir, "missing.yaml"))
        self.assertEqual(rc, 1)
        self.assertIn("missing.yaml", err)


def _re_escape(s):
    import re
    return re.escape(s)


def main():
    prog = unittest.main(exit=False, verbosity=int(os.environ.get("FMTEST_VERBOSITY", "2")))
    res = prog.result
    if not res.wasSuccessful():
        return 1
    if res.testsRun and len(res.skipped) == res.testsRun:
        return 77  # meson: skipped
    return 0


if __name__ == "__main__":
    sys.exit(main())
