"""Rotation soak measurements for docs/rotation.md (not part of `meson test`: minutes of
load). Run from tests/integration with the binaries of a release build:

    RINGSIDE_BUILD_ROOT=$PWD/../../build-rot python3 test_rotation_soak.py [phase...]

phases: load (>= 60 rotations under sustained load through egress and ingress, zero
errors), rate (handshake rate with and without rotating every second), churn (1000
forced rotations under load: RSS, fds and live generations back to baseline). Without
arguments all three run. Prints one JSON line per phase and exits non-zero when a
phase's hard requirement (zero failed handshakes/requests, generations back to 1, fds
back to baseline) does not hold. RSS is reported, and compared with a 10% margin.
"""

import json
import os
import sys
import threading
import time

import harness
from harness import LOOPBACK, SERVICE, CLIENT_SERVICE


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Soak(harness.IntegrationCase):
    def setUp(self):
        super().setUp()
        pki = harness.Pki(self.workdir)
        self.ca_dir = pki.ca()
        self.ca = os.path.join(self.ca_dir, "ca.pem")
        self.ca_key = os.path.join(self.ca_dir, "ca.key")
        self.results = {}

    def issuer_args(self, service, lifetime, renew, cert_dir):
        os.makedirs(cert_dir, exist_ok=True)
        return ["--service-name", service, "--ca-cert", self.ca, "--ca-key", self.ca_key,
                "--cert-dir", cert_dir, "--trust", self.ca, "--cert-lifetime", lifetime,
                "--cert-renew-after", renew]

    def start_pair(self, lifetime="10s", renew="1s", threads=2):
        """app <- ingress (local issuer; listener A plain TLS, B mTLS) <- egress (local
        issuer, client certificate) : both rotate on the same schedule."""
        app_port = self.start_http_app()
        a, b = harness.free_port(), harness.free_port()
        ingress = self.start_ringside(
            ["--ingress", f"{LOOPBACK}:{a}={LOOPBACK}:{app_port}",
             "--ingress", f"{LOOPBACK}:{b}={LOOPBACK}:{app_port},client-cert=require",
             *self.issuer_args(SERVICE, lifetime, renew, os.path.join(self.workdir, "in"))],
            name="ingress", threads=threads)
        e = harness.free_port()
        egress = self.start_ringside(
            ["--egress", f"{LOOPBACK}:{e}={SERVICE}", "--upstream", f"{SERVICE}={LOOPBACK}:{b}",
             *self.issuer_args(CLIENT_SERVICE, lifetime, renew, os.path.join(self.workdir, "eg"))],
            name="egress", threads=threads)
        return ingress, a, egress, e

    def bench(self, name, url, *args):
        out = os.path.join(self.workdir, f"{name}.json")
        proc = self.start(name, [harness.binary("ringside-bench"), url, *args, "--json", out])
        return proc, out

    def finish(self, proc, out, timeout=200):
        status = proc.wait(timeout)
        if status is None:
            self.fail_with_diag(f"{proc.name} did not finish")
        with open(out) as f:
            return json.load(f)

    def errors(self, report):
        errs = report.get("errors", {})
        return sum(errs.values()) if isinstance(errs, dict) else errs

    def certs(self, proc):
        return json.loads(proc.admin_request("GET", "/certs")[1])

    # ---------------------------------------------------------------------------------

    def test_load(self):
        if not want("load"):
            self.skipTest("phase not selected")
        ingress, a, egress, e = self.start_pair()
        duration = os.environ.get("SOAK_DURATION", "70s")
        runs = [
            self.bench("keepalive", f"https://{LOOPBACK}:{a}/", "-c", "20", "-d", duration,
                       "--cacert", self.ca, "--sni", SERVICE),
            self.bench("handshakes", f"https://{LOOPBACK}:{a}/", "--mode", "handshake", "-c", "4",
                       "-d", duration, "--cacert", self.ca, "--sni", SERVICE),
            self.bench("egress-new", f"http://{LOOPBACK}:{e}/", "--mode", "handshake", "-c", "4",
                       "-d", duration),
            self.bench("egress-keepalive", f"http://{LOOPBACK}:{e}/", "-c", "4", "-d", duration),
        ]
        # Handshakes still in flight when the clients stop at the end are abandoned by the
        # clients and counted by the ingress as failed ("downstream closed the connection
        # during the TLS handshake"): the failure counters are therefore read while the
        # load still runs, 3 s before its end, and must be zero there.
        seconds = float(duration.rstrip("s"))
        time.sleep(max(seconds - 3, 1))
        during = {p.name: p.stat("ringside_listener_tls_handshake_failure_total")
                  for p in (ingress, egress)}
        reports = {proc.name: self.finish(proc, out) for proc, out in runs}
        result = {"phase": "load", "tls_handshake_failure_3s_before_end": during}
        for name, r in reports.items():
            result[name] = {"requests": r["requests"], "per_s": round(r["requests_per_s"]),
                            "errors": self.errors(r), "handshakes": r.get("handshakes")}
        for proc in (ingress, egress):
            stats = proc.stats()
            result[proc.name] = {
                "rotations": proc.stat("ringside_cert_rotations_total", stats=stats),
                "rotations_failed": proc.stat("ringside_cert_rotations_failed_total", stats=stats),
                "tls_handshake_failure": proc.stat("ringside_listener_tls_handshake_failure_total",
                                                   stats=stats),
                "generations_live": proc.stat("ringside_tls_generations_live", stats=stats),
                "handshake_log": [line[25:] for line in proc.stderr_text().splitlines()
                                  if "handshake" in line][:5],
            }
        print(json.dumps(result), flush=True)
        for name, r in result.items():
            if isinstance(r, dict) and "errors" in r:
                self.assertEqual(r["errors"], 0, name)
        for proc in ("ingress", "egress"):
            self.assertGreaterEqual(result[proc]["rotations"], 60)
            self.assertEqual(result[proc]["rotations_failed"], 0)
            self.assertEqual(during[proc], 0)
            # After the end: only handshakes the clients abandoned when they stopped (at
            # most one per handshake-mode connection).
            self.assertLessEqual(result[proc]["tls_handshake_failure"], 8)
            for line in result[proc]["handshake_log"]:
                self.assertIn("downstream closed the connection during the TLS handshake", line)

    def test_rate(self):
        if not want("rate"):
            self.skipTest("phase not selected")
        rounds = int(os.environ.get("SOAK_ROUNDS", "3"))
        duration = os.environ.get("SOAK_RATE_DURATION", "20s")
        rates = {"rotating": [], "steady": []}
        for i in range(rounds):
            for mode, (lifetime, renew) in (("steady", ("7d", "5d")), ("rotating", ("10s", "1s"))):
                app_port = self.start_http_app(name=f"app-{mode}-{i}")
                port = harness.free_port()
                proc = self.start_ringside(
                    ["--ingress", f"{LOOPBACK}:{port}={LOOPBACK}:{app_port}",
                     *self.issuer_args(SERVICE, lifetime, renew,
                                       os.path.join(self.workdir, f"{mode}-{i}"))],
                    name=f"ingress-{mode}-{i}")
                run = self.bench(f"rate-{mode}-{i}", f"https://{LOOPBACK}:{port}/", "--mode",
                                 "handshake", "-c", "16", "-d", duration, "--cacert", self.ca,
                                 "--sni", SERVICE)
                r = self.finish(*run)
                stats = proc.stats()
                rotations = proc.stat("ringside_cert_rotations_total", stats=stats)
                failed = proc.stat("ringside_cert_rotations_failed_total", stats=stats)
                rates[mode].append((round(r["requests_per_s"]), rotations))
                proc.stop()
                # What makes the two rates comparable: both runs made handshakes without
                # an error, the steady one never rotated and the rotating one did. The
                # rates themselves are measurements for docs/rotation.md, not asserted.
                what = f"{mode} run {i}"
                self.assertEqual(self.errors(r), 0, what)
                self.assertGreater(r["requests"], 0, what)
                self.assertEqual(failed, 0, what)
                if mode == "steady":
                    self.assertEqual(rotations, 0, what)
                else:
                    self.assertGreater(rotations, 0, what)
        steady = sum(x for x, _ in rates["steady"]) / rounds
        rotating = sum(x for x, _ in rates["rotating"]) / rounds
        print(json.dumps({"phase": "rate", "runs": rates, "steady_mean": round(steady),
                          "rotating_mean": round(rotating),
                          "ratio": round(rotating / steady, 4)}), flush=True)

    def test_churn(self):
        if not want("churn"):
            self.skipTest("phase not selected")
        count = int(os.environ.get("SOAK_ROTATIONS", "1000"))
        ingress, a, egress, e = self.start_pair(lifetime="7d", renew="5d")
        stop = threading.Event()

        def rotate(n):
            for proc in (ingress, egress):
                before = self.certs(proc)["generation"]
                for _ in range(n):
                    status, body = proc.admin_request("POST", "/rotate")
                    self.assertEqual(status, 202, f"{proc.name}: POST /rotate: {body}")
                    target = before + 1
                    self.assertTrue(
                        harness.wait_until(lambda: self.certs(proc)["generation"] >= target,
                                           timeout=10, interval=0.002),
                        f"{proc.name}: generation {target} never published" + self.diag())
                    before = target
                    if stop.is_set():
                        return

        def load(seconds):
            return [
                self.bench(f"churn-ka-{seconds}-{time.monotonic_ns()}", f"https://{LOOPBACK}:{a}/",
                           "-c", "8", "-d", f"{seconds}s", "--cacert", self.ca, "--sni", SERVICE),
                self.bench(f"churn-hs-{seconds}-{time.monotonic_ns()}", f"http://{LOOPBACK}:{e}/",
                           "--mode", "handshake", "-c", "4", "-d", f"{seconds}s"),
            ]

        def settle(proc):
            self.assertTrue(
                harness.wait_until(lambda: proc.stat("ringside_tls_generations_live") == 1,
                                   timeout=10),
                f"{proc.name}: old generations never reclaimed" + self.diag())
            time.sleep(1)

        # Warm-up: the allocator's pools and the workers' slot tables reach their size.
        warm = load(8)
        rotate(50)
        for run in warm:
            self.finish(*run)
        for proc in (ingress, egress):
            settle(proc)
        base = {p.name: (rss_kb(p.pid), p.fd_count()) for p in (ingress, egress)}
        started = time.monotonic()
        runs = load(int(os.environ.get("SOAK_CHURN_LOAD", "40")))
        rotate(count)
        elapsed = time.monotonic() - started
        errors = 0
        for run in runs:
            errors += self.errors(self.finish(*run))
        for proc in (ingress, egress):
            settle(proc)
        after = {p.name: (rss_kb(p.pid), p.fd_count()) for p in (ingress, egress)}
        live = {p.name: p.stat("ringside_tls_generations_live") for p in (ingress, egress)}
        rotations = {p.name: p.stat("ringside_cert_rotations_total") for p in (ingress, egress)}
        # SIGTERM: a clean drain exits 0; under ASan, LeakSanitizer makes it non-zero if
        # anything (a generation, a context, a session) leaked.
        exits = {}
        for proc in (ingress, egress):
            proc.signal(15)
            exits[proc.name] = proc.wait(60)
        print(json.dumps({"phase": "churn", "rotations_each": count, "seconds": round(elapsed, 1),
                          "rotations_total": rotations, "baseline_rss_kb_fds": base,
                          "after_rss_kb_fds": after, "generations_live": live,
                          "load_errors": errors, "exit_status": exits}), flush=True)
        self.assertEqual(errors, 0)
        # ASan keeps freed memory in quarantine, so RSS is only compared when asked
        # (SOAK_RSS_MARGIN=0 turns the comparison off).
        margin = float(os.environ.get("SOAK_RSS_MARGIN", "0.10"))
        for name in base:
            self.assertEqual(live[name], 1, name)
            self.assertEqual(after[name][1], base[name][1], f"{name}: fds")
            if margin > 0:
                self.assertLess(after[name][0], base[name][0] * (1 + margin), f"{name}: RSS")
            self.assertEqual(exits[name], 0, f"{name}: exit status (LeakSanitizer?)")


def want(phase):
    return not PHASES or phase in PHASES


PHASES = [a for a in sys.argv[1:] if a in ("load", "rate", "churn")]

if __name__ == "__main__":
    sys.argv = [sys.argv[0]] + [a for a in sys.argv[1:] if a not in ("load", "rate", "churn")]
    harness.main()
