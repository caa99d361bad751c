"""bench/ab-builds, kept alive: an A/A run (the same build twice) of two short rounds at a
fixed 500 req/s, its JSON read back. Each build must have served the fixed rate in every
round with some CPU counted; the figures themselves are not judged (a smoke run, not a
benchmark). Needs two CPUs and taskset; the build comes from RINGSIDE_BUILD_ROOT."""

import json
import os
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import harness  # noqa: E402

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench", "ab-builds")


class AbBuildsTest(unittest.TestCase):
    def setUp(self):
        harness.require_bench_script("bench/ab-builds")

    def test_an_a_a_run_at_a_fixed_rate(self):
        build = harness.build_root()
        with tempfile.TemporaryDirectory() as out:
            report = os.path.join(out, "ab.json")
            done = subprocess.run(
                [sys.executable, SCRIPT, build, build, "--load", "rate:500", "--rounds", "2",
                 "--window", "1", "--json", report],
                capture_output=True, text=True, timeout=120)
            output = done.stdout + done.stderr
            self.assertEqual(done.returncode, 0, output)
            self.assertIn("| A: ", output)
            self.assertIn("| B: ", output)
            with open(report) as f:
                result = json.load(f)
        self.assertEqual(sorted(result["rounds"]), ["A", "B"], output)
        for label, rounds in result["rounds"].items():
            self.assertEqual(len(rounds), 2, f"{label}: {rounds}")
            for r in rounds:
                self.assertAlmostEqual(r["requests_per_s"], 500, delta=25, msg=f"{label}: {r}")
                # A TLS request proxied over loopback costs tens of us of CPU on any
                # machine (the kernel's TCP alone); a fraction of one means the wrong
                # thread or process was read.
                self.assertGreater(r["cpu_us"], 5, f"{label}: {r}")
                self.assertGreaterEqual(r["user_us"], 0, f"{label}: {r}")
                self.assertGreater(r["p99_us"], 0, f"{label}: {r}")

    def test_bad_arguments_exit_2(self):
        build = harness.build_root()
        for args, named in (([build, build, "--load", "rate:x"], "--load"),
                            ([build], "two to 26 build directories"),
                            ([build, "/nonexistent-build"], "/nonexistent-build/ringside")):
            done = subprocess.run([sys.executable, SCRIPT, *args],
                                  capture_output=True, text=True, timeout=30)
            self.assertEqual(done.returncode, 2, done.stderr)
            self.assertIn(named, done.stderr)


if __name__ == "__main__":
    harness.main()
