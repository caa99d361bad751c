"""ringside against OpenSSL's own client and server: protocol versions and cipher policy
on ingress, peer verification (chain, SAN, expiry) on egress, RSA certificates, mTLS."""

import json
import os
import re
import socket
import stat
import struct
import subprocess
import threading
import time

import harness
from harness import LOOPBACK, SERVICE, listener_label

MARKER = b"MARKER-must-never-reach-the-upstream-7f3a9c\n"


class OpenSslCase(harness.PkiCase):
    def setUp(self):
        super().setUp()
        self.openssl = harness.require_tool("openssl")

    def s_client(self, port, *options, stdin=b"", timeout=20, ca=None):
        """Runs openssl s_client -brief against port; returns (exit status, output)."""
        argv = [self.openssl, "s_client", "-connect", f"{LOOPBACK}:{port}", "-servername",
                SERVICE, "-CAfile", ca or self.ca, "-verify_hostname", SERVICE,
                "-verify_return_error", "-brief", *options]
        try:
            done = subprocess.run(argv, input=stdin, capture_output=True, timeout=timeout)
        except subprocess.TimeoutExpired as e:
            self.fail_with_diag(f"s_client did not finish within {timeout} s: {' '.join(argv)}\n"
                                f"{(e.stdout or b'').decode(errors='replace')}"
                                f"{(e.stderr or b'').decode(errors='replace')}")
        output = (done.stdout + done.stderr).decode("utf-8", "replace")
        return done.returncode, output

    def start_s_server(self, cert, key, *options, name="s_server"):
        """openssl s_server on a free port; returns (process, port)."""
        port = harness.free_port()
        proc = self.start(name, [self.openssl, "s_server", "-accept", f"{LOOPBACK}:{port}",
                                 "-cert", cert, "-key", key, *options],
                          stdin=subprocess.PIPE)
        if not harness.wait_until(lambda: "ACCEPT" in proc.stdout_text()
                                  or proc.poll() is not None, timeout=10):
            self.fail_with_diag("s_server did not start")
        if proc.poll() is not None:
            self.fail_with_diag("s_server exited")
        return proc, port


class IngressProtocolTest(OpenSslCase):
    def setUp(self):
        super().setUp()
        self.app = self.start_recording_app(echo=True)
        self.ingress, self.port = self.start_ingress(self.app.port, self.cert, self.key)
        self.label = listener_label("ingress", self.port)

    def counter(self, name):
        return self.ingress.stat(f"ringside_listener_{name}", self.label)

    def test_tls13_handshake_verifies(self):
        status, output = self.s_client(self.port)
        self.assertEqual(status, 0, output + self.diag())
        self.assertIn("Verification: OK", output)
        self.assertIn("Protocol version: TLSv1.3", output)

    def test_tls12_uses_ecdhe_with_an_aead(self):
        status, output = self.s_client(self.port, "-tls1_2")
        self.assertEqual(status, 0, output + self.diag())
        self.assertIn("Protocol version: TLSv1.2", output)
        suite = re.search(r"Ciphersuite: (\S+)", output)
        self.assertIsNotNone(suite, output)
        self.assertRegex(suite.group(1), r"^ECDHE-.*(GCM|CHACHA20)", output)

    def assert_refused(self, *options):
        failures = self.counter("tls_handshake_failure_total")
        accepted = self.counter("cx_total")
        status, output = self.s_client(self.port, *options)
        self.assertNotEqual(status, 0, output)
        self.assertNotIn("Verification: OK", output)
        # The refusal must come from the proxy: it saw the connection and failed it.
        self.assertGreater(self.counter("cx_total"), accepted, output)
        self.assert_stat_moves(self.ingress, "ringside_listener_tls_handshake_failure_total",
                               self.label, failures)
        self.assertEqual(self.app.total_bytes(), 0)
        return output

    def test_tls11_is_refused(self):
        # SECLEVEL=0 lets this OpenSSL offer TLS 1.1 at all; the proxy must still refuse.
        self.assert_refused("-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0")

    def test_cbc_cipher_suites_are_refused(self):
        self.assert_refused("-tls1_2", "-cipher", "AES128-SHA256")
        # The same with a key exchange the ECDSA certificate could serve: only CBC is wrong.
        self.assert_refused("-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-SHA256:ECDHE-ECDSA-AES128-SHA")

    def test_proxy_keeps_serving_after_refusals(self):
        self.assert_refused("-tls1_2", "-cipher", "AES128-SHA256")
        self.assertEqual(harness.tls_echo(self.port, self.ca, b"still here"), b"still here")


