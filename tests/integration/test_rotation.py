"""Certificate rotation in the running binary, seen by real peers: openssl s_client reads
the serial each ingress serves, a real cfssl server signs CSRs, and ringside sidecars
(egress -> ingress) carry traffic while the CAs roll over.

Files: a new pair written by atomic rename or by a Kubernetes ..data symlink swap is
served; bad pairs never are (and are counted). Local issuer: certificates keep being
renewed with --cert-lifetime 10s --cert-renew-after 1s, stored 0600, reused on restart;
POST /rotate. Remote CA: cfssl signs; with cfssl down the certificate is kept, failures
are counted and retried, and renewal resumes when it is back. Trust rollover: no failed
request or handshake at any step.

Every wait is for a condition, with a deadline generous enough for a loaded machine or
a sanitizer build: how fast a rotation lands is for benchmarks to say, not these tests
(STYLE.md, practice 12)."""

import json
import os
import re
import shutil
import socket
import stat
import subprocess
import threading
import time

import harness
from harness import LOOPBACK, SERVICE, CLIENT_SERVICE, listener_label


def write_atomically(path, data):
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.rename(tmp, path)


def read(path):
    with open(path, "rb") as f:
        return f.read()


def cert_serial(path):
    done = subprocess.run(["openssl", "x509", "-in", path, "-noout", "-serial"],
                          capture_output=True, timeout=20)
    return done.stdout.decode().strip().split("=")[-1].lower()


class EchoTraffic:
    """Client threads doing 2000-byte echo round trips through port until stop(); every
    short answer, unclean ending or socket error is kept in failures."""

    def __init__(self, port, threads=3):
        self.port, self.failures, self.requests = port, [], 0
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]
        for t in self._threads:
            t.start()

    def _run(self):
        while not self._stop.is_set():
            try:
                got, _, ending = harness.echo_round_trip(self.port, b"x" * 2000, timeout=10)
                if got != 2000 or ending != "eof":
                    self.failures.append((got, ending))
            except OSError as e:
                self.failures.append(str(e))
            self.requests += 1

    def stop(self):
        self._stop.set()
        for t in self._threads:
            t.join(timeout=20)


# How long a test waits for something that should happen (a rotation served, a counter
# moving) before it calls it a failure. Not a claim about speed.
DEADLINE_S = 20


class RotationCase(harness.PkiCase):
    def setUp(self):
        super().setUp()
        self.openssl = harness.require_tool("openssl")

    def served_serial(self, port, ca=None):
        """The serial of the certificate an ingress serves, as openssl s_client sees it
        after verifying it (None when the handshake or verification fails)."""
        argv = [self.openssl, "s_client", "-connect", f"{LOOPBACK}:{port}", "-servername",
                SERVICE, "-CAfile", ca or self.ca, "-verify_hostname", SERVICE,
                "-verify_return_error"]
        try:
            done = subprocess.run(argv, input=b"", capture_output=True, timeout=20)
        except subprocess.TimeoutExpired:
            return None
        if done.returncode != 0:
            return None
        x509 = subprocess.run([self.openssl, "x509", "-noout", "-serial"], input=done.stdout,
                              capture_output=True, timeout=20)
        match = re.search(r"serial=([0-9A-Fa-f]+)", x509.stdout.decode())
        return match.group(1).lower().lstrip("0") if match else None

    def wait_for_serial(self, port, serial, timeout=DEADLINE_S, ca=None):
        serial = serial.lstrip("0")
        return harness.wait_until(lambda: self.served_serial(port, ca) == serial,
                                  timeout=timeout, interval=0.1)

    def certs_json(self, proc):
        status, body = proc.admin_request("GET", "/certs")
        self.assertEqual(status, 200, body)
        return json.loads(body)

    def new_pair(self, ca_dir=None, sans=(SERVICE,), label="leaf"):
        cert, key = self.pki.issue(ca_dir or self.ca_dir, list(sans), label=label)
        return read(cert), read(key), cert_serial(cert)


