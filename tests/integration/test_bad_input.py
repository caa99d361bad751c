"""What the proxy does with bad peers: junk instead of a ClientHello, a ClientHello cut
short, an upstream that refuses connections. Each failure is counted, the client is not
left hanging, and the proxy keeps serving."""

import os
import socket
import time

import harness
from harness import listener_label


class BadIngressInputTest(harness.PkiCase):
    HANDSHAKE_TIMEOUT_S = 1

    def setUp(self):
        super().setUp()
        self.app = self.start_recording_app(echo=True)
        self.ingress, self.port = self.start_ingress(
            self.app.port, self.cert, self.key,
            extra=["--handshake-timeout", f"{self.HANDSHAKE_TIMEOUT_S}s"])
        self.label = listener_label("ingress", self.port)

    def counter(self, name):
        return self.ingress.stat(f"ringside_listener_{name}", self.label)

    def check_closed_and_counted(self, send, then_close, timeout=5):
        """Connects, calls send(sock), optionally half-closes, and checks that the proxy
        closes the connection within timeout seconds, that the handshake failure is
        counted, that nothing reached the app, and that a good client still works."""
        failures = self.counter("tls_handshake_failure_total")
        with harness.connect(self.port) as sock:
            send(sock)
            if then_close:
                sock.shutdown(socket.SHUT_WR)
            started = time.monotonic()
            data, ending = harness.read_until_closed(sock, timeout=timeout)
            elapsed = time.monotonic() - started
        self.assertIn(ending, ("eof", "reset"),
                      f"connection still open after {elapsed:.1f} s\n{self.diag()}")
        # The proxy may answer with a TLS alert record, never with anything else.
        if data:
            self.assertEqual(data[0], 0x15, f"unexpected reply {data[:40]!r}")
        self.assert_stat_moves(self.ingress, "ringside_listener_tls_handshake_failure_total",
                               self.label, failures)
        self.assertEqual(self.app.total_bytes(), 0)
        self.assertEqual(harness.tls_echo(self.port, self.ca, b"after the bad one"),
                         b"after the bad one", self.diag())
        return elapsed

    def test_plaintext_http(self):
        self.check_closed_and_counted(
            lambda s: s.sendall(b"GET / HTTP/1.1\r\nHost: app\r\n\r\n"), then_close=False)

    def test_random_garbage(self):
        garbage = os.urandom(4096)
        if garbage[0] == 0x16:  # keep it from starting like a handshake record
            garbage = b"\x00" + garbage[1:]
        self.check_closed_and_counted(lambda s: s.sendall(garbage), then_close=False)

    def test_garbage_inside_a_handshake_record(self):
        body = os.urandom(300)
        record = b"\x16\x03\x01" + len(body).to_bytes(2, "big") + body
        self.check_closed_and_counted(lambda s: s.sendall(record), then_close=False)

    def test_half_a_client_hello_then_close(self):
        hello = harness.client_hello_bytes()
        self.assertGreater(len(hello), 100)
        self.check_closed_and_counted(lambda s: s.sendall(hello[:len(hello) // 2]),
                                      then_close=True)

    def test_half_a_client_hello_then_silence_hits_the_handshake_timeout(self):
        hello = harness.client_hello_bytes()
        timeouts = self.counter("timeout_handshake_total")
        elapsed = self.check_closed_and_counted(
            lambda s: s.sendall(hello[:len(hello) // 2]), then_close=False,
            timeout=self.HANDSHAKE_TIMEOUT_S + 5)
        self.assert_stat_moves(self.ingress, "ringside_listener_timeout_handshake_total", self.label,
                               timeouts)
        # Closed by the timer, not at once: the proxy did wait for the rest of the hello.
        self.assertGreaterEqual(elapsed, self.HANDSHAKE_TIMEOUT_S * 0.5)

    def test_silent_client_hits_the_handshake_timeout(self):
        timeouts = self.counter("timeout_handshake_total")
        with harness.connect(self.port) as sock:
            data, ending = harness.read_until_closed(sock, timeout=self.HANDSHAKE_TIMEOUT_S + 5)
        self.assertIn(ending, ("eof", "reset"), self.diag())
        self.assert_stat_moves(self.ingress, "ringside_listener_timeout_handshake_total", self.label,
                               timeouts)

    def test_many_bad_clients_in_a_row(self):
        before = self.counter("tls_handshake_failure_total")
        for i in range(30):
            with harness.connect(self.port) as sock:
                sock.sendall(b"\x00\x01garbage" * (i + 1))
                harness.read_until_closed(sock, timeout=5)
        self.assert_stat_moves(self.ingress, "ringside_listener_tls_handshake_failure_total",
                               self.label, before, minimum=30)
        self.assertEqual(harness.tls_echo(self.port, self.ca), b"ping", self.diag())
        self.assertTrue(harness.wait_until(lambda: self.counter("cx_active") == 0, timeout=5),
                        self.diag())


class UpstreamFailureTest(harness.PkiCase):
    # Far longer than the tests wait for the close: a client closed by the connect timer
    # instead of the refusal itself would stay open and fail them.
    CONNECT_TIMEOUT = ["--connect-timeout", "120s"]

    def test_refused_upstream_closes_the_client_promptly(self):
        dead = harness.free_port()  # nothing listens here
        egress, egress_port = self.start_egress([dead], self.ca, extra=self.CONNECT_TIMEOUT)
        label = listener_label("egress", egress_port)
        before = egress.stat("ringside_listener_upstream_cx_connect_fail_total", label)
        with harness.connect(egress_port) as sock:
            sock.sendall(b"hello?")
            data, ending = harness.read_until_closed(sock, timeout=5)
        self.assertIn(ending, ("eof", "reset"), f"client left hanging\n{self.diag()}")
        self.assertEqual(data, b"")
        self.assert_stat_moves(egress, "ringside_listener_upstream_cx_connect_fail_total", label,
                               before)

    def test_refused_app_behind_ingress_closes_the_client(self):
        dead = harness.free_port()
        ingress, port = self.start_ingress(dead, self.cert, self.key,
                                           extra=self.CONNECT_TIMEOUT)
        label = listener_label("ingress", port)
        ctx = harness.tls_client_context(self.ca)
        with harness.connect(port) as raw:
            with ctx.wrap_socket(raw, server_hostname=harness.SERVICE) as tls:
                tls.sendall(b"hello?")
                # A ragged TLS end (no close_notify) reads as EOF: wrap_socket suppresses it.
                data, ending = harness.read_until_closed(tls, timeout=5)
        self.assertIn(ending, ("eof", "reset"), f"client left hanging\n{self.diag()}")
        self.assertEqual(data, b"")
        self.assert_stat_moves(ingress, "ringside_listener_upstream_cx_connect_fail_total", label, 0)

    def test_next_endpoint_is_tried_when_one_is_dead(self):
        app = self.start_echo_app()
        ingress, ingress_port = self.start_ingress(app, self.cert, self.key)
        dead = harness.free_port()
        egress, egress_port = self.start_egress([dead, ingress_port], self.ca)
        label = listener_label("egress", egress_port)
        for i in range(12):
            payload = f"request {i}".encode() * 100
            received, _, ending = harness.echo_round_trip(egress_port, payload, timeout=10)
            self.assertEqual((received, ending), (len(payload), "eof"),
                             f"request {i}\n{self.diag()}")
        # Round robin must have picked the dead endpoint first at least once.
        self.assertGreaterEqual(
            egress.stat("ringside_listener_upstream_cx_connect_fail_total", label), 1, self.diag())

    def test_round_robin_spreads_over_live_endpoints(self):
        first = self.start_recording_app(echo=True)
        second = self.start_recording_app(echo=True)
        _, port_a = self.start_ingress(first.port, self.cert, self.key, name="ingress-a")
        _, port_b = self.start_ingress(second.port, self.cert, self.key, name="ingress-b")
        _, egress_port = self.start_egress([port_a, port_b], self.ca)
        for i in range(10):
            received, _, ending = harness.echo_round_trip(egress_port, b"abc", timeout=10)
            self.assertEqual((received, ending), (3, "eof"), self.diag())
        self.assertGreater(first.connection_count(), 0)
        self.assertGreater(second.connection_count(), 0)
        self.assertEqual(first.connection_count() + second.connection_count(), 10)


if __name__ == "__main__":
    harness.main()