class SessionResumptionTest(OpenSslCase):
    """TLS 1.3 session tickets: on a TCP ingress and on an HTTP ingress the ticket waits
    for the first reply and leaves with it; a client that asked for nothing gets it at
    the end of the turn. Either way OpenSSL's client resumes with it."""

    def s_client_held(self, port, request, *options):
        """s_client sending request, its stdin kept open for a second (time for the reply
        and the ticket) and then closed; returns (exit status, output)."""
        argv = [self.openssl, "s_client", "-connect", f"{LOOPBACK}:{port}", "-servername",
                SERVICE, "-CAfile", self.ca, "-verify_hostname", SERVICE,
                "-verify_return_error", *options]
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT)
        try:
            proc.stdin.write(request)
            proc.stdin.flush()
            time.sleep(1.0)
            proc.stdin.close()
        except BrokenPipeError:
            pass  # the server closed first (HTTP/1.0): s_client has left
        try:
            proc.wait(timeout=20)  # its output is a few lines: the pipe does not fill
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        output = proc.stdout.read().decode("utf-8", "replace")
        proc.stdout.close()
        if proc.returncode is None or proc.returncode < 0:
            self.fail_with_diag(f"s_client did not finish within 20 s: {output}")
        return proc.returncode, output

    def resume(self, port, request):
        session = os.path.join(self.workdir, f"session-{port}.pem")
        status, first = self.s_client_held(port, request, "-sess_out", session)
        self.assertEqual(status, 0, first)
        self.assertIn("New, TLSv1.3", first)
        self.assertTrue(os.path.exists(session) and os.path.getsize(session) > 0, first)
        status, second = self.s_client_held(port, request, "-sess_in", session)
        self.assertEqual(status, 0, second)
        self.assertIn("Reused, TLSv1.3", second)
        return first, second

    def test_http_ingress_resumes_with_the_ticket_sent_with_the_reply(self):
        app = self.start_http_app()
        _, port = self.start_ingress(app, self.cert, self.key, options="protocol=http")
        first, second = self.resume(port, b"GET / HTTP/1.0\r\n\r\n")
        for output in (first, second):
            self.assertIn("HTTP/1.1 200 OK", output)
            self.assertIn("Hello, world", output)

    def test_http_ingress_resumes_when_the_client_asked_for_nothing(self):
        app = self.start_http_app()
        _, port = self.start_ingress(app, self.cert, self.key, options="protocol=http")
        self.resume(port, b"")

    def test_tcp_ingress_resumes_with_the_ticket_sent_with_the_reply(self):
        app = self.start_echo_app()
        _, port = self.start_ingress(app, self.cert, self.key)
        first, second = self.resume(port, b"ping-through-the-relay\n")
        for output in (first, second):
            self.assertIn("ping-through-the-relay", output)


class RsaCertificateTest(OpenSslCase):
    def start_rsa_ingress(self):
        """An ingress on an RSA-2048 CA and leaf; returns (CA file, ingress port)."""
        pki = harness.Pki(self.workdir)
        ca_dir = pki.ca("rsa-ca", key_type="rsa-2048")
        cert, key = pki.issue(ca_dir, [SERVICE], label="rsa-leaf", key_type="rsa-2048")
        app = self.start_echo_app()
        _, port = self.start_ingress(app, cert, key)
        return os.path.join(ca_dir, "ca.pem"), port

    def test_rsa2048_ca_and_leaf_serve_tls13_and_tls12(self):
        ca, port = self.start_rsa_ingress()
        status, output = self.s_client(port, ca=ca)
        self.assertEqual(status, 0, output + self.diag())
        self.assertIn("Protocol version: TLSv1.3", output)
        status, output = self.s_client(port, "-tls1_2", ca=ca)
        self.assertEqual(status, 0, output + self.diag())
        self.assertRegex(output, r"Ciphersuite: ECDHE-RSA-.*(GCM|CHACHA20)")
        # And a full egress -> ingress round trip on RSA material.
        _, egress_port = self.start_egress([port], ca)
        payload = os.urandom(1 << 20)
        received, digest, ending = harness.echo_round_trip(egress_port, payload)
        self.assertEqual((received, ending), (len(payload), "eof"), self.diag())

    def test_key_exchange_groups(self):
        # As docs/architecture.md says: X25519, P-256 and P-384 in both versions; TLS 1.3
        # refuses secp521r1; TLS 1.2 takes it only from a client offering none of the three.
        # An RSA leaf: OpenSSL's TLS 1.2 client also holds an ECDSA certificate's curve to
        # its list, so only with RSA does an offer tell which ECDHE groups the server takes.
        ca, port = self.start_rsa_ingress()

        def key_share(*options):
            status, output = self.s_client(port, *options, ca=ca)
            if status != 0:
                return None
            found = re.search(r"Server Temp Key: (?:ECDH, )?(\w+)", output)
            self.assertIsNotNone(found, output)
            return found.group(1)

        for version in ("-tls1_2", "-tls1_3"):
            for group in ("X25519", "prime256v1", "secp384r1"):
                self.assertEqual(key_share(version, "-curves", group), group, version)
                self.assertEqual(key_share(version, "-curves", f"secp521r1:{group}"), group,
                                 version)
        self.assertIsNone(key_share("-tls1_3", "-curves", "secp521r1"))
        self.assertEqual(key_share("-tls1_2", "-curves", "secp521r1"), "secp521r1")

    def test_issued_key_is_private(self):
        mode = stat.S_IMODE(os.stat(self.key).st_mode)
        self.assertEqual(mode, 0o600, oct(mode))


