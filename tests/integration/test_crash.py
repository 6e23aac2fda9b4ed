#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Crash safety of `fleetmedic run`: a rollback through the MLflow backend is carried out
exactly once, even when the daemon is killed with SIGKILL between the journal's intent
record and its done record and then restarted.

Run:  python3 tests/integration/test_crash.py [-v] [CrashTest.test_name]
      FLEETMEDIC=/path/to/fleetmedic selects the binary (default build/fleetmedic).
      FMTEST_KEEP=1 keeps each test's temp dir (broker, daemon and fake logs).

Each test starts its own mosquitto and its own fake MLflow registry
(tests/integration/fake_mlflow.py: model "web", versions 1 and 2, alias
production -> 2) on free loopback ports, and a daemon with dry_run off, the
rollback policy on, tuned to fire on a few hundred labelled outcomes, and
rollback bound to the mlflow backend. Instance web-1 serves v1 with perfect
accuracy, web-2 serves v2 with accuracy 0.5: the policy decides the rollback
rollback/web/v2/v1, which moves the alias to version 1.

The kill comes from the executor's failpoint (environment FM_FAILPOINT):
  journal-begun  after the intent record is synced, before the backend is asked
  actuator-done  after the backend reported, before the journal's done record
Everything is stopped by its PID whatever happens (fmtest.Env).
"""

import functools
import json
import os
import signal
import subprocess
import sys
import time
import unittest
import urllib.request

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fmtest  # noqa: E402

FAKE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fake_mlflow.py")
KEY = "rollback/web/v2/v1"
DEPLOYMENT = "web"


def with_diag(fn):
    """Appends the daemon, broker and fake logs to a failure's message."""
    @functools.wraps(fn)
    def wrapper(self, *a, **kw):
        try:
            return fn(self, *a, **kw)
        except unittest.SkipTest:
            raise
        except Exception as e:  # noqa: BLE001
            raise AssertionError("%s: %s\n%s" % (type(e).__name__, e, self.diag())) from e
    return wrapper


# ---- the fake MLflow registry ---------------------------------------------------------------


class FakeMlflow:
    """fake_mlflow.py on a free port; the caller stops it by PID (Env.procs)."""

    def __init__(self, env):
        self.env = env
        self.port = None
        self.proc = None
        self.out = os.path.join(env.dir, "fake_mlflow.out")

    def start(self, timeout=10.0):
        for attempt in range(3):
            self.port = fmtest.free_port()
            with open(self.out, "ab") as out:
                self.proc = subprocess.Popen([sys.executable, FAKE, str(self.port)],
                                             stdin=subprocess.DEVNULL, stdout=out,
                                             stderr=subprocess.STDOUT)
            self.env.procs.append(self.proc)

            def up():
                if self.proc.poll() is not None:
                    raise fmtest.Fatal("fake_mlflow.py exited with %s" % self.proc.returncode)
                return fmtest.tcp_open(self.port)

            try:
                fmtest.wait_for(up, timeout, what="fake MLflow on port %d" % self.port)
                return self
            except fmtest.Fatal:
                if attempt == 2 or "Address already in use" not in fmtest.tail(self.out):
                    raise

    @property
    def uri(self):
        return "http://127.0.0.1:%d" % self.port

    def admin(self, what, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.uri + "/_admin/" + what, data=data,
                                     method="GET" if body is None else "POST",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=5) as r:
            return json.loads(r.read())

    def seed(self):
        self.admin("seed", {"models": [{
            "name": "web", "versions": [{"version": "1"}, {"version": "2"}],
            "aliases": {"production": "2"}}]})

    def requests(self):
        return self.admin("log")["requests"]

    def alias_moves(self):
        """The bodies of every set-alias request (POST registered-models/alias)."""
        return [json.loads(r["body"]) for r in self.requests()
                if r["method"] == "POST" and r["path"].endswith("/registered-models/alias")]

    def writes(self, since=0):
        """(method, endpoint) of every API request after the first `since` that changes
        something (anything but GET)."""
        return [(r["method"], r["path"].rsplit("/api/2.0/mlflow/", 1)[-1])
                for r in self.requests()[since:] if r["method"] != "GET"]

    def alias(self, name="web", alias="production"):
        for m in self.admin("state")["models"]:
            if m["name"] == name:
                for a in m.get("aliases", []):
                    if a["alias"] == alias:
                        return a["version"]
        return None

    def diag(self):
        try:
            log = json.dumps(self.requests(), indent=None)[-3000:]
        except Exception as e:  # noqa: BLE001
            log = "(no request log: %r)" % (e,)
        return "--- fake MLflow requests ---\n%s\n--- fake MLflow output ---\n%s" % (
            log, fmtest.tail(self.out, 10))


# ---- events ---------------------------------------------------------------------------------

