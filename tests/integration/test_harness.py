"""Tests of the suite's reporting. harness.main() fails a file that defines test classes
it did not run, counts partial skips, exits 77 only when every test skipped, and fails
(not skips) a missing tool that tools/setup.sh installs when CI=true: each case runs a
small test file in a child interpreter, as meson runs the real ones. tools/test_counts.py
adds the counts up for tools/test.sh's final line by the rule of docs/testing.md. No
ringside binary involved."""

import ast
import importlib.util
import json
import os
import re
import subprocess
import sys
import tempfile
import textwrap
import unittest

import harness

HERE = os.path.dirname(os.path.abspath(__file__))
TEST_COUNTS = os.path.join(HERE, "..", "..", "tools", "test_counts.py")

_COUNTS = re.compile(re.escape(harness.COUNTS_PREFIX) + r" (\d+) passed, (\d+) failed, (\d+) skipped")


class MainTest(unittest.TestCase):
    def setUp(self):
        self.workdir = tempfile.mkdtemp(prefix="ringside-harness-test-")
        self.addCleanup(lambda: subprocess.run(["rm", "-rf", self.workdir]))

    def run_file(self, source, env=None):
        """Runs source as a test file; returns (exit status, output, (passed, failed,
        skipped)) with the counts from its last line."""
        path = os.path.join(self.workdir, "test_sample.py")
        with open(path, "w") as f:
            f.write(textwrap.dedent(source))
        child_env = dict(os.environ, PYTHONPATH=HERE, PYTHONDONTWRITEBYTECODE="1")
        child_env.pop("CI", None)
        child_env.update(env or {})
        done = subprocess.run([sys.executable, path], capture_output=True, text=True,
                              env=child_env, cwd=self.workdir, timeout=60)
        output = done.stdout + done.stderr
        last = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
        match = _COUNTS.fullmatch(last)
        self.assertIsNotNone(match, f"no counts line last on stdout:\n{output}")
        return done.returncode, output, tuple(int(x) for x in match.groups())

    def test_a_class_below_the_main_guard_fails_the_file(self):
        status, output, counts = self.run_file("""
            import unittest
            import harness

            class RunsTest(unittest.TestCase):
                def test_runs(self):
                    pass

            if __name__ == "__main__":
                harness.main()

            class NeverRunsTest(harness.PkiCase):
                def test_one(self):
                    pass

                def test_two(self):
                    self.fail("would fail, if it ran")
            """)
        self.assertEqual(status, 1, output)
        self.assertIn("test_sample.py:12: test class NeverRunsTest is defined below the "
                      "harness.main() call at line 10", output)
        self.assertEqual(counts, (1, 2, 0), output)  # its two tests count as failures

    def test_the_same_file_with_the_guard_at_the_end_passes(self):
        status, output, counts = self.run_file("""
            import unittest
            import harness

            class RunsTest(unittest.TestCase):
                def test_runs(self):
                    pass

            class AlsoRunsTest(harness.IntegrationCase):
                def test_one(self):
                    pass

            if __name__ == "__main__":
                harness.main()
            """)
        self.assertEqual((status, counts), (0, (2, 0, 0)), output)

    def test_a_mixin_of_tests_below_the_guard_fails_too(self):
        status, output, _ = self.run_file("""
            import unittest
            import harness

            class RunsTest(unittest.TestCase):
                def test_runs(self):
                    pass

            if __name__ == "__main__":
                harness.main()

            class _Paths:
                def test_path(self):
                    pass

            class PathTest(_Paths, RunsTest):
                pass
            """)
        self.assertEqual(status, 1, output)
        self.assertIn("test class _Paths", output)
        self.assertIn("test class PathTest", output)

    def test_a_class_defined_twice_fails(self):
        status, output, _ = self.run_file("""
            import unittest
            import harness

            class SameTest(unittest.TestCase):
                def test_hidden(self):
                    pass

            class SameTest(unittest.TestCase):
                def test_visible(self):
                    pass

                def test_visible(self):
                    pass

            if __name__ == "__main__":
                harness.main()
            """)
        self.assertEqual(status, 1, output)
        self.assertIn("class SameTest is defined again (lines 5, 9)", output)
        self.assertIn("SameTest.test_visible is defined again (line 10 first)", output)

    def test_a_partial_skip_passes_and_is_counted(self):
        status, output, counts = self.run_file("""
            import unittest
            import harness

            class SomeSkipTest(unittest.TestCase):
                def test_runs(self):
                    pass

                def test_skips(self):
                    self.skipTest("not here")

            class WholeClassSkipsTest(unittest.TestCase):
                @classmethod
                def setUpClass(cls):
                    raise unittest.SkipTest("not here either")

                def test_one(self):
                    pass

                def test_two(self):
                    pass

            if __name__ == "__main__":
                harness.main()
            """)
        # The class whose setUpClass skipped counts its two tests, not one.
        self.assertEqual((status, counts), (0, (1, 0, 3)), output)

    def test_every_test_skipped_exits_77(self):
        status, output, counts = self.run_file("""
            import unittest
            import harness

            class SkipTest(unittest.TestCase):
                def test_skips(self):
                    self.skipTest("not here")

            if __name__ == "__main__":
                harness.main()
            """)
        self.assertEqual((status, counts), (harness.EXIT_SKIP, (0, 0, 1)), output)

    def test_failures_errors_and_class_set_up_errors_are_counted(self):
        status, output, counts = self.run_file("""
            import unittest
            import harness

            class MixedTest(unittest.TestCase):
                def test_passes(self):
                    pass

                def test_fails(self):
                    self.fail("no")

                def test_raises(self):
                    raise RuntimeError("no")

                def test_subtest_fails(self):
                    for i in range(3):
                        with self.subTest(i=i):
                            self.assertLess(i, 2)

            class SetUpFailsTest(unittest.TestCase):
                @classmethod
                def setUpClass(cls):
                    raise RuntimeError("set-up failed")

                def test_one(self):
                    pass

                def test_two(self):
                    pass

            if __name__ == "__main__":
                harness.main()
            """)
        self.assertEqual((status, counts), (1, (1, 5, 0)), output)

    def test_a_file_without_tests_fails(self):
        status, output, counts = self.run_file("""
            import harness

            if __name__ == "__main__":
                harness.main()
            """)
        self.assertEqual((status, counts), (1, (0, 1, 0)), output)
        self.assertIn("no test ran", output)

    def _needs_curl(self):
        return """
            import unittest
            import harness

            class CurlTest(unittest.TestCase):
                def test_curl(self):
                    harness.require_tool("curl")

            class OwnToolTest(unittest.TestCase):
                def test_other(self):
                    harness.require_tool("a-tool-setup-sh-does-not-install")

            if __name__ == "__main__":
                harness.main()
            """

    def test_a_missing_tool_skips_outside_ci(self):
        empty = tempfile.mkdtemp(dir=self.workdir)
        status, output, counts = self.run_file(self._needs_curl(), env={"PATH": empty})
        self.assertEqual((status, counts), (harness.EXIT_SKIP, (0, 0, 2)), output)
        self.assertIn("curl is not installed", output)

    def test_a_missing_tool_that_setup_installs_fails_in_ci(self):
        empty = tempfile.mkdtemp(dir=self.workdir)
        status, output, counts = self.run_file(self._needs_curl(),
                                               env={"PATH": empty, "CI": "true"})
        self.assertEqual((status, counts), (1, (0, 1, 1)), output)
        self.assertIn("tools/setup.sh installs it", output)

    def test_setup_tools_are_read_from_the_package_list(self):
        tools = harness.setup_tools()
        for tool in ("curl", "openssl", "nginx", "haproxy", "cfssl", "tshark", "dnsmasq"):
            self.assertIn(tool, tools)
        self.assertNotIn("nginx-light", tools)  # package names are not commands


