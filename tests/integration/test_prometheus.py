"""/stats as Prometheus sees it: `promtool check metrics` on the live output of an HTTP
egress and ingress (every family: listener, worker, HTTP, cluster, certificate), and a
real Prometheus server (Debian's package) scraping both sidecars, queried through its
HTTP API after requests went through, with the shipped alerting rules loaded."""

import json
import os
import subprocess
import urllib.parse
import urllib.request

import harness
from harness import LOOPBACK, SERVICE, listener_label

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RULES = os.path.join(REPO, "deploy", "prometheus", "ringside-alerts.yml")
REQUESTS = 5


class PrometheusCase(harness.PkiCase):
    def start_chain_with_traffic(self):
        """plaintext client -> HTTP egress -TLS-> HTTP ingress -> app, REQUESTS requests
        sent. Returns (ingress, egress, egress port)."""
        app_port = self.start_http_app()
        ingress, ingress_port = self.start_ingress(app_port, self.cert, self.key,
                                                   options="protocol=http")
        egress, egress_port = self.start_egress([ingress_port], self.ca,
                                                options="protocol=http")
        for i in range(REQUESTS):
            status, _ = harness.http_get(egress_port, f"/r{i}", host=SERVICE)
            self.assertEqual(status, 200, self.diag())
        return ingress, egress, egress_port

    def stats_text(self, proc):
        status, body = proc.admin_request("GET", "/stats")
        self.assertEqual(status, 200, body[:300])
        return body


class PromtoolCheckMetricsTest(PrometheusCase):
    def test_live_stats_pass_promtool_check_metrics(self):
        promtool = harness.require_tool("promtool")
        ingress, egress, _ = self.start_chain_with_traffic()
        for proc in (ingress, egress):
            text = self.stats_text(proc)
            # The families a clean check must cover are there: certificates on the
            # ingress, HTTP per service and the cluster on the egress.
            for family in ("ringside_listener_cx_total", "ringside_worker_loop_iterations_total",
                           "ringside_http_listener_requests_total",
                           "ringside_http_listener_target_response_time_seconds_bucket"):
                self.assertIn(f"\n{family}", text, f"{proc.name}: {family} missing")
            if proc is ingress:
                self.assertIn("\nringside_cert_expiry_seconds ", text)
            else:
                self.assertIn("\nringside_cluster_endpoints_ejected{", text)
            result = subprocess.run([promtool, "check", "metrics"], input=text,
                                    capture_output=True, text=True, timeout=30)
            self.assertEqual((result.returncode, result.stdout + result.stderr), (0, ""),
                             f"{proc.name}: promtool check metrics on /stats")


class PrometheusServerTest(PrometheusCase):
    def start_prometheus(self, targets):
        """Prometheus on 127.0.0.1 scraping targets' /stats every 500 ms, with the shipped
        rules, its TSDB in the test's temporary directory. Returns its port."""
        prometheus = harness.require_tool("prometheus")
        port = harness.free_port()
        config = os.path.join(self.workdir, "prometheus.yml")
        with open(config, "w") as f:
            # JSON is YAML: no YAML writer needed.
            json.dump({
                "global": {"scrape_interval": "500ms", "scrape_timeout": "400ms",
                           "evaluation_interval": "1s"},
                "rule_files": [RULES],
                "scrape_configs": [{
                    "job_name": "ringside",
                    "metrics_path": "/stats",
                    "static_configs": [{"targets": targets}],
                }],
            }, f)
        self.prometheus = self.start("prometheus", [
            prometheus, f"--config.file={config}",
            f"--storage.tsdb.path={os.path.join(self.workdir, 'tsdb')}",
            f"--web.listen-address={LOOPBACK}:{port}", "--log.level=warn"])
        ready = harness.wait_until(
            lambda: self.prometheus.poll() is not None or self.http_status(port, "/-/ready") == 200,
            timeout=30, interval=0.1)
        if self.prometheus.poll() is not None or not ready:
            self.fail_with_diag("prometheus did not become ready")
        return port

    def http_status(self, port, path):
        try:
            with urllib.request.urlopen(f"http://{LOOPBACK}:{port}{path}", timeout=2) as r:
                return r.status
        except OSError:
            return None

    def api(self, port, path, **params):
        url = f"http://{LOOPBACK}:{port}/api/v1/{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        with urllib.request.urlopen(url, timeout=5) as r:
            body = json.load(r)
        self.assertEqual(body.get("status"), "success", body)
        return body["data"]

    def query_value(self, port, promql):
        """The single sample of an instant query, or None when it returned none."""
        result = self.api(port, "query", query=promql)["result"]
        if len(result) != 1:
            return None
        return float(result[0]["value"][1])

    def wait_query(self, port, promql, expected, timeout=20):
        last = [None]

        def check():
            last[0] = self.query_value(port, promql)
            return last[0] == expected

        if not harness.wait_until(check, timeout=timeout, interval=0.25):
            self.fail_with_diag(f"Prometheus: {promql} = {last[0]}, expected {expected}")

    def test_prometheus_scrapes_and_answers_queries(self):
        ingress, egress, egress_port = self.start_chain_with_traffic()
        port = self.start_prometheus([f"{LOOPBACK}:{ingress.admin_port}",
                                      f"{LOOPBACK}:{egress.admin_port}"])
        egress_instance = f"{LOOPBACK}:{egress.admin_port}"
        label = listener_label("egress", egress_port)

        # Both scrapes succeed, and the counters of the requests sent arrive as sent.
        self.wait_query(port, 'sum(up{job="ringside"})', 2.0)
        self.wait_query(port, f'ringside_http_listener_requests_total{{listener="{label}"}}',
                        float(REQUESTS))
        self.wait_query(port, f'ringside_http_service_http_code_target_2xx_total'
                              f'{{instance="{egress_instance}",service="{SERVICE}"}}',
                        float(REQUESTS))
        self.wait_query(port, f'ringside_http_service_target_response_time_seconds_count'
                              f'{{instance="{egress_instance}",service="{SERVICE}"}}',
                        float(REQUESTS))
        # More requests: the next scrapes see them.
        for i in range(REQUESTS):
            status, _ = harness.http_get(egress_port, f"/again{i}", host=SERVICE)
            self.assertEqual(status, 200)
        self.wait_query(port, f'ringside_http_listener_requests_total{{listener="{label}"}}',
                        float(2 * REQUESTS))
        self.wait_query(port, f'ringside_cluster_endpoints{{service="{SERVICE}"}}', 1.0)

        # The shipped rules load and evaluate without error; none fires on a healthy pair.
        def rules_evaluated():
            groups = self.api(port, "rules")["groups"]
            rules = [r for g in groups for r in g["rules"]]
            evaluated = all(r.get("lastEvaluation", "").startswith("2") for r in rules)
            return rules if len(rules) == 8 and evaluated else None

        rules = harness.wait_until(rules_evaluated, timeout=20, interval=0.25)
        if not rules:
            self.fail_with_diag("Prometheus did not evaluate the 8 shipped rules")
        self.assertEqual([r["name"] for r in rules if r["health"] != "ok"], [],
                         [r.get("lastError") for r in rules])
        self.assertEqual([r["name"] for r in rules if r["state"] != "inactive"], [])


if __name__ == "__main__":
    harness.main()