GOOD = ((0.9, 1), (0.1, 0))          # both right at threshold 0.5
HALF = ((0.9, 1), (0.9, 0))          # one right, one wrong
OUTCOMES_PER_EVENT = 50


def round_of_events():
    """(topic, payload) of one round: web-1 (v1) first, so v1 is seen before v2."""
    out = []
    for inst, version, pattern in (("web-1", "v1", GOOD), ("web-2", "v2", HALF)):
        base = "fleet/%s/%s/" % (DEPLOYMENT, inst)
        out.append((base + "health", fmtest.health(version=version, status="ok", ready=True)))
        out.append((base + "kpi", fmtest.kpi(version=version, requests=100, errors=0)))
        outcomes = [pattern[k % 2] for k in range(OUTCOMES_PER_EVENT)]
        out.append((base + "feedback", fmtest.feedback(version=version, outcomes=outcomes)))
    return out


# ---- the journal ----------------------------------------------------------------------------


def journal(state_dir):
    """The records of state_dir/journal.jsonl (a torn last line is left out)."""
    path = os.path.join(state_dir, "journal.jsonl")
    out = []
    try:
        with open(path, "rb") as f:
            lines = f.read().decode("utf-8", "replace").splitlines()
    except FileNotFoundError:
        return out
    for line in lines:
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out


def records_of(records, key):
    """(intent records of key, done records of those intents), in journal order."""
    intents = [r for r in records if r.get("op") == "intent" and r.get("key") == key]
    seqs = {r["seq"] for r in intents}
    dones = [r for r in records if r.get("op") == "done" and r.get("seq") in seqs]
    return intents, dones


CONFIG = """\
dry_run: false
tick_s: 0.2
rollback:
  enabled: true
  accuracy_drop: 0.05
  min_outcomes: 200
  confidence: 0.95
  known_good_after_s: 0
  cooldown_s: 0
actuators:
  action_timeout_s: 20
  backoff_base_s: 0.1
  backoff_cap_s: 0.5
  bindings:
    - {deployment: "*", actions: [rollback], backend: mlflow}
  mlflow:
    uri: %s
    alias: production
    timeout_s: 5
    models:
      - {deployment: "*", model: "*"}
"""


