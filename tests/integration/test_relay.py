"""Round trips through egress ringside -> ingress ringside -> app, with curl, raw sockets
and large transfers checked byte for byte, and the half-close relayed end to end."""

import hashlib
import json
import os
import select
import socket
import subprocess
import ssl
import threading
import time

import harness
from harness import LOOPBACK, SERVICE, listener_label


class RoundTripTest(harness.PkiCase):
    def test_curl_through_egress_and_ingress_gets_the_app_response(self):
        curl = harness.require_tool("curl")
        app = self.start_http_app()
        ingress, ingress_port, egress, egress_port = self.start_chain(app)
        direct = subprocess.run([curl, "-sS", "--max-time", "10", f"http://{LOOPBACK}:{app}/"],
                                capture_output=True, timeout=20)
        self.assertEqual(direct.returncode, 0, direct.stderr)
        proxied = subprocess.run(
            [curl, "-sS", "--max-time", "10", "-w", "\n%{http_code}",
             f"http://{LOOPBACK}:{egress_port}/"], capture_output=True, timeout=20)
        self.assertEqual(proxied.returncode, 0,
                         f"curl through egress failed: {proxied.stderr!r}\n{self.diag()}")
        body, _, code = proxied.stdout.rpartition(b"\n")
        self.assertEqual(code, b"200")
        self.assertEqual(body, direct.stdout)

        ingress_label = listener_label("ingress", ingress_port)
        egress_label = listener_label("egress", egress_port)
        self.assertGreaterEqual(ingress.stat("ringside_listener_cx_total", ingress_label), 1)
        self.assertGreaterEqual(
            ingress.stat("ringside_listener_tls_handshake_success_total", ingress_label), 1)
        self.assertGreaterEqual(egress.stat("ringside_listener_cx_total", egress_label), 1)
        self.assertGreaterEqual(
            egress.stat("ringside_listener_tls_handshake_success_total", egress_label), 1)
        self.assertGreaterEqual(
            egress.stat("ringside_listener_upstream_cx_total", egress_label), 1)
        self.assertGreater(
            ingress.stat("ringside_listener_downstream_rx_bytes_total", ingress_label), 0)

    def test_raw_socket_request_and_response(self):
        app = self.start_http_app()
        _, _, _, egress_port = self.start_chain(app)
        status, direct_body = harness.http_get(app)
        self.assertEqual(status, 200)
        with harness.connect(egress_port) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: app\r\n\r\n"
                         b"GET /again HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n")
            sock.shutdown(socket.SHUT_WR)
            data, ending = harness.read_until_closed(sock, timeout=10)
        self.assertEqual(ending, "eof", f"got {len(data)} bytes then {ending}\n{self.diag()}")
        self.assertEqual(data.count(b"HTTP/1.1 200"), 2, data[:400])
        self.assertEqual(data.count(direct_body), 2, data[:400])

    def test_admin_certs_lists_the_serving_certificate(self):
        app = self.start_echo_app()
        ingress, _ = self.start_ingress(app, self.cert, self.key)
        status, body = ingress.admin_request("GET", "/certs")
        self.assertEqual(status, 200, body)
        document = json.loads(body)  # must be JSON
        self.assertIn(SERVICE, json.dumps(document))


