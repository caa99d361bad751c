"""bench/micro/benchmark_main.cc, the main of every micro-benchmark, run on
benchmark_main_probe: a smoke run fails (exit 1) on a deliberately wrong result, skips
(77) when every run was unavailable, passes when the rest passed, and closes with the
counts tools/test.sh adds up. The probe's path comes in BENCHMARK_MAIN_PROBE (meson)."""

import os
import re
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import harness  # noqa: E402

_COUNTS = re.compile(re.escape(harness.COUNTS_PREFIX) + r" (\d+) passed, (\d+) failed, (\d+) skipped")


class BenchmarkMainTest(unittest.TestCase):
    def run_probe(self, benchmark_filter):
        probe = os.environ.get("BENCHMARK_MAIN_PROBE")
        if not probe or not os.access(probe, os.X_OK):
            raise AssertionError(f"BENCHMARK_MAIN_PROBE is not an executable: {probe!r}")
        done = subprocess.run([probe, f"--benchmark_filter={benchmark_filter}",
                               "--benchmark_min_time=0.001"],
                              capture_output=True, text=True, timeout=60)
        output = done.stdout + done.stderr
        lines = done.stdout.strip().splitlines()
        match = _COUNTS.fullmatch(lines[-1]) if lines else None
        self.assertIsNotNone(match, f"no counts line last on stdout:\n{output}")
        return done.returncode, output, tuple(int(x) for x in match.groups())

    def test_a_wrong_result_fails_the_run(self):
        status, output, counts = self.run_probe("BM_WrongResult")
        self.assertEqual((status, counts), (1, (0, 1, 0)), output)
        self.assertIn("benchmark_main: FAIL: BM_WrongResult: sum_to(100) is not 5051", output)

    def test_a_wrong_result_among_right_ones_fails_the_run(self):
        status, output, counts = self.run_probe(".")
        self.assertEqual((status, counts), (1, (1, 1, 1)), output)

    def test_right_results_pass(self):
        status, output, counts = self.run_probe("BM_RightResult")
        self.assertEqual((status, counts), (0, (1, 0, 0)), output)

    def test_an_unavailable_feature_beside_a_pass_counts_as_a_skip(self):
        status, output, counts = self.run_probe("BM_RightResult|BM_Unavailable")
        self.assertEqual((status, counts), (0, (1, 0, 1)), output)

    def test_only_unavailable_runs_exit_77(self):
        status, output, counts = self.run_probe("BM_Unavailable")
        self.assertEqual((status, counts), (harness.EXIT_SKIP, (0, 0, 1)), output)

    def test_a_filter_matching_nothing_fails(self):
        status, output, counts = self.run_probe("BM_NoSuchBenchmark")
        self.assertEqual((status, counts), (1, (0, 1, 0)), output)


if __name__ == "__main__":
    harness.main()