class CrashTest(unittest.TestCase):
    binary = fmtest.fleetmedic_binary()

    def setUp(self):
        if not fmtest.have_mosquitto():
            self.skipTest("%s is not installed" % fmtest.MOSQUITTO)
        if not fmtest.have_clients():
            self.skipTest("mosquitto_pub/mosquitto_sub are not installed")
        if not os.access(self.binary, os.X_OK):
            self.fail("fleetmedic binary %s not found (build it, or set FLEETMEDIC)"
                      % self.binary)
        self.env = fmtest.Env(prefix="fmcrash-")
        self.addCleanup(self.env.cleanup)
        self.fake = None
        self.broker = self.env.broker()
        self.fake = FakeMlflow(self.env).start()
        self.fake.seed()
        self.config = self.env.write("crash.yaml", CONFIG % self.fake.uri)
        self.pub = self.env.publisher(self.broker.port)

    def diag(self):
        env = getattr(self, "env", None)
        parts = [env.diag()] if env else []
        if getattr(self, "fake", None):
            parts.append(self.fake.diag())
        if env:
            parts.append("--- journal ---\n%s" % fmtest.tail(
                os.path.join(env.dir, "state", "journal.jsonl"), 20))
        return "\n".join(parts)

    # ---- helpers ----

    def start_daemon(self, d, failpoint=None):
        """Starts (or restarts) d, with FM_FAILPOINT=failpoint in its environment only."""
        saved = os.environ.pop("FM_FAILPOINT", None)
        try:
            if failpoint:
                os.environ["FM_FAILPOINT"] = failpoint
            d.start()
        finally:
            os.environ.pop("FM_FAILPOINT", None)
            if saved is not None:
                os.environ["FM_FAILPOINT"] = saved
        return d

    def feed_until(self, cond, timeout, what, period=0.1):
        """Publishes a round of events every period s until cond() is true; returns it."""
        events = round_of_events()
        deadline = time.monotonic() + timeout
        while True:
            self.pub.publish_many(events, qos=1)
            v = cond()
            if v:
                return v
            if time.monotonic() >= deadline:
                raise fmtest.Timeout("timed out after %.1f s waiting for %s" % (timeout, what))
            time.sleep(period)

    def feed_for(self, seconds, period=0.1):
        events = round_of_events()
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.pub.publish_many(events, qos=1)
            time.sleep(period)

    def killed_by_failpoint(self, d, what):
        """Feeds events until the daemon dies; asserts it died of SIGKILL."""
        rc = self.feed_until(lambda: d.proc.poll() is not None and [d.proc.returncode], 30,
                             "the daemon to hit failpoint %s" % what)[0]
        self.assertEqual(rc, -signal.SIGKILL,
                         "the daemon should have died of SIGKILL at %s, exit %s" % (what, rc))

    def recent(self, d, **match):
        """The daemon's recent decision records (GET /status) with every field in match."""
        recs = d.status().get("recent_decisions", [])
        return [r for r in recs if all(r.get(k) == v for k, v in match.items())]

    def journal(self, d):
        return journal(d.state_dir)

    # ---- the cases ----

    @with_diag
    def test_a_killed_after_journal_begin(self):
        """Intent synced, backend never asked: the restart settles it "unknown" (the alias
        did not move), the policy asks again and the rollback is carried out once."""
        d = self.env.daemon(self.broker, config=self.config, start=False)
        self.start_daemon(d, "journal-begun")
        self.killed_by_failpoint(d, "journal-begun")

        intents, dones = records_of(self.journal(d), KEY)
        self.assertEqual(len(intents), 1, "one intent record for %s" % KEY)
        self.assertEqual(intents[0]["action"], "rollback")
        self.assertEqual(intents[0]["policy"], "rollback")
        self.assertEqual(dones, [], "no done record before the kill")
        self.assertEqual(self.fake.alias_moves(), [], "the backend was never asked")
        self.assertEqual(self.fake.alias(), "2")

        self.start_daemon(d)  # no failpoint
        # the settle observes (the alias is at 2, not at 1) and ends the entry "unknown";
        # events are published only after it, so the policy's new request meets a settled key
        fmtest.wait_for(lambda: records_of(self.journal(d), KEY)[1], 15,
                        what="the restart to settle the pending rollback")
        _, dones = records_of(self.journal(d), KEY)
        self.assertEqual([r["outcome"] for r in dones], ["unknown"])
        self.assertEqual(dones[0]["seq"], intents[0]["seq"])
        self.assertEqual(self.fake.alias_moves(), [], "settling only observes")

        # the policy decides again from the new run's events; this time it is carried out
        def rolled_back():
            _, ds = records_of(self.journal(d), KEY)
            return any(r["outcome"] == "ok" for r in ds)

        self.feed_until(rolled_back, 30, "the rollback to be carried out after the restart")
        self.feed_for(1.5)  # more evidence, more ticks: nothing more may happen

        moves = self.fake.alias_moves()
        self.assertEqual(len(moves), 1, "exactly one alias move: %r" % (moves,))
        self.assertEqual((moves[0]["name"], moves[0]["alias"], str(moves[0]["version"])),
                         ("web", "production", "1"))
        self.assertEqual(self.fake.alias(), "1")
        self.assertEqual(self.fake.writes(), [("POST", "registered-models/alias"),
                                              ("POST", "model-versions/set-tag")])
        intents, dones = records_of(self.journal(d), KEY)
        self.assertEqual(len(intents), 2, "begun once per run")
        self.assertEqual([r["outcome"] for r in dones], ["unknown", "ok"])
        self.assertEqual(self.journal(d)[-1]["op"], "done")
        self.assertEqual(self.journal(d)[-1]["outcome"], "ok")
        ok = self.recent(d, type="execution", key=KEY, outcome="ok")
        self.assertEqual(len(ok), 1, "one execution record with outcome ok")
        self.assertEqual(ok[0]["policy"], "rollback")
        self.assertEqual(ok[0]["backend"], "mlflow")
        self.assertFalse(ok[0]["settled"])
        d.stop()

    @with_diag
    def test_b_killed_after_actuator_done(self):
        """The alias moved, the done record was never written: the restart observes the
        alias at 1 ("ok", policy recovery) and the policy's new request is a duplicate."""
        d = self.env.daemon(self.broker, config=self.config, start=False)
        self.start_daemon(d, "actuator-done")
        self.killed_by_failpoint(d, "actuator-done")

        intents, dones = records_of(self.journal(d), KEY)
        self.assertEqual(len(intents), 1, "one intent record for %s" % KEY)
        self.assertEqual(dones, [], "no done record before the kill")
        moves = self.fake.alias_moves()
        self.assertEqual(len(moves), 1, "the backend moved the alias before the kill: %r"
                         % (moves,))
        self.assertEqual(str(moves[0]["version"]), "1")
        self.assertEqual(self.fake.alias(), "1")
        self.assertEqual(self.fake.writes(), [("POST", "registered-models/alias"),
                                              ("POST", "model-versions/set-tag")])
        before = len(self.fake.requests())

        self.start_daemon(d)  # no failpoint
        fmtest.wait_for(lambda: records_of(self.journal(d), KEY)[1], 15,
                        what="the restart to settle the pending rollback")
        _, dones = records_of(self.journal(d), KEY)
        self.assertEqual([r["outcome"] for r in dones], ["ok"], "settled by observation")
        settled = fmtest.wait_for(
            lambda: self.recent(d, type="execution", key=KEY, policy="recovery"), 10,
            what="the settle's execution record")
        self.assertEqual(len(settled), 1)
        self.assertEqual(settled[0]["outcome"], "ok")
        self.assertTrue(settled[0]["settled"])
        self.assertEqual(settled[0]["backend"], "mlflow")

        # the policy of the new run decides the same rollback: done before, not repeated
        dup = self.feed_until(
            lambda: self.recent(d, type="execution", key=KEY, policy="rollback"), 30,
            "the repeated rollback request to be answered")
        self.assertEqual([r["outcome"] for r in dup], ["duplicate"])
        self.feed_for(1.5)

        self.assertEqual(len(self.fake.alias_moves()), 1, "still exactly one alias move")
        self.assertEqual(self.fake.alias(), "1")
        # the new run only looked: one GET of the alias by the settle, nothing else
        after = [(r["method"], r["path"].rsplit("/api/2.0/mlflow/", 1)[-1], r["params"])
                 for r in self.fake.requests()[before:]]
        self.assertEqual(after, [("GET", "registered-models/alias",
                                  {"name": "web", "alias": "production"})])
        intents, dones = records_of(self.journal(d), KEY)
        self.assertEqual(len(intents), 1, "a duplicate is not journaled again")
        self.assertEqual([r["outcome"] for r in dones], ["ok"])
        self.assertEqual(
            self.recent(d, type="execution", key=KEY, outcome="ok", policy="rollback"), [],
            "no second execution")
        d.stop()

    @with_diag
    def test_d_events_during_settle(self):
        """Events arrive at once after the restart while the settle's observation is slow:
        no decision is taken before the settle ends, so the rollback is not lost to a key
        that is still pending; it is carried out once."""
        d = self.env.daemon(self.broker, config=self.config, start=False)
        self.start_daemon(d, "journal-begun")
        self.killed_by_failpoint(d, "journal-begun")
        self.fake.admin("faults", {"count": 1, "status": 0, "delay_ms": 3000})  # slow observe
        self.start_daemon(d)

        def rolled_back():
            _, ds = records_of(self.journal(d), KEY)
            return any(r["outcome"] == "ok" for r in ds)

        self.feed_until(rolled_back, 30, "the rollback to be carried out after a slow settle")
        self.feed_for(1.5)
        self.assertEqual(len(self.fake.alias_moves()), 1, "exactly one alias move")
        self.assertEqual(self.fake.alias(), "1")
        _, dones = records_of(self.journal(d), KEY)
        self.assertEqual([r["outcome"] for r in dones], ["unknown", "ok"])
        self.assertEqual(self.recent(d, type="execution", key=KEY, outcome="in_progress"), [],
                         "no decision met the pending key")
        d.stop()

    @with_diag
    def test_c_clean_run(self):
        """No failpoint: the rollback is carried out once and its execution record (outcome
        ok) is published on the decisions topic."""
        topic = "fleet/%s/_fleetmedic/decisions" % DEPLOYMENT
        sub = self.env.subscriber(self.broker.port, topic)
        sub.wait_subscribed()
        d = self.env.daemon(self.broker, config=self.config, start=False)
        self.start_daemon(d)

        def execution(line):
            r = json.loads(line)
            return r.get("type") == "execution" and r.get("key") == KEY

        def executed():
            return [json.loads(line) for _, line in sub.snapshot()
                    if line.startswith("{") and execution(line)]

        recs = self.feed_until(executed, 30, "an execution record on %s" % topic)
        self.feed_for(1.5)
        recs = executed()
        self.assertEqual(len(recs), 1, "one execution record: %r" % (recs,))
        r = recs[0]
        self.assertEqual((r["outcome"], r["action"], r["policy"], r["backend"], r["deployment"]),
                         ("ok", "rollback", "rollback", "mlflow", DEPLOYMENT))
        self.assertFalse(r["settled"])
        actions = [json.loads(line) for _, line in sub.snapshot() if line.startswith("{")]
        actions = [a for a in actions if a.get("type") == "action" and a.get("key") == KEY]
        self.assertEqual(len(actions), 1, "the policy decided once: %r" % (actions,))

        moves = self.fake.alias_moves()
        self.assertEqual(len(moves), 1, "exactly one alias move: %r" % (moves,))
        self.assertEqual(str(moves[0]["version"]), "1")
        self.assertEqual(self.fake.alias(), "1")
        self.assertEqual(self.fake.writes(), [("POST", "registered-models/alias"),
                                              ("POST", "model-versions/set-tag")])
        intents, dones = records_of(self.journal(d), KEY)
        self.assertEqual(len(intents), 1)
        self.assertEqual([x["outcome"] for x in dones], ["ok"])
        d.stop()


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
