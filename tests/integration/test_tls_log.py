"""The log lines of failed TLS handshakes, met with real peers: openssl s_client trusting
another CA, offering TLS 1.2 to a --tls13-only ingress, offering CBC suites only, or
presenting an untrusted client certificate; plaintext HTTP on the TLS port from a raw
socket; openssl s_server with an expired certificate behind an egress. Each line names the
cause in words (and the peer's alert), with wolfSSL's code at the end. A TCP connect and
close without a ClientHello (a load balancer's health check) is counted in
ringside_listener_tls_closed_before_hello_total and is neither logged at info nor counted
as a failed handshake."""

import re
import socket
import subprocess
import time

import harness
from harness import LOOPBACK, SERVICE, listener_label

# "cause; wolfSSL: text (-NNN)" at the end of every line about a failed handshake.
WOLFSSL_TAIL = r"; wolfSSL: [^;\n]+ \(-\d+\)$"


class TlsLogCase(harness.PkiCase):
    def setUp(self):
        super().setUp()
        self.openssl = harness.require_tool("openssl")

    def s_client(self, port, *options, ca=None, timeout=20):
        argv = [self.openssl, "s_client", "-connect", f"{LOOPBACK}:{port}", "-servername",
                SERVICE, "-CAfile", ca or self.ca, "-verify_return_error", "-brief", *options]
        try:
            done = subprocess.run(argv, input=b"", capture_output=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            self.fail_with_diag(f"s_client did not finish within {timeout} s")
        return done.returncode, (done.stdout + done.stderr).decode("utf-8", "replace")

    def assert_logged(self, proc, pattern, timeout=5):
        """Waits for a log line of proc matching pattern (a regex); returns the line."""
        regex = re.compile(pattern, re.MULTILINE)
        found = []

        def seen():
            match = regex.search(proc.stderr_text())
            if match:
                found.append(match.group(0))
            return bool(match)

        if not harness.wait_until(seen, timeout=timeout):
            self.fail_with_diag(f"no log line matches {pattern!r}")
        return found[0]

    def start_plain_ingress(self, extra=(), **kwargs):
        app = self.start_recording_app(echo=True)
        ingress, port = self.start_ingress(app.port, self.cert, self.key, extra=extra, **kwargs)
        return ingress, port


class IngressLogTest(TlsLogCase):
    def test_client_that_rejects_our_certificate(self):
        ingress, port = self.start_plain_ingress()
        other_ca = self.pki.ca("other-ca")
        status, output = self.s_client(port, ca=f"{other_ca}/ca.pem")
        self.assertNotEqual(status, 0, output)
        line = self.assert_logged(
            ingress, r"TLS handshake from 127\.0\.0\.1:\d+ failed: client rejected our "
                     r"certificate \(alert unknown_ca\)" + WOLFSSL_TAIL)
        self.assertNotIn("parse error on header", line.split("; wolfSSL:")[0])

    def test_tls12_client_against_tls13_only(self):
        ingress, port = self.start_plain_ingress(extra=["--tls13-only"])
        status, output = self.s_client(port, "-tls1_2")
        self.assertNotEqual(status, 0, output)
        self.assert_logged(ingress, r"failed: client offered only TLS 1\.2; --tls13-only is set"
                                    + WOLFSSL_TAIL)

    def test_no_shared_cipher(self):
        ingress, port = self.start_plain_ingress()
        status, output = self.s_client(port, "-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-SHA256")
        self.assertNotEqual(status, 0, output)
        self.assert_logged(ingress, r"failed: no shared cipher: .*" + WOLFSSL_TAIL)

    def test_plaintext_http_on_the_tls_port(self):
        for options in ("", "protocol=http"):
            with self.subTest(options=options or "protocol=tcp"):
                ingress, port = self.start_plain_ingress(options=options,
                                                         name=f"ingress-{options or 'tcp'}")
                with harness.connect(port) as sock:
                    sock.sendall(b"GET /health HTTP/1.1\r\nHost: app\r\n\r\n")
                    harness.read_until_closed(sock, timeout=5)
                self.assert_logged(
                    ingress, r"TLS handshake from 127\.0\.0\.1:\d+ failed: plaintext on a TLS "
                             r"port \(an HTTP request: the client used http://\)" + WOLFSSL_TAIL)

    def test_untrusted_client_certificate(self):
        app = self.start_recording_app(echo=True)
        ingress, port = self.start_ingress(app.port, self.cert, self.key, trust=self.ca,
                                           client_cert="require")
        other_ca = self.pki.ca("other-client-ca")
        cert, key = self.pki.issue(other_ca, ["client.sample-namespace"], label="stranger")
        self.s_client(port, "-cert", cert, "-key", key)
        self.assert_logged(ingress, r"failed: client certificate rejected: unknown CA .*"
                                    + WOLFSSL_TAIL)
        self.assertGreaterEqual(
            ingress.stat("ringside_listener_tls_verify_failure_total", listener_label("ingress", port)),
            1)


class HealthCheckTest(TlsLogCase):
    """What a load balancer's TCP health check does: connect, then close at once."""

    def check(self, options, reset):
        ingress, port = self.start_plain_ingress(options=options)
        label = listener_label("ingress", port)
        failures = ingress.stat("ringside_listener_tls_handshake_failure_total", label)
        closed = ingress.stat("ringside_listener_tls_closed_before_hello_total", label)
        for _ in range(3):
            sock = socket.create_connection((LOOPBACK, port), timeout=5)
            if reset:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
            sock.close()
        self.assert_stat_moves(ingress, "ringside_listener_tls_closed_before_hello_total", label,
                               closed, minimum=3)
        # A real client afterwards still works, and its handshake is the only one counted.
        status, output = self.s_client(port)
        self.assertEqual(status, 0, output + self.diag())
        time.sleep(0.3)
        self.assertEqual(ingress.stat("ringside_listener_tls_handshake_failure_total", label), failures)
        log = ingress.stderr_text()
        self.assertNotIn("closed the connection during the TLS handshake", log)
        self.assertNotIn("handshake from", log)

    def test_connect_and_close(self):
        self.check("", reset=False)

    def test_connect_and_reset(self):
        self.check("", reset=True)

    def test_connect_and_close_on_an_http_listener(self):
        self.check("protocol=http", reset=False)

    def test_half_a_hello_then_close_is_still_a_failed_handshake(self):
        ingress, port = self.start_plain_ingress()
        label = listener_label("ingress", port)
        failures = ingress.stat("ringside_listener_tls_handshake_failure_total", label)
        closed = ingress.stat("ringside_listener_tls_closed_before_hello_total", label)
        hello = harness.client_hello_bytes()
        with harness.connect(port) as sock:
            sock.sendall(hello[:len(hello) // 2])
            sock.shutdown(socket.SHUT_WR)
            harness.read_until_closed(sock, timeout=5)
        self.assert_stat_moves(ingress, "ringside_listener_tls_handshake_failure_total", label,
                               failures)
        self.assert_logged(ingress, r"downstream 127\.0\.0\.1:\d+ closed the connection during "
                                    r"the TLS handshake")
        self.assertEqual(ingress.stat("ringside_listener_tls_closed_before_hello_total", label),
                         closed)


class EgressLogTest(TlsLogCase):
    def test_expired_upstream_certificate(self):
        cert, key = self.pki.issue_with_openssl(self.ca_dir, [SERVICE], label="expired",
                                                start="20200101000000Z", end="20200108000000Z")
        port = harness.free_port()
        server = self.start("s_server", [self.openssl, "s_server", "-accept",
                                         f"{LOOPBACK}:{port}", "-cert", cert, "-key", key],
                            stdin=subprocess.PIPE)
        if not harness.wait_until(lambda: "ACCEPT" in server.stdout_text(), timeout=10):
            self.fail_with_diag("s_server did not start")
        egress, egress_port = self.start_egress([port], self.ca)
        with harness.connect(egress_port) as sock:
            sock.sendall(b"hello")
            harness.read_until_closed(sock, timeout=10)
        self.assert_logged(egress, rf"TLS handshake with upstream 127\.0\.0\.1:{port} failed: "
                                   r"server certificate rejected: expired" + WOLFSSL_TAIL)


if __name__ == "__main__":
    harness.main()
