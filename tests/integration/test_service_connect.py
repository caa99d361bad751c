"""Service Connect end to end: `ringside hosts`, and the whole scenario of
tools/service-connect (three tasks in network namespaces, client aliases, endpoints from
dnsmasq changing under load, a replica's sidecar killed mid-load, a packet capture on
the veth links) with its figures asserted.

The scenario needs root, `ip netns`, tshark and dnsmasq; without them it is skipped with
the reason (meson reports a skip). It takes about a minute.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

import harness

SCENARIO = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "tools", "service-connect", "scenario.py")


class HostsTest(unittest.TestCase):
    def test_prints_the_client_alias_lines_of_the_egress_listeners(self):
        result = subprocess.run(
            [harness.binary("ringside"), "hosts",
             "--egress", "127.255.0.1:80=app.sample-namespace,tls=off",
             "--egress", "127.255.0.2:80=orders.sample-namespace,tls=off",
             "--upstream", "app.sample-namespace=10.0.0.7:15443",
             "--upstream", "orders.sample-namespace=dns:orders.internal:15443"],
            capture_output=True, text=True, timeout=30)
        self.assertEqual(result.returncode, 0, result.stderr)
        lines = [l for l in result.stdout.splitlines() if not l.startswith("#")]
        self.assertEqual(lines, ["127.255.0.1 app.sample-namespace",
                                 "127.255.0.2 orders.sample-namespace"])
        self.assertEqual(result.stderr, "")

    def test_a_bad_flag_is_exit_2_naming_it(self):
        result = subprocess.run(
            [harness.binary("ringside"), "hosts", "--egress", "127.255.0.1:80=app.ns,tls=off",
             "--upstream", "app.ns=dns:app.internal"],
            capture_output=True, text=True, timeout=30)
        self.assertEqual(result.returncode, 2)
        self.assertIn("--upstream 'app.ns=dns:app.internal'", result.stderr)
        self.assertEqual(result.stdout, "")


class ServiceConnectScenarioTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if os.geteuid() != 0:
            raise unittest.SkipTest("the scenario needs root (network namespaces, packet capture)")
        for tool in ("ip", "tshark", "dnsmasq", "curl", "openssl"):
            harness.require_tool(tool)
        probe = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True)
        if probe.returncode != 0:
            raise unittest.SkipTest(f"`ip netns` is unavailable: {probe.stderr.strip()}")
        cls.work = tempfile.mkdtemp(prefix="ringside-sc-test.")
        report = os.path.join(cls.work, "report.json")
        cls.process = subprocess.run(
            [sys.executable, SCENARIO, "--phase", "3", "--report", report,
             "--ringside", harness.binary("ringside"), "--ca", harness.binary("ringside-ca")],
            capture_output=True, text=True, timeout=240)
        cls.output = cls.process.stdout + cls.process.stderr
        cls.report = {}
        if os.path.exists(report):
            with open(report) as f:
                cls.report = json.load(f)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.work, ignore_errors=True)

    def explain(self):
        return "\n--- scenario output (tail)\n" + "\n".join(self.output.splitlines()[-60:])

    def test_runs_to_the_end_and_cleans_up(self):
        self.assertEqual(self.process.returncode, 0, self.explain())
        self.assertIn("service-connect: done", self.output)
        namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        self.assertNotIn("rsc", " ".join(l.split()[0][:3] for l in namespaces.splitlines() if l),
                         "a namespace of the scenario survived it")

    def test_sidecars_drain_and_exit_cleanly(self):
        exits = self.report.get("sidecar_exit", {})
        self.assertEqual(exits.get("client"), 0, self.explain())
        self.assertEqual(exits.get("replica-1"), 0, self.explain())
        self.assertEqual(exits.get("replica-2"), -9)  # the one the scenario killed

    def test_client_alias_comes_from_ringside_hosts(self):
        self.assertIn("127.255.0.1 app.sample-namespace", self.report.get("hosts", ""),
                      self.explain())
        self.assertIn("says hello", self.report.get("curl", ""), self.explain())
        if self.report.get("protocol") == "http":  # the proxy's own response headers
            self.assertIn("server: ringside", self.report["curl"])
            self.assertIn("x-upstream-service-time:", self.report["curl"])

    def test_certificate_names_the_service_is_from_the_scenario_ca_and_lasts_7_days(self):
        cert = self.report.get("certificate", "")
        self.assertIn("DNS:app.sample-namespace", cert, self.explain())
        issuer = next((l for l in cert.splitlines() if l.startswith("issuer")), "")
        ca_subject = self.report.get("ca_subject", "subject=?")
        self.assertEqual(issuer.split("=", 1)[1].strip(), ca_subject.split("=", 1)[1].strip())
        self.assertIn("Verify return code: 0 (ok)", self.report.get("certificate_verify", ""))
        dates = {}
        for line in cert.splitlines():
            if line.startswith(("notBefore=", "notAfter=")):
                key, value = line.split("=", 1)
                dates[key] = subprocess.run(["date", "-d", value, "+%s"], capture_output=True,
                                            text=True).stdout.strip()
        self.assertEqual(set(dates), {"notBefore", "notAfter"}, cert)
        lifetime = int(dates["notAfter"]) - int(dates["notBefore"])
        # 7 days; the issuer may backdate notBefore by a few minutes for clock skew.
        self.assertTrue(7 * 86400 <= lifetime <= 7 * 86400 + 3600, lifetime)

    def test_nothing_crosses_between_namespaces_in_clear(self):
        capture = self.report.get("capture", {})
        control = self.report.get("control_capture", {})
        self.assertEqual(capture.get("plaintext_bytes"), 0, self.explain())
        self.assertEqual(capture.get("plaintext_frames"), 0)
        self.assertGreater(capture.get("tls_frames", 0), 100, self.explain())
        # The same search finds the markers where they do travel in clear.
        self.assertGreater(control.get("plaintext_frames", 0), 0, self.explain())

    def test_replicas_answer_round_robin_and_endpoint_changes_fail_nothing(self):
        phases = self.report.get("phases", {})
        self.assertEqual(set(phases), {"A", "B", "C", "D", "E"}, self.explain())
        for name in "ABCD":
            self.assertGreater(phases[name]["sent"], 10, (name, phases[name]))
            self.assertEqual(phases[name]["failed"], 0, (name, phases[name], self.explain()))
        self.assertEqual(phases["A"]["replica-2"], 0, phases["A"])
        for name in "BD":  # both replicas: each gets a real share
            share = phases[name]["replica-1"] / max(phases[name]["sent"], 1)
            self.assertTrue(0.25 <= share <= 0.75, (name, phases[name]))
        # Removed from DNS: new connections stop going to replica-1...
        self.assertEqual(phases["C"]["replica-1"], 0, phases["C"])
        # ...while its long requests in flight finish there (drained, not cut).
        slow = self.report.get("slow_requests", [])
        self.assertEqual(len(slow), 12)
        self.assertNotIn("failed", slow, slow)
        self.assertIn("replica-1", slow, slow)
        self.assertTrue(self.report.get("draining_seen"), self.explain())

    def test_killing_a_replica_sidecar_fails_at_most_the_requests_in_flight(self):
        self.assertLessEqual(self.report.get("failed_around_kill", 99),
                             self.report.get("in_flight_at_kill", 0), self.explain())
        after = self.report.get("after_kill", {})
        self.assertGreater(after.get("replica-1", 0), 10, after)
        self.assertEqual(after.get("replica-2", 1), 0, after)
        self.assertEqual(after.get("failed", 1), 0, after)
        totals = self.report.get("totals", {})
        self.assertEqual(totals.get("failed"), self.report.get("failed_around_kill"), totals)


if __name__ == "__main__":
    harness.main()
