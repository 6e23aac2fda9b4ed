#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The simulator's HTML report, rendered by a real browser.

report_main ($REPORT_MAIN) turns tests/sim/fixture_run.json into a page;
headless Chromium then (1) dumps the DOM it built, whose charts are counted
and whose paths must hold data, and (2) takes a screenshot, decoded here with
zlib alone, whose chart columns must hold pixels of the series colours.

Chromium runs offline: a file:// page, a fresh profile in a temp dir, every
host name resolving to nothing, a dead loopback proxy, background services
off. It is stopped by the PID (and process group) this test started, with a
deadline. The test is skipped only when chromium is not installed.
"""

import json
import os
import re
import shutil
import signal
import struct
import subprocess
import tempfile
import time
import unittest
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(HERE))
FIXTURE = os.path.join(HERE, "fixture_run.json")
CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
DEADLINE_S = 120

# Window for the screenshot; the fixture's page is about 3400 px tall.
WIN_W, WIN_H = 1280, 4000
# Page layout (sim/report.c): body margin 24 px, panels 600 px wide, 16 px apart.
LEFT = range(24, 624)
RIGHT = range(640, 1240)

COLORS = {
    "replicas": (0x1F, 0x77, 0xB4),
    "p99": (0xD6, 0x27, 0x28),
    "error rate": (0x94, 0x67, 0xBD),
    "ready": (0x2C, 0xA0, 0x2C),
    "weight v1": (0xFF, 0x7F, 0x0E),
    "weight v2": (0x17, 0xBE, 0xCF),
    "fault": (0xFB, 0xE0, 0xDC),
}


def report_main():
    path = os.environ.get("REPORT_MAIN", os.path.join(REPO_ROOT, "build", "tests", "report_main"))
    if not os.path.isabs(path):
        path = os.path.join(REPO_ROOT, path)
    return path


def have_chromium():
    return os.access(CHROMIUM, os.X_OK)


# ---- PNG, standard library only --------------------------------------------------------------


def _paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def decode_png(data):
    """8-bit RGB or RGBA, non-interlaced PNG -> (width, height, bytes per pixel, rows)."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    pos, idat, hdr = 8, [], None
    while pos + 8 <= len(data):
        n, typ = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if zlib.crc32(typ + body) != struct.unpack(">I", data[pos + 8 + n:pos + 12 + n])[0]:
            raise ValueError("bad CRC in %r" % typ)
        pos += 12 + n
        if typ == b"IHDR":
            hdr = struct.unpack(">IIBBBBB", body)
        elif typ == b"IDAT":
            idat.append(body)
        elif typ == b"IEND":
            break
    width, height, depth, ctype, _, _, interlace = hdr
    if depth != 8 or ctype not in (2, 6) or interlace != 0:
        raise ValueError("unsupported PNG %r" % (hdr,))
    bpp = 3 if ctype == 2 else 4
    raw = zlib.decompress(b"".join(idat))
    stride = width * bpp
    prev = bytearray(stride)
    rows = []
    i = 0
    for _ in range(height):
        f = raw[i]
        line = bytearray(raw[i + 1:i + 1 + stride])
        i += 1 + stride
        if f == 1:
            for x in range(bpp, stride):
                line[x] = (line[x] + line[x - bpp]) & 0xFF
        elif f == 2:
            line = bytearray((a + b) & 0xFF for a, b in zip(line, prev))
        elif f == 3:
            for x in range(stride):
                left = line[x - bpp] if x >= bpp else 0
                line[x] = (line[x] + ((left + prev[x]) >> 1)) & 0xFF
        elif f == 4:
            for x in range(stride):
                if x >= bpp:
                    line[x] = (line[x] + _paeth(line[x - bpp], prev[x], prev[x - bpp])) & 0xFF
                else:
                    line[x] = (line[x] + prev[x]) & 0xFF
        elif f != 0:
            raise ValueError("bad filter %d" % f)
        rows.append(bytes(line))
        prev = line
    return width, height, bpp, rows


