"""tests/gtest_main.cc, the main of every gtest binary, run on gtest_main_probe: a binary
whose every test skipped exits 77 (meson's SKIP, where gtest's own main says 0, a pass),
skips beside passes are counted as skips, a failure fails; and tools/test_counts.py, which
makes the final line of tools/test.sh, counts those skips as skips. The probe's path comes
in GTEST_MAIN_PROBE (meson)."""

import json
import os
import re
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "integration"))
import harness  # noqa: E402

_COUNTS = re.compile(re.escape(harness.COUNTS_PREFIX) + r" (\d+) passed, (\d+) failed, (\d+) skipped")
_TEST_COUNTS = os.path.join(HERE, "..", "tools", "test_counts.py")


class GtestMainTest(unittest.TestCase):
    def run_probe(self, gtest_filter):
        probe = os.environ.get("GTEST_MAIN_PROBE")
        if not probe or not os.access(probe, os.X_OK):
            raise AssertionError(f"GTEST_MAIN_PROBE is not an executable: {probe!r}")
        done = subprocess.run([probe, f"--gtest_filter={gtest_filter}"],
                              capture_output=True, text=True, timeout=60)
        lines = done.stdout.strip().splitlines()
        match = _COUNTS.fullmatch(lines[-1]) if lines else None
        self.assertIsNotNone(match, f"no counts line last on stdout:\n{done.stdout}{done.stderr}")
        return done.returncode, done.stdout + done.stderr, tuple(int(x) for x in match.groups())

    def test_every_test_skipped_exits_77(self):
        status, output, counts = self.run_probe("Probe.SkipsHere")
        self.assertEqual((status, counts), (harness.EXIT_SKIP, (0, 0, 1)), output)

    def test_a_skip_beside_a_pass_is_counted_as_a_skip(self):
        status, output, counts = self.run_probe("Probe.Passes:Probe.SkipsHere")
        self.assertEqual((status, counts), (0, (1, 0, 1)), output)

    def test_a_failure_fails(self):
        status, output, counts = self.run_probe("Probe.*")
        self.assertEqual((status, counts), (1, (1, 1, 1)), output)

    def test_no_test_run_fails(self):
        status, output, counts = self.run_probe("Probe.NoSuchTest")
        self.assertEqual(status, 1, output)
        self.assertEqual(counts[1], 1, output)

    def test_the_final_line_counts_the_skips(self):
        """The probe's runs, as meson records them in testlog.json, added up the way
        tools/test.sh makes its final line."""
        runs = []
        for name, gtest_filter, result in (("all_skipped", "Probe.SkipsHere", "SKIP"),
                                           ("some_skipped", "Probe.Passes:Probe.SkipsHere", "OK")):
            status, output, _ = self.run_probe(gtest_filter)
            self.assertEqual(status, harness.EXIT_SKIP if result == "SKIP" else 0, output)
            runs.append({"name": name, "result": result, "stdout": output})
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as log:
            for run in runs:
                log.write(json.dumps(run) + "\n")
        try:
            done = subprocess.run([sys.executable, _TEST_COUNTS, log.name],
                                  capture_output=True, text=True, timeout=60, check=True)
        finally:
            os.unlink(log.name)
        lines = done.stdout.strip().splitlines()
        self.assertEqual(lines[-1], "1 0 2", done.stdout)  # passed, failed, skipped
        self.assertIn("all_skipped (SKIP): 0 passed, 0 failed, 1 skipped", done.stdout)
        self.assertIn("some_skipped (OK): 1 passed, 0 failed, 1 skipped", done.stdout)


if __name__ == "__main__":
    harness.main()
