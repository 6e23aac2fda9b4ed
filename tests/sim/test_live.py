#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The live demo end to end (scripts/demo.sh: mosquitto, `fleetmedic run` in
dry-run, `fleetmedic record`, `fleetmedic sim --live`), shortened by a higher
speed: the controller makes decisions, the recorder logs them with the
events, and `fleetmedic replay --check` of that log reproduces them.

Environment: FLEETMEDIC (the binary), FM_SOURCE_ROOT (the tree; default: two
levels above this file), DEMO_SPEED (default 120)."""

import json
import os
import re
import subprocess
import tempfile
import unittest
from pathlib import Path

ROOT = Path(os.environ.get("FM_SOURCE_ROOT", Path(__file__).resolve().parents[2]))
FLEETMEDIC = os.environ.get("FLEETMEDIC", str(ROOT / "build" / "fleetmedic"))
SPEED = os.environ.get("DEMO_SPEED", "120")


class LiveDemo(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.work = Path(cls.tmp.name) / "work"
        cls.report = Path(cls.tmp.name) / "report.html"
        env = dict(os.environ, FLEETMEDIC=FLEETMEDIC, DEMO_SPEED=SPEED,
                   DEMO_KEEP=str(cls.work), DEMO_REPORT=str(cls.report))
        cls.demo = subprocess.run(["bash", str(ROOT / "scripts" / "demo.sh")], env=env,
                                 capture_output=True, text=True, timeout=300)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def diag(self):
        return "stdout:\n%s\nstderr:\n%s" % (self.demo.stdout, self.demo.stderr)

    def test_replay_reproduces_the_live_decisions(self):
        self.assertEqual(self.demo.returncode, 0, self.diag())
        m = re.search(r"compared with the (\d+) recorded decisions: (\d+) matched, (\d+) missing "
                      r"from the replay, (\d+) not in the recording: reproduced", self.demo.stdout)
        self.assertIsNotNone(m, self.diag())
        recorded, matched, missing, extra = map(int, m.groups())
        self.assertGreater(recorded, 0, self.diag())
        self.assertEqual((matched, missing, extra), (recorded, 0, 0))

    def test_decisions_printed_live(self):
        self.assertIn("  decision: ", self.demo.stdout, self.diag())
        self.assertRegex(self.demo.stdout, r"breaker closed -> open", self.diag())

    def test_log_and_report(self):
        lines = (self.work / "events.jsonl").read_text().splitlines()
        entries = [json.loads(line) for line in lines]
        events = [e for e in entries if "source" not in e]
        decisions = [e for e in entries if e.get("source") == "controller"]
        self.assertGreater(len(events), 100)
        self.assertGreater(len(decisions), 0)
        for e in events:
            self.assertRegex(e["topic"], r"^fleet/web/web-\d+/(health|kpi|feedback)$")
            payload = json.loads(e["payload"])
            self.assertEqual(payload["v"], 1)
            self.assertLess(abs(payload["ts"] * 1000 - e["t"]), 5000)
        for e in decisions:
            self.assertEqual(e["topic"], "fleet/web/_fleetmedic/decisions")
            self.assertEqual(json.loads(e["payload"])["deployment"], "web")
        ts = [e["t"] for e in entries]
        self.assertEqual(ts, sorted(ts))
        self.assertTrue(self.report.read_text().startswith("<!DOCTYPE html>"))

    def test_replay_json_matches_its_summary(self):
        out = self.work / "replay.jsonl"
        r = subprocess.run([FLEETMEDIC, "replay", str(self.work / "events.jsonl"), "-c",
                            str(self.work / "controller.yaml"), "--json", str(out), "-q",
                            "--check"], capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        records = [json.loads(line) for line in out.read_text().splitlines()]
        m = re.search(r"(\d+) decisions", r.stdout)
        self.assertEqual(len(records), int(m.group(1)))
        self.assertTrue(all(rec["verdict"] != "approved" for rec in records
                            if rec["type"] == "action"))

    def test_everything_stopped(self):
        for name in ("record.log",):
            self.assertIn("messages written", (self.work / name).read_text())
        log = (self.work / "controller.log").read_text()
        self.assertIn("stopping", log)


if __name__ == "__main__":
    unittest.main()
