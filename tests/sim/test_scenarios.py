#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Every shipped scenario passes `fleetmedic sim --check`; the same seed gives
the same bytes; and the rollback, freeze and no-action scenarios fail their
check when the policy that carries them is switched off (a -c override).

Environment: FLEETMEDIC (the binary), FM_SOURCE_ROOT (the tree; default: two
levels above this file)."""

import json
import os
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

ROOT = Path(os.environ.get("FM_SOURCE_ROOT", Path(__file__).resolve().parents[2]))
SCENARIOS = ROOT / "sim" / "scenarios"
FLEETMEDIC = os.environ.get("FLEETMEDIC", str(ROOT / "build" / "fleetmedic"))


def sim(*args, check=False):
    return subprocess.run([FLEETMEDIC, "sim", *map(str, args)], capture_output=True,
                          text=True, timeout=600, check=check)


class Scenarios(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = Path(self.tmp.name)

    def tearDown(self):
        self.tmp.cleanup()

    def test_every_scenario_passes_its_check(self):
        files = sorted(SCENARIOS.glob("*.yaml"))
        self.assertGreaterEqual(len(files), 11)
        for f in files:
            with self.subTest(scenario=f.name):
                out = self.dir / (f.stem + ".json")
                p = sim(f, "--check", "--json", out)
                self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
                doc = json.loads(out.read_text())
                self.assertEqual(doc["scenario"], f.stem)
                self.assertTrue(doc["expectations"], "a scenario without expectations")
                self.assertTrue(all(e["ok"] for e in doc["expectations"]))

    def test_same_seed_same_bytes(self):
        for name in ("bad-version", "slow-instance", "traffic-spike"):
            with self.subTest(scenario=name):
                a, b = self.dir / "a.json", self.dir / "b.json"
                sim(SCENARIOS / f"{name}.yaml", "--json", a, "--baseline", check=True)
                sim(SCENARIOS / f"{name}.yaml", "--json", b, "--baseline", check=True)
                self.assertEqual(a.read_bytes(), b.read_bytes())
                doc = json.loads(a.read_text())
                self.assertFalse(doc["baseline"]["controller"])
                self.assertEqual(doc["baseline"]["actions"], [])

    def override(self, scenario, name, text):
        """A copy of the scenario's configuration with `text` appended."""
        cfg = SCENARIOS / "config" / name
        out = self.dir / name
        out.write_text(cfg.read_text() + "\n" + text)
        return out

    def assert_check_fails(self, scenario, config):
        p = sim(SCENARIOS / scenario, "--check", "-c", config)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("FAIL", p.stdout)

    def test_rollback_off_fails(self):
        cfg = self.dir / "off.yaml"
        cfg.write_text("rollback:\n  enabled: false\n")
        for scenario in ("bad-version.yaml", "error-rate.yaml", "score-drift.yaml"):
            with self.subTest(scenario=scenario):
                self.assert_check_fails(scenario, cfg)

    def test_freeze_off_fails(self):
        # freeze_share 1: never "more than" every instance, so the governor never freezes
        cfg = self.override("cut-off.yaml", "breaker-traffic.yaml",
                            "governor:\n  freeze_share: 1\n")
        self.assert_check_fails("cut-off.yaml", cfg)

    def test_no_action_guards_off_fails(self):
        # the breaker's minimum sample and rate guards are what keep noise from acting
        cfg = self.override("noisy-healthy.yaml", "breaker-traffic.yaml",
                            "breaker:\n  min_requests: 1\n  failure_rate: 0.01\n")
        self.assert_check_fails("noisy-healthy.yaml", cfg)

    def test_dry_run_executes_nothing(self):
        cfg = self.override("bad-version.yaml", "rollback.yaml", "dry_run: true\n")
        out = self.dir / "dry.json"
        sim(SCENARIOS / "bad-version.yaml", "-c", cfg, "--json", out, check=True)
        doc = json.loads(out.read_text())
        verdicts = {a["verdict"] for a in doc["actions"]}
        self.assertEqual(verdicts, {"dry_run"})
        self.assertEqual(doc["summary"]["actions"], 0)

    def test_usage_and_bad_scenario(self):
        self.assertEqual(sim().returncode, 2)
        bad = self.dir / "bad.yaml"
        bad.write_text("name: x\nduration_s: 10\nfleet: {}\nbogus: 1\n")
        p = sim(bad)
        self.assertEqual(p.returncode, 1)
        self.assertIn("bad.yaml:4: bogus: unknown key", p.stderr)
        self.assertIn("duration_s", p.stderr)

    def test_report(self):
        html = self.dir / "r.html"
        sim(SCENARIOS / "slow-instance.yaml", "--report", html, "--baseline", check=True)
        text = html.read_text()
        self.assertTrue(text.lstrip().lower().startswith("<!doctype html"))
        self.assertIn("slow-instance", text)


if __name__ == "__main__":
    unittest.main(argv=sys.argv[:1] + sys.argv[1:])
