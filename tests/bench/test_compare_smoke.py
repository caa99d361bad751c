"""bench/compare, kept alive: scenario a (HTTPS keep-alive through the ingress), scenario
i (gRPC through the gRPC ingress, --protocol http), j (full handshakes by openssl s_time)
and m (a fixed 5,000 req/s, with the floor relay beside the proxies), each one short
round, for ringside, HAProxy and nginx, writing to a temporary directory.
It fails when the script fails, when a proxy's run reports an error, or when a proxy
served nothing; the figures themselves are not judged (a smoke run, not a benchmark).
Needs root and two CPUs (as bench/compare does), nginx with its stream module and
HAProxy (tools/setup.sh installs them); the build comes from RINGSIDE_BUILD_ROOT."""

import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import harness  # noqa: E402

COMPARE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench", "compare")
NGINX_STREAM_MODULE = "/usr/lib/nginx/modules/ngx_stream_module.so"
PROXIES = ("ringside", "haproxy", "nginx")


class CompareSmokeTest(unittest.TestCase):
    def setUp(self):
        if os.geteuid() != 0:
            self.skipTest("bench/compare runs as root")
        harness.require_bench_script("bench/compare")
        # Checked here so that bench/compare never installs packages from a test.
        for tool in ("nginx", "haproxy"):
            harness.require_tool(tool)
        if not os.path.exists(NGINX_STREAM_MODULE):
            if os.environ.get("CI") == "true":
                self.fail(f"{NGINX_STREAM_MODULE} is missing, but tools/setup.sh installs "
                          "libnginx-mod-stream and CI=true")
            self.skipTest("nginx's stream module (libnginx-mod-stream) is not installed")
        self.out = tempfile.mkdtemp(prefix="ringside-compare-smoke-")
        self.addCleanup(shutil.rmtree, self.out, ignore_errors=True)

    def run_compare(self, scenario, *flags):
        """bench/compare for one scenario, one round of one second; its runs by proxy."""
        done = subprocess.run(
            [sys.executable, COMPARE, "--only", scenario, "--rounds", "1", "--duration", "1",
             "--proxies", ",".join(PROXIES), "--build-dir", harness.build_root(),
             "--out", self.out, *flags],
            capture_output=True, text=True, timeout=240)
        output = done.stdout + done.stderr
        self.assertEqual(done.returncode, 0, output)
        written = glob.glob(os.path.join(self.out, "compare-*.json"))
        self.assertEqual(len(written), 1, f"{os.listdir(self.out)}\n{output}")
        self.assertEqual(len(glob.glob(os.path.join(self.out, "compare-*.md"))), 1, output)
        with open(written[0]) as f:
            results = json.load(f)
        self.assertEqual(results["notes"], [], output)
        runs = results["scenarios"][scenario]["runs"]
        for proxy in PROXIES:
            with self.subTest(proxy=proxy):
                self.assertEqual(len(runs[proxy]), 1, output)
                run = runs[proxy][0]
                self.assertNotIn("error", run, output)
                figures = {k: v for k, v in run.items() if not k.startswith("_")}
                self.assertTrue(figures, f"{proxy}: no figures\n{output}")
                self.assertTrue(any(isinstance(v, (int, float)) and v > 0
                                    for v in figures.values()),
                                f"{proxy}: nothing measured: {run}\n{output}")
        return runs, output

    def test_one_scenario_one_round_one_second(self):
        self.run_compare("a")

    def test_grpc_scenario(self):
        """Scenario i: gRPC through each proxy's gRPC ingress to serve --grpc, every call OK
        (a failed call is a generator error, hence a note)."""
        runs, output = self.run_compare("i", "--protocol", "http", "--tag", "grpc")
        self.assertTrue(glob.glob(os.path.join(self.out, "compare-*-grpc.md")),
                        f"--tag grpc: {os.listdir(self.out)}")
        for proxy in PROXIES:
            with self.subTest(proxy=proxy):
                run = runs[proxy][0]
                self.assertGreater(run["calls/s"], 0, output)
                self.assertAlmostEqual(run["proxy user us/call"] + run["proxy kernel us/call"],
                                       run["proxy CPU us/call"], places=6)


    def test_openssl_s_time_handshakes(self):
        harness.require_tool("openssl")
        runs, output = self.run_compare("j")
        for proxy in PROXIES:
            with self.subTest(proxy=proxy):
                self.assertGreater(runs[proxy][0]["connections/s"], 0, output)

    def test_fixed_rate_with_the_floor(self):
        """Scenario m over a 3 s run (its measuring window is the middle second): every
        proxy and the floor relay carry the offered load, CPU is split user/kernel."""
        runs, output = self.run_compare("m", "--duration", "3")
        for kind in PROXIES + ("floor",):
            with self.subTest(kind=kind):
                run = runs[kind][0]
                self.assertNotIn("error", run, output)
                self.assertGreater(run["p99 us"], 0, output)
                self.assertAlmostEqual(
                    run["proxy user us/request"] + run["proxy kernel us/request"],
                    run["proxy CPU us/request"], places=6)
                if "sampled user share %" not in run:
                    continue  # no perf on this machine
                self.assertGreater(run["traced returns to user/request"], 0, output)
                self.assertGreater(run["traced return cost us"], 0, output)
                self.assertGreater(run["traced return cost after a sleep us"], 0, output)
                self.assertGreater(run["sampled user share %"], 0, output)
                self.assertLessEqual(run["sampled user share %"], 100, output)
                self.assertLessEqual(run["sampled user us/request without the returns"],
                                     run["sampled user us/request"], output)