class LargeTransferTest(harness.PkiCase):
    SIZE = 50 * 1024 * 1024

    def test_50mb_echo_is_byte_for_byte_in_both_directions(self):
        app = self.start_recording_app(echo=True)
        ingress, ingress_port, egress, egress_port = self.start_chain(app.port)
        payload = os.urandom(self.SIZE)
        expected = hashlib.sha256(payload).hexdigest()
        received, digest, ending = harness.echo_round_trip(egress_port, payload, timeout=120)
        # Upstream direction: what the app received.
        self.assertEqual(app.connection_count(), 1)
        record = app.connections[0]
        self.assertEqual(record["bytes"], self.SIZE, self.diag())
        self.assertEqual(record["sha256"].hexdigest(), expected)
        # Downstream direction: what came back.
        self.assertEqual(ending, "eof", self.diag())
        self.assertEqual(received, self.SIZE, self.diag())
        self.assertEqual(digest, expected)

        ingress_label = listener_label("ingress", ingress_port)
        self.assertGreaterEqual(
            ingress.stat("ringside_listener_upstream_tx_bytes_total", ingress_label), self.SIZE)
        self.assertGreaterEqual(
            ingress.stat("ringside_listener_upstream_rx_bytes_total", ingress_label), self.SIZE)

    def test_50mb_download_from_the_app_is_byte_for_byte(self):
        app = self.start_http_app(body_size="50M")
        _, _, _, egress_port = self.start_chain(app)

        def fetch(port):
            with harness.connect(port, timeout=60) as sock:
                sock.sendall(b"GET / HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n")
                sock.shutdown(socket.SHUT_WR)
                return harness.read_until_closed(sock, timeout=120)

        direct, direct_ending = fetch(app)
        self.assertEqual(direct_ending, "eof")
        self.assertGreater(len(direct), self.SIZE)
        proxied, ending = fetch(egress_port)
        self.assertEqual(ending, "eof", self.diag())
        self.assertEqual(len(proxied), len(direct), self.diag())
        self.assertEqual(hashlib.sha256(proxied).hexdigest(), hashlib.sha256(direct).hexdigest())

    def test_concurrent_connections_each_get_their_own_bytes_back(self):
        app = self.start_echo_app()
        _, _, _, egress_port = self.start_chain(app)
        payloads = [os.urandom(8 * 1024 * 1024 + i * 4099) for i in range(6)]
        results = [None] * len(payloads)

        def run(i):
            results[i] = harness.echo_round_trip(egress_port, payloads[i], timeout=120)

        threads = [threading.Thread(target=run, args=(i,)) for i in range(len(payloads))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=150)
        for i, payload in enumerate(payloads):
            self.assertIsNotNone(results[i], f"connection {i} did not finish")
            received, digest, ending = results[i]
            self.assertEqual((received, ending), (len(payload), "eof"),
                             f"connection {i}\n{self.diag()}")
            self.assertEqual(digest, hashlib.sha256(payload).hexdigest(), f"connection {i}")


class HalfCloseTest(harness.PkiCase):
    def _half_close_round_trip(self, port, payload):
        with harness.connect(port) as sock:
            sock.sendall(payload)
            sock.shutdown(socket.SHUT_WR)
            return harness.read_until_closed(sock, timeout=15)

    def test_client_half_close_reaches_the_app_and_its_close_comes_back(self):
        app = self.start_echo_app()
        _, _, _, egress_port = self.start_chain(app)
        payload = os.urandom(300 * 1024) + b"the last bytes before the half-close"
        data, ending = self._half_close_round_trip(egress_port, payload)
        self.assertEqual(ending, "eof", f"after {len(data)} bytes\n{self.diag()}")
        self.assertEqual(len(data), len(payload))
        self.assertEqual(data, payload)

    def test_small_payload_half_close(self):
        app = self.start_recording_app(echo=True)
        _, _, _, egress_port = self.start_chain(app.port)
        data, ending = self._half_close_round_trip(egress_port, b"x")
        self.assertEqual((data, ending), (b"x", "eof"), self.diag())
        self.assertTrue(harness.wait_until(lambda: app.connections[0]["done"], timeout=5))

    def test_reply_after_half_close_still_arrives(self):
        """The app answers only once it has seen EOF: the response direction must stay
        open after the client's FIN (the bug a full close on EOF would have)."""
        # An app that sends its answer only after EOF: count the bytes, then reply.
        listener = socket.socket()
        listener.bind((LOOPBACK, 0))
        listener.listen(8)
        self.addCleanup(listener.close)

        def serve_once():
            conn, _ = listener.accept()
            with conn:
                conn.settimeout(30)
                total = 0
                while True:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    total += len(chunk)
                conn.sendall(f"received {total} bytes".encode())

        server = threading.Thread(target=serve_once, daemon=True)
        server.start()
        _, _, _, egress_port = self.start_chain(listener.getsockname()[1])
        data, ending = self._half_close_round_trip(egress_port, b"a" * 100000)
        self.assertEqual(data, b"received 100000 bytes", self.diag())
        self.assertEqual(ending, "eof")