class FileSourceTest(RotationCase):
    def setUp(self):
        super().setUp()
        self.certdir = os.path.join(self.workdir, "certs")
        os.makedirs(self.certdir)
        shared_cert, shared_key = self.cert, self.key
        self.cert = os.path.join(self.certdir, "cert.pem")
        self.key = os.path.join(self.certdir, "key.pem")
        shutil.copy(shared_cert, self.cert)
        shutil.copy(shared_key, self.key)
        self.first_serial = cert_serial(self.cert)
        self.app = self.start_recording_app(echo=True)
        self.ingress, self.port = self.start_ingress(self.app.port, self.cert, self.key,
                                                     trust=self.ca)

    def test_atomic_rename_is_served(self):
        self.assertEqual(self.served_serial(self.port), self.first_serial.lstrip("0"))
        cert, key, serial = self.new_pair()
        write_atomically(self.key, key)
        write_atomically(self.cert, cert)
        self.assertTrue(self.wait_for_serial(self.port, serial),
                        "the new certificate was not served" + self.diag())
        certs = self.certs_json(self.ingress)
        self.assertEqual(certs["serial"].lstrip("0"), serial.lstrip("0"))
        self.assertEqual(certs["generation"], 2)
        self.assertEqual(certs["sans"], [SERVICE])
        self.assertIsNone(certs["last_error"])
        self.assertEqual(self.ingress.stat("ringside_cert_rotations_total"), 1)
        # Old generations are reclaimed once the workers pass their quiescent points.
        self.assertTrue(harness.wait_until(
            lambda: self.ingress.stat("ringside_tls_generations_live") == 1,
            timeout=DEADLINE_S))
        # The same pair pushed again is a no-op.
        write_atomically(self.cert, cert)
        time.sleep(0.8)
        self.assertEqual(self.certs_json(self.ingress)["generation"], 2)
        self.assertEqual(self.ingress.stat("ringside_cert_rotations_failed_total"), 0)

    def test_bad_pairs_are_never_served(self):
        good_cert, good_key = read(self.cert), read(self.key)
        other_ca = self.pki.ca(label="other-ca")
        mismatched_key = self.new_pair(label="other-key")[1]
        expired = self.pki.issue_with_openssl(self.ca_dir, [SERVICE], label="expired",
                                              start="20200101000000Z", end="20200201000000Z")
        future = self.pki.issue_with_openssl(self.ca_dir, [SERVICE], label="future",
                                             start="20990101000000Z", end="20990201000000Z")
        wrong_san = self.new_pair(sans=("other.sample-namespace",), label="wrong-san")
        other_chain = self.new_pair(ca_dir=other_ca, label="other-chain")
        encrypted = subprocess.run(
            [self.openssl, "pkcs8", "-topk8", "-v2", "aes-256-cbc", "-passout", "pass:x", "-in",
             self.key], capture_output=True, timeout=20).stdout
        self.assertIn(b"ENCRYPTED", encrypted)
        cases = {
            "key that does not match": (good_cert, mismatched_key),
            "expired": (read(expired[0]), read(expired[1])),
            "not yet valid": (read(future[0]), read(future[1])),
            "SAN without the service name": wrong_san[:2],
            "chain not reaching --trust": other_chain[:2],
            "garbage PEM": (b"-----BEGIN CERTIFICATE-----\nZ2FyYmFnZQ==\n-----END CERTIFICATE-----\n",
                            good_key),
            "encrypted key": (good_cert, encrypted),
            "truncated certificate": (good_cert[:len(good_cert) // 2], good_key),
            "empty files": (b"", b""),
        }
        failed = 0
        for what, (cert, key) in cases.items():
            write_atomically(self.key, key)
            write_atomically(self.cert, cert)
            failed += 1
            ok = harness.wait_until(
                lambda: self.ingress.stat("ringside_cert_rotations_failed_total") >= failed,
                timeout=DEADLINE_S)
            self.assertTrue(ok, f"{what}: not counted as a failed rotation" + self.diag())
            self.assertEqual(self.served_serial(self.port), self.first_serial.lstrip("0"), what)
            certs = self.certs_json(self.ingress)
            self.assertEqual(certs["generation"], 1, what)
            self.assertIsNotNone(certs["last_error"], what)
        self.assertIn("rotation refused", self.ingress.stderr_text())
        self.assertEqual(self.ingress.stat("ringside_cert_rotations_total"), 0)

    def test_kubernetes_symlink_swap(self):
        # The projected-volume layout: cert.pem -> ..data/cert.pem, ..data -> ..v1
        volume = os.path.join(self.workdir, "volume")
        os.makedirs(os.path.join(volume, "..v1"))
        shutil.copy(self.cert, os.path.join(volume, "..v1", "cert.pem"))
        shutil.copy(self.key, os.path.join(volume, "..v1", "key.pem"))
        os.symlink("..v1", os.path.join(volume, "..data"))
        for name in ("cert.pem", "key.pem"):
            os.symlink(os.path.join("..data", name), os.path.join(volume, name))
        ingress, port = self.start_ingress(self.app.port, os.path.join(volume, "cert.pem"),
                                           os.path.join(volume, "key.pem"), name="k8s-ingress")
        for version in ("..v2", "..v3"):
            cert, key, serial = self.new_pair(label=version.strip("."))
            os.makedirs(os.path.join(volume, version))
            with open(os.path.join(volume, version, "cert.pem"), "wb") as f:
                f.write(cert)
            with open(os.path.join(volume, version, "key.pem"), "wb") as f:
                f.write(key)
            os.symlink(version, os.path.join(volume, "..data_tmp"))
            os.rename(os.path.join(volume, "..data_tmp"), os.path.join(volume, "..data"))
            self.assertTrue(self.wait_for_serial(port, serial),
                            f"{version}: the swapped certificate was not served" + self.diag())
        self.assertEqual(ingress.stat("ringside_cert_rotations_total"), 2)

    def test_post_rotate_reloads_files(self):
        cert, key, serial = self.new_pair()
        # Written in place (no event we could miss matters: POST /rotate reloads anyway).
        write_atomically(self.key, key)
        write_atomically(self.cert, cert)
        status, _ = self.ingress.admin_request("POST", "/rotate")
        self.assertEqual(status, 202)
        self.assertTrue(self.wait_for_serial(self.port, serial), self.diag())


class LocalIssuerTest(RotationCase):
    def start_issuer(self, cert_dir, lifetime="10s", renew="1s", name="issuer", extra=()):
        app = self.start_recording_app(echo=True)
        port = harness.free_port()
        args = ["--service-name", SERVICE, "--ingress", f"{LOOPBACK}:{port}={LOOPBACK}:{app.port}",
                "--ca-cert", self.ca, "--ca-key", os.path.join(self.ca_dir, "ca.key"),
                "--cert-dir", cert_dir, "--cert-lifetime", lifetime, "--cert-renew-after", renew,
                *extra]
        return self.start_ringside(args, name=name), port

    def test_keeps_renewing_and_stores_the_key_0600(self):
        cert_dir = os.path.join(self.workdir, "issued")
        os.makedirs(cert_dir)
        proc, port = self.start_issuer(cert_dir)
        serials = set()

        def four_serials_served():
            serial = self.served_serial(port)
            self.assertIsNotNone(serial, "a handshake failed during rotation" + self.diag())
            serials.add(serial)
            return len(serials) >= 4

        self.assertTrue(harness.wait_until(four_serials_served, timeout=DEADLINE_S * 2,
                                           interval=0.2),
                        f"served serials {sorted(serials)}: renewal stopped" + self.diag())
        self.assertEqual(stat.S_IMODE(os.stat(os.path.join(cert_dir, "key.pem")).st_mode), 0o600)
        certs = self.certs_json(proc)
        self.assertEqual(certs["source"], "local-issuer")
        self.assertEqual(certs["sans"], [SERVICE])
        self.assertEqual(certs["key_type"], "ecdsa-p256")
        self.assertIsNotNone(certs["next_renewal"])
        self.assertGreaterEqual(proc.stat("ringside_cert_rotations_total"), 3)
        self.assertEqual(proc.stat("ringside_cert_rotations_failed_total"), 0)
        expiry = proc.stat("ringside_cert_expiry_seconds")
        self.assertTrue(0 < expiry <= 10, expiry)
        # Stored pair == served certificate (stored after publishing).
        stored = cert_serial(os.path.join(cert_dir, "cert.pem")).lstrip("0")
        self.assertTrue(harness.wait_until(
            lambda: self.served_serial(port) == cert_serial(os.path.join(cert_dir, "cert.pem")).lstrip("0"),
            timeout=DEADLINE_S), stored)

    def test_restart_reuses_a_valid_stored_certificate_and_post_rotate_renews(self):
        cert_dir = os.path.join(self.workdir, "issued")
        os.makedirs(cert_dir)
        first, port = self.start_issuer(cert_dir, lifetime="1h", renew="30m", name="first")
        serial = self.served_serial(port)
        self.assertIsNotNone(serial)
        first.stop()
        second, port = self.start_issuer(cert_dir, lifetime="1h", renew="30m", name="second")
        self.assertEqual(self.served_serial(port), serial, "the stored certificate was not reused")
        self.assertIn("reusing the certificate", second.stderr_text())
        status, _ = second.admin_request("POST", "/rotate")
        self.assertEqual(status, 202)
        self.assertTrue(harness.wait_until(
            lambda: self.served_serial(port) not in (None, serial), timeout=DEADLINE_S))
        # /certs is the agent's snapshot, refreshed just after the publication that the
        # served certificate already shows: wait for it rather than race it.
        self.assertTrue(harness.wait_until(
            lambda: self.certs_json(second)["generation"] == 2, timeout=DEADLINE_S),
            self.certs_json(second))


class CfsslTest(RotationCase):
    def start_cfssl(self, port, name="cfssl"):
        config = os.path.join(self.workdir, "cfssl.json")
        with open(config, "w") as f:
            # cfssl sets not_before to now rounded to the minute minus five minutes and
            # counts the expiry from there: 6m leaves 30 to 90 seconds of validity.
            json.dump({"signing": {"default": {
                "expiry": "6m",
                "usages": ["digital signature", "key encipherment", "server auth",
                           "client auth"]}}}, f)
        proc = self.start(name, [self.cfssl, "serve", "-ca", self.ca, "-ca-key",
                                 os.path.join(self.ca_dir, "ca.key"), "-config", config,
                                 "-address", LOOPBACK, "-port", str(port)])
        up = harness.wait_until(lambda: proc.poll() is not None or _port_open(port), timeout=15)
        if not up or proc.poll() is not None:
            self.fail_with_diag("cfssl serve did not start")
        return proc

    def test_signs_renews_and_survives_the_ca_going_down(self):
        self.cfssl = harness.require_tool("cfssl")
        cfssl_port = harness.free_port()
        cfssl = self.start_cfssl(cfssl_port)
        app = self.start_recording_app(echo=True)
        port = harness.free_port()
        proc = self.start_ringside(
            ["--service-name", SERVICE, "--ingress", f"{LOOPBACK}:{port}={LOOPBACK}:{app.port}",
             "--ca-url", f"http://{LOOPBACK}:{cfssl_port}", "--trust", self.ca,
             "--cert-lifetime", "60s", "--cert-renew-after", "3s"], name="remote")
        first = self.served_serial(port)
        self.assertIsNotNone(first, self.diag())
        certs = self.certs_json(proc)
        self.assertEqual(certs["source"], "remote-ca")
        self.assertEqual(certs["sans"], [SERVICE])
        # Renewed through cfssl on schedule.
        self.assertTrue(harness.wait_until(
            lambda: self.served_serial(port) not in (None, first), timeout=DEADLINE_S),
            self.diag())
        # CA down: the current certificate stays, failures are counted and retried.
        cfssl.stop()
        held = self.served_serial(port)
        before = proc.stat("ringside_cert_rotations_failed_total")
        self.assertTrue(harness.wait_until(
            lambda: proc.stat("ringside_cert_rotations_failed_total") >= before + 2,
            timeout=DEADLINE_S),
            "no retried failures" + self.diag())
        self.assertEqual(self.served_serial(port), held, "the certificate changed with the CA down")
        certs = self.certs_json(proc)
        self.assertIn("connect", certs["last_error"]["reason"])
        self.assertGreaterEqual(certs["consecutive_failures"], 2)
        self.assertIn("renewal failed", proc.stderr_text())
        self.assertIn("expires in", proc.stderr_text())
        # Back up: renewal resumes.
        self.start_cfssl(cfssl_port, name="cfssl-again")
        self.assertTrue(harness.wait_until(
            lambda: self.served_serial(port) not in (None, held), timeout=DEADLINE_S),
            self.diag())
        self.assertTrue(harness.wait_until(
            lambda: self.certs_json(proc)["last_error"] is None, timeout=DEADLINE_S))


    def remote_ingress(self, ca_port, name="remote", lifetime="60s", renew="30s"):
        app = self.start_recording_app(echo=True)
        port = harness.free_port()
        proc = self.start_ringside(
            ["--service-name", SERVICE, "--ingress", f"{LOOPBACK}:{port}={LOOPBACK}:{app.port}",
             "--ca-url", f"http://{LOOPBACK}:{ca_port}", "--trust", self.ca,
             "--cert-lifetime", lifetime, "--cert-renew-after", renew],
            name=name, wait_ready=False)
        return proc, port

    def test_starts_before_the_ca_answers_and_becomes_ready_when_it_does(self):
        self.cfssl = harness.require_tool("cfssl")
        cfssl_port = harness.free_port()
        proc, port = self.remote_ingress(cfssl_port, name="early")
        # Up (no crash loop), not ready, and refusing TLS connections at once.
        self.assertTrue(harness.wait_until(
            lambda: proc.poll() is not None or proc.ready_status() == 503, timeout=15))
        self.assertIsNone(proc.poll(), "exited instead of waiting for the CA" + self.diag())
        status, body = proc.admin_request("GET", "/ready")
        self.assertEqual((status, body), (503, "waiting for the first certificate from the CA\n"))
        self.assertIsNone(self.served_serial(port))
        label = listener_label("ingress", port)
        self.assert_stat_moves(proc, "ringside_listener_cx_no_certificate_total", label, 0)
        self.assertGreaterEqual(proc.stat("ringside_cert_rotations_failed_total"), 1)
        certs = self.certs_json(proc)
        self.assertEqual(certs["generation"], 0, certs)
        self.assertIn("connect", certs["last_error"]["reason"])
        self.assertIn("no certificate yet", proc.stderr_text())
        # The CA comes up: ready within a retry interval (the backoff ceiling is a few
        # seconds this early), serving a certificate that verifies.
        self.start_cfssl(cfssl_port)
        self.assertTrue(harness.wait_until(lambda: proc.ready_status() == 200,
                                           timeout=DEADLINE_S), self.diag())
        self.assertIsNotNone(self.served_serial(port), self.diag())
        self.assertIn("first certificate published after", proc.stderr_text())
        self.assertEqual(proc.stat("ringside_cert_rotations_total"), 0, "the first is no rotation")

    def test_the_cas_retry_after_is_respected(self):
        import http.server
        asked = []

        class Busy(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                asked.append(time.monotonic())
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                body = b'{"success":false,"errors":[{"code":503,"message":"busy"}]}'
                self.send_response(503)
                self.send_header("Retry-After", "2")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        server = http.server.ThreadingHTTPServer((LOOPBACK, 0), Busy)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self.addCleanup(server.server_close)
        self.addCleanup(server.shutdown)
        proc, _ = self.remote_ingress(server.server_address[1], name="retry-after")
        self.assertTrue(harness.wait_until(lambda: len(asked) >= 4, timeout=DEADLINE_S),
                        f"asked {len(asked)} times" + self.diag())
        gaps = [b - a for a, b in zip(asked, asked[1:])]
        # Full jitter alone would retry after 0.1-1 s at first: the CA said 2 s.
        self.assertTrue(all(g >= 1.9 for g in gaps), gaps)
        self.assertIn("Retry-After: 2 s", proc.stderr_text())
        self.assertEqual(proc.ready_status(), 503)


    def test_a_slow_ca_never_holds_back_reclamation(self):
        self.cfssl = harness.require_tool("cfssl")
        cfssl_port = harness.free_port()
        self.start_cfssl(cfssl_port)
        proxy = SlowProxy(cfssl_port)
        self.addCleanup(proxy.close)
        proc, port = self.remote_ingress(proxy.port, name="slow-ca", lifetime="1h", renew="30m")
        self.assertTrue(harness.wait_until(lambda: proc.ready_status() == 200,
                                           timeout=DEADLINE_S), self.diag())

        def generation():
            return self.certs_json(proc)["generation"]

        def live():
            return proc.stat("ringside_tls_generations_live")

        # A connection holds generation 1 through a rotation: two generations live.
        ctx = harness.tls_client_context(self.ca)
        held = ctx.wrap_socket(harness.connect(port, 10), server_hostname=SERVICE)
        self.addCleanup(held.close)
        proc.admin_request("POST", "/rotate")
        self.assertTrue(harness.wait_until(lambda: generation() == 2, timeout=DEADLINE_S))
        self.assertEqual(live(), 2)
        # The CA turns slow: the next rotation waits on it for 6 s.
        proxy.delay = 6
        asked = proxy.connections
        started = time.monotonic()
        proc.admin_request("POST", "/rotate")
        self.assertTrue(harness.wait_until(lambda: proxy.connections > asked, timeout=5))
        held.close()
        # Generation 1 is freed while the CA request is outstanding.
        self.assertTrue(harness.wait_until(lambda: live() == 1, timeout=4, interval=0.05),
                        f"{live()} generations live" + self.diag())
        self.assertLess(time.monotonic() - started, 6, "freed only after the CA answered")
        self.assertEqual(generation(), 2)
        self.assertTrue(harness.wait_until(lambda: generation() == 3, timeout=DEADLINE_S),
                        self.diag())


class AuthenticatedCaTest(RotationCase):
    """cfssl over TLS with an auth key (authsign), and a hostile CA: what the remote CA
    client refuses, counts and logs, keeping what it had."""

    AUTH_KEY = "00112233445566778899aabbccddeeff"

    def setUp(self):
        super().setUp()
        self.cfssl = harness.require_tool("cfssl")
        # The CA server's own TLS certificate, from a CA of its own.
        self.server_ca = self.pki.ca(label="ca-server-ca")
        server_cert, server_key = self.pki.issue(self.server_ca, ["localhost"], label="ca-server")
        self.server_trust = os.path.join(self.server_ca, "ca.pem")
        config = os.path.join(self.workdir, "cfssl-auth.json")
        with open(config, "w") as f:
            json.dump({"signing": {"default": {
                "expiry": "6m", "auth_key": "key1",
                "usages": ["digital signature", "key encipherment", "server auth",
                           "client auth"]}},
                "auth_keys": {"key1": {"type": "standard", "key": self.AUTH_KEY}}}, f)
        self.cfssl_port = harness.free_port()
        proc = self.start("cfssl-tls", [
            self.cfssl, "serve", "-ca", self.ca, "-ca-key", os.path.join(self.ca_dir, "ca.key"),
            "-config", config, "-address", LOOPBACK, "-port", str(self.cfssl_port),
            "-tls-cert", server_cert, "-tls-key", server_key])
        if not harness.wait_until(lambda: proc.poll() is not None or _port_open(self.cfssl_port),
                                  timeout=15) or proc.poll() is not None:
            self.fail_with_diag("cfssl serve (TLS) did not start")
        self.key_file = self.secret("auth.key", self.AUTH_KEY)
        self.trust_file = os.path.join(self.workdir, "ca-trust.pem")
        shutil.copy(self.server_trust, self.trust_file)

    def secret(self, name, text):
        path = os.path.join(self.workdir, name)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text + "\n")
        return path

    def start_sidecar(self, url, extra=(), renew="3s", wait_ready=True):
        app = self.start_recording_app(echo=True)
        port = harness.free_port()
        proc = self.start_ringside(
            ["--service-name", SERVICE, "--ingress", f"{LOOPBACK}:{port}={LOOPBACK}:{app.port}",
             "--ca-url", url, "--trust", self.ca, "--cert-lifetime", "60s",
             "--cert-renew-after", renew, "--cert-renew-jitter", "0", *extra],
            name="sidecar", wait_ready=wait_ready)
        if not harness.wait_until(lambda: proc.poll() is not None or
                                  proc.ready_status() is not None, timeout=15):
            self.fail_with_diag("the admin endpoint did not answer")
        return proc, port

    def https_args(self):
        return ["--ca-trust", self.trust_file, "--ca-auth-key", self.key_file]

    def test_signs_and_renews_over_tls_with_authsign_and_refuses_a_wrong_key_or_server(self):
        proc, port = self.start_sidecar(f"https://localhost:{self.cfssl_port}", self.https_args())
        first = self.served_serial(port)
        self.assertIsNotNone(first, self.diag())
        self.assertTrue(harness.wait_until(
            lambda: proc.stat("ringside_cert_rotations_total") >= 1, timeout=DEADLINE_S),
            "no renewal through authsign" + self.diag())
        self.assertEqual(proc.stat("ringside_cert_rotations_failed_total"), 0, self.diag())

        def refused(reason):
            failed = proc.stat("ringside_cert_rotations_failed_total")
            self.assertTrue(harness.wait_until(
                lambda: proc.stat("ringside_cert_rotations_failed_total") > failed,
                timeout=DEADLINE_S), f"{reason}: no refusal counted" + self.diag())
            self.assertTrue(harness.wait_until(lambda: reason in proc.stderr_text(),
                                               timeout=DEADLINE_S), reason + self.diag())
            self.assertIn(reason, self.certs_json(proc)["last_error"]["reason"])
            self.assertIsNotNone(self.served_serial(port), "the certificate was lost")

        # A wrong auth key: cfssl says so; the certificate is kept.
        self.secret("auth.key", "ffeeddccbbaa99887766554433221100")
        refused("invalid token")
        self.secret("auth.key", self.AUTH_KEY)
        # A CA server whose certificate does not chain to --ca-trust.
        write_atomically(self.trust_file, read(self.ca))
        refused("server certificate rejected")
        write_atomically(self.trust_file, read(self.server_trust))
        rotations = proc.stat("ringside_cert_rotations_total")
        self.assertTrue(harness.wait_until(
            lambda: proc.stat("ringside_cert_rotations_total") > rotations,
            timeout=DEADLINE_S * 2), "renewal did not resume" + self.diag())

    def test_a_host_name_the_server_certificate_lacks_is_refused(self):
        proc, _ = self.start_sidecar(f"https://{LOOPBACK}:{self.cfssl_port}", self.https_args(),
                                     wait_ready=False)
        self.assertTrue(harness.wait_until(
            lambda: "no certificate yet" in proc.stderr_text(), timeout=DEADLINE_S), self.diag())
        self.assertIn("server certificate rejected", proc.stderr_text())
        self.assertEqual(proc.ready_status(), 503)

    def test_bad_flags_exit_2_naming_the_flag(self):
        url = f"https://localhost:{self.cfssl_port}"
        loose = os.path.join(self.workdir, "loose.key")
        with open(loose, "w") as f:
            f.write(self.AUTH_KEY)
        os.chmod(loose, 0o644)
        base = [harness.binary("ringside"), "--service-name", SERVICE, "--ingress",
                f"{LOOPBACK}:{harness.free_port()}={LOOPBACK}:9", "--trust", self.ca]
        for args, says in (
                (["--ca-url", url], "needs --ca-trust"),
                (["--ca-url", url, "--ca-trust", self.trust_file, "--ca-auth-key", loose],
                 "--ca-auth-key"),
                (["--ca-url", f"http://{LOOPBACK}:1", "--ca-trust", self.trust_file],
                 "https://"),
                (["--ca-cert", self.ca, "--ca-key", os.path.join(self.ca_dir, "ca.key"),
                  "--ca-auth-key", self.key_file], "needs --ca-url"),
                (["--ca-url", "https://[::1"], "--ca-url")):
            done = subprocess.run(base + args, capture_output=True, timeout=20)
            self.assertEqual(done.returncode, 2, (args, done.stderr))
            self.assertIn(says.encode(), done.stderr, args)
            self.assertEqual(done.stderr.count(b"\n"), 1, done.stderr)

    def test_a_hostile_ca_is_refused_with_the_reason(self):
        wrong_name = read(self.pki.issue(self.ca_dir, ["other.sample-namespace"],
                                         label="wrong-name")[0]).decode()
        right_name = read(self.pki.issue(self.ca_dir, [SERVICE], label="foreign-key")[0]).decode()
        answers = {
            "garbage": b"this is not HTTP at all\r\n\r\n",
            "error": b'{"success":false,"result":null,"errors":[{"code":1000,"message":"no"}]}',
            "wrong name": json.dumps({"success": True, "result": {"certificate": wrong_name}}),
            "wrong key": json.dumps({"success": True, "result": {"certificate": right_name}}),
            "smuggled": None,
        }
        mode = ["garbage"]

        def serve(conn):
            try:
                conn.settimeout(5)
                data = b""
                while b"\r\n\r\n" not in data:
                    data += conn.recv(65536)
                answer = answers[mode[0]]
                if mode[0] == "garbage":
                    conn.sendall(answer)
                elif mode[0] == "smuggled":
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n"
                                 b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
                else:
                    body = answer.encode() if isinstance(answer, str) else answer
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                 b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" +
                                 body)
            except OSError:
                pass
            finally:
                conn.close()

        listener = socket.socket()
        listener.bind((LOOPBACK, 0))
        listener.listen(8)
        self.addCleanup(listener.close)

        def accept():
            while True:
                try:
                    conn, _ = listener.accept()
                except OSError:
                    return
                threading.Thread(target=serve, args=(conn,), daemon=True).start()

        threading.Thread(target=accept, daemon=True).start()
        proc, _ = self.start_sidecar(f"http://{LOOPBACK}:{listener.getsockname()[1]}",
                                     wait_ready=False)
        for name, reason in (("garbage", "invalid HTTP response"),
                             ("error", "cfssl refused: no"),
                             ("wrong name", "SAN mismatch"),
                             ("wrong key", "private key does not match"),
                             ("smuggled", "invalid HTTP response")):
            failed = proc.stat("ringside_cert_rotations_failed_total")
            mode[0] = name
            self.assertTrue(harness.wait_until(
                lambda: proc.stat("ringside_cert_rotations_failed_total") > failed + 1 and
                reason in self.certs_json(proc)["last_error"]["reason"], timeout=DEADLINE_S),
                f"{name}: {self.certs_json(proc)['last_error']}" + self.diag())
            self.assertEqual(proc.ready_status(), 503, name)
            self.assertEqual(self.certs_json(proc)["generation"], 0, name)


class SlowProxy:
    """A TCP relay to a local port that holds each new connection for `delay` seconds
    before relaying it: a CA that has turned slow."""

    def __init__(self, target_port):
        self.target_port, self.delay, self.connections = target_port, 0, 0
        self.listener = socket.socket()
        self.listener.bind((LOOPBACK, 0))
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._relay, args=(client, self.delay), daemon=True).start()

    def _relay(self, client, delay):
        time.sleep(delay)
        try:
            upstream = socket.create_connection((LOOPBACK, self.target_port), timeout=10)
        except OSError:
            client.close()
            return

        def pipe(a, b):
            try:
                while data := a.recv(65536):
                    b.sendall(data)
                b.shutdown(socket.SHUT_WR)
            except OSError:
                pass

        back = threading.Thread(target=pipe, args=(upstream, client), daemon=True)
        back.start()
        pipe(client, upstream)
        back.join(timeout=15)
        client.close()
        upstream.close()

    def close(self):
        self.listener.close()


