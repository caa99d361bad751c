#!/usr/bin/env python3
"""tls=permissive on an ingress (App Mesh's PERMISSIVE listener TLS mode): TLS and
plaintext clients on one port, each served; plaintext counted apart and flagged in the
access log; strict (the default) still drops plaintext. protocol=tcp, protocol=http, and
h2c prior knowledge on a permissive HTTP port."""

import json
import os
import subprocess

import harness
from harness import LOOPBACK, SERVICE
import scripted_upstream as su


class PermissiveTcpTest(harness.PkiCase):
    def test_tls_and_plaintext_clients_on_one_port(self):
        app = self.start_echo_app()
        ingress, port = self.start_ingress(app, self.cert, self.key, options="tls=permissive")
        payload = os.urandom(64 * 1024)
        count, digest, ending = harness.echo_round_trip(port, payload)
        self.assertEqual((count, ending), (len(payload), "eof"), self.diag())
        self.assertEqual(harness.tls_echo(port, self.ca, b"over tls"), b"over tls")
        self.assertEqual(ingress.stat("ringside_listener_plaintext_cx_total"), 1)
        self.assertEqual(ingress.stat("ringside_listener_tls_handshake_success_total"), 1)

    def test_strict_is_the_default_and_drops_plaintext(self):
        app = self.start_echo_app()
        ingress, port = self.start_ingress(app, self.cert, self.key)
        count, _, ending = harness.echo_round_trip(port, b"hello in plaintext\n")
        self.assertEqual(count, 0)
        self.assertIn(ending, ("eof", "reset"))
        self.assertEqual(ingress.stat("ringside_listener_plaintext_cx_total"), 0)


class PermissiveHttpTest(harness.PkiCase):
    def setUp(self):
        super().setUp()
        self.up = su.ScriptedUpstream(su.serve(su.echo()))
        self.addCleanup(self.up.close)
        self.log = os.path.join(self.workdir, "access.log")
        self.ingress, self.port = self.start_ingress(
            self.up.port, self.cert, self.key, options="protocol=http,tls=permissive",
            extra=["--access-log", self.log, "--access-log-format", "json"])

    def entries(self, n):
        def read():
            if not os.path.exists(self.log):
                return []
            with open(self.log) as f:
                return [json.loads(line) for line in f if line.strip()]
        harness.wait_until(lambda: len(read()) >= n, timeout=5)
        return read()

    def test_plaintext_and_tls_requests_are_both_served_and_told_apart(self):
        status, body = harness.http_get(self.port, "/plain")
        self.assertEqual(status, 200, body)
        seen = dict((k.lower(), v) for k, v in json.loads(body)["headers"])
        self.assertEqual(seen.get("x-forwarded-proto"), "http")
        ctx = harness.tls_client_context(self.ca)
        with harness.connect(self.port) as raw:
            with ctx.wrap_socket(raw, server_hostname=SERVICE) as tls:
                tls.sendall(b"GET /tls HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n")
                data = b""
                while True:
                    chunk = tls.recv(65536)
                    if not chunk:
                        break
                    data += chunk
        head, _, tls_body = data.partition(b"\r\n\r\n")
        self.assertTrue(head.startswith(b"HTTP/1.1 200"), head)
        seen = dict((k.lower(), v) for k, v in json.loads(tls_body)["headers"])
        self.assertEqual(seen.get("x-forwarded-proto"), "https")
        by_path = {e["path"]: e for e in self.entries(2)}
        self.assertEqual(by_path["/plain"]["downstream_tls"], False)
        self.assertEqual(by_path["/tls"]["downstream_tls"], True)
        self.assertEqual(self.ingress.stat("ringside_listener_plaintext_cx_total"), 1)

    def test_h2c_prior_knowledge_on_a_permissive_port(self):
        curl = harness.require_tool("curl")
        done = subprocess.run([curl, "-sS", "--max-time", "10", "--http2-prior-knowledge",
                               "-o", "/dev/null", "-w", "%{http_version} %{http_code}",
                               f"http://{LOOPBACK}:{self.port}/h2c"],
                              capture_output=True, timeout=30)
        self.assertEqual(done.stdout.decode(), "2 200", done.stderr.decode() + self.diag())
        (entry,) = self.entries(1)
        self.assertEqual((entry["protocol"], entry["downstream_tls"]), ("HTTP/2", False))

    def test_a_tls_client_still_negotiates_h2(self):
        curl = harness.require_tool("curl")
        done = subprocess.run([curl, "-sS", "--max-time", "10", "--http2", "--cacert", self.ca,
                               "--resolve", f"{SERVICE}:{self.port}:{LOOPBACK}", "-o",
                               "/dev/null", "-w", "%{http_version} %{http_code}",
                               f"https://{SERVICE}:{self.port}/h2"],
                              capture_output=True, timeout=30)
        self.assertEqual(done.stdout.decode(), "2 200", done.stderr.decode() + self.diag())
        self.assertEqual(self.ingress.stat("ringside_listener_plaintext_cx_total"), 0)


if __name__ == "__main__":
    harness.main()