class EgressVerificationTest(OpenSslCase):
    """openssl s_server is the upstream of an egress listener."""

    def through_egress(self, server_port, payload, timeout=10):
        egress, egress_port = self.start_egress([server_port], self.ca)
        with harness.connect(egress_port) as sock:
            sock.sendall(payload)
            data, ending = harness.read_until_closed(sock, timeout=timeout)
        return egress, egress_port, data, ending

    def test_right_san_works(self):
        server, port = self.start_s_server(self.cert, self.key, "-rev")
        egress, egress_port = self.start_egress([port], self.ca)
        with harness.connect(egress_port) as sock:
            sock.sendall(b"hello ringside\n")
            got = b""
            deadline = time.monotonic() + 10
            while b"edisgnir olleh" not in got and time.monotonic() < deadline:
                sock.settimeout(max(0.1, deadline - time.monotonic()))
                try:
                    chunk = sock.recv(4096)
                except OSError:
                    break
                if not chunk:
                    break
                got += chunk
        self.assertIn(b"edisgnir olleh", got, self.diag())
        self.assertGreaterEqual(egress.stat("ringside_listener_tls_handshake_success_total",
                                            listener_label("egress", egress_port)), 1)

    def test_openssl_issued_certificate_works(self):
        """Control for the expiry test: the same `openssl ca` path, valid dates."""
        cert, key = self.pki.issue_with_openssl(self.ca_dir, [SERVICE], days=7)
        server, port = self.start_s_server(cert, key)
        _, _, data, ending = self.through_egress(port, MARKER, timeout=3)
        self.assertTrue(harness.wait_until(
            lambda: MARKER.strip() in server.stdout_text().encode(), timeout=5),
            f"the upstream never received the bytes: {ending}\n{self.diag()}")

    def assert_rejected(self, cert, key):
        server, port = self.start_s_server(cert, key)
        egress, egress_port, data, ending = self.through_egress(port, MARKER)
        self.assertIn(ending, ("eof", "reset"),
                      f"the client connection stayed open\n{self.diag()}")
        self.assertEqual(data, b"")
        label = listener_label("egress", egress_port)
        self.assert_stat_moves(egress, "ringside_listener_tls_verify_failure_total", label, 0)
        time.sleep(0.3)  # let s_server print whatever it might have received
        self.assertNotIn(MARKER.strip().decode(), server.stdout_text(), self.diag())
        self.assertEqual(egress.stat("ringside_listener_tls_handshake_success_total", label), 0)

    def test_wrong_san_is_rejected_before_any_byte(self):
        cert, key = self.pki.issue(self.ca_dir, ["other.sample-namespace"], label="wrong-san")
        self.assert_rejected(cert, key)

    def test_untrusted_ca_is_rejected_before_any_byte(self):
        other_ca = self.pki.ca("other-ca")
        cert, key = self.pki.issue(other_ca, [SERVICE], label="untrusted")
        self.assert_rejected(cert, key)

    def test_expired_certificate_is_rejected_before_any_byte(self):
        cert, key = self.pki.issue_with_openssl(self.ca_dir, [SERVICE], label="expired",
                                                start="20200101000000Z", end="20200108000000Z")
        self.assert_rejected(cert, key)

    def test_san_option_overrides_the_service_name(self):
        cert, key = self.pki.issue(self.ca_dir, ["other.sample-namespace"], label="other")
        server, port = self.start_s_server(cert, key, "-rev")
        _, egress_port = self.start_egress([port], self.ca, options="san=other.sample-namespace")
        with harness.connect(egress_port) as sock:
            sock.sendall(b"abc\n")
            sock.settimeout(10)
            got = b""
            while b"cba" not in got:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                got += chunk
        self.assertIn(b"cba", got, self.diag())