class SessionTicketTest(harness.PkiCase):
    """The TLS 1.3 NewSessionTicket of an L4 ingress connection waits for the app's first
    bytes and leaves in the same send: one send and one client wake-up less."""

    def _handshake(self, raw, first=b""):
        """A TLS 1.3 handshake by hand; the client Finished leaves together with the
        record of `first` when given (as clients that write at once do)."""
        ctx = harness.tls_client_context(self.ca)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        tls = ctx.wrap_bio(incoming, outgoing, server_hostname=SERVICE)
        while True:
            try:
                tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                raw.sendall(outgoing.read())
                data = raw.recv(65536)
                self.assertTrue(data, "ingress closed during the handshake")
                incoming.write(data)
        if first:
            tls.write(first)
        raw.sendall(outgoing.read())  # the client Finished (and the first record)
        return tls, incoming, outgoing

    def _app(self):
        """An app that answers each connection's first read when `go` is set, then closes."""
        listener = socket.create_server((harness.LOOPBACK, 0))
        go = threading.Event()
        self.addCleanup(listener.close)

        def serve():
            conn, _ = listener.accept()
            with conn:
                request = conn.recv(65536)
                if request and go.wait(10):
                    conn.sendall(b"reply:" + request)
        threading.Thread(target=serve, daemon=True).start()
        return listener.getsockname()[1], go

    @staticmethod
    def _records(data):
        count, at = 0, 0
        while at + 5 <= len(data):
            at += 5 + int.from_bytes(data[at + 3:at + 5], "big")
            count += 1
        return count

    def test_ticket_leaves_with_the_first_reply(self):
        app_port, go = self._app()
        _, port = self.start_ingress(app_port, self.cert, self.key)
        with harness.connect(port) as raw:
            tls, incoming, outgoing = self._handshake(raw, first=b"hello")
            # Until the app answers, nothing reaches the client: the ticket is held.
            readable, _, _ = select.select([raw], [], [], 0.5)
            self.assertEqual(readable, [], "bytes arrived before the app replied")
            go.set()
            data = raw.recv(65536)
            deadline = time.monotonic() + 10
            reply = b""
            incoming.write(data)
            while len(reply) < len(b"reply:hello") and time.monotonic() < deadline:
                try:
                    reply += tls.read(65536)
                except ssl.SSLWantReadError:
                    more = raw.recv(65536)
                    self.assertTrue(more, f"ingress closed\n{self.diag()}")
                    incoming.write(more)
            self.assertEqual(reply, b"reply:hello")
            # The ticket and the reply came in one segment: at least two records in the
            # first read, and the session now carries a ticket.
            self.assertGreaterEqual(self._records(data), 2, data.hex())
            self.assertTrue(tls.session is not None and tls.session.has_ticket)

    def test_client_without_a_request_gets_its_ticket_at_once(self):
        # Nothing to wait for: the ticket is not held (an idle connection keeps no chunk).
        app_port, _ = self._app()
        _, port = self.start_ingress(app_port, self.cert, self.key)
        with harness.connect(port) as raw:
            tls, incoming, _ = self._handshake(raw)
            readable, _, _ = select.select([raw], [], [], 10)
            self.assertEqual(readable, [raw], f"no ticket\n{self.diag()}")
            incoming.write(raw.recv(65536))
            with self.assertRaises(ssl.SSLWantReadError):
                tls.read(1)  # consumes the ticket; no application data
            self.assertTrue(tls.session is not None and tls.session.has_ticket)

    def test_client_that_ends_first_still_gets_the_reply_and_a_clean_close(self):
        app_port, go = self._app()
        _, port = self.start_ingress(app_port, self.cert, self.key)
        with harness.connect(port) as raw:
            tls, incoming, outgoing = self._handshake(raw, first=b"bye")
            try:
                tls.unwrap()
            except ssl.SSLWantReadError:
                pass
            raw.sendall(outgoing.read())
            go.set()
            data, ending = harness.read_until_closed(raw, timeout=10)
            self.assertEqual(ending, "eof", f"{ending}\n{self.diag()}")
            incoming.write(data)
            reply = b""
            try:
                while True:
                    reply += tls.read(65536)
            except ssl.SSLZeroReturnError:
                pass
            self.assertEqual(reply, b"reply:bye")
            self.assertTrue(tls.session is not None and tls.session.has_ticket)


if __name__ == "__main__":
    harness.main()