def color_columns(rows, bpp, rgb):
    """{x: pixel count} of the pixels exactly `rgb`."""
    needle = bytes(rgb)
    cols = {}
    for row in rows:
        at = row.find(needle)
        while at >= 0:
            if at % bpp == 0:
                x = at // bpp
                cols[x] = cols.get(x, 0) + 1
            at = row.find(needle, at + 1)
    return cols


# ---- chromium ---------------------------------------------------------------------------------


class Chromium:
    """One headless chromium run per call, in a private profile under `tmp`."""

    FLAGS = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-default-apps",
        "--disable-extensions",
        "--disable-breakpad",
        "--disable-domain-reliability",
        "--disable-client-side-phishing-detection",
        "--metrics-recording-only",
        "--dns-prefetch-disable",
        "--host-resolver-rules=MAP * ~NOTFOUND",
        "--proxy-server=127.0.0.1:9",
        "--mute-audio",
        "--hide-scrollbars",
        "--force-device-scale-factor=1",
        "--force-color-profile=srgb",
    ]

    def __init__(self, tmp):
        self.tmp = tmp
        self.runs = 0

    def run(self, *args):
        self.runs += 1
        home = os.path.join(self.tmp, "home")
        os.makedirs(home, exist_ok=True)
        env = dict(os.environ, HOME=home, XDG_CONFIG_HOME=os.path.join(home, ".config"),
                   XDG_CACHE_HOME=os.path.join(home, ".cache"))
        cmd = [CHROMIUM, *self.FLAGS,
               "--user-data-dir=" + os.path.join(self.tmp, "profile%d" % self.runs), *args]
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                             start_new_session=True)
        try:
            out, err = p.communicate(timeout=DEADLINE_S)
        except subprocess.TimeoutExpired:
            self._stop_group(p.pid)
            p.communicate()
            raise AssertionError("chromium did not finish within %d s" % DEADLINE_S)
        finally:
            # Chromium's helpers (zygote, renderer) share the group of the
            # process started here; make sure none outlives the call.
            self._stop_group(p.pid)
        if p.returncode != 0:
            raise AssertionError("chromium exited %d: %s" % (p.returncode, err.decode()[-2000:]))
        return out, err

    @staticmethod
    def _stop_group(pgid):
        try:
            os.killpg(pgid, signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass


# ---- the test ---------------------------------------------------------------------------------


def actions_per_deployment(doc, dep):
    """How many markers the report draws on each chart of `dep` (sim/report.h)."""
    deps = doc["series"]["deployments"]
    n = 0
    for a in doc.get("actions") or []:
        name = a.get("deployment")
        if not isinstance(name, str) or name == dep or name not in deps:
            n += 1
    return n


class TestReport(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="fm-report-")
        with open(FIXTURE, encoding="utf-8") as f:
            cls.doc = json.load(f)
        cls.html_path = os.path.join(cls.tmp, "report.html")
        exe = report_main()
        if not os.access(exe, os.X_OK):
            raise AssertionError("report_main not found at %s (set REPORT_MAIN)" % exe)
        subprocess.run([exe, FIXTURE, cls.html_path], check=True, timeout=60)
        with open(cls.html_path, encoding="utf-8") as f:
            cls.html = f.read()

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def expected_svgs(self):
        panels = 2 if self.doc.get("baseline") else 1
        return len(self.doc["series"]["deployments"]) * 4 * panels

    def test_a_page_is_self_contained(self):
        self.assertTrue(self.html.startswith("<!DOCTYPE html>"))
        self.assertNotIn("<script", self.html)
        self.assertNotIn("<link", self.html)
        self.assertNotIn("<img", self.html)
        self.assertNotIn("url(", self.html)
        self.assertNotIn("@import", self.html)
        self.assertNotRegex(self.html, r"\s(src|href)=")
        self.assertEqual(re.findall(r"https?://[^\"' ]*", self.html),
                         ["http://www.w3.org/2000/svg"] * self.expected_svgs())
        # Strings from the document arrive escaped.
        self.assertIn("a load ramp &amp; a slow node (&lt;5 min)", self.html)
        self.assertIn("&lt;per deployment&gt;", self.html)
        # Same document, same bytes.
        again = subprocess.run([report_main(), FIXTURE], check=True, timeout=60,
                               stdout=subprocess.PIPE).stdout
        self.assertEqual(again, self.html.encode())

    @unittest.skipUnless(have_chromium(), "chromium is not installed (apt-get install chromium)")
    def test_b_dom(self):
        out, _ = Chromium(self.tmp).run("--dump-dom", "file://" + self.html_path)
        dom = out.decode("utf-8")
        self.assertIn("</html>", dom)
        self.assertNotIn("<script", dom)
        svgs = re.findall(r"<svg\b.*?</svg>", dom, re.S)
        self.assertEqual(len(svgs), self.expected_svgs())

        deps = list(self.doc["series"]["deployments"])
        panels = 2 if self.doc.get("baseline") else 1
        docs = [self.doc, self.doc.get("baseline")]
        i = 0
        for dep in deps:
            for metric in ("Replicas", "p99 latency", "Error rate", "Traffic weights"):
                for p in range(panels):
                    svg = svgs[i]
                    i += 1
                    label = "%s, %s%s" % (metric, "baseline, " if p else "", dep)
                    self.assertIn('aria-label="%s"' % label, svg)
                    paths = re.findall(r'<path class="series[^"]*" stroke="[^"]+" d="([^"]+)"',
                                       svg)
                    self.assertTrue(paths, label)
                    for d in paths:
                        points = len(re.findall(r"[MLH]", d))
                        # 361 samples; the step lines only change a few times.
                        self.assertGreaterEqual(points, 2, label)
                        self.assertLessEqual(points, 1000, label)
                        self.assertRegex(d, r"^M\d+(\.\d)? \d+(\.\d)?", label)
                    if metric in ("p99 latency", "Error rate"):
                        self.assertEqual(len(paths), 1)
                        self.assertGreaterEqual(len(re.findall(r"L", paths[0])), 300, label)
                        self.assertIn('<line class="slo"', svg)
                    want = actions_per_deployment(docs[p], dep)
                    self.assertEqual(svg.count('<g class="action'), want, label)
        # The fixture's search has no traffic (null p99) for its first minute:
        # its line starts one minute in, x = 56 + 530 * 60 / 3600, not at x = 56.
        search = [s for s in svgs if 'aria-label="p99 latency, search"' in s]
        self.assertEqual(len(search), 1)
        self.assertIn('d="M64.8 ', search[0])

    @unittest.skipUnless(have_chromium(), "chromium is not installed (apt-get install chromium)")
    def test_c_screenshot(self):
        png = os.path.join(self.tmp, "shot.png")
        Chromium(self.tmp).run("--screenshot=" + png, "--window-size=%d,%d" % (WIN_W, WIN_H),
                               "file://" + self.html_path)
        with open(png, "rb") as f:
            width, height, bpp, rows = decode_png(f.read())
        self.assertEqual((width, height), (WIN_W, WIN_H))

        # The page is mostly white, but far from blank.
        blank = bytes([255] * bpp) * width
        self.assertGreater(sum(1 for r in rows if r != blank), 1500)

        report = {}
        for name, rgb in COLORS.items():
            cols = color_columns(rows, bpp, rgb)
            left = sum(1 for x in cols if x in LEFT)
            right = sum(1 for x in cols if x in RIGHT)
            report[name] = (left, right, sum(cols.values()))
        msg = "colour: (columns left, columns right, pixels) = %r" % report
        # Each series is a line across the time axis, in the run's panels
        # (left) and the baseline's (right); a legend swatch is 16 px wide.
        for name in ("replicas", "ready", "p99", "error rate", "weight v1", "weight v2"):
            left, right, pixels = report[name]
            self.assertGreater(left, 300, msg)
            self.assertGreater(right, 300, msg)
            self.assertGreater(pixels, 1000, msg)
        # Faults are shaded spans: web/v2 from 15 min to the end, search/s1 40-45 min.
        left, right, pixels = report["fault"]
        self.assertGreater(left, 300, msg)
        self.assertGreater(right, 300, msg)
        self.assertGreater(pixels, 100000, msg)


if __name__ == "__main__":
    unittest.main()