class SuiteFilesTest(unittest.TestCase):
    def test_every_test_file_ends_with_its_main_guard(self):
        """The check main() makes at run time, made here on every file of the folder
        without running them: nothing stands below `if __name__ == "__main__":`."""
        names = sorted(n for n in os.listdir(HERE) if n.startswith("test_") and n.endswith(".py"))
        self.assertIn("test_relay.py", names)
        for name in names:
            with open(os.path.join(HERE, name)) as f:
                body = ast.parse(f.read(), name).body
            guards = [i for i, node in enumerate(body) if isinstance(node, ast.If)
                      and "__main__" in ast.unparse(node.test)]
            with self.subTest(file=name):
                self.assertEqual(guards, [len(body) - 1], f"{name}: the __main__ guard "
                                 "must be the file's last statement, and the only one")


class FinalLineTest(unittest.TestCase):
    """tools/test_counts.py, which makes the counts of tools/test.sh's final line out of
    meson's testlog.json: the rule of docs/testing.md."""

    @classmethod
    def setUpClass(cls):
        spec = importlib.util.spec_from_file_location("test_counts", TEST_COUNTS)
        cls.counts = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(cls.counts)

    def count(self, result, output=""):
        return self.counts.count_test(result, output)[:3]

    def test_counts_are_read_from_the_last_counts_line(self):
        output = ("noise\nringside-test-counts: 9 passed, 9 failed, 9 skipped\n"
                  "more\nringside-test-counts: 16 passed, 0 failed, 1 skipped\n")
        self.assertEqual(self.count("OK", output), (16, 0, 1))

    def test_a_test_without_counts_is_one_case_of_mesons_result(self):
        self.assertEqual(self.count("OK"), (1, 0, 0))
        self.assertEqual(self.count("SKIP"), (0, 0, 1))
        for result in ("FAIL", "TIMEOUT", "ERROR", "UNEXPECTEDPASS", "INTERRUPT"):
            self.assertEqual(self.count(result), (0, 1, 0), result)

    def test_a_meson_failure_is_a_failure_even_when_the_counts_say_none(self):
        output = "ringside-test-counts: 5 passed, 0 failed, 2 skipped\n"
        self.assertEqual(self.count("FAIL", output), (5, 1, 2))  # e.g. a leak at exit
        self.assertEqual(self.count("TIMEOUT", output), (5, 1, 2))

    def test_a_meson_skip_counts_only_skips(self):
        self.assertEqual(self.count("SKIP", "ringside-test-counts: 0 passed, 0 failed, "
                                            "16 skipped\n"), (0, 0, 16))
        self.assertEqual(self.count("SKIP", "ringside-test-counts: 3 passed, 0 failed, "
                                            "0 skipped\n"), (0, 0, 1))

    def test_an_ok_that_counted_failures_or_nothing_is_a_failure(self):
        self.assertEqual(self.count("OK", "ringside-test-counts: 3 passed, 1 failed, "
                                          "0 skipped\n"), (3, 1, 0))
        self.assertEqual(self.count("OK", "ringside-test-counts: 0 passed, 0 failed, "
                                          "0 skipped\n"), (0, 1, 0))

    def test_an_expected_failure_is_one_pass(self):
        self.assertEqual(self.count("EXPECTEDFAIL", "ringside-test-counts: 0 passed, "
                                                    "1 failed, 0 skipped\n"), (1, 0, 0))

    def test_the_script_adds_up_a_testlog(self):
        tests = [
            {"name": "uring", "result": "SKIP",
             "stdout": "ringside-test-counts: 0 passed, 0 failed, 17 skipped\n"},
            {"name": "parser", "result": "OK",
             "stdout": "ringside-test-counts: 40 passed, 0 failed, 0 skipped\n"},
            {"name": "integration_http", "result": "OK", "stdout": "",
             "stderr": "ringside-test-counts: 60 passed, 0 failed, 2 skipped\n"},
            {"name": "flags_doc", "result": "OK", "stdout": "fine\n"},
            {"name": "worker", "result": "FAIL", "stdout": "Segmentation fault\n"},
        ]
        log = os.path.join(tempfile.mkdtemp(prefix="ringside-testlog-"), "testlog.json")
        self.addCleanup(lambda: subprocess.run(["rm", "-rf", os.path.dirname(log)]))
        with open(log, "w") as f:
            f.write("".join(json.dumps(t) + "\n" for t in tests))
        done = subprocess.run([sys.executable, TEST_COUNTS, log], capture_output=True,
                              text=True, timeout=30)
        self.assertEqual(done.returncode, 0, done.stderr)
        lines = done.stdout.splitlines()
        self.assertEqual(lines[-1], "101 1 19")
        self.assertIn("  uring (SKIP): 0 passed, 0 failed, 17 skipped", lines)
        self.assertIn("  integration_http (OK): 60 passed, 0 failed, 2 skipped", lines)
        self.assertIn("  worker (FAIL): 0 passed, 1 failed, 0 skipped", lines)


if __name__ == "__main__":
    harness.main()
