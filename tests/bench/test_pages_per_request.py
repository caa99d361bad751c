"""bench/pages-per-request, kept alive: two samples of one request each through a real
ringside, the printed figures parsed. A request through the proxy cannot touch fewer than
a few dozen pages (the worker's loop, the HTTP code, wolfSSL's records, libc): a count
below that means the script no longer measures the process that served it. Needs root
and two CPUs, as the script does; the build comes from RINGSIDE_BUILD_ROOT."""

import os
import re
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import harness  # noqa: E402

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench",
                      "pages-per-request")


class PagesPerRequestTest(unittest.TestCase):
    def setUp(self):
        if os.geteuid() != 0:
            self.skipTest("bench/pages-per-request runs as root")
        harness.require_bench_script("bench/pages-per-request")

    def test_one_request_touches_the_proxy_pages(self):
        done = subprocess.run([sys.executable, SCRIPT, "--build-dir", harness.build_root(),
                               "--samples", "2"], capture_output=True, text=True, timeout=120)
        output = done.stdout + done.stderr
        self.assertEqual(done.returncode, 0, output)
        busy = re.search(r"by 1 request\(s\), median of 2: (\d+) \(samples (\d+)-(\d+)\)", output)
        idle = re.search(r"no request \(idle baseline\), median: (\d+)", output)
        self.assertIsNotNone(busy, output)
        self.assertIsNotNone(idle, output)
        self.assertGreaterEqual(int(busy.group(2)), 30, output)

    def test_bad_arguments_exit_2(self):
        done = subprocess.run([sys.executable, SCRIPT, "--samples", "0"],
                              capture_output=True, text=True, timeout=30)
        self.assertEqual(done.returncode, 2, done.stderr)
        self.assertIn("--samples", done.stderr)


if __name__ == "__main__":
    harness.main()
