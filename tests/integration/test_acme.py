"""ACME (RFC 8555) against a real pebble, the Let's Encrypt project's test server, with
its challenge validation on (PEBBLE_VA_ALWAYS_VALID unset; PEBBLE_VA_NOSLEEP=1 only skips
its artificial delays). Pebble resolves the service name through a dnsmasq started here
on a loopback address, and validates by connecting to 127.0.0.1 on the ports ringside
answers on: --acme-http-port for http-01, the ingress listener for tls-alpn-01.

The sidecar gets a certificate, serves it (openssl s_client -CAfile pebble's root,
fetched from pebble's management interface), renews it with no failed request, and
keeps it when an order fails its challenge; bad flags exit 2 naming the flag.

Every wait is for a condition with a deadline; every process is stopped by the harness."""

import http.server
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
import urllib.request

import harness
from harness import LOOPBACK, SERVICE
from test_rotation import EchoTraffic, RotationCase, cert_serial

DEADLINE_S = 30


def free_dns_port():
    """A port free for both UDP and TCP on LOOPBACK a moment ago."""
    while True:
        port = harness.free_port()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            try:
                s.bind((LOOPBACK, port))
                return port
            except OSError:
                continue


def port_free(port):
    """Whether a listener could bind port now (SO_REUSEADDR, as ringside binds)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((LOOPBACK, port))
            return True
        except OSError:
            return False


def port_open(port):
    try:
        with socket.create_connection((LOOPBACK, port), timeout=1):
            return True
    except OSError:
        return False


class TlsTraffic(EchoTraffic):
    """EchoTraffic over TLS to an ingress: a new connection (full handshake) each time, so
    each meets the certificate served at that moment."""

    def __init__(self, port, ca_file, threads=2):
        self.ca_file = ca_file
        super().__init__(port, threads)

    def _run(self):
        while not self._stop.is_set():
            try:
                got = harness.tls_echo(self.port, self.ca_file, b"y" * 500, timeout=10)
                if got != b"y" * 500:
                    self.failures.append(f"short answer: {len(got)} bytes")
            except (OSError, ssl.SSLError) as e:
                self.failures.append(str(e))
            self.requests += 1
            time.sleep(0.02)


class AcmeCase(RotationCase):
    """RotationCase gives served_serial (openssl s_client) and certs_json."""

    def setUp(self):
        super().setUp()
        self.pebble = harness.require_tool("pebble")
        self.dnsmasq = harness.require_tool("dnsmasq")
        # Pebble's own HTTPS certificate, from a CA of its own (--ca-trust).
        server_ca = self.pki.ca(label="pebble-server-ca")
        self.pebble_cert, self.pebble_key = self.pki.issue(server_ca, ["localhost"],
                                                           label="pebble-server")
        self.ca_trust = os.path.join(server_ca, "ca.pem")
        # The name pebble validates resolves to 127.0.0.1. dnsmasq binds UDP and TCP: a
        # port free for both a moment ago can still be taken, so a few ports are tried.
        for attempt in range(5):
            dns_port = free_dns_port()
            dns = self.start(f"dnsmasq-{attempt}", [
                self.dnsmasq, "--no-daemon", "--keep-in-foreground", f"--port={dns_port}",
                f"--listen-address={LOOPBACK}", "--bind-interfaces", "--no-resolv",
                "--no-hosts", "--conf-file=/dev/null", f"--address=/{SERVICE}/{LOOPBACK}",
                f"--user={os.getenv('USER') or 'root'}", "--pid-file="])
            harness.wait_until(lambda: dns.poll() is not None or
                               "started" in dns.stderr_text(), timeout=10)
            if dns.poll() is None and "started" in dns.stderr_text():
                break
        else:
            self.fail_with_diag("dnsmasq did not start")
        self.dns = f"{LOOPBACK}:{dns_port}"
        self.http_port = harness.free_port()
        self.ingress_port = harness.free_port()

    def start_pebble(self, http_port=None, tls_port=None, env=None):
        self.acme_port, self.mgmt_port = harness.free_port(), harness.free_port()
        config = os.path.join(self.workdir, "pebble.json")
        with open(config, "w") as f:
            json.dump({"pebble": {
                "listenAddress": f"{LOOPBACK}:{self.acme_port}",
                "managementListenAddress": f"{LOOPBACK}:{self.mgmt_port}",
                "certificate": self.pebble_cert, "privateKey": self.pebble_key,
                "httpPort": http_port or self.http_port,
                "tlsPort": tls_port or self.ingress_port,
                "ocspResponderURL": "", "externalAccountBindingRequired": False}}, f)
        environment = dict(os.environ, PEBBLE_VA_NOSLEEP="1", **(env or {}))
        environment.pop("PEBBLE_VA_ALWAYS_VALID", None)
        proc = self.start("pebble", [self.pebble, "-config", config, "-dnsserver", self.dns],
                          env=environment)
        if not harness.wait_until(lambda: proc.poll() is not None or
                                  (port_open(self.acme_port) and port_open(self.mgmt_port)),
                                  timeout=15) or proc.poll() is not None:
            self.fail_with_diag("pebble did not start")
        # The root pebble issues from (it makes a new one each start).
        context = ssl.create_default_context(cafile=self.ca_trust)
        with urllib.request.urlopen(f"https://localhost:{self.mgmt_port}/roots/0",
                                    context=context, timeout=10) as answer:
            root = answer.read()
        self.root = os.path.join(self.workdir, "pebble-root.pem")
        with open(self.root, "wb") as f:
            f.write(root)
        self.directory = f"https://localhost:{self.acme_port}/dir"
        return proc

    def start_sidecar(self, http01=True, renew="1h", wait_ready=True, extra=(), name="sidecar"):
        app = self.start_recording_app(echo=True)
        self.cert_dir = os.path.join(self.workdir, "certs")
        os.makedirs(self.cert_dir, exist_ok=True)
        args = ["--service-name", SERVICE,
                "--ingress", f"{LOOPBACK}:{self.ingress_port}={LOOPBACK}:{app.port}",
                "--acme-directory", self.directory, "--ca-trust", self.ca_trust,
                "--cert-dir", self.cert_dir, "--trust", self.root,
                "--cert-lifetime", "2h", "--cert-renew-after", renew,
                "--cert-renew-jitter", "0", *extra]
        if http01:
            args += ["--acme-http-port", f"{LOOPBACK}:{self.http_port}"]
        proc = self.start_ringside(args, name=name, wait_ready=False)
        if wait_ready and not harness.wait_until(
                lambda: proc.poll() is not None or proc.ready_status() == 200,
                timeout=DEADLINE_S):
            self.fail_with_diag("the sidecar did not become ready with an ACME certificate")
        if proc.poll() is not None:
            self.fail_with_diag("the sidecar exited")
        return proc

    def served_serial(self):
        return super().served_serial(self.ingress_port, ca=self.root)

    def issues_serves_and_renews(self, http01):
        self.start_pebble()
        proc = self.start_sidecar(http01=http01, renew="6s")
        first = self.served_serial()
        self.assertIsNotNone(first, "openssl s_client -CAfile pebble-root failed" + self.diag())
        key = os.path.join(self.cert_dir, "acme-account-key.pem")
        self.assertEqual(os.stat(key).st_mode & 0o777, 0o600)
        self.assertEqual(self.certs_json(proc)["source"], "acme")
        # tls-alpn-01: the start-up attempt, before the listeners run, is counted.
        failed = proc.stat("ringside_cert_rotations_failed_total")
        traffic = TlsTraffic(self.ingress_port, self.root)
        try:
            renewed = harness.wait_until(
                lambda: proc.stat("ringside_cert_rotations_total") >= 1, timeout=DEADLINE_S)
            self.assertTrue(renewed, "no renewal through ACME" + self.diag())
            second = harness.wait_until(
                lambda: (lambda s: s if s and s != first else None)(self.served_serial()),
                timeout=DEADLINE_S)
            self.assertIsNotNone(second, "the renewed certificate is not served" + self.diag())
        finally:
            traffic.stop()
        self.assertGreater(traffic.requests, 0)
        self.assertEqual(traffic.failures, [], self.diag())
        self.assertEqual(proc.stat("ringside_cert_rotations_failed_total"), failed, self.diag())
        self.assertEqual(failed, 0 if http01 else 1)
        return proc


class Http01Test(AcmeCase):
    def test_issues_serves_and_renews_through_http01(self):
        proc = self.issues_serves_and_renews(http01=True)
        self.assertIn("answering http-01 challenges", proc.stderr_text())

    def test_a_failed_challenge_is_refused_counted_and_the_certificate_kept(self):
        # No reuse of a valid authorization: every order meets a challenge.
        self.start_pebble(env={"PEBBLE_AUTHZREUSE": "0"})
        proc = self.start_sidecar(http01=True)
        first = self.served_serial()
        self.assertIsNotNone(first, self.diag())
        proc.signal(signal.SIGTERM)
        self.assertIsNotNone(proc.wait(timeout=DEADLINE_S), "the sidecar did not stop")
        # A killed io_uring process's sockets close a moment after it is reaped.
        self.assertTrue(harness.wait_until(lambda: port_free(self.ingress_port),
                                           timeout=DEADLINE_S), "the ingress port stays bound")
        # Restarted with the stored certificate, answering http-01 on a port pebble does
        # not ask: the next order's challenge fails.
        self.http_port = harness.free_port()
        proc = self.start_sidecar(http01=True, renew="3s", name="sidecar-again")
        self.assertIn("reusing the certificate", proc.stderr_text())
        self.assertTrue(harness.wait_until(
            lambda: proc.stat("ringside_cert_rotations_failed_total") >= 1, timeout=DEADLINE_S),
            "no failure counted" + self.diag())
        self.assertTrue(harness.wait_until(
            lambda: "challenge failed" in proc.stderr_text(), timeout=DEADLINE_S), self.diag())
        self.assertIn("challenge failed", self.certs_json(proc)["last_error"]["reason"])
        self.assertIn("keeping the current certificate", proc.stderr_text())
        self.assertEqual(self.served_serial(), first, "the certificate was not kept")
        self.assertEqual(proc.stat("ringside_cert_rotations_total"), 0)


class TlsAlpn01Test(AcmeCase):
    def test_issues_serves_and_renews_through_tls_alpn01(self):
        proc = self.issues_serves_and_renews(http01=False)
        self.assertIn("answered an ACME tls-alpn-01 validation", proc.stderr_text())
        self.assertNotIn("answering http-01", proc.stderr_text())


    def test_a_failed_challenge_is_refused_and_counted(self):
        # Pebble validates tls-alpn-01 on a port nobody serves.
        self.start_pebble(tls_port=harness.free_port())
        proc = self.start_sidecar(http01=False, wait_ready=False)
        self.assertTrue(harness.wait_until(
            lambda: "challenge failed" in proc.stderr_text(), timeout=DEADLINE_S), self.diag())
        self.assertGreaterEqual(proc.stat("ringside_cert_rotations_failed_total"), 2)
        self.assertIn("tls-alpn-01 challenge failed",
                      self.certs_json(proc)["last_error"]["reason"])
        self.assertEqual(proc.ready_status(), 503)


class FakeAcme:
    """An HTTPS ACME server that speaks just enough of RFC 8555 to misbehave on purpose
    (pebble cannot rate-limit or send garbage): `mode` picks the misbehaviour. Requests
    are recorded as (time, method, path). JWS signatures are not checked."""

    def __init__(self, cert, key):
        self.mode, self.requests = "ratelimited", []
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def answer(self, status, body=b"", content_type="application/json", headers=()):
                self.send_response(status)
                self.send_header("Replay-Nonce", f"nonce-{time.monotonic_ns()}")
                self.send_header("Content-Type", content_type)
                for name, value in headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                fake.requests.append((time.monotonic(), "GET", self.path))
                base = f"https://localhost:{fake.port}"
                if self.path == "/dir":
                    self.answer(200, json.dumps({"newNonce": base + "/nonce",
                                                 "newAccount": base + "/account",
                                                 "newOrder": base + "/order"}).encode())
                else:
                    self.answer(204)

            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                fake.requests.append((time.monotonic(), "POST", self.path))
                base = f"https://localhost:{fake.port}"
                problem = "application/problem+json"
                if self.path == "/account":
                    self.answer(201, b'{"status":"valid"}', headers=[("Location", base + "/acct/1")])
                elif self.path == "/order" and fake.mode == "ratelimited":
                    self.answer(429, json.dumps({
                        "type": "urn:ietf:params:acme:error:rateLimited",
                        "detail": "too many new orders recently"}).encode(), problem,
                        [("Retry-After", "2")])
                elif self.path == "/order" and fake.mode == "garbage":
                    self.answer(201, b'{"status": "pending", "authorizations": [',
                                headers=[("Location", base + "/order/1")])
                elif self.path == "/order":
                    self.answer(201, json.dumps({
                        "status": "pending", "authorizations": [base + "/authz/1"],
                        "finalize": base + "/finalize/1"}).encode(),
                        headers=[("Location", base + "/order/1")])
                elif self.path == "/authz/1":
                    polls = sum(1 for r in fake.requests if r[2] == "/authz/1")
                    challenge = {"type": "http-01", "url": base + "/chall/1", "token": "tok-1",
                                 "status": "pending"}
                    if polls < 4 or fake.mode == "stuck":
                        self.answer(200, json.dumps({"status": "pending",
                                                     "challenges": [challenge]}).encode(),
                                    headers=[("Retry-After", "1")])
                    else:
                        challenge["status"] = "invalid"
                        challenge["error"] = {"type": "urn:ietf:params:acme:error:connection",
                                              "detail": "nobody answered"}
                        self.answer(200, json.dumps({"status": "invalid",
                                                     "challenges": [challenge]}).encode())
                elif self.path == "/chall/1":
                    self.answer(200, b'{"status":"processing"}')
                else:
                    self.answer(404, b'{"type":"urn:ietf:params:acme:error:malformed"}', problem)

            def finish(self):
                super().finish()
                try:
                    self.connection.unwrap()  # close_notify: ringside's client insists
                except (OSError, ssl.SSLError):
                    pass

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer((LOOPBACK, 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def times(self, path):
        return [t for t, _, p in self.requests if p == path]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class BadServerTest(AcmeCase):
    def test_rate_limits_garbage_and_pending_authorizations(self):
        fake = FakeAcme(self.pebble_cert, self.pebble_key)
        self.addCleanup(fake.close)
        self.directory = f"https://localhost:{fake.port}/dir"
        # A certificate from an earlier run (issued by self.ca, trusted with --trust), due
        # for renewal 3 s after start: every renewal meets the misbehaving server.
        self.root = self.ca
        self.cert_dir = os.path.join(self.workdir, "certs")
        os.makedirs(self.cert_dir)
        cert, key = self.pki.issue(self.ca_dir, [SERVICE], label="stored")
        shutil.copy(cert, os.path.join(self.cert_dir, "cert.pem"))
        shutil.copy(key, os.path.join(self.cert_dir, "key.pem"))
        first = cert_serial(cert)
        proc = self.start_sidecar(http01=True, renew="3s")
        self.assertIn("reusing the certificate", proc.stderr_text())

        def refused(reason, count=2):
            failed = proc.stat("ringside_cert_rotations_failed_total")
            self.assertTrue(harness.wait_until(
                lambda: proc.stat("ringside_cert_rotations_failed_total") >= failed + count and
                reason in self.certs_json(proc)["last_error"]["reason"], timeout=DEADLINE_S),
                f"{reason}: {self.certs_json(proc)['last_error']}" + self.diag())
            self.assertIn(reason, proc.stderr_text())
            self.assertEqual(self.served_serial(), first, "the certificate was not kept")

        # Rate-limited: refused, and not asked again before its Retry-After.
        refused("urn:ietf:params:acme:error:rateLimited: too many new orders recently")
        self.assertIn("Retry-After: 2 s", proc.stderr_text())
        asked = fake.times("/order")
        gaps = [b - a for a, b in zip(asked, asked[1:])]
        self.assertTrue(gaps and all(g >= 1.9 for g in gaps), gaps)
        # Garbage JSON.
        fake.mode = "garbage"
        refused("invalid JSON")
        # A pending authorization is polled at its Retry-After, then fails its challenge.
        fake.mode = "pending"
        refused("the http-01 challenge failed: urn:ietf:params:acme:error:connection: "
                "nobody answered", count=1)
        polls = fake.times("/authz/1")[:5]
        gaps = [b - a for a, b in zip(polls[1:], polls[2:])]
        self.assertTrue(gaps and all(0.9 <= g < 3 for g in gaps), gaps)
        self.assertEqual(proc.stat("ringside_cert_rotations_total"), 0)
        # An authorization pending for good: a stop does not wait out the order's 60 s.
        fake.mode = "stuck"
        polled = len(fake.times("/authz/1"))
        self.assertTrue(harness.wait_until(lambda: len(fake.times("/authz/1")) >= polled + 2,
                                           timeout=DEADLINE_S), self.diag())
        stopping = time.monotonic()
        proc.signal(signal.SIGTERM)
        self.assertIsNotNone(proc.wait(timeout=DEADLINE_S), "the sidecar did not stop")
        self.assertLess(time.monotonic() - stopping, 5, self.diag())


class FlagsTest(AcmeCase):
    def test_bad_flags_exit_2_naming_the_flag(self):
        base = [harness.binary("ringside"), "--service-name", SERVICE, "--ingress",
                f"{LOOPBACK}:{harness.free_port()}={LOOPBACK}:9", "--cert-dir", self.workdir]
        directory = "https://localhost:14000/dir"
        for args, says in (
                (["--acme-directory", "http://localhost:14000/dir", "--ca-trust", self.ca_trust],
                 "--acme-directory"),
                (["--acme-directory", directory], "needs --ca-trust"),
                (["--acme-directory", directory, "--ca-trust", self.ca_trust,
                  "--ca-url", "https://localhost:1"], "--acme-directory"),
                (["--acme-directory", directory, "--ca-trust", self.ca_trust,
                  "--ca-cert", self.ca, "--ca-key", os.path.join(self.ca_dir, "ca.key")],
                 "--acme-directory"),
                (["--ca-cert", self.ca, "--ca-key", os.path.join(self.ca_dir, "ca.key"),
                  "--acme-http-port", "5002"], "--acme-http-port"),
                (["--acme-directory", directory, "--ca-trust", self.ca_trust,
                  "--acme-http-port", "99999"], "--acme-http-port")):
            done = subprocess.run(base + args, capture_output=True, timeout=20)
            self.assertEqual(done.returncode, 2, (args, done.stderr))
            self.assertIn(says.encode(), done.stderr, args)
            self.assertEqual(done.stderr.count(b"\n"), 1, done.stderr)


if __name__ == "__main__":
    harness.main()