def _port_open(port):
    try:
        harness.connect(port, timeout=1).close()
        return True
    except OSError:
        return False


class TrustRolloverTest(RotationCase):
    """Egress (client cert, --trust) -> ingress (client-cert=require, --trust) -> echo,
    with traffic all the time, while the CAs roll from A to B."""

    def test_ca_rollover_without_a_failed_request(self):
        pki, ca_a = self.pki, self.ca_dir
        ca_b = pki.ca(label="ca-b")
        d = os.path.join(self.workdir, "rollover")
        os.makedirs(d)
        paths = {n: os.path.join(d, n) for n in (
            "trust.pem", "server.pem", "server.key", "client.pem", "client.key")}
        ca_a_pem = read(os.path.join(ca_a, "ca.pem"))
        ca_b_pem = read(os.path.join(ca_b, "ca.pem"))
        write_atomically(paths["trust.pem"], ca_a_pem)
        egress_trust = os.path.join(d, "egress-trust.pem")
        write_atomically(egress_trust, ca_a_pem)
        write_atomically(paths["server.pem"], read(self.cert))
        write_atomically(paths["server.key"], read(self.key))
        write_atomically(paths["client.pem"], read(self.client_cert))
        write_atomically(paths["client.key"], read(self.client_key))

        app = self.start_recording_app(echo=True)
        ingress, ingress_port = self.start_ingress(
            app.port, paths["server.pem"], paths["server.key"], trust=paths["trust.pem"],
            client_cert="require")
        egress, egress_port = self.start_egress(
            [ingress_port], egress_trust, cert=paths["client.pem"], key=paths["client.key"],
            extra=["--service-name", CLIENT_SERVICE])

        traffic = EchoTraffic(egress_port)
        self.addCleanup(traffic.stop)

        def generation(proc):
            return self.certs_json(proc)["generation"]

        def traffic_goes_on(what):
            # A few round trips from each client thread, however long they take.
            target = traffic.requests + 6
            self.assertTrue(harness.wait_until(
                lambda: traffic.requests >= target or traffic.failures, timeout=DEADLINE_S),
                f"no traffic {what}" + self.diag())

        def step(change, procs):
            before = [generation(p) for p in procs]
            change()
            for p, g in zip(procs, before):
                self.assertTrue(harness.wait_until(lambda: generation(p) > g,
                                                   timeout=DEADLINE_S),
                                "a step was not adopted" + self.diag())
            traffic_goes_on("on the new generation")

        traffic_goes_on("before the rollover")
        # 1. Both sides add CA B.
        step(lambda: (write_atomically(paths["trust.pem"], ca_a_pem + ca_b_pem),
                      write_atomically(egress_trust, ca_a_pem + ca_b_pem)), [ingress, egress])
        self.assertEqual(self.certs_json(ingress)["trust_cas"], 2)
        # 2. Leaves move to CA B.
        server_b = pki.issue(ca_b, [SERVICE], label="server-b")
        client_b = pki.issue(ca_b, [CLIENT_SERVICE], label="client-b")

        def move_leaves():
            write_atomically(paths["server.key"], read(server_b[1]))
            write_atomically(paths["server.pem"], read(server_b[0]))
            write_atomically(paths["client.key"], read(client_b[1]))
            write_atomically(paths["client.pem"], read(client_b[0]))

        step(move_leaves, [ingress, egress])
        # 3. Both sides drop CA A.
        step(lambda: (write_atomically(paths["trust.pem"], ca_b_pem),
                      write_atomically(egress_trust, ca_b_pem)), [ingress, egress])
        traffic.stop()
        self.assertEqual(traffic.failures, [], self.diag())
        label = listener_label("ingress", ingress_port)
        self.assertEqual(ingress.stat("ringside_listener_tls_handshake_failure_total", label), 0)
        for proc in (ingress, egress):
            self.assertEqual(proc.stat("ringside_cert_rotations_failed_total"), 0)
        self.assertEqual(self.certs_json(ingress)["trust_cas"], 1)