class MutualTlsTest(OpenSslCase):
    def test_require_accepts_egress_with_client_certificate(self):
        app = self.start_echo_app()
        _, _, _, egress_port = self.start_chain(app, client_cert="require", egress_with_cert=True)
        payload = os.urandom(256 * 1024)
        received, digest, ending = harness.echo_round_trip(egress_port, payload)
        self.assertEqual((received, ending), (len(payload), "eof"), self.diag())

    def test_require_refuses_egress_without_client_certificate(self):
        app = self.start_recording_app(echo=True)
        ingress, ingress_port, _, egress_port = self.start_chain(app.port, client_cert="require")
        label = listener_label("ingress", ingress_port)
        with harness.connect(egress_port) as sock:
            sock.sendall(MARKER)
            data, ending = harness.read_until_closed(sock, timeout=10)
        self.assertIn(ending, ("eof", "reset"), self.diag())
        self.assertEqual(data, b"")
        self.assert_stat_moves(ingress, "ringside_listener_tls_handshake_failure_total", label, 0)
        self.assertEqual(app.total_bytes(), 0)

    def test_require_refuses_s_client_without_certificate(self):
        app = self.start_recording_app(echo=True)
        ingress, port = self.start_ingress(app.port, self.cert, self.key, trust=self.ca,
                                           client_cert="require")
        # -ign_eof: keep reading after stdin ends, so the server's verdict is seen.
        status, output = self.s_client(port, "-ign_eof", stdin=MARKER)
        self.assertNotEqual(status, 0, output)
        self.assert_stat_moves(ingress, "ringside_listener_tls_handshake_failure_total",
                               listener_label("ingress", port), 0)
        self.assertEqual(app.total_bytes(), 0)
        # With the client certificate s_client gets through.
        status, output = self.s_client(port, "-cert", self.client_cert, "-key", self.client_key,
                                       stdin=b"with a certificate\n")
        self.assertEqual(status, 0, output + self.diag())
        self.assertTrue(harness.wait_until(
            lambda: app.total_bytes() == len(b"with a certificate\n"), timeout=5), self.diag())

    def test_optional_accepts_both(self):
        app = self.start_echo_app()
        ingress, ingress_port = self.start_ingress(app, self.cert, self.key, trust=self.ca,
                                                   client_cert="optional")
        _, plain_egress = self.start_egress([ingress_port], self.ca, name="egress-anonymous")
        _, cert_egress = self.start_egress([ingress_port], self.ca, cert=self.client_cert,
                                           key=self.client_key, name="egress-with-cert")
        for port in (plain_egress, cert_egress):
            received, _, ending = harness.echo_round_trip(port, b"x" * 70000)
            self.assertEqual((received, ending), (70000, "eof"), self.diag())
        self.assertEqual(harness.tls_echo(ingress_port, self.ca, b"direct"), b"direct")


class HandshakeLostTest(harness.PkiCase):
    """An upstream that accepts TCP and then closes or resets before finishing the TLS
    handshake (a task shutting down, a load shedder) counts as a failed connect on that
    endpoint, for outlier detection, on the L4 and the HTTP egress alike."""

    def _closing_upstream(self, reset):
        listener = socket.create_server((LOOPBACK, 0))
        self.addCleanup(listener.close)

        def serve():
            while True:
                try:
                    conn, _ = listener.accept()
                except OSError:
                    return
                if reset:
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                else:
                    conn.recv(4096)  # the ClientHello, then a FIN
                conn.close()
        threading.Thread(target=serve, daemon=True).start()
        return listener.getsockname()[1]

    def _connect_failures(self, egress):
        status, body = egress.admin_request("GET", "/clusters")
        self.assertEqual(status, 200, body)
        document = json.loads(body)
        clusters = document["clusters"] if isinstance(document, dict) else document
        for cluster in clusters:
            if cluster["name"] == SERVICE:
                return sum(e["connect_failed"] for e in cluster["endpoints"])
        self.fail(f"no cluster {SERVICE} in {body}")

    def _check(self, options, reset):
        port = self._closing_upstream(reset)
        egress, egress_port = self.start_egress([port], self.ca, options=options,
                                                extra=["--retries", "0"])
        for _ in range(3):
            with harness.connect(egress_port) as sock:
                if "http" in options:
                    sock.sendall(b"GET / HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n")
                data, _ = harness.read_until_closed(sock, timeout=10)
                if "http" in options:
                    self.assertRegex(data, rb"^HTTP/1.1 50[23] ", data[:200])
        self.assertTrue(harness.wait_until(lambda: self._connect_failures(egress) >= 3, 5),
                        f"connect_failed={self._connect_failures(egress)}\n{self.diag()}")

    def test_l4_closed_during_the_handshake(self):
        self._check("", reset=False)

    def test_l4_reset_during_the_handshake(self):
        self._check("", reset=True)

    def test_http_closed_during_the_handshake(self):
        self._check("protocol=http", reset=False)

    def test_http_reset_during_the_handshake(self):
        self._check("protocol=http", reset=True)


if __name__ == "__main__":
    harness.main()