class GapsInScriptTest(unittest.TestCase):
    """bench/compare's reading of traced system calls, on hand-made perf script lines."""

    def test_gaps_after_a_sleep_are_counted_apart(self):
        import importlib.machinery
        import importlib.util
        # bench/compare has no .py suffix: its loader is named, and nothing is cached
        # beside it (no bench/__pycache__ in the tree).
        loader = importlib.machinery.SourceFileLoader("compare", COMPARE)
        compare = importlib.util.module_from_spec(
            importlib.util.spec_from_loader("compare", loader))
        dont_write = sys.dont_write_bytecode
        sys.dont_write_bytecode = True
        try:
            loader.exec_module(compare)
        finally:
            sys.dont_write_bytecode = dont_write
        script = "\n".join([
            "100 1.000000000: raw_syscalls:sys_enter:",
            "100 1.000001000: raw_syscalls:sys_exit:",    # no sleep
            "100 1.000003000: raw_syscalls:sys_enter:",   # gap 2 us
            "100 1.000004000: sched:sched_switch:",       # sleeps in the call
            "100 1.000100000: raw_syscalls:sys_exit:",
            "100 1.000105000: raw_syscalls:sys_enter:",   # gap 5 us, after a sleep
            "100 1.000106000: raw_syscalls:sys_exit:",
            "100 1.000107000: sched:sched_switch:",       # preempted in user: gap 1 us
            "100 1.000200000: raw_syscalls:sys_enter:",   # not a gap: no exit since
            "100 1.000201000: raw_syscalls:sys_exit:",    # did not sleep
            "100 1.000204000: raw_syscalls:sys_enter:",   # gap 3 us
            "200 1.000000000: raw_syscalls:sys_exit:",
            "200 1.000004000: raw_syscalls:sys_enter:",   # another thread: gap 4 us
        ])
        seconds, gaps, woken_seconds, woken_gaps = compare.gaps_in_script(script)
        self.assertEqual(gaps, 5)
        self.assertAlmostEqual(seconds, 15e-6, places=12)
        self.assertEqual(woken_gaps, 1)
        self.assertAlmostEqual(woken_seconds, 5e-6, places=12)


if __name__ == "__main__":
    harness.main()