class SubordinateCaTest(RotationCase):
    """The local issuer under an intermediate: root -> intermediate -> leaves, served with
    the intermediate, verified by peers that trust only the root."""

    def issuer_args(self, ca_dir, service, trust, lifetime="10s", renew="1s"):
        cert_dir = os.path.join(self.workdir, "issued-" + service)
        os.makedirs(cert_dir, exist_ok=True)
        return ["--service-name", service, "--ca-cert", os.path.join(ca_dir, "ca.pem"),
                "--ca-key", os.path.join(ca_dir, "ca.key"), "--cert-dir", cert_dir,
                "--trust", trust, "--cert-lifetime", lifetime, "--cert-renew-after", renew]

    def s_client(self, port, ca, client=None):
        argv = [self.openssl, "s_client", "-connect", f"{LOOPBACK}:{port}", "-servername",
                SERVICE, "-CAfile", ca, "-verify_hostname", SERVICE, "-verify_return_error"]
        if client:  # (cert.pem holding its chain, key.pem)
            argv += ["-cert", client[0], "-cert_chain", client[0], "-key", client[1]]
        done = subprocess.run(argv, input=b"", capture_output=True, timeout=20)
        return done.returncode, (done.stdout + done.stderr).decode(errors="replace")

    def test_root_intermediate_leaf_verified_by_the_root_across_rotations_under_load(self):
        root = self.ca  # the harness CA's ca.pem
        inter = self.pki.intermediate(self.ca_dir, cn="Sample Intermediate CA")
        app = self.start_recording_app(echo=True)
        port = harness.free_port()
        ingress = self.start_ringside(
            ["--ingress", f"{LOOPBACK}:{port}={LOOPBACK}:{app.port},client-cert=require",
             *self.issuer_args(inter, SERVICE, root)], name="ingress")
        egress_port = harness.free_port()
        egress = self.start_ringside(
            ["--egress", f"{LOOPBACK}:{egress_port}={SERVICE}",
             "--upstream", f"{SERVICE}={LOOPBACK}:{port}",
             *self.issuer_args(inter, CLIENT_SERVICE, root)], name="egress")

        # openssl, trusting the root only: depth 2, code 0 (with a client certificate from
        # the intermediate, sent with its chain, as the ingress requires one).
        client = self.pki.issue(inter, [CLIENT_SERVICE], label="openssl-client")
        code, text = self.s_client(port, root, client)
        self.assertEqual(code, 0, text)
        self.assertIn("depth=2", text)
        self.assertIn("depth=1 CN = Sample Intermediate CA", text)
        self.assertIn("Verify return code: 0 (ok)", text)
        # The served chain is the leaf and the intermediate, not the root.
        self.assertEqual(text.count("-----BEGIN CERTIFICATE-----"), 1, "s_client prints the leaf")
        self.assertIn(" 1 s:CN = Sample Intermediate CA", text)
        self.assertNotIn(" 2 s:", text)

        traffic = EchoTraffic(egress_port)
        self.addCleanup(traffic.stop)
        rotated = harness.wait_until(
            lambda: traffic.failures or (ingress.stat("ringside_cert_rotations_total") >= 4 and
                                         egress.stat("ringside_cert_rotations_total") >= 4),
            timeout=DEADLINE_S * 2, interval=0.2)
        traffic.stop()
        self.assertTrue(rotated, "renewal stopped" + self.diag())
        self.assertEqual(traffic.failures, [], self.diag())
        self.assertGreater(traffic.requests, 10)
        label = listener_label("ingress", port)
        self.assertEqual(ingress.stat("ringside_listener_tls_handshake_failure_total", label), 0)
        for proc in (ingress, egress):
            self.assertEqual(proc.stat("ringside_cert_rotations_failed_total"), 0, self.diag())
        # After the rotations, the chain still verifies against the root alone.
        code, text = self.s_client(port, root, client)
        self.assertEqual(code, 0, text)
        self.assertIn("depth=2", text)

    def openssl_ca_under(self, parent_dir, label):
        """A CA made by openssl under parent_dir's CA, whatever parent_dir's path length
        says (ringside-ca refuses to make one under a pathlen 0 CA)."""
        out = os.path.join(self.workdir, label)
        os.makedirs(out)
        key, csr, cert, ext = (os.path.join(out, n) for n in ("ca.key", "req.csr", "ca.crt",
                                                              "ext.cnf"))
        with open(ext, "w") as f:
            f.write("basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n")
        for argv in (
                [self.openssl, "req", "-new", "-newkey", "ec", "-pkeyopt",
                 "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", csr,
                 "-subj", f"/CN={label}"],
                [self.openssl, "x509", "-req", "-in", csr, "-CA",
                 os.path.join(parent_dir, "ca.pem"), "-CAkey", os.path.join(parent_dir, "ca.key"),
                 "-set_serial", "4242", "-days", "30", "-extfile", ext, "-out", cert]):
            done = subprocess.run(argv, capture_output=True, timeout=30)
            self.assertEqual(done.returncode, 0, done.stderr.decode(errors="replace"))
        with open(os.path.join(out, "ca.pem"), "wb") as f:
            f.write(read(cert) + read(os.path.join(parent_dir, "ca.pem")))
        return out

    def test_bad_chains_are_refused_and_the_last_good_certificate_kept(self):
        root = self.ca
        good = self.pki.intermediate(self.ca_dir, label="good")
        live = os.path.join(self.workdir, "live-ca")
        os.makedirs(live)

        def use(ca_dir):  # the key first, as a careful operator would
            write_atomically(os.path.join(live, "ca.key"), read(os.path.join(ca_dir, "ca.key")))
            write_atomically(os.path.join(live, "ca.pem"), read(os.path.join(ca_dir, "ca.pem")))

        # Start-up with a bad chain: one line, exit 2.
        too_deep = self.openssl_ca_under(good, "too-deep")
        use(too_deep)
        argv = [harness.binary("ringside"), "--admin", f"{LOOPBACK}:{harness.free_port()}",
                "--ingress", f"{LOOPBACK}:{harness.free_port()}={LOOPBACK}:9",
                *self.issuer_args(live, SERVICE, root)]
        done = subprocess.run(argv, capture_output=True, timeout=30)
        self.assertEqual(done.returncode, 2, done.stderr)
        self.assertIn(b"path length", done.stderr)

        use(good)
        app = self.start_recording_app(echo=True)
        port = harness.free_port()
        proc = self.start_ringside(
            ["--ingress", f"{LOOPBACK}:{port}={LOOPBACK}:{app.port}",
             *self.issuer_args(live, SERVICE, root)], name="issuer")
        self.assertIsNotNone(self.served_serial(port, ca=root), self.diag())

        expiring = self.pki.intermediate(self.ca_dir, label="expiring", lifetime="2s")
        leaf_cert, leaf_key = self.pki.issue(self.ca_dir, ["not-a-ca.test"], label="not-a-ca")
        not_a_ca = os.path.join(self.workdir, "not-a-ca")
        os.makedirs(not_a_ca)
        shutil.copy(leaf_cert, os.path.join(not_a_ca, "ca.pem"))
        shutil.copy(leaf_key, os.path.join(not_a_ca, "ca.key"))
        time.sleep(3)  # the expiring intermediate has expired
        for bad, reason in ((too_deep, "path length"), (expiring, "outside its validity"),
                            (not_a_ca, "not a CA")):
            failed = proc.stat("ringside_cert_rotations_failed_total")
            use(bad)
            self.assertTrue(harness.wait_until(
                lambda: proc.stat("ringside_cert_rotations_failed_total") > failed,
                timeout=DEADLINE_S), f"{reason}: no refusal counted" + self.diag())
            self.assertTrue(harness.wait_until(lambda: reason in proc.stderr_text(),
                                               timeout=DEADLINE_S), reason + self.diag())
            # The last good certificate is still served and verifies against the root.
            self.assertIsNotNone(self.served_serial(port, ca=root), reason + self.diag())
        rotations = proc.stat("ringside_cert_rotations_total")
        use(good)
        self.assertTrue(harness.wait_until(
            lambda: proc.stat("ringside_cert_rotations_total") > rotations,
            timeout=DEADLINE_S * 2), "renewal did not resume with a good chain" + self.diag())


if __name__ == "__main__":
    harness.main()
