"""The alerting rules shipped in deploy/prometheus/ringside-alerts.yml: promtool checks
them (syntax, templates) and runs their unit tests
(tests/deploy/prometheus/ringside-alerts.test.yml: input series, alerts expected to fire
and not to fire). No ringside process is involved."""

import os
import subprocess
import unittest

import harness

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RULES = os.path.join(REPO, "deploy", "prometheus", "ringside-alerts.yml")
RULE_TESTS = os.path.join(REPO, "tests", "deploy", "prometheus", "ringside-alerts.test.yml")


class AlertRulesTest(unittest.TestCase):
    def promtool(self, *args):
        result = subprocess.run([harness.require_tool("promtool"), *args],
                                capture_output=True, text=True, timeout=60)
        self.assertEqual(result.returncode, 0,
                         f"promtool {' '.join(args)}:\n{result.stdout}{result.stderr}")
        return result.stdout

    def test_rules_check(self):
        out = self.promtool("check", "rules", RULES)
        self.assertIn("SUCCESS: 8 rules found", out)

    def test_rules_unit_tests(self):
        out = self.promtool("test", "rules", RULE_TESTS)
        self.assertIn("SUCCESS", out)

    def test_every_alert_has_a_unit_test(self):
        with open(RULES) as f:
            alerts = {line.split(":", 1)[1].strip() for line in f
                      if line.strip().startswith("- alert:")}
        with open(RULE_TESTS) as f:
            tested = {line.split(":", 1)[1].strip() for line in f
                      if line.strip().startswith("alertname:")}
        self.assertEqual(len(alerts), 8)
        self.assertEqual(alerts - tested, set(), "alerts without a promtool unit test")


if __name__ == "__main__":
    harness.main()
